// Issue 18 item 1: every count and length is checked before anything is allocated. A huge
// pagemap is refused with a RangeError naming the limit (pagemapEntries streams any range);
// read() of a range no VMA covers faults up to the hole and raises SIGSEGV there (R1.1 step
// 1) without allocating the result first; past Linux's MAX_RW_COUNT it is a RangeError.
import { describe, it, expect } from 'vitest';
import { MemoryFile, MAX_RW_COUNT, MAX_PAGES_PER_CALL, MAP_SHARED, MAP_PRIVATE, MAP_ANONYMOUS, MAP_NORESERVE,
  PROT_READ } from '../../src/index.js';
import { machine, anon, expectSegv, RW, PG } from './mm-helpers.js';

function rangeError(fn: () => unknown): RangeError {
  let err: unknown;
  try { fn(); } catch (e) { err = e; }
  expect(err).toBeInstanceOf(RangeError);
  return err as RangeError;
}

describe('bounds before allocation (issue 18 item 1)', () => {
  it('pagemap(va, 1e9) and (va, 2^40): a RangeError naming MAX_PAGES_PER_CALL', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 4);
    for (const count of [1e9, 2 ** 40]) {
      const e = rangeError(() => mm.pagemap(va, count));
      expect(e.message).toMatch(new RegExp(`count ${count} is more than the ${MAX_PAGES_PER_CALL} pages`));
      expect(e.message).toMatch(/pagemapEntries/);
    }
    expect(mm.pagemap(va, MAX_PAGES_PER_CALL).length).toBe(MAX_PAGES_PER_CALL);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('pagemapEntries streams a 2^40-page range lazily and agrees with pagemap', async () => {
    const { mmu, mm } = await machine();
    const len = 2 ** 44;
    const va = mm.mmap({ length: len, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE });
    mm.write(va + PG, new Uint8Array([1]));
    const it = mm.pagemapEntries(va, 2 ** 40)[Symbol.iterator]();
    const first = [it.next().value, it.next().value, it.next().value];
    expect(first.map((p) => p!.present)).toEqual([false, true, false]);
    expect(first).toEqual(mm.pagemap(va, 3));
    // The caller stops whenever it likes; nothing else was read.
    let n = 3;
    for (let r = it.next(); !r.done && n < 5000; r = it.next()) n++;
    expect(n).toBe(5000);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R1.1: read(va, 1e9) on a 16 KiB mapping: SIGSEGV MAPERR at its end, with nothing allocated', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 4);
    mm.write(va, new Uint8Array([1]));
    const before = process.memoryUsage().arrayBuffers;
    expectSegv(() => mm.read(va, 1e9), 'SEGV_MAPERR', va + 4 * PG);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 << 20);
    // The mapped part was faulted as the read would: all four pages are present.
    expect(mm.pagemap(va, 4).map((p) => p.present)).toEqual([true, true, true, true]);
    // A hole in the middle of a larger read: SIGSEGV at the hole.
    const b = anon(mm, 64);
    mm.munmap(b + 32 * PG, PG);
    expectSegv(() => mm.read(b, 64 * PG), 'SEGV_MAPERR', b + 32 * PG);
    expect(mm.read(b, 32 * PG).length).toBe(32 * PG);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('readAsync: the same SIGSEGV at the hole, nothing allocated first', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 4);
    let err: unknown;
    try { await mm.readAsync(va, 1e9); } catch (e) { err = e; }
    expect((err as { code?: string }).code).toBe('SEGV_MAPERR');
    expect((err as { address?: number }).address).toBe(va + 4 * PG);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('read of more than MAX_RW_COUNT: a RangeError naming the limit', async () => {
    const { mmu, mm } = await machine();
    const va = mm.mmap({ length: 2 ** 32, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE });
    expect(rangeError(() => mm.read(va, MAX_RW_COUNT + 1)).message).toMatch(/MAX_RW_COUNT \(2147479552 bytes/);
    expect(rangeError(() => mm.getUserPages(va, MAX_PAGES_PER_CALL + 1)).message).toMatch(/MAX_PAGES_PER_CALL/);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('File.pread(0, 1e12) is short at EOF (as pread(2)) and allocates only what the file holds', async () => {
    const { mmu } = await machine();
    const f = mmu.openFile(new MemoryFile(new Uint8Array(3 * PG).fill(4)));
    const got = f.pread(PG, 1e12);
    expect(got.length).toBe(2 * PG);
    expect(got[0]).toBe(4);
    expect(f.pread(10 * PG, 1e12).length).toBe(0);
    const m = mmu.createAddressSpace();
    const at = m.mmap({ length: PG, prot: PROT_READ, flags: MAP_SHARED, file: f });
    expect(m.read(at, 1)[0]).toBe(4);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('File.prime(0, 2^32) primes the whole (small) file: the count is clamped to EOF, not wrapped to an i32', async () => {
    const { mmu } = await machine();
    const f = mmu.openFile(new MemoryFile(new Uint8Array(5 * PG).fill(1)));
    f.prime(0, 2 ** 32);
    expect(f.cachedPages).toBe(5);
    f.prime(3, 2 ** 31);
    expect(f.cachedPages).toBe(5);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('MemoryFile sizes are checked before allocating: 2^40 bytes is a RangeError naming the limit', async () => {
    const { mmu } = await machine();
    expect(rangeError(() => new MemoryFile(2 ** 40)).message).toMatch(/\[0, 2\^32\], got 1099511627776/);
    const f = mmu.openFile(new MemoryFile(PG));
    expect(rangeError(() => f.truncate(2 ** 40)).message).toMatch(/at most 2\^32 bytes/);
    expect(f.size).toBe(PG); // nothing changed
    expect(mmu.checkInvariants()).toEqual([]);
  });
});
