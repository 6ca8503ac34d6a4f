/**
 * The drive's volatile write cache, emulated by its inverse: writes go straight to the image and
 * the durable content they overwrite (the pre-image) is journaled until the next flush. A power cut
 * (host crash, or `kill -9` of the process) is then replayed by restoring pre-images — all of them,
 * or a seeded subset sector by sector — which is exactly "writes not yet durable are lost".
 * A flush, or a full journal (the cache writing back when full), makes everything durable.
 *
 * Layout (SharedArrayBuffer for memory disks, `<image>.journal` for file disks):
 *   header 16 B: magic u32, epoch u32, reserved
 *   entries: epoch u32, sectors u32 (bit 31 set: the pre-image is all zeros and not stored),
 *   firstSector f64, then sectors × 512 B of pre-image.
 * An entry counts only while its epoch equals the header's; a reset bumps the epoch.
 */
import * as fs from 'node:fs'
import { Rng } from './rng.js'

const MAGIC = 0x4a524e4c // 'JRNL'
const HEADER = 16
const ENTRY_HEAD = 16

/** Where journal bytes live. */
export interface JournalMedium {
  readonly size: number
  read(offset: number, into: Uint8Array): void
  write(offset: number, src: Uint8Array): void
  /** A writable view of [offset, offset+length) when the medium is memory (no copy), else null. */
  view(offset: number, length: number): Uint8Array | null
  close(): void
}

/** A journal in shared memory (memory disks): the main thread can replay it after the worker dies. */
export class SharedJournalMedium implements JournalMedium {
  private readonly bytes: Uint8Array
  constructor(readonly sab: SharedArrayBuffer) {
    this.bytes = new Uint8Array(sab)
  }
  get size(): number {
    return this.bytes.length
  }
  read(offset: number, into: Uint8Array): void {
    into.set(this.bytes.subarray(offset, offset + into.length))
  }
  write(offset: number, src: Uint8Array): void {
    this.bytes.set(src, offset)
  }
  view(offset: number, length: number): Uint8Array {
    return this.bytes.subarray(offset, offset + length)
  }
  close(): void {}
}

/** A journal in a file beside the image (file disks): survives the process being killed. */
export class FileJournalMedium implements JournalMedium {
  private fd: number
  constructor(readonly path: string, readonly size: number) {
    this.fd = fs.openSync(path, fs.existsSync(path) ? 'r+' : 'w+')
  }
  read(offset: number, into: Uint8Array): void {
    const n = fs.readSync(this.fd, into, 0, into.length, offset)
    if (n < into.length) into.fill(0, n)
  }
  write(offset: number, src: Uint8Array): void {
    let done = 0
    while (done < src.length) done += fs.writeSync(this.fd, src, done, src.length - done, offset + done)
  }
  view(): null {
    return null
  }
  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd)
    this.fd = -1
  }
}

/** A journaled range of pre-images. */
export interface JournalEntry {
  readonly firstSector: number
  readonly data: Uint8Array
}

export class Journal {
  private epoch = 1
  private end = HEADER
  /** 4 KiB page → bitmask of sectors already journaled since the last reset. */
  private readonly journaled = new Map<number, number>()
  private readonly head = new Uint8Array(ENTRY_HEAD)
  private readonly headView = new DataView(this.head.buffer)
  resets = 0

  constructor(readonly medium: JournalMedium) {
    const h = new Uint8Array(HEADER)
    medium.read(0, h)
    const dv = new DataView(h.buffer)
    if (dv.getUint32(0, true) === MAGIC) this.epoch = dv.getUint32(4, true)
    else this.writeHeader()
  }

  private writeHeader(): void {
    const h = new Uint8Array(HEADER)
    const dv = new DataView(h.buffer)
    dv.setUint32(0, MAGIC, true)
    dv.setUint32(4, this.epoch, true)
    this.medium.write(0, h)
  }

  /** Everything so far is durable: forget the pre-images. */
  reset(): void {
    this.epoch = (this.epoch + 1) >>> 0 || 1
    this.end = HEADER
    this.journaled.clear()
    this.writeHeader()
    this.resets++
  }

  /**
   * Journals the pre-images of the sectors of [offset, offset+length) not journaled since the last
   * reset. `readPre` reads the image's current (durable) bytes. Returns false when the range cannot
   * fit even in an empty journal (the caller then treats the write as written back at once).
   */
  record(offset: number, length: number, readPre: (offset: number, into: Uint8Array) => void, isHole?: (offset: number, length: number) => boolean): boolean {
    const first = offset / 512
    const count = length / 512
    let s = first
    const endS = first + count
    while (s < endS) {
      // find the next run of sectors not yet journaled
      while (s < endS && this.isJournaled(s)) s++
      if (s >= endS) break
      let e = s
      while (e < endS && !this.isJournaled(e)) e++
      if (!this.append(s, e - s, readPre, isHole)) return false
      s = e
    }
    return true
  }

