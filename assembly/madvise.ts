// madvise (R9.1-R9.3, LTP madvise01/02/10): argument checks, per-VMA flag advice with
// split and merge, DONTNEED's zap, WILLNEED's readahead, POPULATE_READ/WRITE.

import { lru_add_drain } from "./mlock_batch";
import { EINVAL, ENOMEM, EFAULT, EAGAIN, EACCES, EOPNOTSUPP, gGuardRegions, gPopulateRetryTried } from "./config";
import { VM_LOCKED, VM_PFNMAP, VM_IO, VM_HUGETLB, VM_DONTCOPY, VM_WIPEONFORK, VM_SEQ_READ,
  VM_RAND_READ, VM_HUGEPAGE, VM_NOHUGEPAGE, VM_DONTDUMP, VM_MERGEABLE, VM_SHARED, VM_READ,
  VM_WRITE, VM_MAYWRITE, VM_SPECIAL, vma_flags, set_vma_flags, vma_start, vma_end, vma_next, vma_file,
  vma_pgoff, vma_is_anonymous, VM_MAYSHARE, VMA_DAX, vma_iflags } from "./vma";
import { find_vma } from "./mm";
import { file_flags, file_nrpages, pc_lookup, AS_SHMEM, AS_DAX, AS_CAN_PUNCH } from "./mapping";
import { host_punch_hole } from "./host";
import { zap_page_range, unmap_mapping_range } from "./unmap";
import { tlb_gather_mmu, tlb_finish_mmu } from "./mmu_gather";
import { swapin_range } from "./swap";
import { pageout_range, cold_range, lazyfree_range } from "./reclaim";
import { page_cache_ra, remove_range, REMOVE_SUBPAGE } from "./filemap";
import { NO_PFN } from "./phys";
import { split_for_flags, vma_merge_around } from "./mmap";
import { get_user_pages, FOLL_TOUCH, FOLL_WRITE, FOLL_UNLOCKABLE, FOLL_POPULATE } from "./gup";

export const MADV_NORMAL: i32 = 0;
export const MADV_RANDOM: i32 = 1;
export const MADV_SEQUENTIAL: i32 = 2;
export const MADV_WILLNEED: i32 = 3;
export const MADV_DONTNEED: i32 = 4;
export const MADV_FREE: i32 = 8;
export const MADV_REMOVE: i32 = 9;
export const MADV_DONTFORK: i32 = 10;
export const MADV_DOFORK: i32 = 11;
export const MADV_MERGEABLE: i32 = 12;
export const MADV_UNMERGEABLE: i32 = 13;
export const MADV_HUGEPAGE: i32 = 14;
export const MADV_NOHUGEPAGE: i32 = 15;
export const MADV_DONTDUMP: i32 = 16;
export const MADV_DODUMP: i32 = 17;
export const MADV_WIPEONFORK: i32 = 18;
export const MADV_KEEPONFORK: i32 = 19;
export const MADV_COLD: i32 = 20;
export const MADV_PAGEOUT: i32 = 21;
export const MADV_POPULATE_READ: i32 = 22;
export const MADV_POPULATE_WRITE: i32 = 23;
export const MADV_DONTNEED_LOCKED: i32 = 24;
export const MADV_COLLAPSE: i32 = 25;
export const MADV_GUARD_INSTALL: i32 = 102;
export const MADV_GUARD_REMOVE: i32 = 103;

function known(advice: i32): bool {
  return (advice >= 0 && advice <= 4) || (advice >= 8 && advice <= 25) ||
    (gGuardRegions && (advice == MADV_GUARD_INSTALL || advice == MADV_GUARD_REMOVE)); // 6.13+
}

