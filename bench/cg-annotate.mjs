// The machine code of one Wasm function with the instructions each line executed per page,
// from one callgrind run of bench/profile.mjs (see bench/README.md "Profiling"): where a
// function's cost goes (spills, repeated address arithmetic, loop checks).
//   node bench/cg-annotate.mjs <code.n> <cg.n> <function> <divisor> [min]
// <function> as `--print-wasm-code` names it (e.g. assembly/filemap/map_small_run);
// <divisor> = (n + 1) × pages (the warm-up repetition runs too); lines below [min] (default
// 0) per page are left out. Self cost only, as bench/cg-functions.mjs counts it.
import { readFileSync } from 'node:fs';

const [codeFile, cgFile, fname, divArg, minArg = '0'] = process.argv.slice(2);
if (!divArg) {
  console.error('usage: node bench/cg-annotate.mjs <code.n> <cg.n> <function> <divisor> [min]');
  process.exit(2);
}
const counts = new Map();
let skip = false;
for (const l of readFileSync(cgFile, 'utf8').split('\n')) {
  if (l.startsWith('calls=')) { skip = true; continue; }
  if (!l.startsWith('0x')) { skip = false; continue; }
  if (skip) { skip = false; continue; } // the inclusive cost of a call, not self cost
  const p = l.split(' ');
  const a = parseInt(p[0], 16);
  counts.set(a, (counts.get(a) ?? 0) + Number(p[p.length - 1]));
}
const div = Number(divArg), min = Number(minArg);
let on = false, total = 0;
for (const l of readFileSync(codeFile, 'utf8').split('\n')) {
  if (l.startsWith('name: ')) on = l.slice(6).trim() === fname;
  else if (on && l.startsWith('--- End code')) on = false;
  else if (on && l.startsWith('0x')) {
    const c = (counts.get(parseInt(l, 16)) ?? 0) / div;
    total += c;
    if (c >= min) console.log(`${c.toFixed(2).padStart(8)}  ${l}`);
  }
}
console.log(`${total.toFixed(1).padStart(8)}  per page in ${fname}`);
