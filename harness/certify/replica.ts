/**
 * What a replication check knows of one disk: the guest's writes with their epoch-ms times, and
 * what each write the recovery site received carried. From that it replays write-order fidelity
 * arrival by arrival, measures each write's lag, and waits for a replica to catch up.
 *
 * A filter may ship a write as it was, split it, join writes that touch into one site write, or
 * copy a whole region from the disk; so arrivals are judged sector by sector. While a check runs,
 * a recorder sees every payload the site is given and notes, for each sector, which guest write's
 * bytes it carries (or zeros, or bytes no write put there).
 *
 * The workloads here never have two overlapping writes in flight at once, so for any two writes
 * that share a sector the one issued later was issued after the other completed: a write's
 * sequence number (its issue order) then orders the writes of every sector.
 */
import { hashBytes, nowMs, type Arrival, type GuestIo, type PolicyRule, type RecoverySite, type Rng, type Vm } from '../framework/index.js'
import { pacedLoad, type PacedOptions, type PacedRun } from './paced.js'
import { CheckFailure } from './check.js'
import { firstDifference } from './workloads.js'

const SECTOR = 512
const BLOCK = 4096
/** A sector of zeros: nothing written there (or an unmap). */
const ZEROS = -1
/** A sector holding bytes that no guest write put there. */
const GARBAGE = -2

/** One guest write as the check issued it. */
export interface GuestWrite {
  /** Issue order on the disk, from 0. */
  readonly seq: number
  readonly offset: number
  readonly length: number
  readonly data: Uint8Array
  readonly issuedAt: number
  /** Epoch ms the guest saw it complete; NaN while in flight. */
  completedAt: number
  ok: boolean
}

/** The writes issued to one disk, findable by the sectors they cover. */
export class WriteLog {
  readonly writes: GuestWrite[] = []
  private readonly byBlock = new Map<number, GuestWrite[]>()

  constructor(readonly disk: string, readonly capacity: number) {}

  /** Records a write about to be issued. */
  issue(offset: number, data: Uint8Array, issuedAt = nowMs()): GuestWrite {
    const w: GuestWrite = { seq: this.writes.length, offset, length: data.length, data, issuedAt, completedAt: NaN, ok: false }
    this.writes.push(w)
    for (let b = Math.floor(offset / BLOCK); b * BLOCK < offset + data.length; b++) {
      let list = this.byBlock.get(b)
      if (list === undefined) this.byBlock.set(b, (list = []))
      list.push(w)
    }
    return w
  }

  complete(w: GuestWrite, ok: boolean, at = nowMs()): void {
    w.completedAt = at
    w.ok = ok
  }

  /** The writes that completed to the guest, in completion order. */
  completed(): GuestWrite[] {
    return this.writes.filter(w => w.ok).sort((a, b) => a.completedAt - b.completedAt || a.seq - b.seq)
  }

  /** Writes touching [offset, offset + length), each once. */
  overlapping(offset: number, length: number): GuestWrite[] {
    const out = new Set<GuestWrite>()
    for (let b = Math.floor(offset / BLOCK); b * BLOCK < offset + length; b++) {
      for (const w of this.byBlock.get(b) ?? []) if (w.offset < offset + length && offset < w.offset + w.length) out.add(w)
    }
    return [...out]
  }

  /** For each sector of a payload at `offset`: the seq of the write whose bytes it carries, ZEROS or GARBAGE. */
  identify(offset: number, data: Uint8Array): Int32Array {
    const n = data.length / SECTOR
    const out = new Int32Array(n)
    for (let i = 0; i < n; i++) {
      const sec = data.subarray(i * SECTOR, (i + 1) * SECTOR)
      const abs = offset + i * SECTOR
      const list = this.byBlock.get(Math.floor(abs / BLOCK)) ?? []
      let found = isZero(sec) ? ZEROS : GARBAGE
      // newest first: the likeliest, and the one meant if two writes ever carried equal bytes
      for (let j = list.length - 1; j >= 0 && found === GARBAGE; j--) {
        const w = list[j]!
        if (abs < w.offset || abs >= w.offset + w.length) continue
        if (equal(w.data.subarray(abs - w.offset, abs - w.offset + SECTOR), sec)) found = w.seq
      }
      out[i] = found
    }
    return out
  }
}

function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false
  return true
}

