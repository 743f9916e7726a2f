// Mmu: one emulated machine — RAM, the hardware walker and TLB, and (in the layers
// above) address spaces and files. Created by createMmu().
import { loadCore, type Core, type HostHandlers, type StatName } from './core.js';
import { coreHeapBytes } from './core-memory.js';
import { LinuxError, OutOfMemoryError, showValue } from './errors.js';
import { TlbView, ACCESS_CODE, type Access } from './tlb-view.js';
import { PAGE_SIZE, MAX_FILE_BYTES, VM_FAULT_LOCKED, VM_FAULT_NOPAGE, VM_FAULT_RETRY, VM_FAULT_DONE_COW, VM_FAULT_ERROR } from './constants.js';
import { FastViews } from './fast-views.js';

/** How an error message names a backend: its path or URL if it has one. */
function backendName(b: Backend): string {
  const named = b as { path?: unknown; url?: unknown };
  return typeof named.path === 'string' ? named.path : typeof named.url === 'string' ? named.url : 'the backend';
}

/** Every VM_FAULT_* bit Linux defines (0x1 … 0x4000) and VM_FAULT_HINDEX_MASK (0xf0000). */
const VM_FAULT_KNOWN = 0x7f77 | 0xf0000;
import { AddressSpace, accessError } from './address-space.js';
import { XipMemory, XipFile, createXipFile, type XipFileOptions } from './xip.js';
import { DeviceSpace, DeviceFile, createDevice, remapPfnRange, vmInsertPage, type MmioHandler,
  type DeviceOptions } from './device.js';
import { File, VmFault, type Backend, type OpenOptions, AS_READONLY, AS_HAS_FAULT, AS_HAS_MAP_PAGES,
  AS_HAS_PAGE_MKWRITE, AS_HAS_PFN_MKWRITE, AS_DIRTY_ACCOUNT, AS_NO_MAP_PAGES, AS_HAS_READ_PAGES, AS_CAN_PUNCH, AS_SHMEM } from './file.js';

export interface MmuOptions {
  /** Emulated RAM in bytes: a multiple of 2 MiB, at most 3 GiB. Default 64 MiB. */
  ramBytes?: number;
  /** Linux's fault_around_bytes: a power of two from 4096 (off) to 2 MiB. Default 65536. */
  faultAroundBytes?: number;
  /** Seed 001: prefaulted PTEs start old (arm64 with hardware AF). Default false (x86). */
  prefaultOld?: boolean;
  /** Software TLB entries, a power of two. Default 1024. */
  tlbEntries?: number;
  /** false = a kernel without the shared zero page (anonymous reads allocate). Default true. */
  zeroPage?: boolean;
  /** false = vm_normal_page's linear rule for architectures without pte_special (R6.2). */
  pteSpecial?: boolean;
  /** Execute-in-place memory after RAM (no struct page; mmu.xip): a multiple of 2 MiB, 0 allowed. Default 32 MiB. */
  xipBytes?: number;
  /** Read-around window on a page-cache miss (R2.9's ra_pages × 4096). Default 131072. */
  readaheadBytes?: number;
  /**
   * Linux 6.16+: a page-cache miss in a VM_EXEC file mapping reads forward from the faulting
   * page only, to the VMA's end (R2.9). false = read-around as before 6.16. Default true.
   */
  execReadForward?: boolean;
  /**
   * Linux 5.18+: munlock of a page (munmap, exit, a COW in a VM_LOCKED VMA) only queues it,
   * with a reference, on the CPU's mlock folio batch; PG_mlocked is cleared when the batch
   * drains (lru_add_drain, or 31 queued, R8.6). false = cleared at once, no extra reference.
   * Default true.
   */
  mlockBatch?: boolean;
  /**
   * Before Linux 6.18 (6.1 and 6.12 measured): a zap that frees pages through the mmu_gather
   * (munmap, exit, MADV_DONTNEED) drains the mlock folio batch afterwards
   * (free_pages_and_swap_cache's lru_add_drain), so its own munlocks are processed at once.
   * Default false (6.18+).
   */
  tlbFreeDrainsMlock?: boolean;
  /**
   * MADV_FREE queues each page on the per-CPU lazyfree batch with a reference and leaves it
   * on its LRU list (PG_lru set) until the batch is full (15) or an lru_add_drain; a write
   * fault on the page meanwhile copies it instead of reusing it (R5.3): measured on 6.1,
   * 6.12, 6.18 and 7.3 (scenario cow-reuse-after-madv-free). false = the move is seen at
   * once (a kernel that takes the queued folio off the LRU and drains at the reuse check).
   * Default true.
   */
  lazyfreeBatch?: boolean;
  /**
   * Linux 6.18+: a large page-cache folio that one fault maps whole (fault-around over all of
   * its pages) into a VM_LOCKED VMA is mlocked then; one mapped in part is not. false = 6.1,
   * 6.12: only small folios are mlocked at fault time. Default true.
   */
  mlockMappedLargeFolio?: boolean;
  /**
   * Linux 6.16+: a VMA with an anon_vma (it had an anonymous fault) merges into a neighbour
   * without one when a flag change (mprotect, mlock, madvise) makes them equal, unless it was
   * forked. false = 6.1, 6.12: that merge is refused (the other way round still merges).
   * Default true.
   */
  mergeFaultedIntoUnfaulted?: boolean;
  /**
   * Linux 6.15+: the pages of a DAX file system (`createXipFile(…, { fsDax: true })`) are
   * refcounted folios: pagemap shows them as file pages, exclusive when mapped once, and
   * smaps counts them (Rss, Referenced). false = before 6.15: raw DAX pfns without a page
   * (R6.1), and a COW of such a pfn whose PTE is old (a fork child's copy) takes one retried
   * fault first. Default true.
   */
  daxFolios?: boolean;
  /**
   * A disk file system's ftruncate (ext4): ending inside a page zeroes that page's tail through
   * the page cache, caching it if it was not (the next fault on it is minor, R10.2). false =
   * tmpfs-like, an uncached page stays uncached. Default true.
   */
  truncateCachesTail?: boolean;
  /**
   * Readahead allocates large folios (ext4 from 6.16): the marker is placed in the window
   * before it is cut at EOF, and each asynchronous window's folios are two orders larger
   * (R2.9). false = order-0 readahead, the window cut at EOF first (ext4 before 6.16). Default true.
   */
  largeFolioReadahead?: boolean;
  /**
   * Linux 7.x (recorded on 7.3; 6.18 differs): a readahead window that reaches end of file
   * places no PG_readahead marker, so fault-around maps every page of it and no later fault
   * starts an asynchronous window (R2.9). false = the marker is placed as in 6.18 and before.
   * Default true.
   */
  readaheadEofNoMarker?: boolean;
  /**
   * exec_folio_order() (6.16+, with execReadForward): the folio order a page-cache miss in a
   * VM_EXEC mapping reads in; the read starts at the 2^order-page block of the fault. 0 as on
   * x86-64 (default); 4 as on arm64 (64 KiB folios). An integer from 0 to 9.
   */
  execFolioOrder?: number;
  /** MADV_GUARD_INSTALL / MADV_GUARD_REMOVE (Linux 6.13+). false = EINVAL, as 6.1 and 6.12 answer. Default true. */
  guardRegions?: boolean;
  /**
   * How MADV_POPULATE_* counts a fault that dropped the lock for I/O (R11.6): 'retry-major'
   * (6.12+: retried with FAULT_FLAG_TRIED, major) or 'minor' (6.1: the page starts afresh).
   * Default 'retry-major'.
   */
  populateAccounting?: 'retry-major' | 'minor';
  /**
   * How a user fault that dropped the lock for I/O on a page it found (a readahead marker,
   * read_folio) is counted (R11.5): 'vma-lock' (6.7+: the per-VMA-lock retry sets
   * FAULT_FLAG_TRIED only after a major result, so it counts minor) or 'mmap-lock' (before
   * 6.7: every retry carries FAULT_FLAG_TRIED and counts major). Default 'vma-lock'.
   */
  userFaultAccounting?: 'vma-lock' | 'mmap-lock';
  /**
   * Fault-around at end of file (R2.4): with no PTE table yet, filemap_map_pages installs one
   * only where a PMD could map without crossing i_size, so a first ready folio holding the
   * file's last page is left to the fault itself (Linux 6.18, 6.12.y stable). false = 6.1:
   * the table is installed and that folio mapped. Default true.
   */
  faultAroundIsize?: boolean;
  /**
   * Growing a file whose size ends inside a page (ftruncate, R10.2): a disk file system
   * (ext4 from 6.13, 6.6.y / 6.12.y stable) zeroes the rest of the old EOF block through the
   * page cache, caching that page if it was not (with truncateCachesTail). false = 6.1: the
   * old EOF page is neither zeroed nor cached. Default true.
   */
  truncateExtendZeroesTail?: boolean;
  /** Swap space in bytes (a multiple of 4096); default 4 × ramBytes; 0 = no swap. */
  swapBytes?: number;
  /** Where swapped pages go: a Backend used slot by slot (e.g. a NodeFile); default host memory. */
  swapDevice?: SwapDevice;
  /** Where to load the core from (URL, bytes or a compiled module); default build/release.wasm. */
  wasm?: URL | string | ArrayBuffer | Uint8Array | WebAssembly.Module;
}

