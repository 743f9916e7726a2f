// VMAs (LINUX-SPEC §9: R9.5 split and merge, R9.11 munmap and page-table freeing): the
// structure mmap, munmap, mprotect and madvise leave behind, Linux's vm.max_map_count
// (65530) and how each call behaves at it (checked against Linux 6.18), placement of
// mappings without MAP_FIXED, and teardown leaving no frame behind.
import { describe, it, expect } from 'vitest';
import {
  PROT_READ, PROT_NONE, PROT_EXEC, MAP_SHARED, MAP_ANONYMOUS, MAP_FIXED, MADV_DONTFORK, MADV_DOFORK,
  MADV_DONTNEED, MADV_WIPEONFORK, MADV_RANDOM, MADV_NORMAL, type AddressSpace, type Mmu,
} from '../../src/index.js';
import { machine, anon, PG, RW, bytes, expectErrno, layout, expectFilled } from './mm-helpers.js';

const BASE = 0x10_0000_0000; // a quiet place for MAP_FIXED layouts
const MMAP_BASE = 0x7f00_0000_0000;
const MAX_MAP_COUNT = 65530;

describe('§9 VMA split and merge (R9.5, R9.11)', () => {
  it('R9.5 mprotect of the middle page of a 3-page VMA gives 3 VMAs; restoring it gives 1 again', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 3, RW, MAP_FIXED, BASE);
    mm.write(va, bytes(3 * PG, 0x10));
    mm.mprotect(va + PG, PG, PROT_READ);
    expect(layout(mm)).toEqual([[va, va + PG, 'rw-p'], [va + PG, va + 2 * PG, 'r--p'], [va + 2 * PG, va + 3 * PG, 'rw-p']]);
    expect(mm.status().mapCount).toBe(3);
    expect(mm.maps().map((v) => v.pgoff)).toEqual([va / PG, va / PG + 1, va / PG + 2]);
    mm.mprotect(va + PG, PG, RW);
    expect(layout(mm)).toEqual([[va, va + 3 * PG, 'rw-p']]);
    expect(mm.status().mapCount).toBe(1);
    expectFilled(mm.read(va, 3 * PG), 0x10);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.5 repeated split/merge cycles (mprotect and madvise) keep the VMA list and the record pool intact', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 3, RW, MAP_FIXED, BASE);
    const other = anon(mm, 2, PROT_READ, MAP_FIXED, BASE + 16 * PG);
    mm.write(va, bytes(3 * PG, 0x20));
    // Records freed earlier wait on the pool's free list: a loop that walked on into a
    // record a merge had just freed would run into them there.
    const spare = [anon(mm, 1, PROT_NONE), anon(mm, 1, PROT_READ), anon(mm, 1, PROT_NONE), anon(mm, 1, PROT_READ)];
    for (const a of spare) mm.munmap(a, PG);
    for (let i = 0; i < 5; i++) {
      mm.mprotect(va + PG, PG, PROT_READ);
      expect(mm.status().mapCount).toBe(4);
      mm.mprotect(va + PG, PG, RW);
      expect(layout(mm)).toEqual([[va, va + 3 * PG, 'rw-p'], [other, other + 2 * PG, 'r--p']]);
      mm.madvise(va + PG, PG, MADV_DONTFORK);
      expect(mm.status().mapCount).toBe(4);
      mm.madvise(va + PG, PG, MADV_DOFORK);
      expect(layout(mm)).toEqual([[va, va + 3 * PG, 'rw-p'], [other, other + 2 * PG, 'r--p']]);
      // To PROT_NONE and back, merging into the next VMA on the way.
      mm.mprotect(va + 2 * PG, PG, PROT_NONE);
      mm.mprotect(va + PG, PG, PROT_NONE);
      expect(layout(mm)).toEqual([[va, va + PG, 'rw-p'], [va + PG, va + 3 * PG, '---p'], [other, other + 2 * PG, 'r--p']]);
      mm.mprotect(va, 3 * PG, RW);
      expect(layout(mm)).toEqual([[va, va + 3 * PG, 'rw-p'], [other, other + 2 * PG, 'r--p']]);
      expect(mmu.checkInvariants()).toEqual([]);
    }
    // The pool still hands out sound records: new mappings, splits and unmaps all work.
    const more = [anon(mm, 1), anon(mm, 2, PROT_READ), anon(mm, 1, PROT_NONE)];
    mm.munmap(va + PG, PG);
    expect(mm.status().mapCount).toBe(2 + 1 + more.length);
    expectFilled(mm.read(va, PG), 0x20);
    expectFilled(mm.read(va + 2 * PG, PG), 0x20);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.5 mprotect over several VMAs merges everything that ends up alike, leaving the others', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 6, RW, MAP_FIXED, BASE);
    mm.mprotect(va + PG, PG, PROT_READ);
    mm.mprotect(va + 3 * PG, PG, PROT_NONE);
    mm.mprotect(va + 5 * PG, PG, PROT_READ | PROT_EXEC);
    expect(mm.status().mapCount).toBe(6);
    mm.mprotect(va + PG, 4 * PG, RW); // pages 1..4: R, RW, NONE, RW → RW
    expect(layout(mm)).toEqual([[va, va + 5 * PG, 'rw-p'], [va + 5 * PG, va + 6 * PG, 'r-xp']]);
    mm.mprotect(va, 6 * PG, PROT_READ);
    expect(layout(mm)).toEqual([[va, va + 6 * PG, 'r--p']]);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.5 mprotect to the protection a VMA already has does not split it', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 3, RW, MAP_FIXED, BASE);
    mm.mprotect(va + PG, PG, RW);
    expect(layout(mm)).toEqual([[va, va + 3 * PG, 'rw-p']]);
    mm.madvise(va + PG, PG, MADV_NORMAL); // the same for advice that changes nothing
    expect(layout(mm)).toEqual([[va, va + 3 * PG, 'rw-p']]);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.5 adjacent anonymous mmaps with the same protection merge; different protections do not', async () => {
    const { mmu, mm } = await machine();
    const a = anon(mm, 2, RW, MAP_FIXED, BASE);
    anon(mm, 2, RW, MAP_FIXED, BASE + 2 * PG); // after a
    anon(mm, 1, RW, MAP_FIXED, BASE - PG); // before a
    expect(layout(mm)).toEqual([[BASE - PG, BASE + 4 * PG, 'rw-p']]);
    anon(mm, 1, PROT_READ, MAP_FIXED, BASE + 4 * PG);
    expect(mm.status().mapCount).toBe(2);
    // A hole filled with the same protection joins both neighbours.
    mm.munmap(a, PG);
    expect(mm.status().mapCount).toBe(3);
    anon(mm, 1, RW, MAP_FIXED, a);
    expect(layout(mm)).toEqual([[BASE - PG, BASE + 4 * PG, 'rw-p'], [BASE + 4 * PG, BASE + 5 * PG, 'r--p']]);
    // Shared anonymous mappings are separate objects: never merged.
    mm.mmap({ addr: BASE + 5 * PG, length: PG, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED });
    mm.mmap({ addr: BASE + 6 * PG, length: PG, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED });
    expect(mm.status().mapCount).toBe(4);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.11 munmap of the middle splits in two; of an edge trims; across VMAs removes and trims each', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 8, RW, MAP_FIXED, BASE);
    mm.write(va, bytes(8 * PG, 0x30));
    mm.munmap(va + 3 * PG, 2 * PG);
    expect(layout(mm)).toEqual([[va, va + 3 * PG, 'rw-p'], [va + 5 * PG, va + 8 * PG, 'rw-p']]);
    expect(mm.maps()[1].pgoff).toBe(va / PG + 5);
    mm.munmap(va, PG);
    mm.munmap(va + 7 * PG, PG);
    expect(layout(mm)).toEqual([[va + PG, va + 3 * PG, 'rw-p'], [va + 5 * PG, va + 7 * PG, 'rw-p']]);
    mm.munmap(va + 2 * PG, 4 * PG);
    expect(layout(mm)).toEqual([[va + PG, va + 2 * PG, 'rw-p'], [va + 6 * PG, va + 7 * PG, 'rw-p']]);
    expect(mm.status().rssAnon).toBe(2 * PG);
    expect(mm.status().vmSize).toBe(2 * PG);
    expectFilled(mm.read(va + PG, PG), 0x30);
    expectFilled(mm.read(va + 6 * PG, PG), 0x30);
    expect(() => mm.read(va + 2 * PG, 1)).toThrow(/SEGV_MAPERR/);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.11 munmap frees the page tables no VMA covers any more, and keeps those still in use', async () => {
    const { mmu, mm } = await machine();
    const tables0 = mm.status().pageTables; // the PGD
    const free0 = mmu.stats().freeFrames;
    const two = 2 * 512 * PG; // 4 MiB: two PTE tables
    const va = anon(mm, 1024, RW, MAP_FIXED, BASE);
    const keep = anon(mm, 1, RW, MAP_FIXED, BASE + two + 8 * PG); // shares the third PTE table's range? no: its own
    mm.touch(va, two, 'write');
    mm.write(keep, bytes(1, 1));
    expect(mm.status().pageTables).toBe(tables0 + 3 * PG + 2 * PG); // PUD, PMD, 3 PTE tables
    mm.munmap(va + 512 * PG, 512 * PG); // the second table's whole range
    expect(mm.status().pageTables).toBe(tables0 + 4 * PG);
    mm.munmap(va, PG); // the first table still maps 511 pages
    expect(mm.status().pageTables).toBe(tables0 + 4 * PG);
    mm.munmap(va, 512 * PG);
    expect(mm.status().pageTables).toBe(tables0 + 3 * PG);
    mm.munmap(keep, PG);
    expect(mm.status().pageTables).toBe(tables0); // nothing left but the PGD
    expect(mmu.stats().freeFrames).toBe(free0);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.1 MADV_DONTNEED keeps the VMA and its page tables; R9.11 smaps follows the splits', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 4, RW, MAP_FIXED, BASE);
    mm.write(va, bytes(4 * PG, 1));
    const tables = mm.status().pageTables;
    mm.madvise(va, 4 * PG, MADV_DONTNEED);
    expect(mm.status().pageTables).toBe(tables);
    mm.write(va, bytes(PG, 2));
    mm.madvise(va + 2 * PG, 2 * PG, MADV_RANDOM);
    const sm = mm.smaps();
    expect(sm.map((e) => [e.start, e.end, e.rss, e.anonymous])).toEqual([[va, va + 2 * PG, PG, PG], [va + 2 * PG, va + 4 * PG, 0, 0]]);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('§9 vm.max_map_count (65530), as Linux 6.18 applies it', () => {
  // One 3-page RW VMA at BASE, then `n` single pages of alternating protection placed
  // top-down (none merges with its neighbours): 1 + n VMAs.
  function fill(mm: AddressSpace, n: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(anon(mm, 1, i % 2 === 0 ? PROT_READ : RW));
    return out;
  }
  async function atLimit(): Promise<{ mmu: Mmu; mm: AddressSpace; big: number; singles: number[] }> {
    const { mmu, mm } = await machine();
    const big = anon(mm, 3, RW, MAP_FIXED, BASE);
    const singles = fill(mm, MAX_MAP_COUNT - 1);
    expect(mm.status().mapCount).toBe(MAX_MAP_COUNT);
    return { mmu, mm, big, singles };
  }

  it('R9.5 65,530 VMAs can be created and stay fast to search; mmap may take the count to 65,531, never further', async () => {
    const { mmu, mm, singles } = await atLimit();
    const tree = mm.maps();
    expect(tree.length).toBe(MAX_MAP_COUNT);
    for (let i = 1; i < tree.length; i++) expect(tree[i].start).toBeGreaterThanOrEqual(tree[i - 1].end);
    // A touch in the middle finds its VMA (an O(log n) lookup; no timing asserted).
    const mid = singles[(singles.length / 2) | 1]; // an RW one
    mm.write(mid, bytes(4, 0x99));
    expect(mm.read(mid, 4)).toEqual(bytes(4, 0x99));
    expect(mm.pagemap(mid, 1)[0]).toMatchObject({ present: true, writable: true });
    expect(() => mm.write(singles[0], bytes(1, 1))).toThrow(/SEGV_ACCERR/);
    // Linux's do_mmap refuses only when map_count > max_map_count: the 65,531st mapping
    // is created (measured on 6.18: 65,531 VMAs), the 65,532nd is ENOMEM.
    const extra = anon(mm, 1, PROT_NONE);
    expect(mm.status().mapCount).toBe(MAX_MAP_COUNT + 1);
    expectErrno(() => anon(mm, 1, PROT_READ), 'ENOMEM');
    expectErrno(() => anon(mm, 1, RW, MAP_FIXED, BASE + 64 * PG), 'ENOMEM');
    expect(mm.status().mapCount).toBe(MAX_MAP_COUNT + 1);
    // Freeing one makes room for one.
    mm.munmap(extra, PG);
    expect(anon(mm, 1, PROT_NONE)).toBe(extra);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.5 at the limit, a split is ENOMEM for mprotect and EAGAIN for madvise, and changes nothing', async () => {
    const { mmu, mm, big, singles } = await atLimit();
    mm.write(big, bytes(3 * PG, 0x42));
    expectErrno(() => mm.mprotect(big, PG, PROT_READ), 'ENOMEM'); // head: one split
    expectErrno(() => mm.mprotect(big + 2 * PG, PG, PROT_READ), 'ENOMEM'); // tail
    expectErrno(() => mm.mprotect(big + PG, PG, PROT_READ), 'ENOMEM'); // middle: two
    expectErrno(() => mm.madvise(big, PG, MADV_DONTFORK), 'EAGAIN');
    expectErrno(() => mm.madvise(big + PG, PG, MADV_WIPEONFORK), 'EAGAIN');
    expect(layout(mm).find((v) => v[0] === big)).toEqual([big, big + 3 * PG, 'rw-p']);
    expect(mm.pagemap(big, 3).every((p) => p.writable)).toBe(true);
    expect(mm.maps().find((v) => v.start === big)!.flags & 0x0202_0000).toBe(0);
    // Whole VMAs need no split, and a change to nothing needs none either.
    mm.mprotect(big, 3 * PG, PROT_READ);
    mm.mprotect(big + PG, PG, PROT_READ);
    mm.madvise(big, 3 * PG, MADV_DONTFORK);
    expect(mm.status().mapCount).toBe(MAX_MAP_COUNT);
    // One below the limit: a single split works, a middle one (two splits) still does not.
    mm.munmap(singles[0], PG);
    expectErrno(() => mm.mprotect(big + PG, PG, RW), 'ENOMEM');
    mm.mprotect(big, PG, RW);
    expect(mm.status().mapCount).toBe(MAX_MAP_COUNT);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.11 at the limit, munmap may trim a head or a tail but not punch a hole (ENOMEM); MAP_FIXED likewise', async () => {
    const { mmu, mm, big, singles } = await atLimit();
    const big2 = anon(mm, 6, RW, MAP_FIXED, BASE + 16 * PG); // 65,531 VMAs
    mm.write(big2, bytes(6 * PG, 0x43));
    expect(mm.status().mapCount).toBe(MAX_MAP_COUNT + 1);
    expectErrno(() => mm.munmap(big2 + 2 * PG, PG), 'ENOMEM');
    expectErrno(() => mm.munmap(big + PG, PG), 'ENOMEM');
    mm.munmap(big2, PG); // head
    mm.munmap(big2 + 5 * PG, PG); // tail
    expect(layout(mm).find((v) => v[0] === big2 + PG)).toEqual([big2 + PG, big2 + 5 * PG, 'rw-p']);
    expect(mm.status().mapCount).toBe(MAX_MAP_COUNT + 1);
    expectErrno(() => anon(mm, 1, PROT_READ, MAP_FIXED, big2 + PG), 'ENOMEM'); // mmap: map_count > max
    mm.munmap(big, 3 * PG); // a whole VMA: 65,530 left
    expectErrno(() => mm.munmap(big2 + 2 * PG, PG), 'ENOMEM'); // still at the limit
    expectErrno(() => anon(mm, 1, PROT_READ, MAP_FIXED, big2 + 2 * PG), 'ENOMEM'); // a hole inside: refused
    expect(anon(mm, 1, PROT_READ, MAP_FIXED, big2 + PG)).toBe(big2 + PG); // over the head: allowed, 65,531
    expect(mm.status().mapCount).toBe(MAX_MAP_COUNT + 1);
    mm.munmap(singles[0], PG);
    mm.munmap(singles[1], PG); // 65,529
    mm.munmap(big2 + 3 * PG, PG); // now a hole fits: 65,530
    expect(layout(mm).filter((v) => v[0] >= big2 && v[0] < big2 + 6 * PG)).toEqual([
      [big2 + PG, big2 + 2 * PG, 'r--p'], [big2 + 2 * PG, big2 + 3 * PG, 'rw-p'], [big2 + 4 * PG, big2 + 5 * PG, 'rw-p']]);
    expect(mm.status().mapCount).toBe(MAX_MAP_COUNT);
    expectFilled(mm.read(big2 + 2 * PG, PG), 0x43);
    expectFilled(mm.read(big2 + 4 * PG, PG), 0x43);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('§9 placement of mappings without MAP_FIXED', () => {
  it('mmap without a hint returns page-aligned, non-overlapping addresses below 0x7f0000000000, top-down', async () => {
    const { mmu, mm } = await machine();
    const sizes = [1, 3, 16, 1, 512, 2, 7];
    const got = sizes.map((n, i) => ({ va: anon(mm, n, i % 2 ? PROT_READ : RW), len: n * PG }));
    for (const { va, len } of got) {
      expect(va % PG).toBe(0);
      expect(va + len).toBeLessThanOrEqual(MMAP_BASE);
      expect(va).toBeGreaterThanOrEqual(0x10000);
    }
    expect(got[0].va + got[0].len).toBe(MMAP_BASE); // the first one right below the base
    for (let i = 1; i < got.length; i++) expect(got[i].va + got[i].len).toBeLessThanOrEqual(got[i - 1].va);
    const spans = got.map(({ va, len }) => [va, va + len]).sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++) expect(spans[i][0]).toBeGreaterThanOrEqual(spans[i - 1][1]);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('a free hint is honoured; an occupied one is not (top-down instead, nothing replaced); a too-low one is raised to mmap_min_addr', async () => {
    const { mmu, mm } = await machine();
    const hint = 0x5555_0000_0000;
    expect(anon(mm, 4, RW, 0, hint)).toBe(hint);
    mm.write(hint, bytes(4, 1));
    const elsewhere = anon(mm, 2, RW, 0, hint + PG);
    expect(elsewhere).not.toBe(hint + PG);
    expect(elsewhere + 2 * PG <= hint || elsewhere >= hint + 4 * PG).toBe(true);
    expect(mm.read(hint, 4)).toEqual(bytes(4, 1));
    const low = anon(mm, 1, PROT_NONE, 0, 0x1000); // below mmap_min_addr: raised to it
    expect(low).toBe(0x10000);
    expect(anon(mm, 1, RW, 0, hint + 4 * PG)).toBe(hint + 4 * PG); // adjacent and free: taken
    expect(mm.status().mapCount).toBe(3); // hint and hint+4 pages merged
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('munmap\'d space is reused by the next mapping that fits', async () => {
    const { mmu, mm } = await machine();
    const a = anon(mm, 4);
    const b = anon(mm, 4, PROT_READ);
    const c = anon(mm, 4);
    mm.munmap(b, 4 * PG);
    expect(anon(mm, 4, PROT_READ)).toBe(b);
    mm.munmap(a, 4 * PG);
    const d = anon(mm, 2, PROT_READ); // the top of a's hole
    expect(d).toBe(a + 2 * PG);
    expect(anon(mm, 2, PROT_NONE)).toBe(a);
    expect(anon(mm, 1, RW)).toBe(c - PG); // then below the lowest again
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('the highest hole that fits is used: a hole too small for one request still takes a later, smaller one', async () => {
    const { mmu, mm } = await machine();
    const a = anon(mm, 1);
    const b = anon(mm, 1, PROT_READ);
    const c = anon(mm, 1);
    expect([a - b, b - c]).toEqual([PG, PG]);
    mm.munmap(b, PG);
    const d = anon(mm, 2, PROT_READ); // does not fit in b's hole: goes below c
    expect(d).toBe(c - 2 * PG);
    expect(anon(mm, 1, PROT_READ)).toBe(b); // Linux 6.18 reuses the hole here too
    // Holes of several sizes: each request takes the highest one it fits in.
    const row = Array.from({ length: 12 }, (_, i) => anon(mm, 2, i % 2 ? PROT_READ : RW));
    mm.munmap(row[2], 2 * PG); // highest hole, 2 pages
    mm.munmap(row[6], 2 * PG);
    mm.munmap(row[7], 2 * PG); // 4 pages (row[6] and row[7] are adjacent)
    mm.munmap(row[10], 2 * PG);
    expect(anon(mm, 4, PROT_NONE)).toBe(row[7]);
    expect(anon(mm, 1, PROT_NONE)).toBe(row[2] + PG);
    expect(anon(mm, 2, PROT_NONE)).toBe(row[10]);
    expect(anon(mm, 1, PROT_NONE)).toBe(row[2]);
    // A mapping above the mmap base (a hint) does not pull placement up there.
    const high = anon(mm, 1, RW, 0, 0x7ff0_0000_0000);
    expect(high).toBe(0x7ff0_0000_0000);
    const next = anon(mm, 1, PROT_READ);
    expect(next).toBeLessThan(MMAP_BASE);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('a fork child places new mappings in its own free space, around the inherited ones', async () => {
    const { mmu, mm } = await machine();
    const a = anon(mm, 2);
    const child = mm.fork();
    const x = anon(child, 2, PROT_READ);
    expect(x + 2 * PG).toBeLessThanOrEqual(a);
    expect(anon(mm, 2, PROT_READ)).toBe(x); // the parent's space is its own
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('§9 teardown: no leak (R9.11, exit_mmap)', () => {
  it('create, populate, fork, destroy both: every frame and page table is free again', async () => {
    const { mmu, mm: first } = await machine();
    first.destroy();
    const free0 = mmu.stats().freeFrames;
    const tables0 = mmu.stats().pageTables;
    const mm = mmu.createAddressSpace();
    const a = anon(mm, 64);
    mm.write(a, bytes(32 * PG, 0x51));
    mm.touch(a + 32 * PG, 32 * PG, 'read'); // zero page
    const sh = mm.mmap({ length: 8 * PG, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS });
    mm.write(sh, bytes(8 * PG, 0x52));
    const far = anon(mm, 1, RW, MAP_FIXED, 0x4000_0000_0000); // its own PUD/PMD/PTE tables
    mm.write(far, bytes(1, 1));
    const w = anon(mm, 4);
    mm.write(w, bytes(4 * PG, 0x53));
    mm.madvise(w, 4 * PG, MADV_WIPEONFORK);
    mm.mprotect(a + 8 * PG, 8 * PG, PROT_READ);
    const child = mm.fork();
    child.write(a, bytes(PG, 0x54)); // COW copies in the child
    mm.write(a + PG, bytes(PG, 0x55)); // and in the parent
    child.write(a + 40 * PG, bytes(1, 1)); // zero-page COW
    child.write(w, bytes(1, 1));
    const grandchild = child.fork();
    grandchild.write(sh, bytes(1, 0x56));
    expect(mm.read(sh, 1)).toEqual(bytes(1, 0x56));
    expect(mmu.checkInvariants()).toEqual([]);
    expect(mmu.stats().freeFrames).toBeLessThan(free0);
    child.destroy();
    mm.destroy();
    expect(grandchild.read(sh, 1)).toEqual(bytes(1, 0x56)); // the shmem object lives on
    expect(mmu.checkInvariants()).toEqual([]);
    grandchild.destroy();
    expect(mmu.stats().freeFrames).toBe(free0);
    expect(mmu.stats().pageTables).toBe(tables0);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('destroying the parent first, then the child, frees everything too', async () => {
    const { mmu, mm } = await machine();
    const free0 = mmu.stats().freeFrames + 1; // + the parent's PGD
    const a = anon(mm, 16);
    mm.write(a, bytes(16 * PG, 0x61));
    const child = mm.fork();
    mm.destroy();
    expect(child.pagemap(a, 16).every((p) => p.exclusive && !p.writable)).toBe(true);
    expectFilled(child.read(a, 16 * PG), 0x61);
    child.write(a, bytes(16 * PG, 0x62)); // every page reused: no copy
    expect(mmu.stats().cowCopies).toBe(0);
    expect(mmu.checkInvariants()).toEqual([]);
    child.destroy();
    expect(mmu.stats().freeFrames).toBe(free0);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('many address spaces created and destroyed in turn leak nothing (ids and families are recycled)', async () => {
    const { mmu, mm } = await machine();
    mm.destroy();
    const free0 = mmu.stats().freeFrames;
    for (let i = 0; i < 300; i++) {
      const p = mmu.createAddressSpace();
      const va = anon(p, 2);
      p.write(va, bytes(2, i & 0xff));
      const c = p.fork();
      if (i % 2) { p.destroy(); c.write(va, bytes(1, 1)); c.destroy(); } else { c.destroy(); p.destroy(); }
    }
    expect(mmu.stats().freeFrames).toBe(free0);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});
