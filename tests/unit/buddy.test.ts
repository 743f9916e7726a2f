// The frame arena and its buddy allocator (assembly/phys.ts) and the memmap (assembly/page.ts),
// through mmu.phys. 4 MiB of RAM: 1024 frames, two order-9 blocks; frame 0 is the zero page,
// so the first block starts split (orders 0..8 at pfns 1, 2, 4, ... 256).
import { describe, it, expect, beforeEach } from 'vitest';
import { createMmu, LinuxError, type Mmu } from '../../src/index.js';
import { rng } from '../helpers/pagetables.js';

const RAM = 4 * 1024 * 1024;
const FRAMES = RAM / 4096;
const STRUCT_PAGE_SIZE = 32;
const PG_buddy = 1 << 10, PG_head = 1 << 11, PG_reserved = 1 << 9;

let mmu: Mmu;
let free0: number;

beforeEach(async () => {
  mmu = await createMmu({ ramBytes: RAM, tlbEntries: 16 });
  free0 = mmu.phys.freeFrames;
});

function expectErrno(f: () => unknown, code: string): LinuxError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(LinuxError);
    expect((e as LinuxError).code).toBe(code);
    return e as LinuxError;
  }
  throw new Error(`expected LinuxError ${code}, nothing was thrown`);
}

/** struct page of `pfn`, read straight from linear memory (layout in assembly/page.ts). */
function structPage(pfn: number) {
  const base = (mmu.core.x.mmu_memmap_base() >>> 0) + pfn * STRUCT_PAGE_SIZE;
  const dv = new DataView(mmu.core.x.memory.buffer, base, STRUCT_PAGE_SIZE);
  return { flags: dv.getUint32(0, true), refcount: dv.getInt32(4, true), mapcount: dv.getInt32(8, true),
    private: dv.getUint32(20, true) };
}

