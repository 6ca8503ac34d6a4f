/** A VM as the main thread sees it: its disks, its worker, its guest I/O and its faults. */
import { Worker } from 'node:worker_threads'
import * as fs from 'node:fs'
import type { CloseReason, DiskEvent, IoError, IoOp } from '../sdk/index.js'
import type { FaultRecord } from './chain.js'
import type { DriveFault, DriveStats } from './drive.js'
import { DiskNotFound, IofError, reviveError, VmPoweredOff, VmPoweredOn, WorkerFailed } from './errors.js'
import type { ResolvedRule } from './policy.js'
import { TRANSFORMING } from './policy.js'
import type { DiskSpec, FilterSpec, FromVm, ToVm, VmWorkerData } from './protocol.js'
import { FILTER_WORKER_EXEC_ARGV } from './sandbox.js'
import { applyMemoryUpdate, memoryImageBytes, readMemoryImage, writeMemoryImage, type MemoryImage } from './store.js'
import { FileJournalMedium, Journal, SharedJournalMedium, type JournalMedium } from './journal.js'

function withJournal(d: VmDisk, cacheBytes: number, fn: (m: JournalMedium) => void): void {
  if (cacheBytes <= 0) return
  if (d.journal) return fn(new SharedJournalMedium(d.journal))
  if (d.path === null || !fs.existsSync(`${d.path}.journal`)) return
  const m = new FileJournalMedium(`${d.path}.journal`, cacheBytes)
  try {
    fn(m)
  } finally {
    m.close()
  }
}

function fileWriter(file: string): (offset: number, data: Uint8Array) => void {
  return (offset, data) => {
    const fd = fs.openSync(file, 'r+')
    try {
      fs.writeSync(fd, data, 0, data.length, offset)
    } finally {
      fs.closeSync(fd)
    }
  }
}
import type { LogEntry } from './worker-common.js'

/** The outcome of one guest I/O. */
export type IoResult =
  | { readonly ok: true; readonly data: Uint8Array | null; readonly ms: number }
  | { readonly ok: false; readonly error: IoError; readonly ms: number }

/** A guest I/O request. */
export interface GuestIo {
  readonly op: IoOp
  readonly offset: number
  /** read and unmap: bytes; write: taken from data; flush: 0 */
  readonly length?: number
  readonly data?: Uint8Array
}

/** A fault recorded against this VM. */
export interface VmFault extends FaultRecord {
  readonly vm: string
}

/** An I/O that failed, thrown by the convenience wrappers. */
export class IoFailed extends IofError {
  constructor(readonly error: IoError, op: IoOp, offset: number) {
    super('IoFailed', `${error}: guest ${op} at offset ${offset} failed`, { error, op, offset })
  }
}

/**
 * Where a disk's bytes live: `memory` (sparse shared blocks), `file` (a sparse image file) or
 * `null` (nothing: writes are dropped and reads transfer no data, as fio's null engine and Linux's
 * null_blk — for measuring the I/O path itself; it is no disk to keep data on).
 */
export type DiskBacking = 'memory' | 'file' | 'null'

/** A virtual disk's configuration and image. */
export interface VmDisk {
  readonly id: string
  readonly capacity: number
  readonly backing: DiskBacking
  /** Image file (file-backed). */
  readonly path: string | null
  /** Shared blocks (memory-backed); kept by the main thread so the disk outlives its VM's worker. */
  readonly image: MemoryImage | null
  /** The volatile cache's journal of a memory disk (file disks keep `<image>.journal`). */
  readonly journal: SharedArrayBuffer | null
  policy: string | null
  rules: ResolvedRule[]
  allowCleartextFilters: boolean
}

/** What the VM needs from its host. */
export interface VmHostServices {
  readonly hostName: string
  readonly ioTimeoutMs: number
  readonly openTimeoutMs: number
  readonly heapMb: number
  readonly cacheBytes: number
  reorderSeed(disk: string): { seed: number; maxDelayMs: number } | null
  sidecarPath(disk: string, filterName: string): string
  daemonPort(filterId: string, vm: string): import('node:worker_threads').MessagePort | null
  canPowerOn(vm: string): void
  changed(): void
  /** Full GC in the host's daemon workers (they may hold shared memory the VM handed them). */
  gcDaemons(): Promise<void>
}

