/**
 * What the harness's probe filters saw, kept inside the VM worker. The probes and the in-worker
 * reader (`take.ts`) import this one module, and a worker evaluates a module once, so they share
 * it: this is the only channel from a filter chain back to a check that does not disturb the chain
 * (no daemon, no sidecar, no I/O of its own). State is per disk and cleared when taken.
 */

/** One event at one probe. */
export interface ProbeRecord {
  /** Order of events across every probe of the worker. */
  readonly seq: number
  /** The probe's class (one probe per class on a disk). */
  readonly probe: string
  readonly phase: 'start' | 'done'
  readonly id: number
  readonly op: 'read' | 'write' | 'flush' | 'unmap'
  readonly offset: number
  readonly length: number
  /** 0 for a guest I/O, n > 0 for I/O a filter issued through `lower`; null when unknown. */
  readonly origin: number | null
  /** CRC-32C of the payload: a write's at start, a successful read's at done; else null. */
  readonly crc: number | null
  /** done: whether the outcome was a success. */
  readonly ok: boolean | null
}

/** Past this many records a disk's log stops growing (and says so) rather than exhaust the heap. */
const MAX_RECORDS = 400_000

interface DiskLog {
  records: ProbeRecord[]
  dropped: number
}

const logs = new Map<string, DiskLog>()
let seq = 0

/** Appends one event to a disk's log. */
export function record(disk: string, r: Omit<ProbeRecord, 'seq'>): void {
  let log = logs.get(disk)
  if (log === undefined) {
    log = { records: [], dropped: 0 }
    logs.set(disk, log)
  }
  if (log.records.length >= MAX_RECORDS) {
    log.dropped++
    return
  }
  log.records.push({ seq: ++seq, ...r })
}

/** Takes (and clears) a disk's log. */
export function take(disk: string): { records: ProbeRecord[]; dropped: number } {
  const log = logs.get(disk)
  logs.delete(disk)
  return log ?? { records: [], dropped: 0 }
}
