/**
 * Runs one nemesis schedule on a fresh two-host cluster and judges its invariants after every step
 * (and, for guest reads, as they complete):
 *
 * - every disk of a powered-on VM is read back whole: each sector holds what the disk model
 *   allows — the last completed write, or, after a power cut, what the last flush or clean close
 *   left or a write since (see model.ts); every read the guests issue meanwhile is judged the same
 *   way, so no read may return data older than the last completed write;
 * - no guest I/O fails, but for I/O caught by its own VM going down;
 * - no `open`, `close` or event call of the filter fails;
 * - with the replica judged (replication filters): every arrival keeps the replica a prefix of the
 *   write order (see replica.ts), and at each checkpoint the replica of every disk whose VM is on
 *   and whose site is up equals the disk within the catch-up bound.
 *
 * A violation is a NemesisFailure naming the step during or after which it was seen.
 */
import { isIofError, nowMs, Rng, type Cluster, type GuestIo, type IoResult, type RecoverySite, type Vm } from '../../harness/framework/index.js'
import type { CheckContext } from '../../harness/certify/context.js'
import { CheckFailure } from '../../harness/certify/check.js'
import { awaitReplica, catchUpBoundMs, rpoOf } from '../../harness/certify/replica.js'
import { DiskModel, GARBAGE, INITIAL, SECTOR, type SectorMismatch, type WriteRec } from './model.js'
import { ReplicaJudge, type OrderViolation } from './replica.js'
import { describeStep, HOSTS, type Schedule, type Step } from './schedule.js'

const MiB = 1 << 20
const POLICY = 'nemesis'
/** Filter faults that say an open, a close or an event failed. */
const LIFECYCLE_FAULTS = new Set(['open', 'close', 'event'])
/** The guest I/O timeout of a nemesis cluster, at least. */
const IO_TIMEOUT_MS = 15_000
/** The read size of a read-back right after an open. */
const FINE = 4096

/** How a schedule runs. */
export interface RunShape {
  /** Each VM's one disk, bytes. */
  readonly capacity: number
  readonly queueDepth: number
  /** Judge the replicas (replication filters). */
  readonly judgeReplica: boolean
  /** The cache size the policy asks for (cache filters that take one). */
  readonly cacheMiB: number
}

/** One step as it ran. */
export interface StepRecord {
  readonly n: number
  readonly step: string
  readonly startMs: number
  endMs: number
  /** Why it did nothing (a shrunk schedule's step that no longer applies). */
  skipped?: string
  /** Added at the end of a shrunk schedule to bring the site back, the VMs on, and compare. */
  closing?: boolean
}

/** What a schedule did. */
export interface ScheduleOutcome {
  readonly steps: StepRecord[]
  readonly ios: number
  readonly writes: number
  readonly arrivals: number
  readonly checkpoints: number
  readonly ms: number
}

/** A violation seen while a schedule ran. */
export class NemesisFailure extends CheckFailure {
  constructor(message: string, evidence: Record<string, unknown>, readonly stepIndex: number, readonly steps: StepRecord[], readonly invariant: string) {
    super(message, evidence)
  }
}

interface Guest {
  readonly name: string
  readonly disk: string
  readonly model: DiskModel
  /** No new I/O while a transition takes its VM down and until it is read back. */
  hold: boolean
  /** Bumped when a transition of its VM begins and ends: I/O that spans one may fail. */
  gen: number
  transitioning: boolean
  /** Hosts whose daemon may have held its disk's backlog since its last checkpoint. */
  daemonHosts: Set<string>
}

interface Burst {
  completed: number
  done: Promise<void>
}

/** A guest I/O drawn for a burst, before its range is taken. */
interface Draft {
  readonly op: 'write' | 'read' | 'unmap' | 'flush'
  readonly offset: number
  readonly length: number
  readonly data: Uint8Array | null
}

/** A planned I/O of a burst. */
interface Planned {
  readonly io: GuestIo
  readonly w: WriteRec | null
  readonly offset: number
  readonly length: number
}

const sleep = (ms: number) => new Promise<void>(res => setTimeout(res, Math.max(0, ms)))

function hashName(s: string): number {
  let h = 2166136261
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0
  return h
}

const round = (v: number) => Math.round(v * 10) / 10

class ScheduleRun {
  private c!: Cluster
  private site: RecoverySite | null = null
  private judge: ReplicaJudge | null = null
  private readonly guests = new Map<string, Guest>()
  private readonly models = new Map<string, DiskModel>()
  private readonly down = new Set<string>()
  private failure: NemesisFailure | null = null
  private stepNo = 0
  private readonly t0 = nowMs()
  readonly records: StepRecord[] = []
  private ios = 0
  private checkpoints = 0
  private readonly faultsSeen = new WeakMap<object, number>()
  private readonly prefix: string
  private readonly bound: number

