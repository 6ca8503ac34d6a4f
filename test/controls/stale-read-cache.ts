/**
 * Negative control for ordering.read-after-write: a read cache of 4 KiB blocks that fills from
 * every successful read and never invalidates — a write or unmap leaves the old bytes cached, so a
 * read after the write completed returns what was there before.
 */
import type { Decision, FilterModule, Io, Outcome } from '../../harness/sdk/index.js'

const PASS: Decision = Object.freeze({ kind: 'pass' as const })
const COMPLETE: Decision = Object.freeze({ kind: 'complete' as const })
const BLOCK = 4096
const MAX_BLOCKS = 4096

const control: FilterModule = {
  abiVersion: 1,
  name: 'ctl-stale-read-cache',
  vendor: 'IOFCERTCTL',
  version: '1.0.0',
  class: 'cache',
  open() {
    const blocks = new Map<number, Uint8Array>()
    return {
      start(io: Io): Decision {
        if (io.op !== 'read') return PASS
        const lo = Math.floor(io.offset / BLOCK)
        const hi = Math.ceil((io.offset + io.length) / BLOCK)
        for (let b = lo; b < hi; b++) if (!blocks.has(b)) return PASS
        for (let b = lo; b < hi; b++) {
          const from = Math.max(io.offset, b * BLOCK)
          const to = Math.min(io.offset + io.length, (b + 1) * BLOCK)
          io.data!.set(blocks.get(b)!.subarray(from - b * BLOCK, to - b * BLOCK), from - io.offset)
        }
        return COMPLETE
      },
      done(io: Io, outcome: Outcome): void {
        if (io.op !== 'read' || !outcome.ok) return
        for (let b = Math.ceil(io.offset / BLOCK); (b + 1) * BLOCK <= io.offset + io.length; b++) {
          if (blocks.size >= MAX_BLOCKS) blocks.delete(blocks.keys().next().value!)
          blocks.set(b, io.data!.slice(b * BLOCK - io.offset, (b + 1) * BLOCK - io.offset))
        }
      },
    }
  },
}
export default control
