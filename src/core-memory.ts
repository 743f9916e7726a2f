// The core's linear memory, made by the host at its final size (issue 16). The core imports
// `env.memory` (asconfig.json: importMemory); createMmu makes it big enough for everything
// the core will ever allocate in ordinary use, so it never grows: V8 checks every
// typed-array access for a detached buffer once any ArrayBuffer in the process has been
// detached, and a Wasm memory.grow detaches the old buffer. A memory that never grows keeps
// mmu.ram, the TLB view and the load/store fast path free of those checks (and valid for
// good). The memory stays growable up to 4 GiB: past the estimate it grows as before.

const PAGE = 65536;
const MAX_PAGES = 65536;

/** What the core's size depends on (createMmu's resolved options). */
export interface CoreSizing { ramBytes: number; xipBytes: number; tlbEntries: number; swapSlots: number }

/**
 * Bytes the core allocates beyond its static data, at boot and later: a mirror of every
 * heap.alloc in assembly/ (tests/unit/fast-access.test.ts checks that the memory never
 * grows). VMA records are reserved for 65,536 (Linux's default vm.max_map_count is 65,530).
 */
export function coreHeapBytes(s: CoreSizing): number {
  const nr = s.ramBytes / 4096;
  let pcCap = 16;
  while (pcCap < nr * 2) pcCap *= 2;
  const MiB = 1 << 20;
  return nr * 32 + nr * 4 + s.ramBytes + s.xipBytes + 2 * MiB + 4096 + PAGE // phys.ts boot: memmap, page_ext, RAM, XIP, 2 MiB alignment
    + nr // pagestate.ts: residency
    + (s.tlbEntries + 1) * 64 + s.tlbEntries * 16 // tlb.ts: entries, int32 side table
    + 65536 * 64 + pcCap * 16 // mapping.ts: files, page-cache table (16-byte slots)
    + MiB + 64 + 4096 * 12 + 64 + 8192 + 64 // index.ts: staging, pagemap and smaps buffers, bench scratch
    + s.swapSlots * 8 // swap.ts: map and cache
    + s.swapSlots * 96 // shmem_swap.ts: 16-byte slots, at most 4 per swap slot, the old table while growing
    + nr * 8 + 65536 * 4 + s.swapSlots * 4 // check.ts: counts, pmd counts, dirty counts, swap counts
    + 16 * 4096 * 96 // vma.ts: 16 chunks of 4,096 records
    + MiB; // the allocator's block headers and alignment
}

/**
 * The initial page count the module declares for an imported `env.memory`, read from its
 * import section; null if `bytes` is not a module that imports one.
 */
export function importedMemoryMinimum(bytes: Uint8Array): number | null {
  let p = 8;
  const leb = (): number => {
    let v = 0, shift = 0, b: number;
    do { b = bytes[p++]; v += (b & 0x7f) * 2 ** shift; shift += 7; } while (b & 0x80);
    return v;
  };
  const name = (): string => { const n = leb(); const s = new TextDecoder().decode(bytes.subarray(p, p + n)); p += n; return s; };
  const limits = (): number => { const flags = bytes[p++]; const min = leb(); if (flags & 1) leb(); return min; };
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) return null;
  while (p < bytes.length) {
    const id = bytes[p++];
    const size = leb();
    const end = p + size;
    if (id !== 2) { p = end; continue; }
    for (let n = leb(); n > 0; n--) {
      const mod = name(), field = name(), kind = bytes[p++];
      if (kind === 0) leb(); // function: type index
      else if (kind === 1) { p++; limits(); } // table: reference type, limits
      else if (kind === 2) { const min = limits(); if (mod === 'env' && field === 'memory') return min; }
      else if (kind === 3) p += 2; // global: value type, mutability
      else if (kind === 4) { p++; leb(); } // tag: attribute, type index
      else return null;
    }
    return null;
  }
  return null;
}

/**
 * A memory of `staticPages + heapBytes` (rounded up to 64 KiB pages, at most 4 GiB),
 * growable to 4 GiB. If the engine cannot reserve that much, the smallest memory the module
 * accepts: the core then grows it at boot, as a module that defines its own memory does.
 */
export function makeCoreMemory(staticPages: number, heapBytes: number): WebAssembly.Memory {
  const want = Math.min(MAX_PAGES, staticPages + Math.ceil(heapBytes / PAGE));
  try {
    return new WebAssembly.Memory({ initial: want, maximum: MAX_PAGES });
  } catch (e) {
    if (!(e instanceof RangeError) || want === staticPages) throw e;
    return new WebAssembly.Memory({ initial: staticPages, maximum: MAX_PAGES });
  }
}
