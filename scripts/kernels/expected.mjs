#!/usr/bin/env node
// Writes golden/<dir>/expected-mismatches.json: the emulator-vs-kernel differences of each
// golden dir that the emulator does not model yet, each with its diagnosis. A mismatch is
// written only when DIAGNOSES below explains it; anything else is printed and the script
// exits 1 (diagnose it first, or fix the emulator). Rerun after the emulator learns a
// difference: entries that no longer occur disappear (the emulator test fails on stale ones).
//
//   npm run build && node scripts/kernels/expected.mjs [golden dir …]
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GOLDEN_DIR, loadScenarios } from '../../tests/conformance/lib/scenario.mjs';
import { kernelVersion } from '../../tests/conformance/lib/kernel.mjs';
import { EXPECTED_FILE, applyDeltas, checkScenario, expectedDeltas, goldenKernels, loadGolden } from '../../tests/conformance/emulator.mjs';

// Known kernel behaviours the emulator lacks: { scenario, when(profile, mismatch), reason,
// issue }; reason and issue are written into the entry. Empty since issue 15: every golden dir matches with its profile.
const DIAGNOSES = [];

const dirs = process.argv.slice(2).length ? process.argv.slice(2) : goldenKernels();
const scenarios = loadScenarios();
let unexplained = 0;
for (const kernel of dirs) {
  const { profile, golden } = loadGolden(kernel);
  const entries = [];
  for (const s of scenarios) {
    const r = await checkScenario(s, { profile, golden: golden(s.name), kernel });
    if (r.skipped) continue;
    // Only what the scenario's own expectedDeltas do not already cover.
    const { unexpected } = applyDeltas([...r.mismatches, ...r.accepted], expectedDeltas(s, kernel));
    const groups = new Map();
    for (const m of unexpected) {
      const d = DIAGNOSES.find((x) => x.scenario === s.name && x.when(profile, m));
      if (!d) {
        unexplained++;
        console.log(`${kernel} ${s.name}: no diagnosis for step ${m.step} ${m.field}${m.map ? ` ${m.map}[${m.page}]` : ''}: emulator ${m.emulator} vs kernel ${m.kernel}`);
        continue;
      }
      const key = `${m.step} ${m.field} ${m.map ?? ''}`;
      const g = groups.get(key) ?? { scenario: s.name, step: m.step, field: m.field, ...(m.map !== undefined ? { map: m.map } : {}), reason: d.reason, issue: d.issue };
      if (m.page !== undefined) g.pages = g.pages ? [Math.min(g.pages[0], m.page), Math.max(g.pages[1], m.page)] : [m.page, m.page];
      groups.set(key, g);
    }
    entries.push(...groups.values());
  }
  const f = join(GOLDEN_DIR, kernel, EXPECTED_FILE);
  if (!entries.length) {
    if (existsSync(f)) rmSync(f);
    console.log(`${kernel}: no expected mismatches (v${kernelVersion(profile.release)})`);
    continue;
  }
  const lines = entries.map((e) => `    ${JSON.stringify(e)}`);
  writeFileSync(f, `{\n  "note": "emulator-vs-kernel differences the emulator does not model yet (scripts/kernels/expected.mjs); the conformance test fails on any other mismatch and on an entry that no longer occurs",\n  "mismatches": [\n${lines.join(',\n')}\n  ]\n}\n`);
  console.log(`${kernel}: ${entries.length} expected mismatch entries in ${new Set(entries.map((e) => e.scenario)).size} scenario(s)`);
}
if (unexplained) process.exitCode = 1;
