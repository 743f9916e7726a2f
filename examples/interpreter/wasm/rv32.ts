// The RV32I interpreter of ../rv32.mjs, in AssemblyScript, compiled together with the
// wasm-mmu core into one module (README "For emulator authors"): this entry re-exports the
// core's ABI and adds its own exports. Fetches, loads and stores go through
// assembly/fastpath.ts: the TLB hit is inlined here, a miss calls the core's fault path
// inside the same module. A twin runs the same code over a plain region of linear memory
// (no MMU, no bounds checks: the baseline), so the two differ only in memory access.
//
// Build: npm run build:example (examples/interpreter/wasm/asconfig.json) → build/interpreter.wasm.
// In your own package the two imports read "wasm-mmu/assembly/index" and
// "wasm-mmu/assembly/fastpath" (asc finds them in node_modules).
export * from "../../../assembly/index";
import { mmu_fetch32, mmu_load8, mmu_load16, mmu_load32, mmu_store8, mmu_store16, mmu_store32,
  mmu_fault, mmu_fault_va, mmu_fault_clear, mmu_exec_page, mmu_tlb_gen, mmu_tlb_addr,
  MMU_READ, MMU_WRITE, MMU_EXEC, MMU_HIGH } from "../../../assembly/fastpath";

const regs: usize = memory.data(32 * 4);
const OUT_MAX: i32 = 64;
const outBuf: usize = memory.data(OUT_MAX * 4);
let outN: i32 = 0;
let gAsid: u32 = 0;
let gPlain: usize = 0;
let gPc: u32 = 0;
let gSteps: f64 = 0;

// Run results. RV_MISS: internal, the hit-only loop met a TLB miss (rv_run_mmu).
const RV_EXIT: i32 = 0, RV_STEPS: i32 = 1, RV_FAULT: i32 = 2, RV_ILLEGAL: i32 = 3, RV_MISS: i32 = 4;
let gMiss = false;

// The two memories: one method set each, chosen at compile time (run<M> is specialised).
class MmuMem {
  @inline fetch32(a: u32): u32 { return mmu_fetch32(gAsid, <u64>a); }
  @inline load8(a: u32): u32 { return mmu_load8(gAsid, <u64>a); }
  @inline load16(a: u32): u32 { return mmu_load16(gAsid, <u64>a); }
  @inline load32(a: u32): u32 { return mmu_load32(gAsid, <u64>a); }
  @inline store8(a: u32, v: u32): void { mmu_store8(gAsid, <u64>a, v); }
  @inline store16(a: u32, v: u32): void { mmu_store16(gAsid, <u64>a, v); }
  @inline store32(a: u32, v: u32): void { mmu_store32(gAsid, <u64>a, v); }
  @inline faulted(): bool { return mmu_fault() != 0; }
  @inline failStatus(): i32 { return RV_FAULT; }
  // The instruction-page cache (see run): on.
  @inline cached(): bool { return true; }
  @inline execPage(a: u32): i64 { return mmu_exec_page(gAsid, <u64>a); }
  @inline gen(): u32 { return mmu_tlb_gen(); }
}
// The hot loop's memory: TLB hits only (mmu_tlb_addr), no call. A miss sets gMiss and the
// instruction stops before it changes anything (run's faulted() checks); rv_run_mmu then
// runs that one instruction on MmuMem, which faults the page in, and comes back. With no
// call and no core code inside the loop, nothing can flush the TLB while it runs, so its
// instruction-page cache needs no generation check.
class MmuFast {
  @inline fetch32(a: u32): u32 { const p = mmu_tlb_addr(gAsid, <u64>a, MMU_EXEC, 4); if (p == 0) { gMiss = true; return 0; } return load<u32>(p); }
  @inline load8(a: u32): u32 { const p = mmu_tlb_addr(gAsid, <u64>a, MMU_READ, 1); if (p == 0) { gMiss = true; return 0; } return <u32>load<u8>(p); }
  @inline load16(a: u32): u32 { const p = mmu_tlb_addr(gAsid, <u64>a, MMU_READ, 2); if (p == 0) { gMiss = true; return 0; } return <u32>load<u16>(p); }
  @inline load32(a: u32): u32 { const p = mmu_tlb_addr(gAsid, <u64>a, MMU_READ, 4); if (p == 0) { gMiss = true; return 0; } return load<u32>(p); }
  @inline store8(a: u32, v: u32): void { const p = mmu_tlb_addr(gAsid, <u64>a, MMU_WRITE, 1); if (p == 0) gMiss = true; else store<u8>(p, <u8>v); }
  @inline store16(a: u32, v: u32): void { const p = mmu_tlb_addr(gAsid, <u64>a, MMU_WRITE, 2); if (p == 0) gMiss = true; else store<u16>(p, <u16>v); }
  @inline store32(a: u32, v: u32): void { const p = mmu_tlb_addr(gAsid, <u64>a, MMU_WRITE, 4); if (p == 0) gMiss = true; else store<u32>(p, v); }
  @inline faulted(): bool { return gMiss; }
  @inline failStatus(): i32 { return RV_MISS; }
  @inline cached(): bool { return true; }
  @inline execPage(a: u32): i64 { const p = mmu_tlb_addr(gAsid, <u64>a, MMU_EXEC, 4); return p == 0 ? -1 : <i64>(<u32>p - a); }
  @inline gen(): u32 { return 0; }
}
class PlainMem {
  @inline fetch32(a: u32): u32 { return load<u32>(gPlain + <usize>a); }
  @inline load8(a: u32): u32 { return <u32>load<u8>(gPlain + <usize>a); }
  @inline load16(a: u32): u32 { return <u32>load<u16>(gPlain + <usize>a); }
  @inline load32(a: u32): u32 { return load<u32>(gPlain + <usize>a); }
  @inline store8(a: u32, v: u32): void { store<u8>(gPlain + <usize>a, <u8>v); }
  @inline store16(a: u32, v: u32): void { store<u16>(gPlain + <usize>a, <u16>v); }
  @inline store32(a: u32, v: u32): void { store<u32>(gPlain + <usize>a, v); }
  @inline faulted(): bool { return false; }
  @inline failStatus(): i32 { return RV_FAULT; }
  @inline cached(): bool { return false; }
  @inline execPage(a: u32): i64 { return -1; }
  @inline gen(): u32 { return 0; }
}

