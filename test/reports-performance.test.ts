/**
 * The performance evidence in the reports: marginal passes, intervals, slices and the machine's
 * noise are optional fields (older reports stay valid), the console, HTML and JUnit say when a
 * check passed as marginal, and a report's noise and marginal flags follow the checks' evidence.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { BenchmarkJudgement, CertReport } from '../reports/document.js'
import { renderConsole } from '../reports/console.js'
import { renderHtml } from '../reports/html.js'
import { renderJunit } from '../reports/junit.js'
import { mergeReports } from '../reports/merge.js'
import { isMarginal, noiseFromChecks, withPerformanceFindings } from '../reports/noise.js'
import { validateReport } from '../reports/validate.js'
import { computeVerdict, countChecks } from '../reports/verdict.js'
import { signReport } from '../reports/sign.js'
import { buildReport, makeKeyPair } from './fixtures/report-fixture.js'

const NOISE_IOPS = { spreadPct: 12.5, resolvable: true, note: 'slices of one side differ by 12.5 %' }
const NOISE_P99 = { spreadPct: 31, resolvable: false, note: 'too noisy to resolve the p99 bound; run on a quieter machine' }

/** A ready report whose performance checks carry the new evidence; performance.latency passed as marginal. */
function performanceReport(): CertReport {
  const doc = buildReport({ samples: 200 })
  for (const c of doc.checks) {
    if (c.required && (c.status === 'failed' || c.status === 'errored')) {
      c.status = 'passed'
      delete c.message
    }
  }
  const iops = doc.checks.find(c => c.id === 'performance.iops')!
  iops.status = 'passed'
  iops.evidence = { noise: NOISE_IOPS, workloads: [] }
  const latency = doc.checks.find(c => c.id === 'performance.latency')!
  latency.status = 'passed'
  latency.message = 'marginal (passes; the evidence cannot tell): 4k-randwrite: +2.7 µs, 95 % interval [-41.4, 24.4] µs in 30 slices'
  latency.evidence = { noise: NOISE_P99, marginal: true, workloads: [] }
  const j = (metric: BenchmarkJudgement['metric'], outcome: BenchmarkJudgement['outcome']): BenchmarkJudgement =>
    metric === 'iopsRatio'
      ? { metric, estimate: 0.97, low: 0.88, high: 1.07, confidence: 0.969, bound: 0.8, outcome, slices: 8, budget: 24 }
      : { metric, estimate: 2700, low: -41_400, high: 24_400, confidence: 0.95, bound: 0, outcome, slices: 30, budget: 30 }
  for (const b of doc.benchmarks) {
    if (b.mode === 'paced') b.judgement = j('p99ExcessNs', 'marginal')
    else b.judgement = j('iopsRatio', 'pass')
    b.filtered.slices = 8
    b.filtered.spreadPct = 9.5
    b.filtered.iopsInterval = { low: Math.round(b.filtered.iops * 0.9), high: Math.round(b.filtered.iops * 1.1) }
    b.filtered.p99IntervalNs = { low: Math.round(b.filtered.latencyNs.p99 * 0.9), high: Math.round(b.filtered.latencyNs.p99 * 1.1) }
  }
  const { verdict, reasons } = computeVerdict(doc.checks, { certified: false })
  doc.verdict = verdict
  doc.reasons = reasons
  doc.counts = countChecks(doc.checks)
  return doc
}

test('the new fields are optional: an older report without them is valid, and one with them too', () => {
  const old = buildReport({ samples: 200 })
  assert.deepEqual(validateReport(old).errors, [])
  const doc = withPerformanceFindings(performanceReport())
  assert.deepEqual(validateReport(doc).errors, [])
  assert.equal(doc.checks.find(c => c.id === 'performance.latency')!.marginal, true)
  assert.ok(doc.environment.noise)
  // an infinite interval end (too few slices) is written as null
  doc.benchmarks[0]!.judgement = { ...doc.benchmarks[0]!.judgement!, low: null }
  assert.deepEqual(validateReport(doc).errors, [])
  // wrong types are refused
  const bad = structuredClone(doc) as unknown as { checks: { marginal: unknown }[]; environment: { noise: { resolvable: unknown } } }
  bad.checks[0]!.marginal = 'yes'
  bad.environment.noise.resolvable = 'no'
  assert.equal(validateReport(bad).ok, false)
})

