/**
 * Negative control for lifecycle.upgrade: a pass-through cache that stamps its sidecar with the
 * version that created it and, at open, refuses a sidecar stamped by any other version ("unknown
 * format") instead of reading or migrating it. Every open of a disk it created itself works; the
 * first open after an upgrade fails. The tests build a second version by changing VERSION.
 */
import type { FilterModule } from '../../harness/sdk/index.js'

const VERSION = '1.0.0'
const STAMP = 32

const mod: FilterModule = {
  abiVersion: 1,
  name: 'ctl-version-locked',
  vendor: 'IOFCERTCTL',
  version: VERSION,
  class: 'cache',
  async open(disk) {
    const sc = disk.sidecar
    if ((await sc.size()) === 0) {
      const stamp = new Uint8Array(STAMP)
      stamp.set(new TextEncoder().encode(`ctl ${VERSION}`))
      await sc.write(0, stamp)
      await sc.sync()
    } else {
      const found = new TextDecoder().decode(await sc.read(0, STAMP)).replace(/\0+$/, '')
      // the fault under test: another version's sidecar is refused, not read
      if (found !== `ctl ${VERSION}`) throw new Error(`sidecar format "${found}" is not supported by version ${VERSION}`)
    }
    return {}
  },
}
export default mod
