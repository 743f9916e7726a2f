// Swap: slots on a host swap device, their reference counts (swap_map), the swap cache,
// and do_swap_page (R1.5, R5.6 swap entries, R9.2, R11.3, R11.6).
//
// A swapped-out anonymous page leaves a swap entry (type 0, offset = slot) in every PTE
// that mapped it. The swap cache maps a slot to the frame holding its data while both
// exist; a page in it has PG_swapcache and its slot in `private`, and the cache holds a
// reference. Slot 0 is never used.

import { PAGE_SIZE, gNrFrames } from "./config";
import { pfn_pte, pte_mkdirty, pte_mkwrite, pte_mkyoung, swp_entry, swp_offset, is_pte_marker,
  pte_swp_exclusive, pte_soft_dirty, _PAGE_SOFT_DIRTY, _PAGE_SWP_EXCLUSIVE, _PAGE_UFFD_WP,
  pte_uffd_wp, swp_type, PTE_MARKER_GUARD, PTE_MARKER_POISON } from "./pte";
import { PG_swapcache, PG_anon_exclusive, PG_uptodate, PG_dirty, PG_swapbacked, PG_anon, PG_user,
  PG_buddy, PG_lru, page_flags, page_set, page_clear, get_page, page_private, set_page_private,
  page_mapcount, page_ref } from "./page";
import { NO_PFN, pfn_to_virt } from "./phys";
import { lru_add, alloc_user_page, put_page } from "./lru";
import { VM_WRITE, VM_LOCKED, VM_SOFTDIRTY, vma_flags, vma_page_prot } from "./vma";
import { add_mm_counter, mm_pgd, RSS_ANON, RSS_SWAP } from "./mm";
import { page_add_new_anon_rmap, page_dup_rmap } from "./rmap";
import { pte_lock, pte_unlock } from "./pte_alloc";
import { mlock_vma_folio } from "./mlock_folio";
import { vmf_vma, vmf_mm, vmf_address, vmf_pte, vmf_orig_pte, vmf_flags, VM_FAULT_MAJOR,
  VM_FAULT_OOM, VM_FAULT_SIGBUS, VM_FAULT_SIGSEGV, VM_FAULT_HWPOISON, FAULT_FLAG_WRITE } from "./vmfault";
import { host_swap_write, host_swap_read, host_swap_free } from "./host";
import { count, ST_PSWPIN, ST_PSWPOUT, ST_PGMAJFAULT, inv_report, INV_SWAP } from "./stats";
import { LEVEL_PTE, WALK_HUGE, pt_walk } from "./pgtable";

let nrSlots: u32 = 0;
let swapMap: usize = 0; // u32 per slot: PTE references (swap entries)
let swapCache: usize = 0; // u32 per slot: pfn + 1 of the cached page, or 0
let nrUsed: u32 = 0;
let hint: u32 = 1;

export function swap_init(slots: u32): void {
  nrSlots = slots;
  if (slots == 0) return;
  swapMap = heap.alloc(<usize>slots * 4);
  swapCache = heap.alloc(<usize>slots * 4);
  memory.fill(swapMap, 0, <usize>slots * 4);
  memory.fill(swapCache, 0, <usize>slots * 4);
}

@inline function mapAt(slot: u32): usize { return swapMap + (<usize>slot << 2); }
@inline function cacheAt(slot: u32): usize { return swapCache + (<usize>slot << 2); }
export function swap_count(slot: u32): u32 { return load<u32>(mapAt(slot)); }
export function nr_swap_slots(): u32 { return nrSlots; }
export function nr_swap_used(): u32 { return nrUsed; }

// A free slot (1..nrSlots-1) marked in use with no references yet, or 0.
function alloc_slot(): u32 {
  if (nrSlots < 2) return 0;
  for (let i: u32 = 0; i < nrSlots - 1; i++) {
    const s = 1 + (hint - 1 + i) % (nrSlots - 1);
    if (load<u32>(mapAt(s)) == 0 && load<u32>(cacheAt(s)) == 0) {
      hint = s + 1;
      nrUsed++;
      return s;
    }
  }
  return 0;
}

function free_slot(slot: u32): void {
  host_swap_free(slot);
  nrUsed--;
}

// add_to_swap: give an anonymous (or shmem) page a slot and put it in the swap cache,
// dirty, as Linux's add_to_swap marks it: its data is not in the slot yet. false if full.
export function add_to_swap(pfn: u32): bool {
  const slot = alloc_slot();
  if (slot == 0) return false;
  page_set(pfn, PG_swapcache | PG_dirty);
  set_page_private(pfn, slot);
  get_page(pfn); // the swap cache's reference
  store<u32>(cacheAt(slot), pfn + 1);
  return true;
}

// Leave the swap cache; the slot goes too once no PTE refers to it.
export function delete_from_swap_cache(pfn: u32): void {
  const slot = page_private(pfn);
  store<u32>(cacheAt(slot), 0);
  page_clear(pfn, PG_swapcache);
  set_page_private(pfn, 0);
  if (load<u32>(mapAt(slot)) == 0) free_slot(slot);
  put_page(pfn);
}

