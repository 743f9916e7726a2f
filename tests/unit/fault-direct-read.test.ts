// Issue 17 step 1: the direct read-fault path (assembly/fault.ts file_read_fast) taken with
// fault-around off leaves exactly the state of the general path (do_read_fault: filemap_fault's
// hit, finish_fault's set_pte). Each scenario runs twice on fresh machines, once with the
// direct paths on and once off (index.ts mmu_set_direct_faults), and everything a program
// or the invariant checker can see must agree: PTE bits and frames, page flags (LRU,
// referenced, readahead …), refcounts and mapcounts, the page cache, RSS, fault counts, every
// vmstat counter, bytes — and what mmap_miss decides later (read-around or not, R2.9).
import { describe, it, expect } from 'vitest';
import {
  createMmu, MemoryFile, PROT_READ, MAP_PRIVATE, MAP_SHARED, MAP_LOCKED, MADV_RANDOM, MADV_GUARD_INSTALL,
  type Mmu, type AddressSpace,
} from '../../src/index.js';
import { PG, RW, expectSegv } from './mm-helpers.js';

type File = ReturnType<Mmu['openFile']>;
type Result = { spaces: AddressSpace[]; ranges: [number, number][]; file: File; filePages: number };
type Scenario = (mmu: Mmu, mm: AddressSpace) => Result;

function fileOf(mmu: Mmu, pages: number): File {
  const bytes = new Uint8Array(pages * PG);
  for (let i = 0; i < bytes.length; i += 61) bytes[i] = (i / 61) & 255;
  return mmu.openFile(new MemoryFile(bytes));
}

function snapshot(mmu: Mmu, r: Result) {
  const x = mmu.core.x;
  const pages = r.spaces.map((mm) => r.ranges.map(([va, n]) => mm.pagemap(va, n).map((p) => {
    const info = p.present && !p.zeroPage ? { flags: x.page_info(p.pfn, 0), ref: x.page_info(p.pfn, 1), map: x.page_info(p.pfn, 2) } : null;
    return { ...p, info };
  })));
  const data = r.spaces.map((mm) => r.ranges.map(([va, n]) => {
    let sum = 0;
    const present = mm.pagemap(va, n).map((p) => p.present);
    for (let i = 0; i < n; i++) {
      if (!present[i]) continue;
      const b = mm.read(va + i * PG, 8);
      sum = (sum * 31 + b[0] + b[7] * 7) % 1e9;
    }
    return sum;
  }));
  const cached = Array.from({ length: r.filePages }, (_, i) => r.file.page(i));
  return { pages, data, cached, status: r.spaces.map((mm) => mm.status()), rusage: r.spaces.map((mm) => mm.rusage()), stats: mmu.stats() };
}

// Run `scenario` with the direct paths off, then on (fresh machines, fault-around off);
// both must end in the same state, the invariant checker empty on both.
async function sameAsGeneralPath(scenario: Scenario, ramBytes = 16 << 20): Promise<ReturnType<typeof snapshot>> {
  const out = [];
  for (const direct of [false, true]) {
    const mmu = await createMmu({ ramBytes, faultAroundBytes: 4096 });
    (mmu.core.x as unknown as { mmu_set_direct_faults(on: number): void }).mmu_set_direct_faults(direct ? 1 : 0);
    const r = scenario(mmu, mmu.createAddressSpace());
    expect(mmu.checkInvariants()).toEqual([]);
    out.push(snapshot(mmu, r));
  }
  expect(out[1]).toEqual(out[0]);
  return out[0];
}

