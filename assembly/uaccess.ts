// User accesses, as the CPU makes them: the TLB, then the hardware walk, then the page
// fault and a retry (x86 semantics: accessed/dirty bits are set by the walker, so an old
// or clean PTE costs no fault). Bulk forms keep the loop inside Wasm: touch N pages,
// copy a buffer in or out, one call each.

import { PAGE_SHIFT, PAGE_SIZE, PMD_SIZE, gNrFrames } from "./config";
import { gRamBase } from "./config";
import { tlb_lookup, tlb_fill_key, tlb_note_root, tlb_key, slotAddr, TLB_PFN, ACCESS_READ, ACCESS_WRITE, ACCESS_EXEC } from "./tlb";
import { walk, walk_user_psc, fill_from_walk, walkPa, MODE_LINUX_USER, MODE_PSC, WALK_OK, WALK_FULL,
  psc_run_table, psc_run_allow, psc_run_nx, walk_note_user_leaf, PHYS_RSVD_BITS, user_pf_not_present, user_pf_prot } from "./mmu";
import { _PAGE_PRESENT, _PAGE_RW, _PAGE_USER, _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_NX } from "./pte";
import { slot_addr, table_index, LEVEL_PTE } from "./pgtable";
import { page_residency, RES_RESIDENT, all_frames_resident } from "./pagestate";
import { mm_pgd } from "./mm";
import { count, count_n, ST_TLB_HIT, ST_TLB_MISS, ST_WALK } from "./stats";
import { do_user_addr_fault, fault_no_progress, run_fault_begin, run_fault, run_fault_drop, run_fault_flush } from "./fault";
import { pa_is_device, mmio_access, mmio_touch } from "./mmio";

// Physical address for a user access at `va`, faulting it in if needed. Negative on
// failure: -(signal number) or FAULT_OOM / FAULT_RETRY (-1 / -2 from fault.ts) - 100.
export function user_access(mm: u32, va: u64, access: u32): i64 {
  const hit = tlb_lookup(mm, va, access, true);
  if (hit >= 0) {
    count(ST_TLB_HIT);
    return (hit << PAGE_SHIFT) | <i64>(va & 0xfff);
  }
  return user_access_miss(mm, va, access);
}

// user_access after its TLB lookup missed: the walk, and the fault and retry if it fails.
function user_access_miss(mm: u32, va: u64, access: u32): i64 {
  count(ST_TLB_MISS);
  const pgd = mm_pgd(mm);
  return user_access_fault(mm, pgd, va, access, user_walk(pgd, va, access), 0);
}

// The walk of a user access: the leaf of the table the last walk used (mmu.ts), else the
// full walk.
@inline function user_walk(pgd: u32, va: u64, access: u32): i32 {
  const r = walk_user_psc(pgd, va, access);
  return r == WALK_FULL ? walk(pgd, va, access, MODE_LINUX_USER | MODE_PSC) : r;
}

// The rest of user_access once a walk gave `r` after `faults` faults: fill on success, else
// fault and walk again; the fourth fault without progress is SIGBUS. touch_run enters here
// with the walk it did itself.
function user_access_fault(mm: u32, pgd: u32, va: u64, access: u32, r: i32, faults: i32): i64 {
  for (;;) {
    if (r == WALK_OK) {
      fill_from_walk(mm, pgd, va);
      return <i64>walkPa;
    }
    const s = do_user_addr_fault(mm, va, access, <u32>r);
    if (s > 0) return -<i64>s;
    if (s < 0) return <i64>s - 100;
    if (++faults == 4) return -<i64>fault_no_progress(va); // no progress: SIGBUS BUS_OBJERR (fault.ts)
    r = user_walk(pgd, va, access);
  }
  return 0;
}

