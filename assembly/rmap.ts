// The reverse map: exact mapcounts, and a walk that finds every PTE mapping a frame.
//
// An anonymous page belongs to its address space's family (the address spaces forked
// from one another) and remembers its virtual page; fork keeps addresses, so every PTE
// that can map it sits at that address in some family member. A page-cache page is
// found through its file's i_mmap list of VMAs and its index.

import { PTRS_PER_TABLE } from "./config";
import { pte_present, pte_pfn } from "./pte";
import { PG_anon, PG_anon_exclusive, PG_swapbacked, PG_uptodate, page_flags,
  page_clear, page_mapcount, set_page_mapcount, page_mapping, page_index,
  page_anon_vpn, page_set_new_anon } from "./page";
import { LEVEL_PTE, pt_walk, WALK_HUGE } from "./pgtable";
import { vma_start, vma_end, vma_pgoff, vma_file_next, anon_vma_prepare } from "./vma";
import { mm_family, mm_family_next, family_first, mm_pgd, vma_lookup } from "./mm";
import { file_immap } from "./mapping";

// A page just allocated for `vma` at `va`: anonymous, exclusive, mapped once (R4.2).
// @inline: on every anonymous and COW fault (issue 17).
@inline export function page_add_new_anon_rmap(pfn: u32, mm: u32, vma: u32, va: u64): void {
  page_set_new_anon(pfn, PG_anon | PG_swapbacked | PG_anon_exclusive | PG_uptodate, 1, mm_family(mm), va >> 12);
  anon_vma_prepare(vma); // normally done already (vmf_anon_prepare)
}

// One more PTE maps the page (fork's copy, fault-around, finish_fault).
@inline export function page_dup_rmap(pfn: u32): void {
  set_page_mapcount(pfn, page_mapcount(pfn) + 1);
}

// One PTE less. An anonymous page that nobody maps is no longer exclusive to anyone.
export function page_remove_rmap(pfn: u32): void {
  const m = page_mapcount(pfn) - 1;
  set_page_mapcount(pfn, m);
  if (m == 0 && (page_flags(pfn) & PG_anon) != 0) page_clear(pfn, PG_anon_exclusive);
}

@inline export function page_is_anon(pfn: u32): bool { return (page_flags(pfn) & PG_anon) != 0; }

// ---- rmap walk: rmap_walk_start(pfn), then rmap_walk_next() until it returns 0 ----
// Each hit leaves the address space, VMA and address in rmapMm / rmapVma / rmapVa and
// returns the PTE slot's linear address.
export let rmapMm: u32 = 0;
export let rmapVma: u32 = 0;
export let rmapVa: u64 = 0;
let walkPfn: u32 = 0;
let walkAnon: bool = false;
let cursor: u32 = 0; // anon: next member of the page's family; file: next VMA

export function rmap_walk_start(pfn: u32): void {
  walkPfn = pfn;
  walkAnon = page_is_anon(pfn);
  cursor = walkAnon ? family_first(page_mapping(pfn)) : file_immap(page_mapping(pfn));
}

function slotMapping(mm: u32, va: u64): usize {
  const slot = pt_walk(mm_pgd(mm), va, LEVEL_PTE, false);
  if (slot <= WALK_HUGE) return 0;
  const pte = load<u64>(slot);
  return pte_present(pte) && pte_pfn(pte) == walkPfn ? slot : 0;
}

export function rmap_walk_next(): usize {
  while (cursor != 0) {
    if (walkAnon) {
      const mm = cursor;
      cursor = mm_family_next(mm);
      const va = page_anon_vpn(walkPfn) << 12;
      const v = vma_lookup(mm, va);
      if (v == 0) continue;
      const slot = slotMapping(mm, va);
      if (slot != 0) { rmapMm = mm; rmapVma = v; rmapVa = va; return slot; }
    } else {
      const v = cursor;
      cursor = vma_file_next(v);
      const idx = <u64>page_index(walkPfn);
      const first = vma_pgoff(v);
      const npages = (vma_end(v) - vma_start(v)) >> 12;
      if (idx < first || idx >= first + npages) continue;
      const va = vma_start(v) + ((idx - first) << 12);
      const mm = vmaMm(v);
      const slot = slotMapping(mm, va);
      if (slot != 0) { rmapMm = mm; rmapVma = v; rmapVa = va; return slot; }
    }
  }
  return 0;
}

import { vma_mm } from "./vma";
@inline function vmaMm(v: u32): u32 { return vma_mm(v); }

// Count the PTEs that map a frame, the slow way (the invariant check's reference).
export function rmap_count(pfn: u32): u32 {
  let n: u32 = 0;
  rmap_walk_start(pfn);
  while (rmap_walk_next() != 0) n++;
  return n;
}

