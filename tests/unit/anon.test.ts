// Anonymous memory (LINUX-SPEC §4), the fault entry's signals (§1) and fault accounting
// (§11): what a read or a write of fresh private anonymous memory costs and maps, what
// MAP_SHARED|MAP_ANONYMOUS is, and which failed accesses count as faults.
import { describe, it, expect } from 'vitest';
import { PROT_READ, PROT_NONE, PROT_EXEC, MAP_SHARED, MAP_ANONYMOUS, MAP_GROWSDOWN, MAP_FIXED, MAP_FIXED_NOREPLACE } from '../../src/index.js';
import { machine, anon, PG, RW, bytes, faults, snap, delta, expectSegv, expectFilled } from './mm-helpers.js';

describe('§4 anonymous memory', () => {
  it('R4.1 a read fault maps the shared zero page: special, read-only, not exclusive, not file, no RSS, no frame', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 4);
    const rss = mm.status().rssAnon;
    const s = snap(mmu, ['zeroPageMapped', 'pgalloc']);
    const tables = mmu.stats().pageTables;
    const free = mmu.stats().freeFrames;

    expect(mm.read(va + PG, 64)).toEqual(bytes(64, 0));
    const [p] = mm.pagemap(va + PG, 1);
    expect(p).toMatchObject({
      present: true, zeroPage: true, special: true, writable: false, dirty: false, young: true,
      pfn: mmu.phys.zeroPfn, exclusive: false, file: false, swapped: false,
    });
    expect(mm.status().rssAnon).toBe(rss);
    expect(mm.rusage()).toEqual({ minflt: 1, majflt: 0 });
    // Only page tables were allocated (PUD, PMD and PTE tables under a fresh PGD).
    const newTables = mmu.stats().pageTables - tables;
    expect(newTables).toBe(3);
    expect(mmu.stats().freeFrames).toBe(free - newTables);
    expect(delta(mmu, s)).toEqual({ zeroPageMapped: 1, pgalloc: newTables });
    // Every read page is the one zero frame.
    mm.touch(va, 4 * PG, 'read');
    expect(new Set(mm.pagemap(va, 4).map((e) => e.pfn))).toEqual(new Set([mmu.phys.zeroPfn]));
    expect(mm.smaps()[0].rss).toBe(0);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R4.2 a write fault allocates a zeroed exclusive page: young, dirty, writable, soft-dirty, anon RSS +1', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 2);
    mm.write(va + 100, bytes(8, 0xab));
    const [p, q] = mm.pagemap(va, 2);
    expect(p).toMatchObject({ present: true, exclusive: true, file: false, writable: true, dirty: true,
      young: true, softDirty: true, special: false, zeroPage: false });
    expect(p.pfn).not.toBe(mmu.phys.zeroPfn);
    expect(q.present).toBe(false);
    expect(mm.status().rssAnon).toBe(PG);
    expect(mm.rusage()).toEqual({ minflt: 1, majflt: 0 });
    const page = mm.read(va, PG);
    expect(page.subarray(100, 108)).toEqual(bytes(8, 0xab));
    expect(page.subarray(0, 100)).toEqual(bytes(100, 0)); // the rest was zeroed
    expectFilled(page.subarray(108), 0);
    // The bytes are in the frame the PTE names.
    expect(mmu.phys.read(p.pfn * PG + 100, 8)).toEqual(bytes(8, 0xab));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R4.2 a frame recycled from an earlier owner is zeroed before it is mapped again', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 64);
    mm.write(va, bytes(64 * PG, 0x5a));
    mm.munmap(va, 64 * PG);
    const vb = anon(mm, 64);
    mm.touch(vb, 64 * PG, 'write');
    expectFilled(mm.read(vb, 64 * PG), 0);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R4.2 reads and writes larger than the host\'s 1 MiB staging buffer cross it intact', async () => {
    const { mmu, mm } = await machine();
    const n = 3 * 256 + 5; // 3 MiB and a bit
    const va = anon(mm, n);
    const data = new Uint8Array(n * PG - 3);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 12)) & 0xff;
    mm.write(va + 3, data);
    const back = mm.read(va + 3, data.length);
    expect(Buffer.compare(Buffer.from(back), Buffer.from(data))).toBe(0);
    expect(mm.rusage().minflt).toBe(n);
    expect(mm.read(va, 3)).toEqual(bytes(3, 0));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R4.3 MAP_SHARED|MAP_ANONYMOUS is shmem: file bit set, no zero page, shared with a fork child both ways', async () => {
    const { mmu, mm } = await machine();
    const va = mm.mmap({ length: 2 * PG, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS });
    expect(mm.maps()[0]).toMatchObject({ perms: 'rw-s', shmem: true });
    expect(mm.read(va + PG, 4)).toEqual(bytes(4, 0)); // a read: a shmem page, not the zero page
    const [r] = mm.pagemap(va + PG, 1);
    expect(r).toMatchObject({ present: true, file: true, zeroPage: false, special: false });
    mm.write(va, bytes(16, 0x11));
    const [p] = mm.pagemap(va, 1);
    expect(p).toMatchObject({ present: true, file: true, exclusive: true, writable: true });
    expect(mm.status().rssShmem).toBe(2 * PG);
    expect(mm.status().rssAnon).toBe(0);

    const child = mm.fork();
    expect(child.pagemap(va, 1)[0].present).toBe(false); // shared mappings are not copied (R5.5)
    expect(child.read(va, 16)).toEqual(bytes(16, 0x11));
    const [c] = child.pagemap(va, 1);
    expect(c.pfn).toBe(p.pfn);
    expect(c.file).toBe(true);
    expect(mm.pagemap(va, 1)[0].exclusive).toBe(false); // now mapped twice
    child.write(va + 8, bytes(4, 0x22));
    expect(mm.read(va + 8, 4)).toEqual(bytes(4, 0x22)); // the child's write shows in the parent
    mm.write(va + PG, bytes(4, 0x33));
    expect(child.read(va + PG, 4)).toEqual(bytes(4, 0x33)); // and the parent's in the child
    expect(child.pagemap(va, 1)[0].pfn).toBe(p.pfn); // no copy on either side
    expect(mmu.checkInvariants()).toEqual([]);
    child.destroy();
    expect(mm.read(va, 12)).toEqual(new Uint8Array([...bytes(8, 0x11), ...bytes(4, 0x22)]));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R4.4 read then write costs 2 faults per page; the second fault copies from the zero page (a zeroed page)', async () => {
    const { mmu, mm } = await machine();
    const N = 8;
    const va = anon(mm, N);
    mm.touch(va, N * PG, 'read');
    expect(mm.rusage()).toEqual({ minflt: N, majflt: 0 });
    const s = snap(mmu, ['cowCopies', 'wpReuses']);
    mm.touch(va, N * PG, 'write');
    expect(mm.rusage()).toEqual({ minflt: 2 * N, majflt: 0 });
    expect(delta(mmu, s)).toEqual({ cowCopies: N, wpReuses: 0 });
    const pm = mm.pagemap(va, N);
    expect(pm.every((e) => e.present && e.exclusive && e.writable && !e.zeroPage && e.pfn !== mmu.phys.zeroPfn)).toBe(true);
    expect(new Set(pm.map((e) => e.pfn)).size).toBe(N);
    expect(mm.status().rssAnon).toBe(N * PG);
    expectFilled(mm.read(va, N * PG), 0);
    // Further accesses are TLB hits or walks: no more faults.
    mm.touch(va, N * PG, 'write');
    mm.touch(va, N * PG, 'read');
    expect(faults(mm)).toBe(2 * N);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R4.4 write-first costs one fault per page', async () => {
    const { mmu, mm } = await machine();
    const N = 32;
    const va = anon(mm, N);
    mm.touch(va, N * PG, 'write');
    expect(mm.rusage()).toEqual({ minflt: N, majflt: 0 });
    mm.touch(va, N * PG, 'read');
    expect(mm.rusage()).toEqual({ minflt: N, majflt: 0 });
    expect(mmu.stats().cowCopies).toBe(0);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R4.1 option zeroPage: false: a read fault allocates an exclusive page, writable and dirty in a writable VMA (one fault for read then write)', async () => {
    const { mmu, mm } = await machine({ zeroPage: false });
    const va = anon(mm, 4);
    const s = snap(mmu, ['zeroPageMapped', 'cowCopies']);
    mm.touch(va, 4 * PG, 'read');
    const pm = mm.pagemap(va, 4);
    for (const p of pm) {
      expect(p).toMatchObject({ present: true, exclusive: true, zeroPage: false, special: false, writable: true, dirty: true });
      expect(p.pfn).not.toBe(mmu.phys.zeroPfn);
    }
    expect(mm.status().rssAnon).toBe(4 * PG);
    expect(mm.rusage().minflt).toBe(4);
    mm.touch(va, 4 * PG, 'write');
    expect(mm.rusage().minflt).toBe(4); // read then write: one fault in all
    expect(delta(mmu, s)).toEqual({ zeroPageMapped: 0, cowCopies: 0 });
    expectFilled(mm.read(va, 4 * PG), 0);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R4.1 option zeroPage: false in a read-only VMA: the allocated page is neither writable nor dirty', async () => {
    const { mmu, mm } = await machine({ zeroPage: false });
    const va = anon(mm, 1, PROT_READ);
    expect(mm.read(va, 8)).toEqual(bytes(8, 0));
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ present: true, exclusive: true, writable: false, dirty: false, zeroPage: false });
    expect(mm.status().rssAnon).toBe(PG);
    expectSegv(() => mm.write(va, bytes(1, 1)), 'SEGV_ACCERR', va);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('§1 fault entry: SIGSEGV before handle_mm_fault', () => {
  it('R1.1 an access outside every VMA is SIGSEGV SEGV_MAPERR at the exact address', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 2);
    expectSegv(() => mm.write(va + 2 * PG + 5, bytes(1, 1)), 'SEGV_MAPERR', va + 2 * PG + 5);
    expectSegv(() => mm.read(va - PG + 7, 1), 'SEGV_MAPERR', va - PG + 7);
    expectSegv(() => mm.touch(0x1000, PG, 'read'), 'SEGV_MAPERR', 0x1000);
    // A multi-page copy stops at the first unmapped byte.
    expectSegv(() => mm.read(va + PG, 2 * PG), 'SEGV_MAPERR', va + 2 * PG);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R1.1 a write to a PROT_READ VMA and any access to PROT_NONE are SEGV_ACCERR', async () => {
    const { mmu, mm } = await machine();
    const ro = anon(mm, 1, PROT_READ);
    const none = anon(mm, 1, PROT_NONE);
    expectSegv(() => mm.write(ro + 9, bytes(1, 1)), 'SEGV_ACCERR', ro + 9);
    expect(mm.read(ro, 1)).toEqual(bytes(1, 0)); // reads are fine (zero page)
    expectSegv(() => mm.write(ro + 9, bytes(1, 1)), 'SEGV_ACCERR', ro + 9); // also on a present PTE
    expectSegv(() => mm.read(none + 3, 1), 'SEGV_ACCERR', none + 3);
    expectSegv(() => mm.touch(none, PG, 'write'), 'SEGV_ACCERR', none);
    expect(mm.pagemap(none, 1)[0].present).toBe(false);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('§1 fault entry: a grows-down stack expands (R1.1 step 1)', () => {
  const X = 0x4000_0000_0000;
  const MiB = 1 << 20;

  it('R1.1 an access below a MAP_GROWSDOWN VMA grows it down to the page (one minor fault), up to the 8 MiB stack limit', async () => {
    const { mmu, mm } = await machine();
    expect(anon(mm, 1, RW, MAP_GROWSDOWN | MAP_FIXED, X)).toBe(X);
    mm.write(X - 1, bytes(1, 7));
    expect(mm.rusage()).toEqual({ minflt: 1, majflt: 0 });
    expect(mm.maps().map((v) => [v.start, v.end])).toEqual([[X - PG, X + PG]]);
    expect(mm.maps()[0].pgoff).toBe((X - PG) / PG);
    mm.read(X - 10 * PG, 1);
    expect(mm.maps()[0].start).toBe(X - 10 * PG);
    expect(mm.status().vmSize).toBe(11 * PG);
    mm.write(X - 7 * MiB, bytes(1, 1));
    expect(mm.maps()[0].start).toBe(X - 7 * MiB);
    expectSegv(() => mm.write(X - 9 * MiB, bytes(1, 1)), 'SEGV_MAPERR', X - 9 * MiB); // over RLIMIT_STACK
    expect(mm.maps()[0].start).toBe(X - 7 * MiB);
    expect(mm.read(X - 1, 1)).toEqual(bytes(1, 7));
    expect(mm.rusage()).toEqual({ minflt: 3, majflt: 0 });
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R1.1 a stack does not grow to within the 1 MiB guard gap of an accessible VMA below (a PROT_NONE one does not count)', async () => {
    const { mmu, mm } = await machine();
    anon(mm, 1, RW, MAP_GROWSDOWN | MAP_FIXED, X);
    anon(mm, 1, RW, MAP_FIXED, X - 2 * MiB);
    mm.touch(X - PG, 1, 'write');
    expectSegv(() => mm.touch(X - MiB - 2 * PG, 1, 'write'), 'SEGV_MAPERR', X - MiB - 2 * PG);
    expect(mm.maps().map((v) => v.start)).toEqual([X - 2 * MiB, X - PG]);
    const Z = X + 0x100_0000_0000;
    anon(mm, 1, RW, MAP_GROWSDOWN | MAP_FIXED, Z);
    anon(mm, 1, PROT_NONE, MAP_FIXED, Z - 2 * PG);
    mm.touch(Z - PG, 1, 'read'); // right up to the PROT_NONE page
    expect(mm.maps().find((v) => v.end === Z + PG)!.start).toBe(Z - PG);
    expectSegv(() => mm.touch(Z - 2 * PG, 1, 'read'), 'SEGV_ACCERR', Z - 2 * PG);
    // An access below a VMA that is not a stack is no growth.
    const plain = anon(mm, 1, RW, MAP_FIXED, X + 0x10_0000_0000);
    expectSegv(() => mm.touch(plain - PG, 1, 'read'), 'SEGV_MAPERR', plain - PG);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R1.1 placement keeps the guard gap free below a stack; MAP_FIXED may still go there', async () => {
    const { mmu, mm } = await machine();
    anon(mm, 1, RW, MAP_GROWSDOWN | MAP_FIXED, X);
    const hinted = anon(mm, 1, PROT_READ, 0, X - 2 * PG); // in the guard gap: not taken
    expect(hinted).not.toBe(X - 2 * PG);
    expect(anon(mm, 1, PROT_READ, MAP_FIXED_NOREPLACE, X - 2 * PG)).toBe(X - 2 * PG);
    // A stack placed top-down: the next mapping goes at least the guard gap below it.
    const s = anon(mm, 1, RW, MAP_GROWSDOWN);
    const below = anon(mm, 1, PROT_READ);
    expect(s - (below + PG)).toBeGreaterThanOrEqual(MiB);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.9 the part a stack grew by is new memory: soft-dirty even after clear_refs', async () => {
    const { mmu, mm } = await machine();
    anon(mm, 1, RW, MAP_GROWSDOWN | MAP_FIXED, X);
    mm.write(X, bytes(1, 1));
    mm.clearSoftDirty();
    expect(mm.pagemap(X, 1)[0].softDirty).toBe(false);
    mm.read(X - PG, 1);
    expect(mm.pagemap(X - PG, 1)[0]).toMatchObject({ present: true, softDirty: true });
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('§1 fault entry: execute permission through NX', () => {
  it('R1.1 an instruction fetch from a readable non-exec VMA faults the page in (one minor fault), then SEGV_ACCERR', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 1);
    expectSegv(() => mm.touch(va + 8, 1, 'exec'), 'SEGV_ACCERR', va + 8);
    expect(mm.rusage()).toEqual({ minflt: 1, majflt: 0 });
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ present: true, zeroPage: true });
    const x = anon(mm, 1, PROT_READ | PROT_EXEC);
    mm.touch(x, PG, 'exec');
    expect(mm.rusage()).toEqual({ minflt: 2, majflt: 0 });
    expect(mm.pagemap(x, 1)[0]).toMatchObject({ present: true, zeroPage: true });
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('§11 fault accounting', () => {
  it('R11.5 failed accesses count nowhere per address space (rusage unchanged), and never as pgfault', async () => {
    const { mmu, mm } = await machine();
    const ro = anon(mm, 1, PROT_READ);
    const s = snap(mmu, ['pgfault', 'sigsegv']);
    expectSegv(() => mm.touch(ro, PG, 'write'), 'SEGV_ACCERR', ro);
    expectSegv(() => mm.touch(ro + 16 * PG, PG, 'read'), 'SEGV_MAPERR', ro + 16 * PG);
    expect(mm.rusage()).toEqual({ minflt: 0, majflt: 0 });
    expect(delta(mmu, s)).toEqual({ pgfault: 0, sigsegv: 2 });
    mm.touch(ro, PG, 'read'); // a real fault does count
    expect(mm.rusage()).toEqual({ minflt: 1, majflt: 0 });
    expectSegv(() => mm.touch(ro, PG, 'write'), 'SEGV_ACCERR', ro); // write on the present zero-page PTE
    expect(mm.rusage()).toEqual({ minflt: 1, majflt: 0 });
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R11.7 N pages written = N minor faults; N read then written = 2N; each address space counts its own', async () => {
    const { mmu, mm } = await machine();
    const other = mmu.createAddressSpace();
    const a = anon(mm, 10);
    const b = anon(other, 10);
    mm.touch(a, 10 * PG, 'write');
    other.touch(b, 10 * PG, 'read');
    other.touch(b, 10 * PG, 'write');
    expect(mm.rusage()).toEqual({ minflt: 10, majflt: 0 });
    expect(other.rusage()).toEqual({ minflt: 20, majflt: 0 });
    expect(mmu.stats().pgfault).toBe(30);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R11.3 pagemap outside every VMA is all zero; inside an unpopulated one only soft-dirty is set', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 2);
    const [inside] = mm.pagemap(va, 1);
    const [outside] = mm.pagemap(va + 2 * PG, 1);
    expect(inside).toMatchObject({ present: false, swapped: false, file: false, exclusive: false, softDirty: true, pfn: 0 });
    expect(outside).toMatchObject({ present: false, swapped: false, file: false, exclusive: false, softDirty: false, pfn: 0 });
    expect(mm.rusage()).toEqual({ minflt: 0, majflt: 0 }); // pagemap never faults
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R11.7 a partial-page touch faults each page it covers once', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 4);
    mm.touch(va + PG - 1, 2, 'write'); // straddles pages 0 and 1
    expect(mm.rusage().minflt).toBe(2);
    expect(mm.pagemap(va, 4).map((p) => p.present)).toEqual([true, true, false, false]);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});
