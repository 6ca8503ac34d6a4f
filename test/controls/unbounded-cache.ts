/**
 * Negative control for cache.bounded: a coherent read cache (cache-base.ts) that takes `cacheMiB`
 * in its policy and ignores it: it keeps every block it ever read.
 */
import { ReadCache, cacheModule } from './cache-base.js'

class UnboundedCache extends ReadCache {
  protected override makeRoom(): void {
    // no eviction: the fault this control exists to show
  }
}

export default cacheModule('ctl-unbounded-cache', UnboundedCache)
