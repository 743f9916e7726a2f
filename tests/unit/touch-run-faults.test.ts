// Issue 17 (t17c): a bulk touch takes the faults of its run through the direct paths
// without do_user_addr_fault per page (uaccess.ts touch_run → fault.ts run_fault_vma /
// run_fault: the VMA found once, the PTE slot from the walk). The state after the run
// must be exactly what one do_user_addr_fault per page leaves. Each scenario runs on two
// fresh machines that differ only in index.ts mmu_set_run_faults (on / off), and the
// comparison covers everything: the core's whole linear memory byte for byte (PTEs with
// their A/D bits, struct pages, LRU lists in order, the per-cpu free list in order, rmap
// and mapcounts, RSS and fault counters, vmstat counters, the TLB, file mmap_miss), the
// walk's last-result record, the signals raised, and the invariant checker (empty).
import { describe, it, expect } from 'vitest';
import {
  createMmu, MemoryFile, SegmentationFault, PROT_READ, MAP_PRIVATE, MAP_SHARED, MAP_FIXED, MADV_GUARD_INSTALL,
  MLOCK_ONFAULT, type Mmu, type AddressSpace,
} from '../../src/index.js';
import { anon, PG, RW, expectSameMachines } from './mm-helpers.js';

type File = ReturnType<Mmu['openFile']>;
type Side = { mmu: Mmu; mm: AddressSpace; file: File };
type Touch = (mm: AddressSpace, va: number, pages: number, access: 'read' | 'write') => unknown;
type X = { mmu_set_run_faults(on: number): void; hw_walk_pa(): number; hw_walk_level(): number; hw_walk_perms(): number };

const BASE = 0x4000_0000; // a 2 MiB boundary: runs start at the first page of a PTE table

function content(pages: number): Uint8Array {
  const b = new Uint8Array(pages * PG);
  for (let i = 0; i < b.length; i += 61) b[i] = (i / 61) & 255;
  return b;
}

// A machine with a warm per-cpu list (the direct paths' frames come from it first) and a
// file of `filePages` pages, all cached as small folios.
async function side(run: boolean, faultAroundBytes: number, filePages: number): Promise<Side> {
  const mmu = await createMmu({ ramBytes: 24 << 20, faultAroundBytes });
  (mmu.core.x as unknown as X).mmu_set_run_faults(run ? 1 : 0);
  const w = mmu.createAddressSpace();
  const va = anon(w, 1500);
  w.touch(va, 1500 * PG, 'write');
  w.munmap(va, 1500 * PG);
  w.destroy();
  const file = mmu.openFile(new MemoryFile(content(filePages)));
  file.prime(0, filePages, { order: 0 });
  return { mmu, mm: mmu.createAddressSpace(), file };
}

function signalOf(e: unknown): unknown {
  if (e === null) return null;
  if (e instanceof SegmentationFault) return ['SIGSEGV', e.code, e.address];
  return [(e as Error).constructor.name, String((e as Error).message)];
}

