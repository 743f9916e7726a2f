#!/usr/bin/env node
// Records golden kernel results: runs every scenario on the live kernel (3 times by default,
// to prove it repeatable) and writes tests/conformance/golden/<uname -r>/<scenario>.json plus
// profile.json.
//
//   node tests/conformance/record.mjs                 all scenarios, 3 runs each
//   node tests/conformance/record.mjs --runs 5 fa-    only scenarios whose name contains "fa-"
//   node tests/conformance/record.mjs --check         record nothing; compare live runs to golden
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GOLDEN_DIR, loadScenarios, scenarioHash } from './lib/scenario.mjs';
import { buildHarness, detectProfile, hostCapability, runOnKernel, unmetRequirement, PROFILE_KEYS } from './lib/kernel.mjs';
import { compareObservations, formatTable } from './compare.mjs';
import { goldenForProfile } from './emulator.mjs';

/** Golden JSON: one key per line, one observation per line (small, reviewable diffs). */
export function formatGolden(doc) {
  const { observations, ...head } = doc;
  const lines = ['{'];
  for (const [k, v] of Object.entries(head)) lines.push(`  ${JSON.stringify(k)}: ${JSON.stringify(v)},`);
  if (!observations) {
    lines[lines.length - 1] = lines[lines.length - 1].replace(/,$/, '');
  } else {
    lines.push('  "observations": [');
    observations.forEach((o, i) => lines.push(`    ${JSON.stringify(o)}${i < observations.length - 1 ? ',' : ''}`));
    lines.push('  ]');
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}

/** Key of a mismatch as stored in a golden file's `unstable` list. */
const unstableEntry = (m) => ({ step: m.step, field: m.field, ...(m.map !== undefined ? { map: m.map } : {}), ...(m.page !== undefined ? { page: m.page } : {}) });

/**
 * Runs one scenario `runs` times. Returns the golden document: run 1's observations, and
 * every (step, field, map, page) on which a later run differed from run 1.
 */
export function recordScenario(harness, norm, profile, runs = 3) {
  const base = { scenario: norm.name, rules: norm.rules, kernel: profile.release, scenarioHash: scenarioHash(norm) };
  const unmet = unmetRequirement(norm, profile);
  if (unmet) return { ...base, skipped: unmet };
  // `harness`: a built harness (run here), or a function returning the next run's observation
  // document (runs made elsewhere, e.g. inside a QEMU guest: scripts/kernels/).
  const run = typeof harness === 'function' ? () => harness(norm) : () => runOnKernel(harness, norm);
  const first = run();
  const seen = new Map();
  for (let r = 1; r < runs; r++) {
    const again = run();
    for (const m of compareObservations(first, again)) {
      const e = unstableEntry(m);
      seen.set(JSON.stringify(e), e);
    }
  }
  const unstable = [...seen.values()];
  return { ...base, runs, repeatable: unstable.length === 0, unstable, observations: first.observations };
}

function main(argv) {
  let runs = 3;
  let check = false;
  const only = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--runs') runs = Number(argv[++i]);
    else if (argv[i] === '--check') check = true;
    else only.push(argv[i]);
  }
  if (!(runs >= 1)) throw new Error('--runs needs a number >= 1');
  const host = hostCapability();
  if (!host.ok) {
    console.error(`cannot record on this host: ${host.reason}`);
    process.exit(1);
  }
  const scenarios = loadScenarios().filter((s) => !only.length || only.some((o) => s.name.includes(o)));
  const harness = buildHarness();
  try {
    const profile = detectProfile(harness);
    // The golden dir of this profile (a rebuild of a recorded kernel keeps its dir), else a new one.
    const dir = join(GOLDEN_DIR, goldenForProfile(profile) ?? profile.release);
    if (check) {
      const rows = scenarios.map((s) => {
        const file = join(dir, `${s.name}.json`);
        if (!existsSync(file)) return { scenario: s.name, rules: s.rules, skipped: 'no golden file' };
        const g = JSON.parse(readFileSync(file, 'utf8'));
        if (g.skipped) return { scenario: s.name, rules: s.rules, skipped: g.skipped };
        const live = runOnKernel(harness, s);
        return { scenario: s.name, rules: s.rules, mismatches: compareObservations(g, live, { unstable: g.unstable }) };
      });
      console.log(formatTable(rows));
      process.exitCode = rows.some((r) => r.mismatches?.length) ? 1 : 0;
      return;
    }
    mkdirSync(dir, { recursive: true });
    // A dir recorded by another build of this kernel keeps its profile (it matched in every
    // compared key); each golden file names the release that recorded it.
    const pf = join(dir, 'profile.json');
    const kept = existsSync(pf) ? JSON.parse(readFileSync(pf, 'utf8')) : null;
    writeFileSync(pf, JSON.stringify(kept ? { ...profile, ...kept } : profile, null, 2) + '\n');
    console.log(`kernel ${profile.release}: zeroPage=${profile.zeroPage} softDirty=${profile.softDirty} faultAroundBytes=${profile.faultAroundBytes} (${profile.faultAroundSource}) fs=${profile.fileSystem} thp=${profile.thp}`);
    const t0 = Date.now();
    const flagged = [];
    for (const s of scenarios) {
      const doc = recordScenario(harness, s, profile, runs);
      writeFileSync(join(dir, `${s.name}.json`), formatGolden(doc));
      const status = doc.skipped ? `skipped: ${doc.skipped}` : doc.repeatable ? `repeatable (${runs} runs)` : `NOT REPEATABLE: ${doc.unstable.length} field(s) differ`;
      if (doc.repeatable === false) flagged.push(s.name);
      console.log(`${s.name.padEnd(36)} ${s.rules.join(' ').padEnd(28)} ${status}`);
    }
    if (!only.length) {
      const names = new Set(scenarios.map((s) => `${s.name}.json`));
      for (const f of readdirSync(dir)) if (f.endsWith('.json') && f !== 'profile.json' && f !== 'expected-mismatches.json' && !names.has(f)) rmSync(join(dir, f));
    }
    console.log(`${scenarios.length} scenarios recorded in ${dir} (${((Date.now() - t0) / 1000).toFixed(1)} s)` +
      (flagged.length ? `; not repeatable: ${flagged.join(', ')}` : '; all repeatable'));
    console.log(`profile keys compared by the test: ${PROFILE_KEYS.join(', ')}`);
  } finally {
    harness.cleanup();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) main(process.argv.slice(2));
