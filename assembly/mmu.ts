// The hardware walker: x86-64 4-level translation as the SDM (vol. 3, ch. 4) describes it,
// and the TLB refill built on it.
//
// Permissions combine across levels: RW and US are ANDed, NX is ORed. A user access needs
// US at every level; a write needs RW at every level when it is a user write or CR0.WP is
// set; an instruction fetch with EFER.NXE needs NX clear at every level. A present entry
// with a reserved bit set (physical-address bits at or above MAXPHYADDR, NX without
// EFER.NXE, PS in a PML4E, bits 13..20 of a 2 MiB leaf, 13..29 of a 1 GiB leaf) is a
// reserved-bit fault. On success A is set in every entry used and D in the leaf of a
// write; a failed walk changes nothing (the SDM allows either; we pick the repeatable one).
//
// Addresses are the 48-bit linear address (bit 47 implies the sign extension). A table
// pointer outside RAM reads as a reserved-bit fault: there is no memory there to walk.

import { PAGE_SHIFT, MAXPHYADDR, gNrFrames, gRamBase, pfn_is_device } from "./config";
import { _PAGE_PRESENT, _PAGE_RW, _PAGE_USER, _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_PSE,
  _PAGE_NX } from "./pte";
import { LEVEL_PGD, LEVEL_PTE, LEVEL_PUD, slot_addr, table_index } from "./pgtable";
import { ACCESS_WRITE, ACCESS_EXEC, TLB_USER, TLB_LARGE, tlb_lookup, tlb_fill, gTlbEntries,
  entryAddr, entry_key, key_asid, key_va, tlb_root_of, tlb_side_check, TLB_PFN, TLB_FLAGS, TLB_KERN, gWalkGen,
  TLB_ADDEND, tlb_addend, tlb_fill_inline } from "./tlb";
import { page_residency, set_page_residency, RES_DISCARDED, RES_RESIDENT } from "./pagestate";
import { count, ST_WALK, ST_TLB_HIT, ST_TLB_MISS, inv_report, INV_TLB_STALE,
  INV_TLB_PERM } from "./stats";

// Walk modes (bit flags).
export const MODE_USER: u32 = 1; // CPL 3
export const MODE_WP: u32 = 2; // CR0.WP
export const MODE_NXE: u32 = 4; // EFER.NXE
export const MODE_PEEK: u32 = 8; // look only: set no A/D bits, count no walk
export const MODE_PSC: u32 = 16; // may use the paging-structure cache (the core's own tables)
// What Linux user space runs with.
export const MODE_LINUX_USER: u32 = MODE_USER | MODE_WP | MODE_NXE;

// #PF error code bits.
export const PF_PROT: u32 = 1;
export const PF_WRITE: u32 = 2;
export const PF_USER: u32 = 4;
export const PF_RSVD: u32 = 8;
export const PF_INSTR: u32 = 16;
// Not an x86 bit: the frame was discarded by the host (guest page hinting, R12.1); the
// guest must recreate its content (s390's discard fault).
export const PF_DISCARD: u32 = 0x8000;

export const WALK_OK: i32 = -1;

// Results of the last walk.
export let walkPa: u64 = 0;
export let walkPfn: u32 = 0; // the 4 KiB frame of the address
export let walkLevel: u32 = 0; // level of the leaf (1 = 4 KiB, 2 = 2 MiB, 3 = 1 GiB)
export let walkLeafSlot: usize = 0;
export let walkWritable: bool = false; // effective RW across levels
export let walkUser: bool = false; // effective US
export let walkExec: bool = false; // effective !NX (or NXE off)
export let walkDirty: bool = false; // leaf D after the walk

const slots: usize = memory.data(8 * 5);

