/**
 * In-worker workload of ordering.completion: at each queue depth, keeps that many guest I/Os in
 * flight through the disk's filter chain and counts every completion per I/O. Running inside the
 * VM's worker sees each completion callback itself, so a second completion of one I/O is counted
 * rather than lost in the guest's request bookkeeping.
 */
import type { IoError, IoOp } from '../../sdk/index.js'
import type { WorkerDiskHandle } from '../../framework/index.js'
import { Rng } from '../../framework/rng.js'

export interface CompletionOptions {
  readonly depths: readonly number[]
  /** I/Os at each depth. */
  readonly counts: readonly number[]
  readonly seed: number
  /** The framework's I/O timeout: an I/O still open well past it is a hang. */
  readonly ioTimeoutMs: number
}

/** One I/O named in evidence. */
export interface IoNote {
  readonly index: number
  readonly op: IoOp
  readonly offset: number
  readonly length: number
  readonly error?: IoError | null
  readonly ms?: number
}

export interface DepthResult {
  readonly depth: number
  readonly ios: number
  /** I/Os that completed at least once. */
  readonly completed: number
  readonly elapsedMs: number
  readonly maxMs: number
  readonly errors: IoNote[]
  readonly errorCount: number
  readonly doubles: IoNote[]
  readonly missing: IoNote[]
}

const KEEP = 5
const POOL = 1 << 20

export async function run(handle: WorkerDiskHandle, o: CompletionOptions): Promise<DepthResult[]> {
  const rng = new Rng(o.seed)
  // payloads are not verified here: slices of one random pool keep the workload cheap
  const pool = rng.fill(new Uint8Array(POOL))
  const out: DepthResult[] = []
  for (let k = 0; k < o.depths.length; k++) {
    const r = await atDepth(handle, rng, pool, o.depths[k]!, o.counts[k]!, o.ioTimeoutMs)
    out.push(r)
    if (r.errorCount > 0 || r.doubles.length > 0 || r.missing.length > 0) break
  }
  return out
}

function atDepth(handle: WorkerDiskHandle, rng: Rng, pool: Uint8Array, depth: number, n: number, timeoutMs: number): Promise<DepthResult> {
  const ops: IoOp[] = new Array(n)
  const offsets = new Float64Array(n)
  const lengths = new Uint32Array(n)
  for (let i = 0; i < n; i++) {
    const r = rng.float()
    const op: IoOp = r < 0.03 ? 'flush' : r < 0.08 ? 'unmap' : r < 0.54 ? 'read' : 'write'
    const sectors = 1 + (rng.float() < 0.8 ? rng.int(16) : rng.int(128))
    ops[i] = op
    lengths[i] = op === 'flush' ? 0 : sectors * 512
    offsets[i] = op === 'flush' ? 0 : rng.int((handle.capacity - sectors * 512) / 512 + 1) * 512
  }
  const note = (i: number, extra: Partial<IoNote> = {}): IoNote => ({ index: i, op: ops[i]!, offset: offsets[i]!, length: lengths[i]!, ...extra })
  const times = new Float64Array(n)
  const seen = new Uint8Array(n)
  const errors: IoNote[] = []
  const doubles: IoNote[] = []
  let errorCount = 0
  let completed = 0
  let maxMs = 0
  let next = 0
  const t0 = performance.now()
  return new Promise(resolve => {
    let finished = false
    const finish = () => {
      if (finished) return
      finished = true
      clearTimeout(deadline)
      const missing: IoNote[] = []
      for (let i = 0; i < next && missing.length < KEEP; i++) if (seen[i] === 0) missing.push(note(i, { ms: Math.round(performance.now() - times[i]!) }))
      resolve({ depth, ios: n, completed, elapsedMs: Math.round(performance.now() - t0), maxMs: Math.round(maxMs), errors, errorCount, doubles, missing })
    }
    // the framework times an I/O out at ioTimeoutMs; one still open long after that is a hang
    const deadline = setTimeout(finish, timeoutMs * 2 + 2000)
    const submit = handle.submitter((tag, error) => {
      if (finished) return
      if (seen[tag]! > 0) {
        if (doubles.length < KEEP) doubles.push(note(tag))
        return
      }
      seen[tag] = 1
      completed++
      const ms = performance.now() - times[tag]!
      if (ms > maxMs) maxMs = ms
      if (error !== null) {
        errorCount++
        if (errors.length < KEEP) errors.push(note(tag, { error, ms: Math.round(ms) }))
      }
      // issue the next one outside the completion: a filter that completes synchronously
      // would otherwise nest every I/O of the run in one stack
      if (next < n) queueMicrotask(issue)
      // a second completion of an I/O can only arrive after its first: wait a turn before judging
      else if (completed === n) setImmediate(finish)
    })
    function issue(): void {
      if (finished || next >= n) return
      const i = next++
      times[i] = performance.now()
      const len = lengths[i]!
      const op = ops[i]!
      const data = op === 'write' ? pool.subarray((i * 4096) % (POOL - len + 1), (i * 4096) % (POOL - len + 1) + len) : op === 'read' ? new Uint8Array(len) : null
      submit(op, offsets[i]!, len, data, i)
    }
    for (let k = 0; k < depth && next < n; k++) issue()
  })
}
