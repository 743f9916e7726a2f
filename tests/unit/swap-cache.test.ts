// Issue 15: the swap cache after MADV_PAGEOUT, and shmem paged out to swap — as Debian's
// 6.1, 6.12 and 7.3 kernels show under QEMU with a swap device (golden dirs swap-pageout-*,
// swap-fork, swap-in-write, madv-pageout-shmem-no-swap): the written folio stays in the swap
// cache (writeback is asynchronous), so the next fault is a minor swap-cache hit (R11.6); a
// later reclaim frees it without writing again; shmem's object holds swap entries, which
// fault-around skips (R2.4), and the next fault swaps the page back in.
import { describe, it, expect } from 'vitest';
import {
  createMmu, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS,
  MADV_PAGEOUT, MADV_REMOVE, MADV_WILLNEED, type Mmu, type AddressSpace,
} from '../../src/index.js';

const P = 4096;
const RW = PROT_READ | PROT_WRITE;

function clean(mmu: Mmu) {
  expect(mmu.checkInvariants()).toEqual([]);
}
function faults(mm: AddressSpace, f: () => void): { minflt: number; majflt: number } {
  const a = mm.rusage();
  f();
  const b = mm.rusage();
  return { minflt: b.minflt - a.minflt, majflt: b.majflt - a.majflt };
}