// The paging-structure cache (SDM 4.10.3, x86's PDE cache): the PMD entry of the last walk
// that went down to a PTE table, with the permissions the levels above it gave. A walk of
// the same 2 MiB block then reads only its PTE (a bulk touch walks one table 512 times).
// Used only with MODE_PSC (user accesses to the core's own tables); valid while no flush
// and no page-table free happened (gWalkGen) and the PMD slot still holds the same entry.
let pscGen: u32 = 0xffff_ffff;
let pscRoot: u32 = 0;
let pscBlock: u64 = 0;
let pscPmdSlot: usize = 0;
let pscPmd: u64 = 0;
let pscTable: u32 = 0;
let pscAllow: u64 = 0;
let pscNx: u64 = 0;

// The PMD slot of `va` under `root` if the paging-structure cache holds it (the walk that
// just faulted went through it), else 0: the fault path then skips its own descent.
export function psc_pmd_slot(root: u32, va: u64): usize {
  if (pscGen != gWalkGen || pscRoot != root || pscBlock != va >> 21) return 0;
  return load<u64>(pscPmdSlot) == pscPmd ? pscPmdSlot : 0;
}
const PHYS_RSVD: u64 = ((<u64>1 << 52) - 1) & ~((<u64>1 << MAXPHYADDR) - 1);
// The physical-address bits a present entry must leave clear (MAXPHYADDR .. 51).
export const PHYS_RSVD_BITS: u64 = PHYS_RSVD;

// A bulk user access's run over consecutive pages (uaccess.ts touch_run, issue 17): the
// PTE table the paging-structure cache holds for `va`'s 2 MiB block under `root`, or
// 0xffffffff when it holds none (then every page takes the full path). While no fault, flush
// or table free happens, that table stays the one the hardware would walk to, and
// psc_run_allow / psc_run_nx are the permissions its upper levels give.
@inline export function psc_run_table(root: u32, va: u64): u32 {
  if (pscGen != gWalkGen || pscRoot != root || pscBlock != va >> 21 ||
      load<u64>(pscPmdSlot) != pscPmd || pscTable >= gNrFrames) return 0xffff_ffff;
  return pscTable;
}
@inline export function psc_run_allow(): u64 { return pscAllow; }
@inline export function psc_run_nx(): u64 { return pscNx; }

// Record a leaf that a run (touch_run) used as the last walk's result, as walk() would
// have left it: code that reads walk* after a bulk access sees the last page's walk.
@inline export function walk_note_user_leaf(va: u64, slot: usize, e: u64, writable: bool, exec: bool): void {
  walkPa = (e & 0x000f_ffff_ffff_f000) | (va & 0xfff);
  walkPfn = <u32>(walkPa >> PAGE_SHIFT);
  walkLevel = LEVEL_PTE;
  walkLeafSlot = slot;
  walkWritable = writable;
  walkUser = true;
  walkExec = exec;
  walkDirty = (e & _PAGE_DIRTY) != 0;
}

@inline function errorCode(access: u32, mode: u32, prot: bool, rsvd: bool): i32 {
  let c: u32 = 0;
  if (prot) c |= PF_PROT;
  if (access == ACCESS_WRITE) c |= PF_WRITE;
  if ((mode & MODE_USER) != 0) c |= PF_USER;
  if (rsvd) c |= PF_RSVD | PF_PROT;
  if (access == ACCESS_EXEC && (mode & MODE_NXE) != 0) c |= PF_INSTR;
  return <i32>c;
}

// Reserved bits of a large leaf, by level (bits 13..20 of a 2 MiB PDE, 13..29 of a 1 GiB
// PDPTE; PS itself in a PML4E). The bits every present entry reserves are in `rsvd` below.
@inline function largeReserved(e: u64, level: u32): bool {
  if (level == LEVEL_PGD) return true;
  if (level == 2) return (e & 0x1f_e000) != 0;
  return level == LEVEL_PUD && (e & 0x3fff_e000) != 0;
}

