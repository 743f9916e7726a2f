// fork: dup_mmap and copy_page_range (R5.5, R5.6). The child gets copies of the VMAs
// (minus DONTCOPY, WIPEONFORK ones empty, no mlock), and PTEs only where it must:
// VMAs with anonymous pages, and PFNMAP/MIXEDMAP VMAs. COW mappings are write-protected
// on both sides; pinned exclusive anonymous pages are copied at once instead.

import { PAGE_SIZE, PMD_SIZE, gHasPteSpecial, gNrFrames, gZeroPfn } from "./config";
import { _PAGE_PSE, pte_present, pte_write, pte_wrprotect, pte_mkold, pte_mkclean, pte_pfn,
  _PAGE_UFFD_WP, is_swap_pte, is_pte_marker, _PAGE_SWP_EXCLUSIVE, pfn_pte, pte_mkdirty,
  pte_mkwrite, pte_mkyoung, swp_offset, PTE_MARKER_GUARD, PTE_MARKER_POISON, _PAGE_PRESENT, _PAGE_PROTNONE,
  _PAGE_SPECIAL, _PAGE_RW, _PAGE_ACCESSED, _PAGE_DIRTY } from "./pte";
import { PG_anon, PG_anon_exclusive, PG_swapbacked, PG_pinned, page_flags, page_clear, get_page,
  page_private, page_addr } from "./page";
import { NO_PFN, pfn_to_virt, gFusedPages } from "./phys";
import { LEVEL_PMD, LEVEL_PTE, WALK_HUGE, WALK_NOMEM, pt_walk, nr_pgtables, slot_addr,
  table_index } from "./pgtable";
import { tlb_flush_asid } from "./tlb";
import { lru_add, alloc_user_page } from "./lru";
import { VM_DONTCOPY, VM_WIPEONFORK, VM_PFNMAP, VM_MIXEDMAP, VM_LOCKED_MASK, VM_UFFD_WP,
  VM_WRITE, vma_dup, vma_flags, set_vma_flags, vma_start, vma_end, vma_anon_vma,
  set_vma_anon_vma, vma_iflags, set_vma_iflags, VMA_FORK_CHILD, VMA_MAYBE_GUARD, anon_vma_alloc, vma_next, vma_file, vma_pages, vma_page_prot, is_cow_mapping } from "./vma";
import { mm_alloc, mm_family, mm_pgd, mm_first_vma, mm_add_ptes, add_mm_counter,
  mm_add_total_vm, mm_flags, MMF_HAS_PINNED, RSS_ANON, RSS_FILE, RSS_SHMEM, RSS_SWAP,
  mm_memlock_limit, set_mm_memlock_limit } from "./mm";
import { page_dup_rmap, page_is_anon, page_add_new_anon_rmap } from "./rmap";
import { vm_normal_page, NO_PAGE } from "./special";
import { file_immap_at, file_addr } from "./mapping";
import { vma_file_link } from "./vma";
import { exit_mmap } from "./mmap";
import { mm_link_vma } from "./mm";
import { swap_duplicate } from "./swap";

// R5.5 vma_needs_copy.
function vma_needs_copy(v: u32): bool {
  const f = vma_flags(v);
  if ((f & VM_UFFD_WP) != 0) return true;
  if ((f & (VM_PFNMAP | VM_MIXEDMAP)) != 0) return true;
  if ((vma_iflags(v) & VMA_MAYBE_GUARD) != 0) return true; // guard markers (VM_COPY_ON_FORK)
  return vma_anon_vma(v) != 0;
}

let copyFailed = false;

