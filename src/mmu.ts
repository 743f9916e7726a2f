// Mmu: one emulated machine — RAM, the hardware walker and TLB, and (in the layers
// above) address spaces and files. Created by createMmu().
import { loadCore, type Core, type HostHandlers, type StatName } from './core.js';
import { LinuxError, OutOfMemoryError } from './errors.js';
import { TlbView, ACCESS_CODE, type Access } from './tlb-view.js';
import { PAGE_SIZE } from './constants.js';
import { AddressSpace } from './address-space.js';
import { XipMemory, XipFile, createXipFile, type XipFileOptions } from './xip.js';
import { DeviceSpace, DeviceFile, createDevice, remapPfnRange, vmInsertPage, type MmioHandler,
  type DeviceOptions } from './device.js';
import { File, VmFault, type Backend, type OpenOptions, AS_READONLY, AS_HAS_FAULT, AS_HAS_MAP_PAGES,
  AS_HAS_PAGE_MKWRITE, AS_HAS_PFN_MKWRITE, AS_DIRTY_ACCOUNT, AS_NO_MAP_PAGES, AS_CAN_PUNCH } from './file.js';

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
  /** MADV_GUARD_INSTALL / MADV_GUARD_REMOVE (Linux 6.13+). false = EINVAL, as 6.1 and 6.12 answer. Default true. */
  guardRegions?: boolean;
  /**
   * How MADV_POPULATE_* counts a fault that dropped the lock for I/O (R11.6): 'retry-major'
   * (6.12+: retried with FAULT_FLAG_TRIED, major) or 'minor' (6.1: the page starts afresh).
   * Default 'retry-major'.
   */
  populateAccounting?: 'retry-major' | 'minor';
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
    throw new RangeError(`${what} must be an integer in [0, 2^48), got ${va}`);
  }
}

function isPow2(n: number): boolean { return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0; }

/** Validate options and fill defaults. Throws RangeError with the offending option named. */
export function resolveOptions(o: MmuOptions): Required<Omit<MmuOptions, 'wasm' | 'swapDevice'>> {
  const ramBytes = o.ramBytes ?? 64 * 1024 * 1024;
  if (!Number.isInteger(ramBytes) || ramBytes < TWO_MIB || ramBytes % TWO_MIB !== 0) {
    throw new RangeError(`ramBytes must be a positive multiple of 2 MiB, got ${ramBytes}`);
  }
  if (ramBytes > 3 * 1024 ** 3) {
    throw new RangeError(`ramBytes ${ramBytes} is too big for wasm32: at most 3 GiB`);
  }
  const tlbEntries = o.tlbEntries ?? 1024;
  if (!isPow2(tlbEntries) || tlbEntries > 1 << 20) {
    throw new RangeError(`tlbEntries must be a power of two from 1 to 2^20, got ${tlbEntries}`);
  }
  const faultAroundBytes = o.faultAroundBytes ?? 65536;
  checkFaultAround(faultAroundBytes);
  const swapBytes = o.swapBytes ?? 4 * ramBytes;
  if (!Number.isInteger(swapBytes) || swapBytes < 0 || swapBytes % PAGE_SIZE !== 0 || swapBytes > 2 ** 44) {
    throw new RangeError(`swapBytes must be a multiple of 4096 from 0 to 2^44, got ${swapBytes}`);
  }
  const xipBytes = o.xipBytes ?? 32 * 1024 * 1024;
  if (!Number.isInteger(xipBytes) || xipBytes < 0 || xipBytes % TWO_MIB !== 0) {
    throw new RangeError(`xipBytes must be a non-negative multiple of 2 MiB, got ${xipBytes}`);
  }
  if (ramBytes + xipBytes > 3.5 * 1024 ** 3) {
    throw new RangeError(`xipBytes ${xipBytes} with ramBytes ${ramBytes} is too big for wasm32: RAM + XIP at most 3.5 GiB`);
  }
  const readaheadBytes = o.readaheadBytes ?? 131072;
  if (!Number.isInteger(readaheadBytes) || readaheadBytes < PAGE_SIZE || readaheadBytes % PAGE_SIZE !== 0 || readaheadBytes > 256 * 1024 * 1024) {
    throw new RangeError(`readaheadBytes must be a multiple of 4096 from 4096 to 256 MiB, got ${readaheadBytes}`);
  }
  return {
    ramBytes, tlbEntries, faultAroundBytes, swapBytes, readaheadBytes, xipBytes,
    prefaultOld: o.prefaultOld ?? false,
    zeroPage: o.zeroPage ?? true,
    pteSpecial: o.pteSpecial ?? true,
    execReadForward: o.execReadForward ?? true,
    truncateCachesTail: o.truncateCachesTail ?? true,
    largeFolioReadahead: o.largeFolioReadahead ?? true,
    guardRegions: o.guardRegions ?? true,
    populateAccounting: checkPopulateAccounting(o.populateAccounting ?? 'retry-major'),
  };
}

