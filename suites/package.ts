/**
 * package.*: the package itself — descriptor schema, integrity, signature, module/ABI, class and
 * policy schema. Verification ran once for the run (before any code of the package ran); these
 * checks report each step's result.
 */
import { check, type CheckDef, type CheckOutcome } from '../harness/certify/check.js'
import type { StepVerdict } from '../harness/certify/subject.js'

function outcome(v: StepVerdict, passMessage?: string): CheckOutcome {
  if (v.ok) return { status: 'passed', ...(passMessage ? { message: passMessage } : {}), ...(v.evidence ? { evidence: v.evidence } : {}) }
  return { status: 'failed', message: v.message ?? 'failed', ...(v.evidence ? { evidence: v.evidence } : {}) }
}

const descriptorCheck = check({ id: 'package.descriptor', title: 'The descriptor validates against the published schema', required: true, classes: 'all', needsInstall: false }, async ctx =>
  outcome(ctx.subject.steps.descriptor))

const integrityCheck = check({ id: 'package.integrity', title: "Every file's SHA-256 matches; no missing, extra or escaping files", required: true, classes: 'all', needsInstall: false }, async ctx =>
  outcome(ctx.subject.steps.integrity))

const signatureCheck = check({ id: 'package.signature', title: 'The Ed25519 signature verifies', required: 'when-signed-level', classes: 'all', needsInstall: false }, async ctx => {
  const s = ctx.subject
  const o = outcome(s.steps.signature, s.keyFingerprint ? `signed with key ${s.keyFingerprint} (acceptance level ${s.acceptanceLevel})` : undefined)
  return s.keyFingerprint ? { ...o, evidence: { ...o.evidence, keyFingerprint: s.keyFingerprint, acceptanceLevel: s.acceptanceLevel } } as CheckOutcome : o
})

const abiCheck = check({ id: 'package.abi', title: 'The module loads, its ABI version is supported and its fields equal the descriptor', required: true, classes: 'all', needsInstall: false }, async ctx =>
  outcome(ctx.subject.steps.abi))

const classOpenCheck = check({ id: 'package.class-open', title: 'The filter class is open to third parties', required: true, classes: 'all', needsInstall: false }, async ctx =>
  outcome(ctx.subject.steps['class-open']))

const policySchemaCheck = check({ id: 'package.policy-schema', title: 'policySchema is valid JSON Schema and the default policy validates', required: true, classes: 'all', needsInstall: false }, async ctx =>
  outcome(ctx.subject.steps['policy-schema']))

/** The suite's checks, in catalogue order. */
export const checks: readonly CheckDef[] = [descriptorCheck, integrityCheck, signatureCheck, abiCheck, classOpenCheck, policySchemaCheck]