/** A swap device: slot-sized pages in, slot-sized pages out. */
export interface SwapDevice {
  readPage(slot: number, dst: Uint8Array): number;
  writePage(slot: number, src: Uint8Array): void;
  /** The slot holds nothing any more. */
  discard?(slot: number): void;
}

/** The default swap device: pages kept in host memory. */
export class MemorySwap implements SwapDevice {
  private readonly slots = new Map<number, Uint8Array>();
  get used(): number { return this.slots.size; }
  readPage(slot: number, dst: Uint8Array): number {
    const p = this.slots.get(slot);
    if (!p) return -5;
    dst.set(p);
    return PAGE_SIZE;
  }
  writePage(slot: number, src: Uint8Array): void { this.slots.set(slot, src.slice()); }
  discard(slot: number): void { this.slots.delete(slot); }
}

export interface WalkOptions {
  /** CPL 3 access (default true). */
  user?: boolean;
  /** CR0.WP (default true). */
  wp?: boolean;
  /** EFER.NXE (default true). */
  nxe?: boolean;
  /** Only look: set no accessed/dirty bits (default false). */
  peek?: boolean;
}

export type WalkResult =
  | { ok: true; pa: number; level: 1 | 2 | 3; writable: boolean; user: boolean; exec: boolean; dirty: boolean }
  | { ok: false; errorCode: number };

const MODE_USER = 1, MODE_WP = 2, MODE_NXE = 4, MODE_PEEK = 8;
const TWO_MIB = 2 * 1024 * 1024;
const VA_LIMIT = 2 ** 48;

function modeOf(o: WalkOptions = {}): number {
  return (o.user !== false ? MODE_USER : 0) | (o.wp !== false ? MODE_WP : 0) |
    (o.nxe !== false ? MODE_NXE : 0) | (o.peek ? MODE_PEEK : 0);
}

function accessCode(access: Access): number {
  const c = ACCESS_CODE[access];
  if (c === undefined) throw new RangeError(`access must be 'read', 'write' or 'exec', not ${String(access)}`);
  return c;
}

function checkVa(va: number, what = 'address'): void {
  if (!Number.isInteger(va) || va < 0 || va >= VA_LIMIT) {
    throw new RangeError(`${what} must be an integer in [0, 2^48), got ${showValue(va)}`);
  }
}

function isPow2(n: number): boolean { return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0; }

/** Every createMmu option. A name not here is a typo (`rambytes`): refused, not ignored. */
const OPTION_NAMES = ['ramBytes', 'faultAroundBytes', 'prefaultOld', 'tlbEntries', 'zeroPage', 'pteSpecial',
  'xipBytes', 'readaheadBytes', 'swapBytes', 'swapDevice', 'wasm', 'largeFolioReadahead', 'execReadForward', 'daxFolios',
  'truncateCachesTail', 'guardRegions', 'populateAccounting', 'readaheadEofNoMarker', 'execFolioOrder',
  'userFaultAccounting', 'faultAroundIsize', 'truncateExtendZeroesTail', 'mlockBatch', 'tlbFreeDrainsMlock', 'lazyfreeBatch', 'mlockMappedLargeFolio',
  'mergeFaultedIntoUnfaulted'] as const satisfies readonly (keyof MmuOptions)[];

