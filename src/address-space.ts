// AddressSpace: one emulated process's memory — Linux's mm_struct and its system calls.
import type { Core } from './core.js';
import { LinuxError, SegmentationFault, BusError, OutOfMemoryError, CoreCrashedError, showValue } from './errors.js';
import { ACCESS_CODE, type Access } from './tlb-view.js';
import { File as FileClass, type File } from './file.js';
import { FastViews } from './fast-views.js';
import { isAsyncBackend } from './fetch-file.js';
import { PAGE_SIZE, MS_SYNC, VM_READ, VM_WRITE, VM_EXEC, VM_SHARED, VM_MAYSHARE, MAP_POPULATE, MAP_NONBLOCK,
  MAP_LOCKED, MAX_RW_COUNT, MAX_PAGES_PER_CALL, VM_LOCKED } from './constants.js';

/** @internal A file kind's f_op->mmap (src/xip.ts, src/device.ts): 0 or -errno. */
interface MmapHook { mmapHook(mm: number, addr: number, length: number, pgoff: number): number }

export interface MmapOptions {
  /** A hint, or the exact address with MAP_FIXED / MAP_FIXED_NOREPLACE. */
  addr?: number;
  length: number;
  prot: number;
  flags: number;
  file?: File;
  /** Byte offset in the file: a multiple of 4096. */
  offset?: number;
}

/** One page as /proc/pid/pagemap reports it, plus the PTE bits the kernel hides. */
export interface PageInfo {
  present: boolean;
  swapped: boolean;
  /** A page-cache or shared-anonymous page (pagemap bit 61). */
  file: boolean;
  /** Mapped exactly once in the whole system (bit 56). */
  exclusive: boolean;
  softDirty: boolean;
  uffdWp: boolean;
  guard: boolean;
  pfn: number;
  swapType: number;
  swapOffset: number;
  young: boolean;
  dirty: boolean;
  writable: boolean;
  special: boolean;
  protnone: boolean;
  zeroPage: boolean;
  mlocked: boolean;
}

export interface VmaInfo {
  start: number;
  end: number;
  /** Like /proc/pid/maps: 'rw-p', 'r--s' … */
  perms: string;
  flags: number;
  /** File page offset of `start` (for anonymous memory: start / 4096). */
  pgoff: number;
  /** The file id, or 0 for anonymous memory. */
  file: number;
  shmem: boolean;
}

export interface SmapsEntry extends VmaInfo {
  size: number;
  rss: number;
  anonymous: number;
  referenced: number;
  locked: number;
  swap: number;
  shared: number;
  private: number;
  dirty: number;
}

const VA_LIMIT = 2 ** 48;
/** How many more machines get constant-closure hit methods (AddressSpace.fastClass): one per process. */
let fastClosuresLeft = 1;
/** @internal Tests: let the next `n` machines get their own closures (correct, but no longer specialized by V8). */
export function fastClosuresAllow(n: number): void { fastClosuresLeft = n; }
/**
 * Lengths are passed to the core as f64 and capped here: every length from 2^48 up gets
 * the same answer from Linux (it is larger than the whole user address space), so the
 * cap keeps Linux's errno (ENOMEM for mmap, mprotect and madvise, EINVAL for munmap).
 */
const LEN_CAP = 2 ** 48;
/** NO_PROGRESS: the core's internal si_code 3 (assembly/fault.ts fault_no_progress). */
const SIGBUS = 7, SIGSEGV = 11, SEGV_MAPERR = 1, BUS_ADRERR = 2, NO_PROGRESS = 3, BUS_MCEERR_AR = 4;

function isNum(x: unknown): x is number { return typeof x === 'number' && Number.isFinite(x); }

/** @internal Translate a negative access result into the typed error it stands for. */
export function accessError(core: Core, r: number, what: string): Error {
  const backendError = core.lastBackendError(); // before any other core call starts a new list
  if (r <= -1e9) return new RangeError(`${what}: bad arguments`);
  if (r === -SIGSEGV) {
    return new SegmentationFault(core.x.fault_sig_addr(), core.x.fault_sig_code() === SEGV_MAPERR ? 'SEGV_MAPERR' : 'SEGV_ACCERR', what);
  }
  if (r === -SIGBUS) {
    // x86-64 do_sigbus: BUS_MCEERR_AR for poison, BUS_ADRERR for every other VM_FAULT_SIGBUS.
    // The core's NO_PROGRESS (a backend fault that said "mapped" and mapped nothing; Linux
    // would retry for ever) is delivered as BUS_ADRERR too, with the reason as cause.
    const code = core.x.fault_sig_code();
    const cause = code === NO_PROGRESS
      ? new RangeError('the fault made no progress: the backend\'s fault() returned VM_FAULT_NOPAGE but mapped nothing')
      : backendError;
    return new BusError(core.x.fault_sig_addr(), code === BUS_MCEERR_AR ? 'BUS_MCEERR_AR' : 'BUS_ADRERR', undefined, cause);
  }
  if (r === -101) return new OutOfMemoryError(`${what}: out of emulated RAM and nothing reclaimable`);
  if (r === -102) return new LinuxError(11, what, 'the backend must wait: use the async API');
  core.dead = `${what}: the core answered with an unknown result (${r})`;
  return new CoreCrashedError(core.dead);
}

export class AddressSpace {
  private destroyed = false;
  /** @internal */
  constructor(private readonly core: Core, readonly id: number, private readonly files: (id: number) => File | undefined,
              private readonly onDestroy: (mm: AddressSpace) => void) {}

  /** The ASID of this address space in the TLB. */
  get asid(): number { return this.id; }

  private live(): void {
    this.core.alive();
    if (this.destroyed) throw new LinuxError(22, 'AddressSpace', 'destroyed');
  }

  private addr(x: unknown, what: string): number {
    if (!isNum(x) || !Number.isInteger(x) || x < 0 || x >= VA_LIMIT) {
      throw new RangeError(`${what} must be an integer address in [0, 2^48), got ${showValue(x)}`);
    }
    return x;
  }

  private len(x: unknown, what: string): number {
    if (!isNum(x) || !Number.isInteger(x) || x < 0) {
      throw new RangeError(`${what} must be a non-negative integer, got ${showValue(x)}`);
    }
    return x;
  }

  private bits(x: unknown, what: string): number {
    if (!isNum(x) || !Number.isInteger(x) || x < 0 || x > 0xffffffff) {
      throw new RangeError(`${what} must be a 32-bit unsigned integer, got ${showValue(x)}`);
    }
    return x;
  }

