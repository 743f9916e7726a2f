// The emulator half of conformance (issue #8): every scenario run on wasm-mmu must give the
// observations the real kernel gave — the golden results checked in under golden/ — except
// where the scenario declares a delta in `expectedDeltas` (with a LINUX-SPEC rule id and a
// reason). On a host that can run the kernel harness, wasm-mmu is also compared with a live
// kernel run.
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import * as api from '../../src/index.js';
import { GOLDEN_DIR, loadScenarios, normalizeScenario, scenarioHash } from './lib/scenario.mjs';
import { buildHarness, detectProfile, hostCapability, PROFILE_KEYS, runOnKernel, unmetRequirement } from './lib/kernel.mjs';
import { compareObservations, formatTable, summarizeMismatches } from './compare.mjs';
import {
  applyDeltas, checkScenario, describeFailure, emulatorOptions, expectedDeltas, loadGolden, pickGoldenKernel,
  runOnEmulator, slotBase,
} from './emulator.mjs';
import type { GoldenDoc, ObservationDoc, Scenario } from './types.js';

const scenarios: Scenario[] = loadScenarios();
const kernel = pickGoldenKernel();
const { profile, golden } = loadGolden(kernel);
/** Emulator runs of the golden comparison, reused by the live comparison (same profile). */
const emulatorRuns = new Map<string, ObservationDoc>();

describe('emulator runner', () => {
  it(`configures wasm-mmu from the kernel profile of ${kernel}`, () => {
    const o = emulatorOptions(profile);
    expect(o.faultAroundBytes).toBe(profile.faultAroundBytes);
    expect(o.zeroPage).toBe(profile.zeroPage);
    expect(o.readaheadBytes).toBe(Math.min(256 << 20, profile.readAheadKb * 1024));
    expect(slotBase(0) % (2 << 20)).toBe(0);
    expect(slotBase(1) - slotBase(0)).toBeGreaterThanOrEqual(4 << 20);
  });

  it('returns observations of exactly the kernel harness shape', async () => {
    const s = scenarios.find((x) => x.name === 'cow-child-writes-first')!;
    const doc = (await runOnEmulator(s, { profile, api })) as ObservationDoc;
    const g = golden(s.name) as GoldenDoc;
    expect(doc.source).toBe('emulator');
    expect(doc.observations.map((o) => o.step)).toEqual(g.observations!.map((o) => o.step));
    for (const [i, o] of doc.observations.entries()) {
      expect(Object.keys(o).sort()).toEqual(Object.keys(g.observations![i]).sort());
      for (const [id, m] of Object.entries(o.maps)) expect(Object.keys(m).sort(), id).toEqual(Object.keys(g.observations![i].maps[id]).sort());
    }
  });

  it('accepts exactly the declared deltas, and reports a declared delta that did not happen', () => {
    const m = [
      { step: 1, in: 'parent' as const, op: 'mlock', field: 'majflt', kernel: 0, emulator: 1 },
      { step: 1, in: 'parent' as const, op: 'mlock', field: 'minflt', kernel: 2, emulator: 1 },
    ];
    const d = [{ step: 1, field: 'majflt', kernel: 0, emulator: 1, rule: 'R11.6', reason: 'a reason long enough' },
      { step: 2, field: 'value', rule: 'R5.1', reason: 'a reason long enough' }];
    const r = applyDeltas(m, d);
    expect(r.accepted).toEqual([m[0]]);
    expect(r.unexpected).toEqual([m[1]]);
    expect(r.unused).toEqual([d[1]]);
  });

  it('every declared delta is well-formed (step with an expect, field, rule id, reason)', () => {
    for (const s of scenarios) expect(() => expectedDeltas(s, kernel), s.name).not.toThrow();
    const s = scenarios.find((x) => x.name === 'mlock-cold-file')!;
    expect(() => expectedDeltas({ ...s, expectedDeltas: [{ step: 0, field: 'majflt', rule: 'R11.6', reason: 'no expect at step 0' }] }, kernel)).toThrow(/expect/);
    expect(() => expectedDeltas({ ...s, expectedDeltas: [{ step: 1, field: 'majflt', rule: 'R11.6', reason: 'short' }] }, kernel)).toThrow(/reason/);
  });

  it('a declared delta does not change the scenario hash (the kernel runs the same scenario)', () => {
    const s = scenarios.find((x) => x.name === 'mlock-cold-file')!;
    const withDelta = { ...s, expectedDeltas: [{ step: 1, field: 'majflt', rule: 'R11.6', reason: 'a reason long enough' }] };
    expect(scenarioHash(withDelta)).toBe(scenarioHash(s));
    expect(scenarioHash(s)).toBe((golden(s.name) as GoldenDoc).scenarioHash);
  });
});

