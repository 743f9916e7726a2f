// The direct fault paths of issue 17 (assembly/fault.ts anon_write_fast, wp_anon_fast,
// cow_file_fast) leave exactly the state of the general path (handle_mm_fault and its do_*
// handlers). A cold machine (nothing freed yet: an empty per-cpu list) runs with the direct
// paths off (index.ts mmu_set_direct_faults), so every fault there takes the general path;
// a machine that mapped, touched and unmapped memory first has a warm per-cpu list (phys.ts
// alloc_pcp_user) and takes the direct paths. Each scenario runs on both, and everything a program or the
// invariant checker can see must agree: PTE bits, page flags (LRU list, anon, exclusive,
// mlocked …), refcounts and mapcounts, RSS, fault counts, vmstat counters, bytes.
import { describe, it, expect } from 'vitest';
import {
  createMmu, MemoryFile, PROT_READ, MAP_PRIVATE, MAP_LOCKED, MADV_GUARD_INSTALL, type Mmu, type AddressSpace,
} from '../../src/index.js';
import { anon, PG, RW, expectSegv } from './mm-helpers.js';

type Scenario = (mmu: Mmu, mm: AddressSpace) => { spaces: AddressSpace[]; ranges: [number, number][]; file?: ReturnType<Mmu['openFile']>; filePages?: number };

async function machine(warm: boolean): Promise<{ mmu: Mmu; mm: AddressSpace }> {
  const mmu = await createMmu({ ramBytes: 16 << 20 });
  if (!warm) (mmu.core.x as unknown as { mmu_set_direct_faults(on: number): void }).mmu_set_direct_faults(0);
  if (warm) { // fill the per-cpu list: 1,024 frames freed, the direct paths have frames
    const w = mmu.createAddressSpace();
    const va = anon(w, 1024);
    w.touch(va, 1024 * PG, 'write');
    w.munmap(va, 1024 * PG);
    w.destroy();
  }
  return { mmu, mm: mmu.createAddressSpace() };
}

// Everything visible about the scenario's pages, without frame numbers (the two machines
// hand out different frames).
function snapshot(mmu: Mmu, spaces: AddressSpace[], ranges: [number, number][], file?: ReturnType<Mmu['openFile']>, filePages = 0) {
  const x = mmu.core.x;
  const pages = spaces.map((mm) => ranges.map(([va, n]) => mm.pagemap(va, n).map((p) => {
    const { pfn, ...rest } = p;
    const info = p.present && !p.zeroPage ? { flags: x.page_info(pfn, 0), ref: x.page_info(pfn, 1), map: x.page_info(pfn, 2) } : null;
    return { ...rest, info };
  })));
  const data = spaces.map((mm) => ranges.map(([va, n]) => {
    let sum = 0;
    const present = mm.pagemap(va, n).map((p) => p.present);
    for (let i = 0; i < n; i++) {
      if (!present[i]) continue; // a guard page or a hole: reading it would fault or map
      const b = mm.read(va + i * PG, 8);
      sum = (sum * 31 + b[0] + b[7] * 7) % 1e9;
    }
    return sum;
  }));
  const cached = file ? Array.from({ length: filePages }, (_, i) => {
    const c = file.page(i);
    if (!c) return null;
    const { pfn, headPfn, ...rest } = c;
    return rest;
  }) : [];
  return { pages, data, cached, status: spaces.map((mm) => mm.status()), rusage: spaces.map((mm) => mm.rusage()) };
}

const COUNTERS = ['pgfault', 'pgmajfault', 'pgalloc', 'pgfree', 'cowCopies', 'wpReuses', 'zeroPageMapped', 'tlbFlushPage', 'sigsegv', 'sigbus', 'freeFrames', 'pageTables'] as const;

// Run `scenario` on a cold and a warm machine; both must end in the same state, with the
// invariant checker empty on both.
async function sameAsGeneralPath(scenario: Scenario): Promise<ReturnType<typeof snapshot>> {
  const out = [];
  for (const warm of [false, true]) {
    const { mmu, mm } = await machine(warm);
    const s0 = mmu.stats() as unknown as Record<string, number>;
    const r = scenario(mmu, mm);
    const s1 = mmu.stats() as unknown as Record<string, number>;
    expect(mmu.checkInvariants()).toEqual([]);
    const counters = Object.fromEntries(COUNTERS.map((k) => [k, s1[k] - s0[k]]));
    out.push({ snap: snapshot(mmu, r.spaces, r.ranges, r.file, r.filePages), counters });
  }
  expect(out[1].counters).toEqual(out[0].counters);
  expect(out[1].snap).toEqual(out[0].snap);
  return out[0].snap;
}

