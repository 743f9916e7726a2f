// Hostile inputs at the API (issue #10): bad numbers, unknown bits, misbehaving backends and
// swap devices, bad options. Each gives a typed error (LinuxError with Linux's errno,
// RangeError, BusError for an I/O error) and leaves the core consistent: checkInvariants()
// is empty and the Mmu keeps working. A trap inside the core marks the Mmu dead, and every
// later public call says so (CoreCrashedError).
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  createMmu, MemoryFile, MemorySwap, LinuxError, SegmentationFault, BusError, CoreCrashedError, OutOfMemoryError,
  PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS, MAP_FIXED, MAP_SHARED_VALIDATE, MADV_DONTNEED,
  MADV_PAGEOUT, MADV_WILLNEED, MS_SYNC, MS_ASYNC, MLOCK_ONFAULT, VM_FAULT_NOPAGE, VM_FAULT_LOCKED,
  type Mmu, type AddressSpace, type MmuOptions, type Backend, type File, type ErrnoName,
} from '../../src/index.js';

const P = 4096;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

type ErrClass = abstract new (...args: never[]) => Error;

/** `fn` throws an instance of `cls` (with this `code`, if given). */
function throwsTyped(fn: () => unknown, cls: ErrClass, code?: string): Error {
  let err: unknown = null;
  try { fn(); } catch (e) { err = e; }
  expect(err, `expected ${cls.name}${code ? ` ${code}` : ''}`).toBeInstanceOf(cls);
  if (code !== undefined) expect((err as { code?: string }).code).toBe(code);
  return err as Error;
}
const errno = (fn: () => unknown, ...codes: ErrnoName[]) => {
  const e = throwsTyped(fn, LinuxError) as LinuxError;
  expect(codes).toContain(e.code);
  return e;
};

/** A machine with data in an anonymous and a shared file mapping, and a check it still works. */
async function machine(opts: MmuOptions = {}) {
  const mmu = await createMmu({ ramBytes: 4 << 20, ...opts });
  const mm = mmu.createAddressSpace();
  const anon = mm.mmap({ length: 4 * P, prot: RW, flags: ANON });
  mm.write(anon, new Uint8Array([1, 2, 3]));
  const backend = new MemoryFile(new Uint8Array(4 * P).fill(0x5a));
  const file = mmu.openFile(backend);
  const shared = mm.mmap({ length: 4 * P, prot: RW, flags: MAP_SHARED, file });
  mm.write(shared + P, new Uint8Array([9]));
  /** The core is consistent, the data is intact, and new work succeeds. */
  const works = () => {
    expect(mmu.checkInvariants()).toEqual([]);
    expect([...mm.read(anon, 3)]).toEqual([1, 2, 3]);
    expect(mm.read(shared + P, 2)).toEqual(new Uint8Array([9, 0x5a]));
    const x = mm.mmap({ length: P, prot: RW, flags: ANON });
    mm.write(x, new Uint8Array([7]));
    expect(mm.read(x, 1)[0]).toBe(7);
    mm.munmap(x, P);
    expect(mmu.checkInvariants()).toEqual([]);
  };
  return { mmu, mm, anon, shared, file, backend, works };
}

const BAD_NUMBERS = [NaN, -1, -P, 0.5, P + 0.25, Infinity, -Infinity, 2 ** 48, 2 ** 53, 2 ** 64];

