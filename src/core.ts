// The boundary: loads the Wasm core, types its raw exports, answers its host imports,
// and turns an internal trap into a dead core that refuses further work.
import { CoreCrashedError } from './errors.js';
import { importedMemoryMinimum, makeCoreMemory } from './core-memory.js';

/** The raw exports of assembly/index.ts. Numbers only. */
export interface CoreExports {
  memory: WebAssembly.Memory;
  mmu_boot(ramBytes: number, tlbEntries: number): number;
  mmu_ram_base(): number;
  mmu_nr_frames(): number;
  mmu_memmap_base(): number;
  mmu_zero_pfn(): number;
  mmu_booted(): number;
  mmu_tlb_base(): number;
  mmu_tlb_entries(): number;
  mmu_free_frames(): number;
  mmu_nr_pgtables(): number;
  mmu_stat(id: number): number;
  mmu_set_fault_around_bytes(bytes: number): number;
  mmu_set_prefault_old(on: number): void;
  mmu_set_readahead_pages(pages: number): number;
  mmu_set_zero_page(on: number): void;
  mmu_set_exec_read_forward(on: number): void;
  mmu_set_mlock_batch(on: number): void;
  mmu_set_tlb_free_drains_mlock(on: number): void;
  mmu_set_lazyfree_batch(on: number): void;
  mmu_set_mlock_mapped_large(on: number): void;
  mmu_set_merge_faulted_into_unfaulted(on: number): void;
  mmu_set_dax_folios(on: number): void;
  mmu_set_large_folio_readahead(on: number): void;
  mmu_set_guard_regions(on: number): void;
  mmu_set_readahead_eof_no_marker(on: number): void;
  mmu_set_exec_folio_order(order: number): void;
  mmu_set_populate_retry_tried(on: number): void;
  mmu_set_user_retry_tried(on: number): void;
  mmu_set_fault_around_isize(on: number): void;
  mmu_set_trunc_extend_zeroes_tail(on: number): void;
  mmu_set_truncate_caches_tail(on: number): void;
  mmu_set_pte_special(on: number): void;
  phys_alloc(order: number): number;
  phys_free(pfn: number, order: number): number;
  hw_walk(root: number, va: number, access: number, mode: number): number;
  hw_walk_pa(): number;
  hw_walk_level(): number;
  hw_walk_perms(): number;
  hw_translate(asid: number, root: number, va: number, access: number, mode: number): number;
  hw_tlb_flush_page(asid: number, va: number): void;
  hw_tlb_flush_range(asid: number, va: number, npages: number): void;
  hw_tlb_flush_asid(asid: number): void;
  hw_tlb_flush_all(): void;
  check_invariants(): number;
  /** Debug only: traps (`unreachable`), for tests of the dead-core state. */
  debug_trap(): void;
  bench_fill(n: number): number;
  bench_fill_frames(pfn: number, pages: number): number;
  bench_copy_frames(src: number, dst: number, pages: number): number;
  bench_copy(n: number): number;
  hw_translate_loop(asid: number, root: number, va: number, pages: number, n: number, access: number, mode: number): number;
  hw_walk_loop(root: number, va: number, pages: number, n: number, access: number, mode: number): number;
  inv_field(i: number, f: number): number;
  staging_addr(): number;
  staging_size(): number;
  pagemap_buf64(): number;
  pagemap_buf32(): number;
  pagemap_chunk(): number;
  smaps_buf(): number;
  mm_create(): number;
  mm_destroy(mm: number): number;
  mm_fork(mm: number): number;
  sys_mmap(mm: number, addr: number, len: number, prot: number, flags: number, file: number, pgoff: number): number;
  sys_munmap(mm: number, addr: number, len: number): number;
  sys_mprotect(mm: number, addr: number, len: number, prot: number): number;
  sys_madvise(mm: number, addr: number, len: number, advice: number): number;
  sys_msync(mm: number, addr: number, len: number, flags: number): number;
  mm_clear_soft_dirty(mm: number): number;
  mm_set_memlock_limit(mm: number, pages: number): number;
  mm_touch(mm: number, va: number, len: number, access: number): number;
  mm_translate(mm: number, va: number, access: number): number;
  mm_copy(mm: number, va: number, n: number, toUser: number): number;
  fault_sig_no(): number;
  fault_sig_code(): number;
  fault_sig_addr(): number;
  mm_pagemap(mm: number, va: number, n: number): number;
  mm_gup(mm: number, va: number, n: number, foll: number): number;
  mm_populate_range(mm: number, va: number, len: number): number;
  mm_info(mm: number, what: number): number;
  mm_vma_first(mm: number): number;
  vma_next_id(v: number): number;
  vma_info(v: number, what: number): number;
  vma_smaps_fill(mm: number, v: number): number;
  nr_vmas_total(): number;
  file_open(size: number, flags: number): number;
  file_close(f: number, discard: number): number;
  file_info(f: number, what: number): number;
  file_set_flag(f: number, flag: number, on: number): number;
  file_truncate(f: number, size: number): number;
  file_prime(f: number, index: number, n: number, willneed: number): number;
  file_evict(f: number, first: number, last: number): number;
  file_sync(f: number, first: number, last: number): number;
  file_rw(f: number, pos: number, n: number, write: number): number;
  file_page_pfn(f: number, index: number): number;
  page_info(pfn: number, what: number): number;
  page_test_flags(pfn: number, set: number, clear: number): number;
  vmf_addr(): number;
  sys_mlock(mm: number, addr: number, len: number, flags: number): number;
  sys_munlock(mm: number, addr: number, len: number): number;
  sys_mlockall(mm: number, flags: number): number;
  sys_munlockall(mm: number): number;
  mm_gup_pfns(mm: number, va: number, n: number, foll: number): number;
  mm_unpin(mm: number, pfn: number): number;
  mmu_swap_init(slots: number): number;
  mmu_swap_info(what: number): number;
  mmu_reclaim(pages: number): number;
  mmu_lru_add_drain(): void;
  page_hint_state(pfn: number): number;
  hv_discard_pfn(pfn: number): number;
  hv_preserve_pfn(pfn: number): number;
  hv_reclaim_frames(n: number): number;
  vmf_map_cached(pgoff: number): number;
  vmf_add_page(pgoff: number): number;
  // Special mappings, XIP and device memory (issue #5).
  mmu_set_xip_bytes(bytes: number): number;
  mmu_xip_frames(): number;
  mmu_dev_base_pfn(): number;
  mmu_special_stat(what: number): number;
  vmf_insert_pfn_at(pfn: number, va: number): number;
  vmf_insert_mixed_at(pfn: number, va: number, mkwrite: number): number;
  vmf_finish_cow(): number;
  vmf_lock_mapping(): number;
  file_immap_info(f: number, what: number): number;
  file_unmap_range(f: number, first: number, last: number, evenCows: number): number;
  mm_remap_pfn_range(mm: number, addr: number, pfn: number, len: number): number;
  mm_vm_insert_page(mm: number, addr: number, pfn: number): number;
  mm_special_mmap(mm: number, addr: number, kind: number): number;
  [name: string]: unknown;
}

