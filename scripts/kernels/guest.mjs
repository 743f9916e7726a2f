// One QEMU boot of a Debian kernel running conformance scenarios: the static harness, an
// initramfs (busybox /init, the modules the disks need, the scenarios in line format), an
// ext4 disk and a swap disk, the QEMU command line (TCG), and the parse of what the guest
// printed on its serial console. Recipe: /work/shared/TOOLCHAIN.md "Other kernels under QEMU".
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HARNESS_SOURCE } from '../../tests/conformance/lib/kernel.mjs';
import { toLines } from '../../tests/conformance/lib/scenario.mjs';
import { resolveModules } from './kernels.mjs';

const sh = (cmd, args, opts = {}) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26, ...opts });
  if (r.error || r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.error?.message ?? r.stderr}`);
  return r;
};

/** Builds the harness statically for a Debian architecture (cross-compiling for arm64). */
export function buildStaticHarness(arch, outDir) {
  const cc = arch === 'arm64' ? 'aarch64-linux-gnu-gcc' : 'gcc';
  const bin = join(outDir, `scenario-${arch}`);
  sh(cc, ['-O2', '-Wall', '-Wextra', '-static', '-o', bin, HARNESS_SOURCE]);
  return bin;
}

/**
 * A variant is one boot's configuration: fs 'ext4' | 'tmpfs' | 'ext4-dax', readAheadKb (ext4
 * only). The golden dir is <release><suffix>. `dax` (seeds 002, 004; amd64 only): the kernel
 * reserves 64 MiB at 768 MiB as legacy persistent memory (`memmap=64M!768M`, nd_e820 +
 * nd_pmem make it /dev/pmem0); the guest copies a 60 MiB ext4 image (4 KiB blocks, as DAX
 * needs) from /dev/vda onto it and mounts it `-o dax`, so every file is DAX (no page cache).
 */
export const VARIANTS = {
  ra8192: { fs: 'ext4', readAheadKb: 8192, suffix: '' },
  ra128: { fs: 'ext4', readAheadKb: 128, suffix: '-ra128' },
  tmpfs: { fs: 'tmpfs', readAheadKb: null, suffix: '-tmpfs' },
  dax: { fs: 'ext4-dax', readAheadKb: null, suffix: '-dax', arches: ['amd64'], append: 'memmap=64M!768M',
    modules: ['nd_e820', 'nd_pmem'], diskMiB: 60 },
};

// The guest's /init. Output protocol (one line each, on the serial console):
//   @@fact <key> <text>      facts for the profile
//   @@profile … @@profile-end   `scenario --profile`
//   @@run <name> <n> … @@rc <status>   one run of one scenario
//   @@done
const INIT = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /mnt /bin
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
echo 1 > /proc/sys/kernel/printk
for m in $(cat /modules/order); do insmod /modules/$m.ko || echo "@@warn insmod $m failed"; done
n=0; while [ ! -b /dev/vdb ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n+1)); done
. /config
if [ "$FS" = tmpfs ]; then
  mount -t tmpfs -o size=512m tmpfs /mnt || echo "@@warn mount tmpfs failed"
elif [ "$FS" = ext4-dax ]; then
  n=0; while [ ! -b /dev/pmem0 ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n+1)); done
  dd if=/dev/vda of=/dev/pmem0 bs=1M 2>/dev/null || echo "@@warn dd to pmem0 failed"
  mount -t ext4 -o dax /dev/pmem0 /mnt || echo "@@warn mount ext4 -o dax failed"
  grep -q 'pmem0 .*dax' /proc/mounts || echo "@@warn pmem0 not mounted with dax"
else
  mount -t ext4 /dev/vda /mnt || echo "@@warn mount ext4 failed"
  echo $RA > /sys/block/vda/queue/read_ahead_kb
fi
swapon /dev/vdb || echo "@@warn swapon failed"
mkdir -p /mnt/w
echo "@@fact cmdline $(cat /proc/cmdline)"
echo "@@fact thp $(cat /sys/kernel/mm/transparent_hugepage/enabled)"
echo "@@fact thpShmem $(cat /sys/kernel/mm/transparent_hugepage/shmem_enabled)"
echo "@@fact swaps $(wc -l < /proc/swaps)"
[ "$FS" = ext4 ] && echo "@@fact readAheadKb $(cat /sys/block/vda/queue/read_ahead_kb)"
echo "@@profile"
/harness --profile /mnt/w
echo "@@profile-end $?"
for s in $(cat /scen/list); do
  r=1
  while [ $r -le $RUNS ]; do
    echo "@@run $s $r"
    /harness /mnt/w < /scen/$s.txt
    echo "@@rc $?"
    r=$((r+1))
  done
done
echo "@@done"
sync
poweroff -f
echo o > /proc/sysrq-trigger
`;

/** Modules the guest needs, by name (dependencies are resolved from each module's modinfo). */
const WANTED_MODULES = ['virtio_pci', 'virtio_blk', 'crc32c_generic', 'crc32c_cryptoapi', 'ext4'];

/**
 * Builds the initramfs (cpio.gz) for one boot. scenarios: canonical scenarios to run.
 * Returns its path.
 */
