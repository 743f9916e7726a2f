// The invariant checker: a slow, complete recount of what the fast paths keep
// incrementally. Run after every mutating test (checkInvariants() in the host).

import { mlock_batch_refs, mlock_batch_entries, folio_mlock_count } from "./mlock_batch";
import { gNrFrames, PTRS_PER_TABLE } from "./config";
import { _PAGE_PSE, pte_present, pte_pfn, is_swap_pte, is_pte_marker, swp_type, swp_offset } from "./pte";
import { PG_buddy, PG_head, PG_lru, PG_swapbacked, PG_user, PG_tail, PG_large, FOLIO_ORDER_SHIFT,
  page_private, page_flags, page_ref,
  page_mapcount, page_mapping, page_index } from "./page";
import { slot_addr } from "./pgtable";
import { nr_pgtables } from "./pgtable";
import { lru_first, lru_size, lru_next, page_lru_list, NR_LRU_LISTS, LRU_UNEVICTABLE } from "./lru";
import { VM_LOCKED, vma_start, vma_end, vma_next, vma_flags, vma_tree_height, vma_tree_max_gap,
  vma_mm, vm_start_gap } from "./vma";
import { VM_ACCESS_FLAGS, vma_page_prot, vma_pgoff } from "./vma";
import { MAX_MM, mm_alive, mm_pgd, mm_first_vma, mm_map_count, mm_nr_ptes, mm_rss, mm_locked_vm,
  mm_total_vm, mm_root_at, find_vma, RSS_ANON, RSS_FILE, RSS_SHMEM, RSS_SWAP } from "./mm";
import { page_is_anon, rmap_count } from "./rmap";
import { vm_normal_page, NO_PAGE } from "./special";
import { pc_capacity, pc_slot_file, pc_slot_index, pc_slot_pfn, file_valid, file_nrpages,
  MAX_FILES, pc_lookup, file_nr_dirty } from "./mapping";
import { inv_report, INV_MAPCOUNT, INV_REFCOUNT, INV_RSS, INV_PGTABLES, INV_FREE_MAPPED,
  INV_PAGECACHE, INV_VMA, INV_LRU, INV_LOCKED_VM, INV_SWAP, INV_REF_LEAK, INV_DIRTY,
  INV_ANON_EXCLUSIVE, INV_MLOCK } from "./stats";
import { nr_swap_slots, swap_check } from "./swap";
import { shmem_swap_count } from "./shmem_swap";
import { PG_anon, PG_buddy as PGB, PG_swapcache, PG_pinned, PG_dirty, PG_anon_exclusive, PG_mlocked,
  PG_unevictable } from "./page";

let counts: usize = 0; // u32 per frame: PTEs seen mapping it
let swapCounts: usize = 0; // u32 per swap slot: swap entries seen referring to it
let swapCountsSlots: u32 = 0;

// A swap entry in a PTE: one more reference to its slot (checked by swap_check).
function count_swap_entry(mm: u32, va: u64, pte: u64): void {
  const slot = <u32>swp_offset(pte);
  if (swp_type(pte) != 0 || slot == 0 || slot >= swapCountsSlots) { inv_report(INV_SWAP, slot, 0xffff_fffe); return; }
  const c = swapCounts + (<usize>slot << 2);
  store<u32>(c, load<u32>(c) + 1);
}

let rss0: u32 = 0, rss1: u32 = 0, rss2: u32 = 0, rss3: u32 = 0, tables: u32 = 0;

