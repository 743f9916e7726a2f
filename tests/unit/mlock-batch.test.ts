// LINUX-SPEC R8.6: the per-CPU mlock folio batch (assembly/mlock_batch.ts). munlock only
// queues the page with a reference; PG_mlocked is cleared when the batch drains. Drain
// points as measured on 6.18 (scenarios munmap-locked-defers-munlock,
// exit-locked-defers-munlock, mlock-cow-batch-ref-copies).
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import {
  createMmu, MemoryFile, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS, MAP_LOCKED,
  MLOCK_ONFAULT, MCL_CURRENT, MS_SYNC, MS_ASYNC, MADV_DONTNEED, MADV_COLD, MADV_FREE, MADV_PAGEOUT, MADV_WILLNEED, MADV_DONTNEED_LOCKED, MADV_REMOVE,
  type Mmu, type AddressSpace,
} from '../../src/index.js';

const P = 4096;
let mmu: Mmu;
let mm: AddressSpace;

async function boot(mlockBatch = true): Promise<void> {
  mmu = await createMmu({ ramBytes: 16 << 20, mlockBatch });
  mm = mmu.createAddressSpace();
}
beforeEach(async () => { await boot(); });
afterEach(() => {
  expect(mmu.checkInvariants()).toEqual([]);
});

function anon(pages: number, flags = 0): number {
  return mm.mmap({ length: pages * P, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS | flags });
}
function mlocked(va: number, pages: number, space = mm): string {
  return space.pagemap(va, pages).map((p) => (!p.present ? '.' : p.mlocked ? 'L' : '-')).join('');
}
// A shared file mapped twice: `a` unlocked, `b` MAP_LOCKED; then munmap(b) queues 4 munlocks.
function sharedFileMunmapped(pages = 4): number {
  const file = mmu.openFile(new MemoryFile(new Uint8Array(pages * P)));
  const a = mm.mmap({ length: pages * P, prot: PROT_READ, flags: MAP_SHARED, file });
  mm.touch(a, pages * P, 'read');
  const b = mm.mmap({ length: pages * P, prot: PROT_READ, flags: MAP_SHARED | MAP_LOCKED, file });
  expect(mlocked(a, pages)).toBe('L'.repeat(pages));
  mm.munmap(b, pages * P);
  return a;
}

