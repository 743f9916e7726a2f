// The page cache's policy: filemap_fault (with read-around, R2.9), the generic
// filemap_map_pages of fault-around (R2.4, R2.5), shmem's fault, write-back, msync and
// truncation (R10). Reading or writing a page is the only thing that calls the host.

import { PAGE_SIZE, PAGE_SHIFT, PMD_SIZE, HPAGE_PMD_ORDER, EINVAL, EEXIST, ENOMEM, EIO, EAGAIN, gRaPages, gExecReadForward,
  gTruncateCachesTail, gLargeFolioRa, gRaEofNoMark, gExecFolioOrder, gUserRetryTried, gFaultAroundIsize,
  gTruncExtendZeroesTail } from "./config";
import { pte_present, pte_pfn, pte_dirty, pte_mkclean, pte_wrprotect, pte_write } from "./pte";
import { PG_uptodate, PG_locked, PG_readahead, PG_dirty, PG_hwpoison, PG_workingset,
  PG_swapbacked, PG_writeback, PG_referenced, PG_tail, PG_large, PG_private, page_flags, page_set, page_clear,
  set_page_mapping, get_page, page_mapcount, page_mapping,
  page_index, page_private, set_page_ref, page_addr } from "./page";
import { NO_PFN, pfn_to_virt } from "./phys";
import { slot_addr, table_index, LEVEL_PTE } from "./pgtable";
import { tlb_flush_page } from "./tlb";
import { lru_add, alloc_user_page, alloc_user_pages, put_page, folio_head, folio_nr_pages,
  folio_test_large } from "./lru";
import { VM_RAND_READ, VM_SEQ_READ, VM_EXEC, VM_HUGEPAGE, vma_flags, vma_file, vma_start, vma_end, vma_pgoff, vma_pages } from "./vma";
import { file_size, file_flags, file_pages, pc_lookup, pc_add_page, pc_delete, file_mmap_miss,
  set_file_mmap_miss, file_add_dirty, AS_SHMEM, set_file_size, file_nrpages, file_ra_start, file_ra_size,
  file_ra_async, set_file_ra, file_prev_pos1, set_file_prev_pos1, file_ra_order, set_file_ra_order, AS_HAS_READ_PAGES, pc_gather, pc_gathered, PC_BATCH,
  pc_group_home, pc_lookup_home } from "./mapping";
import { rmap_walk_start, rmap_walk_next, rmapMm } from "./rmap";
import { unmap_mapping_range } from "./unmap";
import { set_prefault_pte, do_set_pmd, prefault_begin, prefault_small, prefault_end, prefault_base, prefault_dirty_ok,
  prefault_add } from "./install";
import { pte_mkyoung, pte_mkdirty } from "./pte";
import { pte_lock, pte_unlock, pte_alloc_vmf } from "./pte_alloc";
import { vmf_pmd, vmf_address, set_vmf_page, VM_FAULT_SIGBUS, VM_FAULT_MAJOR, VM_FAULT_OOM,
  VM_FAULT_LOCKED, VM_FAULT_RETRY, vmf_flags, FAULT_FLAG_ALLOW_RETRY, FAULT_FLAG_TRIED, FAULT_FLAG_USER } from "./vmfault";
import { host_read_page, host_read_pages, host_write_page } from "./host";
import { shmem_swap_slot, shmem_swapin, shmemSwapinMajor, shmemSwapinIoError, shmem_free_swap } from "./shmem_swap";
import { count, count_n, ST_PGMAJFAULT, ST_PAGECACHE_READ, ST_WRITEBACK, ST_FAULT_AROUND } from "./stats";
import { lru_add_drain } from "./mlock_batch";

const MMAP_LOTSAMISS: u32 = 100;

// ---- adding pages ----

// Read page `index` of `file` into a new frame and cache it. Returns the frame (with the
// cache's reference only) or NO_PFN: out of memory, or the backend failed (AS_IO_ERROR set
// on the file and the failed read leaves nothing cached).
export let gReadFailed: bool = false; // the last add_to_page_cache failed in the backend
export let gReadRetry: bool = false; // a backend said -EAGAIN: the data must be waited for
const EAGAIN_READ: i32 = -11;

export function add_to_page_cache(file: u32, index: u64): u32 {
  return add_page(file, index, (file_flags(file) & AS_SHMEM) == 0);
}

// A page for `index`, read from the backend if `read`, else zero-filled (shmem, or a
// backend's own fault that fills it next).
export function add_page(file: u32, index: u64, read: bool): u32 {
  gReadFailed = false;
  gReadRetry = false;
  const pfn = alloc_user_page();
  if (pfn == NO_PFN) return NO_PFN;
  const dst = pfn_to_virt(pfn);
  const shmem = (file_flags(file) & AS_SHMEM) != 0;
  if (!read) {
    memory.fill(dst, 0, PAGE_SIZE);
  } else {
    const n = host_read_page(file, <f64>index, dst);
    if (n < 0 || n > <i32>PAGE_SIZE) {
      // -EAGAIN: an asynchronous backend has not got the bytes yet; it now knows they
      // are wanted. Anything else is an I/O error (SIGBUS).
      if (n == EAGAIN_READ) gReadRetry = true; else gReadFailed = true;
      put_page(pfn);
      return NO_PFN;
    }
    if (n < <i32>PAGE_SIZE) memory.fill(dst + <usize>n, 0, PAGE_SIZE - <u32>n);
    count(ST_PAGECACHE_READ);
  }
  page_set(pfn, PG_uptodate | (shmem ? PG_swapbacked : 0));
  pc_add_page(file, index, pfn);
  lru_add(pfn);
  return pfn;
}

// A large folio of 2^order pages for the naturally aligned block at `first`, read whole
// from the backend (zero-filled for shmem) into one allocation. Every subpage gets its own
// struct page state (uptodate, mapping, index) and its own page-cache entry and reference
// (lru.ts: how large folios are counted and freed). Returns 0 or -errno: EINVAL (order
// above PMD order, block not aligned or not wholly inside i_size), EEXIST (a page of the
// block is cached already), ENOMEM, EIO / EAGAIN from the backend (nothing is cached then).
export function add_folio(file: u32, first: u64, order: u32): i32 {
  if (order > HPAGE_PMD_ORDER) return -EINVAL;
  const n: u32 = 1 << order;
  if ((first & (<u64>n - 1)) != 0 || first + n > file_pages(file)) return -EINVAL;
  for (let i: u32 = 0; i < n; i++) if (pc_lookup(file, first + i) != NO_PFN) return -EEXIST;
  if (order == 0) {
    add_to_page_cache(file, first);
    return gReadRetry ? -EAGAIN : gReadFailed ? -EIO : pc_lookup(file, first) == NO_PFN ? -ENOMEM : 0;
  }
  const head = alloc_user_pages(order);
  if (head == NO_PFN) return -ENOMEM;
  const shmem = (file_flags(file) & AS_SHMEM) != 0;
  // A backend with readPages reads the folio in a few calls (issue 17); what it could not
  // read is read page by page below, so a failure keeps its per-page meaning.
  const batched = !shmem && (file_flags(file) & AS_HAS_READ_PAGES) != 0 ? read_folio_batched(file, first, head, n) : 0;
  for (let i: u32 = batched; i < n; i++) {
    const dst = pfn_to_virt(head + i);
    if (shmem) { memory.fill(dst, 0, PAGE_SIZE); continue; }
    const r = host_read_page(file, <f64>(first + i), dst);
    if (r < 0 || r > <i32>PAGE_SIZE) {
      put_page(head); // tails hold no reference yet: the folio goes back whole
      return r == EAGAIN_READ ? -EAGAIN : -EIO;
    }
    if (r < <i32>PAGE_SIZE) memory.fill(dst + <usize>r, 0, PAGE_SIZE - <u32>r);
    count(ST_PAGECACHE_READ);
  }
  for (let i: u32 = 0; i < n; i++) {
    const sub = head + i;
    page_set(sub, PG_uptodate | (shmem ? PG_swapbacked : 0));
    set_page_ref(sub, 1); // the page cache's reference on this subpage
    pc_add_page(file, first + i, sub);
  }
  lru_add(head);
  return 0;
}

