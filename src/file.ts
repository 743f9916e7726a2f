// Files: the TypeScript face of Linux's vm_operations_struct and address_space_operations.
// A backend supplies the bytes; the core keeps the page cache. Backends without their own
// fault / mapPages get the page cache's generic ones, which run inside Wasm.
import type { Core, CoreExports } from './core.js';
import { LinuxError, showValue } from './errors.js';
import { PAGE_SIZE, MAX_RW_COUNT, MAX_FILE_BYTES } from './constants.js';

/** What a backend's fault / mapPages / pageMkwrite sees: Linux's struct vm_fault. */
export class VmFault {
  /** @internal */
  constructor(private readonly core: Core) {}
  private u32(off: number): number {
    return new DataView(this.core.x.memory.buffer).getUint32((this.core.x.vmf_addr() >>> 0) + off, true);
  }
  private u64(off: number): number {
    const dv = new DataView(this.core.x.memory.buffer);
    const at = (this.core.x.vmf_addr() >>> 0) + off;
    return dv.getUint32(at, true) + dv.getUint32(at + 4, true) * 2 ** 32;
  }
  /** FAULT_FLAG_* bits. */
  get flags(): number { return this.u32(0); }
  /** The page-aligned faulting address. */
  get address(): number { return this.u64(8); }
  /** The file page being faulted. */
  get pgoff(): number { return this.u64(16); }
  /** The last file page mapPages may map (seed 000's max_pgoff; the core keeps it as pages after pgoff). */
  get maxPgoff(): number { return this.pgoff + this.u32(56); }
  /** The preallocated COW target frame for a private write (seed 004), or null. */
  get cowPage(): number | null { const p = this.u32(24); return p === 0 ? null : p - 1; }

  // ---- for special-mapping and DAX backends (src/xip.ts, src/device.ts; LINUX-SPEC §6, §7) ----
  /** The page handed back so far (vmf.page), or null. */
  get page(): number | null { const p = this.u32(28); return p === 0 ? null : p - 1; }
  /** R6.4 vmf_insert_pfn into a PFNMAP / MIXEDMAP VMA: returns VM_FAULT_* for fault to return. */
  insertPfn(pfn: number, address = this.address): number {
    return this.core.x.vmf_insert_pfn_at(pfn, address) >>> 0;
  }
  /** R6.5 vmf_insert_mixed; `write` is the _mkwrite variant (young, dirty, writable). VM_FAULT_*. */
  insertMixed(pfn: number, write = false, address = this.address): number {
    return this.core.x.vmf_insert_mixed_at(pfn, address, write ? 1 : 0) >>> 0;
  }
  /** R7.1: the 4096 bytes of cowPage to fill (a view valid during this fault only), or null. */
  cowBytes(): Uint8Array | null {
    const p = this.cowPage;
    if (p === null) return null;
    const at = (this.core.x.mmu_ram_base() >>> 0) + p * PAGE_SIZE;
    return this.core.bytes().subarray(at, at + PAGE_SIZE);
  }
  /** R7.1: map the filled cowPage (finish_fault). 0: now return VM_FAULT_DONE_COW; else return this. */
  finishCow(): number { return this.core.x.vmf_finish_cow() >>> 0; }
  /** Seed 004: hold the mapping's i_mmap lock, then return VM_FAULT_LOCKED with no page. */
  lockMapping(): void {
    const r = this.core.x.vmf_lock_mapping();
    if (r < 0) throw new LinuxError(-r, 'fault', 'the i_mmap lock is already held');
  }

  /**
   * For mapPages: map the cached page at `pgoff` if it is ready (uptodate, unlocked, in the
   * page cache). Never blocks. Returns true if a PTE was installed.
   */
  mapPage(pgoff: number): boolean {
    return this.core.x.vmf_map_cached(pgoff) === 1;
  }

