/**
 * The reference replication filter: continuous data protection. Every write that completes to
 * the guest is copied to the host's daemon, which ships each disk's writes, in order, to the
 * recovery site the policy names.
 *
 * Write-order fidelity. An instance posts a write in `done`, so posts follow completion order,
 * and a link delivers posts in send order; the daemon keeps one queue per disk and has at most
 * one site write of it outstanding, removing an entry only once the site took it. Whatever the
 * site holds is therefore a prefix of the completion order, and a write completed before W was
 * issued completed before W did, so it is in every prefix that holds W. Completion order is not
 * the order in which overlapping writes land on the disk, though: the drive may carry two
 * concurrent overlapping writes out in one order and complete them in the other. So an
 * instance never lets two overlapping writes (or unmaps) be in flight below it at once: a write
 * that overlaps one in flight waits in `start` until that one is done. For overlapping writes,
 * disk order, completion order and shipping order are then one order.
 *
 * Regions that may differ. The sidecar holds a header (dirty while open) and a bitmap of the
 * regions marked since the last clean close. Where the site holds what the disk holds (a seeded
 * region), the mark is on stable storage before the region's first write goes down: were that
 * write on the disk and the host to crash before the site had it, only the mark would tell the
 * next open to copy the region. In a region of a newly protected disk still to be seeded, only
 * what is sent needs the mark, so it is written then — a few milliseconds late, one sidecar sync
 * for many regions, as those syncs stall the VM's I/O thread. After an unclean end (host crash,
 * VM crash) the next open copies the marked regions from the disk to the site, chunk by chunk,
 * zeros included, since the site may hold writes the disk lost with its volatile cache. The first
 * copy of a newly protected disk sends chunks of zeros as zeros (no buffer: the daemon makes them),
 * since the site may still hold a replica of the disk from an earlier protection, and runs in the
 * background, at a modest pace, while the guest leaves the disk alone. A
 * chunk copy holds back overlapping writes while it reads, so it is shipped after every write it
 * holds and before every write it does not.
 *
 * Handing writes over. A write's bytes are copied into a ring of shared memory the daemon copies
 * them out of when the post arrives (a buffer of their own, transferred, when the ring is full):
 * a fresh buffer per write costs the VM's I/O thread more than the copy.
 *
 * Outages. While the site is down the daemon retries with backoff and keeps the backlog in
 * memory; guest I/O never waits for it. A backlog past QUEUE_CAP is dropped and the instance,
 * which waits on the daemon for that news, copies every region that may differ again.
 */
import type { CloseReason, Daemon, DaemonContext, DaemonLink, Decision, DiskContext, DiskEvent, FilterInstance, FilterModule, Io, Outcome, ReplicaTarget } from '../../harness/sdk/index.js'

const PASS: Decision = Object.freeze({ kind: 'pass' as const })

const MiB = 1 << 20
/** Unit of copying a region to the site. */
const CHUNK = MiB
/** At most this many regions per disk: few sidecar syncs to mark them, a small bitmap. */
const MAX_REGIONS = 32
/** How long marks of regions still to be seeded wait to share one sidecar sync, when marks are coming thick and fast… */
const MARK_DELAY_MS = 20
/** …that is, when the last was written less than this ago; otherwise they are written at once. */
const MARK_QUIET_MS = 100
/** The first copy of a newly protected disk runs only after the guest left it alone this long… */
const SEED_QUIET_MS = 50
/** …and then copies a chunk at most this often (about 32 MiB/s). */
const SEED_PACE_MS = 30
/** Sectors of the ring through which an instance hands write data to its daemon (a power of 2). */
const RING_SECTORS = 16384
/** The ring's header: the sector count the daemon has taken out, then the data. */
const RING_HEADER = 64
/** Largest site write the daemon makes by joining queued writes that touch. */
const MAX_JOIN = MiB
/** A disk's backlog beyond this is dropped, and the disk copied again from its regions. */
const QUEUE_CAP = 128 * MiB
/** Chunk copies wait while a disk's backlog is above this, so they cannot overflow it. */
const LOW_WATER = 16 * MiB
/** Bookkeeping bytes counted per queued write, so a flood of tiny unmaps is bounded too. */
const ENTRY_COST = 128
const BACKOFF_MIN_MS = 10
const BACKOFF_MAX_MS = 500
/** Chunk copies ask the daemon for room after posting this much. */
const ROOM_EVERY = 4 * MiB
/** How long a chunk copy waits for room before it looks again at close and stun. */
const ROOM_WAIT_MS = 1000
/** How long a close waits for the daemon to ship the disk's backlog. */
const DRAIN_MS = 20_000
/** How much of open a copy of regions that may differ may take; the rest runs beside guest I/O. */
const OPEN_COPY_MS = 15_000
/**
 * A write still not done after this is taken for lost (the framework timed it out and will never
 * call `done`): it stops holding back overlapping writes and its chunks are copied again.
 */
const STALE_MS = 30_000
/** Bound on the daemon's stop(): in-flight site writes, then closing the targets. */
const STOP_SETTLE_MS = 2500

// ---- sidecar: [magic 4][format 1][state 1][region shift 1][0][capacity f64][touched][unseeded]
const MAGIC = 0x31504443 // "CDP1" little-endian
const FORMAT = 1
const CLEAN = 0
const DIRTY = 1
const HEADER = 16

