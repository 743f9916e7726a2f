// The size of the TLB hit path in V8's optimized code (issue 16), checkable without timing:
//   node bench/hit-code.mjs            (needs dist/: npm run build)
// For each function below it starts a child Node with --allow-natives-syntax and
// --print-opt-code, warms the function on TLB hits (or plain in-bounds loads), has
// TurboFan optimize it on its own (%OptimizeFunctionOnNextCall), and counts the machine
// instructions V8 printed for it (all of them: checks, the access, deopt exits). Compare
// AddressSpace.load32 with the same method on a plain Uint8Array / DataView
// (examples/interpreter/memory.mjs's PlainMemory, what the interpreter's twin runs on),
// alone and inlined into the bench's hit loop: there the difference of the two "hit path"
// counts is what one TLB hit adds to a load.
// `--show` prints the disassembly too.
// `--wasm`: the same for the Wasm hit loop of the bench (examples/interpreter/wasm/rv32.ts
// fp_bench_load_loop, through assembly/fastpath.ts mmu_tlb_addr, against
// plain_bench_load_loop; needs build/interpreter.wasm: npm run build:example): TurboFan's
// code of each (--no-liftoff), and the machine instructions per load of its innermost loop
// (V8 may lay two iterations into one pass: the count is divided by the loads in it).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SELF = fileURLToPath(import.meta.url);
const TARGETS = {
  'mm.load32': 'AddressSpace.load32: TLB hit from JS (u32, DataView)',
  'mm.load8': 'AddressSpace.load8: TLB hit from JS (byte)',
  'mm.store32': 'AddressSpace.store32: TLB hit from JS',
  'mm.fetch32': 'AddressSpace.fetch32: TLB hit from JS (exec tags)',
  'plain.load32': 'PlainMemory.load32: DataView.getUint32 (the baseline)',
  'plain.load8': 'PlainMemory.load8: Uint8Array[a] (the baseline)',
  'mm.loopMm': 'a loop of mm.load32 (inlined) over 64 pages, as bench hit-mmu',
  'plain.loopPlain': 'the same loop of PlainMemory.load32 (the baseline)',
};

// The bench's hit loop (bench/cases/emulator-child.mjs hitLoop), one copy per memory kind.
function loopMm(m, addrs, n) {
  let sum = 0;
  for (let i = 0; i < n; i++) sum = (sum + m.load32(addrs[i & 4095])) | 0;
  return sum;
}
function loopPlain(m, addrs, n) {
  let sum = 0;
  for (let i = 0; i < n; i++) sum = (sum + m.load32(addrs[i & 4095])) | 0;
  return sum;
}

async function child(target) {
  const { createMmu } = await import('../dist/index.js');
  const { PlainMemory } = await import('../examples/interpreter/memory.mjs');
  const natives = (src) => new Function('f', 'o', 'a', src);
  const prepare = natives('%PrepareFunctionForOptimization(f);');
  const optimize = natives('%OptimizeFunctionOnNextCall(f);');
  const BASE = 0x100000, PAGES = 64;
  let obj;
  if (target.startsWith('mm.')) {
    // HIT_CODE_CORES=2: a second machine first (its hit functions are second closures).
    if (process.env.HIT_CODE_CORES === '2') (await createMmu({ ramBytes: 16 << 20, tlbEntries: 256 })).createAddressSpace();
    const mmu = await createMmu({ ramBytes: 16 << 20, tlbEntries: 256 });
    obj = mmu.createAddressSpace();
    obj.mmap({ addr: BASE, length: PAGES * 4096, prot: 7, flags: 0x32 });
    for (let p = 0; p < PAGES; p++) { obj.store32(BASE + p * 4096, p + 1); obj.fetch32(BASE + p * 4096); }
  } else {
    obj = new PlainMemory(BASE + PAGES * 4096);
  }
  const name = target.split('.')[1];
  if (name.startsWith('loop')) {
    const f = name === 'loopMm' ? loopMm : loopPlain;
    const addrs = new Int32Array(4096);
    for (let i = 0; i < addrs.length; i++) addrs[i] = BASE + ((i * 2053 * 4) & (PAGES * 4096 - 4));
    prepare(f);
    for (let r = 0; r < 5; r++) f(obj, addrs, 4096);
    optimize(f);
    if (f(obj, addrs, 4096) === 0.5) console.log('?');
    return;
  }
  const f = obj[name];
  const call = name.startsWith('store') ? (a) => obj[name](a, a) : (a) => obj[name](a);
  prepare(f);
  let sum = 0;
  for (let i = 0; i < 2000; i++) sum = (sum + (call(BASE + ((i * 2053 * 4) & (PAGES * 4096 - 4))) | 0)) | 0;
  optimize(f);
  call(BASE + 8);
  for (let i = 0; i < 100; i++) sum = (sum + (call(BASE + i * 4) | 0)) | 0;
  if (sum === 0.5) console.log(sum); // keep the loop
}

