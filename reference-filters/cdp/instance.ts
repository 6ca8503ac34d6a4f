/**
 * A disk's instance, in its VM's worker: it holds overlapping writes apart, marks regions in the
 * sidecar before what needs the mark goes down or out, posts completed writes to the daemon in
 * completion order (a small write's bytes copied as it completes into one buffer that travels a
 * moment later with its neighbours, a large one's read back from the disk then, see enqueue()),
 * copies chunks that may differ to the site, and at a clean close waits for the daemon to ship the
 * backlog before it marks the disk clean.
 */
import { PASS } from 'iofcert/sdk'
import type { CloseReason, DaemonLink, Decision, DiskContext, DiskEvent, FilterInstance, Io, Outcome } from 'iofcert/sdk'
import { CHUNK, DRAIN_MS, MARK_DELAY_MS, MARK_QUIET_MS, OPEN_COPY_MS, PACK_MAX, QUEUE_BATCH, QUEUE_BYTES, QUEUE_LINGER_MS, POST_AHEAD_MAX, READ_BACK_MAX, READ_BACKS_MAX, ROOM_EVERY, WAIT_AHEAD, ROOM_WAIT_MS, SEED_PACE_MS, SEED_QUIET_MS, STALE_MS, WRITE_ROOM_EVERY } from './constants.js'
import { CLEAN, DIRTY, type DirtyMap } from './dirty-map.js'
import { errText, type ToDaemon } from './messages.js'

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

/**
 * What waits to be sent, in completion order: a completed small write whose bytes were copied into
 * the queue's pack at `at`, a completed large write whose bytes are still to be read back (its
 * hold kept until then), or a post ready to go (a write's copy, an unmap's zeros, a chunk, a
 * resync).
 */
type Queued =
  | { readonly kind: 'packed'; readonly offset: number; readonly length: number; readonly at: number }
  | { readonly kind: 'read-back'; readonly offset: number; readonly length: number; readonly hold: Hold }
  | { readonly kind: 'ready'; readonly message: ToDaemon; readonly transfer: ArrayBuffer[] | undefined; readonly offset: number; readonly length: number; readonly guest?: true }

/** A post waiting in order until the regions it concerns are marked on stable storage. */
interface Outgoing {
  readonly message: ToDaemon
  readonly transfer: ArrayBuffer[] | undefined
  /** Regions [r0, r1] that must be marked first (r1 < r0: none). */
  readonly r0: number
  readonly r1: number
}