@inline function rget(r: u32): i32 { return load<i32>(regs + (<usize>r << 2)); }
@inline function rset(r: u32, v: i32): void { store<i32>(regs + (<usize>r << 2), v); }

// The MMU run keeps its current instruction page (QEMU's translation-block lookup): while
// pc stays 4-aligned in that page and the TLB generation is unchanged (no flush since:
// munmap, mprotect, COW, fork's write-protect, reclaim all flush), a fetch is one add and
// one load; otherwise the fetch goes through the TLB (mmu_fetch32: a miss faults the page
// in) and the cache is refilled from the entry. A flush anywhere bumps the generation, so
// the cache is never staler than the TLB itself.
function run<M>(m: M, pc: u32, maxSteps: f64): i32 {
  let steps: f64 = 0;
  let status = RV_STEPS;
  let cPage: u32 = 1, cAdd: u32 = 0, cGen: u32 = 0; // 1: no 4-aligned pc matches
  while (steps < maxSteps) {
    let ins: u32;
    if (m.cached() && (pc & 0xfffff003) == cPage && m.gen() == cGen) {
      ins = load<u32>(<usize>(pc + cAdd));
    } else {
      ins = m.fetch32(pc);
      if (m.faulted()) { status = m.failStatus(); break; }
      if (m.cached()) {
        const a = m.execPage(pc);
        if (a >= 0) { cPage = pc & ~(<u32>4095); cAdd = <u32>a; cGen = m.gen(); } else cPage = 1;
      }
    }
    steps++;
    const rd = (ins >> 7) & 31, rs1 = (ins >> 15) & 31, rs2 = (ins >> 20) & 31, f3 = (ins >> 12) & 7;
    let next = pc + 4;
    const op = ins & 0x7f;
    if (op == 0x13) { // OP-IMM
      const a = rget(rs1), imm = <i32>ins >> 20;
      let v: i32;
      switch (f3) {
        case 0: v = a + imm; break;
        case 1: v = a << (imm & 31); break;
        case 2: v = a < imm ? 1 : 0; break;
        case 3: v = <u32>a < <u32>imm ? 1 : 0; break;
        case 4: v = a ^ imm; break;
        case 5: v = (imm & 0x400) != 0 ? a >> (imm & 31) : <i32>(<u32>a >>> (imm & 31)); break;
        case 6: v = a | imm; break;
        default: v = a & imm;
      }
      rset(rd, v);
    } else if (op == 0x33) { // OP
      const a = rget(rs1), b = rget(rs2), alt = (ins >> 30) & 1;
      let v: i32;
      switch (f3) {
        case 0: v = alt ? a - b : a + b; break;
        case 1: v = a << (b & 31); break;
        case 2: v = a < b ? 1 : 0; break;
        case 3: v = <u32>a < <u32>b ? 1 : 0; break;
        case 4: v = a ^ b; break;
        case 5: v = alt ? a >> (b & 31) : <i32>(<u32>a >>> (b & 31)); break;
        case 6: v = a | b; break;
        default: v = a & b;
      }
      rset(rd, v);
    } else if (op == 0x03) { // LOAD
      const addr = <u32>(rget(rs1) + (<i32>ins >> 20));
      let v: i32;
      switch (f3) {
        case 0: v = <i32><i8>m.load8(addr); break;
        case 1: v = <i32><i16>m.load16(addr); break;
        case 2: v = <i32>m.load32(addr); break;
        case 4: v = <i32>m.load8(addr); break;
        case 5: v = <i32>m.load16(addr); break;
        default: v = 0; status = RV_ILLEGAL; steps--; break;
      }
      if (status == RV_ILLEGAL) break;
      if (m.faulted()) { status = m.failStatus(); steps--; break; }
      rset(rd, v);
    } else if (op == 0x23) { // STORE
      const addr = <u32>(rget(rs1) + (((<i32>ins >> 25) << 5) | <i32>((ins >> 7) & 31)));
      const v = <u32>rget(rs2);
      if (f3 == 0) m.store8(addr, v);
      else if (f3 == 1) m.store16(addr, v);
      else if (f3 == 2) m.store32(addr, v);
      else { status = RV_ILLEGAL; steps--; break; }
      if (m.faulted()) { status = m.failStatus(); steps--; break; }
    } else if (op == 0x63) { // BRANCH
      const a = rget(rs1), b = rget(rs2);
      let take: bool;
      switch (f3) {
        case 0: take = a == b; break;
        case 1: take = a != b; break;
        case 4: take = a < b; break;
        case 5: take = a >= b; break;
        case 6: take = <u32>a < <u32>b; break;
        case 7: take = <u32>a >= <u32>b; break;
        default: take = false; status = RV_ILLEGAL;
      }
      if (status == RV_ILLEGAL) { steps--; break; }
      if (take) {
        next = pc + <u32>(((<i32>ins >> 31) << 12) | <i32>(((ins >> 7) & 1) << 11) | <i32>(((ins >> 25) & 0x3f) << 5) | <i32>(((ins >> 8) & 0xf) << 1));
      }
    } else if (op == 0x6f) { // JAL
      rset(rd, <i32>next);
      next = pc + <u32>(((<i32>ins >> 31) << 20) | <i32>(((ins >> 12) & 0xff) << 12) | <i32>(((ins >> 20) & 1) << 11) | <i32>(((ins >> 21) & 0x3ff) << 1));
    } else if (op == 0x67) { // JALR
      const t = <u32>(rget(rs1) + (<i32>ins >> 20)) & ~1;
      rset(rd, <i32>next);
      next = t;
    } else if (op == 0x37) { // LUI
      rset(rd, <i32>(ins & 0xfffff000));
    } else if (op == 0x17) { // AUIPC
      rset(rd, <i32>(pc + (ins & 0xfffff000)));
    } else if (op == 0x0f) { // FENCE
    } else if (ins == 0x73) { // ECALL: a7 = 1 print a0, 93 exit(a0)
      const nr = rget(17);
      if (nr == 1) { if (outN < OUT_MAX) store<i32>(outBuf + (<usize>outN << 2), rget(10)); outN++; }
      else if (nr == 93) { status = RV_EXIT; break; }
      else { status = RV_ILLEGAL; steps--; break; }
    } else { status = RV_ILLEGAL; steps--; break; }
    store<i32>(regs, 0);
    pc = next;
  }
  gPc = pc;
  gSteps += steps;
  return status;
}