/** Edit distance, case differences counting half (for "did you mean"). */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const sub = a[i - 1] === b[j - 1] ? 0 : a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0.5 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + sub);
    }
  }
  return d[a.length][b.length];
}

function checkOptionNames(o: object): void {
  for (const name of Object.keys(o)) {
    if ((OPTION_NAMES as readonly string[]).includes(name)) continue;
    // A prefix of a valid name ('faultAround') is as near as a one-letter typo.
    const score = (n: string) => (name.length >= 4 && n.toLowerCase().startsWith(name.toLowerCase()) ? 1 : distance(name.slice(0, 40), n));
    const near = OPTION_NAMES.map((n) => [n, score(n)] as const).sort((x, y) => x[1] - y[1])[0];
    const hint = near[1] <= Math.max(3, name.length / 3) ? `did you mean '${near[0]}'? ` : '';
    throw new RangeError(`createMmu: unknown option '${name}': ${hint}the options are ${OPTION_NAMES.join(', ')}`);
  }
}

function bool(v: unknown, name: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw new RangeError(`${name} must be true or false, got ${showValue(v)}`);
  return v;
}

/** Validate options and fill defaults. Throws RangeError with the offending option named. */
export function resolveOptions(o: MmuOptions): Required<Omit<MmuOptions, 'wasm' | 'swapDevice'>> {
  if (o === null || typeof o !== 'object') throw new RangeError(`createMmu takes an options object, got ${showValue(o)}`);
  checkOptionNames(o);
  if (o.swapDevice !== undefined && (o.swapDevice === null || typeof o.swapDevice.readPage !== 'function' || typeof o.swapDevice.writePage !== 'function')) {
    throw new RangeError('swapDevice needs readPage(slot, dst) and writePage(slot, src)');
  }
  const ramBytes = o.ramBytes ?? 64 * 1024 * 1024;
  if (!Number.isInteger(ramBytes) || ramBytes < TWO_MIB || ramBytes % TWO_MIB !== 0) {
    throw new RangeError(`ramBytes must be a positive multiple of 2 MiB, got ${showValue(ramBytes)}`);
  }
  if (ramBytes > 3 * 1024 ** 3) {
    throw new RangeError(`ramBytes ${ramBytes} is too big for wasm32: at most 3 GiB`);
  }
  const tlbEntries = o.tlbEntries ?? 1024;
  if (!isPow2(tlbEntries) || tlbEntries > 1 << 20) {
    throw new RangeError(`tlbEntries must be a power of two from 1 to 2^20, got ${showValue(tlbEntries)}`);
  }
  const faultAroundBytes = o.faultAroundBytes ?? 65536;
  checkFaultAround(faultAroundBytes);
  const swapBytes = o.swapBytes ?? 4 * ramBytes;
  if (!Number.isInteger(swapBytes) || swapBytes < 0 || swapBytes % PAGE_SIZE !== 0 || swapBytes > 2 ** 44) {
    throw new RangeError(`swapBytes must be a multiple of 4096 from 0 to 2^44, got ${showValue(swapBytes)}`);
  }
  const xipBytes = o.xipBytes ?? 32 * 1024 * 1024;
  if (!Number.isInteger(xipBytes) || xipBytes < 0 || xipBytes % TWO_MIB !== 0) {
    throw new RangeError(`xipBytes must be a non-negative multiple of 2 MiB, got ${showValue(xipBytes)}`);
  }
  if (ramBytes + xipBytes > 3.5 * 1024 ** 3) {
    throw new RangeError(`xipBytes ${xipBytes} with ramBytes ${ramBytes} is too big for wasm32: RAM + XIP at most 3.5 GiB`);
  }
  const readaheadBytes = o.readaheadBytes ?? 131072;
  if (!Number.isInteger(readaheadBytes) || readaheadBytes < PAGE_SIZE || readaheadBytes % PAGE_SIZE !== 0 || readaheadBytes > 256 * 1024 * 1024) {
    throw new RangeError(`readaheadBytes must be a multiple of 4096 from 4096 to 256 MiB, got ${showValue(readaheadBytes)}`);
  }
  return {
    ramBytes, tlbEntries, faultAroundBytes, swapBytes, readaheadBytes, xipBytes,
    prefaultOld: bool(o.prefaultOld, 'prefaultOld', false),
    zeroPage: bool(o.zeroPage, 'zeroPage', true),
    pteSpecial: bool(o.pteSpecial, 'pteSpecial', true),
    execReadForward: bool(o.execReadForward, 'execReadForward', true),
    mlockBatch: bool(o.mlockBatch, 'mlockBatch', true),
    tlbFreeDrainsMlock: bool(o.tlbFreeDrainsMlock, 'tlbFreeDrainsMlock', false),
    lazyfreeBatch: bool(o.lazyfreeBatch, 'lazyfreeBatch', true),
    mlockMappedLargeFolio: bool(o.mlockMappedLargeFolio, 'mlockMappedLargeFolio', true),
    mergeFaultedIntoUnfaulted: bool(o.mergeFaultedIntoUnfaulted, 'mergeFaultedIntoUnfaulted', true),
    daxFolios: bool(o.daxFolios, 'daxFolios', true),
    truncateCachesTail: bool(o.truncateCachesTail, 'truncateCachesTail', true),
    largeFolioReadahead: bool(o.largeFolioReadahead, 'largeFolioReadahead', true),
    readaheadEofNoMarker: bool(o.readaheadEofNoMarker, 'readaheadEofNoMarker', true),
    execFolioOrder: checkExecFolioOrder(o.execFolioOrder ?? 0),
    guardRegions: bool(o.guardRegions, 'guardRegions', true),
    populateAccounting: checkPopulateAccounting(o.populateAccounting ?? 'retry-major'),
    userFaultAccounting: checkUserFaultAccounting(o.userFaultAccounting ?? 'vma-lock'),
    faultAroundIsize: bool(o.faultAroundIsize, 'faultAroundIsize', true),
    truncateExtendZeroesTail: bool(o.truncateExtendZeroesTail, 'truncateExtendZeroesTail', true),
  };
}

