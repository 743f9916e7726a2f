// The exported ABI: the only file with exports. Numbers only cross the boundary:
// addresses and lengths as f64 (exact to 2^53), PFNs and ids as i32, results as Linux's
// (0 / -errno, VM_FAULT_* masks, or a value >= 0).

import { MAX_RAM_BYTES, gRamBase, gNrFrames, gMemmapBase, gZeroPfn, gBooted, EINVAL, ENOMEM, EBUSY, EIO,
  setFaultAroundBytes, setPrefaultOld, setRaPages, setUseZeroPage, setHasPteSpecial, gFaultAroundPages,
  setExecReadForward, setTruncateCachesTail, setLargeFolioRa, setRaEofNoMark, setExecFolioOrder, setGuardRegions, setPopulateRetryTried,
  setUserRetryTried, setFaultAroundIsize, setTruncExtendZeroesTail, setDaxFolios, setMergeFaultedIntoUnfaulted,
  PAGE_SHIFT } from "./config";
import { boot, alloc_pages, free_pages, nr_free_frames, NO_PFN, phys_check, set_fused_pages } from "./phys";
import { nr_pgtables } from "./pgtable";
import { lru_add_drain, set_mlock_batch, set_tlb_free_drains_mlock, set_lazyfree_batch } from "./mlock_batch";
import { set_mlock_mapped_large } from "./mlock_folio";
import { tlb_init, gTlbBase, gTlbEntries, tlb_flush_page, tlb_flush_range, tlb_flush_asid,
  tlb_flush_all, MAX_ASID } from "./tlb";
import { walk, translate, walkPa, walkLevel, walkWritable, walkUser, walkExec, walkDirty,
  tlb_check } from "./mmu";
import { stat_value, inv_reset, inv_count, inv_field } from "./stats";
import { mapping_init, file_alloc, file_release, file_valid, file_size, file_flags, set_file_flags,
  file_nrpages, pc_lookup, AS_OPEN, AS_HOST_OPEN, file_nr_dirty } from "./mapping";
import { get_user_pages, mm_populate } from "./gup";
import { MAX_MM, mm_alloc, mm_alive, mm_rss, mm_minflt, mm_majflt, mm_locked_vm, mm_total_vm,
  mm_map_count, mm_first_vma, mm_nr_ptes, set_mm_memlock_limit, mm_def_flags, mm_pinned } from "./mm";
import { vma_start, vma_end, vma_flags, vma_pgoff, vma_file, vma_next, vma_iflags, nr_vmas } from "./vma";
import { do_mmap, do_munmap, exit_mmap, file_map_count } from "./mmap";
import { do_mprotect, clear_soft_dirty } from "./mprotect";
import { do_madvise } from "./madvise";
import { do_msync } from "./msync";
import { dup_mm } from "./fork";
import { user_access, touch, copy_user, set_run_walk } from "./uaccess";
import { sigNo, sigCode, sigAddr, set_direct_faults, set_run_faults } from "./fault";
import { pagemap_read, vma_smaps } from "./pagemap";
import { mm_check, pagecache_check, lru_check, folio_check } from "./check";
import { do_mlock, do_munlock, do_mlockall, do_munlockall } from "./mlock";
import { swap_init, nr_swap_slots, nr_swap_used } from "./swap";
import { reclaim_init, reclaim_pages } from "./reclaim";
import { hv_discard, hv_preserve, hv_reclaim, page_usage_state } from "./hinting";
import { page_residency } from "./pagestate";
import { unpin_user_page } from "./gup";
import { filemap_prime, truncate_setsize, invalidate_mapping_pages, drop_all_pages,
  filemap_write_range, filemap_rw } from "./filemap";
import { page_flags, page_set, page_clear, page_ref, page_mapcount, get_page, page_mapping, PG_pinned,
  PG_swapcache, PG_anon, PG_user, PG_pgtable, PG_head, PG_buddy, PG_reserved } from "./page";
import { vmf, vmf_vma, vmf_mm, vmf_page, set_vmf_page, vmf_max_pgoff } from "./vmfault";
import { map_one_cached_page, add_page, add_folio } from "./filemap";
import { folio_head, folio_order } from "./lru";
import { file_pages } from "./mapping";
import { vmf_pgoff } from "./vmfault";
import { gXipFrames, gDevBasePfn, MAX_RAM_XIP_BYTES, EFAULT } from "./config";
import { remap_pfn_range, vmf_insert_pfn, vmf_insert_mixed, vm_insert_page, special_mmap,
  special_stat } from "./special";
import { immap_lock, immap_is_locked, immap_stat, set_cow_done } from "./dax";
import { finish_fault } from "./fault";
import { unmap_mapping_range, set_zap_runs } from "./unmap";
import { vma_lookup } from "./mm";
import { vmf_cow_page, vmf_flags, FAULT_FLAG_WRITE, VM_FAULT_SIGBUS } from "./vmfault";

export { inv_field };

const VA_LIMIT: f64 = 281474976710656.0; // 2^48

@inline function vaOk(va: f64): bool { return va >= 0 && va < VA_LIMIT && va == Math.floor(va); }

