/** Reads a filter module's shape in the loader context (a short-lived worker under the filter sandbox). */
import { Worker } from 'node:worker_threads'
import type { FilterClass } from '../sdk/index.js'
import { ModuleInvalid, reviveError } from './errors.js'
import type { ExportView } from './inspect-worker.js'
import { FILTER_WORKER_EXEC_ARGV } from './sandbox.js'

export type { ExportView, FieldView } from './inspect-worker.js'

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

/** What the loader worker answers. */
interface LoaderReply {
  ok: boolean
  error?: string
  load?: 'refused' | 'failed'
  code?: string
  details?: Record<string, unknown>
  cause?: string
  shape?: ModuleShape
  exports?: ExportView
}

/** The error of a loader reply: ModuleInvalid (coded) when the filter rules refused an import. */
function replyError(r: LoaderReply): Error {
  if (r.load === 'refused') return reviveError({ code: r.code ?? ModuleInvalid.code, message: r.error ?? 'the module imports what a filter may not use', details: r.details ?? {} })
  return new Error(r.error, r.cause === undefined ? undefined : { cause: new Error(r.cause) })
}

/** Runs the loader worker on `url`. */
function runLoader(url: string, timeoutMs: number): Promise<LoaderReply> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL('./inspect-worker.js', import.meta.url), { workerData: { url }, execArgv: [...FILTER_WORKER_EXEC_ARGV], resourceLimits: { maxOldGenerationSizeMb: 256 } })
    const timer = setTimeout(() => {
      void w.terminate()
      reject(new Error(`loading ${url} did not finish within ${timeoutMs} ms`))
    }, timeoutMs)
    w.once('message', (r: LoaderReply) => {
      clearTimeout(timer)
      void w.terminate()
      resolve(r)
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

/** Imports `url` in a loader worker and returns its shape; rejects when the import fails or hangs (ModuleInvalid when it imports what a filter may not). */
export async function inspectModule(url: string, timeoutMs = 30_000): Promise<ModuleShape> {
  const r = await runLoader(url, timeoutMs)
  if (r.ok) return r.shape!
  throw replyError(r)
}

/**
 * Imports `url` in a loader worker and returns what the main thread may know of its default
 * export: a plain object of its fields, each function a stand-in that only says the code runs in
 * a filter worker (undefined when there is no default export, the value when it is not an
 * object). Rejects when the import fails, hangs, or is refused (ModuleInvalid).
 */
export async function importDescription(url: string, timeoutMs = 30_000): Promise<unknown> {
  const r = await runLoader(url, timeoutMs)
  if (r.exports === undefined) throw replyError(r)
  const view = r.exports
  if (view.type === 'undefined') return undefined
  if (view.type !== 'object' && view.type !== 'function') return view.type === 'null' ? null : view.value
  const out: Record<string, unknown> = {}
  for (const [key, f] of Object.entries(view.fields)) {
    if (f.kind === 'function') out[key] = { [key]() { throw new Error(`${key}() of a filter module runs in a filter worker, not in the calling thread`) } }[key]
    else if (f.kind === 'value') out[key] = f.value
    else out[key] = Symbol(`uncloneable ${f.type}`)
  }
  return view.type === 'function' ? Object.assign(function filterModuleStandIn() {}, out) : out
}
