// The kernel half of conformance: build kernel/scenario.c, run a scenario on the host kernel,
// parse what it printed into an observation document, detect the kernel's profile.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync, openSync, readSync, closeSync, statSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { tmpdir, release, platform } from 'node:os';
import { join } from 'node:path';
import { CONFORMANCE_DIR, toLines } from './scenario.mjs';

export const HARNESS_SOURCE = join(CONFORMANCE_DIR, 'kernel', 'scenario.c');

/**
 * Compiles the harness into a fresh temp dir. Returns { bin, dir, cleanup() }.
 * Throws with the compiler's output when `cc` fails.
 */
export function buildHarness() {
  const dir = mkdtempSync(join(tmpdir(), 'wasm-mmu-conformance-'));
  const bin = join(dir, 'scenario');
  const r = spawnSync('cc', ['-O2', '-Wall', '-Wextra', '-o', bin, HARNESS_SOURCE], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`cc failed: ${r.error?.message ?? r.stderr}`);
  }
  return { bin, dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const num = (v) => (v === undefined ? undefined : Number(v));

function parseKv(line) {
  const o = {};
  for (const tok of line.trim().split(/\s+/).slice(1)) {
    const eq = tok.indexOf('=');
    if (eq > 0) o[tok.slice(0, eq)] = tok.slice(eq + 1);
  }
  return o;
}

/**
 * Parses the harness's output for a canonical scenario into
 * { scenario, source: 'kernel', kernel, observations: [...] } (shape: README.md).
 */
export function parseOutput(norm, text, kernel = release()) {
  const idOfSlot = Object.fromEntries(Object.entries(norm.mapSlots).map(([id, slot]) => [slot, id]));
  const observations = [];
  let begin = null;
  let ended = false;
  for (const line of text.split('\n')) {
    if (!line) continue;
    const kind = line.split(' ', 1)[0];
    const kv = parseKv(line);
    if (kind === 'error') throw new Error(`harness error in ${norm.name}: ${line.slice(6)}`);
    if (kind === 'begin') begin = kv;
    else if (kind === 'end') ended = true;
    else if (kind === 'obs') {
      const step = num(kv.step);
      const st = norm.steps[step];
      const sig = kv.sig === 'none' ? null : kv.sig;
      const o = {
        step,
        op: st.op,
        in: kv.who,
        minflt: kv.minflt === '-1' ? null : num(kv.minflt),
        majflt: kv.majflt === '-1' ? null : num(kv.majflt),
        signal: sig,
        sigCode: sig ? kv.code : null,
        sigPage: sig && kv.sigpage !== '-1' ? num(kv.sigpage) : null,
        errno: kv.errno === '0' ? null : kv.errno,
        value: kv.value === '-1' ? null : num(kv.value),
      };
      if (st.expect.vmlck) o.vmlck = num(kv.vmlck);
      o.maps = {};
      observations.push(o);
    } else if (kind === 'map') {
      const o = observations[observations.length - 1];
      if (!o || o.step !== num(kv.step)) throw new Error(`map line without its obs line: ${line}`);
      if (kv.nopfn) throw new Error('pagemap shows present pages without PFNs (not root?)');
      const m = { state: kv.state, pfn: kv.pfn };
      if (kv.sd !== undefined) m.softDirty = kv.sd;
      if (kv.mlk !== undefined) m.mlocked = kv.mlk;
      if (kv.ref !== undefined) m.referenced = num(kv.ref);
      o.maps[idOfSlot[num(kv.id)]] = m;
    } else {
      throw new Error(`unexpected harness output: ${line}`);
    }
  }
  if (!begin || !ended) throw new Error(`harness output incomplete for ${norm.name}:\n${text.slice(-2000)}`);
  return { scenario: norm.name, source: 'kernel', kernel, observations };
}

/** Runs one canonical scenario on the host kernel; returns the observation document. */
export function runOnKernel(harness, norm) {
  const r = spawnSync(harness.bin, [harness.dir], { input: toLines(norm), encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    const err = (r.stdout ?? '').split('\n').find((l) => l.startsWith('error ')) ?? r.stderr;
    throw new Error(`harness failed on ${norm.name} (status ${r.status}): ${err}`);
  }
  return parseOutput(norm, r.stdout);
}

/**
 * Run a scenario on the live kernel until a run passes `agrees(observations)`, at most `tries`
 * times; returns that run, or the last one. On a loaded machine the kernel's own results vary
 * in I/O-timing fields the recording did not see vary (a readahead window still in flight when
 * the next step looks at it): like the fuzz tester, a live comparison re-runs the kernel on a
 * disagreement and fails only when the kernel repeats it.
 */
export function runOnKernelSettled(harness, norm, agrees, tries = 3) {
  let obs = runOnKernel(harness, norm);
  for (let i = 1; i < tries && !agrees(obs); i++) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200 * i); // let a burst of other I/O pass
    obs = runOnKernel(harness, norm);
  }
  return obs;
}

