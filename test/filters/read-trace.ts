/**
 * In-worker workload: returns and clears the tracer filters' trace. The tracers are filter code,
 * evaluated by the filter loader, so their trace-store.js is not this module's: it is read from
 * the loader's instance of it.
 */
import { loadedFilterNamespace } from '../../harness/framework/filter-loader.js'

export async function run(): Promise<string[]> {
  const store = loadedFilterNamespace(new URL('./trace-store.js', import.meta.url).href) as { trace: string[] } | undefined
  return store === undefined ? [] : store.trace.splice(0)
}
