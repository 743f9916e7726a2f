// The hardware walker (assembly/mmu.ts) against the SDM's rules (Intel SDM vol. 3A, ch. 4:
// 4.5 4-level paging, 4.6 access rights, 4.7 page-fault exceptions, 4.8 accessed and
// dirty flags). Every expected answer is computed here, in the test, from those rules.
import { describe, it, expect, beforeAll } from 'vitest';
import { createMmu, type Mmu, type WalkResult } from '../../src/index.js';
import {
  PageTables, P, RW, US, PWT, PCD, A, D, PS, G, NX, PAT_LARGE, ADDR_MASK, PAGE, SIZE_2M, SIZE_1G,
  leafSize, rng, type Path,
} from '../helpers/pagetables.js';

type Access = 'read' | 'write' | 'exec';
interface Mode { user: boolean; wp: boolean; nxe: boolean }
type Expect = { ok: true; pa: number; level: 1 | 2 | 3; writable: boolean; user: boolean; exec: boolean } |
  { ok: false; errorCode: number };

const ACCESSES: Access[] = ['read', 'write', 'exec'];
const MODES: Mode[] = [];
for (const user of [false, true]) for (const wp of [false, true]) for (const nxe of [false, true]) MODES.push({ user, wp, nxe });

// #PF error code bits (SDM 4.7).
const PF_P = 1, PF_W = 2, PF_U = 4, PF_RSVD = 8, PF_I = 16;
const PHYS_RSVD = 0x000f_ff00_0000_0000n; // bits 40..51 with MAXPHYADDR = 40
const RSVD_2M = 0x1f_e000n; // bits 13..20 of a 2 MiB PDE
const RSVD_1G = 0x3fff_e000n; // bits 13..29 of a 1 GiB PDPTE

// SDM 4.5: the reserved bits of a present entry at `level`.
function reserved(e: bigint, level: number, nxe: boolean): boolean {
  if ((e & PHYS_RSVD) !== 0n) return true; // physical-address bits >= MAXPHYADDR
  if ((e & NX) !== 0n && !nxe) return true; // XD is reserved when EFER.NXE = 0
  if (level === 4 && (e & PS) !== 0n) return true; // PS is reserved in a PML4E
  if (level === 3 && (e & PS) !== 0n && (e & RSVD_1G) !== 0n) return true;
  if (level === 2 && (e & PS) !== 0n && (e & RSVD_2M) !== 0n) return true;
  return false;
}

/** The SDM's answer for a walk through `entries` (top first; the walk stops at the leaf). */
function sdm(entries: bigint[], va: number, access: Access, m: Mode): Expect {
  const code = (bits: number): Expect => ({
    ok: false,
    errorCode: bits | (access === 'write' ? PF_W : 0) | (m.user ? PF_U : 0) |
      (access === 'exec' && m.nxe ? PF_I : 0), // I only for an instruction fetch with NXE
  });
  let rw = true, us = true, nx = false;
  let leaf = 0n, leafLevel = 0;
  for (let i = 0; i < entries.length; i++) {
    const level = 4 - i, e = entries[i];
    if ((e & P) === 0n) return code(0); // not present: P clear
    if (reserved(e, level, m.nxe)) return code(PF_P | PF_RSVD);
    rw &&= (e & RW) !== 0n; // effective R/W: AND over levels (4.6)
    us &&= (e & US) !== 0n; // effective U/S: AND
    nx ||= (e & NX) !== 0n; // effective XD: OR
    if (level === 1 || (e & PS) !== 0n) { leaf = e; leafLevel = level; break; }
  }
  if (leafLevel === 0) throw new Error('test bug: path without a leaf');
  if (m.user && !us) return code(PF_P);
  if (access === 'write' && !rw && (m.user || m.wp)) return code(PF_P);
  if (access === 'exec' && m.nxe && nx) return code(PF_P);
  const size = leafSize(leafLevel as 1 | 2 | 3);
  const base = Number(leaf & ADDR_MASK) - (Number(leaf & ADDR_MASK) % size);
  return { ok: true, pa: base + (va % size), level: leafLevel as 1 | 2 | 3, writable: rw, user: us, exec: !(nx && m.nxe) };
}