// ---- machine ----
export function mmu_boot(ramBytes: f64, tlbEntries: i32): i32 {
  if (!(ramBytes > 0) || ramBytes > <f64>MAX_RAM_BYTES) return -EINVAL;
  if (tlbEntries < 1 || tlbEntries > (1 << 20) || (tlbEntries & (tlbEntries - 1)) != 0) return -EINVAL;
  const r = boot(<u64>ramBytes, <u64>xipBytesForBoot);
  if (r != 0) return r;
  tlb_init(<u32>tlbEntries);
  mapping_init();
  reclaim_init();
  staging = (heap.alloc(STAGING_BYTES + 64) + 63) & ~(<usize>63);
  pmBuf64 = heap.alloc(<usize>PAGEMAP_CHUNK * 8);
  pmBuf32 = heap.alloc(<usize>PAGEMAP_CHUNK * 4);
  smapsBuf = heap.alloc(64);
  return 0;
}
export function mmu_ram_base(): usize { return gRamBase; }
export function mmu_nr_frames(): i32 { return <i32>gNrFrames; }
export function mmu_memmap_base(): usize { return gMemmapBase; }
export function mmu_zero_pfn(): i32 { return <i32>gZeroPfn; }
export function mmu_booted(): i32 { return gBooted ? 1 : 0; }
export function mmu_tlb_base(): usize { return gTlbBase; }
export function mmu_tlb_entries(): i32 { return <i32>gTlbEntries; }
export function mmu_free_frames(): i32 { return <i32>nr_free_frames(); }
export function mmu_nr_pgtables(): i32 { return <i32>nr_pgtables(); }
export function mmu_stat(id: i32): f64 { return stat_value(id); }

export function mmu_set_fault_around_bytes(bytes: i32): i32 {
  if (bytes < 4096 || bytes > (4096 << 9)) return -EINVAL;
  setFaultAroundBytes(<u32>bytes);
  return <i32>(gFaultAroundPages << PAGE_SHIFT);
}
export function mmu_set_prefault_old(on: i32): void { setPrefaultOld(on != 0); }
// Issue 17: the direct fault paths of fault.ts on (default) or off (tests compare both).
export function mmu_set_direct_faults(on: i32): void { set_direct_faults(on != 0); }
export function mmu_set_zap_runs(on: i32): void { set_zap_runs(on != 0); } // issue 17: unmap.ts zap_run (tests compare)
// Issue 17 (t17f): one struct-page writer per side (phys.ts gFusedPages; tests compare).
export function mmu_set_fused_pages(on: i32): void { set_fused_pages(on != 0); }
// Issue 17: a bulk touch takes its faults in its run (uaccess.ts touch_run, fault.ts
// run_fault) on (default) or one do_user_addr_fault each (tests compare both).
export function mmu_set_run_faults(on: i32): void { set_run_faults(on != 0); }
// Issue 17 (t17e): touch_run's call-free loop for the pages it walks alone (uaccess.ts
// run_walk) on (default) or the single loop (tests compare both).
export function mmu_set_run_walk(on: i32): void { set_run_walk(on != 0); }
export function mmu_set_readahead_pages(pages: i32): i32 {
  if (pages < 1 || pages > 65536) return -EINVAL;
  setRaPages(<u32>pages);
  return 0;
}
export function mmu_set_zero_page(on: i32): void { setUseZeroPage(on != 0); }
export function mmu_set_exec_read_forward(on: i32): void { setExecReadForward(on != 0); }
export function mmu_set_mlock_batch(on: i32): void { set_mlock_batch(on != 0); }
export function mmu_set_tlb_free_drains_mlock(on: i32): void { set_tlb_free_drains_mlock(on != 0); }
export function mmu_set_lazyfree_batch(on: i32): void { set_lazyfree_batch(on != 0); }
export function mmu_set_mlock_mapped_large(on: i32): void { set_mlock_mapped_large(on != 0); }
export function mmu_set_dax_folios(on: i32): void { setDaxFolios(on != 0); }
export function mmu_set_merge_faulted_into_unfaulted(on: i32): void { setMergeFaultedIntoUnfaulted(on != 0); }
export function mmu_set_large_folio_readahead(on: i32): void { setLargeFolioRa(on != 0); }
export function mmu_set_readahead_eof_no_marker(on: i32): void { setRaEofNoMark(on != 0); }
export function mmu_set_exec_folio_order(order: u32): void { setExecFolioOrder(order); }
export function mmu_set_guard_regions(on: i32): void { setGuardRegions(on != 0); }
export function mmu_set_populate_retry_tried(on: i32): void { setPopulateRetryTried(on != 0); }
export function mmu_set_user_retry_tried(on: i32): void { setUserRetryTried(on != 0); }
export function mmu_set_fault_around_isize(on: i32): void { setFaultAroundIsize(on != 0); }
export function mmu_set_trunc_extend_zeroes_tail(on: i32): void { setTruncExtendZeroesTail(on != 0); }
export function mmu_set_truncate_caches_tail(on: i32): void { setTruncateCachesTail(on != 0); }
export function mmu_set_pte_special(on: i32): void { setHasPteSpecial(on != 0); }