  private call(r: number, syscall: string): number {
    if (r < 0) throw new LinuxError(-r, syscall, undefined, this.core.lastBackendError());
    return r;
  }

  /** mmap: returns the address of the new mapping. */
  mmap(o: MmapOptions): number {
    this.live();
    if (o === null || typeof o !== 'object') throw new RangeError('mmap takes an options object');
    const addr = o.addr === undefined ? 0 : this.addr(o.addr, 'addr');
    const length = this.len(o.length, 'length');
    const prot = this.bits(o.prot, 'prot');
    const flags = this.bits(o.flags, 'flags');
    const offset = o.offset === undefined ? 0 : this.len(o.offset, 'offset');
    if (offset % PAGE_SIZE !== 0) throw new LinuxError(22, 'mmap', 'offset is not a multiple of the page size');
    if (o.file !== undefined && this.files(o.file.id) !== o.file) throw new LinuxError(9, 'mmap', 'file is closed or belongs to another Mmu');
    // A special file's f_op->mmap runs before population, as in Linux: populate after it.
    const hook = (o.file as Partial<MmapHook> | undefined)?.mmapHook;
    const r = this.core.x.sys_mmap(this.id, addr, Math.min(length, LEN_CAP), prot,
      hook ? flags & ~(MAP_POPULATE | MAP_LOCKED) : flags, o.file ? o.file.id : 0, offset / PAGE_SIZE);
    const at = this.call(r, 'mmap');
    if (hook) {
      const len = Math.ceil(length / PAGE_SIZE) * PAGE_SIZE;
      const e = hook.call(o.file, this.id, at, len, offset / PAGE_SIZE);
      if (e < 0) { // the mapping goes again, tables and PTEs with it
        this.core.x.sys_munmap(this.id, at, len);
        throw new LinuxError(-e, 'mmap');
      }
      // R9.4: MAP_POPULATE / MAP_LOCKED populate, errors ignored (special VMAs are never locked, R8.4).
      // mlockall(MCL_FUTURE) too (R8.7): do_mmap decides to populate from the flags it asked
      // for, def_flags included; f_op->mmap then drops the lock flags of a DAX or special VMA,
      // LOCKONFAULT with them, so even MCL_FUTURE | MCL_ONFAULT populates such a mapping.
      const defLocked = (this.core.x.mm_info(this.id, 10) & VM_LOCKED) !== 0;
      if (((flags & MAP_POPULATE) !== 0 && (flags & MAP_NONBLOCK) === 0) || (flags & MAP_LOCKED) !== 0 || defLocked) {
        this.core.x.mm_populate_range(this.id, at, len);
      }
    }
    return at;
  }

  munmap(addr: number, length: number): void {
    this.live();
    this.call(this.core.x.sys_munmap(this.id, this.addr(addr, 'addr'), Math.min(this.len(length, 'length'), LEN_CAP)), 'munmap');
  }

  mprotect(addr: number, length: number, prot: number): void {
    this.live();
    this.call(this.core.x.sys_mprotect(this.id, this.addr(addr, 'addr'), Math.min(this.len(length, 'length'), LEN_CAP),
      this.bits(prot, 'prot')), 'mprotect');
  }

  madvise(addr: number, length: number, advice: number): void {
    this.live();
    // An int, as in C: `advice | 0` of 2^32 + 4 would silently be MADV_DONTNEED.
    if (!isNum(advice) || !Number.isInteger(advice) || advice < -(2 ** 31) || advice >= 2 ** 31) {
      throw new RangeError(`advice must be a 32-bit integer, got ${showValue(advice)}`);
    }
    this.call(this.core.x.sys_madvise(this.id, this.addr(addr, 'addr'), Math.min(this.len(length, 'length'), LEN_CAP),
      advice | 0), 'madvise');
  }

  /** msync: write shared dirty pages of the range to their files (MS_SYNC by default). */
  msync(addr: number, length: number, flags: number = MS_SYNC): void {
    this.live();
    this.call(this.core.x.sys_msync(this.id, this.addr(addr, 'addr'), Math.min(this.len(length, 'length'), 2 ** 50),
      this.bits(flags, 'flags')), 'msync');
  }

  /** mlock: lock the range's pages in memory, faulting them in (R8.1-R8.3). */
  mlock(addr: number, length: number): void { this.mlock2(addr, length, 0); }

  /** mlock2: with MLOCK_ONFAULT pages are locked as they fault in, not populated now. */
  mlock2(addr: number, length: number, flags: number): void {
    this.live();
    this.call(this.core.x.sys_mlock(this.id, this.addr(addr, 'addr'), Math.min(this.len(length, 'length'), 2 ** 50),
      this.bits(flags, 'flags')), 'mlock');
  }

  munlock(addr: number, length: number): void {
    this.live();
    this.call(this.core.x.sys_munlock(this.id, this.addr(addr, 'addr'), Math.min(this.len(length, 'length'), 2 ** 50)), 'munlock');
  }

  /** mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) (R8.7). */
  mlockall(flags: number): void {
    this.live();
    this.call(this.core.x.sys_mlockall(this.id, this.bits(flags, 'flags')), 'mlockall');
  }

  munlockall(): void {
    this.live();
    this.call(this.core.x.sys_munlockall(this.id), 'munlockall');
  }

  /** RLIMIT_MEMLOCK in bytes (Infinity = unlimited, like CAP_IPC_LOCK; the default). */
  setMemlockLimit(bytes: number): void {
    this.live();
    if (bytes !== Infinity && (!Number.isInteger(bytes) || bytes < 0)) throw new RangeError(`limit must be a non-negative integer or Infinity, got ${showValue(bytes)}`);
    this.core.x.mm_set_memlock_limit(this.id, bytes === Infinity ? -1 : Math.floor(bytes / PAGE_SIZE));
  }