  constructor(private readonly ctx: CheckContext, private readonly sched: Schedule, private readonly shape: RunShape) {
    this.prefix = `${ctx.subject.vendor}_${ctx.subject.name}_`
    this.bound = catchUpBoundMs(rpoOf(ctx.rule({ rpoSeconds: 2 })))
  }

  private rel(t: number): number {
    return round(t - this.t0)
  }

  // ---- failures ----

  private stepText(n: number): string {
    const r = this.records[n - 1]
    if (r === undefined) return 'the set-up'
    return r.closing === true ? `step ${n}, added to close the schedule (${r.step})` : `step ${n} of ${this.sched.steps.length} (${r.step})`
  }

  /** A failure seen during the current step: the first one wins, and stops the guests. */
  private fail(invariant: string, message: string, evidence: Record<string, unknown>, when: 'during' | 'after' = 'during'): NemesisFailure {
    if (this.failure !== null) return this.failure
    const n = this.stepNo
    this.failure = new NemesisFailure(`${when} ${this.stepText(n)}: ${message}`, evidence, n, this.records, invariant)
    return this.failure
  }

  private check(): void {
    if (this.failure !== null) throw this.failure
  }

  private writeText(w: WriteRec): string {
    return `${w.op === 'unmap' ? 'unmap' : 'write'} #${w.seq} (${w.length} bytes at offset ${w.offset}, issued in step ${w.step}${Number.isNaN(w.completedAt) ? '' : `, ${w.ok ? 'completed' : 'failed'} at +${this.rel(w.completedAt)} ms`})`
  }

  private identityText(m: DiskModel, id: number): string {
    if (id === INITIAL) return 'zeros (never written)'
    if (id === GARBAGE) return 'bytes no write put there'
    return m.writes[id] ? this.writeText(m.writes[id]!) : `write #${id}`
  }

  private describeWrite(w: WriteRec): Record<string, unknown> {
    return { seq: w.seq, op: w.op, offset: w.offset, length: w.length, step: w.step, issuedAtMs: this.rel(w.issuedAt), completedAtMs: Number.isNaN(w.completedAt) ? null : this.rel(w.completedAt), ok: w.ok }
  }

  private mismatchFailure(g: Guest, mm: SectorMismatch, what: string): NemesisFailure {
    const m = g.model
    const want = mm.allowed.map(id => this.identityText(m, id))
    const found = this.identityText(m, mm.found)
    const older = mm.found >= 0 && mm.allowed.every(id => id > mm.found)
    const fw = mm.found >= 0 ? m.writes[mm.found]! : null
    const sc = m.settledCrash
    // a newer write than what a read right after a power cut found there, with nothing written since: one of the two reads was stale
    const changed = fw !== null && fw.ok === true && sc !== null && fw.completedAt < sc.at && mm.allowed.every(id => id < mm.found)
    const message = changed
      ? `${what} ${g.disk} at offset ${mm.offset} returned ${found}, but the read-back right after the power cut of step ${sc!.step} found ${want.join(' or ')} there and nothing has been written there since: the sector's bytes changed without a write (one of the two reads was served from stale state)`
      : `${what} ${g.disk} at offset ${mm.offset} returned ${found} — ${older ? 'older than' : 'not'} ${want.length === 1 ? want[0] : `any of ${want.join('; ')}`}, which the disk must hold there${m.crashed ? ' (a power cut may lose only writes no flush or clean close had covered)' : ''}`
    return this.fail(older ? 'stale-data' : 'disk-data', message, {
      vm: g.name, disk: g.disk, offset: mm.offset, expected: mm.expectedHex, found: mm.foundHex, afterPowerCut: m.crashed,
      allowed: mm.allowed.map(id => (id < 0 ? id : this.describeWrite(m.writes[id]!))),
      foundWrite: mm.found < 0 ? mm.found : this.describeWrite(m.writes[mm.found]!),
      historyOfSector: m.history(mm.offset / SECTOR).slice(-6).map(w => this.describeWrite(w)),
    })
  }

  // ---- set-up ----