// ---- physical frames ----
export function phys_alloc(order: i32): i32 {
  if (order < 0 || order > 9) return -EINVAL;
  const pfn = alloc_pages(<u32>order);
  return pfn == NO_PFN ? -ENOMEM : <i32>pfn;
}
export function phys_free(pfn: i32, order: i32): i32 {
  if (pfn < 0 || order < 0) return -EINVAL;
  // Only a block phys_alloc handed out, and nothing else holds: a user page or a page
  // table belongs to the core, and a block still mapped (vm_insert_page) is in use.
  // Freeing either would hand a mapped frame to someone else (found by tests/property).
  if (<u32>pfn < gNrFrames && order <= 9) {
    const f = page_flags(<u32>pfn);
    if ((f & PG_head) == 0 || (f & (PG_user | PG_pgtable | PG_buddy | PG_reserved)) != 0) return -EINVAL;
    for (let i: u32 = 0; i < (<u32>1 << order) && <u32>pfn + i < gNrFrames; i++) {
      const q = <u32>pfn + i;
      if (page_mapcount(q) != 0 || page_ref(q) > (i == 0 ? 1 : 0)) return -EBUSY;
    }
  }
  return free_pages(<u32>pfn, <u32>order);
}

// ---- the hardware walker and TLB, for emulators that build their own tables ----
export function hw_walk(root: i32, va: f64, access: i32, mode: i32): i32 {
  if (!vaOk(va) || <u32>access > 2 || root < 0) return -2;
  return walk(<u32>root, <u64>va, <u32>access, <u32>mode);
}
export function hw_walk_pa(): f64 { return <f64>walkPa; }
export function hw_walk_level(): i32 { return <i32>walkLevel; }
export function hw_walk_perms(): i32 {
  return (walkWritable ? 1 : 0) | (walkUser ? 2 : 0) | (walkExec ? 4 : 0) | (walkDirty ? 8 : 0);
}
// Physical address, or -(1 + #PF error code); -1e9 for bad arguments.
export function hw_translate(asid: i32, root: i32, va: f64, access: i32, mode: i32): f64 {
  if (!vaOk(va) || <u32>access > 2 || root < 0 || <u32>asid >= MAX_ASID) return -1e9;
  // An address space's ASID is its own: a fill from other tables would map its addresses
  // to any frame (found by tests/property/hostile.test.ts).
  if (mm_alive(<u32>asid)) return -1e9;
  return <f64>translate(<u32>asid, <u32>root, <u64>va, <u32>access, <u32>mode);
}
export function hw_tlb_flush_page(asid: i32, va: f64): void {
  if (vaOk(va) && <u32>asid < MAX_ASID) tlb_flush_page(<u32>asid, <u64>va);
}
export function hw_tlb_flush_range(asid: i32, va: f64, npages: f64): void {
  if (vaOk(va) && npages >= 0 && <u32>asid < MAX_ASID) tlb_flush_range(<u32>asid, <u64>va, <u64>npages);
}
export function hw_tlb_flush_asid(asid: i32): void { if (<u32>asid < MAX_ASID) tlb_flush_asid(<u32>asid); }
export function hw_tlb_flush_all(): void { tlb_flush_all(); }

// ---- invariants ----
export function check_invariants(): i32 {
  inv_reset();
  if (!gBooted) return 0;
  phys_check();
  tlb_check();
  mm_check();
  folio_check();
  pagecache_check();
  lru_check();
  return inv_count();
}

// Debug only, never called by the host library: executes `unreachable` so tests can check
// that a trap inside the core marks its Mmu unusable (src/core.ts guardExports) and that
// every later public call says so (CoreCrashedError). See tests/property/hostile.test.ts.
export function debug_trap(): void { unreachable(); }

// ---- benchmark references and bulk loops (one call, the loop inside Wasm) ----
let benchScratch: usize = 0;
function scratch(): usize {
  if (benchScratch == 0) benchScratch = (heap.alloc(8192 + 64) + 63) & ~(<usize>63);
  return benchScratch;
}
// memory.fill of one 4 KiB page, `n` times: the physical reference for a zeroing fault.
export function bench_fill(n: i32): i32 {
  const p = scratch();
  for (let i = 0; i < n; i++) memory.fill(p, <u8>i, 4096);
  return load<u8>(p);
}
// memory.fill of `pages` frames from `pfn` (frames the caller allocated): zeroing pages that
// are not in the CPU's caches, which is what a fault on fresh memory really pays.
export function bench_fill_frames(pfn: i32, pages: i32): i32 {
  if (pfn < 0 || pages < 0 || <u32>(pfn + pages) > gNrFrames) return -EINVAL;
  for (let i = 0; i < pages; i++) memory.fill(gRamBase + (<usize>(pfn + i) << PAGE_SHIFT), 0, 4096);
  return pages;
}
// memory.copy of `pages` frames from `src` to `dst` (frames the caller allocated): copying
// pages that are not in the CPU's caches into frames that are not either, what a COW fault
// of a cold page really pays.
export function bench_copy_frames(src: i32, dst: i32, pages: i32): i32 {
  if (src < 0 || dst < 0 || pages < 0 || <u32>(src + pages) > gNrFrames || <u32>(dst + pages) > gNrFrames) return -EINVAL;
  for (let i = 0; i < pages; i++) {
    memory.copy(gRamBase + (<usize>(dst + i) << PAGE_SHIFT), gRamBase + (<usize>(src + i) << PAGE_SHIFT), 4096);
  }
  return pages;
}
// memory.copy of one 4 KiB page, `n` times: the reference for a COW copy.
export function bench_copy(n: i32): i32 {
  const p = scratch();
  for (let i = 0; i < n; i++) memory.copy(p + 4096, p, 4096);
  return load<u8>(p + 4096);
}
// `n` TLB translations of `pages` consecutive pages from `va`, round robin, in Wasm.
export function hw_translate_loop(asid: i32, root: i32, va: f64, pages: i32, n: i32, access: i32, mode: i32): f64 {
  if (!vaOk(va) || pages < 1 || <u32>access > 2) return -1;
  let sum: i64 = 0;
  let p: i32 = 0;
  const base = <u64>va;
  for (let i = 0; i < n; i++) {
    sum += translate(<u32>asid, <u32>root, base + (<u64>p << PAGE_SHIFT), <u32>access, <u32>mode);
    if (++p == pages) p = 0;
  }
  return <f64>sum;
}
// `n` hardware walks of `pages` consecutive pages (no TLB): the cost of a miss.
export function hw_walk_loop(root: i32, va: f64, pages: i32, n: i32, access: i32, mode: i32): i32 {
  if (!vaOk(va) || pages < 1 || <u32>access > 2) return -2;
  let bad = 0;
  let p: i32 = 0;
  const base = <u64>va;
  for (let i = 0; i < n; i++) {
    if (walk(<u32>root, base + (<u64>p << PAGE_SHIFT), <u32>access, <u32>mode) != -1) bad++;
    if (++p == pages) p = 0;
  }
  return bad;
}


