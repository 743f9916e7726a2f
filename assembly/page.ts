// struct page: one 32-byte record per RAM frame (the memmap), its flags and page states.
//
// Layout (little-endian, at gMemmapBase + pfn * 32):
//   +0  u32 flags     PG_* bits 0..24 below;
//                     28..31 vpn bits 32..35 (anon) or folio order (large folio head)
//   +4  i32 refcount  references: page cache, each mapping, pins, the allocator's own
//   +8  i32 mapcount  PTEs (and PMDs) that map this frame, across all address spaces
//   +12 u32 mapping   file id for page cache, anon_vma id for anonymous pages
//   +16 u32 index     page index in the file (bits 0..31; bits 32..63 in the page_ext
//                     array below); for anon pages the low 32 bits of the vpn
//   +20 u32 private   buddy order / swap slot / pin count (by PG_* state)
//   +24 u32 lru_next  pfn + 1 of the next page on a list (0 = none)
//   +28 u32 lru_prev  pfn + 1 of the previous page (0 = none)

import { gMemmapBase, gNrFrames } from "./config";

// page_ext: one u32 per frame beside the memmap (Linux's page_ext is such a side array),
// the page-cache index's bits 32..63. struct page stays 32 bytes (DESIGN: Linear memory)
// while a file page index reaches 2^51 (byte offsets up to 2^63: x86-64's MAX_LFS_FILESIZE;
// a 47-bit shmem VMA alone spans 2^35 pages). Only page-cache code reads it, never the
// anonymous fault path.
let pageExt: usize = 0;
export const PAGE_EXT_SIZE: u32 = 4;
export function page_ext_init(base: usize): void { pageExt = base; }

export const STRUCT_PAGE_SIZE: u32 = 32;

// ---- PG_* flags ----
export const PG_locked: u32 = 1 << 0;
export const PG_uptodate: u32 = 1 << 1;
export const PG_dirty: u32 = 1 << 2;
export const PG_lru: u32 = 1 << 3;
export const PG_active: u32 = 1 << 4;
export const PG_referenced: u32 = 1 << 5;
export const PG_anon: u32 = 1 << 6;
export const PG_anon_exclusive: u32 = 1 << 7;
export const PG_swapcache: u32 = 1 << 8;
export const PG_reserved: u32 = 1 << 9;
export const PG_buddy: u32 = 1 << 10; // head of a free buddy block
export const PG_head: u32 = 1 << 11; // head of an allocated block; order in `private`
export const PG_pgtable: u32 = 1 << 12;
export const PG_readahead: u32 = 1 << 13;
export const PG_writeback: u32 = 1 << 14;
export const PG_mlocked: u32 = 1 << 15;
export const PG_unevictable: u32 = 1 << 16;
export const PG_workingset: u32 = 1 << 17;
export const PG_hwpoison: u32 = 1 << 18;
export const PG_pinned: u32 = 1 << 19; // has FOLL_PIN references (count in `private`)
export const PG_tail: u32 = 1 << 20; // a tail page of a large folio; head pfn in `private`
export const PG_swapbacked: u32 = 1 << 22; // anon or shmem: reclaimed to swap, not to a file
export const PG_pcp: u32 = 1 << 24; // a free frame on the per-cpu list (with PG_buddy, order 0)
export const PG_user: u32 = 1 << 23; // a user page: its allocation order is 0 or its folio order
export const PG_large: u32 = 1 << 21; // head of a large page-cache folio; order in 28..31
// Buffers attached and all uptodate, the folio itself not (ext4 read only the EOF block to
// zero its tail at ftruncate, R10.2): the data is valid, read_folio needs no I/O.
export const PG_private: u32 = 1 << 25;
// Bits 28..31: anon pages keep bits 32..35 of their vpn there, large folios their order.
export const VPN_HI_SHIFT: u32 = 28;
export const FOLIO_ORDER_SHIFT: u32 = 28;

@inline export function pfn_valid(pfn: u32): bool { return pfn < gNrFrames; }
@inline export function page_addr(pfn: u32): usize {
  return gMemmapBase + (<usize>pfn << 5);
}

@inline export function page_flags(pfn: u32): u32 { return load<u32>(page_addr(pfn)); }
@inline export function set_page_flags(pfn: u32, v: u32): void { store<u32>(page_addr(pfn), v); }
@inline export function page_test(pfn: u32, f: u32): bool { return (page_flags(pfn) & f) != 0; }
@inline export function page_set(pfn: u32, f: u32): void {
  const a = page_addr(pfn);
  store<u32>(a, load<u32>(a) | f);
}
@inline export function page_clear(pfn: u32, f: u32): void {
  const a = page_addr(pfn);
  store<u32>(a, load<u32>(a) & ~f);
}

@inline export function page_ref(pfn: u32): i32 { return load<i32>(page_addr(pfn), 4); }
@inline export function set_page_ref(pfn: u32, v: i32): void { store<i32>(page_addr(pfn), v, 4); }
@inline export function get_page(pfn: u32): void {
  const a = page_addr(pfn);
  store<i32>(a, load<i32>(a, 4) + 1, 4);
}
// Drops one reference; returns the references left.
@inline export function put_page_ref(pfn: u32): i32 {
  const a = page_addr(pfn);
  const r = load<i32>(a, 4) - 1;
  store<i32>(a, r, 4);
  return r;
}

