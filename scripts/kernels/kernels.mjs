// The Debian kernels the conformance suite is recorded on (issue 15), and how to get them:
// `apt-get download` of exact package versions into a cache, `dpkg-deb -x`, then locate
// vmlinuz, the module tree and the config. Nothing here installs a kernel on the host.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const CACHE = process.env.WASM_MMU_KERNEL_CACHE ?? join(homedir(), '.cache', 'wasm-mmu-kernels');

const bpo = '7.3.4-1~bpo13+1';
/**
 * name: short id (--kernels); arch: Debian architecture; debs: `apt-get download` arguments
 * (package[:arch]=version). 6.1 and 6.12 are bookworm(-security); 7.x is trixie-backports
 * (7.x splits the image into linux-binary + linux-modules). abi: the part of the package
 * names that names the kernel build; abiPattern: any build of the same major.minor (what
 * newestOfSeries looks for when the pinned build has left the archive).
 */
export const KERNELS = [
  { name: '6.1-amd64', arch: 'amd64', abi: '6.1.0-57', abiPattern: '6\\.1\\.0-[0-9]+', debs: ['linux-image-6.1.0-57-amd64-unsigned=6.1.192-3'] },
  { name: '6.12-amd64', arch: 'amd64', abi: '6.12.118+deb12', abiPattern: '6\\.12\\.[0-9]+\\+deb12', debs: ['linux-image-6.12.118+deb12-amd64-unsigned=6.12.118-1~deb12u1'] },
  { name: '7.3-amd64', arch: 'amd64', abi: '7.3.4+deb13', abiPattern: '7\\.3\\.[0-9]+\\+deb13', debs: [`linux-binary-7.3.4+deb13-amd64=${bpo}`, `linux-modules-7.3.4+deb13-amd64=${bpo}`] },
  { name: '6.12-arm64', arch: 'arm64', abi: '6.12.118+deb12', abiPattern: '6\\.12\\.[0-9]+\\+deb12', debs: ['linux-image-6.12.118+deb12-arm64-unsigned:arm64=6.12.118-1~deb12u1'] },
  { name: '7.3-arm64', arch: 'arm64', abi: '7.3.4+deb13', abiPattern: '7\\.3\\.[0-9]+\\+deb13', debs: [`linux-binary-7.3.4+deb13-arm64:arm64=${bpo}`, `linux-modules-7.3.4+deb13-arm64:arm64=${bpo}`] },
];

/** busybox (static) per architecture, the guest's /init shell. */
export const BUSYBOX = { amd64: 'busybox-static:amd64', arm64: 'busybox-static:arm64' };

/** Host tools and the Debian packages that provide them (stated up front; --install runs apt). */
export const TOOLS = [
  ['qemu-system-x86_64', 'qemu-system-x86'],
  ['qemu-system-aarch64', 'qemu-system-arm'],
  ['cpio', 'cpio'],
  ['mkfs.ext4', 'e2fsprogs'],
  ['mkswap', 'util-linux'],
  ['xz', 'xz-utils'],
  ['gzip', 'gzip'],
  ['gcc', 'gcc'],
  ['aarch64-linux-gnu-gcc', 'gcc-aarch64-linux-gnu libc6-dev-arm64-cross'],
  ['dpkg-deb', 'dpkg'],
  ['apt-get', 'apt'],
];

/** Apt configuration the 7.x kernels need: trixie-backports, pinned so nothing installs from it. */
export const TRIXIE_SOURCES = `Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie trixie-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`;
export const TRIXIE_PIN = `# Only for \`apt-get download\` of kernel packages (wasm-mmu conformance under QEMU): never
# install or upgrade anything from trixie on this host.
Package: *
Pin: release n=trixie
Pin-Priority: -1

Package: *
Pin: release n=trixie-backports
Pin-Priority: -1
`;

const sh = (cmd, args, opts = {}) => spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26, ...opts });
export const have = (tool) => sh('sh', ['-c', `command -v ${tool}`]).status === 0;

/** The .deb files in `dir` whose names start with the package name of an apt-get download argument. */
function debFile(dir, spec) {
  const [pkg, arch] = spec.split('=')[0].split(':');
  const ver = spec.includes('=') ? spec.split('=')[1].replace(/:/g, '%3a') : null;
  if (!existsSync(dir)) return null;
  const f = readdirSync(dir).find((n) => n.startsWith(`${pkg}_`) && (!ver || n.includes(`_${ver}_`)) &&
    n.endsWith(arch ? `_${arch}.deb` : '.deb'));
  return f ? join(dir, f) : null;
}

