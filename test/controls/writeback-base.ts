/**
 * The write-back cache the write-back controls are made of, sound as it stands: a control extends
 * it to put in its one defect.
 *
 * It completes writes at once and holds copies of them; it serves reads with the held writes laid
 * over the disk's bytes, oldest first, and writes them back in issue order — on a flush (before
 * passing it down, so the flush covers them), on a snapshot, before an unmap, when it holds too
 * many, and at close. I/O it passes down queues behind I/O it passed before, so none overtakes
 * another.
 */
import { COMPLETE, PASS } from 'iofcert/sdk'
import type { CloseReason, Decision, DiskContext, DiskEvent, FilterInstance, FilterModule, Io } from 'iofcert/sdk'

/** Held writes before the cache writes back without being asked. */
const LIMIT = 512

/** A write the cache holds. */
export interface Held {
  readonly offset: number
  readonly data: Uint8Array
}

/** One disk's write-back cache. */
export class WriteBack implements FilterInstance {
  /** Held writes in the order the guest issued them; an entry leaves only once it is on the disk. */
  protected held: Held[] = []
  private draining: Promise<void> = Promise.resolve()
  /** I/O waiting to be passed down: later ones queue behind it, so none overtakes another. */
  private waiting = 0
  private passed: Promise<unknown> = Promise.resolve()

  constructor(protected readonly disk: DiskContext) {}

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
        return this.flush()
    }
  }

  /** A flush: what is held is written back, then the flush goes down and covers it. */
  protected flush(): Decision | Promise<Decision> {
    return this.passInOrder(() => this.writeBack())
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

  /** The order a batch of held writes goes to the disk in: the order the guest issued them. */
  protected writeBackOrder(batch: readonly Held[]): readonly Held[] {
    return batch
  }

  /** Writes back what is held now. */
  protected writeBack(): Promise<void> {
    this.draining = this.draining.then(async () => {
      const batch = this.held.slice()
      for (const h of this.writeBackOrder(batch)) await this.disk.lower.write(h.offset, h.data)
      this.held = this.held.slice(batch.length)
    })
    return this.draining
  }

  event(e: DiskEvent): Promise<void> | void {
    if (e === 'snapshot') return this.writeBack()
  }

  close(_reason: CloseReason): Promise<void> | void {
    return this.writeBack()
  }
}

/** A write-back control's module: `instance` is the control's subclass of WriteBack. */
export function writeBackModule(name: string, instance: typeof WriteBack = WriteBack): FilterModule {
  return {
    abiVersion: 1,
    name,
    vendor: 'IOFCERTCTL',
    version: '1.0.0',
    class: 'cache',
    open(disk) {
      return new instance(disk)
    },
  }
}
