/**
 * The one list of checks: the bundled suites in catalogue order, each file's checks in its own
 * order. The public catalogue (ids, titles, order), the runner, the subject process and the
 * generated docs/checks.md all read it from here.
 */
import type { CheckDef } from '../harness/certify/check.js'
import { checks as packageChecks } from './package.js'
import { checks as ordering } from './ordering.js'
import { checks as integrity } from './integrity.js'
import { checks as isolation } from './isolation.js'
import { checks as exclusivity } from './exclusivity.js'
import { checks as lifecycle } from './lifecycle.js'
import { checks as events } from './events.js'
import { checks as replication } from './replication.js'
import { checks as cache } from './cache.js'
import { checks as nemesis } from './nemesis.js'
import { checks as performance } from './performance.js'

/** The suites, in catalogue order. */
export const SUITES: readonly { readonly name: string; readonly checks: readonly CheckDef[] }[] = [
  { name: 'package', checks: packageChecks },
  { name: 'ordering', checks: ordering },
  { name: 'integrity', checks: integrity },
  { name: 'isolation', checks: isolation },
  { name: 'exclusivity', checks: exclusivity },
  { name: 'lifecycle', checks: lifecycle },
  { name: 'events', checks: events },
  { name: 'replication', checks: replication },
  { name: 'cache', checks: cache },
  { name: 'nemesis', checks: nemesis },
  { name: 'performance', checks: performance },
]

function flatten(): readonly CheckDef[] {
  const seen = new Set<string>()
  for (const s of SUITES) {
    for (const d of s.checks) {
      if (d.suite !== s.name) throw new Error(`check ${d.id} is listed in suite ${s.name}`)
      if (seen.has(d.id)) throw new Error(`check ${d.id} is defined twice`)
      seen.add(d.id)
    }
  }
  return Object.freeze(SUITES.flatMap(s => s.checks))
}

/** Every bundled check, in catalogue order: the catalogue. */
export const CHECKS: readonly CheckDef[] = flatten()
