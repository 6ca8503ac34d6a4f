/** The main thread's side of one filter daemon on one host. */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads'
import { DaemonFailed } from './errors.js'
import type { FilterInfo } from './inspect.js'
import type { DaemonWorkerData, FromDaemon, SiteCall, ToDaemon } from './protocol.js'
import { FILTER_WORKER_EXEC_ARGV } from './sandbox.js'
import type { RecoverySite } from './site.js'
import type { LogEntry } from './worker-common.js'

/** What stop() measured. */
export interface DaemonStopReport {
  readonly ms: number
  readonly timedOut: boolean
  readonly error?: string
  /** Active resources left in the daemon's worker after stop() (timers, sockets, handles). */
  readonly resources: string[]
}

export interface DaemonHostOptions {
  readonly host: string
  readonly info: FilterInfo
  readonly storePath: string
  readonly sites: (name: string) => RecoverySite | undefined
  readonly onLog: (entries: LogEntry[], dropped: number) => void
  readonly onExit: (reason: string) => void
  readonly stopTimeoutMs?: number
}

export class DaemonHost {
  private worker: Worker | null = null
  private readonly conns = new Map<number, string>()
  /** Each connection's failed writes per disk (its write streams: see WriteStream). */
  private readonly streams = new Map<number, Map<string, { failed: number }>>()
  private nextConn = 1
  private stopWait: ((r: DaemonStopReport) => void) | null = null
  private stopping = false
  alive = false

  constructor(private readonly o: DaemonHostOptions) {}

  /** Cumulative time the daemon worker's event loop was busy, ms (0 when not running). */
  activeMs(): number {
    return this.worker?.performance.eventLoopUtilization().active ?? 0
  }

  /** Starts the daemon worker and waits for daemon() to return. */
  start(timeoutMs = 30_000): Promise<void> {
    const data: DaemonWorkerData = {
      host: this.o.host,
      filterId: this.o.info.id,
      entryUrl: this.o.info.entryUrl,
      storePath: this.o.storePath,
      stopTimeoutMs: this.o.stopTimeoutMs ?? 5000,
    }
    const w = new Worker(new URL('./daemon-worker.js', import.meta.url), { workerData: data, execArgv: [...FILTER_WORKER_EXEC_ARGV], resourceLimits: { maxOldGenerationSizeMb: 512 } })
    this.worker = w
    return new Promise((resolve, reject) => {
      let settled = false
      const timer = setTimeout(() => {
        if (settled) return
        settled = true
        void w.terminate()
        reject(DaemonFailed({ host: this.o.host, filter: this.o.info.id, reason: `daemon() did not return within ${timeoutMs} ms` }))
      }, timeoutMs)
      w.on('message', (m: FromDaemon) => {
        if (m.t === 'ready' && !settled) {
          settled = true
          clearTimeout(timer)
          this.alive = true
          resolve()
        } else if (m.t === 'failed' && !settled) {
          settled = true
          clearTimeout(timer)
          void w.terminate()
          reject(DaemonFailed({ host: this.o.host, filter: this.o.info.id, reason: m.message }))
        } else this.onMessage(m)
      })
      w.on('error', e => {
        if (!settled) {
          settled = true
          clearTimeout(timer)
          reject(DaemonFailed({ host: this.o.host, filter: this.o.info.id, reason: e.message }))
        }
      })
      w.on('exit', code => {
        const wasAlive = this.alive
        this.alive = false
        this.worker = null
        if (this.stopWait) {
          this.stopWait({ ms: 0, timedOut: true, error: `daemon worker exited with code ${code} while stopping`, resources: [] })
          this.stopWait = null
        } else if (wasAlive && !this.stopping) this.o.onExit(`daemon worker exited with code ${code}`)
      })
    })
  }

  private gcWaits = new Map<number, () => void>()
  private nextGc = 1

  /** Runs a full GC in the daemon's worker (bounded: a stuck daemon is not waited for). */
  gc(): Promise<void> {
    const w = this.worker
    if (w === null || !this.alive) return Promise.resolve()
    const rid = this.nextGc++
    return new Promise(resolve => {
      const t = setTimeout(() => { this.gcWaits.delete(rid); resolve() }, 2000)
      this.gcWaits.set(rid, () => { clearTimeout(t); resolve() })
      w.postMessage({ t: 'gc', rid } satisfies ToDaemon)
    })
  }

