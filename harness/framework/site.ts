/**
 * The instrumented recovery site. Each disk's replica starts empty (reads zeros); every write's
 * arrival is logged (time, disk, offset, length, content hash); faults are set per disk: slow,
 * down (calls reject promptly with ENODEV, never hang) or failing with an error.
 *
 * A site lives with the cluster object that made it. Given a directory it also keeps each
 * replica in a file there, written before the write resolves, so the replica outlives the process
 * running the cluster: a site opened later on the same directory starts from it (a check that
 * kills that process with `kill -9` still finds the replica as the site last acknowledged it).
 */
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import type { IoError } from '../sdk/index.js'

/** One write as it arrived at the site. `at` is epoch ms with sub-ms precision. */
export interface Arrival {
  readonly seq: number
  readonly at: number
  readonly disk: string
  readonly offset: number
  readonly length: number
  readonly hash: string
}

/** A per-disk fault at the site. */
export interface SiteFault {
  readonly down?: boolean
  readonly slowMs?: number
  readonly error?: IoError
}

/**
 * One writer's ordered stream of writes to one disk (a replica target's connection): a write never
 * applies after an earlier write of the stream failed, unless its writer had seen that failure
 * when it called it. `failed` counts the stream's rejected writes; `seen` is how many of them
 * the writer had been told of when it made this write.
 */
export interface WriteStream {
  readonly seen: number
  readonly state: { failed: number }
}

const BLOCK = 4096

/** Epoch milliseconds with sub-millisecond precision, comparable across threads. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now()
}

class Replica {
  readonly blocks = new Map<number, Uint8Array>()
  applyAfter = 0
  /** The replica's file when the site keeps replicas on disk. */
  constructor(private readonly file: string | null = null) {
    if (file === null || !fs.existsSync(file)) return
    const bytes = fs.readFileSync(file)
    for (let at = 0; at < bytes.length; at += BLOCK) {
      const blk = new Uint8Array(BLOCK)
      blk.set(bytes.subarray(at, Math.min(at + BLOCK, bytes.length)))
      // unwritten stretches of the sparse file read as zeros, as an absent block does
      if (blk.some(b => b !== 0)) this.blocks.set(at / BLOCK, blk)
    }
  }
  write(offset: number, data: Uint8Array): void {
    if (this.file !== null) {
      const fd = fs.openSync(this.file, fs.existsSync(this.file) ? 'r+' : 'w+')
      try {
        let done = 0
        while (done < data.length) done += fs.writeSync(fd, data, done, data.length - done, offset + done)
      } finally {
        fs.closeSync(fd)
      }
    }
    let pos = 0
    while (pos < data.length) {
      const abs = offset + pos
      const b = Math.floor(abs / BLOCK)
      const inB = abs - b * BLOCK
      const n = Math.min(BLOCK - inB, data.length - pos)
      let blk = this.blocks.get(b)
      if (blk === undefined) {
        blk = new Uint8Array(BLOCK)
        this.blocks.set(b, blk)
      }
      blk.set(data.subarray(pos, pos + n), inB)
      pos += n
    }
  }
  read(offset: number, length: number): Uint8Array {
    const out = new Uint8Array(length)
    let pos = 0
    while (pos < length) {
      const abs = offset + pos
      const b = Math.floor(abs / BLOCK)
      const inB = abs - b * BLOCK
      const n = Math.min(BLOCK - inB, length - pos)
      const blk = this.blocks.get(b)
      if (blk !== undefined) out.set(blk.subarray(inB, inB + n), pos)
      pos += n
    }
    return out
  }
}

export class RecoverySite {
  private readonly replicas = new Map<string, Replica>()
  private readonly faults = new Map<string, SiteFault>()
  private log: Arrival[] = []
  private seq = 0
  /** Keep at most this many arrivals (oldest dropped first). */
  logLimit = 2_000_000
  writes = 0
  flushes = 0

  /** `o.dir`: keep each replica in a file there as well (created when missing). */
  constructor(readonly name: string, private readonly o: { readonly dir?: string } = {}) {
    if (o.dir !== undefined) fs.mkdirSync(o.dir, { recursive: true })
  }

  private fileOf(disk: string): string | null {
    return this.o.dir === undefined ? null : path.join(this.o.dir, `${encodeURIComponent(disk)}.replica`)
  }

  private replica(disk: string): Replica {
    let r = this.replicas.get(disk)
    if (r === undefined) {
      r = new Replica(this.fileOf(disk))
      this.replicas.set(disk, r)
    }
    return r
  }

  setFault(disk: string, fault: SiteFault | null): void {
    if (fault === null) this.faults.delete(disk)
    else this.faults.set(disk, fault)
  }