  /**
   * get_user_pages over `count` pages (R8.5): faults what is missing and returns the frames.
   * `pin` takes a FOLL_PIN reference on each (release with unpinUserPage).
   */
  getUserPages(addr: number, count: number, opts: { write?: boolean; force?: boolean; pin?: boolean } = {}): number[] {
    this.live();
    this.addr(addr, 'addr');
    this.len(count, 'count');
    if (count > MAX_PAGES_PER_CALL) {
      throw new RangeError(`getUserPages: count ${count} is more than the ${MAX_PAGES_PER_CALL} pages one call returns (MAX_PAGES_PER_CALL): call it per part`);
    }
    const foll = (opts.write ? 0x01 : 0) | (opts.force ? 0x10 : 0) | (opts.pin ? 0x40000 : 0) | 0x02;
    const out: number[] = [];
    const chunk = this.core.x.pagemap_chunk();
    for (let done = 0; done < count;) {
      const k = Math.min(chunk, count - done);
      const r = this.core.x.mm_gup_pfns(this.id, Math.floor(addr / PAGE_SIZE) * PAGE_SIZE + done * PAGE_SIZE, k, foll);
      if (r < 0) throw new LinuxError(-r, 'get_user_pages');
      const pfns = new Uint32Array(this.core.x.memory.buffer, this.core.x.pagemap_buf32() >>> 0, r);
      out.push(...pfns);
      done += r;
      if (r < k) break;
    }
    return out;
  }

  /** Drop one FOLL_PIN reference taken by getUserPages({ pin: true }). */
  unpinUserPage(pfn: number): void {
    this.core.alive();
    // A pin outlives its address space (as in Linux): after destroy() it is still released.
    this.call(this.core.x.mm_unpin(this.destroyed ? 0 : this.id, pfn), 'unpin_user_page');
  }

  /** clear_refs 4: clear soft-dirty bits and start tracking writes again (R9.9). */
  clearSoftDirty(): void {
    this.live();
    this.core.x.mm_clear_soft_dirty(this.id);
  }

  private access(a: Access): number {
    const c = ACCESS_CODE[a];
    if (c === undefined) throw new RangeError(`access must be 'read', 'write' or 'exec', got ${showValue(a)}`);
    return c;
  }

  /** Fault every page of [addr, addr+length) once, as a CPU access of that kind would. */
  touch(addr: number, length: number, access: Access = 'read'): void {
    this.live();
    const op = () => this.core.x.mm_touch(this.id, this.addr(addr, 'addr'), this.len(length, 'length'), this.access(access));
    let r = op();
    if (r < 0 && this.fileGrew(r)) r = op();
    if (r < 0) throw accessError(this.core, r, `touch (${access})`);
  }

  /** The physical address `addr` translates to, faulting it in if needed. */
  translate(addr: number, access: Access = 'read'): number {
    this.live();
    const op = () => this.core.x.mm_translate(this.id, this.addr(addr, 'addr'), this.access(access));
    let r = op();
    if (r < 0 && this.fileGrew(r)) r = op();
    if (r < 0) throw accessError(this.core, r, `translate (${access})`);
    return r;
  }

  /**
   * Bounds for read / readAsync, checked before the result is allocated: at most
   * MAX_RW_COUNT bytes, and for more than one staged chunk the first address of the range
   * no VMA covers (the access faults up to it, then SIGSEGV there), or -1.
   */
  private readBounds(addr: number, n: number, what: string): number {
    this.addr(addr, 'addr');
    this.len(n, 'length');
    if (n > MAX_RW_COUNT) throw new RangeError(`${what}: length ${n} is more than MAX_RW_COUNT (${MAX_RW_COUNT} bytes, Linux's limit for one read)`);
    if (n <= this.core.x.staging_size()) return -1;
    let at = addr;
    for (let v = this.core.x.mm_vma_first(this.id); v !== 0 && at < addr + n; v = this.core.x.vma_next_id(v)) {
      const start = this.core.x.vma_info(v, 0), end = this.core.x.vma_info(v, 1);
      if (end <= at) continue;
      if (start > at) break; // a hole at `at`
      at = end;
    }
    return at < addr + n ? at : -1;
  }

  /** Read `n` bytes at `addr` as user space would (faults included). */
  read(addr: number, n: number): Uint8Array {
    this.live();
    const hole = this.readBounds(addr, n, 'read');
    if (hole >= 0) {
      // Nothing to return: fault the mapped part as the read would, then take the SIGSEGV.
      if (hole > addr) this.touch(addr, hole - addr, 'read');
      const r = this.copyOut(hole, new Uint8Array(1), 0, 1);
      throw r < 0 ? accessError(this.core, r, 'read') : new CoreCrashedError(`read: no VMA at 0x${hole.toString(16)} but the access succeeded`);
    }
    const out = new Uint8Array(n);
    const chunk = this.core.x.staging_size();
    for (let at = 0; at < n; at += chunk) {
      let r = this.copyOut(addr, out, at, Math.min(chunk, n - at));
      if (r < 0 && this.fileGrew(r)) r = this.copyOut(addr, out, at, Math.min(chunk, n - at));
      if (r < 0) throw accessError(this.core, r, 'read');
    }
    return out;
  }

  /** Write bytes at `addr` as user space would (faults, COW, dirtying included). */
  write(addr: number, data: Uint8Array): void {
    this.live();
    this.addr(addr, 'addr');
    if (!(data instanceof Uint8Array)) throw new RangeError('write takes a Uint8Array');
    const chunk = this.core.x.staging_size();
    for (let at = 0; at < data.length; at += chunk) {
      let r = this.copyIn(addr, data, at, Math.min(chunk, data.length - at));
      if (r < 0 && this.fileGrew(r)) r = this.copyIn(addr, data, at, Math.min(chunk, data.length - at));
      if (r < 0) throw accessError(this.core, r, 'write');
    }
  }

  /**
   * A SIGBUS with no backend error behind it may be a fault past the size seen so far of a
   * file that grew outside the emulator: re-check that file's size (File.refreshSize, a
   * cheap call) and say whether it grew, so the access is made once more. Otherwise false.
   */
  private fileGrew(r: number): boolean {
    if (r !== -SIGBUS || this.core.lastBackendError() !== undefined || this.core.x.fault_sig_code() !== BUS_ADRERR) return false;
    const va = this.core.x.fault_sig_addr();
    for (let v = this.core.x.mm_vma_first(this.id); v !== 0; v = this.core.x.vma_next_id(v)) {
      if (this.core.x.vma_info(v, 0) > va) break;
      if (va >= this.core.x.vma_info(v, 1)) continue;
      const f = this.files(this.core.x.vma_info(v, 4));
      // Only plain files over a Backend: XIP and device files have no outside to change them.
      if (f === undefined || Object.getPrototypeOf(f) !== FileClass.prototype) return false;
      const before = f.size;
      try { return f.refreshSize() && f.size > before; } catch { return false; }
    }
    return false;
  }

