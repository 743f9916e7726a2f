// The kernel half of conformance (LINUX-SPEC §2, §4, §5, §8–§11): the scenarios are valid
// data, the comparison works, and — on a host that allows it — every scenario run live on
// this machine's kernel reproduces the golden results checked in for this kernel version.
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { CONFORMANCE_DIR, GOLDEN_DIR, loadScenarios, normalizeScenario, scenarioHash, toLines } from './lib/scenario.mjs';
import { buildHarness, detectProfile, hostCapability, profileDiff, runOnKernelSettled, unmetRequirement } from './lib/kernel.mjs';
import { goldenForProfile, goldenKernels } from './emulator.mjs';
import { compareObservations, formatTable, summarizeMismatches } from './compare.mjs';
import { PfnTracker, stateChar } from './lib/observe.mjs';
import type { GoldenDoc, Observation } from './types.js';

const scenarios = loadScenarios();

describe('conformance scenarios (data)', () => {
  it('has at least 40 scenarios, each citing rule ids and recording at least one observation', () => {
    expect(scenarios.length).toBeGreaterThanOrEqual(40);
    for (const s of scenarios) {
      expect(s.rules.length, s.name).toBeGreaterThan(0);
      expect(s.steps.some((st: { expect?: unknown }) => st.expect), s.name).toBe(true);
    }
  });

  it('covers fault-around, anonymous, file writes, the COW matrix, mlock/populate, madvise, mprotect and truncation', () => {
    const names = new Set(scenarios.map((s) => s.name));
    for (const n of [
      'fa-aligned-private-seq', 'fa-misaligned-5', 'fa-table-edge-500', 'fa-vma-end', 'fa-file-offset-unaligned',
      'fa-short-file', 'fa-cold-cache', 'fa-madv-random-cached', 'anon-read', 'anon-write', 'anon-read-then-write',
      'file-private-write', 'file-shared-write', 'cow-child-writes-first', 'cow-parent-writes-first', 'cow-child-exits',
      'mlock-anon', 'mlock-onfault', 'populate-anon-rw', 'madv-dontneed-anon', 'madv-dontneed-private-file',
      'mprotect-exclusive-no-fault', 'cow-mprotect-after-fork', 'trunc-beyond-eof-sigbus', 'trunc-shrink-shared',
    ]) expect(names.has(n), n).toBe(true);
    const rules = new Set(scenarios.flatMap((s) => s.rules));
    for (const r of ['R2.3', 'R2.4', 'R2.8', 'R4.1', 'R4.2', 'R4.4', 'R5.1', 'R5.7', 'R5.9', 'R8.2', 'R8.3', 'R9.1', 'R9.3', 'R9.4', 'R9.8', 'R10.1', 'R10.2', 'R11.5', 'R11.6'])
      expect(rules.has(r), r).toBe(true);
  });

  it('converts every scenario to the harness line format, one line per step', () => {
    for (const s of scenarios) {
      const lines = toLines(s).trim().split('\n').filter((l: string) => l.startsWith('step '));
      expect(lines.length, s.name).toBe(s.steps.length);
      lines.forEach((l: string, i: number) => expect(l).toMatch(new RegExp(`^step i=${i} who=[01] op=\\w+`)));
    }
  });

  it('rejects a malformed scenario, naming the step', () => {
    const bad = { name: 'bad', rules: ['R4.2'], description: 'x', steps: [{ op: 'mmap', id: 'a', pages: 4, prot: 'rw', flags: 'private', anon: true }, { op: 'touch', map: 'b', page: 0 }] };
    expect(() => normalizeScenario(bad)).toThrow(/step 1: map "b" does not exist/);
    const child = { ...bad, steps: [bad.steps[0], { op: 'touch', map: 'a', page: 0, in: 'child' }] };
    expect(() => normalizeScenario(child)).toThrow(/needs a live child/);
  });

  it('README lists every scenario with its rule ids', () => {
    const readme = readFileSync(join(CONFORMANCE_DIR, 'README.md'), 'utf8');
    for (const s of scenarios) {
      const row = readme.split('\n').find((l) => l.startsWith(`| ${s.name} |`));
      expect(row, s.name).toBeDefined();
      expect(row!.split('|')[2].trim(), s.name).toBe(s.rules.join(' '));
    }
  });
});

