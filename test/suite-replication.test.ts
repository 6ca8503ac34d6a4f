import { test } from 'node:test'
import assert from 'node:assert/strict'
import { controlModule, packageModule, referencePackage } from './helpers/controls.js'
import { expectSuite, unlessBuilt, type Expected } from './helpers/suite-run.js'

const GREP = '^replication\\.'
const SEEDS = [1, 2, 3]

const CLEAN: Expected = {
  'replication.write-order': 'passed',
  'replication.consistency': 'passed',
  'replication.rpo': 'passed',
  'replication.target-outage': 'passed',
}

for (const seed of SEEDS) {
  test(`the reference cdp filter passes the replication suite (seed ${seed})`, { skip: unlessBuilt(referencePackage('cdp')) }, async () => {
    const doc = await expectSuite(referencePackage('cdp'), GREP, seed, CLEAN)
    // the RPO check's lag points feed the report's chart
    assert.ok((doc.replicaLag?.length ?? 0) > 10, 'no replica lag points in the report')
    for (const p of doc.replicaLag!) assert.ok(Number.isFinite(p.t) && Number.isFinite(p.lagMs) && p.lagMs >= 0)
  })
}

test('the replication checks are skipped for a cache filter', { skip: unlessBuilt(referencePackage('cache')) }, async () => {
  await expectSuite(referencePackage('cache'), GREP, 1, Object.fromEntries(Object.keys(CLEAN).map(id => [id, 'skipped'])))
})

/** Each control breaks one rule; `also` lists the other checks that rule necessarily breaks, and why. */
const controls: { name: string; fails: Expected; also?: Record<string, { failed: RegExp; because: string }> }[] = [
  {
    name: 'reorder-shipper',
    fails: { 'replication.write-order': { failed: /not crash-consistent after arrival #\d+ .* write #\d+ .* was applied, but write #\d+ .* completed to the guest at .* before #\d+ was issued — was not/ } },
    also: { 'replication.target-outage': { failed: /the replica \(across the outage\) was not crash-consistent/, because: 'it replays write order over the outage too' } },
  },
  {
    name: 'drop-shipper',
    fails: { 'replication.consistency': { failed: /after the guest quiesced .* the replica still differs from the disk at offset \d+/ } },
    also: {
      'replication.write-order': { failed: /was not crash-consistent .* \(it never arrived/, because: 'a dropped write is a hole that every later write depends on' },
      'replication.target-outage': { failed: /the replica did not catch up after the site returned/, because: 'the dropped writes never arrive, so the replica never equals the disk' },
    },
  },
  {
    name: 'batch-shipper',
    fails: { 'replication.rpo': { failed: /replica lag p99 is \d+(\.\d+)? ms, above the policy's RPO of 2 s/ } },
  },
  {
    name: 'outage-failer',
    fails: { 'replication.target-outage': { failed: /a guest write failed with EIO while the recovery site was down/ } },
  },
]

for (const c of controls) {
  const [id] = Object.keys(c.fails)
  const also = Object.entries(c.also ?? {})
  const rest = also.length === 0 ? 'passes the rest of the replication suite' : `passes the rest of the replication suite but ${also.map(([x, a]) => `${x} (${a.because})`).join(' and ')}`
  test(`the ${c.name} control fails ${id} and ${rest}`, async () => {
    const pkg = await packageModule(controlModule(c.name))
    await expectSuite(pkg, GREP, 1, { ...CLEAN, ...c.fails, ...c.also })
  })
}
