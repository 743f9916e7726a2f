// Issue 18 item 7: address-space limits exact to x86-64 Linux. A 47-bit user address space
// holds VMAs of any size up to 2^47 bytes (2^35 pages: total_vm and locked_vm count in 64
// bits), and mmap accepts file offsets up to MAX_LFS_FILESIZE; a fault past EOF is SIGBUS (R10.1).
import { describe, it, expect } from 'vitest';
import { BusError, MemoryFile, MAP_SHARED, MAP_PRIVATE, MAP_ANONYMOUS, MAP_NORESERVE, MCL_FUTURE, MCL_ONFAULT,
  PROT_READ, MADV_REMOVE, type Backend } from '../../src/index.js';
import { machine, RW, PG, expectErrno, expectSegv } from './mm-helpers.js';

/** A sparse backend of `size` bytes holding no data: page i reads as its index (a float64 at
 *  byte 0) and `tag` at byte 8; write-backs are recorded by index. */
function virtualFile(size: number, tag = 0x5a) {
  const written = new Map<number, Uint8Array>();
  const backend: Backend = {
    size: () => size,
    truncate(n) { size = n; },
    readPage(index, dst) {
      const w = written.get(index);
      if (w) { dst.set(w); return PG; }
      new DataView(dst.buffer, dst.byteOffset, PG).setFloat64(0, index, true);
      dst[8] = tag;
      return Math.min(PG, size - index * PG);
    },
    writePage(index, src) { written.set(index, src.slice()); },
  };
  return { backend, written };
}
const pageTag = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true);