// Translate `va` for `access` (ACCESS_*) under `mode` (MODE_*), starting at the PML4 in
// frame `root`. Returns WALK_OK (results in walk*) or the #PF error code.
// The hot loop keeps permissions as bit masks (RW and US ANDed, NX ORed) and tests the
// reserved bits with one mask per walk; accessed/dirty bits are written only when they
// change, so repeated walks of the same tables leave their cache lines clean.
export function walk(root: u32, va: u64, access: u32, mode: u32): i32 {
  if ((mode & (MODE_PEEK | MODE_PSC)) == 0) { // issue 17 (t17d): the common 4-level walk first
    const r = walk4(root, va, access, mode);
    if (r != WALK_FULL) return r;
  }
  if ((mode & MODE_PEEK) == 0) count(ST_WALK);
  const rsvd: u64 = (mode & MODE_NXE) != 0 ? PHYS_RSVD : PHYS_RSVD | _PAGE_NX;
  let table = root;
  let allow: u64 = _PAGE_RW | _PAGE_USER; // ANDed across levels
  let nx: u64 = 0; // ORed across levels
  let level = LEVEL_PGD;
  let e: u64 = 0;
  let upperA: u64 = _PAGE_ACCESSED; // ANDed over the upper entries: may they be cached?
  const psc = (mode & MODE_PSC) != 0;
  const cached = psc && pscGen == gWalkGen && pscRoot == root && pscBlock == va >> 21 &&
    load<u64>(pscPmdSlot) == pscPmd;
  if (cached) {
    table = pscTable;
    allow = pscAllow;
    nx = pscNx;
    level = LEVEL_PTE;
  }
  let slot: usize = 0;
  for (;;) {
    if (table >= gNrFrames) return errorCode(access, mode, true, true);
    slot = slot_addr(table, table_index(va, level));
    store<usize>(slots + (<usize>level << 3), slot);
    e = load<u64>(slot);
    if ((e & _PAGE_PRESENT) == 0) return errorCode(access, mode, false, false);
    if ((e & rsvd) != 0) return errorCode(access, mode, true, true);
    allow &= e;
    nx |= e;
    if ((e & _PAGE_PSE) != 0 && level != LEVEL_PTE) {
      if (largeReserved(e, level)) return errorCode(access, mode, true, true);
      break;
    }
    if (level == LEVEL_PTE) break;
    table = <u32>((e & 0x000f_ffff_ffff_f000) >> PAGE_SHIFT);
    upperA &= e;
    if (level == 2 && psc && upperA != 0) { // entries with A set only: a hit sets none
      pscGen = gWalkGen;
      pscRoot = root;
      pscBlock = va >> 21;
      pscPmdSlot = slot;
      pscPmd = e;
      pscTable = table;
      pscAllow = allow;
      pscNx = nx;
    }
    level--;
  }
  const rw = (allow & _PAGE_RW) != 0;
  const us = (allow & _PAGE_USER) != 0;
  const user = (mode & MODE_USER) != 0;
  const exec = (nx & _PAGE_NX) == 0 || (mode & MODE_NXE) == 0;
  if (user && !us) return errorCode(access, mode, true, false);
  if (access == ACCESS_WRITE && !rw && (user || (mode & MODE_WP) != 0)) {
    return errorCode(access, mode, true, false);
  }
  if (access == ACCESS_EXEC && !exec) return errorCode(access, mode, true, false);

  const shift = 12 + 9 * (level - 1);
  const offMask = (<u64>1 << shift) - 1;
  walkPa = ((e & 0x000f_ffff_ffff_f000) & ~offMask) | (va & offMask);
  walkPfn = <u32>(walkPa >> PAGE_SHIFT);
  walkLevel = level;
  walkLeafSlot = slot; // the leaf's (the last level read)
  walkWritable = rw;
  walkUser = us;
  walkExec = exec;
  if (walkPfn < gNrFrames) {
    const res = page_residency(walkPfn);
    if (res != RES_RESIDENT) {
      if (res == RES_DISCARDED) return errorCode(access, mode, true, false) | <i32>PF_DISCARD;
      if ((mode & MODE_PEEK) == 0) set_page_residency(walkPfn, RES_RESIDENT);
    }
  }
  if ((mode & MODE_PEEK) == 0) {
    // Set A in the upper entries used: only when one lacks it (upperA: their A bits ANDed;
    // issue 17, t17d: the common walk of tables used before skips the loop).
    if (!cached && upperA == 0) for (let l = LEVEL_PGD; l > level; l--) {
      const s = load<usize>(slots + (<usize>l << 3));
      const v = load<u64>(s);
      if ((v & _PAGE_ACCESSED) == 0) store<u64>(s, v | _PAGE_ACCESSED);
    }
    const set: u64 = access == ACCESS_WRITE ? _PAGE_ACCESSED | _PAGE_DIRTY : _PAGE_ACCESSED;
    if ((e & set) != set) { e |= set; store<u64>(walkLeafSlot, e); }
  }
  walkDirty = (e & _PAGE_DIRTY) != 0;
  return WALK_OK;
}