  /**
   * For fault: put `data` (at most 4096 bytes, zero-filled after) in the page cache at
   * `pgoff` and hand it back as the faulting page. Return VM_FAULT_LOCKED after this.
   */
  fillPage(pgoff: number, data: Uint8Array): void {
    if (data.length > PAGE_SIZE) throw new RangeError(`a page holds 4096 bytes, got ${showValue(data.length)}`);
    const pfn = this.core.x.vmf_add_page(pgoff);
    if (pfn < 0) throw new LinuxError(-pfn, 'fault');
    const at = (this.core.x.mmu_ram_base() >>> 0) + pfn * PAGE_SIZE;
    const mem = this.core.bytes();
    mem.fill(0, at, at + PAGE_SIZE);
    mem.set(data, at);
  }
}

/**
 * A backend: the file system's side of a file. `readPage` fills a page of the file
 * (returns the bytes it read; the rest is zeroed); `writePage` receives dirty data on
 * msync and eviction. The optional methods override the page cache's generic ones.
 *
 * The contract, for a file that may change behind the emulator's back (another process
 * truncates or extends a NodeFile's file):
 * - `size()` is cheap (NodeFile: one fstat) and is called again whenever the emulator
 *   suspects a change: at open; when `readPage` returns fewer bytes than the size seen so
 *   far promised; before every write-back (`writePage`); and when a fault lands past the
 *   size seen so far (SIGBUS unless the file grew).
 * - A file that shrank is followed as Linux follows truncate(2) from another process
 *   (R10.2): mappings past the new end are zapped (even private copies), the page cache
 *   there is dropped (dirty pages too), and an access there is SIGBUS BUS_ADRERR (R10.1).
 *   A write-back never writes past the new end: the file is never grown back.
 * - A file that grew: the new pages fault in on first access.
 * - Pages already cached or mapped are not re-checked on every access (Linux hears of a
 *   truncate at once; the emulator when it next asks the backend): File.refreshSize()
 *   applies an outside change at once.
 * - `readPage`/`writePage` may throw: the access gets SIGBUS (or the system call EIO)
 *   with the thrown error as `cause`. Each handler runs inside a core call: it must not
 *   call back into the Mmu (no File or AddressSpace method).
 */
export interface Backend {
  /** i_size in bytes, at most 2^53. Cheap: called on open, before write-back and on suspicion of change. */
  size(): number;
  /** Fill `dst` (4096 bytes) with page `index`; return the bytes read (0..4096: short at EOF). */
  readPage(index: number, dst: Uint8Array): number;
  /** Optional: pages [index, index + count) in one read into `dst` (count × 4096 bytes);
   *  returns the bytes read (fewer at EOF). Read-around then asks for each run of absent
   *  pages at once instead of page by page. A failure (a throw) falls back to readPage. */
  readPages?(index: number, count: number, dst: Uint8Array): number;
  /** Store a dirty page (its bytes up to i_size). Never called for bytes past the size size() last said. */
  writePage?(index: number, src: Uint8Array): void;
  /** Called when the file is truncated or extended through File.truncate(). */
  truncate?(size: number): void;
  /**
   * fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE): bytes [offset, offset + length)
   * (clamped to the size, which stays) read as zeros from now on. Without it MADV_REMOVE on a
   * shared mapping of the file is EOPNOTSUPP; with it, MADV_REMOVE punches the hole (R9.1).
   */
  punchHole?(offset: number, length: number): void;
  /** Linux's ->fault: return VM_FAULT_* bits (VM_FAULT_LOCKED after vmf.fillPage). */
  fault?(vmf: VmFault): number;
  /** Linux's ->map_pages: map only pages already at hand with vmf.mapPage(pgoff); never block. */
  mapPages?(vmf: VmFault, startPgoff: number, endPgoff: number): void;
  /** Linux's ->page_mkwrite: a clean shared page is about to become writable. */
  pageMkwrite?(vmf: VmFault): number;
  /** Linux's ->pfn_mkwrite, for special (PFN) mappings. */
  pfnMkwrite?(vmf: VmFault): number;
}