export function buildInitramfs(work, kernel, harnessBin, scenarios, { runs, variant }) {
  const root = join(work, 'root');
  rmSync(root, { recursive: true, force: true });
  for (const d of ['bin', 'modules', 'scen', 'proc', 'sys', 'dev', 'mnt']) mkdirSync(join(root, d), { recursive: true });
  copyFileSync(kernel.busybox, join(root, 'bin', 'busybox'));
  chmodSync(join(root, 'bin', 'busybox'), 0o755);
  copyFileSync(harnessBin, join(root, 'harness'));
  chmodSync(join(root, 'harness'), 0o755);
  writeFileSync(join(root, 'init'), INIT);
  chmodSync(join(root, 'init'), 0o755);
  const v = VARIANTS[variant];
  writeFileSync(join(root, 'config'), `FS=${v.fs}\nRA=${v.readAheadKb ?? 128}\nRUNS=${runs}\n`);
  const mods = resolveModules(kernel, [...WANTED_MODULES, ...(v.modules ?? [])]);
  for (const m of mods) writeFileSync(join(root, 'modules', `${m.name}.ko`), m.bytes);
  writeFileSync(join(root, 'modules', 'order'), mods.map((m) => m.name).join('\n') + '\n');
  for (const s of scenarios) writeFileSync(join(root, 'scen', `${s.name}.txt`), toLines(s));
  writeFileSync(join(root, 'scen', 'list'), scenarios.map((s) => s.name).join('\n') + '\n');
  const out = join(work, 'initrd.cpio.gz');
  sh('sh', ['-c', `cd '${root}' && find . | cpio -o -H newc --quiet | gzip -1 > '${out}'`]);
  return out;
}

/** A fresh ext4 disk (diskMiB, 4 KiB blocks) and a swap disk for one boot. */
export function buildDisks(work, { diskMiB = 512 } = {}) {
  const disk = join(work, 'disk.img');
  const swap = join(work, 'swap.img');
  sh('truncate', ['-s', `${diskMiB}M`, disk]);
  sh('mkfs.ext4', ['-q', '-F', '-b', '4096', disk]);
  sh('truncate', ['-s', '256M', swap]);
  sh('mkswap', ['-q', swap]);
  return { disk, swap };
}

/** The QEMU command for an architecture (TCG, one CPU, 1 GiB, serial on stdout). */
export function qemuCommand(arch, { vmlinuz, initrd, disk, swap, append = '' }) {
  const drives = [
    '-drive', `file=${disk},format=raw,if=none,id=d0,cache=unsafe`, '-device', 'virtio-blk-pci,drive=d0',
    '-drive', `file=${swap},format=raw,if=none,id=d1,cache=unsafe`, '-device', 'virtio-blk-pci,drive=d1',
  ];
  const common = ['-smp', '1', '-m', '1024', '-nographic', '-no-reboot', '-kernel', vmlinuz, '-initrd', initrd, ...drives];
  if (arch === 'arm64') {
    return ['qemu-system-aarch64', ['-M', 'virt', '-cpu', 'max,pauth-impdef=on', ...common,
      '-append', `console=ttyAMA0 quiet loglevel=1 panic=-1 ${append}`.trim()]];
  }
  return ['qemu-system-x86_64', [...common, '-append', `console=ttyS0 quiet loglevel=1 panic=-1 ${append}`.trim()]];
}

/** Runs QEMU to completion; resolves with the serial output (\r removed). */
export function boot(cmd, args, { timeoutMs = 20 * 60_000, onLine } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let partial = '';
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`QEMU timed out after ${timeoutMs / 1000} s\n${out.slice(-3000)}`)); }, timeoutMs);
    p.stdout.on('data', (b) => {
      const t = b.toString('latin1').replace(/\r/g, '');
      out += t;
      if (onLine) {
        partial += t;
        const lines = partial.split('\n');
        partial = lines.pop();
        lines.forEach(onLine);
      }
    });
    p.stderr.on('data', (b) => { err += b; });
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0 && !out.includes('@@done')) reject(new Error(`QEMU exited ${code}: ${err}\n${out.slice(-3000)}`));
      else resolve(out);
    });
  });
}

/**
 * Splits the guest's output: { facts, profileText, runs: Map(name → [harness output …]),
 * warnings, done }. Lines that are not the harness's (kernel messages) are dropped from runs.
 */
export function parseGuestOutput(text) {
  const facts = {};
  const runs = new Map();
  const warnings = [];
  let profileText = '';
  let cur = null; // { kind: 'profile' } or { kind: 'run', name, lines }
  let done = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('@@fact ')) {
      const [, key, ...rest] = line.split(' ');
      facts[key] = rest.join(' ');
    } else if (line.startsWith('@@warn ')) warnings.push(line.slice(7));
    else if (line === '@@profile') cur = { kind: 'profile', lines: [] };
    else if (line.startsWith('@@profile-end')) { profileText = cur.lines.join('\n'); cur = null; }
    else if (line.startsWith('@@run ')) cur = { kind: 'run', name: line.split(' ')[1], lines: [] };
    else if (line.startsWith('@@rc ')) {
      if (cur?.kind === 'run') {
        const rc = Number(line.slice(5));
        const body = cur.lines.join('\n') + '\n';
        if (!runs.has(cur.name)) runs.set(cur.name, []);
        runs.get(cur.name).push(rc === 0 ? body : `error guest exit status ${rc}\n${body}`);
      }
      cur = null;
    } else if (line === '@@done') done = true;
    else if (cur && (cur.kind === 'profile' ? line.startsWith('profile ') : /^(begin|obs|map|end|error) /.test(line) || line === 'end')) cur.lines.push(line);
  }
  return { facts, profileText, runs, warnings, done };
}

export const makeWork = () => mkdtempSync(join(tmpdir(), 'wasm-mmu-qemu-'));
