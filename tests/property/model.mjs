// The shadow model of wasm-mmu's promise — nothing is ever lost and no address space ever
// sees what it should not — and the command runner that drives the library and the model
// side by side, checking after every command.
//
// Plain JavaScript, so vitest (over src/) and the long fuzz under node (over dist/) run the
// same code: the library is passed in as `lib`, and its error classes are the ones checked.
//
// An op is five numbers [k, a, b, c, d]: k in [0, 1000) picks the command by weight (0 is the
// simplest, a write), a..d in [0, 2^20) choose within the current model state (which space,
// which mapping, where, how long). Any op is valid in any state, so fast-check can shrink a
// failing list freely, and a list replays exactly (see fuzz.mjs --replay).
//
// The model, per address space: its mappings (start, end, prot, kind: anon private / private
// file / shared file / shmem, file page offset, locked) and the private pages it owns (anon
// pages written, private file pages copied on write), each a 4 KiB array never changed in
// place, so fork copies the map and the two sides diverge on their next write. Per file: its
// bytes and size as the page cache shows them. Per shmem object: its written pages.
// Linux rules modelled (LINUX-SPEC): R4.1/R4.2 anon zero-fill, R5.1/R5.7 COW and fork,
// R5.5 child VMAs lose VM_LOCKED, R8.1/R8.8 and R9.4 populate with write faults breaks COW
// of private writable mappings, R9.1 MADV_DONTNEED per kind, R9.5 mprotect, R9.11 munmap,
// R10.1 SIGBUS beyond EOF, R10.2 truncate zaps even private copies beyond EOF.

export const P = 4096;
const PROT_NONE = 0, PROT_READ = 1, PROT_WRITE = 2;
const RW = PROT_READ | PROT_WRITE;
const VM_LOCKED = 0x2000;
const ZERO = new Uint8Array(P);
const VA_MIN = 0x10000;
const TASK_SIZE = 2 ** 47 - P;

/** Commands and their relative weights; the order is the op's k ranges, write first. */
export const COMMANDS = [
  ['write', 220], ['read', 90], ['mmap', 105], ['munmap', 45], ['mprotect', 50], ['dontneed', 40],
  ['touch', 35], ['fork', 22], ['destroy', 10], ['spawn', 8], ['msync', 30], ['truncate', 30],
  ['pwrite', 25], ['sync', 20], ['mlock', 22], ['munlock', 15], ['reclaim', 30], ['evict', 12],
  ['pageout', 12], ['fixed', 50], ['populate', 20], ['noreplace', 10], ['readbeyond', 40],
  ['prime', 10], ['phys', 40], ['pin', 8], ['unpin', 6], ['dma', 10], ['pread', 15], ['reopen', 6],
  ['madvise', 25],
];
const KIND_AT = [];
{ // The weights, scaled to 1000 slots (every command keeps at least one).
  const total = COMMANDS.reduce((n, [, w]) => n + w, 0);
  for (const [name, w] of COMMANDS) for (let i = 0, k = Math.max(1, Math.floor((w * 1000) / total)); i < k; i++) KIND_AT.push(name);
  while (KIND_AT.length < 1000) KIND_AT.push('write');
  KIND_AT.length = 1000;
}
export const OP_MAX = 2 ** 20;

/** The command an op runs. */
export function opName(op) { return KIND_AT[op[0] % 1000]; }

/** The seed of episode `i` of a run seeded `seed` (fuzz.mjs: one fresh Mmu per episode). */
export function episodeSeed(seed, i) { return (Math.imul(seed ^ 0x9e3779b9, 2654435761) + Math.imul(i + 1, 0x85ebca6b)) >>> 0; }

/** `n` ops drawn from a PRNG seeded `seed`. */
export function generate(seed, n) {
  const r = mulberry(seed);
  const ops = [];
  for (let i = 0; i < n; i++) ops.push([Math.floor(r() * 1000), Math.floor(r() * OP_MAX), Math.floor(r() * OP_MAX), Math.floor(r() * OP_MAX), Math.floor(r() * OP_MAX)]);
  return ops;
}

/**
 * The machine of episode `i`: 2 or 4 MiB of RAM (`ram` 'mix' alternates, else MiB), a 64-
 * or 1024-entry TLB, fault-around on or off, prefaulted PTEs young or old, the zero page
 * or not, files with or without dirty accounting: every combination comes round.
 */
export function episodeConfig(ram, i, seed) {
  const mib = ram === 'mix' ? (i % 2 === 0 ? 4 : 2) : Number(ram);
  if (!(mib >= 2) || mib % 2 !== 0) throw new Error('--ram must be mix or an even number of MiB');
  return { ramBytes: mib << 20, tlbEntries: i % 3 === 2 ? 1024 : 64, faultAroundBytes: i % 5 === 4 ? 4096 : 65536,
    prefaultOld: i % 7 >= 4, zeroPage: i % 11 !== 10, noDirtyAccounting: i % 4 >= 2, seed };
}

/** Default run configuration (small RAM: swap and write-back happen). */
export const DEFAULTS = {
  ramBytes: 4 << 20,
  tlbEntries: 64,
  faultAroundBytes: 65536,
  prefaultOld: false,
  zeroPage: true,
  noDirtyAccounting: false,
  files: 3,
  maxSpaces: 4,
  maxVmas: 24,
  invariantsEvery: 1, // checkInvariants() after every n commands
  sweepEvery: 250, // a full byte-for-byte check of every model page
  samples: 2, // random pages checked after every command
  seed: 1, // for the sampling choices, not the ops
};

/** A failure: the op, what the model expected and what the library did. */
export class PropertyFailure extends Error {
  constructor(message, index, action) {
    super(`op #${index} ${action}: ${message}`);
    this.name = 'PropertyFailure';
    this.index = index;
    this.action = action;
  }
}

// ---- small helpers ----

function mulberry(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` pseudo-random bytes, never zero (so they differ from a fresh page), from `seed`. */
export function pattern(n, seed) {
  const out = new Uint8Array(n);
  let x = (seed * 2654435761 + 1) >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = 1 + ((x >>> 16) % 255);
  }
  return out;
}

function eq(a, b) {
  if (a.length !== b.length) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}
function firstDiff(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : Math.min(a.length, b.length);
}
const hex = (x) => `0x${x.toString(16)}`;
const pagesOf = (bytes) => Math.ceil(bytes / P);
const protName = (p) => (p & PROT_READ ? 'r' : '-') + (p & PROT_WRITE ? 'w' : '-');

// ---- the model ----

class MFile {
  constructor(file, backend, bytes) {
    this.file = file;
    this.backend = backend;
    this.data = new Uint8Array(Math.max(bytes.length, P));
    this.data.set(bytes);
    this.size = bytes.length;
    this.initial = bytes.length;
  }
  get pages() { return pagesOf(this.size); }
  /** Page `idx` as the page cache shows it (zeros past EOF). */
  page(idx) {
    const out = new Uint8Array(P);
    const from = idx * P;
    if (from < this.size) out.set(this.data.subarray(from, Math.min(this.size, from + P)));
    return out;
  }
  ensure(n) {
    if (n <= this.data.length) return;
    const d = new Uint8Array(Math.max(n, this.data.length * 2));
    d.set(this.data);
    this.data = d;
  }
  resize(n) {
    this.ensure(n);
    if (n < this.size) this.data.fill(0, n, this.size);
    this.size = n;
  }
}

let shmSeq = 0;
class Shm {
  constructor(pages) { this.id = ++shmSeq; this.npages = pages; this.pages = new Map(); this.refs = 0; }
  page(idx) { return this.pages.get(idx) ?? ZERO; }
}

class MVma {
  constructor(start, end, prot, kind, file, shm, pgoff, locked, onfault = false) {
    Object.assign(this, { start, end, prot, kind, file, shm, pgoff, locked, onfault });
    if (shm) shm.refs++;
  }
  get pages() { return (this.end - this.start) / P; }
  /** The file or shmem page index of address `va` in this mapping. */
  index(va) { return this.pgoff + (va - this.start) / P; }
  /** A copy covering [start, end) of this one (a split piece). */
  piece(start, end) {
    return new MVma(start, end, this.prot, this.kind, this.file, this.shm, this.pgoff + (start - this.start) / P, this.locked, this.onfault);
  }
  drop() { if (this.shm) this.shm.refs--; }
  describe() {
    const what = this.kind === 'anon' ? 'anon' : this.kind === 'shmem' ? `shmem#${this.shm.id}` : `${this.kind} file${this.file.file.id}@${this.pgoff}`;
    return `[${hex(this.start)},${hex(this.end)}) ${protName(this.prot)} ${what}${this.locked ? (this.onfault ? ' locked(onfault)' : ' locked') : ''}`;
  }
}

