// The software TLB: direct-mapped, tagged by ASID, one tag per access kind and privilege.
//
// Layout in linear memory (stable, read by the host's fast path: src/tlb-view.ts,
// src/address-space.ts load*/store*, and by user Wasm through assembly/fastpath.ts):
//   gTlbBase is 64-byte aligned; entry i (0 <= i < gTlbEntries) is at gTlbBase + i * 64:
//     +0  f64 userRead    key if a user-mode read may hit, else -1
//     +8  f64 userWrite   key if a user-mode write may hit (leaf writable AND dirty), else -1
//     +16 f64 userExec    key if a user-mode instruction fetch may hit (NX clear), else -1
//     +24 u32 pfn         the 4 KiB frame (of a large leaf: the frame of this 4 KiB page)
//     +28 u32 flags       bit 0 TLB_USER: user-accessible; bit 1 TLB_LARGE: from a 2M/1G leaf
//     +32 f64 kernRead    the same three tags for supervisor-mode accesses
//     +40 f64 kernWrite
//     +48 f64 kernExec
//     +56 u32 addend      gRamBase + pfn * 4096 - (page address mod 2^32), mod 2^32: the
//                         linear address of any byte of the page is <u32>va + addend, one
//                         add (QEMU's CPUTLBEntry addend), for Wasm code (fastpath.ts)
//     +60 (unused)
//   key  = (va & ~4095) + asid   (asid < 4096 sits in the page-offset bits; < 2^48, exact in an f64)
//   slot = (va >> 12) & (gTlbEntries - 1)
// The int32 side table, for JavaScript's hit (issue 16/17): right after the entries, at
// gTlbSide = gTlbBase + gTlbEntries * 64, 16 bytes per slot (same slot number):
//     +0  i32 userRead    key32 if the user read tag holds a page in [4096, 2^31), else
//                         TLB_SIDE_EMPTY (-2^31)
//     +4  i32 userWrite   the same for the user write tag
//     +8  i32 userExec    the same for the user exec tag
//     +12 u32 addend      a copy of the entry's addend
//   key32 = (va & ~4095) | asid: a positive int32 (an AddressSpace's ASID is 1..4095)
// From JavaScript the hit of an n-byte access at va (an int32 or uint32) is one int32
// compare: side[slot(va)] == ((va + n - 1) & ~4095) | asid. It tests the page-crossing at
// the same time, as QEMU's TLB compare does: a page va + n - 1 other than va's own is the
// next page, whose entry lives in the next slot, so slot(va) never holds it (with at least
// 2 slots; with 1 the side table stays empty). Every va that is not in [0, 2^31 - n]
// makes a key that is negative, or (wrapping below 2^32) page 0, neither of which the
// side table holds; the empty tag -2^31 is no key (an AddressSpace's ASID is never 0).
// In Wasm (fastpath.ts) the same compare is made in i64 on a u64 va, the tag loaded
// sign-extended: the empty tag is then negative and no key of a va below 2^63 is, for any
// ASID. Pages 0 and from 2^31 up hit through the f64 tags. tlb_fill* and invalidate write
// both tables; tlb_side_check proves they agree.
// A hit is: tag[access] == key, then pa = pfn * 4096 + (va & 4095). A user hit reads only
// the user tags, which stay -1 for a supervisor-only page, so the hit path tests no flags.
// Why this shape (measured, issue 16): from JavaScript the key is `va + (asid - (va & 4095))`
// with no multiply, floor or flag load, and a non-integer, negative, too-large or non-number
// address can never equal a key (keys are integers in [0, 2^48)), so the caller's range
// check can wait for the miss path. Device (MMIO) pages are never entered.
// Entries die only through the tlb_flush_* functions (QEMU's rule, and Linux's: lowering
// or removing a permission flushes before the frame can be reused). Each of them bumps
// gTlbGen, whether or not the TLB held the page: a translation copied out of the TLB (an
// interpreter's current instruction page, fastpath.ts mmu_exec_page) stays exact while
// gTlbGen is unchanged. A fill that evicts an entry does not bump it: the evicted
// translation is still what the page tables say.