// walk()'s common case in straight code (issue 17, t17d: the TLB miss of an emulator's own
// tables, MODE_PSC and MODE_PEEK off): four present levels, no reserved bit, no large leaf,
// the access allowed, a resident or non-RAM frame. It returns WALK_OK with walk()'s exact
// results and A/D updates, or WALK_FULL with nothing changed or counted, and walk() then
// decides the address as before (faults, large leaves, residency changes).
@inline function walk4(root: u32, va: u64, access: u32, mode: u32): i32 {
  const rsvd: u64 = (mode & MODE_NXE) != 0 ? PHYS_RSVD : PHYS_RSVD | _PAGE_NX;
  // An upper entry must be present with no reserved bit and no PS (reserved in a PML4E, a
  // large leaf below): one compare against `upper`. Each table's byte address (pfn << 12)
  // is the entry's address bits as they are, checked against RAM's end in bytes.
  const upper: u64 = _PAGE_PRESENT | rsvd | _PAGE_PSE;
  const PFN: u64 = 0x000f_ffff_ffff_f000;
  const end: u64 = <u64>gNrFrames << PAGE_SHIFT;
  const ram = gRamBase;
  if (root >= gNrFrames) return WALK_FULL;
  const s4 = ram + (<usize>root << PAGE_SHIFT) + <usize>((va >> 36) & 0xff8);
  const e4 = load<u64>(s4);
  const a3 = e4 & PFN;
  if ((e4 & upper) != _PAGE_PRESENT || a3 >= end) return WALK_FULL;
  const s3 = ram + <usize>a3 + <usize>((va >> 27) & 0xff8);
  const e3 = load<u64>(s3);
  const a2 = e3 & PFN;
  if ((e3 & upper) != _PAGE_PRESENT || a2 >= end) return WALK_FULL;
  const s2 = ram + <usize>a2 + <usize>((va >> 18) & 0xff8);
  const e2 = load<u64>(s2);
  const a1 = e2 & PFN;
  if ((e2 & upper) != _PAGE_PRESENT || a1 >= end) return WALK_FULL;
  const s1 = ram + <usize>a1 + <usize>((va >> 9) & 0xff8);
  let e = load<u64>(s1);
  if ((e & (_PAGE_PRESENT | rsvd)) != _PAGE_PRESENT) return WALK_FULL;
  const allow = e4 & e3 & e2 & e;
  // Without EFER.NXE the NX bit is reserved (rejected above), so `nx` is 0 then.
  const nx = (e4 | e3 | e2 | e) & _PAGE_NX;
  // The bits every level must allow: US for a user access, RW for a write by the user or
  // under CR0.WP; an instruction fetch needs NX clear everywhere.
  const user = (mode & MODE_USER) != 0;
  let need: u64 = user ? _PAGE_USER : 0;
  if (access == ACCESS_WRITE && (user || (mode & MODE_WP) != 0)) need |= _PAGE_RW;
  if ((allow & need) != need || (access == ACCESS_EXEC && nx != 0)) return WALK_FULL;
  const pfn = <u32>((e & PFN) >> PAGE_SHIFT);
  if (page_residency(pfn) != RES_RESIDENT) return WALK_FULL;
  count(ST_WALK);
  walkPa = (e & PFN) | (va & 0xfff);
  walkPfn = pfn;
  walkLevel = LEVEL_PTE;
  walkLeafSlot = s1;
  walkWritable = (allow & _PAGE_RW) != 0;
  walkUser = (allow & _PAGE_USER) != 0;
  walkExec = nx == 0;
  if ((e4 & e3 & e2 & _PAGE_ACCESSED) == 0) { // A in the upper entries, top down, as walk()
    if ((e4 & _PAGE_ACCESSED) == 0) store<u64>(s4, e4 | _PAGE_ACCESSED);
    if ((e3 & _PAGE_ACCESSED) == 0) store<u64>(s3, e3 | _PAGE_ACCESSED);
    if ((e2 & _PAGE_ACCESSED) == 0) store<u64>(s2, e2 | _PAGE_ACCESSED);
  }
  const set: u64 = access == ACCESS_WRITE ? _PAGE_ACCESSED | _PAGE_DIRTY : _PAGE_ACCESSED;
  if ((e & set) != set) { e |= set; store<u64>(s1, e); }
  walkDirty = (e & _PAGE_DIRTY) != 0;
  return WALK_OK;
}