// ---- address spaces ----
const STAGING_BYTES: u32 = 1 << 20;
const PAGEMAP_CHUNK: u32 = 4096;
let staging: usize = 0;
let pmBuf64: usize = 0;
let pmBuf32: usize = 0;
let smapsBuf: usize = 0;

export function staging_addr(): usize { return staging; }
export function staging_size(): i32 { return <i32>STAGING_BYTES; }
export function pagemap_buf64(): usize { return pmBuf64; }
export function pagemap_buf32(): usize { return pmBuf32; }
export function pagemap_chunk(): i32 { return <i32>PAGEMAP_CHUNK; }
export function smaps_buf(): usize { return smapsBuf; }

@inline function mmOk(mm: i32): bool { return gBooted && mm > 0 && mm_alive(<u32>mm); }

export function mm_create(): i32 {
  if (!gBooted) return -EINVAL;
  const mm = mm_alloc(0);
  return mm == 0 ? -ENOMEM : <i32>mm;
}
export function mm_destroy(mm: i32): i32 {
  if (!mmOk(mm)) return -EINVAL;
  exit_mmap(<u32>mm);
  // The exit's munlocks stay on the mlock batch (R8.6) until some process on the CPU runs
  // lru_add_drain; with no address space left nothing would, so the emulator drains here
  // (what became of the pages is then not observable through any process).
  let any = false;
  for (let m: u32 = 1; m < MAX_MM && !any; m++) any = mm_alive(m);
  if (!any) lru_add_drain();
  return 0;
}
export function mm_fork(mm: i32): i32 {
  if (!mmOk(mm)) return -EINVAL;
  const c = dup_mm(<u32>mm);
  return c == 0 ? -ENOMEM : <i32>c;
}
export function sys_mmap(mm: i32, addr: f64, len: f64, prot: i32, flags: i32, file: i32, pgoff: f64): f64 {
  if (!mmOk(mm)) return -EINVAL;
  if (!vaOk(addr) || !(len >= 0) || len > 1e15 || !(pgoff >= 0) || pgoff > 4503599627370496.0 || file < 0) return -EINVAL;
  return <f64>do_mmap(<u32>mm, <u64>addr, <u64>len, <u32>prot, <u32>flags, <u32>file, <u64>pgoff);
}
export function sys_munmap(mm: i32, addr: f64, len: f64): i32 {
  if (!mmOk(mm)) return -EINVAL;
  if (!vaOk(addr) || !(len >= 0) || len > 1e15) return -EINVAL;
  return do_munmap(<u32>mm, <u64>addr, <u64>len);
}
export function sys_mprotect(mm: i32, addr: f64, len: f64, prot: i32): i32 {
  if (!mmOk(mm)) return -EINVAL;
  if (!vaOk(addr)) return -EINVAL;
  if (!(len >= 0) || len > 1e15) return -ENOMEM;
  return do_mprotect(<u32>mm, <u64>addr, <u64>len, <u32>prot);
}
export function sys_madvise(mm: i32, addr: f64, len: f64, advice: i32): i32 {
  if (!mmOk(mm)) return -EINVAL;
  if (!vaOk(addr) || !(len >= 0) || len > 1e15) return -EINVAL;
  return do_madvise(<u32>mm, <u64>addr, <u64>len, advice);
}
export function sys_msync(mm: i32, addr: f64, len: f64, flags: i32): i32 {
  if (!mmOk(mm)) return -EINVAL;
  if (!vaOk(addr) || !(len >= 0) || len > 1e15) return -EINVAL;
  return do_msync(<u32>mm, <u64>addr, <u64>len, <u32>flags);
}
export function mm_clear_soft_dirty(mm: i32): i32 {
  if (!mmOk(mm)) return -EINVAL;
  clear_soft_dirty(<u32>mm);
  return 0;
}
export function mm_set_memlock_limit(mm: i32, pages: f64): i32 {
  if (!mmOk(mm)) return -EINVAL;
  set_mm_memlock_limit(<u32>mm, pages < 0 || pages >= 4294967295.0 ? 0xffff_ffff : <u32>pages);
  return 0;
}