/** A file whose bytes live in a Uint8Array held by the host. */
export class MemoryFile implements Backend {
  private data: Uint8Array;
  private length: number;
  /** Pages written back so far (for tests and teaching). */
  writes = 0;
  constructor(bytes: Uint8Array | number = 0) {
    if (typeof bytes === 'number') {
      // Checked before allocating; a MemoryFile lives in one typed array (at most 2^32 bytes).
      if (!Number.isInteger(bytes) || bytes < 0 || bytes > 2 ** 32) throw new RangeError(`a MemoryFile's size must be an integer in [0, 2^32], got ${showValue(bytes)}`);
      this.data = new Uint8Array(bytes);
    } else {
      this.data = new Uint8Array(bytes);
    }
    this.length = this.data.length;
  }
  size(): number { return this.length; }
  /** The file's current contents (a copy). */
  bytes(): Uint8Array { return this.data.slice(0, this.length); }
  readPage(index: number, dst: Uint8Array): number {
    const off = index * PAGE_SIZE;
    if (off >= this.length) return 0;
    const n = Math.min(PAGE_SIZE, this.length - off);
    dst.set(this.data.subarray(off, off + n));
    return n;
  }
  writePage(index: number, src: Uint8Array): void {
    const off = index * PAGE_SIZE;
    if (off + src.length > this.data.length) this.grow(off + src.length);
    this.data.set(src, off);
    this.length = Math.max(this.length, off + src.length);
    this.writes++;
  }
  truncate(size: number): void {
    if (size > 2 ** 32) throw new RangeError(`a MemoryFile holds at most 2^32 bytes, got ${size}`);
    if (size > this.data.length) this.grow(size);
    this.data.fill(0, Math.min(size, this.length), this.data.length);
    this.length = size;
  }
  punchHole(offset: number, length: number): void {
    this.data.fill(0, Math.min(offset, this.length), Math.min(offset + length, this.length));
  }
  private grow(n: number): void {
    const d = new Uint8Array(Math.max(n, Math.min(2 ** 32, this.data.length * 2)));
    d.set(this.data);
    this.data = d;
  }
}

export interface OpenOptions {
  /** Opened without write permission: MAP_SHARED with PROT_WRITE is EACCES (R9.5). */
  readOnly?: boolean;
  /** Dirty accounting like a disk file system (default true): shared writable mappings
   *  write-notify, so the first write to each clean page faults (R9.10). */
  dirtyAccounting?: boolean;
  /** No map_pages at all (no fault-around), like a file system without one. */
  noMapPages?: boolean;
  /**
   * A tmpfs (shmem) file: the backend's bytes are copied into the page cache at open, which is
   * then the only copy (swap-backed pages). A page not cached is a hole: a fault allocates one
   * zeroed page, minor, without read-around (R2.9); msync and sync write nothing and leave
   * PTEs alone (R10.0); no dirty accounting (R9.10); MADV_REMOVE punches (R9.1). Default false.
   */
  shmem?: boolean;
}

// mapping.ts AS_* flags.
export const AS_SHMEM = 2, AS_READONLY = 4, AS_HAS_FAULT = 8, AS_HAS_MAP_PAGES = 16,
  AS_HAS_PAGE_MKWRITE = 32, AS_HAS_PFN_MKWRITE = 64, AS_DAX = 128, AS_MLOCKED = 256,
  AS_DIRTY_ACCOUNT = 512, AS_NO_MAP_PAGES = 1024, AS_HAS_READ_PAGES = 4096, AS_CAN_PUNCH = 8192;

const PG = { locked: 1 << 0, uptodate: 1 << 1, dirty: 1 << 2, lru: 1 << 3, active: 1 << 4,
  referenced: 1 << 5, anon: 1 << 6, readahead: 1 << 13, writeback: 1 << 14, mlocked: 1 << 15,
  unevictable: 1 << 16, hwpoison: 1 << 18 } as const;

