/**
 * The per-disk I/O path inside a VM worker: guest I/O goes through the filter instances in chain
 * order (`start` top-down), reaches the drive, and completes back up (`done` bottom-up through the
 * filters that passed it). A synchronous PASS costs no Promise and no closure: the request object,
 * and the view of it the filters are handed (only when a layer has a handler), are the only
 * per-I/O allocations of a pass-through chain.
 *
 * Filters never hold the request itself: they get an IoView, whose only state is the request in
 * a private field. Nothing a filter writes on its `io` or calls on it reaches the path's
 * bookkeeping (the completion callback, the submitter's tag, the state, the in-flight list), so it
 * cannot complete an I/O twice, complete another I/O or change what the path counts; and each
 * settlement of a handler's result is taken once (see settle()).
 */
import type { Decision, FilterClass, FilterInstance, Io, IoError, IoOp, LowerDisk, Outcome } from '../sdk/index.js'
import type { Drive, DriveRequest } from './drive.js'

/** A filter instance placed in the chain. */
export interface Layer {
  readonly filterId: string
  readonly name: string
  readonly cls: FilterClass
  /** May replace a write's payload (encryption, compression). */
  readonly transforming: boolean
  readonly inst: FilterInstance
  /** The instance's handlers, read once when it was opened (null: none). */
  readonly start: NonNullable<FilterInstance['start']> | null
  readonly done: NonNullable<FilterInstance['done']> | null
}

/** A fault recorded against a filter (or the path) for one I/O. */
export interface FaultRecord {
  readonly at: number
  readonly disk: string
  readonly filter: string
  readonly kind: 'throw' | 'reject' | 'timeout' | 'violation' | 'invalid-decision' | 'double-completion' | 'crash' | 'hang' | 'oom' | 'open' | 'close' | 'event'
  readonly io: { id: number; op: IoOp; offset: number; length: number } | null
  readonly error: IoError | null
  readonly message: string
}

export type Completion = (req: IoRequest, error: IoError | null) => void

/**
 * A chain's `start` walk for a guest I/O, compiled for its layers: returns the number of layers
 * when every one passed plainly; the index of the first that did anything else (its decision in
 * `out`); or -1 - index of one that threw (the exception in `out`).
 */
type FastDown = (io: IoView) => number
interface FastOut {
  value: unknown
}

/**
 * Compiles the walk down a chain into straight-line code with one call site per layer. A loop
 * calls every filter's `start` from one site, which V8 cannot inline past a few filters and
 * which costs ~8 ns a layer; one site per layer is monomorphic, so a pass-through `start` is
 * inlined and costs ~1–2 ns. Only layer indices reach the generated source; the handlers and
 * instances are its arguments.
 */
function compileDown(layers: readonly Layer[], out: FastOut): FastDown | null {
  const names: string[] = []
  const values: unknown[] = []
  let body = ''
  layers.forEach((L, k) => {
    if (L.start === null) return
    names.push(`s${k}`, `o${k}`)
    values.push(L.start, L.inst)
    body +=
      `    i = ${k}; d = s${k}.call(o${k}, io)\n` +
      `    if (d === null || typeof d !== 'object' || d.kind !== 'pass' || d.data !== undefined) { out.value = d; return ${k} }\n`
  })
  if (names.length === 0) return null
  const source = `return function fastDown(io) {\n  let d, i = 0\n  try {\n${body}  } catch (e) {\n    out.value = e\n    return -1 - i\n  }\n  return ${layers.length}\n}`
  return new Function(...names, 'out', source)(...values, out) as FastDown
}

const OK: Outcome = Object.freeze({ ok: true as const })
const FAIL_OUTCOMES = new Map<IoError, Outcome>()
function failOutcome(e: IoError): Outcome {
  let o = FAIL_OUTCOMES.get(e)
  if (o === undefined) {
    o = Object.freeze({ ok: false as const, error: e })
    FAIL_OUTCOMES.set(e, o)
  }
  return o
}
const IO_ERRORS: ReadonlySet<string> = new Set(['EIO', 'ENOSPC', 'ETIMEDOUT', 'EBUSY', 'EINVAL', 'ENODEV'])

const ACTIVE = 0
const FINISHED = 1
const TIMED_OUT = 2

/** A thenable's `then`, read once from a handler's result. */
type Then = (this: object, onFulfilled: (v: unknown) => void, onRejected: (e: unknown) => void) => unknown

/**
 * One I/O as the path keeps it. Filter code never gets this object (it gets the request's IoView),
 * so its fields are the path's alone; the drive and the in-worker workloads read it through the
 * getters.
 */
