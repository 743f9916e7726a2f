// LINUX-SPEC §2: fault-around on read faults of file mappings (seed 000, seed 001).
// Every worked example of R2.8, the window sizes of R2.2/R2.3, young/old prefaulted PTEs
// (R2.6), the skip rules of R2.5, the cold cache (R2.9, R11.6) and MADV_RANDOM.
import { describe, it, expect } from 'vitest';
import {
  createMmu, MemoryFile, BusError, PAGE_SIZE, PROT_READ, MAP_PRIVATE, MAP_SHARED,
  MAP_FIXED_NOREPLACE, MADV_RANDOM, type Mmu, type MmuOptions, type AddressSpace, type File,
} from '../../src/index.js';

const PG = PAGE_SIZE;
const BASE = 0x4000_0000; // 2 MiB aligned: PTE-table index 0

/** A page-cache-backed file of `pages` pages, every page's bytes set to its index + 1. */
function content(pages: number, bytes = pages * PG): Uint8Array {
  const b = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) b[i] = (Math.floor(i / PG) + 1) & 0xff;
  return b;
}

async function setup(opts: MmuOptions = {}, filePages = 64, prime = true):
  Promise<{ mmu: Mmu; mm: AddressSpace; file: File }> {
  const mmu = await createMmu({ ramBytes: 16 << 20, ...opts });
  const file = mmu.openFile(new MemoryFile(content(filePages)));
  if (prime) file.prime();
  return { mmu, mm: mmu.createAddressSpace(), file };
}

function map(mm: AddressSpace, file: File, addr: number, pages: number, flags = MAP_PRIVATE): number {
  return mm.mmap({ addr, length: pages * PG, prot: PROT_READ, flags: flags | MAP_FIXED_NOREPLACE, file, offset: 0 });
}

/** 'P' per present page, '.' per absent one. */
function present(mm: AddressSpace, va: number, pages: number): string {
  return mm.pagemap(va, pages).map((p) => (p.present ? 'P' : '.')).join('');
}
/** 'Y' young, 'o' old, '.' absent. */
function ages(mm: AddressSpace, va: number, pages: number): string {
  return mm.pagemap(va, pages).map((p) => (!p.present ? '.' : p.young ? 'Y' : 'o')).join('');
}
/** A pagemap string with pages [lo, hi] present (inclusive ranges). */
function pm(pages: number, ...ranges: [number, number][]): string {
  const s = new Array<string>(pages).fill('.');
  for (const [lo, hi] of ranges) for (let i = lo; i <= hi; i++) s[i] = 'P';
  return s.join('');
}

/** Touch pages one by one; return the page indexes whose touch took a fault. */
function touchEach(mm: AddressSpace, va: number, pages: number): number[] {
  const faulted: number[] = [];
  for (let i = 0; i < pages; i++) {
    const before = mm.rusage().minflt + mm.rusage().majflt;
    mm.touch(va + i * PG, 1);
    if (mm.rusage().minflt + mm.rusage().majflt !== before) faulted.push(i);
  }
  return faulted;
}

