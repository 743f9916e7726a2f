// Issue 14 group C: anonymous memory through fork, GUP pins, swap-in and lazy free, each
// against the kernel's behaviour (6.18): anon_vma preparation on a failed private write
// (R5.5), read-only pins unshare (R8.5), swap-in maps an exclusive page writable (R1.5),
// MADV_FREE (R9.12) and MADV_PAGEOUT of shmem.
import { describe, it, expect } from 'vitest';
import {
  createMmu, MemoryFile, BusError, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS,
  MADV_PAGEOUT, MADV_FREE, MADV_DONTNEED, type Mmu,
} from '../../src/index.js';

const P = 4096;
const RW = PROT_READ | PROT_WRITE;

function clean(mmu: Mmu) {
  expect(mmu.checkInvariants()).toEqual([]);
}

describe('R5.5 a failed private write fault has prepared the anon_vma', () => {
  it('R5.5 / R10.1 a write past EOF (SIGBUS) in a private file mapping makes fork copy its PTEs', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const mm = mmu.createAddressSpace();
    const file = mmu.openFile(new MemoryFile(new Uint8Array(P).fill(0x81)));
    const va = mm.mmap({ length: 2 * P, prot: RW, flags: MAP_PRIVATE, file });
    expect(mm.read(va, 1)[0]).toBe(0x81);
    let err: unknown;
    try { mm.write(va + P, new Uint8Array([1])); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(BusError);
    const child = mm.fork();
    const [c] = child.pagemap(va, 1);
    expect(c).toMatchObject({ present: true, file: true, pfn: file.page(0)!.pfn });
    const f0 = child.rusage();
    expect(child.read(va, 1)[0]).toBe(0x81);
    expect(child.rusage()).toEqual(f0); // no fault: the PTE was copied
    clean(mmu);
    child.destroy();
    clean(mmu);
  });

  it('R5.5 without a failed write, a private file VMA that was only read is not copied', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const mm = mmu.createAddressSpace();
    const file = mmu.openFile(new MemoryFile(new Uint8Array(P).fill(0x81)));
    const va = mm.mmap({ length: 2 * P, prot: RW, flags: MAP_PRIVATE, file });
    mm.read(va, 1);
    const child = mm.fork();
    expect(child.pagemap(va, 1)[0].present).toBe(false);
    clean(mmu);
  });
});

describe('R1.5 do_swap_page maps an exclusive page writable on a read fault', () => {
  it('R1.5 / R11.6 a read fault swapping in an exclusive page in a writable VMA maps it writable and clean: the next write takes no fault', async () => {
    const mmu = await createMmu({ ramBytes: 8 << 20 });
    const mm = mmu.createAddressSpace();
    const va = mm.mmap({ length: 2 * P, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.write(va, new Uint8Array([42]));
    mm.madvise(va, P, MADV_PAGEOUT);
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ present: false, swapped: true });
    expect(mmu.reclaim(1)).toBeGreaterThanOrEqual(1); // the swap-cache copy goes: a real swap-in
    const f0 = mm.rusage();
    expect(mm.read(va, 1)[0]).toBe(42);
    const f1 = mm.rusage();
    expect(f1.majflt - f0.majflt).toBe(1);
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ present: true, writable: true, dirty: false, exclusive: true });
    mm.write(va, new Uint8Array([43]));
    expect(mm.rusage()).toEqual(f1); // no second fault
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ writable: true, dirty: true });
    expect(mm.read(va, 1)[0]).toBe(43);
    clean(mmu);
  });

  it('R1.5 / R5.6 a swapped page shared after fork comes back read-only; the write then copies', async () => {
    const mmu = await createMmu({ ramBytes: 8 << 20 });
    const mm = mmu.createAddressSpace();
    const va = mm.mmap({ length: P, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.write(va, new Uint8Array([7]));
    mm.madvise(va, P, MADV_PAGEOUT);
    const child = mm.fork();
    expect(mm.read(va, 1)[0]).toBe(7);
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ present: true, writable: false });
    const f0 = mm.rusage();
    mm.write(va, new Uint8Array([8]));
    expect(mm.rusage().minflt - f0.minflt).toBe(1);
    expect(child.read(va, 1)[0]).toBe(7);
    clean(mmu);
  });

  it('R1.5 a read fault in a read-only VMA maps the swapped-in page read-only', async () => {
    const mmu = await createMmu({ ramBytes: 8 << 20 });
    const mm = mmu.createAddressSpace();
    const va = mm.mmap({ length: P, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.write(va, new Uint8Array([9]));
    mm.madvise(va, P, MADV_PAGEOUT);
    mm.mprotect(va, P, PROT_READ);
    expect(mm.read(va, 1)[0]).toBe(9);
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ present: true, writable: false });
    clean(mmu);
  });
});

