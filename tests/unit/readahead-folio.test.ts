// Readahead of the 7.x kernels and arm64 (issue 15): a window that reaches end of file places
// no PG_readahead marker (option readaheadEofNoMarker, 7.x; 6.18 places it), and a VM_EXEC
// miss reads in exec_folio_order() folios from the aligned block of the fault (option
// execFolioOrder: arm64 asks for 64 KiB, x86-64 for order 0). Each behaviour has golden
// kernel results in tests/conformance (7.3.4+deb13-{amd64,arm64}-ra128, 6.18.44-fc-ra128).
import { describe, it, expect } from 'vitest';
import {
  createMmu, MemoryFile, PAGE_SIZE, PROT_READ, PROT_EXEC, MAP_PRIVATE, MAP_SHARED, MAP_FIXED_NOREPLACE,
  MAP_POPULATE, MADV_POPULATE_READ, type MmuOptions, type AddressSpace, type File,
} from '../../src/index.js';
import { emulatorOptions } from '../conformance/emulator.mjs';
import { profileFromFacts } from '../conformance/lib/kernel.mjs';

const PG = PAGE_SIZE;
const BASE = 0x4000_0000;

function content(pages: number): Uint8Array {
  const b = new Uint8Array(pages * PG);
  for (let i = 0; i < pages; i++) b.fill(0x80 | (i & 0x7f), i * PG, (i + 1) * PG);
  return b;
}

// read_ahead_kb 128: 32-page windows, the kernels' default.
const machine = (opts: MmuOptions = {}) => createMmu({ ramBytes: 16 << 20, readaheadBytes: 32 * PG, ...opts });

function map(mm: AddressSpace, file: File, pages: number, flags: number, prot = PROT_READ, offsetPages = 0): number {
  return mm.mmap({ addr: BASE, length: pages * PG, prot, flags: flags | MAP_FIXED_NOREPLACE, file, offset: offsetPages * PG });
}

const present = (mm: AddressSpace, va: number, pages: number) =>
  mm.pagemap(va, pages).map((p) => (p.present ? 'P' : '.')).join('');
/** C cached, R cached with the readahead marker (its folio's head), . absent. */
const cached = (file: File, pages: number) =>
  Array.from({ length: pages }, (_, i) => (file.page(i) ? (file.page(i)!.readahead ? 'R' : 'C') : '.')).join('');
/** The folio order of each cached page (hex digit), . absent. */
const orders = (file: File, pages: number) =>
  Array.from({ length: pages }, (_, i) => (file.page(i) ? file.page(i)!.order.toString(16) : '.')).join('');