// R5.6 copy one present or swap PTE from the parent's `src` slot to the child's `dst`.
function copy_one_pte(parent: u32, child: u32, pv: u32, cv: u32, va: u64, src: usize, dst: usize): void {
  let pte = load<u64>(src);
  if (pte == 0) return;
  const cow = is_cow_mapping(vma_flags(pv));
  if (!pte_present(pte)) {
    if (is_pte_marker(pte)) {
      // copy_pte_marker (6.13+): guard and poison markers always, uffd-wp ones only into a
      // uffd-wp VMA (R5.6, R1.5).
      const m = <u32>swp_offset(pte);
      if (m == PTE_MARKER_GUARD || m == PTE_MARKER_POISON || (vma_flags(cv) & VM_UFFD_WP) != 0) store<u64>(dst, pte);
      return;
    }
    if (is_swap_pte(pte)) {
      swap_duplicate(pte);
      if ((pte & _PAGE_SWP_EXCLUSIVE) != 0) { pte &= ~_PAGE_SWP_EXCLUSIVE; store<u64>(src, pte); }
      add_mm_counter(child, RSS_SWAP, 1);
      store<u64>(dst, pte);
    }
    return;
  }
  const page = vm_normal_page(pv, va, pte);
  if (page != NO_PAGE) {
    if (page_is_anon(page)) {
      // A pinned exclusive page may be DMA'd into: the child gets its own copy now.
      if ((mm_flags(parent) & MMF_HAS_PINNED) != 0 && (page_flags(page) & PG_pinned) != 0 &&
          (page_flags(page) & PG_anon_exclusive) != 0) {
        const np = alloc_user_page();
        if (np == NO_PFN) { copyFailed = true; return; }
        memory.copy(pfn_to_virt(np), pfn_to_virt(page), PAGE_SIZE);
        let e = pte_mkyoung(pfn_pte(np, vma_page_prot(cv)));
        if ((vma_flags(cv) & VM_WRITE) != 0) e = pte_mkwrite(pte_mkdirty(e));
        add_mm_counter(child, RSS_ANON, 1);
        page_add_new_anon_rmap(np, child, cv, va);
        lru_add(np);
        store<u64>(dst, e);
        return;
      }
      get_page(page);
      page_dup_rmap(page);
      page_clear(page, PG_anon_exclusive);
      add_mm_counter(child, RSS_ANON, 1);
    } else {
      get_page(page);
      page_dup_rmap(page);
      add_mm_counter(child, (page_flags(page) & PG_swapbacked) != 0 ? RSS_SHMEM : RSS_FILE, 1);
    }
  }
  if (cow && pte_write(pte)) {
    pte = pte_wrprotect(pte);
    store<u64>(src, pte); // the parent loses write too (TLB flushed by the caller)
  }
  if (!cow) pte = pte_mkclean(pte); // a shared mapping: the child's PTE is clean
  pte = pte_mkold(pte);
  if ((vma_flags(cv) & VM_UFFD_WP) == 0) pte &= ~_PAGE_UFFD_WP;
  store<u64>(dst, pte);
}

// copy_one_pte's common case per run (issue 17, t17f): from the parent's slot `src` and
// the child's `dst` up to `srcEnd`, every none PTE skipped and every present, not special
// PTE of a normal anonymous page copied as copy_one_pte copies it (a reference, the
// mapcount, no longer exclusive, write-protected on both sides in a COW mapping, the
// child's entry `& childMask`); stops at the first other PTE. Returns the slot it stopped
// at; the pages copied are added to copyAnon.
let copyAnon: i32 = 0;
function copy_anon_run(src: usize, dst: usize, srcEnd: usize, childMask: u64, cow: bool): usize {
  const frames = gNrFrames;
  const zero = gZeroPfn;
  const wp: u64 = cow ? _PAGE_RW : 0;
  let n: i32 = 0;
  while (src < srcEnd) {
    const pte = load<u64>(src);
    if (pte != 0) {
      // Present, not special: one compare (as unmap.ts zap_run).
      if ((pte & (_PAGE_PRESENT | _PAGE_PROTNONE | _PAGE_SPECIAL)) - 1 >= _PAGE_SPECIAL - 1) break;
      const pfn = pte_pfn(pte);
      if (pfn >= frames || pfn == zero) break;
      const pg = page_addr(pfn);
      const f = load<u32>(pg);
      if ((f & PG_anon) == 0) break;
      store<i32>(pg, load<i32>(pg, 4) + 1, 4); // get_page
      store<i32>(pg, load<i32>(pg, 8) + 1, 8); // page_dup_rmap
      store<u32>(pg, f & ~PG_anon_exclusive);
      n++;
      // The parent loses write too in a COW mapping (TLB flushed by the caller).
      if ((pte & wp) != 0) store<u64>(src, pte & ~wp);
      store<u64>(dst, pte & ~wp & childMask);
    }
    src += 8;
    dst += 8;
  }
  copyAnon += n;
  return src;
}

