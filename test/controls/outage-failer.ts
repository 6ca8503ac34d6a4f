/**
 * Negative control for replication.target-outage: a CDP-like replication filter that fails the
 * guest's writes with EIO while its daemon cannot reach the recovery site.
 */
import type { Decision, Io } from '../../harness/sdk/index.js'
import { ShipperInstance, shipperModule } from './shipper-base.js'

class FailingInstance extends ShipperInstance {
  private siteDown = false
  // the daemon's view of the site, refreshed in the background so the write path stays synchronous
  private readonly poll = setInterval(() => {
    this.link.request({ t: 'state', site: this.site, rpo: this.rpo }).then(v => { this.siteDown = v === true }, () => undefined)
  }, 50)

  start(io: Io): Decision {
    // the fault under test: an unreachable site fails the guest's writes
    return io.op === 'write' && this.siteDown ? { kind: 'fail', error: 'EIO' } : { kind: 'pass' }
  }

  override async close(): Promise<void> {
    await super.close()
    clearInterval(this.poll)
  }
}

export default shipperModule('ctl-outage-fail', { instance: FailingInstance })
