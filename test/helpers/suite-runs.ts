/**
 * Helpers of the suite tests: certify a package on one suite and compare every check's status with
 * what the test expects, naming the check, the seed and the check's own message on a mismatch.
 */
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import type { TestContext } from 'node:test'
import type { CertReport } from '../../reports/document.js'
import { certifyStatuses, controlModule, packageModule, referencePackage } from './controls.js'

export type Status = 'passed' | 'failed' | 'skipped' | 'errored'

/** Certifies `pkg` on the checks matching `grep` and asserts each expected status. */
export async function expectStatuses(pkg: string, grep: string, seed: number, expected: Readonly<Record<string, Status>>, who: string): Promise<CertReport> {
  const { doc } = await certifyStatuses(pkg, { grep, seed })
  assert.deepEqual(doc.checks.map(c => c.id).sort(), Object.keys(expected).sort(), `${who}: the checks run`)
  for (const c of doc.checks) {
    assert.equal(c.status, expected[c.id], `${who}, seed ${seed}: ${c.id} is ${c.status}, expected ${expected[c.id]}: ${c.message ?? ''} ${JSON.stringify(c.evidence ?? {}).slice(0, 800)}`)
  }
  return doc
}

/** The reference package, or null after skipping the test when this build has not packaged it. */
export function referenceOrSkip(t: TestContext, name: 'passthrough' | 'cache' | 'cdp'): string | null {
  const pkg = referencePackage(name)
  if (fs.existsSync(pkg)) return pkg
  t.skip(`the reference filter ${name} is not built (no ${pkg})`)
  return null
}

/** Packages a negative control from test/controls as a vendor would. */
export function controlPackage(name: string): Promise<string> {
  return packageModule(controlModule(name))
}

/** A failed check's result from a report. */
export function check(doc: CertReport, id: string): CertReport['checks'][number] {
  const c = doc.checks.find(x => x.id === id)
  assert.ok(c, `no ${id} in the report`)
  return c
}
