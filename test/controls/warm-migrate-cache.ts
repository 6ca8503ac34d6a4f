/**
 * Negative control for nemesis.schedules: a coherent LRU read cache of 4 KiB blocks that moves
 * warm with its VM — at close('migrate') it saves the blocks it holds in the sidecar, and an open
 * that finds them there loads them. The fault: the saved image is never cleared, neither when it
 * is loaded nor at a later close. As long as every open follows a migration that saved a fresh
 * image, the cache is right; an open after any other close (a power-off, a host restart or power
 * cut) following a migration and some writes loads blocks those writes have since changed, and
 * serves them.
 *
 * Coherence in memory: a write or unmap drops the blocks it touches when it starts and counts
 * itself in flight on them until done; a read fills the cache in done() only with blocks that had
 * no write in flight when it started and none since.
 */
import { COMPLETE, PASS, type CloseReason, type Decision, type DiskContext, type FilterInstance, type FilterModule, type Io, type Outcome } from 'iofcert/sdk'

const BLOCK = 4096
const MiB = 1 << 20
const MAGIC = 0x574d4331 // "WMC1"

class WarmCache implements FilterInstance {
  /** Block → its bytes, least recently used first. */
  private readonly blocks = new Map<number, Uint8Array>()
  /** Block → writes and unmaps in flight on it. */
  private readonly writing = new Map<number, number>()
  /** Block → bumped by each write or unmap that starts on it. */
  private readonly gens = new Map<number, number>()
  /** A read's generations at start, or null when a write was in flight on one of its blocks. */
  private readonly reads = new Map<number, number[] | null>()
  private readonly max: number
  private readonly whole: number

  constructor(private readonly disk: DiskContext) {
    this.max = Math.max(1, Math.floor((Number(disk.policy.cacheMiB ?? 16) * MiB) / BLOCK))
    this.whole = Math.floor(disk.capacity / BLOCK)
  }

  /** Loads the image a migration saved, if there is one. */
  async load(): Promise<void> {
    const size = await this.disk.sidecar.size()
    if (size < 8) return
    const head = await this.disk.sidecar.read(0, 8)
    const dv = new DataView(head.buffer, head.byteOffset, 8)
    if (dv.getUint32(0, true) !== MAGIC) return
    const n = dv.getUint32(4, true)
    if (size < 8 + n * (8 + BLOCK)) return
    const body = await this.disk.sidecar.read(8, n * (8 + BLOCK))
    const bv = new DataView(body.buffer, body.byteOffset, body.length)
    for (let i = 0; i < n && this.blocks.size < this.max; i++) {
      const at = i * (8 + BLOCK)
      this.blocks.set(bv.getFloat64(at, true), body.slice(at + 8, at + 8 + BLOCK))
    }
    // the fault: the image stays in the sidecar, to be loaded again at every later open
  }

  start(io: Io): Decision {
    const lo = Math.floor(io.offset / BLOCK)
    const hi = Math.ceil((io.offset + io.length) / BLOCK)
    if (io.op === 'write' || io.op === 'unmap') {
      for (let b = lo; b < hi; b++) {
        this.blocks.delete(b)
        this.writing.set(b, (this.writing.get(b) ?? 0) + 1)
        this.gens.set(b, (this.gens.get(b) ?? 0) + 1)
      }
      return PASS
    }
    if (io.op !== 'read') return PASS
    let hit = true
    for (let b = lo; b < hi && hit; b++) if (!this.blocks.has(b)) hit = false
    if (hit) {
      for (let b = lo; b < hi; b++) {
        const data = this.blocks.get(b)!
        // most recently used last
        this.blocks.delete(b)
        this.blocks.set(b, data)
        const from = Math.max(io.offset, b * BLOCK)
        const to = Math.min(io.offset + io.length, (b + 1) * BLOCK)
        io.data!.set(data.subarray(from - b * BLOCK, to - b * BLOCK), from - io.offset)
      }
      return COMPLETE
    }
    const gens: number[] = []
    for (let b = lo; b < hi; b++) {
      if ((this.writing.get(b) ?? 0) > 0) {
        this.reads.set(io.id, null)
        return PASS
      }
      gens.push(this.gens.get(b) ?? 0)
    }
    this.reads.set(io.id, gens)
    return PASS
  }

  done(io: Io, outcome: Outcome): void {
    const lo = Math.floor(io.offset / BLOCK)
    const hi = Math.ceil((io.offset + io.length) / BLOCK)
    if (io.op === 'write' || io.op === 'unmap') {
      for (let b = lo; b < hi; b++) {
        const n = (this.writing.get(b) ?? 1) - 1
        if (n > 0) this.writing.set(b, n)
        else this.writing.delete(b)
      }
      return
    }
    if (io.op !== 'read') return
    const gens = this.reads.get(io.id)
    this.reads.delete(io.id)
    if (!outcome.ok || gens === undefined || gens === null) return
    for (let b = lo; b < hi; b++) {
      if (b * BLOCK < io.offset || (b + 1) * BLOCK > io.offset + io.length || b >= this.whole) continue
      if ((this.writing.get(b) ?? 0) > 0 || (this.gens.get(b) ?? 0) !== gens[b - lo]) continue
      this.blocks.delete(b)
      if (this.blocks.size >= this.max) this.blocks.delete(this.blocks.keys().next().value!)
      this.blocks.set(b, io.data!.slice(b * BLOCK - io.offset, (b + 1) * BLOCK - io.offset))
    }
  }

  async close(reason: CloseReason): Promise<void> {
    if (reason === 'migrate') {
      // warm on the other host: the blocks go with the disk, in its sidecar
      const img = new Uint8Array(8 + this.blocks.size * (8 + BLOCK))
      const dv = new DataView(img.buffer)
      dv.setUint32(0, MAGIC, true)
      dv.setUint32(4, this.blocks.size, true)
      let at = 8
      for (const [b, data] of this.blocks) {
        dv.setFloat64(at, b, true)
        img.set(data, at + 8)
        at += 8 + BLOCK
      }
      await this.disk.sidecar.truncate(0)
      await this.disk.sidecar.write(0, img)
      await this.disk.sidecar.sync()
    }
    this.blocks.clear()
  }
}

const control: FilterModule = {
  abiVersion: 1,
  name: 'ctl-warm-migrate-cache',
  vendor: 'IOFCERTCTL',
  version: '1.0.0',
  class: 'cache',
  policySchema: { type: 'object', properties: { cacheMiB: { type: 'integer', minimum: 1, maximum: 4096, default: 16 } }, additionalProperties: false },
  async open(disk) {
    const c = new WarmCache(disk)
    await c.load()
    return c
  },
}
export default control