interface Pending {
  resolve: (v: unknown) => void
  reject: (e: unknown) => void
  io: boolean
  t0: number
}

export type VmState = 'off' | 'starting' | 'on' | 'stopping'

export class Vm {
  readonly disks = new Map<string, VmDisk>()
  readonly faults: VmFault[] = []
  readonly logs: LogEntry[] = []
  logsDropped = 0
  state: VmState = 'off'
  /** How the last power-off came about. */
  lastPowerOff: { at: number; reason: 'power-off' | 'crash' | 'hang' | 'oom' | 'exit' | 'host-crash' | 'migrate' | 'host-shutdown'; detail: string } | null = null
  private worker: Worker | null = null
  private readonly pending = new Map<number, Pending>()
  private nextRid = 1
  private lastHeard = 0
  private watchdog: ReturnType<typeof setInterval> | null = null
  private pingOut = false
  /** The worker has loaded the framework and listens (its first message). */
  private ready = false
  private linked = new Set<string>()

  constructor(readonly name: string, public services: VmHostServices) {}

  /** Cumulative time the VM worker's event loop was busy, ms (0 while powered off): how the bench tells whether the VM still works. */
  activeMs(): number {
    return this.worker?.performance.eventLoopUtilization().active ?? 0
  }

  get poweredOn(): boolean {
    return this.state === 'on'
  }

  // ---- worker plumbing ----

  private spawn(): Worker {
    const data: VmWorkerData = { vm: this.name, host: this.services.hostName, ioTimeoutMs: this.services.ioTimeoutMs, openTimeoutMs: this.services.openTimeoutMs }
    const w = new Worker(new URL('./vm-worker.js', import.meta.url), {
      workerData: data,
      // filter code runs in this worker: the filter sandbox's flags (see sandbox.ts)
      execArgv: [...FILTER_WORKER_EXEC_ARGV],
      resourceLimits: { maxOldGenerationSizeMb: this.services.heapMb, maxYoungGenerationSizeMb: 64 },
      stderr: false,
    })
    this.worker = w
    this.linked = new Set()
    this.lastHeard = performance.now()
    this.ready = false
    w.on('message', (m: FromVm) => this.onMessage(m))
    w.on('error', (e: Error & { code?: string }) => {
      const oom = e.code === 'ERR_WORKER_OUT_OF_MEMORY'
      this.died(oom ? 'oom' : 'crash', `${e.name}: ${e.message}`, 'EIO')
    })
    w.on('exit', code => {
      if (this.worker === w) this.died('exit', `the VM's I/O worker exited with code ${code}`, 'EIO')
    })
    return w
  }

  private onMessage(m: FromVm): void {
    this.lastHeard = performance.now()
    switch (m.t) {
      case 'ready':
        this.ready = true
        return
      case 'io': {
        const p = this.pending.get(m.rid)
        if (p === undefined) return
        this.pending.delete(m.rid)
        const ms = performance.now() - p.t0
        p.resolve(m.error === null ? { ok: true, data: m.data, ms } : { ok: false, error: m.error, ms })
        return
      }
      case 'reply': {
        const p = this.pending.get(m.rid)
        if (p === undefined) return
        this.pending.delete(m.rid)
        if (m.ok) p.resolve(m.value)
        else p.reject(reviveError({ code: m.error.code, message: m.error.message, details: (m.error.details ?? {}) as Record<string, unknown> }))
        return
      }
      case 'mem': {
        const d = this.disks.get(m.disk)
        if (d?.image) applyMemoryUpdate(d.image, m.update)
        return
      }
      case 'faults':
        for (const f of m.list) if (this.faults.length < 10_000) this.faults.push({ ...f, vm: this.name })
        return
      case 'log':
        for (const e of m.list) {
          if (this.logs.length >= 2000) this.logs.shift()
          this.logs.push(e)
        }
        this.logsDropped += m.dropped
        return
    }
  }

