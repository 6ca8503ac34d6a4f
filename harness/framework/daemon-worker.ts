/**
 * A filter's daemon on one host, in a worker of its own apart from the VMs (as iofilterd runs
 * beside each VMX). Instances reach it over direct ports; recovery sites are reached through the
 * main thread, which hosts the instrumented sites.
 */
import process from 'node:process'
import { parentPort, workerData, type MessagePort } from 'node:worker_threads'
import type { Daemon, DaemonContext, FilterModule, ReplicaTarget, Targets } from '../sdk/index.js'
import { loadFilterModule, sandboxWorker } from './filter-loader.js'
import type { DaemonWorkerData, FromDaemon, SiteCall, ToDaemon } from './protocol.js'
import { CLOSING_LOG_RESERVE, FileSidecar, gcFunction, hardenSharedClasses, makeLogger, sidecarView, type LinkEntry, type LinkReply, type LogEntry, type LogReserve } from './worker-common.js'

const data = workerData as DaemonWorkerData
const port = parentPort!
const linkPorts: MessagePort[] = []
let daemon: Daemon | null = null

function post(m: FromDaemon): void {
  port.postMessage(m)
}

let logBatch: LogEntry[] = []
let dropped = 0
let logScheduled = false
function logSink(e: LogEntry): void {
  if (logBatch.length < 500) logBatch.push(e)
  else dropped++
  if (!logScheduled) {
    logScheduled = true
    setImmediate(flushLogs)
  }
}
/** Posts the batched log lines now (also before `stopped`, so none is lost when the worker ends). */
function flushLogs(): void {
  logScheduled = false
  if (logBatch.length === 0 && dropped === 0) return
  post({ t: 'log', list: logBatch, dropped })
  logBatch = []
  dropped = 0
}

// ---- recovery sites, through the main thread ----
let nextSid = 1
const siteWaits = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
let siteBatch: SiteCall[] = []
let siteScheduled = false
/**
 * The bytes of the turn's writes, copied one after another into one buffer that travels (moved)
 * with the turn's message: one allocation and one transfer a turn, not one a write.
 */
const STAGE_BYTES = 256 * 1024
let stage: Uint8Array | null = null
let stagePos = 0
/** The intrinsic length of a typed array (its own, not a subclass's getter), read before any filter code runs. */
const typedLength = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype) as object, 'length')!.get!
// site calls of one turn travel in one message (the main thread hosts the sites): a replication
// daemon shipping thousands of writes a second costs the main thread a few messages, not thousands
function siteCall(m: Omit<SiteCall, 'sid'>): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sid = nextSid++
    siteWaits.set(sid, { resolve, reject })
    siteBatch.push({ sid, ...m })
    if (!siteScheduled) {
      siteScheduled = true
      queueMicrotask(flushSiteCalls)
    }
  })
}
/** Copies a write's bytes into the turn's buffer (a large one gets its own): where they are in it. */
function stageBytes(bytes: Uint8Array): { at: number; length: number } | { data: Uint8Array } {
  const length = Reflect.apply(typedLength, bytes, []) as number
  if (length > STAGE_BYTES / 4) return { data: new Uint8Array(bytes) }
  if (stage !== null && stagePos + length > stage.length) flushSiteCalls()
  stage ??= new Uint8Array(STAGE_BYTES)
  stage.set(bytes, stagePos)
  const at = stagePos
  stagePos += length
  return { at, length }
}
function flushSiteCalls(): void {
  siteScheduled = false
  const list = siteBatch
  siteBatch = []
  let data: ArrayBuffer | undefined
  if (stage !== null) {
    // only what was used travels: the stage is cut to size (a copy of the used part when small)
    data = stagePos === stage.length ? (stage.buffer as ArrayBuffer) : (stage.slice(0, stagePos).buffer as ArrayBuffer)
    stage = null
    stagePos = 0
  }
  const transfer: ArrayBuffer[] = []
  if (data !== undefined) transfer.push(data)
  for (const c of list) if (c.data !== undefined) transfer.push(c.data.buffer as ArrayBuffer)
  if (list.length > 0 || data !== undefined) port.postMessage({ t: 'sites', list, data } satisfies FromDaemon, transfer)
}

const targets: Targets = Object.freeze({
  async connect(site: string): Promise<ReplicaTarget> {
    const conn = (await siteCall({ op: 'connect', site: String(site), conn: 0 })) as number
    let closed = false
    // failed writes per disk this target has told its caller of: a write made before an earlier
    // one's failure was told is not applied (the site cancels it), so writes may be kept in flight
    const told = new Map<string, number>()
    const check = () => {
      if (closed) throw Object.assign(new Error('ENODEV: replica target closed'), { code: 'ENODEV' })
    }
    return Object.freeze({
      async write(disk, offset, bytes) {
        check()
        if (!(bytes instanceof Uint8Array)) throw Object.assign(new TypeError('EINVAL: write needs a Uint8Array'), { code: 'EINVAL' })
        // the site gets a copy of its own, taken now and moved with the turn's others, not cloned:
        // the daemon may reuse its buffer (or shared memory) once this returns. The copy's length
        // is the source's own (not a subclass's getter).
        const d = String(disk)
        const staged = stageBytes(bytes)
        try {
          await siteCall({ op: 'write', site, conn, disk: d, offset, ...staged, seen: told.get(d) ?? 0 })
        } catch (e) {
          told.set(d, (told.get(d) ?? 0) + 1)
          throw e
        }
      },
      async flush(disk) {
        check()
        await siteCall({ op: 'flush', site, conn, disk: String(disk) })
      },
      async close() {
        if (closed) return
        closed = true
        await siteCall({ op: 'close', site, conn })
      },
    } satisfies ReplicaTarget)
  },
})