  async setUp(): Promise<void> {
    const ctx = this.ctx
    // an I/O timeout well above a loaded machine's stalls: the invariants here are about data, not latency
    this.c = await ctx.cluster({ hosts: HOSTS.length, ioTimeoutMs: Math.max(ctx.thresholds.ioTimeoutMs, IO_TIMEOUT_MS) })
    this.c.createPolicy({ name: POLICY, rules: [ctx.rule({ rpoSeconds: 2, cacheMiB: this.shape.cacheMiB })] })
    for (const v of this.sched.vms) {
      const h = this.c.host(v.host)
      h.createVm(v.name)
      const disk = (await h.addDisk(v.name, { id: `${v.name}-disk0`, capacity: this.shape.capacity, backing: 'file' })).id
      const model = new DiskModel(disk, this.shape.capacity)
      this.models.set(disk, model)
      this.guests.set(v.name, { name: v.name, disk, model, hold: false, gen: 0, transitioning: false, daemonHosts: new Set([v.host]) })
    }
    this.site = this.c.site('dr') ?? null
    if (this.shape.judgeReplica && this.site !== null) this.judge = new ReplicaJudge(this.site, this.models, () => this.stepNo)
    await Promise.all(this.sched.vms.map(async v => {
      const h = this.c.host(v.host)
      await h.vm(v.name).powerOn()
      // applied to the running VM, as an administrator does: attached and opened in its worker
      await h.setPolicy(v.name, this.guests.get(v.name)!.disk, POLICY)
    }))
  }

  async tearDown(): Promise<void> {
    try {
      await this.c?.shutdown({ remove: true })
    } catch {
      // what a faulty filter left behind must not hide the result
    }
  }

  private vmOf(g: Guest): Vm | undefined {
    return this.c.findVm(g.name)
  }

  private isOn(g: Guest): boolean {
    return this.vmOf(g)?.state === 'on'
  }

  private hostOf(g: Guest): string {
    return this.c.hostOf(g.name).name
  }

  // ---- guest I/O ----

  /**
   * A seeded source for a guest in the current step: the same sub-seed, step and VM give the same
   * guest I/O, whatever the timing.
   */
  private rngFor(g: Guest, salt: string): Rng {
    return new Rng(hashName(`${this.sched.subSeed}:${this.stepNo}:${g.name}:${salt}`))
  }

  /** The next guest I/O of a burst: a write, read, unmap (now and then of a whole aligned MiB) or flush. */
  private draft(rng: Rng): Draft {
    const cap = this.shape.capacity
    const r = rng.float()
    if (r < 0.05) return { op: 'flush', offset: 0, length: 0, data: null }
    const op: Draft['op'] = r < 0.1 ? 'unmap' : r < 0.4 ? 'read' : 'write'
    let sectors = rng.float() < 0.8 ? 1 + rng.int(16) : 1 + rng.int(128)
    let offset: number
    if (op === 'unmap' && cap >= 2 * MiB && rng.float() < 0.1) {
      sectors = MiB / SECTOR
      offset = rng.int(cap / MiB) * MiB
    } else {
      const span = rng.float() < 0.5 ? Math.min(cap, 512 * 1024) : cap
      sectors = Math.min(sectors, span / SECTOR)
      offset = rng.int(span / SECTOR - sectors + 1) * SECTOR
    }
    const length = sectors * SECTOR
    return { op, offset, length, data: op === 'write' ? rng.fill(new Uint8Array(length)) : null }
  }

  /** The draft as an I/O, its range taken; null while part of it is in flight. */
  private plan(g: Guest, d: Draft): Planned | null {
    if (d.op === 'flush') return { io: { op: 'flush', offset: 0, length: 0 }, w: null, offset: 0, length: 0 }
    if (!g.model.reserve(d.offset, d.length)) return null
    if (d.op === 'read') return { io: { op: 'read', offset: d.offset, length: d.length }, w: null, offset: d.offset, length: d.length }
    const w = g.model.issue(d.offset, d.length, d.data, this.stepNo)
    return { io: d.op === 'write' ? { op: 'write', offset: d.offset, data: d.data! } : { op: 'unmap', offset: d.offset, length: d.length }, w, offset: d.offset, length: d.length }
  }

