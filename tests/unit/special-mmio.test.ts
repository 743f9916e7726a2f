// Device (MMIO) memory beyond RAM and XIP (issue #5; LINUX-SPEC R6.3, R6.6): accesses
// through a device mapping reach the host's handler byte for byte, with the offsets and
// sizes of the access; the TLB never holds a device page, so every access walks.
import { describe, it, expect } from 'vitest';
import {
  createMmu, LinuxError, PAGE_SIZE, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS,
  type Mmu, type AddressSpace, type MmioHandler,
} from '../../src/index.js';
import { PageTables, P, RW as PTE_RW, US } from '../helpers/pagetables.js';

const PG = PAGE_SIZE;
const MiB = 1024 * 1024;
const RW = PROT_READ | PROT_WRITE;

async function machine(): Promise<{ mmu: Mmu; mm: AddressSpace }> {
  const mmu = await createMmu({ ramBytes: 16 * MiB, xipBytes: 2 * MiB });
  return { mmu, mm: mmu.createAddressSpace() };
}

type Call = [op: 'r' | 'w', offset: number, size: number, value?: number];

/** A device whose registers are `regs`, logging every access. */
function registers(size: number): { regs: Uint8Array; calls: Call[]; handler: MmioHandler } {
  const regs = new Uint8Array(size);
  for (let i = 0; i < size; i++) regs[i] = (i * 37 + 11) & 0xff;
  const calls: Call[] = [];
  const dv = new DataView(regs.buffer);
  return {
    regs, calls,
    handler: {
      read(o, s) {
        calls.push(['r', o, s]);
        return s === 1 ? dv.getUint8(o) : s === 2 ? dv.getUint16(o, true) : dv.getUint32(o, true);
      },
      write(o, s, v) {
        calls.push(['w', o, s, v]);
        if (s === 1) dv.setUint8(o, v); else if (s === 2) dv.setUint16(o, v, true); else dv.setUint32(o, v, true);
      },
    },
  };
}

