// Guest page hinting (R12.1, R12.2, seed 003): the usage state the guest announces for
// each frame, what a hypervisor may do with a frame in that state, and the discard fault.
//
// The usage state follows R12.2's conditions exactly, so it is computed from the page
// whenever it is asked instead of being pushed at every transition point:
//   free frame                                   → unused
//   page-cache page: uptodate, clean, unlocked, not under write-back, in a mapping, no
//   references beyond the cache and its PTEs, of a file that never had an mlocked VMA
//                                                 → volatile, or potentially volatile
//                                                   if some PTE maps it writable
//   anything else (anonymous, dirty, pinned, locked, page tables, mlocked files) → stable
// A lookup or pin takes a reference, so the page is stable while it is held.

import { gNrFrames } from "./config";
import { pte_write, pte_dirty } from "./pte";
import { PG_buddy, PG_head, PG_user, PG_anon, PG_uptodate, PG_dirty, PG_locked, PG_writeback,
  PG_swapbacked, PG_tail, page_flags, page_ref, page_mapcount, page_mapping } from "./page";
import { pfn_to_virt } from "./phys";
import { tlb_flush_all } from "./tlb";
import { walk, walkPfn, MODE_PEEK, MODE_NXE, WALK_OK, PF_DISCARD } from "./mmu";
import { mm_pgd } from "./mm";
import { rmap_walk_start, rmap_walk_next } from "./rmap";
import { file_flags, AS_MLOCKED } from "./mapping";
import { unmap_mapping_range } from "./unmap";
import { remove_cached_page } from "./filemap";
import { page_index } from "./page";
import { page_residency, set_page_residency, RES_RESIDENT, RES_PRESERVED, RES_DISCARDED } from "./pagestate";
import { count, ST_DISCARD } from "./stats";

export const PS_STABLE: u32 = 0;
export const PS_UNUSED: u32 = 1;
export const PS_VOLATILE: u32 = 2;
export const PS_POT_VOLATILE: u32 = 3;

// Where a frame is not a whole page of its own (a tail of a large block), its head decides.
function is_free(pfn: u32): bool {
  const f = page_flags(pfn);
  return (f & PG_buddy) != 0 || ((f & (PG_head | PG_tail)) == 0 && page_ref(pfn) == 0);
}

let writableSeen = false;
let dirtySeen = false;
function scan_ptes(pfn: u32): void {
  writableSeen = false;
  dirtySeen = false;
  rmap_walk_start(pfn);
  for (let slot = rmap_walk_next(); slot != 0; slot = rmap_walk_next()) {
    const pte = load<u64>(slot);
    if (pte_write(pte)) writableSeen = true;
    if (pte_dirty(pte)) dirtySeen = true;
  }
}

// The usage state of a RAM frame (R12.2).
export function page_usage_state(pfn: u32): u32 {
  if (pfn >= gNrFrames || is_free(pfn)) return PS_UNUSED;
  const f = page_flags(pfn);
  if ((f & PG_user) == 0 || (f & (PG_anon | PG_swapbacked)) != 0) return PS_STABLE;
  const file = page_mapping(pfn);
  if (file == 0 || (f & PG_uptodate) == 0 || (f & (PG_dirty | PG_locked | PG_writeback)) != 0) return PS_STABLE;
  if ((file_flags(file) & AS_MLOCKED) != 0) return PS_STABLE; // seed 003
  if (page_ref(pfn) != page_mapcount(pfn) + 1) return PS_STABLE; // held beyond cache + PTEs
  scan_ptes(pfn);
  if (dirtySeen) return PS_STABLE; // written through a PTE: the content is new (R12.1)
  return writableSeen ? PS_POT_VOLATILE : PS_VOLATILE;
}

// ---- the hypervisor's side ----

// Discard a frame if its state allows it without I/O: unused, volatile, or potentially
// volatile and clean. Its content becomes logically zero; the guest's next access to a
// mapping of it is a discard fault. Returns true if discarded.
export function hv_discard(pfn: u32): bool {
  if (pfn >= gNrFrames || page_residency(pfn) == RES_DISCARDED) return false;
  const s = page_usage_state(pfn);
  if (s == PS_STABLE) return false;
  set_page_residency(pfn, RES_DISCARDED);
  memory.fill(pfn_to_virt(pfn), 0, 4096);
  tlb_flush_all(); // no translation may reach the frame without walking
  return true;
}

// Swap a stable frame out host-side: its content is kept (by the host) and comes back on
// the next access, invisible to the guest but for the time it takes.
export function hv_preserve(pfn: u32): bool {
  if (pfn >= gNrFrames || page_residency(pfn) != RES_RESIDENT) return false;
  set_page_residency(pfn, RES_PRESERVED);
  tlb_flush_all();
  return true;
}

// Host reclaim of up to `n` frames: discard what may be discarded, preserve the rest.
// Returns frames discarded * 65536 + frames preserved.
export function hv_reclaim(n: u32): f64 {
  let discarded: u32 = 0, preserved: u32 = 0;
  for (let pfn: u32 = 0; pfn < gNrFrames && discarded + preserved < n; pfn++) {
    if (page_residency(pfn) != RES_RESIDENT) continue;
    if (hv_discard(pfn)) discarded++;
    else if (page_usage_state(pfn) == PS_STABLE && !is_free(pfn) && hv_preserve(pfn)) preserved++;
  }
  return <f64>discarded * 65536 + <f64>preserved;
}

// ---- the guest's side: the discard fault (R12.2) ----

// A user access hit a discarded frame: drop the page from the page cache and from every
// mapping, so the retried access faults it in again from the file (a major fault).
export function do_discard_fault(mm: u32, va: u64): void {
  const r = walk(mm_pgd(mm), va, 0, MODE_PEEK | MODE_NXE);
  if (r == WALK_OK || (<u32>r & PF_DISCARD) == 0) return;
  const pfn = walkPfn;
  if (page_residency(pfn) != RES_DISCARDED) return;
  const f = page_flags(pfn);
  const file = page_mapping(pfn);
  if ((f & PG_anon) == 0 && file != 0) {
    const index = <u64>page_index(pfn);
    unmap_mapping_range(file, index, index, false);
    set_page_residency(pfn, RES_RESIDENT);
    remove_cached_page(pfn, true);
  } else {
    // Only volatile pages are discarded, and those are page cache; nothing else to do.
    set_page_residency(pfn, RES_RESIDENT);
  }
  count(ST_DISCARD);
}

