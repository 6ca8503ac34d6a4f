/**
 * Negative control for lifecycle.reboot: a write-back cache (writeback-base.ts) that writes back
 * what it holds at every close except close('host-shutdown'), which it takes for "the host will be
 * back" and skips: the writes it held live only in memory and are gone after the reboot.
 */
import type { CloseReason } from 'iofcert/sdk'
import { WriteBack, writeBackModule } from './writeback-base.js'

class ShutdownAmnesia extends WriteBack {
  override close(reason: CloseReason): Promise<void> | void {
    // the fault under test: a host shutdown is taken for a pause, and what is held is dropped
    if (reason === 'host-shutdown') return
    return super.close(reason)
  }
}

export default writeBackModule('ctl-shutdown-amnesia', ShutdownAmnesia)
