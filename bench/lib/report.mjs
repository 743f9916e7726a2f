// The report: rows joining the emulated and the native results, the printed table, the
// JSON record and a self-contained SVG chart (drawn here: no CDN, no chart library).
import { fmtNs, fmtRate, pad } from './timing.mjs';
import { machineLine } from './machine.mjs';

// The rows, in order. `native` names the native case beside it; `target` the goals of
// bench/README.md: ns = at most that many ns per op, fill = at most that multiple of the
// emulated memory.fill of a page.
const ROWS = [
  { id: 'fill', name: 'memory.fill 4 KiB (ref)', unit: 'page', native: 'fill' },
  { id: 'fill_cold', name: 'memory.fill 4 KiB cold (ref)', unit: 'page' },
  { id: 'copy', name: 'memory.copy 4 KiB (ref)', unit: 'page', native: 'copy' },
  { id: 'copy_cold', name: 'memory.copy 4 KiB cold (ref)', unit: 'page' },
  { id: 'tlb_hit_js', name: 'TLB hit, JS fast path', unit: 'lookup', native: 'tlb_hit', target: { ns: 2 } },
  { id: 'tlb_hit_call', name: 'TLB hit, 1 Wasm call', unit: 'lookup', native: 'tlb_hit', target: { ns: 5 } },
  { id: 'tlb_hit_bulk', name: 'TLB hit, loop in Wasm', unit: 'lookup', native: 'tlb_hit' },
  { id: 'mem_hit_js', name: 'TLB hit, mm.load32 (over Uint8Array)', unit: 'access', target: { ns: 2 } },
  { id: 'mem_hit_wasm', name: 'TLB hit, fastpath.ts (over plain load)', unit: 'access', target: { ns: 1 } },
  { id: 'interp_js_plain', name: 'RV32I interp JS, Uint8Array', unit: 'instr' },
  { id: 'interp_js_mmu', name: 'RV32I interp JS, wasm-mmu', unit: 'instr' },
  { id: 'interp_wasm_plain', name: 'RV32I interp Wasm, plain', unit: 'instr' },
  { id: 'interp_wasm_mmu', name: 'RV32I interp Wasm, fastpath.ts', unit: 'instr' },
  { id: 'tlb_miss_walk', name: 'TLB miss, 4-level walk', unit: 'walk', native: 'tlb_miss', target: { ns: 30 } },
  { id: 'anon_write', name: 'page_fault1 anon write', unit: 'fault', native: 'anon_write', target: { ns: 250, coldFill: 1.3 } },
  { id: 'anon_write_sweep', name: '  pf1, ramBytes 64M-1G worst', unit: 'fault', target: { ns: 250, coldFill: 1.3 } },
  { id: 'fault_path', name: '  fault path (pf1 - fill)', unit: 'fault', derived: ['anon_write', 'fill'], target: { ns: 60 } },
  { id: 'fault_path_cold', name: '  fault path (pf1 - cold fill)', unit: 'fault', derived: ['anon_write', 'fill_cold'] },
  { id: 'anon_read', name: 'anon read (zero page)', unit: 'fault', native: 'anon_read' },
  { id: 'file_private_write', name: 'page_fault2 file private wr', unit: 'fault', native: 'file_private_write', target: { ns: 400 } },
  { id: 'file_shared_write', name: 'page_fault3 file shared wr', unit: 'fault', native: 'file_shared_write' },
  { id: 'file_read_fa', name: 'file read, fault-around 64K', unit: 'page', native: 'file_read_fa', target: { ns: 20 } },
  { id: 'file_read_nofa', name: 'file read, fault-around off', unit: 'page', native: 'file_read_nofa', target: { ns: 60 } },
  { id: 'nodefile_read', name: 'NodeFile 200 MB mapped read', unit: 'page', target: { minRatio: 0.9 } },
  { id: 'cow_fork', name: 'COW after fork (child wr)', unit: 'fault', native: 'cow_fork', target: { ns: 350 } },
  { id: 'wp_reuse', name: 'write-protect reuse', unit: 'fault', native: 'wp_reuse' },
  { id: 'fork', name: 'fork, populated (per page)', unit: 'page', native: 'fork' },
  { id: 'mmap_munmap', name: 'mmap+munmap, 65,530 VMAs', unit: 'call', native: 'mmap_munmap' },
];

