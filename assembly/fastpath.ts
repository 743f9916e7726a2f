// Per-access loads, stores and instruction fetches for interpreters written in
// AssemblyScript (issue 16): include this file in a module compiled together with the core
// (your entry re-exports "wasm-mmu/assembly/index" and imports from
// "wasm-mmu/assembly/fastpath"; README "For emulator authors"). Not part of the core's own ABI: nothing here is exported by
// assembly/index.ts, and the core never calls it.
//
// A hit is inlined into the caller: the TLB slot, one f64 tag compare, one load of the
// frame number, the access (layout: assembly/tlb.ts). A miss, an access that crosses a
// page, or device memory calls one out-of-line function that runs the CPU's path
// (uaccess.ts user_access: TLB, walk, the full fault path, TLB fill) and completes the
// access. A fault does not trap: loads return 0, stores write nothing, and mmu_fault()
// returns the negative code mm_translate would (-11 SIGSEGV, -7 SIGBUS, -101 out of memory,
// -102 the backend must wait, -22 the address space is not alive) until mmu_fault_clear();
// the host turns it into SegmentationFault / BusError with Mmu.faultError(code). The
// faulting address is mmu_fault_va(), the signal's details fault.ts's sigCode / sigAddr.

import { gRamBase, PAGE_SIZE } from "./config";
import { gTlbBase, gTlbMask, TLB_ENTRY_SHIFT, TLB_PFN, MAX_ASID } from "./tlb";
import { user_access } from "./uaccess";
import { pa_is_device, mmio_access } from "./mmio";
import { mm_alive } from "./mm";

const ACC_READ: u32 = 0, ACC_WRITE: u32 = 1, ACC_EXEC: u32 = 2;
export const FP_BAD_MM: i32 = -22;

let fpFault: i32 = 0;
let fpFaultVa: u64 = 0;
const fpScratch: usize = memory.data(8);

/** 0, or the negative code of the first fault since mmu_fault_clear(). */
@inline export function mmu_fault(): i32 { return fpFault; }
/** The address of that fault. */
@inline export function mmu_fault_va(): u64 { return fpFaultVa; }
@inline export function mmu_fault_clear(): void { fpFault = 0; }

// The linear address of [va, va + size) for `tag` (0 read, 8 write, 16 exec: the user
// tags), or 0 on a miss or a page crossing.
@inline function hit(asid: u32, va: u64, tag: usize, size: u32): usize {
  const e = gTlbBase + ((<usize>(va >> 12) & gTlbMask) << TLB_ENTRY_SHIFT);
  const off = <u32>va & 4095;
  // The key is below 2^48: a signed conversion is exact (and one instruction on x86-64).
  if (load<f64>(e + tag) != <f64><i64>((va & ~(<u64>4095)) | <u64>(asid & (MAX_ASID - 1))) || off > PAGE_SIZE - size) return 0;
  return gRamBase + (<usize>load<u32>(e, TLB_PFN) << 12) + off;
}