function copy_page_range(parent: u32, child: u32, pv: u32, cv: u32): bool {
  const ppgd = mm_pgd(parent), cpgd = mm_pgd(child);
  const end = vma_end(pv);
  let va = vma_start(pv);
  // copy_one_pte's common case inline: pte_special says which pages are normal, no pinned
  // pages to copy at once (MMF_HAS_PINNED), the fused writers on (tests compare both).
  const fast = gHasPteSpecial && gFusedPages && (mm_flags(parent) & MMF_HAS_PINNED) == 0;
  const cow = is_cow_mapping(vma_flags(pv));
  // The child's PTE: old; clean in a shared mapping; uffd-wp only in a uffd-wp VMA.
  const childMask = ~(_PAGE_ACCESSED | (cow ? 0 : _PAGE_DIRTY) | ((vma_flags(cv) & VM_UFFD_WP) == 0 ? _PAGE_UFFD_WP : 0));
  while (va < end) {
    let next = (va + PMD_SIZE) & ~(PMD_SIZE - 1);
    if (next > end) next = end;
    const pmdSlot = pt_walk(ppgd, va, LEVEL_PMD, false);
    if (pmdSlot > WALK_HUGE) {
      const pmd = load<u64>(pmdSlot);
      if (pmd != 0 && (pmd & _PAGE_PSE) == 0) {
        const table = pte_pfn(pmd);
        let any = false;
        let idx = table_index(va, LEVEL_PTE);
        for (let a = va; a < next; a += 4096, idx++) if (load<u64>(slot_addr(table, idx)) != 0) { any = true; break; }
        if (any) {
          const before = nr_pgtables();
          const first = pt_walk(cpgd, va, LEVEL_PTE, true);
          mm_add_ptes(child, <i32>(nr_pgtables() - before));
          if (first == WALK_NOMEM || first <= WALK_HUGE) return false;
          const s0 = slot_addr(table, table_index(va, LEVEL_PTE));
          const sEnd = s0 + <usize>((next - va) >> 9);
          let s = s0;
          let d = first;
          copyAnon = 0; // the child's anon RSS of this table, added once (Linux: rss[])
          for (;;) {
            if (fast) {
              const stop = copy_anon_run(s, d, sEnd, childMask, cow);
              d += stop - s;
              s = stop;
            }
            if (s >= sEnd) break;
            copy_one_pte(parent, child, pv, cv, va + (<u64>(s - s0) << 9), s, d);
            if (copyFailed) {
              if (copyAnon != 0) add_mm_counter(child, RSS_ANON, copyAnon);
              return false;
            }
            s += 8;
            d += 8;
          }
          if (copyAnon != 0) add_mm_counter(child, RSS_ANON, copyAnon);
        }
      }
    }
    va = next;
  }
  return true;
}

// dup_mmap: a new address space that is a copy of `parent`. Returns its id, or 0 on
// ENOMEM (nothing is left behind).
export function dup_mm(parent: u32): u32 {
  const child = mm_alloc(mm_family(parent));
  if (child == 0) return 0;
  set_mm_memlock_limit(child, mm_memlock_limit(parent));
  copyFailed = false;
  let ok = true;
  let v = mm_first_vma(parent);
  while (v != 0 && ok) {
    const f = vma_flags(v);
    if ((f & VM_DONTCOPY) == 0) {
      const c = vma_dup(v);
      if (c == 0) { ok = false; break; }
      store<u32>(vmaMmAt(c), child);
      set_vma_flags(c, f & ~VM_LOCKED_MASK); // R5.5: locks are not inherited
      // anon_vma_fork: the child's VMA gets an anon_vma of its own, chained to the parent's
      // (so it counts as a fork child for merges); none under VM_WIPEONFORK.
      if ((f & VM_WIPEONFORK) != 0 || vma_anon_vma(v) == 0) {
        set_vma_anon_vma(c, 0);
        set_vma_iflags(c, vma_iflags(c) & ~VMA_FORK_CHILD);
      } else {
        set_vma_anon_vma(c, anon_vma_alloc());
        set_vma_iflags(c, vma_iflags(c) | VMA_FORK_CHILD);
      }
      mm_link_vma(child, c);
      const file = vma_file(c);
      if (file != 0) {
        vma_file_link(file_immap_at(file), c);
        store<u32>(file_addr(file), load<u32>(file_addr(file), 40) + 1, 40);
      }
      mm_add_total_vm(child, <i64>vma_pages(c));
      if ((f & VM_WIPEONFORK) == 0 && vma_needs_copy(v)) ok = copy_page_range(parent, child, v, c);
    }
    v = vma_next(v);
  }
  // The parent's write-protected PTEs must not stay writable in its TLB.
  tlb_flush_asid(parent);
  if (!ok) { exit_mmap(child); return 0; }
  return child;
}
import { vma_addr } from "./vma";
@inline function vmaMmAt(v: u32): usize { return vma_addr(v) + 28; }