function check_pte(mm: u32, va: u64, pte: u64): void {
  if (pte == 0) return;
  const v = find_vma(mm, va);
  if (v == 0 || va < vma_start(v)) { inv_report(INV_VMA, mm, va >> 12); return; }
  if (!pte_present(pte)) {
    if (is_swap_pte(pte) && !is_pte_marker(pte)) { rss3++; count_swap_entry(mm, va, pte); }
    return;
  }
  const page = vm_normal_page(v, va, pte);
  if (page == NO_PAGE) return;
  const f = page_flags(page);
  if ((f & PG_buddy) != 0 || page_ref(page) <= 0) { inv_report(INV_FREE_MAPPED, page, mm); return; }
  const c = counts + (<usize>page << 2);
  store<u32>(c, load<u32>(c) + 1);
  if (page_is_anon(page)) {
    rss0++;
    // PageAnonExclusive rule 1: only an exclusive anonymous page may be mapped writable.
    if ((pte & 2) != 0 && (f & PG_anon_exclusive) == 0) inv_report(INV_ANON_EXCLUSIVE, page, 1);
  } else if ((f & PG_swapbacked) != 0) rss2++;
  else rss1++;
}

function walk_level(mm: u32, table: u32, level: u32, base: u64): void {
  tables++;
  const shift: u64 = 12 + 9 * (<u64>level - 1);
  for (let i: u32 = 0; i < PTRS_PER_TABLE; i++) {
    const e = load<u64>(slot_addr(table, i));
    if (e == 0) continue;
    const va = base + (<u64>i << shift);
    if (level == 1) { check_pte(mm, va, e); continue; }
    if ((e & _PAGE_PSE) != 0) { // a PMD-mapped folio: 512 pages of file RSS, one mapcount
      const page = pte_pfn(e);
      if (page < gNrFrames) {
        const c = counts + (<usize>page << 2);
        store<u32>(c, load<u32>(c) + 1);
        if ((page_flags(page) & PG_swapbacked) != 0) rss2 += 512; else rss1 += 512;
        pmdSeen(page);
        check_huge_pmd(mm, va, e);
      }
      continue;
    }
    if (pte_pfn(e) >= gNrFrames) { inv_report(INV_PGTABLES, mm, level); continue; }
    walk_level(mm, pte_pfn(e), level - 1, va);
  }
}

function check_vmas(mm: u32): void {
  let v = mm_first_vma(mm);
  let prevEnd: u64 = 0;
  let n: u32 = 0, locked: u64 = 0, total: u64 = 0, gap: u64 = 0;
  while (v != 0 && n <= mm_map_count(mm)) {
    const s = vma_start(v), e = vma_end(v);
    const sg = vm_start_gap(v);
    if (sg >= prevEnd && sg - prevEnd > gap) gap = sg - prevEnd;
    if (s >= e || (s & 4095) != 0 || (e & 4095) != 0 || s < prevEnd || vma_mm(v) != mm) inv_report(INV_VMA, mm, v);
    if (find_vma(mm, s) != v) inv_report(INV_VMA, mm, v); // the tree finds what the list has
    const pages = (e - s) >> 12;
    total += pages;
    if ((vma_flags(v) & VM_LOCKED) != 0) locked += pages;
    prevEnd = e;
    n++;
    v = vma_next(v);
  }
  if (n != mm_map_count(mm)) inv_report(INV_VMA, mm, 0);
  if (<u64>mm_locked_vm(mm) != locked) inv_report(INV_LOCKED_VM, mm, locked);
  if (<u64>mm_total_vm(mm) != total) inv_report(INV_VMA, mm, 0xffff_fff0);
  // An AVL tree of n nodes is at most 1.45 log2(n + 2) high.
  const h = vma_tree_height(load<u32>(mm_root_at(mm)));
  if (n > 0 && <f64>h > 1.45 * Math.log2(<f64>n + 2) + 1) inv_report(INV_VMA, mm, 0xffff_ffff);
  // The tree's gap bookkeeping (mmap placement) agrees with the list.
  if (vma_tree_max_gap(load<u32>(mm_root_at(mm))) != gap) inv_report(INV_VMA, mm, 0xffff_ffe0);
}