@inline export function page_mapcount(pfn: u32): i32 { return load<i32>(page_addr(pfn), 8); }
@inline export function set_page_mapcount(pfn: u32, v: i32): void { store<i32>(page_addr(pfn), v, 8); }

@inline export function page_mapping(pfn: u32): u32 { return load<u32>(page_addr(pfn), 12); }
@inline export function set_page_mapping(pfn: u32, v: u32): void { store<u32>(page_addr(pfn), v, 12); }
// The page-cache index (file page) of a page-cache page.
@inline export function page_index(pfn: u32): u64 {
  return <u64>load<u32>(page_addr(pfn), 16) | (<u64>load<u32>(pageExt + (<usize>pfn << 2)) << 32);
}
@inline export function set_page_index(pfn: u32, v: u64): void {
  store<u32>(page_addr(pfn), <u32>v, 16);
  store<u32>(pageExt + (<usize>pfn << 2), <u32>(v >> 32));
}
@inline export function page_private(pfn: u32): u32 { return load<u32>(page_addr(pfn), 20); }
@inline export function set_page_private(pfn: u32, v: u32): void { store<u32>(page_addr(pfn), v, 20); }
@inline export function page_lru_next(pfn: u32): u32 { return load<u32>(page_addr(pfn), 24); }
@inline export function set_page_lru_next(pfn: u32, v: u32): void { store<u32>(page_addr(pfn), v, 24); }
@inline export function page_lru_prev(pfn: u32): u32 { return load<u32>(page_addr(pfn), 28); }
@inline export function set_page_lru_prev(pfn: u32, v: u32): void { store<u32>(page_addr(pfn), v, 28); }

// An anonymous page remembers the virtual page it was first mapped at (all sharers map it
// at the same address: fork keeps addresses), which is what its reverse map needs.
export function set_page_anon_vpn(pfn: u32, vpn: u64): void {
  store<u32>(page_addr(pfn), <u32>vpn, 16);
  const f = page_flags(pfn) & ~(<u32>0xf << VPN_HI_SHIFT);
  set_page_flags(pfn, f | ((<u32>(vpn >> 32) & 0xf) << VPN_HI_SHIFT));
}
// A page becomes anonymous at `vpn` (rmap.ts page_add_new_anon_rmap): `flags` set, the
// vpn stored (its high bits in the flags), mapped `mapcount` times, owned by `mapping`;
// one address computation and one flags update (issue 17: every anonymous fault).
@inline export function page_set_new_anon(pfn: u32, flags: u32, mapcount: i32, mapping: u32, vpn: u64): void {
  const a = page_addr(pfn);
  store<u32>(a, (load<u32>(a) & ~(<u32>0xf << VPN_HI_SHIFT)) | flags | ((<u32>(vpn >> 32) & 0xf) << VPN_HI_SHIFT));
  store<i32>(a, mapcount, 8);
  store<u32>(a, mapping, 12);
  store<u32>(a, <u32>vpn, 16);
}
// A frame taken off the per-cpu list (phys.ts pcp_take_raw) written whole as a new page
// in one go (issue 17, t17f: allocation, page_add_new_anon_rmap and lru_add_new_anon each
// wrote parts of it): `flags` with the vpn's high bits, refcount 1, mapcount 1, `mapping`,
// the vpn's low bits as index, private 0, lru_next `lruNext`, lru_prev 0.
@inline export function page_init_new_anon(pfn: u32, flags: u32, mapping: u32, vpn: u64, lruNext: u32): void {
  const a = page_addr(pfn);
  store<u64>(a, <u64>(flags | ((<u32>(vpn >> 32) & 0xf) << VPN_HI_SHIFT)) | (<u64>1 << 32)); // flags, refcount 1
  store<u64>(a, 1 | (<u64>mapping << 32), 8); // mapcount 1, mapping
  store<u64>(a, vpn & 0xffff_ffff, 16); // index, private 0
  store<u64>(a, <u64>lruNext, 24); // lru_next, lru_prev 0
}
export function page_anon_vpn(pfn: u32): u64 {
  return (<u64>(page_flags(pfn) >>> VPN_HI_SHIFT) << 32) | <u64>load<u32>(page_addr(pfn), 16);
}

// Zero a whole record (a frame leaving the allocator starts from a clean struct page).
@inline export function page_reset(pfn: u32): void {
  memory.fill(page_addr(pfn), 0, STRUCT_PAGE_SIZE);
}

// ---- intrusive page lists through lru_next / lru_prev ----
// `head` is the address of a u32 holding the first pfn + 1 (0 = empty list).
export function plist_add(head: usize, pfn: u32): void {
  const first = load<u32>(head);
  set_page_lru_prev(pfn, 0);
  set_page_lru_next(pfn, first);
  if (first != 0) set_page_lru_prev(first - 1, pfn + 1);
  store<u32>(head, pfn + 1);
}
export function plist_del(head: usize, pfn: u32): void {
  const next = page_lru_next(pfn);
  const prev = page_lru_prev(pfn);
  if (prev != 0) set_page_lru_next(prev - 1, next);
  else store<u32>(head, next);
  if (next != 0) set_page_lru_prev(next - 1, prev);
  set_page_lru_next(pfn, 0);
  set_page_lru_prev(pfn, 0);
}
