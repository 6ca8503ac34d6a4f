/**
 * Negative control for exclusivity.coexistence: a read cache (cache-base.ts), coherent on its own,
 * that keeps views of the read's buffer instead of copies. The ABI lets a filter above rewrite a
 * read's bytes in its own done() — encryption decrypts in place — so once encryption sits above
 * it, the cached blocks turn into plaintext and later hits are decrypted a second time. Alone on a
 * disk nothing rewrites the buffer, and the cache works.
 */
import { ReadCache, cacheModule } from './cache-base.js'

class BufferRefCache extends ReadCache {
  protected override keep(view: Uint8Array): Uint8Array {
    // a view, not a copy: the fault this control exists to show
    return view
  }
}

export default cacheModule('ctl-buffer-ref-cache', BufferRefCache)
