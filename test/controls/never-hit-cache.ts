/**
 * Negative control for cache.benefit: a read-through cache (cache-base.ts) that completes every
 * read itself (reading the disk through `lower` and keeping a copy of each whole 4 KiB block,
 * within cacheMiB) but stores blocks under numbers and looks them up with strings, so it never
 * hits. It is coherent and bounded; it is simply never faster than the disk.
 */
import { ReadCache, cacheModule } from './cache-base.js'

class NeverHitCache extends ReadCache {
  protected override lookup(b: number): Uint8Array | undefined {
    // the wrong key: the fault this control exists to show
    return (this.blocks as Map<unknown, Uint8Array>).get(String(b))
  }
}

export default cacheModule('ctl-never-hit-cache', NeverHitCache, { readThrough: true })
