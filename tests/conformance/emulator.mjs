#!/usr/bin/env node
// The emulator half of conformance: runs one canonical scenario (lib/scenario.mjs) on
// wasm-mmu through its public API and returns an observation document of exactly the shape
// the kernel harness returns (README "Observation format"), so compare.mjs can check the
// two field by field. States and PFN classes come from lib/observe.mjs, the same rules the
// C harness applies.
//
//   node tests/conformance/emulator.mjs [--kernel <golden dir name>]… [--json] [name-filter …]
//     every golden dir (one column each), or the detailed table of one; exit status 1 on any
//     mismatch that is neither in the scenario's `expectedDeltas` nor in the golden dir's
//     expected-mismatches.json (or a declared one that did not happen).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { GOLDEN_DIR, PAGE_SIZE, fileByte, loadScenarios, mclMask, protMask, scenarioHash } from './lib/scenario.mjs';
import { PfnTracker } from './lib/observe.mjs';
import { compareObservations, formatTable, summarizeMismatches } from './compare.mjs';
import { isDax, profileDiff, unmetRequirement } from './lib/kernel.mjs';

// ------------------------------------------------------------------ placement
/** Base of the map slots: 2 MiB-aligned, like the harness's arena (only alignment matters). */
export const ARENA = 2 ** 40;
/** Each map id has a 16 MiB slot; the map starts 4 MiB in (≥ 2 MiB unmapped on both sides). */
export const SLOT_BYTES = 16 << 20;
export const MAP_OFFSET = 4 << 20;
export const slotBase = (slot) => ARENA + slot * SLOT_BYTES + MAP_OFFSET;

// The harness's madvise / fadvise names (kernel/scenario.c parse_madv), Linux values.
const MADV = {
  normal: 0, random: 1, sequential: 2, willneed: 3, dontneed: 4, free: 8, remove: 9, dontfork: 10,
  dofork: 11, mergeable: 12, unmergeable: 13, hugepage: 14, nohugepage: 15, dontdump: 16, dodump: 17,
  wipeonfork: 18, keeponfork: 19, cold: 20, pageout: 21, populate_read: 22, populate_write: 23,
  dontneed_locked: 24, collapse: 25, guard_install: 102, guard_remove: 103,
};
const MAP_SHARED = 0x01, MAP_PRIVATE = 0x02, MAP_ANONYMOUS = 0x20, MAP_LOCKED = 0x2000,
  MAP_POPULATE = 0x8000, MAP_FIXED_NOREPLACE = 0x100000;
const MS = { async: 1, invalidate: 2, sync: 4 };
const MLOCK_ONFAULT = 1;
/** Steps that go to the file itself: on a DAX file the runner's daxFileOp does them. */
const DAX_FILE_OPS = new Set(['fadvise', 'evict', 'cache', 'pwrite', 'pread']);

/**
 * Writes back the dirty pages of file pages [first, last] only, as POSIX_FADV_DONTNEED's
 * __filemap_fdatawrite_range does (issue 14 item 15: not the whole file). Needs the host's
 * ranged `FileHandle.sync(first, last)`.
 */
function syncRange(file, first, last) {
  if (last < first) return;
  file.sync(first, last);
}

// ------------------------------------------------------------------ configuration
/**
 * createMmu options for a kernel profile (golden/<release>/profile.json): fault_around_bytes,
 * the zero page or not, the read-around window (read_ahead_kb), swap only if the kernel had it.
 * RAM: three times what the scenario could ever touch (never under reclaim pressure), at
 * least 16 MiB; booting is linear in RAM, so a small machine keeps the suite fast.
 */
