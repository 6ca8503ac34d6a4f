/**
 * Pieces both kinds of filter worker use: file sidecars, rate-limited loggers, the request/post
 * link between a VM's instances and their daemon, and a full GC of the calling thread.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import * as v8 from 'node:v8'
import * as nodeVm from 'node:vm'
import type { MessagePort, TransferListItem } from 'node:worker_threads'
import type { DaemonLink, Logger, Sidecar } from '../sdk/index.js'
import { syncFile } from './durable.js'

/** A full GC of the calling thread's isolate, or null when the engine will not expose one. */
export function gcFunction(): (() => void) | null {
  try {
    v8.setFlagsFromString('--expose-gc')
    return nodeVm.runInNewContext('gc') as () => void
  } catch {
    return null
  }
}

/**
 * Makes the prototypes of harness classes whose instances filters hold read-only, so that no
 * filter can change the code other instances run (`Object.getPrototypeOf(io).x = …`).
 */
export function hardenSharedClasses(...classes: { readonly prototype: object }[]): void {
  // frozen (not made read-only property by property): that keeps the prototype in V8's fast mode
  for (const c of classes) Object.freeze(c.prototype)
}

/** What a filter holds of a sidecar: the Sidecar calls and nothing of the file behind them. */
export function sidecarView(s: Sidecar): Sidecar {
  return Object.freeze({
    size: () => s.size(),
    read: (offset: number, length: number) => s.read(offset, length),
    write: (offset: number, data: Uint8Array) => s.write(offset, data),
    truncate: (size: number) => s.truncate(size),
    sync: () => s.sync(),
  })
}

/** A sidecar in a file: created on first write, read past its end as zeros. */
export class FileSidecar implements Sidecar {
  private fd = -1
  constructor(readonly file: string) {}
  private open(create: boolean): number {
    if (this.fd >= 0) return this.fd
    if (!create && !fs.existsSync(this.file)) return -1
    fs.mkdirSync(path.dirname(this.file), { recursive: true })
    this.fd = fs.openSync(this.file, fs.existsSync(this.file) ? 'r+' : 'w+')
    return this.fd
  }
  async size(): Promise<number> {
    const fd = this.open(false)
    return fd < 0 ? 0 : fs.fstatSync(fd).size
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(offset, length)
    const out = new Uint8Array(length)
    const fd = this.open(false)
    if (fd < 0) return out
    let done = 0
    while (done < length) {
      const n = fs.readSync(fd, out, done, length - done, offset + done)
      if (n === 0) break
      done += n
    }
    return out
  }
  async write(offset: number, data: Uint8Array): Promise<void> {
    checkRange(offset, 0)
    if (!(data instanceof Uint8Array)) throw new TypeError('sidecar.write needs a Uint8Array')
    const fd = this.open(true)
    let done = 0
    while (done < data.length) done += fs.writeSync(fd, data, done, data.length - done, offset + done)
  }
  async truncate(size: number): Promise<void> {
    checkRange(size, 0)
    fs.ftruncateSync(this.open(true), size)
  }
  async sync(): Promise<void> {
    const fd = this.open(false)
    if (fd >= 0) syncFile(fd)
  }
  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd)
    this.fd = -1
  }
}

function checkRange(offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new RangeError(`invalid sidecar range offset=${offset} length=${length}`)
  }
}

export interface LogEntry {
  at: number
  source: string
  level: 'debug' | 'info' | 'warn' | 'error'
  msg: string
  data?: unknown
}

/**
 * Lines a filter may log while it closes (close, detach, a daemon's stop) beyond the per-second
 * bound: what it says last (counts, a summary) is not dropped because it was chatty before.
 */
export const CLOSING_LOG_RESERVE = 50

/** Lines a logger may still log over its per-second bound (set while its filter closes). */
export interface LogReserve {
  lines: number
}