function checkPopulateAccounting(a: string): 'retry-major' | 'minor' {
  if (a !== 'retry-major' && a !== 'minor') throw new RangeError(`populateAccounting must be 'retry-major' or 'minor', got ${String(a)}`);
  return a;
}

function checkFaultAround(b: number): void {
  if (!isPow2(b) || b < PAGE_SIZE || b > TWO_MIB) {
    throw new RangeError(`faultAroundBytes must be a power of two from 4096 to 2 MiB, got ${b}`);
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
    if (!Number.isInteger(order) || order < 0 || order > 9) throw new RangeError(`order must be 0..9, got ${order}`);
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
    if (!Number.isInteger(asid) || asid < 0 || asid >= 4096) throw new RangeError(`asid must be 0..4095, got ${asid}`);
    if (!Number.isInteger(cr3Pfn) || cr3Pfn < 0 || cr3Pfn >= 2 ** 31) throw new RangeError(`cr3Pfn must be a frame number, got ${cr3Pfn}`);
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
  /** Errors a backend threw inside a fault, kept for the caller (the core saw -EIO). */
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
    this.phys = new PhysicalMemory(core);
    this.tlb = new HardwareTlb(core);
    this.xip = new XipMemory(core);
    this.devices = new DeviceSpace(core, (e) => this.backendErrors.push(e));
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
    if (!Number.isInteger(cr3Pfn) || cr3Pfn < 0 || cr3Pfn >= 2 ** 31) throw new RangeError(`cr3Pfn must be a frame number, got ${cr3Pfn}`);
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
    const mm = new AddressSpace(this.core, id, (f) => this.files.get(f), (m) => this.spaces.delete(m.id));
    mm.spawn = (c) => this.attach(c);
    this.spaces.set(id, mm);
    return mm;
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
      throw Object.assign(new LinuxError(5, 'openFile', `the backend's size() threw: ${(e as Error)?.message ?? e}`), { cause: e });
    }
    if (!Number.isInteger(size) || size < 0 || size > 2 ** 44) throw new RangeError(`backend size must be an integer in [0, 2^44], got ${size}`);
    let flags = 0;
    if (opts.readOnly || (backend as { readOnly?: unknown }).readOnly === true) flags |= AS_READONLY;
    if (opts.dirtyAccounting !== false) flags |= AS_DIRTY_ACCOUNT;
    if (opts.noMapPages) flags |= AS_NO_MAP_PAGES;
    if (backend.fault) flags |= AS_HAS_FAULT;
    if (backend.mapPages) flags |= AS_HAS_MAP_PAGES;
    if (backend.pageMkwrite) flags |= AS_HAS_PAGE_MKWRITE;
    if (backend.pfnMkwrite) flags |= AS_HAS_PFN_MKWRITE;
    if (backend.punchHole) flags |= AS_CAN_PUNCH;
    const id = this.core.x.file_open(size, flags);
    if (id < 0) throw new LinuxError(23, 'openFile', 'too many open files');
    const f = new File(this.core, id, backend, (x) => this.files.delete(x.id));
    this.files.set(id, f);
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
  private installHost(): void {
    const h = this.core.host;
    const vmf = new VmFault(this.core);
    const fail = (e: unknown, code = -5) => { this.backendErrors.push(e); return code; };
    h.readPage = (fileId, index, dst) => {
      const f = this.files.get(fileId);
      if (!f) return -5;
      try {
        const view = this.core.bytes().subarray(dst, dst + PAGE_SIZE);
        const n = f.backend.readPage(index, view);
        if (n === -11) return -11; // -EAGAIN: an async backend (FetchFile) fetches it; the fault retries
        if (!Number.isInteger(n) || n < 0 || n > PAGE_SIZE) return fail(new RangeError(`readPage returned ${n}: must be 0..4096 bytes`));
        return n;
      } catch (e) { return fail(e); }
    };
    h.writePage = (fileId, index, src, len) => {
      const f = this.files.get(fileId);
      if (!f) return -5;
      if (!f.backend.writePage) return 0; // a read-only backend keeps nothing
      try {
        f.backend.writePage(index, this.core.bytes().slice(src, src + len));
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
      try { return f.backend.fault(vmf) >>> 0; } catch (e) { return fail(e, 2); }
    };
    h.mapPages = (fileId, start, end) => {
      const f = this.files.get(fileId);
      try { f?.backend.mapPages?.(vmf, start, end); } catch (e) { fail(e); }
    };
    h.pageMkwrite = (fileId) => {
      const f = this.files.get(fileId);
      try { return (f?.backend.pageMkwrite?.(vmf) ?? 0) >>> 0; } catch (e) { return fail(e, 2); }
    };
    h.swapWrite = (slot, src) => {
      try { this.swapDevice.writePage(slot, this.core.bytes().slice(src, src + PAGE_SIZE)); return 0; } catch (e) { return fail(e); }
    };
    h.swapRead = (slot, dst) => {
      try {
        const n = this.swapDevice.readPage(slot, this.core.bytes().subarray(dst, dst + PAGE_SIZE));
        return n < 0 ? n : 0;
      } catch (e) { return fail(e); }
    };
    h.swapFree = (slot) => { try { this.swapDevice.discard?.(slot); } catch (e) { fail(e); } };
    h.mmio = (pa, buf, len, write) => this.devices.access(pa, buf, len, write !== 0);
    h.pfnMkwrite = (fileId) => {
      const f = this.files.get(fileId);
      try { return (f?.backend.pfnMkwrite?.(vmf) ?? 0) >>> 0; } catch (e) { return fail(e, 2); }
    };
  }

  /** Reclaim up to `pages` frames now (aging, write-back, swap-out); returns frames freed. */
  reclaim(pages: number): number {
    this.core.alive();
    if (!Number.isInteger(pages) || pages < 0) throw new RangeError(`pages must be a non-negative integer, got ${pages}`);
    return this.core.x.mmu_reclaim(pages);
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
    readPage: () => -5, writePage: () => -5, fault: () => 2, mapPages: () => {},
    pageMkwrite: () => 0, pfnMkwrite: () => 0, punchHole: () => -95, mmio: () => -5, swapWrite: () => -5, swapRead: () => -5, swapFree: () => {},
  };
  const core = await loadCore(host, options.wasm);
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
  core.x.mmu_set_truncate_caches_tail(opts.truncateCachesTail ? 1 : 0);
  core.x.mmu_set_large_folio_readahead(opts.largeFolioReadahead ? 1 : 0);
  core.x.mmu_set_guard_regions(opts.guardRegions ? 1 : 0);
  core.x.mmu_set_populate_retry_tried(opts.populateAccounting === 'retry-major' ? 1 : 0);
  core.x.mmu_set_pte_special(opts.pteSpecial ? 1 : 0);
  core.x.mmu_swap_init(opts.swapBytes === 0 ? 0 : opts.swapBytes / PAGE_SIZE + 1);
  return new Mmu(core, opts, options.swapDevice);
}
