/** In-worker workload: returns and clears the tracer filters' trace. */
import { trace } from './trace-store.js'
export async function run(): Promise<string[]> {
  return trace.splice(0)
}