// ---- messages an instance sends its daemon. `inst` names the instance that opened the disk last:
// what an instance that died (its VM's worker ended) left in flight is dropped, not applied after
// what its successor sends.
type ToDaemon =
  | { kind: 'open'; inst: number; site: string; ring?: SharedArrayBuffer }
  | { kind: 'write'; inst: number; offset: number; buf: ArrayBuffer }
  /** A write whose bytes wait in the instance's ring at sector `at`; the daemon frees up to `end`. */
  | { kind: 'staged'; inst: number; offset: number; length: number; at: number; end: number }
  | { kind: 'zero'; inst: number; offset: number; length: number }
  | { kind: 'resync'; inst: number }
  | { kind: 'drain'; timeoutMs: number }
  | { kind: 'forget' }
  | { kind: 'bye' }
  | { kind: 'watch'; epoch: number }
  | { kind: 'unwatch' }
  | { kind: 'room' }

function isZero(b: Uint8Array): boolean {
  // lower.read returns an array owning its whole buffer, so a word view is aligned
  const words = b.byteOffset % 4 === 0 ? new Uint32Array(b.buffer, b.byteOffset, b.length >>> 2) : null
  if (words !== null) {
    for (let i = 0; i < words.length; i++) if (words[i] !== 0) return false
    for (let i = words.length << 2; i < b.length; i++) if (b[i] !== 0) return false
    return true
  }
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false
  return true
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e)
}

// =====================================================================================
// Instance
// =====================================================================================

/** A range held from `start` to `done` (a guest write or unmap) or around a chunk copy. */
interface Hold {
  lo: number
  hi: number
  /** No earlier hold overlaps it: it may go down. */
  ready: boolean
  wake: (() => void) | null
  t0: number
  prev: Hold | null
  next: Hold | null
}

/** The per-disk sidecar image: header and the two region bitmaps. */
class DirtyMap {
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

/** A post waiting in order until the regions it concerns are marked on stable storage. */
interface Outgoing {
  readonly message: ToDaemon
  readonly transfer: ArrayBuffer[] | undefined
  /** Regions [r0, r1] that must be marked first (r1 < r0: none). */
  readonly r0: number
  readonly r1: number
}

/**
 * Write data on its way to the daemon. A fresh ArrayBuffer per write, transferred, costs the VM's
 * I/O thread far more than the copy itself (allocation, then the collector); so writes are copied
 * into one shared buffer the daemon copies them out of as the posts arrive. Only this instance
 * writes into it and only the daemon advances `taken`, after copying out, in post order.
 */
class Ring {
  readonly sab = new SharedArrayBuffer(RING_HEADER + RING_SECTORS * 512)
  private readonly bytes = new Uint8Array(this.sab, RING_HEADER)
  private readonly taken = new Int32Array(this.sab, 0, 1)
  /** Sectors handed out so far (modulo 2^32). */
  private given = 0

  /** Copies `data` in; null when it does not fit now (then it travels in a buffer of its own). */
  stage(data: Uint8Array): { at: number; end: number } | null {
    const n = data.length >>> 9
    if (n * 512 !== data.length || n > RING_SECTORS / 4) return null
    const used = (this.given - Atomics.load(this.taken, 0)) | 0
    const pos = this.given & (RING_SECTORS - 1)
    // a write never wraps: the ring's tail is skipped, and freed with it
    const skip = pos + n > RING_SECTORS ? RING_SECTORS - pos : 0
    if (used + skip + n > RING_SECTORS) return null
    const at = skip > 0 ? 0 : pos
    this.bytes.set(data, at * 512)
    this.given = (this.given + skip + n) | 0
    return { at, end: this.given }
  }
}

class CdpInstance implements FilterInstance {
  private readonly lower: DiskContext['lower']
  /** The link to the daemon; null without one (nothing is replicated, the disk stays marked). */
  private daemon: DaemonLink | null
  private readonly capacity: number
  private readonly holds = new Map<number, Hold>()
  private head: Hold | null = null
  private tail: Hold | null = null
  private waiting = 0
  /** Chunks to copy to the site now: they may differ from it. */
  private readonly copies = new Set<number>()
  /** Chunks of the first copy of a newly protected disk, copied while the disk is quiet. */
  private readonly seeds = new Set<number>()
  private copying: Promise<void> | null = null
  /** Posts held back, in order, until their regions are marked (see send()). */
  private outbox: Outgoing[] = []
  private marking: ReturnType<typeof setTimeout> | null = null
  private lastMark = -Infinity
  /** Bytes of chunks posted since the daemon last said there was room. */
  private sinceRoom = ROOM_EVERY
  /** When guest I/O last started: the first copy yields to it. */
  private lastIo = performance.now()
  private pause: { timer: ReturnType<typeof setTimeout>; wake: () => void } | null = null
  private stunned = false
  private unstun: (() => void) | null = null
  private closing = false
  private epoch = 0
  private watching: Promise<void> | null = null
  private ring: Ring | null = null
  /** This instance among those that open the disk in turn (see ToDaemon). */
  private readonly id = Math.floor(Math.random() * 2 ** 48)

  constructor(private readonly disk: DiskContext, private readonly map: DirtyMap) {
    this.lower = disk.lower
    this.daemon = disk.daemon
    this.capacity = disk.capacity
  }

