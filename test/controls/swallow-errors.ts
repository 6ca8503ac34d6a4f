/**
 * Negative control for isolation.disk-fault: a cache that carries out reads and writes through
 * `lower` itself and completes them as successful whatever the drive said — errors from below
 * become success (a failed read returns zeros).
 */
import type { FilterModule } from '../../harness/sdk/index.js'

const mod: FilterModule = {
  abiVersion: 1,
  name: 'ctl-swallow',
  vendor: 'TEST',
  version: '1.0.0',
  class: 'cache',
  open(disk) {
    const complete = { kind: 'complete' as const }
    return {
      start(io) {
        // the fault under test: both outcomes of the lower I/O complete the guest's I/O as done
        if (io.op === 'write') return disk.lower.write(io.offset, io.data!).then(() => complete, () => complete)
        if (io.op === 'read') {
          return disk.lower.read(io.offset, io.length).then(
            bytes => {
              io.data!.set(bytes)
              return complete
            },
            () => complete,
          )
        }
        return { kind: 'pass' }
      },
    }
  },
}
export default mod