describe('R2.8 worked examples (page cache fully uptodate, default 64 KiB window)', () => {
  it('R2.8 aligned: 64 pages at a 64 KiB-aligned VA fault at pages 0, 16, 32, 48: 4 minor faults, file RSS +64', async () => {
    for (const flags of [MAP_PRIVATE, MAP_SHARED]) {
      const { mmu, mm, file } = await setup();
      const va = map(mm, file, BASE, 64, flags);
      mm.touch(va, PG);
      expect(present(mm, va, 64)).toBe(pm(64, [0, 15]));
      expect(touchEach(mm, va, 64)).toEqual([16, 32, 48]);
      expect(mm.rusage()).toEqual({ minflt: 4, majflt: 0 });
      expect(present(mm, va, 64)).toBe('P'.repeat(64));
      expect(mm.status().rssFile).toBe(64 * PG);
      expect(mmu.stats().faultAroundMapped).toBe(64);
      expect(mmu.checkInvariants()).toEqual([]);
    }
  });

  it('R2.8 misaligned by 5: windows 0–15, 16–26, 27–42, 43–58, 59–63: 5 minor faults', async () => {
    const { mmu, mm, file } = await setup();
    const va = map(mm, file, BASE + 5 * PG, 64); // table index 5 ≡ 5 (mod 16)
    const seen: string[] = [];
    const faulted: number[] = [];
    for (let i = 0; i < 64; i++) {
      const before = mm.rusage().minflt;
      mm.touch(va + i * PG, 1);
      if (mm.rusage().minflt !== before) { faulted.push(i); seen.push(present(mm, va, 64)); }
    }
    expect(faulted).toEqual([0, 16, 27, 43, 59]);
    expect(seen).toEqual([
      pm(64, [0, 15]),
      pm(64, [0, 26]), // window 16–31 = pages 11–26; 11–15 were present already
      pm(64, [0, 42]),
      pm(64, [0, 58]),
      pm(64, [0, 63]), // 59–63: clamped at the VMA end
    ]);
    expect(mm.rusage()).toEqual({ minflt: 5, majflt: 0 });
    expect(mm.status().rssFile).toBe(64 * PG);
    expect(mmu.stats().faultAroundMapped).toBe(64);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.8 table boundary: VMA at table index 500; a fault at index 505 maps 500–511, the next table\'s first page maps 16', async () => {
    const { mmu, mm, file } = await setup();
    const va = map(mm, file, BASE + 500 * PG, 40); // 12 pages in this table, 28 in the next
    mm.touch(va + 5 * PG, 1); // index 505
    expect(present(mm, va, 40)).toBe(pm(40, [0, 11]));
    expect(mmu.stats().faultAroundMapped).toBe(12);
    mm.touch(va + 12 * PG, 1); // index 0 of the next table
    expect(present(mm, va, 40)).toBe(pm(40, [0, 27]));
    expect(mmu.stats().faultAroundMapped).toBe(28);
    expect(mm.rusage().minflt).toBe(2);
    expect(mm.status().pageTables / PG).toBe(5); // PGD, PUD, PMD and two PTE tables
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.8 VMA end: a 20-page aligned VMA, first touch at page 17 maps 16–19 only', async () => {
    const { mmu, mm, file } = await setup();
    const va = map(mm, file, BASE, 20);
    mm.touch(va + 17 * PG, 1);
    expect(present(mm, va, 20)).toBe(pm(20, [16, 19]));
    expect(mm.rusage().minflt).toBe(1);
    expect(mm.status().rssFile).toBe(4 * PG);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.8 / R10.1 short file: 10-page file in a 16-page VMA; page 0 maps 0–9, page 12 is SIGBUS, not counted in minflt', async () => {
    const { mmu, mm, file } = await setup({}, 10);
    const va = map(mm, file, BASE, 16);
    mm.touch(va, 1);
    expect(present(mm, va, 16)).toBe(pm(16, [0, 9]));
    expect(mm.rusage()).toEqual({ minflt: 1, majflt: 0 });
    const pgfault = mmu.stats().pgfault;
    let err: unknown;
    try { mm.touch(va + 12 * PG, 1); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(BusError);
    expect((err as BusError).code).toBe('BUS_ADRERR');
    expect((err as BusError).address).toBe(va + 12 * PG);
    expect(mmu.stats().pgfault).toBe(pgfault + 1); // PGFAULT counts it (R11.5)
    expect(mm.rusage()).toEqual({ minflt: 1, majflt: 0 }); // min_flt does not
    expect(present(mm, va, 16)).toBe(pm(16, [0, 9]));
    expect(mm.read(va + 9 * PG, 4)).toEqual(new Uint8Array([10, 10, 10, 10]));
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('R2.2 / R2.3 window sizes', () => {
  const cases: [number, number[]][] = [
    [4096, Array.from({ length: 64 }, (_, i) => i)], // one page: fault-around off
    [16384, Array.from({ length: 16 }, (_, i) => i * 4)],
    [65536, [0, 16, 32, 48]],
    [2 << 20, [0]],
  ];
  for (const [bytes, faults] of cases) {
    it(`R2.2 faultAroundBytes ${bytes}: ${faults.length} faults for 64 aligned pages`, async () => {
      const { mmu, mm, file } = await setup({ faultAroundBytes: bytes });
      const va = map(mm, file, BASE, 64);
      expect(touchEach(mm, va, 64)).toEqual(faults);
      expect(mm.rusage()).toEqual({ minflt: faults.length, majflt: 0 });
      // With fault-around off no PTE is installed by it (R2.1: window of one page).
      expect(mmu.stats().faultAroundMapped).toBe(bytes === 4096 ? 0 : 64);
      expect(mm.status().rssFile).toBe(64 * PG);
      expect(mmu.checkInvariants()).toEqual([]);
    });
  }

  it('R2.2 the knob changes at run time and rounds down to a power of two', async () => {
    const { mmu, mm, file } = await setup();
    const va = map(mm, file, BASE, 64);
    mmu.faultAroundBytes = 32768;
    mm.touch(va, 1);
    expect(present(mm, va, 64)).toBe(pm(64, [0, 7]));
    mmu.faultAroundBytes = 4096;
    mm.touch(va + 8 * PG, 1);
    expect(present(mm, va, 64)).toBe(pm(64, [0, 8]));
    expect(() => { mmu.faultAroundBytes = 12288; }).toThrow(RangeError);
    mmu.faultAroundBytes = 2 << 20;
    mm.touch(va + 40 * PG, 1);
    expect(present(mm, va, 64)).toBe('P'.repeat(64));
    expect(mm.rusage().minflt).toBe(3);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.3 a VMA starting inside the aligned block extends the window up to n pages from its start', async () => {
    const { mmu, mm, file } = await setup();
    const va = map(mm, file, BASE + 10 * PG, 40); // indexes 10..49
    mm.touch(va + 3 * PG, 1); // index 13: from = max(0, 10) = 10, to = 25
    expect(present(mm, va, 40)).toBe(pm(40, [0, 15]));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.3 the file range follows the VMA offset', async () => {
    const { mmu, mm, file } = await setup();
    const va = mm.mmap({ addr: BASE, length: 16 * PG, prot: PROT_READ, flags: MAP_PRIVATE | MAP_FIXED_NOREPLACE, file, offset: 32 * PG });
    mm.touch(va + 4 * PG, 1);
    expect(present(mm, va, 16)).toBe('P'.repeat(16));
    expect(mm.pagemap(va, 16).map((p) => p.pfn)).toEqual(Array.from({ length: 16 }, (_, i) => file.page(32 + i)!.pfn));
    expect(mm.read(va + 15 * PG, 1)[0]).toBe(48);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('R2.6 / seed 001: young and old PTEs', () => {
  it('R2.6 x86 (prefaultOld false): the faulting PTE and every prefaulted PTE are young', async () => {
    const { mmu, mm, file } = await setup({ prefaultOld: false });
    const va = map(mm, file, BASE, 16);
    mm.touch(va + 6 * PG, 1);
    expect(ages(mm, va, 16)).toBe('Y'.repeat(16));
    const pages = mm.pagemap(va, 16);
    expect(pages.every((p) => p.file && !p.dirty && !p.writable && !p.special)).toBe(true);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.6 arm64 (prefaultOld true): only the faulting PTE is young; a later access makes another young without a fault', async () => {
    const { mmu, mm, file } = await setup({ prefaultOld: true });
    const va = map(mm, file, BASE, 16);
    mm.touch(va + 6 * PG, 1);
    expect(ages(mm, va, 16)).toBe('oooooo' + 'Y' + 'ooooooooo');
    mm.touch(va + 9 * PG, 1); // the hardware sets A: no fault
    expect(ages(mm, va, 16)).toBe('oooooo' + 'Y' + 'oo' + 'Y' + 'oooooo');
    expect(mm.rusage().minflt).toBe(1);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.6 prefaultOld changes at run time; a fault that maps only itself is young', async () => {
    const { mmu, mm, file } = await setup();
    const va = map(mm, file, BASE, 32);
    mm.touch(va, 1);
    mmu.prefaultOld = true;
    mm.touch(va + 20 * PG, 1);
    expect(ages(mm, va, 32)).toBe('Y'.repeat(16) + 'oooo' + 'Y' + 'o'.repeat(11));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.6 a prefaulted PTE takes a reference and a mapcount on its page-cache page', async () => {
    const { mmu, mm, file } = await setup();
    const va = map(mm, file, BASE, 16);
    mm.touch(va, 1);
    for (let i = 0; i < 16; i++) expect(file.page(i)).toMatchObject({ refcount: 2, mapcount: 1 });
    mm.munmap(va, 16 * PG);
    for (let i = 0; i < 16; i++) expect(file.page(i)).toMatchObject({ refcount: 1, mapcount: 0 });
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('R2.5 which cached pages fault-around skips', () => {
  it('R2.5 locked, not uptodate, readahead-marked and hwpoisoned pages are skipped; absent pages are never read', async () => {
    const { mmu, mm, file } = await setup({}, 64, false);
    file.prime(0, 16);
    file.evict(2, 2); // absent
    file.setPageState(3, { locked: true });
    file.setPageState(5, { uptodate: false });
    file.setPageState(7, { readahead: true });
    file.setPageState(9, { hwpoison: true });
    const va = map(mm, file, BASE, 16);
    const reads = mmu.stats().pagecacheReads;
    mm.touch(va, 1);
    expect(present(mm, va, 16)).toBe('PP..P.P.P.PPPPPP');
    expect(mmu.stats().pagecacheReads).toBe(reads); // nothing read (R2.4: holes are skipped)
    expect(file.page(2)).toBeNull();
    expect(mmu.stats().faultAroundMapped).toBe(11);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.7 the fallback ->fault handles a skipped faulting page: absent (major), locked, not uptodate (re-read), readahead (minor), hwpoison (SIGBUS)', async () => {
    const { mmu, mm, file } = await setup({}, 64, false);
    file.prime(0, 16);
    file.evict(2, 2);
    file.setPageState(3, { locked: true });
    file.setPageState(5, { uptodate: false });
    file.setPageState(7, { readahead: true });
    file.setPageState(9, { hwpoison: true });
    const va = map(mm, file, BASE, 16);
    mm.touch(va, 1);
    expect(mm.rusage()).toEqual({ minflt: 1, majflt: 0 });

    mm.touch(va + 2 * PG, 1); // not cached: filemap_fault reads it (R11.6 major)
    expect(mm.rusage()).toEqual({ minflt: 1, majflt: 1 });
    expect(file.page(2)).toMatchObject({ uptodate: true, mapcount: 1 });
    expect(mm.read(va + 2 * PG, 1)[0]).toBe(3);

    mm.touch(va + 3 * PG, 1); // locked: ->fault waits for the lock (here: takes it), minor
    expect(mm.rusage()).toEqual({ minflt: 2, majflt: 1 });
    expect(mm.read(va + 3 * PG, 1)[0]).toBe(4);

    mm.touch(va + 5 * PG, 1); // not uptodate: re-read, which needs I/O
    expect(mm.rusage()).toEqual({ minflt: 2, majflt: 2 });
    expect(file.page(5)!.uptodate).toBe(true);
    expect(mm.read(va + 5 * PG, 1)[0]).toBe(6);

    mm.touch(va + 7 * PG, 1); // readahead marker: found in the cache, marker cleared (R2.9)
    expect(mm.rusage()).toEqual({ minflt: 3, majflt: 2 });
    expect(file.page(7)!.readahead).toBe(false);

    let err: unknown;
    try { mm.touch(va + 9 * PG, 1); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(BusError); // R3.1: a hwpoisoned page is VM_FAULT_HWPOISON
    expect((err as BusError).code).toBe('BUS_MCEERR_AR');
    expect(mm.rusage()).toEqual({ minflt: 3, majflt: 2 });
    expect(present(mm, va, 16)).toBe('PPPPPPPPP.PPPPPP');
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.5 an already-mapped PTE is skipped: no second reference, no second mapcount', async () => {
    const { mmu, mm, file } = await setup({ faultAroundBytes: 4096 });
    const va = map(mm, file, BASE, 16);
    mm.touch(va + 2 * PG, 1);
    expect(present(mm, va, 16)).toBe('..P.............');
    mmu.faultAroundBytes = 65536;
    mm.touch(va, 1);
    expect(present(mm, va, 16)).toBe('P'.repeat(16));
    expect(mmu.stats().faultAroundMapped).toBe(15);
    expect(file.page(2)).toMatchObject({ refcount: 2, mapcount: 1 });
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.5 / R10.1 pages at or beyond EOF are never mapped, even when cached before a truncate', async () => {
    const { mmu, mm, file } = await setup({}, 16);
    const va = map(mm, file, BASE, 16);
    file.truncate(6 * PG + 100); // pages 0..6 remain (7 is gone)
    mm.touch(va, 1);
    expect(present(mm, va, 16)).toBe(pm(16, [0, 6]));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.1 a file without map_pages (noMapPages) never faults around', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const file = mmu.openFile(new MemoryFile(content(16)), { noMapPages: true });
    file.prime();
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, BASE, 16);
    expect(touchEach(mm, va, 16)).toEqual(Array.from({ length: 16 }, (_, i) => i));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.1 write faults never fault around', async () => {
    const { mmu, mm, file } = await setup();
    const va = mm.mmap({ addr: BASE, length: 16 * PG, prot: PROT_READ | 2, flags: MAP_PRIVATE | MAP_FIXED_NOREPLACE, file });
    mm.touch(va, 1, 'write');
    expect(present(mm, va, 16)).toBe('P...............');
    expect(mmu.stats().faultAroundMapped).toBe(0);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('R2.9 / R11.6 cold cache and read-around', () => {
  it('R11.6 the first touch of an uncached file is 1 major fault; read-around brings in 32 pages; later touches are minor', async () => {
    const { mmu, mm, file } = await setup({}, 64, false);
    const va = map(mm, file, BASE, 64);
    mm.touch(va, 1);
    expect(mm.rusage()).toEqual({ minflt: 0, majflt: 1 });
    expect(mmu.stats().pgmajfault).toBe(1);
    // The first attempt reads and returns RETRY|MAJOR; the retry (counted once, major)
    // faults around the now-cached pages (R1.1 step 4, R2.7), like the 6.18 kernel.
    expect(present(mm, va, 64)).toBe(pm(64, [0, 15]));
    expect(file.cachedPages).toBe(32); // R2.9: ra_pages from max(0, 0 - 16)
    expect(mmu.stats().pagecacheReads).toBe(32);
    const marked = Array.from({ length: 32 }, (_, i) => (file.page(i)!.readahead ? i : -1)).filter((i) => i >= 0);
    expect(marked).toEqual([24]); // ra_pages / 4 before the end

    // Pages 1..31: fault-around maps 16–31 except the marked 24, which takes its own
    // (minor) fault and starts asynchronous readahead of the next window.
    expect(touchEach(mm, va, 32)).toEqual([16, 24]);
    expect(mm.rusage()).toEqual({ minflt: 2, majflt: 1 });
    expect(file.page(24)!.readahead).toBe(false);
    expect(file.cachedPages).toBe(64);
    expect(mm.read(va + 31 * PG, 1)[0]).toBe(32);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.9 a miss in the middle of a file reads around it: [pgoff - 16, pgoff + 16)', async () => {
    const { mmu, mm, file } = await setup({}, 128, false);
    const va = map(mm, file, BASE, 128);
    mm.touch(va + 50 * PG, 1);
    expect(mm.rusage()).toEqual({ minflt: 0, majflt: 1 });
    const cached = Array.from({ length: 128 }, (_, i) => (file.page(i) ? 'C' : '.')).join('');
    expect(cached).toBe('.'.repeat(34) + 'C'.repeat(32) + '.'.repeat(62));
    expect(file.page(34 + 24)!.readahead).toBe(true);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.9 mmap_miss: after 100 unpaid misses read-around stops (single-page reads); hits pay misses back', async () => {
    const { mmu, mm, file } = await setup({ faultAroundBytes: 4096, readaheadBytes: 4 * PG }, 840, false);
    const va = map(mm, file, BASE, 840);
    const cachedAfter: number[] = [];
    for (let k = 0; k < 102; k++) {
      mm.touch(va + 8 * k * PG + 4 * PG, 1); // a miss 8 pages from the last: never read around
      cachedAfter.push(file.cachedPages);
    }
    expect(mm.rusage()).toEqual({ minflt: 0, majflt: 102 });
    expect(cachedAfter[99]).toBe(400); // misses 1..100: 4-page read-around each
    expect(cachedAfter[100]).toBe(401); // miss 101: only the page itself
    expect(cachedAfter[101]).toBe(402);
    // Hits (the read-around pages) pay misses back: after enough of them read-around resumes.
    for (let k = 0; k < 50; k++) mm.touch(va + 8 * k * PG + 3 * PG, 1);
    expect(mm.rusage()).toEqual({ minflt: 50, majflt: 102 });
    mm.touch(va + 830 * PG, 1);
    expect(file.cachedPages).toBe(402 + 4);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.9 MADV_RANDOM keeps a readahead marker and starts no asynchronous readahead', async () => {
    const { mmu, mm, file } = await setup({}, 64, false);
    file.prime(0, 8);
    file.setPageState(7, { readahead: true });
    const va = map(mm, file, BASE, 64);
    mm.madvise(va, 64 * PG, MADV_RANDOM);
    mm.touch(va + 7 * PG, 1);
    expect(mm.rusage()).toEqual({ minflt: 1, majflt: 0 });
    expect(file.page(7)!.readahead).toBe(true);
    expect(file.cachedPages).toBe(8);
    expect(present(mm, va, 16)).toBe('PPPPPPPP........'); // fault-around still runs (R2.1)
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.9 MADV_RANDOM: read-around off, every first touch is a single-page read and a major fault', async () => {
    const { mmu, mm, file } = await setup({}, 64, false);
    const va = map(mm, file, BASE, 64);
    mm.madvise(va, 64 * PG, MADV_RANDOM);
    for (let i = 0; i < 4; i++) mm.touch(va + i * PG, 1);
    expect(mm.rusage()).toEqual({ minflt: 0, majflt: 4 });
    expect(file.cachedPages).toBe(4);
    expect(mmu.stats().pagecacheReads).toBe(4);
    expect(present(mm, va, 8)).toBe('PPPP....');
    expect(mm.read(va + 3 * PG, 1)[0]).toBe(4);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('R2.4 / R10.1 a fault-around window with no ready folio installs no PTE table', () => {
  it('R10.1 a SIGBUS fault wholly past EOF leaves the PMD none, so a later window led by the EOF folio maps nothing (fuzz seed 14 case 14)', async () => {
    // 6-page file at table index 507: file pages 0-4 in the first PTE table, the EOF page 5
    // at index 0 of the next one. Page 25's window (indexes 16-31 of that table) is all past
    // EOF: Linux's filemap_map_pages finds no folio and returns before filemap_map_pmd, and
    // the fault ends in SIGBUS without finish_fault, so no table. Page 12's window then starts
    // with the EOF folio and no table: nothing may be mapped (PMD across i_size, Linux 6.18).
    const { mmu, mm, file } = await setup({}, 6);
    const va = map(mm, file, BASE + 507 * PG, 32);
    const bus = (page: number) => {
      let err: unknown = null;
      try { mm.touch(va + page * PG, 1); } catch (e) { err = e; }
      expect(err, `page ${page}`).toBeInstanceOf(BusError);
    };
    bus(25);
    bus(12);
    expect(present(mm, va, 32)).toBe('.'.repeat(32));
    expect(mm.read(va + 5 * PG, 1)[0]).toBe(6);
    expect(present(mm, va, 32)).toBe(pm(32, [5, 5]));
    expect(mmu.checkInvariants()).toEqual([]);
  });
});
