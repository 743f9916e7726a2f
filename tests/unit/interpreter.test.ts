// examples/interpreter (issue 16): an RV32I interpreter whose instruction fetches, loads and
// stores go through the per-access fast path — in JavaScript (AddressSpace fetch32 / load* /
// store*) and in Wasm (assembly/fastpath.ts, compiled with the core into
// build/interpreter.wasm) — prints the same output as its plain-memory twin and as a plain
// JavaScript reference. Faults in the Wasm fast path are those of the core (R1.1: SIGSEGV
// SEGV_ACCERR on a write to a read-only page, SEGV_MAPERR outside any VMA; R4.4 / R5: the
// first write to a page faults once).
import { describe, it, expect } from 'vitest';
import { createMmu, SegmentationFault, LinuxError, PROT_READ, PROT_EXEC, type Mmu } from '../../src/index.js';
// @ts-expect-error plain JavaScript example modules
import { Rv32 } from '../../examples/interpreter/rv32.mjs';
// @ts-expect-error plain JavaScript example modules
import { assembleProgram, referenceOutput, CODE_BASE, DATA_BASE } from '../../examples/interpreter/program.mjs';
// @ts-expect-error plain JavaScript example modules
import { plainMachine, loadIntoAddressSpace, startRegisters, dataBytes } from '../../examples/interpreter/memory.mjs';
// @ts-expect-error plain JavaScript example modules
import { Assembler } from '../../examples/interpreter/asm.mjs';

const PARAMS = { sieveBytes: 192 * 1024, slots: 1 << 14, keys: 12000 }; // 64 pages of data, 1 of code
const INTERP = new URL('../../build/interpreter.wasm', import.meta.url);
const RV_EXIT = 0, RV_FAULT = 2;
type X = Record<string, (...a: number[]) => number> & { memory: WebAssembly.Memory };

function wasmRun(mmu: Mmu, x: X, run: () => number): { status: number; out: number[] } {
  x.rv_reset();
  x.rv_set_reg(10, PARAMS.sieveBytes); x.rv_set_reg(11, DATA_BASE); x.rv_set_reg(12, PARAMS.slots); x.rv_set_reg(13, PARAMS.keys);
  const status = run();
  const out: number[] = [];
  for (let i = 0; i < x.rv_out_count(); i++) out.push(x.rv_out(i) >>> 0);
  return { status, out };
}

