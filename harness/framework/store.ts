/**
 * Disk images as the VM worker sees them: sparse in-memory blocks (shared with the main thread so
 * a disk outlives its VM's worker) or a sparse file read and written with positioned I/O.
 */
import * as fs from 'node:fs'

/** The byte store beneath a drive's volatile cache. */
export interface BlockStore {
  /** True when the range was never written (reads zeros); optional, for stores that know. */
  isHole?(offset: number, length: number): boolean
  read(offset: number, into: Uint8Array): void
  write(offset: number, src: Uint8Array): void
  zero(offset: number, length: number): void
  sync(): void
  close(): void
}

export const BLOCK = 4096
const SLAB_BLOCKS = 4096 // 16 MiB slabs: few shared buffers, each carved into 4 KiB blocks

/** What the main thread keeps of a memory disk: its slabs and block index. */
export interface MemoryImage {
  slabs: SharedArrayBuffer[]
  /** block index → slot (slab * SLAB_BLOCKS + block in slab) */
  index: Map<number, number>
  free: number[]
}

/** Index updates a worker sends the main thread: [block, slot] pairs, slot -1 = freed. */
export interface MemoryUpdate {
  slabs: SharedArrayBuffer[]
  pairs: number[]
}

export function newMemoryImage(): MemoryImage {
  return { slabs: [], index: new Map(), free: [] }
}

/** Applies a worker's updates to the main thread's copy of the image. */
export function applyMemoryUpdate(img: MemoryImage, u: MemoryUpdate): void {
  for (const s of u.slabs) img.slabs.push(s)
  const p = u.pairs
  for (let i = 0; i < p.length; i += 2) {
    const block = p[i]!, slot = p[i + 1]!
    if (slot < 0) {
      const old = img.index.get(block)
      if (old !== undefined) img.free.push(old)
      img.index.delete(block)
    } else {
      img.index.set(block, slot)
      const fi = img.free.indexOf(slot)
      if (fi >= 0) img.free.splice(fi, 1)
    }
  }
}

/** Bytes the image holds (written blocks only: unwritten ranges cost nothing). */
export function memoryImageBytes(img: MemoryImage): number {
  return img.index.size * BLOCK
}

/** Writes into a main-thread image (replaying a power cut after the worker is gone). */
export function writeMemoryImage(img: MemoryImage, offset: number, data: Uint8Array): void {
  let pos = 0
  while (pos < data.length) {
    const abs = offset + pos
    const block = Math.floor(abs / BLOCK)
    const inBlock = abs - block * BLOCK
    const n = Math.min(BLOCK - inBlock, data.length - pos)
    const part = data.subarray(pos, pos + n)
    let slot = img.index.get(block)
    if (slot === undefined) {
      if (part.every(b => b === 0)) { pos += n; continue }
      slot = img.free.pop()
      if (slot === undefined) {
        slot = img.slabs.length * SLAB_BLOCKS
        img.slabs.push(new SharedArrayBuffer(SLAB_BLOCKS * BLOCK))
        for (let i = SLAB_BLOCKS - 1; i > 0; i--) img.free.push(slot + i)
      }
      const v = new Uint8Array(img.slabs[Math.floor(slot / SLAB_BLOCKS)]!)
      v.fill(0, (slot % SLAB_BLOCKS) * BLOCK, (slot % SLAB_BLOCKS + 1) * BLOCK)
      img.index.set(block, slot)
    }
    const v = new Uint8Array(img.slabs[Math.floor(slot / SLAB_BLOCKS)]!)
    v.set(part, (slot % SLAB_BLOCKS) * BLOCK + inBlock)
    pos += n
  }
}

/** Reads from a main-thread image (for checks that compare disks with oracles). */
export function readMemoryImage(img: MemoryImage, offset: number, length: number): Uint8Array {
  const out = new Uint8Array(length)
  const views = img.slabs.map(s => new Uint8Array(s))
  let pos = 0
  while (pos < length) {
    const abs = offset + pos
    const block = Math.floor(abs / BLOCK)
    const inBlock = abs - block * BLOCK
    const n = Math.min(BLOCK - inBlock, length - pos)
    const slot = img.index.get(block)
    if (slot !== undefined) {
      const v = views[Math.floor(slot / SLAB_BLOCKS)]!
      const base = (slot % SLAB_BLOCKS) * BLOCK + inBlock
      out.set(v.subarray(base, base + n), pos)
    }
    pos += n
  }
  return out
}

