// mmap, munmap and address-space teardown: argument checks with Linux's errnos, top-down
// placement, VMA split and merge, and the zap that goes with unmapping (R9.4, R9.11).

import { TASK_SIZE, MMAP_BASE, MMAP_MIN_ADDR, EINVAL, ENOMEM, EEXIST, EACCES, EBADF, EPERM,
  EOVERFLOW, EOPNOTSUPP, EAGAIN } from "./config";
import { LEVEL_PGD, free_table_tree } from "./pgtable";
import { tlb_flush_asid } from "./tlb";
import { VM_READ, VM_WRITE, VM_EXEC, VM_SHARED, VM_MAYREAD, VM_MAYWRITE, VM_MAYEXEC, VM_MAYSHARE,
  VM_LOCKED, VM_NORESERVE, VM_ACCOUNT, VM_GROWSDOWN, VM_SOFTDIRTY, VM_SPECIAL, VM_LOCKED_MASK, MAX_MAP_COUNT,
  VMA_WRITENOTIFY, VMA_SHMEM, VMA_DAX, vma_alloc, vma_free, vma_dup, vma_init, vma_start, vma_end,
  vma_pgoff, vma_flags, vma_file, vma_anon_vma, vma_iflags, vma_next, vma_prev, set_vma_start,
  set_vma_end, set_vma_pgoff, set_vma_iflags, set_vma_anon_vma, vma_file_link, vma_file_unlink,
  vma_pages, vma_gap_topdown, vm_start_gap } from "./vma";
import { mm_pgd, mm_map_count, mm_first_vma, mm_last_vma, find_vma, mm_link_vma, mm_unlink_vma,
  mm_add_total_vm, mm_add_locked_vm, mm_locked_vm, mm_memlock_limit, mm_def_flags, mm_root_at,
  mm_release } from "./mm";
import { file_valid, file_flags, file_alloc, file_release, file_immap_at, file_addr, AS_SHMEM, AS_HOST_OPEN,
  AS_READONLY, AS_HAS_PAGE_MKWRITE, AS_HAS_PFN_MKWRITE, AS_DIRTY_ACCOUNT, AS_DAX } from "./mapping";
import { zap_page_range, free_pgtables } from "./unmap";
import { tlb_gather_mmu, tlb_finish_mmu } from "./mmu_gather";
import { split_huge_pmd_address } from "./install";
import { drop_all_pages, MAX_PGOFF } from "./filemap";
import { shmem_free_swap } from "./shmem_swap";
import { populate_ignoring_errors } from "./gup";

export const PROT_READ: u32 = 1;
export const PROT_WRITE: u32 = 2;
export const PROT_EXEC: u32 = 4;
export const PROT_SEM: u32 = 8;
export const PROT_GROWSDOWN: u32 = 0x01000000;
export const PROT_GROWSUP: u32 = 0x02000000;

export const MAP_SHARED: u32 = 0x01;
export const MAP_PRIVATE: u32 = 0x02;
export const MAP_SHARED_VALIDATE: u32 = 0x03;
export const MAP_TYPE: u32 = 0x0f;
export const MAP_FIXED: u32 = 0x10;
export const MAP_ANONYMOUS: u32 = 0x20;
export const MAP_GROWSDOWN: u32 = 0x0100;
export const MAP_DENYWRITE: u32 = 0x0800;
export const MAP_EXECUTABLE: u32 = 0x1000;
export const MAP_LOCKED: u32 = 0x2000;
export const MAP_NORESERVE: u32 = 0x4000;
export const MAP_POPULATE: u32 = 0x8000;
export const MAP_NONBLOCK: u32 = 0x10000;
export const MAP_STACK: u32 = 0x20000;
export const MAP_HUGETLB: u32 = 0x40000;
export const MAP_SYNC: u32 = 0x80000;
export const MAP_FIXED_NOREPLACE: u32 = 0x100000;
export const MAP_UNINITIALIZED: u32 = 0x4000000;
// Flags MAP_SHARED_VALIDATE accepts (Linux's LEGACY_MAP_MASK; anything else is EOPNOTSUPP,
// MAP_FIXED_NOREPLACE included, and MAP_SYNC unless the file is DAX). Bits 26..30 are the
// MAP_HUGE_2MB / MAP_HUGE_1GB size encodings, which the mask lets through.
const MAP_LEGACY: u32 = MAP_SHARED | MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS | MAP_DENYWRITE |
  MAP_EXECUTABLE | MAP_UNINITIALIZED | MAP_GROWSDOWN | MAP_LOCKED | MAP_NORESERVE |
  MAP_POPULATE | MAP_NONBLOCK | MAP_STACK | MAP_HUGETLB | 0x40 /* MAP_32BIT */ |
  (21 << 26) /* MAP_HUGE_2MB */ | (30 << 26) /* MAP_HUGE_1GB */;