// Touch one byte of every page in [va, va + len): `access` 0 read, 1 write, 2 exec.
// Returns 0 or the failure code of user_access (fault.ts's sigAddr says where).
// Pages after the first go through touch_run while the paging-structure cache holds their
// block's PTE table (issue 17): the same TLB lookups, walks, A/D updates, fills and faults
// as user_access page by page, without re-validating the upper levels for every page.
export function touch(mm: u32, va: u64, len: u64, access: u32): i64 {
  if (len == 0) return 0;
  const end = va + len;
  const r = user_access(mm, va, access);
  if (r < 0) return r;
  touch_byte(r, access);
  let p = (va & ~(<u64>PAGE_SIZE - 1)) + PAGE_SIZE;
  const root = mm_pgd(mm);
  while (p < end) {
    const table = psc_run_table(root, p);
    if (table != 0xffff_ffff) {
      const n = touch_run(mm, root, table, p, end, access);
      if (n < 0) return n;
      p = <u64>n;
      continue;
    }
    const q = user_access(mm, p, access);
    if (q < 0) return q;
    touch_byte(q, access);
    p += PAGE_SIZE;
  }
  return 0;
}

// The access itself at physical address `pa`: a device sees it; a write stores the byte.
@inline function touch_byte(pa: i64, access: u32): void {
  if (pa_is_device(<u64>pa)) mmio_touch(<u64>pa, access == 1); // MMIO: the device sees it
  else if (access == 1) store<u8>(gRamBase + <usize>pa, load<u8>(gRamBase + <usize>pa)); // the store itself
}

// Touch the pages from `p` (page aligned) up to `end` that lie in p's 2 MiB block, whose
// PTE table `table` the paging-structure cache holds (psc_run_table). Per page, as
// user_access: a TLB hit; else a leaf that is present, resident RAM and allows the access
// is walked (A, and D for a write, set as walk() sets them), counted and filled into the
// TLB here; any other leaf goes to user_access_miss (the walker and the fault path decide
// it), after which the run goes on only if the cache still holds the same table. Returns
// the next page to touch or a failure code (< 0). Three loops: reads and fetches walk in
// run_walk's call-free loop with their faults and other leaves out of it
// (touch_run_walks); a run whose faults take the direct paths (run_fault, when fault.ts
// run_fault_begin allows any) and a write without them run touch_run_loop's two copies.
function touch_run(mm: u32, root: u32, table: u32, p: u64, end: u64, access: u32): i64 {
  const blockEnd = (p & ~(<u64>PMD_SIZE - 1)) + PMD_SIZE;
  const stop = end < blockEnd ? end : blockEnd;
  const runs = run_fault_begin(mm, p, stop, access);
  // Reads and fetches (fault-around maps ahead of them) take run_walk. A run whose faults
  // take the direct paths, and writes (a fault per page without fault-around: a shared
  // file write), keep the single loop: a run_walk call per faulting page costs more than
  // it saves (callgrind: file_read_nofa 574 -> 664, file_shared_write 1,400 -> 1,502).
  if (gRunWalk && !runs && access != ACCESS_WRITE) return touch_run_walks(mm, root, table, p, stop, access);
  return runs ? touch_run_faults(mm, root, table, p, stop, access) : touch_run_plain(mm, root, table, p, stop, access);
}

// Issue 17 (t17e): the run's pages that need no fault and no walker decision go through a
// loop of their own that calls nothing (run_walk), so V8 keeps its values in registers;
// the pages that do (faults, other leaves) are taken here, out of that loop. Off: the
// single loop below (touch_run_loop), which tests compare (index.ts mmu_set_run_walk).
let gRunWalk = true;
export function set_run_walk(on: bool): void { gRunWalk = on; }

// What run_walk leaves for its caller: its TLB hits, misses and walks packed in one word
// (RC_HIT, RC_MISS, RC_WALK units: 20 bits each, a run is at most 1024 of each), and its
// last walked page (0: none since the last slow path) with that leaf's slot and value.
let rwCounts: u64 = 0;
let rwLastVa: u64 = 0;
let rwLastSlot: usize = 0;
let rwLastE: u64 = 0;
const RC_HIT: u64 = 1;
const RC_MISS: u64 = <u64>1 << 20;
const RC_WALK: u64 = <u64>1 << 40;

