// get_user_pages and population (R8.3, R8.5, R9.3, R9.4): follow_page_pte, faulting in
// what is missing through handle_mm_fault (counted against the address space, R11.5).

import { lru_add_drain } from "./mlock_batch";
import { EFAULT, ENOMEM, EHWPOISON, EEXIST } from "./config";
import { pte_present, pte_write, pte_dirty, pte_mkyoung, pte_mkdirty } from "./pte";
import { PG_anon_exclusive, PG_referenced, PG_pinned, page_flags, page_set, get_page } from "./page";
import { LEVEL_PTE, WALK_HUGE, pt_walk } from "./pgtable";
import { VM_IO, VM_PFNMAP, VM_LOCKONFAULT, VM_LOCKED, VM_WRITE, VM_SHARED, VM_READ,
  VM_MAYREAD, VM_ACCESS_FLAGS, vma_flags, vma_start, vma_end, is_cow_mapping } from "./vma";
import { mm_pgd, find_vma, mm_set_flag, mm_add_pinned, MMF_HAS_PINNED } from "./mm";
import { page_is_anon } from "./rmap";
import { vm_normal_page, NO_PAGE } from "./special";
import { mark_page_dirty } from "./mapping";
import { handle_mm_fault, mm_account_fault } from "./fault";
import { VM_FAULT_ERROR, VM_FAULT_OOM, VM_FAULT_HWPOISON, FAULT_FLAG_WRITE, VM_FAULT_RETRY,
  VM_FAULT_MAJOR, FAULT_FLAG_ALLOW_RETRY, FAULT_FLAG_TRIED, FAULT_FLAG_UNSHARE } from "./vmfault";
import { gZeroPfn } from "./config";

export const FOLL_WRITE: u32 = 0x01;
export const FOLL_GET: u32 = 0x04;
export const FOLL_DUMP: u32 = 0x08;
export const FOLL_FORCE: u32 = 0x10;
export const FOLL_TOUCH: u32 = 0x02;
export const FOLL_PIN: u32 = 0x40000;
// R1.1 step 4, R11.6 (internal flags): the caller lets a fault drop the mmap lock for I/O
// (FOLL_UNLOCKABLE), such a fault then returns RETRY|MAJOR with nothing mapped, and the page
// is tried again: with FAULT_FLAG_TRIED by __get_user_pages_locked (MADV_POPULATE_*: the
// retry counts major), from scratch by __mm_populate (FOLL_POPULATE: mlock, MAP_POPULATE,
// mlockall; the retry finds the page cached and counts minor, as 6.18 shows for mlock).
export const FOLL_UNLOCKABLE: u32 = 0x100000;
export const FOLL_POPULATE: u32 = 0x200000;
const FOLL_TRIED: u32 = 0x800;


// The last page follow_page found (pfn; gZeroPfn for the zero page).
export let gupPfn: u32 = 0;

// R8.5: is the page at `va` usable for this access right now? Returns 1 yes, 0 fault it in,
// 2 unshare it (FAULT_FLAG_UNSHARE), -errno refused.
function follow_page_pte(mm: u32, v: u32, va: u64, foll: u32): i32 {
  const slot = pt_walk(mm_pgd(mm), va, LEVEL_PTE, false);
  if (slot <= WALK_HUGE) return 0;
  let pte = load<u64>(slot);
  if (!pte_present(pte) || (pte & 1) == 0) return 0; // none, swap, protnone
  const page = vm_normal_page(v, va, pte);
  if ((foll & FOLL_WRITE) != 0 && !pte_write(pte)) {
    // A forced write into a COW mapping may use only an exclusive anon page via a dirty
    // PTE: never the page cache (R8.5, dirtyc0w).
    if (!((foll & FOLL_FORCE) != 0 && is_cow_mapping(vma_flags(v)) && page != NO_PAGE &&
          page_is_anon(page) && (page_flags(page) & PG_anon_exclusive) != 0 && pte_dirty(pte))) return 0;
  }
  // gup_must_unshare (R8.5): a read-only pin of an anonymous page that may be shared (after
  // fork) would see the page the next COW copies away from: unshare it first (-EMLINK in
  // Linux, here 2), so the pin holds the page that stays mapped here.
  if ((foll & (FOLL_PIN | FOLL_WRITE)) == FOLL_PIN && !pte_write(pte) && page != NO_PAGE &&
      page_is_anon(page) && (page_flags(page) & PG_anon_exclusive) == 0) return 2;
  if (page == NO_PAGE) {
    if ((pte >> 12 & 0xffffffffff) == <u64>gZeroPfn && (foll & FOLL_DUMP) == 0) { gupPfn = gZeroPfn; return 1; }
    // follow_pfn_pte: a present PFN with no struct page (MIXEDMAP, XIP) has no page to
    // hand out; population, which wants none, skips it (-EEXIST).
    return -EEXIST;
  }
  if ((foll & FOLL_TOUCH) != 0) {
    page_set(page, PG_referenced);
    pte = pte_mkyoung(pte);
    if ((foll & FOLL_WRITE) != 0) {
      pte = pte_mkdirty(pte);
      if (!page_is_anon(page)) mark_page_dirty(page);
    }
    store<u64>(slot, pte);
  }
  // seed 003 (follow_page on a VM_LOCKED VMA makes the page stable) needs nothing here:
  // mlock_fixup marked the file AS_MLOCKED before populating, and hinting.ts derives the
  // usage state from that, so every page GUP finds in a locked file mapping is stable.
  gupPfn = page;
  return 1;
}

