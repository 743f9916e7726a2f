// The frame arena and its buddy allocator.
//
// RAM is one 2 MiB-aligned run of linear memory reserved once at boot through the
// runtime's allocator (a raw memory.grow would collide with it: TOOLCHAIN.md). Free
// blocks of order 0..MAX_ORDER sit on per-order lists threaded through struct page;
// a free block's head has PG_buddy and its order in `private`, an allocated block's
// head has PG_head and its order, so a double or misaligned free is caught.

import {
  PAGE_SHIFT, PAGE_SIZE, PMD_SIZE, MAX_ORDER, MAX_RAM_BYTES, gRamBase, gNrFrames,
  setGeometry, setZeroPfn, gBooted, EINVAL, ENOMEM, MAX_RAM_XIP_BYTES, setSpecialGeometry,
} from "./config";
import {
  STRUCT_PAGE_SIZE, PAGE_EXT_SIZE, page_ext_init, PG_buddy, PG_pcp, PG_head, PG_reserved, PG_user, PG_large, FOLIO_ORDER_SHIFT, page_addr, page_flags, set_page_flags,
  page_private, set_page_private, set_page_ref, page_ref, page_mapcount, plist_add, plist_del,
  page_lru_next, page_lru_prev, set_page_lru_prev,
} from "./page";
import { pagestate_init, set_page_residency, RES_RESIDENT } from "./pagestate";
import { count, ST_PGALLOC, ST_PGFREE, inv_report, INV_FREE_LIST_BAD, INV_FREE_COUNT,
  INV_FREE_REFERENCED, INV_BLOCK_OVERLAP } from "./stats";

export const NO_PFN: u32 = 0xffff_ffff;

// Direct reclaim: frees up to `n` frames, returns how many. An allocation that finds
// nothing free may call it once and try again. A hook, because reclaim.ts sits far above
// this file and allocates through it (cycle phys -> reclaim -> phys); reclaim_init sets it.
function noReclaim(n: u32): u32 { return 0; }
let reclaimHook: (n: u32) => u32 = noReclaim;
let inReclaim = false;
export function set_direct_reclaim(f: (n: u32) => u32): void { reclaimHook = f; }
export function direct_reclaim(n: u32): u32 {
  if (inReclaim) return 0; // reclaim's own allocations must not recurse into it
  inReclaim = true;
  const r = reclaimHook(n);
  inReclaim = false;
  return r;
}

const freeHeads: usize = memory.data((MAX_ORDER + 1) * 4); // first pfn + 1 per order
let nrFree: u32 = 0; // frames on the buddy lists (the per-cpu list's are pcpCount: issue 17, t17f)

// Linux's per-cpu page lists: order-0 frames freed recently are kept off the buddy lists
// and handed out again first, so a fault/unmap cycle does not split and merge an order-9
// block for every page. Their head has PG_buddy | PG_pcp (free, order 0, never merged).
// LIFO: the frame freed last (the one most likely still in the caches) goes out first;
// past `pcpHigh` the coldest half, at the tail, goes back to the buddy lists (issue 17:
// what a fault touches stays small and hot; Linux's free_pcppages_bulk also frees from the
// tail). High is half of RAM, so a munmap of a large region refills the list whole.
const pcpHead: usize = memory.data(4);
let pcpTail: u32 = 0; // pfn + 1 of the last (coldest) frame, 0 when empty
let pcpCount: u32 = 0;
let pcpHigh: u32 = 0;

@inline function freeHead(order: u32): usize { return freeHeads + (<usize>order << 2); }

// Linear address of a physical address inside RAM.
@inline export function phys_to_virt(pa: u64): usize { return gRamBase + <usize>pa; }
@inline export function pfn_to_virt(pfn: u32): usize { return gRamBase + (<usize>pfn << PAGE_SHIFT); }

