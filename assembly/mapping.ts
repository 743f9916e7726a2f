// struct address_space: one record per open file (and per shmem object), and the page
// index that maps (file, page index) to the frame holding it — Linux's xarray role,
// here one open-addressing hash table for all files (linear probing, backward-shift
// deletion), sized at boot to twice the RAM frames so it can never fill.
//
// File record (64 bytes, ids 1 .. MAX_FILES-1):
//   +0 u64 i_size (bytes)   +8 u32 i_mmap head (first VMA)   +12 u32 nrpages
//   +16 u32 flags (AS_*)    +20 u32 mmap_miss                 +24 u32 nr_dirty
//   +28 u32 ra order        +32 u32 ra size  +36 u32 swap/shmem pages  +40 u32 mapped VMAs
//   +44 u32 ra async size   +48 u64 read(2)'s prev_pos + 1 (0: none yet)
//   +56 u64 ra window start (a page index: up to 2^51)

import { gNrFrames } from "./config";

export const MAX_FILES: u32 = 65536;
const FILE_SIZE: u32 = 64;
let files: usize = 0;

export const AS_OPEN: u32 = 1;
export const AS_SHMEM: u32 = 2; // shmem (shared anonymous memory, a tmpfs file): no backend, holes read as zeros
export const AS_READONLY: u32 = 4; // opened without write permission (MAYWRITE off for shared)
export const AS_HAS_FAULT: u32 = 8; // the backend has its own fault()
export const AS_HAS_MAP_PAGES: u32 = 16; // the backend has its own mapPages()
export const AS_HAS_PAGE_MKWRITE: u32 = 32; // page_mkwrite()
export const AS_HAS_PFN_MKWRITE: u32 = 64; // pfn_mkwrite()
export const AS_DAX: u32 = 128; // execute-in-place: no page cache
export const AS_MLOCKED: u32 = 256; // ever had an mlocked VMA: pages stay stable (seed 003)
export const AS_DIRTY_ACCOUNT: u32 = 512; // write-back caching: shared writable VMAs write-notify
export const AS_NO_MAP_PAGES: u32 = 1024; // no map_pages at all: no fault-around
export const AS_IO_ERROR: u32 = 2048;
export const AS_HAS_READ_PAGES: u32 = 4096; // the backend reads a run of pages in one call
export const AS_CAN_PUNCH: u32 = 8192; // the backend can punch holes (MADV_REMOVE, R9.1)
export const AS_HOST_OPEN: u32 = 16384; // opened by the host (file_open): outlives its mappings

@inline export function file_addr(f: u32): usize { return files + <usize>f * FILE_SIZE; }
@inline export function file_size(f: u32): u64 { return load<u64>(file_addr(f)); }
@inline export function set_file_size(f: u32, s: u64): void { store<u64>(file_addr(f), s); }
@inline export function file_immap_at(f: u32): usize { return file_addr(f) + 8; }
@inline export function file_immap(f: u32): u32 { return load<u32>(file_addr(f), 8); }
@inline export function file_nrpages(f: u32): u32 { return load<u32>(file_addr(f), 12); }
@inline export function file_flags(f: u32): u32 { return load<u32>(file_addr(f), 16); }
@inline export function set_file_flags(f: u32, x: u32): void { store<u32>(file_addr(f), x, 16); }
@inline export function file_mmap_miss(f: u32): u32 { return load<u32>(file_addr(f), 20); }
@inline export function set_file_mmap_miss(f: u32, x: u32): void { store<u32>(file_addr(f), x, 20); }
@inline export function file_nr_dirty(f: u32): u32 { return load<u32>(file_addr(f), 24); }
@inline export function file_add_dirty(f: u32, d: i32): void {
  store<u32>(file_addr(f), <u32>(<i32>file_nr_dirty(f) + d), 24);
}
// file_ra_state (R2.9): Linux keeps one per open file; here one per file.
@inline export function file_ra_start(f: u32): u64 { return load<u64>(file_addr(f), 56); }
@inline export function file_ra_size(f: u32): u32 { return load<u32>(file_addr(f), 32); }
@inline export function file_ra_async(f: u32): u32 { return load<u32>(file_addr(f), 44); }
@inline export function set_file_ra(f: u32, start: u64, size: u32, asyncSize: u32): void {
  store<u64>(file_addr(f), start, 56);
  store<u32>(file_addr(f), size, 32);
  store<u32>(file_addr(f), asyncSize, 44);
}
@inline export function file_ra_order(f: u32): u32 { return load<u32>(file_addr(f), 28); }
@inline export function set_file_ra_order(f: u32, o: u32): void { store<u32>(file_addr(f), o, 28); }
@inline export function file_prev_pos1(f: u32): u64 { return load<u64>(file_addr(f), 48); }
@inline export function set_file_prev_pos1(f: u32, p: u64): void { store<u64>(file_addr(f), p, 48); }
@inline export function file_valid(f: u32): bool {
  return f > 0 && f < MAX_FILES && files != 0 && (file_flags(f) & AS_OPEN) != 0;
}
// Pages of the file: ceil(i_size / 4096).
@inline export function file_pages(f: u32): u64 { return (file_size(f) + 4095) >> 12; }