/** Join emulated results ({ id: { ns, faultsPerOp, ... } }) and native data into rows. */
export function buildRows(emulated, native) {
  const nat = native.available ? native.data.cases : {};
  const nativeNs = (id) => (nat[id] && Number.isFinite(nat[id].ns) ? nat[id].ns : null);
  const fillNs = emulated.fill?.ns ?? null;
  const fillColdNs = emulated.fill_cold?.ns ?? null;
  const rows = [];
  for (const def of ROWS) {
    let emu = emulated[def.id];
    let kernel = def.native ? nativeNs(def.native) : null;
    let naReason = def.native && nat[def.native]?.na ? nat[def.native].na : null;
    if (def.derived) {
      const [a, b] = def.derived;
      if (!emulated[a] || !emulated[b]) continue;
      emu = { ns: emulated[a].ns - emulated[b].ns, method: `${a} - ${b}` };
      const ka = nativeNs(a), kb = nativeNs(b);
      kernel = ka !== null && kb !== null ? ka - kb : null;
    }
    if (!emu) continue; // not measured (API not built, or the case failed): left out, never faked
    const isFault = def.unit === 'fault' || (def.unit === 'page' && emu.faultsPerOp !== undefined);
    const row = {
      id: def.id,
      name: def.name.trim(),
      label: def.name,
      unit: def.unit,
      emulatedNs: emu.ns,
      spreadPct: emu.spreadPct ?? null,
      samples: emu.samples ?? null,
      method: emu.method ?? null,
      faultsPerSec: isFault && emu.faultsPerOp > 0 ? (emu.faultsPerOp * 1e9) / emu.ns : null,
      pagesPerSec: !def.derived && (def.unit === 'fault' || def.unit === 'page') ? 1e9 / emu.ns : null,
      nativeNs: kernel,
      nativeNa: kernel === null ? (naReason ?? (native.available ? null : native.reason)) : null,
      ratioNative: kernel ? emu.ns / kernel : null,
      ratioFill: fillNs && !def.derived ? emu.ns / fillNs : null,
      // The sweep measures its own cold fill in each process (the worst ratio); others use the hardware case's.
      ratioColdFill: emu.worstRatioColdFill ?? (fillColdNs && !def.derived ? emu.ns / fillColdNs : null),
      // A reference measured beside the case (NodeFile: throughput over fs.readFileSync's).
      ratioRef: emu.ratioReadFileSync ?? null,
      target: def.target ?? null,
      targetMet: null,
    };
    if (def.target) {
      let met = true;
      if (def.target.ns !== undefined) met &&= row.emulatedNs <= def.target.ns;
      if (def.target.fill !== undefined) met &&= row.ratioFill !== null && row.ratioFill <= def.target.fill;
      if (def.target.coldFill !== undefined) met &&= row.ratioColdFill !== null && row.ratioColdFill <= def.target.coldFill;
      if (def.target.minRatio !== undefined) met &&= row.ratioRef !== null && row.ratioRef >= def.target.minRatio;
      row.targetMet = met;
    }
    rows.push(row);
  }
  return rows;
}

function targetText(t) {
  if (!t) return '';
  const parts = [];
  if (t.ns !== undefined) parts.push(`<=${t.ns} ns`);
  if (t.fill !== undefined) parts.push(`<=${t.fill}x fill`);
  if (t.coldFill !== undefined) parts.push(`<=${t.coldFill}x cold fill`);
  if (t.minRatio !== undefined) parts.push(`>=${t.minRatio}x readFileSync`);
  return parts.join(', ');
}

const ratio = (r) => {
  if (r === null || r === undefined || !Number.isFinite(r)) return '—';
  if (r >= 10) return `${r.toFixed(1)}x`;
  if (r >= 0.1) return `${r.toFixed(2)}x`;
  return `${r.toPrecision(2)}x`;
};

