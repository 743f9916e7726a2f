// Special mappings (LINUX-SPEC §6, seed 002): which PTEs have a refcounted struct page
// behind them (vm_normal_page, R6.1 / R6.2), and the ways raw PFNs get mapped:
// remap_pfn_range (R6.3), vmf_insert_pfn (R6.4), vmf_insert_mixed and vm_insert_page (R6.5).
//
// VM_PFNMAP mappings are linear and never refcounted, not even where the pfn is RAM.
// VM_MIXEDMAP mappings refcount the pages that have a struct page (RAM frames inserted with
// vm_insert_page, COWed anonymous copies) and not the others: execute-in-place and device
// memory beyond RAM (config.ts), which have no memmap entry at all. With pte_special the
// SPECIAL bit tells them apart; without it (gHasPteSpecial false) the bit is never set and
// the linear rule and pfn_valid decide, as on architectures without the bit.

import { PAGE_SHIFT, PAGE_SIZE, gRamBase, gNrFrames, gZeroPfn, gHasPteSpecial, MAX_PHYS_PFN,
  pfn_is_xip, pfn_is_device, EINVAL, ENOMEM, EFAULT, EBUSY } from "./config";
import { _PAGE_PSE, pte_pfn, pte_special, pte_present, pfn_pte, pte_mkspecial, pte_mkyoung,
  pte_mkdirty, pte_mkwrite } from "./pte";
import { PG_anon, PG_buddy, PG_pgtable, PG_lru, PG_reserved, PG_tail, PG_swapbacked, pfn_valid,
  page_flags, page_ref, get_page } from "./page";
import { LEVEL_PTE, WALK_NOMEM, WALK_HUGE, pt_walk, nr_pgtables } from "./pgtable";
import { tlb_flush_range } from "./tlb";
import { VM_PFNMAP, VM_MIXEDMAP, VM_IO, VM_DONTEXPAND, VM_DONTDUMP, VM_WRITE, VM_MAYWRITE,
  VM_LOCKED, VM_LOCKED_MASK, VM_SPECIAL, VMA_DAX, vma_flags, set_vma_flags, vma_start, vma_end,
  vma_pgoff, set_vma_pgoff, vma_mm, vma_file, vma_iflags, vma_pages, vma_page_prot,
  is_cow_mapping } from "./vma";
import { mm_pgd, mm_add_ptes, add_mm_counter, mm_add_locked_vm, RSS_FILE, RSS_SHMEM } from "./mm";
import { page_dup_rmap } from "./rmap";
import { file_flags, AS_HAS_PFN_MKWRITE, AS_DAX } from "./mapping";
import { pte_alloc_vmf, pte_lock, pte_unlock } from "./pte_alloc";
import { vmf_address, vmf_pmd, vmf_pte, VM_FAULT_OOM, VM_FAULT_SIGBUS,
  VM_FAULT_NOPAGE } from "./vmfault";
import { mmio_copy_page } from "./mmio";

export const NO_PAGE: u32 = 0xffff_ffff;

// ---- diagnostics: what Linux prints (print_bad_pte) or BUG()s on ----
let nBadPte: f64 = 0; // a special PTE where no special PTE may be (R6.1)
let nCorrupt: f64 = 0; // a normal PTE whose pfn is beyond the memmap (R6.1)
let nBug: f64 = 0; // an insert function used against its contract (R6.4, R6.5)

// 0 bad special PTEs, 1 PTEs beyond the memmap, 2 insert calls against the contract.
export function special_stat(what: i32): f64 {
  if (what == 0) return nBadPte;
  if (what == 1) return nCorrupt;
  if (what == 2) return nBug;
  return -1;
}

// ---- vm_normal_page ----

