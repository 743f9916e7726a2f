// The fault cases, in will-it-scale's shape (fresh code; will-it-scale is GPL): map a
// region (128 MiB, 32 MiB with --quick), fault every page once with ONE bulk call
// (mm.touch, the loop stays inside Wasm), unmap, repeat. Timed per page: mmap + faults +
// munmap, divided by the pages, exactly as bench/native/faults.c times the kernel.
//
// Every case is checked once before it is timed (fault counts from mm.rusage(), frames
// from mmu.stats().freeFrames, bytes read back); a case that fails its check is reported
// as failed and left out of the table, never timed.
import * as builtApi from '../../dist/index.js';
import * as builtNode from '../../dist/node.js';
import { timeReps, timed, fmtNs, fmtRate, pad } from '../lib/timing.mjs';
import { runSweep } from '../lib/sweep.mjs';
import { runNodeFileRead } from '../lib/nodefile-read.mjs';

// Linux's uapi values (the package exports the same names with the same values).
const PROT_NONE = 0, PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20;
const RW = PROT_READ | PROT_WRITE;
const PRIVATE_ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const PAGE = 4096;
// Marker bytes sit away from offset 0, where a touch may store its byte (c[i] = 0).
const MARK = 100;

/** The VMAs present during the mmap+munmap case, counting the probe: Linux's max_map_count. */
export const VMA_TARGET = 65530;

class CheckError extends Error {}
function expect(ok, what) {
  if (!ok) throw new CheckError(what);
}

/** Frames a region's page tables may take: a PTE table per 2 MiB, plus the upper levels. */
function tableSlack(pages) {
  return Math.ceil(pages / 512) + 8;
}

function delta(mm, before) {
  const r = mm.rusage();
  return { minflt: r.minflt - before.minflt, majflt: r.majflt - before.majflt };
}

/** Compare a few sampled pages of a mapping with the file bytes behind them. */
function expectFileBytes(mm, va, bytes, pages, what) {
  for (const k of [0, 1, 17, Math.floor(pages / 2), pages - 1]) {
    const got = mm.read(va + k * PAGE + 100, 8);
    const want = bytes.subarray(k * PAGE + 100, k * PAGE + 108);
    expect(got.length === 8 && got.every((v, i) => v === want[i]),
      `${what}: page ${k} reads [${[...got]}], the file holds [${[...want]}]`);
  }
}

/**
 * The cases. Each has: id, name, unit (what one operation is), needs (methods beyond
 * createAddressSpace/mmap/touch/munmap/rusage), setup(ctx) → state, check(state) →
 * { faultsPerOp, note }, rep(state) → { ns, ops }, teardown(state).
 */
