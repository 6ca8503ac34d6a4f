/**
 * Negative control for integrity.guest-buffer: after a write completed below it, the filter uses
 * the guest's payload as scratch space (it clears the first bytes). The disk got the right bytes;
 * the guest's buffer, which a filter may only read, did not survive.
 */
import type { FilterModule, Io, Outcome } from '../../harness/sdk/index.js'

const control: FilterModule = {
  abiVersion: 1,
  name: 'ctl-scribble-payload',
  vendor: 'IOFCERTCTL',
  version: '1.0.0',
  class: 'cache',
  open() {
    return {
      done(io: Io, outcome: Outcome): void {
        if (io.op === 'write' && outcome.ok) io.data!.fill(0, 0, Math.min(16, io.length))
      },
    }
  },
}
export default control
