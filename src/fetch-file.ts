// FetchFile: a file read over HTTP range requests — an asynchronous backend.
//
// A page fault cannot wait for the network: the core calls readPage synchronously, inside
// Wasm. So, like a Linux file system whose read must sleep, FetchFile answers -EAGAIN for a
// page it has not got, and remembers that the page is wanted; the fault then returns
// VM_FAULT_RETRY with nothing mapped and nothing counted. The read-around of filemap_fault
// asks for its whole window (32 pages) before giving up, so the wanted pages of one fault
// go out as ONE range request. AddressSpace's async API (touchAsync, readAsync, writeAsync,
// translateAsync) awaits settle() and retries the access, which now finds the bytes.
//
// Browser-safe: no `node:` import; it needs only the global fetch (browsers, Node >= 18).
import type { Backend } from './file.js';
import { PAGE_SIZE, MAX_FILE_BYTES } from './constants.js';
import { showValue } from './errors.js';

/** readPage's answer when the data must be waited for: -EAGAIN. */
export const READ_AGAIN = -11;

/**
 * A backend whose reads may have to wait. readPage returns -11 (-EAGAIN) for a page it
 * has not got yet and starts getting it; settle() resolves when everything asked for so
 * far has arrived (or failed: readPage then throws the error once, which the access sees
 * as SIGBUS — a BusError — with the error kept in Mmu.backendErrors).
 */
export interface AsyncBackend extends Backend {
  /** Pages asked for and not yet arrived; 0 means waiting would change nothing. */
  pending(): number;
  /** Resolves when every read asked for so far has completed or failed. Never rejects. */
  settle(): Promise<void>;
}

/** Whether a backend is asynchronous (has settle() and pending()). */
export function isAsyncBackend(b: Backend | undefined | null): b is AsyncBackend {
  return !!b && typeof (b as AsyncBackend).settle === 'function' && typeof (b as AsyncBackend).pending === 'function';
}

export interface FetchFileOptions {
  /** The file's size in bytes, if known: then open() makes no request for it. */
  size?: number;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
  /** Extra request options (headers such as Authorization, credentials, mode …). */
  init?: RequestInit;
  /** Largest range one request asks for, in bytes (default 2 MiB). */
  maxRequestBytes?: number;
  /** Pages nobody asked for that are fetched anyway to join two wanted runs into one
   *  request, at most (default 8): one request costs more than 32 KiB on most links. */
  maxGapPages?: number;
  /** Fetched pages kept after the page cache took them (default 256): a page evicted and
   *  faulted again soon is served without a new request. */
  keepPages?: number;
  /** Called for every HTTP request made (for statistics, logs and demos). */
  onRequest?: (r: FetchFileRequest) => void;
  /**
   * Milliseconds one request may take, answer and body included, before it is aborted
   * (default 30000). An aborted request fails only its own pages: later ones start afresh.
   */
  timeoutMs?: number;
  /** Retries of a request that failed on the network, timed out or got HTTP 5xx / 429 (default 2). */
  retries?: number;
  /** Wait before the first retry, doubled for each next one (default 250 ms). */
  retryDelayMs?: number;
}

/** A failed HTTP exchange: names the method, URL and range; `retryable` for network errors, timeouts, 5xx, 429. */
class FetchFileError extends Error {
  constructor(message: string, readonly retryable: boolean, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'FetchFileError';
  }
}

interface Limits { timeoutMs: number; retries: number; retryDelayMs: number }

function limitsOf(o: FetchFileOptions): Limits {
  const timeoutMs = o.timeoutMs ?? 30000;
  if (typeof timeoutMs !== 'number' || !(timeoutMs > 0) || timeoutMs > 2 ** 31 - 1) throw new RangeError(`timeoutMs must be a positive number of milliseconds, got ${showValue(timeoutMs)}`);
  const retries = o.retries ?? 2;
  if (!Number.isInteger(retries) || retries < 0 || retries > 100) throw new RangeError(`retries must be an integer from 0 to 100, got ${showValue(retries)}`);
  const retryDelayMs = o.retryDelayMs ?? 250;
  if (typeof retryDelayMs !== 'number' || !(retryDelayMs >= 0) || retryDelayMs > 600000) throw new RangeError(`retryDelayMs must be from 0 to 600000, got ${showValue(retryDelayMs)}`);
  return { timeoutMs, retries, retryDelayMs };
}

