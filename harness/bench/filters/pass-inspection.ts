/** A pass-through filter of class inspection with a synchronous start (the hot path of a real filter that passes). */
import { PASS, type FilterModule } from 'iofcert/sdk'

const mod: FilterModule = {
  abiVersion: 1,
  name: 'pass-inspection',
  vendor: 'IOFCERT',
  version: '1.0.0',
  class: 'inspection',
  open: () => ({ start: () => PASS }),
}
export default mod
