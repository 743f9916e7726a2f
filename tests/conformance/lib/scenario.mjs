// Conformance scenarios: loading, validation, normalisation, and the converter to the line
// format read by kernel/scenario.c. The emulator runner uses normalizeScenario() too, so both
// sides execute exactly the same canonical steps. Format: tests/conformance/README.md.
import { readFileSync, readdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CONFORMANCE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
export const SCENARIO_DIR = join(CONFORMANCE_DIR, 'scenarios');
export const GOLDEN_DIR = join(CONFORMANCE_DIR, 'golden');

export const PAGE_SIZE = 4096;
/** Largest mapping (pages + align) the kernel harness places. */
export const MAX_MAP_PAGES = 1536;
/** Scenario maps per scenario (ids are turned into slots 0..30). */
export const MAX_MAPS = 31;
/** Byte value of every byte of file page i (before any write): never 0, never a default write. */
export const fileByte = (i) => 0x80 | (i & 0x7f);
/** Value stored by a write access when the step gives none. */
export const DEFAULT_WRITE_VALUE = 0x5a;

export const OPS = [
  'mmap', 'munmap', 'touch', 'touchRange', 'fork', 'exit', 'mprotect', 'madvise', 'mlock',
  'mlock2', 'munlock', 'msync', 'truncate', 'fadvise', 'evict', 'cache', 'pwrite', 'pread',
  'clearRefs', 'nop', 'mlockall', 'munlockall', 'fsync',
];
/** mlockall flag names (a `flags` string joins them with "|"), Linux MCL_* values. */
export const MCL = { current: 1, future: 2, onfault: 4 };

/** "current|future|onfault" → MCL_* mask; throws on an unknown name (0 and onfault alone are
 * passed on: the kernel answers EINVAL, which a scenario may want to see). */
export function mclMask(flags) {
  if (typeof flags !== 'string') throw new Error(`bad mlockall flags ${JSON.stringify(flags)}`);
  let m = 0;
  for (const f of flags.split('|').filter(Boolean)) {
    if (!(f in MCL)) throw new Error(`bad mlockall flag ${JSON.stringify(f)} (current, future, onfault)`);
    m |= MCL[f];
  }
  return m;
}
export const MADVICE = [
  'normal', 'random', 'sequential', 'willneed', 'dontneed', 'free', 'remove', 'dontfork',
  'dofork', 'mergeable', 'unmergeable', 'hugepage', 'nohugepage', 'dontdump', 'dodump',
  'wipeonfork', 'keeponfork', 'cold', 'pageout', 'populate_read', 'populate_write',
  'dontneed_locked', 'collapse', 'guard_install', 'guard_remove',
];
export const FADVICE = ['normal', 'random', 'sequential', 'willneed', 'dontneed', 'noreuse'];
export const REQUIREMENTS = ['softDirty', 'zeroPage', 'noZeroPage', 'swap', 'dax'];

/** "r" | "rw" | "rx" | "rwx" | "w" | "x" | "none" → PROT_* mask (Linux values). */
export function protMask(prot) {
  if (prot === 'none' || prot === '') return 0;
  if (typeof prot !== 'string' || !/^r?w?x?$/.test(prot)) throw new Error(`bad prot ${JSON.stringify(prot)}`);
  return (prot.includes('r') ? 1 : 0) | (prot.includes('w') ? 2 : 0) | (prot.includes('x') ? 4 : 0);
}

function fail(s, i, msg) {
  throw new Error(`scenario ${s.name ?? '?'}${i === undefined ? '' : ` step ${i}`}: ${msg}`);
}

const isInt = (v) => Number.isInteger(v);

/**
 * Returns the canonical form of a scenario: every default filled in, every shorthand
 * expanded, and checked. Throws with the scenario name and step on any error.
 *   - step.in: "parent" | "child"            (default "parent")
 *   - step.expect: { maps: string[], softDirty, mlocked, vmlck } or absent (no observation)
 *   - ranges: from/pages (mprotect, madvise, mlock*, munlock, msync, munmap) default to the
 *     whole map; touchRange.to is inclusive
 */
export function normalizeScenario(raw) {
  const s = structuredClone(raw);
  if (typeof s.name !== 'string' || !/^[a-z0-9][a-z0-9-]*$/.test(s.name)) fail(s, undefined, 'name must be kebab-case');
  if (!Array.isArray(s.rules) || s.rules.length === 0 || !s.rules.every((r) => /^R\d+\.\d+$/.test(r))) fail(s, undefined, 'rules must be rule ids like "R2.3"');
  if (typeof s.description !== 'string' || !s.description) fail(s, undefined, 'description required');
  s.requires = s.requires ?? [];
  for (const r of s.requires) if (!REQUIREMENTS.includes(r)) fail(s, undefined, `unknown requirement ${r}`);
  if (s.file) {
    const f = s.file;
    if (!isInt(f.pages) || f.pages < 1 || f.pages > MAX_MAP_PAGES) fail(s, undefined, 'file.pages must be 1..1536');
    f.bytesInLastPage = f.bytesInLastPage ?? PAGE_SIZE;
    if (!isInt(f.bytesInLastPage) || f.bytesInLastPage < 1 || f.bytesInLastPage > PAGE_SIZE) fail(s, undefined, 'file.bytesInLastPage must be 1..4096');
    if (typeof f.cached !== 'boolean') fail(s, undefined, 'file.cached must be true or false');
    if (f.cachedRange !== undefined) {
      const [a, b] = f.cachedRange;
      if (f.cached || !isInt(a) || !isInt(b) || a < 0 || b < a || b >= f.pages) fail(s, undefined, 'file.cachedRange needs cached:false and 0 <= from <= to < pages');
    }
  }
  if (!Array.isArray(s.steps) || s.steps.length === 0) fail(s, undefined, 'steps required');

  // Which maps exist in which process (the child inherits the parent's at fork).
  const maps = { parent: new Map(), child: new Map() };
  const ids = new Map(); // id -> slot index
  let childAlive = false;
  s.steps = s.steps.map((st, i) => {
    if (!OPS.includes(st.op)) fail(s, i, `unknown op ${st.op}`);
    const step = { ...st };
    step.in = step.in ?? 'parent';
    if (step.in !== 'parent' && step.in !== 'child') fail(s, i, 'in must be "parent" or "child"');
    if (step.in === 'child' && !childAlive) fail(s, i, 'a child step needs a live child (fork first)');
    const who = maps[step.in];
    const needMap = () => {
      if (!who.has(step.map)) fail(s, i, `map ${JSON.stringify(step.map)} does not exist in the ${step.in}`);
      return who.get(step.map);
    };
    const range = () => {
      const m = needMap();
      step.from = step.from ?? 0;
      step.pages = step.pages ?? m.pages - step.from;
      if (!isInt(step.from) || !isInt(step.pages) || step.from < 0 || step.pages < 0) fail(s, i, 'bad from/pages');
    };
    switch (step.op) {
      case 'mmap': {
        if (typeof step.id !== 'string' || !step.id) fail(s, i, 'mmap needs an id');
        if (!isInt(step.pages) || step.pages < 1) fail(s, i, 'mmap needs pages >= 1');
        step.prot = step.prot ?? 'r';
        protMask(step.prot);
        step.flags = step.flags ?? 'private';
        if (step.flags !== 'private' && step.flags !== 'shared') fail(s, i, 'flags must be "private" or "shared"');
        if (typeof step.anon !== 'boolean') fail(s, i, 'mmap needs anon: true|false');
        if (!step.anon && !s.file) fail(s, i, 'a file mapping needs the scenario file');
        step.fileOffsetPages = step.anon ? 0 : step.fileOffsetPages ?? 0;
        step.align = step.align ?? 0;
        if (!isInt(step.align) || step.align < 0 || step.align > 511) fail(s, i, 'align must be 0..511');
        if (step.pages + step.align > MAX_MAP_PAGES) fail(s, i, `pages + align must be <= ${MAX_MAP_PAGES}`);
        step.populate = step.populate ?? false;
        step.locked = step.locked ?? false;
        if (!ids.has(step.id)) {
          if (ids.size >= MAX_MAPS) fail(s, i, `at most ${MAX_MAPS} map ids`);
          ids.set(step.id, ids.size);
        }
        who.set(step.id, { pages: step.pages });
        break;
      }
      case 'touch':
        needMap();
        if (!isInt(step.page)) fail(s, i, 'touch needs page');
        step.access = step.access ?? 'read';
        step.offset = step.offset ?? 0;
        break;
      case 'touchRange':
        needMap();
        if (!isInt(step.from) || !isInt(step.to) || step.to < step.from) fail(s, i, 'touchRange needs from <= to (inclusive)');
        step.access = step.access ?? 'read';
        step.offset = step.offset ?? 0;
        break;
      case 'munmap': case 'mprotect': case 'madvise': case 'mlock': case 'mlock2': case 'munlock': case 'msync':
        range();
        break;
      case 'fork':
        if (step.in !== 'parent' || childAlive) fail(s, i, 'fork: parent only, one child at a time');
        childAlive = true;
        maps.child = new Map(maps.parent);
        break;
      case 'exit':
        if (step.in !== 'child') fail(s, i, 'exit is a child step');
        childAlive = false;
        break;
      case 'truncate':
        if (step.bytes === undefined && step.pages === undefined) fail(s, i, 'truncate needs pages or bytes');
        if (!s.file) fail(s, i, 'truncate needs the scenario file');
        break;
      case 'fadvise':
        if (!FADVICE.includes(step.advice)) fail(s, i, `fadvise advice must be one of ${FADVICE}`);
        step.from = step.from ?? 0;
        step.pages = step.pages ?? 0; // 0 = to the end of the file
        if (!s.file) fail(s, i, 'fadvise needs the scenario file');
        break;
      case 'cache':
        step.from = step.from ?? 0;
        step.to = step.to ?? s.file.pages - 1;
        break;
      case 'pwrite': case 'pread':
        if (!isInt(step.page)) fail(s, i, `${step.op} needs page`);
        step.offset = step.offset ?? 0;
        break;
      case 'mlockall':
        step.flags = step.flags ?? 'current';
        try { mclMask(step.flags); } catch (e) { fail(s, i, e.message); }
        break;
      case 'fsync':
        if (!s.file) fail(s, i, 'fsync needs the scenario file');
        break;
      default:
        break;
    }
    if (step.op === 'touch' || step.op === 'touchRange') {
      if (step.access !== 'read' && step.access !== 'write') fail(s, i, 'access must be "read" or "write"');
      if (step.access === 'write' || step.op === 'pwrite') step.value = step.value ?? DEFAULT_WRITE_VALUE;
    }
    if (step.op === 'pwrite') step.value = step.value ?? DEFAULT_WRITE_VALUE;
    if (step.op === 'mprotect') protMask(step.prot);
    if (step.op === 'madvise' && !MADVICE.includes(step.advice)) fail(s, i, `madvise advice must be one of ${MADVICE}`);
    if (step.op === 'mlock2') step.onfault = step.onfault ?? true;
    if (step.op === 'mlock') step.onfault = step.onfault ?? false;
    if (step.op === 'msync') step.sync = step.sync ?? 'sync';
    if (step.expect !== undefined) {
      let e = step.expect;
      if (e === true) e = { maps: [] };
      else if (typeof e === 'string') e = { maps: [e] };
      else if (Array.isArray(e)) e = { maps: e };
      step.expect = { maps: e.maps ?? [], softDirty: !!e.softDirty, mlocked: !!e.mlocked, vmlck: !!e.vmlck };
      // smaps `Referenced:` per map (issue 15, seed 001); only present when asked, so the
      // canonical form (and the hash) of older scenarios is unchanged.
      if (e.referenced) step.expect.referenced = true;
      for (const id of step.expect.maps)
        if (!who.has(id)) fail(s, i, `expect names map ${JSON.stringify(id)}, which the ${step.in} has not mapped`);
    }
    return step;
  });
  s.mapSlots = Object.fromEntries(ids);
  return s;
}

/** Stable hash of the canonical scenario (golden files record it to detect stale data). */
export function scenarioHash(norm) {
  // `expectedDeltas` only tells the emulator runner where wasm-mmu differs on purpose: it
  // does not change what the kernel runs, so it is not part of the hash.
  const { expectedDeltas, ...kernelPart } = norm;
  return createHash('sha256').update(JSON.stringify(kernelPart)).digest('hex').slice(0, 16);
}

/** Reads and normalises every scenarios/*.json, sorted by file name. */
export function loadScenarios(dir = SCENARIO_DIR) {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const raw = JSON.parse(readFileSync(join(dir, f), 'utf8'));
      if (`${raw.name}.json` !== f) throw new Error(`${f}: name must equal the file name (${raw.name})`);
      return normalizeScenario(raw);
    });
}

