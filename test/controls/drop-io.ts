/**
 * Negative control for ordering.completion: one I/O in 300 is never settled (its start() returns a
 * Promise that never resolves), so the framework times it out with ETIMEDOUT.
 */
import { PASS, type Decision, type FilterModule } from 'iofcert/sdk'

const control: FilterModule = {
  abiVersion: 1,
  name: 'ctl-drop-io',
  vendor: 'IOFCERTCTL',
  version: '1.0.0',
  class: 'cache',
  open() {
    let seen = 0
    return {
      start(): Decision | Promise<Decision> {
        if (++seen % 300 !== 0) return PASS
        return new Promise<Decision>(() => {})
      },
    }
  },
}
export default control
