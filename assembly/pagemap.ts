// /proc/pid/pagemap (R11.1-R11.4) plus what the kernel hides, and per-VMA numbers for
// smaps. One entry per page: a u64 in Linux's format and a u32 of our own bits.
//
// Linux bits: 0..54 PFN (or swap type 0..4 and offset 5..54), 55 soft-dirty,
// 56 exclusively mapped, 57 uffd-wp, 58 guard region, 61 file/shared-anon, 62 swapped,
// 63 present. Extra u32: bit 0 young, 1 dirty, 2 writable, 3 special, 4 protnone,
// 5 zero page, 6 mlocked page, 7 swap entry exclusive, 8 a normal page (vm_normal_page).

import { gZeroPfn, gDaxFolios, pfn_is_xip } from "./config";
import { _PAGE_PSE, pte_present, pte_pfn, pte_soft_dirty, pte_uffd_wp, pte_young, pte_dirty,
  pte_write, pte_special, pte_protnone, is_swap_pte, is_pte_marker, swp_type, swp_offset,
  pte_swp_exclusive, PTE_MARKER_UFFD_WP, PTE_MARKER_GUARD } from "./pte";
import { PG_mlocked, page_flags, page_mapcount } from "./page";
import { LEVEL_PMD, LEVEL_PTE, WALK_HUGE, pt_walk, slot_addr, table_index } from "./pgtable";
import { VM_SOFTDIRTY, VM_MIXEDMAP, VMA_DAX, vma_flags, vma_iflags, vma_start, vma_end, vma_pgoff, vma_file,
  vma_mm, vma_file_next } from "./vma";
import { file_immap } from "./mapping";
import { mm_pgd, find_vma } from "./mm";
import { page_is_anon } from "./rmap";
import { vm_normal_page, NO_PAGE } from "./special";
import { folio_precise_page_mapcount } from "./lru";

const PM_SOFT_DIRTY: u64 = <u64>1 << 55;
const PM_MMAP_EXCLUSIVE: u64 = <u64>1 << 56;
const PM_UFFD_WP: u64 = <u64>1 << 57;
const PM_GUARD: u64 = <u64>1 << 58;
const PM_FILE: u64 = <u64>1 << 61;
const PM_SWAP: u64 = <u64>1 << 62;
const PM_PRESENT: u64 = <u64>1 << 63;

// One page's entry; extras into `extra`.
export let extra: u32 = 0;
export function pagemap_entry(mm: u32, va: u64): u64 {
  extra = 0;
  const v = find_vma(mm, va);
  if (v == 0 || va < vma_start(v)) return 0; // R11.3: outside any VMA
  let e: u64 = (vma_flags(v) & VM_SOFTDIRTY) != 0 ? PM_SOFT_DIRTY : 0; // R11.4
  const pmdSlot = pt_walk(mm_pgd(mm), va, LEVEL_PMD, false);
  if (pmdSlot <= WALK_HUGE) return e;
  const pmd = load<u64>(pmdSlot);
  if (pmd == 0) return e;
  let pte: u64;
  if ((pmd & _PAGE_PSE) != 0) {
    // A PMD-mapped folio: report the 4 KiB page inside it.
    pte = (pmd & ~(<u64>0x1f_f000) & ~_PAGE_PSE) + ((va & 0x1f_f000));
  } else {
    pte = load<u64>(slot_addr(pte_pfn(pmd), table_index(va, LEVEL_PTE)));
  }
  if (pte == 0) return e;
  if (pte_present(pte)) {
    const pfn = pte_pfn(pte);
    e |= PM_PRESENT | <u64>pfn;
    if (pte_soft_dirty(pte)) e |= PM_SOFT_DIRTY;
    if (pte_uffd_wp(pte)) e |= PM_UFFD_WP;
    const page = vm_normal_page(v, va, pte);
    if (page != NO_PAGE) {
      extra |= 256;
      if (!page_is_anon(page)) e |= PM_FILE;
      if (folio_precise_page_mapcount(page) == 1) e |= PM_MMAP_EXCLUSIVE;
      if ((page_flags(page) & PG_mlocked) != 0) extra |= 64;
    } else if (dax_folio_pte(v, pfn)) {
      // 6.15+: a DAX file system's page is a refcounted file folio (gDaxFolios).
      extra |= 256;
      e |= PM_FILE;
      if (dax_mapcount(v, va, pfn) == 1) e |= PM_MMAP_EXCLUSIVE;
    }
    if (pte_young(pte)) extra |= 1;
    if (pte_dirty(pte)) extra |= 2;
    if (pte_write(pte)) extra |= 4;
    if (pte_special(pte)) extra |= 8;
    if (pte_protnone(pte)) extra |= 16;
    if (pfn == gZeroPfn) extra |= 32;
    return e;
  }
  if (is_pte_marker(pte)) {
    e |= PM_SWAP; // a marker is a swap-type entry: Linux sets bit 62 for it too (guard-region golden)
    const m = <u32>swp_offset(pte);
    if (m == PTE_MARKER_UFFD_WP) e |= PM_UFFD_WP;
    if (m == PTE_MARKER_GUARD) e |= PM_GUARD;
    return e;
  }
  if (is_swap_pte(pte)) {
    e |= PM_SWAP | (<u64>swp_type(pte) & 0x1f) | ((swp_offset(pte) << 5) & ((<u64>1 << 55) - 1));
    if (pte_soft_dirty(pte)) e |= PM_SOFT_DIRTY;
    if (pte_uffd_wp(pte)) e |= PM_UFFD_WP;
    if (pte_swp_exclusive(pte)) extra |= 128;
  }
  return e;
}

