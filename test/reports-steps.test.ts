/**
 * A failing schedule in the reports: a check whose evidence holds the steps as they ran (the
 * nemesis checks) shows them as a numbered timeline, the step it failed at marked, in the console,
 * the HTML and the JUnit failure — and the shrunk schedule after the whole one.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { renderConsole } from '../reports/console.js'
import { renderHtml } from '../reports/html.js'
import { renderJunit } from '../reports/junit.js'
import { failingSchedules } from '../reports/steps.js'
import type { CertReport, CheckResult } from '../reports/document.js'
import { buildReport } from './fixtures/report-fixture.js'

const RAN = [
  { n: 1, step: 'vm1 migrated to esx2', startMs: 0, endMs: 310 },
  { n: 2, step: 'vm1 powered off, then esx2 lost power', startMs: 310, endMs: 905 },
  { n: 3, step: 'checkpoint: the guests quiesce and flush', startMs: 905, endMs: 4210 },
]

function withFailingSchedule(doc: CertReport, shrunk: boolean): CheckResult {
  const c = doc.checks.find(k => k.id === 'lifecycle.crash')!
  c.status = 'failed'
  c.message = "schedule 2 of 3 (sub-seed 81723), after step 3 of 3 (checkpoint: the guests quiesce and flush): vm1-disk0's replica still differs from the disk at offset 8192"
  c.evidence = {
    invariant: 'replica-equal',
    failedAtStep: 3,
    failing: { schedule: 2, subSeed: 81723, vms: ['vm1@esx1'], steps: RAN.map(r => ({ n: r.n, does: r.step })), ran: RAN },
    shrunk: shrunk ? { ran: [{ n: 1, step: 'vm1 powered off, then esx2 lost power', startMs: 0, endMs: 400 }, { n: 2, step: 'checkpoint: the guests quiesce and flush', startMs: 400, endMs: 3000, closing: true }] } : { note: 'not shrunk in a --quick run' },
  }
  return c
}

test('the steps of a failing schedule, the failed one marked, and a shrunk schedule after it', () => {
  const doc = buildReport()
  const c = withFailingSchedule(doc, true)
  const views = failingSchedules(c)
  assert.deepEqual(views.map(v => v.title), ['The failing schedule 2 (sub-seed 81723), step by step', 'Shrunk to 2 steps that still fail the same way'])
  assert.deepEqual(views[0]!.steps.map(s => s.failed), [false, false, true])
  assert.deepEqual(views[1]!.steps.map(s => s.failed), [false, true])
  // a check without such evidence, or one that passed, has none
  assert.deepEqual(failingSchedules(doc.checks.find(k => k.status === 'passed')!), [])
  assert.deepEqual(failingSchedules({ ...c, status: 'passed' }), [])
  assert.deepEqual(failingSchedules({ ...c, evidence: { failing: { ran: [{ n: 'x' }] } } }), [], 'malformed steps are not shown')
})

test('the console shows the schedule step by step under the failed check', () => {
  const doc = buildReport({ statuses: { 'lifecycle.crash': 'failed' } })
  withFailingSchedule(doc, false)
  const out = renderConsole(doc, { color: false })
  const at = out.indexOf('The failing schedule 2 (sub-seed 81723), step by step:')
  assert.ok(at > 0, out)
  const lines = out.slice(at).split('\n').slice(1, 4).map(l => l.trim())
  assert.deepEqual(lines, [
    '1. vm1 migrated to esx2 (+0 … +310 ms)',
    '2. vm1 powered off, then esx2 lost power (+310 … +905 ms)',
    '3. checkpoint: the guests quiesce and flush (+905 … +4210 ms)  ← failed here',
  ])
})

test('the HTML lists the steps in order with the failed one marked; JUnit carries them in the failure', () => {
  const doc = buildReport({ statuses: { 'lifecycle.crash': 'failed' } })
  withFailingSchedule(doc, true)
  const html = renderHtml(doc)
  const block = /<div class="schedule" data-testid="schedule-lifecycle\.crash">(.*?)<\/div><\/div>/s.exec(html)
  assert.ok(block, 'a schedule block for the check')
  const items = [...html.matchAll(/<li value="(\d+)"( class="failed-step" data-failed-step)?>([^<]*)/g)].map(m => `${m[1]}${m[2] ? '!' : ''} ${m[3]!.trim()}`)
  assert.deepEqual(items, [
    '1 vm1 migrated to esx2',
    '2 vm1 powered off, then esx2 lost power',
    '3! checkpoint: the guests quiesce and flush',
    '1 vm1 powered off, then esx2 lost power',
    '2! checkpoint: the guests quiesce and flush',
  ])
  const xml = renderJunit(doc)
  const failure = /<testcase name="lifecycle\.crash"[^>]*>\s*<failure[^>]*>([^<]*)<\/failure>/.exec(xml)
  assert.ok(failure, 'the failure element')
  assert.match(failure[1]!, /The failing schedule 2 \(sub-seed 81723\), step by step:\n {2}1\. vm1 migrated to esx2 \(\+0 … \+310 ms\)\n/)
  assert.match(failure[1]!, /3\. checkpoint: the guests quiesce and flush \(\+905 … \+4210 ms\) {2}← failed here/)
})
