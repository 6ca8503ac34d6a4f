/**
 * Negative control for replication.consistency: a CDP-like replication filter whose instances
 * never send one write in 200 to the daemon, so the replica silently misses it.
 */
import type { Io } from '../../harness/sdk/index.js'
import { ShipperInstance, shipperModule } from './shipper-base.js'

class DroppingInstance extends ShipperInstance {
  private sent = 0

  override ship(io: Io): void {
    // the fault under test: every 200th write is lost on its way to the daemon
    if (++this.sent % 200 === 0) return
    super.ship(io)
  }
}

export default shipperModule('ctl-drop', { instance: DroppingInstance })
