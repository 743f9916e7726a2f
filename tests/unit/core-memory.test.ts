// The core's linear memory is made by the host at its final size (issue 16, src/core-memory.ts):
// it must not grow in ordinary use — boot, faults, loads and stores, checkInvariants, fork,
// tens of thousands of VMAs — so mmu.ram and the fast path's views stay valid and V8 never
// has a detached buffer to check for. Past the estimate (more than 65,536 VMA records at once
// in use) it still grows, and everything refreshes itself.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { createMmu, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MAP_FIXED } from '../../src/index.js';
import { importedMemoryMinimum, coreHeapBytes } from '../../src/core-memory.js';

const PG = 4096;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const RELEASE = new URL('../../build/release.wasm', import.meta.url);

const memoryOf = (mmu: { wasmExports: Record<string, unknown> }) => mmu.wasmExports.memory as WebAssembly.Memory;

describe('the core memory is sized once and never grows in ordinary use', () => {
  const shapes = [
    { ramBytes: 2 << 20, tlbEntries: 1, xipBytes: 0, swapBytes: 0 },
    { ramBytes: 16 << 20, tlbEntries: 64 },
    { ramBytes: 64 << 20, tlbEntries: 4096, swapBytes: 1 << 30 },
    { ramBytes: 128 << 20, tlbEntries: 1 << 20, xipBytes: 64 << 20 },
  ];
  for (const o of shapes) {
    it(`ramBytes ${o.ramBytes >> 20} MiB, tlbEntries ${o.tlbEntries}: boot, faults, fork, 8,200 VMAs and checkInvariants leave the buffer as it was`, async () => {
      const mmu = await createMmu(o);
      const buf = memoryOf(mmu).buffer;
      const ram = mmu.ram;
      const mm = mmu.createAddressSpace();
      // Alternating protections: no two neighbours merge, every mmap is a VMA record.
      const base = 0x10000000;
      for (let i = 0; i < 8200; i++) mm.mmap({ addr: base + 2 * i * PG, length: PG, prot: i & 1 ? PROT_READ : RW, flags: ANON | MAP_FIXED });
      for (let i = 0; i < 64; i += 2) mm.store32(base + 2 * i * PG, i + 1);
      const child = mm.fork();
      child.store32(base, 77); // COW in the child
      expect(mm.load32(base)).toBe(1);
      expect(child.load32(base)).toBe(77);
      expect(mmu.checkInvariants()).toEqual([]);
      expect(memoryOf(mmu).buffer).toBe(buf);
      expect(mmu.ram).toBe(ram); // the same view: it never detached
      expect(ram.length).toBe(mmu.phys.size + mmu.xip.size);
      expect(ram[mm.translate(base)]).toBe(1);
    }, 60_000);
  }

  it('past its reserve (100,000 VMA records) it grows: mmu.ram detaches, a fresh one and the fast path see the same bytes', async () => {
    const mmu = await createMmu({ ramBytes: 4 << 20, tlbEntries: 64 });
    const mm = mmu.createAddressSpace();
    const base = 0x10000000;
    mm.mmap({ addr: base, length: PG, prot: RW, flags: ANON | MAP_FIXED });
    mm.store8(base, 42);
    const old = mmu.ram;
    // One mm holds at most 65,530 VMAs (vm.max_map_count); the record pool is shared by all.
    const others = [1, 2, 3, 4, 5].map(() => mmu.createAddressSpace());
    for (const o of others) {
      for (let i = 1; i <= 20000; i++) o.mmap({ addr: base + 2 * i * PG, length: PG, prot: i & 1 ? PROT_READ : RW, flags: ANON | MAP_FIXED });
    }
    expect(old.length).toBe(0); // detached by the growth
    expect(mmu.ram[mm.translate(base)]).toBe(42);
    expect(mm.load8(base)).toBe(42);
    mm.store8(base, 43);
    expect(mmu.ram[mm.translate(base)]).toBe(43);
    expect(mmu.checkInvariants()).toEqual([]);
  }, 120_000);

  it('a precompiled module (its minimum unknown to the host) works and does not grow either', async () => {
    const module = new WebAssembly.Module(readFileSync(RELEASE));
    const mmu = await createMmu({ ramBytes: 8 << 20, tlbEntries: 64, wasm: module });
    const buf = memoryOf(mmu).buffer;
    const mm = mmu.createAddressSpace();
    const va = mm.mmap({ length: 4 * PG, prot: RW, flags: ANON });
    mm.store32(va + 4094, 0xdeadbeef); // crossing a page
    expect(mm.load32(va + 4094)).toBe(0xdeadbeef);
    expect(mmu.checkInvariants()).toEqual([]);
    expect(memoryOf(mmu).buffer).toBe(buf);
  });
});

describe('sizing helpers', () => {
  it('importedMemoryMinimum reads env.memory from the import section; null without one', () => {
    const min = importedMemoryMinimum(readFileSync(RELEASE));
    expect(Number.isInteger(min) && min! > 0).toBe(true);
    // A hand-made module: (import "env" "f" (func)) (import "env" "memory" (memory 3 9)).
    const enc = (s: string) => [s.length, ...Buffer.from(s)];
    const imports = [2, ...enc('env'), ...enc('f'), 0, 0, ...enc('env'), ...enc('memory'), 2, 1, 3, 9];
    const type = [1, 0x60, 0, 0];
    const bytes = Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, type.length, ...type, 2, imports.length, ...imports]);
    expect(WebAssembly.validate(bytes)).toBe(true);
    expect(importedMemoryMinimum(bytes)).toBe(3);
    expect(importedMemoryMinimum(Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]))).toBe(null);
    expect(importedMemoryMinimum(Uint8Array.from([1, 2, 3]))).toBe(null);
  });

  it('coreHeapBytes covers RAM, XIP and the memmap and grows with every input', () => {
    const a = { ramBytes: 16 << 20, xipBytes: 0, tlbEntries: 64, swapSlots: 0 };
    const h = coreHeapBytes(a);
    expect(h).toBeGreaterThan(a.ramBytes + (a.ramBytes / PG) * 32);
    expect(coreHeapBytes({ ...a, ramBytes: 32 << 20 })).toBeGreaterThan(h);
    expect(coreHeapBytes({ ...a, xipBytes: 2 << 20 })).toBe(h + (2 << 20));
    expect(coreHeapBytes({ ...a, tlbEntries: 128 })).toBe(h + 64 * (64 + 16)); // tlb.ts: entries and the int32 side table
    // swap.ts map and cache (8), check.ts counts (4), shmem_swap.ts's table at its largest (96)
    expect(coreHeapBytes({ ...a, swapSlots: 10 })).toBe(h + 10 * (8 + 4 + 96));
  });
});
