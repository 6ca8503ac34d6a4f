/** Deliberately faulty cache filters, each selected by its `mode` module. */
import type { Decision, FilterModule, Io } from '../../harness/sdk/index.js'

const PASS: Decision = Object.freeze({ kind: 'pass' })

export function faulty(mode: 'throw' | 'reject' | 'hang' | 'loop' | 'exit' | 'replace' | 'bad-decision' | 'done-throw'): FilterModule {
  // only writes at or beyond 1 MiB trip the fault, so the disk keeps serving other I/O
  const trips = (io: Io) => io.op === 'write' && io.offset >= 1 << 20
  return {
    abiVersion: 1,
    name: `faulty-${mode}`,
    vendor: 'TEST',
    version: '1.0.0',
    class: 'cache',
    open() {
      return {
        start(io): Decision | Promise<Decision> {
          if (!trips(io)) return PASS
          switch (mode) {
            case 'throw': throw new Error('filter bug')
            case 'reject': return Promise.reject(new Error('async filter bug'))
            case 'hang': return new Promise<Decision>(() => {})
            case 'loop': for (;;) { /* never returns */ }
            case 'exit':
              // kills its worker the way a filter still can (it has no process.exit): an exception
              // nothing catches, thrown from a microtask; the I/O never completes on its own
              queueMicrotask(() => { throw new Error('filter kills its worker') })
              return new Promise<Decision>(() => {})
            case 'replace': return { kind: 'pass', data: new Uint8Array(io.length) }
            case 'bad-decision': return { kind: 'maybe' } as unknown as Decision
            default: return PASS
          }
        },
        done(io) {
          if (mode === 'done-throw' && trips(io)) throw new Error('done bug')
        },
      }
    },
  }
}
