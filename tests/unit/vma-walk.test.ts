// System calls applied VMA by VMA, as Linux 6.18 does (issue 14, group A): mprotect, mlock,
// munlock and madvise over holes and refusing VMAs (R9.5, R8.1, R9.1), mlock without a flag
// change (R8.2), MADV_FREE on a locked VMA (R9.1), the COW of a locked private file page
// (R8.6), msync (R10.0) and guard markers across zaps (R1.5). Each case has a conformance
// scenario recorded on the kernel (named in the test).
import { describe, it, expect } from 'vitest';
import {
  MemoryFile, PROT_READ, PROT_WRITE, MAP_SHARED, MAP_PRIVATE, MAP_ANONYMOUS, MAP_LOCKED,
  MADV_DONTNEED, MADV_FREE, MADV_RANDOM, MADV_GUARD_INSTALL, MADV_COLLAPSE, MS_ASYNC, MS_INVALIDATE, MS_SYNC,
  SegmentationFault, type AddressSpace,
} from '../../src/index.js';
import { machine, anon, PG, RW, bytes, expectErrno, expectSegv, layout, faults } from './mm-helpers.js';

const AT = 0x2_0000_0000;

/** Page states: 'G' guard marker, 'P' present, '.' none. */
function states(mm: AddressSpace, va: number, n: number): string {
  return mm.pagemap(va, n).map((p) => (p.guard ? 'G' : p.present ? 'P' : '.')).join('');
}

/** Write one byte to each page. */
function touchAll(mm: AddressSpace, va: number, n: number): void {
  for (let i = 0; i < n; i++) mm.write(va + i * PG, bytes(1, 1));
}

function mlocked(mm: AddressSpace, va: number, n: number): string {
  return mm.pagemap(va, n).map((p) => (!p.present ? '.' : p.mlocked ? 'L' : '-')).join('');
}