  /** Open: mark the disk dirty, register with the daemon, copy what may differ. */
  async begin(fresh: boolean): Promise<void> {
    const m = this.map
    if (fresh) for (let r = 0; r < m.regions; r++) m.set(m.unseeded, r)
    // what to copy is chosen from the sidecar as it was; the disk is dirty from here on
    const repair = m.state !== CLEAN && !fresh ? this.chunksOf(r => m.has(m.touched, r)) : []
    const seed = this.chunksOf(r => m.has(m.unseeded, r) && !m.has(m.touched, r))
    m.state = DIRTY
    await m.persist()
    if (this.daemon === null) {
      this.disk.log.warn('no daemon on this host: writes are not replicated; the disk stays marked for a resync')
      return
    }
    const site = String(this.disk.policy.site ?? 'dr')
    try {
      const ring = new Ring()
      let r: { epoch: number }
      try {
        r = (await this.daemon.request({ kind: 'open', inst: this.id, site, ring: ring.sab } satisfies ToDaemon)) as { epoch: number }
        this.ring = ring
      } catch {
        // a daemon that cannot share memory with this VM gets each write in a buffer of its own
        r = (await this.daemon.request({ kind: 'open', inst: this.id, site } satisfies ToDaemon)) as { epoch: number }
      }
      this.epoch = r.epoch
    } catch (e) {
      // the disk serves its VM all the same; the sidecar stays dirty, so a later open resyncs
      this.disk.log.warn('the daemon did not answer: writes are not replicated until the next open', { error: errText(e) })
      this.daemon = null
      return
    }
    this.watching = this.watch()
    for (const c of repair) this.copies.add(c)
    for (const c of seed) this.seeds.add(c)
    if (this.copies.size > 0) {
      this.disk.log.info('resync after an unclean close', { chunks: this.copies.size })
      await this.copy(performance.now() + OPEN_COPY_MS)
    }
    this.kickCopy()
  }

  private chunksOf(pick: (region: number) => boolean): number[] {
    const out: number[] = []
    const perRegion = this.map.regionSize / CHUNK
    const last = Math.ceil(this.capacity / CHUNK)
    for (let r = 0; r < this.map.regions; r++) {
      if (!pick(r)) continue
      for (let c = r * perRegion; c < Math.min(last, (r + 1) * perRegion); c++) out.push(c)
    }
    return out
  }

  private regionOf(offset: number): number {
    return Math.floor(offset / this.map.regionSize)
  }

  // ---- the I/O path ----

  start(io: Io): Decision | Promise<Decision> {
    this.lastIo = performance.now()
    if (io.op !== 'write' && io.op !== 'unmap') return PASS
    const h = this.hold(io.offset, io.offset + io.length)
    this.holds.set(io.id, h)
    const m = this.map
    const r1 = this.regionOf(io.offset + io.length - 1)
    let mark = false
    for (let r = this.regionOf(io.offset); r <= r1; r++) {
      if (m.has(m.durable, r)) continue
      this.touch(r)
      // the site holds what the disk holds here: were this write on the disk and the host to
      // crash before the site had it, only the mark would tell the next open to copy the region.
      // (In a region still to be seeded the mark need only precede what is sent: see send().)
      if (!m.has(m.unseeded, r)) mark = true
    }
    if (!mark && h.ready) return PASS
    return this.admit(io.id, h, mark)
  }

  /** Holds a write until its regions are marked on stable storage and it overlaps nothing earlier. */
  private async admit(id: number, h: Hold, mark: boolean): Promise<Decision> {
    try {
      if (mark) {
        await this.map.persist()
        this.drainOutbox()
      }
      if (!h.ready) await new Promise<void>(res => { h.wake = res })
      return PASS
    } catch (e) {
      // start fails the I/O itself, so no done comes for it
      this.holds.delete(id)
      this.release(h)
      throw e
    }
  }

  done(io: Io, outcome: Outcome): void {
    if (io.op !== 'write' && io.op !== 'unmap') return
    const h = this.holds.get(io.id)
    if (h !== undefined) this.holds.delete(io.id)
    if (outcome.ok) {
      if (io.op === 'write') {
        const staged = this.ring?.stage(io.data!) ?? null
        if (staged !== null) this.send({ kind: 'staged', inst: this.id, offset: io.offset, length: io.length, at: staged.at, end: staged.end }, undefined, io.offset, io.length)
        else {
          const copy = io.data!.slice()
          this.send({ kind: 'write', inst: this.id, offset: io.offset, buf: copy.buffer }, [copy.buffer], io.offset, io.length)
        }
      } else this.send({ kind: 'zero', inst: this.id, offset: io.offset, length: io.length }, undefined, io.offset, io.length)
    } else {
      // what a failed write left on the disk is unknown: copy its chunks once it no longer holds them
      for (let c = Math.floor(io.offset / CHUNK); c * CHUNK < io.offset + io.length; c++) this.copies.add(c)
    }
    if (h !== undefined) this.release(h)
    if (this.copies.size > 0 && this.copying === null) this.kickCopy()
  }

  // ---- posts, in order, each after the marks of its regions are on stable storage ----