  // One staged chunk each way: the core copies between user memory and its staging buffer.
  // The bytes leave (or enter) the buffer within the call, so an async caller that waits
  // between tries never finds them overwritten by another call.
  private copyOut(addr: number, out: Uint8Array, at: number, k: number): number {
    const r = this.core.x.mm_copy(this.id, addr + at, k, 0);
    if (r >= 0) { const s = this.core.x.staging_addr() >>> 0; out.set(this.core.bytes().subarray(s, s + k), at); }
    return r;
  }
  private copyIn(addr: number, data: Uint8Array, at: number, k: number): number {
    this.core.bytes().set(data.subarray(at, at + k), this.core.x.staging_addr() >>> 0);
    return this.core.x.mm_copy(this.id, addr + at, k, 1);
  }

  // ---- The async API: accesses that may wait for an asynchronous backend (FetchFile) ----
  // A backend that must wait answers -EAGAIN: the fault returns VM_FAULT_RETRY with nothing
  // mapped and nothing counted, and the sync API throws LinuxError EAGAIN. These methods
  // wait instead (settle() of the async backends of the files this address space maps) and
  // retry, until the access completes or a real error (SegmentationFault, BusError,
  // OutOfMemoryError) is raised. Retrying is safe: what completed stays done.

  /** Pages per retried step of touchAsync (a retry re-walks at most this many). */
  private static readonly ASYNC_STEP = 256 * PAGE_SIZE;
  /** Waits allowed for one step before giving up with EAGAIN (a backend that never delivers). */
  private static readonly ASYNC_MAX_WAITS = 1000;

  /** touch, waiting for asynchronous backends instead of failing with EAGAIN. */
  async touchAsync(addr: number, length: number, access: Access = 'read'): Promise<void> {
    this.live();
    this.addr(addr, 'addr');
    this.len(length, 'length');
    const code = this.access(access);
    const step = AddressSpace.ASYNC_STEP;
    const end = addr + length;
    for (let a = addr; a < end;) {
      const next = Math.min(end, (Math.floor(a / step) + 1) * step);
      const from = a;
      await this.untilDone(() => this.core.x.mm_touch(this.id, from, next - from, code), `touch (${access})`);
      a = next;
    }
  }

  /** read, waiting for asynchronous backends instead of failing with EAGAIN. */
  async readAsync(addr: number, n: number): Promise<Uint8Array> {
    this.live();
    const hole = this.readBounds(addr, n, 'read');
    if (hole >= 0) {
      if (hole > addr) await this.touchAsync(addr, hole - addr, 'read');
      await this.untilDone(() => this.copyOut(hole, new Uint8Array(1), 0, 1), 'read');
      throw new CoreCrashedError(`read: no VMA at 0x${hole.toString(16)} but the access succeeded`);
    }
    const out = new Uint8Array(n);
    const chunk = this.core.x.staging_size();
    for (let at = 0; at < n; at += chunk) {
      const k = Math.min(chunk, n - at), from = at;
      await this.untilDone(() => this.copyOut(addr, out, from, k), 'read');
    }
    return out;
  }

  /** write, waiting for asynchronous backends instead of failing with EAGAIN. */
  async writeAsync(addr: number, data: Uint8Array): Promise<void> {
    this.live();
    this.addr(addr, 'addr');
    if (!(data instanceof Uint8Array)) throw new RangeError('writeAsync takes a Uint8Array');
    const chunk = this.core.x.staging_size();
    for (let at = 0; at < data.length; at += chunk) {
      const k = Math.min(chunk, data.length - at), from = at;
      await this.untilDone(() => this.copyIn(addr, data, from, k), 'write');
    }
  }

  /** translate, waiting for asynchronous backends instead of failing with EAGAIN. */
  async translateAsync(addr: number, access: Access = 'read'): Promise<number> {
    this.live();
    this.addr(addr, 'addr');
    const code = this.access(access);
    return this.untilDone(() => this.core.x.mm_translate(this.id, addr, code), `translate (${access})`);
  }

  /** Run a core access until it stops asking to wait (-102); other failures become typed errors. */
  private async untilDone(op: () => number, what: string): Promise<number> {
    for (let waits = 0; ; waits++) {
      this.live(); // the address space may have been destroyed while we waited
      let r = op();
      if (r < 0 && this.fileGrew(r)) r = op();
      if (r >= 0) return r;
      if (r !== -102) throw accessError(this.core, r, what);
      if (waits >= AddressSpace.ASYNC_MAX_WAITS) {
        throw new LinuxError(11, what, `still waiting for the backend after ${waits} fetches`);
      }
      if (!(await this.settleBackends())) {
        throw new LinuxError(11, what, 'a backend answered -EAGAIN but has nothing outstanding to wait for');
      }
    }
  }

  /** Wait for the asynchronous backends of the files mapped here; false if none had work outstanding. */
  private async settleBackends(): Promise<boolean> {
    const waits: Promise<void>[] = [];
    const seen = new Set<number>();
    for (const m of this.maps()) {
      if (m.file === 0 || seen.has(m.file)) continue;
      seen.add(m.file);
      const b = this.files(m.file)?.backend;
      if (isAsyncBackend(b) && b.pending() > 0) waits.push(b.settle());
    }
    if (waits.length === 0) return false;
    await Promise.all(waits);
    return true;
  }

  /**
   * /proc/pid/pagemap for `count` pages from `addr`, with the PTE's own bits too. At most
   * MAX_PAGES_PER_CALL pages (a RangeError naming the limit beyond): pagemapEntries streams
   * any range.
   */
  pagemap(addr: number, count: number): PageInfo[] {
    this.live();
    this.addr(addr, 'addr');
    this.len(count, 'count');
    if (count > MAX_PAGES_PER_CALL) {
      throw new RangeError(`pagemap: count ${count} is more than the ${MAX_PAGES_PER_CALL} pages one call returns (MAX_PAGES_PER_CALL): use pagemapEntries(addr, count), which streams`);
    }
    const out: PageInfo[] = [];
    const chunk = this.core.x.pagemap_chunk();
    for (let done = 0; done < count;) {
      const k = Math.min(chunk, count - done);
      this.pagemapChunk(addr, done, k, out);
      done += k;
    }
    return out;
  }

