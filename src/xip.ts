// Execute-in-place memory and the DAX / XIP files kept in it (LINUX-SPEC §7, seeds 002, 004).
//
// XIP memory is physical memory beyond RAM with no struct page (pfn_valid is false). Boot
// reserves `xipBytes` of it directly after RAM, so linear address = ramBase + physical
// address holds for it as for RAM, and the walker, the TLB and copies treat it as memory.
// XipMemory carves ranges of it. An XipFile keeps its data in one range and maps it with no
// page cache at all: a read fault inserts the PFN itself (vmf_insert_mixed; no frame, no
// fault-around: the file has no map_pages), a hole maps the zero page read-only, a private
// write fault performs the COW itself into the cowPage the core hands it (R7.1), and a
// shared write goes through pfnMkwrite, so it lands in XIP memory for every mapping (R7.2).
import type { Core } from './core.js';
import { File, type Backend, type VmFault, AS_HAS_FAULT, AS_HAS_PFN_MKWRITE, AS_DAX, AS_NO_MAP_PAGES,
  AS_READONLY, AS_DIRTY_ACCOUNT, AS_CAN_PUNCH } from './file.js';
import { LinuxError } from './errors.js';
import { PAGE_SIZE, VM_FAULT_SIGBUS, VM_FAULT_LOCKED, VM_FAULT_DONE_COW, VM_FAULT_MAJOR, FAULT_FLAG_WRITE } from './constants.js';

/** A run of XIP memory: `pages` frames from physical address `pa` (frame `pfn`). */
export interface XipRange {
  readonly pa: number;
  readonly pfn: number;
  readonly pages: number;
}

/** The execute-in-place memory of an Mmu: physical addresses [base, base + size). */
export class XipMemory {
  /** Free runs as [first page, pages], sorted by page. */
  private free: Array<[number, number]>;
  private readonly frames: number;
  readonly basePfn: number;

  /** @internal */
  constructor(private readonly core: Core) {
    this.basePfn = core.x.mmu_nr_frames();
    this.frames = core.x.mmu_xip_frames();
    this.free = this.frames > 0 ? [[0, this.frames]] : [];
  }

  /** Physical address of the first XIP byte (right after RAM). */
  get base(): number { return this.basePfn * PAGE_SIZE; }
  /** Bytes of XIP memory (the createMmu option xipBytes). */
  get size(): number { return this.frames * PAGE_SIZE; }
  /** Bytes not carved. */
  get freeBytes(): number { return this.free.reduce((n, [, p]) => n + p, 0) * PAGE_SIZE; }

  /** Carve a zeroed range of at least `bytes` (whole pages, first fit). ENOSPC when full. */
  carve(bytes: number): XipRange {
    if (!Number.isInteger(bytes) || bytes < 0) throw new RangeError(`bytes must be a non-negative integer, got ${bytes}`);
    const pages = Math.ceil(bytes / PAGE_SIZE);
    if (pages === 0) return { pa: this.base, pfn: this.basePfn, pages: 0 };
    const i = this.free.findIndex(([, n]) => n >= pages);
    if (i < 0) throw new LinuxError(28, 'xip.carve', `no run of ${pages} free XIP pages (${this.freeBytes} bytes free)`);
    const [first, n] = this.free[i];
    if (n === pages) this.free.splice(i, 1);
    else this.free[i] = [first + pages, n - pages];
    const r = { pa: (this.basePfn + first) * PAGE_SIZE, pfn: this.basePfn + first, pages };
    this.view(r.pfn, pages).fill(0);
    return r;
  }

  /** Give a range back (its bytes are zeroed when carved again). */
  release(r: XipRange): void {
    if (r.pages === 0) return;
    const first = r.pfn - this.basePfn;
    if (first < 0 || first + r.pages > this.frames || this.free.some(([f, n]) => first < f + n && f < first + r.pages)) {
      throw new RangeError(`[${r.pa}, ${r.pa + r.pages * PAGE_SIZE}) is not a carved XIP range`);
    }
    this.free.push([first, r.pages]);
    this.free.sort((a, b) => a[0] - b[0]);
    const merged: Array<[number, number]> = [];
    for (const [f, n] of this.free) {
      const last = merged[merged.length - 1];
      if (last && last[0] + last[1] === f) last[1] += n;
      else merged.push([f, n]);
    }
    this.free = merged;
  }