/** The worker's side of a memory disk. Index changes are queued for the main thread. */
export class MemoryStore implements BlockStore {
  private readonly views: Uint8Array[]
  private readonly slabs: SharedArrayBuffer[]
  private readonly index: Map<number, number>
  private readonly free: number[]
  private nextSlot: number
  private pending: number[] = []
  private pendingSlabs: SharedArrayBuffer[] = []
  private scheduled = false
  constructor(img: { slabs: SharedArrayBuffer[]; index: Map<number, number>; free: number[] }, private readonly onDirty: () => void) {
    this.slabs = img.slabs.slice()
    this.views = this.slabs.map(s => new Uint8Array(s))
    this.index = new Map(img.index)
    this.free = img.free.slice()
    const used = new Set(this.index.values())
    for (const f of this.free) used.add(f)
    this.nextSlot = 0
    for (const s of used) if (s + 1 > this.nextSlot) this.nextSlot = s + 1
  }
  /** Takes the queued index updates (posted before any completion that depends on them). */
  takeUpdate(): MemoryUpdate | null {
    if (this.pending.length === 0 && this.pendingSlabs.length === 0) return null
    const u = { slabs: this.pendingSlabs, pairs: this.pending }
    this.scheduled = false
    this.pending = []
    this.pendingSlabs = []
    return u
  }
  private schedule(): void {
    if (!this.scheduled) {
      this.scheduled = true
      this.onDirty()
    }
  }
  private alloc(block: number): number {
    let slot = this.free.pop()
    if (slot === undefined) {
      slot = this.nextSlot++
      const slab = Math.floor(slot / SLAB_BLOCKS)
      if (slab >= this.slabs.length) {
        const sab = new SharedArrayBuffer(SLAB_BLOCKS * BLOCK)
        this.slabs.push(sab)
        this.views.push(new Uint8Array(sab))
        this.pendingSlabs.push(sab)
      }
    } else {
      const v = this.views[Math.floor(slot / SLAB_BLOCKS)]!
      const base = (slot % SLAB_BLOCKS) * BLOCK
      v.fill(0, base, base + BLOCK)
    }
    this.index.set(block, slot)
    this.pending.push(block, slot)
    this.schedule()
    return slot
  }
  isHole(offset: number, length: number): boolean {
    const last = Math.floor((offset + length - 1) / BLOCK)
    for (let b = Math.floor(offset / BLOCK); b <= last; b++) if (this.index.has(b)) return false
    return true
  }
  read(offset: number, into: Uint8Array): void {
    const length = into.length
    let pos = 0
    while (pos < length) {
      const abs = offset + pos
      const block = (abs / BLOCK) | 0
      const inBlock = abs - block * BLOCK
      const n = Math.min(BLOCK - inBlock, length - pos)
      const slot = this.index.get(block)
      if (slot === undefined) into.fill(0, pos, pos + n)
      else {
        const v = this.views[(slot / SLAB_BLOCKS) | 0]!
        const base = (slot % SLAB_BLOCKS) * BLOCK + inBlock
        into.set(v.subarray(base, base + n), pos)
      }
      pos += n
    }
  }
  write(offset: number, src: Uint8Array): void {
    const length = src.length
    let pos = 0
    while (pos < length) {
      const abs = offset + pos
      const block = (abs / BLOCK) | 0
      const inBlock = abs - block * BLOCK
      const n = Math.min(BLOCK - inBlock, length - pos)
      let slot = this.index.get(block)
      if (slot === undefined) slot = this.alloc(block)
      const v = this.views[(slot / SLAB_BLOCKS) | 0]!
      v.set(n === length ? src : src.subarray(pos, pos + n), (slot % SLAB_BLOCKS) * BLOCK + inBlock)
      pos += n
    }
  }
  zero(offset: number, length: number): void {
    let pos = 0
    while (pos < length) {
      const abs = offset + pos
      const block = Math.floor(abs / BLOCK)
      const inBlock = abs - block * BLOCK
      const n = Math.min(BLOCK - inBlock, length - pos)
      const slot = this.index.get(block)
      if (slot !== undefined) {
        if (n === BLOCK) {
          // a whole block unmapped goes back to the free list: unmap really releases space
          this.index.delete(block)
          this.free.push(slot)
          this.pending.push(block, -1)
          this.schedule()
        } else {
          const v = this.views[Math.floor(slot / SLAB_BLOCKS)]!
          const base = (slot % SLAB_BLOCKS) * BLOCK + inBlock
          v.fill(0, base, base + n)
        }
      }
      pos += n
    }
  }
  sync(): void {}
  close(): void {}
  /** A private copy of every written block (a snapshot's image). */
  copy(): { sab: SharedArrayBuffer; pairs: number[] } {
    const sab = new SharedArrayBuffer(Math.max(1, this.index.size) * BLOCK)
    const view = new Uint8Array(sab)
    const pairs: number[] = []
    let i = 0
    for (const [block, slot] of this.index) {
      const base = (slot % SLAB_BLOCKS) * BLOCK
      view.set(this.views[Math.floor(slot / SLAB_BLOCKS)]!.subarray(base, base + BLOCK), i * BLOCK)
      pairs.push(block, i++)
    }
    return { sab, pairs }
  }
}

const ZEROS = new Uint8Array(1 << 20)

/** A sparse image file: positioned synchronous I/O from the VM's own thread. */
export class FileStore implements BlockStore {
  private fd: number
  constructor(readonly path: string, capacity: number) {
    this.fd = fs.openSync(path, fs.existsSync(path) ? 'r+' : 'w+')
    if (fs.fstatSync(this.fd).size !== capacity) fs.ftruncateSync(this.fd, capacity)
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
    let done = 0
    while (done < src.length) done += fs.writeSync(this.fd, src, done, src.length - done, offset + done)
  }
  zero(offset: number, length: number): void {
    let pos = 0
    while (pos < length) {
      const n = Math.min(ZEROS.length, length - pos)
      this.write(offset + pos, n === ZEROS.length ? ZEROS : ZEROS.subarray(0, n))
      pos += n
    }
  }
  sync(): void {
    fs.fdatasyncSync(this.fd)
  }
  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd)
    this.fd = -1
  }
}