export function mm_check(): void {
  if (counts == 0) counts = heap.alloc(<usize>gNrFrames << 2);
  memory.fill(counts, 0, <usize>gNrFrames << 2);
  if (swapCountsSlots != nr_swap_slots()) { // sized once (swap is set up at boot)
    swapCountsSlots = nr_swap_slots();
    swapCounts = swapCountsSlots == 0 ? 0 : heap.alloc(<usize>swapCountsSlots << 2);
  }
  if (swapCountsSlots != 0) memory.fill(swapCounts, 0, <usize>swapCountsSlots << 2);
  let allTables: u32 = 0;
  for (let mm: u32 = 1; mm < MAX_MM; mm++) {
    if (!mm_alive(mm)) continue;
    rss0 = 0; rss1 = 0; rss2 = 0; rss3 = 0; tables = 0;
    check_vmas(mm);
    walk_level(mm, mm_pgd(mm), 4, 0);
    if (rss0 != mm_rss(mm, RSS_ANON)) inv_report(INV_RSS, mm, RSS_ANON);
    if (rss1 != mm_rss(mm, RSS_FILE)) inv_report(INV_RSS, mm, RSS_FILE);
    if (rss2 != mm_rss(mm, RSS_SHMEM)) inv_report(INV_RSS, mm, RSS_SHMEM);
    if (rss3 != mm_rss(mm, RSS_SWAP)) inv_report(INV_RSS, mm, RSS_SWAP);
    if (tables != mm_nr_ptes(mm)) inv_report(INV_PGTABLES, mm, tables);
    allTables += tables;
  }
  if (allTables != nr_pgtables()) inv_report(INV_PGTABLES, 0, allTables);
  // Mapcounts equal the PTEs found; references cover the mappings.
  for (let pfn: u32 = 0; pfn < gNrFrames; pfn++) {
    const f = page_flags(pfn);
    if ((f & (PG_user | PG_tail)) == 0 && (f & PG_head) == 0) continue;
    const seen = <i32>load<u32>(counts + (<usize>pfn << 2));
    if ((f & PG_user) == 0) continue;
    if (page_mapcount(pfn) != seen) inv_report(INV_MAPCOUNT, pfn, <u32>seen);
    if (page_ref(pfn) < page_mapcount(pfn)) inv_report(INV_REFCOUNT, pfn, <u32>page_ref(pfn));
    // The reverse map (what reclaim and migration rely on) finds exactly those PTEs.
    if (seen > 0 && page_is_anon(pfn)) {
      const found = rmap_count(pfn);
      if (<i32>found != seen) inv_report(INV_MAPCOUNT, pfn, found);
    }
    if ((f & (PG_anon | PG_tail | PG_large)) == PG_anon) {
      // Rule 2: an exclusive page is mapped at most once (small pages).
      if ((f & PG_anon_exclusive) != 0 && seen > 1) inv_report(INV_ANON_EXCLUSIVE, pfn, 2);
      // Rule 3 (R8.5, R5.6): a pinned anonymous page that is mapped is exclusive: GUP
      // unshares before a read-only pin, breaks COW before a write pin, and fork copies
      // a pinned page instead of sharing it. Else a later COW leaves the pin behind.
      let owned = seen;
      if ((f & PG_swapcache) != 0) owned++;
      owned += mlock_batch_refs(pfn);
      if ((f & PG_pinned) != 0 && seen > 0 && page_ref(pfn) > owned && (f & PG_anon_exclusive) == 0) {
        inv_report(INV_ANON_EXCLUSIVE, pfn, 3);
      }
    }
    // Nothing is lost or leaked: between calls, a small page's references are exactly its
    // mappings, the page cache's and the swap cache's (pins and large folios aside).
    if ((f & (PG_tail | PG_large | PG_pinned)) == 0) {
      let want = page_mapcount(pfn);
      if ((f & PG_swapcache) != 0) want++;
      if ((f & PG_anon) == 0 && page_mapping(pfn) != 0) want++;
      want += mlock_batch_refs(pfn); // the mlock batch's own (R8.6)
      if (page_ref(pfn) != want) inv_report(INV_REF_LEAK, pfn, <u32>page_ref(pfn));
    }
  }
  // Swap: every slot's count equals the swap entries found above (swap.ts).
  if (swapCountsSlots != 0) {
    shmem_swap_count(swapCounts); // shmem objects' swap entries refer to slots too
    swap_check(swapCounts);
  }
}

