/**
 * Signing and verifying reports. A report is signed with Ed25519 over the canonical JSON of the
 * document without its `signature` — the same canonicalisation as package descriptors — so any
 * edit after signing, even of whitespace-insensitive content, breaks the signature.
 */
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto'
import { canonicalJson } from '../harness/base/canonical-json.js'
import type { CertReport, ReportSignature } from './document.js'
import { ReportInvalid } from './errors.js'
import { profileThresholds } from './profiles.js'
import { validateReport } from './validate.js'
import { computeVerdict, countChecks } from './verdict.js'

/**
 * The bytes a signature covers, byte for byte the canonicalisation of package descriptors (one
 * implementation serves both).
 */
export { canonicalJson }

/** SHA-256 hex of a public key's SPKI DER: the fingerprint reports and packages show. */
export function keyFingerprint(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex')
}

/** The bytes a report signature covers: the canonical JSON of the document without `signature`. */
export function signedBytes(doc: CertReport): Buffer {
  const { signature: _omit, ...rest } = doc
  return Buffer.from(canonicalJson(rest), 'utf8')
}

/** Returns a copy of `doc` signed with the Ed25519 private key in `privateKeyPem`. */
export function signReport(doc: CertReport, privateKeyPem: string): CertReport {
  const { signature: _old, ...unsigned } = doc
  const valid = validateReport(unsigned)
  if (!valid.ok) throw ReportInvalid(valid.errors, 'a signature')
  const privateKey = createPrivateKey(privateKeyPem)
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new TypeError(`signReport: expected an ed25519 private key, got ${privateKey.asymmetricKeyType ?? 'unknown'}`)
  }
  const publicKey = createPublicKey(privateKey)
  const signature: ReportSignature = {
    algorithm: 'ed25519',
    publicKey: publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
    keyFingerprint: keyFingerprint(publicKey),
    value: sign(null, signedBytes(unsigned), privateKey).toString('base64'),
  }
  return { ...unsigned, signature }
}

/** Options of verifyReport. */
export interface VerifyOptions {
  /** When given, the report must be signed by this Ed25519 public key (PEM). */
  readonly publicKeyPem?: string
}

/** The outcome of verifyReport: `ok`, or every reason it is not. */
export interface VerifyResult {
  ok: boolean
  reasons: string[]
  /** Fingerprint of the key that signed the report, when the signature verified. */
  keyFingerprint?: string
}

/**
 * Verifies a report: it validates against the schema, carries a valid signature (made by the
 * given key, if any), and is internally consistent — its verdict follows from its checks, its
 * counts add up and its thresholds are those of its named profile.
 */
export function verifyReport(doc: unknown, options: VerifyOptions = {}): VerifyResult {
  const parts = verificationParts(doc, options)
  if (parts.schema.length > 0) return { ok: false, reasons: parts.schema }
  const reasons: string[] = []
  if (!parts.signature!.ok) reasons.push(parts.signature!.reason)
  reasons.push(...parts.consistency)
  const result: VerifyResult = { ok: reasons.length === 0, reasons }
  if (parts.signature!.ok) result.keyFingerprint = parts.signature!.fingerprint
  return result
}

/** The outcome of checking a report's signature: the signer's fingerprint, or why not. */
export type SignatureCheck =
  | { ok: true; fingerprint: string }
  | { ok: false; unsigned: boolean; reason: string }

/**
 * What verifyReport checks, kept apart, for callers that judge the signature by rules of their
 * own (the trust file): the schema errors (as `schema: …` reasons; when there are any the other
 * parts are not checked), the signature check, and the consistency reasons.
 */
export interface VerificationParts {
  schema: string[]
  signature?: SignatureCheck
  consistency: string[]
}

/** Checks `doc` as verifyReport does, returning each part's outcome separately. */
export function verificationParts(doc: unknown, options: VerifyOptions = {}): VerificationParts {
  const valid = validateReport(doc)
  if (!valid.ok) return { schema: valid.errors.map(e => `schema: ${e}`), consistency: [] }
  const report = doc as CertReport
  return { schema: [], signature: checkSignature(report, options), consistency: consistencyReasons(report) }
}

function checkSignature(report: CertReport, options: VerifyOptions): SignatureCheck {
  const fail = (reason: string): SignatureCheck => ({ ok: false, unsigned: false, reason })
  const sig = report.signature
  if (sig === undefined) return { ok: false, unsigned: true, reason: 'the report is not signed' }
  let publicKey: KeyObject
  try {
    publicKey = createPublicKey({ key: Buffer.from(sig.publicKey, 'base64'), format: 'der', type: 'spki' })
  } catch {
    return fail('signature.publicKey is not an SPKI public key')
  }
  if (publicKey.asymmetricKeyType !== 'ed25519') {
    return fail(`signature.publicKey is a ${publicKey.asymmetricKeyType ?? 'unknown'} key, not ed25519`)
  }
  const fingerprint = keyFingerprint(publicKey)
  if (fingerprint !== sig.keyFingerprint) {
    return fail(`signature.keyFingerprint ${sig.keyFingerprint} is not the fingerprint of signature.publicKey (${fingerprint})`)
  }
  if (!verify(null, signedBytes(report), publicKey, Buffer.from(sig.value, 'base64'))) {
    return fail('the signature does not match the document: it was changed after signing')
  }
  if (options.publicKeyPem !== undefined) {
    const expected = keyFingerprint(createPublicKey(options.publicKeyPem))
    if (expected !== fingerprint) return fail(`signed by key ${fingerprint}, not by the given key ${expected}`)
  }
  return { ok: true, fingerprint }
}

function consistencyReasons(report: CertReport): string[] {
  const reasons: string[] = []
  const certified = report.options?.certified ?? false
  const expected = computeVerdict(report.checks, { certified })
  if (expected.verdict !== report.verdict) {
    reasons.push(`verdict is "${report.verdict}" but the checks give "${expected.verdict}"${expected.reasons.length > 0 ? ` (${expected.reasons[0]})` : ''}`)
  }
  if (report.counts !== undefined) {
    const counts = countChecks(report.checks)
    const wrong = (Object.keys(counts) as (keyof typeof counts)[]).filter(k => counts[k] !== report.counts![k])
    if (wrong.length > 0) {
      reasons.push(`counts do not add up to the checks: ${wrong.map(k => `${k} is ${report.counts![k]}, the checks give ${counts[k]}`).join(', ')}`)
    }
  }
  const known = profileThresholds(report.profile.name)
  if (known === undefined) {
    reasons.push(`profile "${report.profile.name}" is not a known profile`)
  } else {
    const got = report.profile.thresholds
    const names = new Set([...Object.keys(known), ...Object.keys(got)])
    const diffs: string[] = []
    for (const name of [...names].sort()) {
      const want = (known as Readonly<Record<string, number>>)[name]
      if (want === undefined) diffs.push(`${name} is not a threshold of the profile`)
      else if (!Object.hasOwn(got, name)) diffs.push(`${name} is missing (the profile says ${want})`)
      else if (got[name] !== want) diffs.push(`${name} is ${got[name]}, the profile says ${want}`)
    }
    if (diffs.length > 0) reasons.push(`thresholds differ from profile "${report.profile.name}": ${diffs.join(', ')}`)
  }
  return reasons
}