class MSpace {
  constructor(mm, id) { this.mm = mm; this.id = id; this.vmas = []; this.priv = new Map(); this.pins = []; }
  find(va) {
    for (const v of this.vmas) if (va >= v.start && va < v.end) return v;
    return null;
  }
  insert(v) {
    let i = 0;
    while (i < this.vmas.length && this.vmas[i].start < v.start) i++;
    this.vmas.splice(i, 0, v);
  }
  /** munmap of [start, end) in the model: split at the edges, drop what is inside. */
  remove(start, end) {
    const keep = [];
    for (const v of this.vmas) {
      if (v.end <= start || v.start >= end) { keep.push(v); continue; }
      if (v.start < start) keep.push(v.piece(v.start, start));
      if (v.end > end) keep.push(v.piece(end, v.end));
      v.drop();
    }
    this.vmas = keep;
    this.dropPriv(start, end);
  }
  dropPriv(start, end) {
    for (const pin of this.pins) if (pin.attached && pin.va >= start && pin.va < end) pin.attached = false;
    if ((end - start) / P < this.priv.size) {
      for (let a = start; a < end; a += P) this.priv.delete(a);
    } else {
      for (const a of [...this.priv.keys()]) if (a >= start && a < end) this.priv.delete(a);
    }
  }
  /** Split model VMAs at `addr` so that ranges starting or ending there are whole VMAs. */
  split(addr) {
    const i = this.vmas.findIndex((v) => addr > v.start && addr < v.end);
    if (i < 0) return;
    const v = this.vmas[i];
    this.vmas.splice(i, 1, v.piece(v.start, addr), v.piece(addr, v.end));
    v.drop();
  }
  /** The model VMAs inside [start, end) after splitting at its edges. */
  within(start, end) {
    this.split(start);
    this.split(end);
    return this.vmas.filter((v) => v.start >= start && v.end <= end);
  }
  /** Is every page of [start, end) mapped? */
  covered(start, end) {
    let at = start;
    for (const v of this.vmas) {
      if (v.end <= at) continue;
      if (v.start > at) return false;
      at = v.end;
      if (at >= end) return true;
    }
    return at >= end;
  }
  free(start, end) { return !this.vmas.some((v) => v.start < end && v.end > start); }
  get mappedPages() { return this.vmas.reduce((n, v) => n + v.pages, 0); }
  get lockedPages() { return this.vmas.reduce((n, v) => n + (v.locked ? v.pages : 0), 0); }
}

/** What a read of page `pg` of space `s` must give: { bytes } or { err: 'MAPERR' | 'ACCERR' | 'BUS' }. */
function expectPage(s, pg) {
  const v = s.find(pg);
  if (!v) return { err: 'MAPERR' };
  if (!(v.prot & PROT_READ)) return { err: 'ACCERR' };
  return expectContent(s, v, pg);
}
function expectContent(s, v, pg) {
  switch (v.kind) {
    case 'anon': return { bytes: s.priv.get(pg) ?? ZERO };
    case 'priv': {
      const own = s.priv.get(pg);
      if (own) return { bytes: own };
      const idx = v.index(pg);
      return idx >= v.file.pages ? { err: 'BUS' } : { bytes: v.file.page(idx) };
    }
    case 'shared': {
      const idx = v.index(pg);
      return idx >= v.file.pages ? { err: 'BUS' } : { bytes: v.file.page(idx) };
    }
    default: return { bytes: v.shm.page(v.index(pg)) };
  }
}
/** The error a write (or write touch) of page `pg` must raise, or null. */
function writeError(s, pg) {
  const v = s.find(pg);
  if (!v) return 'MAPERR';
  if (!(v.prot & PROT_WRITE)) return 'ACCERR';
  if ((v.kind === 'priv' || v.kind === 'shared') && v.index(pg) >= v.file.pages) return 'BUS';
  return null;
}
/** The error a read (or read touch) of page `pg` must raise, or null. */
function readError(s, pg) {
  const e = expectPage(s, pg);
  return e.err ?? null;
}
/** A private file page gets its own copy now (a write fault that writes nothing: R5.1). */
function cowSnapshot(s, v, pg) {
  if (v.kind !== 'priv' || s.priv.has(pg) || v.index(pg) >= v.file.pages) return;
  s.priv.set(pg, v.file.page(v.index(pg)));
}
/** Populate with write faults (R8.1, R8.8, R9.4): private writable file pages are copied. */
function populateWrite(s, start, end) {
  for (const v of s.vmas) {
    if (v.end <= start || v.start >= end || v.kind !== 'priv' || !(v.prot & PROT_WRITE)) continue;
    for (let a = Math.max(start, v.start); a < Math.min(end, v.end); a += P) cowSnapshot(s, v, a);
  }
}

// ---- the runner ----

/**
 * Run `ops` against a fresh Mmu and the model, checking after every command. Resolves with
 * statistics; throws PropertyFailure (or the library's unexpected error) on the first
 * broken promise. `cfg` overrides DEFAULTS; `cfg.log(line)` receives one line per command.
 */
export async function runOps(lib, ops, cfg = {}) {
  const r = new Runner(lib, { ...DEFAULTS, ...cfg });
  await r.start();
  for (let i = 0; i < ops.length; i++) await r.step(ops[i], i);
  r.finish(ops.length);
  return r.stats;
}

class Runner {
  constructor(lib, cfg) {
    this.lib = lib;
    this.cfg = cfg;
    this.rand = mulberry(cfg.seed);
    this.spaces = [];
    this.files = [];
    this.nextSpace = 1;
    this.shmIds = new Map(); // model shmem id -> core file id
    this.stats = { ops: 0, byCommand: {}, errors: {}, checks: 0, invariants: 0, sweeps: 0 };
    this.frames = cfg.ramBytes / P;
    this.index = -1;
    this.action = 'start';
  }

  async start() {
    const { lib, cfg } = this;
    this.mmu = await lib.createMmu({ ramBytes: cfg.ramBytes, tlbEntries: cfg.tlbEntries, faultAroundBytes: cfg.faultAroundBytes,
      prefaultOld: cfg.prefaultOld, zeroPage: cfg.zeroPage });
    this.baseFree = this.mmu.stats().freeFrames;
    for (let i = 0; i < cfg.files; i++) {
      // Sizes 1..48 pages, every other one not a multiple of the page size.
      const size = (1 + ((i * 17 + cfg.seed) % 48)) * P - (i % 2 === 1 ? 1 + ((i * 977 + cfg.seed) % 4000) : 0);
      const bytes = pattern(size, 1000 + i + cfg.seed * 7);
      const backend = new lib.MemoryFile(bytes);
      // Odd files without dirty accounting when the config says so: no write-notify, so
      // the PTE's dirty bit alone remembers a shared write (R9.10).
      const opts = cfg.noDirtyAccounting && i % 2 === 1 ? { dirtyAccounting: false } : {};
      const mf = new MFile(this.mmu.openFile(backend, opts), backend, bytes);
      mf.opts = opts;
      this.files.push(mf);
    }
    this.spawn();
  }

  fail(msg) { throw new PropertyFailure(msg, this.index, this.action); }

  spawn() {
    const s = new MSpace(this.mmu.createAddressSpace(), this.nextSpace++);
    this.spaces.push(s);
    return s;
  }

  space(x) {
    if (this.spaces.length === 0) this.spawn();
    return this.spaces[x % this.spaces.length];
  }

  count(key, map = this.stats.byCommand) { map[key] = (map[key] ?? 0) + 1; }

  // ---- errors: what the library threw against what the model expects ----

