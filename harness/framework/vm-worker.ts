/**
 * A VM's I/O path in its own worker thread: its disks, their drives and filter instances.
 * Anything a filter does wrong here — throwing, hanging, looping, exiting, leaking — stays in
 * this thread; the main thread watches it and powers the VM off when it stops answering.
 */
import { parentPort, workerData } from 'node:worker_threads'
import * as fs from 'node:fs'
import process from 'node:process'
import * as v8 from 'node:v8'
import type { CloseReason, DiskContext, DiskEvent, FilterInstance, FilterModule, IoError, IoOp } from '../sdk/index.js'
import { DiskPath, IoRequest, IoView, type FaultRecord, type Layer } from './chain.js'
import { Drive } from './drive.js'
import { loadFilterModule, sandboxWorker } from './filter-loader.js'
import { FileStore, MemoryStore, NullStore } from './store.js'
import { FileJournalMedium, Journal, SharedJournalMedium } from './journal.js'
import { CLOSING_LOG_RESERVE, FileSidecar, gcFunction, hardenSharedClasses, LinkClient, makeLogger, sidecarView, type LogEntry, type LogReserve } from './worker-common.js'
import type { DiskSpec, FilterSpec, FromVm, ToVm, VmWorkerData } from './protocol.js'

const data = workerData as VmWorkerData
const port = parentPort!

const gcFn = gcFunction()
// the memory readings the cache checks rely on, taken from the real modules (filters reach
// neither node:v8 nor the real process, and cannot replace these)
const heapStatistics = v8.getHeapStatistics
const memoryUsage = process.memoryUsage.bind(process)
const activeResources = process.getActiveResourcesInfo.bind(process)

/** What an in-worker workload (a benchmark generator, a verifier) gets for one disk. */
export interface WorkerDiskHandle {
  readonly disk: string
  readonly capacity: number
  readonly path: DiskPath
  readonly drive: Drive
  /**
   * An I/O buffer shaped as a guest's: a Uint8Array over an ArrayBuffer of its own of exactly
   * `length` bytes (never a view into a disk's shared memory), so a filter cannot tell the
   * workload's I/O from a guest's by its `io.data`.
   */
  ioBuffer(length: number): Uint8Array
  /**
   * Makes a submit function whose completions call `onComplete(tag, error)`. A buffer of another
   * shape than ioBuffer()'s (a subarray, shared memory) is copied into one of that shape, and for
   * a read copied back before the completion, so filters see every workload's data as a guest's.
   * A caller whose buffers all come from ioBuffer() says so with `fromIoBuffer` and skips that
   * check (the bench generator's hot path: reading a typed array's `buffer` costs ~40 ns).
   */
  submitter(onComplete: (tag: number, error: IoError | null, req: IoRequest) => void, opts?: { readonly fromIoBuffer?: boolean }): (op: IoOp, offset: number, length: number, data: Uint8Array | null, tag: number) => void
}

interface OpenDisk {
  spec: DiskSpec
  path: DiskPath
  drive: Drive
  store: MemoryStore | FileStore | NullStore
  filters: FilterSpec[]
  sidecars: FileSidecar[]
  /** Each filter's log reserve on this disk (by filter id), opened while it closes or detaches. */
  logReserves: Map<string, LogReserve>
  ioDone: (req: IoRequest, err: IoError | null) => void
}

const disks = new Map<string, OpenDisk>()
const links = new Map<string, LinkClient>()

function post(m: FromVm, transfer?: ArrayBuffer[]): void {
  port.postMessage(m, transfer)
}

// ---- faults and logs, batched per turn ----
let faultBatch: FaultRecord[] = []
let logBatch: LogEntry[] = []
let logDropped = 0
let reportScheduled = false
function scheduleReport(): void {
  if (reportScheduled) return
  reportScheduled = true
  setImmediate(() => {
    reportScheduled = false
    flushReports()
  })
}
/** Posts the faults and log lines batched so far, now: before a reply, so none is lost when the worker ends after it. */
function flushReports(): void {
  postFaults()
  if (logBatch.length > 0 || logDropped > 0) {
    post({ t: 'log', list: logBatch, dropped: logDropped })
    logBatch = []
    logDropped = 0
  }
}
function postFaults(): void {
  if (faultBatch.length === 0) return
  post({ t: 'faults', list: faultBatch })
  faultBatch = []
}
function onFault(f: FaultRecord): void {
  if (faultBatch.length < 1000) faultBatch.push(f)
  scheduleReport()
}
function logSink(e: LogEntry): void {
  if (logBatch.length < 500) logBatch.push(e)
  else logDropped++
  scheduleReport()
}