/**
 * A logger that keeps at most `perSecond` entries a second and counts what it drops; over the
 * bound, lines still go out while `reserve.lines` lasts.
 */
export function makeLogger(source: string, sink: (e: LogEntry) => void, onDrop: (n: number) => void, perSecond = 200, reserve?: LogReserve): Logger {
  let windowStart = 0
  let inWindow = 0
  const emit = (level: LogEntry['level']) => (msg: string, data?: object) => {
    const now = Date.now()
    if (now - windowStart >= 1000) {
      windowStart = now
      inWindow = 0
    }
    if (++inWindow > perSecond) {
      if (reserve === undefined || reserve.lines <= 0) {
        onDrop(1)
        return
      }
      reserve.lines--
    }
    let d: unknown = undefined
    if (data !== undefined) {
      try {
        d = JSON.parse(JSON.stringify(data))
      } catch {
        d = String(data)
      }
    }
    sink({ at: now, source, level, msg: String(msg).slice(0, 2000), data: d })
  }
  return Object.freeze({ debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') })
}

/** One entry of a link batch: [kind 0 post | 1 request, disk, request id, message]. */
export type LinkEntry = [0 | 1, string, number, unknown]
/** A daemon's answer: [request id, ok, value or error message]. */
export type LinkReply = [number, boolean, unknown]

/**
 * The instance side of a DaemonLink. Posts and requests are batched per microtask turn into one
 * message (order kept), which keeps a per-write post cheap for replication filters.
 */
export class LinkClient {
  private batch: LinkEntry[] = []
  private transfers: TransferListItem[] = []
  private scheduled = false
  private nextReq = 1
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  private closed = false
  constructor(private readonly port: MessagePort) {
    port.on('message', (replies: LinkReply[]) => {
      for (const [id, ok, value] of replies) {
        const w = this.waiting.get(id)
        if (w === undefined) continue
        this.waiting.delete(id)
        if (ok) w.resolve(value)
        else w.reject(Object.assign(new Error(String(value)), { code: 'EDAEMON' }))
      }
    })
  }
  forDisk(disk: string): DaemonLink {
    return Object.freeze({
      post: (message, transfer) => this.enqueue([0, disk, 0, message], transfer),
      request: (message, transfer) =>
        new Promise((resolve, reject) => {
          if (this.closed) {
            reject(Object.assign(new Error('ENODEV: the daemon link is closed'), { code: 'ENODEV' }))
            return
          }
          const id = this.nextReq++
          this.waiting.set(id, { resolve, reject })
          this.enqueue([1, disk, id, message], transfer)
        }),
    } satisfies DaemonLink)
  }
  private enqueue(e: LinkEntry, transfer?: ArrayBuffer[]): void {
    if (this.closed) return
    this.batch.push(e)
    if (transfer !== undefined && transfer.length > 0) for (const t of transfer) this.transfers.push(t)
    if (!this.scheduled) {
      this.scheduled = true
      queueMicrotask(this.flush)
    }
  }
  readonly flush = (): void => {
    this.scheduled = false
    if (this.batch.length === 0) return
    const batch = this.batch
    const transfers = this.transfers
    this.batch = []
    this.transfers = []
    try {
      this.port.postMessage(batch, transfers)
    } catch {
      // one entry could not be cloned: send the others one by one and fail that one alone
      for (const e of batch) {
        try {
          this.port.postMessage([e])
        } catch (err) {
          if (e[0] === 1) {
            const w = this.waiting.get(e[2])
            this.waiting.delete(e[2])
            w?.reject(Object.assign(new Error(`message could not be cloned: ${(err as Error).message}`), { code: 'EINVAL' }))
          }
        }
      }
    }
  }
  close(): void {
    this.flush()
    this.closed = true
    for (const w of this.waiting.values()) w.reject(Object.assign(new Error('ENODEV: the daemon link closed'), { code: 'ENODEV' }))
    this.waiting.clear()
    this.port.close()
  }
}
