/**
 * The statistics of the performance verdicts, on synthetic data of known distribution: each
 * interval covers the true value about as often as it claims, the estimates are where they should
 * be, and the sequential rule stops where the evidence is decisive and only there. Everything is
 * seeded: the same run gives the same figures.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { bootstrapInterval, HistogramSlices, judge, mad, median, normalQuantile, perLookConfidence, quantile, rankSumInterval, SeededRandom, sequential, signedRankInterval } from '../harness/bench/stats.js'
import { LatencyHistogram } from '../harness/bench/histogram.js'

/** Fraction of `trials` whose interval holds `truth`. */
function coverage(trials: number, seed: number, one: (rng: SeededRandom) => { low: number; high: number }, truth: number): number {
  const rng = new SeededRandom(seed)
  let hits = 0
  for (let t = 0; t < trials; t++) {
    const i = one(rng)
    if (i.low <= truth && truth <= i.high) hits++
  }
  return hits / trials
}

/** A Laplace deviate (heavy-tailed, symmetric). */
const laplace = (rng: SeededRandom) => {
  const u = rng.next() - 0.5
  return -Math.sign(u) * Math.log(1 - 2 * Math.abs(u))
}

test('quantile, median and mad of small samples', () => {
  assert.equal(median([3, 1, 2]), 2)
  assert.equal(median([4, 1, 2, 3]), 2.5)
  assert.equal(quantile([10, 20, 30, 40, 50], 0.25), 20)
  assert.ok(Number.isNaN(quantile([], 0.5)))
  assert.equal(mad([1, 1, 1, 1]), 0)
  assert.ok(Math.abs(mad([1, 2, 3, 4, 100]) - 1.4826) < 1e-9)
})

test('the normal quantile matches known values', () => {
  assert.ok(Math.abs(normalQuantile(0.975) - 1.959964) < 1e-5)
  assert.ok(Math.abs(normalQuantile(0.5)) < 1e-12)
  assert.ok(Math.abs(normalQuantile(0.001) + 3.090232) < 1e-5)
})

test('the seeded generator repeats itself and is uniform', () => {
  const a = new SeededRandom(7)
  const b = new SeededRandom(7)
  const xs = Array.from({ length: 20_000 }, () => a.next())
  assert.deepEqual(xs.slice(0, 5), Array.from({ length: 5 }, () => b.next()))
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length
  assert.ok(Math.abs(mean - 0.5) < 0.01, `mean ${mean}`)
  assert.ok(xs.every(x => x >= 0 && x < 1))
})

test('signed-rank interval: exact small-sample values', () => {
  // n = 6: the only 95 % interval is [min, max] of the Walsh averages, at 1 − 2/64 confidence
  const i = signedRankInterval([1, 2, 3, 4, 5, 6])
  assert.equal(i.estimate, 3.5)
  assert.equal(i.low, 1)
  assert.equal(i.high, 6)
  assert.ok(Math.abs(i.confidence - (1 - 2 / 64)) < 1e-12)
  // with 5 pairs no interval reaches 95 %: it is infinite, so nothing can be decided on it
  const few = signedRankInterval([1, 2, 3, 4, 5])
  assert.equal(few.low, -Infinity)
  assert.equal(judge(few, 0, 'above'), 'undecided')
})

test('signed-rank interval covers the centre of symmetric differences ~95 % of the time (normal and heavy-tailed)', t => {
  for (const [name, draw] of [['normal', (r: SeededRandom) => r.normal()], ['laplace', laplace]] as const) {
    for (const n of [8, 15, 30]) {
      const c = coverage(600, 11 + n, rng => signedRankInterval(Array.from({ length: n }, () => 0.3 + 0.5 * draw(rng))), 0.3)
      t.diagnostic(`${name}, n = ${n}: coverage ${c}`)
  assert.ok(c >= 0.92 && c <= 0.995, `${name}, n = ${n}: coverage ${c}`)
    }
  }
})

