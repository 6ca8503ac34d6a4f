/**
 * Negative control for events.migration: a pass-through cache that keeps per-disk statistics in
 * its sidecar (created at, bytes written), saved on close — except that on close('migrate') it
 * empties the sidecar, as if a disk leaving the host were a new disk; the new host starts afresh.
 */
import type { FilterModule, Sidecar } from '../../harness/sdk/index.js'

const MAGIC = 0x43544c53

async function save(sc: Sidecar, createdAt: number, written: number): Promise<void> {
  const b = new Uint8Array(24)
  const v = new DataView(b.buffer)
  v.setUint32(0, MAGIC)
  v.setFloat64(8, createdAt)
  v.setFloat64(16, written)
  await sc.write(0, b)
  await sc.sync()
}

const mod: FilterModule = {
  abiVersion: 1,
  name: 'ctl-sidecar-reset',
  vendor: 'TEST',
  version: '1.0.0',
  class: 'cache',
  async attach(disk) {
    await save(disk.sidecar, Date.now(), 0)
  },
  async open(disk) {
    let createdAt = Date.now()
    let written = 0
    if ((await disk.sidecar.size()) >= 24) {
      const v = new DataView((await disk.sidecar.read(0, 24)).buffer)
      if (v.getUint32(0) === MAGIC) {
        createdAt = v.getFloat64(8)
        written = v.getFloat64(16)
      }
    } else await save(disk.sidecar, createdAt, written)
    return {
      done(io, outcome) {
        if (io.op === 'write' && outcome.ok) written += io.length
      },
      async close(reason) {
        // the fault under test: moving to another host is taken for the end of the disk
        if (reason === 'migrate') await disk.sidecar.truncate(0)
        else await save(disk.sidecar, createdAt, written)
      },
    }
  },
}
export default mod
