// Linux's per-CPU mlock folio batch (mm/mlock.c mlock_fbatch, R8.6), for the one CPU the
// emulator models, and the mlock_count of a small folio (5.18+).
//
// mlock_count: how many VM_LOCKED mappings have mlocked the folio. It lives where Linux keeps
// it, in the room of the LRU link: an unevictable folio sits on no real list (lru.ts counts
// them), so its lru_next holds the count. A munlock decrements it and clears PG_mlocked only
// at 0 (the last locked mapping); it may undercount (reclaim re-mlocks a folio it finds in a
// VM_LOCKED VMA, reclaim.ts), never overcount.
//
// The batch: munlock_vma_folio does not touch the count itself: it queues a munlock entry with
// a reference, and the entries are handled in order when the batch is processed (full at 31,
// a large folio, or lru_add_drain: mlock_drain_local). Until then the page still reads as
// mlocked in /proc/kpageflags and its extra reference makes a COW reuse check copy
// (FUZZ-FINDINGS item 9 / N4). An mlock is queued too (an mlock entry, also with a
// reference), so a zap and a refault into a still-locked VMA end as Linux's do: the munlock
// takes the count to 0 and clears PG_mlocked, then the mlock entry finds the folio evictable
// and does nothing (FUZZ-FINDINGS run L item 1); and mlock entries count toward the 31 that
// process the batch (session 6, run S).
//
// Large folios (their head and tail pages) keep a reverse-map model: mlocked at once,
// PG_mlocked cleared when no VM_LOCKED VMA maps the whole folio any more (mapped_locked).
// Option `mlockBatch` = false handles every entry at once.

import { PG_mlocked, PG_unevictable, PG_large, PG_tail, PG_lru, PG_anon, PG_swapbacked, PG_swapcache,
  PG_active, PG_referenced, page_flags, page_set, get_page,
  page_lru_next, set_page_lru_next } from "./page";
import { lru_move, put_page, folio_head, folio_nr_pages } from "./lru";
import { VM_LOCKED, vma_flags, vma_end } from "./vma";
import { rmap_walk_start, rmap_walk_next, rmapVma, rmapMm, rmapVa } from "./rmap";
import { pt_walk, LEVEL_PTE, WALK_HUGE } from "./pgtable";
import { pte_present, pte_pfn } from "./pte";
import { mm_pgd } from "./mm";
import { count, ST_UNEVICTABLE_CULLED } from "./stats";

// FOLIO_BATCH_SIZE (include/linux/pagevec.h): 31 folios.
const FOLIO_BATCH_SIZE: i32 = 31;
// Entries: pfn << 1 | kind (Linux tags the folio pointer's low bits the same way).
const fbatch: usize = memory.data(FOLIO_BATCH_SIZE * 4);
const MUNLOCK_ENTRY: u32 = 0;
const MLOCK_ENTRY: u32 = 1; // Linux's LRU_FOLIO
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

// MADV_FREE's folio_mark_lazyfree (R5.3). A small anonymous page on the LRU is queued on
// this CPU's lazyfree batch (15 entries) with a reference and stays on its list, PG_lru set,
// until the batch is full or lru_add_drain moves it: a write fault meanwhile sees that
// reference and copies, as do_wp_page drains only for a folio off the LRU (option
// `lazyfreeBatch`, measured on 6.1, 6.12, 6.18 and 7.3: scenario cow-reuse-after-madv-free).
// Off: the move at once.
const LAZYFREE_PAGEVEC: i32 = 15;
const lazyfreeVec: usize = memory.data(LAZYFREE_PAGEVEC * 4);
let lazyfreeNr: i32 = 0;
let lazyfreeBatchOn: bool = true;
export function set_lazyfree_batch(on: bool): void {
  if (!on) lazyfree_drain();
  lazyfreeBatchOn = on;
}