test('rank-sum (Mann–Whitney) interval covers a known shift ~95 % of the time, exact and approximate', t => {
  for (const [m, n] of [[8, 8], [12, 20], [60, 60]] as const) {
    const c = coverage(500, 100 + m + n, rng => {
      // log IOPS of two sides whose true ratio is 0.7 (a shift of log 0.7), lognormal noise
      const x = Array.from({ length: m }, () => Math.log(0.7) + 0.3 * rng.normal())
      const y = Array.from({ length: n }, () => 0.3 * rng.normal())
      return rankSumInterval(x, y)
    }, Math.log(0.7))
    t.diagnostic(`m = ${m}, n = ${n}: coverage ${c}`)
  assert.ok(c >= 0.92 && c <= 0.99, `m = ${m}, n = ${n}: coverage ${c}`)
  }
  const i = rankSumInterval([5, 6, 7], [1, 2, 3])
  assert.equal(i.estimate, 4)
})

test('bootstrap of a median covers the true median ~95 % of the time', t => {
  // exponential with mean 1: median ln 2
  const c = coverage(300, 5, rng => {
    const xs = Array.from({ length: 40 }, () => -Math.log(1 - rng.next()))
    return bootstrapInterval(xs.length, idx => median(Array.from(idx, i => xs[i]!)), { seed: rng.int(1e9), resamples: 600 })
  }, Math.LN2)
  t.diagnostic(`coverage ${c}`)
  assert.ok(c >= 0.89 && c <= 0.99, `coverage ${c}`)
})

test('bootstrap over slices of merged histograms covers the true p99', t => {
  // latencies exponential with mean 50 µs: the true p99 is 50 µs × ln 100; 20 slices of 500 I/Os
  const truth = 50_000 * Math.log(100)
  const c = coverage(200, 9, rng => {
    const slices = Array.from({ length: 20 }, () => {
      const h = new LatencyHistogram()
      for (let i = 0; i < 500; i++) h.record(-50_000 * Math.log(1 - rng.next()))
      return h.toJSON()
    })
    const set = new HistogramSlices(slices)
    return bootstrapInterval(set.length, idx => set.percentile(idx, 99), { seed: rng.int(1e9), resamples: 500 })
  }, truth)
  t.diagnostic(`coverage ${c}`)
  assert.ok(c >= 0.88 && c <= 0.995, `coverage ${c}`)
})

test('HistogramSlices merges as LatencyHistogram does', () => {
  const rng = new SeededRandom(3)
  const hs = Array.from({ length: 4 }, () => {
    const h = new LatencyHistogram()
    for (let i = 0; i < 300; i++) h.record(1000 + 100_000 * rng.next() ** 3)
    return h
  })
  const merged = new LatencyHistogram()
  for (const h of hs) merged.merge(h)
  const set = new HistogramSlices(hs.map(h => h.toJSON()))
  for (const p of [50, 90, 99, 99.9]) assert.equal(set.percentile([0, 1, 2, 3], p), merged.percentile(p), `p${p}`)
  // a resample counts a slice as often as it is drawn
  const twice = new LatencyHistogram().merge(hs[0]!).merge(hs[0]!).merge(hs[1]!)
  assert.equal(set.percentile([0, 0, 1], 99), twice.percentile(99))
})

test('judge: only an interval wholly on one side of the bound decides', () => {
  assert.equal(judge({ low: 0.85, high: 1.2 }, 0.8, 'above'), 'pass')
  assert.equal(judge({ low: 0.5, high: 0.79 }, 0.8, 'above'), 'fail')
  assert.equal(judge({ low: 0.7, high: 0.9 }, 0.8, 'above'), 'undecided')
  assert.equal(judge({ low: -10, high: -1 }, 0, 'below'), 'pass')
  assert.equal(judge({ low: 1, high: 10 }, 0, 'below'), 'fail')
  assert.equal(judge({ low: -1, high: 1 }, 0, 'below'), 'undecided')
})

