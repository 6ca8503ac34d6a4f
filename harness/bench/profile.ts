/**
 * A tinybench profile of a filter's `start` and `done` per operation type, run inside the VM's
 * worker on the live instance of an open disk: ns per call with its relative margin of error.
 *
 * Filters keep state from `start` to `done` (a replication filter holds a write's range until it
 * is done), so every call is paired, as on the I/O path: an iteration starts a batch of I/Os with
 * ids of their own on distinct 4 KiB ranges of a scratch region at the start of the disk, then
 * completes them. Only the handler being profiled is timed (tinybench's `overriddenDuration`: the
 * batch's time over its size), a `start` that returns a Promise is timed until it settles, and a
 * handler that throws or never settles is reported as such rather than left out.
 */
import { Bench } from 'tinybench'
import type { Io, Outcome } from '../sdk/index.js'
import type { WorkerDiskHandle } from '../framework/index.js'

/** One profiled handler. */
export interface ProfileEntry {
  readonly handler: 'start' | 'done'
  readonly op: Io['op']
  /** Mean ns per call (0 when the handler failed). */
  readonly nsPerOp: number
  /** Relative margin of error, percent. */
  readonly rmePct: number
  /** Iterations measured (each a batch of `BATCH` calls). */
  readonly samples: number
  /** Why the handler could not be profiled: it threw, rejected or did not settle. */
  readonly error?: string
}

const OK: Outcome = Object.freeze({ ok: true as const })
const OPS = ['read', 'write', 'flush', 'unmap'] as const
/** Calls per iteration. */
const BATCH = 32
const SPAN = 4096
/** A call that has not settled after this long is reported as hanging. */
const SETTLE_MS = 2000
/** Ids far above any the disk's own path hands out. */
let nextId = 2 ** 40

function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not settle within ${SETTLE_MS} ms`)), SETTLE_MS)
    }),
  ]).finally(() => clearTimeout(timer))
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && typeof v === 'object' && typeof (v as { then?: unknown }).then === 'function'
}

export async function run(handle: WorkerDiskHandle, o: { filterId: string; timeMs?: number }): Promise<ProfileEntry[]> {
  const layer = handle.path.layers.find(l => l.filterId === o.filterId)
  if (layer === undefined) throw new Error(`filter ${o.filterId} is not on disk ${handle.disk}`)
  const inst = layer.inst
  const start = typeof inst.start === 'function' ? inst.start.bind(inst) : null
  const done = typeof inst.done === 'function' ? inst.done.bind(inst) : null
  if (start === null && done === null) return []
  if (handle.capacity < BATCH * SPAN) throw new Error(`disk ${handle.disk} is smaller than the profile's scratch region (${BATCH * SPAN} bytes)`)
  const payload = new Uint8Array(SPAN).fill(0x5a)

  const batch = (op: Io['op']): Io[] =>
    Array.from({ length: BATCH }, (_, i): Io => ({
      id: nextId++,
      op,
      offset: op === 'flush' ? 0 : i * SPAN,
      length: op === 'flush' ? 0 : SPAN,
      data: op === 'write' ? payload : op === 'read' ? new Uint8Array(SPAN) : null,
    }))
  /** Calls `start` or `done` on io; a Promise when the handler returned one (bounded by SETTLE_MS). */
  const call = (handler: 'start' | 'done', io: Io): Promise<unknown> | null => {
    const what = `${handler}(${io.op})`
    let r: unknown
    try {
      r = handler === 'start' ? (start === null ? null : start(io)) : done === null ? null : done(io, OK)
    } catch (e) {
      throw new Error(`${what} threw: ${e instanceof Error ? e.message : String(e)}`)
    }
    if (!isThenable(r)) return null
    return within(
      Promise.resolve(r).catch(e => {
        throw new Error(`${what} rejected: ${e instanceof Error ? e.message : String(e)}`)
      }),
      what,
    )
  }
  /** Calls the handler on every I/O of the batch in turn, awaiting only what returns a Promise. */
  const each = async (handler: 'start' | 'done', ios: readonly Io[]): Promise<void> => {
    for (const io of ios) {
      const p = call(handler, io)
      if (p !== null) await p
    }
  }

  const bench = new Bench({ time: o.timeMs ?? 200, warmupTime: 50, throws: false })
  for (const op of OPS) {
    for (const handler of ['start', 'done'] as const) {
      if ((handler === 'start' ? start : done) === null) continue
      const name = `${handler} ${op}`
      bench.add(name, async () => {
        const began = bench.now()
        const ios = batch(op)
        // the handler that is not profiled still runs, untimed, so the filter sees whole I/Os
        if (handler === 'done') await each('start', ios)
        const t0 = bench.now()
        await each(handler, ios)
        const t = bench.now() - t0
        if (handler === 'start') await each('done', ios)
        // samples are per call; the time budget counts the whole iteration
        return { overriddenDuration: t / BATCH, overriddenIterationCost: bench.now() - began }
      })
    }
  }
  await bench.run()
  const out: ProfileEntry[] = []
  for (const t of bench.tasks) {
    const [handler, op] = t.name.split(' ') as ['start' | 'done', Io['op']]
    const r = t.result as { state: string; latency?: { mean: number; rme: number; samplesCount?: number }; error?: unknown }
    if (r.state === 'completed' && r.latency !== undefined) {
      out.push({ handler, op, nsPerOp: Math.round(r.latency.mean * 1e6 * 10) / 10, rmePct: Math.round(r.latency.rme * 100) / 100, samples: r.latency.samplesCount ?? 0 })
    } else {
      const why = r.error instanceof Error ? r.error.message : r.error !== undefined ? String(r.error) : `the task ended ${r.state}`
      out.push({ handler, op, nsPerOp: 0, rmePct: 0, samples: 0, error: why })
    }
  }
  return out
}