  /** Run `fn`; the model expects `want` (null: success; 'MAPERR' | 'ACCERR' | 'BUS' at `addr`; or an errno name). */
  expectOutcome(fn, want, addr, what) {
    let err = null, value;
    try { value = fn(); } catch (e) { err = e; }
    const { lib } = this;
    if (want === null) {
      if (err) this.fail(`${what}: expected success, got ${err?.stack ?? err}`);
      return value;
    }
    if (!err) this.fail(`${what}: expected ${want}${addr !== undefined ? ` at ${hex(addr)}` : ''}, but it succeeded`);
    this.count(want, this.stats.errors);
    if (want === 'MAPERR' || want === 'ACCERR') {
      if (!(err instanceof lib.SegmentationFault) || err.code !== `SEGV_${want}` || err.address !== addr) {
        this.fail(`${what}: expected SIGSEGV SEGV_${want} at ${hex(addr)}, got ${err?.stack ?? err}`);
      }
    } else if (want === 'BUS') {
      if (!(err instanceof lib.BusError) || err.address !== addr) this.fail(`${what}: expected SIGBUS at ${hex(addr)}, got ${err?.stack ?? err}`);
    } else if (!(err instanceof lib.LinuxError) || err.code !== want) {
      this.fail(`${what}: expected ${want}, got ${err?.stack ?? err}`);
    }
    return undefined;
  }

  // ---- checks ----

  /** One page of one space, in full, against the model. */
  checkPage(s, pg, why = 'check') {
    this.stats.checks++;
    const want = expectPage(s, pg);
    let got, err = null;
    try { got = s.mm.read(pg, P); } catch (e) { err = e; }
    const where = `${why}: space ${s.id} page ${hex(pg)} (${s.find(pg)?.describe() ?? 'unmapped'})`;
    if (want.err) {
      if (!err) this.fail(`${where}: expected ${want.err}, read succeeded`);
      this.expectOutcome(() => { throw err; }, want.err, pg, where);
      return;
    }
    if (err) this.fail(`${where}: expected its bytes, got ${err.stack ?? err}`);
    if (!eq(got, want.bytes)) {
      const i = firstDiff(got, want.bytes);
      this.fail(`${where}: byte ${i} is ${got[i]}, the model says ${want.bytes[i]}${eq(got, ZERO) ? ' (the page reads as zeros)' : ''}`);
    }
  }

  /** Every place that shows file `f` page `idx` or shmem `shm` page `idx`, in every space. */
  checkAliases(target, idx, why) {
    for (const t of this.spaces) {
      for (const v of t.vmas) {
        if ((v.file !== target && v.shm !== target) || idx < v.pgoff || idx >= v.pgoff + v.pages) continue;
        this.checkPage(t, v.start + (idx - v.pgoff) * P, why);
      }
    }
  }

  /** The same address in every other space (private pages must not leak there). */
  checkOthers(s, pg, why) {
    for (const t of this.spaces) if (t !== s && t.find(pg)) this.checkPage(t, pg, why);
  }

  /** Pages of [start, end) in `s`: all of them if few, else the ends and a sample. */
  checkRange(s, start, end, why, max = 8) {
    const n = (end - start) / P;
    if (n <= max) { for (let a = start; a < end; a += P) this.checkPage(s, a, why); return; }
    this.checkPage(s, start, why);
    this.checkPage(s, end - P, why);
    for (let i = 2; i < max; i++) this.checkPage(s, start + Math.floor(this.rand() * n) * P, why);
  }

  randomPage() {
    if (this.spaces.length === 0) return null;
    const s = this.spaces[Math.floor(this.rand() * this.spaces.length)];
    if (s.vmas.length === 0) return null;
    const v = s.vmas[Math.floor(this.rand() * s.vmas.length)];
    return [s, v.start + Math.floor(this.rand() * v.pages) * P];
  }

  /** An unmapped address of `s` (in a gap, below or above everything). */
  holeAddress(s, x) {
    const cands = [];
    const vs = s.vmas;
    if (vs.length === 0) return VA_MIN + (x % 4096) * P + (x % P);
    if (vs[0].start > VA_MIN) cands.push(vs[0].start - 1 - (x % Math.min(P * 4, vs[0].start - VA_MIN)));
    for (let i = 0; i + 1 < vs.length; i++) if (vs[i].end < vs[i + 1].start) cands.push(vs[i].end + (x % (vs[i + 1].start - vs[i].end)));
    const top = vs[vs.length - 1].end;
    if (top < TASK_SIZE) cands.push(top + (x % (P * 16)));
    cands.push(VA_MIN + (x % 1024) * 7);
    const a = cands[x % cands.length];
    return s.find(a) ? VA_MIN - 1 : a;
  }

  /** A read of an unmapped address raises SIGSEGV SEGV_MAPERR at exactly that address. */
  checkHole() {
    if (this.spaces.length === 0) return;
    const s = this.spaces[Math.floor(this.rand() * this.spaces.length)];
    const a = this.holeAddress(s, Math.floor(this.rand() * OP_MAX));
    if (a < 0 || s.find(a)) return;
    this.expectOutcome(() => s.mm.read(a, 1), 'MAPERR', a, `read of unmapped ${hex(a)} in space ${s.id}`);
  }

  /** The core's VMAs cover what the model maps, with the same permissions, kind, offset and lock. */
  checkMaps(s) {
    const emu = s.mm.maps();
    const pts = new Set();
    for (const v of s.vmas) { pts.add(v.start); pts.add(v.end); }
    for (const e of emu) { pts.add(e.start); pts.add(e.end); }
    const sorted = [...pts].sort((x, y) => x - y);
    let ei = 0;
    for (let i = 0; i + 1 < sorted.length; i++) {
      const a = sorted[i];
      while (ei < emu.length && emu[ei].end <= a) ei++;
      const e = ei < emu.length && emu[ei].start <= a ? emu[ei] : null;
      const m = s.find(a);
      const where = `maps of space ${s.id} at ${hex(a)}: model ${m?.describe() ?? 'unmapped'}, core ${e ? `${hex(e.start)}-${hex(e.end)} ${e.perms} file ${e.file} pgoff ${e.pgoff} flags ${hex(e.flags)}` : 'unmapped'}`;
      if (!m !== !e) this.fail(where);
      if (!m) continue;
      const perms = protName(m.prot) + '-' + (m.kind === 'shared' || m.kind === 'shmem' ? 's' : 'p');
      if (e.perms !== perms) this.fail(`${where}: perms`);
      if (((e.flags & VM_LOCKED) !== 0) !== m.locked) this.fail(`${where}: VM_LOCKED`);
      if (m.kind === 'anon') { if (e.file !== 0) this.fail(`${where}: anonymous memory with a file`); continue; }
      if (m.kind === 'shmem') {
        if (!e.shmem) this.fail(`${where}: not shmem`);
        const known = this.shmIds.get(m.shm.id);
        if (known === undefined) {
          for (const [sid, fid] of this.shmIds) if (fid === e.file && sid !== m.shm.id && this.shmAlive(sid)) this.fail(`${where}: two shmem objects share core file ${fid}`);
          this.shmIds.set(m.shm.id, e.file);
        } else if (known !== e.file) this.fail(`${where}: shmem object moved from core file ${known}`);
      } else if (e.file !== m.file.file.id) this.fail(`${where}: file`);
      if (e.pgoff + (a - e.start) / P !== m.index(a)) this.fail(`${where}: file offset`);
    }
  }
  shmAlive(id) { return this.spaces.some((s) => s.vmas.some((v) => v.shm?.id === id)); }

  /** Every model page of every space, byte for byte (bulk reads where the model allows). */
  sweep(why = 'sweep') {
    this.stats.sweeps++;
    for (const s of this.spaces) {
      this.checkMaps(s);
      for (const v of s.vmas) {
        // Bulk-read the longest prefix of readable pages, then check the rest page by page.
        let end = v.start;
        while (end < v.end && !expectPage(s, end).err) end += P;
        if (end > v.start) {
          let got;
          try { got = s.mm.read(v.start, end - v.start); } catch { got = null; }
          for (let a = v.start; a < end; a += P) {
            if (!got || !eq(got.subarray(a - v.start, a - v.start + P), expectPage(s, a).bytes)) this.checkPage(s, a, why);
          }
          this.stats.checks += (end - v.start) / P;
        }
        if (end < v.end) { this.checkPage(s, end, why); if (v.end - P > end) this.checkPage(s, v.end - P, why); }
      }
    }
    for (const f of this.files) {
      if (f.file.size !== f.size) this.fail(`${why}: file ${f.file.id} i_size ${f.file.size}, the model says ${f.size}`);
    }
  }