function errMsg(e: unknown): string {
  return e instanceof Error ? e.message : String(e)
}

function serve(vm: string, p: MessagePort): void {
  linkPorts.push(p)
  let replies: LinkReply[] = []
  let scheduled = false
  const reply = (r: LinkReply) => {
    replies.push(r)
    if (!scheduled) {
      scheduled = true
      queueMicrotask(() => {
        scheduled = false
        const batch = replies
        replies = []
        try {
          p.postMessage(batch)
        } catch {
          for (const one of batch) {
            try { p.postMessage([one]) } catch (e) { p.postMessage([[one[0], false, `reply could not be cloned: ${errMsg(e)}`]]) }
          }
        }
      })
    }
  }
  p.on('message', (batch: LinkEntry[]) => {
    for (const [kind, disk, id, msg] of batch) {
      const d = daemon
      let r: unknown
      try {
        r = d?.message ? d.message({ vm, disk }, msg) : undefined
      } catch (e) {
        if (kind === 1) reply([id, false, errMsg(e)])
        continue
      }
      if (kind === 0) {
        if (r !== null && typeof r === 'object' && typeof (r as Promise<unknown>).then === 'function') {
          ;(r as Promise<unknown>).then(undefined, () => {})
        }
        continue
      }
      Promise.resolve(r).then(
        v => reply([id, true, v]),
        e => reply([id, false, errMsg(e)]),
      )
    }
  })
}

const store = new FileSidecar(data.storePath)

/** Log lines the daemon may still write over the per-second bound while it stops. */
const stopReserve: LogReserve = { lines: 0 }

async function start(): Promise<void> {
  const mod = ((await loadFilterModule(data.entryUrl)) as { default?: FilterModule }).default
  if (typeof mod?.daemon !== 'function') throw new Error('the module has no daemon()')
  const ctx: DaemonContext = Object.freeze({
    host: data.host,
    targets,
    store: sidecarView(store),
    log: makeLogger(`${data.filterId}:daemon`, logSink, n => { dropped += n }, 200, stopReserve),
  })
  daemon = (await mod.daemon(ctx)) ?? {}
}

async function stop(rid: number): Promise<void> {
  const t0 = Date.now()
  let timedOut = false
  let error: string | undefined
  if (daemon?.stop) {
    stopReserve.lines = CLOSING_LOG_RESERVE
    let timer: ReturnType<typeof setTimeout> | undefined
    try {
      await Promise.race([
        Promise.resolve(daemon.stop()),
        new Promise<void>(res => { timer = setTimeout(() => { timedOut = true; res() }, data.stopTimeoutMs) }),
      ])
    } catch (e) {
      error = errMsg(e)
    } finally {
      clearTimeout(timer)
    }
  }
  const ms = Date.now() - t0
  for (const p of linkPorts) p.close()
  store.close()
  // measure what the daemon left behind rather than trusting stop(): after one more turn, every
  // active resource but our own port to the main thread is the filter's
  await new Promise(res => setImmediate(res))
  const resources = activeResources().filter(r => r !== 'MessagePort')
  flushLogs()
  post({ t: 'stopped', rid, ms, timedOut, error, resources })
}

function siteReply(m: { sid: number; ok: boolean; value?: unknown; error?: string }): void {
  const w = siteWaits.get(m.sid)
  if (!w) return
  siteWaits.delete(m.sid)
  if (m.ok) w.resolve(m.value)
  else w.reject(Object.assign(new Error(m.error ?? 'site error'), { code: (m.error ?? 'EIO').split(':')[0] }))
}

// a full GC on request: shared memory an instance handed its daemon is freed only once this
// isolate has dropped its last view of it, so memory measurements collect here too
const gcFn = gcFunction()

port.on('message', (m: ToDaemon) => {
  if (m.t === 'gc') {
    gcFn?.()
    post({ t: 'gc-done', rid: m.rid })
  } else if (m.t === 'link') serve(m.vm, m.port)
  else if (m.t === 'stop') void stop(m.rid)
  else if (m.t === 'site-reply') siteReply(m)
  else if (m.t === 'site-replies') for (const r of m.list) siteReply(r)
})

// Everything the harness needs is loaded: harden the thread before the filter's code runs.
const activeResources = process.getActiveResourcesInfo.bind(process)
hardenSharedClasses(FileSidecar)
sandboxWorker()

start().then(
  () => post({ t: 'ready' }),
  e => post({ t: 'failed', message: errMsg(e) }),
)
