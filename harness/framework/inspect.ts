/** Reads a filter module's shape in the loader context (a short-lived worker). */
import { Worker } from 'node:worker_threads'
import type { FilterClass } from '../sdk/index.js'

/** What the loader saw of a module's default export. */
export interface ModuleShape {
  abiVersion: unknown
  name: unknown
  vendor: unknown
  version: unknown
  class: unknown
  policySchema: unknown
  hasOpen: boolean
  hasDaemon: boolean
  hasAttach: boolean
  hasDetach: boolean
}

/** A module whose shape has been checked: the fields the framework relies on. */
export interface FilterInfo {
  readonly id: string
  readonly name: string
  readonly vendor: string
  readonly version: string
  readonly cls: FilterClass
  readonly entryUrl: string
  readonly policySchema: object | undefined
  readonly hasDaemon: boolean
  readonly builtin: boolean
}

/** Imports `url` in a loader worker and returns its shape; rejects when the import fails or hangs. */
export function inspectModule(url: string, timeoutMs = 30_000): Promise<ModuleShape> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL('./inspect-worker.js', import.meta.url), { workerData: { url }, resourceLimits: { maxOldGenerationSizeMb: 256 } })
    const timer = setTimeout(() => {
      void w.terminate()
      reject(new Error(`loading ${url} did not finish within ${timeoutMs} ms`))
    }, timeoutMs)
    w.once('message', (r: { ok: boolean; error?: string; shape?: ModuleShape }) => {
      clearTimeout(timer)
      void w.terminate()
      if (r.ok) resolve(r.shape!)
      else reject(new Error(r.error))
    })
    w.once('error', e => {
      clearTimeout(timer)
      reject(new Error(`loading ${url} crashed: ${e.message}`))
    })
    w.once('exit', code => {
      clearTimeout(timer)
      reject(new Error(`loading ${url}: the loader exited with code ${code}`))
    })
  })
}
