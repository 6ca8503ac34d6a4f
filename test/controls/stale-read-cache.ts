/**
 * Negative control for ordering.read-after-write: a read cache (cache-base.ts) of 4 KiB blocks
 * that never invalidates — a write or unmap leaves the old bytes cached, so a read after the write
 * completed returns what was there before.
 */
import { ReadCache, cacheModule } from './cache-base.js'

class StaleReadCache extends ReadCache {
  protected override invalidate(): void {
    // nothing is dropped: the fault this control exists to show
  }
}

export default cacheModule('ctl-stale-read-cache', StaleReadCache, { policy: false })
