/**
 * The console summary printed at the end of a run: counts per suite, why the run is not
 * ready (with each failed or errored check's likely cause and the command that reruns it), and
 * one final verdict line CI logs can grep for.
 */
import Table from 'cli-table3'
import type { CertReport, CheckResult } from './document.js'
import { suiteRank } from './merge.js'
import { isMarginal } from './noise.js'
import { rerunCommand } from './rerun.js'
import { failingSchedules, stepLine } from './steps.js'
import { computeVerdict, countChecks } from './verdict.js'

/** Options of renderConsole. */
export interface ConsoleOptions {
  /** ANSI colours, for a terminal; off for CI logs and files. */
  readonly color: boolean
  /** The package's path as the user gave it to `iofcert certify`, so rerun lines can be pasted as they are (default `<filter id>.tgz`). */
  readonly package?: string
}

const ANSI = { red: 31, green: 32, yellow: 33, grey: 90, bold: 1 } as const

/** Renders the report as the console summary; the last line is the `VERDICT:` line. */
export function renderConsole(doc: CertReport, options: ConsoleOptions): string {
  const paint = (s: string, c: keyof typeof ANSI) => (options.color ? `\u001b[${ANSI[c]}m${s}\u001b[0m` : s)
  const lines: string[] = []
  const f = doc.filter
  lines.push(`${doc.tool.name} ${doc.tool.version} · ${f.vendor} ${f.name} ${f.version} (${f.class}) · ${f.id}`)
  lines.push(`profile ${doc.profile.name} · seed ${doc.seed} · ${(doc.durationMs / 1000).toFixed(1)} s`)

  const table = new Table({
    head: ['suite', 'passed', 'failed', 'skipped', 'errored'],
    colAligns: ['left', 'right', 'right', 'right', 'right'],
    style: { head: options.color ? ['bold'] : [], border: options.color ? ['grey'] : [] },
    // No rule between rows: ten suites read better as one compact block.
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  })
  const cell = (n: number, c: keyof typeof ANSI) => (n === 0 ? paint('0', 'grey') : paint(String(n), c))
  for (const [suite, checks] of bySuite(doc.checks)) {
    const n = countChecks(checks)
    table.push([suite, cell(n.passed, 'green'), cell(n.failed, 'red'), cell(n.skipped, 'yellow'), cell(n.errored, 'red')])
  }
  const all = countChecks(doc.checks)
  table.push([paint('total', 'bold'), String(all.passed), String(all.failed), String(all.skipped), String(all.errored)])
  lines.push(table.toString())

  // under each failed or errored check: what its observations point to, and how to run it alone
  const teach = (c: CheckResult | undefined) => {
    if (c === undefined || (c.status !== 'failed' && c.status !== 'errored')) return
    if (c.cause !== undefined && c.cause !== '') lines.push(`      likely cause: ${c.cause.replace(/\r?\n/g, '\n        ')}`)
    for (const v of failingSchedules(c)) lines.push(`      ${v.title}:`, ...v.steps.map(st => `        ${st.failed ? paint(stepLine(st), 'red') : stepLine(st)}`))
    lines.push(`      ${paint('rerun:', 'grey')} ${rerunCommand(doc, c.id, options.package)}`)
  }
  const byId = new Map(doc.checks.map(c => [c.id, c]))
  const { reasons } = computeVerdict(doc.checks, { certified: doc.options?.certified ?? false })
  if (reasons.length > 0) {
    lines.push('', paint('Not ready because:', 'bold'))
    for (const r of reasons) {
      lines.push(`  ${paint('✗', 'red')} ${r}`)
      teach(byId.get(r.split(' ', 1)[0]!))
    }
  }
  const optional = doc.checks.filter(c => !c.required && (c.status === 'failed' || c.status === 'errored'))
  if (optional.length > 0) {
    lines.push('', paint('Optional checks that did not pass (no effect on the verdict):', 'bold'))
    for (const c of optional) {
      lines.push(`  ${paint('!', 'yellow')} ${c.id} ${c.status}${c.message === undefined ? '' : `: ${c.message}`}`)
      teach(c)
    }
  }
  const marginal = doc.checks.filter(isMarginal)
  if (marginal.length > 0) {
    lines.push('', paint('Marginal (passed: the measurements could not tell within the sampling budget):', 'bold'))
    for (const c of marginal) lines.push(`  ${paint('~', 'yellow')} ${c.id}${c.message === undefined ? '' : `: ${c.message}`}`)
  }
  const noise = doc.environment.noise
  if (noise !== undefined) {
    const spreads = [
      noise.iopsSpreadPct === undefined ? '' : `IOPS ±${noise.iopsSpreadPct} % between slices`,
      noise.p99SpreadPct === undefined ? '' : `p99 ±${noise.p99SpreadPct} % between slices`,
    ].filter(x => x !== '')
    lines.push('', `${paint('Machine noise', 'bold')}: ${spreads.length > 0 ? spreads.join(', ') : 'measured'}${noise.resolvable ? ' (the bounds are resolved at this noise)' : ''}`)
    if (!noise.resolvable) for (const n of noise.notes) lines.push(`  ${paint('!', 'yellow')} ${n}`)
  }
  const word = doc.verdict === 'ready' ? paint('ready', 'green') : paint('not-ready', 'red')
  lines.push('', `VERDICT: ${word} (${all.passed} passed, ${all.failed} failed, ${all.skipped} skipped, ${all.errored} errored${marginal.length > 0 ? `, ${marginal.length} of the passed marginal` : ''})`)
  return `${lines.join('\n')}\n`
}

function bySuite(checks: readonly CheckResult[]): Map<string, CheckResult[]> {
  const map = new Map<string, CheckResult[]>()
  for (const c of [...checks].sort((a, b) => suiteRank(a.suite) - suiteRank(b.suite))) {
    const list = map.get(c.suite)
    if (list === undefined) map.set(c.suite, [c])
    else list.push(c)
  }
  return map
}
