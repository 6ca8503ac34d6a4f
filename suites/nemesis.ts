/**
 * nemesis.*: lifecycle transitions taken at the worst moment. Each check runs seeded schedules on
 * a two-host cluster with two or three VMs on small file-backed disks: guest I/O on every VM, and
 * power-offs, migrations, clean host restarts, host power cuts (daemons lost), a power cut right
 * after a close, VM worker deaths, recovery-site outages, stuns, snapshots and policy
 * detach/attach — under I/O, back to back, with writes queued and mid-outage. After every step the
 * disks are read back and judged against a model of what each sector may hold; for replication
 * filters `nemesis.replica` also judges the replica's write order and that it catches up.
 *
 * Everything derives from the check's seed: the i-th schedule's sub-seed is the i-th number drawn
 * for it, so a `--quick` run's schedules are the first of a full run's, and a rerun with the same
 * seed replays the same schedules. In a full run a failing schedule is shrunk (steps removed while
 * it still fails the same way) within a time budget and reported whole and shrunk, step by step;
 * a quick run reports it whole.
 */
import type { CheckContext } from '../harness/certify/context.js'
import { check, type CheckDef, CheckFailure, type CheckOutcome } from '../harness/certify/check.js'
import { nowMs } from '../harness/framework/index.js'
import { NemesisFailure, runSchedule, type RunShape, type ScheduleOutcome, type StepRecord } from './nemesis/run.js'
import { describeStep, generateSchedule, type Schedule, type ScheduleShape, type Step } from './nemesis/schedule.js'

export { generateSchedule, describeStep, type Schedule, type Step } from './nemesis/schedule.js'
export { NemesisFailure, type ScheduleOutcome, type StepRecord } from './nemesis/run.js'

const MiB = 1 << 20

/** How much a nemesis check runs. */
export interface NemesisBudget {
  readonly schedules: number
  readonly shape: ScheduleShape
  /** Time the shrinker may take after a failure, ms. */
  readonly shrinkMs: number
}

/** The shape of every schedule of a check, quick or full: the same sub-seed, the same schedule. */
const SHAPE: ScheduleShape = { steps: 5, maxIos: 48 }
/** `--quick`: a few schedules, a check well under a minute; a failure is reported unshrunk. */
export const QUICK: NemesisBudget = { schedules: 3, shape: SHAPE, shrinkMs: 0 }
/** A full run: more schedules, and a failing one shrunk. */
export const FULL: NemesisBudget = { schedules: 16, shape: SHAPE, shrinkMs: 120_000 }

/** The run shape of a check: 4 MiB disks at queue depth 8, a cache of half the disk. */
export function runShape(judgeReplica: boolean, capacity = 4 * MiB): RunShape {
  return { capacity, queueDepth: 8, judgeReplica, cacheMiB: Math.max(1, Math.floor(capacity / MiB / 2)) }
}

/** The sub-seeds of a check's first `n` schedules, drawn from its seed (ctx.rng's first draw). */
export function subSeeds(ctx: CheckContext, n: number): number[] {
  const master = ctx.rng.fork(0x6e656d)
  return Array.from({ length: n }, () => master.u32())
}

/** What one schedule of a scenario run came to. */
export interface ScenarioResult {
  readonly schedule: Schedule
  readonly outcome: ScheduleOutcome
}

/**
 * The nemesis scenario: generates the schedule of `subSeed` for the filter's class and runs it on
 * a fresh cluster, judging the disks (and with `judgeReplica` the replicas) after every step.
 * Throws a NemesisFailure at the first violation.
 */
export async function nemesisScenario(ctx: CheckContext, o: { subSeed: number; shape: ScheduleShape; judgeReplica: boolean; capacity?: number }): Promise<ScenarioResult> {
  const schedule = generateSchedule(o.subSeed, ctx.cls, o.shape)
  const outcome = await runSchedule(ctx, schedule, runShape(o.judgeReplica, o.capacity))
  return { schedule, outcome }
}

/** A schedule's steps for evidence: each with its parameters. */
function stepList(steps: readonly Step[]): Record<string, unknown>[] {
  return steps.map((s, i) => ({ n: i + 1, ...s, does: describeStep(s) }))
}

/** The steps as they ran, with their times (ms from the schedule's start). */
function ranList(records: readonly StepRecord[]): Record<string, unknown>[] {
  return records.map(r => ({ n: r.n, step: r.step, startMs: r.startMs, endMs: r.endMs, ...(r.skipped ? { skipped: r.skipped } : {}), ...(r.closing ? { closing: true } : {}) }))
}

/**
 * Removes steps from a failing schedule while it still fails the same invariant: chunks first,
 * then single steps, within `budgetMs`. Returns the smallest failing schedule found and its failure.
 */
