// Which PTEs have a refcounted struct page behind them: vm_normal_page (R6.1, R6.2).
// Special mappings themselves (remap_pfn_range, vmf_insert_*) build on this.

import { gZeroPfn, gHasPteSpecial } from "./config";
import { pte_pfn, pte_special } from "./pte";
import { pfn_valid } from "./page";
import { VM_PFNMAP, VM_MIXEDMAP, vma_flags, vma_start, vma_pgoff, is_cow_mapping } from "./vma";

export const NO_PAGE: u32 = 0xffff_ffff;

// The frame of the page a present PTE maps if it is a normal (refcounted, rmapped,
// RSS-counted) page, else NO_PAGE: special PTEs, the zero page, and memory without a
// struct page (execute-in-place, device ranges).
export function vm_normal_page(vma: u32, addr: u64, pte: u64): u32 {
  const pfn = pte_pfn(pte);
  if (gHasPteSpecial) {
    // R6.1: the special bit says it all.
    if (pte_special(pte) || pfn == gZeroPfn || !pfn_valid(pfn)) return NO_PAGE;
    return pfn;
  }
  // R6.2: the linear rule of architectures without pte_special.
  const flags = vma_flags(vma);
  if ((flags & (VM_PFNMAP | VM_MIXEDMAP)) != 0) {
    if ((flags & VM_MIXEDMAP) != 0) {
      if (!pfn_valid(pfn) || pfn == gZeroPfn) return NO_PAGE;
    } else {
      const linear = vma_pgoff(vma) + ((addr - vma_start(vma)) >> 12);
      if (<u64>pfn == linear) return NO_PAGE;
      if (!is_cow_mapping(flags)) return NO_PAGE;
    }
  }
  if (pfn == gZeroPfn || !pfn_valid(pfn)) return NO_PAGE;
  return pfn;
}