describe('issue 17 direct read fault (fault-around off): the same state as the general path', () => {
  it('R2.7 R3.2 private read of cached pages: young read-only PTEs, file RSS, a reference and a mapcount each, PG_referenced', async () => {
    const s = await sameAsGeneralPath((mmu, mm) => {
      const file = fileOf(mmu, 600);
      file.prime(0, 600, { order: 0 });
      const va = mm.mmap({ length: 600 * PG, prot: RW, flags: MAP_PRIVATE, file, offset: 0 });
      mm.touch(va, 600 * PG, 'read');
      mm.touch(va + 7 * PG, PG, 'write'); // then a COW of one of them (wp_page_copy)
      return { spaces: [mm], ranges: [[va, 600]], file, filePages: 600 };
    });
    expect(s.rusage[0]).toEqual({ minflt: 601, majflt: 0 });
    expect(s.status[0].rssFile).toBe(599 * PG);
    expect(s.pages[0][0][3]).toMatchObject({ present: true, writable: false, young: true, dirty: false });
    expect(s.cached[3]).toMatchObject({ referenced: true, mapcount: 1, refcount: 2 });
    expect(s.stats.faultAroundMapped).toBe(0);
  });

  it('R2.6 shared read of dirty and clean cached pages, then a fork and a read in the child', async () => {
    const s = await sameAsGeneralPath((mmu, mm) => {
      const file = fileOf(mmu, 300);
      file.prime(0, 300, { order: 0 });
      file.pwrite(5 * PG, Uint8Array.of(1, 2, 3)); // a dirty page-cache page
      const va = mm.mmap({ length: 300 * PG, prot: RW, flags: MAP_SHARED, file, offset: 0 });
      const ro = mm.mmap({ length: 300 * PG, prot: PROT_READ, flags: MAP_SHARED, file, offset: 0 });
      mm.touch(va, 300 * PG, 'read');
      mm.touch(ro, 150 * PG, 'read');
      const child = mm.fork();
      child.touch(ro, 300 * PG, 'read');
      return { spaces: [mm, child], ranges: [[va, 300], [ro, 300]], file, filePages: 300 };
    });
    expect(s.cached[5]).toMatchObject({ dirty: true, mapcount: 3 });
  });

  it('R2.9 mmap_miss: hits pay misses back exactly, so a later miss reads around again (MADV_RANDOM hits pay nothing)', async () => {
    // 105 misses (stride 40 > the read-around window) push mmap_miss past MMAP_LOTSAMISS:
    // a miss then reads only its page. Ten cache hits pay ten back, and the next miss reads
    // around again. Under MADV_RANDOM the hits pay nothing back.
    const run = (random: boolean) => sameAsGeneralPath((mmu, mm) => {
      const file = fileOf(mmu, 5600);
      file.prime(0, 20, { order: 0 });
      const va = mm.mmap({ length: 5600 * PG, prot: PROT_READ, flags: MAP_PRIVATE, file, offset: 0 });
      for (let k = 0; k < 105; k++) mm.touch(va + (1000 + 40 * k) * PG, PG, 'read');
      const before = mmu.stats().pagecacheReads;
      mm.touch(va + 5300 * PG, PG, 'read'); // mmap_miss 106 now: this page alone
      expect(mmu.stats().pagecacheReads - before).toBe(1);
      if (random) mm.madvise(va, 20 * PG, MADV_RANDOM);
      mm.touch(va, 10 * PG, 'read'); // ten hits
      const b2 = mmu.stats().pagecacheReads;
      mm.touch(va + 5400 * PG, PG, 'read');
      expect(mmu.stats().pagecacheReads - b2).toBe(random ? 1 : 32);
      return { spaces: [mm], ranges: [[va, 20]], file, filePages: 20 };
    }, 64 << 20);
    await run(false);
    await run(true);
  });

  it('R2.9 a readahead-marked page takes the general path: its async readahead starts, the marker goes', async () => {
    const s = await sameAsGeneralPath((mmu, mm) => {
      const file = fileOf(mmu, 200);
      const va = mm.mmap({ length: 200 * PG, prot: PROT_READ, flags: MAP_PRIVATE, file, offset: 0 });
      mm.touch(va, 200 * PG, 'read'); // read-around windows with markers, then hits on them
      return { spaces: [mm], ranges: [[va, 200]], file, filePages: 200 };
    });
    expect(s.cached.filter((c) => c?.readahead).length).toBeLessThan(2);
  });

  it('R10.1 R2.5 the general path decides the rest: EOF, large folios, locked and not-uptodate pages, hwpoison, guard markers, VM_LOCKED', async () => {
    await sameAsGeneralPath((mmu, mm) => {
      const file = fileOf(mmu, 64);
      file.prime(0, 32, { order: 0 });
      file.prime(32, 32, { order: 2 });
      file.setPageState(3, { locked: true });
      file.setPageState(4, { uptodate: false });
      file.setPageState(6, { hwpoison: true });
      const va = mm.mmap({ length: 80 * PG, prot: PROT_READ, flags: MAP_PRIVATE, file, offset: 0 });
      mm.madvise(va + 9 * PG, PG, MADV_GUARD_INSTALL);
      mm.touch(va, 6 * PG, 'read');
      let mce = false;
      try { mm.touch(va + 6 * PG, PG, 'read'); } catch { mce = true; }
      expect(mce).toBe(true); // a poisoned page: SIGBUS (BUS_MCEERR_AR)
      mm.touch(va + 7 * PG, 2 * PG, 'read');
      expectSegv(() => mm.touch(va + 9 * PG, PG, 'read'), 'SEGV_MAPERR', va + 9 * PG);
      mm.touch(va + 10 * PG, 54 * PG, 'read');
      let bus = false;
      try { mm.touch(va + 70 * PG, PG, 'read'); } catch { bus = true; }
      expect(bus).toBe(true); // beyond EOF: SIGBUS
      const locked = mm.mmap({ length: 16 * PG, prot: PROT_READ, flags: MAP_PRIVATE | MAP_LOCKED, file, offset: 10 * PG });
      mm.touch(locked, 16 * PG, 'read');
      return { spaces: [mm], ranges: [[va, 64], [locked, 16]], file, filePages: 64 };
    });
  });
});
