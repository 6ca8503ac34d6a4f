/**
 * A cache filter that, once opened, keeps allocating and touching 64 MiB buffers outside the
 * heap: the VM worker's heap limit does not see it, only the subject process's resident memory.
 */
import type { FilterModule } from '../../harness/sdk/index.js'

const mod: FilterModule = {
  abiVersion: 1,
  name: 'subject-hog',
  vendor: 'TEST',
  version: '1.0.0',
  class: 'cache',
  open() {
    const kept: Uint8Array[] = []
    const grow = () => {
      if (kept.length < 256) kept.push(new Uint8Array(64 << 20).fill(7))
      setTimeout(grow, 5)
    }
    grow()
    return {}
  },
}
export default mod
