// Issue 17 (t17e): touch_run walks the pages it decides alone in a loop that calls nothing
// (uaccess.ts run_walk, one copy per access; the faults and every other leaf stay in
// touch_run_walks), and fault-around's map_small_run takes its constants as parameters.
// The state after a run must be exactly what the single loop (index.ts mmu_set_run_walk(0))
// leaves. Each scenario runs on two fresh machines that differ only in that switch, and
// the comparison covers everything: the core's whole linear memory byte for byte (PTEs
// with their A/D bits, the TLB and its side table, struct pages, LRU lists, rmap and
// mapcounts, RSS and fault counters, file mmap_miss), the TLB hit / miss / walk counters,
// the signals raised and the walk's last-result record after each touch, and the
// invariant checker (empty).
import { describe, it, expect } from 'vitest';
import {
  createMmu, MemoryFile, SegmentationFault, PROT_READ, PROT_WRITE, PROT_EXEC, PROT_NONE, MAP_PRIVATE, MAP_SHARED,
  MAP_FIXED, type Mmu, type AddressSpace,
} from '../../src/index.js';
import { anon, PG, RW, expectSameMachines } from './mm-helpers.js';

type File = ReturnType<Mmu['openFile']>;
type Side = { mmu: Mmu; mm: AddressSpace; file: File };
type Access = 'read' | 'write' | 'exec';
type Touch = (mm: AddressSpace, va: number, pages: number, access: Access) => unknown;
type X = {
  mmu_set_run_walk(on: number): void; mmu_set_prefault_old(on: number): void;
  hw_walk_pa(): number; hw_walk_level(): number; hw_walk_perms(): number;
};

const BASE = 0x4000_0000; // a 2 MiB boundary: runs start at the first page of a PTE table

function content(pages: number): Uint8Array {
  const b = new Uint8Array(pages * PG);
  for (let i = 0; i < b.length; i += 61) b[i] = (i / 61) & 255;
  return b;
}

async function side(runWalk: boolean, faultAroundBytes: number, filePages: number, prefaultOld: boolean): Promise<Side> {
  const mmu = await createMmu({ ramBytes: 24 << 20, faultAroundBytes });
  const x = mmu.core.x as unknown as X;
  x.mmu_set_run_walk(runWalk ? 1 : 0);
  x.mmu_set_prefault_old(prefaultOld ? 1 : 0);
  const file = mmu.openFile(new MemoryFile(content(filePages)));
  file.prime(0, filePages, { order: 0 });
  return { mmu, mm: mmu.createAddressSpace(), file };
}

function signalOf(e: unknown): unknown {
  if (e === null) return null;
  if (e instanceof SegmentationFault) return ['SIGSEGV', e.code, e.address];
  return [(e as Error).constructor.name, String((e as Error).message)];
}

// Run `scenario` with run_walk on and off; every touch's outcome and the whole state must agree.
async function sameState(scenario: (s: Side, touch: Touch) => void,
  { faultAroundBytes = 65536, filePages = 1200, prefaultOld = false } = {}): Promise<Side> {
  const sides: Side[] = [];
  const outcomes: unknown[][] = [];
  for (const on of [true, false]) {
    const s = await side(on, faultAroundBytes, filePages, prefaultOld);
    const out: unknown[] = [];
    scenario(s, (mm, va, pages, access) => {
      let err: unknown = null;
      try { mm.touch(va, pages * PG, access); } catch (e) { err = e; }
      // the outcome and the walk's last-result record right after it (later calls walk too)
      const x = s.mmu.core.x as unknown as X;
      out.push([signalOf(err), x.hw_walk_pa(), x.hw_walk_level(), x.hw_walk_perms()]);
      return err;
    });
    expect(s.mmu.checkInvariants()).toEqual([]);
    sides.push(s);
    outcomes.push(out);
  }
  const [a, b] = sides;
  expect(outcomes[0]).toEqual(outcomes[1]);
  expectSameMachines(a, b);
  return a;
}