// Does this PTE of VMA `v` map a page of a DAX file system that Linux 6.15+ refcounts as a
// folio? An XIP pfn in a DAX VMA that is not VM_MIXEDMAP (2.6 XIP never had pages).
export function dax_folio_pte(v: u32, pfn: u32): bool {
  return gDaxFolios && pfn_is_xip(pfn) && (vma_iflags(v) & VMA_DAX) != 0 && (vma_flags(v) & VM_MIXEDMAP) == 0;
}

// The DAX page's mapcount: PTEs mapping `pfn` at its file index in every VMA of the file
// (the pfn is the file's block, so only that index can map it). Observation only: not hot.
function dax_mapcount(v: u32, va: u64, pfn: u32): u32 {
  const index = vma_pgoff(v) + ((va - vma_start(v)) >> 12);
  let n: u32 = 0;
  for (let w = file_immap(vma_file(v)); w != 0; w = vma_file_next(w)) {
    const pg0 = vma_pgoff(w);
    if (index < pg0 || index >= pg0 + ((vma_end(w) - vma_start(w)) >> 12)) continue;
    const at = vma_start(w) + ((index - pg0) << 12);
    const pmdSlot = pt_walk(mm_pgd(vma_mm(w)), at, LEVEL_PMD, false);
    if (pmdSlot <= WALK_HUGE) continue;
    const pmd = load<u64>(pmdSlot);
    if (pmd == 0 || (pmd & _PAGE_PSE) != 0) continue;
    const pte = load<u64>(slot_addr(pte_pfn(pmd), table_index(at, LEVEL_PTE)));
    if (pte_present(pte) && pte_pfn(pte) == pfn) n++;
  }
  return n;
}

// Fill `n` entries for pages from `va` into out64 (u64 each) and out32 (u32 each).
export function pagemap_read(mm: u32, va: u64, n: u32, out64: usize, out32: usize): void {
  for (let i: u32 = 0; i < n; i++) {
    store<u64>(out64 + (<usize>i << 3), pagemap_entry(mm, va + (<u64>i << 12)));
    store<u32>(out32 + (<usize>i << 2), extra);
  }
}

// smaps numbers for one VMA, in pages: [rss, anonymous, referenced(young), locked,
// swap, shared(mapcount > 1), private, dirty] at `out` (u32 each).
export function vma_smaps(mm: u32, v: u32, out: usize): void {
  memory.fill(out, 0, 32);
  const locked = (vma_flags(v) & 0x2000) != 0;
  for (let va = vma_start(v); va < vma_end(v); va += 4096) {
    const e = pagemap_entry(mm, va);
    if ((e & PM_PRESENT) != 0) {
      if ((extra & 256) == 0) continue; // vm_normal_page found none: not in Rss (smaps)
      const pte = e;
      bump(out, 0);
      if ((pte & PM_FILE) == 0) bump(out, 1);
      if ((extra & 1) != 0) bump(out, 2);
      if (locked) bump(out, 3);
      if ((pte & PM_MMAP_EXCLUSIVE) != 0) bump(out, 6); else bump(out, 5);
      if ((extra & 2) != 0) bump(out, 7);
    } else if ((e & PM_SWAP) != 0) {
      bump(out, 4);
    }
  }
}
@inline function bump(out: usize, i: u32): void {
  store<u32>(out + (i << 2), load<u32>(out + (i << 2)) + 1);
}
