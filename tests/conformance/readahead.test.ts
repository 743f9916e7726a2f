// Readahead at the kernels' default read_ahead_kb (issue 15): golden/6.18.44-fc-ra128 was
// recorded on this machine kind's kernel with the scenario file on a loop-mounted ext4 whose
// read_ahead_kb was 128 (the other golden dir uses 8192, where windows cover whole files and
// hide the marker). wasm-mmu, configured from that profile, must match every scenario.
import { describe, expect, it } from 'vitest';
import * as api from '../../src/index.js';
import { loadScenarios } from './lib/scenario.mjs';
import { checkScenario, describeFailure, goldenKernels, loadGolden } from './emulator.mjs';

const KERNEL = '6.18.44-fc-ra128';

describe(`wasm-mmu reproduces ${KERNEL} (R2.9 readahead at read_ahead_kb 128)`, () => {
  it('the golden dir exists and was recorded at read_ahead_kb 128', () => {
    expect(goldenKernels()).toContain(KERNEL);
    expect(loadGolden(KERNEL).profile.readAheadKb).toBe(128);
  });
  const { profile, golden } = loadGolden(KERNEL);
  for (const s of loadScenarios()) {
    it(`${s.name} (${s.rules.join(' ')})`, async () => {
      const row = await checkScenario(s, { profile, golden: golden(s.name), api, kernel: KERNEL });
      if (row.skipped) {
        expect(row.skipped).toMatch(/soft-dirty|zero page|no golden/);
        return;
      }
      expect(row.mismatches, describeFailure(row).join('\n')).toEqual([]);
    });
  }
});
