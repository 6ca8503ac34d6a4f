/**
 * A piscina worker of `iofcert bench`: runs a group of jobs that share disks (usually one job: its
 * copies' files are its own) — its sides, each on an emulated cluster of its own — so that the
 * clusters of concurrent groups (their hosts, daemons and recovery sites) live on threads of their
 * own rather than all on the main thread. The VMs' workers, where the generator and the filter
 * chain run, are this thread's workers.
 *
 * The main thread drives the group phase by phase over `port`: each `phase` message brings the
 * copies to run (each on the VM of its file) and gets each side's results back; `done` ends the
 * task. A group whose jobs run in one phase gets a fresh cluster per side, one side after the
 * other (the baseline's is gone before the filter's starts); a group whose jobs span phases keeps
 * its sides' clusters from its first phase to its last, so its files keep their data between
 * phases.
 */
import { threadId, type MessagePort } from 'node:worker_threads'
import { BenchSide, type BenchRun, type SideSpec } from './engine.js'
import type { GeneratorResult } from './generator.js'
import type { DiskBacking } from '../framework/index.js'

export interface JobTask {
  readonly sides: readonly SideSpec[]
  readonly device: DiskBacking
  /** Base directory for the clusters (default: the OS temp dir). */
  readonly dir?: string
  /** The group's disks, one VM each: their capacities in bytes. */
  readonly disks: readonly number[]
  /** The group has jobs in more than one phase: its sides' clusters are kept between phases. */
  readonly keep: boolean
  /** Where the main thread sends `JobTaskMessage`s and gets `JobPhaseReply`s. */
  readonly port: MessagePort
}

/** What the main thread sends: the copies of a phase, or the end of the group. */
export type JobTaskMessage = { readonly t: 'phase'; readonly runs: readonly BenchRun[] } | { readonly t: 'done' }

/** An error, its code kept, as it crosses threads. */
export interface JobTaskError {
  readonly ok: false
  readonly name: string
  readonly code: string | null
  readonly exitCode: number | null
  readonly message: string
}

/** A phase's results: per side, one result per run in order. */
export type JobPhaseReply = { readonly ok: true; readonly sides: GeneratorResult[][]; readonly threadId: number } | JobTaskError

/** What a task returns once done: its thread, or the error that stopped it. */
export type JobTaskResult = { readonly ok: true; readonly threadId: number } | JobTaskError

function asError(e: unknown): JobTaskError {
  const err = e as { name?: unknown; code?: unknown; exitCode?: unknown; message?: unknown }
  return {
    ok: false,
    name: typeof err.name === 'string' ? err.name : 'Error',
    code: typeof err.code === 'string' ? err.code : null,
    exitCode: typeof err.exitCode === 'number' ? err.exitCode : null,
    message: typeof err.message === 'string' ? err.message : String(e),
  }
}

export default async function runJob(task: JobTask): Promise<JobTaskResult> {
  const open: (BenchSide | null)[] = task.sides.map(() => null)
  const messages: JobTaskMessage[] = []
  let wake: (() => void) | null = null
  task.port.on('message', (m: JobTaskMessage) => {
    messages.push(m)
    wake?.()
  })
  const next = async (): Promise<JobTaskMessage> => {
    while (messages.length === 0) await new Promise<void>(r => (wake = r))
    wake = null
    return messages.shift()!
  }
  try {
    for (;;) {
      const m = await next()
      if (m.t === 'done') break
      try {
        const sides: GeneratorResult[][] = []
        // a filter that crashes its VM is a result of the run (the baseline beside it is kept)
        for (const [i, side] of task.sides.entries()) {
          const s = open[i] ?? (await BenchSide.open(side, { device: task.device, capacities: task.disks, ...(task.dir !== undefined ? { dir: task.dir } : {}) }))
          open[i] = s
          try {
            sides.push(await s.run(m.runs))
          } finally {
            if (!task.keep) {
              open[i] = null
              await s.close()
            }
          }
        }
        task.port.postMessage({ ok: true, sides, threadId } satisfies JobPhaseReply)
      } catch (e) {
        task.port.postMessage(asError(e) satisfies JobPhaseReply)
      }
    }
    return { ok: true, threadId }
  } catch (e) {
    return asError(e)
  } finally {
    for (const s of open) await s?.close().catch(() => undefined)
    task.port.close()
  }
}
