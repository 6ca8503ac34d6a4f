/**
 * The nemesis's view of the recovery site: what each arrival carried, sector by sector (named by
 * the guest write whose bytes they are, as the disk model names them), and write-order fidelity
 * judged over "order epochs".
 *
 * An epoch of a disk starts where its replica was seen equal to the disk (a checkpoint; at the
 * start, both are zeros): the replica then holds, sector by sector, what the disk held. From there
 * every arrival must leave the replica a prefix of the write order — if any part of a write W is
 * there, every write that completed to the guest before W was issued is wholly there (or
 * overwritten by a write issued after it), and nothing older than what the epoch began with ever
 * lands again. A filter is entitled to copy regions again after it lost track of what the site
 * holds — a crash of the host its disk ran on (or whose daemon held its backlog), its VM's worker
 * dying, a close while the site was down, the policy taken off and applied again — and a region
 * copy is no prefix of anything; so from such an event until the next checkpoint the epoch's order
 * is not judged, and that checkpoint must find the replica equal to the disk.
 */
import { nowMs, type RecoverySite } from '../../harness/framework/index.js'
import { GARBAGE, SECTOR, type DiskModel, type WriteRec } from './model.js'

/** One write the site took for a disk. */
export interface Arrival {
  readonly at: number
  readonly offset: number
  readonly length: number
  /** The step during which it arrived. */
  readonly step: number
  /** Per sector: the write whose bytes it carried, INITIAL (zeros) or GARBAGE. */
  readonly ids: Int32Array
}

/** Why a disk's order is not judged until its next checkpoint. */
export interface Entitlement {
  readonly step: number
  readonly why: string
}

interface Epoch {
  /** The first arrival of the epoch. */
  readonly from: number
  /** Writes with a lower seq were complete when it began. */
  readonly firstSeq: number
  /** What the replica held when it began. */
  readonly base: Int32Array
  readonly step: number
  entitled: Entitlement[]
}

/** A write-order violation, with what to say about it. */
export interface OrderViolation {
  readonly kind: 'garbage' | 'regression' | 'order'
  readonly arrival: Arrival
  readonly index: number
  readonly offset: number
  readonly applied?: WriteRec
  readonly missing?: WriteRec
  /** The write (or INITIAL) the replica held there when the epoch began, for a regression. */
  readonly base?: number
  readonly carried?: number
  readonly epochStep: number
}

export class ReplicaJudge {
  private readonly arrivals = new Map<string, Arrival[]>()
  private readonly epochs = new Map<string, Epoch>()
  /** Entitlements of past epochs and the current one, for evidence. */
  readonly history = new Map<string, Entitlement[]>()

  constructor(readonly site: RecoverySite, private readonly models: ReadonlyMap<string, DiskModel>, private readonly step: () => number) {
    const write = site.write.bind(site)
    site.write = (disk: string, offset: number, data: Uint8Array): Promise<void> => {
      const model = this.models.get(disk)
      if (model === undefined || !(data instanceof Uint8Array) || offset % SECTOR !== 0 || data.length % SECTOR !== 0 || data.length === 0) return write(disk, offset, data)
      const before = site.writes
      const ids = new Int32Array(data.length / SECTOR)
      for (let i = 0; i < ids.length; i++) ids[i] = offset / SECTOR + i < model.sectors ? model.identify(offset / SECTOR + i, data.subarray(i * SECTOR, (i + 1) * SECTOR)) : GARBAGE
      const step = this.step()
      const record = () => this.list(disk).push({ at: nowMs(), offset, length: data.length, step, ids })
      const p = write(disk, offset, data)
      // a write the site applied at once is in its log now; a delayed one is recorded when it resolves
      if (site.writes > before) record()
      else p.then(record, () => {})
      return p
    }
    for (const [disk, m] of models) this.epochs.set(disk, { from: 0, firstSeq: 0, base: new Int32Array(m.sectors).fill(-1), step: 0, entitled: [] })
  }

  private list(disk: string): Arrival[] {
    let l = this.arrivals.get(disk)
    if (l === undefined) this.arrivals.set(disk, (l = []))
    return l
  }