// A backend with readPages (AS_HAS_READ_PAGES) gets each run of absent pages of a
// read-around window in one call, up to RA_BATCH pages (issue 17: a NodeFile window is one
// pread, not one per page).
const RA_BATCH: u32 = 64;
const raPfns: usize = memory.data(RA_BATCH * 4);
const raDsts: usize = memory.data(RA_BATCH * 4);

// Read the absent run [first, first + n) (n <= RA_BATCH, below EOF) into fresh frames with
// one host call and cache it as add_page would, page by page in order. Returns the pages
// cached: fewer than n when memory ran out; 0 when the read failed (then nothing is
// cached and the caller reads page by page, so an error keeps its per-page meaning).
function add_pages_batch(file: u32, first: u64, n: u32, mark: u64): u32 {
  gReadFailed = false;
  let got: u32 = 0;
  for (; got < n; got++) {
    const pfn = alloc_user_page();
    if (pfn == NO_PFN) break;
    store<u32>(raPfns + (<usize>got << 2), pfn);
    store<u32>(raDsts + (<usize>got << 2), <u32>pfn_to_virt(pfn));
  }
  if (got == 0) return 0;
  const r = host_read_pages(file, <f64>first, got, raDsts);
  if (r < 0 || <u32>r > got * PAGE_SIZE) {
    for (let i: u32 = 0; i < got; i++) put_page(load<u32>(raPfns + (<usize>i << 2)));
    return 0;
  }
  for (let i: u32 = 0; i < got; i++) {
    const pfn = load<u32>(raPfns + (<usize>i << 2));
    const off = i * PAGE_SIZE;
    const have = <u32>r > off ? <u32>r - off : 0;
    if (have < PAGE_SIZE) memory.fill(pfn_to_virt(pfn) + <usize>have, 0, PAGE_SIZE - have);
    count(ST_PAGECACHE_READ);
    page_set(pfn, PG_uptodate);
    pc_add_page(file, first + i, pfn);
    lru_add(pfn);
    if (first + i == mark) page_set(pfn, PG_readahead);
  }
  return got;
}

// The pages [first, first + n) of a folio whose frames start at `head`, read with one
// host call per RA_BATCH pages; returns how many pages were read (stops at a failed call).
function read_folio_batched(file: u32, first: u64, head: u32, n: u32): u32 {
  let done: u32 = 0;
  while (done < n) {
    const k = n - done < RA_BATCH ? n - done : RA_BATCH;
    for (let i: u32 = 0; i < k; i++) store<u32>(raDsts + (<usize>i << 2), <u32>pfn_to_virt(head + done + i));
    const r = host_read_pages(file, <f64>(first + done), k, raDsts);
    if (r < 0 || <u32>r > k * PAGE_SIZE) return done;
    for (let i: u32 = 0; i < k; i++) {
      const off = i * PAGE_SIZE;
      const have = <u32>r > off ? <u32>r - off : 0;
      if (have < PAGE_SIZE) memory.fill(pfn_to_virt(head + done + i) + <usize>have, 0, PAGE_SIZE - have);
      count(ST_PAGECACHE_READ);
    }
    done += k;
  }
  return done;
}

// Read [start, start+n) into the cache where absent, marking `mark` with PG_readahead.
// An asynchronous backend is asked for the whole window (it may fetch it in one request):
// pages it must wait for are skipped, and gReadRetry stays set for the caller.
export function page_cache_ra(file: u32, start: u64, n: u32, mark: u64): void {
  const end = file_pages(file);
  let retry = false;
  const batch = (file_flags(file) & AS_HAS_READ_PAGES) != 0;
  for (let i: u64 = start; i < start + n && i < end; i++) {
    if (pc_lookup(file, i) != NO_PFN) continue;
    if (batch) {
      let k: u32 = 1;
      while (k < RA_BATCH && i + k < start + n && i + k < end &&
             pc_lookup(file, i + k) == NO_PFN) k++;
      const got = add_pages_batch(file, i, k, mark);
      if (got == k) { i += k - 1; continue; }
      if (got > 0) break; // out of memory part-way, as below
    }
    const pfn = add_to_page_cache(file, i);
    if (gReadRetry) { retry = true; continue; }
    if (pfn == NO_PFN) break;
    if (i == mark) page_set(pfn, PG_readahead);
  }
  gReadRetry = retry;
}

// ---- the readahead state machine (R2.9; mm/readahead.c) ----

const NO_MARK: u64 = 0xffff_ffff_ffff_ffff;

// Submit window [start, start+size) with its last `async` pages asynchronous: the window is
// cut at EOF first, then the first async page gets PG_readahead (do_page_cache_ra: a cut
// window whose async part does not fit has no marker). The window is the file's ra state.
function ra_submit(file: u32, start: u64, size: u32, asyncSize: u32, order: u32): void {
  set_file_ra(file, start, size, asyncSize);
  set_file_ra_order(file, 0);
  const end = file_pages(file);
  if (start >= end) return;
  // 7.x: a window that reaches EOF gets no marker, nothing is left to read ahead (gRaEofNoMark).
  if (gRaEofNoMark && start + size >= end) asyncSize = 0;
  if (!gLargeFolioRa) { do_page_cache_ra(file, start, size, asyncSize); return; }
  // page_cache_ra_order: folios of up to `order` (at most log2 of the window), aligned,
  // never past EOF; the marker goes on the folio holding start + size - async, uncut.
  const limit = end - 1 < start + size - 1 ? end - 1 : start + size - 1;
  const mark = start + size - asyncSize;
  let newOrder = order;
  const lg = <u32>(31 - clz(size));
  if (newOrder > lg) newOrder = lg;
  if (newOrder > HPAGE_PMD_ORDER) newOrder = HPAGE_PMD_ORDER;
  set_file_ra_order(file, newOrder);
  // As page_cache_ra: pages an asynchronous backend must wait for are skipped (gReadRetry),
  // a failed read stops the window (gReadFailed), nothing is read twice.
  gReadFailed = false;
  let retry = false;
  let index = start;
  while (index <= limit) {
    let o = newOrder;
    if ((index & ((<u64>1 << o) - 1)) != 0) o = <u32>ctz(index);
    while (o > 0 && index + (<u64>1 << o) - 1 > limit) o--;
    let added = true;
    if (o == 0 && newOrder == 0 && (file_flags(file) & AS_HAS_READ_PAGES) != 0) {
      // An order-0 window through a backend with readPages: the run of absent pages in one
      // batch (page_cache_ra), with the same marker, retry and failure rules as below.
      if (cached_at(file, index)) break;
      let k: u64 = 1;
      while (index + k <= limit && !cached_at(file, index + k)) k++;
      page_cache_ra(file, index, <u32>k, mark >= index && mark < index + k ? mark : NO_MARK);
      const waits = gReadRetry;
      if (gReadFailed || (!waits && !cached_at(file, index + k - 1))) { gReadRetry = retry || waits; return; }
      retry = retry || waits;
      index += k;
      continue;
    }
    if (o == 0) {
      if (cached_at(file, index)) break;
      if (add_to_page_cache(file, index) == NO_PFN) {
        if (!gReadRetry) { gReadRetry = retry; return; }
        retry = true;
        added = false;
      }
    } else {
      const r = add_folio(file, index, o);
      if (r == -EEXIST) break;
      if (r == -EAGAIN) { retry = true; added = false; }
      else if (r < 0) { gReadFailed = r == -EIO; gReadRetry = retry; return; }
    }
    if (added && mark - index < (<u64>1 << o)) page_set(pc_lookup(file, index), PG_readahead);
    index += <u64>1 << o;
  }
  // A page was cached already: the rest of the window as order-0 pages.
  if (index <= limit && <u64>size > index - start) {
    do_page_cache_ra(file, index, <u32>(<u64>size - (index - start)), asyncSize);
    retry = retry || gReadRetry;
  }
  gReadRetry = retry;
}

