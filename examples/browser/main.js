// wasm-mmu in the browser, with no bundler: plain ES modules. The package finds its .wasm
// next to itself (new URL('../build/release.wasm', import.meta.url)), so importing
// dist/index.js is all it takes. Serve the repository root (`npm run demo`) and open
// /examples/browser/.
import {
  createMmu, MemoryFile, FetchFile, PAGE_SIZE, PROT_NONE, PROT_READ, PROT_WRITE,
  MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS, MADV_DONTNEED, SegmentationFault, BusError, LinuxError,
} from '../../dist/index.js';

const $ = (id) => document.getElementById(id);
const hex = (n) => '0x' + n.toString(16);
const ROW = 16; // pages per grid row: 64 KiB of virtual address, aligned
const MAX_SHOWN = 512; // pages drawn per VMA

const mmu = await createMmu({ ramBytes: 32 << 20, faultAroundBytes: 65536, prefaultOld: false });
const spaces = []; // { name, mm }
let shown = 0; // index into spaces
let nextHint = 0x10000000; // mappings 2 MiB apart: they never merge, rows stay aligned
const files = new Map(); // file id → { kind: 'file' | 'http', file, backend, label }
let lastFault = null; // { mmId, va, first, last } (VA page numbers of the fault-around window)
let lastDelta = {};

// ---- the machine ----

function mapAnon(mm, pages, flags, prot) {
  const va = mm.mmap({ addr: hint(pages), length: pages * PAGE_SIZE, prot, flags: flags | MAP_ANONYMOUS });
  note(`mmap: ${pages} pages of anonymous memory at ${hex(va)} (nothing is allocated until a page is touched)`);
  return va;
}

function fileBytes(pages) {
  const bytes = new Uint8Array(pages * PAGE_SIZE);
  const enc = new TextEncoder();
  for (let i = 0; i < pages; i++) {
    bytes.fill(0x2e, i * PAGE_SIZE, (i + 1) * PAGE_SIZE); // '.'
    bytes.set(enc.encode(`file page ${i}`), i * PAGE_SIZE);
  }
  return bytes;
}

function mapCachedFile(mm, pages, flags, prot) {
  const backend = new MemoryFile(fileBytes(pages));
  const file = mmu.openFile(backend);
  file.prime(); // read into the page cache now, as if the file had been read before
  files.set(file.id, { kind: 'file', file, backend, label: `MemoryFile #${file.id}, ${pages} pages, all in the page cache` });
  const va = mm.mmap({ addr: hint(pages), length: pages * PAGE_SIZE, prot, flags, file, offset: 0 });
  note(`mmap: a ${pages}-page file at ${hex(va)}; its pages are in the page cache but not mapped yet`);
  return va;
}

async function mapHttpFile(mm, pages, flags, prot) {
  const backend = await FetchFile.open(`/__data/pages-${pages}.bin`, {
    onRequest: (r) => note(`HTTP ${r.method} ${r.range ?? ''}${r.method === 'GET' ? ` (file pages ${r.first}–${r.last})` : ''}`, 'net'),
  });
  const file = mmu.openFile(backend);
  files.set(file.id, { kind: 'http', file, backend, label: `FetchFile #${file.id}: /__data/pages-${pages}.bin, fetched on demand` });
  const va = mm.mmap({ addr: hint(pages), length: pages * PAGE_SIZE, prot, flags, file, offset: 0 });
  note(`mmap: a ${pages}-page file over HTTP at ${hex(va)}; nothing fetched until a fault needs it`);
  return va;
}

function hint(pages) {
  const at = nextHint;
  nextHint += (Math.ceil(pages * PAGE_SIZE / (2 << 20)) + 1) * (2 << 20); // and a 2 MiB gap
  return at;
}

function snapshot() {
  const mm = spaces[shown].mm;
  return { ru: mm.rusage(), st: mmu.stats() };
}

