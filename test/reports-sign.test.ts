import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, createPublicKey } from 'node:crypto'
import { canonicalJson, signReport, verifyReport } from '../reports/sign.js'
import { countChecks } from '../reports/verdict.js'
import type { CertReport } from '../reports/document.js'
import { buildReport, makeKeyPair } from './fixtures/report-fixture.js'

const vendorKey = makeKeyPair()
const otherKey = makeKeyPair()

test('canonicalJson sorts keys recursively by code unit, drops undefined members, has no whitespace and refuses non-JSON values', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: undefined, x: 'é' }], c: null } }), '{"a":{"c":null,"d":[3,{"x":"é","z":1}]},"b":1}')
  assert.equal(canonicalJson({ b: 1, a: 2 }), canonicalJson({ a: 2, b: 1 }))
  assert.equal(canonicalJson(['a\n"b"', 1.5, true]), '["a\\n\\"b\\"",1.5,true]')
  assert.equal(canonicalJson({ 10: 'a', 9: 'b', Z: 'c', e: 'd', é: 'e' }), '{"10":"a","9":"b","Z":"c","e":"d","é":"e"}')
  assert.throws(() => canonicalJson({ iops: Number.NaN }), /\/iops is not a finite number/)
  assert.throws(() => canonicalJson([undefined]), /\/0 is a undefined, not a JSON value/)
})

test('a signed report verifies, with and without the expected key', () => {
  const signed = signReport(buildReport({ samples: 100 }), vendorKey.privateKeyPem)
  const der = createPublicKey(vendorKey.publicKeyPem).export({ type: 'spki', format: 'der' })
  assert.equal(signed.signature!.algorithm, 'ed25519')
  assert.equal(signed.signature!.publicKey, der.toString('base64'))
  assert.equal(signed.signature!.keyFingerprint, createHash('sha256').update(der).digest('hex'))
  assert.deepEqual(verifyReport(signed), { ok: true, reasons: [], keyFingerprint: signed.signature!.keyFingerprint })
  assert.equal(verifyReport(signed, { publicKeyPem: vendorKey.publicKeyPem }).ok, true)
  // The signature survives a round trip through JSON with any key order and indentation.
  assert.equal(verifyReport(JSON.parse(JSON.stringify(signed, null, 4))).ok, true)
})

test('a report edited after signing fails verification', () => {
  const signed = signReport(buildReport({ samples: 100, outcome: 'ready' }), vendorKey.privateKeyPem)
  const edited = structuredClone(signed)
  edited.benchmarks[0]!.filtered.iops *= 2
  const r = verifyReport(edited)
  assert.equal(r.ok, false)
  assert.deepEqual(r.reasons, ['the signature does not match the document: it was changed after signing'])
})

test('turning a failure into a pass by hand breaks the signature and the consistency', () => {
  const signed = signReport(buildReport({ samples: 100 }), vendorKey.privateKeyPem)
  const edited = structuredClone(signed)
  for (const c of edited.checks) if (c.status === 'failed' || c.status === 'errored') c.status = 'passed'
  const r = verifyReport(edited)
  assert.equal(r.ok, false)
  assert.ok(r.reasons.includes('the signature does not match the document: it was changed after signing'))
  assert.ok(r.reasons.some(x => /^verdict is "not-ready" but the checks give "ready"/.test(x)), r.reasons.join('\n'))
  assert.ok(r.reasons.some(x => /^counts do not add up to the checks: passed is \d+, the checks give \d+/.test(x)), r.reasons.join('\n'))
})

test('re-signing a doctored report with another key is caught by the key and by consistency', () => {
  const doc = buildReport({ samples: 100 })
  const forged: CertReport = { ...structuredClone(doc), verdict: 'ready' }
  const resigned = signReport(forged, otherKey.privateKeyPem)
  const r = verifyReport(resigned, { publicKeyPem: vendorKey.publicKeyPem })
  assert.equal(r.ok, false)
  assert.ok(r.reasons.some(x => x.startsWith(`signed by key ${resigned.signature!.keyFingerprint}, not by the given key`)), r.reasons.join('\n'))
  assert.ok(r.reasons.some(x => x.startsWith('verdict is "ready" but the checks give "not-ready" (events.migration errored')), r.reasons.join('\n'))
})

test('thresholds must be those of the named profile', () => {
  const doc = buildReport({ samples: 100 })
  doc.profile.thresholds = { ...doc.profile.thresholds, latencyP99AddUs: 500, extra: 1 }
  delete doc.profile.thresholds['daemonStopMs']
  const r = verifyReport(signReport(doc, vendorKey.privateKeyPem))
  assert.deepEqual(r.reasons, ['thresholds differ from profile "default": daemonStopMs is missing (the profile says 5000), extra is not a threshold of the profile, latencyP99AddUs is 500, the profile says 50'])
  const unknown = buildReport({ samples: 100 })
  unknown.profile.name = 'lenient'
  assert.deepEqual(verifyReport(signReport(unknown, vendorKey.privateKeyPem)).reasons, ['profile "lenient" is not a known profile'])
})

test('an unsigned or schema-invalid report is refused with the reason', () => {
  const doc = buildReport({ samples: 100, outcome: 'ready' })
  assert.deepEqual(verifyReport(doc).reasons, ['the report is not signed'])
  const invalid = structuredClone(signReport(doc, vendorKey.privateKeyPem)) as unknown as Record<string, any>
  invalid.checks[0].status = 'great'
  const r = verifyReport(invalid)
  assert.equal(r.ok, false)
  assert.match(r.reasons[0]!, /^schema: checks\[0\]\.status: must be equal to one of the allowed values/)
})

test('a signature whose fingerprint does not match its key is refused', () => {
  const signed = signReport(buildReport({ samples: 100, outcome: 'ready' }), vendorKey.privateKeyPem)
  signed.signature!.keyFingerprint = 'f'.repeat(64)
  assert.match(verifyReport(signed).reasons[0]!, /^signature\.keyFingerprint f+ is not the fingerprint of signature\.publicKey/)
})

test('signing refuses an invalid document and replaces an earlier signature', () => {
  const doc = buildReport({ samples: 100 })
  const bad = { ...doc, counts: { ...countChecks(doc.checks), total: -1 } }
  assert.throws(() => signReport(bad, vendorKey.privateKeyPem), /counts\.total/)
  const twice = signReport(signReport(doc, otherKey.privateKeyPem), vendorKey.privateKeyPem)
  assert.equal(verifyReport(twice, { publicKeyPem: vendorKey.publicKeyPem }).ok, true)
})
