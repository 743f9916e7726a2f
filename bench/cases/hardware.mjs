// The hardware cases: the physical references (memory.fill / memory.copy of a page inside
// Wasm) and the MMU's translation paths (TLB hit from JavaScript, TLB hit through one Wasm
// call, TLB hit in a loop inside Wasm, TLB miss with a full 4-level walk), over page tables
// built here by hand in emulated physical memory, the way an emulator author would.
import { createMmu } from '../../dist/index.js';
import { runBenny, sink } from '../lib/timing.mjs';

const ASID = 7;
const BASE_VA = 0x4000_0000; // 1 GiB: PML4 slot 0, PDPT slot 1, PD slot 0
const HIT_PAGES = 256; // consecutive VPNs: distinct slots of the direct-mapped TLB
const WALK_PAGES = 512; // one whole PTE table
const MODE_LINUX_USER = 7; // user | CR0.WP | EFER.NXE
const READ = 0;
const UPPER = 7n; // P RW US
const LEAF = 0x67n; // P RW US A D

// The loader wraps every export in a JS closure (`.original` is the Wasm function itself):
// time the Wasm function, as an emulator calling raw exports would.
const raw = (f) => (typeof f.original === 'function' ? f.original : f);

class CheckError extends Error {}
function expect(ok, what) {
  if (!ok) throw new CheckError(what);
}

/** Build PML4 → PDPT → PD → PT mapping WALK_PAGES pages at BASE_VA; returns the frames. */
function buildTables(mmu) {
  const zero = new Uint8Array(4096);
  const table = () => {
    const pfn = mmu.phys.alloc();
    mmu.phys.write(pfn * 4096, zero); // frames come back unzeroed
    return pfn;
  };
  const pml4 = table(), pdpt = table(), pd = table(), pt = table();
  const idx = (va, level) => Math.floor(va / 2 ** (12 + 9 * (level - 1))) % 512;
  const link = (tablePfn, slot, childPfn, bits) =>
    mmu.phys.writeU64(tablePfn * 4096 + slot * 8, (BigInt(childPfn) << 12n) | bits);
  link(pml4, idx(BASE_VA, 4), pdpt, UPPER);
  link(pdpt, idx(BASE_VA, 3), pd, UPPER);
  link(pd, idx(BASE_VA, 2), pt, UPPER);
  const frames = [];
  for (let i = 0; i < WALK_PAGES; i++) {
    const pfn = mmu.phys.alloc();
    frames.push(pfn);
    link(pt, idx(BASE_VA + i * 4096, 1), pfn, LEAF);
  }
  return { root: pml4, frames };
}

/** Check the hand-built tables and the hit/miss paths once; returns nothing or throws. */
function checkTranslation(mmu, root, frames) {
  const x = mmu.core.x;
  for (let i = 0; i < WALK_PAGES; i++) {
    const r = mmu.walk(root, BASE_VA + i * 4096 + 123, 'read');
    expect(r.ok && r.pa === frames[i] * 4096 + 123, `walk of page ${i} gave ${JSON.stringify(r)}`);
  }
  mmu.tlb.flushAll();
  for (let i = 0; i < HIT_PAGES; i++) {
    const r = mmu.tlb.translate(ASID, root, BASE_VA + i * 4096, 'read');
    expect(r.ok && r.pa === frames[i] * 4096, `translate of page ${i} gave ${JSON.stringify(r)}`);
  }
  for (let i = 0; i < HIT_PAGES; i++) {
    const pa = mmu.tlb.view.lookup(ASID, BASE_VA + i * 4096 + 5, READ);
    expect(pa === frames[i] * 4096 + 5, `JS TLB lookup of page ${i} gave ${pa}, not a hit`);
  }
  const s0 = mmu.stats();
  const n = HIT_PAGES * 4;
  const sum = raw(x.hw_translate_loop)(ASID, root, BASE_VA, HIT_PAGES, n, READ, MODE_LINUX_USER);
  let want = 0;
  for (let i = 0; i < n; i++) want += frames[i % HIT_PAGES] * 4096;
  expect(sum === want, `hw_translate_loop sum ${sum}, expected ${want}`);
  const s1 = mmu.stats();
  expect(s1.tlbMisses === s0.tlbMisses, `${s1.tlbMisses - s0.tlbMisses} TLB misses in a loop that should only hit`);
  const bad = raw(x.hw_walk_loop)(root, BASE_VA, WALK_PAGES, WALK_PAGES * 2, READ, MODE_LINUX_USER);
  expect(bad === 0, `hw_walk_loop: ${bad} walks failed`);
  expect(raw(x.bench_fill)(3) === 2, 'bench_fill: the page does not hold the last fill byte');
  expect(raw(x.bench_copy)(1) === 2, 'bench_copy: the copy does not hold the filled byte');
}