function equal(x: Uint8Array, y: Uint8Array): boolean {
  return Buffer.from(x.buffer, x.byteOffset, x.length).equals(Buffer.from(y.buffer, y.byteOffset, y.length))
}

/**
 * Watches what a recovery site is given for the disks of the logs it tracks: for each payload,
 * which guest write each sector carries. Installed on the cluster's site before the workload runs.
 */
export class SiteRecorder {
  private readonly logs = new Map<string, WriteLog>()
  private readonly seen = new Map<string, Int32Array>()

  constructor(readonly site: RecoverySite) {
    const write = site.write.bind(site)
    // the site logs only a hash of each payload; the bytes are looked at here, as they arrive
    site.write = (disk: string, offset: number, data: Uint8Array): Promise<void> => {
      const log = this.logs.get(disk)
      if (log !== undefined && data instanceof Uint8Array && offset % SECTOR === 0 && data.length % SECTOR === 0 && data.length > 0) {
        const key = `${disk}:${offset}:${data.length}:${hashBytes(data)}`
        if (!this.seen.has(key)) this.seen.set(key, log.identify(offset, data))
      }
      return write(disk, offset, data)
    }
  }

  /** Starts recording payloads for a disk; returns its (new) log. */
  track(disk: string, capacity: number): WriteLog {
    const log = new WriteLog(disk, capacity)
    this.logs.set(disk, log)
    return log
  }

  arrivals(disk: string): Arrival[] {
    return this.site.arrivals(disk)
  }

  /** Which write each sector of an arrival carried, or null when its payload was never seen. */
  sectors(a: Arrival): Int32Array | null {
    return this.seen.get(`${a.disk}:${a.offset}:${a.length}:${a.hash}`) ?? null
  }
}

/** A write for evidence, its times relative to `t0` (ms). */
export function describeWrite(w: GuestWrite, t0: number): Record<string, unknown> {
  return {
    seq: w.seq,
    offset: w.offset,
    length: w.length,
    issuedAtMs: round(w.issuedAt - t0),
    completedAtMs: Number.isNaN(w.completedAt) ? null : round(w.completedAt - t0),
    ok: w.ok,
  }
}

function round(v: number): number {
  return Math.round(v * 100) / 100
}

/** An arrival for evidence, its time relative to `t0` (ms). */
function describeArrival(a: Arrival, index: number, t0: number): Record<string, unknown> {
  return { index, atMs: round(a.at - t0), offset: a.offset, length: a.length, hash: a.hash }
}

/** A write-order violation found by a replay. */
interface Violation {
  readonly k: number
  readonly arrival: Arrival
  readonly applied: GuestWrite
  readonly missing: GuestWrite
}

/**
 * The replica rebuilt arrival by arrival, sector by sector: which write each sector holds, when
 * each write was wholly at the site (every sector holding it or a later write), and the first
 * instant, if any, at which the replica was not a crash-consistent prefix.
 */
class Replay {
  /** The seq of the write each sector of the replica holds (ZEROS: none). */
  readonly holder: Int32Array
  /** When each write was first wholly at the site. */
  readonly atSite = new Map<GuestWrite, number>()
  /** When some of each write's own bytes first arrived. */
  readonly arrived = new Map<GuestWrite, number>()
  violation: Violation | null = null
  garbage: { k: number; arrival: Arrival; offset: number } | null = null
  unidentified: { k: number; arrival: Arrival } | null = null
  private readonly byCompletion: GuestWrite[]
  private readonly rank = new Map<GuestWrite, number>()
  private readonly completions: number[]
  /** byCompletion[0, prefix) are all wholly at the site. */
  private prefix = 0
  /** byCompletion[0, required) must be. */
  private required = 0

  constructor(private readonly log: WriteLog, private readonly recorder: SiteRecorder) {
    this.holder = new Int32Array(Math.ceil(log.capacity / SECTOR)).fill(ZEROS)
    this.byCompletion = log.completed()
    this.byCompletion.forEach((w, i) => this.rank.set(w, i))
    this.completions = this.byCompletion.map(w => w.completedAt)
  }