const obs = (over: Partial<Observation>): Observation => ({
  step: 1, op: 'touch', in: 'parent', minflt: 1, majflt: 0, signal: null, sigCode: null, sigPage: null,
  errno: null, value: null, maps: { f: { state: 'FF..', pfn: 'CC..' } }, ...over,
});

describe('compare', () => {
  it('reports mismatches with step, field, map and page', () => {
    const k = [obs({}), obs({ step: 2, minflt: 0 })];
    const e = [obs({ maps: { f: { state: 'FFF.', pfn: 'CCC.' } } }), obs({ step: 2, minflt: 1, signal: 'SIGBUS', sigCode: 'BUS_ADRERR' })];
    const m = compareObservations(k, e);
    expect(m).toContainEqual(expect.objectContaining({ step: 1, field: 'state', map: 'f', page: 2, kernel: '.', emulator: 'F' }));
    expect(m).toContainEqual(expect.objectContaining({ step: 1, field: 'pfn', map: 'f', page: 2, kernel: '.', emulator: 'C' }));
    expect(m).toContainEqual(expect.objectContaining({ step: 2, field: 'minflt', kernel: 0, emulator: 1 }));
    expect(m).toContainEqual(expect.objectContaining({ step: 2, field: 'signal', kernel: null, emulator: 'SIGBUS' }));
    expect(summarizeMismatches(m)).toContain('step 1 (touch) state f[2]: emulator F vs kernel .');
  });

  it('does not compare unmeasured counts, ignored fields or fields recorded as unstable', () => {
    const k = [obs({ op: 'fork', minflt: null, majflt: null })];
    const e = [obs({ op: 'fork', minflt: 3, majflt: 0, maps: { f: { state: 'FF..', pfn: 'nn..' } } })];
    expect(compareObservations(k, e, { ignore: ['pfn'] })).toEqual([]);
    expect(compareObservations(k, e, { unstable: [{ step: 1, field: 'pfn', map: 'f' }] })).toEqual([]);
    expect(compareObservations(k, e)).toHaveLength(2);
    expect(compareObservations(k, [])).toEqual([expect.objectContaining({ step: 1, field: 'observation', emulator: 'missing' })]);
  });

  it('prints a pass/fail table with rule ids', () => {
    const table = formatTable([
      { scenario: 'anon-write', rules: ['R4.2'], mismatches: [] },
      { scenario: 'fa-vma-end', rules: ['R2.3', 'R2.8'], mismatches: compareObservations([obs({})], [obs({ minflt: 2 })]) },
      { scenario: 'softdirty-mprotect', rules: ['R9.9'], skipped: 'needs soft-dirty' },
    ]);
    expect(table).toMatch(/anon-write\s+\| R4\.2\s+\| pass/);
    expect(table).toMatch(/fa-vma-end\s+\| R2\.3 R2\.8 \| FAIL\s+\| step 1 \(touch\) minflt: emulator 2 vs kernel 1/);
    expect(table).toMatch(/softdirty-mprotect.*\| skip/);
    expect(table.trim().split('\n').pop()).toBe('1 passed, 1 failed, 1 skipped');
  });
});

describe('per-page observation rules (lib/observe.mjs, mirrored in scenario.c)', () => {
  it('maps pagemap bits to state characters', () => {
    expect(stateChar({ present: false })).toBe('.');
    expect(stateChar({ present: false, swapped: true })).toBe('S');
    expect(stateChar({ present: false, swapped: true, guard: true })).toBe('G');
    expect(stateChar({ present: true, file: true, exclusive: true, pfn: 7 })).toBe('F');
    expect(stateChar({ present: true, file: true, exclusive: false, pfn: 7 })).toBe('f');
    expect(stateChar({ present: true, file: false, exclusive: true, pfn: 7 })).toBe('A');
    expect(stateChar({ present: true, file: false, exclusive: false, pfn: 7 })).toBe('a');
    expect(stateChar({ present: true, file: false, exclusive: false, pfn: 9 }, 9)).toBe('Z');
  });

  it('classifies PFNs: page cache, same as at the previous expect, or new', () => {
    const t = new PfnTracker();
    const p = (pfn: number, extra = {}) => ({ present: true, file: false, exclusive: true, pfn, ...extra });
    const none = { present: false };
    t.reset('a', 3);
    expect(t.record('a', [p(5), p(6), none], { isFileMapping: false })).toEqual({ state: 'AA.', pfn: 'nn.' });
    const child = t.clone();
    t.sample('a', [none, p(6), none]); // page 0 went away and came back with the same PFN
    expect(t.record('a', [p(5), p(7), none], { isFileMapping: false }).pfn).toBe('nn.');
    expect(child.record('a', [p(5), p(6), none], { isFileMapping: false }).pfn).toBe('==.');
    expect(t.record('f', [p(8, { file: true }), p(9, { file: true, pageCache: false })], { isFileMapping: true }).pfn).toBe('Cn');
  });
});