// A page MADV_FREE made clean: off the swap path, onto the inactive file list (lru_lazyfree_fn).
export function folio_mark_lazyfree(pfn: u32): void {
  const f = page_flags(pfn);
  if ((f & (PG_swapbacked | PG_swapcache | PG_unevictable)) != PG_swapbacked) return;
  if (!lazyfreeBatchOn) { lazyfree_move(pfn); return; }
  if ((f & PG_lru) == 0) return;
  get_page(pfn);
  store<u32>(lazyfreeVec + (<usize>lazyfreeNr << 2), pfn);
  if (++lazyfreeNr == LAZYFREE_PAGEVEC) lazyfree_drain();
}
@inline function lazyfree_move(pfn: u32): void { lru_move(pfn, 0, PG_swapbacked | PG_active | PG_referenced); }
// The pagevec's pages moved (each still an LRU anonymous swap-backed page outside the swap
// cache and not unevictable) and their references dropped, in order.
function lazyfree_drain(): void {
  for (let i = 0; i < lazyfreeNr; i++) {
    const pfn = load<u32>(lazyfreeVec + (<usize>i << 2));
    const f = page_flags(pfn);
    if ((f & (PG_lru | PG_anon | PG_swapbacked | PG_swapcache | PG_unevictable)) == (PG_lru | PG_anon | PG_swapbacked)) lazyfree_move(pfn);
    put_page(pfn);
  }
  lazyfreeNr = 0;
}

// lru_add_drain on the one CPU (lru_add_drain_cpu): the lazyfree pagevec, then the mlock
// batch (mlock_drain_local). The emulator models no other per-CPU batch.
export function lru_add_drain(): void {
  if (lazyfreeNr != 0) lazyfree_drain();
  mlock_drain_local();
}

// The mlock_count of a small folio on the unevictable LRU (lru_next's room).
@inline export function folio_mlock_count(pfn: u32): u32 { return page_lru_next(pfn); }
@inline function set_mlock_count(pfn: u32, n: u32): void { set_page_lru_next(pfn, n); }

// Is the large folio of `pfn` mapped whole by some VM_LOCKED VMA? Linux counts a large
// folio's locked mappings only where one call mapped all of it (the mlock walk over the
// whole folio; 6.18+ also a fault that mapped it whole), so a VMA that maps it in part keeps
// nothing locked (seed 1363926800 case 865).
export function mapped_locked(pfn: u32): bool {
  const head = folio_head(pfn);
  const n = folio_nr_pages(head);
  rmap_walk_start(head);
  while (rmap_walk_next() != 0) {
    if ((vma_flags(rmapVma) & VM_LOCKED) != 0 && maps_whole(rmapMm, rmapVma, rmapVa, head, n)) return true;
  }
  return false;
}

// Do the PTEs of `v` from `va` (where the head is mapped) map pages head .. head + n - 1?
function maps_whole(mm: u32, v: u32, va: u64, head: u32, n: u32): bool {
  if (va + (<u64>n << 12) > vma_end(v)) return false;
  for (let i: u32 = 1; i < n; i++) {
    const slot = pt_walk(mm_pgd(mm), va + (<u64>i << 12), LEVEL_PTE, false);
    if (slot <= WALK_HUGE) return false;
    const pte = load<u64>(slot);
    if (!pte_present(pte) || pte_pfn(pte) != head + i) return false;
  }
  return true;
}

// __mlock_folio: one more locked mapping of a folio already PG_mlocked. On the unevictable
// LRU it counts; on an evictable one it moves there with a count of 1; while off the LRU
// the flags are set and the count starts at 1 (lru_add then files it as unevictable).
function __mlock_folio(pfn: u32): void {
  const f = page_flags(pfn);
  if ((f & PG_mlocked) == 0) {
    // Cleared since it was queued (a munlock ahead of it took the count to 0): evictable.
    return;
  }
  if ((f & PG_unevictable) != 0) {
    set_mlock_count(pfn, folio_mlock_count(pfn) + 1);
    return;
  }
  if ((f & PG_lru) != 0) lru_move(pfn, PG_unevictable, 0);
  else page_set(pfn, PG_unevictable);
  set_mlock_count(pfn, 1);
  count(ST_UNEVICTABLE_CULLED);
}

