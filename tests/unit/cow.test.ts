// Copy-on-write (LINUX-SPEC §5): what fork copies and how (R5.5, R5.6), who copies and who
// reuses after it (R5.7), the zero page (R5.8); and mprotect's "skip the write fault"
// optimisation, which must never make a page shared after fork writable (§9, R9.7/R9.8).
import { describe, it, expect } from 'vitest';
import { PROT_READ, PROT_NONE, MAP_SHARED, MAP_ANONYMOUS, MADV_DONTFORK, MADV_WIPEONFORK, MADV_KEEPONFORK, MADV_DOFORK, MAP_LOCKED } from '../../src/index.js';
import { machine, anon, PG, RW, bytes, snap, delta, expectSegv, expectFilled, expectErrno } from './mm-helpers.js';

describe('§5 copy-on-write: fork (R5.5, R5.6)', () => {
  it('R5.6 fork write-protects a written anon page on both sides, shares the frame, and the child PTE is old', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 2);
    mm.write(va, bytes(8, 0x41));
    const [before] = mm.pagemap(va, 1);
    expect(before).toMatchObject({ exclusive: true, writable: true, young: true });
    const child = mm.fork();
    const [p] = mm.pagemap(va, 1);
    const [c] = child.pagemap(va, 1);
    expect(p).toMatchObject({ present: true, pfn: before.pfn, writable: false, exclusive: false, young: true, dirty: true });
    expect(c).toMatchObject({ present: true, pfn: before.pfn, writable: false, exclusive: false, young: false, file: false });
    expect(child.status().rssAnon).toBe(PG);
    expect(child.read(va, 8)).toEqual(bytes(8, 0x41));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R5.6 the zero page is copied as a special PTE: no RSS, no reference, still the zero pfn in the child', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 2);
    mm.write(va, bytes(1, 1)); // gives the VMA an anon_vma, so its tables are copied (R5.5)
    mm.read(va + PG, 1); // the zero page
    const child = mm.fork();
    const [z] = child.pagemap(va + PG, 1);
    expect(z).toMatchObject({ present: true, zeroPage: true, special: true, pfn: mmu.phys.zeroPfn, exclusive: false, writable: false });
    expect(child.status().rssAnon).toBe(PG); // only the written page
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R5.5 an untouched anon VMA (or one only read: zero page, no anon_vma) is not copied: the child has no PTEs until it faults', async () => {
    const { mmu, mm } = await machine();
    const untouched = anon(mm, 4);
    const readOnly = anon(mm, 4);
    mm.touch(readOnly, 4 * PG, 'read');
    const child = mm.fork();
    expect(child.pagemap(untouched, 4).every((p) => !p.present)).toBe(true);
    expect(child.pagemap(readOnly, 4).every((p) => !p.present)).toBe(true);
    expect(child.status().pageTables).toBe(PG); // the PGD alone
    expect(child.maps().map((v) => [v.start, v.end, v.perms])).toEqual(mm.maps().map((v) => [v.start, v.end, v.perms]));
    expect(child.rusage()).toEqual({ minflt: 0, majflt: 0 });
    child.touch(untouched, PG, 'read');
    expect(child.pagemap(untouched, 1)[0]).toMatchObject({ present: true, zeroPage: true });
    expect(child.rusage()).toEqual({ minflt: 1, majflt: 0 });
    expect(mm.rusage()).toEqual({ minflt: 4, majflt: 0 }); // the parent's are its own
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R11.7 a fork child starts with zero fault counts and counts its own COW faults', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 3);
    mm.touch(va, 3 * PG, 'write');
    const child = mm.fork();
    expect(child.rusage()).toEqual({ minflt: 0, majflt: 0 });
    child.touch(va, 3 * PG, 'write');
    expect(child.rusage()).toEqual({ minflt: 3, majflt: 0 });
    expect(mm.rusage()).toEqual({ minflt: 3, majflt: 0 });
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R5.5 a MADV_DONTFORK VMA is absent in the child (SIGSEGV SEGV_MAPERR there) and present in the parent', async () => {
    const { mmu, mm } = await machine();
    const keep = anon(mm, 1);
    const va = anon(mm, 2);
    mm.write(va, bytes(4, 7));
    mm.write(keep, bytes(4, 8));
    mm.madvise(va, 2 * PG, MADV_DONTFORK);
    const child = mm.fork();
    expect(child.maps().map((v) => v.start)).toEqual([keep]);
    expectSegv(() => child.read(va, 1), 'SEGV_MAPERR', va);
    expectSegv(() => child.write(va + PG + 1, bytes(1, 1)), 'SEGV_MAPERR', va + PG + 1);
    expect(child.read(keep, 4)).toEqual(bytes(4, 8));
    expect(mm.read(va, 4)).toEqual(bytes(4, 7));
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ exclusive: true, writable: true }); // never shared
    // DOFORK undoes it for the next fork.
    mm.madvise(va, 2 * PG, MADV_DOFORK);
    const child2 = mm.fork();
    expect(child2.read(va, 4)).toEqual(bytes(4, 7));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R5.5 a MADV_WIPEONFORK VMA is duplicated empty: the child reads zeros, the parent keeps its data (LTP madvise10 idea)', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 4);
    mm.write(va, bytes(4 * PG, 0x77));
    mm.madvise(va, 4 * PG, MADV_WIPEONFORK);
    const child = mm.fork();
    expect(child.maps().map((v) => [v.start, v.end])).toEqual([[va, va + 4 * PG]]);
    expect(child.pagemap(va, 4).every((p) => !p.present)).toBe(true);
    expectFilled(child.read(va, 4 * PG), 0);
    expect(child.status().rssAnon).toBe(0); // the zero page
    expectFilled(mm.read(va, 4 * PG), 0x77);
    expect(mm.pagemap(va, 4).every((p) => p.exclusive && p.writable)).toBe(true);
    child.write(va, bytes(1, 1));
    expect(mm.read(va, 1)).toEqual(bytes(1, 0x77));
    // Only private anonymous memory can be wiped on fork.
    const sh = mm.mmap({ length: PG, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS });
    expectErrno(() => mm.madvise(sh, PG, MADV_WIPEONFORK), 'EINVAL');
    // KEEPONFORK: the next child inherits the data again.
    mm.madvise(va, 4 * PG, MADV_KEEPONFORK);
    const child2 = mm.fork();
    expectFilled(child2.read(va, 4 * PG), 0x77);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R5.6 a pinned exclusive page is copied for the child at fork; the parent keeps it exclusive and writable (no COW)', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 2);
    mm.write(va, bytes(2 * PG, 0x3c));
    const [pinned] = mm.getUserPages(va, 1, { write: true, pin: true });
    const s = snap(mmu, ['cowCopies']);
    const child = mm.fork();
    const [p0, p1] = mm.pagemap(va, 2);
    const [c0, c1] = child.pagemap(va, 2);
    expect(p0).toMatchObject({ pfn: pinned, exclusive: true, writable: true });
    expect(c0.pfn).not.toBe(pinned);
    expect(c0).toMatchObject({ exclusive: true, present: true });
    expect(p1.pfn).toBe(c1.pfn); // the unpinned page is shared as usual
    expect(p1).toMatchObject({ exclusive: false, writable: false });
    expect(child.status().rssAnon).toBe(2 * PG);
    const f = mm.rusage().minflt;
    mm.write(va, bytes(1, 0x3d)); // no fault: still writable
    expect(mm.rusage().minflt).toBe(f);
    expect(child.read(va, 1)).toEqual(bytes(1, 0x3c));
    expect(delta(mmu, s)).toEqual({ cowCopies: 0 });
    mm.unpinUserPage(pinned);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R5.5 the child does not inherit VM_LOCKED', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 2, RW, MAP_LOCKED);
    expect(mm.status().vmLck).toBe(2 * PG);
    const child = mm.fork();
    expect(child.status().vmLck).toBe(0);
    expect(child.maps()[0].flags & 0x2000).toBe(0);
    expect(child.read(va, 1)).toEqual(bytes(1, 0));
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('§5 copy-on-write after fork (R5.7, R5.8)', () => {
  async function forked() {
    const { mmu, mm } = await machine();
    const va = anon(mm, 1);
    mm.write(va, bytes(PG, 0xa0));
    const pfn = mm.pagemap(va, 1)[0].pfn;
    const child = mm.fork();
    return { mmu, mm, child, va, pfn };
  }

  it('R5.7 child writes first: the child copies; the parent\'s next write reuses A; one new page in all', async () => {
    const { mmu, mm, child, va, pfn } = await forked();
    const s = snap(mmu, ['cowCopies', 'wpReuses']);
    child.write(va, bytes(1, 0xc1));
    const [c] = child.pagemap(va, 1);
    expect(c.pfn).not.toBe(pfn);
    expect(c).toMatchObject({ exclusive: true, writable: true, dirty: true });
    const [p] = mm.pagemap(va, 1);
    expect(p).toMatchObject({ pfn, writable: false, exclusive: true }); // mapped once again, still read-only
    expect(delta(mmu, s)).toEqual({ cowCopies: 1, wpReuses: 0 });

    const faults = mm.rusage().minflt;
    mm.write(va, bytes(1, 0xb1));
    expect(mm.rusage().minflt).toBe(faults + 1); // a write-protect fault that reuses
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ pfn, writable: true, exclusive: true });
    expect(delta(mmu, s)).toEqual({ cowCopies: 1, wpReuses: 1 });
    expect(mm.read(va, 2)).toEqual(new Uint8Array([0xb1, 0xa0]));
    expect(child.read(va, 2)).toEqual(new Uint8Array([0xc1, 0xa0]));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R5.7 child destroyed without writing: the parent reuses A, no copy, and the child\'s frames are back', async () => {
    const { mmu, mm, child, va, pfn } = await forked();
    const s = snap(mmu, ['cowCopies', 'wpReuses']);
    const free = mmu.stats().freeFrames;
    child.destroy();
    expect(mmu.stats().freeFrames).toBeGreaterThan(free); // its page tables
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ pfn, exclusive: true, writable: false });
    mm.write(va, bytes(1, 0xb2));
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ pfn, exclusive: true, writable: true });
    expect(delta(mmu, s)).toEqual({ cowCopies: 0, wpReuses: 1 });
    expect(mm.read(va, 2)).toEqual(new Uint8Array([0xb2, 0xa0]));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R5.7 the child munmaps without writing: the parent reuses A', async () => {
    const { mmu, mm, child, va, pfn } = await forked();
    child.munmap(va, PG);
    const s = snap(mmu, ['cowCopies', 'wpReuses']);
    mm.write(va, bytes(1, 0xb3));
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ pfn, writable: true });
    expect(delta(mmu, s)).toEqual({ cowCopies: 0, wpReuses: 1 });
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R5.7 parent writes first: the parent copies; the child later reuses A', async () => {
    const { mmu, mm, child, va, pfn } = await forked();
    const s = snap(mmu, ['cowCopies', 'wpReuses']);
    mm.write(va, bytes(1, 0xb4));
    const [p] = mm.pagemap(va, 1);
    expect(p.pfn).not.toBe(pfn);
    expect(p).toMatchObject({ exclusive: true, writable: true });
    expect(child.pagemap(va, 1)[0]).toMatchObject({ pfn, exclusive: true, writable: false });
    child.write(va, bytes(1, 0xc4));
    expect(child.pagemap(va, 1)[0]).toMatchObject({ pfn, exclusive: true, writable: true });
    expect(delta(mmu, s)).toEqual({ cowCopies: 1, wpReuses: 1 });
    expect(mm.read(va, 2)).toEqual(new Uint8Array([0xb4, 0xa0]));
    expect(child.read(va, 2)).toEqual(new Uint8Array([0xc4, 0xa0]));
    expect(mm.status().rssAnon + child.status().rssAnon).toBe(2 * PG);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R5.7 a grandchild shares too: A is reused only by the last of three to write', async () => {
    const { mmu, mm, child, va, pfn } = await forked();
    const grandchild = child.fork();
    const s = snap(mmu, ['cowCopies', 'wpReuses']);
    mm.write(va, bytes(1, 1));
    child.write(va, bytes(1, 2));
    expect(delta(mmu, s)).toEqual({ cowCopies: 2, wpReuses: 0 });
    grandchild.write(va, bytes(1, 3));
    expect(grandchild.pagemap(va, 1)[0].pfn).toBe(pfn);
    expect(delta(mmu, s)).toEqual({ cowCopies: 2, wpReuses: 1 });
    expect([mm, child, grandchild].map((m) => m.read(va, 2)[0])).toEqual([1, 2, 3]);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R5.7 the parent exits first: the child reuses A on write, and the reverse map still finds every PTE', async () => {
    const { mmu, mm, child, va, pfn } = await forked();
    const sibling = mm.fork(); // a second child, so A stays shared after the parent goes
    mm.destroy();
    expect(mmu.checkInvariants()).toEqual([]); // includes the rmap walk of every anon page
    const s = snap(mmu, ['cowCopies', 'wpReuses']);
    child.write(va, bytes(1, 0xc5));
    expect(delta(mmu, s)).toEqual({ cowCopies: 1, wpReuses: 0 });
    sibling.write(va, bytes(1, 0xd5));
    expect(sibling.pagemap(va, 1)[0].pfn).toBe(pfn);
    expect(delta(mmu, s)).toEqual({ cowCopies: 1, wpReuses: 1 });
    // A new, unrelated address space may get the dead parent's id: the family must not mix.
    const stranger = mmu.createAddressSpace();
    const vs = anon(stranger, 1, RW, 0, va);
    expect(vs).toBe(va);
    stranger.write(vs, bytes(1, 0xe5));
    const grandchild = child.fork();
    expect(grandchild.read(va, 1)).toEqual(bytes(1, 0xc5));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R5.7 a read in the child after fork is no fault and copies nothing', async () => {
    const { mmu, mm, child, va, pfn } = await forked();
    const s = snap(mmu, ['cowCopies', 'pgfault']);
    expectFilled(child.read(va, PG), 0xa0);
    expect(delta(mmu, s)).toEqual({ cowCopies: 0, pgfault: 0 });
    expect(child.pagemap(va, 1)[0]).toMatchObject({ pfn, young: true }); // the walker made it young
    expect(mm.rusage().minflt).toBe(1);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R5.8 the zero page is never reused: after fork both sides copy it (zeroed), even the last one', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 2);
    mm.write(va + PG, bytes(1, 1));
    mm.read(va, 1);
    const child = mm.fork();
    const s = snap(mmu, ['cowCopies', 'wpReuses']);
    child.destroy(); // the parent is the only one left mapping the zero page here
    mm.write(va, bytes(1, 9));
    const [p] = mm.pagemap(va, 1);
    expect(p.pfn).not.toBe(mmu.phys.zeroPfn);
    expect(p).toMatchObject({ exclusive: true, writable: true, zeroPage: false });
    expect(delta(mmu, s)).toEqual({ cowCopies: 1, wpReuses: 0 });
    expect(mm.read(va, 4)).toEqual(new Uint8Array([9, 0, 0, 0]));
    // and in a fresh pair, both copy it.
    const va2 = anon(mm, 2);
    mm.write(va2 + PG, bytes(1, 1));
    mm.read(va2, 1);
    const c2 = mm.fork();
    const s2 = snap(mmu, ['cowCopies', 'wpReuses']);
    c2.write(va2, bytes(1, 5));
    mm.write(va2, bytes(1, 6));
    expect(delta(mmu, s2)).toEqual({ cowCopies: 2, wpReuses: 0 });
    expect(c2.pagemap(va2, 1)[0].pfn).not.toBe(mm.pagemap(va2, 1)[0].pfn);
    expect(mmu.phys.read(mmu.phys.zeroPfn * PG, PG).every((b) => b === 0)).toBe(true); // never written through
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('§9 mprotect and COW (R9.7, R9.8)', () => {
  it('R9.8 an exclusive written page: mprotect R then RW makes it writable again: the next write takes no fault', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 1);
    mm.write(va, bytes(1, 1));
    mm.mprotect(va, PG, PROT_READ);
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ writable: false, exclusive: true, present: true });
    expectSegv(() => mm.write(va, bytes(1, 2)), 'SEGV_ACCERR', va);
    mm.mprotect(va, PG, RW);
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ writable: true, dirty: true });
    const r = mm.rusage();
    const s = snap(mmu, ['pgfault', 'cowCopies']);
    mm.write(va, bytes(1, 3));
    expect(mm.rusage()).toEqual(r);
    expect(delta(mmu, s)).toEqual({ pgfault: 0, cowCopies: 0 });
    expect(mm.read(va, 1)).toEqual(bytes(1, 3));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.8 the same after fork (page shared): it stays read-only, and the write copies', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 1);
    mm.write(va, bytes(1, 1));
    const pfn = mm.pagemap(va, 1)[0].pfn;
    const child = mm.fork();
    mm.mprotect(va, PG, PROT_READ);
    mm.mprotect(va, PG, RW);
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ pfn, writable: false, exclusive: false });
    const r = mm.rusage().minflt;
    const s = snap(mmu, ['cowCopies']);
    mm.write(va, bytes(1, 2));
    expect(mm.rusage().minflt).toBe(r + 1);
    expect(delta(mmu, s)).toEqual({ cowCopies: 1 });
    expect(mm.pagemap(va, 1)[0].pfn).not.toBe(pfn);
    expect(child.read(va, 1)).toEqual(bytes(1, 1));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.6 PROT_NONE keeps pages present (protnone) and inaccessible; fork copies them; RW again restores access', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 2);
    mm.write(va, bytes(2 * PG, 0x66));
    mm.mprotect(va, 2 * PG, PROT_NONE);
    expect(mm.pagemap(va, 2).map((p) => [p.present, p.protnone, p.writable])).toEqual([[true, true, false], [true, true, false]]);
    expectSegv(() => mm.read(va + PG, 1), 'SEGV_ACCERR', va + PG);
    const child = mm.fork();
    expect(child.pagemap(va, 2).every((p) => p.present && p.protnone && !p.exclusive)).toBe(true);
    mm.mprotect(va, 2 * PG, RW);
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ protnone: false, writable: false }); // shared: no upgrade
    const s = snap(mmu, ['cowCopies']);
    mm.write(va, bytes(1, 0x67));
    expect(delta(mmu, s)).toEqual({ cowCopies: 1 });
    expectSegv(() => child.read(va, 1), 'SEGV_ACCERR', va);
    child.mprotect(va, 2 * PG, PROT_READ);
    expect(child.read(va, 2)).toEqual(bytes(2, 0x66));
    expect(mm.read(va, 2)).toEqual(new Uint8Array([0x67, 0x66]));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.7 the zero page is never made writable by mprotect', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 1, PROT_READ);
    mm.read(va, 1);
    mm.mprotect(va, PG, RW);
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ zeroPage: true, writable: false });
    mm.write(va, bytes(1, 4));
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ zeroPage: false, writable: true, exclusive: true });
    expect(mm.read(va, 2)).toEqual(new Uint8Array([4, 0]));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.7 a page reused after the partner exited is still upgraded only after its own write fault marks it exclusive', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 1);
    mm.write(va, bytes(1, 1));
    const child = mm.fork();
    child.destroy();
    mm.mprotect(va, PG, PROT_READ);
    mm.mprotect(va, PG, RW);
    // fork cleared anonExclusive; only the write fault's reuse sets it again (R5.2 step 4).
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ writable: false, exclusive: true });
    mm.write(va, bytes(1, 2));
    mm.mprotect(va, PG, PROT_READ);
    mm.mprotect(va, PG, RW);
    expect(mm.pagemap(va, 1)[0].writable).toBe(true);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});