  private at(pa: number, n: number): number {
    if (!Number.isInteger(pa) || !Number.isInteger(n) || n < 0 || pa < this.base || pa + n > this.base + this.size) {
      throw new RangeError(`physical range [${pa}, ${pa + n}) is outside XIP memory [${this.base}, ${this.base + this.size})`);
    }
    return (this.core.x.mmu_ram_base() >>> 0) + pa; // linear = ramBase + pa, as for RAM
  }

  /** A live view of `pages` frames from `pfn` (valid until linear memory grows). */
  view(pfn: number, pages: number): Uint8Array {
    const at = this.at(pfn * PAGE_SIZE, pages * PAGE_SIZE);
    return this.core.bytes().subarray(at, at + pages * PAGE_SIZE);
  }

  /** Copy `n` bytes from physical address `pa`. */
  read(pa: number, n: number): Uint8Array {
    const at = this.at(pa, n);
    return this.core.bytes().slice(at, at + n);
  }

  /** Write bytes at physical address `pa` (what a store to persistent memory does). */
  write(pa: number, data: Uint8Array): void {
    const at = this.at(pa, data.length);
    this.core.bytes().set(data, at);
  }
}

export interface XipFileOptions {
  /** File pages with no block behind them: they read as zeros through the zero page (R7.2). */
  holes?: Iterable<number>;
  /**
   * How a private write fault finishes once the handler has copied into cowPage (R7.1):
   * 'done-cow' (default, Linux since 4.8): the handler maps it (finishCow) and returns
   * VM_FAULT_DONE_COW. 'immap-locked' (seed 004, 2014): it returns VM_FAULT_LOCKED with no
   * page, holding the mapping's i_mmap lock; the core maps cowPage and releases that lock.
   */
  cow?: 'done-cow' | 'immap-locked';
  /** Opened without write permission: MAP_SHARED with PROT_WRITE is EACCES. */
  readOnly?: boolean;
  /**
   * A file of a DAX file system (ext4 / xfs `-o dax`, Linux 4.0+) rather than the 2.6 XIP
   * mapping of seed 002 (default false): its VMAs are not VM_MIXEDMAP (the pfns are DAX
   * pfns, which vm_mixed_ok lets into any DAX VMA), so fork copies such a VMA only when it
   * has an anon_vma (R5.5); and a fault that allocates a block for a hole counts as a major
   * fault, as dax_iomap_pte_fault does for a new extent (IOMAP_F_NEW). Checked against
   * Debian's 6.12 and 7.3 on ext4 -o dax (tests/conformance, golden dirs `*-dax`).
   */
  fsDax?: boolean;
}

/** Counters of an XipFile's vm_operations, for tests and teaching. */
export interface XipCounts {
  faults: number;
  /** COWs the handler did into cowPage. */
  cows: number;
  pfnMkwrites: number;
  /** Holes that got a block on a shared write. */
  holesFilled: number;
}

/** The vm_operations of an XipFile, as the host's fault dispatch sees them. */
class XipOps implements Backend {
  file!: XipFile;
  size(): number { return this.file.size; }
  readPage(index: number, dst: Uint8Array): number { return this.file.copyPage(index, dst); }
  truncate(size: number): void { this.file.resize(size); }
  punchHole(offset: number, length: number): void { this.file.punch(offset, length); }
  fault(vmf: VmFault): number { return this.file.fault(vmf); }
  pfnMkwrite(vmf: VmFault): number { return this.file.pfnMkwrite(vmf); }
}

/** A DAX / XIP file: its data lives in a range of XIP memory, mapped without a page cache. */
export class XipFile extends File {
  readonly counts: XipCounts = { faults: 0, cows: 0, pfnMkwrites: 0, holesFilled: 0 };
  private readonly holes: Set<number>;

  /** @internal use mmu.createXipFile() */
  constructor(private readonly kx: Core, id: number, ops: XipOps, private readonly mem: XipMemory,
              readonly range: XipRange, holes: Set<number>, private readonly cowMode: 'done-cow' | 'immap-locked',
              onClose: (f: File) => void, private readonly fsDax = false) {
    super(kx, id, ops, onClose);
    ops.file = this;
    this.holes = holes;
  }

  /** Bytes the file can hold (its XIP range): it never grows beyond. */
  get capacity(): number { return this.range.pages * PAGE_SIZE; }

  /** The XIP frame of file page `index`, or null for a hole. */
  pfnOf(index: number): number | null {
    if (!Number.isInteger(index) || index < 0 || index >= this.range.pages) throw new RangeError(`page ${index} is outside the file`);
    return this.holes.has(index) ? null : this.range.pfn + index;
  }

