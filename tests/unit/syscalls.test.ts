// The system calls of an address space (LINUX-SPEC §9): their error cases, with Linux's
// errno for each (checked against Linux 6.18 on the project's machine), MADV_DONTNEED
// (R9.1) and soft-dirty tracking (R9.9). Every failure must leave the core consistent.
import { describe, it, expect } from 'vitest';
import {
  LinuxError, MemoryFile, PROT_READ, PROT_WRITE, PROT_NONE, PROT_GROWSDOWN, PROT_GROWSUP, MAP_SHARED,
  MAP_PRIVATE, MAP_SHARED_VALIDATE, MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_LOCKED,
  MAP_SYNC, MAP_POPULATE, MADV_DONTNEED, MADV_DONTNEED_LOCKED, MADV_NORMAL, MADV_WILLNEED,
  MADV_RANDOM, MADV_DONTFORK, MAP_GROWSDOWN, MADV_REMOVE, MADV_POPULATE_READ, MADV_POPULATE_WRITE,
} from '../../src/index.js';
import { machine, anon, PG, RW, bytes, expectErrno, layout, expectFilled } from './mm-helpers.js';

const PROT_SEM = 0x8;
const TASK_SIZE = 2 ** 47 - PG;
const FIXED_AT = 0x2_0000_0000;

