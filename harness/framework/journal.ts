/**
 * The drive's volatile write cache, emulated by its inverse: writes go straight to the image and
 * the durable content they overwrite (the pre-image) is journaled until the next flush. A power cut
 * (host crash, or `kill -9` of the process) is then replayed by restoring pre-images — all of them,
 * or a seeded subset sector by sector — which is exactly "writes not yet durable are lost".
 * A flush, or a full journal (the cache writing back when full), makes everything durable.
 *
 * Layout (SharedArrayBuffer for memory disks, `<image>.journal` for file disks), little-endian:
 *   header 32 B: magic u32 ('JRN2'), epoch u32, salt 8 B (random, new each epoch), 16 B zero,
 *   crc u32 (CRC-32C of the 28 bytes before it).
 *   entries from byte 32: crc u32, sectors u32 (bit 31 set: the pre-image is all zeros and not
 *   stored), firstSector f64, then sectors × 512 B of pre-image.
 * An entry's crc is a CRC-32C chained from the header's first 16 bytes (so salted by the epoch's
 * salt) through every earlier entry of the epoch, over the entry's own bytes after the crc field:
 * it verifies only in the epoch, and at the place, it was written in. Replay stops at the first
 * entry that does not verify or does not fit in the journal or the image, so a torn tail, an older
 * epoch's entries left behind a shorter newer one, or a guest's sector data shaped like an entry
 * (pre-images are guest data) are never applied.
 * Each epoch is new: a flush, a full journal, a replay, and every open of the journal start one.
 */
import { Buffer } from 'node:buffer'
import { randomFillSync } from 'node:crypto'
import * as fs from 'node:fs'
import { crc32c } from '../base/crc32c.js'
import { crashArmed, crashPoint } from './persist.js'
import { Rng } from './rng.js'

const MAGIC = 0x324e524a // 'JRN2'
/** The magic of the first format, whose entries carried no checksum: never replayed. */
const OLD_MAGIC = 0x4a524e4c
const HEADER = 32
const HEADER_CRC = 28
/** The bytes of the header that seed an epoch's chain of entry checksums: magic, epoch, salt. */
const SEED_BYTES = 16
const ENTRY_HEAD = 16
const ZERO_FLAG = 0x80000000
/** Pre-image bytes moved and checksummed at a time (an entry's head travels with its first chunk). */
const CHUNK = 1 << 20

/*
 * The checksum of pre-images is on the write path of every journaled write, so it runs in
 * WebAssembly: CRC-32C (as ../bench/crc32c.ts computes it) sliced by 16, 3–4× the speed of
 * that slicing-by-8 in V8, over a scratch area in the module's own memory that pre-images are read
 * into and written from (a file journal copies nothing more than it did without checksums; a
 * memory journal one memcpy more). The memory holds the 16 tables (16 KiB) at 0 and the scratch
 * (ENTRY_HEAD + CHUNK bytes) after them. The one function, assembled below:
 *   crc(p, n, c) = CRC-32C continued from c over memory[p, p+n)
 */
const SLICE = 16
const TABLES = SLICE * 1024
const SCRATCH = ENTRY_HEAD + CHUNK

function uleb(n: number): number[] {
  const out: number[] = []
  do {
    let b = n & 0x7f
    n >>>= 7
    if (n !== 0) b |= 0x80
    out.push(b)
  } while (n !== 0)
  return out
}

function sleb(n: number): number[] {
  const out: number[] = []
  for (;;) {
    const b = n & 0x7f
    n >>= 7
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b]
    out.push(b | 0x80)
  }
}