function count(target, show) {
  const out = execFileSync(process.execPath, ['--allow-natives-syntax', '--print-opt-code', `--print-opt-code-filter=${target.split('.')[1]}`,
    '--no-concurrent-recompilation', SELF, '--child', target], { encoding: 'utf8', maxBuffer: 64 << 20 });
  // Each optimized function: "--- Optimized code ---" … "Instructions (size = N)" then one line per instruction.
  const blocks = out.split('--- Optimized code ---').slice(1).filter((b) => /\nkind = TURBOFAN/.test(b));
  if (blocks.length === 0) throw new Error(`${target}: V8 printed no optimized code`);
  const b = blocks[blocks.length - 1];
  const size = Number(/Instructions \(size = (\d+)\)/.exec(b)[1]);
  const body = b.split(/Instructions \(size = \d+\)\n/)[1].split(/\n\s*\n/)[0];
  const instrs = body.split('\n').filter((l) => /^0x[0-9a-f]+\s+[0-9a-f]+\s+[0-9a-f]+\s+\S/.test(l));
  // The hit path: TurboFan lays the expected path out first, so it runs from the entry to
  // the first return (frame set-up and stack check included, as for the baseline).
  const ret = instrs.findIndex((l) => /\sret[lq]?\b/.test(l));
  // A loop: one pass of its body, the instructions from the target of its back edge (the
  // jump to a lower offset right after the loop's interrupt check) to that jump.
  let loop = 0;
  const offs = instrs.map((l) => parseInt(l.split(/\s+/)[1], 16));
  if (target.includes('.loop')) {
    instrs.forEach((l, k) => {
      const m = /\sj\w+ 0x[0-9a-f]+\s+<\+0x([0-9a-f]+)>/.exec(l);
      if (m && k > 0 && /jslimit/.test(instrs[k - 1]) && parseInt(m[1], 16) < offs[k]) {
        loop = offs.filter((o) => o >= parseInt(m[1], 16) && o <= offs[k]).length;
      }
    });
    if (loop === 0) throw new Error(`${target}: no loop found in the optimized code`);
  }
  if (show) console.log(`---- ${target}\n${body}`);
  return { instructions: instrs.length, hitPath: loop || ret + 1, bytes: size };
}

// The function index of each export of a Wasm module (imports counted first, as V8 numbers them).
function exportIndices(bytes) {
  let p = 8;
  const leb = () => { let v = 0, sh = 0, b; do { b = bytes[p++]; v += (b & 0x7f) * 2 ** sh; sh += 7; } while (b & 0x80); return v; };
  const out = {};
  while (p < bytes.length) {
    const id = bytes[p++], size = leb(), end = p + size;
    if (id === 7) {
      for (let n = leb(); n > 0; n--) {
        const len = leb(); const name = new TextDecoder().decode(bytes.subarray(p, p + len)); p += len;
        const kind = bytes[p++]; const idx = leb();
        if (kind === 0) out[name] = idx;
      }
    }
    p = end;
  }
  return out;
}