/** Run on the address space `asid` from `pc`: RV_EXIT 0, RV_STEPS 1, RV_FAULT 2 (mmu_fault code: rv_fault()), RV_ILLEGAL 3. */
// The hit-only loop (MmuFast) runs until a miss; the missed instruction then runs alone
// through the full path (MmuMem: faults, device memory, page crossings), and so on.
export function rv_run_mmu(asid: i32, pc: i32, maxSteps: f64): i32 {
  gAsid = <u32>asid;
  mmu_fault_clear();
  let p = <u32>pc, left = maxSteps;
  let st = RV_STEPS;
  while (left > 0) {
    gMiss = false;
    let before = gSteps;
    st = run<MmuFast>(changetype<MmuFast>(0), p, left);
    left -= gSteps - before; p = gPc;
    if (st != RV_MISS) return st;
    before = gSteps;
    st = run<MmuMem>(changetype<MmuMem>(0), p, 1);
    left -= gSteps - before; p = gPc;
    if (st != RV_STEPS) return st;
  }
  gPc = p;
  return st;
}
/** Run on the plain region (rv_plain_alloc first). */
export function rv_run_plain(pc: i32, maxSteps: f64): i32 {
  return run<PlainMem>(changetype<PlainMem>(0), <u32>pc, maxSteps);
}
/** A plain region of `bytes` bytes (guest address 0 at the returned linear address), once. */
export function rv_plain_alloc(bytes: i32): usize {
  if (gPlain == 0) gPlain = heap.alloc(<usize>bytes);
  return gPlain;
}
export function rv_reg(i: i32): i32 { return rget(<u32>i & 31); }
export function rv_set_reg(i: i32, v: i32): void { if (i > 0 && i < 32) rset(<u32>i, v); }
export function rv_pc(): i32 { return <i32>gPc; }
export function rv_steps(): f64 { return gSteps; }
export function rv_reset(): void { gSteps = 0; outN = 0; memory.fill(regs, 0, 32 * 4); }
export function rv_out_count(): i32 { return outN; }
export function rv_out(i: i32): i32 { return i >= 0 && i < OUT_MAX ? load<i32>(outBuf + (<usize>i << 2)) : 0; }
export function rv_fault(): i32 { return mmu_fault(); }
export function rv_fault_va(): f64 { return <f64>mmu_fault_va(); }

