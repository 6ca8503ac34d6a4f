/**
 * Negative control for replication.write-order: a CDP-like replication filter whose daemon
 * gathers each disk's writes for 20 ms and ships them in batches of up to 128, each in a random
 * order. Overlapping writes keep their relative order, so the replica still ends equal to the
 * disk: only the instants between arrivals are inconsistent.
 */
import type { Daemon, DaemonContext, FilterModule, ReplicaTarget } from '../../harness/sdk/index.js'

interface Entry {
  readonly offset: number
  readonly data: Uint8Array
}

const GATHER_MS = 20
const RETRY_MS = 100

/** A small seeded generator: the control misbehaves the same way in every run. */
function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x / 4294967296
  }
}

/** A random order of `batch` in which a write never overtakes an earlier one it overlaps. */
function shuffled(batch: Entry[], rand: () => number): Entry[] {
  const left = batch.map((e, i) => ({ e, i, key: rand() }))
  const out: Entry[] = []
  while (left.length > 0) {
    let pick = -1
    for (let j = 0; j < left.length; j++) {
      const c = left[j]!
      const blocked = left.some(o => o.i < c.i && o.e.offset < c.e.offset + c.e.data.length && c.e.offset < o.e.offset + o.e.data.length)
      if (!blocked && (pick < 0 || c.key < left[pick]!.key)) pick = j
    }
    out.push(left[pick]!.e)
    left.splice(pick, 1)
  }
  return out
}

function daemon(ctx: DaemonContext): Daemon {
  const targets = new Map<string, Promise<ReplicaTarget>>()
  const timers = new Set<ReturnType<typeof setTimeout>>()
  const rand = xorshift(0x5eed)
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
  class DiskQueue {
    readonly entries: Entry[] = []
    private running = false
    private readonly drained: (() => void)[] = []
    constructor(readonly disk: string, readonly site: string) {}
    push(e: Entry): void {
      this.entries.push(e)
      void this.pump()
    }
    whenDrained(): Promise<void> {
      return this.entries.length === 0 && !this.running ? Promise.resolve() : new Promise(res => this.drained.push(res))
    }
    private async pump(): Promise<void> {
      if (this.running) return
      this.running = true
      try {
        while (this.entries.length > 0 && !stopped) {
          await sleep(GATHER_MS)
          const batch = shuffled(this.entries.splice(0, 128), rand)
          let shipped = 0
          try {
            const t = await target(this.site)
            // the site applies one disk's writes in call order: the whole batch goes at once
            const results = await Promise.allSettled(batch.map(e => t.write(this.disk, e.offset, e.data)))
            while (shipped < results.length && results[shipped]!.status === 'fulfilled') shipped++
          } catch {
            // no connection yet: retried below
          }
          if (shipped < batch.length) {
            this.entries.unshift(...batch.slice(shipped))
            await sleep(RETRY_MS)
          }
        }
      } finally {
        this.running = false
        if (this.entries.length === 0) for (const f of this.drained.splice(0)) f()
      }
    }
  }
  const queues = new Map<string, DiskQueue>()
  const queue = (disk: string, site: string) => {
    let q = queues.get(disk)
    if (q === undefined) queues.set(disk, (q = new DiskQueue(disk, site)))
    return q
  }
  return {
    message(from, m) {
      const msg = m as { t: string; site: string; offset: number; buf: ArrayBuffer }
      if (msg.t === 'w') queue(from.disk, msg.site).push({ offset: msg.offset, data: new Uint8Array(msg.buf) })
      else if (msg.t === 'drain') return Promise.race([queue(from.disk, msg.site).whenDrained(), sleep(5000)])
      return undefined
    },
    async stop() {
      stopped = true
      for (const t of timers) clearTimeout(t)
      timers.clear()
      for (const t of targets.values()) await t.then(x => x.close(), () => undefined)
    },
  }
}

const mod: FilterModule = {
  abiVersion: 1,
  name: 'ctl-reorder',
  vendor: 'TEST',
  version: '1.0.0',
  class: 'replication',
  policySchema: { type: 'object', properties: { site: { type: 'string', default: 'dr' }, rpoSeconds: { type: 'integer', minimum: 2, default: 15 } } },
  daemon,
  open(disk) {
    const link = disk.daemon
    if (link === null) throw new Error('ctl-reorder needs its daemon')
    const site = String(disk.policy.site ?? 'dr')
    return {
      done(io, outcome) {
        if (!outcome.ok || (io.op !== 'write' && io.op !== 'unmap')) return
        const copy = io.op === 'write' ? io.data!.slice() : new Uint8Array(io.length)
        link.post({ t: 'w', site, offset: io.offset, buf: copy.buffer }, [copy.buffer])
      },
      async close() {
        await link.request({ t: 'drain', site }).catch(() => undefined)
      },
    }
  },
}
export default mod
