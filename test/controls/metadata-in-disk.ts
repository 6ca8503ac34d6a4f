/**
 * Negative control for integrity.class-contract: a replication filter that keeps its metadata (a
 * 4 KiB record with a generation count) in the disk's last MiB, written through `lower.write` at
 * open and at every flush, instead of in its sidecar. The guest's I/O passes untouched, but the
 * disk no longer holds only what the guest wrote.
 */
import { PASS, type Decision, type DiskContext, type FilterModule, type Io } from 'iofcert/sdk'

const MAGIC = [0x4d, 0x45, 0x54, 0x41] // 'META'

function record(generation: number): Uint8Array {
  const r = new Uint8Array(4096)
  r.set(MAGIC)
  new DataView(r.buffer).setUint32(4, generation, true)
  r.fill(0xee, 8)
  return r
}

const control: FilterModule = {
  abiVersion: 1,
  name: 'ctl-metadata-in-disk',
  vendor: 'IOFCERTCTL',
  version: '1.0.0',
  class: 'replication',
  async open(disk: DiskContext) {
    const at = disk.capacity - (1 << 20)
    let generation = 1
    await disk.lower.write(at, record(generation))
    return {
      start(io: Io): Decision | Promise<Decision> {
        if (io.op !== 'flush') return PASS
        return disk.lower.write(at, record(++generation)).then(() => PASS)
      },
    }
  },
}
export default control