describe('hostile numbers: NaN, negative, non-integer, beyond 2^47, wrapping', () => {
  it('every range call: a bad address or length is a RangeError and changes nothing', async () => {
    const { mm, anon, works } = await machine();
    const calls: [string, (a: number, l: number) => unknown][] = [
      ['munmap', (a, l) => mm.munmap(a, l)], ['mprotect', (a, l) => mm.mprotect(a, l, PROT_READ)],
      ['madvise', (a, l) => mm.madvise(a, l, MADV_DONTNEED)], ['msync', (a, l) => mm.msync(a, l)],
      ['mlock', (a, l) => mm.mlock(a, l)], ['munlock', (a, l) => mm.munlock(a, l)],
      ['read', (a, l) => mm.read(a, l)], ['touch', (a, l) => mm.touch(a, l, 'write')],
      ['pagemap', (a, l) => mm.pagemap(a, l)], ['getUserPages', (a, l) => mm.getUserPages(a, l)],
    ];
    for (const [name, call] of calls) {
      for (const bad of BAD_NUMBERS) {
        if (bad !== 2 ** 64 || name !== 'read') throwsTyped(() => call(bad, P), RangeError); // bad address
        if (!Number.isInteger(bad) || bad < 0) throwsTyped(() => call(anon, bad), RangeError); // bad length
      }
    }
    for (const bad of BAD_NUMBERS) {
      throwsTyped(() => mm.mmap({ length: bad, prot: RW, flags: ANON }), Number.isInteger(bad) && bad >= 2 ** 48 ? LinuxError : RangeError);
      if (bad !== 2 ** 48 && bad !== 2 ** 53 && bad !== 2 ** 64) throwsTyped(() => mm.mmap({ addr: bad, length: P, prot: RW, flags: ANON }), RangeError);
      throwsTyped(() => mm.write(bad, new Uint8Array(1)), bad >= 2 ** 47 && Number.isInteger(bad) && bad < 2 ** 48 ? SegmentationFault : RangeError);
      if (!Number.isInteger(bad) || bad < 0) throwsTyped(() => mm.translate(bad), RangeError);
    }
    works();
  });

  it('addresses from 2^47 (above TASK_SIZE) and lengths that wrap: Linux errnos or SIGSEGV, never a mapping', async () => {
    const { mm, anon, works } = await machine();
    const high = 2 ** 47, top = 2 ** 48 - P;
    errno(() => mm.mmap({ addr: high, length: P, prot: RW, flags: ANON | MAP_FIXED }), 'ENOMEM');
    errno(() => mm.mmap({ addr: high - P, length: 2 * P, prot: RW, flags: ANON | MAP_FIXED }), 'ENOMEM');
    errno(() => mm.mmap({ addr: top, length: P, prot: RW, flags: ANON | MAP_FIXED }), 'ENOMEM');
    const hinted = mm.mmap({ addr: high + P, length: P, prot: RW, flags: ANON }); // a hint out of range is ignored
    expect(hinted).toBeLessThan(high);
    errno(() => mm.mmap({ length: high, prot: RW, flags: ANON }), 'ENOMEM');
    errno(() => mm.mmap({ length: 2 ** 64, prot: RW, flags: ANON }), 'ENOMEM');
    errno(() => mm.munmap(high, P), 'EINVAL');
    errno(() => mm.munmap(anon, 2 ** 64), 'EINVAL');
    errno(() => mm.mprotect(high, P, PROT_READ), 'ENOMEM');
    errno(() => mm.mprotect(anon, 2 ** 64, PROT_READ), 'ENOMEM');
    errno(() => mm.madvise(high, P, MADV_DONTNEED), 'ENOMEM');
    errno(() => mm.madvise(anon, 2 ** 64, MADV_WILLNEED), 'ENOMEM');
    errno(() => mm.msync(high, P), 'ENOMEM');
    errno(() => mm.msync(anon, 2 ** 64), 'ENOMEM', 'EINVAL');
    errno(() => mm.mlock(high, P), 'ENOMEM');
    errno(() => mm.mlock(anon, 2 ** 64), 'ENOMEM', 'EINVAL');
    errno(() => mm.munlock(top, 2 * P), 'ENOMEM', 'EINVAL');
    const e = throwsTyped(() => mm.read(high, 1), SegmentationFault, 'SEGV_MAPERR') as SegmentationFault;
    expect(e.address).toBe(high);
    throwsTyped(() => mm.touch(top, P), SegmentationFault, 'SEGV_MAPERR');
    expect(mm.pagemap(high, 2).every((p) => !p.present)).toBe(true);
    expect(mm.maps().every((m) => m.end <= high)).toBe(true);
    works();
  });

  it('fast-check: any numbers to every range call give a typed error or succeed, and the core stays consistent', async () => {
    const { mmu, mm } = await machine();
    const num = fc.oneof(fc.double(), fc.integer({ min: -(2 ** 31), max: 2 ** 31 }), fc.constantFrom(...BAD_NUMBERS, 0, P, 2 ** 47 - P),
      fc.nat({ max: 2 ** 20 }).map((n) => 0x7eff_ff00_0000 + n * P), fc.nat({ max: 2 ** 48 }));
    const typed = (e: unknown) => e instanceof RangeError || e instanceof LinuxError || e instanceof SegmentationFault ||
      e instanceof BusError || e instanceof OutOfMemoryError;
    fc.assert(fc.property(fc.nat(9), num, num, fc.integer({ min: -1, max: 2 ** 32 }), (which, a, l, bits) => {
      try {
        const len = Number.isFinite(l) ? Math.min(Math.abs(l), 64 * P) : l; // reads and touches stay small
        switch (which) {
          case 0: mm.munmap(a, l); break;
          case 1: mm.mprotect(a, l, bits); break;
          case 2: mm.madvise(a, l, bits); break;
          case 3: mm.msync(a, l, bits); break;
          case 4: mm.mlock2(a, len, bits); break;
          case 5: mm.read(a, len); break;
          case 6: mm.touch(a, len, bits % 2 ? 'write' : 'read'); break;
          case 7: mm.mmap({ addr: a, length: len, prot: bits, flags: ANON | (bits & MAP_FIXED) }); break;
          case 8: mm.munlock(a, l); break;
          default: mm.pagemap(a, Math.min(Math.abs(l) || 0, 64)); break;
        }
      } catch (e) {
        if (!typed(e)) throw e;
      }
      expect(mmu.checkInvariants()).toEqual([]);
    }), { seed: 10, numRuns: 400 });
    // What fast-check mapped or unmapped is its business; the machine still works.
    expect(mmu.checkInvariants()).toEqual([]);
    const x = mm.mmap({ length: P, prot: RW, flags: ANON });
    mm.write(x, new Uint8Array([4]));
    expect(mm.read(x, 1)[0]).toBe(4);
  });
});

