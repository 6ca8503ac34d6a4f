/**
 * Negative control for replication.write-order: a CDP-like replication filter whose daemon
 * gathers each disk's writes for 20 ms and ships them in batches of up to 128, each in a random
 * order. Overlapping writes keep their relative order, so the replica still ends equal to the
 * disk: only the instants between arrivals are inconsistent.
 */
import { ShipperDaemon, shipperModule, type Entry, type ShipQueue } from './shipper-base.js'

const GATHER_MS = 20

/** A small seeded generator: the control misbehaves the same way in every run. */
function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x / 4294967296
  }
}

/** A random order of `batch` in which a write never overtakes an earlier one it overlaps. */
function shuffled(batch: Entry[], rand: () => number): Entry[] {
  const left = batch.map((e, i) => ({ e, i, key: rand() }))
  const out: Entry[] = []
  while (left.length > 0) {
    let pick = -1
    for (let j = 0; j < left.length; j++) {
      const c = left[j]!
      const blocked = left.some(o => o.i < c.i && o.e.offset < c.e.offset + c.e.data.length && c.e.offset < o.e.offset + o.e.data.length)
      if (!blocked && (pick < 0 || c.key < left[pick]!.key)) pick = j
    }
    out.push(left[pick]!.e)
    left.splice(pick, 1)
  }
  return out
}

class ReorderingDaemon extends ShipperDaemon {
  private readonly rand = xorshift(0x5eed)

  override async nextBatch(q: ShipQueue): Promise<Entry[]> {
    // the fault under test: a batch goes to the site in a random order
    await this.sleep(GATHER_MS)
    return shuffled(q.entries.splice(0, 128), this.rand)
  }
}

export default shipperModule('ctl-reorder', { daemon: ReorderingDaemon })