  invariants(why) {
    this.stats.invariants++;
    const bad = this.mmu.checkInvariants();
    if (bad.length) this.fail(`${why}: checkInvariants(): ${bad.slice(0, 8).join('; ')}${bad.length > 8 ? ` (+${bad.length - 8})` : ''}`);
  }

  /** The backend holds exactly the model's bytes of `f` pages [first, last] (after a write-back). */
  checkBackend(f, first = 0, last = f.pages - 1, why = 'backend') {
    const disk = f.backend.bytes();
    if (first === 0 && last >= f.pages - 1 && disk.length !== f.size) {
      this.fail(`${why}: file ${f.file.id} backend holds ${disk.length} bytes, the model says ${f.size}`);
    }
    const from = first * P, to = Math.min(f.size, (last + 1) * P);
    if (to <= from) return;
    // Past the backend's own end it holds zeros (a range sync need not write the last page).
    const a = new Uint8Array(to - from);
    a.set(disk.subarray(from, Math.min(to, disk.length)));
    const b = f.data.subarray(from, to);
    if (!eq(a, b)) {
      const i = firstDiff(a, b);
      this.fail(`${why}: file ${f.file.id} byte ${from + i} on the backend is ${a[i]}, the model says ${b[i]} (a private write reached the file, or a shared one was lost)`);
    }
  }

  // ---- one command ----

  async step(op, index) {
    this.index = index;
    const name = opName(op);
    this.action = `${name} ${JSON.stringify(op)}`;
    this.stats.ops++;
    this.count(name);
    const [, a, b, c, d] = op;
    this[`do_${name}`](a, b, c, d);
    if (this.cfg.log) this.cfg.log(`#${index} ${this.action}`);
    // After every command: sampled pages, an unmapped read, the invariants.
    for (let i = 0; i < this.cfg.samples; i++) {
      const p = this.randomPage();
      if (p) this.checkPage(p[0], p[1], 'sample');
    }
    this.checkHole();
    if ((index + 1) % this.cfg.invariantsEvery === 0) this.invariants('after the command');
    if ((index + 1) % this.cfg.sweepEvery === 0) this.sweep();
  }

  /** End of a run: everything checked, then torn down: every frame and swap slot comes back. */
  finish(n) {
    this.index = n;
    this.action = 'finish';
    this.sweep('final sweep');
    this.invariants('final');
    for (const f of this.files) { f.file.sync(); this.checkBackend(f, 0, f.pages - 1, 'final fsync'); }
    for (const s of this.spaces) { this.unpinAll(s); s.mm.destroy(); }
    this.spaces = [];
    this.invariants('after destroying every address space');
    for (const f of this.files) {
      f.file.close();
      this.checkBackend(f, 0, f.pages - 1, 'after close');
    }
    const st = this.mmu.stats();
    if (st.swapUsed !== 0) this.fail(`${st.swapUsed} swap slots still in use with nothing mapped`);
    if (st.freeFrames !== this.baseFree) this.fail(`${this.baseFree - st.freeFrames} frames lost: ${st.freeFrames} free after teardown, ${this.baseFree} at start`);
    this.invariants('after closing every file');
    Object.assign(this.stats, { pswpout: st.pswpout, pswpin: st.pswpin, writeback: st.writeback, pgsteal: st.pgsteal, cowCopies: st.cowCopies, pgfault: st.pgfault });
  }

  // ---- ranges chosen from the model ----

  /** A range inside VMA `v`: page offset from x, 1..max pages from y. */
  rangeIn(v, x, y, max = 64) {
    const off = x % v.pages;
    const n = 1 + (y % Math.min(max, v.pages - off));
    return [v.start + off * P, v.start + (off + n) * P];
  }
  /** A range of `s`: inside one VMA, or from one VMA into a later one (holes included). */
  span(s, x, y, z) {
    const n = s.vmas.length;
    const i = x % n;
    const v = s.vmas[i];
    if (z % 4 !== 0) return this.rangeIn(v, y, y >> 6);
    const w = s.vmas[Math.min(n - 1, i + 1 + ((y >> 3) % 2))];
    const start = v.start + (y % v.pages) * P;
    let end = w.end - ((y >> 8) % w.pages) * P;
    if (end <= start) end = start + P;
    return [start, Math.min(end, start + 512 * P)];
  }
  /** A hole-free range of `s` starting in VMA x: into the following adjacent VMAs maybe. */
  run(s, x, y) {
    const i = x % s.vmas.length;
    let v = s.vmas[i];
    const start = v.start + (y % v.pages) * P;
    let end = v.end;
    for (let j = i + 1, k = (y >> 6) % 3; k > 0 && j < s.vmas.length && s.vmas[j].start === end; j++, k--) end = s.vmas[j].end;
    const n = 1 + ((y >> 8) % ((end - start) / P));
    return [start, start + n * P];
  }

  // ---- commands ----

  do_write(a, b, c, d) {
    const s = this.space(a);
    let va;
    if (s.vmas.length === 0 || b % 16 === 0) va = this.holeAddress(s, c);
    else {
      const v = s.vmas[c % s.vmas.length];
      const len = v.end - v.start;
      va = b % 16 >= 14 ? v.end - 1 - (d % Math.min(len, 100)) : v.start + ((c >> 5) * 4099 + (d >> 10)) % len;
    }
    let n = b % 16 >= 14 ? 200 : d % 4 === 0 ? 1 + ((d >> 2) % (3 * P)) : 1 + ((d >> 2) % 64);
    // Never write the tail of a shared file's last page past EOF: what it holds there after
    // eviction is not defined (R10.1: never written back), so the model cannot say.
    for (let at = va; at < va + n; at = Math.floor(at / P) * P + P) {
      const pg = Math.floor(at / P) * P;
      if (writeError(s, pg)) break;
      const v = s.find(pg);
      if (v.kind === 'shared') {
        const eof = v.start + (v.file.size - v.pgoff * P);
        if (va + n > eof && eof < pg + P) { n = Math.max(0, eof - va); break; }
      }
    }
    if (n === 0) { this.action += ' (nothing left below EOF)'; return; }
    const data = pattern(n, a ^ (b << 3) ^ (d << 7));
    this.action += ` -> write space ${s.id} ${hex(va)} +${n}`;
    // The model, page by page until the first page that faults.
    let failAt = null, failWhy = null;
    const touched = [];
    for (let at = va; at < va + n;) {
      const pg = Math.floor(at / P) * P;
      const k = Math.min(pg + P, va + n) - at;
      const e = writeError(s, pg);
      if (e) { failAt = at; failWhy = e; touched.push(pg); break; }
      this.applyWrite(s, s.find(pg), pg, at - pg, data.subarray(at - va, at - va + k));
      touched.push(pg);
      at += k;
    }
    this.expectOutcome(() => s.mm.write(va, data), failWhy, failAt ?? undefined, 'write');
    for (const pg of touched) {
      this.checkPage(s, pg, 'written page');
      const v = s.find(pg);
      if (!v) continue;
      if (v.kind === 'shared') this.checkAliases(v.file, v.index(pg), 'shared write seen everywhere');
      else if (v.kind === 'shmem') this.checkAliases(v.shm, v.index(pg), 'shmem write seen everywhere');
      else this.checkOthers(s, pg, 'private write seen nowhere else');
    }
  }

  do_read(a, b, c, d) {
    const s = this.space(a);
    if (s.vmas.length === 0) return;
    const v = s.vmas[c % s.vmas.length];
    const va = v.start + ((c >> 5) * 4099 + b) % (v.end - v.start);
    const n = 1 + (d % (d % 4 === 0 ? 3 * P : 300));
    this.action += ` -> read space ${s.id} ${hex(va)} +${n}`;
    const want = new Uint8Array(n);
    let failAt, failWhy = null;
    for (let at = va; at < va + n;) {
      const pg = Math.floor(at / P) * P;
      const k = Math.min(pg + P, va + n) - at;
      const e = expectPage(s, pg);
      if (e.err) { failAt = at; failWhy = e.err; break; }
      want.set(e.bytes.subarray(at - pg, at - pg + k), at - va);
      at += k;
    }
    const got = this.expectOutcome(() => s.mm.read(va, n), failWhy, failAt, 'read');
    if (got && !eq(got, want)) {
      const i = firstDiff(got, want);
      this.fail(`read: byte ${i} (at ${hex(va + i)}) is ${got[i]}, the model says ${want[i]}`);
    }
  }

