// Page-table pages and levels: 4 levels of 512 u64 entries, each table one RAM frame,
// so a guest emulator can walk them itself. `pt_walk` is the one place that descends
// levels for the core (fault path, zap, fork, pagemap); mmu.ts is the hardware's walk.

import { PTRS_PER_TABLE, PAGE_SIZE, gNrFrames } from "./config";
import { _PAGE_PSE, _PAGE_PRESENT, _PAGE_TABLE, PTE_PFN_MASK, pte_pfn } from "./pte";
import { PG_pgtable, page_set } from "./page";
import { alloc_pages, free_pages, pfn_to_virt, NO_PFN, direct_reclaim } from "./phys";
import { walk_gen_bump } from "./tlb";

// Levels, counted like the SDM from the leaf up.
export const LEVEL_PTE: u32 = 1;
export const LEVEL_PMD: u32 = 2;
export const LEVEL_PUD: u32 = 3;
export const LEVEL_PGD: u32 = 4;

// Failure values of pt_walk (a slot address is never this small).
export const WALK_NONE: usize = 0; // a level is missing and alloc was false
export const WALK_NOMEM: usize = 1; // a table could not be allocated
export const WALK_HUGE: usize = 2; // a large leaf sits above the requested level

let nrPgtables: u32 = 0;

@inline export function level_shift(level: u32): u32 { return 12 + 9 * (level - 1); }
@inline export function table_index(va: u64, level: u32): u32 {
  return <u32>(va >> level_shift(level)) & (PTRS_PER_TABLE - 1);
}
@inline export function slot_addr(tablePfn: u32, index: u32): usize {
  return pfn_to_virt(tablePfn) + (<usize>index << 3);
}
@inline export function table_of_slot(slot: usize): usize { return slot & ~(<usize>PAGE_SIZE - 1); }

// A zeroed table page, or NO_PFN.
export function pgtable_alloc(): u32 {
  let pfn = alloc_pages(0);
  if (pfn == NO_PFN && direct_reclaim(32) > 0) pfn = alloc_pages(0); // like any allocation
  if (pfn == NO_PFN) return NO_PFN;
  memory.fill(pfn_to_virt(pfn), 0, PAGE_SIZE);
  page_set(pfn, PG_pgtable);
  nrPgtables++;
  return pfn;
}

export function pgtable_free(pfn: u32): void {
  walk_gen_bump(); // the walker may cache an entry that pointed here (mmu.ts)
  free_pages(pfn, 0);
  nrPgtables--;
}

export function nr_pgtables(): u32 { return nrPgtables; }

// Install a preallocated table into an empty upper-level slot (R3.1, R3.5).
@inline export function pmd_populate(slot: usize, tablePfn: u32): void {
  store<u64>(slot, (<u64>tablePfn << 12) | _PAGE_TABLE);
}

// Descend from the PGD at `pgd` to the slot for `va` at `level` (LEVEL_PTE or LEVEL_PMD…).
// With `alloc`, missing tables are allocated on the way; without, WALK_NONE is returned.
// A large leaf above `level` stops the walk with WALK_HUGE.
export function pt_walk(pgd: u32, va: u64, level: u32, alloc: bool): usize {
  let table = pgd;
  for (let l = LEVEL_PGD; l > level; l--) {
    const slot = slot_addr(table, table_index(va, l));
    const e = load<u64>(slot);
    if (e == 0) {
      if (!alloc) return WALK_NONE;
      const t = pgtable_alloc();
      if (t == NO_PFN) return WALK_NOMEM;
      pmd_populate(slot, t);
      table = t;
      continue;
    }
    if ((e & _PAGE_PSE) != 0 && l <= LEVEL_PUD) return WALK_HUGE;
    table = pte_pfn(e);
  }
  return slot_addr(table, table_index(va, level));
}

// The PMD slot for `va` if the PMD table exists (upper levels present), else 0.
@inline export function pmd_slot(pgd: u32, va: u64): usize {
  return pt_walk(pgd, va, LEVEL_PMD, false);
}

// Is a (non-leaf) upper entry pointing at a table of this machine's RAM?
@inline export function entry_is_table(e: u64): bool {
  return (e & _PAGE_PRESENT) != 0 && (e & _PAGE_PSE) == 0 && pte_pfn(e) < gNrFrames;
}

// Free every table below (not including) the table `pfn` at `level`; leaves must be
// empty already (zap first). Used by destroy and free_pgtables.
export function free_table_tree(pfn: u32, level: u32): void {
  if (level > LEVEL_PTE) {
    for (let i: u32 = 0; i < PTRS_PER_TABLE; i++) {
      const slot = slot_addr(pfn, i);
      const e = load<u64>(slot);
      if (e != 0 && (e & _PAGE_PSE) == 0) {
        free_table_tree(pte_pfn(e), level - 1);
        store<u64>(slot, 0);
      }
    }
  }
  pgtable_free(pfn);
}


// ---- the PTE slots of a range, one table at a time ----
// for (let slot = pte_range_first(pgd, start, end); slot != 0; slot = pte_range_next()) {
//   const va = pteRangeVa; ...
// }
// Visits every PTE slot of [start, end) that lies in an existing PTE table; missing tables
// and 2 MiB leaves are skipped (callers split those first where it matters). Not
// reentrant: one range at a time.
export let pteRangeVa: u64 = 0;
let rangePgd: u32 = 0;
let rangeEnd: u64 = 0;
let rangeChunkEnd: u64 = 0;
let rangeTable: u32 = 0xffff_ffff;

export function pte_range_first(pgd: u32, start: u64, end: u64): usize {
  rangePgd = pgd;
  rangeEnd = end;
  rangeChunkEnd = start;
  pteRangeVa = start;
  return pte_range_seek();
}

export function pte_range_next(): usize {
  pteRangeVa += PAGE_SIZE;
  return pte_range_seek();
}

function pte_range_seek(): usize {
  while (pteRangeVa < rangeEnd) {
    if (pteRangeVa >= rangeChunkEnd) {
      rangeChunkEnd = (pteRangeVa + (<u64>1 << 21)) & ~((<u64>1 << 21) - 1);
      rangeTable = 0xffff_ffff;
      const pmdSlot = pt_walk(rangePgd, pteRangeVa, LEVEL_PMD, false);
      if (pmdSlot > WALK_HUGE) {
        const pmd = load<u64>(pmdSlot);
        if (pmd != 0 && (pmd & _PAGE_PSE) == 0) rangeTable = pte_pfn(pmd);
      }
      if (rangeTable == 0xffff_ffff) { pteRangeVa = rangeChunkEnd; continue; }
    }
    return slot_addr(rangeTable, table_index(pteRangeVa, LEVEL_PTE));
  }
  return 0;
}
