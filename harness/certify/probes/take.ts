/** In-worker reader: returns and clears what the probes recorded for the disk. */
import type { WorkerDiskHandle } from '../../framework/index.js'
import { take, type ProbeRecord } from './record.js'

export async function run(handle: WorkerDiskHandle): Promise<{ records: ProbeRecord[]; dropped: number }> {
  return take(handle.disk)
}
