/**
 * Negative control for cache.benefit: a read-through cache that completes every read itself
 * (reading the disk through `lower` and keeping a copy of each whole 4 KiB block, within cacheMiB)
 * but stores blocks under string keys and looks them up with numbers, so it never hits. It is
 * coherent and bounded; it is simply never faster than the disk.
 */
import type { Decision, FilterModule, Io } from '../../harness/sdk/index.js'

const PASS: Decision = Object.freeze({ kind: 'pass' as const })
const COMPLETE: Decision = Object.freeze({ kind: 'complete' as const })
const BLOCK = 4096
const MiB = 1 << 20

const control: FilterModule = {
  abiVersion: 1,
  name: 'ctl-never-hit-cache',
  vendor: 'IOFCERTCTL',
  version: '1.0.0',
  class: 'cache',
  policySchema: { type: 'object', properties: { cacheMiB: { type: 'integer', minimum: 1, default: 16 } }, additionalProperties: false },
  open(disk) {
    const maxBlocks = Math.floor((Number(disk.policy.cacheMiB ?? 16) * MiB) / BLOCK)
    const blocks = new Map<string | number, Uint8Array>()
    return {
      start(io: Io): Decision | Promise<Decision> {
        const lo = Math.floor(io.offset / BLOCK)
        const hi = Math.ceil((io.offset + io.length) / BLOCK)
        if (io.op === 'write' || io.op === 'unmap') {
          for (let b = lo; b < hi; b++) blocks.delete(String(b))
          return PASS
        }
        if (io.op !== 'read') return PASS
        let hit = true
        for (let b = lo; b < hi && hit; b++) hit = blocks.has(b)
        if (hit) {
          for (let b = lo; b < hi; b++) {
            const from = Math.max(io.offset, b * BLOCK)
            const to = Math.min(io.offset + io.length, (b + 1) * BLOCK)
            io.data!.set(blocks.get(b)!.subarray(from - b * BLOCK, to - b * BLOCK), from - io.offset)
          }
          return COMPLETE
        }
        return disk.lower.read(io.offset, io.length).then(bytes => {
          io.data!.set(bytes)
          for (let b = Math.ceil(io.offset / BLOCK); (b + 1) * BLOCK <= io.offset + io.length; b++) {
            if (blocks.size >= maxBlocks) blocks.delete(blocks.keys().next().value!)
            blocks.set(String(b), bytes.slice(b * BLOCK - io.offset, (b + 1) * BLOCK - io.offset))
          }
          return COMPLETE
        })
      },
    }
  },
}
export default control