/** What the core may ask of the host (assembly/host.ts). Filled in by the layers above. */
export interface HostHandlers {
  readPage(fileId: number, index: number, dst: number): number;
  /** Pages [index, index + n) in one backend read into the frames at the n u32 linear addresses at `dsts`. */
  readPages(fileId: number, index: number, n: number, dsts: number): number;
  writePage(fileId: number, index: number, src: number, len: number): number;
  fault(fileId: number): number;
  mapPages(fileId: number, start: number, end: number): void;
  pageMkwrite(fileId: number): number;
  pfnMkwrite(fileId: number): number;
  /** fallocate(PUNCH_HOLE | KEEP_SIZE) of `len` bytes at byte `off` (MADV_REMOVE): 0 or -errno. */
  punchHole(fileId: number, off: number, len: number): number;
  /** Device memory (issue #5): `len` bytes at physical `pa` to (write 1) or from the device, via linear `buf`. */
  mmio(pa: number, buf: number, len: number, write: number): number;
  swapWrite(slot: number, src: number): number;
  swapRead(slot: number, dst: number): number;
  swapFree(slot: number): void;
}

/** Counter ids of assembly/stats.ts, by name. Append only. */
export const STAT_NAMES = [
  'tlbHits', 'tlbMisses', 'tlbFlushPage', 'tlbFlushRange', 'tlbFlushAsid', 'tlbFlushAll',
  'tlbEntriesFlushed', 'walks', 'pgfault', 'pgmajfault', 'pgalloc', 'pgfree',
  'faultAroundMapped', 'cowCopies', 'wpReuses', 'zeroPageMapped', 'pgscan', 'pgsteal',
  'pswpout', 'pswpin', 'writeback', 'discarded', 'unevictableCulled', 'thpFileMapped',
  'pagecacheReads', 'doneCow', 'sigsegv', 'sigbus',
] as const;
export type StatName = (typeof STAT_NAMES)[number];