/**
 * One HTTP exchange with its own deadline: a fresh AbortController per request (the
 * caller's init.signal, if any, also aborts it), the body read before the deadline too.
 */
async function exchange(f: typeof fetch, url: string, init: RequestInit, what: string, timeoutMs: number):
  Promise<{ res: Response; body: Uint8Array }> {
  const ac = new AbortController();
  const user = init.signal ?? null;
  const onUser = () => ac.abort(user?.reason);
  if (user) { if (user.aborted) ac.abort(user.reason); else user.addEventListener('abort', onUser, { once: true }); }
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; ac.abort(); }, timeoutMs);
  try {
    const res = await f(url, { ...init, signal: ac.signal });
    const body = init.method === 'HEAD' ? new Uint8Array(0) : new Uint8Array(await res.arrayBuffer());
    return { res, body };
  } catch (e) {
    if (timedOut) throw new FetchFileError(`FetchFile: ${what} ${url}: no complete answer within ${timeoutMs} ms (timeoutMs)`, true, e);
    if (user?.aborted) throw new FetchFileError(`FetchFile: ${what} ${url}: aborted by init.signal`, false, e);
    const why = e instanceof Error ? `${e.message}${e.cause instanceof Error ? ` (${e.cause.message})` : ''}` : String(e);
    throw new FetchFileError(`FetchFile: ${what} ${url}: ${why}`, true, e);
  } finally {
    clearTimeout(timer);
    user?.removeEventListener('abort', onUser);
  }
}

/** exchange(), retried with doubling delays while the failure is retryable (network, timeout, 5xx, 429). */
async function exchangeRetrying(f: typeof fetch, url: string, init: RequestInit, what: string, l: Limits):
  Promise<{ res: Response; body: Uint8Array }> {
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await exchange(f, url, init, what, l.timeoutMs);
      if (r.res.status >= 500 || r.res.status === 429) throw new FetchFileError(`FetchFile: ${what} ${url}: HTTP ${r.res.status}`, true);
      return r;
    } catch (e) {
      const err = e instanceof FetchFileError ? e : new FetchFileError(`FetchFile: ${what} ${url}: ${String(e)}`, false, e);
      if (!err.retryable || attempt >= l.retries) {
        if (attempt === 0) throw err;
        throw new FetchFileError(`${err.message} (after ${attempt + 1} attempts)`, false, err.cause ?? err);
      }
      await new Promise((r) => setTimeout(r, l.retryDelayMs * 2 ** attempt));
    }
  }
}

export interface FetchFileRequest {
  method: 'GET' | 'HEAD';
  /** First and last page of the range (GET). */
  first: number;
  last: number;
  /** The Range header sent, if any. */
  range: string | null;
}

/** A file whose bytes are fetched on demand, a page range at a time, from a URL. */
export class FetchFile implements AsyncBackend {
  readonly url: string;
  /** HTTP requests made (HEAD included). */
  requests = 0;
  /** Body bytes received. */
  bytesFetched = 0;
  /** False once the server answered a range request with the whole file (200). */
  rangeSupported = true;

  private readonly length: number;
  private readonly fetchImpl: typeof fetch;
  private readonly init: RequestInit;
  private readonly maxPages: number;
  private readonly maxGap: number;
  private readonly keep: number;
  private readonly onRequest?: (r: FetchFileRequest) => void;
  private readonly limits: Limits;
  /** Arrived, not yet taken by the page cache. */
  private readonly fetched = new Map<number, Uint8Array>();
  /** Taken by the page cache; the most recent `keep` are kept (Map order = age). */
  private readonly delivered = new Map<number, Uint8Array>();
  /** Asked for, not yet requested. */
  private readonly wanted = new Set<number>();
  /** Requested, not yet arrived. */
  private readonly inflight = new Set<number>();
  /** A request failed: the error readPage throws (once) for the page. */
  private readonly failed = new Map<number, unknown>();
  private readonly outstanding = new Set<Promise<void>>();
  private scheduled = false;

