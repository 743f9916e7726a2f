// The page half of Linux's mm/mlock.c (R8.6): mlock_vma_folio, munlock_vma_folio and
// mlock_new_folio keep PG_mlocked pages on the unevictable LRU. Low enough that the fault,
// install, zap and swap-in paths call it directly; the syscalls are in mlock.ts.
//
// A small folio is mlocked while its mlock_count (one per mapping in a VM_LOCKED VMA, kept
// in order with the munlocks on the mlock batch) is above 0 (5.18+, mlock_batch.ts). A large
// folio keeps the older rule: mlocked while some PTE maps it in a VM_LOCKED VMA, which
// munlock asks the reverse map.

import { PG_mlocked, PG_unevictable, page_flags } from "./page";
import { lru_move, folio_test_large, folio_head, folio_nr_pages } from "./lru";
import { VM_LOCKED, VM_SPECIAL, vma_flags } from "./vma";
import { mlock_folio, munlock_folio, mlock_drain_local } from "./mlock_batch";
import { count, ST_UNEVICTABLE_CULLED } from "./stats";

// A page newly mapped into a VM_LOCKED VMA (or found there by reclaim): mlocked, counted.
export function mlock_vma_folio(pfn: u32): void {
  if (!folio_test_large(pfn)) { mlock_folio(pfn); return; }
  mlock_large_page(pfn);
}

@inline function mlock_large_page(pfn: u32): void {
  if ((page_flags(pfn) & PG_mlocked) != 0) return;
  lru_move(pfn, PG_mlocked | PG_unevictable, 0);
  count(ST_UNEVICTABLE_CULLED);
}

// mlock_folio of a whole large folio (the mlock walk, or a fault that mapped all of it): a
// large folio goes through the mlock batch at once, so the entries queued before it are
// handled first (mlock_folio_batch), then every page of it is PG_mlocked (R8.6).
export function mlock_large_folio(head: u32): void {
  mlock_drain_local();
  const n = folio_nr_pages(head);
  for (let i: u32 = 0; i < n; i++) mlock_large_page(head + i);
}

// 6.18+ (option `mlockMappedLargeFolio`): __folio_add_file_rmap mlocks a large folio when
// one call maps all of its pages (fault-around's run over the whole folio); a folio mapped in
// part, or over two faults, stays unlocked (before 6.18: small folios only). The emulator
// maps page by page, so it follows the run: consecutive pages of one folio within one fault.
let gMlockMappedLarge: bool = false;
export function set_mlock_mapped_large(on: bool): void { gMlockMappedLarge = on; }
let gFaultSeq: u32 = 0;
let runSeq: u32 = 0xffff_ffff;
let runHead: u32 = 0;
let runNext: u32 = 0;
let runCount: u32 = 0;
// A new fault (handle_mm_fault): a run never spans two faults.
@inline export function mlock_run_reset(): void { gFaultSeq++; }
// Page `pfn` of a large folio was just mapped into a VM_LOCKED VMA by this fault.
export function mlock_large_mapped(pfn: u32): void {
  if (!gMlockMappedLarge) return;
  const head = folio_head(pfn);
  if (runSeq != gFaultSeq || head != runHead || pfn != runNext) {
    runSeq = gFaultSeq; runHead = head; runCount = 0;
    if (pfn != head) { runNext = 0; return; } // a run that misses the first page maps it in part
  }
  runNext = pfn + 1;
  if (++runCount != folio_nr_pages(head)) return;
  mlock_large_folio(head);
  runNext = 0;
}

// One mapping in a locked VMA went away (zap, munlock, COW): queued on the mlock batch,
// which clears PG_mlocked when it drains if that was the last (mlock_batch.ts).
export function munlock_vma_folio(pfn: u32): void {
  if ((page_flags(pfn) & PG_mlocked) == 0) return;
  munlock_folio(pfn);
}

// A new anonymous page in `vma` (do_anonymous_page, do_cow_fault): mlocked if the VMA is.
export function mlock_new_folio(vma: u32, pfn: u32): void {
  if ((vma_flags(vma) & (VM_LOCKED | VM_SPECIAL)) == VM_LOCKED) mlock_vma_folio(pfn);
}

// Walk the present pages of [start, end) in a VMA and lock or unlock them.
