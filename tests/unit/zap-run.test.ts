// Issue 17 (t17d): munmap's side per run. zap_pte_range zaps runs of present normal pages
// in one PTE table in one loop (assembly/unmap.ts zap_run: the gather's range, batch and
// counts once per run, the batch finished at the page that fills it), tlb_finish_mmu frees
// its batch with put_page inlined, tlb_flush_range drops a range smaller than the TLB slot
// by slot, and a TLB fill writes its entry and side slot in fewer stores. Every test runs
// the same steps on two fresh machines, zap runs off (index.ts mmu_set_zap_runs: page by
// page, the path before) and on, and compares everything: page states, RSS, statistics
// (TLB flushes, entries flushed, frees), the file's cached pages, the raw TLB and side
// table, the order the freed frames come back from the allocator (free-list order) and
// what reclaim takes first (LRU order). The invariant check comes back empty after each.
import { describe, it, expect } from 'vitest';
import {
  createMmu, MemoryFile, PAGE_SIZE, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS,
  MADV_DONTNEED, MAP_FIXED, type Mmu, type MmuOptions, type AddressSpace, type File,
} from '../../src/index.js';

const PG = PAGE_SIZE;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

interface Run { mmu: Mmu; mm: AddressSpace; file: File; ranges: [AddressSpace, number, number][] }
type Steps = (r: Run) => void;

function content(pages: number): Uint8Array {
  const b = new Uint8Array(pages * PG);
  for (let i = 0; i < b.length; i++) b[i] = (Math.floor(i / PG) * 7 + (i & 255)) & 0xff;
  return b;
}

function tlbBytes(mmu: Mmu): number[] {
  const x = mmu.wasmExports as { memory: WebAssembly.Memory; mmu_tlb_base(): number; mmu_tlb_entries(): number };
  const n = x.mmu_tlb_entries();
  // The entries, then the int32 side table (assembly/tlb.ts).
  return Array.from(new Uint8Array(x.memory.buffer, x.mmu_tlb_base() >>> 0, n * 64 + n * 16));
}

function snapshot(r: Run, filePages: number): unknown {
  const { mmu } = r;
  const pages = r.ranges.map(([mm, va, n]) => mm.pagemap(va, n));
  const rusage = r.ranges.map(([mm]) => mm.rusage());
  const cached = Array.from({ length: filePages }, (_, i) => r.file.page(i));
  const stats = mmu.stats();
  const tlb = tlbBytes(mmu);
  const free = mmu.phys.freeFrames;
  // LRU order: what reclaim takes first; then the free-list order: the frames handed out next.
  const reclaimed = mmu.reclaim(64);
  const afterReclaim = Array.from({ length: filePages }, (_, i) => r.file.page(i));
  const next: number[] = [];
  for (let i = 0; i < 300; i++) next.push(mmu.phys.alloc(0));
  return { pages, rusage, cached, stats, tlb, free, reclaimed, afterReclaim, next };
}

/** Run `steps` with zap runs off, then on; both end in the same state. */
async function same(steps: Steps, opts: MmuOptions = {}, filePages = 1200): Promise<unknown> {
  const out: unknown[] = [];
  for (const on of [false, true]) {
    const mmu = await createMmu({ ramBytes: 32 << 20, ...opts });
    (mmu.wasmExports as { mmu_set_zap_runs(on: number): void }).mmu_set_zap_runs(on ? 1 : 0);
    const file = mmu.openFile(new MemoryFile(content(filePages)));
    file.prime(0, filePages, { order: 0 });
    const r: Run = { mmu, mm: mmu.createAddressSpace(), file, ranges: [] };
    steps(r);
    expect(mmu.checkInvariants()).toEqual([]);
    out.push(snapshot(r, filePages));
    expect(mmu.checkInvariants()).toEqual([]);
  }
  expect(out[1]).toEqual(out[0]);
  return out[0];
}

function region(r: Run, pages: number, prot: number, flags: number, access: 'read' | 'write', file?: File): number {
  const va = r.mm.mmap({ length: pages * PG, prot, flags, file, offset: 0 });
  r.mm.touch(va, pages * PG, access);
  r.ranges.push([r.mm, va, pages]);
  return va;
}

