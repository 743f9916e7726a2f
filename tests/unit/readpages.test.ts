// Read-around through a backend's readPages (issue 17): one backend call per run of absent
// pages of the window, with the same bytes, page states and fault counts as page-by-page
// reads (R2.9), and a failed batch read falls back to readPage so an error keeps its
// per-page meaning (R1.1 step 4: only the page that cannot be read raises SIGBUS).
import { describe, it, expect } from 'vitest';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMmu, MemoryFile, BusError, PAGE_SIZE, PROT_READ, MAP_PRIVATE, type Backend } from '../../src/index.js';
import { NodeFile } from '../../src/node.js';

const PG = PAGE_SIZE;

/** A MemoryFile that counts its calls and may fail reads from page `badFrom` on. */
class CountingFile implements Backend {
  inner: MemoryFile;
  pageCalls = 0;
  batchCalls: Array<[number, number]> = [];
  constructor(bytes: Uint8Array, readonly batch: boolean, readonly badFrom = Infinity) {
    this.inner = new MemoryFile(bytes);
    if (!batch) (this as { readPages?: unknown }).readPages = undefined;
  }
  size(): number { return this.inner.size(); }
  readPage(index: number, dst: Uint8Array): number {
    this.pageCalls++;
    if (index >= this.badFrom) throw new Error(`page ${index} is unreadable`);
    return this.inner.readPage(index, dst);
  }
  readPages?(index: number, count: number, dst: Uint8Array): number {
    this.batchCalls.push([index, count]);
    if (index + count > this.badFrom) throw new Error(`pages ${index}+${count} include an unreadable one`);
    let done = 0;
    for (let i = 0; i < count; i++) {
      const n = this.inner.readPage(index + i, dst.subarray(i * PG, (i + 1) * PG));
      done += n;
      if (n < PG) break;
    }
    return done;
  }
}

function pattern(bytes: number): Uint8Array {
  const b = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) b[i] = (Math.floor(i / PG) * 7 + (i & 15) + 1) & 0xff;
  return b;
}

describe('readPages: read-around in one backend call per run (R2.9)', () => {
  it('R2.9: a window of absent pages is one readPages call; bytes and fault counts equal page-by-page reads', async () => {
    const bytes = pattern(64 * PG + 100); // a short last page: zero-filled past EOF
    const results = [];
    for (const batch of [true, false]) {
      const mmu = await createMmu({ ramBytes: 8 << 20, largeFolioReadahead: false }); // order-0 windows: one batch per run
      const be = new CountingFile(bytes, batch);
      const file = mmu.openFile(be);
      const mm = mmu.createAddressSpace();
      const va = mm.mmap({ length: 65 * PG, prot: PROT_READ, flags: MAP_PRIVATE, file });
      mm.touch(va, 65 * PG, 'read');
      const got = mm.read(va, 65 * PG);
      const want = new Uint8Array(65 * PG);
      want.set(bytes);
      expect(Buffer.compare(Buffer.from(got), Buffer.from(want))).toBe(0);
      results.push({ ru: mm.rusage(), be });
      expect(mmu.checkInvariants()).toEqual([]);
      mm.destroy();
      expect(mmu.checkInvariants()).toEqual([]);
    }
    const [b, p] = results;
    expect(b.ru.majflt).toBe(p.ru.majflt);
    expect(b.ru.minflt).toBe(p.ru.minflt);
    expect(b.be.pageCalls).toBe(0);
    expect(b.be.batchCalls.length).toBeGreaterThan(0);
    expect(b.be.batchCalls.length).toBeLessThan(p.be.pageCalls);
    // Every page was read exactly once, by one kind of call or the other.
    const batched = b.be.batchCalls.reduce((s, [, n]) => s + n, 0);
    expect(batched).toBe(p.be.pageCalls);
  });

  it('R1.1 step 4: a failed batch falls back to readPage: the readable fault page maps, the unreadable page raises SIGBUS', async () => {
    const mmu = await createMmu({ ramBytes: 8 << 20, largeFolioReadahead: false }); // order-0 windows: one batch per run
    const bytes = pattern(64 * PG);
    const be = new CountingFile(bytes, true, 20); // pages 20.. cannot be read
    const file = mmu.openFile(be);
    const mm = mmu.createAddressSpace();
    const va = mm.mmap({ length: 64 * PG, prot: PROT_READ, flags: MAP_PRIVATE, file });
    // Page 10's read-around window reaches past page 20: the batch fails, the per-page
    // reads cache 0..19 and stop at 20; page 10 is readable and maps.
    expect(mm.read(va + 10 * PG, 4)).toEqual(bytes.subarray(10 * PG, 10 * PG + 4));
    expect(be.batchCalls.length).toBeGreaterThan(0);
    expect(be.pageCalls).toBeGreaterThan(0);
    expect(mmu.checkInvariants()).toEqual([]);
    expect(() => mm.read(va + 30 * PG, 4)).toThrow(BusError);
    expect(mmu.checkInvariants()).toEqual([]);
    mm.destroy();
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R2.9: NodeFile reads a 128 KiB read-around window with one pread per run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wasm-mmu-readpages-'));
    try {
      const p = join(dir, 'f.bin');
      const bytes = pattern(256 * PG);
      writeFileSync(p, bytes);
      const mmu = await createMmu({ ramBytes: 8 << 20, largeFolioReadahead: false }); // order-0 windows: one batch per run
      const nf = new NodeFile(p, { readOnly: true });
      let calls = 0;
      const orig = nf.readPages.bind(nf);
      nf.readPages = (i: number, n: number, d: Uint8Array) => { calls++; return orig(i, n, d); };
      const file = mmu.openFile(nf);
      const mm = mmu.createAddressSpace();
      const va = mm.mmap({ length: 256 * PG, prot: PROT_READ, flags: MAP_PRIVATE, file });
      mm.touch(va, 256 * PG, 'read');
      expect(Buffer.compare(Buffer.from(mm.read(va, 256 * PG)), Buffer.from(bytes))).toBe(0);
      expect(nf.reads).toBe(256);
      expect(calls).toBeLessThanOrEqual(256 / 32 + 2); // one per 32-page window (and the first)
      expect(mmu.checkInvariants()).toEqual([]);
      mm.destroy();
      file.close();
      nf.close();
      expect(mmu.checkInvariants()).toEqual([]);
      // Large-folio readahead (6.16+ ext4, the default): one call per folio, never per page.
      const mmu2 = await createMmu({ ramBytes: 8 << 20 });
      const nf2 = new NodeFile(p, { readOnly: true });
      let calls2 = 0, pages2 = 0;
      const orig2 = nf2.readPages.bind(nf2);
      nf2.readPages = (i: number, n: number, d: Uint8Array) => { calls2++; pages2 += n; return orig2(i, n, d); };
      const file2 = mmu2.openFile(nf2);
      const mm2 = mmu2.createAddressSpace();
      const va2 = mm2.mmap({ length: 256 * PG, prot: PROT_READ, flags: MAP_PRIVATE, file: file2 });
      mm2.touch(va2, 256 * PG, 'read');
      expect(Buffer.compare(Buffer.from(mm2.read(va2, 256 * PG)), Buffer.from(bytes))).toBe(0);
      expect(pages2).toBeGreaterThan(200); // (almost) every page came through readPages
      expect(calls2).toBeLessThanOrEqual(256 / 8); // a call reads a folio or a run: 8+ pages on average
      expect(mmu2.checkInvariants()).toEqual([]);
      mm2.destroy();
      file2.close();
      nf2.close();
      expect(mmu2.checkInvariants()).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