// The frame of the page a present PTE maps if it is a normal (refcounted, rmapped,
// RSS-counted) page, else NO_PAGE: special PTEs, the zero page, and memory without a
// struct page (execute-in-place, device ranges).
export function vm_normal_page(vma: u32, addr: u64, pte: u64): u32 {
  const pfn = pte_pfn(pte);
  if (gHasPteSpecial) {
    // R6.1: the special bit says it all.
    if (!pte_special(pte)) {
      if (pfn < gNrFrames) return pfn == gZeroPfn ? NO_PAGE : pfn;
      nCorrupt++; // a normal PTE pointing past the memmap
      return NO_PAGE;
    }
    // Silent for PFNMAP / MIXEDMAP (and DAX) VMAs and the zero pfn; a bad map elsewhere.
    if ((vma_flags(vma) & (VM_PFNMAP | VM_MIXEDMAP)) == 0 && (vma_iflags(vma) & VMA_DAX) == 0 &&
        pfn != gZeroPfn) nBadPte++;
    return NO_PAGE;
  }
  // R6.2: the linear rule of architectures without pte_special.
  const flags = vma_flags(vma);
  if ((flags & (VM_PFNMAP | VM_MIXEDMAP)) != 0) {
    if ((flags & VM_MIXEDMAP) != 0) {
      // Refcounted iff it has a struct page (seed 002), the zero page excepted.
      return !pfn_valid(pfn) || pfn == gZeroPfn ? NO_PAGE : pfn;
    }
    const linear = vma_pgoff(vma) + ((addr - vma_start(vma)) >> PAGE_SHIFT);
    if (<u64>pfn == linear) return NO_PAGE; // what remap_pfn_range put there
    if (!is_cow_mapping(flags)) return NO_PAGE;
    // Not linear in a COW mapping: a COWed anonymous page.
  }
  if (pfn == gZeroPfn) return NO_PAGE;
  if (!pfn_valid(pfn)) {
    if ((flags & (VM_PFNMAP | VM_MIXEDMAP)) == 0 && (vma_iflags(vma) & VMA_DAX) == 0) nCorrupt++;
    return NO_PAGE;
  }
  return pfn;
}

// ---- installing raw PFNs ----

// The PTE slot for `addr` in `vma`'s address space, allocating missing tables: through the
// running fault's preallocated table when `inFault` and `addr` is the faulting address
// (R3.1), else directly. WALK_NOMEM or WALK_HUGE on failure.
function pte_slot(vma: u32, addr: u64, inFault: bool): usize {
  if (inFault && addr == vmf_address()) {
    if (pte_alloc_vmf(addr)) return vmf_pte();
    return (load<u64>(vmf_pmd()) & _PAGE_PSE) != 0 ? WALK_HUGE : WALK_NOMEM;
  }
  const mm = vma_mm(vma);
  const before = nr_pgtables();
  const slot = pt_walk(mm_pgd(mm), addr, LEVEL_PTE, true);
  mm_add_ptes(mm, <i32>(nr_pgtables() - before));
  return slot;
}

@inline function inside(vma: u32, addr: u64): bool {
  return addr >= vma_start(vma) && addr < vma_end(vma);
}

// The mkwrite upgrade of R6.5: young, dirty, and writable if the VMA is.
function mkwrite_entry(vma: u32, e: u64): u64 {
  e = pte_mkyoung(pte_mkdirty(e));
  return (vma_flags(vma) & VM_WRITE) != 0 ? pte_mkwrite(e) : e;
}

