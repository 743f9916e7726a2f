// npm run bench [-- --quick] [-- --no-native]
//
// Runs, in order: the hardware cases (benny), the fault cases (own hrtime loop; they wait
// for the address-space API), the same loops on this machine's kernel (bench/native/);
// then prints ONE table and writes bench/results/<date>.json and <date>.svg
// (<date>-quick.* with --quick, so a quick run never overwrites a full one).
// Exits 1 when a case failed its correctness check.
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runHardwareCases } from './cases/hardware.mjs';
import { runFaultCases } from './cases/faults.mjs';
import { runEmulatorCases } from './cases/emulator.mjs';
import { runNative } from './lib/native.mjs';
import { machineInfo, machineLine, cpuSnapshot, otherLoad } from './lib/machine.mjs';
import { buildRows, formatTable, renderSvg } from './lib/report.mjs';
import { fmtNs } from './lib/timing.mjs';

const args = process.argv.slice(2);
const unknown = args.filter((a) => !['--quick', '--no-native'].includes(a));
if (unknown.length) {
  console.error(`bench: unknown argument ${unknown.join(' ')} (use --quick, --no-native)`);
  process.exit(2);
}
const quick = args.includes('--quick');
const skipNative = args.includes('--no-native');

// Sizes and budgets: the full run stays under 3 minutes, --quick under 30 s (with the build).
const config = quick
  ? { regionBytes: 32 << 20, faultBudgetMs: 200, nativeBudgetMs: 100, benny: { minTime: 0.05, maxTime: 0.2 } }
  : { regionBytes: 128 << 20, faultBudgetMs: 2000, nativeBudgetMs: 1000, benny: { minTime: 0.1, maxTime: 1.5 } };

const log = (s) => console.log(s);
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
const machine = machineInfo();
const cpuAtStart = cpuSnapshot();
const now = new Date();
const date = `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, '0')}-${String(now.getDate()).padStart(2, '0')}`;

log(`wasm-mmu bench${quick ? ' (quick)' : ''}: ${machineLine(machine)}`);
log(`region ${config.regionBytes >> 20} MiB (${config.regionBytes / 4096} pages) per fault-case repetition`);

log(`\n[1/3] hardware cases (benny, minTime ${config.benny.minTime} s, maxTime ${config.benny.maxTime} s)`);
const hw = await runHardwareCases({ ...config.benny, log, regionBytes: config.regionBytes });

log(`\n[2/3] fault cases (hrtime loop, ${config.faultBudgetMs} ms per case) at ${elapsed()}`);
const faults = await runFaultCases({ quick, regionBytes: config.regionBytes, budgetMs: config.faultBudgetMs, log });

log(`\n[2b/3] emulator-author cases: the per-access fast path vs a plain array (fresh processes, CPU time) at ${elapsed()}`);
const emu = await runEmulatorCases({ quick, log });

log(`\n[3/3] native: the same loops on this machine's kernel (cc -O2 bench/native/faults.c) at ${elapsed()}`);
const native = skipNative
  ? { available: false, reason: '--no-native' }
  : runNative({ regionBytes: config.regionBytes, budgetMs: config.nativeBudgetMs, log });
if (skipNative) log('native: kernel column skipped: --no-native');

const emulated = { ...hw.results, ...faults.results, ...emu.results };
const rows = buildRows(emulated, native);
const failed = [...hw.failed, ...faults.failed, ...emu.failed];
const pending = faults.pending;

log(`\nResults (${date}, ${machineLine(machine)}), ns per operation, median:`);
log(formatTable(rows));
if (!faults.built) log('fault cases: address-space API not built yet (left out of the table)');
for (const p of pending) log(`pending: ${p}`);
for (const f of failed) log(`FAILED: ${f}`);
const notes = [];
const others = otherLoad(cpuAtStart, cpuSnapshot());
if (others !== null && others > 0.1) {
  notes.push(`other processes used ${others.toFixed(2)} of ${machine.cores} CPUs during the run: expect noise`);
}
if (native.available) {
  const n = native.data;
  const sys = n.cases.syscall?.ns;
  if (sys) notes.push(`native calibration: one getppid() system call costs ${fmtNs(sys)} ns on this machine`);
  if (machine.virtualized) notes.push('this machine is a virtual machine (cpuinfo "hypervisor"): kernel faults and system calls pay for virtualization, so the kernel column is slower than on bare metal');
  for (const [id, c] of Object.entries(n.cases)) if (c.na) notes.push(`native ${id}: n/a: ${c.na}`);
  if (n.faultAroundKnob < 0) notes.push('native fault-around 64 KiB: kernel default assumed (the debugfs knob is not readable)');
  notes.push(`native mmap+munmap ran with ${n.vmasPresent} VMAs in the process before each probe mapping (max_map_count ${n.maxMapCount})`);
}
for (const s of emu.summary) notes.push(`emulator authors: ${s}`);
for (const s of notes) log(`note: ${s}`);

const outDir = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(outDir, { recursive: true });
const base = `${outDir}${date}${quick ? '-quick' : ''}`;
const record = {
  schema: 1,
  date,
  finishedAt: new Date().toISOString(),
  quick,
  machine: { ...machine, otherProcessesCpus: others },
  config,
  rows,
  emulated,
  native: native.available ? native.data : { unavailable: native.reason },
  faultCasesBuilt: faults.built,
  pending,
  failed,
  notes,
};
writeFileSync(`${base}.json`, JSON.stringify(record, null, 2) + '\n');
writeFileSync(`${base}.svg`, renderSvg(rows, {
  title: `wasm-mmu: emulated vs native, ns per operation (${date}${quick ? ', quick' : ''})`,
  subtitle: machineLine(machine),
}));
log(`\nwrote ${base}.json and ${base}.svg (${elapsed()})`);
process.exit(failed.length ? 1 : 0);