// Reserve RAM and the memmap, free every frame, set aside the zero page. `xipBytes` of
// execute-in-place memory follow RAM in the same reservation (no memmap for them).
// Returns 0, -EINVAL for a bad size, -ENOMEM if linear memory cannot grow.
export function boot(ramBytes: u64, xipBytes: u64 = 0): i32 {
  if (gBooted) return -EINVAL;
  if (ramBytes < PMD_SIZE || ramBytes > MAX_RAM_BYTES || (ramBytes & (PMD_SIZE - 1)) != 0) {
    return -EINVAL;
  }
  if ((xipBytes & (PMD_SIZE - 1)) != 0 || ramBytes + xipBytes > MAX_RAM_XIP_BYTES) return -EINVAL;
  const nr = <u32>(ramBytes >> PAGE_SHIFT);
  const memmapBytes = <usize>nr * STRUCT_PAGE_SIZE;
  const extBytes = <usize>nr * PAGE_EXT_SIZE;
  const need = <u64>memmapBytes + extBytes + ramBytes + xipBytes + PMD_SIZE + 4096;
  // From the allocator's top, not from the end of memory: the host may have made the
  // memory big enough already (src/core-memory.ts), and then nothing grows (issue 16).
  const top = heap.alloc(0);
  heap.free(top);
  const pagesNeeded = <i32>((<u64>top + need + 0xffff) >> 16) - memory.size();
  // Probe first so that a too-large request is an errno, not a trap.
  if (pagesNeeded > 0 && memory.grow(pagesNeeded) < 0) return -ENOMEM;
  const memmap = heap.alloc(memmapBytes);
  const ext = heap.alloc(extBytes);
  const rawRam = reserve(<usize>ramBytes + <usize>xipBytes + <usize>PMD_SIZE);
  if (rawRam == 0) return -ENOMEM;
  const ram = (rawRam + <usize>PMD_SIZE - 1) & ~(<usize>PMD_SIZE - 1);
  memory.fill(memmap, 0, memmapBytes);
  memory.fill(ext, 0, extBytes);
  page_ext_init(ext);
  setGeometry(ram, nr, memmap);
  setSpecialGeometry(<u32>(xipBytes >> PAGE_SHIFT));
  pagestate_init(nr);
  for (let o: u32 = 0; o <= MAX_ORDER; o++) store<u32>(freeHead(o), 0);
  nrFree = 0;
  store<u32>(pcpHead, 0);
  pcpTail = 0;
  pcpCount = 0;
  pcpHigh = nr >> 1;
  // Push blocks in descending pfn order so the lists hand out low frames first.
  const blk: u32 = 1 << MAX_ORDER;
  for (let pfn: i64 = <i64>nr - blk; pfn >= 0; pfn -= blk) addFree(<u32>pfn, MAX_ORDER);
  const zero = alloc_pages(0);
  memory.fill(pfn_to_virt(zero), 0, PAGE_SIZE);
  set_page_flags(zero, page_flags(zero) | PG_reserved);
  setZeroPfn(zero);
  return 0;
}

// One heap.alloc block is capped below 1 GiB (the runtime's BLOCK_MAXSIZE: a larger
// request aborts), so RAM is reserved in chunks that the stub runtime lays out back to
// back, each after a small header that RAM then overwrites (the stub never frees them).
// Returns the start of `bytes` contiguous bytes, or 0 if the chunks were not contiguous.
const RESERVE_CHUNK: usize = 256 << 20;
function reserve(bytes: usize): usize {
  let n = bytes < RESERVE_CHUNK ? bytes : RESERVE_CHUNK;
  const first = heap.alloc(n);
  let end = first + n;
  while (end - first < bytes) {
    const left = bytes - (end - first);
    n = left < RESERVE_CHUNK ? left : RESERVE_CHUNK;
    const p = heap.alloc(n);
    if (p < end || p - end > 64) return 0;
    end = p + n;
  }
  return first;
}

function addFree(pfn: u32, order: u32): void {
  set_page_flags(pfn, PG_buddy);
  set_page_private(pfn, order);
  set_page_ref(pfn, 0);
  plist_add(freeHead(order), pfn);
  nrFree += 1 << order;
}

function delFree(pfn: u32, order: u32): void {
  plist_del(freeHead(order), pfn);
  set_page_flags(pfn, 0);
  set_page_private(pfn, 0);
  nrFree -= 1 << order;
}

