/**
 * Negative control for lifecycle.crash: a write-back cache (writeback-base.ts) that, on a flush,
 * starts writing back and completes the flush at once, without waiting for the write-back and
 * without passing the flush down — so the drive never makes anything durable. Everything it does
 * at close (write back, then the framework writes the drive's cache back) is right, so a clean
 * shutdown loses nothing; a power cut loses writes the guest was told were durable.
 */
import { COMPLETE, type Decision } from 'iofcert/sdk'
import { WriteBack, writeBackModule } from './writeback-base.js'

class EarlyFlush extends WriteBack {
  protected override flush(): Decision {
    // the fault under test: the write-back is started, not awaited, and no flush goes down
    void this.writeBack()
    return COMPLETE
  }
}

export default writeBackModule('ctl-early-flush', EarlyFlush)
