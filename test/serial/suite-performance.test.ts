/**
 * The performance checks on evidence: the bundled reference filters pass them (a `marginal` pass
 * is allowed: on a noisy machine an interval may still straddle its bound when the budget is
 * spent), and each negative control fails exactly its check — a filter that costs as much per I/O
 * as the bare path fails performance.iops, one that completes 2 % of its I/Os 2 ms late fails
 * performance.latency. These runs measure, so this file runs alone (npm test's second phase).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { CertReport } from '../../reports/document.js'
import { isMarginal } from '../../reports/noise.js'
import { check, controlPackage, expectStatuses, referenceOrSkip } from '../helpers/suite-runs.js'

const GREP = '^performance\\.'

/** Marginal passes and the noise, for the test log. */
function describe(doc: CertReport): string {
  return doc.checks.filter(isMarginal).map(c => `${c.id} marginal: ${c.message}`).join('\n') || 'no marginal pass'
}

for (const ref of ['passthrough', 'cache', 'cdp'] as const) {
  test(`the reference ${ref} filter passes the performance checks (marginal allowed)`, async t => {
    const pkg = referenceOrSkip(t, ref)
    if (pkg === null) return
    const doc = await expectStatuses(pkg, GREP, 1, { 'performance.iops': 'passed', 'performance.latency': 'passed', 'performance.scaling': 'passed' }, ref)
    t.diagnostic(describe(doc))
    for (const id of ['performance.iops', 'performance.latency']) {
      const c = check(doc, id)
      const workloads = (c.evidence?.workloads ?? []) as { outcome: string; slices: number }[]
      assert.equal(workloads.length, 4, `${id}: four standard workloads`)
      assert.ok(workloads.every(w => w.outcome === 'pass' || w.outcome === 'marginal'), `${id}: ${JSON.stringify(workloads.map(w => w.outcome))}`)
      assert.ok(workloads.every(w => w.slices >= 6), `${id}: every workload took at least its minimum of slices`)
      assert.ok(c.evidence?.noise, `${id} reports the noise it measured`)
      assert.equal(isMarginal(c), workloads.some(w => w.outcome === 'marginal'), `${id}: marginal exactly when a workload is`)
    }
    // every judged benchmark carries its interval and slices; nothing is a best repetition
    for (const b of doc.benchmarks) {
      assert.ok(b.judgement, `${b.workload} has a judgement`)
      assert.ok(b.filtered.slices !== undefined && b.filtered.slices >= 6)
    }
    assert.doesNotMatch(JSON.stringify(doc.checks.map(c => c.evidence)), /best|ratiosPerRepetition/)
  })
}

test('a filter that costs as much per I/O as the bare path fails performance.iops and nothing else', async t => {
  const doc = await expectStatuses(await controlPackage('double-cost'), GREP, 1, { 'performance.iops': 'failed', 'performance.latency': 'passed', 'performance.scaling': 'passed' }, 'double-cost')
  t.diagnostic(describe(doc))
  const c = check(doc, 'performance.iops')
  assert.match(c.message ?? '', /below the IOPS bound: .*of the reference, 95 % interval \[[\d.]+, [\d.]+\] in \d+ slices, wholly below the bound 0\.8/)
  const failed = (c.evidence?.workloads as { outcome: string; ratio: { high: number } }[]).filter(w => w.outcome === 'fail')
  assert.ok(failed.length >= 1 && failed.every(w => w.ratio.high < 0.8))
})

test('a filter that completes 2 % of its I/Os 2 ms late fails performance.latency and nothing else', async t => {
  const doc = await expectStatuses(await controlPackage('late-completions'), GREP, 1, { 'performance.iops': 'passed', 'performance.latency': 'failed', 'performance.scaling': 'passed' }, 'late-completions')
  t.diagnostic(describe(doc))
  const c = check(doc, 'performance.latency')
  assert.match(c.message ?? '', /p99 [\d.]+ µs against the limit [\d.]+ µs .*95 % interval \[[\d.]+, [\d.]+\] µs in \d+ slices, wholly over the limit/)
  // 2 % of the I/Os 2 ms late: the p99 is at least 2 ms on every workload
  for (const w of c.evidence?.workloads as { filteredP99Us: number; outcome: string }[]) {
    assert.ok(w.filteredP99Us >= 2000, `p99 ${w.filteredP99Us} µs`)
    assert.equal(w.outcome, 'fail')
  }
})
