/**
 * Negative control for events.snapshot: a write-back cache that acknowledges writes at once, keeps
 * them in memory and writes them below every 200 ms, before a flush, on close and before a stun
 * takes hold (it pauses while stunned) — but ignores the snapshot event, so a snapshot misses
 * writes the guest was told are done.
 */
import { COMPLETE, PASS, type Decision, type DiskContext, type DiskEvent, type FilterInstance, type FilterModule, type Io, type IoError, type Outcome } from 'iofcert/sdk'

const SECTOR = 512

class WriteBack implements FilterInstance {
  /** Sector → its newest acknowledged bytes, not yet below. */
  private readonly held = new Map<number, Uint8Array>()
  private writing: Promise<void> | null = null
  private readsBelow = 0
  private readWaiters: (() => void)[] = []
  private stunned = false
  private readonly timer: ReturnType<typeof setInterval>

  constructor(private readonly disk: DiskContext) {
    this.timer = setInterval(() => {
      if (!this.stunned) this.writeBack().catch(() => undefined)
    }, 200)
  }

  start(io: Io): Decision | Promise<Decision> {
    const first = io.offset / SECTOR
    const n = io.length / SECTOR
    switch (io.op) {
      case 'write':
        for (let i = 0; i < n; i++) this.held.set(first + i, io.data!.slice(i * SECTOR, (i + 1) * SECTOR))
        return COMPLETE
      case 'read': {
        let all = true
        for (let i = 0; i < n && all; i++) if (!this.held.has(first + i)) all = false
        if (all) {
          this.overlay(io)
          return COMPLETE
        }
        // a read below must not race a write-back of the sectors it reads
        if (this.writing === null) return this.readBelow()
        return this.settled().then(() => this.readBelow())
      }
      case 'unmap':
        return this.settled().then(() => {
          for (let i = 0; i < n; i++) this.held.delete(first + i)
          return PASS
        })
      case 'flush':
        return this.writeBack().then(() => PASS, (e: { code?: IoError }) => ({ kind: 'fail' as const, error: e.code ?? 'EIO' }))
    }
  }

  private readBelow(): Decision | Promise<Decision> {
    // a write-back may have begun while this read waited for the previous one
    if (this.writing !== null) return this.settled().then(() => this.readBelow())
    this.readsBelow++
    return PASS
  }

  done(io: Io, outcome: Outcome): void {
    if (io.op !== 'read') return
    if (--this.readsBelow === 0) for (const w of this.readWaiters.splice(0)) w()
    if (outcome.ok) this.overlay(io)
  }

  private overlay(io: Io): void {
    const first = io.offset / SECTOR
    for (let i = 0; i < io.length / SECTOR; i++) {
      const s = this.held.get(first + i)
      if (s !== undefined) io.data!.set(s, i * SECTOR)
    }
  }

  private async settled(): Promise<void> {
    while (this.writing !== null) await this.writing.catch(() => undefined)
  }

  /** Writes every held sector below (in runs), dropping those not overwritten meanwhile. */
  async writeBack(): Promise<void> {
    // checked and claimed in one turn, so two write-backs never run at once
    while (this.writing !== null) await this.writing.catch(() => undefined)
    if (this.held.size === 0) return
    this.writing = (async () => {
      while (this.readsBelow > 0) await new Promise<void>(res => this.readWaiters.push(res))
      const taken = [...this.held.entries()].sort((a, b) => a[0] - b[0])
      const writes: Promise<void>[] = []
      for (let i = 0; i < taken.length;) {
        let j = i + 1
        while (j < taken.length && taken[j]![0] === taken[j - 1]![0] + 1) j++
        const run = new Uint8Array((j - i) * SECTOR)
        for (let k = i; k < j; k++) run.set(taken[k]![1], (k - i) * SECTOR)
        writes.push(this.disk.lower.write(taken[i]![0] * SECTOR, run))
        i = j
      }
      await Promise.all(writes)
      for (const [s, b] of taken) if (this.held.get(s) === b) this.held.delete(s)
    })()
    try {
      await this.writing
    } finally {
      this.writing = null
    }
  }

  async event(ev: DiskEvent): Promise<void> {
    // the fault under test: 'snapshot' is ignored, so acknowledged writes stay in memory
    if (ev === 'stun') {
      this.stunned = true
      await this.settled()
    } else if (ev === 'unstun') this.stunned = false
  }

  async close(): Promise<void> {
    clearInterval(this.timer)
    await this.writeBack()
  }
}

const mod: FilterModule = {
  abiVersion: 1,
  name: 'ctl-writeback',
  vendor: 'TEST',
  version: '1.0.0',
  class: 'cache',
  open(disk) {
    return new WriteBack(disk)
  },
}
export default mod