describe('§9 mmap: argument errors (mmap(2), Linux 6.18)', () => {
  it('R9.4 mmap length 0 is EINVAL; nothing is mapped', async () => {
    const { mmu, mm } = await machine();
    expectErrno(() => anon(mm, 0), 'EINVAL');
    expectErrno(() => mm.mmap({ length: 0, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS, addr: FIXED_AT }), 'EINVAL');
    expect(mm.maps()).toEqual([]);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.4 an unaligned MAP_FIXED or MAP_FIXED_NOREPLACE address is EINVAL; an unaligned hint is rounded down', async () => {
    const { mmu, mm } = await machine();
    expectErrno(() => anon(mm, 1, RW, MAP_FIXED, FIXED_AT + 1), 'EINVAL');
    expectErrno(() => anon(mm, 1, RW, MAP_FIXED_NOREPLACE, FIXED_AT + 0x800), 'EINVAL');
    expect(mm.maps()).toEqual([]);
    expect(anon(mm, 1, RW, 0, FIXED_AT + 1)).toBe(FIXED_AT);
    expect(anon(mm, 1, PROT_READ, 0, FIXED_AT + 2 * PG - 1)).toBe(FIXED_AT + PG);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.4 below mmap_min_addr (64 KiB): a hint is raised to it; MAP_FIXED there is EPERM (no CAP_SYS_RAWIO)', async () => {
    const { mmu, mm } = await machine();
    expect(anon(mm, 1, RW, 0, 0x8000)).toBe(0x10000);
    expect(anon(mm, 1, PROT_READ, 0, 0x8000)).not.toBe(0x10000); // taken now: top-down
    expectErrno(() => anon(mm, 1, RW, MAP_FIXED, 0x1000), 'EPERM');
    expectErrno(() => anon(mm, 16, RW, MAP_FIXED_NOREPLACE, 0), 'EPERM');
    expect(mm.status().mapCount).toBe(2);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.4 MAP_GROWSDOWN is for private anonymous memory only: shared or file mappings are EINVAL', async () => {
    const { mmu, mm } = await machine();
    const file = mmu.openFile(new MemoryFile(4 * PG));
    expectErrno(() => mm.mmap({ length: PG, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS | MAP_GROWSDOWN }), 'EINVAL');
    expectErrno(() => mm.mmap({ length: PG, prot: RW, flags: MAP_SHARED | MAP_GROWSDOWN, file }), 'EINVAL');
    expectErrno(() => mm.mmap({ length: PG, prot: RW, flags: MAP_PRIVATE | MAP_GROWSDOWN, file }), 'EINVAL');
    expect(mm.maps()).toEqual([]);
    const va = anon(mm, 1, RW, MAP_GROWSDOWN);
    expect(mm.maps()[0].start).toBe(va);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.4 a length past the 47-bit user address space is ENOMEM, and so is a fixed range ending above it', async () => {
    const { mmu, mm } = await machine();
    expectErrno(() => mm.mmap({ length: 2 ** 47, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS }), 'ENOMEM');
    expectErrno(() => mm.mmap({ length: 2 ** 48, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS }), 'ENOMEM');
    expectErrno(() => mm.mmap({ length: 2 ** 60, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS }), 'ENOMEM');
    expectErrno(() => mm.mmap({ length: TASK_SIZE, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS }), 'ENOMEM'); // no gap that big
    expectErrno(() => anon(mm, 2, RW, MAP_FIXED, TASK_SIZE - PG), 'ENOMEM');
    expectErrno(() => anon(mm, 1, RW, MAP_FIXED, TASK_SIZE), 'ENOMEM');
    expect(anon(mm, 1, RW, MAP_FIXED, TASK_SIZE - PG)).toBe(TASK_SIZE - PG); // the last page is fine
    // The other calls with lengths past the address space: Linux's answers.
    expectErrno(() => mm.mprotect(TASK_SIZE - PG, 2 ** 50, PROT_READ), 'ENOMEM');
    expectErrno(() => mm.madvise(TASK_SIZE - PG, 2 ** 60, MADV_NORMAL), 'ENOMEM');
    expectErrno(() => mm.munmap(TASK_SIZE - PG, 2 ** 50), 'EINVAL');
    expect(layout(mm)).toEqual([[TASK_SIZE - PG, TASK_SIZE, 'rw-p']]);
    // A large but placeable mapping works and costs nothing until touched.
    const big = mm.mmap({ length: 2 ** 40, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    expect(big % PG).toBe(0);
    mm.write(big + 2 ** 39, bytes(1, 1));
    expect(mm.status().rssAnon).toBe(PG);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.4 MAP_FIXED_NOREPLACE over any part of an existing mapping is EEXIST and changes nothing', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 3, RW, MAP_FIXED_NOREPLACE, FIXED_AT);
    expect(va).toBe(FIXED_AT);
    mm.write(va + PG, bytes(4, 9));
    const before = layout(mm);
    expectErrno(() => anon(mm, 1, RW, MAP_FIXED_NOREPLACE, va + PG), 'EEXIST'); // inside
    expectErrno(() => anon(mm, 3, RW, MAP_FIXED_NOREPLACE, va - 2 * PG), 'EEXIST'); // overlaps the head
    expectErrno(() => anon(mm, 2, RW, MAP_FIXED_NOREPLACE, va + 2 * PG), 'EEXIST'); // overlaps the tail
    expectErrno(() => anon(mm, 5, RW, MAP_FIXED_NOREPLACE, va - PG), 'EEXIST'); // covers it
    expect(layout(mm)).toEqual(before);
    expect(mm.read(va + PG, 4)).toEqual(bytes(4, 9));
    expect(anon(mm, 1, RW, MAP_FIXED_NOREPLACE, va + 3 * PG)).toBe(va + 3 * PG); // adjacent is fine
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.4 MAP_FIXED replaces what was there: old pages are zapped and freed', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 4, RW, MAP_FIXED, FIXED_AT);
    mm.write(va, bytes(4 * PG, 3));
    const free = mmu.stats().freeFrames;
    expect(anon(mm, 2, PROT_READ, MAP_FIXED, va + PG)).toBe(va + PG);
    expect(mmu.stats().freeFrames).toBe(free + 2);
    expect(layout(mm)).toEqual([[va, va + PG, 'rw-p'], [va + PG, va + 3 * PG, 'r--p'], [va + 3 * PG, va + 4 * PG, 'rw-p']]);
    expect(mm.read(va + PG, 2 * PG).every((b) => b === 0)).toBe(true);
    expect(mm.read(va + 3 * PG, 1)).toEqual(bytes(1, 3));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.4 flags with neither MAP_SHARED nor MAP_PRIVATE are EINVAL; unknown flags are ignored without MAP_SHARED_VALIDATE', async () => {
    const { mmu, mm } = await machine();
    expectErrno(() => mm.mmap({ length: PG, prot: RW, flags: MAP_ANONYMOUS }), 'EINVAL');
    expectErrno(() => mm.mmap({ length: PG, prot: RW, flags: MAP_ANONYMOUS | 0x4 }), 'EINVAL');
    expectErrno(() => mm.mmap({ length: PG, prot: RW, flags: MAP_ANONYMOUS | 0xc }), 'EINVAL');
    expect(mm.maps()).toEqual([]);
    const va = mm.mmap({ length: PG, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS | 0x20_0000 });
    expect(mm.maps()[0]).toMatchObject({ start: va, perms: 'rw-p' });
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.4 MAP_SHARED_VALIDATE: a file mapping with an unknown flag is EOPNOTSUPP; anonymous memory refuses the type itself (EINVAL)', async () => {
    const { mmu, mm } = await machine();
    const file = mmu.openFile(new MemoryFile(bytes(4 * PG, 0x61)));
    const map = (flags: number) => mm.mmap({ length: PG, prot: RW, flags, file });
    expectErrno(() => map(MAP_SHARED_VALIDATE | 0x20_0000), 'EOPNOTSUPP');
    expectErrno(() => map(MAP_SHARED_VALIDATE | 0x400), 'EOPNOTSUPP');
    expectErrno(() => map(MAP_SHARED_VALIDATE | MAP_SYNC), 'EOPNOTSUPP'); // not a DAX file
    expectErrno(() => mm.mmap({ length: PG, prot: RW, flags: MAP_SHARED_VALIDATE | MAP_FIXED_NOREPLACE, file, addr: FIXED_AT }), 'EOPNOTSUPP');
    expectErrno(() => mm.mmap({ length: PG, prot: RW, flags: MAP_SHARED_VALIDATE | MAP_ANONYMOUS }), 'EINVAL');
    expectErrno(() => mm.mmap({ length: PG, prot: RW, flags: MAP_SHARED_VALIDATE | MAP_ANONYMOUS | 0x20_0000 }), 'EINVAL');
    expect(mm.maps()).toEqual([]);
    // Known flags validate: the mapping is MAP_SHARED.
    const va = map(MAP_SHARED_VALIDATE | MAP_POPULATE);
    expect(mm.maps()[0]).toMatchObject({ start: va, perms: 'rw-s' });
    expect(mm.read(va, 2)).toEqual(bytes(2, 0x61));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.4 an offset that is not a multiple of the page size is EINVAL', async () => {
    const { mmu, mm } = await machine();
    const file = mmu.openFile(new MemoryFile(4 * PG));
    expectErrno(() => mm.mmap({ length: PG, prot: PROT_READ, flags: MAP_PRIVATE, file, offset: 100 }), 'EINVAL');
    expect(mm.maps()).toEqual([]);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('§9 munmap, mprotect, madvise: argument errors', () => {
  it('R9.11 munmap: unaligned address or length 0 is EINVAL; an unmapped range is not an error', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 2, RW, MAP_FIXED, FIXED_AT);
    mm.write(va, bytes(2 * PG, 1));
    expectErrno(() => mm.munmap(va + 1, PG), 'EINVAL');
    expectErrno(() => mm.munmap(va, 0), 'EINVAL');
    expectErrno(() => mm.munmap(va, 2 ** 48), 'EINVAL');
    expectErrno(() => mm.munmap(TASK_SIZE + PG, PG), 'EINVAL');
    expect(layout(mm)).toEqual([[va, va + 2 * PG, 'rw-p']]);
    mm.munmap(va + 16 * PG, 4 * PG); // nothing there
    mm.munmap(va + PG, 1); // the length is rounded up to a page
    expect(layout(mm)).toEqual([[va, va + PG, 'rw-p']]);
    expect(mm.status().rssAnon).toBe(PG);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.5 mprotect: unaligned start or an unknown prot bit is EINVAL; an unmapped range is ENOMEM; length 0 succeeds', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 2, RW, MAP_FIXED, FIXED_AT);
    mm.write(va, bytes(1, 1));
    expectErrno(() => mm.mprotect(va + 1, PG, PROT_READ), 'EINVAL');
    expectErrno(() => mm.mprotect(va, PG, 0x10), 'EINVAL');
    expectErrno(() => mm.mprotect(va, PG, 0x8000_0000), 'EINVAL');
    expectErrno(() => mm.mprotect(va, PG, PROT_READ | PROT_GROWSDOWN | PROT_GROWSUP), 'EINVAL');
    expectErrno(() => mm.mprotect(va + 8 * PG, PG, PROT_READ), 'ENOMEM');
    expectErrno(() => mm.mprotect(va - PG, 2 * PG, PROT_READ), 'ENOMEM'); // starts in a hole: nothing changes
    expect(layout(mm)).toEqual([[va, va + 2 * PG, 'rw-p']]);
    expect(mm.pagemap(va, 1)[0].writable).toBe(true);
    mm.mprotect(va + 8 * PG, 0, PROT_READ); // length 0: nothing to do, even unmapped
    mm.mprotect(va, PG, PROT_READ | PROT_SEM); // PROT_SEM is accepted
    expect(layout(mm)).toEqual([[va, va + PG, 'r--p'], [va + PG, va + 2 * PG, 'rw-p']]);
    // R9.5: a range running into a hole is changed VMA by VMA up to it, then ENOMEM
    // (do_mprotect_pkey's loop; scenario mprotect-hole-changes-vmas-before).
    expectErrno(() => mm.mprotect(va + PG, 2 * PG, PROT_READ), 'ENOMEM');
    expect(layout(mm)).toEqual([[va, va + 2 * PG, 'r--p']]);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.5 mprotect PROT_GROWSDOWN runs down to the start of a grows-down VMA; elsewhere it (and PROT_GROWSUP) is EINVAL', async () => {
    const { mmu, mm } = await machine();
    const X = 0x4000_0000_0000;
    anon(mm, 4, RW, MAP_GROWSDOWN | MAP_FIXED, X);
    const plain = anon(mm, 4, RW, MAP_FIXED, X + 0x10_0000_0000);
    mm.mprotect(X + 2 * PG, PG, PROT_READ | PROT_GROWSDOWN);
    expect(layout(mm).slice(0, 2)).toEqual([[X, X + 3 * PG, 'r--p'], [X + 3 * PG, X + 4 * PG, 'rw-p']]);
    mm.mprotect(X - PG, 4 * PG, RW | PROT_GROWSDOWN); // starts in the hole below: from X
    expect(layout(mm)[0]).toEqual([X, X + 4 * PG, 'rw-p']);
    expectErrno(() => mm.mprotect(plain + PG, PG, PROT_READ | PROT_GROWSDOWN), 'EINVAL');
    expectErrno(() => mm.mprotect(plain + PG, PG, PROT_READ | PROT_GROWSUP), 'EINVAL');
    expectErrno(() => mm.mprotect(X + PG, PG, PROT_READ | PROT_GROWSUP), 'EINVAL');
    expectErrno(() => mm.mprotect(X + 0x20_0000_0000, PG, PROT_READ | PROT_GROWSDOWN), 'ENOMEM');
    expect(layout(mm)).toEqual([[X, X + 4 * PG, 'rw-p'], [plain, plain + 4 * PG, 'rw-p']]);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.5 mprotect adding PROT_WRITE to a shared mapping of a read-only file is EACCES', async () => {
    const { mmu, mm } = await machine();
    const file = mmu.openFile(new MemoryFile(PG), { readOnly: true });
    const va = mm.mmap({ length: PG, prot: PROT_READ, flags: MAP_SHARED, file });
    expectErrno(() => mm.mprotect(va, PG, RW), 'EACCES');
    expect(layout(mm)).toEqual([[va, va + PG, 'r--s']]);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.1 madvise: unknown advice or an unaligned start is EINVAL; a hole or unmapped range is ENOMEM; length 0 succeeds', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 2, RW, MAP_FIXED, FIXED_AT);
    mm.write(va, bytes(2 * PG, 5));
    for (const advice of [5, 6, 7, 999, -1, 0x7fff_ffff]) expectErrno(() => mm.madvise(va, PG, advice), 'EINVAL');
    expectErrno(() => mm.madvise(va + 1, PG, MADV_DONTNEED), 'EINVAL');
    expectErrno(() => mm.madvise(va + 8 * PG, PG, MADV_DONTNEED), 'ENOMEM');
    expectErrno(() => mm.madvise(va + PG, 2 * PG, MADV_NORMAL), 'ENOMEM');
    mm.madvise(va + 8 * PG, 0, MADV_DONTNEED);
    expect(mm.pagemap(va, 2).every((p) => p.present)).toBe(true);
    // A hole: the mapped part is still advised (Linux applies it, then reports ENOMEM).
    expectErrno(() => mm.madvise(va + PG, 2 * PG, MADV_DONTNEED), 'ENOMEM');
    expect(mm.pagemap(va, 2).map((p) => p.present)).toEqual([true, false]);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.1 MADV_DONTNEED on a VM_LOCKED range is EINVAL and zaps nothing; MADV_DONTNEED_LOCKED zaps it', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 2, RW, MAP_LOCKED);
    expect(mm.pagemap(va, 2).every((p) => p.present)).toBe(true); // MAP_LOCKED populates (R9.4)
    mm.write(va, bytes(2 * PG, 6));
    expectErrno(() => mm.madvise(va, 2 * PG, MADV_DONTNEED), 'EINVAL');
    expectErrno(() => mm.madvise(va + PG, PG, MADV_DONTNEED), 'EINVAL');
    expectFilled(mm.read(va, 2 * PG), 6);
    mm.madvise(va, 2 * PG, MADV_DONTNEED_LOCKED);
    expect(mm.pagemap(va, 2).every((p) => !p.present)).toBe(true);
    expectFilled(mm.read(va, 2 * PG), 0);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.1 MADV_DONTFORK on a range with a hole splits and flags the mapped part, then reports ENOMEM', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 4, RW, MAP_FIXED, FIXED_AT);
    expectErrno(() => mm.madvise(va + 2 * PG, 4 * PG, MADV_DONTFORK), 'ENOMEM');
    expect(mm.maps().map((v) => [v.start, v.end, (v.flags & 0x20000) !== 0])).toEqual([
      [va, va + 2 * PG, false], [va + 2 * PG, va + 4 * PG, true]]);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('§9 arguments the host refuses before the core sees them (RangeError)', () => {
  it('NaN, negative, infinite and non-integer arguments throw RangeError and change nothing', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 1);
    const bad = [NaN, -1, -PG, 1.5, Infinity, -Infinity, '4096' as unknown as number];
    for (const x of bad) {
      expect(() => mm.mmap({ length: x, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS })).toThrow(RangeError);
      expect(() => mm.mmap({ length: PG, prot: x, flags: MAP_PRIVATE | MAP_ANONYMOUS })).toThrow(RangeError);
      expect(() => mm.mmap({ length: PG, prot: RW, flags: x })).toThrow(RangeError);
      expect(() => mm.mmap({ length: PG, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS, addr: x })).toThrow(RangeError);
      expect(() => mm.munmap(x, PG)).toThrow(RangeError);
      expect(() => mm.munmap(va, x)).toThrow(RangeError);
      expect(() => mm.mprotect(x, PG, PROT_READ)).toThrow(RangeError);
      expect(() => mm.mprotect(va, x, PROT_READ)).toThrow(RangeError);
      expect(() => mm.mprotect(va, PG, x)).toThrow(RangeError);
      expect(() => mm.madvise(x, PG, MADV_DONTNEED)).toThrow(RangeError);
      expect(() => mm.madvise(va, x, MADV_DONTNEED)).toThrow(RangeError);
      expect(() => mm.touch(x, PG)).toThrow(RangeError);
      expect(() => mm.touch(va, x)).toThrow(RangeError);
      expect(() => mm.read(va, x)).toThrow(RangeError);
      expect(() => mm.read(x, 1)).toThrow(RangeError);
      expect(() => mm.pagemap(x, 1)).toThrow(RangeError);
      expect(() => mm.pagemap(va, x)).toThrow(RangeError);
    }
    for (const x of [NaN, 1.5, Infinity]) expect(() => mm.madvise(va, PG, x)).toThrow(RangeError);
    expect(() => mm.mmap({ length: PG, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS, addr: 2 ** 48 })).toThrow(RangeError);
    expect(() => mm.mmap(undefined as never)).toThrow(RangeError);
    expect(() => mm.touch(va, PG, 'poke' as never)).toThrow(RangeError);
    expect(() => mm.write(va, [1, 2] as never)).toThrow(RangeError);
    expect(layout(mm)).toEqual([[va, va + PG, 'rw-p']]);
    expect(mm.rusage()).toEqual({ minflt: 0, majflt: 0 });
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('a destroyed address space refuses every call with LinuxError', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 1);
    mm.destroy();
    expect(() => mm.read(va, 1)).toThrow(LinuxError);
    expect(() => anon(mm, 1)).toThrow(LinuxError);
    expect(() => mm.fork()).toThrow(LinuxError);
    mm.destroy(); // idempotent
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('§9 MADV_DONTNEED (R9.1)', () => {
  it('R9.1 private anon: the pages are freed and gone from pagemap; the next read gives zeros (the zero page)', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 8);
    mm.write(va, bytes(8 * PG, 0xee));
    const free = mmu.stats().freeFrames;
    mm.madvise(va + 2 * PG, 4 * PG, MADV_DONTNEED);
    expect(mm.pagemap(va, 8).map((p) => p.present)).toEqual([true, true, false, false, false, false, true, true]);
    expect(mm.status().rssAnon).toBe(4 * PG);
    expect(mmu.stats().freeFrames).toBe(free + 4); // the page table stays (R9.1)
    expect(layout(mm)).toEqual([[va, va + 8 * PG, 'rw-p']]); // no split
    const f = mm.rusage().minflt;
    const got = mm.read(va, 8 * PG);
    expectFilled(got.subarray(0, 2 * PG), 0xee);
    expectFilled(got.subarray(2 * PG, 6 * PG), 0);
    expectFilled(got.subarray(6 * PG), 0xee);
    expect(mm.rusage().minflt).toBe(f + 4);
    expect(mm.pagemap(va + 2 * PG, 4).every((p) => p.zeroPage)).toBe(true);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.1 "even cows": DONTNEED of a page shared after fork drops only this side\'s mapping', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 1);
    mm.write(va, bytes(PG, 0x21));
    const child = mm.fork();
    mm.madvise(va, PG, MADV_DONTNEED);
    expectFilled(mm.read(va, PG), 0);
    expectFilled(child.read(va, PG), 0x21);
    expect(child.pagemap(va, 1)[0].exclusive).toBe(true);
    child.write(va, bytes(1, 0)); // now reused: the last mapping
    expect(mmu.stats().cowCopies).toBe(0);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.1 shared anonymous (shmem): the data survives DONTNEED; the next access is a minor fault', async () => {
    const { mmu, mm } = await machine();
    const va = mm.mmap({ length: 2 * PG, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS });
    mm.write(va, bytes(2 * PG, 0x31));
    mm.madvise(va, 2 * PG, MADV_DONTNEED);
    expect(mm.pagemap(va, 2).every((p) => !p.present)).toBe(true);
    expect(mm.status().rssShmem).toBe(0);
    const r = mm.rusage();
    expectFilled(mm.read(va, 2 * PG), 0x31);
    expect(mm.rusage().majflt).toBe(r.majflt);
    expect(mm.rusage().minflt).toBeGreaterThan(r.minflt);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.1 MADV_REMOVE punches a hole in shared anonymous memory: every sharer reads zeros; private memory is EINVAL', async () => {
    const { mmu, mm } = await machine();
    const va = mm.mmap({ length: 4 * PG, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS });
    mm.write(va, bytes(4 * PG, 0x41));
    const child = mm.fork();
    child.read(va, 4 * PG);
    const free = mmu.stats().freeFrames;
    mm.madvise(va + PG, 2 * PG, MADV_REMOVE);
    expect(mmu.stats().freeFrames).toBe(free + 2); // the shmem pages themselves are gone
    expect(child.pagemap(va, 4).map((p) => p.present)).toEqual([true, false, false, true]);
    const got = child.read(va, 4 * PG);
    expectFilled(got.subarray(0, PG), 0x41);
    expectFilled(got.subarray(PG, 3 * PG), 0);
    expectFilled(got.subarray(3 * PG), 0x41);
    expectFilled(mm.read(va + PG, 2 * PG), 0);
    const priv = anon(mm, 1);
    expectErrno(() => mm.madvise(priv, PG, MADV_REMOVE), 'EINVAL');
    const locked = mm.mmap({ length: PG, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS | MAP_LOCKED });
    expectErrno(() => mm.madvise(locked, PG, MADV_REMOVE), 'EINVAL');
    const ro = mm.mmap({ length: PG, prot: PROT_READ, flags: MAP_SHARED | MAP_ANONYMOUS });
    mm.madvise(ro, PG, MADV_REMOVE); // read-only but may be written: allowed
    const file = mmu.openFile(new MemoryFile(bytes(PG, 1)));
    const fp = mm.mmap({ length: PG, prot: RW, flags: MAP_PRIVATE, file });
    expectErrno(() => mm.madvise(fp, PG, MADV_REMOVE), 'EACCES'); // a file, but private
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.1 advice that only changes flags (WILLNEED, RANDOM) on anon memory keeps pages and data', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 2);
    mm.write(va, bytes(2 * PG, 0x44));
    mm.madvise(va, 2 * PG, MADV_WILLNEED);
    mm.madvise(va, PG, MADV_RANDOM);
    expect(mm.maps().length).toBe(2);
    mm.madvise(va, PG, MADV_NORMAL);
    expect(mm.maps().length).toBe(1); // merged again
    expectFilled(mm.read(va, 2 * PG), 0x44);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('§9 MADV_POPULATE_READ / WRITE on anonymous memory (R9.3)', () => {
  it('R9.3 POPULATE_READ maps the zero page without soft-dirty; POPULATE_WRITE allocates, soft-dirty; both count minor faults', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 4);
    mm.clearSoftDirty();
    mm.madvise(va, 4 * PG, MADV_POPULATE_READ);
    expect(mm.pagemap(va, 4).every((p) => p.present && p.zeroPage && !p.softDirty)).toBe(true);
    expect(mm.rusage()).toEqual({ minflt: 4, majflt: 0 });
    mm.madvise(va, 4 * PG, MADV_POPULATE_WRITE);
    expect(mm.pagemap(va, 4).every((p) => p.present && !p.zeroPage && p.exclusive && p.writable && p.softDirty)).toBe(true);
    expect(mm.rusage()).toEqual({ minflt: 8, majflt: 0 });
    expect(mm.status().rssAnon).toBe(4 * PG);
    mm.madvise(va, 4 * PG, MADV_POPULATE_WRITE); // already there: nothing more
    expect(mm.rusage()).toEqual({ minflt: 8, majflt: 0 });
    expectFilled(mm.read(va, 4 * PG), 0);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.3 POPULATE_WRITE breaks COW after fork; errors: no permission is EINVAL, a hole is ENOMEM', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 2);
    mm.write(va, bytes(2 * PG, 0x71));
    const child = mm.fork();
    mm.madvise(va, 2 * PG, MADV_POPULATE_WRITE);
    expect(mm.pagemap(va, 2).every((p) => p.exclusive && p.writable)).toBe(true);
    expect(mmu.stats().cowCopies).toBe(2);
    expectFilled(child.read(va, 2 * PG), 0x71);
    const ro = anon(mm, 1, PROT_READ);
    const none = anon(mm, 1, PROT_NONE);
    expectErrno(() => mm.madvise(ro, PG, MADV_POPULATE_WRITE), 'EINVAL');
    expectErrno(() => mm.madvise(none, PG, MADV_POPULATE_READ), 'EINVAL');
    mm.madvise(ro, PG, MADV_POPULATE_READ);
    expectErrno(() => mm.madvise(va + PG, 4 * PG, MADV_POPULATE_READ), 'ENOMEM');
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('§9 soft-dirty (R9.9)', () => {
  it('R9.9 a new VMA reports soft-dirty on every page, populated or not; clearSoftDirty clears it', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 3);
    mm.write(va, bytes(1, 1));
    expect(mm.pagemap(va, 3).map((p) => p.softDirty)).toEqual([true, true, true]);
    mm.clearSoftDirty();
    expect(mm.pagemap(va, 3).map((p) => p.softDirty)).toEqual([false, false, false]);
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ present: true, writable: false }); // write-protected
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.9 after clearing, a read fault does not set soft-dirty; a write does (and costs a fault)', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 3);
    mm.write(va, bytes(1, 1));
    mm.clearSoftDirty();
    mm.touch(va + PG, PG, 'read');
    expect(mm.pagemap(va + PG, 1)[0]).toMatchObject({ present: true, zeroPage: true, softDirty: false });
    const f = mm.rusage().minflt;
    const s = mmu.stats();
    mm.write(va, bytes(1, 2)); // write-protected by the clear: a fault that reuses the page
    expect(mm.rusage().minflt).toBe(f + 1);
    expect(mmu.stats().cowCopies).toBe(s.cowCopies);
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ softDirty: true, writable: true });
    mm.write(va + PG, bytes(1, 3)); // the zero page: a copy, soft-dirty
    expect(mm.pagemap(va + PG, 1)[0]).toMatchObject({ softDirty: true, zeroPage: false });
    expect(mm.pagemap(va + 2 * PG, 1)[0]).toMatchObject({ present: false, softDirty: false });
    mm.write(va + 2 * PG, bytes(1, 4)); // a first write
    expect(mm.pagemap(va + 2 * PG, 1)[0].softDirty).toBe(true);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.9 mprotect RO→RW keeps a clean page read-only while tracking: the write faults and sets soft-dirty', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 2);
    mm.write(va, bytes(2 * PG, 1));
    mm.clearSoftDirty();
    mm.write(va + PG, bytes(1, 2)); // page 1 is soft-dirty again
    mm.mprotect(va, 2 * PG, PROT_READ);
    mm.mprotect(va, 2 * PG, RW);
    const [p0, p1] = mm.pagemap(va, 2);
    expect(p0).toMatchObject({ softDirty: false, writable: false, exclusive: true });
    expect(p1).toMatchObject({ softDirty: true, writable: true }); // R9.7: it may skip its fault
    const f = mm.rusage().minflt;
    mm.write(va + PG, bytes(1, 3));
    expect(mm.rusage().minflt).toBe(f);
    mm.write(va, bytes(1, 4));
    expect(mm.rusage().minflt).toBe(f + 1);
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ softDirty: true, writable: true });
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.9 a new mapping (even one merged into a tracked VMA) reports soft-dirty again', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 2, RW, MAP_FIXED, FIXED_AT);
    mm.clearSoftDirty();
    expect(mm.pagemap(va, 2).some((p) => p.softDirty)).toBe(false);
    anon(mm, 1, RW, MAP_FIXED, va + 2 * PG);
    expect(layout(mm)).toEqual([[va, va + 3 * PG, 'rw-p']]); // merged
    expect(mm.pagemap(va, 3).map((p) => p.softDirty)).toEqual([true, true, true]);
    const other = anon(mm, 1, PROT_NONE);
    expect(mm.pagemap(other, 1)[0].softDirty).toBe(true);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.9 a write through a shared anonymous mapping after clearing faults and sets soft-dirty (write-notify)', async () => {
    const { mmu, mm } = await machine();
    const va = mm.mmap({ length: PG, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS });
    mm.write(va, bytes(1, 1));
    mm.clearSoftDirty();
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ softDirty: false, writable: false, present: true });
    const f = mm.rusage().minflt;
    mm.write(va, bytes(1, 2));
    expect(mm.rusage().minflt).toBe(f + 1);
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ softDirty: true, writable: true });
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

void PROT_WRITE;
