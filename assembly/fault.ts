// The page-fault path: the arch entry (x86 do_user_addr_fault), handle_mm_fault and the
// do_* handlers, reading top-down as the decision table of LINUX-SPEC §1.

import { PAGE_SIZE, PAGE_MASK, PTRS_PER_TABLE, gZeroPfn, gUseZeroPage, gFaultAroundPages, gDaxFolios, pfn_is_xip,
  gNrFrames, gHasPteSpecial } from "./config";
import { _PAGE_PSE, _PAGE_RW, pfn_pte, pte_present, pte_protnone, pte_write, pte_mkdirty, pte_mkyoung,
  pte_mkwrite, pte_mkspecial, pte_pfn, pte_none, pte_young, pte_special } from "./pte";
import { PG_anon, PG_anon_exclusive, PG_swapbacked, PG_locked, PG_dirty, PG_swapcache, PG_hwpoison, PG_large, PG_tail, PG_uptodate,
  PG_readahead, PG_referenced, PG_head, PG_user, PG_lru, page_flags, page_set, page_ref,
  page_mapping, page_index, get_page, page_init_new_anon } from "./page";
import { NO_PFN, pfn_to_virt, alloc_pcp_user, pcp_take_raw } from "./phys";
import { LEVEL_PMD, WALK_NOMEM, WALK_HUGE, pt_walk, nr_pgtables, slot_addr, table_index, LEVEL_PTE } from "./pgtable";
import { tlb_flush_page, ACCESS_READ, ACCESS_WRITE, ACCESS_EXEC } from "./tlb";
import { PF_PROT, PF_DISCARD, psc_pmd_slot } from "./mmu";
import { lru_add, lru_add_new_anon, lru_push_new_anon, alloc_user_page, put_page, try_reclaim, folio_test_large, folio_head,
  folio_nr_pages } from "./lru";
import { VM_WRITE, VM_SHARED, VM_MAYSHARE, VM_MAYWRITE, VM_UFFD_WP, VM_UFFD_MISSING, VM_ACCESS_FLAGS, VM_GROWSDOWN,
  vma_flags, vma_start, vma_end, vma_file, vma_iflags, vma_page_prot, is_cow_mapping,
  linear_page_index, vma_is_anonymous, vma_pgoff, VMA_DAX, VM_LOCKED, VM_MIXEDMAP, anon_vma_prepare,
  VM_LOCKED_MASK, VM_SPECIAL, VM_RAND_READ } from "./vma";
import { mm_pgd, find_vma, mm_family, add_mm_counter, mm_add_ptes, mm_count_minflt, mm_count_minflt_n, mm_count_majflt,
  mm_flags, MMF_OOM_REAPED, RSS_ANON, RSS_FILE, RSS_SHMEM } from "./mm";
import { page_add_new_anon_rmap, page_remove_rmap, page_is_anon, page_dup_rmap } from "./rmap";
import { vm_normal_page, NO_PAGE, copy_from_pfn } from "./special";
import { immap_is_locked, immap_unlock, immap_fault_end, take_cow_done } from "./dax";
import { file_flags, AS_HAS_FAULT, AS_HAS_MAP_PAGES, AS_NO_MAP_PAGES, AS_HAS_PAGE_MKWRITE,
  AS_HAS_PFN_MKWRITE, AS_DAX, AS_SHMEM, mark_page_dirty, file_pages, pc_lookup, file_mmap_miss,
  set_file_mmap_miss } from "./mapping";
import { pte_alloc_vmf, prealloc_pte, release_prealloc, pte_lock, pte_unlock } from "./pte_alloc";
import { set_pte, do_set_pmd, huge_pmd_fault } from "./install";
import { mlock_new_folio, munlock_vma_folio, mlock_run_reset } from "./mlock_folio";
import { do_swap_page, folio_free_swap } from "./swap";
import { do_discard_fault } from "./hinting";
import { expand_stack } from "./stack";
import { filemap_fault, filemap_map_pages, take_eof_block_reread } from "./filemap";
import { host_fault, host_map_pages, host_page_mkwrite, host_pfn_mkwrite } from "./host";
import { vmf_fill, vmf_flags, vmf_vma, vmf_mm, vmf_address, vmf_pgoff, vmf_pte, vmf_orig_pte,
  vmf_page, vmf_cow_page, vmf_pmd, set_vmf_pmd, set_vmf_pte, set_vmf_orig_pte, set_vmf_page,
  set_vmf_cow_page, set_vmf_max_pgoff, VM_FAULT_OOM, VM_FAULT_SIGBUS, VM_FAULT_SIGSEGV,
  VM_FAULT_MAJOR, VM_FAULT_NOPAGE, VM_FAULT_LOCKED, VM_FAULT_RETRY, VM_FAULT_DONE_COW,
  VM_FAULT_ERROR, VM_FAULT_HWPOISON, VM_FAULT_FALLBACK, FAULT_FLAG_WRITE, FAULT_FLAG_USER, FAULT_FLAG_INSTRUCTION,
  FAULT_FLAG_TRIED, FAULT_FLAG_UNSHARE, FAULT_FLAG_ALLOW_RETRY } from "./vmfault";
import { count, count_n, ST_PGFAULT, ST_COW_COPY, ST_WP_REUSE, ST_ZERO_PAGE_MAP, ST_SIGSEGV, ST_SIGBUS,
  ST_DONE_COW } from "./stats";

// ---- signal delivered by the last failed access (R1.1 step 4, R1.7) ----
export const SIGBUS: i32 = 7;
export const SIGSEGV: i32 = 11;
export const SEGV_MAPERR: i32 = 1;
export const SEGV_ACCERR: i32 = 2;
export const BUS_ADRERR: i32 = 2;
export const BUS_MCEERR_AR: i32 = 4;
export const FAULT_OOM: i32 = -1; // not a signal: the host raises OutOfMemoryError
export const FAULT_RETRY: i32 = -2; // a backend must wait: the host retries asynchronously

export let sigNo: i32 = 0;
export let sigCode: i32 = 0;
export let sigAddr: u64 = 0;

function signal(no: i32, code: i32, addr: u64): i32 {
  sigNo = no;
  sigCode = code;
  sigAddr = addr;
  count(no == SIGSEGV ? ST_SIGSEGV : ST_SIGBUS);
  return no;
}

// The access at `va` made no progress: every fault said "handled" and the PTE still does not
// allow it (a backend's fault returning NOPAGE without mapping anything: Linux would retry
// for ever). SIGBUS for this access, with code 3 as an internal marker: the host delivers it
// as BUS_ADRERR (x86 do_sigbus) with the reason as cause. Nothing is half-updated, so the
// core lives on (found by tests/property/hostile.test.ts; it used to mark the whole Mmu dead).
export const BUS_OBJERR: i32 = 3;
export function fault_no_progress(va: u64): i32 { return signal(SIGBUS, BUS_OBJERR, va); }

// ---- the arch entry ----

// x86 access_error: may this access touch this VMA at all? (R1.1 step 2)
function access_error(vma: u32, access: u32, errorCode: u32): bool {
  const f = vma_flags(vma);
  if (access == ACCESS_WRITE) return (f & VM_WRITE) == 0;
  if ((errorCode & PF_PROT) != 0) return true; // read/exec protection fault on a present PTE
  return (f & VM_ACCESS_FLAGS) == 0;
}

