// The page cache against Linux 6.18 (issue 14 items 2, 3, 5, 12, 13): fault-around at EOF
// (R2.4), MADV_REMOVE's hole punch (R9.1, R10.2), read(2)'s readahead and exec read-forward
// (R2.9), ftruncate's tail page (R10.2, R11.6). Each case has a conformance scenario too.
import { describe, it, expect } from 'vitest';
import { mkdtempSync, writeFileSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeFile } from '../../src/node.js';
import {
  createMmu, MemoryFile, BusError, PAGE_SIZE, PROT_READ, PROT_WRITE, PROT_EXEC, MAP_PRIVATE, MAP_SHARED,
  MAP_FIXED_NOREPLACE, MADV_RANDOM, MADV_NORMAL, MADV_POPULATE_READ, MADV_REMOVE, LinuxError,
  type MmuOptions, type AddressSpace, type File, type Backend,
} from '../../src/index.js';

const PG = PAGE_SIZE;
const BASE = 0x4000_0000;

function content(pages: number, bytes = pages * PG): Uint8Array {
  const b = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) b[i] = 0x80 | (Math.floor(i / PG) & 0x7f);
  return b;
}

const machine = (opts: MmuOptions = {}) => createMmu({ ramBytes: 16 << 20, ...opts });

function map(mm: AddressSpace, file: File, pages: number, flags: number, prot = PROT_READ): number {
  return mm.mmap({ addr: BASE, length: pages * PG, prot, flags: flags | MAP_FIXED_NOREPLACE, file, offset: 0 });
}

const present = (mm: AddressSpace, va: number, pages: number) =>
  mm.pagemap(va, pages).map((p) => (p.present ? 'P' : '.')).join('');
const cached = (file: File, pages: number) =>
  Array.from({ length: pages }, (_, i) => (file.page(i) ? (file.page(i)!.readahead ? 'R' : 'C') : '.')).join('');

function expectBus(fn: () => unknown): void {
  let err: unknown;
  try { fn(); } catch (e) { err = e; }
  expect(err, 'expected SIGBUS').toBeInstanceOf(BusError);
}

