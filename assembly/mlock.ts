// mlock, mlock2, munlock, mlockall, munlockall (R8.1, R8.2, R8.4, R8.7): the VMA and
// syscall half of Linux's mm/mlock.c. The page half (PG_mlocked, the unevictable LRU,
// R8.6) is mlock_folio.ts.

import { EINVAL, ENOMEM, EPERM, EAGAIN, EFAULT } from "./config";
import { pte_present, pte_pfn } from "./pte";
import { PG_mlocked } from "./page";
import { pte_range_first, pte_range_next, pteRangeVa } from "./pgtable";
import { VM_LOCKED, VM_LOCKONFAULT, VM_LOCKED_MASK, VM_SPECIAL, VM_HUGETLB, VMA_DAX, vma_flags,
  set_vma_flags, vma_start, vma_end, vma_next, vma_file, vma_iflags, vma_pages } from "./vma";
import { mm_pgd, find_vma, mm_first_vma, mm_locked_vm, mm_add_locked_vm, mm_memlock_limit,
  mm_total_vm, set_mm_def_flags } from "./mm";
import { vm_normal_page, NO_PAGE } from "./special";
import { file_flags, set_file_flags, AS_MLOCKED } from "./mapping";
import { split_for_flags, vma_merge_around } from "./mmap";
import { mm_populate } from "./gup";
import { mlock_vma_folio, munlock_vma_folio, mlock_large_folio } from "./mlock_folio";
import { folio_test_large, folio_head, folio_nr_pages } from "./lru";
import { lru_add_drain } from "./mlock_batch";

export const MLOCK_ONFAULT: u32 = 1;
export const MCL_CURRENT: u32 = 1;
export const MCL_FUTURE: u32 = 2;
export const MCL_ONFAULT: u32 = 4;

function walk_present(mm: u32, v: u32, start: u64, end: u64, lock: bool): void {
  for (let slot = pte_range_first(mm_pgd(mm), start, end); slot != 0; slot = pte_range_next()) {
    const pte = load<u64>(slot);
    if (pte == 0 || !pte_present(pte)) continue;
    const page = vm_normal_page(v, pteRangeVa, pte);
    if (page == NO_PAGE) continue;
    if (!lock) { munlock_vma_folio(page); continue; }
    if (!folio_test_large(page)) { mlock_vma_folio(page); continue; }
    // R8.6 (6.7+ mlock_pte_range, allow_mlock_munlock): a large folio is mlocked once, and
    // only when this walk maps all of it, from its first page, with consecutive PTEs of one
    // table; a folio the range or the VMA cuts stays unlocked (seed 1268232064 case 4390).
    const step = folio_pte_run(slot, page, end);
    if (page == folio_head(page) && step == folio_nr_pages(page)) mlock_large_folio(page);
    for (let i: u32 = 1; i < step; i++) pte_range_next();
  }
}

// folio_mlock_step: how many PTEs from `slot` (at pteRangeVa, below `end`) map `page` and
// the pages after it in its folio, consecutively, within one PTE table.
function folio_pte_run(slot: usize, page: u32, end: u64): u32 {
  const head = folio_head(page);
  let max = head + folio_nr_pages(head) - page;
  const inTable = <u32>(512 - ((pteRangeVa >> 12) & 511));
  if (max > inTable) max = inTable;
  const toEnd = <u32>((end - pteRangeVa) >> 12);
  if (max > toEnd) max = toEnd;
  let n: u32 = 1;
  while (n < max) {
    const e = load<u64>(slot + (<usize>n << 3));
    if (!pte_present(e) || pte_pfn(e) != page + n) break;
    n++;
  }
  return n;
}

// ---- VMA level (R8.2) ----

// VM_SPECIAL, hugetlb and DAX VMAs are never locked (R8.4).
@inline function lockable(v: u32): bool {
  return (vma_flags(v) & (VM_SPECIAL | VM_HUGETLB)) == 0 && (vma_iflags(v) & VMA_DAX) == 0;
}

// Set `newLock` (VM_LOCKED[|VM_LOCKONFAULT] or 0) on [start, end) of VMA `v` (already
// split to fit). Counts locked_vm once per page.
function mlock_fixup(mm: u32, v: u32, newLock: u32): u32 {
  const old = vma_flags(v);
  if (!lockable(v)) return v;
  if ((old & VM_LOCKED_MASK) == newLock) return v; // nothing to change (and no merge needed)
  const was = (old & VM_LOCKED) != 0;
  const now = (newLock & VM_LOCKED) != 0;
  set_vma_flags(v, (old & ~VM_LOCKED_MASK) | newLock);
  // mlock_vma_pages_range drains before its walk too: queued munlocks (a child's exit) are
  // handled before the walk's mlocks, so a page they unlock is mlocked again (fuzz seed
  // 637177729 case 1102, R8.6).
  if (was != now) lru_add_drain();
  if (was && !now) {
    mm_add_locked_vm(mm, -<i64>vma_pages(v));
    walk_present(mm, v, vma_start(v), vma_end(v), false);
    lru_add_drain(); // mlock_vma_pages_range ends with lru_add_drain (R8.6)
  } else if (!was && now) {
    mm_add_locked_vm(mm, <i64>vma_pages(v));
    walk_present(mm, v, vma_start(v), vma_end(v), true);
    lru_add_drain();
  }
  if (now && vma_file(v) != 0) {
    // seed 003: a file that ever had an mlocked VMA keeps its pages stable for good.
    const f = vma_file(v);
    set_file_flags(f, file_flags(f) | AS_MLOCKED);
  }
  return vma_merge_around(mm, v);
}