async function wasmChild() {
  const { createMmu } = await import('../dist/index.js');
  const mmu = await createMmu({ ramBytes: 16 << 20, tlbEntries: 4096, wasm: new URL('../build/interpreter.wasm', import.meta.url) });
  const mm = mmu.createAddressSpace();
  const x = mmu.wasmExports;
  const BASE = 0x100000, PAGES = 64;
  mm.mmap({ addr: BASE, length: PAGES * 4096, prot: 3, flags: 0x32 });
  for (let p = 0; p < PAGES; p++) mm.store32(BASE + p * 4096, p + 1);
  x.rv_plain_alloc(BASE + PAGES * 4096);
  if (x.fp_bench_load_loop(mm.asid, BASE, PAGES, 1 << 16) !== x.fp_bench_load_loop(mm.asid, BASE, PAGES, 1 << 16)) throw new Error('?');
  x.plain_bench_load_loop(BASE, PAGES, 1 << 16);
}

function countWasm(show) {
  const { readFileSync } = require_fs();
  const idx = exportIndices(readFileSync(new URL('../build/interpreter.wasm', import.meta.url)));
  const out = execFileSync(process.execPath, ['--no-liftoff', '--no-wasm-lazy-compilation', '--print-wasm-code', SELF, '--wasm-child'],
    { encoding: 'utf8', maxBuffer: 256 << 20 });
  const blocks = out.split('--- WebAssembly code ---').slice(1);
  const rows = [];
  for (const [fn, what] of [['fp_bench_load_loop', 'fastpath.ts mmu_tlb_addr hit loop (bench hit-wasm)'], ['plain_bench_load_loop', 'the same loop over plain linear memory (the baseline)']]) {
    const b = blocks.find((s) => s.includes(`name: wasm-function[${idx[fn]}]`) && /compiler: TurboFan/.test(s));
    if (b === undefined) throw new Error(`${fn}: V8 printed no TurboFan code`);
    const instrs = b.split(/Instructions \(size = \d+\)\n/)[1].split(/\n\s*\n/)[0].split('\n').filter((l) => /^0x[0-9a-f]+\s+[0-9a-f]+\s+[0-9a-f]+\s+\S/.test(l));
    const offs = instrs.map((l) => parseInt(l.split(/\s+/)[1], 16));
    // The innermost back edge whose range holds the loop's address multiply (i * 2053 * 4).
    let best = null;
    instrs.forEach((l, k) => {
      const m = /\sj\w+ 0x[0-9a-f]+\s+<\+0x([0-9a-f]+)>/.exec(l);
      if (!m || parseInt(m[1], 16) >= offs[k]) return;
      const lo = parseInt(m[1], 16), body = instrs.filter((_, q) => offs[q] >= lo && offs[q] <= offs[k]);
      const loads = body.filter((x) => /imul.*0x2014/.test(x)).length;
      if (loads > 0 && (best === null || body.length < best.body.length)) best = { body, loads };
    });
    if (best === null) throw new Error(`${fn}: no loop found`);
    if (show) console.log(`---- ${fn}\n${best.body.join('\n')}`);
    rows.push({ perLoad: best.body.length / best.loads, loads: best.loads, total: instrs.length, what });
  }
  return rows;
}
function require_fs() { return fsMod; }
const fsMod = await import('node:fs');

if (process.argv[2] === '--child') {
  await child(process.argv[3]);
} else if (process.argv[2] === '--wasm-child') {
  await wasmChild();
} else if (process.argv.includes('--wasm')) {
  console.log(`V8 ${process.versions.v8}: machine instructions of the Wasm hit loop (TurboFan)`);
  console.log('per load (loads per pass)  total  function');
  for (const r of countWasm(process.argv.includes('--show'))) console.log(`${r.perLoad.toFixed(1).padStart(8)} (${r.loads})         ${String(r.total).padStart(6)}  ${r.what}`);
} else {
  const show = process.argv.includes('--show');
  console.log(`V8 ${process.versions.v8}: machine instructions of each function optimized on its own`);
  console.log('hit path (of a loop: its body)  total  bytes  function');
  for (const [t, what] of Object.entries(TARGETS)) {
    const r = count(t, show);
    console.log(`${String(r.hitPath).padStart(8)} ${String(r.instructions).padStart(6)} ${String(r.bytes).padStart(6)}  ${what}`);
  }
}
