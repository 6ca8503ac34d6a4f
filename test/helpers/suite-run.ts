/**
 * Running one suite of the catalogue against a package and asserting every check's status, with
 * the messages and evidence of the checks that came out otherwise in the assertion's message.
 */
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import type { CertReport } from '../../reports/document.js'
import { certifyStatuses } from './controls.js'

/** The expected status of each check of a suite; a `failed` one with the message it must give. */
export type Expected = Readonly<Record<string, 'passed' | 'skipped' | { failed: RegExp }>>

/** A skip reason when a package has not been built (yet), else false. */
export function unlessBuilt(pkg: string): string | false {
  return fs.existsSync(pkg) ? false : `${pkg} is not built yet (npm run build packages the reference filters)`
}

/** Certifies `pkg` (quick) on the checks matching `grep` and asserts each status in `expected`. */
export async function expectSuite(pkg: string, grep: string, seed: number, expected: Expected): Promise<CertReport> {
  const { statuses, doc } = await certifyStatuses(pkg, { grep, seed })
  const wrong: string[] = []
  for (const [id, want] of Object.entries(expected)) {
    const c = doc.checks.find(x => x.id === id)
    const got = statuses[id]
    const ok = typeof want === 'string' ? got === want : got === 'failed' && want.failed.test(c?.message ?? '')
    if (!ok) {
      const wanted = typeof want === 'string' ? want : `failed with a message matching ${want.failed}`
      wrong.push(`${id}: expected ${wanted}, got ${got ?? 'no result'}: ${c?.message ?? ''}\n    evidence: ${JSON.stringify(c?.evidence ?? {}).slice(0, 1500)}`)
    }
  }
  const extra = Object.keys(statuses).filter(id => !(id in expected))
  assert.deepEqual(extra, [], `checks not accounted for: ${extra.join(', ')}`)
  assert.equal(wrong.length, 0, `seed ${seed}:\n  ${wrong.join('\n  ')}`)
  return doc
}
