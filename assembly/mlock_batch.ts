// Linux's per-CPU mlock folio batch (mm/mlock.c mlock_fbatch, R8.6), for the one CPU the
// emulator models. munlock_vma_folio does not clear PG_mlocked itself: it queues the page
// here with a reference, and PG_mlocked is cleared (if no VM_LOCKED mapping remains) only
// when the batch is processed: when it is full, for a large folio, or when lru_add_drain
// runs (mlock_drain_local). Until then the page still reads as mlocked in /proc/kpageflags
// and its extra reference makes a COW reuse check copy (FUZZ-FINDINGS item 9 / N4).
// Option `mlockBatch` = false processes every munlock at once (the pre-session-3 model).

import { PG_mlocked, PG_unevictable, PG_large, page_flags, get_page } from "./page";
import { lru_move, put_page } from "./lru";
import { VM_LOCKED, vma_flags } from "./vma";
import { rmap_walk_start, rmap_walk_next, rmapVma } from "./rmap";

// FOLIO_BATCH_SIZE (include/linux/pagevec.h): 31 folios.
const FOLIO_BATCH_SIZE: i32 = 31;
const fbatch: usize = memory.data(FOLIO_BATCH_SIZE * 4);
let fbatchNr: i32 = 0;
let mlockBatchOn: bool = true;

// Before 6.18 (measured: 6.1, 6.12 yes; 6.18, 7.3 no) the mmu_gather drained the batch when
// it freed its pages (mmu_gather.ts).
export let gTlbFreeDrainsMlock: bool = false;
export function set_tlb_free_drains_mlock(on: bool): void { gTlbFreeDrainsMlock = on; }

export function set_mlock_batch(on: bool): void {
  if (!on) mlock_drain_local();
  mlockBatchOn = on;
}

// Is the page still mapped in some VM_LOCKED VMA? (Linux counts mlock_count instead.)
export function mapped_locked(pfn: u32): bool {
  rmap_walk_start(pfn);
  while (rmap_walk_next() != 0) {
    if ((vma_flags(rmapVma) & VM_LOCKED) != 0) return true;
  }
  return false;
}

// __munlock_folio: the last locked mapping is gone: back to the evictable LRU.
function __munlock_folio(pfn: u32): void {
  if ((page_flags(pfn) & PG_mlocked) == 0) return;
  if (mapped_locked(pfn)) return;
  lru_move(pfn, 0, PG_mlocked | PG_unevictable);
}

// mlock_folio_batch: process every queued page and drop the batch's references.
function mlock_folio_batch(): void {
  const n = fbatchNr;
  fbatchNr = 0;
  for (let i = 0; i < n; i++) {
    const pfn = load<u32>(fbatch + (<usize>i << 2));
    __munlock_folio(pfn);
    put_page(pfn);
  }
}

// mlock_drain_local (from lru_add_drain). Measured on 6.18 (/proc/kpageflags right after
// the call): mlock/munlock's page walk (when the flags change), populate (mlock, MAP_POPULATE,
// MADV_POPULATE_*), MADV_FREE/COLD/PAGEOUT, anon/shmem MADV_WILLNEED, POSIX_FADV_DONTNEED
// drain; MADV_DONTNEED, munmap, exit, fork, mprotect and file WILLNEED do not.
export function mlock_drain_local(): void {
  if (fbatchNr != 0) mlock_folio_batch();
}

// munlock_folio: queue with a reference; a full batch or a large folio is processed now.
export function munlock_folio(pfn: u32): void {
  if (!mlockBatchOn) { __munlock_folio(pfn); return; }
  get_page(pfn);
  store<u32>(fbatch + (<usize>fbatchNr << 2), pfn);
  fbatchNr++;
  if (fbatchNr == FOLIO_BATCH_SIZE || (page_flags(pfn) & PG_large) != 0) mlock_folio_batch();
}

// References the batch holds on `pfn` (the invariant checker counts them as owned).
export function mlock_batch_refs(pfn: u32): i32 {
  let n = 0;
  for (let i = 0; i < fbatchNr; i++) if (load<u32>(fbatch + (<usize>i << 2)) == pfn) n++;
  return n;
}