// Advice that only changes vm_flags: the new flags, or 0xffffffff for EINVAL.
function new_flags(v: u32, advice: i32): u32 {
  const f = vma_flags(v);
  switch (advice) {
    case MADV_NORMAL: return f & ~(VM_SEQ_READ | VM_RAND_READ);
    case MADV_RANDOM: return (f & ~VM_SEQ_READ) | VM_RAND_READ;
    case MADV_SEQUENTIAL: return (f & ~VM_RAND_READ) | VM_SEQ_READ;
    case MADV_DONTFORK: return f | VM_DONTCOPY;
    case MADV_DOFORK: return (f & VM_IO) != 0 ? 0xffff_ffff : f & ~VM_DONTCOPY;
    case MADV_WIPEONFORK:
      return (f & VM_SHARED) != 0 || !vma_is_anonymous(v) ? 0xffff_ffff : f | VM_WIPEONFORK;
    case MADV_KEEPONFORK: return f & ~VM_WIPEONFORK;
    case MADV_HUGEPAGE: return (f & ~VM_NOHUGEPAGE) | VM_HUGEPAGE;
    case MADV_NOHUGEPAGE: return (f & ~VM_HUGEPAGE) | VM_NOHUGEPAGE;
    case MADV_DONTDUMP: return f | VM_DONTDUMP;
    case MADV_DODUMP: return (f & VM_SPECIAL) != 0 ? 0xffff_ffff : f & ~VM_DONTDUMP;
    // R9.1 (ksm_madvise, vma_ksm_compatible): KSM only merges private memory; the advice
    // on a shared, special, hugetlb or DAX VMA is ignored: no flag, so no split.
    case MADV_MERGEABLE:
      return (f & (VM_SPECIAL | VM_SHARED | VM_MAYSHARE | VM_HUGETLB)) != 0 ||
        (vma_iflags(v) & VMA_DAX) != 0 ? f : f | VM_MERGEABLE;
    case MADV_UNMERGEABLE: return f & ~VM_MERGEABLE;
  }
  return f;
}

// new_flags in the shape split_for_flags calls.
function advice_flags(v: u32, advice: u32): u32 { return new_flags(v, <i32>advice); }

function is_flag_advice(a: i32): bool {
  return a == MADV_NORMAL || a == MADV_RANDOM || a == MADV_SEQUENTIAL || a == MADV_DONTFORK ||
    a == MADV_DOFORK || a == MADV_WIPEONFORK || a == MADV_KEEPONFORK || a == MADV_HUGEPAGE ||
    a == MADV_NOHUGEPAGE || a == MADV_DONTDUMP || a == MADV_DODUMP || a == MADV_MERGEABLE ||
    a == MADV_UNMERGEABLE;
}

export function do_madvise(mm: u32, start: u64, len: u64, advice: i32): i32 {
  if (!known(advice) || advice == 5 || advice == 6 || advice == 7) return -EINVAL;
  if ((start & 4095) != 0) return -EINVAL;
  const plen = (len + 4095) & ~(<u64>4095);
  if (plen < len) return -EINVAL;
  const end = start + plen;
  if (end < start) return -EINVAL;
  if (end == start) return 0;
  // A range reaching above TASK_SIZE is not refused as such: no VMA is there, so it is a
  // hole like any other (ENOMEM, after advising what is mapped).
  if (advice == MADV_POPULATE_READ || advice == MADV_POPULATE_WRITE) {
    const r = madvise_populate(mm, start, end, advice);
    lru_add_drain(); // a populate ends with the mlock batch drained (6.18 kpageflags, R8.6)
    return r;
  }
  // madvise_walk_vmas (R9.1): the advice is applied VMA by VMA. A hole is skipped and
  // reported as ENOMEM at the end (so is a range running past the last VMA); the first VMA
  // that refuses the advice stops the walk with its error, the VMAs before it advised.
  let unmapped: i32 = 0;
  let at = start;
  let v = find_vma(mm, start);
  while (at < end) {
    if (v == 0) return -ENOMEM;
    if (vma_start(v) > at) {
      unmapped = -ENOMEM;
      at = vma_start(v);
      if (at >= end) break;
    }
    const r = madvise_vma_behavior(mm, v, at, vma_end(v) < end ? vma_end(v) : end, advice);
    if (r < 0) return r;
    // Continue after the VMA that now covers `at`: a merge may have freed v or its next.
    at = vma_end(madvVma);
    v = vma_next(madvVma);
  }
  return unmapped;
}

