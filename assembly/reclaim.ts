// Page reclaim: LRU aging by the accessed bits of every mapping (through the reverse map),
// try_to_unmap, swap-out of anonymous pages, write-back of dirty file pages, and direct
// reclaim when an allocation finds no free frame (R8.6, R11.6, seed 001, seed 003).
//
// Second chance, as Linux's inactive lists give it: an inactive page whose PTEs were
// young is rotated (file) or activated (anonymous, or a file page referenced twice);
// one whose PTEs stayed old is reclaimed. So with prefaultOld, pages fault-around mapped
// and nobody touched go first (seed 001). A page mapped in a VM_LOCKED VMA is moved to
// the unevictable list and never unmapped, unless the host already discarded it (seed 003).
// Shared anonymous memory (shmem) is unmapped, but not swapped here: its dirty pages stay
// in the shmem cache.

import { pte_present, pte_young, pte_mkold, pte_dirty, pte_mkclean, is_swap_pte, is_pte_marker,
  swp_offset, PTE_MARKER_POISON } from "./pte";
import { PG_anon, PG_swapcache, PG_dirty, PG_readahead, PG_referenced, PG_active, PG_swapbacked,
  PG_mlocked, PG_lru, PG_unevictable, get_page, page_flags, page_set, page_clear, page_ref, page_mapcount, page_mapping,
  page_private } from "./page";
import { nr_free_frames, set_direct_reclaim } from "./phys";
import { tlb_flush_page } from "./tlb";
import { LRU_INACTIVE_ANON, LRU_ACTIVE_ANON, LRU_INACTIVE_FILE, LRU_ACTIVE_FILE, lru_last,
  lru_prev, lru_size, lru_move, lru_del, lru_add, lru_add_tail, page_lru_list, folio_test_large } from "./lru";
import { VM_LOCKED, VM_EXEC, vma_flags } from "./vma";
import { add_mm_counter, RSS_ANON, RSS_FILE, RSS_SHMEM, RSS_SWAP } from "./mm";
import { rmap_walk_start, rmap_walk_next, rmapMm, rmapVma, rmapVa, page_remove_rmap } from "./rmap";
import { mark_page_dirty } from "./mapping";
import { put_page } from "./lru";
import { writeback_page, remove_cached_page } from "./filemap";
import { add_to_swap, make_swap_pte, swap_writepage, delete_from_swap_cache, swap_count,
  free_swap_and_cache, folio_free_swap } from "./swap";
import { mlock_vma_folio } from "./mlock_folio";
import { lru_add_drain, folio_mark_lazyfree } from "./mlock_batch";
import { shmem_writeout } from "./shmem_swap";
import { page_residency, RES_DISCARDED } from "./pagestate";
import { count, ST_PGSCAN, ST_PGSTEAL } from "./stats";
import { LEVEL_PTE, WALK_HUGE, pt_walk } from "./pgtable";
import { mm_pgd } from "./mm";
import { vm_normal_page, NO_PAGE } from "./special";

let lockedSeen = false;
let execSeen = false;
let madvPageout = false; // shrink_page called by MADV_PAGEOUT (not kswapd)

// page_referenced: how many PTEs mapping the page were young (each is made old, and its
// TLB entry flushed so the next access sets A again). Notes VM_LOCKED / VM_EXEC mappings.
export function page_referenced(pfn: u32): u32 {
  let n: u32 = 0;
  lockedSeen = false;
  execSeen = false;
  rmap_walk_start(pfn);
  for (let slot = rmap_walk_next(); slot != 0; slot = rmap_walk_next()) {
    const f = vma_flags(rmapVma);
    if ((f & VM_LOCKED) != 0) lockedSeen = true;
    if ((f & VM_EXEC) != 0) execSeen = true;
    const pte = load<u64>(slot);
    if (pte_young(pte)) {
      store<u64>(slot, pte_mkold(pte));
      tlb_flush_page(rmapMm, rmapVa);
      n++;
    }
  }
  return n;
}

// try_to_unmap: every PTE of the page goes (anonymous: to a swap entry; file: to none,
// its dirty bit moved to the page). The caller made sure the page may go.
export function try_to_unmap(pfn: u32): void {
  const anon = (page_flags(pfn) & PG_anon) != 0;
  rmap_walk_start(pfn);
  for (let slot = rmap_walk_next(); slot != 0; slot = rmap_walk_next()) {
    const pte = load<u64>(slot);
    if (anon) {
      store<u64>(slot, make_swap_pte(pfn, pte));
      add_mm_counter(rmapMm, RSS_ANON, -1);
      add_mm_counter(rmapMm, RSS_SWAP, 1);
      if (pte_dirty(pte)) page_set(pfn, PG_dirty);
    } else {
      store<u64>(slot, 0);
      add_mm_counter(rmapMm, (page_flags(pfn) & PG_swapbacked) != 0 ? RSS_SHMEM : RSS_FILE, -1);
      if (pte_dirty(pte)) mark_page_dirty(pfn);
    }
    tlb_flush_page(rmapMm, rmapVa);
    page_remove_rmap(pfn);
    put_page(pfn);
  }
}