describe('R9.5 R8.1 R9.1 a range with a hole: every VMA before it is changed, then ENOMEM', () => {
  it('R9.5 mprotect changes the VMAs up to the hole (and past the last VMA); from a hole it changes nothing (mprotect-hole-changes-vmas-before)', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 8, RW, 0, AT);
    touchAll(mm, va, 8);
    mm.munmap(va + 3 * PG, 2 * PG);
    expectErrno(() => mm.mprotect(va + 3 * PG, 4 * PG, PROT_READ), 'ENOMEM');
    expect(layout(mm)).toEqual([[va, va + 3 * PG, 'rw-p'], [va + 5 * PG, va + 8 * PG, 'rw-p']]);
    expectErrno(() => mm.mprotect(va, 8 * PG, PROT_READ), 'ENOMEM');
    expect(layout(mm)).toEqual([[va, va + 3 * PG, 'r--p'], [va + 5 * PG, va + 8 * PG, 'rw-p']]);
    expectSegv(() => mm.write(va, bytes(1, 2)), 'SEGV_ACCERR', va);
    const before = faults(mm);
    mm.write(va + 5 * PG, bytes(1, 2)); // after the hole: still writable, no fault
    expect(faults(mm)).toBe(before);
    expectErrno(() => mm.mprotect(va + 5 * PG, 6 * PG, PROT_READ), 'ENOMEM'); // runs past the last VMA
    expect(layout(mm)).toEqual([[va, va + 3 * PG, 'r--p'], [va + 5 * PG, va + 8 * PG, 'r--p']]);
    expectSegv(() => mm.write(va + 7 * PG, bytes(1, 2)), 'SEGV_ACCERR', va + 7 * PG);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.5 an EACCES VMA stops mprotect with the VMAs before it already changed', async () => {
    const { mmu, mm } = await machine();
    const file = mmu.openFile(new MemoryFile(new Uint8Array(4 * PG)), { readOnly: true });
    const a = anon(mm, 2, RW, 0, AT);
    mm.mmap({ addr: AT + 2 * PG, length: 2 * PG, prot: PROT_READ, flags: MAP_SHARED, file });
    expectErrno(() => mm.mprotect(a, 4 * PG, PROT_READ | PROT_WRITE | 4), 'EACCES');
    expect(layout(mm)).toEqual([[a, a + 2 * PG, 'rwxp'], [a + 2 * PG, a + 4 * PG, 'r--s']]);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R8.1 mlock, munlock and mlock2 lock VMA by VMA up to the hole and populate nothing (mlock-hole-locks-vmas-before)', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 8, RW, 0, AT);
    mm.write(va, bytes(1, 1));
    mm.write(va + 5 * PG, bytes(1, 1));
    mm.munmap(va + 3 * PG, 2 * PG);
    expectErrno(() => mm.mlock(va, 8 * PG), 'ENOMEM');
    expect(mm.status().vmLck).toBe(3 * PG);
    expect(mlocked(mm, va, 8)).toBe('L....-..');
    mm.write(va + PG, bytes(1, 1)); // a fault in the locked VMA mlocks the new page
    expect(mlocked(mm, va, 8)).toBe('LL...-..');
    expectErrno(() => mm.munlock(va, 8 * PG), 'ENOMEM');
    expect(mm.status().vmLck).toBe(0);
    expect(mlocked(mm, va, 8)).toBe('--...-..');
    expectErrno(() => mm.mlock2(va + 5 * PG, 6 * PG, 1), 'ENOMEM'); // MLOCK_ONFAULT, past the last VMA
    expect(mm.status().vmLck).toBe(3 * PG);
    expect(mlocked(mm, va, 8)).toBe('--...L..');
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.1 madvise stops at the first VMA that refuses: DONTNEED over [unlocked][locked] zaps the first, then EINVAL (madv-dontneed-stops-at-locked)', async () => {
    const { mmu, mm } = await machine();
    const a = anon(mm, 8, RW, 0, AT);
    touchAll(mm, a, 8);
    mm.mlock(a + 4 * PG, 4 * PG);
    expectErrno(() => mm.madvise(a, 8 * PG, MADV_DONTNEED), 'EINVAL');
    expect(states(mm, a, 8)).toBe('....PPPP');
    const b = anon(mm, 8, RW, 0, AT + 0x100_0000);
    touchAll(mm, b, 8);
    mm.mlock(b, 4 * PG);
    expectErrno(() => mm.madvise(b, 8 * PG, MADV_DONTNEED), 'EINVAL');
    expect(states(mm, b, 8)).toBe('PPPPPPPP');
    // A hole is skipped: both sides advised, ENOMEM at the end.
    const c = anon(mm, 8, RW, 0, AT + 0x200_0000);
    touchAll(mm, c, 8);
    mm.munmap(c + 3 * PG, 2 * PG);
    expectErrno(() => mm.madvise(c, 10 * PG, MADV_DONTNEED), 'ENOMEM');
    expect(states(mm, c, 8)).toBe('........');
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R1.5 R9.1 GUARD_INSTALL over [unlocked][locked] installs markers in the first VMA, then EINVAL (madv-guard-install-stops-at-locked)', async () => {
    const { mmu, mm } = await machine();
    const a = anon(mm, 8, RW, 0, AT);
    touchAll(mm, a, 8);
    mm.mlock(a + 4 * PG, 4 * PG);
    expectErrno(() => mm.madvise(a + 2 * PG, 6 * PG, MADV_GUARD_INSTALL), 'EINVAL');
    expect(states(mm, a, 8)).toBe('PPGGPPPP');
    expectSegv(() => mm.read(a + 2 * PG, 1), 'SEGV_MAPERR', a + 2 * PG);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.1 flag advice over [vma][hole][vma] changes both VMAs and reports ENOMEM', async () => {
    const { mmu, mm } = await machine();
    const a = anon(mm, 8, RW, 0, AT);
    mm.munmap(a + 3 * PG, 2 * PG);
    expectErrno(() => mm.madvise(a + PG, 6 * PG, MADV_RANDOM), 'ENOMEM');
    // Split at the advised range's edges only: [a, a+1) keeps its flags.
    expect(mm.maps().map((m) => [m.start, m.end])).toEqual([
      [a, a + PG], [a + PG, a + 3 * PG], [a + 5 * PG, a + 7 * PG], [a + 7 * PG, a + 8 * PG]]);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('R9.1 MADV_COLLAPSE', () => {
  it('is a known advice (length 0 succeeds) that every VMA refuses with EINVAL, as on 6.18.44 (madv-collapse-einval)', async () => {
    const { mmu, mm } = await machine();
    const a = anon(mm, 8, RW, 0, AT);
    mm.madvise(a, 0, MADV_COLLAPSE);
    expectErrno(() => mm.madvise(a, 8 * PG, MADV_COLLAPSE), 'EINVAL');
    touchAll(mm, a, 8);
    mm.munmap(a, 2 * PG);
    expectErrno(() => mm.madvise(a, 8 * PG, MADV_COLLAPSE), 'EINVAL'); // from a hole: the next VMA answers
    expectErrno(() => mm.madvise(a, PG, MADV_COLLAPSE), 'ENOMEM'); // only a hole
    expect(states(mm, a, 8)).toBe('..PPPPPP');
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('R8.2 mlock_fixup without a flag change leaves the VMA whole', () => {
  it('munlock of unlocked pages and mlock2(ONFAULT) of pages locked on fault split nothing; fault-around still maps 16 pages (mlock-unchanged-no-split)', async () => {
    const { mmu, mm } = await machine();
    const file = mmu.openFile(new MemoryFile(new Uint8Array(16 * PG).fill(7)));
    file.prime();
    const f = mm.mmap({ addr: AT, length: 16 * PG, prot: PROT_READ, flags: MAP_SHARED, file });
    mm.munlock(f + 4 * PG, 2 * PG);
    expect(layout(mm)).toEqual([[f, f + 16 * PG, 'r--s']]);
    mm.read(f, 1);
    expect(states(mm, f, 16)).toBe('P'.repeat(16));
    const g = mm.mmap({ addr: AT + 0x100_0000, length: 16 * PG, prot: PROT_READ, flags: MAP_SHARED, file });
    mm.mlock2(g, 16 * PG, 1);
    mm.mlock2(g + 4 * PG, 2 * PG, 1);
    expect(layout(mm).length).toBe(2);
    mm.read(g, 1);
    expect(states(mm, g, 16)).toBe('P'.repeat(16));
    expect(mm.status().vmLck).toBe(16 * PG);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('R9.1 MADV_FREE on a locked VMA', () => {
  it('is EINVAL (madvise_dontneed_free_valid_vma) and leaves the pages mapped and mlocked (madv-free-locked-einval)', async () => {
    const { mmu, mm } = await machine();
    const a = anon(mm, 8, RW, MAP_LOCKED, AT);
    expectErrno(() => mm.madvise(a, 8 * PG, MADV_FREE), 'EINVAL');
    expect(mlocked(mm, a, 8)).toBe('LLLLLLLL');
    const b = anon(mm, 4, RW, 0, AT + 0x100_0000);
    mm.madvise(b, 4 * PG, MADV_FREE); // unlocked anonymous: fine
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('R8.6 a COW copy in a locked VMA munlocks the page it replaces', () => {
  it('mlock of a private writable file mapping: the page-cache pages it had mapped end up not mlocked (mlock-private-cow-munlocks-cache)', async () => {
    const { mmu, mm } = await machine();
    const file = mmu.openFile(new MemoryFile(new Uint8Array(8 * PG).fill(3)));
    file.prime();
    const f = mm.mmap({ addr: AT, length: 8 * PG, prot: RW, flags: MAP_PRIVATE, file });
    const g = mm.mmap({ addr: AT + 0x100_0000, length: 8 * PG, prot: PROT_READ, flags: MAP_SHARED, file });
    for (let i = 0; i < 8; i++) mm.read(f + i * PG, 1);
    mm.mlock(f, 8 * PG);
    expect(mlocked(mm, f, 8)).toBe('LLLLLLLL');
    expect(mm.pagemap(f, 8).every((p) => p.present && !p.file)).toBe(true);
    mm.read(g, 1);
    expect(mlocked(mm, g, 8)).toBe('--------');
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('R10.0 msync: only MS_SYNC on a shared file mapping write-protects', () => {
  it('MS_ASYNC and MS_INVALIDATE leave the PTE writable; MS_SYNC cleans it; shmem is never touched (msync-async-no-writeprotect)', async () => {
    const { mmu, mm } = await machine();
    const backend = new MemoryFile(new Uint8Array(4 * PG));
    const file = mmu.openFile(backend);
    file.prime();
    const f = mm.mmap({ addr: AT, length: 4 * PG, prot: RW, flags: MAP_SHARED, file });
    mm.write(f, bytes(1, 9));
    let n = faults(mm);
    mm.msync(f, 4 * PG, MS_ASYNC);
    mm.write(f, bytes(1, 9));
    mm.msync(f, 4 * PG, MS_INVALIDATE);
    mm.write(f, bytes(1, 9));
    expect(faults(mm)).toBe(n);
    expect(backend.writes).toBe(0);
    mm.msync(f, 4 * PG, MS_SYNC);
    expect(backend.writes).toBe(1);
    expect(mm.pagemap(f, 1)[0].writable).toBe(false);
    mm.write(f, bytes(1, 9));
    expect(faults(mm)).toBe(n + 1);
    const s = mm.mmap({ addr: AT + 0x100_0000, length: 4 * PG, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS });
    mm.write(s, bytes(1, 9));
    n = faults(mm);
    mm.msync(s, 4 * PG, MS_SYNC);
    mm.write(s, bytes(1, 9));
    expect(faults(mm)).toBe(n);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('R1.5 guard markers survive every zap but munmap and exit', () => {
  it('MADV_DONTNEED and a truncate below them leave the markers; munmap drops them (guard-survives-zap)', async () => {
    const { mmu, mm } = await machine();
    const a = anon(mm, 8, RW, 0, AT);
    touchAll(mm, a, 8);
    mm.madvise(a + 2 * PG, 2 * PG, MADV_GUARD_INSTALL);
    mm.madvise(a, 8 * PG, MADV_DONTNEED);
    expect(states(mm, a, 8)).toBe('..GG....');
    expectSegv(() => mm.read(a + 2 * PG, 1), 'SEGV_MAPERR', a + 2 * PG);
    const file = mmu.openFile(new MemoryFile(new Uint8Array(8 * PG).fill(5)));
    file.prime();
    const f = mm.mmap({ addr: AT + 0x100_0000, length: 8 * PG, prot: PROT_READ, flags: MAP_SHARED, file });
    mm.read(f, 1);
    mm.madvise(f + 5 * PG, 2 * PG, MADV_GUARD_INSTALL);
    expect(states(mm, f, 8)).toBe('PPPPPGGP');
    file.truncate(2 * PG);
    expect(states(mm, f, 8)).toBe('PP...GG.');
    file.truncate(8 * PG);
    expectSegv(() => mm.read(f + 5 * PG, 1), 'SEGV_MAPERR', f + 5 * PG);
    expect(mmu.checkInvariants()).toEqual([]);
    mm.munmap(a + 2 * PG, PG);
    anon(mm, 1, RW, 0x10 /* MAP_FIXED */, a + 2 * PG);
    expect(states(mm, a + 2 * PG, 1)).toBe('.');
    expect(mm.read(a + 2 * PG, 1)[0]).toBe(0);
    expect(() => mm.read(a + 3 * PG, 1)).toThrow(SegmentationFault);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});
