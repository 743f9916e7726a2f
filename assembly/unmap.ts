// Tearing mappings down (Linux's zap_pte_range / unmap_page_range in mm/memory.c): zap
// (munmap, MADV_DONTNEED, truncate, exit) through the mmu_gather (mmu_gather.ts), freeing
// page tables no VMA covers, and unmap_mapping_range for a file's mappings (R9.1, R9.11,
// R10.2, R10.3).

import { PMD_SIZE, gHasPteSpecial, gNrFrames, gZeroPfn } from "./config";
import { _PAGE_PSE, _PAGE_PRESENT, _PAGE_PROTNONE, _PAGE_SPECIAL, _PAGE_DIRTY, _PAGE_ACCESSED, pte_special, pte_present, pte_pfn, pte_dirty, pte_young, is_swap_pte, is_pte_marker, swp_offset,
  PTE_MARKER_GUARD } from "./pte";
import { PG_referenced, PG_swapbacked, PG_anon, PG_anon_exclusive, PG_swapcache, PG_dirty, page_set, page_flags, page_mapping,
  page_addr } from "./page";
import { LEVEL_PTE, LEVEL_PMD, LEVEL_PGD, WALK_HUGE, pt_walk, slot_addr, table_index, pgtable_free } from "./pgtable";
import { vma_start, vma_end, vma_pgoff, vma_file_next, vma_mm, vma_flags, VM_LOCKED } from "./vma";
import { mm_pgd, add_mm_counter, mm_add_ptes, find_vma, RSS_ANON, RSS_FILE, RSS_SHMEM, RSS_SWAP } from "./mm";
import { page_remove_rmap, page_is_anon } from "./rmap";
import { vm_normal_page, NO_PAGE } from "./special";
import { file_immap, mark_page_dirty } from "./mapping";
import { tlb_gather_mmu, tlb_note, tlb_remove_page, tlb_remove_held_page, tlb_finish_mmu, tlb_room, tlb_batch_at,
  tlb_note_run, tlb_note_swap } from "./mmu_gather";
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
// rss[] in zap_pte_range (issue 17); runs of them in an unlocked VMA go through zap_run;
// every other PTE goes through zap_pte.
function zap_pte_range(mm: u32, vma: u32, table: u32, addr: u64, end: u64, evenCows: bool, dropMarkers: bool): void {
  let slot = slot_addr(table, table_index(addr, LEVEL_PTE));
  const locked = (vma_flags(vma) & VM_LOCKED) != 0;
  const special = gHasPteSpecial;
  const runs = special && !locked && gZapRuns;
  runAnon = 0; runFile = 0; runShmem = 0;
  let dAnon: i32 = 0, dFile: i32 = 0, dShmem: i32 = 0;
  for (let a = addr; a < end; a += 4096) {
    const pte = load<u64>(slot);
    if (pte != 0) {
      if (runs) {
        const n = zap_run(slot, a, end, evenCows);
        if (n != 0) {
          a += (<u64>n << 12) - 4096;
          slot += <usize>n << 3;
          continue;
        }
      }
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
  dAnon += runAnon; dFile += runFile; dShmem += runShmem;
  if (dAnon != 0) add_mm_counter(mm, RSS_ANON, -dAnon);
  if (dFile != 0) add_mm_counter(mm, RSS_FILE, -dFile);
  if (dShmem != 0) add_mm_counter(mm, RSS_SHMEM, -dShmem);
}

// Issue 17 (t17d): zap_pte_range's common PTEs per run (off: page by page, for tests that
// compare the two; index.ts mmu_set_zap_runs).
export let gZapRuns = true;
export function set_zap_runs(on: bool): void { gZapRuns = on; }
// The RSS a table's runs took away (zap_pte_range adds them to its own counts).
let runAnon: i32 = 0;
let runFile: i32 = 0;
let runShmem: i32 = 0;

// From the PTE at `slot` (of page `a`) up to `end`, zap while each PTE is present and maps
// a normal page that this zap takes (a private anonymous copy only if `evenCows`), in an
// unlocked VMA with pte_special: exactly what zap_pte_range's inline case does page by page
// (the PTE cleared, its dirty bit to a file folio, young to PG_referenced, the mapcount
// dropped, the reference dropped now for a page-cache page the cache holds, else batched),
// with the gather's range, batch and counts updated once per run and the batch finished
// at the page that fills it. Returns the pages zapped (0: the first PTE is not such a one).
function zap_run(slot: usize, a: u64, end: u64, evenCows: bool): u32 {
  const frames = gNrFrames;
  const zero = gZeroPfn;
  // Pages that stay out of the run: anonymous ones unless evenCows.
  const skip: u32 = evenCows ? 0 : PG_anon;
  const slot0 = slot;
  const endSlot = slot + <usize>((end - a) >> 9); // the PTE slot of `end`
  let dAnon: i32 = 0, dShmem: i32 = 0;
  for (;;) {
    // One segment: up to the page that fills the gather's batch (then it is finished).
    const seg = slot;
    const bp0 = tlb_batch_at();
    let bp = bp0;
    const full = seg + (<usize>tlb_room() << 3);
    const stop = full < endSlot ? full : endSlot;
    while (slot < stop) {
      const pte = load<u64>(slot);
      const t = pte & (_PAGE_PRESENT | _PAGE_PROTNONE | _PAGE_SPECIAL);
      if (t - 1 >= _PAGE_SPECIAL - 1) break; // not present (t == 0), or special: one compare
      const pfn = pte_pfn(pte);
      if (pfn >= frames) break;
      if (pfn == zero) break;
      const pg = page_addr(pfn);
      const flags = load<u32>(pg);
      if ((flags & skip) != 0) break;
      store<u64>(slot, 0);
      if ((flags & PG_anon) != 0) dAnon++;
      else {
        dShmem += <i32>((flags & PG_swapbacked) != 0);
        // the PTE's dirty bit goes to the folio (mark_page_dirty)
        if ((pte & _PAGE_DIRTY) != 0 && (load<u32>(pg) & PG_dirty) == 0) mark_page_dirty(pfn);
      }
      if ((pte & _PAGE_ACCESSED) != 0) store<u32>(pg, load<u32>(pg) | PG_referenced);
      // page_remove_rmap
      const m = load<i32>(pg, 8) - 1;
      store<i32>(pg, m, 8);
      if (m == 0) {
        if ((flags & PG_anon) != 0) store<u32>(pg, load<u32>(pg) & ~PG_anon_exclusive);
      }
      if ((flags & (PG_anon | PG_swapcache)) == 0 && load<u32>(pg, 12) != 0) {
        store<i32>(pg, load<i32>(pg, 4) - 1, 4); // tlb_remove_held_page: the cache holds it
      } else {
        if ((flags & PG_swapcache) != 0) tlb_note_swap(); // mmu_gather.ts: its swap-cache pass
        store<u32>(bp, pfn); // tlb_remove_page
        bp += 4;
      }
      slot += 8;
    }
    if (slot != seg) {
      const pages = <u32>((slot - seg) >> 3);
      const batched = <u32>((bp - bp0) >> 2);
      const lo = a + (<u64>(seg - slot0) << 9);
      tlb_note_run(lo, lo + (<u64>pages << 12), batched, pages - batched);
    }
    if (slot != full) break;
    tlb_finish_mmu(); // the batch is full, at the same page tlb_remove_page would finish it
  }
  const total = <u32>((slot - slot0) >> 3);
  runAnon += dAnon;
  runShmem += dShmem;
  runFile += <i32>total - dAnon - dShmem;
  return total;
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

