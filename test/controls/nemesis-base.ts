/**
 * The replication filter the nemesis controls are made of: a sound, small CDP filter, with one
 * fault switched on by each control.
 *
 * Each completed write (or unmap) is posted to the host's daemon, which keeps one queue per disk
 * and ships it to the site in order, one site write at a time (adjacent writes joined), retrying
 * with backoff while the site is down. The sidecar holds one byte: 1 while the disk is open, 0
 * once a close has seen the daemon ship everything. An open that finds 1 (the last instance ended
 * without such a close: a crash, or a close while the site was down) copies the whole disk to the
 * site before the guest's I/O starts, chunks of zeros as zeros; so does a first open (no sidecar),
 * the site possibly holding a replica from an earlier protection. A close whose drain fails asks the daemon to
 * forget the disk's backlog, so nothing stale of it reaches the site after the next open's copy.
 * The daemon's stop() ships what is queued while it can (a clean host restart loses nothing).
 */
import type { CloseReason, Daemon, DaemonContext, DiskContext, FilterInstance, FilterModule, Io, Outcome, ReplicaTarget } from '../../harness/sdk/index.js'

/** The fault a control switches on. */
export interface ShipperFault {
  /** Close marks the replica complete at once, without waiting for the daemon to ship the queue. */
  readonly completeAtClose?: boolean
  /**
   * A close while the site is down leaves the backlog to the daemon — which keeps it in memory
   * until the site returns — and marks the replica complete.
   */
  readonly custodyAtClose?: boolean
  /** The daemon ships a disk's queue every this many ms instead of at once. */
  readonly batchMs?: number
}

const MiB = 1 << 20
const CLEAN = 0
const DIRTY = 1
const BACKOFF_MIN_MS = 20
const BACKOFF_MAX_MS = 400
const DRAIN_MS = 20_000
const STOP_SHIP_MS = 3000
const MAX_JOIN = MiB

type ToDaemon =
  | { t: 'open'; site: string }
  | { t: 'w'; offset: number; buf: ArrayBuffer }
  | { t: 'z'; offset: number; length: number }
  | { t: 'drain'; timeoutMs: number }
  | { t: 'forget' }

interface Entry {
  readonly offset: number
  readonly length: number
  /** null: zeros. */
  readonly data: Uint8Array | null
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e)
}

function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false
  return true
}

/** One disk's queue to its site. */
class Queue {
  private entries: Entry[] = []
  private queued = 0
  private shipped = 0
  private busy = false
  private failing = ''
  /** Bumped when the backlog is forgotten. */
  private gen = 0
  private timer: ReturnType<typeof setTimeout> | null = null
  private waiters: { seq: number; resolve: () => void; reject: (e: Error) => void; timer: ReturnType<typeof setTimeout> }[] = []
  stopped = false

  constructor(readonly disk: string, public site: string, private readonly target: (site: string) => Promise<ReplicaTarget>, private readonly batchMs: number) {}

  push(e: Entry): void {
    if (this.stopped) return
    this.entries.push(e)
    this.queued++
    this.kick()
  }

  private kick(delay = this.batchMs): void {
    if (this.busy || this.timer !== null || this.stopped || this.entries.length === 0) return
    if (delay > 0) {
      this.timer = setTimeout(() => {
        this.timer = null
        void this.pump()
      }, delay)
      return
    }
    void this.pump()
  }

