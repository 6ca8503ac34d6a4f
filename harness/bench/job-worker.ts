/**
 * A piscina worker of `iofcert bench`: runs one job of a phase — its sides one after another, each
 * on a fresh emulated cluster of its own — so that the clusters of concurrent jobs (their hosts,
 * daemons and recovery sites) live on threads of their own rather than all on the main thread.
 * The VMs' workers, where the generator and the filter chain run, are this thread's workers.
 */
import { threadId } from 'node:worker_threads'
import { runJobOnce, type Placement, type SideSpec } from './engine.js'
import type { GeneratorOptions, GeneratorResult } from './generator.js'

export interface JobTask {
  readonly sides: readonly SideSpec[]
  readonly placement: Placement
  /** The generator options of each VM. */
  readonly options: readonly GeneratorOptions[]
}

/** What a task returns: each side's per-VM results, or the error (its code kept) that stopped it. */
export type JobTaskResult =
  | { readonly ok: true; readonly sides: GeneratorResult[][]; readonly threadId: number }
  | { readonly ok: false; readonly name: string; readonly code: string | null; readonly exitCode: number | null; readonly message: string }

export default async function runJob(task: JobTask): Promise<JobTaskResult> {
  try {
    const sides: GeneratorResult[][] = []
    // a filter that crashes its VM is a result of the run (the baseline beside it is kept)
    for (const side of task.sides) sides.push(await runJobOnce(side, task.placement, i => task.options[i]!, 'record'))
    return { ok: true, sides, threadId }
  } catch (e) {
    const err = e as { name?: unknown; code?: unknown; exitCode?: unknown; message?: unknown }
    return {
      ok: false,
      name: typeof err.name === 'string' ? err.name : 'Error',
      code: typeof err.code === 'string' ? err.code : null,
      exitCode: typeof err.exitCode === 'number' ? err.exitCode : null,
      message: typeof err.message === 'string' ? err.message : String(e),
    }
  }
}
