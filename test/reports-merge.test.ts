import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mergeReports } from '../reports/merge.js'
import { isReportError } from '../reports/errors.js'
import { histogramPercentile } from '../reports/histogram.js'
import { validateReport } from '../reports/validate.js'
import { computeVerdict, countChecks } from '../reports/verdict.js'
import type { BenchmarkResult, CertReport } from '../reports/document.js'
import { benchmarkFromSamples, buildReport, latencySamples, seededRandom } from './fixtures/report-fixture.js'

/** Latency samples of one workload as three shards measured them: different speeds, different sizes. */
function shardSamples() {
  const random = seededRandom(99)
  return [
    { baseline: latencySamples(random, 4000, 30_000, 0.2), filtered: latencySamples(random, 4000, 34_000, 0.2), runtimeMs: 2000 },
    { baseline: latencySamples(random, 3000, 42_000, 0.3), filtered: latencySamples(random, 3000, 47_000, 0.3), runtimeMs: 1500 },
    { baseline: latencySamples(random, 600, 300_000, 0.4), filtered: latencySamples(random, 600, 380_000, 0.5), runtimeMs: 300 },
  ]
}

/**
 * The unsharded report and the same run split round-robin into three shards, each carrying the
 * shared workload as measured on its part of the samples.
 */
function run(options: Parameters<typeof buildReport>[0] = {}): { whole: CertReport; shards: CertReport[] } {
  const base = buildReport({ samples: 300, ...options })
  const parts = shardSamples()
  const shared = (p: typeof parts): BenchmarkResult =>
    benchmarkFromSamples('4k-randread-shared', 'paced', {
      baseline: p.flatMap(x => x.baseline), filtered: p.flatMap(x => x.filtered),
    }, p.reduce((s, x) => s + x.runtimeMs, 0), 4096)
  const whole: CertReport = { ...base, benchmarks: [...base.benchmarks, shared(parts)] }
  const shards = [0, 1, 2].map(i => {
    const checks = base.checks.filter((_, j) => j % 3 === i)
    const { verdict, reasons } = computeVerdict(checks, { certified: base.options!.certified })
    const doc: CertReport = {
      ...base,
      startedAt: new Date(Date.parse(base.startedAt) + (2 - i) * 60_000).toISOString(),
      durationMs: checks.reduce((s, c) => s + c.durationMs, 0),
      verdict, reasons, counts: countChecks(checks), checks,
      options: { ...base.options!, shard: { index: i + 1, count: 3 } },
      // The standard benchmarks ran in shard 3 only; the shared workload was measured by all three.
      benchmarks: [...(i === 2 ? base.benchmarks : []), shared([parts[i]!])],
    }
    if (i !== 2) delete doc.replicaLag
    return doc
  })
  return { whole, shards }
}

test('three merged shards give the unsharded verdict, reasons and counts', () => {
  const { whole, shards } = run()
  const merged = mergeReports(shards)
  assert.deepEqual(validateReport(merged), { ok: true, errors: [] })
  assert.equal(merged.verdict, whole.verdict)
  assert.equal(merged.verdict, 'not-ready')
  assert.deepEqual(merged.counts, countChecks(whole.checks))
  assert.deepEqual([...merged.reasons!].sort(), [...whole.reasons!].sort())
  assert.deepEqual(merged.checks.map(c => c.id).sort(), whole.checks.map(c => c.id).sort())
  assert.equal(merged.options?.shard, undefined)
  assert.equal(merged.signature, undefined)
})

test('a shard alone may be ready while the whole catalogue is not', () => {
  const { shards } = run()
  assert.ok(shards.some(s => s.verdict === 'ready'), 'the fixture should have a ready shard')
  assert.equal(mergeReports(shards).verdict, 'not-ready')
})

