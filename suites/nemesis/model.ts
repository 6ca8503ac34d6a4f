/**
 * What a nemesis disk may hold, sector by sector. Every write and unmap the guest issues is kept
 * (its bytes, its step, its times and outcome); what a sector may hold then follows from them:
 *
 * - while the host keeps power: the last write there that completed to the guest — or a write
 *   after it whose outcome the guest never learnt (its VM went down around it), which may or may
 *   not have landed;
 * - after a power cut: what the last durability point there left (a flush that completed, a clean
 *   close), or any write there since — unflushed writes may be lost, but only by a crash.
 *
 * A read narrows this down: the sector then holds what was read (an uncertain write found there
 * counts as landed). A sector's bytes are named by the write that put them there (its sequence
 * number; INITIAL for the zeros of a fresh disk), which is also how the replica judge names what
 * arrives at the recovery site.
 */
import { nowMs } from '../../harness/framework/index.js'

export const SECTOR = 512
const BLOCK = 4096
/** The zeros a fresh disk holds. */
export const INITIAL = -1
/** Bytes no write put there. */
export const GARBAGE = -2

/** One guest write or unmap. */
export interface WriteRec {
  /** Issue order on the disk, from 0. */
  readonly seq: number
  readonly op: 'write' | 'unmap'
  readonly offset: number
  readonly length: number
  /** The payload; null for an unmap (zeros). */
  readonly data: Uint8Array | null
  readonly issuedAt: number
  /** Epoch ms the guest saw it complete (or fail); NaN while in flight. */
  completedAt: number
  /** true: completed; false: failed, outcome unknown; null: in flight. */
  ok: boolean | null
  /** The step it was issued in. */
  readonly step: number
}

/** A write's place in a sector's history since the sector's durability point. */
interface Entry {
  readonly w: WriteRec
  /** When a read found an uncertain write there (NaN: not found). */
  landedAt: number
}

/** What a read found that the disk may not hold. */
export interface SectorMismatch {
  readonly offset: number
  /** Writes (or INITIAL) the sector may hold. */
  readonly allowed: readonly number[]
  /** The write whose bytes it holds, INITIAL (zeros) or GARBAGE. */
  readonly found: number
  readonly foundHex: string
  readonly expectedHex: string
}

const landed = (e: Entry): boolean => e.w.ok === true || !Number.isNaN(e.landedAt)
const timeOf = (e: Entry): number => (e.w.ok === true ? e.w.completedAt : e.landedAt)

export class DiskModel {
  readonly writes: WriteRec[] = []
  /** Per sector: what its last durability point left. */
  private readonly dur: Int32Array
  /** Per sector: writes there since then, in issue order (undefined: none). */
  private readonly vol: (Entry[] | undefined)[]
  private readonly dirty = new Set<number>()
  private readonly byBlock = new Map<number, WriteRec[]>()
  /** A crash (host power cut or VM worker death) since the disk was last read back whole. */
  crashed = false
  /** When the last crash was settled by a whole read-back, and in which step. */
  settledCrash: { at: number; step: number } | null = null
  /** Sectors in flight (an I/O of the workload covers them). */
  readonly busy: Uint8Array

  constructor(readonly disk: string, readonly capacity: number) {
    const n = capacity / SECTOR
    this.dur = new Int32Array(n).fill(INITIAL)
    this.vol = new Array(n)
    this.busy = new Uint8Array(n)
  }

  get sectors(): number {
    return this.dur.length
  }

  /** Records a write (data) or unmap (null) about to be issued. */
  issue(offset: number, length: number, data: Uint8Array | null, step: number): WriteRec {
    const w: WriteRec = { seq: this.writes.length, op: data === null ? 'unmap' : 'write', offset, length, data, issuedAt: nowMs(), completedAt: NaN, ok: null, step }
    this.writes.push(w)
    for (let b = Math.floor(offset / BLOCK); b * BLOCK < offset + length; b++) {
      let list = this.byBlock.get(b)
      if (list === undefined) this.byBlock.set(b, (list = []))
      list.push(w)
    }
    for (let s = offset / SECTOR; s < (offset + length) / SECTOR; s++) {
      let list = this.vol[s]
      if (list === undefined) {
        this.vol[s] = list = []
        this.dirty.add(s)
      }
      list.push({ w, landedAt: NaN })
    }
    return w
  }

  complete(w: WriteRec, ok: boolean, at = nowMs()): void {
    w.ok = ok
    w.completedAt = at
  }

  /** A durability point: every write completed before `t` is on stable storage. */
  coverBefore(t: number): void {
    for (const s of [...this.dirty]) {
      const list = this.vol[s]!
      let k = -1
      for (let i = list.length - 1; i >= 0; i--) {
        if (landed(list[i]!) && timeOf(list[i]!) < t) {
          k = i
          break
        }
      }
      if (k < 0) continue
      this.dur[s] = list[k]!.w.seq
      const rest = list.slice(k + 1)
      if (rest.length === 0) {
        this.vol[s] = undefined
        this.dirty.delete(s)
      } else this.vol[s] = rest
    }
  }

