// Instructions per page and per Wasm function from two callgrind runs of bench/profile.mjs
// (see bench/README.md "Profiling"): each run's `--print-wasm-code` output gives every
// compiled function's address range, its callgrind file (--dump-instr=yes
// --compress-pos=no) the cost per address; the difference of the two runs divided by
// (n2 - n1) × pages is the cost per page, start-up and warm-up cancelled out.
//   node bench/cg-functions.mjs <code.n1> <cg.n1> <code.n2> <cg.n2> <n2-n1> <pages> [rows]
// Prints the sum over Wasm functions, then the functions by cost; "(other)" is everything
// outside Wasm code (the JS host, V8, memset/memcpy of the page bodies).
import { readFileSync } from 'node:fs';

const [code1, cg1, code2, cg2, reps, pages, rowsArg = '25'] = process.argv.slice(2);
if (!pages) {
  console.error('usage: node bench/cg-functions.mjs <code.n1> <cg.n1> <code.n2> <cg.n2> <n2-n1> <pages> [rows]');
  process.exit(2);
}

function ranges(file) {
  const out = [];
  let name = null, lo = Infinity, hi = 0;
  for (const l of readFileSync(file, 'utf8').split('\n')) {
    if (l.startsWith('name: ')) { name = l.slice(6).trim(); lo = Infinity; hi = 0; }
    else if (name && l.startsWith('0x')) { const a = parseInt(l, 16); if (a < lo) lo = a; if (a > hi) hi = a; }
    else if (name && l.startsWith('--- End code')) { if (hi) out.push([lo, hi + 16, name]); name = null; }
  }
  return out.sort((a, b) => a[0] - b[0]);
}

function perFunction(codeFile, cgFile) {
  const rs = ranges(codeFile);
  const out = new Map();
  let skip = false;
  const find = (a) => {
    let lo = 0, hi = rs.length - 1, r = -1;
    while (lo <= hi) { const m = (lo + hi) >> 1; if (rs[m][0] <= a) { r = m; lo = m + 1; } else hi = m - 1; }
    return r >= 0 && a < rs[r][1] ? rs[r][2] : '(other)';
  };
  for (const l of readFileSync(cgFile, 'utf8').split('\n')) {
    if (l.startsWith('calls=')) { skip = true; continue; }
    if (!l.startsWith('0x')) { skip = false; continue; }
    if (skip) { skip = false; continue; } // the inclusive cost of a call, not self cost
    const p = l.split(' ');
    const c = Number(p[p.length - 1]);
    const n = find(parseInt(p[0], 16));
    out.set(n, (out.get(n) ?? 0) + c);
  }
  return out;
}

const a = perFunction(code1, cg1), b = perFunction(code2, cg2);
const div = Number(reps) * Number(pages);
const rows = [...new Set([...a.keys(), ...b.keys()])].map((k) => [k, ((b.get(k) ?? 0) - (a.get(k) ?? 0)) / div]);
rows.sort((x, y) => Math.abs(y[1]) - Math.abs(x[1]));
const wasm = rows.filter(([k]) => k !== '(other)').reduce((s, [, v]) => s + v, 0);
console.log(`Wasm functions: ${wasm.toFixed(0)} instructions per page`);
for (const [k, v] of rows.slice(0, Number(rowsArg))) if (Math.abs(v) >= 1) console.log(`${v.toFixed(1).padStart(9)}  ${k}`);