// Access: results are >= 0 (pa, bytes) or negative: -7 SIGBUS, -11 SIGSEGV (see
// fault_sig_*), -101 out of memory, -102 retry later. An access that makes no progress is
// SIGBUS BUS_OBJERR (a backend fault that maps nothing; uaccess.ts).
export function mm_touch(mm: i32, va: f64, len: f64, access: i32): f64 {
  if (!mmOk(mm) || !vaOk(va) || !(len >= 0) || <u32>access > 2) return -1e9;
  return <f64>touch(<u32>mm, <u64>va, <u64>len, <u32>access);
}
export function mm_translate(mm: i32, va: f64, access: i32): f64 {
  if (!mmOk(mm) || !vaOk(va) || <u32>access > 2) return -1e9;
  return <f64>user_access(<u32>mm, <u64>va, <u32>access);
}
export function mm_copy(mm: i32, va: f64, n: i32, toUser: i32): f64 {
  if (!mmOk(mm) || !vaOk(va) || n < 0 || <u32>n > STAGING_BYTES) return -1e9;
  return <f64>copy_user(<u32>mm, <u64>va, staging, <u32>n, toUser != 0);
}
export function fault_sig_no(): i32 { return sigNo; }
export function fault_sig_code(): i32 { return sigCode; }
export function fault_sig_addr(): f64 { return <f64>sigAddr; }

export function mm_pagemap(mm: i32, va: f64, n: i32): i32 {
  if (!mmOk(mm) || !vaOk(va) || n < 0 || <u32>n > PAGEMAP_CHUNK) return -EINVAL;
  pagemap_read(<u32>mm, <u64>va, <u32>n, pmBuf64, pmBuf32);
  return n;
}
// GUP for tests and users: pages done or -errno.
export function mm_gup(mm: i32, va: f64, n: i32, foll: i32): i32 {
  if (!mmOk(mm) || !vaOk(va) || n < 0) return -EINVAL;
  return get_user_pages(<u32>mm, <u64>va, <u32>n, <u32>foll, 0);
}
export function mm_populate_range(mm: i32, va: f64, len: f64): i32 {
  if (!mmOk(mm) || !vaOk(va) || !(len >= 0)) return -EINVAL;
  return mm_populate(<u32>mm, <u64>va, <u64>va + <u64>len, false);
}

// mm_info: 0 rss anon, 1 rss file, 2 rss shmem, 3 swap entries, 4 minflt, 5 majflt,
// 6 locked_vm, 7 total_vm, 8 map_count, 9 page tables, 10 def_flags
export function mm_info(mm: i32, what: i32): f64 {
  if (!mmOk(mm)) return -1;
  const m = <u32>mm;
  switch (what) {
    case 0: case 1: case 2: case 3: return <f64>mm_rss(m, <u32>what);
    case 4: return mm_minflt(m);
    case 5: return mm_majflt(m);
    case 6: return <f64>mm_locked_vm(m);
    case 7: return <f64>mm_total_vm(m);
    case 8: return <f64>mm_map_count(m);
    case 9: return <f64>mm_nr_ptes(m);
    case 10: return <f64>mm_def_flags(m);
  }
  return -1;
}

// VMA iteration for maps/smaps: ids, then fields.
export function mm_vma_first(mm: i32): i32 { return mmOk(mm) ? <i32>mm_first_vma(<u32>mm) : 0; }
export function vma_next_id(v: i32): i32 { return <i32>vma_next(<u32>v); }
export function vma_info(v: i32, what: i32): f64 {
  const x = <u32>v;
  switch (what) {
    case 0: return <f64>vma_start(x);
    case 1: return <f64>vma_end(x);
    case 2: return <f64>vma_pgoff(x);
    case 3: return <f64>vma_flags(x);
    case 4: return <f64>vma_file(x);
    case 5: return <f64>vma_iflags(x);
  }
  return -1;
}
export function vma_smaps_fill(mm: i32, v: i32): usize {
  vma_smaps(<u32>mm, <u32>v, smapsBuf);
  return smapsBuf;
}
export function nr_vmas_total(): i32 { return <i32>nr_vmas(); }