  private isJournaled(sector: number): boolean {
    const m = this.journaled.get(Math.floor(sector / 8))
    return m !== undefined && (m & (1 << (sector % 8))) !== 0
  }

  private mark(first: number, n: number): void {
    for (let s = first; s < first + n; s++) {
      const p = Math.floor(s / 8)
      this.journaled.set(p, (this.journaled.get(p) ?? 0) | (1 << (s % 8)))
    }
  }

  private append(first: number, n: number, readPre: (offset: number, into: Uint8Array) => void, isHole?: (offset: number, length: number) => boolean): boolean {
    // a range never written holds zeros: its pre-image needs no bytes, only a flag
    const hole = isHole !== undefined && isHole(first * 512, n * 512)
    const bytes = ENTRY_HEAD + (hole ? 0 : n * 512)
    if (this.end + bytes > this.medium.size) {
      if (HEADER + bytes > this.medium.size) return false
      // the cache is full: it writes back, so what it held becomes durable
      this.reset()
    }
    const hv = this.headView
    hv.setUint32(0, this.epoch, true)
    hv.setUint32(4, hole ? (n | 0x80000000) >>> 0 : n, true)
    hv.setFloat64(8, first, true)
    const direct = this.medium.view(this.end, bytes)
    if (direct !== null) {
      // memory medium: the pre-image is read straight into the journal, no copy, no allocation
      if (!hole) readPre(first * 512, direct.subarray(ENTRY_HEAD))
      direct.set(this.head, 0)
    } else {
      const buf = this.scratch(bytes)
      buf.set(this.head, 0)
      if (!hole) readPre(first * 512, buf.subarray(ENTRY_HEAD))
      this.medium.write(this.end, buf)
    }
    this.end += bytes
    this.mark(first, n)
    return true
  }

  private scratchBuf = new Uint8Array(ENTRY_HEAD + 8 * 512)
  private scratch(bytes: number): Uint8Array {
    if (this.scratchBuf.length < bytes) this.scratchBuf = new Uint8Array(bytes)
    return this.scratchBuf.subarray(0, bytes)
  }

  /** Bytes written since the last flush that a power cut would lose. */
  get pendingSectors(): number {
    let n = 0
    for (const m of this.journaled.values()) {
      let x = m
      while (x) { n++; x &= x - 1 }
    }
    return n
  }

  /** The entries of the current epoch, in order (for replay after a power cut). */
  static entries(medium: JournalMedium): JournalEntry[] {
    const h = new Uint8Array(HEADER)
    medium.read(0, h)
    const dv = new DataView(h.buffer)
    if (dv.getUint32(0, true) !== MAGIC) return []
    const epoch = dv.getUint32(4, true)
    const out: JournalEntry[] = []
    let pos = HEADER
    const eh = new Uint8Array(ENTRY_HEAD)
    const edv = new DataView(eh.buffer)
    while (pos + ENTRY_HEAD <= medium.size) {
      medium.read(pos, eh)
      if (edv.getUint32(0, true) !== epoch) break
      const raw = edv.getUint32(4, true)
      const hole = (raw & 0x80000000) !== 0
      const n = raw & 0x7fffffff
      const first = edv.getFloat64(8, true)
      const stored = hole ? 0 : n * 512
      if (n === 0 || pos + ENTRY_HEAD + stored > medium.size) break
      const data = new Uint8Array(n * 512)
      if (!hole) medium.read(pos + ENTRY_HEAD, data)
      out.push({ firstSector: first, data })
      pos += ENTRY_HEAD + stored
    }
    return out
  }

  /**
   * Replays a power cut: restores pre-images (all, or with `seed` a seeded subset of sectors),
   * newest entry last so the oldest pre-image of a sector wins, then starts a new epoch.
   * Returns how many sectors were rolled back.
   */
  static powerCut(medium: JournalMedium, write: (offset: number, data: Uint8Array) => void, seed?: number): number {
    const entries = Journal.entries(medium)
    const rng = seed === undefined ? null : new Rng(seed)
    let lost = 0
    // entries are first-write pre-images per epoch, so no sector appears twice
    for (const e of entries) {
      for (let i = 0; i < e.data.length / 512; i++) {
        if (rng !== null && rng.float() < 0.5) continue
        write((e.firstSector + i) * 512, e.data.subarray(i * 512, (i + 1) * 512))
        lost++
      }
    }
    const j = new Journal(medium)
    j.reset()
    return lost
  }

  /** Makes everything durable without replaying (the host kept power). */
  static commit(medium: JournalMedium): void {
    new Journal(medium).reset()
  }
}
