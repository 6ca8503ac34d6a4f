/**
 * A disk's ordered queue to its recovery site, in the host's daemon: the writes its instance
 * posted, shipped in order with a window of site writes outstanding (queued writes that touch are
 * joined, several in flight), retried with backoff while the site fails, dropped past its share
 * of the host's backlog (the instance then copies its regions again), and the waits an instance
 * makes on it (drain, room, watch).
 */
import type { DaemonContext, ReplicaTarget } from 'iofcert/sdk'
import { BACKOFF_MAX_MS, BACKOFF_MIN_MS, ENTRY_COST, HOST_BACKLOG, LOW_WATER, MAX_JOIN, PIPELINE_BYTES, PIPELINE_WRITES, QUEUE_CAP, ROOM_WAIT_MS, STOP_SETTLE_MS } from './constants.js'
import { errText } from './messages.js'

let zeroBuf: Uint8Array | null = null

/**
 * Zeros of one whole site write, shared by every such write of zeros the daemon ships (the chunks
 * of zeros of a first copy): one buffer, not one a chunk. The site takes a copy; nothing writes it.
 */
function zeros(): Uint8Array {
  zeroBuf ??= new Uint8Array(MAX_JOIN)
  return zeroBuf
}

/**
 * The backlog of every disk of the host, bounded as a whole: HOST_BACKLOG, shared among the
 * disks. A disk may fill what the others leave (up to QUEUE_CAP); once the host's backlog is over
 * its bound, a disk over its share is dropped (and copied again from its regions), so a host of
 * busy disks holds at most about HOST_BACKLOG in the daemon whatever their number.
 */
export class Backlog {
  bytes = 0
  constructor(private readonly disks: () => number) {}
  /** A disk's share of the host's backlog. */
  share(): number {
    return Math.min(QUEUE_CAP, HOST_BACKLOG / Math.max(1, this.disks()))
  }
  /** Whether a disk holding `bytes` is over what it may hold. */
  over(bytes: number): boolean {
    return bytes > QUEUE_CAP || (this.bytes > HOST_BACKLOG && bytes > this.share())
  }
  /** Below this a disk's backlog has room for guest writes and chunk copies: LOW_WATER, or a quarter of its share when that is less. */
  lowWater(): number {
    return Math.min(LOW_WATER, this.share() / 4)
  }
}

/** A queued write: bytes, or zeros (an unmap) when `data` is null. */
export interface Entry {
  offset: number
  length: number
  data: Uint8Array | null
}

interface Waiter {
  seq: number
  resolve: (v: unknown) => void
  reject: (e: Error) => void
  timer: ReturnType<typeof setTimeout> | null
}

/** One disk's ordered queue to its site: one window of site writes outstanding at a time. */
export class Pump {
  private queue: Entry[] = []
  private head = 0
  /** Bytes held by the queue (plus bookkeeping), counted in the host's backlog too. */
  bytes = 0
  /** Entries ever queued / shipped (or dropped): a drain waits until shipped reaches its mark. */
  private queuedSeq = 0
  private shippedSeq = 0
  /** Bumped whenever the queue is dropped, so a site write that settles later leaves the new one alone. */
  private gen = 0
  /** Bumped when a backlog is dropped for size: the instance copies its regions again. */
  epoch = 0
  /** Dropping posts until the instance says its resync begins. */
  private overflowed = false
  private busy: Promise<void> | null = null
  private backoff: ReturnType<typeof setTimeout> | null = null
  private failures = 0
  private lastError = ''
  private drains: Waiter[] = []
  private rooms: Waiter[] = []
  /** Guest writes waiting for room: answered at once when the site fails. */
  private writeRooms: Waiter[] = []
  private watcher: ((v: unknown) => void) | null = null
  private stopped = false
  /** The instance that opened the disk last: the only one whose writes are taken. */
  owner = -1

  constructor(
    readonly disk: string,
    public site: string,
    private readonly target: (site: string) => Promise<ReplicaTarget>,
    private readonly log: DaemonContext['log'],
    private readonly host: Backlog,
  ) {}

  private count(delta: number): void {
    this.bytes += delta
    this.host.bytes += delta
  }

  get idle(): boolean {
    return this.head === this.queue.length && this.busy === null
  }

  /** A new instance opened the disk: whatever a previous one left queued still goes first. */
  reopen(owner: number, site: string): void {
    this.owner = owner
    this.site = site
    this.overflowed = false
  }

  push(e: Entry): void {
    if (this.overflowed || this.stopped) return
    this.queue.push(e)
    this.queuedSeq++
    this.count((e.data === null ? 0 : e.length) + ENTRY_COST)
    if (this.host.over(this.bytes)) {
      this.overflow()
      return
    }
    this.kick()
  }