  private startWatchdog(): void {
    const period = Math.max(20, Math.min(250, this.services.ioTimeoutMs / 8))
    this.watchdog = setInterval(() => {
      const w = this.worker
      if (w === null) return
      if (this.pending.size === 0) {
        this.lastHeard = performance.now()
        return
      }
      // a worker that stops answering (a filter in a synchronous endless loop) cannot time out its
      // own I/O: the main thread ends it and powers the VM off. Until the worker has loaded the
      // framework (it says 'ready'), no filter code has run in it: its start-up is bounded as a
      // filter's open is, not as an I/O.
      const bound = this.ready ? this.services.ioTimeoutMs : Math.max(this.services.ioTimeoutMs, this.services.openTimeoutMs)
      if (performance.now() - this.lastHeard > bound) {
        // the verdict waits for the messages already queued to this thread: after a stall of the
        // main thread (a collection, a loaded machine) the timer runs before the worker's answers
        // are read, and a worker that answered in time is not a hung one
        setImmediate(() => {
          if (this.worker !== w || this.pending.size === 0 || performance.now() - this.lastHeard <= bound) return
          const what = this.ready ? 'a filter that never returns' : 'the worker never finished starting'
          this.faults.push({ vm: this.name, at: Date.now(), disk: '', filter: 'unknown', kind: 'hang', io: null, error: 'ETIMEDOUT', message: `the VM's I/O worker stopped answering for ${bound} ms (${what}); the VM was powered off` })
          this.died('hang', 'the I/O worker stopped answering', 'ETIMEDOUT')
        })
        return
      }
      if (!this.pingOut) {
        this.pingOut = true
        this.call({ t: 'ping', rid: 0 }).then(() => { this.pingOut = false }, () => { this.pingOut = false })
      }
    }, period)
    this.watchdog.unref()
  }

  private died(reason: 'crash' | 'hang' | 'oom' | 'exit', detail: string, error: IoError): void {
    const w = this.worker
    if (w === null) return
    this.worker = null
    if (reason !== 'hang') this.faults.push({ vm: this.name, at: Date.now(), disk: '', filter: 'unknown', kind: reason === 'oom' ? 'oom' : 'crash', io: null, error: 'EIO', message: detail })
    void w.terminate()
    this.stopWatchdog()
    this.state = 'off'
    this.lastPowerOff = { at: Date.now(), reason, detail }
    this.failPending(error, detail)
    // the VM died, not the host: the drives kept power, so what they cached is not lost
    this.commitJournals()
    this.services.changed()
  }

  /** Marks every write the drives hold as durable (they kept power). */
  commitJournals(): void {
    for (const d of this.disks.values()) withJournal(d, this.services.cacheBytes, m => Journal.commit(m))
  }

  /** Replays a power cut on every disk: unflushed writes are lost (all, or a seeded subset). */
  powerCut(seed?: number): number {
    let lost = 0
    for (const d of this.disks.values()) {
      withJournal(d, this.services.cacheBytes, m => {
        const write = d.image ? (o: number, b: Uint8Array) => writeMemoryImage(d.image!, o, b) : fileWriter(d.path!)
        lost += Journal.powerCut(m, write, seed)
      })
    }
    return lost
  }

  private failPending(error: IoError, detail: string): void {
    const pend = [...this.pending.values()]
    this.pending.clear()
    for (const p of pend) {
      if (p.io) p.resolve({ ok: false, error, ms: performance.now() - p.t0 })
      else p.reject(WorkerFailed({ vm: this.name, reason: detail }))
    }
  }

  private stopWatchdog(): void {
    if (this.watchdog !== null) clearInterval(this.watchdog)
    this.watchdog = null
  }

  private call(m: ToVm & { rid: number }): Promise<unknown> {
    const w = this.worker
    if (w === null) return Promise.reject(VmPoweredOff({ vm: this.name }))
    const rid = this.nextRid++
    if (this.pending.size === 0) this.lastHeard = performance.now()
    return new Promise((resolve, reject) => {
      this.pending.set(rid, { resolve, reject, io: false, t0: performance.now() })
      w.postMessage({ ...m, rid })
    })
  }

  // ---- disks and filters ----

  filterSpecs(d: VmDisk): FilterSpec[] {
    return d.rules.map(r => ({
      filterId: r.info.id,
      name: r.info.name,
      cls: r.info.cls,
      transforming: TRANSFORMING.has(r.info.cls),
      entryUrl: r.info.entryUrl,
      policy: r.params,
      sidecarPath: this.services.sidecarPath(d.id, r.info.name),
      hasDaemon: r.info.hasDaemon,
    }))
  }