function flushMem(d: OpenDisk): void {
  if (d.store instanceof MemoryStore) {
    const u = d.store.takeUpdate()
    if (u !== null) post({ t: 'mem', disk: d.spec.id, update: u })
  }
}

async function loadModule(url: string): Promise<FilterModule> {
  // the loader evaluates each filter module once for the VM's life, under the filter import rules
  const ns = (await loadFilterModule(url)) as { default?: FilterModule }
  const mod = ns.default
  if (mod === undefined || mod === null || typeof mod.open !== 'function') throw new Error(`${url} has no default export with open()`)
  return mod
}

function withTimeout<T>(p: T | Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms)
    Promise.resolve(p).then(
      v => { clearTimeout(t); resolve(v) },
      e => { clearTimeout(t); reject(e) },
    )
  })
}

const PASS_THROUGH: FilterInstance = Object.freeze({})

function placeholder(f: FilterSpec): Layer {
  return { filterId: f.filterId, name: f.name, cls: f.cls, transforming: f.transforming, inst: PASS_THROUGH, start: null, done: null }
}

function makeLayer(f: FilterSpec, inst: FilterInstance): Layer {
  if (inst === null || typeof inst !== 'object') throw new Error(`open() returned ${String(inst)}, not a FilterInstance`)
  return {
    filterId: f.filterId,
    name: f.name,
    cls: f.cls,
    transforming: f.transforming,
    inst,
    start: typeof inst.start === 'function' ? inst.start : null,
    done: typeof inst.done === 'function' ? inst.done : null,
  }
}

function reserveOf(d: OpenDisk, filterId: string): LogReserve {
  let r = d.logReserves.get(filterId)
  if (r === undefined) d.logReserves.set(filterId, (r = { lines: 0 }))
  return r
}

function contextFor(d: OpenDisk, f: FilterSpec, layer: number, sidecar: FileSidecar): DiskContext {
  let link: LinkClient | undefined
  if (f.hasDaemon) link = links.get(f.filterId)
  return Object.freeze({
    host: data.host,
    vm: data.vm,
    disk: d.spec.id,
    capacity: d.spec.capacity,
    sectorSize: 512 as const,
    policy: Object.freeze({ ...f.policy }),
    sidecar: sidecarView(sidecar),
    lower: Object.freeze(d.path.lowerFor(layer)),
    daemon: link ? link.forDisk(d.spec.id) : null,
    log: makeLogger(f.filterId, logSink, n => { logDropped += n; scheduleReport() }, 200, reserveOf(d, f.filterId)),
  })
}

function buildDisk(spec: DiskSpec): OpenDisk {
  let d: OpenDisk
  const store =
    spec.backing.kind === 'memory'
      ? new MemoryStore(
          {
            mems: spec.backing.mems,
            index: pairsToMap(spec.backing.pairs),
            free: spec.backing.free,
          },
          () => queueMicrotask(() => flushMem(d)),
        )
      : spec.backing.kind === 'null'
        ? new NullStore()
        : new FileStore(spec.backing.path, spec.capacity)
  const j = spec.journal
  const journal = j === null ? null : new Journal(j.kind === 'shared' ? new SharedJournalMedium(j.sab) : new FileJournalMedium(j.path, j.size))
  const drive = new Drive(store, journal, { capacity: spec.capacity, reorder: spec.reorder })
  const path = new DiskPath(drive, { disk: spec.id, capacity: spec.capacity, ioTimeoutMs: data.ioTimeoutMs, onFault })
  d = {
    spec, path, drive, store, filters: [], sidecars: [], logReserves: new Map(),
    ioDone: (req, err) => {
      flushMem(d)
      // a fault recorded for this I/O reaches the main thread before its completion does
      if (faultBatch.length > 0) postFaults()
      post({ t: 'io', rid: req._tag, error: err, data: err === null && req._op === 'read' ? req._data : null })
    },
  }
  return d
}

function pairsToMap(pairs: number[]): Map<number, number> {
  const m = new Map<number, number>()
  for (let i = 0; i < pairs.length; i += 2) m.set(pairs[i]!, pairs[i + 1]!)
  return m
}

