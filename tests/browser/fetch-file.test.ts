// FetchFile and the async AddressSpace API, in Node: against a fake fetch (exact control of
// what the server does) and against scripts/serve.mjs over real HTTP. The same scenarios run
// inside Chromium in harness.test.ts.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import {
  createMmu, FetchFile, isAsyncBackend, MemoryFile, LinuxError, BusError, SegmentationFault, PAGE_SIZE,
  PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_SHARED, MADV_RANDOM, type Mmu,
} from '../../src/index.js';
import { startServer, dataFile, parseRange, type Served } from '../../scripts/serve.mjs';

const PAGES = 64;
const DATA = dataFile(PAGES);
const label = (p: number, n = PAGES) => `page ${p} of ${n}\n`;
const text = (b: Uint8Array) => new TextDecoder().decode(b);

interface FakeOptions { head?: boolean; ranges?: boolean; status?: number; delay?: number }

/** A fetch over DATA that records every request. */
function fakeFetch(o: FakeOptions = {}) {
  const calls: { method: string; range: string | null }[] = [];
  const f = (async (_url: RequestInfo | URL, init?: RequestInit) => {
    const method = init?.method ?? 'GET';
    const range = new Headers(init?.headers).get('range');
    calls.push({ method, range });
    if (o.delay) await new Promise((r) => setTimeout(r, o.delay));
    if (o.status) return new Response('nope', { status: o.status });
    if (method === 'HEAD') {
      if (o.head === false) return new Response(null, { status: 405 });
      return new Response(null, { status: 200, headers: { 'Content-Length': String(DATA.length) } });
    }
    const r = o.ranges === false ? null : parseRange(range ?? undefined, DATA.length);
    if (r === 'bad') return new Response(null, { status: 416 });
    if (r === null) return new Response(DATA.slice(), { status: 200 });
    return new Response(DATA.slice(r.start, r.end + 1), {
      status: 206, headers: { 'Content-Range': `bytes ${r.start}-${r.end}/${DATA.length}` },
    });
  }) as typeof fetch;
  return { f, calls, gets: () => calls.filter((c) => c.method === 'GET') };
}

async function mapped(mmu: Mmu, ff: FetchFile, flags = MAP_PRIVATE, prot = PROT_READ) {
  const mm = mmu.createAddressSpace();
  const file = mmu.openFile(ff);
  const va = mm.mmap({ addr: 0x20000000, length: PAGES * PAGE_SIZE, prot, flags, file });
  return { mm, va, file };
}