describe('47-bit address space (issue 18 item 7)', () => {
  it('anonymous VMAs of 2^44 … 2^46 bytes: vmSize exact, checkInvariants() clean, the last page works', async () => {
    const { mmu, mm } = await machine();
    for (const shift of [44, 45, 46]) {
      const len = 2 ** shift;
      const va = mm.mmap({ length: len, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE });
      expect(mm.status().vmSize).toBe(len);
      expect(mmu.checkInvariants(), `2^${shift}`).toEqual([]);
      mm.write(va + len - PG, new Uint8Array([7]));
      expect(mm.read(va + len - PG, 1)[0]).toBe(7);
      expect(mmu.checkInvariants()).toEqual([]);
      mm.munmap(va, len);
      expect(mm.status().vmSize).toBe(0);
      expect(mmu.checkInvariants()).toEqual([]);
    }
  });

  it('two VMAs together larger than 2^32 pages and mlockall(MCL_FUTURE|MCL_ONFAULT): locked_vm counts 2^35 pages', async () => {
    const { mmu, mm } = await machine();
    mm.mlockall(MCL_FUTURE | MCL_ONFAULT);
    const a = mm.mmap({ length: 2 ** 46, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    const b = mm.mmap({ length: 2 ** 45, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    expect(mm.status().vmLck).toBe(2 ** 46 + 2 ** 45);
    expect(mm.status().vmSize).toBe(2 ** 46 + 2 ** 45);
    expect(mmu.checkInvariants()).toEqual([]);
    mm.munmap(a, 2 ** 46);
    mm.munmap(b, 2 ** 45);
    expect(mm.status().vmLck).toBe(0);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R10.1: file offsets of 2^44 and more are accepted (no EOVERFLOW); the fault there is past EOF: SIGBUS BUS_ADRERR', async () => {
    const { mmu, mm } = await machine();
    const file = mmu.openFile(new MemoryFile(2 * PG));
    for (const offset of [2 ** 44, 2 ** 50]) {
      const va = mm.mmap({ length: 2 * PG, prot: PROT_READ, flags: MAP_SHARED, file, offset });
      expect(mm.maps().find((m) => m.start === va)!.pgoff).toBe(offset / PG);
      let err: unknown;
      try { mm.read(va + PG, 1); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(BusError);
      expect((err as BusError).code).toBe('BUS_ADRERR');
      expect(mmu.checkInvariants()).toEqual([]);
      mm.munmap(va, 2 * PG);
    }
    // Past MAX_LFS_FILESIZE (2^63 - 1 bytes) mmap is EOVERFLOW, as file_mmap_ok refuses.
    expectErrno(() => mm.mmap({ length: 2 * PG, prot: PROT_READ, flags: MAP_SHARED, file, offset: 2 ** 63 - PG }), 'EOVERFLOW');
    expect(mmu.checkInvariants()).toEqual([]);
  });

  // Left of issue 18: the page-cache index was 32-bit, so a shmem page past index 2^32 was
  // SIGBUS (and page 2^32 + i would have aliased page i). It is 64-bit now (struct page's
  // index plus page_ext, the page-cache hash key, rmap's pgoff, truncate/punch ranges).
  it('R1.6, R5.5, R9.1, R9.11: a shared anonymous (shmem) mapping of 2^46 bytes: first and last page, pages 2^32 apart distinct, fork, partial munmap, invariants exact', async () => {
    const { mmu, mm } = await machine();
    const free0 = mmu.stats().freeFrames;
    const len = 2 ** 46;
    const last = len - PG;
    const va = mm.mmap({ length: len, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE });
    expect(mm.status().vmSize).toBe(len);
    mm.write(va, new Uint8Array([1]));
    mm.write(va + last, new Uint8Array([2]));
    mm.write(va + 5 * PG, new Uint8Array([0xaa]));
    mm.write(va + (2 ** 32 + 5) * PG, new Uint8Array([0xbb])); // index 2^32 + 5: not page 5
    expect([mm.read(va, 1)[0], mm.read(va + last, 1)[0]]).toEqual([1, 2]);
    expect([mm.read(va + 5 * PG, 1)[0], mm.read(va + (2 ** 32 + 5) * PG, 1)[0]]).toEqual([0xaa, 0xbb]);
    expect(mm.read(va + (2 ** 33 + 5) * PG, 1)[0]).toBe(0); // a hole: zeros
    expect(mm.status().rssShmem).toBe(5 * PG);
    expect(mmu.checkInvariants()).toEqual([]);

    // fork (R5.5): the child maps the same shmem pages; writes are seen both ways (MAP_SHARED is not COW).
    const child = mm.fork();
    expect([child.read(va, 1)[0], child.read(va + last, 1)[0]]).toEqual([1, 2]);
    child.write(va + last, new Uint8Array([3]));
    expect(mm.read(va + last, 1)[0]).toBe(3);
    mm.write(va + (2 ** 32 + 5) * PG, new Uint8Array([0xcc]));
    expect(child.read(va + (2 ** 32 + 5) * PG, 1)[0]).toBe(0xcc);
    expect(mmu.checkInvariants()).toEqual([]);

    // munmap the upper half in the parent: its pages there fault SIGSEGV, the child keeps them.
    mm.munmap(va + len / 2, len / 2);
    expect(mm.status().vmSize).toBe(len / 2);
    expectSegv(() => mm.read(va + last, 1), 'SEGV_MAPERR', va + last);
    expect(child.read(va + last, 1)[0]).toBe(3);
    expect(mm.read(va, 1)[0]).toBe(1);
    expect(mmu.checkInvariants()).toEqual([]);

    // MADV_REMOVE (R9.1) punches a hole past page 2^32 in the shmem object: both see zeros there.
    child.madvise(va + (2 ** 32 + 5) * PG, PG, MADV_REMOVE);
    expect(mm.read(va + (2 ** 32 + 5) * PG, 1)[0]).toBe(0);
    expect(mm.read(va + 5 * PG, 1)[0]).toBe(0xaa);
    expect(mmu.checkInvariants()).toEqual([]);

    // The last mappings go: the object and every page of it are freed.
    child.destroy();
    expect(mm.read(va, 1)[0]).toBe(1);
    mm.munmap(va, len / 2);
    expect(mmu.checkInvariants()).toEqual([]);
    expect(mmu.stats().freeFrames).toBe(free0);
  });

  it('R1.6, R5.1, R5.9, R10.1, R10.2: a file mapping at offset 2^45 of a 2^46-byte sparse backend faults the right pages in, writes them back at their index, SIGBUS past EOF', async () => {
    const { mmu, mm } = await machine();
    const size = 2 ** 46;
    const { backend, written } = virtualFile(size);
    const file = mmu.openFile(backend);
    expect(file.size).toBe(size);
    const offset = 2 ** 45;
    const first = offset / PG; // page index 2^33
    const sh = mm.mmap({ length: 8 * PG, prot: RW, flags: MAP_SHARED, file, offset });
    for (let i = 0; i < 8; i++) expect(pageTag(mm.read(sh + i * PG, 9)), `page ${i}`).toBe(first + i);
    expect(mm.read(sh + 3 * PG + 8, 1)[0]).toBe(0x5a);
    expect(file.cachedPages).toBeGreaterThanOrEqual(8);
    expect(mmu.checkInvariants()).toEqual([]);

    // A shared write is written back to page 2^33 + 2 (msync), not to a truncated index.
    mm.write(sh + 2 * PG + 100, new Uint8Array([9]));
    mm.msync(sh, 8 * PG);
    expect([...written.keys()]).toEqual([first + 2]);
    expect(written.get(first + 2)![100]).toBe(9);

    // A private mapping of the same pages: COW copies, the file keeps its bytes.
    const pr = mm.mmap({ length: 2 * PG, prot: RW, flags: MAP_PRIVATE, file, offset: offset + 2 * PG });
    expect(mm.read(pr + 100, 1)[0]).toBe(9);
    mm.write(pr + 100, new Uint8Array([7]));
    expect(mm.read(sh + 2 * PG + 100, 1)[0]).toBe(9);
    expect(file.pread(offset + 2 * PG + 100, 1)[0]).toBe(9);
    expect(mmu.checkInvariants()).toEqual([]);

    // The file's last page and past EOF: the mapping runs one page beyond the end.
    const tail = mm.mmap({ length: 2 * PG, prot: PROT_READ, flags: MAP_SHARED, file, offset: size - PG });
    expect(pageTag(mm.read(tail, 8))).toBe(size / PG - 1);
    let err: unknown;
    try { mm.read(tail + PG, 1); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(BusError);
    expect((err as BusError).code).toBe('BUS_ADRERR');

    // Truncation below the mapping (R10.2): the shared pages go, an access is SIGBUS.
    file.truncate(offset + PG);
    expect(pageTag(mm.read(sh, 8))).toBe(first);
    err = undefined;
    try { mm.read(sh + 4 * PG, 1); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(BusError);
    expect(mmu.checkInvariants()).toEqual([]);
    mm.munmap(sh, 8 * PG);
    mm.munmap(pr, 2 * PG);
    mm.munmap(tail, 2 * PG);
    file.close();
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

