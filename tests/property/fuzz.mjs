#!/usr/bin/env node
// The long run of the model-based property test (tests/property/model.mjs) over the built
// package (dist/, `npm run build` first; `npm run fuzz` does both).
//
//   npm run fuzz -- --ops 1000000 [--seed 12345] [--episode 2000] [--ram 2|4|mix]
//   npm run fuzz -- --replay tests/.out/fuzz-counterexample.json [--log]
//   npm run fuzz -- --shrink some-failing-ops.json        (shrink a saved op list again)
//
// The ops are split into episodes, each a fresh Mmu (alternating 2 and 4 MiB of RAM and a
// 64- or 1024-entry TLB unless --ram says otherwise) driven by ops drawn from a PRNG seeded
// by (seed, episode): a run is reproducible from its seed. On the first failure the episode's
// op list is shrunk (cut after the failing op, then delta debugging, then each op's numbers
// zeroed where the failure survives it), printed, saved as a replayable JSON file, and the
// process exits 1.
import { writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { runOps, opName, generate, episodeSeed, episodeConfig } from './model.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const lib = await import(join(here, '../../dist/index.js'));

function args() {
  const out = { ops: 100000, episode: 2000, ram: 'mix', seed: undefined, replay: undefined, log: false, shrinkSeconds: 600, out: join(here, '../.out/fuzz-counterexample.json') };
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    const k = a[i].replace(/^--/, '');
    const v = () => a[++i];
    if (k === 'ops') out.ops = Number(v());
    else if (k === 'seed') out.seed = Number(v());
    else if (k === 'episode') out.episode = Number(v());
    else if (k === 'ram') out.ram = v();
    else if (k === 'replay') out.replay = v();
    else if (k === 'shrink') out.shrinkFile = v();
    else if (k === 'log') out.log = true;
    else if (k === 'shrink-seconds') out.shrinkSeconds = Number(v());
    else if (k === 'out') out.out = v();
    else if (k === 'help' || k === 'h') { console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 14).join('\n')); process.exit(0); }
    else throw new Error(`unknown option ${a[i]}`);
  }
  for (const k of ['ops', 'episode']) if (!Number.isInteger(out[k]) || out[k] < 1) throw new Error(`--${k} must be a positive integer`);
  out.seed ??= Math.floor(Math.random() * 2 ** 31);
  if (!Number.isInteger(out.seed) || out.seed < 0) throw new Error('--seed must be a non-negative integer');
  return out;
}

/** A failure's kind, without numbers: shrinking must keep this one, not find another. */
function signature(e) {
  const m = String(e?.message ?? e);
  const body = m.replace(/^op #\d+ [^:]*: /, '').replace(/0x[0-9a-f]+|\d+/g, 'N');
  return body.slice(0, 60);
}

async function attempt(ops, cfg) {
  try { await runOps(lib, ops, cfg); return null; } catch (e) { return e; }
}

/** Shrink `ops` (failing with signature `sig`) within the time budget. */
async function shrink(ops, cfg, sig, seconds, firstError) {
  const deadline = Date.now() + seconds * 1000;
  let best = ops, bestErr = firstError, runs = 0;
  const fails = async (cand) => {
    runs++;
    const e = await attempt(cand, cfg);
    if (e && signature(e) === sig) { best = cand; bestErr = e; return true; }
    return false;
  };
  // 1. Nothing after the failing op matters.
  const at = bestErr?.index;
  if (Number.isInteger(at) && at < best.length - 1) await fails(best.slice(0, at + 1));
  // 2. Delta debugging: drop chunks, from halves down to single ops.
  for (let chunk = Math.max(1, best.length >> 1); chunk >= 1 && Date.now() < deadline; chunk = chunk >> 1) {
    for (let i = 0; i < best.length && Date.now() < deadline;) {
      const cand = best.slice(0, i).concat(best.slice(i + chunk));
      if (cand.length > 0 && (await fails(cand))) {
        const j = bestErr?.index;
        if (Number.isInteger(j) && j < best.length - 1) await fails(best.slice(0, j + 1));
        continue; // same i: the next chunk slid into place
      }
      i += chunk;
    }
    if (chunk === 1) break;
  }
  // 3. Simpler numbers: each of an op's a..d to 0 where the failure stays.
  for (let i = 0; i < best.length && Date.now() < deadline; i++) {
    for (let k = 1; k <= 4 && Date.now() < deadline; k++) {
      if (best[i][k] === 0) continue;
      const cand = best.map((op, j) => (j === i ? op.map((x, m) => (m === k ? 0 : x)) : op));
      if (opName(cand[i]) !== opName(best[i])) continue;
      await fails(cand);
    }
  }
  return { ops: best, error: bestErr, runs, timedOut: Date.now() >= deadline };
}

function fmtStats(acc) {
  return Object.entries(acc).map(([k, v]) => `${k} ${v}`).join(', ');
}

/** Print and save a shrunk counterexample. */
async function report(s, cfg, seed, episode, out) {
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ seed, episode, config: cfg, failure: String(s.error?.message ?? s.error), ops: s.ops }, null, 1));
  console.log(`shrunk to ${s.ops.length} ops in ${s.runs} runs${s.timedOut ? ' (time budget reached)' : ''}:`);
  const logged = [];
  await attempt(s.ops, { ...cfg, log: (l) => logged.push(l) });
  for (const l of logged) console.log(`  ${l}`);
  console.log(`failure: ${s.error?.message ?? s.error}`);
  console.log(`counterexample saved: ${out}\nreplay it with: npm run fuzz -- --replay ${out} --log`);
}