  /** The kind, prot, length and file of a new mapping from a, b, d. */
  newMapping(a, b, d) {
    const kind = ['anon', 'priv', 'shared', 'shmem'][a % 4];
    const prot = [RW, RW, RW, PROT_READ, PROT_NONE][(a >> 2) % 5];
    const pages = b % 3 === 0 ? 1 + ((b >> 2) % 4) : 1 + ((b >> 2) % 64);
    const f = kind === 'priv' || kind === 'shared' ? this.files[d % this.files.length] : null;
    const pgoff = f ? (d >> 4) % (f.pages + 4) : 0;
    return { kind, prot, pages, f, pgoff };
  }

  /** Bounds that keep a run inside RAM + swap (the model's own, not the library's). */
  roomFor(s, m) {
    if (s.vmas.length >= this.cfg.maxVmas) return false;
    if (s.mappedPages + m.pages > this.frames / 2) return false;
    if (m.kind === 'shmem') {
      const shm = new Set();
      for (const t of this.spaces) for (const v of t.vmas) if (v.shm) shm.add(v.shm);
      let total = 0;
      for (const x of shm) total += x.npages;
      if (total + m.pages > this.frames / 8) return false;
    }
    return this.spaces.reduce((n, t) => n + t.mappedPages, 0) + m.pages <= this.frames * 1.5;
  }

  mapFlags(m) {
    const { MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS } = this.lib;
    return m.kind === 'anon' ? MAP_PRIVATE | MAP_ANONYMOUS : m.kind === 'shmem' ? MAP_SHARED | MAP_ANONYMOUS
      : m.kind === 'priv' ? MAP_PRIVATE : MAP_SHARED;
  }

  /** mmap in the library and the model; `addr` with `extra` flags (MAP_FIXED ...) or a hint. */
  map(s, m, addr, extra, want = null) {
    const len = m.pages * P;
    const opts = { length: len, prot: m.prot, flags: this.mapFlags(m) | extra };
    if (addr !== undefined) opts.addr = addr;
    if (m.f) { opts.file = m.f.file; opts.offset = m.pgoff * P; }
    this.action += ` -> mmap space ${s.id} ${m.pages}p ${protName(m.prot)} ${m.kind}${m.f ? ` file${m.f.file.id}@${m.pgoff}` : ''}${addr !== undefined ? ` at ${hex(addr)}` : ''} flags ${hex(opts.flags)}`;
    const at = this.expectOutcome(() => s.mm.mmap(opts), want, undefined, 'mmap');
    if (want !== null) return null;
    if (at % P !== 0 || at < VA_MIN || at + len > TASK_SIZE + P) this.fail(`mmap returned ${hex(at)}`);
    const fixed = (extra & this.lib.MAP_FIXED) !== 0;
    if (fixed && at !== addr) this.fail(`MAP_FIXED mmap at ${hex(addr)} returned ${hex(at)}`);
    if (!fixed) {
      if (!s.free(at, at + len)) this.fail(`mmap returned ${hex(at)}+${len} over an existing mapping`);
      if (addr !== undefined && addr >= VA_MIN && addr + len <= TASK_SIZE && s.free(addr, addr + len) && at !== addr) {
        this.fail(`mmap did not take the free hint ${hex(addr)} (got ${hex(at)})`);
      }
    }
    s.remove(at, at + len);
    const shm = m.kind === 'shmem' ? new Shm(m.pages) : null;
    const v = new MVma(at, at + len, m.prot, m.kind, m.f, shm, m.f ? m.pgoff : 0, false);
    s.insert(v);
    if (extra & this.lib.MAP_POPULATE) populateWrite(s, at, at + len);
    this.checkMaps(s);
    this.checkPage(s, at, 'new mapping');
    if (len > P) this.checkPage(s, at + len - P, 'new mapping');
    if (at >= VA_MIN + P) this.checkPage(s, at - P, 'below a new mapping');
    this.checkPage(s, at + len, 'above a new mapping');
    return at;
  }

  do_mmap(a, b, c, d) {
    const s = this.space(a >> 8);
    const m = this.newMapping(a, b, d);
    if (!this.roomFor(s, m)) return this.do_munmap(a, b, c, d);
    // A hint: none mostly; sometimes a page-aligned address near the others, or far away.
    let hint;
    if (c % 4 === 0) hint = s.vmas.length && c % 8 === 0 ? s.vmas[0].start - ((c >> 3) % 64 + m.pages) * P : VA_MIN + ((c >> 3) % 2 ** 16) * 2 ** 20 + ((c >> 2) % 512) * P;
    if (hint !== undefined && hint < VA_MIN) hint = undefined;
    this.map(s, m, hint, 0);
  }

  /** MAP_FIXED over (part of) an existing mapping: the old pages go, the new ones are fresh. */
  do_fixed(a, b, c, d) {
    const s = this.space(a >> 8);
    const m = this.newMapping(a, b, d);
    if (s.vmas.length === 0) return this.do_mmap(a, b, c, d);
    const v = s.vmas[c % s.vmas.length];
    const addr = Math.max(VA_MIN, v.start + (((c >> 6) % (v.pages + 8)) - 4) * P);
    // The room check counts the pages it replaces as freed.
    const gone = s.vmas.reduce((n, w) => n + Math.max(0, Math.min(w.end, addr + m.pages * P) - Math.max(w.start, addr)) / P, 0);
    if (!this.roomFor(s, { ...m, pages: m.pages - gone })) return this.do_munmap(a, b, c, d);
    this.map(s, m, addr, this.lib.MAP_FIXED);
  }

  /** MAP_POPULATE: private writable file pages are copied at once (R9.4). */
  do_populate(a, b, c, d) {
    const s = this.space(a >> 8);
    const m = this.newMapping(a, b, d);
    if (!this.roomFor(s, m)) return this.do_munmap(a, b, c, d);
    this.map(s, m, undefined, this.lib.MAP_POPULATE);
  }

  /** MAP_FIXED_NOREPLACE: EEXIST over anything mapped, else exactly there. */
  do_noreplace(a, b, c, d) {
    const s = this.space(a >> 8);
    const m = this.newMapping(a, b, d);
    if (s.vmas.length === 0 || !this.roomFor(s, m)) return this.do_reclaim(a, b, c, d);
    const v = s.vmas[c % s.vmas.length];
    const addr = Math.max(VA_MIN, v.start + (((c >> 6) % (v.pages + 16)) - 8 - m.pages) * P);
    const free = s.free(addr, addr + m.pages * P);
    this.map(s, m, addr, this.lib.MAP_FIXED_NOREPLACE, free ? null : 'EEXIST');
  }

  do_munmap(a, b, c, d) {
    const s = this.space(a);
    if (s.vmas.length === 0) return;
    const [start, end] = b % 8 === 6 ? [s.vmas[c % s.vmas.length].start, s.vmas[c % s.vmas.length].end] : this.span(s, c, d, b);
    if (b % 32 === 7) { // Linux's EINVAL: an unaligned start or a zero length, and nothing changes
      const bad = d % 2 === 0 ? [start + 1 + (d % (P - 1)), end - start] : [start, 0];
      this.action += ` -> munmap space ${s.id} ${hex(bad[0])} +${bad[1]} (EINVAL)`;
      this.expectOutcome(() => s.mm.munmap(bad[0], bad[1]), 'EINVAL', undefined, 'munmap');
      this.checkPage(s, start, 'after a refused munmap');
      return;
    }
    this.action += ` -> munmap space ${s.id} [${hex(start)},${hex(end)})`;
    this.expectOutcome(() => s.mm.munmap(start, end - start), null, undefined, 'munmap');
    s.remove(start, end);
    this.checkMaps(s);
    this.checkPage(s, start, 'unmapped');
    this.checkPage(s, end - P, 'unmapped');
    if (start >= VA_MIN + P) this.checkPage(s, start - P, 'below an unmapped range');
    this.checkPage(s, end, 'above an unmapped range');
  }

