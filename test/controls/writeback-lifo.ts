/**
 * Negative control for ordering.sequential-overwrite: a write-back cache (writeback-base.ts) that
 * serves reads with its held writes laid over the disk's bytes in issue order (so the guest sees
 * the right data) but writes them back newest first. Where two held writes overlap, the older one
 * lands last and the disk ends up with stale bytes.
 */
import { type Held, WriteBack, writeBackModule } from './writeback-base.js'

class WriteBackLifo extends WriteBack {
  protected override writeBackOrder(batch: readonly Held[]): readonly Held[] {
    // the fault under test: newest first
    return batch.slice().reverse()
  }
}

export default writeBackModule('ctl-writeback-lifo', WriteBackLifo)
