// Issue 14 (fuzz 327521901:566, scenario mlock-merge-refuses-other-anon-vma): VMA merges need
// compatible anon_vmas, as Linux's is_mergeable_anon_vma (6.16+). A VMA gets an anon_vma at
// its first anonymous fault (a compatible neighbour's if it has one, find_mergeable_anon_vma),
// split pieces share it, a fork child gets its own; two VMAs merge only with the same
// anon_vma, or where one has none and the other is not a fork child.
import { describe, it, expect } from 'vitest';
import { PROT_READ, PROT_EXEC, MLOCK_ONFAULT, MAP_SHARED, MADV_GUARD_INSTALL, MADV_SEQUENTIAL, MemoryFile } from '../../src/index.js';
import { machine, anon, PG, RW, layout } from './mm-helpers.js';

/** The VMAs as [start, end] page offsets from `va`. */
function pieces(mm: Parameters<typeof layout>[0], va: number): [number, number][] {
  return layout(mm).map(([s, e]) => [(s - va) / PG, (e - va) / PG]);
}

describe('issue 14: VMA merge and anon_vma identity', () => {
  it('R8.2 mlock2(MLOCK_ONFAULT) splits, a write faults each half (two anon_vmas): mlock of the rest and munlock of all leave two VMAs', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 4);
    mm.mlock2(va, 2 * PG, MLOCK_ONFAULT);
    mm.write(va + PG, Uint8Array.of(1)); // first half: a new anon_vma
    mm.write(va + 2 * PG, Uint8Array.of(2)); // second half: flags differ (VM_LOCKED), another one
    expect(mmu.checkInvariants()).toEqual([]);
    mm.mlock2(va + 2 * PG, 2 * PG, MLOCK_ONFAULT);
    expect(pieces(mm, va)).toEqual([[0, 2], [2, 4]]);
    expect(mmu.checkInvariants()).toEqual([]);
    mm.munlock(va, 4 * PG);
    expect(pieces(mm, va)).toEqual([[0, 2], [2, 4]]);
    expect(mm.read(va + PG, 1)[0]).toBe(1);
    expect(mm.read(va + 2 * PG, 1)[0]).toBe(2);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R8.2 where only one side has an anon_vma the VMAs merge (6.16+), either side', async () => {
    const { mmu, mm } = await machine();
    // The unfaulted VMA changes and joins its faulted neighbour.
    const a = anon(mm, 4);
    mm.mlock2(a + 2 * PG, 2 * PG, MLOCK_ONFAULT);
    mm.write(a, Uint8Array.of(1));
    mm.munlock(a + 2 * PG, 2 * PG);
    expect(pieces(mm, a)).toEqual([[0, 4]]);
    expect(mmu.checkInvariants()).toEqual([]);
    // The faulted VMA changes and joins its unfaulted neighbour (dup_anon_vma).
    const mm2 = mmu.createAddressSpace();
    const b = anon(mm2, 4);
    mm2.mlock2(b + 2 * PG, 2 * PG, MLOCK_ONFAULT);
    mm2.write(b + 3 * PG, Uint8Array.of(2));
    mm2.munlock(b + 2 * PG, 2 * PG);
    expect(pieces(mm2, b)).toEqual([[0, 4]]);
    expect(mm2.read(b + 3 * PG, 1)[0]).toBe(2);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.5 halves differing only in protection share the anon_vma (find_mergeable_anon_vma, prev or next first faulted): mprotect back merges them', async () => {
    for (const first of [1, 2]) {
      const { mmu, mm } = await machine();
      const va = anon(mm, 4);
      mm.mprotect(va + 2 * PG, 2 * PG, RW | PROT_EXEC);
      const second = first === 1 ? 2 : 1;
      mm.write(va + first * PG, Uint8Array.of(first));
      mm.write(va + second * PG, Uint8Array.of(second)); // reuses the neighbour's anon_vma
      expect(pieces(mm, va)).toEqual([[0, 2], [2, 4]]);
      mm.mprotect(va + 2 * PG, 2 * PG, RW);
      expect(pieces(mm, va)).toEqual([[0, 4]]);
      expect(mm.read(va + PG, 2 * PG).filter((x) => x !== 0)).toEqual(Uint8Array.of(1, 2));
      expect(mmu.checkInvariants()).toEqual([]);
    }
  });

  it('R8.2 a change that would remove the VMA between two with different anon_vmas merges it with prev only', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 6);
    mm.mlock2(va + 2 * PG, 2 * PG, MLOCK_ONFAULT);
    mm.write(va, Uint8Array.of(1));
    mm.write(va + 5 * PG, Uint8Array.of(2));
    mm.munlock(va + 2 * PG, 2 * PG);
    expect(pieces(mm, va)).toEqual([[0, 4], [4, 6]]);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R5.5 fork: a child VMA with an anon_vma is a fork child: its unfaulted neighbour does not join it, nor reuse its anon_vma; its own split pieces rejoin; the parent merges', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 4);
    mm.mlock2(va, 2 * PG, MLOCK_ONFAULT);
    mm.write(va, Uint8Array.of(7));
    const child = mm.fork();
    // Locks are not inherited: the child's halves have equal flags but were copied apart.
    expect(pieces(child, va)).toEqual([[0, 2], [2, 4]]);
    child.mlock2(va, 4 * PG, MLOCK_ONFAULT);
    expect(pieces(child, va)).toEqual([[0, 2], [2, 4]]);
    expect(mmu.checkInvariants()).toEqual([]);
    // A piece split off the fork child shares its anon_vma and merges back.
    child.mprotect(va, PG, PROT_READ);
    child.mprotect(va, PG, RW);
    expect(pieces(child, va)).toEqual([[0, 2], [2, 4]]);
    // The second half's first fault gets an anon_vma of its own (the fork child's is not
    // reusable), so a later flag round trip cannot merge the halves either.
    child.write(va + 2 * PG, Uint8Array.of(8));
    child.munlock(va + 2 * PG, 2 * PG);
    child.mlock2(va + 2 * PG, 2 * PG, MLOCK_ONFAULT);
    expect(pieces(child, va)).toEqual([[0, 2], [2, 4]]);
    expect(child.read(va, 1)[0]).toBe(7);
    expect(mmu.checkInvariants()).toEqual([]);
    // The parent's halves: its anon_vma is its own (singular chain), so they merge.
    mm.mlock2(va + 2 * PG, 2 * PG, MLOCK_ONFAULT);
    expect(pieces(mm, va)).toEqual([[0, 4]]);
    child.destroy();
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R5.5 R8.2 a guard-installed file VMA has no anon_vma (VM_MAYBE_GUARD): a fork copies its markers, and in the child it merges with its unguarded neighbour, keeping the flag (fuzz 1528920987:1568)', async () => {
    const { mmu, mm } = await machine();
    const file = mmu.openFile(new MemoryFile(new Uint8Array(8 * PG)));
    const va = mm.mmap({ length: 8 * PG, prot: PROT_READ, flags: MAP_SHARED, file });
    mm.mlock2(va + 3 * PG, 5 * PG, MLOCK_ONFAULT); // splits at page 3
    mm.madvise(va, PG, MADV_GUARD_INSTALL);
    expect(pieces(mm, va)).toEqual([[0, 3], [3, 8]]);
    const child = mm.fork();
    expect(child.pagemap(va, 1)[0].guard).toBe(true); // copied though no anon_vma
    expect(pieces(child, va)).toEqual([[0, 3], [3, 8]]); // the child's halves: same flags now, not merged by fork
    child.madvise(va, 8 * PG, MADV_SEQUENTIAL);
    expect(pieces(child, va)).toEqual([[0, 8]]); // no anon_vma on either side: one VMA
    const grandchild = child.fork(); // the merged VMA kept VM_MAYBE_GUARD: markers copied again
    expect(grandchild.pagemap(va, 1)[0].guard).toBe(true);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R8.2 mergeFaultedIntoUnfaulted false (6.1, 6.12): a faulted VMA does not merge into an unfaulted neighbour, either side; the unfaulted one still joins a faulted one', async () => {
    for (const on of [true, false]) {
      const { mmu, mm } = await machine({ mergeFaultedIntoUnfaulted: on });
      // The changed (faulted) VMA has an unfaulted prev.
      const a = anon(mm, 4);
      mm.mlock2(a + 2 * PG, 2 * PG, MLOCK_ONFAULT);
      mm.write(a + 3 * PG, Uint8Array.of(1));
      mm.munlock(a + 2 * PG, 2 * PG);
      expect(pieces(mm, a)).toEqual(on ? [[0, 4]] : [[0, 2], [2, 4]]);
      expect(mmu.checkInvariants()).toEqual([]);
      // The changed (faulted) VMA has an unfaulted next.
      const mm2 = mmu.createAddressSpace();
      const b = anon(mm2, 4);
      mm2.mlock2(b, 2 * PG, MLOCK_ONFAULT);
      mm2.write(b, Uint8Array.of(2));
      mm2.munlock(b, 2 * PG);
      expect(pieces(mm2, b)).toEqual(on ? [[0, 4]] : [[0, 2], [2, 4]]);
      expect(mmu.checkInvariants()).toEqual([]);
      // The changed VMA is the unfaulted one: it joins its faulted neighbour on every version.
      const mm3 = mmu.createAddressSpace();
      const c = anon(mm3, 4);
      mm3.mlock2(c + 2 * PG, 2 * PG, MLOCK_ONFAULT);
      mm3.write(c, Uint8Array.of(3));
      mm3.munlock(c + 2 * PG, 2 * PG);
      expect(pieces(mm3, c)).toEqual([[0, 4]]);
      expect(mmu.checkInvariants()).toEqual([]);
    }
  });
});
