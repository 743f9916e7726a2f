// One measurement of bench/cases/emulator.mjs, in a fresh process so the JIT sees one
// memory kind only: node emulator-child.mjs <variant> <sieveBytes> <slots> <keys> <tlbEntries>
// Prints one JSON line. Times are CPU time of this process (process.cpuUsage, user +
// system): on a shared machine it moves far less than wall time, and both sides of every
// ratio are measured the same way.
//   js-plain / js-mmu       the JS RV32I interpreter (examples/interpreter) on a Uint8Array /
//                           on an AddressSpace (fetch32 / load* / store*)
//   wasm-plain / wasm-mmu   the AssemblyScript interpreter (build/interpreter.wasm) on a
//                           plain region of linear memory / through assembly/fastpath.ts
//   hit-plain / hit-mmu     a JS loop of load32 over 64 resident pages
//   hit-wasm                the same loop inside Wasm: plain loads, then fastpath.ts loads
// The first run of the program faults its pages in (wasm-mmu) and warms the JIT; the
// second, timed, does the same work again with every page resident and in the TLB.
import { createMmu } from '../../dist/index.js';
import { Rv32 } from '../../examples/interpreter/rv32.mjs';
import { assembleProgram, CODE_BASE, DATA_BASE } from '../../examples/interpreter/program.mjs';
import { plainMachine, loadIntoAddressSpace, startRegisters, PlainMemory, dataBytes } from '../../examples/interpreter/memory.mjs';

const [variant, s, sl, k, tlb] = process.argv.slice(2);
const params = { sieveBytes: Number(s), slots: Number(sl), keys: Number(k) };
const tlbEntries = Number(tlb);
const cpuNs = (f) => { const t = process.cpuUsage(); const r = f(); const d = process.cpuUsage(t); return { ns: (d.user + d.system) * 1000, r }; };
const INTERP_WASM = new URL('../../build/interpreter.wasm', import.meta.url);
const HIT_PAGES = 64, HIT_N = Number(process.env.HIT_N ?? 1 << 21);

async function machine(wasm) {
  const mmu = await createMmu({ ramBytes: 64 << 20, tlbEntries, ...(wasm ? { wasm: INTERP_WASM } : {}) });
  return { mmu, mm: mmu.createAddressSpace() };
}

function jsInterp(mem) {
  const res = [];
  for (let r = 0; r < 2; r++) {
    const cpu = new Rv32(mem);
    startRegisters(cpu, params);
    const { ns, r: code } = cpuNs(() => cpu.run(CODE_BASE));
    res.push({ ns, steps: cpu.steps, out: cpu.out, code });
  }
  return { out: res[0].out, outTimed: res[1].out, steps: res[1].steps, ns: res[1].ns / res[1].steps, nsFirst: res[0].ns / res[0].steps };
}

function wasmInterp(x, runOnce) {
  const res = [];
  for (let r = 0; r < 2; r++) {
    x.rv_reset();
    x.rv_set_reg(10, params.sieveBytes); x.rv_set_reg(11, DATA_BASE); x.rv_set_reg(12, params.slots); x.rv_set_reg(13, params.keys);
    const { ns, r: status } = cpuNs(runOnce);
    if (status !== 0) throw new Error(`wasm interpreter stopped with status ${status} at pc ${x.rv_pc()} (fault ${x.rv_fault()})`);
    const out = [];
    for (let i = 0; i < x.rv_out_count(); i++) out.push(x.rv_out(i) >>> 0);
    res.push({ ns, steps: x.rv_steps(), out });
  }
  return { out: res[0].out, outTimed: res[1].out, steps: res[1].steps, ns: res[1].ns / res[1].steps, nsFirst: res[0].ns / res[0].steps };
}