// do_page_cache_ra: order-0 pages of [start, start+size), cut at EOF first; then the page
// `async` from the cut end gets PG_readahead (none if the async part does not fit).
function do_page_cache_ra(file: u32, start: u64, size: u32, asyncSize: u32): void {
  const end = file_pages(file);
  if (start >= end) return;
  const nr = end - start < <u64>size ? <u32>(end - start) : size;
  page_cache_ra(file, start, nr, asyncSize <= nr ? start + nr - asyncSize : NO_MARK);
}

// get_init_ra_size: the first window of a stream, from the request size.
function init_ra_size(req: u32, max: u32): u32 {
  const pow: u32 = req <= 1 ? 1 : (<u32>1) << (32 - clz<u32>(req - 1));
  if (pow <= max / 32) return pow * 4;
  if (pow <= max / 4) return pow * 2;
  return max;
}

// get_next_ra_size: ramp up the window.
function next_ra_size(cur: u32, max: u32): u32 {
  if (cur < max / 16) return cur * 4;
  if (cur <= max / 2) return cur * 2;
  return max;
}

@inline function cached_at(file: u32, i: u64): bool { return pc_lookup(file, i) != NO_PFN; }

// page_cache_sync_ra: a miss of read(2) at `index` for `req` pages. The start of the file or
// a sequential miss opens a new stream; otherwise the cached run before it decides between
// a plain read of the request and a window as long as that run (context readahead).
function page_cache_sync_ra(file: u32, index: u64, req: u32): void {
  const max = gRaPages > req ? gRaPages : req;
  const prev1 = file_prev_pos1(file);
  const prevIndex: u64 = prev1 == 0 ? 0x000f_ffff_ffff_ffff : (prev1 - 1) >> 12;
  if (index == 0 || req > max || index - prevIndex <= 1) {
    const size = init_ra_size(req, max);
    ra_submit(file, index, size, size > req ? size - req : size >> 1, 0);
    return;
  }
  // page_cache_prev_miss over at most `max` pages below index; -1: cached down to page 0.
  let miss: i64 = <i64>index - 1;
  for (let n: u32 = 0; n < max; n++) {
    if (!cached_at(file, <u64>miss)) break;
    if (miss == 0) { miss = -1; break; }
    miss--;
  }
  let contig = <u64>(<i64>index - miss - 1);
  if (contig <= <u64>req) {
    page_cache_ra(file, index, req, NO_MARK); // a standalone small read: the state stays
    return;
  }
  if (miss == -1) contig *= 2;
  const size = contig + req < <u64>max ? <u32>(contig + req) : max;
  ra_submit(file, index, size, 1, 0);
}

// page_cache_async_ra: the marked folio holding `pfn` was reached at `index`. At the
// expected place the stream's next window follows the last one, marked on its first folio,
// with folios two orders larger; elsewhere the window starts at the next missing page (the
// cached run ahead ramps it up). Clears the marker.
function page_cache_async_ra(file: u32, pfn: u32, index: u64, req: u32): void {
  const head = folio_head(pfn);
  page_clear(head, PG_readahead);
  const max = gRaPages > req ? gRaPages : req;
  const rs = file_ra_start(file), size = file_ra_size(file);
  const order = file_ra_order(file) + 2;
  const expected = (rs + size - file_ra_async(file)) & ~(<u64>folio_nr_pages(head) - 1);
  if (index == expected) {
    // No window yet (size 0: a marker MADV_PAGEOUT's PG_reclaim left at ra start): the
    // ramp-up of an empty window is empty, nothing is read.
    if (size == 0) return;
    const next = next_ra_size(size, max);
    const n = next > size ? next : size;
    ra_submit(file, rs + size, n, n, order);
    return;
  }
  let start = index + 1;
  while (start - index <= <u64>max && cached_at(file, start)) start++;
  if (start - index > <u64>max) return;
  const n = next_ra_size(<u32>(start - index) + req, max);
  ra_submit(file, start, n, n, order);
}

// ---- filemap_fault ----