// The run's counts so far into the counters, and the root of its TLB fills recorded, before
// anything else can look (a slow path) or at the run's end.
function run_walk_flush(mm: u32, root: u32): void {
  run_fault_flush(mm);
  const c = rwCounts;
  run_counts(<u32>(c & 0xfffff), <u32>((c >> 20) & 0xfffff), <u32>(c >> 40));
  rwCounts = 0;
  if (rwLastVa != 0) tlb_note_root(mm, root);
}

// touch_run_loop with the fast pages in run_walk, for a read or fetch run without run
// faults (touch_run sends only those): the same TLB lookups, walks, A bits, fills, faults
// and counts, in the same order.
function touch_run_walks(mm: u32, root: u32, table: u32, p: u64, stop: u64, access: u32): i64 {
  let allowUp = psc_run_allow();
  let nxUp = psc_run_nx();
  let need = leaf_need(allowUp, false);
  rwCounts = 0;
  rwLastVa = 0;
  let retry = false; // page p was just faulted in: its retry walk comes first (no TLB lookup)
  for (;;) {
    const q = p;
    const slot = slot_addr(table, table_index(p, LEVEL_PTE));
    // No RAM while some frame is not resident: then every leaf goes to the walker below.
    const frames = all_frames_resident() ? gNrFrames : 0;
    const up = run_up(allowUp, nxUp);
    if (need == LEAF_DENIED) {
      // The upper levels deny the access: every leaf goes to the walker below.
    } else if (access == ACCESS_READ) {
      p = up == _PAGE_RW ? run_walk_read(mm, p, stop, slot, frames, retry) : run_walk_read_up(mm, p, stop, slot, frames, up, retry);
    } else {
      p = run_walk_exec(mm, p, stop, slot, frames, up, retry);
    }
    if (p >= stop) break;
    const stuck = retry && p == q; // the retry's walk is not the simple case: the walker decides it
    retry = false;
    const e = load<u64>(p == q ? slot : slot_addr(table, table_index(p, LEVEL_PTE)));
    // The counters so far go in before the slow path; the walk it does replaces the
    // run's last leaf as the walk's result (and fills the TLB with the same root).
    run_walk_flush(mm, root);
    rwLastVa = 0;
    const r = run_slow_page(mm, root, table, p, access, e, false, stuck);
    if (r < 0) return r;
    if (r == RUN_AGAIN) {
      allowUp = psc_run_allow();
      nxUp = psc_run_nx();
      need = leaf_need(allowUp, false);
      retry = true;
      continue;
    }
    p += PAGE_SIZE;
    // A fault may have changed or freed tables: the run goes on only while the
    // paging-structure cache still holds this table (the per-page path would use it).
    if (p >= stop || psc_run_table(root, p) != table) return <i64>p;
    allowUp = psc_run_allow();
    nxUp = psc_run_nx();
    need = leaf_need(allowUp, false);
  }
  run_walk_flush(mm, root);
  if (rwLastVa != 0) {
    const e = rwLastE;
    walk_note_user_leaf(rwLastVa, rwLastSlot, e, (allowUp & e & _PAGE_RW) != 0, ((nxUp | e) & _PAGE_NX) == 0);
  }
  return <i64>p;
}

// run_walk for each access, its upper levels' bits `up` either the common RW without NX (a
// constant: fewer live values) or given.
function run_walk_read(mm: u32, p: u64, stop: u64, slot: usize, frames: u32, retry: bool): u64 {
  return run_walk(mm, p, stop, slot, frames, _PAGE_RW, retry, ACCESS_READ);
}
function run_walk_read_up(mm: u32, p: u64, stop: u64, slot: usize, frames: u32, up: u64, retry: bool): u64 {
  return run_walk(mm, p, stop, slot, frames, up, retry, ACCESS_READ);
}
function run_walk_exec(mm: u32, p: u64, stop: u64, slot: usize, frames: u32, up: u64, retry: bool): u64 {
  return run_walk(mm, p, stop, slot, frames, up, retry, ACCESS_EXEC);
}

