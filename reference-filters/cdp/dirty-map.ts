/**
 * The regions of a disk that may differ from its replica: the sidecar's image (a header, dirty
 * while the disk is open, and two region bitmaps), what of it is known to be on stable storage,
 * and the writes of it, several callers sharing one sync.
 *
 * Sidecar: [magic 4][format 1][state 1][region shift 1][0][capacity f64][touched][unseeded]
 */
import type { DiskContext } from 'iofcert/sdk'
import { MAX_REGIONS } from './constants.js'

/** The sidecar's magic number. */
export const MAGIC = 0x31504443 // "CDP1" little-endian
/** The sidecar's format version. */
export const FORMAT = 1
/** Header state: the disk was closed cleanly and the site holds what it holds. */
export const CLEAN = 0
/** Header state: the disk is open, or was not closed cleanly. */
export const DIRTY = 1
/** Bytes of the header; the two bitmaps follow it. */
export const HEADER = 16

/** The per-disk sidecar image: header and the two region bitmaps. */
export class DirtyMap {
  readonly regionShift: number
  readonly regionSize: number
  readonly regions: number
  /** Regions written since the last clean close. */
  readonly touched: Uint8Array
  /**
   * Regions of a newly protected disk whose first copy is not known to be at the site (until a
   * clean close): after a crash their chunks are copied again, zeros skipped where not written.
   */
  readonly unseeded: Uint8Array
  /** What of `touched` is known to be on stable storage. */
  readonly durable: Uint8Array
  state = DIRTY
  private queued: Promise<void> | null = null
  private tail: Promise<void> = Promise.resolve()

  constructor(private readonly disk: DiskContext, regionShift: number) {
    this.regionShift = regionShift
    this.regionSize = 2 ** regionShift
    this.regions = Math.max(1, Math.ceil(disk.capacity / this.regionSize))
    const n = Math.ceil(this.regions / 8)
    this.touched = new Uint8Array(n)
    this.unseeded = new Uint8Array(n)
    this.durable = new Uint8Array(n)
  }

  static shiftFor(capacity: number): number {
    let shift = 20
    while (2 ** shift * MAX_REGIONS < capacity) shift++
    return shift
  }

  /** Reads the sidecar; null when it is empty (the policy was just applied) or not ours. */
  static async load(disk: DiskContext): Promise<DirtyMap | null> {
    const size = await disk.sidecar.size()
    if (size < HEADER) return null
    const head = await disk.sidecar.read(0, HEADER)
    const dv = new DataView(head.buffer, head.byteOffset, HEADER)
    if (dv.getUint32(0, true) !== MAGIC || dv.getUint8(4) !== FORMAT) return null
    const shift = dv.getUint8(6)
    if (dv.getFloat64(8, true) !== disk.capacity || shift < 20 || shift > 52) return null
    const m = new DirtyMap(disk, shift)
    const n = m.touched.length
    const body = await disk.sidecar.read(HEADER, 2 * n)
    m.touched.set(body.subarray(0, n))
    m.unseeded.set(body.subarray(n, 2 * n))
    m.durable.set(m.touched)
    m.state = dv.getUint8(5)
    return m
  }

  has(bits: Uint8Array, r: number): boolean {
    return (bits[r >>> 3]! & (1 << (r & 7))) !== 0
  }

  set(bits: Uint8Array, r: number): void {
    bits[r >>> 3]! |= 1 << (r & 7)
  }

  /**
   * Writes the image and syncs it. Calls while one write waits to start share it; the image is
   * taken when the write starts, so everything set before the call is covered.
   */
  persist(): Promise<void> {
    if (this.queued !== null) return this.queued
    const p = this.tail.then(async () => {
      this.queued = null
      const img = new Uint8Array(HEADER + 2 * this.touched.length)
      const dv = new DataView(img.buffer)
      dv.setUint32(0, MAGIC, true)
      dv.setUint8(4, FORMAT)
      dv.setUint8(5, this.state)
      dv.setUint8(6, this.regionShift)
      dv.setFloat64(8, this.disk.capacity, true)
      const touched = this.touched.slice()
      img.set(touched, HEADER)
      img.set(this.unseeded, HEADER + touched.length)
      await this.disk.sidecar.write(0, img)
      await this.disk.sidecar.sync()
      for (let i = 0; i < touched.length; i++) this.durable[i]! |= touched[i]!
    })
    this.queued = p
    this.tail = p.catch(() => {})
    return p
  }
}