describe('R8.6 the mlock folio batch', () => {
  it('R8.6 munmap of the last locked mapping leaves the pages PG_mlocked until a drain (MADV_COLD)', () => {
    const a = sharedFileMunmapped();
    const c = anon(1);
    mm.touch(c, P, 'write');
    expect(mlocked(a, 4)).toBe('LLLL');
    mm.madvise(c, P, MADV_DONTNEED); // no lru_add_drain on 6.18
    expect(mlocked(a, 4)).toBe('LLLL');
    mm.madvise(c, P, MADV_COLD);
    expect(mlocked(a, 4)).toBe('----');
  });

  it('R8.6 the batch holds one reference per queued page; the invariants count it', () => {
    const a = sharedFileMunmapped(2);
    expect(mmu.checkInvariants()).toEqual([]);
    mm.munmap(a, 2 * P); // no drain: the pages stay cached, referenced by the batch
    expect(mmu.checkInvariants()).toEqual([]);
    const c = anon(1);
    mm.touch(c, P, 'write');
    mm.madvise(c, P, MADV_FREE); // drains: the references go
  });

  for (const [name, drain] of [
    ['MADV_FREE', (c: number) => mm.madvise(c, P, MADV_FREE)],
    ['MADV_PAGEOUT', (c: number) => mm.madvise(c, P, MADV_PAGEOUT)],
    ['anonymous MADV_WILLNEED', (c: number) => mm.madvise(c, P, MADV_WILLNEED)],
    ['mlock (a page walk)', (c: number) => mm.mlock(c, P)],
  ] as const) {
    it(`R8.6 ${name} drains the batch`, () => {
      const a = sharedFileMunmapped();
      const c = anon(1);
      mm.touch(c, P, 'write');
      drain(c);
      expect(mlocked(a, 4)).toBe('----');
    });
  }

  // A shared file mapped twice, `a` unlocked, `b` locked; munmap(b) queues one munlock per page.
  function fileMunmapped(pages: number, filePages = pages) {
    const backend = new MemoryFile(filePages * P);
    const file = mmu.openFile(backend);
    const a = mm.mmap({ length: pages * P, prot: PROT_READ | PROT_WRITE, flags: MAP_SHARED, file });
    mm.touch(a, pages * P, 'read');
    const b = mm.mmap({ length: pages * P, prot: PROT_READ, flags: MAP_SHARED | MAP_LOCKED, file });
    mm.munmap(b, pages * P);
    expect(mlocked(a, pages)).toBe('L'.repeat(pages));
    return { file, a, backend };
  }

  it('R8.6 R10.2 a truncate drains only when it drops cached folios (truncate_inode_pages_range\'s folio_batch_release)', () => {
    const { file, a } = fileMunmapped(4, 8);
    file.truncate(12 * P); // growing: nothing dropped
    expect(mlocked(a, 4)).toBe('LLLL');
    file.truncate(12 * P - 100); // only the last page's tail: nothing dropped
    expect(mlocked(a, 4)).toBe('LLLL');
    file.truncate(6 * P); // drops cached pages 6 and 7
    expect(mlocked(a, 4)).toBe('----');
  });

  it('R8.6 R10.0 writeback drains only when it wrote a page (fsync / msync MS_SYNC; MS_ASYNC writes nothing)', () => {
    const { file, a, backend } = fileMunmapped(4);
    file.sync();
    mm.msync(a, 4 * P, MS_SYNC);
    expect(mlocked(a, 4)).toBe('LLLL'); // clean: nothing written
    mm.write(a + P, Uint8Array.of(7));
    mm.msync(a, 4 * P, MS_ASYNC);
    expect(mlocked(a, 4)).toBe('LLLL');
    mm.msync(a, 4 * P, MS_SYNC);
    expect(mlocked(a, 4)).toBe('----');
    expect(backend.bytes()[P]).toBe(7); // the write reached the file
  });

  it('R8.6 MADV_REMOVE on shmem drains when it punches out pages (shmem_undo_range releases its folio batch)', () => {
    const a = mm.mmap({ length: 8 * P, prot: PROT_READ | PROT_WRITE, flags: MAP_SHARED | MAP_ANONYMOUS });
    mm.touch(a, 8 * P, 'write');
    const child = mm.fork();
    child.mlock(a, 8 * P); // the child's mappings lock the shared pages
    child.munmap(a, 8 * P); // 8 munlocks queued
    expect(mlocked(a, 8)).toBe('LLLLLLLL');
    mm.madvise(a + 6 * P, P, MADV_REMOVE); // punches page 6: a drain
    expect(mlocked(a, 8)).toBe('------.-');
    child.destroy();
  });

  it('R8.6 R8.7 mlockall(MCL_CURRENT) drains first and last (the VMAs below and above the mappings: binary, heap, stack)', () => {
    const { a } = fileMunmapped(4); // 4 munlocks queued
    mm.mlockall(MCL_CURRENT); // drains before its fixups: the queued munlocks run first
    expect(mlocked(a, 4)).toBe('LLLL'); // then a's fixup and populate lock the pages again
    mm.munlockall();
    const child = mm.fork();
    child.mlock(a, 4 * P);
    child.munmap(a, 4 * P); // the child's munlocks queued; the child has no mapping left
    expect(mlocked(a, 4)).toBe('LLLL');
    child.mlockall(MCL_CURRENT); // nothing of its own to walk, and still it ends drained
    expect(mlocked(a, 4)).toBe('----');
    child.munlockall();
    child.destroy();
  });

  it('R8.6 R8.7 mlockall populates VMA by VMA, draining after each: a COW munlock of a cache page, then a shared mlock of it, leave it mlocked', () => {
    const file = mmu.openFile(new MemoryFile(new Uint8Array(4 * P)));
    const priv = mm.mmap({ length: P, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE, file });
    mm.touch(priv, P, 'read'); // the cache page, mapped read-only
    const shared = mm.mmap({ length: 4 * P, prot: PROT_READ, flags: MAP_SHARED, file });
    mm.mlockall(MCL_CURRENT);
    // priv's populate COWs (munlock entry, drained: count 1 -> 0), then shared's maps and mlocks it.
    expect(mlocked(shared, 4)).toBe('LLLL');
    expect(mlocked(priv, 1)).toBe('L'); // the private copy
    mm.munlockall();
  });

  it('R8.6 exit of a child whose mapping was the only locked one leaves the parent\'s pages PG_mlocked', () => {
    const a = anon(3);
    mm.touch(a, 3 * P, 'write');
    const child = mm.fork();
    child.mlock2(a, 3 * P, MLOCK_ONFAULT); // no populate, no COW: the shared pages are mlocked
    expect(mlocked(a, 3)).toBe('LLL');
    child.destroy();
    expect(mlocked(a, 3)).toBe('LLL');
    const c = anon(1);
    mm.mlock(c, P); // mlock's page walk drains
    expect(mlocked(a, 3)).toBe('---');
  });

  it('R8.6 R5.3 item 9: after fork, the batch\'s reference on the page a COW replaced makes the child\'s write copy again', () => {
    const a = anon(1, MAP_LOCKED);
    const child = mm.fork();
    const old = mm.pagemap(a, 1)[0].pfn;
    mm.touch(a, P, 'write'); // parent copies; the old page is munlocked into the batch
    expect(mm.pagemap(a, 1)[0].pfn).not.toBe(old);
    const before = mmu.stats().cowCopies;
    child.touch(a, P, 'write');
    expect(mmu.stats().cowCopies).toBe(before + 1);
    expect(child.pagemap(a, 1)[0].pfn).not.toBe(old);
    expect(mlocked(a, 1, child)).toBe('-');
    child.destroy();
  });

  it('R8.6 a full batch (31 folios) is processed at once', () => {
    const pages = 40;
    const a = anon(pages);
    mm.touch(a, pages * P, 'write');
    const child = mm.fork();
    child.mlock2(a, pages * P, MLOCK_ONFAULT);
    child.munmap(a, pages * P);
    // 31 munlocks filled the batch and were processed; the last 9 stay queued.
    expect(mlocked(a, pages)).toBe('-'.repeat(31) + 'L'.repeat(9));
    child.destroy();
  });
});