import { PAGE_SHIFT, gRamBase } from "./config";
import { count, count_n, inv_report, INV_TLB_STALE, ST_TLB_FLUSH_PAGE, ST_TLB_FLUSH_RANGE, ST_TLB_FLUSH_ASID,
  ST_TLB_FLUSH_ALL, ST_TLB_ENTRIES_FLUSHED } from "./stats";

export const TLB_ENTRY_SIZE: u32 = 64;
export const TLB_ENTRY_SHIFT: u32 = 6;
export const TLB_USER: u32 = 1;
export const TLB_LARGE: u32 = 2;
export const ACCESS_READ: u32 = 0;
export const ACCESS_WRITE: u32 = 1;
export const ACCESS_EXEC: u32 = 2;
export const MAX_ASID: u32 = 4096;
// Byte offsets in an entry.
export const TLB_PFN: u32 = 24;
export const TLB_FLAGS: u32 = 28;
export const TLB_KERN: u32 = 32;
export const TLB_ADDEND: u32 = 56;
// The side table (above): bytes per slot, and its fields.
export const TLB_SIDE_SIZE: u32 = 16;
export const TLB_SIDE_ADDEND: u32 = 12;
export const TLB_SIDE_SHIFT: u32 = 4;
export const TLB_SIDE_EMPTY: i32 = i32.MIN_VALUE;

// Bumped by every range, ASID and global flush and by every freed page table: the walker's
// paging-structure cache (mmu.ts) holds upper-level entries only while it is unchanged
// (SDM 4.10.4: the flushes that invalidate TLB entries invalidate those caches too).
export let gWalkGen: u32 = 0;
@inline export function walk_gen_bump(): void { gWalkGen++; }

export let gTlbBase: usize = 0;
export let gTlbEntries: u32 = 0;
export let gTlbMask: u32 = 0;
// Bumped by every flush (see above); wraps, compared only for equality.
export let gTlbGen: u32 = 0;
export let gTlbSide: usize = 0;
// (gTlbEntries - 1) << TLB_SIDE_SHIFT: the side slot of va is gTlbSide + ((va >> 8) & this).
export let gTlbSideMask: u32 = 0;
// The pages the side table holds are those with va - 4096 below this: [4096, 2^31), none
// with one slot (tlb_key32; one compare per fill, issue 17 t17d).
let gSideLimit: u64 = 0;
// The page-table root each ASID was last filled from, so a check can re-walk entries.
const asidRoot: usize = memory.data(MAX_ASID * 4);

// Reserve the TLB (entries must be a power of two, checked by the caller).
export function tlb_init(entries: u32): void {
  // The entries, then the side table (src/core-memory.ts mirrors this size).
  const raw = heap.alloc(<usize>entries * (TLB_ENTRY_SIZE + TLB_SIDE_SIZE) + TLB_ENTRY_SIZE);
  gTlbBase = (raw + TLB_ENTRY_SIZE - 1) & ~(<usize>TLB_ENTRY_SIZE - 1);
  gTlbSide = gTlbBase + <usize>entries * TLB_ENTRY_SIZE;
  gTlbEntries = entries;
  gTlbMask = entries - 1;
  gTlbSideMask = gTlbMask << TLB_SIDE_SHIFT;
  gSideLimit = entries > 1 ? 0x80000000 - 4096 : 0;
  gTlbGen++;
  for (let i: u32 = 0; i < entries; i++) invalidate(entryAddr(i));
  memory.fill(asidRoot, 0, MAX_ASID * 4);
}

