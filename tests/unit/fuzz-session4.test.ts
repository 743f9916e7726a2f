// Issue 14, session 4: conformance:fuzz covers mlockall (every MCL_* combination), munlockall,
// fsync and the prots x / wx, drawn from a second random stream so that the cases of older
// runs (`--no-extra-ops`) stay exactly what FUZZ-FINDINGS.md cites; and the two emulator
// fixes the new ops exposed (scenarios mlockall-populate-skips-failing-vma and
// mlockall-future-onfault-fork, golden results in every dir).
import { createHash } from 'node:crypto';
import { describe, it, expect } from 'vitest';
import {
  createMmu, MemoryFile, PAGE_SIZE, PROT_NONE, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS,
  MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT,
} from '../../src/index.js';
import { generateCase, generateScenario } from '../conformance/lib/fuzz-gen.mjs';
import { OPS } from '../conformance/lib/scenario.mjs';

const PG = PAGE_SIZE;
const RW = PROT_READ | PROT_WRITE;
const EXTRA_OPS = ['mlockall', 'munlockall', 'fsync'];
type RawStep = { op: string; prot?: string; flags?: string; [k: string]: unknown };
type Raw = { steps: RawStep[]; [k: string]: unknown };

describe('fuzz generator, session 4 (issue 14): extra ops from a second stream', () => {
  it('same seed and index, same case (with the extra ops); every case is valid', () => {
    for (let i = 0; i < 400; i++) expect(() => generateCase(41, i), `case 41:${i}`).not.toThrow();
    expect(generateScenario(41, 7)).toEqual(generateScenario(41, 7));
    expect(generateScenario(41, 7, { extraOps: false })).toEqual(generateScenario(41, 7, { extraOps: false }));
  });

  it('--no-extra-ops gives the pre-session-4 cases: seed 1260569904 (FUZZ-FINDINGS session 4) cases 0-299 hash as before', () => {
    // Digest of generateScenario(1260569904, 0..299) by the generator of main 19d6f53 (before
    // the second stream): a finding's seed and case must keep naming the same scenario.
    const h = createHash('sha256');
    for (let i = 0; i < 300; i++) h.update(JSON.stringify(generateScenario(1260569904, i, { extraOps: false })));
    expect(h.digest('hex').slice(0, 16)).toBe('be0fcc8b1237e819');
  });

  it('the extra stream only adds steps and swaps prots: without them a case is its --no-extra-ops case', () => {
    let added = 0, swapped = 0;
    for (let i = 0; i < 300; i++) {
      const withX = generateScenario(91141345, i) as Raw;
      const without = generateScenario(91141345, i, { extraOps: false }) as Raw;
      const kept = withX.steps.filter((st) => !EXTRA_OPS.includes(st.op));
      added += withX.steps.length - kept.length;
      expect(kept.length, `case ${i}`).toBe(without.steps.length);
      kept.forEach((st, j) => {
        const old = without.steps[j];
        if (st.prot !== old.prot) {
          expect(['x', 'wx'], `case ${i} step ${j}`).toContain(st.prot);
          swapped++;
        }
        expect({ ...st, prot: undefined }, `case ${i} step ${j}`).toEqual({ ...old, prot: undefined });
      });
      expect({ ...withX, steps: null }).toEqual({ ...without, steps: null });
    }
    expect(added).toBeGreaterThan(50);
    expect(swapped).toBeGreaterThan(10);
  });

  it('the new ops, every mlockall flag set and the prots x and wx appear; none with --no-extra-ops', () => {
    const ops = new Set<string>(), mcl = new Set<string>(), prots = new Set<string>();
    const old = new Set<string>();
    for (let i = 0; i < 1500; i++) {
      const { norm } = generateCase(11, i);
      for (const st of norm.steps) {
        ops.add(st.op);
        if (st.op === 'mlockall') mcl.add(st.flags);
        if (st.op === 'mmap' || st.op === 'mprotect') prots.add(`${st.op}:${st.prot}`);
      }
      for (const st of generateCase(11, i, { extraOps: false }).norm.steps) {
        old.add(st.op);
        if (st.prot === 'x' || st.prot === 'wx') old.add(st.prot);
      }
    }
    expect(EXTRA_OPS.filter((o) => !OPS.includes(o))).toEqual([]);
    expect(EXTRA_OPS.filter((o) => !ops.has(o))).toEqual([]);
    expect([...mcl].sort()).toEqual(['current', 'current|future', 'current|future|onfault', 'current|onfault', 'future', 'future|onfault', 'onfault']);
    expect(['mmap:x', 'mmap:wx', 'mprotect:x', 'mprotect:wx'].filter((p) => !prots.has(p))).toEqual([]);
    expect([...old].filter((o) => EXTRA_OPS.includes(o) || o === 'x' || o === 'wx')).toEqual([]);
  });
});