  isHole(index: number): boolean { return this.pfnOf(index) === null; }

  /** The file's bytes [offset, offset + n), read straight from XIP memory. */
  read(offset = 0, n = this.size - offset): Uint8Array {
    if (!Number.isInteger(offset) || !Number.isInteger(n) || offset < 0 || n < 0 || offset + n > this.size) {
      throw new RangeError(`[${offset}, ${offset + n}) is outside the file (${this.size} bytes)`);
    }
    return this.mem.read(this.range.pa + offset, n);
  }

  /** Store into the file's XIP memory directly (visible at once through every mapping). */
  write(offset: number, data: Uint8Array): void {
    if (!Number.isInteger(offset) || offset < 0 || offset + data.length > this.size) {
      throw new RangeError(`[${offset}, ${offset + data.length}) is outside the file (${this.size} bytes)`);
    }
    for (let pg = Math.floor(offset / PAGE_SIZE); pg * PAGE_SIZE < offset + data.length; pg++) {
      if (this.holes.has(pg)) this.fillHole(pg);
    }
    this.mem.write(this.range.pa + offset, data);
  }

  private eofPages(): number { return Math.ceil(this.size / PAGE_SIZE); }

  /** @internal f_op->mmap: the VMA becomes VM_MIXEDMAP (as ext2's XIP mmap did). 0 or -errno. */
  mmapHook(mm: number, addr: number): number {
    // fsDax: ext4's mmap only installs its DAX vm_ops (kind 0: the VMA stays a plain DAX VMA).
    return this.kx.x.mm_special_mmap(mm, addr, this.fsDax ? 0 : 1);
  }

  /** A fault that had to allocate a block: major on a DAX file system (IOMAP_F_NEW). */
  private newBlock(ret: number): number {
    return this.fsDax && (ret & VM_FAULT_SIGBUS) === 0 ? ret | VM_FAULT_MAJOR : ret;
  }

  /** ->fault (R7.1, R7.2). */
  fault(vmf: VmFault): number {
    this.counts.faults++;
    const pg = vmf.pgoff;
    if (pg >= this.eofPages()) return VM_FAULT_SIGBUS; // beyond EOF (R10.1)
    const hole = this.holes.has(pg);
    const pfn = this.range.pfn + pg;
    const cow = vmf.cowBytes();
    if (cow) {
      // R7.1: a private write. Copy from XIP memory (zeros for a hole) into cowPage.
      if (hole) cow.fill(0);
      else cow.set(this.mem.view(pfn, 1));
      this.counts.cows++;
      if (this.cowMode === 'immap-locked') {
        vmf.lockMapping(); // seed 004: the i_mmap lock, not a page lock, is what we hold
        return VM_FAULT_LOCKED;
      }
      const r = vmf.finishCow();
      return r !== 0 ? r : VM_FAULT_DONE_COW;
    }
    if ((vmf.flags & FAULT_FLAG_WRITE) !== 0) {
      // A shared write through a none PTE: the block (allocated for a hole), writable.
      if (!hole) return vmf.insertMixed(pfn, true);
      this.fillHole(pg);
      return this.newBlock(vmf.insertMixed(pfn, true));
    }
    // R7.2: the pfn itself, or the zero page read-only for a hole.
    return vmf.insertMixed(hole ? this.kx.x.mmu_zero_pfn() : pfn);
  }

  /** ->pfn_mkwrite: a shared write to a read-only PTE (R5.2 step 3, R7.2). */
  pfnMkwrite(vmf: VmFault): number {
    this.counts.pfnMkwrites++;
    const pg = vmf.pgoff;
    if (pg >= this.eofPages()) return VM_FAULT_SIGBUS;
    if (this.holes.has(pg)) {
      // The zero page was mapped: give the hole its block, and map that writable instead.
      this.fillHole(pg);
      return this.newBlock(vmf.insertMixed(this.range.pfn + pg, true));
    }
    return 0; // the core makes the PTE writable in place
  }

  /** A hole gets its (zeroed) block; zero-page PTEs of it go from every mapping. */
  private fillHole(pg: number): void {
    this.holes.delete(pg);
    this.mem.view(this.range.pfn + pg, 1).fill(0);
    this.counts.holesFilled++;
    this.kx.x.file_unmap_range(this.id, pg, pg, 0); // private COWed copies stay
  }

