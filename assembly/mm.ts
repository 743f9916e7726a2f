// An address space (mm_struct): its PGD and ASID, the VMA tree, RSS and fault counters,
// locked_vm, and its anonymous "family" (the address spaces forked from one another,
// which is what an anonymous page's reverse map searches).
//
// Record of 128 bytes per mm id (1 .. MAX_MM-1); the id is also the TLB's ASID.
//   +0 u32 pgd  +4 u32 vma root  +8 u32 first vma  +12 u32 last vma  +16 u32 map_count
//   +20 u32 page-table pages (PGD included)  +24 u32 rss anon  +28 u32 rss file
//   +32 u32 rss shmem  +36 u32 swap entries  +40 f64 minflt  +48 f64 majflt
//   +56 u32 (unused)  +60 u32 (unused)  +64 u32 def_flags (mlockall MCL_FUTURE)
//   +68 u32 flags (MMF_*)  +72 u32 family  +76 u32 next member of the family
//   +80 u64 total_vm  +88 u32 memlock limit in pages (0xffffffff = unlimited)
//   +92 u32 pinned pages  +96 u64 locked_vm
// total_vm and locked_vm count pages in 64 bits: a 47-bit address space holds 2^35 pages.

import { MMAP_BASE } from "./config";
import { NO_PFN } from "./phys";
import { pgtable_alloc } from "./pgtable";
import { tlb_flush_asid } from "./tlb";
import { vma_find, vma_link, vma_unlink, vma_start } from "./vma";

export const MAX_MM: u32 = 4096;
const MM_SIZE: u32 = 128;
const mms: usize = memory.data(MAX_MM * MM_SIZE);

export const MMF_ALIVE: u32 = 1;
export const MMF_HAS_PINNED: u32 = 2; // has ever pinned pages (R5.6)
export const MMF_OOM_REAPED: u32 = 4; // R3.4

export const RSS_ANON: u32 = 0;
export const RSS_FILE: u32 = 1;
export const RSS_SHMEM: u32 = 2;
export const RSS_SWAP: u32 = 3;

@inline export function mm_addr(mm: u32): usize { return mms + <usize>mm * MM_SIZE; }
@inline export function mm_pgd(mm: u32): u32 { return load<u32>(mm_addr(mm)); }
@inline export function mm_root_at(mm: u32): usize { return mm_addr(mm) + 4; }
@inline export function mm_first_at(mm: u32): usize { return mm_addr(mm) + 8; }
@inline export function mm_last_at(mm: u32): usize { return mm_addr(mm) + 12; }
@inline export function mm_first_vma(mm: u32): u32 { return load<u32>(mm_addr(mm), 8); }
@inline export function mm_last_vma(mm: u32): u32 { return load<u32>(mm_addr(mm), 12); }
@inline export function mm_map_count(mm: u32): u32 { return load<u32>(mm_addr(mm), 16); }
@inline export function mm_nr_ptes(mm: u32): u32 { return load<u32>(mm_addr(mm), 20); }
@inline export function mm_add_ptes(mm: u32, d: i32): void {
  store<u32>(mm_addr(mm), <u32>(<i32>load<u32>(mm_addr(mm), 20) + d), 20);
}
@inline export function mm_rss(mm: u32, kind: u32): u32 { return load<u32>(mm_addr(mm) + 24 + (kind << 2)); }
@inline export function add_mm_counter(mm: u32, kind: u32, d: i32): void {
  const a = mm_addr(mm) + 24 + (kind << 2);
  store<u32>(a, <u32>(<i32>load<u32>(a) + d));
}
@inline export function mm_minflt(mm: u32): f64 { return load<f64>(mm_addr(mm), 40); }
@inline export function mm_majflt(mm: u32): f64 { return load<f64>(mm_addr(mm), 48); }
@inline export function mm_count_minflt(mm: u32): void { store<f64>(mm_addr(mm), load<f64>(mm_addr(mm), 40) + 1, 40); }
@inline export function mm_count_minflt_n(mm: u32, n: f64): void { store<f64>(mm_addr(mm), load<f64>(mm_addr(mm), 40) + n, 40); }
@inline export function mm_count_majflt(mm: u32): void { store<f64>(mm_addr(mm), load<f64>(mm_addr(mm), 48) + 1, 48); }
@inline export function mm_locked_vm(mm: u32): u64 { return load<u64>(mm_addr(mm), 96); }
@inline export function mm_add_locked_vm(mm: u32, d: i64): void {
  store<u64>(mm_addr(mm), <u64>(<i64>load<u64>(mm_addr(mm), 96) + d), 96);
}
@inline export function mm_total_vm(mm: u32): u64 { return load<u64>(mm_addr(mm), 80); }
@inline export function mm_add_total_vm(mm: u32, d: i64): void {
  store<u64>(mm_addr(mm), <u64>(<i64>load<u64>(mm_addr(mm), 80) + d), 80);
}
@inline export function mm_def_flags(mm: u32): u32 { return load<u32>(mm_addr(mm), 64); }
@inline export function set_mm_def_flags(mm: u32, f: u32): void { store<u32>(mm_addr(mm), f, 64); }
@inline export function mm_flags(mm: u32): u32 { return load<u32>(mm_addr(mm), 68); }
@inline export function mm_set_flag(mm: u32, f: u32): void { store<u32>(mm_addr(mm), mm_flags(mm) | f, 68); }
@inline export function mm_family(mm: u32): u32 { return load<u32>(mm_addr(mm), 72); }
@inline export function mm_family_next(mm: u32): u32 { return load<u32>(mm_addr(mm), 76); }