/** The one table, as text. */
export function formatTable(rows) {
  const head = ['case', 'unit', 'emulated ns', 'faults/s', 'pages/s', 'native ns', 'emu/native', 'emu/fill', 'emu/cold', 'target', ''];
  const body = rows.map((r) => [
    r.label,
    r.unit,
    fmtNs(r.emulatedNs),
    fmtRate(r.faultsPerSec),
    fmtRate(r.pagesPerSec),
    r.nativeNs !== null ? fmtNs(r.nativeNs) : 'n/a',
    ratio(r.ratioNative),
    ratio(r.ratioFill),
    r.ratioRef !== null ? `ref ${ratio(r.ratioRef)}` : ratio(r.ratioColdFill),
    targetText(r.target),
    r.targetMet === null ? '' : r.targetMet ? 'met' : 'MISSED',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const right = new Set([2, 3, 4, 5, 6, 7, 8]);
  const line = (cells) => cells.map((c, i) => (right.has(i) ? c.padStart(widths[i]) : pad(c, widths[i]))).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

function esc(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * A horizontal bar chart, log scale of ns per operation: per case the emulated bar and the
 * native bar, a red tick at the target. Self-contained SVG, inline styles only.
 */
export function renderSvg(rows, { title, subtitle }) {
  const labelW = 250, plotW = 560, rightW = 250, top = 92, rowH = 34, bottom = 48;
  const width = labelW + plotW + rightW;
  const height = top + rows.length * rowH + bottom;
  const values = rows.flatMap((r) => [r.emulatedNs, r.nativeNs, r.target?.ns]).filter((v) => v > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.min(...values, 1)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...values, 10)));
  const x = (v) => labelW + (plotW * (Math.log10(Math.max(v, lo)) - Math.log10(lo))) / (Math.log10(hi) - Math.log10(lo));
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="16" y="26" font-size="17" font-weight="bold" fill="#222">${esc(title)}</text>`);
  out.push(`<text x="16" y="46" fill="#555">${esc(subtitle)}</text>`);
  // legend
  const ly = 66;
  out.push(`<rect x="${labelW}" y="${ly - 10}" width="14" height="10" fill="#3b6fd8"/><text x="${labelW + 20}" y="${ly}" fill="#222">emulated (wasm-mmu)</text>`);
  out.push(`<rect x="${labelW + 170}" y="${ly - 10}" width="14" height="10" fill="#f0a030"/><text x="${labelW + 190}" y="${ly}" fill="#222">native (this machine's kernel / CPU)</text>`);
  out.push(`<line x1="${labelW + 420}" y1="${ly - 12}" x2="${labelW + 420}" y2="${ly + 2}" stroke="#d62728" stroke-width="2"/><text x="${labelW + 428}" y="${ly}" fill="#222">target</text>`);
  // decade grid
  for (let d = lo; d <= hi * 1.0001; d *= 10) {
    const gx = x(d).toFixed(1);
    const label = d >= 1e6 ? `${d / 1e6} ms` : d >= 1e3 ? `${d / 1e3} µs` : `${d} ns`;
    out.push(`<line x1="${gx}" y1="${top - 8}" x2="${gx}" y2="${top + rows.length * rowH}" stroke="#ddd"/>`);
    out.push(`<text x="${gx}" y="${top + rows.length * rowH + 16}" text-anchor="middle" fill="#666">${esc(label)}</text>`);
  }
  out.push(`<text x="${labelW + plotW / 2}" y="${height - 12}" text-anchor="middle" fill="#444">ns per operation (log scale; shorter is faster)</text>`);
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    if (i % 2 === 0) out.push(`<rect x="0" y="${y - 4}" width="${width}" height="${rowH}" fill="#f6f7f9"/>`);
    out.push(`<text x="${labelW - 10}" y="${y + 16}" text-anchor="end" fill="#222">${esc(r.name)} <tspan fill="#888">/${esc(r.unit)}</tspan></text>`);
    const bar = (v, by, color) => {
      const w = Math.max(1, x(v) - labelW);
      out.push(`<rect x="${labelW}" y="${by}" width="${w.toFixed(1)}" height="11" fill="${color}"/>`);
      out.push(`<text x="${(labelW + w + 4).toFixed(1)}" y="${by + 10}" font-size="11" fill="#333">${esc(fmtNs(v))}</text>`);
    };
    if (r.emulatedNs > 0) bar(r.emulatedNs, y + 1, '#3b6fd8');
    if (r.nativeNs > 0) bar(r.nativeNs, y + 13, '#f0a030');
    else out.push(`<text x="${labelW + 4}" y="${y + 23}" font-size="11" fill="#999">native n/a</text>`);
    if (r.target?.ns) {
      const tx = x(r.target.ns).toFixed(1);
      out.push(`<line x1="${tx}" y1="${y - 2}" x2="${tx}" y2="${y + 26}" stroke="#d62728" stroke-width="2"/>`);
    }
    const right = [r.ratioNative !== null ? `${ratio(r.ratioNative)} of native` : '', r.targetMet === null ? '' : r.targetMet ? 'target met' : 'target missed']
      .filter(Boolean).join(' · ');
    out.push(`<text x="${labelW + plotW + 50}" y="${y + 16}" font-size="11" fill="${r.targetMet === false ? '#d62728' : '#444'}">${esc(right)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

export { machineLine };