function crcModule(): Uint8Array {
  const get = (i: number) => [0x20, i]
  const set = (i: number) => [0x21, i]
  const i32 = (v: number) => [0x41, ...sleb(v)]
  const load = (offset: number) => [0x28, 0, ...uleb(offset)]
  const [XOR, AND, SHL, SHR_U, ADD, SUB, LT_U, GE_U, LOAD8_U] = [0x73, 0x71, 0x74, 0x76, 0x6a, 0x6b, 0x49, 0x4f, 0x2d]
  const [BLOCK, LOOP, BR, BR_IF, END] = [[0x02, 0x40], [0x03, 0x40], 0x0c, 0x0d, 0x0b]
  // params p, n, c; locals stop and w0..w3 (the 16 bytes at p as 4 little-endian words, w0 ^= c)
  const [P, N, C, STOP] = [0, 1, 2, 3]
  const W = [4, 5, 6, 7]
  const step: number[] = [...get(P), ...load(0), ...get(C), XOR, ...set(W[0]!)]
  for (let w = 1; w < 4; w++) step.push(...get(P), ...load(4 * w), ...set(W[w]!))
  // c = XOR of T_k[byte], byte i of the 16 taking table 15 - i; w0, which depends on c, last
  for (let w = 3; w >= 0; w--) {
    for (let s = 0; s < 4; s++) {
      step.push(...get(W[w]!), ...(s > 0 ? [...i32(8 * s), SHR_U] : []), ...(s < 3 ? [...i32(0xff), AND] : []), ...i32(2), SHL, ...load((SLICE - 1 - 4 * w - s) * 1024))
      if (w < 3 || s > 0) step.push(XOR)
    }
  }
  const code = [
    ...get(C), ...i32(-1), XOR, ...set(C),
    ...get(P), ...get(N), ADD, ...set(STOP),
    ...BLOCK, ...LOOP,
    ...get(STOP), ...get(P), SUB, ...i32(SLICE), LT_U, BR_IF, 1,
    ...step, ...set(C),
    ...get(P), ...i32(SLICE), ADD, ...set(P), BR, 0, END, END,
    // the rest byte by byte: c = T_0[(c ^ byte) & 0xff] ^ (c >>> 8)
    ...BLOCK, ...LOOP,
    ...get(P), ...get(STOP), GE_U, BR_IF, 1,
    ...get(C), ...get(P), LOAD8_U, 0, 0, XOR, ...i32(0xff), AND, ...i32(2), SHL, ...load(0),
    ...get(C), ...i32(8), SHR_U, XOR, ...set(C),
    ...get(P), ...i32(1), ADD, ...set(P), BR, 0, END, END,
    ...get(C), ...i32(-1), XOR, END,
  ]
  const body = [1, 5, 0x7f, ...code]
  const section = (id: number, content: number[]) => [id, ...uleb(content.length), ...content]
  const pages = Math.ceil((TABLES + SCRATCH) / 65536)
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 3, 0x7f, 0x7f, 0x7f, 1, 0x7f]), // type (i32, i32, i32) -> i32
    ...section(3, [1, 0]), // one function of that type
    ...section(5, [1, 0, ...uleb(pages)]), // one memory
    ...section(7, [2, 1, 0x6d, 2, 0, 3, 0x63, 0x72, 0x63, 0, 0]), // exports "m" and "crc"
    ...section(10, [1, ...uleb(body.length), ...body]),
  ])
}

/** The checksum engine of this thread: a scratch area and CRC-32C over a range of it. */
interface CrcScratch {
  readonly bytes: Uint8Array
  readonly view: DataView
  /** CRC-32C continued from `crc` over bytes[start, end). */
  crc(start: number, end: number, crc: number): number
}

let engine: CrcScratch | null = null

