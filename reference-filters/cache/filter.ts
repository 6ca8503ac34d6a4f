/**
 * The reference cache filter: a write-through LRU read cache of 4 KiB blocks, at most `cacheMiB`
 * of data per disk.
 *
 * Coherence under concurrent, reordered I/O. The drive carries out concurrent requests in any
 * order and completes them in any order, so the bytes a read brings back from below may predate
 * or postdate an overlapping write that ran beside it, and two overlapping writes may land in
 * either order. The cache therefore never trusts bytes that raced a write:
 *
 * - every read that goes down, and every write and unmap, is tracked from `start` to `done`;
 * - when a write or unmap starts it taints, block by block, every tracked I/O it overlaps (and is
 *   tainted by every tracked write or unmap it overlaps), and a read that starts while an
 *   overlapping write or unmap is in flight is tainted from the start;
 * - a write or unmap drops its blocks from the cache when it starts, so nothing cached can be
 *   older than a write that lands late (one the framework timed out still reaches the drive);
 * - a read fills the cache in `done` only with blocks it was not tainted on;
 * - a write that found part of its range cached caches its whole blocks again from its own
 *   payload once it succeeded, where nothing raced it; a failed write (the disk's bytes are
 *   unknown), a raced block and every unmap leave them out.
 *
 * A read served from memory completes here (the drive never sees it); everything else passes.
 * Blocks live in 1 MiB slabs allocated as the cache fills, and the LRU order is kept in typed
 * arrays indexed by slot, so a hit allocates nothing. A block is cached on its second miss within
 * a while (a hashed bit per block remembers the first): a read that is never repeated — the bulk
 * of a random workload over a disk larger than the cache — costs no copy and no eviction.
 */
import { COMPLETE, PASS, type Decision, type DiskContext, type FilterInstance, type FilterModule, type Io, type Outcome } from 'iofcert/sdk'

const BLOCK = 4096
const MiB = 1 << 20
/** Blocks per slab: data is allocated in 1 MiB steps as the cache fills, never all at once. */
const SLAB_BLOCKS = 256
const NIL = -1

const READ = 0
const WRITE = 1
const UNMAP = 2

/**
 * The cached blocks of one disk: block → slot in a Map, an LRU list threaded through typed
 * arrays (slot → previous / next slot), the bytes in slabs.
 */
class BlockCache {
  /** The most blocks the cache may hold: cacheMiB of data, counted exactly. */
  readonly capacity: number
  private readonly index = new Map<number, number>()
  /** One view per slot over its slab, made once when the slab is made: copies need no subarray. */
  private views: Uint8Array[] = []
  private prev = new Int32Array(0)
  private next = new Int32Array(0)
  private blockOf = new Float64Array(0)
  private mru = NIL
  private lru = NIL
  private freeSlot = NIL
  private slots = 0

  constructor(capacityBlocks: number) {
    this.capacity = capacityBlocks
  }

  get size(): number {
    return this.index.size
  }

  /** The slot holding `block`, or undefined. */
  slot(block: number): number | undefined {
    return this.index.get(block)
  }

  view(slot: number): Uint8Array {
    return this.views[slot]!
  }

  /** Marks a slot most recently used. */
  touch(slot: number): void {
    if (this.mru === slot) return
    this.unlink(slot)
    this.pushFront(slot)
  }

  /**
   * Stores a whole block copied from `src` at `srcOffset` (the caller's buffer is never kept),
   * evicting the least recently used block when full.
   */
  put(block: number, src: Uint8Array, srcOffset: number): void {
    let slot = this.index.get(block)
    if (slot === undefined) {
      slot = this.allocate()
      this.index.set(block, slot)
      this.blockOf[slot] = block
      this.pushFront(slot)
    } else this.touch(slot)
    this.views[slot]!.set(srcOffset === 0 && src.length === BLOCK ? src : src.subarray(srcOffset, srcOffset + BLOCK))
  }

  invalidate(block: number): void {
    const slot = this.index.get(block)
    if (slot === undefined) return
    this.index.delete(block)
    this.unlink(slot)
    this.next[slot] = this.freeSlot
    this.freeSlot = slot
  }

  /** Drops every block and slab (close). */
  clear(): void {
    this.index.clear()
    this.views = []
    this.prev = new Int32Array(0)
    this.next = new Int32Array(0)
    this.blockOf = new Float64Array(0)
    this.mru = this.lru = this.freeSlot = NIL
    this.slots = 0
  }