  /**
   * pagemap as an iterator: `count` pages from `addr`, read from the core one chunk
   * (pagemap_chunk pages) at a time as the caller iterates — memory stays bounded for any
   * range. Each chunk is a snapshot of its moment: faults between iterations show.
   */
  *pagemapEntries(addr: number, count: number): Generator<PageInfo, void, undefined> {
    this.live();
    this.addr(addr, 'addr');
    this.len(count, 'count');
    const chunk = this.core.x.pagemap_chunk();
    const part: PageInfo[] = [];
    for (let done = 0; done < count;) {
      this.live();
      const k = Math.min(chunk, count - done);
      part.length = 0;
      this.pagemapChunk(addr, done, k, part);
      yield* part;
      done += k;
    }
  }

  /** Pages [done, done + k) of the range from `addr` (k ≤ pagemap_chunk), appended to `out`. */
  private pagemapChunk(addr: number, done: number, k: number, out: PageInfo[]): void {
    const base = Math.floor(addr / PAGE_SIZE) * PAGE_SIZE;
    this.call(this.core.x.mm_pagemap(this.id, base + done * PAGE_SIZE, k), 'pagemap');
    const buf = this.core.x.memory.buffer;
    const e = new Uint32Array(buf, this.core.x.pagemap_buf64() >>> 0, k * 2);
    const x = new Uint32Array(buf, this.core.x.pagemap_buf32() >>> 0, k);
    for (let i = 0; i < k; i++) {
      const lo = e[i * 2], hi = e[i * 2 + 1], ex = x[i];
      const swapped = (hi & (1 << 30)) !== 0;
      const frame = lo + (hi & 0x7fffff) * 2 ** 32; // bits 0..54
      out.push({
        present: (hi >>> 31) !== 0, swapped, file: (hi & (1 << 29)) !== 0, exclusive: (hi & (1 << 24)) !== 0,
        softDirty: (hi & (1 << 23)) !== 0, uffdWp: (hi & (1 << 25)) !== 0, guard: (hi & (1 << 26)) !== 0,
        pfn: swapped ? 0 : frame, swapType: swapped ? lo & 31 : 0, swapOffset: swapped ? Math.floor(frame / 32) : 0,
        young: (ex & 1) !== 0, dirty: (ex & 2) !== 0, writable: (ex & 4) !== 0, special: (ex & 8) !== 0,
        protnone: (ex & 16) !== 0, zeroPage: (ex & 32) !== 0, mlocked: (ex & 64) !== 0,
      });
    }
  }

  /** Fault counts of this address space (getrusage's ru_minflt / ru_majflt). */
  rusage(): { minflt: number; majflt: number } {
    this.live();
    return { minflt: this.core.x.mm_info(this.id, 4), majflt: this.core.x.mm_info(this.id, 5) };
  }

  /** /proc/pid/status numbers, in bytes. */
  status(): { vmSize: number; vmRss: number; rssAnon: number; rssFile: number; rssShmem: number; vmSwap: number; vmLck: number; mapCount: number; pageTables: number } {
    this.live();
    const i = (w: number) => this.core.x.mm_info(this.id, w);
    return {
      vmSize: i(7) * PAGE_SIZE, vmRss: (i(0) + i(1) + i(2)) * PAGE_SIZE, rssAnon: i(0) * PAGE_SIZE,
      rssFile: i(1) * PAGE_SIZE, rssShmem: i(2) * PAGE_SIZE, vmSwap: i(3) * PAGE_SIZE, vmLck: i(6) * PAGE_SIZE,
      mapCount: i(8), pageTables: i(9) * PAGE_SIZE,
    };
  }

  /** The VMAs, like /proc/pid/maps. */
  maps(): VmaInfo[] {
    this.live();
    const out: VmaInfo[] = [];
    for (let v = this.core.x.mm_vma_first(this.id); v !== 0; v = this.core.x.vma_next_id(v)) {
      const flags = this.core.x.vma_info(v, 3) >>> 0;
      const perms = ((flags & VM_READ) ? 'r' : '-') + ((flags & VM_WRITE) ? 'w' : '-') + ((flags & VM_EXEC) ? 'x' : '-') +
        ((flags & (VM_SHARED | VM_MAYSHARE)) ? 's' : 'p');
      out.push({ start: this.core.x.vma_info(v, 0), end: this.core.x.vma_info(v, 1), perms, flags,
        pgoff: this.core.x.vma_info(v, 2), file: this.core.x.vma_info(v, 4), shmem: (this.core.x.vma_info(v, 5) & 2) !== 0 });
    }
    return out;
  }

  /** /proc/pid/smaps, in bytes per VMA. */
  smaps(): SmapsEntry[] {
    this.live();
    const maps = this.maps();
    let v = this.core.x.mm_vma_first(this.id);
    // One view for the whole walk (filling the counters allocates nothing in the core, so
    // memory cannot grow under it): a view per VMA made 65,530 VMAs take seconds of GC.
    const u32 = new Uint32Array(this.core.x.memory.buffer);
    return maps.map((m) => {
      const i = (this.core.x.vma_smaps_fill(this.id, v) >>> 0) >>> 2;
      v = this.core.x.vma_next_id(v);
      // A literal of fixed shape: spreading `m` into 16 properties built slow objects.
      return {
        start: m.start, end: m.end, perms: m.perms, flags: m.flags, pgoff: m.pgoff, file: m.file, shmem: m.shmem,
        size: m.end - m.start, rss: u32[i] * PAGE_SIZE, anonymous: u32[i + 1] * PAGE_SIZE,
        referenced: u32[i + 2] * PAGE_SIZE, locked: u32[i + 3] * PAGE_SIZE, swap: u32[i + 4] * PAGE_SIZE,
        shared: u32[i + 5] * PAGE_SIZE, private: u32[i + 6] * PAGE_SIZE, dirty: u32[i + 7] * PAGE_SIZE,
      };
    });
  }

  /** fork: a child address space (COW), counts starting at zero (R11.7). */
  fork(): AddressSpace {
    this.live();
    const c = this.core.x.mm_fork(this.id);
    if (c < 0) throw new OutOfMemoryError('fork: out of emulated RAM');
    return this.spawn(c);
  }

  /** @internal set by the Mmu */
  spawn: (id: number) => AddressSpace = () => { throw new Error('not attached'); };

  /** Tear the address space down: every frame and page table it held is free again. */
  destroy(): void {
    if (this.destroyed) return;
    this.core.alive();
    this.core.x.mm_destroy(this.id);
    this.destroyed = true;
    this.fastDrop(); // its ASID may be reused: the fast path must never hit again (issue 16)
    this.onDestroy(this);
  }

  get isDestroyed(): boolean { return this.destroyed; }