describe('FetchFile (fake fetch)', () => {
  it('is an async backend; size from HEAD, or from a first range request when HEAD is refused', async () => {
    const a = fakeFetch();
    const ff = await FetchFile.open('http://x/f.bin', { fetch: a.f });
    expect(isAsyncBackend(ff)).toBe(true);
    expect(isAsyncBackend(new MemoryFile(1))).toBe(false);
    expect(ff.size()).toBe(PAGES * PAGE_SIZE);
    expect(a.calls).toEqual([{ method: 'HEAD', range: null }]);

    const b = fakeFetch({ head: false });
    const ff2 = await FetchFile.open('http://x/f.bin', { fetch: b.f });
    expect(ff2.size()).toBe(PAGES * PAGE_SIZE);
    expect(b.gets().map((c) => c.range)).toEqual(['bytes=0-65535']);
    // The first 16 pages came with it: no request for them.
    const dst = new Uint8Array(PAGE_SIZE);
    expect(ff2.readPage(3, dst)).toBe(PAGE_SIZE);
    expect(text(dst.subarray(0, 13))).toBe(label(3));
    expect(ff2.requests).toBe(2);

    const c = fakeFetch();
    const ff3 = await FetchFile.open('http://x/f.bin', { fetch: c.f, size: 12345 });
    expect(ff3.size()).toBe(12345);
    expect(c.calls).toEqual([]);
  });

  it('readPage: -11 and wanted; the pages of one synchronous burst go out as one range request', async () => {
    const a = fakeFetch();
    const ff = new FetchFile('http://x/f.bin', { fetch: a.f, size: DATA.length });
    const dst = new Uint8Array(PAGE_SIZE);
    for (let p = 10; p < 20; p++) expect(ff.readPage(p, dst)).toBe(-11);
    expect(ff.readPage(12, dst)).toBe(-11); // asked twice: still one want
    expect(ff.readPage(PAGES, dst)).toBe(0); // beyond EOF: nothing to read, no request
    expect(ff.pending()).toBe(10);
    await ff.settle();
    expect(a.gets().map((c) => c.range)).toEqual([`bytes=${10 * PAGE_SIZE}-${20 * PAGE_SIZE - 1}`]);
    expect(ff.pending()).toBe(0);
    expect(ff.readPage(15, dst)).toBe(PAGE_SIZE);
    expect(text(dst.subarray(0, 14))).toBe(label(15));
  });

  it('coalesces across small gaps, splits at maxRequestBytes, and keeps far runs apart', async () => {
    const a = fakeFetch();
    const ff = new FetchFile('http://x/f.bin', { fetch: a.f, size: DATA.length, maxGapPages: 2, maxRequestBytes: 8 * PAGE_SIZE });
    const dst = new Uint8Array(PAGE_SIZE);
    for (const p of [0, 1, 3, 4, 20, 21, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39]) ff.readPage(p, dst);
    await ff.settle();
    const r = (a: number, b: number) => `bytes=${a * PAGE_SIZE}-${(b + 1) * PAGE_SIZE - 1}`;
    expect(a.gets().map((c) => c.range)).toEqual([r(0, 4), r(20, 21), r(30, 37), r(38, 39)]);
    for (const p of [2, 3, 36]) expect(ff.readPage(p, dst)).toBe(PAGE_SIZE); // the gap page came too
  });

  it('a server without Range support: the whole file arrives once and serves every page', async () => {
    const a = fakeFetch({ ranges: false });
    const ff = new FetchFile('http://x/f.bin', { fetch: a.f, size: DATA.length });
    const dst = new Uint8Array(PAGE_SIZE);
    ff.readPage(5, dst);
    await ff.settle();
    expect(ff.rangeSupported).toBe(false);
    for (let p = 0; p < PAGES; p++) expect(ff.readPage(p, dst)).toBe(PAGE_SIZE);
    expect(a.gets().length).toBe(1);
  });

  it('a failed request: readPage throws once (SIGBUS for the access), then asks the network again', async () => {
    const a = fakeFetch({ status: 500 });
    const ff = new FetchFile('http://x/f.bin', { fetch: a.f, size: DATA.length });
    const dst = new Uint8Array(PAGE_SIZE);
    expect(ff.readPage(1, dst)).toBe(-11);
    await ff.settle();
    expect(() => ff.readPage(1, dst)).toThrow(/HTTP 500/);
    expect(ff.readPage(1, dst)).toBe(-11);
  });
});

