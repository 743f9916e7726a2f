// Tearing mappings down (Linux's zap_pte_range / unmap_page_range in mm/memory.c): zap
// (munmap, MADV_DONTNEED, truncate, exit) through the mmu_gather (mmu_gather.ts), freeing
// page tables no VMA covers, and unmap_mapping_range for a file's mappings (R9.1, R9.11,
// R10.2, R10.3).

import { PMD_SIZE, gHasPteSpecial, gNrFrames, gZeroPfn } from "./config";
import { _PAGE_PSE, pte_special, pte_present, pte_pfn, pte_dirty, pte_young, is_swap_pte, is_pte_marker, swp_offset,
  PTE_MARKER_GUARD } from "./pte";
import { PG_referenced, PG_swapbacked, PG_anon, PG_swapcache, page_set, page_flags, page_mapping } from "./page";
import { LEVEL_PTE, LEVEL_PMD, LEVEL_PGD, WALK_HUGE, pt_walk, slot_addr, table_index, pgtable_free } from "./pgtable";
import { vma_start, vma_end, vma_pgoff, vma_file_next, vma_mm, vma_flags, VM_LOCKED } from "./vma";
import { mm_pgd, add_mm_counter, mm_add_ptes, find_vma, RSS_ANON, RSS_FILE, RSS_SHMEM, RSS_SWAP } from "./mm";
import { page_remove_rmap, page_is_anon } from "./rmap";
import { vm_normal_page, NO_PAGE } from "./special";
import { file_immap, mark_page_dirty } from "./mapping";
import { tlb_gather_mmu, tlb_note, tlb_remove_page, tlb_remove_held_page, tlb_finish_mmu } from "./mmu_gather";
import { free_swap_and_cache } from "./swap";
import { munlock_vma_folio } from "./mlock_folio";
import { zap_huge_pmd } from "./install";

// Clear one PTE and release what it held. `evenCows` false spares private anonymous
// copies (page-cache invalidation); true zaps them too (truncate, munmap, DONTNEED).
// Guard markers stay unless `dropMarkers` (munmap and exit: ZAP_FLAG_DROP_MARKER, R1.5).
export function zap_pte(mm: u32, vma: u32, va: u64, slot: usize, evenCows: bool, dropMarkers: bool = false): void {
  const pte = load<u64>(slot);
  if (pte == 0) return;
  if (!dropMarkers && is_pte_marker(pte) && <u32>swp_offset(pte) == PTE_MARKER_GUARD) return;
  if (pte_present(pte)) {
    const page = vm_normal_page(vma, va, pte);
    if (page == NO_PAGE) {
      store<u64>(slot, 0);
      tlb_note(va);
      return;
    }
    const anon = page_is_anon(page);
    if (anon && !evenCows) return;
    store<u64>(slot, 0);
    if (anon) {
      add_mm_counter(mm, RSS_ANON, -1);
    } else {
      add_mm_counter(mm, (page_flags(page) & PG_swapbacked) != 0 ? RSS_SHMEM : RSS_FILE, -1);
      if (pte_dirty(pte)) mark_page_dirty(page); // the PTE's dirty bit goes to the folio
    }
    if (pte_young(pte)) page_set(page, PG_referenced);
    if ((vma_flags(vma) & VM_LOCKED) != 0) munlock_vma_folio(page);
    page_remove_rmap(page);
    tlb_remove_page(page, va);
    return;
  }
  if (!evenCows && !is_pte_marker(pte)) return;
  store<u64>(slot, 0);
  if (is_swap_pte(pte) && !is_pte_marker(pte)) {
    add_mm_counter(mm, RSS_SWAP, -1);
    free_swap_and_cache(pte);
  }
}