describe('mlockall fixes the new ops exposed (issue 14, session 4)', () => {
  it('R8.7 R9.4 mlockall(MCL_CURRENT) populates with errors ignored: a PROT_NONE VMA and pages past EOF are skipped, the VMA after them is populated (mlockall-populate-skips-failing-vma)', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const mm = mmu.createAddressSpace();
    const file = mmu.openFile(new MemoryFile(new Uint8Array(2 * PG).fill(0x81)));
    file.prime(0, 2);
    const base = 0x4000_0000;
    const a = mm.mmap({ addr: base, length: 4 * PG, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    const b = mm.mmap({ addr: base + 0x10_0000, length: 2 * PG, prot: PROT_NONE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    const c = mm.mmap({ addr: base + 0x20_0000, length: 4 * PG, prot: PROT_READ, flags: MAP_PRIVATE, file });
    const d = mm.mmap({ addr: base + 0x30_0000, length: 3 * PG, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS });
    mm.mlockall(MCL_CURRENT); // no error: mlockall ignores populate errors
    const present = (va: number, n: number) => mm.pagemap(va, n).map((e) => (e.present ? 1 : 0)).join('');
    const locked = (va: number, n: number) => mm.pagemap(va, n).map((e) => (e.mlocked ? 1 : 0)).join('');
    expect([present(a, 4), present(b, 2), present(c, 4), present(d, 3)]).toEqual(['1111', '00', '1100', '111']);
    expect([locked(a, 4), locked(c, 4), locked(d, 3)]).toEqual(['1111', '1100', '111']);
    expect(mm.status().vmLck).toBe((4 + 2 + 4 + 3) * PG); // every VMA is locked, PROT_NONE included
    expect(mmu.checkInvariants()).toEqual([]);
    mm.munlockall();
    expect([present(a, 4), present(c, 4), present(d, 3)]).toEqual(['1111', '1100', '111']);
    expect(mm.status().vmLck).toBe(0);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R8.7 R8.4 under mlockall(MCL_FUTURE | MCL_ONFAULT) an fs-DAX mapping is populated and not locked; an anonymous one is locked on fault only (mlockall-future-onfault-fork)', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const mm = mmu.createAddressSpace();
    const bytes = new Uint8Array(8 * PG);
    for (let i = 0; i < 8; i++) bytes.fill(0x80 | i, i * PG, (i + 1) * PG);
    const dax = mmu.createXipFile(bytes, { fsDax: true });
    mm.mlockall(MCL_FUTURE | MCL_ONFAULT);
    const r0 = mm.rusage();
    const a = mm.mmap({ length: 8 * PG, prot: PROT_READ, flags: MAP_SHARED, file: dax });
    const r1 = mm.rusage();
    expect(mm.pagemap(a, 8).every((e) => e.present)).toBe(true); // populated: one fault per page
    expect(r1.minflt - r0.minflt + r1.majflt - r0.majflt).toBe(8);
    expect(mm.status().vmLck).toBe(0); // f_op->mmap dropped the lock flags of the DAX VMA
    const b = mm.mmap({ length: 4 * PG, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    expect(mm.pagemap(b, 4).some((e) => e.present)).toBe(false); // LOCKONFAULT: not populated
    expect(mm.status().vmLck).toBe(4 * PG);
    mm.write(b, Uint8Array.of(1));
    expect(mm.pagemap(b, 1)[0].mlocked).toBe(true);
    expect(mmu.checkInvariants()).toEqual([]);
    // MCL_FUTURE alone (no ONFAULT): populated too, and still not locked.
    mm.munlockall();
    mm.mlockall(MCL_FUTURE);
    const a2 = mm.mmap({ length: 8 * PG, prot: PROT_READ, flags: MAP_SHARED, file: dax });
    expect(mm.pagemap(a2, 8).every((e) => e.present && !e.mlocked)).toBe(true);
    expect(mm.status().vmLck).toBe(0); // munlockall unlocked b; the DAX VMA is never locked
    expect(mmu.checkInvariants()).toEqual([]);
  });
});