function defineCases({ regionBytes, pages }) {
  const anonArgs = { length: regionBytes, prot: RW, flags: PRIVATE_ANON };
  const fileArgs = (file, prot, flags) => ({ length: regionBytes, prot, flags, file, offset: 0 });

  // map → one bulk touch → unmap, timed as a whole.
  const mapTouchUnmap = (mm, args, how) => ({
    ns: timed(() => {
      const va = mm.mmap(args);
      mm.touch(va, regionBytes, how);
      mm.munmap(va, regionBytes);
    }),
    ops: pages,
  });

  // The common check of a map-touch-unmap case: fault count, frames used, frames returned.
  const checkMapTouch = ({ mmu, mm }, args, how, { faults, framesUsed, after }) => {
    const f0 = mmu.stats().freeFrames;
    const r0 = mm.rusage();
    const va = mm.mmap(args);
    mm.touch(va, regionBytes, how);
    const d = delta(mm, r0);
    const used = f0 - mmu.stats().freeFrames;
    faults(d.minflt);
    expect(d.majflt === 0, `${d.majflt} major faults, expected none`);
    framesUsed(used);
    if (after) after(va);
    mm.munmap(va, regionBytes);
    const leaked = f0 - mmu.stats().freeFrames;
    expect(leaked <= tableSlack(pages), `munmap left ${leaked} frames allocated`);
    return { faultsPerOp: d.minflt / pages };
  };
  const exactly = (n, what) => (got) => expect(got === n, `${got} minor faults for ${n} pages of ${what}, expected ${n}`);
  const atLeast = (n, what) => (got) => expect(got >= n, `${got} frames allocated for ${what}, expected at least ${n}`);
  const atMost = (n, what) => (got) => expect(got <= n, `${got} frames allocated for ${what}, expected at most ${n} (page tables only)`);

  const fileState = (ctx) => ({ ...ctx, mm: ctx.mmu.createAddressSpace() });

  return [
    {
      id: 'anon_write', name: 'page_fault1: anonymous write', unit: 'fault', group: 'anon',
      setup: (ctx) => ({ ...ctx, mm: ctx.mmu.createAddressSpace() }),
      check: (s) => checkMapTouch(s, anonArgs, 'write', {
        faults: exactly(pages, 'anonymous memory'),
        framesUsed: atLeast(pages, 'zero-filled pages'),
        after: (va) => expect(s.mm.read(va + 5 * PAGE, 16).every((v) => v === 0), 'a new anonymous page is not zero'),
      }),
      rep: (s) => mapTouchUnmap(s.mm, anonArgs, 'write'),
      teardown: (s) => s.mm.destroy(),
    },
    {
      id: 'anon_read', name: 'anonymous read (zero page)', unit: 'fault', group: 'anon',
      setup: (ctx) => ({ ...ctx, mm: ctx.mmu.createAddressSpace() }),
      check: (s) => checkMapTouch(s, anonArgs, 'read', {
        faults: exactly(pages, 'anonymous memory'),
        framesUsed: atMost(tableSlack(pages), 'reads of the zero page'),
        after: (va) => expect(s.mm.read(va + 9 * PAGE, 16).every((v) => v === 0), 'the zero page is not zero'),
      }),
      rep: (s) => mapTouchUnmap(s.mm, anonArgs, 'read'),
      teardown: (s) => s.mm.destroy(),
    },
    {
      id: 'file_private_write', name: 'page_fault2: private file write', unit: 'fault', group: 'file',
      setup: fileState,
      check: (s) => checkMapTouch(s, fileArgs(s.file, RW, MAP_PRIVATE), 'write', {
        faults: exactly(pages, 'a private file mapping'),
        framesUsed: atLeast(pages, 'private copies of file pages'),
        after: (va) => expectFileBytes(s.mm, va, s.bytes, pages, 'private copy'),
      }),
      rep: (s) => mapTouchUnmap(s.mm, fileArgs(s.file, RW, MAP_PRIVATE), 'write'),
      teardown: (s) => s.mm.destroy(),
    },
    {
      id: 'file_shared_write', name: 'page_fault3: shared file write', unit: 'fault', group: 'file',
      setup: fileState,
      check: (s) => checkMapTouch(s, fileArgs(s.file, RW, MAP_SHARED), 'write', {
        faults: exactly(pages, 'a shared file mapping'),
        framesUsed: atMost(tableSlack(pages), 'a shared mapping of cached pages'),
        after: (va) => expectFileBytes(s.mm, va, s.bytes, pages, 'shared mapping'),
      }),
      rep: (s) => mapTouchUnmap(s.mm, fileArgs(s.file, RW, MAP_SHARED), 'write'),
      teardown: (s) => s.mm.destroy(),
    },
    {
      id: 'file_read_fa', name: 'private file read, fault-around 64 KiB', unit: 'page', group: 'file',
      setup: (ctx) => { ctx.mmu.faultAroundBytes = 65536; return fileState(ctx); },
      check: (s) => checkMapTouch(s, fileArgs(s.file, PROT_READ, MAP_PRIVATE), 'read', {
        // One fault per 16-page window; a VMA that does not start 64 KiB-aligned adds one.
        faults: (got) => expect(got >= pages / 16 && got <= pages / 16 + 3,
          `${got} minor faults reading ${pages} pages with 64 KiB fault-around, expected about ${pages / 16}`),
        framesUsed: atMost(tableSlack(pages), 'a read mapping of cached pages'),
        after: (va) => expectFileBytes(s.mm, va, s.bytes, pages, 'read mapping'),
      }),
      rep: (s) => mapTouchUnmap(s.mm, fileArgs(s.file, PROT_READ, MAP_PRIVATE), 'read'),
      teardown: (s) => s.mm.destroy(),
    },
    {
      id: 'file_read_nofa', name: 'private file read, fault-around off', unit: 'page', group: 'file',
      setup: (ctx) => { ctx.mmu.faultAroundBytes = 4096; return fileState(ctx); },
      check: (s) => checkMapTouch(s, fileArgs(s.file, PROT_READ, MAP_PRIVATE), 'read', {
        faults: exactly(pages, 'a read mapping without fault-around'),
        framesUsed: atMost(tableSlack(pages), 'a read mapping of cached pages'),
      }),
      rep: (s) => mapTouchUnmap(s.mm, fileArgs(s.file, PROT_READ, MAP_PRIVATE), 'read'),
      teardown: (s) => { s.mm.destroy(); s.mmu.faultAroundBytes = 65536; },
    },
    {
      id: 'cow_fork', name: 'COW after fork: child writes every page', unit: 'fault', group: 'anon', needs: ['fork', 'write'],
      setup: populatedParent,
      check: (s) => {
        const { mmu, parent, va } = s;
        const free0 = mmu.stats().freeFrames;
        const child = parent.fork();
        const r0 = child.rusage();
        const f0 = mmu.stats().freeFrames;
        child.touch(va, regionBytes, 'write');
        const d = delta(child, r0);
        const used = f0 - mmu.stats().freeFrames;
        expect(d.minflt === pages, `the child took ${d.minflt} minor faults writing ${pages} shared pages`);
        expect(used >= pages, `the child's writes allocated ${used} frames, expected a copy of each of ${pages} pages`);
        child.write(va + MARK, Uint8Array.of(0x5a));
        expect(parent.read(va + MARK, 1)[0] === 0xa5, "a child's write after fork reached the parent");
        expect(child.read(va + PAGE + MARK, 1)[0] === 0xa5, 'the child does not see the bytes it inherited');
        child.destroy();
        const leaked = free0 - mmu.stats().freeFrames;
        expect(leaked === 0, `destroying the child left ${leaked} frames allocated`);
        return { faultsPerOp: d.minflt / pages };
      },
      rep: (s) => {
        const child = s.parent.fork();
        const ns = timed(() => child.touch(s.va, regionBytes, 'write'));
        child.destroy();
        return { ns, ops: pages };
      },
      teardown: (s) => s.parent.destroy(),
    },
    {
      id: 'wp_reuse', name: 'write-protect reuse: parent writes after fork', unit: 'fault', group: 'anon', needs: ['fork', 'write'],
      setup: populatedParent,
      check: (s) => {
        const { mmu, parent, va } = s;
        parent.fork().destroy();
        const r0 = parent.rusage();
        const f0 = mmu.stats().freeFrames;
        parent.touch(va, regionBytes, 'write');
        const d = delta(parent, r0);
        const used = f0 - mmu.stats().freeFrames;
        expect(d.minflt === pages, `${d.minflt} minor faults writing ${pages} write-protected pages, expected ${pages}`);
        expect(used === 0, `${used} frames allocated: write faults on exclusive pages copied instead of reusing`);
        expect(parent.read(va + MARK, 1)[0] === 0xa5, 'the reused page lost its contents');
        return { faultsPerOp: d.minflt / pages };
      },
      rep: (s) => {
        s.parent.fork().destroy();
        return { ns: timed(() => s.parent.touch(s.va, regionBytes, 'write')), ops: pages };
      },
      teardown: (s) => s.parent.destroy(),
    },
    {
      id: 'fork', name: 'fork of a populated address space', unit: 'page', group: 'anon', needs: ['fork', 'write'],
      setup: populatedParent,
      check: (s) => {
        const { mmu, parent, va } = s;
        const f0 = mmu.stats().freeFrames;
        const child = parent.fork();
        const used = f0 - mmu.stats().freeFrames;
        expect(used <= tableSlack(pages), `fork allocated ${used} frames for ${pages} pages: it should copy page tables only`);
        expect(child.read(va + 3 * PAGE + MARK, 1)[0] === 0xa5, 'the child does not see the parent\'s bytes');
        const r0 = child.rusage();
        child.touch(va, regionBytes, 'read');
        expect(delta(child, r0).minflt === 0, 'fork did not copy the present PTEs: the child faults on read');
        child.destroy();
        const leaked = f0 - mmu.stats().freeFrames;
        expect(leaked === 0, `destroying the child left ${leaked} frames allocated`);
        return { faultsPerOp: 0 };
      },
      rep: (s) => {
        let child;
        const ns = timed(() => { child = s.parent.fork(); });
        child.destroy();
        return { ns, ops: pages };
      },
      teardown: (s) => s.parent.destroy(),
    },
    {
      id: 'mmap_munmap', name: `mmap+munmap of 1 page among ${VMA_TARGET.toLocaleString('en')} VMAs`, unit: 'call', group: 'anon',
      setup: (ctx) => {
        const mm = ctx.mmu.createAddressSpace();
        const n = VMA_TARGET - 1; // the probe is the last one
        const t0 = process.hrtime.bigint();
        const starts = new Float64Array(n);
        for (let i = 0; i < n; i++) {
          // Alternate PROT_READ and PROT_NONE so neighbours never merge; the probe's
          // PROT_READ|PROT_WRITE merges with neither.
          try {
            starts[i] = mm.mmap({ length: PAGE, prot: i & 1 ? PROT_NONE : PROT_READ, flags: PRIVATE_ANON });
          } catch (e) {
            mm.destroy();
            throw new CheckError(`mapping VMA number ${i + 1} failed: ${e.message}`);
          }
        }
        const buildMs = Number(process.hrtime.bigint() - t0) / 1e6;
        return { ...ctx, mm, n, starts, buildMs, iters: 1 };
      },
      check: (s) => {
        const { mmu, mm, n, starts } = s;
        // Every mapping is its own page (distinct, page-aligned addresses) ...
        const sorted = Float64Array.from(starts).sort();
        for (let i = 0; i < n; i++) {
          expect(sorted[i] % PAGE === 0 && (i === 0 || sorted[i] > sorted[i - 1]), `mmap returned ${sorted[i]} twice or unaligned`);
        }
        // ... and the alternating protections keep neighbours apart: checked on a small
        // address space with smaps (listing 65,529 VMAs through smaps is itself slow).
        if (typeof mm.smaps === 'function') {
          const small = mmu.createAddressSpace();
          for (let i = 0; i < 64; i++) small.mmap({ length: PAGE, prot: i & 1 ? PROT_NONE : PROT_READ, flags: PRIVATE_ANON });
          const v = small.smaps().length;
          small.destroy();
          expect(v === 64, `64 one-page mappings of alternating protection made ${v} VMAs: neighbours merged`);
        }
        const f0 = mmu.stats().freeFrames;
        const r0 = mm.rusage();
        const va = mm.mmap({ length: PAGE, prot: RW, flags: PRIVATE_ANON });
        mm.touch(va, PAGE, 'write');
        expect(delta(mm, r0).minflt === 1, 'the probe page did not fault exactly once');
        mm.munmap(va, PAGE);
        const leaked = f0 - mmu.stats().freeFrames;
        expect(leaked <= 4, `mmap+munmap of one page left ${leaked} frames allocated`);
        // Pairs per repetition: about a fifth of the budget each, 10 to 10,000.
        const probe = { length: PAGE, prot: RW, flags: PRIVATE_ANON };
        const per = timed(() => { for (let i = 0; i < 20; i++) mm.munmap(mm.mmap(probe), PAGE); }) / 20;
        s.iters = Math.max(10, Math.min(10000, Math.round((s.budgetMs * 1e6) / 5 / per)));
        return { faultsPerOp: 0, note: `${n.toLocaleString('en')} VMAs built in ${s.buildMs.toFixed(0)} ms` };
      },
      rep: (s) => {
        const { mm, iters } = s;
        const probe = { length: PAGE, prot: RW, flags: PRIVATE_ANON };
        return {
          ns: timed(() => {
            for (let i = 0; i < iters; i++) mm.munmap(mm.mmap(probe), PAGE);
          }),
          ops: iters,
        };
      },
      teardown: (s) => s.mm.destroy(),
    },
  ];

  // The parent of the fork cases: populated once, one marker byte per page.
  function populatedParent(ctx) {
    const parent = ctx.mmu.createAddressSpace();
    const va = parent.mmap(anonArgs);
    parent.touch(va, regionBytes, 'write');
    for (let k = 0; k < 8; k++) parent.write(va + k * PAGE + MARK, Uint8Array.of(0xa5));
    return { ...ctx, parent, va };
  }
}