  /** Guest I/O on one VM, `count` I/Os at the run's queue depth. Ends early when `settled()` and the VM is off. */
  private burst(g: Guest, count: number, settled: () => boolean): Burst {
    const b: Burst = { completed: 0, done: Promise.resolve() }
    const rng = this.rngFor(g, 'io')
    b.done = (async () => {
      let issued = 0
      let inflight = 0
      let next: Draft | null = null
      let wake: (() => void) | null = null
      const waitOne = () => new Promise<void>(res => { wake = res })
      while (issued < count && this.failure === null) {
        const vm = this.vmOf(g)
        if (vm === undefined || vm.state !== 'on' || g.hold) {
          if (settled() && inflight === 0 && !g.hold && (vm === undefined || vm.state === 'off')) break
          await sleep(2)
          continue
        }
        if (inflight >= this.shape.queueDepth) {
          await waitOne()
          continue
        }
        next ??= this.draft(rng)
        // an I/O overlapping one in flight waits for it, so the I/O stream does not depend on timing
        const p = this.plan(g, next)
        if (p === null) {
          if (inflight > 0) await waitOne()
          else await sleep(1)
          continue
        }
        next = null
        issued++
        inflight++
        this.ios++
        const gen = g.gen
        const spanning = g.transitioning
        const issuedAt = nowMs()
        void vm.submit(g.disk, p.io).then(r => {
          inflight--
          b.completed++
          this.finish(g, p, r, issuedAt, spanning || g.transitioning || g.gen !== gen)
          const w = wake
          wake = null
          w?.()
        })
      }
      while (inflight > 0) await waitOne()
    })()
    return b
  }

  private finish(g: Guest, p: Planned, r: IoResult, issuedAt: number, excused: boolean): void {
    const m = g.model
    if (p.io.op === 'flush') {
      if (r.ok) m.coverBefore(issuedAt)
      else if (!excused) this.ioFailed(g, p, r)
      return
    }
    if (p.w !== null) m.complete(p.w, r.ok)
    m.release(p.offset, p.length)
    if (!r.ok) {
      if (!excused) this.ioFailed(g, p, r)
      return
    }
    if (p.io.op !== 'read') return
    const mm = m.judgeRead(p.offset, r.data!)
    if (mm !== null) this.mismatchFailure(g, mm, 'a guest read of')
  }

  private ioFailed(g: Guest, p: Planned, r: IoResult): void {
    const e = (r as { error: string }).error
    const down = this.down.has(g.name) ? ' while its recovery site was down (an unreachable site must not fail guest I/O)' : ''
    this.fail('guest-error', `a guest ${p.io.op}${p.io.op === 'flush' ? '' : ` of ${p.length} bytes at offset ${p.offset}`} on ${g.disk} failed with ${e}${down}`, { vm: g.name, disk: g.disk, op: p.io.op, offset: p.offset, length: p.length, error: e })
  }

  /**
   * Reads a guest's whole disk back and judges it; returns its bytes. Right after an open, in
   * 4 KiB reads in a seeded order, which a cache serves from what it holds (a larger read would
   * miss on any block it lacks and bring the disk's bytes instead); otherwise in 1 MiB reads.
   */
  private async verify(g: Guest, what: string, o: { fine?: boolean } = {}): Promise<Uint8Array> {
    const vm = this.vmOf(g)!
    const out = new Uint8Array(this.shape.capacity)
    const step = o.fine === true ? FINE : MiB
    const offsets = Array.from({ length: Math.ceil(out.length / step) }, (_, i) => i * step)
    // in a seeded order: a cache that filled up at open would evict, as a scan from one end misses,
    // what it loaded before the scan got there
    if (o.fine === true) this.rngFor(g, 'read-back').shuffle(offsets)
    const lanes = o.fine === true ? 32 : 1
    let next = 0
    const lane = async () => {
      while (next < offsets.length) {
        const pos = offsets[next++]!
        const n = Math.min(step, out.length - pos)
        const r = await vm.submit(g.disk, { op: 'read', offset: pos, length: n })
        if (!r.ok) throw this.fail('guest-error', `${what}: a read of ${n} bytes at offset ${pos} of ${g.disk} failed with ${r.error}`, { vm: g.name, disk: g.disk, offset: pos, length: n, error: r.error })
        out.set(r.data!, pos)
      }
    }
    await Promise.all(Array.from({ length: lanes }, lane))
    const mm = g.model.judgeRead(0, out, { whole: true, step: this.stepNo })
    if (mm !== null) throw this.mismatchFailure(g, mm, `${what}: a read of`)
    return out
  }

  // ---- transitions ----

  private begin(gs: readonly Guest[]): void {
    for (const g of gs) {
      g.hold = true
      g.transitioning = true
      g.gen++
    }
  }

  private end(gs: readonly Guest[]): void {
    for (const g of gs) {
      g.hold = false
      g.transitioning = false
      g.gen++
    }
  }

  private onHost(host: string): Guest[] {
    return [...this.guests.values()].filter(g => this.isOn(g) && this.hostOf(g) === host)
  }

  /** A replicated disk's order is not judged until its next checkpoint. */
  private entitle(g: Guest, why: string): void {
    this.judge?.entitle(g.disk, this.stepNo, why)
  }

