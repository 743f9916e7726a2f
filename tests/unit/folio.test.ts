// Large page-cache folios (Linux 6.18): file.prime({ order }) makes them; finish_fault maps
// a whole folio (R3.2 step 3); do_set_pmd maps a PMD-sized folio with one PMD (R3.3);
// fault-around maps whole folios that fit (6.18); zap, split, truncation, eviction and
// teardown keep the invariants (mapcount per subpage, entire mapcount on the head).
import { describe, it, expect } from 'vitest';
import {
  createMmu, MemoryFile, BusError, LinuxError, PAGE_SIZE, PROT_READ, PROT_WRITE, MAP_PRIVATE,
  MAP_SHARED, MAP_FIXED_NOREPLACE, MAP_POPULATE, MADV_NOHUGEPAGE, MADV_DONTNEED, MADV_POPULATE_READ, MS_SYNC,
  type Mmu, type MmuOptions, type AddressSpace, type File,
} from '../../src/index.js';

const PG = PAGE_SIZE;
const RW = PROT_READ | PROT_WRITE;
const HPAGE = 2 << 20;
const BASE = 0x4000_0000; // 2 MiB aligned

function content(pages: number): Uint8Array {
  const b = new Uint8Array(pages * PG);
  for (let i = 0; i < pages; i++) b.fill(i & 0xff, i * PG, i * PG + PG);
  return b;
}

async function setup(opts: MmuOptions = {}, filePages = 1024):
  Promise<{ mmu: Mmu; mm: AddressSpace; file: File; backend: MemoryFile }> {
  const mmu = await createMmu({ ramBytes: 16 << 20, ...opts });
  const backend = new MemoryFile(content(filePages));
  const file = mmu.openFile(backend);
  return { mmu, mm: mmu.createAddressSpace(), file, backend };
}

function map(mm: AddressSpace, file: File, pages: number, opts: { addr?: number; offset?: number; flags?: number; prot?: number } = {}): number {
  return mm.mmap({ addr: opts.addr ?? BASE, length: pages * PG, prot: opts.prot ?? PROT_READ,
    flags: (opts.flags ?? MAP_PRIVATE) | MAP_FIXED_NOREPLACE, file, offset: (opts.offset ?? 0) * PG });
}

function present(mm: AddressSpace, va: number, pages: number): string {
  return mm.pagemap(va, pages).map((p) => (p.present ? 'P' : '.')).join('');
}
function pm(pages: number, ...ranges: [number, number][]): string {
  const s = new Array<string>(pages).fill('.');
  for (const [lo, hi] of ranges) for (let i = lo; i <= hi; i++) s[i] = 'P';
  return s.join('');
}

