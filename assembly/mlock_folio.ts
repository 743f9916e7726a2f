// The page half of Linux's mm/mlock.c (R8.6): mlock_vma_folio, munlock_vma_folio and
// mlock_new_folio keep PG_mlocked pages on the unevictable LRU. Low enough that the fault,
// install, zap and swap-in paths call it directly; the syscalls are in mlock.ts.
//
// A page is mlocked while at least one PTE maps it in a VM_LOCKED VMA. Instead of
// Linux's mlock_count, munlock asks the reverse map whether such a mapping remains.

import { PG_mlocked, PG_unevictable, page_flags } from "./page";
import { lru_move } from "./lru";
import { VM_LOCKED, VM_SPECIAL, vma_flags } from "./vma";
import { rmap_walk_start, rmap_walk_next, rmapVma } from "./rmap";
import { count, ST_UNEVICTABLE_CULLED } from "./stats";

// A page newly mapped into a VM_LOCKED VMA: mlocked, unevictable.
export function mlock_vma_folio(pfn: u32): void {
  if ((page_flags(pfn) & PG_mlocked) != 0) return;
  lru_move(pfn, PG_mlocked | PG_unevictable, 0);
  count(ST_UNEVICTABLE_CULLED);
}

// Is the page still mapped in some VM_LOCKED VMA?
function mapped_locked(pfn: u32): bool {
  rmap_walk_start(pfn);
  while (rmap_walk_next() != 0) {
    if ((vma_flags(rmapVma) & VM_LOCKED) != 0) return true;
  }
  return false;
}

// One mapping in a locked VMA went away (zap, munlock): clear PG_mlocked if it was the last.
export function munlock_vma_folio(pfn: u32): void {
  if ((page_flags(pfn) & PG_mlocked) == 0) return;
  if (mapped_locked(pfn)) return;
  lru_move(pfn, 0, PG_mlocked | PG_unevictable);
}

// A new anonymous page in `vma` (do_anonymous_page, do_cow_fault): mlocked if the VMA is.
export function mlock_new_folio(vma: u32, pfn: u32): void {
  if ((vma_flags(vma) & (VM_LOCKED | VM_SPECIAL)) == VM_LOCKED) mlock_vma_folio(pfn);
}

// Walk the present pages of [start, end) in a VMA and lock or unlock them.
