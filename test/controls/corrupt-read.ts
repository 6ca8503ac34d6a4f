/**
 * Negative control for integrity.roundtrip: flips one bit of the data of one read in 500 in
 * done(), as a filter with a buffer-handling bug would.
 */
import type { FilterModule, Io, Outcome } from '../../harness/sdk/index.js'

const control: FilterModule = {
  abiVersion: 1,
  name: 'ctl-corrupt-read',
  vendor: 'IOFCERTCTL',
  version: '1.0.0',
  class: 'cache',
  open() {
    let reads = 0
    return {
      done(io: Io, outcome: Outcome): void {
        if (io.op !== 'read' || !outcome.ok) return
        // the 137th read, then every 500th
        if (++reads % 500 !== 137) return
        const at = (reads * 7919) % io.length
        io.data![at]! ^= 1 << (reads % 8)
      },
    }
  },
}
export default control
