// The fault path's shortcuts (issue 17) change nothing a program can see: the walker's
// paging-structure cache never serves a PMD that changed or a table that was freed (R1.1:
// the access still faults or signals as the tables say), and the per-cpu list hands the
// frame freed last out first.
import { describe, it, expect } from 'vitest';
import { PROT_READ, PROT_NONE, MAP_PRIVATE, MAP_ANONYMOUS, MAP_FIXED, MemoryFile } from '../../src/index.js';
import { machine, anon, PG, RW, faults, expectSegv } from './mm-helpers.js';

const TWO_MIB = 2 << 20;

describe('fault fast path (issue 17)', () => {
  it('R1.1: after a touch, munmap (tables freed) and a read-only mapping at the same address: the write is SEGV_ACCERR, the read maps the zero page', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 1024, RW, 0, 0x4000_0000); // two PTE tables
    mm.touch(va, 1024 * PG, "write");
    mm.write(va + 5 * PG, Uint8Array.of(7));
    mm.munmap(va, 1024 * PG);
    expect(mmu.checkInvariants()).toEqual([]);
    const ro = mm.mmap({ addr: va, length: 1024 * PG, prot: PROT_READ, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED });
    expect(ro).toBe(va);
    expectSegv(() => mm.touch(va + 7 * PG, PG, 'write'), 'SEGV_ACCERR', va + 7 * PG);
    const f0 = faults(mm);
    mm.touch(va, 1024 * PG, 'read');
    expect(faults(mm) - f0).toBe(1024);
    expect(mm.read(va + 5 * PG, 1)[0]).toBe(0);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R1.1: mprotect(PROT_NONE) between two touches of one PTE table: the second touch is SEGV_ACCERR', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 512, RW, 0, 0x4000_0000);
    mm.touch(va, 512 * PG, 'write');
    mm.mprotect(va + 100 * PG, PG, PROT_NONE);
    mm.touch(va, 100 * PG, 'read'); // the same table, cached upper levels: still fine
    expectSegv(() => mm.touch(va + 100 * PG, PG, 'read'), 'SEGV_ACCERR', va + 100 * PG);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R1.1: a parent and its child touch the same addresses through their own tables', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 600, RW, 0, 0x4000_0000);
    mm.touch(va, 600 * PG, 'write');
    mm.write(va + 3 * PG, Uint8Array.of(1));
    const child = mm.fork();
    child.touch(va, 600 * PG, 'write');
    child.write(va + 3 * PG, Uint8Array.of(2));
    mm.touch(va, 600 * PG, 'read');
    expect(mm.read(va + 3 * PG, 1)[0]).toBe(1);
    expect(child.read(va + 3 * PG, 1)[0]).toBe(2);
    child.destroy();
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.6: fault-around maps the window read-only with the file bytes and counts file RSS once per page', async () => {
    const { mmu, mm } = await machine({ faultAroundBytes: 65536 });
    const bytes = new Uint8Array(64 * PG).map((_, i) => (i >> 12) + 1);
    const file = mmu.openFile(new MemoryFile(bytes));
    const va = mm.mmap({ length: 64 * PG, prot: PROT_READ, flags: MAP_PRIVATE, file });
    mm.touch(va, 64 * PG, 'read');
    expect(mm.status().rssFile).toBe(64 * PG);
    for (const k of [0, 15, 16, 63]) expect(mm.read(va + k * PG, 1)[0]).toBe(k + 1);
    expect(mm.pagemap(va + 17 * PG, 1)[0]).toMatchObject({ present: true, writable: false, file: true });
    mm.munmap(va, 64 * PG);
    expect(mm.status().rssFile).toBe(0);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('the per-cpu list is LIFO: the frame freed last is the next one a fault gets', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 8, RW, 0, 0x4000_0000);
    mm.touch(va, 8 * PG, 'write');
    const last = mm.pagemap(va, 1)[0].pfn;
    // The gather frees its batch last page first (mmu_gather.ts: the zap's order comes
    // back out of the LIFO list): page 7 first, page 0 last.
    mm.munmap(va, 8 * PG);
    const vb = anon(mm, 1, RW, 0, 0x4000_0000 + TWO_MIB);
    mm.touch(vb, PG, 'write');
    expect(mm.pagemap(vb, 1)[0].pfn).toBe(last);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});