  /** Queues zeros for an unmapped range, in pieces no larger than one site write. */
  pushZero(offset: number, length: number): void {
    for (let at = 0; at < length; at += MAX_JOIN) this.push({ offset: offset + at, length: Math.min(MAX_JOIN, length - at), data: null })
  }

  resync(): void {
    this.overflowed = false
  }

  private overflow(): void {
    this.log.warn('replication backlog over its cap: dropped; the disk will be copied again', { disk: this.disk, bytes: this.bytes, hostBytes: this.host.bytes })
    this.drop(new Error(`EOVERFLOW: the backlog of ${this.disk} was dropped; a resync follows`))
    this.overflowed = true
    this.epoch++
    this.answerWatch({ epoch: this.epoch })
  }

  /** Empties the queue; drains waiting on it fail, since what they waited for will not arrive. */
  private drop(why: Error): void {
    this.queue = []
    this.head = 0
    this.count(-this.bytes)
    this.shippedSeq = this.queuedSeq
    this.gen++
    for (const d of this.drains.splice(0)) this.settle(d, why)
    this.answerRooms()
  }

  private kick(): void {
    if (this.busy !== null || this.backoff !== null || this.stopped || this.head === this.queue.length) return
    this.busy = this.ship().finally(() => {
      this.busy = null
      this.kick()
    })
  }

