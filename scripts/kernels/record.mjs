#!/usr/bin/env node
// `npm run conformance:kernels`: records the conformance scenarios on Debian's own kernels
// under QEMU (TCG, no KVM) and writes tests/conformance/golden/<release>[-variant]/ with its
// profile.json — the same golden format and the same 3-run instability check as
// tests/conformance/record.mjs (recordScenario), only the runs happen inside a guest.
//
//   node scripts/kernels/record.mjs                     every kernel × ra8192, ra128 (+ tmpfs on 6.12-amd64)
//   node scripts/kernels/record.mjs --kernels 6.12-amd64 --variants ra128 fa-   a subset
//   node scripts/kernels/record.mjs --check --kernels 6.12-amd64   boot, compare with the golden dir, record nothing
//   node scripts/kernels/record.mjs --install           first apt-get the system packages it lists as missing
//
// System packages (Debian): qemu-system-x86 qemu-system-arm cpio e2fsprogs util-linux xz-utils
// gcc gcc-aarch64-linux-gnu libc6-dev-arm64-cross; `dpkg --add-architecture arm64`; apt sources
// with trixie-backports for the 7.x kernels (pinned to -1: download only). Nothing is
// installed unless --install is given. Kernel packages are `apt-get download`ed into
// ~/.cache/wasm-mmu-kernels (WASM_MMU_KERNEL_CACHE) and never installed.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GOLDEN_DIR, loadScenarios, scenarioHash } from '../../tests/conformance/lib/scenario.mjs';
import { parseOutput, profileDiff, profileFromFacts, unmetRequirement } from '../../tests/conformance/lib/kernel.mjs';
import { formatGolden, recordScenario } from '../../tests/conformance/record.mjs';
import { compareObservations, formatTable } from '../../tests/conformance/compare.mjs';
import { goldenForProfile } from '../../tests/conformance/emulator.mjs';
import { KERNELS, TOOLS, TRIXIE_PIN, TRIXIE_SOURCES, have, prepareKernel } from './kernels.mjs';
import { VARIANTS, boot, buildDisks, buildInitramfs, buildStaticHarness, makeWork, parseGuestOutput, qemuCommand } from './guest.mjs';

const DEFAULT_PLAN = [
  ...KERNELS.flatMap((k) => ['ra8192', 'ra128'].map((v) => [k.name, v])),
  ['6.12-amd64', 'tmpfs'],
  ['6.12-amd64', 'dax'],
  ['7.3-amd64', 'dax'],
];

function parseArgs(argv) {
  const o = { runs: 3, check: false, install: false, kernels: null, variants: null, only: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--runs') o.runs = Number(argv[++i]);
    else if (a === '--check') o.check = true;
    else if (a === '--install') o.install = true;
    else if (a === '--kernels') o.kernels = argv[++i].split(',');
    else if (a === '--variants') o.variants = argv[++i].split(',');
    else if (a === '--help' || a === '-h') o.help = true;
    else o.only.push(a);
  }
  return o;
}

/** What the host lacks: { packages: [...], arm64Arch, trixie }. */
function missingSetup(plan) {
  const arches = new Set(plan.map(([k]) => KERNELS.find((x) => x.name === k).arch));
  const packages = [];
  for (const [tool, pkg] of TOOLS) {
    if (!arches.has('arm64') && /aarch64/.test(tool)) continue;
    if (!have(tool)) packages.push(...pkg.split(' '));
  }
  const foreign = spawnSync('dpkg', ['--print-foreign-architectures'], { encoding: 'utf8' }).stdout ?? '';
  const arm64Arch = arches.has('arm64') && !foreign.split('\n').includes('arm64');
  const needs7 = plan.some(([k]) => k.startsWith('7.'));
  const policy = needs7 ? spawnSync('apt-cache', ['policy'], { encoding: 'utf8' }).stdout ?? '' : 'trixie-backports';
  return { packages, arm64Arch, trixie: needs7 && !policy.includes('trixie-backports') };
}