  do_mprotect(a, b, c, d) {
    const s = this.space(a);
    if (s.vmas.length === 0) return;
    const prot = [PROT_NONE, PROT_READ, RW, RW][b % 4];
    if (d % 16 === 0) { // a range starting in a hole: ENOMEM, nothing changes (R9.5)
      const v = s.vmas[c % s.vmas.length];
      if (v.start - P >= VA_MIN && !s.find(v.start - P)) {
        this.action += ` -> mprotect space ${s.id} ${hex(v.start - P)} +${(v.pages + 1) * P} ${protName(prot)} (ENOMEM)`;
        this.expectOutcome(() => s.mm.mprotect(v.start - P, (v.pages + 1) * P, prot), 'ENOMEM', undefined, 'mprotect');
        this.checkMaps(s);
        return;
      }
    }
    const [start, end] = this.run(s, c, d);
    this.action += ` -> mprotect space ${s.id} [${hex(start)},${hex(end)}) ${protName(prot)}`;
    this.expectOutcome(() => s.mm.mprotect(start, end - start, prot), null, undefined, 'mprotect');
    for (const v of s.within(start, end)) {
      const old = v.prot;
      v.prot = prot;
      // R8.8: a locked private mapping made writable is populated with write faults.
      if (v.locked && !v.onfault && v.kind !== 'shared' && v.kind !== 'shmem' && !(old & PROT_WRITE) && (prot & PROT_WRITE)) populateWrite(s, v.start, v.end);
    }
    this.checkMaps(s);
    const pg = start + ((d >> 4) % ((end - start) / P)) * P;
    if (!(prot & PROT_WRITE)) { // a write to a read-only page: SEGV_ACCERR, and nothing changes
      const at = pg + (d % P);
      this.expectOutcome(() => s.mm.write(at, new Uint8Array([0xa5, 0x5a])), 'ACCERR', at, 'write to a read-only page');
    }
    if (prot === PROT_NONE) this.expectOutcome(() => s.mm.read(pg, 1), 'ACCERR', pg, 'read of a PROT_NONE page');
    this.checkRange(s, start, end, 'after mprotect', 4);
  }

  /** MADV_DONTNEED (R9.1): anon pages read zeros, private file pages the file, shared ones stay. */
  do_dontneed(a, b, c, d) { this.advise(a, b, c, d, 'dontneed'); }
  /** MADV_PAGEOUT: reclaim the range now; nothing may change. */
  do_pageout(a, b, c, d) { this.advise(a, b, c, d, 'pageout'); }

  advise(a, b, c, d, what) {
    const s = this.space(a);
    if (s.vmas.length === 0) return;
    const [start, end] = this.span(s, c, d, b);
    const mapped = s.vmas.filter((v) => v.start < end && v.end > start);
    // A locked VMA makes both EINVAL. Linux advises VMA by VMA (madvise_walk_vmas, R9.1):
    // the VMAs before the first locked one are advised (holes skipped), then EINVAL.
    const firstLocked = mapped.findIndex((v) => v.locked);
    const advised = firstLocked >= 0 ? mapped.slice(0, firstLocked) : mapped;
    const advice = what === 'dontneed' ? this.lib.MADV_DONTNEED : this.lib.MADV_PAGEOUT;
    this.action += ` -> madvise(${what}) space ${s.id} [${hex(start)},${hex(end)})`;
    let want = null;
    if (firstLocked >= 0) want = 'EINVAL';
    else if (mapped.length === 0 || !s.covered(start, end)) want = 'ENOMEM';
    this.expectOutcome(() => s.mm.madvise(start, end - start, advice), want, undefined, 'madvise');
    if (what === 'dontneed') {
      for (const v of advised) if (v.kind === 'anon' || v.kind === 'priv') s.dropPriv(Math.max(start, v.start), Math.min(end, v.end));
    }
    this.checkRange(s, start, end, `after madvise(${what})`);
  }

  do_touch(a, b, c, d) {
    const s = this.space(a);
    if (s.vmas.length === 0) return;
    const [start, end0] = this.span(s, c, d, b);
    const va = start + (d % 3 === 0 ? (d >> 4) % P : 0);
    const end = Math.max(end0, va + 1);
    const write = b % 2 === 1;
    this.action += ` -> touch(${write ? 'write' : 'read'}) space ${s.id} ${hex(va)} +${end - va}`;
    let failAt, failWhy = null;
    for (let pg = Math.floor(va / P) * P; pg < end; pg += P) {
      const e = write ? writeError(s, pg) : readError(s, pg);
      if (e) { failAt = Math.max(va, pg); failWhy = e; break; }
      if (write) cowSnapshot(s, s.find(pg), pg);
    }
    this.expectOutcome(() => s.mm.touch(va, end - va, write ? 'write' : 'read'), failWhy, failAt, 'touch');
    this.checkRange(s, Math.floor(va / P) * P, Math.ceil(end / P) * P, 'touched');
  }

  do_fork(a, b, c, d) {
    const s = this.space(a);
    if (this.spaces.length >= this.cfg.maxSpaces) return this.do_destroy(a + 1, b, c, d);
    const total = this.spaces.reduce((n, t) => n + t.mappedPages, 0);
    if (total + s.mappedPages > this.frames * 1.5) return this.do_destroy(a + 1, b, c, d);
    this.action += ` -> fork space ${s.id}`;
    const mm = this.expectOutcome(() => s.mm.fork(), null, undefined, 'fork');
    const child = new MSpace(mm, this.nextSpace++);
    // R5.5: the child gets every mapping (unlocked) and, for now, the same private pages.
    child.vmas = s.vmas.map((v) => { const w = v.piece(v.start, v.end); w.locked = false; w.onfault = false; return w; });
    child.priv = new Map(s.priv);
    this.spaces.push(child);
    this.action += ` = space ${child.id}`;
    this.checkMaps(child);
    for (let i = 0; i < 4 && child.vmas.length; i++) {
      const v = child.vmas[Math.floor(this.rand() * child.vmas.length)];
      const pg = v.start + Math.floor(this.rand() * v.pages) * P;
      this.checkPage(child, pg, 'forked child');
      this.checkPage(s, pg, 'fork parent');
    }
  }

  do_destroy(a) {
    if (this.spaces.length === 0) return;
    const i = a % this.spaces.length;
    const s = this.spaces[i];
    this.unpinAll(s); // a pin cannot be dropped once its address space is gone (the API's rule)
    this.action += ` -> destroy space ${s.id}`;
    this.expectOutcome(() => s.mm.destroy(), null, undefined, 'destroy');
    for (const v of s.vmas) v.drop();
    this.spaces.splice(i, 1);
    // What it shared must still be there for the others.
    for (const v of s.vmas) {
      if (v.kind === 'shared' || v.kind === 'shmem') this.checkAliases(v.file ?? v.shm, v.index(v.start), 'shared page after a sharer died');
    }
  }

  do_spawn(a, b, c, d) {
    if (this.spaces.length >= this.cfg.maxSpaces) return this.do_reclaim(a, b, c, d);
    const s = this.spawn();
    this.action += ` -> new space ${s.id}`;
  }

  do_msync(a, b, c, d) {
    const s = this.space(a);
    if (s.vmas.length === 0) return;
    const [start, end] = this.span(s, c, d, b);
    const sync = b % 4 !== 0;
    this.action += ` -> msync(${sync ? 'MS_SYNC' : 'MS_ASYNC'}) space ${s.id} [${hex(start)},${hex(end)})`;
    const want = s.covered(start, end) ? null : 'ENOMEM';
    this.expectOutcome(() => s.mm.msync(start, end - start, sync ? this.lib.MS_SYNC : this.lib.MS_ASYNC), want, undefined, 'msync');
    if (!sync) return;
    // MS_SYNC wrote the file range of every shared mapping in it (vfs_fsync_range).
    for (const v of s.vmas) {
      if (v.kind !== 'shared' || v.end <= start || v.start >= end) continue;
      const first = v.index(Math.max(start, v.start)), last = v.index(Math.min(end, v.end) - P);
      this.checkBackend(v.file, first, Math.min(last, v.file.pages - 1), 'after msync(MS_SYNC)');
    }
  }

