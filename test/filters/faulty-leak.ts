/** A cache filter that keeps every write payload forever: its VM's worker runs out of heap. */
import type { FilterModule } from '../../harness/sdk/index.js'

const hoard: Uint8Array[][] = []
const mod: FilterModule = {
  abiVersion: 1,
  name: 'faulty-leak',
  vendor: 'TEST',
  version: '1.0.0',
  class: 'cache',
  open() {
    const mine: Uint8Array[] = []
    hoard.push(mine)
    return {
      done(io) {
        // copies into ordinary (heap) arrays so the old generation fills up
        if (io.op === 'write') for (let i = 0; i < 64; i++) mine.push(Array.from(io.data!.subarray(0, 1024)) as unknown as Uint8Array)
      },
    }
  },
}
export default mod