  private onMessage(m: FromDaemon): void {
    if (m.t === 'gc-done') {
      const w = this.gcWaits.get(m.rid)
      this.gcWaits.delete(m.rid)
      w?.()
    } else if (m.t === 'log') this.o.onLog(m.list, m.dropped)
    else if (m.t === 'stopped') {
      const w = this.stopWait
      this.stopWait = null
      w?.({ ms: m.ms, timedOut: m.timedOut, error: m.error, resources: m.resources })
    } else if (m.t === 'site') this.site(m)
    else if (m.t === 'sites') for (const c of m.list) this.site(c, m.data)
  }

  private replies: { sid: number; ok: boolean; value?: unknown; error?: string }[] = []
  private replyScheduled = false

  /** Replies of one turn go back in one message. */
  private reply(m: Extract<ToDaemon, { t: 'site-reply' }>): void {
    const { t: _t, ...r } = m
    this.replies.push(r)
    if (this.replyScheduled) return
    this.replyScheduled = true
    queueMicrotask(() => {
      this.replyScheduled = false
      const list = this.replies
      this.replies = []
      try {
        this.worker?.postMessage({ t: 'site-replies', list } satisfies ToDaemon)
      } catch {
        // the worker is gone; nothing waits on the replies any more
      }
    })
  }

  private site(m: SiteCall, staged?: ArrayBuffer): void {
    const fail = (error: string) => this.reply({ t: 'site-reply', sid: m.sid, ok: false, error })
    const ok = (value?: unknown) => this.reply({ t: 'site-reply', sid: m.sid, ok: true, value })
    if (m.op === 'connect') {
      const s = this.o.sites(m.site)
      if (s === undefined) return fail(`ENODEV: no recovery site named "${m.site}" on host ${this.o.host}`)
      const c = this.nextConn++
      this.conns.set(c, m.site)
      return ok(c)
    }
    const siteName = this.conns.get(m.conn)
    const s = siteName === undefined ? undefined : this.o.sites(siteName)
    if (s === undefined) return fail('ENODEV: replica target is not connected')
    if (m.op === 'close') {
      this.conns.delete(m.conn)
      this.streams.delete(m.conn)
      return ok()
    }
    let p: Promise<void>
    if (m.op === 'write') {
      const data = m.data ?? (staged !== undefined && m.at !== undefined && m.length !== undefined ? new Uint8Array(staged, m.at, m.length) : undefined)
      if (data === undefined) return fail('EINVAL: a write without its bytes')
      p = s.write(m.disk!, m.offset!, data, { seen: m.seen ?? 0, state: this.stream(m.conn, m.disk!) })
    } else p = s.flush(m.disk!)
    p.then(() => ok(), (e: Error) => fail(e.message))
  }

  private stream(conn: number, disk: string): { failed: number } {
    let byDisk = this.streams.get(conn)
    if (byDisk === undefined) {
      byDisk = new Map()
      this.streams.set(conn, byDisk)
    }
    let st = byDisk.get(disk)
    if (st === undefined) {
      st = { failed: 0 }
      byDisk.set(disk, st)
    }
    return st
  }

  /** A new port pair for a VM worker: one end goes to the daemon, the other is returned. */
  link(vm: string): MessagePort | null {
    if (this.worker === null || !this.alive) return null
    const ch = new MessageChannel()
    this.worker.postMessage({ t: 'link', vm, port: ch.port1 } satisfies ToDaemon, [ch.port1])
    return ch.port2
  }

  /** Stops the daemon (bounded), measures what it left behind, then ends its worker. */
  async stop(): Promise<DaemonStopReport> {
    const w = this.worker
    if (w === null) return { ms: 0, timedOut: false, resources: [] }
    this.stopping = true
    const report = await new Promise<DaemonStopReport>(resolve => {
      this.stopWait = resolve
      w.postMessage({ t: 'stop', rid: 0 } satisfies ToDaemon)
      // the worker itself bounds stop() by stopTimeoutMs; this is the backstop for a worker stuck in a loop
      setTimeout(() => {
        if (this.stopWait === resolve) {
          this.stopWait = null
          resolve({ ms: (this.o.stopTimeoutMs ?? 5000) + 2000, timedOut: true, error: 'the daemon worker stopped answering', resources: [] })
        }
      }, (this.o.stopTimeoutMs ?? 5000) + 2000).unref()
    })
    this.alive = false
    await w.terminate()
    this.worker = null
    return report
  }

  /** Ends the worker at once (a host crash). */
  async kill(): Promise<void> {
    this.stopping = true
    this.alive = false
    await this.worker?.terminate()
    this.worker = null
  }
}