@inline function pageAlignUp(x: u64): u64 { return (x + 4095) & ~(<u64>4095); }

// ---- per-file mapping counts (a file record stays while VMAs map it) ----
@inline function fileMapInc(f: u32, d: i32): void {
  store<u32>(file_addr(f), <u32>(<i32>load<u32>(file_addr(f), 40) + d), 40);
}
export function file_map_count(f: u32): u32 { return load<u32>(file_addr(f), 40); }

// ---- write-notify (R9.10) ----
export function vma_set_page_prot(v: u32): void {
  const f = vma_flags(v);
  let wn = false;
  if ((f & (VM_SHARED | VM_WRITE)) == (VM_SHARED | VM_WRITE)) {
    const file = vma_file(v);
    const ff = file != 0 ? file_flags(file) : 0;
    if ((ff & (AS_HAS_PAGE_MKWRITE | AS_HAS_PFN_MKWRITE | AS_DIRTY_ACCOUNT)) != 0) wn = true;
    if ((f & VM_SOFTDIRTY) == 0) wn = true; // soft-dirty tracking active
  }
  const i = vma_iflags(v);
  set_vma_iflags(v, wn ? i | VMA_WRITENOTIFY : i & ~VMA_WRITENOTIFY);
}

// ---- VMA bookkeeping ----

function attach(mm: u32, v: u32): void {
  mm_link_vma(mm, v);
  const f = vma_file(v);
  if (f != 0) { vma_file_link(file_immap_at(f), v); fileMapInc(f, 1); }
}

// Unlink and free a VMA (its PTEs already zapped); a shmem object dies with its last VMA.
function detach(mm: u32, v: u32): void {
  mm_unlink_vma(mm, v);
  const f = vma_file(v);
  mm_add_total_vm(mm, -<i64>vma_pages(v));
  if ((vma_flags(v) & VM_LOCKED) != 0) mm_add_locked_vm(mm, -<i64>vma_pages(v));
  if (f != 0) {
    vma_file_unlink(file_immap_at(f), v);
    fileMapInc(f, -1);
    // Shared anonymous memory goes with its last mapping; a host-opened tmpfs file stays.
    if ((file_flags(f) & (AS_SHMEM | AS_HOST_OPEN)) == AS_SHMEM && file_map_count(f) == 0) {
      drop_all_pages(f, false);
      shmem_free_swap(f, 0, MAX_PGOFF); // and its pages out on swap (R11.3)
      file_release(f);
    }
  }
  vma_free(v);
}

// Split `v` at `addr` (inside it); `v` keeps the lower part. Returns the upper part, or 0.
export function split_vma(mm: u32, v: u32, addr: u64): u32 {
  // A PMD-mapped folio across the new edge cannot stay: unmap it (R3.3; it refaults as PTEs).
  split_huge_pmd_address(mm, addr);
  const n = vma_dup(v);
  if (n == 0) return 0;
  set_vma_start(n, addr);
  set_vma_pgoff(n, vma_pgoff(v) + ((addr - vma_start(v)) >> 12));
  set_vma_end(v, addr);
  attach(mm, n);
  return n;
}

