// Per-access loads, stores and instruction fetches for interpreters written in
// AssemblyScript (issue 16): include this file in a module compiled together with the core
// (your entry re-exports "wasm-mmu/assembly/index" and imports from
// "wasm-mmu/assembly/fastpath"; README "For emulator authors"). Not part of the core's own ABI: nothing here is exported by
// assembly/index.ts, and the core never calls it.
//
// A hit is inlined into the caller: for a page in [4096, 2^31), the slot of the TLB's int32
// side table, one integer compare that also tests the page crossing, one add of the
// slot's addend (QEMU's shape), the access; for any other page the f64 tags after it, as
// before: the slot, one f64 tag compare, the page-crossing test, the addend (layout:
// assembly/tlb.ts). A miss, an access that crosses a page, or device memory calls one
// out-of-line function that runs the CPU's path
// (uaccess.ts user_access: TLB, walk, the full fault path, TLB fill) and completes the
// access. A fault does not trap: loads return 0, stores write nothing, and mmu_fault()
// returns the negative code mm_translate would (-11 SIGSEGV, -7 SIGBUS, -101 out of memory,
// -102 the backend must wait, -22 the address space is not alive) until mmu_fault_clear();
// the host turns it into SegmentationFault / BusError with Mmu.faultError(code). The
// faulting address is mmu_fault_va(), the signal's details fault.ts's sigCode / sigAddr.

import { gRamBase, PAGE_SIZE } from "./config";
import { gTlbBase, gTlbMask, gTlbGen, gTlbSide, gTlbSideMask, TLB_ENTRY_SHIFT, TLB_ADDEND, TLB_SIDE_SHIFT, TLB_SIDE_ADDEND,
  MAX_ASID } from "./tlb";
import { user_access } from "./uaccess";
import { pa_is_device, mmio_access } from "./mmio";
import { mm_alive } from "./mm";

const ACC_READ: u32 = 0, ACC_WRITE: u32 = 1, ACC_EXEC: u32 = 2;
export const FP_BAD_MM: i32 = -22;

let fpFault: i32 = 0;
let fpFaultVa: u64 = 0;
const fpScratch: usize = memory.data(8);
const fpJunk: usize = memory.data(8); // where a store lands that must not reach guest memory

/** 0, or the negative code of the first fault since mmu_fault_clear(). */
@inline export function mmu_fault(): i32 { return fpFault; }
/** The address of that fault. */
@inline export function mmu_fault_va(): u64 { return fpFaultVa; }
@inline export function mmu_fault_clear(): void { fpFault = 0; }

// The side table's hit (issue 17): the linear address of [va, va + size) for `acc` (0
// read, 1 write, 2 exec: the user tags) when its page is in [4096, 2^31), else 0. The key
// of the last byte compared in the slot of the first: a page crossing, or any va from 2^31
// up, cannot match (tlb.ts); the tag is loaded sign-extended, so the empty tag matches no
// key of any ASID.
@inline function side_hit(asid: u32, va: u64, acc: u32, size: u32): usize {
  const s = gTlbSide + (<usize>(va >> (12 - TLB_SIDE_SHIFT)) & gTlbSideMask);
  const key = ((va + <u64>(size - 1)) & ~(<u64>4095)) | <u64>(asid & (MAX_ASID - 1));
  if (i64.load32_s(s + (<usize>acc << 2)) == <i64>key) return <usize>(<u32>va + load<u32>(s, TLB_SIDE_ADDEND));
  return 0;
}
// The f64 tags' hit (any page, tlb.ts): the same answer, or 0. The key is below 2^48: a
// signed conversion is exact (and one instruction on x86-64).
@inline function tag_hit(asid: u32, va: u64, acc: u32, size: u32): usize {
  const e = gTlbBase + ((<usize>(va >> 12) & gTlbMask) << TLB_ENTRY_SHIFT);
  if (load<f64>(e + (<usize>acc << 3)) == <f64><i64>((va & ~(<u64>4095)) | <u64>(asid & (MAX_ASID - 1)))) {
    if ((<u32>va & 4095) <= PAGE_SIZE - size) return <usize>(<u32>va + load<u32>(e, TLB_ADDEND));
  }
  return 0;
}

