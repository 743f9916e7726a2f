// MADV_PAGEOUT of a dirty page of a shared disk-file mapping (issue 14, fuzz run E; conformance
// scenario madv-pageout-dirty-file-kept, Linux 6.18): reclaim outside kswapd writes no file
// folio back, so the page is unmapped but stays in the page cache, dirty; the next access is a
// minor fault on the same bytes, and the backend has not been written. A clean page is dropped
// (and read back by the readahead the kept page's PG_reclaim mark starts).
import { describe, it, expect } from 'vitest';
import { createMmu, MemoryFile, PROT_READ, PROT_WRITE, MAP_SHARED, MADV_PAGEOUT } from '../../src/index.js';

const P = 4096;

describe('R9.1 MADV_PAGEOUT and dirty file pages', () => {
  it('R9.1 R2.7 a dirty shared file page is unmapped and kept cached (minor fault next); a clean one is dropped', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const mm = mmu.createAddressSpace();
    const backend = new MemoryFile(2 * P);
    const file = mmu.openFile(backend);
    const va = mm.mmap({ length: 2 * P, prot: PROT_READ | PROT_WRITE, flags: MAP_SHARED, file });
    mm.write(va, new Uint8Array([42]));
    expect(mm.read(va + P, 1)[0]).toBe(0);
    mm.madvise(va, 2 * P, MADV_PAGEOUT);
    expect(mm.pagemap(va, 2).map((p) => p.present)).toEqual([false, false]);
    expect(backend.bytes()[0]).toBe(0); // not written back by MADV_PAGEOUT
    expect(file.page(0)).toMatchObject({ dirty: true, readahead: true }); // kept, PG_reclaim (= PG_readahead)
    expect(file.page(1)).toBeNull(); // the clean page is dropped
    const f0 = mm.rusage();
    expect(mm.read(va, 1)[0]).toBe(42);
    const f1 = mm.rusage();
    expect(f1.majflt - f0.majflt).toBe(0);
    expect(f1.minflt - f0.minflt).toBe(1);
    // R2.9: the marked page starts readahead, which reads the dropped page 1 back (6.18 does).
    expect(file.page(1)).not.toBeNull();
    expect(mm.read(va + P, 1)[0]).toBe(0);
    expect(mm.rusage().majflt - f1.majflt).toBe(0);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});