export interface CachedPage {
  pfn: number;
  /** The head frame of its folio (== pfn for a small page). */
  headPfn: number;
  /** Its folio's order: 0 for a 4 KiB page, up to 9 for a PMD-sized (2 MiB) folio. */
  order: number;
  uptodate: boolean;
  locked: boolean;
  dirty: boolean;
  readahead: boolean;
  hwpoison: boolean;
  referenced: boolean;
  mlocked: boolean;
  refcount: number;
  mapcount: number;
}

/** An open file of an Mmu: its page cache and the controls tests and teachers need. */
export class File {
  /**
   * @internal The backend's size as this File last knew it (at open, after truncate, after
   * a write-back that extended it). A backend size below it means the file shrank outside.
   */
  knownSize: number;

  /** @internal */
  constructor(private readonly core: Core, readonly id: number, readonly backend: Backend,
              private readonly onClose: (f: File) => void) {
    this.knownSize = Math.max(0, core.x.file_info(id, 0));
  }

  /**
   * Follow a change of the file's size made outside the emulator (another process truncated
   * or extended it): re-read the backend's size (a cheap call) and, if it differs from the
   * size last seen, set i_size to it as truncate(2) would — shrinking zaps the mappings past
   * the new end, private copies included, and drops the page cache there (R10.2). Faults and
   * write-backs do this by themselves when they find the file changed; call it to see a
   * change at once. Returns true if the size changed. Not from inside a backend handler.
   */
  refreshSize(): boolean {
    this.check();
    if (this.core.depth > 0) throw new LinuxError(35, 'refreshSize', 'called from inside a core call (a backend handler)');
    const size = this.backend.size();
    if (!Number.isInteger(size) || size < 0 || size > MAX_FILE_BYTES) throw new RangeError(`the backend's size() returned ${showValue(size)}: must be an integer in [0, 2^53]`);
    if (size === this.knownSize) return false; // (i_size may be ahead: a pwrite not yet written back)
    this.knownSize = size;
    if (size === this.size) return false;
    const r = this.core.x.file_truncate(this.id, size);
    if (r < 0) throw new LinuxError(-r, 'truncate', undefined, this.core.lastBackendError());
    return true;
  }

  /** i_size in bytes. */
  get size(): number { return this.core.x.file_info(this.id, 0); }
  /** Pages in the page cache. */
  get cachedPages(): number { return this.core.x.file_info(this.id, 1); }
  /** Dirty pages in the page cache. */
  get dirtyPages(): number { return this.core.x.file_info(this.id, 4); }
  /** VMAs mapping the file. */
  get mappings(): number { return this.core.x.file_info(this.id, 3); }

  private check(): void {
    this.core.alive();
    if (this.core.x.file_info(this.id, 0) < 0) throw new LinuxError(9, 'file', 'file is closed');
  }

  private pages(first: number, count: number): void {
    if (!Number.isInteger(first) || !Number.isInteger(count) || first < 0 || count < 0) {
      throw new RangeError(`page range must be non-negative integers, got ${showValue(first)}, ${count}`);
    }
  }

  /** Change the size (truncate_setsize, R10.2): mappings beyond it are zapped, even private copies. */
  truncate(size: number): void {
    this.check();
    if (!Number.isInteger(size) || size < 0 || size > MAX_FILE_BYTES) throw new RangeError(`size must be an integer in [0, 2^53], got ${showValue(size)}`);
    this.backend.truncate?.(size);
    this.knownSize = size;
    const r = this.core.x.file_truncate(this.id, size);
    if (r < 0) throw new LinuxError(-r, 'truncate', undefined, this.core.lastBackendError());
  }