export function emulatorOptions(profile, norm) {
  const MiB2 = 2 << 20;
  let pages = norm?.file?.pages ?? 0;
  const forked = norm?.steps.some((st) => st.op === 'fork') ? 2 : 1;
  for (const st of norm?.steps ?? []) if (st.op === 'mmap') pages += st.pages * forked;
  const ram = Math.max(16 << 20, Math.ceil((3 * pages * PAGE_SIZE + (8 << 20)) / MiB2) * MiB2);
  return {
    ramBytes: Math.min(ram, 3 * 1024 ** 3),
    faultAroundBytes: profile.faultAroundBytes ?? 65536,
    zeroPage: profile.zeroPage !== false,
    prefaultOld: profile.prefaultOld === true, // arm64 with hardware AF: old; x86: young (R2.6)
    readaheadBytes: Math.min(256 << 20, Math.max(PAGE_SIZE, (profile.readAheadKb ?? 128) * 1024)),
    swapBytes: profile.swap ? undefined : 0,
    // Profile keys of kernel-version and file-system behaviour (issue 15), derived from the
    // release and the file system when the profile does not state them.
    execReadForward: profile.execReadForward ?? releaseAtLeast(profile.release, 6, 16),
    // mlock batch (R8.6): 6.1 and 6.12 drain it when a zap frees pages, 6.18 and 7.3 do not.
    tlbFreeDrainsMlock: profile.tlbFreeDrainsMlock ?? !releaseAtLeast(profile.release, 6, 18),
    lazyfreeBatch: profile.lazyfreeBatch ?? true,
    mergeFaultedIntoUnfaulted: profile.mergeFaultedIntoUnfaulted ?? releaseAtLeast(profile.release, 6, 16),
    // 6.18+: a large page-cache folio one fault maps whole into a VM_LOCKED VMA is mlocked.
    mlockMappedLargeFolio: profile.mlockMappedLargeFolio ?? releaseAtLeast(profile.release, 6, 18),
    truncateCachesTail: profile.truncateCachesTail ?? dirtyAccounting(profile),
    largeFolioReadahead: profile.largeFolioReadahead ?? (releaseAtLeast(profile.release, 6, 16) && dirtyAccounting(profile)),
    // 7.x (7.3 recorded, 6.18 not): no readahead marker in a window that reaches EOF.
    readaheadEofNoMarker: profile.readaheadEofNoMarker ?? releaseAtLeast(profile.release, 7, 0),
    // arm64's exec_folio_order (64 KiB) came with the VM_EXEC read-forward (one patch, 6.16).
    execFolioOrder: profile.execFolioOrder ?? (profile.machine === 'aarch64' && releaseAtLeast(profile.release, 6, 16) ? 4 : 0),
    guardRegions: profile.guardRegions ?? releaseAtLeast(profile.release, 6, 13),
    populateAccounting: profile.populateAccounting ?? (releaseAtLeast(profile.release, 6, 12) ? 'retry-major' : 'minor'),
    userFaultAccounting: profile.userFaultAccounting ?? (releaseAtLeast(profile.release, 6, 7) ? 'vma-lock' : 'mmap-lock'),
    faultAroundIsize: profile.faultAroundIsize ?? hasFaultAroundIsize(profile.release),
    truncateExtendZeroesTail: profile.truncateExtendZeroesTail ?? releaseAtLeast(profile.release, 6, 6),
    // fs-DAX pages are refcounted folios from 6.15 (7.3: file pages in pagemap; 6.12: raw pfns).
    daxFolios: profile.daxFolios ?? releaseAtLeast(profile.release, 6, 15),
  };
}

/** Is kernel `release` ("6.18.44-fc-v769", "6.1.0-57-amd64") at least major.minor? Unknown: yes. */
function releaseAtLeast(release, major, minor) {
  const m = /^(\d+)\.(\d+)/.exec(release ?? '');
  if (!m) return true;
  return Number(m[1]) > major || (Number(m[1]) === major && Number(m[2]) >= minor);
}

/**
 * The i_size rule of fault-around ("SIGBUS semantics", mainline 6.18) was backported to the
 * 6.12.y and 6.17.y stable series only (their early releases lack it; Debian 6.12.118 has it).
 */
export const hasFaultAroundIsize = (release) =>
  releaseAtLeast(release, 6, 18) || /^6\.(12|17)\./.test(release ?? '');

/** A disk file system (ext4, xfs, btrfs …) does dirty accounting: shared writable maps write-notify (R9.10). */
const dirtyAccounting = (profile) => !/^(tmpfs|shmem|ramfs)$/i.test(profile.fileSystem ?? 'ext4');

let distApi = null;
async function defaultApi() {
  distApi ??= await import('../../dist/index.js');
  return distApi;
}

// ------------------------------------------------------------------ one scenario
/**
 * Runs one canonical scenario on a fresh wasm-mmu machine configured from `profile`.
 * opts.api: the wasm-mmu module (default: the built dist/index.js; tests pass src/index.ts).
 * Returns { scenario, source: 'emulator', kernel: profile.release, observations }.
 * opts.checkInvariants: run mmu.checkInvariants() after every step; the document then has
 * `invariants`: [{ step, problems }] for each step that left the core inconsistent.
 */
