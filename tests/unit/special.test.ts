// LINUX-SPEC §6 special mappings (R6.1-R6.6) and what other rooms do with them: fork
// (R5.5), GUP / populate / MADV_DONTNEED (R8.3, R8.5, R9.1, R9.3), pagemap (R11.2); the
// VM_MIXEDMAP refcount table of seed 002; physical memory beyond RAM and its option.
// (mlock of special VMAs, R8.4, is tested with mlock.ts by its owner.)
import { describe, it, expect } from 'vitest';
import {
  createMmu, LinuxError, BusError, PAGE_SIZE, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_SHARED,
  MAP_ANONYMOUS, MAP_FIXED, MAP_POPULATE, MADV_DONTNEED, MADV_POPULATE_READ, VM_IO, VM_PFNMAP,
  VM_DONTEXPAND, VM_DONTDUMP, VM_MIXEDMAP, VM_FAULT_SIGBUS, VM_FAULT_NOPAGE,
  type Mmu, type MmuOptions, type AddressSpace, type Backend, type OpenOptions, type VmFault,
  type ErrnoName, type File,
} from '../../src/index.js';

const PG = PAGE_SIZE;
const MiB = 1024 * 1024;
const RW = PROT_READ | PROT_WRITE;
const SPECIAL_FLAGS = VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP;

async function machine(opts: MmuOptions = {}): Promise<{ mmu: Mmu; mm: AddressSpace }> {
  const mmu = await createMmu({ ramBytes: 16 * MiB, ...opts });
  return { mmu, mm: mmu.createAddressSpace() };
}
const refcount = (mmu: Mmu, pfn: number) => mmu.core.x.page_info(pfn, 1);
const mapcount = (mmu: Mmu, pfn: number) => mmu.core.x.page_info(pfn, 2);
/** [refcount, mapcount] of `n` frames from `pfn` (an order-n block refcounts its head only). */
const counts = (mmu: Mmu, pfn: number, n: number) => [...Array(n).keys()].map((i) => [refcount(mmu, pfn + i), mapcount(mmu, pfn + i)]);

function expectErrno(fn: () => unknown, code: ErrnoName): void {
  let err: unknown;
  try { fn(); } catch (e) { err = e; }
  expect(err, `expected ${code}`).toBeInstanceOf(LinuxError);
  expect((err as LinuxError).code).toBe(code);
}

/** A driver's file: no data, faults SIGBUS unless `ops` says otherwise. */
function driverFile(mmu: Mmu, pages: number, ops: Partial<Backend> = {}, opts: OpenOptions = {}): File {
  return mmu.openFile({ size: () => pages * PG, readPage: () => 0, fault: () => VM_FAULT_SIGBUS, ...ops },
    { noMapPages: true, dirtyAccounting: false, ...opts });
}

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

