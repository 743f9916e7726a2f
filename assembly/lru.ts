// The LRU lists (Linux's lruvec): inactive/active × anon/file, and unevictable.
// Only the lists live here; the aging and reclaim policy is reclaim.ts's.
// A page on a list has PG_lru; which list is told by PG_unevictable, PG_swapbacked
// (anonymous and shmem pages go to swap, so they sit on the anon lists) and PG_active.
// The unevictable "list" is only a count, as in Linux (nothing ever scans it): its pages
// are linked nowhere and keep their mlock_count in lru_next's room (mlock_batch.ts).

import { PG_lru, PG_active, PG_unevictable, PG_swapbacked, PG_tail, page_flags, page_set, page_clear,
  plist_add, page_lru_next, page_lru_prev, set_page_lru_next, set_page_lru_prev, page_addr } from "./page";

export const LRU_INACTIVE_ANON: u32 = 0;
export const LRU_ACTIVE_ANON: u32 = 1;
export const LRU_INACTIVE_FILE: u32 = 2;
export const LRU_ACTIVE_FILE: u32 = 3;
export const LRU_UNEVICTABLE: u32 = 4;
export const NR_LRU_LISTS: u32 = 5;

// New pages go on at the head; reclaim takes the oldest from the tail.
const heads: usize = memory.data(NR_LRU_LISTS * 4);
const tails: usize = memory.data(NR_LRU_LISTS * 4);
const sizes: usize = memory.data(NR_LRU_LISTS * 4);

@inline export function lru_head_at(list: u32): usize { return heads + (<usize>list << 2); }
@inline export function lru_first(list: u32): u32 { return load<u32>(lru_head_at(list)); } // pfn + 1
@inline export function lru_last(list: u32): u32 { return load<u32>(tails + (<usize>list << 2)); } // pfn + 1
@inline export function lru_size(list: u32): u32 { return load<u32>(sizes + (<usize>list << 2)); }
@inline function addSize(list: u32, d: i32): void {
  const a = sizes + (<usize>list << 2);
  store<u32>(a, <u32>(<i32>load<u32>(a) + d));
}

// The list a page belongs on, from its flags.
export function page_lru_list(pfn: u32): u32 {
  return lru_list_of(page_flags(pfn));
}
// The same, from the flags word `f`.
@inline function lru_list_of(f: u32): u32 {
  if ((f & PG_unevictable) != 0) return LRU_UNEVICTABLE;
  const base = (f & PG_swapbacked) != 0 ? LRU_INACTIVE_ANON : LRU_INACTIVE_FILE;
  return base + ((f & PG_active) != 0 ? 1 : 0);
}

export function lru_add(pfn: u32): void {
  // Only a folio's head sits on a list (a tail stands for its folio nowhere).
  if ((page_flags(pfn) & (PG_lru | PG_tail)) != 0) return;
  const l = page_lru_list(pfn);
  if (l == LRU_UNEVICTABLE) { addSize(l, 1); page_set(pfn, PG_lru); return; } // lru_next: the count
  if (load<u32>(lru_head_at(l)) == 0) store<u32>(tails + (<usize>l << 2), pfn + 1);
  plist_add(lru_head_at(l), pfn);
  addSize(l, 1);
  page_set(pfn, PG_lru);
}

// issue 17: a new exclusive anonymous page of a fault's direct path (fault.ts): swap-backed,
// neither active nor unevictable (its VMA is not locked), on no list yet, so lru_add would
// choose the inactive anon list; this goes there without deciding.
@inline export function lru_add_new_anon(pfn: u32): void {
  const at = lru_head_at(LRU_INACTIVE_ANON);
  if (load<u32>(at) == 0) store<u32>(tails + (<usize>LRU_INACTIVE_ANON << 2), pfn + 1);
  plist_add(at, pfn);
  addSize(LRU_INACTIVE_ANON, 1);
  page_set(pfn, PG_lru);
}

// lru_add_new_anon's list work for a page whose own record the caller writes whole (its
// lru_next the value returned, lru_prev 0, PG_lru in its flags: fault.ts new_anon_page,
// issue 17 t17f): the page linked in at the inactive anon head, the list's size.
@inline export function lru_push_new_anon(pfn: u32): u32 {
  const at = lru_head_at(LRU_INACTIVE_ANON);
  const first = load<u32>(at);
  if (first == 0) store<u32>(tails + (<usize>LRU_INACTIVE_ANON << 2), pfn + 1);
  else set_page_lru_prev(first - 1, pfn + 1);
  store<u32>(at, pfn + 1);
  addSize(LRU_INACTIVE_ANON, 1);
  return first;
}