export async function shrink(ctx: CheckContext, sched: Schedule, failure: NemesisFailure, shape: RunShape, budgetMs: number): Promise<{ schedule: Schedule; failure: NemesisFailure; runs: number; complete: boolean }> {
  const until = nowMs() + budgetMs
  let best = { schedule: sched, failure }
  let runs = 0
  // steps after the failing one cannot have caused it
  let steps = sched.steps.slice(0, Math.min(sched.steps.length, failure.stepIndex))
  const fails = async (candidate: readonly Step[]): Promise<NemesisFailure | null> => {
    runs++
    const s: Schedule = { ...sched, steps: candidate }
    try {
      await runSchedule(ctx, s, shape)
      return null
    } catch (e) {
      if (e instanceof NemesisFailure && e.invariant === failure.invariant) return e
      if (e instanceof NemesisFailure) return null
      throw e
    }
  }
  const first = await fails(steps)
  if (first === null) return { ...best, runs, complete: false }
  best = { schedule: { ...sched, steps }, failure: first }
  let chunk = Math.max(1, steps.length >> 1)
  while (chunk >= 1) {
    let removed = false
    for (let at = 0; at < steps.length && nowMs() < until; ) {
      const candidate = [...steps.slice(0, at), ...steps.slice(at + chunk)]
      const f = candidate.length === 0 ? null : await fails(candidate)
      if (f !== null) {
        steps = candidate
        best = { schedule: { ...sched, steps }, failure: f }
        removed = true
      } else at += chunk
    }
    if (nowMs() >= until) return { ...best, runs, complete: false }
    // a pass that removed steps is tried again at the same size; one that did not, at half of it
    if (!removed) chunk = chunk === 1 ? 0 : chunk >> 1
  }
  return { ...best, runs, complete: true }
}

/** Runs a check's schedules; the first failure (shrunk) fails the check. */
async function runChecks(ctx: CheckContext, judgeReplica: boolean): Promise<CheckOutcome> {
  const budget = ctx.quick ? QUICK : FULL
  const shape = runShape(judgeReplica)
  const seeds = subSeeds(ctx, budget.schedules)
  const ran: Record<string, unknown>[] = []
  const t0 = nowMs()
  for (let i = 0; i < seeds.length; i++) {
    const schedule = generateSchedule(seeds[i]!, ctx.cls, budget.shape)
    try {
      const o = await runSchedule(ctx, schedule, shape)
      ran.push({ schedule: i + 1, subSeed: seeds[i], vms: schedule.vms.map(v => `${v.name}@${v.host}`), steps: o.steps.length, ios: o.ios, writes: o.writes, ...(judgeReplica ? { arrivals: o.arrivals } : {}), checkpoints: o.checkpoints, ms: o.ms })
    } catch (e) {
      if (!(e instanceof NemesisFailure)) throw e
      const whole = { schedule: i + 1, subSeed: seeds[i], vms: schedule.vms.map(v => `${v.name}@${v.host}`), steps: stepList(schedule.steps), ran: ranList(e.steps) }
      let shrunk: Record<string, unknown> = { note: 'not shrunk in a --quick run' }
      let note = ''
      if (budget.shrinkMs > 0) {
        const s = await shrink(ctx, schedule, e, shape, budget.shrinkMs)
        if (s.schedule.steps.length < schedule.steps.length) {
          shrunk = { steps: stepList(s.schedule.steps), ran: ranList(s.failure.steps), message: s.failure.message, reruns: s.runs, complete: s.complete }
          note = ` [it still fails with ${s.schedule.steps.length} of its ${schedule.steps.length} steps]`
        } else shrunk = { reruns: s.runs, complete: s.complete, note: 'no step could be removed with the schedule still failing the same way' }
      }
      throw new CheckFailure(
        `schedule ${i + 1} of ${seeds.length} (sub-seed ${seeds[i]}), ${e.message}${note}`,
        { invariant: e.invariant, failedAtStep: e.stepIndex, ...e.evidence, failing: whole, shrunk, passedBefore: ran },
      )
    }
  }
  const steps = ran.reduce((n, r) => n + (r.steps as number), 0)
  const ios = ran.reduce((n, r) => n + (r.ios as number), 0)
  return {
    status: 'passed',
    message: `${seeds.length} seeded schedules (${steps} steps, ${ios} guest I/Os) of transitions under I/O${judgeReplica ? ', the replica judged after every step' : ''}: every disk held what its writes, flushes and crashes allow after every step${judgeReplica ? ', every arrival kept the replica a prefix of the write order, and each checkpoint found it equal to the disk' : ', and no read returned data older than the last completed write'}`,
    evidence: { schedules: ran, totalMs: Math.round(nowMs() - t0) },
  }
}

const schedulesCheck = check(
  { id: 'nemesis.schedules', title: 'Seeded schedules of lifecycle transitions under I/O — power-off, migration, host restart and power cut (also right after a close), VM crash, site outage, stun, snapshot, detach/attach: every disk holds what its completed writes, flushes and crashes allow after every step, and no read returns data older than the last completed write', required: true, classes: 'all', timeoutMs: 900_000 },
  ctx => runChecks(ctx, false),
)

const replicaCheck = check(
  { id: 'nemesis.replica', title: 'The same schedules, judging the replica: after every arrival it is a prefix of the write order, and once the site is up and the RPO has passed it equals the disk — also after a host power cut that followed a close', required: true, classes: ['replication'], timeoutMs: 900_000 },
  ctx => runChecks(ctx, true),
)

/** The suite's checks, in catalogue order. */
export const checks: readonly CheckDef[] = [schedulesCheck, replicaCheck]
