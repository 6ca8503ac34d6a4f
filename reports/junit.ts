/**
 * JUnit XML rendered from a report, for CI dashboards. Follows the JUnit schema Jenkins uses
 * (junit-10.xsd): `testsuites` › `testsuite` (properties, testcase*, system-out, system-err) ›
 * `testcase` (skipped | error | failure, system-out). One suite per check suite; benchmark figures
 * are properties of the `performance` suite. A failed or errored check's element text carries its
 * likely cause and the command that reruns it; the filter's log lines go to its `system-out`.
 * Beyond the XSD, the root also carries `skipped`, which CI dashboards (GitLab, Jenkins) read.
 */
import type { BenchmarkSide, CertReport, CheckResult, FilterLogLine } from './document.js'
import { suiteRank } from './merge.js'
import { isMarginal } from './noise.js'
import { rerunCommand } from './rerun.js'
import { failingSchedules, stepLine } from './steps.js'
import { countChecks } from './verdict.js'

/** Options of renderJunit. */
export interface JunitOptions {
  /** The package's path as given to `iofcert certify`, for the rerun commands (default `<filter id>.tgz`). */
  readonly package?: string
}

/** Renders the report as a JUnit XML document. */
export function renderJunit(doc: CertReport, options: JunitOptions = {}): string {
  const suites = groupBySuite(doc.checks)
  if (doc.benchmarks.length > 0 && !suites.has('performance')) suites.set('performance', [])
  const all = countChecks(doc.checks)
  const timestamp = doc.startedAt.replace(/\.\d+/, '').replace(/(Z|[+-]\d\d:\d\d)$/, '')
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>']
  out.push(`<testsuites${attrs({
    name: `iofcert ${doc.filter.id}`,
    tests: all.total,
    failures: all.failed,
    errors: all.errored,
    skipped: all.skipped,
    time: seconds(doc.durationMs),
  })}>`)
  let id = 0
  for (const [suite, checks] of suites) {
    const c = countChecks(checks)
    out.push(`  <testsuite${attrs({
      name: suite,
      tests: c.total,
      failures: c.failed,
      errors: c.errored,
      skipped: c.skipped,
      time: seconds(checks.reduce((s, x) => s + x.durationMs, 0)),
      timestamp,
      id: id++,
      package: 'iofcert',
    })}>`)
    out.push('    <properties>')
    for (const [name, value] of suiteProperties(doc, suite)) out.push(`      <property${attrs({ name, value })}/>`)
    out.push('    </properties>')
    for (const check of checks) out.push(...testcase(check, rerunCommand(doc, check.id, options.package)))
    out.push('    <system-out/>', '    <system-err/>', '  </testsuite>')
  }
  out.push('</testsuites>', '')
  return out.join('\n')
}

function groupBySuite(checks: readonly CheckResult[]): Map<string, CheckResult[]> {
  const map = new Map<string, CheckResult[]>()
  const ordered = [...checks].sort((a, b) => suiteRank(a.suite) - suiteRank(b.suite))
  for (const c of ordered) {
    const list = map.get(c.suite)
    if (list === undefined) map.set(c.suite, [c])
    else list.push(c)
  }
  return map
}

function suiteProperties(doc: CertReport, suite: string): [string, string][] {
  const props: [string, string][] = [
    ['iofcert.filter', doc.filter.id],
    ['iofcert.packageSha256', doc.filter.packageSha256],
    ['iofcert.seed', String(doc.seed)],
    ['iofcert.profile', doc.profile.name],
    ['iofcert.verdict', doc.verdict],
  ]
  if (suite !== 'performance') return props
  for (const b of doc.benchmarks) {
    const key = `benchmark.${b.workload}${b.mode === undefined ? '' : `.${b.mode}`}`
    const sides: [string, BenchmarkSide | undefined][] = [['baseline', b.baseline], ['filtered', b.filtered], ['reference', b.reference]]
    for (const [name, side] of sides) {
      if (side === undefined) continue
      props.push(
        [`${key}.${name}.iops`, String(side.iops)],
        [`${key}.${name}.mbps`, String(side.mbps)],
        [`${key}.${name}.p50Ns`, String(side.latencyNs.p50)],
        [`${key}.${name}.p99Ns`, String(side.latencyNs.p99)],
        [`${key}.${name}.p999Ns`, String(side.latencyNs.p999)],
      )
    }
    props.push([`${key}.overhead.iopsPct`, String(b.overhead.iopsPct)], [`${key}.overhead.p99Pct`, String(b.overhead.p99Pct)])
    const j = b.judgement
    if (j !== undefined) {
      props.push(
        [`${key}.judgement.${j.metric}`, String(j.estimate)],
        [`${key}.judgement.low`, String(j.low)],
        [`${key}.judgement.high`, String(j.high)],
        [`${key}.judgement.bound`, String(j.bound)],
        [`${key}.judgement.outcome`, j.outcome],
        [`${key}.judgement.slices`, String(j.slices)],
      )
    }
  }
  const noise = doc.environment.noise
  if (noise !== undefined) {
    if (noise.iopsSpreadPct !== undefined) props.push(['noise.iopsSpreadPct', String(noise.iopsSpreadPct)])
    if (noise.p99SpreadPct !== undefined) props.push(['noise.p99SpreadPct', String(noise.p99SpreadPct)])
    props.push(['noise.resolvable', String(noise.resolvable)])
  }
  return props
}

