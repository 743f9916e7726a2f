// A tiny RV32I assembler: enough to write the guest program of this example by hand.
// Each instruction is a call; labels resolve in a second pass. Encodings: RISC-V
// Unprivileged ISA, chapter 2 (R, I, S, B, U, J formats).

const REG = Object.fromEntries([
  'zero', 'ra', 'sp', 'gp', 'tp', 't0', 't1', 't2', 's0', 's1', 'a0', 'a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7',
  's2', 's3', 's4', 's5', 's6', 's7', 's8', 's9', 's10', 's11', 't3', 't4', 't5', 't6',
].map((n, i) => [n, i]));

function r(name) {
  const n = REG[name];
  if (n === undefined) throw new Error(`asm: no register ${name}`);
  return n;
}

export class Assembler {
  constructor() { this.words = []; this.labels = new Map(); this.fixups = []; }
  get pc() { return this.words.length * 4; }
  label(name) { this.labels.set(name, this.pc); return this; }
  emit(w) { this.words.push(w >>> 0); return this; }

  R(f7, f3, rd, rs1, rs2) { return this.emit((f7 << 25) | (r(rs2) << 20) | (r(rs1) << 15) | (f3 << 12) | (r(rd) << 7) | 0x33); }
  I(op, f3, rd, rs1, imm) {
    if (imm < -2048 || imm > 2047) throw new Error(`asm: immediate ${imm} out of range`);
    return this.emit(((imm & 0xfff) << 20) | (r(rs1) << 15) | (f3 << 12) | (r(rd) << 7) | op);
  }
  S(f3, rs2, rs1, imm) {
    return this.emit((((imm >> 5) & 0x7f) << 25) | (r(rs2) << 20) | (r(rs1) << 15) | (f3 << 12) | ((imm & 31) << 7) | 0x23);
  }
  B(f3, rs1, rs2, label) {
    this.fixups.push({ at: this.words.length, label, kind: 'B' });
    return this.emit((r(rs2) << 20) | (r(rs1) << 15) | (f3 << 12) | 0x63);
  }

  add(d, a, b) { return this.R(0, 0, d, a, b); }
  sub(d, a, b) { return this.R(0x20, 0, d, a, b); }
  sll(d, a, b) { return this.R(0, 1, d, a, b); }
  slt(d, a, b) { return this.R(0, 2, d, a, b); }
  sltu(d, a, b) { return this.R(0, 3, d, a, b); }
  xor(d, a, b) { return this.R(0, 4, d, a, b); }
  srl(d, a, b) { return this.R(0, 5, d, a, b); }
  sra(d, a, b) { return this.R(0x20, 5, d, a, b); }
  or(d, a, b) { return this.R(0, 6, d, a, b); }
  and(d, a, b) { return this.R(0, 7, d, a, b); }
  addi(d, a, i) { return this.I(0x13, 0, d, a, i); }
  slti(d, a, i) { return this.I(0x13, 2, d, a, i); }
  sltiu(d, a, i) { return this.I(0x13, 3, d, a, i); }
  xori(d, a, i) { return this.I(0x13, 4, d, a, i); }
  ori(d, a, i) { return this.I(0x13, 6, d, a, i); }
  andi(d, a, i) { return this.I(0x13, 7, d, a, i); }
  slli(d, a, sh) { return this.I(0x13, 1, d, a, sh & 31); }
  srli(d, a, sh) { return this.I(0x13, 5, d, a, sh & 31); }
  srai(d, a, sh) { return this.I(0x13, 5, d, a, (sh & 31) | 0x400); }
  lb(d, i, a) { return this.I(0x03, 0, d, a, i); }
  lh(d, i, a) { return this.I(0x03, 1, d, a, i); }
  lw(d, i, a) { return this.I(0x03, 2, d, a, i); }
  lbu(d, i, a) { return this.I(0x03, 4, d, a, i); }
  lhu(d, i, a) { return this.I(0x03, 5, d, a, i); }
  sb(s, i, a) { return this.S(0, s, a, i); }
  sh(s, i, a) { return this.S(1, s, a, i); }
  sw(s, i, a) { return this.S(2, s, a, i); }
  beq(a, b, l) { return this.B(0, a, b, l); }
  bne(a, b, l) { return this.B(1, a, b, l); }
  blt(a, b, l) { return this.B(4, a, b, l); }
  bge(a, b, l) { return this.B(5, a, b, l); }
  bltu(a, b, l) { return this.B(6, a, b, l); }
  bgeu(a, b, l) { return this.B(7, a, b, l); }
  lui(d, imm20) { return this.emit(((imm20 & 0xfffff) << 12) | (r(d) << 7) | 0x37); }
  auipc(d, imm20) { return this.emit(((imm20 & 0xfffff) << 12) | (r(d) << 7) | 0x17); }
  jal(d, label) { this.fixups.push({ at: this.words.length, label, kind: 'J' }); return this.emit((r(d) << 7) | 0x6f); }
  jalr(d, a, i) { return this.I(0x67, 0, d, a, i); }
  ecall() { return this.emit(0x73); }
  // Pseudo-instructions.
  j(label) { return this.jal('zero', label); }
  mv(d, a) { return this.addi(d, a, 0); }
  nop() { return this.addi('zero', 'zero', 0); }
  ret() { return this.jalr('zero', 'ra', 0); }
  beqz(a, l) { return this.beq(a, 'zero', l); }
  bnez(a, l) { return this.bne(a, 'zero', l); }
  li(d, v) {
    v |= 0;
    if (v >= -2048 && v < 2048) return this.addi(d, 'zero', v);
    const lo = (v << 20) >> 20; // sign-extended low 12 bits
    this.lui(d, ((v - lo) >>> 12) & 0xfffff);
    return lo === 0 ? this : this.addi(d, d, lo);
  }

  /** The program as little-endian bytes. */
  assemble() {
    for (const f of this.fixups) {
      const target = this.labels.get(f.label);
      if (target === undefined) throw new Error(`asm: no label ${f.label}`);
      const off = target - f.at * 4;
      let w = this.words[f.at];
      if (f.kind === 'B') {
        if (off < -4096 || off > 4094) throw new Error(`asm: branch to ${f.label} too far`);
        w |= (((off >> 12) & 1) << 31) | (((off >> 5) & 0x3f) << 25) | (((off >> 1) & 0xf) << 8) | (((off >> 11) & 1) << 7);
      } else {
        w |= (((off >> 20) & 1) << 31) | (((off >> 1) & 0x3ff) << 21) | (((off >> 11) & 1) << 20) | (((off >> 12) & 0xff) << 12);
      }
      this.words[f.at] = w >>> 0;
    }
    return new Uint8Array(Uint32Array.from(this.words).buffer);
  }
}