test('noise and marginal flags come from the performance checks\' evidence', () => {
  const doc = performanceReport()
  const noise = noiseFromChecks(doc.checks)!
  assert.equal(noise.iopsSpreadPct, 12.5)
  assert.equal(noise.p99SpreadPct, 31)
  assert.equal(noise.resolvable, false)
  assert.equal(noise.notes.length, 2)
  assert.match(noise.notes[1]!, /^performance\.latency: too noisy/)
  const done = withPerformanceFindings(doc)
  assert.deepEqual(done.checks.filter(c => c.marginal === true).map(c => c.id), ['performance.latency'])
  assert.equal(isMarginal(done.checks.find(c => c.id === 'performance.iops')!), false)
  // nothing to add: the same document; signed: untouched
  assert.equal(withPerformanceFindings(done), done)
  const signed = signReport(doc, makeKeyPair().privateKeyPem)
  assert.equal(withPerformanceFindings(signed), signed)
  // a failed check is never marginal
  const failed = structuredClone(done)
  failed.checks.find(c => c.id === 'performance.latency')!.status = 'failed'
  assert.equal(isMarginal(failed.checks.find(c => c.id === 'performance.latency')!), false)
})

test('the console lists marginal checks, the noise and counts them on the verdict line', () => {
  const out = renderConsole(withPerformanceFindings(performanceReport()), { color: false })
  assert.match(out, /Marginal \(passed: the measurements could not tell within the sampling budget\):\n {2}~ performance\.latency: marginal/)
  assert.match(out, /Machine noise: IOPS ±12\.5 % between slices, p99 ±31 % between slices\n {2}! performance\.iops: slices of one side/)
  assert.match(out, /VERDICT: ready \(\d+ passed, 0 failed, \d+ skipped, 0 errored, 1 of the passed marginal\)\n$/)
})

test('JUnit: a marginal check is a passed testcase whose system-out says marginal; judgements and noise are properties', () => {
  const xml = renderJunit(withPerformanceFindings(performanceReport()))
  const tc = /<testcase name="performance\.latency"[^>]*>([\s\S]*?)<\/testcase>/.exec(xml)
  assert.ok(tc, 'performance.latency has a body')
  assert.doesNotMatch(tc[1]!, /<failure|<error|<skipped/)
  assert.match(tc[1]!, /<system-out>marginal: marginal \(passes; the evidence cannot tell\)/)
  assert.match(xml, /<testcase name="performance\.iops"[^>]*\/>/)
  assert.match(xml, /<property name="benchmark\.4k-randread\.saturation\.judgement\.iopsRatio" value="0\.97"\/>/)
  assert.match(xml, /<property name="benchmark\.[^"]*\.paced\.judgement\.outcome" value="marginal"\/>/)
  assert.match(xml, /<property name="noise\.resolvable" value="false"\/>/)
})

test('HTML: marginal badge and note, intervals on the bars, the judged estimate, the noise in the environment, no best repetition', () => {
  const html = renderHtml(withPerformanceFindings(performanceReport()))
  assert.match(html, /data-check-id="performance\.latency" data-status="passed" data-marginal="true"/)
  assert.match(html, /<span class="marginal" data-testid="marginal-badge"/)
  assert.match(html, /data-testid="marginal">Passed as <b>marginal<\/b>/)
  assert.match(html, /class="whisker" title="95 % interval/)
  assert.match(html, /97% of the reference, 95 % interval 88%–107% in 8 slices \(minimum 80%\): pass/)
  assert.match(html, /p99 2\.70 µs over the limit, 95 % interval −41\.4 µs–\+24\.4 µs in 30 slices: marginal/)
  assert.match(html, /data-testid="noise" data-resolvable="false"/)
  assert.doesNotMatch(html, /best/i, (/.{60}best.{20}/i.exec(html) ?? [''])[0])
})

test('merging shards keeps the marginal flags and the noise of the shard that ran the performance checks', () => {
  const whole = withPerformanceFindings(performanceReport())
  const a: CertReport = { ...structuredClone(whole), options: { ...whole.options!, shard: { index: 1, count: 2 } }, checks: whole.checks.filter(c => c.suite !== 'performance'), benchmarks: [] }
  const b: CertReport = { ...structuredClone(whole), options: { ...whole.options!, shard: { index: 2, count: 2 } }, checks: whole.checks.filter(c => c.suite === 'performance') }
  delete a.environment.noise
  for (const d of [a, b]) {
    d.counts = countChecks(d.checks)
    Object.assign(d, computeVerdict(d.checks, { certified: false }))
  }
  const merged = mergeReports([a, b])
  assert.equal(merged.checks.find(c => c.id === 'performance.latency')!.marginal, true)
  assert.equal(merged.environment.noise?.p99SpreadPct, 31)
})