// The fault method of page-cache files and shmem: find (or read) the page for the fault's
// pgoff and hand it to the caller with one reference in vmf.page. SIGBUS beyond EOF
// (R10.1) or on a read error; MAJOR when the page had to be read (R11.6).
export function filemap_fault(vma: u32, pgoff: u64): u32 {
  const file = vma_file(vma);
  if (pgoff >= file_pages(file)) return VM_FAULT_SIGBUS;
  const index = pgoff;
  let ret: u32 = 0;
  let pfn = pc_lookup(file, index);
  let held = false;
  const shmem = (file_flags(file) & AS_SHMEM) != 0;
  if (pfn == NO_PFN) {
    if (shmem && shmem_swap_slot(file, index) != 0) {
      // shmem_swapin_folio (R11.6): written to swap by reclaim; minor while the swap
      // cache still holds it, else read from the device (major).
      pfn = shmem_swapin(file, index);
      if (pfn == NO_PFN) return shmemSwapinIoError ? VM_FAULT_SIGBUS : VM_FAULT_OOM;
      if (shmemSwapinMajor) { ret |= VM_FAULT_MAJOR; count(ST_PGMAJFAULT); }
    } else if (shmem) {
      pfn = add_to_page_cache(file, index); // a hole: a zeroed page, minor
      if (pfn == NO_PFN) return VM_FAULT_OOM;
    } else {
      // R2.9: a miss (do_sync_mmap_readahead). MADV_RANDOM: no read-around and no
      // mmap_miss bookkeeping; MADV_SEQUENTIAL: plain readahead from the page; else
      // read-around, unless more than MMAP_LOTSAMISS misses went unpaid.
      // 6.16+ (gExecReadForward): MADV_RANDOM does not stop a VM_EXEC VMA's forward read.
      const vf = vma_flags(vma);
      if ((vf & VM_HUGEPAGE) != 0) {
        // MADV_HUGEPAGE (CONFIG_TRANSPARENT_HUGEPAGE): readahead of the 2 MiB-aligned block in
        // PMD-order folios (order 0 without large folios), twice that unless MADV_RANDOM,
        // even with readahead off; no read-around, no mmap_miss.
        const n: u32 = 1 << HPAGE_PMD_ORDER;
        ra_submit(file, pgoff & ~(<u64>n - 1), (vf & VM_RAND_READ) != 0 ? n : 2 * n, n, HPAGE_PMD_ORDER);
      } else if ((vf & VM_RAND_READ) != 0 && ((vf & VM_EXEC) == 0 || !gExecReadForward)) {
        page_cache_ra(file, pgoff, 1, 0xffff_ffff_ffff_ffff);
      } else if ((vf & VM_SEQ_READ) != 0) {
        page_cache_ra(file, pgoff, gRaPages, pgoff + gRaPages - gRaPages / 4);
      } else {
        let miss = file_mmap_miss(file);
        if (miss < MMAP_LOTSAMISS * 10) set_file_mmap_miss(file, ++miss);
        if (miss > MMAP_LOTSAMISS) {
          page_cache_ra(file, pgoff, 1, 0xffff_ffff_ffff_ffff);
        } else if ((vf & VM_EXEC) != 0 && gExecReadForward) {
          // 6.16+ VM_EXEC: forward from the page, clipped to the VMA, async part 0 (no marker).
          const vmaStart = vma_pgoff(vma);
          const vmaEnd = vmaStart + vma_pages(vma);
          if (gExecFolioOrder == 0) {
            const n = vmaEnd - pgoff < <u64>gRaPages ? <u32>(vmaEnd - pgoff) : gRaPages;
            page_cache_ra(file, pgoff, n, 0xffff_ffff_ffff_ffff);
          } else {
            // exec_folio_order (arm64: 64 KiB): from the aligned block of the page (not below
            // the VMA), ra_pages rounded up to whole blocks, clipped to the VMA; folios of
            // that order where they fit.
            const blk = <u64>1 << gExecFolioOrder;
            let start = pgoff & ~(blk - 1);
            if (start < vmaStart) start = vmaStart;
            let raEnd = (start + gRaPages + blk - 1) & ~(blk - 1);
            if (raEnd > vmaEnd) raEnd = vmaEnd;
            ra_submit(file, start, <u32>(raEnd - start), 0, gExecFolioOrder);
          }
        } else {
          const start = pgoff > gRaPages / 2 ? pgoff - gRaPages / 2 : 0;
          ra_submit(file, start, gRaPages, gRaPages / 4, 0);
        }
      }
      if (gReadRetry) return VM_FAULT_RETRY; // R1.1 step 4: nothing mapped, nothing counted
      pfn = pc_lookup(file, index);
      if (pfn == NO_PFN) {
        // The read-around may have stopped early: read the page itself.
        if (!gReadFailed) pfn = add_to_page_cache(file, index);
        if (gReadRetry) return VM_FAULT_RETRY;
        if (pfn == NO_PFN) return gReadFailed ? VM_FAULT_SIGBUS : VM_FAULT_OOM;
      }
      ret |= VM_FAULT_MAJOR;
      count(ST_PGMAJFAULT);
      // R1.1 step 4, R11.6: on the first attempt of a fault that may retry, Linux drops the
      // mmap lock for this I/O (maybe_unlock_mmap_for_io) and returns RETRY|MAJOR with
      // nothing mapped. The page is cached now; the caller's retry faults around it.
      if ((vmf_flags() & (FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_TRIED)) == FAULT_FLAG_ALLOW_RETRY) return ret | VM_FAULT_RETRY;
    }
  } else {
    // Hold the page before anything below allocates: direct reclaim must not take it.
    get_page(pfn);
    held = true;
    if (!shmem && (vma_flags(vma) & VM_RAND_READ) == 0 && (vmf_flags() & FAULT_FLAG_TRIED) == 0) {
      // do_async_mmap_readahead (R2.9): a hit pays one miss back; the readahead marker
      // starts the next window (minor for this fault). MADV_RANDOM does neither, and
      // neither does the retry of a fault that just read its page (FAULT_FLAG_TRIED).
      const miss = file_mmap_miss(file);
      if (miss > 0) set_file_mmap_miss(file, miss - 1);
      if ((page_flags(folio_head(pfn)) & PG_readahead) != 0) {
        page_cache_async_ra(file, pfn, pgoff, gRaPages);
        // Linux drops the lock for this readahead and retries the fault (R1.1 step 4): GUP
        // retries with FAULT_FLAG_TRIED (major, R11.6; MADV_POPULATE_READ at read_ahead_kb
        // 128), a user fault retried after the per-VMA lock without it (minor), a user fault
        // before 6.7 (mmap lock only) with it (major).
        if (retry_tried_after_drop()) {
          put_page(pfn);
          return VM_FAULT_RETRY | VM_FAULT_MAJOR;
        }
      }
    }
    if ((page_flags(pfn) & (PG_uptodate | PG_private)) == PG_private) {
      // R10.2: valid buffers (truncate's tail zeroing): read_folio marks the folio uptodate
      // without I/O, but Linux drops the lock for it and retries. GUP retries with
      // FAULT_FLAG_TRIED (major, R11.6); a user fault retried after the per-VMA lock sets
      // TRIED only for a MAJOR result, so it counts minor (before 6.7: major).
      page_clear(pfn, PG_private);
      page_set(pfn, PG_uptodate);
      if (retry_tried_after_drop()) {
        put_page(pfn);
        return VM_FAULT_RETRY | VM_FAULT_MAJOR;
      }
      // The retry without FAULT_FLAG_TRIED is not modelled as a second fault: the caller
      // takes this mark and faults around once more, as the retried fault does (R1.1 step 4).
      if ((vmf_flags() & (FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_TRIED)) == FAULT_FLAG_ALLOW_RETRY) eofBlockReread = true;
    }
    if ((page_flags(pfn) & PG_uptodate) == 0) {
      // Re-read a page that is cached but not up to date (a failed or dropped read).
      const n = shmem ? 0 : host_read_page(file, <f64>index, pfn_to_virt(pfn));
      if (n == EAGAIN_READ) { put_page(pfn); return VM_FAULT_RETRY; }
      if (n < 0 || n > <i32>PAGE_SIZE) { put_page(pfn); return VM_FAULT_SIGBUS; }
      if (!shmem && n < <i32>PAGE_SIZE) memory.fill(pfn_to_virt(pfn) + <usize>n, 0, PAGE_SIZE - <u32>n);
      page_set(pfn, PG_uptodate);
      ret |= VM_FAULT_MAJOR;
      count(ST_PGMAJFAULT);
    }
  }
  if ((page_flags(pfn) & PG_hwpoison) != 0) { if (held) put_page(pfn); return ret | 0x10; } // VM_FAULT_HWPOISON
  // Re-check under the page lock: truncated meanwhile? (R10.1)
  if (pgoff >= file_pages(file)) { if (held) put_page(pfn); return VM_FAULT_SIGBUS; }
  if (!held) get_page(pfn);
  page_set(pfn, PG_referenced);
  set_vmf_page(pfn + 1);
  return ret | VM_FAULT_LOCKED;
}

// Set by filemap_fault when it made a cached EOF block uptodate (valid buffers) on a first
// attempt that may retry: Linux dropped the lock for that read_folio and retried the fault.
let eofBlockReread: bool = false;
// Whether the last filemap_fault set that mark; clears it.
export function take_eof_block_reread(): bool {
  const was = eofBlockReread;
  eofBlockReread = false;
  return was;
}

// A fault that found its page but dropped the lock for I/O on it (a readahead marker, a
// read_folio): is it retried with FAULT_FLAG_TRIED, counted major (R11.5)? GUP's first try
// is; a user fault only under the mmap lock alone (before 6.7, gUserRetryTried), since with
// per-VMA locks the arch code sets TRIED only after a MAJOR result (R1.1 step 4).
function retry_tried_after_drop(): bool {
  const ff = vmf_flags();
  if ((ff & (FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_TRIED)) != FAULT_FLAG_ALLOW_RETRY) return false;
  return (ff & FAULT_FLAG_USER) == 0 || gUserRetryTried;
}