describe('R8.5 a read-only pin of a shared anonymous page unshares it first', () => {
  it('R8.5 / R5.6 after fork, getUserPages({ pin: true }) copies the page (FAULT_FLAG_UNSHARE): the pin sees the parent\'s later writes', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const mm = mmu.createAddressSpace();
    const va = mm.mmap({ length: P, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.write(va, new Uint8Array([1]));
    const shared = mm.pagemap(va, 1)[0].pfn;
    const child = mm.fork();
    const f0 = mm.rusage();
    const [pfn] = mm.getUserPages(va, 1, { pin: true });
    expect(mm.rusage().minflt - f0.minflt).toBe(1); // the unshare fault
    expect(pfn).not.toBe(shared);
    const pm = mm.pagemap(va, 1)[0];
    expect(pm).toMatchObject({ present: true, pfn, exclusive: true, writable: false });
    expect(child.pagemap(va, 1)[0]).toMatchObject({ pfn: shared, exclusive: true });
    clean(mmu);
    // The parent's write reuses the exclusive page: the pinned frame keeps being its page.
    const f1 = mm.rusage();
    mm.write(va, new Uint8Array([2]));
    expect(mm.rusage().minflt - f1.minflt).toBe(1); // wp reuse, no copy
    expect(mm.pagemap(va, 1)[0].pfn).toBe(pfn);
    expect(mmu.phys.read(pfn * P, 1)[0]).toBe(2);
    expect(child.read(va, 1)[0]).toBe(1);
    mm.unpinUserPage(pfn);
    clean(mmu);
  });

  it('R8.5 a read-only pin of an exclusive page, or a write pin, takes no unshare fault', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const mm = mmu.createAddressSpace();
    const va = mm.mmap({ length: 2 * P, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.write(va, new Uint8Array([1]));
    const mine = mm.pagemap(va, 1)[0].pfn;
    const f0 = mm.rusage();
    const [pfn] = mm.getUserPages(va, 1, { pin: true });
    expect(pfn).toBe(mine);
    expect(mm.rusage()).toEqual(f0);
    mm.unpinUserPage(pfn);
    clean(mmu);
  });

  it('R8.5 an unpinned read (FOLL_GET) of a shared page leaves it shared', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const mm = mmu.createAddressSpace();
    const va = mm.mmap({ length: P, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.write(va, new Uint8Array([1]));
    const shared = mm.pagemap(va, 1)[0].pfn;
    mm.fork();
    const [pfn] = mm.getUserPages(va, 1);
    expect(pfn).toBe(shared);
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ pfn: shared, exclusive: false });
    clean(mmu);
  });
});

describe('MADV_PAGEOUT of shared anonymous memory (shmem) and of pages mapped elsewhere too', () => {
  it('R2.1 / R11.6 without swap PAGEOUT unmaps shmem pages; written ones stay in the shmem cache (next read minor, bytes intact), holes only read are dropped', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20, swapBytes: 0 });
    const mm = mmu.createAddressSpace();
    const va = mm.mmap({ length: 4 * P, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS });
    mm.write(va, new Uint8Array([11]));
    mm.write(va + P, new Uint8Array([12]));
    mm.read(va + 2 * P, 1);
    mm.read(va + 3 * P, 1);
    mm.madvise(va, 4 * P, MADV_PAGEOUT);
    expect(mm.pagemap(va, 4).map((p) => p.present)).toEqual([false, false, false, false]);
    expect(mm.status().rssShmem).toBe(0);
    clean(mmu);
    const f0 = mm.rusage();
    expect(mm.read(va, 1)[0]).toBe(11);
    const f1 = mm.rusage();
    expect(f1.minflt - f0.minflt).toBe(1);
    expect(f1.majflt).toBe(f0.majflt);
    // fault-around mapped the other cached page back, not the dropped holes
    expect(mm.pagemap(va, 4).map((p) => p.present)).toEqual([true, true, false, false]);
    expect(mm.read(va + P, 1)[0]).toBe(12);
    expect(mm.read(va + 2 * P, 1)[0]).toBe(0);
    clean(mmu);
  });

  it('R5.6 PAGEOUT leaves a page another process maps too (folio_maybe_mapped_shared), anonymous or file', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const mm = mmu.createAddressSpace();
    const a = mm.mmap({ length: 2 * P, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.write(a, new Uint8Array([1]));
    mm.write(a + P, new Uint8Array([2]));
    const s = mm.mmap({ length: 2 * P, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS });
    mm.write(s, new Uint8Array([3]));
    mm.write(s + P, new Uint8Array([4]));
    const child = mm.fork();
    child.read(s, 1); // the child maps shmem page 0 (fault-around: both)
    child.madvise(s + P, P, 4 /* MADV_DONTNEED */);
    child.madvise(a + P, P, 4 /* MADV_DONTNEED */);
    mm.madvise(a, 2 * P, MADV_PAGEOUT);
    mm.madvise(s, 2 * P, MADV_PAGEOUT);
    const pa = mm.pagemap(a, 2), ps = mm.pagemap(s, 2);
    expect([pa[0].present, pa[1].swapped]).toEqual([true, true]); // shared one kept, own one swapped
    expect([ps[0].present, ps[1].present]).toEqual([true, false]);
    expect(Array.from(mm.read(a, 1))).toEqual([1]);
    expect(Array.from(mm.read(a + P, 1))).toEqual([2]);
    expect(Array.from(mm.read(s + P, 1))).toEqual([4]);
    clean(mmu);
  });
});

