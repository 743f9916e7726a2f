// mprotect (R9.5-R9.8) and soft-dirty clearing (clear_refs 4, R9.9).

import { TASK_SIZE, PMD_SIZE, EINVAL, ENOMEM, EACCES } from "./config";
import { _PAGE_PRESENT, _PAGE_RW, _PAGE_USER, _PAGE_NX, pte_present, pte_write, pte_modify, pte_mkwrite, pte_soft_dirty,
  pte_dirty, pte_uffd_wp, pte_protnone, pte_clear_soft_dirty, pte_wrprotect, pte_pfn } from "./pte";
import { PG_anon_exclusive, page_flags } from "./page";
import { pte_range_first, pte_range_next, pteRangeVa } from "./pgtable";
import { tlb_flush_range, tlb_flush_asid } from "./tlb";
import { VM_READ, VM_WRITE, VM_EXEC, VM_SHARED, VM_ACCOUNT, VM_NORESERVE, VM_HUGETLB, VMA_SHMEM, VM_SOFTDIRTY, VM_LOCKED, VM_LOCKONFAULT, VM_GROWSDOWN,
  VM_ACCESS_FLAGS, VMA_WRITENOTIFY, vma_flags, set_vma_flags, vma_start, vma_end, vma_next,
  vma_iflags, vma_page_prot, vma_file, vma_anon_vma } from "./vma";
import { mm_pgd, find_vma, mm_first_vma } from "./mm";
import { page_is_anon } from "./rmap";
import { vm_normal_page, NO_PAGE } from "./special";
import { split_huge_pmd_address } from "./install";
import { mm_populate } from "./gup";
import { split_for_flags, vma_set_page_prot, vma_merge_around, PROT_READ, PROT_WRITE,
  PROT_EXEC, PROT_SEM, PROT_GROWSDOWN, PROT_GROWSUP } from "./mmap";


// R9.7 can_change_pte_writable: may this PTE skip its write fault?
function can_change_pte_writable(v: u32, va: u64, pte: u64): bool {
  if (pte_protnone(pte) || pte_uffd_wp(pte)) return false;
  const f = vma_flags(v);
  const tracking = (f & VM_SOFTDIRTY) == 0;
  if (tracking && !pte_soft_dirty(pte)) return false; // R9.9: the write must fault
  if ((f & VM_SHARED) == 0) {
    const page = vm_normal_page(v, va, pte);
    return page != NO_PAGE && page_is_anon(page) && (page_flags(page) & PG_anon_exclusive) != 0;
  }
  if ((vma_iflags(v) & VMA_WRITENOTIFY) != 0) return pte_dirty(pte);
  return true;
}

// change_protection over [start, end) of one VMA with its current flags (R9.6).
// Returns true if any PTE lost a permission (the caller flushes).
export function change_protection(mm: u32, v: u32, start: u64, end: u64): bool {
  const prot = vma_page_prot(v);
  const writable = (vma_flags(v) & VM_WRITE) != 0;
  let lowered = false;
  // A PMD-mapped folio is unmapped rather than changed; its pages refault with the new
  // protection (R3.3, R9.6).
  for (let a = start & ~(PMD_SIZE - 1); a < end; a += PMD_SIZE) {
    if (split_huge_pmd_address(mm, a)) lowered = true;
  }
  for (let slot = pte_range_first(mm_pgd(mm), start, end); slot != 0; slot = pte_range_next()) {
    const old = load<u64>(slot);
    if (old == 0 || !pte_present(old)) continue; // swap entries carry no write bit
    let pte = pte_modify(old, prot);
    if (writable && !pte_write(pte) && can_change_pte_writable(v, pteRangeVa, pte)) pte = pte_mkwrite(pte);
    if ((old & ~pte & (_PAGE_PRESENT | _PAGE_RW | _PAGE_USER)) != 0 || (pte & ~old & _PAGE_NX) != 0) lowered = true;
    store<u64>(slot, pte);
  }
  return lowered;
}

// A VMA's flags with its access bits replaced by `newbits` (VM_READ|VM_WRITE|VM_EXEC).
// R9.5 (mprotect_fixup): a private mapping made writable is charged (VM_ACCOUNT) and keeps
// the charge when made read-only again, so it no longer merges with its never-writable
// neighbour; only an anonymous VMA that never got an anon_vma drops it (Linux 6.7+).
function mprotect_flags(v: u32, newbits: u32): u32 {
  const old = vma_flags(v);
  let nf = (old & ~VM_ACCESS_FLAGS) | newbits;
  if ((newbits & VM_WRITE) != 0) {
    if ((old & (VM_ACCOUNT | VM_WRITE | VM_HUGETLB | VM_SHARED | VM_NORESERVE)) == 0) nf |= VM_ACCOUNT;
  } else if ((old & VM_ACCOUNT) != 0 && vma_file(v) == 0 && (vma_iflags(v) & VMA_SHMEM) == 0 &&
    vma_anon_vma(v) == 0) {
    nf &= ~VM_ACCOUNT;
  }
  return nf;
}