  /** How many writes (in completion order) completed before time t. */
  private completedBefore(t: number): number {
    let lo = 0
    let hi = this.completions.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (this.completions[mid]! < t) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  private whole(w: GuestWrite): boolean {
    for (let s = w.offset / SECTOR; s < (w.offset + w.length) / SECTOR; s++) if (this.holder[s]! < w.seq) return false
    return true
  }

  /** Which write each sector of an arrival carries: as recorded, or as a whole write (or piece of one) by its hash. */
  private sectorsOf(a: Arrival): Int32Array | null {
    const rec = this.recorder.sectors(a)
    if (rec !== null) return rec
    for (const w of this.log.overlapping(a.offset, a.length)) {
      if (w.offset > a.offset || a.offset + a.length > w.offset + w.length) continue
      if (hashBytes(w.data.subarray(a.offset - w.offset, a.offset - w.offset + a.length)) === a.hash) return new Int32Array(a.length / SECTOR).fill(w.seq)
    }
    return null
  }

  run(arrivals: readonly Arrival[], stopAtViolation: boolean): this {
    for (let k = 0; k < arrivals.length; k++) {
      const a = arrivals[k]!
      const sectors = this.sectorsOf(a)
      if (sectors === null) {
        this.unidentified ??= { k, arrival: a }
        if (stopAtViolation) return this
        continue
      }
      const first = a.offset / SECTOR
      const carried = new Set<number>()
      for (let i = 0; i < sectors.length; i++) {
        const seq = sectors[i]!
        if (seq === GARBAGE) {
          this.garbage ??= { k, arrival: a, offset: a.offset + i * SECTOR }
          if (stopAtViolation) return this
          continue
        }
        const before = this.holder[first + i]!
        this.holder[first + i] = seq
        if (seq >= 0 && !carried.has(seq)) {
          carried.add(seq)
          const w = this.log.writes[seq]!
          if (!this.arrived.has(w)) this.arrived.set(w, a.at)
        }
        // an older write landing over a newer one: the newer one is no longer wholly at the site
        if (before > seq) {
          const r = this.rank.get(this.log.writes[before]!)
          if (r !== undefined && r < this.prefix) this.prefix = r
        }
      }
      for (const w of this.log.overlapping(a.offset, a.length)) if (!this.atSite.has(w) && this.whole(w)) this.atSite.set(w, a.at)
      while (this.prefix < this.byCompletion.length && this.whole(this.byCompletion[this.prefix]!)) this.prefix++
      let applied: GuestWrite | null = null
      for (const seq of carried) {
        const w = this.log.writes[seq]!
        const need = this.completedBefore(w.issuedAt)
        if (need > this.required) this.required = need
        if (applied === null || w.issuedAt > applied.issuedAt) applied = w
      }
      if (this.violation === null && this.prefix < this.required) {
        // name the applied write that needs the missing one
        const missing = this.byCompletion[this.prefix]!
        const needing = [...carried].map(s => this.log.writes[s]!).find(w => w.issuedAt > missing.completedAt) ?? applied!
        this.violation = { k, arrival: a, applied: needing, missing }
        if (stopAtViolation) return this
      }
    }
    return this
  }
}

/**
 * Replays a disk's arrival log in order and checks write-order fidelity after every arrival: if
 * any part of a write W is at the site, every write that completed to the guest before W was
 * issued is wholly there — or overwritten there by writes issued after it. Throws a CheckFailure
 * naming both writes and their times at the first arrival after which that does not hold, or at
 * the first arrival carrying bytes no guest write put there.
 */
export function replayWriteOrder(log: WriteLog, recorder: SiteRecorder, o: { t0: number; what?: string }): { arrivals: number; writes: number } {
  const arrivals = recorder.arrivals(log.disk)
  const r = new Replay(log, recorder).run(arrivals, true)
  const what = o.what ?? 'the replica'
  if (r.unidentified !== null) {
    const { k, arrival: a } = r.unidentified
    throw new CheckFailure(`${what} received ${a.length} bytes at offset ${a.offset} (arrival #${k}) whose content could not be related to the guest's writes`, { arrival: describeArrival(a, k, o.t0), writesIssued: log.writes.length })
  }
  if (r.garbage !== null) {
    const { k, arrival: a, offset } = r.garbage
    throw new CheckFailure(`${what} received bytes no guest write put there: sector ${offset} of arrival #${k} (${a.length} bytes at offset ${a.offset}, +${round(a.at - o.t0)} ms) holds neither zeros nor the data of any write the guest issued there`, {
      arrival: describeArrival(a, k, o.t0), offset, writesThere: log.overlapping(offset, SECTOR).slice(-5).map(w => describeWrite(w, o.t0)),
    })
  }
  if (r.violation !== null) {
    const { k, arrival: a, applied: w, missing } = r.violation
    // what became of the missing write: it arrived later, or only writes issued after it covered it
    const rest = new Replay(log, recorder).run(arrivals, false)
    const arrivedAt = rest.arrived.get(missing) ?? null
    const coveredAt = rest.atSite.get(missing) ?? null
    const fate = arrivedAt !== null
      ? `it arrived later, at +${round(arrivedAt - o.t0)} ms`
      : coveredAt !== null
        ? `it never arrived; writes issued after it covered its range at +${round(coveredAt - o.t0)} ms`
        : 'it never arrived'
    let hole: { offset: number; holds: string } | null = null
    for (let s = missing.offset / SECTOR; s < (missing.offset + missing.length) / SECTOR && hole === null; s++) {
      if (r.holder[s]! < missing.seq) hole = { offset: s * SECTOR, holds: r.holder[s]! < 0 ? 'nothing written yet' : `write #${r.holder[s]}` }
    }
    throw new CheckFailure(
      `${what} was not crash-consistent after arrival #${k} at +${round(a.at - o.t0)} ms: write #${w.seq} (${w.length} bytes at offset ${w.offset}, issued at +${round(w.issuedAt - o.t0)} ms) was applied, but write #${missing.seq} (${missing.length} bytes at offset ${missing.offset}), which completed to the guest at +${round(missing.completedAt - o.t0)} ms — before #${w.seq} was issued — was not (${fate})`,
      {
        arrival: describeArrival(a, k, o.t0),
        applied: describeWrite(w, o.t0),
        missing: describeWrite(missing, o.t0),
        missingArrivedAtMs: arrivedAt === null ? null : round(arrivedAt - o.t0),
        missingCoveredAtMs: coveredAt === null ? null : round(coveredAt - o.t0),
        ...(hole ? { missingSector: hole } : {}),
        arrivalsReplayed: k + 1,
        arrivalsTotal: arrivals.length,
      },
    )
  }
  return { arrivals: arrivals.length, writes: log.completed().length }
}

/** Lag of each completed write from its completion to the guest until it was wholly at the site. */
export function writeLags(log: WriteLog, recorder: SiteRecorder, writes: readonly GuestWrite[] = log.writes): { lags: { write: GuestWrite; lagMs: number }[]; missing: GuestWrite[] } {
  const r = new Replay(log, recorder).run(recorder.arrivals(log.disk), false)
  const lags: { write: GuestWrite; lagMs: number }[] = []
  const missing: GuestWrite[] = []
  for (const w of writes) {
    if (!w.ok) continue
    const t = r.atSite.get(w)
    if (t === undefined) missing.push(w)
    // a filter that ships before it completes the write to the guest has no lag, not a negative one
    else lags.push({ write: w, lagMs: Math.max(0, t - w.completedAt) })
  }
  return { lags, missing }
}

/** Seeded 4 KiB-aligned writes inside a region, never overlapping a write still in flight. */
export class WriteSource {
  private readonly busy: Uint8Array
  private readonly blocks: number

