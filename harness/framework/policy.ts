/**
 * Storage policies: rules naming filters in the VASA capability form `name@CLASS`, validated
 * against each filter's policySchema (defaults filled), and the chain order they produce.
 */
import { createRequire } from 'node:module'
import type { FilterClass } from '../sdk/index.js'
import { FilterNotInstalled, PolicyClassConflict, PolicyInvalid, PolicyParamsInvalid } from './errors.js'
import type { FilterInfo } from './inspect.js'

const require = createRequire(import.meta.url)
type ValidateFn = ((data: unknown) => boolean) & { errors?: { instancePath: string; message?: string }[] | null }
interface AjvLike {
  compile(schema: object): ValidateFn
  validateSchema(schema: object): boolean
  errorsText(errors?: unknown): string
  errors?: unknown
}
const Ajv2020 = require('ajv/dist/2020.js') as { default: new (o: object) => AjvLike }

/** One rule of a storage policy. */
export interface PolicyRule {
  /** `name@CLASS`, e.g. `cdp@REPLICATION`, `spm@DATASTOREIOCONTROL`. */
  readonly filter: string
  readonly params?: Readonly<Record<string, unknown>>
}

/** A storage policy: its rules and where encryption sits. */
export interface StoragePolicy {
  readonly name: string
  readonly rules: readonly PolicyRule[]
  /** false (default): encryption first, other filters see ciphertext. */
  readonly allowCleartextFilters?: boolean
}

/** The capability-id spelling of each class. */
export const CLASS_CAPABILITY: Readonly<Record<FilterClass, string>> = {
  replication: 'REPLICATION',
  cache: 'CACHE',
  encryption: 'ENCRYPTION',
  datastoreIoControl: 'DATASTOREIOCONTROL',
  inspection: 'INSPECTION',
  compression: 'COMPRESSION',
  dataProvider: 'DATAPROVIDER',
  dataCapture: 'DATACAPTURE',
}
const CAPABILITY_CLASS = new Map(Object.entries(CLASS_CAPABILITY).map(([k, v]) => [v, k as FilterClass]))

/** Classes that may replace a write's payload. */
export const TRANSFORMING: ReadonlySet<FilterClass> = new Set(['encryption', 'compression'])

/** Position in the chain from the guest down (the ABI's chain order). */
export function chainRank(cls: FilterClass, allowCleartextFilters: boolean): number {
  switch (cls) {
    case 'encryption': return allowCleartextFilters ? 8 : 0
    case 'inspection': return 1
    case 'replication': return 2
    case 'compression': return 3
    case 'cache': return 4
    case 'dataCapture': return 5
    case 'dataProvider': return 6
    case 'datastoreIoControl': return 9
  }
}

/** A policy rule resolved against a host's filters. */
export interface ResolvedRule {
  readonly info: FilterInfo
  readonly params: Record<string, unknown>
}

/** Compiles policy schemas once per filter id. */
export class PolicyValidator {
  private readonly ajv: AjvLike = new Ajv2020.default({ useDefaults: true, allErrors: true, strict: false })
  private readonly cache = new Map<string, ValidateFn>()

  /** Validates `params` (a copy, defaults filled) against the filter's schema. */
  params(info: FilterInfo, params: Record<string, unknown> | undefined, policy: string): Record<string, unknown> {
    if (info.policySchema === undefined) {
      if (params !== undefined && Object.keys(params).length > 0) {
        throw PolicyParamsInvalid({ policy, filter: info.id, errors: ['the filter declares no policySchema, so it takes no parameters'] })
      }
      return {}
    }
    let v = this.cache.get(info.id)
    if (v === undefined) {
      try {
        v = this.ajv.compile(info.policySchema)
      } catch (e) {
        throw PolicyParamsInvalid({ policy, filter: info.id, errors: [`its policySchema is not a valid JSON Schema: ${(e as Error).message}`] })
      }
      this.cache.set(info.id, v)
    }
    const copy = structuredClone(params ?? {}) as Record<string, unknown>
    if (!v(copy)) {
      const errors = (v.errors ?? []).map(e => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`)
      throw PolicyParamsInvalid({ policy, filter: info.id, errors })
    }
    return copy
  }

  /** Checks a policy's shape, resolves its rules and returns them in chain order. */
  resolve(policy: StoragePolicy, lookup: (name: string, cls: FilterClass) => FilterInfo | undefined, host: string): ResolvedRule[] {
    if (policy === null || typeof policy !== 'object' || typeof policy.name !== 'string' || policy.name === '') {
      throw PolicyInvalid({ policy: String(policy?.name), reason: 'a policy needs a non-empty name' })
    }
    if (!Array.isArray(policy.rules)) throw PolicyInvalid({ policy: policy.name, reason: 'rules must be an array' })
    const byClass = new Map<FilterClass, string[]>()
    const out: ResolvedRule[] = []
    for (const rule of policy.rules) {
      const m = typeof rule?.filter === 'string' ? /^([a-zA-Z][a-zA-Z0-9_-]*)@([A-Z]+)$/.exec(rule.filter) : null
      if (m === null) throw PolicyInvalid({ policy: policy.name, reason: `rule ${JSON.stringify(rule?.filter)} is not of the form name@CLASS` })
      const cls = CAPABILITY_CLASS.get(m[2]!)
      if (cls === undefined) throw PolicyInvalid({ policy: policy.name, reason: `unknown class ${m[2]} in ${rule.filter} (one of ${[...CAPABILITY_CLASS.keys()].join(', ')})` })
      const names = byClass.get(cls) ?? []
      names.push(rule.filter)
      byClass.set(cls, names)
      if (names.length > 1) throw PolicyClassConflict({ policy: policy.name, cls, filters: names })
      const info = lookup(m[1]!, cls)
      if (info === undefined) throw FilterNotInstalled({ filter: rule.filter, host })
      if (rule.params !== undefined && (rule.params === null || typeof rule.params !== 'object' || Array.isArray(rule.params))) {
        throw PolicyInvalid({ policy: policy.name, reason: `params of ${rule.filter} must be an object` })
      }
      out.push({ info, params: this.params(info, rule.params as Record<string, unknown> | undefined, policy.name) })
    }
    const clear = policy.allowCleartextFilters === true
    return out.sort((a, b) => chainRank(a.info.cls, clear) - chainRank(b.info.cls, clear))
  }
}