/** Messages for the invariant codes of assembly/stats.ts. */
export const INVARIANT_MESSAGES: Record<number, (a: number, b: number) => string> = {
  1: (a, b) => `free list ${b} holds a bad block at pfn ${a}`,
  2: (a, b) => `free lists hold ${a} frames but the allocator counts ${b}`,
  3: (a, b) => `free frame ${a} (in an order-${b} block) is referenced or mapped`,
  4: (a, b) => `frame ${a} is covered by no block, or by a bad one (order ${b})`,
  5: (a, b) => `TLB slot ${a} (asid ${b}) disagrees with the page tables`,
  6: (a, b) => `TLB slot ${a} (asid ${b}) grants more permission than the page tables`,
  7: (a, b) => `frame ${a}: mapcount differs from the ${b} PTEs that map it`,
  8: (a, b) => `frame ${a}: refcount ${b} is below its mapcount`,
  9: (a, b) => `address space ${a}: RSS counter ${b} differs from a recount`,
  10: (a, b) => `address space ${a}: ${b} page-table pages counted differ from its record`,
  11: (a) => `free frame ${a} is mapped by a PTE`,
  12: (a, b) => `file ${a}: page-cache entry ${b} disagrees with its frame`,
  13: (a, b) => `address space ${a}: VMA ${b} is malformed or out of order`,
  14: (a, b) => `frame ${a} is on the wrong LRU list (${b})`,
  15: (a, b) => `address space ${a}: locked_vm differs from the locked VMAs (${b} pages)`,
  16: (a, b) => (b === 0xfffffffe ? `a PTE holds a bad swap entry (slot ${a})`
    : b === 0xffffffff ? `swap slot ${a}: its swap-cache page does not name it back`
    : a === 0 ? `swap: the allocator counts ${b} slots in use, the slots say otherwise`
    : `swap slot ${a}: count ${b} differs from its references`),
  17: (a, b) => `frame ${a}: refcount ${b} is not its mappings plus its page-cache and swap-cache references (a leaked or lost reference)`,
  18: (a, b) => `file ${a}: dirty count ${b} differs from its dirty cached pages`,
  19: (a, b) => (b === 1 ? `frame ${a}: a writable PTE maps this anonymous page, which is not PageAnonExclusive`
    : b === 2 ? `frame ${a}: PageAnonExclusive, yet mapped more than once`
    : `frame ${a}: pinned and mapped, yet not PageAnonExclusive (a read-only pin did not unshare it)`),
  20: (a, b) => (b === 1 ? `frame ${a}: PG_mlocked and PG_unevictable disagree (a small folio is mlocked exactly when it is unevictable)`
    : b === 2 ? `frame ${a}: unevictable and mlocked with an mlock_count of 0`
    : `frame ${a}: mlock_count above its mappings plus its queued munlocks`),
};