  diskSpec(d: VmDisk): DiskSpec {
    return {
      id: d.id,
      capacity: d.capacity,
      backing: d.image
        ? { kind: 'memory', mems: d.image.mems, pairs: [...d.image.index].flat(), free: d.image.free }
        : d.backing === 'null' ? { kind: 'null' } : { kind: 'file', path: d.path! },
      journal: this.services.cacheBytes <= 0 || d.backing === 'null' ? null : d.image ? { kind: 'shared', sab: d.journal! } : { kind: 'file', path: `${d.path}.journal`, size: this.services.cacheBytes },
      reorder: this.services.reorderSeed(d.id),
    }
  }

  /** Gives the worker a port to each daemon its disks' filters need. */
  private linkDaemons(specs: FilterSpec[]): void {
    for (const f of specs) {
      if (!f.hasDaemon || this.linked.has(f.filterId)) continue
      const port = this.services.daemonPort(f.filterId, this.name)
      if (port === null) continue
      this.linked.add(f.filterId)
      this.worker!.postMessage({ t: 'link', filterId: f.filterId, port } satisfies ToVm, [port])
    }
  }

  /** Powers on: starts the worker and opens every disk (filters open bottom-up). */
  async powerOn(): Promise<void> {
    if (this.state !== 'off') throw VmPoweredOn({ vm: this.name, action: 'power on' })
    this.services.canPowerOn(this.name)
    this.state = 'starting'
    this.spawn()
    this.startWatchdog()
    try {
      for (const d of this.disks.values()) {
        const specs = this.filterSpecs(d)
        this.linkDaemons(specs)
        await this.call({ t: 'open', rid: 0, disk: this.diskSpec(d), filters: specs })
      }
    } catch (e) {
      await this.terminate('crash', `power-on failed: ${(e as Error).message}`)
      throw e
    }
    if (this.worker === null) throw WorkerFailed({ vm: this.name, reason: this.lastPowerOff?.detail ?? 'the worker died while powering on' })
    this.state = 'on'
    this.services.changed()
  }

  /** Powers off: closes every disk (reason), writes back the drives' caches, ends the worker. */
  async powerOff(reason: CloseReason = 'power-off'): Promise<void> {
    if (this.state === 'off') return
    this.state = 'stopping'
    try {
      for (const d of this.disks.values()) await this.call({ t: 'close', rid: 0, disk: d.id, reason, flush: true })
    } catch {
      // a worker that dies while closing is powered off all the same
    }
    await this.terminate(reason === 'migrate' ? 'migrate' : reason === 'host-shutdown' ? 'host-shutdown' : 'power-off', reason)
  }

  /** Ends the worker at once: no close, no write-back (a crash of the VM or its host). */
  async terminate(reason: NonNullable<Vm['lastPowerOff']>['reason'] = 'crash', detail = 'terminated'): Promise<void> {
    const w = this.worker
    this.worker = null
    this.stopWatchdog()
    this.state = 'off'
    this.lastPowerOff = { at: Date.now(), reason, detail }
    this.failPending('EIO', detail)
    if (w !== null) await w.terminate()
    this.services.changed()
  }

  /** Kills the VM's worker as a crash would (for fault-isolation tests and checks). */
  async crash(): Promise<void> {
    const w = this.worker
    if (w === null) throw VmPoweredOff({ vm: this.name })
    await w.terminate()
  }

  /** Applies the resolved rules of a new policy to a disk of a running VM. */
  async reconfigureDisk(d: VmDisk): Promise<void> {
    const specs = this.filterSpecs(d)
    this.linkDaemons(specs)
    await this.call({ t: 'reconfigure', rid: 0, disk: d.id, filters: specs, detachFirst: [] })
  }

  private suspended: string[] = []

  /** Closes the instances of `filterId` with `upgrade`, holding guest I/O on their disks. */
  async suspendFilters(filterId: string): Promise<void> {
    for (const d of this.disks.values()) {
      if (!d.rules.some(r => r.info.id === filterId)) continue
      await this.call({ t: 'suspend', rid: 0, disk: d.id, filterIds: [filterId], reason: 'upgrade' })
      this.suspended.push(d.id)
    }
  }

