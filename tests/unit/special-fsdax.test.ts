// A file of a DAX file system (ext4 -o dax; createXipFile(…, { fsDax: true })) next to the
// 2.6 XIP mapping of seed 002: what Debian's 6.12 and 7.3 showed on ext4 -o dax (golden dirs
// tests/conformance/golden/*-dax) — a plain DAX VMA (not VM_MIXEDMAP, R5.5), truncate and
// hole punch unmapping the whole file first (ext4_break_layouts, R10.2), fsync / msync
// cleaning dirty DAX PTEs (R7.2), a new block counted major, mlock2(MLOCK_ONFAULT) populating
// the DAX VMA it cannot lock (R8.4), and the daxFolios option (6.15+ refcounted DAX folios).
import { describe, it, expect } from 'vitest';
import {
  createMmu, PAGE_SIZE, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_SHARED, MS_SYNC, MS_ASYNC,
  MADV_REMOVE, MLOCK_ONFAULT, LinuxError, type Mmu, type MmuOptions, type AddressSpace, type XipFile,
} from '../../src/index.js';

const PG = PAGE_SIZE;
const RW = PROT_READ | PROT_WRITE;

async function machine(opts: MmuOptions = {}): Promise<{ mmu: Mmu; mm: AddressSpace }> {
  const mmu = await createMmu({ ramBytes: 16 * 1024 * 1024, ...opts });
  return { mmu, mm: mmu.createAddressSpace() };
}

/** A file of `pages` pages, byte value 0x80 | page (as the conformance scenarios). */
function daxFile(mmu: Mmu, pages: number, fsDax = true, holes: number[] = []): XipFile {
  const b = new Uint8Array(pages * PG);
  for (let i = 0; i < pages; i++) b.fill(0x80 | i, i * PG, (i + 1) * PG);
  return mmu.createXipFile(b, { fsDax, holes });
}

const present = (mm: AddressSpace, va: number, n: number) => mm.pagemap(va, n).map((e) => (e.present ? 1 : 0)).join('');
const delta = (mm: AddressSpace, f: () => void) => {
  const a = mm.rusage();
  f();
  const b = mm.rusage();
  return { minflt: b.minflt - a.minflt, majflt: b.majflt - a.majflt };
};

describe('fsDax: the VMA is a plain DAX VMA, not VM_MIXEDMAP', () => {
  it('R5.5 fork does not copy a shared fs-DAX VMA without anon_vma (the child faults again); a 2.6 XIP (MIXEDMAP) VMA is copied', async () => {
    for (const fsDax of [true, false]) {
      const { mmu, mm } = await machine();
      const f = daxFile(mmu, 4, fsDax);
      const s = mm.mmap({ length: 4 * PG, prot: RW, flags: MAP_SHARED, file: f });
      const p = mm.mmap({ length: 4 * PG, prot: RW, flags: MAP_PRIVATE, file: f });
      mm.touch(s, 4 * PG, 'read');
      mm.touch(p, 4 * PG, 'read');
      mm.write(p + PG, Uint8Array.of(1)); // an anon_vma: the private VMA is copied either way
      const child = mm.fork();
      expect(present(child, s, 4)).toBe(fsDax ? '0000' : '1111');
      expect(present(child, p, 4)).toBe('1111');
      expect(delta(child, () => child.read(s, 1))).toEqual({ minflt: fsDax ? 1 : 0, majflt: 0 });
      expect(child.read(p + PG, 1)[0]).toBe(1);
      expect(mmu.checkInvariants()).toEqual([]);
    }
  });
});