// ---- filemap_map_pages: fault-around's generic map_pages (R2.4, R2.5) ----

// The frame of file page `index` if fault-around may map it now without blocking, else
// NO_PFN: absent, locked, not uptodate, readahead-marked, hwpoisoned, beyond EOF. For a
// subpage of a large folio the folio's state is its head's (locked, uptodate, readahead:
// next_uptodate_folio) and the page's own (uptodate, hwpoison).
export function filemap_ready_page(file: u32, index: u64, end: u64): u32 {
  if (index >= end) return NO_PFN;
  const pfn = pc_lookup(file, index);
  if (pfn == NO_PFN) return NO_PFN;
  const f = page_flags(pfn);
  if ((f & (PG_locked | PG_readahead | PG_hwpoison)) != 0 || (f & PG_uptodate) == 0) return NO_PFN;
  if ((f & PG_tail) != 0) {
    const hf = page_flags(page_private(pfn));
    if ((hf & (PG_locked | PG_readahead)) != 0 || (hf & PG_uptodate) == 0) return NO_PFN;
  }
  return pfn;
}

// Does the folio holding `pfn` lie wholly inside `vma`, inside the 2 MiB block (PTE table)
// starting at `block`, and below page `eof`? Then map_pages maps it whole (Linux 6.18,
// "map entire large folio faultaround", like finish_fault on a cold cache).
function folio_fits(vma: u32, pfn: u32, block: u64, eof: u64): bool {
  const head = folio_head(pfn);
  const fs = page_index(head);
  const fe = fs + folio_nr_pages(head) - 1;
  const pg0 = vma_pgoff(vma);
  if (fs < pg0 || fe >= eof) return false;
  const lo = vma_start(vma) + ((fs - pg0) << 12);
  const hi = vma_start(vma) + ((fe - pg0) << 12);
  if (hi >= vma_end(vma)) return false;
  return (lo & ~(PMD_SIZE - 1)) == block && (hi & ~(PMD_SIZE - 1)) == block;
}

// Map every ready page of [startPgoff, endPgoff] whose PTE is none. If the PMD of the
// fault is empty and the first ready page belongs to a PMD-sized folio, that folio is
// mapped by one PMD instead (R2.4, R3.3); otherwise the table preallocated by the caller
// is installed first (seed 001: only now, once no huge mapping is possible). A large folio
// that fits wholly (folio_fits) is mapped whole, even beyond the window. Returns the PTEs
// installed (512 for a PMD).
export function filemap_map_pages(vma: u32, mm: u32, startPgoff: u64, endPgoff: u64): u32 {
  const file = vma_file(vma);
  const eof = file_pages(file);
  const faultVa = vmf_address();
  if (load<u64>(vmf_pmd()) == 0) {
    // No table yet: Linux installs one only once next_uptodate_folio found a folio in the
    // window (filemap_map_pmd); an empty window (e.g. wholly past EOF) leaves the PMD none.
    if (eof == 0 || startPgoff >= eof) return 0;
    const last = endPgoff < eof ? endPgoff : eof - 1;
    let found = false;
    for (let pg = startPgoff; pg <= last; pg++) {
      const pfn = filemap_ready_page(file, pg, eof);
      if (pfn == NO_PFN) continue;
      // Linux 6.18: the table is installed only where a PMD could have been mapped, and a
      // disk file's PMD may not cross i_size (SIGBUS semantics). If the first ready folio
      // holds the last page, nothing is mapped here; finish_fault installs the table.
      // 6.1 has no such rule (gFaultAroundIsize false): the table goes in, the folio is mapped.
      // (A large folio cut by truncate counts as its own page: Linux would have split it.)
      const head = folio_head(pfn);
      let next = page_index(head) + folio_nr_pages(head);
      if (next > eof) next = pg + 1;
      if (gFaultAroundIsize && (file_flags(file) & AS_SHMEM) == 0 && next >= eof) return 0;
      if (folio_test_large(pfn) && do_set_pmd(vma, mm, pfn, faultVa) == 0) return 512;
      found = true;
      break;
    }
    if (!found) return 0;
  }
  if (!pte_alloc_vmf(faultVa) || eof == 0) return 0;
  const last = endPgoff < eof ? endPgoff : eof - 1;
  const table = <u32>((load<u64>(vmf_pmd()) & 0x000f_ffff_ffff_f000) >> 12);
  const block = faultVa & ~(PMD_SIZE - 1);
  let mapped: u32 = 0;
  let looked: u32 = 0;
  const fast = prefault_begin(vma);
  const vaBase = vma_start(vma) - (<u64>vma_pgoff(vma) << 12); // va of file page p: vaBase + p << 12
  // The window lies in one PTE table (do_fault_around): page p's slot is slot0 + (p - start).
  const slot0 = slot_addr(table, table_index(vaBase + (startPgoff << 12), LEVEL_PTE));
  const faultPg = (faultVa - vaBase) >> 12;
  runMapped = 0;
  runLooked = 0;
  runShmem = 0;
  const base = prefault_base();
  // map_small_run's constants, made here so that none is recomputed in its loop: the PTE
  // slot of page pg is slotBase + pg * 8 (wrapping), the flags a dirty PTE needs.
  const slotBase = slot0 - (<usize>startPgoff << 3);
  const dirtyMask: u32 = prefault_dirty_ok() ? PG_dirty : 0;
  pte_lock();
  let pg = startPgoff;
  while (pg <= last) {
    // Runs of ready order-0 folios, the common case, in their own loop (issue 17).
    if (fast) {
      pg = map_small_run(file, pg, last, slotBase, faultPg, base, dirtyMask);
      if (pg > last) break;
    }
    // Large folios, VM_LOCKED, pages not ready: page by page (a large folio whole).
    const pfn = filemap_ready_page(file, pg, eof);
    if (pfn == NO_PFN) { pg++; continue; }
    let lo = pg, hi = pg;
    if (folio_test_large(pfn) && folio_fits(vma, pfn, block, eof)) {
      const head = folio_head(pfn);
      lo = page_index(head);
      hi = lo + folio_nr_pages(head) - 1;
    }
    for (let p = lo; p <= hi; p++) {
      const page = p == pg ? pfn : filemap_ready_page(file, p, eof);
      if (page == NO_PFN) continue;
      looked++;
      if ((page_flags(page) & PG_workingset) != 0) looked--;
      const va = vaBase + (p << 12);
      const ps = slot_addr(table, table_index(va, LEVEL_PTE));
      if (load<u64>(ps) != 0) continue; // already mapped, or a marker (R2.5)
      if (fast) prefault_small(page, page_flags(page), ps, va == faultVa);
      else set_prefault_pte(vma, mm, page, va, ps, va == faultVa);
      mapped++;
    }
    pg = hi + 1;
  }
  mapped += runMapped;
  looked += runLooked;
  prefault_add(runMapped - runShmem, runShmem);
  if (fast) prefault_end(mm);
  pte_unlock();
  // R2.9: map_pages pays back mmap_miss for the pages it looked at.
  const miss = file_mmap_miss(file);
  set_file_mmap_miss(file, miss > looked ? miss - looked : 0);
  count_n(ST_FAULT_AROUND, <f64>mapped);
  return mapped;
}

// What map_small_run did: PTEs installed, pages looked at (mmap_miss), shmem pages mapped.
let runMapped: u32 = 0;
let runLooked: u32 = 0;
let runShmem: u32 = 0;
const SMALL_READY_MASK: u32 = PG_large | PG_tail | PG_locked | PG_readahead | PG_hwpoison | PG_uptodate;