  /** File truncate / extend (R10.2): beyond EOF is SIGBUS, private copies there go too. */
  do_truncate(a, b, c) {
    const f = this.files[a % this.files.length];
    const old = f.size;
    const max = 64 * P;
    const size = [0, (c % 65) * P, c % max, Math.min(max, old + c % (16 * P)), Math.max(0, old - 1 - c % (2 * P)), f.initial][b % 6];
    this.action += ` -> truncate file${f.file.id} ${old} -> ${size}`;
    this.expectOutcome(() => f.file.truncate(size), null, undefined, 'truncate');
    f.resize(size);
    const gone = pagesOf(size);
    for (const s of this.spaces) {
      for (const v of s.vmas) {
        if (v.kind !== 'priv' || v.file !== f) continue;
        const from = Math.max(v.start, v.start + (gone - v.pgoff) * P);
        if (from < v.end) s.dropPriv(from, v.end);
      }
    }
    if (f.file.size !== size || f.backend.size() !== size) this.fail(`after truncate: i_size ${f.file.size}, backend ${f.backend.size()}, want ${size}`);
    for (const idx of new Set([gone - 1, gone, pagesOf(old) - 1, pagesOf(old)])) if (idx >= 0) this.checkAliases(f, idx, 'around EOF after truncate');
  }

  /** pwrite through the page cache: every mapping of the page sees it, private copies do not. */
  do_pwrite(a, b, c, d) {
    const f = this.files[a % this.files.length];
    const off = b % ((f.pages + 2) * P);
    const n = Math.min(64 * P - off, 1 + (c % (d % 4 === 0 ? 2 * P : 200)));
    if (n <= 0) return;
    const data = pattern(n, c ^ (d << 5));
    this.action += ` -> pwrite file${f.file.id} ${off} +${n}`;
    const done = this.expectOutcome(() => f.file.pwrite(off, data), null, undefined, 'pwrite');
    if (done !== n) this.fail(`pwrite wrote ${done} of ${n} bytes`);
    f.ensure(off + n);
    f.data.set(data, off);
    if (off + n > f.size) f.size = off + n;
    for (let idx = Math.floor(off / P); idx <= Math.floor((off + n - 1) / P); idx++) this.checkAliases(f, idx, 'after pwrite');
  }

  /** fsync: the backend holds exactly the model's bytes: no private write ever reached it. */
  do_sync(a) {
    const f = this.files[a % this.files.length];
    this.action += ` -> fsync file${f.file.id}`;
    this.expectOutcome(() => f.file.sync(), null, undefined, 'fsync');
    this.checkBackend(f, 0, f.pages - 1, 'after fsync');
  }

  do_mlock(a, b, c, d) {
    const s = this.space(a);
    if (s.vmas.length === 0) return;
    const v = s.vmas[c % s.vmas.length];
    const [start, end] = this.rangeIn(v, d, d >> 7, 32);
    const locked = this.spaces.reduce((n, t) => n + t.lockedPages, 0);
    if (locked + (end - start) / P > this.frames / 8) return this.do_munlock(a, b, c, d);
    const onfault = b % 5 === 0;
    this.action += ` -> mlock${onfault ? '2(ONFAULT)' : ''} space ${s.id} [${hex(start)},${hex(end)})`;
    // R8.1: a page that cannot be faulted (beyond EOF, PROT_NONE) makes mlock ENOMEM, but the
    // range is locked all the same.
    let want = null;
    if (!onfault) {
      if (v.prot === PROT_NONE) want = 'ENOMEM';
      else if ((v.kind === 'priv' || v.kind === 'shared') && v.index(end - P) >= v.file.pages) want = 'ENOMEM';
    }
    let err = null;
    try { onfault ? s.mm.mlock2(start, end - start, this.lib.MLOCK_ONFAULT) : s.mm.mlock(start, end - start); } catch (e) { err = e; }
    if (err && !(want && err instanceof this.lib.LinuxError && err.code === want)) this.fail(`mlock: ${err.stack ?? err}`);
    for (const w of s.within(start, end)) { w.locked = true; w.onfault = onfault; }
    if (!onfault && (v.prot & PROT_WRITE)) populateWrite(s, start, end);
    this.checkMaps(s);
    this.checkRange(s, start, end, 'after mlock', 4);
  }

  do_munlock(a, b, c, d) {
    const s = this.space(a);
    if (s.vmas.length === 0) return;
    const [start, end] = this.run(s, c, d);
    this.action += ` -> munlock space ${s.id} [${hex(start)},${hex(end)})`;
    this.expectOutcome(() => s.mm.munlock(start, end - start), null, undefined, 'munlock');
    for (const w of s.within(start, end)) { w.locked = false; w.onfault = false; }
    this.checkMaps(s);
  }

  do_reclaim(a) {
    const n = 1 + (a % 512);
    this.action += ` -> reclaim(${n})`;
    const got = this.expectOutcome(() => this.mmu.reclaim(n), null, undefined, 'reclaim');
    if (!(got >= 0)) this.fail(`reclaim returned ${got}`);
    for (let i = 0; i < 6; i++) { const p = this.randomPage(); if (p) this.checkPage(p[0], p[1], 'after reclaim'); }
  }

  do_evict(a) {
    const f = this.files[a % this.files.length];
    this.action += ` -> evict file${f.file.id}`;
    this.expectOutcome(() => f.file.evict(), null, undefined, 'evict');
    this.checkAliases(f, a % Math.max(1, f.pages), 'after evict');
  }

  unpinAll(s) {
    for (const pin of s.pins) this.expectOutcome(() => s.mm.unpinUserPage(pin.pfn), null, undefined, 'unpin');
    s.pins = [];
  }

  /**
   * An emulator's access: translate (faulting like the CPU), the JS TLB fast path must then
   * hit with the same frame, and the bytes go through mmu.phys at that physical address.
   */
  do_phys(a, b, c, d) {
    const s = this.space(a);
    if (s.vmas.length === 0) return;
    const v = s.vmas[c % s.vmas.length];
    const pg = v.start + ((c >> 5) % v.pages) * P;
    const off = d % P;
    const n = Math.min(P - off, 1 + ((d >> 12) % 300));
    const write = b % 2 === 1;
    const va = pg + off;
    this.action += ` -> ${write ? 'translate(write) + phys.write' : 'translate(read) + phys.read'} space ${s.id} ${hex(va)} +${n}`;
    let want = write ? writeError(s, pg) : readError(s, pg);
    // A shared file's last page past EOF: see do_write.
    if (!want && write && v.kind === 'shared' && v.index(pg) * P + off + n > v.file.size) return;
    const pa = this.expectOutcome(() => s.mm.translate(va, write ? 'write' : 'read'), want, va, 'translate');
    if (want) return;
    const hit = this.mmu.tlb.view.lookup(s.mm.asid, va, write ? 1 : 0, true);
    if (hit !== pa) this.fail(`the TLB fast path gives ${hit} for ${hex(va)}, translate gave ${pa}`);
    if (!write) {
      const got = this.mmu.phys.read(pa, n), exp = expectPage(s, pg).bytes.subarray(off, off + n);
      if (!eq(got, exp)) this.fail(`phys.read at ${hex(pa)}: byte ${firstDiff(got, exp)} differs from the model`);
      return;
    }
    const data = pattern(n, a ^ (c << 2) ^ d);
    this.mmu.phys.write(pa, data);
    this.applyWrite(s, v, pg, off, data);
    this.checkPage(s, pg, 'written through phys');
    if (v.kind === 'shared') this.checkAliases(v.file, v.index(pg), 'phys write to a shared page seen everywhere');
    else if (v.kind === 'shmem') this.checkAliases(v.shm, v.index(pg), 'phys write to shmem seen everywhere');
    else this.checkOthers(s, pg, 'phys write to a private page seen nowhere else');
  }

  /** The model side of writing `data` at byte `off` of page `pg` (mapped by `v`, writable). */
  applyWrite(s, v, pg, off, data) {
    if (v.kind === 'anon' || v.kind === 'priv') {
      const copy = expectContent(s, v, pg).bytes.slice();
      copy.set(data, off);
      s.priv.set(pg, copy);
    } else if (v.kind === 'shared') {
      const at = v.index(pg) * P + off;
      v.file.ensure(at + data.length);
      v.file.data.set(data, at);
    } else {
      const idx = v.index(pg);
      const copy = v.shm.page(idx).slice();
      copy.set(data, off);
      v.shm.pages.set(idx, copy);
    }
  }