  // ---- Per-access loads, stores and fetches (issue 16): the TLB hit path in JavaScript ----
  // A hit reads the core's TLB (layout: assembly/tlb.ts) and then linear memory at
  // (va + the entry's addend) mod 2^32 (QEMU's addend: one add, no frame multiply): no call
  // into Wasm, no allocation. Two tables, tried in turn:
  // - The int32 side table, for pages in [4096, 2^31) (issue 17: the hit in int32
  //   arithmetic only). Index (va >>> 10) & mask4 (4 words per slot: key32 read, write,
  //   exec, addend; the core's slot (va >> 12) & mask uses only bits 12..31 of va). For an
  //   n-byte access the test is
  //     ((va | 0) === va || (va >>> 0) === va)    va is an int32 or a uint32: free for V8
  //                                               once it knows so (an Int32Array element,
  //                                               an x | 0, an x >>> 0), a real test else;
  //     side[j] === (((va + n - 1) & -4096) | fk) key32 of the access's last byte, looked
  //                                               up in the slot of its first: also the
  //                                               page-crossing test, and every va outside
  //                                               [0, 2^31 - n] misses (assembly/tlb.ts).
  //   So one int32 compare: no f64 key, no int-to-double conversion, no overflow check,
  //   no separate crossing test (bench/hit-code.mjs: the hit loop's body 62 → 51 machine
  //   instructions, against 34 for a plain DataView). The empty tag is -2^31, which no key
  //   equals (fk, the ASID, is never 0).
  // - On any other outcome, fastLoad / fastStore (out of line): the f64 tags, which hold
  //   every page (key = page address + ASID, an integer below 2^48, so a non-number,
  //   non-integer, negative or too-large address can never equal one; fk a small-integer
  //   field, so the compare is one f64 compare), then the miss path, fastSlow*, which
  //   validates (RangeError), calls the core once (mm_translate: TLB, walk, the full fault
  //   path, TLB fill) and completes the access; so do a page crossing, device memory, a
  //   destroyed space and a dead core. Multi-byte accesses use a DataView (one bounds check).
  //
  // Two forms of the same hit test:
  // - These methods read the views from fields (fi side table, fm4 its mask, fd linear
  //   memory; ft / fa / fl / fm for the f64 tags): a load and the typed array's base and
  //   length each, per access.
  // - The first machine of the process gets a subclass (fastClass) whose methods close over
  //   its views as constants. V8 specializes a function to the constants of its closure
  //   while it has only one closure, so the bases and lengths become immediates, and the
  //   four side views of one length share one bounds check. A second set of those closures
  //   (a second machine, or the views remade after memory growth) would end that
  //   specialization for both, and then the closures cost more than the fields: so every
  //   later machine, and the first after growth, uses the fields.
  // Every space of a machine starts on its form (AddressSpace.create). destroy() and a
  // core death empty the fields and move the space back to these methods, so every later
  // access misses and throws. Memory never grows in ordinary use (core-memory.ts); if it
  // does, the old views are detached (length 0), every access misses, and the miss path
  // takes the fresh views (fastRefresh).
  private fi = new Int32Array(0);
  private fm4 = 0;
  private ft = new Float64Array(0);
  private fa = new Int32Array(0);
  private fl = new Uint8Array(0);
  private fd = new DataView(new ArrayBuffer(8));
  private fm = 0;
  private fk = 0;
  private fr = new Uint8Array(0);
  private fv: FastViews | null = null;

  /** @internal The address space `id` of `core`, on the core's form of the hit path. */
  static create(core: Core, id: number, files: (id: number) => File | undefined, onDestroy: (mm: AddressSpace) => void): AddressSpace {
    const mm = new (AddressSpace.fastClass(FastViews.get(core)))(core, id, files, onDestroy);
    mm.fastRefresh();
    return mm;
  }

  /** Load one byte at `va` (user-mode read, faults included). */
  load8(va: number): number {
    const j = (va >>> 10) & this.fm4;
    if (((va | 0) === va || (va >>> 0) === va) && this.fi[j] === ((va & -4096) | this.fk)) {
      return this.fl[(va + this.fi[j + 3]) >>> 0];
    }
    return this.fastLoad(va, 1, 0, 'load8');
  }
  /** Load a little-endian u16 at `va` (any alignment; a page crossing takes the slow path). */
  load16(va: number): number {
    const j = (va >>> 10) & this.fm4;
    if (((va | 0) === va || (va >>> 0) === va) && this.fi[j] === (((va + 1) & -4096) | this.fk)) {
      return this.fd.getUint16((va + this.fi[j + 3]) >>> 0, true);
    }
    return this.fastLoad(va, 2, 0, 'load16');
  }
  /** Load a little-endian u32 at `va` (an unsigned number). */
  load32(va: number): number {
    const j = (va >>> 10) & this.fm4;
    if (((va | 0) === va || (va >>> 0) === va) && this.fi[j] === (((va + 3) & -4096) | this.fk)) {
      return this.fd.getUint32((va + this.fi[j + 3]) >>> 0, true);
    }
    return this.fastLoad(va, 4, 0, 'load32');
  }
  /** Load a little-endian u64 at `va` as a bigint (the result is the one allocation). */
  load64(va: number): bigint {
    const j = (va >>> 10) & this.fm4;
    if (((va | 0) === va || (va >>> 0) === va) && this.fi[j] === (((va + 7) & -4096) | this.fk)) {
      return this.fd.getBigUint64((va + this.fi[j + 3]) >>> 0, true);
    }
    return this.fastLoad64(va, 0, 'load64');
  }
  /** Instruction fetch: one byte at `va` through the exec tags (NX pages fault, R1.x SEGV_ACCERR). */
  fetch8(va: number): number {
    const j = (va >>> 10) & this.fm4;
    if (((va | 0) === va || (va >>> 0) === va) && this.fi[j + 2] === ((va & -4096) | this.fk)) {
      return this.fl[(va + this.fi[j + 3]) >>> 0];
    }
    return this.fastLoad(va, 1, 2, 'fetch8');
  }
  /** Instruction fetch of a little-endian u16 (e.g. RISC-V compressed instructions). */
  fetch16(va: number): number {
    const j = (va >>> 10) & this.fm4;
    if (((va | 0) === va || (va >>> 0) === va) && this.fi[j + 2] === (((va + 1) & -4096) | this.fk)) {
      return this.fd.getUint16((va + this.fi[j + 3]) >>> 0, true);
    }
    return this.fastLoad(va, 2, 2, 'fetch16');
  }
  /** Instruction fetch of a little-endian u32. */
  fetch32(va: number): number {
    const j = (va >>> 10) & this.fm4;
    if (((va | 0) === va || (va >>> 0) === va) && this.fi[j + 2] === (((va + 3) & -4096) | this.fk)) {
      return this.fd.getUint32((va + this.fi[j + 3]) >>> 0, true);
    }
    return this.fastLoad(va, 4, 2, 'fetch32');
  }
  /** Store the low 8 bits of `value` at `va` (user-mode write: COW, dirtying, SIGSEGV as write()). */
  store8(va: number, value: number): void {
    const j = (va >>> 10) & this.fm4;
    if (((va | 0) === va || (va >>> 0) === va) && this.fi[j + 1] === ((va & -4096) | this.fk)) {
      this.fl[(va + this.fi[j + 3]) >>> 0] = value;
      return;
    }
    this.fastStore(va, value, 1, 'store8');
  }
  /** Store the low 16 bits of `value`, little-endian. */
  store16(va: number, value: number): void {
    const j = (va >>> 10) & this.fm4;
    if (((va | 0) === va || (va >>> 0) === va) && this.fi[j + 1] === (((va + 1) & -4096) | this.fk)) {
      this.fd.setUint16((va + this.fi[j + 3]) >>> 0, value, true);
      return;
    }
    this.fastStore(va, value, 2, 'store16');
  }
  /** Store the low 32 bits of `value`, little-endian (a Uint32Array's conversion: ToNumber, then modulo 2^32). */
  store32(va: number, value: number): void {
    const j = (va >>> 10) & this.fm4;
    if (((va | 0) === va || (va >>> 0) === va) && this.fi[j + 1] === (((va + 3) & -4096) | this.fk)) {
      this.fd.setUint32((va + this.fi[j + 3]) >>> 0, value, true);
      return;
    }
    this.fastStore(va, value, 4, 'store32');
  }
  /** Store a bigint's low 64 bits, little-endian; RangeError if `value` is not a bigint. */
  store64(va: number, value: bigint): void {
    const j = (va >>> 10) & this.fm4;
    if (((va | 0) === va || (va >>> 0) === va) && this.fi[j + 1] === (((va + 7) & -4096) | this.fk) &&
        typeof value === 'bigint') {
      this.fd.setBigUint64((va + this.fi[j + 3]) >>> 0, value, true);
      return;
    }
    this.fastStore64(va, value);
  }