/** Downloads (once) the packages; returns their .deb paths. Throws with apt's message. */
export function download(specs) {
  const dir = join(CACHE, 'debs');
  mkdirSync(dir, { recursive: true });
  return specs.map((spec) => {
    let f = debFile(dir, spec);
    if (f) return f;
    console.log(`  apt-get download ${spec}`);
    const r = sh('apt-get', ['download', spec], { cwd: dir });
    f = debFile(dir, spec);
    if (!f) throw new Error(`apt-get download ${spec} failed:\n${r.stderr || r.stdout}` +
      (spec.includes('bpo') ? '\n(7.x kernels need trixie-backports in the apt sources: run with --install, or see scripts/kernels/README.md)' : ''));
    return f;
  });
}

/** Extracts (once) a set of .debs into one tree under the cache; returns its path. */
export function extract(name, debs) {
  const dir = join(CACHE, 'x', name);
  if (existsSync(join(dir, '.done'))) return dir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const d of debs) {
    const r = sh('dpkg-deb', ['-x', d, dir]);
    if (r.status !== 0) throw new Error(`dpkg-deb -x ${d}: ${r.stderr}`);
  }
  sh('touch', [join(dir, '.done')]);
  return dir;
}

/**
 * Finds the kernel in an extracted tree: { release, vmlinuz, modulesDir, configText, builtin }.
 * 6.x packages: boot/vmlinuz-<rel>, lib/modules/<rel>; 7.x: usr/lib/modules/<rel>/vmlinuz.
 */
export function locate(tree) {
  for (const base of ['lib/modules', 'usr/lib/modules']) {
    const mdir = join(tree, base);
    if (!existsSync(mdir)) continue;
    for (const rel of readdirSync(mdir)) {
      const modulesDir = join(mdir, rel);
      const vmlinuz = [join(tree, 'boot', `vmlinuz-${rel}`), join(modulesDir, 'vmlinuz')].find(existsSync);
      if (!vmlinuz) continue;
      const cfg = [join(tree, 'boot', `config-${rel}`), join(modulesDir, 'config')].find(existsSync);
      const bi = join(modulesDir, 'modules.builtin');
      return {
        release: rel, vmlinuz, modulesDir,
        configText: cfg ? readFileSync(cfg, 'utf8') : null,
        builtin: existsSync(bi) ? new Set(readFileSync(bi, 'utf8').split('\n').map((l) => l.split('/').pop().replace(/\.ko$/, '').replace(/-/g, '_'))) : null,
      };
    }
  }
  throw new Error(`no kernel found in ${tree}`);
}

/** Index of a module tree: module name (with _) → file path. */
function moduleIndex(modulesDir) {
  const idx = new Map();
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.ko(\.xz|\.zst)?$/.test(e.name)) idx.set(e.name.replace(/\.ko(\.xz|\.zst)?$/, '').replace(/-/g, '_'), p);
    }
  };
  walk(join(modulesDir, 'kernel'));
  return idx;
}

/** The bytes of a module file, decompressed (6.12+ ship .ko.xz; insmod in busybox cannot unpack). */
export function moduleBytes(path) {
  if (path.endsWith('.xz')) return sh('xz', ['-dc', path], { encoding: 'buffer' }).stdout;
  if (path.endsWith('.zst')) return sh('zstd', ['-dc', path], { encoding: 'buffer' }).stdout;
  return readFileSync(path);
}

/** `depends=` of a module, read from its .modinfo strings (no kmod needed on the host). */
function moduleDepends(bytes) {
  const m = /\0depends=([^\0]*)\0/.exec(bytes.toString('latin1'));
  return m && m[1] ? m[1].split(',').map((n) => n.replace(/-/g, '_')) : [];
}

/**
 * The modules to insmod, in dependency order, for the wanted names (those built in or absent
 * are left out: there is no modprobe in the guest). Returns [{ name, bytes }].
 */
export function resolveModules(kernel, wanted) {
  const idx = moduleIndex(kernel.modulesDir);
  const out = [];
  const seen = new Set();
  const visit = (name) => {
    if (seen.has(name)) return;
    seen.add(name);
    const f = idx.get(name);
    if (!f) return; // built in (or not in this kernel)
    const bytes = moduleBytes(f);
    for (const d of moduleDepends(bytes)) visit(d);
    out.push({ name, bytes });
  };
  for (const w of wanted) visit(w.replace(/-/g, '_'));
  return out;
}

