/**
 * Negative control for performance.iops: a pass-through filter that costs as much per I/O as the
 * bare path. Once each guest I/O has completed, it reads the I/O's range again below itself
 * (through `lower`), so at saturation the VM's I/O thread does the path's work twice and the
 * filter reaches about half the IOPS of a light filter. The extra read starts only after the guest
 * saw its completion, so at the paced load, where the thread is mostly idle, the latency hardly
 * moves: only the IOPS fall. Its data is right.
 */
import type { FilterModule, Io, Outcome } from '../../harness/sdk/index.js'

const control: FilterModule = {
  abiVersion: 1,
  name: 'ctl-double-cost',
  vendor: 'IOFCERTCTL',
  version: '1.0.0',
  class: 'cache',
  open(disk) {
    const ignore = () => undefined
    return {
      done(io: Io, outcome: Outcome): void {
        if (!outcome.ok || (io.op !== 'read' && io.op !== 'write') || io.length === 0) return
        const { offset, length } = io
        queueMicrotask(() => void disk.lower.read(offset, length).then(ignore, ignore))
      },
    }
  },
}
export default control