// ---------------------------------------------------------------- live kernel vs golden
type Plan =
  | { run: false; reason: string }
  | { run: true; harness: ReturnType<typeof buildHarness>; dir: string };

/** The golden dir whose profile matches the live kernel's (issue 15: by profile, not by exact release). */
function plan(): Plan {
  const host = hostCapability();
  if (!host.ok) return { run: false, reason: host.reason };
  const harness = buildHarness();
  const profile = detectProfile(harness);
  const kernel = goldenForProfile(profile);
  if (!kernel) {
    harness.cleanup();
    const near = goldenKernels().map((k) => {
      const g = JSON.parse(readFileSync(join(GOLDEN_DIR, k, 'profile.json'), 'utf8'));
      return `${k}: ${profileDiff(g, profile).map((d) => `${d}=${d === 'series' ? profile.release : profile[d]} (golden ${d === 'series' ? g.release : g[d]})`).join(', ')}`;
    });
    return { run: false, reason: `no golden results with this kernel's profile (${release()}); record them with node tests/conformance/record.mjs. Differences: ${near.join('; ') || 'no golden dirs'}` };
  }
  return { run: true, harness, dir: join(GOLDEN_DIR, kernel) };
}

const p = plan();

describe(`live kernel (${release()}) reproduces the checked-in golden results of its profile`, () => {
  if (!p.run) {
    it(`is not run on this host: ${p.reason}`, () => {
      expect(p.reason).toMatch(/^(not Linux|\/proc\/self\/pagemap not readable|not root|no C compiler|missing |no golden results with this kernel's profile)/);
    });
    return;
  }
  afterAll(() => p.harness.cleanup());
  const rows: { scenario: string; rules: string[]; mismatches?: ReturnType<typeof compareObservations>; skipped?: string }[] = [];

  for (const s of scenarios) {
    it(`${s.name} [${s.rules.join(' ')}]`, () => {
      const file = join(p.dir, `${s.name}.json`);
      expect(existsSync(file), `no golden file for ${s.name}: run node tests/conformance/record.mjs ${s.name}`).toBe(true);
      const golden: GoldenDoc = JSON.parse(readFileSync(file, 'utf8'));
      expect(golden.scenarioHash, `golden for ${s.name} is stale (scenario changed): re-record it`).toBe(scenarioHash(s));
      if (golden.skipped) {
        const profile = JSON.parse(readFileSync(join(p.dir, 'profile.json'), 'utf8'));
        expect(unmetRequirement(s, profile)).toBe(golden.skipped);
        rows.push({ scenario: s.name, rules: s.rules, skipped: golden.skipped });
        return;
      }
      // I/O timing under load: a disagreement must repeat (runOnKernelSettled).
      const same = (o: GoldenDoc) => compareObservations(golden, o, { unstable: golden.unstable ?? [] });
      const live = runOnKernelSettled(p.harness, s, (o: GoldenDoc) => same(o).length === 0);
      const mismatches = same(live);
      rows.push({ scenario: s.name, rules: s.rules, mismatches });
      expect(summarizeMismatches(mismatches)).toEqual([]);
    });
  }

  it('prints the kernel-vs-golden table', () => {
    const table = formatTable(rows);
    if (process.env.CONFORMANCE_TABLE) console.log(table);
    expect(table.trim().split('\n').pop()).toMatch(/^\d+ passed, 0 failed, \d+ skipped$/);
  });
});
