// Issue 17: a bulk touch runs over consecutive pages in the PTE table the paging-structure
// cache holds (uaccess.ts touch_run), and fault-around maps its window with one page-cache
// hash per 16-index group. Every test compares a bulk touch with the same pages touched one
// call per page (the per-page user_access path): the page states, fault counts, statistics
// (TLB hits and misses, walks), bytes and frames must be identical, and the invariant
// check must come back empty after every step.
import { describe, it, expect } from 'vitest';
import {
  createMmu, MemoryFile, SegmentationFault, PAGE_SIZE, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_SHARED,
  MAP_ANONYMOUS, MAP_FIXED_NOREPLACE, type Mmu, type MmuOptions, type AddressSpace, type File,
} from '../../src/index.js';

const PG = PAGE_SIZE;
const TABLE = 0x4020_0000; // a 2 MiB boundary: PTE table k ends below it, table k+1 starts at it

type Access = 'read' | 'write';
interface Side { mmu: Mmu; mm: AddressSpace; file: File }

function content(pages: number): Uint8Array {
  const b = new Uint8Array(pages * PG);
  for (let i = 0; i < b.length; i++) b[i] = (Math.floor(i / PG) * 13 + (i & 255)) & 0xff;
  return b;
}

async function side(opts: MmuOptions = {}, filePages = 96, prime = true): Promise<Side> {
  const mmu = await createMmu({ ramBytes: 8 << 20, ...opts });
  const file = mmu.openFile(new MemoryFile(content(filePages)));
  if (prime) file.prime(0, filePages, { order: 0 });
  return { mmu, mm: mmu.createAddressSpace(), file };
}

/** Touch [va, va + pages) one call per page; stop at the first failure and rethrow it. */
function touchEach(mm: AddressSpace, va: number, pages: number, access: Access): void {
  for (let i = 0; i < pages; i++) mm.touch(va + i * PG, 1, access);
}

/** Everything a test compares between the bulk side and the per-page side. */
function state(s: Side, va: number, pages: number): unknown {
  const { freeFrames, ...stats } = s.mmu.stats();
  return {
    pagemap: s.mm.pagemap(va, pages), rusage: s.mm.rusage(), status: s.mm.status(), stats, freeFrames,
  };
}

function caught(fn: () => void): unknown {
  try { fn(); } catch (e) { return e; }
  return null;
}

/** Run `steps` on two fresh machines, bulk on one and per page on the other; compare after each. */
async function same(opts: MmuOptions, prime: boolean,
  steps: (s: Side, touch: (va: number, pages: number, access: Access) => unknown) => { va: number; pages: number }):
  Promise<void> {
  const bulk = await side(opts, 96, prime);
  const each = await side(opts, 96, prime);
  const errs: unknown[][] = [[], []];
  const r = steps(bulk, (va, pages, access) => {
    const e = caught(() => bulk.mm.touch(va, pages * PG, access));
    errs[0].push(e);
    return e;
  });
  steps(each, (va, pages, access) => {
    const e = caught(() => touchEach(each.mm, va, pages, access));
    errs[1].push(e);
    return e;
  });
  expect(errs[0].map((e) => (e instanceof SegmentationFault ? [e.code, e.address] : e)))
    .toEqual(errs[1].map((e) => (e instanceof SegmentationFault ? [e.code, e.address] : e)));
  expect(state(bulk, r.va, r.pages)).toEqual(state(each, r.va, r.pages));
  expect(bulk.mm.read(r.va, r.pages * PG)).toEqual(each.mm.read(r.va, r.pages * PG));
  expect(bulk.mmu.checkInvariants()).toEqual([]);
  expect(each.mmu.checkInvariants()).toEqual([]);
  bulk.mm.munmap(r.va, r.pages * PG);
  each.mm.munmap(r.va, r.pages * PG);
  expect(state(bulk, r.va, r.pages)).toEqual(state(each, r.va, r.pages));
  expect(bulk.mmu.checkInvariants()).toEqual([]);
  expect(each.mmu.checkInvariants()).toEqual([]);
}