  /**
   * Posts to the daemon what concerns [offset, offset + length), once the regions it touches are
   * marked durably. A region still to be seeded is marked only now, not before its writes went
   * down: its marks are written a few milliseconds late, in one sidecar sync for many regions,
   * and posts wait for them (and, to keep their order, so do the posts behind them). Nothing the
   * site may hold for such a region is then unmarked, and what the disk alone may hold there is
   * found by the seed's copy.
   */
  private send(message: ToDaemon, transfer: ArrayBuffer[] | undefined, offset: number, length: number): void {
    if (this.daemon === null) return
    const r0 = this.regionOf(offset)
    const r1 = length > 0 ? this.regionOf(offset + length - 1) : r0 - 1
    if (this.outbox.length === 0 && this.marked(r0, r1)) {
      this.daemon.post(message, transfer)
      return
    }
    for (let r = r0; r <= r1; r++) if (!this.map.has(this.map.durable, r)) this.touch(r)
    this.outbox.push({ message, transfer, r0, r1 })
    this.markSoon()
  }

  /** Marks a region in memory, and the one after it: a sequential stream then costs one sidecar sync per two regions. */
  private touch(r: number): void {
    const m = this.map
    m.set(m.touched, r)
    if (r + 1 < m.regions) m.set(m.touched, r + 1)
  }

  private marked(r0: number, r1: number): boolean {
    for (let r = r0; r <= r1; r++) if (!this.map.has(this.map.durable, r)) return false
    return true
  }

  /** Writes the marks after a short pause, so that one sidecar sync covers many regions. */
  private markSoon(): void {
    if (this.marking !== null) return
    const delay = performance.now() - this.lastMark < MARK_QUIET_MS ? MARK_DELAY_MS : 0
    this.marking = setTimeout(() => {
      this.marking = null
      this.map.persist().then(
        () => {
          this.lastMark = performance.now()
          this.drainOutbox()
        },
        e => {
          this.disk.log.warn('could not mark regions in the sidecar; retrying', { error: errText(e) })
          if (!this.closing) this.markSoon()
        },
      )
    }, delay)
  }

  private drainOutbox(): void {
    let n = 0
    while (n < this.outbox.length) {
      const o = this.outbox[n]!
      if (!this.marked(o.r0, o.r1)) break
      this.daemon?.post(o.message, o.transfer)
      n++
    }
    if (n > 0) this.outbox = this.outbox.slice(n)
    if (this.outbox.length > 0 && !this.closing) this.markSoon()
  }

  /** Sends everything held back (close). */
  private async flushOutbox(): Promise<void> {
    if (this.marking !== null) clearTimeout(this.marking)
    this.marking = null
    while (this.outbox.length > 0) {
      await this.map.persist()
      this.drainOutbox()
    }
  }

  // ---- holds: overlapping writes and chunk copies go down one at a time, in issue order ----

  private hold(lo: number, hi: number): Hold {
    const h: Hold = { lo, hi, ready: true, wake: null, t0: performance.now(), prev: this.tail, next: null }
    if (this.overlapsBefore(h, this.tail)) {
      this.dropStale()
      h.ready = !this.overlapsBefore(h, this.tail)
    }
    if (this.tail !== null) this.tail.next = h
    else this.head = h
    this.tail = h
    if (!h.ready) this.waiting++
    return h
  }

  /** Whether any hold from the head up to and including `upto` overlaps `h`. */
  private overlapsBefore(h: Hold, upto: Hold | null): boolean {
    if (upto === null) return false
    for (let o = this.head; o !== null; o = o.next) {
      if (o.lo < h.hi && h.lo < o.hi) return true
      if (o === upto) break
    }
    return false
  }

  private release(h: Hold): void {
    if (h.prev !== null) h.prev.next = h.next
    else if (this.head === h) this.head = h.next
    if (h.next !== null) h.next.prev = h.prev
    else if (this.tail === h) this.tail = h.prev
    h.prev = h.next = null
    if (!h.ready) this.waiting--
    h.ready = true
    if (this.waiting > 0) this.wakeReady()
  }

  private wakeReady(): void {
    for (let o = this.head; o !== null; o = o.next) {
      if (o.ready || this.overlapsBefore(o, o.prev)) continue
      o.ready = true
      this.waiting--
      const w = o.wake
      o.wake = null
      w?.()
    }
  }

  /** Releases holds of I/O the framework gave up on; what they may have left is copied again. */
  private dropStale(): void {
    const now = performance.now()
    for (let o = this.head, next = o?.next ?? null; o !== null; o = next, next = o?.next ?? null) {
      if (!o.ready || now - o.t0 < STALE_MS) continue
      for (const [id, h] of this.holds) if (h === o) this.holds.delete(id)
      for (let c = Math.floor(o.lo / CHUNK); c * CHUNK < o.hi; c++) this.copies.add(c)
      this.disk.log.warn('a write never completed: its range will be copied again', { offset: o.lo, length: o.hi - o.lo })
      this.release(o)
    }
  }

  // ---- copying chunks from the disk to the site ----

  private kickCopy(): void {
    if (this.copying !== null || this.closing || this.daemon === null) return
    if (this.copies.size === 0 && this.seeds.size === 0) return
    this.copying = this.copy(Infinity).then(
      finished => {
        this.copying = null
        // chunks added as the loop ended are taken now; after a failed read, the next write retries
        if (finished) this.kickCopy()
      },
      e => {
        this.copying = null
        this.disk.log.error('copying to the site stopped', { error: errText(e) })
      },
    )
  }

