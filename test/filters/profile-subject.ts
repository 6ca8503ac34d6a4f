/**
 * A cache filter for the tinybench profile's tests. Like a replication filter, it holds a write's
 * range from `start` to `done`: a write overlapping one not yet done waits (forever, here), and a
 * `done` for an I/O it never started is a bug it reports by throwing. Its `start` of a write
 * settles asynchronously; `start` of an unmap never settles; `done` of a flush throws.
 */
import { PASS, type Decision, type FilterModule, type Io } from '../../harness/sdk/index.js'

const mod: FilterModule = {
  abiVersion: 1,
  name: 'profile-subject',
  vendor: 'TEST',
  version: '1.0.0',
  class: 'cache',
  open() {
    const held = new Map<number, { lo: number; hi: number }>()
    return {
      start(io: Io): Decision | Promise<Decision> {
        if (io.op === 'unmap') return new Promise<Decision>(() => {})
        if (io.op !== 'write') return PASS
        const lo = io.offset, hi = io.offset + io.length
        for (const h of held.values()) if (h.lo < hi && lo < h.hi) return new Promise<Decision>(() => {})
        held.set(io.id, { lo, hi })
        return Promise.resolve(PASS)
      },
      done(io: Io): void {
        if (io.op === 'flush') throw new Error('flush bookkeeping bug')
        if (io.op === 'write' && !held.delete(io.id)) throw new Error(`done for write ${io.id}, which never started`)
      },
    }
  },
}
export default mod