// __munlock_folio: one locked mapping fewer. PG_mlocked is cleared (and the folio goes back
// to an evictable LRU) when that was the last, by the count for a small folio and by the
// reverse map for a large one.
function __munlock_folio(pfn: u32): void {
  const f = page_flags(pfn);
  if ((f & PG_mlocked) == 0) return;
  if ((f & (PG_large | PG_tail)) != 0) {
    // PG_mlocked is the folio's: it goes from every page at once (a zap of one page of a
    // locked large folio leaves all of it unlocked, measured on 6.18).
    if (mapped_locked(pfn)) return;
    const head = folio_head(pfn);
    const n = folio_nr_pages(head);
    for (let i: u32 = 0; i < n; i++) {
      if ((page_flags(head + i) & PG_mlocked) != 0) lru_move(head + i, 0, PG_mlocked | PG_unevictable);
    }
    return;
  } else if ((f & PG_unevictable) != 0) {
    let n = folio_mlock_count(pfn);
    if (n != 0) n--;
    set_mlock_count(pfn, n);
    if (n != 0) return;
  }
  lru_move(pfn, 0, PG_mlocked | PG_unevictable);
}

// mlock_folio_batch: handle every queued entry in order and drop the batch's references.
function mlock_folio_batch(): void {
  const n = fbatchNr;
  fbatchNr = 0;
  for (let i = 0; i < n; i++) {
    const e = load<u32>(fbatch + (<usize>i << 2));
    const pfn = e >>> 1;
    if ((e & 1) == MLOCK_ENTRY) __mlock_folio(pfn); else __munlock_folio(pfn);
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

function fbatch_add(pfn: u32, kind: u32): void {
  get_page(pfn);
  store<u32>(fbatch + (<usize>fbatchNr << 2), (pfn << 1) | kind);
  fbatchNr++;
  if (fbatchNr == FOLIO_BATCH_SIZE || (page_flags(pfn) & (PG_large | PG_tail)) != 0) mlock_folio_batch();
}

// mlock_folio / mlock_new_folio: a small folio mapped into a VM_LOCKED VMA. PG_mlocked is
// set now; the count (and the move to the unevictable list) waits in the batch like every
// entry, with a reference: the entries fill the batch, so they move when later munlocks are
// processed (a COW in a locked VMA queues two; seed 1200101973 case 791's family).
export function mlock_folio(pfn: u32): void {
  page_set(pfn, PG_mlocked);
  if (mlockBatchOn) fbatch_add(pfn, MLOCK_ENTRY);
  else __mlock_folio(pfn);
}

// munlock_folio: queue with a reference; a full batch or a large folio is processed now.
export function munlock_folio(pfn: u32): void {
  if (!mlockBatchOn) { __munlock_folio(pfn); return; }
  fbatch_add(pfn, MUNLOCK_ENTRY);
}

// References the per-CPU batches (mlock, lazyfree) hold on `pfn` (the invariant checker
// counts them as owned).
export function mlock_batch_refs(pfn: u32): i32 {
  let n = 0;
  for (let i = 0; i < fbatchNr; i++) if (load<u32>(fbatch + (<usize>i << 2)) >>> 1 == pfn) n++;
  for (let i = 0; i < lazyfreeNr; i++) if (load<u32>(lazyfreeVec + (<usize>i << 2)) == pfn) n++;
  return n;
}

// Queued entries of one kind for `pfn` (INV_MLOCK in check.ts).
export function mlock_batch_entries(pfn: u32, mlock: bool): i32 {
  const want = (pfn << 1) | (mlock ? MLOCK_ENTRY : MUNLOCK_ENTRY);
  let n = 0;
  for (let i = 0; i < fbatchNr; i++) if (load<u32>(fbatch + (<usize>i << 2)) == want) n++;
  return n;
}