// The page cache: every entry names a live user frame that names it back; per-file counts.
export function pagecache_check(): void {
  const cap = pc_capacity();
  for (let i: u32 = 0; i < cap; i++) {
    const f = pc_slot_file(i);
    if (f == 0) continue;
    const idx = pc_slot_index(i), pfn = pc_slot_pfn(i);
    if (!file_valid(f) || pfn >= gNrFrames || (page_flags(pfn) & PG_user) == 0 || page_ref(pfn) < 1 ||
        page_mapping(pfn) != f || page_index(pfn) != idx) {
      inv_report(INV_PAGECACHE, f, idx);
    }
  }
  let total: u32 = 0;
  for (let f: u32 = 1; f < MAX_FILES; f++) if (file_valid(f)) total += file_nrpages(f);
  let slots: u32 = 0;
  for (let i: u32 = 0; i < cap; i++) if (pc_slot_file(i) != 0) slots++;
  if (slots != total) inv_report(INV_PAGECACHE, 0, slots);
  // The other way round: every frame that names a file is the cache's entry there.
  for (let pfn: u32 = 0; pfn < gNrFrames; pfn++) {
    const fl = page_flags(pfn);
    if ((fl & PG_user) == 0 || (fl & (PG_anon | PGB)) != 0) continue;
    const m = page_mapping(pfn);
    if (m == 0) continue;
    if (!file_valid(m) || pc_lookup(m, page_index(pfn)) != pfn) inv_report(INV_PAGECACHE, m, page_index(pfn));
  }
  // Each file's dirty count is its dirty cached pages (what fsync and reclaim rely on).
  if (dirtyCounts == 0) dirtyCounts = heap.alloc(<usize>MAX_FILES << 2);
  memory.fill(dirtyCounts, 0, <usize>MAX_FILES << 2);
  for (let i: u32 = 0; i < cap; i++) {
    const f = pc_slot_file(i);
    if (f == 0 || f >= MAX_FILES || (page_flags(pc_slot_pfn(i)) & PG_dirty) == 0) continue;
    const c = dirtyCounts + (<usize>f << 2);
    store<u32>(c, load<u32>(c) + 1);
  }
  for (let f: u32 = 1; f < MAX_FILES; f++) {
    if (file_valid(f) && file_nr_dirty(f) != load<u32>(dirtyCounts + (<usize>f << 2))) inv_report(INV_DIRTY, f, file_nr_dirty(f));
  }
}
let dirtyCounts: usize = 0; // u32 per file id: dirty cached pages counted

// The LRU lists hold exactly the pages whose flags say so; the unevictable one is a count
// (lru.ts), checked with INV_MLOCK against the frames.
export function lru_check(): void {
  for (let l: u32 = 0; l < NR_LRU_LISTS; l++) {
    if (l == LRU_UNEVICTABLE) { mlock_check(); continue; }
    let it = lru_first(l);
    let n: u32 = 0;
    while (it != 0 && n <= gNrFrames) {
      const pfn = it - 1;
      if ((page_flags(pfn) & PG_lru) == 0 || page_lru_list(pfn) != l) { inv_report(INV_LRU, pfn, l); break; }
      n++;
      it = lru_next(pfn);
    }
    if (n != lru_size(l)) inv_report(INV_LRU, 0xffff_ffff, l);
  }
}