// A TLB-hit loop through the fast path (the bench's "translation in a Wasm loop" row):
// `n` 32-bit loads over `pages` resident pages from `va`; returns their sum. The pattern
// of rv_run_mmu: a hit-only loop (no call in it), left on a miss for one full access.
let gSum: u32 = 0;
function fp_bench_hits(asid: u32, base: u32, mask: u32, i: u32, n: u32): u32 {
  let sum = gSum;
  for (; i < n; i++) {
    const p = mmu_tlb_addr(asid, <u64>(base + ((i * 2053 * 4) & mask & ~3)), MMU_READ, 4);
    if (p == 0) break;
    sum += load<u32>(p);
  }
  gSum = sum;
  return i;
}
export function fp_bench_load_loop(asid: i32, va: f64, pages: i32, n: i32): i32 {
  const base = <u32>va;
  const mask = (<u32>pages << 12) - 1;
  gSum = 0;
  for (let i: u32 = 0; ; i++) {
    i = fp_bench_hits(<u32>asid, base, mask, i, <u32>n);
    if (i >= <u32>n) break;
    gSum += mmu_load32(<u32>asid, <u64>(base + ((i * 2053 * 4) & mask & ~3)));
  }
  return <i32>gSum;
}
// mmu_tlb_addr for the tests (tests/unit/interpreter.test.ts): `access` 0 read, 1 write,
// 2 exec, | 4 MMU_HIGH; the linear address or 0.
export function fp_tlb_addr(asid: i32, va: f64, access: i32, size: i32): i32 {
  const a = <u32>access & 3, v = <u64>va, n = <u32>size;
  if ((access & <i32>MMU_HIGH) != 0) return <i32>mmu_tlb_addr(<u32>asid, v, a | MMU_HIGH, n);
  return <i32>mmu_tlb_addr(<u32>asid, v, a, n);
}
export function plain_bench_load_loop(va: f64, pages: i32, n: i32): i32 {
  const base = gPlain + <usize><u32>va;
  const mask = (<u32>pages << 12) - 1;
  let sum: u32 = 0;
  for (let i: u32 = 0; i < <u32>n; i++) sum += load<u32>(base + <usize>((i * 2053 * 4) & mask & ~3));
  return <i32>sum;
}