// A user access at `va` that the walker refused with `errorCode`. Returns 0 when the fault
// was handled (retry the access), a signal number (sigNo/sigCode/sigAddr set), FAULT_OOM
// or FAULT_RETRY.
export function do_user_addr_fault(mm: u32, va: u64, access: u32, errorCode: u32): i32 {
  if ((errorCode & PF_DISCARD) != 0) { do_discard_fault(mm, va); return 0; } // R12.2
  const vma = find_vma(mm, va);
  if (vma == 0 || va < vma_start(vma)) {
    // R1.1 step 1: a grows-down stack may expand to cover the address.
    if (vma == 0 || (vma_flags(vma) & VM_GROWSDOWN) == 0 || !expand_stack(mm, vma, va)) {
      return signal(SIGSEGV, SEGV_MAPERR, va);
    }
  }
  if (access_error(vma, access, errorCode)) return signal(SIGSEGV, SEGV_ACCERR, va);
  // Issue 17: the common faults take a direct path.
  if (access == ACCESS_WRITE) {
    if (gDirectFaults) {
      const r = (errorCode & PF_PROT) != 0 ? wp_anon_fast(mm, vma, va) :
        vma_is_anonymous(vma) ? anon_write_fast(mm, vma, va) : cow_file_fast(mm, vma, va);
      if (r != FAST_NO) return r;
    }
  } else if (access == ACCESS_READ && gFaultAroundPages <= 1 && gDirectFaults && !vma_is_anonymous(vma)) {
    const r = file_read_fast(mm, vma, va);
    if (r != FAST_NO) return r;
  }
  let flags = FAULT_FLAG_USER | FAULT_FLAG_ALLOW_RETRY;
  if (access == ACCESS_WRITE) flags |= FAULT_FLAG_WRITE;
  if (access == ACCESS_EXEC) flags |= FAULT_FLAG_INSTRUCTION;
  let ret = handle_mm_fault(mm, vma, va, flags);
  // R1.1 step 4: RETRY|MAJOR = the lock was dropped for I/O that is done now: retry at once
  // with FAULT_FLAG_TRIED (counted major, R11.6). A bare RETRY (an asynchronous backend
  // must wait) goes back to the host.
  if ((ret & (VM_FAULT_RETRY | VM_FAULT_MAJOR)) == (VM_FAULT_RETRY | VM_FAULT_MAJOR)) {
    flags |= FAULT_FLAG_TRIED;
    ret = handle_mm_fault(mm, vma, va, flags);
  }
  return fault_result(mm, va, ret, flags);
}

// Account a handle_mm_fault result (R11.5) and turn it into a signal (R1.1 step 4).
export function fault_result(mm: u32, va: u64, ret: u32, flags: u32): i32 {
  if ((ret & VM_FAULT_RETRY) != 0) return FAULT_RETRY;
  mm_account_fault(mm, ret, flags);
  if ((ret & VM_FAULT_ERROR) == 0) return 0;
  if ((ret & VM_FAULT_OOM) != 0) return FAULT_OOM;
  if ((ret & VM_FAULT_HWPOISON) != 0) return signal(SIGBUS, BUS_MCEERR_AR, va);
  if ((ret & VM_FAULT_SIGBUS) != 0) return signal(SIGBUS, BUS_ADRERR, va);
  return signal(SIGSEGV, SEGV_MAPERR, va); // VM_FAULT_SIGSEGV reports MAPERR (R1.1)
}

// mm_account_fault (R11.5): errors count nowhere per task; MAJOR or TRIED is major.
export function mm_account_fault(mm: u32, ret: u32, flags: u32): void {
  if ((ret & (VM_FAULT_RETRY | VM_FAULT_ERROR)) != 0) return;
  if ((ret & VM_FAULT_MAJOR) != 0 || (flags & FAULT_FLAG_TRIED) != 0) mm_count_majflt(mm);
  else mm_count_minflt(mm);
}

// ---- direct paths for the common write faults (issue 17) ----
// Each one handles one frequent case in a straight line, with the exact state changes of
// the general path (handle_mm_fault and its do_* handlers) and the accounting of
// fault_result, and returns FAST_NO before changing anything when the case is not exactly
// its own: the general path then decides. No fault record, no dispatch.
const FAST_NO: i32 = 0x7fff_ffff;

// The direct paths are on (tests turn them off to compare both paths' state: index.ts
// mmu_set_direct_faults).
export let gDirectFaults = true;
export function set_direct_faults(on: bool): void { gDirectFaults = on; }

// A VMA these paths take: private, writable, not locked (mlock_new_folio), no userfaultfd,
// not a PFN/mixed/IO mapping (vm_normal_page's special rules), `va` inside it (no stack
// expansion). R1.2's sanitize_fault_flags passes for it (VM_MAYWRITE).
const FAST_VMA_MASK: u32 = VM_WRITE | VM_MAYWRITE | VM_SHARED | VM_MAYSHARE | VM_LOCKED_MASK |
  VM_UFFD_MISSING | VM_UFFD_WP | VM_SPECIAL;
@inline function fast_vma_ok(mm: u32, vma: u32, va: u64): bool {
  return (vma_flags(vma) & FAST_VMA_MASK) == (VM_WRITE | VM_MAYWRITE) && va >= vma_start(vma) &&
    (mm_flags(mm) & MMF_OOM_REAPED) == 0;
}

// The PTE slot of `addr` when the walk that faulted left its PMD in the paging-structure
// cache and that PMD points to a PTE table; else 0 (a new table, a huge PMD: general path).
@inline function fast_pte_slot(mm: u32, addr: u64): usize {
  const pmdSlot = psc_pmd_slot(mm_pgd(mm), addr);
  if (pmdSlot == 0) return 0;
  const pmd = load<u64>(pmdSlot);
  if (pmd == 0 || (pmd & _PAGE_PSE) != 0) return 0;
  return slot_addr(<u32>((pmd & 0x000f_ffff_ffff_f000) >> 12), table_index(addr, LEVEL_PTE));
}

// R4.2 do_anonymous_page for a write to a none PTE of a private anonymous VMA: a zeroed
// exclusive page (phys.ts alloc_pcp_user: the per-cpu list's hottest frame, else the buddy
// allocator's), its anon rmap, the LRU, RSS, a writable dirty young PTE, one minor fault.
// A guard or uffd marker, a swap entry, a missing PTE table or no free frame without
// reclaim go the general way.
function anon_write_fast(mm: u32, vma: u32, va: u64): i32 {
  if (!fast_vma_ok(mm, vma, va)) return FAST_NO;
  const addr = va & PAGE_MASK;
  const slot = fast_pte_slot(mm, addr);
  if (slot == 0 || load<u64>(slot) != 0) return FAST_NO;
  return anon_write_at(mm, vma, addr, slot, vma_page_prot(vma), false) != 0 ? 0 : FAST_NO;
}