// Allocate 2^order contiguous frames. Returns the first pfn (its struct pages cleared,
// refcount 1 on the head) or NO_PFN. The bytes are not zeroed.
export function alloc_pages(order: u32): u32 {
  if (order > MAX_ORDER) return NO_PFN;
  if (order == 0 && pcpCount != 0) return take_pcp();
  let o = order;
  while (o <= MAX_ORDER && load<u32>(freeHead(o)) == 0) o++;
  if (o > MAX_ORDER && pcpCount != 0) { // fragmented by the pcp list: give it back, retry
    drain_pcp(pcpCount);
    o = order;
    while (o <= MAX_ORDER && load<u32>(freeHead(o)) == 0) o++;
  }
  if (o > MAX_ORDER) return NO_PFN;
  const pfn = load<u32>(freeHead(o)) - 1;
  delFree(pfn, o);
  while (o > order) { // split: the upper half goes back on the next list down
    o--;
    addFree(pfn + (1 << o), o);
  }
  memory.fill(page_addr(pfn), 0, <usize>STRUCT_PAGE_SIZE << order);
  set_page_flags(pfn, PG_head);
  set_page_private(pfn, order);
  set_page_ref(pfn, 1);
  // A frame the guest takes is made resident again (its old content is irrelevant).
  for (let i: u32 = 0; i < (<u32>1 << order); i++) set_page_residency(pfn + i, RES_RESIDENT);
  count(ST_PGALLOC);
  return pfn;
}

// The order of an allocated block: user pages (PG_user) use `private` for their own
// state, so their order is 0 or their folio order; other blocks keep it in `private`.
export function block_order(pfn: u32): u32 {
  const f = page_flags(pfn);
  if ((f & PG_user) == 0) return page_private(pfn);
  return (f & PG_large) != 0 ? f >>> FOLIO_ORDER_SHIFT : 0;
}

function take_pcp(): u32 {
  return take_pcp_head(PG_head);
}

// The hottest frame of the (non-empty) per-cpu list, made an allocated block with `flags`:
// refcount 1, private 0, off every list, resident, counted.
@inline function take_pcp_head(flags: u32): u32 {
  const pfn = pcp_pop();
  const a = page_addr(pfn);
  store<u32>(a, flags); // flags
  store<i32>(a, 1, 4); // refcount
  store<u32>(a, 0, 20); // private
  store<u64>(a, 0, 24); // lru links
  return pfn;
}

// The hottest frame off the (non-empty) per-cpu list: the list's head, tail and count,
// the frame made resident, the allocation counted; its struct page is the caller's to write.
@inline function pcp_pop(): u32 {
  const pfn = load<u32>(pcpHead) - 1;
  const next = load<u32>(page_addr(pfn), 24); // lru_next
  store<u32>(pcpHead, next);
  if (next != 0) set_page_lru_prev(next - 1, 0);
  else pcpTail = 0;
  pcpCount--;
  set_page_residency(pfn, RES_RESIDENT);
  count(ST_PGALLOC);
  return pfn;
}

// issue 17: the direct fault paths' frame (fault.ts): the frame alloc_user_page (lru.ts)
// would take, in the state it leaves (flags PG_head | PG_user, private 0, refcount 1,
// resident, counted), without its reclaim: the hottest frame of the per-cpu list made a
// user page in one go (its struct page was cleared when it was freed), else, when the list
// is empty, alloc_pages(0)'s frame from the buddy lists. NO_PFN when there is none: the
// caller then takes the general path (which reclaims).
@inline export function alloc_pcp_user(): u32 {
  if (load<u32>(pcpHead) != 0) return take_pcp_head(PG_head | PG_user);
  return alloc_buddy_user();
}
function alloc_buddy_user(): u32 {
  const pfn = alloc_pages(0);
  if (pfn != NO_PFN) {
    set_page_flags(pfn, PG_head | PG_user);
    set_page_private(pfn, 0);
  }
  return pfn;
}

// Issue 17 (t17f): one writer per side for a small user page's struct page. On (default):
// an anonymous fault's frame is taken off the per-cpu list by pcp_take_raw and its 32
// bytes written once as the new anonymous page on the LRU (fault.ts new_anon_page), and a
// last put writes the freed record whole onto the list (pcp_push_whole, lru.ts
// put_page_inline) instead of clearing it and writing it again; off: the writers before
// (tests compare both: index.ts mmu_set_fused_pages).
export let gFusedPages = true;
export function set_fused_pages(on: bool): void { gFusedPages = on; }

