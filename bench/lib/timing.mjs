// Two ways to time a case, and when each is used.
//
// benny (benchmark.js underneath) for the hardware cases: each benny operation is a batch
// of 256 to 65,536 translations, fills or walks (microseconds), so benchmark.js's adaptive
// cycle count and its sample statistics (margin of error) work well, and its own per-call
// overhead (~6 ns, measured on Node 20) is below 1% of one batch. A case reports the
// median sample divided by the batch size.
//
// Our own loop with process.hrtime.bigint() for the fault cases: one repetition maps
// 128 MiB, faults 32,768 pages and unmaps them (milliseconds), and the fork cases need
// work outside the timed region in every repetition (fork before, destroy after), which
// benny cannot leave out of a sample. One warm-up repetition, then repetitions until the
// time budget is spent (at least `minReps`); the median per operation is reported, with
// the spread (interquartile range / median).

import b from 'benny'; // benny is CommonJS: on Node 20 the default import is its exports object

/** Sink for results, so the JIT cannot drop a loop whose result is unused. */
export const sink = { value: 0 };

/**
 * Run `cases` ({ id, name, batch, fn }) as one benny suite. Returns, per id, ns per inner
 * operation (median sample / batch), the relative margin of error (%) and the sample count.
 */
export async function runBenny(suiteName, cases, { minTime, maxTime, log }) {
  const started = Date.now();
  const summary = await b.suite(
    suiteName,
    ...cases.map((c) => b.add(c.name, c.fn)),
    b.configure({ cases: { minTime, maxTime } }),
    b.cycle((result) => {
      const c = cases.find((k) => k.name === result.name);
      const ns = (result.details.median * 1e9) / c.batch;
      log(`  ${pad(c.name, 46)} ${fmtNs(ns).padStart(10)} ns/op  ±${result.margin.toFixed(1)}%  (${result.samples} samples)`);
      return undefined; // print our own line; benny's default redraws the terminal
    }),
  );
  const out = {};
  for (const r of summary.results) {
    const c = cases.find((k) => k.name === r.name);
    out[c.id] = {
      ns: (r.details.median * 1e9) / c.batch,
      spreadPct: r.margin,
      samples: r.samples,
      method: `benny: median sample / batch of ${c.batch}; spread = relative margin of error`,
    };
  }
  log(`  (${suiteName}: ${((Date.now() - started) / 1000).toFixed(1)} s)`);
  return out;
}

/**
 * Time `rep()` (which returns { ns, ops }: the nanoseconds it measured itself and the
 * operations done) after one warm-up call, until `budgetMs` is spent and at least
 * `minReps` repetitions ran. Returns ns per operation: median, min, spread, repetitions.
 */
export function timeReps(rep, { budgetMs, minReps = 3, maxReps = 500 }) {
  rep();
  const perOp = [];
  const start = process.hrtime.bigint();
  const budget = BigInt(Math.round(budgetMs * 1e6));
  while (perOp.length < maxReps && (perOp.length < minReps || process.hrtime.bigint() - start < budget)) {
    const { ns, ops } = rep();
    perOp.push(ns / ops);
  }
  perOp.sort((x, y) => x - y);
  const n = perOp.length;
  const median = n % 2 ? perOp[(n - 1) / 2] : (perOp[n / 2 - 1] + perOp[n / 2]) / 2;
  const q1 = perOp[Math.floor((n - 1) / 4)], q3 = perOp[Math.ceil((3 * (n - 1)) / 4)];
  return {
    ns: median,
    min: perOp[0],
    spreadPct: ((q3 - q1) / median) * 100,
    samples: n,
    method: 'hrtime loop: median of repetitions; spread = interquartile range / median',
  };
}

/** Nanoseconds elapsed while `fn` runs. */
export function timed(fn) {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0);
}

export function pad(s, n) {
  s = String(s);
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

/** A duration in ns with 3 significant digits. */
export function fmtNs(ns) {
  if (ns === undefined || ns === null || !Number.isFinite(ns)) return '—';
  if (ns >= 1000) return ns.toFixed(0);
  if (ns >= 100) return ns.toFixed(1);
  if (ns >= 10) return ns.toFixed(2);
  return ns.toFixed(3);
}

/** A rate (per second) as 12.3 M / 456 k. */
export function fmtRate(perSec) {
  if (perSec === undefined || perSec === null || !Number.isFinite(perSec)) return '—';
  if (perSec >= 1e9) return `${(perSec / 1e9).toFixed(2)} G`;
  if (perSec >= 1e6) return `${(perSec / 1e6).toFixed(2)} M`;
  if (perSec >= 1e3) return `${(perSec / 1e3).toFixed(1)} k`;
  return perSec.toFixed(0);
}
