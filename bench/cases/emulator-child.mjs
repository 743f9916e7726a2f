// One measurement of bench/cases/emulator.mjs, in a fresh process so the JIT sees one
// memory kind only: node emulator-child.mjs <variant> <sieveBytes> <slots> <keys> <tlbEntries>
// Prints one JSON line: { variant, out, steps, ns, nsWarm, ... }.
//   js-plain / js-mmu     the JS RV32I interpreter (examples/interpreter) on a Uint8Array /
//                         on an AddressSpace (load*/store*/fetch32)
//   hit-plain / hit-mmu   a loop of load32 over 64 resident pages: Uint8Array vs AddressSpace
// The first run of the program faults its pages in (wasm-mmu) and warms the JIT; the second,
// timed, runs the same work again with every page resident and in the TLB.
import { createMmu } from '../../dist/index.js';
import { Rv32 } from '../../examples/interpreter/rv32.mjs';
import { assembleProgram, CODE_BASE, DATA_BASE } from '../../examples/interpreter/program.mjs';
import { plainMachine, loadIntoAddressSpace, startRegisters, PlainMemory } from '../../examples/interpreter/memory.mjs';

const [variant, s, sl, k, tlb] = process.argv.slice(2);
const params = { sieveBytes: Number(s), slots: Number(sl), keys: Number(k) };
const tlbEntries = Number(tlb);
const now = () => Number(process.hrtime.bigint());

async function mmuSpace() {
  const mmu = await createMmu({ ramBytes: 64 << 20, tlbEntries });
  return { mmu, mm: mmu.createAddressSpace() };
}

function interp(mem) {
  const res = [];
  for (let r = 0; r < 2; r++) {
    const cpu = new Rv32(mem);
    startRegisters(cpu, params);
    const t = now();
    const code = cpu.run(CODE_BASE);
    res.push({ ns: now() - t, steps: cpu.steps, out: cpu.out, code });
  }
  return { out: res[0].out, outTimed: res[1].out, steps: res[1].steps, ns: res[1].ns / res[1].steps, nsFirst: res[0].ns / res[0].steps };
}

// 64 pages, 1M loads per pass: every access a TLB hit (wasm-mmu) or an in-bounds byte compose.
function hitLoop(mem) {
  const N = Number(process.env.HIT_N ?? 1 << 20), PAGES = 64;
  const addrs = new Int32Array(4096);
  for (let i = 0; i < addrs.length; i++) addrs[i] = DATA_BASE + ((i * 2053) & (PAGES * 4096 - 4));
  const run = () => {
    let sum = 0;
    for (let i = 0; i < N; i++) sum = (sum + mem.load32(addrs[i & 4095])) | 0;
    return sum;
  };
  for (let p = 0; p < PAGES; p++) mem.store32(DATA_BASE + p * 4096, p + 1);
  run();
  const ns = [];
  let sum = 0;
  for (let r = 0; r < Number(process.env.HIT_REPS ?? 15); r++) { const t = now(); sum = run(); ns.push((now() - t) / N); }
  ns.sort((a, b) => a - b);
  return { ns: ns[ns.length >> 1], out: [sum >>> 0] };
}

let result;
const program = assembleProgram();
if (variant === 'js-plain') result = interp(plainMachine(program, params));
else if (variant === 'js-mmu') {
  const { mmu, mm } = await mmuSpace();
  result = interp(loadIntoAddressSpace(mm, program, params));
  result.minflt = mm.rusage().minflt;
  result.tlbMisses = mmu.stats().tlbMisses;
} else if (variant === 'hit-plain') result = hitLoop(new PlainMemory(DATA_BASE + 64 * 4096));
else if (variant === 'hit-mmu') {
  const { mm } = await mmuSpace();
  mm.mmap({ addr: DATA_BASE, length: 64 * 4096, prot: 3, flags: 0x32 });
  result = hitLoop(mm);
} else throw new Error(`unknown variant ${variant}`);
process.stdout.write(JSON.stringify({ variant, ...result }) + '\n');
