import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import { Cluster } from '../harness/framework/cluster.js'
import { PolicyValidator, type ResolvedRule, type StoragePolicy } from '../harness/framework/policy.js'
import type { FilterInfo } from '../harness/framework/inspect.js'
import type { FilterClass } from '../harness/sdk/index.js'
import { defaultWorkDir, type RunOptions } from '../harness/certify/context.js'
import { executeCheck } from '../harness/certify/execute.js'
import { registry, type CheckRun } from '../harness/certify/registry.js'
import { prepareSubject, referenceEntry } from '../harness/certify/subject.js'
import { profileThresholds } from '../reports/profiles.js'
import { hostConflict, policyConflict, type ExclusivitySetup } from '../suites/exclusivity.js'
import { check, controlPackage, expectStatuses, referenceOrSkip, type Status } from './helpers/suite-runs.js'

const GREP = '^exclusivity\\.'
const IDS = ['exclusivity.host-conflict', 'exclusivity.policy-conflict', 'exclusivity.coexistence'] as const

function expecting(failed: readonly string[]): Record<string, Status> {
  return Object.fromEntries(IDS.map(id => [id, failed.includes(id) ? 'failed' : 'passed']))
}

for (const ref of ['passthrough', 'cache', 'cdp'] as const) {
  test(`the reference ${ref} filter passes every exclusivity check with seeds 1, 2 and 3`, async t => {
    const pkg = referenceOrSkip(t, ref)
    if (pkg === null) return
    for (const seed of [1, 2, 3]) await expectStatuses(pkg, GREP, seed, expecting([]), ref)
  })
}

test('a cache that keeps views of read buffers fails coexistence (encryption above decrypts them in place) and nothing else of this suite', async () => {
  // It also fails ordering.chain-position, the other check that puts encryption above the filter.
  const doc = await expectStatuses(await controlPackage('buffer-ref-cache'), GREP, 1, expecting(['exclusivity.coexistence']), 'buffer-ref-cache')
  const c = check(doc, 'exclusivity.coexistence')
  assert.match(c.message ?? '', /a read returned wrong bytes at offset \d+|failed with EIO/)
  // the I/O is named either way; the bytes only when they came back (the decryption in place may
  // also leave a block the encryption cannot authenticate: EIO)
  assert.ok(c.evidence?.io, JSON.stringify(c.evidence))
  if (/wrong bytes/.test(c.message ?? '')) assert.ok(c.evidence?.expected && c.evidence.found, JSON.stringify(c.evidence))
})

// host-conflict and policy-conflict test rules the framework itself enforces, so no filter can
// make them fail. Their negative controls are therefore framework misconfigurations: the check's
// run is given a framework that does not enforce the rule, and it must fail.

/** Runs one check of the catalogue with a replaced run, against a reference package. */
async function runCheck(id: string, run: CheckRun, pkg: string): Promise<{ status: string; message?: string; evidence?: Record<string, unknown> }> {
  await import('../suites/exclusivity.js')
  const def = registry.get(id)
  assert.ok(def, `no check ${id}`)
  const workDir = defaultWorkDir()
  try {
    const loader = await Cluster.create({})
    const references: Record<string, FilterInfo> = {}
    try {
      for (const name of ['passthrough', 'cache', 'cdp'] as const) if (fs.existsSync(referenceEntry(name))) references[name] = await loader.describeModule(referenceEntry(name))
    } finally {
      await loader.shutdown({ remove: true })
    }
    const subject = await prepareSubject(pkg, workDir)
    const options: RunOptions = { quick: true, certified: false, seed: 1, profileName: 'default', thresholds: profileThresholds('default')!, upgradeFrom: null, references, workDir }
    return (await executeCheck({ ...def, run }, subject, options)).result
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true })
  }
}

/** A policy validator that keeps the first rule of each class and silently drops the rest. */
class LenientValidator extends PolicyValidator {
  override resolve(policy: StoragePolicy, lookup: (name: string, cls: FilterClass) => FilterInfo | undefined, host: string): ResolvedRule[] {
    const seen = new Set<string>()
    const rules = policy.rules.filter(r => {
      const cls = String(r.filter).split('@')[1] ?? ''
      if (seen.has(cls)) return false
      seen.add(cls)
      return true
    })
    return super.resolve({ ...policy, rules }, lookup, host)
  }
}

const misconfigured: Record<string, ExclusivitySetup> = {
  hostsWithoutExclusivity: { classExclusivity: 'disk' },
  lenientPolicies: { prepare: c => Object.defineProperty(c, 'validator', { value: new LenientValidator() }) },
}

for (const ref of ['cache', 'cdp'] as const) {
  test(`host-conflict passes with the framework as configured and fails on hosts whose one-filter-per-class rule is switched off (${ref})`, async t => {
    const pkg = referenceOrSkip(t, ref)
    if (pkg === null) return
    assert.equal((await runCheck('exclusivity.host-conflict', hostConflict(), pkg)).status, 'passed')
    // the negative control: a framework misconfigured to allow two filters of a class per host
    const r = await runCheck('exclusivity.host-conflict', hostConflict(misconfigured.hostsWithoutExclusivity), pkg)
    assert.equal(r.status, 'failed', r.message)
    assert.match(r.message ?? '', /the host accepted .* although .* is installed: two (cache|replication) filters on one host/)
    assert.equal(r.evidence?.order, 'the filter under test installed first')
  })

  test(`policy-conflict passes with the framework as configured and fails when the policy validator lets two filters of a class through (${ref})`, async t => {
    const pkg = referenceOrSkip(t, ref)
    if (pkg === null) return
    assert.equal((await runCheck('exclusivity.policy-conflict', policyConflict(), pkg)).status, 'passed')
    // the negative control: a framework misconfigured with a validator that drops the second rule of a class
    const r = await runCheck('exclusivity.policy-conflict', policyConflict(misconfigured.lenientPolicies), pkg)
    assert.equal(r.status, 'failed', r.message)
    assert.match(r.message ?? '', /a policy naming two (cache|replication) filters .* was applied to the disk/)
  })
}