describe('§6 R6.1 vm_normal_page with pte_special', () => {
  it('R6.1 PTEs from the zero page, remap_pfn_range, vmf_insert_pfn and vmf_insert_mixed are special: no page, no refcount, no RSS', async () => {
    const { mmu, mm } = await machine();
    // The zero page.
    const anon = mm.mmap({ length: PG, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.touch(anon, PG, 'read');
    // remap_pfn_range of RAM frames: PFNMAP never refcounts, not even pages with a struct page.
    const ram = mmu.phys.alloc(2);
    mmu.phys.write(ram * PG, pattern(4 * PG, 1));
    const before = counts(mmu, ram, 4);
    const drv = driverFile(mmu, 4);
    const remapped = mm.mmap({ length: 4 * PG, prot: RW, flags: MAP_SHARED, file: drv });
    mmu.remapPfnRange(mm, remapped, ram, 4 * PG);
    // vmf_insert_pfn from a device's fault; vmf_insert_mixed from an XIP file's fault.
    const dev = mmu.createDevice(2 * PG, { read: () => 0 }, { mapping: 'fault' });
    const devVa = mm.mmap({ length: 2 * PG, prot: PROT_READ, flags: MAP_SHARED, file: dev });
    mm.touch(devVa, 2 * PG, 'read');
    const xip = mmu.createXipFile(pattern(2 * PG, 2));
    const xipVa = mm.mmap({ length: 2 * PG, prot: PROT_READ, flags: MAP_SHARED, file: xip });
    expect(mm.read(xipVa, 2 * PG)).toEqual(pattern(2 * PG, 2));
    expect(mm.read(remapped, 4 * PG)).toEqual(pattern(4 * PG, 1));

    const all = [
      ...mm.pagemap(anon, 1).map((p) => ({ ...p, want: mmu.phys.zeroPfn })),
      ...mm.pagemap(remapped, 4).map((p, i) => ({ ...p, want: ram + i })),
      ...mm.pagemap(devVa, 2).map((p, i) => ({ ...p, want: dev.pfn + i })),
      ...mm.pagemap(xipVa, 2).map((p, i) => ({ ...p, want: xip.pfnOf(i)! })),
    ];
    for (const p of all) {
      // R11.2: present with the pfn, not file, not exclusive: vm_normal_page found no page.
      expect(p).toMatchObject({ present: true, special: true, file: false, exclusive: false, pfn: p.want });
    }
    expect(counts(mmu, ram, 4)).toEqual(before);
    expect(before).toEqual([[1, 0], [0, 0], [0, 0], [0, 0]]);
    expect(mm.status()).toMatchObject({ vmRss: 0, rssFile: 0, rssAnon: 0 });
    expect(mmu.stats().badPageMap).toBe(0);
    expect(mmu.checkInvariants()).toEqual([]);
    mm.destroy();
    expect(counts(mmu, ram, 4)).toEqual(before); // never put
    mmu.phys.free(ram, 2);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R6.1 a special PTE in a normal VMA is a bad page map (reported, no page); a normal PTE past the memmap is reported corrupt', async () => {
    const { mmu, mm } = await machine();
    const va = mm.mmap({ length: PG, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.write(va, new Uint8Array([7]));
    // The PTE slot of that fault is still in the fault record (vmfault.ts +32).
    const dv = new DataView(mmu.core.x.memory.buffer);
    const slot = dv.getUint32((mmu.core.x.vmf_addr() >>> 0) + 32, true);
    const ptePa = slot - (mmu.core.x.mmu_ram_base() >>> 0);
    const pte = mmu.phys.readU64(ptePa);
    const page = mm.pagemap(va, 1)[0];
    expect(Number((pte >> 12n) & 0xff_ffff_ffffn)).toBe(page.pfn);
    expect(page).toMatchObject({ present: true, file: false, exclusive: true, special: false });

    const bad0 = mmu.stats().badPageMap;
    mmu.phys.writeU64(ptePa, pte | (1n << 9n)); // a corrupted table: SPECIAL in an anon VMA
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ present: true, special: true, exclusive: false, file: false });
    expect(mmu.stats().badPageMap).toBeGreaterThan(bad0);

    const corrupt0 = mmu.core.x.mmu_special_stat(1);
    const xipPfn = mmu.xip.basePfn + 5;
    mmu.phys.writeU64(ptePa, (pte & ~0x000f_ffff_ffff_f000n) | (BigInt(xipPfn) << 12n));
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ present: true, pfn: xipPfn, exclusive: false, file: false });
    expect(mmu.core.x.mmu_special_stat(1)).toBeGreaterThan(corrupt0);

    mmu.phys.writeU64(ptePa, pte);
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ exclusive: true, pfn: page.pfn });
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('§6 R6.2 vm_normal_page without pte_special: the linear rule (createMmu({ pteSpecial: false }))', () => {
  it('R6.2 PFNMAP: a PTE whose pfn is vm_pgoff + index has no page though the pfn is RAM, and carries no special bit', async () => {
    const { mmu, mm } = await machine({ pteSpecial: false });
    const ram = mmu.phys.alloc(2);
    mmu.phys.write(ram * PG, pattern(4 * PG, 3));
    const before = counts(mmu, ram, 4);
    const drv = driverFile(mmu, 4);
    const va = mm.mmap({ length: 4 * PG, prot: RW, flags: MAP_SHARED, file: drv });
    mmu.remapPfnRange(mm, va, ram, 4 * PG);
    mm.pagemap(va, 4).forEach((p, i) => {
      expect(p).toMatchObject({ present: true, pfn: ram + i, special: false, file: false, exclusive: false });
    });
    mm.write(va + PG + 10, new Uint8Array([0xee])); // a shared PFNMAP: straight into the frame
    expect(mmu.phys.read((ram + 1) * PG + 10, 1)[0]).toBe(0xee);
    const child = mm.fork(); // R5.5: PFNMAP PTEs are copied, still not refcounted
    expect(child.pagemap(va, 4).every((p, i) => p.present && p.pfn === ram + i && !p.file)).toBe(true);
    expect(counts(mmu, ram, 4)).toEqual(before);
    expect(mm.status().rssFile + child.status().rssFile).toBe(0);
    expect(mmu.checkInvariants()).toEqual([]);
    child.destroy();
    mm.munmap(va, 4 * PG);
    expect(counts(mmu, ram, 4)).toEqual(before);
    mmu.phys.free(ram, 2);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R6.2 COW PFNMAP: vm_pgoff is the first pfn; a written page becomes a COWed anon page (not linear) and is normal', async () => {
    const { mmu, mm } = await machine({ pteSpecial: false });
    const ram = mmu.phys.alloc(2);
    mmu.phys.write(ram * PG, pattern(4 * PG, 4));
    const drv = driverFile(mmu, 4);
    const va = mm.mmap({ length: 4 * PG, prot: RW, flags: MAP_PRIVATE, file: drv });
    mmu.remapPfnRange(mm, va, ram, 4 * PG);
    expect(mm.maps()[0].pgoff).toBe(ram);
    mm.write(va + PG + 3, new Uint8Array([0xab]));
    const [p0, p1] = mm.pagemap(va, 2);
    expect(p0).toMatchObject({ present: true, pfn: ram, file: false, exclusive: false }); // linear: no page
    expect(p1.pfn).not.toBe(ram + 1);
    expect(p1).toMatchObject({ present: true, file: false, exclusive: true, writable: true }); // normal, anon
    const want = pattern(4 * PG, 4).slice(PG, 2 * PG);
    want[3] = 0xab;
    expect(mm.read(va + PG, PG)).toEqual(want);
    expect(mmu.phys.read((ram + 1) * PG + 3, 1)[0]).toBe(pattern(4 * PG, 4)[PG + 3]); // the frame is untouched
    expect(counts(mmu, ram, 4)).toEqual([[1, 0], [0, 0], [0, 0], [0, 0]]); // the source was never refcounted
    expect(mm.status()).toMatchObject({ rssAnon: PG, rssFile: 0 });
    expect(mmu.checkInvariants()).toEqual([]);
    mm.destroy();
    mmu.phys.free(ram, 2);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R6.2 a non-linear pfn in a shared (non-COW) PFNMAP VMA has no page', async () => {
    const { mmu, mm } = await machine({ pteSpecial: false });
    const ram = mmu.phys.alloc(0), other = mmu.phys.alloc(0);
    const drv = driverFile(mmu, 2, { fault: (vmf: VmFault) => vmf.insertPfn(other) });
    const va = mm.mmap({ length: 2 * PG, prot: RW, flags: MAP_SHARED, file: drv });
    mmu.remapPfnRange(mm, va, ram, PG); // only page 0: allowed in a shared mapping
    expect(mm.maps()[0].pgoff).toBe(0); // not a COW mapping: vm_pgoff stays
    mm.touch(va + PG, PG, 'read');
    expect(mm.pagemap(va, 2)).toMatchObject([
      { present: true, pfn: ram, file: false, exclusive: false },
      { present: true, pfn: other, file: false, exclusive: false },
    ]);
    expect([refcount(mmu, other), mapcount(mmu, other)]).toEqual([1, 0]);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R6.2 MIXEDMAP: a pfn is normal iff it has a struct page (XIP and the zero page are not; an inserted RAM page is)', async () => {
    const { mmu, mm } = await machine({ pteSpecial: false });
    const xip = mmu.createXipFile(pattern(4 * PG, 5), { holes: [2] });
    const va = mm.mmap({ length: 4 * PG, prot: PROT_READ, flags: MAP_SHARED, file: xip });
    const ram = mmu.phys.alloc(0);
    mmu.vmInsertPage(mm, va + 3 * PG, ram);
    mm.touch(va, 4 * PG, 'read');
    expect(mm.maps()[0].flags & VM_MIXEDMAP).toBe(VM_MIXEDMAP);
    expect(mm.pagemap(va, 4)).toMatchObject([
      { pfn: xip.pfnOf(0)!, special: false, file: false, exclusive: false },
      { pfn: xip.pfnOf(1)!, special: false, file: false, exclusive: false },
      { pfn: mmu.phys.zeroPfn, zeroPage: true, special: false, file: false, exclusive: false },
      { pfn: ram, special: false, file: true, exclusive: true },
    ]);
    expect([refcount(mmu, ram), mapcount(mmu, ram)]).toEqual([2, 1]);
    expect(mm.status().rssFile).toBe(PG);
    expect(mmu.checkInvariants()).toEqual([]);
    mm.destroy();
    expect(refcount(mmu, ram)).toBe(1);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('§6 R6.3 remap_pfn_range', () => {
  it('R6.3 marks the VMA IO|PFNMAP|DONTEXPAND|DONTDUMP and fills special PTEs with consecutive pfns', async () => {
    const { mmu, mm } = await machine();
    const dev = mmu.createDevice(8 * PG, {});
    const va = mm.mmap({ length: 4 * PG, prot: RW, flags: MAP_SHARED, file: dev, offset: 2 * PG });
    const v = mm.maps()[0];
    expect(v.flags & SPECIAL_FLAGS).toBe(SPECIAL_FLAGS);
    expect(v.pgoff).toBe(2); // shared: vm_pgoff is still the file offset
    mm.pagemap(va, 4).forEach((p, i) => expect(p).toMatchObject({ present: true, special: true, pfn: dev.pfn + 2 + i }));
    expect(mm.rusage()).toEqual({ minflt: 0, majflt: 0 }); // all there at mmap, nothing faulted
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R6.3 a COW mapping must be covered exactly (else EINVAL) and its vm_pgoff becomes the first pfn', async () => {
    const { mmu, mm } = await machine();
    const ram = mmu.phys.alloc(2);
    const drv = driverFile(mmu, 4);
    const priv = mm.mmap({ length: 4 * PG, prot: PROT_READ, flags: MAP_PRIVATE, file: drv });
    expectErrno(() => mmu.remapPfnRange(mm, priv, ram, 2 * PG), 'EINVAL');
    expectErrno(() => mmu.remapPfnRange(mm, priv + PG, ram, 3 * PG), 'EINVAL');
    expect(mm.pagemap(priv, 4).some((p) => p.present)).toBe(false);
    mmu.remapPfnRange(mm, priv, ram, 4 * PG);
    expect(mm.maps()[0].pgoff).toBe(ram);
    // A private device mapping: its f_op->mmap remaps the whole VMA.
    const dev = mmu.createDevice(4 * PG, {});
    const dva = mm.mmap({ length: 3 * PG, prot: RW, flags: MAP_PRIVATE, file: dev, offset: PG });
    expect(mm.maps().find((m) => m.start === dva)!.pgoff).toBe(dev.pfn + 1);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R6.3 a failure half way zaps what was mapped, and mmap of the device fails cleanly', async () => {
    const { mmu, mm } = await machine();
    const dev = mmu.createDevice(4 * PG, {});
    // Four pages across a 2 MiB boundary: tables PUD + PMD + PTE for the first half, one
    // more PTE table for the second. Leave exactly three free frames.
    const at = 0x4000_0000 - 2 * PG;
    const held: number[] = [];
    while (mmu.phys.freeFrames > 3) held.push(mmu.phys.alloc(0));
    const tables0 = mmu.stats().pageTables;
    expectErrno(() => mm.mmap({ addr: at, length: 4 * PG, prot: RW, flags: MAP_SHARED | MAP_FIXED, file: dev }), 'ENOMEM');
    expect(mm.maps()).toEqual([]);
    expect(mmu.stats().pageTables).toBe(tables0); // munmap freed the tables again
    expect(mmu.phys.freeFrames).toBe(3);
    expect(dev.mappings).toBe(0);
    // remap_pfn_range on its own: the VMA stays, the PTEs it had set are gone.
    const drv = driverFile(mmu, 4);
    const va = mm.mmap({ addr: at, length: 4 * PG, prot: RW, flags: MAP_SHARED | MAP_FIXED, file: drv });
    expectErrno(() => mmu.remapPfnRange(mm, va, dev.pfn, 4 * PG), 'ENOMEM');
    expect(mm.pagemap(va, 4).map((p) => p.present)).toEqual([false, false, false, false]);
    expect(mmu.checkInvariants()).toEqual([]);
    mm.munmap(va, 4 * PG);
    for (const p of held) mmu.phys.free(p);
    // With memory, the same mmap works.
    const ok = mm.mmap({ addr: at, length: 4 * PG, prot: RW, flags: MAP_SHARED | MAP_FIXED, file: dev });
    expect(mm.pagemap(ok, 4).map((p) => p.pfn)).toEqual([0, 1, 2, 3].map((i) => dev.pfn + i));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R6.3 mmap of a window beyond the device is refused by its f_op->mmap (EINVAL) and leaves nothing', async () => {
    const { mmu, mm } = await machine();
    const dev = mmu.createDevice(2 * PG, {});
    expectErrno(() => mm.mmap({ length: 2 * PG, prot: PROT_READ, flags: MAP_SHARED, file: dev, offset: PG }), 'EINVAL');
    expect(mm.maps()).toEqual([]);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('§6 R6.4 vmf_insert_pfn', () => {
  it('R6.4 in a PFNMAP VMA it inserts a special PTE and returns NOPAGE; a populated PTE is left as it is', async () => {
    const { mmu, mm } = await machine();
    const a = mmu.xip.carve(2 * PG), b = mmu.xip.carve(PG);
    const seen: number[] = [];
    const drv = driverFile(mmu, 2, {
      fault: (vmf: VmFault) => {
        seen.push(vmf.insertPfn(a.pfn + vmf.pgoff));
        seen.push(vmf.insertPfn(b.pfn)); // populated now: nothing happens
        return seen[seen.length - 1];
      },
    });
    const va = mm.mmap({ length: 2 * PG, prot: PROT_READ, flags: MAP_SHARED, file: drv });
    mmu.core.x.mm_special_mmap(mm.id, va, 2); // what a driver's mmap does: IO|PFNMAP
    mm.touch(va, 2 * PG, 'read');
    expect(seen).toEqual([VM_FAULT_NOPAGE, VM_FAULT_NOPAGE, VM_FAULT_NOPAGE, VM_FAULT_NOPAGE]);
    expect(mm.pagemap(va, 2)).toMatchObject([{ special: true, pfn: a.pfn }, { special: true, pfn: a.pfn + 1 }]);
    expect(mm.rusage().minflt).toBe(2);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R6.4 a device mapped by its faults: each page faults in its own pfn', async () => {
    const { mmu, mm } = await machine();
    const dev = mmu.createDevice(4 * PG, { read: (o) => o }, { mapping: 'fault' });
    const va = mm.mmap({ length: 4 * PG, prot: PROT_READ, flags: MAP_SHARED, file: dev });
    expect(mm.maps()[0].flags & SPECIAL_FLAGS).toBe(SPECIAL_FLAGS);
    expect(mm.pagemap(va, 4).some((p) => p.present)).toBe(false);
    mm.touch(va + 2 * PG, PG, 'read');
    expect(mm.pagemap(va + 2 * PG, 1)[0]).toMatchObject({ present: true, special: true, pfn: dev.pfn + 2 });
    expect(new DataView(mm.read(va + 2 * PG + 8, 4).buffer).getUint32(0, true)).toBe(2 * PG + 8);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R6.4 refused with SIGBUS: outside the VMA, a pfn the walker cannot map, a COW PFNMAP VMA, a pfn with a struct page in MIXEDMAP, a VMA that is neither', async () => {
    const { mmu, mm } = await machine();
    const x = mmu.xip.carve(PG);
    const ram = mmu.phys.alloc(0);
    let mode = '';
    const drv = driverFile(mmu, 4, {
      fault: (vmf: VmFault) => {
        if (mode === 'outside') return vmf.insertPfn(x.pfn, vmf.address + 64 * PG);
        if (mode === 'huge-pfn') return vmf.insertPfn(2 ** 28);
        if (mode === 'ram') return vmf.insertPfn(ram);
        return vmf.insertPfn(x.pfn);
      },
    });
    const bugs0 = mmu.core.x.mmu_special_stat(2);
    const plain = mm.mmap({ length: 4 * PG, prot: PROT_READ, flags: MAP_SHARED, file: drv });
    expect(() => mm.touch(plain, 1, 'read')).toThrow(BusError); // neither PFNMAP nor MIXEDMAP
    expect(mmu.core.x.mmu_special_stat(2)).toBe(bugs0 + 1);
    mmu.core.x.mm_special_mmap(mm.id, plain, 2);
    mode = 'outside';
    expect(() => mm.touch(plain, 1, 'read')).toThrow(BusError);
    mode = 'huge-pfn';
    expect(() => mm.touch(plain, 1, 'read')).toThrow(BusError);
    mode = '';
    mm.touch(plain, 1, 'read');
    expect(mm.pagemap(plain, 1)[0]).toMatchObject({ present: true, pfn: x.pfn });
    // A COW PFNMAP VMA (a private mapping of a fault-mapped device).
    const dev = mmu.createDevice(PG, {}, { mapping: 'fault' });
    const priv = mm.mmap({ length: PG, prot: PROT_READ, flags: MAP_PRIVATE, file: dev });
    expect(() => mm.touch(priv, 1, 'read')).toThrow(BusError);
    expect(mmu.core.x.mmu_special_stat(2)).toBe(bugs0 + 2);
    // MIXEDMAP (vm_insert_page made it so): a pfn with a struct page is a bug.
    const mixed = mm.mmap({ length: 4 * PG, prot: PROT_READ, flags: MAP_SHARED, file: drv });
    mmu.vmInsertPage(mm, mixed, mmu.phys.alloc(0));
    mode = 'ram';
    expect(() => mm.touch(mixed + PG, 1, 'read')).toThrow(BusError);
    expect(mmu.core.x.mmu_special_stat(2)).toBe(bugs0 + 3);
    mode = '';
    mm.touch(mixed + PG, 1, 'read'); // an XIP pfn (no struct page) is fine there
    expect(mm.pagemap(mixed + PG, 1)[0]).toMatchObject({ present: true, pfn: x.pfn, special: true });
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('§6 R6.5 vmf_insert_mixed and vm_insert_page', () => {
  it('R6.5 the zero pfn only where harmless: COW, never-writable and DAX-with-pfn_mkwrite mappings; never a writable insert', async () => {
    const { mmu, mm } = await machine();
    const zero = mmu.phys.zeroPfn;
    let write = false;
    const ops = { fault: (vmf: VmFault) => vmf.insertMixed(zero, write) };
    const drv = driverFile(mmu, 1, ops);
    const ro = driverFile(mmu, 1, ops, { readOnly: true });
    const priv = mm.mmap({ length: PG, prot: PROT_READ, flags: MAP_PRIVATE, file: drv });
    mm.touch(priv, 1, 'read');
    expect(mm.pagemap(priv, 1)[0]).toMatchObject({ present: true, zeroPage: true, writable: false });
    const shared = mm.mmap({ length: PG, prot: PROT_READ, flags: MAP_SHARED, file: drv });
    expect(() => mm.touch(shared, 1, 'read')).toThrow(BusError); // may become writable, no pfn_mkwrite
    const never = mm.mmap({ length: PG, prot: PROT_READ, flags: MAP_SHARED, file: ro });
    mm.touch(never, 1, 'read'); // opened read-only: can never become writable
    expect(mm.pagemap(never, 1)[0]).toMatchObject({ present: true, zeroPage: true });
    const xip = mmu.createXipFile(PG, { holes: [0] }); // fsdax with pfn_mkwrite
    const dax = mm.mmap({ length: PG, prot: RW, flags: MAP_SHARED, file: xip });
    mm.touch(dax, 1, 'read');
    expect(mm.pagemap(dax, 1)[0]).toMatchObject({ present: true, zeroPage: true, writable: false });
    write = true;
    const priv2 = mm.mmap({ length: PG, prot: RW, flags: MAP_PRIVATE, file: drv });
    expect(() => mm.touch(priv2, 1, 'read')).toThrow(BusError); // a writable zero page: refused
    expect(mm.status().vmRss).toBe(0);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R6.5 with pte_special a RAM pfn is inserted special and not refcounted; without it, as a refcounted normal page (file RSS +1)', async () => {
    for (const pteSpecial of [true, false]) {
      const { mmu, mm } = await machine({ pteSpecial });
      const ram = mmu.phys.alloc(0);
      mmu.phys.write(ram * PG, pattern(PG, 6));
      const drv = driverFile(mmu, 2, { fault: (vmf: VmFault) => vmf.insertMixed(ram) });
      const va = mm.mmap({ length: 2 * PG, prot: PROT_READ, flags: MAP_SHARED, file: drv });
      mmu.vmInsertPage(mm, va, mmu.phys.alloc(0)); // makes the VMA MIXEDMAP
      mm.touch(va + PG, 1, 'read');
      expect(mm.read(va + PG, PG)).toEqual(pattern(PG, 6));
      const p = mm.pagemap(va + PG, 1)[0];
      if (pteSpecial) {
        expect(p).toMatchObject({ pfn: ram, special: true, file: false });
        expect([refcount(mmu, ram), mapcount(mmu, ram), mm.status().rssFile]).toEqual([1, 0, PG]);
      } else {
        expect(p).toMatchObject({ pfn: ram, special: false, file: true, exclusive: true });
        expect([refcount(mmu, ram), mapcount(mmu, ram), mm.status().rssFile]).toEqual([2, 1, 2 * PG]);
      }
      expect(mmu.checkInvariants()).toEqual([]);
      mm.destroy();
      expect(refcount(mmu, ram)).toBe(1);
      expect(mmu.checkInvariants()).toEqual([]);
    }
  });

  it('R6.5 vm_insert_page refuses anonymous and refcount-0 pages (EINVAL), sets MIXEDMAP, counts file RSS', async () => {
    const { mmu, mm } = await machine();
    const drv = driverFile(mmu, 4);
    const va = mm.mmap({ length: 4 * PG, prot: RW, flags: MAP_SHARED, file: drv });
    const anon = mm.mmap({ length: PG, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.write(anon, new Uint8Array([1]));
    expectErrno(() => mmu.vmInsertPage(mm, va, mm.pagemap(anon, 1)[0].pfn), 'EINVAL');
    const freed = mmu.phys.alloc(0);
    mmu.phys.free(freed);
    expectErrno(() => mmu.vmInsertPage(mm, va, freed), 'EINVAL');
    const vmaFlags = () => mm.maps().find((m) => m.start === va)!.flags;
    expect(vmaFlags() & VM_MIXEDMAP).toBe(0);
    const page = mmu.phys.alloc(0);
    mmu.phys.write(page * PG, pattern(PG, 8));
    mmu.vmInsertPage(mm, va + PG, page);
    expect(vmaFlags() & VM_MIXEDMAP).toBe(VM_MIXEDMAP);
    expect(mm.status().rssFile).toBe(PG);
    expect([refcount(mmu, page), mapcount(mmu, page)]).toEqual([2, 1]);
    expect(mm.read(va + PG, PG)).toEqual(pattern(PG, 8));
    expectErrno(() => mmu.vmInsertPage(mm, va + PG, mmu.phys.alloc(0)), 'EBUSY'); // populated
    expectErrno(() => mmu.vmInsertPage(mm, va + 4 * PG, page), 'EFAULT'); // outside the VMA
    const dev = mmu.createDevice(PG, {});
    const pfnmap = mm.mmap({ length: PG, prot: PROT_READ, flags: MAP_SHARED, file: dev });
    expectErrno(() => mmu.vmInsertPage(mm, pfnmap, page), 'EINVAL'); // PFNMAP and MIXEDMAP exclude each other
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R6.5 the mkwrite variant upgrades an existing PTE of the same pfn to young+dirty+writable, and leaves another pfn alone', async () => {
    const { mmu, mm } = await machine();
    const x = mmu.xip.carve(2 * PG);
    let target = -1;
    const drv = driverFile(mmu, 3, {
      fault: (vmf: VmFault) => vmf.insertMixed(x.pfn + vmf.pgoff - 1),
      pfnMkwrite: (vmf: VmFault) => vmf.insertMixed(target < 0 ? x.pfn + vmf.pgoff - 1 : target, true),
    });
    const va = mm.mmap({ length: 3 * PG, prot: RW, flags: MAP_SHARED, file: drv });
    mmu.vmInsertPage(mm, va, mmu.phys.alloc(0)); // MIXEDMAP
    mm.touch(va + PG, 2 * PG, 'read');
    expect(mm.pagemap(va + PG, 1)[0]).toMatchObject({ pfn: x.pfn, writable: false, dirty: false });
    mm.write(va + PG, new Uint8Array([0x5a])); // pfn_mkwrite → vmf_insert_mixed_mkwrite, same pfn
    expect(mm.pagemap(va + PG, 1)[0]).toMatchObject({ pfn: x.pfn, writable: true, dirty: true, young: true });
    expect(mmu.xip.read(x.pa, 1)[0]).toBe(0x5a);
    // mkwrite over a different pfn changes nothing; the write retries and faults again, so stop after one.
    target = x.pfn; // page 2 maps x.pfn + 1
    let tries = 0;
    const drvOps = drv.backend as Backend;
    const orig = drvOps.pfnMkwrite!;
    drvOps.pfnMkwrite = (vmf) => (++tries > 1 ? VM_FAULT_SIGBUS : orig(vmf));
    expect(() => mm.write(va + 2 * PG, new Uint8Array([1]))).toThrow(BusError);
    expect(mm.pagemap(va + 2 * PG, 1)[0]).toMatchObject({ pfn: x.pfn + 1, writable: false });
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('§6 R6.6 writes to special mappings', () => {
  it('R6.6 shared: a write to a read-only special PTE calls pfn_mkwrite and makes it writable in place', async () => {
    const { mmu, mm } = await machine();
    const xip = mmu.createXipFile(pattern(2 * PG, 9));
    const other = mmu.createAddressSpace();
    const a = mm.mmap({ length: 2 * PG, prot: RW, flags: MAP_SHARED, file: xip });
    const b = other.mmap({ length: 2 * PG, prot: PROT_READ, flags: MAP_SHARED, file: xip });
    mm.touch(a, 2 * PG, 'read');
    expect(mm.pagemap(a, 1)[0]).toMatchObject({ pfn: xip.pfnOf(0)!, writable: false });
    mm.write(a + 100, new Uint8Array([1, 2, 3]));
    expect(xip.counts.pfnMkwrites).toBe(1);
    expect(mm.pagemap(a, 1)[0]).toMatchObject({ pfn: xip.pfnOf(0)!, writable: true, dirty: true, special: true });
    expect([...xip.read(100, 3)]).toEqual([1, 2, 3]); // in XIP memory itself
    expect([...other.read(b + 100, 3)]).toEqual([1, 2, 3]); // and so in every mapping
    expect(mmu.stats().cowCopies).toBe(0);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R6.6 private: a write copies through the physical address into an anon page; the copy is then a normal page', async () => {
    for (const pteSpecial of [true, false]) {
      const { mmu, mm } = await machine({ pteSpecial });
      const xip = mmu.createXipFile(pattern(2 * PG, 10));
      const va = mm.mmap({ length: 2 * PG, prot: RW, flags: MAP_PRIVATE, file: xip });
      mm.touch(va, 2 * PG, 'read');
      const cow0 = mmu.stats().cowCopies;
      mm.write(va + PG + 1, new Uint8Array([0xcc]));
      expect(mmu.stats().cowCopies).toBe(cow0 + 1); // wp_page_copy, copying from XIP memory
      const p = mm.pagemap(va + PG, 1)[0];
      expect(p.pfn).toBeLessThan(mmu.phys.frames);
      expect(p).toMatchObject({ file: false, exclusive: true, special: false, writable: true });
      const want = pattern(2 * PG, 10).slice(PG);
      want[1] = 0xcc;
      expect(mm.read(va + PG, PG)).toEqual(want);
      expect(xip.read(PG + 1, 1)[0]).toBe(pattern(2 * PG, 10)[PG + 1]);
      expect(mm.status().rssAnon).toBe(PG);
      expect(mmu.checkInvariants()).toEqual([]);
    }
  });
});

describe('§5 R5.5 fork copies the PTEs of PFNMAP and MIXEDMAP VMAs', () => {
  it('R5.5 the child has every device, XIP and inserted PTE at fork, faults none in, and only RAM pages gain a reference', async () => {
    const { mmu, mm } = await machine();
    const dev = mmu.createDevice(2 * PG, { read: () => 0x42 });
    const xip = mmu.createXipFile(pattern(3 * PG, 11));
    const dva = mm.mmap({ length: 2 * PG, prot: RW, flags: MAP_SHARED, file: dev });
    const xva = mm.mmap({ length: 3 * PG, prot: RW, flags: MAP_PRIVATE, file: xip });
    const ram = mmu.phys.alloc(0);
    mmu.vmInsertPage(mm, xva + 2 * PG, ram);
    mm.touch(xva, 2 * PG, 'read');
    // A private file mapping never written would be left to fault lazily; these are copied.
    const child = mm.fork();
    expect(child.pagemap(dva, 2).map((p) => p.pfn)).toEqual([dev.pfn, dev.pfn + 1]);
    expect(child.pagemap(xva, 3).map((p) => p.pfn)).toEqual([xip.pfnOf(0), xip.pfnOf(1), ram]);
    expect([refcount(mmu, ram), mapcount(mmu, ram)]).toEqual([3, 2]);
    expect(child.status()).toMatchObject({ rssFile: PG, rssAnon: 0 });
    expect(child.read(xva, 3 * PG).subarray(0, 2 * PG)).toEqual(pattern(3 * PG, 11).subarray(0, 2 * PG));
    expect(child.read(dva, 1)[0]).toBe(0x42);
    expect(child.rusage()).toEqual({ minflt: 0, majflt: 0 });
    expect(mmu.checkInvariants()).toEqual([]);
    child.destroy();
    expect(refcount(mmu, ram)).toBe(2);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('§8/§9 GUP, populate and MADV_DONTNEED on special VMAs (R8.3, R8.5, R9.1, R9.3, R6.6)', () => {
  const FOLL_TOUCH = 0x02;
  it('R8.5 GUP fails on IO/PFNMAP VMAs (EFAULT) and on MIXEDMAP pages without a struct page', async () => {
    const { mmu, mm } = await machine();
    const dev = mmu.createDevice(PG, {});
    const dva = mm.mmap({ length: PG, prot: RW, flags: MAP_SHARED, file: dev });
    expect(mmu.core.x.mm_gup(mm.id, dva, 1, FOLL_TOUCH)).toBe(-14);
    const xip = mmu.createXipFile(PG);
    const xva = mm.mmap({ length: PG, prot: PROT_READ, flags: MAP_SHARED, file: xip });
    mm.touch(xva, 1);
    // follow_pfn_pte: asked for pages, a PFN with no struct page is refused (EFAULT) ...
    expect(mmu.core.x.mm_gup_pfns(mm.id, xva, 1, FOLL_TOUCH)).toBe(-14);
    // ... while population, which wants no page, skips it (-EEXIST in Linux).
    expect(mmu.core.x.mm_gup(mm.id, xva, 1, FOLL_TOUCH)).toBe(1);
    const ram = mmu.phys.alloc(0);
    const drv = driverFile(mmu, 1);
    const ins = mm.mmap({ length: PG, prot: PROT_READ, flags: MAP_SHARED, file: drv });
    mmu.vmInsertPage(mm, ins, ram);
    expect(mmu.core.x.mm_gup(mm.id, ins, 1, FOLL_TOUCH)).toBe(1); // a MIXEDMAP page with a struct page is fine
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R8.3 R9.4 population skips IO/PFNMAP VMAs (MAP_POPULATE maps nothing, faults nothing); R9.3 MADV_POPULATE_READ is EINVAL', async () => {
    const { mmu, mm } = await machine();
    const dev = mmu.createDevice(4 * PG, {}, { mapping: 'fault' });
    const va = mm.mmap({ length: 4 * PG, prot: PROT_READ, flags: MAP_SHARED | MAP_POPULATE, file: dev });
    expect(mm.pagemap(va, 4).some((p) => p.present)).toBe(false);
    expect(mmu.core.x.mm_populate_range(mm.id, va, 4 * PG)).toBe(0);
    expect(mm.pagemap(va, 4).some((p) => p.present)).toBe(false);
    expect(mm.rusage()).toEqual({ minflt: 0, majflt: 0 });
    expectErrno(() => mm.madvise(va, 4 * PG, MADV_POPULATE_READ), 'EINVAL');
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.1 MADV_DONTNEED is EINVAL on a PFNMAP VMA; on a MIXEDMAP VMA it zaps, dropping only the RAM pages\' references', async () => {
    const { mmu, mm } = await machine();
    const dev = mmu.createDevice(PG, {});
    const dva = mm.mmap({ length: PG, prot: RW, flags: MAP_SHARED, file: dev });
    expectErrno(() => mm.madvise(dva, PG, MADV_DONTNEED), 'EINVAL');
    expect(mm.pagemap(dva, 1)[0].present).toBe(true);
    const xip = mmu.createXipFile(pattern(2 * PG, 12));
    const xva = mm.mmap({ length: 2 * PG, prot: PROT_READ, flags: MAP_SHARED, file: xip });
    const ram = mmu.phys.alloc(0);
    mmu.vmInsertPage(mm, xva + PG, ram);
    mm.touch(xva, PG, 'read');
    mm.madvise(xva, 2 * PG, MADV_DONTNEED);
    expect(mm.pagemap(xva, 2).map((p) => p.present)).toEqual([false, false]);
    expect([refcount(mmu, ram), mapcount(mmu, ram), mm.status().rssFile]).toEqual([1, 0, 0]);
    expect(mm.read(xva, 16)).toEqual(pattern(2 * PG, 12).subarray(0, 16)); // faults back in from XIP
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('seed 002: the VM_MIXEDMAP refcount table', () => {
  it('a mixed mapping of RAM pages (vm_insert_page) and XIP pages: refcounts and RSS move only for the RAM pages', async () => {
    const { mmu, mm } = await machine();
    const xip = mmu.createXipFile(pattern(4 * PG, 13));
    const va = mm.mmap({ length: 4 * PG, prot: PROT_READ, flags: MAP_SHARED, file: xip });
    const ram = [mmu.phys.alloc(0), mmu.phys.alloc(0)];
    const pages = [
      { kind: 'RAM', pfn: ram[0] }, { kind: 'XIP', pfn: xip.pfnOf(1)! },
      { kind: 'RAM', pfn: ram[1] }, { kind: 'XIP', pfn: xip.pfnOf(3)! },
    ];
    // page_info answers -1 for a pfn without a struct page.
    const row = (stage: string, ...spaces: AddressSpace[]) => ({
      stage,
      refs: pages.map((p) => refcount(mmu, p.pfn)),
      maps: pages.map((p) => mapcount(mmu, p.pfn)),
      rssFile: spaces.map((s) => s.status().rssFile / PG),
    });
    const table = [row('driver pages allocated', mm)];
    mmu.vmInsertPage(mm, va, ram[0]);
    mmu.vmInsertPage(mm, va + 2 * PG, ram[1]);
    mm.touch(va, 4 * PG, 'read');
    table.push(row('mapped (RAM inserted, XIP faulted)', mm));
    const child = mm.fork();
    table.push(row('after fork', mm, child));
    child.destroy();
    table.push(row('child exited', mm));
    mm.munmap(va, 4 * PG);
    table.push(row('unmapped', mm));
    expect(table).toEqual([
      { stage: 'driver pages allocated', refs: [1, -1, 1, -1], maps: [0, -1, 0, -1], rssFile: [0] },
      { stage: 'mapped (RAM inserted, XIP faulted)', refs: [2, -1, 2, -1], maps: [1, -1, 1, -1], rssFile: [2] },
      { stage: 'after fork', refs: [3, -1, 3, -1], maps: [2, -1, 2, -1], rssFile: [2, 2] },
      { stage: 'child exited', refs: [2, -1, 2, -1], maps: [1, -1, 1, -1], rssFile: [2] },
      { stage: 'unmapped', refs: [1, -1, 1, -1], maps: [0, -1, 0, -1], rssFile: [0] },
    ]);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('§11 R11.2 pagemap of special PTEs', () => {
  it('R11.2 XIP, device and zero-page PTEs: present with the pfn, not file, not exclusive, in Rss nowhere', async () => {
    const { mmu, mm } = await machine();
    const xip = mmu.createXipFile(2 * PG, { holes: [1] });
    const dev = mmu.createDevice(PG, {});
    const xva = mm.mmap({ length: 2 * PG, prot: PROT_READ, flags: MAP_PRIVATE, file: xip });
    const dva = mm.mmap({ length: PG, prot: PROT_READ, flags: MAP_SHARED, file: dev });
    mm.touch(xva, 2 * PG, 'read');
    const raw = [...mm.pagemap(xva, 2), ...mm.pagemap(dva, 1)];
    expect(raw.map((p) => [p.present, p.pfn, p.file, p.exclusive])).toEqual([
      [true, xip.pfnOf(0), false, false], [true, mmu.phys.zeroPfn, false, false], [true, dev.pfn, false, false],
    ]);
    expect(mm.smaps().map((s) => s.rss)).toEqual([0, 0]);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('physical memory beyond RAM: layout and the xipBytes option', () => {
  it('XIP memory sits right after RAM (linear = ramBase + pa), device space right after it; no memmap for either', async () => {
    const mmu = await createMmu({ ramBytes: 8 * MiB, xipBytes: 4 * MiB });
    expect(mmu.options.xipBytes).toBe(4 * MiB);
    expect([mmu.xip.base, mmu.xip.size, mmu.xip.basePfn]).toEqual([8 * MiB, 4 * MiB, 2048]);
    expect(mmu.devices.base).toBe(12 * MiB);
    const r = mmu.xip.carve(PG);
    mmu.xip.write(r.pa + 8, new Uint8Array([1, 2, 3]));
    const at = (mmu.core.x.mmu_ram_base() >>> 0) + r.pa;
    expect([...mmu.core.bytes().subarray(at + 8, at + 11)]).toEqual([1, 2, 3]);
    expect(mmu.core.x.page_info(r.pfn, 1)).toBe(-1); // no struct page
    expect(mmu.stats()).toMatchObject({ ramFrames: 2048, freeFrames: 2047 }); // RAM is unchanged by it
    expect(() => mmu.phys.read(r.pa, 1)).toThrow(RangeError); // phys is RAM only
    expect(() => mmu.xip.read(mmu.xip.base - 1, 2)).toThrow(RangeError);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('xipBytes defaults to 32 MiB, 0 is allowed, and bad values are RangeErrors that name it', async () => {
    expect((await createMmu({ ramBytes: 2 * MiB })).xip.size).toBe(32 * MiB);
    const none = await createMmu({ ramBytes: 2 * MiB, xipBytes: 0 });
    expect(none.xip.size).toBe(0);
    expect(none.devices.base).toBe(2 * MiB);
    expect(none.createXipFile(0).size).toBe(0);
    expectErrno(() => none.createXipFile(1), 'ENOSPC');
    for (const bad of [MiB, -2 * MiB, NaN, 2.5 * MiB, Infinity]) {
      await expect(createMmu({ ramBytes: 2 * MiB, xipBytes: bad })).rejects.toThrow(/xipBytes/);
      await expect(createMmu({ ramBytes: 2 * MiB, xipBytes: bad })).rejects.toThrow(RangeError);
    }
    await expect(createMmu({ ramBytes: 3 * 1024 * MiB, xipBytes: 1024 * MiB })).rejects.toThrow(/xipBytes .*too big for wasm32/);
  });

  it('XIP memory is carved first fit and given back; carving more than is free is ENOSPC', async () => {
    const mmu = await createMmu({ ramBytes: 2 * MiB, xipBytes: 2 * MiB });
    const a = mmu.xip.carve(MiB), b = mmu.xip.carve(PG + 1), c = mmu.xip.carve(MiB - 2 * PG);
    expect([a.pages, b.pages, c.pages]).toEqual([256, 2, 254]);
    expect(mmu.xip.freeBytes).toBe(0);
    expectErrno(() => mmu.xip.carve(1), 'ENOSPC');
    mmu.xip.write(b.pa, new Uint8Array([9]));
    mmu.xip.release(b);
    expect(() => mmu.xip.release(b)).toThrow(RangeError);
    const d = mmu.xip.carve(2 * PG);
    expect(d.pfn).toBe(b.pfn);
    expect(mmu.xip.read(d.pa, 1)[0]).toBe(0); // carved zeroed
    mmu.xip.release(a);
    mmu.xip.release(c);
    mmu.xip.release(d);
    expect(mmu.xip.freeBytes).toBe(2 * MiB);
    expect(mmu.xip.carve(2 * MiB).pages).toBe(512); // merged back into one run
  });
});