describe('file.prime({ order }): large folios in the page cache', () => {
  it('an order-4 prime reads each aligned 16-page block into one allocation; every subpage has its own state', async () => {
    const { mmu, file } = await setup({}, 64);
    const free = mmu.stats().freeFrames;
    file.prime(16, 32, { order: 4 });
    expect(file.cachedPages).toBe(32);
    expect(mmu.stats().freeFrames).toBe(free - 32);
    const head = file.page(16)!;
    expect(head).toMatchObject({ order: 4, headPfn: head.pfn, uptodate: true, refcount: 1, mapcount: 0 });
    expect(head.pfn % 16).toBe(0); // naturally aligned frames
    for (let i = 0; i < 16; i++) {
      expect(file.page(16 + i)).toMatchObject({ pfn: head.pfn + i, headPfn: head.pfn, order: 4, uptodate: true, refcount: 1 });
    }
    expect(file.page(32)!.headPfn).toBe(file.page(32)!.pfn); // the next folio
    expect(file.page(15)).toBeNull();
    expect(mmu.phys.read(file.page(20)!.pfn * PG, 2)).toEqual(new Uint8Array([20, 20]));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('refuses misaligned blocks, blocks past EOF and blocks with a cached page', async () => {
    const { mmu, file } = await setup({}, 40);
    expect(() => file.prime(8, 16, { order: 4 })).toThrow(RangeError);
    expect(() => file.prime(0, 8, { order: 4 })).toThrow(RangeError);
    expect(() => file.prime(32, 16, { order: 4 })).toThrow(RangeError); // 40 pages only
    expect(() => file.prime(0, 16, { order: 10 })).toThrow(RangeError);
    file.prime(3, 1);
    let err: unknown;
    try { file.prime(0, 16, { order: 4 }); } catch (e) { err = e; }
    expect((err as LinuxError).code).toBe('EEXIST');
    expect(file.cachedPages).toBe(1);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('R3.2 step 3: finish_fault maps a whole folio', () => {
  it('R3.2 an order-4 folio in a 16-page aligned VMA is mapped whole by one read fault, fault-around off', async () => {
    const { mmu, mm, file } = await setup({ faultAroundBytes: 4096 }, 64);
    file.prime(0, 16, { order: 4 });
    const head = file.page(0)!.pfn;
    const va = map(mm, file, 16);
    mm.touch(va + 5 * PG, 1);
    expect(mm.rusage()).toEqual({ minflt: 1, majflt: 0 });
    expect(present(mm, va, 16)).toBe('P'.repeat(16));
    const pages = mm.pagemap(va, 16);
    expect(pages.map((p) => p.pfn)).toEqual(Array.from({ length: 16 }, (_, i) => head + i));
    expect(pages.every((p) => p.file && p.exclusive && p.young && !p.writable)).toBe(true);
    expect(mm.status().rssFile).toBe(16 * PG);
    expect(mmu.stats().faultAroundMapped).toBe(0);
    for (let i = 0; i < 16; i++) expect(file.page(i)).toMatchObject({ refcount: 2, mapcount: 1 });
    expect(mm.read(va + 15 * PG, 1)[0]).toBe(15);
    mm.touch(va, 16 * PG);
    expect(mm.rusage().minflt).toBe(1);
    mm.munmap(va, 16 * PG);
    for (let i = 0; i < 16; i++) expect(file.page(i)).toMatchObject({ refcount: 1, mapcount: 0 });
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R3.2 a folio that does not lie inside the VMA is mapped one page at a time', async () => {
    const { mmu, mm, file } = await setup({ faultAroundBytes: 4096 }, 64);
    file.prime(0, 16, { order: 4 });
    const va = map(mm, file, 8, { offset: 4 }); // file pages 4..11: the folio sticks out on both sides
    mm.touch(va, 1);
    expect(present(mm, va, 8)).toBe('P.......');
    expect(mm.pagemap(va, 1)[0].pfn).toBe(file.page(4)!.pfn);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R3.2 a folio that crosses a PTE table is mapped one page at a time', async () => {
    const { mmu, mm, file } = await setup({ faultAroundBytes: 4096 }, 64);
    file.prime(0, 16, { order: 4 });
    const va = map(mm, file, 16, { addr: BASE + HPAGE - 8 * PG }); // 8 pages per table
    mm.touch(va + 9 * PG, 1);
    expect(present(mm, va, 16)).toBe('.........P......');
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R3.2 a write fault maps one page (the COW copy or the dirty shared page)', async () => {
    const { mmu, mm, file } = await setup({ faultAroundBytes: 4096 }, 64);
    file.prime(0, 16, { order: 4 });
    const vp = map(mm, file, 16, { prot: RW });
    const vs = map(mm, file, 16, { prot: RW, flags: MAP_SHARED, addr: BASE + HPAGE });
    mm.touch(vp + 3 * PG, 1, 'write');
    mm.touch(vs + 3 * PG, 1, 'write');
    expect(present(mm, vp, 16)).toBe('...P............');
    expect(present(mm, vs, 16)).toBe('...P............');
    expect(mm.pagemap(vp + 3 * PG, 1)[0].file).toBe(false);
    expect(mm.pagemap(vs + 3 * PG, 1)[0]).toMatchObject({ file: true, dirty: true, writable: true });
    expect(file.page(3)!.dirty).toBe(true);
    expect(file.page(4)!.dirty).toBe(false);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('R2.4 fault-around and large folios', () => {
  it('R2.4 (6.18) a folio that fits the VMA and the PTE table is mapped whole, beyond the 16-page window', async () => {
    const { mmu, mm, file } = await setup({}, 64);
    file.prime(0, 32, { order: 5 });
    const va = map(mm, file, 64);
    mm.touch(va + 2 * PG, 1);
    expect(present(mm, va, 64)).toBe(pm(64, [0, 31]));
    expect(mmu.stats().faultAroundMapped).toBe(32);
    expect(mm.rusage().minflt).toBe(1);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.4 a folio sticking out of the VMA is mapped only inside the window', async () => {
    const { mmu, mm, file } = await setup({}, 64);
    file.prime(0, 32, { order: 5 });
    const va = map(mm, file, 24, { offset: 8 }); // file 8..31 of the folio 0..31
    mm.touch(va, 1);
    expect(present(mm, va, 24)).toBe(pm(24, [0, 15]));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.5 a locked or readahead-marked head makes fault-around skip the whole folio; hwpoison skips one page', async () => {
    const { mmu, mm, file } = await setup({}, 64);
    file.prime(0, 32, { order: 4 });
    file.setPageState(0, { locked: true });
    file.setPageState(21, { hwpoison: true });
    const va = map(mm, file, 32);
    mm.touch(va + 20 * PG, 1);
    expect(present(mm, va, 32)).toBe(pm(32, [16, 20], [22, 31]));
    file.setPageState(0, { locked: false });
    mm.touch(va + 3 * PG, 1);
    expect(present(mm, va, 32)).toBe(pm(32, [0, 20], [22, 31]));
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('R3.3 do_set_pmd: a PMD-sized folio mapped by one PMD', () => {
  async function pmdSetup(opts: MmuOptions = {}) {
    const s = await setup(opts);
    s.file.prime(0, 512, { order: 9 });
    return s;
  }

  it('R3.3 one read fault maps 512 pages with one PMD: file RSS +512, thpFileMapped +1, no PTE table', async () => {
    const { mmu, mm, file } = await pmdSetup();
    const head = file.page(0)!;
    expect(head.order).toBe(9);
    expect(head.pfn % 512).toBe(0);
    const va = map(mm, file, 512);
    const before = mmu.stats();
    mm.touch(va + 100 * PG, 1);
    expect(mm.rusage()).toEqual({ minflt: 1, majflt: 0 });
    expect(present(mm, va, 512)).toBe('P'.repeat(512));
    const pages = mm.pagemap(va, 512);
    expect(pages.every((p, i) => p.pfn === head.pfn + i && p.file && p.exclusive && !p.writable)).toBe(true);
    expect(mm.status().rssFile).toBe(512 * PG);
    expect(mm.status().pageTables).toBe(3 * PG); // PGD, PUD, PMD: the preallocated table was freed (R3.5)
    expect(mmu.stats().thpFileMapped).toBe(before.thpFileMapped + 1);
    expect(mmu.stats().faultAroundMapped).toBe(before.faultAroundMapped);
    expect(mmu.stats().pageTables).toBe(before.pageTables + 2); // PUD and PMD tables, no PTE table
    expect(file.page(0)).toMatchObject({ refcount: 2, mapcount: 1 });
    expect(file.page(1)).toMatchObject({ refcount: 1, mapcount: 0 });
    expect(mm.smaps()[0].rss).toBe(512 * PG);
    mm.touch(va, 512 * PG);
    expect(mm.rusage().minflt).toBe(1);
    expect(mm.read(va + 300 * PG + 5, 1)[0]).toBe(300 & 0xff);
    // The walker sees a 2 MiB leaf.
    expect(mm.translate(va + 511 * PG + 7)).toBe((head.pfn + 511) * PG + 7);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R3.2 step 2 / R3.3 the PMD is made by finish_fault too (fault-around off)', async () => {
    const { mmu, mm, file } = await pmdSetup({ faultAroundBytes: 4096 });
    const va = map(mm, file, 512);
    mm.touch(va + 7 * PG, 1);
    expect(present(mm, va, 512)).toBe('P'.repeat(512));
    expect(mmu.stats().thpFileMapped).toBe(1);
    expect(mm.status().pageTables).toBe(3 * PG);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R3.3 a second file offset block: the folio at 512..1023 maps at a VMA with offset 512', async () => {
    const { mmu, mm, file } = await setup();
    file.prime(512, 512, { order: 9 });
    const va = map(mm, file, 512, { offset: 512 });
    mm.touch(va, 1);
    expect(present(mm, va, 512)).toBe('P'.repeat(512));
    expect(mmu.stats().thpFileMapped).toBe(1);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R3.3 no PMD when the file offset is not congruent mod 512: only the window is mapped by PTEs', async () => {
    // 1536 pages: the folio is not the EOF folio (R2.4: that one would map no table at all).
    const { mmu, mm, file } = await setup({}, 1536);
    file.prime(512, 512, { order: 9 });
    const va = map(mm, file, 512, { offset: 500 }); // VA block maps file 500..1011
    mm.touch(va + 12 * PG, 1); // file 512
    expect(present(mm, va, 32)).toBe(pm(32, [12, 15]));
    expect(mmu.stats().thpFileMapped).toBe(0);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R3.3 no PMD when the 2 MiB block is not inside the VMA', async () => {
    const { mmu, mm, file } = await pmdSetup();
    const va = map(mm, file, 511);
    mm.touch(va, 1);
    expect(mmu.stats().thpFileMapped).toBe(0);
    expect(present(mm, va, 32)).toBe(pm(32, [0, 15])); // the folio does not fit: window only
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R3.3 MADV_NOHUGEPAGE refuses the PMD; fault-around then maps the fitting folio whole by PTEs', async () => {
    const { mmu, mm, file } = await pmdSetup();
    const va = map(mm, file, 512);
    mm.madvise(va, 512 * PG, MADV_NOHUGEPAGE);
    mm.touch(va, 1);
    expect(mmu.stats().thpFileMapped).toBe(0);
    expect(present(mm, va, 512)).toBe('P'.repeat(512));
    expect(mmu.stats().faultAroundMapped).toBe(512);
    expect(mm.status().pageTables).toBe(4 * PG);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R3.3 a hwpoisoned subpage refuses the PMD', async () => {
    const { mmu, mm, file } = await pmdSetup();
    file.setPageState(300, { hwpoison: true });
    const va = map(mm, file, 512);
    mm.touch(va, 1);
    expect(mmu.stats().thpFileMapped).toBe(0);
    expect(present(mm, va, 512)).toBe(pm(512, [0, 299], [301, 511]));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R11.2 two address spaces PMD-map the folio: nothing is exclusive; each counts 512 pages', async () => {
    const { mmu, mm, file } = await pmdSetup();
    const other = mmu.createAddressSpace();
    const va = map(mm, file, 512);
    const vb = map(other, file, 512, { flags: MAP_SHARED });
    mm.touch(va, 1);
    expect(mm.pagemap(va + 9 * PG, 1)[0].exclusive).toBe(true);
    other.touch(vb + 200 * PG, 1);
    expect(mm.pagemap(va, 512).some((p) => p.exclusive)).toBe(false);
    expect(other.status().rssFile).toBe(512 * PG);
    expect(file.page(0)).toMatchObject({ mapcount: 2, refcount: 3 });
    expect(mmu.stats().thpFileMapped).toBe(2);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R3.3 a PMD mapping and a PTE mapping of the same folio: per-page mapcounts stay exact', async () => {
    const { mmu, mm, file } = await pmdSetup();
    const other = mmu.createAddressSpace();
    const va = map(mm, file, 512);
    const vb = map(other, file, 16, { offset: 32 });
    mm.touch(va, 1);
    other.touch(vb, 1);
    expect(present(other, vb, 16)).toBe('P'.repeat(16));
    expect(mm.pagemap(va + 31 * PG, 3).map((p) => p.exclusive)).toEqual([true, false, false]);
    expect(other.pagemap(vb, 1)[0].exclusive).toBe(false);
    expect(file.page(32)).toMatchObject({ mapcount: 1, refcount: 2 });
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('R9.11 / R3.3 zapping and splitting a PMD mapping', () => {
  async function mapped(opts: MmuOptions = {}, prot = PROT_READ, flags = MAP_PRIVATE) {
    const s = await setup(opts);
    s.file.prime(0, 512, { order: 9 });
    const va = map(s.mm, s.file, 512, { prot, flags });
    s.mm.touch(va, 1);
    expect(s.mmu.stats().thpFileMapped).toBe(1);
    return { ...s, va };
  }

  it('R9.11 munmap of the whole 2 MiB zaps the PMD: RSS -512, references back to the cache only', async () => {
    const { mmu, mm, file, va } = await mapped();
    mm.munmap(va, 512 * PG);
    expect(mm.status()).toMatchObject({ rssFile: 0, pageTables: PG }); // the PMD and PUD tables go too
    expect(file.page(0)).toMatchObject({ mapcount: 0, refcount: 1 });
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R3.3 munmap of half splits the PMD (a page-cache PMD split unmaps it); the other half refaults through PTEs', async () => {
    const { mmu, mm, file, va } = await mapped();
    mm.munmap(va + 256 * PG, 256 * PG);
    expect(mm.maps()).toHaveLength(1);
    expect(present(mm, va, 256)).toBe('.'.repeat(256));
    expect(mm.status().rssFile).toBe(0);
    expect(file.page(0)).toMatchObject({ mapcount: 0, refcount: 1 });
    expect(mmu.checkInvariants()).toEqual([]);
    const flt = mm.rusage().minflt;
    mm.touch(va + 10 * PG, 1);
    expect(mm.rusage().minflt).toBe(flt + 1);
    expect(present(mm, va, 256)).toBe(pm(256, [0, 15])); // the folio no longer fits the VMA
    expect(mm.pagemap(va + 10 * PG, 1)[0].pfn).toBe(file.page(10)!.pfn);
    expect(mmu.stats().thpFileMapped).toBe(1);
    expect(() => mm.read(va + 256 * PG, 1)).toThrow(/SIGSEGV/);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.6 mprotect(PROT_NONE) of one page inside the PMD splits it: that page faults SEGV_ACCERR, the rest reads', async () => {
    const { mmu, mm, file, va } = await mapped();
    mm.mprotect(va + 7 * PG, PG, 0);
    expect(mm.maps()).toHaveLength(3);
    expect(present(mm, va, 512)).toBe('.'.repeat(512)); // the PMD went with the split (R3.3)
    let err: unknown;
    try { mm.read(va + 7 * PG, 1); } catch (e) { err = e; }
    expect(err).toMatchObject({ name: 'SegmentationFault', code: 'SEGV_ACCERR' });
    expect(mm.read(va + 8 * PG, 1)[0]).toBe(8);
    expect(mm.read(va + 6 * PG, 1)[0]).toBe(6);
    expect(file.page(7)).toMatchObject({ mapcount: 0 });
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.1 MADV_DONTNEED of part of the block removes the PMD; the next touch maps the whole folio again', async () => {
    const { mmu, mm, va } = await mapped();
    mm.madvise(va + 4 * PG, 4 * PG, MADV_DONTNEED);
    expect(present(mm, va, 512)).toBe('.'.repeat(512));
    mm.touch(va + 100 * PG, 1);
    expect(present(mm, va, 512)).toBe('P'.repeat(512));
    expect(mmu.stats().thpFileMapped).toBe(2);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R5.2 a private write through the PMD splits it and copies the one page', async () => {
    const { mmu, mm, file, va } = await mapped({}, RW);
    mm.write(va + 5 * PG, new Uint8Array([0xaa]));
    expect(mm.rusage().minflt).toBe(2);
    expect(mm.pagemap(va + 5 * PG, 1)[0]).toMatchObject({ present: true, file: false, exclusive: true });
    expect(present(mm, va, 8)).toBe('.....P..');
    expect(mm.status()).toMatchObject({ rssAnon: PG, rssFile: 0 });
    expect(mm.read(va + 6 * PG, 1)[0]).toBe(6); // refaults: the rest of the folio, minor
    expect(mm.rusage()).toEqual({ minflt: 3, majflt: 0 });
    expect(file.page(5)!.dirty).toBe(false);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R5.9 a shared write through the PMD splits it; msync writes back just that page', async () => {
    const { mmu, mm, file, backend, va } = await mapped({}, RW, MAP_SHARED);
    mm.write(va + 7 * PG + 1, new Uint8Array([0xbb]));
    expect(mm.pagemap(va + 7 * PG, 1)[0]).toMatchObject({ file: true, dirty: true, writable: true });
    expect(file.dirtyPages).toBe(1);
    mm.msync(va, 512 * PG, MS_SYNC);
    expect(backend.writes).toBe(1);
    expect(backend.bytes()[7 * PG + 1]).toBe(0xbb);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R10.2 truncating into a PMD-mapped folio zaps the PMD; the rest refaults by PTEs, beyond EOF is SIGBUS', async () => {
    const { mmu, mm, file, va } = await mapped();
    file.truncate(300 * PG);
    expect(present(mm, va, 512)).toBe('.'.repeat(512));
    expect(file.cachedPages).toBe(300);
    mm.touch(va + 290 * PG, 1);
    expect(present(mm, va, 512)).toBe(pm(512, [288, 299])); // never past EOF, never a PMD
    expect(mmu.stats().thpFileMapped).toBe(1);
    expect(() => mm.read(va + 300 * PG, 1)).toThrow(BusError);
    mm.touch(va, 1);
    expect(mmu.stats().thpFileMapped).toBe(1);
    expect(mmu.checkInvariants()).toEqual([]);
    mm.destroy();
    file.close();
    expect(mmu.stats().freeFrames).toBe(mmu.stats().ramFrames - 1); // the whole folio went back
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('fork: the child does not inherit the PMD of a file mapping and maps its own on a fault', async () => {
    const { mmu, mm, file, va } = await mapped();
    const child = mm.fork();
    expect(present(child, va, 4)).toBe('....');
    child.touch(va + 3 * PG, 1);
    expect(present(child, va, 512)).toBe('P'.repeat(512));
    expect(file.page(0)).toMatchObject({ mapcount: 2, refcount: 3 });
    child.destroy();
    expect(file.page(0)).toMatchObject({ mapcount: 1, refcount: 2 });
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('destroy and close free everything: every frame of the folio is free again', async () => {
    const { mmu, mm, file, va } = await mapped();
    mm.touch(va, 512 * PG);
    mm.destroy();
    expect(file.page(0)).toMatchObject({ mapcount: 0, refcount: 1 });
    file.close();
    expect(mmu.stats().freeFrames).toBe(mmu.stats().ramFrames - 1);
    expect(mmu.stats().pageTables).toBe(0);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('GUP and PMD-sized folios', () => {
  it('R9.4 MAP_POPULATE of a PMD-sized folio: every page present at return, one fault', async () => {
    const { mmu, mm, file } = await setup();
    file.prime(0, 512, { order: 9 });
    const va = map(mm, file, 512, { flags: MAP_PRIVATE | MAP_POPULATE });
    expect(present(mm, va, 512)).toBe('P'.repeat(512));
    expect(mm.rusage()).toEqual({ minflt: 1, majflt: 0 });
    expect(mm.status().rssFile).toBe(512 * PG);
    mm.touch(va, 512 * PG);
    expect(mm.rusage().minflt).toBe(1);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.3 MADV_POPULATE_READ over a PMD mapping succeeds (GUP splits it and follows PTEs)', async () => {
    const { mmu, mm, file } = await setup();
    file.prime(0, 512, { order: 9 });
    const va = map(mm, file, 512);
    mm.touch(va, 1);
    expect(mmu.stats().thpFileMapped).toBe(1);
    mm.madvise(va, 512 * PG, MADV_POPULATE_READ);
    expect(present(mm, va, 512)).toBe('P'.repeat(512));
    expect(mm.status().rssFile).toBe(512 * PG);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('eviction of large folios', () => {
  it('R9.11 a folio is evicted whole, and only when none of its pages is mapped', async () => {
    const { mmu, mm, file } = await setup({ faultAroundBytes: 4096 }, 64);
    file.prime(0, 16, { order: 4 });
    const free = mmu.stats().freeFrames;
    const va = map(mm, file, 4, { offset: 8 });
    mm.touch(va, 1); // maps file page 8 alone (the folio sticks out of the VMA)
    expect(file.evict()).toBe(0);
    expect(file.cachedPages).toBe(16);
    mm.munmap(va, 4 * PG);
    expect(file.evict(0, 0)).toBe(16); // asking for one page takes the folio
    expect(file.cachedPages).toBe(0);
    expect(mmu.stats().freeFrames).toBe(free + 16);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.11 dirty subpages are written back when their folio is evicted', async () => {
    const { mmu, mm, file, backend } = await setup({ faultAroundBytes: 4096 }, 64);
    file.prime(0, 16, { order: 4 });
    const va = map(mm, file, 16, { prot: RW, flags: MAP_SHARED });
    mm.write(va + 2 * PG, new Uint8Array([1, 2, 3]));
    mm.write(va + 9 * PG, new Uint8Array([4, 5, 6]));
    mm.munmap(va, 16 * PG);
    expect(file.dirtyPages).toBe(2);
    expect(file.evict()).toBe(16);
    expect(backend.writes).toBe(2);
    expect(backend.bytes().subarray(9 * PG, 9 * PG + 3)).toEqual(new Uint8Array([4, 5, 6]));
    expect(mmu.checkInvariants()).toEqual([]);
  });
});