describe('issue 17 touch_run: a bulk touch equals the per-page path', () => {
  it('anonymous write then read across a PTE-table boundary: same faults, TLB misses, walks, A/D bits, frames', async () => {
    await same({}, true, (s, touch) => {
      const va = s.mm.mmap({ addr: TABLE - 20 * PG, length: 48 * PG, prot: PROT_READ | PROT_WRITE,
        flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE });
      expect(touch(va, 48, 'write')).toBeNull();
      expect(s.mm.rusage().minflt).toBe(48);
      expect(touch(va + 3 * PG, 40, 'read')).toBeNull(); // all TLB hits now
      expect(touch(va, 48, 'write')).toBeNull();
      return { va, pages: 48 };
    });
  });

  it('R2.3 file read with fault-around across a table boundary, misaligned VMA: faults mid-run map the window the run then walks', async () => {
    for (const prefaultOld of [false, true]) {
      for (const flags of [MAP_PRIVATE, MAP_SHARED]) {
        await same({ prefaultOld }, true, (s, touch) => {
          const va = s.mm.mmap({ addr: TABLE - 21 * PG, length: 60 * PG, prot: PROT_READ,
            flags: flags | MAP_FIXED_NOREPLACE, file: s.file, offset: 3 * PG });
          expect(touch(va + 2 * PG, 55, 'read')).toBeNull();
          expect(s.mm.rusage().minflt).toBeGreaterThan(1);
          expect(s.mm.rusage().minflt).toBeLessThan(55); // fault-around did map pages of the run
          return { va, pages: 60 };
        });
      }
    }
  });

  it('R2.9 cold page cache: read-around and fault-around in the middle of a run, major faults counted alike', async () => {
    await same({}, false, (s, touch) => {
      const va = s.mm.mmap({ addr: TABLE - 8 * PG, length: 64 * PG, prot: PROT_READ,
        flags: MAP_PRIVATE | MAP_FIXED_NOREPLACE, file: s.file, offset: 0 });
      expect(touch(va, 64, 'read')).toBeNull();
      expect(s.mm.rusage().majflt).toBeGreaterThan(0);
      return { va, pages: 64 };
    });
  });

  it('R1.1 a write run stops at a read-only page: SEGV_ACCERR there, the pages before it written', async () => {
    await same({}, true, (s, touch) => {
      const va = s.mm.mmap({ addr: TABLE - 10 * PG, length: 32 * PG, prot: PROT_READ | PROT_WRITE,
        flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE });
      expect(touch(va, 32, 'write')).toBeNull();
      s.mm.mprotect(va + 20 * PG, PG, PROT_READ);
      touch(va, 32, 'read'); // refill the TLB: the run meets hits, then a read-only leaf
      const e = touch(va, 32, 'write');
      expect(e).toBeInstanceOf(SegmentationFault);
      expect((e as SegmentationFault).code).toBe('SEGV_ACCERR');
      expect((e as SegmentationFault).address).toBe(va + 20 * PG);
      return { va, pages: 32 };
    });
  });

  it('R1.1 a run past the VMA end: SEGV_MAPERR at the first unmapped page, every page before it faulted in', async () => {
    await same({}, true, (s, touch) => {
      const va = s.mm.mmap({ addr: TABLE - 4 * PG, length: 12 * PG, prot: PROT_READ | PROT_WRITE,
        flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE });
      const e = touch(va, 16, 'write');
      expect(e).toBeInstanceOf(SegmentationFault);
      expect((e as SegmentationFault).code).toBe('SEGV_MAPERR');
      expect((e as SegmentationFault).address).toBe(va + 12 * PG);
      expect(s.mm.rusage().minflt).toBe(12);
      return { va, pages: 12 };
    });
  });

  it('R5.3 R5.4 write runs after fork: anonymous COW copies, then write-protect reuse, handled inside the run; a read-only page stops it', async () => {
    await same({}, true, (s, touch) => {
      const va = s.mm.mmap({ addr: TABLE - 24 * PG, length: 48 * PG, prot: PROT_READ | PROT_WRITE,
        flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE });
      expect(touch(va, 48, 'write')).toBeNull();
      const child = s.mm.fork();
      expect(touch(va, 30, 'write')).toBeNull(); // COW: the child still maps every page
      child.destroy();
      expect(touch(va, 48, 'write')).toBeNull(); // the rest: reuse, no copy
      expect(s.mmu.stats().cowCopies).toBe(30);
      s.mm.mprotect(va + 40 * PG, PG, PROT_READ);
      const e = touch(va + 36 * PG, 8, 'write');
      expect(e).toBeInstanceOf(SegmentationFault);
      return { va, pages: 48 };
    });
  });

  it('R5.2 a write run over a private file mapping already read: every page a COW fault, the run restarting after each', async () => {
    await same({}, true, (s, touch) => {
      const va = s.mm.mmap({ addr: TABLE - 16 * PG, length: 40 * PG, prot: PROT_READ | PROT_WRITE,
        flags: MAP_PRIVATE | MAP_FIXED_NOREPLACE, file: s.file, offset: 0 });
      expect(touch(va, 40, 'read')).toBeNull();
      expect(touch(va, 40, 'write')).toBeNull();
      expect(s.mmu.stats().cowCopies).toBe(40);
      return { va, pages: 40 };
    });
  });
});
