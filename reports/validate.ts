/**
 * Validation of report documents: the published JSON Schema (ajv, draft 2020-12) plus the few
 * rules a schema cannot say (a check's suite is its id's prefix, ids are unique, a histogram's
 * arrays pair up). Every error names the field path, e.g. `checks[3].status`.
 */
import Ajv2020Module from 'ajv/dist/2020.js'
import addFormatsModule from 'ajv-formats'
import type { ErrorObject, ValidateFunction } from 'ajv'
import schema from './report.schema.json' with { type: 'json' }
import type { CertReport, HistogramData } from './document.js'

/** The result of validating a document: `ok`, or the errors each naming a field path. */
export interface ValidationResult {
  ok: boolean
  errors: string[]
}

/** The published JSON Schema of the report document. */
export const reportSchema: Readonly<Record<string, unknown>> = schema

// ajv and ajv-formats are CommonJS modules whose export is also reachable as `.default`;
// that is the form TypeScript's NodeNext typing accepts.
const Ajv2020 = Ajv2020Module.default
const addFormats = addFormatsModule.default

let ajv: InstanceType<typeof Ajv2020> | undefined
let compiled: ValidateFunction | undefined
// Compiling the schema costs milliseconds; do it once, on first use.
function validator(): ValidateFunction {
  if (compiled === undefined) {
    ajv = new Ajv2020({ allErrors: true, strict: true })
    addFormats(ajv, ['date-time'])
    compiled = ajv.compile(schema)
  }
  return compiled
}

/**
 * A validator of a schema that refers to parts of the report schema by `$ref` to its `$id`
 * (e.g. `urn:iofcert:schema:report:1#/$defs/check`), for documents that carry pieces of a report.
 */
export function partValidator(partSchema: object): ValidateFunction {
  validator()
  return ajv!.compile(partSchema)
}

/** The report schema's `$id`, to refer to its parts. */
export const REPORT_SCHEMA_ID = (schema as { $id: string }).$id

/** Validates a report document against the schema and the cross-field rules. */
export function validateReport(doc: unknown): ValidationResult {
  const validate = validator()
  if (!validate(doc)) {
    return { ok: false, errors: dedupe((validate.errors ?? []).map(formatAjvError)) }
  }
  const errors = crossFieldErrors(doc as CertReport)
  return { ok: errors.length === 0, errors }
}

/** Narrows `doc` to a report when it validates. */
export function isValidReport(doc: unknown): doc is CertReport {
  return validateReport(doc).ok
}

function crossFieldErrors(doc: CertReport): string[] {
  const errors: string[] = []
  const seen = new Map<string, number>()
  doc.checks.forEach((c, i) => {
    const prefix = c.id.slice(0, c.id.indexOf('.'))
    if (c.suite !== prefix) errors.push(`checks[${i}].suite: must be "${prefix}", the prefix of the id "${c.id}"`)
    const first = seen.get(c.id)
    if (first !== undefined) errors.push(`checks[${i}].id: duplicate of checks[${first}].id "${c.id}"`)
    else seen.set(c.id, i)
  })
  doc.benchmarks.forEach((b, i) => {
    for (const side of ['baseline', 'filtered', 'reference'] as const) {
      const s = b[side]
      if (s !== undefined) errors.push(...histogramErrors(s.histogram, `benchmarks[${i}].${side}.histogram`))
    }
  })
  const shard = doc.options?.shard
  if (shard !== undefined && shard.index > shard.count) {
    errors.push(`options.shard.index: ${shard.index} exceeds options.shard.count ${shard.count}`)
  }
  return errors
}

function histogramErrors(h: HistogramData, path: string): string[] {
  if (h.bucketNs.length !== h.counts.length) {
    return [`${path}.counts: has ${h.counts.length} entries, bucketNs has ${h.bucketNs.length}`]
  }
  for (let i = 1; i < h.bucketNs.length; i++) {
    if (!(h.bucketNs[i]! > h.bucketNs[i - 1]!)) return [`${path}.bucketNs[${i}]: bounds must be strictly ascending`]
  }
  return []
}

/** `/checks/3/status` → `checks[3].status`; the root is `(document)`. */
function jsonPointerToPath(pointer: string): string {
  let out = ''
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    if (/^\d+$/.test(seg)) out += `[${seg}]`
    else if (/^[A-Za-z_$][\w$]*$/.test(seg)) out += out === '' ? seg : `.${seg}`
    else out += `[${JSON.stringify(seg)}]`
  }
  return out
}

/** One ajv error as `field.path: message`, the form every validation error of this module takes. */
export function formatAjvError(e: ErrorObject): string {
  let path = jsonPointerToPath(e.instancePath)
  let message = e.message ?? 'is invalid'
  if (e.keyword === 'required') {
    const missing = (e.params as { missingProperty: string }).missingProperty
    path = path === '' ? missing : `${path}.${missing}`
    message = 'is required'
  } else if (e.keyword === 'enum') {
    message += `: ${(e.params as { allowedValues: unknown[] }).allowedValues.map(v => JSON.stringify(v)).join(', ')}`
  } else if (e.keyword === 'const') {
    message += ` ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`
  }
  return `${path === '' ? '(document)' : path}: ${message}`
}

function dedupe(list: string[]): string[] {
  return [...new Set(list)]
}