// References beyond the mappings and the cache (pins, a fault in progress) keep a page.
function has_extra_refs(pfn: u32): bool {
  const f = page_flags(pfn);
  let expected = page_mapcount(pfn);
  if ((f & PG_swapcache) != 0) expected++;
  if ((f & PG_anon) == 0 && page_mapping(pfn) != 0) expected++;
  return page_ref(pfn) > expected;
}

@inline function rotate(pfn: u32): void { lru_del(pfn); lru_add(pfn); } // back to the head

// Reclaim one inactive page if it may go. Returns true if it was freed.
function shrink_page(pfn: u32): bool {
  count(ST_PGSCAN);
  if (has_extra_refs(pfn)) { rotate(pfn); return false; }
  const f = page_flags(pfn);
  const anon = (f & PG_anon) != 0;
  const discarded = page_residency(pfn) == RES_DISCARDED;
  const refs = page_referenced(pfn);
  if (lockedSeen && !discarded) { mlock_vma_folio(pfn); return false; } // seed 003, R8.6
  if (refs > 0 && !discarded) {
    // A lazily freed page sits on the file list and is judged like a file page (Linux's
    // folio_check_references by folio_is_file_lru).
    if ((anon && (f & PG_swapbacked) != 0) || (f & PG_referenced) != 0 || execSeen) {
      page_clear(pfn, PG_referenced);
      lru_move(pfn, PG_active, 0);
    } else {
      page_set(pfn, PG_referenced);
      rotate(pfn);
    }
    return false;
  }
  if (anon && (f & PG_swapbacked) == 0) return shrink_lazyfree(pfn);
  if (anon || (f & PG_swapcache) != 0) { // (a shmem page in the swap cache is unmapped)
    if ((f & PG_swapcache) == 0 && !add_to_swap(pfn)) { lru_move(pfn, PG_active, 0); return false; }
    try_to_unmap(pfn);
    if (page_mapcount(pfn) != 0) return false;
    if (!swap_pageout(pfn)) return false;
  } else {
    try_to_unmap(pfn);
    if (page_mapcount(pfn) != 0) return false;
    // shmem (MADV_PAGEOUT, reclaim): unmapped like any file page; a dirty one goes to swap
    // (shmem_writeout, R11.3): the object keeps a swap entry, the page goes on as an
    // anonymous one does. Without a free slot it stays in the shmem cache, activated. A
    // clean one (a hole only read) is dropped: it reads as zeros again.
    if ((f & PG_swapbacked) != 0 && (page_flags(pfn) & PG_dirty) != 0) {
      if (!shmem_writeout(pfn)) { lru_move(pfn, PG_active, 0); return false; }
      if (!swap_pageout(pfn)) return false;
      count(ST_PGSTEAL);
      return true;
    }
    // MADV_PAGEOUT is not kswapd: shrink_folio_list writes no dirty file folio back outside
    // kswapd; it is unmapped, marked for reclaim and kept, activated (the next access is a
    // minor fault), as 6.18 shows (issue 14, fuzz run D). folio_set_reclaim sets the bit
    // PG_readahead shares: fault-around skips the page and the next fault on it starts an
    // asynchronous readahead, dropping the lock (a major fault before 6.7, R11.5).
    if (madvPageout && (page_flags(pfn) & (PG_dirty | PG_swapbacked)) == PG_dirty) {
      page_set(pfn, PG_readahead);
      lru_move(pfn, PG_active, 0);
      return false;
    }
    if (!remove_cached_page(pfn, discarded)) { lru_move(pfn, PG_active, 0); return false; }
  }
  count(ST_PGSTEAL);
  return true;
}