/** Opens filter instances bottom-up, so each one's `lower` is live while it opens. */
async function openLayers(d: OpenDisk, filters: FilterSpec[], which: Set<number> | null): Promise<void> {
  for (let i = filters.length - 1; i >= 0; i--) {
    if (which !== null && !which.has(i)) continue
    const f = filters[i]!
    const mod = await loadModule(f.entryUrl)
    const sidecar = new FileSidecar(f.sidecarPath)
    d.sidecars[i] = sidecar
    let inst: FilterInstance
    try {
      inst = await withTimeout(mod.open(contextFor(d, f, i, sidecar)), data.openTimeoutMs, `${f.filterId} open()`)
      d.path.setLayer(i, makeLayer(f, inst))
    } catch (e) {
      onFault({ at: Date.now(), disk: d.spec.id, filter: f.filterId, kind: 'open', io: null, error: null, message: errMsg(e) })
      throw Object.assign(new Error(`filter ${f.filterId} failed to open disk ${d.spec.id}: ${errMsg(e)}`), { code: 'OpenFailed', details: { filter: f.filterId } })
    }
  }
}

async function closeLayer(d: OpenDisk, i: number, reason: CloseReason): Promise<void> {
  const L = d.path.layers[i]!
  const f = d.filters[i]!
  if (typeof L.inst.close === 'function') {
    const reserve = reserveOf(d, L.filterId)
    reserve.lines = CLOSING_LOG_RESERVE
    try {
      await withTimeout(L.inst.close(reason), data.openTimeoutMs, `${L.filterId} close()`)
    } catch (e) {
      onFault({ at: Date.now(), disk: d.spec.id, filter: L.filterId, kind: 'close', io: null, error: null, message: errMsg(e) })
    } finally {
      reserve.lines = 0
    }
  }
  d.path.setLayer(i, placeholder(f))
  d.sidecars[i]?.close()
}

function errMsg(e: unknown): string {
  return e instanceof Error ? e.message : String(e)
}

async function open(spec: DiskSpec, filters: FilterSpec[]): Promise<void> {
  if (disks.has(spec.id)) throw new Error(`disk ${spec.id} is already open`)
  const d = buildDisk(spec)
  d.filters = filters
  d.path.layers = filters.map(placeholder)
  d.path.hold()
  disks.set(spec.id, d)
  try {
    await openLayers(d, filters, null)
  } catch (e) {
    for (let i = 0; i < filters.length; i++) if (d.path.layers[i]!.inst !== PASS_THROUGH) await closeLayer(d, i, 'power-off')
    d.path.abortAll('ENODEV')
    d.path.stop()
    d.drive.close()
    flushMem(d)
    disks.delete(spec.id)
    throw e
  }
  d.path.release()
}

async function close(id: string, reason: CloseReason, flush: boolean): Promise<void> {
  const d = disks.get(id)
  if (d === undefined) return
  d.path.hold()
  await d.path.idle()
  for (let i = 0; i < d.filters.length; i++) await closeLayer(d, i, reason)
  d.path.abortAll('ENODEV')
  d.path.stop()
  if (flush) d.drive.flushAll()
  d.drive.close()
  flushMem(d)
  disks.delete(id)
}

/** Changes a running disk's filters: detaches removed ones, attaches and opens added ones. */
async function reconfigure(id: string, filters: FilterSpec[]): Promise<void> {
  const d = disks.get(id)
  if (d === undefined) throw new Error(`disk ${id} is not open`)
  d.path.hold()
  try {
    await d.path.idle()
    const keep = new Set(filters.map(f => f.filterId))
    // removed filters close top-down, then detach
    for (let i = 0; i < d.filters.length; i++) {
      const f = d.filters[i]!
      if (keep.has(f.filterId)) continue
      await closeLayer(d, i, 'detach')
      try {
        await detachAt(d, f, i)
      } catch (e) {
        onFault({ at: Date.now(), disk: id, filter: f.filterId, kind: 'close', io: null, error: null, message: `detach: ${errMsg(e)}` })
      }
      fs.rmSync(f.sidecarPath, { force: true })
    }
    const old = new Map<string, { layer: Layer; sidecar: FileSidecar | undefined }>()
    d.filters.forEach((f, i) => { if (keep.has(f.filterId)) old.set(f.filterId, { layer: d.path.layers[i]!, sidecar: d.sidecars[i] }) })
    const added = new Set<number>()
    const layers: Layer[] = []
    const sidecars: FileSidecar[] = []
    filters.forEach((f, i) => {
      const o = old.get(f.filterId)
      if (o) { layers[i] = o.layer; if (o.sidecar) sidecars[i] = o.sidecar }
      else { layers[i] = placeholder(f); added.add(i) }
    })
    d.filters = filters
    d.path.layers = layers
    d.sidecars = sidecars
    for (let i = filters.length - 1; i >= 0; i--) {
      if (!added.has(i)) continue
      const f = filters[i]!
      fs.rmSync(f.sidecarPath, { force: true })
      await attachAt(d, f, i)
    }
    await openLayers(d, filters, added)
  } finally {
    d.path.release()
  }
}