describe('R2.9 no readahead marker in a window that reaches EOF (Linux 7.x; option readaheadEofNoMarker)', () => {
  it('R2.9 the default (7.x): read-around of a cold 32-page file from page 0 marks nothing; 6.18 (false) marks page 24', async () => {
    const mmu = await machine();
    const file = mmu.openFile(new MemoryFile(content(32)));
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 32, MAP_SHARED);
    mm.read(va, 1);
    expect(cached(file, 32)).toBe('C'.repeat(32));
    expect(mmu.checkInvariants()).toEqual([]);

    const old = await machine({ readaheadEofNoMarker: false });
    const file2 = old.openFile(new MemoryFile(content(32)));
    const mm2 = old.createAddressSpace();
    mm2.read(map(mm2, file2, 32, MAP_SHARED), 1);
    expect(cached(file2, 32)).toBe('C'.repeat(24) + 'R' + 'C'.repeat(7));
    expect(old.checkInvariants()).toEqual([]);
  });

  it('R2.9 a window short of EOF keeps its marker: a 64-page file read around from page 0 is marked on page 24', async () => {
    const mmu = await machine();
    const file = mmu.openFile(new MemoryFile(content(64)));
    const mm = mmu.createAddressSpace();
    mm.read(map(mm, file, 64, MAP_SHARED), 1);
    expect(cached(file, 64)).toBe('C'.repeat(24) + 'R' + 'C'.repeat(7) + '.'.repeat(32));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.3 / R11.6 MADV_POPULATE_READ of a cold 32-page file (madv-populate-read-cold, 7.3): the miss counts major, the second fault minor, no marker hit', async () => {
    const mmu = await machine();
    const file = mmu.openFile(new MemoryFile(content(32)));
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 32, MAP_SHARED);
    mm.madvise(va, 32 * PG, MADV_POPULATE_READ);
    expect(mm.rusage()).toEqual({ minflt: 1, majflt: 1 });
    expect(present(mm, va, 32)).toBe('P'.repeat(32));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.4 / R11.6 MAP_POPULATE of a cold 32-page file (populate-cold-file): 2 minor faults on 7.x, 3 on 6.18 (the marker hit)', async () => {
    for (const [noMarker, faults] of [[true, 2], [false, 3]] as const) {
      const mmu = await machine({ readaheadEofNoMarker: noMarker });
      const file = mmu.openFile(new MemoryFile(content(32)));
      const mm = mmu.createAddressSpace();
      const va = mm.mmap({ addr: BASE, length: 32 * PG, prot: PROT_READ, flags: MAP_SHARED | MAP_FIXED_NOREPLACE | MAP_POPULATE, file, offset: 0 });
      expect(mm.rusage()).toEqual({ minflt: faults, majflt: 0 });
      expect(present(mm, va, 32)).toBe('P'.repeat(32));
      expect(mmu.checkInvariants()).toEqual([]);
    }
  });

  it('R2.9 / R2.4 a window whose first pages are cached (trunc-extend-zero): 7.x leaves no marker past them, so fault-around maps 8..15; 6.18 marks page 8 and skips it', async () => {
    for (const [noMarker, row] of [[true, 'P'.repeat(16)], [false, 'P'.repeat(8) + '.' + 'P'.repeat(7)]] as const) {
      const mmu = await machine({ readaheadEofNoMarker: noMarker });
      const file = mmu.openFile(new MemoryFile(content(16)));
      file.prime(0, 8);
      const mm = mmu.createAddressSpace();
      const va = map(mm, file, 16, MAP_SHARED);
      mm.read(va + 4 * PG, 1); // maps the cached 0..7 (minor, no readahead)
      expect(mm.read(va + 12 * PG, 1)[0]).toBe(0x80 | 12);
      expect(mm.rusage()).toEqual({ minflt: 1, majflt: 1 });
      expect(present(mm, va, 16)).toBe(row);
      expect(cached(file, 16)).toBe(noMarker ? 'C'.repeat(16) : 'C'.repeat(8) + 'R' + 'C'.repeat(7));
      expect(mmu.checkInvariants()).toEqual([]);
    }
  });
});

