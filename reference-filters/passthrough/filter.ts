/**
 * The reference pass-through filter: a cache-class filter with no I/O handlers, so every I/O
 * passes through in the framework's core at no cost. It shows the smallest valid filter.
 */
import type { FilterModule } from '../../harness/sdk/index.js'

const passthrough: FilterModule = {
  abiVersion: 1,
  name: 'passthrough',
  vendor: 'IOFCERT',
  version: '1.0.0',
  class: 'cache',
  open() {
    return {}
  },
}
export default passthrough
