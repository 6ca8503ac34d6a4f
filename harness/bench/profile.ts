/**
 * A tinybench profile of a filter's `start` and `done` per operation type, run inside the VM's
 * worker on the live instance of an open disk: ns per call with its relative margin of error.
 * Synthetic I/Os target a scratch region at the start of the disk.
 */
import { Bench } from 'tinybench'
import type { Io, Outcome } from '../sdk/index.js'
import type { WorkerDiskHandle } from '../framework/vm-worker.js'

/** One profiled handler. */
export interface ProfileEntry {
  readonly handler: 'start' | 'done'
  readonly op: Io['op']
  readonly nsPerOp: number
  /** Relative margin of error, percent. */
  readonly rmePct: number
  readonly samples: number
}

const OK: Outcome = Object.freeze({ ok: true as const })

export async function run(handle: WorkerDiskHandle, o: { filterId: string; timeMs?: number }): Promise<ProfileEntry[]> {
  const layer = handle.path.layers.find(l => l.filterId === o.filterId)
  if (layer === undefined) throw new Error(`filter ${o.filterId} is not on disk ${handle.disk}`)
  const inst = layer.inst
  const bench = new Bench({ time: o.timeMs ?? 200, warmupTime: 50 })
  const ios: Record<Io['op'], () => Io> = {
    read: () => ({ id: 1, op: 'read', offset: 0, length: 4096, data: new Uint8Array(4096) }),
    write: () => ({ id: 2, op: 'write', offset: 0, length: 4096, data: new Uint8Array(4096) }),
    flush: () => ({ id: 3, op: 'flush', offset: 0, length: 0, data: null }),
    unmap: () => ({ id: 4, op: 'unmap', offset: 0, length: 4096, data: null }),
  }
  for (const op of ['read', 'write', 'flush', 'unmap'] as const) {
    const io = ios[op]()
    if (typeof inst.start === 'function') {
      bench.add(`start ${op}`, () => {
        const d = inst.start!(io)
        return d !== null && typeof d === 'object' && typeof (d as Promise<unknown>).then === 'function' ? (d as Promise<unknown>).then(() => undefined) : undefined
      })
    }
    if (typeof inst.done === 'function') {
      bench.add(`done ${op}`, () => {
        const r = inst.done!(io, OK)
        return r !== undefined && r !== null && typeof (r as Promise<void>).then === 'function' ? (r as Promise<void>) : undefined
      })
    }
  }
  await bench.run()
  const out: ProfileEntry[] = []
  for (const t of bench.tasks) {
    const r = t.result as { state: string; latency?: { mean: number; rme: number; samplesCount?: number }; samples?: unknown[] }
    if (r.state !== 'completed' || r.latency === undefined) continue
    const [handler, op] = t.name.split(' ') as ['start' | 'done', Io['op']]
    out.push({ handler, op, nsPerOp: Math.round(r.latency.mean * 1e6 * 10) / 10, rmePct: Math.round(r.latency.rme * 100) / 100, samples: Array.isArray(r.samples) ? r.samples.length : 0 })
  }
  return out
}