// ---- files ----
// Sizes cross the ABI as f64: exact up to 2^53 bytes (src MAX_FILE_BYTES); the core itself
// keeps u64 sizes and page indexes up to MAX_PGOFF (2^51 - 1, MAX_LFS_FILESIZE's last page).
const MAX_FILE_BYTES: f64 = 9007199254740992.0;
const MAX_PGOFF_F64: f64 = 2251799813685247.0;
export function file_open(size: f64, flags: i32): i32 {
  if (!gBooted || !(size >= 0) || size > MAX_FILE_BYTES) return -EINVAL;
  const f = file_alloc(<u64>size, (<u32>flags & ~AS_OPEN) | AS_HOST_OPEN);
  return f == 0 ? -ENOMEM : <i32>f;
}
// Close: drop the cache (written back first unless `discard`). Mapped files stay.
export function file_close(f: i32, discard: i32): i32 {
  if (!file_valid(<u32>f)) return -EINVAL;
  if (file_map_count(<u32>f) != 0) return -EBUSY;
  lru_add_drain(); // the emulator's close drops the cache: the batch must let go first (R8.6)
  drop_all_pages(<u32>f, discard == 0);
  if (file_nrpages(<u32>f) != 0) return -EIO;
  file_release(<u32>f);
  return 0;
}
export function file_info(f: i32, what: i32): f64 {
  if (!file_valid(<u32>f)) return -1;
  switch (what) {
    case 0: return <f64>file_size(<u32>f);
    case 1: return <f64>file_nrpages(<u32>f);
    case 2: return <f64>file_flags(<u32>f);
    case 3: return <f64>file_map_count(<u32>f);
    case 4: return <f64>file_nr_dirty(<u32>f);
  }
  return -1;
}
export function file_set_flag(f: i32, flag: i32, on: i32): i32 {
  if (!file_valid(<u32>f)) return -EINVAL;
  const x = file_flags(<u32>f);
  set_file_flags(<u32>f, on != 0 ? x | <u32>flag : x & ~<u32>flag);
  return 0;
}
export function file_truncate(f: i32, size: f64): i32 {
  if (!file_valid(<u32>f) || !(size >= 0) || size > MAX_FILE_BYTES) return -EINVAL;
  truncate_setsize(<u32>f, <u64>size);
  return 0;
}
// Page-cache controls for tests: read pages in, evict, inspect and set page flags.
// file_prime: [index, index + n) read in as read(2) leaves it (cached pages made uptodate),
// or with `willneed` as POSIX_FADV_WILLNEED does (cached pages left alone). 0 or -errno.
export function file_prime(f: i32, index: f64, n: i32, willneed: i32): i32 {
  if (!file_valid(<u32>f) || !(index >= 0) || n < 0) return -EINVAL;
  return filemap_prime(<u32>f, <u64>index, <u32>n, willneed == 0);
}
// Large folios for tests: the naturally aligned blocks of 2^order pages in
// [index, index + n) each read into one folio. 0 or -errno (EINVAL, EEXIST, ENOMEM, EIO).
export function file_prime_order(f: i32, index: f64, n: i32, order: i32): i32 {
  if (!file_valid(<u32>f) || !(index >= 0) || index > MAX_PGOFF_F64 || n < 0 || order < 0 || order > 9) return -EINVAL;
  const size = 1 << order;
  if ((<i64>index & (size - 1)) != 0 || (n & (size - 1)) != 0) return -EINVAL;
  for (let i = 0; i < n; i += size) {
    const r = add_folio(<u32>f, <u64>index + <u64>i, <u32>order);
    if (r < 0) return r;
  }
  return 0;
}
export function file_evict(f: i32, first: f64, last: f64): i32 {
  if (!file_valid(<u32>f) || !(first >= 0) || !(last >= first)) return -EINVAL;
  lru_add_drain(); // POSIX_FADV_DONTNEED's lru_add_drain (R8.6)
  return <i32>invalidate_mapping_pages(<u32>f, <u64>first, <u64>last);
}
// pread / pwrite of up to `n` staging bytes inside one page at byte `pos` (filemap_rw).
export function file_rw(f: i32, pos: f64, n: i32, write: i32): i32 {
  if (!file_valid(<u32>f) || !(pos >= 0) || pos > MAX_FILE_BYTES || n < 0 || <u32>n > STAGING_BYTES) return -EINVAL;
  return filemap_rw(<u32>f, <u64>pos, staging, <u32>n, write != 0);
}
export function file_sync(f: i32, first: f64, last: f64): i32 {
  if (!file_valid(<u32>f) || !(first >= 0) || !(last >= first)) return -EINVAL;
  return filemap_write_range(<u32>f, <u64>first, <u64>last);
}
// The cached page's flags, or -1 if absent; 16 bits of PG_* below 0x10000.
export function file_page_pfn(f: i32, index: f64): i32 {
  if (!file_valid(<u32>f) || !(index >= 0) || index > MAX_PGOFF_F64) return -1;
  const pfn = pc_lookup(<u32>f, <u64>index);
  return pfn == NO_PFN ? -1 : <i32>pfn;
}
export function page_info(pfn: i32, what: i32): f64 {
  if (pfn < 0 || <u32>pfn >= gNrFrames) return -1;
  switch (what) {
    case 0: return <f64>page_flags(<u32>pfn);
    case 1: return <f64>page_ref(<u32>pfn);
    case 2: return <f64>page_mapcount(<u32>pfn);
    case 3: return <f64>folio_head(<u32>pfn);
    case 4: return <f64>folio_order(folio_head(<u32>pfn));
  }
  return -1;
}
// Set or clear test-controllable page flags (locked, uptodate, readahead, hwpoison, dirty).
export function page_test_flags(pfn: i32, set: i32, clear: i32): i32 {
  if (pfn < 0 || <u32>pfn >= gNrFrames) return -EINVAL;
  const allowed: u32 = 1 | 2 | 4 | (1 << 13) | (1 << 18);
  if (((<u32>set | <u32>clear) & ~allowed) != 0) return -EINVAL;
  page_clear(<u32>pfn, <u32>clear);
  page_set(<u32>pfn, <u32>set);
  return 0;
}

