/**
 * Negative control for cache.coherence: a read cache of 4 KiB blocks that drops blocks when a
 * write or unmap starts — but fills from every successful read's done(), also from a read that
 * raced an overlapping write. On a drive that reorders, that read may have fetched the bytes from
 * before the write, and the cache then serves them after the write completed.
 */
import type { Decision, FilterModule, Io, Outcome } from '../../harness/sdk/index.js'

const PASS: Decision = Object.freeze({ kind: 'pass' as const })
const COMPLETE: Decision = Object.freeze({ kind: 'complete' as const })
const BLOCK = 4096
const MiB = 1 << 20

const control: FilterModule = {
  abiVersion: 1,
  name: 'ctl-racy-fill-cache',
  vendor: 'IOFCERTCTL',
  version: '1.0.0',
  class: 'cache',
  policySchema: { type: 'object', properties: { cacheMiB: { type: 'integer', minimum: 1, default: 16 } }, additionalProperties: false },
  open(disk) {
    const maxBlocks = Math.floor((Number(disk.policy.cacheMiB ?? 16) * MiB) / BLOCK)
    const blocks = new Map<number, Uint8Array>()
    return {
      start(io: Io): Decision {
        const lo = Math.floor(io.offset / BLOCK)
        const hi = Math.ceil((io.offset + io.length) / BLOCK)
        if (io.op === 'write' || io.op === 'unmap') {
          for (let b = lo; b < hi; b++) blocks.delete(b)
          return PASS
        }
        if (io.op !== 'read') return PASS
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
          if (blocks.size >= maxBlocks) blocks.delete(blocks.keys().next().value!)
          blocks.set(b, io.data!.slice(b * BLOCK - io.offset, (b + 1) * BLOCK - io.offset))
        }
      },
    }
  },
}
export default control