async function attachAt(d: OpenDisk, f: FilterSpec, layer: number): Promise<void> {
  const mod = await loadModule(f.entryUrl)
  if (typeof mod.attach !== 'function') return
  const sc = new FileSidecar(f.sidecarPath)
  try {
    await withTimeout(mod.attach(contextFor(d, f, layer, sc)), data.openTimeoutMs, `${f.filterId} attach()`)
  } finally {
    sc.close()
  }
}

async function detachAt(d: OpenDisk, f: FilterSpec, layer: number): Promise<void> {
  const mod = await loadModule(f.entryUrl)
  if (typeof mod.detach === 'function') {
    const sc = new FileSidecar(f.sidecarPath)
    const reserve = reserveOf(d, f.filterId)
    reserve.lines = CLOSING_LOG_RESERVE
    try {
      await withTimeout(mod.detach(contextFor(d, f, layer, sc)), data.openTimeoutMs, `${f.filterId} detach()`)
    } finally {
      reserve.lines = 0
      sc.close()
    }
  }
}

async function deliverEvent(d: OpenDisk, ev: DiskEvent): Promise<void> {
  for (const L of d.path.layers) {
    if (typeof L.inst.event !== 'function') continue
    try {
      await withTimeout(L.inst.event(ev), data.openTimeoutMs, `${L.filterId} event(${ev})`)
    } catch (e) {
      onFault({ at: Date.now(), disk: d.spec.id, filter: L.filterId, kind: 'event', io: null, error: null, message: errMsg(e) })
    }
  }
}

/**
 * True when `data` has the shape of a guest's buffer as a filter sees it: a plain Uint8Array (not
 * a Node Buffer) over the whole of an ArrayBuffer of its own (not shared memory, not a window into
 * a larger buffer).
 */
function guestShaped(data: Uint8Array): boolean {
  return data.byteOffset === 0 && data.buffer.byteLength === data.byteLength && data.buffer instanceof ArrayBuffer && Object.getPrototypeOf(data) === Uint8Array.prototype
}

/** A guest-shaped copy of `data`. */
function guestCopy(data: Uint8Array): Uint8Array {
  const own = new Uint8Array(data.length)
  own.set(data)
  return own
}

/**
 * A guest's buffer for data that arrived in another shape. A guest I/O's buffer reaches the worker
 * as the structured clone of the caller's array, which keeps its offset into (and the whole of) a
 * larger or shared buffer: the filters must not see the caller's choice of buffer either.
 */
function ownedData(data: Uint8Array | null): Uint8Array | null {
  return data instanceof Uint8Array && !guestShaped(data) ? guestCopy(data) : data
}

function handleFor(d: OpenDisk): WorkerDiskHandle {
  return {
    disk: d.spec.id,
    capacity: d.spec.capacity,
    path: d.path,
    drive: d.drive,
    ioBuffer: length => new Uint8Array(length),
    submitter(onComplete, opts) {
      const cb = (req: IoRequest, err: IoError | null) => onComplete(req._tag, err, req)
      if (opts?.fromIoBuffer === true) return (op, offset, length, buf, tag) => d.path.submitGuest(op, offset, length, buf, cb, tag)
      return (op, offset, length, buf, tag) => {
        if (buf === null || guestShaped(buf) || !(buf instanceof Uint8Array) || buf.length !== length) {
          d.path.submitGuest(op, offset, length, buf, cb, tag)
          return
        }
        // another shape (rare: the workloads allocate with ioBuffer): a guest-shaped copy, and a
        // read's bytes copied back to the caller's buffer before it learns of the completion
        const own = guestCopy(buf)
        d.path.submitGuest(op, offset, length, own, op !== 'read' ? cb : (req, err) => {
          if (err === null) buf.set(own)
          onComplete(req._tag, err, req)
        }, tag)
      }
    },
  }
}

function disk(id: string): OpenDisk {
  const d = disks.get(id)
  if (d === undefined) throw Object.assign(new Error(`disk ${id} is not open in this VM`), { code: 'DiskNotFound' })
  return d
}

