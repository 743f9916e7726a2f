// MADV_FREE's per-CPU lazyfree batch (option `lazyfreeBatch`, mlock_batch.ts
// folio_mark_lazyfree): the queued page keeps PG_lru and one more reference until 15 pages
// are queued or an lru_add_drain, so a write fault on it copies instead of reusing it
// (R5.3; measured on 6.1, 6.12, 6.18, 7.3: scenario cow-reuse-after-madv-free). false: the
// move is seen at once and the page is reused.
import { describe, it, expect } from 'vitest';
import { createMmu, MADV_FREE } from '../../src/index.js';
import { anon, PG } from './mm-helpers.js';

// A written page shared by fork, the child's own copy made, then MADV_FREE in the parent.
async function freedShared(lazyfreeBatch: boolean) {
  const mmu = await createMmu({ ramBytes: 16 << 20, lazyfreeBatch });
  const mm = mmu.createAddressSpace();
  const va = anon(mm, 3);
  mm.touch(va + 2 * PG, PG, 'write');
  const child = mm.fork();
  child.touch(va + 2 * PG, PG, 'write');
  mm.madvise(va + PG, 2 * PG, MADV_FREE);
  expect(mmu.checkInvariants()).toEqual([]);
  return { mmu, mm, child, va, pfn: mm.pagemap(va + 2 * PG, 1)[0].pfn };
}

describe('R5.3 MADV_FREE and the lazyfree pagevec (lazyfreeBatch)', () => {
  for (const on of [true, false]) {
    it(`lazyfreeBatch ${on}: the parent's write after MADV_FREE ${on ? 'copies the page (the kernels measured)' : 'reuses it'}`, async () => {
      const { mmu, mm, va, pfn } = await freedShared(on);
      mm.write(va + 2 * PG, new Uint8Array([7]));
      const after = mm.pagemap(va + 2 * PG, 1)[0];
      expect(after.pfn === pfn).toBe(!on);
      expect(mm.read(va + 2 * PG, 1)[0]).toBe(7);
      expect(mmu.checkInvariants()).toEqual([]);
    });
  }

  it('lazyfreeBatch true: an lru_add_drain first moves the page and drops the reference: reused', async () => {
    const { mmu, mm, va, pfn } = await freedShared(true);
    mmu.lruAddDrain();
    expect(mmu.checkInvariants()).toEqual([]);
    mm.write(va + 2 * PG, new Uint8Array([9]));
    expect(mm.pagemap(va + 2 * PG, 1)[0].pfn).toBe(pfn);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('lazyfreeBatch true: the 15th queued page moves the pagevec (PAGEVEC_SIZE), so the first page is reused', async () => {
    const { mmu, mm, va, pfn } = await freedShared(true);
    const more = anon(mm, 14); // 14 more exclusive written pages, MADV_FREEd: 15 queued
    mm.touch(more, 14 * PG, 'write');
    mm.madvise(more, 14 * PG, MADV_FREE);
    expect(mmu.checkInvariants()).toEqual([]);
    mm.write(va + 2 * PG, new Uint8Array([5]));
    expect(mm.pagemap(va + 2 * PG, 1)[0].pfn).toBe(pfn);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('lazyfreeBatch true: a page unmapped while queued is freed when the pagevec drains', async () => {
    const { mmu, mm, child, va } = await freedShared(true);
    const free0 = mmu.stats().freeFrames;
    child.destroy();
    mm.munmap(va, 3 * PG);
    expect(mmu.checkInvariants()).toEqual([]);
    const free1 = mmu.stats().freeFrames;
    mmu.lruAddDrain();
    expect(mmu.stats().freeFrames).toBe(free1 + 1); // the pagevec held the last reference
    expect(free1).toBeGreaterThan(free0);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});
