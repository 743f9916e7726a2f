// Issue 17 (t17f): one struct-page writer per side. An anonymous or COW fault's frame off
// the per-cpu list is written once as the new anonymous page on the LRU (fault.ts
// new_anon_page: phys.ts pcp_take_raw, page.ts page_init_new_anon, lru.ts
// lru_push_new_anon) and zeroed last; a last put writes the freed record whole onto the
// per-cpu list (lru.ts put_page_inline: lru_unlink, phys.ts pcp_push_whole);
// tlb_finish_mmu skips its swap-cache pass when no batched page was in the swap cache
// (mmu_gather.ts); fork copies the PTEs of anonymous pages inline with the child's RSS
// added per table (fork.ts copy_page_range). Each scenario runs on two fresh machines that
// differ only in index.ts mmu_set_fused_pages (on / off: the writers before), and
// everything must agree: the core's whole linear memory byte for byte (PTEs, struct pages,
// LRU lists in order, the per-cpu list in order, RSS, vmstat, the TLB), statistics,
// rusage, the signals raised, and the invariant checker (empty).
import { describe, it, expect } from 'vitest';
import {
  createMmu, MemoryFile, PROT_READ, MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS, MAP_FIXED, MAP_LOCKED,
  MADV_DONTNEED, MADV_PAGEOUT, type Mmu, type AddressSpace,
} from '../../src/index.js';
import { anon, PG, RW, expectSameMachines } from './mm-helpers.js';

type File = ReturnType<Mmu['openFile']>;
type Side = { mmu: Mmu; mm: AddressSpace; file: File };
type X = { mmu_set_fused_pages(on: number): void };

const BASE = 0x4000_0000; // a 2 MiB boundary

function content(pages: number): Uint8Array {
  const b = new Uint8Array(pages * PG);
  for (let i = 0; i < b.length; i += 61) b[i] = (i / 61) & 255;
  return b;
}

// A machine with a warm per-cpu list and a cached file; `warm` pages are faulted and
// unmapped first (with the switch already set, so the list was built by the side's writers).
async function side(fused: boolean, ramBytes: number, warm: number, filePages: number): Promise<Side> {
  const mmu = await createMmu({ ramBytes });
  (mmu.core.x as unknown as X).mmu_set_fused_pages(fused ? 1 : 0);
  if (warm > 0) {
    const w = mmu.createAddressSpace();
    const va = anon(w, warm);
    w.touch(va, warm * PG, 'write');
    w.munmap(va, warm * PG);
    w.destroy();
  }
  const file = mmu.openFile(new MemoryFile(content(filePages)));
  file.prime(0, filePages, { order: 0 });
  return { mmu, mm: mmu.createAddressSpace(), file };
}

function outcome(f: () => unknown): unknown {
  try { f(); return null; } catch (e) { return [(e as Error).constructor.name, String((e as Error).message)]; }
}

// Run `scenario` with the fused writers on and off; every step's outcome and the whole
// state must agree.
async function sameState(scenario: (s: Side, step: (f: () => unknown) => void) => void,
  { ramBytes = 24 << 20, warm = 1500, filePages = 1200 } = {}): Promise<Side> {
  const sides: Side[] = [];
  const outs: unknown[][] = [];
  for (const fused of [true, false]) {
    const s = await side(fused, ramBytes, warm, filePages);
    const out: unknown[] = [];
    scenario(s, (f) => {
      out.push(outcome(f), s.mmu.stats()); // the counters after each step, too
      expect(s.mmu.checkInvariants()).toEqual([]);
    });
    expect(s.mmu.checkInvariants()).toEqual([]);
    sides.push(s);
    outs.push(out);
  }
  const [a, b] = sides;
  expect(outs[0]).toEqual(outs[1]);
  expectSameMachines(a, b, false);
  // What the allocator hands out next (the per-cpu list's order) and what reclaim takes.
  const next = (s: Side) => {
    const r: unknown[] = [s.mmu.reclaim(64)];
    for (let i = 0; i < 200; i++) {
      let pfn = -1;
      const err = outcome(() => { pfn = s.mmu.phys.alloc(0); });
      r.push(err ?? pfn);
    }
    r.push(s.mmu.stats().freeFrames);
    return r;
  };
  expect(next(a)).toEqual(next(b));
  expect(a.mmu.checkInvariants()).toEqual([]);
  return a;
}