  /**
   * Open `url`: its size comes from `opts.size`, else from a HEAD request, else from the
   * Content-Range of a first range request (whose pages are kept).
   */
  static async open(url: string | URL, opts: FetchFileOptions = {}): Promise<FetchFile> {
    const href = FetchFile.resolve(url);
    if (opts.size !== undefined) return new FetchFile(href, { ...opts, size: opts.size });
    const f = opts.fetch ?? globalThis.fetch.bind(globalThis);
    const init = opts.init ?? {};
    const limits = limitsOf(opts);
    const note = (r: FetchFileRequest) => opts.onRequest?.(r);
    let requests = 0;
    // 1. HEAD: Content-Length is the size (when the body is not content-encoded).
    try {
      requests++;
      note({ method: 'HEAD', first: 0, last: -1, range: null });
      const head = (await exchange(f, href, { ...init, method: 'HEAD' }, 'HEAD', limits.timeoutMs)).res;
      const len = head.headers.get('content-length');
      if (head.ok && len !== null && !head.headers.get('content-encoding') && /^\d+$/.test(len)) {
        const file = new FetchFile(href, { ...opts, size: Number(len) });
        file.requests = requests;
        return file;
      }
    } catch { /* some servers refuse HEAD: try a range request */ }
    // 2. The first 64 KiB: Content-Range says "bytes 0-65535/<size>".
    const range = `bytes=0-${16 * PAGE_SIZE - 1}`;
    requests++;
    note({ method: 'GET', first: 0, last: 15, range });
    const { res, body } = await exchangeRetrying(f, href, { ...init, headers: FetchFile.headers(init, range) }, `GET (${range})`, limits);
    if (!res.ok) throw new Error(`FetchFile: GET ${href}: HTTP ${res.status}`);
    let size: number;
    let whole = false;
    if (res.status === 206) {
      const m = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i.exec(res.headers.get('content-range') ?? '');
      if (!m || m[1] !== '0' || m[3] === '*') throw new Error(`FetchFile: ${href}: no usable Content-Range to learn the size from`);
      size = Number(m[3]);
    } else {
      size = body.length; // no range support: this is the whole file
      whole = true;
    }
    const file = new FetchFile(href, { ...opts, size });
    file.requests = requests;
    file.bytesFetched = body.length;
    if (whole) file.rangeSupported = false;
    file.store(0, body);
    return file;
  }

  /** A FetchFile of known size (no request until a page is wanted). */
  constructor(url: string | URL, opts: FetchFileOptions & { size: number }) {
    this.url = FetchFile.resolve(url);
    const size = opts.size;
    if (!Number.isInteger(size) || size < 0 || size > MAX_FILE_BYTES) throw new RangeError(`FetchFile size must be an integer in [0, 2^53], got ${showValue(size)}`);
    this.length = size;
    this.fetchImpl = opts.fetch ?? globalThis.fetch.bind(globalThis);
    this.init = opts.init ?? {};
    const maxBytes = opts.maxRequestBytes ?? 2 * 1024 * 1024;
    if (!Number.isInteger(maxBytes) || maxBytes < PAGE_SIZE) throw new RangeError(`maxRequestBytes must be an integer >= 4096, got ${showValue(maxBytes)}`);
    this.maxPages = Math.floor(maxBytes / PAGE_SIZE);
    this.maxGap = opts.maxGapPages ?? 8;
    this.keep = opts.keepPages ?? 256;
    this.onRequest = opts.onRequest;
    this.limits = limitsOf(opts);
  }

  private static resolve(url: string | URL): string {
    const base = (globalThis as { location?: { href: string } }).location?.href;
    return new URL(String(url), base).href;
  }

  private static headers(init: RequestInit, range: string): Headers {
    const h = new Headers(init.headers);
    h.set('Range', range);
    return h;
  }

  size(): number { return this.length; }

  /** Pages asked for and not yet arrived. */
  pending(): number { return this.wanted.size + this.inflight.size; }

  /** Whether page `index` is wanted or on its way (for displays). */
  isPending(index: number): boolean { return this.wanted.has(index) || this.inflight.has(index); }

  readPage(index: number, dst: Uint8Array): number {
    const off = index * PAGE_SIZE;
    if (off >= this.length) return 0;
    const n = Math.min(PAGE_SIZE, this.length - off);
    let data = this.fetched.get(index);
    if (data !== undefined) {
      this.fetched.delete(index);
      this.remember(index, data);
    } else {
      data = this.delivered.get(index);
    }
    if (data !== undefined) {
      dst.set(data.subarray(0, n));
      return n;
    }
    if (this.failed.has(index)) {
      const e = this.failed.get(index);
      this.failed.delete(index); // the next access tries the network again
      throw e;
    }
    if (!this.inflight.has(index)) {
      this.wanted.add(index);
      if (!this.scheduled) {
        // Every readPage of one fault runs inside the same synchronous Wasm call: by the
        // time the microtask runs, the whole read-around window is wanted.
        this.scheduled = true;
        queueMicrotask(() => this.flush());
      }
    }
    return READ_AGAIN;
  }

