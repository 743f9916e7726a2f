// Issue 14 group C: anonymous memory through fork, GUP pins, swap-in and lazy free, each
// against the kernel's behaviour (6.18): anon_vma preparation on a failed private write
// (R5.5), read-only pins unshare (R8.5), swap-in maps an exclusive page writable (R1.5),
// MADV_FREE (R9.12) and MADV_PAGEOUT of shmem.
import { describe, it, expect } from 'vitest';
import {
  createMmu, MemoryFile, BusError, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS,
  MADV_PAGEOUT, type Mmu,
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
