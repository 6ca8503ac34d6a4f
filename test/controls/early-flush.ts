/**
 * Negative control for lifecycle.crash: a write-back cache that completes writes at once, holds
 * copies and serves reads with them laid over the disk's bytes. On a flush it starts writing back
 * and completes the flush at once, without waiting for the write-back and without passing the
 * flush down — so the drive never makes anything durable. Everything it does at close (write back,
 * then the framework writes the drive's cache back) is right, so a clean shutdown loses nothing;
 * a power cut loses writes the guest was told were durable.
 */
import type { Decision, DiskContext, DiskEvent, FilterInstance, FilterModule, Io } from '../../harness/sdk/index.js'

const PASS: Decision = Object.freeze({ kind: 'pass' as const })
const COMPLETE: Decision = Object.freeze({ kind: 'complete' as const })
const LIMIT = 512

interface Held {
  readonly offset: number
  readonly data: Uint8Array
}

class EarlyFlush implements FilterInstance {
  private held: Held[] = []
  private draining: Promise<void> = Promise.resolve()
  private waiting = 0
  private passed: Promise<unknown> = Promise.resolve()

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
        return this.passInOrder(() => this.writeBack())
      case 'flush':
        // the fault under test: the write-back is started, not awaited, and no flush goes down
        void this.writeBack()
        return COMPLETE
    }
  }

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
    return this.writeBack()
  }
}

const control: FilterModule = {
  abiVersion: 1,
  name: 'ctl-early-flush',
  vendor: 'IOFCERTCTL',
  version: '1.0.0',
  class: 'cache',
  open(disk) {
    return new EarlyFlush(disk)
  },
}
export default control