describe('fsDax: truncate and hole punch unmap the whole file first (ext4_break_layouts)', () => {
  it('R10.2 a truncate that keeps every mapped page still unmaps all of them in every mapping; COWed private pages stay', async () => {
    const { mmu, mm } = await machine();
    const f = daxFile(mmu, 8);
    const s = mm.mmap({ length: 8 * PG, prot: RW, flags: MAP_SHARED, file: f });
    const p = mm.mmap({ length: 8 * PG, prot: RW, flags: MAP_PRIVATE, file: f });
    mm.touch(s, 8 * PG, 'read');
    mm.touch(p, 4 * PG, 'read');
    mm.write(p + 2 * PG, Uint8Array.of(7));
    f.truncate(8 * PG); // the same size: only the layout break happens
    expect(present(mm, s, 8)).toBe('00000000');
    expect(present(mm, p, 8)).toBe('00100000');
    expect(mm.read(p + 2 * PG, 1)[0]).toBe(7);
    f.truncate(4 * PG);
    expect(delta(mm, () => expect(mm.read(s + 3 * PG, 1)[0]).toBe(0x83))).toEqual({ minflt: 1, majflt: 0 });
    expect(() => mm.read(s + 5 * PG, 1)).toThrow();
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R10.2 a 2.6 XIP file keeps the mappings below the new size', async () => {
    const { mmu, mm } = await machine();
    const f = daxFile(mmu, 8, false);
    const s = mm.mmap({ length: 8 * PG, prot: RW, flags: MAP_SHARED, file: f });
    mm.touch(s, 8 * PG, 'read');
    f.truncate(4 * PG);
    expect(present(mm, s, 8)).toBe('11110000');
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.1 MADV_REMOVE punches a hole in an fsDax file (the zero page is read there); a 2.6 XIP file answers EOPNOTSUPP', async () => {
    const { mmu, mm } = await machine();
    const f = daxFile(mmu, 8);
    const s = mm.mmap({ length: 8 * PG, prot: RW, flags: MAP_SHARED, file: f });
    mm.touch(s, 8 * PG, 'read');
    mm.madvise(s + 2 * PG, 2 * PG, MADV_REMOVE);
    expect(present(mm, s, 8)).toBe('00000000'); // the whole file was unmapped
    expect(f.isHole(2) && f.isHole(3) && !f.isHole(4)).toBe(true);
    expect(delta(mm, () => expect(mm.read(s + 2 * PG, 1)[0]).toBe(0))).toEqual({ minflt: 1, majflt: 0 });
    expect(mm.pagemap(s + 2 * PG, 1)[0].zeroPage).toBe(true);
    expect(mm.read(s + 4 * PG, 1)[0]).toBe(0x84);
    const x = daxFile(mmu, 2, false);
    const xs = mm.mmap({ length: 2 * PG, prot: RW, flags: MAP_SHARED, file: x });
    expect(() => mm.madvise(xs, PG, MADV_REMOVE)).toThrow(LinuxError);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('fsDax: writeback cleans dirty DAX PTEs, a new block is a major fault', () => {
  it('R7.2 msync(MS_SYNC) and fsync write-protect the dirty shared PTEs (the next write is a pfn_mkwrite fault); MS_ASYNC does not', async () => {
    const { mmu, mm } = await machine();
    const f = daxFile(mmu, 4);
    const s = mm.mmap({ length: 4 * PG, prot: RW, flags: MAP_SHARED, file: f });
    mm.write(s, Uint8Array.of(9));
    mm.write(s + PG, Uint8Array.of(9));
    mm.msync(s, 4 * PG, MS_ASYNC);
    expect(mm.pagemap(s, 2).map((e) => e.writable)).toEqual([true, true]);
    mm.msync(s, PG, MS_SYNC); // the range only
    expect(mm.pagemap(s, 2).map((e) => e.writable)).toEqual([false, true]);
    const before = f.counts.pfnMkwrites;
    expect(delta(mm, () => mm.write(s, Uint8Array.of(10)))).toEqual({ minflt: 1, majflt: 0 });
    expect(f.counts.pfnMkwrites - before).toBe(1);
    f.sync(); // fsync
    expect(mm.pagemap(s, 2).map((e) => e.writable)).toEqual([false, false]);
    expect(f.read(0, 1)[0]).toBe(10);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R7.2 a 2.6 XIP file: msync(MS_SYNC) leaves the PTE writable', async () => {
    const { mmu, mm } = await machine();
    const f = daxFile(mmu, 2, false);
    const s = mm.mmap({ length: 2 * PG, prot: RW, flags: MAP_SHARED, file: f });
    mm.write(s, Uint8Array.of(9));
    mm.msync(s, 2 * PG, MS_SYNC);
    expect(mm.pagemap(s, 1)[0].writable).toBe(true);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R7.2 R11.6 a shared write that allocates a block for a hole is major on fsDax (dax_iomap_pte_fault, IOMAP_F_NEW), minor on 2.6 XIP; a private COW of a hole is minor', async () => {
    for (const fsDax of [true, false]) {
      const { mmu, mm } = await machine();
      const f = daxFile(mmu, 4, fsDax, [1, 2, 3]);
      const s = mm.mmap({ length: 4 * PG, prot: RW, flags: MAP_SHARED, file: f });
      const p = mm.mmap({ length: 4 * PG, prot: RW, flags: MAP_PRIVATE, file: f });
      const maj = fsDax ? 1 : 0;
      expect(delta(mm, () => mm.write(s + PG, Uint8Array.of(1)))).toEqual({ minflt: 1 - maj, majflt: maj }); // none PTE
      mm.read(s + 2 * PG, 1); // the zero page, read-only
      expect(delta(mm, () => mm.write(s + 2 * PG, Uint8Array.of(2)))).toEqual({ minflt: 1 - maj, majflt: maj }); // pfn_mkwrite
      expect(delta(mm, () => mm.write(p + 3 * PG, Uint8Array.of(3)))).toEqual({ minflt: 1, majflt: 0 });
      expect(f.isHole(1) || f.isHole(2)).toBe(false);
      expect(f.isHole(3)).toBe(true);
      expect(mmu.checkInvariants()).toEqual([]);
    }
  });
});

describe('R8.4 mlock of a DAX VMA', () => {
  it('R8.4 R8.1 mlock2(MLOCK_ONFAULT) cannot lock a DAX VMA but populates it (__mm_populate skips only VM_LOCKONFAULT VMAs); an anonymous VMA stays unpopulated', async () => {
    const { mmu, mm } = await machine();
    const f = daxFile(mmu, 8);
    const s = mm.mmap({ length: 8 * PG, prot: PROT_READ, flags: MAP_SHARED, file: f });
    const a = mm.mmap({ length: 8 * PG, prot: RW, flags: MAP_PRIVATE | 0x20 });
    expect(delta(mm, () => mm.mlock2(s, 8 * PG, MLOCK_ONFAULT))).toEqual({ minflt: 8, majflt: 0 });
    expect(present(mm, s, 8)).toBe('11111111');
    expect(mm.status().vmLck).toBe(0);
    expect(delta(mm, () => mm.mlock2(a, 8 * PG, MLOCK_ONFAULT))).toEqual({ minflt: 0, majflt: 0 });
    expect(present(mm, a, 8)).toBe('00000000');
    expect(mm.status().vmLck).toBe(8 * PG);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('daxFolios: fs-DAX pages as refcounted folios (6.15+) or raw pfns (before)', () => {
  it('R11.1 daxFolios (default): pagemap reports a file page, exclusive while mapped once; smaps counts it; false: neither (6.12); 2.6 XIP never', async () => {
    for (const daxFolios of [true, false]) {
      const { mmu, mm } = await machine({ daxFolios });
      const f = daxFile(mmu, 4);
      const x = daxFile(mmu, 4, false);
      const s = mm.mmap({ length: 4 * PG, prot: PROT_READ, flags: MAP_SHARED, file: f });
      const p = mm.mmap({ length: 4 * PG, prot: PROT_READ, flags: MAP_PRIVATE, file: f });
      const xs = mm.mmap({ length: 4 * PG, prot: PROT_READ, flags: MAP_SHARED, file: x });
      mm.touch(s, 2 * PG, 'read');
      mm.read(p, 1);
      mm.read(xs, 1);
      const e = mm.pagemap(s, 2);
      expect(e.map((q) => [q.file, q.exclusive])).toEqual(daxFolios ? [[true, false], [true, true]] : [[false, false], [false, false]]);
      expect(mm.pagemap(xs, 1)[0].file).toBe(false);
      const sm = mm.smaps().find((v) => v.start === s)!;
      expect(sm.rss).toBe(daxFolios ? 2 * PG : 0);
      expect(sm.referenced).toBe(daxFolios ? 2 * PG : 0);
      expect(mmu.checkInvariants()).toEqual([]);
    }
  });

  it('R5.6 R7.1 daxFolios false: a fork child\'s write to a DAX pfn it shares takes a retried fault first (the copied PTE is old); true: one fault', async () => {
    for (const daxFolios of [true, false]) {
      const { mmu, mm } = await machine({ daxFolios });
      const f = daxFile(mmu, 4);
      const p = mm.mmap({ length: 4 * PG, prot: RW, flags: MAP_PRIVATE, file: f });
      mm.touch(p, 2 * PG, 'read');
      mm.write(p + PG, Uint8Array.of(1)); // an anon_vma: the VMA is copied at fork
      const child = mm.fork();
      expect(delta(child, () => child.write(p, Uint8Array.of(2)))).toEqual({ minflt: daxFolios ? 1 : 2, majflt: 0 });
      expect(child.pagemap(p, 1)[0]).toMatchObject({ file: false, exclusive: true });
      expect(mm.read(p, 1)[0]).toBe(0x80);
      expect(f.read(0, 1)[0]).toBe(0x80);
      expect(mmu.checkInvariants()).toEqual([]);
    }
  });
});