/** A sequential IOPS comparison on synthetic slices: log ratios with the given centre and noise. */
async function synthetic(seed: number, ratio: number, noise: number, looks: readonly number[] = [7, 12, 20]) {
  const rng = new SeededRandom(seed)
  const d: number[] = []
  const conf = perLookConfidence(0.95, looks.length)
  return sequential({
    looks,
    round: async () => {
      d.push(Math.log(ratio) + noise * rng.normal())
    },
    evaluate: () => {
      const i = signedRankInterval(d, conf)
      return { estimate: Math.exp(i.estimate), low: Math.exp(i.low), high: Math.exp(i.high) }
    },
    bound: 0.8,
    must: 'above',
  })
}

test('per-look confidence: Bonferroni over the looks', () => {
  assert.ok(Math.abs(perLookConfidence(0.95, 3) - (1 - 0.05 / 3)) < 1e-12)
  assert.equal(perLookConfidence(0.95, 1), 0.95)
})

test('sequential: a clear pass and a clear fail stop at the first look, a ratio at the bound spends the budget', async () => {
  let passes = 0, fails = 0
  for (let s = 0; s < 100; s++) {
    const good = await synthetic(s, 1.0, 0.15)
    if (good.judgement === 'pass') passes++
    assert.ok(good.looks <= 3)
    const bad = await synthetic(1000 + s, 0.5, 0.15)
    if (bad.judgement === 'fail') fails++
    assert.equal(bad.rounds, 7, `a ratio of 0.5 took ${bad.rounds} rounds`)
  }
  assert.equal(passes, 100)
  assert.equal(fails, 100)
  // at the bound itself the interval keeps straddling: the budget is spent, no verdict on noise
  let exhausted = 0
  for (let s = 0; s < 50; s++) {
    const at = await synthetic(2000 + s, 0.8, 0.15)
    if (at.exhausted) {
      exhausted++
      assert.equal(at.rounds, 20)
      assert.equal(at.looks, 3)
      assert.equal(at.judgement, 'undecided')
    }
  }
  assert.ok(exhausted >= 40, `${exhausted} of 50 spent the budget`)
})

test('sequential: a filter just above the bound is almost never failed over all its looks', async () => {
  // true ratio 0.9 (above 0.8), noisy slices: the looks together keep the false failures rare
  let failed = 0
  for (let s = 0; s < 400; s++) if ((await synthetic(5000 + s, 0.9, 0.3)).judgement === 'fail') failed++
  assert.ok(failed <= 8, `${failed} of 400 failed`)
})

test('sequential: noise too high to resolve the bound ends undecided, never failed', async () => {
  let failed = 0, undecided = 0
  for (let s = 0; s < 50; s++) {
    const o = await synthetic(3000 + s, 1.0, 1.5, [7, 12])
    if (o.judgement === 'fail') failed++
    if (o.judgement === 'undecided') undecided++
  }
  assert.equal(failed, 0)
  assert.ok(undecided >= 40, `${undecided}`)
})

test('sequential: the time running out takes the last look early; stopEarly ends at once with a failure', async () => {
  let n = 0
  const timed = await sequential({ looks: [7, 12, 20], round: async () => { n++ }, evaluate: () => ({ low: 0.7, high: 0.9 }), bound: 0.8, must: 'above', stop: () => n >= 9 })
  assert.equal(timed.rounds, 9)
  assert.equal(timed.looks, 2)
  assert.equal(timed.exhausted, true)
  n = 0
  const o = await sequential({ looks: [7, 12, 20], round: async () => { n++ }, evaluate: () => ({ low: 1, high: 2 }), bound: 0.8, must: 'above', stopEarly: () => n === 2 })
  assert.equal(o.judgement, 'fail')
  assert.equal(o.rounds, 2)
})

test('a paced side reports its throughput: 100 IOPS of 4 KiB is 0.41 MB/s, not 0', async () => {
  const { pacedSliceStats } = await import('../harness/bench/engine.js')
  const latency = new LatencyHistogram().toJSON()
  const slice = (seconds: number) => ({ issued: 100 * seconds, completed: 100 * seconds, bytes: 100 * seconds * 4096, errors: 0, firstError: null, late: 0, seconds, latency })
  const s = pacedSliceStats('filtered', [[slice(1)], [slice(2)]])
  assert.equal(Math.round(s.iops), 100)
  assert.equal(s.mbps.toFixed(3), '0.410')
})
