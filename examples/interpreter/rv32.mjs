// An RV32I interpreter (the base integer ISA; FENCE is a no-op, ECALL is the system call,
// no CSRs). Every instruction fetch, load and store goes through `mem`, which is either a
// wasm-mmu AddressSpace (fetch32 / load* / store*: the TLB hit path in JavaScript) or a
// PlainMemory over one Uint8Array: the same interpreter runs on both.
//
// System calls (a7): 1 = print a0 (collected in `out`), 93 = exit(a0).
// A bad access throws what `mem` throws (SegmentationFault, BusError, RangeError) with the
// CPU state left at the faulting instruction (`cpu.pc`).

export class Rv32 {
  constructor(mem) {
    this.mem = mem;
    this.x = new Int32Array(32);
    this.pc = 0;
    this.steps = 0;
    this.out = [];
  }

  /** Run from `pc` until exit (returns the exit code) or `maxSteps` instructions (returns null). */
  run(pc, maxSteps = Infinity) {
    const mem = this.mem, x = this.x, out = this.out;
    let steps = 0, code = null;
    try {
      loop: for (;;) {
        if (steps >= maxSteps) break;
        const ins = mem.fetch32(pc);
        const rd = (ins >>> 7) & 31, rs1 = (ins >>> 15) & 31, rs2 = (ins >>> 20) & 31, f3 = (ins >>> 12) & 7;
        let next = pc + 4;
        switch (ins & 0x7f) {
          case 0x13: { // OP-IMM
            const a = x[rs1], imm = ins >> 20;
            let v;
            switch (f3) {
              case 0: v = (a + imm) | 0; break;
              case 1: v = a << (imm & 31); break;
              case 2: v = a < imm ? 1 : 0; break;
              case 3: v = (a >>> 0) < (imm >>> 0) ? 1 : 0; break;
              case 4: v = a ^ imm; break;
              case 5: v = (imm & 0x400) !== 0 ? a >> (imm & 31) : a >>> (imm & 31); break;
              case 6: v = a | imm; break;
              default: v = a & imm;
            }
            x[rd] = v;
            break;
          }
          case 0x33: { // OP
            const a = x[rs1], b = x[rs2], alt = (ins >>> 30) & 1;
            let v;
            switch (f3) {
              case 0: v = alt ? (a - b) | 0 : (a + b) | 0; break;
              case 1: v = a << (b & 31); break;
              case 2: v = a < b ? 1 : 0; break;
              case 3: v = (a >>> 0) < (b >>> 0) ? 1 : 0; break;
              case 4: v = a ^ b; break;
              case 5: v = alt ? a >> (b & 31) : a >>> (b & 31); break;
              case 6: v = a | b; break;
              default: v = a & b;
            }
            x[rd] = v;
            break;
          }
          case 0x03: { // LOAD
            const addr = (x[rs1] + (ins >> 20)) >>> 0;
            let v;
            switch (f3) {
              case 0: v = (mem.load8(addr) << 24) >> 24; break;
              case 1: v = (mem.load16(addr) << 16) >> 16; break;
              case 2: v = mem.load32(addr) | 0; break;
              case 4: v = mem.load8(addr); break;
              case 5: v = mem.load16(addr); break;
              default: throw new Error(`illegal load at pc ${pc}`);
            }
            x[rd] = v;
            break;
          }
          case 0x23: { // STORE
            const addr = (x[rs1] + (((ins >> 25) << 5) | ((ins >>> 7) & 31))) >>> 0;
            switch (f3) {
              case 0: mem.store8(addr, x[rs2] & 0xff); break;
              case 1: mem.store16(addr, x[rs2] & 0xffff); break;
              case 2: mem.store32(addr, x[rs2] >>> 0); break;
              default: throw new Error(`illegal store at pc ${pc}`);
            }
            break;
          }
          case 0x63: { // BRANCH
            const a = x[rs1], b = x[rs2];
            let take;
            switch (f3) {
              case 0: take = a === b; break;
              case 1: take = a !== b; break;
              case 4: take = a < b; break;
              case 5: take = a >= b; break;
              case 6: take = (a >>> 0) < (b >>> 0); break;
              case 7: take = (a >>> 0) >= (b >>> 0); break;
              default: throw new Error(`illegal branch at pc ${pc}`);
            }
            if (take) {
              next = pc + (((ins >> 31) << 12) | (((ins >>> 7) & 1) << 11) | (((ins >>> 25) & 0x3f) << 5) | (((ins >>> 8) & 0xf) << 1));
            }
            break;
          }
          case 0x6f: // JAL
            x[rd] = next;
            next = pc + (((ins >> 31) << 20) | (((ins >>> 12) & 0xff) << 12) | (((ins >>> 20) & 1) << 11) | (((ins >>> 21) & 0x3ff) << 1));
            break;
          case 0x67: { // JALR
            const t = (x[rs1] + (ins >> 20)) & ~1;
            x[rd] = next;
            next = t;
            break;
          }
          case 0x37: x[rd] = ins & 0xfffff000; break; // LUI
          case 0x17: x[rd] = (pc + (ins & 0xfffff000)) | 0; break; // AUIPC
          case 0x0f: break; // FENCE: one hart, nothing to order
          case 0x73: // ECALL
            if (ins !== 0x73) throw new Error(`unsupported SYSTEM instruction ${ins.toString(16)} at pc ${pc}`);
            if (x[17] === 1) out.push(x[10] >>> 0);
            else if (x[17] === 93) { code = x[10]; break loop; }
            else throw new Error(`unknown system call ${x[17]} at pc ${pc}`);
            break;
          default:
            throw new Error(`illegal instruction ${ins.toString(16)} at pc ${pc}`);
        }
        x[0] = 0;
        pc = next;
        steps++;
      }
    } finally {
      // On a fault too: pc is the faulting instruction, steps the instructions completed.
      this.pc = pc;
      this.steps += steps;
    }
    return code;
  }
}