/** Whether `obj[key]` can be assigned (an own or inherited setter or writable field). */
function settable(obj, key) {
  for (let o = obj; o; o = Object.getPrototypeOf(o)) {
    const d = Object.getOwnPropertyDescriptor(o, key);
    if (d) return Boolean(d.set || d.writable);
  }
  return false;
}

/** Which API pieces a case needs that this build lacks (names, for the "pending" list). */
function missing(api, mmu, probeMm, c) {
  const out = [];
  for (const m of ['mmap', 'munmap', 'touch', 'rusage', 'destroy', 'read']) {
    if (typeof probeMm[m] !== 'function') out.push(`mm.${m}`);
  }
  for (const m of c.needs ?? []) if (typeof probeMm[m] !== 'function') out.push(`mm.${m}`);
  if (c.group === 'file') {
    if (typeof mmu.openFile !== 'function') out.push('mmu.openFile');
    if (typeof api.MemoryFile !== 'function') out.push('MemoryFile');
  }
  if (c.id === 'file_read_nofa' || c.id === 'file_read_fa') {
    if (!settable(mmu, 'faultAroundBytes')) out.push('mmu.faultAroundBytes');
  }
  return out;
}

/**
 * Run the fault cases. Returns { built, results: { id: {...} }, failed: [msg], pending: [msg] }.
 * `regionBytes` is the mapped size per repetition; `budgetMs` the time per case; `api` the
 * package to measure (the built dist/ unless a test of this harness passes a stand-in).
 */