// Can `b` (starting where `a` ends) be folded into `a`, anon_vmas apart? (is_mergeable_vma)
function can_merge_flags(a: u32, b: u32): bool {
  if (vma_end(a) != vma_start(b)) return false;
  const fa = vma_flags(a), fb = vma_flags(b);
  if (((fa ^ fb) & ~VM_SOFTDIRTY) != 0 || (fa & VM_SPECIAL) != 0) return false;
  const ia = vma_iflags(a) & ~(VMA_FORK_CHILD | VMA_MAYBE_GUARD), ib = vma_iflags(b) & ~(VMA_FORK_CHILD | VMA_MAYBE_GUARD);
  if (vma_file(a) != vma_file(b) || ia != ib) return false;
  if ((ia & VMA_SHMEM) != 0 && vma_file(a) != vma_file(b)) return false;
  return vma_pgoff(a) + vma_pages(a) == vma_pgoff(b);
}

// is_mergeable_anon_vma (issue 14): may `src` (the VMA whose flags changed, or the new one)
// join its neighbour `tgt`? Two anon_vmas must be the same one; where only one side has an
// anon_vma, the merged VMA takes it, unless that side is a fork child; and before 6.16
// (gMergeFaultedIntoUnfaulted off) only a `tgt` with an anon_vma may take in a `src` without.
function anon_vma_mergeable(src: u32, tgt: u32): bool {
  const s = vma_anon_vma(src), t = vma_anon_vma(tgt);
  if (s != 0 && t == 0) { // dup_anon_vma into tgt
    return gMergeFaultedIntoUnfaulted && (vma_iflags(src) & VMA_FORK_CHILD) == 0;
  }
  if (s == 0 && t != 0) return (vma_iflags(tgt) & VMA_FORK_CHILD) == 0;
  return s == t;
}

// Can `b` (starting where `a` ends) be folded into `a`, `a` being the VMA that changed?
export function can_merge(a: u32, b: u32): bool {
  return can_merge_flags(a, b) && anon_vma_mergeable(a, b);
}

// Fold `b` into `a` (a precedes b and the merge rules said yes). A side without anon_vma
// takes the other's (dup_anon_vma), with its fork-child mark.
function merge_into(mm: u32, a: u32, b: u32): void {
  set_vma_end(a, vma_end(b));
  if (vma_anon_vma(a) == 0 && vma_anon_vma(b) != 0) {
    set_vma_anon_vma(a, vma_anon_vma(b));
    set_vma_iflags(a, (vma_iflags(a) & ~VMA_FORK_CHILD) | (vma_iflags(b) & VMA_FORK_CHILD));
  }
  // The sticky guard flag survives the merge (VM_STICKY).
  set_vma_iflags(a, vma_iflags(a) | (vma_iflags(b) & VMA_MAYBE_GUARD));
  const fa = vma_flags(a);
  // Merged VMAs stay soft-dirty if either was (a new part is reported dirty, R9.9).
  if ((vma_flags(b) & VM_SOFTDIRTY) != 0) store<u32>(vma_addr_of(a) + 24, fa | VM_SOFTDIRTY);
  const locked = (vma_flags(b) & VM_LOCKED) != 0;
  mm_add_total_vm(mm, <i64>vma_pages(b)); // detach subtracts them again
  if (locked) mm_add_locked_vm(mm, <i64>vma_pages(b));
  detach(mm, b);
}
import { vma_addr, VMA_FORK_CHILD, VMA_MAYBE_GUARD } from "./vma";
import { gMergeFaultedIntoUnfaulted } from "./config";
@inline function vma_addr_of(v: u32): usize { return vma_addr(v); }