// The #PF error code of a user access (MODE_LINUX_USER) to a not-present leaf.
@inline export function user_pf_not_present(access: u32): i32 {
  return errorCode(access, MODE_LINUX_USER, false, false);
}
// ... and to a present leaf that does not allow it (a write to a read-only page).
@inline export function user_pf_prot(access: u32): i32 {
  return errorCode(access, MODE_LINUX_USER, true, false);
}

// walk_user_psc's answer when the paging-structure cache does not cover the address or
// the leaf needs the full walk's checks. Not a #PF error code (those are below 0x10000).
export const WALK_FULL: i32 = -2;

// A user access (MODE_LINUX_USER) whose 2 MiB block the paging-structure cache holds:
// read only the leaf of the cached PTE table, as walk() would (issue 17: a bulk touch
// over pages fault-around just mapped, and the fault of a none PTE). A none leaf is the
// walk's not-present fault (counted as a walk, like walk()); a present, resident 4 KiB
// leaf that allows the access is WALK_OK; a user leaf without RW under a write is the
// walk's protection fault; anything else returns WALK_FULL, nothing
// changed or counted, and the caller runs walk(), which decides it as before.
@inline export function walk_user_psc(root: u32, va: u64, access: u32): i32 {
  if (pscGen != gWalkGen || pscRoot != root || pscBlock != va >> 21 ||
      load<u64>(pscPmdSlot) != pscPmd || pscTable >= gNrFrames) return WALK_FULL;
  const slot = slot_addr(pscTable, table_index(va, LEVEL_PTE));
  let e = load<u64>(slot);
  if ((e & _PAGE_PRESENT) == 0) {
    count(ST_WALK);
    return errorCode(access, MODE_LINUX_USER, false, false);
  }
  if ((e & PHYS_RSVD) != 0) return WALK_FULL;
  const allow = pscAllow & e;
  const nx = pscNx | e;
  if ((allow & _PAGE_USER) == 0) return WALK_FULL;
  if (access == ACCESS_WRITE && (allow & _PAGE_RW) == 0) {
    // walk()'s write-protect fault, decided before it looks at residency (issue 17: COW
    // and write-protect-reuse faults paid a second, full walk to learn this).
    count(ST_WALK);
    return errorCode(access, MODE_LINUX_USER, true, false);
  }
  if (access == ACCESS_EXEC && (nx & _PAGE_NX) != 0) return WALK_FULL;
  const pfn = <u32>((e & 0x000f_ffff_ffff_f000) >> PAGE_SHIFT);
  if (page_residency(pfn) != RES_RESIDENT) return WALK_FULL;
  count(ST_WALK);
  const set: u64 = access == ACCESS_WRITE ? _PAGE_ACCESSED | _PAGE_DIRTY : _PAGE_ACCESSED;
  if ((e & set) != set) { e |= set; store<u64>(slot, e); }
  walkPa = (e & 0x000f_ffff_ffff_f000) | (va & 0xfff);
  walkPfn = pfn;
  walkLevel = LEVEL_PTE;
  walkLeafSlot = slot;
  walkWritable = (allow & _PAGE_RW) != 0;
  walkUser = true;
  walkExec = (nx & _PAGE_NX) == 0;
  walkDirty = (e & _PAGE_DIRTY) != 0;
  return WALK_OK;
}

