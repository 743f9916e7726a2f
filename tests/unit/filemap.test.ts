// File mappings beyond fault-around: private writes (R5.1), shared writes and write-notify
// (R5.9, R9.10), msync, truncation (R10), MAP_POPULATE (R9.4), and a backend's own
// map_pages / fault (seed 000).
import { describe, it, expect } from 'vitest';
import {
  createMmu, MemoryFile, BusError, PAGE_SIZE, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_SHARED,
  MAP_POPULATE, MAP_FIXED_NOREPLACE, MAP_ANONYMOUS, MAP_LOCKED, MS_SYNC, MS_ASYNC, MS_INVALIDATE,
  MADV_DONTNEED, VM_FAULT_LOCKED, VM_FAULT_SIGBUS, LinuxError, type Mmu, type MmuOptions, type AddressSpace, type File, type Backend, type VmFault,
} from '../../src/index.js';

const PG = PAGE_SIZE;
const RW = PROT_READ | PROT_WRITE;
const BASE = 0x4000_0000;

function content(pages: number, bytes = pages * PG): Uint8Array {
  const b = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) b[i] = (Math.floor(i / PG) + 1) & 0xff;
  return b;
}

async function machine(opts: MmuOptions = {}): Promise<Mmu> {
  return createMmu({ ramBytes: 16 << 20, ...opts });
}

function map(mm: AddressSpace, file: File, pages: number, flags: number, prot = RW, addr = BASE, offset = 0): number {
  return mm.mmap({ addr, length: pages * PG, prot, flags: flags | MAP_FIXED_NOREPLACE, file, offset });
}

function present(mm: AddressSpace, va: number, pages: number): string {
  return mm.pagemap(va, pages).map((p) => (p.present ? 'P' : '.')).join('');
}

function expectBus(fn: () => unknown, address: number): void {
  let err: unknown;
  try { fn(); } catch (e) { err = e; }
  expect(err, 'expected SIGBUS').toBeInstanceOf(BusError);
  expect((err as BusError).address).toBe(address);
}

const faults = (mm: AddressSpace) => mm.rusage().minflt + mm.rusage().majflt;
const text = (s: string) => new TextEncoder().encode(s);

