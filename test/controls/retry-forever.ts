/**
 * Negative control for isolation.disk-fault: a cache that writes through `lower` itself and
 * retries a failed write until it succeeds, holding the guest's write meanwhile — so the drive's
 * EIO reaches the guest as the framework's ETIMEDOUT, a hang.
 */
import type { FilterModule } from '../../harness/sdk/index.js'

const sleep = (ms: number) => new Promise<void>(res => setTimeout(res, ms))

const mod: FilterModule = {
  abiVersion: 1,
  name: 'ctl-retry-forever',
  vendor: 'TEST',
  version: '1.0.0',
  class: 'cache',
  open(disk) {
    return {
      start(io) {
        if (io.op !== 'write') return { kind: 'pass' }
        const data = io.data!
        return (async () => {
          // the fault under test: an error from below is never given up on
          for (;;) {
            try {
              await disk.lower.write(io.offset, data)
              return { kind: 'complete' as const }
            } catch {
              await sleep(20)
            }
          }
        })()
      },
    }
  },
}
export default mod
