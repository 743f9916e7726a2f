// The package's core checks, run in a real browser (tests/browser/harness.test.ts drives
// this page with Chromium): the same dist/index.js a user imports, no bundler, no Node.
// Each check records { name, ok, detail }; window.__results holds them when
// window.__done is true. Open /tests/browser/harness.html under `npm run demo` to watch.
//
// Why a harness page and not vitest's browser mode: that mode needs @vitest/browser, a
// provider package and vite's dev server with its own project config, and it would run the
// TypeScript sources through vite's transform — not the built package a browser user loads.
// This page imports the real dist/ and build/ files over plain HTTP, which is exactly the
// path that must stay free of Node-only assumptions, and keeps `npm test` a single
// node-environment vitest run.
import {
  createMmu, MemoryFile, FetchFile, PAGE_SIZE, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS,
  MADV_RANDOM, LinuxError, BusError,
} from '../../dist/index.js';

const results = [];
const metrics = {};
const mmus = [];
window.__results = results;
window.__metrics = metrics;

class CheckFailed extends Error {}
function expect(ok, what) { if (!ok) throw new CheckFailed(what); }
function eq(actual, expected, what) {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new CheckFailed(`${what}: expected ${e}, got ${a}`);
}
const text = (b) => new TextDecoder().decode(b);
const bytes = (s) => new TextEncoder().encode(s);

async function check(name, fn) {
  const t0 = performance.now();
  let ok = true, detail = '';
  try {
    detail = (await fn()) ?? '';
  } catch (e) {
    ok = false;
    detail = e instanceof CheckFailed ? e.message : `${e?.name ?? 'Error'}: ${e?.message ?? e}\n${e?.stack ?? ''}`;
  }
  results.push({ name, ok, detail: String(detail), ms: Math.round(performance.now() - t0) });
  const li = document.createElement('li');
  li.className = ok ? 'pass' : 'fail';
  li.textContent = `${name} (${Math.round(performance.now() - t0)} ms)`;
  if (detail) { const pre = document.createElement('pre'); pre.textContent = detail; li.append(pre); }
  document.getElementById('results').append(li);
}

async function machine(opts = {}) {
  const mmu = await createMmu({ ramBytes: 16 << 20, ...opts });
  mmus.push(mmu);
  return mmu;
}

function filePages(pages) {
  const b = new Uint8Array(pages * PAGE_SIZE);
  for (let i = 0; i < pages; i++) b.set(bytes(`file page ${i};`), i * PAGE_SIZE);
  return b;
}

// ---- the checks ----

await check('runs in a browser, not in Node', () => {
  expect(typeof window === 'object' && typeof document === 'object', 'no window/document');
  expect(typeof globalThis.process === 'undefined', 'a Node process object is visible');
  return navigator.userAgent;
});

await check('boots: the .wasm is found beside dist/ through import.meta.url', async () => {
  const mmu = await machine();
  const s = mmu.stats();
  eq(s.ramFrames, 4096, 'RAM frames');
  eq(s.freeFrames, 4095, 'free frames (all but the zero page)');
  const wasm = performance.getEntriesByType('resource').map((e) => e.name).filter((n) => n.endsWith('.wasm'));
  eq(wasm.map((n) => new URL(n).pathname), ['/build/release.wasm'], 'the .wasm fetched');
  eq(mmu.checkInvariants(), [], 'invariants');
});