  /** Resolves when every page asked for so far has arrived or failed. Never rejects. */
  async settle(): Promise<void> {
    this.flush();
    while (this.outstanding.size > 0) {
      await Promise.all([...this.outstanding]);
      this.flush();
    }
  }

  /** Drop every page held here (the page cache keeps its own copies). */
  forget(): void {
    this.fetched.clear();
    this.delivered.clear();
    this.failed.clear();
  }

  private remember(index: number, data: Uint8Array): void {
    this.delivered.delete(index);
    this.delivered.set(index, data);
    if (this.delivered.size > this.keep) {
      const oldest = this.delivered.keys().next().value as number;
      this.delivered.delete(oldest);
    }
  }

  /** Send the wanted pages as few range requests as the limits allow. */
  private flush(): void {
    this.scheduled = false;
    if (this.wanted.size === 0) return;
    const pages = [...this.wanted].sort((a, b) => a - b);
    this.wanted.clear();
    for (let i = 0; i < pages.length;) {
      const first = pages[i];
      let last = first;
      i++;
      while (i < pages.length && pages[i] - last - 1 <= this.maxGap && pages[i] - first < this.maxPages) last = pages[i++];
      this.request(first, last);
    }
  }

  private request(first: number, last: number): void {
    const start = first * PAGE_SIZE;
    const end = Math.min(this.length, (last + 1) * PAGE_SIZE) - 1;
    for (let p = first; p <= last; p++) {
      if (!this.fetched.has(p) && !this.delivered.has(p)) this.inflight.add(p);
    }
    const range = `bytes=${start}-${end}`;
    this.requests++;
    this.onRequest?.({ method: 'GET', first, last, range });
    const done = (async () => {
      try {
        const { res, body } = await exchangeRetrying(this.fetchImpl, this.url,
          { ...this.init, headers: FetchFile.headers(this.init, range) }, `GET (${range})`, this.limits);
        if (res.status !== 206 && res.status !== 200) throw new Error(`FetchFile: GET ${this.url} (${range}): HTTP ${res.status}`);
        this.bytesFetched += body.length;
        if (res.status === 206) {
          const m = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i.exec(res.headers.get('content-range') ?? '');
          if (!m || Number(m[1]) !== start) throw new Error(`FetchFile: ${this.url}: asked for ${range}, got Content-Range ${res.headers.get('content-range')}`);
          // The total must be the size the file was opened with: another size is another file.
          if (m[3] !== '*' && Number(m[3]) !== this.length) {
            throw new Error(`FetchFile: ${this.url}: Content-Range says the file has ${m[3]} bytes, but it was opened with ${this.length} bytes: it changed on the server`);
          }
          if (body.length < end - start + 1) throw new Error(`FetchFile: ${this.url}: short body for ${range} (${body.length} bytes): the file changed?`);
          this.store(first, body);
        } else {
          // The server ignored Range and sent the whole file: keep all of it.
          this.rangeSupported = false;
          if (body.length < this.length) throw new Error(`FetchFile: ${this.url}: the file shrank to ${body.length} bytes`);
          this.store(0, body.subarray(0, this.length));
        }
      } catch (e) {
        const err = e instanceof Error ? e : new Error(String(e));
        for (let p = first; p <= last; p++) if (this.inflight.has(p)) this.failed.set(p, err);
      } finally {
        for (let p = first; p <= last; p++) this.inflight.delete(p);
      }
    })();
    this.outstanding.add(done);
    void done.finally(() => this.outstanding.delete(done));
  }

  /** File pages from `first` on, out of a body starting at that page. */
  private store(first: number, body: Uint8Array): void {
    for (let off = 0, p = first; off < body.length; off += PAGE_SIZE, p++) {
      // A copy per page: a view would keep the whole response alive while one page is held.
      if (!this.delivered.has(p)) this.fetched.set(p, body.slice(off, Math.min(off + PAGE_SIZE, body.length)));
    }
  }
}