describe('issue 17 t17f: one struct-page writer per side leaves the state of the writers before', () => {
  it('R4.2 R9.1 anonymous write faults over three PTE tables, munmap (the frames back on the per-cpu list), and again', async () => {
    const s = await sameState(({ mm }, step) => {
      const va = anon(mm, 1100, RW, MAP_FIXED, BASE);
      step(() => mm.touch(va, 1100 * PG, 'write'));
      expect(mm.rusage().minflt).toBe(1100);
      step(() => mm.munmap(va, 1100 * PG));
      const vb = anon(mm, 700, RW, MAP_FIXED, BASE + 0x40_0000);
      step(() => mm.touch(vb, 700 * PG, 'write'));
      step(() => mm.write(vb + 3 * PG, new Uint8Array([1, 2, 3])));
    });
    expect(s.mmu.stats().pgfree).toBeGreaterThan(1100);
  });

  it('R4.2 single faults through do_user_addr_fault (not a bulk touch), then MADV_DONTNEED', async () => {
    await sameState(({ mm }, step) => {
      const va = anon(mm, 300, RW, MAP_FIXED, BASE);
      for (let i = 0; i < 300; i += 3) step(() => mm.write(va + i * PG + 5, new Uint8Array([i & 255])));
      step(() => mm.madvise(va, 150 * PG, MADV_DONTNEED));
      step(() => mm.touch(va, 300 * PG, 'write'));
    });
  });

  it('R4.2 the per-cpu list running empty mid-run (buddy frames), then a munmap past its high mark (drained to the buddy lists)', async () => {
    await sameState(({ mm }, step) => {
      const va = anon(mm, 4000, RW, MAP_FIXED, BASE); // more than the warm list holds, > half of RAM
      step(() => mm.touch(va, 4000 * PG, 'write'));
      step(() => mm.munmap(va, 4000 * PG));
      const vb = anon(mm, 2500, RW, MAP_FIXED, BASE);
      step(() => mm.touch(vb, 2500 * PG, 'write'));
    }, { ramBytes: 24 << 20, warm: 1500, filePages: 64 });
  });

  it('R4.2 a cold machine: every frame from the buddy lists, no per-cpu list yet', async () => {
    await sameState(({ mm }, step) => {
      const va = anon(mm, 600, RW, MAP_FIXED, BASE);
      step(() => mm.touch(va, 600 * PG, 'write'));
      step(() => mm.munmap(va, 600 * PG));
    }, { warm: 0, filePages: 64 });
  });

  it('R4.2 no free frame left mid-run: reclaim, then the run goes on', async () => {
    await sameState(({ mmu, mm }, step) => {
      const pages = mmu.stats().freeFrames + 300;
      const va = anon(mm, pages, RW, MAP_FIXED, BASE);
      step(() => mm.touch(va, pages * PG, 'write'));
    });
  });

  it('R5.5 R5.6 R5.4 R5.3 fork copies anonymous PTEs; the child copies, the parent reuses; exit frees', async () => {
    await sameState(({ mm }, step) => {
      const va = anon(mm, 700, RW, MAP_FIXED, BASE);
      step(() => mm.touch(va, 700 * PG, 'write'));
      const child = mm.fork();
      expect(child.rusage()).toBeDefined();
      step(() => child.touch(va, 350 * PG, 'write'));
      step(() => mm.touch(va, 700 * PG, 'write'));
      step(() => child.destroy());
      const again = mm.fork();
      step(() => again.touch(va + 100 * PG, 10 * PG, 'read'));
      step(() => again.destroy());
      step(() => mm.touch(va, 700 * PG, 'write'));
    });
  });

  it('R5.6 fork of mixed VMAs: a read-only private anonymous one, zero-page PTEs, a shared file and shmem, a private file written', async () => {
    await sameState(({ mm, file }, step) => {
      const ro = anon(mm, 100, RW, MAP_FIXED, BASE);
      step(() => mm.touch(ro, 100 * PG, 'write'));
      step(() => mm.mprotect(ro, 100 * PG, PROT_READ));
      const z = anon(mm, 100, RW, MAP_FIXED, BASE + 0x20_0000);
      step(() => mm.touch(z, 100 * PG, 'read')); // the zero page: not a normal page
      const sh = mm.mmap({ addr: BASE + 0x40_0000, length: 100 * PG, prot: RW, flags: MAP_SHARED | MAP_FIXED, file, offset: 0 });
      step(() => mm.touch(sh, 100 * PG, 'write'));
      const shm = mm.mmap({ addr: BASE + 0x60_0000, length: 50 * PG, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED });
      step(() => mm.touch(shm, 50 * PG, 'write'));
      const pf = mm.mmap({ addr: BASE + 0x80_0000, length: 100 * PG, prot: RW, flags: MAP_PRIVATE | MAP_FIXED, file, offset: 0 });
      step(() => mm.touch(pf, 50 * PG, 'write'));
      step(() => mm.touch(pf + 50 * PG, 50 * PG, 'read'));
      const child = mm.fork();
      step(() => child.touch(z, 100 * PG, 'write'));
      step(() => child.touch(pf, 100 * PG, 'write'));
      step(() => mm.touch(pf, 100 * PG, 'write'));
      step(() => child.munmap(ro, 100 * PG));
      step(() => child.destroy());
    });
  });

  it('R5.8 writes after reads of the zero page, R5.1 private file writes, then munmap', async () => {
    await sameState(({ mm, file }, step) => {
      const va = anon(mm, 600, RW, MAP_FIXED, BASE);
      step(() => mm.touch(va, 600 * PG, 'read'));
      step(() => mm.touch(va, 600 * PG, 'write'));
      const f = mm.mmap({ addr: BASE + 0x40_0000, length: 1100 * PG, prot: RW, flags: MAP_PRIVATE | MAP_FIXED, file, offset: 0 });
      step(() => mm.touch(f, 1100 * PG, 'write'));
      step(() => mm.munmap(f, 1100 * PG));
      step(() => mm.munmap(va, 600 * PG));
    });
  });

  it('R11.6 R9.11 munmap of pages in the swap cache after MADV_PAGEOUT (the swap-cache pass runs), and of swapped-in pages', async () => {
    await sameState(({ mmu, mm }, step) => {
      const va = anon(mm, 64, RW, MAP_FIXED, BASE);
      step(() => mm.touch(va, 64 * PG, 'write'));
      step(() => mm.madvise(va, 32 * PG, MADV_PAGEOUT));
      step(() => mm.touch(va, 8 * PG, 'read')); // swapped in, exclusive: out of the cache
      const child = mm.fork();
      // The child swaps in pages whose entries the parent shares: they stay in the cache.
      step(() => child.touch(va + 16 * PG, 8 * PG, 'read'));
      step(() => mm.munmap(va, 64 * PG)); // the parent's entries go first
      step(() => child.munmap(va, 64 * PG)); // then the last mappings: the swap-cache pass frees them
      step(() => child.destroy());
      expect(mmu.stats().swapUsed).toBe(0);
    }, { ramBytes: 8 << 20, warm: 200, filePages: 16 });
  });

  it('R8.6 munmap of a MAP_LOCKED region (unevictable pages leave the count, not a list)', async () => {
    await sameState(({ mm }, step) => {
      const va = mm.mmap({ addr: BASE, length: 300 * PG, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED | MAP_FIXED });
      step(() => mm.touch(va, 300 * PG, 'write'));
      const vb = anon(mm, 300, RW, MAP_FIXED, BASE + 0x20_0000);
      step(() => mm.touch(vb, 300 * PG, 'write'));
      step(() => mm.munmap(va, 300 * PG));
      step(() => mm.munmap(vb, 300 * PG));
    });
  });
});
