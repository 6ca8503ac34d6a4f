/**
 * Disk images as the VM worker sees them: sparse in-memory blocks (shared with the main thread so
 * a disk outlives its VM's worker) or a sparse file read and written with positioned I/O.
 */
import { Buffer } from 'node:buffer'
import * as fs from 'node:fs'
import { syncData } from './durable.js'

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
/** Blocks per memory: a shared WebAssembly memory addresses at most 4 GiB. */
const MEM_SHIFT = 20
const MEM_BLOCKS = 1 << MEM_SHIFT
const PAGE = 65536
const BLOCKS_PER_PAGE = PAGE / BLOCK
/** Pages a memory grows by at a time (16 MiB). */
const GROW_PAGES = 256
const MAX_PAGES = 65536

/*
 * A memory disk's blocks live in shared WebAssembly memories rather than plain SharedArrayBuffers:
 * the bytes outlive the VM's worker the same way, and a copy between two places of one memory is
 * a `memory.copy` (the engine's memmove) where `TypedArray.set` on shared memory copies word by
 * word — three times slower for a 4 KiB block. I/O buffers handed out by `ioBuffer()` live in the
 * disk's first memory, so an I/O from one of them moves its data with a single memmove; but no I/O
 * a filter sees uses one (a filter would get a window onto the disk's whole memory, and could tell
 * such an I/O from a guest's): guest and benchmark I/O alike bring buffers of their own, which
 * read() and write() copy with copyPlain.
 *
 * The module, hand-assembled: it imports one shared memory (0 to 65536 pages) and exports
 *   cp(dst, src, len)   = memory.copy
 *   fill(dst, val, len) = memory.fill
 */
const WASM = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x07, 0x01, 0x60, 0x03, 0x7f, 0x7f, 0x7f, 0x00,
  0x02, 0x0b, 0x01, 0x01, 0x65, 0x01, 0x6d, 0x02, 0x03, 0x00, 0x80, 0x80, 0x04,
  0x03, 0x03, 0x02, 0x00, 0x00,
  0x07, 0x0d, 0x02, 0x02, 0x63, 0x70, 0x00, 0x00, 0x04, 0x66, 0x69, 0x6c, 0x6c, 0x00, 0x01,
  0x0a, 0x1a, 0x02,
  0x0c, 0x00, 0x20, 0x00, 0x20, 0x01, 0x20, 0x02, 0xfc, 0x0a, 0x00, 0x00, 0x0b,
  0x0b, 0x00, 0x20, 0x00, 0x20, 0x01, 0x20, 0x02, 0xfc, 0x0b, 0x00, 0x0b,
])
let wasmModule: WebAssembly.Module | null = null

/**
 * Copies `src` (all of it) into `dst` at `at`, between a buffer of the caller's own and shared
 * memory, with one memcpy: `TypedArray.prototype.set` copies word by word when either side is
 * shared (2–3× slower for 4 KiB in cache), where Node's `Buffer.prototype.fill`, given a
 * Uint8Array of the filled length, is one memcpy in C++. Taken when this module loads, before any
 * filter code runs in the thread.
 */
const bufferFill = Buffer.prototype.fill as unknown as (this: Uint8Array, value: Uint8Array, offset: number, end: number) => Uint8Array
function copyPlain(dst: Uint8Array, at: number, src: Uint8Array): void {
  bufferFill.call(dst, src, at, at + src.length)
}

interface MemOps {
  cp(dst: number, src: number, len: number): void
  fill(dst: number, val: number, len: number): void
}

function opsFor(mem: WebAssembly.Memory): MemOps {
  wasmModule ??= new WebAssembly.Module(WASM)
  return new WebAssembly.Instance(wasmModule, { e: { m: mem } }).exports as unknown as MemOps
}

function newMemory(pages: number): WebAssembly.Memory {
  return new WebAssembly.Memory({ initial: pages, maximum: MAX_PAGES, shared: true })
}

/** Grows `mem` so that it holds at least `blocks` blocks. */
function ensureBlocks(mem: WebAssembly.Memory, blocks: number): void {
  const have = mem.buffer.byteLength / PAGE
  const need = Math.ceil(blocks / BLOCKS_PER_PAGE)
  if (need > have) mem.grow(Math.min(MAX_PAGES, Math.max(need, have + GROW_PAGES)) - have)
}