  count(disk: string): number {
    return this.list(disk).length
  }

  /** The disk's order is not judged until its next checkpoint. */
  entitle(disk: string, step: number, why: string): void {
    const e = this.epochs.get(disk)!
    e.entitled.push({ step, why })
    const h = this.history.get(disk) ?? []
    h.push({ step, why })
    this.history.set(disk, h)
  }

  entitlements(disk: string): readonly Entitlement[] {
    return this.epochs.get(disk)!.entitled
  }

  /** The replica equals the disk, whose sectors hold `base`: a new epoch begins. */
  checkpoint(disk: string, base: Int32Array, step: number): void {
    const m = this.models.get(disk)!
    this.epochs.set(disk, { from: this.count(disk), firstSeq: m.writes.length, base, step, entitled: [] })
  }

  /** The first violation of write order in the disk's current epoch, or null. */
  judge(disk: string): OrderViolation | null {
    const e = this.epochs.get(disk)!
    if (e.entitled.length > 0) return null
    const m = this.models.get(disk)!
    const arrivals = this.list(disk).slice(e.from)
    const writes = m.writes.filter(w => w.seq >= e.firstSeq && w.ok === true).sort((a, b) => a.completedAt - b.completedAt || a.seq - b.seq)
    const rank = new Map<number, number>()
    writes.forEach((w, i) => rank.set(w.seq, i))
    const completions = writes.map(w => w.completedAt)
    const completedBefore = (t: number) => {
      let lo = 0
      let hi = completions.length
      while (lo < hi) {
        const mid = (lo + hi) >> 1
        if (completions[mid]! < t) lo = mid + 1
        else hi = mid
      }
      return lo
    }
    const holder = e.base.slice()
    const whole = (w: WriteRec) => {
      for (let s = w.offset / SECTOR; s < (w.offset + w.length) / SECTOR; s++) if (holder[s]! < w.seq) return false
      return true
    }
    let prefix = 0
    let required = 0
    for (let k = 0; k < arrivals.length; k++) {
      const a = arrivals[k]!
      const first = a.offset / SECTOR
      const carried = new Set<number>()
      for (let i = 0; i < a.ids.length; i++) {
        const id = a.ids[i]!
        const s = first + i
        if (id === GARBAGE) return { kind: 'garbage', arrival: a, index: e.from + k, offset: s * SECTOR, epochStep: e.step }
        if (id < e.firstSeq && id < e.base[s]!) return { kind: 'regression', arrival: a, index: e.from + k, offset: s * SECTOR, base: e.base[s]!, carried: id, epochStep: e.step }
        const before = holder[s]!
        holder[s] = id
        // zeros name the newest unmap there, which may not be the one that sent them: they ask for nothing
        if (id >= e.firstSeq && m.writes[id]!.data !== null) carried.add(id)
        if (before > id && before >= e.firstSeq) {
          const r = rank.get(before)
          if (r !== undefined && r < prefix) prefix = r
        }
      }
      while (prefix < writes.length && whole(writes[prefix]!)) prefix++
      let applied: WriteRec | null = null
      for (const seq of carried) {
        const w = m.writes[seq]!
        const need = completedBefore(w.issuedAt)
        if (need > required) required = need
        if (applied === null || w.issuedAt > applied.issuedAt) applied = w
      }
      if (prefix < required) {
        const missing = writes[prefix]!
        const needing = [...carried].map(x => m.writes[x]!).find(w => w.issuedAt > missing.completedAt) ?? applied!
        return { kind: 'order', arrival: a, index: e.from + k, offset: a.offset, applied: needing, missing, epochStep: e.step }
      }
    }
    return null
  }

  /** When some of the write's bytes first arrived, if they did. */
  arrivedAt(disk: string, w: WriteRec): Arrival | null {
    for (const a of this.list(disk)) {
      const lo = Math.max(a.offset, w.offset)
      const hi = Math.min(a.offset + a.length, w.offset + w.length)
      for (let at = lo; at < hi; at += SECTOR) if (a.ids[(at - a.offset) / SECTOR] === w.seq) return a
    }
    return null
  }
}
