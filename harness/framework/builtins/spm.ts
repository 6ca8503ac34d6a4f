/**
 * VMW_spm: storage I/O control as a token bucket per disk. `limitIops` caps the disk's IOPS
 * (0 = unlimited; then the instance has no handlers and costs nothing); `reservationIops` and
 * `shares` are recorded for the datastore scheduler and do not throttle a lone disk.
 */
import { PASS, type Decision, type DiskContext, type FilterInstance, type FilterModule, type Io } from '../../sdk/index.js'

function open(disk: DiskContext): FilterInstance {
  const limit = Number(disk.policy.limitIops ?? 0)
  if (!(limit > 0)) return {}
  const burst = Math.max(1, Math.ceil(limit / 10))
  let tokens = burst
  let last = performance.now()
  const waiting: (() => void)[] = []
  let timer: ReturnType<typeof setTimeout> | null = null
  const refill = () => {
    const now = performance.now()
    tokens = Math.min(burst, tokens + ((now - last) * limit) / 1000)
    last = now
  }
  const pump = () => {
    timer = null
    refill()
    while (waiting.length > 0 && tokens >= 1) {
      tokens -= 1
      waiting.shift()!()
    }
    if (waiting.length > 0) timer = setTimeout(pump, Math.max(1, Math.ceil(((1 - tokens) * 1000) / limit)))
  }
  return {
    start(io: Io): Decision | Promise<Decision> {
      if (io.op === 'flush') return PASS
      refill()
      if (waiting.length === 0 && tokens >= 1) {
        tokens -= 1
        return PASS
      }
      return new Promise<Decision>(resolve => {
        waiting.push(() => resolve(PASS))
        if (timer === null) timer = setTimeout(pump, Math.max(1, Math.ceil(((1 - tokens) * 1000) / limit)))
      })
    },
    close() {
      if (timer !== null) clearTimeout(timer)
      for (const w of waiting.splice(0)) w()
    },
  }
}

const spm: FilterModule = {
  abiVersion: 1,
  name: 'spm',
  vendor: 'VMW',
  version: '1.0.0',
  class: 'datastoreIoControl',
  policySchema: {
    type: 'object',
    properties: {
      limitIops: { type: 'integer', minimum: 0, default: 0 },
      reservationIops: { type: 'integer', minimum: 0, default: 0 },
      shares: { type: 'integer', minimum: 1, maximum: 10000, default: 1000 },
    },
    additionalProperties: false,
  },
  open,
}
export default spm
