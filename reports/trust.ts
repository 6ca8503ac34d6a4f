/**
 * Trust in reports: a trust file names, per vendor, the package keys that vendor signs its
 * packages with, and the certifier keys whose signed reports are accepted. A report's signature
 * only proves who signed it; the trust file ties those keys to names, so a package signed as
 * vendor `ACME` with anybody else's key, or a report signed by an unknown certifier, is refused.
 *
 * Keys are compared by fingerprint only (SHA-256 hex of the SPKI DER). The fingerprints come
 * from the report: `signature.keyFingerprint` once `verificationParts` has checked it is the
 * signing key's (computed by `keyFingerprint` in sign.ts), and `package.keyFingerprint`, which
 * the certify run recorded from the package's verified descriptor signature.
 */
import { createHash } from 'node:crypto'
import Ajv2020Module from 'ajv/dist/2020.js'
import type { ErrorObject, ValidateFunction } from 'ajv'
import schema from './trust.schema.json' with { type: 'json' }
import type { CertReport } from './document.js'
import { TrustFileInvalid } from './errors.js'
import { canonicalJson, verificationParts } from './sign.js'
import { formatAjvError } from './validate.js'
import { readJsonFile } from './write.js'

/** The trust file as written (`trust.schema.json`). */
export interface TrustFile {
  trustVersion: 1
  /** Vendor name, exactly as in a report's `filter.vendor` → the keys it signs packages with. */
  vendors: Record<string, { packageKeys: string[] }>
  /** The keys whose signed reports are accepted, with the name a listing shows. */
  certifiers: { name: string; key: string }[]
}

/** A loaded trust file; fingerprints are lowercase. */
export interface Trust {
  /** The file as named on the command line. */
  readonly file: string
  /** SHA-256 hex of the trust file's canonical JSON: which rules a listing was made with. */
  readonly sha256: string
  /** Vendor name → its package key fingerprints. */
  readonly vendors: ReadonlyMap<string, ReadonlySet<string>>
  /** Certifier key fingerprint → certifier name. */
  readonly certifiers: ReadonlyMap<string, string>
}

/** The published JSON Schema of the trust file. */
export const trustSchema: Readonly<Record<string, unknown>> = schema

const Ajv2020 = Ajv2020Module.default
let compiled: ValidateFunction | undefined
function validator(): ValidateFunction {
  compiled ??= new Ajv2020({ allErrors: true, strict: true }).compile(schema)
  return compiled
}

const FINGERPRINT_HINT = 'must be a key fingerprint: 64 hex digits, the SHA-256 of the public key as `iofcert keygen` prints it'

function formatTrustError(e: ErrorObject): string {
  if (e.keyword === 'pattern') return formatAjvError({ ...e, message: FINGERPRINT_HINT })
  if (e.keyword === 'additionalProperties') {
    return `${formatAjvError(e)} (${JSON.stringify((e.params as { additionalProperty: string }).additionalProperty)})`
  }
  if (e.keyword === 'propertyNames' || (e.keyword === 'minLength' && e.propertyName !== undefined)) return 'vendors: a vendor name must not be empty'
  return formatAjvError(e)
}

/**
 * Checks a parsed trust file: the schema, then the rules it cannot say — a certifier key is
 * listed once, and a package key belongs to one vendor only (a key that could sign as two
 * vendors would tie neither name to it). Throws `TrustFileInvalid` (exit 2) naming the file.
 */
export function parseTrust(doc: unknown, file: string): Trust {
  const validate = validator()
  if (!validate(doc)) {
    const errors = [...new Set((validate.errors ?? []).map(formatTrustError))]
    throw TrustFileInvalid(file, errors.join('; '))
  }
  const t = doc as TrustFile
  const errors: string[] = []
  const owners = new Map<string, string>()
  const vendors = new Map<string, Set<string>>()
  for (const [vendor, { packageKeys }] of Object.entries(t.vendors)) {
    const keys = new Set<string>()
    for (const raw of packageKeys) {
      const key = raw.toLowerCase()
      const owner = owners.get(key)
      if (owner !== undefined && owner !== vendor) errors.push(`package key ${key} is listed for vendors ${JSON.stringify(owner)} and ${JSON.stringify(vendor)}: a key belongs to one vendor`)
      owners.set(key, vendor)
      keys.add(key)
    }
    vendors.set(vendor, keys)
  }
  const certifiers = new Map<string, string>()
  for (const { name, key: raw } of t.certifiers) {
    const key = raw.toLowerCase()
    const other = certifiers.get(key)
    if (other !== undefined) errors.push(`certifier key ${key} is listed twice (${JSON.stringify(other)} and ${JSON.stringify(name)})`)
    else certifiers.set(key, name)
  }
  if (errors.length > 0) throw TrustFileInvalid(file, errors.join('; '))
  return { file, sha256: createHash('sha256').update(canonicalJson(doc)).digest('hex'), vendors, certifiers }
}