// INV_MLOCK (R8.6, FUZZ-FINDINGS run L item 1): the unevictable count is the frames with
// PG_lru | PG_unevictable; a small folio is PG_mlocked exactly when it is unevictable, and
// then its mlock_count is at least 1 and at most its mappings plus the munlock entries
// still queued for it (the count may undercount locked mappings, never overcount them).
function mlock_check(): void {
  let n: u32 = 0;
  for (let pfn: u32 = 0; pfn < gNrFrames; pfn++) {
    const f = page_flags(pfn);
    if ((f & PG_user) == 0 || (f & (PG_buddy | PG_tail)) != 0) continue;
    if ((f & (PG_lru | PG_unevictable)) == (PG_lru | PG_unevictable)) n++;
    if ((f & PG_large) != 0) continue;
    const ml = (f & PG_mlocked) != 0, unev = (f & PG_unevictable) != 0;
    // mlock_folio sets PG_mlocked at once and queues the rest: until the batch drains, a
    // queued mlock entry explains a PG_mlocked page that is not on the unevictable list yet.
    if (ml != unev && !(ml && mlock_batch_entries(pfn, true) != 0)) { inv_report(INV_MLOCK, pfn, 1); continue; }
    if (!unev) continue;
    const c = folio_mlock_count(pfn);
    if (c == 0) inv_report(INV_MLOCK, pfn, 2);
    else if (<i32>c > page_mapcount(pfn) + mlock_batch_entries(pfn, false)) inv_report(INV_MLOCK, pfn, 3);
  }
  if (n != lru_size(LRU_UNEVICTABLE)) inv_report(INV_LRU, 0xffff_ffff, LRU_UNEVICTABLE);
}

// ---- large folios (lru.ts): PMD mappings seen per head, and each folio's shape ----
let pmdCounts: usize = 0; // u32 per frame: PMD entries seen mapping it (heads only)
let pmdCountsFresh = false;
function pmdSeen(head: u32): void {
  if (!pmdCountsFresh) {
    if (pmdCounts == 0) pmdCounts = heap.alloc(<usize>gNrFrames << 2);
    memory.fill(pmdCounts, 0, <usize>gNrFrames << 2);
    pmdCountsFresh = true;
  }
  const c = pmdCounts + (<usize>head << 2);
  store<u32>(c, load<u32>(c) + 1);
}

// A PMD mapping lies inside one VMA that allows reading, with that VMA's user/NX bits,
// never writable (install.ts), and maps a PMD-sized folio at its file offset.
function check_huge_pmd(mm: u32, va: u64, pmd: u64): void {
  const v = find_vma(mm, va);
  const head = pte_pfn(pmd);
  if (v == 0 || vma_start(v) > va || vma_end(v) < va + 0x20_0000 ||
      (vma_flags(v) & VM_ACCESS_FLAGS) == 0 || (pmd & 2) != 0 ||
      (pmd & (<u64>1 << 63)) != (vma_page_prot(v) & (<u64>1 << 63)) ||
      (page_flags(head) & PG_large) == 0 || (page_flags(head) >>> FOLIO_ORDER_SHIFT) != 9 ||
      <u64>page_index(head) != vma_pgoff(v) + ((va - vma_start(v)) >> 12)) {
    inv_report(INV_VMA, mm, va >> 12);
  }
}

// After mm_check: every large folio's head says PMD-sized order, its tails name it and
// are not on a list, its entire mapcount equals the PMDs found, and a folio nobody holds
// is not left allocated.
export function folio_check(): void {
  let pfn: u32 = 0;
  while (pfn < gNrFrames) {
    const f = page_flags(pfn);
    if ((f & PG_head) == 0 || (f & PG_user) == 0 || (f & PG_large) == 0) { pfn++; continue; }
    const n: u32 = 1 << (f >>> FOLIO_ORDER_SHIFT);
    const pmds: u32 = pmdCountsFresh ? load<u32>(pmdCounts + (<usize>pfn << 2)) : 0;
    if (<i32>page_private(pfn) != <i32>pmds) inv_report(INV_MAPCOUNT, pfn, pmds);
    let refs: i32 = page_ref(pfn);
    for (let i: u32 = 1; i < n; i++) {
      const t = pfn + i;
      const tf = page_flags(t);
      if ((tf & (PG_tail | PG_user)) != (PG_tail | PG_user) || (tf & (PG_head | PG_lru | PG_buddy)) != 0 ||
          page_private(t) != pfn) inv_report(INV_PAGECACHE, 0xffff_fff0, t);
      refs += page_ref(t);
    }
    if (refs <= 0) inv_report(INV_REFCOUNT, pfn, 0);
    pfn += n;
  }
  pmdCountsFresh = false;
}