function checkExecFolioOrder(n: unknown): number {
  if (!Number.isInteger(n) || (n as number) < 0 || (n as number) > 9) throw new RangeError(`execFolioOrder must be an integer from 0 to 9, got ${showValue(n)}`);
  return n as number;
}

function checkPopulateAccounting(a: string): 'retry-major' | 'minor' {
  if (a !== 'retry-major' && a !== 'minor') throw new RangeError(`populateAccounting must be 'retry-major' or 'minor', got ${showValue(a)}`);
  return a;
}

function checkUserFaultAccounting(a: string): 'vma-lock' | 'mmap-lock' {
  if (a !== 'vma-lock' && a !== 'mmap-lock') throw new RangeError(`userFaultAccounting must be 'vma-lock' or 'mmap-lock', got ${showValue(a)}`);
  return a;
}

function checkFaultAround(b: number): void {
  if (!isPow2(b) || b < PAGE_SIZE || b > TWO_MIB) {
    throw new RangeError(`faultAroundBytes must be a power of two from 4096 to 2 MiB, got ${showValue(b)}`);
  }
}

/** Physical memory: frames from the buddy allocator and bytes by physical address. */
export class PhysicalMemory {
  constructor(private readonly core: Core) {}

  /** RAM size in bytes; physical addresses [0, size) are RAM. */
  get size(): number { return this.core.x.mmu_nr_frames() * PAGE_SIZE; }
  get frames(): number { return this.core.x.mmu_nr_frames(); }
  get freeFrames(): number { return this.core.x.mmu_free_frames(); }
  /** The shared zero page's frame. */
  get zeroPfn(): number { return this.core.x.mmu_zero_pfn(); }

  /** Allocate 2^order contiguous frames (not zeroed); returns the first PFN. */
  alloc(order = 0): number {
    this.core.alive();
    if (!Number.isInteger(order) || order < 0 || order > 9) throw new RangeError(`order must be 0..9, got ${showValue(order)}`);
    const r = this.core.x.phys_alloc(order);
    if (r < 0) throw new LinuxError(-r, 'phys.alloc', `no free block of order ${order}`);
    return r;
  }

  /** Free a block from alloc(); a double or mismatched free is EINVAL. */
  free(pfn: number, order = 0): void {
    this.core.alive();
    if (!Number.isInteger(pfn) || !Number.isInteger(order)) throw new RangeError('pfn and order must be integers');
    const r = this.core.x.phys_free(pfn, order);
    if (r < 0) throw new LinuxError(-r, 'phys.free', r === -16 ? `pfn ${pfn}: the block is still mapped or referenced` : `pfn ${pfn} is not an allocated block of order ${order}`);
  }

  private span(pa: number, n: number): number {
    if (!Number.isInteger(pa) || !Number.isInteger(n) || pa < 0 || n < 0 || pa + n > this.size) {
      throw new RangeError(`physical range [${pa}, ${pa + n}) is outside RAM [0, ${this.size})`);
    }
    return (this.core.x.mmu_ram_base() >>> 0) + pa; // usize arrives as a signed i32
  }

  /** Copy `n` bytes from physical address `pa`. */
  read(pa: number, n: number): Uint8Array {
    const at = this.span(pa, n);
    return this.core.bytes().slice(at, at + n);
  }

  /** Write bytes at physical address `pa`. */
  write(pa: number, data: Uint8Array): void {
    const at = this.span(pa, data.length);
    this.core.bytes().set(data, at);
  }

  /** Read a 64-bit entry (e.g. a PTE) at `pa`. */
  readU64(pa: number): bigint {
    const at = this.span(pa, 8);
    return new DataView(this.core.x.memory.buffer).getBigUint64(at, true);
  }

  /** Write a 64-bit entry at `pa`. */
  writeU64(pa: number, value: bigint): void {
    const at = this.span(pa, 8);
    new DataView(this.core.x.memory.buffer).setBigUint64(at, BigInt.asUintN(64, value), true);
  }
}

/** The hardware TLB for emulators that drive it themselves. */
export class HardwareTlb {
  readonly view: TlbView;
  constructor(private readonly core: Core) { this.view = new TlbView(core); }

  get entries(): number { return this.view.entries; }

  /** Translate through the TLB, walking on a miss. */
  translate(asid: number, cr3Pfn: number, va: number, access: Access, opts?: WalkOptions):
    { ok: true; pa: number } | { ok: false; errorCode: number } {
    this.core.alive();
    checkVa(va);
    if (!Number.isInteger(asid) || asid < 0 || asid >= 4096) throw new RangeError(`asid must be 0..4095, got ${showValue(asid)}`);
    if (!Number.isInteger(cr3Pfn) || cr3Pfn < 0 || cr3Pfn >= 2 ** 31) throw new RangeError(`cr3Pfn must be a frame number, got ${showValue(cr3Pfn)}`);
    const r = this.core.x.hw_translate(asid, cr3Pfn, va, accessCode(access), modeOf(opts));
    if (r >= 0) return { ok: true, pa: r };
    if (r <= -1e9) throw new RangeError(`bad translate arguments (asid ${asid} may belong to an AddressSpace: its ASID is its own)`);
    return { ok: false, errorCode: -r - 1 };
  }

  flushPage(asid: number, va: number): void { checkVa(va); this.core.x.hw_tlb_flush_page(asid, va); }
  flushRange(asid: number, va: number, length: number): void {
    checkVa(va);
    this.core.x.hw_tlb_flush_range(asid, Math.floor(va / PAGE_SIZE) * PAGE_SIZE, Math.ceil((va % PAGE_SIZE + length) / PAGE_SIZE));
  }
  flushAsid(asid: number): void { this.core.x.hw_tlb_flush_asid(asid); }
  flushAll(): void { this.core.x.hw_tlb_flush_all(); }
}

export type MmuStats = Record<StatName, number> & { freeFrames: number; pageTables: number; ramFrames: number; swapSlots: number; swapUsed: number;
  /** Special PTEs found where none may be (vm_normal_page's bad page map report, R6.1). */
  badPageMap: number };