// anon_write_fast once its VMA and none PTE at `slot` are known (`prot` = the VMA's
// vma_page_prot): the PTE it installed, or 0, nothing changed, when no frame is free
// without reclaim. `run`: a bulk touch's fault (run_fault), its counts added at the run's end.
@inline function anon_write_at(mm: u32, vma: u32, addr: u64, slot: usize, prot: u64, run: bool): u64 {
  const page = new_anon_page(mm, vma, addr);
  if (page == NO_PFN) return 0;
  fast_rss(mm, RSS_ANON, run);
  const entry = pte_mkwrite(pte_mkdirty(pfn_pte(page, prot)));
  store<u64>(slot, entry);
  fast_fault_done(mm, run);
  // The zeroing last: only the frame and the PTE are live across the call (issue 17, t17f).
  memory.fill(pfn_to_virt(page), 0, PAGE_SIZE);
  return entry;
}

// A new exclusive anonymous page for `vma` at `addr` on the inactive anon LRU, as
// alloc_pcp_user + page_add_new_anon_rmap + lru_add_new_anon leave it; NO_PFN when no
// frame is free without reclaim. From the per-cpu list its struct page is written once
// (issue 17, t17f: phys.ts pcp_take_raw, page.ts page_init_new_anon); otherwise (the buddy
// allocator's frame, or the fused writers off) the three writers in turn.
const NEW_ANON_FLAGS: u32 = PG_head | PG_user | PG_anon | PG_swapbacked | PG_anon_exclusive | PG_uptodate | PG_lru;
@inline function new_anon_page(mm: u32, vma: u32, addr: u64): u32 {
  const page = pcp_take_raw();
  if (page == NO_PFN) return new_anon_page_slow(mm, vma, addr);
  const fam = mm_family(mm);
  page_init_new_anon(page, NEW_ANON_FLAGS, fam, addr >> 12, lru_push_new_anon(page));
  anon_vma_prepare(vma); // normally done already (vmf_anon_prepare)
  return page;
}
function new_anon_page_slow(mm: u32, vma: u32, addr: u64): u32 {
  const page = alloc_pcp_user();
  if (page == NO_PFN) return NO_PFN;
  page_add_new_anon_rmap(page, mm, vma, addr);
  lru_add_new_anon(page);
  return page;
}

// The accounting of a direct path's fault (fault_result's minor fault, handle_mm_fault's
// pgfault count) and RSS: at once, or for a bulk touch's run (`run`) in its sums, which
// run_fault_flush adds when the run ends or before anything else runs.
let runFaults: u32 = 0;
let runRssAnon: i32 = 0;
let runRssFile: i32 = 0;
let runRssShmem: i32 = 0;
@inline function fast_fault_done(mm: u32, run: bool): void {
  if (run) {
    runFaults++;
  } else {
    count(ST_PGFAULT);
    mm_count_minflt(mm);
  }
}
@inline function fast_rss(mm: u32, kind: u32, run: bool): void {
  if (!run) add_mm_counter(mm, kind, 1);
  else if (kind == RSS_ANON) runRssAnon++;
  else if (kind == RSS_FILE) runRssFile++;
  else runRssShmem++;
}

// R5.2-R5.4 do_wp_page for a write to a present read-only PTE in a private VMA that maps
// a small anonymous page (not in the swap cache) or the zero page: reuse when the page is
// exclusive or its only reference is this PTE (R5.3), else copy it (wp_page_copy, R5.4):
// the new exclusive page replaces the old one after the TLB flush, the old one loses its
// mapping and reference. A special PTE, a file or large page, the swap cache and
// architectures without pte_special go the general way.
function wp_anon_fast(mm: u32, vma: u32, va: u64): i32 {
  if (!gHasPteSpecial || !fast_vma_ok(mm, vma, va)) return FAST_NO;
  const addr = va & PAGE_MASK;
  const slot = fast_pte_slot(mm, addr);
  if (slot == 0) return FAST_NO;
  return wp_anon_at(mm, vma, addr, slot, load<u64>(slot), vma_page_prot(vma), false) != 0 ? 0 : FAST_NO;
}

// wp_anon_fast once its VMA and the PTE `orig` at `slot` are known: the PTE it installed,
// or 0, nothing changed, when the case is not its own. `run` as for anon_write_at.
@inline function wp_anon_at(mm: u32, vma: u32, addr: u64, slot: usize, orig: u64, prot: u64, run: bool): u64 {
  if (!pte_present(orig) || pte_write(orig) || pte_protnone(orig)) return 0;
  const old = pte_pfn(orig);
  const zero = old == gZeroPfn;
  if (!zero) {
    if (pte_special(orig) || old >= gNrFrames) return 0;
    const f = page_flags(old);
    if ((f & (PG_anon | PG_swapcache | PG_large | PG_tail)) != PG_anon) return 0;
    if ((f & PG_anon_exclusive) != 0 || page_ref(old) == 1) {
      page_set(old, PG_anon_exclusive);
      const reuse = pte_mkwrite(pte_mkyoung(pte_mkdirty(orig)));
      store<u64>(slot, reuse); // no flush: a raise
      count(ST_WP_REUSE);
      fast_fault_done(mm, run);
      return reuse;
    }
  }
  const page = new_anon_page(mm, vma, addr); // gives the VMA its anon_vma (vmf_anon_prepare)
  if (page == NO_PFN) return 0;
  if (zero) {
    memory.fill(pfn_to_virt(page), 0, PAGE_SIZE);
    fast_rss(mm, RSS_ANON, run);
  } else {
    memory.copy(pfn_to_virt(page), pfn_to_virt(old), PAGE_SIZE);
  }
  tlb_flush_page(mm, addr); // the old translation dies before the old page can
  const entry = pte_mkwrite(pte_mkdirty(pte_mkyoung(pfn_pte(page, prot))));
  store<u64>(slot, entry);
  if (!zero) {
    page_remove_rmap(old);
    put_page(old);
  }
  count(ST_COW_COPY);
  fast_fault_done(mm, run);
  return entry;
}

// R5.1 do_cow_fault for a write to a none PTE of a private file VMA whose page is in the
// page cache, small, up to date, not readahead-marked nor poisoned, below EOF: what
// filemap_fault's hit does (one mmap_miss paid back unless MADV_RANDOM, PG_referenced),
// then the copy into a new exclusive anonymous page mapped writable (finish_fault's
// set_pte for a COW page). A backend with its own fault, DAX, shmem, a miss (read-around,
// major) and anything unusual go the general way.
function cow_file_fast(mm: u32, vma: u32, va: u64): i32 {
  const vf = vma_flags(vma);
  if ((vf & FAST_VMA_MASK) != (VM_WRITE | VM_MAYWRITE)) return FAST_NO; // fast_vma_ok
  const file = vma_file(vma);
  const addr = va & PAGE_MASK;
  const slot = fast_file_slot(mm, vma, file, va);
  if (slot == 0) return FAST_NO;
  return cow_file_at(mm, vma, file, vf, addr, slot, vma_page_prot(vma), false) != 0 ? 0 : FAST_NO;
}

// The direct file paths' common checks: `va` inside the VMA, the file's case one of theirs
// (fast_file_vma_ok), the PTE table present: the PTE slot of `va`, else 0.
function fast_file_slot(mm: u32, vma: u32, file: u32, va: u64): usize {
  if (va < vma_start(vma) || !fast_file_vma_ok(mm, vma, file)) return 0;
  return fast_pte_slot(mm, va & PAGE_MASK);
}