await check('no node: module on the browser path', async () => {
  const loaded = performance.getEntriesByType('resource').map((e) => e.name).filter((n) => /\/dist\/.*\.js$/.test(n));
  expect(loaded.length >= 5, `only ${loaded.length} dist modules loaded`);
  const found = [];
  for (const url of loaded) {
    const src = await (await fetch(url)).text();
    if (/^\s*(import|export)\b[^;]*?from\s*['"]node:/m.test(src) || /^\s*import\s*['"]node:/m.test(src)) found.push(`${url}: a static node: import`);
    // A dynamic node: import is allowed only in core.js, behind the file: URL guard.
    const dynamic = src.match(/import\(\s*(?:\/\*[^]*?\*\/\s*)*['"]node:[^'"]+['"]/g) ?? [];
    if (dynamic.length && !(url.endsWith('/dist/core.js') && src.includes("url.protocol === 'file:'"))) found.push(`${url}: ${dynamic.join(', ')}`);
  }
  eq(found, [], 'node: imports');
  return `${loaded.length} modules: ${loaded.map((u) => new URL(u).pathname.replace('/dist/', '')).join(' ')}`;
});

await check('anonymous mmap: write, read back, zero page for reads', async () => {
  const mmu = await machine();
  const mm = mmu.createAddressSpace();
  const va = mm.mmap({ length: 16 * PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
  mm.write(va + 3 * PAGE_SIZE + 10, bytes('hello'));
  eq(text(mm.read(va + 3 * PAGE_SIZE + 10, 5)), 'hello', 'read back');
  eq([...mm.read(va + 5 * PAGE_SIZE, 4)], [0, 0, 0, 0], 'an untouched page reads zeros');
  const pm = mm.pagemap(va, 6);
  expect(pm[3].present && !pm[3].file && pm[3].exclusive && pm[3].dirty, `written page: ${JSON.stringify(pm[3])}`);
  expect(pm[5].present && pm[5].zeroPage, 'a read maps the shared zero page');
  expect(!pm[0].present, 'page 0 was never touched');
  eq(mm.rusage(), { minflt: 2, majflt: 0 }, 'faults');
  mm.destroy();
  eq(mmu.checkInvariants(), [], 'invariants');
});

await check('fork: copy-on-write keeps parent and child apart', async () => {
  const mmu = await machine();
  const mm = mmu.createAddressSpace();
  const va = mm.mmap({ length: 4 * PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
  mm.write(va, bytes('parent'));
  const child = mm.fork();
  expect(!mm.pagemap(va, 1)[0].exclusive, 'after fork the page is shared');
  eq(text(child.read(va, 6)), 'parent', 'the child sees the parent\'s bytes');
  const cow = mmu.stats().cowCopies;
  child.write(va, bytes('child!'));
  eq(text(child.read(va, 6)), 'child!', 'the child reads its write');
  eq(text(mm.read(va, 6)), 'parent', 'the parent is untouched');
  eq(mmu.stats().cowCopies - cow, 1, 'COW copies');
  child.destroy();
  eq(mmu.checkInvariants(), [], 'invariants');
});

await check('file fault-around with a MemoryFile: 16 pages per fault, 4 faults for 64 pages (R2.8)', async () => {
  const mmu = await machine();
  const file = mmu.openFile(new MemoryFile(filePages(64)));
  file.prime();
  const mm = mmu.createAddressSpace();
  const va = mm.mmap({ addr: 0x20000000, length: 64 * PAGE_SIZE, prot: PROT_READ, flags: MAP_PRIVATE, file });
  eq(va % 65536, 0, 'the mapping is 64 KiB-aligned');
  mm.touch(va + 5 * PAGE_SIZE, 1, 'read');
  eq(mm.pagemap(va, 32).map((p) => (p.present ? 1 : 0)).join(''), '1'.repeat(16) + '0'.repeat(16), 'present pages after one fault');
  eq(mm.rusage(), { minflt: 1, majflt: 0 }, 'one minor fault');
  mm.touch(va, 64 * PAGE_SIZE, 'read');
  eq(mm.rusage(), { minflt: 4, majflt: 0 }, 'sequential read of 64 pages');
  eq(text(mm.read(va + 33 * PAGE_SIZE, 13)), 'file page 33;', 'contents');
  eq(mmu.checkInvariants(), [], 'invariants');
});

await check('prefaultOld: prefaulted pages start old, the faulting page young', async () => {
  const mmu = await machine({ prefaultOld: true });
  const file = mmu.openFile(new MemoryFile(filePages(16)));
  file.prime();
  const mm = mmu.createAddressSpace();
  const va = mm.mmap({ addr: 0x20000000, length: 16 * PAGE_SIZE, prot: PROT_READ, flags: MAP_PRIVATE, file });
  mm.touch(va + 2 * PAGE_SIZE, 1, 'read');
  eq(mm.pagemap(va, 16).map((p) => (p.young ? 'y' : 'o')).join(''), 'ooyooooooooooooo', 'young/old');
});

const DATA = '/__data/pages-64.bin';

await check('FetchFile: the sync API says EAGAIN and leaves nothing mapped', async () => {
  const mmu = await machine();
  const ff = await FetchFile.open(DATA);
  eq(ff.size(), 64 * PAGE_SIZE, 'size from HEAD');
  const mm = mmu.createAddressSpace();
  const va = mm.mmap({ length: 64 * PAGE_SIZE, prot: PROT_READ, flags: MAP_PRIVATE, file: mmu.openFile(ff) });
  let err = null;
  try { mm.read(va + 5 * PAGE_SIZE, 8); } catch (e) { err = e; }
  expect(err instanceof LinuxError && err.code === 'EAGAIN', `expected LinuxError EAGAIN, got ${err}`);
  expect(/async/.test(err.message), `the message should point at the async API: ${err.message}`);
  eq(mm.pagemap(va, 64).filter((p) => p.present).length, 0, 'pages mapped after the refused read');
  eq(mm.rusage(), { minflt: 0, majflt: 0 }, 'faults counted');
  await ff.settle();
  eq(text(mm.read(va + 5 * PAGE_SIZE, 13)), 'page 5 of 64\n', 'after settle() the sync read succeeds');
  eq(mmu.checkInvariants(), [], 'invariants');
});

async function coldSequentialRead({ faultAroundBytes, random }) {
  const mmu = await machine({ faultAroundBytes });
  const gets = [];
  const ff = await FetchFile.open(DATA, { onRequest: (r) => { if (r.method === 'GET') gets.push(r.range); } });
  const mm = mmu.createAddressSpace();
  const va = mm.mmap({ length: 64 * PAGE_SIZE, prot: PROT_READ, flags: MAP_PRIVATE, file: mmu.openFile(ff) });
  if (random) mm.madvise(va, 64 * PAGE_SIZE, MADV_RANDOM);
  for (let p = 0; p < 64; p++) await mm.touchAsync(va + p * PAGE_SIZE, 1, 'read');
  for (let p = 0; p < 64; p++) {
    const want = `page ${p} of 64\n`;
    const got = text(await mm.readAsync(va + p * PAGE_SIZE, want.length));
    eq(got, want, `page ${p}`);
  }
  eq(mmu.checkInvariants(), [], 'invariants');
  return { gets, ru: mm.rusage() };
}

await check('FetchFile: a cold 64-page sequential read takes a handful of range requests', async () => {
  const { gets, ru } = await coldSequentialRead({ faultAroundBytes: 65536, random: false });
  metrics.sequentialGets = gets.length;
  metrics.sequentialFaults = ru;
  expect(gets.length >= 1 && gets.length <= 4, `${gets.length} GET requests: ${gets.join(' ')}`);
  return `${gets.length} GETs (${gets.join(', ')}); faults ${JSON.stringify(ru)}`;
});

await check('FetchFile: fault-around off + MADV_RANDOM needs one request per page', async () => {
  const { gets, ru } = await coldSequentialRead({ faultAroundBytes: 4096, random: true });
  metrics.randomGets = gets.length;
  metrics.randomFaults = ru;
  eq(gets.length, 64, 'GET requests');
  eq(ru, { minflt: 0, majflt: 64 }, 'faults');
  return `${gets.length} GETs; faults ${JSON.stringify(ru)}`;
});

await check('FetchFile: an HTTP error becomes SIGBUS (BusError)', async () => {
  const mmu = await machine();
  const ff = new FetchFile('/__data/no-such-file.bin', { size: 2 * PAGE_SIZE });
  const mm = mmu.createAddressSpace();
  const va = mm.mmap({ length: 2 * PAGE_SIZE, prot: PROT_READ, flags: MAP_PRIVATE, file: mmu.openFile(ff) });
  let err = null;
  try { await mm.touchAsync(va, PAGE_SIZE, 'read'); } catch (e) { err = e; }
  expect(err instanceof BusError, `expected BusError, got ${err}`);
  expect(mmu.backendErrors.some((e) => /HTTP 404/.test(String(e?.message))), 'the 404 is kept in backendErrors');
  eq(mm.pagemap(va, 2).filter((p) => p.present).length, 0, 'nothing mapped');
});

await check('invariants hold in every machine at the end', () => {
  for (const mmu of mmus) eq(mmu.checkInvariants(), [], 'invariants');
  return `${mmus.length} machines`;
});

const failed = results.filter((r) => !r.ok).length;
document.getElementById('summary').textContent = `${results.length - failed} passed, ${failed} failed`;
window.__done = true;