// ---- a backend's own vm_operations, called back from the host during a fault ----
export function vmf_addr(): usize { return vmf; }
// mapPages: map the cached page at `pgoff` if it is ready (seed 000). 1 mapped, 0 not.
export function vmf_map_cached(pgoff: f64): i32 {
  const v = vmf_vma();
  if (v == 0 || !(pgoff >= 0) || pgoff > <f64>vmf_max_pgoff()) return 0;
  return map_one_cached_page(v, vmf_mm(), <u64>pgoff) ? 1 : 0;
}
// fault: the page-cache page for `pgoff` (a blank uptodate one if absent), handed back as
// vmf.page with a reference. Returns its pfn for the host to fill, or -errno.
export function vmf_add_page(pgoff: f64): i32 {
  const v = vmf_vma();
  if (v == 0 || !(pgoff >= 0) || pgoff > MAX_PGOFF_F64) return -EINVAL;
  const file = vma_file(v);
  if (pgoff >= <f64>file_pages(file)) return -EINVAL; // beyond EOF: the fault is a SIGBUS
  let pfn = pc_lookup(file, <u64>pgoff);
  if (pfn == NO_PFN) pfn = add_page(file, <u64>pgoff, false);
  if (pfn == NO_PFN) return -ENOMEM;
  // Only the page of the faulting offset is the fault's page; others are just cached.
  if (vmf_page() == 0 && <u64>pgoff == vmf_pgoff()) {
    get_page(pfn);
    set_vmf_page(pfn + 1);
  }
  return <i32>pfn;
}

// ---- mlock (R8) ----
export function sys_mlock(mm: i32, addr: f64, len: f64, flags: i32): i32 {
  if (!mmOk(mm)) return -EINVAL;
  if (!vaOk(addr) || !(len >= 0) || len > 1e15) return -EINVAL;
  return do_mlock(<u32>mm, <u64>addr, <u64>len, <u32>flags);
}
export function sys_munlock(mm: i32, addr: f64, len: f64): i32 {
  if (!mmOk(mm)) return -EINVAL;
  if (!vaOk(addr) || !(len >= 0) || len > 1e15) return -EINVAL;
  return do_munlock(<u32>mm, <u64>addr, <u64>len);
}
export function sys_mlockall(mm: i32, flags: i32): i32 {
  if (!mmOk(mm)) return -EINVAL;
  return do_mlockall(<u32>mm, <u32>flags);
}
export function sys_munlockall(mm: i32): i32 {
  if (!mmOk(mm)) return -EINVAL;
  return do_munlockall(<u32>mm);
}
// GUP with its pfns in pagemap_buf32 (at most pagemap_chunk pages): pages done or -errno.
export function mm_gup_pfns(mm: i32, va: f64, n: i32, foll: i32): i32 {
  if (!mmOk(mm) || !vaOk(va) || n < 0 || <u32>n > PAGEMAP_CHUNK) return -EINVAL;
  return get_user_pages(<u32>mm, <u64>va, <u32>n, <u32>foll, pmBuf32);
}
// mm 0: the pinning address space is gone (a pin outlives its process in Linux too: the
// driver that pinned releases it later); no per-mm accounting is left to update.
export function mm_unpin(mm: i32, pfn: i32): i32 {
  if ((mm != 0 && !mmOk(mm)) || pfn < 0 || <u32>pfn >= gNrFrames) return -EINVAL;
  if (page_ref(<u32>pfn) < 1) return -EINVAL;
  if (<u32>pfn == gZeroPfn) return 0; // never pinned (gup.ts), unpinning it is a no-op
  // Only a pin may be dropped: the page is pinned, this mm holds pins, and the page has a
  // reference beyond its mappings and caches. Else a wrong pfn from the host would free a
  // frame still mapped, and hand it to another address space (found by tests/property).
  const p = <u32>pfn;
  const f = page_flags(p);
  let owned = page_mapcount(p);
  if ((f & PG_swapcache) != 0) owned++;
  if ((f & PG_anon) == 0 && page_mapping(p) != 0) owned++;
  if ((f & PG_pinned) == 0 || (mm != 0 && mm_pinned(<u32>mm) == 0) || page_ref(p) <= owned) return -EINVAL;
  unpin_user_page(<u32>mm, p);
  if (page_ref(p) == owned) page_clear(p, PG_pinned); // its last pin is gone
  return 0;
}

// ---- swap and reclaim (issue 6) ----
export function mmu_swap_init(slots: i32): i32 {
  if (slots < 0 || nr_swap_slots() != 0) return -EINVAL;
  swap_init(<u32>slots);
  return 0;
}
export function mmu_swap_info(what: i32): i32 { return what == 0 ? <i32>nr_swap_slots() : <i32>nr_swap_used(); }
export function mmu_reclaim(pages: i32): i32 {
  if (pages < 0) return -EINVAL;
  return <i32>reclaim_pages(<u32>pages);
}
// lru_add_drain on the one CPU: handles the queued entries of the mlock batch (R8.6).
export function mmu_lru_add_drain(): void { lru_add_drain(); }

// ---- guest page hinting (R12) ----
export function page_hint_state(pfn: i32): i32 {
  if (pfn < 0 || <u32>pfn >= gNrFrames) return -1;
  return <i32>(page_usage_state(<u32>pfn) | (<u32>page_residency(<u32>pfn) << 4));
}
export function hv_discard_pfn(pfn: i32): i32 { return pfn >= 0 && hv_discard(<u32>pfn) ? 1 : 0; }
export function hv_preserve_pfn(pfn: i32): i32 { return pfn >= 0 && hv_preserve(<u32>pfn) ? 1 : 0; }
export function hv_reclaim_frames(n: i32): f64 { return n > 0 ? hv_reclaim(<u32>n) : 0; }