export async function runFaultCases({ quick, regionBytes, budgetMs, log, api = builtApi }) {
  const pages = regionBytes / PAGE;
  // Two machines, so the page cache of the file cases never shares RAM with the fork
  // cases: each needs at most two copies of the region (parent + child, or page cache +
  // private copies) plus page tables.
  const ramBytes = 2 * regionBytes + (64 << 20);
  const mmuAnon = await api.createMmu({ ramBytes });
  if (typeof mmuAnon.createAddressSpace !== 'function') {
    log('fault cases: address-space API not built yet');
    return { built: false, results: {}, failed: [], pending: ['mmu.createAddressSpace (every fault case)'] };
  }
  let mmuFile = null;
  let file = null;
  let bytes = null;
  const results = {}, failed = [], pending = [];
  const cases = defineCases({ regionBytes, pages });
  for (const c of cases) {
    const mmu = c.group === 'file' ? (mmuFile ??= await api.createMmu({ ramBytes })) : mmuAnon;
    let probeMm;
    try {
      probeMm = mmu.createAddressSpace();
    } catch (e) {
      failed.push(`${c.name}: createAddressSpace threw ${e.message}`);
      log(`  ${pad(c.name, 46)} FAILED: createAddressSpace threw: ${e.message}`);
      continue;
    }
    const lacks = missing(api, mmu, probeMm, c);
    if (typeof probeMm.destroy === 'function') probeMm.destroy();
    if (lacks.length) {
      pending.push(`${c.name}: needs ${lacks.join(', ')}`);
      log(`  ${pad(c.name, 46)} skipped: needs ${lacks.join(', ')} (not built yet)`);
      continue;
    }
    let state = null;
    try {
      if (c.group === 'file' && file === null) {
        // The file: a non-zero pattern, opened once; its page cache is filled with order-0
        // pages before any case is timed, as the kernel side does with 4 KiB preads under
        // FADV_RANDOM (a read pass would now read large folios, 6.16+ ext4 readahead, and
        // fault-around would map whole folios: another case than will-it-scale's).
        bytes = new Uint8Array(regionBytes);
        for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + 1) & 255;
        file = mmu.openFile(new api.MemoryFile(bytes));
        file.prime(0, regionBytes / 4096, { order: 0 });
      }
      state = c.setup({ mmu, quick, file, bytes, budgetMs });
      const checked = c.check(state);
      const t = timeReps(() => c.rep(state), { budgetMs });
      const r = { ...t, unit: c.unit, name: c.name, faultsPerOp: checked.faultsPerOp, note: checked.note };
      results[c.id] = r;
      const rate = c.unit === 'call' ? '' : `  ${fmtRate(1e9 / r.ns)} pages/s`;
      log(`  ${pad(c.name, 46)} ${fmtNs(r.ns).padStart(10)} ns/${c.unit}${rate}  (check ok, ${r.samples} reps${checked.note ? `, ${checked.note}` : ''})`);
    } catch (e) {
      const kind = e instanceof CheckError ? 'check FAILED' : `error (${e.constructor?.name ?? 'Error'})`;
      failed.push(`${c.name}: ${kind}: ${e.message}`);
      log(`  ${pad(c.name, 46)} ${kind}: ${e.message}`);
    } finally {
      if (state) {
        try { c.teardown(state); } catch { /* the case already failed or the teardown is not built */ }
      }
    }
  }
  // Issue 17: page_fault1 over ramBytes, each size in a fresh process (bench/lib/sweep.mjs).
  log(`  page_fault1 sweep over ramBytes (a fresh process each):`);
  const sweep = runSweep({ regionBytes, budgetMs: quick ? budgetMs : budgetMs / 2, log });
  if (sweep.result) results.anon_write_sweep = sweep.result;
  failed.push(...sweep.failed);
  // Issue 17: a real file read through a mapping, against fs.readFileSync.
  if (api === builtApi) {
    log(`  NodeFile sequential mapped read (${quick ? 50 : 200} MB file in the OS temp dir):`);
    try {
      results.nodefile_read = await runNodeFileRead({ api, node: builtNode, bytes: quick ? 50e6 : 200e6, budgetMs, log });
    } catch (e) {
      failed.push(`NodeFile mapped read: ${e.message}`);
      log(`    FAILED: ${e.message}`);
    }
  }
  return { built: true, results, failed, pending };
}
