// The emulator-author cases (issue 16): the per-access fast path against a plain array.
//   - the RV32I interpreter of examples/interpreter, in JS and in Wasm (AssemblyScript),
//     on wasm-mmu vs on plain memory, working set in the TLB (sieve + hash table, ~5 MiB
//     with tlbEntries 4096; 1.3 MiB with --quick): ns per guest instruction and the ratio;
//   - a TLB hit per access: a loop of 32-bit loads over 64 resident pages, from JS
//     (mm.load32 vs a Uint8Array) and inside Wasm (assembly/fastpath.ts vs a plain load):
//     the extra ns per access is the cost of the hit path.
// Each variant runs in its own process (bench/cases/emulator-child.mjs: the JIT sees one
// memory kind), the pairs alternate, and the median of the repetitions is reported; times
// are CPU time, which a shared machine disturbs far less than wall time. Every run checks
// its output against the JS reference (examples/interpreter/program.mjs) and its twin.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { referenceOutput } from '../../examples/interpreter/program.mjs';
import { fmtNs, pad } from '../lib/timing.mjs';

const CHILD = fileURLToPath(new URL('./emulator-child.mjs', import.meta.url));
const TLB_ENTRIES = 4096;
const TARGETS = { jsRatio: 2.0, wasmRatio: 1.5, jsHitNs: 2, wasmHitNs: 1 };

