/**
 * Negative control for lifecycle.attach-detach: a pass-through cache that gives every instance a
 * 1 MiB staging buffer and registers it in a module-scope list (for a statistics dump) that is
 * never pruned. A module is evaluated once per VM worker and lives as long as the VM does, so each
 * policy apply on a VM that stays powered on keeps another megabyte.
 */
import type { FilterModule } from '../../harness/sdk/index.js'

const STAGING = 1 << 20
/** The fault under test: entries are added at open and never removed at close. */
const buffers: Uint8Array[] = []

const mod: FilterModule = {
  abiVersion: 1,
  name: 'ctl-leak-per-open',
  vendor: 'IOFCERTCTL',
  version: '1.0.0',
  class: 'cache',
  open() {
    const staging = new Uint8Array(STAGING)
    buffers.push(staging)
    return {
      close() {
        staging[0] = buffers.length & 0xff
      },
    }
  },
}
export default mod
