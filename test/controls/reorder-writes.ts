/**
 * Negative control for ordering.chain-position: holds each write for a random 0–3 ms before
 * passing it on, so later I/O overtakes it. The data stays right (the guest never has overlapping
 * writes in flight together), but every filter below sees I/O out of the order the guest issued it.
 */
import type { Decision, FilterModule, Io } from '../../harness/sdk/index.js'

const PASS: Decision = Object.freeze({ kind: 'pass' as const })

const control: FilterModule = {
  abiVersion: 1,
  name: 'ctl-reorder-writes',
  vendor: 'IOFCERTCTL',
  version: '1.0.0',
  class: 'cache',
  open() {
    // a fixed seed: the same delays in every run
    let x = 0x2545f491
    const next = () => {
      x ^= x << 13; x >>>= 0
      x ^= x >>> 17
      x ^= x << 5; x >>>= 0
      return x
    }
    return {
      start(io: Io): Decision | Promise<Decision> {
        if (io.op !== 'write') return PASS
        const ms = next() % 4
        return new Promise(resolve => setTimeout(resolve, ms, PASS))
      },
    }
  },
}
export default control