  private allocate(): number {
    if (this.freeSlot !== NIL) {
      const s = this.freeSlot
      this.freeSlot = this.next[s]!
      return s
    }
    if (this.slots < this.capacity) {
      if (this.slots === this.views.length) this.grow()
      return this.slots++
    }
    // full: the least recently used block gives up its slot
    const s = this.lru
    this.index.delete(this.blockOf[s]!)
    this.unlink(s)
    return s
  }

  /** Adds one slab (and room in the LRU arrays) for the next slots. */
  private grow(): void {
    const first = this.views.length
    const n = Math.min(SLAB_BLOCKS, this.capacity - first)
    const slab = new ArrayBuffer(n * BLOCK)
    for (let i = 0; i < n; i++) this.views.push(new Uint8Array(slab, i * BLOCK, BLOCK))
    if (this.prev.length < first + n) {
      const len = Math.min(this.capacity, Math.max(first + n, this.prev.length * 2))
      const p = new Int32Array(len)
      p.set(this.prev)
      const nx = new Int32Array(len)
      nx.set(this.next)
      const b = new Float64Array(len)
      b.set(this.blockOf)
      this.prev = p
      this.next = nx
      this.blockOf = b
    }
  }

  private unlink(s: number): void {
    const p = this.prev[s]!
    const n = this.next[s]!
    if (p !== NIL) this.next[p] = n
    else this.mru = n
    if (n !== NIL) this.prev[n] = p
    else this.lru = p
    this.prev[s] = this.next[s] = NIL
  }

  private pushFront(s: number): void {
    this.prev[s] = NIL
    this.next[s] = this.mru
    if (this.mru !== NIL) this.prev[this.mru] = s
    this.mru = s
    if (this.lru === NIL) this.lru = s
  }
}

/**
 * An I/O between its `start` and `done`, with the blocks on which a racing write tainted it. One
 * the framework timed out never reaches `done`: its record stays, and keeps the blocks it shares
 * with later I/O out of the cache, which errs on the safe side.
 */
interface Tracked {
  id: number
  kind: number
  /** Blocks [lo, hi) the I/O touches. */
  lo: number
  hi: number
  /** Bounding range [taintLo, taintHi) of tainted blocks; empty when taintLo >= taintHi. */
  taintLo: number
  taintHi: number
  /** Position in the scan list. */
  at: number
  /** A write that found some of its blocks cached: it caches its whole blocks once it succeeds. */
  refill: boolean
}

function taint(t: Tracked, lo: number, hi: number): void {
  if (t.taintLo >= t.taintHi) {
    t.taintLo = lo
    t.taintHi = hi
    return
  }
  if (lo < t.taintLo) t.taintLo = lo
  if (hi > t.taintHi) t.taintHi = hi
}

/**
 * Blocks missed once lately, a bit each at a hash of the block: the cache's admission test. The
 * bits are cleared when a quarter of them is set, so "lately" spans a few times the cache's size
 * in distinct misses. A collision admits a block early, which costs only a copy.
 */
class Doorkeeper {
  private readonly bits: Uint32Array
  private readonly mask: number
  private set = 0

  constructor(capacityBlocks: number) {
    let n = 1 << 16
    while (n < capacityBlocks * 4 && n < 1 << 26) n *= 2
    this.bits = new Uint32Array(n >>> 5)
    this.mask = n - 1
  }

  /** True when `block` was missed lately; otherwise remembers it and returns false. */
  admit(block: number): boolean {
    const h = Math.imul((block ^ Math.floor(block / 4294967296)) | 0, 0x9e3779b1) & this.mask
    const w = h >>> 5
    const m = 1 << (h & 31)
    if ((this.bits[w]! & m) !== 0) return true
    this.bits[w]! |= m
    if (++this.set > (this.mask + 1) >>> 2) {
      this.bits.fill(0)
      this.set = 0
    }
    return false
  }
}

/** Per-disk state: the cache and the I/O in flight through it. */
class CacheInstance implements FilterInstance {
  private readonly cache: BlockCache
  private readonly door: Doorkeeper
  /** The last block that lies wholly inside the disk (+1): a trailing partial block is never cached. */
  private readonly wholeBlocks: number
  private readonly byId = new Map<number, Tracked>()
  private readonly active: Tracked[] = []
  private readonly spare: Tracked[] = []

  constructor(disk: DiskContext) {
    const mib = Number(disk.policy.cacheMiB ?? 64)
    this.wholeBlocks = Math.floor(disk.capacity / BLOCK)
    this.cache = new BlockCache(Math.max(0, Math.min(Math.floor((mib * MiB) / BLOCK), this.wholeBlocks)))
    this.door = new Doorkeeper(this.cache.capacity)
  }