  /**
   * Copies chunks that may differ from the site, then (with no deadline) the first copy's chunks,
   * until none is left, the deadline passes, the instance closes or a read fails (false: the
   * next write to complete tries again). A chunk is read while holding its range, so no
   * overlapping write is in flight below while it is read. The first copy goes at a modest pace
   * and only while the guest leaves the disk alone: reading a never-written stretch of a sparse
   * image file makes later writes there slower, and the guest's I/O comes first.
   */
  private async copy(deadline: number): Promise<boolean> {
    const daemon = this.daemon!
    while (!this.closing && performance.now() < deadline) {
      let from = this.copies
      if (from.size === 0) {
        if (this.seeds.size === 0 || deadline !== Infinity) break
        const quiet = performance.now() - this.lastIo
        await this.sleep(quiet < SEED_QUIET_MS ? SEED_QUIET_MS - quiet : SEED_PACE_MS)
        if (this.copies.size > 0 || performance.now() - this.lastIo < SEED_QUIET_MS) continue
        from = this.seeds
      }
      const chunk = from.values().next().value
      if (chunk === undefined) continue
      if (this.sinceRoom >= ROOM_EVERY) {
        const room = await this.room()
        if (room === 'gone') return false
        if (room === 'full') continue
        this.sinceRoom = 0
      }
      const lo = chunk * CHUNK
      const h = this.hold(lo, Math.min(this.capacity, lo + CHUNK))
      if (!h.ready) await new Promise<void>(res => { h.wake = res })
      // checked right before the read, in the same turn: no filter I/O while the disk is stunned
      if (this.closing || this.stunned) {
        this.release(h)
        if (this.stunned && !this.closing) await new Promise<void>(res => { this.unstun = res })
        continue
      }
      if (!from.delete(chunk)) {
        this.release(h)
        continue
      }
      let data: Uint8Array
      try {
        data = await this.lower.read(lo, h.hi - lo)
      } catch (e) {
        from.add(chunk)
        this.release(h)
        this.disk.log.warn('could not read a chunk to copy to the site; retrying after the next write', { offset: lo, error: errText(e) })
        return false
      }
      // a first copy's chunk of zeros goes as zeros: the replica of a newly protected disk need not
      // be empty (the policy may have been removed and applied again, the disk trimmed meanwhile)
      if (from === this.seeds && isZero(data)) this.send({ kind: 'zero', inst: this.id, offset: lo, length: h.hi - lo }, undefined, lo, h.hi - lo)
      else {
        const buf = data.buffer as ArrayBuffer
        this.sinceRoom += buf.byteLength
        this.send({ kind: 'write', inst: this.id, offset: lo, buf }, [buf], lo, buf.byteLength)
      }
      this.release(h)
      if (from === this.seeds && this.seeds.size === 0) this.disk.log.info('first copy to the site finished')
    }
    return true
  }

  /** Waits `ms`, or less if the instance closes. */
  private sleep(ms: number): Promise<void> {
    return new Promise(res => {
      const wake = () => {
        if (this.pause === null) return
        clearTimeout(this.pause.timer)
        this.pause = null
        res()
      }
      this.pause = { timer: setTimeout(wake, Math.max(1, ms)), wake }
    })
  }

  /** Waits (bounded) until the daemon's backlog for this disk has room for more chunks. */
  private async room(): Promise<'ok' | 'full' | 'gone'> {
    try {
      return (await this.daemon!.request({ kind: 'room' } satisfies ToDaemon)) === true ? 'ok' : 'full'
    } catch {
      return 'gone'
    }
  }

  /** Waits for the daemon to report a dropped backlog, then copies every region that may differ. */
  private async watch(): Promise<void> {
    const daemon = this.daemon!
    while (!this.closing) {
      let r: { epoch?: number; closed?: boolean }
      try {
        r = (await daemon.request({ kind: 'watch', epoch: this.epoch } satisfies ToDaemon)) as typeof r
      } catch {
        return
      }
      if (this.closing || r.closed || r.epoch === undefined) return
      this.epoch = r.epoch
      this.disk.log.warn('the site fell too far behind: copying every region written since the last clean close')
      // the daemon drops what it is sent until this arrives, in order, ahead of the copies
      this.send({ kind: 'resync', inst: this.id }, undefined, 0, 0)
      const m = this.map
      for (const c of this.chunksOf(x => m.has(m.touched, x))) this.copies.add(c)
      this.kickCopy()
    }
  }

  // ---- events and close ----

  event(e: DiskEvent): void {
    if (e === 'stun') this.stunned = true
    else if (e === 'unstun') {
      this.stunned = false
      const w = this.unstun
      this.unstun = null
      w?.()
    }
    // snapshot: nothing is held back from the disk, so the image is already consistent
  }

