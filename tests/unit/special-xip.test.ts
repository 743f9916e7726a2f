// LINUX-SPEC §7 DAX / XIP (R7.1, R7.2): fault handlers that map pfns themselves and do
// the COW themselves; seed 002's memory claim (memory with no struct page); seed 004's
// "locked with no page" (the i_mmap lock held instead of a page lock) and its one-line
// vm_fault record, read field by field from the host during a backend's fault.
import { describe, it, expect } from 'vitest';
import {
  createMmu, MemoryFile, BusError, PAGE_SIZE, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_SHARED,
  VM_FAULT_LOCKED, VM_FAULT_DONE_COW, FAULT_FLAG_WRITE, FAULT_FLAG_USER, FAULT_FLAG_INSTRUCTION,
  type Mmu, type MmuOptions, type AddressSpace, type VmFault,
} from '../../src/index.js';

const PG = PAGE_SIZE;
const MiB = 1024 * 1024;
const RW = PROT_READ | PROT_WRITE;
const PG_LOCKED = 1;

async function machine(opts: MmuOptions = {}): Promise<{ mmu: Mmu; mm: AddressSpace }> {
  const mmu = await createMmu({ ramBytes: 16 * MiB, ...opts });
  return { mmu, mm: mmu.createAddressSpace() };
}

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 13 + seed + (i >> 12)) & 0xff;
  return b;
}

/** Byte equality that stays fast on megabytes (reports the first difference). */
function expectBytes(got: Uint8Array, want: Uint8Array): void {
  expect(got.length).toBe(want.length);
  if (Buffer.from(got.buffer, got.byteOffset, got.length).equals(Buffer.from(want.buffer, want.byteOffset, want.length))) return;
  const i = got.findIndex((b, k) => b !== want[k]);
  expect(got[i], `byte ${i}`).toBe(want[i]);
}

const immap = (mmu: Mmu, fileId: number) => ({
  held: mmu.core.x.file_immap_info(fileId, 0) === 1,
  locks: mmu.core.x.file_immap_info(fileId, 1),
  unlocks: mmu.core.x.file_immap_info(fileId, 2),
  leaked: mmu.core.x.file_immap_info(fileId, 3),
});

