/**
 * The bundled checks looked up by id: a view of the one list in `suites/index.ts`, kept for the
 * callers that ask by id. What a check is made of lives in `check.ts` (re-exported here).
 */
import { CHECKS } from '../../suites/index.js'
import type { CheckDef } from './check.js'

export * from './check.js'

/** The bundled checks, in catalogue order. */
export const registry = {
  get(id: string): CheckDef | undefined {
    return CHECKS.find(d => d.id === id)
  },
  all(): CheckDef[] {
    return [...CHECKS]
  },
}