describe('issue 17 (t17e) touch_run\'s call-free walk loop leaves the single loop\'s state', () => {
  it('R2.4 fault-around reads over three PTE tables, read again (TLB hits), then written (COW in the run)', async () => {
    const s = await sameState(({ mm, file }, touch) => {
      const va = mm.mmap({ addr: BASE, length: 1100 * PG, prot: RW, flags: MAP_PRIVATE | MAP_FIXED, file, offset: 0 });
      expect(touch(mm, va, 1100, 'read')).toBeNull();
      expect(touch(mm, va, 1100, 'read')).toBeNull();
      expect(touch(mm, va, 1100, 'write')).toBeNull();
      expect(mm.rusage().minflt).toBe(Math.ceil(1100 / 16) + 1100);
    });
    expect(s.mmu.stats().tlbHits).toBeGreaterThan(550); // the second read hits (bar what the TLB evicted)
  });

  it('R2.4 prefaultOld: the run sets the accessed bit of every old prefaulted PTE it walks', async () => {
    const s = await sameState(({ mm, file }, touch) => {
      const va = mm.mmap({ addr: BASE, length: 600 * PG, prot: PROT_READ, flags: MAP_PRIVATE | MAP_FIXED, file, offset: 0 });
      expect(touch(mm, va, 600, 'read')).toBeNull();
    }, { prefaultOld: true });
    expect(s.mm.pagemap(BASE, 600).every((e) => e.present)).toBe(true);
  });

  it('R2.6 shared writable mapping of dirty and clean pages: writable TLB entries only for dirty PTEs, then writes', async () => {
    await sameState(({ mm, file }, touch) => {
      for (let i = 0; i < 40; i += 3) file.pwrite(i * PG, Uint8Array.of(9)); // dirty page-cache pages
      const va = mm.mmap({ addr: BASE, length: 600 * PG, prot: RW, flags: MAP_SHARED | MAP_FIXED, file, offset: 0 });
      expect(touch(mm, va, 600, 'read')).toBeNull();
      expect(touch(mm, va, 600, 'write')).toBeNull();
      expect(touch(mm, va, 600, 'read')).toBeNull();
    });
  });

  it('R1.1 TLB hits between walked pages and after the last one (the last walked page is the walk record)', async () => {
    await sameState(({ mm, file }, touch) => {
      const va = mm.mmap({ addr: BASE, length: 300 * PG, prot: PROT_READ, flags: MAP_PRIVATE | MAP_FIXED, file, offset: 0 });
      // single-page touches fill the TLB for even pages and the last ten; fault-around maps the rest
      for (let i = 0; i < 300; i += 2) touch(mm, va + i * PG, 1, 'read');
      for (let i = 290; i < 300; i++) touch(mm, va + i * PG, 1, 'read');
      expect(touch(mm, va, 300, 'read')).toBeNull(); // walks the odd pages below 290, ends on hits
    });
    await sameState(({ mm, file }, touch) => {
      const va = mm.mmap({ addr: BASE, length: 100 * PG, prot: PROT_READ, flags: MAP_PRIVATE | MAP_FIXED, file, offset: 0 });
      touch(mm, va + 99 * PG, 1, 'read');
      expect(touch(mm, va + 80 * PG, 20, 'read')).toBeNull(); // a fault, walks, then one hit
    });
  });

  it('R1.1 exec touches (NX at the leaf: a SIGSEGV in the run), write touches of anonymous memory and COW after fork', async () => {
    await sameState(({ mm, file }, touch) => {
      const x = mm.mmap({ addr: BASE, length: 200 * PG, prot: PROT_READ | PROT_EXEC, flags: MAP_PRIVATE | MAP_FIXED, file, offset: 0 });
      expect(touch(mm, x, 200, 'exec')).toBeNull();
      expect(touch(mm, x, 200, 'read')).toBeNull();
      const r = mm.mmap({ addr: BASE + 0x20_0000, length: 100 * PG, prot: PROT_READ, flags: MAP_PRIVATE | MAP_FIXED, file, offset: 0 });
      touch(mm, r, 100, 'read');
      expect(signalOf(touch(mm, r, 100, 'exec'))).toEqual(['SIGSEGV', 'SEGV_ACCERR', r]);
      const a = anon(mm, 700, RW, MAP_FIXED, BASE + 0x40_0000);
      expect(touch(mm, a, 700, 'write')).toBeNull();
      const child = mm.fork();
      expect(touch(child, a, 700, 'write')).toBeNull();
      expect(touch(mm, a, 700, 'write')).toBeNull();
      child.destroy();
    });
  });

  it('R1.1 mprotect holes mid-run: PROT_NONE and read-only pages take the walker and the fault path', async () => {
    await sameState(({ mm, file }, touch) => {
      const va = mm.mmap({ addr: BASE, length: 400 * PG, prot: RW, flags: MAP_SHARED | MAP_FIXED, file, offset: 0 });
      expect(touch(mm, va, 400, 'read')).toBeNull();
      mm.mprotect(va + 100 * PG, 10 * PG, PROT_READ);
      mm.mprotect(va + 200 * PG, 10 * PG, PROT_NONE);
      expect(signalOf(touch(mm, va, 400, 'write'))).toEqual(['SIGSEGV', 'SEGV_ACCERR', va + 100 * PG]);
      expect(signalOf(touch(mm, va + 110 * PG, 290, 'read'))).toEqual(['SIGSEGV', 'SEGV_ACCERR', va + 200 * PG]);
      expect(touch(mm, va + 210 * PG, 190, 'write')).toBeNull();
    });
  });

  it('R12.2 a discarded and a preserved frame mid-run: the walker decides them (discard fault, re-read)', async () => {
    await sameState(({ mmu, mm, file }, touch) => {
      const va = mm.mmap({ addr: BASE, length: 300 * PG, prot: PROT_READ, flags: MAP_PRIVATE | MAP_FIXED, file, offset: 0 });
      expect(touch(mm, va, 300, 'read')).toBeNull();
      mm.munmap(va, 300 * PG);
      // unmapped clean page cache is volatile: the host may discard it
      expect(mmu.hypervisor.discard(file.page(50)!.pfn)).toBe(true);
      expect(mmu.hypervisor.preserve(file.page(120)!.pfn)).toBe(true);
      const vb = mm.mmap({ addr: BASE, length: 300 * PG, prot: PROT_READ, flags: MAP_PRIVATE | MAP_FIXED, file, offset: 0 });
      expect(touch(mm, vb, 300, 'read')).toBeNull();
      expect(touch(mm, vb, 300, 'read')).toBeNull();
    });
  });
});