// cow_file_fast once its VMA (flags `vf`, file `file`, vma_page_prot `prot`) and the PTE
// slot are known: the PTE it installed, or 0, nothing changed, when the case is not its
// own. `run` as for anon_write_at.
@inline function cow_file_at(mm: u32, vma: u32, file: u32, vf: u32, addr: u64, slot: usize, prot: u64, run: bool): u64 {
  const src = cached_page_at(vma, file, addr, slot, PG_readahead | PG_hwpoison | PG_large | PG_tail);
  if (src == NO_PFN) return 0;
  const page = new_anon_page(mm, vma, addr); // gives the VMA its anon_vma (vmf_anon_prepare)
  if (page == NO_PFN) return 0;
  take_cow_done(); // forget a stale mark, as do_cow_fault does
  filemap_hit_fast(file, vf, src);
  memory.copy(pfn_to_virt(page), pfn_to_virt(src), PAGE_SIZE);
  fast_rss(mm, RSS_ANON, run);
  const entry = pte_mkwrite(pte_mkdirty(pte_mkyoung(pfn_pte(page, prot))));
  store<u64>(slot, entry);
  immap_fault_end(file);
  fast_fault_done(mm, run);
  return entry;
}

// The per-VMA conditions of the direct file paths (cow_file_fast, file_read_fast): not
// DAX, the file without its own fault, not DAX nor shmem, the mm not OOM-reaped.
@inline function fast_file_vma_ok(mm: u32, vma: u32, file: u32): bool {
  return (vma_iflags(vma) & VMA_DAX) == 0 && (file_flags(file) & (AS_HAS_FAULT | AS_DAX | AS_SHMEM)) == 0 &&
    (mm_flags(mm) & MMF_OOM_REAPED) == 0;
}

// The page-cache page for a write or read of the PTE at `slot` (page address `addr`) in
// file VMA `vma`, for the direct paths: none if the PTE is not none, the page is past EOF
// or not cached, not uptodate, or has any of `bad`.
@inline function cached_page_at(vma: u32, file: u32, addr: u64, slot: usize, bad: u32): u32 {
  if (load<u64>(slot) != 0) return NO_PFN;
  const pgoff = vma_pgoff(vma) + ((addr - vma_start(vma)) >> 12); // linear_page_index
  if (pgoff >= file_pages(file)) return NO_PFN;
  const page = pc_lookup(file, pgoff);
  if (page == NO_PFN || (page_flags(page) & (PG_uptodate | bad)) != PG_uptodate) return NO_PFN;
  return page;
}

// filemap_fault's page-cache hit: do_async_mmap_readahead pays one mmap_miss back (not
// under MADV_RANDOM) and the folio is marked referenced.
@inline function filemap_hit_fast(file: u32, vf: u32, page: u32): void {
  if ((vf & VM_RAND_READ) == 0) {
    const miss = file_mmap_miss(file);
    if (miss > 0) set_file_mmap_miss(file, miss - 1);
  }
  page_set(page, PG_referenced);
}

// R2.7 / R3.2 do_read_fault with fault-around off (should_fault_around false: a window of
// one page) for a read through a none PTE of a file VMA (private or shared) whose page is
// in the page cache, small, up to date, not locked, readahead-marked nor poisoned, below
// EOF: filemap_fault's hit (a reference for the PTE, one mmap_miss paid back unless
// MADV_RANDOM, PG_referenced), then finish_fault's set_pte: a young PTE with the VMA's
// protection (read-only for a private VMA; dirty for a writable shared PTE of a dirty
// page, R2.6), the file RSS, the mapcount, one minor fault. A marked page (its async
// readahead), a miss (read-around, major), a backend with its own fault, shmem, DAX, a
// locked, uffd or special VMA and any marker go the general way.
const READ_FAST_VMA_BAD: u32 = VM_LOCKED_MASK | VM_UFFD_MISSING | VM_UFFD_WP | VM_SPECIAL;
function file_read_fast(mm: u32, vma: u32, va: u64): i32 {
  const vf = vma_flags(vma);
  if ((vf & READ_FAST_VMA_BAD) != 0) return FAST_NO;
  const file = vma_file(vma);
  const addr = va & PAGE_MASK;
  const slot = fast_file_slot(mm, vma, file, va);
  if (slot == 0) return FAST_NO;
  return file_read_at(mm, vma, file, vf, addr, slot, vma_page_prot(vma), false) != 0 ? 0 : FAST_NO;
}

// file_read_fast once its VMA and the PTE slot are known: the PTE it installed, or 0,
// nothing changed, when the case is not its own. `run` as for anon_write_at.
@inline function file_read_at(mm: u32, vma: u32, file: u32, vf: u32, addr: u64, slot: usize, prot: u64, run: bool): u64 {
  const page = cached_page_at(vma, file, addr, slot, PG_locked | PG_readahead | PG_hwpoison | PG_large | PG_tail);
  if (page == NO_PFN) return 0;
  const f = page_flags(page);
  let entry = pte_mkyoung(pfn_pte(page, prot));
  take_eof_block_reread(); // forget a stale mark, as do_read_fault does
  get_page(page); // the PTE's reference
  filemap_hit_fast(file, vf, page);
  if ((vf & VM_SHARED) != 0 && (entry & _PAGE_RW) != 0 && (f & PG_dirty) != 0) entry = pte_mkdirty(entry);
  fast_rss(mm, (f & PG_swapbacked) != 0 ? RSS_SHMEM : RSS_FILE, run);
  page_dup_rmap(page);
  store<u64>(slot, entry);
  immap_fault_end(file);
  fast_fault_done(mm, run);
  return entry;
}

// ---- a bulk touch's faults, taken in its run (issue 17) ----
// uaccess.ts touch_run hands each none or write-protected PTE of its run to run_fault
// with the slot it walked to. run_fault finds the VMA once for the pages up to its end
// (run_fault_vma) and does what do_user_addr_fault does for such a fault inside that VMA
// (no stack expansion, access_error passed, the same direct path), without the VMA lookup
// and the dispatch. Anything a direct path does not take goes back to touch_run, which
// calls do_user_addr_fault for it and then run_fault_drop.

// The run's faults are taken this way (default); off: each one through do_user_addr_fault
// (tests compare both: index.ts mmu_set_run_faults).
export let gRunFaults = true;
export function set_run_faults(on: bool): void { gRunFaults = on; }

const RUN_NONE_PTE: u32 = 1; // a none PTE goes to a direct path
const RUN_WP_PTE: u32 = 2; // a present read-only PTE under a write goes to wp_anon_fast

// The run's VMA: its end (0: none known), which faults in it take a direct path, and its
// constants. Valid while only direct paths ran since run_fault_begin; a VMA whose faults
// take none stays so up to its end even after general faults (do_user_addr_fault is never
// wrong, only slower).
let runVmaEnd: u64 = 0;
let runKinds: u32 = 0;
let runVma: u32 = 0;
let runVf: u32 = 0;
let runFile: u32 = 0;
let runProt: u64 = 0;