function readText(path) {
  try { return readFileSync(path, 'utf8').trim(); } catch { return null; }
}

const CONFIG_NAMES = ['CONFIG_MEM_SOFT_DIRTY', 'CONFIG_TRANSPARENT_HUGEPAGE', 'CONFIG_PT_RECLAIM',
  'CONFIG_PTE_MARKER_UFFD_WP', 'CONFIG_KSM', 'CONFIG_NUMA_BALANCING', 'CONFIG_SWAP', 'CONFIG_FS_DAX'];

function hostConfigText() {
  try { return gunzipSync(readFileSync('/proc/config.gz')).toString('utf8'); } catch { /* not built in */ }
  return readText(`/boot/config-${release()}`);
}

function kernelConfig(names, text) {
  if (text === null || text === undefined) return null;
  const out = {};
  for (const n of names) {
    const m = text.match(new RegExp(`^(?:${n}=(.*)|# ${n} is not set)$`, 'm'));
    out[n] = m ? m[1] ?? 'n' : 'absent';
  }
  return out;
}

/** read_ahead_kb of the block device holding `dir` (cold-cache scenarios depend on it). */
function readAheadKb(dir) {
  try {
    const dev = statSync(dir).dev;
    const major = Math.floor(dev / 256) & 0xfff;
    const minor = (dev & 0xff) | (Math.floor(dev / 4096) & 0xfff00);
    for (const p of [`/sys/dev/block/${major}:${minor}/queue/read_ahead_kb`, `/sys/dev/block/${major}:${minor}/../queue/read_ahead_kb`]) {
      const v = readText(p);
      if (v !== null) return Number(v);
    }
  } catch { /* not a block device (tmpfs, overlay) */ }
  return null;
}

const selected = (s) => (s ? (s.match(/\[([^\]]+)\]/)?.[1] ?? s) : null);

/** What this kernel is like: the facts the golden results depend on. */
export function detectProfile(harness) {
  const r = spawnSync(harness.bin, ['--profile', harness.dir], { encoding: 'utf8', timeout: 30_000 });
  if (r.error || r.status !== 0) throw new Error(`profile failed: ${r.error?.message ?? r.stdout + r.stderr}`);
  return profileFromFacts({
    harnessProfile: r.stdout,
    cmdline: readText('/proc/cmdline') ?? '',
    readAheadKb: readAheadKb(harness.dir),
    thp: readText('/sys/kernel/mm/transparent_hugepage/enabled'),
    thpShmem: readText('/sys/kernel/mm/transparent_hugepage/shmem_enabled'),
    swaps: readText('/proc/swaps') ?? '',
    configText: hostConfigText(),
  });
}

/** Kernel version as a comparable number: 6.12.3 → 612, 7.3 → 703. */
export const kernelVersion = (rel) => {
  const m = /^(\d+)\.(\d+)/.exec(rel ?? '');
  return m ? Number(m[1]) * 100 + Number(m[2]) : 0;
};