function crcScratch(): CrcScratch {
  if (engine !== null) return engine
  const inst = new WebAssembly.Instance(new WebAssembly.Module(crcModule()))
  const mem = inst.exports.m as WebAssembly.Memory
  const fn = inst.exports.crc as (p: number, n: number, c: number) => number
  // T_0 is the bytewise table of ../bench/crc32c.ts, T_k the CRC of a byte followed by k zeros
  const t = new Uint32Array(mem.buffer, 0, SLICE * 256)
  for (let i = 0; i < 256; i++) {
    let c = i
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
    t[i] = c >>> 0
  }
  for (let i = 0; i < 256; i++) {
    let c = t[i]!
    for (let k = 1; k < SLICE; k++) {
      c = (t[c & 0xff]! ^ (c >>> 8)) >>> 0
      t[k * 256 + i] = c
    }
  }
  engine = {
    bytes: new Uint8Array(mem.buffer, TABLES, SCRATCH),
    view: new DataView(mem.buffer, TABLES, SCRATCH),
    crc: (start, end, crc) => fn(TABLES + start, end - start, crc) >>> 0,
  }
  return engine
}

/**
 * Node's `Buffer.prototype.fill`: called on a Uint8Array with a Uint8Array value of the filled
 * length, it copies with one memcpy, where `TypedArray.prototype.set` copies word by word into
 * shared memory. Taken when this module loads.
 */
const bufferFill = Buffer.prototype.fill as unknown as (this: Uint8Array, value: Uint8Array, offset: number, end: number) => Uint8Array

/** Where journal bytes live. */
export interface JournalMedium {
  /** The journal's capacity in bytes. */
  readonly size: number
  /** Bytes the medium holds now (a file's length; at most `size`). */
  extent(): number
  read(offset: number, into: Uint8Array): void
  write(offset: number, src: Uint8Array): void
  /** The size of the image the journal belongs to when the medium can tell, else null. */
  imageBytes?(): number | null
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
  extent(): number {
    return this.bytes.length
  }
  read(offset: number, into: Uint8Array): void {
    into.set(this.bytes.subarray(offset, offset + into.length))
  }
  write(offset: number, src: Uint8Array): void {
    if (src.length > 0) bufferFill.call(this.bytes, src, offset, offset + src.length)
  }
  close(): void {}
}

/** A journal in a file beside the image (file disks): survives the process being killed. */
export class FileJournalMedium implements JournalMedium {
  private fd: number
  constructor(readonly path: string, readonly size: number) {
    const there = fs.existsSync(path)
    if (crashArmed && !there) crashPoint(`create ${path}`)
    this.fd = fs.openSync(path, there ? 'r+' : 'w+')
  }
  extent(): number {
    return Math.min(this.size, fs.fstatSync(this.fd).size)
  }
  read(offset: number, into: Uint8Array): void {
    let done = 0
    while (done < into.length) {
      const n = fs.readSync(this.fd, into, done, into.length - done, offset + done)
      if (n === 0) { into.fill(0, done); break }
      done += n
    }
  }
  write(offset: number, src: Uint8Array): void {
    if (crashArmed) crashPoint(`write ${this.path} ${offset}+${src.length}`)
    let done = 0
    while (done < src.length) done += fs.writeSync(this.fd, src, done, src.length - done, offset + done)
  }
  /** The length of the image `<image>.journal` belongs to (null when there is none). */
  imageBytes(): number | null {
    if (!this.path.endsWith('.journal')) return null
    try {
      return fs.statSync(this.path.slice(0, -'.journal'.length)).size
    } catch {
      return null
    }
  }
  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd)
    this.fd = -1
  }
}

/** A verified entry: the sectors it covers and where their pre-image lies in the journal. */
export interface JournalEntry {
  readonly firstSector: number
  readonly sectors: number
  /** The pre-image is all zeros (nothing stored). */
  readonly zeros: boolean
  /** Byte offset of the stored pre-image in the journal. */
  readonly at: number
}

/** What a scan of a journal found. */
export interface JournalScan {
  /** 'none': no journal (or an unreadable header); 'old': the first format, never replayed. */
  readonly format: 'current' | 'old' | 'none'
  readonly epoch: number
  /** The entries of the current epoch that verify, in order, up to the first one that does not. */
  readonly entries: JournalEntry[]
}