// A run over [p, stop) starts: forget the last run's VMA. May any of its faults for
// `access` take a direct path? A read only with fault-around off (do_user_addr_fault's
// dispatch), an exec never; and the VMA at `p` decides at once: one that takes no direct
// path and reaches `stop` leaves the whole run to do_user_addr_fault, in the loop without
// the run-fault branch (a shared file write: do_shared_fault, no per-page check).
export function run_fault_begin(mm: u32, p: u64, stop: u64, access: u32): bool {
  runVmaEnd = 0;
  if (!(gDirectFaults && gRunFaults && (access == ACCESS_WRITE || (access == ACCESS_READ && gFaultAroundPages <= 1)))) return false;
  return !run_fault_lookup(mm, p, access) || runKinds != 0 || runVmaEnd < stop;
}

// The run's VMA for page `addr`: found (runVmaEnd, runKinds and its constants set), or
// false when no VMA holds `addr` (then every fault there takes do_user_addr_fault).
function run_fault_lookup(mm: u32, addr: u64, access: u32): bool {
  const vma = find_vma(mm, addr);
  runKinds = 0;
  runVmaEnd = 0;
  if (vma == 0 || addr < vma_start(vma)) return false;
  runKinds = run_fault_vma(mm, vma, access);
  runVmaEnd = vma_end(vma);
  return true;
}

// The general path ran: it may have changed the VMA (a VMA without direct faults stays).
@inline export function run_fault_drop(): void {
  if (runKinds != 0) runVmaEnd = 0;
}

// Which of a run's faults in `vma` (which contains them) take a direct path for `access`:
// the per-VMA half of do_user_addr_fault's access_error and dispatch and of the direct
// paths' own VMA checks. 0 when none (then every fault takes do_user_addr_fault).
function run_fault_vma(mm: u32, vma: u32, access: u32): u32 {
  const vf = vma_flags(vma);
  const file = vma_file(vma);
  runVma = vma;
  runVf = vf;
  runFile = file;
  runProt = vma_page_prot(vma);
  if (access == ACCESS_WRITE) {
    if ((vf & FAST_VMA_MASK) != (VM_WRITE | VM_MAYWRITE) || (mm_flags(mm) & MMF_OOM_REAPED) != 0) return 0;
    const wp = gHasPteSpecial ? RUN_WP_PTE : 0;
    return file == 0 || fast_file_vma_ok(mm, vma, file) ? wp | RUN_NONE_PTE : wp;
  }
  // A read: access_error passes for a readable, writable or executable VMA; the direct
  // read path runs with fault-around off.
  if (access == ACCESS_READ && gFaultAroundPages <= 1 && file != 0 && (vf & VM_ACCESS_FLAGS) != 0 &&
      (vf & READ_FAST_VMA_BAD) == 0 && fast_file_vma_ok(mm, vma, file)) return RUN_NONE_PTE;
  return 0;
}

// One fault of a run at page `addr`, whose PTE at `slot` is `orig` (none, or present and
// read-only under a write), taken by the direct path do_user_addr_fault would take: the
// PTE installed, or 0, nothing changed, when that path declines it (or no VMA holds
// `addr`). Its fault and RSS counts wait in the run's sums (run_fault_flush).
export function run_fault(mm: u32, addr: u64, slot: usize, orig: u64, access: u32): u64 {
  if (addr >= runVmaEnd && !run_fault_lookup(mm, addr, access)) return 0;
  if ((runKinds & (orig == 0 ? RUN_NONE_PTE : RUN_WP_PTE)) == 0) return 0;
  const vma = runVma;
  if (orig != 0) return wp_anon_at(mm, vma, addr, slot, orig, runProt, true);
  if (access != ACCESS_WRITE) return file_read_at(mm, vma, runFile, runVf, addr, slot, runProt, true);
  if (runFile == 0) return anon_write_at(mm, vma, addr, slot, runProt, true);
  return cow_file_at(mm, vma, runFile, runVf, addr, slot, runProt, true);
}

// Add the run's fault and RSS sums to `mm` and the pgfault count (the counters are sums:
// the same totals as per fault). touch_run calls it before anything else can look.
export function run_fault_flush(mm: u32): void {
  if (runFaults == 0) return;
  count_n(ST_PGFAULT, <f64>runFaults);
  mm_count_minflt_n(mm, <f64>runFaults);
  if (runRssAnon != 0) add_mm_counter(mm, RSS_ANON, runRssAnon);
  if (runRssFile != 0) add_mm_counter(mm, RSS_FILE, runRssFile);
  if (runRssShmem != 0) add_mm_counter(mm, RSS_SHMEM, runRssShmem);
  runFaults = 0;
  runRssAnon = 0;
  runRssFile = 0;
  runRssShmem = 0;
}

// ---- handle_mm_fault ----

// R1.3/R1.4: build the fault record, allocate the upper levels, dispatch on the PTE.
export function handle_mm_fault(mm: u32, vma: u32, address: u64, flags: u32): u32 {
  count(ST_PGFAULT);
  mlock_run_reset();
  const addr = address & PAGE_MASK;
  const vf = vma_flags(vma);
  // R1.2 sanitize_fault_flags.
  if ((flags & FAULT_FLAG_WRITE) != 0) {
    if ((vf & VM_MAYWRITE) == 0) return VM_FAULT_SIGSEGV;
    if ((vf & VM_WRITE) == 0 && !is_cow_mapping(vf)) return VM_FAULT_SIGSEGV;
  }
  if ((flags & FAULT_FLAG_UNSHARE) != 0 && !is_cow_mapping(vf)) flags &= ~FAULT_FLAG_UNSHARE;
  vmf_fill(mm, vma, addr, vma_is_anonymous(vma) ? 0 : linear_page_index(vma, addr), flags);
  // The walk that faulted usually left this PMD in the paging-structure cache (issue 17).
  let pmdSlot = psc_pmd_slot(mm_pgd(mm), addr);
  if (pmdSlot == 0) {
    const before = nr_pgtables();
    pmdSlot = pt_walk(mm_pgd(mm), addr, LEVEL_PMD, true);
    if (pmdSlot == WALK_NOMEM && try_reclaim(32) > 0) pmdSlot = pt_walk(mm_pgd(mm), addr, LEVEL_PMD, true);
    mm_add_ptes(mm, <i32>(nr_pgtables() - before));
  }
  if (pmdSlot == WALK_NOMEM) return VM_FAULT_OOM;
  if (pmdSlot <= WALK_HUGE) return VM_FAULT_SIGBUS; // a 1 GiB leaf: not made by this core
  set_vmf_pmd(pmdSlot);
  let pmd = load<u64>(pmdSlot);
  if (pmd != 0 && (pmd & _PAGE_PSE) != 0) {
    // R3.3: a PMD-mapped folio. FALLBACK: the PMD was split; go on at PTE level.
    const r = huge_pmd_fault();
    if (r != VM_FAULT_FALLBACK) return r;
    pmd = load<u64>(pmdSlot);
  }
  if (pmd != 0) {
    const slot = slot_addr(<u32>((pmd & 0x000f_ffff_ffff_f000) >> 12), table_index(addr, LEVEL_PTE));
    set_vmf_pte(slot);
    set_vmf_orig_pte(load<u64>(slot));
  }
  return handle_pte_fault();
}

