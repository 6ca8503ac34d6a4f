import { test } from 'node:test'
import assert from 'node:assert/strict'
import { computeVerdict, countChecks } from '../reports/verdict.js'
import type { CheckResult, CheckStatus } from '../reports/document.js'

function check(id: string, status: CheckStatus, required = true, message?: string): CheckResult {
  const c: CheckResult = { id, suite: id.split('.')[0]!, title: id, required, status, durationMs: 1 }
  if (message !== undefined) c.message = message
  return c
}

test('every required check passed: ready, no reasons', () => {
  const checks = [check('a.one', 'passed'), check('a.two', 'passed'), check('b.opt', 'failed', false, 'slow')]
  assert.deepEqual(computeVerdict(checks, { certified: false }), { verdict: 'ready', reasons: [] })
  assert.deepEqual(computeVerdict(checks, { certified: true }), { verdict: 'ready', reasons: [] })
})

test('a failed or errored required check makes it not ready, with its id and message', () => {
  const checks = [
    check('a.one', 'passed'),
    check('a.two', 'failed', true, 'disk differs at offset 4096'),
    check('b.three', 'errored', true, 'worker exited'),
    check('b.four', 'failed', true),
  ]
  assert.deepEqual(computeVerdict(checks, { certified: false }), {
    verdict: 'not-ready',
    reasons: ['a.two failed: disk differs at offset 4096', 'b.three errored: worker exited', 'b.four failed'],
  })
})

test('a skipped required check counts only under certified', () => {
  const checks = [check('a.one', 'passed'), check('lifecycle.upgrade', 'skipped', true, 'no --upgrade-from package given')]
  assert.equal(computeVerdict(checks, { certified: false }).verdict, 'ready')
  const certified = computeVerdict(checks, { certified: true })
  assert.equal(certified.verdict, 'not-ready')
  assert.deepEqual(certified.reasons, ['lifecycle.upgrade skipped, which --certified does not allow: no --upgrade-from package given'])
})

test('optional checks never decide the verdict, whatever their status', () => {
  for (const status of ['failed', 'errored', 'skipped'] as const) {
    assert.equal(computeVerdict([check('a.one', 'passed'), check('a.opt', status, false)], { certified: true }).verdict, 'ready')
  }
})

test('reasons follow the order of the checks', () => {
  const checks = [check('z.last', 'failed'), check('a.first', 'errored')]
  assert.deepEqual(computeVerdict(checks, { certified: false }).reasons, ['z.last failed', 'a.first errored'])
})

test('countChecks counts each status and the total', () => {
  const checks = [check('a.1', 'passed'), check('a.2', 'passed'), check('a.3', 'failed'), check('a.4', 'skipped'), check('a.5', 'errored'), check('a.6', 'skipped')]
  assert.deepEqual(countChecks(checks), { passed: 2, failed: 1, skipped: 2, errored: 1, total: 6 })
  assert.deepEqual(countChecks([]), { passed: 0, failed: 0, skipped: 0, errored: 0, total: 0 })
})
