// The per-access fast path for emulator authors (issue 16): AddressSpace load*/store*/fetch*,
// Mmu.ram, and tlb.view.lookup's access names. A hit is served in JavaScript from the TLB;
// a miss calls the core once (mm_translate: walk, the full fault path, TLB fill). Every
// fault must behave as read()/write() do: R1.1 (SIGSEGV codes and address), R1.7 (SIGBUS),
// R4.4 (zero page, then a write copies), R5 (COW after fork), R9.5 (mprotect lowers rights).
import { describe, it, expect, beforeEach } from 'vitest';
import {
  createMmu, MemoryFile, SegmentationFault, BusError, LinuxError, CoreCrashedError, PROT_READ, PROT_WRITE, PROT_EXEC,
  MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS, type Mmu, type AddressSpace,
} from '../../src/index.js';
import { AddressSpace as AddressSpaceClass, fastClosuresAllow } from '../../src/address-space.js';

const PG = 4096;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

let mmu: Mmu;
let mm: AddressSpace;
let calls: number;


const thrown = (f: () => unknown): unknown => { try { f(); } catch (e) { return e; } return undefined; };
const anon = (pages: number, prot = RW) => mm.mmap({ length: pages * PG, prot, flags: ANON });

// Both forms of the hit methods run every test: the constant closures of the first machine
// of a process, and the field-reading methods of every later one (address-space.ts).
for (const form of ['closures', 'fields'] as const) {
describe(`hit methods: ${form}`, () => {
  beforeEach(async () => {
    fastClosuresAllow(form === 'closures' ? 1 : 0);
    mmu = await createMmu({ ramBytes: 16 << 20, tlbEntries: 64 });
    mm = mmu.createAddressSpace();
    expect(Object.getPrototypeOf(mm) === AddressSpaceClass.prototype).toBe(form === 'fields');
    // Count the core's miss handler: the hit path must never call it.
    const x = mmu.core.x as unknown as Record<string, (...a: number[]) => number>;
    const real = x.mm_translate;
    calls = 0;
    x.mm_translate = (...a: number[]) => { calls++; return real(...a); };
  });

  describe('loads and stores: little-endian, any width, hits without a Wasm call', () => {
    it('every width round-trips with read()/write(), little-endian; one core call per page, then hits', () => {
      const va = anon(2);
      mm.store32(va + 8, 0x11223344);
      expect(calls).toBe(1); // the write fault: one call, which fills the TLB
      mm.store8(va, 0xab);
      mm.store16(va + 2, 0xbeef);
      mm.store64(va + 16, 0x0102030405060708n);
      expect([...mm.read(va, 4)]).toEqual([0xab, 0, 0xef, 0xbe]);
      expect([...mm.read(va + 8, 4)]).toEqual([0x44, 0x33, 0x22, 0x11]);
      expect([...mm.read(va + 16, 8)]).toEqual([8, 7, 6, 5, 4, 3, 2, 1]);
      const c = calls;
      expect(mm.load8(va)).toBe(0xab);
      expect(mm.load16(va + 2)).toBe(0xbeef);
      expect(mm.load32(va + 8)).toBe(0x11223344);
      expect(mm.load64(va + 16)).toBe(0x0102030405060708n);
      mm.write(va + 32, new Uint8Array([0xff, 0xff, 0xff, 0xff]));
      expect(mm.load32(va + 32)).toBe(0xffffffff); // unsigned
      expect(calls).toBe(c); // all hits
      expect(mm.load8(va + PG)).toBe(0); // the second page: one more call
      expect(calls).toBe(c + 1);
      expect(mmu.checkInvariants()).toEqual([]);
    });

    it('unaligned and page-crossing accesses work at every width (both pages faulted in)', () => {
      const va = anon(3);
      const at = va + PG - 3;
      mm.store64(at, 0x8877665544332211n);
      expect([...mm.read(at, 8)]).toEqual([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
      expect(mm.load64(at)).toBe(0x8877665544332211n);
      expect(mm.load32(va + PG - 1)).toBe(0x66554433);
      expect(mm.load32(va + PG - 2)).toBe(0x55443322);
      expect(mm.load16(va + PG - 1)).toBe(0x4433);
      mm.store32(va + 2 * PG - 1, 0xa1b2c3d4);
      expect([...mm.read(va + 2 * PG - 1, 4)]).toEqual([0xd4, 0xc3, 0xb2, 0xa1]);
      mm.store16(va + PG + 5, 0x1234); // unaligned, inside a page
      expect(mm.load16(va + PG + 5)).toBe(0x1234);
      expect(mm.load32(va + PG + 3)).toBe(0x12348877);
      expect(mmu.checkInvariants()).toEqual([]);
    });

    it('values are truncated to the width, as a typed array stores them (documented)', () => {
      const va = anon(1);
      mm.store8(va, 0x1ff);
      expect(mm.load8(va)).toBe(0xff);
      mm.store16(va, 0x12345);
      expect(mm.load16(va)).toBe(0x2345);
      mm.store32(va, -1);
      expect(mm.load32(va)).toBe(0xffffffff);
      mm.store32(va, 2 ** 32 + 7.9);
      expect(mm.load32(va)).toBe(7);
      mm.store64(va, -1n);
      expect(mm.load64(va)).toBe(0xffffffffffffffffn);
      mm.store64(va, (1n << 64n) + 5n);
      expect(mm.load64(va)).toBe(5n);
      // The same conversion on the miss path (a fresh page) as on the hit path.
      const vb = anon(1);
      mm.store16(vb + 6, -2); // the miss path converts as the hit path does
      expect(mm.load16(vb + 6)).toBe(0xfffe);
      mm.store32(vb + PG - 2, 2 ** 32 + 0x01020304); // crossing: the same truncation
      expect(mm.load32(vb + PG - 2)).toBe(0x01020304);
      expect(mmu.checkInvariants()).toEqual([]);
    });

    it('mmu.ram is zero-copy: index = physical address, the same bytes the loads see', () => {
      const va = anon(1);
      mm.store32(va + 100, 0xcafebabe);
      const pa = mm.translate(va + 100, 'read');
      const ram = mmu.ram;
      expect(ram.length).toBe(mmu.phys.size + mmu.xip.size);
      expect([...ram.subarray(pa, pa + 4)]).toEqual([0xbe, 0xba, 0xfe, 0xca]);
      ram[pa] = 0x01; // and writes through it are seen (it is the emulated RAM)
      expect(mm.load32(va + 100)).toBe(0xcafeba01);
      expect(mmu.checkInvariants()).toEqual([]);
    });

    it('after Wasm memory grows, old views read as empty, mmu.ram is fresh and the fast path refreshes itself', () => {
      const va = anon(1);
      mm.store8(va, 42);
      const other = mmu.createAddressSpace(); // a second space, made before the growth
      const vb = other.mmap({ length: PG, prot: RW, flags: ANON });
      other.store8(vb, 7);
      const old = mmu.ram;
      // Growth as the core's allocator does it (memory.grow): every view is detached.
      (mmu.wasmExports.memory as WebAssembly.Memory).grow(1);
      expect(old.length).toBe(0);
      expect(mmu.ram.length).toBe(mmu.phys.size + mmu.xip.size);
      mm.mprotect(va, PG, RW);
      expect(mm.load8(va)).toBe(42);
      mm.store8(va, 43);
      expect(mmu.ram[mm.translate(va)]).toBe(43);
      expect(other.load8(vb)).toBe(7); // its hit path had the detached views: a miss, then fresh ones
      other.store8(vb, 8);
      expect(mmu.ram[other.translate(vb)]).toBe(8);
      expect(mmu.createAddressSpace().load8 === other.load8).toBe(true); // one hit path per core again
      expect(mmu.checkInvariants()).toEqual([]);
    });
  });

  describe('fault semantics are those of read()/write() (R1.1, R1.7, R4.4, R5, R9.5)', () => {
    it('R4.4: a load maps the zero page; a store through that read-only entry faults and copies, never writes the zero page', () => {
      const va = anon(1);
      expect(mm.load8(va)).toBe(0);
      expect(mm.pagemap(va, 1)[0].zeroPage).toBe(true);
      const zeroPfn = mmu.phys.zeroPfn;
      mm.store8(va + 1, 9);
      const p = mm.pagemap(va, 1)[0];
      expect(p.zeroPage).toBe(false);
      expect(p.dirty && p.writable).toBe(true);
      expect(mmu.ram[zeroPfn * PG + 1]).toBe(0);
      expect(mm.load8(va + 1)).toBe(9);
      expect(mm.rusage().minflt).toBe(2);
      expect(mmu.checkInvariants()).toEqual([]);
    });

    it('R9.5: after mprotect(PROT_READ) a store faults SEGV_ACCERR at the exact address and the byte is unchanged', () => {
      const va = anon(1);
      mm.store8(va + 5, 1);
      mm.mprotect(va, PG, PROT_READ);
      expect(mm.load8(va + 5)).toBe(1);
      const err = thrown(() => mm.store8(va + 5, 2));
      expect(err).toBeInstanceOf(SegmentationFault);
      expect((err as SegmentationFault).code).toBe('SEGV_ACCERR');
      expect((err as SegmentationFault).address).toBe(va + 5);
      expect(mm.load8(va + 5)).toBe(1);
      expect(mmu.checkInvariants()).toEqual([]);
    });

    it('R1.1: an unmapped address is SEGV_MAPERR; a page-crossing store into it writes nothing', () => {
      const va = anon(2);
      mm.munmap(va + PG, PG);
      expect(() => mm.load32(va + PG)).toThrow(SegmentationFault);
      const e = thrown(() => mm.load8(va + PG + 7)) as SegmentationFault;
      expect(e).toBeInstanceOf(SegmentationFault);
      expect(e.code).toBe('SEGV_MAPERR');
      expect(e.address).toBe(va + PG + 7);
      mm.store32(va + PG - 4, 0);
      expect(() => mm.store32(va + PG - 2, 0xffffffff)).toThrow(SegmentationFault);
      expect(mm.load32(va + PG - 4)).toBe(0);
      expect(mmu.checkInvariants()).toEqual([]);
    });

    it('R1.7: a load beyond the end of a mapped file is SIGBUS', () => {
      const f = mmu.openFile(new MemoryFile(new Uint8Array(100).fill(7)));
      const va = mm.mmap({ length: 2 * PG, prot: PROT_READ, flags: MAP_PRIVATE, file: f });
      expect(mm.load8(va + 99)).toBe(7);
      expect(() => mm.load8(va + PG)).toThrow(BusError);
      expect(mmu.checkInvariants()).toEqual([]);
    });

    it('R5: COW after fork: the child\'s store copies; the parent\'s own store after fork copies too', () => {
      const va = anon(1);
      mm.store32(va, 0x1111);
      const child = mm.fork();
      expect(child.load32(va)).toBe(0x1111);
      child.store32(va, 0x2222);
      expect(mm.load32(va)).toBe(0x1111);
      mm.store32(va, 0x3333); // the parent's write entry was flushed by fork's write-protect
      expect(child.load32(va)).toBe(0x2222);
      expect(mm.load32(va)).toBe(0x3333);
      expect(mm.pagemap(va, 1)[0].pfn).not.toBe(child.pagemap(va, 1)[0].pfn);
      child.destroy();
      expect(mmu.checkInvariants()).toEqual([]);
    });

    it('a shared file mapping: a store dirties the page-cache page another mapping sees', () => {
      const f = mmu.openFile(new MemoryFile(new Uint8Array(PG)));
      const a = mm.mmap({ length: PG, prot: RW, flags: MAP_SHARED, file: f });
      const b = mm.mmap({ length: PG, prot: PROT_READ, flags: MAP_SHARED, file: f });
      mm.store16(a + 10, 0x4142);
      expect(mm.load16(b + 10)).toBe(0x4142);
      expect(mm.pagemap(a, 1)[0].dirty).toBe(true);
      expect(mmu.checkInvariants()).toEqual([]);
    });

    it('instruction fetches use the exec rights: a non-exec page faults SEGV_ACCERR, an exec one hits', () => {
      const code = anon(1, PROT_READ | PROT_EXEC);
      const data = anon(1, RW);
      expect(mm.fetch32(code)).toBe(0);
      expect(mm.fetch16(code + 2)).toBe(0);
      expect(mm.fetch8(code + 3)).toBe(0);
      mm.store8(data, 1);
      expect(mm.load8(data)).toBe(1);
      const err = thrown(() => mm.fetch32(data));
      expect(err).toBeInstanceOf(SegmentationFault);
      expect((err as SegmentationFault).code).toBe('SEGV_ACCERR');
      expect(() => mm.store8(code, 1)).toThrow(SegmentationFault);
      expect(mmu.checkInvariants()).toEqual([]);
    });

    it('device (MMIO) memory goes to the device on every access', () => {
      const seen: string[] = [];
      const dev = mmu.createDevice(PG, { read(o, s) { seen.push(`r${o}/${s}`); return 0x12345678 >>> (32 - 8 * s); }, write(o, s, v) { seen.push(`w${o}/${s}=${v}`); } });
      const va = mm.mmap({ length: PG, prot: RW, flags: MAP_SHARED, file: dev });
      expect(mm.load32(va + 8)).toBe(0x12345678);
      mm.store16(va + 4, 0xabcd);
      mm.load32(va + 8);
      expect(seen).toEqual(['r8/4', 'w4/2=43981', 'r8/4']);
      expect(mmu.checkInvariants()).toEqual([]);
    });
  });

  describe('bad input', () => {
    it('non-integer, negative, too large or non-number addresses are RangeErrors, hit or not', () => {
      const va = anon(1);
      mm.store8(va, 5); // the page is in the TLB
      for (const bad of [va + 0.5, -1, -PG, 2 ** 48, 2 ** 48 + va, NaN, Infinity, String(va) as unknown as number, undefined as unknown as number]) {
        expect(() => mm.load8(bad)).toThrow(RangeError);
        expect(() => mm.load32(bad)).toThrow(RangeError);
        expect(() => mm.fetch8(bad)).toThrow(RangeError);
        expect(() => mm.store8(bad, 1)).toThrow(RangeError);
        expect(() => mm.store64(bad, 1n)).toThrow(RangeError);
      }
      expect(() => mm.store64(va, 1 as unknown as bigint)).toThrow(RangeError);
      expect(mm.load8(va)).toBe(5);
      expect(mmu.checkInvariants()).toEqual([]);
    });

    it('a destroyed address space throws and never reads the frames of a space that reuses its ASID', () => {
      const va = anon(1);
      mm.store8(va, 0x5a);
      const old = mm;
      old.destroy();
      expect(() => old.load8(va)).toThrow(LinuxError);
      expect(() => old.store8(va, 1)).toThrow(LinuxError);
      let again = mmu.createAddressSpace();
      for (let i = 0; i < 4096 && again.asid !== old.asid; i++) { again.destroy(); again = mmu.createAddressSpace(); }
      const vb = again.mmap({ addr: va, length: PG, prot: RW, flags: ANON });
      again.store8(vb, 0x77);
      expect(again.asid).toBe(old.asid); // the ASID is reused: the same TLB keys
      expect(vb).toBe(va);
      expect(() => old.load8(va)).toThrow(LinuxError);
      expect(again.load8(va)).toBe(0x77);
      expect(mmu.checkInvariants()).toEqual([]);
    });
  });

  // high: where mmap puts a mapping (near 2^47: the f64 tags); low: below 2^31 (the int32
  // side table, issue 17). The same tests hold on both.
  for (const where of ['high', 'low'] as const) {
  describe(`isolation (${where} addresses): the hit paths are per core, the key per address space (issue 16)`, () => {
    const LOW = 0x40000;
    const place = (): number => (where === 'high' ? anon(1) : mm.mmap({ addr: LOW, length: PG, prot: RW, flags: ANON | 0x10 /* MAP_FIXED */ }));
    // One hot function for every receiver, as an interpreter's loop would be: the JIT sees
    // several address spaces (and cores) at the same call sites.
    const sum = (m: AddressSpace, va: number, n: number): number => {
      let s = 0;
      for (let i = 0; i < n; i++) { m.store32(va + ((i * 4) & 4095), i); s = (s + m.load32(va + ((i * 4) & 4095)) + m.load8(va)) | 0; }
      return s;
    };

    it('two address spaces on one core: the same va hits only its own entry (the ASID is in the key)', () => {
      const other = mmu.createAddressSpace();
      const va = place();
      const vb = other.mmap({ addr: va, length: PG, prot: RW, flags: ANON | 0x10 /* MAP_FIXED */ });
      expect(vb).toBe(va);
      mm.store32(va, 0x11111111);
      other.store32(va, 0x22222222);
      for (let r = 0; r < 50; r++) { sum(mm, va + 64, 500); sum(other, va + 64, 500); }
      mm.store32(va, 0xaaaaaaaa);
      other.store32(va, 0xbbbbbbbb);
      const c = calls;
      for (let r = 0; r < 1000; r++) {
        expect(mm.load32(va)).toBe(0xaaaaaaaa);
        expect(other.load32(va)).toBe(0xbbbbbbbb);
      }
      // The same va is the same slot of the direct-mapped TLB: each access evicts the other
      // space's entry, so every one misses — a key without the ASID would have hit instead.
      expect(calls - c).toBe(2000);
      expect(mm.translate(va)).not.toBe(other.translate(va));
      expect(mmu.checkInvariants()).toEqual([]);
    });

    it('two cores in one process: each space reads its own core\'s memory; one core dying leaves the other working', async () => {
      const mmu2 = await createMmu({ ramBytes: 16 << 20, tlbEntries: 64 });
      const mm2 = mmu2.createAddressSpace();
      expect(mm2.asid).toBe(mm.asid); // the same ASID, the same keys: only the views differ
      const va = place();
      const vb = mm2.mmap({ addr: va, length: PG, prot: RW, flags: ANON | 0x10 /* MAP_FIXED */ });
      expect(vb).toBe(va);
      for (let r = 0; r < 50; r++) { sum(mm, va + 64, 500); sum(mm2, va + 64, 500); }
      mm.store32(va, 0x01010101);
      mm2.store32(va, 0x02020202);
      for (let r = 0; r < 1000; r++) {
        expect(mm.load32(va)).toBe(0x01010101);
        expect(mm2.load32(va)).toBe(0x02020202);
      }
      expect([...mm.read(va, 4)]).toEqual([1, 1, 1, 1]);
      expect([...mm2.read(va, 4)]).toEqual([2, 2, 2, 2]);
      expect(() => (mmu2.core.x as unknown as { debug_trap(): void }).debug_trap()).toThrow(CoreCrashedError);
      expect(() => mm2.load32(va)).toThrow(CoreCrashedError);
      expect(() => sum(mm2, va, 10)).toThrow(CoreCrashedError);
      expect(mm.load32(va)).toBe(0x01010101);
      expect(sum(mm, va + 64, 500)).toBe(sum(mm, va + 64, 500));
      expect(mmu.checkInvariants()).toEqual([]);
    });

    it('a destroyed address space whose hit path the JIT had optimized throws, and never reads the ASID\'s next owner', () => {
      const va = place();
      for (let r = 0; r < 100; r++) sum(mm, va, 1000); // hot: optimized with this receiver
      const old = mm;
      old.destroy();
      expect(() => sum(old, va, 10)).toThrow(LinuxError);
      let again = mmu.createAddressSpace();
      for (let i = 0; i < 4096 && again.asid !== old.asid; i++) { again.destroy(); again = mmu.createAddressSpace(); }
      expect(again.asid).toBe(old.asid);
      again.mmap({ addr: va, length: PG, prot: RW, flags: ANON | 0x10 /* MAP_FIXED */ });
      again.store32(va, 0x5a5a5a5a);
      expect(() => old.load32(va)).toThrow(LinuxError);
      expect(() => old.store32(va, 1)).toThrow(LinuxError);
      expect(() => sum(old, va, 10)).toThrow(LinuxError);
      expect(again.load32(va)).toBe(0x5a5a5a5a);
      expect(mmu.checkInvariants()).toEqual([]);
    });
  });
  }

  describe('the int32 side table: the hit below 2^31 (issue 17)', () => {
    const FIXED = ANON | 0x10; // MAP_FIXED
    const at = (addr: number, pages: number, prot = RW) => mm.mmap({ addr, length: pages * PG, prot, flags: FIXED });

    it('issue 17: pages below 2^31 hit from the side table, pages from 2^31 up from the f64 tags; every width, no core call once in the TLB', () => {
      // Slots (64 entries) 16-17, 62-63, 4-5, 40, 32-33, 48-49: no two pages evict each other.
      const bases = [0x10000, 0x7fffe000, 0x80004000, 0xfffe8000, 2 ** 32 + 0x20000, 2 ** 40 + 0x30000];
      for (const b of bases) at(b, b === 0xfffe8000 ? 1 : 2);
      bases.forEach((b, k) => {
        mm.store8(b, k + 1); mm.store16(b + 2, 0x1234 + k); mm.store32(b + 4, 0xdeadbe00 + k); mm.store64(b + 8, 0x0102030405060708n + BigInt(k));
      });
      const c = calls;
      for (let r = 0; r < 3; r++) {
        bases.forEach((b, k) => {
          expect(mm.load8(b)).toBe(k + 1);
          expect(mm.load16(b + 2)).toBe(0x1234 + k);
          expect(mm.load32(b + 4)).toBe(0xdeadbe00 + k);
          expect(mm.load64(b + 8)).toBe(0x0102030405060708n + BigInt(k));
          expect([...mm.read(b + 4, 4)]).toEqual([k, 0xbe, 0xad, 0xde]);
        });
      }
      expect(calls).toBe(c); // every one a hit (read() is not counted: it is a core call of its own)
      expect(mmu.checkInvariants()).toEqual([]);
    }, 20000);

    it('issue 17: page crossings test both pages, at every width and at 2^31 (the key of the last byte in the slot of the first)', () => {
      at(0x10000, 2); at(0x7fffe000, 2); at(0x80000000, 1);
      for (const p of [0x11000, 0x7ffff000, 0x80000000]) {
        mm.store8(p - PG, 1); mm.store8(p, 2); // both pages in the TLB, writable
        for (const [n, put, get] of [[2, 'store16', 'load16'], [4, 'store32', 'load32'], [8, 'store64', 'load64']] as const) {
          for (let d = 1; d < n; d++) {
            const va = p - d;
            if (n === 8) (mm as AddressSpace).store64(va, 0x8877665544332211n);
            else (mm[put] as (a: number, v: number) => void)(va, n === 2 ? 0xa1b2 : 0xa1b2c3d4);
            const want = n === 8 ? [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88] : n === 2 ? [0xb2, 0xa1] : [0xd4, 0xc3, 0xb2, 0xa1];
            expect([...mm.read(va, n)]).toEqual(want);
            expect((mm[get] as (a: number) => number | bigint)(va)).toBe(n === 8 ? 0x8877665544332211n : n === 2 ? 0xa1b2 : 0xa1b2c3d4);
          }
        }
      }
      expect(mmu.checkInvariants()).toEqual([]);
    });

    it('issue 17: a va that is not an integer in [0, 2^31) never hits a side-table entry, optimized for int32 or uint32 or not', () => {
      const lo = at(0x10000, 1);
      mm.store32(lo, 0x600df00d);
      at(0x7ffff000, 1);
      mm.store32(0x7ffff000, 0x12345678);
      // Hot call sites, as an interpreter's: int32 addresses (an Int32Array element), uint32 (x >>> 0), any number.
      const i32 = new Int32Array([lo, lo + 4, lo + 8, 0x7ffff000]);
      const viaI32 = (m: AddressSpace, k: number) => m.load32(i32[k & 3]);
      const viaU32 = (m: AddressSpace, a: number) => m.load32(a >>> 0);
      const viaAny = (m: AddressSpace, a: number) => m.load32(a);
      let s = 0;
      for (let r = 0; r < 30000; r++) s = (s + viaI32(mm, r) + viaU32(mm, lo + (r & 4)) + viaAny(mm, lo)) | 0;
      expect(s).not.toBe(0.5);
      const c = calls;
      expect(viaAny(mm, lo)).toBe(0x600df00d);
      expect(calls).toBe(c);
      // Aliases of lo's and 0x7ffff000's low 32 or 31 bits: none may read their bytes.
      for (const bad of [2 ** 32 + lo, 2 ** 33 + lo, 0x80000000 + lo, 0x80000000 + 0x7ffff000, 2 ** 32 + 0x7ffff000]) {
        const e = thrown(() => viaAny(mm, bad));
        expect(e).toBeInstanceOf(SegmentationFault);
        expect((e as SegmentationFault).address).toBe(bad);
        if (bad < 2 ** 32) expect(thrown(() => viaU32(mm, bad))).toBeInstanceOf(SegmentationFault);
        expect(thrown(() => mm.load8(bad))).toBeInstanceOf(SegmentationFault);
        expect(thrown(() => mm.store8(bad, 1))).toBeInstanceOf(SegmentationFault);
      }
      for (const bad of [lo - 2 ** 32, lo - 2 ** 31, lo + 0.5, 0x7ffff000 - 2 ** 32, -1, -2, -3, -4096, -(2 ** 31)]) {
        expect(() => viaAny(mm, bad)).toThrow(RangeError);
        expect(() => mm.load8(bad)).toThrow(RangeError);
        expect(() => mm.load16(bad)).toThrow(RangeError);
        expect(() => mm.store32(bad, 1)).toThrow(RangeError);
        expect(() => mm.store64(bad, 1n)).toThrow(RangeError);
        expect(() => mm.fetch32(bad)).toThrow(RangeError);
      }
      expect(viaI32(mm, 3)).toBe(0x12345678);
      expect(viaU32(mm, lo)).toBe(0x600df00d);
      expect(mm.load32(lo)).toBe(0x600df00d);
      expect(mmu.checkInvariants()).toEqual([]);
    });

    it('issue 17: flushes reach the side table (R9.5 mprotect, R5 fork, R4.4 zero page, MADV_DONTNEED, munmap)', () => {
      const va = at(0x20000, 2);
      // R4.4: a load maps the zero page read-only; the store through it must fault and copy.
      expect(mm.load32(va + PG)).toBe(0);
      mm.store32(va + PG, 7);
      expect(mm.load32(va + PG)).toBe(7);
      mm.store32(va, 0x11111111);
      // R9.5: mprotect(PROT_READ): the write tag is gone, the store faults before writing.
      mm.mprotect(va, PG, PROT_READ);
      const e = thrown(() => mm.store32(va, 0x22222222));
      expect(e).toBeInstanceOf(SegmentationFault);
      expect((e as SegmentationFault).code).toBe('SEGV_ACCERR');
      expect(mm.load32(va)).toBe(0x11111111);
      mm.mprotect(va, PG, RW);
      // R5: fork write-protects the parent: each side's store copies.
      mm.store32(va, 0x33333333);
      const child = mm.fork();
      mm.store32(va, 0x44444444);
      child.store32(va, 0x55555555);
      expect(mm.load32(va)).toBe(0x44444444);
      expect(child.load32(va)).toBe(0x55555555);
      child.destroy();
      // MADV_DONTNEED: the next load sees a fresh zero page.
      mm.madvise(va, PG, 4 /* MADV_DONTNEED */);
      expect(mm.load32(va)).toBe(0);
      // munmap: gone.
      mm.munmap(va, 2 * PG);
      const m = thrown(() => mm.load32(va + PG));
      expect(m).toBeInstanceOf(SegmentationFault);
      expect((m as SegmentationFault).code).toBe('SEGV_MAPERR');
      expect(mmu.checkInvariants()).toEqual([]);
    });

    it('issue 17: with one TLB slot the side table stays empty and every access still works', async () => {
      mmu = await createMmu({ ramBytes: 16 << 20, tlbEntries: 1 });
      mm = mmu.createAddressSpace();
      const va = at(0x10000, 2);
      mm.store32(va + PG - 2, 0xa1b2c3d4); // crossing: both pages through the one slot
      expect(mm.load32(va + PG - 2)).toBe(0xa1b2c3d4);
      for (let i = 0; i < 100; i++) { mm.store8(va + i, i); mm.store8(va + PG + i, 255 - i); }
      for (let i = 0; i < 100; i++) { expect(mm.load8(va + i)).toBe(i); expect(mm.load8(va + PG + i)).toBe(255 - i); }
      expect(mm.load32(va + PG - 2)).toBe(0xfeffc3d4); // d4 c3 | ff fe: the second page's bytes rewritten
      expect(mmu.checkInvariants()).toEqual([]);
    });

    it('issue 17: the invariant checker sees a side-table tag its entry does not hold', () => {
      const va = at(0x10000, 1);
      mm.store32(va, 1);
      const x = mmu.core.x as unknown as { memory: WebAssembly.Memory; mmu_tlb_base(): number; mmu_tlb_entries(): number };
      const entries = x.mmu_tlb_entries();
      const side = new Int32Array(x.memory.buffer, (x.mmu_tlb_base() >>> 0) + entries * 64, entries * 4);
      const slot = ((va >>> 12) & (entries - 1)) * 4;
      expect(side[slot]).toBe(va | mm.asid); // read tag
      expect(side[slot + 1]).toBe(va | mm.asid); // write tag: writable and dirty
      expect(side[slot + 2]).toBe(-(2 ** 31)); // no exec: the empty tag
      mm.munmap(va, PG);
      expect(side[slot]).toBe(-(2 ** 31));
      side[slot] = va | mm.asid; // a stale tag: the checker must say so
      expect(mmu.checkInvariants().length).toBeGreaterThan(0);
      side[slot] = -(2 ** 31);
      expect(mmu.checkInvariants()).toEqual([]);
    });
  });

  describe('a crashed core', () => {
    it('after a trap inside the core, a page that was a TLB hit throws CoreCrashedError instead of reading', () => {
      const va = anon(1);
      mm.store32(va, 7);
      expect(mm.load32(va)).toBe(7); // a hit
      const ram = mmu.ram;
      expect(() => (mmu.core.x as unknown as { debug_trap(): void }).debug_trap()).toThrow(CoreCrashedError);
      expect(() => mm.load32(va)).toThrow(CoreCrashedError);
      expect(() => mm.store8(va, 1)).toThrow(CoreCrashedError);
      expect(() => mmu.ram).toThrow(CoreCrashedError);
      expect(ram.length).toBeGreaterThan(0); // a view taken before stays the caller's: documented
    });
  });

  describe('tlb.view.lookup: access by name or code', () => {
    it("accepts 'read' | 'write' | 'exec' and 0 | 1 | 2; RangeError for anything else", () => {
      const va = anon(1);
      mm.store8(va, 1);
      const pa = mm.translate(va);
      const v = mmu.tlb.view;
      expect(v.lookup(mm.asid, va + 3, 'read')).toBe(pa + 3);
      expect(v.lookup(mm.asid, va + 3, 0)).toBe(pa + 3);
      expect(v.lookup(mm.asid, va + 3, 'write')).toBe(pa + 3);
      expect(v.lookup(mm.asid, va + 3, 'exec')).toBe(-1);
      for (const bad of ['READ', 'x', 3, -1, 0.5, null, undefined, 'toString']) {
        expect(() => v.lookup(mm.asid, va, bad as unknown as 'read')).toThrow(RangeError);
      }
      expect(v.lookup(mm.asid, va + 0.5, 'read')).toBe(-1);
      expect(mmu.checkInvariants()).toEqual([]);
    });
  });
});
}
