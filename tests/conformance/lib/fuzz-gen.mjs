// Seeded generator of random, valid conformance scenarios (issue 14): the exact format of
// scenarios/*.json (README "Scenario format"), over every op, flag and mapping kind the format
// has. Case (seed, index) is reproducible on its own: its generator is seeded from both.
import { FADVICE, MADVICE, MAX_MAP_PAGES, PAGE_SIZE, normalizeScenario } from './scenario.mjs';

/** mulberry32: small, fast, good enough for test generation. Returns () => [0, 1). */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed of case `index` of run `seed` (a 32-bit mix of both). */
export function caseSeed(seed, index) {
  let h = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca77)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

class Rand {
  constructor(seed) { this.r = prng(seed); }
  f() { return this.r(); }
  int(lo, hi) { return lo + Math.floor(this.r() * (hi - lo + 1)); } // inclusive
  chance(p) { return this.r() < p; }
  pick(list) { return list[Math.floor(this.r() * list.length)]; }
  /** weights: [[value, weight], …] */
  weighted(weights) {
    const total = weights.reduce((a, [, w]) => a + w, 0);
    let x = this.r() * total;
    for (const [v, w] of weights) { if ((x -= w) < 0) return v; }
    return weights[weights.length - 1][0];
  }
}

const PROTS = [['r', 4], ['rw', 8], ['none', 1], ['rx', 2], ['rwx', 1], ['w', 1]];
/** Prots only the second stream draws (session 4): exec-only and write+exec. */
const EXTRA_PROTS = ['x', 'wx'];
/** mlockall flag sets of the second stream; `onfault` alone is EINVAL (kept rare). */
const MCL_FLAGS = [
  ['current', 4], ['future', 2], ['current|future', 3], ['current|onfault', 3], ['future|onfault', 2],
  ['current|future|onfault', 2], ['onfault', 0.3],
];
/** Seed of a case's second stream (the extra ops and prots), independent of the first. */
const extraSeed = (seed, index) => (caseSeed(seed, index) ^ 0xa5c3e14b) >>> 0;

/** A page count biased to the interesting sizes: around a fault-around window, a table, EOF. */
function mapPages(R, filePages) {
  return R.weighted([
    [() => R.int(1, 20), 6],
    [() => R.pick([16, 17, 32, 33, 48, 64]), 3],
    [() => (filePages ? Math.max(1, filePages + R.int(-3, 6)) : R.int(1, 40)), filePages ? 4 : 1],
    [() => R.int(21, 120), 2],
    [() => R.int(121, 600), 1],
  ])();
}

function fileSpec(R) {
  const pages = R.weighted([
    [() => R.int(1, 5), 3], [() => R.pick([8, 10, 16, 17, 20, 32, 33, 64]), 3], [() => R.int(6, 100), 3], [() => R.int(101, 400), 1],
  ])();
  const f = { pages, bytesInLastPage: R.chance(0.55) ? PAGE_SIZE : R.pick([1, 100, 2048, 4095, R.int(1, 4095)]) };
  const c = R.weighted([['cached', 4], ['cold', 3], ['range', 3]]);
  f.cached = c === 'cached';
  if (c === 'range') {
    const a = R.int(0, pages - 1);
    f.cachedRange = [a, R.chance(0.3) ? a : R.int(a, pages - 1)];
  }
  return f;
}

/**
 * Generates one raw scenario (not yet normalised) for case (seed, index). Every scenario is
 * valid: normalizeScenario accepts it and the harness can run it.
 *
 * opts.extraOps (default true): the ops and prots added in session 4 (mlockall with its
 * MCL_* combinations, munlockall, fsync; prots `x` and `wx`) are drawn from a SECOND random
 * stream. They change nothing the first stream's choices depend on (maps, process, file
 * size), so the first stream is consumed exactly as before, and `extraOps: false`
 * (`--no-extra-ops`) gives the scenario older runs made from the same seed: findings that
 * cite a seed and case stay reproducible.
 */