describe('hostile bits: unknown prot, flags, advice; a file offset not page-aligned', () => {
  it('mmap: type 0 or anonymous MAP_SHARED_VALIDATE is EINVAL, unknown validated bits EOPNOTSUPP, offsets EINVAL / EOVERFLOW', async () => {
    const { mm, file, works } = await machine();
    errno(() => mm.mmap({ length: P, prot: RW, flags: MAP_ANONYMOUS }), 'EINVAL'); // no MAP_PRIVATE / MAP_SHARED
    errno(() => mm.mmap({ length: P, prot: RW, flags: 0 }), 'EBADF'); // a file mapping without a file
    errno(() => mm.mmap({ length: P, prot: RW, flags: MAP_SHARED_VALIDATE | MAP_ANONYMOUS | 0x200000 }), 'EINVAL');
    errno(() => mm.mmap({ length: P, prot: RW, flags: MAP_SHARED_VALIDATE | 0x200000, file }), 'EOPNOTSUPP');
    errno(() => mm.mmap({ length: P, prot: RW, flags: MAP_SHARED, file, offset: 100 }), 'EINVAL');
    errno(() => mm.mmap({ length: P, prot: RW, flags: MAP_SHARED, file, offset: P + 1 }), 'EINVAL');
    // x86-64 accepts offsets up to MAX_LFS_FILESIZE (file_mmap_ok); only past it EOVERFLOW (issue 18).
    errno(() => mm.mmap({ length: 2 * P, prot: RW, flags: MAP_SHARED, file, offset: 2 ** 63 }), 'EOVERFLOW');
    throwsTyped(() => mm.mmap({ length: P, prot: RW, flags: MAP_SHARED, file, offset: -P }), RangeError);
    throwsTyped(() => mm.mmap({ length: P, prot: RW, flags: MAP_SHARED, file, offset: NaN }), RangeError);
    throwsTyped(() => mm.mmap({ length: P, prot: -1, flags: ANON }), RangeError);
    throwsTyped(() => mm.mmap({ length: P, prot: RW, flags: 2 ** 32 }), RangeError);
    throwsTyped(() => mm.mmap(null as never), RangeError);
    errno(() => mm.mmap({ length: P, prot: RW, flags: MAP_SHARED, file: { id: file.id + 1000 } as File }), 'EBADF');
    errno(() => mm.mmap({ length: P, prot: RW, flags: ANON | MAP_FIXED, addr: 0x100001 }), 'EINVAL');
    // Unknown legacy flag bits and unknown prot bits are ignored by mmap, as Linux does.
    const x = mm.mmap({ length: P, prot: RW | 0x10, flags: ANON | 0x200000 });
    mm.write(x, new Uint8Array([1]));
    works();
  });

  it('mprotect, madvise, msync, mlock2, mlockall: unknown bits are EINVAL and change nothing', async () => {
    const { mm, anon, works } = await machine();
    errno(() => mm.mprotect(anon, P, 0x10), 'EINVAL');
    errno(() => mm.mprotect(anon, P, (PROT_READ | 0x80000000) >>> 0), 'EINVAL');
    errno(() => mm.mprotect(anon + 1, P, PROT_READ), 'EINVAL');
    for (const advice of [5, 6, 7, 26, 99, 1000, -1, 2 ** 31 - 1, -(2 ** 31)]) errno(() => mm.madvise(anon, P, advice), 'EINVAL');
    // Not an int: refused before the core sees it (2^32 + 4 would wrap to MADV_DONTNEED).
    for (const advice of [2 ** 32 + MADV_DONTNEED, 2 ** 31, 4.5, NaN]) throwsTyped(() => mm.madvise(anon, P, advice), RangeError);
    errno(() => mm.msync(anon, P, MS_SYNC | MS_ASYNC), 'EINVAL');
    errno(() => mm.msync(anon, P, 8), 'EINVAL');
    errno(() => mm.msync(anon + 1, P, MS_SYNC), 'EINVAL');
    errno(() => mm.mlock2(anon, P, MLOCK_ONFAULT | 2), 'EINVAL');
    errno(() => mm.mlockall(0), 'EINVAL');
    errno(() => mm.mlockall(8), 'EINVAL');
    errno(() => mm.munmap(anon + 1, P), 'EINVAL');
    errno(() => mm.munmap(anon, 0), 'EINVAL');
    throwsTyped(() => mm.touch(anon, P, 'bogus' as never), RangeError);
    throwsTyped(() => mm.write(anon, [1, 2] as never), RangeError);
    expect(mm.maps().find((m) => m.start === anon)?.perms).toBe('rw-p');
    works();
  });

  it('files: a bad size, offset or page range is a RangeError; a closed file is EBADF; a mapped one EBUSY to close', async () => {
    const { mmu, mm, file, works } = await machine();
    for (const bad of [NaN, -1, 0.5, 2 ** 54, Infinity]) {
      throwsTyped(() => file.truncate(bad), RangeError);
      throwsTyped(() => file.pwrite(bad, new Uint8Array(1)), RangeError);
      throwsTyped(() => file.pread(bad, 1), RangeError);
      if (!Number.isInteger(bad) || bad < 0) throwsTyped(() => file.prime(bad, 1), RangeError);
    }
    throwsTyped(() => file.evict(5, 1), RangeError);
    throwsTyped(() => file.prime(1, 2, { order: 1 }), RangeError);
    throwsTyped(() => file.prime(0, 8, { order: 3 }), RangeError); // past EOF
    errno(() => file.close(), 'EBUSY');
    const spare = mmu.openFile(new MemoryFile(P));
    spare.close();
    errno(() => spare.truncate(0), 'EBADF');
    errno(() => spare.sync(), 'EBADF');
    errno(() => mm.mmap({ length: P, prot: RW, flags: MAP_SHARED, file: spare }), 'EBADF');
    throwsTyped(() => mmu.openFile({ size: () => NaN, readPage: () => 0 }), RangeError);
    throwsTyped(() => mmu.openFile({ size: () => -1, readPage: () => 0 }), RangeError);
    throwsTyped(() => mmu.openFile({ size: () => 2 ** 54, readPage: () => 0 }), RangeError);
    throwsTyped(() => mmu.openFile({ size: () => 1 } as never), RangeError);
    const thrown = errno(() => mmu.openFile({ size: () => { throw new Error('stat failed'); }, readPage: () => 0 }), 'EIO');
    expect((thrown as Error & { cause?: unknown }).cause).toBeInstanceOf(Error);
    works();
  });

  it('the hardware layer: bad orders, frames, ASIDs; frames the core owns cannot be freed; an ASID of an address space is its own', async () => {
    const { mmu, mm, anon, works } = await machine();
    throwsTyped(() => mmu.phys.alloc(10), RangeError);
    throwsTyped(() => mmu.phys.alloc(-1), RangeError);
    throwsTyped(() => mmu.phys.read(mmu.phys.size - 1, 2), RangeError);
    throwsTyped(() => mmu.phys.write(-1, new Uint8Array(1)), RangeError);
    throwsTyped(() => mmu.walk(2 ** 31, 0, 'read'), RangeError);
    throwsTyped(() => mmu.walk(0, 2 ** 48, 'read'), RangeError);
    throwsTyped(() => mmu.tlb.translate(1, NaN, 0, 'read'), RangeError);
    throwsTyped(() => mmu.tlb.translate(4096, 0, 0, 'read'), RangeError);
    // A table pointer outside RAM reads as a reserved-bit fault (assembly/mmu.ts), nothing more.
    expect(mmu.walk(mmu.phys.frames + 5, 0, 'read')).toMatchObject({ ok: false });
    // The frame of an anonymous page, the zero page, a tail of a block: not the caller's to free.
    const pfn = mm.translate(anon) / P;
    errno(() => mmu.phys.free(pfn), 'EINVAL');
    errno(() => mmu.phys.free(mmu.phys.zeroPfn), 'EINVAL');
    const block = mmu.phys.alloc(2);
    errno(() => mmu.phys.free(block + 1), 'EINVAL');
    errno(() => mmu.phys.free(block, 1), 'EINVAL');
    mmu.phys.free(block, 2);
    errno(() => mmu.phys.free(block, 2), 'EINVAL'); // double free
    // An address space's ASID cannot be filled from other tables (it would map its addresses
    // to any frame), and a new address space never sees what its ASID cached before.
    const secret = mmu.phys.alloc();
    mmu.phys.write(secret * P, new Uint8Array([0x42]));
    const tables = [mmu.phys.alloc(), mmu.phys.alloc(), mmu.phys.alloc(), mmu.phys.alloc()];
    for (const t of tables) mmu.phys.write(t * P, new Uint8Array(P));
    const va = 0x40000000;
    const idx = (l: number) => Math.floor(va / 2 ** (12 + 9 * (l - 1))) % 512;
    for (let l = 4; l >= 1; l--) mmu.phys.writeU64(tables[4 - l] * P + idx(l) * 8, BigInt((l > 1 ? tables[5 - l] : secret) * P) | 7n);
    throwsTyped(() => mmu.tlb.translate(mm.asid, tables[0], va, 'read'), RangeError);
    const spaces: AddressSpace[] = [];
    let next = mmu.createAddressSpace();
    const unused = next.asid + 1;
    expect(mmu.tlb.translate(unused, tables[0], va, 'read')).toEqual({ ok: true, pa: secret * P });
    while (next.asid < unused) { spaces.push(next); next = mmu.createAddressSpace(); }
    expect(next.asid).toBe(unused);
    next.mmap({ addr: va, length: P, prot: RW, flags: ANON | MAP_FIXED });
    expect(next.read(va, 1)[0]).toBe(0); // its own zero page, not the secret
    works();
  });

  it('unpinUserPage: only a pin may be dropped, once (a wrong pfn used to free a mapped frame)', async () => {
    const { mm, anon, works } = await machine();
    const pfn = mm.translate(anon) / P;
    errno(() => mm.unpinUserPage(pfn), 'EINVAL'); // mapped, never pinned
    const [pinned] = mm.getUserPages(anon + P, 1, { pin: true, write: true });
    mm.unpinUserPage(pinned);
    errno(() => mm.unpinUserPage(pinned), 'EINVAL'); // the pin is gone
    errno(() => mm.unpinUserPage(2 ** 31), 'EINVAL');
    throwsTyped(() => mm.unpinUserPage(-1), LinuxError);
    works();
  });

  it('createMmu: options out of range are RangeErrors, and no Mmu is made', async () => {
    const bad: MmuOptions[] = [
      { ramBytes: 0 }, { ramBytes: -(2 << 20) }, { ramBytes: NaN }, { ramBytes: 3 << 19 }, { ramBytes: 2 ** 40 },
      { tlbEntries: 0 }, { tlbEntries: 3 }, { tlbEntries: 2 ** 21 }, { tlbEntries: NaN },
      { faultAroundBytes: 1000 }, { faultAroundBytes: 4 << 20 }, { faultAroundBytes: 0 },
      { swapBytes: -1 }, { swapBytes: 4097 }, { swapBytes: 2 ** 45 }, { xipBytes: 4096 }, { xipBytes: -(2 << 20) },
      { readaheadBytes: 0 }, { readaheadBytes: 1 << 30 }, { readaheadBytes: 5000 },
    ];
    for (const o of bad) await expect(createMmu(o), JSON.stringify(o)).rejects.toBeInstanceOf(RangeError);
    const { mmu, works } = await machine();
    throwsTyped(() => { mmu.faultAroundBytes = 3000; }, RangeError);
    throwsTyped(() => mmu.reclaim(-1), RangeError);
    throwsTyped(() => mmu.reclaim(NaN), RangeError);
    throwsTyped(() => mmu.pageState(-1), RangeError);
    expect(mmu.faultAroundBytes).toBe(65536);
    works();
  });
});

