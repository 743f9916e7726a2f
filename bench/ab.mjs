// A/B of two builds in one process: node bench/ab.mjs <dirA> <dirB> [reps] [case,...]
// Each dir is a checkout with dist/ and build/ built (e.g. a copy of the tree before a change).
// The cases run interleaved (A, B, A, B …; the order flips every rep), so machine load hits both
// alike; each prints the minimum ns per page of both and their ratio B/A. Cases: page_fault1
// (anonymous write), shmem_write (MAP_SHARED|MAP_ANONYMOUS write), file_read_fa and
// file_read_nofa (private file read, fault-around 64 KiB / off, cache primed), shared_file_write,
// file_private_write (page_fault2: private file write, a COW copy of the cached page), cow_fork
// (a child of a populated 32 MiB region writes every page: COW copies; the fork and the
// child's exit are timed too) and wp_reuse (fork, the child exits, the parent writes every
// page: write-protect reuse). The first five map 32 MiB, fault each page with one bulk call
// and unmap it.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [dirA, dirB, repsArg, only] = process.argv.slice(2);
if (!dirA || !dirB) {
  console.error('usage: node bench/ab.mjs <dirA> <dirB> [reps] [case,...]');
  process.exit(2);
}
const load = (d) => import(pathToFileURL(resolve(d, 'dist/index.js')).href);
const A = await load(dirA), B = await load(dirB);
const REGION = 32 << 20, PG = 4096, PAGES = REGION / PG;

async function machine(api) {
  const mmu = await api.createMmu({ ramBytes: 256 << 20 });
  const data = new Uint8Array(REGION);
  for (let i = 0; i < PAGES; i++) data[i * PG] = i & 255;
  const file = mmu.openFile(new api.MemoryFile(data));
  file.prime();
  const mm = mmu.createAddressSpace();
  const parent = mm.mmap({ length: REGION, prot: 3, flags: api.MAP_PRIVATE | api.MAP_ANONYMOUS });
  mm.touch(parent, REGION, 'write');
  return { api, mmu, mm, file, parent };
}
function region(s, prot, flags, access, file) {
  const va = s.mm.mmap({ length: REGION, prot, flags, file });
  s.mm.touch(va, REGION, access);
  s.mm.munmap(va, REGION);
}
const CASES = {
  page_fault1: (s) => region(s, 3, s.api.MAP_PRIVATE | s.api.MAP_ANONYMOUS, 'write'),
  shmem_write: (s) => region(s, 3, s.api.MAP_SHARED | s.api.MAP_ANONYMOUS, 'write'),
  file_read_fa: (s) => { s.mmu.faultAroundBytes = 65536; region(s, 1, s.api.MAP_PRIVATE, 'read', s.file); },
  file_read_nofa: (s) => { s.mmu.faultAroundBytes = 4096; region(s, 1, s.api.MAP_PRIVATE, 'read', s.file); s.mmu.faultAroundBytes = 65536; },
  shared_file_write: (s) => region(s, 3, s.api.MAP_SHARED, 'write', s.file),
  file_private_write: (s) => region(s, 3, s.api.MAP_PRIVATE, 'write', s.file),
  cow_fork: (s) => { const c = s.mm.fork(); c.touch(s.parent, REGION, 'write'); c.destroy(); },
  wp_reuse: (s) => { s.mm.fork().destroy(); s.mm.touch(s.parent, REGION, 'write'); },
};
const names = only ? only.split(',') : Object.keys(CASES);
for (const n of names) if (!CASES[n]) { console.error(`unknown case ${n}; cases: ${Object.keys(CASES).join(', ')}`); process.exit(2); }
const reps = Number(repsArg ?? 20);
const sa = await machine(A), sb = await machine(B);
const time = (f, s) => { const t = process.hrtime.bigint(); f(s); return Number(process.hrtime.bigint() - t); };
for (const n of names) {
  const f = CASES[n];
  for (let i = 0; i < 3; i++) { f(sa); f(sb); } // warm both
  let a = Infinity, b = Infinity;
  for (let r = 0; r < reps; r++) {
    if (r % 2 === 0) { a = Math.min(a, time(f, sa)); b = Math.min(b, time(f, sb)); }
    else { b = Math.min(b, time(f, sb)); a = Math.min(a, time(f, sa)); }
  }
  console.log(`${n.padEnd(18)} A ${(a / PAGES).toFixed(1).padStart(7)} ns/page   B ${(b / PAGES).toFixed(1).padStart(7)} ns/page   B/A ${(b / a).toFixed(3)}`);
}