  /** Reopens suspended instances under the disks' current rules and releases the held I/O. */
  async resumeFilters(): Promise<void> {
    const ids = this.suspended
    this.suspended = []
    for (const id of ids) {
      const d = this.disks.get(id)!
      const specs = this.filterSpecs(d)
      this.linkDaemons(specs)
      await this.call({ t: 'resume', rid: 0, disk: id, filters: specs })
    }
  }

  /** Runs attach or detach for a filter of a powered-off VM, in a short-lived worker. */
  async offlineCall(d: VmDisk, kind: 'attach' | 'detach', spec: FilterSpec): Promise<void> {
    if (this.state !== 'off') throw VmPoweredOn({ vm: this.name, action: `${kind} offline` })
    this.spawn()
    this.startWatchdog()
    try {
      this.linkDaemons([spec])
      await this.call({ t: 'open', rid: 0, disk: this.diskSpec(d), filters: [] })
      await this.call({ t: kind, rid: 0, disk: d.id, filter: spec })
      await this.call({ t: 'close', rid: 0, disk: d.id, reason: 'detach', flush: true })
    } finally {
      const w = this.worker
      this.worker = null
      this.stopWatchdog()
      this.failPending('ENODEV', 'offline worker ended')
      await w?.terminate()
    }
  }

  // ---- guest I/O ----

  /** Issues one guest I/O; never throws for I/O errors (they are results). */
  submit(disk: string, io: GuestIo): Promise<IoResult> {
    const w = this.worker
    if (w === null || this.state !== 'on') return Promise.resolve({ ok: false, error: 'ENODEV', ms: 0 })
    const rid = this.nextRid++
    const length = io.op === 'write' ? io.data?.length ?? 0 : io.length ?? 0
    if (this.pending.size === 0) this.lastHeard = performance.now()
    return new Promise(resolve => {
      this.pending.set(rid, { resolve: resolve as (v: unknown) => void, reject: () => {}, io: true, t0: performance.now() })
      w.postMessage({ t: 'io', rid, disk, op: io.op, offset: io.offset, length, data: io.op === 'write' ? io.data ?? null : null } satisfies ToVm)
    })
  }

  /** Runs many guest I/Os keeping `queueDepth` in flight; results in issue order. */
  async runIos(disk: string, ios: readonly GuestIo[], queueDepth = 32): Promise<IoResult[]> {
    const results: IoResult[] = new Array(ios.length)
    let next = 0
    const lane = async () => {
      while (next < ios.length) {
        const i = next++
        results[i] = await this.submit(disk, ios[i]!)
      }
    }
    await Promise.all(Array.from({ length: Math.max(1, Math.min(queueDepth, ios.length)) }, lane))
    return results
  }

  private async must(disk: string, io: GuestIo): Promise<Uint8Array | null> {
    const r = await this.submit(disk, io)
    if (!r.ok) throw new IoFailed(r.error, io.op, io.offset)
    return r.data
  }
  async read(disk: string, offset: number, length: number): Promise<Uint8Array> {
    return (await this.must(disk, { op: 'read', offset, length }))!
  }
  async write(disk: string, offset: number, data: Uint8Array): Promise<void> {
    await this.must(disk, { op: 'write', offset, data })
  }
  async flush(disk: string): Promise<void> {
    await this.must(disk, { op: 'flush', offset: 0, length: 0 })
  }
  async unmap(disk: string, offset: number, length: number): Promise<void> {
    await this.must(disk, { op: 'unmap', offset, length })
  }

  // ---- events, faults, measurements ----

  /** Delivers a disk event (guest I/O held and drained around it). */
  async event(disk: string, event: DiskEvent): Promise<void> {
    await this.call({ t: 'event', rid: 0, disk, event })
  }

  /** Stuns (holds I/O, tells the filters) or unstuns a disk. */
  async stun(disk: string, on: boolean): Promise<void> {
    await this.call({ t: 'stun', rid: 0, disk, on })
  }

  /** Injects a fault in the drive under the filters (null clears it). */
  async injectFault(disk: string, fault: DriveFault | null, seed = 1): Promise<void> {
    await this.call({ t: 'fault', rid: 0, disk, fault, seed })
  }