let nextFileHint: u32 = 1;

export function mapping_init(): void {
  files = heap.alloc(<usize>MAX_FILES * FILE_SIZE);
  memory.fill(files, 0, <usize>MAX_FILES * FILE_SIZE);
  let cap: u32 = 16;
  while (cap < gNrFrames * 2) cap <<= 1;
  pcCap = cap;
  pcMask = cap - 1;
  pcTable = heap.alloc(<usize>cap * SLOT_SIZE);
  memory.fill(pcTable, 0, <usize>cap * SLOT_SIZE);
}

// A new file record, or 0 when all are in use.
export function file_alloc(size: u64, flags: u32): u32 {
  for (let i: u32 = 0; i < MAX_FILES - 1; i++) {
    const f = 1 + (nextFileHint - 1 + i) % (MAX_FILES - 1);
    if ((file_flags(f) & AS_OPEN) == 0) {
      memory.fill(file_addr(f), 0, FILE_SIZE);
      set_file_size(f, size);
      set_file_flags(f, flags | AS_OPEN);
      nextFileHint = f + 1;
      return f;
    }
  }
  return 0;
}

export function file_release(f: u32): void { memory.fill(file_addr(f), 0, FILE_SIZE); }

// ---- the page index: 16-byte slots of (file u32, pfn u32, index u64); file 0 = empty ----
// The index is 64-bit: a file page index reaches 2^51 (x86-64's 2^63-byte files; a 47-bit
// shmem VMA alone spans 2^35 pages), and the slot stays a power of two (4 per cache line).
const SLOT_SIZE: u32 = 16;
let pcTable: usize = 0;
let pcCap: u32 = 0;
let pcMask: u32 = 0;

// One hash per group of 16 consecutive indexes, whose slots follow one another: read-around
// and fault-around look pages up in index order, so their probes walk adjacent cache lines
// instead of each landing on a random one (issue 17: the lookups were the top of the
// fault-around profile).
@inline function pcHash(f: u32, index: u64): u32 {
  const g = index >> 4;
  let h = f * 0x9e3779b1 ^ <u32>g * 0x85ebca77 ^ <u32>(g >> 32) * 0xc2b2ae3d;
  h ^= h >>> 15;
  h *= 0x2c1b3c6d;
  h ^= h >>> 13;
  return ((h << 4) | (<u32>index & 15)) & pcMask;
}
@inline function slotAt(i: u32): usize { return pcTable + (<usize>i << 4); }

// The frame caching page `index` of file `f`, or 0xffffffff.
export function pc_lookup(f: u32, index: u64): u32 {
  return pc_lookup_home(pc_group_home(f, index), f, index);
}

// One hash per group of 16 consecutive indexes (pcHash): the probe start of every index of
// `index`'s group is pc_group_home(f, index) | (index & 15). A caller looking up a run of
// indexes (fault-around, issue 17) hashes once per group and probes with pc_lookup_home.
@inline export function pc_group_home(f: u32, index: u64): u32 {
  return pcHash(f, index) & ~(<u32>15);
}

// pc_lookup(f, index) for an index of the group whose home is `home`.
// The first probe inline (it finds the page unless its home slot was taken), the rest in
// pc_probe_on, so that a caller's loop has no inner loop (issue 17).
@inline export function pc_lookup_home(home: u32, f: u32, index: u64): u32 {
  const i = home | (<u32>index & 15);
  const s = slotAt(i);
  if (load<u32>(s) == f && load<u64>(s, 8) == index) return load<u32>(s, 4);
  return load<u32>(s) == 0 ? 0xffff_ffff : pc_probe_on((i + 1) & pcMask, f, index);
}
function pc_probe_on(i: u32, f: u32, index: u64): u32 {
  for (;;) {
    const s = slotAt(i);
    const sf = load<u32>(s);
    if (sf == 0) return 0xffff_ffff;
    if (sf == f && load<u64>(s, 8) == index) return load<u32>(s, 4);
    i = (i + 1) & pcMask;
  }
  return 0xffff_ffff;
}

