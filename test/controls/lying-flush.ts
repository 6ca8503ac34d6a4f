/**
 * Negative control for ordering.flush-durability: a write-back cache that completes writes at
 * once, holds copies, serves reads with them laid over the disk's bytes and writes them back in
 * issue order — on a snapshot, at close, when it holds too many, and before an unmap — but it
 * completes a flush without writing anything back: it lies about flush, and a power cut loses
 * writes the guest was told are durable.
 */
import type { Decision, DiskContext, DiskEvent, FilterInstance, FilterModule, Io } from '../../harness/sdk/index.js'

const PASS: Decision = Object.freeze({ kind: 'pass' as const })
const COMPLETE: Decision = Object.freeze({ kind: 'complete' as const })
/** Held writes before the cache writes back without being asked. */
const LIMIT = 512

interface Held {
  readonly offset: number
  readonly data: Uint8Array
}

class WriteBack implements FilterInstance {
  /** Held writes in the order the guest issued them; an entry leaves only once it is on the disk. */
  private held: Held[] = []
  private draining: Promise<void> = Promise.resolve()
  /** I/O waiting to be passed down: later ones queue behind it, so none overtakes another. */
  private waiting = 0
  private passed: Promise<unknown> = Promise.resolve()
  /** Flushes it completed itself, for its close-time log line. */
  private flushes = 0

  constructor(private readonly disk: DiskContext) {}

  start(io: Io): Decision | Promise<Decision> {
    switch (io.op) {
      case 'write':
        this.held.push({ offset: io.offset, data: io.data!.slice() })
        if (this.held.length < LIMIT) return COMPLETE
        return this.writeBack().then(() => COMPLETE)
      case 'read':
        if (!this.held.some(h => h.offset < io.offset + io.length && io.offset < h.offset + h.data.length)) return this.passInOrder(null)
        return this.readThrough(io)
      case 'unmap':
        // held data goes first, so the unmap comes after it
        return this.passInOrder(() => this.writeBack())
      case 'flush':
        this.flushes++
        return COMPLETE
    }
  }

  /** Passes an I/O down after `before` and after every I/O passed before it. */
  private passInOrder(before: (() => Promise<void>) | null): Decision | Promise<Decision> {
    if (before === null && this.waiting === 0) return PASS
    this.waiting++
    const p = this.passed.then(before).then(() => {
      this.waiting--
      return PASS
    })
    this.passed = p
    return p
  }

  /** The disk's bytes with every held write laid over them, oldest first. */
  private async readThrough(io: Io): Promise<Decision> {
    const held = this.held.slice()
    const bytes = await this.disk.lower.read(io.offset, io.length)
    for (const h of held) {
      const from = Math.max(io.offset, h.offset)
      const to = Math.min(io.offset + io.length, h.offset + h.data.length)
      if (from < to) bytes.set(h.data.subarray(from - h.offset, to - h.offset), from - io.offset)
    }
    io.data!.set(bytes)
    return COMPLETE
  }

  /** Writes back what is held now, in issue order. */
  private writeBack(): Promise<void> {
    this.draining = this.draining.then(async () => {
      const batch = this.held.slice()
      for (const h of batch) await this.disk.lower.write(h.offset, h.data)
      this.held = this.held.slice(batch.length)
    })
    return this.draining
  }

  event(e: DiskEvent): Promise<void> | void {
    if (e === 'snapshot') return this.writeBack()
  }

  close(): Promise<void> {
    this.disk.log.info(`closing: ${this.flushes} flushes completed from the cache, ${this.held.length} writes held`)
    return this.writeBack()
  }
}

const control: FilterModule = {
  abiVersion: 1,
  name: 'ctl-lying-flush',
  vendor: 'IOFCERTCTL',
  version: '1.0.0',
  class: 'cache',
  open(disk) {
    return new WriteBack(disk)
  },
}
export default control
