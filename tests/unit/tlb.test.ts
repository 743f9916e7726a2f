// The software TLB (assembly/tlb.ts, translate in assembly/mmu.ts) and its JS fast path
// (src/tlb-view.ts). Rules: a hit needs the tag for the access kind and, for a user access,
// a user entry; a write tag exists only while the leaf is writable and dirty (so the first
// write walks and sets D, SDM 4.8); entries die only by an explicit flush (SDM 4.10.4:
// the TLB may keep a translation after the paging structures change, until INVLPG /
// a CR3 write / INVPCID); entries are tagged by ASID (PCID, SDM 4.10.1).
import { describe, it, expect, beforeEach } from 'vitest';
import { createMmu, type Mmu } from '../../src/index.js';
import { PageTables, P, RW, US, D, NX, PAGE, SIZE_2M } from '../helpers/pagetables.js';

const PF_P = 1, PF_W = 2, PF_U = 4, PF_I = 16;
const R = 0, W = 1, X = 2; // access codes of TlbView.lookup

let mmu: Mmu;
let pt: PageTables;
const ENTRIES = 64;

beforeEach(async () => {
  mmu = await createMmu({ ramBytes: 8 * 1024 * 1024, tlbEntries: ENTRIES });
  pt = new PageTables(mmu);
});

const delta = (before: Record<string, number>, keys: string[]) => {
  const now = mmu.stats() as unknown as Record<string, number>;
  return Object.fromEntries(keys.map((k) => [k, now[k] - before[k]]));
};
const snap = () => ({ ...(mmu.stats() as unknown as Record<string, number>) });
const HM = ['tlbHits', 'tlbMisses', 'walks'];