/** What the main thread keeps of a memory disk: its memories and block index. */
export interface MemoryImage {
  mems: WebAssembly.Memory[]
  /** block index → slot (memory * 2^20 + block in memory) */
  index: Map<number, number>
  free: number[]
}

/** Index updates a worker sends the main thread: [block, slot] pairs, slot -1 = block freed, block -1 = slot free. */
export interface MemoryUpdate {
  mems: WebAssembly.Memory[]
  pairs: number[]
}

export function newMemoryImage(): MemoryImage {
  return { mems: [], index: new Map(), free: [] }
}

/** Applies a worker's updates to the main thread's copy of the image. */
export function applyMemoryUpdate(img: MemoryImage, u: MemoryUpdate): void {
  for (const m of u.mems) img.mems.push(m)
  const p = u.pairs
  for (let i = 0; i < p.length; i += 2) {
    const block = p[i]!, slot = p[i + 1]!
    if (block < 0) {
      // an I/O buffer's block, given back when its disk was closed
      img.free.push(slot)
    } else if (slot < 0) {
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

function slotBase(slot: number): number {
  return (slot & (MEM_BLOCKS - 1)) * BLOCK
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
        // past every block a worker could have handed out: the end of the last memory, grown
        let last = img.mems[img.mems.length - 1]
        if (last === undefined || last.buffer.byteLength / BLOCK + GROW_PAGES * BLOCKS_PER_PAGE > MEM_BLOCKS) {
          last = newMemory(0)
          img.mems.push(last)
        }
        const m = img.mems.length - 1
        const first = last.buffer.byteLength / BLOCK
        last.grow(GROW_PAGES)
        slot = m * MEM_BLOCKS + first
        for (let i = GROW_PAGES * BLOCKS_PER_PAGE - 1; i > 0; i--) img.free.push(slot + i)
      }
      const v = new Uint8Array(img.mems[slot >>> MEM_SHIFT]!.buffer)
      v.fill(0, slotBase(slot), slotBase(slot) + BLOCK)
      img.index.set(block, slot)
    }
    const v = new Uint8Array(img.mems[slot >>> MEM_SHIFT]!.buffer)
    v.set(part, slotBase(slot) + inBlock)
    pos += n
  }
}

/** Reads from a main-thread image (for checks that compare disks with oracles). */
export function readMemoryImage(img: MemoryImage, offset: number, length: number): Uint8Array {
  const out = new Uint8Array(length)
  const views = img.mems.map(m => new Uint8Array(m.buffer))
  let pos = 0
  while (pos < length) {
    const abs = offset + pos
    const block = Math.floor(abs / BLOCK)
    const inBlock = abs - block * BLOCK
    const n = Math.min(BLOCK - inBlock, length - pos)
    const slot = img.index.get(block)
    if (slot !== undefined) {
      const base = slotBase(slot) + inBlock
      out.set(views[slot >>> MEM_SHIFT]!.subarray(base, base + n), pos)
    }
    pos += n
  }
  return out
}

/** Index pages: block → slot + 1 (0 = never written), 1024 blocks a page, made as blocks are. */
const IDX_SHIFT = 10
const IDX_MASK = (1 << IDX_SHIFT) - 1