  constructor(
    private readonly rng: Rng,
    readonly o: { readonly regionStart: number; readonly regionLength: number; readonly minBlocks?: number; readonly maxBlocks?: number },
  ) {
    this.blocks = Math.floor(o.regionLength / BLOCK)
    this.busy = new Uint8Array(this.blocks)
  }

  /** The next write's range and payload, or null when every try hit a range in flight. */
  next(): { offset: number; data: Uint8Array } | null {
    const minB = this.o.minBlocks ?? 1
    const maxB = Math.min(this.o.maxBlocks ?? 1, this.blocks)
    for (let attempt = 0; attempt < 8; attempt++) {
      const n = minB + this.rng.int(maxB - minB + 1)
      const b = this.rng.int(this.blocks - n + 1)
      let free = true
      for (let i = b; i < b + n && free; i++) if (this.busy[i] === 1) free = false
      if (!free) continue
      this.busy.fill(1, b, b + n)
      return { offset: this.o.regionStart + b * BLOCK, data: this.rng.fill(new Uint8Array(n * BLOCK)) }
    }
    return null
  }

  release(offset: number, length: number): void {
    const b = (offset - this.o.regionStart) / BLOCK
    this.busy.fill(0, b, b + length / BLOCK)
  }
}

/**
 * Paced writes from `source`, each recorded in `log` as it is issued and completed, and applied to
 * `model` (the bytes the disk must hold) when it completes successfully.
 */
export async function pacedWrites(vm: Vm, disk: string, log: WriteLog, source: WriteSource, o: PacedOptions, model?: Uint8Array): Promise<PacedRun> {
  const issued = new Map<GuestIo, GuestWrite>()
  return pacedLoad(
    vm,
    disk,
    o,
    () => {
      const n = source.next()
      if (n === null) return 'wait'
      const io: GuestIo = { op: 'write', offset: n.offset, data: n.data }
      issued.set(io, log.issue(n.offset, n.data))
      return io
    },
    t => {
      const w = issued.get(t.io)!
      issued.delete(t.io)
      log.complete(w, t.result.ok, t.completedAt)
      if (t.result.ok && model !== undefined) model.set(w.data, w.offset)
      source.release(w.offset, w.length)
    },
  )
}

/** Reads [offset, offset + length) of a disk through its VM, in 1 MiB pieces. */
export async function readThrough(vm: Vm, disk: string, offset: number, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length)
  const step = 1 << 20
  for (let pos = 0; pos < length; pos += step) {
    const n = Math.min(step, length - pos)
    const r = await vm.submit(disk, { op: 'read', offset: offset + pos, length: n })
    if (!r.ok) throw new CheckFailure(`reading the disk back to compare it with the replica failed: read of ${n} bytes at offset ${offset + pos} failed with ${r.error}`, { op: 'read', offset: offset + pos, length: n, error: r.error })
    out.set(r.data!, pos)
  }
  return out
}

