// Instruction-count profiling of one fault case (issue 17): run it `reps` times after one
// warm-up, with nothing else in the process, so that two runs under callgrind with
// different `reps` give the instructions per page by difference:
//   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p node --no-liftoff \
//     --no-wasm-tier-up bench/profile.mjs anon_write 4
// Cases: anon_write, anon_read, file_private_write, file_shared_write, file_read_fa,
// file_read_nofa, cow_fork, wp_reuse. Region: 32 MiB (argv[4] overrides, in MiB).
import * as api from '../dist/index.js';

const [id = 'anon_write', repsArg = '4', mibArg = '32'] = process.argv.slice(2);
const reps = Number(repsArg);
const region = Number(mibArg) << 20;
const PAGE = 4096, RW = 3, PRIVATE_ANON = 0x22, MAP_PRIVATE = 2, MAP_SHARED = 1;
// WASM=path: a build with a name section (asc ... --debug), for --perf-basic-prof names.
const wasm = process.env.WASM ? new Uint8Array((await import('node:fs')).readFileSync(process.env.WASM)) : undefined;
const mmu = await api.createMmu({ ramBytes: 2 * region + (64 << 20), wasm });
const mm = mmu.createAddressSpace();
let file = null;
if (id.startsWith('file')) {
  const bytes = new Uint8Array(region);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + 1) & 255;
  file = mmu.openFile(new api.MemoryFile(bytes));
  file.prime(0, region / PAGE, { order: 0 });
  mmu.faultAroundBytes = id === 'file_read_nofa' ? 4096 : 65536;
}
const anon = { length: region, prot: RW, flags: PRIVATE_ANON };
let parentVa = 0;
if (id === 'cow_fork' || id === 'wp_reuse') {
  parentVa = mm.mmap(anon);
  mm.touch(parentVa, region, 'write');
}
function rep() {
  switch (id) {
    case 'anon_write': case 'anon_read': {
      const va = mm.mmap(anon);
      mm.touch(va, region, id === 'anon_write' ? 'write' : 'read');
      mm.munmap(va, region);
      return;
    }
    case 'file_private_write': case 'file_shared_write': case 'file_read_fa': case 'file_read_nofa': {
      const write = id.endsWith('write');
      const args = { length: region, prot: write ? RW : 1, flags: id === 'file_shared_write' ? MAP_SHARED : MAP_PRIVATE, file, offset: 0 };
      const va = mm.mmap(args);
      mm.touch(va, region, write ? 'write' : 'read');
      mm.munmap(va, region);
      return;
    }
    case 'cow_fork': {
      const child = mm.fork();
      child.touch(parentVa, region, 'write');
      child.destroy();
      return;
    }
    case 'wp_reuse': {
      mm.fork().destroy();
      mm.touch(parentVa, region, 'write');
      return;
    }
    default: throw new Error(`unknown case ${id}`);
  }
}
rep(); // warm-up
const t0 = process.hrtime.bigint();
for (let i = 0; i < reps; i++) rep();
const ns = Number(process.hrtime.bigint() - t0) / (reps * (region / PAGE));
console.log(`${id}: ${reps} reps of ${region / PAGE} pages, ${ns.toFixed(1)} ns/page, rusage ${JSON.stringify(mm.rusage())}`);