  /** Ships the queue in order; a failure is retried with backoff, the entry kept at the head. */
  private async pump(): Promise<void> {
    if (this.busy) return
    this.busy = true
    let backoff = BACKOFF_MIN_MS
    try {
      while (this.entries.length > 0 && !this.stopped) {
        const gen = this.gen
        const first = this.entries[0]!
        let lo = first.offset
        let hi = first.offset + first.length
        let n = 1
        while (n < this.entries.length) {
          const e = this.entries[n]!
          if (e.offset > hi || e.offset + e.length < lo || Math.max(hi, e.offset + e.length) - Math.min(lo, e.offset) > MAX_JOIN) break
          lo = Math.min(lo, e.offset)
          hi = Math.max(hi, e.offset + e.length)
          n++
        }
        const data = new Uint8Array(hi - lo)
        for (let i = 0; i < n; i++) {
          const e = this.entries[i]!
          if (e.data !== null) data.set(e.data, e.offset - lo)
          else data.fill(0, e.offset - lo, e.offset - lo + e.length)
        }
        try {
          await (await this.target(this.site)).write(this.disk, lo, data)
        } catch (e) {
          this.failing = errText(e)
          for (const w of this.waiters.splice(0)) {
            clearTimeout(w.timer)
            w.reject(new Error(`ENODEV: the site is not taking writes: ${this.failing}`))
          }
          await new Promise(res => setTimeout(res, backoff))
          backoff = Math.min(BACKOFF_MAX_MS, backoff * 2)
          continue
        }
        this.failing = ''
        backoff = BACKOFF_MIN_MS
        // a backlog forgotten meanwhile is not this write's to take from
        if (gen !== this.gen) continue
        this.entries.splice(0, n)
        this.shipped += n
        this.settle()
      }
    } finally {
      this.busy = false
    }
  }

  private settle(): void {
    const keep = []
    for (const w of this.waiters) {
      if (this.shipped >= w.seq) {
        clearTimeout(w.timer)
        w.resolve()
      } else keep.push(w)
    }
    this.waiters = keep
  }

  /** Resolves once everything queued so far reached the site; rejects at once while the site fails. */
  drain(timeoutMs: number): Promise<void> {
    if (this.shipped >= this.queued) return Promise.resolve()
    if (this.failing !== '') return Promise.reject(new Error(`ENODEV: the site is not taking writes: ${this.failing}`))
    if (this.timer !== null) {
      clearTimeout(this.timer)
      this.timer = null
    }
    return new Promise((resolve, reject) => {
      const w = {
        seq: this.queued, resolve, reject,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter(x => x !== w)
          reject(new Error(`ETIMEDOUT: the backlog of ${this.disk} did not drain in ${timeoutMs} ms`))
        }, timeoutMs),
      }
      this.waiters.push(w)
      this.kick(0)
    })
  }

  forget(): void {
    this.entries = []
    this.shipped = this.queued
    this.gen++
    this.settle()
  }

  stop(): void {
    this.stopped = true
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer)
      w.reject(new Error('ENODEV: the daemon is stopping'))
    }
  }
}

function startDaemon(ctx: DaemonContext, fault: ShipperFault): Daemon {
  const targets = new Map<string, Promise<ReplicaTarget>>()
  const queues = new Map<string, Queue>()
  const target = (site: string): Promise<ReplicaTarget> => {
    let t = targets.get(site)
    if (t === undefined) {
      t = ctx.targets.connect(site)
      targets.set(site, t)
      t.catch(() => {
        if (targets.get(site) === t) targets.delete(site)
      })
    }
    return t
  }
  const queue = (disk: string, site = 'dr'): Queue => {
    let q = queues.get(disk)
    if (q === undefined) queues.set(disk, (q = new Queue(disk, site, target, fault.batchMs ?? 0)))
    return q
  }
  return {
    message(from, raw) {
      const m = raw as ToDaemon
      switch (m.t) {
        case 'open':
          queue(from.disk, m.site).site = m.site
          return true
        case 'w':
          queue(from.disk).push({ offset: m.offset, length: m.buf.byteLength, data: new Uint8Array(m.buf) })
          return undefined
        case 'z':
          for (let at = 0; at < m.length; at += MAX_JOIN) queue(from.disk).push({ offset: m.offset + at, length: Math.min(MAX_JOIN, m.length - at), data: null })
          return undefined
        case 'drain':
          return queue(from.disk).drain(m.timeoutMs)
        case 'forget':
          queues.get(from.disk)?.forget()
          return undefined
        default:
          return undefined
      }
    },
    async stop() {
      // a clean stop ships what it holds while the site takes it
      const until = Date.now() + STOP_SHIP_MS
      await Promise.all([...queues.values()].map(async q => {
        try {
          await q.drain(Math.max(1, until - Date.now()))
        } catch {
          // the site is down: what is queued stays unshipped
        }
      }))
      for (const q of queues.values()) q.stop()
      for (const t of targets.values()) await t.then(x => x.close(), () => undefined)
    },
  }
}

