// createMmu() options and the package as users load it (src/mmu.ts resolveOptions, dist/).
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createMmu, type MmuOptions } from '../../src/index.js';
import { PageTables, P, RW, US, PAGE } from '../helpers/pagetables.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('createMmu: defaults (DESIGN: every option has a sane default)', () => {
  it('every option has a sane default: 64 MiB RAM, 1024 TLB entries, 64 KiB fault-around, x86 prefault', async () => {
    const mmu = await createMmu();
    expect(mmu.options).toEqual({
      ramBytes: 64 * MiB, tlbEntries: 1024, faultAroundBytes: 65536, prefaultOld: false, zeroPage: true, pteSpecial: true,
      swapBytes: 4 * 64 * MiB, readaheadBytes: 128 * 1024, xipBytes: 32 * MiB,
      largeFolioReadahead: true, execReadForward: true, truncateCachesTail: true, guardRegions: true,
      populateAccounting: 'retry-major', readaheadEofNoMarker: true, execFolioOrder: 0,
      userFaultAccounting: 'vma-lock', faultAroundIsize: true, truncateExtendZeroesTail: true, daxFolios: true, mlockBatch: true, tlbFreeDrainsMlock: false, lazyfreeBatch: true,
      mergeFaultedIntoUnfaulted: true, mlockMappedLargeFolio: true,
    });
    expect(mmu.phys.size).toBe(64 * MiB);
    expect(mmu.phys.frames).toBe(16384);
    expect(mmu.tlb.entries).toBe(1024);
    expect(mmu.core.x.mmu_tlb_entries()).toBe(1024);
    expect(mmu.faultAroundBytes).toBe(65536);
    expect(mmu.prefaultOld).toBe(false);
    expect(mmu.stats()).toMatchObject({ ramFrames: 16384, freeFrames: 16383, pageTables: 0, tlbHits: 0, tlbMisses: 0 });
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('each createMmu() is its own machine: state in one never shows in another', async () => {
    const a = await createMmu({ ramBytes: 2 * MiB });
    const b = await createMmu({ ramBytes: 2 * MiB });
    a.phys.alloc(3);
    expect(a.phys.freeFrames).toBe(511 - 8);
    expect(b.phys.freeFrames).toBe(511);
    expect(a.checkInvariants()).toEqual([]);
    expect(b.checkInvariants()).toEqual([]);
  });

  it('the limits themselves are accepted: 2 MiB RAM, 1 TLB entry, fault-around 4096 and 2 MiB', async () => {
    const m = await createMmu({ ramBytes: 2 * MiB, tlbEntries: 1, faultAroundBytes: 4096, prefaultOld: true });
    expect(m.phys.frames).toBe(512);
    expect(m.tlb.entries).toBe(1);
    expect(m.faultAroundBytes).toBe(4096);
    expect(m.prefaultOld).toBe(true);
    m.faultAroundBytes = 2 * MiB;
    expect(m.faultAroundBytes).toBe(2 * MiB);
    expect(m.core.x.mmu_set_fault_around_bytes(2 * MiB)).toBe(2 * MiB); // the core took it as is
    expect(m.checkInvariants()).toEqual([]);
  });
});

describe('createMmu: bad options are RangeErrors that name the option (DESIGN: RangeError for bad arguments)', () => {
  const bad: Array<[string, MmuOptions, RegExp]> = [
    ['ramBytes not a multiple of 2 MiB', { ramBytes: 3 * MiB }, /ramBytes must be a positive multiple of 2 MiB, got 3145728/],
    ['ramBytes one page over a multiple', { ramBytes: 2 * MiB + 4096 }, /ramBytes .*multiple of 2 MiB/],
    ['ramBytes 0', { ramBytes: 0 }, /ramBytes .*got 0/],
    ['ramBytes negative', { ramBytes: -2 * MiB }, /ramBytes .*got -2097152/],
    ['ramBytes NaN', { ramBytes: NaN }, /ramBytes .*got NaN/],
    ['ramBytes Infinity', { ramBytes: Infinity }, /ramBytes/],
    ['ramBytes fractional', { ramBytes: 2 * MiB + 0.5 }, /ramBytes/],
    ['ramBytes just over 3 GiB', { ramBytes: 3 * GiB + 2 * MiB }, /ramBytes 3223322624 is too big for wasm32: at most 3 GiB/],
    ['ramBytes 4 GiB', { ramBytes: 4 * GiB }, /too big for wasm32/],
    ['tlbEntries 0', { tlbEntries: 0 }, /tlbEntries must be a power of two .*got 0/],
    ['tlbEntries not a power of two', { tlbEntries: 1000 }, /tlbEntries .*got 1000/],
    ['tlbEntries 3', { tlbEntries: 3 }, /tlbEntries/],
    ['tlbEntries negative', { tlbEntries: -1024 }, /tlbEntries/],
    ['tlbEntries NaN', { tlbEntries: NaN }, /tlbEntries .*NaN/],
    ['tlbEntries fractional', { tlbEntries: 0.5 }, /tlbEntries/],
    ['tlbEntries over 2^20', { tlbEntries: 2 ** 21 }, /tlbEntries/],
    ['faultAroundBytes not a power of two', { faultAroundBytes: 12288 }, /faultAroundBytes must be a power of two from 4096 to 2 MiB, got 12288/],
    ['faultAroundBytes below 4096', { faultAroundBytes: 2048 }, /faultAroundBytes .*got 2048/],
    ['faultAroundBytes 0', { faultAroundBytes: 0 }, /faultAroundBytes/],
    ['faultAroundBytes above 2 MiB', { faultAroundBytes: 4 * MiB }, /faultAroundBytes .*got 4194304/],
    ['faultAroundBytes NaN', { faultAroundBytes: NaN }, /faultAroundBytes/],
    ['faultAroundBytes negative', { faultAroundBytes: -4096 }, /faultAroundBytes/],
  ];
  for (const [name, opts, msg] of bad) {
    it(name, async () => {
      const p = createMmu(opts);
      await expect(p).rejects.toThrow(RangeError);
      await expect(p).rejects.toThrow(msg);
    });
  }

  it('the faultAroundBytes setter checks the same way and keeps the old value on error', async () => {
    const m = await createMmu({ ramBytes: 2 * MiB });
    for (const b of [0, 3000, 12288, 4 * MiB, NaN]) {
      expect(() => { m.faultAroundBytes = b; }).toThrow(RangeError);
      expect(m.faultAroundBytes).toBe(65536);
    }
    m.faultAroundBytes = 16384;
    expect(m.faultAroundBytes).toBe(16384);
    expect(m.checkInvariants()).toEqual([]);
  });
});