export class IoRequest implements DriveRequest {
  _data: Uint8Array | null
  _level = 0
  _state = ACTIVE
  _t0 = 0
  _repl: (number | Uint8Array | null)[] | null = null
  _prev: IoRequest | null = null
  _next: IoRequest | null = null
  /** What the filters hold of this I/O, made when a layer first needs it (see viewOf). */
  _view: IoView | null = null
  constructor(
    readonly _id: number,
    readonly _op: IoOp,
    readonly _offset: number,
    readonly _length: number,
    data: Uint8Array | null,
    readonly _origin: number,
    readonly _cb: Completion,
    /** The submitter's own tag (a request id, a generator slot). */
    readonly _tag: number,
  ) {
    this._data = data
  }
  get id(): number { return this._id }
  get op(): IoOp { return this._op }
  get offset(): number { return this._offset }
  get length(): number { return this._length }
  get data(): Uint8Array | null { return this._data }
  get origin(): number { return this._origin }
  toJSON(): object {
    return { id: this._id, op: this._op, offset: this._offset, length: this._length }
  }
}

/**
 * An I/O as a filter sees it: the ABI's read-only `Io`. Its one field is private, so the request
 * behind it (and the path's bookkeeping in it) is out of reach of anything a filter does to the
 * view: assignments and new properties stay on the view, its getters only read. One view per I/O,
 * shared by the layers (a filter sees the same `io` in `start` and `done`); `data` is the payload
 * the layer reading it sees (a replaced payload below the layer that replaced it).
 */
