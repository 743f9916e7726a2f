// vmstat-like event counters, one f64 each in a static table the host reads by id.
// The ids are mirrored by name in src/core.ts (STAT_NAMES); append, never renumber.

export const ST_TLB_HIT: i32 = 0;
export const ST_TLB_MISS: i32 = 1;
export const ST_TLB_FLUSH_PAGE: i32 = 2;
export const ST_TLB_FLUSH_RANGE: i32 = 3;
export const ST_TLB_FLUSH_ASID: i32 = 4;
export const ST_TLB_FLUSH_ALL: i32 = 5;
export const ST_TLB_ENTRIES_FLUSHED: i32 = 6;
export const ST_WALK: i32 = 7;
export const ST_PGFAULT: i32 = 8; // every handle_mm_fault entry, errors included (R11.5)
export const ST_PGMAJFAULT: i32 = 9;
export const ST_PGALLOC: i32 = 10;
export const ST_PGFREE: i32 = 11;
export const ST_FAULT_AROUND: i32 = 12; // PTEs installed by fault-around
export const ST_COW_COPY: i32 = 13;
export const ST_WP_REUSE: i32 = 14;
export const ST_ZERO_PAGE_MAP: i32 = 15;
export const ST_PGSCAN: i32 = 16;
export const ST_PGSTEAL: i32 = 17;
export const ST_PSWPOUT: i32 = 18;
export const ST_PSWPIN: i32 = 19;
export const ST_WRITEBACK: i32 = 20;
export const ST_DISCARD: i32 = 21;
export const ST_UNEVICTABLE_CULLED: i32 = 22;
export const ST_THP_FILE_MAPPED: i32 = 23;
export const ST_PAGECACHE_READ: i32 = 24; // pages read from a backend
export const ST_DONE_COW: i32 = 25;
export const ST_SIGSEGV: i32 = 26;
export const ST_SIGBUS: i32 = 27;
export const NR_STATS: i32 = 64;

const table: usize = memory.data(NR_STATS * 8);

@inline export function count(id: i32): void {
  const a = table + (<usize>id << 3);
  store<f64>(a, load<f64>(a) + 1);
}
@inline export function count_n(id: i32, n: f64): void {
  const a = table + (<usize>id << 3);
  store<f64>(a, load<f64>(a) + n);
}
export function stat_value(id: i32): f64 {
  if (<u32>id >= <u32>NR_STATS) return 0;
  return load<f64>(table + (<usize>id << 3));
}

// ---- the invariant report: (code, a, b) triples filled by the *_check functions ----
// Codes are mirrored by message in src/core.ts (INVARIANT_MESSAGES).
export const INV_FREE_LIST_BAD: i32 = 1; // a = pfn, b = order: bad block on a free list
export const INV_FREE_COUNT: i32 = 2; // a = counted, b = recorded free frames
export const INV_FREE_REFERENCED: i32 = 3; // a = pfn free but referenced or mapped
export const INV_BLOCK_OVERLAP: i32 = 4; // a = pfn covered twice / not covered
export const INV_TLB_STALE: i32 = 5; // a = tlb slot, b = asid: entry disagrees with tables
export const INV_TLB_PERM: i32 = 6; // a = tlb slot, b = asid: entry grants more permission
export const INV_MAPCOUNT: i32 = 7; // a = pfn, b = PTEs counted
export const INV_REFCOUNT: i32 = 8; // a = pfn, b = refcount below mapcount
export const INV_RSS: i32 = 9; // a = mm id, b = counter kind
export const INV_PGTABLES: i32 = 10; // a = mm id, b = tables counted
export const INV_FREE_MAPPED: i32 = 11; // a = pfn: a free frame is mapped by a PTE
export const INV_PAGECACHE: i32 = 12; // a = file id, b = index
export const INV_VMA: i32 = 13; // a = mm id, b = vma slot
export const INV_LRU: i32 = 14; // a = pfn, b = list
export const INV_LOCKED_VM: i32 = 15; // a = mm id, b = counted pages
export const INV_SWAP: i32 = 16; // a = swap slot, b = count
export const INV_REF_LEAK: i32 = 17; // a = pfn, b = refcount: not mappings + caches
export const INV_DIRTY: i32 = 18; // a = file id, b = its dirty count: not its dirty pages
export const INV_ANON_EXCLUSIVE: i32 = 19; // a = pfn, b = which PageAnonExclusive rule (check.ts)
export const INV_MLOCK: i32 = 20; // a = pfn, b = which mlock_count rule (check.ts mlock_check)
export const INV_MAX: i32 = 256;

// Records of 16 bytes: +0 i32 code, +4 u32 a, +8 u64 b (b may be a 51-bit page index).
const invBuf: usize = memory.data(INV_MAX * 16);
let invCount: i32 = 0;

export function inv_reset(): void { invCount = 0; }
export function inv_report(code: i32, a: u32, b: u64): void {
  if (invCount < INV_MAX) {
    const p = invBuf + (<usize>invCount << 4);
    store<i32>(p, code);
    store<u32>(p, a, 4);
    store<u64>(p, b, 8);
  }
  invCount++;
}
export function inv_count(): i32 { return invCount < INV_MAX ? invCount : INV_MAX; }
// Field f of record i (0 code, 1 a, 2 b), as an exact f64: unsigned, b up to 2^53.
export function inv_field(i: i32, f: i32): f64 {
  if (i < 0 || i >= inv_count() || f < 0 || f > 2) return 0;
  const p = invBuf + (<usize>i << 4);
  return f == 0 ? <f64>load<i32>(p) : f == 1 ? <f64>load<u32>(p, 4) : <f64>load<u64>(p, 8);
}