// ---------------------------------------------------------------- runner bugs (issue 14/15)
describe('emulator runner fixes', () => {
  it('R4.1: with a zero page, an anonymous read fault is reported as Z (the zero page may be frame 0)', async () => {
    const s = normalizeScenario({
      name: 'runner-zero-page', rules: ['R4.1'], description: 'anonymous read maps the zero page',
      steps: [
        { op: 'mmap', id: 'a', pages: 4, prot: 'rw', anon: true },
        { op: 'touchRange', map: 'a', from: 0, to: 1, access: 'read', expect: 'a' },
        { op: 'touch', map: 'a', page: 1, access: 'write', expect: 'a' },
      ],
    });
    const doc = await runOnEmulator(s, { profile: { ...profile, zeroPage: true }, api });
    expect(doc.observations[0].maps.a.state).toBe('ZZ..');
    expect(doc.observations[1].maps.a.state).toBe('ZA..');
    const none = await runOnEmulator(s, { profile: { ...profile, zeroPage: false }, api });
    expect(none.observations[0].maps.a.state).toBe('AA..');
  });

  it('R9.10: fadvise(DONTNEED) writes back only the advised range (a dirty page outside it stays writable)', async () => {
    const s = normalizeScenario({
      name: 'runner-fadvise-range', rules: ['R9.10'], description: 'fadvise DONTNEED of page 0 only cleans page 0',
      file: { pages: 4, cached: true },
      steps: [
        { op: 'mmap', id: 'f', pages: 4, prot: 'rw', flags: 'shared', anon: false },
        { op: 'touch', map: 'f', page: 0, access: 'write' },
        { op: 'touch', map: 'f', page: 3, access: 'write' },
        { op: 'fadvise', advice: 'dontneed', from: 0, pages: 1 },
        { op: 'touch', map: 'f', page: 3, access: 'write', expect: 'f' },
        { op: 'touch', map: 'f', page: 0, access: 'write', expect: 'f' },
      ],
    });
    const doc = await runOnEmulator(s, { profile: { ...profile, fileSystem: 'ext4' }, api });
    expect(doc.observations.map((o) => o.minflt)).toEqual([0, 1]);
  });
});

// ---------------------------------------------------------------- emulator vs golden
describe(`wasm-mmu reproduces the golden kernel results (${kernel})`, () => {
  const rows: Parameters<typeof formatTable>[0] = [];

  for (const s of scenarios) {
    it(`${s.name} [${s.rules.join(' ')}]`, async () => {
      const g = golden(s.name) as GoldenDoc | null;
      expect(g, `no golden file for ${s.name} in ${kernel}: run node tests/conformance/record.mjs ${s.name}`).not.toBeNull();
      expect(g!.scenarioHash, `golden for ${s.name} is stale (scenario changed): re-record it`).toBe(scenarioHash(s));
      const r = await checkScenario(s, { profile, golden: g, api, kernel });
      if (r.emulator) emulatorRuns.set(s.name, r.emulator);
      rows.push({ scenario: s.name, rules: s.rules, mismatches: r.mismatches ?? [], skipped: r.skipped });
      if (r.skipped) {
        expect(r.skipped).toBe(g!.skipped ?? unmetRequirement(s, profile));
        return;
      }
      expect(describeFailure(r), `${s.name}: emulator vs kernel ${kernel}`).toEqual([]);
    });
  }

  afterAll(() => {
    if (process.env.CONFORMANCE_TABLE) console.log(formatTable(rows));
  });
});

// ---------------------------------------------------------------- emulator vs live kernel
type Plan = { run: false; reason: string } | { run: true; harness: ReturnType<typeof buildHarness>; profile: Record<string, unknown> };

function plan(): Plan {
  const host = hostCapability();
  if (!host.ok) return { run: false, reason: host.reason! };
  const dir = join(GOLDEN_DIR, release());
  if (!existsSync(join(dir, 'profile.json'))) {
    return { run: false, reason: `no golden profile for kernel ${release()}: the emulator's configuration for it is unknown` };
  }
  const harness = buildHarness();
  const live = detectProfile(harness);
  const recorded = JSON.parse(readFileSync(join(dir, 'profile.json'), 'utf8'));
  const diff = PROFILE_KEYS.filter((k) => recorded[k] !== live[k]);
  if (diff.length) {
    harness.cleanup();
    return { run: false, reason: `host profile differs from the golden profile of ${release()}: ${diff.join(', ')}` };
  }
  return { run: true, harness, profile: live };
}

const live = plan();

describe(`wasm-mmu vs the live kernel (${release()})`, () => {
  if (!live.run) {
    it(`is not run on this host: ${live.reason}`, () => {
      expect(live.reason).toMatch(/^(not Linux|\/proc\/self\/pagemap not readable|not root|no C compiler|missing |no golden profile for kernel|host profile differs)/);
    });
    return;
  }
  afterAll(() => live.harness.cleanup());
  const liveKernel = release();
  for (const s of scenarios) {
    const unmet = unmetRequirement(s, live.profile);
    if (unmet) continue;
    it(`${s.name} [${s.rules.join(' ')}]`, async () => {
      const k = runOnKernel(live.harness, s);
      // The live profile equals the golden one of this release in PROFILE_KEYS (fault-around,
      // zero page, readahead, file system: plan() checked), so the golden run stands for it.
      const e = (liveKernel === kernel && emulatorRuns.get(s.name)) || await runOnEmulator(s, { profile: live.profile, api });
      const g = golden(s.name) as GoldenDoc | null;
      const unstable = liveKernel === kernel ? g?.unstable ?? [] : [];
      const r = applyDeltas(compareObservations(k, e, { unstable }), expectedDeltas(s, liveKernel));
      expect(summarizeMismatches(r.unexpected), `${s.name}: emulator vs live kernel`).toEqual([]);
    });
  }
});