describe('R2.9 exec_folio_order: VM_EXEC misses read in large folios (arm64 6.16+; option execFolioOrder)', () => {
  it('R2.9 / R11.6 execFolioOrder 4 (arm64): a cold fault at page 40 reads 32..63 in two 16-page folios and maps 32..47; page 39 takes no fault', async () => {
    const mmu = await machine({ execFolioOrder: 4 });
    const file = mmu.openFile(new MemoryFile(content(64)));
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 64, MAP_PRIVATE, PROT_READ | PROT_EXEC);
    expect(mm.read(va + 40 * PG, 1)[0]).toBe(0x80 | 40);
    expect(mm.rusage()).toEqual({ minflt: 0, majflt: 1 });
    expect(orders(file, 64)).toBe('.'.repeat(32) + '4'.repeat(32));
    expect(cached(file, 64)).toBe('.'.repeat(32) + 'C'.repeat(32)); // async part 0: no marker
    expect(present(mm, va, 64)).toBe('.'.repeat(32) + 'P'.repeat(16) + '.'.repeat(16));
    expect(mm.read(va + 39 * PG, 1)[0]).toBe(0x80 | 39);
    expect(mm.rusage()).toEqual({ minflt: 0, majflt: 1 });
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.9 execFolioOrder 0 (x86-64, the default) reads forward from the faulting page: 40..63 as small pages', async () => {
    const mmu = await machine();
    const file = mmu.openFile(new MemoryFile(content(64)));
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 64, MAP_PRIVATE, PROT_READ | PROT_EXEC);
    mm.read(va + 40 * PG, 1);
    expect(orders(file, 64)).toBe('.'.repeat(40) + '0'.repeat(24));
    mm.read(va + 39 * PG, 1);
    expect(mm.rusage()).toEqual({ minflt: 0, majflt: 2 });
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.9 the read never starts below the VMA: a VMA from file page 36 faulting at page 40 reads 36..63 (folios aligned, smaller at the edge)', async () => {
    const mmu = await machine({ execFolioOrder: 4 });
    const file = mmu.openFile(new MemoryFile(content(64)));
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 28, MAP_PRIVATE, PROT_READ | PROT_EXEC, 36);
    expect(mm.read(va + 4 * PG, 1)[0]).toBe(0x80 | 40);
    expect(orders(file, 64)).toBe('.'.repeat(36) + '2222' + '3'.repeat(8) + '4'.repeat(16));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.9 the read ends at the VMA end and at EOF: a 40-page file mapped 40 pages, fault at page 20 reads 16..39', async () => {
    const mmu = await machine({ execFolioOrder: 4 });
    const file = mmu.openFile(new MemoryFile(content(40)));
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 40, MAP_PRIVATE, PROT_READ | PROT_EXEC);
    mm.read(va + 20 * PG, 1);
    expect(orders(file, 40)).toBe('.'.repeat(16) + '4'.repeat(16) + '3'.repeat(8));
    expect(mm.rusage()).toEqual({ minflt: 0, majflt: 1 });
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.9 without large-folio readahead (largeFolioReadahead: false) the block is read in small pages', async () => {
    const mmu = await machine({ execFolioOrder: 4, largeFolioReadahead: false });
    const file = mmu.openFile(new MemoryFile(content(64)));
    const mm = mmu.createAddressSpace();
    mm.read(map(mm, file, 64, MAP_PRIVATE, PROT_READ | PROT_EXEC) + 40 * PG, 1);
    expect(orders(file, 64)).toBe('.'.repeat(32) + '0'.repeat(32));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('execFolioOrder must be an integer from 0 to 9 (RangeError)', async () => {
    for (const bad of [-1, 10, 1.5, NaN, '4'] as unknown[]) {
      await expect(createMmu({ ramBytes: 4 << 20, execFolioOrder: bad as number })).rejects.toThrow(RangeError);
    }
    await expect(createMmu({ ramBytes: 4 << 20, readaheadEofNoMarker: 1 as unknown as boolean })).rejects.toThrow(RangeError);
    const mmu = await createMmu({ ramBytes: 4 << 20, execFolioOrder: 9 });
    expect(mmu.options.execFolioOrder).toBe(9);
  });
});

describe('profile keys → createMmu options (tests/conformance: emulatorOptions, profileFromFacts)', () => {
  const facts = (release: string, machine: string) =>
    profileFromFacts({ harnessProfile: `profile release=${release}\nprofile machine=${machine}\nprofile fileSystem=ext4\n` });

  it('readaheadEofNoMarker from 7.0; execFolioOrder 4 on arm64 from 6.16, 0 on x86-64 and before', () => {
    const cases: [string, string, boolean, number][] = [
      ['7.3.4+deb13-arm64', 'aarch64', true, 4],
      ['7.3.4+deb13-amd64', 'x86_64', true, 0],
      ['6.18.44-fc-v769', 'x86_64', false, 0],
      ['6.16.0', 'aarch64', false, 4],
      ['6.12.118+deb12-arm64', 'aarch64', false, 0],
    ];
    for (const [release, machine, noMarker, order] of cases) {
      const p = facts(release, machine);
      expect([p.readaheadEofNoMarker, p.execFolioOrder], release).toEqual([noMarker, order]);
      // A golden profile.json without the keys gets the same from its release and machine.
      const o = emulatorOptions({ release, machine, fileSystem: 'ext4', readAheadKb: 128 });
      expect([o.readaheadEofNoMarker, o.execFolioOrder], release).toEqual([noMarker, order]);
      expect(emulatorOptions({ release, machine, readaheadEofNoMarker: !noMarker, execFolioOrder: 2 })).toMatchObject({ readaheadEofNoMarker: !noMarker, execFolioOrder: 2 });
    }
  });
});