describe('issue 17 item 2: zap per run gives the per-page state (R9.1, R9.11)', () => {
  it('munmap of anonymous pages over two PTE tables and more than one gather batch (256 pages)', async () => {
    const s = await same((r) => {
      const va = region(r, 700, RW, ANON, 'write');
      r.mm.munmap(va, 700 * PG);
    }) as { stats: Record<string, number> };
    expect(s.stats.tlbFlushRange).toBeGreaterThanOrEqual(3); // the batch filled twice (700 pages)
  });

  it('munmap of private file pages mapped by fault-around (the cache holds them: references dropped at once)', async () => {
    await same((r) => {
      const va = region(r, 1100, PROT_READ, MAP_PRIVATE, 'read', r.file);
      r.mm.munmap(va + 37 * PG, 900 * PG); // from inside one table into another, past two batches
    });
  });

  it('munmap of a shared file mapping with dirty PTEs: the dirty bits go to the folios (R10.2)', async () => {
    const s = await same((r) => {
      const va = region(r, 600, RW, MAP_SHARED, 'write', r.file);
      r.mm.munmap(va, 600 * PG);
    }) as { cached: { dirty?: boolean }[] };
    expect(s.cached.filter((p) => p && p.dirty).length).toBe(600);
  });

  it('holes, COW copies after fork, MADV_DONTNEED, a locked VMA, and the child\'s exit', async () => {
    await same((r) => {
      const a = region(r, 600, RW, ANON, 'write');
      const b = r.mm.mmap({ length: 600 * PG, prot: RW, flags: ANON });
      for (let i = 0; i < 600; i += 3) r.mm.touch(b + i * PG, 1, 'write'); // a run every third page
      r.ranges.push([r.mm, b, 600]);
      const f = region(r, 500, RW, MAP_PRIVATE, 'read', r.file);
      for (let i = 0; i < 500; i += 5) r.mm.touch(f + i * PG, 1, 'write'); // private copies among cached pages
      const child = r.mm.fork();
      child.touch(a + 100 * PG, 300 * PG, 'write'); // the child's own copies
      r.ranges.push([child, a, 600]);
      r.mm.madvise(a + 50 * PG, 400 * PG, MADV_DONTNEED);
      r.mm.mlock(f + 100 * PG, 50 * PG);
      r.mm.munmap(f, 500 * PG);
      r.mm.munmap(b + 1 * PG, 598 * PG);
      child.destroy();
      r.ranges.pop();
      r.mm.munmap(a, 600 * PG);
    });
  });

  it('pages in the swap cache are freed with the batch and leave the swap cache (R9.11)', async () => {
    await same((r) => {
      const a = region(r, 400, RW, ANON, 'write');
      r.mmu.reclaim(300); // out to swap
      r.mm.touch(a, 400 * PG, 'read'); // swapped back in: in the swap cache, mapped
      r.mm.munmap(a, 400 * PG);
    }, { swapBytes: 8 << 20 });
  });

  it('a small TLB (16 entries): range flushes as large as the TLB scan it, smaller ones go slot by slot', async () => {
    await same((r) => {
      const a = region(r, 40, RW, ANON, 'write');
      r.mm.munmap(a + 3 * PG, 5 * PG);
      r.mm.touch(a + 20 * PG, 10 * PG, 'read');
      r.mm.munmap(a + 20 * PG, 20 * PG);
      const b = region(r, 30, RW, ANON, 'read');
      r.mm.munmap(b + 15 * PG, 1 * PG);
    }, { tlbEntries: 16 });
  });
});

describe('issue 17 item 1: a TLB fill\'s fewer stores leave the entry and side slot the checker wants', () => {
  it('after bulk reads and writes every filled page hits from JS with the right frame; INV_TLB_STALE stays clear', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20, tlbEntries: 1024 });
    const file = mmu.openFile(new MemoryFile(content(64)));
    const mm = mmu.createAddressSpace();
    // Below 2^31: the pages the int32 side table holds.
    const va = mm.mmap({ addr: 0x1000_0000, length: 64 * PG, prot: RW, flags: MAP_PRIVATE | MAP_FIXED, file, offset: 0 });
    mm.touch(va, 32 * PG, 'read');
    mm.touch(va + 32 * PG, 32 * PG, 'write');
    expect(mmu.checkInvariants()).toEqual([]);
    const map = mm.pagemap(va, 64);
    for (let i = 0; i < 64; i++) {
      const t = mm.translate(va + i * PG + 5, 'read');
      expect(t).toBe(map[i].pfn * PG + 5);
      expect(mm.read(va + i * PG, 1)[0]).toBe((i * 7) & 0xff);
    }
    // The written pages hit for writes from the side table; the read-only-filled ones do not
    // (their private copies came with the write faults of the second touch only).
    const x = mmu.wasmExports as { memory: WebAssembly.Memory; mmu_tlb_base(): number; mmu_tlb_entries(): number };
    const n = x.mmu_tlb_entries();
    const side = new Int32Array(x.memory.buffer, (x.mmu_tlb_base() >>> 0) + n * 64, n * 4);
    const asidOf = (k: number) => k & 4095;
    for (let i = 0; i < 64; i++) {
      const p = va + i * PG;
      const slot = (p / PG) % n;
      const k32 = side[slot * 4];
      expect(k32 - asidOf(k32)).toBe(p);
      expect(side[slot * 4 + 1] === k32).toBe(i >= 32);
      expect(side[slot * 4 + 2]).toBe(-(2 ** 31)); // no exec
    }
    expect(mmu.checkInvariants()).toEqual([]);
  });
});