/** A file over `backend` (4 pages) mapped shared in `mm`. */
function mapBackend(mmu: Mmu, mm: AddressSpace, backend: Backend): [File, number] {
  const f = mmu.openFile(backend);
  return [f, mm.mmap({ length: 4 * P, prot: RW, flags: MAP_SHARED, file: f })];
}
const pages = (n = 4) => () => n * P;

describe('hostile backends and swap devices', () => {
  it('readPage that throws, returns too much, NaN, a fraction or a negative: BusError (an I/O error); the error is kept', async () => {
    const { mmu, mm, works } = await machine();
    const answers: [string, () => number][] = [
      ['throws', () => { throw new Error('disk on fire'); }], ['5000 bytes', () => 5000], ['NaN', () => NaN],
      ['1.5', () => 1.5], ['-1', () => -1], ['nothing', () => undefined as unknown as number],
    ];
    for (const [what, readPage] of answers) {
      const before = mmu.backendErrors.length;
      const [f, at] = mapBackend(mmu, mm, { size: pages(), readPage });
      const e = throwsTyped(() => mm.read(at + 5, 1), BusError) as BusError;
      expect(e.address, what).toBe(at + 5);
      expect(mmu.backendErrors.length, what).toBeGreaterThan(before);
      expect(f.cachedPages, what).toBe(0); // a failed read leaves nothing cached
    }
    // -EAGAIN from a synchronous call: LinuxError EAGAIN, nothing mapped.
    const [, at] = mapBackend(mmu, mm, { size: pages(), readPage: () => -11 });
    errno(() => mm.read(at, 1), 'EAGAIN');
    works();
  });

  it('a short read: the rest of the page reads as zeros', async () => {
    const { mmu, mm, works } = await machine();
    const [, at] = mapBackend(mmu, mm, { size: pages(), readPage: (_i, dst) => { dst.fill(0xee); return 100; } });
    const got = mm.read(at, P);
    expect(got.subarray(0, 100).every((b) => b === 0xee)).toBe(true);
    expect(got.subarray(100).every((b) => b === 0)).toBe(true);
    works();
  });

  it('a backend that fails once then recovers: nothing poisoned, the page reads right afterwards', async () => {
    const { mmu, mm, works } = await machine();
    let fail = true;
    const [, at] = mapBackend(mmu, mm, { size: pages(), readPage: (_i, dst) => { if (fail) throw new Error('transient'); dst.fill(3); return P; } });
    throwsTyped(() => mm.read(at, 1), BusError);
    fail = false;
    expect(mm.read(at, 1)[0]).toBe(3);
    works();
  });

  it('writePage that throws: msync, fsync and close are EIO, the data stays dirty and reaches the file once it recovers', async () => {
    const { mmu, mm, works } = await machine();
    const disk = new MemoryFile(4 * P);
    let fail = true;
    const backend: Backend = {
      size: () => disk.size(), readPage: (i, d) => disk.readPage(i, d),
      writePage: (i, s) => { if (fail) throw new Error('write error'); disk.writePage(i, s); },
    };
    const [f, at] = mapBackend(mmu, mm, backend);
    mm.write(at + 2 * P, new Uint8Array([0xab]));
    errno(() => mm.msync(at, 4 * P, MS_SYNC), 'EIO');
    errno(() => f.sync(), 'EIO');
    mm.munmap(at, 4 * P);
    errno(() => f.close(), 'EIO');
    expect(mmu.reclaim(64)).toBeGreaterThanOrEqual(0); // write-back under reclaim fails too: the page stays
    expect(f.dirtyPages).toBe(1);
    expect(disk.bytes()[2 * P]).toBe(0);
    const again = mm.mmap({ length: 4 * P, prot: RW, flags: MAP_SHARED, file: f });
    expect(mm.read(again + 2 * P, 1)[0]).toBe(0xab); // not lost
    fail = false;
    f.sync();
    expect(disk.bytes()[2 * P]).toBe(0xab);
    works();
  });

  it('fault, pageMkwrite and mapPages that throw or answer nonsense: SIGBUS, EAGAIN or a fallback, never a dead core', async () => {
    const { mmu, mm, works } = await machine();
    const base = { size: pages(), readPage: (_i: number, d: Uint8Array) => { d.fill(1); return P; } };
    let [, at] = mapBackend(mmu, mm, { ...base, fault: () => { throw new Error('fault'); } });
    throwsTyped(() => mm.read(at, 1), BusError);
    [, at] = mapBackend(mmu, mm, { ...base, fault: () => 0 }); // "done" without a page
    throwsTyped(() => mm.read(at, 1), BusError);
    [, at] = mapBackend(mmu, mm, { ...base, fault: () => VM_FAULT_LOCKED }); // LOCKED without a page
    throwsTyped(() => mm.read(at, 1), BusError);
    [, at] = mapBackend(mmu, mm, { ...base, fault: () => VM_FAULT_NOPAGE }); // "installed" but nothing is
    // x86 delivers every VM_FAULT_SIGBUS as BUS_ADRERR; the reason is the cause (issue 18).
    const e = throwsTyped(() => mm.read(at + 8, 1), BusError, 'BUS_ADRERR') as BusError;
    expect(e.address).toBe(at + 8);
    expect(String((e.cause as Error).message)).toMatch(/no progress/);
    [, at] = mapBackend(mmu, mm, { ...base, fault: () => 0xffffffff }); // bits no VM_FAULT_* flag has
    expect(String((throwsTyped(() => mm.read(at, 1), BusError).cause as Error).message)).toMatch(/VM_FAULT_/);
    [, at] = mapBackend(mmu, mm, { ...base, fault: (vmf) => { vmf.fillPage(vmf.pgoff, new Uint8Array(P + 1)); return VM_FAULT_LOCKED; } });
    throwsTyped(() => mm.read(at, 1), BusError);
    [, at] = mapBackend(mmu, mm, { ...base, mapPages: () => { throw new Error('map_pages'); } });
    expect(mm.read(at, 1)[0]).toBe(1); // fault-around failed: the page cache's fault still serves it
    [, at] = mapBackend(mmu, mm, { ...base, pageMkwrite: () => { throw new Error('mkwrite'); } });
    throwsTyped(() => mm.write(at, new Uint8Array([2])), BusError);
    expect(mm.read(at, 1)[0]).toBe(1); // the refused write changed nothing
    works();
  });

  it('a swap device that fails: writes leave the pages resident, a failed read is SIGBUS, and nothing is lost', async () => {
    let failWrites = true, failReads = false;
    const dev = new MemorySwap();
    const swapDevice = {
      readPage: (s: number, d: Uint8Array) => { if (failReads) throw new Error('swap read'); return dev.readPage(s, d); },
      writePage: (s: number, d: Uint8Array) => { if (failWrites) throw new Error('swap write'); dev.writePage(s, d); },
      discard: (s: number) => dev.discard(s),
    };
    const { mmu, mm, works } = await machine({ ramBytes: 2 << 20, swapDevice });
    const at = mm.mmap({ length: 32 * P, prot: RW, flags: ANON });
    for (let i = 0; i < 32; i++) mm.write(at + i * P, new Uint8Array([i + 1]));
    mm.madvise(at, 32 * P, MADV_PAGEOUT); // unmapped into the swap cache, but never written out
    expect(mmu.stats().pswpout).toBe(0);
    for (let i = 0; i < 32; i++) expect(mm.read(at + i * P, 1)[0]).toBe(i + 1);
    expect(mmu.checkInvariants()).toEqual([]);
    failWrites = false;
    mm.madvise(at, 32 * P, MADV_PAGEOUT);
    expect(mm.pagemap(at, 32).every((p) => p.swapped)).toBe(true);
    // PAGEOUT keeps the written copies in the swap cache (R11.6); reclaim frees them, so the
    // reads below must come from the device.
    expect(mmu.reclaim(32)).toBeGreaterThanOrEqual(32);
    failReads = true;
    const e = throwsTyped(() => mm.read(at + 3 * P, 1), BusError) as BusError; // Linux: VM_FAULT_SIGBUS
    expect(e.address).toBe(at + 3 * P);
    expect(mmu.checkInvariants()).toEqual([]);
    failReads = false;
    for (let i = 0; i < 32; i++) expect(mm.read(at + i * P, 1)[0]).toBe(i + 1);
    works();
  });
});