  /** A close of g's disk: durable; and when its site is down, its backlog may be dropped. */
  private closed(g: Guest, how: string): void {
    g.model.coverBefore(nowMs())
    if (this.down.has(g.name)) this.entitle(g, `${how} while its site was down`)
  }

  private async powerOn(g: Guest, what: string): Promise<void> {
    const vm = this.vmOf(g)!
    try {
      await vm.powerOn()
    } catch (e) {
      if (isIofError(e)) throw this.fail('power-on', `${what}: ${g.name} could not power on: ${e.message}`, { vm: g.name, code: e.code, ...e.details, faults: vm.faults.slice(-5) })
      throw e
    }
    g.daemonHosts.add(this.hostOf(g))
  }

  /** A power cut of `host`: its VMs crash, its daemons die; it is down `downMs`, then restarts. */
  private async cut(host: string, downMs: number, seed: number, crashed: readonly Guest[]): Promise<void> {
    await this.c.crashHost(host, { seed })
    for (const g of crashed) g.model.crashed = true
    for (const g of this.guests.values()) if (g.daemonHosts.has(host)) this.entitle(g, `${host} lost power${crashed.includes(g) ? ` with ${g.name} running on it` : ' (its daemon may have held the backlog)'}`)
    await sleep(downMs)
    await this.c.restartHost(host)
    const h = this.c.host(host)
    const fault = h.faults.find(f => f.filter === this.ctx.info.id)
    if (fault !== undefined) throw this.fail('daemon', `after ${host} restarted, its daemon of the filter failed: ${fault.message}`, { host, fault })
  }

  /** Runs a step's transition (with its guests' I/O around it when it has any). Returns why it was skipped, if it was. */
  private async transition(step: Step): Promise<string | null> {
    const g = step.vm === undefined ? undefined : this.guests.get(step.vm)
    switch (step.kind) {
      case 'burst':
      case 'checkpoint':
        return null
      case 'power-off': {
        if (!this.isOn(g!)) return `${g!.name} is off`
        this.begin([g!])
        await this.vmOf(g!)!.powerOff()
        this.closed(g!, 'closed (power-off)')
        this.end([g!])
        return null
      }
      case 'power-on': {
        if (this.isOn(g!)) return `${g!.name} is on`
        this.begin([g!])
        await this.powerOn(g!, 'power-on')
        await this.verify(g!, `after ${g!.name} powered on`, { fine: true })
        this.end([g!])
        return null
      }
      case 'migrate': {
        const from = this.hostOf(g!)
        const to = step.host ?? (from === HOSTS[0] ? HOSTS[1] : HOSTS[0])
        if (from === to) return `${g!.name} is on ${to} already`
        const wasOn = this.isOn(g!)
        this.begin([g!])
        await this.c.migrateVm(g!.name, to)
        if (wasOn) {
          this.closed(g!, `closed (migrate from ${from})`)
          g!.daemonHosts.add(to)
          await this.verify(g!, `after ${g!.name} moved from ${from} to ${to}`, { fine: true })
        }
        this.end([g!])
        return null
      }
      case 'reboot-host': {
        const host = step.host!
        const running = this.onHost(host)
        this.begin(running)
        await this.c.rebootHost(host)
        for (const x of running) this.closed(x, `closed (${host} restarted)`)
        const h = this.c.host(host)
        const fault = h.faults.find(f => f.filter === this.ctx.info.id)
        if (fault !== undefined) throw this.fail('daemon', `after ${host} restarted, its daemon of the filter failed: ${fault.message}`, { host, fault })
        for (const x of running) {
          await this.powerOn(x, `after ${host} restarted`)
          await this.verify(x, `after ${host} restarted and ${x.name} powered on again`, { fine: true })
        }
        this.end(running)
        return null
      }
      case 'crash-host': {
        const host = step.host!
        const running = this.onHost(host)
        this.begin(running)
        await this.cut(host, step.downMs ?? 0, step.cutSeed ?? 1, running)
        for (const x of running) {
          await this.powerOn(x, `after ${host}'s power cut`)
          await this.verify(x, `after ${host}'s power cut and ${x.name} powered on again`, { fine: true })
        }
        this.end(running)
        return null
      }
      case 'close-crash': {
        if (!this.isOn(g!)) return `${g!.name} is off`
        const host = this.hostOf(g!)
        const others = this.onHost(host).filter(x => x !== g)
        this.begin([g!, ...others])
        await this.vmOf(g!)!.powerOff()
        this.closed(g!, 'closed (power-off)')
        await this.cut(host, step.downMs ?? 0, step.cutSeed ?? 1, others)
        for (const x of others) {
          await this.powerOn(x, `after ${host}'s power cut`)
          await this.verify(x, `after ${host}'s power cut and ${x.name} powered on again`, { fine: true })
        }
        this.end([g!, ...others])
        return null
      }
      case 'vm-crash': {
        if (!this.isOn(g!)) return `${g!.name} is off`
        this.begin([g!])
        const vm = this.vmOf(g!)!
        await vm.crash()
        for (let i = 0; i < 500 && vm.state !== 'off'; i++) await sleep(2)
        g!.model.crashed = true
        this.entitle(g!, `${g!.name}'s worker died`)
        await this.powerOn(g!, `after ${g!.name}'s worker died`)
        await this.verify(g!, `after ${g!.name}'s worker died and it powered on again`, { fine: true })
        this.end([g!])
        return null
      }
      case 'site-down': {
        for (const v of step.vms ?? []) {
          const x = this.guests.get(v)!
          this.site?.setFault(x.disk, { down: true })
          this.down.add(v)
        }
        return this.site === null ? 'the cluster has no recovery site' : null
      }
      case 'site-up': {
        if (this.down.size === 0) return 'the site is up'
        for (const v of this.down) this.site?.setFault(this.guests.get(v)!.disk, null)
        this.down.clear()
        return null
      }
      case 'stun': {
        if (!this.isOn(g!)) return `${g!.name} is off`
        const vm = this.vmOf(g!)!
        await vm.stun(g!.disk, true)
        await sleep(step.holdMs ?? 100)
        await vm.stun(g!.disk, false)
        return null
      }
      case 'snapshot': {
        if (!this.isOn(g!)) return `${g!.name} is off`
        await this.snapshot(g!)
        return null
      }
      case 'detach':
        // handled by runStep: it spans the step's I/O
        return null
    }
  }