@inline export function tlb_key(asid: u32, va: u64): f64 {
  return <f64>((va & ~(<u64>0xfff)) | <u64>(asid & (MAX_ASID - 1)));
}
// The key32 of a page (side table); TLB_SIDE_EMPTY for page 0, from 2^31 up and with one slot.
@inline export function tlb_key32(asid: u32, va: u64): i32 {
  return va - 4096 < gSideLimit ? <i32>((<u32>va & ~(<u32>0xfff)) | (asid & (MAX_ASID - 1))) : TLB_SIDE_EMPTY;
}
@inline export function entryAddr(i: u32): usize { return gTlbBase + (<usize>i << TLB_ENTRY_SHIFT); }
@inline export function slotAddr(va: u64): usize { return entryAddr(<u32>(va >> PAGE_SHIFT) & gTlbMask); }
// The side-table slot of entry `e`.
@inline export function sideAddr(e: usize): usize { return gTlbSide + ((e - gTlbBase) >> 2); }
// The side-table slot of slot number `i`.
@inline function sideSlot(i: u32): usize { return gTlbSide + (<usize>i << TLB_SIDE_SHIFT); }
@inline function invalidate(e: usize): void {
  invalidate_at(e, sideAddr(e));
}
// invalidate, the side slot `s` given.
@inline function invalidate_at(e: usize, s: usize): void {
  store<i64>(s, (<i64>TLB_SIDE_EMPTY << 32) | <i64><u32>TLB_SIDE_EMPTY); // userRead and userWrite
  store<i32>(s, TLB_SIDE_EMPTY, 8);
  store<f64>(e, -1.0);
  store<f64>(e, -1.0, 8);
  store<f64>(e, -1.0, 16);
  store<f64>(e, -1.0, TLB_KERN);
  store<f64>(e, -1.0, TLB_KERN + 8);
  store<f64>(e, -1.0, TLB_KERN + 16);
}

// The hit path: the pfn for (asid, va, access) or -1 on a miss.
@inline export function tlb_lookup(asid: u32, va: u64, access: u32, user: bool): i64 {
  const e = slotAddr(va);
  const tag = e + (user ? 0 : <usize>TLB_KERN) + (<usize>access << 3);
  if (load<f64>(tag) != tlb_key(asid, va)) return -1;
  return <i64>load<u32>(e, TLB_PFN);
}

// Enter a translation; `rd`/`wr`/`ex` say which tags the walk allows, `flags` & TLB_USER
// whether user-mode accesses may use it.
export function tlb_fill(asid: u32, root: u32, va: u64, pfn: u32, flags: u32,
                         rd: bool, wr: bool, ex: bool): void {
  const i = <u32>(va >> PAGE_SHIFT) & gTlbMask;
  const e = entryAddr(i);
  const key = tlb_key(asid, va);
  const u = (flags & TLB_USER) != 0;
  store<f64>(e, rd && u ? key : -1.0);
  store<f64>(e, wr && u ? key : -1.0, 8);
  store<f64>(e, ex && u ? key : -1.0, 16);
  store<u64>(e, <u64>pfn | (<u64>flags << 32), TLB_PFN); // pfn and flags in one store
  const addend = tlb_addend(va, pfn);
  store<u32>(e, addend, TLB_ADDEND);
  side_fill(sideSlot(i), u ? tlb_key32(asid, va) : TLB_SIDE_EMPTY, rd, wr, ex, addend);
  store<f64>(e, rd ? key : -1.0, TLB_KERN);
  store<f64>(e, wr ? key : -1.0, TLB_KERN + 8);
  store<f64>(e, ex ? key : -1.0, TLB_KERN + 16);
  tlb_note_root(asid, root);
}