describe('MADV_FREE: lazily freed anonymous pages (madvise09)', () => {
  it('R9.1 / R11.5 after MADV_FREE pages stay mapped, clean and old; a write takes no fault; reclaim drops the clean ones (no swap-out) and keeps the rewritten one', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const mm = mmu.createAddressSpace();
    const va = mm.mmap({ length: 4 * P, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    for (let i = 0; i < 4; i++) mm.write(va + i * P, new Uint8Array([17 + i]));
    const pfns = mm.pagemap(va, 4).map((p) => p.pfn);
    mm.madvise(va, 4 * P, MADV_FREE);
    expect(mm.pagemap(va, 4).map((p) => [p.present, p.pfn, p.dirty, p.young, p.writable]))
      .toEqual(pfns.map((pfn) => [true, pfn, false, false, true]));
    clean(mmu);
    const f0 = mm.rusage();
    mm.write(va + P, new Uint8Array([99])); // cancels the discard of page 1
    expect(mm.read(va + 2 * P, 1)[0]).toBe(19); // a read does not
    expect(mm.rusage()).toEqual(f0);
    const out0 = mmu.stats().pswpout;
    mm.madvise(va, 4 * P, MADV_PAGEOUT);
    expect(mmu.stats().pswpout).toBe(out0); // discarded, not swapped
    expect(mm.pagemap(va, 4).map((p) => p.present)).toEqual([false, true, false, false]);
    expect(mm.pagemap(va, 4).some((p) => p.swapped)).toBe(false);
    expect(mm.status().rssAnon).toBe(P);
    clean(mmu);
    expect(Array.from(mm.read(va, 1))).toEqual([0]); // a fresh zero page
    expect(Array.from(mm.read(va + P, 1))).toEqual([99]);
    clean(mmu);
  });

  it('R9.1 MADV_FREE pages are discarded by reclaim under memory pressure, the others are swapped; nothing written after MADV_FREE is lost', async () => {
    const mmu = await createMmu({ ramBytes: 4 << 20 });
    const mm = mmu.createAddressSpace();
    const n = 256;
    const lazy = mm.mmap({ length: n * P, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    for (let i = 0; i < n; i++) mm.write(lazy + i * P, new Uint8Array([1]));
    mm.madvise(lazy, n * P, MADV_FREE);
    for (let i = 0; i < n; i += 16) mm.write(lazy + i * P, new Uint8Array([2])); // kept
    const big = mm.mmap({ length: 1024 * P, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    for (let i = 0; i < 1024; i++) mm.write(big + i * P, new Uint8Array([i & 0xff, 5]));
    const pm = mm.pagemap(lazy, n);
    const dropped = pm.filter((p) => !p.present && !p.swapped).length;
    expect(dropped).toBeGreaterThan(0);
    for (let i = 0; i < n; i++) {
      const b = mm.read(lazy + i * P, 1)[0];
      if (i % 16 === 0) expect(b).toBe(2);
      else expect([0, 1]).toContain(b); // dropped (0) or still there (1)
    }
    for (let i = 0; i < 1024; i++) expect(Array.from(mm.read(big + i * P, 2))).toEqual([i & 0xff, 5]);
    clean(mmu);
  });

  it('R9.1 MADV_FREE frees swap entries in the range (the data is not wanted): the next read is a zero page', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const mm = mmu.createAddressSpace();
    const va = mm.mmap({ length: 2 * P, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.write(va, new Uint8Array([5]));
    mm.madvise(va, P, MADV_PAGEOUT);
    expect(mm.pagemap(va, 1)[0].swapped).toBe(true);
    mm.madvise(va, 2 * P, MADV_FREE);
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ present: false, swapped: false });
    expect(mmu.stats().swapUsed).toBe(0);
    expect(mm.status().vmSwap).toBe(0);
    expect(mm.read(va, 1)[0]).toBe(0);
    clean(mmu);
  });

  it('R5.6 / R9.1 pages shared after fork whose other mapping is dirty survive reclaim (the discard is cancelled); after the child exits, a clean one is dropped', async () => {
    const mmu = await createMmu({ ramBytes: 4 << 20 });
    const mm = mmu.createAddressSpace();
    const n = 64;
    const va = mm.mmap({ length: n * P, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    for (let i = 0; i < n; i++) mm.write(va + i * P, new Uint8Array([i + 1]));
    const child = mm.fork(); // the child's PTEs stay dirty
    mm.madvise(va, n * P, MADV_FREE);
    const big = mm.mmap({ length: 1024 * P, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    for (let i = 0; i < 1024; i++) mm.write(big + i * P, new Uint8Array([7]));
    for (let i = 0; i < n; i++) {
      expect(child.read(va + i * P, 1)[0]).toBe(i + 1);
      expect(mm.read(va + i * P, 1)[0]).toBe(i + 1);
    }
    clean(mmu);
    // Only the parent maps the page now, and its PTE is clean: reclaim may drop it.
    const one = mm.mmap({ length: P, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.write(one, new Uint8Array([8]));
    const c2 = mm.fork();
    mm.madvise(one, P, MADV_FREE);
    c2.destroy();
    mm.madvise(one, P, MADV_PAGEOUT);
    expect(mm.pagemap(one, 1)[0]).toMatchObject({ present: false, swapped: false });
    expect(mm.read(one, 1)[0]).toBe(0);
    clean(mmu);
  });
});
