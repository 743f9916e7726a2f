// Issue 14, session 3: fuzz classes found by conformance:fuzz on Linux 6.18 (ext4) and fixed
// here. Each has its conformance scenario (named in the test) with a golden result.
import { describe, it, expect } from 'vitest';
import { createMmu, MemoryFile, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS,
  MADV_MERGEABLE, MADV_RANDOM, PROT_EXEC, MADV_HUGEPAGE } from '../../src/index.js';

const P = 4096;

describe('issue 14 fuzz residuals', () => {
  it('R10.2 R11.6 an extending pwrite caches the old partial EOF page (ext4 zeroes its tail): the next fault there is minor (pwrite-extend-caches-eof-block)', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const mm = mmu.createAddressSpace();
    const data = new Uint8Array(3 * P + 1).fill(7);
    const backend = new MemoryFile(data);
    const file = mmu.openFile(backend);
    const va = mm.mmap({ length: 4 * P, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE, file });
    expect(file.cachedPages).toBe(0);
    file.pwrite(4 * P, Uint8Array.of(1));
    // Page 4 (written) and page 3 (the old EOF page, its tail zeroed) are cached now.
    expect(file.cachedPages).toBe(2);
    expect(file.page(3)!.uptodate).toBe(false); // valid buffer, folio not uptodate
    const r0 = mm.rusage();
    mm.write(va + 3 * P, Uint8Array.of(9));
    const r1 = mm.rusage();
    expect([r1.minflt - r0.minflt, r1.majflt - r0.majflt]).toEqual([1, 0]);
    // Fault-around did not map pages 0-2 (nothing else was cached); the old data survived, the
    // old tail reads as zeros.
    expect(mm.pagemap(va, 4).map((p) => p.present)).toEqual([false, false, false, true]);
    expect([...mm.read(va + 3 * P, 3)]).toEqual([9, 0, 0]);
    expect(mm.read(va, 1)[0]).toBe(7);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R10.2 an extending pwrite into the EOF page itself, or on a page-aligned size, caches no other page', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const f1 = mmu.openFile(new MemoryFile(new Uint8Array(P + 10)));
    f1.pwrite(P + 100, Uint8Array.of(1));
    expect(f1.cachedPages).toBe(1);
    const f2 = mmu.openFile(new MemoryFile(new Uint8Array(2 * P)));
    f2.pwrite(3 * P, Uint8Array.of(1));
    expect(f2.cachedPages).toBe(1);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.5 mprotect to rw and back to r leaves a private file VMA charged (VM_ACCOUNT): it stays split, and mlock faults each part (mprotect-rw-back-keeps-split)', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const mm = mmu.createAddressSpace();
    const file = mmu.openFile(new MemoryFile(new Uint8Array(2 * P)));
    const va = mm.mmap({ length: 2 * P, prot: PROT_READ, flags: MAP_PRIVATE, file });
    mm.mprotect(va + P, P, PROT_READ | PROT_WRITE);
    mm.mprotect(va + P, P, PROT_READ);
    expect(mm.maps().filter((m) => m.file !== 0).map((m) => [m.start - va, m.end - va, m.perms])).toEqual([[0, P, 'r--p'], [P, 2 * P, 'r--p']]);
    const r0 = mm.rusage();
    mm.mlock(va, 2 * P);
    expect(mm.rusage().minflt + mm.rusage().majflt - r0.minflt - r0.majflt).toBe(2);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.5 an anonymous private VMA that never got an anon_vma drops the charge when made read-only again (Linux 6.7+), so it merges back', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const mm = mmu.createAddressSpace();
    const va = mm.mmap({ length: 2 * P, prot: PROT_READ, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.mprotect(va + P, P, PROT_READ | PROT_WRITE);
    mm.mprotect(va + P, P, PROT_READ);
    expect(mm.maps().length).toBe(1);
    // Written (anon_vma prepared): the charge stays and so does the split.
    mm.mprotect(va + P, P, PROT_READ | PROT_WRITE);
    mm.write(va + P, Uint8Array.of(1));
    mm.mprotect(va + P, P, PROT_READ);
    expect(mm.maps().length).toBe(2);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.1 MADV_MERGEABLE is ignored on shared mappings (file or shmem): no split, fault-around is not clipped (madv-mergeable-shared-no-split)', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const mm = mmu.createAddressSpace();
    const file = mmu.openFile(new MemoryFile(new Uint8Array(26 * P)));
    const va = mm.mmap({ length: 18 * P, prot: PROT_READ, flags: MAP_SHARED, file });
    mm.madvise(va + 13 * P, 4 * P, MADV_MERGEABLE);
    const sh = mm.mmap({ length: 4 * P, prot: PROT_READ | PROT_WRITE, flags: MAP_SHARED | MAP_ANONYMOUS });
    mm.madvise(sh + P, P, MADV_MERGEABLE);
    expect(mm.maps().length).toBe(2);
    mm.touch(va + 17 * P, 1);
    expect(mm.pagemap(va + 16 * P, 2).map((p) => p.present)).toEqual([true, true]);
    // Private anonymous memory does take the flag (and splits).
    const pa = mm.mmap({ length: 4 * P, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.madvise(pa + P, P, MADV_MERGEABLE);
    expect(mm.maps().length).toBe(5);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.9 6.16+: MADV_RANDOM does not stop the forward read of a cold VM_EXEC fault (exec-random-reads-forward); without VM_EXEC, or with execReadForward off, one page is read', async () => {
    for (const [prot, execReadForward, want] of [[PROT_READ | PROT_EXEC, true, [0, 0]], [PROT_READ, true, [1, 0]], [PROT_READ | PROT_EXEC, false, [1, 0]]] as const) {
      const mmu = await createMmu({ ramBytes: 16 << 20, execReadForward });
      const mm = mmu.createAddressSpace();
      const file = mmu.openFile(new MemoryFile(new Uint8Array(8 * P)));
      const va = mm.mmap({ length: 8 * P, prot, flags: MAP_PRIVATE, file });
      mm.madvise(va, 8 * P, MADV_RANDOM);
      mm.touch(va + 3 * P, 1);
      expect(file.cachedPages).toBe(want[0] ? 1 : 5); // forward: pages 3-7, mapped by the retry
      const r0 = mm.rusage();
      mm.touch(va + 5 * P, 1);
      const r1 = mm.rusage();
      expect(r1.majflt - r0.majflt).toBe(want[0]);
      expect(r1.minflt - r0.minflt).toBe(want[1]);
      expect(mmu.checkInvariants()).toEqual([]);
    }
  });

  it('R2.9 a cold fault in a MADV_HUGEPAGE file VMA reads from the 2 MiB-aligned block start (1024 pages, 512 with MADV_RANDOM; cut at EOF) in PMD-order folios (madv-hugepage-file-ra-pmd)', async () => {
    for (const [random, want] of [[false, 688], [true, 512]] as const) {
      const mmu = await createMmu({ ramBytes: 32 << 20, largeFolioReadahead: true });
      const mm = mmu.createAddressSpace();
      const file = mmu.openFile(new MemoryFile(new Uint8Array(1200 * P)));
      const va = mm.mmap({ length: 1200 * P, prot: PROT_READ, flags: MAP_PRIVATE, file });
      mm.madvise(va, 1200 * P, MADV_HUGEPAGE);
      if (random) mm.madvise(va, 1200 * P, MADV_RANDOM);
      mm.touch(va + 700 * P, 1);
      expect(file.cachedPages).toBe(want);
      expect(file.page(512)!.order).toBe(9); // a PMD-order folio at the aligned start (512), cut at EOF (1200)
      expect(mmu.checkInvariants()).toEqual([]);
    }
    // An 8-page file: one order-3 folio holding EOF; fault-around maps nothing without a
    // PTE table, so only the faulting page is mapped.
    const mmu = await createMmu({ ramBytes: 16 << 20, largeFolioReadahead: true });
    const mm = mmu.createAddressSpace();
    const file = mmu.openFile(new MemoryFile(new Uint8Array(8 * P)));
    const va = mm.mmap({ length: 4 * P, prot: PROT_READ, flags: MAP_PRIVATE, file });
    mm.madvise(va, 4 * P, MADV_HUGEPAGE);
    mm.touch(va + 3 * P, 1);
    expect(file.page(0)!.order).toBe(3);
    expect(mm.pagemap(va, 4).map((p) => p.present)).toEqual([false, false, false, true]);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R8.6 a large page-cache folio faulted into a VM_LOCKED VMA is not mlocked; a small one is (mlock-large-folio-not-mlocked)', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20, largeFolioReadahead: true });
    const mm = mmu.createAddressSpace();
    const file = mmu.openFile(new MemoryFile(new Uint8Array(41 * P + 2906).fill(3)));
    const va = mm.mmap({ length: 24 * P, prot: PROT_READ, flags: MAP_PRIVATE, file });
    mm.madvise(va + 10 * P, 9 * P, MADV_HUGEPAGE);
    mm.mlock(va + 15 * P, 7 * P);
    expect(mm.pagemap(va + 15 * P, 7).every((p) => p.present)).toBe(true);
    const pages = [15, 16, 17, 18, 19, 20, 21].map((i) => file.page(i)!);
    expect(pages.some((p) => p.order > 0)).toBe(true);
    for (const p of pages) expect(p.mlocked, `order ${p.order}`).toBe(p.order === 0);
    expect(mmu.checkInvariants()).toEqual([]);
    // The same without large-folio readahead: order-0 folios, each mlocked as it is faulted.
    const mmu2 = await createMmu({ ramBytes: 16 << 20, largeFolioReadahead: false });
    const mm2 = mmu2.createAddressSpace();
    const file2 = mmu2.openFile(new MemoryFile(new Uint8Array(41 * P + 2906).fill(3)));
    const va2 = mm2.mmap({ length: 24 * P, prot: PROT_READ, flags: MAP_PRIVATE, file: file2 });
    mm2.mlock(va2 + 15 * P, 7 * P);
    const small = [15, 16, 17, 18, 19, 20, 21].map((i) => file2.page(i)!);
    expect(small.every((p) => p.order === 0 && p.mlocked)).toBe(true);
    expect(mmu2.checkInvariants()).toEqual([]);
  });
});