/** A loaded core instance. */
export class Core {
  private deadReason: string | null = null;
  private readonly deathWatchers: Array<() => void> = [];
  /** Why the core is unusable, or null while it is sound. */
  get dead(): string | null { return this.deadReason; }
  set dead(reason: string | null) {
    if (reason === null || this.deadReason !== null) { this.deadReason ??= reason; return; }
    this.deadReason = reason;
    for (const f of this.deathWatchers) f();
  }
  /** @internal Export calls in progress (a host import may call back in: depth > 1). */
  depth = 0;
  /** @internal Backend errors of the current (or last) outermost export call, oldest first. */
  readonly callErrors: unknown[] = [];
  /** @internal Work a host import asked for that must wait until no core call runs (afterCall). */
  pending = false;
  /** @internal Run when the outermost core call returns and `pending` is set (the Mmu's file-size follow-up). */
  afterCall: (() => void) | null = null;
  /** @internal Called by the export guard as the outermost call returns. */
  runPending(): void {
    this.pending = false;
    if (this.dead === null && this.afterCall !== null) this.afterCall();
  }
  /** The backend error behind the last core call's failure, if a backend failed in it. */
  lastBackendError(): unknown { return this.callErrors.length === 0 ? undefined : this.callErrors[this.callErrors.length - 1]; }
  /** Run `f` once when the core dies (views over its memory drop their arrays). */
  onDeath(f: () => void): void { this.deathWatchers.push(f); }
  private u8: Uint8Array;
  constructor(readonly x: CoreExports, readonly host: HostHandlers, readonly getString: (p: number) => string) {
    this.u8 = new Uint8Array(x.memory.buffer);
  }

  /** A byte view of all linear memory, refreshed after memory growth. */
  bytes(): Uint8Array {
    if (this.u8.length === 0 || this.u8.buffer !== this.x.memory.buffer) {
      this.u8 = new Uint8Array(this.x.memory.buffer);
    }
    return this.u8;
  }

  /** Throw if the core has crashed before. */
  alive(): void {
    if (this.dead !== null) throw new CoreCrashedError(this.dead);
  }

  /**
   * Record a failure that unwound out of the core: a trap (WebAssembly.RuntimeError), an
   * abort, or any exception from a host import (the Wasm frames it crossed were cut short,
   * so the core may be half-updated). Every later call fails with CoreCrashedError.
   * Returns the error to throw. Called by the export guard (guardExports below).
   */
  crash(e: unknown): Error {
    if (e instanceof CoreCrashedError) return e; // a nested call already recorded it
    const reason = e instanceof WebAssembly.RuntimeError ? `trap: ${e.message}`
      : e instanceof Error ? (e.message.startsWith('abort:') ? e.message : `${e.name} thrown inside the core: ${e.message}`)
      : `non-Error thrown inside the core: ${String(e)}`;
    this.dead ??= reason;
    return new CoreCrashedError(this.dead, e);
  }

  stats(): Record<StatName, number> {
    const out = {} as Record<StatName, number>;
    STAT_NAMES.forEach((n, i) => { out[n] = this.x.mmu_stat(i); });
    return out;
  }

  invariants(): string[] {
    const n = this.x.check_invariants();
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const code = this.x.inv_field(i, 0);
      const msg = INVARIANT_MESSAGES[code];
      const a = this.x.inv_field(i, 1), b = this.x.inv_field(i, 2);
      out.push(msg ? msg(a, b) : `invariant ${code} broken (${a}, ${b})`);
    }
    return out;
  }
}

const DEFAULT_WASM = new URL('../build/release.wasm', import.meta.url);

async function loadBytes(source: URL | string | ArrayBuffer | Uint8Array | WebAssembly.Module):
  Promise<ArrayBuffer | Uint8Array | WebAssembly.Module> {
  if (source instanceof WebAssembly.Module || source instanceof ArrayBuffer || source instanceof Uint8Array) {
    return source;
  }
  const url = typeof source === 'string' ? new URL(source, import.meta.url) : source;
  if (url.protocol === 'file:') {
    // Node only: a browser never sees a file: URL here.
    // The comments keep bundlers from resolving it for the browser (see examples/browser/).
    const fs = await import(/* @vite-ignore */ /* webpackIgnore: true */ 'node:fs/promises');
    return fs.readFile(url);
  }
  const res = await fetch(url);
  if (!res.ok) throw new Error(`wasm-mmu: cannot fetch ${url}: ${res.status}`);
  return res.arrayBuffer();
}