// The linear address of [va, va + size) for `acc`. A hit is side_hit (or tag_hit); anything
// else calls the slow path for `acc` (a constant at every call site, folded after
// inlining), which also returns an address to access, so the caller's access is one load
// or store after the merge (the loaded value is not a join of two paths, which keeps the
// engine's registers free). `v`: a store's value.
@inline function at(asid: u32, va: u64, acc: u32, size: u32, v: u64): usize {
  const p = side_hit(asid, va, acc, size);
  if (p != 0) return p;
  const q = tag_hit(asid, va, acc, size);
  if (q != 0) return q;
  if (acc == ACC_WRITE) return fp_slow_store(asid, va, v, size);
  return fp_slow_load(asid, va, size, acc);
}

export const MMU_READ: u32 = 0, MMU_WRITE: u32 = 1, MMU_EXEC: u32 = 2;
/** Or'ed into mmu_tlb_addr's access: also hit pages outside [4096, 2^31) (issue 17). */
export const MMU_HIGH: u32 = 4;

/** The hit alone, for a loop that must not call out (issue 16): the linear address of
 *  [va, va + size) when the TLB holds it for `access` (MMU_READ / MMU_WRITE / MMU_EXEC, a
 *  constant) and it does not cross a page, else 0 (never a RAM address). Never faults: on
 *  0, leave the loop and make the access with mmu_load* / mmu_store* / mmu_fetch* (which
 *  fault it in), then come back. A loop whose only memory path is this has no call, so the
 *  engine keeps its values in registers, and no core code runs inside it: nothing it read
 *  from the TLB can go stale before it leaves.
 *  Which pages (issue 17): the TLB's int32 side table, pages in [4096, 2^31) — a 32-bit
 *  guest's lower 2 GiB — one integer compare that is also the page-crossing test; any
 *  other page gives 0 (mmu_load* and friends still hit it without calling the core).
 *  `access | MMU_HIGH` also tries the f64 tags, which hold every page: the old hit, and
 *  more code and registers in the loop (bench: 26 → 34 machine instructions a load). */
@inline export function mmu_tlb_addr(asid: u32, va: u64, access: u32, size: u32): usize {
  const p = side_hit(asid, va, access & 3, size);
  if ((access & MMU_HIGH) == 0 || p != 0) return p;
  return tag_hit(asid, va, access & 3, size);
}

/** The TLB generation: it changes on every TLB flush (assembly/tlb.ts). A translation
 *  taken from mmu_exec_page stays exact while it is unchanged. */
@inline export function mmu_tlb_gen(): u32 { return gTlbGen; }

/** For an instruction-page cache (QEMU's translation-block lookup, issue 16): after a
 *  successful mmu_fetch* at `va`, the addend of its page for instruction fetches, so that
 *  an aligned fetch at any va2 of the same page is load<u32>(<usize>(<u32>va2 + addend))
 *  while mmu_tlb_gen() is unchanged; -1 if the page cannot be cached (device memory, or
 *  the exec tag is absent). Never faults. */
export function mmu_exec_page(asid: u32, va: u64): i64 {
  const e = gTlbBase + ((<usize>(va >> 12) & gTlbMask) << TLB_ENTRY_SHIFT);
  if (load<f64>(e, 16) != <f64><i64>((va & ~(<u64>4095)) | <u64>(asid & (MAX_ASID - 1)))) return -1;
  return <i64>load<u32>(e, TLB_ADDEND);
}

