/**
 * The public check catalogue: every id a report lists, in catalogue order, with its title — read
 * off the one list of suites in `suites/index.ts`. Reports, CI gates and listings key on these ids.
 */
import { CHECKS } from '../../suites/index.js'

export const CATALOGUE: readonly { readonly id: string; readonly title: string }[] = CHECKS.map(d => ({ id: d.id, title: d.title }))