describe('R8.6 mlockBatch: false (munlock at once, the old model)', () => {
  beforeEach(async () => { await boot(false); });

  it('R8.6 munmap of the last locked mapping clears PG_mlocked at once', () => {
    const a = sharedFileMunmapped();
    expect(mlocked(a, 4)).toBe('----');
  });

  it('R8.6 R5.3 without the batch\'s reference the child\'s write reuses the old page', () => {
    const a = anon(1, MAP_LOCKED);
    const child = mm.fork();
    const old = mm.pagemap(a, 1)[0].pfn;
    mm.touch(a, P, 'write');
    const before = mmu.stats().cowCopies;
    child.touch(a, P, 'write');
    expect(mmu.stats().cowCopies).toBe(before);
    expect(child.pagemap(a, 1)[0].pfn).toBe(old);
    child.destroy();
  });
});

// mlock_count (5.18+): a small folio counts its locked mappings; the batch's mlock and munlock
// entries are handled in the order they were queued (FUZZ-FINDINGS run L item 1; scenarios
// dontneed-locked-refault-unlocks, dontneed-locked-file-refault-unlocks).
describe('R8.6 mlock_count and the order of the batch\'s entries', () => {
  // A one-page shared file mapping, MAP_LOCKED (populated: the page is mlocked).
  function lockedFilePage(pages = 1): { va: number; file: ReturnType<Mmu['openFile']> } {
    const file = mmu.openFile(new MemoryFile(new Uint8Array(pages * P)));
    const va = mm.mmap({ length: pages * P, prot: PROT_READ, flags: MAP_SHARED | MAP_LOCKED, file });
    return { va, file };
  }
  // struct page's lru_next (assembly/page.ts +24): an unevictable folio's mlock_count.
  function countAt(pfn: number): DataView {
    const base = (mmu.core.x.mmu_memmap_base() >>> 0) + pfn * 32;
    return new DataView(mmu.core.x.memory.buffer, base + 24, 4);
  }

  it('R8.6 run L item 1: zap then refault into the still-locked VMA: the munlock entry runs first, the page ends not mlocked', () => {
    const { va } = lockedFilePage();
    expect(mlocked(va, 1)).toBe('L');
    mm.madvise(va, P, MADV_DONTNEED_LOCKED); // munlock entry queued, PG_mlocked still set
    mm.touch(va, P, 'read'); // refault: an mlock entry behind it
    expect(mlocked(va, 1)).toBe('L');
    mmu.lruAddDrain(); // munlock: mlock_count 1 → 0, PG_mlocked cleared; mlock: evictable, nothing
    expect(mlocked(va, 1)).toBe('-');
    expect(mm.status().vmLck).toBe(P);
  });

  it('R8.6 with the batch empty the refault mlocks again (the 6.1 / 6.12 order: the zap drained)', () => {
    const { va } = lockedFilePage();
    mm.madvise(va, P, MADV_DONTNEED_LOCKED);
    mmu.lruAddDrain(); // the munlock alone: cleared
    mm.touch(va, P, 'read');
    expect(mlocked(va, 1)).toBe('L');
  });

  it('R8.6 the count goes up per locked mapping and down per munlock: the page stays mlocked until the last', () => {
    const { va, file } = lockedFilePage();
    const b = mm.mmap({ length: P, prot: PROT_READ, flags: MAP_SHARED | MAP_LOCKED, file });
    const c = mm.mmap({ length: P, prot: PROT_READ, flags: MAP_SHARED | MAP_LOCKED, file });
    expect(countAt(mm.pagemap(va, 1)[0].pfn).getUint32(0, true)).toBe(3);
    mm.munmap(b, P);
    mmu.lruAddDrain();
    expect(mlocked(va, 1)).toBe('L');
    expect(countAt(mm.pagemap(va, 1)[0].pfn).getUint32(0, true)).toBe(2);
    mm.munlock(c, P); // munlock's page walk drains
    expect(mlocked(va, 1)).toBe('L');
    mm.munlock(va, P);
    expect(mlocked(va, 1)).toBe('-');
  });

  it('R8.6 mlock\'s page walk drains before it walks: a page a child\'s exit munlocked is mlocked again (seed 637177729 case 1102)', () => {
    const file = mmu.openFile(new MemoryFile(new Uint8Array(P)));
    const va = mm.mmap({ length: P, prot: PROT_READ, flags: MAP_SHARED, file });
    mm.touch(va, P, 'read');
    const child = mm.fork();
    child.mlock(va, P);
    child.destroy(); // the exit's munlock stays queued (the parent is alive)
    expect(mlocked(va, 1)).toBe('L');
    mm.mlock(va, P); // drain (munlock: count 0, cleared), walk (mlock), drain (count 1)
    expect(mlocked(va, 1)).toBe('L');
    expect(countAt(mm.pagemap(va, 1)[0].pfn).getUint32(0, true)).toBe(1);
  });

  it('R8.6 munlock of the last locked VMA clears PG_mlocked (its page walk drains the batch)', () => {
    const a = anon(2, MAP_LOCKED);
    expect(mlocked(a, 2)).toBe('LL');
    mm.munlock(a, P);
    expect(mlocked(a, 2)).toBe('-L');
    mm.munlock(a + P, P);
    expect(mlocked(a, 2)).toBe('--');
  });

  it('R8.6 reclaim that finds the page in a VM_LOCKED VMA mlocks it again (the count undercounted)', () => {
    const { va } = lockedFilePage();
    mm.madvise(va, P, MADV_DONTNEED_LOCKED);
    mm.touch(va, P, 'read');
    mmu.lruAddDrain();
    expect(mlocked(va, 1)).toBe('-'); // mapped in a locked VMA, evictable
    mmu.reclaim(64); // try_to_unmap_one / folio_referenced_one meet VM_LOCKED: mlock_vma_folio
    expect(mm.pagemap(va, 1)[0].present).toBe(true);
    expect(mlocked(va, 1)).toBe('L'); // PG_mlocked at once; the count when the batch drains
    mmu.lruAddDrain();
    expect(countAt(mm.pagemap(va, 1)[0].pfn).getUint32(0, true)).toBe(1);
  });

  it('R8.6 every mlock is a batch entry (as mlock_folio / mlock_new_folio queue it): a COW in a locked VMA queues two, which move the flush point of later munlocks', () => {
    const file = mmu.openFile(new MemoryFile(new Uint8Array(30 * P)));
    const a = mm.mmap({ length: 30 * P, prot: PROT_READ, flags: MAP_SHARED, file });
    mm.touch(a, 30 * P, 'read');
    const c = anon(1);
    mm.touch(c, P, 'write');
    const child = mm.fork();
    child.mlock(a, 30 * P); // the walk mlocks (and drains)
    child.mlock2(c, P, MLOCK_ONFAULT);
    child.touch(c, P, 'write'); // COW: mlock_new of the copy and munlock of the original, queued
    // exit zaps in address order: c (mapped later, so lower) first, then a: 2 queued + c's
    // munlock + a's pages 0-27 fill the batch; a's pages 28 and 29 stay queued. (Handled at
    // once, the two COW mlocks would have let page 28 through: the 6.18 probe with a below c
    // keeps exactly 2 + 29 before the flush.)
    expect(c).toBeLessThan(a);
    child.destroy();
    expect(mlocked(a, 30)).toBe('-'.repeat(28) + 'LL');
  });

  it('R8.6 R5.6 fork: the child\'s mappings are not locked and leave the parent\'s count alone', () => {
    const a = anon(2, MAP_LOCKED);
    const child = mm.fork();
    expect(mlocked(a, 2, child)).toBe('LL');
    child.touch(a, 2 * P, 'read');
    child.destroy(); // unlocked mappings: no munlock
    mmu.lruAddDrain();
    expect(mlocked(a, 2)).toBe('LL');
    expect(countAt(mm.pagemap(a, 1)[0].pfn).getUint32(0, true)).toBe(1);
  });

  it('R8.6 a large folio: a zap of one page unlocks all of it at once; a refault in part does not lock it again (6.18 measured)', () => {
    const file = mmu.openFile(new MemoryFile(new Uint8Array(16 * P)));
    file.prime(0, 16, { order: 4 });
    const va = mm.mmap({ length: 16 * P, prot: PROT_READ, flags: MAP_SHARED, file });
    mm.touch(va, 16 * P, 'read'); // mapped first: mlock's page walk mlocks the whole folio
    mm.mlock(va, 16 * P);
    expect(file.page(3)?.order).toBe(4);
    expect(mlocked(va, 16)).toBe('L'.repeat(16));
    mm.madvise(va + 3 * P, P, MADV_DONTNEED_LOCKED); // a large folio is never left queued
    expect(mlocked(va, 16)).toBe('---.' + '-'.repeat(12));
    mm.touch(va + 3 * P, P, 'read'); // maps one page of it: not the whole folio
    mmu.lruAddDrain();
    expect(mlocked(va, 16)).toBe('-'.repeat(16));
    mm.munlock(va, 16 * P);
    mm.mlock(va, 16 * P); // the walk over the whole folio locks it again
    expect(mlocked(va, 16)).toBe('L'.repeat(16));
  });

  it('R8.2 R8.6 mlock of a range that cuts a large folio leaves it unlocked; the folios it covers whole are mlocked (allow_mlock_munlock, seed 1268232064 case 4390)', () => {
    const file = mmu.openFile(new MemoryFile(new Uint8Array(48 * P)));
    file.prime(0, 48, { order: 4 }); // three 16-page folios
    const va = mm.mmap({ length: 48 * P, prot: PROT_READ, flags: MAP_PRIVATE, file });
    mm.touch(va, 48 * P, 'read');
    mm.mlock(va + 5 * P, 43 * P); // splits the VMA inside the first folio
    expect(mlocked(va, 48)).toBe('-'.repeat(16) + 'L'.repeat(32));
    mm.munlock(va, 48 * P);
    mm.mlock(va, 40 * P); // cuts the last folio at its end
    expect(mlocked(va, 48)).toBe('L'.repeat(32) + '-'.repeat(16));
  });

  it('R8.6 a fault that mlocks a whole large folio (6.18+) sends it through the batch at once: the munlocks queued before it are handled first', async () => {
    mmu = await createMmu({ ramBytes: 16 << 20, mlockMappedLargeFolio: true });
    mm = mmu.createAddressSpace();
    const a = sharedFileMunmapped(); // 4 munlocks queued: still PG_mlocked
    const file = mmu.openFile(new MemoryFile(new Uint8Array(16 * P)));
    file.prime(0, 16, { order: 4 });
    const va = mm.mmap({ length: 16 * P, prot: PROT_READ, flags: MAP_SHARED, file });
    mm.mlock2(va, 16 * P, MLOCK_ONFAULT); // nothing mapped yet; the flag change drains `a`'s 4 munlocks
    const b = sharedFileMunmapped(); // 4 more queued after the mlock2's drains
    expect(mlocked(b, 4)).toBe('LLLL');
    mm.touch(va + P, 1, 'read'); // fault-around maps the whole folio: mlock_folio of a large folio
    expect(mlocked(va, 16)).toBe('L'.repeat(16));
    expect(mlocked(a, 4)).toBe('----');
    expect(mlocked(b, 4)).toBe('----');
  });

  for (const on of [true, false]) {
    it(`R8.6 mlockMappedLargeFolio ${on}: a fault that maps a large folio whole into a locked VMA ${on ? 'mlocks it (6.18+)' : 'leaves it (6.1, 6.12)'}; one mapped in part never`, async () => {
      mmu = await createMmu({ ramBytes: 16 << 20, mlockMappedLargeFolio: on });
      mm = mmu.createAddressSpace();
      const file = mmu.openFile(new MemoryFile(new Uint8Array(32 * P)));
      file.prime(0, 32, { order: 4 }); // two 16-page folios
      const a = mm.mmap({ length: 16 * P, prot: PROT_READ, flags: MAP_SHARED, file });
      mm.mlock2(a, 16 * P, MLOCK_ONFAULT);
      mm.touch(a + P, 1, 'read'); // fault-around: the 16-page window is the whole folio
      expect(mlocked(a, 16)).toBe((on ? 'L' : '-').repeat(16));
      const b = mm.mmap({ length: 8 * P, prot: PROT_READ, flags: MAP_SHARED, file, offset: 16 * P });
      mm.mlock2(b, 8 * P, MLOCK_ONFAULT);
      mm.touch(b, 1, 'read'); // maps at most 8 of the second folio's 16 pages
      expect(mlocked(b, 8).replace(/\./g, '')).toMatch(/^-+$/);
    });
  }

  it('R8.6 INV_MLOCK: the checker reports an mlock_count of 0 or above the mappings, and is clean again when restored', () => {
    const { va } = lockedFilePage();
    const v = countAt(mm.pagemap(va, 1)[0].pfn);
    expect(v.getUint32(0, true)).toBe(1);
    v.setUint32(0, 0, true);
    expect(mmu.checkInvariants().join('\n')).toMatch(/mlock_count of 0/);
    v.setUint32(0, 2, true);
    expect(mmu.checkInvariants().join('\n')).toMatch(/mlock_count above its mappings/);
    v.setUint32(0, 1, true);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R8.6 R10.2 a truncate drops the page from the cache, then drains: the batch\'s reference was the last, the page is freed', () => {
    const { va, file } = lockedFilePage();
    const pfn = mm.pagemap(va, 1)[0].pfn;
    mm.madvise(va, P, MADV_DONTNEED_LOCKED);
    expect(mmu.checkInvariants()).toEqual([]); // the queued entry's reference is counted
    const free0 = mmu.stats().freeFrames;
    mmu.lruAddDrain(); // the cache still holds it
    expect(mmu.stats().freeFrames).toBe(free0);
    mm.madvise(va, P, MADV_DONTNEED_LOCKED); // nothing mapped: nothing queued
    file.truncate(0);
    expect(mmu.stats().freeFrames).toBe(free0 + 1);
    expect(pfn).toBeGreaterThan(0);
  });
});