// Try to merge `v` (just changed or created) with its neighbours (vma_merge_existing_range,
// vma_merge_new_range); returns the VMA that now covers it. Each neighbour's anon_vma must
// suit v's, and when both would merge (v removed between them), prev's and next's must
// suit each other too (one of them none, or the same); if not, only prev merges.
export function vma_merge_around(mm: u32, v: u32): u32 {
  const p = vma_prev(v), n = vma_next(v);
  const left = p != 0 && can_merge_flags(p, v) && anon_vma_mergeable(v, p);
  let right = n != 0 && can_merge(v, n);
  if (left && right) {
    const ap = vma_anon_vma(p), an = vma_anon_vma(n);
    right = ap == 0 || an == 0 || ap == an;
  }
  if (right) merge_into(mm, v, n);
  if (left) { merge_into(mm, p, v); return p; }
  return v;
}

// ---- placement ----

// Top-down (Linux's vm_unmapped_area with VM_UNMAPPED_AREA_TOPDOWN): the highest free
// range of `len` bytes below the mmap base and above mmap_min_addr. A hint is rounded
// down to a page, and up to mmap_min_addr (round_hint_to_min), and taken if it is free.
// Returns 0 when nothing fits.
export function get_unmapped_area(mm: u32, hint: u64, len: u64): u64 {
  if (len > TASK_SIZE) return 0;
  if (hint != 0) {
    let a = hint & ~(<u64>4095);
    if (a < MMAP_MIN_ADDR) a = MMAP_MIN_ADDR;
    if (a <= TASK_SIZE - len) {
      const v = find_vma(mm, a);
      if (v == 0 || a + len <= vm_start_gap(v)) return a; // not in a stack's guard gap
    }
  }
  const hi = MMAP_BASE;
  // Above the highest VMA first, then the gaps between VMAs, highest first.
  const last = mm_last_vma(mm);
  let above = last != 0 ? vma_end(last) : MMAP_MIN_ADDR;
  if (above < MMAP_MIN_ADDR) above = MMAP_MIN_ADDR;
  if (above < hi && hi - above >= len) return hi - len;
  return vma_gap_topdown(load<u32>(mm_root_at(mm)), len, MMAP_MIN_ADDR, hi);
}

// ---- mmap ----