// pageout of an unmapped swap-cache page (shrink_folio_list): a dirty one is written to
// its slot (a clean one's slot has its data already), then it leaves the swap cache and is
// freed. Under MADV_PAGEOUT the write is still in flight when reclaim looks again (Linux
// writes back asynchronously and keeps a folio under writeback): the page stays in the
// swap cache, clean, at the inactive tail, so a fault before a later reclaim frees it is a
// minor swap-cache hit (R11.6, R9.2). Direct reclaim needs the frame now: freed at once.
// true if freed.
function swap_pageout(pfn: u32): bool {
  if ((page_flags(pfn) & PG_dirty) != 0 && swap_count(page_private(pfn)) > 0) {
    if (swap_writepage(pfn) < 0) return false;
    if (madvPageout) {
      lru_del(pfn);
      page_clear(pfn, PG_active | PG_referenced);
      lru_add_tail(pfn);
      return false;
    }
  }
  delete_from_swap_cache(pfn);
  return true;
}

// MADV_FREE's page at reclaim (try_to_unmap_one's lazyfree case, then shrink_folio_list):
// clean and held by nothing but its mappings → every PTE goes to none (no swap entry: the
// data is dropped, the next access faults in a zero page) and the page is freed. Written
// since MADV_FREE (a dirty PTE or PG_dirty) or held otherwise → the discard is cancelled:
// swap-backed again, on the active anon list. All or nothing here; Linux may have
// discarded some PTEs of a page shared after fork before it meets the dirty one.
function shrink_lazyfree(pfn: u32): bool {
  let dirty = (page_flags(pfn) & PG_dirty) != 0;
  rmap_walk_start(pfn);
  for (let slot = rmap_walk_next(); slot != 0; slot = rmap_walk_next()) {
    if (pte_dirty(load<u64>(slot))) dirty = true;
  }
  if (dirty || has_extra_refs(pfn)) {
    if (dirty) page_set(pfn, PG_dirty);
    lru_move(pfn, PG_swapbacked | PG_active, 0);
    return false;
  }
  get_page(pfn); // the walk below drops the mappings' references
  rmap_walk_start(pfn);
  for (let slot = rmap_walk_next(); slot != 0; slot = rmap_walk_next()) {
    store<u64>(slot, 0);
    add_mm_counter(rmapMm, RSS_ANON, -1);
    tlb_flush_page(rmapMm, rmapVa);
    page_remove_rmap(pfn);
    put_page(pfn);
  }
  put_page(pfn); // the last reference: freed
  count(ST_PGSTEAL);
  return true;
}

// MADV_FREE over [start, end) of a private anonymous VMA (madvise_free_pte_range): swap
// entries are freed (their data is not wanted), poison markers cleared, guard markers
// kept; each present page mapped only here loses PG_dirty (and its swap-cache copy if no
// entry needs it); its PTE is made clean and old; then folio_mark_lazyfree: off the swap
// path, onto the inactive file list, where reclaim discards it unless written again.
export function lazyfree_range(mm: u32, v: u32, start: u64, end: u64): void {
  for (let va = start; va < end; va += 4096) {
    const slot = pt_walk(mm_pgd(mm), va, LEVEL_PTE, false);
    if (slot <= WALK_HUGE) { va = (va | 0x1f_ffff) - 4095; continue; } // no table: next one
    const pte = load<u64>(slot);
    if (pte == 0) continue;
    if (!pte_present(pte)) {
      if (is_swap_pte(pte) && !is_pte_marker(pte)) {
        store<u64>(slot, 0);
        add_mm_counter(mm, RSS_SWAP, -1);
        free_swap_and_cache(pte);
      } else if (is_pte_marker(pte) && <u32>swp_offset(pte) == PTE_MARKER_POISON) {
        store<u64>(slot, 0);
      }
      continue;
    }
    const page = vm_normal_page(v, va, pte);
    if (page == NO_PAGE || (page_flags(page) & PG_anon) == 0 || folio_test_large(page)) continue;
    const f = page_flags(page);
    if ((f & (PG_swapcache | PG_dirty)) != 0) {
      if (page_mapcount(page) != 1) continue;
      if ((f & PG_swapcache) != 0) {
        folio_free_swap(page);
        if ((page_flags(page) & PG_swapcache) != 0) continue;
      }
      page_clear(page, PG_dirty);
    }
    if (pte_young(pte) || pte_dirty(pte)) {
      store<u64>(slot, pte_mkold(pte_mkclean(pte)));
      tlb_flush_page(mm, va); // a cached dirty translation would skip setting D again
    }
    folio_mark_lazyfree(page);
  }
}

// Move the oldest active pages to the inactive list, making their PTEs old so the next
// look sees only fresh references.
function shrink_active(list: u32, n: u32): void {
  for (let i: u32 = 0; i < n; i++) {
    const last = lru_last(list);
    if (last == 0) return;
    const pfn = last - 1;
    page_referenced(pfn);
    if (lockedSeen) { mlock_vma_folio(pfn); continue; }
    // To the inactive tail: it is older than anything faulted since.
    lru_del(pfn);
    page_clear(pfn, PG_active);
    lru_add_tail(pfn);
  }
}

