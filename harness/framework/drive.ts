/**
 * A virtual drive in the VM worker: the block store, a bounded volatile write cache (a completed
 * write is durable only after a later flush, or when the cache writes it back because it is full;
 * see journal.ts for how a power cut is replayed), optional command queueing (seeded reordering and
 * completion delays) and injected faults.
 */
import type { IoError, IoOp } from '../sdk/index.js'
import { crashArmed, crashPoint } from './persist.js'
import { FileStore, type BlockStore } from './store.js'
import { Rng } from './rng.js'
import type { Journal } from './journal.js'

/** What a drive needs of a request. `origin` 0 is the guest; n > 0 is the filter at layer n-1. */
export interface DriveRequest {
  readonly op: IoOp
  readonly offset: number
  readonly length: number
  readonly data: Uint8Array | null
  readonly origin: number
}

/** Called exactly once per submitted request, synchronously or later. */
export type DriveCallback = (req: DriveRequest, error: IoError | null) => void

/** An injected fault: matching requests fail, slow down, or tear. */
export interface DriveFault {
  /** Which operations it hits (default: all). */
  readonly ops?: readonly IoOp[]
  readonly error?: IoError
  /** Delay before the request is carried out. */
  readonly delayMs?: number
  /** A write applies its first half of sectors, then fails with `error` (default EIO). */
  readonly torn?: boolean
  /** Chance per matching request (seeded), default 1. */
  readonly probability?: number
  /** How many requests it hits before it clears itself (default unlimited). */
  readonly count?: number
}

export interface DriveOptions {
  readonly capacity: number
  /** Command queueing: concurrent requests carried out in seeded random order, completions delayed. */
  readonly reorder: { readonly seed: number; readonly maxDelayMs: number } | null
}


/** Counters a check can read back. */
export interface DriveStats {
  reads: number
  writes: number
  flushes: number
  unmaps: number
  /** Requests from filters (origin > 0) that arrived while the drive was stunned. */
  stunnedFilterIo: { op: IoOp; offset: number; length: number; origin: number; at: number }[]
}

export class Drive {
  private readonly rng: Rng | null
  private readonly maxDelayMs: number
  private queue: { req: DriveRequest; cb: DriveCallback }[] = []
  private drainScheduled = false
  private fault: (DriveFault & { left: number }) | null = null
  private faultRng = new Rng(0x5eed)
  /** While true, filter I/O arriving here is recorded as a violation. */
  stunned = false
  readonly stats: DriveStats = { reads: 0, writes: 0, flushes: 0, unmaps: 0, stunnedFilterIo: [] }

  private readonly readPre = (offset: number, into: Uint8Array): void => this.store.read(offset, into)
  private readonly isHole: ((offset: number, length: number) => boolean) | undefined
  /** A crash test runs and the image is a file: its writes and syncs are crash points (see persist.ts). */
  private readonly crashes: boolean

  /** `journal` null makes the drive write-through (no volatile cache). */
  constructor(readonly store: BlockStore, private readonly journal: Journal | null, readonly opts: DriveOptions) {
    this.isHole = store.isHole?.bind(store)
    this.crashes = crashArmed && store instanceof FileStore
    this.rng = opts.reorder ? new Rng(opts.reorder.seed) : null
    this.maxDelayMs = opts.reorder?.maxDelayMs ?? 0
  }

  setFault(f: DriveFault | null, seed = 1): void {
    this.fault = f ? { ...f, left: f.count ?? Infinity } : null
    this.faultRng = new Rng(seed)
  }

  submit(req: DriveRequest, cb: DriveCallback): void {
    if (this.stunned && req.origin > 0) {
      const s = this.stats.stunnedFilterIo
      if (s.length < 100) s.push({ op: req.op, offset: req.offset, length: req.length, origin: req.origin, at: Date.now() })
    }
    const f = this.fault
    if (f !== null && (f.ops === undefined || f.ops.includes(req.op)) && (f.probability === undefined || this.faultRng.float() < f.probability)) {
      if (--f.left <= 0) this.fault = null
      this.faulted(req, cb, f)
      return
    }
    if (this.rng === null) {
      this.execute(req)
      cb(req, null)
      return
    }
    this.queue.push({ req, cb })
    if (!this.drainScheduled) {
      this.drainScheduled = true
      setImmediate(this.drain)
    }
  }

  private faulted(req: DriveRequest, cb: DriveCallback, f: DriveFault): void {
    const act = () => {
      if (f.torn && req.op === 'write' && req.data !== null) {
        const half = Math.floor(req.length / 1024) * 512
        if (half > 0) this.write(req.offset, req.data.subarray(0, half))
        cb(req, f.error ?? 'EIO')
        return
      }
      if (f.error !== undefined) {
        cb(req, f.error)
        return
      }
      this.execute(req)
      cb(req, null)
    }
    if (f.delayMs !== undefined && f.delayMs > 0) setTimeout(act, f.delayMs)
    else act()
  }

  private readonly drain = (): void => {
    this.drainScheduled = false
    const batch = this.queue
    this.queue = []
    const rng = this.rng!
    rng.shuffle(batch)
    for (const item of batch) {
      this.execute(item.req)
      const delay = rng.int(this.maxDelayMs + 1)
      if (delay === 0) setImmediate(item.cb, item.req, null)
      else setTimeout(item.cb, delay, item.req, null)
    }
  }

  /** Carries out a request against the cache and the store. */
  execute(req: DriveRequest): void {
    switch (req.op) {
      case 'read':
        this.stats.reads++
        this.read(req.offset, req.data!)
        break
      case 'write':
        this.stats.writes++
        this.write(req.offset, req.data!)
        break
      case 'flush':
        this.stats.flushes++
        this.flushAll()
        break
      case 'unmap':
        this.stats.unmaps++
        this.unmap(req.offset, req.length)
        break
    }
  }

  read(offset: number, into: Uint8Array): void {
    this.store.read(offset, into)
  }

  write(offset: number, src: Uint8Array): void {
    if (this.journal !== null && !this.journal.record(offset, src.length, this.readPre, this.isHole)) this.journal.reset()
    if (this.crashes) crashPoint(`write image ${offset}+${src.length}`)
    this.store.write(offset, src)
  }

  /** Makes every completed write durable. */
  flushAll(): void {
    if (this.crashes) crashPoint('fsync image')
    this.store.sync()
    this.journal?.reset()
  }

  unmap(offset: number, length: number): void {
    if (this.journal !== null && !this.journal.record(offset, length, this.readPre, this.isHole)) this.journal.reset()
    if (this.crashes) crashPoint(`zero image ${offset}+${length}`)
    this.store.zero(offset, length)
  }

  /** Bytes written but not yet durable. */
  get dirtyBytes(): number {
    return (this.journal?.pendingSectors ?? 0) * 512
  }

  close(): void {
    this.store.close()
    this.journal?.medium.close()
  }
}
