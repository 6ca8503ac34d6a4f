/**
 * Negative control for performance.latency: a pass-through filter that holds one I/O in 50 back
 * for 2 ms before passing it, so 2 % of the I/Os complete at least 2 ms late — a p99 of 2 ms or
 * more — while its throughput at saturation hardly changes.
 */
import { PASS, type Decision, type FilterModule, type Io } from 'iofcert/sdk'

const LATE_EVERY = 50
const LATE_MS = 2

const control: FilterModule = {
  abiVersion: 1,
  name: 'ctl-late-completions',
  vendor: 'IOFCERTCTL',
  version: '1.0.0',
  class: 'cache',
  open() {
    let n = 0
    return {
      start(_io: Io): Decision | Promise<Decision> {
        if (++n % LATE_EVERY !== 0) return PASS
        return new Promise(res => setTimeout(() => res(PASS), LATE_MS))
      },
    }
  },
}
export default control