  /** FOLL_PIN of a private writable page (a DMA target): written later through its frame. */
  do_pin(a, b, c) {
    const s = this.space(a);
    const cands = s.vmas.filter((v) => (v.kind === 'anon' || v.kind === 'priv') && v.prot === RW);
    const total = this.spaces.reduce((n, t) => n + t.pins.length, 0);
    if (cands.length === 0 || total >= 8) return this.do_unpin(a, b, c);
    const v = cands[c % cands.length];
    const pg = v.start + ((c >> 5) % v.pages) * P;
    if (writeError(s, pg)) return; // beyond EOF of a private file mapping
    this.action += ` -> pin(write) space ${s.id} ${hex(pg)}`;
    const pfns = this.expectOutcome(() => s.mm.getUserPages(pg, 1, { pin: true, write: true }), null, undefined, 'getUserPages');
    if (pfns.length !== 1) this.fail(`getUserPages pinned ${pfns.length} pages`);
    // FOLL_WRITE broke COW: the page is this space's own now (content unchanged).
    s.priv.set(pg, expectContent(s, v, pg).bytes);
    s.pins.push({ va: pg, pfn: pfns[0], attached: true });
    this.checkPage(s, pg, 'pinned');
  }

  do_unpin(a, b) {
    const s = this.space(a);
    if (s.pins.length === 0) return;
    const [pin] = s.pins.splice(b % s.pins.length, 1);
    this.action += ` -> unpin space ${s.id} pfn ${pin.pfn}`;
    this.expectOutcome(() => s.mm.unpinUserPage(pin.pfn), null, undefined, 'unpin');
    // A second unpin of the same pin is refused (it would free a mapped frame).
    if (!s.pins.some((p) => p.pfn === pin.pfn)) this.expectOutcome(() => s.mm.unpinUserPage(pin.pfn), 'EINVAL', undefined, 'unpin again');
    if (pin.attached) this.checkPage(s, pin.va, 'unpinned');
  }

  /**
   * A device writes into a pinned frame. While the mapping still holds it, the space sees
   * the bytes; once it let go (munmap, DONTNEED) or after fork (R5.6: the child got a copy),
   * nobody else may.
   */
  do_dma(a, b, c, d) {
    const all = this.spaces.flatMap((t) => t.pins.map((pin) => [t, pin]));
    if (all.length === 0) return this.do_pin(a, b, c);
    const [s, pin] = all[a % all.length];
    const off = d % P, n = Math.min(P - off, 1 + (c % 200));
    const data = pattern(n, b ^ d);
    this.action += ` -> DMA into pfn ${pin.pfn} (space ${s.id} ${hex(pin.va)}${pin.attached ? '' : ', no longer mapped'}) +${off} ${n}`;
    this.mmu.phys.write(pin.pfn * P + off, data);
    if (pin.attached) this.applyWrite(s, s.find(pin.va), pin.va, off, data);
    this.checkPage(s, pin.va, 'after DMA');
    this.checkOthers(s, pin.va, 'DMA into a pinned page seen nowhere else');
  }

  /** pread(2) through the page cache: the model's bytes, cut at EOF. */
  do_pread(a, b, c) {
    const f = this.files[a % this.files.length];
    const off = b % ((f.pages + 1) * P);
    const n = 1 + (c % (2 * P));
    this.action += ` -> pread file${f.file.id} ${off} +${n}`;
    const got = this.expectOutcome(() => f.file.pread(off, n), null, undefined, 'pread');
    const want = f.data.subarray(Math.min(off, f.size), Math.min(f.size, off + n));
    if (!eq(got, want)) this.fail(`pread: ${got.length} bytes, byte ${firstDiff(got, want)} differs from the model's ${want.length}`);
  }

  /** close(2) and open again: EBUSY while mapped; else every dirty page reaches the backend. */
  do_reopen(a) {
    const f = this.files[a % this.files.length];
    const mapped = this.spaces.some((t) => t.vmas.some((v) => v.file === f));
    this.action += ` -> close file${f.file.id}${mapped ? ' (mapped: EBUSY)' : ' and open it again'}`;
    this.expectOutcome(() => f.file.close(), mapped ? 'EBUSY' : null, undefined, 'close');
    if (mapped) return;
    this.checkBackend(f, 0, f.pages - 1, 'after close');
    f.file = this.expectOutcome(() => this.mmu.openFile(f.backend, f.opts), null, undefined, 'openFile');
    if (f.file.size !== f.size) this.fail(`reopened with i_size ${f.file.size}, the model says ${f.size}`);
  }

  /** MADV_WILLNEED / COLD change nothing visible; MADV_POPULATE_READ / WRITE fault in (R9.3). */
  do_madvise(a, b, c, d) {
    const s = this.space(a);
    if (s.vmas.length === 0) return;
    const [start, end] = this.span(s, c, d, b);
    const which = ['WILLNEED', 'COLD', 'POPULATE_READ', 'POPULATE_WRITE'][(b >> 2) % 4];
    this.action += ` -> madvise(${which}) space ${s.id} [${hex(start)},${hex(end)})`;
    let want = null;
    if (which === 'POPULATE_READ' || which === 'POPULATE_WRITE') {
      // Page by page from the start until the first that cannot be populated.
      const write = which === 'POPULATE_WRITE';
      for (let pg = start; pg < end && !want; pg += P) {
        const v = s.find(pg);
        if (!v) want = 'ENOMEM';
        else if (write ? !(v.prot & PROT_WRITE) : !(v.prot & PROT_READ)) want = 'EINVAL';
        else if ((v.kind === 'priv' || v.kind === 'shared') && v.index(pg) >= v.file.pages) want = 'EFAULT';
        else if (write) cowSnapshot(s, v, pg);
      }
    } else {
      const inRange = s.vmas.filter((v) => v.start < end && v.end > start);
      if (which === 'COLD' && inRange.some((v) => v.locked)) want = 'EINVAL'; // see advise()
      else if (!s.covered(start, end)) want = 'ENOMEM';
    }
    this.expectOutcome(() => s.mm.madvise(start, end - start, this.lib[`MADV_${which}`]), want, undefined, 'madvise');
    this.checkRange(s, start, end, `after madvise(${which})`);
  }

  /** Read-ahead into the page cache, as 4 KiB pages or large folios: nothing visible changes. */
  do_prime(a, b, c) {
    const f = this.files[a % this.files.length];
    const order = [0, 0, 1, 2, 4][b % 5];
    const n = 2 ** order;
    const first = ((c % Math.max(1, f.pages)) >> order) << order;
    this.action += ` -> prime file${f.file.id} [${first}, ${first + n}) order ${order}`;
    let err = null;
    try { f.file.prime(first, n, { order }); } catch (e) { err = e; }
    // A block reaching past EOF is a RangeError; one with a page cached already EEXIST.
    if (err && !(err instanceof RangeError && first + n > f.pages) && !(err instanceof this.lib.LinuxError && err.code === 'EEXIST')) {
      this.fail(`prime: ${err.stack ?? err}`);
    }
    for (let i = first; i < first + n; i++) this.checkAliases(f, i, 'after prime');
  }

  /** Reads and writes past EOF of file mappings: SIGBUS (R10.1), never a silent zero page. */
  do_readbeyond(a, b, c, d) {
    const s = this.space(a);
    const cands = s.vmas.filter((v) => (v.kind === 'priv' || v.kind === 'shared') && v.index(v.end - P) >= v.file.pages);
    if (cands.length === 0) return this.do_read(a, b, c, d);
    const v = cands[c % cands.length];
    const firstGone = Math.max(v.start, v.start + (v.file.pages - v.pgoff) * P);
    const pg = firstGone + ((d >> 2) % ((v.end - firstGone) / P)) * P;
    const at = pg + (d % P);
    this.action += ` -> ${b % 2 ? 'write' : 'read'} past EOF space ${s.id} ${hex(at)} (${v.describe()})`;
    if (b % 2) {
      const want = writeError(s, pg);
      this.expectOutcome(() => s.mm.write(at, new Uint8Array([7])), want, at, 'write past EOF');
    } else {
      const want = readError(s, pg);
      this.expectOutcome(() => s.mm.read(at, 1), want, want ? at : undefined, 'read past EOF');
    }
  }
}
