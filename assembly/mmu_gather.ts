// The mmu_gather (Linux's mm/mmu_gather.c): pages a zap took out of PTEs wait here until
// the TLB no longer maps them; then they lose the swap cache if nobody needs it and their
// reference (R9.11). Below install.ts and unmap.ts, which both batch through it.

import { PAGE_SHIFT } from "./config";
import { PG_swapcache, page_flags, page_mapcount, put_page_ref } from "./page";
import { tlb_flush_range } from "./tlb";
import { put_page_inline } from "./lru";
import { folio_free_swap } from "./swap";
import { lru_add_drain, gTlbFreeDrainsMlock } from "./mlock_batch";
import { gFusedPages } from "./phys";
import { count_n, ST_PGFREE } from "./stats";

const BATCH: u32 = 256;
const batch: usize = memory.data(BATCH * 4);
let nBatch: u32 = 0;
let nHeld: u32 = 0; // pages tlb_remove_held_page released at once (counted as batched)
// A batched page may be in the swap cache: tlb_remove_page sets it for any page, a zap
// run (tlb_note_swap) for a page it batched with PG_swapcache. Nothing sets PG_swapcache on
// a page between its zap and the finish (add_to_swap needs reclaim, which only an
// allocation runs, and a zap allocates nothing), so without it tlb_finish_mmu's swap-cache
// pass finds nothing to do and is skipped (issue 17, t17f).
let swapMaybe = false;
let gMm: u32 = 0;
let gLo: u64 = 0xffff_ffff_ffff_ffff;
let gHi: u64 = 0;

export function tlb_gather_mmu(mm: u32): void {
  gMm = mm;
  nBatch = 0;
  nHeld = 0;
  swapMaybe = false;
  gLo = 0xffff_ffff_ffff_ffff;
  gHi = 0;
}

// A zap run batched a page with PG_swapcache.
@inline export function tlb_note_swap(): void { swapMaybe = true; }

// Note a PTE that was cleared at `va` (the range to flush grows to cover it).
@inline export function tlb_note(va: u64): void {
  if (va < gLo) gLo = va;
  if (va + 4096 > gHi) gHi = va + 4096;
}

// Free `pfn`'s reference after the flush.
export function tlb_remove_page(pfn: u32, va: u64): void {
  tlb_note(va);
  swapMaybe = true;
  store<u32>(batch + (<usize>nBatch << 2), pfn);
  if (++nBatch + nHeld == BATCH) tlb_finish_mmu();
}

// A page whose reference the zap drops while another reference holds it (a page-cache
// page not in the swap cache: the cache's own reference, the caller checked page_ref > 1):
// dropping it before the flush cannot free the frame, so it skips the batch (issue 17).
// It still counts as a page of the batch: a full batch flushes at the same point, and a
// finish that had pages drains the mlock batch, as before.
@inline export function tlb_remove_held_page(pfn: u32, va: u64): void {
  tlb_note(va);
  put_page_ref(pfn);
  if (nBatch + ++nHeld == BATCH) tlb_finish_mmu();
}

// A zap's run (unmap.ts zap_run, issue 17): the batch's room left before it is full, where
// its next page goes, and the run's pages and range added in one go. The run finishes the
// gather itself when it fills the room (tlb_note_run, then tlb_finish_mmu), at the same
// page tlb_remove_page / tlb_remove_held_page would.
@inline export function tlb_room(): u32 { return BATCH - nBatch - nHeld; }
@inline export function tlb_batch_at(): usize { return batch + (<usize>nBatch << 2); }
@inline export function tlb_note_run(lo: u64, hi: u64, batched: u32, held: u32): void {
  if (lo < gLo) gLo = lo;
  if (hi > gHi) gHi = hi;
  nBatch += batched;
  nHeld += held;
}

export function tlb_finish_mmu(): void {
  if (gHi > gLo) tlb_flush_range(gMm, gLo, (gHi - gLo) >> PAGE_SHIFT);
  // Before 6.18 free_pages_and_swap_cache began with lru_add_drain: a zap that freed pages
  // (munmap, exit, MADV_DONTNEED) processed its own munlocks (R8.6).
  if ((nBatch != 0 || nHeld != 0) && gTlbFreeDrainsMlock) lru_add_drain();
  if (swapMaybe || !gFusedPages) for (let i: u32 = 0; i < nBatch; i++) {
    const pfn = load<u32>(batch + (<usize>i << 2));
    // free_pages_and_swap_cache (R9.11): an anonymous page nobody maps any more leaves the
    // swap cache when no swap entry refers to its slot; else its frame and slot would
    // outlive every owner (found by tests/property: a swapped-in page, the sibling's entry
    // zapped first, then the last mapping).
    if ((page_flags(pfn) & PG_swapcache) != 0 && page_mapcount(pfn) == 0) folio_free_swap(pfn);
  }
  // The references go last page first (Linux: first page first), so the per-cpu list, LIFO,
  // hands the batch's frames out again in the order the zap met them: a region faulted in
  // ascending frames gets ascending frames next time, not descending ones every other
  // round; zeroing or copying cold frames in descending order costs up to 1.8× on x86
  // (the prefetchers follow ascending streams). Which frame a page gets is not Linux's
  // behaviour to match (issue 17).
  let freed: u32 = 0; // ST_PGFREE of the fused frees, counted once (issue 17, t17f)
  for (let i = <i32>nBatch - 1; i >= 0; i--) freed += <u32>put_page_inline(load<u32>(batch + (<usize>i << 2)));
  if (freed != 0) count_n(ST_PGFREE, <f64>freed);
  nBatch = 0;
  nHeld = 0;
  swapMaybe = false;
  gLo = 0xffff_ffff_ffff_ffff;
  gHi = 0;
}
