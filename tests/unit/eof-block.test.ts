// Issue 14, run L item 2 (fuzz seed 607032874 case 1426) and the class found with it: the
// EOF block that ext4 zeroes through the page cache (valid buffer, folio not uptodate, R10.2)
// as read(2), file priming, POSIX_FADV_WILLNEED and the fault path see it (Linux 6.18).
import { describe, it, expect } from 'vitest';
import { createMmu, MemoryFile, PROT_READ, MAP_SHARED } from '../../src/index.js';

const P = 4096;

describe('issue 14 run L item 2: the not-uptodate EOF block', () => {
  it('R10.2 priming (the `cache` step, read(2) without readahead) makes a truncated EOF block uptodate without I/O; WILLNEED leaves it (cache-read-uptodates-eof-block)', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    let reads = 0;
    const backend = new MemoryFile(new Uint8Array(P + 2048).fill(5));
    const readPage = backend.readPage.bind(backend);
    backend.readPage = (i, dst) => { reads++; return readPage(i, dst); };
    const file = mmu.openFile(backend);
    file.truncate(1);
    expect(file.page(0)!.uptodate).toBe(false); // valid buffer, folio not uptodate
    const before = reads;
    file.prime(0, 1, { willneed: true });
    expect(file.page(0)!.uptodate).toBe(false); // force_page_cache_ra skips cached folios
    file.prime(0, 1);
    expect(file.page(0)!.uptodate).toBe(true);
    expect(reads).toBe(before); // read_folio found the buffer valid: no I/O
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.4 R10.2 after `cache` and a growing truncate, a cold fault on page 1 faults around and maps page 0 too (seed 607032874 case 1426)', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const mm = mmu.createAddressSpace();
    const file = mmu.openFile(new MemoryFile(new Uint8Array(P + 2048).fill(5)));
    const va = mm.mmap({ length: 2 * P, prot: PROT_READ, flags: MAP_SHARED, file });
    file.truncate(1);
    file.prime(0, 1);
    file.truncate(2 * P);
    const r0 = mm.rusage();
    expect(mm.read(va + P, 1)[0]).toBe(0); // a hole
    const r1 = mm.rusage();
    expect([r1.minflt - r0.minflt, r1.majflt - r0.majflt]).toEqual([0, 1]);
    expect(mm.pagemap(va, 2).map((p) => p.present)).toEqual([true, true]);
    expect([...mm.read(va, 2)]).toEqual([5, 0]); // page 0's data, its old tail zeroed
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R10.2 a pread of the EOF block makes it uptodate the same way', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const file = mmu.openFile(new MemoryFile(new Uint8Array(2 * P).fill(5)));
    file.truncate(P + 7);
    expect(file.page(1)!.uptodate).toBe(false);
    expect([...file.pread(P, 8)]).toEqual([5, 5, 5, 5, 5, 5, 5]);
    expect(file.page(1)!.uptodate).toBe(true);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R1.1 R2.4 a CPU read fault that makes the EOF block uptodate is retried by Linux, and the retry faults around again: pages 0 and 3 are mapped, one minor fault (eof-block-retry-faults-around)', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const mm = mmu.createAddressSpace();
    const file = mmu.openFile(new MemoryFile(Uint8Array.of(0x80)));
    file.truncate(4 * P); // page 0: the old EOF block, cached, not uptodate
    file.prime(3, 1); // page 3: a hole, uptodate; the EOF folio
    const va = mm.mmap({ length: 4 * P, prot: PROT_READ, flags: MAP_SHARED, file });
    const r0 = mm.rusage();
    expect(mm.read(va, 1)[0]).toBe(0x80);
    const r1 = mm.rusage();
    expect([r1.minflt - r0.minflt, r1.majflt - r0.majflt]).toEqual([1, 0]);
    // The first fault-around found only the EOF folio with no PTE table and mapped nothing;
    // the retry's window starts at the now uptodate page 0 and maps page 3 as well.
    expect(mm.pagemap(va, 4).map((p) => p.present)).toEqual([true, false, false, true]);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R1.1 without fault-around (faultAroundBytes 4096) the EOF-block reread maps the faulting page only', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20, faultAroundBytes: 4096 });
    const mm = mmu.createAddressSpace();
    const file = mmu.openFile(new MemoryFile(Uint8Array.of(0x80)));
    file.truncate(4 * P);
    file.prime(3, 1);
    const va = mm.mmap({ length: 4 * P, prot: PROT_READ, flags: MAP_SHARED, file });
    expect(mm.read(va, 1)[0]).toBe(0x80);
    expect(mm.pagemap(va, 4).map((p) => p.present)).toEqual([true, false, false, false]);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});