  private gate(disk: string): { error: Error | null; delay: number } {
    const f = this.faults.get(disk)
    if (f === undefined) return { error: null, delay: 0 }
    if (f.down) return { error: Object.assign(new Error(`ENODEV: recovery site ${this.name} is down for disk ${disk}`), { code: 'ENODEV' }), delay: 0 }
    if (f.error) return { error: Object.assign(new Error(`${f.error}: recovery site ${this.name} failed the write for disk ${disk}`), { code: f.error }), delay: f.slowMs ?? 0 }
    return { error: null, delay: f.slowMs ?? 0 }
  }

  /**
   * Applies a write to `disk`'s replica; writes to one disk apply in call order. With `stream`, a
   * write that follows a failed one of the same stream which its writer had not seen yet is
   * rejected with ECANCELED instead of applied: the replica never gets a later write without an
   * earlier one, however many writes the writer keeps in flight.
   */
  write(disk: string, offset: number, data: Uint8Array, stream?: WriteStream): Promise<void> {
    const bad = RecoverySite.invalid(offset, data)
    if (bad !== null) return Promise.reject(RecoverySite.refused(stream, bad))
    const g = this.gate(disk)
    const r = this.replica(disk)
    const apply = (): void => {
      r.write(offset, data)
      this.writes++
      if (this.log.length >= this.logLimit) this.log = this.log.slice(this.log.length >> 1)
      this.log.push({ seq: this.seq++, at: nowMs(), disk, offset, length: data.length, hash: hashBytes(data) })
    }
    if (g.delay <= 0 && r.applyAfter <= nowMs()) {
      const e = g.error ?? RecoverySite.canceled(disk, stream)
      if (e !== null) return Promise.reject(RecoverySite.refused(stream, e))
      apply()
      return Promise.resolve()
    }
    // a slow link delays every write; later writes never overtake earlier ones
    const at = Math.max(nowMs() + g.delay, r.applyAfter)
    r.applyAfter = at
    return new Promise((resolve, reject) => {
      setTimeout(() => {
        // checked as the write applies: a failure of an earlier write is known by then (in call order)
        const e = g.error ?? RecoverySite.canceled(disk, stream)
        if (e !== null) reject(RecoverySite.refused(stream, e))
        else {
          apply()
          resolve()
        }
      }, Math.max(0, at - nowMs()))
    })
  }

  /** EINVAL for a write no site takes, else null. */
  protected static invalid(offset: number, data: Uint8Array): Error | null {
    return !Number.isSafeInteger(offset) || offset < 0 || !(data instanceof Uint8Array) ? Object.assign(new Error('EINVAL: bad replica write'), { code: 'EINVAL' }) : null
  }

  /** ECANCELED for a write of `stream` behind a failed one its writer had not seen, else null. */
  protected static canceled(disk: string, stream: WriteStream | undefined): Error | null {
    return stream !== undefined && stream.state.failed > stream.seen
      ? Object.assign(new Error(`ECANCELED: an earlier write to ${disk} on this connection failed; this one was not applied`), { code: 'ECANCELED' })
      : null
  }

  /** `e`, counted as one more failed write of `stream`. */
  protected static refused(stream: WriteStream | undefined, e: Error): Error {
    if (stream !== undefined) stream.state.failed++
    return e
  }

  flush(disk: string): Promise<void> {
    const g = this.gate(disk)
    if (g.error) return Promise.reject(g.error)
    this.flushes++
    const r = this.replica(disk)
    const wait = Math.max(g.delay, r.applyAfter - nowMs())
    return wait > 0 ? new Promise(res => setTimeout(res, wait)) : Promise.resolve()
  }

  /** The replica's bytes (for checks). */
  read(disk: string, offset: number, length: number): Uint8Array {
    return this.replica(disk).read(offset, length)
  }

  /** Arrivals, optionally for one disk, in arrival order. */
  arrivals(disk?: string): Arrival[] {
    return disk === undefined ? this.log.slice() : this.log.filter(a => a.disk === disk)
  }

  /** Forgets a disk's replica (the disk was deleted). */
  drop(disk: string): void {
    this.replicas.delete(disk)
    const file = this.fileOf(disk)
    if (file !== null) fs.rmSync(file, { force: true })
  }

  disks(): string[] {
    if (this.o.dir !== undefined) {
      // replicas kept on disk by an earlier process count too, though not yet read here
      for (const f of fs.readdirSync(this.o.dir)) if (f.endsWith('.replica')) this.replica(decodeURIComponent(f.slice(0, -'.replica'.length)))
    }
    return [...this.replicas.keys()]
  }
}

/** A short content hash used in the arrival log and by checks comparing contents. */
export function hashBytes(data: Uint8Array): string {
  return createHash('sha1').update(data).digest('hex').slice(0, 16)
}
