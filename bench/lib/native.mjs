// The real-kernel side: compile bench/native/faults.c with `cc -O2` into a temp dir and run
// it with the same region size; it prints JSON (ns per operation per case) on stdout and
// its progress on stderr, which we pass through.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SOURCE = fileURLToPath(new URL('../native/faults.c', import.meta.url));

/**
 * Returns { available: true, data } or { available: false, reason }. `fileDir` is where
 * the temp file of the file cases goes (will-it-scale uses /tmp; so do we by default).
 */
export function runNative({ regionBytes, budgetMs, fileDir = tmpdir(), log }) {
  if (process.platform !== 'linux') return skip(`not Linux (${process.platform})`, log);
  const probe = spawnSync('cc', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return skip('no C compiler (`cc` not found)', log);
  const dir = mkdtempSync(join(tmpdir(), 'wasm-mmu-native-'));
  try {
    const exe = join(dir, 'faults');
    const cc = spawnSync('cc', ['-O2', '-o', exe, SOURCE], { encoding: 'utf8' });
    if (cc.status !== 0) return skip(`cc -O2 failed:\n${cc.stderr}`, log);
    const mib = String(Math.round(regionBytes / (1 << 20)));
    const run = spawnSync(exe, [mib, String(budgetMs), fileDir], {
      encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20,
    });
    if (run.status !== 0) return skip(`faults exited with ${run.status ?? run.signal}`, log);
    let data;
    try {
      data = JSON.parse(run.stdout);
    } catch (e) {
      return skip(`faults printed no valid JSON (${e.message})`, log);
    }
    return { available: true, data };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function skip(reason, log) {
  log(`native: kernel column skipped: ${reason}`);
  return { available: false, reason };
}
