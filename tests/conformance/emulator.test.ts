// The emulator half of conformance (issue #8): every scenario run on wasm-mmu must give the
// observations the real kernel gave — the golden results checked in under golden/ — except
// where the scenario declares a delta in `expectedDeltas` (with a LINUX-SPEC rule id and a
// reason). On a host that can run the kernel harness, wasm-mmu is also compared with a live
// kernel run.
import { afterAll, describe, expect, it } from 'vitest';
import { release } from 'node:os';
import * as api from '../../src/index.js';
import { loadScenarios, normalizeScenario, scenarioHash } from './lib/scenario.mjs';
import { fadviseRangeScenario } from './lib/runner-cases.mjs';
import { buildHarness, detectProfile, hostCapability, profileDiff, runOnKernelSettled, unmetRequirement } from './lib/kernel.mjs';
import { compareObservations, formatTable, summarizeMismatches } from './compare.mjs';
import {
  applyDeltas, checkScenario, describeFailure, emulatorOptions, expectedDeltas, expectedMismatches, goldenForProfile,
  goldenKernels, loadGolden, pickGoldenKernel, runOnEmulator, runOnEmulatorCached, slotBase,
} from './emulator.mjs';
import type { GoldenDoc, ObservationDoc, Scenario } from './types.js';

const scenarios: Scenario[] = loadScenarios();
const kernel = pickGoldenKernel();
const { profile, golden } = loadGolden(kernel);

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

  it('reports the zero page as Z: the emulator\'s zero page is frame 0 (issue 15 runner bug)', async () => {
    const s = scenarios.find((x) => x.name === 'anon-read')!;
    const withZero = (await runOnEmulator(s, { profile: { ...profile, zeroPage: true }, api })) as ObservationDoc;
    const without = (await runOnEmulator(s, { profile: { ...profile, zeroPage: false }, api })) as ObservationDoc;
    const states = (d: ObservationDoc) => d.observations.flatMap((o) => Object.values(o.maps).map((m) => m.state)).join('');
    expect(states(withZero)).toMatch(/Z/);
    expect(states(without)).not.toMatch(/Z/);
    expect(states(without)).toMatch(/A/);
  });

  it('R9.10: fadvise(DONTNEED) writes back only the advised range (a dirty page outside it stays writable)', async () => {
    const s = fadviseRangeScenario();
    const doc = await runOnEmulator(s, { profile: { ...profile, fileSystem: 'ext4' }, api });
    expect(doc.observations.map((o) => o.minflt)).toEqual([0, 1]);
  });

  it('R2.9 R10.0 R11.6 a tmpfs profile opens the file as shmem: msync write-protects nothing, a hole past the old EOF is one zeroed page (minor, no read-around) (issue 15)', async () => {
    const s = normalizeScenario({
      name: 'runner-tmpfs-shmem', rules: ['R2.9', 'R10.0'], description: 'tmpfs: msync and a hole fault',
      file: { pages: 16, cached: true },
      steps: [
        { op: 'mmap', id: 'f', pages: 16, prot: 'rw', flags: 'shared', anon: false },
        { op: 'touch', map: 'f', page: 0, access: 'write', expect: 'f' },
        { op: 'msync', map: 'f', sync: 'sync' },
        { op: 'touch', map: 'f', page: 0, access: 'write', expect: 'f' },
        { op: 'truncate', pages: 8 },
        { op: 'truncate', pages: 16 },
        { op: 'touch', map: 'f', page: 12, access: 'read', expect: 'f' },
      ],
    });
    // readaheadEofNoMarker pinned to 6.18's (the picked golden profile may be 7.x, which marks nothing at EOF).
    const run = async (fileSystem: string) => ((await runOnEmulator(s, { profile: { ...profile, fileSystem, readAheadKb: 128, readaheadEofNoMarker: false }, api })) as ObservationDoc)
      .observations.map((o) => [o.minflt, o.majflt, o.maps.f.state]);
    expect(await run('tmpfs')).toEqual([[1, 0, 'F...............'], [0, 0, 'F...............'], [1, 0, 'FFFFFFFF....F...']]);
    // ext4: msync write-protects (the rewrite faults), the miss reads around (major, window mapped).
    expect(await run('ext4')).toEqual([[1, 0, 'F...............'], [1, 0, 'F...............'], [0, 1, 'FFFFFFFF.FFFFFFF']]);
  });

  it('R7.2: a DAX profile (fileSystem ext4-dax) maps the file from XIP memory: no page cache, no `C`, one fault per page; DAX pages are file pages from 6.15 (daxFolios)', async () => {
    const s = normalizeScenario({
      name: 'runner-dax', rules: ['R7.2'], description: 'a DAX file: PFNs mapped directly, no fault-around, evict is a no-op',
      requires: ['dax'], file: { pages: 4, cached: false },
      steps: [
        { op: 'mmap', id: 'f', pages: 4, prot: 'r', flags: 'shared', anon: false },
        { op: 'touch', map: 'f', page: 1, access: 'read', expect: 'f' },
        { op: 'evict' },
        { op: 'pwrite', page: 1, value: 7 },
        { op: 'touch', map: 'f', page: 1, access: 'read', expect: 'f' },
      ],
    });
    // daxFolios derived from each release below (a recorded profile may state its own).
    const dax: Record<string, unknown> = { ...profile, fileSystem: 'ext4-dax' };
    delete dax.daxFolios;
    expect(unmetRequirement(s, profile)).toMatch(/DAX/);
    expect(unmetRequirement(s, dax)).toBeNull();
    for (const [release, state] of [['7.3.4+deb13-amd64', '.F..'], ['6.12.118+deb12-amd64', '.a..']]) {
      expect(emulatorOptions({ ...dax, release }).daxFolios).toBe(release.startsWith('7'));
      const doc = (await runOnEmulator(s, { profile: { ...dax, release }, api })) as ObservationDoc;
      expect(doc.observations.map((o) => [o.minflt, o.majflt, o.value, o.maps.f.state, o.maps.f.pfn]))
        .toEqual([[1, 0, 0x81, state, '.n..'], [0, 0, 7, state, '.=..']]);
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

// ---------------------------------------------------------------- emulator vs every golden dir
// Every golden dir on every run (issue 15). Differences the emulator does not model yet are
// listed per dir in golden/<dir>/expected-mismatches.json (scenario, reason, issue item); any
// other mismatch fails, and so does a listed one that no longer happens.
for (const kernel of goldenKernels()) {
  describe(`wasm-mmu reproduces the golden kernel results (${kernel})`, () => {
    const { profile, golden } = loadGolden(kernel);
    const known = expectedMismatches(kernel);
    const rows: Parameters<typeof formatTable>[0] = [];

    it('lists expected mismatches only for scenarios that exist', () => {
      const names = new Set(scenarios.map((s) => s.name));
      for (const n of known.keys()) expect(names.has(n), `${kernel}: expected mismatch for unknown scenario ${n}`).toBe(true);
    });

    for (const s of scenarios) {
      it(`${s.name} [${s.rules.join(' ')}]`, async () => {
        const g = golden(s.name) as GoldenDoc | null;
        expect(g, `no golden file for ${s.name} in ${kernel}: record it (tests/conformance/record.mjs or scripts/kernels/record.mjs)`).not.toBeNull();
        expect(g!.scenarioHash, `golden for ${s.name} in ${kernel} is stale (scenario changed): re-record it`).toBe(scenarioHash(s));
        const r = await checkScenario(s, { profile, golden: g, api, kernel, known: known.get(s.name) ?? [] });
        rows.push({ scenario: s.name, rules: s.rules, mismatches: r.mismatches ?? [], skipped: r.skipped });
        if (r.skipped) {
          expect(r.skipped).toBe(g!.skipped ?? unmetRequirement(s, profile));
          return;
        }
        expect(describeFailure(r), `${s.name}: emulator vs kernel ${kernel}`).toEqual([]);
      });
    }

    afterAll(() => {
      if (process.env.CONFORMANCE_TABLE) console.log(`${kernel}\n${formatTable(rows)}`);
    });
  });
}

// ---------------------------------------------------------------- emulator vs live kernel
// When the live kernel's profile matches a golden dir, the emulator is compared with the live
// runs under that dir's expected mismatches; otherwise with the emulator configured from the
// live profile, directly (a kernel nobody recorded yet).
type Plan =
  | { run: false; reason: string }
  | { run: true; harness: ReturnType<typeof buildHarness>; profile: Record<string, unknown>; kernel: string | null };

function plan(): Plan {
  const host = hostCapability();
  if (!host.ok) return { run: false, reason: host.reason! };
  const harness = buildHarness();
  const live = detectProfile(harness);
  return { run: true, harness, profile: live, kernel: goldenForProfile(live) };
}

const live = plan();

describe(`wasm-mmu vs the live kernel (${release()})`, () => {
  if (!live.run) {
    it(`is not run on this host: ${live.reason}`, () => {
      expect(live.reason).toMatch(/^(not Linux|\/proc\/self\/pagemap not readable|not root|no C compiler|missing )/);
    });
    return;
  }
  afterAll(() => live.harness.cleanup());
  const matched = live.kernel;
  const known = matched ? expectedMismatches(matched) : new Map();
  const g = matched ? loadGolden(matched) : null;
  it(`uses ${matched ? `golden dir ${matched} (same profile)` : 'the live profile (no golden dir matches)'}`, () => {
    if (matched) expect(profileDiff(g!.profile, live.profile)).toEqual([]);
    else for (const k of goldenKernels()) expect(profileDiff(loadGolden(k).profile, live.profile).length, k).toBeGreaterThan(0);
  });
  for (const s of scenarios) {
    const unmet = unmetRequirement(s, live.profile);
    if (unmet) continue;
    it(`${s.name} [${s.rules.join(' ')}]`, async () => {
      // A matched golden dir's profile configures the emulator exactly as the live one does.
      const e = await runOnEmulatorCached(s, { profile: g?.profile ?? live.profile, api });
      const gd = g?.golden(s.name) as GoldenDoc | null;
      const unstable = gd?.unstable ?? [];
      const deltas = [...expectedDeltas(s, matched ?? release()), ...(known.get(s.name) ?? [])];
      const diff = (k: GoldenDoc) => applyDeltas(compareObservations(k, e, { unstable }), deltas);
      // I/O timing under load: the kernel must repeat a disagreement (runOnKernelSettled).
      const k = runOnKernelSettled(live.harness, s, (o: GoldenDoc) => diff(o).unexpected.length === 0);
      const r = diff(k);
      expect(summarizeMismatches(r.unexpected), `${s.name}: emulator vs live kernel`).toEqual([]);
    });
  }
});
