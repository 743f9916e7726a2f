// LINUX-SPEC §12 and seed 003: guest page hinting. Each frame has a usage state the guest
// announces (stable, unused, volatile, potentially volatile) and a residency the host
// gives it (resident, preserved, discarded); R12.2's transitions, one test each.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import {
  createMmu, MemoryFile, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS,
  type Mmu, type AddressSpace, type File,
} from '../../src/index.js';

const P = 4096;
let mmu: Mmu;
let mm: AddressSpace;
let backend: MemoryFile;
let file: File;

beforeEach(async () => {
  mmu = await createMmu({ ramBytes: 8 << 20 });
  mm = mmu.createAddressSpace();
  const bytes = new Uint8Array(16 * P);
  for (let i = 0; i < bytes.length; i++) bytes[i] = ((i >> 12) + 1) * 3;
  backend = new MemoryFile(bytes);
  file = mmu.openFile(backend);
});
afterEach(() => {
  expect(mmu.checkInvariants()).toEqual([]);
});

describe('§12 page states (R12.2 transitions)', () => {
  it('R12.2 page free → unused; allocation → stable (an anonymous page)', () => {
    const va = mm.mmap({ length: P, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    const freePfn = mmu.phys.alloc();
    mmu.phys.free(freePfn);
    expect(mmu.pageState(freePfn).usage).toBe('unused');
    mm.write(va, new Uint8Array([1]));
    const pfn = mm.pagemap(va, 1)[0].pfn;
    expect(mmu.pageState(pfn)).toEqual({ usage: 'stable', residency: 'resident' });
    mm.munmap(va, P);
    expect(mmu.pageState(pfn).usage).toBe('unused');
  });

  it('R12.2 a clean, uptodate, unreferenced page-cache page is volatile, mapped read-only too', () => {
    file.prime(0, 1);
    expect(mmu.pageState(file.page(0)!.pfn).usage).toBe('volatile');
    const va = mm.mmap({ length: 16 * P, prot: PROT_READ, flags: MAP_SHARED, file });
    mm.touch(va, 1);
    expect(mmu.pageState(file.page(0)!.pfn).usage).toBe('volatile');
  });

  it('R12.2 a writable PTE makes it potentially volatile; a write (dirty) makes it stable', () => {
    // Without dirty accounting a shared writable mapping maps clean pages writable (R2.6).
    const f = mmu.openFile(new MemoryFile(4 * P), { dirtyAccounting: false });
    f.prime();
    const va = mm.mmap({ length: 4 * P, prot: PROT_READ | PROT_WRITE, flags: MAP_SHARED, file: f });
    mm.touch(va, 1, 'read');
    expect(mm.pagemap(va, 1)[0].writable).toBe(true);
    expect(mmu.pageState(f.page(0)!.pfn).usage).toBe('potentially-volatile');
    mm.write(va, new Uint8Array([7]));
    expect(mmu.pageState(f.page(0)!.pfn).usage).toBe('stable');
    mm.munmap(va, 4 * P);
  });

  it('R12.2 any pin or lock makes it stable: a GUP pin, a locked page, a page not yet uptodate', () => {
    file.prime(0, 3);
    const va = mm.mmap({ length: 16 * P, prot: PROT_READ, flags: MAP_SHARED, file });
    const [pfn] = mm.getUserPages(va, 1, { pin: true });
    expect(mmu.pageState(pfn).usage).toBe('stable');
    mm.unpinUserPage(pfn);
    expect(mmu.pageState(pfn).usage).toBe('volatile');
    file.setPageState(1, { locked: true });
    expect(mmu.pageState(file.page(1)!.pfn).usage).toBe('stable');
    file.setPageState(1, { locked: false });
    file.setPageState(2, { uptodate: false });
    expect(mmu.pageState(file.page(2)!.pfn).usage).toBe('stable');
    file.setPageState(2, { uptodate: true });
  });

  it('R12.2 discard: the host drops a volatile page; the next access is a discard fault that re-reads it (major)', () => {
    const va = mm.mmap({ length: 16 * P, prot: PROT_READ, flags: MAP_SHARED, file });
    mm.touch(va + 2 * P, 1); // cold: read from the backend
    const pfn = file.page(2)!.pfn;
    expect(mmu.hypervisor.discard(pfn)).toBe(true);
    expect(mmu.pageState(pfn).residency).toBe('discarded');
    const before = { ...mm.rusage(), discarded: mmu.stats().discarded };
    expect(mm.read(va + 2 * P, 1)[0]).toBe(9); // (2 + 1) * 3: the file's bytes, not zeros
    expect(mmu.stats().discarded - before.discarded).toBe(1);
    expect(mm.rusage().majflt - before.majflt).toBe(1);
  });

  it('R12.2 the host may not discard a stable page; preserving it keeps the content across the next access', () => {
    const va = mm.mmap({ length: P, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.write(va, new Uint8Array([0x5c]));
    const pfn = mm.pagemap(va, 1)[0].pfn;
    expect(mmu.hypervisor.discard(pfn)).toBe(false);
    expect(mmu.hypervisor.preserve(pfn)).toBe(true);
    expect(mmu.pageState(pfn).residency).toBe('preserved');
    expect(mm.read(va, 1)[0]).toBe(0x5c);
    expect(mmu.pageState(pfn).residency).toBe('resident');
  });

  it('R12.2 an unused frame may be discarded; when the guest allocates it again it is resident', () => {
    const pfn = mmu.phys.alloc();
    mmu.phys.free(pfn);
    expect(mmu.hypervisor.discard(pfn)).toBe(true);
    const again = mmu.phys.alloc(); // the allocator hands the same low frame back
    expect(again).toBe(pfn);
    expect(mmu.pageState(again).residency).toBe('resident');
    mmu.phys.free(again);
  });

  it('seed 003: a file that ever had an mlocked VMA keeps its pages stable for good, even after munlock', () => {
    file.prime();
    const va = mm.mmap({ length: 16 * P, prot: PROT_READ, flags: MAP_SHARED, file });
    expect(mmu.pageState(file.page(5)!.pfn).usage).toBe('volatile');
    mm.mlock(va, P);
    mm.munlock(va, P);
    mm.munmap(va, 16 * P);
    expect(mmu.pageState(file.page(5)!.pfn).usage).toBe('stable');
    expect(mmu.hypervisor.discard(file.page(5)!.pfn)).toBe(false);
  });

  it('seed 003: host reclaim discards what may go without I/O and preserves the rest; mlocked pages keep their data', () => {
    const other = mmu.openFile(new MemoryFile(new Uint8Array(8 * P).fill(4)));
    other.prime();
    const locked = mm.mmap({ length: 16 * P, prot: PROT_READ, flags: MAP_SHARED, file });
    mm.mlock(locked, 16 * P);
    const r = mmu.hypervisor.reclaim(4096);
    expect(r.discarded).toBeGreaterThanOrEqual(8); // the other file's volatile pages and free frames
    expect(r.preserved).toBeGreaterThan(0);
    for (let i = 0; i < 8; i++) expect(mmu.pageState(other.page(i)!.pfn).residency).toBe('discarded');
    expect(mm.read(locked + 3 * P, 1)[0]).toBe(12);
    expect(mm.pagemap(locked, 16).every((p) => p.present && p.mlocked)).toBe(true);
    // Guest reclaim never unmaps the locked pages; the discarded clean cache goes first.
    mmu.reclaim(8);
    expect(mm.pagemap(locked, 16).every((p) => p.present)).toBe(true);
  });
});