/** An AssemblyScript string at `p`: UTF-16 code units, its byte length 4 bytes before it. */
function readAsString(memory: WebAssembly.Memory, p: number): string {
  p >>>= 0;
  if (p < 4) return '';
  const buf = memory.buffer;
  const units = new Uint32Array(buf, p - 4, 1)[0] >>> 1;
  const u16 = new Uint16Array(buf, p, Math.min(units, (buf.byteLength - p) >>> 1));
  let s = '';
  for (let i = 0; i < u16.length; i += 1024) s += String.fromCharCode(...u16.subarray(i, i + 1024));
  return s;
}

let compiled: Promise<{ module: WebAssembly.Module; staticPages: number | null }> | null = null;

const asBytes = (b: ArrayBuffer | Uint8Array): Uint8Array => (b instanceof Uint8Array ? b : new Uint8Array(b));

/** Instantiate a fresh core (one per Mmu: all core state is per instance). */
export async function loadCore(host: HostHandlers,
  wasm?: URL | string | ArrayBuffer | Uint8Array | WebAssembly.Module, heapBytes = 0): Promise<Core> {
  let module: WebAssembly.Module;
  let staticPages: number | null;
  if (wasm === undefined) {
    compiled ??= loadBytes(DEFAULT_WASM).then(async (b) => (b instanceof WebAssembly.Module
      ? { module: b, staticPages: null } : { module: await WebAssembly.compile(b as BufferSource), staticPages: importedMemoryMinimum(asBytes(b)) }));
    ({ module, staticPages } = await compiled);
  } else {
    const b = await loadBytes(wasm);
    module = b instanceof WebAssembly.Module ? b : await WebAssembly.compile(b as BufferSource);
    staticPages = b instanceof WebAssembly.Module ? null : importedMemoryMinimum(asBytes(b));
  }
  let core: Core | null = null;
  let memory: WebAssembly.Memory | null = null;
  const str = (p: number) => (memory ? readAsString(memory, p) : '<unknown>');
  const imports = {
    // What @assemblyscript/loader would add: abort (the message starts with 'abort:', as
    // Core.crash expects), trace and seed. The loader itself is not used: its bare import
    // would need an import map or a bundler in a browser.
    env: {
      abort: (msg: number, file: number, line: number, col: number) => {
        throw new Error(`abort: ${str(msg)} at ${str(file)}:${line}:${col}`);
      },
      trace: (msg: number, n: number, ...args: number[]) => { console.log(`trace: ${str(msg)} ${args.slice(0, n).join(', ')}`); },
      seed: () => Date.now(),
    },
    // Each import runs inside a Wasm call: it must never throw (the handlers catch).
    host: {
      readPage: (fileId: number, index: number, dst: number) => core!.host.readPage(fileId, index, dst >>> 0),
      readPages: (fileId: number, index: number, n: number, dsts: number) =>
        core!.host.readPages(fileId, index, n >>> 0, dsts >>> 0),
      writePage: (fileId: number, index: number, src: number, len: number) =>
        core!.host.writePage(fileId, index, src >>> 0, len),
      fault: (fileId: number) => core!.host.fault(fileId),
      mapPages: (fileId: number, start: number, end: number) => core!.host.mapPages(fileId, start, end),
      pageMkwrite: (fileId: number) => core!.host.pageMkwrite(fileId),
      pfnMkwrite: (fileId: number) => core!.host.pfnMkwrite(fileId),
      punchHole: (fileId: number, off: number, len: number) => core!.host.punchHole(fileId, off, len),
      mmio: (pa: number, buf: number, len: number, write: number) => core!.host.mmio(pa, buf >>> 0, len >>> 0, write),
      swapWrite: (slot: number, src: number) => core!.host.swapWrite(slot, src >>> 0),
      swapRead: (slot: number, dst: number) => core!.host.swapRead(slot, dst >>> 0),
      swapFree: (slot: number) => core!.host.swapFree(slot),
    },
  };
  // A core that imports its memory (the default build) gets it at its final size, so that
  // it never grows (src/core-memory.ts). A compiled module's declared minimum cannot be
  // read: guess 16 MiB of static data and double on a link error. A module that defines
  // its own memory (built without --importMemory) grows it itself, as before.
  const importsMemory = WebAssembly.Module.imports(module).some((i) => i.module === 'env' && i.name === 'memory' && i.kind === 'memory');
  let instance: WebAssembly.Instance;
  for (let guess = 256; ; guess *= 2) {
    const own = importsMemory ? makeCoreMemory(staticPages ?? guess, heapBytes) : undefined;
    try {
      instance = await WebAssembly.instantiate(module, own ? { ...imports, env: { ...imports.env, memory: own } } : imports);
      break;
    } catch (e) {
      if (!(e instanceof WebAssembly.LinkError) || staticPages !== null || !importsMemory || guess >= 65536) throw e;
    }
  }
  const exports = instance.exports as unknown as CoreExports;
  memory = exports.memory;
  core = new Core(guardExports(exports, () => core!), host, str);
  return core;
}

