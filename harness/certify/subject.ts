/**
 * The filter under test: its package opened and verified once per run (every step recorded for
 * the package.* checks), its module's shape read in the loader worker only when verification
 * passed, and what the other checks need to install it.
 */
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { createRequire } from 'node:module'
import type { FilterClass } from '../sdk/index.js'
import { FILTER_ABI_VERSION } from '../sdk/index.js'
import { inspectModule, OPEN_CLASSES, PackageUnreadable, type FilterInfo, type IofError, type ModuleShape } from '../framework/index.js'
import { canonicalJson, openPackage, verifyPackage, type OpenedPackage } from '../framework/package/index.js'

const require = createRequire(import.meta.url)
const Ajv2020 = require('ajv/dist/2020.js') as { default: new (o: object) => { compile(s: object): ((d: unknown) => boolean) & { errors?: { instancePath: string; message?: string }[] | null } } }

/** One package check's precomputed result. */
export interface StepVerdict {
  readonly ok: boolean
  readonly message?: string
  readonly evidence?: Record<string, unknown>
}

/** Everything the checks know of the filter under test (plain data: it crosses to pool workers). */
export interface SubjectData {
  readonly source: string
  readonly packageSha256: string
  readonly descriptor: Record<string, unknown>
  readonly id: string
  readonly name: string
  readonly vendor: string
  readonly version: string
  readonly cls: FilterClass
  readonly acceptanceLevel: string
  readonly signed: boolean
  readonly keyFingerprint?: string
  /** The installable module, or null when the package is refused (then `refusedBecause` says why). */
  readonly info: FilterInfo | null
  readonly refusedBecause: string | null
  readonly steps: Readonly<Record<'descriptor' | 'integrity' | 'signature' | 'abi' | 'class-open' | 'policy-schema', StepVerdict>>
  /** Whether package.signature is required (the package's level is above CommunitySupported). */
  readonly signatureRequired: boolean
  /** The policy parameters the harness sets (conventional ones the schema declares), defaults filled. */
  readonly conventional: Readonly<Record<string, unknown>>
  readonly policySchema: object | undefined
  /** The package's extracted files (for lifecycle checks that re-install it). */
  readonly root: string | null
}

/** The bundled reference filters, by name. */
export type ReferenceName = 'passthrough' | 'cache' | 'cdp'

export function referenceEntry(name: ReferenceName): string {
  return fileURLToPath(new URL(`../../reference-filters/${name}/filter.js`, import.meta.url))
}

/** The reference filter of a class, as performance.iops compares with. */
export function referenceFor(cls: FilterClass): ReferenceName {
  return cls === 'replication' ? 'cdp' : 'cache'
}

function sha256File(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex')
}

function fail(message: string, evidence?: Record<string, unknown>): StepVerdict {
  return { ok: false, message, ...(evidence ? { evidence } : {}) }
}
const OK: StepVerdict = Object.freeze({ ok: true })