// tlb_fill for a user 4 KiB leaf, inlined into a bulk access's run (uaccess.ts touch_run,
// issue 17): the same stores as tlb_fill(asid, root, va, pfn, TLB_USER, true, wr, ex).
@inline export function tlb_fill_inline(asid: u32, root: u32, va: u64, pfn: u32, wr: bool, ex: bool): void {
  tlb_fill_key(va, tlb_key(asid, va), pfn, wr, ex);
  tlb_note_root(asid, root);
}
// The entry stores of tlb_fill_inline, `key` being tlb_key(asid, va) (a run keeps it as a
// running value); the run records its root once with tlb_note_root. Issue 17 (t17d): the
// entry's and the side slot's addresses from the slot number, pfn and flags in one store,
// the side slot in two, and key32 from the key's low bits (key_low32) without an f64 to
// integer conversion.
@inline export function tlb_fill_key(va: u64, key: f64, pfn: u32, wr: bool, ex: bool): void {
  const i = <u32>(va >> PAGE_SHIFT) & gTlbMask;
  const e = entryAddr(i);
  const wk = wr ? key : -1.0;
  const xk = ex ? key : -1.0;
  store<f64>(e, key);
  store<f64>(e, wk, 8);
  store<f64>(e, xk, 16);
  store<u64>(e, <u64>pfn | (<u64>TLB_USER << 32), TLB_PFN);
  const addend = tlb_addend(va, pfn);
  store<u32>(e, addend, TLB_ADDEND);
  const k32 = va - 4096 < gSideLimit ? key_low32(key) : TLB_SIDE_EMPTY;
  side_fill(sideSlot(i), k32, true, wr, ex, addend);
  store<f64>(e, key, TLB_KERN);
  store<f64>(e, wk, TLB_KERN + 8);
  store<f64>(e, xk, TLB_KERN + 16);
}
// The low 32 bits of a key (an integer below 2^48): adding 2^52 puts it, exactly, in the
// f64's mantissa bits.
@inline function key_low32(key: f64): i32 {
  return <i32>reinterpret<u64>(key + 4503599627370496.0);
}
// The side-table slot `s` of a filled user entry whose key32 is `k32` (TLB_SIDE_EMPTY: none):
// userRead and userWrite in one i64 store, userExec and the addend in another.
@inline function side_fill(s: usize, k32: i32, rd: bool, wr: bool, ex: bool, addend: u32): void {
  const r: u32 = <u32>(rd ? k32 : TLB_SIDE_EMPTY);
  const w: u32 = <u32>(wr ? k32 : TLB_SIDE_EMPTY);
  const x: u32 = <u32>(ex ? k32 : TLB_SIDE_EMPTY);
  store<u64>(s, <u64>r | (<u64>w << 32));
  store<u64>(s, <u64>x | (<u64>addend << 32), 8);
}
@inline export function tlb_note_root(asid: u32, root: u32): void {
  store<u32>(asidRoot + (<usize>(asid & (MAX_ASID - 1)) << 2), root);
}

// linear = <u32>va + addend for every byte of va's page (wrapping u32 arithmetic).
@inline export function tlb_addend(va: u64, pfn: u32): u32 {
  return <u32>gRamBase + (pfn << PAGE_SHIFT) - (<u32>va & ~(<u32>0xfff));
}

export function tlb_root_of(asid: u32): u32 {
  return load<u32>(asidRoot + (<usize>(asid & (MAX_ASID - 1)) << 2));
}

// The key of whatever an entry holds (-1 if it is empty). The supervisor tags are a
// superset of the user ones: a valid entry always has its supervisor read tag.
@inline export function entry_key(e: usize): f64 {
  return load<f64>(e, TLB_KERN);
}
@inline export function key_asid(key: f64): u32 { return <u32>(<u64>key & (MAX_ASID - 1)); }
@inline export function key_va(key: f64): u64 { return <u64>key & ~(<u64>0xfff); }

// Remove one entry if it holds `key`; returns true if something was dropped.
@inline function dropIfKey(e: usize, key: f64): bool {
  if (entry_key(e) == key) {
    invalidate(e);
    return true;
  }
  return false;
}

export function tlb_flush_page(asid: u32, va: u64): void {
  // No gWalkGen bump: a one-page flush follows a leaf change (COW, write-protect), and the
  // walker's cache holds no leaf; it re-reads the PMD it caches on every use.
  count(ST_TLB_FLUSH_PAGE);
  gTlbGen++;
  if (dropIfKey(slotAddr(va), tlb_key(asid, va))) count(ST_TLB_ENTRIES_FLUSHED);
}

