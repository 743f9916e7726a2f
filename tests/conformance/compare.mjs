// Compare two observation documents (kernel = the reference, emulator = the one checked) and
// print results as a table. Used by kernel.test.ts (golden vs live kernel), record.mjs
// (run 1 vs runs 2..n) and, later, `npm run conformance` (kernel golden vs wasm-mmu).
//
// A mismatch is { step, in, op, field, map?, page?, kernel, emulator }:
//   field ∈ 'observation' (one side has no observation for this step) | 'in' | 'minflt' |
//           'majflt' | 'signal' | 'sigCode' | 'sigPage' | 'errno' | 'value' | 'vmlck' |
//           'map' (one side did not record the map) | 'pages' (map lengths differ) |
//           'referenced' (smaps KiB of the map) |
//           'state' | 'pfn' | 'softDirty' | 'mlocked'   (per page: `page` is set)
// A `null` count on the kernel side means "not measured" (fork, exit, clearRefs) and is not
// compared.

const SCALAR_FIELDS = ['in', 'minflt', 'majflt', 'signal', 'sigCode', 'sigPage', 'errno', 'value', 'vmlck'];
const PAGE_FIELDS = ['state', 'pfn', 'softDirty', 'mlocked'];

/**
 * Returns the list of mismatches between two observation documents (or their
 * `observations` arrays). Options:
 *   ignore: field names never compared (e.g. ['pfn'] for an emulator without PFN classes);
 *   unstable: mismatches recorded as not repeatable in a golden file — the same
 *             (step, field, map, page) is not compared.
 */
export function compareObservations(kernel, emulator, { ignore = [], unstable = [] } = {}) {
  const kObs = Array.isArray(kernel) ? kernel : kernel.observations;
  const eObs = Array.isArray(emulator) ? emulator : emulator.observations;
  const skip = new Set(unstable.map(unstableKey));
  const ign = new Set(ignore);
  const out = [];
  const push = (m) => {
    if (ign.has(m.field) || skip.has(unstableKey(m)) || skip.has(unstableKey({ ...m, page: undefined }))) return;
    out.push(m);
  };
  const eByStep = new Map(eObs.map((o) => [o.step, o]));
  const kSteps = new Set(kObs.map((o) => o.step));
  for (const k of kObs) {
    const e = eByStep.get(k.step);
    const base = { step: k.step, in: k.in, op: k.op };
    if (!e) {
      push({ ...base, field: 'observation', kernel: 'present', emulator: 'missing' });
      continue;
    }
    for (const f of SCALAR_FIELDS) {
      if (!(f in k)) continue;
      if ((f === 'minflt' || f === 'majflt') && k[f] === null) continue;
      if (k[f] !== e[f]) push({ ...base, field: f, kernel: k[f], emulator: e[f] ?? null });
    }
    for (const [id, km] of Object.entries(k.maps ?? {})) {
      const em = e.maps?.[id];
      if (!em) {
        push({ ...base, field: 'map', map: id, kernel: km.state, emulator: 'missing' });
        continue;
      }
      if (km.state.length !== (em.state ?? '').length) {
        push({ ...base, field: 'pages', map: id, kernel: km.state.length, emulator: (em.state ?? '').length });
        continue;
      }
      // smaps `Referenced:` of the map's VMA, in KiB (expect.referenced only).
      if (km.referenced !== undefined && km.referenced !== em.referenced)
        push({ ...base, field: 'referenced', map: id, kernel: km.referenced, emulator: em.referenced ?? null });
      for (const f of PAGE_FIELDS) {
        if (km[f] === undefined) continue;
        const ks = km[f];
        const es = em[f] ?? '';
        for (let p = 0; p < ks.length; p++)
          if (ks[p] !== es[p]) push({ ...base, field: f, map: id, page: p, kernel: ks[p], emulator: es[p] ?? null });
      }
    }
  }
  for (const e of eObs)
    if (!kSteps.has(e.step)) push({ step: e.step, in: e.in, op: e.op, field: 'observation', kernel: 'missing', emulator: 'present' });
  return out;
}

function unstableKey(m) {
  return [m.step, m.field, m.map ?? '', m.page ?? ''].join('|');
}

/** Folds per-page mismatches into one line per (step, field, map): "state m[3,5-7]: …". */
export function summarizeMismatches(mismatches) {
  const groups = new Map();
  for (const m of mismatches) {
    const key = `${m.step}|${m.field}|${m.map ?? ''}`;
    if (!groups.has(key)) groups.set(key, { ...m, pages: [], k: '', e: '' });
    const g = groups.get(key);
    if (m.page !== undefined) {
      g.pages.push(m.page);
      g.k += m.kernel ?? '∅';
      g.e += m.emulator ?? '∅';
    }
  }
  return [...groups.values()].map((g) => {
    const where = g.map !== undefined ? ` ${g.map}${g.pages.length ? `[${ranges(g.pages)}]` : ''}` : '';
    const vals = g.pages.length ? `emulator ${g.e} vs kernel ${g.k}` : `emulator ${fmt(g.emulator)} vs kernel ${fmt(g.kernel)}`;
    return `step ${g.step} (${g.op}${g.in === 'child' ? ', child' : ''}) ${g.field}${where}: ${vals}`;
  });
}

function fmt(v) {
  return v === null || v === undefined ? 'none' : String(v);
}

function ranges(list) {
  const s = [...new Set(list)].sort((a, b) => a - b);
  const out = [];
  for (let i = 0; i < s.length; i++) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j] + 1) j++;
    out.push(i === j ? `${s[i]}` : `${s[i]}-${s[j]}`);
    i = j;
  }
  return out.join(',');
}

/**
 * Renders results as a plain-text table. rows: [{ scenario, rules, mismatches, skipped? }]
 * (skipped: a reason string). Columns: scenario, rule ids, result, emulator vs kernel (the
 * first differing field, and how many more).
 */
export function formatTable(rows, { maxWidth = 160 } = {}) {
  const head = ['scenario', 'rules', 'result', 'emulator vs kernel'];
  const body = rows.map((r) => {
    const lines = r.skipped ? [] : summarizeMismatches(r.mismatches);
    const result = r.skipped ? 'skip' : lines.length ? 'FAIL' : 'pass';
    const detail = r.skipped ? r.skipped : lines.length ? `${lines[0]}${lines.length > 1 ? ` (+${lines.length - 1} more)` : ''}` : 'match';
    return [r.scenario, r.rules.join(' '), result, detail];
  });
  const w = head.map((h, c) => Math.max(h.length, ...body.map((b) => b[c].length)));
  const lastW = Math.max(18, maxWidth - w.slice(0, 3).reduce((a, b) => a + b + 3, 0));
  const line = (cells) => cells.map((c, i) => (i === 3 ? (c.length > lastW ? `${c.slice(0, lastW - 1)}…` : c) : c.padEnd(w[i]))).join(' | ');
  const sep = w.map((x, i) => '-'.repeat(i === 3 ? Math.min(x, lastW) : x)).join('-+-');
  const passed = body.filter((b) => b[2] === 'pass').length;
  const failed = body.filter((b) => b[2] === 'FAIL').length;
  const skipped = body.filter((b) => b[2] === 'skip').length;
  return [line(head), sep, ...body.map(line), sep, `${passed} passed, ${failed} failed, ${skipped} skipped`].join('\n');
}