/**
 * A profile from facts gathered on the machine under test (this host, or a QEMU guest:
 * scripts/kernels/). harnessProfile: the output of `scenario --profile`; the others are the
 * texts of the /proc and /sys files named in detectProfile.
 */
export function profileFromFacts({ harnessProfile, cmdline = '', readAheadKb = null, thp = null, thpShmem = null, swaps = '', configText = null }) {
  const p = {};
  for (const line of harnessProfile.split('\n')) {
    const m = line.match(/^profile (\w+)=(.*)$/);
    if (!m) continue;
    p[m[1]] = /^-?\d+$/.test(m[2]) ? Number(m[2]) : m[2];
  }
  return {
    release: p.release,
    machine: p.machine,
    pageSize: p.pageSize,
    fileSystem: p.fileSystem,
    zeroPage: p.zeroPage === 1,
    anonReadFault: p.anonReadFault,
    softDirty: p.softDirty === 1,
    pagemapPfn: p.pagemapPfn === 1,
    kpageflags: p.kpageflags === 1,
    faultAroundBytes: p.faultAroundBytes,
    faultAroundSource: p.faultAroundSource,
    readAheadKb,
    thp: selected(thp),
    thpShmem: selected(thpShmem),
    swap: swaps.trim().split('\n').length > 1,
    // Version differences (issue 15): MADV_GUARD_INSTALL from 6.13 (probed); whether a
    // MADV_POPULATE_READ whose fault dropped the mmap lock for I/O counts major (6.12+,
    // madv-populate-read-cold) or minor (6.1); arm64 with hardware access flags installs
    // fault-around PTEs old (arch_wants_old_prefaulted_pte).
    guardRegions: p.guardRegions === undefined ? kernelVersion(p.release) >= 613 : p.guardRegions === 1,
    populateAccounting: kernelVersion(p.release) >= 612 ? 'retry-major' : 'minor',
    // A user file fault that dropped the lock for I/O on a page it found (readahead marker,
    // read_folio) counts major before 6.7 (mmap lock only: every retry carries
    // FAULT_FLAG_TRIED), minor from 6.7 (per-VMA locks; TRIED only after a major result).
    userFaultAccounting: kernelVersion(p.release) >= 607 ? 'vma-lock' : 'mmap-lock',
    // filemap_map_pages installs no PTE table for a first ready folio reaching i_size
    // ("SIGBUS semantics" fix: 6.18, backported to 6.12.y and 6.17.y only; Debian 6.12.118
    // has it, 6.1.0-57 not).
    faultAroundIsize: kernelVersion(p.release) >= 618 || [612, 617].includes(kernelVersion(p.release)),
    // ext4's ftruncate growing from inside a block zeroes (and caches) the old EOF page
    // (6.13, stable 6.6.y and 6.12.y; Debian 6.1.0-57 does not).
    truncateExtendZeroesTail: kernelVersion(p.release) >= 606,
    // fs-DAX pages are refcounted folios from 6.15 (pagemap file bit, smaps Rss/Referenced):
    // only observable on a DAX profile (fileSystem ext4-dax), so derived, not a PROFILE_KEY.
    daxFolios: kernelVersion(p.release) >= 615,
    prefaultOld: p.machine === 'aarch64',
    // Readahead (R2.9): 7.x places no PG_readahead marker in a window that reaches EOF (7.3
    // recorded, 6.18 not; the first 7.x release with it is not pinned); arm64 6.16+ reads a
    // VM_EXEC miss in 64 KiB folios from the aligned block (exec_folio_order, the same patch
    // as the VM_EXEC read-forward).
    readaheadEofNoMarker: kernelVersion(p.release) >= 700,
    execFolioOrder: p.machine === 'aarch64' && kernelVersion(p.release) >= 616 ? 4 : 0,
    cmdline: cmdline.split(/\s+/).filter((w) => /zero_page|transparent_hugepage|numa|ksm|memmap/i.test(w)),
    config: kernelConfig(CONFIG_NAMES, configText),
  };
}