// The VMA covering the range madvise_vma_behavior advised, after any split or merge.
let madvVma: u32 = 0;

// Advice on [s, e) inside VMA v (Linux's madvise_vma_behavior): 0 or -errno.
function madvise_vma_behavior(mm: u32, v: u32, s: u64, e: u64, advice: i32): i32 {
  madvVma = v;
  const f = vma_flags(v);
  if (is_flag_advice(advice)) {
    const nf = new_flags(v, advice);
    if (nf == 0xffff_ffff) return -EINVAL;
    if (nf == f) return 0; // madvise_update_vma: nothing to change, no split
    // madvise reports a failed split as EAGAIN ("kernel resources temporarily unavailable").
    const r = split_for_flags(mm, s, e, advice_flags, <u32>advice);
    if (r < 0) return r == -ENOMEM ? -EAGAIN : r;
    const w = find_vma(mm, s);
    set_vma_flags(w, nf);
    madvVma = vma_merge_around(mm, w);
    return 0;
  }
  if (advice == MADV_DONTNEED || advice == MADV_DONTNEED_LOCKED || advice == MADV_FREE) {
    // madvise_dontneed_free_valid_vma: only DONTNEED_LOCKED may touch a locked VMA (R8.2).
    if ((f & (VM_PFNMAP | VM_HUGETLB | (advice == MADV_DONTNEED_LOCKED ? 0 : VM_LOCKED))) != 0) return -EINVAL;
    if (advice == MADV_FREE) {
      if (!vma_is_anonymous(v)) return -EINVAL;
      lru_add_drain(); // lru_add_drain (R8.6)
      lazyfree_range(mm, v, s, e); // lazily freeable: reclaim discards what stays clean
      return 0;
    }
    tlb_gather_mmu(mm);
    zap_page_range(mm, v, s, e, true); // R9.1: "even cows"
    tlb_finish_mmu();
  } else if (advice == MADV_REMOVE) {
    const r = remove_allowed(v);
    if (r < 0) return r;
    const first = vma_pgoff(v) + ((s - vma_start(v)) >> 12);
    const file = vma_file(v);
    if ((file_flags(file) & AS_SHMEM) == 0) {
      // A disk file (ext4_punch_hole): the backend frees the bytes first, then the page
      // cache of the range goes as for shmem; the next access reads zeros (major, R11.6).
      const pr = host_punch_hole(file, <f64>(first << 12), <f64>(e - s));
      if (pr < 0) return pr;
    }
    shmem_punch_hole(file, first, first + ((e - s) >> 12) - 1);
  } else if (advice == MADV_WILLNEED) {
    const file = vma_file(v);
    if (file == 0 || (file_flags(file) & AS_SHMEM) != 0) {
      swapin_range(mm, v, s, e);
      lru_add_drain(); // anon and shmem WILLNEED end with lru_add_drain (R8.6)
    }
    else if ((file_flags(file) & AS_DAX) == 0) {
      const first = vma_pgoff(v) + ((s - vma_start(v)) >> 12);
      page_cache_ra(file, first, <u32>((e - s) >> 12), 0xffff_ffff_ffff_ffff);
    }
  } else if (advice == MADV_COLD || advice == MADV_PAGEOUT) {
    if ((f & (VM_LOCKED | VM_PFNMAP | VM_HUGETLB)) != 0) return -EINVAL; // can_madv_lru_vma
    lru_add_drain(); // lru_add_drain (R8.6)
    if (advice == MADV_PAGEOUT) pageout_range(mm, v, s, e);
    else cold_range(mm, v, s, e);
  } else if (advice == MADV_GUARD_INSTALL || advice == MADV_GUARD_REMOVE) {
    return madvise_guard(mm, v, s, e, advice == MADV_GUARD_INSTALL);
  } else if (advice == MADV_COLLAPSE) {
    return madvise_collapse(v, s, e);
  }
  return 0;
}