export function isZero(b: Uint8Array): boolean {
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

/** A disk's instance: holds, marks, posts to the daemon and copies of chunks (see filter.ts). */
export class CdpInstance implements FilterInstance {
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
  /** Waiting for the disk to be unstunned (chunk copies, read-backs). */
  private unstuns: (() => void)[] = []
  private closing = false
  private epoch = 0
  private watching: Promise<void> | null = null
  /** What waits to be sent (see enqueue()), the bytes of its writes, and the timer that sends it. */
  private queue: Queued[] = []
  private queueBytes = 0
  /** The bytes of the queue's small writes, one after another (QUEUE_BYTES, made at the first), and how much of it they fill. */
  private pack: Uint8Array | null = null
  private packUsed = 0
  private queueTimer: ReturnType<typeof setTimeout> | null = null
  /** The batches taken from the queue, read back and sent one after another. */
  private sending: Promise<void> = Promise.resolve()
  /** Completed writes queued or being read back (their holds kept). */
  private readBacks = 0
  /** Bytes of guest writes sent since the daemon was last asked for room (see askRoom()). */
  private sinceWrites = 0
  /** While set, the disk's backlog is full and the site takes writes: new writes wait in `start`. */
  private roomWait: Promise<void> | null = null
  /** The daemon's answer to the last question about room, while it is awaited. */
  private asking: Promise<void> | null = null
  /** Bytes of guest writes posted to the daemon, and of those, how many it had when it last answered about room. */
  private posted = 0
  private confirmed = 0
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
      const r = (await this.daemon.request({ kind: 'open', inst: this.id, site } satisfies ToDaemon)) as { epoch: number }
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
    if (!mark && h.ready && this.roomWait === null) return PASS
    return this.admit(io.id, h, mark)
  }

  /** Holds a write until the backlog has room, its regions are marked on stable storage and it overlaps nothing earlier. */
  private async admit(id: number, h: Hold, mark: boolean): Promise<Decision> {
    try {
      if (this.roomWait !== null) await this.roomWait
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
    if (outcome.ok && io.op === 'write' && h !== undefined && this.daemon !== null) {
      const data = io.data!
      if (data.length > PACK_MAX && this.readBacks < READ_BACKS_MAX) {
        // its hold stays until its bytes are read back: no overlapping write goes down meanwhile
        this.readBacks++
        this.enqueue({ kind: 'read-back', offset: io.offset, length: io.length, hold: h })
        return
      }
      // its bytes are copied now, while the guest's buffer still holds them and before an
      // overlapping write can go down: the copy is exactly what this write put on the disk
      if (data.length > PACK_MAX) {
        // the read-backs are behind (a saturating guest): a buffer of its own
        const copy = data.slice()
        this.enqueue({ kind: 'ready', message: { kind: 'write', inst: this.id, offset: io.offset, buf: copy.buffer }, transfer: [copy.buffer], offset: io.offset, length: io.length, guest: true })
      } else {
        if (this.packUsed + data.length > QUEUE_BYTES) this.flushQueue()
        const pack = (this.pack ??= new Uint8Array(QUEUE_BYTES))
        const at = this.packUsed
        pack.set(data, at)
        this.packUsed += data.length
        this.enqueue({ kind: 'packed', offset: io.offset, length: data.length, at })
      }
    } else if (outcome.ok && io.op === 'unmap') this.enqueue({ kind: 'ready', message: { kind: 'zero', inst: this.id, offset: io.offset, length: io.length }, transfer: undefined, offset: io.offset, length: io.length })
    else if (outcome.ok && io.op === 'write' && h === undefined) {
      // its hold was taken for lost (see dropStale()): a later write may be over it on the disk
      for (let c = Math.floor(io.offset / CHUNK); c * CHUNK < io.offset + io.length; c++) this.copies.add(c)
    } else if (!outcome.ok) {
      // what a failed write left on the disk is unknown: copy its chunks once it no longer holds them
      for (let c = Math.floor(io.offset / CHUNK); c * CHUNK < io.offset + io.length; c++) this.copies.add(c)
    }
    if (h !== undefined) this.release(h)
    if (this.copies.size > 0 && this.copying === null) this.kickCopy()
  }

  // ---- the send queue: completed writes, in completion order ----

  /**
   * Queues what is to be sent, in completion order. A small write's bytes go, as it completes, into
   * the queue's pack, after those of the writes that completed before it; a large write's are not
   * copied on the guest's I/O path: its range stays held, so no overlapping write goes down, and
   * they are read back from the disk when the queue goes (in one read per run of writes that follow
   * each other on it), so they are exactly what it wrote. A moment after the first (QUEUE_LINGER_MS,
   * or sooner when QUEUE_BYTES or QUEUE_BATCH are waiting) the queue is posted: the pack's bytes in
   * one buffer and one message, the read-backs in another. The daemon gets a buffer per batch, not
   * one a write, and the guest's I/O path pays at most a small copy, never a message.
   */
  private enqueue(q: Queued): void {
    this.queue.push(q)
    if (q.kind !== 'ready' || q.guest === true) this.queueBytes += q.length
    if (this.queue.length >= QUEUE_BATCH || this.queueBytes >= QUEUE_BYTES) this.flushQueue()
    else this.queueTimer ??= setTimeout(this.flushQueue, QUEUE_LINGER_MS)
  }

  private readonly flushQueue = (): void => {
    if (this.queueTimer !== null) clearTimeout(this.queueTimer)
    this.queueTimer = null
    if (this.queue.length === 0) return
    const list = this.queue
    this.queue = []
    this.queueBytes = 0
    // the pack is kept for the next writes: what this batch's writes filled of it travels as a copy
    const packed = this.packUsed > 0 ? this.pack!.slice(0, this.packUsed) : null
    this.packUsed = 0
    this.sending = this.sending.then(() => this.sendBatch(list, packed)).catch(e => {
      this.disk.log.error('could not send completed writes to the daemon', { error: errText(e) })
    })
  }

  /** Everything queued so far, read back and handed to send() (requests wait for it). */
  private settle(): Promise<void> {
    this.flushQueue()
    return this.sending
  }

  /**
   * Sends a batch, in order: its small writes' bytes are `packed` (each at its `at`); its large
   * ones are read back all at once (runs that follow each other on the disk in one read each).
   */
  private async sendBatch(list: Queued[], packed: Uint8Array | null): Promise<void> {
    const runs: { i: number; j: number; lo: number; hi: number }[] = []
    for (let i = 0; i < list.length; i++) {
      const q = list[i]!
      if (q.kind !== 'read-back') continue
      let j = i
      let hi = q.offset + q.length
      for (let n: Queued | undefined; (n = list[j + 1]) !== undefined && n.kind === 'read-back' && n.offset === hi && hi + n.length - q.offset <= READ_BACK_MAX; j++) hi += n.length
      runs.push({ i, j, lo: q.offset, hi })
      i = j
    }
    // a daemon that has not answered about the last POST_AHEAD_MAX of writes is behind on its
    // messages: what is posted now would wait in transit, in memory. New guest writes wait for its
    // answer (at most ROOM_WAIT_MS), and if it does not come, the batch's writes are copied later
    // from their chunks instead (with waits for room), as after an overflow.
    let behind = this.posted - this.confirmed >= POST_AHEAD_MAX
    if (behind && !this.closing) {
      if (this.asking === null) this.askRoom()
      const asking = this.asking
      if (asking !== null) {
        this.waitRoom(asking)
        let timer: ReturnType<typeof setTimeout> | undefined
        await Promise.race([asking, new Promise<void>(res => { timer = setTimeout(res, ROOM_WAIT_MS) })])
        clearTimeout(timer)
      }
      behind = this.posted - this.confirmed >= POST_AHEAD_MAX
    }
    const read = await Promise.all(runs.map(r => (behind ? Promise.resolve(null) : this.readBack(r.lo, r.hi - r.lo))))
    const out: { message: ToDaemon; transfer: ArrayBuffer[] | undefined; offset: number; length: number }[] = []
    // the writes that follow each other in the batch travel in one message: the packed ones with
    // their bytes in one buffer, the read-backs with theirs. The daemon's thread, one among a host
    // of busy VMs, takes a message per batch rather than per write
    type Group =
      | { kind: 'packed'; offsets: number[]; lengths: number[]; from: number; to: number }
      | { kind: 'read'; offsets: number[]; bufs: ArrayBuffer[] }
    let group: Group | null = null
    const endGroup = (): void => {
      if (group === null) return
      const g: Group = group
      group = null
      // the range the group's writes span (for the marks its post waits on)
      let lo = Infinity
      let hi = 0
      for (let k = 0; k < g.offsets.length; k++) {
        lo = Math.min(lo, g.offsets[k]!)
        hi = Math.max(hi, g.offsets[k]! + (g.kind === 'packed' ? g.lengths[k]! : g.bufs[k]!.byteLength))
      }
      if (g.kind === 'packed') {
        // the whole pack moves when one group has it all (mostly); else the group's part is copied
        const bytes = g.from === 0 && g.to === packed!.length ? packed! : packed!.slice(g.from, g.to)
        out.push({ message: { kind: 'packed', inst: this.id, offsets: g.offsets, lengths: g.lengths, buf: bytes.buffer as ArrayBuffer }, transfer: [bytes.buffer as ArrayBuffer], offset: lo, length: hi - lo })
      } else if (g.bufs.length === 1) out.push({ message: { kind: 'write', inst: this.id, offset: g.offsets[0]!, buf: g.bufs[0]! }, transfer: g.bufs, offset: lo, length: hi - lo })
      else out.push({ message: { kind: 'writes', inst: this.id, offsets: g.offsets, bufs: g.bufs }, transfer: g.bufs, offset: lo, length: hi - lo })
    }
    let lost = false
    const lose = (lo: number, hi: number): void => {
      for (let c = Math.floor(lo / CHUNK); c * CHUNK < hi; c++) this.copies.add(c)
      lost = true
    }
    let run = 0
    for (let i = 0; i < list.length; i++) {
      const q = list[i]!
      if (q.kind === 'ready') {
        endGroup()
        // not posted (a daemon behind on its messages): its chunks are copied again
        if (q.guest === true && behind) lose(q.offset, q.offset + q.length)
        else {
          if (q.guest === true) this.posted += q.length
          out.push(q)
        }
        continue
      }
      if (q.kind === 'packed') {
        if (behind) {
          endGroup()
          lose(q.offset, q.offset + q.length)
          continue
        }
        this.sinceWrites += q.length
        this.posted += q.length
        if (group?.kind !== 'packed') endGroup()
        group ??= { kind: 'packed', offsets: [], lengths: [], from: q.at, to: q.at }
        const g = group as Extract<Group, { kind: 'packed' }>
        g.offsets.push(q.offset)
        g.lengths.push(q.length)
        g.to = q.at + q.length
        continue
      }
      const { j, hi } = runs[run]!
      const data = read[run++]!
      for (let k = i; k <= j; k++) this.release((list[k] as Extract<Queued, { kind: 'read-back' }>).hold)
      this.readBacks -= j - i + 1
      i = j
      if (data === null) {
        // not read back (a failing disk, a close while stunned, a daemon behind): its chunks are copied again
        endGroup()
        lose(q.offset, hi)
        continue
      }
      this.sinceWrites += hi - q.offset
      this.posted += hi - q.offset
      if (group?.kind !== 'read') endGroup()
      // moved, not cloned: lower.read's array is the instance's alone, and a buffer left behind
      // in this worker would wait for its collector (at scale, GiBs across the VMs)
      group ??= { kind: 'read', offsets: [], bufs: [] }
      const g = group as Extract<Group, { kind: 'read' }>
      g.offsets.push(q.offset)
      g.bufs.push(data.buffer as ArrayBuffer)
    }
    endGroup()
    for (const o of out) this.send(o.message, o.transfer, o.offset, o.length)
    if (lost) this.kickCopy()
    if (this.sinceWrites >= WRITE_ROOM_EVERY || (behind && this.asking === null)) this.askRoom()
  }

  /**
   * Asks the daemon whether the disk's backlog has room. New guest writes wait in `start` (at most
   * ROOM_WAIT_MS, timed here: a daemon far behind answers late) when it has not and the site takes
   * writes (the daemon says yes at once while the site fails), and when the last question is still
   * unanswered once WAIT_AHEAD of writes were posted since its last answer: the daemon is behind on
   * its messages (a question merely out for a round trip holds nothing up). A
   * guest whose writes the daemon keeps up with never waits; asking holds nothing up. Once
   * POST_AHEAD_MAX of writes went unanswered, writes are no longer posted but their chunks copied
   * later (see sendBatch()): what waits for a daemon behind on its messages stays bounded.
   */
  private askRoom(): void {
    this.sinceWrites = 0
    const daemon = this.daemon
    if (daemon === null || this.closing) return
    if (this.asking !== null) {
      if (this.posted - this.confirmed < WAIT_AHEAD) return
      this.waitRoom(this.asking)
      return
    }
    // an answer says the daemon has taken every post made before the question
    const mark = this.posted
    const heard = (): void => {
      if (mark > this.confirmed) this.confirmed = mark
    }
    const asked = daemon.request({ kind: 'room', wait: false, writes: true } satisfies ToDaemon).then(
      room => {
        this.asking = null
        heard()
        if (room !== true && !this.closing) this.waitRoom(daemon.request({ kind: 'room', wait: true, writes: true } satisfies ToDaemon))
      },
      () => {
        this.asking = null
        heard()
      },
    )
    this.asking = asked
  }

  /** Holds new guest writes until `answer` settles, or ROOM_WAIT_MS. */
  private waitRoom(answer: Promise<unknown>): void {
    if (this.roomWait !== null) return
    let open = (): void => {}
    const wait = new Promise<void>(res => { open = res })
    this.roomWait = wait
    const end = (): void => {
      clearTimeout(timer)
      if (this.roomWait === wait) this.roomWait = null
      open()
    }
    const timer = setTimeout(end, ROOM_WAIT_MS)
    answer.then(end, end)
  }

  /** Reads [offset, offset + length) back for the site; null when it cannot (no filter I/O while stunned). */
  private async readBack(offset: number, length: number): Promise<Uint8Array | null> {
    while (this.stunned && !this.closing) await new Promise<void>(res => this.unstuns.push(res))
    if (this.stunned) return null
    try {
      const data = await this.lower.read(offset, length)
      // the message moves the whole buffer: a view of part of one is copied
      return data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : data.slice()
    } catch (e) {
      this.disk.log.warn('could not read back completed writes for the site; their chunks will be copied', { offset, length, error: errText(e) })
      return null
    }
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
      this.post(message, transfer)
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

  /** Posts to the daemon (the link carries the posts of one turn in one message). */
  private post(message: ToDaemon, transfer?: ArrayBuffer[]): void {
    this.daemon?.post(message, transfer)
  }

  /** A request to the daemon, after everything queued before it was sent. */
  private async request(message: ToDaemon, daemon: DaemonLink | null = this.daemon): Promise<unknown> {
    await this.settle()
    if (daemon === null) throw new Error('ENODEV: no daemon')
    return daemon.request(message)
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
      this.post(o.message, o.transfer)
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
      if (!h.ready) {
        // a guest write holds part of the chunk: the copy yields and comes back to it after the
        // other chunks, rather than queue behind the write. Queued, it would hold back every later
        // guest write over the chunk until the earlier ones were done — and a guest whose next
        // write must start before it completes the earlier ones (the handler profile issues a
        // batch's starts one after another, then their dones) would wait for good.
        this.release(h)
        from.delete(chunk)
        from.add(chunk)
        await this.sleep(SEED_PACE_MS)
        continue
      }
      // checked right before the read, in the same turn: no filter I/O while the disk is stunned
      if (this.closing || this.stunned) {
        this.release(h)
        if (this.stunned && !this.closing) await new Promise<void>(res => this.unstuns.push(res))
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
      if (from === this.seeds && isZero(data)) this.enqueue({ kind: 'ready', message: { kind: 'zero', inst: this.id, offset: lo, length: h.hi - lo }, transfer: undefined, offset: lo, length: h.hi - lo })
      else {
        const buf = data.buffer as ArrayBuffer
        this.sinceRoom += buf.byteLength
        this.enqueue({ kind: 'ready', message: { kind: 'write', inst: this.id, offset: lo, buf }, transfer: [buf], offset: lo, length: buf.byteLength })
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
      return (await this.request({ kind: 'room', wait: true, writes: false })) === true ? 'ok' : 'full'
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
        r = (await this.request({ kind: 'watch', epoch: this.epoch }, daemon)) as typeof r
      } catch {
        return
      }
      if (this.closing || r.closed || r.epoch === undefined) return
      this.epoch = r.epoch
      this.disk.log.warn('the site fell too far behind: copying every region written since the last clean close')
      // the daemon drops what it is sent until this arrives, in order, ahead of the copies
      this.enqueue({ kind: 'ready', message: { kind: 'resync', inst: this.id }, transfer: undefined, offset: 0, length: 0 })
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
      for (const w of this.unstuns.splice(0)) w()
    }
    // snapshot: nothing is held back from the disk, so the image is already consistent
  }

  async close(reason: CloseReason): Promise<void> {
    this.closing = true
    for (const w of this.unstuns.splice(0)) w()
    this.pause?.wake()
    await this.copying
    // what completed before close is read back and sent (or its chunks marked for a copy)
    await this.settle()
    if (this.daemon === null) {
      if (this.marking !== null) clearTimeout(this.marking)
      return
    }
    try {
      await this.flushOutbox()
    } catch (e) {
      this.disk.log.warn('could not mark regions at close: the disk stays marked for a resync', { error: errText(e) })
      await this.request({ kind: 'forget' }).catch(() => {})
      return
    }
    this.post({ kind: 'unwatch' })
    await this.watching
    let drained = false
    try {
      await this.request({ kind: 'drain', timeoutMs: DRAIN_MS })
      drained = true
    } catch (e) {
      this.disk.log.warn('the site did not take the backlog before close: the disk stays marked for a resync', { reason, error: errText(e) })
    }
    if (!drained) {
      // the next open may be on another host whose daemon copies these regions: nothing stale of
      // ours may reach the site after that
      await this.request({ kind: 'forget' }).catch(() => {})
      return
    }
    this.post({ kind: 'bye' })
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