/**
 * Profile fields that must agree for golden results to stand for a live kernel (issue 15:
 * golden dirs are chosen by profile, not by exact `uname -r`): these, and the kernel series
 * (major.minor of `release`), since behaviour not captured by a key still changes between
 * series (e.g. 7.x's large folios in ext4's page cache).
 */
export const PROFILE_KEYS = ['machine', 'pageSize', 'fileSystem', 'zeroPage', 'softDirty', 'faultAroundBytes', 'readAheadKb',
  'swap', 'guardRegions', 'populateAccounting', 'userFaultAccounting', 'faultAroundIsize',
  'truncateExtendZeroesTail', 'prefaultOld'];

/** The keys (plus `series`) on which two profiles differ; [] = the golden one stands for the live one. */
export function profileDiff(golden, live) {
  const diff = PROFILE_KEYS.filter((k) => (golden[k] ?? null) !== (live[k] ?? null));
  if (kernelVersion(golden.release) !== kernelVersion(live.release)) diff.unshift('series');
  return diff;
}

/** A scenario that needs file pages out of the page cache (impossible on tmpfs). */
export function needsDroppableCache(norm) {
  if (norm.file && !norm.file.cached) return true;
  return norm.steps.some((st) => st.op === 'evict' || st.op === 'cache' || (st.op === 'fadvise' && st.advice === 'dontneed'));
}

/** The scenario file is DAX (ext4 -o dax on persistent memory: no page cache, seeds 002, 004). */
export const isDax = (profile) => /-dax$/.test(profile?.fileSystem ?? '');

/** Does this profile satisfy a scenario's `requires`? Returns null or the reason it does not. */
export function unmetRequirement(norm, profile) {
  for (const r of norm.requires) {
    if (r === 'softDirty' && !profile.softDirty) return 'needs soft-dirty (CONFIG_MEM_SOFT_DIRTY)';
    if (r === 'zeroPage' && !profile.zeroPage) return 'needs a shared zero page';
    if (r === 'noZeroPage' && profile.zeroPage) return 'needs a kernel without a shared zero page';
    if (r === 'swap' && !profile.swap) return 'needs a swap device';
    if (r === 'dax' && !isDax(profile)) return 'needs a DAX file system (ext4 -o dax on pmem)';
  }
  if (/^(tmpfs|shmem)$/.test(profile.fileSystem ?? '') && needsDroppableCache(norm)) {
    return 'tmpfs: the file\'s pages cannot leave the page cache (cold-cache or eviction scenario)';
  }
  return null;
}

/**
 * Can this host run scenarios on its kernel? Returns { ok: true } or { ok: false, reason }.
 * Checks: Linux, /proc/self/pagemap readable with PFNs (root), `cc` present.
 */
export function hostCapability() {
  if (platform() !== 'linux') return { ok: false, reason: `not Linux (platform ${platform()})` };
  try {
    accessSync('/proc/self/pagemap', constants.R_OK);
    const fd = openSync('/proc/self/pagemap', 'r');
    try { readSync(fd, Buffer.alloc(8), 0, 8, 0); } finally { closeSync(fd); }
  } catch (e) {
    return { ok: false, reason: `/proc/self/pagemap not readable (${e.code ?? e.message})` };
  }
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    return { ok: false, reason: 'not root: pagemap hides PFNs without CAP_SYS_ADMIN' };
  }
  const cc = spawnSync('cc', ['--version'], { encoding: 'utf8' });
  if (cc.error || cc.status !== 0) return { ok: false, reason: 'no C compiler (`cc`) on PATH' };
  if (!existsSync(HARNESS_SOURCE)) return { ok: false, reason: `missing ${HARNESS_SOURCE}` };
  return { ok: true, reason: null };
}
