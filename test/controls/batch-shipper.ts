/**
 * Negative control for replication.rpo: a CDP-like replication filter whose daemon ships each
 * disk's writes only every 1.5 × rpoSeconds, so writes wait up to half again the RPO.
 */
import { ShipperDaemon, shipperModule, type ShipQueue } from './shipper-base.js'

class BatchingDaemon extends ShipperDaemon {
  override pushed(q: ShipQueue): void {
    // the fault under test: nothing ships until the next batch is due
    if (q.entries.length === 1 && !q.running) void this.sleep(q.rpo * 1500).then(() => q.pump())
  }
}

export default shipperModule('ctl-batch', { daemon: BatchingDaemon })