export async function runOnEmulator(norm, { profile, api, checkInvariants = false } = {}) {
  if (!profile) throw new Error('runOnEmulator needs the kernel profile');
  api ??= await defaultApi();
  const mmu = await api.createMmu(emulatorOptions(profile, norm));
  // null = no zero page; the emulator's zero page may be frame 0 (issue 15: never `Z` before).
  const zeroPfn = profile.zeroPage ? mmu.phys.zeroPfn : null;

  let file = null;
  // ext4 -o dax on persistent memory (seeds 002, 004): the file is an XIP file in the
  // emulator's execute-in-place memory, with no page cache, so `cached`, `evict`, `cache`
  // and fadvise mean nothing (as on the kernel, where the harness skips its cache setup).
  const dax = isDax(profile);
  if (norm.file) {
    const f = norm.file;
    const bytes = new Uint8Array((f.pages - 1) * PAGE_SIZE + f.bytesInLastPage);
    for (let i = 0; i < f.pages; i++) bytes.fill(fileByte(i), i * PAGE_SIZE, Math.min(bytes.length, (i + 1) * PAGE_SIZE));
    if (dax) {
      // The XIP range is carved once: large enough for every size a truncate or pwrite step sets.
      let cap = bytes.length;
      for (const st of norm.steps) {
        if (st.op === 'truncate') cap = Math.max(cap, st.bytes ?? st.pages * PAGE_SIZE);
        if (st.op === 'pwrite') cap = Math.max(cap, st.page * PAGE_SIZE + (st.offset ?? 0) + 1); // an extending write
      }
      file = mmu.createXipFile(Math.max(PAGE_SIZE, cap), { fsDax: true });
      file.write(0, bytes);
      if (cap !== bytes.length) file.truncate(bytes.length);
    } else {
      // On tmpfs the file is shmem (issue 15): no read-around, a hole faults in one zeroed page,
      // msync writes nothing and write-protects nothing, MADV_REMOVE punches.
      file = mmu.openFile(new api.MemoryFile(bytes), dirtyAccounting(profile) ? {} : { shmem: true });
    }
  }
  if (norm.file && !dax) {
    const f = norm.file;
    // Cached: order-0, uptodate, no readahead marker (the harness's one-pread-per-page setup).
    if (f.cached) file.prime(0, f.pages);
    else if (f.cachedRange) file.prime(f.cachedRange[0], f.cachedRange[1] - f.cachedRange[0] + 1);
  }

  // A process: its address space, the maps it made (harness `maps[]`), its PFN history.
  // harnessLocked: the harness locked its own VMAs for an mlockall(MCL_CURRENT) of this
  // process (kernel/scenario.c harness_lock); a fork's child starts with them unlocked.
  const newProc = (who, mm, maps = new Map(), tracker = new PfnTracker()) => ({ who, mm, maps, tracker, alive: true, harnessLocked: false });
  const parent = newProc('parent', mmu.createAddressSpace());
  let child = null;

  const entries = (proc, m) => proc.mm.pagemap(m.addr, m.pages).map((e, i) => ({
    present: e.present, swapped: e.swapped, guard: e.guard, file: e.file, exclusive: e.exclusive, pfn: e.pfn,
    softDirty: e.softDirty, mlocked: e.mlocked,
    // `C` needs the PTE's frame to be the page cache's frame of that file index.
    pageCache: !m.anon && e.present && e.file && !dax ? file?.page(m.pgoff + i)?.pfn === e.pfn : undefined,
  }));
  const sampleAll = (proc) => {
    if (!proc?.alive) return;
    for (const [id, m] of proc.maps) proc.tracker.sample(id, entries(proc, m));
  };

  const observations = [];
  const invariants = [];
  try {
    for (let k = 0; k < norm.steps.length; k++) {
      const st = norm.steps[k];
      const proc = st.in === 'child' ? child : parent;
      if (!proc?.alive) throw new Error(`${norm.name} step ${k}: no live ${st.in}`);
      sampleAll(proc);
      const r = { measured: true, signal: null, sigCode: null, sigAddr: null, errno: null, value: null };
      const m = st.map !== undefined ? proc.maps.get(st.map) : undefined;
      const before = proc.mm.rusage();
      try {
        execStep(st, proc, m, r);
      } catch (e) {
        if (e instanceof api.SegmentationFault || e instanceof api.BusError) {
          r.signal = e.signal;
          r.sigCode = e.code;
          r.sigAddr = e.address;
        } else if (e instanceof api.LinuxError) {
          r.errno = e.code;
        } else {
          throw e;
        }
      }
      const after = proc.alive ? proc.mm.rusage() : before;
      if (st.op === 'fork') {
        if (!r.errno) child = r.child;
        r.measured = false;
        // The harness ends every fork step with lru_add_drain (kernel/scenario.c: after both
        // processes' retouch of their own pages, which drained at some forks and not others).
        if (!r.errno) mmu.lruAddDrain();
      }
      if (st.op === 'mmap' && !r.errno) {
        proc.maps.set(st.id, { addr: r.addr, pages: st.pages, anon: st.anon, pgoff: st.fileOffsetPages });
        proc.tracker.reset(st.id, st.pages);
      }
      if (st.expect) {
        const o = {
          step: k, op: st.op, in: st.in,
          minflt: r.measured ? after.minflt - before.minflt : null,
          majflt: r.measured ? after.majflt - before.majflt : null,
          signal: r.signal, sigCode: r.signal ? r.sigCode : null,
          sigPage: r.signal && m && r.sigAddr >= m.addr ? Math.floor((r.sigAddr - m.addr) / PAGE_SIZE) : null,
          errno: r.errno, value: r.value,
        };
        if (st.expect.vmlck) o.vmlck = proc.mm.status().vmLck / 1024;
        o.maps = {};
        for (const id of st.expect.maps) {
          const mp = proc.maps.get(id);
          if (!mp) throw new Error(`${norm.name} step ${k} expects map ${id}, which the ${st.in} never mapped`);
          const es = entries(proc, mp);
          // DAX: no page cache, so no `C` (the harness likewise, kernel/scenario.c record_map).
          const rec = proc.tracker.record(id, es, { isFileMapping: !mp.anon && !dax, zeroPfn });
          if (st.expect.softDirty) rec.softDirty = es.map((e) => (e.softDirty ? 'd' : '-')).join('');
          if (st.expect.mlocked) rec.mlocked = es.map((e) => (!e.present ? '.' : e.mlocked ? 'L' : '-')).join('');
          // smaps `Referenced:` of the VMA starting at the map (the young bits, R2.6 / seed 001).
          if (st.expect.referenced) rec.referenced = (proc.mm.smaps().find((v) => v.start === mp.addr)?.referenced ?? -1024) / 1024;
          o.maps[id] = rec;
        }
        observations.push(o);
      }
      if (st.op === 'exit') {
        // Before a process whose VMAs it locked exits, the harness unlocks them (harness_lock(0)):
        // each munlock_vma_pages_range ends with lru_add_drain, so the exit's zap starts with
        // an empty mlock batch (issue 14, run S case 791).
        if (proc.harnessLocked) mmu.lruAddDrain();
        proc.mm.destroy();
        proc.alive = false;
        child = null;
        continue;
      }
      sampleAll(proc);
      if (checkInvariants) {
        const problems = mmu.checkInvariants();
        if (problems.length) invariants.push({ step: k, problems });
      }
    }
  } finally {
    for (const mm of mmu.addressSpaces()) mm.destroy();
  }
  const doc = { scenario: norm.name, source: 'emulator', kernel: profile.release, observations };
  if (checkInvariants) doc.invariants = invariants;
  return doc;

  // The measured part of a step: one system call or one access loop (kernel/scenario.c exec_op).
  function execStep(st, proc, m, r) {
    const mm = proc.mm;
    const range = () => [m.addr + st.from * PAGE_SIZE, st.pages * PAGE_SIZE];
    const access = (page) => {
      const addr = m.addr + page * PAGE_SIZE + st.offset;
      if (st.access === 'write') mm.write(addr, Uint8Array.of(st.value));
      else return mm.read(addr, 1)[0];
      return null;
    };
    if (dax && DAX_FILE_OPS.has(st.op)) return daxFileOp(st, r);
    switch (st.op) {
      case 'mmap': {
        const want = slotBase(norm.mapSlots[st.id]) + st.align * PAGE_SIZE;
        const flags = (st.flags === 'shared' ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED_NOREPLACE |
          (st.anon ? MAP_ANONYMOUS : 0) | (st.populate ? MAP_POPULATE : 0) | (st.locked ? MAP_LOCKED : 0);
        r.addr = mm.mmap({ addr: want, length: st.pages * PAGE_SIZE, prot: protMask(st.prot), flags,
          file: st.anon ? undefined : file, offset: st.fileOffsetPages * PAGE_SIZE });
        if (r.addr !== want) {
          mm.munmap(r.addr, st.pages * PAGE_SIZE);
          r.errno = 'EEXIST';
        } else {
          // As the harness does after every mmap: VM_NOHUGEPAGE (MADV_COLLAPSE then refuses).
          mm.madvise(want, st.pages * PAGE_SIZE, MADV.nohugepage);
        }
        return;
      }
      case 'munmap': return mm.munmap(...range());
      case 'touch': r.value = access(st.page); return;
      case 'touchRange': for (let p = st.from; p <= st.to; p++) access(p); return;
      case 'fork': {
        const c = mm.fork();
        // The child inherits the parent's maps and PFN history as they are at the fork.
        r.child = newProc('child', c, new Map([...proc.maps].map(([id, v]) => [id, { ...v }])), proc.tracker.clone());
        return;
      }
      case 'exit': r.measured = false; return;
      case 'mprotect': return mm.mprotect(...range(), protMask(st.prot));
      case 'madvise': return mm.madvise(...range(), MADV[st.advice]);
      case 'mlock': case 'mlock2':
        return st.onfault ? mm.mlock2(...range(), MLOCK_ONFAULT) : mm.mlock(...range());
      case 'munlock': return mm.munlock(...range());
      case 'mlockall':
        if (/current/.test(st.flags)) proc.harnessLocked = true; // whether or not the call fails
        return mm.mlockall(mclMask(st.flags));
      case 'munlockall':
        // The harness first unlocks its own VMAs if it had locked them (harness_lock(0)): each
        // munlock walk ends with lru_add_drain (fuzz seed 858434706 case 6312).
        if (proc.harnessLocked) mmu.lruAddDrain();
        proc.harnessLocked = false;
        return mm.munlockall();
      // fsync(2) of the mapping fd: every dirty page written back, dirty shared PTEs cleaned
      // (on a DAX file the dirty DAX entries, R7.2); nothing on shmem.
      case 'fsync': file.sync(); return;
      case 'msync': return mm.msync(...range(), MS[st.sync]);
      case 'truncate': return file.truncate(st.bytes ?? st.pages * PAGE_SIZE);
      case 'fadvise': {
        const last = st.pages ? st.from + st.pages - 1 : Math.max(0, Math.ceil(file.size / PAGE_SIZE) - 1);
        // DONTNEED: write back, then drop the unmapped clean pages; WILLNEED: read the range
        // in (order-0, no readahead marker: force_page_cache_ra). The others only change the
        // fd's readahead state, and the mappings use their own fd.
        // A range wholly past EOF does nothing.
        if (st.advice === 'dontneed' && last >= st.from) { syncRange(file, st.from, last); file.evict(st.from, last); }
        if (st.advice === 'willneed') file.prime(st.from, Math.max(0, Math.min(last, Math.ceil(file.size / PAGE_SIZE) - 1) - st.from + 1), { willneed: true });
        return;
      }
      case 'evict': file.sync(); file.evict(); return;
      case 'cache': file.prime(st.from, st.to - st.from + 1); return;
      case 'pwrite': file.pwrite(st.page * PAGE_SIZE + st.offset, Uint8Array.of(st.value)); return;
      case 'pread': {
        const b = file.pread(st.page * PAGE_SIZE + st.offset, 1);
        r.value = b.length === 1 ? b[0] : null;
        return;
      }
      case 'clearRefs': mm.clearSoftDirty(); r.measured = false; return;
      case 'nop': return;
      default: throw new Error(`${norm.name}: op ${st.op} has no emulator mapping`);
    }
  }

  // File ops on a DAX file: no page cache to fill or drop; read(2)/write(2) copy straight
  // to and from persistent memory (dax_iomap_rw), visible at once through every mapping.
  function daxFileOp(st, r) {
    const at = st.page * PAGE_SIZE + st.offset;
    if (st.op === 'pwrite') {
      if (at + 1 > file.size) file.truncate(at + 1);
      file.write(at, Uint8Array.of(st.value));
    } else if (st.op === 'pread') {
      r.value = at < file.size ? file.read(at, 1)[0] : null;
    }
  }
}

// ------------------------------------------------------------------ golden data and deltas
/** Golden dir names, newest kernel first (version order). */
export function goldenKernels() {
  if (!existsSync(GOLDEN_DIR)) return [];
  return readdirSync(GOLDEN_DIR)
    .filter((d) => existsSync(join(GOLDEN_DIR, d, 'profile.json')))
    .sort((a, b) => b.localeCompare(a, 'en', { numeric: true }));
}

/** The golden results to check against: CONFORMANCE_KERNEL, else this host's release, else the newest. */
export function pickGoldenKernel(want = process.env.CONFORMANCE_KERNEL) {
  const all = goldenKernels();
  if (want) {
    if (!all.includes(want)) throw new Error(`no golden results for kernel ${want} (recorded: ${all.join(', ') || 'none'})`);
    return want;
  }
  if (all.includes(release())) return release();
  if (!all.length) throw new Error(`no golden results in ${GOLDEN_DIR}`);
  return all[0];
}

/** The first golden dir whose profile stands for `live` (lib/kernel.mjs profileDiff), or null. */
export function goldenForProfile(live) {
  for (const k of goldenKernels()) {
    const p = JSON.parse(readFileSync(join(GOLDEN_DIR, k, 'profile.json'), 'utf8'));
    if (!profileDiff(p, live).length) return k;
  }
  return null;
}

export const EXPECTED_FILE = 'expected-mismatches.json';

/**
 * A golden dir's list of known emulator-vs-kernel differences (golden/<dir>/expected-mismatches.json):
 * behaviour of that kernel the emulator does not model yet. Each entry: { scenario, step,
 * field, map?, pages?: [from, to], reason, issue } — the reason and the issue item that will
 * model it, so the list shrinks. Returns Map(scenario → entries). Throws on a malformed entry.
 */
export function expectedMismatches(kernel) {
  const f = join(GOLDEN_DIR, kernel, EXPECTED_FILE);
  const out = new Map();
  if (!existsSync(f)) return out;
  const doc = JSON.parse(readFileSync(f, 'utf8'));
  (doc.mismatches ?? []).forEach((d, i) => {
    const bad = (msg) => { throw new Error(`${kernel}/${EXPECTED_FILE}[${i}]: ${msg}`); };
    if (typeof d.scenario !== 'string') bad('scenario is required');
    if (!Number.isInteger(d.step)) bad('step must be an integer');
    if (!DELTA_FIELDS.includes(d.field)) bad(`field must be one of ${DELTA_FIELDS.join(' ')}`);
    if (typeof d.reason !== 'string' || d.reason.length < 20) bad('reason must say why');
    if (typeof d.issue !== 'string' || !d.issue) bad('issue must name the issue item that will model it');
    if (!out.has(d.scenario)) out.set(d.scenario, []);
    out.get(d.scenario).push(d);
  });
  return out;
}

export function loadGolden(kernel) {
  const dir = join(GOLDEN_DIR, kernel);
  const profile = JSON.parse(readFileSync(join(dir, 'profile.json'), 'utf8'));
  const golden = (name) => {
    const f = join(dir, `${name}.json`);
    return existsSync(f) ? JSON.parse(readFileSync(f, 'utf8')) : null;
  };
  return { dir, profile, golden };
}

const DELTA_FIELDS = ['minflt', 'majflt', 'signal', 'sigCode', 'sigPage', 'errno', 'value', 'vmlck', 'referenced', 'state', 'pfn', 'softDirty', 'mlocked'];

/**
 * A scenario's `expectedDeltas`: [{ step, field, map?, pages?: [from, to], kernel?, emulator?,
 * rule, reason, kernels? }] — places where wasm-mmu differs from this kernel on purpose.
 * `kernels` (optional) limits a delta to golden data of those kernel releases. Throws on a
 * malformed entry.
 */
export function expectedDeltas(norm, kernel) {
  const list = norm.expectedDeltas ?? [];
  if (!Array.isArray(list)) throw new Error(`${norm.name}: expectedDeltas must be an array`);
  return list.filter((d, i) => {
    const bad = (msg) => { throw new Error(`${norm.name}: expectedDeltas[${i}]: ${msg}`); };
    if (!Number.isInteger(d.step) || !norm.steps[d.step]?.expect) bad('step must be a step with an expect');
    if (!DELTA_FIELDS.includes(d.field)) bad(`field must be one of ${DELTA_FIELDS.join(' ')}`);
    if (['state', 'pfn', 'softDirty', 'mlocked'].includes(d.field) && typeof d.map !== 'string') bad('a per-page field needs map');
    if (d.pages !== undefined && !(Array.isArray(d.pages) && d.pages.length === 2 && d.pages[0] <= d.pages[1])) bad('pages must be [from, to]');
    if (typeof d.rule !== 'string' || !/^R\d+\.\d+$/.test(d.rule)) bad('rule must be a LINUX-SPEC rule id');
    if (typeof d.reason !== 'string' || d.reason.length < 20) bad('reason must say why');
    return !d.kernels || d.kernels.includes(kernel);
  });
}

function deltaCovers(d, m) {
  if (d.step !== m.step || d.field !== m.field) return false;
  if (d.map !== undefined && d.map !== m.map) return false;
  if (m.page !== undefined && d.pages && (m.page < d.pages[0] || m.page > d.pages[1])) return false;
  if (d.kernel !== undefined && d.kernel !== m.kernel) return false;
  if (d.emulator !== undefined && d.emulator !== m.emulator) return false;
  return true;
}

/**
 * Splits a comparison into what the scenario declared (accepted) and what it did not
 * (unexpected); `unused` lists declared deltas that matched no mismatch (stale: the emulator
 * or the golden data changed, the delta should go).
 */
export function applyDeltas(mismatches, deltas) {
  const accepted = [], unexpected = [];
  const used = new Set();
  for (const m of mismatches) {
    const i = deltas.findIndex((d) => deltaCovers(d, m));
    if (i < 0) unexpected.push(m);
    else { accepted.push(m); used.add(i); }
  }
  return { accepted, unexpected, unused: deltas.filter((_, i) => !used.has(i)) };
}

const emulatorCache = new WeakMap();
/**
 * runOnEmulator, remembered per (api, scenario, emulator configuration): golden dirs whose
 * profiles configure wasm-mmu identically (e.g. Debian 6.1, 6.12 and 7.3 on x86-64 at one
 * read_ahead_kb) share one run.
 */
export async function runOnEmulatorCached(norm, { profile, api }) {
  api ??= await defaultApi();
  if (!emulatorCache.has(api)) emulatorCache.set(api, new Map());
  const cache = emulatorCache.get(api);
  // isDax: a DAX profile opens the file as an XIP file under otherwise equal options.
  const key = JSON.stringify([norm.name, scenarioHash(norm), emulatorOptions(profile, norm), dirtyAccounting(profile), isDax(profile)]);
  if (!cache.has(key)) cache.set(key, await runOnEmulator(norm, { profile, api }));
  return { ...cache.get(key), kernel: profile.release };
}

/**
 * Checks one scenario against one kernel's golden document. Returns a table row plus details.
 * known: that golden dir's expected mismatches of this scenario (expectedMismatches()).
 */
export async function checkScenario(norm, { profile, golden, api, kernel, known = [] }) {
  const row = { scenario: norm.name, rules: norm.rules };
  if (!golden) return { ...row, skipped: `no golden result for ${kernel}` };
  if (golden.skipped) return { ...row, skipped: golden.skipped };
  const unmet = unmetRequirement(norm, profile);
  if (unmet) return { ...row, skipped: unmet };
  const emu = await runOnEmulatorCached(norm, { profile, api });
  const all = compareObservations(golden, emu, { unstable: golden.unstable ?? [] });
  const { accepted, unexpected, unused } = applyDeltas(all, [...expectedDeltas(norm, kernel), ...known]);
  return { ...row, mismatches: unexpected, accepted, unused, emulator: emu };
}

/** Text for a failed check: the unexpected mismatches and any stale delta. */
export function describeFailure(r) {
  return [
    ...summarizeMismatches(r.mismatches ?? []),
    ...(r.unused ?? []).map((d) => `declared delta did not occur (remove it): step ${d.step} ${d.field}${d.map ? ` ${d.map}` : ''}`),
  ];
}

// ------------------------------------------------------------------ CLI: npm run conformance
/** Checks every scenario against one golden dir. */
export async function checkKernel(kernel, scenarios, api) {
  const { profile, golden } = loadGolden(kernel);
  const known = expectedMismatches(kernel);
  const rows = [];
  for (const s of scenarios) rows.push(await checkScenario(s, { profile, golden: golden(s.name), kernel, api, known: known.get(s.name) ?? [] }));
  return { kernel, profile, rows };
}

const cell = (r) => (r.skipped ? 'skip' : r.mismatches.length || r.unused.length ? 'FAIL' : r.accepted.length ? `known ${r.accepted.length}` : 'pass');

/** One row per scenario, one column per golden dir (kernel). */
export function formatMatrix(results) {
  const names = results[0]?.rows.map((r) => r.scenario) ?? [];
  const heads = results.map((x) => x.kernel);
  const w0 = Math.max(8, ...names.map((n) => n.length));
  const ws = heads.map((h) => Math.max(7, h.length));
  const line = (first, cells) => `${first.padEnd(w0)} | ${cells.map((c, i) => String(c).padEnd(ws[i])).join(' | ')}`;
  const out = [line('scenario', heads), `${'-'.repeat(w0)}-|-${ws.map((w) => '-'.repeat(w)).join('-|-')}`];
  names.forEach((n, i) => out.push(line(n, results.map((x) => cell(x.rows[i])))));
  const count = (x, c) => x.rows.filter((r) => cell(r).startsWith(c)).length;
  out.push(line('pass', results.map((x) => count(x, 'pass'))));
  out.push(line('known', results.map((x) => count(x, 'known'))));
  out.push(line('FAIL', results.map((x) => count(x, 'FAIL'))));
  out.push(line('skip', results.map((x) => count(x, 'skip'))));
  return out.join('\n');
}

function detailTable(x) {
  return formatTable(x.rows.map((r) => ({ ...r, mismatches: r.skipped ? undefined : [
    ...r.mismatches,
    ...r.unused.map((d) => ({ step: d.step, in: 'parent', op: `stale ${d.issue ? 'expected mismatch' : 'delta'}: ${d.field}`, field: 'expected', kernel: 'no mismatch', emulator: 'declared' })),
  ] })));
}

async function main(argv) {
  let kernels = null;
  let json = false;
  const only = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--kernel') (kernels ??= []).push(argv[++i]);
    else if (argv[i] === '--json') json = true;
    else only.push(argv[i]);
  }
  kernels ??= process.env.CONFORMANCE_KERNEL ? [process.env.CONFORMANCE_KERNEL] : goldenKernels();
  for (const k of kernels) pickGoldenKernel(k);
  const scenarios = loadScenarios().filter((s) => !only.length || only.some((o) => s.name.includes(o)));
  const t0 = Date.now();
  const results = [];
  for (const k of kernels) results.push(await checkKernel(k, scenarios));
  if (json) {
    // Every mismatch, for writing expected-mismatches.json (scripts/kernels/README.md).
    console.log(JSON.stringify(results.map((x) => ({ kernel: x.kernel, rows: x.rows.filter((r) => !r.skipped).map((r) => ({ scenario: r.scenario, mismatches: [...r.mismatches, ...r.accepted], unused: r.unused })) }))));
    return;
  }
  if (results.length === 1) {
    const x = results[0];
    console.log(`wasm-mmu vs golden kernel results of ${x.kernel} (zeroPage=${x.profile.zeroPage} faultAroundBytes=${x.profile.faultAroundBytes} readAheadKb=${x.profile.readAheadKb} fs=${x.profile.fileSystem})`);
    console.log(detailTable(x));
  } else {
    console.log(formatMatrix(results));
    for (const x of results) {
      const bad = x.rows.filter((r) => !r.skipped && (r.mismatches.length || r.unused.length));
      if (!bad.length) continue;
      console.log(`\n${x.kernel}: unexpected mismatches (not in golden/${x.kernel}/${EXPECTED_FILE})`);
      for (const r of bad) for (const l of describeFailure(r)) console.log(`  ${r.scenario}: ${l}`);
    }
  }
  const known = results.flatMap((x) => x.rows.filter((r) => r.accepted?.length).map((r) => [x.kernel, r]));
  if (known.length && results.length === 1) {
    console.log(`\nknown mismatches (expectedDeltas / ${EXPECTED_FILE}):`);
    for (const [, r] of known) for (const line of summarizeMismatches(r.accepted)) console.log(`  ${r.scenario}: ${line}`);
  }
  console.log(`(${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  process.exitCode = results.some((x) => x.rows.some((r) => r.mismatches?.length || r.unused?.length)) ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(e);
    process.exit(2);
  });
}