// Scan up to `n` pages from the tail of an inactive list; returns pages freed. The
// candidates are taken first (Linux's isolation), then each is looked at if it is
// still where it was.
const BATCH: u32 = 512;
const batch: usize = memory.data(BATCH * 4);
function shrink_inactive(list: u32, n: u32, want: u32): u32 {
  let freed: u32 = 0;
  // Each page is looked at once per call: rotated pages wait for the next pass.
  const size = lru_size(list);
  if (n > size) n = size;
  while (n > 0 && freed < want) {
    let k: u32 = 0;
    let it = lru_last(list);
    while (it != 0 && k < BATCH && k < n) {
      store<u32>(batch + (<usize>k << 2), it - 1);
      it = lru_prev(it - 1);
      k++;
    }
    if (k == 0) break;
    for (let i: u32 = 0; i < k; i++) {
      const pfn = load<u32>(batch + (<usize>i << 2));
      if ((page_flags(pfn) & PG_lru) == 0 || page_lru_list(pfn) != list) continue;
      if (shrink_page(pfn)) freed++;
      if (freed >= want) break;
    }
    n -= k;
  }
  return freed;
}

// Free at least `want` frames if the lists allow. Returns frames freed. Like Linux's
// priorities, each pass looks at a larger share of the lists; the active lists are aged
// whenever they outgrow the inactive ones, so pages that were young once get a second look.
export function reclaim_pages(want: u32): u32 {
  lru_add_drain(); // shrink_inactive_list's lru_add_drain (R8.6)
  const start = nr_free_frames();
  for (let pass: u32 = 0; pass < 12 && nr_free_frames() - start < want; pass++) {
    const shift: u32 = pass < 6 ? 6 - pass : 0;
    const inactFile = lru_size(LRU_INACTIVE_FILE), actFile = lru_size(LRU_ACTIVE_FILE);
    const inactAnon = lru_size(LRU_INACTIVE_ANON), actAnon = lru_size(LRU_ACTIVE_ANON);
    if (inactFile < actFile) shrink_active(LRU_ACTIVE_FILE, ((actFile - inactFile) >> 1) + 1);
    if (inactAnon < actAnon) shrink_active(LRU_ACTIVE_ANON, ((actAnon - inactAnon) >> 1) + 1);
    const base = (want << 2) + 32;
    const fileScan = lru_size(LRU_INACTIVE_FILE) >> shift;
    shrink_inactive(LRU_INACTIVE_FILE, fileScan > base ? fileScan : base, want - (nr_free_frames() - start));
    if (nr_free_frames() - start >= want) break;
    const anonScan = lru_size(LRU_INACTIVE_ANON) >> shift;
    shrink_inactive(LRU_INACTIVE_ANON, anonScan > base ? anonScan : base, want - (nr_free_frames() - start));
  }
  return nr_free_frames() - start;
}

// MADV_PAGEOUT: reclaim the range's pages now; MADV_COLD: deactivate them.
export function pageout_range(mm: u32, v: u32, start: u64, end: u64): void { advise_range(mm, v, start, end, true); }
export function cold_range(mm: u32, v: u32, start: u64, end: u64): void { advise_range(mm, v, start, end, false); }
function advise_range(mm: u32, v: u32, start: u64, end: u64, out: bool): void {
  for (let va = start; va < end; va += 4096) {
    const slot = pt_walk(mm_pgd(mm), va, LEVEL_PTE, false);
    if (slot <= WALK_HUGE) continue;
    const pte = load<u64>(slot);
    if (!pte_present(pte)) continue;
    const page = vm_normal_page(v, va, pte);
    if (page == NO_PAGE || (page_flags(page) & PG_mlocked) != 0) continue;
    // folio_maybe_mapped_shared (MADV_PAGEOUT/COLD): a page another mapping maps too is left alone.
    if (page_mapcount(page) > 1) continue;
    lru_move(page, 0, PG_active | PG_referenced);
    if (out) {
      // Paged out as if nobody had touched it: clear the accessed bits first.
      page_referenced(page);
      if (!lockedSeen) {
        madvPageout = true;
        shrink_page(page);
        madvPageout = false;
      }
    }
  }
}

export function reclaim_init(): void {
  // The one hook left that a direct import cannot replace: the allocator (phys.ts) calls
  // reclaim when it finds no free frame, and reclaim (this file) allocates and frees
  // through phys.ts: phys -> reclaim -> phys would be a cycle (Linux's page_alloc.c and
  // vmscan.c call each other the same way).
  set_direct_reclaim(reclaim_pages);
}