/** A drive's journal of pre-images, in the layout described at the top of this file. */
export class Journal {
  private epoch = 1
  private end = HEADER
  /** The running checksum of the epoch's chain (the last entry's crc). */
  private chain = 0
  /** 4 KiB page → bitmask of sectors already journaled since the last reset. */
  private readonly journaled = new Map<number, number>()
  private readonly header = new Uint8Array(HEADER)
  private readonly head = new Uint8Array(ENTRY_HEAD)
  private readonly headView = new DataView(this.head.buffer)
  resets = 0

  /** Opens a journal and starts a new epoch: entries left by an earlier holder no longer count. */
  constructor(readonly medium: JournalMedium) {
    const h = readHeader(medium)
    if (h.format !== 'none') this.epoch = h.epoch
    this.begin()
  }

  /** Starts the next epoch with a new salt. */
  private begin(): void {
    this.epoch = (this.epoch + 1) >>> 0 || 1
    this.end = HEADER
    this.journaled.clear()
    const h = this.header
    const dv = new DataView(h.buffer)
    h.fill(0)
    dv.setUint32(0, MAGIC, true)
    dv.setUint32(4, this.epoch, true)
    randomFillSync(h, 8, 8)
    dv.setUint32(HEADER_CRC, crc32c(h, 0, 0, HEADER_CRC), true)
    this.chain = crc32c(h, 0, 0, SEED_BYTES)
    // a medium too small for the header never holds an entry either (every write is written back)
    if (this.medium.size >= HEADER) this.medium.write(0, h)
  }