  async close(reason: CloseReason): Promise<void> {
    this.closing = true
    const w = this.unstun
    this.unstun = null
    w?.()
    this.pause?.wake()
    await this.copying
    if (this.daemon === null) {
      if (this.marking !== null) clearTimeout(this.marking)
      return
    }
    try {
      await this.flushOutbox()
    } catch (e) {
      this.disk.log.warn('could not mark regions at close: the disk stays marked for a resync', { error: errText(e) })
      await this.daemon.request({ kind: 'forget' } satisfies ToDaemon).catch(() => {})
      return
    }
    this.daemon.post({ kind: 'unwatch' } satisfies ToDaemon)
    await this.watching
    let drained = false
    try {
      await this.daemon.request({ kind: 'drain', timeoutMs: DRAIN_MS } satisfies ToDaemon)
      drained = true
    } catch (e) {
      this.disk.log.warn('the site did not take the backlog before close: the disk stays marked for a resync', { reason, error: errText(e) })
    }
    if (!drained) {
      // the next open may be on another host whose daemon copies these regions: nothing stale of
      // ours may reach the site after that
      await this.daemon.request({ kind: 'forget' } satisfies ToDaemon).catch(() => {})
      return
    }
    this.daemon.post({ kind: 'bye' } satisfies ToDaemon)
    if (this.copies.size > 0) return
    // the site holds every write; the disk must too before the sidecar says they agree
    try {
      await this.lower.flush()
    } catch (e) {
      this.disk.log.warn('flush at close failed: the disk stays marked for a resync', { error: errText(e) })
      return
    }
    const m = this.map
    m.touched.fill(0)
    // a region's first copy is done once none of its chunks is left to seed
    const perRegion = m.regionSize / CHUNK
    for (let r = 0; r < m.regions; r++) {
      let left = false
      for (let c = r * perRegion; c < (r + 1) * perRegion && !left; c++) left = this.seeds.has(c)
      if (!left) m.unseeded[r >>> 3]! &= ~(1 << (r & 7))
    }
    m.state = CLEAN
    await m.persist()
  }
}

// =====================================================================================
// Daemon
// =====================================================================================

/** A queued write: bytes, or zeros (an unmap) when `data` is null. */
interface Entry {
  offset: number
  length: number
  data: Uint8Array | null
}

interface Waiter {
  seq: number
  resolve: (v: unknown) => void
  reject: (e: Error) => void
  timer: ReturnType<typeof setTimeout> | null
}

/** One disk's ordered queue to its site: at most one site write outstanding. */
class Pump {
  private queue: Entry[] = []
  private head = 0
  /** Bytes held by the queue (plus bookkeeping), checked against QUEUE_CAP. */
  bytes = 0
  /** Entries ever queued / shipped (or dropped): a drain waits until shipped reaches its mark. */
  private queuedSeq = 0
  private shippedSeq = 0
  /** Bumped whenever the queue is dropped, so a site write that settles later leaves the new one alone. */
  private gen = 0
  /** Bumped when a backlog is dropped for size: the instance copies its regions again. */
  epoch = 0
  /** Dropping posts until the instance says its resync begins. */
  private overflowed = false
  private busy: Promise<void> | null = null
  private backoff: ReturnType<typeof setTimeout> | null = null
  private failures = 0
  private lastError = ''
  private drains: Waiter[] = []
  private rooms: Waiter[] = []
  private watcher: ((v: unknown) => void) | null = null
  private stopped = false
  /** The open instance's ring of staged write data. */
  private ring: { bytes: Uint8Array; taken: Int32Array } | null = null
  /** The instance that opened the disk last: the only one whose writes are taken. */
  owner = -1

  constructor(readonly disk: string, public site: string, private readonly target: (site: string) => Promise<ReplicaTarget>, private readonly log: DaemonContext['log']) {}

  get idle(): boolean {
    return this.head === this.queue.length && this.busy === null
  }

  /** A new instance opened the disk: whatever a previous one left queued still goes first. */
  reopen(owner: number, site: string, ring: SharedArrayBuffer | undefined): void {
    this.owner = owner
    this.site = site
    this.overflowed = false
    this.ring = ring === undefined ? null : { bytes: new Uint8Array(ring, RING_HEADER), taken: new Int32Array(ring, 0, 1) }
  }

  /** Copies a staged write out of the instance's ring and frees its place there. */
  unstage(at: number, length: number, end: number): Uint8Array | null {
    const r = this.ring
    if (r === null) return null
    const data = r.bytes.slice(at * 512, at * 512 + length)
    Atomics.store(r.taken, 0, end)
    return data
  }

  push(e: Entry): void {
    if (this.overflowed || this.stopped) return
    this.queue.push(e)
    this.queuedSeq++
    this.bytes += (e.data === null ? 0 : e.length) + ENTRY_COST
    if (this.bytes > QUEUE_CAP) {
      this.overflow()
      return
    }
    this.kick()
  }

  /** Queues zeros for an unmapped range, in pieces no larger than one site write. */
  pushZero(offset: number, length: number): void {
    for (let at = 0; at < length; at += MAX_JOIN) this.push({ offset: offset + at, length: Math.min(MAX_JOIN, length - at), data: null })
  }

  resync(): void {
    this.overflowed = false
  }

  private overflow(): void {
    this.log.warn('replication backlog over its cap: dropped; the disk will be copied again', { disk: this.disk, bytes: this.bytes })
    this.drop(new Error(`EOVERFLOW: the backlog of ${this.disk} was dropped; a resync follows`))
    this.overflowed = true
    this.epoch++
    this.answerWatch({ epoch: this.epoch })
  }

  /** Empties the queue; drains waiting on it fail, since what they waited for will not arrive. */
  private drop(why: Error): void {
    this.queue = []
    this.head = 0
    this.bytes = 0
    this.shippedSeq = this.queuedSeq
    this.gen++
    for (const d of this.drains.splice(0)) this.settle(d, why)
    this.answerRooms()
  }