describe('R11.6 the swap cache after MADV_PAGEOUT of private anonymous memory', () => {
  it('R11.3 / R11.6 PAGEOUT writes the pages to swap and keeps them cached: swap entries in pagemap, the next reads are minor hits with the bytes', async () => {
    const mmu = await createMmu({ ramBytes: 8 << 20 });
    const mm = mmu.createAddressSpace();
    const va = mm.mmap({ length: 4 * P, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    for (let i = 0; i < 4; i++) mm.write(va + i * P, new Uint8Array([i + 10]));
    const free0 = mmu.stats().freeFrames;
    const out0 = mmu.stats().pswpout;
    mm.madvise(va, 4 * P, MADV_PAGEOUT);
    clean(mmu);
    expect(mm.pagemap(va, 4).every((p) => !p.present && p.swapped)).toBe(true);
    expect(mmu.stats().pswpout - out0).toBe(4); // written
    expect(mmu.stats().freeFrames).toBe(free0); // but not freed: the swap cache holds them
    expect(mmu.stats().swapUsed).toBe(4);
    const in0 = mmu.stats().pswpin;
    expect(faults(mm, () => expect(mm.read(va + 2 * P, 1)[0]).toBe(12))).toEqual({ minflt: 1, majflt: 0 });
    expect(mmu.stats().pswpin).toBe(in0); // no I/O
    // Only the touched page is mapped (no fault-around for anonymous memory).
    expect(mm.pagemap(va, 4).map((p) => p.present)).toEqual([false, false, true, false]);
    expect(mmu.stats().swapUsed).toBe(3); // its slot went with its last entry
    clean(mmu);
  });

  it('R11.6 a later reclaim frees the cached copies without writing them again; the next access is a major fault from the device', async () => {
    const mmu = await createMmu({ ramBytes: 8 << 20 });
    const mm = mmu.createAddressSpace();
    const va = mm.mmap({ length: 4 * P, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    for (let i = 0; i < 4; i++) mm.write(va + i * P, new Uint8Array([i + 20]));
    mm.madvise(va, 4 * P, MADV_PAGEOUT);
    const free0 = mmu.stats().freeFrames;
    const out0 = mmu.stats().pswpout;
    expect(mmu.reclaim(4)).toBeGreaterThanOrEqual(4);
    expect(mmu.stats().freeFrames - free0).toBeGreaterThanOrEqual(4);
    expect(mmu.stats().pswpout).toBe(out0); // clean: their slots hold the data already
    expect(mmu.stats().swapUsed).toBe(4); // the entries still refer to the slots
    clean(mmu);
    const in0 = mmu.stats().pswpin;
    expect(faults(mm, () => expect(mm.read(va + P, 1)[0]).toBe(21))).toEqual({ minflt: 0, majflt: 1 });
    expect(mmu.stats().pswpin - in0).toBe(1);
    clean(mmu);
  });

  it('R5.3 / R1.5 a write fault on an exclusive swap-cache page reuses it: one minor fault, writable and dirty, the slot freed', async () => {
    const mmu = await createMmu({ ramBytes: 8 << 20 });
    const mm = mmu.createAddressSpace();
    const va = mm.mmap({ length: 2 * P, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.write(va, new Uint8Array([1]));
    mm.write(va + P, new Uint8Array([2]));
    mm.madvise(va, 2 * P, MADV_PAGEOUT);
    const free0 = mmu.stats().freeFrames;
    expect(faults(mm, () => mm.write(va + P, new Uint8Array([99])))).toEqual({ minflt: 1, majflt: 0 });
    expect(mmu.stats().freeFrames).toBe(free0); // no copy: the cached page itself
    expect(mm.pagemap(va + P, 1)[0]).toMatchObject({ present: true, writable: true, dirty: true, exclusive: true });
    expect(mmu.stats().swapUsed).toBe(1); // page 0's slot only
    expect(faults(mm, () => mm.write(va + P, new Uint8Array([100])))).toEqual({ minflt: 0, majflt: 0 });
    expect(mm.read(va + P, 1)[0]).toBe(100);
    clean(mmu);
  });

  it('R5.6 / R5.3 after fork the entry is shared: the child reads the cached page (minor), a write on either side copies in one fault', async () => {
    const mmu = await createMmu({ ramBytes: 8 << 20 });
    const mm = mmu.createAddressSpace();
    const va = mm.mmap({ length: 2 * P, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.write(va, new Uint8Array([5]));
    mm.write(va + P, new Uint8Array([6]));
    mm.madvise(va, 2 * P, MADV_PAGEOUT);
    const child = mm.fork();
    expect(faults(child, () => expect(child.read(va, 1)[0]).toBe(5))).toEqual({ minflt: 1, majflt: 0 });
    expect(child.pagemap(va, 1)[0]).toMatchObject({ present: true, writable: false }); // still shared with the parent's entry
    // The child writes page 1, whose entry the parent shares: swap-in and COW in one fault.
    expect(faults(child, () => child.write(va + P, new Uint8Array([60])))).toEqual({ minflt: 1, majflt: 0 });
    expect(child.pagemap(va + P, 1)[0]).toMatchObject({ present: true, writable: true, exclusive: true });
    clean(mmu);
    child.destroy();
    clean(mmu);
    // The parent's write to page 0: the cached page, now its alone, is reused (one minor fault).
    expect(faults(mm, () => mm.write(va, new Uint8Array([50])))).toEqual({ minflt: 1, majflt: 0 });
    expect(mm.read(va, 1)[0]).toBe(50);
    expect(mm.read(va + P, 1)[0]).toBe(6); // the child's write stayed in the child
    clean(mmu);
  });

  it('R9.1 unmapping swapped pages frees their cached copies and their slots: nothing leaks', async () => {
    const mmu = await createMmu({ ramBytes: 8 << 20 });
    const free0 = mmu.stats().freeFrames;
    const mm = mmu.createAddressSpace();
    const va = mm.mmap({ length: 8 * P, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.touch(va, 8 * P, 'write');
    mm.madvise(va, 8 * P, MADV_PAGEOUT);
    mm.munmap(va, 8 * P);
    expect(mmu.stats().swapUsed).toBe(0);
    clean(mmu);
    mm.destroy();
    expect(mmu.stats().freeFrames).toBe(free0);
    clean(mmu);
  });
});

describe('R11.3 shmem (shared anonymous memory) paged out to swap', () => {
  it('R11.3 / R11.6 / R2.4 PAGEOUT moves written shmem pages to swap (no swap entry in the PTE); each later fault swaps in only its own page, minor from the swap cache', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const mm = mmu.createAddressSpace();
    const va = mm.mmap({ length: 8 * P, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS });
    for (let i = 0; i < 4; i++) mm.write(va + i * P, new Uint8Array([30 + i]));
    mm.read(va + 4 * P, 1); // a hole only read: a clean zero page
    const out0 = mmu.stats().pswpout;
    mm.madvise(va, 8 * P, MADV_PAGEOUT);
    clean(mmu);
    // shmem keeps the swap entry in its object: the PTEs are none (pagemap: not swapped).
    expect(mm.pagemap(va, 8).every((p) => !p.present && !p.swapped)).toBe(true);
    expect(mm.status().rssShmem).toBe(0);
    expect(mmu.stats().pswpout - out0).toBe(4); // the written pages; the clean hole was dropped
    expect(mmu.stats().swapUsed).toBe(4);
    // The fault-around window holds swap entries, not cached pages: only page 2 is mapped.
    expect(faults(mm, () => expect(mm.read(va + 2 * P, 1)[0]).toBe(32))).toEqual({ minflt: 1, majflt: 0 });
    expect(mm.pagemap(va, 8).map((p) => p.present)).toEqual([false, false, true, false, false, false, false, false]);
    expect(mmu.stats().swapUsed).toBe(3);
    clean(mmu);
    // The dropped hole reads zeros, the others their bytes.
    expect(mm.read(va + 4 * P, 1)[0]).toBe(0);
    expect(mm.read(va + 3 * P, 1)[0]).toBe(33);
    clean(mmu);
  });

  it('R11.6 shmem swapped out and reclaimed comes back by a major fault with its bytes, written again to swap by the next PAGEOUT', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const mm = mmu.createAddressSpace();
    const va = mm.mmap({ length: 2 * P, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS });
    mm.write(va, new Uint8Array([41]));
    mm.write(va + P, new Uint8Array([42]));
    mm.madvise(va, 2 * P, MADV_PAGEOUT);
    expect(mmu.reclaim(2)).toBeGreaterThanOrEqual(2);
    clean(mmu);
    const in0 = mmu.stats().pswpin;
    expect(faults(mm, () => expect(mm.read(va + P, 1)[0]).toBe(42))).toEqual({ minflt: 0, majflt: 1 });
    expect(mmu.stats().pswpin - in0).toBe(1);
    expect(mm.pagemap(va, 2).map((p) => p.present)).toEqual([false, true]);
    clean(mmu);
    // Back in the object, dirty (its swap copy went with the entry): PAGEOUT writes it again.
    const out0 = mmu.stats().pswpout;
    mm.madvise(va + P, P, MADV_PAGEOUT);
    expect(mmu.stats().pswpout - out0).toBe(1);
    expect(mm.read(va + P, 1)[0]).toBe(42);
    expect(mm.read(va, 1)[0]).toBe(41);
    clean(mmu);
  });

  it('R5.6 a shmem page swapped out is shared again after swap-in: the child and the parent see one page', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const mm = mmu.createAddressSpace();
    const va = mm.mmap({ length: P, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS });
    mm.write(va, new Uint8Array([7]));
    const child = mm.fork();
    mm.madvise(va, P, MADV_PAGEOUT); // the child maps nothing: the page may go
    expect(mmu.stats().swapUsed).toBe(1);
    expect(child.read(va, 1)[0]).toBe(7);
    mm.write(va, new Uint8Array([8]));
    expect(child.read(va, 1)[0]).toBe(8);
    expect(mm.pagemap(va, 1)[0].pfn).toBe(child.pagemap(va, 1)[0].pfn);
    clean(mmu);
  });

  it('R9.1 MADV_REMOVE punches swapped shmem pages (zeros, slots freed); the last munmap frees the rest', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const free0 = mmu.stats().freeFrames;
    const mm = mmu.createAddressSpace();
    const va = mm.mmap({ length: 4 * P, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS });
    for (let i = 0; i < 4; i++) mm.write(va + i * P, new Uint8Array([i + 1]));
    mm.madvise(va, 4 * P, MADV_PAGEOUT);
    expect(mmu.stats().swapUsed).toBe(4);
    mm.madvise(va, 2 * P, MADV_REMOVE);
    expect(mmu.stats().swapUsed).toBe(2);
    clean(mmu);
    expect(mm.read(va, 1)[0]).toBe(0);
    expect(mm.read(va + 3 * P, 1)[0]).toBe(4);
    mm.munmap(va, 4 * P);
    expect(mmu.stats().swapUsed).toBe(0);
    clean(mmu);
    mm.destroy();
    expect(mmu.stats().freeFrames).toBe(free0);
    clean(mmu);
  });

  it('R2.1 without a free swap slot PAGEOUT keeps written shmem pages in the object (next read minor, fault-around maps them)', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20, swapBytes: 0 });
    const mm = mmu.createAddressSpace();
    const va = mm.mmap({ length: 2 * P, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS });
    mm.write(va, new Uint8Array([1]));
    mm.write(va + P, new Uint8Array([2]));
    mm.madvise(va, 2 * P, MADV_PAGEOUT);
    expect(mmu.stats().pswpout).toBe(0);
    expect(faults(mm, () => expect(mm.read(va, 1)[0]).toBe(1))).toEqual({ minflt: 1, majflt: 0 });
    expect(mm.pagemap(va, 2).map((p) => p.present)).toEqual([true, true]);
    clean(mmu);
  });

  it('R9.2 MADV_WILLNEED on anonymous memory after the swap cache was reclaimed reads the pages back without mapping them', async () => {
    const mmu = await createMmu({ ramBytes: 8 << 20 });
    const mm = mmu.createAddressSpace();
    const va = mm.mmap({ length: 2 * P, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.touch(va, 2 * P, 'write');
    mm.madvise(va, 2 * P, MADV_PAGEOUT);
    const in0 = mmu.stats().pswpin;
    mm.madvise(va, 2 * P, MADV_WILLNEED); // still cached: nothing to read
    expect(mmu.stats().pswpin).toBe(in0);
    expect(mm.pagemap(va, 2).every((p) => p.swapped)).toBe(true);
    clean(mmu);
  });
});
