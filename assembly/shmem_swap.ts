// shmem's swap entries (R11.3, R11.6): where a page of a shmem object (shared anonymous
// memory) that reclaim wrote out now lives. Linux keeps such a swap entry in the shmem
// mapping's xarray in place of the folio (a value entry, which fault-around skips); here a
// hash table of (file, index) → swap slot beside the page cache, each entry holding one
// reference to its slot (swap.ts swap_map).
//
// shmem_writeout moves a dirty, unmapped shmem page from its object to the swap cache;
// the next fault on that index (shmem_swapin) takes it back into the object: from the swap
// cache (minor) or read from the device (major). Holes punched and objects freed drop their
// entries.

import { PG_anon, PG_dirty, PG_swapcache, get_page, page_flags, page_clear, page_mapping,
  page_index, set_page_mapping, page_private } from "./page";
import { NO_PFN } from "./phys";
import { put_page } from "./lru";
import { file_valid, file_add_dirty, pc_add_page, pc_delete, pc_lookup, mark_page_dirty } from "./mapping";
import { add_to_swap, swap_get, swap_put, swapin_slot, swapinMajor, swapinIoError,
  delete_from_swap_cache, nr_swap_slots } from "./swap";
import { inv_report, INV_SWAP } from "./stats";

// Slots of 16 bytes: file u32, swap slot u32, index u64 (page indexes are 64-bit, issue 18);
// file 0 = empty. Open addressing with
// linear probing and backward-shift deletion (as mapping.ts); grown when half full.
let table: usize = 0;
let cap: u32 = 0;
let used: u32 = 0;

@inline function at(i: u32): usize { return table + (<usize>i << 4); }
@inline function hash(f: u32, index: u64): u32 {
  let h = f * 0x9e3779b1 ^ <u32>index * 0x85ebca77 ^ <u32>(index >> 32) * 0xc2b2ae35;
  h ^= h >>> 15;
  h *= 0x2c1b3c6d;
  h ^= h >>> 13;
  return h & (cap - 1);
}

// The table position of (f, index), or -1.
function find(f: u32, index: u64): i32 {
  if (used == 0) return -1;
  let i = hash(f, index);
  for (;;) {
    const s = at(i);
    const sf = load<u32>(s);
    if (sf == 0) return -1;
    if (sf == f && load<u64>(s, 8) == index) return <i32>i;
    i = (i + 1) & (cap - 1);
  }
  return -1;
}

function put(f: u32, index: u64, slot: u32): void {
  let i = hash(f, index);
  while (load<u32>(at(i)) != 0) i = (i + 1) & (cap - 1);
  store<u32>(at(i), f);
  store<u32>(at(i), slot, 4);
  store<u64>(at(i), index, 8);
}

function grow(): void {
  const oldTable = table, oldCap = cap;
  cap = oldCap == 0 ? 64 : oldCap << 1;
  table = heap.alloc(<usize>cap << 4);
  memory.fill(table, 0, <usize>cap << 4);
  for (let i: u32 = 0; i < oldCap; i++) {
    const s = oldTable + (<usize>i << 4);
    const f = load<u32>(s);
    if (f != 0) put(f, load<u64>(s, 8), load<u32>(s, 4));
  }
  if (oldTable != 0) heap.free(oldTable);
}

function remove_at(i: u32): void {
  used--;
  let hole = i;
  let j = i;
  for (;;) {
    j = (j + 1) & (cap - 1);
    const s = at(j);
    const sf = load<u32>(s);
    if (sf == 0) break;
    const home = hash(sf, load<u64>(s, 8));
    const between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!between) {
      memory.copy(at(hole), s, 16);
      hole = j;
    }
  }
  memory.fill(at(hole), 0, 16);
}

// The swap slot holding page `index` of shmem object `f`, or 0.
export function shmem_swap_slot(f: u32, index: u64): u32 {
  const i = find(f, index);
  return i < 0 ? 0 : load<u32>(at(<u32>i), 4);
}