// Run `scenario` with the run path on and off; every touch's outcome and the whole state
// must agree. Returns the run side's machine for extra checks.
async function sameState(scenario: (s: Side, touch: Touch) => void, faultAroundBytes = 65536, filePages = 1200): Promise<Side> {
  const sides: Side[] = [];
  const outcomes: unknown[][] = [];
  for (const run of [true, false]) {
    const s = await side(run, faultAroundBytes, filePages);
    const out: unknown[] = [];
    scenario(s, (mm, va, pages, access) => {
      let err: unknown = null;
      try { mm.touch(va, pages * PG, access); } catch (e) { err = e; }
      out.push(signalOf(err));
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

describe('issue 17 a bulk touch takes its faults in its run: the same state as one do_user_addr_fault per page', () => {
  it('R4.2 anonymous write faults (anon_write_fast) over three PTE tables', async () => {
    const s = await sameState(({ mm }, touch) => {
      const va = anon(mm, 1100, RW, MAP_FIXED, BASE);
      expect(touch(mm, va, 1100, 'write')).toBeNull();
      expect(mm.rusage().minflt).toBe(1100);
    });
    expect(s.mmu.stats().tlbMisses).toBeGreaterThan(1100);
  });

  it('R4.2 the per-cpu list running empty mid-run: the faults after it take frames from the buddy lists', async () => {
    await sameState(({ mm }, touch) => {
      const va = anon(mm, 2000, RW, MAP_FIXED, BASE); // more pages than the warm list holds
      expect(touch(mm, va, 2000, 'write')).toBeNull();
    });
  });

  it('R4.2 no free frame left mid-run: the general path reclaims page cache, the run goes on', async () => {
    await sameState(({ mmu, mm }, touch) => {
      const pages = mmu.stats().freeFrames + 300; // more than is free: 300 cached pages go
      const va = anon(mm, pages, RW, MAP_FIXED, BASE);
      expect(touch(mm, va, pages, 'write')).toBeNull();
      expect(mm.rusage().minflt).toBe(pages);
    });
  });

  it('R5.4 COW after fork (wp_anon_fast copy): the child copies every page, the parent then reuses', async () => {
    await sameState(({ mm }, touch) => {
      const va = anon(mm, 700, RW, MAP_FIXED, BASE);
      touch(mm, va, 700, 'write');
      const child = mm.fork();
      expect(touch(child, va, 700, 'write')).toBeNull();
      expect(child.rusage().minflt).toBe(700);
      expect(touch(mm, va, 700, 'write')).toBeNull();
      child.destroy();
    });
  });

  it('R5.3 write-protect reuse after the fork child exited (wp_anon_fast reuse)', async () => {
    await sameState(({ mm }, touch) => {
      const va = anon(mm, 600, RW, MAP_FIXED, BASE);
      touch(mm, va, 600, 'write');
      mm.fork().destroy();
      expect(touch(mm, va, 600, 'write')).toBeNull();
    });
  });

  it('R5.8 writes after reads of the zero page: zeroed private copies in the run', async () => {
    await sameState(({ mm }, touch) => {
      const va = anon(mm, 600, RW, MAP_FIXED, BASE);
      touch(mm, va, 600, 'read');
      expect(touch(mm, va, 600, 'write')).toBeNull();
    });
  });

  it('R5.1 private file writes of cached pages (cow_file_fast), mmap_miss paid back per page', async () => {
    await sameState(({ mm, file }, touch) => {
      const va = mm.mmap({ addr: BASE, length: 1100 * PG, prot: RW, flags: MAP_PRIVATE | MAP_FIXED, file, offset: 0 });
      expect(touch(mm, va, 1100, 'write')).toBeNull();
      expect(mm.rusage().minflt).toBe(1100);
    });
  });

  it('R2.7 R3.2 file reads with fault-around off (file_read_fast), private and shared', async () => {
    await sameState(({ mm, file }, touch) => {
      file.pwrite(5 * PG, Uint8Array.of(1, 2, 3)); // a dirty page-cache page
      const va = mm.mmap({ addr: BASE, length: 1100 * PG, prot: PROT_READ, flags: MAP_PRIVATE | MAP_FIXED, file, offset: 0 });
      expect(touch(mm, va, 1100, 'read')).toBeNull();
      const sh = mm.mmap({ addr: BASE + 0x80_0000, length: 600 * PG, prot: RW, flags: MAP_SHARED | MAP_FIXED, file, offset: 0 });
      expect(touch(mm, sh, 600, 'read')).toBeNull();
    }, 4096);
  });

  it('R2.3 file reads with fault-around on never take the run path, and come out the same', async () => {
    await sameState(({ mm, file }, touch) => {
      const va = mm.mmap({ addr: BASE, length: 1100 * PG, prot: PROT_READ, flags: MAP_PRIVATE | MAP_FIXED, file, offset: 0 });
      expect(touch(mm, va, 1100, 'read')).toBeNull();
    });
  });

  it('R1.1 a run crossing VMA boundaries inside one PTE table: anonymous, then a private file VMA, then anonymous again', async () => {
    await sameState(({ mm, file }, touch) => {
      anon(mm, 100, RW, MAP_FIXED, BASE);
      mm.mmap({ addr: BASE + 100 * PG, length: 100 * PG, prot: RW, flags: MAP_PRIVATE | MAP_FIXED, file, offset: 0 });
      anon(mm, 100, RW, MAP_FIXED, BASE + 200 * PG);
      expect(touch(mm, BASE, 300, 'write')).toBeNull();
      expect(mm.maps().length).toBe(3);
      // and reads of a file VMA beside an anonymous one (fault-around on: general path)
      mm.mmap({ addr: BASE + 0x20_0000, length: 50 * PG, prot: PROT_READ, flags: MAP_PRIVATE | MAP_FIXED, file, offset: 0 });
      anon(mm, 50, RW, MAP_FIXED, BASE + 0x20_0000 + 50 * PG);
      expect(touch(mm, BASE + 0x20_0000, 100, 'read')).toBeNull();
    });
  });

  it('R1.1 R10.1 failing faults mid-run: SEGV_ACCERR at a read-only VMA, SEGV_MAPERR at a hole, SIGBUS past EOF', async () => {
    await sameState(({ mm, file }, touch) => {
      anon(mm, 100, RW, MAP_FIXED, BASE);
      anon(mm, 10, PROT_READ, MAP_FIXED, BASE + 100 * PG);
      expect(signalOf(touch(mm, BASE, 200, 'write'))).toEqual(['SIGSEGV', 'SEGV_ACCERR', BASE + 100 * PG]);
      const hole = BASE + 0x20_0000;
      anon(mm, 100, RW, MAP_FIXED, hole);
      mm.munmap(hole + 60 * PG, PG);
      expect(signalOf(touch(mm, hole, 100, 'write'))).toEqual(['SIGSEGV', 'SEGV_MAPERR', hole + 60 * PG]);
      // a private file mapping longer than the (60-page) file: SIGBUS at the first page past EOF
      const f = BASE + 0x40_0000;
      mm.mmap({ addr: f, length: 100 * PG, prot: RW, flags: MAP_PRIVATE | MAP_FIXED, file, offset: 0 });
      expect(touch(mm, f, 100, 'write')).not.toBeNull();
      expect(mm.rusage().minflt).toBeGreaterThan(0);
    }, 65536, 60);
  });

  it('R8.6 VM_LOCKED (mlock2 MLOCK_ONFAULT) and guard markers take the general path inside a run', async () => {
    await sameState(({ mm, file }, touch) => {
      const va = anon(mm, 300, RW, MAP_FIXED, BASE);
      mm.mlock2(va + 100 * PG, 100 * PG, MLOCK_ONFAULT); // splits the VMA: locked in the middle
      expect(touch(mm, va, 300, 'write')).toBeNull();
      expect(mm.status().vmLck).toBe(100 * PG);
      const g = BASE + 0x20_0000;
      mm.mmap({ addr: g, length: 200 * PG, prot: RW, flags: MAP_PRIVATE | MAP_FIXED, file, offset: 0 });
      mm.madvise(g + 50 * PG, PG, MADV_GUARD_INSTALL);
      expect(signalOf(touch(mm, g, 200, 'write'))).toEqual(['SIGSEGV', 'SEGV_MAPERR', g + 50 * PG]);
      expect(touch(mm, g + 51 * PG, 149, 'write')).toBeNull();
      const r = BASE + 0x40_0000;
      mm.mmap({ addr: r, length: 200 * PG, prot: PROT_READ, flags: MAP_PRIVATE | MAP_FIXED, file, offset: 0 });
      mm.mlock2(r + 20 * PG, 30 * PG, MLOCK_ONFAULT);
      mm.madvise(r + 120 * PG, PG, MADV_GUARD_INSTALL);
      expect(signalOf(touch(mm, r, 200, 'read'))).toEqual(['SIGSEGV', 'SEGV_MAPERR', r + 120 * PG]);
    }, 4096);
  });

  it('userfaultfd-registered VMAs (VM_UFFD_MISSING, VM_UFFD_WP) take the general path inside a run', async () => {
    // The API registers no userfaultfd: set the VMA flags in the core's VMA record (found by
    // its start and end) on both machines, as UFFDIO_REGISTER would.
    await sameState(({ mmu, mm, file }, touch) => {
      const setVmaFlag = (start: number, end: number, flag: number) => {
        const mem = mmu.core.bytes();
        const dv = new DataView(mem.buffer);
        let hits = 0;
        for (let i = 0; i + 32 <= mem.length; i += 8) {
          if (dv.getUint32(i, true) === start && dv.getUint32(i + 4, true) === 0 &&
              dv.getUint32(i + 8, true) === end && dv.getUint32(i + 12, true) === 0 &&
              (dv.getUint32(i + 24, true) & 0x3) !== 0) { // VM_READ | VM_WRITE: a VMA's flags
            dv.setUint32(i + 24, dv.getUint32(i + 24, true) | flag, true);
            hits++;
          }
        }
        expect(hits).toBe(1);
      };
      const va = anon(mm, 200, RW, MAP_FIXED, BASE);
      setVmaFlag(va, va + 200 * PG, 0x200); // VM_UFFD_MISSING
      expect(touch(mm, va, 200, 'write')).toBeNull();
      const f = BASE + 0x20_0000;
      mm.mmap({ addr: f, length: 200 * PG, prot: PROT_READ, flags: MAP_PRIVATE | MAP_FIXED, file, offset: 0 });
      setVmaFlag(f, f + 200 * PG, 0x1000); // VM_UFFD_WP
      expect(touch(mm, f, 200, 'read')).toBeNull();
    }, 4096);
  });
});