// The upper levels' RW (writable through them) and NX (not executable) bits in one word.
@inline function run_up(allowUp: u64, nxUp: u64): u64 { return (allowUp & _PAGE_RW) | (nxUp & _PAGE_NX); }

// From page `p` (its leaf at `slot`) towards `stop`: TLB hits, and leaves the run walks
// alone (walk_user_psc's: present, user, writable for a write, executable for a fetch,
// below `frames`, which also rules out the reserved bits above it), A/D set and filled
// into the TLB. The upper levels allow the access (leaf_need); `up`: run_up; `retry`:
// page p's walk is the retry after its fault (no TLB lookup, no miss). Returns the first
// page that needs more (or stop); its counts and last leaf go to rwCounts / rwLast*.
// Few values live across the loop (V8 keeps them in registers), the tag compared as bits
// (a tag is a key or -1.0: bit equality is f64 equality), the residency test is the
// caller's frame bound.
@inline function run_walk(mm: u32, p: u64, stop: u64, slot: usize, frames: u32, up: u64, retry: bool,
                          access: u32): u64 {
  const p0 = p;
  let key = tlb_key(mm, p);
  // The leaf slot of page q is tableBase + (q >> 9 & 0xff8) (wrapping u32 arithmetic).
  const tableBase = slot - (<usize>(<u32>p >> 9) & 0xff8);
  if (retry) {
    const e = load<u64>(slot);
    if (run_leaf_bad(e, frames, up, access)) return p;
    run_walk_page(p, slot, key, e, up, access);
    p += PAGE_SIZE; key += <f64>PAGE_SIZE;
  }
  // Only a hit costs bookkeeping: the walks are the other pages, the last walked page is
  // found from the last hit and the one walked before it.
  let hits: u32 = 0;
  let lastHit: u64 = 0;
  let walkBeforeHit: u64 = 0;
  const tagOff = <usize>access << 3;
  const need: u64 = _PAGE_PRESENT | _PAGE_USER | (access == ACCESS_WRITE ? _PAGE_RW : 0);
  while (p < stop) {
    // The walks, in a loop of their own (the hit's bookkeeping stays out of its registers).
    let hit = false;
    do {
      const te = slotAddr(p);
      if (load<u64>(te + tagOff) == reinterpret<u64>(key)) { hit = true; break; }
      const ps = tableBase + (<usize>(<u32>p >> 9) & 0xff8);
      const e = load<u64>(ps);
      // (three tests, not one boolean: V8 would materialize it)
      if ((e & need) != need) break;
      if ((e << 12) >> 24 >= <u64>frames) break;
      if (access == ACCESS_EXEC && (<i64>e < 0 || (up & _PAGE_NX) != 0)) break;
      run_walk_page(p, ps, key, e, up, access);
      p += PAGE_SIZE; key += <f64>PAGE_SIZE;
    } while (p < stop);
    if (!hit) break; // the run's end, or a leaf for the caller
    hits++;
    if (p != p0 && p - PAGE_SIZE != lastHit) walkBeforeHit = p - PAGE_SIZE;
    lastHit = p;
    if (access == ACCESS_WRITE) {
      const a = gRamBase + (<usize>load<u32>(slotAddr(p), TLB_PFN) << PAGE_SHIFT);
      store<u8>(a, load<u8>(a));
    }
    p += PAGE_SIZE; key += <f64>PAGE_SIZE;
  }
  const walks = <u32>((p - p0) >> PAGE_SHIFT) - hits;
  if (walks != 0) {
    // The retry's walk (the first one) follows its fault: no TLB lookup, no miss.
    rwCounts += <u64>hits * RC_HIT + <u64>(walks - <u32>retry) * RC_MISS + <u64>walks * RC_WALK;
    const last = p - PAGE_SIZE != lastHit ? p - PAGE_SIZE : walkBeforeHit;
    rwLastVa = last;
    rwLastSlot = tableBase + (<usize>(<u32>last >> 9) & 0xff8);
    rwLastE = load<u64>(rwLastSlot);
  } else {
    rwCounts += <u64>hits * RC_HIT;
  }
  return p;
}

