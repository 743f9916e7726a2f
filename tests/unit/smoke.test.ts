import { describe, it, expect } from 'vitest';
import { createMmu } from '../../src/index.js';

describe('package', () => {
  it('boots with defaults: 64 MiB of RAM, all but the zero page free, invariants hold', async () => {
    const mmu = await createMmu();
    const s = mmu.stats();
    expect(s.ramFrames).toBe(16384);
    expect(s.freeFrames).toBe(16383);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});