// R1.5: none → missing; not present → swap; else write-protect or a spurious A/D fault.
function handle_pte_fault(): u32 {
  const orig = vmf_orig_pte();
  if (vmf_pte() == 0 || pte_none(orig)) return do_pte_missing();
  if (!pte_present(orig)) return swap_fault();
  if (pte_protnone(orig)) return 0; // NUMA hinting: out of scope (R1.5)
  pte_lock();
  const slot = vmf_pte();
  let entry = load<u64>(slot);
  if (entry != orig) { pte_unlock(); return 0; } // changed under us: nothing to do
  const write = (vmf_flags() & (FAULT_FLAG_WRITE | FAULT_FLAG_UNSHARE)) != 0;
  if (write && !pte_write(entry)) {
    pte_unlock();
    return do_wp_page();
  }
  if ((vmf_flags() & FAULT_FLAG_WRITE) != 0) entry = pte_mkdirty(entry);
  store<u64>(slot, pte_mkyoung(entry));
  pte_unlock();
  return 0;
}

// do_swap_page, then a write it could not map writable (a page still shared after fork)
// breaks COW in the same fault, as Linux's do_swap_page calls do_wp_page (R5.3, R11.6):
// one fault counted, not two.
function swap_fault(): u32 {
  const ret = do_swap_page();
  if ((ret & VM_FAULT_ERROR) != 0 || (vmf_flags() & FAULT_FLAG_WRITE) == 0) return ret;
  const pte = load<u64>(vmf_pte());
  if (!pte_present(pte) || pte_write(pte)) return ret;
  set_vmf_orig_pte(pte);
  const r = do_wp_page();
  return (r & VM_FAULT_ERROR) != 0 ? r & VM_FAULT_ERROR : ret | r;
}

function do_pte_missing(): u32 {
  const vma = vmf_vma();
  return vma_is_anonymous(vma) ? do_anonymous_page() : do_fault();
}

// ---- anonymous memory (R4) ----

// R4.1-R4.3: the zero page on read, a zeroed exclusive page on write.
function do_anonymous_page(): u32 {
  const vma = vmf_vma();
  const mm = vmf_mm();
  const addr = vmf_address();
  const vf = vma_flags(vma);
  if ((vf & VM_SHARED) != 0) return VM_FAULT_SIGBUS; // R4.3
  if (!pte_alloc_vmf(addr)) return VM_FAULT_OOM;
  const slot = vmf_pte();
  if (gUseZeroPage && (vmf_flags() & FAULT_FLAG_WRITE) == 0) {
    pte_lock();
    if (load<u64>(slot) == 0) {
      store<u64>(slot, pte_mkspecial(pfn_pte(gZeroPfn, vma_page_prot(vma))));
      count(ST_ZERO_PAGE_MAP);
    }
    pte_unlock();
    return 0;
  }
  if ((mm_flags(mm) & MMF_OOM_REAPED) != 0) return VM_FAULT_SIGBUS; // R3.4
  const page = alloc_user_page();
  if (page == NO_PFN) return VM_FAULT_OOM;
  memory.fill(pfn_to_virt(page), 0, PAGE_SIZE);
  pte_lock();
  if (load<u64>(slot) != 0) { pte_unlock(); put_page(page); return 0; }
  let entry = pfn_pte(page, vma_page_prot(vma));
  if ((vf & VM_WRITE) != 0) entry = pte_mkwrite(pte_mkdirty(entry));
  add_mm_counter(mm, RSS_ANON, 1);
  page_add_new_anon_rmap(page, mm, vma, addr);
  lru_add(page);
  mlock_new_folio(vma, page);
  store<u64>(slot, entry);
  pte_unlock();
  return 0;
}

// vmf_anon_prepare (anon_vma_prepare): a private write fault gives its VMA an anon_vma
// before it allocates or calls ->fault, so it stays even when the fault then fails (SIGBUS
// past EOF, OOM), and fork copies the VMA's PTEs from then on (R5.5 vma_needs_copy).
function vmf_anon_prepare(): void {
  const vma = vmf_vma();
  anon_vma_prepare(vma);
}

// ---- write-protect faults (R5.2-R5.4, R5.9, R6.6) ----

function do_wp_page(): u32 {
  const vma = vmf_vma();
  const addr = vmf_address();
  const orig = vmf_orig_pte();
  const vf = vma_flags(vma);
  const page = vm_normal_page(vma, addr, orig);
  if ((vf & (VM_SHARED | VM_MAYSHARE)) != 0) {
    if (page == NO_PAGE) return wp_pfn_shared();
    return wp_page_shared(page);
  }
  if (page != NO_PAGE && page_is_anon(page)) {
    if ((page_flags(page) & PG_anon_exclusive) != 0 || wp_can_reuse_anon_page(page)) {
      page_set(page, PG_anon_exclusive);
      if ((vmf_flags() & FAULT_FLAG_UNSHARE) != 0) return 0; // exclusive, still read-only
      wp_page_reuse();
      count(ST_WP_REUSE);
      return 0;
    }
  }
  return wp_page_copy(page);
}

// R5.3: reuse only an anonymous page whose only reference is this mapping (+ swap cache).
function wp_can_reuse_anon_page(page: u32): bool {
  if ((page_flags(page) & PG_swapcache) != 0) {
    if (page_ref(page) != 2) return false;
    folio_free_swap(page); // leaves the swap cache only if no entry needs it
  }
  return page_ref(page) == 1;
}

// Make the faulting PTE young, dirty and (if the VMA allows) writable: raising a
// permission needs no TLB flush.
function wp_page_reuse(): void {
  const slot = vmf_pte();
  let entry = pte_mkyoung(pte_mkdirty(load<u64>(slot)));
  if ((vma_flags(vmf_vma()) & VM_WRITE) != 0) entry = pte_mkwrite(entry);
  store<u64>(slot, entry);
}

