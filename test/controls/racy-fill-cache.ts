/**
 * Negative control for cache.coherence: a read cache (cache-base.ts) that drops blocks when a
 * write or unmap starts — but fills from every successful read, also from a read that raced an
 * overlapping write. On a drive that reorders, that read may have fetched the bytes from before
 * the write, and the cache then serves them after the write completed.
 */
import { ReadCache, cacheModule } from './cache-base.js'

class RacyFillCache extends ReadCache {
  protected override mayFill(): boolean {
    // a raced read fills too: the fault this control exists to show
    return true
  }
}

export default cacheModule('ctl-racy-fill-cache', RacyFillCache)