// 64 pages, 2M loads per pass: every access a TLB hit (wasm-mmu) or an in-bounds byte compose.
function hitLoop(mem) {
  const addrs = new Int32Array(4096);
  for (let i = 0; i < addrs.length; i++) addrs[i] = DATA_BASE + ((i * 2053 * 4) & (HIT_PAGES * 4096 - 4));
  const run = () => {
    let sum = 0;
    for (let i = 0; i < HIT_N; i++) sum = (sum + mem.load32(addrs[i & 4095])) | 0;
    return sum;
  };
  for (let p = 0; p < HIT_PAGES; p++) mem.store32(DATA_BASE + p * 4096, p + 1);
  run();
  const ns = [];
  let sum = 0;
  for (let r = 0; r < Number(process.env.HIT_REPS ?? 15); r++) { const m = cpuNs(run); sum = m.r; ns.push(m.ns / HIT_N); }
  ns.sort((a, b) => a - b);
  return { ns: ns[ns.length >> 1], out: [sum >>> 0] };
}

let result;
const program = assembleProgram();
if (variant === 'js-plain') result = jsInterp(plainMachine(program, params));
else if (variant === 'js-mmu') {
  const { mmu, mm } = await machine(false);
  result = jsInterp(loadIntoAddressSpace(mm, program, params));
  result.minflt = mm.rusage().minflt;
  result.tlbMisses = mmu.stats().tlbMisses;
} else if (variant === 'wasm-plain' || variant === 'wasm-mmu') {
  const { mmu, mm } = await machine(true);
  const x = mmu.wasmExports;
  if (variant === 'wasm-plain') {
    const base = x.rv_plain_alloc(DATA_BASE + dataBytes(params)) >>> 0;
    new Uint8Array(x.memory.buffer).set(program, base + CODE_BASE);
    result = wasmInterp(x, () => x.rv_run_plain(CODE_BASE, Infinity));
  } else {
    loadIntoAddressSpace(mm, program, params);
    result = wasmInterp(x, () => x.rv_run_mmu(mm.asid, CODE_BASE, Infinity));
    result.minflt = mm.rusage().minflt;
    result.tlbMisses = mmu.stats().tlbMisses;
  }
} else if (variant === 'hit-plain') result = hitLoop(new PlainMemory(DATA_BASE + HIT_PAGES * 4096));
else if (variant === 'hit-mmu') {
  const { mm } = await machine(false);
  mm.mmap({ addr: DATA_BASE, length: HIT_PAGES * 4096, prot: 3, flags: 0x32 });
  result = hitLoop(mm);
} else if (variant === 'hit-wasm') {
  const { mmu, mm } = await machine(true);
  const x = mmu.wasmExports;
  mm.mmap({ addr: DATA_BASE, length: HIT_PAGES * 4096, prot: 3, flags: 0x32 });
  const base = x.rv_plain_alloc(DATA_BASE + HIT_PAGES * 4096) >>> 0;
  const plain = new Uint32Array(x.memory.buffer, base + DATA_BASE, HIT_PAGES * 1024);
  for (let p = 0; p < HIT_PAGES; p++) { mm.store32(DATA_BASE + p * 4096, p + 1); plain[p * 1024] = p + 1; }
  const N = 1 << 24;
  const fp = () => x.fp_bench_load_loop(mm.asid, DATA_BASE, HIT_PAGES, N);
  const pl = () => x.plain_bench_load_loop(DATA_BASE, HIT_PAGES, N);
  fp(); pl();
  const a = [], b = [];
  let sa = 0, sb = 0;
  for (let r = 0; r < 9; r++) { const m = cpuNs(fp); sa = m.r; a.push(m.ns / N); const q = cpuNs(pl); sb = q.r; b.push(q.ns / N); }
  a.sort((u, v) => u - v); b.sort((u, v) => u - v);
  result = { ns: a[4], nsPlain: b[4], out: [sa >>> 0], outPlain: [sb >>> 0], tlbMisses: mmu.stats().tlbMisses };
} else throw new Error(`unknown variant ${variant}`);
process.stdout.write(JSON.stringify({ variant, ...result }) + '\n');
