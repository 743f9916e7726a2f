// End to end: the example page (examples/browser/) in Debian's Chromium, served by the
// same static server `npm run demo` uses. Skips only when no Chromium is installed
// (CI installs it: .ci/run).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync } from 'node:fs';
import { CHROMIUM, launch, serve, type Browser, type Served } from './chromium.js';

const SHOT = 'tests/.out/browser-demo.png';

describe.skipIf(!CHROMIUM)('browser example (Chromium)', () => {
  let srv: Served;
  let b: Browser;
  beforeAll(async () => {
    srv = await serve();
    b = await launch();
  });
  afterAll(async () => {
    await b?.close();
    await srv?.close();
  });

  it('loads with the right types and no error', async () => {
    const res = await b.page.goto(`${srv.url}/examples/browser/`);
    expect(res?.status()).toBe(200);
    await b.page.waitForSelector('body[data-ready=true]', { timeout: 15_000 });
    const types = await b.page.evaluate(async () => {
      const t = async (u: string) => (await fetch(u, { method: 'HEAD' })).headers.get('content-type');
      return [await t('/build/release.wasm'), await t('/dist/index.js'), await t('/examples/browser/')];
    });
    expect(types[0]).toBe('application/wasm');
    expect(types[1]).toMatch(/^text\/javascript/);
    expect(types[2]).toMatch(/^text\/html/);
    expect(srv.log.some((r) => r.path === '/build/release.wasm' && r.status === 200)).toBe(true);
    expect(b.errors).toEqual([]);
  });

  it('a click on a cached file page: one minor fault maps the 16-page fault-around window', async () => {
    const file = '.vma[data-kind=file]';
    expect(await b.page.locator(`${file} .cell[data-state^=present]`).count()).toBe(0);
    await b.page.click(`${file} .cell[data-page="5"]`);
    await b.page.waitForFunction(() => document.getElementById('minflt')?.textContent === '1');
    const present = await b.page.$$eval(`${file} .cell[data-state^=present]`, (cs) => cs.map((c) => Number((c as HTMLElement).dataset.page)));
    expect(present).toEqual([...Array(16).keys()]);
    expect(await b.page.locator(`${file} .cell.window`).count()).toBe(16);
    expect(await b.page.locator(`${file} .cell.fault[data-page="5"]`).count()).toBe(1);
    expect(await b.page.textContent('#majflt')).toBe('0');
    expect(await b.page.textContent('#fa')).toBe('16');
    expect(await b.page.textContent('#log li:first-child')).toMatch(/1 minor fault; fault-around mapped 16 pages of the 16-page window/);
    mkdirSync('tests/.out', { recursive: true });
    await b.page.screenshot({ path: SHOT, fullPage: true });
    expect(b.errors).toEqual([]);
  });

  it('with fault_around_bytes 4096 a click maps only its own page', async () => {
    await b.page.selectOption('#fab', '4096');
    await b.page.click('.vma[data-kind=file] button[title^="madvise(MADV_DONTNEED)"]');
    await b.page.waitForFunction(() => document.querySelectorAll('.vma[data-kind=file] .cell[data-state^=present]').length === 0);
    await b.page.click('.vma[data-kind=file] .cell[data-page="40"]');
    await b.page.waitForFunction(() => document.getElementById('minflt')?.textContent === '2');
    const present = await b.page.$$eval('.vma[data-kind=file] .cell[data-state^=present]', (cs) => cs.map((c) => Number((c as HTMLElement).dataset.page)));
    expect(present).toEqual([40]);
    expect(b.errors).toEqual([]);
  });
});
