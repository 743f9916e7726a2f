// One process of the page_fault1 ramBytes sweep (bench/lib/sweep.mjs runs it): argv is
// JSON { ramBytes, regionBytes, budgetMs, before? }. With `before` (a larger ramBytes), an
// instance of that size runs the same loop first in this process, as issue 17 saw it:
// what the host already touched is part of what a fault costs. Prints one JSON line:
// { ns, coldFillNs, ratio, samples } (ns per fault, median of repetitions; cold fill of a
// page, median, measured in the same process between the repetitions).
import { createMmu } from '../../dist/index.js';
import { timed } from './timing.mjs';

const PAGE = 4096;
const { ramBytes, regionBytes, budgetMs, before } = JSON.parse(process.argv[2]);
const args = { length: regionBytes, prot: 3, flags: 0x22 }; // RW, MAP_PRIVATE | MAP_ANONYMOUS
const pages = regionBytes / PAGE;

function loop(mmu, reps) {
  const mm = mmu.createAddressSpace();
  const out = [];
  for (let i = 0; i < reps; i++) {
    out.push(timed(() => {
      const va = mm.mmap(args);
      mm.touch(va, regionBytes, 'write');
      mm.munmap(va, regionBytes);
    }) / pages);
  }
  mm.destroy();
  return out;
}
const median = (a) => { const s = [...a].sort((x, y) => x - y); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };

if (before) {
  const big = await createMmu({ ramBytes: before });
  loop(big, 3);
}
const mmu = await createMmu({ ramBytes });
// The check: every page faults once, reads back zero, and munmap returns the frames.
{
  const mm = mmu.createAddressSpace();
  const f0 = mmu.stats().freeFrames;
  const r0 = mm.rusage().minflt;
  const va = mm.mmap(args);
  mm.touch(va, regionBytes, 'write');
  const faults = mm.rusage().minflt - r0;
  const zero = mm.read(va + 5 * PAGE, 16).every((v) => v === 0);
  mm.munmap(va, regionBytes);
  const leaked = f0 - mmu.stats().freeFrames;
  mm.destroy();
  if (faults !== pages || !zero || leaked > Math.ceil(pages / 512) + 8) {
    console.log(JSON.stringify({ error: `check failed: ${faults} faults for ${pages} pages, zero ${zero}, ${leaked} frames left` }));
    process.exit(0);
  }
}
// Cold fill: as many frames as the region (at most half of RAM), in ascending 2 MiB
// blocks: the zeroing the faults do, over the same amount of memory; taken between the
// repetitions, when the region is unmapped. (Before session 8: 32 MiB at most, the whole
// L3 of the bench machine, so partly warm for a 128 MiB region.)
const x = mmu.core.x;
const blocks = [];
const nBlocks = Math.max(1, Math.min(regionBytes >> 21, Math.floor(ramBytes / (2 << 20) / 2)));
for (let i = 0; i < nBlocks; i++) blocks.push(mmu.phys.alloc(9));
const fills = [];
const fillOnce = () => fills.push(timed(() => { for (const b of blocks) x.bench_fill_frames(b, 512); }) / (nBlocks * 512));
fillOnce();
for (const b of blocks) mmu.phys.free(b, 9);
const ns = [];
loop(mmu, 1); // warm-up
const t0 = Date.now();
while (ns.length < 3 || (Date.now() - t0 < budgetMs && ns.length < 200)) {
  ns.push(...loop(mmu, 1));
  for (let i = 0; i < nBlocks; i++) blocks[i] = mmu.phys.alloc(9);
  fillOnce();
  for (const b of blocks) mmu.phys.free(b, 9);
}
const m = median(ns), f = median(fills);
console.log(JSON.stringify({ ns: m, coldFillNs: f, ratio: m / f, samples: ns.length }));
