/**
 * A failing schedule, step by step. A check that drives a schedule of steps (the `nemesis.*`
 * checks) puts the steps as they ran in its evidence — `failing.ran` (and `shrunk.ran` when it was
 * reduced), each `{ n, step, startMs, endMs }`, with `failedAtStep` the step during or after which
 * the check failed. The console, HTML and JUnit renderers show them as a numbered timeline.
 */
import type { CheckResult } from './document.js'

/** One step as it ran, with its times in ms from the schedule's start. */
export interface RanStep {
  readonly n: number
  readonly step: string
  readonly startMs: number
  readonly endMs: number
  /** The step during or after which the check failed. */
  readonly failed: boolean
  /** Why the step did nothing (a shrunk schedule's step that no longer applies). */
  readonly skipped?: string
}

/** A schedule to show: the whole failing one, then the shrunk one if there is one. */
export interface ScheduleView {
  readonly title: string
  readonly steps: readonly RanStep[]
}

function ranSteps(value: unknown, failedAt: number | undefined): RanStep[] | null {
  if (!Array.isArray(value) || value.length === 0) return null
  const out: RanStep[] = []
  for (const v of value) {
    if (v === null || typeof v !== 'object') return null
    const r = v as Record<string, unknown>
    if (typeof r.n !== 'number' || typeof r.step !== 'string' || typeof r.startMs !== 'number' || typeof r.endMs !== 'number') return null
    out.push({ n: r.n, step: r.step, startMs: r.startMs, endMs: r.endMs, failed: failedAt !== undefined && r.n === failedAt, ...(typeof r.skipped === 'string' ? { skipped: r.skipped } : {}) })
  }
  // a failure found after the last step ran (a final comparison) marks the last step
  if (failedAt !== undefined && !out.some(s => s.failed) && failedAt > out.at(-1)!.n) out[out.length - 1] = { ...out.at(-1)!, failed: true }
  return out
}

/** The schedules a failed check's evidence holds, or nothing for a check without one. */
export function failingSchedules(c: CheckResult): ScheduleView[] {
  if ((c.status !== 'failed' && c.status !== 'errored') || c.evidence === undefined) return []
  const ev = c.evidence as Record<string, unknown>
  const failedAt = typeof ev.failedAtStep === 'number' ? ev.failedAtStep : undefined
  const views: ScheduleView[] = []
  const failing = ev.failing as Record<string, unknown> | undefined
  const whole = ranSteps(failing?.ran, failedAt)
  if (whole !== null) {
    const which = typeof failing?.schedule === 'number' ? `schedule ${failing.schedule}` : 'the schedule'
    const seed = typeof failing?.subSeed === 'number' ? ` (sub-seed ${failing.subSeed})` : ''
    views.push({ title: `The failing ${which}${seed}, step by step`, steps: whole })
  }
  const shrunk = ev.shrunk as Record<string, unknown> | undefined
  const small = ranSteps(shrunk?.ran, undefined)
  if (small !== null) {
    // the steps are recorded up to the failure: the shrunk run failed during or after its last
    const last = small.at(-1)!
    views.push({ title: `Shrunk to ${small.length} steps that still fail the same way`, steps: small.map(s => (s === last ? { ...s, failed: true } : s)) })
  }
  return views
}

/** One step as a line: `3. esx1 lost power (+120 … +480 ms)`, marked when the check failed there. */
export function stepLine(s: RanStep): string {
  return `${s.n}. ${s.step} (+${Math.round(s.startMs)} … +${Math.round(s.endMs)} ms)${s.skipped !== undefined ? ` — skipped: ${s.skipped}` : ''}${s.failed ? '  ← failed here' : ''}`
}
