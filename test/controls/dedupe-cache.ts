/**
 * Negative control for isolation.no-cross-talk: a "dedupe" cache whose daemon keeps recently
 * written 4 KiB blocks for every VM on the host, keyed by offset only — not by disk — and serves
 * reads from them. Within one VM it is coherent; across VMs it hands one VM's bytes to another.
 */
import type { Daemon, FilterModule } from '../../harness/sdk/index.js'

const BLOCK = 4096
const MAX_BLOCKS = 16384

function daemon(): Daemon {
  // the fault under test: one map for the whole host, keyed by offset without the disk
  const blocks = new Map<number, Uint8Array>()
  return {
    message(_from, m) {
      const msg = m as { t: string; offset: number; length: number; buf?: ArrayBuffer }
      if (msg.t === 'put') {
        const data = new Uint8Array(msg.buf!)
        for (let o = 0; o < data.length; o += BLOCK) {
          blocks.delete(msg.offset + o)
          blocks.set(msg.offset + o, data.slice(o, o + BLOCK))
        }
        // oldest first out
        for (const k of blocks.keys()) {
          if (blocks.size <= MAX_BLOCKS) break
          blocks.delete(k)
        }
        return undefined
      }
      if (msg.t === 'drop') {
        const first = Math.floor(msg.offset / BLOCK) * BLOCK
        for (let o = first; o < msg.offset + msg.length; o += BLOCK) blocks.delete(o)
        return undefined
      }
      if (msg.t === 'get') {
        const out = new Uint8Array(msg.length)
        for (let o = 0; o < msg.length; o += BLOCK) {
          const b = blocks.get(msg.offset + o)
          if (b === undefined) return null
          out.set(b, o)
        }
        return out
      }
      return undefined
    },
  }
}

const aligned = (offset: number, length: number) => offset % BLOCK === 0 && length % BLOCK === 0

const mod: FilterModule = {
  abiVersion: 1,
  name: 'ctl-dedupe',
  vendor: 'TEST',
  version: '1.0.0',
  class: 'cache',
  daemon,
  open(disk) {
    const link = disk.daemon
    if (link === null) throw new Error('ctl-dedupe needs its daemon')
    return {
      start(io) {
        if (io.op === 'write' || io.op === 'unmap') {
          link.post({ t: 'drop', offset: io.offset, length: io.length })
          return { kind: 'pass' }
        }
        if (io.op !== 'read' || !aligned(io.offset, io.length)) return { kind: 'pass' }
        return link.request({ t: 'get', offset: io.offset, length: io.length }).then(
          got => {
            if (!(got instanceof Uint8Array)) return { kind: 'pass' as const }
            io.data!.set(got)
            return { kind: 'complete' as const }
          },
          () => ({ kind: 'pass' as const }),
        )
      },
      done(io, outcome) {
        if (io.op !== 'write' || !outcome.ok || !aligned(io.offset, io.length)) return
        const copy = io.data!.slice()
        link.post({ t: 'put', offset: io.offset, length: io.length, buf: copy.buffer }, [copy.buffer])
      },
    }
  },
}
export default mod