// A leaf run_walk does not walk alone (see there): not present, not user, not writable for
// a write, its frame (bits 12 to 51) not below `frames`, not executable for a fetch (NX is
// bit 63).
@inline function run_leaf_bad(e: u64, frames: u32, up: u64, access: u32): bool {
  const need: u64 = _PAGE_PRESENT | _PAGE_USER | (access == ACCESS_WRITE ? _PAGE_RW : 0);
  return (e & need) != need || (e << 12) >> 24 >= <u64>frames ||
    (access == ACCESS_EXEC && (<i64>e < 0 || (up & _PAGE_NX) != 0));
}

// A walked page of run_walk: A (and D for a write) set, the TLB filled, a write's store.
@inline function run_walk_page(p: u64, slot: usize, key: f64, e: u64, up: u64, access: u32): void {
  const set: u64 = access == ACCESS_WRITE ? _PAGE_ACCESSED | _PAGE_DIRTY : _PAGE_ACCESSED;
  if ((e & set) != set) { e |= set; store<u64>(slot, e); }
  const pfn = <u32>((e << 12) >> 24);
  // Writable through the TLB: RW at every level and the leaf dirty (bit 6 shifted onto bit 1);
  // executable: NX (bit 63) clear at every level.
  tlb_fill_key(p, key, pfn, (e & (e >> 5) & _PAGE_RW) != 0 && (up & _PAGE_RW) != 0,
    access == ACCESS_EXEC || (<i64>e >= 0 && (up & _PAGE_NX) == 0));
  if (access == ACCESS_WRITE) {
    const a = gRamBase + (<usize>pfn << PAGE_SHIFT);
    store<u8>(a, load<u8>(a));
  }
}