describe('the JS interpreter: same output on wasm-mmu and on a Uint8Array', () => {
  it('sieve + hash table: reference output on both; wasm-mmu faulted each page in once (R4.2)', async () => {
    const program = assembleProgram();
    const want = referenceOutput(PARAMS);
    const plain = new Rv32(plainMachine(program, PARAMS));
    startRegisters(plain, PARAMS);
    expect(plain.run(CODE_BASE)).toBe(0);
    expect(plain.out).toEqual(want);

    const mmu = await createMmu({ ramBytes: 16 << 20, tlbEntries: 256 });
    const mm = loadIntoAddressSpace(mmu.createAddressSpace(), program, PARAMS);
    const before = mm.rusage().minflt;
    const cpu = new Rv32(mm);
    startRegisters(cpu, PARAMS);
    expect(cpu.run(CODE_BASE)).toBe(0);
    expect(cpu.out).toEqual(want);
    expect(cpu.steps).toBe(plain.steps);
    // Every data page is written (sieve flags or hash slots... or read as the zero page
    // and then written); the code page was already present. No page faults twice for good.
    const dataPages = dataBytes(PARAMS) / 4096;
    const faults = mm.rusage().minflt - before;
    expect(faults).toBeGreaterThanOrEqual(dataPages * 0.9);
    expect(faults).toBeLessThanOrEqual(2 * dataPages);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('a store to the code page (r-x) throws SEGV_ACCERR at the address, and the code is unchanged (R1.1)', async () => {
    const a = new Assembler();
    a.li('t0', CODE_BASE).li('t1', 0x1234).sw('t1', 0, 't0').li('a7', 93).ecall();
    const program = a.assemble();
    const mmu = await createMmu({ ramBytes: 8 << 20 });
    const mm = loadIntoAddressSpace(mmu.createAddressSpace(), program, { sieveBytes: 4096, slots: 1 });
    const cpu = new Rv32(mm);
    let err: unknown;
    try { cpu.run(CODE_BASE); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(SegmentationFault);
    expect((err as SegmentationFault).code).toBe('SEGV_ACCERR');
    expect((err as SegmentationFault).address).toBe(CODE_BASE);
    expect(cpu.pc).toBe(CODE_BASE + 12); // lui; lui+addi; then the sw
    expect(cpu.steps).toBe(3);
    expect(mm.fetch32(CODE_BASE)).toBe(new DataView(program.buffer).getUint32(0, true));
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('the Wasm interpreter through assembly/fastpath.ts, built with the core', () => {
  it('createMmu({ wasm }) runs the user module: fastpath and plain twin print the reference output', async () => {
    const program = assembleProgram();
    const want = referenceOutput(PARAMS);
    const mmu = await createMmu({ ramBytes: 16 << 20, tlbEntries: 256, wasm: INTERP });
    const x = mmu.wasmExports as unknown as X;
    const mm = loadIntoAddressSpace(mmu.createAddressSpace(), program, PARAMS);
    const got = wasmRun(mmu, x, () => x.rv_run_mmu(mm.asid, CODE_BASE, Infinity));
    expect(got).toEqual({ status: RV_EXIT, out: want });
    const steps = x.rv_steps();
    // The same program over plain linear memory.
    const base = x.rv_plain_alloc(DATA_BASE + dataBytes(PARAMS)) >>> 0;
    new Uint8Array(x.memory.buffer).set(program, base + CODE_BASE);
    const plain = wasmRun(mmu, x, () => x.rv_run_plain(CODE_BASE, Infinity));
    expect(plain).toEqual({ status: RV_EXIT, out: want });
    expect(x.rv_steps()).toBe(steps);
    // The bytes the guest wrote are in the address space: the hash table's first word.
    expect(mm.load32(DATA_BASE + PARAMS.sieveBytes)).toBe(new DataView(x.memory.buffer).getUint32(base + DATA_BASE + PARAMS.sieveBytes, true));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('faults do not trap: the run stops at the instruction, mmu_fault() gives the code, faultError the typed error', async () => {
    const mmu = await createMmu({ ramBytes: 8 << 20, wasm: INTERP });
    const x = mmu.wasmExports as unknown as X;
    const a = new Assembler();
    // Write to the r-x code page, then (after the host maps it writable) read an unmapped page.
    a.li('t0', CODE_BASE).li('t1', 0x55).sb('t1', 100, 't0').li('t2', 0x7000000).lw('t3', 0, 't2').li('a7', 93).ecall();
    const program = a.assemble();
    const mm = loadIntoAddressSpace(mmu.createAddressSpace(), program, { sieveBytes: 4096, slots: 1 });
    x.rv_reset();
    expect(x.rv_run_mmu(mm.asid, CODE_BASE, Infinity)).toBe(RV_FAULT);
    const e = mmu.faultError(x.rv_fault(), 'store');
    expect(e).toBeInstanceOf(SegmentationFault);
    expect((e as SegmentationFault).code).toBe('SEGV_ACCERR');
    expect((e as SegmentationFault).address).toBe(CODE_BASE + 100);
    expect(x.rv_fault_va()).toBe(CODE_BASE + 100);
    const storePc = x.rv_pc();
    expect(mm.load8(CODE_BASE + 100)).toBe(0); // never written
    // The host resolves it (like a SIGSEGV handler making the page writable) and resumes.
    mm.mprotect(CODE_BASE, 4096, PROT_READ | PROT_EXEC | 2);
    expect(x.rv_run_mmu(mm.asid, storePc, Infinity)).toBe(RV_FAULT);
    expect(mm.load8(CODE_BASE + 100)).toBe(0x55);
    const e2 = mmu.faultError(x.rv_fault(), 'load') as SegmentationFault;
    expect(e2.code).toBe('SEGV_MAPERR');
    expect(e2.address).toBe(0x7000000);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('self-modifying code after fork (R5.5, R5.4 wp_page_copy): the patched instruction runs from the new frame, never a cached stale page', async () => {
    // The store to the write-protected code page leaves the hit-only loop, breaks COW
    // (a new frame, a TLB flush); the fetch right after it must read the new frame, in the
    // Wasm interpreter (its instruction-page cache) and in the JS one alike.
    const patchWord = new DataView(new Assembler().addi('a0', 'zero', 7).assemble().buffer).getUint32(0, true);
    const build = (off: number) => {
      const a = new Assembler();
      a.li('t0', CODE_BASE).li('t1', patchWord).sw('t1', off, 't0').label('patch').addi('a0', 'zero', 1)
        .li('a7', 1).ecall().li('a7', 93).ecall();
      const bytes = a.assemble();
      return { bytes, patch: a.labels.get('patch') as number };
    };
    const { patch } = build(0);
    const { bytes: program } = build(patch);
    const original = new DataView(program.buffer).getUint32(patch, true);
    for (const kind of ['wasm', 'js']) {
      const mmu = await createMmu({ ramBytes: 8 << 20, wasm: INTERP });
      const x = mmu.wasmExports as unknown as X;
      const mm = mmu.createAddressSpace();
      mm.mmap({ addr: CODE_BASE, length: 4096, prot: 7, flags: 0x32 }); // rwx, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED
      mm.write(CODE_BASE, program);
      expect(mm.fetch32(CODE_BASE + patch)).toBe(original); // the page is in the TLB, exec
      const child = mm.fork(); // write-protects the parent's page (COW)
      let out: number[];
      if (kind === 'wasm') {
        x.rv_reset();
        expect(x.rv_run_mmu(mm.asid, CODE_BASE, Infinity)).toBe(RV_EXIT);
        out = [];
        for (let i = 0; i < x.rv_out_count(); i++) out.push(x.rv_out(i));
      } else {
        const cpu = new Rv32(mm);
        expect(cpu.run(CODE_BASE)).toBe(7); // exit(a0)
        out = cpu.out;
      }
      expect(out).toEqual([7]);
      expect(mm.fetch32(CODE_BASE + patch)).toBe(patchWord);
      expect(child.fetch32(CODE_BASE + patch)).toBe(original); // the child keeps its copy
      expect(mmu.checkInvariants()).toEqual([]);
    }
  });

  it('issue 17: mmu_tlb_addr hits pages in [4096, 2^31) through the side table, others only with MMU_HIGH; crossings, other ASIDs, ASID 0 and flushed pages give 0', async () => {
    const mmu = await createMmu({ ramBytes: 8 << 20, tlbEntries: 64, wasm: INTERP });
    const x = mmu.wasmExports as unknown as X;
    const mm = mmu.createAddressSpace();
    const other = mmu.createAddressSpace();
    const FIXED = 0x32, PG = 4096, READ = 0, WRITE = 1, EXEC = 2, HIGH = 4;
    const lo = mm.mmap({ addr: 0x10000, length: 2 * PG, prot: 3, flags: FIXED });
    const hi = mm.mmap({ addr: 0x80020000, length: PG, prot: 3, flags: FIXED });
    const top = mm.mmap({ addr: 2 ** 32 + 0x30000, length: PG, prot: 3, flags: FIXED });
    for (const [va, v] of [[lo, 0x11111111], [lo + PG, 0x22222222], [hi, 0x33333333], [top, 0x44444444]]) mm.store32(va + 8, v);
    const u32 = (p: number) => new DataView(x.memory.buffer).getUint32(p >>> 0, true);
    // Low pages: the side table, every width; the address is the byte's linear address.
    for (const n of [1, 2, 4, 8]) expect(u32(x.fp_tlb_addr(mm.asid, lo + 8, READ, n))).toBe(0x11111111);
    expect(u32(x.fp_tlb_addr(mm.asid, lo + PG + 8, WRITE, 4))).toBe(0x22222222);
    expect(x.fp_tlb_addr(mm.asid, lo + 8, EXEC, 4)).toBe(0); // not executable
    // A crossing: 0 even though both pages are in the TLB.
    for (const n of [2, 4, 8]) expect(x.fp_tlb_addr(mm.asid, lo + PG - 1, READ, n)).toBe(0);
    expect(x.fp_tlb_addr(mm.asid, lo + PG - 4, READ, 4)).not.toBe(0);
    // Pages from 2^31 up: only with MMU_HIGH (the f64 tags); still no crossing.
    expect(x.fp_tlb_addr(mm.asid, hi + 8, READ, 4)).toBe(0);
    expect(u32(x.fp_tlb_addr(mm.asid, hi + 8, READ | HIGH, 4))).toBe(0x33333333);
    expect(u32(x.fp_tlb_addr(mm.asid, top + 8, WRITE | HIGH, 4))).toBe(0x44444444);
    expect(x.fp_tlb_addr(mm.asid, top + PG - 2, READ | HIGH, 4)).toBe(0);
    // Aliases of the low page's 32 or 31 bits, other ASIDs (0 included), never hit.
    for (const f of [0, HIGH]) {
      expect(x.fp_tlb_addr(mm.asid, 2 ** 32 + lo + 8, READ | f, 4)).toBe(0);
      expect(x.fp_tlb_addr(mm.asid, 2 ** 31 + lo + 8, READ | f, 4)).toBe(0);
      expect(x.fp_tlb_addr(other.asid, lo + 8, READ | f, 4)).toBe(0);
      expect(x.fp_tlb_addr(0, lo + 8, READ | f, 4)).toBe(0);
      for (const va of [0, 8, 0x80000000, 0xfffff000]) expect(x.fp_tlb_addr(0, va, READ | f, 4)).toBe(0); // empty slots
    }
    // A flush empties both tables: mprotect drops the write tag, munmap the page.
    mm.mprotect(lo, PG, 1);
    expect(x.fp_tlb_addr(mm.asid, lo + 8, WRITE, 4)).toBe(0);
    mm.munmap(lo, 2 * PG);
    expect(x.fp_tlb_addr(mm.asid, lo + 8, READ, 4)).toBe(0);
    expect(x.fp_tlb_addr(mm.asid, lo + PG + 8, READ, 4)).toBe(0);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('issue 17: the hit loop above 2^31 leaves the side table for mmu_load32, which hits the f64 tags: the same sum, no core call per access', async () => {
    const mmu = await createMmu({ ramBytes: 8 << 20, tlbEntries: 256, wasm: INTERP });
    const x = mmu.wasmExports as unknown as X;
    const mm = mmu.createAddressSpace();
    const PAGES = 16, N = 20000;
    const sums = [];
    for (const base of [0x100000, 0x80100000]) {
      mm.mmap({ addr: base, length: PAGES * 4096, prot: 3, flags: 0x32 });
      for (let p = 0; p < PAGES; p++) mm.store32(base + p * 4096 + 4 * p, p + 1);
      const misses = mmu.stats().tlbMisses;
      sums.push(x.fp_bench_load_loop(mm.asid, base, PAGES, N));
      expect(x.rv_fault()).toBe(0);
      expect(mmu.stats().tlbMisses - misses).toBeLessThanOrEqual(PAGES); // hits, not core calls
    }
    expect(sums[1]).toBe(sums[0]);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('a destroyed address space is refused (-22), never read through a stale entry', async () => {
    const mmu = await createMmu({ ramBytes: 8 << 20, wasm: INTERP });
    const x = mmu.wasmExports as unknown as X;
    const program = assembleProgram();
    const mm = loadIntoAddressSpace(mmu.createAddressSpace(), program, { sieveBytes: 4096, slots: 1 });
    const asid = mm.asid;
    mm.destroy();
    x.rv_reset();
    expect(x.rv_run_mmu(asid, CODE_BASE, 10)).toBe(RV_FAULT);
    expect(x.rv_fault()).toBe(-22);
    expect(mmu.faultError(-22)).toBeInstanceOf(LinuxError);
    expect(mmu.faultError(-5)).toBeInstanceOf(RangeError);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});
