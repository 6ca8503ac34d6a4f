/**
 * Loading a verified package's filter module: a pipeline of small named checks, each throwing
 * its coded error (the version check names both versions, as nbdkit's `_api_version` does).
 */
import { readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormatsModule from 'ajv-formats'
import { runSteps } from '../../base/steps.js'
import { FILTER_ABI_VERSION, type FilterModule } from '../../sdk/index.js'
import { AbiVersionMismatch, ClassNotOpen, IofError, ModuleInvalid, ModuleLoadFailed, ModuleMismatch, PolicySchemaInvalid } from '../errors.js'
import { importDescription } from '../inspect.js'
import { formatAjvError, isClassOpen, OPEN_CLASSES, type Descriptor } from './descriptor.js'
import { pathProblem, refusalError } from './paths.js'
import { disposePackage, openPackage, verifyPackage, type OpenedPackage, type StepResult, type TrustOptions, type VerifiedPackage } from './verify.js'

/** ABI versions this framework loads. */
export const SUPPORTED_ABI_VERSIONS: readonly number[] = Object.freeze([FILTER_ABI_VERSION])

/** The load steps, in the order they run; `preflight` (refused entries, entry path, the descriptor's abiVersion, a CommonJS trap) runs before any import. */
export const LOAD_STEPS = ['preflight', 'import', 'default-export', 'abi-version', 'identity', 'hooks', 'policy-schema'] as const
/** The name of a load step. */
export type LoadStepName = (typeof LOAD_STEPS)[number]

/** Options of loadFilterModule. */
export interface LoadOptions {
  /**
   * Report each step instead of throwing at the first failure. Steps that need the module
   * (everything after `default-export`) are not run, and not listed, when it did not load.
   */
  readonly collect?: boolean
}

/** A loaded filter module; `module` is absent only in collect mode when it did not load. */
export interface LoadedFilter {
  readonly ok: boolean
  readonly module?: FilterModule
  /** The policy `{}` with the policySchema's defaults filled ({} when there is no schema). */
  readonly defaultPolicy?: Readonly<Record<string, unknown>>
  readonly steps: readonly StepResult<LoadStepName>[]
}

/** Fields of the module that must equal the descriptor's. */
const IDENTITY_FIELDS = ['name', 'vendor', 'version', 'class', 'abiVersion'] as const

// ajv-formats is CommonJS; under NodeNext its default import is the module object.
const addFormats = addFormatsModule.default

/**
 * Imports the package's entry as an ES module and checks it. Call it only with a package that
 * verifyPackage accepted: this is where the package's code first runs. It runs in the loader
 * context (a worker under the filter sandbox and import rules, as in the framework), never in
 * this thread: `module` is what that worker saw of the default export (fields cloned, functions
 * stand-ins).
 */
export async function loadFilterModule(opened: OpenedPackage, descriptor: Descriptor, options: LoadOptions = {}): Promise<LoadedFilter> {
  const entry = descriptor.entry
  let exported: unknown
  let module: FilterModule | undefined
  let defaultPolicy: Record<string, unknown> | undefined

  const steps: Record<LoadStepName, () => void | Promise<void>> = {
    preflight: async () => {
      // Refusals that must hold before any code runs, whoever called us.
      const refused = opened.refused[0]
      if (refused !== undefined) throw refusalError(refused)
      const problem = pathProblem(entry)
      if (problem !== undefined) throw refusalError({ path: entry, kind: 'escape', reason: problem })
      if (!SUPPORTED_ABI_VERSIONS.includes(descriptor.abiVersion)) {
        throw AbiVersionMismatch({ source: 'the descriptor', found: descriptor.abiVersion, supported: [...SUPPORTED_ABI_VERSIONS] })
      }
      await refuseCommonJsEntry(opened.root, entry)
    },
    import: async () => {
      try {
        // evaluated in the loader context (a worker under the filter sandbox), never in this thread:
        // `exported` is its default export's description (values cloned, functions stand-ins)
        exported = await importDescription(pathToFileURL(join(opened.root, entry)).href)
      } catch (err) {
        if (err instanceof IofError && err.code === 'ModuleInvalid') throw ModuleInvalid({ entry, reason: String(err.details.reason ?? err.message) }, err)
        throw ModuleLoadFailed({ entry, reason: oneLine(err) }, err)
      }
    },
    'default-export': () => {
      if (exported === undefined) throw ModuleInvalid({ entry, reason: 'it has no default export' })
      if (typeof exported !== 'object' || exported === null) throw ModuleInvalid({ entry, reason: `its default export is a ${exported === null ? 'null' : typeof exported}, not a filter module object` })
      module = exported as FilterModule
    },
    'abi-version': () => {
      const found = (module as unknown as Record<string, unknown>).abiVersion
      if (!SUPPORTED_ABI_VERSIONS.includes(found as number)) {
        throw AbiVersionMismatch({ source: `module ${entry}`, found, supported: [...SUPPORTED_ABI_VERSIONS] })
      }
    },
    identity: () => {
      const m = module as unknown as Record<string, unknown>
      for (const field of IDENTITY_FIELDS) {
        if (m[field] !== descriptor[field]) throw ModuleMismatch({ field, descriptor: descriptor[field], module: m[field] })
      }
    },
    hooks: () => {
      const m = module as unknown as Record<string, unknown>
      if (typeof m.open !== 'function') throw ModuleInvalid({ entry, reason: `open must be a function, found ${describe(m.open)}` })
      for (const hook of ['daemon', 'attach', 'detach'] as const) {
        if (m[hook] !== undefined && typeof m[hook] !== 'function') throw ModuleInvalid({ entry, reason: `${hook}, when present, must be a function, found ${describe(m[hook])}` })
      }
    },
    'policy-schema': () => {
      defaultPolicy = defaultPolicyOf((module as FilterModule).policySchema)
    },
  }

  const results: StepResult<LoadStepName>[] = await runSteps(LOAD_STEPS, steps, {
    collect: options.collect === true,
    collectable: (err): err is IofError => err instanceof IofError,
    stop: done => module === undefined && done.some(r => !r.ok),
  })
  return {
    ok: results.length === LOAD_STEPS.length && results.every(r => r.ok),
    ...(module === undefined ? {} : { module }),
    ...(defaultPolicy === undefined ? {} : { defaultPolicy }),
    steps: results,
  }
}

/**
 * Compiles a policySchema (JSON Schema draft 2020-12) and returns `{}` with its defaults
 * filled; throws PolicySchemaInvalid when the schema does not compile or `{}` does not
 * validate. No schema means the filter takes no parameters: the default policy is `{}`.
 */
export function defaultPolicyOf(policySchema: unknown): Record<string, unknown> {
  if (policySchema === undefined) return {}
  if (typeof policySchema !== 'object' || policySchema === null || Array.isArray(policySchema)) {
    throw PolicySchemaInvalid({ errors: [`policySchema must be a JSON Schema object, found ${describe(policySchema)}`] })
  }
  // A fresh instance per module: vendors' `$id`s must not collide across packages.
  // strict: false because unknown keywords are annotations in JSON Schema, not errors.
  const ajv = new Ajv2020({ allErrors: true, strict: false, useDefaults: true })
  addFormats(ajv)
  let validate
  try {
    validate = ajv.compile(policySchema)
  } catch (err) {
    throw PolicySchemaInvalid({ errors: [oneLine(err)] }, err)
  }
  const policy: Record<string, unknown> = {}
  if (!validate(policy)) {
    throw PolicySchemaInvalid({ errors: (validate.errors ?? []).map(e => `the default policy {} does not validate: ${formatAjvError(e)}`) })
  }
  return policy
}

/** The class rule: throws ClassNotOpen, naming the class and the open ones, unless `cls` is open to third parties. */
export function classOpen(cls: string): void {
  if (!isClassOpen(cls)) throw ClassNotOpen({ cls, open: [...OPEN_CLASSES] })
}

/** What loadPackage did: each stage's result. */
export interface LoadedPackage {
  readonly opened: OpenedPackage
  readonly verified: VerifiedPackage
  readonly loaded: LoadedFilter
}

/**
 * Opens, verifies and loads a package in that order, throwing the first coded error; the
 * package's code runs only after every verification step passed. On failure the extracted
 * files are removed.
 */
export async function loadPackage(source: string, options: { readonly workDir: string; readonly trust?: TrustOptions }): Promise<LoadedPackage> {
  const opened = await openPackage(source, { workDir: options.workDir })
  try {
    const verified = await verifyPackage(opened, options.trust === undefined ? {} : { trust: options.trust })
    const loaded = await loadFilterModule(opened, verified.descriptor)
    return { opened, verified, loaded }
  } catch (err) {
    await disposePackage(opened)
    throw err
  }
}

/**
 * A `.js` entry under a package.json the package ships (without "type": "module") would load
 * as CommonJS; refuse it with a clear reason rather than a syntax error from deep inside Node.
 */
async function refuseCommonJsEntry(root: string, entry: string): Promise<void> {
  if (!entry.endsWith('.js')) return
  for (let dir = dirname(join(root, entry)); dir.startsWith(root); dir = dirname(dir)) {
    let text: string
    try {
      text = await readFile(join(dir, 'package.json'), 'utf8')
    } catch {
      if (dir === root) return
      continue
    }
    let type: unknown
    try {
      type = (JSON.parse(text) as Record<string, unknown>).type
    } catch {
      type = undefined
    }
    if (type !== 'module') {
      const at = dir === root ? 'package.json' : `${dir.slice(root.length + 1)}/package.json`
      throw ModuleInvalid({ entry, reason: `${at} in the package makes it load as CommonJS; set "type": "module" there or name the entry .mjs` })
    }
    return
  }
}

function describe(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`
}

function oneLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err)
  return message.split('\n')[0] ?? message
}
