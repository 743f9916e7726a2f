// The package's core checks, run once inside Chromium (tests/browser/harness.js explains
// why a harness page rather than vitest's browser mode): boot, anonymous memory, fork COW,
// file fault-around, FetchFile over the test server, invariants — against dist/ and
// build/ as a browser loads them, so Node-only assumptions cannot creep in.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { CHROMIUM, launch, serve, type Browser, type Served } from './chromium.js';

interface Result { name: string; ok: boolean; detail: string; ms: number }

const CHECKS = [
  'runs in a browser, not in Node',
  'boots: the .wasm is found beside dist/ through import.meta.url',
  'no node: module on the browser path',
  'anonymous mmap: write, read back, zero page for reads',
  'fork: copy-on-write keeps parent and child apart',
  'file fault-around with a MemoryFile: 16 pages per fault, 4 faults for 64 pages (R2.8)',
  'prefaultOld: prefaulted pages start old, the faulting page young',
  'FetchFile: the sync API says EAGAIN and leaves nothing mapped',
  'FetchFile: a cold 64-page sequential read takes a handful of range requests',
  'FetchFile: fault-around off + MADV_RANDOM needs one request per page',
  'FetchFile: an HTTP error becomes SIGBUS (BusError)',
  'invariants hold in every machine at the end',
];

describe.skipIf(!CHROMIUM)('package checks in Chromium', () => {
  let srv: Served;
  let b: Browser;
  let results: Result[] = [];
  let metrics: Record<string, unknown> = {};
  beforeAll(async () => {
    srv = await serve();
    b = await launch();
    await b.page.goto(`${srv.url}/tests/browser/harness.html`);
    // A module that fails to load never sets __done: stop at the first page error instead.
    await Promise.race([
      b.page.waitForFunction(() => (window as unknown as { __done?: boolean }).__done === true, null, { timeout: 40_000 }),
      new Promise((_, reject) => { b.page.on('pageerror', (e) => reject(new Error(`the harness page failed: ${e.message}`))); }),
    ]);
    results = await b.page.evaluate(() => (window as unknown as { __results: Result[] }).__results);
    metrics = await b.page.evaluate(() => (window as unknown as { __metrics: Record<string, unknown> }).__metrics);
    console.log(results.map((r) => `  ${r.ok ? 'ok  ' : 'FAIL'} ${String(r.ms).padStart(5)} ms  ${r.name}`).join('\n'));
    console.log(`browser checks: ${results.filter((r) => r.ok).length}/${results.length} passed; ` +
      `FetchFile GETs for a cold 64-page sequential read: ${String(metrics.sequentialGets)} (fault-around on), ` +
      `${String(metrics.randomGets)} (4 KiB + MADV_RANDOM)`);
  }, 60_000);
  afterAll(async () => {
    await b?.close();
    await srv?.close();
  });

  it.each(CHECKS)('%s', (name) => {
    const r = results.find((x) => x.name === name);
    expect(r, `the harness did not run "${name}"`).toBeDefined();
    expect(r!.ok, r!.detail).toBe(true);
  });

  it('every check the harness ran passed, and no page error', () => {
    expect(results.filter((r) => !r.ok).map((r) => `${r.name}: ${r.detail}`)).toEqual([]);
    expect(results.length).toBeGreaterThanOrEqual(CHECKS.length);
    // The one expected error: the 404 of the BusError check, which Chromium logs.
    const errors = b.errors.filter((e) => !/Failed to load resource: .* 404/.test(e));
    expect(errors).toEqual([]);
    expect(srv.log.filter((r) => r.status === 404).map((r) => r.path)).toEqual(['/__data/no-such-file.bin']);
  });

  it('the server saw range requests and HEADs from FetchFile', () => {
    const data = srv.log.filter((r) => r.path === '/__data/pages-64.bin');
    expect(data.some((r) => r.method === 'HEAD' && r.status === 200)).toBe(true);
    expect(data.some((r) => r.method === 'GET' && r.status === 206 && /^bytes=\d+-\d+$/.test(r.range ?? ''))).toBe(true);
  });
});