describe('issue 17 direct fault paths: the same state as the general path', () => {
  it('R4.2 anonymous write faults over three PTE tables: same PTEs, flags, LRU, rmap, RSS, counters', async () => {
    const s = await sameAsGeneralPath((mmu, mm) => {
      const va = anon(mm, 1100, RW, 0, 0x4000_0000);
      mm.touch(va, 1100 * PG, 'write');
      mm.write(va + 3 * PG, Uint8Array.of(9, 8, 7));
      return { spaces: [mm], ranges: [[va, 1100]] };
    });
    expect(s.rusage[0]).toEqual({ minflt: 1100, majflt: 0 });
    expect(s.status[0].rssAnon).toBe(1100 * PG);
    const p = s.pages[0][0][5];
    expect(p).toMatchObject({ present: true, exclusive: true, writable: true, dirty: true, young: true });
  });

  it('R5.3 R5.4 COW after fork: the child copies, then the parent reuses; both sides as the general path leaves them', async () => {
    const s = await sameAsGeneralPath((mmu, mm) => {
      const va = anon(mm, 600, RW, 0, 0x4000_0000);
      mm.touch(va, 600 * PG, 'write');
      mm.write(va + 10 * PG, Uint8Array.of(1, 2, 3));
      const child = mm.fork();
      child.touch(va, 600 * PG, 'write'); // copies
      child.write(va + 10 * PG, Uint8Array.of(4));
      mm.touch(va, 600 * PG, 'write'); // reuse: the child has its own copies now
      return { spaces: [mm, child], ranges: [[va, 600]] };
    });
    expect(s.rusage[1]).toEqual({ minflt: 600, majflt: 0 });
    expect(s.pages[1][0][10]).toMatchObject({ present: true, exclusive: true, writable: true });
    expect(s.pages[0][0][10]).toMatchObject({ present: true, exclusive: true, writable: true });
  });

  it('R5.3 write-protect reuse after the fork child exited: no copy, the page becomes exclusive again', async () => {
    await sameAsGeneralPath((mmu, mm) => {
      const va = anon(mm, 300);
      mm.touch(va, 300 * PG, 'write');
      mm.fork().destroy();
      mm.touch(va, 300 * PG, 'write');
      return { spaces: [mm], ranges: [[va, 300]] };
    });
  });

  it('R5.8 a write after a read of the zero page: a zeroed private copy, RSS counted once', async () => {
    const s = await sameAsGeneralPath((mmu, mm) => {
      const va = anon(mm, 200);
      mm.touch(va, 200 * PG, 'read');
      mm.touch(va, 200 * PG, 'write');
      return { spaces: [mm], ranges: [[va, 200]] };
    });
    expect(s.status[0].rssAnon).toBe(200 * PG);
    expect(s.rusage[0]).toEqual({ minflt: 400, majflt: 0 });
  });

  it('R5.1 page_fault2: private writes to cached file pages copy them; the cached pages stay clean, referenced, unmapped', async () => {
    const s = await sameAsGeneralPath((mmu, mm) => {
      const bytes = new Uint8Array(300 * PG);
      for (let i = 0; i < bytes.length; i += 97) bytes[i] = (i / 97) & 255;
      const file = mmu.openFile(new MemoryFile(bytes));
      file.prime(0, 300, { order: 0 });
      const va = mm.mmap({ length: 300 * PG, prot: RW, flags: MAP_PRIVATE, file, offset: 0 });
      mm.touch(va, 300 * PG, 'write');
      mm.write(va, Uint8Array.of(0xee));
      return { spaces: [mm], ranges: [[va, 300]], file, filePages: 300 };
    });
    expect(s.rusage[0]).toEqual({ minflt: 300, majflt: 0 });
    expect(s.status[0].rssAnon).toBe(300 * PG);
    expect(s.cached[5]).toMatchObject({ dirty: false, referenced: true, mapcount: 0 });
  });

  it('R8.6 a VM_LOCKED VMA falls back to the general path: its new pages are mlocked (unevictable)', async () => {
    const s = await sameAsGeneralPath((mmu, mm) => {
      const va = anon(mm, 100, RW, MAP_LOCKED);
      mm.touch(va, 100 * PG, 'write');
      const child = mm.fork();
      return { spaces: [mm, child], ranges: [[va, 100]] };
    });
    expect(s.pages[0][0].every((p) => p.present && p.mlocked)).toBe(true);
  });

  it('R1.5 a guard marker is never overwritten by a direct path: the write is SIGSEGV, as in the general path', async () => {
    await sameAsGeneralPath((mmu, mm) => {
      const va = anon(mm, 64);
      mm.touch(va, 8 * PG, 'write');
      mm.madvise(va + 20 * PG, 2 * PG, MADV_GUARD_INSTALL);
      mm.touch(va + 8 * PG, 12 * PG, 'write');
      expectSegv(() => mm.touch(va + 20 * PG, PG, 'write'), 'SEGV_MAPERR', va + 20 * PG);
      mm.touch(va + 22 * PG, 42 * PG, 'write');
      return { spaces: [mm], ranges: [[va, 64]] };
    });
  });

  it('R5.4 a read-only private mapping made writable by mprotect after a read: COW of the cached file page on the general path, anon COW direct', async () => {
    await sameAsGeneralPath((mmu, mm) => {
      const file = mmu.openFile(new MemoryFile(new Uint8Array(64 * PG).fill(3)));
      file.prime(0, 64, { order: 0 });
      const va = mm.mmap({ length: 64 * PG, prot: PROT_READ, flags: MAP_PRIVATE, file, offset: 0 });
      mm.touch(va, 64 * PG, 'read');
      mm.mprotect(va, 64 * PG, RW);
      mm.touch(va, 64 * PG, 'write'); // file pages: wp_page_copy through the general path
      const child = mm.fork();
      child.touch(va, 64 * PG, 'write'); // anon pages now: the direct copy
      return { spaces: [mm, child], ranges: [[va, 64]], file, filePages: 64 };
    });
  });
});