  private kick(): void {
    if (this.busy !== null || this.backoff !== null || this.stopped || this.head === this.queue.length) return
    this.busy = this.ship().finally(() => {
      this.busy = null
      this.kick()
    })
  }

  /** Ships the head of the queue, joined with the writes after it that touch it. */
  private async ship(): Promise<void> {
    const gen = this.gen
    const first = this.queue[this.head]!
    let lo = first.offset
    let hi = first.offset + first.length
    let n = 1
    while (this.head + n < this.queue.length) {
      const e = this.queue[this.head + n]!
      const a = Math.min(lo, e.offset)
      const z = Math.max(hi, e.offset + e.length)
      // only a contiguous union, applied in queue order, keeps what the site sees a prefix
      if (e.offset > hi || e.offset + e.length < lo || z - a > MAX_JOIN) break
      lo = a
      hi = z
      n++
    }
    let data: Uint8Array
    if (n === 1 && first.data !== null) data = first.data
    else {
      data = new Uint8Array(hi - lo)
      for (let i = 0; i < n; i++) {
        const e = this.queue[this.head + i]!
        if (e.data !== null) data.set(e.data, e.offset - lo)
        else data.fill(0, e.offset - lo, e.offset - lo + e.length)
      }
    }
    let error: unknown = null
    try {
      const t = await this.target(this.site)
      await t.write(this.disk, lo, data)
    } catch (e) {
      error = e
    }
    if (gen !== this.gen || this.stopped) return
    if (error !== null) {
      this.failures++
      this.lastError = errText(error)
      if (this.failures === 1 || this.failures % 100 === 0) this.log.warn('site write failed; retrying', { disk: this.disk, failures: this.failures, error: this.lastError })
      // a drain answers promptly that the site is not taking writes, rather than at its timeout
      for (const d of this.drains.splice(0)) this.settle(d, new Error(`ENODEV: the site is not taking writes for ${this.disk}: ${this.lastError}`))
      const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(16, this.failures - 1))
      this.backoff = setTimeout(() => {
        this.backoff = null
        this.kick()
      }, delay)
      return
    }
    if (this.failures > 0) this.log.info('site writes resumed', { disk: this.disk, after: this.failures })
    this.failures = 0
    for (let i = 0; i < n; i++) {
      const e = this.queue[this.head]!
      this.bytes -= (e.data === null ? 0 : e.length) + ENTRY_COST
      this.queue[this.head++] = undefined as unknown as Entry
    }
    this.shippedSeq += n
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head)
      this.head = 0
    }
    if (this.drains.length > 0) {
      const waiting = this.drains
      this.drains = []
      for (const d of waiting) {
        if (d.seq <= this.shippedSeq) this.settle(d, null)
        else this.drains.push(d)
      }
    }
    if (this.bytes < LOW_WATER) this.answerRooms()
  }

  /** Resolves once everything queued before it reached the site; fails fast while the site fails. */
  drain(timeoutMs: number): Promise<unknown> {
    if (this.overflowed) return Promise.reject(new Error(`EOVERFLOW: the backlog of ${this.disk} was dropped; a resync is due`))
    if (this.shippedSeq >= this.queuedSeq) return Promise.resolve(true)
    if (this.failures > 0) return Promise.reject(new Error(`ENODEV: the site is not taking writes for ${this.disk}: ${this.lastError}`))
    return new Promise((resolve, reject) => {
      const w: Waiter = { seq: this.queuedSeq, resolve, reject, timer: null }
      w.timer = setTimeout(() => {
        w.timer = null
        this.drains = this.drains.filter(x => x !== w)
        reject(new Error(`ETIMEDOUT: ${this.disk}'s backlog did not drain within ${timeoutMs} ms`))
      }, Math.max(1, Math.min(timeoutMs, 60_000)))
      this.drains.push(w)
    })
  }

  /** Resolves true when a chunk copy may add to the backlog, false after ROOM_WAIT_MS. */
  room(): Promise<unknown> {
    if (this.bytes < LOW_WATER || this.stopped) return Promise.resolve(!this.stopped)
    return new Promise((resolve, reject) => {
      const w: Waiter = { seq: 0, resolve, reject, timer: null }
      w.timer = setTimeout(() => {
        w.timer = null
        this.rooms = this.rooms.filter(x => x !== w)
        resolve(false)
      }, ROOM_WAIT_MS)
      this.rooms.push(w)
    })
  }

  private answerRooms(): void {
    for (const w of this.rooms.splice(0)) {
      if (w.timer !== null) clearTimeout(w.timer)
      w.resolve(!this.stopped)
    }
  }

  /** Long poll: answers when the epoch moves past `seen`, or when unwatched. */
  watch(seen: number): Promise<unknown> {
    if (this.epoch > seen) return Promise.resolve({ epoch: this.epoch })
    this.answerWatch({ closed: true })
    return new Promise(resolve => { this.watcher = resolve })
  }

  answerWatch(v: unknown): void {
    const w = this.watcher
    this.watcher = null
    w?.(v)
  }

  /** Drops the queue for good (the instance closed without a drain) once no site write is outstanding. */
  async forget(): Promise<void> {
    this.drop(new Error(`ENODEV: the backlog of ${this.disk} was dropped at close`))
    this.stop()
    await this.settled(STOP_SETTLE_MS)
  }

  /** Waits (bounded) for an outstanding site write to settle. */
  async settled(ms: number): Promise<void> {
    if (this.busy === null) return
    let t: ReturnType<typeof setTimeout> | undefined
    await Promise.race([this.busy, new Promise<void>(res => { t = setTimeout(res, ms) })])
    clearTimeout(t)
  }

  stop(): void {
    this.stopped = true
    if (this.backoff !== null) clearTimeout(this.backoff)
    this.backoff = null
    for (const d of this.drains.splice(0)) this.settle(d, new Error('ENODEV: the daemon is stopping'))
    this.answerRooms()
    this.answerWatch({ closed: true })
  }

  private settle(w: Waiter, error: Error | null): void {
    if (w.timer !== null) clearTimeout(w.timer)
    w.timer = null
    if (error === null) w.resolve(true)
    else w.reject(error)
  }
}