export class Mmu {
  readonly phys: PhysicalMemory;
  readonly tlb: HardwareTlb;
  /** @internal */
  readonly core: Core;
  private fab: number;
  private pfo: boolean;

  private readonly files = new Map<number, File>();
  private readonly spaces = new Map<number, AddressSpace>();
  /**
   * Every error a backend or swap device raised inside the core (the core saw -EIO), oldest
   * first. The failed access also carries it: BusError.cause / LinuxError.cause.
   */
  readonly backendErrors: unknown[] = [];

  /** Execute-in-place memory beyond RAM: physical [xip.base, xip.base + xip.size), no struct page. */
  readonly xip: XipMemory;
  /** Device (MMIO) space above XIP memory: every access is a call to a device's handler. */
  readonly devices: DeviceSpace;

  /** @internal use createMmu() */
  constructor(core: Core, readonly options: Required<Omit<MmuOptions, 'wasm' | 'swapDevice'>>,
              readonly swapDevice: SwapDevice = new MemorySwap()) {
    this.core = core;
    this.installHost();
    core.afterCall = () => this.followSizes();
    this.phys = new PhysicalMemory(core);
    this.tlb = new HardwareTlb(core);
    this.xip = new XipMemory(core);
    this.devices = new DeviceSpace(core, (e) => this.noteBackendError(e));
    this.fab = options.faultAroundBytes;
    this.pfo = options.prefaultOld;
  }

  /** Linux's fault_around_bytes, changeable at run time like the debugfs knob. */
  get faultAroundBytes(): number { return this.fab; }
  set faultAroundBytes(b: number) {
    checkFaultAround(b);
    this.core.x.mmu_set_fault_around_bytes(b);
    this.fab = b;
  }

  /** Seed 001: whether prefaulted PTEs start old. */
  get prefaultOld(): boolean { return this.pfo; }
  set prefaultOld(on: boolean) {
    this.core.x.mmu_set_prefault_old(on ? 1 : 0);
    this.pfo = on;
  }

  /**
   * The hardware page walk over tables the caller built in `phys`: 4 levels from the PML4
   * at frame `cr3Pfn`. Returns the physical address or the #PF error code (P W U RSVD I).
   */
  walk(cr3Pfn: number, va: number, access: Access, opts?: WalkOptions): WalkResult {
    this.core.alive();
    checkVa(va);
    // Beyond 2^31 the i32 would wrap negative (the core's bad-argument -2, not an error code).
    if (!Number.isInteger(cr3Pfn) || cr3Pfn < 0 || cr3Pfn >= 2 ** 31) throw new RangeError(`cr3Pfn must be a frame number, got ${showValue(cr3Pfn)}`);
    const r = this.core.x.hw_walk(cr3Pfn, va, accessCode(access), modeOf(opts));
    if (r !== -1) return { ok: false, errorCode: r };
    const perms = this.core.x.hw_walk_perms();
    return {
      ok: true, pa: this.core.x.hw_walk_pa(), level: this.core.x.hw_walk_level() as 1 | 2 | 3,
      writable: (perms & 1) !== 0, user: (perms & 2) !== 0, exec: (perms & 4) !== 0, dirty: (perms & 8) !== 0,
    };
  }

  /** A new, empty address space (its own page tables and ASID). */
  createAddressSpace(): AddressSpace {
    this.core.alive();
    const id = this.core.x.mm_create();
    if (id < 0) throw new OutOfMemoryError('createAddressSpace: no address-space id or frame left');
    return this.attach(id);
  }

  private attach(id: number): AddressSpace {
    const mm = AddressSpace.create(this.core, id, (f) => this.files.get(f), (m) => this.spaces.delete(m.id));
    mm.spawn = (c) => this.attach(c);
    this.spaces.set(id, mm);
    return mm;
  }

  /**
   * All emulated RAM, then execute-in-place memory, as one zero-copy byte view: index =
   * physical address (`phys.size` bytes of RAM, then `xip.size`). createMmu makes the Wasm
   * memory at its final size (src/core-memory.ts), so in ordinary use it never grows and this
   * view stays valid for the machine's life. It grows only past that reserve — more than
   * 65,536 VMA records in use at once over all address spaces (mmap, a split by mprotect /
   * munmap / mlock, fork) — or for a module built without `--importMemory`; never in a fault
   * or a load/store. Growth detaches every view (length 0): read `mmu.ram` again (each read
   * checks, and makes a fresh view only when needed).
   */
  get ram(): Uint8Array { return FastViews.get(this.core).ram; }

  /**
   * The exports of the Wasm module this machine runs: the core's, plus your own when
   * `createMmu({ wasm })` loaded a module that re-exports the core (README "For emulator
   * authors"). Each call is guarded: a trap inside marks the machine dead.
   */
  get wasmExports(): Record<string, unknown> { return this.core.x; }

  /**
   * The typed error for a negative access result: mm_translate's, or the code a user Wasm
   * module reads from assembly/fastpath.ts's mmu_fault() (-11 SegmentationFault, -7
   * BusError, -101 OutOfMemoryError, -102 LinuxError EAGAIN, -22 LinuxError EINVAL: the
   * address space is not alive). The signal's address and code are the core's last fault.
   */
  faultError(code: number, what = 'access'): Error {
    if (code === -22) return new LinuxError(22, what, 'the address space is not alive');
    if (code !== -7 && code !== -11 && code !== -101 && code !== -102) return new RangeError(`${what}: ${code} is not an access fault code`);
    return accessError(this.core, code, what);
  }

  /** Live address spaces. */
  addressSpaces(): AddressSpace[] { return [...this.spaces.values()]; }