function child(variant, p) {
  const out = execFileSync(process.execPath, [CHILD, variant, String(p.sieveBytes), String(p.slots), String(p.keys), String(TLB_ENTRIES)],
    { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out.trim().split('\n').pop());
}

const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/** Returns { results: { id: { ns, ... } }, failed: [...], summary: [lines] }. */
export async function runEmulatorCases({ quick, log }) {
  const params = quick ? { sieveBytes: 1 << 20, slots: 1 << 16, keys: 50000 } : { sieveBytes: 4 << 20, slots: 1 << 18, keys: 200000 };
  const reps = quick ? 1 : 3;
  const want = referenceOutput(params);
  const failed = [];
  const runs = {};
  const pairs = [['js-plain', 'js-mmu'], ['wasm-plain', 'wasm-mmu'], ['hit-plain', 'hit-mmu'], ['hit-wasm']];
  log(`  program: sieve ${params.sieveBytes >> 10} KiB + hash table ${(params.slots * 4) >> 10} KiB, tlbEntries ${TLB_ENTRIES}, ${reps} alternating repetition(s) per pair`);
  for (let r = 0; r < reps; r++) {
    for (const pair of pairs) {
      for (const v of pair) {
        try {
          const res = child(v, params);
          (runs[v] ??= []).push(res);
        } catch (e) {
          failed.push(`emulator ${v}: ${e.message.split('\n')[0]}`);
        }
      }
    }
  }
  // Correctness: every interpreter run printed the reference output; the twins agree.
  for (const v of ['js-plain', 'js-mmu', 'wasm-plain', 'wasm-mmu']) {
    for (const res of runs[v] ?? []) {
      if (!same(res.out, want)) failed.push(`emulator ${v}: output ${res.out.join(' ')}, reference ${want.join(' ')}`);
      if (!same(res.outTimed, runs[v.replace('mmu', 'plain')]?.[0]?.outTimed)) failed.push(`emulator ${v}: second run differs from its plain twin`);
    }
  }
  for (const res of runs['hit-mmu'] ?? []) if (!same(res.out, runs['hit-plain']?.[0]?.out)) failed.push('emulator hit-mmu: sum differs from the plain loop');
  for (const res of runs['hit-wasm'] ?? []) {
    if (!same(res.out, res.outPlain)) failed.push('emulator hit-wasm: sum differs from the plain loop');
    if (res.tlbMisses > 64) failed.push(`emulator hit-wasm: ${res.tlbMisses} TLB misses for 64 pages`);
  }
  if (failed.length) { for (const f of failed) log(`  FAILED ${f}`); }

  const ns = (v, f = 'ns') => (runs[v]?.length ? median(runs[v].map((x) => x[f])) : null);
  const results = {};
  const summary = [];
  const row = (id, value, extra) => { if (value !== null && Number.isFinite(value)) results[id] = { ns: value, method: 'CPU time, median of alternating runs in fresh processes', ...extra }; };
  const ratio = (a, b) => (a !== null && b !== null ? a / b : null);
  const jsR = ratio(ns('js-mmu'), ns('js-plain'));
  const waR = ratio(ns('wasm-mmu'), ns('wasm-plain'));
  const jsHit = ns('hit-mmu') !== null && ns('hit-plain') !== null ? ns('hit-mmu') - ns('hit-plain') : null;
  const waHit = ns('hit-wasm') !== null ? ns('hit-wasm') - ns('hit-wasm', 'nsPlain') : null;
  row('interp_js_plain', ns('js-plain'));
  row('interp_js_mmu', ns('js-mmu'), { ratio: jsR, faultsFirstRun: runs['js-mmu']?.[0]?.minflt });
  row('interp_wasm_plain', ns('wasm-plain'));
  row('interp_wasm_mmu', ns('wasm-mmu'), { ratio: waR });
  row('mem_hit_js', jsHit, { loopNs: ns('hit-mmu'), plainLoopNs: ns('hit-plain') });
  row('mem_hit_wasm', waHit, { loopNs: ns('hit-wasm'), plainLoopNs: ns('hit-wasm', 'nsPlain') });
  const verdict = (v, t) => (v === null ? 'not measured' : v <= t ? 'met' : 'MISSED');
  const f2 = (v) => (v === null ? '—' : v.toFixed(2));
  summary.push(`RV32I interpreter, JS:   wasm-mmu ${f2(ns('js-mmu'))} ns/instr, plain Uint8Array ${f2(ns('js-plain'))}: ${f2(jsR)}x (target <= ${TARGETS.jsRatio}x: ${verdict(jsR, TARGETS.jsRatio)})`);
  summary.push(`RV32I interpreter, Wasm: fastpath.ts ${f2(ns('wasm-mmu'))} ns/instr, plain memory ${f2(ns('wasm-plain'))}: ${f2(waR)}x (target <= ${TARGETS.wasmRatio}x: ${verdict(waR, TARGETS.wasmRatio)})`);
  summary.push(`TLB hit per access, JS mm.load32: ${f2(jsHit)} ns over a Uint8Array load (loop ${f2(ns('hit-mmu'))} vs ${f2(ns('hit-plain'))}; target <= ${TARGETS.jsHitNs}: ${verdict(jsHit, TARGETS.jsHitNs)})`);
  summary.push(`TLB hit per access, Wasm fastpath.ts: ${f2(waHit)} ns over a plain load (loop ${f2(ns('hit-wasm'))} vs ${f2(ns('hit-wasm', 'nsPlain'))}; target <= ${TARGETS.wasmHitNs}: ${verdict(waHit, TARGETS.wasmHitNs)})`);
  for (const s of summary) log(`  ${s}`);
  return { results, failed, summary, params, tlbEntries: TLB_ENTRIES, runs };
}

// Run alone: node bench/cases/emulator.mjs [--quick]   (after npm run build)
// Writes bench/results/<date>-emulator[-quick].json.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes('--quick');
  const r = await runEmulatorCases({ quick, log: (s) => console.log(s) });
  for (const [id, v] of Object.entries(r.results)) console.log(`${pad(id, 20)} ${fmtNs(v.ns).padStart(8)} ns`);
  const { machineInfo } = await import('../lib/machine.mjs');
  const { writeFileSync, mkdirSync } = await import('node:fs');
  const now = new Date();
  const date = now.toISOString().slice(0, 10);
  const dir = fileURLToPath(new URL('../results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const file = `${dir}${date}-emulator${quick ? '-quick' : ''}.json`;
  writeFileSync(file, JSON.stringify({ schema: 1, date, finishedAt: now.toISOString(), quick, machine: machineInfo(), ...r }, null, 2) + '\n');
  console.log(`wrote ${file}`);
  process.exit(r.failed.length ? 1 : 0);
}