export function pc_insert(f: u32, index: u64, pfn: u32): void {
  let i = pcHash(f, index);
  for (;;) {
    const s = slotAt(i);
    const sf = load<u32>(s);
    if (sf == 0 || (sf == f && load<u64>(s, 8) == index)) {
      if (sf == 0) {
        store<u32>(file_addr(f), file_nrpages(f) + 1, 12);
      }
      store<u32>(s, f);
      store<u32>(s, pfn, 4);
      store<u64>(s, index, 8);
      return;
    }
    i = (i + 1) & pcMask;
  }
}

export function pc_delete(f: u32, index: u64): void {
  let i = pcHash(f, index);
  for (;;) {
    const s = slotAt(i);
    const sf = load<u32>(s);
    if (sf == 0) return;
    if (sf == f && load<u64>(s, 8) == index) break;
    i = (i + 1) & pcMask;
  }
  store<u32>(file_addr(f), file_nrpages(f) - 1, 12);
  // Backward-shift deletion keeps every probe chain unbroken without tombstones.
  let hole = i;
  let j = i;
  for (;;) {
    j = (j + 1) & pcMask;
    const s = slotAt(j);
    const sf = load<u32>(s);
    if (sf == 0) break;
    const home = pcHash(sf, load<u64>(s, 8));
    // Move j into the hole if its home is not cyclically within (hole, j].
    const between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!between) {
      memory.copy(slotAt(hole), s, SLOT_SIZE);
      hole = j;
    }
  }
  store<u64>(slotAt(hole), 0);
  store<u64>(slotAt(hole), 0, 8);
}

export function pc_capacity(): u32 { return pcCap; }
// Raw slot access for invariant checks: file (0 = empty), index, pfn.
export function pc_slot_file(i: u32): u32 { return load<u32>(slotAt(i)); }
export function pc_slot_index(i: u32): u64 { return load<u64>(slotAt(i), 8); }
export function pc_slot_pfn(i: u32): u32 { return load<u32>(slotAt(i), 4); }

// ---- walking the cached pages of an index range (find_get_entries' role) ----
// A range may be far larger than the cache (a 2^46-byte shmem object has 2^34 pages, its
// truncation or close still visits only what is cached): a range no longer than the table
// is probed index by index, a longer one is found by one scan of the table per PC_BATCH
// pages. pc_gather fills pcGathered with up to PC_BATCH cached indexes of [first, last] in
// ascending order (the smallest ones) and returns how many; the caller acts on them (they
// may be gone by then: look each up again) and continues after the last one while a batch
// came back full.
export const PC_BATCH: u32 = 64;
const gathered: usize = memory.data(PC_BATCH * 8);
@inline export function pc_gathered(k: u32): u64 { return load<u64>(gathered + (<usize>k << 3)); }

export function pc_gather(f: u32, first: u64, last: u64): u32 {
  if (last < first || file_nrpages(f) == 0) return 0;
  let n: u32 = 0;
  if (last - first < <u64>pcCap) {
    for (let i = first; ; i++) {
      if (pc_lookup(f, i) != 0xffff_ffff) {
        store<u64>(gathered + (<usize>n << 3), i);
        if (++n == PC_BATCH) break;
      }
      if (i == last) break;
    }
    return n;
  }
  for (let s: u32 = 0; s < pcCap; s++) {
    const a = slotAt(s);
    if (load<u32>(a) != f) continue;
    const idx = load<u64>(a, 8);
    if (idx < first || idx > last) continue;
    if (n == PC_BATCH && idx >= pc_gathered(n - 1)) continue;
    // Insert in order, dropping the largest when full.
    let k = n < PC_BATCH ? n : n - 1;
    while (k > 0 && pc_gathered(k - 1) > idx) {
      store<u64>(gathered + (<usize>k << 3), pc_gathered(k - 1));
      k--;
    }
    store<u64>(gathered + (<usize>k << 3), idx);
    if (n < PC_BATCH) n++;
  }
  return n;
}

// folio_mark_dirty for a page-cache page: counted once per page.
import { PG_dirty, page_flags, page_set, page_mapping, set_page_mapping, set_page_index } from "./page";
export function mark_page_dirty(pfn: u32): void {
  if ((page_flags(pfn) & PG_dirty) != 0) return;
  page_set(pfn, PG_dirty);
  const f = page_mapping(pfn);
  if (f != 0) file_add_dirty(f, 1);
}

// __filemap_add_folio's bookkeeping for one page: it names its file and index and is
// found there (the caller holds the page cache's reference).
export function pc_add_page(f: u32, index: u64, pfn: u32): void {
  set_page_mapping(pfn, f);
  set_page_index(pfn, index);
  pc_insert(f, index, pfn);
}