/** R2.3: the fault-around window of a read fault at `va` in `vma`, as VA page numbers. */
function faultAroundWindow(va, vma) {
  const n = mmu.faultAroundBytes / PAGE_SIZE;
  const page = Math.floor(va / PAGE_SIZE);
  const p = page % 512; // index in the PTE table
  const v = Math.floor((va - vma.start) / PAGE_SIZE); // page in the VMA
  const N = (vma.end - vma.start) / PAGE_SIZE;
  const from = Math.max(Math.floor(p / n) * n, p - Math.min(p, v));
  const to = Math.min(from + n, 512, p + (N - v)) - 1;
  return { first: page - (p - from), last: page + (to - p) };
}

function describe(e) {
  if (e instanceof SegmentationFault) return `${e.message}: ${e.code === 'SEGV_ACCERR' ? 'the mapping does not allow this access' : 'nothing is mapped there'}`;
  if (e instanceof BusError) return `${e.message}: the file has no page there (or it could not be read)`;
  if (e instanceof LinuxError) return e.message;
  return String(e?.message ?? e);
}

/** A user access to one page, as the CPU would make it: read, or write (shift-click). */
async function access(va, write) {
  const sp = spaces[shown];
  const mm = sp.mm;
  const vma = mm.maps().find((m) => va >= m.start && va < m.end);
  const rec = vma && files.get(vma.file);
  const before = snapshot();
  let err = null;
  let text = '';
  const op = write
    ? mm.writeAsync(va + 64, new TextEncoder().encode(`written by ${sp.name}`))
    : mm.readAsync(va, 24).then((b) => { text = decodeText(b); });
  render(); // an HTTP file shows its pages on their way
  try { await op; } catch (e) { err = e; }
  const after = snapshot();
  const minflt = after.ru.minflt - before.ru.minflt, majflt = after.ru.majflt - before.ru.majflt;
  const faulted = after.st.pgfault > before.st.pgfault;
  const mappedAround = after.st.faultAroundMapped - before.st.faultAroundMapped;
  const fileVma = rec !== undefined;
  const fileInfo = vma && fileVma ? ` (file page ${vma.pgoff + Math.floor((va - vma.start) / PAGE_SIZE)})` : '';
  let msg = `${sp.name}: ${write ? 'write' : 'read'} ${hex(va)}${fileInfo} → `;
  if (faulted) {
    const n = mmu.faultAroundBytes / PAGE_SIZE;
    const w = !write && fileVma && n > 1 && !err ? faultAroundWindow(va, vma) : null;
    lastFault = { mmId: mm.id, va, first: w ? w.first : Math.floor(va / PAGE_SIZE), last: w ? w.last : Math.floor(va / PAGE_SIZE), window: !!w };
    const parts = [];
    if (minflt) parts.push(`${minflt} minor fault${minflt > 1 ? 's' : ''}`);
    if (majflt) parts.push(`${majflt} major fault${majflt > 1 ? 's' : ''} (the page had to be read)`);
    if (!parts.length) parts.push('a fault');
    msg += parts.join(', ');
    if (w && mappedAround === 0) msg += `; fault-around found nothing cached in the ${w.last - w.first + 1}-page window, so the fault read the page itself`;
    else if (w) msg += `; fault-around mapped ${mappedAround} page${mappedAround === 1 ? '' : 's'} of the ${w.last - w.first + 1}-page window`;
    else if (!write && fileVma && n === 1) msg += '; fault-around is off (4 KiB): only this page';
    else if (write && fileVma) msg += '; a write fault never faults around';
    if (after.st.cowCopies > before.st.cowCopies) msg += '; copy-on-write: a private copy of the page';
    if (after.st.wpReuses > before.st.wpReuses) msg += '; the page was exclusive: reused without a copy';
    if (after.st.zeroPageMapped > before.st.zeroPageMapped) msg += '; the shared zero page is mapped (no memory used)';
  } else if (!err) {
    msg += `no fault (${after.st.tlbHits > before.st.tlbHits ? 'TLB hit' : 'TLB miss: the page walk found the PTE'})`;
  }
  if (err) msg += (faulted ? '; ' : '') + describe(err);
  else if (text) msg += ` — read "${text}"`;
  note(msg, err ? 'err' : '');
  render(before);
}