// The single loop (also with mmu_set_run_walk(0)): for the run's faults, or without them.
function touch_run_faults(mm: u32, root: u32, table: u32, p: u64, stop: u64, access: u32): i64 {
  return touch_run_loop(mm, root, table, p, stop, access, true);
}
function touch_run_plain(mm: u32, root: u32, table: u32, p: u64, stop: u64, access: u32): i64 {
  return touch_run_loop(mm, root, table, p, stop, access, false);
}
// The loop over [p, stop), `stop` within p's 2 MiB block.
@inline function touch_run_loop(mm: u32, root: u32, table: u32, p: u64, stop: u64, access: u32, runs: bool): i64 {
  let allowUp = psc_run_allow();
  let nxUp = psc_run_nx();
  const write = access == ACCESS_WRITE;
  const set: u64 = write ? _PAGE_ACCESSED | _PAGE_DIRTY : _PAGE_ACCESSED;
  const leafMask: u64 = _PAGE_PRESENT | _PAGE_USER | PHYS_RSVD_BITS | (write ? _PAGE_RW : 0);
  let need = leaf_need(allowUp, write);
  const ram = gRamBase;
  const frames = gNrFrames;
  let slot = slot_addr(table, table_index(p, LEVEL_PTE));
  let lastSlot: usize = 0;
  let lastE: u64 = 0;
  let lastVa: u64 = 0;
  // The run's statistics, added once at its end (the same sums: the counters are exact).
  let hits: u32 = 0;
  let misses: u32 = 0;
  let walks: u32 = 0;
  // tlb_lookup with the key kept as a running f64 (page addresses < 2^48 add exactly).
  let key = tlb_key(mm, p);
  const tagOff = <usize>access << 3;
  let faulted = false; // page p was just faulted in: this is the retry's walk (no TLB lookup)
  while (p < stop) {
    const te = slotAddr(p);
    if (!faulted && load<f64>(te + tagOff) == key) {
      hits++;
      if (write) {
        const a = ram + (<usize>load<u32>(te, TLB_PFN) << PAGE_SHIFT);
        store<u8>(a, load<u8>(a));
      }
      p += PAGE_SIZE; slot += 8; key += <f64>PAGE_SIZE;
      continue;
    }
    let e = load<u64>(slot);
    let pfn = <u32>((e & 0x000f_ffff_ffff_f000) >> PAGE_SHIFT);
    // walk_user_psc's conditions for a leaf it decides alone (SDM 4.10.3: the cached PDE):
    // present, no reserved bit, user (and writable for a write) at every level, executable
    // for a fetch, resident RAM. The leaf's bits in one test against leaf_need.
    if ((e & leafMask) != need || (access == ACCESS_EXEC && ((nxUp | e) & _PAGE_NX) != 0) ||
        pfn >= frames || page_residency(pfn) != RES_RESIDENT) {
      const wp = e != 0 && write && (e & (_PAGE_PRESENT | PHYS_RSVD_BITS)) == _PAGE_PRESENT &&
        (allowUp & e & _PAGE_USER) != 0 && (allowUp & e & _PAGE_RW) == 0;
      let ne: u64 = 0;
      if (runs && !faulted && (e == 0 || wp)) {
        // walk_user_psc's not-present or write-protect fault, taken in the run when its
        // VMA's direct path takes it: the same TLB miss and walk, the same fault as
        // do_user_addr_fault's, the VMA looked up once per run; the retry's walk (below)
        // reads the PTE the fault installed (the fault changed no upper level).
        ne = run_fault(mm, p, slot, e, access);
      }
      if (ne != 0) {
        misses++; // the fault's walk
        walks++;
        faulted = true;
        e = ne;
        pfn = <u32>((e & 0x000f_ffff_ffff_f000) >> PAGE_SHIFT);
        // The retry's walk below, unless the new leaf needs the walker's checks.
        if ((e & leafMask) != need || pfn >= frames || page_residency(pfn) != RES_RESIDENT) continue;
      } else {
        // The counters so far go in before the slow path; the walk it does replaces the
        // run's last leaf as the walk's result (and fills the TLB with the same root).
        run_fault_flush(mm);
        run_counts(hits, misses, walks);
        if (lastSlot != 0) tlb_note_root(mm, root);
        hits = 0;
        misses = 0;
        walks = 0;
        lastSlot = 0;
        const r = run_slow_page(mm, root, table, p, access, e, wp, faulted);
        if (r < 0) return r;
        if (r == RUN_AGAIN) {
          allowUp = psc_run_allow();
          nxUp = psc_run_nx();
          need = leaf_need(allowUp, write);
          faulted = true;
          continue;
        }
        p += PAGE_SIZE; slot += 8; key += <f64>PAGE_SIZE;
        faulted = false;
        // A fault may have changed or freed tables: the run goes on only while the
        // paging-structure cache still holds this table (the per-page path would use it).
        if (p >= stop || psc_run_table(root, p) != table) return <i64>p;
        allowUp = psc_run_allow();
        nxUp = psc_run_nx();
        need = leaf_need(allowUp, write);
        continue;
      }
    }
    if (!faulted) misses++; // a retry's walk follows its fault: no TLB lookup, no miss
    walks++;
    if ((e & set) != set) { e |= set; store<u64>(slot, e); }
    tlb_fill_key(p, key, pfn, (allowUp & e & _PAGE_RW) != 0 && (e & _PAGE_DIRTY) != 0, ((nxUp | e) & _PAGE_NX) == 0);
    if (write) {
      const a = ram + (<usize>pfn << PAGE_SHIFT);
      store<u8>(a, load<u8>(a));
    }
    lastSlot = slot;
    lastE = e;
    lastVa = p;
    p += PAGE_SIZE; slot += 8; key += <f64>PAGE_SIZE;
    faulted = false;
  }
  touch_run_end(mm, root, hits, misses, walks, lastVa, lastSlot, lastE, allowUp, nxUp);
  return <i64>p;
}