// @inline: on every last put of a user page (issue 17). The struct page's address once,
// its flags read once, its own links cleared in one store (issue 17, t17d): the same
// stores as plist_del and page_clear.
@inline export function lru_del(pfn: u32): void {
  const a = page_addr(pfn);
  const f = load<u32>(a);
  if ((f & PG_lru) == 0) return;
  lru_unlink(pfn, a, f);
  // Its lru_next and lru_prev (an unevictable page keeps its mlock_count there).
  if (lru_list_of(f) != LRU_UNEVICTABLE) store<u64>(a, 0, 24);
  store<u32>(a, f & ~PG_lru);
}

// lru_del for a page whose record is written whole next (phys.ts pcp_push_whole): the
// neighbours, the list's ends and size, nothing of the page's own record (issue 17, t17f).
// The page's record is at `a`, its flags `f`.
@inline function lru_unlink(pfn: u32, a: usize, f: u32): void {
  if ((f & PG_lru) == 0) return;
  const l = lru_list_of(f);
  if (l != LRU_UNEVICTABLE) {
    const next = load<u32>(a, 24); // lru_next
    const prev = load<u32>(a, 28); // lru_prev
    const tailAt = tails + (<usize>l << 2);
    if (load<u32>(tailAt) == pfn + 1) store<u32>(tailAt, prev);
    if (prev != 0) set_page_lru_next(prev - 1, next);
    else store<u32>(lru_head_at(l), next);
    if (next != 0) set_page_lru_prev(next - 1, prev);
  }
  addSize(l, -1);
}

@inline export function lru_prev(pfn: u32): u32 { return page_lru_prev(pfn); }

// Add at the tail: the next page reclaim looks at (a page that already had its chance).
export function lru_add_tail(pfn: u32): void {
  if ((page_flags(pfn) & PG_lru) != 0) return;
  const l = page_lru_list(pfn);
  const tailAt = tails + (<usize>l << 2);
  const last = load<u32>(tailAt);
  if (last == 0 || l == LRU_UNEVICTABLE) {
    lru_add(pfn);
    return;
  }
  set_page_lru_prev(pfn, last);
  set_page_lru_next(pfn, 0);
  set_page_lru_next(last - 1, pfn + 1);
  store<u32>(tailAt, pfn + 1);
  addSize(l, 1);
  page_set(pfn, PG_lru);
}

// Move a page after its PG_active / PG_unevictable flags are to change: call with the
// flags to set and clear; the page is taken off its list and put on the new one.
export function lru_move(pfn: u32, set: u32, clear: u32): void {
  const on = (page_flags(pfn) & PG_lru) != 0;
  if (on) lru_del(pfn);
  page_clear(pfn, clear);
  page_set(pfn, set);
  if (on) lru_add(pfn);
}

@inline export function lru_next(pfn: u32): u32 { return page_lru_next(pfn); }

// ---- page lifetime: allocation for user pages and the last put ----
import { alloc_pages, free_pages, free_pcp_user, NO_PFN, direct_reclaim, pcp_push_whole_ok, pcp_push_whole } from "./phys";
import { count, ST_PGFREE } from "./stats";
import { PG_head, PG_user, PG_large, FOLIO_ORDER_SHIFT, set_page_flags, set_page_private,
  put_page_ref, page_private, page_ref, page_mapcount } from "./page";

// Direct reclaim for callers that found no free frame (page tables, for one). Returns
// the frames freed.
export function try_reclaim(n: u32): u32 { return direct_reclaim(n); }

// One frame for user data (not zeroed), trying direct reclaim once when none is free.
export function alloc_user_page(): u32 {
  let pfn = alloc_pages(0);
  if (pfn == NO_PFN && direct_reclaim(32) > 0) pfn = alloc_pages(0);
  if (pfn != NO_PFN) { set_page_flags(pfn, PG_head | PG_user); set_page_private(pfn, 0); }
  return pfn;
}