// do_mmap: returns the address (>= 0) or -errno. `file` 0 with MAP_ANONYMOUS.
export function do_mmap(mm: u32, addr: u64, len: u64, prot: u32, flags: u32, file: u32, pgoff: u64): i64 {
  if (len == 0) return -EINVAL;
  if (len > TASK_SIZE) return -ENOMEM;
  len = pageAlignUp(len);
  let type = flags & MAP_TYPE;
  const anon = (flags & MAP_ANONYMOUS) != 0;
  if (!anon && !file_valid(file)) return -EBADF;
  if (type == MAP_SHARED_VALIDATE && !anon) { // only file mappings validate (anon: EINVAL below)
    const known = MAP_LEGACY | ((file_flags(file) & AS_DAX) != 0 ? MAP_SYNC : 0);
    if ((flags & ~known) != 0) return -EOPNOTSUPP;
    type = MAP_SHARED;
  }
  if (type != MAP_SHARED && type != MAP_PRIVATE) return -EINVAL;
  // Only private anonymous memory may grow down (a stack); files and shmem may not.
  if ((flags & MAP_GROWSDOWN) != 0 && (type == MAP_SHARED || !anon)) return -EINVAL;
  if (!anon && pgoff + (len >> 12) < pgoff) return -EOVERFLOW;
  // file_mmap_ok: the end must stay within MAX_LFS_FILESIZE (2^63 - 1 bytes). Offsets past
  // the page cache's 2^32 pages are accepted as Linux does; a fault there is past EOF (SIGBUS).
  if (!anon && (pgoff + (len >> 12)) > (<u64>0x7fff_ffff_ffff_ffff >> 12)) return -EOVERFLOW;
  if (mm_map_count(mm) > MAX_MAP_COUNT) return -ENOMEM;
  const fixed = (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) != 0;
  if (fixed) {
    if ((addr & 4095) != 0) return -EINVAL;
    if (addr > TASK_SIZE - len) return -ENOMEM;
    // Below mmap_min_addr only with CAP_SYS_RAWIO (security_mmap_addr): a user process is refused.
    if (addr < MMAP_MIN_ADDR) return -EPERM;
    if ((flags & MAP_FIXED_NOREPLACE) != 0) {
      const v = find_vma(mm, addr);
      if (v != 0 && vma_start(v) < addr + len) return -EEXIST;
    }
  } else {
    addr = get_unmapped_area(mm, addr, len);
    if (addr == 0) return -ENOMEM;
  }
  let vf: u32 = (prot & PROT_READ ? VM_READ : 0) | (prot & PROT_WRITE ? VM_WRITE : 0) |
    (prot & PROT_EXEC ? VM_EXEC : 0) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | mm_def_flags(mm);
  if ((flags & MAP_LOCKED) != 0) vf |= VM_LOCKED;
  if ((flags & MAP_NORESERVE) != 0) vf |= VM_NORESERVE;
  if ((flags & MAP_GROWSDOWN) != 0) vf |= VM_GROWSDOWN;
  let iflags: u32 = 0;
  if (anon) {
    if (type == MAP_SHARED) {
      file = file_alloc(len, AS_SHMEM);
      if (file == 0) return -ENOMEM;
      pgoff = 0;
      vf |= VM_SHARED | VM_MAYSHARE;
      iflags |= VMA_SHMEM;
    } else {
      file = 0;
      pgoff = addr >> 12;
    }
  } else {
    const ff = file_flags(file);
    if (type == MAP_SHARED) {
      vf |= VM_SHARED | VM_MAYSHARE;
      if ((ff & AS_READONLY) != 0) {
        if ((prot & PROT_WRITE) != 0) return -EACCES;
        vf &= ~(VM_MAYWRITE | VM_SHARED); // R9.5: never writable through this mapping
      }
    }
    if ((ff & AS_SHMEM) != 0) iflags |= VMA_SHMEM;
    if ((ff & AS_DAX) != 0) iflags |= VMA_DAX;
  }
  // accountable_mapping (R9.4): private writable memory is charged to the commit and marked
  // VM_ACCOUNT; the flag then keeps such a VMA from merging with an uncharged neighbour.
  if ((vf & (VM_NORESERVE | VM_SHARED | VM_WRITE)) == VM_WRITE) vf |= VM_ACCOUNT;
  const pages = len >> 12;
  if ((vf & VM_LOCKED) != 0 && mm_memlock_limit(mm) != 0xffff_ffff &&
      <u64>mm_locked_vm(mm) + pages > <u64>mm_memlock_limit(mm)) {
    if (anon && type == MAP_SHARED) file_release(file);
    return -EAGAIN;
  }
  vf |= VM_SOFTDIRTY; // R9.9: new VMAs report soft-dirty
  if (fixed && (flags & MAP_FIXED_NOREPLACE) == 0) {
    const r = do_munmap(mm, addr, len);
    if (r < 0) return r;
  }
  const v = vma_alloc();
  if (v == 0) return -ENOMEM;
  vma_init(v, mm, addr, addr + len, pgoff, vf, file);
  set_vma_iflags(v, iflags);
  vma_set_page_prot(v);
  attach(mm, v);
  mm_add_total_vm(mm, <i64>pages);
  if ((vf & VM_LOCKED) != 0) mm_add_locked_vm(mm, <i64>pages);
  vma_merge_around(mm, v);
  if (((flags & MAP_POPULATE) != 0 && (flags & MAP_NONBLOCK) == 0) ||
      (vf & VM_LOCKED_MASK) == VM_LOCKED) {
    populate_ignoring_errors(mm, addr, len); // errors ignored (R9.4)
  }
  return <i64>addr;
}

// ---- munmap ----