  /** Open a file over a backend (MemoryFile, NodeFile, or your own). */
  openFile(backend: Backend, opts: OpenOptions = {}): File {
    this.core.alive();
    if (!backend || typeof backend.size !== 'function' || typeof backend.readPage !== 'function') {
      throw new RangeError('a backend needs size() and readPage(index, dst)');
    }
    let size: number;
    try { size = backend.size(); } catch (e) {
      throw new LinuxError(5, 'openFile', undefined, e);
    }
    if (!Number.isInteger(size) || size < 0 || size > MAX_FILE_BYTES) throw new RangeError(`backend size must be an integer in [0, 2^53], got ${showValue(size)}`);
    let flags = 0;
    if (opts.readOnly || (backend as { readOnly?: unknown }).readOnly === true) flags |= AS_READONLY;
    if (opts.shmem) flags |= AS_SHMEM; // tmpfs: no write-notify, whatever dirtyAccounting says
    else if (opts.dirtyAccounting !== false) flags |= AS_DIRTY_ACCOUNT;
    if (opts.noMapPages) flags |= AS_NO_MAP_PAGES;
    if (!opts.shmem) { // shmem has its own fault, map_pages and hole punching
      if (backend.fault) flags |= AS_HAS_FAULT;
      if (backend.mapPages) flags |= AS_HAS_MAP_PAGES;
      if (backend.pageMkwrite) flags |= AS_HAS_PAGE_MKWRITE;
      if (typeof backend.readPages === 'function') flags |= AS_HAS_READ_PAGES;
      if (backend.pfnMkwrite) flags |= AS_HAS_PFN_MKWRITE;
      if (backend.punchHole) flags |= AS_CAN_PUNCH;
    }
    const id = this.core.x.file_open(size, flags);
    if (id < 0) throw new LinuxError(23, 'openFile', 'too many open files');
    const f = new File(this.core, id, backend, (x) => this.files.delete(x.id));
    this.files.set(id, f);
    if (opts.shmem) loadShmem(f, backend, size);
    return f;
  }

  /**
   * A DAX / XIP file whose data lives in XIP memory (§7): mapped without page cache or
   * frames, holes read as the zero page, private writes COW in the fault handler (R7.1).
   */
  createXipFile(data: Uint8Array | number, opts: XipFileOptions = {}): XipFile {
    this.core.alive();
    return createXipFile(this.core, this.xip, data, opts, (make) => this.registerFile(make));
  }

  /** A device of `size` bytes of MMIO space; mmap of the file maps it (remap_pfn_range, R6.3). */
  createDevice(size: number, handler: MmioHandler, opts: DeviceOptions = {}): DeviceFile {
    this.core.alive();
    return createDevice(this.core, this.devices, size, handler, opts, (make) => this.registerFile(make));
  }

  /** remap_pfn_range (R6.3) on the VMA of `mm` at `addr`: special PTEs for pfns from `pfn`. */
  remapPfnRange(mm: AddressSpace, addr: number, pfn: number, size: number): void {
    this.core.alive();
    remapPfnRange(this.core, mm.id, addr, pfn, size);
  }

  /** vm_insert_page (R6.5): map RAM frame `pfn` (refcount > 0, not anonymous) at `addr`, refcounted. */
  vmInsertPage(mm: AddressSpace, addr: number, pfn: number): void {
    this.core.alive();
    vmInsertPage(this.core, mm.id, addr, pfn);
  }

  /** @internal A File subclass (src/xip.ts, src/device.ts) joins this machine's files. */
  private registerFile<F extends File>(make: (onClose: (f: File) => void) => F): F {
    const f = make((x) => this.files.delete(x.id));
    this.files.set(f.id, f);
    return f;
  }

  // The host side of assembly/host.ts. Each handler runs inside a Wasm call and must not
  // throw: a backend's exception becomes -EIO (a SIGBUS for the access, as Linux gives
  // for an I/O error) and is kept in backendErrors.
  /** Files whose backend size changed outside: refreshed as the current core call returns. */
  private readonly staleSizes = new Set<number>();

  /** A file whose size may have changed outside: File.refreshSize once no core call runs. */
  private markStale(fileId: number): void {
    this.staleSizes.add(fileId);
    this.core.pending = true;
  }

  /** Core.afterCall: follow the size changes found during the call (R10.2, like truncate(2) from elsewhere). */
  private followSizes(): void {
    const errors = this.core.callErrors.slice(); // the call's errors stay the ones it reports
    for (const id of this.staleSizes) {
      try { this.files.get(id)?.refreshSize(); } catch (e) { this.backendErrors.push(e); errors.push(e); }
    }
    this.staleSizes.clear();
    this.core.callErrors.length = 0;
    this.core.callErrors.push(...errors);
  }

  private noteBackendError(e: unknown): void {
    this.backendErrors.push(e);
    this.core.callErrors.push(e);
  }

