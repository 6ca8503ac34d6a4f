/**
 * The replication filter the shipper controls are made of: a small CDP-like filter, sound as it
 * stands, whose daemon or instance a control extends to put in its one defect.
 *
 * Each instance posts a copy of every completed write (an unmap as zeros) to the host's daemon.
 * The daemon keeps a queue per disk and ships it to the disk's site in order, 64 writes at a time;
 * while the site is unreachable it probes one write at a time every 100 ms, so no later write can
 * land before an earlier one when the site returns. A close waits, bounded, for its disk's queue to
 * drain; the daemon also answers whether a disk's last attempt to ship failed (`state`).
 */
import type { Daemon, DaemonContext, DaemonLink, DiskContext, FilterInstance, FilterModule, Io, Outcome, ReplicaTarget } from '../../harness/sdk/index.js'

/** A write on its way to the site. */
export interface Entry {
  readonly disk: string
  readonly offset: number
  readonly data: Uint8Array
}

/** What an instance sends its daemon: `w` (a write), `drain`, `state`, or a control's own. */
export interface ShipperMessage {
  readonly t: string
  readonly site: string
  readonly rpo: number
  readonly offset?: number
  readonly buf?: ArrayBuffer
}

const RETRY_MS = 100
const WINDOW = 64

/** Writes shipped in order; while the site is unreachable, one at a time until it answers again. */
export class ShipQueue {
  readonly entries: Entry[] = []
  /** The last attempt to ship failed. */
  failing = false
  running = false
  private readonly drained: (() => void)[] = []

  constructor(private readonly daemon: ShipperDaemon, readonly site: string, readonly rpo: number) {}

  push(e: Entry): void {
    this.entries.push(e)
    this.daemon.pushed(this)
  }

  whenDrained(): Promise<void> {
    return this.entries.length === 0 && !this.running ? Promise.resolve() : new Promise(res => this.drained.push(res))
  }

  async pump(): Promise<void> {
    if (this.running) return
    this.running = true
    let window = WINDOW
    try {
      while (this.entries.length > 0 && !this.daemon.stopped) {
        const batch = await this.daemon.nextBatch(this, window)
        let shipped = 0
        try {
          const t = await this.daemon.target(this.site)
          const results = await Promise.allSettled(batch.map(e => t.write(e.disk, e.offset, e.data)))
          while (shipped < results.length && results[shipped]!.status === 'fulfilled') shipped++
        } catch {
          // no connection yet: retried below
        }
        this.failing = shipped < batch.length
        if (this.failing) {
          this.entries.unshift(...batch.slice(shipped))
          // probing one write at a time means no later write can land before an earlier one when the site returns
          window = 1
          await this.daemon.sleep(RETRY_MS)
        } else window = WINDOW
      }
    } finally {
      this.running = false
      if (this.entries.length === 0) for (const f of this.drained.splice(0)) f()
    }
  }
}

/** The host's daemon: a connection per site, a queue per disk. */
export class ShipperDaemon implements Daemon {
  stopped = false
  private readonly targets = new Map<string, Promise<ReplicaTarget>>()
  private readonly timers = new Set<ReturnType<typeof setTimeout>>()
  private readonly queues = new Map<string, ShipQueue>()

  constructor(readonly ctx: DaemonContext) {}

  /** Resolves after `ms` (at once when the daemon stops). */
  sleep(ms: number): Promise<void> {
    return new Promise<void>(res => {
      const t = setTimeout(() => {
        this.timers.delete(t)
        res()
      }, ms)
      this.timers.add(t)
    })
  }

  /** The site's connection, made once and made again after a failed attempt. */
  target(site: string): Promise<ReplicaTarget> {
    let t = this.targets.get(site)
    if (t === undefined) {
      t = this.ctx.targets.connect(site)
      t.catch(() => this.targets.delete(site))
      this.targets.set(site, t)
    }
    return t
  }

  /** The queue a disk's writes go through: its own. */
  queue(disk: string, m: ShipperMessage): ShipQueue {
    let q = this.queues.get(disk)
    if (q === undefined) this.queues.set(disk, (q = new ShipQueue(this, m.site, m.rpo)))
    return q
  }

  /** A write was queued: ship it now. */
  pushed(q: ShipQueue): void {
    void q.pump()
  }

  /** The next writes to ship, taken off the queue: the first `window`, in order. */
  async nextBatch(q: ShipQueue, window: number): Promise<Entry[]> {
    return q.entries.splice(0, window)
  }

  message(from: { vm: string; disk: string }, m: unknown): unknown {
    const msg = m as ShipperMessage
    switch (msg.t) {
      case 'w':
        this.queue(from.disk, msg).push({ disk: from.disk, offset: msg.offset!, data: new Uint8Array(msg.buf!) })
        return undefined
      case 'drain':
        return Promise.race([this.queue(from.disk, msg).whenDrained(), this.sleep(5000)])
      case 'state':
        return this.queue(from.disk, msg).failing
      default:
        return undefined
    }
  }

  async stop(): Promise<void> {
    this.stopped = true
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    for (const t of this.targets.values()) await t.then(x => x.close(), () => undefined)
  }
}

/** One open disk: posts each completed write to the daemon, and waits for its queue at close. */
export class ShipperInstance implements FilterInstance {
  readonly link: DaemonLink
  readonly site: string
  readonly rpo: number

  constructor(readonly disk: DiskContext, name: string) {
    if (disk.daemon === null) throw new Error(`${name} needs its daemon`)
    this.link = disk.daemon
    this.site = String(disk.policy.site ?? 'dr')
    this.rpo = Number(disk.policy.rpoSeconds ?? 15)
  }

  /** Sends the daemon a message naming the disk's site and RPO. */
  send(t: string, extra: Partial<ShipperMessage> = {}, transfer: ArrayBuffer[] = []): void {
    this.link.post({ t, site: this.site, rpo: this.rpo, ...extra }, transfer)
  }

  done(io: Io, outcome: Outcome): void {
    if (!outcome.ok || (io.op !== 'write' && io.op !== 'unmap')) return
    this.ship(io)
  }

  /** Posts a completed write (an unmap as zeros) to the daemon. */
  ship(io: Io): void {
    const copy = io.op === 'write' ? io.data!.slice() : new Uint8Array(io.length)
    this.send('w', { offset: io.offset, buf: copy.buffer }, [copy.buffer])
  }

  async close(): Promise<void> {
    // bounded: a daemon that is gone never answers
    let timer: ReturnType<typeof setTimeout> | undefined
    await Promise.race([this.link.request({ t: 'drain', site: this.site, rpo: this.rpo }).catch(() => undefined), new Promise(res => { timer = setTimeout(res, 2000) })])
    clearTimeout(timer)
  }
}

/** The filter module `ctl-<name>`, made of these parts or a control's subclasses of them. */
export function shipperModule(name: string, parts: { daemon?: typeof ShipperDaemon; instance?: typeof ShipperInstance } = {}): FilterModule {
  const D = parts.daemon ?? ShipperDaemon
  const I = parts.instance ?? ShipperInstance
  return {
    abiVersion: 1,
    name,
    vendor: 'TEST',
    version: '1.0.0',
    class: 'replication',
    policySchema: { type: 'object', properties: { site: { type: 'string', default: 'dr' }, rpoSeconds: { type: 'integer', minimum: 2, default: 15 } } },
    daemon: ctx => new D(ctx),
    open: disk => new I(disk, name),
  }
}