// Fault-around's set_pte_range over a run of ready order-0 folios (issue 17: one loop, the
// PTE base and the RSS per run, no second lookup): from file page `pg` up to `last`, while
// each cached page is small, uptodate, unlocked, not readahead-marked nor poisoned
// (filemap_ready_page's rules on one flags word); absent pages are skipped. A none PTE
// gets its page: a reference, a mapcount, the PTE young for the faulting page (old for the
// others if prefaultOld), dirty for a writable shared PTE of a dirty folio (R2.6). Returns
// the first page it did not take (or last + 1); the caller decides that one (prefault_begin
// was called, the PTE lock is held). `slotBase`: page pg's PTE is at slotBase + pg * 8
// (wrapping); `base`: prefault_base(); `dirtyMask`: PG_dirty if prefault_dirty_ok(), else 0.
function map_small_run(file: u32, pg: u64, last: u64, slotBase: usize, faultPg: u64, base: u64, dirtyMask: u32): u64 {
  // Issue 17 (t17d, t17e): few values live across the loop (V8 keeps them in registers),
  // every loop constant a parameter (none recomputed per page): the three counts in one
  // word (mapped in bits 0..19, shmem 20..39, looked 40..59: a run is at most one PTE
  // table), the struct page's address once per page, the page-cache hash once per group
  // of 16 indexes (at the group's first index), the PTE as the frame shifted into place
  // (a frame number is below 2^32: no mask) or'ed with the base.
  let counts: u64 = 0;
  let home = pc_group_home(file, pg);
  for (; pg <= last; pg++) {
    if ((<u32>pg & 15) == 0) home = pc_group_home(file, pg);
    const page = pc_lookup_home(home, file, pg);
    if (page == NO_PFN) continue;
    const a = page_addr(page);
    const f = load<u32>(a);
    if ((f & SMALL_READY_MASK) != PG_uptodate) break;
    counts += <u64>(~f & PG_workingset) << 23; // looked: PG_workingset (bit 17) clear, onto bit 40
    const ps = slotBase + (<usize>pg << 3);
    if (load<u64>(ps) != 0) continue; // already mapped, or a marker (R2.5)
    store<i32>(a, load<i32>(a, 4) + 1, 4); // get_page
    store<i32>(a, load<i32>(a, 8) + 1, 8); // page_dup_rmap
    let entry = (<u64>page << PAGE_SHIFT) | base; // pfn_pte(page, 0) | base
    if (pg == faultPg) entry = pte_mkyoung(entry);
    if ((f & dirtyMask) != 0) entry = pte_mkdirty(entry);
    counts += 1 | (<u64>(f & PG_swapbacked) >> 2); // mapped; a shmem page: PG_swapbacked (bit 22) onto bit 20
    store<u64>(ps, entry);
  }
  runMapped += <u32>(counts & 0xfffff);
  runShmem += <u32>((counts >> 20) & 0xfffff);
  runLooked += <u32>(counts >> 40);
  return pg;
}

// Map one cached page at file page `pg` for a backend's own mapPages (the backend calls
// this through the host, seed 000). Only pages whose address lies in the VMA and in the
// PTE table of the fault may be mapped. Returns true if a PTE was installed.
export function map_one_cached_page(vma: u32, mm: u32, pg: u64): bool {
  const file = vma_file(vma);
  const pg0 = vma_pgoff(vma);
  if (pg < pg0 || pg - pg0 >= (vma_end(vma) - vma_start(vma)) >> 12) return false;
  const va = vma_start(vma) + ((pg - pg0) << 12);
  if ((va & ~(PMD_SIZE - 1)) != (vmf_address() & ~(PMD_SIZE - 1))) return false;
  const pfn = filemap_ready_page(file, pg, file_pages(file));
  if (pfn == NO_PFN) return false;
  const pmd = load<u64>(vmf_pmd());
  if (pmd == 0 || (pmd & 0x80) != 0) return false;
  const slot = slot_addr(<u32>((pmd & 0x000f_ffff_ffff_f000) >> 12), table_index(va, LEVEL_PTE));
  if (load<u64>(slot) != 0) return false;
  set_prefault_pte(vma, mm, pfn, va, slot, va == vmf_address());
  count(ST_FAULT_AROUND);
  return true;
}

// ---- write-back ----

// Write one dirty page-cache page to its backend (EOF-clamped), then clean it.
// Returns 0 or -errno (the page stays dirty on failure).
export function writeback_page(pfn: u32): i32 {
  const file = page_mapping(pfn);
  if ((file_flags(file) & AS_SHMEM) != 0) return 0;
  const index = page_index(pfn);
  const size = file_size(file);
  const off = index << 12;
  if (off >= size) { clear_dirty(pfn); return 0; } // beyond EOF: never written (R10.1)
  const len: u32 = size - off >= PAGE_SIZE ? PAGE_SIZE : <u32>(size - off);
  page_set(pfn, PG_writeback);
  const r = host_write_page(file, <f64>index, pfn_to_virt(pfn), len);
  // folio_end_writeback also clears PG_reclaim, the bit PG_readahead shares (MADV_PAGEOUT's mark).
  page_clear(pfn, PG_writeback | PG_readahead);
  if (r < 0) return r;
  clear_dirty(pfn);
  count(ST_WRITEBACK);
  return 0;
}

function clear_dirty(pfn: u32): void {
  if ((page_flags(pfn) & PG_dirty) == 0) return;
  page_clear(pfn, PG_dirty);
  file_add_dirty(page_mapping(pfn), -1);
}

// folio_mkclean: write-protect and clean every PTE mapping the page, moving PTE dirty bits
// to the folio first. Returns true if any PTE was dirty.
export function page_mkclean(pfn: u32): bool {
  let dirty = false;
  rmap_walk_start(pfn);
  for (let slot = rmap_walk_next(); slot != 0; slot = rmap_walk_next()) {
    const pte = load<u64>(slot);
    if (pte_dirty(pte) || pte_write(pte)) {
      if (pte_dirty(pte)) dirty = true;
      store<u64>(slot, pte_wrprotect(pte_mkclean(pte)));
      tlb_flush_page(rmapMm, rmapVa());
    }
  }
  return dirty;
}
import { rmapVa as rmapVaGlobal } from "./rmap";
@inline function rmapVa(): u64 { return rmapVaGlobal; }

// Write back the dirty pages of [first, last] (msync, fsync). Returns 0 or the first -errno.
export function filemap_write_range(file: u32, first: u64, last: u64): i32 {
  if ((file_flags(file) & AS_DAX) != 0) {
    // A DAX file system tracks dirty entries (AS_DIRTY_ACCOUNT); 2.6 XIP had nothing to do.
    if ((file_flags(file) & AS_DIRTY_ACCOUNT) != 0) dax_writeback_range(file, first, last);
    return 0;
  }
  let err: i32 = 0;
  const end = file_pages(file);
  if (last >= end) last = end - 1;
  if (end == 0) return 0;
  let wrote = false;
  for (let from = first; ;) {
    const n = pc_gather(file, from, last);
    for (let k: u32 = 0; k < n; k++) {
      const pfn = pc_lookup(file, pc_gathered(k));
      if (pfn == NO_PFN) continue;
      if (page_mkclean(pfn)) mark_dirty(pfn);
      if ((page_flags(pfn) & PG_dirty) != 0) {
        wrote = true;
        const r = writeback_page(pfn);
        if (r < 0 && err == 0) err = r;
      }
    }
    if (n < PC_BATCH) break;
    from = pc_gathered(n - 1) + 1;
  }
  // writeback_iter releases its batch of dirty folios with folio_batch_release, whose first
  // call drains this CPU's batches: fsync / msync(MS_SYNC) that wrote a page let queued
  // munlocks go (measured on 6.18: a clean range does not drain; R8.6).
  if (wrote) lru_add_drain();
  return err;
}
import { mark_page_dirty, AS_DAX, AS_DIRTY_ACCOUNT, file_immap } from "./mapping";
import { VM_SHARED, vma_mm, vma_file_next } from "./vma";
import { mm_pgd } from "./mm";
import { pte_range_first, pte_range_next, pteRangeVa } from "./pgtable";

