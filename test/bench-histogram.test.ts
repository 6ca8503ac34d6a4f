import { test } from 'node:test'
import assert from 'node:assert/strict'
import { HISTOGRAM_MAX_NS, LatencyHistogram, bucketIndex, bucketUpperNs } from '../harness/bench/histogram.js'
import { Xoshiro128 } from '../harness/bench/prng.js'

/** Log-uniform latencies from 100 ns to 100 s. */
function samples(seed: number, n: number, lo = 100, decades = 9): number[] {
  const rng = new Xoshiro128(seed)
  return Array.from({ length: n }, () => Math.round(lo * 10 ** ((rng.next() / 2 ** 32) * decades)))
}

function exactPercentile(sorted: readonly number[], p: number): number {
  return sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1]!
}

const PS = [1, 10, 50, 90, 99, 99.9, 99.99]

function assertWithin1pct(got: number, want: number, what: string): void {
  assert.ok(Math.abs(got - want) <= want * 0.01, `${what}: ${got} vs exact ${want}`)
}

test('each value lands in a bucket at most 1/128 wide above it, 100 ns … 100 s', () => {
  for (const v of samples(1, 50_000)) {
    const upper = bucketUpperNs(bucketIndex(v))
    assert.ok(upper >= v && (upper - v) / v <= 1 / 128, `value ${v}, upper ${upper}`)
    assert.ok(bucketIndex(v) === 0 || bucketUpperNs(bucketIndex(v) - 1) < v)
  }
  for (let k = 8; k <= 40; k++) for (const v of [2 ** k - 1, 2 ** k, 2 ** k + 1]) assert.ok(bucketUpperNs(bucketIndex(v)) >= v, `2^${k}`)
  assert.equal(bucketIndex(HISTOGRAM_MAX_NS * 10), bucketIndex(HISTOGRAM_MAX_NS))
})

test('percentiles are within 1% of the exact ones; min, max, mean and stddev are exact', () => {
  const xs = samples(2, 100_000)
  const h = new LatencyHistogram()
  for (const x of xs) h.record(x)
  const sorted = [...xs].sort((a, b) => a - b)
  for (const p of PS) assertWithin1pct(h.percentile(p), exactPercentile(sorted, p), `p${p}`)
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length
  const sd = Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (xs.length - 1))
  assert.equal(h.count, xs.length)
  assert.equal(h.minNs, sorted[0])
  assert.equal(h.maxNs, sorted[sorted.length - 1])
  assert.ok(Math.abs(h.meanNs - mean) <= mean * 1e-12)
  assert.ok(Math.abs(h.stddevNs - sd) <= sd * 1e-9)
})

test('a tiny spread on a large mean keeps an exact stddev', () => {
  const h = new LatencyHistogram()
  for (let i = 0; i < 10_000; i++) h.record(1e9 + (i % 2))
  assert.ok(Math.abs(h.stddevNs - 0.50002500187) < 1e-6, String(h.stddevNs))
})

test('merged histograms give the percentiles of the combined samples (within 1%), never an average', () => {
  const fast = samples(3, 40_000, 1_000, 2)
  const slow = samples(4, 10_000, 1_000_000, 2)
  const a = new LatencyHistogram()
  const b = new LatencyHistogram()
  for (const x of fast) a.record(x)
  for (const x of slow) b.record(x)
  const merged = new LatencyHistogram().merge(a).merge(b.toJSON())
  const all = [...fast, ...slow].sort((x, y) => x - y)
  for (const p of PS) assertWithin1pct(merged.percentile(p), exactPercentile(all, p), `merged p${p}`)
  const averaged = (a.percentile(99) + b.percentile(99)) / 2
  assert.ok(Math.abs(averaged - exactPercentile(all, 99)) > exactPercentile(all, 99) * 0.1, 'the average of percentiles is far off here')
  const mean = all.reduce((s, x) => s + x, 0) / all.length
  const sd = Math.sqrt(all.reduce((s, x) => s + (x - mean) ** 2, 0) / (all.length - 1))
  assert.ok(Math.abs(merged.stddevNs - sd) <= sd * 1e-9)
  assert.equal(merged.minNs, all[0])
  assert.equal(merged.maxNs, all[all.length - 1])
})

test('toJSON and fromJSON round-trip; the JSON is sparse and self-describing', () => {
  const h = new LatencyHistogram()
  for (const x of samples(5, 5_000)) h.record(x)
  const j = JSON.parse(JSON.stringify(h.toJSON())) as ReturnType<LatencyHistogram['toJSON']>
  assert.equal(j.n, 5_000)
  assert.equal(j.counts.reduce((s, c) => s + c, 0), 5_000)
  assert.ok(j.bucketNs.every((b, i) => i === 0 || b > j.bucketNs[i - 1]!))
  const back = LatencyHistogram.fromJSON(j)
  for (const p of PS) assert.equal(back.percentile(p), h.percentile(p))
  assert.equal(back.meanNs, h.meanNs)
  assert.ok(Math.abs(back.stddevNs - h.stddevNs) <= h.stddevNs * 1e-12)
  assert.deepEqual(back.toJSON().bucketNs, j.bucketNs)
  assert.throws(() => LatencyHistogram.fromJSON({ ...j, n: 1 }), RangeError)
})

test('an empty histogram reports zeros', () => {
  const h = new LatencyHistogram()
  assert.deepEqual([h.count, h.minNs, h.maxNs, h.meanNs, h.stddevNs, h.percentile(99)], [0, 0, 0, 0, 0, 0])
  assert.equal(new LatencyHistogram().merge(h).count, 0)
})