// Pages in [start, end) already covered by locked VMAs.
function locked_in_range(mm: u32, start: u64, end: u64): u64 {
  let n: u64 = 0;
  let v = find_vma(mm, start);
  while (v != 0 && vma_start(v) < end) {
    if ((vma_flags(v) & VM_LOCKED) != 0) {
      const s = vma_start(v) > start ? vma_start(v) : start;
      const e = vma_end(v) < end ? vma_end(v) : end;
      n += (e - s) >> 12;
    }
    v = vma_next(v);
  }
  return n;
}

@inline function limited(mm: u32): bool { return mm_memlock_limit(mm) != 0xffff_ffff; }

// A VMA's flags with the lock setting `newLock` as mlock_fixup would leave them (R8.4:
// VMAs that are never locked keep theirs).
function lock_flags(v: u32, newLock: u32): u32 {
  return lockable(v) ? (vma_flags(v) & ~VM_LOCKED_MASK) | newLock : vma_flags(v);
}

// Apply a lock setting to [start, end) VMA by VMA, as Linux's apply_vma_lock_flags: the
// range must start inside a VMA; at a hole, or past the last VMA, it stops with ENOMEM and
// the VMAs before keep their new setting (R8.1). A VMA whose flags do not change is neither
// split nor merged (mlock_fixup returns early).
function apply_vma_lock_flags(mm: u32, start: u64, end: u64, newLock: u32): i32 {
  let v = find_vma(mm, start);
  if (v == 0 || vma_start(v) > start) return -ENOMEM;
  let at = start;
  while (at < end) {
    if (v == 0 || vma_start(v) > at) return -ENOMEM;
    if (lock_flags(v, newLock) != vma_flags(v)) {
      const r = split_for_flags(mm, at, vma_end(v) < end ? vma_end(v) : end, lock_flags, newLock);
      if (r < 0) return r;
      // Continue after the VMA that now covers it: a merge may have freed v's neighbour.
      v = mlock_fixup(mm, find_vma(mm, at), newLock);
    }
    at = vma_end(v);
    v = vma_next(v);
  }
  return 0;
}

// mlock / mlock2 (R8.1): lock, then populate. __mm_populate runs for MLOCK_ONFAULT too: it
// skips the VMAs that became VM_LOCKONFAULT, but faults in those mlock_fixup left alone
// (special and DAX VMAs, R8.4), as Linux does.
export function do_mlock(mm: u32, start: u64, len: u64, flags: u32): i32 {
  if ((flags & ~MLOCK_ONFAULT) != 0) return -EINVAL;
  const s = start & ~(<u64>4095);
  const end = (start + len + 4095) & ~(<u64>4095);
  if (end < s) return -ENOMEM;
  if (end == s) return 0;
  if (limited(mm)) {
    if (mm_memlock_limit(mm) == 0) return -EPERM;
    const pages = (end - s) >> 12;
    const total = <u64>mm_locked_vm(mm) + pages - locked_in_range(mm, s, end);
    if (total > <u64>mm_memlock_limit(mm)) return -ENOMEM;
  }
  const lockFlags = VM_LOCKED | ((flags & MLOCK_ONFAULT) != 0 ? VM_LOCKONFAULT : 0);
  const r = apply_vma_lock_flags(mm, s, end, lockFlags);
  if (r < 0) return r;
  return populate_errno(mm_populate(mm, s, end, true));
}

// R8.1: population errors as mlock reports them.
function populate_errno(r: i32): i32 {
  if (r == -EFAULT) return -ENOMEM;
  if (r == -ENOMEM) return -EAGAIN;
  return r < 0 ? r : 0;
}

export function do_munlock(mm: u32, start: u64, len: u64): i32 {
  const s = start & ~(<u64>4095);
  const end = (start + len + 4095) & ~(<u64>4095);
  if (end < s) return -ENOMEM;
  if (end == s) return 0;
  return apply_vma_lock_flags(mm, s, end, 0);
}

// R8.7 mlockall.
export function do_mlockall(mm: u32, flags: u32): i32 {
  if (flags == 0 || (flags & ~(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)) != 0 || flags == MCL_ONFAULT) return -EINVAL;
  if (limited(mm)) {
    if (mm_memlock_limit(mm) == 0) return -EPERM;
    if ((flags & MCL_CURRENT) != 0 && <u64>mm_total_vm(mm) > <u64>mm_memlock_limit(mm)) return -ENOMEM;
  }
  const lockFlags = VM_LOCKED | ((flags & MCL_ONFAULT) != 0 ? VM_LOCKONFAULT : 0);
  set_mm_def_flags(mm, (flags & MCL_FUTURE) != 0 ? lockFlags : 0);
  if ((flags & MCL_CURRENT) != 0) {
    // A process has VMAs below its mappings too (its binary, its heap), fixed up and
    // populated first: the batch is drained before the first of these (fuzz seed 1849509426
    // case 2297: a queued munlock is handled before the populate mlocks the page again).
    lru_add_drain();
    let v = mm_first_vma(mm);
    while (v != 0) v = vma_next(mlock_fixup(mm, v, lockFlags));
    // __mm_populate(ignore_errors): a VMA that cannot be populated is skipped (R8.7).
    mm_populate(mm, 0, 0x8000_0000_0000, true, true, true); // LOCKONFAULT VMAs are skipped
    // And VMAs above them (its stack is the highest): their
    // mlock_fixup and populate drain after everything here (fuzz seed 387238222 case 4525:
    // with only unmapped pages left, the child's mlockall still handles their munlocks).
    lru_add_drain();
  }
  return 0;
}

export function do_munlockall(mm: u32): i32 {
  set_mm_def_flags(mm, 0);
  let v = mm_first_vma(mm);
  while (v != 0) v = vma_next(mlock_fixup(mm, v, 0));
  return 0;
}