/** dpkg's version order (Debian versions and kernel ABIs such as 6.12.118+deb12). */
export function debVersionCompare(a, b) {
  if (a === b) return 0;
  return sh('dpkg', ['--compare-versions', a, 'lt', b]).status === 0 ? -1 : 1;
}

/**
 * The builds of k's major.minor that apt knows, newest first (an iterator of { abi, debs }), each deb
 * spec with the newest version apt lists for that package (`apt-cache search` + `madison`).
 * Pure parsing in seriesCandidates(); this runs apt.
 */
export function newestOfSeries(k) {
  const names = k.debs.map((spec) => spec.split('=')[0]);
  const [pkg0] = names[0].split(':');
  const esc = (t) => t.replace(/[.+]/g, '\\$&');
  const re = `^${esc(pkg0).replace(esc(k.abi), k.abiPattern)}$`;
  const search = sh('apt-cache', ['search', '--names-only', re]).stdout ?? '';
  const madison = (name) => sh('apt-cache', ['madison', name]).stdout ?? '';
  return seriesCandidates(k, search, madison);
}

/**
 * From `apt-cache search` output (one "package - description" a line) and a madison(name) →
 * text function: the builds other than k's pinned packages, newest ABI first, as { abi, debs }.
 */
export function* seriesCandidates(k, searchText, madison) {
  const [pkg0] = k.debs[0].split('=')[0].split(':');
  const [pre, post] = pkg0.split(k.abi);
  const abis = [...new Set(searchText.split('\n').map((l) => l.split(' - ')[0].trim())
    .filter((n) => n.startsWith(pre) && n.endsWith(post) && n.length > pre.length + post.length)
    .map((n) => n.slice(pre.length, n.length - post.length)))]
    .filter((abi) => new RegExp(`^${k.abiPattern}$`).test(abi))
    .sort((a, b) => debVersionCompare(b, a));
  // A generator: madison runs only for the builds actually tried.
  for (const abi of abis) {
    const debs = [];
    for (const spec of k.debs) {
      const name = spec.split('=')[0].replace(k.abi, abi);
      const versions = madison(name).split('\n').map((l) => l.split('|').map((x) => x.trim()))
        .filter((f) => f.length >= 3 && f[0] === name)
        .map((f) => f[1]);
      if (!versions.length) break;
      versions.sort((a, b) => debVersionCompare(b, a));
      debs.push(`${name}=${versions[0]}`);
    }
    // The pinned build itself only if Debian re-uploaded it under a new version.
    if (debs.length === k.debs.length && debs.join(' ') !== k.debs.join(' ')) yield { abi, debs };
  }
}

/**
 * Downloads, extracts and locates one kernel of KERNELS (plus its busybox). With
 * `fallback`, a pinned build that apt cannot download any more (Debian replaced it) gives way
 * to the newest downloadable build of the same major.minor; the result's `fallback` then
 * says which packages were used instead of which.
 */
export function prepareKernel(k, { fallback = false } = {}) {
  let debs, used = k, note = null;
  try {
    debs = download(k.debs);
  } catch (e) {
    if (!fallback) throw e;
    const first = e.message.split('\n').slice(0, 2).join(' ');
    // Stale package lists would offer builds the mirror no longer has: refresh them first.
    console.log('  apt-get update (the pinned kernel was not downloadable)');
    sh('apt-get', ['update', '-qq']);
    const tried = [];
    const candidates = (function* () { yield { abi: k.abi, debs: k.debs }; yield* newestOfSeries(k); })();
    for (const c of candidates) {
      try {
        debs = download(c.debs);
        if (c.debs === k.debs) break; // the pinned build after all (the lists were stale)
        used = { ...k, name: `${k.name}@${c.abi}`, debs: c.debs };
        note = `pinned ${k.debs.join(' ')} is not downloadable (${first.trim()}); using the newest ${k.name.split('-')[0]} build apt offers: ${c.debs.join(' ')}`;
        break;
      } catch (e2) {
        tried.push(c.debs.join(' '));
      }
    }
    if (!debs) throw new Error(`${e.message}\nno other build of the same major.minor could be downloaded either${tried.length ? ` (tried ${tried.join(', ')})` : ' (apt lists none: run apt-get update)'}`);
  }
  const tree = extract(used.name, debs);
  const bb = extract(`busybox-${k.arch}`, download([BUSYBOX[k.arch]]));
  return { ...used, ...locate(tree), busybox: join(bb, 'bin', 'busybox'), fallback: note };
}
