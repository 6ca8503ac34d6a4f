/**
 * The loader context: imports a filter module in a worker that holds no VM, under the filter
 * sandbox and import rules, and reports its shape, so that no vendor code ever runs on the main
 * thread.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { isImportRefusal, loadFilterModule, sandboxWorker } from './filter-loader.js'

const { url } = workerData as { url: string }

/** What the main thread learns of one field of the default export. */
export type FieldView = { readonly kind: 'function' } | { readonly kind: 'value'; readonly value: unknown } | { readonly kind: 'uncloneable'; readonly type: string }

/** The default export as the main thread sees it: its type, and its own fields (functions by kind only). */
export interface ExportView {
  /** `typeof` the default export; 'null' for null, 'undefined' when there is none. */
  readonly type: string
  /** The value itself when it is not an object or a function. */
  readonly value?: unknown
  readonly fields: Readonly<Record<string, FieldView>>
}

function viewOf(exported: unknown): ExportView {
  const type = exported === null ? 'null' : typeof exported
  if (type !== 'object' && type !== 'function') return { type, value: exported, fields: {} }
  const fields: Record<string, FieldView> = {}
  for (const key of Object.keys(exported as object)) {
    let v: unknown
    try {
      v = (exported as Record<string, unknown>)[key]
    } catch (e) {
      fields[key] = { kind: 'uncloneable', type: `a field that throws (${e instanceof Error ? e.message : String(e)})` }
      continue
    }
    if (typeof v === 'function') fields[key] = { kind: 'function' }
    else {
      try {
        fields[key] = { kind: 'value', value: structuredClone(v) }
      } catch {
        fields[key] = { kind: 'uncloneable', type: v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v }
      }
    }
  }
  return { type, fields }
}

async function inspect(): Promise<unknown> {
  const ns = await loadFilterModule(url)
  const mod = ns.default as Record<string, unknown> | undefined
  const exports = viewOf(mod)
  if (mod === undefined || mod === null || typeof mod !== 'object') return { ok: false, error: 'the module has no default export object', exports }
  let policySchema: unknown = undefined
  try {
    policySchema = mod.policySchema === undefined ? undefined : structuredClone(mod.policySchema)
  } catch (e) {
    return { ok: false, error: `policySchema cannot be cloned: ${(e as Error).message}`, exports }
  }
  return {
    ok: true,
    exports,
    shape: {
      abiVersion: mod.abiVersion,
      name: mod.name,
      vendor: mod.vendor,
      version: mod.version,
      class: mod.class,
      policySchema,
      hasOpen: typeof mod.open === 'function',
      hasDaemon: typeof mod.daemon === 'function',
      hasAttach: typeof mod.attach === 'function',
      hasDetach: typeof mod.detach === 'function',
    },
  }
}

// the harness's modules are loaded: harden this thread before the filter's code runs
sandboxWorker()

inspect().then(
  r => parentPort!.postMessage(r),
  (e: unknown) => {
    const err = e as { code?: unknown; message?: unknown; details?: unknown }
    // an import the filter rules refuse is the module's fault: a coded ModuleInvalid, not a crash
    if (isImportRefusal(e)) parentPort!.postMessage({ ok: false, load: 'refused', code: err.code, error: String(err.message), details: err.details })
    else parentPort!.postMessage({ ok: false, load: 'failed', error: `import failed: ${e instanceof Error ? e.message : String(e)}`, cause: e instanceof Error ? e.message : String(e) })
  },
)
