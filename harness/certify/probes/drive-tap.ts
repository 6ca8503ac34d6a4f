/**
 * In-worker tap on a disk's drive: counts the guest's reads that reach the drive as themselves,
 * apart from reads a filter issues through `lower`. A read the guest issued that never reached the
 * drive was completed by a filter. `start` wraps the drive's submit; `stop` unwraps it and returns
 * the counts (the tap lives in this module, evaluated once per VM worker, between the two calls).
 */
import type { DriveCallback, DriveRequest, WorkerDiskHandle } from '../../framework/index.js'

export interface TapCounts {
  /** Guest reads that reached the drive. */
  readonly guestReads: number
  /** Reads filters issued through `lower`. */
  readonly filterReads: number
}

const taps = new Map<string, { guestReads: number; filterReads: number }>()

export async function run(handle: WorkerDiskHandle, o: { action: 'start' | 'stop' }): Promise<TapCounts | null> {
  const drive = handle.drive
  if (o.action === 'stop') {
    Reflect.deleteProperty(drive, 'submit')
    const t = taps.get(handle.disk) ?? { guestReads: 0, filterReads: 0 }
    taps.delete(handle.disk)
    return t
  }
  const counts = { guestReads: 0, filterReads: 0 }
  taps.set(handle.disk, counts)
  const submit = drive.submit
  drive.submit = (req: DriveRequest, cb: DriveCallback): void => {
    if (req.op === 'read') {
      if (req.origin === 0) counts.guestReads++
      else counts.filterReads++
    }
    submit.call(drive, req, cb)
  }
  return null
}
