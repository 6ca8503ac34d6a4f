import { test } from 'node:test'
import assert from 'node:assert/strict'
import { check, controlPackage, expectStatuses, referenceOrSkip, type Status } from './helpers/suite-runs.js'

const GREP = '^cache\\.'

for (const [ref, benefit] of [['passthrough', 'skipped'], ['cache', 'passed']] as const) {
  test(`the reference ${ref} filter passes the cache checks with seeds 1, 2 and 3${benefit === 'skipped' ? ' (benefit skipped: it completes no reads)' : ''}`, async t => {
    const pkg = referenceOrSkip(t, ref)
    if (pkg === null) return
    for (const seed of [1, 2, 3]) {
      const doc = await expectStatuses(pkg, GREP, seed, { 'cache.coherence': 'passed', 'cache.bounded': 'passed', 'cache.benefit': benefit }, ref)
      if (benefit === 'skipped') assert.match(check(doc, 'cache.benefit').message ?? '', /not a read cache/)
    }
  })
}

test('the cache checks do not apply to the reference cdp (replication) filter', async t => {
  const pkg = referenceOrSkip(t, 'cdp')
  if (pkg === null) return
  const doc = await expectStatuses(pkg, GREP, 1, { 'cache.coherence': 'skipped', 'cache.bounded': 'skipped', 'cache.benefit': 'skipped' }, 'cdp')
  assert.match(check(doc, 'cache.coherence').message ?? '', /applies to cache filters/)
})

const all = (over: Record<string, Status>): Record<string, Status> => ({ 'cache.coherence': 'passed', 'cache.bounded': 'passed', 'cache.benefit': 'passed', ...over })

test('a cache that fills from a read that raced an overlapping write fails coherence and nothing else', async () => {
  const doc = await expectStatuses(await controlPackage('racy-fill-cache'), GREP, 1, all({ 'cache.coherence': 'failed' }), 'racy-fill-cache')
  const c = check(doc, 'cache.coherence')
  assert.match(c.message ?? '', /a read returned wrong bytes at offset \d+/)
  assert.ok(c.evidence?.expected && c.evidence.found && c.evidence.io)
})

test('a cache that ignores cacheMiB fails bounded and nothing else', async () => {
  const doc = await expectStatuses(await controlPackage('unbounded-cache'), GREP, 1, all({ 'cache.bounded': 'failed' }), 'unbounded-cache')
  const c = check(doc, 'cache.bounded')
  assert.match(c.message ?? '', /with cacheMiB 16 the filter grew the VM worker's memory by [\d.]+ MiB/)
  assert.equal(c.evidence?.boundMiB, 24)
  assert.ok((c.evidence?.extraMiB as number) > 24)
})

test('a cache that never hits fails benefit (not required) and nothing else', async () => {
  const doc = await expectStatuses(await controlPackage('never-hit-cache'), GREP, 1, all({ 'cache.benefit': 'failed' }), 'never-hit-cache')
  const c = check(doc, 'cache.benefit')
  assert.equal(c.required, false)
  assert.match(c.message ?? '', /not faster with the filter/)
  assert.equal(c.evidence?.completedByFilter, c.evidence?.reads)
})
