// Kernel-version and file-system behaviour as createMmu / openFile options (issue 15): each
// option with both values, the default being the newest kernel (Linux 6.18 on ext4). The
// conformance golden dirs of Debian 6.1 and the tmpfs profile check the same against kernels.
import { describe, it, expect } from 'vitest';
import { createMmu, MemoryFile, PROT_READ, PROT_WRITE, MAP_SHARED, MAP_PRIVATE, MADV_PAGEOUT, MADV_REMOVE,
  MS_SYNC, type MmuOptions } from '../../src/index.js';

const P = 4096;
const machine = (o: MmuOptions = {}) => createMmu({ ramBytes: 16 << 20, ...o });
/** A file of `pages` pages, page i filled with byte 0x80 | i. */
const fileBytes = (pages: number, last = P) => {
  const b = new Uint8Array((pages - 1) * P + last);
  for (let i = 0; i < pages; i++) b.fill(0x80 | i, i * P, Math.min(b.length, (i + 1) * P));
  return b;
};
const delta = (mm: { rusage(): { minflt: number; majflt: number } }, f: () => void) => {
  const a = mm.rusage();
  f();
  const b = mm.rusage();
  return [b.minflt - a.minflt, b.majflt - a.majflt];
};
const present = (mm: { pagemap(va: number, n: number): { present: boolean }[] }, va: number, n: number) =>
  mm.pagemap(va, n).map((e) => (e.present ? 'F' : '.')).join('');

describe('R11.5 userFaultAccounting: a user fault that dropped the lock for a page it found', () => {
  // MADV_PAGEOUT keeps a dirty shared file page cached with PG_reclaim, the bit PG_readahead
  // shares: the next fault on it starts readahead and drops the lock (retry).
  async function pageoutThenWrite(acct?: 'vma-lock' | 'mmap-lock') {
    const mmu = await machine(acct ? { userFaultAccounting: acct } : {});
    const mm = mmu.createAddressSpace();
    const file = mmu.openFile(new MemoryFile(fileBytes(2)));
    const va = mm.mmap({ length: 2 * P, prot: PROT_READ | PROT_WRITE, flags: MAP_SHARED, file });
    mm.write(va, Uint8Array.of(42));
    mm.madvise(va, 2 * P, MADV_PAGEOUT);
    expect(file.page(0)?.readahead).toBe(true); // PG_reclaim = PG_readahead
    const counts = delta(mm, () => mm.write(va, Uint8Array.of(43)));
    expect(mm.read(va, 1)[0]).toBe(43);
    expect(file.page(0)?.readahead).toBe(false); // the fault's readahead cleared it
    expect(mmu.checkInvariants()).toEqual([]);
    return counts;
  }

  it("R11.5 R11.6 'vma-lock' (default, 6.7+): the retry after the per-VMA lock has no FAULT_FLAG_TRIED: minor", async () => {
    expect(await pageoutThenWrite()).toEqual([1, 0]);
    expect(await pageoutThenWrite('vma-lock')).toEqual([1, 0]);
  });

  it("R11.5 R11.6 'mmap-lock' (before 6.7, Debian 6.1): every retry carries FAULT_FLAG_TRIED: major", async () => {
    expect(await pageoutThenWrite('mmap-lock')).toEqual([0, 1]);
  });

  it('R10.2 R11.5 a fault on the page truncate cached (valid buffers, not uptodate): minor on 6.7+, major before', async () => {
    for (const [acct, want] of [['vma-lock', [1, 0]], ['mmap-lock', [0, 1]]] as const) {
      const mmu = await machine({ userFaultAccounting: acct });
      const mm = mmu.createAddressSpace();
      const file = mmu.openFile(new MemoryFile(fileBytes(4)));
      file.truncate(2 * P + 100); // ends inside page 2: ext4 caches it to zero its tail
      expect(file.page(2)).not.toBeNull();
      const va = mm.mmap({ length: 3 * P, prot: PROT_READ, flags: MAP_SHARED, file });
      expect(delta(mm, () => expect(mm.read(va + 2 * P, 1)[0]).toBe(0x82))).toEqual(want);
      expect(mmu.checkInvariants()).toEqual([]);
    }
  });

  it('R11.6 a cold miss is major with either value (the first attempt is MAJOR)', async () => {
    for (const acct of ['vma-lock', 'mmap-lock'] as const) {
      const mmu = await machine({ userFaultAccounting: acct });
      const mm = mmu.createAddressSpace();
      const file = mmu.openFile(new MemoryFile(fileBytes(4)));
      const va = mm.mmap({ length: 4 * P, prot: PROT_READ, flags: MAP_PRIVATE, file });
      expect(delta(mm, () => mm.read(va, 1))).toEqual([0, 1]);
      expect(mmu.checkInvariants()).toEqual([]);
    }
  });

  it('userFaultAccounting takes only its two values', async () => {
    await expect(machine({ userFaultAccounting: 'sometimes' as 'vma-lock' })).rejects.toThrow(RangeError);
  });
});

