// LINUX-SPEC §8: mlock, mlock2, munlock, mlockall and population (with the LTP and
// kselftest cases of §13-§14 re-expressed: mlock05, mlock201, mlock203, mlock2-tests).
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import {
  createMmu, MemoryFile, LinuxError, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS,
  MAP_FIXED_NOREPLACE, MAP_LOCKED, MADV_COLD, MLOCK_ONFAULT, MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT, type Mmu,
  type AddressSpace,
} from '../../src/index.js';

const P = 4096;
let mmu: Mmu;
let mm: AddressSpace;

beforeEach(async () => {
  mmu = await createMmu({ ramBytes: 16 << 20 });
  mm = mmu.createAddressSpace();
});
afterEach(() => {
  expect(mmu.checkInvariants()).toEqual([]);
});

function anon(pages: number, prot = PROT_READ | PROT_WRITE, flags = 0): number {
  return mm.mmap({ length: pages * P, prot, flags: MAP_PRIVATE | MAP_ANONYMOUS | flags });
}
function present(va: number, pages: number): string {
  return mm.pagemap(va, pages).map((p) => (p.present ? 'P' : '.')).join('');
}
function errno(fn: () => void): string {
  try { fn(); } catch (e) { if (e instanceof LinuxError) return e.code; throw e; }
  return 'ok';
}
function cachedFile(pages: number) {
  const bytes = new Uint8Array(pages * P);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i >> 12) & 0xff;
  const file = mmu.openFile(new MemoryFile(bytes));
  file.prime();
  return file;
}