describe('createMmu: large RAM (wasm32 allows up to 3 GiB)', () => {
  // Regression: heap.alloc caps one block below 1 GiB, so RAM >= 1 GiB used to abort in
  // boot(); and above 2 GiB the usize exports arrive as negative i32s in JavaScript.
  for (const size of [1 * GiB, 3 * GiB]) {
    it(`${size / GiB} GiB boots, and RAM, the walker and the JS TLB view work up to its last frame`, async () => {
      const mmu = await createMmu({ ramBytes: size, tlbEntries: 64 });
      expect(mmu.phys.frames).toBe(size / PAGE);
      expect(mmu.phys.freeFrames).toBe(size / PAGE - 1);
      expect(mmu.checkInvariants()).toEqual([]);
      // The last byte of RAM is reachable by physical address.
      mmu.phys.write(size - 4, new Uint8Array([9, 8, 7, 6]));
      expect([...mmu.phys.read(size - 4, 4)]).toEqual([9, 8, 7, 6]);
      // Translate through tables in frames and a page near the top of RAM.
      const pt = new PageTables(mmu);
      const root = pt.root();
      const va = 0x7fff_ffff_f000;
      const last = size / PAGE - 1;
      pt.map(root, va, { pa: last * PAGE, leaf: P | RW | US });
      expect(mmu.walk(root, va + 3, 'read')).toMatchObject({ ok: true, pa: last * PAGE + 3 });
      expect(mmu.tlb.translate(1, root, va + 3, 'read')).toEqual({ ok: true, pa: last * PAGE + 3 });
      expect(mmu.tlb.view.lookup(1, va + 3, 0)).toBe(last * PAGE + 3);
      pt.release();
      expect(mmu.checkInvariants()).toEqual([]);
    });
  }
});

describe('package: the built ESM entry point (DESIGN: one ESM package, built to dist/ and build/)', () => {
  it('dist/index.js loads (as the test runner builds it first) and boots a machine', async () => {
    expect(existsSync(`${ROOT}dist/index.js`)).toBe(true);
    expect(existsSync(`${ROOT}dist/index.d.ts`)).toBe(true);
    expect(existsSync(`${ROOT}build/release.wasm`)).toBe(true);
    const pkg = await import('../../dist/index.js');
    for (const name of ['createMmu', 'Mmu', 'PhysicalMemory', 'HardwareTlb', 'TlbView', 'LinuxError',
      'SegmentationFault', 'BusError', 'OutOfMemoryError', 'CoreCrashedError', 'PROT_READ', 'MAP_PRIVATE']) {
      expect(pkg, name).toHaveProperty(name);
    }
    const mmu = await pkg.createMmu({ ramBytes: 4 * MiB });
    expect(mmu.stats().freeFrames).toBe(1023);
    await expect(pkg.createMmu({ ramBytes: 1 })).rejects.toThrow(RangeError);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it("a fresh Node process can import('wasm-mmu') by its package name (exports map, ESM)", () => {
    const script = `
      const m = await import('wasm-mmu');
      const mmu = await m.createMmu({ ramBytes: 2 * 1024 * 1024 });
      let err = '';
      try { mmu.phys.free(0, 0); } catch (e) { err = e instanceof m.LinuxError ? e.code : String(e); }
      console.log(JSON.stringify({ free: mmu.phys.freeFrames, inv: mmu.checkInvariants(), err, prot: m.PROT_READ }));
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ free: 511, inv: [], err: 'EINVAL', prot: 1 });
  });
});