describe('R5.1 private write to a file page (do_cow_fault)', () => {
  it('R5.1 the PTE maps an anonymous exclusive copy; the file and the page cache never change, even after msync', async () => {
    const mmu = await machine();
    const backend = new MemoryFile(content(8));
    const file = mmu.openFile(backend);
    file.prime();
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 8, MAP_PRIVATE);
    mm.write(va + 100, text('private!'));
    expect(mm.rusage()).toEqual({ minflt: 1, majflt: 0 }); // one fault, no fault-around (R2.1)
    const [p] = mm.pagemap(va, 1);
    expect(p).toMatchObject({ present: true, file: false, exclusive: true, dirty: true, writable: true, young: true });
    expect(p.pfn).not.toBe(file.page(0)!.pfn);
    expect(present(mm, va, 8)).toBe('P.......');
    expect(mm.status()).toMatchObject({ rssAnon: PG, rssFile: 0 }); // the cache page was never mapped
    expect(file.page(0)).toMatchObject({ mapcount: 0, refcount: 1, dirty: false });
    expect(mm.read(va + 100, 8)).toEqual(text('private!'));
    expect(mm.read(va, 1)[0]).toBe(1); // the rest of the copy is the file's data

    mm.msync(va, 8 * PG, MS_SYNC);
    file.sync();
    expect(backend.bytes()).toEqual(content(8));
    expect(backend.writes).toBe(0);
    // Another private mapping still sees the file's bytes.
    const mm2 = mmu.createAddressSpace();
    const va2 = map(mm2, file, 8, MAP_PRIVATE, PROT_READ);
    expect(mm2.read(va2 + 100, 8)).toEqual(new Uint8Array(8).fill(1));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R5.1 / R5.4 read first, then write: the read maps the cache page, the write copies it (file RSS -1, anon RSS +1)', async () => {
    const mmu = await machine({ faultAroundBytes: 4096 });
    const file = mmu.openFile(new MemoryFile(content(4)));
    file.prime();
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 4, MAP_PRIVATE);
    mm.touch(va, 1);
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ file: true, pfn: file.page(0)!.pfn, writable: false });
    expect(mm.status()).toMatchObject({ rssAnon: 0, rssFile: PG });
    mm.touch(va, 1, 'write');
    expect(mm.rusage().minflt).toBe(2);
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ file: false, exclusive: true, writable: true });
    expect(mm.status()).toMatchObject({ rssAnon: PG, rssFile: 0 });
    expect(file.page(0)).toMatchObject({ mapcount: 0, refcount: 1 });
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('R5.9 / R9.10 shared writes', () => {
  it('R5.9 a shared write is visible through another address space at once, and in the file after msync', async () => {
    const mmu = await machine();
    const backend = new MemoryFile(content(4));
    const file = mmu.openFile(backend);
    const a = mmu.createAddressSpace();
    const b = mmu.createAddressSpace();
    const va = map(a, file, 4, MAP_SHARED);
    const vb = map(b, file, 4, MAP_SHARED, PROT_READ, BASE + (64 << 20));
    expect(b.read(vb + 10, 5)).toEqual(new Uint8Array(5).fill(1));
    a.write(va + 10, text('hello'));
    expect(b.read(vb + 10, 5)).toEqual(text('hello'));
    expect(a.pagemap(va, 1)[0].pfn).toBe(b.pagemap(vb, 1)[0].pfn);
    expect(a.pagemap(va, 1)[0]).toMatchObject({ file: true, exclusive: false, dirty: true, writable: true });
    expect(backend.bytes().subarray(10, 15)).toEqual(new Uint8Array(5).fill(1)); // not yet written back
    expect(file.dirtyPages).toBe(1);
    a.msync(va, 4 * PG, MS_SYNC);
    expect(backend.bytes().subarray(10, 15)).toEqual(text('hello'));
    expect(backend.writes).toBe(1);
    expect(file.dirtyPages).toBe(0);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.10 write-notify: read then write takes 2 faults per page; after msync the PTE is clean and read-only, so the next write faults again', async () => {
    const mmu = await machine({ faultAroundBytes: 4096 });
    const backend = new MemoryFile(content(4));
    const file = mmu.openFile(backend);
    file.prime();
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 4, MAP_SHARED);
    for (let i = 0; i < 4; i++) {
      mm.touch(va + i * PG, 1, 'read');
      expect(mm.pagemap(va + i * PG, 1)[0]).toMatchObject({ writable: false, dirty: false });
      mm.touch(va + i * PG, 1, 'write');
      expect(mm.pagemap(va + i * PG, 1)[0]).toMatchObject({ writable: true, dirty: true });
    }
    expect(mm.rusage()).toEqual({ minflt: 8, majflt: 0 });
    expect(file.dirtyPages).toBe(4);
    mm.touch(va, 4 * PG, 'write'); // writable and dirty: no fault
    expect(mm.rusage().minflt).toBe(8);

    mm.msync(va, 4 * PG);
    expect(backend.writes).toBe(4);
    expect(mm.pagemap(va, 4).map((p) => [p.present, p.dirty, p.writable])).toEqual(
      Array.from({ length: 4 }, () => [true, false, false]));
    expect(file.dirtyPages).toBe(0);
    mm.write(va + 5, text('x'));
    expect(mm.rusage().minflt).toBe(9); // write-notify again
    expect(file.page(0)!.dirty).toBe(true);
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ writable: true, dirty: true });
    mm.msync(va, PG);
    expect(backend.bytes()[5]).toBe('x'.charCodeAt(0));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.10 with fault-around: one read fault maps 4 pages read-only, then each first write faults (1 + 4)', async () => {
    const mmu = await machine();
    const file = mmu.openFile(new MemoryFile(content(4)));
    file.prime();
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 4, MAP_SHARED);
    mm.touch(va, 4 * PG, 'read');
    expect(mm.rusage().minflt).toBe(1);
    mm.touch(va, 4 * PG, 'write');
    expect(mm.rusage().minflt).toBe(5);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R5.9 a first write through a none PTE is one fault that installs a dirty writable PTE', async () => {
    const mmu = await machine();
    const file = mmu.openFile(new MemoryFile(content(4)));
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 4, MAP_SHARED);
    mm.touch(va + PG, 1, 'write');
    expect(mm.rusage()).toEqual({ minflt: 0, majflt: 1 }); // uncached: major (R11.6)
    expect(present(mm, va, 4)).toBe('.P..');
    expect(mm.pagemap(va + PG, 1)[0]).toMatchObject({ dirty: true, writable: true, file: true });
    expect(file.page(1)!.dirty).toBe(true);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.10 without dirty accounting (tmpfs-like) shared writable PTEs start writable: read then write is 1 fault; soft-dirty tracking brings write-notify back', async () => {
    const mmu = await machine({ faultAroundBytes: 4096 });
    const backend = new MemoryFile(content(4));
    const file = mmu.openFile(backend, { dirtyAccounting: false });
    file.prime();
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 4, MAP_SHARED);
    mm.touch(va, 1, 'read');
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ writable: true, dirty: false });
    mm.write(va, text('t'));
    expect(mm.rusage().minflt).toBe(1); // the hardware set D: no fault
    expect(mm.pagemap(va, 1)[0]).toMatchObject({ writable: true, dirty: true });
    mm.msync(va, 4 * PG); // the dirty PTE is found through the reverse map
    expect(backend.bytes()[0]).toBe('t'.charCodeAt(0));
    // clear_refs 4: soft-dirty tracking is active, so the VMA write-notifies (R9.9, R9.10).
    mm.clearSoftDirty();
    expect(mm.pagemap(va, 1)[0].writable).toBe(false);
    mm.write(va, text('u'));
    expect(mm.rusage().minflt).toBe(2);
    mm.touch(va + PG, 1, 'read');
    expect(mm.pagemap(va + PG, 1)[0].writable).toBe(false);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.11 munmap of a shared page moves the PTE dirty bit to the page; MADV_DONTNEED refaults the same data', async () => {
    const mmu = await machine();
    const backend = new MemoryFile(content(4));
    const file = mmu.openFile(backend);
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 4, MAP_SHARED);
    mm.write(va + 3 * PG, text('abc'));
    mm.madvise(va, 4 * PG, MADV_DONTNEED);
    expect(present(mm, va, 4)).toBe('....');
    expect(mm.read(va + 3 * PG, 3)).toEqual(text('abc'));
    mm.munmap(va, 4 * PG);
    expect(file.page(3)!.dirty).toBe(true);
    file.sync();
    expect(backend.bytes().subarray(3 * PG, 3 * PG + 3)).toEqual(text('abc'));
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('msync (LTP msync01-03) and write-back', () => {
  function expectErrno(fn: () => unknown, code: string): void {
    let err: unknown;
    try { fn(); } catch (e) { err = e; }
    expect(err, `expected ${code}`).toBeInstanceOf(LinuxError);
    expect((err as LinuxError).code).toBe(code);
  }

  it('msync argument errors: EINVAL for an unaligned start, unknown flags, MS_SYNC|MS_ASYNC; ENOMEM for a hole', async () => {
    const mmu = await machine();
    const backend = new MemoryFile(content(4));
    const file = mmu.openFile(backend);
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 2, MAP_SHARED);
    mm.write(va, text('w'));
    expectErrno(() => mm.msync(va + 1, PG), 'EINVAL');
    expectErrno(() => mm.msync(va, PG, 8), 'EINVAL');
    expectErrno(() => mm.msync(va, PG, MS_SYNC | MS_ASYNC), 'EINVAL');
    expect(backend.writes).toBe(0);
    // The mapped part is written back, then the hole is reported.
    expectErrno(() => mm.msync(va, 4 * PG), 'ENOMEM');
    expect(backend.writes).toBe(1);
    mm.msync(va, 0); // an empty range is fine
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R10.0 msync writes back only the pages of its range; MS_ASYNC writes nothing (Linux >= 2.6.19); fsync (File.sync) the whole file', async () => {
    const mmu = await machine();
    const backend = new MemoryFile(content(8));
    const file = mmu.openFile(backend);
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 8, MAP_SHARED);
    for (const i of [1, 4, 6]) mm.write(va + i * PG, text(`p${i}`));
    expect(file.dirtyPages).toBe(3);
    mm.msync(va, 2 * PG);
    expect(backend.writes).toBe(1);
    expect(file.dirtyPages).toBe(2);
    mm.msync(va + 4 * PG, PG, MS_ASYNC);
    mm.msync(va + 4 * PG, PG, MS_INVALIDATE);
    expect(backend.writes).toBe(1);
    expect(file.dirtyPages).toBe(2);
    file.sync();
    expect(backend.writes).toBe(3);
    expect(file.dirtyPages).toBe(0);
    mm.msync(va, 8 * PG, MS_SYNC | MS_INVALIDATE); // nothing dirty: no write
    expect(backend.writes).toBe(3);
    expect(backend.bytes().subarray(6 * PG, 6 * PG + 2)).toEqual(text('p6'));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('msync of one mapping writes pages dirtied through another mapping of the same file range (fsync range)', async () => {
    const mmu = await machine();
    const backend = new MemoryFile(content(4));
    const file = mmu.openFile(backend);
    const a = mmu.createAddressSpace();
    const b = mmu.createAddressSpace();
    const va = map(a, file, 4, MAP_SHARED);
    const vb = map(b, file, 4, MAP_SHARED);
    b.write(vb + 2 * PG, text('via b'));
    a.msync(va, 4 * PG);
    expect(backend.bytes().subarray(2 * PG, 2 * PG + 5)).toEqual(text('via b'));
    expect(b.pagemap(vb + 2 * PG, 1)[0]).toMatchObject({ dirty: false, writable: false });
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('MS_INVALIDATE on an mlocked range is EBUSY', async () => {
    const mmu = await machine();
    const file = mmu.openFile(new MemoryFile(content(2)));
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 2, MAP_SHARED | MAP_LOCKED);
    expectErrno(() => mm.msync(va, 2 * PG, MS_INVALIDATE), 'EBUSY');
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('closing a File writes dirty pages back and frees the cache; a mapped File refuses (EBUSY)', async () => {
    const mmu = await machine();
    const backend = new MemoryFile(content(4));
    const file = mmu.openFile(backend);
    const mm = mmu.createAddressSpace();
    const free = mmu.stats().freeFrames;
    const va = map(mm, file, 4, MAP_SHARED);
    mm.write(va + 3 * PG, text('bye'));
    expectErrno(() => file.close(), 'EBUSY');
    mm.munmap(va, 4 * PG);
    file.close();
    expect(backend.bytes().subarray(3 * PG, 3 * PG + 3)).toEqual(text('bye'));
    expect(mmu.stats().freeFrames).toBe(free);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.1 shared anonymous memory (shmem): fault-around maps its cached pages; holes fault in as zeros, minor', async () => {
    const mmu = await machine();
    const mm = mmu.createAddressSpace();
    const va = mm.mmap({ addr: BASE, length: 32 * PG, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE });
    for (let i = 0; i < 4; i++) mm.write(va + i * PG, text(`s${i}`));
    expect(mm.rusage()).toEqual({ minflt: 4, majflt: 0 });
    mm.madvise(va, 32 * PG, MADV_DONTNEED);
    expect(present(mm, va, 16)).toBe('.'.repeat(16));
    expect(mm.read(va + 2 * PG, 2)).toEqual(text('s2'));
    expect(present(mm, va, 16)).toBe('PPPP' + '.'.repeat(12)); // fault-around: cached pages only
    expect(mm.read(va + 9 * PG, 2)).toEqual(new Uint8Array(2));
    expect(mm.rusage()).toEqual({ minflt: 6, majflt: 0 });
    expect(mm.status()).toMatchObject({ rssShmem: 5 * PG, rssFile: 0, rssAnon: 0 });
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('R10 truncation of a mapped file', () => {
  it('R10.1 / R10.2 truncate then access: SIGBUS beyond EOF, even for a COWed MAP_PRIVATE page; the partial page tail reads zeros', async () => {
    const mmu = await machine();
    const backend = new MemoryFile(content(4));
    const file = mmu.openFile(backend);
    const mm = mmu.createAddressSpace();
    const vs = map(mm, file, 4, MAP_SHARED);
    const vp = map(mm, file, 4, MAP_PRIVATE, RW, BASE + (16 << 20));
    mm.touch(vs, 4 * PG);
    mm.write(vp + 3 * PG, text('mine')); // a private copy of page 3
    mm.write(vp + 1 * PG, text('also mine'));
    expect(mm.pagemap(vp + 3 * PG, 1)[0].file).toBe(false);
    const before = mm.status();
    expect(before.rssAnon).toBe(2 * PG);

    file.truncate(PG + 2048); // 1.5 pages: page 1 is partial, 2 and 3 are gone
    expect(file.size).toBe(PG + 2048);
    expect(present(mm, vs, 4)).toBe('PP..');
    expect(present(mm, vp + 2 * PG, 2)).toBe('..'); // "even cows"
    expect(mm.status().rssAnon).toBe(PG); // the copy of page 3 is gone, page 1's stays
    expectBus(() => mm.read(vs + 2 * PG, 1), vs + 2 * PG);
    expectBus(() => mm.read(vp + 3 * PG, 1), vp + 3 * PG);
    expectBus(() => mm.write(vp + 3 * PG, text('x')), vp + 3 * PG);
    // The partial last page: bytes past EOF read as zeros in the shared mapping.
    const tail = mm.read(vs + PG + 2040, 16);
    expect(Array.from(tail)).toEqual([2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(file.cachedPages).toBeLessThanOrEqual(2);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R10.2 extending the file again faults in zeros', async () => {
    const mmu = await machine();
    const backend = new MemoryFile(content(4));
    const file = mmu.openFile(backend);
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 4, MAP_SHARED);
    mm.touch(va, 4 * PG);
    file.truncate(PG + 2048);
    file.truncate(4 * PG);
    expect(present(mm, va, 4)).toBe('PP..');
    expect(mm.read(va + PG + 2040, 16)).toEqual(new Uint8Array([2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0]));
    expect(mm.read(va + 2 * PG, PG)).toEqual(new Uint8Array(PG));
    expect(mm.read(va + 3 * PG, PG)).toEqual(new Uint8Array(PG));
    expect(present(mm, va, 4)).toBe('PPPP');
    expect(backend.bytes().subarray(2 * PG)).toEqual(new Uint8Array(2 * PG));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R10.1 a file of half a page mapped as two pages: the second page is SIGBUS (LTP mmap01/mmap13)', async () => {
    const mmu = await machine();
    const file = mmu.openFile(new MemoryFile(content(1, 2048)));
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 2, MAP_SHARED);
    expect(mm.read(va + 2047, 2)).toEqual(new Uint8Array([1, 0]));
    expectBus(() => mm.read(va + PG, 1), va + PG);
    // Writes past EOF inside the last page are never written back.
    mm.write(va + 3000, text('zz'));
    mm.msync(va, 2 * PG);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R10.1 writes past EOF in the last page never reach the file', async () => {
    const mmu = await machine();
    const backend = new MemoryFile(content(1, 2048));
    const file = mmu.openFile(backend);
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 1, MAP_SHARED);
    mm.write(va + 2040, text('0123456789abcdef'));
    mm.msync(va, PG);
    expect(backend.size()).toBe(2048);
    expect(backend.bytes().subarray(2040)).toEqual(text('01234567'));
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('R9.4 MAP_POPULATE', () => {
  it('R9.4 a MAP_PRIVATE|MAP_POPULATE writable file mapping holds private copies at return; shared writes are not visible in it', async () => {
    const mmu = await machine();
    const backend = new MemoryFile(content(8));
    const file = mmu.openFile(backend);
    const mm = mmu.createAddressSpace();
    const vp = map(mm, file, 8, MAP_PRIVATE | MAP_POPULATE);
    const pages = mm.pagemap(vp, 8);
    expect(pages.every((p) => p.present && !p.file && p.exclusive)).toBe(true);
    expect(mm.status()).toMatchObject({ rssAnon: 8 * PG, rssFile: 0 });
    const populateFaults = faults(mm);
    expect(populateFaults).toBe(8);

    const other = mmu.createAddressSpace();
    const vs = map(other, file, 8, MAP_SHARED);
    other.write(vs + 4 * PG, text('shared'));
    other.msync(vs, 8 * PG);
    expect(backend.bytes().subarray(4 * PG, 4 * PG + 6)).toEqual(text('shared'));
    expect(mm.read(vp + 4 * PG, 6)).toEqual(new Uint8Array(6).fill(5));
    expect(faults(mm)).toBe(populateFaults); // every page was there already
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.4 MAP_POPULATE on a read-only private mapping maps the page-cache pages themselves', async () => {
    const mmu = await machine();
    const file = mmu.openFile(new MemoryFile(content(8)));
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 8, MAP_PRIVATE | MAP_POPULATE, PROT_READ);
    expect(present(mm, va, 8)).toBe('PPPPPPPP');
    expect(mm.pagemap(va, 8).every((p) => p.file)).toBe(true);
    expect(mm.status().rssFile).toBe(8 * PG);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('seed 000: a backend with its own map_pages and fault', () => {
  /** A backend whose mapPages maps every other offered page and whose fault fills pages itself. */
  class HalfBackend implements Backend {
    data = content(32);
    mapPagesCalls: [number, number][] = [];
    mapped: number[] = [];
    faults: number[] = [];
    size(): number { return this.data.length; }
    readPage(index: number, dst: Uint8Array): number {
      dst.set(this.data.subarray(index * PG, (index + 1) * PG));
      return PG;
    }
    mapPages(vmf: VmFault, start: number, end: number): void {
      this.mapPagesCalls.push([start, end]);
      for (let pg = start; pg <= end; pg += 2) if (vmf.mapPage(pg)) this.mapped.push(pg);
    }
    fault(vmf: VmFault): number {
      this.faults.push(vmf.pgoff);
      if (vmf.pgoff * PG >= this.data.length) return VM_FAULT_SIGBUS;
      const page = this.data.slice(vmf.pgoff * PG, (vmf.pgoff + 1) * PG);
      page[0] = 0xf0; // marks pages that came through ->fault
      vmf.fillPage(vmf.pgoff, page);
      return VM_FAULT_LOCKED;
    }
  }

  it('seed 000 mapPages maps half of a 16-page window; the faulting odd page comes from fault()', async () => {
    const mmu = await machine();
    const be = new HalfBackend();
    const file = mmu.openFile(be);
    file.prime(); // readPage fills the cache: mapPage only maps what is cached
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 32, MAP_PRIVATE, PROT_READ);
    mm.touch(va + 3 * PG, 1);
    expect(be.mapPagesCalls).toEqual([[0, 15]]);
    expect(be.mapped).toEqual([0, 2, 4, 6, 8, 10, 12, 14]);
    expect(be.faults).toEqual([3]);
    expect(present(mm, va, 16)).toBe('P.PPP.P.P.P.P.P.');
    expect(mm.rusage()).toEqual({ minflt: 1, majflt: 0 });
    expect(mm.read(va + 3 * PG, 1)[0]).toBe(0xf0);
    expect(mm.read(va + 2 * PG, 1)[0]).toBe(3);
    expect(mmu.stats().faultAroundMapped).toBe(8);
    expect(mm.status().rssFile).toBe(9 * PG);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('seed 000 when mapPages maps the faulting page, fault() is not called', async () => {
    const mmu = await machine();
    const be = new HalfBackend();
    const file = mmu.openFile(be);
    file.prime();
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 32, MAP_PRIVATE, PROT_READ);
    mm.touch(va + 4 * PG, 1);
    expect(be.faults).toEqual([]);
    expect(present(mm, va, 16)).toBe('P.P.P.P.P.P.P.P.');
    mm.touch(va + 5 * PG, 1); // mapPages finds the evens mapped, fault() brings 5
    expect(be.mapPagesCalls).toEqual([[0, 15], [0, 15]]);
    expect(be.mapped).toEqual([0, 2, 4, 6, 8, 10, 12, 14]);
    expect(be.faults).toEqual([5]);
    expect(present(mm, va, 16)).toBe('P.P.PPP.P.P.P.P.');
    expect(mm.rusage().minflt).toBe(2);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('seed 000 with an empty cache mapPages maps nothing and fault() supplies every page', async () => {
    const mmu = await machine();
    const be = new HalfBackend();
    const file = mmu.openFile(be);
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 4, MAP_PRIVATE, PROT_READ);
    mm.touch(va, 4 * PG);
    expect(be.faults).toEqual([0, 1, 2, 3]); // fault() only caches its own page
    expect(be.mapped).toEqual([]); // even pages were always mapped already, or not cached yet
    expect(present(mm, va, 4)).toBe('PPPP');
    expect(mm.rusage()).toEqual({ minflt: 4, majflt: 0 });
    expect(file.cachedPages).toBe(4);
    expect(mm.read(va + 2 * PG, 2)).toEqual(new Uint8Array([0xf0, 3]));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('seed 000 fillPage of another offset only caches it; the fault\'s page is the one at vmf.pgoff; past EOF is refused', async () => {
    const mmu = await machine({ faultAroundBytes: 4096 });
    const calls: number[] = [];
    const refused: number[] = [];
    const file = mmu.openFile({
      size: () => 4 * PG,
      readPage: () => { throw new Error('not used'); },
      fault(vmf: VmFault) {
        calls.push(vmf.pgoff);
        try {
          vmf.fillPage(vmf.pgoff + 1, new Uint8Array([0x11])); // readahead of the next page
        } catch {
          refused.push(vmf.pgoff + 1);
        }
        vmf.fillPage(vmf.pgoff, new Uint8Array([0x22])); // throws past EOF: SIGBUS
        return VM_FAULT_LOCKED;
      },
    });
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 8, MAP_PRIVATE, PROT_READ);
    expect(mm.read(va + 2 * PG, 1)[0]).toBe(0x22);
    expect(mm.pagemap(va + 2 * PG, 1)[0].pfn).toBe(file.page(2)!.pfn);
    expect(file.page(3)).toMatchObject({ mapcount: 0, refcount: 1 }); // cached, not mapped
    expect(mm.read(va + 3 * PG, 1)[0]).toBe(0x22); // its own fault filled it again
    expect(refused).toEqual([4]); // page 4 is past EOF
    expect(mmu.backendErrors).toHaveLength(0);
    expectBus(() => mm.read(va + 5 * PG, 1), va + 5 * PG);
    expect(calls).toEqual([2, 3, 5]);
    expect(refused).toEqual([4, 6]);
    expect(mmu.backendErrors).toHaveLength(1);
    expect(file.cachedPages).toBe(2);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('seed 000 mapPage refuses pages outside the VMA or outside the fault\'s PTE table', async () => {
    const mmu = await machine();
    const file = mmu.openFile({
      size: () => 32 * PG,
      readPage: (_i: number, dst: Uint8Array) => { dst.fill(7); return PG; },
      mapPages(vmf: VmFault) {
        // Offsets of other tables, below the VMA and far past it: all refused.
        expect(vmf.mapPage(0)).toBe(false);
        expect(vmf.mapPage(31)).toBe(false);
        expect(vmf.mapPage(1e6)).toBe(false);
        expect(vmf.mapPage(9)).toBe(true);
      },
    });
    file.prime();
    const mm = mmu.createAddressSpace();
    // VMA of file pages 8..23 starting 4 pages before a 2 MiB boundary: pages 8..11 sit in
    // one PTE table, 12..23 in the next.
    const va = mm.mmap({ addr: BASE + (2 << 20) - 4 * PG, length: 16 * PG, prot: PROT_READ,
      flags: MAP_PRIVATE | MAP_FIXED_NOREPLACE, file, offset: 8 * PG });
    mm.touch(va + PG, 1); // file page 9
    expect(present(mm, va, 16)).toBe('.P..............');
    expect(mmu.backendErrors).toEqual([]);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});
