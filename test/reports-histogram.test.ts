import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  LatencyHistogram, SUB_BUCKETS, bucketIndex, bucketUpperNs, histogramCount, histogramPercentile, mergeHistograms, summarizeHistogram,
} from '../reports/histogram.js'
import { latencySamples, seededRandom } from './fixtures/report-fixture.js'

function exactPercentile(sorted: readonly number[], p: number): number {
  return sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1]!
}

test('every value lands in a bucket whose upper bound is within 1/128 above it (100 ns … 100 s)', () => {
  const random = seededRandom(7)
  for (let i = 0; i < 20000; i++) {
    const v = Math.round(100 * 10 ** (random() * 9))
    const upper = bucketUpperNs(bucketIndex(v))
    assert.ok(upper >= v, `upper ${upper} < value ${v}`)
    assert.ok((upper - v) / v <= 1 / SUB_BUCKETS, `value ${v}: upper ${upper} is ${(((upper - v) / v) * 100).toFixed(3)}% high`)
    if (bucketIndex(v) > 0) assert.ok(bucketUpperNs(bucketIndex(v) - 1) < v, 'the previous bucket must end below the value')
  }
})

test('bucket bounds are exact at powers of two, where floating-point log2 could round', () => {
  for (let k = 8; k <= 40; k++) {
    for (const v of [2 ** k - 1, 2 ** k, 2 ** k + 1]) {
      const i = bucketIndex(v)
      assert.ok(bucketUpperNs(i) >= v && (i === 0 || bucketUpperNs(i - 1) < v), `value ${v}`)
    }
  }
})

test('percentiles read back within 1% of the exact sample percentiles', () => {
  const samples = latencySamples(seededRandom(11), 50000, 80_000, 0.6)
  const h = new LatencyHistogram()
  for (const s of samples) h.record(s)
  const sorted = [...samples].sort((a, b) => a - b)
  for (const p of [50, 90, 99, 99.9]) {
    const exact = exactPercentile(sorted, p)
    const got = h.percentile(p)
    assert.ok(got >= exact && (got - exact) / exact <= 0.01, `p${p}: exact ${exact}, histogram ${got}`)
  }
  const s = h.summary()
  assert.equal(s.max, sorted[sorted.length - 1])
  assert.equal(s.mean, Math.round(samples.reduce((a, b) => a + b, 0) / samples.length))
})

test('merging histograms equals recording every value in one, serialized or not', () => {
  const random = seededRandom(3)
  const parts = [latencySamples(random, 3000, 20_000, 0.2), latencySamples(random, 1000, 90_000, 0.5), latencySamples(random, 200, 2_000_000, 0.3)]
  const all = new LatencyHistogram()
  const each = parts.map(part => {
    const h = new LatencyHistogram()
    for (const v of part) { h.record(v); all.record(v) }
    return h
  })
  assert.deepEqual(mergeHistograms(each.map(h => h.toJSON())), all.toJSON())
  const merged = new LatencyHistogram()
  for (const h of each) merged.merge(h)
  assert.deepEqual(merged.toJSON(), all.toJSON())
  assert.deepEqual(LatencyHistogram.from(all.toJSON()).toJSON(), all.toJSON())
  assert.equal(histogramCount(all.toJSON()), 4200)
})

test('the merged p99 is not the average of the parts’ p99s', () => {
  const random = seededRandom(5)
  const fast = new LatencyHistogram()
  const slow = new LatencyHistogram()
  for (const v of latencySamples(random, 9900, 50_000, 0.1)) fast.record(v)
  for (const v of latencySamples(random, 100, 5_000_000, 0.1)) slow.record(v)
  const merged = mergeHistograms([fast.toJSON(), slow.toJSON()])
  const averaged = (fast.percentile(99) + slow.percentile(99)) / 2
  const p99 = histogramPercentile(merged, 99)
  // 1% of the merged values are the slow ones: the merged p99 sits at the top of the fast part.
  assert.ok(p99 < 100_000, `merged p99 ${p99}`)
  assert.ok(averaged > 2_000_000, `averaged p99 ${averaged}`)
})

test('an empty histogram summarises to zeros and merges as a no-op', () => {
  const empty = new LatencyHistogram().toJSON()
  assert.deepEqual(summarizeHistogram(empty), { p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 })
  const h = new LatencyHistogram()
  h.record(1234)
  assert.deepEqual(mergeHistograms([empty, h.toJSON()]), h.toJSON())
})