  /**
   * Read pages [first, first+count) into the page cache, uptodate and unlocked. By default
   * each page is its own 4 KiB folio (pages already cached are left alone). With
   * `{ order }` (1..9) every naturally aligned block of 2^order pages becomes one large
   * folio read into one allocation, as Linux's readahead makes them (order 9: a PMD-sized
   * 2 MiB folio, mappable by one PMD, R3.3); `first` and `count` must then be multiples of
   * 2^order, the blocks must lie inside the file and none of their pages be cached yet.
   * Order-0 priming is read(2)'s: a cached page that is not uptodate (the EOF block a
   * truncate zeroed through the cache, R10.2) is made uptodate; with `{ willneed: true }`
   * it is POSIX_FADV_WILLNEED's, which reads only the absent pages and leaves cached ones alone.
   */
  prime(first = 0, count = Math.ceil(this.size / PAGE_SIZE) - first, opts: { order?: number; willneed?: boolean } = {}): void {
    this.check();
    this.pages(first, count);
    const order = opts.order ?? 0;
    if (!Number.isInteger(order) || order < 0 || order > 9) throw new RangeError(`order must be 0..9, got ${showValue(order)}`);
    if (order === 0) {
      // Pages past EOF are never read: clamp first (the core takes an i32 count).
      const end = Math.min(first + count, Math.ceil(this.size / PAGE_SIZE));
      for (let at = first; at < end; at += 2 ** 30) {
        const r = this.core.x.file_prime(this.id, at, Math.min(2 ** 30, end - at), opts.willneed ? 1 : 0);
        if (r < 0) throw new LinuxError(-r, 'prime', undefined, this.core.lastBackendError());
      }
      return;
    }
    const n = 2 ** order;
    if (first % n !== 0 || count % n !== 0) {
      throw new RangeError(`an order-${order} folio covers ${n} aligned pages: first ${first} and count ${count} must be multiples of ${n}`);
    }
    if (first + count > Math.ceil(this.size / PAGE_SIZE)) {
      throw new RangeError(`pages [${first}, ${first + count}) reach past the end of the file (${Math.ceil(this.size / PAGE_SIZE)} pages)`);
    }
    const x = this.core.x as CoreExports & { file_prime_order(f: number, index: number, n: number, order: number): number };
    const r = x.file_prime_order(this.id, first, count, order);
    if (r < 0) throw new LinuxError(-r, 'prime', r === -17 ? 'a page of the block is cached already' : undefined);
  }

  /** Drop unmapped pages of [first, last] from the cache (dirty ones written back first). */
  evict(first = 0, last = Math.max(0, Math.ceil(this.size / PAGE_SIZE) - 1)): number {
    this.check();
    this.pages(first, last - first);
    return this.core.x.file_evict(this.id, first, last);
  }

  /**
   * Write back the dirty cached pages of [first, last] (default: every page, fsync); a range
   * is what sync_file_range / fadvise(DONTNEED)'s __filemap_fdatawrite_range write back.
   */
  sync(first = 0, last = Math.max(0, Math.ceil(this.size / PAGE_SIZE) - 1)): void {
    this.check();
    this.pages(first, last - first);
    const r = this.core.x.file_sync(this.id, first, last);
    if (r < 0) throw new LinuxError(-r, 'fsync', undefined, this.core.lastBackendError());
  }

  /**
   * pwrite(2): write `data` at byte `offset` through the page cache, like write(2): missing
   * pages are read in, written pages become dirty (written back by sync, evict or msync),
   * the size grows if the write ends past it. No page fault; mappings of a written page see
   * the bytes at once, private copies do not. Returns the bytes written.
   */
  pwrite(offset: number, data: Uint8Array): number {
    this.check();
    if (!Number.isInteger(offset) || offset < 0 || offset + data.length > MAX_FILE_BYTES) throw new RangeError(`offset must be an integer in [0, 2^53 - length], got ${showValue(offset)}`);
    if (!(data instanceof Uint8Array)) throw new RangeError('pwrite takes a Uint8Array');
    let done = 0;
    while (done < data.length) {
      const k = Math.min(PAGE_SIZE - ((offset + done) % PAGE_SIZE), data.length - done);
      this.core.bytes().set(data.subarray(done, done + k), this.core.x.staging_addr() >>> 0);
      const r = this.core.x.file_rw(this.id, offset + done, k, 1);
      if (r < 0) throw new LinuxError(-r, 'pwrite', undefined, this.core.lastBackendError());
      done += r;
    }
    return done;
  }