// R1.5, R11.3 guard regions (6.13+; conformance scenario guard-region), on [s, e) of VMA v.
// INSTALL zaps the range ("even cows"; markers already there stay) and leaves a guard marker
// in every PTE (a touch is SIGSEGV SEGV_MAPERR); the VMA gets an anon_vma so fork copies the
// markers. REMOVE clears the markers: the pages fault in afresh. EINVAL on VM_SPECIAL or
// hugetlb VMAs (INSTALL: locked ones too).
function madvise_guard(mm: u32, v: u32, s: u64, e: u64, install: bool): i32 {
  const bad = VM_SPECIAL | VM_HUGETLB | (install ? VM_LOCKED : 0);
  if ((vma_flags(v) & bad) != 0) return -EINVAL;
  const marker = swp_entry(SWP_MARKER_TYPE, PTE_MARKER_GUARD);
  if (install) {
    set_vma_iflags(v, vma_iflags(v) | VMA_MAYBE_GUARD); // no anon_vma: fork copies by the flag
    tlb_gather_mmu(mm);
    zap_page_range(mm, v, s, e, true);
    tlb_finish_mmu();
  }
  for (let va = s; va < e; va += 4096) {
    const before = nr_pgtables();
    const slot = pt_walk(mm_pgd(mm), va, LEVEL_PTE, install);
    mm_add_ptes(mm, <i32>(nr_pgtables() - before));
    if (slot == WALK_NOMEM) return -ENOMEM;
    if (slot <= WALK_HUGE) continue;
    const pte = load<u64>(slot);
    if (install && pte == 0) store<u64>(slot, marker);
    else if (!install && is_pte_marker(pte) && <u32>swp_offset(pte) == PTE_MARKER_GUARD) store<u64>(slot, 0);
  }
  return 0;
}
import { swp_entry, swp_offset, is_pte_marker, SWP_MARKER_TYPE, PTE_MARKER_GUARD } from "./pte";
import { pt_walk, nr_pgtables, LEVEL_PTE, WALK_NOMEM, WALK_HUGE } from "./pgtable";
import { mm_pgd, mm_add_ptes } from "./mm";
import { VMA_MAYBE_GUARD, vma_iflags, set_vma_iflags } from "./vma";
import { shmem_free_swap } from "./shmem_swap";

// MADV_REMOVE is fallocate(PUNCH_HOLE) on the file behind a shared mapping (madvise_remove):
// EINVAL for a locked VMA or one without a file (private anonymous memory), EACCES unless
// it is shared and may be written, EOPNOTSUPP where the file cannot punch holes (shmem and
// a backend with punchHole can: AS_CAN_PUNCH).
function remove_allowed(v: u32): i32 {
  const f = vma_flags(v);
  if ((f & VM_LOCKED) != 0) return -EINVAL;
  const file = vma_file(v);
  if (file == 0) return -EINVAL;
  if ((f & (VM_SHARED | VM_MAYWRITE)) != (VM_SHARED | VM_MAYWRITE)) return -EACCES;
  if ((file_flags(file) & (AS_SHMEM | AS_CAN_PUNCH)) == 0) return -EOPNOTSUPP;
  return 0;
}

// shmem's punch hole over file pages [first, last]: every mapping of them goes (in every
// address space; private copies stay, as in Linux), then the pages themselves, dirty or
// not. The next access finds a hole: zeros.
function shmem_punch_hole(file: u32, first: u64, last: u64): void {
  unmap_mapping_range(file, first, last, false);
  const before = file_nrpages(file);
  remove_range(file, first, last, REMOVE_SUBPAGE);
  // shmem_undo_range / truncate_inode_pages_range release their folio batch: a drain when
  // they dropped folios, as truncate's (fuzz seed 1200101973 case 2685, R8.6).
  if (file_nrpages(file) != before) lru_add_drain();
  shmem_free_swap(file, first, last); // pages shmem wrote to swap go too (R11.3)
}