  start(io: Io): Decision {
    switch (io.op) {
      case 'read':
        return this.startRead(io)
      case 'write':
        this.track(io, WRITE)
        return PASS
      case 'unmap':
        this.track(io, UNMAP)
        return PASS
      default:
        return PASS
    }
  }

  private startRead(io: Io): Decision {
    const lo = Math.floor(io.offset / BLOCK)
    const hi = Math.ceil((io.offset + io.length) / BLOCK)
    const cache = this.cache
    let hit = cache.size > 0
    for (let b = lo; hit && b < hi; b++) if (cache.slot(b) === undefined) hit = false
    if (hit) {
      this.copyOut(io, lo, hi)
      return COMPLETE
    }
    this.track(io, READ)
    return PASS
  }

  /** Fills the guest's buffer from cached blocks [lo, hi), all present. */
  private copyOut(io: Io, lo: number, hi: number): void {
    const out = io.data!
    const start = io.offset
    const end = io.offset + io.length
    for (let b = lo; b < hi; b++) {
      const slot = this.cache.slot(b)!
      const v = this.cache.view(slot)
      const from = b * BLOCK
      if (from >= start && from + BLOCK <= end) out.set(v, from - start)
      else {
        const a = Math.max(start, from)
        const z = Math.min(end, from + BLOCK)
        out.set(v.subarray(a - from, z - from), a - start)
      }
      this.cache.touch(slot)
    }
  }

  private track(io: Io, kind: number): void {
    const t = this.spare.pop() ?? { id: 0, kind: 0, lo: 0, hi: 0, taintLo: 0, taintHi: 0, at: 0, refill: false }
    t.id = io.id
    t.kind = kind
    t.lo = Math.floor(io.offset / BLOCK)
    t.hi = Math.ceil((io.offset + io.length) / BLOCK)
    t.taintLo = t.taintHi = 0
    t.refill = false
    const writes = kind !== READ
    const active = this.active
    for (let i = 0; i < active.length; i++) {
      const o = active[i]!
      if (o.hi <= t.lo || t.hi <= o.lo) continue
      const lo = Math.max(o.lo, t.lo)
      const hi = Math.min(o.hi, t.hi)
      // bytes read beside a write may be old or new, and of two overlapping writes either may
      // land last: no block two such I/Os share may be cached from them
      if (o.kind !== READ) taint(t, lo, hi)
      if (writes) taint(o, lo, hi)
    }
    if (writes && this.cache.size > 0) {
      for (let b = t.lo; b < t.hi; b++) {
        if (this.cache.slot(b) === undefined) continue
        this.cache.invalidate(b)
        t.refill = kind === WRITE
      }
    }
    t.at = active.length
    active.push(t)
    this.byId.set(t.id, t)
  }

  private untrack(t: Tracked): void {
    this.byId.delete(t.id)
    const active = this.active
    const last = active.pop()!
    if (last !== t) {
      active[t.at] = last
      last.at = t.at
    }
    this.spare.push(t)
  }

  done(io: Io, outcome: Outcome): void {
    const t = this.byId.get(io.id)
    if (t === undefined) return
    this.untrack(t)
    // unmaps and failed writes dropped their blocks at start and leave them out
    if (!outcome.ok || t.kind === UNMAP || (t.kind === WRITE && !t.refill)) return
    const cache = this.cache
    if (cache.capacity === 0) return
    const { lo, hi, taintLo, taintHi } = t
    const data = io.data!
    const start = io.offset
    const end = io.offset + io.length
    for (let b = lo; b < hi; b++) {
      if (b >= taintLo && b < taintHi) continue
      const from = b * BLOCK
      if (from < start || from + BLOCK > end || b >= this.wholeBlocks) continue
      if (t.kind === WRITE) {
        cache.put(b, data, from - start)
        continue
      }
      const slot = cache.slot(b)
      if (slot !== undefined) cache.touch(slot)
      else if (this.door.admit(b)) cache.put(b, data, from - start)
    }
  }

  close(): void {
    this.cache.clear()
    this.byId.clear()
    this.active.length = 0
    this.spare.length = 0
  }
}

const cache: FilterModule = {
  abiVersion: 1,
  name: 'cache',
  vendor: 'IOFCERT',
  version: '1.0.0',
  class: 'cache',
  policySchema: {
    type: 'object',
    properties: { cacheMiB: { type: 'integer', minimum: 1, maximum: 4096, default: 64 } },
    additionalProperties: false,
  },
  open(disk) {
    return new CacheInstance(disk)
  },
}
export default cache