  async driveStats(disk: string): Promise<DriveStats & { dirtyBytes: number; inflight: number }> {
    return (await this.call({ t: 'drive-stats', rid: 0, disk })) as DriveStats & { dirtyBytes: number; inflight: number }
  }

  /** The worker's memory (after GC when asked) and its live resources. */
  async memory(gc = true): Promise<{ heapUsed: number; external: number; arrayBuffers: number; resources: string[] }> {
    if (gc) await this.services.gcDaemons()
    return (await this.call({ t: 'memory', rid: 0, gc })) as { heapUsed: number; external: number; arrayBuffers: number; resources: string[] }
  }

  /** Runs `run(handle, options)` of an ES module inside the VM's worker against one open disk. */
  async runInWorker<T = unknown>(disk: string, moduleUrl: string, options: unknown): Promise<T> {
    return (await this.call({ t: 'run', rid: 0, disk, module: moduleUrl, options })) as T
  }

  /** A copy of a disk taken under I/O: quiesce, `snapshot` to the filters, write back, capture. */
  async snapshot(disk: string): Promise<DiskSnapshot> {
    const d = this.disks.get(disk)
    if (d === undefined) throw DiskNotFound({ disk })
    if (this.state !== 'on') return DiskSnapshot.offline(d)
    const snapPath = d.path ? `${d.path}.snap-${Date.now()}` : undefined
    const r = (await this.call({ t: 'event', rid: 0, disk, event: 'snapshot', snapshotPath: snapPath })) as
      | { kind: 'memory'; sab: SharedArrayBuffer; pairs: number[] }
      | { kind: 'file'; path: string }
    if (r.kind === 'memory') return DiskSnapshot.fromBlocks(r.sab, r.pairs, d.capacity)
    const bytes = fs.readFileSync(r.path)
    fs.rmSync(r.path, { force: true })
    return DiskSnapshot.fromBytes(bytes, d.capacity)
  }

  /** Bytes held by the VM's memory disks. */
  memoryDiskBytes(): number {
    let n = 0
    for (const d of this.disks.values()) if (d.image) n += memoryImageBytes(d.image)
    return n
  }
}

/** A frozen copy of a disk's image. */
export class DiskSnapshot {
  private constructor(private readonly reader: (offset: number, length: number) => Uint8Array, readonly capacity: number) {}
  static fromBlocks(sab: SharedArrayBuffer, pairs: number[], capacity: number): DiskSnapshot {
    const index = new Map<number, number>()
    for (let i = 0; i < pairs.length; i += 2) index.set(pairs[i]!, pairs[i + 1]!)
    const view = new Uint8Array(sab)
    return new DiskSnapshot((offset, length) => {
      const out = new Uint8Array(length)
      let pos = 0
      while (pos < length) {
        const abs = offset + pos
        const b = Math.floor(abs / 4096)
        const inB = abs - b * 4096
        const n = Math.min(4096 - inB, length - pos)
        const slot = index.get(b)
        if (slot !== undefined) out.set(view.subarray(slot * 4096 + inB, slot * 4096 + inB + n), pos)
        pos += n
      }
      return out
    }, capacity)
  }
  static fromBytes(bytes: Uint8Array, capacity: number): DiskSnapshot {
    return new DiskSnapshot((o, l) => {
      const out = new Uint8Array(l)
      out.set(bytes.subarray(Math.min(o, bytes.length), Math.min(o + l, bytes.length)))
      return out
    }, capacity)
  }
  /** The image of a disk whose VM is off (everything written back). */
  static offline(d: VmDisk): DiskSnapshot {
    if (d.image) {
      const img = d.image
      const blocks = [...img.index.keys()]
      const sab = new SharedArrayBuffer(Math.max(1, blocks.length) * 4096)
      const view = new Uint8Array(sab)
      const pairs: number[] = []
      blocks.forEach((b, i) => {
        view.set(readMemoryImage(img, b * 4096, 4096), i * 4096)
        pairs.push(b, i)
      })
      return DiskSnapshot.fromBlocks(sab, pairs, d.capacity)
    }
    if (d.path === null) return DiskSnapshot.fromBytes(new Uint8Array(0), d.capacity)
    return DiskSnapshot.fromBytes(fs.readFileSync(d.path), d.capacity)
  }
  read(offset: number, length: number): Uint8Array {
    return this.reader(offset, length)
  }
}