describe('issue 17 per-cpu list (phys.ts alloc_pcp_user / free_pcp_user)', () => {
  it('LIFO: the frame freed last is the next anonymous page (hot frames reused first)', async () => {
    const { mmu, mm } = await machine(true);
    const va = anon(mm, 2);
    mm.touch(va, PG, 'write');
    const [p] = mm.pagemap(va, 1);
    mm.munmap(va, PG);
    mm.touch(va + PG, PG, 'write');
    expect(mm.pagemap(va + PG, 1)[0].pfn).toBe(p.pfn);
    expect(mm.read(va + PG, 16)).toEqual(new Uint8Array(16)); // zeroed again
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('a munmap gives its frames back in zap order: the region mapped again gets the same frames in the same order', async () => {
    // mmu_gather.ts tlb_finish_mmu frees a batch last page first, so the LIFO list hands
    // its frames out in the order the zap met them (ascending frames stay ascending: a
    // cold fill of descending frames costs up to 1.8x, issue 17).
    const { mmu, mm } = await machine(true);
    const n = 600; // more than one gather batch (256 pages)
    const va = anon(mm, n);
    mm.touch(va, n * PG, 'write');
    const first = mm.pagemap(va, n).map((p) => p.pfn);
    mm.munmap(va, n * PG);
    const vb = anon(mm, n);
    mm.touch(vb, n * PG, 'write');
    const second = mm.pagemap(vb, n).map((p) => p.pfn);
    // Whole batches (256 pages) come back in the zap's order, the batches last first: the
    // pairs of neighbours in `second` that were neighbours in `first`, in the same order,
    // are all but the batch seams (Linux's order, first page freed first, reverses them all).
    const at = new Map(first.map((pfn, i) => [pfn, i]));
    let kept = 0;
    for (let i = 1; i < n; i++) if (at.get(second[i]) === at.get(second[i - 1])! + 1) kept++;
    expect(kept).toBeGreaterThanOrEqual(n - 4);
    expect(mm.read(vb, 16)).toEqual(new Uint8Array(16));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('the free count and the lists stay consistent through fault, COW, unmap and exit', async () => {
    const { mmu, mm } = await machine(true);
    const free0 = mmu.stats().freeFrames;
    const va = anon(mm, 700);
    mm.touch(va, 700 * PG, 'write');
    const child = mm.fork();
    child.touch(va, 350 * PG, 'write');
    expect(mmu.checkInvariants()).toEqual([]);
    child.destroy();
    mm.munmap(va, 700 * PG);
    expect(mmu.checkInvariants()).toEqual([]);
    expect(mmu.stats().freeFrames).toBe(free0);
  });
});
