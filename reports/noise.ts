/**
 * The machine's noise and the marginal verdicts, as the performance checks found them. Each
 * performance check records in its evidence what it measured of the noise
 * (`evidence.noise: { spreadPct, resolvable, note }`) and whether it passed only because its
 * sampling budget ran out (`evidence.marginal`); the report's environment gathers the noise, and
 * a check's `marginal` flag mirrors its evidence.
 */
import type { CertReport, CheckResult, NoiseRecord } from './document.js'

interface NoiseEvidence {
  spreadPct?: unknown
  resolvable?: unknown
  note?: unknown
}

function noiseOf(c: CheckResult): NoiseEvidence | undefined {
  const n = c.evidence?.['noise']
  return n !== null && typeof n === 'object' && !Array.isArray(n) ? (n as NoiseEvidence) : undefined
}

/** The environment's noise record from the performance checks' evidence; undefined when none measured it. */
export function noiseFromChecks(checks: readonly CheckResult[]): NoiseRecord | undefined {
  const found = checks.filter(c => c.suite === 'performance' && (c.status === 'passed' || c.status === 'failed')).map(c => [c, noiseOf(c)] as const).filter(([, n]) => n !== undefined)
  if (found.length === 0) return undefined
  const record: NoiseRecord = { resolvable: true, notes: [] }
  for (const [c, n] of found) {
    const spread = typeof n!.spreadPct === 'number' && Number.isFinite(n!.spreadPct) && n!.spreadPct >= 0 ? n!.spreadPct : undefined
    if (spread !== undefined && c.id === 'performance.iops') record.iopsSpreadPct = spread
    if (spread !== undefined && c.id === 'performance.latency') record.p99SpreadPct = spread
    if (n!.resolvable === false) record.resolvable = false
    if (typeof n!.note === 'string') record.notes.push(`${c.id}: ${n!.note.slice(0, 1000)}`)
  }
  return record
}

/** Whether a check passed only because its sampling budget ran out (its flag, or its evidence). */
export function isMarginal(c: CheckResult): boolean {
  return c.status === 'passed' && (c.marginal === true || c.evidence?.['marginal'] === true)
}

/**
 * The report with its performance findings in place: `environment.noise` from the checks'
 * evidence when the report has none, and `marginal` on every passed check whose evidence says so.
 * Returns the same document when there is nothing to add, or when it is signed.
 */
export function withPerformanceFindings(doc: CertReport): CertReport {
  // a signature covers the document as it is
  if (doc.signature !== undefined) return doc
  const noise = doc.environment.noise ?? noiseFromChecks(doc.checks)
  const needsFlags = doc.checks.some(c => isMarginal(c) && c.marginal !== true)
  if (noise === doc.environment.noise && !needsFlags) return doc
  return {
    ...doc,
    environment: { ...doc.environment, ...(noise !== undefined ? { noise } : {}) },
    checks: needsFlags ? doc.checks.map(c => (isMarginal(c) && c.marginal !== true ? { ...c, marginal: true } : c)) : doc.checks,
  }
}
