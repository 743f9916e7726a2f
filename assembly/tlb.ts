// The software TLB: direct-mapped, tagged by ASID, one tag per access kind.
//
// Layout in linear memory (stable, read by the host's fast path; see src/tlb-view.ts):
//   gTlbBase is 32-byte aligned; entry i (0 <= i < gTlbEntries) is at gTlbBase + i * 32:
//     +0  f64 tagRead    key of the page if a read may hit, else -1
//     +8  f64 tagWrite   key if a write may hit (leaf writable AND dirty), else -1
//     +16 f64 tagExec    key if an instruction fetch may hit (NX clear), else -1
//     +24 u32 pfn        the 4 KiB frame (of a large leaf: the frame of this 4 KiB page)
//     +28 u32 flags      bit 0 TLB_USER: user-accessible; bit 1 TLB_LARGE: from a 2M/1G leaf
//   key = asid * 2^36 + vpn   (vpn = va >> 12, 36 bits; asid < 4096), exact in an f64
//   slot index = vpn & (gTlbEntries - 1)
// A hit is: tag[access] == key, and for a user access flags & TLB_USER. Then
// pa = pfn * 4096 + (va & 4095). Device (MMIO) pages are never entered.
// Entries die only through the tlb_flush_* functions (QEMU's rule, and Linux's: lowering
// or removing a permission flushes before the frame can be reused).

import { PAGE_SHIFT } from "./config";
import { count, count_n, ST_TLB_FLUSH_PAGE, ST_TLB_FLUSH_RANGE, ST_TLB_FLUSH_ASID,
  ST_TLB_FLUSH_ALL, ST_TLB_ENTRIES_FLUSHED } from "./stats";

export const TLB_ENTRY_SIZE: u32 = 32;
export const TLB_USER: u32 = 1;
export const TLB_LARGE: u32 = 2;
export const ACCESS_READ: u32 = 0;
export const ACCESS_WRITE: u32 = 1;
export const ACCESS_EXEC: u32 = 2;
export const MAX_ASID: u32 = 4096;
export const KEY_ASID_SCALE: f64 = 68719476736.0; // 2^36

// Bumped by every range, ASID and global flush and by every freed page table: the walker's
// paging-structure cache (mmu.ts) holds upper-level entries only while it is unchanged
// (SDM 4.10.4: the flushes that invalidate TLB entries invalidate those caches too).
export let gWalkGen: u32 = 0;
@inline export function walk_gen_bump(): void { gWalkGen++; }

export let gTlbBase: usize = 0;
export let gTlbEntries: u32 = 0;
export let gTlbMask: u32 = 0;
// The page-table root each ASID was last filled from, so a check can re-walk entries.
const asidRoot: usize = memory.data(MAX_ASID * 4);

// Reserve the TLB (entries must be a power of two, checked by the caller).
export function tlb_init(entries: u32): void {
  const raw = heap.alloc(<usize>entries * TLB_ENTRY_SIZE + TLB_ENTRY_SIZE);
  gTlbBase = (raw + TLB_ENTRY_SIZE - 1) & ~(<usize>TLB_ENTRY_SIZE - 1);
  gTlbEntries = entries;
  gTlbMask = entries - 1;
  for (let i: u32 = 0; i < entries; i++) invalidate(entryAddr(i));
  memory.fill(asidRoot, 0, MAX_ASID * 4);
}

@inline export function tlb_key(asid: u32, vpn: u64): f64 {
  return <f64>asid * KEY_ASID_SCALE + <f64>vpn;
}
@inline export function entryAddr(i: u32): usize { return gTlbBase + (<usize>i << 5); }
@inline function invalidate(e: usize): void {
  store<f64>(e, -1.0);
  store<f64>(e, -1.0, 8);
  store<f64>(e, -1.0, 16);
}

// The hit path: the pfn for (asid, va, access) or -1 on a miss.
@inline export function tlb_lookup(asid: u32, va: u64, access: u32, user: bool): i64 {
  const vpn = va >> PAGE_SHIFT;
  const e = entryAddr(<u32>vpn & gTlbMask);
  if (load<f64>(e + (<usize>access << 3)) != tlb_key(asid, vpn)) return -1;
  if (user && (load<u32>(e, 28) & TLB_USER) == 0) return -1;
  return <i64>load<u32>(e, 24);
}