  /** The guest trims a whole aligned MiB of its disk (beside its other I/O). */
  private async trim(g: Guest): Promise<void> {
    const m = g.model
    const offset = this.rngFor(g, 'trim').int(Math.max(1, Math.floor(this.shape.capacity / MiB))) * MiB
    const length = Math.min(MiB, this.shape.capacity - offset)
    while (!m.reserve(offset, length)) await sleep(1)
    const w = m.issue(offset, length, null, this.stepNo)
    const gen = g.gen
    const r = await this.vmOf(g)!.submit(g.disk, { op: 'unmap', offset, length })
    m.complete(w, r.ok)
    m.release(offset, length)
    if (!r.ok && !g.transitioning && g.gen === gen) this.ioFailed(g, { io: { op: 'unmap', offset, length }, w, offset, length }, r)
    this.ios++
  }

  /** A snapshot under I/O: every sector holds what the disk held when it began, or a write issued before it ended. */
  private async snapshot(g: Guest): Promise<void> {
    const m = g.model
    const firstNew = m.writes.length
    const allowed = Array.from({ length: m.sectors }, (_, s) => m.allowed(s))
    const began = nowMs()
    const img = await this.vmOf(g)!.snapshot(g.disk)
    const ended = nowMs()
    const bytes = img.read(0, this.shape.capacity)
    for (let s = 0; s < m.sectors; s++) {
      const b = bytes.subarray(s * SECTOR, (s + 1) * SECTOR)
      if (allowed[s]!.some(a => m.holds(a, s, b))) continue
      const id = m.identify(s, b)
      if (id >= firstNew && m.writes[id]!.issuedAt <= ended) continue
      throw this.fail('snapshot', `a snapshot of ${g.disk} taken under I/O holds ${this.identityText(m, id)} at offset ${s * SECTOR}, where the disk held ${allowed[s]!.map(a => this.identityText(m, a)).join(' or ')} when the snapshot began at +${this.rel(began)} ms: a snapshot holds every write completed before it began and none issued after it ended`, {
        vm: g.name, disk: g.disk, offset: s * SECTOR, snapshotBeganAtMs: this.rel(began), snapshotEndedAtMs: this.rel(ended), found: id < 0 ? id : this.describeWrite(m.writes[id]!),
      })
    }
  }