/** The worker's side of a memory disk. Index changes are queued for the main thread. */
export class MemoryStore implements BlockStore {
  private readonly mems: WebAssembly.Memory[]
  private readonly ops: MemOps[]
  private readonly views: Uint8Array[]
  /** Every SharedArrayBuffer object seen for a memory (a grown memory hands out a new one). */
  private readonly owner = new Map<ArrayBufferLike, number>()
  private lastBuf: ArrayBufferLike | null = null
  private lastMem = -1
  private readonly pages: (Int32Array | undefined)[] = []
  private count = 0
  private readonly free: number[]
  private nextSlot: number
  private readonly buffers: number[] = []
  private pending: number[] = []
  private pendingMems: WebAssembly.Memory[] = []
  private scheduled = false
  constructor(img: { mems: WebAssembly.Memory[]; index: Map<number, number>; free: number[] }, private readonly onDirty: () => void) {
    this.mems = img.mems.slice()
    this.ops = this.mems.map(opsFor)
    this.views = this.mems.map(m => new Uint8Array(m.buffer))
    this.mems.forEach((_, i) => this.owner.set(this.views[i]!.buffer, i))
    for (const [block, slot] of img.index) this.setSlot(block, slot + 1)
    this.count = img.index.size
    this.free = img.free.slice()
    let next = 0
    for (const s of img.index.values()) if (s + 1 > next) next = s + 1
    for (const f of this.free) if (f + 1 > next) next = f + 1
    this.nextSlot = next
  }
  private getSlot(block: number): number {
    const p = this.pages[block >>> IDX_SHIFT]
    return p === undefined ? -1 : p[block & IDX_MASK]! - 1
  }
  private setSlot(block: number, v: number): void {
    let p = this.pages[block >>> IDX_SHIFT]
    if (p === undefined) this.pages[block >>> IDX_SHIFT] = p = new Int32Array(1 << IDX_SHIFT)
    p[block & IDX_MASK] = v
  }
  /** Takes the queued index updates (posted before any completion that depends on them). */
  takeUpdate(): MemoryUpdate | null {
    if (this.pending.length === 0 && this.pendingMems.length === 0) return null
    const u = { mems: this.pendingMems, pairs: this.pending }
    this.scheduled = false
    this.pending = []
    this.pendingMems = []
    return u
  }
  private schedule(): void {
    if (!this.scheduled) {
      this.scheduled = true
      this.onDirty()
    }
  }
  /** Renews memory `m`'s view after it grew (a grown memory hands out a new buffer object). */
  private refresh(m: number): void {
    const v = new Uint8Array(this.mems[m]!.buffer)
    this.views[m] = v
    this.owner.set(v.buffer, m)
  }
  /** `count` consecutive fresh slots, in one memory. */
  private bump(count: number): number {
    let slot = this.nextSlot
    if ((slot & (MEM_BLOCKS - 1)) + count > MEM_BLOCKS) slot = ((slot >>> MEM_SHIFT) + 1) * MEM_BLOCKS
    const m = slot >>> MEM_SHIFT
    while (m >= this.mems.length) {
      const mem = newMemory(0)
      this.mems.push(mem)
      this.ops.push(opsFor(mem))
      this.views.push(new Uint8Array(mem.buffer))
      this.pendingMems.push(mem)
    }
    const end = (slot & (MEM_BLOCKS - 1)) + count
    if (end * BLOCK > this.views[m]!.length) {
      ensureBlocks(this.mems[m]!, end)
      this.refresh(m)
    }
    this.nextSlot = slot + count
    return slot
  }
  private alloc(block: number, whole: boolean): number {
    let slot = this.free.pop()
    if (slot === undefined) slot = this.bump(1)
    // a slot may hold an earlier block's or I/O buffer's bytes: a partial write starts from zeros
    if (!whole) this.ops[slot >>> MEM_SHIFT]!.fill(slotBase(slot), 0, BLOCK)
    this.setSlot(block, slot + 1)
    this.count++
    this.pending.push(block, slot)
    this.schedule()
    return slot
  }
  /** The memory `buf` lies in, or -1. */
  private memOf(buf: Uint8Array): number {
    const b = buf.buffer
    if (b === this.lastBuf) return this.lastMem
    const m = this.owner.get(b) ?? -1
    this.lastBuf = b
    this.lastMem = m
    return m
  }
  /**
   * An I/O buffer in the disk's own memory: reads into it and writes from it move their data with
   * one memmove. Its blocks go back to the free list when the store is closed. Never for I/O a
   * filter sees (see the note at the top of the file).
   */
  ioBuffer(length: number): Uint8Array {
    const blocks = Math.max(1, Math.ceil(length / BLOCK))
    const slot = this.bump(blocks)
    for (let i = 0; i < blocks; i++) this.buffers.push(slot + i)
    const m = slot >>> MEM_SHIFT
    this.ops[m]!.fill(slotBase(slot), 0, blocks * BLOCK)
    return new Uint8Array(this.views[m]!.buffer, slotBase(slot), length)
  }
  isHole(offset: number, length: number): boolean {
    const last = Math.floor((offset + length - 1) / BLOCK)
    for (let b = Math.floor(offset / BLOCK); b <= last; b++) if (this.getSlot(b) >= 0) return false
    return true
  }
  read(offset: number, into: Uint8Array): void {
    const length = into.length
    const im = this.memOf(into)
    let pos = 0
    while (pos < length) {
      const abs = offset + pos
      const block = Math.floor(abs / BLOCK)
      const inBlock = abs - block * BLOCK
      const n = Math.min(BLOCK - inBlock, length - pos)
      const slot = this.getSlot(block)
      if (slot < 0) {
        if (im >= 0) this.ops[im]!.fill(into.byteOffset + pos, 0, n)
        else into.fill(0, pos, pos + n)
      } else {
        const m = slot >>> MEM_SHIFT
        const base = slotBase(slot) + inBlock
        if (m === im) this.ops[m]!.cp(into.byteOffset + pos, base, n)
        else copyPlain(into, pos, this.views[m]!.subarray(base, base + n))
      }
      pos += n
    }
  }
  write(offset: number, src: Uint8Array): void {
    const length = src.length
    const sm = this.memOf(src)
    let pos = 0
    while (pos < length) {
      const abs = offset + pos
      const block = Math.floor(abs / BLOCK)
      const inBlock = abs - block * BLOCK
      const n = Math.min(BLOCK - inBlock, length - pos)
      let slot = this.getSlot(block)
      if (slot < 0) slot = this.alloc(block, n === BLOCK)
      const m = slot >>> MEM_SHIFT
      const base = slotBase(slot) + inBlock
      if (m === sm) this.ops[m]!.cp(base, src.byteOffset + pos, n)
      else copyPlain(this.views[m]!, base, n === length ? src : src.subarray(pos, pos + n))
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
      const slot = this.getSlot(block)
      if (slot >= 0) {
        if (n === BLOCK) {
          // a whole block unmapped goes back to the free list: unmap really releases space
          this.setSlot(block, 0)
          this.count--
          this.free.push(slot)
          this.pending.push(block, -1)
          this.schedule()
        } else {
          this.ops[slot >>> MEM_SHIFT]!.fill(slotBase(slot) + inBlock, 0, n)
        }
      }
      pos += n
    }
  }
  sync(): void {}
  /** The I/O buffers' blocks go back to the free list (the main thread learns of them as freed). */
  close(): void {
    if (this.buffers.length === 0) return
    for (const s of this.buffers) this.pending.push(-1, s)
    this.buffers.length = 0
    this.schedule()
  }
  /** A private copy of every written block (a snapshot's image). */
  copy(): { sab: SharedArrayBuffer; pairs: number[] } {
    const sab = new SharedArrayBuffer(Math.max(1, this.count) * BLOCK)
    const view = new Uint8Array(sab)
    const pairs: number[] = []
    let i = 0
    for (let pi = 0; pi < this.pages.length; pi++) {
      const p = this.pages[pi]
      if (p === undefined) continue
      for (let j = 0; j < p.length; j++) {
        const slot = p[j]! - 1
        if (slot < 0) continue
        const base = slotBase(slot)
        view.set(this.views[slot >>> MEM_SHIFT]!.subarray(base, base + BLOCK), i * BLOCK)
        pairs.push(pi * (IDX_MASK + 1) + j, i++)
      }
    }
    return { sab, pairs }
  }
}

/**
 * The `null` device: writes are dropped and reads transfer nothing (the buffer keeps what it held),
 * as fio's null engine and Linux's null_blk. It measures the I/O path, not a disk.
 */
export class NullStore implements BlockStore {
  isHole(_offset?: number, _length?: number): boolean {
    return true
  }
  read(_offset: number, _into: Uint8Array): void {}
  write(_offset: number, _src: Uint8Array): void {}
  zero(_offset: number, _length: number): void {}
  sync(): void {}
  close(): void {}
  copy(): { sab: SharedArrayBuffer; pairs: number[] } {
    return { sab: new SharedArrayBuffer(BLOCK), pairs: [] }
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
    syncData(this.fd)
  }
  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd)
    this.fd = -1
  }
}