export class IoView implements Io {
  readonly #req: IoRequest
  constructor(req: IoRequest) {
    this.#req = req
  }
  get id(): number { return this.#req._id }
  get op(): IoOp { return this.#req._op }
  get offset(): number { return this.#req._offset }
  get length(): number { return this.#req._length }
  get data(): Uint8Array | null { return this.#req._data }
  get origin(): number { return this.#req._origin }
  toJSON(): object {
    return this.#req.toJSON()
  }
}

function viewOf(req: IoRequest): IoView {
  let v = req._view
  if (v === null) req._view = v = new IoView(req)
  return v
}

/** A decision for a fault message: bounded, and whatever its getters or toJSON do. */
function describeDecision(d: unknown): string {
  let s: string
  try {
    s = JSON.stringify(d) ?? String(d)
  } catch {
    s = `a ${typeof d} that JSON.stringify refused`
  }
  return s.length > 200 ? `${s.slice(0, 200)}…` : s
}

export interface DiskPathOptions {
  readonly disk: string
  readonly capacity: number
  readonly ioTimeoutMs: number
  readonly onFault: (f: FaultRecord) => void
}

function errName(e: unknown): string {
  // what a filter threw is its own object: its name, message or toString may throw in turn
  try {
    if (e instanceof Error) return `${e.name}: ${e.message}`
    return String(e)
  } catch {
    return `a ${typeof e} that could not be described`
  }
}

/** The I/O path of one open disk. */
export class DiskPath {
  private _layers: Layer[] = []
  /** True when some layer has a `done` handler (else completions skip the walk up). */
  private anyDone = false
  /** `start` of every layer, top down, for a guest I/O (see compileDown); null: no layer has `start`. */
  private fastDown: FastDown | null = null
  /** Where fastDown leaves the decision (or the exception) of the layer it stopped at. */
  private readonly fastOut: FastOut = { value: undefined }
  private nextId = 1
  private head: IoRequest | null = null
  private tail: IoRequest | null = null
  private inflightCount = 0
  private holds = 0
  private pending: IoRequest[] = []
  private idleWaiters: (() => void)[] = []
  private sweeper: ReturnType<typeof setInterval> | null = null
  private ticks = 0
  private readonly sweepMs: number
  readonly disk: string
  readonly capacity: number
  readonly ioTimeoutMs: number
  private readonly onFault: (f: FaultRecord) => void
  private readonly driveDone = (req: DriveRequest, error: IoError | null): void => {
    const r = req as IoRequest
    if (r._state !== ACTIVE) return
    this.up(r, this._layers.length - 1, error === null ? OK : failOutcome(error))
  }

  constructor(readonly drive: Drive, opts: DiskPathOptions) {
    this.disk = opts.disk
    this.capacity = opts.capacity
    this.ioTimeoutMs = opts.ioTimeoutMs
    this.onFault = opts.onFault
    this.sweepMs = Math.max(5, Math.min(250, this.ioTimeoutMs / 4))
  }

  /** The filters in chain order (top first). */
  get layers(): readonly Layer[] {
    return this._layers
  }
  set layers(layers: readonly Layer[]) {
    this._layers = layers.slice()
    this.relayered()
  }
  /** Replaces one layer (a filter opened, closed or reopened in place). */
  setLayer(i: number, L: Layer): void {
    this._layers[i] = L
    this.relayered()
  }

  private relayered(): void {
    this.anyDone = this._layers.some(l => l.done !== null)
    this.fastDown = compileDown(this._layers, this.fastOut)
  }

  /** Requests in flight (guest and filter-issued), not counting held ones. */
  get inflight(): number {
    return this.inflightCount
  }

  /** Validates and submits a guest I/O; a bad request fails with EINVAL before any filter sees it. */
  submitGuest(op: IoOp, offset: number, length: number, data: Uint8Array | null, cb: Completion, tag: number): void {
    const req = new IoRequest(this.nextId++, op, offset, length, data, 0, cb, tag)
    if (!this.valid(op, offset, length, data)) {
      req._state = FINISHED
      cb(req, 'EINVAL')
      return
    }
    if (this.holds > 0) {
      this.pending.push(req)
      return
    }
    this.begin(req)
  }

  private valid(op: IoOp, offset: number, length: number, data: Uint8Array | null): boolean {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) return false
    if (op === 'flush') return length === 0 && data === null
    if (offset % 512 !== 0 || length % 512 !== 0 || length === 0 || offset + length > this.capacity) return false
    if (op === 'unmap') return data === null
    if (op === 'read' || op === 'write') return data instanceof Uint8Array && data.length === length
    return false
  }

  private begin(req: IoRequest): void {
    // a coarse clock (the sweep count) is enough for timeouts and costs no clock read per I/O
    req._t0 = this.ticks
    // intrusive in-flight list: no per-I/O allocation
    req._prev = this.tail
    if (this.tail !== null) this.tail._next = req
    else this.head = req
    this.tail = req
    if (++this.inflightCount === 1 && this.sweeper === null) this.startSweeper()
    this.down(req)
  }

  private unlink(req: IoRequest): void {
    if (req._prev !== null) req._prev._next = req._next
    else this.head = req._next
    if (req._next !== null) req._next._prev = req._prev
    else this.tail = req._prev
    req._prev = req._next = null
    if (--this.inflightCount === 0 && this.idleWaiters.length > 0) {
      const w = this.idleWaiters
      this.idleWaiters = []
      for (const f of w) f()
    }
  }

  private startSweeper(): void {
    this.sweeper = setInterval(this.sweep, this.sweepMs)
  }

  private readonly sweep = (): void => {
    if (this.inflightCount === 0) {
      if (this.sweeper !== null) clearInterval(this.sweeper)
      this.sweeper = null
      return
    }
    // an I/O begun at tick t has been in flight at least (ticks - t - 1) sweep periods
    this.ticks++
    const limit = Math.ceil(this.ioTimeoutMs / this.sweepMs) + 1
    let r = this.head
    while (r !== null) {
      const next = r._next
      if (this.ticks - r._t0 >= limit) this.timeout(r)
      r = next
    }
  }

  private timeout(req: IoRequest): void {
    req._state = TIMED_OUT
    const lvl = req._level
    const holder = lvl < this.layers.length ? this.layers[lvl]!.filterId : 'disk'
    this.unlink(req)
    this.onFault({ at: Date.now(), disk: this.disk, filter: holder, kind: 'timeout', io: req.toJSON() as FaultRecord['io'], error: 'ETIMEDOUT', message: `I/O not completed within ${this.ioTimeoutMs} ms (held at ${holder})` })
    req._cb(req, 'ETIMEDOUT')
  }

  private fault(req: IoRequest, layer: number, kind: FaultRecord['kind'], message: string, error: IoError | null): void {
    // a late settlement may arrive after the layers changed: the fault is still recorded
    const filter = this._layers[layer]?.filterId ?? 'unknown'
    this.onFault({ at: Date.now(), disk: this.disk, filter, kind, io: req.toJSON() as FaultRecord['io'], error, message })
  }

  /** Runs `start` from the request's level down; hands it to the drive when every filter passed. */
  private down(req: IoRequest): void {
    const layers = this._layers
    const n = layers.length
    let i = req._level
    if (i === 0 && this.fastDown !== null) {
      // a guest I/O: the chain's compiled walk runs every plain PASS and stops at anything else
      const k = this.fastDown(viewOf(req))
      if (k < n) {
        const out = this.fastOut.value
        this.fastOut.value = undefined
        if (k < 0) {
          this.threw(req, -1 - k, out)
          return
        }
        if (!this.decided(req, k, out as Decision | Promise<Decision>)) return
        i = k + 1
      } else i = n
    }
    for (; i < n; i++) {
      const L = layers[i]!
      const start = L.start
      if (start === null) continue
      let d: Decision | Promise<Decision>
      try {
        d = start.call(L.inst, viewOf(req))
        // the hot path: a plain PASS (no payload) goes straight on to the next layer
        if (d !== null && typeof d === 'object' && (d as Decision).kind === 'pass' && (d as { data?: unknown }).data === undefined) continue
      } catch (e) {
        this.threw(req, i, e)
        return
      }
      if (!this.decided(req, i, d)) return
    }
    req._level = n
    this.drive.submit(req, this.driveDone)
  }

  private threw(req: IoRequest, i: number, e: unknown, what = 'start() threw'): void {
    req._level = i
    this.fault(req, i, 'throw', `${what} ${errName(e)}`, 'EIO')
    this.up(req, i - 1, failOutcome('EIO'))
  }

  /** Acts on what `start` of layer i returned (but a plain PASS); true when the I/O goes on down now. */
  private decided(req: IoRequest, i: number, d: Decision | Promise<Decision>): boolean {
    let then: unknown
    if (d !== null && typeof d === 'object') {
      try {
        then = (d as { then?: unknown }).then
      } catch (e) {
        this.threw(req, i, e, "reading start()'s result threw")
        return false
      }
    }
    if (typeof then !== 'function') return this.decide(req, i, d as Decision)
    req._level = i
    this.settle(req, i, 'start', d, then as Then,
      dec => {
        if (this.decide(req, i, dec as Decision)) {
          req._level = i + 1
          this.down(req)
        }
      },
      (e, threw) => {
        this.fault(req, i, threw ? 'throw' : 'reject', threw ? `then() of start()'s result threw ${errName(e)}` : `start() rejected: ${errName(e)}`, 'EIO')
        this.up(req, i - 1, failOutcome('EIO'))
      })
    return false
  }

  /**
   * Waits for a handler's Promise (or any thenable) from layer i. Each outcome is taken once: a
   * result that settles a second time (a thenable calling back twice, or both ways) is the
   * filter's fault, recorded as `double-completion`, and changes nothing — the I/O goes on, or has
   * completed, as its first settlement decided. A settlement after the I/O was timed out is
   * ignored. `then` throwing before it settles counts as a rejection; after, it is ignored.
   */
  private settle(req: IoRequest, i: number, handler: 'start' | 'done', p: object, then: Then, ok: (v: unknown) => void, bad: (e: unknown, threw: boolean) => void): void {
    let settled = false
    const first = (): boolean => {
      if (settled) {
        this.fault(req, i, 'double-completion', `${handler}() settled its result more than once; only the first settlement counts`, null)
        return false
      }
      settled = true
      return req._state === ACTIVE
    }
    try {
      then.call(
        p,
        (v: unknown) => { if (first()) ok(v) },
        (e: unknown) => { if (first()) bad(e, false) },
      )
    } catch (e) {
      if (settled) return
      settled = true
      if (req._state === ACTIVE) bad(e, true)
    }
  }

  /** Applies a decision of layer i; true when the I/O goes on down. */
  private decide(req: IoRequest, i: number, d: Decision): boolean {
    // read once, in a try: a decision is the filter's object, its properties may be getters
    let kind: unknown, data: unknown, e: unknown
    try {
      kind = d === null || typeof d !== 'object' ? undefined : d.kind
      if (kind === 'pass') data = (d as { data?: unknown }).data
      else if (kind === 'fail') e = (d as { error?: unknown }).error
    } catch (x) {
      this.threw(req, i, x, "reading start()'s decision threw")
      return false
    }
    if (kind === 'pass') {
      if (data === undefined) return true
      const L = this._layers[i]!
      if (req._op !== 'write' || !L.transforming) {
        this.fault(req, i, 'violation', `${L.cls} filter replaced the payload of a ${req._op}: only encryption and compression filters may replace a write's payload`, 'EIO')
        this.up(req, i - 1, failOutcome('EIO'))
        return false
      }
      if (!(data instanceof Uint8Array) || data.length !== req._length) {
        this.fault(req, i, 'violation', `replacement payload must be a Uint8Array of ${req._length} bytes`, 'EIO')
        this.up(req, i - 1, failOutcome('EIO'))
        return false
      }
      ;(req._repl ??= []).push(i, req._data)
      req._data = data
      return true
    }
    if (kind === 'complete') {
      this.up(req, i - 1, OK)
      return false
    }
    if (kind === 'fail') {
      if (IO_ERRORS.has(e as string)) this.up(req, i - 1, failOutcome(e as IoError))
      else {
        const what = e !== null && (typeof e === 'object' || typeof e === 'function') ? `of type ${typeof e}` : String(e).slice(0, 100)
        this.fault(req, i, 'invalid-decision', `fail() with unknown error ${what}`, 'EIO')
        this.up(req, i - 1, failOutcome('EIO'))
      }
      return false
    }
    this.fault(req, i, 'invalid-decision', `start() returned ${describeDecision(d)}, not a Decision`, 'EIO')
    this.up(req, i - 1, failOutcome('EIO'))
    return false
  }

  /** Runs `done` from layer `from` up to the top, then completes the request. */
  private up(req: IoRequest, from: number, outcome: Outcome): void {
    const layers = this._layers
    const top = req._origin // a filter's own I/O completes back only through the layers below it
    // no done handler and no payload to restore: nothing to run on the way up
    const first = this.anyDone || req._repl !== null ? from : top - 1
    for (let i = first; i >= top; i--) {
      const repl = req._repl
      if (repl !== null && repl.length > 0 && repl[repl.length - 2] === i) {
        // the layer that replaced the payload, and those above it, see the payload they passed down
        req._data = repl.pop() as Uint8Array | null
        repl.pop()
      }
      const L = layers[i]!
      const done = L.done
      if (done === null) continue
      let r: void | Promise<void>
      let then: unknown
      try {
        r = done.call(L.inst, viewOf(req), outcome)
        if (r !== undefined && r !== null) then = (r as { then?: unknown }).then
      } catch (e) {
        this.fault(req, i, 'throw', `done() threw ${errName(e)}`, 'EIO')
        outcome = failOutcome('EIO')
        continue
      }
      if (typeof then === 'function') {
        req._level = i
        const o = outcome
        this.settle(req, i, 'done', r as object, then as Then,
          () => this.up(req, i - 1, o),
          (e, threw) => {
            this.fault(req, i, threw ? 'throw' : 'reject', threw ? `then() of done()'s result threw ${errName(e)}` : `done() rejected: ${errName(e)}`, 'EIO')
            this.up(req, i - 1, failOutcome('EIO'))
          })
        return
      }
    }
    req._state = FINISHED
    this.unlink(req)
    req._cb(req, outcome.ok ? null : outcome.error)
  }

  /** Holds new guest I/O (open, close, stun): it waits, untimed, until release(). */
  hold(): void {
    this.holds++
  }

  release(): void {
    if (this.holds > 0 && --this.holds === 0) {
      const p = this.pending
      this.pending = []
      for (const r of p) this.begin(r)
    }
  }

  /** Resolves when no I/O is in flight. */
  idle(): Promise<void> {
    if (this.inflightCount === 0) return Promise.resolve()
    return new Promise(res => this.idleWaiters.push(res))
  }

  /** The LowerDisk given to the filter at layer `layer`: its own I/O to the layers below it. */
  lowerFor(layer: number): LowerDisk {
    const submit = (op: IoOp, offset: number, length: number, data: Uint8Array | null): Promise<Uint8Array | null> =>
      new Promise((resolve, reject) => {
        const req = new IoRequest(this.nextId++, op, offset, length, data, layer + 1, (r, err) => {
          if (err === null) resolve(r._data)
          else reject(Object.assign(new Error(`${err}: lower ${op} at offset ${offset} failed`), { code: err }))
        }, 0)
        if (!this.valid(op, offset, length, data)) {
          reject(Object.assign(new Error(`EINVAL: lower ${op} offset=${offset} length=${length} is not 512-byte aligned inside the disk`), { code: 'EINVAL' }))
          return
        }
        req._level = layer + 1
        this.begin(req)
      })
    return {
      read: async (offset, length) => (await submit('read', offset, length, new Uint8Array(length)))!,
      write: async (offset, data) => {
        if (!(data instanceof Uint8Array)) throw Object.assign(new Error('EINVAL: lower.write needs a Uint8Array'), { code: 'EINVAL' })
        await submit('write', offset, data.length, data)
      },
      flush: async () => {
        await submit('flush', 0, 0, null)
      },
    }
  }

  /** Fails every in-flight and held request (the path is going away). */
  abortAll(error: IoError): void {
    const held = this.pending
    this.pending = []
    for (const r of held) {
      r._state = FINISHED
      r._cb(r, error)
    }
    let r = this.head
    while (r !== null) {
      const next = r._next
      r._state = FINISHED
      this.unlink(r)
      r._cb(r, error)
      r = next
    }
  }

  stop(): void {
    if (this.sweeper !== null) clearInterval(this.sweeper)
    this.sweeper = null
  }
}