// Zap [addr, end) inside the one PTE table `table` (Linux's zap_pte_range). The common
// PTE, present and mapping a normal page (pte_special), is zapped inline with the VMA's
// VM_LOCKED read once and the RSS counters added once per table, as Linux batches
// rss[] in zap_pte_range (issue 17); every other PTE goes through zap_pte.
function zap_pte_range(mm: u32, vma: u32, table: u32, addr: u64, end: u64, evenCows: bool, dropMarkers: bool): void {
  let slot = slot_addr(table, table_index(addr, LEVEL_PTE));
  const locked = (vma_flags(vma) & VM_LOCKED) != 0;
  const special = gHasPteSpecial;
  let dAnon: i32 = 0, dFile: i32 = 0, dShmem: i32 = 0;
  for (let a = addr; a < end; a += 4096) {
    const pte = load<u64>(slot);
    if (pte != 0) {
      const pfn = pte_pfn(pte);
      if (special && pte_present(pte) && !pte_special(pte) && pfn < gNrFrames && pfn != gZeroPfn) {
        const flags = page_flags(pfn);
        const anon = (flags & PG_anon) != 0;
        if (!anon || evenCows) {
          store<u64>(slot, 0);
          if (anon) dAnon++;
          else {
            if ((flags & PG_swapbacked) != 0) dShmem++; else dFile++;
            if (pte_dirty(pte)) mark_page_dirty(pfn); // the PTE's dirty bit goes to the folio
          }
          if (pte_young(pte)) page_set(pfn, PG_referenced);
          if (locked) munlock_vma_folio(pfn);
          page_remove_rmap(pfn);
          // A page-cache page (not in the swap cache) keeps the cache's reference through
          // the zap, so this PTE's reference can go now (issue 17; R9.11's order holds: the
          // frame cannot be freed before the flush).
          if ((flags & (PG_anon | PG_swapcache)) == 0 && page_mapping(pfn) != 0) tlb_remove_held_page(pfn, a);
          else tlb_remove_page(pfn, a);
        }
      } else {
        zap_pte(mm, vma, a, slot, evenCows, dropMarkers);
      }
    }
    slot += 8;
  }
  if (dAnon != 0) add_mm_counter(mm, RSS_ANON, -dAnon);
  if (dFile != 0) add_mm_counter(mm, RSS_FILE, -dFile);
  if (dShmem != 0) add_mm_counter(mm, RSS_SHMEM, -dShmem);
}

// Zap [start, end) of one VMA (start/end page aligned, inside the VMA).
export function zap_page_range(mm: u32, vma: u32, start: u64, end: u64, evenCows: bool, dropMarkers: bool = false): void {
  const pgd = mm_pgd(mm);
  let va = start;
  while (va < end) {
    let next = (va + PMD_SIZE) & ~(PMD_SIZE - 1);
    if (next > end) next = end;
    const pmdSlot = pt_walk(pgd, va, LEVEL_PMD, false);
    if (pmdSlot > WALK_HUGE) {
      const pmd = load<u64>(pmdSlot);
      if (pmd != 0) {
        if ((pmd & _PAGE_PSE) != 0) {
          zap_huge_pmd(mm, vma, va, pmdSlot);
        } else {
          zap_pte_range(mm, vma, pte_pfn(pmd), va, next, evenCows, dropMarkers);
        }
      }
    }
    va = next;
  }
}

// Is any VMA of `mm` inside [lo, hi)?
@inline function covered(mm: u32, lo: u64, hi: u64): bool {
  const v = find_vma(mm, lo);
  return v != 0 && vma_start(v) < hi;
}

// Free the page tables (PTE, PMD, PUD levels) that only served [start, end) and that no
// VMA needs any more (R9.11). Leaves in them are already none.
export function free_pgtables(mm: u32, start: u64, end: u64): void {
  if (end <= start) return;
  const pgd = mm_pgd(mm);
  for (let level = LEVEL_PMD; level <= LEVEL_PGD; level++) {
    // An entry at `level` points to a table spanning 2^shift bytes.
    const shift: u64 = 12 + 9 * (<u64>level - 1);
    const span: u64 = <u64>1 << shift;
    let a = start & ~(span - 1);
    while (a < end) {
      if (!covered(mm, a, a + span)) {
        const slot = level == LEVEL_PGD ? slot_addr(pgd, table_index(a, LEVEL_PGD))
                                        : pt_walk(pgd, a, level, false);
        if (slot > WALK_HUGE) {
          const e = load<u64>(slot);
          if (e != 0 && (e & _PAGE_PSE) == 0) {
            store<u64>(slot, 0);
            pgtable_free(pte_pfn(e));
            mm_add_ptes(mm, -1);
          }
        }
      }
      a += span;
    }
  }
}

// Zap every mapping of file pages [first, last] in every VMA of the file (R10.3).
export function unmap_mapping_range(file: u32, first: u64, last: u64, evenCows: bool): void {
  let v = file_immap(file);
  while (v != 0) {
    const pg0 = vma_pgoff(v);
    const npages = (vma_end(v) - vma_start(v)) >> 12;
    const lo = first > pg0 ? first : pg0;
    const hiEx = last + 1 < pg0 + npages ? last + 1 : pg0 + npages;
    if (lo < hiEx) {
      const mm = vma_mm(v);
      tlb_gather_mmu(mm);
      zap_page_range(mm, v, vma_start(v) + ((lo - pg0) << 12), vma_start(v) + ((hiEx - pg0) << 12), evenCows);
      tlb_finish_mmu();
    }
    v = vma_file_next(v);
  }
}

