// Installing translations: the PTE table a fault needs (preallocated outside the lock,
// R3.1/R3.5), set_pte_range (R2.6, R3.2 step 5) and the named PTE-lock points.
//
// The core is single-threaded, so the lock functions do nothing; they mark where Linux
// holds the PTE lock and re-checks, so threads can come later without moving code.

import { gPrefaultOld } from "./config";
import { pfn_pte, pte_mkold, pte_mkdirty, pte_mkwrite, pte_mkyoung, _PAGE_PSE } from "./pte";
import { PG_dirty, PG_swapbacked, page_flags, get_page } from "./page";
import { NO_PFN } from "./phys";
import { pgtable_alloc, pgtable_free, pmd_populate, slot_addr, table_index, LEVEL_PTE } from "./pgtable";
import { lru_add } from "./lru";
import { VM_SHARED, VM_WRITE, VM_LOCKED, vma_flags, vma_page_prot } from "./vma";
import { add_mm_counter, mm_add_ptes, RSS_ANON, RSS_FILE, RSS_SHMEM } from "./mm";
import { page_add_new_anon_rmap, page_dup_rmap } from "./rmap";
import { vmf_mm, vmf_pmd, vmf_pte, set_vmf_pte, vmf_prealloc, set_vmf_prealloc } from "./vmfault";

// ---- lock points (single-threaded: no-ops) ----
@inline export function pte_lock(): void {}
@inline export function pte_unlock(): void {}

// mlock.ts makes pages mapped into VM_LOCKED VMAs unevictable (R8.6).
function noMlock(pfn: u32): void {}
let mlockHook: (pfn: u32) => void = noMlock;
export function set_mlock_page_hook(f: (pfn: u32) => void): void { mlockHook = f; }

// Allocate a table for the fault before taking the lock (R3.1). false on OOM.
export function prealloc_pte(): bool {
  if (vmf_prealloc() != 0) return true;
  const t = pgtable_alloc();
  if (t == NO_PFN) return false;
  set_vmf_prealloc(t + 1);
  return true;
}

// Make sure vmf's PMD has a PTE table: the preallocated one if there is one (consumed),
// else a new one. Sets vmf.pte. false on OOM.
export function pte_alloc_vmf(address: u64): bool {
  const pmdSlot = vmf_pmd();
  let pmd = load<u64>(pmdSlot);
  if (pmd == 0) {
    let t = vmf_prealloc();
    if (t != 0) {
      set_vmf_prealloc(0);
      t -= 1;
    } else {
      t = pgtable_alloc();
      if (t == NO_PFN) return false;
    }
    pmd_populate(pmdSlot, t);
    mm_add_ptes(vmf_mm(), 1);
    pmd = load<u64>(pmdSlot);
  }
  if ((pmd & _PAGE_PSE) != 0) return false;
  set_vmf_pte(slot_addr(<u32>((pmd & 0x000f_ffff_ffff_f000) >> 12), table_index(address, LEVEL_PTE)));
  return true;
}

// A preallocated table that was not consumed is freed at the end of the fault (R3.5).
export function release_prealloc(): void {
  const t = vmf_prealloc();
  if (t != 0) {
    pgtable_free(t - 1);
    set_vmf_prealloc(0);
  }
}

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
  if ((flags & VM_LOCKED) != 0) mlockHook(pfn);
  store<u64>(slot, entry);
}

// A fault-around PTE: takes its own reference to the page-cache page.
export function set_prefault_pte(vma: u32, mm: u32, pfn: u32, address: u64, slot: usize,
                                 isFaulting: bool): void {
  get_page(pfn);
  set_pte(vma, mm, pfn, address, slot, false, !isFaulting, false);
}