describe('R2.4 fault-around at end of file (Linux 6.18 filemap_map_pages)', () => {
  it('R2.4 / R10.1 the first ready folio is the EOF folio and no PTE table exists: nothing is mapped before the SIGBUS', async () => {
    const mmu = await machine();
    const file = mmu.openFile(new MemoryFile(content(4)));
    file.prime(3, 1);
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 8, MAP_PRIVATE);
    expectBus(() => mm.read(va + 7 * PG, 1));
    expect(present(mm, va, 8)).toBe('........');
    expect(mmu.checkInvariants()).toEqual([]);
    // The page itself still maps through finish_fault (minor).
    expect(mm.read(va + 3 * PG, 1)[0]).toBe(0x83);
    expect(present(mm, va, 8)).toBe('...P....');
    expect(mm.rusage()).toEqual({ minflt: 1, majflt: 0 });
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.4 a first ready folio below the EOF folio installs the table: pages 2-3 are mapped before the SIGBUS', async () => {
    const mmu = await machine();
    const file = mmu.openFile(new MemoryFile(content(4)));
    file.prime(2, 2);
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 8, MAP_PRIVATE);
    expectBus(() => mm.read(va + 7 * PG, 1));
    expect(present(mm, va, 8)).toBe('..PP....');
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.4 with the PTE table present, the EOF folio is mapped by fault-around', async () => {
    const mmu = await machine();
    const file = mmu.openFile(new MemoryFile(content(4)));
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 8, MAP_PRIVATE, PROT_READ | PROT_WRITE);
    mm.madvise(va, 8 * PG, MADV_RANDOM);
    mm.write(va, Uint8Array.of(1)); // a private copy: the table exists from now on
    file.evict();
    file.prime(3, 1);
    mm.madvise(va, 8 * PG, MADV_NORMAL);
    expectBus(() => mm.read(va + 7 * PG, 1));
    expect(present(mm, va, 8)).toBe('P..P....');
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('R2.9 VM_EXEC read-forward (Linux 6.16+; option execReadForward)', () => {
  it('R2.9 / R11.6 a cold fault at page 40 of an exec mapping reads 40..63 only; page 39 is then another major fault', async () => {
    const mmu = await machine({ readaheadBytes: 8192 * 1024 });
    const file = mmu.openFile(new MemoryFile(content(64)));
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 64, MAP_PRIVATE, PROT_READ | PROT_EXEC);
    expect(mm.read(va + 40 * PG, 1)[0]).toBe(0x80 | 40);
    expect(mm.rusage()).toEqual({ minflt: 0, majflt: 1 });
    expect(cached(file, 64)).toBe('.'.repeat(40) + 'C'.repeat(24)); // no readahead marker either
    expect(present(mm, va, 64)).toBe('.'.repeat(40) + 'P'.repeat(8) + '.'.repeat(16));
    mm.read(va + 39 * PG, 1);
    expect(mm.rusage()).toEqual({ minflt: 0, majflt: 2 });
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.9 execReadForward: false (before 6.16) reads around the page like a data mapping', async () => {
    const mmu = await machine({ readaheadBytes: 32 * PG, execReadForward: false });
    const file = mmu.openFile(new MemoryFile(content(64)));
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 64, MAP_PRIVATE, PROT_READ | PROT_EXEC);
    mm.read(va + 40 * PG, 1);
    const c = cached(file, 64);
    expect(c.slice(24, 40)).toMatch(/^[CR]+$/); // pages before the fault were read too
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('R10.2 ftruncate inside a page caches it (ext4; option truncateCachesTail)', () => {
  it('R10.2 / R11.6 shrinking a cold file into page 5 caches page 5: its read fault is minor, page 4 is major', async () => {
    const mmu = await machine();
    const file = mmu.openFile(new MemoryFile(content(8)));
    file.truncate(5 * PG + 100);
    expect(cached(file, 8)).toBe('.....C..');
    expect(file.page(5)!.uptodate).toBe(false); // only its buffers were read
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 6, MAP_SHARED);
    mm.madvise(va, 6 * PG, MADV_RANDOM);
    expect(mm.read(va + 5 * PG + 99, 2)).toEqual(Uint8Array.of(0x85, 0));
    expect(mm.rusage()).toEqual({ minflt: 1, majflt: 0 });
    expect(present(mm, va, 6)).toBe('.....P');
    mm.read(va + 4 * PG, 1);
    expect(mm.rusage()).toEqual({ minflt: 1, majflt: 1 });
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R10.2 / R9.3 growing a 1-byte file caches page 0; MADV_POPULATE_READ counts 2 major faults (its GUP retry after read_folio is TRIED)', async () => {
    const mmu = await machine({ readaheadBytes: 8192 * 1024 });
    const file = mmu.openFile(new MemoryFile(content(1, 1)));
    file.truncate(44264);
    expect(cached(file, 11)).toBe('C..........');
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 11, MAP_SHARED);
    mm.madvise(va, 11 * PG, MADV_POPULATE_READ);
    expect(mm.rusage()).toEqual({ minflt: 0, majflt: 2 });
    expect(present(mm, va, 11)).toBe('P'.repeat(11));
    expect(mm.read(va, 2)).toEqual(Uint8Array.of(0x80, 0));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R10.2 growing zeroes bytes a shared map wrote past the old EOF', async () => {
    const mmu = await machine();
    const file = mmu.openFile(new MemoryFile(content(1, 100)));
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 1, MAP_SHARED, PROT_READ | PROT_WRITE);
    mm.write(va + 200, Uint8Array.of(7));
    file.truncate(2 * PG);
    expect(mm.read(va + 99, 2)).toEqual(Uint8Array.of(0x80, 0));
    expect(mm.read(va + 200, 1)[0]).toBe(0);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R10.2 truncateCachesTail: false (tmpfs-like) leaves an uncached page uncached', async () => {
    const mmu = await machine({ truncateCachesTail: false });
    const file = mmu.openFile(new MemoryFile(content(8)));
    file.truncate(5 * PG + 100);
    expect(cached(file, 8)).toBe('........');
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

function expectErrno(fn: () => unknown, code: string): void {
  let err: unknown;
  try { fn(); } catch (e) { err = e; }
  expect(err).toBeInstanceOf(LinuxError);
  expect((err as LinuxError).code).toBe(code);
}

describe('R9.1 MADV_REMOVE on a shared mapping of a disk file punches a hole (Backend.punchHole)', () => {
  it('R9.1 / R10.2 / R11.6 the range is zapped in every mapping and dropped from the cache, dirty data discarded; the next read is a major fault that reads zeros', async () => {
    const mmu = await machine({ faultAroundBytes: 4096 });
    const backend = new MemoryFile(content(8));
    const file = mmu.openFile(backend);
    file.prime();
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 8, MAP_SHARED, PROT_READ | PROT_WRITE);
    for (let i = 0; i < 8; i++) mm.write(va + i * PG, Uint8Array.of(0x5a));
    const mm2 = mmu.createAddressSpace();
    const va2 = map(mm2, file, 8, MAP_SHARED);
    mm2.read(va2 + 2 * PG, 1);
    const priv = mm2.mmap({ addr: BASE + (4 << 20), length: 8 * PG, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_FIXED_NOREPLACE, file, offset: 0 });
    mm2.write(priv + 3 * PG, Uint8Array.of(0x11)); // a private copy of page 3 stays
    mm.madvise(va + 2 * PG, 2 * PG, MADV_REMOVE);
    expect(present(mm, va, 8)).toBe('PP..PPPP');
    expect(present(mm2, va2, 8)).toBe('........');
    expect(cached(file, 8)).toBe('CC..CCCC');
    expect(mmu.checkInvariants()).toEqual([]);
    const before = mm.rusage();
    expect(mm.read(va + 2 * PG, 2)).toEqual(Uint8Array.of(0, 0));
    expect(mm.rusage()).toEqual({ minflt: before.minflt, majflt: before.majflt + 1 });
    expect(file.pread(3 * PG, 1)).toEqual(Uint8Array.of(0));
    expect(mm2.read(priv + 3 * PG, 1)[0]).toBe(0x11);
    expect(mm.read(va + 4 * PG, 1)[0]).toBe(0x5a);
    file.sync();
    const bytes = backend.bytes();
    expect(bytes.length).toBe(8 * PG); // KEEP_SIZE
    expect(bytes.subarray(2 * PG, 4 * PG).every((b) => b === 0)).toBe(true);
    expect(bytes[4 * PG]).toBe(0x5a);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.1 a backend without punchHole: EOPNOTSUPP, nothing changes; a private mapping: EACCES', async () => {
    const mmu = await machine();
    const inner = new MemoryFile(content(4));
    const backend: Backend = { size: () => inner.size(), readPage: (i, d) => inner.readPage(i, d), writePage: (i, s) => inner.writePage(i, s) };
    const file = mmu.openFile(backend);
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 4, MAP_SHARED, PROT_READ | PROT_WRITE);
    mm.read(va, 1);
    expectErrno(() => mm.madvise(va, 4 * PG, MADV_REMOVE), 'EOPNOTSUPP');
    expect(present(mm, va, 4)).toBe('PPPP');
    const file2 = mmu.openFile(new MemoryFile(content(4)));
    const p = mm.mmap({ addr: BASE + (4 << 20), length: 4 * PG, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_FIXED_NOREPLACE, file: file2, offset: 0 });
    expectErrno(() => mm.madvise(p, 4 * PG, MADV_REMOVE), 'EACCES');
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.1 NodeFile punches by writing zeros over the range (Node has no fallocate): the size stays, the bytes read zero', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wasm-mmu-punch-'));
    try {
      const path = join(dir, 'f');
      writeFileSync(path, content(4, 3 * PG + 10));
      const node = new NodeFile(path);
      const mmu = await machine();
      const file = mmu.openFile(node);
      const mm = mmu.createAddressSpace();
      const va = map(mm, file, 4, MAP_SHARED, PROT_READ | PROT_WRITE);
      expect(mm.read(va + 3 * PG, 1)[0]).toBe(0x83);
      mm.madvise(va + 2 * PG, 2 * PG, MADV_REMOVE);
      expect(mm.read(va + 3 * PG, 1)[0]).toBe(0);
      const disk = readFileSync(path);
      expect(statSync(path).size).toBe(3 * PG + 10);
      expect(disk.subarray(2 * PG).every((b) => b === 0)).toBe(true);
      expect(disk[PG]).toBe(0x81);
      expect(mmu.checkInvariants()).toEqual([]);
      mm.destroy();
      file.close();
      node.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('R2.9 readahead state (file_ra_state): read(2) and the marker', () => {
  it('R2.9 pread of page 0 of a cold file reads the initial window (4 pages) with PG_readahead on page 1; a random pread reads one page', async () => {
    const mmu = await machine({ readaheadBytes: 32 * PG });
    const file = mmu.openFile(new MemoryFile(content(64)));
    expect(file.pread(0, 1)).toEqual(Uint8Array.of(0x80));
    expect(cached(file, 8)).toBe('CRCC....');
    expect(file.pread(40 * PG, 1)).toEqual(Uint8Array.of(0x80 | 40));
    expect(cached(file, 64).slice(36, 44)).toBe('....C...');
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.9 reading on into the marker starts the next window right after the last one, marked on its first page', async () => {
    const mmu = await machine({ readaheadBytes: 32 * PG });
    const file = mmu.openFile(new MemoryFile(content(64)));
    file.pread(0, 1);
    file.pread(PG, 1); // the marker: the window 0..3 is followed by 4..11 (next size 4 x 2)
    expect(cached(file, 24)).toBe('CCCCRCCCCCCC' + '.'.repeat(12));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.9 / R11.6 an mmap read-around marker hit: the next window follows the first (read-around 0..31, marker 24, then 32..63 marked at 32)', async () => {
    const mmu = await machine({ readaheadBytes: 32 * PG });
    const file = mmu.openFile(new MemoryFile(content(96)));
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 96, MAP_PRIVATE);
    mm.read(va, 1);
    expect(cached(file, 40)).toBe('C'.repeat(24) + 'R' + 'C'.repeat(7) + '........');
    mm.read(va + 24 * PG, 1);
    expect(cached(file, 72)).toBe('C'.repeat(32) + 'R' + 'C'.repeat(31) + '........');
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.9 order-0 readahead (largeFolioReadahead: false, before 6.16) cuts the window at end of file before placing the marker: a 20-page file read around from page 0 at 32 pages is marked on page 12', async () => {
    const mmu = await machine({ readaheadBytes: 32 * PG, largeFolioReadahead: false, readaheadEofNoMarker: false });
    const file = mmu.openFile(new MemoryFile(content(20)));
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 20, MAP_PRIVATE);
    mm.read(va, 1);
    expect(cached(file, 20)).toBe('C'.repeat(12) + 'R' + 'C'.repeat(7));
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('R2.9 large-folio readahead (6.16+ ext4, the default)', () => {
  it('R2.9 the marker is placed in the uncut window: a 20-page file read around from page 0 at 32 pages has none', async () => {
    const mmu = await machine({ readaheadBytes: 32 * PG });
    const file = mmu.openFile(new MemoryFile(content(20)));
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 20, MAP_PRIVATE);
    mm.read(va, 1);
    expect(cached(file, 20)).toBe('C'.repeat(20));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.9 / R2.5 each asynchronous window uses folios two orders larger; fault-around skips the whole marked folio', async () => {
    const mmu = await machine({ readaheadBytes: 8192 * 1024 });
    const file = mmu.openFile(new MemoryFile(content(64)));
    file.pread(0, 1);
    file.pread(PG, 1); // marker hit: 4..19 in order-2 folios, the first one marked
    expect(file.page(4)).toMatchObject({ order: 2, readahead: true });
    expect(file.page(8)).toMatchObject({ order: 2, readahead: false });
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 64, MAP_SHARED);
    mm.madvise(va, 64 * PG, MADV_RANDOM);
    mm.read(va + 2 * PG, 1);
    expect(present(mm, va, 20)).toBe('PPPP....PPPPPPPP....');
    expect(mm.rusage()).toEqual({ minflt: 1, majflt: 0 });
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('R11.6 a GUP fault that reaches a readahead marker drops the lock: its retry is major', () => {
  it('R9.3 / R11.6 MADV_POPULATE_READ of a cold 32-page file at 32-page readahead (6.18, readaheadEofNoMarker: false): the miss and the marker hit count major, the rest minor; a user read at the marker is minor', async () => {
    const mmu = await machine({ readaheadBytes: 32 * PG, readaheadEofNoMarker: false });
    const file = mmu.openFile(new MemoryFile(content(32)));
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 32, MAP_SHARED);
    mm.madvise(va, 32 * PG, MADV_POPULATE_READ);
    expect(mm.rusage()).toEqual({ minflt: 1, majflt: 2 });
    expect(present(mm, va, 32)).toBe('P'.repeat(32));
    expect(mmu.checkInvariants()).toEqual([]);

    const file2 = mmu.openFile(new MemoryFile(content(32)));
    const mm2 = mmu.createAddressSpace();
    const va2 = map(mm2, file2, 32, MAP_SHARED);
    mm2.read(va2, 1); // read-around 0..31 (cut at EOF: none past it), marker on 24
    expect(file2.page(24)!.readahead).toBe(true);
    mm2.read(va2 + 24 * PG, 1);
    expect(mm2.rusage()).toEqual({ minflt: 1, majflt: 1 });
    expect(file2.page(24)!.readahead).toBe(false);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('kernel-version options (issue 15 profile keys)', () => {
  it('R1.5 guardRegions: false (6.1, 6.12): MADV_GUARD_INSTALL is an unknown advice, EINVAL', async () => {
    const mmu = await machine({ guardRegions: false });
    const mm = mmu.createAddressSpace();
    const va = mm.mmap({ length: 4 * PG, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | 0x20 });
    mm.write(va, Uint8Array.of(1));
    expectErrno(() => mm.madvise(va, 4 * PG, 102), 'EINVAL');
    expect(mm.read(va, 1)[0]).toBe(1);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it("R9.3 / R11.6 populateAccounting: 'minor' (6.1): the populate's retry after I/O starts afresh and counts minor", async () => {
    for (const [acct, want] of [['minor', { minflt: 2, majflt: 0 }], ['retry-major', { minflt: 1, majflt: 1 }]] as const) {
      const mmu = await machine({ populateAccounting: acct, readaheadBytes: 8192 * 1024 });
      const file = mmu.openFile(new MemoryFile(content(32)));
      const mm = mmu.createAddressSpace();
      const va = map(mm, file, 32, MAP_SHARED);
      mm.madvise(va, 32 * PG, MADV_POPULATE_READ);
      expect(mm.rusage(), acct).toEqual(want);
      expect(present(mm, va, 32)).toBe('P'.repeat(32));
      expect(mmu.checkInvariants()).toEqual([]);
    }
    await expect(machine({ populateAccounting: 'sometimes' as 'minor' })).rejects.toThrow(RangeError);
  });
});

describe('option checks', () => {
  it('execReadForward, truncateCachesTail and largeFolioReadahead default to true (Linux 6.18 on ext4)', async () => {
    const mmu = await machine();
    expect(mmu.options).toMatchObject({ execReadForward: true, truncateCachesTail: true, largeFolioReadahead: true });
  });
});
