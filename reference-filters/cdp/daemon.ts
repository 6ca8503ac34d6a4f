/**
 * The host's replication daemon: one pump per disk (pump.ts), one connection per recovery site,
 * and the messages of the instances (messages.ts) dispatched to the pump of the disk they concern.
 */
import type { Daemon, DaemonContext, ReplicaTarget } from 'iofcert/sdk'
import { STOP_SETTLE_MS } from './constants.js'
import type { ToDaemon } from './messages.js'
import { Backlog, Pump } from './pump.js'

/** The host's replication daemon: one pump per disk, one connection per site. */
export function startDaemon(ctx: DaemonContext): Daemon {
  const pumps = new Map<string, Pump>()
  const backlog = new Backlog(() => pumps.size)
  const targets = new Map<string, Promise<ReplicaTarget>>()
  let stopped = false

  const target = (site: string): Promise<ReplicaTarget> => {
    let t = targets.get(site)
    if (t === undefined) {
      t = ctx.targets.connect(site)
      targets.set(site, t)
      // a failed connect is tried again by the next write
      t.catch(() => {
        if (targets.get(site) === t) targets.delete(site)
      })
    }
    return t
  }

  /** The disk's pump; with `inst`, only if that instance opened the disk last. */
  const pumpOf = (disk: string, inst?: number): Pump | undefined => {
    const p = pumps.get(disk)
    return p === undefined || (inst !== undefined && p.owner !== inst) ? undefined : p
  }

  const handle = (from: { disk: string }, m: ToDaemon): unknown => {
    if (stopped) {
      // nothing queued now reaches the site: a drain must not be taken for success
      if (m.kind === 'drain' || m.kind === 'open') throw new Error('ENODEV: the replication daemon is stopping')
      return m.kind === 'room' ? false : m.kind === 'watch' ? { closed: true } : undefined
    }
    switch (m.kind) {
      case 'open': {
        let p = pumps.get(from.disk)
        if (p === undefined) {
          p = new Pump(from.disk, m.site, target, ctx.log, backlog)
          pumps.set(from.disk, p)
        }
        p.reopen(m.inst, m.site)
        return { epoch: p.epoch }
      }
      case 'write':
        pumpOf(from.disk, m.inst)?.push({ offset: m.offset, length: m.buf.byteLength, data: new Uint8Array(m.buf) })
        return undefined
      case 'writes': {
        const p = pumpOf(from.disk, m.inst)
        if (p !== undefined) for (let i = 0; i < m.bufs.length; i++) p.push({ offset: m.offsets[i]!, length: m.bufs[i]!.byteLength, data: new Uint8Array(m.bufs[i]!) })
        return undefined
      }
      case 'packed': {
        const p = pumpOf(from.disk, m.inst)
        if (p === undefined) return undefined
        // each write queued is a view of the one buffer: the site takes a copy of what it writes
        const all = new Uint8Array(m.buf)
        let at = 0
        for (let i = 0; i < m.offsets.length; i++) {
          const n = m.lengths[i]!
          if (at + n > all.length) throw new Error(`a packed message's lengths overrun its buffer at write ${i}`)
          p.push({ offset: m.offsets[i]!, length: n, data: all.subarray(at, (at += n)) })
        }
        return undefined
      }
      case 'zero':
        pumpOf(from.disk, m.inst)?.pushZero(m.offset, m.length)
        return undefined
      case 'resync':
        pumpOf(from.disk, m.inst)?.resync()
        return undefined
      case 'drain':
        return pumpOf(from.disk)?.drain(m.timeoutMs) ?? true
      case 'room':
        return pumpOf(from.disk)?.room(m.wait, m.writes) ?? true
      case 'watch':
        return pumpOf(from.disk)?.watch(m.epoch) ?? { closed: true }
      case 'unwatch':
        pumpOf(from.disk)?.answerWatch({ closed: true })
        return undefined
      case 'forget': {
        const p = pumpOf(from.disk)
        if (p === undefined) return undefined
        pumps.delete(from.disk)
        return p.forget()
      }
      case 'bye': {
        const p = pumpOf(from.disk)
        if (p === undefined) return undefined
        if (p.idle) {
          pumps.delete(from.disk)
          p.stop()
        } else p.answerWatch({ closed: true })
        return undefined
      }
      default:
        throw new Error(`unknown message ${JSON.stringify((m as { kind?: unknown }).kind)}`)
    }
  }

  return {
    message(from, raw) {
      return handle(from, raw as ToDaemon)
    },
    async stop() {
      stopped = true
      for (const p of pumps.values()) p.stop()
      await Promise.all([...pumps.values()].map(p => p.settled(STOP_SETTLE_MS)))
      pumps.clear()
      const open = [...targets.values()]
      targets.clear()
      let t: ReturnType<typeof setTimeout> | undefined
      await Promise.race([
        Promise.allSettled(open.map(async tp => (await tp).close())),
        new Promise<void>(res => { t = setTimeout(res, 1000) }),
      ])
      clearTimeout(t)
    },
  }
}
