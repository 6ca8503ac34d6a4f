/**
 * Negative control for events.stun: a pass-through cache with a background "metadata flush" — a
 * flush through `lower` every 50 ms — that keeps running while the disk is stunned.
 */
import type { FilterModule } from '../../harness/sdk/index.js'

const mod: FilterModule = {
  abiVersion: 1,
  name: 'ctl-stun-flusher',
  vendor: 'TEST',
  version: '1.0.0',
  class: 'cache',
  open(disk) {
    // the fault under test: the timer ignores stun/unstun
    const timer = setInterval(() => {
      disk.lower.flush().catch(() => undefined)
    }, 50)
    return {
      close() {
        clearInterval(timer)
      },
    }
  },
}
export default mod
