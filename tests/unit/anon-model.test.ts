// A shadow model of private anonymous memory (LINUX-SPEC §4, §5, §9): random mmap, munmap,
// mprotect, MADV_DONTNEED / DONTFORK / WIPEONFORK, writes, reads, fork and exit across a
// few address spaces, checked against plain per-page byte arrays. What it asserts: every
// byte written reads back in the address space that wrote it and nowhere else (private
// stays private across fork, R5.7), DONTNEED and WIPEONFORK give zeros (R9.1, R5.5),
// accesses the protection forbids are SIGSEGV, and the core's invariants hold after
// every step. Seeded, so a failure replays; the log of the failing run is printed.
import { describe, it, expect } from 'vitest';
import {
  SegmentationFault, PROT_READ, PROT_WRITE, PROT_NONE, MADV_DONTNEED, MADV_DONTFORK,
  MADV_WIPEONFORK, MADV_DOFORK, MAP_FIXED, type AddressSpace,
} from '../../src/index.js';
import { machine, anon, PG } from './mm-helpers.js';

interface Page { prot: number; data: Uint8Array; dontfork: boolean; wipe: boolean }
interface Proc { mm: AddressSpace; pages: Map<number, Page> }

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32; };
}

async function run(seed: number, steps: number, zeroPage = true): Promise<void> {
  const { mmu, mm } = await machine({ ramBytes: 8 << 20, zeroPage });
  const r = rng(seed);
  const pick = <T>(a: T[]): T => a[Math.floor(r() * a.length)];
  const procs: Proc[] = [{ mm, pages: new Map() }];
  const log: string[] = [];
  const PROTS = [PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE];

  // A random run of mapped pages [va, va + n pages) of `p`, or null.
  const mappedRun = (p: Proc): [number, number] | null => {
    if (p.pages.size === 0) return null;
    const va = pick([...p.pages.keys()]);
    let n = 1;
    while (n < 6 && p.pages.has(va + n * PG) && r() < 0.6) n++;
    return [va, n];
  };

  try {
    for (let step = 0; step < steps; step++) {
      const p = pick(procs);
      const op = r();
      if (op < 0.12) {
        const n = 1 + Math.floor(r() * 6);
        const prot = pick(PROTS);
        const va = anon(p.mm, n, prot);
        log.push(`mmap ${n} prot ${prot} -> ${va.toString(16)}`);
        for (let i = 0; i < n; i++) p.pages.set(va + i * PG, { prot, data: new Uint8Array(PG), dontfork: false, wipe: false });
      } else if (op < 0.15) {
        // MAP_FIXED over mapped pages: they are replaced by fresh zero pages.
        const run = mappedRun(p); if (!run) continue;
        const [va, n] = run;
        const prot = pick(PROTS);
        log.push(`mmap fixed ${va.toString(16)} ${n} prot ${prot}`);
        expect(anon(p.mm, n, prot, MAP_FIXED, va)).toBe(va);
        for (let i = 0; i < n; i++) p.pages.set(va + i * PG, { prot, data: new Uint8Array(PG), dontfork: false, wipe: false });
      } else if (op < 0.2) {
        const run = mappedRun(p); if (!run) continue;
        const [va, n] = run;
        log.push(`munmap ${va.toString(16)} ${n}`);
        p.mm.munmap(va, n * PG);
        for (let i = 0; i < n; i++) p.pages.delete(va + i * PG);
      } else if (op < 0.3) {
        const run = mappedRun(p); if (!run) continue;
        const [va, n] = run;
        const prot = pick(PROTS);
        log.push(`mprotect ${va.toString(16)} ${n} ${prot}`);
        p.mm.mprotect(va, n * PG, prot);
        for (let i = 0; i < n; i++) p.pages.get(va + i * PG)!.prot = prot;
      } else if (op < 0.36) {
        const run = mappedRun(p); if (!run) continue;
        const [va, n] = run;
        const advice = pick([MADV_DONTNEED, MADV_DONTFORK, MADV_WIPEONFORK, MADV_DOFORK]);
        log.push(`madvise ${va.toString(16)} ${n} ${advice}`);
        p.mm.madvise(va, n * PG, advice);
        for (let i = 0; i < n; i++) {
          const pg = p.pages.get(va + i * PG)!;
          if (advice === MADV_DONTNEED) pg.data = new Uint8Array(PG);
          if (advice === MADV_DONTFORK) pg.dontfork = true;
          if (advice === MADV_DOFORK) pg.dontfork = false;
          if (advice === MADV_WIPEONFORK) pg.wipe = true;
        }
      } else if (op < 0.62) {
        const run = mappedRun(p); if (!run) continue;
        const [va] = run;
        const pg = p.pages.get(va)!;
        const off = Math.floor(r() * (PG - 64));
        const data = new Uint8Array(1 + Math.floor(r() * 64)).map(() => Math.floor(r() * 256));
        log.push(`write ${(va + off).toString(16)} ${data.length} (prot ${pg.prot})`);
        if (pg.prot & PROT_WRITE) {
          p.mm.write(va + off, data);
          pg.data.set(data, off);
        } else {
          expect(() => p.mm.write(va + off, data)).toThrow(SegmentationFault);
        }
      } else if (op < 0.85) {
        const run = mappedRun(p); if (!run) continue;
        const [va] = run;
        const pg = p.pages.get(va)!;
        log.push(`read ${va.toString(16)} (prot ${pg.prot})`);
        if (pg.prot & PROT_READ) {
          const got = p.mm.read(va, PG);
          const bad = got.findIndex((b, i) => b !== pg.data[i]);
          expect(bad, `byte ${bad} of ${va.toString(16)}`).toBe(-1);
        } else {
          expect(() => p.mm.read(va, 1)).toThrow(SegmentationFault);
        }
      } else if (op < 0.87) {
        log.push(`clear_refs 4`);
        p.mm.clearSoftDirty(); // write-protects everything: later writes fault and reuse
      } else if (op < 0.93) {
        if (procs.length >= 4) continue;
        const child = p.mm.fork();
        log.push(`fork`);
        const pages = new Map<number, Page>();
        for (const [va, pg] of p.pages) {
          if (pg.dontfork) continue;
          pages.set(va, { prot: pg.prot, data: pg.wipe ? new Uint8Array(PG) : pg.data.slice(), dontfork: false, wipe: pg.wipe });
        }
        procs.push({ mm: child, pages });
      } else {
        if (procs.length <= 1) continue;
        log.push(`exit`);
        p.mm.destroy();
        procs.splice(procs.indexOf(p), 1);
      }
      const inv = mmu.checkInvariants();
      if (inv.length) throw new Error(`invariants: ${inv.join('; ')}`);
    }
    // Everything still reads back, then every frame comes back.
    for (const p of procs) {
      for (const [va, pg] of p.pages) {
        if (!(pg.prot & PROT_READ)) continue;
        const got = p.mm.read(va, PG);
        expect(got.findIndex((b, i) => b !== pg.data[i]), `final ${va.toString(16)}`).toBe(-1);
      }
    }
    for (const p of procs) p.mm.destroy();
    expect(mmu.checkInvariants()).toEqual([]);
    expect(mmu.stats().pageTables).toBe(0);
    expect(mmu.stats().freeFrames).toBe(mmu.stats().ramFrames - 1); // all but the zero page
  } catch (e) {
    throw new Error(`seed ${seed}, after:\n${log.slice(-25).join('\n')}\n${(e as Error).message}`);
  }
}

describe('§5 / §9 private anonymous memory against a shadow model', () => {
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    it(`R5.7 R9.1 R5.5 random mmap/munmap/mprotect/madvise/write/read/fork/exit, seed ${seed}`, async () => {
      await run(seed, 400);
    });
  }
  for (const seed of [7, 8]) {
    it(`R4.1 the same without a zero page (zeroPage: false), seed ${seed}`, async () => {
      await run(seed, 400, false);
    });
  }
});
