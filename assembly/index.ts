// The exported ABI: the only file with exports. Numbers only cross the boundary:
// addresses and lengths as f64 (exact to 2^53), PFNs and ids as i32, results as Linux's
// (0 / -errno, VM_FAULT_* masks, or a value >= 0).

import { MAX_RAM_BYTES, gRamBase, gNrFrames, gMemmapBase, gZeroPfn, gBooted, EINVAL, ENOMEM,
  setFaultAroundBytes, setPrefaultOld, setUseZeroPage, setHasPteSpecial, gFaultAroundPages,
  PAGE_SHIFT } from "./config";
import { boot, alloc_pages, free_pages, nr_free_frames, NO_PFN, phys_check } from "./phys";
import { nr_pgtables } from "./pgtable";
import { tlb_init, gTlbBase, gTlbEntries, tlb_flush_page, tlb_flush_range, tlb_flush_asid,
  tlb_flush_all, MAX_ASID } from "./tlb";
import { walk, translate, walkPa, walkLevel, walkWritable, walkUser, walkExec, walkDirty,
  tlb_check } from "./mmu";
import { stat_value, inv_reset, inv_count, inv_field } from "./stats";

export { inv_field };

const VA_LIMIT: f64 = 281474976710656.0; // 2^48

@inline function vaOk(va: f64): bool { return va >= 0 && va < VA_LIMIT && va == Math.floor(va); }

// ---- machine ----
export function mmu_boot(ramBytes: f64, tlbEntries: i32): i32 {
  if (!(ramBytes > 0) || ramBytes > <f64>MAX_RAM_BYTES) return -EINVAL;
  if (tlbEntries < 1 || tlbEntries > (1 << 20) || (tlbEntries & (tlbEntries - 1)) != 0) return -EINVAL;
  const r = boot(<u64>ramBytes);
  if (r != 0) return r;
  tlb_init(<u32>tlbEntries);
  return 0;
}
export function mmu_ram_base(): usize { return gRamBase; }
export function mmu_nr_frames(): i32 { return <i32>gNrFrames; }
export function mmu_memmap_base(): usize { return gMemmapBase; }
export function mmu_zero_pfn(): i32 { return <i32>gZeroPfn; }
export function mmu_booted(): i32 { return gBooted ? 1 : 0; }
export function mmu_tlb_base(): usize { return gTlbBase; }
export function mmu_tlb_entries(): i32 { return <i32>gTlbEntries; }
export function mmu_free_frames(): i32 { return <i32>nr_free_frames(); }
export function mmu_nr_pgtables(): i32 { return <i32>nr_pgtables(); }
export function mmu_stat(id: i32): f64 { return stat_value(id); }

export function mmu_set_fault_around_bytes(bytes: i32): i32 {
  if (bytes < 4096 || bytes > (4096 << 9)) return -EINVAL;
  setFaultAroundBytes(<u32>bytes);
  return <i32>(gFaultAroundPages << PAGE_SHIFT);
}
export function mmu_set_prefault_old(on: i32): void { setPrefaultOld(on != 0); }
export function mmu_set_zero_page(on: i32): void { setUseZeroPage(on != 0); }
export function mmu_set_pte_special(on: i32): void { setHasPteSpecial(on != 0); }

// ---- physical frames ----
export function phys_alloc(order: i32): i32 {
  if (order < 0 || order > 9) return -EINVAL;
  const pfn = alloc_pages(<u32>order);
  return pfn == NO_PFN ? -ENOMEM : <i32>pfn;
}
export function phys_free(pfn: i32, order: i32): i32 {
  if (pfn < 0 || order < 0) return -EINVAL;
  return free_pages(<u32>pfn, <u32>order);
}

// ---- the hardware walker and TLB, for emulators that build their own tables ----
export function hw_walk(root: i32, va: f64, access: i32, mode: i32): i32 {
  if (!vaOk(va) || <u32>access > 2 || root < 0) return -2;
  return walk(<u32>root, <u64>va, <u32>access, <u32>mode);
}
export function hw_walk_pa(): f64 { return <f64>walkPa; }
export function hw_walk_level(): i32 { return <i32>walkLevel; }
export function hw_walk_perms(): i32 {
  return (walkWritable ? 1 : 0) | (walkUser ? 2 : 0) | (walkExec ? 4 : 0) | (walkDirty ? 8 : 0);
}
// Physical address, or -(1 + #PF error code); -1e9 for bad arguments.
export function hw_translate(asid: i32, root: i32, va: f64, access: i32, mode: i32): f64 {
  if (!vaOk(va) || <u32>access > 2 || root < 0 || <u32>asid >= MAX_ASID) return -1e9;
  return <f64>translate(<u32>asid, <u32>root, <u64>va, <u32>access, <u32>mode);
}
export function hw_tlb_flush_page(asid: i32, va: f64): void {
  if (vaOk(va)) tlb_flush_page(<u32>asid, <u64>va);
}
export function hw_tlb_flush_range(asid: i32, va: f64, npages: f64): void {
  if (vaOk(va) && npages >= 0) tlb_flush_range(<u32>asid, <u64>va, <u64>npages);
}
export function hw_tlb_flush_asid(asid: i32): void { tlb_flush_asid(<u32>asid); }
export function hw_tlb_flush_all(): void { tlb_flush_all(); }

// ---- invariants ----
export function check_invariants(): i32 {
  inv_reset();
  if (!gBooted) return 0;
  phys_check();
  tlb_check();
  return inv_count();
}

// ---- benchmark references and bulk loops (one call, the loop inside Wasm) ----
let benchScratch: usize = 0;
function scratch(): usize {
  if (benchScratch == 0) benchScratch = (heap.alloc(8192 + 64) + 63) & ~(<usize>63);
  return benchScratch;
}
// memory.fill of one 4 KiB page, `n` times: the physical reference for a zeroing fault.
export function bench_fill(n: i32): i32 {
  const p = scratch();
  for (let i = 0; i < n; i++) memory.fill(p, <u8>i, 4096);
  return load<u8>(p);
}
// memory.copy of one 4 KiB page, `n` times: the reference for a COW copy.
export function bench_copy(n: i32): i32 {
  const p = scratch();
  for (let i = 0; i < n; i++) memory.copy(p + 4096, p, 4096);
  return load<u8>(p + 4096);
}
// `n` TLB translations of `pages` consecutive pages from `va`, round robin, in Wasm.
export function hw_translate_loop(asid: i32, root: i32, va: f64, pages: i32, n: i32, access: i32, mode: i32): f64 {
  if (!vaOk(va) || pages < 1 || <u32>access > 2) return -1;
  let sum: i64 = 0;
  let p: i32 = 0;
  const base = <u64>va;
  for (let i = 0; i < n; i++) {
    sum += translate(<u32>asid, <u32>root, base + (<u64>p << PAGE_SHIFT), <u32>access, <u32>mode);
    if (++p == pages) p = 0;
  }
  return <f64>sum;
}
// `n` hardware walks of `pages` consecutive pages (no TLB): the cost of a miss.
export function hw_walk_loop(root: i32, va: f64, pages: i32, n: i32, access: i32, mode: i32): i32 {
  if (!vaOk(va) || pages < 1 || <u32>access > 2) return -2;
  let bad = 0;
  let p: i32 = 0;
  const base = <u64>va;
  for (let i = 0; i < n; i++) {
    if (walk(<u32>root, base + (<u64>p << PAGE_SHIFT), <u32>access, <u32>mode) != -1) bad++;
    if (++p == pages) p = 0;
  }
  return bad;
}