  /** What sector s may hold now. */
  allowed(s: number): number[] {
    const list = this.vol[s]
    if (list === undefined) return [this.dur[s]!]
    if (this.crashed) return [this.dur[s]!, ...list.map(e => e.w.seq)]
    let k = -1
    for (let i = list.length - 1; i >= 0 && k < 0; i--) if (landed(list[i]!)) k = i
    const out = [k >= 0 ? list[k]!.w.seq : this.dur[s]!]
    for (let i = k + 1; i < list.length; i++) if (list[i]!.w.ok !== true) out.push(list[i]!.w.seq)
    return out
  }

  /** The bytes write `id` put in sector s (zeros for INITIAL and unmaps). */
  bytesOf(id: number, s: number): Uint8Array | null {
    if (id < 0) return null
    const w = this.writes[id]!
    if (w.data === null) return null
    const at = s * SECTOR - w.offset
    return w.data.subarray(at, at + SECTOR)
  }

  /** Whether sector s holding `found` is write `id`'s bytes there (zeros for INITIAL and unmaps). */
  holds(id: number, s: number, found: Uint8Array): boolean {
    const b = this.bytesOf(id, s)
    return b === null ? isZero(found) : equal(b, found)
  }

  /**
   * Judges a read of [offset, offset + bytes.length) and narrows the model to what it found. With
   * `whole`, the read covered the disk after a crash: the crash is then settled. Returns the first
   * sector that holds what it may not (the model is left as it was from there on).
   */
  judgeRead(offset: number, bytes: Uint8Array, o: { whole?: boolean; step?: number } = {}): SectorMismatch | null {
    const at = nowMs()
    const first = offset / SECTOR
    for (let i = 0; i < bytes.length / SECTOR; i++) {
      const s = first + i
      const found = bytes.subarray(i * SECTOR, (i + 1) * SECTOR)
      const allowed = this.allowed(s)
      const x = allowed.find(id => this.holds(id, s, found))
      if (x === undefined) {
        const exp = this.bytesOf(allowed[0]!, s)
        return {
          offset: s * SECTOR, allowed, found: this.identify(s, found),
          foundHex: Buffer.from(found.subarray(0, 32)).toString('hex'),
          expectedHex: exp === null ? '00'.repeat(32) : Buffer.from(exp.subarray(0, 32)).toString('hex'),
        }
      }
      this.settle(s, x, at)
    }
    if (o.whole === true && offset === 0 && bytes.length === this.capacity && this.crashed) {
      this.crashed = false
      this.settledCrash = { at, step: o.step ?? 0 }
    }
    return null
  }

  /** Sector s was read holding x. */
  private settle(s: number, x: number, at: number): void {
    const list = this.vol[s]
    if (list === undefined) return
    if (this.crashed) {
      // the power cut is replayed and the drive written back: what is there now is durable
      this.dur[s] = x
      this.vol[s] = undefined
      this.dirty.delete(s)
      return
    }
    const kept: Entry[] = []
    for (const e of list) {
      if (e.w.ok === false && e.w.seq !== x && Number.isNaN(e.landedAt)) continue
      if (e.w.seq === x && e.w.ok === false && Number.isNaN(e.landedAt)) e.landedAt = at
      kept.push(e)
    }
    if (kept.length === 0) {
      this.vol[s] = undefined
      this.dirty.delete(s)
    } else this.vol[s] = kept
  }

  /** What each sector holds, once the disk has been read back whole (one identity each). */
  identities(): Int32Array {
    const out = new Int32Array(this.sectors)
    for (let s = 0; s < out.length; s++) out[s] = this.allowed(s)[0]!
    return out
  }

  /**
   * Names the bytes of a sector: the newest write whose bytes they are (an unmap or INITIAL for
   * zeros), or GARBAGE. Only writes issued so far are considered.
   */
  identify(s: number, bytes: Uint8Array): number {
    const list = this.byBlock.get(Math.floor((s * SECTOR) / BLOCK)) ?? []
    const abs = s * SECTOR
    const zero = isZero(bytes)
    for (let j = list.length - 1; j >= 0; j--) {
      const w = list[j]!
      if (abs < w.offset || abs >= w.offset + w.length) continue
      if (w.data === null ? zero : !zero && equal(w.data.subarray(abs - w.offset, abs - w.offset + SECTOR), bytes)) return w.seq
    }
    return zero ? INITIAL : GARBAGE
  }

  /** The writes that touched sector s, oldest first. */
  history(s: number): WriteRec[] {
    const abs = s * SECTOR
    return (this.byBlock.get(Math.floor(abs / BLOCK)) ?? []).filter(w => abs >= w.offset && abs < w.offset + w.length)
  }

  /** Marks a range in flight (true) or free; false when part of it was in flight already. */
  reserve(offset: number, length: number): boolean {
    const a = offset / SECTOR
    const z = (offset + length) / SECTOR
    for (let s = a; s < z; s++) if (this.busy[s] === 1) return false
    this.busy.fill(1, a, z)
    return true
  }

  release(offset: number, length: number): void {
    this.busy.fill(0, offset / SECTOR, (offset + length) / SECTOR)
  }
}

export function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false
  return true
}

export function equal(x: Uint8Array, y: Uint8Array): boolean {
  return Buffer.from(x.buffer, x.byteOffset, x.length).equals(Buffer.from(y.buffer, y.byteOffset, y.length))
}