describe('§7 R7.2 read faults of an XIP file map its pfns directly', () => {
  it('R7.2 each page maps its XIP pfn: no frame, no page cache, no fault-around (one fault per page)', async () => {
    const { mmu, mm } = await machine();
    const data = pattern(32 * PG, 1);
    const xip = mmu.createXipFile(data);
    const va = mm.mmap({ length: 32 * PG, prot: PROT_READ, flags: MAP_PRIVATE, file: xip });
    const s0 = mmu.stats();
    mm.touch(va, 16 * PG, 'read');
    const s1 = mmu.stats();
    expect(mm.rusage()).toEqual({ minflt: 16, majflt: 0 }); // a MemoryFile would take 1 (fault-around)
    expect(xip.counts.faults).toBe(16);
    expect(s1.faultAroundMapped - s0.faultAroundMapped).toBe(0);
    expect(s0.freeFrames - s1.freeFrames).toBe(s1.pageTables - s0.pageTables); // page tables only
    expect(mm.pagemap(va, 16).map((p) => p.pfn)).toEqual([...Array(16).keys()].map((i) => xip.pfnOf(i)));
    expect(xip.cachedPages).toBe(0);
    expectBytes(mm.read(va, 32 * PG), data);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R7.2 a hole maps the zero page read-only; beyond EOF is SIGBUS', async () => {
    const { mmu, mm } = await machine();
    const xip = mmu.createXipFile(pattern(3 * PG, 2), { holes: [1] });
    expect(xip.isHole(1)).toBe(true);
    const va = mm.mmap({ length: 4 * PG, prot: RW, flags: MAP_SHARED, file: xip });
    expect(mm.read(va + PG, PG).every((b) => b === 0)).toBe(true);
    expect(mm.pagemap(va + PG, 1)[0]).toMatchObject({ pfn: mmu.phys.zeroPfn, zeroPage: true, writable: false });
    expect(() => mm.read(va + 3 * PG, 1)).toThrow(BusError);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R7.2 a shared write goes through pfn_mkwrite into XIP memory; to a hole it allocates the block and unmaps the zero page everywhere', async () => {
    const { mmu, mm } = await machine();
    const xip = mmu.createXipFile(pattern(2 * PG, 3), { holes: [1] });
    const b = mmu.createAddressSpace(), c = mmu.createAddressSpace();
    const a1 = mm.mmap({ length: 2 * PG, prot: RW, flags: MAP_SHARED, file: xip });
    const b1 = b.mmap({ length: 2 * PG, prot: PROT_READ, flags: MAP_SHARED, file: xip });
    const c1 = c.mmap({ length: 2 * PG, prot: RW, flags: MAP_PRIVATE, file: xip });
    for (const [s, v] of [[mm, a1], [b, b1], [c, c1]] as const) s.touch(v, 2 * PG, 'read');
    c.write(c1 + PG + 5, new Uint8Array([0x77])); // a private COW copy of the hole
    mm.write(a1 + 10, new Uint8Array([1, 2])); // read-only special PTE → pfn_mkwrite → writable in place
    expect(xip.counts.pfnMkwrites).toBe(1);
    expect([...b.read(b1 + 10, 2)]).toEqual([1, 2]);
    mm.write(a1 + PG + 7, new Uint8Array([0x99])); // the hole: zero page → its own block
    expect(xip.isHole(1)).toBe(false);
    expect(xip.counts.holesFilled).toBe(1);
    expect(mm.pagemap(a1 + PG, 1)[0]).toMatchObject({ pfn: xip.pfnOf(1)!, writable: true, zeroPage: false });
    expect(b.pagemap(b1 + PG, 1)[0].present).toBe(false); // its zero page is gone
    expect(b.read(b1 + PG + 7, 1)[0]).toBe(0x99);
    expect(c.pagemap(c1 + PG, 1)[0]).toMatchObject({ present: true, exclusive: true }); // COWed copy stays
    expect(c.read(c1 + PG + 5, 3)).toEqual(new Uint8Array([0x77, 0, 0]));
    expect(xip.read(PG + 7, 1)[0]).toBe(0x99);
    expect(xip.cachedPages).toBe(0);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('§7 R7.1 the fault handler does the COW itself (DONE_COW)', () => {
  it('R7.1 a private write fault: the handler copies into cowPage, finishes the fault, returns DONE_COW; no page cache is touched', async () => {
    const { mmu, mm } = await machine();
    const data = pattern(4 * PG, 4);
    const xip = mmu.createXipFile(data, { holes: [3] });
    const va = mm.mmap({ length: 4 * PG, prot: RW, flags: MAP_PRIVATE, file: xip });
    const s0 = mmu.stats();
    mm.write(va + PG + 9, new Uint8Array([0xfe]));
    mm.write(va + 3 * PG + 1, new Uint8Array([0xfd])); // a hole: the copy is zero-filled
    const s1 = mmu.stats();
    expect(s1.doneCow - s0.doneCow).toBe(2);
    expect(s1.cowCopies - s0.cowCopies).toBe(0);
    expect(xip.counts.cows).toBe(2);
    const want = data.slice(PG, 2 * PG);
    want[9] = 0xfe;
    expectBytes(mm.read(va + PG, PG), want);
    const hole = new Uint8Array(PG);
    hole[1] = 0xfd;
    expectBytes(mm.read(va + 3 * PG, PG), hole);
    expect(mm.pagemap(va + PG, 1)[0]).toMatchObject({ file: false, exclusive: true, writable: true, dirty: true });
    expect(mm.status()).toMatchObject({ rssAnon: 2 * PG, rssFile: 0 });
    expect(xip.read(PG + 9, 1)[0]).toBe(data[PG + 9]);
    expect(xip.isHole(3)).toBe(true);
    expect(xip.cachedPages).toBe(0);
    expect(mm.rusage()).toEqual({ minflt: 2, majflt: 0 });
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R7.1 private writes to an XIP page: each writer gets its own copy, XIP bytes and every other address space are untouched, doneCow = pages written', async () => {
    const { mmu } = await machine();
    const data = pattern(64 * PG, 5);
    const xip = mmu.createXipFile(data);
    const readers = Array.from({ length: 4 }, () => mmu.createAddressSpace());
    const rva = readers.map((s) => s.mmap({ length: 64 * PG, prot: RW, flags: MAP_PRIVATE, file: xip }));
    readers.forEach((s, i) => s.touch(rva[i], 64 * PG, 'read'));
    const writer = mmu.createAddressSpace();
    const wva = writer.mmap({ length: 64 * PG, prot: RW, flags: MAP_PRIVATE, file: xip });
    const written = [0, 3, 17, 18, 40, 63];
    const s0 = mmu.stats();
    for (const p of written) writer.write(wva + p * PG + 100, new Uint8Array([p, 0xaa, p]));
    const s1 = mmu.stats();
    expect(s1.doneCow - s0.doneCow).toBe(written.length);
    expect(s1.cowCopies - s0.cowCopies).toBe(0);
    expect(s0.freeFrames - s1.freeFrames - (s1.pageTables - s0.pageTables)).toBe(written.length); // one frame per copy
    expectBytes(xip.read(), data);
    readers.forEach((s, i) => expectBytes(s.read(rva[i], 64 * PG), data));
    const got = writer.read(wva, 64 * PG);
    const want = data.slice();
    for (const p of written) want.set([p, 0xaa, p], p * PG + 100);
    expectBytes(got, want);
    const pm = writer.pagemap(wva, 64);
    written.forEach((p) => expect(pm[p]).toMatchObject({ exclusive: true, file: false }));
    expect(pm.filter((p) => p.present).length).toBe(64); // the rest faulted in by read() as XIP pfns
    expect(writer.status().rssAnon).toBe(written.length * PG);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R7.1 a handler that returns DONE_COW without mapping the copy gets SIGBUS, and the copy is freed', async () => {
    const { mmu, mm } = await machine();
    const file = mmu.openFile({ size: () => PG, readPage: () => 0, fault: () => VM_FAULT_DONE_COW }, { noMapPages: true });
    const va = mm.mmap({ length: PG, prot: RW, flags: MAP_PRIVATE, file });
    const free0 = mmu.stats().freeFrames;
    expect(() => mm.write(va, new Uint8Array([1]))).toThrow(BusError);
    expect(mmu.stats().freeFrames).toBe(free0 - (mmu.stats().pageTables - 1)); // tables only
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('seed 004: VM_FAULT_LOCKED with no page: the i_mmap lock is held instead of a page lock', () => {
  it('seed 004 the handler fills cowPage, takes the i_mmap lock and returns LOCKED with no page; the core maps the copy and releases that lock', async () => {
    const { mmu, mm } = await machine();
    const data = pattern(2 * PG, 6);
    const xip = mmu.createXipFile(data, { cow: 'immap-locked' });
    const va = mm.mmap({ length: 2 * PG, prot: RW, flags: MAP_PRIVATE, file: xip });
    const before = immap(mmu, xip.id);
    const s0 = mmu.stats();
    mm.write(va + PG + 2, new Uint8Array([0x11]));
    expect(immap(mmu, xip.id)).toEqual({ held: false, locks: before.locks + 1, unlocks: before.unlocks + 1, leaked: before.leaked });
    expect(mmu.stats().doneCow - s0.doneCow).toBe(0); // not the DONE_COW protocol
    const p = mm.pagemap(va + PG, 1)[0];
    expect(p).toMatchObject({ exclusive: true, file: false, writable: true });
    expect(mmu.core.x.page_info(p.pfn, 0) & PG_LOCKED).toBe(0); // no page lock set or left
    const want = data.slice(PG);
    want[2] = 0x11;
    expectBytes(mm.read(va + PG, PG), want);
    expect(xip.read(PG + 2, 1)[0]).toBe(data[PG + 2]);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('seed 004 the core releases the i_mmap lock and never touches a page lock: a locked page-cache page at that index stays locked', async () => {
    const { mmu, mm } = await machine();
    const src = pattern(PG, 7);
    let sawPage: number | null | undefined;
    const backend = new MemoryFile(src);
    const file = mmu.openFile(Object.assign(backend, {
      fault(vmf: VmFault): number {
        sawPage = vmf.page;
        vmf.cowBytes()!.set(src);
        vmf.lockMapping();
        return VM_FAULT_LOCKED;
      },
    }), { noMapPages: true });
    file.prime(0, 1);
    file.setPageState(0, { locked: true });
    const va = mm.mmap({ length: PG, prot: RW, flags: MAP_PRIVATE, file });
    const before = immap(mmu, file.id);
    mm.write(va + 1, new Uint8Array([0x22]));
    expect(sawPage).toBeNull();
    expect(immap(mmu, file.id)).toMatchObject({ held: false, locks: before.locks + 1, unlocks: before.unlocks + 1, leaked: before.leaked });
    expect(file.page(0)).toMatchObject({ locked: true, mapcount: 0 }); // untouched: it was never the fault's page
    const want = src.slice();
    want[1] = 0x22;
    expectBytes(mm.read(va, PG), want);
    file.setPageState(0, { locked: false });
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('seed 004 LOCKED with no page and no i_mmap lock is SIGBUS; a lock the handler leaves behind (it threw) is released and counted as leaked', async () => {
    const { mmu, mm } = await machine();
    let mode = 'no-lock';
    const file = mmu.openFile({
      size: () => PG, readPage: () => 0,
      fault: (vmf: VmFault) => {
        if (mode === 'no-lock') return VM_FAULT_LOCKED;
        vmf.lockMapping();
        throw new Error('backend failed while holding the lock');
      },
    }, { noMapPages: true });
    const va = mm.mmap({ length: PG, prot: RW, flags: MAP_PRIVATE, file });
    expect(() => mm.write(va, new Uint8Array([1]))).toThrow(BusError);
    const before = immap(mmu, file.id);
    mode = 'throw';
    expect(() => mm.write(va, new Uint8Array([1]))).toThrow(BusError);
    expect(immap(mmu, file.id)).toEqual({ held: false, locks: before.locks + 1, unlocks: before.unlocks + 1, leaked: before.leaked + 1 });
    expect(mmu.backendErrors.length).toBe(1);
    expect(mm.pagemap(va, 1)[0].present).toBe(false);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('seed 004: vm_fault is one 64-byte cache line, laid out as assembly/vmfault.ts documents', () => {
  it('the record read from the host during a backend fault: flags, vma, address, pgoff, cow_page, page, pte, pmd, orig_pte, mm', async () => {
    const { mmu, mm } = await machine();
    const data = pattern(4 * PG, 8);
    type Snap = { at: number; raw: DataView; getters: { flags: number; address: number; pgoff: number; cowPage: number | null; page: number | null } };
    const snaps: Snap[] = [];
    const xip = mmu.createXipFile(data);
    const inner = xip.backend.fault!.bind(xip.backend);
    xip.backend.fault = (vmf: VmFault) => {
      const at = mmu.core.x.vmf_addr() >>> 0;
      snaps.push({ at, raw: new DataView(mmu.core.x.memory.buffer.slice(at, at + 64)),
        getters: { flags: vmf.flags, address: vmf.address, pgoff: vmf.pgoff, cowPage: vmf.cowPage, page: vmf.page } });
      return inner(vmf);
    };
    const va = mm.mmap({ length: 4 * PG, prot: RW, flags: MAP_PRIVATE, file: xip, offset: 0 });
    mm.touch(va, 1, 'read'); // makes the PTE table exist, so the next faults see their PTE slot
    snaps.length = 0;
    mm.touch(va + 2 * PG + 5, 1, 'read');
    mm.write(va + 3 * PG + 7, new Uint8Array([1]));
    expect(snaps.length).toBe(2);
    const ramBase = mmu.core.x.mmu_ram_base() >>> 0;
    const mem = () => new DataView(mmu.core.x.memory.buffer);
    const u64 = (dv: DataView, off: number) => dv.getUint32(off, true) + dv.getUint32(off + 4, true) * 2 ** 32;
    const vmaId = mmu.core.x.mm_vma_first(mm.id);
    for (const [i, s] of snaps.entries()) {
      const write = i === 1;
      const page = write ? 3 : 2;
      const r = s.raw;
      expect(s.at % 64).toBe(0); // one cache line
      const flags = r.getUint32(0, true); // +0 flags (the retry flags are the arch entry's business)
      expect(flags & (FAULT_FLAG_USER | FAULT_FLAG_WRITE | FAULT_FLAG_INSTRUCTION)).toBe(FAULT_FLAG_USER | (write ? FAULT_FLAG_WRITE : 0));
      expect(r.getUint32(4, true)).toBe(vmaId); // +4 vma
      expect(mmu.core.x.vma_info(vmaId, 0)).toBe(va);
      expect(u64(r, 8)).toBe(va + page * PG); // +8 page-aligned address
      expect(u64(r, 16)).toBe(page); // +16 pgoff
      const cow = r.getUint32(24, true); // +24 cow_page: pfn + 1
      expect(r.getUint32(28, true)).toBe(0); // +28 page: none handed back yet
      const pteSlot = r.getUint32(32, true); // +32 linear address of the PTE slot
      const pmdSlot = r.getUint32(36, true); // +36 linear address of the PMD slot
      expect(u64(r, 40)).toBe(0); // +40 orig_pte: none
      expect(r.getUint32(48, true)).toBe(0); // +48 prealloc: the table existed
      expect(r.getUint32(52, true)).toBe(mm.id); // +52 mm
      // The slots are where the walker finds this page.
      const pfnOf = (slot: number) => Number((mem().getBigUint64(slot, true) >> 12n) & 0xfff_ffffn);
      const pm = mm.pagemap(va + page * PG, 1)[0];
      expect(pfnOf(pteSlot)).toBe(pm.pfn);
      expect(pfnOf(pmdSlot)).toBe(Math.floor((pteSlot - ramBase) / PG));
      expect((pteSlot % PG) / 8).toBe(((va + page * PG) / PG) % 512);
      if (write) {
        expect(cow - 1).toBe(pm.pfn); // the preallocated copy is what got mapped
        expect(s.getters.cowPage).toBe(pm.pfn);
      } else {
        expect(cow).toBe(0);
        expect(s.getters.cowPage).toBeNull();
        expect(pm.pfn).toBe(xip.pfnOf(2));
      }
      expect(s.getters).toMatchObject({ flags: r.getUint32(0, true), address: va + page * PG, pgoff: page, page: null });
    }
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('seed 002: memory with no struct page', () => {
  it('seed 002 a 16 MiB XIP file mapped by 100 address spaces and read in full uses no RAM but page tables; a MemoryFile uses 4096 frames once', async () => {
    const SIZE = 16 * MiB;
    const mmu = await createMmu({ ramBytes: 64 * MiB });
    const data = pattern(SIZE, 9);
    const xip = mmu.createXipFile(data);
    const s0 = mmu.stats();
    const spaces: AddressSpace[] = [];
    for (let i = 0; i < 100; i++) {
      const mm = mmu.createAddressSpace();
      const va = mm.mmap({ length: SIZE, prot: PROT_READ, flags: i % 2 ? MAP_SHARED : MAP_PRIVATE, file: xip });
      mm.touch(va, SIZE, 'read'); // a read access to every page
      if (i % 25 === 0) expectBytes(mm.read(va, SIZE), data);
      expect(mm.status().vmRss).toBe(0);
      spaces.push(mm);
    }
    const s1 = mmu.stats();
    // RAM in use grew by page tables and nothing else (the PGDs of the new spaces included).
    expect(s0.freeFrames - s1.freeFrames).toBe(s1.pageTables - s0.pageTables);
    expect(s1.pageTables - s0.pageTables).toBe(100 * (1 + 1 + 1 + 8)); // PGD, PUD, PMD, 8 PTE tables each
    const pm = spaces[99].pagemap(spaces[99].maps()[0].start, SIZE / PG);
    expect(pm.every((p, i) => p.present && p.pfn === xip.pfnOf(i) && p.pfn >= mmu.phys.frames)).toBe(true);
    expect(xip.cachedPages).toBe(0);
    expect(mmu.checkInvariants()).toEqual([]);
    for (const mm of spaces) mm.destroy();
    expect(mmu.stats().freeFrames).toBe(s0.freeFrames);

    // The same through the page cache: 4096 frames, once, however many map it.
    const mem = mmu.openFile(new MemoryFile(data));
    const m0 = mmu.stats();
    const more: AddressSpace[] = [];
    for (let i = 0; i < 100; i++) {
      const mm = mmu.createAddressSpace();
      const va = mm.mmap({ length: SIZE, prot: PROT_READ, flags: MAP_SHARED, file: mem });
      mm.touch(va, SIZE, 'read');
      if (i % 25 === 0) expectBytes(mm.read(va, SIZE), data);
      more.push(mm);
    }
    const m1 = mmu.stats();
    expect(mem.cachedPages).toBe(SIZE / PG);
    expect(m0.freeFrames - m1.freeFrames).toBe(SIZE / PG + (m1.pageTables - m0.pageTables));
    expect(mmu.checkInvariants()).toEqual([]);
  }, 120_000);
});

describe('XipFile as a file', () => {
  it('closing: EBUSY while mapped; then its XIP range is free again; it never grows beyond its range', async () => {
    const { mmu, mm } = await machine({ xipBytes: 2 * MiB });
    const xip = mmu.createXipFile(pattern(3 * PG, 10));
    expect(mmu.xip.freeBytes).toBe(2 * MiB - 3 * PG);
    const va = mm.mmap({ length: 3 * PG, prot: PROT_READ, flags: MAP_SHARED, file: xip });
    mm.touch(va, 3 * PG, 'read');
    expect(() => xip.close()).toThrow(/EBUSY/);
    expect(() => xip.truncate(4 * PG)).toThrow(RangeError);
    xip.truncate(PG + 10); // R10.2: pages beyond are zapped, and become holes
    expect(mm.pagemap(va, 3).map((p) => p.present)).toEqual([true, true, false]); // the partial page stays
    expect(() => mm.read(va + 2 * PG, 1)).toThrow(BusError);
    expectBytes(mm.read(va + PG + 9, 2), new Uint8Array([pattern(3 * PG, 10)[PG + 9], 0]));
    mm.munmap(va, 3 * PG);
    xip.close();
    expect(mmu.xip.freeBytes).toBe(2 * MiB);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('bad arguments are RangeErrors; a backend fault outside a COW never sees a cowPage', async () => {
    const { mmu, mm } = await machine();
    expect(() => mmu.createXipFile(-1)).toThrow(RangeError);
    expect(() => mmu.createXipFile(PG, { holes: [1] })).toThrow(RangeError);
    expect(() => mmu.createXipFile(PG, { cow: 'x' as 'done-cow' })).toThrow(RangeError);
    const xip = mmu.createXipFile(PG);
    let cow: Uint8Array | null | undefined;
    const inner = xip.backend.fault!.bind(xip.backend);
    xip.backend.fault = (vmf: VmFault) => { cow = vmf.cowBytes(); return inner(vmf); };
    const va = mm.mmap({ length: PG, prot: RW, flags: MAP_SHARED, file: xip });
    mm.write(va, new Uint8Array([3])); // a shared write fault through a none PTE
    expect(cow).toBeNull();
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ pfn: xip.pfnOf(0)!, writable: true, dirty: true });
    expect(xip.read(0, 1)[0]).toBe(3);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});