// DAX writeback (dax_writeback_mapping_range, R7.2): there is no page cache and stores went
// to persistent memory already, but a shared write fault left the file pfn's PTE writable
// and dirty. fsync / msync(MS_SYNC) clean it in every shared mapping of [first, last]
// (dax_entry_mkclean), so the next write faults again through pfn_mkwrite. Private mappings
// map the pfn read-only (their writable PTEs are COWed anonymous copies: left alone).
function dax_writeback_range(file: u32, first: u64, last: u64): void {
  for (let v = file_immap(file); v != 0; v = vma_file_next(v)) {
    if ((vma_flags(v) & VM_SHARED) == 0) continue;
    const pg0 = vma_pgoff(v);
    const hiEx = pg0 + vma_pages(v);
    const lo = first > pg0 ? first : pg0;
    const hi = last + 1 < hiEx ? last + 1 : hiEx;
    if (lo >= hi) continue;
    const mm = vma_mm(v);
    const end = vma_start(v) + ((hi - pg0) << 12);
    for (let slot = pte_range_first(mm_pgd(mm), vma_start(v) + ((lo - pg0) << 12), end); slot != 0; slot = pte_range_next()) {
      const pte = load<u64>(slot);
      if (!pte_present(pte) || !(pte_dirty(pte) || pte_write(pte))) continue;
      store<u64>(slot, pte_wrprotect(pte_mkclean(pte)));
      tlb_flush_page(mm, pteRangeVa);
    }
  }
}
@inline function mark_dirty(pfn: u32): void { mark_page_dirty(pfn); }

// ---- removal ----

// Is `pfn` the page cache's page for its (mapping, index)?
@inline function is_cached(pfn: u32): bool {
  const f = page_mapping(pfn);
  return f != 0 && pc_lookup(f, page_index(pfn)) == pfn;
}

// Drop a cached page that nobody maps (eviction, reclaim, close): a page of a large folio
// takes its whole folio with it (Linux evicts folios), so nothing of the folio may be
// mapped. Dirty pages are written back first unless `discard`. Returns false, leaving
// everything cached, if something is mapped or could not be written.
export function remove_cached_page(pfn: u32, discard: bool): bool {
  if (!folio_test_large(pfn)) return remove_cached_subpage(pfn, discard);
  const head = folio_head(pfn);
  const n = folio_nr_pages(head);
  for (let i: u32 = 0; i < n; i++) if (page_mapcount(head + i) != 0) return false;
  if (!discard) {
    for (let i: u32 = 0; i < n; i++) {
      const sub = head + i;
      if (is_cached(sub) && (page_flags(sub) & PG_dirty) != 0 && writeback_page(sub) < 0) return false;
    }
  }
  // Tails first: the head goes last, with the folio's last reference.
  for (let i = <i32>n - 1; i >= 0; i--) {
    const sub = head + <u32>i;
    if (is_cached(sub)) remove_cached_subpage(sub, true);
  }
  return true;
}

// Drop one cached page (of a large folio: that subpage only, truncation's partial folio).
export function remove_cached_subpage(pfn: u32, discard: bool): bool {
  if (page_mapcount(pfn) != 0) return false;
  if (!discard && (page_flags(pfn) & PG_dirty) != 0 && writeback_page(pfn) < 0) return false;
  clear_dirty(pfn);
  pc_delete(page_mapping(pfn), page_index(pfn));
  set_page_mapping(pfn, 0);
  page_clear(pfn, PG_uptodate | PG_readahead | PG_private);
  put_page(pfn); // the cache's reference
  return true;
}

// truncate_setsize (R10.2): set i_size, zap mappings beyond it even of private copies,
// drop cached pages wholly beyond it, zero the tail of the partial last page, zap again.
export function truncate_setsize(file: u32, newSize: u64): void {
  const oldSize = file_size(file);
  set_file_size(file, newSize);
  if (newSize > oldSize) {
    // Growing: a disk file system zeroes the rest of the old EOF block (ext4), through the
    // page cache (R10.2): bytes written past EOF through a shared map read back as zeros.
    // 6.1 (gTruncExtendZeroesTail false) does neither: with 4 KiB blocks nothing is touched.
    if ((oldSize & 4095) != 0 && gTruncExtendZeroesTail) zero_eof_tail(file, oldSize);
    return;
  }
  if (newSize == oldSize) {
    // ext4_setattr calls ext4_truncate when the size does not grow, the same size included,
    // and that zeroes the EOF block's tail through the page cache (fuzz seed 1755393609
    // case 473: the next write fault is minor); tmpfs does nothing.
    if ((newSize & 4095) != 0 && gTruncateCachesTail && (file_flags(file) & AS_SHMEM) == 0) zero_eof_tail(file, newSize);
    return;
  }
  const firstGone = (newSize + 4095) >> 12;
  const oldEnd = (oldSize + 4095) >> 12;
  unmap_mapping_range(file, firstGone, MAX_PGOFF, true);
  // A straddling folio keeps its head part.
  if (oldEnd > firstGone) {
    const before = file_nrpages(file);
    remove_range(file, firstGone, oldEnd - 1, REMOVE_SUBPAGE);
    // truncate_inode_pages_range's folio_batch_release drains when it found folios to drop
    // (measured on 6.18: a truncate that removes none, or only the tail of the last page,
    // leaves queued munlocks queued; R8.6).
    if (file_nrpages(file) != before) lru_add_drain();
  }
  shmem_free_swap(file, firstGone, MAX_PGOFF); // shmem pages out on swap go too
  if ((newSize & 4095) != 0) zero_eof_tail(file, newSize);
  unmap_mapping_range(file, firstGone, MAX_PGOFF, true);
}

// Zero the page-cache bytes of the page holding byte `size` from there to the page's end.
// A disk file system (gTruncateCachesTail, ext4) reads an uncached page's block for it, so
// the page is cached afterwards with valid buffers but not uptodate (PG_private; the next
// fault on it is minor, R10.2, R11.6); tmpfs-like file systems leave an uncached page alone.
function zero_eof_tail(file: u32, size: u64): void {
  const index = size >> 12;
  const off = <u32>(size & 4095);
  let pfn = pc_lookup(file, index);
  if (pfn == NO_PFN && shmem_swap_slot(file, index) != 0) pfn = shmem_swapin(file, index);
  if (pfn == NO_PFN) {
    if (!gTruncateCachesTail || (file_flags(file) & AS_SHMEM) != 0) return;
    pfn = add_page(file, index, true);
    if (pfn == NO_PFN) { gReadFailed = false; gReadRetry = false; return; }
    page_clear(pfn, PG_uptodate);
    page_set(pfn, PG_private);
  }
  memory.fill(pfn_to_virt(pfn) + off, 0, PAGE_SIZE - off);
  // ext4 zeroes the block through the page cache and dirties it (block_truncate_page's
  // mark_buffer_dirty): reclaim and MADV_PAGEOUT keep the dirty page, writeback writes it
  // (fuzz seed 1363926800 case 2293).
  if ((file_flags(file) & AS_SHMEM) == 0) mark_page_dirty(pfn);
}

