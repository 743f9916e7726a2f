#!/usr/bin/env node
// conformance:fuzz (issue 14) — random differential testing of wasm-mmu against the live kernel.
//
//   npm run conformance:fuzz -- [--seed S] [--count N] [--minutes M] [--jobs J] [--out DIR]
//                               [--no-shrink] [--strict] [--quiet] [--no-extra-ops]
//
// Generates random valid scenarios (lib/fuzz-gen.mjs), runs each on this machine's kernel
// through the harness and on wasm-mmu configured from the detected live profile, groups the
// disagreements into classes (lib/fuzz-core.mjs signature()), shrinks one scenario per class
// to a minimal one, prints a table and writes the minimal scenarios to --out
// (tests/conformance/fuzz-out/, gitignored). Known classes (fuzz-known.json, with the issue
// item each belongs to) are marked; --strict exits 1 on a class not in that list.
// --no-extra-ops leaves out what session 4 added (mlockall / munlockall / fsync steps, prots
// x and wx; a second random stream): the cases are then exactly those of older runs, so a
// seed and case cited in FUZZ-FINDINGS.md from before it reproduce.
// Needs a build (dist/): `npm run conformance:fuzz` builds first. On a host that cannot run the
// harness (not Linux, no root/pagemap, no cc) it says why and exits 0 having compared nothing.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONFORMANCE_DIR } from './lib/scenario.mjs';
import { buildHarness, detectProfile, hostCapability } from './lib/kernel.mjs';
import { generateCase } from './lib/fuzz-gen.mjs';
import { knownClass, loadKnown, runCase, shrinkCase } from './lib/fuzz-core.mjs';
import { summarizeMismatches } from './compare.mjs';

export const KNOWN_FILE = join(CONFORMANCE_DIR, 'fuzz-known.json');
export const OUT_DIR = join(CONFORMANCE_DIR, 'fuzz-out');

/** A fresh seed: 31 bits from the clock and the pid. */
export const freshSeed = () => ((Date.now() ^ (process.pid << 16)) >>> 0) % 2147483647;

/**
 * Runs a fuzzing campaign. ctx: { harness, profile, api }. Options: seeds (array), count per
 * seed, deadline (ms epoch), jobs, shrink, shrinkBudget, onCase(progress).
 * Returns { total, agree, unstableOnly, classes: Map(signature → { count, cases: [id], first: { raw, result } }) }.
 */
export async function fuzz(ctx, { seeds, count = 100, deadline = Infinity, jobs = 2, shrink = true, shrinkBudget = 80, shrinkDeadline = Infinity, extraOps = true, onCase } = {}) {
  const classes = new Map();
  let total = 0, agree = 0, unstableOnly = 0;
  for (const [n, seed] of seeds.entries()) {
    let next = 0;
    // An open-ended run (count Infinity) shares the remaining time equally between the seeds.
    const until = count === Infinity && deadline !== Infinity ? Date.now() + (deadline - Date.now()) / (seeds.length - n) : deadline;
    const worker = async () => {
      while (next < count && Date.now() < until) {
        const index = next++;
        const { raw, norm } = generateCase(seed, index, { extraOps });
        const r = await runCase(ctx, norm);
        total++;
        if (r.status === 'agree') {
          agree++;
          if (r.unstable?.length) unstableOnly++;
        } else {
          let c = classes.get(r.signature);
          if (!c) classes.set(r.signature, (c = { signature: r.signature, count: 0, cases: [], first: { raw, result: r, seed, index } }));
          c.count++;
          if (c.cases.length < 8) c.cases.push(`${seed}:${index}`);
        }
        onCase?.({ total, agree, classes: classes.size });
      }
    };
    await Promise.all(Array.from({ length: jobs }, worker));
  }
  if (shrink) {
    // The most frequent classes first: they are the ones worth a minimal scenario most.
    for (const c of [...classes.values()].sort((a, b) => b.count - a.count)) {
      if (Date.now() >= shrinkDeadline) break;
      if (c.first.result.status === 'kernel-error') continue;
      try {
        const s = await shrinkCase(ctx, c.first.raw, c.signature, { budget: shrinkBudget, deadline: shrinkDeadline });
        if (s.result) c.minimal = { raw: s.raw, result: s.result, tries: s.tries };
      } catch (e) {
        c.shrinkError = String(e.message ?? e);
      }
    }
  }
  return { total, agree, unstableOnly, classes };
}

/** Prints the class table; returns the lines. */
export function report(res, known, { seeds } = {}) {
  const lines = [];
  const pct = res.total ? ((100 * res.agree) / res.total).toFixed(2) : '0';
  lines.push(`conformance:fuzz: ${res.total} cases (seeds ${seeds?.join(', ')}), ${res.agree} agree (${pct} %), ` +
    `${res.total - res.agree} disagree in ${res.classes.size} classes; kernel unrepeatable in ${res.unstableOnly} agreeing case(s)`);
  const rows = [...res.classes.values()].sort((a, b) => b.count - a.count);
  for (const c of rows) {
    const k = knownClass(known, c.signature);
    const tag = k ? `known #${[k.item].flat().join(',#')}` : 'NEW';
    lines.push('');
    lines.push(`[${tag}] ${c.signature}  ×${c.count}  cases ${c.cases.join(' ')}`);
    const ex = c.minimal ?? { raw: c.first.raw, result: c.first.result };
    if (ex.result?.error) lines.push(`    error: ${ex.result.error.slice(0, 300)}`);
    for (const l of summarizeMismatches(ex.result?.mismatches ?? []).slice(0, 4)) lines.push(`    ${l}`);
    lines.push(`    ${c.minimal ? `minimal (${c.minimal.tries} tries)` : 'unshrunk'}: ${compactScenario(ex.raw)}`);
  }
  return lines;
}

