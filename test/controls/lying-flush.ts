/**
 * Negative control for ordering.flush-durability: a write-back cache (writeback-base.ts) that
 * writes its held data back in issue order — on a snapshot, at close, when it holds too many, and
 * before an unmap — but completes a flush without writing anything back: it lies about flush, and
 * a power cut loses writes the guest was told are durable.
 */
import { COMPLETE, type CloseReason, type Decision } from 'iofcert/sdk'
import { WriteBack, writeBackModule } from './writeback-base.js'

class LyingFlush extends WriteBack {
  /** Flushes it completed itself, for its close-time log line. */
  private flushes = 0

  protected override flush(): Decision {
    // the fault under test: the flush is completed here, and nothing is written back
    this.flushes++
    return COMPLETE
  }

  override close(reason: CloseReason): Promise<void> | void {
    this.disk.log.info(`closing: ${this.flushes} flushes completed from the cache, ${this.held.length} writes held`)
    return super.close(reason)
  }
}

export default writeBackModule('ctl-lying-flush', LyingFlush)