// Write a swap-cache page to its slot. 0 or -errno.
export function swap_writepage(pfn: u32): i32 {
  const r = host_swap_write(page_private(pfn), pfn_to_virt(pfn));
  if (r == 0) {
    count(ST_PSWPOUT);
    page_clear(pfn, PG_dirty);
  }
  return r;
}

// The swap entry a PTE gets when the page it mapped goes out; keeps soft-dirty and uffd-wp.
export function make_swap_pte(pfn: u32, oldPte: u64): u64 {
  const slot = page_private(pfn);
  let e = swp_entry(0, <u64>slot);
  if ((page_flags(pfn) & PG_anon_exclusive) != 0) e |= _PAGE_SWP_EXCLUSIVE;
  if (pte_soft_dirty(oldPte) || (oldPte & 0x40) != 0) e |= _PAGE_SOFT_DIRTY;
  if (pte_uffd_wp(oldPte)) e |= _PAGE_UFFD_WP;
  store<u32>(mapAt(slot), load<u32>(mapAt(slot)) + 1);
  return e;
}

// A PTE's swap entry is zapped (munmap, DONTNEED, exit): unmap.ts.
export function free_swap_and_cache(pte: u64): void {
  swap_put(<u32>swp_offset(pte));
}

// One swap entry of `slot` (a PTE's or a shmem object's) goes; the last one frees the slot
// and the swap-cache copy nobody maps.
export function swap_put(slot: u32): void {
  if (slot == 0 || slot >= nrSlots) return;
  const c = load<u32>(mapAt(slot));
  if (c == 0) return;
  store<u32>(mapAt(slot), c - 1);
  if (c == 1) {
    const cached = load<u32>(cacheAt(slot));
    if (cached == 0) { free_slot(slot); return; }
    const pfn = cached - 1;
    // Nobody maps it and no entry refers to it: the cached copy is garbage now.
    if (page_mapcount(pfn) == 0) delete_from_swap_cache(pfn);
  }
}

// fork: one more entry refers to the slot (copy_nonpresent_pte, fork.ts).
export function swap_duplicate(pte: u64): void { swap_get(<u32>swp_offset(pte)); }

// One more swap entry refers to `slot` (a PTE's, or the shmem object's: shmem_swap.ts).
export function swap_get(slot: u32): void {
  if (slot != 0 && slot < nrSlots) store<u32>(mapAt(slot), load<u32>(mapAt(slot)) + 1);
}

// A swap-cache page leaves the cache once no swap entry refers to its slot: do_wp_page
// before reusing it (R5.3), the mmu_gather after its last unmap (free_swap_cache, R9.11).
export function folio_free_swap(pfn: u32): void {
  if (load<u32>(mapAt(page_private(pfn))) == 0) delete_from_swap_cache(pfn);
}

// Read slot's data into the swap cache (swap-in); returns the pfn or NO_PFN. `major` tells
// whether I/O was needed.
export let swapinMajor: bool = false;
export let swapinIoError: bool = false; // the last NO_PFN was the device's failure, not OOM
export function swapin_slot(slot: u32): u32 {
  swapinMajor = false;
  swapinIoError = false;
  const cached = load<u32>(cacheAt(slot));
  if (cached != 0) return cached - 1;
  const pfn = alloc_user_page();
  if (pfn == NO_PFN) return NO_PFN;
  if (host_swap_read(slot, pfn_to_virt(pfn)) < 0) { put_page(pfn); swapinIoError = true; return NO_PFN; }
  count(ST_PSWPIN);
  swapinMajor = true;
  page_set(pfn, PG_swapcache | PG_uptodate | PG_swapbacked | PG_anon);
  set_page_private(pfn, slot);
  store<u32>(cacheAt(slot), pfn + 1);
  // The allocation's reference is the swap cache's.
  lru_add(pfn);
  return pfn;
}

