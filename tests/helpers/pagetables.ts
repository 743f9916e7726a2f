// A tiny x86-64 page-table builder over mmu.phys, for tests that drive the hardware
// walker and TLB directly (the way an emulator author would).
//
// Levels are counted like the SDM, from the leaf up: 4 = PML4, 3 = PDPT, 2 = PD, 1 = PT.
// Entries are bigints (bit 63 is NX); addresses and frame numbers are plain numbers.
import type { Mmu } from '../../src/index.js';

export const PAGE = 4096;
export const SIZE_2M = 2 * 1024 * 1024;
export const SIZE_1G = 1024 * 1024 * 1024;

// Entry bits (SDM vol. 3, 4.5).
export const P = 1n << 0n;
export const RW = 1n << 1n;
export const US = 1n << 2n;
export const PWT = 1n << 3n;
export const PCD = 1n << 4n;
export const A = 1n << 5n;
export const D = 1n << 6n;
export const PS = 1n << 7n; // PAT in a 4 KiB PTE
export const G = 1n << 8n;
export const PAT_LARGE = 1n << 12n; // PAT of a 2 MiB / 1 GiB leaf
export const NX = 1n << 63n;
export const ADDR_MASK = 0x000f_ffff_ffff_f000n;

export type Level = 1 | 2 | 3 | 4;

/** Index of `va` in the table at `level`. */
export function tableIndex(va: number, level: Level): number {
  return Math.floor(va / 2 ** (12 + 9 * (level - 1))) % 512;
}

/** The size a leaf at `level` maps (1: 4 KiB, 2: 2 MiB, 3: 1 GiB). */
export function leafSize(level: 1 | 2 | 3): number {
  return 2 ** (12 + 9 * (level - 1));
}

/** One mapped translation: the physical address of the entry used at each level, top first. */
export interface Path {
  /** Physical address of the entry at PML4, PDPT, PD (and PT for a 4 KiB leaf), top first. */
  slots: number[];
  /** Frame of the table at each level, top first (tables[0] is the root). */
  tables: number[];
  /** Level of the leaf. */
  leafLevel: 1 | 2 | 3;
}

export interface MapOptions {
  /** Leaf level: 1 = 4 KiB (default), 2 = 2 MiB PDE with PS, 3 = 1 GiB PDPTE with PS. */
  level?: 1 | 2 | 3;
  /** Physical address the leaf maps (aligned to its size unless `raw` bits say otherwise). */
  pa: number;
  /** Bits of the leaf entry (PS is added for a large leaf). Default P | RW | US. */
  leaf?: bigint;
  /**
   * Bits of the table entries above the leaf, top first, or one value for all of them.
   * Default P | RW | US. Existing table entries get these bits too (the pointer is kept).
   */
  upper?: bigint | bigint[];
}

export class PageTables {
  /** Every frame this builder allocated (tables and data frames). */
  readonly frames: number[] = [];

  constructor(readonly mmu: Mmu) {}

  /** A zeroed frame from the buddy allocator. */
  frame(): number {
    const pfn = this.mmu.phys.alloc(0);
    this.mmu.phys.write(pfn * PAGE, new Uint8Array(PAGE));
    this.frames.push(pfn);
    return pfn;
  }

  /** A zeroed table page (same as frame(); named for readability). */
  table(): number { return this.frame(); }

  /** A new, empty PML4; its frame is the CR3 value. */
  root(): number { return this.frame(); }

  read(pa: number): bigint { return this.mmu.phys.readU64(pa); }
  write(pa: number, value: bigint): void { this.mmu.phys.writeU64(pa, value); }
  setBits(pa: number, bits: bigint): void { this.write(pa, this.read(pa) | bits); }
  clearBits(pa: number, bits: bigint): void { this.write(pa, this.read(pa) & ~bits); }

  /** Physical address of the entry for `va` in the table at frame `tablePfn`, level `level`. */
  slot(tablePfn: number, va: number, level: Level): number {
    return tablePfn * PAGE + tableIndex(va, level) * 8;
  }

  /** An entry pointing at `pa` (a table frame's address or a leaf's base) with `bits`. */
  static entry(pa: number, bits: bigint): bigint {
    return (BigInt(pa) & ADDR_MASK) | bits;
  }

  /**
   * Map `va` under the PML4 at `root`: allocate missing tables, set the table entries'
   * bits and the leaf. Returns the slots used, top first.
   */
  map(root: number, va: number, o: MapOptions): Path {
    const leafLevel = o.level ?? 1;
    const upperDefault = P | RW | US;
    const upperBits = (i: number): bigint =>
      o.upper === undefined ? upperDefault : typeof o.upper === 'bigint' ? o.upper : (o.upper[i] ?? upperDefault);
    const slots: number[] = [];
    const tables: number[] = [root];
    let table = root;
    let i = 0;
    for (let level = 4; level > leafLevel; level--, i++) {
      const s = this.slot(table, va, level as Level);
      slots.push(s);
      const e = this.read(s);
      let next: number;
      if ((e & P) !== 0n && (e & PS) === 0n && e !== 0n) {
        next = Number((e & ADDR_MASK) >> 12n);
      } else {
        next = this.table();
      }
      this.write(s, PageTables.entry(next * PAGE, upperBits(i)));
      tables.push(next);
      table = next;
    }
    const s = this.slot(table, va, leafLevel);
    slots.push(s);
    const leafBits = (o.leaf ?? (P | RW | US)) | (leafLevel > 1 ? PS : 0n);
    this.write(s, PageTables.entry(o.pa, leafBits));
    return { slots, tables, leafLevel };
  }

  /** Map a 4 KiB page at `va` to a fresh zeroed data frame; returns the path and the frame. */
  mapNew(root: number, va: number, o: Omit<MapOptions, 'pa' | 'level'> = {}): Path & { pfn: number } {
    const pfn = this.frame();
    return { ...this.map(root, va, { ...o, pa: pfn * PAGE }), pfn };
  }

  /** The entries along a path, top first. */
  entries(path: Path): bigint[] { return path.slots.map((s) => this.read(s)); }

  /** Give every frame back to the allocator. */
  release(): void {
    for (const pfn of this.frames.splice(0)) this.mmu.phys.free(pfn, 0);
  }
}

/** A small seeded PRNG (mulberry32), so random cases are repeatable. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
