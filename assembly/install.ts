// Installing translations: set_pte_range (R2.6, R3.2 step 5) and the PMD mapping of a
// page-cache folio (do_set_pmd, zap_huge_pmd, R3.3). The PTE table and lock points are in
// pte_alloc.ts, the mmu_gather in mmu_gather.ts.

import { gPrefaultOld, PMD_SIZE, HPAGE_PMD_ORDER, HPAGE_PMD_NR } from "./config";
import { pfn_pte, pte_mkold, pte_mkdirty, pte_mkwrite, pte_mkyoung, pte_wrprotect, pte_pfn,
  pte_young, pte_dirty, _PAGE_PSE, _PAGE_RW } from "./pte";
import { PG_dirty, PG_swapbacked, PG_hwpoison, PG_referenced, page_flags, page_set, get_page,
  page_index, page_mapping } from "./page";
import { pt_walk, LEVEL_PMD, WALK_HUGE } from "./pgtable";
import { tlb_flush_range } from "./tlb";
import { lru_add, put_page, folio_head, folio_order, folio_add_entire_mapcount, folio_test_large } from "./lru";
import { VM_SHARED, VM_WRITE, VM_LOCKED, VM_NOHUGEPAGE, vma_flags, vma_page_prot, vma_start,
  vma_end, linear_page_index } from "./vma";
import { add_mm_counter, mm_pgd, RSS_ANON, RSS_FILE, RSS_SHMEM } from "./mm";
import { page_add_new_anon_rmap, page_dup_rmap, page_remove_rmap } from "./rmap";
import { file_pages, pc_lookup, mark_page_dirty } from "./mapping";
import { tlb_note, tlb_remove_page } from "./mmu_gather";
import { pte_lock, pte_unlock } from "./pte_alloc";
import { mlock_vma_folio, mlock_large_mapped } from "./mlock_folio";
import { vmf_mm, vmf_pmd, vmf_flags, vmf_address, VM_FAULT_FALLBACK, FAULT_FLAG_WRITE,
  FAULT_FLAG_UNSHARE, FAULT_FLAG_USER } from "./vmfault";
import { count, ST_THP_FILE_MAPPED } from "./stats";

// Map page-cache page `pfn` (the caller holds one reference for this PTE) or, for a
// private write, the new anonymous page at `slot` (R2.6, R3.2). `prefault` marks a PTE
// installed by fault-around for another address (old if prefaultOld, seed 001).
export function set_pte(vma: u32, mm: u32, pfn: u32, address: u64, slot: usize, write: bool,
                        prefault: bool, anonNew: bool): void {
  const flags = vma_flags(vma);
  let entry = pfn_pte(pfn, vma_page_prot(vma));
  if (prefault && gPrefaultOld) entry = pte_mkold(entry);
  else entry = pte_mkyoung(entry);
  if (write) {
    entry = pte_mkdirty(entry);
    if ((flags & VM_WRITE) != 0) entry = pte_mkwrite(entry);
  } else if ((flags & VM_SHARED) != 0 && (entry & 2) != 0 && (page_flags(pfn) & PG_dirty) != 0) {
    entry = pte_mkdirty(entry); // writable shared PTE of a dirty folio (R2.6)
  }
  if (anonNew) {
    add_mm_counter(mm, RSS_ANON, 1);
    page_add_new_anon_rmap(pfn, mm, vma, address);
    lru_add(pfn);
  } else {
    add_mm_counter(mm, (page_flags(pfn) & PG_swapbacked) != 0 ? RSS_SHMEM : RSS_FILE, 1);
    page_dup_rmap(pfn);
  }
  // R8.6: a new anonymous folio is mlocked whatever its size (folio_add_lru_vma); a page-cache
  // page if its folio is small, or (6.18+) when this fault maps all of its large folio
  // (__folio_add_file_rmap; before 6.18 only the mlock walk locks a large folio, when the
  // locked range maps all of it: fuzz seed 1754798131 case 1676, seed 1363926800 case 865).
  if ((flags & VM_LOCKED) != 0) {
    if (anonNew || !folio_test_large(pfn)) mlock_vma_folio(pfn);
    else mlock_large_mapped(pfn); // 6.18+: a large folio mapped whole by this fault
  }
  store<u64>(slot, entry);
}

// A fault-around PTE: takes its own reference to the page-cache page.
export function set_prefault_pte(vma: u32, mm: u32, pfn: u32, address: u64, slot: usize,
                                 isFaulting: bool): void {
  get_page(pfn);
  set_pte(vma, mm, pfn, address, slot, false, !isFaulting, false);
}