// do_swap_page (R1.5): map the page of a swap entry, reading it in if it is not cached
// (a major fault, R11.6); markers: guard → SIGSEGV, poison → HWPOISON, uffd-wp → none.
export function do_swap_page(): u32 {
  const orig = vmf_orig_pte();
  if (is_pte_marker(orig)) {
    const m = <u32>swp_offset(orig);
    if (m == PTE_MARKER_GUARD) return VM_FAULT_SIGSEGV;
    if (m == PTE_MARKER_POISON) return VM_FAULT_HWPOISON;
    return VM_FAULT_SIGBUS;
  }
  if (swp_type(orig) != 0) return VM_FAULT_SIGBUS;
  const slot = <u32>swp_offset(orig);
  if (slot == 0 || slot >= nrSlots || load<u32>(mapAt(slot)) == 0) return VM_FAULT_SIGBUS;
  const pfn = swapin_slot(slot);
  // A read error is SIGBUS, as Linux's do_swap_page gives for a folio that is not uptodate
  // after the I/O; only a failed allocation is OOM (found by tests/property/hostile).
  if (pfn == NO_PFN) return swapinIoError ? VM_FAULT_SIGBUS : VM_FAULT_OOM;
  const major = swapinMajor;
  if (major) count(ST_PGMAJFAULT);
  const vma = vmf_vma();
  const mm = vmf_mm();
  const addr = vmf_address();
  pte_lock();
  const slotAddr = vmf_pte();
  if (load<u64>(slotAddr) != orig) { pte_unlock(); return major ? VM_FAULT_MAJOR : 0; }
  // The page is exclusive to us if the entry said so, or if this is the last reference.
  const last = load<u32>(mapAt(slot)) == 1;
  const exclusive = pte_swp_exclusive(orig) || (last && page_mapcount(pfn) == 0);
  let pte = pte_mkyoung(pfn_pte(pfn, vma_page_prot(vma)));
  if (pte_soft_dirty(orig)) pte |= _PAGE_SOFT_DIRTY;
  if (pte_uffd_wp(orig)) pte |= _PAGE_UFFD_WP;
  // R1.5 (6.x do_swap_page): an exclusive page in a writable VMA is mapped writable even on
  // a read fault (dirty only for a write), so the next write takes no fault; not when
  // uffd-wp or soft-dirty tracking (VM_SOFTDIRTY clear, PTE not soft-dirty) wants that fault.
  const vf = vma_flags(vma);
  const sdWp = (vf & VM_SOFTDIRTY) == 0 && !pte_soft_dirty(orig);
  if (exclusive && (vf & VM_WRITE) != 0 && !pte_uffd_wp(orig) && !sdWp) {
    pte = pte_mkwrite(pte);
    if ((vmf_flags() & FAULT_FLAG_WRITE) != 0) pte = pte_mkdirty(pte);
  }
  get_page(pfn); // the PTE's reference
  if (page_mapcount(pfn) == 0) {
    page_add_new_anon_rmap(pfn, mm, vma, addr);
    if (!exclusive) page_clear(pfn, PG_anon_exclusive);
  } else {
    page_dup_rmap(pfn);
    page_clear(pfn, PG_anon_exclusive);
  }
  add_mm_counter(mm, RSS_SWAP, -1);
  add_mm_counter(mm, RSS_ANON, 1);
  store<u32>(mapAt(slot), load<u32>(mapAt(slot)) - 1);
  store<u64>(slotAddr, pte);
  pte_unlock();
  // The last entry gone: the page leaves the swap cache and its slot is freed.
  if (load<u32>(mapAt(slot)) == 0) delete_from_swap_cache(pfn);
  if ((vma_flags(vma) & VM_LOCKED) != 0) mlock_vma_folio(pfn);
  return major ? VM_FAULT_MAJOR : 0;
}

// MADV_WILLNEED on anonymous memory (R9.2): read swapped pages into the swap cache, no PTEs.
export function swapin_range(mm: u32, v: u32, start: u64, end: u64): void {
  for (let va = start; va < end; va += PAGE_SIZE) {
    const slotAddr = pt_walk(mm_pgd(mm), va, LEVEL_PTE, false);
    if (slotAddr <= WALK_HUGE) continue;
    const pte = load<u64>(slotAddr);
    if (pte == 0 || (pte & 1) != 0 || (pte & 0x100) != 0 || is_pte_marker(pte)) continue;
    const slot = <u32>swp_offset(pte);
    if (slot != 0 && slot < nrSlots) swapin_slot(slot);
  }
}

// Every slot's count equals the swap entries found; the cache agrees with its pages, both
// ways; the slots in use are the ones counted (called by check.ts mm_check).
export function swap_check(counted: usize): void {
  let used: u32 = 0;
  for (let s: u32 = 1; s < nrSlots; s++) {
    const c = load<u32>(mapAt(s));
    if (c != load<u32>(counted + (<usize>s << 2))) inv_report(INV_SWAP, s, c);
    const cached = load<u32>(cacheAt(s));
    if (c != 0 || cached != 0) used++;
    if (cached != 0) {
      const pfn = cached - 1;
      if ((page_flags(pfn) & PG_swapcache) == 0 || page_private(pfn) != s || page_ref(pfn) < 1) inv_report(INV_SWAP, s, 0xffff_ffff);
      // A copy nobody maps is kept only while an entry may fault it back (R11.6), and on an
      // LRU list, so that reclaim frees it later (MADV_PAGEOUT leaves it there).
      if (page_mapcount(pfn) == 0 && (c == 0 || (page_flags(pfn) & PG_lru) == 0)) inv_report(INV_SWAP, s, 0xffff_fffd);
    }
  }
  if (used != nrUsed) inv_report(INV_SWAP, 0, nrUsed);
  for (let pfn: u32 = 0; pfn < gNrFrames; pfn++) {
    const f = page_flags(pfn);
    if ((f & (PG_swapcache | PG_user | PG_buddy)) != (PG_swapcache | PG_user)) continue;
    const s = page_private(pfn);
    if (s == 0 || s >= nrSlots || load<u32>(cacheAt(s)) != pfn + 1) inv_report(INV_SWAP, s, 0xffff_ffff);
  }
}