function decodeText(b) {
  const end = b.findIndex((x) => x === 0x2e || x === 0x0a || x === 0); // '.', newline or NUL ends the label
  const s = new TextDecoder().decode(b.subarray(0, end < 0 ? b.length : end)).replace(/[^\x20-\x7e]/g, '');
  return s || '(zeros)';
}

// ---- drawing ----

function note(text, cls = '') {
  const li = document.createElement('li');
  li.textContent = text;
  if (cls) li.className = cls;
  $('log').prepend(li);
  while ($('log').children.length > 60) $('log').lastChild.remove();
}

function cellState(p, pending) {
  if (p.present) {
    const s = ['present', p.zeroPage ? 'anon zero' : p.file ? 'file' : 'anon', p.young ? 'young' : 'old'];
    if (p.dirty) s.push('dirty');
    if (p.exclusive) s.push('exclusive');
    if (p.writable) s.push('writable');
    return s.join(' ');
  }
  if (p.swapped) return 'swapped';
  return pending ? 'absent pending' : 'absent';
}

function cellTitle(va, vma, p) {
  const lines = [`${hex(va)}  page ${Math.floor((va - vma.start) / PAGE_SIZE)} of the VMA${vma.file ? `, file page ${vma.pgoff + Math.floor((va - vma.start) / PAGE_SIZE)}` : ''}`];
  if (p.present) {
    lines.push(`present: pfn ${p.pfn}${p.zeroPage ? ' (the zero page)' : ''}, ${p.file ? 'page cache' : 'anonymous'}`);
    lines.push(`${p.young ? 'young' : 'old'}, ${p.dirty ? 'dirty' : 'clean'}, ${p.writable ? 'writable' : 'read-only'}, ${p.exclusive ? 'mapped once (exclusive)' : 'shared'}`);
  } else lines.push(p.swapped ? 'swapped out' : 'not mapped: touching it faults');
  lines.push('click: read · shift-click: write');
  return lines.join('\n');
}

const COUNTERS = [
  ['minflt', (s) => s.ru.minflt], ['majflt', (s) => s.ru.majflt], ['fa', (s) => s.st.faultAroundMapped],
  ['tlb-hits', (s) => s.st.tlbHits], ['tlb-misses', (s) => s.st.tlbMisses], ['cow', (s) => s.st.cowCopies],
  ['pcreads', (s) => s.st.pagecacheReads], ['free', (s) => s.st.freeFrames],
];

