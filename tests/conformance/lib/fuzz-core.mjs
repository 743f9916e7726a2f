// The differential part of conformance:fuzz (issue 14): run one canonical scenario on the live
// kernel (the harness, kernel/scenario.c) and on wasm-mmu (emulator.mjs), re-run the kernel on
// a disagreement to drop the fields it cannot repeat, name the disagreement by a class
// signature, and shrink a disagreeing scenario to a minimal one of the same class.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { normalizeScenario, toLines, PAGE_SIZE } from './scenario.mjs';
import { parseOutput } from './kernel.mjs';
import { compareObservations } from '../compare.mjs';
import { runOnEmulator } from '../emulator.mjs';

/** runOnKernel without blocking the event loop (several harness processes may run at once). */
export function runOnKernelAsync(harness, norm, timeoutMs = 30_000) {
  return new Promise((resolve, reject) => {
    const p = spawn(harness.bin, [harness.dir], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '', err = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.stdout.setEncoding('utf8').on('data', (d) => { out += d; });
    p.stderr.setEncoding('utf8').on('data', (d) => { err += d; });
    p.on('error', (e) => { clearTimeout(timer); reject(e); });
    p.on('close', (code, sig) => {
      clearTimeout(timer);
      if (code !== 0) {
        const line = out.split('\n').find((l) => l.startsWith('error ')) ?? err ?? '';
        reject(new Error(`harness failed on ${norm.name} (status ${code ?? sig}): ${line}`));
        return;
      }
      try { resolve(parseOutput(norm, out)); } catch (e) { reject(e); }
    });
    p.stdin.on('error', () => { /* the harness died early; close reports it */ });
    p.stdin.end(toLines(norm));
  });
}

/** Key of a mismatch as an `unstable` entry (compare.mjs). */
const unstableEntry = (m) => ({ step: m.step, field: m.field, ...(m.map !== undefined ? { map: m.map } : {}), ...(m.page !== undefined ? { page: m.page } : {}) });

/** The kind of map `id` in a canonical scenario: anon/file/shmem and private/shared. */
export function mapKind(norm, id) {
  const mm = norm.steps.find((st) => st.op === 'mmap' && st.id === id);
  if (!mm) return '?';
  // VM_EXEC changes file read-around (6.16+: forward only), so exec file maps are their own kind.
  return `${mm.anon ? 'anon' : 'file'}-${mm.flags}${!mm.anon && mm.prot.includes('x') ? '-x' : ''}`;
}

/** What a step is, for a class signature: op plus the argument that selects its behaviour. */
export function stepKind(norm, stepIndex) {
  const st = norm.steps[stepIndex];
  if (!st) return '?';
  switch (st.op) {
    case 'madvise': return `madvise:${st.advice}`;
    case 'fadvise': return `fadvise:${st.advice}`;
    case 'msync': return `msync:${st.sync}`;
    case 'touch': case 'touchRange': return `${st.op}:${st.access}`;
    case 'mmap': return `mmap${st.populate ? ':populate' : ''}${st.locked ? ':locked' : ''}`;
    case 'mlock': return st.onfault ? 'mlock:onfault' : 'mlock';
    case 'mlock2': return st.onfault ? 'mlock2:onfault' : 'mlock2';
    case 'mlockall': return `mlockall:${st.flags}`;
    default: return st.op;
  }
}

/**
 * The first page of a range step's range that is not mapped when it runs (past the map's
 * end, or munmapped earlier by the same process or by the parent before the fork), or -1.
 */
function firstGap(norm, stepIndex) {
  const st = norm.steps[stepIndex];
  if (!st || !RANGE_OPS.has(st.op) || st.map === undefined) return -1;
  const mmAt = norm.steps.slice(0, stepIndex).map((x, j) => [x, j]).reverse().find(([x]) => x.op === 'mmap' && x.id === st.map);
  if (!mmAt) return -1;
  const [mm, mmIndex] = mmAt;
  const forkAt = norm.steps.findIndex((x) => x.op === 'fork');
  const end = st.from + st.pages;
  let gap = end > mm.pages ? mm.pages : -1;
  for (let j = mmIndex + 1; j < stepIndex; j++) {
    const u = norm.steps[j];
    if (u.op !== 'munmap' || u.map !== st.map) continue;
    const sameProc = u.in === st.in || (st.in === 'child' && u.in === 'parent' && forkAt >= 0 && j < forkAt);
    if (sameProc && u.from < end && st.from < u.from + u.pages) {
      const g = Math.max(u.from, st.from);
      if (gap < 0 || g < gap) gap = g;
    }
  }
  return gap;
}

/**
 * `~hole` when a range step reaches pages that are not mapped when it runs: Linux applies
 * mprotect / mlock / munlock / madvise VMA by VMA and fails only at the gap (item 1).
 */
export function rangeTag(norm, stepIndex) {
  return firstGap(norm, stepIndex) >= 0 ? '~hole' : '';
}

/**
 * Class signature of one mismatch: step kind, the map's kind (touch faults depend on it),
 * field and direction — counts as "emu>kernel"/"emu<kernel", everything else as
 * "kernel→emulator" values.
 */
export function signature(norm, m) {
  const st = norm.steps[m.step];
  const mapId = m.map ?? st?.map ?? st?.id;
  const kind = mapId !== undefined ? `[${mapKind(norm, mapId)}]` : '';
  let dir;
  if (m.field === 'minflt' || m.field === 'majflt' || m.field === 'vmlck') dir = m.emulator > m.kernel ? 'emu>kernel' : 'emu<kernel';
  else if (m.field === 'value' || m.field === 'sigPage') dir = 'differs';
  else dir = `${m.kernel ?? 'none'}→${m.emulator ?? 'none'}`;
  return `${stepKind(norm, m.step)}${kind}${rangeTag(norm, m.step)} ${m.field} ${dir}${m.in === 'child' ? ' (child)' : ''}`;
}

/** The mismatch that names a case's class: the first one (earliest step; later ones are mostly consequences). */
export function firstMismatch(mismatches) {
  let best = null;
  for (const m of mismatches) if (!best || m.step < best.step) best = m;
  return best;
}

/**
 * Runs one canonical scenario on both sides. Returns
 *   { status: 'agree' | 'disagree' | 'kernel-error' | 'emulator-error' | 'invariants',
 *     kernel, emulator, mismatches, unstable, signature, kernelRuns, error? }.
 * On a disagreement the kernel runs `reruns` more times; fields that differ between kernel
 * runs are unstable and not compared. An emulator exception or a broken invariant is a class
 * of its own (the emulator is wrong whatever the kernel did).
 */
// A minflt or majflt mismatch at a step whose minflt + majflt is the same on both sides.
function splitOnly(m, k, e) {
  if (m.field !== 'minflt' && m.field !== 'majflt') return false;
  const at = (d) => d.observations.find((o) => o.step === m.step && (o.in ?? 'parent') === (m.in ?? 'parent'));
  const ko = at(k), eo = at(e);
  return !!ko && !!eo && ko.minflt != null && ko.minflt + ko.majflt === eo.minflt + eo.majflt;
}

export async function runCase(ctx, norm, { reruns = 2, kernelDoc = null } = {}) {
  let k;
  try {
    k = kernelDoc ?? await runOnKernelAsync(ctx.harness, norm);
  } catch (e) {
    return { status: 'kernel-error', error: String(e.message ?? e), signature: `kernel-error ${String(e.message ?? e).replace(/.*: /, '').slice(0, 60)}` };
  }
  let e;
  try {
    e = await runOnEmulator(norm, { profile: ctx.profile, api: ctx.api, checkInvariants: true });
  } catch (err) {
    const msg = String(err?.message ?? err);
    return { status: 'emulator-error', kernel: k, error: msg, signature: `emulator-error ${err?.constructor?.name ?? 'Error'}: ${msg.replace(/\d+/g, 'N').slice(0, 80)}` };
  }
  if (e.invariants?.length) {
    const p = e.invariants[0];
    return { status: 'invariants', kernel: k, emulator: e, error: `step ${p.step}: ${p.problems.join('; ')}`,
      signature: `invariants after ${stepKind(norm, p.step)}: ${p.problems[0].replace(/\d+/g, 'N').slice(0, 80)}` };
  }
  let mismatches = compareObservations(k, e);
  let unstable = [];
  let kernelRuns = 1;
  if (mismatches.length && reruns > 0) {
    const seen = new Map();
    const rerun = async () => {
      let again;
      try { again = await runOnKernelAsync(ctx.harness, norm); } catch { return; }
      kernelRuns++;
      for (const m of compareObservations(k, again)) {
        const u = unstableEntry(m);
        seen.set(JSON.stringify(u), u);
      }
    };
    for (let r = 0; r < reruns; r++) await rerun();
    unstable = [...seen.values()];
    if (unstable.length) mismatches = compareObservations(k, e, { unstable });
    // I/O timing moves a fault between minor and major (a fault that finds its page still
    // locked under an earlier read retries, and the retry counts as major) but never changes
    // how many faults there were: when only such splits differ, the kernel gets more runs to
    // show whether that split is stable (run W case 3411 flipped in about 1 run in 4).
    if (mismatches.length && mismatches.every((m) => splitOnly(m, k, e))) {
      for (let r = 0; r < 6 && mismatches.length; r++) {
        await rerun();
        unstable = [...seen.values()];
        mismatches = compareObservations(k, e, { unstable });
      }
    }
  }
  const first = firstMismatch(mismatches);
  let sig = first ? signature(norm, first) : null;
  // A consequence of an earlier range op over a hole (item 1: Linux changed the VMAs it
  // reached, the emulator none) shows up later under an unrelated signature. If clipping
  // those earlier ranges to the map makes the disagreement go away, say so in the class.
  if (sig && !sig.includes('~hole') && ctx.clipHoles !== false) {
    const clipped = clipHoleRanges(norm, first.step);
    if (clipped) {
      // The cut scenario no longer disagrees at that step in that field: the hole caused it.
      const again = await runCase({ ...ctx, clipHoles: false }, clipped, { reruns: 0 });
      const same = (again.mismatches ?? []).some((m) => m.step === first.step && m.field === first.field);
      if (!again.error && !same) sig += ' after~hole';
    }
  }
  // WILLNEED (fadvise or madvise) only submits reads; the kernel's next step may still find
  // those folios locked under I/O (FUZZ-FINDINGS.md N2), the emulator's reads are done. If
  // waiting for them (a `cache` read of the advised pages right after) makes the step's field
  // agree, the disagreement is that timing: say so in the class.
  if (sig && !sig.includes('~hole') && ctx.settleWillneed !== false) {
    const settled = settleWillneed(norm, first.step);
    if (settled) {
      const again = await runCase({ ...ctx, clipHoles: false, settleWillneed: false }, settled.norm, { reruns: 0 });
      const at = first.step + settled.shift;
      const same = (again.mismatches ?? []).some((m) => m.step === at && m.field === first.field);
      if (!again.error && !same) sig += ' after~willneed';
    }
  }
  // fadvise(DONTNEED) only starts the writeback of dirty pages (WB_SYNC_NONE) and then
  // invalidates: a page still under writeback stays cached (on the live ext4 host about 9
  // times in 10, on some QEMU disks never); the emulator's writeback is done at once. If an
  // fsync first (`evict` = fsync + DONTNEED of the whole file, for a whole-file DONTNEED)
  // makes the step's field agree, the disagreement is that timing: say so in the class.
  if (sig && !sig.includes('~hole') && !sig.includes('~willneed') && ctx.settleWriteback !== false) {
    const settled = settleWriteback(norm, first.step);
    if (settled) {
      const again = await runCase({ ...ctx, clipHoles: false, settleWillneed: false, settleWriteback: false }, settled.norm, { reruns: 0 });
      const at = first.step + settled.shift;
      const same = (again.mismatches ?? []).some((m) => m.step === at && m.field === first.field);
      if (!again.error && !same) sig += ' after~writeback';
    }
  }
  return {
    status: mismatches.length ? 'disagree' : 'agree', kernel: k, emulator: e, mismatches, unstable, kernelRuns, signature: sig,
  };
}

/**
 * The scenario with every range op before `beforeStep` that reaches unmapped pages cut at
 * its first gap (what Linux applied before failing; dropped if nothing is left), or null if
 * there is none.
 */
function clipHoleRanges(norm, beforeStep) {
  let changed = false;
  const steps = norm.steps.map((st, i) => {
    const gap = i < beforeStep ? firstGap(norm, i) : -1;
    if (gap < 0) return st;
    changed = true;
    const pages = gap - st.from;
    return pages > 0 ? { ...st, pages } : { op: 'nop', in: st.in, ...(st.expect ? { expect: st.expect } : {}) };
  });
  if (!changed) return null;
  try { return normalizeScenario({ ...norm, steps }); } catch { return null; }
}

/**
 * The scenario with the writeback of every fadvise(DONTNEED) before `beforeStep` waited for:
 * a whole-file one (from page 0 to the end of the file or past it) replaced by an `evict`
 * (fsync, which waits for the writeback, then the same DONTNEED), any other preceded by an
 * fsync step; with how far that moves `beforeStep` (the fsync steps inserted), or null if
 * there is none.
 */
function settleWriteback(norm, beforeStep) {
  let changed = false;
  let shift = 0;
  // A range from page 0 that reaches the file's end (its size at that step) is whole-file
  // too (seed 1755393609 case 3917: pages 0-12 of a 3-page file); any other range gets an
  // fsync step before it (seed 387238222 case 4411), which moves the later steps by one.
  let size = norm.file ? (norm.file.pages - 1) * PAGE_SIZE + (norm.file.bytesInLastPage ?? PAGE_SIZE) : 0;
  const steps = [];
  norm.steps.forEach((st, i) => {
    if (st.op === 'truncate') size = st.bytes ?? st.pages * PAGE_SIZE;
    if (st.op === 'pwrite') size = Math.max(size, st.page * PAGE_SIZE + st.offset + 1);
    if (i >= beforeStep || st.op !== 'fadvise' || st.advice !== 'dontneed') { steps.push(st); return; }
    changed = true;
    const whole = st.from === 0 && (st.pages === 0 || st.pages >= Math.ceil(size / PAGE_SIZE));
    if (whole) { steps.push({ op: 'evict', in: st.in, ...(st.expect ? { expect: st.expect } : {}) }); return; }
    steps.push({ op: 'fsync', in: st.in }, st);
    shift++;
  });
  if (!changed) return null;
  try { return { norm: normalizeScenario({ ...norm, steps }), shift }; } catch { return null; }
}

/**
 * The scenario with a `cache` step (read(2) of the pages, which waits for their I/O) after
 * every WILLNEED on file pages before `beforeStep`, and how far that moves `beforeStep`;
 * null if there is none.
 */
function settleWillneed(norm, beforeStep) {
  if (!norm.file) return null;
  let size = (norm.file.pages - 1) * PAGE_SIZE + (norm.file.bytesInLastPage ?? PAGE_SIZE);
  const mapAt = new Map();
  const steps = [];
  let shift = 0;
  norm.steps.forEach((st, i) => {
    steps.push(st);
    if (st.op === 'mmap') mapAt.set(st.id, st);
    if (st.op === 'truncate') size = st.bytes ?? st.pages * PAGE_SIZE;
    if (st.op === 'pwrite') size = Math.max(size, st.page * PAGE_SIZE + st.offset + 1);
    if (i >= beforeStep) return;
    let first = -1;
    let last = -1;
    const filePages = Math.ceil(size / PAGE_SIZE);
    if (st.op === 'fadvise' && st.advice === 'willneed') {
      first = st.from;
      last = st.pages === 0 ? filePages - 1 : st.from + st.pages - 1;
    } else if (st.op === 'madvise' && st.advice === 'willneed') {
      const m = mapAt.get(st.map);
      if (m && !m.anon) {
        first = m.fileOffsetPages + st.from;
        last = first + st.pages - 1;
      }
    }
    last = Math.min(last, filePages - 1);
    if (first < 0 || last < first) return;
    steps.push({ op: 'cache', from: first, to: last, in: st.in });
    shift += i < beforeStep ? 1 : 0;
  });
  if (!shift) return null;
  try { return { norm: normalizeScenario({ ...norm, steps }), shift }; } catch { return null; }
}

// ------------------------------------------------------------------ shrinking
const RANGE_OPS = new Set(['munmap', 'mprotect', 'madvise', 'mlock', 'mlock2', 'munlock', 'msync']);

/**
 * Removes step i (an mmap takes every step on its map along; a fork takes the child's steps).
 * Expects stay on every step (the generator's rule), so the first disagreement stays where
 * it happens.
 */
function dropStep(raw, i) {
  const st = raw.steps[i];
  let steps = raw.steps.filter((_, j) => j !== i);
  if (st.op === 'mmap') {
    steps = steps.filter((x) => x.map !== st.id).map((x) => {
      if (!x.expect || typeof x.expect !== 'object' || Array.isArray(x.expect)) return x;
      return { ...x, expect: { ...x.expect, maps: (x.expect.maps ?? []).filter((id) => id !== st.id) } };
    });
  }
  if (st.op === 'fork') steps = steps.filter((x, j) => !(j >= i && (x.in === 'child')));
  return { ...raw, steps };
}

/** Removes the steps at `indices` (and what depends on them, see dropStep). */
function dropSteps(raw, indices) {
  let out = raw;
  for (const i of [...indices].sort((a, b) => b - a)) if (i < out.steps.length) out = dropStep(out, i);
  return out;
}

/** Candidate simplifications of a raw scenario, roughly biggest first. */
function* candidates(raw) {
  const n = raw.steps.length;
  // Drop chunks of steps (ddmin-like halving), then single steps from the end (later steps
  // rarely cause earlier disagreements).
  for (let k = Math.floor(n / 2); k >= 2; k = Math.floor(k / 2)) {
    for (let start = n - k; start >= 0; start -= k) yield dropSteps(raw, Array.from({ length: k }, (_, j) => start + j));
  }
  for (let i = n - 1; i >= 0; i--) yield dropStep(raw, i);
  const edit = (i, patch) => ({ ...raw, steps: raw.steps.map((x, j) => (j === i ? { ...x, ...patch } : x)) });
  for (let i = 0; i < n; i++) {
    const st = raw.steps[i];
    if (st.op === 'mmap') {
      if (st.populate) yield edit(i, { populate: false });
      if (st.locked) yield edit(i, { locked: false });
      if (st.align) yield edit(i, { align: 0 });
      if (st.fileOffsetPages) yield edit(i, { fileOffsetPages: 0 });
      if (st.pages > 1) yield shrinkMap(raw, i, Math.ceil(st.pages / 2));
      if (st.pages > 1) yield shrinkMap(raw, i, st.pages - 1);
    }
    if (RANGE_OPS.has(st.op)) {
      if (st.pages > 1) yield edit(i, { pages: Math.ceil(st.pages / 2) });
      if (st.from) yield edit(i, { from: 0 });
    }
    if (st.op === 'touchRange' && st.to > st.from) {
      yield edit(i, { to: st.from + Math.floor((st.to - st.from) / 2) });
      yield edit(i, { from: st.from + Math.ceil((st.to - st.from) / 2) });
    }
    if ((st.op === 'touch' || st.op === 'touchRange' || st.op === 'pread' || st.op === 'pwrite') && st.offset) yield edit(i, { offset: 0 });
    if (st.op === 'fadvise' && (st.from || st.pages)) yield edit(i, { from: 0, pages: 0 });
  }
  if (raw.file) {
    const f = raw.file;
    if (f.pages > 1) yield { ...raw, file: fitFile({ ...f, pages: Math.ceil(f.pages / 2) }) };
    if (f.pages > 1) yield { ...raw, file: fitFile({ ...f, pages: f.pages - 1 }) };
    if (f.bytesInLastPage !== undefined && f.bytesInLastPage !== 4096) yield { ...raw, file: { ...f, bytesInLastPage: 4096 } };
    if (f.cachedRange) yield { ...raw, file: { pages: f.pages, bytesInLastPage: f.bytesInLastPage, cached: true } };
    if (f.cachedRange) yield { ...raw, file: { pages: f.pages, bytesInLastPage: f.bytesInLastPage, cached: false } };
    if (!raw.steps.some((x) => x.op === 'mmap' && !x.anon) && !raw.steps.some((x) => ['truncate', 'fadvise', 'evict', 'cache', 'pwrite', 'pread'].includes(x.op))) {
      const { file, ...rest } = raw;
      yield rest;
    }
  }
}

function fitFile(f) {
  const out = { ...f };
  if (out.cachedRange) {
    const [a, b] = out.cachedRange;
    if (a >= out.pages) return { pages: out.pages, bytesInLastPage: out.bytesInLastPage, cached: false };
    out.cachedRange = [a, Math.min(b, out.pages - 1)];
  }
  return out;
}

/** The map made at step i becomes `pages` long; steps on it are clipped to stay meaningful. */
function shrinkMap(raw, i, pages) {
  const id = raw.steps[i].id;
  return {
    ...raw,
    steps: raw.steps.map((x, j) => {
      if (j === i) return { ...x, pages };
      if (x.map !== id) return x;
      const y = { ...x };
      if (y.page !== undefined && y.page > pages) y.page = pages;
      if (y.op === 'touchRange') { y.from = Math.min(y.from, pages); y.to = Math.min(y.to, pages); }
      if (y.from !== undefined && y.op !== 'touchRange' && y.from >= pages) y.from = pages - 1;
      return y;
    }),
  };
}

/**
 * Shrinks a disagreeing raw scenario: greedily applies simplifications that keep the same
 * class (the first mismatch's signature) until none does or the budget (kernel runs) is
 * spent. Returns { raw, norm, result, tries }.
 */
export async function shrinkCase(ctx, raw, target, { budget = 150, deadline = Infinity } = {}) {
  let best = raw;
  let bestResult = null;
  let tries = 0;
  let progress = true;
  while (progress && tries < budget && Date.now() < deadline) {
    progress = false;
    for (const c of candidates(best)) {
      if (tries >= budget || Date.now() >= deadline) break;
      let norm;
      try { norm = normalizeScenario(c); } catch { continue; }
      tries++;
      const r = await runCase(ctx, norm, { reruns: 0 });
      if (r.signature === target) {
        best = c;
        bestResult = r;
        progress = true;
        break;
      }
    }
  }
  // The minimal one must still disagree with the kernel's repeats taken into account.
  const norm = normalizeScenario(best);
  const final = await runCase(ctx, norm, { reruns: 2 });
  if (final.signature !== target && bestResult) return { raw, norm: normalizeScenario(raw), result: null, tries };
  return { raw: best, norm, result: final, tries };
}

/**
 * Known classes (fuzz-known.json): [{ class, item, note }] — `class` is a signature or a
 * /regex/ over signatures; `item` is the issue 14 item number (or a list of them, or "new").
 */
export function loadKnown(path) {
  const list = JSON.parse(readFileSync(path, 'utf8'));
  return list.map((k) => ({ ...k, test: k.class.startsWith('/') ? new RegExp(k.class.slice(1, k.class.lastIndexOf('/'))) : null }));
}

export function knownClass(known, sig) {
  return known.find((k) => (k.test ? k.test.test(sig) : k.class === sig)) ?? null;
}