// R9.3: populate without FOLL_FORCE; EINVAL for a VMA without the permission or a special
// VMA, ENOMEM for a hole, EFAULT when a fault fails.
function madvise_populate(mm: u32, start: u64, end: u64, advice: i32): i32 {
  const write = advice == MADV_POPULATE_WRITE;
  let va = start;
  while (va < end) {
    const v = find_vma(mm, va);
    if (v == 0 || vma_start(v) > va) return -ENOMEM;
    const f = vma_flags(v);
    if ((f & (VM_IO | VM_PFNMAP)) != 0) return -EINVAL;
    if (write ? (f & VM_WRITE) == 0 : (f & VM_READ) == 0) return -EINVAL;
    const e = vma_end(v) < end ? vma_end(v) : end;
    const n = <u32>((e - va) >> 12);
    // faultin_page_range: FOLL_UNLOCKABLE, a fault dropping the lock for I/O is retried with TRIED (R11.6).
    // Before 6.12 (gPopulateRetryTried off) the retry starts afresh, as __mm_populate's: minor.
    const r = get_user_pages(mm, va, n, FOLL_TOUCH | FOLL_UNLOCKABLE | (write ? FOLL_WRITE : 0) |
      (gPopulateRetryTried ? 0 : FOLL_POPULATE), 0);
    if (r < 0) return r == -ENOMEM ? -ENOMEM : -EFAULT;
    if (<u32>r < n) return -EFAULT;
    va = e;
  }
  return 0;
}


// MADV_COLLAPSE (6.1+; issue 14 N3) on [s, e) of VMA v, madvise_collapse: EINVAL unless a
// PMD-sized THP is allowed there for a forced collapse (thp_vma_allowable_order with
// TVA_FORCED_COLLAPSE: not VM_NOHUGEPAGE, not special, not DAX, and the VMA holds a whole
// aligned 2 MiB block with its file offset congruent). The range is then rounded inward to
// 2 MiB blocks, hstart up and hend down, and the answer is 0 when all (hend - hstart) >> 21
// blocks collapsed: with hstart == hend there is none to do (0); a range inside one block,
// touching neither of its edges, has hstart > hend, whose unsigned count is never reached
// (EINVAL, as 6.18 shows). The emulator keeps anonymous memory in 4 KiB pages, so a whole
// block fails as Linux's SCAN_FAIL does (EINVAL). The harness gives every map VM_NOHUGEPAGE,
// hence EINVAL for every mapped VMA in scenarios madv-collapse-einval / -no-pmd.
function madvise_collapse(v: u32, s: u64, e: u64): i32 {
  if (!collapse_allowed(v)) return -EINVAL;
  const hstart = (s + PMD_BYTES - 1) & ~(PMD_BYTES - 1);
  const hend = e & ~(PMD_BYTES - 1);
  return hstart == hend ? 0 : -EINVAL;
}

const PMD_BYTES: u64 = 2 << 20;

function collapse_allowed(v: u32): bool {
  if ((vma_flags(v) & (VM_NOHUGEPAGE | VM_SPECIAL | VM_HUGETLB)) != 0) return false;
  if ((vma_iflags(v) & VMA_DAX) != 0) return false;
  const haddr = (vma_end(v) - PMD_BYTES) & ~(PMD_BYTES - 1);
  if (vma_end(v) < PMD_BYTES || haddr < vma_start(v)) return false;
  // A file VMA's pages must line up with the file's 2 MiB folios.
  if (!vma_is_anonymous(v) && ((vma_pgoff(v) - (vma_start(v) >> 12)) & 511) != 0) return false;
  return true;
}
import { vma_iflags, VMA_DAX } from "./vma";
