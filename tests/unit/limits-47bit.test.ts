// Issue 18 item 7: address-space limits exact to x86-64 Linux. A 47-bit user address space
// holds VMAs of any size up to 2^47 bytes (2^35 pages: total_vm and locked_vm count in 64
// bits), and mmap accepts file offsets up to MAX_LFS_FILESIZE; a fault past EOF is SIGBUS (R10.1).
import { describe, it, expect } from 'vitest';
import { BusError, MemoryFile, MAP_SHARED, MAP_PRIVATE, MAP_ANONYMOUS, MAP_NORESERVE, MCL_FUTURE, MCL_ONFAULT,
  PROT_READ } from '../../src/index.js';
import { machine, RW, PG, expectErrno } from './mm-helpers.js';

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
});