  /** @internal readPage: the page's bytes (nothing uses the page cache for this file). */
  copyPage(index: number, dst: Uint8Array): number {
    const off = index * PAGE_SIZE;
    if (off >= this.size) return 0;
    const n = Math.min(PAGE_SIZE, this.size - off);
    dst.set(this.mem.read(this.range.pa + off, n));
    return n;
  }

  /**
   * ext4_break_layouts (fsDax): before a truncate or a hole punch the file system unmaps
   * every page of the file from every mapping (dax_layout_busy_page zaps the whole file, not
   * only the range), private COWed copies excepted, so the next access faults again.
   */
  private breakLayouts(): void {
    if (this.fsDax && this.range.pages > 0) this.kx.x.file_unmap_range(this.id, 0, this.range.pages - 1, 0);
  }

  /** @internal MADV_REMOVE on an fsDax file (fallocate PUNCH_HOLE): the pages become holes. */
  punch(offset: number, length: number): void {
    this.breakLayouts();
    const stop = Math.min(this.size, offset + length);
    if (stop > offset) this.mem.write(this.range.pa + offset, new Uint8Array(stop - offset)); // partial pages read zeros
    const first = Math.ceil(offset / PAGE_SIZE);
    const end = Math.min(this.range.pages, Math.floor((offset + length) / PAGE_SIZE));
    for (let pg = first; pg < end; pg++) {
      this.holes.add(pg);
      this.mem.view(this.range.pfn + pg, 1).fill(0);
    }
  }

  /** @internal truncate: never beyond the XIP range; what is cut off becomes holes. */
  resize(size: number): void {
    if (size > this.capacity) {
      throw new RangeError(`an XIP file cannot grow beyond its ${this.capacity}-byte XIP range, got ${size}`);
    }
    this.breakLayouts();
    const tail = this.range.pa + size;
    this.mem.write(tail, new Uint8Array(this.range.pa + this.capacity - tail));
    for (let pg = Math.ceil(size / PAGE_SIZE); pg < this.range.pages; pg++) this.holes.add(pg);
  }

  /** Close the file (it must be unmapped) and give its XIP range back. */
  override close(discard = false): void {
    super.close(discard);
    this.mem.release(this.range);
  }
}

/** @internal mmu.createXipFile(). */
export function createXipFile(core: Core, mem: XipMemory, data: Uint8Array | number, opts: XipFileOptions,
                              register: (make: (onClose: (f: File) => void) => XipFile) => XipFile): XipFile {
  let bytes: Uint8Array | null = null;
  let length: number;
  if (typeof data === 'number') {
    if (!Number.isInteger(data) || data < 0) throw new RangeError(`XIP file size must be a non-negative integer, got ${data}`);
    length = data;
  } else if (data instanceof Uint8Array) {
    bytes = data;
    length = data.length;
  } else {
    throw new RangeError('createXipFile takes the file bytes (Uint8Array) or a size');
  }
  const cow = opts.cow ?? 'done-cow';
  if (cow !== 'done-cow' && cow !== 'immap-locked') throw new RangeError(`cow must be 'done-cow' or 'immap-locked', got ${String(cow)}`);
  const pages = Math.ceil(length / PAGE_SIZE);
  const holes = new Set<number>();
  for (const h of opts.holes ?? []) {
    if (!Number.isInteger(h) || h < 0 || h >= pages) throw new RangeError(`hole ${h} is not a page of the file (0..${pages - 1})`);
    holes.add(h);
  }
  const range = mem.carve(length);
  try {
    if (bytes) mem.write(range.pa, bytes);
    for (const h of holes) mem.view(range.pfn + h, 1).fill(0);
    // fsDax: the file system tracks dirty DAX entries (fsync / msync clean them, R7.2) and
    // can punch holes (MADV_REMOVE → fallocate).
    const flags = AS_HAS_FAULT | AS_HAS_PFN_MKWRITE | AS_DAX | AS_NO_MAP_PAGES | (opts.readOnly ? AS_READONLY : 0) |
      (opts.fsDax ? AS_DIRTY_ACCOUNT | AS_CAN_PUNCH : 0);
    const id = core.x.file_open(length, flags);
    if (id < 0) throw new LinuxError(23, 'createXipFile', 'too many open files');
    return register((onClose) => new XipFile(core, id, new XipOps(), mem, range, holes, cow, onClose, opts.fsDax === true));
  } catch (e) {
    mem.release(range);
    throw e;
  }
}
