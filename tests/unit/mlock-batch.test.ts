// LINUX-SPEC R8.6: the per-CPU mlock folio batch (assembly/mlock_batch.ts). munlock only
// queues the page with a reference; PG_mlocked is cleared when the batch drains. Drain
// points as measured on 6.18 (scenarios munmap-locked-defers-munlock,
// exit-locked-defers-munlock, mlock-cow-batch-ref-copies).
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import {
  createMmu, MemoryFile, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS, MAP_LOCKED,
  MLOCK_ONFAULT, MADV_DONTNEED, MADV_COLD, MADV_FREE, MADV_PAGEOUT, MADV_WILLNEED, type Mmu, type AddressSpace,
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
