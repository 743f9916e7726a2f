// The page_fault1 sweep over ramBytes (issue 17): each size in a fresh process, and the
// smallest once more after a larger instance ran in the same process. Each point is the
// anonymous-write loop of faults.mjs (map, touch every page, unmap) and, in the same
// process, the cold memory.fill of a page; the row reports the worst point (ns and ratio).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const child = fileURLToPath(new URL('./sweep-child.mjs', import.meta.url));
const MiB = 1 << 20;

export function sweepPoints(regionBytes) {
  return [
    { ramBytes: 64 * MiB, regionBytes: Math.min(regionBytes, 32 * MiB) },
    { ramBytes: 320 * MiB, regionBytes },
    { ramBytes: 1024 * MiB, regionBytes },
    { ramBytes: 64 * MiB, regionBytes: Math.min(regionBytes, 32 * MiB), before: 1024 * MiB },
  ];
}

/** Run the sweep; returns { result (worst point as a bench result) | null, points, failed: [msg] }. */
export function runSweep({ regionBytes, budgetMs, log }) {
  const points = [];
  const failed = [];
  for (const p of sweepPoints(regionBytes)) {
    const label = `ramBytes ${p.ramBytes / MiB} MiB, region ${p.regionBytes / MiB} MiB${p.before ? `, after a ${p.before / MiB} MiB instance` : ''}`;
    const r = spawnSync(process.execPath, [child, JSON.stringify({ ...p, budgetMs })], { encoding: 'utf8' });
    let out = null;
    try { out = JSON.parse(r.stdout.trim().split('\n').pop()); } catch { /* reported below */ }
    if (!out || out.error || !Number.isFinite(out.ns)) {
      const why = out?.error ?? (r.stderr || r.stdout || `exit ${r.status}`).trim().split('\n').pop();
      failed.push(`page_fault1 sweep (${label}): ${why}`);
      log(`    ${label}: FAILED: ${why}`);
      continue;
    }
    points.push({ ...p, label, ...out });
    log(`    ${label}: ${out.ns.toFixed(1)} ns/fault, cold fill ${out.coldFillNs.toFixed(1)} ns, ${out.ratio.toFixed(2)}x (${out.samples} reps)`);
  }
  if (!points.length) return { result: null, points, failed };
  const worstNs = points.reduce((a, b) => (b.ns > a.ns ? b : a));
  const worstRatio = points.reduce((a, b) => (b.ratio > a.ratio ? b : a));
  return {
    result: {
      ns: worstNs.ns,
      worstRatioColdFill: worstRatio.ratio,
      samples: points.reduce((s, p) => s + p.samples, 0),
      unit: 'fault',
      faultsPerOp: 1,
      name: 'page_fault1 sweep, worst point',
      note: `worst ns at ${worstNs.label}; worst ratio to cold fill ${worstRatio.ratio.toFixed(2)}x at ${worstRatio.label}`,
      points,
      method: 'fresh process per ramBytes; median of repetitions per point; worst point reported',
    },
    points,
    failed,
  };
}