// A PFN PTE (special where the architecture has the bit) at `addr`. A populated PTE is
// left alone, except that `mkwrite` upgrades one that maps the same pfn (R6.4, R6.5).
function insert_pfn(vma: u32, addr: u64, pfn: u32, mkwrite: bool, inFault: bool): u32 {
  const slot = pte_slot(vma, addr, inFault);
  if (slot == WALK_NOMEM) return VM_FAULT_OOM;
  if (slot <= WALK_HUGE) return VM_FAULT_SIGBUS;
  pte_lock();
  const old = load<u64>(slot);
  if (old != 0) {
    if (mkwrite && pte_present(old) && pte_pfn(old) == pfn) store<u64>(slot, mkwrite_entry(vma, old));
    pte_unlock();
    return VM_FAULT_NOPAGE;
  }
  let e = pfn_pte(pfn, vma_page_prot(vma));
  if (gHasPteSpecial) e = pte_mkspecial(e); // pte_mkspecial does nothing without the bit
  if (mkwrite) e = mkwrite_entry(vma, e);
  store<u64>(slot, e); // none → present raises a permission: no TLB flush
  pte_unlock();
  return VM_FAULT_NOPAGE;
}

// validate_page_before_insert: a RAM page some driver owns. Anonymous pages, pages nobody
// holds (refcount 0, free), page tables and the zero page are refused; so are pages on the
// LRU (page cache, anon), which reclaim's reverse map could not find in a foreign VMA.
function validate_page(pfn: u32): i32 {
  if (!pfn_valid(pfn) || pfn == gZeroPfn) return -EINVAL;
  const f = page_flags(pfn);
  if (page_ref(pfn) <= 0 || (f & (PG_buddy | PG_anon | PG_pgtable | PG_lru | PG_reserved | PG_tail)) != 0) {
    return -EINVAL;
  }
  return 0;
}

// insert_page: a refcounted normal PTE for RAM page `pfn` (file RSS +1, one more mapping).
// 0, -ENOMEM, -EBUSY (populated), or -EFAULT (mkwrite over a different pfn).
function insert_page(vma: u32, addr: u64, pfn: u32, mkwrite: bool, inFault: bool): i32 {
  const slot = pte_slot(vma, addr, inFault);
  if (slot == WALK_NOMEM) return -ENOMEM;
  if (slot <= WALK_HUGE) return -EFAULT;
  pte_lock();
  const old = load<u64>(slot);
  if (old != 0) {
    let r = -EBUSY;
    if (mkwrite) {
      r = pte_present(old) && pte_pfn(old) == pfn ? 0 : -EFAULT;
      if (r == 0) store<u64>(slot, mkwrite_entry(vma, old));
    }
    pte_unlock();
    return r;
  }
  get_page(pfn);
  add_mm_counter(vma_mm(vma), (page_flags(pfn) & PG_swapbacked) != 0 ? RSS_SHMEM : RSS_FILE, 1);
  page_dup_rmap(pfn);
  let e = pfn_pte(pfn, vma_page_prot(vma));
  if (mkwrite) e = mkwrite_entry(vma, e);
  store<u64>(slot, e);
  pte_unlock();
  return 0;
}

// ---- remap_pfn_range (R6.3) ----

// Map [addr, addr + size) of `vma` to consecutive pfns from `pfn` with special PTEs, and
// mark the VMA IO|PFNMAP|DONTEXPAND|DONTDUMP. A COW mapping must be covered exactly, and
// its vm_pgoff becomes `pfn` (which is what the linear rule of R6.2 reads). Returns 0 or
// -errno; on a failure half way, what was mapped is zapped again.
export function remap_pfn_range(vma: u32, addr: u64, pfn: u32, size: u64): i32 {
  if ((addr & (PAGE_SIZE - 1)) != 0 || size == 0) return -EINVAL;
  size = (size + PAGE_SIZE - 1) & ~(<u64>PAGE_SIZE - 1);
  const end = addr + size;
  if (end < addr || addr < vma_start(vma) || end > vma_end(vma)) return -EINVAL;
  const pages = size >> PAGE_SHIFT;
  if (<u64>pfn + pages > <u64>MAX_PHYS_PFN) return -EINVAL;
  const f = vma_flags(vma);
  if (is_cow_mapping(f)) {
    if (addr != vma_start(vma) || end != vma_end(vma)) return -EINVAL;
    set_vma_pgoff(vma, pfn);
  }
  set_vma_flags(vma, f | VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP);
  const prot = vma_page_prot(vma);
  let err: i32 = 0;
  let done: u64 = 0;
  for (; done < pages; done++) {
    const slot = pte_slot(vma, addr + (done << PAGE_SHIFT), false);
    if (slot == WALK_NOMEM) { err = -ENOMEM; break; }
    if (slot <= WALK_HUGE) { err = -EINVAL; break; }
    if (load<u64>(slot) != 0) { nBug++; err = -EBUSY; break; } // Linux BUG()s here
    let e = pfn_pte(pfn + <u32>done, prot);
    if (gHasPteSpecial) e = pte_mkspecial(e);
    store<u64>(slot, e);
  }
  if (err == 0) return 0;
  // Partial failure: zap what was mapped (special PTEs: nothing to release but the PTE).
  const mm = vma_mm(vma);
  for (let i: u64 = 0; i < done; i++) {
    const slot = pt_walk(mm_pgd(mm), addr + (i << PAGE_SHIFT), LEVEL_PTE, false);
    if (slot > WALK_HUGE) store<u64>(slot, 0);
  }
  if (done > 0) tlb_flush_range(mm, addr, done);
  return err;
}