describe('buddy allocator: allocation, split and merge (Linux mm/page_alloc.c: blocks of 2^order, aligned, buddy = pfn ^ 2^order)', () => {
  it('boots with every frame but the zero page free, the zero page reserved and unfreeable', () => {
    expect(mmu.phys.frames).toBe(FRAMES);
    expect(free0).toBe(FRAMES - 1);
    const z = mmu.phys.zeroPfn;
    expect(z).toBe(0);
    expect(structPage(z).flags & (PG_reserved | PG_head)).toBe(PG_reserved | PG_head);
    expectErrno(() => mmu.phys.free(z, 0), 'EINVAL');
    expect(mmu.phys.freeFrames).toBe(free0);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('allocates every order 0..9, each block aligned to its size, and merges back after freeing', () => {
    const first9 = mmu.phys.alloc(9);
    mmu.phys.free(first9, 9);
    const got: Array<[number, number]> = [];
    for (let order = 0; order <= 9; order++) {
      const before = mmu.phys.freeFrames;
      const pfn = mmu.phys.alloc(order);
      expect(pfn % (1 << order), `order ${order} alignment`).toBe(0);
      expect(pfn + (1 << order)).toBeLessThanOrEqual(FRAMES);
      expect(mmu.phys.freeFrames).toBe(before - (1 << order));
      const sp = structPage(pfn);
      expect(sp).toMatchObject({ flags: PG_head, refcount: 1, private: order });
      for (const [p, o] of got) expect(pfn + (1 << order) <= p || p + (1 << o) <= pfn, 'blocks overlap').toBe(true);
      got.push([pfn, order]);
      expect(mmu.checkInvariants()).toEqual([]);
    }
    // Orders 0..9 add up to 1023 frames: everything is allocated now.
    expect(mmu.phys.freeFrames).toBe(0);
    for (const [pfn, order] of got.reverse()) mmu.phys.free(pfn, order);
    expect(mmu.phys.freeFrames).toBe(free0);
    expect(mmu.phys.alloc(9)).toBe(first9);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('an order-0 allocation splits an order-9 block, halves going back order by order', () => {
    // Take the pre-split first block away so only the order-9 block at 512 is left.
    const small: Array<[number, number]> = [];
    for (let o = 0; o <= 8; o++) small.push([mmu.phys.alloc(o), o]);
    expect(mmu.phys.freeFrames).toBe(512);
    expect(mmu.phys.alloc(0)).toBe(512); // split 512: 768/8, 640/7, ..., 513/0 go back
    for (let o = 8; o >= 0; o--) expect(mmu.phys.alloc(o), `order ${o}`).toBe(512 + (1 << o));
    expect(mmu.phys.freeFrames).toBe(0);
    expect(mmu.checkInvariants()).toEqual([]);
    for (let o = 0; o <= 8; o++) mmu.phys.free(512 + (1 << o), o);
    mmu.phys.free(512, 0);
    for (const [p, o] of small) mmu.phys.free(p, o);
    expect(mmu.phys.freeFrames).toBe(free0);
    expect(mmu.phys.alloc(9)).toBe(512);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('1023 single frames freed in a random order merge back into the original blocks', () => {
    const first9 = mmu.phys.alloc(9);
    mmu.phys.free(first9, 9);
    const pfns: number[] = [];
    while (mmu.phys.freeFrames > 0) pfns.push(mmu.phys.alloc(0));
    expect(pfns).toHaveLength(FRAMES - 1);
    expect(new Set(pfns).size).toBe(FRAMES - 1);
    const r = rng(42);
    for (let i = pfns.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [pfns[i], pfns[j]] = [pfns[j], pfns[i]];
    }
    for (let i = 0; i < pfns.length; i++) {
      mmu.phys.free(pfns[i], 0);
      if (i % 256 === 0) expect(mmu.checkInvariants()).toEqual([]);
    }
    expect(mmu.phys.freeFrames).toBe(free0);
    expect(mmu.checkInvariants()).toEqual([]);
    // Merged all the way: the order-9 block is whole again, and so is the first block's top half.
    expect(mmu.phys.alloc(9)).toBe(first9);
    expect(mmu.phys.alloc(8)).toBe(256);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('pgalloc / pgfree count allocations and frees', () => {
    const s0 = mmu.stats();
    const a = mmu.phys.alloc(3), b = mmu.phys.alloc(0);
    mmu.phys.free(a, 3);
    const s1 = mmu.stats();
    expect(s1.pgalloc - s0.pgalloc).toBe(2);
    expect(s1.pgfree - s0.pgfree).toBe(1);
    mmu.phys.free(b, 0);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('buddy allocator: exhaustion is ENOMEM, a bad free is EINVAL (DESIGN: never a corrupted core)', () => {
  it('exhaustion is LinuxError ENOMEM, with nothing changed; freeing makes room again', () => {
    const held: number[] = [];
    while (mmu.phys.freeFrames > 0) held.push(mmu.phys.alloc(0));
    const e = expectErrno(() => mmu.phys.alloc(0), 'ENOMEM');
    expect(e.errno).toBe(12);
    expectErrno(() => mmu.phys.alloc(9), 'ENOMEM');
    expect(mmu.phys.freeFrames).toBe(0);
    expect(mmu.checkInvariants()).toEqual([]);
    mmu.phys.free(held.pop()!, 0);
    expect(mmu.phys.alloc(0)).toBeGreaterThan(0);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('fragmentation: half the frames free but no two buddies together, so order 1 is ENOMEM', () => {
    const held: number[] = [];
    while (mmu.phys.freeFrames > 0) held.push(mmu.phys.alloc(0));
    for (const p of held) if (p % 2 === 1) mmu.phys.free(p, 0);
    expect(mmu.phys.freeFrames).toBe(FRAMES / 2);
    expectErrno(() => mmu.phys.alloc(1), 'ENOMEM');
    expect(mmu.phys.alloc(0) % 2).toBe(1);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('a double free is EINVAL and leaves the allocator consistent', () => {
    const p = mmu.phys.alloc(2);
    mmu.phys.free(p, 2);
    const free = mmu.phys.freeFrames;
    expectErrno(() => mmu.phys.free(p, 2), 'EINVAL');
    expectErrno(() => mmu.phys.free(p, 0), 'EINVAL');
    expect(mmu.phys.freeFrames).toBe(free);
    expect(mmu.checkInvariants()).toEqual([]);
    // A block that never was allocated (a free buddy head) is refused too.
    expectErrno(() => mmu.phys.free(512, 9), 'EINVAL');
    expect(mmu.phys.freeFrames).toBe(free);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('freeing a tail frame of a block is EINVAL; the block is still allocated and frees normally', () => {
    const p = mmu.phys.alloc(3);
    const free = mmu.phys.freeFrames;
    for (const [pfn, order] of [[p + 1, 0], [p + 2, 1], [p + 4, 2], [p + 7, 0]]) {
      expectErrno(() => mmu.phys.free(pfn, order), 'EINVAL');
    }
    expect(structPage(p + 4)).toMatchObject({ flags: 0, refcount: 0 });
    expect(mmu.phys.freeFrames).toBe(free);
    expect(mmu.checkInvariants()).toEqual([]);
    mmu.phys.free(p, 3);
    expect(mmu.phys.freeFrames).toBe(free + 8);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('freeing with the wrong order is EINVAL (smaller or larger)', () => {
    const p = mmu.phys.alloc(4);
    const free = mmu.phys.freeFrames;
    expectErrno(() => mmu.phys.free(p, 3), 'EINVAL');
    expectErrno(() => mmu.phys.free(p, 0), 'EINVAL');
    if (p % 32 === 0) expectErrno(() => mmu.phys.free(p, 5), 'EINVAL');
    expectErrno(() => mmu.phys.free(p, 10), 'EINVAL');
    expect(mmu.phys.freeFrames).toBe(free);
    expect(mmu.checkInvariants()).toEqual([]);
    mmu.phys.free(p, 4);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('an unaligned or out-of-range pfn is EINVAL', () => {
    const p = mmu.phys.alloc(3);
    const free = mmu.phys.freeFrames;
    expectErrno(() => mmu.phys.free(p + 1, 3), 'EINVAL');
    expectErrno(() => mmu.phys.free(p + 4, 3), 'EINVAL');
    expectErrno(() => mmu.phys.free(FRAMES, 0), 'EINVAL');
    expectErrno(() => mmu.phys.free(FRAMES + 512, 9), 'EINVAL');
    expectErrno(() => mmu.phys.free(-1, 0), 'EINVAL');
    expectErrno(() => mmu.phys.free(2 ** 31, 0), 'EINVAL');
    expect(mmu.phys.freeFrames).toBe(free);
    expect(mmu.checkInvariants()).toEqual([]);
    mmu.phys.free(p, 3);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('bad arguments on the JS side are RangeErrors before they reach the core', () => {
    expect(() => mmu.phys.alloc(10)).toThrow(RangeError);
    expect(() => mmu.phys.alloc(-1)).toThrow(RangeError);
    expect(() => mmu.phys.alloc(1.5)).toThrow(RangeError);
    expect(() => mmu.phys.free(1.5, 0)).toThrow(RangeError);
    expect(mmu.phys.freeFrames).toBe(free0);
  });
});

describe('memmap: struct page is at most 32 bytes a frame (DESIGN: Linear memory; assembly/page.ts layout)', () => {
  it('the memmap spans frames * 32 bytes below RAM, one record per frame at base + pfn * 32', () => {
    const memmap = mmu.core.x.mmu_memmap_base() >>> 0;
    const ram = mmu.core.x.mmu_ram_base() >>> 0;
    const frames = mmu.core.x.mmu_nr_frames();
    expect(frames).toBe(FRAMES);
    expect(ram % (2 * 1024 * 1024)).toBe(0); // RAM is 2 MiB aligned: an order-9 block is a huge page
    expect(ram - memmap).toBeGreaterThanOrEqual(STRUCT_PAGE_SIZE * frames);
    // The records really are 32 bytes apart: allocated and free heads read back where expected.
    const p = mmu.phys.alloc(5);
    expect(structPage(p)).toMatchObject({ flags: PG_head, refcount: 1, private: 5 });
    for (let i = 1; i < 32; i++) expect(structPage(p + i)).toMatchObject({ flags: 0, refcount: 0, private: 0 });
    expect(structPage(512)).toMatchObject({ flags: PG_buddy, refcount: 0, private: 9 });
    expect(structPage(frames - 1)).toMatchObject({ flags: 0, refcount: 0 }); // tail of that free block
    // A free frame's record is cleared when it is freed.
    mmu.phys.free(p, 5);
    expect(structPage(p).flags & PG_head).toBe(0);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('phys.read / phys.write address RAM by physical address, bounded by its size', () => {
    const p = mmu.phys.alloc(0);
    const bytes = new Uint8Array([1, 2, 3, 4, 5]);
    mmu.phys.write(p * 4096 + 4091, bytes);
    expect([...mmu.phys.read(p * 4096 + 4091, 5)]).toEqual([1, 2, 3, 4, 5]);
    mmu.phys.writeU64(RAM - 8, 0xdead_beef_0123_4567n);
    expect(mmu.phys.readU64(RAM - 8)).toBe(0xdead_beef_0123_4567n);
    expect(() => mmu.phys.read(RAM - 4, 8)).toThrow(RangeError);
    expect(() => mmu.phys.write(-1, bytes)).toThrow(RangeError);
    mmu.phys.free(p, 0);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});
