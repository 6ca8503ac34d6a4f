/**
 * Negative control for exclusivity.coexistence: a read cache of 4 KiB blocks that is coherent on
 * its own (writes and unmaps invalidate; a read fills only blocks no write touched while it was in
 * flight) but keeps views of the read's buffer instead of copies. The ABI lets a filter above
 * rewrite a read's bytes in its own done() — encryption decrypts in place — so once encryption sits
 * above it, the cached blocks turn into plaintext and later hits are decrypted a second time. Alone
 * on a disk nothing rewrites the buffer, and the cache works.
 */
import type { Decision, FilterModule, Io, Outcome } from '../../harness/sdk/index.js'

const PASS: Decision = Object.freeze({ kind: 'pass' as const })
const COMPLETE: Decision = Object.freeze({ kind: 'complete' as const })
const BLOCK = 4096
const MiB = 1 << 20

const control: FilterModule = {
  abiVersion: 1,
  name: 'ctl-buffer-ref-cache',
  vendor: 'IOFCERTCTL',
  version: '1.0.0',
  class: 'cache',
  policySchema: { type: 'object', properties: { cacheMiB: { type: 'integer', minimum: 1, default: 16 } }, additionalProperties: false },
  open(disk) {
    const maxBlocks = Math.floor((Number(disk.policy.cacheMiB ?? 16) * MiB) / BLOCK)
    const blocks = new Map<number, Uint8Array>()
    /** Per block: how many writes/unmaps are in flight, and a count of those that started. */
    const writing = new Map<number, number>()
    const generation = new Map<number, number>()
    /** Reads in flight: the generation of each of their blocks at start (-1: a write was in flight). */
    const reads = new Map<number, number[]>()
    const blocksOf = (io: Io) => [Math.floor(io.offset / BLOCK), Math.ceil((io.offset + io.length) / BLOCK)] as const
    return {
      start(io: Io): Decision {
        const [lo, hi] = blocksOf(io)
        if (io.op === 'write' || io.op === 'unmap') {
          for (let b = lo; b < hi; b++) {
            blocks.delete(b)
            writing.set(b, (writing.get(b) ?? 0) + 1)
            generation.set(b, (generation.get(b) ?? 0) + 1)
          }
          return PASS
        }
        if (io.op !== 'read') return PASS
        let hit = true
        for (let b = lo; b < hi && hit; b++) hit = blocks.has(b)
        if (hit) {
          for (let b = lo; b < hi; b++) {
            const from = Math.max(io.offset, b * BLOCK)
            const to = Math.min(io.offset + io.length, (b + 1) * BLOCK)
            const v = blocks.get(b)!
            io.data!.set(v.subarray(from - b * BLOCK, to - b * BLOCK), from - io.offset)
            blocks.delete(b)
            blocks.set(b, v)
          }
          return COMPLETE
        }
        const gens: number[] = []
        for (let b = lo; b < hi; b++) gens.push((writing.get(b) ?? 0) > 0 ? -1 : generation.get(b) ?? 0)
        reads.set(io.id, gens)
        return PASS
      },
      done(io: Io, outcome: Outcome): void {
        const [lo, hi] = blocksOf(io)
        if (io.op === 'write' || io.op === 'unmap') {
          for (let b = lo; b < hi; b++) {
            const n = (writing.get(b) ?? 1) - 1
            if (n === 0) writing.delete(b)
            else writing.set(b, n)
          }
          return
        }
        const gens = reads.get(io.id)
        reads.delete(io.id)
        if (io.op !== 'read' || gens === undefined || !outcome.ok) return
        for (let b = lo; b < hi; b++) {
          if (b * BLOCK < io.offset || (b + 1) * BLOCK > io.offset + io.length) continue
          const g = gens[b - lo]!
          if (g < 0 || g !== (generation.get(b) ?? 0) || (writing.get(b) ?? 0) > 0) continue
          if (blocks.size >= maxBlocks) blocks.delete(blocks.keys().next().value!)
          // a view, not a copy: the fault this control exists to show
          blocks.set(b, io.data!.subarray(b * BLOCK - io.offset, (b + 1) * BLOCK - io.offset))
        }
      },
    }
  },
}
export default control