// A run's page `p` (leaf `e`; `wp`: a write to a user leaf without RW) that the run does
// not decide alone, after the run's counts went in: `retried` (the retry's walk after a
// fault is not the simple case) goes to the walker; a none or write-protected leaf is
// walk_user_psc's not-present or write-protect fault (a miss and a walk counted), then
// do_user_addr_fault; any other leaf is a TLB miss the walker and the fault path decide.
// Returns a failure code (< 0), RUN_AGAIN when the fault left `table` in the
// paging-structure cache (the caller re-reads the upper levels and walks p again in the
// run), or RUN_DONE with the access made.
const RUN_DONE: i64 = 0;
const RUN_AGAIN: i64 = 1;
function run_slow_page(mm: u32, root: u32, table: u32, p: u64, access: u32, e: u64, wp: bool, retried: bool): i64 {
  let r: i64;
  if (retried) {
    r = user_access_fault(mm, root, p, access, user_walk(root, p, access), 1);
  } else if (e == 0 || wp) {
    count(ST_TLB_MISS);
    count(ST_WALK);
    const s = do_user_addr_fault(mm, p, access, <u32>(e == 0 ? user_pf_not_present(access) : user_pf_prot(access)));
    if (s > 0) return -<i64>s;
    if (s < 0) return <i64>s - 100;
    run_fault_drop(); // the general path may have changed the VMA: look it up again
    if (psc_run_table(root, p) == table) return RUN_AGAIN;
    r = user_access_fault(mm, root, p, access, user_walk(root, p, access), 1);
  } else {
    r = user_access_miss(mm, p, access);
  }
  if (r < 0) return r;
  run_fault_drop();
  touch_byte(r, access);
  return RUN_DONE;
}

// The leaf bits (of present, user, writable and the reserved bits) a run's page must show
// to be walked in the run: present and user, writable for a write, when the upper levels
// (`allowUp`) allow user access (and writing, for a write); else a value no leaf matches.
@inline function leaf_need(allowUp: u64, write: bool): u64 {
  const need: u64 = _PAGE_PRESENT | _PAGE_USER | (write ? _PAGE_RW : 0);
  return (allowUp & (_PAGE_USER | _PAGE_RW) & need) == (need & (_PAGE_USER | _PAGE_RW)) ? need : LEAF_DENIED;
}
const LEAF_DENIED: u64 = 0xffff_ffff_ffff_ffff;

// A run's TLB hits, misses and walks, added to the counters in one go.
@inline function run_counts(hits: u32, misses: u32, walks: u32): void {
  if (hits != 0) count_n(ST_TLB_HIT, <f64>hits);
  if (misses != 0) count_n(ST_TLB_MISS, <f64>misses);
  if (walks != 0) count_n(ST_WALK, <f64>walks);
}

// What a run leaves behind, as the per-page path would: its TLB hits, misses and walks
// counted, the root of its TLB fills recorded, its last walked leaf (if no slow path walked
// after it) as the walk's result.
@inline function touch_run_end(mm: u32, root: u32, hits: u32, misses: u32, walks: u32, lastVa: u64, lastSlot: usize,
                               lastE: u64, allowUp: u64, nxUp: u64): void {
  run_fault_flush(mm);
  run_counts(hits, misses, walks);
  if (lastSlot == 0) return;
  tlb_note_root(mm, root);
  walk_note_user_leaf(lastVa, lastSlot, lastE, (allowUp & lastE & _PAGE_RW) != 0, ((nxUp | lastE) & _PAGE_NX) == 0);
}

// Copy `n` bytes between linear memory at `buf` and user memory at `va`.
// toUser: write into the address space; else read from it. Returns bytes done or failure.
export function copy_user(mm: u32, va: u64, buf: usize, n: u32, toUser: bool): i64 {
  let done: u32 = 0;
  while (done < n) {
    const a = va + done;
    const r = user_access(mm, a, toUser ? 1 : 0);
    if (r < 0) return r;
    const inPage = PAGE_SIZE - <u32>(a & (PAGE_SIZE - 1));
    const chunk = n - done < inPage ? n - done : inPage;
    if (pa_is_device(<u64>r)) { mmio_access(<u64>r, buf + done, chunk, toUser); done += chunk; continue; }
    const phys = gRamBase + <usize>r;
    if (toUser) memory.copy(phys, buf + done, chunk);
    else memory.copy(buf + done, phys, chunk);
    done += chunk;
  }
  return <i64>done;
}