/** Opens, verifies and inspects a package. Unreadable input is an IofError with exit code 2. */
export async function prepareSubject(source: string, workDir: string, o: { inspect?: boolean } = {}): Promise<SubjectData> {
  if (!fs.existsSync(source)) throw PackageUnreadable({ source, reason: 'no such file or directory' })
  let opened: OpenedPackage
  try {
    opened = await openPackage(source, { workDir })
  } catch (e) {
    const err = e as IofError
    throw PackageUnreadable({ source, reason: err.message }, e)
  }
  const d = (opened.descriptor ?? {}) as Record<string, unknown>
  const packageSha256 = opened.sha256 ?? createHash('sha256').update(canonicalJson(d)).digest('hex')
  // the hosts of a certify run trust the package's own key: the vendor certifies its own package
  const ownKey = (d.signature as { publicKey?: string } | undefined)?.publicKey
  const ownFingerprint = typeof ownKey === 'string' ? createHash('sha256').update(Buffer.from(ownKey, 'base64')).digest('hex') : undefined
  const verified = await verifyPackage(opened, { collect: true, trust: { acceptanceLevel: 'CommunitySupported', trustedKeys: ownFingerprint ? [ownFingerprint] : [] } })
  const step = (n: string) => verified.steps.find(s => s.name === n)
  const asVerdict = (...names: string[]): StepVerdict => {
    for (const n of names) {
      const s = step(n)
      if (s && !s.ok) return fail(s.error.message, { code: s.error.code, step: n, ...s.error.details })
    }
    return OK
  }
  const level = typeof d.acceptanceLevel === 'string' ? d.acceptanceLevel : 'unknown'
  const signatureRequired = level !== 'CommunitySupported'
  const steps: Record<string, StepVerdict> = {
    descriptor: asVerdict('schema'),
    integrity: asVerdict('paths', 'integrity'),
    signature: d.signature === undefined
      ? (signatureRequired ? fail(`the package is unsigned, but acceptance level ${level} requires an Ed25519 signature`, { acceptanceLevel: level }) : fail('the package is unsigned', { acceptanceLevel: level }))
      : asVerdict('signature', 'acceptance'),
    'class-open': OPEN_CLASSES.includes(d.class as FilterClass) ? OK : fail(`class ${String(d.class)} is not open to third parties; the open classes are ${OPEN_CLASSES.join(', ')}`, { class: d.class, open: OPEN_CLASSES }),
  }
  const verifiedOk = verified.ok
  let shape: ModuleShape | null = null
  const entry = typeof d.entry === 'string' ? path.join(opened.root, d.entry) : null
  if (o.inspect === false) {
    // the harness's own view of the package: its code runs only in the sandboxed subject
    steps.abi = fail('the module is inspected only in the sandboxed subject process')
    steps['policy-schema'] = fail('the module is inspected only in the sandboxed subject process')
  } else if (!verifiedOk || entry === null) {
    steps.abi = fail('the module was not loaded: code from a package that fails verification never runs', { failed: verified.steps.filter(s => !s.ok).map(s => s.name) })
    steps['policy-schema'] = fail('the module was not loaded (package verification failed)')
  } else {
    try {
      shape = await inspectModule(pathToFileURL(entry).href, 30_000)
      const mismatches: string[] = []
      if (shape.abiVersion !== FILTER_ABI_VERSION) mismatches.push(`abiVersion ${String(shape.abiVersion)} is not supported (this harness implements ABI version ${FILTER_ABI_VERSION})`)
      for (const f of ['name', 'vendor', 'version', 'class', 'abiVersion'] as const) {
        if (f === 'abiVersion' && shape.abiVersion !== FILTER_ABI_VERSION) continue
        if (shape[f] !== d[f]) mismatches.push(`module ${f} ${JSON.stringify(shape[f])} differs from the descriptor's ${JSON.stringify(d[f])}`)
      }
      if (!shape.hasOpen) mismatches.push('the module has no open() function')
      steps.abi = mismatches.length === 0 ? OK : fail(mismatches.join('; '), { module: { name: shape.name, vendor: shape.vendor, version: shape.version, class: shape.class, abiVersion: shape.abiVersion }, descriptor: { name: d.name, vendor: d.vendor, version: d.version, class: d.class, abiVersion: d.abiVersion } })
    } catch (e) {
      steps.abi = fail(`the module does not load: ${(e as Error).message}`)
    }
    steps['policy-schema'] = shape === null ? fail('the module did not load') : checkPolicySchema(shape.policySchema)
  }
  const installOk = ['descriptor', 'integrity', 'abi', 'class-open', 'policy-schema'].every(k => steps[k]!.ok) && verifiedOk
  const failedNames = Object.entries(steps).filter(([k, v]) => !v.ok && (k !== 'signature' || signatureRequired || d.signature !== undefined)).map(([k]) => `package.${k}`)
  const policySchema = (shape?.policySchema ?? undefined) as object | undefined
  const info: FilterInfo | null = installOk && shape !== null && entry !== null
    ? { id: `${String(d.vendor)}_${String(d.name)}_${String(d.version)}`, name: String(d.name), vendor: String(d.vendor), version: String(d.version), cls: d.class as FilterClass, entryUrl: pathToFileURL(entry).href, policySchema, hasDaemon: shape.hasDaemon, builtin: false }
    : null
  return {
    source: path.resolve(source),
    packageSha256,
    descriptor: d,
    id: `${String(d.vendor)}_${String(d.name)}_${String(d.version)}`,
    name: String(d.name ?? 'unknown'),
    vendor: String(d.vendor ?? 'unknown'),
    version: String(d.version ?? '0.0.0'),
    cls: (d.class ?? 'cache') as FilterClass,
    acceptanceLevel: level,
    signed: verified.signed,
    ...(verified.fingerprint ? { keyFingerprint: verified.fingerprint } : {}),
    info,
    refusedBecause: info === null ? `the package is refused at install (${failedNames.join(', ') || 'verification failed'}), so the filter cannot run: code from a package that fails verification never runs` : null,
    steps: steps as SubjectData['steps'],
    signatureRequired,
    conventional: conventionalParams(policySchema, d.class as FilterClass),
    policySchema,
    root: opened.root,
  }
}

/** policySchema compiles as JSON Schema and the empty policy validates with defaults filled. */
export function checkPolicySchema(schema: unknown): StepVerdict {
  if (schema === undefined) return OK
  if (schema === null || typeof schema !== 'object') return fail(`policySchema must be a JSON Schema object, got ${JSON.stringify(schema)}`)
  let validate
  try {
    validate = new Ajv2020.default({ useDefaults: true, strict: false, allErrors: true }).compile(schema as object)
  } catch (e) {
    return fail(`policySchema is not a valid JSON Schema: ${(e as Error).message}`, { policySchema: schema })
  }
  const policy = {}
  if (!validate(policy)) {
    return fail(`the default policy does not validate against policySchema: ${(validate.errors ?? []).map(e => `${e.instancePath || '/'} ${e.message}`).join('; ')}`, { policySchema: schema, policy })
  }
  return { ok: true, evidence: { defaultPolicy: policy } }
}

/**
 * The conventional parameters the harness sets: replication filters `site` (dr) and `rpoSeconds`;
 * cache filters `cacheMiB` — only those the schema declares.
 */
export function conventionalParams(schema: object | undefined, cls: FilterClass, o: { rpoSeconds?: number; cacheMiB?: number } = {}): Record<string, unknown> {
  const props = ((schema as { properties?: Record<string, unknown> } | undefined)?.properties ?? {}) as Record<string, { minimum?: number; default?: unknown }>
  const out: Record<string, unknown> = {}
  if (cls === 'replication') {
    if ('site' in props) out.site = 'dr'
    if ('rpoSeconds' in props && o.rpoSeconds !== undefined) out.rpoSeconds = Math.max(o.rpoSeconds, props.rpoSeconds?.minimum ?? o.rpoSeconds)
  }
  if (cls === 'cache' && 'cacheMiB' in props && o.cacheMiB !== undefined) out.cacheMiB = o.cacheMiB
  return out
}