// check_vma_flags for GUP: IO/PFNMAP refused; write needs W (or FORCE on a COW mapping);
// read needs R (or FORCE with MAYREAD).
function check_vma_flags(v: u32, foll: u32): i32 {
  const f = vma_flags(v);
  if ((f & (VM_IO | VM_PFNMAP)) != 0) return -EFAULT;
  if ((foll & FOLL_WRITE) != 0) {
    if ((f & VM_WRITE) == 0 && !((foll & FOLL_FORCE) != 0 && is_cow_mapping(f))) return -EFAULT;
  } else if ((f & VM_READ) == 0 && !((foll & FOLL_FORCE) != 0 && (f & VM_MAYREAD) != 0)) {
    return -EFAULT;
  }
  return 0;
}

// Fault in one page for GUP; returns 0, 1 (RETRY|MAJOR: the lock was dropped for I/O and
// nothing mapped; FOLL_UNLOCKABLE only) or -errno (R8.1 translations are the caller's).
function faultin_page(mm: u32, v: u32, va: u64, foll: u32, unshare: bool): i32 {
  let flags: u32 = 0;
  if ((foll & FOLL_WRITE) != 0) flags |= FAULT_FLAG_WRITE;
  else if (unshare) flags |= FAULT_FLAG_UNSHARE;
  if ((foll & FOLL_UNLOCKABLE) != 0) flags |= FAULT_FLAG_ALLOW_RETRY;
  if ((foll & FOLL_TRIED) != 0) flags |= FAULT_FLAG_TRIED;
  const ret = handle_mm_fault(mm, v, va, flags);
  mm_account_fault(mm, ret, flags);
  if ((ret & (VM_FAULT_RETRY | VM_FAULT_MAJOR)) == (VM_FAULT_RETRY | VM_FAULT_MAJOR)) return 1;
  if ((ret & VM_FAULT_ERROR) == 0) return 0;
  if ((ret & VM_FAULT_OOM) != 0) return -ENOMEM;
  if ((ret & VM_FAULT_HWPOISON) != 0) return -EHWPOISON;
  return -EFAULT; // SIGBUS or SIGSEGV
}

// __get_user_pages over [start, start + n pages). With FOLL_PIN each page is pinned and
// its pfn stored at `out` (u32 each) if out != 0. Returns pages done or -errno if none.
export function get_user_pages(mm: u32, start: u64, n: u32, foll: u32, out: usize): i32 {
  let done: u32 = 0;
  while (done < n) {
    const va = start + (<u64>done << 12);
    const v = find_vma(mm, va);
    if (v == 0 || vma_start(v) > va) return done > 0 ? <i32>done : -EFAULT;
    const c = check_vma_flags(v, foll);
    if (c < 0) return done > 0 ? <i32>done : c;
    let tries = 0;
    let tried: u32 = 0;
    for (;;) {
      const r = follow_page_pte(mm, v, va, foll);
      if (r == 1) break;
      if (r == -EEXIST && out == 0 && (foll & FOLL_PIN) == 0) { gupPfn = 0xffff_ffff; break; }
      if (r < 0) return done > 0 ? <i32>done : (r == -EEXIST ? -EFAULT : r);
      if (++tries > 3) return done > 0 ? <i32>done : -EFAULT;
      const e = faultin_page(mm, v, va, foll | tried, r == 2);
      if (e < 0) return done > 0 ? <i32>done : e;
      // A populate whose fault dropped mmap_lock (a major fault's retry) returns from
      // populate_vma_page_range, which drains, and __mm_populate resumes here (R8.6).
      if (e == 1 && (foll & FOLL_POPULATE) != 0) lru_add_drain();
      if (e == 1 && (foll & FOLL_POPULATE) == 0) tried = FOLL_TRIED; // see FOLL_UNLOCKABLE
    }
    if ((foll & FOLL_PIN) != 0 && gupPfn != gZeroPfn && gupPfn != 0xffff_ffff) {
      get_page(gupPfn);
      page_set(gupPfn, PG_pinned);
      mm_set_flag(mm, MMF_HAS_PINNED);
      mm_add_pinned(mm, 1);
    }
    if (out != 0) store<u32>(out + (<usize>done << 2), gupPfn);
    done++;
  }
  return <i32>done;
}