describe('MMIO: accesses reach the device byte for byte', () => {
  it('reads and writes become naturally aligned 1/2/4-byte accesses at the right offsets, little-endian', async () => {
    const { mmu, mm } = await machine();
    const { regs, calls, handler } = registers(2 * PG);
    const dev = mmu.createDevice(2 * PG, handler);
    const va = mm.mmap({ length: 2 * PG, prot: RW, flags: MAP_SHARED, file: dev });
    expect(mm.read(va + 5, 7)).toEqual(regs.slice(5, 12));
    expect(calls.splice(0)).toEqual([['r', 5, 1], ['r', 6, 2], ['r', 8, 4]]);
    expect(mm.read(va + PG - 2, 4)).toEqual(regs.slice(PG - 2, PG + 2)); // two pages, two walks
    expect(calls.splice(0)).toEqual([['r', PG - 2, 2], ['r', PG, 2]]);
    mm.write(va + PG + 1, new Uint8Array([1, 2, 3, 4, 5, 6, 7]));
    expect(calls.splice(0)).toEqual([['w', PG + 1, 1, 0x01], ['w', PG + 2, 2, 0x0302], ['w', PG + 4, 4, 0x07060504]]);
    expect([...regs.subarray(PG + 1, PG + 8)]).toEqual([1, 2, 3, 4, 5, 6, 7]);
    mm.write(va + 16, new Uint8Array([0x98, 0xba, 0xdc, 0xfe])); // a value above 2^31
    expect(calls.splice(0)).toEqual([['w', 16, 4, 0xfedcba98]]);
    expect([...mm.read(va + 16, 4)]).toEqual([0x98, 0xba, 0xdc, 0xfe]);
    expect(calls.splice(0)).toEqual([['r', 16, 4]]);
    // A mapping at an offset sees the device from there.
    const at = mm.mmap({ length: PG, prot: PROT_READ, flags: MAP_SHARED, file: dev, offset: PG });
    mm.read(at + 8, 2);
    expect(calls.splice(0)).toEqual([['r', PG + 8, 2]]);
    expect(mmu.backendErrors).toEqual([]);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('a byte-buffer device gets each span whole, one call per page, with its offset and length', async () => {
    const { mmu, mm } = await machine();
    const mem = new Uint8Array(2 * PG).map((_, i) => i & 0xff);
    const log: string[] = [];
    const dev = mmu.createDevice(2 * PG, {
      readBytes(o, dst) { log.push(`r ${o} ${dst.length}`); dst.set(mem.subarray(o, o + dst.length)); },
      writeBytes(o, src) { log.push(`w ${o} ${src.length}`); mem.set(src, o); },
    });
    const va = mm.mmap({ length: 2 * PG, prot: RW, flags: MAP_SHARED, file: dev });
    expect(mm.read(va + 100, 6000)).toEqual(mem.slice(100, 6100));
    mm.write(va + 4000, new Uint8Array(200).fill(0xab));
    expect(log).toEqual(['r 100 3996', 'r 4096 2004', 'w 4000 96', 'w 4096 104']);
    expect(mem.subarray(4000, 4200).every((b) => b === 0xab)).toBe(true);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('touch: a read is one byte load per page; a write is the load and a store of the same byte', async () => {
    const { mmu, mm } = await machine();
    const { calls, handler } = registers(2 * PG);
    const dev = mmu.createDevice(2 * PG, handler);
    const va = mm.mmap({ length: 2 * PG, prot: RW, flags: MAP_SHARED, file: dev });
    mm.touch(va + 3, 2 * PG - 3, 'read');
    expect(calls.splice(0)).toEqual([['r', 3, 1], ['r', PG, 1]]);
    mm.touch(va + PG, 1, 'write');
    expect(calls.splice(0)).toEqual([['r', PG, 1], ['w', PG, 1, (PG * 37 + 11) & 0xff]]);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('bytes past the device\'s size read as all ones and writes there vanish; a handler that throws gives all ones and is reported', async () => {
    const { mmu, mm } = await machine();
    const { calls, handler } = registers(100);
    const dev = mmu.createDevice(100, handler);
    const va = mm.mmap({ length: PG, prot: RW, flags: MAP_SHARED, file: dev });
    const got = mm.read(va + 96, 8);
    expect(calls.splice(0)).toEqual([['r', 96, 4]]);
    expect([...got.subarray(4)]).toEqual([0xff, 0xff, 0xff, 0xff]);
    mm.write(va + 98, new Uint8Array([1, 2, 3, 4]));
    expect(calls.splice(0)).toEqual([['w', 98, 2, 0x0201]]);
    const bad = mmu.createDevice(PG, { read() { throw new Error('bus fault'); } });
    const bva = mm.mmap({ length: PG, prot: PROT_READ, flags: MAP_SHARED, file: bad });
    expect([...mm.read(bva, 4)]).toEqual([0xff, 0xff, 0xff, 0xff]);
    expect(mmu.backendErrors.map((e) => (e as Error).message)).toEqual(['bus fault']);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('device windows are carved one after another in device space (above XIP), page aligned', async () => {
    const { mmu } = await machine();
    const a = mmu.createDevice(100, {}), b = mmu.createDevice(3 * PG + 1, {}), c = mmu.createDevice(PG, {});
    expect(mmu.devices.base).toBe(16 * MiB + 2 * MiB);
    expect([a.pa, b.pa, c.pa]).toEqual([mmu.devices.base, mmu.devices.base + PG, mmu.devices.base + 5 * PG]);
    expect([a.pfn, b.windowPages, b.size]).toEqual([mmu.devices.base / PG, 4, 3 * PG + 1]);
    for (const [size, handler, opts] of [[0, {}, {}], [-PG, {}, {}], [1.5, {}, {}], [PG, null, {}], [PG, {}, { mapping: 'x' }]] as const) {
      expect(() => mmu.createDevice(size, handler as MmioHandler, opts as { mapping: 'remap' })).toThrow(RangeError);
    }
  });

  it('a device file cannot close while mapped (EBUSY); unmapped, it closes and its window stops answering', async () => {
    const { mmu, mm } = await machine();
    const { calls, handler } = registers(PG);
    const dev = mmu.createDevice(PG, handler);
    const va = mm.mmap({ length: PG, prot: PROT_READ, flags: MAP_SHARED, file: dev });
    expect(() => dev.close()).toThrow(LinuxError);
    mm.munmap(va, PG);
    dev.close();
    expect(calls).toEqual([]);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('MMIO: the TLB never caches a device page (every access walks)', () => {
  it('each access to a device page is a walk and never a TLB hit; RAM pages hit after the first; no device pfn in the TLB', async () => {
    const { mmu, mm } = await machine();
    const { calls, handler } = registers(PG);
    const dev = mmu.createDevice(PG, handler);
    const dva = mm.mmap({ length: PG, prot: RW, flags: MAP_SHARED, file: dev });
    const ram = mm.mmap({ length: PG, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.write(ram, new Uint8Array([1]));
    mm.read(ram, 1);
    const s0 = mmu.stats();
    for (let i = 0; i < 10; i++) mm.read(dva + 4 * i, 4);
    for (let i = 0; i < 5; i++) mm.write(dva + 64 + 4 * i, new Uint8Array([i, 0, 0, 0]));
    const s1 = mmu.stats();
    expect(s1.walks - s0.walks).toBe(15);
    expect(s1.tlbHits - s0.tlbHits).toBe(0);
    expect(s1.tlbMisses - s0.tlbMisses).toBe(15);
    expect(calls.length).toBe(15);
    for (let i = 0; i < 10; i++) mm.read(ram, 1);
    const s2 = mmu.stats();
    expect([s2.walks - s1.walks, s2.tlbHits - s1.tlbHits]).toEqual([0, 10]);
    const devPfns = (e: { pfn: number }) => e.pfn >= mmu.devices.base / PG;
    expect(mmu.tlb.view.dump().filter(devPfns)).toEqual([]);
    expect(mmu.tlb.view.lookup(mm.asid, dva, 0)).toBe(-1);
    expect(mmu.tlb.view.lookup(mm.asid, ram, 0)).toBe(mm.translate(ram));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('the hardware path for emulators: a translation to device memory succeeds but is never entered in the TLB', async () => {
    const { mmu } = await machine();
    const dev = mmu.createDevice(PG, {});
    const pt = new PageTables(mmu);
    const root = pt.root();
    const va = 0x1234_5000;
    pt.map(root, va, { pa: dev.pa, leaf: P | PTE_RW | US });
    const w0 = mmu.stats().walks;
    for (let i = 0; i < 3; i++) expect(mmu.tlb.translate(7, root, va + 8, 'read')).toEqual({ ok: true, pa: dev.pa + 8 });
    expect(mmu.stats().walks - w0).toBe(3);
    expect(mmu.tlb.view.lookup(7, va + 8, 0)).toBe(-1);
    pt.release();
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('MMIO: private device mappings and fork (R6.6, R5.5)', () => {
  it('R6.6 a private write copies the page through the device (reads only) into a RAM page; later accesses stay in RAM', async () => {
    const { mmu, mm } = await machine();
    const { regs, calls, handler } = registers(PG);
    const dev = mmu.createDevice(PG, handler);
    const va = mm.mmap({ length: PG, prot: RW, flags: MAP_PRIVATE, file: dev });
    expect(mm.read(va + 4, 4)).toEqual(regs.slice(4, 8));
    calls.length = 0;
    mm.write(va + 10, new Uint8Array([0xee]));
    expect(calls.length).toBe(PG / 4);
    expect(calls.every(([op, o, s], i) => op === 'r' && o === 4 * i && s === 4)).toBe(true);
    calls.length = 0;
    const want = regs.slice();
    want[10] = 0xee;
    expect(mm.read(va, PG)).toEqual(want);
    expect(calls).toEqual([]); // the copy is RAM now
    expect(regs[10]).toBe((10 * 37 + 11) & 0xff); // the device never saw a store
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ exclusive: true, file: false, special: false });
    expect(mm.pagemap(va, 1)[0].pfn).toBeLessThan(mmu.phys.frames);
    expect(mmu.stats().cowCopies).toBe(1);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R5.5 a fork child reaches the same device registers through its copied PTEs, without a fault', async () => {
    const { mmu, mm } = await machine();
    const { regs, calls, handler } = registers(PG);
    const dev = mmu.createDevice(PG, handler);
    const va = mm.mmap({ length: PG, prot: RW, flags: MAP_SHARED, file: dev });
    const child = mm.fork();
    child.write(va + 32, new Uint8Array([9, 8, 7, 6]));
    expect(calls.splice(0)).toEqual([['w', 32, 4, 0x06070809]]);
    expect([...mm.read(va + 32, 4)]).toEqual([9, 8, 7, 6]);
    expect([...regs.subarray(32, 36)]).toEqual([9, 8, 7, 6]);
    expect(child.rusage()).toEqual({ minflt: 0, majflt: 0 });
    expect(mmu.checkInvariants()).toEqual([]);
  });
});
