// The PTE table a fault needs, allocated before the PTE lock is taken (R3.1, R3.5), and
// the named PTE-lock points (Linux's pte_alloc / pte_offset_map_lock). Below install.ts,
// special.ts and swap.ts, which all fill PTEs through it.
//
// The core is single-threaded, so the lock functions do nothing; they mark where Linux
// holds the PTE lock and re-checks, so threads can come later without moving code.

import { _PAGE_PSE } from "./pte";
import { NO_PFN } from "./phys";
import { pgtable_alloc, pgtable_free, pmd_populate, slot_addr, table_index, LEVEL_PTE } from "./pgtable";
import { mm_add_ptes } from "./mm";
import { vmf_mm, vmf_pmd, set_vmf_pte, vmf_prealloc, set_vmf_prealloc } from "./vmfault";

// ---- lock points (single-threaded: no-ops) ----
@inline export function pte_lock(): void {}
@inline export function pte_unlock(): void {}

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