// ---- families (Linux's anon_vma, one per fork tree) ----
// A family has its own id (1 .. MAX_MM-1), independent of its members' ids: anonymous
// pages and VMAs name it, so it must stay the same while members come and go (the first
// one exiting included) and must never be confused with a later, unrelated address space
// that reuses an exited member's id. Record of 8 bytes: +0 u32 first member, +4 u32 members.
const families: usize = memory.data(MAX_MM * 8);
@inline export function family_first(fam: u32): u32 { return load<u32>(families + (<usize>fam << 3)); }
@inline function family_members(fam: u32): u32 { return load<u32>(families + (<usize>fam << 3), 4); }
@inline function set_family(fam: u32, first: u32, members: u32): void {
  store<u32>(families + (<usize>fam << 3), first);
  store<u32>(families + (<usize>fam << 3), members, 4);
}
let nextFamilyHint: u32 = 1;
function family_alloc(): u32 {
  for (let i: u32 = 0; i < MAX_MM - 1; i++) {
    const f = 1 + (nextFamilyHint - 1 + i) % (MAX_MM - 1);
    if (family_members(f) == 0) { nextFamilyHint = f + 1; return f; }
  }
  return 0; // cannot happen: there are as many families as address-space ids
}
@inline export function mm_memlock_limit(mm: u32): u32 { return load<u32>(mm_addr(mm), 88); }
@inline export function set_mm_memlock_limit(mm: u32, pages: u32): void { store<u32>(mm_addr(mm), pages, 88); }
@inline export function mm_pinned(mm: u32): u32 { return load<u32>(mm_addr(mm), 92); }
@inline export function mm_add_pinned(mm: u32, d: i32): void {
  store<u32>(mm_addr(mm), <u32>(<i32>load<u32>(mm_addr(mm), 92) + d), 92);
}
@inline export function mm_alive(mm: u32): bool {
  return mm > 0 && mm < MAX_MM && (mm_flags(mm) & MMF_ALIVE) != 0;
}

let nextMmHint: u32 = 1;

// A new empty address space with its own PGD; 0 if none is free (ids or frames).
// `family` is the parent's family for fork, 0 for a new one.
export function mm_alloc(family: u32): u32 {
  let mm: u32 = 0;
  for (let i: u32 = 0; i < MAX_MM - 1; i++) {
    const c = 1 + (nextMmHint - 1 + i) % (MAX_MM - 1);
    if ((mm_flags(c) & MMF_ALIVE) == 0) { mm = c; break; }
  }
  if (mm == 0) return 0;
  const pgd = pgtable_alloc();
  if (pgd == NO_PFN) return 0;
  nextMmHint = mm + 1;
  memory.fill(mm_addr(mm), 0, MM_SIZE);
  store<u32>(mm_addr(mm), pgd);
  store<u32>(mm_addr(mm), 1, 20);
  store<u32>(mm_addr(mm), MMF_ALIVE, 68);
  set_mm_memlock_limit(mm, 0xffff_ffff);
  // The id is the ASID: a new address space must not see translations its ASID cached
  // before (a dead mm's, or the raw hardware API's, src/mmu.ts HardwareTlb; found by
  // tests/property/hostile.test.ts).
  tlb_flush_asid(mm);
  const fam = family != 0 ? family : family_alloc();
  store<u32>(mm_addr(mm), fam, 72);
  // Join the family: first in its member list.
  store<u32>(mm_addr(mm), family_first(fam), 76);
  set_family(fam, mm, family_members(fam) + 1);
  return mm;
}

// Leave the family (the record itself is cleared by mm_release); the last member out
// frees the family id.
export function mm_family_leave(mm: u32): void {
  const fam = mm_family(mm);
  const left = family_members(fam) - 1;
  let first = family_first(fam);
  if (first == mm) {
    first = mm_family_next(mm);
  } else {
    let it = first;
    while (it != 0) {
      const n = mm_family_next(it);
      if (n == mm) { store<u32>(mm_addr(it), mm_family_next(mm), 76); break; }
      it = n;
    }
  }
  set_family(fam, left == 0 ? 0 : first, left);
}

export function mm_release(mm: u32): void {
  mm_family_leave(mm);
  memory.fill(mm_addr(mm), 0, MM_SIZE);
}

@inline export function find_vma(mm: u32, addr: u64): u32 { return vma_find(load<u32>(mm_root_at(mm)), addr); }
// The VMA that contains `addr`, or 0.
@inline export function vma_lookup(mm: u32, addr: u64): u32 {
  const v = find_vma(mm, addr);
  return v != 0 && addr >= vma_start(v) ? v : 0;
}

export function mm_link_vma(mm: u32, v: u32): void {
  vma_link(mm_root_at(mm), mm_first_at(mm), mm_last_at(mm), v);
  store<u32>(mm_addr(mm), mm_map_count(mm) + 1, 16);
}
export function mm_unlink_vma(mm: u32, v: u32): void {
  vma_unlink(mm_root_at(mm), mm_first_at(mm), mm_last_at(mm), v);
  store<u32>(mm_addr(mm), mm_map_count(mm) - 1, 16);
}
