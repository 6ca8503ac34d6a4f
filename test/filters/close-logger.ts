/** A chatty cache filter: logs every I/O, counts I/O by size and logs the counts when its disk closes. */
import type { FilterModule } from '../../harness/sdk/index.js'

const filter: FilterModule = {
  abiVersion: 1,
  name: 'close-logger',
  vendor: 'TEST',
  version: '1.0.0',
  class: 'cache',
  open(disk) {
    const sizes = new Map<number, number>()
    disk.log.info('opened', { disk: disk.disk })
    return {
      done(io) {
        sizes.set(io.length, (sizes.get(io.length) ?? 0) + 1)
        disk.log.debug(`${io.op} ${io.offset}+${io.length}`)
      },
      close(reason) {
        disk.log.info(`closed (${reason}): ${[...sizes].map(([len, n]) => `${n}×${len}`).join(', ')}`)
      },
    }
  },
}
export default filter
