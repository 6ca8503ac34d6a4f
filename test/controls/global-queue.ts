/**
 * Negative control for isolation.target-fault: a CDP-like replication filter whose daemon ships
 * the writes of every disk through one global queue, so a disk whose site is down holds up all.
 */
import { ShipperDaemon, shipperModule, ShipQueue, type ShipperMessage } from './shipper-base.js'

class OneQueueDaemon extends ShipperDaemon {
  private global: ShipQueue | null = null

  override queue(_disk: string, m: ShipperMessage): ShipQueue {
    // the fault under test: one queue for every disk on the host
    return (this.global ??= new ShipQueue(this, m.site, m.rpo))
  }
}

export default shipperModule('ctl-global-queue', { daemon: OneQueueDaemon })