  /** Runs one step: its guests' I/O, its transition at its point, then the invariants. */
  async runStep(step: Step, n: number, closing = false): Promise<void> {
    this.stepNo = n
    const rec: StepRecord = { n, step: describeStep(step), startMs: this.rel(nowMs()), endMs: 0, ...(closing ? { closing: true } : {}) }
    this.records.push(rec)
    let settled = step.ios === 0
    const target = step.vm === undefined ? undefined : this.guests.get(step.vm)
    const on = [...this.guests.values()].filter(g => this.isOn(g))
    const bursts = step.ios > 0 ? on.map(g => ({ g, b: this.burst(g, step.ios, () => settled) })) : []
    const progress = () => {
      const mine = bursts.find(x => x.g === target)
      return mine !== undefined ? mine.b.completed : Math.min(...bursts.map(x => x.b.completed))
    }
    const done = Promise.all(bursts.map(x => x.b.done))
    let ended = false
    void done.then(() => { ended = true })
    const reach = async (count: number) => {
      while (!ended && this.failure === null && progress() < count) await sleep(1)
    }
    try {
      if (step.kind === 'detach') {
        if (target === undefined || !this.isOn(target)) rec.skipped = `${step.vm} is off`
        else {
          await reach(step.at)
          const h = this.c.hostOf(target.name)
          await h.setPolicy(target.name, target.disk, null)
          this.entitle(target, `its policy was taken off and applied again`)
          if (step.trim === true) await this.trim(target)
          await reach(step.at + Math.ceil((step.ios - step.at) / 2))
          await this.c.hostOf(target.name).setPolicy(target.name, target.disk, POLICY)
        }
      } else if (step.kind !== 'burst' && step.kind !== 'checkpoint') {
        await reach(step.at)
        this.check()
        const skipped = await this.transition(step)
        if (skipped !== null) rec.skipped = skipped
      }
    } catch (e) {
      settled = true
      await done
      rec.endMs = this.rel(nowMs())
      if (e instanceof NemesisFailure) throw e
      if (this.failure !== null) throw this.failure
      if (e instanceof CheckFailure) throw this.fail('transition', e.message, e.evidence)
      if (isIofError(e)) throw this.fail('transition', `${rec.step} failed: ${e.message}`, { code: e.code, ...e.details })
      throw e
    }
    settled = true
    await done
    try {
      this.check()
      if (step.kind === 'checkpoint') await this.checkpoint()
      await this.afterStep()
    } finally {
      rec.endMs = this.rel(nowMs())
    }
  }

  /** The invariants after every step. */
  private async afterStep(): Promise<void> {
    for (const g of this.guests.values()) {
      if (!this.isOn(g)) continue
      await this.verify(g, 'a read-back')
    }
    this.faults()
    if (this.judge === null) return
    for (const g of this.guests.values()) {
      const v = this.judge.judge(g.disk)
      if (v !== null) throw this.orderFailure(g, v)
    }
  }