function testcase(c: CheckResult, rerun: string): string[] {
  const open = `    <testcase${attrs({ name: c.id, classname: `iofcert.${c.suite}`, time: seconds(c.durationMs) })}`
  const message = c.message ?? ''
  switch (c.status) {
    case 'passed':
      // a marginal pass is still a pass; its system-out says why it is marginal
      if (isMarginal(c)) return [`${open}>`, `      <system-out>${text(`marginal: ${message}`)}</system-out>`, '    </testcase>']
      return [`${open}/>`]
    case 'skipped':
      return [`${open}>`, `      <skipped${attrs({ message })}/>`, '    </testcase>']
    case 'failed':
    case 'errored': {
      const tag = c.status === 'failed' ? 'failure' : 'error'
      const type = `${c.required ? 'Required' : 'Optional'}Check${c.status === 'failed' ? 'Failed' : 'Errored'}`
      const log = logText(c)
      return [
        `${open}>`,
        `      <${tag}${attrs({ message, type })}>${text(detailText(c, rerun))}</${tag}>`,
        ...(log === undefined ? [] : [`      <system-out>${text(log)}</system-out>`]),
        '    </testcase>',
      ]
    }
  }
}

function detailText(c: CheckResult, rerun: string): string {
  const lines = [c.title]
  if (c.message !== undefined) lines.push(c.message)
  lines.push('')
  if (c.cause !== undefined && c.cause !== '') lines.push(`likely cause: ${c.cause}`)
  for (const v of failingSchedules(c)) lines.push(`${v.title}:`, ...v.steps.map(st => `  ${stepLine(st)}`), '')
  lines.push(`rerun: ${rerun}`)
  if (c.evidence !== undefined) lines.push('', 'evidence:', JSON.stringify(c.evidence, null, 2))
  return lines.join('\n')
}

/**
 * The filter's log lines of a failed or errored check, one a line: time since the check started,
 * where, level, message (later lines of a message indented under it); then how many were dropped.
 * `undefined` when the report recorded no log for the check.
 */
function logText(c: CheckResult): string | undefined {
  const logs: readonly FilterLogLine[] = c.logs ?? []
  const dropped = c.logsDropped ?? 0
  if (c.logs === undefined && dropped === 0) return undefined
  const time = (l: FilterLogLine) => `${(l.t / 1000).toFixed(3)}s`
  const tw = Math.max(0, ...logs.map(l => time(l).length))
  const ww = Math.max(0, ...logs.map(l => l.where.length))
  const lines = [`filter log of ${c.id}: ${logs.length} line${logs.length === 1 ? '' : 's'}${dropped > 0 ? `, ${dropped} more dropped` : ''}`]
  for (const l of logs) {
    const head = `${time(l).padStart(tw)} ${l.where.padEnd(ww)} ${l.level.toUpperCase().padEnd(5)} `
    lines.push(head + l.msg.replace(/\r?\n/g, `\n${' '.repeat(head.length)}`))
  }
  if (dropped > 0) lines.push(`(${dropped} more line${dropped === 1 ? '' : 's'} logged but not kept in the report)`)
  return lines.join('\n')
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(3)
}

function attrs(values: Record<string, string | number>): string {
  return Object.entries(values).map(([k, v]) => ` ${k}="${attr(String(v))}"`).join('')
}

// Characters XML 1.0 cannot carry at all (C0 controls but tab/newline/return, lone surrogates,
// U+FFFE/U+FFFF) are replaced, so vendor strings can never make the file unparseable.
const INVALID_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

/** Escapes text content for XML. */
function text(s: string): string {
  return s.replace(INVALID_XML, '\uFFFD').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

/** Escapes an attribute value for XML; whitespace is kept as character references so it survives normalisation. */
function attr(s: string): string {
  return text(s).replace(/"/g, '&quot;').replace(/'/g, '&apos;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;').replace(/\t/g, '&#9;')
}