/**
 * Run the hardware cases with benny's `minTime`/`maxTime` (seconds per case).
 * Returns { results: { id: { ns, ... } }, failed: [messages] }.
 */
export async function runHardwareCases({ minTime, maxTime, log, regionBytes = 128 << 20 }) {
  // RAM for the tables and the cold-fill frames (as many as a fault case's region).
  const mmu = await createMmu({ ramBytes: regionBytes + (32 << 20), tlbEntries: 1024 });
  const x = mmu.core.x;
  const { root, frames } = buildTables(mmu);
  try {
    checkTranslation(mmu, root, frames);
  } catch (e) {
    log(`hardware cases: check FAILED: ${e.message}`);
    return { results: {}, failed: [`hardware: ${e.message}`] };
  }
  log('  check ok: hand-built tables walk, fill the TLB and hit from JS and Wasm');

  const fill = raw(x.bench_fill), copy = raw(x.bench_copy), fillFrames = raw(x.bench_fill_frames);
  const copyFrames = raw(x.bench_copy_frames);
  // As many frames as a fault case's region (128 MiB in a full run), in ascending 2 MiB
  // blocks: the zeroing page_fault1 does, of memory the caches cannot hold. (Before session
  // 8 this was 32 MiB, which is the whole L3 of the bench machine: partly warm.)
  const coldBlocks = [];
  const nCold = Math.max(1, regionBytes >> 21);
  for (let i = 0; i < nCold; i++) coldBlocks.push(mmu.phys.alloc(9));
  const coldHalf = Math.max(1, nCold >> 1);
  const translate = raw(x.hw_translate), translateLoop = raw(x.hw_translate_loop), walkLoop = raw(x.hw_walk_loop);
  const view = mmu.tlb.view;
  const BULK = 1 << 16;
  const cases = [
    { id: 'fill', name: 'memory.fill 4 KiB (Wasm)', batch: 256, fn: () => { sink.value += fill(256); } },
    {
      id: 'fill_cold', name: `memory.fill 4 KiB, cold (${nCold * 2} MiB of frames)`, batch: nCold * 512,
      fn: () => { for (const b of coldBlocks) sink.value += fillFrames(b, 512); },
    },
    { id: 'copy', name: 'memory.copy 4 KiB (Wasm)', batch: 256, fn: () => { sink.value += copy(256); } },
    {
      // The first half of the cold frames copied onto the second half: a COW copy's
      // traffic (a cold page read, a cold frame written), over the region's worth of memory.
      id: 'copy_cold', name: `memory.copy 4 KiB, cold (${coldHalf} + ${coldHalf} blocks of 2 MiB)`, batch: coldHalf * 512,
      fn: () => { for (let i = 0; i < coldHalf; i++) sink.value += copyFrames(coldBlocks[i], coldBlocks[coldHalf + i], 512); },
    },
    {
      id: 'tlb_hit_js', name: 'TLB hit, JS fast path (typed-array view)', batch: 1024,
      fn: () => {
        let s = 0;
        for (let i = 0; i < 1024; i++) s += view.lookup(ASID, BASE_VA + (i & (HIT_PAGES - 1)) * 4096, READ);
        sink.value += s;
      },
    },
    {
      id: 'tlb_hit_call', name: 'TLB hit, one Wasm call per translation', batch: 1024,
      fn: () => {
        let s = 0;
        for (let i = 0; i < 1024; i++) s += translate(ASID, root, BASE_VA + (i & (HIT_PAGES - 1)) * 4096, READ, MODE_LINUX_USER);
        sink.value += s;
      },
    },
    {
      id: 'tlb_hit_bulk', name: 'TLB hit, loop inside Wasm', batch: BULK,
      fn: () => { sink.value += translateLoop(ASID, root, BASE_VA, HIT_PAGES, BULK, READ, MODE_LINUX_USER); },
    },
    {
      id: 'tlb_miss_walk', name: 'TLB miss, 4-level walk (in Wasm)', batch: BULK,
      fn: () => { sink.value += walkLoop(root, BASE_VA, WALK_PAGES, BULK, READ, MODE_LINUX_USER); },
    },
  ];
  const results = await runBenny('hardware', cases, { minTime, maxTime, log });
  for (const b of coldBlocks) mmu.phys.free(b, 9);
  // The hit cases must still hit after timing: nothing evicted the 256 entries.
  const pa = view.lookup(ASID, BASE_VA, READ);
  if (pa !== frames[0] * 4096) return { results: {}, failed: ['hardware: TLB entries vanished during timing'] };
  return { results, failed: [] };
}