  private faults(): void {
    for (const h of this.c.hosts.values()) {
      for (const vm of new Set([...h.vmHistory, ...h.vms.values()])) {
        const seen = this.faultsSeen.get(vm) ?? 0
        const fresh = vm.faults.slice(seen).find(f => f.filter.startsWith(this.prefix) && LIFECYCLE_FAULTS.has(f.kind))
        this.faultsSeen.set(vm, vm.faults.length)
        if (fresh !== undefined) {
          throw this.fail('filter-fault', `the filter failed ${fresh.kind === 'event' ? 'a disk event' : `${fresh.kind}()`} on ${vm.name}${fresh.disk ? `'s ${fresh.disk}` : ''}: ${fresh.message}`, { vm: vm.name, fault: { kind: fresh.kind, disk: fresh.disk, message: fresh.message } }, 'after')
        }
      }
      const daemon = h.faults.slice(this.faultsSeen.get(h) ?? 0).find(f => f.filter === this.ctx.info.id)
      this.faultsSeen.set(h, h.faults.length)
      if (daemon !== undefined) throw this.fail('daemon', `the filter's daemon on ${h.name} failed: ${daemon.message}`, { host: h.name, fault: daemon }, 'after')
    }
  }

  private orderFailure(g: Guest, v: OrderViolation): NemesisFailure {
    const m = g.model
    const a = v.arrival
    const when = `at +${this.rel(a.at)} ms (arrival #${v.index}, during step ${a.step})`
    const base = { vm: g.name, disk: g.disk, arrival: { index: v.index, atMs: this.rel(a.at), step: a.step, offset: a.offset, length: a.length }, epochBeganAtStep: v.epochStep }
    if (v.kind === 'garbage') {
      return this.fail('replica-order', `${g.disk}'s replica received bytes no guest write put there ${when}: sector ${v.offset} of ${a.length} bytes at offset ${a.offset}`, { ...base, offset: v.offset }, 'after')
    }
    if (v.kind === 'regression') {
      return this.fail('replica-order', `${g.disk}'s replica went back in time ${when}: offset ${v.offset} received ${this.identityText(m, v.carried!)}, older than ${this.identityText(m, v.base!)}, which the replica held there since it equalled the disk at step ${v.epochStep}`, { ...base, offset: v.offset, carried: v.carried! < 0 ? v.carried : this.describeWrite(m.writes[v.carried!]!), held: v.base! < 0 ? v.base : this.describeWrite(m.writes[v.base!]!) }, 'after')
    }
    const later = this.judge!.arrivedAt(g.disk, v.missing!)
    const fate = later === null || later.at <= a.at ? 'it has not arrived since' : `it arrived later, at +${this.rel(later.at)} ms`
    return this.fail('replica-order', `${g.disk}'s replica was not a prefix of the write order ${when}: ${this.writeText(v.applied!)} was applied, but ${this.writeText(v.missing!)}, which completed to the guest before the first was issued, was not (${fate})`, {
      ...base, applied: this.describeWrite(v.applied!), missing: this.describeWrite(v.missing!), missingArrivedAtMs: later === null ? null : this.rel(later.at),
    }, 'after')
  }

  /** Quiesced: flush every powered-on guest; with replicas judged, each must catch up and equal its disk. */
  private async checkpoint(): Promise<void> {
    this.checkpoints++
    for (const g of this.guests.values()) {
      if (!this.isOn(g)) continue
      const t = nowMs()
      const r = await this.vmOf(g)!.submit(g.disk, { op: 'flush', offset: 0, length: 0 })
      if (!r.ok) throw this.fail('guest-error', `the checkpoint's flush of ${g.disk} failed with ${r.error}`, { vm: g.name, disk: g.disk, error: r.error }, 'after')
      g.model.coverBefore(t)
    }
    if (this.judge === null) return
    const quiet = nowMs()
    for (const g of this.guests.values()) {
      if (!this.isOn(g) || this.down.has(g.name)) continue
      const bytes = await this.verify(g, 'the checkpoint\'s read-back')
      const caught = await awaitReplica(this.site!, g.disk, 0, bytes, this.bound)
      if (!caught.caughtUp) {
        const d = caught.difference!
        const m = g.model
        const holders = m.history(d.offset / SECTOR)
        const last = holders.filter(w => w.ok === true).at(-1)
        const entitled = this.judge.entitlements(g.disk)
        throw this.fail('replica-equal', `${round(nowMs() - quiet)} ms after the guests quiesced, with its site up, ${g.disk}'s replica still differs from the disk at offset ${d.offset}${last ? ` (last written by ${this.writeText(last)})` : ''}${entitled.length > 0 ? `; since it last equalled the disk: ${entitled.map(x => `step ${x.step}: ${x.why}`).join('; ')}` : ''}`, {
          vm: g.name, disk: g.disk, offset: d.offset, expected: d.expected, found: d.found, boundMs: this.bound, arrivals: caught.arrivals,
          ...(last ? { lastWriteThere: this.describeWrite(last) } : {}), sinceLastEqual: entitled,
        }, 'after')
      }
      this.judge.checkpoint(g.disk, g.model.identities(), this.stepNo)
      g.daemonHosts = new Set([this.hostOf(g)])
    }
  }

  /** Steps a shrunk schedule lacks at its end: the site back, every VM on, a last checkpoint. */
  closingSteps(): Step[] {
    const out: Step[] = []
    const steps = this.sched.steps
    const last = steps.at(-1)
    if (this.down.size > 0) out.push({ kind: 'site-up', ios: 0, at: 0 })
    for (const g of this.guests.values()) if (!this.isOn(g)) out.push({ kind: 'power-on', vm: g.name, ios: 0, at: 0 })
    if (out.length > 0 || last?.kind !== 'checkpoint') out.push({ kind: 'checkpoint', ios: 0, at: 0 })
    return out
  }

  outcome(): ScheduleOutcome {
    let writes = 0
    for (const m of this.models.values()) writes += m.writes.length
    let arrivals = 0
    if (this.judge !== null) for (const g of this.guests.values()) arrivals += this.judge.count(g.disk)
    return { steps: this.records, ios: this.ios, writes, arrivals, checkpoints: this.checkpoints, ms: round(nowMs() - this.t0) }
  }
}

/**
 * Runs a schedule: sets up its cluster, runs its steps and the closing ones, and tears it down.
 * Throws a NemesisFailure at the first violation.
 */
export async function runSchedule(ctx: CheckContext, sched: Schedule, shape: RunShape): Promise<ScheduleOutcome> {
  const run = new ScheduleRun(ctx, sched, shape)
  try {
    await run.setUp()
    let n = 0
    for (const s of sched.steps) await run.runStep(s, ++n)
    for (const s of run.closingSteps()) await run.runStep(s, ++n, true)
    return run.outcome()
  } finally {
    await run.tearDown()
  }
}