// 2^order frames, with the same fallback (large folios of the page cache).
//
// A large folio: the head has PG_large and the order in flags bits 28..31 (its `private`
// holds the folio's PMD mapcount, see folio_entire_mapcount); every tail has PG_user |
// PG_tail and the head's pfn in `private`. Each subpage keeps its own struct page state
// (mapping, index, uptodate, dirty, hwpoison) and its OWN refcount and mapcount: a PTE
// mapping subpage i holds a reference on subpage i, the page cache one reference on each
// subpage it indexes, and a PMD mapping one reference and one mapcount on the head. The
// folio returns to the allocator, whole, when the references of all its subpages are
// gone (put_page). Only the head sits on an LRU list. Tails start with refcount 0.
export function alloc_user_pages(order: u32): u32 {
  let pfn = alloc_pages(order);
  if (pfn == NO_PFN && direct_reclaim(32 << order) > 0) pfn = alloc_pages(order);
  if (pfn != NO_PFN) {
    set_page_flags(pfn, PG_head | PG_user | (order > 0 ? PG_large | (order << FOLIO_ORDER_SHIFT) : 0));
    set_page_private(pfn, 0);
    for (let i: u32 = 1; i < (<u32>1 << order); i++) {
      set_page_flags(pfn + i, PG_user | PG_tail);
      set_page_private(pfn + i, pfn);
    }
  }
  return pfn;
}

// ---- folios: a subpage's head, order and size ----
@inline export function folio_head(pfn: u32): u32 {
  return (page_flags(pfn) & PG_tail) != 0 ? page_private(pfn) : pfn;
}
// Order of the folio whose head is `head` (0 for a small page).
@inline export function folio_order(head: u32): u32 {
  const f = page_flags(head);
  return (f & PG_large) != 0 ? f >>> FOLIO_ORDER_SHIFT : 0;
}
@inline export function folio_nr_pages(head: u32): u32 { return <u32>1 << folio_order(head); }
@inline export function folio_test_large(pfn: u32): bool {
  return (page_flags(pfn) & (PG_large | PG_tail)) != 0;
}
// PMD mappings of a large folio (Linux's entire mapcount), kept in the head's `private`;
// they are also counted in the head's mapcount.
@inline export function folio_entire_mapcount(head: u32): i32 {
  return (page_flags(head) & PG_large) != 0 ? <i32>page_private(head) : 0;
}
@inline export function folio_add_entire_mapcount(head: u32, d: i32): void {
  set_page_private(head, <u32>(<i32>page_private(head) + d));
}
// How many times this exact page is mapped (R11.2): its PTEs, plus the PMDs of its folio
// (for the head they are in its mapcount already).
export function folio_precise_page_mapcount(pfn: u32): i32 {
  const m = page_mapcount(pfn);
  if ((page_flags(pfn) & PG_tail) == 0) return m;
  return m + folio_entire_mapcount(page_private(pfn));
}

// The last reference is gone: off the LRU, back to the allocator.
export function free_user_page(pfn: u32): void {
  lru_del(pfn);
  const f = page_flags(pfn);
  const order: u32 = (f & PG_large) != 0 ? (f >>> FOLIO_ORDER_SHIFT) : 0;
  set_page_flags(pfn, PG_head);
  set_page_private(pfn, order);
  free_pages(pfn, order);
}

// Drop a reference; frees the page (its whole folio) when it was the last.
export function put_page(pfn: u32): void {
  if (put_page_inline(pfn)) count(ST_PGFREE);
}
// put_page inlined into a loop that frees many (mmu_gather.ts tlb_finish_mmu, issue 17).
// True when the fused writer freed the page onto the per-cpu list: the caller counts that
// free (ST_PGFREE), a loop once at its end (issue 17, t17f); every other free counted itself.
@inline export function put_page_inline(pfn: u32): bool {
  const a = page_addr(pfn);
  const r = load<i32>(a, 4) - 1; // put_page_ref
  store<i32>(a, r, 4);
  if (r != 0) return false;
  const f = load<u32>(a);
  if ((f & (PG_large | PG_tail)) == 0) { // issue 17: free_user_page for order 0, inline, onto the pcp list
    if (pcp_push_whole_ok()) { // t17f: the record written once
      lru_unlink(pfn, a, f);
      pcp_push_whole(pfn, a);
      return true;
    }
    lru_del(pfn);
    free_pcp_user(pfn);
    return false;
  }
  const head = folio_head(pfn);
  const n = folio_nr_pages(head);
  for (let i: u32 = 0; i < n; i++) if (page_ref(head + i) > 0) return false;
  free_user_page(head);
  return false;
}