  /**
   * The class of `v`'s address spaces: AddressSpace, or for the first machine of the
   * process the subclass whose hit methods read `v`'s views as constants (made once).
   * R / W / X: the side table's key32 tags (read, write, exec), A: its addends, all indexed
   * by slot * 4; L / D: linear memory. Each method is the base one with its field loads
   * replaced by constants.
   */
  private static fastClass(v: FastViews): typeof AddressSpace {
    if (v.spaceClass !== undefined) return (v.spaceClass ?? AddressSpace) as typeof AddressSpace;
    if (fastClosuresLeft <= 0) { v.spaceClass = null; return AddressSpace; }
    fastClosuresLeft--;
    const R = v.sideRead, W = v.sideWrite, X = v.sideExec, A = v.sideAddend, L = v.linear, D = v.linearView, M4 = v.mask4;
    const cls = class extends AddressSpace {
      override load8(va: number): number {
        const j = (va >>> 10) & M4;
        if (((va | 0) === va || (va >>> 0) === va) && R[j] === ((va & -4096) | this.fk)) return L[(va + A[j]) >>> 0];
        return this.fastLoad(va, 1, 0, 'load8');
      }
      override load16(va: number): number {
        const j = (va >>> 10) & M4;
        if (((va | 0) === va || (va >>> 0) === va) && R[j] === (((va + 1) & -4096) | this.fk)) return D.getUint16((va + A[j]) >>> 0, true);
        return this.fastLoad(va, 2, 0, 'load16');
      }
      override load32(va: number): number {
        const j = (va >>> 10) & M4;
        if (((va | 0) === va || (va >>> 0) === va) && R[j] === (((va + 3) & -4096) | this.fk)) return D.getUint32((va + A[j]) >>> 0, true);
        return this.fastLoad(va, 4, 0, 'load32');
      }
      override load64(va: number): bigint {
        const j = (va >>> 10) & M4;
        if (((va | 0) === va || (va >>> 0) === va) && R[j] === (((va + 7) & -4096) | this.fk)) return D.getBigUint64((va + A[j]) >>> 0, true);
        return this.fastLoad64(va, 0, 'load64');
      }
      override fetch8(va: number): number {
        const j = (va >>> 10) & M4;
        if (((va | 0) === va || (va >>> 0) === va) && X[j] === ((va & -4096) | this.fk)) return L[(va + A[j]) >>> 0];
        return this.fastLoad(va, 1, 2, 'fetch8');
      }
      override fetch16(va: number): number {
        const j = (va >>> 10) & M4;
        if (((va | 0) === va || (va >>> 0) === va) && X[j] === (((va + 1) & -4096) | this.fk)) return D.getUint16((va + A[j]) >>> 0, true);
        return this.fastLoad(va, 2, 2, 'fetch16');
      }
      override fetch32(va: number): number {
        const j = (va >>> 10) & M4;
        if (((va | 0) === va || (va >>> 0) === va) && X[j] === (((va + 3) & -4096) | this.fk)) return D.getUint32((va + A[j]) >>> 0, true);
        return this.fastLoad(va, 4, 2, 'fetch32');
      }
      override store8(va: number, value: number): void {
        const j = (va >>> 10) & M4;
        if (((va | 0) === va || (va >>> 0) === va) && W[j] === ((va & -4096) | this.fk)) { L[(va + A[j]) >>> 0] = value; return; }
        this.fastStore(va, value, 1, 'store8');
      }
      override store16(va: number, value: number): void {
        const j = (va >>> 10) & M4;
        if (((va | 0) === va || (va >>> 0) === va) && W[j] === (((va + 1) & -4096) | this.fk)) { D.setUint16((va + A[j]) >>> 0, value, true); return; }
        this.fastStore(va, value, 2, 'store16');
      }
      override store32(va: number, value: number): void {
        const j = (va >>> 10) & M4;
        if (((va | 0) === va || (va >>> 0) === va) && W[j] === (((va + 3) & -4096) | this.fk)) { D.setUint32((va + A[j]) >>> 0, value, true); return; }
        this.fastStore(va, value, 4, 'store32');
      }
      override store64(va: number, value: bigint): void {
        const j = (va >>> 10) & M4;
        if (((va | 0) === va || (va >>> 0) === va) && W[j] === (((va + 7) & -4096) | this.fk) &&
            typeof value === 'bigint') { D.setBigUint64((va + A[j]) >>> 0, value, true); return; }
        this.fastStore64(va, value);
      }
    };
    v.spaceClass = cls;
    return cls;
  }