// R5.4: a private copy (zeroed for the zero page, copied otherwise, through the pfn for a
// special mapping) replaces the shared page in this PTE.
function wp_page_copy(old: u32): u32 {
  const vma = vmf_vma();
  const mm = vmf_mm();
  const addr = vmf_address();
  const orig = vmf_orig_pte();
  const oldPfn = pte_pfn(orig);
  if ((mm_flags(mm) & MMF_OOM_REAPED) != 0) return VM_FAULT_SIGBUS;
  vmf_anon_prepare();
  // Before 6.15 (!gDaxFolios) a DAX file system's pfn has no page: __wp_page_copy_user copies
  // from the user address, and when the PTE was old (a fork child's copy, R5.6) the PTE it
  // finds under the lock is young by then: the fault gives up (-EAGAIN) and is taken again
  // (Debian 6.12 on ext4 -o dax: 2 faults; golden dax-fork, cow-file-private-written-fork).
  if (old == NO_PAGE && !gDaxFolios && pfn_is_xip(oldPfn) && (vma_iflags(vma) & VMA_DAX) != 0 &&
      (vma_flags(vma) & VM_MIXEDMAP) == 0 && !pte_young(orig)) {
    pte_lock();
    const s = vmf_pte();
    if (load<u64>(s) == orig) store<u64>(s, pte_mkyoung(orig));
    pte_unlock();
    return 0;
  }
  const page = alloc_user_page();
  if (page == NO_PFN) return VM_FAULT_OOM;
  const dst = pfn_to_virt(page);
  if (oldPfn == gZeroPfn) memory.fill(dst, 0, PAGE_SIZE);
  else if (old != NO_PAGE) memory.copy(dst, pfn_to_virt(old), PAGE_SIZE);
  else copy_from_pfn(dst, oldPfn);
  pte_lock();
  const slot = vmf_pte();
  if (load<u64>(slot) != orig) { pte_unlock(); put_page(page); return 0; } // re-check
  if (old != NO_PAGE) {
    if (!page_is_anon(old)) {
      add_mm_counter(mm, (page_flags(old) & PG_swapbacked) != 0 ? RSS_SHMEM : RSS_FILE, -1);
      add_mm_counter(mm, RSS_ANON, 1);
    }
  } else {
    add_mm_counter(mm, RSS_ANON, 1);
  }
  let entry = pte_mkyoung(pfn_pte(page, vma_page_prot(vma)));
  // An unshare fault (R8.5, read-only pin) leaves the exclusive copy read-only and clean.
  if ((vmf_flags() & FAULT_FLAG_UNSHARE) == 0 && (vma_flags(vma) & VM_WRITE) != 0) entry = pte_mkwrite(pte_mkdirty(entry));
  store<u64>(slot, 0);
  tlb_flush_page(mm, addr); // the old translation dies before the old page can
  page_add_new_anon_rmap(page, mm, vma, addr);
  lru_add(page);
  mlock_new_folio(vma, page);
  store<u64>(slot, entry);
  pte_unlock();
  if (old != NO_PAGE) {
    if ((vma_flags(vma) & VM_LOCKED) != 0) munlock_vma_folio(old); // R8.6: the rmap removal munlocks
    page_remove_rmap(old);
    put_page(old);
  }
  count(ST_COW_COPY);
  return 0;
}

// R5.9: a shared file page made writable: page_mkwrite, then dirty it.
function wp_page_shared(page: u32): u32 {
  const file = vma_file(vmf_vma());
  if ((file_flags(file) & AS_HAS_PAGE_MKWRITE) != 0) {
    set_vmf_page(page + 1);
    const r = host_page_mkwrite(file);
    if ((r & (VM_FAULT_ERROR | VM_FAULT_NOPAGE)) != 0) return r & ~VM_FAULT_LOCKED;
    if (load<u64>(vmf_pte()) != vmf_orig_pte()) return 0; // re-check after the callback
  }
  wp_page_reuse();
  mark_page_dirty(page);
  return 0;
}

// R6.6 / R7.2: a shared special mapping: pfn_mkwrite, then writable in place.
function wp_pfn_shared(): u32 {
  const file = vma_file(vmf_vma());
  if (file != 0 && (file_flags(file) & AS_HAS_PFN_MKWRITE) != 0) {
    const r = host_pfn_mkwrite(file);
    if ((r & (VM_FAULT_ERROR | VM_FAULT_NOPAGE)) != 0) return r & ~VM_FAULT_LOCKED;
    if (load<u64>(vmf_pte()) != vmf_orig_pte()) return 0;
  }
  wp_page_reuse();
  return 0;
}

// ---- file-backed faults (R1.6, R2, R3, R5.1, R5.9) ----

function do_fault(): u32 {
  const vma = vmf_vma();
  const file = vma_file(vma);
  let ret: u32;
  if (file == 0) {
    ret = VM_FAULT_SIGBUS; // vm_ops without ->fault
  } else if ((vmf_flags() & FAULT_FLAG_WRITE) == 0) {
    ret = do_read_fault();
  } else if ((vma_flags(vma) & VM_SHARED) == 0) {
    ret = do_cow_fault();
  } else {
    ret = do_shared_fault();
  }
  release_prealloc(); // R1.6 / R3.5
  if (file != 0) immap_fault_end(file); // seed 004: no i_mmap lock outlives the fault
  return ret;
}

// R2.1: fault around on read faults of files with map_pages and a window > 1 page.
function should_fault_around(): bool {
  const vma = vmf_vma();
  const ff = file_flags(vma_file(vma));
  if ((ff & (AS_NO_MAP_PAGES | AS_DAX)) != 0 || (vma_iflags(vma) & VMA_DAX) != 0) return false;
  if ((vma_flags(vma) & VM_UFFD_WP) != 0) return false;
  return gFaultAroundPages > 1;
}

// R2.3: the window by virtual address, clamped to the VMA and the PTE table; then
// map_pages. Returns NOPAGE if the faulting address got its PTE.
function do_fault_around(): u32 {
  const vma = vmf_vma();
  const addr = vmf_address();
  const n = gFaultAroundPages;
  const p = <u32>(addr >> 12) & (PTRS_PER_TABLE - 1);
  const v = (addr - vma_start(vma)) >> 12;
  const nPages = (vma_end(vma) - vma_start(vma)) >> 12;
  const fromA = p & ~(n - 1);
  const fromB = p - <u32>(v < <u64>p ? v : <u64>p);
  const from = fromA > fromB ? fromA : fromB;
  let to = <u64>from + n;
  if (to > <u64>PTRS_PER_TABLE) to = PTRS_PER_TABLE;
  const vmaEnd = <u64>p + (nPages - v);
  if (to > vmaEnd) to = vmaEnd;
  const pgoff = vmf_pgoff();
  const startPg = pgoff + from - p;
  const endPg = pgoff + (to - 1) - p;
  // A table for the attempt, allocated before the (named) lock (R2.3, R3.1). The generic
  // map_pages installs it only after looking for a PMD-sized folio (seed 001, R2.4); a
  // backend's own map_pages gets it installed first.
  if (load<u64>(vmf_pmd()) == 0 && !prealloc_pte()) return VM_FAULT_OOM;
  set_vmf_max_pgoff(endPg);
  const file = vma_file(vma);
  if ((file_flags(file) & AS_HAS_MAP_PAGES) != 0) {
    if (pte_alloc_vmf(addr)) host_map_pages(file, <f64>startPg, <f64>endPg);
  } else {
    filemap_map_pages(vma, vmf_mm(), startPg, endPg);
  }
  const pmd = load<u64>(vmf_pmd());
  if (pmd == 0) return 0;
  if ((pmd & _PAGE_PSE) != 0) return VM_FAULT_NOPAGE; // one PMD mapped the folio (R3.3)
  if (!pte_alloc_vmf(addr)) return 0;
  return load<u64>(vmf_pte()) != 0 ? VM_FAULT_NOPAGE : 0;
}

// __do_fault (R3.1): the VMA's fault method; the page comes back in vmf.page with a ref.
function __do_fault(): u32 {
  if (load<u64>(vmf_pmd()) == 0 && !prealloc_pte()) return VM_FAULT_OOM;
  const vma = vmf_vma();
  const file = vma_file(vma);
  let ret: u32;
  if ((file_flags(file) & AS_HAS_FAULT) != 0) ret = host_fault(file);
  else ret = filemap_fault(vma, vmf_pgoff());
  if ((ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY | VM_FAULT_DONE_COW)) != 0) return ret;
  // seed 004: LOCKED with no page means the handler holds the mapping's i_mmap lock instead
  // of a page lock. For a private write it filled cow_page: do_cow_fault maps it, unlocks.
  if (vmf_page() == 0 && (ret & VM_FAULT_LOCKED) != 0 && immap_is_locked(file)) {
    if (vmf_cow_page() != 0) return ret;
    immap_unlock(file); // nothing to map otherwise
  }
  if (vmf_page() == 0) return ret | VM_FAULT_SIGBUS;
  return ret;
}