function render(before) {
  const sp = spaces[shown];
  const mm = sp.mm;
  const now = snapshot();
  for (const [id, get] of COUNTERS) {
    $(id).textContent = String(get(now));
    if (before) {
      const d = get(now) - get(before);
      lastDelta[id] = d === 0 ? '' : (d > 0 ? `+${d}` : String(d));
    }
    $(`${id}-d`).textContent = lastDelta[id] ?? '';
  }

  const tabs = $('tabs');
  tabs.replaceChildren(...spaces.map((s, i) => {
    const b = document.createElement('button');
    b.textContent = s.name;
    b.className = i === shown ? 'on' : '';
    b.onclick = () => { shown = i; lastDelta = {}; render(); };
    return b;
  }));

  const main = $('vmas');
  main.replaceChildren();
  const maps = mm.maps();
  maps.forEach((vma, vi) => {
    const rec = files.get(vma.file);
    const kind = rec ? rec.kind : 'anon';
    const pages = (vma.end - vma.start) / PAGE_SIZE;
    const box = document.createElement('div');
    box.className = 'vma';
    box.dataset.kind = kind;
    box.dataset.index = String(vi);
    box.dataset.start = String(vma.start);

    const head = document.createElement('div');
    head.className = 'vma-head';
    const what = rec ? rec.label + (rec.kind === 'http' ? ` — ${rec.backend.requests} HTTP requests so far` : '') :
      (vma.shmem ? 'shared anonymous memory' : 'anonymous memory');
    head.innerHTML = `<span class="range">${hex(vma.start)}–${hex(vma.end)}</span><span class="perms">${vma.perms}</span>` +
      `<span class="what"></span><span class="acts"></span>`;
    head.querySelector('.what').textContent = `${pages} pages · ${what}`;
    const acts = head.querySelector('.acts');
    const act = (label, title, fn) => {
      const b = document.createElement('button');
      b.textContent = label;
      b.title = title;
      b.onclick = async () => {
        const before = snapshot();
        try { await fn(); } catch (e) { note(describe(e), 'err'); }
        render(before);
      };
      acts.append(b);
    };
    act('read all', 'touch every page for reading, in order', async () => {
      const b = snapshot();
      await mm.touchAsync(vma.start, vma.end - vma.start, 'read');
      const a = snapshot();
      lastFault = null;
      note(`${sp.name}: read all ${pages} pages of ${hex(vma.start)} → ${a.ru.minflt - b.ru.minflt} minor, ${a.ru.majflt - b.ru.majflt} major faults` +
        (rec ? ` (fault-around mapped ${a.st.faultAroundMapped - b.st.faultAroundMapped})` : ''));
    });
    act('write all', 'touch every page for writing', async () => {
      const b = snapshot();
      await mm.touchAsync(vma.start, vma.end - vma.start, 'write');
      const a = snapshot();
      lastFault = null;
      note(`${sp.name}: wrote all ${pages} pages of ${hex(vma.start)} → ${a.ru.minflt - b.ru.minflt} minor, ${a.ru.majflt - b.ru.majflt} major faults, ${a.st.cowCopies - b.st.cowCopies} COW copies`);
    });
    for (const [label, prot] of [['r--', PROT_READ], ['rw-', PROT_READ | PROT_WRITE], ['---', PROT_NONE]]) {
      act(label, `mprotect(${label === '---' ? 'PROT_NONE' : label === 'r--' ? 'PROT_READ' : 'PROT_READ|PROT_WRITE'})`, () => {
        mm.mprotect(vma.start, vma.end - vma.start, prot);
        note(`${sp.name}: mprotect ${hex(vma.start)} → ${label}`);
      });
    }
    act('zap', 'madvise(MADV_DONTNEED): unmap every page of this VMA (file pages stay in the page cache)', () => {
      mm.madvise(vma.start, vma.end - vma.start, MADV_DONTNEED);
      if (lastFault?.mmId === mm.id) lastFault = null;
      note(`${sp.name}: MADV_DONTNEED ${hex(vma.start)}: all pages unmapped${rec ? '; the file stays in the page cache, so faults will be minor' : ''}`);
    });
    if (rec) {
      act('drop cache', 'zap this VMA, then evict the file from the page cache: the next faults are major and read the file', () => {
        mm.madvise(vma.start, vma.end - vma.start, MADV_DONTNEED);
        const n = rec.file.evict();
        if (lastFault?.mmId === mm.id) lastFault = null;
        note(`${sp.name}: zapped ${hex(vma.start)} and evicted ${n} pages from the page cache (pages other processes map stay)`);
      });
    }
    act('munmap', 'remove the mapping', () => {
      mm.munmap(vma.start, vma.end - vma.start);
      note(`${sp.name}: munmap ${hex(vma.start)}`);
    });
    box.append(head);

    const grid = document.createElement('div');
    grid.className = 'grid';
    const shownPages = Math.min(pages, MAX_SHOWN);
    const info = mm.pagemap(vma.start, shownPages);
    const firstPage = Math.floor(vma.start / PAGE_SIZE);
    const rowStart = firstPage - (firstPage % ROW);
    const endPage = firstPage + shownPages;
    for (let row = rowStart; row < endPage; row += ROW) {
      const label = document.createElement('span');
      label.className = 'va';
      label.textContent = hex(row * PAGE_SIZE);
      grid.append(label);
      for (let pg = row; pg < row + ROW; pg++) {
        const c = document.createElement('span');
        if (pg < firstPage || pg >= endPage) { c.className = 'cell spacer'; grid.append(c); continue; }
        const i = pg - firstPage;
        const va = pg * PAGE_SIZE;
        const p = info[i];
        const pending = rec?.kind === 'http' && rec.backend.isPending(vma.pgoff + i);
        const state = cellState(p, pending);
        let cls = `cell ${state}`;
        if (lastFault && lastFault.mmId === mm.id && pg >= lastFault.first && pg <= lastFault.last && lastFault.window) cls += ' window';
        if (lastFault && lastFault.mmId === mm.id && lastFault.va === va) { cls += ' fault'; c.textContent = '★'; }
        c.className = cls;
        c.dataset.page = String(i);
        c.dataset.va = String(va);
        c.dataset.state = state;
        c.title = cellTitle(va, vma, p);
        c.onclick = (ev) => access(va, ev.shiftKey);
        grid.append(c);
      }
    }
    box.append(grid);
    if (pages > MAX_SHOWN) {
      const more = document.createElement('div');
      more.className = 'what';
      more.textContent = `… ${pages - MAX_SHOWN} more pages not drawn`;
      box.append(more);
    }
    main.append(box);
  });
  if (maps.length === 0) main.textContent = 'No mappings: map a file or anonymous memory above.';
}

