// Reclaim, swap and write-back (issue 6): nothing is lost under memory pressure; LRU aging
// by accessed bits (seed 001's old prefaulted PTEs made observable); swap entries in
// pagemap (R11.3); swap-in is a major fault (R11.6) unless MADV_WILLNEED ran (R9.2);
// pinned pages stay and are copied at fork (R5.6); OOM only when nothing is reclaimable.
import { describe, it, expect } from 'vitest';
import {
  createMmu, MemoryFile, OutOfMemoryError, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_SHARED,
  MAP_ANONYMOUS, MAP_FIXED_NOREPLACE, MADV_WILLNEED, MADV_PAGEOUT, type Mmu,
} from '../../src/index.js';

const P = 4096;

// A tiny deterministic RNG (mulberry32) so failures reproduce.
function rng(seed: number) {
  return () => {
    seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function fileBytes(pages: number, salt: number): Uint8Array {
  const b = new Uint8Array(pages * P);
  for (let i = 0; i < b.length; i += 64) b[i] = (i >> 12) * 7 + salt;
  return b;
}

function clean(mmu: Mmu) {
  expect(mmu.checkInvariants()).toEqual([]);
}

describe('reclaim under pressure: nothing is lost', () => {
  it('anonymous, private-file and shared-file mappings 4x larger than RAM, random writes, every byte reads back', async () => {
    const mmu = await createMmu({ ramBytes: 4 << 20 });
    const mm = mmu.createAddressSpace();
    const pages = 1024; // 4 MiB each, 12 MiB in all on 4 MiB of RAM
    const anon = mm.mmap({ length: pages * P, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    const privBytes = fileBytes(pages, 1);
    const privFile = mmu.openFile(new MemoryFile(privBytes));
    const priv = mm.mmap({ length: pages * P, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE, file: privFile });
    const sharedBytes = fileBytes(pages, 2);
    const shared = new MemoryFile(sharedBytes);
    const sharedFile = mmu.openFile(shared);
    const shr = mm.mmap({ length: pages * P, prot: PROT_READ | PROT_WRITE, flags: MAP_SHARED, file: sharedFile });
    // A locked region that must never be evicted.
    const locked = mm.mmap({ length: 32 * P, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.mlock(locked, 32 * P);
    mm.write(locked, new Uint8Array([0xee]));

    // The model: expected byte at (region, offset).
    const model = new Map<number, number>();
    const regions = [anon, priv, shr];
    const expectAt = (va: number): number => {
      const m = model.get(va);
      if (m !== undefined) return m;
      if (va >= anon && va < anon + pages * P) return 0;
      if (va >= priv && va < priv + pages * P) return privBytes[va - priv];
      return sharedBytes[va - shr];
    };
    const r = rng(12345);
    for (let i = 0; i < 6000; i++) {
      const base = regions[Math.floor(r() * 3)];
      const va = base + Math.floor(r() * pages * P);
      if (r() < 0.6) {
        const v = Math.floor(r() * 256);
        mm.write(va, new Uint8Array([v]));
        model.set(va, v);
      } else {
        expect(mm.read(va, 1)[0]).toBe(expectAt(va));
      }
    }
    const s = mmu.stats();
    expect(s.pswpout).toBeGreaterThan(0);
    expect(s.writeback).toBeGreaterThan(0);
    expect(s.pgsteal).toBeGreaterThan(0);
    for (const [va, v] of model) expect(mm.read(va, 1)[0]).toBe(v);
    expect(mm.pagemap(locked, 32).every((p) => p.present && p.mlocked)).toBe(true);
    expect(mm.read(locked, 1)[0]).toBe(0xee);
    clean(mmu);
    // Shared writes reach the backend on eviction and msync; private writes never do.
    mm.msync(shr, pages * P);
    const onDisk = shared.bytes();
    for (const [va, v] of model) if (va >= shr && va < shr + pages * P) expect(onDisk[va - shr]).toBe(v);
    expect(privFile.backend instanceof MemoryFile && (privFile.backend as MemoryFile).writes).toBe(0);
    mm.destroy();
    privFile.close();
    sharedFile.close();
    clean(mmu);
    expect(mmu.stats().freeFrames).toBe(mmu.stats().ramFrames - 1);
    expect(mmu.stats().swapUsed).toBe(0);
  });

  it('a dirty shared page evicted without msync is written back first (data on the backend)', async () => {
    const mmu = await createMmu({ ramBytes: 4 << 20 });
    const mm = mmu.createAddressSpace();
    const backend = new MemoryFile(16 * P);
    const file = mmu.openFile(backend);
    const va = mm.mmap({ length: 16 * P, prot: PROT_READ | PROT_WRITE, flags: MAP_SHARED, file });
    mm.write(va + 5 * P + 7, new Uint8Array([0xab]));
    mm.munmap(va, 16 * P);
    expect(file.evict()).toBeGreaterThan(0);
    expect(backend.bytes()[5 * P + 7]).toBe(0xab);
    expect(file.cachedPages).toBe(0);
    clean(mmu);
  });
});

describe('LRU aging (seed 001)', () => {
  async function setup(prefaultOld: boolean) {
    const mmu = await createMmu({ ramBytes: 8 << 20, prefaultOld, swapBytes: 0 });
    const mm = mmu.createAddressSpace();
    const file = mmu.openFile(new MemoryFile(fileBytes(64, 3)));
    file.prime();
    const va = mm.mmap({ addr: 0x40000000, length: 64 * P, prot: PROT_READ, flags: MAP_PRIVATE | MAP_FIXED_NOREPLACE, file });
    for (let i = 0; i < 64; i += 16) mm.touch(va + i * P, 1); // 4 faults map all 64 pages
    return { mmu, mm, va, file };
  }

  it('with prefaultOld, the prefaulted pages nobody touched are reclaimed before the touched ones', async () => {
    const { mmu, mm, va } = await setup(true);
    const pm = mm.pagemap(va, 64);
    expect(pm.filter((p) => p.present).length).toBe(64);
    expect(pm.map((p, i) => (i % 16 === 0) === p.young).every(Boolean)).toBe(true);
    mmu.reclaim(60);
    const after = mm.pagemap(va, 64);
    // The four faulting (young) pages survive; the 60 old prefaulted ones went first.
    expect(after.filter((p) => p.present).length).toBe(4);
    expect([0, 16, 32, 48].every((i) => after[i].present)).toBe(true);
    clean(mmu);
  });

  it('without prefaultOld (x86), prefaulted PTEs are young and get the same second chance as touched ones', async () => {
    const { mmu, mm, va } = await setup(false);
    expect(mm.pagemap(va, 64).every((p) => p.young)).toBe(true);
    const freed = mmu.reclaim(8);
    // Everything looked young once: the first pass only ages; reclaim still frees by
    // giving the second look, so some pages go but the choice is not by touch.
    expect(freed).toBeGreaterThanOrEqual(8);
    const after = mm.pagemap(va, 64);
    expect(after.filter((p) => p.present).length).toBeLessThan(64);
    clean(mmu);
  });
});

describe('swap (R11.3, R11.6, R9.2)', () => {
  it('R11.3 a swapped-out anonymous page shows as swapped in pagemap, and comes back by a major fault with its bytes', async () => {
    const mmu = await createMmu({ ramBytes: 8 << 20 });
    const mm = mmu.createAddressSpace();
    const va = mm.mmap({ length: 8 * P, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    for (let i = 0; i < 8; i++) mm.write(va + i * P, new Uint8Array([i + 1, 99]));
    mm.madvise(va, 8 * P, MADV_PAGEOUT);
    const pm = mm.pagemap(va, 8);
    expect(pm.every((p) => !p.present && p.swapped && p.swapOffset > 0 && p.swapType === 0)).toBe(true);
    expect(mm.status().vmSwap).toBe(8 * P);
    expect(mm.status().rssAnon).toBe(0);
    // The written copies stay in the swap cache after PAGEOUT (R11.6); reclaim frees them.
    expect(mmu.reclaim(8)).toBeGreaterThanOrEqual(8);
    expect(mmu.checkInvariants()).toEqual([]);
    const f0 = mm.rusage();
    expect(Array.from(mm.read(va + 3 * P, 2))).toEqual([4, 99]);
    const f1 = mm.rusage();
    expect(f1.majflt - f0.majflt).toBe(1);
    expect(f1.minflt - f0.minflt).toBe(0);
    expect(mm.pagemap(va + 3 * P, 1)[0].present).toBe(true);
    clean(mmu);
  });

  it('R9.2 madvise06: after MADV_WILLNEED on swapped anonymous memory, access takes no major fault', async () => {
    const mmu = await createMmu({ ramBytes: 8 << 20 });
    const mm = mmu.createAddressSpace();
    const va = mm.mmap({ length: 8 * P, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.touch(va, 8 * P, 'write');
    mm.madvise(va, 8 * P, MADV_PAGEOUT);
    expect(mmu.reclaim(8)).toBeGreaterThanOrEqual(8); // the swap-cache copies go: WILLNEED must read
    const in0 = mmu.stats().pswpin;
    mm.madvise(va, 8 * P, MADV_WILLNEED);
    expect(mmu.stats().pswpin - in0).toBe(8);
    expect(mm.pagemap(va, 8).every((p) => p.swapped)).toBe(true); // no PTEs installed by WILLNEED
    const f0 = mm.rusage();
    mm.touch(va, 8 * P, 'read');
    const f1 = mm.rusage();
    expect(f1.majflt - f0.majflt).toBe(0);
    expect(f1.minflt - f0.minflt).toBe(8);
    clean(mmu);
  });

  it('R5.6 fork of a swapped page shares the slot; each side reads it back; destroy frees the slot', async () => {
    const mmu = await createMmu({ ramBytes: 8 << 20 });
    const mm = mmu.createAddressSpace();
    const va = mm.mmap({ length: P, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.write(va, new Uint8Array([77]));
    mm.madvise(va, P, MADV_PAGEOUT);
    const child = mm.fork();
    expect(child.pagemap(va, 1)[0].swapped).toBe(true);
    expect(child.read(va, 1)[0]).toBe(77);
    child.write(va, new Uint8Array([78])); // COW: the parent keeps 77
    expect(mm.read(va, 1)[0]).toBe(77);
    clean(mmu);
    child.destroy();
    mm.destroy();
    expect(mmu.stats().swapUsed).toBe(0);
    clean(mmu);
  });
});

describe('GUP pins (R5.6, R8.5)', () => {
  it('a pinned page is not reclaimed, and fork gives the child its own copy of a pinned exclusive page', async () => {
    const mmu = await createMmu({ ramBytes: 8 << 20 });
    const mm = mmu.createAddressSpace();
    const va = mm.mmap({ length: 2 * P, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.write(va, new Uint8Array([5]));
    const [pfn] = mm.getUserPages(va, 1, { write: true, pin: true });
    expect(pfn).toBe(mm.pagemap(va, 1)[0].pfn);
    mm.madvise(va, 2 * P, MADV_PAGEOUT);
    expect(mm.pagemap(va, 1)[0].present).toBe(true); // pinned: stays
    const child = mm.fork();
    const c = child.pagemap(va, 1)[0];
    const p = mm.pagemap(va, 1)[0];
    expect(c.pfn).not.toBe(p.pfn); // copied at fork, no COW for pinned pages
    expect(p.writable && p.exclusive).toBe(true);
    expect(child.read(va, 1)[0]).toBe(5);
    mm.unpinUserPage(pfn);
    child.destroy();
    clean(mmu);
  });

  it('R8.5 dirtyc0w: a forced write into a read-only private file mapping never reaches the page cache', async () => {
    const mmu = await createMmu();
    const mm = mmu.createAddressSpace();
    const backend = new MemoryFile(fileBytes(4, 9));
    const file = mmu.openFile(backend);
    const va = mm.mmap({ length: 4 * P, prot: PROT_READ, flags: MAP_PRIVATE, file });
    const [pfn] = mm.getUserPages(va, 1, { write: true, force: true });
    expect(pfn).not.toBe(file.page(0)!.pfn);
    const pm = mm.pagemap(va, 1)[0];
    expect(pm.file).toBe(false);
    expect(pm.writable).toBe(false); // R5.8: dirty but never writable in a read-only VMA
    mm.madvise(va, 4 * P, 4 /* MADV_DONTNEED */);
    expect(mm.read(va, 1)[0]).toBe(backend.bytes()[0]);
    clean(mmu);
  });
});

describe('out of memory', () => {
  it('OutOfMemoryError only when nothing can be reclaimed (no swap, all anonymous), and the core stays consistent', async () => {
    const mmu = await createMmu({ ramBytes: 2 << 20, swapBytes: 0 });
    const mm = mmu.createAddressSpace();
    const va = mm.mmap({ length: 1024 * P, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    let err: unknown;
    try { mm.touch(va, 1024 * P, 'write'); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(OutOfMemoryError);
    clean(mmu);
    mm.destroy();
    expect(mmu.stats().freeFrames).toBe(mmu.stats().ramFrames - 1);
  });
});

describe('swap to a file', () => {
  it('a NodeFile as the swap device: swapped pages land in the file and come back byte for byte', async () => {
    const { NodeFile } = await import('../../src/node.js');
    const { mkdtempSync, statSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'wasm-mmu-swap-'));
    const path = join(dir, 'swapfile');
    const swap = new NodeFile(path, { create: true });
    try {
      const mmu = await createMmu({ ramBytes: 4 << 20, swapDevice: swap });
      const mm = mmu.createAddressSpace();
      const va = mm.mmap({ length: 64 * P, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
      for (let i = 0; i < 64; i++) mm.write(va + i * P, new Uint8Array([i, 255 - i]));
      mm.madvise(va, 64 * P, MADV_PAGEOUT);
      expect(mm.pagemap(va, 64).every((p) => p.swapped)).toBe(true);
      expect(statSync(path).size).toBeGreaterThanOrEqual(64 * P); // the pages are in the file
      expect(mmu.reclaim(64)).toBeGreaterThanOrEqual(64); // drop the swap-cache copies: read the file
      for (let i = 0; i < 64; i++) expect(Array.from(mm.read(va + i * P, 2))).toEqual([i, 255 - i]);
      expect(mm.rusage().majflt).toBe(64);
      clean(mmu);
    } finally {
      swap.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('pins outlive their address space', () => {
  it('R5.6 a pinned page stays after destroy() and is freed by the last unpin: nothing leaks', async () => {
    const mmu = await createMmu({ ramBytes: 8 << 20 });
    const free0 = mmu.stats().freeFrames;
    const mm = mmu.createAddressSpace();
    const va = mm.mmap({ length: 2 * P, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    mm.write(va, new Uint8Array([1]));
    const [pfn] = mm.getUserPages(va, 1, { write: true, pin: true });
    mm.destroy();
    expect(mmu.stats().freeFrames).toBe(free0 - 1); // only the pinned frame is still held
    clean(mmu);
    mm.unpinUserPage(pfn);
    expect(mmu.stats().freeFrames).toBe(free0);
    expect(() => mm.unpinUserPage(pfn)).toThrow(/EINVAL/); // no pin left to drop
    clean(mmu);
  });
});