/** The first byte where the replica differs from `expected` (the disk's bytes from `offset`). */
export function replicaDifference(site: RecoverySite, disk: string, offset: number, expected: Uint8Array): { offset: number; expected: string; found: string } | null {
  const step = 1 << 20
  for (let pos = 0; pos < expected.length; pos += step) {
    const n = Math.min(step, expected.length - pos)
    const want = expected.subarray(pos, pos + n)
    const got = site.read(disk, offset + pos, n)
    if (Buffer.from(want.buffer, want.byteOffset, want.length).equals(Buffer.from(got.buffer, got.byteOffset, got.length))) continue
    const d = firstDifference(want, got)
    if (d !== null) return { offset: offset + pos + d.at, expected: d.expected, found: d.found }
  }
  return null
}

/** How waiting for a replica to catch up went. */
export interface CatchUp {
  readonly caughtUp: boolean
  readonly waitedMs: number
  readonly arrivals: number
  readonly difference: { offset: number; expected: string; found: string } | null
}

/**
 * Waits until the site's arrival log for `disk` has stopped growing and the replica equals
 * `expected` from `offset`, or until `boundMs` has passed.
 */
export async function awaitReplica(site: RecoverySite, disk: string, offset: number, expected: Uint8Array, boundMs: number, pollMs = 100): Promise<CatchUp> {
  const t0 = nowMs()
  let last = -1
  for (;;) {
    const n = site.arrivals(disk).length
    const elapsed = nowMs() - t0
    if (n === last || elapsed >= boundMs) {
      const difference = replicaDifference(site, disk, offset, expected)
      if (difference === null) return { caughtUp: true, waitedMs: round(elapsed), arrivals: n, difference }
      if (elapsed >= boundMs) return { caughtUp: false, waitedMs: round(elapsed), arrivals: n, difference }
    }
    last = n
    await new Promise(res => setTimeout(res, pollMs))
  }
}

/** The RPO a policy sets (the schema's minimum when above 2 s); 2 s when the filter takes none. */
export function rpoOf(rule: PolicyRule): number {
  const v = rule.params?.rpoSeconds
  return typeof v === 'number' && v > 0 ? v : 2
}

/** How long a quiesced replica may take to catch up: a few seconds beyond a few RPOs. */
export function catchUpBoundMs(rpoSeconds: number): number {
  return 3 * rpoSeconds * 1000 + 3000
}

/** Polls the site until every completed write of `log` has wholly arrived, or `boundMs` passes; returns how many had not. */
export async function awaitArrivals(recorder: SiteRecorder, log: WriteLog, boundMs: number, writes?: readonly GuestWrite[]): Promise<number> {
  const t0 = nowMs()
  for (;;) {
    const { missing } = writeLags(log, recorder, writes)
    if (missing.length === 0 || nowMs() - t0 >= boundMs) return missing.length
    await new Promise(res => setTimeout(res, 100))
  }
}