  /**
   * Ships the head of the queue: up to PIPELINE_WRITES site writes (PIPELINE_BYTES) called at
   * once, each joining queued writes that touch. The target never applies a write after an earlier
   * one failed that the pump had not seen fail (see ReplicaTarget), so however many are in flight
   * the site holds a prefix of the queue: the writes before the first failure.
   */
  private async ship(): Promise<void> {
    const gen = this.gen
    const groups: { data: Uint8Array; offset: number; n: number }[] = []
    let at = this.head
    let bytes = 0
    while (at < this.queue.length && groups.length < PIPELINE_WRITES && bytes < PIPELINE_BYTES) {
      const g = this.join(at)
      groups.push(g)
      at += g.n
      bytes += g.data.length
    }
    let done = 0
    let error: unknown = null
    try {
      const t = await this.target(this.site)
      // a queue dropped meanwhile is not shipped
      if (gen !== this.gen || this.stopped) return
      const results = await Promise.allSettled(groups.map(g => t.write(this.disk, g.offset, g.data)))
      while (done < results.length && results[done]!.status === 'fulfilled') done++
      if (done < results.length) error = (results[done] as PromiseRejectedResult).reason
    } catch (e) {
      error = e
    }
    if (gen !== this.gen || this.stopped) return
    let n = 0
    for (let i = 0; i < done; i++) n += groups[i]!.n
    if (n > 0) this.shipped(n)
    if (error !== null) {
      this.failures++
      this.lastError = errText(error)
      if (this.failures === 1 || this.failures % 100 === 0) this.log.warn('site write failed; retrying', { disk: this.disk, failures: this.failures, error: this.lastError })
      // a drain answers promptly that the site is not taking writes, rather than at its timeout
      for (const d of this.drains.splice(0)) this.settle(d, new Error(`ENODEV: the site is not taking writes for ${this.disk}: ${this.lastError}`))
      // and guest writes do not wait on it (the backlog grows to its cap, as in an outage)
      this.answer(this.writeRooms.splice(0))
      const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(16, this.failures - 1))
      this.backoff = setTimeout(() => {
        this.backoff = null
        this.kick()
      }, delay)
      return
    }
    if (this.failures > 0) this.log.info('site writes resumed', { disk: this.disk, after: this.failures })
    this.failures = 0
  }

  /** The site write starting at queue index `at`: that write joined with the ones after it that touch it. */
  private join(at: number): { data: Uint8Array; offset: number; n: number } {
    const first = this.queue[at]!
    let lo = first.offset
    let hi = first.offset + first.length
    let n = 1
    while (at + n < this.queue.length) {
      const e = this.queue[at + n]!
      const a = Math.min(lo, e.offset)
      const z = Math.max(hi, e.offset + e.length)
      // only a contiguous union, applied in queue order, keeps what the site sees a prefix
      if (e.offset > hi || e.offset + e.length < lo || z - a > MAX_JOIN) break
      lo = a
      hi = z
      n++
    }
    if (n === 1 && first.data !== null) return { data: first.data, offset: lo, n }
    if (n === 1 && first.length === MAX_JOIN) return { data: zeros(), offset: lo, n }
    const data = new Uint8Array(hi - lo)
    for (let i = 0; i < n; i++) {
      const e = this.queue[at + i]!
      if (e.data !== null) data.set(e.data, e.offset - lo)
      else data.fill(0, e.offset - lo, e.offset - lo + e.length)
    }
    return { data, offset: lo, n }
  }

  /** The first `n` queued writes reached the site. */
  private shipped(n: number): void {
    for (let i = 0; i < n; i++) {
      const e = this.queue[this.head]!
      this.count(-((e.data === null ? 0 : e.length) + ENTRY_COST))
      this.queue[this.head++] = undefined as unknown as Entry
    }
    this.shippedSeq += n
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head)
      this.head = 0
    }
    if (this.drains.length > 0) {
      const waiting = this.drains
      this.drains = []
      for (const d of waiting) {
        if (d.seq <= this.shippedSeq) this.settle(d, null)
        else this.drains.push(d)
      }
    }
    if (this.bytes < this.host.lowWater()) this.answerRooms()
  }

  /** Resolves once everything queued before it reached the site; fails fast while the site fails. */
  drain(timeoutMs: number): Promise<unknown> {
    if (this.overflowed) return Promise.reject(new Error(`EOVERFLOW: the backlog of ${this.disk} was dropped; a resync is due`))
    if (this.shippedSeq >= this.queuedSeq) return Promise.resolve(true)
    if (this.failures > 0) return Promise.reject(new Error(`ENODEV: the site is not taking writes for ${this.disk}: ${this.lastError}`))
    return new Promise((resolve, reject) => {
      const w: Waiter = { seq: this.queuedSeq, resolve, reject, timer: null }
      w.timer = setTimeout(() => {
        w.timer = null
        this.drains = this.drains.filter(x => x !== w)
        reject(new Error(`ETIMEDOUT: ${this.disk}'s backlog did not drain within ${timeoutMs} ms`))
      }, Math.max(1, Math.min(timeoutMs, 60_000)))
      this.drains.push(w)
    })
  }

  /** Resolves true when a chunk copy may add to the backlog, false after ROOM_WAIT_MS. */
  room(wait: boolean, writes: boolean): Promise<unknown> {
    if (this.bytes < this.host.lowWater() || this.stopped) return Promise.resolve(!this.stopped)
    // guest writes never wait on a site that is not taking writes
    if (writes && this.failures > 0) return Promise.resolve(true)
    if (!wait) return Promise.resolve(false)
    return new Promise((resolve, reject) => {
      const w: Waiter = { seq: 0, resolve, reject, timer: null }
      w.timer = setTimeout(() => {
        w.timer = null
        if (writes) this.writeRooms = this.writeRooms.filter(x => x !== w)
        else this.rooms = this.rooms.filter(x => x !== w)
        resolve(false)
      }, ROOM_WAIT_MS)
      ;(writes ? this.writeRooms : this.rooms).push(w)
    })
  }

  private answerRooms(): void {
    this.answer(this.rooms.splice(0))
    this.answer(this.writeRooms.splice(0))
  }

  private answer(waiters: readonly Waiter[]): void {
    for (const w of waiters) {
      if (w.timer !== null) clearTimeout(w.timer)
      w.resolve(!this.stopped)
    }
  }

  /** Long poll: answers when the epoch moves past `seen`, or when unwatched. */
  watch(seen: number): Promise<unknown> {
    if (this.epoch > seen) return Promise.resolve({ epoch: this.epoch })
    this.answerWatch({ closed: true })
    return new Promise(resolve => { this.watcher = resolve })
  }

  answerWatch(v: unknown): void {
    const w = this.watcher
    this.watcher = null
    w?.(v)
  }

  /** Drops the queue for good (the instance closed without a drain) once no site write is outstanding. */
  async forget(): Promise<void> {
    this.drop(new Error(`ENODEV: the backlog of ${this.disk} was dropped at close`))
    this.stop()
    await this.settled(STOP_SETTLE_MS)
  }

  /** Waits (bounded) for an outstanding site write to settle. */
  async settled(ms: number): Promise<void> {
    if (this.busy === null) return
    let t: ReturnType<typeof setTimeout> | undefined
    await Promise.race([this.busy, new Promise<void>(res => { t = setTimeout(res, ms) })])
    clearTimeout(t)
  }

  stop(): void {
    this.stopped = true
    if (this.backoff !== null) clearTimeout(this.backoff)
    this.backoff = null
    for (const d of this.drains.splice(0)) this.settle(d, new Error('ENODEV: the daemon is stopping'))
    this.answerRooms()
    this.answerWatch({ closed: true })
  }

  private settle(w: Waiter, error: Error | null): void {
    if (w.timer !== null) clearTimeout(w.timer)
    w.timer = null
    if (error === null) w.resolve(true)
    else w.reject(error)
  }
}