describe('AddressSpace async API over FetchFile (fake fetch)', () => {
  it('sync access: LinuxError EAGAIN pointing at the async API, nothing mapped, nothing counted', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const a = fakeFetch();
    const { mm, va } = await mapped(mmu, new FetchFile('http://x/f.bin', { fetch: a.f, size: DATA.length }));
    let err: unknown;
    try { mm.touch(va + 40 * PAGE_SIZE, PAGE_SIZE, 'read'); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(LinuxError);
    expect((err as LinuxError).code).toBe('EAGAIN');
    expect((err as LinuxError).message).toMatch(/async/);
    expect(mm.pagemap(va, PAGES).filter((p) => p.present)).toEqual([]);
    expect(mm.rusage()).toEqual({ minflt: 0, majflt: 0 });
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('touchAsync / readAsync / translateAsync complete; the retried fault is major (it read the file)', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const a = fakeFetch({ delay: 2 });
    const { mm, va } = await mapped(mmu, new FetchFile('http://x/f.bin', { fetch: a.f, size: DATA.length }));
    await mm.touchAsync(va + 40 * PAGE_SIZE, 1, 'read');
    expect(mm.rusage()).toEqual({ minflt: 0, majflt: 1 });
    // Read-around asked for pages 24..55 in one request.
    expect(a.gets().map((c) => c.range)).toEqual([`bytes=${24 * PAGE_SIZE}-${56 * PAGE_SIZE - 1}`]);
    expect(text(await mm.readAsync(va + 41 * PAGE_SIZE, 14))).toBe(label(41));
    const pa = await mm.translateAsync(va + 2 * PAGE_SIZE + 7, 'read');
    expect(text(mmu.phys.read(pa - 7, 12))).toBe('page 2 of 64');
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('a cold 64-page sequential read: 2 range requests with read-around, 64 with MADV_RANDOM', async () => {
    const run = async (faultAroundBytes: number, random: boolean) => {
      const mmu = await createMmu({ ramBytes: 16 << 20, faultAroundBytes });
      const a = fakeFetch();
      const { mm, va } = await mapped(mmu, new FetchFile('http://x/f.bin', { fetch: a.f, size: DATA.length }));
      if (random) mm.madvise(va, PAGES * PAGE_SIZE, MADV_RANDOM);
      for (let p = 0; p < PAGES; p++) await mm.touchAsync(va + p * PAGE_SIZE, 1, 'read');
      for (let p = 0; p < PAGES; p += 7) expect(text(mm.read(va + p * PAGE_SIZE, label(p).length))).toBe(label(p));
      expect(mmu.checkInvariants()).toEqual([]);
      return { gets: a.gets().length, ru: mm.rusage() };
    };
    const fa = await run(65536, false);
    const none = await run(4096, true);
    expect(fa.gets).toBeLessThanOrEqual(4);
    expect(none.gets).toBe(64);
    expect(fa.ru.minflt + fa.ru.majflt).toBeLessThan(none.ru.minflt + none.ru.majflt);
    expect(none.ru).toEqual({ minflt: 0, majflt: 64 });
  });

  it('a whole-range touchAsync and a write through a private mapping (COW of a fetched page)', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const a = fakeFetch();
    const { mm, va } = await mapped(mmu, new FetchFile('http://x/f.bin', { fetch: a.f, size: DATA.length }),
      MAP_PRIVATE, PROT_READ | PROT_WRITE);
    await mm.touchAsync(va, PAGES * PAGE_SIZE, 'read');
    expect(mm.pagemap(va, PAGES).every((p) => p.present)).toBe(true);
    expect(a.gets().length).toBeLessThanOrEqual(4);
    await mm.writeAsync(va + 3 * PAGE_SIZE, new TextEncoder().encode('PAGE'));
    expect(text(mm.read(va + 3 * PAGE_SIZE, 13))).toBe('PAGE 3 of 64\n'.slice(0, 13));
    expect(mmu.stats().cowCopies).toBeGreaterThanOrEqual(1);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('writeAsync through a shared mapping of a cold page waits for the read first', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const a = fakeFetch();
    const { mm, va } = await mapped(mmu, new FetchFile('http://x/f.bin', { fetch: a.f, size: DATA.length }),
      MAP_SHARED, PROT_READ | PROT_WRITE);
    await mm.writeAsync(va + 9 * PAGE_SIZE + 7, new TextEncoder().encode('XY'));
    expect(text(mm.read(va + 9 * PAGE_SIZE, 13))).toBe('page 9 XY 64\n');
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('two address spaces wait at once: each read gets its own bytes (the staging buffer is shared)', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const a = fakeFetch({ delay: 3 });
    const ff = new FetchFile('http://x/f.bin', { fetch: a.f, size: DATA.length });
    const file = mmu.openFile(ff);
    const m1 = mmu.createAddressSpace(), m2 = mmu.createAddressSpace();
    const v1 = m1.mmap({ length: PAGES * PAGE_SIZE, prot: PROT_READ, flags: MAP_PRIVATE, file });
    const v2 = m2.mmap({ length: PAGES * PAGE_SIZE, prot: PROT_READ, flags: MAP_PRIVATE, file });
    const [r1, r2] = await Promise.all([m1.readAsync(v1 + 10 * PAGE_SIZE, 14), m2.readAsync(v2 + 50 * PAGE_SIZE, 14)]);
    expect(text(r1)).toBe(label(10));
    expect(text(r2)).toBe(label(50));
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('real errors still surface: SIGSEGV outside a mapping, SIGBUS on an HTTP error or beyond EOF', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const ok = fakeFetch();
    const { mm, va } = await mapped(mmu, new FetchFile('http://x/f.bin', { fetch: ok.f, size: 10 * PAGE_SIZE }));
    await expect(mm.touchAsync(va + PAGES * PAGE_SIZE, 1)).rejects.toBeInstanceOf(SegmentationFault);
    await expect(mm.readAsync(va + 12 * PAGE_SIZE, 1)).rejects.toBeInstanceOf(BusError); // beyond the 10-page file
    const bad = fakeFetch({ status: 404 });
    const m2 = await mapped(mmu, new FetchFile('http://x/missing', { fetch: bad.f, size: DATA.length }));
    await expect(m2.mm.touchAsync(m2.va, 1)).rejects.toBeInstanceOf(BusError);
    expect(mmu.backendErrors.some((e) => /HTTP 404/.test(String((e as Error).message)))).toBe(true);
    expect(m2.mm.pagemap(m2.va, PAGES).filter((p) => p.present)).toEqual([]);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('a backend that answers -EAGAIN with nothing to wait for: EAGAIN, not a hang', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const stuck = { size: () => PAGES * PAGE_SIZE, readPage: () => -11 };
    const mm = mmu.createAddressSpace();
    const va = mm.mmap({ length: PAGE_SIZE, prot: PROT_READ, flags: MAP_PRIVATE, file: mmu.openFile(stuck) });
    await expect(mm.touchAsync(va, 1)).rejects.toMatchObject({ name: 'LinuxError', code: 'EAGAIN' });
  });

  it('an address space destroyed while it waits: the access fails cleanly', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const a = fakeFetch({ delay: 5 });
    const { mm, va } = await mapped(mmu, new FetchFile('http://x/f.bin', { fetch: a.f, size: DATA.length }));
    const p = mm.touchAsync(va, 1);
    mm.destroy();
    await expect(p).rejects.toBeInstanceOf(LinuxError);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});

describe('FetchFile over real HTTP (scripts/serve.mjs)', () => {
  let srv: Served;
  beforeAll(async () => { srv = await startServer({ port: 0 }); });
  afterAll(async () => { await srv?.close(); });

  it('HEAD for the size, then a handful of range requests for a cold sequential read', async () => {
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const ff = await FetchFile.open(`${srv.url}/__data/pages-64.bin`);
    const { mm, va } = await mapped(mmu, ff);
    for (let p = 0; p < PAGES; p++) await mm.touchAsync(va + p * PAGE_SIZE, 1, 'read');
    expect(text(await mm.readAsync(va + 63 * PAGE_SIZE, 14))).toBe(label(63));
    const data = srv.log.filter((r) => r.path === '/__data/pages-64.bin');
    expect(data[0]).toMatchObject({ method: 'HEAD', status: 200 });
    const gets = data.filter((r) => r.method === 'GET');
    expect(gets.every((r) => r.status === 206)).toBe(true);
    expect(gets.length).toBeLessThanOrEqual(4);
    expect(ff.requests).toBe(data.length);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('serves the right types, Range, HEAD and 416', async () => {
    const head = async (p: string) => (await fetch(srv.url + p, { method: 'HEAD' })).headers.get('content-type');
    expect(await head('/build/release.wasm')).toBe('application/wasm');
    expect(await head('/dist/index.js')).toMatch(/^text\/javascript/);
    expect(await head('/examples/browser/')).toMatch(/^text\/html/);
    const r = await fetch(`${srv.url}/__data/pages-64.bin`, { headers: { Range: 'bytes=4096-4108' } });
    expect(r.status).toBe(206);
    expect(r.headers.get('content-range')).toBe(`bytes 4096-4108/${64 * PAGE_SIZE}`);
    expect(await r.text()).toBe('page 1 of 64\n');
    const bad = await fetch(`${srv.url}/__data/pages-64.bin`, { headers: { Range: 'bytes=999999-' } });
    expect(bad.status).toBe(416);
    expect((await fetch(`${srv.url}/examples/browser`, { redirect: 'manual' })).status).toBe(301);
    expect((await fetch(`${srv.url}/%2e%2e/%2e%2e/etc/passwd`)).status).not.toBe(200);
  });
});
