/**
 * The verdict rule of the certification spec, in one place: the runner uses it to write a
 * report, merge to recompute a merged one and verify to check that a report's verdict follows
 * from its checks.
 */
import type { CheckCounts, CheckResult, Verdict } from './document.js'

/** Options that change the verdict rule. */
export interface VerdictOptions {
  /** Under `--certified` a skipped required check also makes the run not ready. */
  readonly certified: boolean
}

/** A verdict and why, one line per offending check in catalogue order. */
export interface VerdictResult {
  verdict: Verdict
  reasons: string[]
}

type VerdictInput = Pick<CheckResult, 'id' | 'required' | 'status' | 'message'>

/**
 * `ready` iff every required check passed. A failed or errored required check, or under
 * `certified` a skipped one, makes it `not-ready`. A skipped required check outside
 * `certified` does not count against the verdict, as a check that does not apply to the
 * filter's class is skipped.
 */
export function computeVerdict(checks: readonly VerdictInput[], options: VerdictOptions): VerdictResult {
  const reasons: string[] = []
  for (const c of checks) {
    if (!c.required) continue
    const why = c.message === undefined || c.message === '' ? '' : `: ${c.message}`
    if (c.status === 'failed') reasons.push(`${c.id} failed${why}`)
    else if (c.status === 'errored') reasons.push(`${c.id} errored${why}`)
    else if (c.status === 'skipped' && options.certified) reasons.push(`${c.id} skipped, which --certified does not allow${why}`)
  }
  return { verdict: reasons.length === 0 ? 'ready' : 'not-ready', reasons }
}

/** Counts the checks of each status. */
export function countChecks(checks: readonly Pick<CheckResult, 'status'>[]): CheckCounts {
  const counts: CheckCounts = { passed: 0, failed: 0, skipped: 0, errored: 0, total: 0 }
  for (const c of checks) {
    counts[c.status]++
    counts.total++
  }
  return counts
}

/** How a run was narrowed to part of the catalogue (`options.grep`, an unmerged `options.shard`). */
export interface Narrowing {
  grep?: string
  shard?: { index: number; count: number }
}

/**
 * How the run of a report was narrowed, or `undefined` when it judged the whole catalogue. A
 * run narrowed by `--grep` (whatever the pattern) or one shard `i/n` with n > 1 judged only
 * the checks it ran: its `ready` says nothing about the others. `report merge` drops
 * `options.shard` once every shard `1…n` is present, so a merged report of all shards judges
 * the whole catalogue — unless the shards were themselves narrowed by `--grep`, which merging keeps.
 */
export function runNarrowing(options: { grep?: string; shard?: { index: number; count: number } } | undefined): Narrowing | undefined {
  const out: Narrowing = {}
  if (options?.grep !== undefined) out.grep = options.grep
  if (options?.shard !== undefined && options.shard.count > 1) out.shard = { index: options.shard.index, count: options.shard.count }
  return out.grep === undefined && out.shard === undefined ? undefined : out
}

/** `--grep "^package\."`, `shard 2/4 (not merged)`, or both: how a narrowed run was narrowed. */
export function describeNarrowing(n: Narrowing): string {
  const parts: string[] = []
  if (n.grep !== undefined) parts.push(`--grep ${JSON.stringify(n.grep)}`)
  if (n.shard !== undefined) parts.push(`shard ${n.shard.index}/${n.shard.count} (not merged)`)
  return parts.join(', ')
}