async function setState(disk: DiskContext, state: number): Promise<void> {
  await disk.sidecar.write(0, Uint8Array.of(state))
  await disk.sidecar.sync()
}

class Instance implements FilterInstance {
  constructor(private readonly disk: DiskContext, private readonly fault: ShipperFault) {}

  /** Open: the sidecar says dirty from now on; a disk the site may not match is copied first. */
  async begin(): Promise<void> {
    const link = this.disk.daemon
    if (link === null) throw new Error('this filter needs its daemon')
    const size = await this.disk.sidecar.size()
    const state = size === 0 ? null : (await this.disk.sidecar.read(0, 1))[0]!
    await setState(this.disk, DIRTY)
    await link.request({ t: 'open', site: String(this.disk.policy.site ?? 'dr') } satisfies ToDaemon)
    if (state === CLEAN) return
    // a first open or an unclean end: the whole disk, zeros as zeros (the site may hold a replica
    // of the disk from an earlier protection)
    for (let at = 0; at < this.disk.capacity; at += MiB) {
      const n = Math.min(MiB, this.disk.capacity - at)
      const data = await this.disk.lower.read(at, n)
      if (isZero(data)) {
        link.post({ t: 'z', offset: at, length: n } satisfies ToDaemon)
        continue
      }
      const buf = data.slice().buffer
      link.post({ t: 'w', offset: at, buf } satisfies ToDaemon, [buf])
    }
  }

  done(io: Io, outcome: Outcome): void {
    if (!outcome.ok || (io.op !== 'write' && io.op !== 'unmap')) return
    const link = this.disk.daemon!
    if (io.op === 'unmap') {
      link.post({ t: 'z', offset: io.offset, length: io.length } satisfies ToDaemon)
      return
    }
    const buf = io.data!.slice().buffer
    link.post({ t: 'w', offset: io.offset, buf } satisfies ToDaemon, [buf])
  }

  async close(reason: CloseReason): Promise<void> {
    const link = this.disk.daemon!
    if (this.fault.completeAtClose === true) {
      // the fault: the replica is taken for complete while the daemon still holds writes
      await setState(this.disk, CLEAN)
      return
    }
    try {
      await link.request({ t: 'drain', timeoutMs: DRAIN_MS } satisfies ToDaemon)
    } catch (e) {
      if (this.fault.custodyAtClose === true && /ENODEV/.test(errText(e))) {
        // the fault: the daemon will ship the backlog when the site returns — as long as it lives
        this.disk.log.info('the site is down: the daemon keeps the backlog', { reason })
        await setState(this.disk, CLEAN)
        return
      }
      this.disk.log.warn('the backlog did not drain: the disk will be copied again at its next open', { reason, error: errText(e) })
      await link.request({ t: 'forget' } satisfies ToDaemon).catch(() => undefined)
      return
    }
    await this.disk.lower.flush()
    await setState(this.disk, CLEAN)
  }
}

/** A replication filter module of the given name with `fault` switched on. */
export function shipper(name: string, fault: ShipperFault): FilterModule {
  return {
    abiVersion: 1,
    name,
    vendor: 'IOFCERTCTL',
    version: '1.0.0',
    class: 'replication',
    policySchema: { type: 'object', properties: { site: { type: 'string', default: 'dr' }, rpoSeconds: { type: 'integer', minimum: 2, default: 15 } }, additionalProperties: false },
    daemon: ctx => startDaemon(ctx, fault),
    async open(disk) {
      const inst = new Instance(disk, fault)
      await inst.begin()
      return inst
    },
  }
}