// Enter a translation; `rd`/`wr`/`ex` say which tags the walk allows.
export function tlb_fill(asid: u32, root: u32, va: u64, pfn: u32, flags: u32,
                         rd: bool, wr: bool, ex: bool): void {
  const vpn = va >> PAGE_SHIFT;
  const e = entryAddr(<u32>vpn & gTlbMask);
  const key = tlb_key(asid, vpn);
  store<f64>(e, rd ? key : -1.0);
  store<f64>(e, wr ? key : -1.0, 8);
  store<f64>(e, ex ? key : -1.0, 16);
  store<u32>(e, pfn, 24);
  store<u32>(e, flags, 28);
  store<u32>(asidRoot + (<usize>(asid & (MAX_ASID - 1)) << 2), root);
}

export function tlb_root_of(asid: u32): u32 {
  return load<u32>(asidRoot + (<usize>(asid & (MAX_ASID - 1)) << 2));
}

// Remove one entry if its tags hold `key`; returns true if something was dropped.
@inline function dropIfKey(e: usize, key: f64): bool {
  if (load<f64>(e) == key || load<f64>(e, 8) == key || load<f64>(e, 16) == key) {
    invalidate(e);
    return true;
  }
  return false;
}

// The key of whatever an entry holds (-1 if it is empty).
export function entry_key(e: usize): f64 {
  let k = load<f64>(e);
  if (k < 0) k = load<f64>(e, 8);
  if (k < 0) k = load<f64>(e, 16);
  return k;
}

export function tlb_flush_page(asid: u32, va: u64): void {
  // No gWalkGen bump: a one-page flush follows a leaf change (COW, write-protect), and the
  // walker's cache holds no leaf; it re-reads the PMD it caches on every use.
  count(ST_TLB_FLUSH_PAGE);
  const vpn = va >> PAGE_SHIFT;
  if (dropIfKey(entryAddr(<u32>vpn & gTlbMask), tlb_key(asid, vpn))) count(ST_TLB_ENTRIES_FLUSHED);
}

// Flush [va, va + npages pages) of one ASID; a range as large as the TLB scans it once.
export function tlb_flush_range(asid: u32, va: u64, npages: u64): void {
  gWalkGen++;
  count(ST_TLB_FLUSH_RANGE);
  const vpn0 = va >> PAGE_SHIFT;
  // Keys of the next ASID follow this one's last vpn: never run past it.
  const room = (<u64>1 << 36) - vpn0;
  if (npages > room) npages = room;
  let dropped: u32 = 0;
  if (npages >= <u64>gTlbEntries) {
    const lo = tlb_key(asid, vpn0);
    const hi = tlb_key(asid, vpn0 + npages);
    for (let i: u32 = 0; i < gTlbEntries; i++) {
      const e = entryAddr(i);
      const k = entry_key(e);
      if (k >= lo && k < hi) { invalidate(e); dropped++; }
    }
  } else {
    for (let p: u64 = 0; p < npages; p++) {
      const vpn = vpn0 + p;
      if (dropIfKey(entryAddr(<u32>vpn & gTlbMask), tlb_key(asid, vpn))) dropped++;
    }
  }
  count_n(ST_TLB_ENTRIES_FLUSHED, <f64>dropped);
}

export function tlb_flush_asid(asid: u32): void {
  gWalkGen++;
  count(ST_TLB_FLUSH_ASID);
  const lo = <f64>asid * KEY_ASID_SCALE;
  const hi = lo + KEY_ASID_SCALE;
  let dropped: u32 = 0;
  for (let i: u32 = 0; i < gTlbEntries; i++) {
    const e = entryAddr(i);
    const k = entry_key(e);
    if (k >= lo && k < hi) { invalidate(e); dropped++; }
  }
  count_n(ST_TLB_ENTRIES_FLUSHED, <f64>dropped);
}

export function tlb_flush_all(): void {
  gWalkGen++;
  count(ST_TLB_FLUSH_ALL);
  let dropped: u32 = 0;
  for (let i: u32 = 0; i < gTlbEntries; i++) {
    const e = entryAddr(i);
    if (entry_key(e) >= 0) dropped++;
    invalidate(e);
  }
  count_n(ST_TLB_ENTRIES_FLUSHED, <f64>dropped);
}