/**
 * One-line JSON of a scenario's file and steps (for the table). The generator's expects
 * (every step records all maps, mlocked and VmLck) are left out; the written files keep them.
 */
export function compactScenario(raw) {
  const { name, rules, description, ...rest } = raw;
  rest.steps = rest.steps.map(({ expect, ...st }) => st);
  return JSON.stringify(rest);
}

export const slug = (sig) => sig.replace(/[^a-zA-Z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 90);

/** Writes each class's minimal scenario (in scenarios/ format) plus both sides' observations. */
export function writeResults(res, known, dir = OUT_DIR) {
  mkdirSync(dir, { recursive: true });
  const index = [];
  for (const c of res.classes.values()) {
    const ex = c.minimal ?? { raw: c.first.raw, result: c.first.result };
    const k = knownClass(known, c.signature);
    const file = `${slug(c.signature)}.json`;
    writeFileSync(join(dir, file), JSON.stringify({
      class: c.signature, count: c.count, cases: c.cases, known: k ? { item: k.item, note: k.note } : null,
      minimal: !!c.minimal, scenario: ex.raw, mismatches: summarizeMismatches(ex.result?.mismatches ?? []),
      error: ex.result?.error ?? null, kernel: ex.result?.kernel?.observations ?? null, emulator: ex.result?.emulator?.observations ?? null,
    }, null, 2) + '\n');
    index.push({ class: c.signature, count: c.count, file, item: k?.item ?? null });
  }
  writeFileSync(join(dir, 'index.json'), JSON.stringify(index.sort((a, b) => b.count - a.count), null, 2) + '\n');
}

/** Sets up the live side: { ok, reason, ctx } (ctx.harness must be cleaned up). */
export async function liveContext(api) {
  const host = hostCapability();
  if (!host.ok) return { ok: false, reason: host.reason };
  const harness = buildHarness();
  const profile = detectProfile(harness);
  if (!profile.pagemapPfn) {
    harness.cleanup();
    return { ok: false, reason: 'pagemap shows no PFNs on this kernel' };
  }
  return { ok: true, ctx: { harness, profile, api } };
}

async function main(argv) {
  const opt = { seeds: [], count: undefined, minutes: undefined, jobs: 2, shrink: true, strict: false, out: OUT_DIR, quiet: false, extraOps: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--seed') opt.seeds.push(Number(argv[++i]));
    else if (a === '--count') opt.count = Number(argv[++i]);
    else if (a === '--minutes') opt.minutes = Number(argv[++i]);
    else if (a === '--jobs') opt.jobs = Number(argv[++i]);
    else if (a === '--out') opt.out = argv[++i];
    else if (a === '--no-shrink') opt.shrink = false;
    else if (a === '--strict') opt.strict = true;
    else if (a === '--quiet') opt.quiet = true;
    else if (a === '--no-extra-ops') opt.extraOps = false;
    else throw new Error(`unknown argument ${a} (see the header of tests/conformance/fuzz.mjs)`);
  }
  if (!opt.seeds.length) opt.seeds.push(freshSeed());
  if (opt.seeds.some((s) => !Number.isInteger(s) || s < 0)) throw new Error('--seed needs a non-negative integer');
  const count = opt.count ?? (opt.minutes ? Infinity : 200);
  const t0 = Date.now();
  const deadline = opt.minutes ? t0 + opt.minutes * 60_000 * 0.6 : Infinity; // leave 40 % of the time to shrink
  const shrinkDeadline = opt.minutes ? t0 + opt.minutes * 60_000 : Infinity;

  const api = await import('../../dist/index.js');
  const live = await liveContext(api);
  if (!live.ok) {
    console.log(`conformance:fuzz: the live kernel cannot be used on this host (${live.reason}); nothing was compared.`);
    return 0;
  }
  const { ctx } = live;
  const known = loadKnown(KNOWN_FILE);
  console.log(`conformance:fuzz on ${ctx.profile.release} (fs=${ctx.profile.fileSystem} zeroPage=${ctx.profile.zeroPage} ` +
    `faultAroundBytes=${ctx.profile.faultAroundBytes} readAheadKb=${ctx.profile.readAheadKb} swap=${ctx.profile.swap}); seeds ${opt.seeds.join(', ')}`);
  let last = 0;
  try {
    const res = await fuzz(ctx, {
      seeds: opt.seeds, count, deadline, jobs: opt.jobs, shrink: opt.shrink, shrinkDeadline, extraOps: opt.extraOps,
      onCase: ({ total, agree, classes }) => {
        if (!opt.quiet && Date.now() - last > 5000) {
          last = Date.now();
          console.log(`  ${total} cases, ${agree} agree, ${classes} classes (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
        }
      },
    });
    const lines = report(res, known, { seeds: opt.seeds });
    console.log(lines.join('\n'));
    writeResults(res, known, opt.out);
    console.log(`\nminimal scenarios written to ${opt.out} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    const unknown = [...res.classes.keys()].filter((s) => !knownClass(known, s));
    if (unknown.length) console.log(`${unknown.length} class(es) not in fuzz-known.json`);
    return opt.strict && unknown.length ? 1 : 0;
  } finally {
    ctx.harness.cleanup();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e) => {
    console.error(e);
    process.exit(2);
  });
}
