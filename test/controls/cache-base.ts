/**
 * The read cache the cache controls are made of, sound as it stands: a control extends it to put in
 * its one defect.
 *
 * It keeps copies of whole 4 KiB blocks, at most `cacheMiB` of them (least recently used out
 * first), and completes a read itself when every block it touches is cached. A write or an unmap
 * drops the blocks it touches when it starts; a read fills only blocks no write or unmap touched
 * while it was in flight (what it holds stays bounded: it tracks only I/O in flight). A miss is passed down and fills the cache as it completes — or, with
 * `readThrough`, is read from the disk through `lower` and completed by the cache itself.
 */
import { COMPLETE, PASS } from 'iofcert/sdk'
import type { Decision, DiskContext, FilterInstance, FilterModule, Io, Outcome } from 'iofcert/sdk'

const BLOCK = 4096
const MiB = 1 << 20

/** How a cache control's instances work. */
export interface CacheOptions {
  /** Misses are read through `lower` and completed by the cache, not passed down. */
  readonly readThrough?: boolean
}

/** One disk's read cache. */
export class ReadCache implements FilterInstance {
  /** Cached blocks by block number, least recently used first. */
  protected readonly blocks = new Map<number, Uint8Array>()
  private readonly maxBlocks: number
  /** Per block: how many writes/unmaps of it are in flight. */
  private readonly writing = new Map<number, number>()
  /** Reads in flight that may fill the cache: per block, whether a write or unmap touched it since the read started. */
  private readonly reads = new Map<number, { readonly lo: number; readonly raced: boolean[] }>()

  constructor(protected readonly disk: DiskContext, private readonly o: CacheOptions = {}) {
    this.maxBlocks = Math.floor((Number(disk.policy.cacheMiB ?? 16) * MiB) / BLOCK)
  }

  start(io: Io): Decision | Promise<Decision> {
    const lo = Math.floor(io.offset / BLOCK)
    const hi = Math.ceil((io.offset + io.length) / BLOCK)
    if (io.op === 'write' || io.op === 'unmap') {
      for (let b = lo; b < hi; b++) {
        this.invalidate(b)
        this.writing.set(b, (this.writing.get(b) ?? 0) + 1)
      }
      for (const r of this.reads.values()) for (let b = Math.max(lo, r.lo); b < Math.min(hi, r.lo + r.raced.length); b++) r.raced[b - r.lo] = true
      return PASS
    }
    if (io.op !== 'read') return PASS
    const hits: Uint8Array[] = []
    for (let b = lo; b < hi; b++) {
      const v = this.lookup(b)
      if (v === undefined) return this.miss(io, lo, hi)
      hits.push(v)
    }
    for (let b = lo; b < hi; b++) {
      const from = Math.max(io.offset, b * BLOCK)
      const to = Math.min(io.offset + io.length, (b + 1) * BLOCK)
      const v = hits[b - lo]!
      io.data!.set(v.subarray(from - b * BLOCK, to - b * BLOCK), from - io.offset)
      this.blocks.delete(b)
      this.blocks.set(b, v)
    }
    return COMPLETE
  }

  done(io: Io, outcome: Outcome): void {
    const lo = Math.floor(io.offset / BLOCK)
    const hi = Math.ceil((io.offset + io.length) / BLOCK)
    if (io.op === 'write' || io.op === 'unmap') {
      for (let b = lo; b < hi; b++) {
        const n = (this.writing.get(b) ?? 1) - 1
        if (n === 0) this.writing.delete(b)
        else this.writing.set(b, n)
      }
      return
    }
    const r = this.reads.get(io.id)
    this.reads.delete(io.id)
    if (io.op === 'read' && r !== undefined && outcome.ok) this.fill(io.offset, io.data!, r)
  }

  /** A read not every block of which is cached. */
  private miss(io: Io, lo: number, hi: number): Decision | Promise<Decision> {
    const raced: boolean[] = []
    for (let b = lo; b < hi; b++) raced.push((this.writing.get(b) ?? 0) > 0)
    const r = { lo, raced }
    this.reads.set(io.id, r)
    if (!this.o.readThrough) return PASS
    return this.disk.lower.read(io.offset, io.length).then(
      bytes => {
        this.reads.delete(io.id)
        io.data!.set(bytes)
        this.fill(io.offset, bytes, r)
        return COMPLETE
      },
      (e: unknown) => {
        this.reads.delete(io.id)
        throw e
      },
    )
  }

  /** Caches the whole blocks of bytes a read returned at `offset`. */
  private fill(offset: number, bytes: Uint8Array, r: { readonly lo: number; readonly raced: readonly boolean[] }): void {
    for (let b = Math.ceil(offset / BLOCK); (b + 1) * BLOCK <= offset + bytes.length; b++) {
      if (!this.mayFill(r.raced[b - r.lo]!)) continue
      this.makeRoom()
      this.blocks.set(b, this.keep(bytes.subarray(b * BLOCK - offset, (b + 1) * BLOCK - offset)))
    }
  }

  /** A cached block, or undefined. */
  protected lookup(b: number): Uint8Array | undefined {
    return this.blocks.get(b)
  }

  /** Drops block `b` as a write or unmap of it starts. */
  protected invalidate(b: number): void {
    this.blocks.delete(b)
  }

  /** Whether a read may fill a block: not when a write or unmap of it was in flight at any time during the read (`raced`). */
  protected mayFill(raced: boolean): boolean {
    return !raced
  }

  /** Makes room for one more block: the least recently used goes. */
  protected makeRoom(): void {
    if (this.blocks.size >= this.maxBlocks) this.blocks.delete(this.blocks.keys().next().value!)
  }

  /** What the cache keeps of a block's bytes in a read's buffer: a copy. */
  protected keep(view: Uint8Array): Uint8Array {
    return view.slice()
  }
}

/** The policy of a cache control: the cache's size. */
export const CACHE_POLICY = { type: 'object', properties: { cacheMiB: { type: 'integer', minimum: 1, default: 16 } }, additionalProperties: false }

/** A cache control's module: `instance` is the control's subclass of ReadCache. */
export function cacheModule(name: string, instance: typeof ReadCache = ReadCache, o: CacheOptions & { readonly policy?: boolean } = {}): FilterModule {
  return {
    abiVersion: 1,
    name,
    vendor: 'IOFCERTCTL',
    version: '1.0.0',
    class: 'cache',
    ...(o.policy === false ? {} : { policySchema: CACHE_POLICY }),
    open(disk) {
      return new instance(disk, o)
    },
  }
}
