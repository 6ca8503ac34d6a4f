/** A filter of a given class that records start/done/close in the worker's trace. */
import type { Decision, FilterClass, FilterModule } from '../../harness/sdk/index.js'
import { trace } from './trace-store.js'

const PASS: Decision = Object.freeze({ kind: 'pass' })
const COMPLETE: Decision = Object.freeze({ kind: 'complete' })

export function tracer(cls: FilterClass, name = `t-${cls.toLowerCase()}`): FilterModule {
  return {
    abiVersion: 1,
    name,
    vendor: 'TEST',
    version: '1.0.0',
    class: cls,
    policySchema: { type: 'object', properties: { completeReadsAt: { type: 'integer', default: -1 } } },
    open(disk) {
      const completeAt = Number(disk.policy.completeReadsAt)
      trace.push(`open ${cls}`)
      return {
        start(io) {
          trace.push(`start ${cls} ${io.op}`)
          if (io.op === 'read' && io.offset === completeAt) {
            io.data!.fill(0xcc)
            return COMPLETE
          }
          return PASS
        },
        done(io, outcome) {
          trace.push(`done ${cls} ${io.op} ${outcome.ok ? 'ok' : outcome.error}`)
        },
        close(reason) {
          trace.push(`close ${cls} ${reason}`)
        },
      }
    },
  }
}