describe('TLB: fills and hits (SDM 4.10.2: entries cache a walk\'s result and its access rights)', () => {
  it('a miss walks and fills; the next access hits (exactly one miss, then one hit)', () => {
    const root = pt.root();
    const va = 0x4000_0000_3000;
    const { pfn } = pt.mapNew(root, va);
    const asid = 1;
    expect(mmu.tlb.view.lookup(asid, va + 5, R)).toBe(-1);

    let s = snap();
    expect(mmu.tlb.translate(asid, root, va + 5, 'read')).toEqual({ ok: true, pa: pfn * PAGE + 5 });
    expect(delta(s, HM)).toEqual({ tlbHits: 0, tlbMisses: 1, walks: 1 });

    s = snap();
    expect(mmu.tlb.translate(asid, root, va + 0xabc, 'read')).toEqual({ ok: true, pa: pfn * PAGE + 0xabc });
    expect(delta(s, HM)).toEqual({ tlbHits: 1, tlbMisses: 0, walks: 0 });

    // The JS fast path sees the same entry without calling into Wasm.
    expect(mmu.tlb.view.lookup(asid, va + 0xfff, R)).toBe(pfn * PAGE + 0xfff);
    expect(mmu.tlb.view.lookup(asid, va + PAGE, R)).toBe(-1); // the next page was never filled
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('a write through an entry filled by a read misses, walks again and sets D in the PTE (SDM 4.8)', () => {
    const root = pt.root();
    const va = 0x1000_0000;
    const { pfn, slots } = pt.mapNew(root, va); // writable, clean
    mmu.tlb.translate(2, root, va, 'read');
    expect(pt.read(slots[3]) & D).toBe(0n);
    expect(mmu.tlb.view.lookup(2, va, R)).toBe(pfn * PAGE);
    expect(mmu.tlb.view.lookup(2, va, W)).toBe(-1); // no write tag for a clean leaf

    let s = snap();
    expect(mmu.tlb.translate(2, root, va + 8, 'write')).toEqual({ ok: true, pa: pfn * PAGE + 8 });
    expect(delta(s, HM)).toEqual({ tlbHits: 0, tlbMisses: 1, walks: 1 });
    expect(pt.read(slots[3]) & D).toBe(D);
    expect(mmu.tlb.view.lookup(2, va + 8, W)).toBe(pfn * PAGE + 8);

    s = snap();
    mmu.tlb.translate(2, root, va + 16, 'write');
    expect(delta(s, HM)).toEqual({ tlbHits: 1, tlbMisses: 0, walks: 0 });
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('a write hit exists only once the leaf is writable and dirty (DESIGN: write tag = RW && D, SDM 4.8)', () => {
    const root = pt.root();
    const asid = 3;
    // Read-only leaf, even if dirty: a read fills, a write never hits and faults P|W|U.
    const ro = 0x2000_0000;
    const { pfn: roPfn } = pt.mapNew(root, ro, { leaf: P | US | D });
    mmu.tlb.translate(asid, root, ro, 'read');
    expect(mmu.tlb.view.lookup(asid, ro, W)).toBe(-1);
    expect(mmu.tlb.translate(asid, root, ro, 'write')).toEqual({ ok: false, errorCode: PF_P | PF_W | PF_U });
    expect(mmu.tlb.view.lookup(asid, ro, R)).toBe(roPfn * PAGE); // the fault did not drop the read entry
    // A supervisor write with CR0.WP=0 is allowed (SDM 4.6.1) but never enters a write tag.
    const s = snap();
    expect(mmu.tlb.translate(asid, root, ro, 'write', { user: false, wp: false })).toEqual({ ok: true, pa: roPfn * PAGE });
    expect(mmu.tlb.translate(asid, root, ro, 'write', { user: false, wp: false })).toEqual({ ok: true, pa: roPfn * PAGE });
    expect(delta(s, HM)).toEqual({ tlbHits: 0, tlbMisses: 2, walks: 2 });
    expect(mmu.tlb.view.lookup(asid, ro, W, false)).toBe(-1);

    // Writable at the leaf but read-only above it: not writable, no write tag.
    const upRo = 0x3000_0000;
    pt.mapNew(root, upRo, { leaf: P | RW | US | D, upper: [P | RW | US, P | US, P | RW | US] });
    mmu.tlb.translate(asid, root, upRo, 'read');
    expect(mmu.tlb.view.lookup(asid, upRo, W)).toBe(-1);

    // Writable and already dirty: a read fill carries the write tag at once.
    const wd = 0x4000_0000;
    const { pfn: wdPfn } = pt.mapNew(root, wd, { leaf: P | RW | US | D });
    mmu.tlb.translate(asid, root, wd, 'read');
    expect(mmu.tlb.view.lookup(asid, wd + 3, W)).toBe(wdPfn * PAGE + 3);
    const s2 = snap();
    mmu.tlb.translate(asid, root, wd + 3, 'write');
    expect(delta(s2, HM)).toEqual({ tlbHits: 1, tlbMisses: 0, walks: 0 });
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('exec tags follow XD (SDM 4.6): an NX page never gets one; an instruction fetch faults P|U|I', () => {
    const root = pt.root();
    const code = 0x40_0000, data = 0x60_1000; // different TLB slots
    const { pfn: codePfn } = pt.mapNew(root, code, { leaf: P | US });
    pt.mapNew(root, data, { leaf: P | RW | US | NX });
    mmu.tlb.translate(4, root, code, 'read');
    mmu.tlb.translate(4, root, data, 'read');
    expect(mmu.tlb.view.lookup(4, code, X)).toBe(codePfn * PAGE);
    expect(mmu.tlb.view.lookup(4, data, X)).toBe(-1);
    expect(mmu.tlb.translate(4, root, data, 'exec')).toEqual({ ok: false, errorCode: PF_P | PF_U | PF_I });
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('user lookups miss supervisor-only entries, U/S clear at the leaf or above it (SDM 4.6)', () => {
    const root = pt.root();
    const leafSup = 0x7000_0000, upperSup = 0x7020_0000;
    const { pfn: a } = pt.mapNew(root, leafSup, { leaf: P | RW });
    const { pfn: b } = pt.mapNew(root, upperSup, { upper: [P | RW | US, P | RW | US, P | RW] });
    for (const [va, pfn] of [[leafSup, a], [upperSup, b]]) {
      expect(mmu.tlb.translate(5, root, va, 'read', { user: false })).toEqual({ ok: true, pa: pfn * PAGE });
      expect(mmu.tlb.view.lookup(5, va, R, false)).toBe(pfn * PAGE);
      expect(mmu.tlb.view.lookup(5, va, R, true)).toBe(-1);
      const s = snap();
      expect(mmu.tlb.translate(5, root, va, 'read', { user: true })).toEqual({ ok: false, errorCode: PF_P | PF_U });
      expect(delta(s, HM)).toEqual({ tlbHits: 0, tlbMisses: 1, walks: 1 });
      // The supervisor entry is still there and still hits for the kernel.
      const s2 = snap();
      expect(mmu.tlb.translate(5, root, va, 'read', { user: false })).toEqual({ ok: true, pa: pfn * PAGE });
      expect(delta(s2, HM)).toEqual({ tlbHits: 1, tlbMisses: 0, walks: 0 });
    }
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('a 2 MiB leaf (SDM 4.10.2.3: any page size may be cached as smaller pages) is entered one 4 KiB page at a time, each with its own frame, marked large', () => {
    const root = pt.root();
    const va = 0x5540_0000;
    const base = 3 * SIZE_2M;
    pt.map(root, va, { level: 2, pa: base });
    expect(mmu.tlb.translate(6, root, va + 5 * PAGE + 7, 'read')).toEqual({ ok: true, pa: base + 5 * PAGE + 7 });
    expect(mmu.tlb.view.lookup(6, va + 5 * PAGE + 9, R)).toBe(base + 5 * PAGE + 9);
    expect(mmu.tlb.view.lookup(6, va + 6 * PAGE, R)).toBe(-1);
    const e = mmu.tlb.view.dump().find((x) => x.va === va + 5 * PAGE);
    expect(e).toMatchObject({ asid: 6, pfn: base / PAGE + 5, large: true, read: true, user: true });
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('TLB: stale entries live until flushed (SDM 4.10.4)', () => {
  it('after a PTE changes frame the old frame is still returned until flushPage, and invariants say so', () => {
    const root = pt.root();
    const va = 0x1234_5000;
    const asid = 7;
    const { pfn: oldPfn, slots } = pt.mapNew(root, va);
    const newPfn = pt.frame();
    expect(mmu.tlb.translate(asid, root, va + 1, 'read')).toEqual({ ok: true, pa: oldPfn * PAGE + 1 });

    pt.write(slots[3], PageTables.entry(newPfn * PAGE, P | RW | US));
    expect(mmu.tlb.translate(asid, root, va + 1, 'read')).toEqual({ ok: true, pa: oldPfn * PAGE + 1 });
    expect(mmu.tlb.view.lookup(asid, va + 1, R)).toBe(oldPfn * PAGE + 1);
    const broken = mmu.checkInvariants();
    expect(broken).toHaveLength(1);
    expect(broken[0]).toMatch(/TLB slot \d+ \(asid 7\) disagrees with the page tables/);

    const s = snap();
    mmu.tlb.flushPage(asid, va + 0x800);
    expect(delta(s, ['tlbFlushPage', 'tlbEntriesFlushed'])).toEqual({ tlbFlushPage: 1, tlbEntriesFlushed: 1 });
    expect(mmu.tlb.view.lookup(asid, va + 1, R)).toBe(-1);
    expect(mmu.checkInvariants()).toEqual([]);
    expect(mmu.tlb.translate(asid, root, va + 1, 'read')).toEqual({ ok: true, pa: newPfn * PAGE + 1 });
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('write-protecting or unmapping a PTE leaves a stale write entry until flushed; then a write faults', () => {
    const root = pt.root();
    const va = 0x2222_0000;
    const asid = 8;
    const { pfn, slots } = pt.mapNew(root, va);
    mmu.tlb.translate(asid, root, va, 'write');
    expect(mmu.tlb.view.lookup(asid, va, W)).toBe(pfn * PAGE);

    pt.clearBits(slots[3], RW); // like fork's or mprotect's write-protect
    expect(mmu.tlb.translate(asid, root, va, 'write')).toEqual({ ok: true, pa: pfn * PAGE }); // stale hit
    expect(mmu.checkInvariants()).toEqual([expect.stringMatching(/grants more permission than the page tables/)]);
    mmu.tlb.flushPage(asid, va);
    expect(mmu.checkInvariants()).toEqual([]);
    expect(mmu.tlb.translate(asid, root, va, 'write')).toEqual({ ok: false, errorCode: PF_P | PF_W | PF_U });
    expect(mmu.tlb.translate(asid, root, va, 'read')).toEqual({ ok: true, pa: pfn * PAGE });

    pt.write(slots[3], 0n); // zap
    expect(mmu.tlb.translate(asid, root, va, 'read')).toEqual({ ok: true, pa: pfn * PAGE }); // stale hit
    expect(mmu.checkInvariants()).toEqual([expect.stringMatching(/disagrees with the page tables/)]);
    mmu.tlb.flushRange(asid, va, PAGE);
    expect(mmu.tlb.translate(asid, root, va, 'read')).toEqual({ ok: false, errorCode: PF_U });
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('TLB: address-space tags (ASIDs, like PCIDs: SDM 4.10.1)', () => {
  it('one ASID never sees another ASID\'s entries, even at the same VA and TLB slot', () => {
    const rootA = pt.root(), rootB = pt.root();
    const va = 0x7fff_0000_0000;
    const { pfn: a } = pt.mapNew(rootA, va);
    const { pfn: b } = pt.mapNew(rootB, va);
    expect(mmu.tlb.translate(10, rootA, va, 'read')).toEqual({ ok: true, pa: a * PAGE });
    for (const acc of [R, W, X]) expect(mmu.tlb.view.lookup(11, va, acc)).toBe(-1);
    let s = snap();
    expect(mmu.tlb.translate(11, rootB, va, 'read')).toEqual({ ok: true, pa: b * PAGE });
    expect(delta(s, HM)).toEqual({ tlbHits: 0, tlbMisses: 1, walks: 1 });
    // Direct-mapped: B's fill replaced A's entry, and A does not get B's frame.
    expect(mmu.tlb.view.lookup(10, va, R)).toBe(-1);
    s = snap();
    expect(mmu.tlb.translate(10, rootA, va, 'read')).toEqual({ ok: true, pa: a * PAGE });
    expect(delta(s, HM)).toEqual({ tlbHits: 0, tlbMisses: 1, walks: 1 });
    // Flushing the page in one ASID leaves the other's entry.
    const va2 = va + PAGE;
    const { pfn: c } = pt.mapNew(rootB, va2);
    mmu.tlb.translate(11, rootB, va2, 'read');
    mmu.tlb.flushPage(10, va2);
    expect(mmu.tlb.view.lookup(11, va2, R)).toBe(c * PAGE);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('flushAsid drops every entry of that ASID and leaves other ASIDs intact', () => {
    const rootA = pt.root(), rootB = pt.root();
    const base = 0x10_0000_0000;
    const half = ENTRIES / 2;
    const pa: number[] = [];
    for (let i = 0; i < ENTRIES; i++) {
      const root = i < half ? rootA : rootB;
      pa.push(pt.mapNew(root, base + i * PAGE).pfn * PAGE);
      mmu.tlb.translate(i < half ? 20 : 21, root, base + i * PAGE, 'read');
    }
    const s = snap();
    mmu.tlb.flushAsid(20);
    expect(delta(s, ['tlbFlushAsid', 'tlbEntriesFlushed'])).toEqual({ tlbFlushAsid: 1, tlbEntriesFlushed: half });
    for (let i = 0; i < ENTRIES; i++) {
      const want = i < half ? -1 : pa[i];
      expect(mmu.tlb.view.lookup(i < half ? 20 : 21, base + i * PAGE, R), `page ${i}`).toBe(want);
    }
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('flushAll empties the TLB and counts what it dropped', () => {
    const root = pt.root();
    for (let i = 0; i < 10; i++) {
      pt.mapNew(root, 0x9000_0000 + i * PAGE);
      mmu.tlb.translate(30 + (i % 3), root, 0x9000_0000 + i * PAGE, 'read');
    }
    expect(mmu.tlb.view.dump()).toHaveLength(10);
    const s = snap();
    mmu.tlb.flushAll();
    expect(delta(s, ['tlbFlushAll', 'tlbEntriesFlushed'])).toEqual({ tlbFlushAll: 1, tlbEntriesFlushed: 10 });
    expect(mmu.tlb.view.dump()).toEqual([]);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('TLB: range flushes (Linux flush_tlb_range; SDM 4.10.4.1 INVLPG per page)', () => {
  function fill(asid: number, root: number, base: number, n: number): number[] {
    const pa: number[] = [];
    for (let i = 0; i < n; i++) {
      pa.push(pt.mapNew(root, base + i * PAGE).pfn * PAGE);
      mmu.tlb.translate(asid, root, base + i * PAGE, 'read');
    }
    return pa;
  }

  it('a range smaller than the TLB drops exactly its pages', () => {
    const root = pt.root();
    const base = 0x3000_0000;
    const pa = fill(1, root, base, 32);
    const s = snap();
    mmu.tlb.flushRange(1, base + 4 * PAGE + 100, 8 * PAGE); // pages 4..12 (the range is not page aligned)
    expect(delta(s, ['tlbFlushRange', 'tlbEntriesFlushed'])).toEqual({ tlbFlushRange: 1, tlbEntriesFlushed: 9 });
    for (let i = 0; i < 32; i++) {
      expect(mmu.tlb.view.lookup(1, base + i * PAGE, R), `page ${i}`).toBe(i >= 4 && i <= 12 ? -1 : pa[i]);
    }
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('a range over more pages than the TLB has drops its pages only, in this ASID only', () => {
    const rootA = pt.root(), rootB = pt.root();
    const base = 0x5000_0000;
    const half = ENTRIES / 2;
    const paA = fill(1, rootA, base, half); // slots 0..31
    const paB = fill(2, rootB, base + half * PAGE, half); // slots 32..63, same VA range
    const s = snap();
    mmu.tlb.flushRange(1, base + 8 * PAGE, 10 * ENTRIES * PAGE);
    expect(delta(s, ['tlbFlushRange', 'tlbEntriesFlushed'])).toEqual({ tlbFlushRange: 1, tlbEntriesFlushed: half - 8 });
    for (let i = 0; i < half; i++) {
      expect(mmu.tlb.view.lookup(1, base + i * PAGE, R), `A page ${i}`).toBe(i < 8 ? paA[i] : -1);
      expect(mmu.tlb.view.lookup(2, base + (half + i) * PAGE, R), `B page ${i}`).toBe(paB[i]);
    }
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('a range reaching the top of the 48-bit VA space never drops the next ASID\'s low pages', () => {
    const root = pt.root();
    const pa = fill(6, root, 0, 16); // ASID 6, VAs 0..16 pages: keys just above ASID 5's top
    const top = 2 ** 48;
    // Small range (per-page path) and large range (scan path), both running past 2^48.
    mmu.tlb.flushRange(5, top - 4 * PAGE, 16 * PAGE);
    mmu.tlb.flushRange(5, top - 8 * PAGE, 4 * ENTRIES * PAGE);
    mmu.tlb.flushRange(5, top - PAGE, 2 ** 40);
    for (let i = 0; i < 16; i++) expect(mmu.tlb.view.lookup(6, i * PAGE, R), `page ${i}`).toBe(pa[i]);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('TLB: the JS fast path agrees with the core (layout of assembly/tlb.ts)', () => {
  it('view.lookup returns what translate returns, for every access kind, over random pages', () => {
    const root = pt.root();
    let seed = 1;
    const rand = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31; };
    const vas: number[] = [];
    for (let i = 0; i < 48; i++) {
      const va = Math.floor(rand() * 2 ** 36) * PAGE;
      const leaf = P | (rand() < 0.8 ? US : 0n) | (rand() < 0.6 ? RW : 0n) | (rand() < 0.5 ? D : 0n) | (rand() < 0.3 ? NX : 0n);
      pt.mapNew(root, va, { leaf });
      vas.push(va);
    }
    let checked = 0;
    for (const va of vas) {
      for (const [name, code] of [['read', R], ['write', W], ['exec', X]] as const) {
        for (const user of [true, false]) {
          const off = Math.floor(rand() * PAGE);
          const r = mmu.tlb.translate(40, root, va + off, name, { user });
          const v = mmu.tlb.view.lookup(40, va + off, code, user);
          if (v !== -1) { expect(r).toEqual({ ok: true, pa: v }); checked++; }
          if (!r.ok) expect(v).toBe(-1);
        }
      }
    }
    expect(checked).toBeGreaterThan(50);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('argument checks: bad VA, ASID or access kind is a RangeError', () => {
    const root = pt.root();
    expect(() => mmu.tlb.translate(0, root, 2 ** 48, 'read')).toThrow(RangeError);
    expect(() => mmu.tlb.translate(4096, root, 0, 'read')).toThrow(/asid/);
    expect(() => mmu.tlb.translate(-1, root, 0, 'read')).toThrow(/asid/);
    expect(() => mmu.tlb.translate(0, root, 0, 'load' as never)).toThrow(/access must be/);
    expect(() => mmu.tlb.translate(0, -3, 0, 'read')).toThrow(RangeError);
    expect(() => mmu.tlb.flushPage(0, -1)).toThrow(RangeError);
  });
});