/**
 * Every exported function, wrapped once: a call into a dead core throws CoreCrashedError,
 * and an exception unwinding out of a call marks the core dead (Core.crash) before the
 * caller sees CoreCrashedError. The cost is one closure call per export call, nothing per
 * page (bulk loops stay inside Wasm). `.original` is the raw export (benchmarks use it).
 */
function guardExports(raw: CoreExports, core: () => Core): CoreExports {
  // The outermost call starts a new list of backend errors (Core.callErrors), so that the
  // error a failed access reports is the one of that access, never an older one.
  const enter = (): Core => {
    const c = core();
    if (c.dead !== null) throw new CoreCrashedError(c.dead);
    if (c.depth++ === 0) c.callErrors.length = 0;
    return c;
  };
  const ok = (c: Core, r: number): number => {
    if (c.dead !== null) throw new CoreCrashedError(c.dead);
    return r;
  };
  const out: Record<string, unknown> = {};
  for (const [name, v] of Object.entries(raw)) {
    if (typeof v !== 'function') { out[name] = v; continue; }
    const f = v as (...a: number[]) => number;
    let w: (...a: number[]) => number;
    // Fixed arities keep the wrapper free of rest/spread on the common calls. `ok` also
    // catches a trap in a nested call (a host import calling back in) that the host
    // swallowed: the outer result would be from a half-updated core.
    switch (f.length) {
      case 0: w = () => { const c = enter(); try { return ok(c, f()); } catch (e) { throw c.crash(e); } finally { if (--c.depth === 0 && c.pending) c.runPending(); } }; break;
      case 1: w = (a) => { const c = enter(); try { return ok(c, f(a)); } catch (e) { throw c.crash(e); } finally { if (--c.depth === 0 && c.pending) c.runPending(); } }; break;
      case 2: w = (a, b) => { const c = enter(); try { return ok(c, f(a, b)); } catch (e) { throw c.crash(e); } finally { if (--c.depth === 0 && c.pending) c.runPending(); } }; break;
      case 3: w = (a, b, d) => { const c = enter(); try { return ok(c, f(a, b, d)); } catch (e) { throw c.crash(e); } finally { if (--c.depth === 0 && c.pending) c.runPending(); } }; break;
      case 4: w = (a, b, d, g) => { const c = enter(); try { return ok(c, f(a, b, d, g)); } catch (e) { throw c.crash(e); } finally { if (--c.depth === 0 && c.pending) c.runPending(); } }; break;
      default: w = (...a) => { const c = enter(); try { return ok(c, f(...a)); } catch (e) { throw c.crash(e); } finally { if (--c.depth === 0 && c.pending) c.runPending(); } };
    }
    Object.defineProperty(w, 'original', { value: f });
    Object.defineProperty(w, 'name', { value: name });
    out[name] = w;
  }
  return out as unknown as CoreExports;
}