// Evict clean (or written-back) unmapped pages of [first, last] (a large folio whole);
// returns pages dropped.
export function invalidate_mapping_pages(file: u32, first: u64, last: u64): u32 {
  const before = file_nrpages(file);
  const end = file_pages(file);
  if (end == 0 || first >= end) return 0;
  remove_range(file, first, last < end ? last : end - 1, REMOVE_CLEAN);
  return before - file_nrpages(file);
}

// Every cached page of the file: dropped (close of the last reference).
export function drop_all_pages(file: u32, writeBack: bool): void {
  const end = file_pages(file);
  if (end > 0) remove_range(file, 0, end - 1, writeBack ? REMOVE_CLEAN : REMOVE_DISCARD);
}

// The largest page index (x86-64: MAX_LFS_FILESIZE 2^63 - 1 bytes): "to the end" of a range.
export const MAX_PGOFF: u64 = (<u64>1 << 51) - 1;
export const REMOVE_SUBPAGE: u32 = 0; // that page only, dirty or not (truncate, punch hole)
export const REMOVE_CLEAN: u32 = 1; // its whole folio, written back first if dirty
export const REMOVE_DISCARD: u32 = 2; // its whole folio, dirty or not
// Drop the cached pages of [first, last], visiting only what is cached (pc_gather).
export function remove_range(file: u32, first: u64, last: u64, how: u32): void {
  for (let from = first; ;) {
    const n = pc_gather(file, from, last);
    for (let k: u32 = 0; k < n; k++) {
      const pfn = pc_lookup(file, pc_gathered(k));
      if (pfn == NO_PFN) continue;
      if (how == REMOVE_SUBPAGE) remove_cached_subpage(pfn, true);
      else remove_cached_page(pfn, how == REMOVE_DISCARD);
    }
    if (n < PC_BATCH || file_nrpages(file) == 0) break;
    from = pc_gathered(n - 1) + 1;
  }
}


// ---- read(2) / write(2) through the page cache (filemap_read, generic_perform_write) ----

// filemap_update_page: make cached page `index` (frame `pfn`) uptodate as read(2) does
// before copying from it. Valid buffers (the EOF block a truncate or an extending write
// zeroed, R10.2) need no I/O: read_folio only marks the folio uptodate; any other page that
// is not uptodate is read again. 0, or -EAGAIN / -EIO.
function filemap_update_page(file: u32, index: u64, pfn: u32): i32 {
  const f = page_flags(pfn);
  if ((f & PG_uptodate) != 0) return 0;
  if ((f & PG_private) != 0) {
    page_clear(pfn, PG_private);
    page_set(pfn, PG_uptodate);
    return 0;
  }
  const r = host_read_page(file, <f64>index, pfn_to_virt(pfn));
  if (r == EAGAIN_READ) return -EAGAIN;
  if (r < 0 || r > <i32>PAGE_SIZE) return -EIO;
  memory.fill(pfn_to_virt(pfn) + <usize>r, 0, PAGE_SIZE - <u32>r);
  page_set(pfn, PG_uptodate);
  return 0;
}

// Pages [first, first+n) into the cache as read(2) with no readahead leaves them (the
// harness's `cache`: FADV_RANDOM preads): absent pages read as order-0 folios without a
// readahead marker, cached pages that are not uptodate made uptodate (filemap_update_page;
// fuzz seed 607032874 case 1426). `update` false: POSIX_FADV_WILLNEED instead
// (force_page_cache_ra skips every cached folio, uptodate or not). 0, or -EIO.
export function filemap_prime(file: u32, first: u64, n: u32, update: bool): i32 {
  page_cache_ra(file, first, n, NO_MARK);
  gReadRetry = false; // pages the backend must wait for stay absent, as before
  const end = file_pages(file);
  if (!update || n == 0 || first >= end) return 0;
  const last = first + n - 1 < end ? first + n - 1 : end - 1;
  for (let from = first; ;) {
    const got = pc_gather(file, from, last);
    for (let k: u32 = 0; k < got; k++) {
      const index = pc_gathered(k);
      const pfn = pc_lookup(file, index);
      if (pfn == NO_PFN) continue;
      const r = filemap_update_page(file, index, pfn);
      if (r == -EIO) return r;
    }
    if (got < PC_BATCH) break;
    from = pc_gathered(got - 1) + 1;
  }
  return 0;
}

// Copy up to `n` bytes inside one page between linear memory at `buf` and the file at byte
// `pos`, through the page cache as pread/pwrite do: a missing page is read in (order 0; a
// page wholly past EOF starts zeroed), a write marks the folio dirty and may extend i_size.
// No PTE changes, no fault counted; mapped PTEs of the page see the bytes at once (R5.9).
// Returns the bytes copied (0 for a read at or past EOF) or -errno.
export function filemap_rw(file: u32, pos: u64, buf: usize, n: u32, write: bool): i32 {
  const off = <u32>(pos & 4095);
  if (n > PAGE_SIZE - off) n = PAGE_SIZE - off;
  const size = file_size(file);
  if (!write) {
    if (pos >= size) return 0;
    if (<u64>n > size - pos) n = <u32>(size - pos);
  }
  if (n == 0) return 0;
  const index = pos >> 12;
  let pfn = pc_lookup(file, index);
  const disk = (file_flags(file) & AS_SHMEM) == 0;
  if (!write && disk) {
    // filemap_get_pages (R2.9): a miss starts readahead, a marked page the next window.
    if (pfn == NO_PFN) {
      gReadFailed = false;
      page_cache_sync_ra(file, index, 1);
      if (gReadRetry) return -EAGAIN;
      pfn = pc_lookup(file, index);
      if (pfn == NO_PFN && gReadFailed) return -EIO; // read once, as before
    } else if ((page_flags(folio_head(pfn)) & PG_readahead) != 0) {
      page_cache_async_ra(file, pfn, page_index(folio_head(pfn)), 1);
    }
    set_file_prev_pos1(file, pos + n + 1); // ra->prev_pos = the end of this read
  }
  if (pfn == NO_PFN && !disk && shmem_swap_slot(file, index) != 0) {
    pfn = shmem_swapin(file, index); // written to swap by reclaim (R11.3): its bytes, not zeros
    if (pfn == NO_PFN) return shmemSwapinIoError ? -EIO : -ENOMEM;
  }
  if (write && pos > size && (size & 4095) != 0 && (size >> 12) != <u64>index) {
    // An extending write past a partial EOF page: ext4 zeroes the rest of the old EOF block
    // through the page cache first, as a growing truncate does (R10.2), so that page ends up
    // cached (not uptodate when it was not cached) and its next fault is minor.
    zero_eof_tail(file, size);
    pfn = pc_lookup(file, index);
  }
  if (pfn == NO_PFN) {
    pfn = add_page(file, index, (file_flags(file) & AS_SHMEM) == 0 && index < file_pages(file));
    if (gReadRetry) return -EAGAIN;
    if (pfn == NO_PFN) return gReadFailed ? -EIO : -ENOMEM;
  } else {
    const r = filemap_update_page(file, index, pfn);
    if (r < 0) return r;
  }
  const at = pfn_to_virt(pfn) + <usize>off;
  if (write) {
    memory.copy(at, buf, n);
    mark_dirty(pfn);
    if (pos + n > file_size(file)) set_file_size(file, pos + n);
  } else {
    memory.copy(buf, at, n);
  }
  page_set(pfn, PG_referenced);
  return <i32>n;
}
