/**
 * Runs inside a VM's worker (through `vm.runInWorker`), next to the filter chain: the I/O
 * generator submits straight into the disk's path, so no message crosses threads per I/O.
 *
 * Two modes: a fio job (the generator keeps `iodepth` in flight: saturation), or a paced open-loop
 * load (a fixed rate of I/Os whatever the latency, for latency percentiles at a given load).
 */
import { performance } from 'node:perf_hooks'
import type { WorkerDiskHandle } from '../framework/index.js'
import { IoGenerator, type GeneratorOptions, type GeneratorResult } from './generator.js'
import { LatencyHistogram, type HistogramJSON } from './histogram.js'
import { Xoshiro128 } from './prng.js'

/** A paced load: `iops` I/Os a second of `bs` bytes, `readPct` % reads, random offsets. */
export interface PacedOptions {
  readonly iops: number
  readonly seconds: number
  readonly bs: number
  readonly readPct: number
  readonly seed: number
  /** Region (bytes) the offsets fall in. */
  readonly size: number
  /** Most I/Os in flight; past it the load is behind and the check reports it. */
  readonly maxInflight: number
  /** Sequential offsets instead of random ones. */
  readonly sequential?: boolean
  /** I/Os issued in the first `rampS` seconds run but are left out of the statistics (warm-up). */
  readonly rampS?: number
}

export interface PacedResult {
  readonly issued: number
  readonly completed: number
  /** Bytes of the completed I/Os. */
  readonly bytes: number
  readonly errors: number
  readonly firstError: string | null
  /** I/Os that could not be issued on time because maxInflight were in flight. */
  readonly late: number
  readonly seconds: number
  readonly latency: HistogramJSON
}

export type InWorkerTask = { readonly kind: 'job'; readonly options: GeneratorOptions } | { readonly kind: 'paced'; readonly options: PacedOptions }

// `performance` is imported rather than read from the global: this module runs in a VM's worker,
// whose globals filter code shares (they are locked there, see framework/sandbox.ts)

/** How often a saturating job hands the worker back to its event loop (issuing pauses one turn). */
const YIELD_EVERY_MS = 20

export async function run(handle: WorkerDiskHandle, task: InWorkerTask): Promise<GeneratorResult | PacedResult> {
  return task.kind === 'job' ? runJob(handle, task.options) : runPaced(handle, task.options)
}

function runJob(handle: WorkerDiskHandle, options: GeneratorOptions): Promise<GeneratorResult> {
  let gen: IoGenerator | null = null
  // every buffer the generator submits comes from handle.ioBuffer(): guest-shaped, unchecked
  const submit = handle.submitter((tag, error) => gen!.complete(tag, error), { fromIoBuffer: true })
  // a synchronous drive would otherwise keep this thread busy for the whole run, deaf to the main
  // thread's watchdog: the generator pauses issuing for one turn every YIELD_EVERY_MS
  gen = new IoGenerator(options, submit, n => handle.ioBuffer(n), YIELD_EVERY_MS)
  return gen.run()
}

function runPaced(handle: WorkerDiskHandle, o: PacedOptions): Promise<PacedResult> {
  const rng = new Xoshiro128(o.seed)
  const hist = new LatencyHistogram()
  const slots = o.maxInflight
  const bufs = Array.from({ length: slots }, () => handle.ioBuffer(o.bs))
  // one pattern, copied in (a byte-by-byte fill of every slot cost more than the slice's writes)
  const pattern = new Uint8Array(o.bs)
  for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 31 + 7) & 0xff
  for (const b of bufs) b.set(pattern)
  const t0s = new Float64Array(slots)
  const counted = new Uint8Array(slots)
  const free: number[] = Array.from({ length: slots }, (_, i) => slots - 1 - i)
  const blocks = Math.max(1, Math.floor(o.size / o.bs))
  let scheduled = 0, issued = 0, completed = 0, errors = 0, late = 0
  let firstError: string | null = null
  const rampS = o.rampS ?? 0
  const total = Math.round(o.iops * (o.seconds + rampS))
  const rampIos = Math.round(o.iops * rampS)
  return new Promise(resolve => {
    const start = performance.now()
    let timer: ReturnType<typeof setInterval> | null = null
    const finish = () => {
      if (timer !== null) clearInterval(timer)
      timer = null
      resolve({ issued, completed, bytes: completed * o.bs, errors, firstError, late, seconds: (performance.now() - start) / 1000, latency: hist.toJSON() })
    }
    const submit = handle.submitter((tag, error) => {
      const t = performance.now()
      free.push(tag)
      completed++
      if (error === null) {
        if (counted[tag] === 1) hist.record((t - t0s[tag]!) * 1e6)
      }
      else {
        errors++
        firstError ??= error
      }
      if (scheduled >= total && completed === issued) finish()
    }, { fromIoBuffer: true })
    const tick = () => {
      // issue every I/O whose scheduled time has come (open loop: not waiting for completions)
      const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * o.iops))
      while (scheduled < due) {
        const slot = free.pop()
        if (slot === undefined) {
          // the load is behind: these I/Os are counted as late, never silently dropped
          late += due - scheduled
          scheduled = due
          break
        }
        const offset = o.sequential ? (scheduled % blocks) * o.bs : Math.floor((rng.next() / 4294967296) * blocks) * o.bs
        const isRead = (rng.next() / 4294967296) * 100 < o.readPct
        t0s[slot] = performance.now()
        counted[slot] = scheduled >= rampIos ? 1 : 0
        scheduled++
        issued++
        submit(isRead ? 'read' : 'write', offset, o.bs, bufs[slot]!, slot)
      }
      if (scheduled >= total) {
        if (timer !== null) clearInterval(timer)
        timer = null
        if (completed === issued) finish()
      }
    }
    timer = setInterval(tick, 1)
  })
}
