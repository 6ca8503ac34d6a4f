/**
 * In-worker workload of integrity.guest-buffer. It watches the two ends of the chain from inside
 * the VM's worker: the guest's own buffers, and what the drive under the filters received and
 * returned (its `submit` wrapped for the run). A write's payload must be byte-identical to the
 * guest's copy when it reaches the drive and when it completes; a read the filter passed down must
 * reach the guest with exactly the bytes the drive returned. Reads that never reached the drive
 * were completed by the filter itself and are only counted.
 */
import type { IoError, IoOp } from '../../sdk/index.js'
import type { DriveCallback, DriveRequest, WorkerDiskHandle } from '../../framework/index.js'
import { Rng } from '../../framework/rng.js'

export interface GuestBufferOptions {
  readonly count: number
  readonly queueDepth: number
  readonly seed: number
  readonly maxSectors: number
  /** Most I/O goes to a small hot set, so a caching filter completes some reads itself. */
  readonly hotSetBytes: number
  /** Bound on the run (the framework times each I/O out well before). */
  readonly deadlineMs: number
}

/** A changed buffer, with a hex excerpt around its first differing byte. */
export interface BufferViolation {
  readonly kind: 'write-payload-changed-before-disk' | 'write-payload-changed' | 'read-buffer-changed'
  readonly index: number
  readonly op: IoOp
  readonly offset: number
  readonly length: number
  /** Byte offset of the first difference inside the buffer. */
  readonly at: number
  readonly expected: string
  readonly found: string
}

export interface GuestBufferResult {
  readonly ios: number
  readonly writesChecked: number
  readonly readsChecked: number
  readonly readsCompletedByFilter: number
  readonly errors: { index: number; op: IoOp; offset: number; length: number; error: IoError }[]
  readonly violations: BufferViolation[]
  readonly violationCount: number
}

const KEEP = 5

function diff(a: Uint8Array, b: Uint8Array): { at: number; expected: string; found: string } | null {
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) {
      const from = Math.max(0, i - 8)
      const to = Math.min(a.length, from + 32)
      return { at: i, expected: Buffer.from(a.subarray(from, to)).toString('hex'), found: Buffer.from(b.subarray(from, to)).toString('hex') }
    }
  }
  return null
}

export async function run(handle: WorkerDiskHandle, o: GuestBufferOptions): Promise<GuestBufferResult> {
  const rng = new Rng(o.seed)
  const n = o.count
  const ops: IoOp[] = new Array(n)
  const offsets = new Float64Array(n)
  const buffers: (Uint8Array | null)[] = new Array(n)
  const copies: (Uint8Array | null)[] = new Array(n)
  // a guest request reaches the drive carrying the guest's own buffer (non-transforming chain):
  // the buffer names the I/O
  const tagOf = new Map<Uint8Array, number>()
  const delivered = new Map<number, Uint8Array>()
  const violations: BufferViolation[] = []
  const errors: GuestBufferResult['errors'] = []
  let violationCount = 0
  let writesChecked = 0
  let readsChecked = 0
  let readsCompletedByFilter = 0
  const violate = (kind: BufferViolation['kind'], i: number, expected: Uint8Array, found: Uint8Array): void => {
    const d = diff(expected, found)
    if (d === null) return
    violationCount++
    if (violations.length < KEEP) violations.push({ kind, index: i, op: ops[i]!, offset: offsets[i]!, length: expected.length, ...d })
  }

  const drive = handle.drive
  const submitToDrive = drive.submit
  drive.submit = (req: DriveRequest, cb: DriveCallback): void => {
    const i = req.origin === 0 && req.data !== null ? tagOf.get(req.data) : undefined
    if (i === undefined) return submitToDrive.call(drive, req, cb)
    if (req.op === 'write') violate('write-payload-changed-before-disk', i, copies[i]!, req.data!)
    submitToDrive.call(drive, req, (r, error) => {
      // what the drive hands back, before any filter's done() runs
      if (r.op === 'read' && error === null) delivered.set(i, r.data!.slice())
      cb(r, error)
    })
  }

  for (let i = 0; i < n; i++) {
    const sectors = 1 + (rng.float() < 0.8 ? rng.int(Math.min(16, o.maxSectors)) : rng.int(o.maxSectors))
    const bytes = sectors * 512
    const hot = rng.float() < 0.6
    const span = hot ? Math.min(o.hotSetBytes, handle.capacity) : handle.capacity
    offsets[i] = rng.int((span - bytes) / 512 + 1) * 512
    const write = rng.float() < 0.5
    ops[i] = write ? 'write' : 'read'
    buffers[i] = write ? rng.fill(new Uint8Array(bytes)) : new Uint8Array(bytes)
    copies[i] = write ? buffers[i]!.slice() : null
  }

  try {
    await new Promise<void>(resolve => {
      let next = 0
      let settled = 0
      const deadline = setTimeout(resolve, o.deadlineMs)
      const submit = handle.submitter((tag, error) => {
        settled++
        const buf = buffers[tag]!
        tagOf.delete(buf)
        if (error !== null) {
          if (errors.length < KEEP) errors.push({ index: tag, op: ops[tag]!, offset: offsets[tag]!, length: buf.length, error })
        } else if (ops[tag] === 'write') {
          writesChecked++
          violate('write-payload-changed', tag, copies[tag]!, buf)
        } else {
          const got = delivered.get(tag)
          if (got === undefined) readsCompletedByFilter++
          else {
            readsChecked++
            violate('read-buffer-changed', tag, got, buf)
          }
        }
        delivered.delete(tag)
        buffers[tag] = copies[tag] = null
        if (next < n) queueMicrotask(issue)
        else if (settled === n) {
          clearTimeout(deadline)
          resolve()
        }
      })
      function issue(): void {
        if (next >= n) return
        const i = next++
        const buf = buffers[i]!
        tagOf.set(buf, i)
        submit(ops[i]!, offsets[i]!, buf.length, buf, i)
      }
      for (let k = 0; k < o.queueDepth && next < n; k++) issue()
    })
  } finally {
    Reflect.deleteProperty(drive, 'submit')
  }
  return { ios: n, writesChecked, readsChecked, readsCompletedByFilter, errors, violations, violationCount }
}