/** Reads and checks a trust file; `TrustFileInvalid` (exit 2) when it is missing, not JSON or invalid. */
export async function readTrustFile(file: string): Promise<Trust> {
  return parseTrust(await readJsonFile(file, TrustFileInvalid), file)
}

/**
 * The rules of a trust file, each with a stable name:
 * - `signed`: the report is signed (only reports of a listed certifier are accepted);
 * - `signature`: its signature verifies (and, with `--key`, is made by that key);
 * - `certifier`: the signing key is a certifier key of the trust file;
 * - `vendor`: the report's `filter.vendor` is a vendor of the trust file;
 * - `package-key`: the package was signed, its signature verified, and its key is one of that vendor's.
 */
export type TrustRule = 'signed' | 'signature' | 'certifier' | 'vendor' | 'package-key'

/** A trust rule a report breaks, and how. */
export interface TrustRefusal {
  rule: TrustRule
  message: string
}

/** How a report fares: verification and, given a trust file, its rules. */
export interface Assessment {
  /** Verified and, with a trust file, breaking none of its rules. */
  ok: boolean
  /** Verification failures: without a trust file every one, with one those its rules do not name (schema, consistency). */
  invalid: string[]
  /** The trust rules the report breaks (none without a trust file). */
  refusals: TrustRefusal[]
  /** Fingerprint of the key that signed the report, when the signature verified. */
  keyFingerprint?: string
  /** The trust file's name of that key, when it is a certifier's. */
  certifier?: string
}

/** Options of assessReport. */
export interface AssessOptions {
  readonly trust?: Trust
  /** When given, the report must be signed by this Ed25519 public key (PEM). */
  readonly publicKeyPem?: string
}

/** Verifies a report (as `verifyReport`) and, given a trust file, judges it by the file's rules. */
export function assessReport(doc: unknown, options: AssessOptions = {}): Assessment {
  const parts = verificationParts(doc, options.publicKeyPem === undefined ? {} : { publicKeyPem: options.publicKeyPem })
  if (parts.schema.length > 0) return { ok: false, invalid: parts.schema, refusals: [] }
  const sig = parts.signature!
  const trust = options.trust
  const out: Assessment = { ok: false, invalid: [...parts.consistency], refusals: [] }
  if (sig.ok) out.keyFingerprint = sig.fingerprint
  if (trust === undefined) {
    if (!sig.ok) out.invalid.unshift(sig.reason)
  } else {
    out.refusals = trustRefusals(doc as CertReport, sig.ok ? sig.fingerprint : sig, trust)
    if (sig.ok && trust.certifiers.has(sig.fingerprint)) out.certifier = trust.certifiers.get(sig.fingerprint)!
  }
  out.ok = out.invalid.length === 0 && out.refusals.length === 0
  return out
}

function trustRefusals(report: CertReport, signer: string | { unsigned: boolean; reason: string }, trust: Trust): TrustRefusal[] {
  const out: TrustRefusal[] = []
  const file = trust.file
  if (typeof signer !== 'string') {
    out.push(signer.unsigned
      ? { rule: 'signed', message: `the report is not signed, and ${file} accepts only reports signed by one of its certifiers` }
      : { rule: 'signature', message: `the report's signature is not accepted: ${signer.reason}` })
  } else if (!trust.certifiers.has(signer)) {
    out.push({ rule: 'certifier', message: `the report is signed by key ${signer}, which is not a certifier key of ${file}` })
  }
  const vendor = report.filter.vendor
  const keys = trust.vendors.get(vendor)
  if (keys === undefined) {
    out.push({ rule: 'vendor', message: `vendor ${JSON.stringify(vendor)} is not in ${file}` })
    return out
  }
  const pkg = report.package
  const key = pkg?.keyFingerprint?.toLowerCase()
  if (key === undefined) {
    out.push({ rule: 'package-key', message: `the package of vendor ${JSON.stringify(vendor)} is not signed, so no key ties it to the vendor` })
  } else if (pkg?.signed !== true) {
    out.push({ rule: 'package-key', message: `the package signature (key ${key}) did not verify when it was certified` })
  } else if (!keys.has(key)) {
    const owner = [...trust.vendors].find(([, k]) => k.has(key))?.[0]
    out.push({ rule: 'package-key', message: `the package is signed with key ${key}, which is not a package key of vendor ${JSON.stringify(vendor)} in ${file}${owner === undefined ? '' : ` (it is vendor ${JSON.stringify(owner)}'s)`}` })
  }
  return out
}

/** Every reason an assessment is not ok, in one list: verification failures, then `rule <name>: …`. */
export function assessmentReasons(a: Assessment): string[] {
  return [...a.invalid, ...a.refusals.map(r => `rule ${r.rule}: ${r.message}`)]
}