// Fault-around's set_pte_range over small page-cache pages (R2.6; issue 17: per run, not
// per page): prefault_begin reads the VMA's protection once, prefault_small maps one page
// (a reference, a mapcount, the store), prefault_end adds the RSS of the run. A VM_LOCKED
// VMA is refused (false): its pages take set_prefault_pte, which mlocks each.
let pfProt: u64 = 0;
let pfShared = false;
let pfFile: i32 = 0;
let pfShmem: i32 = 0;
export function prefault_begin(vma: u32): bool {
  const f = vma_flags(vma);
  if ((f & VM_LOCKED) != 0) return false;
  pfProt = vma_page_prot(vma);
  pfShared = (f & VM_SHARED) != 0;
  pfFile = 0;
  pfShmem = 0;
  return true;
}
// `pf` is the page's flags word, as the caller just read it.
@inline export function prefault_small(pfn: u32, pf: u32, slot: usize, young: bool): void {
  get_page(pfn);
  let entry = pfn_pte(pfn, pfProt);
  entry = young || !gPrefaultOld ? pte_mkyoung(entry) : pte_mkold(entry);
  if (pfShared && (entry & 2) != 0 && (pf & PG_dirty) != 0) entry = pte_mkdirty(entry);
  if ((pf & PG_swapbacked) != 0) pfShmem++; else pfFile++;
  page_dup_rmap(pfn);
  store<u64>(slot, entry);
}
// A run's PTEs (filemap.ts map_small_run): the VMA's protection, old if prefaultOld (the
// faulting page's is made young); whether a dirty folio's PTE is made dirty (shared, writable).
@inline export function prefault_base(): u64 { return gPrefaultOld ? pte_mkold(pfProt) : pte_mkyoung(pfProt); }
@inline export function prefault_dirty_ok(): bool { return pfShared && (pfProt & _PAGE_RW) != 0; }
// The RSS of a run, added by prefault_end.
export function prefault_add(file: u32, shmem: u32): void {
  pfFile += <i32>file;
  pfShmem += <i32>shmem;
}
export function prefault_end(mm: u32): void {
  if (pfFile != 0) add_mm_counter(mm, RSS_FILE, pfFile);
  if (pfShmem != 0) add_mm_counter(mm, RSS_SHMEM, pfShmem);
}

// ---- PMD mappings of PMD-sized page-cache folios (R3.3, seed 001) ----
//
// A PMD entry maps the whole 2 MiB folio: it holds one reference and one mapcount on the
// head (and one "entire" mapcount, lru.ts), and counts 512 pages of file (or shmem) RSS.
// It is made only by a read fault and is never writable: a write through it faults and
// splits it (huge_pmd_fault), so dirty tracking, msync and the reverse map stay per 4 KiB
// PTE. (Linux maps a dirty writable PMD on a shared write fault to a file folio; for COW
// and write-notify it splits on the write fault exactly like this.)
// A split of a PMD-mapped page-cache folio (a partial zap, a write, GUP) does what Linux's
// __split_huge_pmd does for a file folio: the PMD mapping goes; the folio stays in the page
// cache and its pages refault through PTEs (minor faults, with fault-around).

// Is `page`'s folio a PMD-sized page-cache folio that may be mapped by the PMD covering
// `address` of `vma`? (the 2 MiB block inside the VMA, file offset congruent mod 512 pages,
// wholly below i_size, every subpage still cached and none hwpoisoned, THP not refused,
// the VMA not mlocked)
function pmd_mappable(vma: u32, page: u32, address: u64): bool {
  const head = folio_head(page);
  if (folio_order(head) != HPAGE_PMD_ORDER) return false;
  // VM_LOCKED: mlock_folio.ts locks 4 KiB pages through their PTEs, so locked VMAs get PTEs
  // (Linux would mlock the PMD-mapped folio instead).
  if ((vma_flags(vma) & (VM_NOHUGEPAGE | VM_LOCKED)) != 0) return false;
  const haddr = address & ~(PMD_SIZE - 1);
  if (haddr < vma_start(vma) || haddr + PMD_SIZE > vma_end(vma)) return false;
  const first = page_index(head);
  if (linear_page_index(vma, haddr) != <u64>first) return false;
  const file = page_mapping(head);
  if (file == 0 || <u64>first + HPAGE_PMD_NR > file_pages(file)) return false; // never past EOF
  for (let i: u32 = 0; i < HPAGE_PMD_NR; i++) {
    if ((page_flags(head + i) & PG_hwpoison) != 0 || pc_lookup(file, first + i) != head + i) return false;
  }
  return true;
}