  /** pread(2): read up to `n` bytes at byte `offset` through the page cache (shorter at EOF). */
  pread(offset: number, n: number): Uint8Array {
    this.check();
    if (!Number.isInteger(offset) || offset < 0 || offset > MAX_FILE_BYTES) throw new RangeError(`offset must be an integer in [0, 2^53], got ${showValue(offset)}`);
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`n must be a non-negative integer, got ${showValue(n)}`);
    // Short at EOF and at MAX_RW_COUNT, as pread(2): never allocate more than can be read.
    n = Math.min(n, MAX_RW_COUNT, Math.max(0, this.size - offset));
    const out = new Uint8Array(n);
    let done = 0;
    while (done < n) {
      const r = this.core.x.file_rw(this.id, offset + done, Math.min(PAGE_SIZE - ((offset + done) % PAGE_SIZE), n - done), 0);
      if (r < 0) throw new LinuxError(-r, 'pread', undefined, this.core.lastBackendError());
      if (r === 0) break;
      const at = this.core.x.staging_addr() >>> 0;
      out.set(this.core.bytes().subarray(at, at + r), done);
      done += r;
    }
    return out.slice(0, done);
  }

  /** The cached page at `index`, or null if it is not in the page cache. */
  page(index: number): CachedPage | null {
    this.check();
    const pfn = this.core.x.file_page_pfn(this.id, index);
    if (pfn < 0) return null;
    const f = this.core.x.page_info(pfn, 0);
    return {
      pfn, headPfn: this.core.x.page_info(pfn, 3), order: this.core.x.page_info(pfn, 4), uptodate: (f & PG.uptodate) !== 0, locked: (f & PG.locked) !== 0, dirty: (f & PG.dirty) !== 0,
      readahead: (f & PG.readahead) !== 0, hwpoison: (f & PG.hwpoison) !== 0,
      referenced: (f & PG.referenced) !== 0, mlocked: (f & PG.mlocked) !== 0,
      refcount: this.core.x.page_info(pfn, 1), mapcount: this.core.x.page_info(pfn, 2),
    };
  }

  /**
   * Test control: set page flags of a cached page (to exercise R2.5's skip rules). For a
   * large folio, the head page's locked / uptodate / readahead stand for the whole folio
   * (fault-around skips all of it); hwpoison is per page.
   */
  setPageState(index: number, state: { locked?: boolean; uptodate?: boolean; readahead?: boolean; hwpoison?: boolean }): void {
    this.check();
    const pfn = this.core.x.file_page_pfn(this.id, index);
    if (pfn < 0) throw new RangeError(`page ${index} is not in the page cache`);
    let set = 0, clear = 0;
    const apply = (on: boolean | undefined, bit: number) => { if (on === true) set |= bit; else if (on === false) clear |= bit; };
    apply(state.locked, PG.locked);
    apply(state.uptodate, PG.uptodate);
    apply(state.readahead, PG.readahead);
    apply(state.hwpoison, PG.hwpoison);
    const r = this.core.x.page_test_flags(pfn, set, clear);
    if (r < 0) throw new LinuxError(-r, 'setPageState');
  }

  /** Drop the page cache (written back first unless `discard`) and forget the file. */
  close(discard = false): void {
    this.check();
    const r = this.core.x.file_close(this.id, discard ? 1 : 0);
    if (r < 0) throw new LinuxError(-r, 'close', r === -16 ? 'the file is still mapped' : undefined, this.core.lastBackendError());
    this.onClose(this);
  }
}
