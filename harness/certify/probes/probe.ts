/**
 * The harness's probe filters: pass-through filters of any class that record each I/O they see
 * (start and done, with a CRC of the payload) in the worker's probe log. Probes of the classes
 * vendors cannot ship let a check watch the I/O directly above and below the filter under test;
 * probes of the open classes are the "second filter of the same class" the exclusivity checks
 * install.
 */
import { PASS, type Decision, type FilterClass, type FilterModule, type Io, type Outcome } from '../../sdk/index.js'
import { crc32c } from '../../base/crc32c.js'
import { record } from './record.js'

/** The module name of the probe of a class. */
export function probeName(cls: FilterClass): string {
  return `iofcert-probe-${cls.toLowerCase()}`
}

/** The framework's request carries who issued it; the ABI's Io does not promise that field. */
function originOf(io: Io): number | null {
  const o = (io as { readonly origin?: unknown }).origin
  return typeof o === 'number' ? o : null
}

/** A recording pass-through filter of class `cls`. */
export function probe(cls: FilterClass): FilterModule {
  return {
    abiVersion: 1,
    name: probeName(cls),
    vendor: 'IOFCERT',
    version: '1.0.0',
    class: cls,
    open(disk) {
      const id = disk.disk
      return {
        start(io: Io): Decision {
          const crc = io.op === 'write' && io.data !== null ? crc32c(io.data) : null
          record(id, { probe: cls, phase: 'start', id: io.id, op: io.op, offset: io.offset, length: io.length, origin: originOf(io), crc, ok: null })
          return PASS
        },
        done(io: Io, outcome: Outcome): void {
          const crc = io.op === 'read' && outcome.ok && io.data !== null ? crc32c(io.data) : null
          record(id, { probe: cls, phase: 'done', id: io.id, op: io.op, offset: io.offset, length: io.length, origin: originOf(io), crc, ok: outcome.ok })
        },
      }
    },
  }
}