@inline export function mmu_load8(asid: u32, va: u64): u32 {
  return <u32>load<u8>(at(asid, va, ACC_READ, 1, 0));
}
@inline export function mmu_load16(asid: u32, va: u64): u32 {
  return <u32>load<u16>(at(asid, va, ACC_READ, 2, 0));
}
@inline export function mmu_load32(asid: u32, va: u64): u32 {
  return load<u32>(at(asid, va, ACC_READ, 4, 0));
}
@inline export function mmu_load64(asid: u32, va: u64): u64 {
  return load<u64>(at(asid, va, ACC_READ, 8, 0));
}
@inline export function mmu_fetch16(asid: u32, va: u64): u32 {
  return <u32>load<u16>(at(asid, va, ACC_EXEC, 2, 0));
}
@inline export function mmu_fetch32(asid: u32, va: u64): u32 {
  return load<u32>(at(asid, va, ACC_EXEC, 4, 0));
}
@inline export function mmu_store8(asid: u32, va: u64, v: u32): void {
  store<u8>(at(asid, va, ACC_WRITE, 1, <u64>v), <u8>v);
}
@inline export function mmu_store16(asid: u32, va: u64, v: u32): void {
  store<u16>(at(asid, va, ACC_WRITE, 2, <u64>v), <u16>v);
}
@inline export function mmu_store32(asid: u32, va: u64, v: u32): void {
  store<u32>(at(asid, va, ACC_WRITE, 4, <u64>v), v);
}
@inline export function mmu_store64(asid: u32, va: u64, v: u64): void {
  store<u64>(at(asid, va, ACC_WRITE, 8, v), v);
}

// The CPU's path for one page: the physical address of va, faulting it in; -1 after
// recording a fault.
function fp_translate(asid: u32, va: u64, access: u32): i64 {
  if (fpFault != 0) return -1; // a fault is pending: do nothing until the host has seen it
  if (asid >= MAX_ASID || !mm_alive(asid)) { fpFault = FP_BAD_MM; fpFaultVa = va; return -1; }
  const r = user_access(asid, va, access);
  if (r < 0) { fpFault = <i32>r; fpFaultVa = va; return -1; }
  return r;
}

// A load of `size` bytes (little-endian) on a miss, a crossing or device memory: returns
// the address the caller loads from — the byte's linear address in RAM, or fpScratch
// holding the value (a crossing, device memory; 0 after a fault).
function fp_slow_load(asid: u32, va: u64, size: u32, access: u32): usize {
  if ((<u32>va & 4095) + size > PAGE_SIZE) {
    // Crossing a page: byte by byte, the lower page first (each byte through the TLB).
    let v: u64 = 0;
    for (let k: u32 = 0; k < size; k++) {
      const byte = <u64>load<u8>(fp_slow_load(asid, va + k, 1, access));
      if (fpFault != 0) { store<u64>(fpScratch, 0); return fpScratch; }
      v |= byte << (<u64>k << 3);
    }
    store<u64>(fpScratch, v);
    return fpScratch;
  }
  const pa = fp_translate(asid, va, access);
  if (pa < 0) { store<u64>(fpScratch, 0); return fpScratch; }
  if (pa_is_device(<u64>pa)) { mmio_access(<u64>pa, fpScratch, size, false); return fpScratch; }
  return gRamBase + <usize>pa;
}

// A store of `size` bytes on a miss, a crossing or device memory: returns the address the
// caller stores to — the linear address in RAM, or fpJunk when this function did the
// store itself (a crossing, device memory) or nothing may be written (a fault). A
// crossing store is one instruction: both pages must take the write before any byte is.
function fp_slow_store(asid: u32, va: u64, v: u64, size: u32): usize {
  if ((<u32>va & 4095) + size > PAGE_SIZE) {
    if (fp_translate(asid, va, ACC_WRITE) < 0 || fp_translate(asid, va + size - 1, ACC_WRITE) < 0) return fpJunk;
    for (let k: u32 = 0; k < size; k++) {
      const byte = v >> (<u64>k << 3);
      store<u8>(fp_slow_store(asid, va + k, byte, 1), <u8>byte);
      if (fpFault != 0) return fpJunk;
    }
    return fpJunk;
  }
  const pa = fp_translate(asid, va, ACC_WRITE);
  if (pa < 0) return fpJunk;
  if (pa_is_device(<u64>pa)) {
    store<u64>(fpScratch, v);
    mmio_access(<u64>pa, fpScratch, size, true);
    return fpJunk;
  }
  return gRamBase + <usize>pa;
}