describe('a trap inside the core: the Mmu is dead, and says so in every later call', () => {
  /** Every public entry point, each expected to throw CoreCrashedError. */
  function entryPoints(mmu: Mmu, mm: AddressSpace, file: File, anon: number): [string, () => unknown][] {
    return [
      ['mm.mmap', () => mm.mmap({ length: P, prot: RW, flags: ANON })], ['mm.munmap', () => mm.munmap(anon, P)],
      ['mm.mprotect', () => mm.mprotect(anon, P, PROT_READ)], ['mm.madvise', () => mm.madvise(anon, P, MADV_DONTNEED)],
      ['mm.msync', () => mm.msync(anon, P)], ['mm.mlock', () => mm.mlock(anon, P)], ['mm.munlock', () => mm.munlock(anon, P)],
      ['mm.mlockall', () => mm.mlockall(1)], ['mm.munlockall', () => mm.munlockall()],
      ['mm.read', () => mm.read(anon, 1)], ['mm.write', () => mm.write(anon, new Uint8Array(1))],
      ['mm.touch', () => mm.touch(anon, P)], ['mm.translate', () => mm.translate(anon)], ['mm.pagemap', () => mm.pagemap(anon, 1)],
      ['mm.maps', () => mm.maps()], ['mm.smaps', () => mm.smaps()], ['mm.status', () => mm.status()], ['mm.rusage', () => mm.rusage()],
      ['mm.fork', () => mm.fork()], ['mm.getUserPages', () => mm.getUserPages(anon, 1)], ['mm.clearSoftDirty', () => mm.clearSoftDirty()],
      ['mm.setMemlockLimit', () => mm.setMemlockLimit(P)], ['mm.destroy', () => mm.destroy()],
      ['file.size', () => file.size], ['file.cachedPages', () => file.cachedPages], ['file.truncate', () => file.truncate(P)],
      ['file.prime', () => file.prime(0, 1)], ['file.evict', () => file.evict()], ['file.sync', () => file.sync()],
      ['file.pread', () => file.pread(0, 1)], ['file.pwrite', () => file.pwrite(0, new Uint8Array(1))], ['file.page', () => file.page(0)],
      ['file.close', () => file.close()],
      ['mmu.createAddressSpace', () => mmu.createAddressSpace()], ['mmu.openFile', () => mmu.openFile(new MemoryFile(P))],
      ['mmu.reclaim', () => mmu.reclaim(1)], ['mmu.stats', () => mmu.stats()], ['mmu.checkInvariants', () => mmu.checkInvariants()],
      ['mmu.walk', () => mmu.walk(0, 0, 'read')], ['mmu.faultAroundBytes=', () => { mmu.faultAroundBytes = 4096; }],
      ['mmu.prefaultOld=', () => { mmu.prefaultOld = true; }],
      ['mmu.pageState', () => mmu.pageState(1)], ['mmu.hypervisor.discard', () => mmu.hypervisor.discard(1)],
      ['mmu.phys.alloc', () => mmu.phys.alloc()], ['mmu.phys.free', () => mmu.phys.free(1)], ['mmu.phys.read', () => mmu.phys.read(0, 1)],
      ['mmu.phys.write', () => mmu.phys.write(0, new Uint8Array(1))], ['mmu.phys.readU64', () => mmu.phys.readU64(0)],
      ['mmu.phys.freeFrames', () => mmu.phys.freeFrames],
      ['mmu.tlb.translate', () => mmu.tlb.translate(100, 1, 0, 'read')], ['mmu.tlb.flushAll', () => mmu.tlb.flushAll()],
      ['mmu.tlb.view.lookup', () => mmu.tlb.view.lookup(mm.asid, anon, 0)], ['mmu.tlb.view.dump', () => mmu.tlb.view.dump()],
    ];
  }

  async function expectDead(mmu: Mmu, mm: AddressSpace, file: File, anon: number, reason: RegExp) {
    for (const [name, call] of entryPoints(mmu, mm, file, anon)) {
      const e = throwsTyped(call, CoreCrashedError) as CoreCrashedError;
      expect(e.reason, name).toMatch(reason);
    }
    await expect(mm.readAsync(anon, 1)).rejects.toBeInstanceOf(CoreCrashedError);
    await expect(mm.touchAsync(anon, P)).rejects.toBeInstanceOf(CoreCrashedError);
  }

  it('debug_trap (an `unreachable` in Wasm): CoreCrashedError now and from every public entry point after', async () => {
    const { mmu, mm, anon, file } = await machine();
    const e = throwsTyped(() => mmu.core.x.debug_trap(), CoreCrashedError) as CoreCrashedError;
    expect(e.reason).toMatch(/unreachable/);
    expect(e.cause).toBeInstanceOf(WebAssembly.RuntimeError);
    await expectDead(mmu, mm, file, anon, /unreachable/);
    // Another machine is its own instance: untouched.
    const other = await machine();
    other.works();
  });

  it('an exception thrown through the core by a host import: the core may be half-updated, so it is dead too', async () => {
    const { mmu, mm, anon, file } = await machine();
    const at = mm.mmap({ length: P, prot: RW, flags: MAP_SHARED, file: mmu.openFile(new MemoryFile(P)) });
    // Bypass the handler that catches backend errors: the throw unwinds the Wasm frames.
    mmu.core.host.readPage = () => { throw new TypeError('host glue bug'); };
    const e = throwsTyped(() => mm.read(at, 1), CoreCrashedError) as CoreCrashedError;
    expect(e.reason).toMatch(/TypeError thrown inside the core: host glue bug/);
    await expectDead(mmu, mm, file, anon, /host glue bug/);
  });

  it('a trap in a nested call that the host swallowed still fails the outer call', async () => {
    const { mmu, mm } = await machine();
    const f = mmu.openFile({
      size: pages(1), readPage: () => P,
      // The fault handler calls back into the core, which traps; the host's handler catches it.
      fault: () => { try { mmu.core.x.debug_trap(); } catch { /* swallowed */ } return 0; },
    });
    const at = mm.mmap({ length: P, prot: RW, flags: MAP_SHARED, file: f });
    const e = throwsTyped(() => mm.read(at, 1), CoreCrashedError) as CoreCrashedError;
    expect(e.reason).toMatch(/unreachable/);
    throwsTyped(() => mmu.stats(), CoreCrashedError);
  });
});
