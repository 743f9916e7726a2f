// Model-based property tests (issue #10): random command sequences against a plain shadow
// model (tests/property/model.mjs). Every byte written reads back, private stays private,
// shared stays shared, nothing is lost under memory pressure, and checkInvariants() stays
// empty after every command. The long run is `npm run fuzz -- --ops 1000000`.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import * as lib from '../../src/index.js';
import { runOps, generate, episodeSeed, episodeConfig, opName, OP_MAX } from './model.mjs';

type Op = [number, number, number, number, number];

/** One op: the command by weight (k), then four choices; all shrink towards 0 (a write). */
const opArb: fc.Arbitrary<Op> = fc.tuple(
  fc.nat(999), fc.nat(OP_MAX - 1), fc.nat(OP_MAX - 1), fc.nat(OP_MAX - 1), fc.nat(OP_MAX - 1),
);

describe('the shadow model: nothing is lost, nothing is seen that should not be', () => {
  it('fast-check: random op lists on 2 and 4 MiB machines (seeded, shrinking on failure)', async () => {
    let ops = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 220, size: 'max' }), fc.boolean(), async (list, small) => {
        ops += list.length;
        await runOps(lib, list, { ramBytes: small ? 2 << 20 : 4 << 20, seed: list.length });
      }),
      { seed: 20261123, numRuns: 12, endOnFailure: false },
    );
    expect(ops).toBeGreaterThan(200);
  });

  it('three seeded episodes of 1000 ops, on three machine shapes, as the fuzz runs them', async () => {
    const totals = { pswpout: 0, writeback: 0, cowCopies: 0, forks: 0, truncates: 0, mmaps: 0 };
    for (let ep = 0; ep < 3; ep++) {
      const seed = episodeSeed(20261123, ep);
      const cfg = episodeConfig('mix', ep, seed);
      const stats = await runOps(lib, generate(seed, 1000), cfg);
      totals.pswpout += stats.pswpout;
      totals.writeback += stats.writeback;
      totals.cowCopies += stats.cowCopies;
      totals.forks += stats.byCommand.fork ?? 0;
      totals.truncates += stats.byCommand.truncate ?? 0;
      totals.mmaps += (stats.byCommand.mmap ?? 0) + (stats.byCommand.fixed ?? 0);
    }
    // The run did what it is for: swap-out, write-back, COW, forks, truncation.
    for (const [k, v] of Object.entries(totals)) expect(v, k).toBeGreaterThan(0);
  });

  it('every command appears in a generated run', () => {
    const seen = new Set(generate(7, 5000).map((op) => opName(op)));
    for (const c of ['write', 'read', 'mmap', 'munmap', 'mprotect', 'dontneed', 'touch', 'fork', 'destroy', 'spawn', 'msync',
      'truncate', 'pwrite', 'sync', 'mlock', 'munlock', 'reclaim', 'evict', 'pageout', 'fixed', 'populate', 'noreplace',
      'readbeyond', 'prime']) expect(seen.has(c), c).toBe(true);
  });
});

// Bugs the property runs found, kept as plain regression tests.
describe('regressions found by the property runs', () => {
  const P = 4096;
  const ANON = lib.MAP_PRIVATE | lib.MAP_ANONYMOUS;

  it('R9.11: an anonymous page swapped in by one sharer leaves the swap cache with its last mapping', async () => {
    const mmu = await lib.createMmu({ ramBytes: 4 << 20 });
    const base = mmu.stats().freeFrames;
    const mm = mmu.createAddressSpace();
    const a = mm.mmap({ length: P, prot: lib.PROT_READ | lib.PROT_WRITE, flags: ANON });
    mm.write(a, new Uint8Array([1]));
    const child = mm.fork();
    mm.madvise(a, P, lib.MADV_PAGEOUT); // both PTEs become swap entries
    expect(mm.read(a, 1)[0]).toBe(1); // the parent swaps it in: cached, the child's entry remains
    child.munmap(a, P); // the last swap entry goes while the page is mapped
    mm.munmap(a, P); // the last mapping goes: the page and its slot must go too
    expect(mmu.stats().swapUsed).toBe(0);
    mm.destroy();
    child.destroy();
    expect(mmu.stats().freeFrames).toBe(base);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});