// Split so that no VMA straddles `start` or `end`; returns -ENOMEM if the map count
// would overflow. Nothing is changed on failure. Each split needs map_count below the
// limit first (Linux's split_vma), as mprotect, madvise and mlock see it. With `unmap`,
// munmap's rule instead: only a range strictly inside one VMA (a hole punched in it, so
// one VMA more at the end) is refused at the limit; trimming a head or a tail never is.
export function split_at_edges(mm: u32, start: u64, end: u64, unmap: bool = false): i32 {
  const v = find_vma(mm, start);
  if (v == 0 || vma_start(v) >= end) return 0;
  const w = find_vma(mm, end - 1);
  const needA = vma_start(v) < start;
  const needB = w != 0 && vma_start(w) < end && vma_end(w) > end;
  if (unmap) {
    if (needA && needB && v == w && mm_map_count(mm) >= MAX_MAP_COUNT) return -ENOMEM;
  } else {
    const extra: u32 = (needA ? 1 : 0) + (needB ? 1 : 0);
    if (extra > 0 && mm_map_count(mm) + extra > MAX_MAP_COUNT) return -ENOMEM;
  }
  return split_edges(mm, v, start, end, needA, needB);
}

// Split the edge VMAs the callers chose: `v` at `start`, the one holding end - 1 at `end`.
function split_edges(mm: u32, v: u32, start: u64, end: u64, needA: bool, needB: bool): i32 {
  if (needA && split_vma(mm, v, start) == 0) return -ENOMEM;
  if (needB && split_vma(mm, find_vma(mm, end - 1), end) == 0) return -ENOMEM;
  return 0;
}

// Split for a flag change over [start, end): like split_at_edges, but an edge VMA whose
// flags `newFlags(v, arg)` leaves as they are is not split (Linux's mprotect_fixup and
// madvise_update_vma return early for it). Returns 0 or -ENOMEM with nothing changed.
export function split_for_flags(mm: u32, start: u64, end: u64, newFlags: (v: u32, arg: u32) => u32, arg: u32): i32 {
  const v = find_vma(mm, start);
  if (v == 0 || vma_start(v) >= end) return 0;
  const w = find_vma(mm, end - 1);
  const needA = vma_start(v) < start && newFlags(v, arg) != vma_flags(v);
  const needB = w != 0 && vma_start(w) < end && vma_end(w) > end && newFlags(w, arg) != vma_flags(w);
  const extra: u32 = (needA ? 1 : 0) + (needB ? 1 : 0);
  if (extra > 0 && mm_map_count(mm) + extra > MAX_MAP_COUNT) return -ENOMEM;
  return split_edges(mm, v, start, end, needA, needB);
}

// Zap and remove every VMA inside [start, end) (already split at the edges).
export function unmap_region(mm: u32, start: u64, end: u64): void {
  tlb_gather_mmu(mm);
  let v = find_vma(mm, start);
  while (v != 0 && vma_start(v) < end) {
    const next = vma_next(v);
    zap_page_range(mm, v, vma_start(v), vma_end(v), true, true);
    detach(mm, v);
    v = next;
  }
  tlb_finish_mmu();
  free_pgtables(mm, start, end);
}

export function do_munmap(mm: u32, start: u64, len: u64): i32 {
  if ((start & 4095) != 0 || start > TASK_SIZE || len > TASK_SIZE - start) return -EINVAL;
  len = pageAlignUp(len);
  if (len == 0) return -EINVAL;
  const end = start + len;
  const r = split_at_edges(mm, start, end, true);
  if (r < 0) return r;
  unmap_region(mm, start, end);
  return 0;
}

// exit_mmap: zap everything, free every page table and the mm itself.
export function exit_mmap(mm: u32): void {
  tlb_gather_mmu(mm);
  let v = mm_first_vma(mm);
  while (v != 0) {
    const next = vma_next(v);
    zap_page_range(mm, v, vma_start(v), vma_end(v), true, true);
    detach(mm, v);
    v = next;
  }
  tlb_finish_mmu();
  tlb_flush_asid(mm);
  free_table_tree(mm_pgd(mm), LEVEL_PGD);
  mm_release(mm);
}