// R8.3 populate_vma_page_range over the VMAs of [start, end). Returns 0 or -errno
// (-EFAULT for PROT_NONE, -ENOMEM for holes); stops at the first error.
// `unlockable`: false for populate_vma_page_range(locked = NULL) (mprotect, R8.8): no retry.
// `ignoreErrors`: __mm_populate(ignore_errors = 1) (mlockall, MAP_POPULATE, MAP_LOCKED, R8.7,
// R9.4): a VMA that fails (PROT_NONE, SIGBUS past EOF) keeps what it populated and the walk
// goes on at the next VMA.
export function mm_populate(mm: u32, start: u64, end: u64, skipHoles: bool, unlockable: bool = true, ignoreErrors: bool = false): i32 {
  let va = start;
  while (va < end) {
    const v = find_vma(mm, va);
    if (v == 0 || vma_start(v) >= end) return skipHoles ? 0 : -ENOMEM;
    if (vma_start(v) > va) {
      if (!skipHoles) return -ENOMEM;
      va = vma_start(v);
    }
    const stop = vma_end(v) < end ? vma_end(v) : end;
    const f = vma_flags(v);
    // __mm_populate skips VM_IO / VM_PFNMAP VMAs, and populate_vma_page_range returns at once
    // for a VM_LOCKONFAULT one: neither drains (fuzz seed 1755393609 case 4746: MAP_POPULATE
    // under MCL_FUTURE|MCL_ONFAULT leaves a COW's munlock queued).
    if ((f & (VM_IO | VM_PFNMAP)) == 0 && (f & VM_LOCKONFAULT) == 0) {
      const r = populate_vma_page_range(mm, v, va, stop, f, unlockable);
      if (!ignoreErrors && r < 0) return r;
    }
    va = stop;
  }
  return 0;
}

// populate_vma_page_range over [va, stop) of VMA `v`: 0 or -errno (-EFAULT for PROT_NONE, as
// GUP refuses it, or a short populate). It ends with lru_add_drain whatever GUP did: each
// VMA's mlock entries are handled before the next VMA is populated (mlockall: a private VMA's
// COW munlock of a cache page, then a shared VMA's mlock of it, end mlocked; R8.6, R8.7).
function populate_vma_page_range(mm: u32, v: u32, va: u64, stop: u64, f: u32, unlockable: bool): i32 {
  let r: i32 = -EFAULT;
  if ((f & VM_ACCESS_FLAGS) != 0) {
    let foll = FOLL_TOUCH | (unlockable ? FOLL_UNLOCKABLE | FOLL_POPULATE : 0);
    if ((f & (VM_WRITE | VM_SHARED)) == VM_WRITE) foll |= FOLL_WRITE; // breaks COW
    else foll |= FOLL_FORCE;
    const n = <u32>((stop - va) >> 12);
    const done = get_user_pages(mm, va, n, foll, 0);
    r = done < 0 ? done : (<u32>done < n ? -EFAULT : 0);
  }
  lru_add_drain();
  return r;
}

// MAP_POPULATE / MAP_LOCKED: populate, errors ignored (R9.4).
export function populate_ignoring_errors(mm: u32, start: u64, len: u64): void {
  mm_populate(mm, start, start + len, true, true, true);
}

// Release pins taken by get_user_pages(FOLL_PIN).
import { put_page } from "./lru";
export function unpin_user_page(mm: u32, pfn: u32): void {
  if (pfn == gZeroPfn) return;
  if (mm != 0) mm_add_pinned(mm, -1);
  put_page(pfn);
}