async function handle(m: ToVm): Promise<unknown> {
  switch (m.t) {
    case 'open':
      return open(m.disk, m.filters)
    case 'close':
      return close(m.disk, m.reason, m.flush)
    case 'reconfigure':
      return reconfigure(m.disk, m.filters)
    case 'suspend': {
      // guest I/O stays held from here until resume: it waits, untimed, and none is lost
      const d = disk(m.disk)
      d.path.hold()
      await d.path.idle()
      for (let i = 0; i < d.filters.length; i++) if (m.filterIds.includes(d.filters[i]!.filterId)) await closeLayer(d, i, m.reason)
      return
    }
    case 'resume': {
      const d = disk(m.disk)
      try {
        const reopen = new Set<number>()
        m.filters.forEach((f, i) => { if (d.path.layers[i]?.inst === PASS_THROUGH || d.filters[i]?.filterId !== f.filterId) reopen.add(i) })
        d.filters = m.filters
        d.path.layers = m.filters.map((f, i) => (reopen.has(i) ? placeholder(f) : d.path.layers[i]!))
        await openLayers(d, m.filters, reopen)
      } finally {
        d.path.release()
      }
      return
    }
    case 'attach': {
      const d = disk(m.disk)
      return attachAt(d, m.filter, d.path.layers.length - 1)
    }
    case 'detach': {
      const d = disk(m.disk)
      return detachAt(d, m.filter, d.path.layers.length - 1)
    }
    case 'event': {
      const d = disk(m.disk)
      d.path.hold()
      try {
        await d.path.idle()
        await deliverEvent(d, m.event)
        if (m.event !== 'snapshot') return
        // the image is captured while guest I/O is still held, so it is exactly the quiesced disk
        d.drive.flushAll()
        flushMem(d)
        if (!(d.store instanceof FileStore)) return { kind: 'memory', ...d.store.copy() }
        fs.copyFileSync(d.store.path, m.snapshotPath!)
        return { kind: 'file', path: m.snapshotPath }
      } finally {
        d.path.release()
      }
      return
    }
    case 'stun': {
      const d = disk(m.disk)
      if (m.on) {
        d.path.hold()
        await d.path.idle()
        await deliverEvent(d, 'stun')
        d.drive.stunned = true
      } else {
        d.drive.stunned = false
        await deliverEvent(d, 'unstun')
        d.path.release()
      }
      return
    }
    case 'fault':
      disk(m.disk).drive.setFault(m.fault, m.seed)
      return
    case 'drive-stats': {
      const d = disk(m.disk)
      return { ...d.drive.stats, dirtyBytes: d.drive.dirtyBytes, inflight: d.path.inflight }
    }
    case 'memory': {
      if (m.gc && gcFn) { gcFn(); gcFn() }
      const h = heapStatistics()
      const mu = memoryUsage()
      return { heapUsed: h.used_heap_size, external: h.external_memory, arrayBuffers: mu.arrayBuffers, resources: activeResources() }
    }
    case 'ping':
      return 'pong'
    case 'run': {
      const d = disk(m.disk)
      const mod = (await import(m.module)) as { run(h: WorkerDiskHandle, o: unknown): Promise<unknown> }
      const r = await mod.run(handleFor(d), m.options)
      flushMem(d)
      return r
    }
    default:
      throw new Error(`unknown message ${(m as { t: string }).t}`)
  }
}

port.on('message', (m: ToVm) => {
  if (m.t === 'io') {
    const d = disks.get(m.disk)
    if (d === undefined) {
      post({ t: 'io', rid: m.rid, error: 'ENODEV', data: null })
      return
    }
    d.path.submitGuest(m.op, m.offset, m.length, m.op === 'read' ? new Uint8Array(m.length) : ownedData(m.data), d.ioDone, m.rid)
    return
  }
  if (m.t === 'link') {
    links.get(m.filterId)?.close()
    links.set(m.filterId, new LinkClient(m.port))
    return
  }
  const rid = m.rid
  handle(m).then(
    value => {
      // what the filter logged or did wrong while handling this (a close, most of all) goes first
      flushReports()
      post({ t: 'reply', rid, ok: true, value })
    },
    (e: unknown) => {
      const err = e as { code?: string; message?: string; details?: unknown }
      flushReports()
      post({ t: 'reply', rid, ok: false, error: { code: err?.code ?? 'Error', message: err?.message ?? String(e), details: err?.details } })
    },
  )
})

// A rejection or throw that escapes a filter's own callbacks is that filter's fault, recorded here;
// it must not take the VM's I/O path down.
process.on('unhandledRejection', (e: unknown) => {
  onFault({ at: Date.now(), disk: '', filter: 'unknown', kind: 'reject', io: null, error: null, message: `unhandled rejection: ${errMsg(e)}` })
})

// Everything the harness needs is loaded: harden the thread before any filter code runs. The
// objects filters see as `io` are instances of IoView: its prototype is theirs to read only (and
// IoRequest's, which no filter gets, is frozen all the same).
hardenSharedClasses(IoView, IoRequest, FileSidecar)
sandboxWorker()
// the main thread times this worker's start-up apart from its I/O: it has started
post({ t: 'ready' })
