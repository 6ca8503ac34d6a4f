/**
 * Runs one check: applicability, skips with their reason, a time budget, classification of what
 * went wrong (the filter's fault is `failed`, the harness's is `errored`) and teardown.
 */
import type { CheckResult } from '../../reports/index.js'
import { isIofError } from '../framework/index.js'
import { CheckContext, checkSeed, type RunOptions } from './context.js'
import { appliesTo, CheckFailure, type CheckArtifacts, type CheckDef, type CheckOutcome } from './check.js'
import type { SubjectData } from './subject.js'

/** A check's result plus what it adds to the report. */
export interface ExecutedCheck {
  readonly result: CheckResult
  readonly artifacts?: CheckArtifacts
}

/** Codes of framework errors that a misbehaving filter causes (they fail the check, not the harness). */
const FILTER_FAULTS = new Set(['OpenFailed', 'WorkerFailed', 'DaemonFailed', 'IoFailed', 'VmPoweredOff', 'PolicyParamsInvalid', 'ModuleInvalid', 'AbiVersionMismatch', 'FilterInUse', 'EDAEMON'])

/** Whether a check counts for `ready` in this run. */
export function isRequired(def: CheckDef, subject: SubjectData, o: RunOptions): boolean {
  // a check that does not apply to the filter's class cannot be required of it
  if (!appliesTo(def, subject.cls)) return false
  if (def.required === 'when-upgrade-from') return o.upgradeFrom !== null
  if (def.required === 'when-signed-level') return subject.signatureRequired
  return def.required
}

/** A check's run budget when it names none; its teardown comes on top (the supervisor bounds both). */
export const DEFAULT_TIMEOUT_MS = 120_000

export async function executeCheck(def: CheckDef, subject: SubjectData, o: RunOptions): Promise<ExecutedCheck> {
  const t0 = performance.now()
  const seed = checkSeed(o.seed, def.id)
  const base = { id: def.id, suite: def.suite, title: def.title, required: isRequired(def, subject, o) }
  const done = (outcome: CheckOutcome, ctx?: CheckContext): ExecutedCheck => {
    const evidence = outcome.evidence || ctx?.noted.length ? { seed, ...outcome.evidence, ...(ctx?.noted.length ? { notes: ctx.noted } : {}) } : undefined
    const result: CheckResult = {
      ...base,
      status: outcome.status,
      durationMs: Math.round(performance.now() - t0),
      ...(outcome.message !== undefined ? { message: outcome.message } : {}),
      ...(evidence !== undefined ? { evidence } : {}),
      ...(outcome.status === 'passed' && outcome.marginal === true ? { marginal: true } : {}),
      ...((outcome.status === 'failed' || outcome.status === 'errored') && outcome.cause !== undefined ? { cause: outcome.cause } : {}),
    }
    const artifacts = outcome.status === 'passed' || outcome.status === 'failed' ? outcome.artifacts : undefined
    return artifacts ? { result, artifacts } : { result }
  }
  if (!appliesTo(def, subject.cls)) {
    return done({ status: 'skipped', message: `applies to ${def.classes === 'all' ? 'all' : def.classes.join(', ')} filters; this filter is ${subject.cls}` })
  }
  if (def.needsInstall !== false && subject.info === null) {
    return done({ status: 'skipped', message: `not run: ${subject.refusedBecause}` })
  }
  const ctx = new CheckContext(def.id, seed, subject, o)
  const budget = o.checkRunMs ?? def.timeoutMs ?? DEFAULT_TIMEOUT_MS
  let timer: ReturnType<typeof setTimeout> | undefined
  let outcome: CheckOutcome
  try {
    outcome = await Promise.race([
      def.run(ctx),
      new Promise<CheckOutcome>(resolve => {
        timer = setTimeout(() => resolve({ status: 'failed', message: `the check did not finish within ${budget / 1000} s: the filter hangs or is far too slow`, evidence: { budgetMs: budget } }), budget)
      }),
    ])
  } catch (e) {
    if (e instanceof CheckFailure) outcome = { status: 'failed', message: e.message, evidence: e.evidence, ...(e.likelyCause !== undefined ? { cause: e.likelyCause } : {}) }
    else if (isIofError(e) && FILTER_FAULTS.has(e.code)) outcome = { status: 'failed', message: e.message, evidence: { code: e.code, ...e.details } }
    else {
      const err = e as Error
      outcome = { status: 'errored', message: `the harness failed: ${err?.message ?? String(e)}`, evidence: { stack: String(err?.stack ?? '').split('\n').slice(0, 6) } }
    }
  } finally {
    clearTimeout(timer)
  }
  const checked = done(outcome, ctx)
  await ctx.dispose()
  if (outcome.status !== 'failed' && outcome.status !== 'errored') return checked
  // the filter's own words about what went wrong, read after teardown so its last ones are in
  const { logs, dropped } = ctx.filterLogs()
  const cause = checked.result.cause ?? (def.suite === 'isolation' ? undefined : ctx.faultCause())
  const result: CheckResult = { ...checked.result, ...(cause !== undefined ? { cause } : {}), ...(logs.length > 0 ? { logs } : {}), ...(dropped > 0 ? { logsDropped: dropped } : {}) }
  return checked.artifacts !== undefined ? { result, artifacts: checked.artifacts } : { result }
}