// ---- controls ----

function mapOptions() {
  const pages = Number($('npages').value);
  const flags = $('share').value === 'shared' ? MAP_SHARED : MAP_PRIVATE;
  const prot = $('prot').value === 'rw' ? PROT_READ | PROT_WRITE : PROT_READ;
  return [pages, flags, prot];
}

function control(id, event, fn) {
  $(id).addEventListener(event, async () => {
    const before = snapshot();
    try { await fn(); } catch (e) { note(describe(e), 'err'); }
    render(before);
  });
}

control('fab', 'change', () => {
  mmu.faultAroundBytes = Number($('fab').value);
  const n = mmu.faultAroundBytes / PAGE_SIZE;
  note(`fault_around_bytes = ${mmu.faultAroundBytes}: ${n === 1 ? 'fault-around is off' : `a read fault maps up to ${n} cached pages`}`);
});
control('pfo', 'change', () => {
  mmu.prefaultOld = $('pfo').checked;
  note(mmu.prefaultOld
    ? 'prefaultOld: pages mapped by fault-around start old (accessed bit clear), as on arm64; the faulting page is young'
    : 'prefaultOld off: every page fault-around maps is young, as on x86');
});
control('map-file', 'click', () => mapCachedFile(spaces[shown].mm, ...mapOptions()));
control('map-anon', 'click', () => { const [pages, flags, prot] = mapOptions(); mapAnon(spaces[shown].mm, pages, flags, prot); });
control('map-http', 'click', () => mapHttpFile(spaces[shown].mm, ...mapOptions()));
control('fork', 'click', () => {
  const parent = spaces[shown];
  const child = parent.mm.fork();
  spaces.push({ name: `process ${spaces.length + 1}`, mm: child });
  note(`fork: ${spaces[spaces.length - 1].name} is a child of ${parent.name}; private pages are now shared copy-on-write (no longer exclusive)`);
});
$('reset').addEventListener('click', () => location.reload());

// ---- start ----

const first = mmu.createAddressSpace();
spaces.push({ name: 'process 1', mm: first });
mapCachedFile(first, 64, MAP_PRIVATE, PROT_READ);
mapAnon(first, 32, MAP_PRIVATE, PROT_READ | PROT_WRITE);
render();
document.body.dataset.ready = 'true';
// For the console: the machine and its address spaces.
Object.assign(globalThis, { mmu, spaces });