// The hottest frame of the per-cpu list off the list (the list, the free counts, resident,
// counted: take_pcp_head's work) with its struct page left to the caller, who writes all
// of it (its record is the cleared one pcp_push_whole / pcp_push left, apart from the
// list's flags and link). NO_PFN when the list is empty or the fused writers are off.
@inline export function pcp_take_raw(): u32 {
  if (load<u32>(pcpHead) == 0 || !gFusedPages) return NO_PFN;
  return pcp_pop();
}

// The fused free (lru.ts put_page_inline) may write the record whole: a per-cpu list
// exists and the fused writers are on.
@inline export function pcp_push_whole_ok(): bool { return pcpHigh != 0 && gFusedPages; }

// free_pcp_user's clear_struct_page + pcp_push in one writer: the record (at `a`) zeroed
// except the list's flags and its link to the old head, written in four stores (issue 17,
// t17f). The caller counts the free (ST_PGFREE; tlb_finish_mmu once per batch).
@inline export function pcp_push_whole(pfn: u32, a: usize): void {
  const first = load<u32>(pcpHead);
  store<u64>(a, <u64>(PG_buddy | PG_pcp)); // flags; refcount 0
  store<u64>(a, 0, 8); // mapcount, mapping
  store<u64>(a, 0, 16); // index, private
  store<u64>(a, <u64>first, 24); // lru_next = the old head, lru_prev 0
  if (first != 0) set_page_lru_prev(first - 1, pfn + 1);
  store<u32>(pcpHead, pfn + 1);
  pcp_pushed(pfn);
}

// issue 17: the last put of an order-0 user page that is off the LRU (lru.ts put_page):
// what free_user_page + free_pages(pfn, 0) do, without their checks (the caller held the
// last reference of a page it allocated), onto the head of the per-cpu list (LIFO: hot
// frames are reused first).
export function free_pcp_user(pfn: u32): void {
  if (pcpHigh == 0) { // no per-cpu list: the plain buddy free
    set_page_flags(pfn, PG_head);
    set_page_private(pfn, 0);
    free_pages(pfn, 0);
    return;
  }
  clear_struct_page(pfn);
  count(ST_PGFREE);
  pcp_push(pfn);
}

// A freed order-0 frame goes on the per-cpu list's hot end (LIFO: reused first); past the
// high mark the coldest half goes back to the buddy lists.
@inline function pcp_push(pfn: u32): void {
  set_page_flags(pfn, PG_buddy | PG_pcp);
  plist_add(pcpHead, pfn);
  pcp_pushed(pfn);
}
// After `pfn` went on the list's head: the tail if the list was empty, the count; past the
// high mark the coldest half goes back to the buddy lists.
@inline function pcp_pushed(pfn: u32): void {
  if (pcpTail == 0) pcpTail = pfn + 1;
  pcpCount++;
  if (pcpCount > pcpHigh) drain_pcp(pcpHigh >> 1);
}

// Move the `n` coldest frames (from the tail) of the pcp list back to the buddy lists
// (merging as they go).
function drain_pcp(n: u32): void {
  for (let i: u32 = 0; i < n && pcpCount != 0; i++) {
    const pfn = pcpTail - 1;
    pcpTail = page_lru_prev(pfn);
    plist_del(pcpHead, pfn);
    pcpCount--;
    set_page_flags(pfn, 0);
    merge_free(pfn, 0);
  }
}

// One struct page (STRUCT_PAGE_SIZE = 32 bytes) zeroed by four stores: a memory.fill of
// a non-constant size is a call out of the engine.
@inline function clear_struct_page(pfn: u32): void {
  const a = page_addr(pfn);
  store<u64>(a, 0);
  store<u64>(a, 0, 8);
  store<u64>(a, 0, 16);
  store<u64>(a, 0, 24);
}