  private installHost(): void {
    const h = this.core.host;
    const vmf = new VmFault(this.core);
    const fail = (e: unknown, code = -5) => { this.noteBackendError(e); return code; };
    // A vm_fault_t from a backend: only VM_FAULT_* bits (and the hpage index) mean anything.
    // Anything else (undefined, 12345, NaN) is the backend's bug: SIGBUS, with the reason kept.
    const faultResult = (v: unknown, method: string, undefinedOk: boolean): number => {
      if (v === undefined && undefinedOk) return 0;
      if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff && (v & ~VM_FAULT_KNOWN) === 0) return v;
      const bad = typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff
        ? `${v} (0x${v.toString(16)}: bits 0x${((v & ~VM_FAULT_KNOWN) >>> 0).toString(16)} are no VM_FAULT_* flag)`
        : typeof v === 'string' ? `the string ${JSON.stringify(v)}` : String(v);
      return fail(new RangeError(`the backend's ${method}() returned ${bad}: it must return VM_FAULT_* bits`), 2);
    };
    h.readPage = (fileId, index, dst) => {
      const f = this.files.get(fileId);
      if (!f) return -5;
      try {
        const view = this.core.bytes().subarray(dst, dst + PAGE_SIZE);
        const n = f.backend.readPage(index, view);
        if (n === -11) return -11; // -EAGAIN: an async backend (FetchFile) fetches it; the fault retries
        if (!Number.isInteger(n) || n < 0 || n > PAGE_SIZE) return fail(new RangeError(`readPage returned ${showValue(n)}: must be 0..4096 bytes`));
        const pos = index * PAGE_SIZE;
        if (n < Math.min(PAGE_SIZE, f.knownSize - pos)) {
          // Short of what the size promised: did the file shrink outside? (a cheap size() call)
          const size = f.backend.size();
          if (size !== f.knownSize) this.markStale(fileId);
          if (pos >= size) {
            return fail(new RangeError(`${backendName(f.backend)}: the file shrank to ${size} bytes outside the emulator (it had ${f.knownSize}): page ${index} is past its end`));
          }
        }
        return n;
      } catch (e) { return fail(e); }
    };
    // One backend read for a run of pages (read-around of a backend with readPages), through
    // one scratch buffer, then a copy into each frame.
    let scratch = new Uint8Array(0);
    h.readPages = (fileId, index, n, dsts) => {
      const f = this.files.get(fileId);
      if (!f?.backend.readPages) return -5;
      try {
        const len = n * PAGE_SIZE;
        if (scratch.length < len) scratch = new Uint8Array(len);
        const got = f.backend.readPages(index, n, scratch.subarray(0, len));
        if (!Number.isInteger(got) || got < 0 || got > len) return fail(new RangeError(`readPages returned ${showValue(got)}: must be 0..${len} bytes`));
        if (got < Math.min(len, f.knownSize - index * PAGE_SIZE) && f.backend.size() !== f.knownSize) {
          // Short of what the size promised and the file changed outside: the core falls back
          // to readPage page by page, which tells each page's fate (SIGBUS past the new end).
          this.markStale(fileId);
          return -5;
        }
        const mem = this.core.bytes();
        const at = new Uint32Array(mem.buffer, dsts, n);
        for (let i = 0; i < n && i * PAGE_SIZE < got; i++) {
          mem.set(scratch.subarray(i * PAGE_SIZE, Math.min(got, (i + 1) * PAGE_SIZE)), at[i]);
        }
        return got;
      } catch (e) { return fail(e); }
    };
    h.writePage = (fileId, index, src, len) => {
      const f = this.files.get(fileId);
      if (!f) return -5;
      if (!f.backend.writePage) return 0; // a read-only backend keeps nothing
      try {
        // Re-check the size before every write-back: a file shrunk outside is never grown
        // back (its pages past the new end are dropped as the call returns, R10.2).
        const pos = index * PAGE_SIZE;
        const size = f.backend.size();
        if (size !== f.knownSize) this.markStale(fileId);
        if (size < f.knownSize && pos + len > size) {
          len = Math.max(0, size - pos);
          if (len === 0) return 0;
        }
        f.backend.writePage(index, this.core.bytes().slice(src, src + len));
        if (size >= f.knownSize && pos + len > f.knownSize) f.knownSize = pos + len; // a pwrite past EOF reached it
        return 0;
      } catch (e) { return fail(e); }
    };
    h.punchHole = (fileId, off, len) => {
      const f = this.files.get(fileId);
      if (!f?.backend.punchHole) return -95; // EOPNOTSUPP
      try { f.backend.punchHole(off, len); return 0; } catch (e) { return fail(e); }
    };
    h.fault = (fileId) => {
      const f = this.files.get(fileId);
      if (!f?.backend.fault) return 2; // VM_FAULT_SIGBUS
      try {
        const r = faultResult(f.backend.fault(vmf), 'fault', false);
        // "Handled" with no page handed back and nothing mapped: the core's SIGBUS needs a reason.
        if ((r & (VM_FAULT_LOCKED | VM_FAULT_NOPAGE | VM_FAULT_RETRY | VM_FAULT_DONE_COW | VM_FAULT_ERROR)) === 0 && vmf.page === null) {
          this.noteBackendError(new RangeError(`the backend's fault() returned ${r} without a page: fill one with vmf.fillPage() and return VM_FAULT_LOCKED, or map one and return VM_FAULT_NOPAGE`));
        }
        return r;
      } catch (e) { return fail(e, 2); }
    };
    h.mapPages = (fileId, start, end) => {
      const f = this.files.get(fileId);
      try { f?.backend.mapPages?.(vmf, start, end); } catch (e) { fail(e); }
    };
    h.pageMkwrite = (fileId) => {
      const f = this.files.get(fileId);
      try { return faultResult(f?.backend.pageMkwrite?.(vmf), 'pageMkwrite', true); } catch (e) { return fail(e, 2); }
    };
    h.swapWrite = (slot, src) => {
      try { this.swapDevice.writePage(slot, this.core.bytes().slice(src, src + PAGE_SIZE)); return 0; } catch (e) { return fail(e); }
    };
    h.swapRead = (slot, dst) => {
      try {
        const n = this.swapDevice.readPage(slot, this.core.bytes().subarray(dst, dst + PAGE_SIZE));
        if (n < 0) this.noteBackendError(new Error(`the swap device's readPage(${slot}) returned ${n}`));
        return n < 0 ? n : 0;
      } catch (e) { return fail(e); }
    };
    h.swapFree = (slot) => { try { this.swapDevice.discard?.(slot); } catch (e) { fail(e); } };
    h.mmio = (pa, buf, len, write) => this.devices.access(pa, buf, len, write !== 0);
    h.pfnMkwrite = (fileId) => {
      const f = this.files.get(fileId);
      try { return faultResult(f?.backend.pfnMkwrite?.(vmf), 'pfnMkwrite', true); } catch (e) { return fail(e, 2); }
    };
  }

  /** Reclaim up to `pages` frames now (aging, write-back, swap-out); returns frames freed. */
  reclaim(pages: number): number {
    this.core.alive();
    if (!Number.isInteger(pages) || pages < 0) throw new RangeError(`pages must be a non-negative integer, got ${showValue(pages)}`);
    return this.core.x.mmu_reclaim(pages);
  }

  /**
   * Linux's lru_add_drain on the emulated CPU: the mlock batch's queued mlock / munlock entries
   * are handled now (PG_mlocked cleared where the last locked mapping went, the batch's page
   * references dropped; R8.6). What another process's drain on the same CPU would do.
   */
  lruAddDrain(): void {
    this.core.alive();
    this.core.x.mmu_lru_add_drain();
  }

  /** Guest page hinting (R12): each RAM frame's usage state and host residency. */
  pageState(pfn: number): { usage: 'stable' | 'unused' | 'volatile' | 'potentially-volatile'; residency: 'resident' | 'preserved' | 'discarded' } {
    this.core.alive();
    const r = this.core.x.page_hint_state(pfn);
    if (r < 0) throw new RangeError(`pfn ${pfn} is not a RAM frame`);
    const usage = (['stable', 'unused', 'volatile', 'potentially-volatile'] as const)[r & 3];
    const residency = (['resident', 'preserved', 'discarded', 'discarded'] as const)[(r >> 4) & 3];
    return { usage, residency };
  }

  /** What a hypervisor may do to guest frames (guest page hinting, R12.2). */
  readonly hypervisor = {
    /** Discard a frame if its state allows it without I/O; true if discarded. */
    discard: (pfn: number): boolean => { this.core.alive(); return this.core.x.hv_discard_pfn(pfn) === 1; },
    /** Swap a frame out host-side (content kept, back on the next access); true if done. */
    preserve: (pfn: number): boolean => { this.core.alive(); return this.core.x.hv_preserve_pfn(pfn) === 1; },
    /** Host reclaim of up to `n` frames: discards what it may, preserves the rest. */
    reclaim: (n: number): { discarded: number; preserved: number } => {
      this.core.alive();
      const r = this.core.x.hv_reclaim_frames(n);
      return { discarded: Math.floor(r / 65536), preserved: r % 65536 };
    },
  };

  /** vmstat-like counters, TLB hits/misses/flushes, free frames. */
  stats(): MmuStats {
    return {
      ...this.core.stats(),
      freeFrames: this.core.x.mmu_free_frames(),
      pageTables: this.core.x.mmu_nr_pgtables(),
      ramFrames: this.core.x.mmu_nr_frames(),
      badPageMap: this.core.x.mmu_special_stat(0),
      swapSlots: Math.max(0, this.core.x.mmu_swap_info(0) - 1),
      swapUsed: this.core.x.mmu_swap_info(1),
    };
  }

  /** Every broken invariant of the core, as a sentence; [] when it is consistent. */
  checkInvariants(): string[] {
    this.core.alive();
    return this.core.invariants();
  }
}