// shmem_writeout (R11.3): the dirty, unmapped shmem page `pfn` leaves its object for the
// swap cache, and the object keeps a swap entry instead. false when swap is full or
// absent: the page stays where it is (a kernel without swap keeps it, redirtied).
export function shmem_writeout(pfn: u32): bool {
  const f = page_mapping(pfn), index = page_index(pfn);
  if (!add_to_swap(pfn)) return false;
  const slot = page_private(pfn);
  swap_get(slot); // the object's entry
  if ((used + 1) * 2 > cap) grow();
  put(f, index, slot);
  used++;
  // Out of the page cache: its dirty count and its reference go; the swap cache holds it.
  if ((page_flags(pfn) & PG_dirty) != 0) file_add_dirty(f, -1);
  pc_delete(f, index);
  set_page_mapping(pfn, 0);
  put_page(pfn);
  return true;
}

// shmem_swapin_folio (R11.6): page `index` of `f`, which has a swap entry, comes back into
// the object from the swap cache or the device. Returns the frame (held by the page cache
// only) or NO_PFN (shmemSwapinIoError tells a device error from a failed allocation);
// shmemSwapinMajor tells whether it had to be read.
export let shmemSwapinMajor: bool = false;
export let shmemSwapinIoError: bool = false;
export function shmem_swapin(f: u32, index: u64): u32 {
  shmemSwapinMajor = false;
  shmemSwapinIoError = false;
  const i = find(f, index);
  if (i < 0) return NO_PFN;
  const slot = load<u32>(at(<u32>i), 4);
  const pfn = swapin_slot(slot);
  if (pfn == NO_PFN) { shmemSwapinIoError = swapinIoError; return NO_PFN; }
  shmemSwapinMajor = swapinMajor;
  get_page(pfn); // the page cache's reference, taken before the swap cache lets go
  remove_at(<u32>i);
  page_clear(pfn, PG_anon); // swapin_slot reads pages in as anonymous ones
  swap_put(slot); // the object's entry: its last reference keeps the cached copy (mapped by nobody)…
  if ((page_flags(pfn) & PG_swapcache) != 0) delete_from_swap_cache(pfn); // …which leaves now
  pc_add_page(f, index, pfn);
  // Linux marks the folio dirty: its only copy on disk is gone with the swap entry.
  mark_page_dirty(pfn);
  return pfn;
}

// shmem_undo_range's swap part: the entries of pages [first, last] of `f` go (a punched
// hole, or the object freed with its last mapping), and with them their slots.
export function shmem_free_swap(f: u32, first: u64, last: u64): void {
  let i: u32 = 0;
  while (used != 0 && i < cap) {
    const s = at(i);
    const idx = load<u64>(s, 8);
    if (load<u32>(s) == f && idx >= first && idx <= last) {
      const slot = load<u32>(s, 4);
      remove_at(i); // a later entry may shift into position i: look at it again
      swap_put(slot);
      continue;
    }
    i++;
  }
}

// For the invariant check (check.ts, before swap_check): each entry is one more reference
// to its slot; it names a live object and a slot, and no page caches that index.
export function shmem_swap_count(counted: usize): void {
  let n: u32 = 0;
  for (let i: u32 = 0; i < cap; i++) {
    const s = at(i);
    const f = load<u32>(s);
    if (f == 0) continue;
    n++;
    const slot = load<u32>(s, 4);
    if (!file_valid(f) || slot == 0 || slot >= nr_swap_slots() || pc_lookup(f, load<u64>(s, 8)) != NO_PFN) {
      inv_report(INV_SWAP, slot, 0xffff_fffc);
      continue;
    }
    const c = counted + (<usize>slot << 2);
    store<u32>(c, load<u32>(c) + 1);
  }
  if (n != used) inv_report(INV_SWAP, 0, 0xffff_fffb);
}