// Return a block to the allocator, merging with free buddies. Returns 0, or -EINVAL for a
// pfn that is not the head of an allocated block of that order (double free included).
export function free_pages(pfn: u32, order: u32): i32 {
  if (pfn >= gNrFrames || order > MAX_ORDER || (pfn & ((1 << order) - 1)) != 0) return -EINVAL;
  const f = page_flags(pfn);
  if ((f & PG_head) == 0 || (f & (PG_buddy | PG_reserved)) != 0 || block_order(pfn) != order) {
    return -EINVAL;
  }
  if (order == 0) clear_struct_page(pfn); // issue 17: no memory.fill call per freed page
  else memory.fill(page_addr(pfn), 0, <usize>STRUCT_PAGE_SIZE << order);
  count(ST_PGFREE);
  if (order == 0 && pcpHigh != 0) {
    pcp_push(pfn);
    return 0;
  }
  merge_free(pfn, order);
  return 0;
}

function merge_free(pfn: u32, order: u32): void {
  let p = pfn;
  let o = order;
  while (o < MAX_ORDER) {
    const buddy = p ^ (1 << o);
    if (buddy >= gNrFrames) break;
    const bf = page_flags(buddy);
    if ((bf & PG_buddy) == 0 || (bf & PG_pcp) != 0 || page_private(buddy) != o) break;
    delFree(buddy, o);
    p = p < buddy ? p : buddy;
    o++;
  }
  addFree(p, o);
}

export function nr_free_frames(): u32 { return nrFree + pcpCount; }

// Buddy invariants: every listed block well formed, the free count right, every frame
// covered exactly once by a free or an allocated block, free frames unreferenced.
export function phys_check(): void {
  let listed: u32 = 0;
  for (let o: u32 = 0; o <= MAX_ORDER; o++) {
    let it = load<u32>(freeHead(o));
    let guard: u32 = 0;
    while (it != 0 && guard <= gNrFrames) {
      const pfn = it - 1;
      if (pfn >= gNrFrames || (page_flags(pfn) & PG_buddy) == 0 || page_private(pfn) != o ||
          (pfn & ((1 << o) - 1)) != 0) {
        inv_report(INV_FREE_LIST_BAD, pfn, o);
        break;
      }
      listed += 1 << o;
      it = page_lru_next(pfn);
      guard++;
    }
  }
  let it = load<u32>(pcpHead);
  let npcp: u32 = 0;
  while (it != 0 && npcp <= gNrFrames) {
    const pfn = it - 1;
    if (pfn >= gNrFrames || (page_flags(pfn) & (PG_buddy | PG_pcp)) != (PG_buddy | PG_pcp)) {
      inv_report(INV_FREE_LIST_BAD, pfn, 0xffff);
      break;
    }
    npcp++;
    if (page_lru_next(pfn) == 0 && pcpTail != pfn + 1) inv_report(INV_FREE_LIST_BAD, pfn, 0xfffe); // tail
    it = page_lru_next(pfn);
  }
  if (npcp == 0 && pcpTail != 0) inv_report(INV_FREE_LIST_BAD, pcpTail, 0xfffe);
  if (npcp != pcpCount) inv_report(INV_FREE_COUNT, npcp, pcpCount);
  listed += npcp;
  if (listed != nrFree + pcpCount) inv_report(INV_FREE_COUNT, listed, nrFree + pcpCount);
  let pfn: u32 = 0;
  while (pfn < gNrFrames) {
    const f = page_flags(pfn);
    if ((f & (PG_buddy | PG_head)) == 0) { inv_report(INV_BLOCK_OVERLAP, pfn, 0); pfn++; continue; }
    const o = (f & PG_buddy) != 0 ? page_private(pfn) : block_order(pfn);
    if (o > MAX_ORDER) { inv_report(INV_BLOCK_OVERLAP, pfn, o); pfn++; continue; }
    if ((f & PG_buddy) != 0) {
      for (let i: u32 = 0; i < (<u32>1 << o); i++) {
        const q = pfn + i;
        if (page_ref(q) != 0 || page_mapcount(q) != 0 || (i > 0 && (page_flags(q) & (PG_buddy | PG_head)) != 0)) {
          inv_report(INV_FREE_REFERENCED, q, o);
          break;
        }
      }
    }
    pfn += 1 << o;
  }
}