/** Converts a canonical scenario to the line format kernel/scenario.c reads on stdin. */
export function toLines(norm) {
  const lines = [`# ${norm.name}`];
  const slot = (id) => norm.mapSlots[id];
  if (norm.file) {
    const f = norm.file;
    const size = (f.pages - 1) * PAGE_SIZE + f.bytesInLastPage;
    const [cfrom, cto] = f.cached ? [0, f.pages - 1] : f.cachedRange ?? [-1, -1];
    lines.push(`file pages=${f.pages} size=${size} cfrom=${cfrom} cto=${cto}`);
  }
  norm.steps.forEach((st, i) => {
    const kv = [`i=${i}`, `who=${st.in === 'child' ? 1 : 0}`, `op=${st.op === 'mlock2' ? 'mlock' : st.op}`];
    const add = (k, v) => kv.push(`${k}=${v}`);
    if (st.map !== undefined) add('map', slot(st.map));
    switch (st.op) {
      case 'mmap':
        kv[2] = 'op=mmap';
        add('map', slot(st.id));
        add('pages', st.pages);
        add('prot', protMask(st.prot));
        add('shared', st.flags === 'shared' ? 1 : 0);
        add('anon', st.anon ? 1 : 0);
        add('off', st.fileOffsetPages);
        add('align', st.align);
        add('populate', st.populate ? 1 : 0);
        add('locked', st.locked ? 1 : 0);
        break;
      case 'touch':
        add('page', st.page); add('acc', st.access === 'write' ? 1 : 0); add('offset', st.offset);
        if (st.value !== undefined) add('value', st.value);
        break;
      case 'touchRange':
        add('from', st.from); add('to', st.to); add('acc', st.access === 'write' ? 1 : 0); add('offset', st.offset);
        if (st.value !== undefined) add('value', st.value);
        break;
      case 'munmap': case 'munlock':
        add('from', st.from); add('pages', st.pages);
        break;
      case 'mprotect':
        add('from', st.from); add('pages', st.pages); add('prot', protMask(st.prot));
        break;
      case 'madvise':
        add('from', st.from); add('pages', st.pages); add('advice', st.advice);
        break;
      case 'mlock': case 'mlock2':
        add('from', st.from); add('pages', st.pages); add('onfault', st.onfault ? 1 : 0);
        break;
      case 'msync':
        add('from', st.from); add('pages', st.pages); add('sync', st.sync);
        break;
      case 'truncate':
        if (st.bytes !== undefined) add('bytes', st.bytes); else add('tpages', st.pages);
        break;
      case 'fadvise':
        add('from', st.from); add('pages', st.pages); add('advice', st.advice);
        break;
      case 'cache':
        add('from', st.from); add('to', st.to);
        break;
      case 'pwrite':
        add('page', st.page); add('offset', st.offset); add('value', st.value);
        break;
      case 'pread':
        add('page', st.page); add('offset', st.offset);
        break;
      case 'mlockall':
        add('mcl', mclMask(st.flags));
        break;
      default:
        break;
    }
    if (st.expect) {
      add('exp', 1);
      add('emaps', st.expect.maps.reduce((m, id) => m + 2 ** slot(id), 0));
      if (st.expect.softDirty) add('esd', 1);
      if (st.expect.mlocked) add('emlk', 1);
      if (st.expect.vmlck) add('evmlck', 1);
      if (st.expect.referenced) add('eref', 1);
    }
    lines.push(`step ${kv.join(' ')}`);
  });
  return lines.join('\n') + '\n';
}