  /** Everything so far is durable: forget the pre-images. */
  reset(): void {
    this.begin()
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
    const stored = hole ? 0 : n * 512
    const bytes = ENTRY_HEAD + stored
    if (this.end + bytes > this.medium.size) {
      if (HEADER + bytes > this.medium.size) return false
      // the cache is full: it writes back, so what it held becomes durable
      this.reset()
    }
    const hv = this.headView
    hv.setUint32(4, hole ? (n | ZERO_FLAG) >>> 0 : n, true)
    hv.setFloat64(8, first, true)
    const x = crcScratch()
    if (stored <= CHUNK) {
      // the common case: head and pre-image in one piece, one write
      x.bytes.set(this.head, 0)
      if (!hole) readPre(first * 512, x.bytes.subarray(ENTRY_HEAD, bytes))
      const crc = x.crc(4, bytes, this.chain)
      x.view.setUint32(0, crc, true)
      this.medium.write(this.end, x.bytes.subarray(0, bytes))
      this.chain = crc
    } else {
      // the pre-image chunk by chunk, then the head that makes the entry count
      let crc = crc32c(this.head, this.chain, 4, ENTRY_HEAD)
      for (let done = 0; done < stored; done += CHUNK) {
        const part = x.bytes.subarray(0, Math.min(CHUNK, stored - done))
        readPre(first * 512 + done, part)
        crc = x.crc(0, part.length, crc)
        this.medium.write(this.end + ENTRY_HEAD + done, part)
      }
      hv.setUint32(0, crc, true)
      this.medium.write(this.end, this.head)
      this.chain = crc
    }
    this.end += bytes
    this.mark(first, n)
    return true
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

  /**
   * Reads a journal's header and the entries of its epoch that verify, in order. Nothing is
   * allocated beyond a bounded buffer, whatever the journal holds: an entry must fit in the bytes
   * the journal holds and name only sectors of an image of `imageBytes` (default: the size the
   * medium knows, else any sector a safe integer offset can name).
   */
  static scan(medium: JournalMedium, imageBytes?: number): JournalScan {
    const h = readHeader(medium)
    if (h.format !== 'current') return { format: h.format, epoch: h.epoch, entries: [] }
    const limit = Math.min(medium.size, medium.extent())
    const image = imageBytes ?? medium.imageBytes?.() ?? Number.MAX_SAFE_INTEGER
    const entries: JournalEntry[] = []
    const eh = new Uint8Array(ENTRY_HEAD)
    const edv = new DataView(eh.buffer)
    const x = crcScratch()
    let chain = h.seed
    let pos = HEADER
    while (pos + ENTRY_HEAD <= limit) {
      medium.read(pos, eh)
      const raw = edv.getUint32(4, true)
      const zeros = (raw & ZERO_FLAG) !== 0
      const n = raw & ~ZERO_FLAG
      const first = edv.getFloat64(8, true)
      const stored = zeros ? 0 : n * 512
      if (n === 0 || !Number.isSafeInteger(first) || first < 0 || (first + n) * 512 > image || pos + ENTRY_HEAD + stored > limit) break
      let crc = crc32c(eh, chain, 4, ENTRY_HEAD)
      for (let done = 0; done < stored; done += CHUNK) {
        const part = x.bytes.subarray(0, Math.min(CHUNK, stored - done))
        medium.read(pos + ENTRY_HEAD + done, part)
        crc = x.crc(0, part.length, crc)
      }
      if (crc !== edv.getUint32(0, true)) break
      entries.push({ firstSector: first, sectors: n, zeros, at: pos + ENTRY_HEAD })
      chain = crc
      pos += ENTRY_HEAD + stored
    }
    return { format: 'current', epoch: h.epoch, entries }
  }

  /**
   * Replays a power cut: restores the pre-images of the entries that verify (all, or with `seed`
   * a seeded subset of sectors), then starts a new epoch. A journal of the first format is not
   * replayed (its entries cannot be told from guest data): the writes it covered stay, with a
   * process warning naming the file. Returns how many sectors were rolled back.
   */
  static powerCut(medium: JournalMedium, write: (offset: number, data: Uint8Array) => void, seed?: number, imageBytes?: number): number {
    const scan = Journal.scan(medium, imageBytes)
    if (scan.format === 'old') {
      const where = medium instanceof FileJournalMedium ? medium.path : 'a memory disk journal'
      process.emitWarning(`${where}: a journal of an older format is ignored; the writes it covered stay on the image`, { code: 'IOFCERT_JOURNAL_FORMAT' })
    }
    const rng = seed === undefined ? null : new Rng(seed)
    let lost = 0
    const part0 = crcScratch().bytes
    // entries are first-write pre-images of one epoch, so no sector appears twice
    for (const e of scan.entries) {
      for (let done = 0; done < e.sectors; done += CHUNK / 512) {
        const n = Math.min(CHUNK / 512, e.sectors - done)
        const part = part0.subarray(0, n * 512)
        if (e.zeros) part.fill(0)
        else medium.read(e.at + done * 512, part)
        // consecutive restored sectors go back in one write
        let run = -1
        for (let i = 0; i <= n; i++) {
          const keep = i < n && (rng === null || rng.float() >= 0.5)
          if (keep) {
            lost++
            if (run < 0) run = i
          } else if (run >= 0) {
            write((e.firstSector + done + run) * 512, part.subarray(run * 512, i * 512))
            run = -1
          }
        }
      }
    }
    new Journal(medium)
    return lost
  }

  /** Makes everything durable without replaying (the host kept power). */
  static commit(medium: JournalMedium): void {
    new Journal(medium)
  }
}

function readHeader(medium: JournalMedium): { format: JournalScan['format']; epoch: number; seed: number } {
  const h = new Uint8Array(HEADER)
  medium.read(0, h)
  const dv = new DataView(h.buffer)
  const magic = dv.getUint32(0, true)
  const epoch = dv.getUint32(4, true)
  if (magic === OLD_MAGIC) return { format: 'old', epoch, seed: 0 }
  if (magic !== MAGIC || dv.getUint32(HEADER_CRC, true) !== crc32c(h, 0, 0, HEADER_CRC)) return { format: 'none', epoch: 0, seed: 0 }
  return { format: 'current', epoch, seed: crc32c(h, 0, 0, SEED_BYTES) }
}