/** SDM 4.8: after a walk, A on every entry used and D on the leaf of a write, or nothing. */
function afterWalk(before: bigint[], exp: Expect, access: Access, peek: boolean): bigint[] {
  if (!exp.ok || peek) return before;
  return before.map((e, i) => e | A | (i === before.length - 1 && access === 'write' ? D : 0n));
}

function sameResult(got: WalkResult, exp: Expect, leafAfter: bigint): boolean {
  if (!exp.ok) return !got.ok && got.errorCode === exp.errorCode;
  return got.ok && got.pa === exp.pa && got.level === exp.level && got.writable === exp.writable &&
    got.user === exp.user && got.exec === exp.exec && got.dirty === ((leafAfter & D) !== 0n);
}

const describeCase = (perms: number[], access: Access, m: Mode, peek = false) =>
  `perms(US|RW<<1|NX<<2 per level, top first)=${perms.join(',')} ${access} user=${m.user} wp=${m.wp} nxe=${m.nxe} peek=${peek}`;

let mmu: Mmu;
let pt: PageTables;

beforeAll(async () => {
  mmu = await createMmu({ ramBytes: 8 * 1024 * 1024, tlbEntries: 64 });
  pt = new PageTables(mmu);
});

describe('walker: access rights combined across the 4 levels (SDM 4.6, 4.7)', () => {
  const VA = 0x7f12_3456_7abc;
  let root: number, path: Path, data: number;
  beforeAll(() => {
    root = pt.root();
    data = pt.frame();
    path = pt.map(root, VA, { pa: data * PAGE });
  });

  // perm bits per level: 1 = US, 2 = RW, 4 = NX.
  const entryBits = (p: number): bigint => P | ((p & 1) ? US : 0n) | ((p & 2) ? RW : 0n) | ((p & 4) ? NX : 0n);
  const entriesFor = (perms: number[]): bigint[] =>
    perms.map((p, i) => PageTables.entry(i < 3 ? path.tables[i + 1] * PAGE : data * PAGE, entryBits(p)));

  /** Run every access x user x WP x NXE for one permission assignment; returns mismatches. */
  function runAll(perms: number[], failures: string[], peekToo = false): number {
    const entries = entriesFor(perms);
    let n = 0;
    for (const access of ACCESSES) {
      for (const m of MODES) {
        for (const peek of peekToo ? [false, true] : [false]) {
          path.slots.forEach((s, i) => pt.write(s, entries[i]));
          const got = mmu.walk(root, VA, access, { ...m, peek });
          const exp = sdm(entries, VA, access, m);
          const after = pt.entries(path);
          const wantAfter = afterWalk(entries, exp, access, peek);
          if (!sameResult(got, exp, after[3]) || after.some((e, i) => e !== wantAfter[i])) {
            failures.push(`${describeCase(perms, access, m, peek)}: got ${JSON.stringify(got)} ` +
              `entries ${after.map((e) => e.toString(16))}, want ${JSON.stringify(exp)} entries ${wantAfter.map((e) => e.toString(16))}`);
          }
          n++;
        }
      }
    }
    return n;
  }

  it('uniform permissions and every case where exactly one level differs (RW AND, US AND, NX OR; 4.6)', () => {
    const failures: string[] = [];
    let cases = 0;
    for (let base = 0; base < 8; base++) {
      cases += runAll([base, base, base, base], failures, true);
      for (let odd = 0; odd < 8; odd++) {
        if (odd === base) continue;
        for (let lvl = 0; lvl < 4; lvl++) {
          const perms = [base, base, base, base];
          perms[lvl] = odd;
          cases += runAll(perms, failures, true);
        }
      }
    }
    expect(cases).toBe((8 + 8 * 7 * 4) * 3 * 8 * 2);
    expect(failures.slice(0, 5)).toEqual([]);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('all 4096 US/RW/NX assignments of the 4 levels x read/write/exec x user/supervisor x CR0.WP x EFER.NXE', () => {
    const failures: string[] = [];
    let cases = 0;
    for (let c = 0; c < 4096; c++) {
      cases += runAll([c & 7, (c >> 3) & 7, (c >> 6) & 7, (c >> 9) & 7], failures);
    }
    expect(cases).toBe(4096 * 24);
    expect(failures.slice(0, 5)).toEqual([]);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('spot checks of the rules, written out (4.6.1: supervisor writes honour CR0.WP; U/S; XD)', () => {
    const set = (perms: number[]) => entriesFor(perms).forEach((e, i) => pt.write(path.slots[i], e));
    // Read-only at the PDPTE only: a user write faults P|W|U, a supervisor write with WP=0 succeeds.
    set([3, 1, 3, 3]);
    expect(mmu.walk(root, VA, 'write', { user: true })).toEqual({ ok: false, errorCode: PF_P | PF_W | PF_U });
    expect(mmu.walk(root, VA, 'write', { user: false, wp: true })).toEqual({ ok: false, errorCode: PF_P | PF_W });
    const w = mmu.walk(root, VA, 'write', { user: false, wp: false });
    expect(w).toMatchObject({ ok: true, pa: data * PAGE + (VA % PAGE), writable: false, dirty: true });
    // Supervisor-only at the PDE: user read faults P|U, supervisor read works.
    set([3, 3, 2, 3]);
    expect(mmu.walk(root, VA, 'read', { user: true })).toEqual({ ok: false, errorCode: PF_P | PF_U });
    expect(mmu.walk(root, VA, 'read', { user: false })).toMatchObject({ ok: true, user: false });
    // XD in the PML4E only: a user ifetch with NXE faults P|U|I; with NXE=0 XD is reserved.
    set([7, 3, 3, 3]);
    expect(mmu.walk(root, VA, 'exec', { user: true, nxe: true })).toEqual({ ok: false, errorCode: PF_P | PF_U | PF_I });
    expect(mmu.walk(root, VA, 'read', { user: true, nxe: true })).toMatchObject({ ok: true, exec: false });
    expect(mmu.walk(root, VA, 'exec', { user: true, nxe: false })).toEqual({ ok: false, errorCode: PF_P | PF_U | PF_RSVD });
    expect(mmu.walk(root, VA, 'read', { user: false, nxe: false })).toEqual({ ok: false, errorCode: PF_P | PF_RSVD });
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('walker: random paths, leaves and bits from a seeded loop (SDM 4.5-4.8)', () => {
  it('5000 random cases (any VA, 4K/2M/1G leaves, reserved and not-present entries, peek) match the SDM', () => {
    const r = rng(0x5eed);
    const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)];
    const root = pt.root();
    const pdpt = pt.table(), pd = pt.table(), ptab = pt.table();
    const tableAt = [pdpt, pd, ptab]; // the table each upper level points at
    const ignored = [1n << 9n, 1n << 10n, 1n << 11n, 1n << 52n, 1n << 55n, 1n << 58n]; // available to software
    const failures: string[] = [];
    const walks0 = mmu.stats().walks;
    let counted = 0;
    const seen = { ok: 0, notPresent: 0, rsvd: 0, prot: 0, l1: 0, l2: 0, l3: 0 };
    for (let n = 0; n < 5000; n++) {
      const va = Math.floor(r() * 2 ** 48);
      const leafLevel = pick([1, 1, 2, 3] as const);
      const size = leafSize(leafLevel);
      const depth = 5 - leafLevel; // entries on the path
      const entries: bigint[] = [];
      for (let i = 0; i < depth; i++) {
        const level = 4 - i;
        let e = P;
        if (r() < 0.85) e |= US;
        if (r() < 0.85) e |= RW;
        if (r() < 0.12) e |= NX;
        if (r() < 0.3) e |= A;
        if (r() < 0.2) e |= PWT | PCD;
        if (r() < 0.2) e |= pick(ignored);
        if (level === leafLevel) {
          if (leafLevel > 1) e |= PS;
          if (r() < 0.4) e |= D;
          if (r() < 0.2) e |= G;
          if (leafLevel === 1 && r() < 0.2) e |= PS; // bit 7 of a PTE is PAT, not PS
          if (leafLevel > 1 && r() < 0.2) e |= PAT_LARGE;
          const frames = 2 ** 40 / size;
          e |= BigInt(Math.floor(r() * frames) * size);
        } else {
          e |= BigInt(tableAt[i] * PAGE);
        }
        entries.push(e);
      }
      // Sometimes break one level: not present, or a reserved bit that fits that level.
      const lvlIdx = Math.floor(r() * depth);
      const level = 4 - lvlIdx;
      const roll = r();
      if (roll < 0.08) {
        entries[lvlIdx] &= ~P;
      } else if (roll < 0.16) {
        const choices: bigint[] = [1n << BigInt(40 + Math.floor(r() * 12))];
        if (level === 4) choices.push(PS);
        if (level === 3 && leafLevel === 3) choices.push(1n << BigInt(13 + Math.floor(r() * 17)));
        if (level === 2 && leafLevel === 2) choices.push(1n << BigInt(13 + Math.floor(r() * 8)));
        entries[lvlIdx] |= pick(choices);
      }
      const slots = entries.map((_, i) => pt.slot(i === 0 ? root : tableAt[i - 1], va, (4 - i) as 1 | 2 | 3 | 4));
      slots.forEach((s, i) => pt.write(s, entries[i]));
      const access = pick(ACCESSES);
      const m = pick(MODES);
      const peek = r() < 0.1;
      const got = mmu.walk(root, va, access, { ...m, peek });
      if (!peek) counted++;
      const exp = sdm(entries, va, access, m);
      const after = slots.map((s) => pt.read(s));
      const want = afterWalk(entries, exp, access, peek);
      if (!sameResult(got, exp, after[after.length - 1]) || after.some((e, i) => e !== want[i])) {
        failures.push(`#${n} va=0x${va.toString(16)} ${access} ${JSON.stringify(m)} peek=${peek} entries=` +
          `${entries.map((e) => e.toString(16))}: got ${JSON.stringify(got)} ${after.map((e) => e.toString(16))} ` +
          `want ${JSON.stringify(exp)} ${want.map((e) => e.toString(16))}`);
      }
      if (exp.ok) { seen.ok++; seen[`l${exp.level}` as 'l1']++; }
      else if ((exp.errorCode & PF_P) === 0) seen.notPresent++;
      else if (exp.errorCode & PF_RSVD) seen.rsvd++;
      else seen.prot++;
      slots.forEach((s) => pt.write(s, 0n)); // the tables are reused by the next case
    }
    expect(failures.slice(0, 5)).toEqual([]);
    // Every kind of outcome was exercised, and only non-peek walks were counted.
    for (const [k, v] of Object.entries(seen)) expect(v, k).toBeGreaterThan(100);
    expect(mmu.stats().walks - walks0).toBe(counted);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('walker: large leaves (SDM 4.5, tables 4-17 and 4-15)', () => {
  it('a 2 MiB PDE with PS maps base + VA bits 20..0; its PAT bit 12 is not an address bit', () => {
    const root = pt.root();
    const va = 0x0000_4000_0000 + 7 * SIZE_2M; // PDE index 7
    const base = 0x1234 * SIZE_2M; // above RAM: a leaf may map any physical address
    const path = pt.map(root, va, { level: 2, pa: base, leaf: P | RW | US | PAT_LARGE });
    for (const off of [0, 1, 0xfff, 0x1000, 0x12345, SIZE_2M - 1]) {
      expect(mmu.walk(root, va + off, 'read')).toMatchObject({ ok: true, pa: base + off, level: 2 });
    }
    expect(path.slots).toHaveLength(3);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('a 1 GiB PDPTE with PS maps base + VA bits 29..0', () => {
    const root = pt.root();
    const va = 0x7f80_0000_0000 + 3 * SIZE_1G;
    const base = 513 * SIZE_1G;
    pt.map(root, va, { level: 3, pa: base, leaf: P | RW | US | PAT_LARGE });
    for (const off of [0, 0xabc, SIZE_2M + 5, 0x2345_6789, SIZE_1G - 1]) {
      expect(mmu.walk(root, va + off, 'write')).toMatchObject({ ok: true, pa: base + off, level: 3, dirty: true });
    }
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('reserved bits 13..20 of a 2 MiB PDE each give a RSVD fault (P|RSVD, plus W/U/I)', () => {
    const root = pt.root();
    const va = 0x2000_0000;
    const path = pt.map(root, va, { level: 2, pa: 5 * SIZE_2M });
    const leaf = pt.read(path.slots[2]);
    for (let bit = 13n; bit <= 20n; bit++) {
      pt.write(path.slots[2], leaf | (1n << bit));
      expect(mmu.walk(root, va, 'read'), `bit ${bit}`).toEqual({ ok: false, errorCode: PF_P | PF_U | PF_RSVD });
      expect(mmu.walk(root, va, 'write', { user: false })).toEqual({ ok: false, errorCode: PF_P | PF_W | PF_RSVD });
      expect(mmu.walk(root, va, 'exec')).toEqual({ ok: false, errorCode: PF_P | PF_U | PF_RSVD | PF_I });
      expect(pt.read(path.slots[2])).toBe(leaf | (1n << bit)); // nothing set by a failing walk
    }
    pt.write(path.slots[2], leaf | PAT_LARGE); // bit 12 is PAT: allowed
    expect(mmu.walk(root, va + 0x1234, 'read')).toMatchObject({ ok: true, pa: 5 * SIZE_2M + 0x1234 });
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('reserved bits 13..29 of a 1 GiB PDPTE each give a RSVD fault', () => {
    const root = pt.root();
    const va = 5 * SIZE_1G;
    const path = pt.map(root, va, { level: 3, pa: 2 * SIZE_1G });
    const leaf = pt.read(path.slots[1]);
    for (let bit = 13n; bit <= 29n; bit++) {
      pt.write(path.slots[1], leaf | (1n << bit));
      expect(mmu.walk(root, va, 'read'), `bit ${bit}`).toEqual({ ok: false, errorCode: PF_P | PF_U | PF_RSVD });
    }
    pt.write(path.slots[1], leaf | PAT_LARGE);
    expect(mmu.walk(root, va + 0x3000_0001, 'read')).toMatchObject({ ok: true, pa: 2 * SIZE_1G + 0x3000_0001, level: 3 });
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('PS in a PML4E is reserved (RSVD); bit 7 of a 4 KiB PTE is PAT and does not end the walk early', () => {
    const root = pt.root();
    const va = 0x1234_5000;
    const { slots, pfn } = pt.mapNew(root, va);
    pt.setBits(slots[0], PS);
    expect(mmu.walk(root, va, 'read')).toEqual({ ok: false, errorCode: PF_P | PF_U | PF_RSVD });
    expect(mmu.walk(root, va, 'read', { user: false })).toEqual({ ok: false, errorCode: PF_P | PF_RSVD });
    pt.clearBits(slots[0], PS);
    pt.setBits(slots[3], PS);
    expect(mmu.walk(root, va + 8, 'read')).toMatchObject({ ok: true, pa: pfn * PAGE + 8, level: 1 });
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('physical-address bits 40..51 (>= MAXPHYADDR) at any level are reserved; bits 52..58 and 9..11 are ignored', () => {
    const root = pt.root();
    const layouts: Array<{ level: 1 | 2 | 3; va: number; pa: number }> = [
      { level: 1, va: 0x10_0000_0000, pa: 0 },
      { level: 2, va: 0x20_0000_0000, pa: 9 * SIZE_2M },
      { level: 3, va: 0x30_0000_0000, pa: 3 * SIZE_1G },
    ];
    for (const l of layouts) {
      const pa = l.level === 1 ? pt.frame() * PAGE : l.pa;
      const path = pt.map(root, l.va, { level: l.level, pa });
      for (let i = 0; i < path.slots.length; i++) {
        const e = pt.read(path.slots[i]);
        for (let bit = 40n; bit <= 51n; bit++) {
          pt.write(path.slots[i], e | (1n << bit));
          expect(mmu.walk(root, l.va, 'write'), `leaf ${l.level} entry ${i} bit ${bit}`)
            .toEqual({ ok: false, errorCode: PF_P | PF_W | PF_U | PF_RSVD });
        }
        for (const bit of [9n, 10n, 11n, 52n, 53n, 58n]) {
          pt.write(path.slots[i], e | (1n << bit));
          expect(mmu.walk(root, l.va + 0x18, 'read', { peek: true }), `leaf ${l.level} entry ${i} bit ${bit}`)
            .toMatchObject({ ok: true, pa: pa + 0x18 });
        }
        pt.write(path.slots[i], e);
      }
    }
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('walker: not-present entries (SDM 4.7: error code without P)', () => {
  it('a clear P at each level faults with P=0, W/U/I from the access, and sets no bit', () => {
    for (const leafLevel of [1, 2, 3] as const) {
      const root = pt.root();
      const va = 0x7000_0000_0000 + 0x1000 * 77;
      const path = pt.map(root, va, { level: leafLevel, pa: leafLevel === 1 ? pt.frame() * PAGE : leafSize(leafLevel) });
      for (let i = 0; i < path.slots.length; i++) {
        const before = pt.entries(path);
        pt.clearBits(path.slots[i], P);
        const cleared = pt.entries(path);
        for (const access of ACCESSES) {
          for (const m of MODES) {
            const want = (access === 'write' ? PF_W : 0) | (m.user ? PF_U : 0) | (access === 'exec' && m.nxe ? PF_I : 0);
            expect(mmu.walk(root, va, access, m), `leaf ${leafLevel} level ${4 - i} ${access} ${JSON.stringify(m)}`)
              .toEqual({ ok: false, errorCode: want });
            expect(pt.entries(path)).toEqual(cleared);
          }
        }
        pt.write(path.slots[i], before[i]);
      }
      // An entirely empty PML4 slot too.
      expect(mmu.walk(root, va + 2 ** 39, 'read')).toEqual({ ok: false, errorCode: PF_U });
    }
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('a table pointer outside RAM reads as a reserved-bit fault (documented in assembly/mmu.ts)', () => {
    const root = pt.root();
    const va = 0x4000;
    const path = pt.map(root, va, { pa: 0 });
    pt.write(path.slots[1], PageTables.entry(mmu.phys.size + 5 * PAGE, P | RW | US));
    expect(mmu.walk(root, va, 'read')).toEqual({ ok: false, errorCode: PF_P | PF_U | PF_RSVD });
    expect(mmu.walk(mmu.phys.frames + 1, va, 'read', { user: false })).toEqual({ ok: false, errorCode: PF_P | PF_RSVD });
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('walker: accessed and dirty flags (SDM 4.8)', () => {
  const cases = [
    { name: '4 KiB', level: 1 as const, va: 0x5555_0000_1000 },
    { name: '2 MiB', level: 2 as const, va: 0x5555_4000_0000 },
    { name: '1 GiB', level: 3 as const, va: 0x5556_0000_0000 },
  ];

  for (const c of cases) {
    it(`${c.name} leaf: a read sets A at every level used and no D; a write sets D on the leaf only`, () => {
      const root = pt.root();
      const pa = c.level === 1 ? pt.frame() * PAGE : 4 * leafSize(c.level);
      const path = pt.map(root, c.va, { level: c.level, pa });
      const clean = pt.entries(path);
      expect(clean.every((e) => (e & (A | D)) === 0n)).toBe(true);

      expect(mmu.walk(root, c.va, 'read')).toMatchObject({ ok: true, dirty: false });
      expect(pt.entries(path)).toEqual(clean.map((e) => e | A));

      path.slots.forEach((s, i) => pt.write(s, clean[i]));
      expect(mmu.walk(root, c.va + 0x10, 'write')).toMatchObject({ ok: true, pa: pa + 0x10, dirty: true });
      const after = pt.entries(path);
      expect(after).toEqual(clean.map((e, i) => e | A | (i === clean.length - 1 ? D : 0n)));
      expect(mmu.checkInvariants()).toEqual([]);
    });
  }

  it('a failing walk changes no bit: protection, reserved bit, or a not-present leaf', () => {
    const root = pt.root();
    const va = 0x6000_0000_0000;
    const path = pt.map(root, va, { pa: pt.frame() * PAGE, leaf: P | US }); // read-only leaf
    const before = pt.entries(path);
    expect(mmu.walk(root, va, 'write')).toEqual({ ok: false, errorCode: PF_P | PF_W | PF_U });
    expect(pt.entries(path)).toEqual(before);

    pt.write(path.slots[2], before[2] & ~US); // supervisor-only PDE
    const sup = pt.entries(path);
    expect(mmu.walk(root, va, 'read')).toEqual({ ok: false, errorCode: PF_P | PF_U });
    expect(pt.entries(path)).toEqual(sup);

    pt.write(path.slots[2], before[2]);
    pt.write(path.slots[3], before[3] | (1n << 45n)); // reserved bit in the leaf
    const rsvd = pt.entries(path);
    expect(mmu.walk(root, va, 'read')).toEqual({ ok: false, errorCode: PF_P | PF_U | PF_RSVD });
    expect(pt.entries(path)).toEqual(rsvd);

    pt.write(path.slots[3], 0n); // leaf missing: the upper levels are not marked accessed either
    const gone = pt.entries(path);
    expect(mmu.walk(root, va, 'read')).toEqual({ ok: false, errorCode: PF_U });
    expect(pt.entries(path)).toEqual(gone);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('peek: true changes no bit and counts no walk, yet reports the translation', () => {
    const root = pt.root();
    const va = 0x6100_0000_0000;
    const path = pt.map(root, va, { pa: pt.frame() * PAGE });
    const before = pt.entries(path);
    const walks = mmu.stats().walks;
    for (const access of ACCESSES) {
      expect(mmu.walk(root, va + 1, access, { peek: true })).toMatchObject({ ok: true, dirty: false });
    }
    expect(pt.entries(path)).toEqual(before);
    expect(mmu.stats().walks).toBe(walks);
    expect(mmu.walk(root, va, 'write')).toMatchObject({ ok: true, dirty: true });
    expect(mmu.stats().walks).toBe(walks + 1);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('A and D already set stay set; a write through a read-only leaf with CR0.WP=0 sets D (4.6.1, 4.8)', () => {
    const root = pt.root();
    const va = 0x6200_0000_0000;
    const path = pt.map(root, va, { pa: pt.frame() * PAGE, leaf: P | US | A | D });
    expect(mmu.walk(root, va, 'read')).toMatchObject({ ok: true, dirty: true });
    expect(pt.read(path.slots[3]) & (A | D)).toBe(A | D);
    pt.clearBits(path.slots[3], D);
    expect(mmu.walk(root, va, 'write', { user: false, wp: false })).toMatchObject({ ok: true, writable: false, dirty: true });
    expect(pt.read(path.slots[3]) & D).toBe(D);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('walker: argument checks (DESIGN: 48-bit VAs, RangeError for bad arguments)', () => {
  it('a VA outside [0, 2^48), a bad access kind or a bad CR3 is a RangeError', () => {
    expect(() => mmu.walk(1, 2 ** 48, 'read')).toThrow(RangeError);
    expect(() => mmu.walk(1, -4096, 'read')).toThrow(RangeError);
    expect(() => mmu.walk(1, 0.5, 'read')).toThrow(RangeError);
    expect(() => mmu.walk(1, 0, 'fetch' as never)).toThrow(/access must be/);
    expect(() => mmu.walk(-1, 0, 'read')).toThrow(/cr3Pfn/);
  });

  it('the builder gives every frame back: free frames return to where they started', () => {
    const free0 = mmu.stats().freeFrames;
    const used = pt.frames.length;
    expect(used).toBeGreaterThan(0);
    pt.release();
    expect(mmu.stats().freeFrames).toBe(free0 + used);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});