// ---- vmf_insert_pfn (R6.4) ----

// Map `pfn` at `addr` from a fault of a PFNMAP or MIXEDMAP VMA. NOPAGE (also when the PTE
// is populated already: nothing happens), OOM, or SIGBUS: outside the VMA, a pfn the
// walker would refuse, or a use Linux BUG()s on (neither or both of PFNMAP and MIXEDMAP,
// a COW PFNMAP VMA, a pfn with a struct page in a MIXEDMAP VMA; counted in special_stat).
export function vmf_insert_pfn(vma: u32, addr: u64, pfn: u32): u32 {
  const f = vma_flags(vma);
  const kind = f & (VM_PFNMAP | VM_MIXEDMAP);
  if (kind == 0 || kind == (VM_PFNMAP | VM_MIXEDMAP) ||
      ((f & VM_PFNMAP) != 0 && is_cow_mapping(f)) ||
      ((f & VM_MIXEDMAP) != 0 && pfn_valid(pfn))) {
    nBug++;
    return VM_FAULT_SIGBUS;
  }
  if (!inside(vma, addr) || pfn >= MAX_PHYS_PFN) return VM_FAULT_SIGBUS;
  return insert_pfn(vma, addr & ~(<u64>PAGE_SIZE - 1), pfn, false, true);
}

// ---- vmf_insert_mixed / vm_insert_page (R6.5) ----

// vm_mixed_zeropage_allowed: the zero page is harmless in COW mappings, in mappings that
// can never become writable, and in DAX / IO mappings whose pfn_mkwrite will replace it.
function zeropage_allowed(vma: u32): bool {
  const f = vma_flags(vma);
  if (is_cow_mapping(f) || (f & (VM_WRITE | VM_MAYWRITE)) == 0) return true;
  const file = vma_file(vma);
  if (file == 0 || (file_flags(file) & AS_HAS_PFN_MKWRITE) == 0) return false;
  return (file_flags(file) & AS_DAX) != 0 || (vma_iflags(vma) & VMA_DAX) != 0 || (f & VM_IO) != 0;
}

// vm_mixed_ok: MIXEDMAP VMAs take any pfn; DAX memory (XIP pfns in a DAX VMA, Linux's
// devmap pfns) and the zero page go anywhere; a writable zero page nowhere.
function vm_mixed_ok(vma: u32, pfn: u32, mkwrite: bool): bool {
  if (pfn == gZeroPfn && (mkwrite || !zeropage_allowed(vma))) return false;
  if ((vma_flags(vma) & VM_MIXEDMAP) != 0) return true;
  if (pfn_is_xip(pfn) && (vma_iflags(vma) & VMA_DAX) != 0) return true;
  return pfn == gZeroPfn;
}