describe('R2.4 MADV_PAGEOUT of a dirty file page leaves it marked: fault-around skips it (PG_reclaim = PG_readahead)', () => {
  it('R2.4 R2.9 a read of the neighbour maps only the neighbour; the marked page faults on its own, minor, reading nothing ahead', async () => {
    const mmu = await machine();
    const mm = mmu.createAddressSpace();
    const file = mmu.openFile(new MemoryFile(fileBytes(2)));
    file.prime(0, 2);
    const va = mm.mmap({ length: 2 * P, prot: PROT_READ | PROT_WRITE, flags: MAP_SHARED, file });
    mm.write(va, Uint8Array.of(7));
    mm.madvise(va, P, MADV_PAGEOUT);
    expect(present(mm, va, 2)).toBe('..');
    expect(delta(mm, () => mm.read(va + P, 1))).toEqual([1, 0]);
    expect(present(mm, va, 2)).toBe('.F'); // fault-around skipped the marked page 0
    expect(delta(mm, () => expect(mm.read(va, 1)[0]).toBe(7))).toEqual([1, 0]);
    expect(present(mm, va, 2)).toBe('FF');
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R10.0 writeback ends PG_reclaim: after fsync the page is no longer marked', async () => {
    const mmu = await machine();
    const mm = mmu.createAddressSpace();
    const backend = new MemoryFile(fileBytes(2));
    const file = mmu.openFile(backend);
    const va = mm.mmap({ length: 2 * P, prot: PROT_READ | PROT_WRITE, flags: MAP_SHARED, file });
    mm.write(va, Uint8Array.of(9));
    mm.madvise(va, P, MADV_PAGEOUT);
    expect(file.page(0)?.readahead).toBe(true);
    file.sync();
    expect(file.page(0)).toMatchObject({ readahead: false, dirty: false });
    expect(backend.bytes()[0]).toBe(9);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('R2.4 faultAroundIsize: fault-around with no PTE table when the first ready folio holds the last page', () => {
  // 4-page file, only page 3 cached, 8-page map: a read of page 7 (past EOF) is SIGBUS.
  async function eofFault(on?: boolean) {
    const mmu = await machine(on === undefined ? {} : { faultAroundIsize: on });
    const mm = mmu.createAddressSpace();
    const file = mmu.openFile(new MemoryFile(fileBytes(4)));
    file.prime(3, 1);
    const va = mm.mmap({ length: 8 * P, prot: PROT_READ, flags: MAP_PRIVATE, file });
    expect(() => mm.read(va + 7 * P, 1)).toThrow(expect.objectContaining({ signal: 'SIGBUS' }));
    const mapped = present(mm, va, 8);
    const next = delta(mm, () => expect(mm.read(va + 3 * P, 1)[0]).toBe(0x83));
    expect(mmu.checkInvariants()).toEqual([]);
    return { mapped, next };
  }

  it('R2.4 R10.1 true (default, 6.18 / 6.12.y): no table is installed, nothing mapped before the SIGBUS; page 3 then faults', async () => {
    expect(await eofFault()).toEqual({ mapped: '........', next: [1, 0] });
    expect(await eofFault(true)).toEqual({ mapped: '........', next: [1, 0] });
  });

  it('R2.4 R10.1 false (6.1): the table goes in and the EOF folio is mapped before the SIGBUS; page 3 takes no fault', async () => {
    expect(await eofFault(false)).toEqual({ mapped: '...F....', next: [0, 0] });
  });
});

describe('R10.2 truncateExtendZeroesTail: growing a file whose size ends inside a page', () => {
  it('R10.2 true (default, ext4 6.13 / 6.6.y / 6.12.y): the old EOF page is cached to zero its tail; false (6.1): nothing is cached', async () => {
    for (const [on, cached] of [[true, true], [false, false]] as const) {
      const mmu = await machine({ truncateExtendZeroesTail: on });
      const file = mmu.openFile(new MemoryFile(fileBytes(1, 1)));
      file.truncate(11 * P - 800);
      expect(file.page(0) !== null).toBe(cached);
      expect(file.pread(0, 2)).toEqual(Uint8Array.of(0x80, 0));
      expect(mmu.checkInvariants()).toEqual([]);
    }
  });
});

describe('openFile({ shmem }): a tmpfs file', () => {
  async function tmpfs() {
    const mmu = await machine();
    const mm = mmu.createAddressSpace();
    const backend = new MemoryFile(fileBytes(16));
    const file = mmu.openFile(backend, { shmem: true });
    return { mmu, mm, backend, file };
  }

  it('R2.9 R11.6 the data is in the page cache at open; a hole (past an old EOF) faults in one zeroed page, minor, no read-around', async () => {
    const { mmu, mm, file } = await tmpfs();
    expect(file.cachedPages).toBe(16);
    const va = mm.mmap({ length: 16 * P, prot: PROT_READ, flags: MAP_SHARED, file });
    expect(delta(mm, () => expect(mm.read(va + 5 * P, 1)[0]).toBe(0x85))).toEqual([1, 0]);
    file.truncate(8 * P);
    file.truncate(16 * P);
    expect(file.cachedPages).toBe(8);
    expect(delta(mm, () => expect(mm.read(va + 12 * P, 1)[0]).toBe(0))).toEqual([1, 0]);
    expect(present(mm, va + 8 * P, 8)).toBe('....F...'); // only the hole page itself
    expect(file.cachedPages).toBe(9);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.10 R10.0 no write-notify, and msync(MS_SYNC) writes nothing and leaves the PTE writable: the rewrite takes no fault', async () => {
    const { mmu, mm, backend, file } = await tmpfs();
    const va = mm.mmap({ length: 16 * P, prot: PROT_READ | PROT_WRITE, flags: MAP_SHARED, file });
    expect(delta(mm, () => mm.write(va, Uint8Array.of(1)))).toEqual([1, 0]);
    mm.msync(va, 16 * P, MS_SYNC);
    expect(delta(mm, () => mm.write(va, Uint8Array.of(2)))).toEqual([0, 0]);
    expect(backend.bytes()[0]).toBe(0x80); // the backend only supplied the initial bytes
    expect(file.pread(0, 1)[0]).toBe(2);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.1 MADV_REMOVE punches the page out of the cache: the next read is a zeroed hole page, minor', async () => {
    const { mmu, mm, file } = await tmpfs();
    const va = mm.mmap({ length: 16 * P, prot: PROT_READ | PROT_WRITE, flags: MAP_SHARED, file });
    mm.read(va, 1);
    mm.madvise(va + 3 * P, P, MADV_REMOVE);
    expect(file.page(3)).toBeNull();
    expect(delta(mm, () => expect(mm.read(va + 3 * P, 1)[0]).toBe(0))).toEqual([1, 0]);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('the file outlives its mappings (unlike shared anonymous memory) until closed', async () => {
    const { mmu, mm, file } = await tmpfs();
    const va = mm.mmap({ length: 16 * P, prot: PROT_READ, flags: MAP_SHARED, file });
    mm.read(va + P, 1);
    mm.munmap(va, 16 * P);
    expect(file.cachedPages).toBe(16);
    expect(file.pread(P, 1)[0]).toBe(0x81);
    file.close();
    expect(mmu.checkInvariants()).toEqual([]);
  });
});