// Flush [va, va + npages pages) of one ASID; a range as large as the TLB scans it once.
export function tlb_flush_range(asid: u32, va: u64, npages: u64): void {
  gWalkGen++;
  count(ST_TLB_FLUSH_RANGE);
  gTlbGen++;
  const lo = va & ~(<u64>0xfff);
  // Never past the 48-bit space: keys hold page addresses below 2^48.
  const room = ((<u64>1 << 48) - lo) >> PAGE_SHIFT;
  if (npages > room) npages = room;
  let dropped: u32 = 0;
  if (npages >= <u64>gTlbEntries) {
    const hi = lo + (npages << PAGE_SHIFT);
    const a = asid & (MAX_ASID - 1);
    for (let i: u32 = 0; i < gTlbEntries; i++) {
      const e = entryAddr(i);
      const k = entry_key(e);
      if (k < 0 || key_asid(k) != a) continue;
      const p = key_va(k);
      if (p >= lo && p < hi) { invalidate(e); dropped++; }
    }
  } else {
    // The key of page p is tlb_key(asid, lo) + p * 4096 (exact: keys stay below 2^48);
    // its slot is the next one (mod the TLB's size).
    let key = tlb_key(asid, lo);
    const mask = gTlbMask;
    let i = <u32>(lo >> PAGE_SHIFT) & mask;
    const n = <u32>npages; // < gTlbEntries here
    for (let p: u32 = 0; p < n; p++, key += 4096.0) {
      const e = entryAddr(i);
      if (entry_key(e) == key) {
        invalidate_at(e, sideSlot(i));
        dropped++;
      }
      i = (i + 1) & mask;
    }
  }
  count_n(ST_TLB_ENTRIES_FLUSHED, <f64>dropped);
}

// Every side-table slot must say what its entry's user tags say (key32, or TLB_SIDE_EMPTY
// where it has none) and, where it may hit, carry the entry's addend.
export function tlb_side_check(): void {
  for (let i: u32 = 0; i < gTlbEntries; i++) {
    const e = entryAddr(i);
    const s = sideAddr(e);
    let live = false, ok = true;
    for (let a: u32 = 0; a < 3; a++) {
      const t = load<f64>(e + (<usize>a << 3));
      const want = t < 0 ? TLB_SIDE_EMPTY : tlb_key32(key_asid(t), key_va(t));
      if (load<i32>(s + (<usize>a << 2)) != want) ok = false;
      if (want != TLB_SIDE_EMPTY) live = true;
    }
    if (live && load<u32>(s, TLB_SIDE_ADDEND) != load<u32>(e, TLB_ADDEND)) ok = false;
    const k = entry_key(e);
    if (!ok) inv_report(INV_TLB_STALE, i, k < 0 ? 0 : <u64>key_asid(k));
  }
}

export function tlb_flush_asid(asid: u32): void {
  gWalkGen++;
  count(ST_TLB_FLUSH_ASID);
  gTlbGen++;
  const a = asid & (MAX_ASID - 1);
  let dropped: u32 = 0;
  for (let i: u32 = 0; i < gTlbEntries; i++) {
    const e = entryAddr(i);
    const k = entry_key(e);
    if (k >= 0 && key_asid(k) == a) { invalidate(e); dropped++; }
  }
  count_n(ST_TLB_ENTRIES_FLUSHED, <f64>dropped);
}

export function tlb_flush_all(): void {
  gWalkGen++;
  count(ST_TLB_FLUSH_ALL);
  gTlbGen++;
  let dropped: u32 = 0;
  for (let i: u32 = 0; i < gTlbEntries; i++) {
    const e = entryAddr(i);
    if (entry_key(e) >= 0) dropped++;
    invalidate(e);
  }
  count_n(ST_TLB_ENTRIES_FLUSHED, <f64>dropped);
}