/** The host's replication daemon: one pump per disk, one connection per site. */
function startDaemon(ctx: DaemonContext): Daemon {
  const pumps = new Map<string, Pump>()
  const targets = new Map<string, Promise<ReplicaTarget>>()
  let stopped = false

  const target = (site: string): Promise<ReplicaTarget> => {
    let t = targets.get(site)
    if (t === undefined) {
      t = ctx.targets.connect(site)
      targets.set(site, t)
      // a failed connect is tried again by the next write
      t.catch(() => {
        if (targets.get(site) === t) targets.delete(site)
      })
    }
    return t
  }

  /** The disk's pump; with `inst`, only if that instance opened the disk last. */
  const pumpOf = (disk: string, inst?: number): Pump | undefined => {
    const p = pumps.get(disk)
    return p === undefined || (inst !== undefined && p.owner !== inst) ? undefined : p
  }

  return {
    message(from, raw) {
      const m = raw as ToDaemon
      if (stopped) {
        // nothing queued now reaches the site: a drain must not be taken for success
        if (m.kind === 'drain' || m.kind === 'open') throw new Error('ENODEV: the replication daemon is stopping')
        return m.kind === 'room' ? false : m.kind === 'watch' ? { closed: true } : undefined
      }
      switch (m.kind) {
        case 'open': {
          let p = pumps.get(from.disk)
          if (p === undefined) {
            p = new Pump(from.disk, m.site, target, ctx.log)
            pumps.set(from.disk, p)
          }
          p.reopen(m.inst, m.site, m.ring)
          return { epoch: p.epoch }
        }
        case 'write':
          pumpOf(from.disk, m.inst)?.push({ offset: m.offset, length: m.buf.byteLength, data: new Uint8Array(m.buf) })
          return undefined
        case 'staged': {
          const p = pumpOf(from.disk, m.inst)
          const data = p?.unstage(m.at, m.length, m.end) ?? null
          if (data !== null) p!.push({ offset: m.offset, length: m.length, data })
          return undefined
        }
        case 'zero':
          pumpOf(from.disk, m.inst)?.pushZero(m.offset, m.length)
          return undefined
        case 'resync':
          pumpOf(from.disk, m.inst)?.resync()
          return undefined
        case 'drain':
          return pumpOf(from.disk)?.drain(m.timeoutMs) ?? true
        case 'room':
          return pumpOf(from.disk)?.room() ?? true
        case 'watch':
          return pumpOf(from.disk)?.watch(m.epoch) ?? { closed: true }
        case 'unwatch':
          pumpOf(from.disk)?.answerWatch({ closed: true })
          return undefined
        case 'forget': {
          const p = pumpOf(from.disk)
          if (p === undefined) return undefined
          pumps.delete(from.disk)
          return p.forget()
        }
        case 'bye': {
          const p = pumpOf(from.disk)
          if (p === undefined) return undefined
          if (p.idle) {
            pumps.delete(from.disk)
            p.stop()
          } else p.answerWatch({ closed: true })
          return undefined
        }
        default:
          throw new Error(`unknown message ${JSON.stringify((m as { kind?: unknown }).kind)}`)
      }
    },
    async stop() {
      stopped = true
      for (const p of pumps.values()) p.stop()
      await Promise.all([...pumps.values()].map(p => p.settled(STOP_SETTLE_MS)))
      pumps.clear()
      const open = [...targets.values()]
      targets.clear()
      let t: ReturnType<typeof setTimeout> | undefined
      await Promise.race([
        Promise.allSettled(open.map(async tp => (await tp).close())),
        new Promise<void>(res => { t = setTimeout(res, 1000) }),
      ])
      clearTimeout(t)
    },
  }
}

const cdp: FilterModule = {
  abiVersion: 1,
  name: 'cdp',
  vendor: 'IOFCERT',
  version: '1.0.0',
  class: 'replication',
  policySchema: {
    type: 'object',
    properties: {
      site: { type: 'string', default: 'dr' },
      rpoSeconds: { type: 'integer', minimum: 2, default: 15 },
    },
    additionalProperties: false,
  },
  daemon(ctx) {
    return startDaemon(ctx)
  },
  async open(disk) {
    const loaded = await DirtyMap.load(disk)
    const map = loaded ?? new DirtyMap(disk, DirtyMap.shiftFor(disk.capacity))
    const inst = new CdpInstance(disk, map)
    await inst.begin(loaded === null)
    return inst
  },
}
export default cdp