/** Create an emulated machine. Every option has a sane default. */
export async function createMmu(options: MmuOptions = {}): Promise<Mmu> {
  const opts = resolveOptions(options);
  const host: HostHandlers = {
    readPage: () => -5, readPages: () => -5, writePage: () => -5, fault: () => 2, mapPages: () => {},
    pageMkwrite: () => 0, pfnMkwrite: () => 0, punchHole: () => -95, mmio: () => -5, swapWrite: () => -5, swapRead: () => -5, swapFree: () => {},
  };
  // The core's memory at its final size: it never grows in ordinary use (src/core-memory.ts).
  const core = await loadCore(host, options.wasm, coreHeapBytes({ ramBytes: opts.ramBytes, xipBytes: opts.xipBytes,
    tlbEntries: opts.tlbEntries, swapSlots: opts.swapBytes === 0 ? 0 : opts.swapBytes / PAGE_SIZE + 1 }));
  core.x.mmu_set_xip_bytes(opts.xipBytes);
  const r = core.x.mmu_boot(opts.ramBytes, opts.tlbEntries);
  if (r < 0) {
    if (r === -12) throw new RangeError(`ramBytes ${opts.ramBytes}: linear memory cannot grow that far`);
    throw new LinuxError(-r, 'createMmu');
  }
  core.x.mmu_set_fault_around_bytes(opts.faultAroundBytes);
  core.x.mmu_set_prefault_old(opts.prefaultOld ? 1 : 0);
  core.x.mmu_set_readahead_pages(opts.readaheadBytes / PAGE_SIZE);
  core.x.mmu_set_zero_page(opts.zeroPage ? 1 : 0);
  core.x.mmu_set_exec_read_forward(opts.execReadForward ? 1 : 0);
  core.x.mmu_set_mlock_batch(opts.mlockBatch ? 1 : 0);
  core.x.mmu_set_tlb_free_drains_mlock(opts.tlbFreeDrainsMlock ? 1 : 0);
  core.x.mmu_set_lazyfree_batch(opts.lazyfreeBatch ? 1 : 0);
  core.x.mmu_set_mlock_mapped_large(opts.mlockMappedLargeFolio ? 1 : 0);
  core.x.mmu_set_merge_faulted_into_unfaulted(opts.mergeFaultedIntoUnfaulted ? 1 : 0);
  core.x.mmu_set_dax_folios(opts.daxFolios ? 1 : 0);
  core.x.mmu_set_truncate_caches_tail(opts.truncateCachesTail ? 1 : 0);
  core.x.mmu_set_large_folio_readahead(opts.largeFolioReadahead ? 1 : 0);
  core.x.mmu_set_readahead_eof_no_marker(opts.readaheadEofNoMarker ? 1 : 0);
  core.x.mmu_set_exec_folio_order(opts.execFolioOrder);
  core.x.mmu_set_guard_regions(opts.guardRegions ? 1 : 0);
  core.x.mmu_set_populate_retry_tried(opts.populateAccounting === 'retry-major' ? 1 : 0);
  core.x.mmu_set_user_retry_tried(opts.userFaultAccounting === 'mmap-lock' ? 1 : 0);
  core.x.mmu_set_fault_around_isize(opts.faultAroundIsize ? 1 : 0);
  core.x.mmu_set_trunc_extend_zeroes_tail(opts.truncateExtendZeroesTail ? 1 : 0);
  core.x.mmu_set_pte_special(opts.pteSpecial ? 1 : 0);
  core.x.mmu_swap_init(opts.swapBytes === 0 ? 0 : opts.swapBytes / PAGE_SIZE + 1);
  return new Mmu(core, opts, options.swapDevice);
}

/** A tmpfs file's data: the backend's bytes written into the page cache, page by page (write(2)). */
function loadShmem(f: File, backend: Backend, size: number): void {
  const buf = new Uint8Array(PAGE_SIZE);
  for (let i = 0; i * PAGE_SIZE < size; i++) {
    let n: number;
    try { n = backend.readPage(i, buf); } catch (e) { f.close(true); throw new LinuxError(5, 'openFile', undefined, e); }
    if (!Number.isInteger(n) || n < 0 || n > PAGE_SIZE) { f.close(true); throw new LinuxError(5, 'openFile', `readPage(${i}) returned ${showValue(n)}`); }
    const len = Math.min(n, size - i * PAGE_SIZE);
    if (len > 0) f.pwrite(i * PAGE_SIZE, buf.subarray(0, len));
  }
}