export function generateScenario(seed, index, opts = {}) {
  const R = new Rand(caseSeed(seed, index));
  const X = opts.extraOps === false ? null : new Rand(extraSeed(seed, index));
  const name = `fuzz-${seed}-${index}`;
  const s = { name, rules: ['R1.1'], description: `random scenario ${index} of seed ${seed} (conformance:fuzz)`, steps: [] };
  const hasFile = R.chance(0.72);
  if (hasFile) s.file = fileSpec(R);
  let fileSize = hasFile ? (s.file.pages - 1) * PAGE_SIZE + s.file.bytesInLastPage : 0;
  const filePagesNow = () => Math.ceil(fileSize / PAGE_SIZE);

  const maps = new Map(); // id -> { pages, anon, flags }
  let nextId = 0;
  let child = false; // a child is alive
  let who = 'parent';
  let childIds = new Set(); // the maps the child inherited at fork
  const ids = () => (who === 'child' ? [...childIds] : [...maps.keys()]);
  const steps = s.steps;

  // Every step records everything (all maps of its process, PG_mlocked, VmLck): reading
  // pagemap, kpageflags and status changes no state, and the first disagreement is then seen
  // at the step that caused it, which is what a class is named by (fuzz-core signature()).
  const expectFor = () => ({ maps: ids(), mlocked: true, vmlck: true });
  const push = (st) => {
    if (who === 'child') st.in = 'child';
    const e = expectFor();
    if (e) st.expect = e;
    steps.push(st);
  };
  const mmap = () => {
    const anon = !hasFile || R.chance(0.35);
    const id = String.fromCharCode(97 + nextId++);
    let pages = mapPages(R, anon ? 0 : s.file.pages);
    const align = R.weighted([[0, 6], [R.int(1, 15), 3], [R.int(496, 511), 1], [R.int(16, 495), 1]]);
    if (pages + align > MAX_MAP_PAGES) pages = MAX_MAP_PAGES - align;
    const st = { op: 'mmap', id, pages, prot: R.weighted(PROTS), flags: R.chance(0.5) ? 'private' : 'shared', anon, align };
    if (X?.chance(0.1)) st.prot = X.pick(EXTRA_PROTS);
    if (!anon && R.chance(0.2)) st.fileOffsetPages = R.int(1, Math.max(1, s.file.pages + 2));
    if (R.chance(0.1)) st.populate = true;
    if (R.chance(0.07)) st.locked = true;
    maps.set(id, { pages, anon, flags: st.flags });
    // mmap is a parent step (the child inherits the maps at fork).
    const e = expectFor();
    if (e) st.expect = e;
    steps.push(st);
  };
  const anyMap = () => R.pick(ids());
  /** from/pages of a range op: usually inside the map, sometimes the whole map (defaults), sometimes past its end. */
  const range = (st, id) => {
    const n = maps.get(id).pages;
    const k = R.weighted([['whole', 3], ['inside', 6], ['past', 2], ['empty', 0.3]]);
    if (k === 'whole') return st;
    const from = R.int(0, n - 1);
    if (k === 'inside') st.pages = R.int(1, n - from);
    else if (k === 'past') st.pages = n - from + R.int(1, 6);
    else st.pages = 0;
    st.from = from;
    return st;
  };
  const page = (id) => {
    const n = maps.get(id).pages;
    return R.weighted([[R.int(0, n - 1), 12], [n, 1], [Math.min(n - 1, R.int(0, 3)), 3], [Math.max(0, n - 1 - R.int(0, 2)), 2]]);
  };

  // Initial mappings.
  const nmaps = R.weighted([[1, 5], [2, 3], [3, 1]]);
  for (let i = 0; i < nmaps; i++) mmap();
  const nsteps = opts.steps ?? R.int(3, 14);
  for (let i = 0; i < nsteps; i++) {
    const ops = [
      ['touch', 24], ['touchRange', 12], ['mprotect', 6], ['madvise', 14], ['mlock', 4], ['mlock2', 2], ['munlock', 3],
      ['msync', 3], ['munmap', 3], ['fork', child ? 0 : 4], ['nop', 1], ['mmap', maps.size < 4 && who === 'parent' ? 2 : 0],
      ['switch', child ? 6 : 0],
    ];
    if (hasFile) ops.push(['truncate', 4], ['fadvise', 3], ['evict', 1.5], ['cache', 2], ['pwrite', 2.5], ['pread', 2.5]);
    // Second stream: sometimes an extra op before this step (it uses no first-stream draw).
    if (X) {
      const extra = X.weighted([['', 86], ['mlockall', 7], ['munlockall', 3.5], ['fsync', hasFile ? 3.5 : 0]]);
      if (extra === 'mlockall') push({ op: extra, flags: X.weighted(MCL_FLAGS) });
      else if (extra) push({ op: extra });
    }
    const op = R.weighted(ops);
    const id = anyMap();
    switch (op) {
      case 'touch': {
        const st = { op, map: id, page: page(id), access: R.chance(0.45) ? 'write' : 'read' };
        if (R.chance(0.15)) st.offset = R.int(0, PAGE_SIZE - 1);
        push(st);
        break;
      }
      case 'touchRange': {
        const n = maps.get(id).pages;
        const from = R.int(0, n - 1);
        const to = R.chance(0.1) ? Math.min(n, from + R.int(0, 8)) : R.int(from, Math.min(n - 1, from + R.int(0, 40)));
        push({ op, map: id, from, to, access: R.chance(0.45) ? 'write' : 'read' });
        break;
      }
      case 'mprotect': {
        const st = range({ op, map: id, prot: R.weighted(PROTS) }, id);
        if (X?.chance(0.1)) st.prot = X.pick(EXTRA_PROTS);
        push(st);
        break;
      }
      case 'madvise': {
        const advice = R.weighted(MADVICE.map((a) => [a, ['dontneed', 'populate_read', 'populate_write', 'guard_install', 'free', 'pageout', 'willneed', 'remove', 'cold'].includes(a) ? 3 : 1]));
        push(range({ op, map: id, advice }, id));
        break;
      }
      case 'mlock': case 'mlock2': case 'munlock': push(range({ op, map: id }, id)); break;
      case 'msync': push(range({ op, map: id, sync: R.pick(['sync', 'async', 'invalidate']) }, id)); break;
      case 'munmap': {
        const st = range({ op, map: id }, id);
        if (st.pages === 0) delete st.pages; // munmap of length 0 is EINVAL, fine, but keep the rest meaningful
        push(st);
        break;
      }
      case 'fork': {
        if (who !== 'parent') break;
        const st = { op: 'fork', expect: expectFor() };
        steps.push(st);
        child = true;
        childIds = new Set(maps.keys());
        who = R.chance(0.7) ? 'child' : 'parent';
        break;
      }
      case 'switch':
        if (who === 'child' && R.chance(0.4)) {
          const st = { op: 'exit', in: 'child', expect: expectFor() };
          steps.push(st);
          child = false;
          who = 'parent';
        } else {
          who = who === 'child' ? 'parent' : 'child';
        }
        break;
      case 'nop': push({ op }); break;
      case 'mmap': mmap(); break;
      case 'truncate': {
        const t = R.weighted([
          [() => ({ pages: R.int(0, s.file.pages + 4) }), 4],
          [() => ({ bytes: R.int(1, (s.file.pages + 4) * PAGE_SIZE) }), 3],
          [() => ({ bytes: R.pick([1, 100, 44264]) }), 1],
        ])();
        fileSize = t.bytes ?? t.pages * PAGE_SIZE;
        push({ op, ...t });
        break;
      }
      case 'fadvise': {
        const st = { op, advice: R.weighted(FADVICE.map((a) => [a, a === 'dontneed' || a === 'willneed' ? 3 : 1])) };
        if (R.chance(0.6)) { st.from = R.int(0, s.file.pages); st.pages = R.int(0, 20); }
        push(st);
        break;
      }
      case 'evict': push({ op }); break;
      case 'cache': {
        const n = filePagesNow();
        if (n === 0) break;
        const from = R.int(0, n - 1);
        push({ op, from, to: R.int(from, Math.min(n - 1, from + R.int(0, 30))) });
        break;
      }
      case 'pwrite': case 'pread': {
        const n = Math.max(1, filePagesNow());
        const st = { op, page: R.weighted([[R.int(0, n - 1), 8], [n, 1], [n + R.int(1, 3), 0.5]]) };
        if (R.chance(0.3)) st.offset = R.int(0, PAGE_SIZE - 1);
        if (op === 'pwrite') {
          fileSize = Math.max(fileSize, st.page * PAGE_SIZE + (st.offset ?? 0) + 1);
        }
        push(st);
        break;
      }
      default: break;
    }
  }
  // The parent's end state (after the child's last steps).
  if (who === 'child') {
    who = 'parent';
    steps.push({ op: 'nop', expect: expectFor() });
  }
  return s;
}

/** generateScenario + normalizeScenario (throws if the generator ever made an invalid one). */
export function generateCase(seed, index, opts) {
  const raw = generateScenario(seed, index, opts);
  return { raw, norm: normalizeScenario(raw) };
}
