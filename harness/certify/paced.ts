/**
 * Paced guest load for checks that measure time. I/Os are issued on a fixed schedule (the i-th
 * at start + i / rate), never more than `queueDepth` at once, so a latency percentile describes
 * the path under a known load instead of a queue the check built up itself. Each I/O is stamped
 * with epoch-ms issue and completion times (`nowMs`), comparable with the recovery site's
 * arrival log and across threads.
 */
import { nowMs, type GuestIo, type IoResult, type Vm } from '../framework/index.js'

/** One guest I/O of a paced run and its times (epoch ms). */
export interface TimedIo {
  /** Issue order within the run. */
  readonly index: number
  readonly io: GuestIo
  readonly issuedAt: number
  readonly completedAt: number
  readonly result: IoResult
}

/** How long and how hard a paced run goes; it stops at the first limit reached. */
export interface PacedOptions {
  /** I/Os per second; Infinity issues as fast as the queue depth allows. */
  readonly rate: number
  readonly queueDepth: number
  readonly durationMs?: number
  readonly count?: number
  /** Checked before each I/O: true stops the run. */
  readonly until?: () => boolean
}

/** What a paced run did. */
export interface PacedRun {
  /** Every I/O, in issue order. */
  readonly ios: TimedIo[]
  readonly startedAt: number
  readonly elapsedMs: number
  /** I/Os per second actually issued (below `rate` when the path could not keep up). */
  readonly achievedRate: number
}

/** The next I/O to issue, `null` to end the run, or `wait` until an I/O in flight completes. */
export type NextIo = (index: number) => GuestIo | null | 'wait'

const sleep = (ms: number) => new Promise<void>(res => setTimeout(res, Math.max(1, ms)))

/**
 * Runs a paced load on one disk. `next` is called just before each I/O is issued, so it can avoid
 * ranges still in flight; `onDone` sees each I/O as it completes.
 */
export async function pacedLoad(vm: Vm, disk: string, o: PacedOptions, next: NextIo, onDone?: (t: TimedIo) => void): Promise<PacedRun> {
  if (!(o.rate > 0) || !(o.queueDepth >= 1)) throw new Error(`a paced load needs rate > 0 and queueDepth ≥ 1, got ${o.rate} and ${o.queueDepth}`)
  const startedAt = nowMs()
  const interval = Number.isFinite(o.rate) ? 1000 / o.rate : 0
  const ios: TimedIo[] = []
  let inflight = 0
  let wake: (() => void) | null = null
  const waitForCompletion = () => new Promise<void>(res => { wake = res })
  let i = 0
  for (;;) {
    if (o.count !== undefined && i >= o.count) break
    const now = nowMs()
    if (o.durationMs !== undefined && now - startedAt >= o.durationMs) break
    if (o.until?.()) break
    const due = startedAt + i * interval
    if (due > now) {
      await sleep(due - now)
      continue
    }
    if (inflight >= o.queueDepth) {
      await waitForCompletion()
      continue
    }
    const io = next(i)
    if (io === null) break
    if (io === 'wait') {
      if (inflight === 0) await sleep(1)
      else await waitForCompletion()
      continue
    }
    const index = i++
    inflight++
    const issuedAt = nowMs()
    void vm.submit(disk, io).then(result => {
      const t: TimedIo = { index, io, issuedAt, completedAt: nowMs(), result }
      ios.push(t)
      inflight--
      onDone?.(t)
      const w = wake
      wake = null
      w?.()
    })
  }
  while (inflight > 0) await waitForCompletion()
  ios.sort((a, b) => a.index - b.index)
  const elapsedMs = nowMs() - startedAt
  return { ios, startedAt, elapsedMs, achievedRate: elapsedMs > 0 ? (ios.length * 1000) / elapsedMs : 0 }
}

/** The nearest-rank percentile (p in [0, 100]) of raw samples; NaN when there are none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)))
  return sorted[rank - 1]!
}

/** Milliseconds rounded to 0.01 for evidence. */
export function ms(v: number): number {
  return Number.isFinite(v) ? Math.round(v * 100) / 100 : v
}