// ---- special mappings: XIP and device memory beyond RAM, PFNMAP / MIXEDMAP (issue #5) ----
// Physical memory: RAM at PFNs [0, nr_frames); execute-in-place at [nr_frames,
// dev_base_pfn), its bytes at linear ram_base + pa like RAM's; device (MMIO) space from
// dev_base_pfn up, each access a host call (host.ts mmio). No memmap beyond RAM.
let xipBytesForBoot: f64 = 0;

// The XIP memory boot() reserves after RAM; set before mmu_boot. 0 or -EINVAL.
export function mmu_set_xip_bytes(bytes: f64): i32 {
  if (gBooted || !(bytes >= 0) || bytes > <f64>MAX_RAM_XIP_BYTES || bytes != Math.floor(bytes) ||
      (<u64>bytes & 0x1f_ffff) != 0) return -EINVAL;
  xipBytesForBoot = bytes;
  return 0;
}
export function mmu_xip_frames(): i32 { return <i32>gXipFrames; }
export function mmu_dev_base_pfn(): i32 { return <i32>gDevBasePfn; }
// 0 bad special PTEs seen, 1 PTEs past the memmap, 2 insert calls against their contract.
export function mmu_special_stat(what: i32): f64 { return special_stat(what); }

// From a backend's fault (the vmf record is the running fault's): R6.4, R6.5. VM_FAULT_*.
export function vmf_insert_pfn_at(pfn: i32, va: f64): i32 {
  const v = vmf_vma();
  if (v == 0 || pfn < 0 || !vaOk(va)) return <i32>VM_FAULT_SIGBUS;
  return <i32>vmf_insert_pfn(v, <u64>va, <u32>pfn);
}
export function vmf_insert_mixed_at(pfn: i32, va: f64, mkwrite: i32): i32 {
  const v = vmf_vma();
  if (v == 0 || pfn < 0 || !vaOk(va)) return <i32>VM_FAULT_SIGBUS;
  return <i32>vmf_insert_mixed(v, <u64>va, <u32>pfn, mkwrite != 0);
}
// R7.1: a DAX handler filled vmf.cow_page; map it (finish_fault). 0, or VM_FAULT_* to return.
export function vmf_finish_cow(): i32 {
  if (vmf_vma() == 0 || vmf_cow_page() == 0 || (vmf_flags() & FAULT_FLAG_WRITE) == 0) return <i32>VM_FAULT_SIGBUS;
  const r = finish_fault();
  if (r == 0) set_cow_done();
  return <i32>r;
}
// Seed 004: the handler takes its mapping's i_mmap lock (to return LOCKED with no page).
export function vmf_lock_mapping(): i32 {
  const v = vmf_vma();
  if (v == 0) return -EINVAL;
  return immap_lock(vma_file(v)) ? 0 : -EBUSY;
}
// 0: is file `f`'s i_mmap lock held (1/0); 1 locks taken, 2 released, 3 leaked (all files).
export function file_immap_info(f: i32, what: i32): f64 {
  if (what == 0) return immap_is_locked(<u32>f) ? 1 : 0;
  return immap_stat(what - 1);
}
// unmap_mapping_range of file pages [first, last] (R10.3), e.g. a DAX hole that got a block.
export function file_unmap_range(f: i32, first: f64, last: f64, evenCows: i32): i32 {
  if (!file_valid(<u32>f) || !(first >= 0) || !(last >= first)) return -EINVAL;
  unmap_mapping_range(<u32>f, <u64>first, <u64>last, evenCows != 0);
  return 0;
}
// remap_pfn_range on the VMA at `addr` (R6.3): 0 or -errno.
export function mm_remap_pfn_range(mm: i32, addr: f64, pfn: i32, len: f64): i32 {
  if (!mmOk(mm) || !vaOk(addr) || pfn < 0 || !(len > 0) || len > 1e15) return -EINVAL;
  const v = vma_lookup(<u32>mm, <u64>addr);
  if (v == 0) return -EINVAL;
  return remap_pfn_range(v, <u64>addr, <u32>pfn, <u64>len);
}
// vm_insert_page at `addr` (R6.5): 0 or -errno.
export function mm_vm_insert_page(mm: i32, addr: f64, pfn: i32): i32 {
  if (!mmOk(mm) || !vaOk(addr) || pfn < 0) return -EINVAL;
  const v = vma_lookup(<u32>mm, <u64>addr);
  if (v == 0) return -EFAULT;
  return vm_insert_page(v, <u64>addr, <u32>pfn);
}
// After a special file's mmap hook: kind 0 none, 1 MIXEDMAP (XIP), 2 PFNMAP by faults.
export function mm_special_mmap(mm: i32, addr: f64, kind: i32): i32 {
  if (!mmOk(mm) || !vaOk(addr) || <u32>kind > 2) return -EINVAL;
  const v = vma_lookup(<u32>mm, <u64>addr);
  if (v == 0) return -EINVAL;
  special_mmap(v, <u32>kind);
  return 0;
}