export function do_mprotect(mm: u32, start: u64, len: u64, prot: u32): i32 {
  if ((start & 4095) != 0) return -EINVAL;
  if ((prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM | PROT_GROWSDOWN | PROT_GROWSUP)) != 0) return -EINVAL;
  if ((prot & (PROT_GROWSDOWN | PROT_GROWSUP)) == (PROT_GROWSDOWN | PROT_GROWSUP)) return -EINVAL;
  if (len == 0) return 0;
  const plen = (len + 4095) & ~(<u64>4095);
  if (plen < len || start + plen > TASK_SIZE + 4096 || start + plen < start) return -ENOMEM;
  const end = start + plen;
  // PROT_GROWSDOWN: the range runs down to the start of the grows-down VMA it begins in
  // (or below); PROT_GROWSUP would run up to the end of a grows-up VMA, and x86 has none.
  if ((prot & (PROT_GROWSDOWN | PROT_GROWSUP)) != 0) {
    const g = find_vma(mm, start);
    if (g == 0 || vma_start(g) >= end) return -ENOMEM;
    if ((prot & PROT_GROWSUP) != 0) return vma_start(g) > start ? -ENOMEM : -EINVAL;
    if ((vma_flags(g) & VM_GROWSDOWN) == 0) return -EINVAL;
    start = vma_start(g);
  }
  const newbits: u32 = (prot & PROT_READ ? VM_READ : 0) | (prot & PROT_WRITE ? VM_WRITE : 0) |
    (prot & PROT_EXEC ? VM_EXEC : 0);
  // R9.5: the range is changed VMA by VMA (do_mprotect_pkey's mprotect_fixup loop). It must
  // start inside a VMA; a hole or EACCES further on stops the loop with the VMAs before it
  // already changed, and a range running past the last VMA is ENOMEM after changing them all.
  let v = find_vma(mm, start);
  if (v == 0 || vma_start(v) > start) return -ENOMEM;
  let err: i32 = 0;
  let at = start;
  let lowered = false;
  while (at < end) {
    if (v == 0 || vma_start(v) > at) { err = -ENOMEM; break; }
    // VM_MAY* sit four bits above the permission they allow (R9.5: EACCES).
    if ((newbits & ~(vma_flags(v) >> 4) & VM_ACCESS_FLAGS) != 0) { err = -EACCES; break; }
    const e = vma_end(v) < end ? vma_end(v) : end;
    const old = vma_flags(v);
    const nf = mprotect_flags(v, newbits);
    if (nf == old) { at = vma_end(v); v = vma_next(v); continue; } // mprotect_fixup: nothing to do here
    const r = split_for_flags(mm, at, e, mprotect_flags, newbits);
    if (r < 0) { err = r; break; }
    v = find_vma(mm, at);
    set_vma_flags(v, nf);
    vma_set_page_prot(v);
    if (change_protection(mm, v, vma_start(v), vma_end(v))) lowered = true;
    if ((nf & (VM_LOCKED | VM_LOCKONFAULT | VM_SHARED)) == VM_LOCKED && (old & VM_WRITE) == 0 && (nf & VM_WRITE) != 0) {
      // R8.8: a locked private VMA made writable gets its COW broken up front; mprotect
      // passes locked = NULL, so no I/O retry (R11.6).
      mm_populate(mm, vma_start(v), vma_end(v), true, false);
    }
    // Continue after the VMA that now covers v: a merge may have freed v or its next.
    const m = vma_merge_around(mm, v);
    at = vma_end(m);
    v = vma_next(m);
  }
  if (lowered) tlb_flush_range(mm, start, (end - start) >> 12);
  return err;
}

// clear_refs 4 (R9.9): clear soft-dirty everywhere, write-protect, start tracking.
export function clear_soft_dirty(mm: u32): void {
  let v = mm_first_vma(mm);
  while (v != 0) {
    set_vma_flags(v, vma_flags(v) & ~VM_SOFTDIRTY);
    vma_set_page_prot(v);
    for (let slot = pte_range_first(mm_pgd(mm), vma_start(v), vma_end(v)); slot != 0; slot = pte_range_next()) {
      const pte = load<u64>(slot);
      if (pte == 0) continue;
      store<u64>(slot, pte_present(pte) ? pte_wrprotect(pte_clear_soft_dirty(pte)) : pte_clear_soft_dirty(pte));
    }
    v = vma_next(v);
  }
  tlb_flush_asid(mm);
}
