/**
 * The package descriptor: its published JSON Schema, validation with errors that name the
 * field, the filter id, the class rules and the acceptance-level order.
 */
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js'
import addFormatsModule from 'ajv-formats'
import type { FilterClass } from '../../sdk/index.js'
import schema from './descriptor.schema.json' with { type: 'json' }

/** The JSON Schema (draft 2020-12) every descriptor.json is validated against. */
export const DESCRIPTOR_SCHEMA: object = schema

/** Host and package acceptance levels, most trusted first (as ESXi orders VIB levels). */
export const ACCEPTANCE_LEVELS = ['VMwareCertified', 'VMwareAccepted', 'PartnerSupported', 'CommunitySupported'] as const
/** A VIB-style acceptance level. */
export type AcceptanceLevel = (typeof ACCEPTANCE_LEVELS)[number]

/** Every class of vSphere's IoFilterType; the schema accepts all of them. */
export const ALL_CLASSES: readonly FilterClass[] = Object.freeze([
  'replication', 'cache', 'encryption', 'datastoreIoControl',
  'inspection', 'compression', 'dataProvider', 'dataCapture',
])
/** Classes a third party may ship and certify. */
export const OPEN_CLASSES: readonly FilterClass[] = Object.freeze(['replication', 'cache'])
/** Classes only the platform ships (its built-in filters). */
export const RESERVED_CLASSES: readonly FilterClass[] = Object.freeze(['encryption', 'datastoreIoControl'])

/** What install, upgrade and uninstall need from the host. */
export interface OperationRequirements {
  readonly maintenanceMode: boolean
  readonly reboot: boolean
}

/** The Ed25519 signature over the canonical JSON of the descriptor without `signature`. */
export interface DescriptorSignature {
  readonly algorithm: 'ed25519'
  /** base64 of the SPKI DER public key. */
  readonly publicKey: string
  /** base64 signature. */
  readonly value: string
}

/** descriptor.json of a filter package (descriptorVersion 1). */
export interface Descriptor {
  readonly descriptorVersion: 1
  readonly name: string
  readonly vendor: string
  readonly version: string
  readonly class: FilterClass
  readonly summary: string
  readonly releaseDate: string
  readonly abiVersion: number
  readonly entry: string
  readonly acceptanceLevel: AcceptanceLevel
  readonly install: OperationRequirements
  readonly upgrade: OperationRequirements
  readonly uninstall: OperationRequirements
  /** Path relative to the package root → lowercase hex SHA-256; every file but descriptor.json. */
  readonly files: Readonly<Record<string, string>>
  readonly signature?: DescriptorSignature
}

/** The outcome of validating a descriptor: the typed descriptor, or one message per problem. */
export type DescriptorValidation =
  | { readonly ok: true; readonly errors: readonly []; readonly descriptor: Descriptor }
  | { readonly ok: false; readonly errors: readonly string[] }

/** Options of validateDescriptor. */
export interface ValidateOptions {
  /**
   * Judge only the metadata a package author writes: `files` and `signature` are ignored
   * (the builder computes them). Default false.
   */
  readonly metadataOnly?: boolean
}

// ajv-formats is CommonJS; under NodeNext its default import is the module object.
const addFormats = addFormatsModule.default
const ajv = new Ajv2020({ allErrors: true, strict: true })
addFormats(ajv, ['date'])
const validateSchema = ajv.compile<Descriptor>(schema)

/**
 * Validates `json` against the descriptor schema. Each error names the field as a JSON
 * pointer and says what was expected, e.g. `/install/reboot: must be boolean`.
 */
export function validateDescriptor(json: unknown, options: ValidateOptions = {}): DescriptorValidation {
  let subject = json
  if (options.metadataOnly === true && isRecord(json)) {
    const { files: _files, signature: _signature, ...metadata } = json
    subject = { ...metadata, files: {} }
  }
  if (validateSchema(subject)) return { ok: true, errors: [], descriptor: subject }
  // Errors from inside a propertyNames subschema repeat the propertyNames error that names the key.
  const errors = (validateSchema.errors ?? []).filter(e => !e.schemaPath.includes('/propertyNames/')).map(formatAjvError)
  return { ok: false, errors: [...new Set(errors)] }
}

/** Formats one ajv error as `<json pointer>: <what was expected>`. */
export function formatAjvError(e: ErrorObject): string {
  const at = e.instancePath === '' ? '/' : e.instancePath
  const child = (name: unknown) => `${e.instancePath}/${escapePointer(String(name))}`
  const params = e.params as Record<string, unknown>
  switch (e.keyword) {
    case 'required':
      return `${child(params.missingProperty)}: is required`
    case 'additionalProperties':
      return `${child(params.additionalProperty)}: is not allowed`
    case 'propertyNames':
      return `${child(params.propertyName)}: is not an allowed name`
    case 'enum':
      return `${at}: must be one of ${(params.allowedValues as unknown[]).map(v => JSON.stringify(v)).join(', ')}`
    case 'const':
      return `${at}: must be ${JSON.stringify(params.allowedValue)}`
    case 'pattern':
      return `${at}: must match ${String(params.pattern)}`
    case 'format':
      return `${at}: must be a ${String(params.format)}${params.format === 'date' ? ' (YYYY-MM-DD)' : ''}`
    default:
      return `${at}: ${e.message ?? 'is invalid'}`
  }
}

/** The filter id, `${vendor}_${name}_${version}` (e.g. `ACME_cdp_1.2.0`). */
export function filterId(d: Pick<Descriptor, 'vendor' | 'name' | 'version'>): string {
  return `${d.vendor}_${d.name}_${d.version}`
}

/** True when a third party may ship a filter of class `cls`. */
export function isClassOpen(cls: string): boolean {
  return (OPEN_CLASSES as readonly string[]).includes(cls)
}

/** True when `level` is a known acceptance level. */
export function isAcceptanceLevel(level: unknown): level is AcceptanceLevel {
  return (ACCEPTANCE_LEVELS as readonly unknown[]).includes(level)
}

/** True when level `a` is at least as trusted as level `b`. */
export function levelAtLeast(a: AcceptanceLevel, b: AcceptanceLevel): boolean {
  return ACCEPTANCE_LEVELS.indexOf(a) <= ACCEPTANCE_LEVELS.indexOf(b)
}

function escapePointer(s: string): string {
  return s.replaceAll('~', '~0').replaceAll('/', '~1')
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