  // The f64 tags (any page, any va), tried when the side table did not hit: the access, or
  // the miss path. acc: 0 read, 2 exec.
  private fastLoad(va: number, n: number, acc: number, what: string): number {
    const off = va & 4095, j = ((va >>> 12) & this.fm) << 3;
    if (this.ft[j + acc] === va + (this.fk - off) && off <= 4096 - n) {
      const p = (va + this.fa[(j << 1) + 14]) >>> 0;
      return n === 1 ? this.fl[p] : n === 2 ? this.fd.getUint16(p, true) : this.fd.getUint32(p, true);
    }
    return this.fastSlowLoad(va, n, acc, what);
  }
  private fastLoad64(va: number, acc: number, what: string): bigint {
    const off = va & 4095, j = ((va >>> 12) & this.fm) << 3;
    if (this.ft[j + acc] === va + (this.fk - off) && off <= 4088) return this.fd.getBigUint64((va + this.fa[(j << 1) + 14]) >>> 0, true);
    return this.fastSlowLoad64(va, acc, what);
  }
  private fastStore(va: number, value: number, n: number, what: string): void {
    const off = va & 4095, j = ((va >>> 12) & this.fm) << 3;
    if (this.ft[j + 1] === va + (this.fk - off) && off <= 4096 - n) {
      const p = (va + this.fa[(j << 1) + 14]) >>> 0;
      if (n === 1) this.fl[p] = value;
      else if (n === 2) this.fd.setUint16(p, value, true);
      else this.fd.setUint32(p, value, true);
      return;
    }
    this.fastSlowStore(va, value, n, what);
  }
  private fastStore64(va: number, value: bigint): void {
    const off = va & 4095, j = ((va >>> 12) & this.fm) << 3;
    if (this.ft[j + 1] === va + (this.fk - off) && off <= 4088 && typeof value === 'bigint') {
      this.fd.setBigUint64((va + this.fa[(j << 1) + 14]) >>> 0, value, true);
      return;
    }
    this.fastSlowStore64(va, value);
  }

  // The miss path: validate, fault in through the core (one call), then the access.
  private fastTranslate(va: number, acc: number, what: string): number {
    if (typeof va !== 'number' || !Number.isInteger(va) || va < 0 || va >= VA_LIMIT) {
      throw new RangeError(`${what}: the address must be an integer in [0, 2^48), got ${String(va)}`);
    }
    this.live();
    const r = this.core.x.mm_translate(this.id, va, acc);
    if (r < 0) throw accessError(this.core, r, `${what} at ${va}`);
    if (this.fr.length === 0) this.fastRefresh(); // memory grew: the views are detached
    return r;
  }
  /** Take the core's current views, and its subclass for the hit paths. */
  private fastRefresh(): void {
    const v = FastViews.get(this.core);
    const proto = AddressSpace.fastClass(v).prototype;
    if (Object.getPrototypeOf(this) !== proto) Object.setPrototypeOf(this, proto);
    this.fi = v.side; this.fm4 = v.mask4;
    this.ft = v.tags; this.fa = v.words; this.fr = v.ram; this.fl = v.linear; this.fd = v.linearView; this.fm = v.mask;
    this.fk = this.id & 4095;
    this.fv = v;
    v.users.add(this);
  }
  /** @internal The core died or this space was destroyed: every access misses (and throws) from now on. */
  fastDrop(): void {
    if (Object.getPrototypeOf(this) !== AddressSpace.prototype) Object.setPrototypeOf(this, AddressSpace.prototype);
    this.fi = new Int32Array(0);
    this.ft = new Float64Array(0); this.fa = new Int32Array(0); this.fr = new Uint8Array(0); this.fl = new Uint8Array(0);
    this.fv?.users.delete(this);
    this.fv = null;
  }
  private fastSlowLoad(va: number, n: number, acc: number, what: string): number {
    const pa = this.fastTranslate(va, acc, what);
    if ((va & 4095) + n > 4096) {
      // Crossing a page: byte by byte, each through the TLB (the first page faults first).
      let v = 0;
      for (let k = 0; k < n; k++) v += (acc === 2 ? this.fetch8(va + k) : this.load8(va + k)) * 2 ** (8 * k);
      return v;
    }
    const src = pa + n <= this.fr.length ? this.fr : this.read(va, n); // device memory: through the core
    const p = src === this.fr ? pa : 0;
    let v = 0;
    for (let k = n - 1; k >= 0; k--) v = v * 256 + src[p + k];
    return v;
  }
  private fastSlowLoad64(va: number, acc: number, what: string): bigint {
    this.fastTranslate(va, acc, what);
    const lo = acc === 2 ? this.fetch32(va) : this.load32(va);
    const hi = acc === 2 ? this.fetch32(va + 4) : this.load32(va + 4);
    return (BigInt(hi) << 32n) | BigInt(lo);
  }
  private fastSlowStore(va: number, value: number, n: number, what: string): void {
    const pa = this.fastTranslate(va, 1, what);
    if ((va & 4095) + n > 4096) {
      // One instruction: both pages must take the write before any byte is written.
      this.fastTranslate(va + n - 1, 1, what);
      for (let k = 0; k < n; k++) this.store8(va + k, k === 0 ? value : value >>> (8 * k));
      return;
    }
    if (pa + n <= this.fr.length) {
      const r = this.fr;
      for (let k = 0; k < n; k++) r[pa + k] = k === 0 ? value : value >>> (8 * k);
      return;
    }
    const b = new Uint8Array(n); // device memory: through the core
    for (let k = 0; k < n; k++) b[k] = k === 0 ? value : value >>> (8 * k);
    this.write(va, b);
  }
  private fastSlowStore64(va: number, value: bigint): void {
    if (typeof value !== 'bigint') throw new RangeError(`store64: the value must be a bigint, got ${typeof value}`);
    this.fastTranslate(va, 1, 'store64');
    this.fastTranslate(va + 7, 1, 'store64');
    const v = BigInt.asUintN(64, value);
    this.store32(va, Number(v & 0xffffffffn));
    this.store32(va + 4, Number(v >> 32n));
  }
}