// TLB-backed translation: a hit costs a tag compare; a miss walks and refills.
// Returns the physical address, or -(1 + error code) when the walk faults.
export function translate(asid: u32, root: u32, va: u64, access: u32, mode: u32): i64 {
  const user = (mode & MODE_USER) != 0;
  const hit = tlb_lookup(asid, va, access, user);
  if (hit >= 0) {
    count(ST_TLB_HIT);
    return (hit << PAGE_SHIFT) | <i64>(va & 0xfff);
  }
  count(ST_TLB_MISS);
  const r = walk(root, va, access, mode);
  if (r != WALK_OK) return -1 - <i64>r;
  fill_from_walk(asid, root, va);
  return <i64>walkPa;
}

// Enter the last successful walk: a write tag only for a writable and dirty leaf, so the
// first write through a clean translation walks and sets D.
export function fill_from_walk(asid: u32, root: u32, va: u64): void {
  if (pfn_is_device(walkPfn)) return; // MMIO is never cached: every access walks to the device
  if (walkLevel == LEVEL_PTE && walkUser) { // the common user 4 KiB leaf (issue 17): inlined
    tlb_fill_inline(asid, root, va, walkPfn, walkWritable && walkDirty, walkExec);
    return;
  }
  let flags: u32 = 0;
  if (walkUser) flags |= TLB_USER;
  if (walkLevel > LEVEL_PTE) flags |= TLB_LARGE;
  tlb_fill(asid, root, va, walkPfn, flags, true, walkWritable && walkDirty, walkExec);
}

// Every valid TLB entry must agree with a fresh look at the tables it came from: the same
// frame, and no permission the tables do not give.
export function tlb_check(): void {
  for (let i: u32 = 0; i < gTlbEntries; i++) {
    const e = entryAddr(i);
    const key = entry_key(e);
    if (key < 0) continue;
    const asid = key_asid(key);
    const root = tlb_root_of(asid);
    const r = walk(root, key_va(key), 0, MODE_PEEK | MODE_NXE);
    if (r != WALK_OK || walkPfn != load<u32>(e, TLB_PFN) || pfn_is_device(walkPfn) ||
        load<u32>(e, TLB_ADDEND) != tlb_addend(key_va(key), walkPfn)) {
      inv_report(INV_TLB_STALE, i, asid); // a device page is never in the TLB; the addend follows the frame
      continue;
    }
    // A user tag only for a user page; no tag the tables do not give, in either set.
    const userOk = ((load<u32>(e, TLB_FLAGS) & TLB_USER) == 0 || walkUser) &&
      (walkUser || (load<f64>(e) < 0 && load<f64>(e, 8) < 0 && load<f64>(e, 16) < 0));
    const writeOk = (load<f64>(e, 8) < 0 && load<f64>(e, TLB_KERN + 8) < 0) || (walkWritable && walkDirty);
    const execOk = (load<f64>(e, 16) < 0 && load<f64>(e, TLB_KERN + 16) < 0) || walkExec;
    if (!userOk || !writeOk || !execOk) inv_report(INV_TLB_PERM, i, asid);
  }
  tlb_side_check(); // the int32 side table follows the entries (tlb.ts)
}