async function replay(file, log) {
  const c = JSON.parse(readFileSync(file, 'utf8'));
  console.log(`replaying ${c.ops.length} ops (seed ${c.seed}, episode ${c.episode}, ${c.config.ramBytes >> 20} MiB, TLB ${c.config.tlbEntries})`);
  const e = await attempt(c.ops, { ...c.config, log: log ? (l) => console.log(l) : undefined });
  if (!e) { console.log('replay passed: the failure is gone'); return 0; }
  console.log(`replay failed as recorded:\n${e.stack ?? e}`);
  return 1;
}

async function main() {
  const o = args();
  if (o.replay) process.exit(await replay(o.replay, o.log));
  if (o.shrinkFile) {
    const c = JSON.parse(readFileSync(o.shrinkFile, 'utf8'));
    const e = await attempt(c.ops, c.config);
    if (!e) { console.log('the op list passes: nothing to shrink'); process.exit(0); }
    console.log(`failure: ${e.message}\nshrinking ${c.ops.length} ops (at most ${o.shrinkSeconds} s)...`);
    await report(await shrink(c.ops, c.config, signature(e), o.shrinkSeconds, e), c.config, c.seed, c.episode, o.out);
    process.exit(1);
  }
  console.log(`wasm-mmu fuzz: seed ${o.seed}, ${o.ops} ops in episodes of ${o.episode}, RAM ${o.ram === 'mix' ? '2/4 MiB' : `${o.ram} MiB`}`);
  console.log(`replay this run with: npm run fuzz -- --ops ${o.ops} --seed ${o.seed} --episode ${o.episode} --ram ${o.ram}`);
  const t0 = Date.now();
  let done = 0, lastPrint = t0;
  const acc = { pswpout: 0, pswpin: 0, writeback: 0, pgsteal: 0, cowCopies: 0, pgfault: 0, checks: 0, invariants: 0, sweeps: 0, errorsExpected: 0 };
  for (let ep = 0; done < o.ops; ep++) {
    const n = Math.min(o.episode, o.ops - done);
    const seed = episodeSeed(o.seed, ep);
    const cfg = episodeConfig(o.ram, ep, seed);
    const ops = generate(seed, n);
    let stats;
    try {
      stats = await runOps(lib, ops, cfg);
    } catch (e) {
      console.log(`\nFAILED in episode ${ep} (episode seed ${seed}, ${cfg.ramBytes >> 20} MiB, TLB ${cfg.tlbEntries}) after ${done} ops:\n${e.stack ?? e}`);
      const sig = signature(e);
      console.log(`\nshrinking (at most ${o.shrinkSeconds} s)...`);
      const s = await shrink(ops, cfg, sig, o.shrinkSeconds, e);
      await report(s, cfg, o.seed, ep, o.out);
      process.exit(1);
    }
    done += n;
    for (const k of Object.keys(acc)) acc[k] += k === 'errorsExpected' ? Object.values(stats.errors).reduce((x, y) => x + y, 0) : stats[k] ?? 0;
    if (Date.now() - lastPrint > 10000 || done >= o.ops) {
      lastPrint = Date.now();
      const secs = (Date.now() - t0) / 1000;
      console.log(`${done} ops, ${ep + 1} episodes, ${secs.toFixed(0)} s (${Math.round(done / secs)} ops/s): ${fmtStats(acc)}`);
    }
  }
  console.log(`PASSED: ${done} ops, seed ${o.seed}, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

await main();
