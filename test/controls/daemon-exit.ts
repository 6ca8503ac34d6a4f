/**
 * Negative control for isolation.vm-crash: a CDP-like replication filter whose daemon exits when
 * one of its instances disappears without closing (its heartbeats stop), which ends replication
 * for every other VM on the host.
 */
import type { Daemon, DaemonContext, FilterModule, ReplicaTarget } from '../../harness/sdk/index.js'

interface Entry {
  readonly disk: string
  readonly offset: number
  readonly data: Uint8Array
}

const RETRY_MS = 100
const WINDOW = 64

function daemon(ctx: DaemonContext): Daemon {
  const targets = new Map<string, Promise<ReplicaTarget>>()
  const timers = new Set<ReturnType<typeof setTimeout>>()
  let stopped = false
  const sleep = (ms: number) => new Promise<void>(res => {
    const t = setTimeout(() => {
      timers.delete(t)
      res()
    }, ms)
    timers.add(t)
  })
  const target = (site: string): Promise<ReplicaTarget> => {
    let t = targets.get(site)
    if (t === undefined) {
      t = ctx.targets.connect(site)
      t.catch(() => targets.delete(site))
      targets.set(site, t)
    }
    return t
  }
  /** Writes shipped in order; while the site is unreachable, one at a time until it answers again. */
  class Queue {
    readonly entries: Entry[] = []
    /** The last attempt to ship failed. */
    failing = false
    private running = false
    private readonly drained: (() => void)[] = []
    constructor(readonly site: string) {}
    push(e: Entry): void {
      this.entries.push(e)
      void this.pump()
    }
    whenDrained(): Promise<void> {
      return this.entries.length === 0 && !this.running ? Promise.resolve() : new Promise(res => this.drained.push(res))
    }
    async pump(): Promise<void> {
      if (this.running) return
      this.running = true
      let window = WINDOW
      try {
        while (this.entries.length > 0 && !stopped) {
          const batch = this.entries.slice(0, window)
          let shipped = 0
          try {
            const t = await target(this.site)
            const results = await Promise.allSettled(batch.map(e => t.write(e.disk, e.offset, e.data)))
            while (shipped < results.length && results[shipped]!.status === 'fulfilled') shipped++
          } catch {
            // no connection yet: retried below
          }
          this.entries.splice(0, shipped)
          this.failing = shipped < batch.length
          if (this.failing) {
            // probing one write at a time means no later write can land before an earlier one when the site returns
            window = 1
            await sleep(RETRY_MS)
          } else window = WINDOW
        }
      } finally {
        this.running = false
        if (this.entries.length === 0) for (const f of this.drained.splice(0)) f()
      }
    }
  }
  const queues = new Map<string, Queue>()
  const queue = (disk: string, m: { site: string; rpo: number }) => {
    let q = queues.get(disk)
    if (q === undefined) queues.set(disk, (q = new Queue(m.site)))
    return q
  }
  const beats = new Map<string, number>()
  const watchdog = setInterval(() => {
    // the fault under test: a vanished instance takes the whole daemon down (an exception thrown
    // from a timer ends the daemon's worker, as an exit would)
    for (const at of beats.values()) if (Date.now() - at > 600) throw new Error('an instance vanished: the daemon gives up')
  }, 100)
  return {
    message(from, m) {
      const msg = m as { t: string; site: string; offset: number; buf: ArrayBuffer; rpo: number }
      switch (msg.t) {
        case 'w':
          queue(from.disk, msg).push({ disk: from.disk, offset: msg.offset, data: new Uint8Array(msg.buf) })
          return undefined
        case 'drain':
          return Promise.race([queue(from.disk, msg).whenDrained(), sleep(5000)])
        case 'beat':
          beats.set(from.disk, Date.now())
          return undefined
        case 'bye':
          beats.delete(from.disk)
          return undefined
        default:
          return undefined
      }
    },
    async stop() {
      stopped = true
      clearInterval(watchdog)
      for (const t of timers) clearTimeout(t)
      timers.clear()
      for (const t of targets.values()) await t.then(x => x.close(), () => undefined)
    },
  }
}

const mod: FilterModule = {
  abiVersion: 1,
  name: 'ctl-daemon-exit',
  vendor: 'TEST',
  version: '1.0.0',
  class: 'replication',
  policySchema: { type: 'object', properties: { site: { type: 'string', default: 'dr' }, rpoSeconds: { type: 'integer', minimum: 2, default: 15 } } },
  daemon,
  open(disk) {
    const link = disk.daemon
    if (link === null) throw new Error('ctl-daemon-exit needs its daemon')
    const site = String(disk.policy.site ?? 'dr')
    const rpo = Number(disk.policy.rpoSeconds ?? 15)
    link.post({ t: 'beat', site, rpo })
    const beat = setInterval(() => link.post({ t: 'beat', site, rpo }), 100)
    return {
      done(io, outcome) {
        if (!outcome.ok || (io.op !== 'write' && io.op !== 'unmap')) return
        const copy = io.op === 'write' ? io.data!.slice() : new Uint8Array(io.length)
        link.post({ t: 'w', site, rpo, offset: io.offset, buf: copy.buffer }, [copy.buffer])
      },
      async close() {
        clearInterval(beat)
        link.post({ t: 'bye', site, rpo })
        // bounded: a daemon that is gone never answers
        let timer: ReturnType<typeof setTimeout> | undefined
        await Promise.race([link.request({ t: 'drain', site, rpo }).catch(() => undefined), new Promise(res => { timer = setTimeout(res, 2000) })])
        clearTimeout(timer)
      },
    }
  },
}
export default mod
