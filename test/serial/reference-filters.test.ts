/**
 * The bundled reference filters pass the whole catalogue under --certified: no false alarm, no
 * harness fault. These runs include the benchmarks, so this file runs alone (npm test's second
 * phase), with nothing else competing for the CPUs.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as os from 'node:os'
import { certify } from '../../harness/certify/runner.js'
import { referencePackage } from '../helpers/controls.js'

for (const name of ['cdp', 'cache', 'passthrough'] as const) {
  test(`the reference ${name} filter is ready under --certified (quick, seed 11)`, async t => {
    const pkg = referencePackage(name)
    if (!fs.existsSync(pkg)) {
      t.skip(`${pkg} is not built`)
      return
    }
    const doc = await certify({ package: pkg, quick: true, certified: true, seed: 11 })
    // On a machine with fewer than 4 CPUs a replication filter's daemon and the emulated recovery
    // site (the main thread) compete with the two paced VMs for the cores: measured on 2 cores, the
    // reference cdp adds ~12 µs to the p99 with one VM and 25–90 µs with two (docs/performance.md).
    // There, and only for cdp's paced-latency bound, a failure is the machine's, and is reported.
    const contended = name === 'cdp' && os.availableParallelism() < 4
    const bad = doc.checks.filter(c => c.status === 'failed' || c.status === 'errored' || (c.required && c.status === 'skipped'))
      .filter(c => !(contended && c.id === 'performance.latency' && c.status === 'failed' && /exceeds/.test(c.message ?? '')))
    if (contended && doc.checks.some(c => c.id === 'performance.latency' && c.status === 'failed')) t.diagnostic(`performance.latency on ${os.availableParallelism()} CPUs: ${doc.checks.find(c => c.id === 'performance.latency')?.message}`)
    assert.deepEqual(bad.map(c => `${c.id}: ${c.status}: ${c.message}`), [])
    if (!contended) assert.equal(doc.verdict, 'ready', doc.reasons?.join('\n'))
    assert.equal(doc.checks.length >= 42, true)
  })
}