// Map `pfn` at `addr` from a fault (vmf_insert_mixed, or its _mkwrite variant). With
// pte_special a special PTE; without it, a pfn with a struct page becomes a refcounted
// normal page (file RSS +1). NOPAGE, OOM or SIGBUS.
export function vmf_insert_mixed(vma: u32, addr: u64, pfn: u32, mkwrite: bool): u32 {
  if (!inside(vma, addr) || pfn >= MAX_PHYS_PFN || !vm_mixed_ok(vma, pfn, mkwrite)) return VM_FAULT_SIGBUS;
  addr &= ~(<u64>PAGE_SIZE - 1);
  if (!gHasPteSpecial && pfn_valid(pfn) && pfn != gZeroPfn) {
    let err = validate_page(pfn);
    if (err == 0) err = insert_page(vma, addr, pfn, mkwrite, true);
    if (err == -ENOMEM) return VM_FAULT_OOM;
    if (err < 0 && err != -EBUSY) return VM_FAULT_SIGBUS;
    return VM_FAULT_NOPAGE;
  }
  return insert_pfn(vma, addr, pfn, mkwrite, true);
}

// vm_insert_page: map RAM page `pfn` (a driver's own page) at `addr`, refcounted, file
// RSS +1; the VMA becomes MIXEDMAP. 0, -EFAULT outside the VMA, -EINVAL for a page that
// may not be inserted (anonymous, refcount 0, …) or a PFNMAP VMA, -EBUSY if populated,
// -ENOMEM.
export function vm_insert_page(vma: u32, addr: u64, pfn: u32): i32 {
  if (!inside(vma, addr)) return -EFAULT;
  const v = validate_page(pfn);
  if (v < 0) return v;
  const f = vma_flags(vma);
  if ((f & VM_MIXEDMAP) == 0) {
    if ((f & VM_PFNMAP) != 0) { nBug++; return -EINVAL; }
    set_vma_flags(vma, f | VM_MIXEDMAP);
  }
  return insert_page(vma, addr & ~(<u64>PAGE_SIZE - 1), pfn, false, false);
}

// ---- mmap of special files ----

export const SPECIAL_MMAP_NONE: u32 = 0; // remap_pfn_range did the work already
export const SPECIAL_MMAP_MIXED: u32 = 1; // an XIP / DAX file: VM_MIXEDMAP, faults insert pfns
export const SPECIAL_MMAP_PFN: u32 = 2; // a device mapped by its faults (vmf_insert_pfn)

// What a file's f_op->mmap and then mmap_region do to a special VMA: set its kind, and
// drop VM_LOCKED from special and DAX VMAs, uncounted (R8.4: they are never locked).
export function special_mmap(vma: u32, kind: u32): void {
  let f = vma_flags(vma);
  if (kind == SPECIAL_MMAP_MIXED) f |= VM_MIXEDMAP;
  else if (kind == SPECIAL_MMAP_PFN) f |= VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP;
  if ((f & VM_LOCKED_MASK) != 0 && ((f & VM_SPECIAL) != 0 || (vma_iflags(vma) & VMA_DAX) != 0)) {
    if ((f & VM_LOCKED) != 0) mm_add_locked_vm(vma_mm(vma), -<i64>vma_pages(vma));
    f &= ~VM_LOCKED_MASK;
  }
  set_vma_flags(vma, f);
}

// ---- COW of a PTE without a struct page ----

// wp_page_copy's source when the old PTE has no page (R5.4, R6.6): RAM and XIP bytes sit
// in linear memory at gRamBase + pa; device memory is read through the host.
export function copy_from_pfn(dst: usize, pfn: u32): void {
  if (pfn_is_device(pfn)) mmio_copy_page(dst, pfn);
  else memory.copy(dst, gRamBase + (<usize>pfn << PAGE_SHIFT), PAGE_SIZE);
}