@inline export function mmu_load8(asid: u32, va: u64): u32 {
  const p = hit(asid, va, 0, 1);
  return p != 0 ? <u32>load<u8>(p) : <u32>fp_slow_load(asid, va, 1, ACC_READ);
}
@inline export function mmu_load16(asid: u32, va: u64): u32 {
  const p = hit(asid, va, 0, 2);
  return p != 0 ? <u32>load<u16>(p) : <u32>fp_slow_load(asid, va, 2, ACC_READ);
}
@inline export function mmu_load32(asid: u32, va: u64): u32 {
  const p = hit(asid, va, 0, 4);
  return p != 0 ? load<u32>(p) : <u32>fp_slow_load(asid, va, 4, ACC_READ);
}
@inline export function mmu_load64(asid: u32, va: u64): u64 {
  const p = hit(asid, va, 0, 8);
  return p != 0 ? load<u64>(p) : fp_slow_load(asid, va, 8, ACC_READ);
}
@inline export function mmu_fetch16(asid: u32, va: u64): u32 {
  const p = hit(asid, va, 16, 2);
  return p != 0 ? <u32>load<u16>(p) : <u32>fp_slow_load(asid, va, 2, ACC_EXEC);
}
@inline export function mmu_fetch32(asid: u32, va: u64): u32 {
  const p = hit(asid, va, 16, 4);
  return p != 0 ? load<u32>(p) : <u32>fp_slow_load(asid, va, 4, ACC_EXEC);
}
@inline export function mmu_store8(asid: u32, va: u64, v: u32): void {
  const p = hit(asid, va, 8, 1);
  if (p != 0) store<u8>(p, <u8>v); else fp_slow_store(asid, va, <u64>v, 1);
}
@inline export function mmu_store16(asid: u32, va: u64, v: u32): void {
  const p = hit(asid, va, 8, 2);
  if (p != 0) store<u16>(p, <u16>v); else fp_slow_store(asid, va, <u64>v, 2);
}
@inline export function mmu_store32(asid: u32, va: u64, v: u32): void {
  const p = hit(asid, va, 8, 4);
  if (p != 0) store<u32>(p, v); else fp_slow_store(asid, va, <u64>v, 4);
}
@inline export function mmu_store64(asid: u32, va: u64, v: u64): void {
  const p = hit(asid, va, 8, 8);
  if (p != 0) store<u64>(p, v); else fp_slow_store(asid, va, v, 8);
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

// Load `size` bytes (little-endian) on a miss, a crossing or device memory.
function fp_slow_load(asid: u32, va: u64, size: u32, access: u32): u64 {
  if ((<u32>va & 4095) + size > PAGE_SIZE) {
    // Crossing a page: byte by byte, the lower page first (each byte through the TLB).
    let v: u64 = 0;
    for (let k: u32 = 0; k < size; k++) {
      const b = hit(asid, va + k, access == ACC_EXEC ? 16 : 0, 1);
      const byte: u64 = b != 0 ? <u64>load<u8>(b) : fp_slow_load(asid, va + k, 1, access);
      if (fpFault != 0) return 0;
      v |= byte << (<u64>k << 3);
    }
    return v;
  }
  const pa = fp_translate(asid, va, access);
  if (pa < 0) return 0;
  let p = gRamBase + <usize>pa;
  if (pa_is_device(<u64>pa)) { mmio_access(<u64>pa, fpScratch, size, false); p = fpScratch; }
  if (size == 1) return <u64>load<u8>(p);
  if (size == 2) return <u64>load<u16>(p);
  if (size == 4) return <u64>load<u32>(p);
  return load<u64>(p);
}

// Store `size` bytes on a miss, a crossing or device memory. A crossing store is one
// instruction: both pages must take the write before any byte is written.
function fp_slow_store(asid: u32, va: u64, v: u64, size: u32): void {
  if ((<u32>va & 4095) + size > PAGE_SIZE) {
    if (fp_translate(asid, va, ACC_WRITE) < 0 || fp_translate(asid, va + size - 1, ACC_WRITE) < 0) return;
    for (let k: u32 = 0; k < size; k++) {
      const b = hit(asid, va + k, 8, 1);
      if (b != 0) store<u8>(b, <u8>(v >> (<u64>k << 3)));
      else fp_slow_store(asid, va + k, v >> (<u64>k << 3), 1);
      if (fpFault != 0) return;
    }
    return;
  }
  const pa = fp_translate(asid, va, ACC_WRITE);
  if (pa < 0) return;
  let p = gRamBase + <usize>pa;
  const dev = pa_is_device(<u64>pa);
  if (dev) p = fpScratch;
  if (size == 1) store<u8>(p, <u8>v);
  else if (size == 2) store<u16>(p, <u16>v);
  else if (size == 4) store<u32>(p, <u32>v);
  else store<u64>(p, v);
  if (dev) mmio_access(<u64>pa, fpScratch, size, true);
}