// R3.2 finish_fault: install the prepared page (the COW copy for a private write). A
// read fault on a large page-cache folio maps it by one PMD (R3.3) when it can, else maps
// all of it when it lies inside the VMA, this PTE table and i_size (step 3). The fault's
// reference on the page goes to its PTE (or is dropped when a PMD took its own).
export function finish_fault(): u32 {
  const vma = vmf_vma();
  const mm = vmf_mm();
  const addr = vmf_address();
  const write = (vmf_flags() & FAULT_FLAG_WRITE) != 0;
  const cow = write && (vma_flags(vma) & VM_SHARED) == 0;
  const pfn = (cow ? vmf_cow_page() : vmf_page()) - 1;
  if ((vma_flags(vma) & VM_SHARED) == 0 && (mm_flags(mm) & MMF_OOM_REAPED) != 0) return VM_FAULT_SIGBUS;
  const large = !write && folio_test_large(pfn);
  if (large && load<u64>(vmf_pmd()) == 0 && do_set_pmd(vma, mm, pfn, addr) == 0) {
    put_page(pfn);
    return 0;
  }
  if (!pte_alloc_vmf(addr)) return (load<u64>(vmf_pmd()) & _PAGE_PSE) != 0 ? VM_FAULT_NOPAGE : VM_FAULT_OOM;
  // Step 3: how many PTEs.
  let head = pfn;
  let nr: u32 = 1;
  let va0 = addr;
  if (large && (vma_flags(vma) & (VM_UFFD_MISSING | VM_UFFD_WP)) == 0) {
    const h = folio_head(pfn);
    const n = folio_nr_pages(h);
    const v0 = addr - (<u64>(pfn - h) << 12);
    const v1 = v0 + (<u64>n << 12);
    const file = page_mapping(h);
    if (v0 >= vma_start(vma) && v1 <= vma_end(vma) && (v0 >> 21) == ((v1 - 1) >> 21) &&
        <u64>page_index(h) + n <= file_pages(file) && folio_whole_in_cache(h, n)) {
      head = h;
      nr = n;
      va0 = v0;
    }
  }
  pte_lock();
  const slot = vmf_pte();
  if (nr > 1) {
    // Multi-page re-check: any target PTE populated meanwhile → one page after all.
    const slot0 = slot - (<usize>((addr - va0) >> 12) << 3);
    for (let i: u32 = 0; i < nr; i++) {
      if (load<u64>(slot0 + (<usize>i << 3)) != 0) { nr = 1; break; }
    }
    if (nr > 1) {
      for (let i: u32 = 0; i < nr; i++) {
        const sub = head + i;
        if (sub != pfn) get_page(sub); // the fault's reference serves its own page
        set_pte(vma, mm, sub, va0 + (<u64>i << 12), slot0 + (<usize>i << 3), false, false, false);
      }
      pte_unlock();
      return 0;
    }
  }
  if (load<u64>(slot) != vmf_orig_pte()) { pte_unlock(); return VM_FAULT_NOPAGE; } // re-check
  set_pte(vma, mm, pfn, addr, slot, write, false, cow);
  pte_unlock();
  return 0;
}

// Every subpage of the folio at `head` is cached under its index and not hwpoisoned.
function folio_whole_in_cache(head: u32, n: u32): bool {
  const file = page_mapping(head);
  const first = page_index(head);
  for (let i: u32 = 0; i < n; i++) {
    if (pc_lookup(file, first + i) != head + i || (page_flags(head + i) & PG_hwpoison) != 0) return false;
  }
  return true;
}

// do_read_fault: fault-around first, then ->fault for the one page (R2.7).
function do_read_fault(): u32 {
  if (should_fault_around()) {
    const r = do_fault_around();
    if (r != 0) return r;
  }
  take_eof_block_reread(); // forget a stale mark
  let ret = __do_fault();
  if ((ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY)) != 0) return ret;
  const page = vmf_page() - 1;
  if (take_eof_block_reread() && should_fault_around()) {
    // R1.1 step 4, R10.2: Linux dropped the lock to make the EOF block uptodate and retried;
    // the retry faults around first, now from that page (seed 607032874 case 1426 family).
    const r = do_fault_around();
    if (r != 0) { put_page(page); return r; }
  }
  const fin = finish_fault();
  if (fin != 0) put_page(page); // not mapped: the fault's reference goes
  return ret | fin & ~VM_FAULT_NOPAGE;
}

// R5.1 / R7.1: a private write: copy the page-cache page into a fresh anonymous page, or
// let a DAX handler fill the preallocated cow_page itself (DONE_COW).
function do_cow_fault(): u32 {
  vmf_anon_prepare();
  const cow = alloc_user_page();
  if (cow == NO_PFN) return VM_FAULT_OOM;
  set_vmf_cow_page(cow + 1);
  take_cow_done(); // forget a stale mark
  let ret = __do_fault();
  // R7.1: the handler copied into cow_page and mapped it itself (finish_fault): DONE_COW.
  const mapped = take_cow_done();
  if ((ret & VM_FAULT_DONE_COW) != 0 || mapped) {
    if (!mapped) { put_page(cow); return VM_FAULT_SIGBUS; } // DONE_COW with nothing mapped
    count(ST_DONE_COW);
    return (ret & ~(VM_FAULT_ERROR | VM_FAULT_NOPAGE)) | VM_FAULT_DONE_COW;
  }
  if ((ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY)) != 0) {
    put_page(cow);
    return ret;
  }
  if (vmf_page() == 0) {
    // seed 004: no page, the i_mmap lock held instead (checked by __do_fault): the handler
    // filled cow_page. Map it, then release that lock; no page lock is involved.
    const fin = finish_fault();
    immap_unlock(vma_file(vmf_vma()));
    if (fin != 0) put_page(cow);
    return ret | fin & ~VM_FAULT_NOPAGE;
  }
  const page = vmf_page() - 1;
  memory.copy(pfn_to_virt(cow), pfn_to_virt(page), PAGE_SIZE);
  const fin = finish_fault();
  put_page(page); // the page-cache page was only read
  if (fin != 0) put_page(cow);
  return ret | fin & ~VM_FAULT_NOPAGE;
}

// R5.9: a shared write through a none PTE: page_mkwrite, then a dirty writable PTE.
function do_shared_fault(): u32 {
  let ret = __do_fault();
  if ((ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY)) != 0) return ret;
  const page = vmf_page() - 1;
  const file = vma_file(vmf_vma());
  if ((file_flags(file) & AS_HAS_PAGE_MKWRITE) != 0) {
    const r = host_page_mkwrite(file);
    if ((r & (VM_FAULT_ERROR | VM_FAULT_NOPAGE)) != 0) { put_page(page); return r & ~VM_FAULT_LOCKED; }
  }
  const fin = finish_fault();
  if (fin != 0) { put_page(page); return ret | fin & ~VM_FAULT_NOPAGE; }
  mark_page_dirty(page);
  return ret;
}