test('merged percentiles are recomputed from merged histograms, equal to the unsharded ones, not averaged', () => {
  const { whole, shards } = run()
  const merged = mergeReports(shards)
  const find = (doc: CertReport) => doc.benchmarks.find(b => b.workload === '4k-randread-shared')!
  const m = find(merged)
  const w = find(whole)
  assert.deepEqual(m.filtered.histogram, w.filtered.histogram)
  assert.deepEqual(m.baseline.histogram, w.baseline.histogram)
  assert.deepEqual(m.filtered.latencyNs, w.filtered.latencyNs)
  assert.deepEqual(m.baseline.latencyNs, w.baseline.latencyNs)
  assert.equal(m.filtered.iops, w.filtered.iops)
  assert.deepEqual(m.overhead, w.overhead)

  const averagedP99 = shards.reduce((s, d) => s + find(d).filtered.latencyNs.p99, 0) / shards.length
  assert.notEqual(m.filtered.latencyNs.p99, averagedP99)
  assert.ok(Math.abs(m.filtered.latencyNs.p99 - averagedP99) / m.filtered.latencyNs.p99 > 0.2, 'the fixture should make averaging visibly wrong')

  const all = shardSamples().flatMap(p => p.filtered).sort((a, b) => a - b)
  const exact = all[Math.ceil(0.99 * all.length) - 1]!
  assert.ok(Math.abs(histogramPercentile(m.filtered.histogram, 99) - exact) / exact <= 0.01)
})

test('benchmarks present in one shard only are kept as they are', () => {
  const { whole, shards } = run()
  const merged = mergeReports(shards)
  for (const b of whole.benchmarks.filter(x => x.workload !== '4k-randread-shared')) {
    assert.deepEqual(merged.benchmarks.find(x => x.workload === b.workload && x.mode === b.mode), b)
  }
  assert.deepEqual(merged.replicaLag, whole.replicaLag)
})

test('durations are summed and startedAt is the earliest shard’s', () => {
  const { shards } = run()
  const merged = mergeReports(shards)
  assert.equal(merged.durationMs, shards.reduce((s, d) => s + d.durationMs, 0))
  assert.equal(merged.startedAt, shards.map(s => s.startedAt).sort()[0])
})

test('under --certified the merged verdict counts skipped required checks', () => {
  const relaxed = mergeReports(run({ outcome: 'ready', requiredSkips: ['lifecycle.upgrade'] }).shards)
  assert.equal(relaxed.verdict, 'ready')
  const certified = mergeReports(run({ outcome: 'ready', requiredSkips: ['lifecycle.upgrade'], certified: true }).shards)
  assert.equal(certified.verdict, 'not-ready')
  assert.deepEqual(certified.reasons, ['lifecycle.upgrade skipped, which --certified does not allow: no --upgrade-from package given'])
})

function conflict(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => isReportError(err, 'ReportMergeConflict') && err.exitCode === 2 && pattern.test(err.message))
}

test('reports of different runs, or an incomplete set of shards, are refused', () => {
  const { shards } = run()
  conflict(() => mergeReports([shards[0]!, { ...shards[1]!, seed: 1 }, shards[2]!]), /seed differs/)
  conflict(() => mergeReports([shards[0]!, { ...shards[1]!, filter: { ...shards[1]!.filter, version: '9.9.9' } }, shards[2]!]), /filter differs/)
  conflict(() => mergeReports([shards[0]!, shards[2]!]), /missing shard\(s\) 2\/3/)
  conflict(() => mergeReports([shards[0]!, shards[0]!, shards[1]!, shards[2]!]), /shard 1\/3 given twice/)
  conflict(() => mergeReports([]), /no reports/)
})

test('a check in two shards must have the same result', () => {
  const { shards } = run()
  const dup = structuredClone(shards[0]!.checks[0]!)
  const same = { ...shards[1]!, checks: [...shards[1]!.checks, dup] }
  assert.equal(mergeReports([shards[0]!, same, shards[2]!]).checks.length, run().whole.checks.length)
  const differing = { ...shards[1]!, checks: [...shards[1]!.checks, { ...dup, status: 'failed' as const, message: 'flaky' }] }
  conflict(() => mergeReports([shards[0]!, differing, shards[2]!]), new RegExp(`check ${dup.id.replace('.', '\\.')} appears twice with different results`))
})
