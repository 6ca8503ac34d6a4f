/**
 * The narrow channel from the subject process to the harness: one JSON message per line on the
 * subject's file descriptor 3. The harness trusts none of it: every message is parsed, bounded
 * and validated before it is used, and a check's id, suite, title and whether it is required
 * are the harness's own, never the subject's.
 */
import type { ValidateFunction } from 'ajv'
import { partValidator, REPORT_SCHEMA_ID, type BenchmarkResult, type CheckResult, type ReplicaLagPoint, type ScalingPoint } from '../../reports/index.js'

/** What the harness sends the subject on its stdin: a certify run's checks, or a bench run. */
export type SubjectTask = CertifyTask | BenchTask

/** The package, the checks to run and how. */
export interface CertifyTask {
  readonly kind: 'certify'
  readonly package: string
  readonly upgradeFrom: string | null
  readonly ids: readonly string[]
  readonly quick: boolean
  readonly certified: boolean
  readonly seed: number
  readonly profileName: string
  readonly concurrency?: number
  /** The run budget of each check (its teardown comes on top), when the user bounded checks. */
  readonly checkRunMs?: number
}

/** `iofcert bench` with a vendor package: the bench's options, paths inside the subject's scratch. */
export interface BenchTask {
  readonly kind: 'bench'
  readonly package: string
  /** The jobs, read from the job file by the harness (v8-serialized, base64). */
  readonly jobs: string
  readonly device: 'memory' | 'file' | 'null'
  readonly vms?: number
  readonly runtimeS?: number
  readonly version: string
}

/** Messages from the subject. */
export type SubjectMessage =
  | { readonly t: 'hello' }
  | { readonly t: 'start'; readonly id: string }
  | { readonly t: 'check'; readonly result: CheckResult; readonly artifacts?: { benchmarks?: BenchmarkResult[]; replicaLag?: ReplicaLagPoint[]; scaling?: ScalingPoint[] } }
  | { readonly t: 'bench'; readonly doc: unknown; readonly profile: unknown }
  | { readonly t: 'fatal'; readonly message: string; readonly code?: string; readonly exitCode?: number }
  | { readonly t: 'end' }

/** The longest line the harness reads from the subject (a check's benchmarks with histograms fit easily). */
export const MAX_LINE_BYTES = 32 * 1024 * 1024

let validators: { check: ValidateFunction; artifacts: ValidateFunction } | undefined
function compiled(): { check: ValidateFunction; artifacts: ValidateFunction } {
  if (validators === undefined) {
    const ref = (part: string) => ({ $ref: `${REPORT_SCHEMA_ID}#/${part}` })
    validators = {
      check: partValidator(ref('$defs/check')),
      artifacts: partValidator({
        type: 'object',
        additionalProperties: false,
        properties: {
          benchmarks: { type: 'array', maxItems: 64, items: ref('$defs/benchmark') },
          replicaLag: { type: 'array', maxItems: 100_000, items: ref('properties/replicaLag/items') },
          scaling: { type: 'array', maxItems: 64, items: ref('properties/scaling/items') },
        },
      }),
    }
  }
  return validators
}

/** Parses and validates one line; returns the message or why it is not one. */
export function parseMessage(line: string): { ok: true; msg: SubjectMessage } | { ok: false; why: string } {
  let m: unknown
  try {
    m = JSON.parse(line)
  } catch {
    return { ok: false, why: `not JSON: ${JSON.stringify(line.slice(0, 80))}` }
  }
  if (m === null || typeof m !== 'object' || Array.isArray(m)) return { ok: false, why: 'not an object' }
  const o = m as Record<string, unknown>
  switch (o.t) {
    case 'hello':
    case 'end':
      return { ok: true, msg: { t: o.t } }
    case 'start':
      return typeof o.id === 'string' && o.id.length < 200 ? { ok: true, msg: { t: 'start', id: o.id } } : { ok: false, why: 'start without an id' }
    case 'fatal': {
      if (typeof o.message !== 'string') return { ok: false, why: 'fatal without a message' }
      const code = typeof o.code === 'string' && /^[A-Za-z]{1,40}$/.test(o.code) ? o.code : undefined
      const exitCode = o.exitCode === 1 || o.exitCode === 2 ? o.exitCode : undefined
      return { ok: true, msg: { t: 'fatal', message: o.message.slice(0, 4000), ...(code !== undefined ? { code } : {}), ...(exitCode !== undefined ? { exitCode } : {}) } }
    }
    case 'bench': {
      const d = o.doc as { jobs?: unknown } | null
      if (d === null || typeof d !== 'object' || !Array.isArray(d.jobs)) return { ok: false, why: 'a bench result without jobs' }
      return { ok: true, msg: { t: 'bench', doc: o.doc, profile: Array.isArray(o.profile) ? o.profile : null } }
    }
    case 'check': {
      const v = compiled()
      if (!v.check(o.result)) return { ok: false, why: `invalid check result: ${v.check.errors?.[0]?.instancePath} ${v.check.errors?.[0]?.message}` }
      if (o.artifacts !== undefined && !v.artifacts(o.artifacts)) return { ok: false, why: `invalid artifacts: ${v.artifacts.errors?.[0]?.instancePath} ${v.artifacts.errors?.[0]?.message}` }
      return { ok: true, msg: { t: 'check', result: o.result as CheckResult, ...(o.artifacts !== undefined ? { artifacts: o.artifacts as never } : {}) } }
    }
    default:
      return { ok: false, why: `unknown message type ${JSON.stringify(String(o.t).slice(0, 40))}` }
  }
}