// do_set_pmd (R3.3): map the PMD-sized folio holding `page` with one PMD entry at the
// fault's (empty) PMD slot. The PMD takes its own reference on the head. Returns 0 when
// mapped, VM_FAULT_FALLBACK when the caller must map PTEs instead. GUP faults (no
// FAULT_FLAG_USER) fall back too: gup.ts follows PTEs only.
export function do_set_pmd(vma: u32, mm: u32, page: u32, address: u64): u32 {
  if ((vmf_flags() & (FAULT_FLAG_WRITE | FAULT_FLAG_UNSHARE)) != 0) return VM_FAULT_FALLBACK;
  if ((vmf_flags() & FAULT_FLAG_USER) == 0) return VM_FAULT_FALLBACK;
  if (!pmd_mappable(vma, page, address)) return VM_FAULT_FALLBACK;
  const head = folio_head(page);
  const slot = vmf_pmd();
  pte_lock(); // the PMD lock
  if (load<u64>(slot) != 0) { pte_unlock(); return VM_FAULT_FALLBACK; } // populated meanwhile
  const entry = pte_mkyoung(pte_wrprotect(pfn_pte(head, vma_page_prot(vma)))) | _PAGE_PSE;
  get_page(head);
  page_dup_rmap(head);
  folio_add_entire_mapcount(head, 1);
  add_mm_counter(mm, (page_flags(head) & PG_swapbacked) != 0 ? RSS_SHMEM : RSS_FILE, <i32>HPAGE_PMD_NR);
  store<u64>(slot, entry);
  pte_unlock();
  count(ST_THP_FILE_MAPPED);
  return 0;
}

// Take the PMD mapping at `slot` down: counters and rmap now, the head's reference after
// the caller's TLB flush (`gather`: through the mmu_gather of a zap; else flushed here).
function remove_huge_pmd(mm: u32, va: u64, slot: usize, gather: bool): void {
  const pmd = load<u64>(slot);
  if (pmd == 0 || (pmd & _PAGE_PSE) == 0) return;
  const head = pte_pfn(pmd);
  const haddr = va & ~(PMD_SIZE - 1);
  store<u64>(slot, 0);
  add_mm_counter(mm, (page_flags(head) & PG_swapbacked) != 0 ? RSS_SHMEM : RSS_FILE, -<i32>HPAGE_PMD_NR);
  if (pte_dirty(pmd)) for (let i: u32 = 0; i < HPAGE_PMD_NR; i++) mark_page_dirty(head + i);
  if (pte_young(pmd)) page_set(head, PG_referenced);
  folio_add_entire_mapcount(head, -1);
  page_remove_rmap(head);
  if (gather) {
    tlb_note(haddr);
    tlb_note(haddr + PMD_SIZE - 4096);
    tlb_remove_page(head, haddr);
  } else {
    tlb_flush_range(mm, haddr, HPAGE_PMD_NR);
    put_page(head);
  }
}

// Split (= unmap, see above) the PMD mapping covering `va` in `mm`, if there is one:
// Linux's split_huge_pmd_address, for a VMA boundary (vma_adjust_trans_huge) or a
// protection change (change_huge_pmd) inside a PMD-mapped block. The TLB is flushed here.
export function split_huge_pmd_address(mm: u32, va: u64): bool {
  const slot = pt_walk(mm_pgd(mm), va, LEVEL_PMD, false);
  if (slot <= WALK_HUGE) return false;
  const pmd = load<u64>(slot);
  if (pmd == 0 || (pmd & _PAGE_PSE) == 0) return false;
  remove_huge_pmd(mm, va, slot, false);
  return true;
}

// unmap.ts's zap of a PMD entry: whole or partial, the mapping goes
// (a partial zap is a split, and splitting a file PMD unmaps it: see above).
export function zap_huge_pmd(mm: u32, vma: u32, va: u64, slot: usize): void {
  remove_huge_pmd(mm, va, slot, true);
}

// fault.ts's fault on a present huge PMD. A user read only
// finds it present (spurious: it is made young); a write, an unshare or a GUP fault
// splits it and returns VM_FAULT_FALLBACK so the fault goes on at PTE level.
export function huge_pmd_fault(): u32 {
  const slot = vmf_pmd();
  const pmd = load<u64>(slot);
  const f = vmf_flags();
  if ((f & (FAULT_FLAG_WRITE | FAULT_FLAG_UNSHARE)) == 0 && (f & FAULT_FLAG_USER) != 0) {
    store<u64>(slot, pte_mkyoung(pmd));
    return 0;
  }
  remove_huge_pmd(vmf_mm(), vmf_address(), slot, false);
  return VM_FAULT_FALLBACK;
}