function install(m) {
  const run = (cmd, args) => {
    console.log(`# ${cmd} ${args.join(' ')}`);
    const r = spawnSync(cmd, args, { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`${cmd} failed`);
  };
  if (m.trixie) {
    console.log('# adding trixie/trixie-backports (pin -1: download only) to the apt sources');
    writeFileSync('/etc/apt/sources.list.d/wasm-mmu-trixie.sources', TRIXIE_SOURCES);
    writeFileSync('/etc/apt/preferences.d/wasm-mmu-trixie', TRIXIE_PIN);
  }
  if (m.arm64Arch) run('dpkg', ['--add-architecture', 'arm64']);
  run('apt-get', ['update', '-qq']);
  if (m.packages.length) run('apt-get', ['install', '-y', '-qq', ...m.packages]);
}

/** Boots one kernel in one variant, runs the scenarios; returns { profile, runs, warnings, seconds }. */
async function bootAndRun(kernel, variant, scenarios, runs, harnessBin) {
  const work = makeWork();
  try {
    const initrd = buildInitramfs(work, kernel, harnessBin, scenarios, { runs, variant });
    const v = VARIANTS[variant];
    const { disk, swap } = buildDisks(work, { diskMiB: v.diskMiB });
    const [cmd, args] = qemuCommand(kernel.arch, { vmlinuz: kernel.vmlinuz, initrd, disk, swap, append: v.append });
    const t0 = Date.now();
    let n = 0;
    const out = await boot(cmd, args, {
      onLine: (l) => { if (l.startsWith('@@run ') && l.endsWith(' 1') && ++n % 20 === 0) process.stdout.write(`  … ${n}/${scenarios.length}\n`); },
    });
    const seconds = (Date.now() - t0) / 1000;
    writeFileSync(join(work, 'serial.log'), out);
    const g = parseGuestOutput(out);
    if (!g.done) throw new Error(`the guest did not finish (serial log kept in ${work}/serial.log):\n${out.slice(-3000)}`);
    if (!g.profileText) throw new Error(`no profile from the guest:\n${out.slice(-3000)}`);
    const profile = profileFromFacts({
      harnessProfile: g.profileText,
      cmdline: g.facts.cmdline ?? '',
      readAheadKb: g.facts.readAheadKb ? Number(g.facts.readAheadKb) : null,
      thp: g.facts.thp ?? null,
      thpShmem: g.facts.thpShmem ?? null,
      swaps: 'header\n'.repeat(Number(g.facts.swaps ?? 1)),
      configText: kernel.configText,
    });
    rmSync(work, { recursive: true, force: true });
    return { profile, runs: g.runs, warnings: g.warnings, seconds };
  } catch (e) {
    console.error(`  (work dir kept: ${work})`);
    throw e;
  }
}

async function main(argv) {
  const o = parseArgs(argv);
  if (o.help) {
    console.log(readFileSync(new URL(import.meta.url)).toString().split('\n').filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n'));
    return;
  }
  let plan = DEFAULT_PLAN.filter(([k, v]) => (!o.kernels || o.kernels.includes(k)) && (!o.variants || o.variants.includes(v)));
  if (o.kernels && o.variants) plan = o.kernels.flatMap((k) => o.variants.map((v) => [k, v]));
  for (const [k, v] of plan) {
    if (!KERNELS.some((x) => x.name === k)) throw new Error(`unknown kernel ${k} (known: ${KERNELS.map((x) => x.name).join(', ')})`);
    if (!VARIANTS[v]) throw new Error(`unknown variant ${v} (known: ${Object.keys(VARIANTS).join(', ')})`);
    const arch = KERNELS.find((x) => x.name === k).arch;
    if (VARIANTS[v].arches && !VARIANTS[v].arches.includes(arch)) throw new Error(`variant ${v} runs on ${VARIANTS[v].arches.join(', ')} only, not ${k}`);
  }
  const miss = missingSetup(plan);
  if (miss.packages.length || miss.arm64Arch || miss.trixie) {
    const what = [
      miss.packages.length ? `apt-get install ${miss.packages.join(' ')}` : null,
      miss.arm64Arch ? 'dpkg --add-architecture arm64 && apt-get update' : null,
      miss.trixie ? 'trixie-backports in the apt sources (pinned -1, for apt-get download only)' : null,
    ].filter(Boolean);
    if (!o.install) {
      console.error(`missing on this host:\n  ${what.join('\n  ')}\nrun again with --install to have this script do it (as root), or do it yourself.`);
      process.exit(2);
    }
    install(miss);
  }
  const scenarios = loadScenarios().filter((s) => !o.only.length || o.only.some((f) => s.name.includes(f)));
  const binDir = makeWork();
  const harness = {};
  let failed = false;
  try {
    for (const [kname, variant] of plan) {
      const k = KERNELS.find((x) => x.name === kname);
      console.log(`${kname} [${variant}]: preparing`);
      // --check (CI) survives Debian replacing the pinned build: it boots the newest build of
      // the same major.minor and compares with the golden dir whose profile matches.
      const kernel = prepareKernel(k, { fallback: o.check });
      if (kernel.fallback) console.log(`  ${kernel.fallback}`);
      harness[k.arch] ??= buildStaticHarness(k.arch, binDir);
      const v = VARIANTS[variant];
      // Scenarios that cannot run there at all (tmpfs: no cold cache) are not sent to the guest.
      const fsProfile = { fileSystem: v.fs, softDirty: true, zeroPage: true };
      const sendable = scenarios.filter((s) => !unmetRequirement({ ...s, requires: [] }, fsProfile));
      const r = await bootAndRun(kernel, variant, sendable, o.check ? 1 : o.runs, harness[k.arch]);
      let dirName = `${r.profile.release}${v.suffix}`;
      if (o.check) {
        // Golden selection by profile (major.minor + PROFILE_KEYS), as kernel.test.ts does.
        const exact = existsSync(join(GOLDEN_DIR, dirName, 'profile.json')) &&
          !profileDiff(JSON.parse(readFileSync(join(GOLDEN_DIR, dirName, 'profile.json'), 'utf8')), r.profile).length;
        const byProfile = exact ? dirName : goldenForProfile(r.profile);
        if (!byProfile) {
          console.log(`${kname} [${variant}]: booted ${r.profile.release}; FAIL: no golden dir has its profile (readAheadKb=${r.profile.readAheadKb} fs=${r.profile.fileSystem} machine=${r.profile.machine})`);
          failed = true;
          continue;
        }
        dirName = byProfile;
      }
      const dir = join(GOLDEN_DIR, dirName);
      console.log(`${kname} [${variant}] ${o.check ? `booted ${r.profile.release} (${kernel.debs.map((d) => d.split('=')[0].split(':')[0] + ' ' + d.split('=')[1]).join(', ')}), checked against golden/` : '→ '}${dirName}: ${r.seconds.toFixed(1)} s in QEMU; zeroPage=${r.profile.zeroPage} softDirty=${r.profile.softDirty} guardRegions=${r.profile.guardRegions} readAheadKb=${r.profile.readAheadKb} fs=${r.profile.fileSystem} swap=${r.profile.swap}` +
        (r.warnings.length ? `; guest warnings: ${r.warnings.join('; ')}` : ''));
      const next = (norm) => {
        const list = r.runs.get(norm.name);
        if (!list?.length) throw new Error(`${dirName}: the guest produced no run of ${norm.name}`);
        return parseOutput(norm, list.shift(), r.profile.release);
      };
      if (o.check) {
        // In CI a scenario without a current golden file is a failure, not a skip: otherwise a
        // kernel nobody recorded would pass by comparing nothing.
        const missing = [];
        const rows = scenarios.map((s) => {
          const file = join(dir, `${s.name}.json`);
          if (!existsSync(file)) { missing.push(`${s.name} (no golden file)`); return { scenario: s.name, rules: s.rules, skipped: 'no golden file' }; }
          const gd = JSON.parse(readFileSync(file, 'utf8'));
          if (gd.scenarioHash !== scenarioHash(s)) missing.push(`${s.name} (golden is stale)`);
          if (gd.skipped) return { scenario: s.name, rules: s.rules, skipped: gd.skipped };
          return { scenario: s.name, rules: s.rules, mismatches: compareObservations(gd, next(s), { unstable: gd.unstable }) };
        });
        if (missing.length) {
          console.log(`FAIL: ${missing.length} scenario(s) not checkable against golden/${dirName}: ${missing.join(', ')}`);
          failed = true;
        }
        console.log(formatTable(rows));
        if (rows.some((x) => x.mismatches?.length)) failed = true;
        continue;
      }
      const profile = { ...r.profile, variant, qemu: kname };
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'profile.json'), JSON.stringify(profile, null, 2) + '\n');
      const flagged = [];
      for (const s of scenarios) {
        const doc = recordScenario(next, s, profile, o.runs);
        writeFileSync(join(dir, `${s.name}.json`), formatGolden(doc));
        if (doc.repeatable === false) flagged.push(`${s.name} (${doc.unstable.length})`);
      }
      if (!o.only.length) {
        const names = new Set(scenarios.map((s) => `${s.name}.json`));
        for (const f of readdirSync(dir)) if (f.endsWith('.json') && f !== 'profile.json' && f !== 'expected-mismatches.json' && !names.has(f)) rmSync(join(dir, f));
      }
      const skipped = scenarios.filter((s) => unmetRequirement(s, profile)).length;
      console.log(`  ${scenarios.length} scenarios written to golden/${dirName} (${skipped} skipped)` +
        (flagged.length ? `; not repeatable: ${flagged.join(', ')}` : '; all repeatable'));
    }
  } finally {
    rmSync(binDir, { recursive: true, force: true });
  }
  if (failed) process.exitCode = 1;
}

main(process.argv.slice(2)).catch((e) => {
  console.error(e.stack ?? e.message);
  process.exit(1);
});