describe('§8 mlock', () => {
  it('R8.2 mlock05: after mlock of 1 MiB of private writable anon memory, Rss == Locked == 1 MiB', () => {
    const va = anon(256);
    mm.mlock(va, 256 * P);
    const s = mm.smaps().find((v) => v.start === va)!;
    expect(s.rss).toBe(1 << 20);
    expect(s.locked).toBe(1 << 20);
    expect(mm.status().vmLck).toBe(1 << 20);
    expect(mm.pagemap(va, 256).every((p) => p.present && p.mlocked && p.exclusive)).toBe(true);
  });

  it('R8.2 mlock201: MLOCK_ONFAULT locks the whole range in VmLck but only touched pages become resident', () => {
    const va = anon(16);
    mm.mlock2(va, 16 * P, MLOCK_ONFAULT);
    expect(mm.status().vmLck).toBe(16 * P);
    expect(present(va, 16)).toBe('................');
    mm.touch(va + 3 * P, 1, 'write');
    expect(present(va, 16)).toBe('...P............');
    expect(mm.pagemap(va + 3 * P, 1)[0].mlocked).toBe(true);
    const locked = mm.smaps().find((v) => v.start === va)!.locked;
    expect(locked).toBe(P);
  });

  it('R8.2 mlock203: mlock of a range already locked ONFAULT does not count it twice', () => {
    const va = anon(8);
    mm.mlock2(va, 8 * P, MLOCK_ONFAULT);
    mm.mlock(va, 8 * P);
    expect(mm.status().vmLck).toBe(8 * P);
    expect(present(va, 8)).toBe('PPPPPPPP'); // the second mlock populates
  });

  it('R8.2 mlock2-tests: munlock of the middle page leaves 3 VMAs; unlocking all merges them into one', () => {
    const va = anon(3);
    mm.mlock(va, 3 * P);
    expect(mm.maps().filter((v) => v.start >= va && v.end <= va + 3 * P)).toHaveLength(1);
    mm.munlock(va + P, P);
    const parts = mm.maps().filter((v) => v.start >= va && v.end <= va + 3 * P);
    expect(parts.map((v) => [v.start - va, v.end - va])).toEqual([[0, P], [P, 2 * P], [2 * P, 3 * P]]);
    expect(mm.status().vmLck).toBe(2 * P);
    expect(mm.pagemap(va + P, 1)[0].mlocked).toBe(false);
    expect(mm.pagemap(va, 1)[0].mlocked).toBe(true);
    mm.munlock(va, 3 * P);
    expect(mm.maps().filter((v) => v.start >= va && v.end <= va + 3 * P)).toHaveLength(1);
    expect(mm.status().vmLck).toBe(0);
  });

  it('R8.1 rounds the range to pages: mlock(va + 100, 10) locks exactly one page', () => {
    const va = anon(4);
    mm.mlock(va + 100, 10);
    expect(mm.status().vmLck).toBe(P);
    expect(present(va, 4)).toBe('P...');
  });

  it('R8.1 errors: unknown mlock2 flag EINVAL, hole ENOMEM (the VMAs before it locked, nothing populated), limit 0 EPERM, over the limit ENOMEM', () => {
    const va = anon(4);
    expect(errno(() => mm.mlock2(va, P, 2))).toBe('EINVAL');
    mm.munmap(va + 2 * P, P);
    expect(errno(() => mm.mlock(va - P, 2 * P))).toBe('ENOMEM'); // starts in a hole: nothing changes
    expect(mm.status().vmLck).toBe(0);
    // apply_vma_lock_flags locks VMA by VMA up to the hole; do_mlock then returns before populating.
    expect(errno(() => mm.mlock(va, 4 * P))).toBe('ENOMEM');
    expect(mm.status().vmLck).toBe(2 * P);
    expect(present(va, 4)).toBe('....');
    expect(errno(() => mm.munlock(va, 4 * P))).toBe('ENOMEM');
    expect(mm.status().vmLck).toBe(0);
    expect(mmu.checkInvariants()).toEqual([]);
    mm.setMemlockLimit(0);
    expect(errno(() => mm.mlock(va, P))).toBe('EPERM');
    mm.setMemlockLimit(P);
    expect(errno(() => mm.mlock(va, 2 * P))).toBe('ENOMEM');
    mm.mlock(va, P);
    expect(mm.status().vmLck).toBe(P);
    mm.mlock(va, P); // already locked: no new pages counted against the limit
    expect(mm.status().vmLck).toBe(P);
  });

  it('R8.3 population counts: cached 64-page file shared read-only at an aligned VA = 4 faults; private writable = 64; anon = 64', () => {
    const file = cachedFile(64);
    const base = 0x40000000;
    const a = mm.mmap({ addr: base, length: 64 * P, prot: PROT_READ, flags: MAP_SHARED | MAP_FIXED_NOREPLACE, file });
    let f0 = mm.rusage().minflt;
    mm.mlock(a, 64 * P);
    expect(mm.rusage().minflt - f0).toBe(4);
    const b = mm.mmap({ addr: base + 0x200000, length: 64 * P, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_FIXED_NOREPLACE, file });
    f0 = mm.rusage().minflt;
    mm.mlock(b, 64 * P);
    expect(mm.rusage().minflt - f0).toBe(64);
    // Private writable population breaks COW: every page is an anonymous copy (R8.3).
    expect(mm.pagemap(b, 64).every((p) => p.present && !p.file && p.exclusive)).toBe(true);
    const c = anon(64);
    f0 = mm.rusage().minflt;
    mm.mlock(c, 64 * P);
    expect(mm.rusage().minflt - f0).toBe(64);
    expect(file.page(0)!.mlocked).toBe(true);
  });

  it('R8.6 a page faulted into a locked ONFAULT VMA is mlocked; munmap un-mlocks it', () => {
    const va = anon(2);
    mm.mlock2(va, 2 * P, MLOCK_ONFAULT);
    mm.write(va, new Uint8Array([9]));
    const pfn = mm.pagemap(va, 1)[0].pfn;
    expect(mm.pagemap(va, 1)[0].mlocked).toBe(true);
    // A file page shared by a locked and an unlocked mapping stays mlocked until the locked one goes.
    const file = cachedFile(16);
    const x = mm.mmap({ length: 16 * P, prot: PROT_READ, flags: MAP_SHARED, file });
    const y = mm.mmap({ length: 16 * P, prot: PROT_READ, flags: MAP_SHARED, file });
    mm.touch(y, P);
    mm.mlock(x, P);
    expect(file.page(0)!.mlocked).toBe(true);
    mm.munmap(x, 16 * P);
    // munmap only queues the munlock on the mlock batch (6.18); a drain (MADV_COLD) clears it.
    expect(file.page(0)!.mlocked).toBe(true);
    const other = anon(1);
    mm.touch(other, P, 'write');
    mm.madvise(other, P, MADV_COLD);
    expect(file.page(0)!.mlocked).toBe(false);
    expect(pfn).toBeGreaterThan(0);
  });

  it('R8.7 mlockall: MCL_ONFAULT alone or 0 is EINVAL; MCL_CURRENT locks and populates; MCL_FUTURE locks new mappings', () => {
    expect(errno(() => mm.mlockall(MCL_ONFAULT))).toBe('EINVAL');
    expect(errno(() => mm.mlockall(0))).toBe('EINVAL');
    const a = anon(4);
    mm.mlockall(MCL_CURRENT);
    expect(present(a, 4)).toBe('PPPP');
    expect(mm.status().vmLck).toBe(4 * P);
    const b = anon(4);
    expect(mm.status().vmLck).toBe(4 * P); // CURRENT only
    mm.mlockall(MCL_FUTURE);
    const c = anon(4);
    expect(present(c, 4)).toBe('PPPP'); // created locked, populated at mmap time
    expect(mm.status().vmLck).toBe(8 * P);
    mm.munlockall();
    expect(mm.status().vmLck).toBe(0);
    const d = anon(2);
    expect(present(d, 2)).toBe('..');
    expect(present(b, 4)).toBe('....');
  });

  it('R8.7 on-fault-limit: with MCL_FUTURE|MCL_ONFAULT, mmap beyond RLIMIT_MEMLOCK fails with EAGAIN', () => {
    mm.setMemlockLimit(8 * P);
    mm.mlockall(MCL_FUTURE | MCL_ONFAULT);
    const a = anon(4);
    expect(present(a, 4)).toBe('....'); // on fault: not populated
    expect(errno(() => anon(8))).toBe('EAGAIN');
    expect(mm.status().vmLck).toBe(4 * P);
  });

  it('R9.4 MAP_LOCKED populates the mapping and counts VmLck (LTP mmap14)', () => {
    const va = anon(8, PROT_READ | PROT_WRITE, MAP_LOCKED);
    expect(present(va, 8)).toBe('PPPPPPPP');
    expect(mm.status().vmLck).toBe(8 * P);
  });

  it('R8.8 a locked private read-only VMA made writable is re-populated: the first write takes no fault', () => {
    const file = cachedFile(4);
    const va = mm.mmap({ length: 4 * P, prot: PROT_READ, flags: MAP_PRIVATE, file });
    mm.mlock(va, 4 * P);
    expect(mm.pagemap(va, 4).every((p) => p.present && p.file)).toBe(true);
    mm.mprotect(va, 4 * P, PROT_READ | PROT_WRITE);
    expect(mm.pagemap(va, 4).every((p) => p.present && !p.file && p.writable)).toBe(true);
    const f0 = mm.rusage().minflt;
    mm.write(va, new Uint8Array([1, 2, 3]));
    expect(mm.rusage().minflt).toBe(f0);
  });

  it('R5.5 fork: the child does not inherit locks; R9.1 DONTNEED on a locked range is EINVAL', () => {
    const va = anon(4);
    mm.mlock(va, 4 * P);
    const child = mm.fork();
    expect(child.status().vmLck).toBe(0);
    expect(child.maps().every((v) => (v.flags & 0x2000) === 0)).toBe(true);
    expect(errno(() => mm.madvise(va, 4 * P, 4 /* MADV_DONTNEED */))).toBe('EINVAL');
    child.destroy();
  });

  it('R8.4 special VMAs are never locked: mlock of a device (PFNMAP) or XIP (DAX) mapping succeeds, sets nothing, counts nothing', () => {
    const dev = mmu.createDevice(4 * P, {});
    const d = mm.mmap({ length: 4 * P, prot: PROT_READ | PROT_WRITE, flags: MAP_SHARED, file: dev });
    const xip = mmu.createXipFile(4 * P);
    const x = mm.mmap({ length: 4 * P, prot: PROT_READ, flags: MAP_SHARED, file: xip });
    mm.mlock(d, 4 * P);
    mm.mlock(x, 4 * P);
    expect(mm.status().vmLck).toBe(0);
    const vmas = mm.maps().filter((v) => v.start === d || v.start === x);
    expect(vmas).toHaveLength(2);
    expect(vmas.every((v) => (v.flags & 0x2000) === 0)).toBe(true); // no VM_LOCKED
    // mlockall locks the ordinary VMAs and still leaves these alone.
    const a = anon(2);
    mm.mlockall(MCL_CURRENT);
    expect(mm.status().vmLck).toBe(2 * P);
    expect(present(a, 2)).toBe('PP');
    mm.munlockall();
  });

  it('R8.6 reclaim never evicts mlocked pages, even when RAM is short', async () => {
    const small = await createMmu({ ramBytes: 4 << 20 });
    const m = small.createAddressSpace();
    const locked = m.mmap({ length: 64 * P, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    m.mlock(locked, 64 * P);
    m.write(locked, new Uint8Array([42]));
    const big = m.mmap({ length: 2048 * P, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    m.touch(big, 2048 * P, 'write'); // twice the RAM
    expect(small.stats().pswpout).toBeGreaterThan(0);
    expect(m.pagemap(locked, 64).every((p) => p.present && p.mlocked)).toBe(true);
    expect(m.read(locked, 1)[0]).toBe(42);
    expect(small.checkInvariants()).toEqual([]);
    m.destroy();
    // exit leaves its munlocks on the mlock batch (R8.6, 6.18) with their references; the
    // next lru_add_drain (here another process's MADV_COLD) frees the pages.
    const n = small.createAddressSpace();
    const v = n.mmap({ length: P, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    n.touch(v, P, 'write');
    n.madvise(v, P, MADV_COLD);
    n.destroy();
    expect(small.stats().freeFrames).toBe(small.stats().ramFrames - 1);
  });
});
