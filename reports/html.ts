/**
 * The HTML report: one self-contained file a vendor opens, prints or forwards. The verdict and
 * why come first, then the checks (filterable; each failure with its likely cause, the command
 * that reruns it, and its evidence and filter log one click away), the benchmark charts and the
 * run's identity. Everything from the document is escaped: vendor
 * strings are untrusted, and the page's security policy forbids any network access.
 */
import { lineChart, type ChartSeries, type ChartTick } from './charts.js'
import type { BenchmarkJudgement, BenchmarkResult, BenchmarkSide, CertReport, CheckResult, CheckStatus, HistogramData, Overhead } from './document.js'
import { CHECK_STATUSES } from './document.js'
import { histogramCount, histogramPercentile } from './histogram.js'
import { BASE_CSS, CSP_META, esc, fmtDate, fmtDuration, fmtInt, fmtLatency, fmtLatencyTick, fmtPct, jsonForScript } from './html-kit.js'
import { suiteRank } from './merge.js'
import { isMarginal } from './noise.js'
import { rerunCommand } from './rerun.js'
import { failingSchedules } from './steps.js'
import { computeVerdict, countChecks } from './verdict.js'

/** Options of renderHtml. */
export interface HtmlOptions {
  /** A link shown above the report, e.g. back to a compatibility listing. */
  readonly backLink?: { readonly href: string; readonly label: string }
  /** The package's path as the reader would give it to `iofcert certify`, for the rerun commands (default `<filter id>.tgz`). */
  readonly package?: string
}

const STATUS_LABEL: Record<CheckStatus, string> = { passed: 'Passed', failed: 'Failed', skipped: 'Skipped', errored: 'Errored' }

/** Renders the report as one self-contained HTML page. */
/** MB/s with one decimal, and two significant digits below 1 (a paced 0.41 MB/s is not 0.4 or 0.0). */
function fmtMbps(v: number): string {
  return v >= 1 || v === 0 ? v.toFixed(1) : v.toPrecision(2)
}

export function renderHtml(doc: CertReport, options: HtmlOptions = {}): string {
  const f = doc.filter
  const title = `${f.vendor} ${f.name} ${f.version} — ${doc.verdict === 'ready' ? 'ready' : 'not ready'} — ${doc.tool.name} certification report`
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${CSP_META}
<meta name="generator" content="${esc(doc.tool.name)} ${esc(doc.tool.version)}">
<title>${esc(title)}</title>
<style>${BASE_CSS}${REPORT_CSS}</style>
</head>
<body>
${header(doc, options)}
<main class="wrap">
${verdictSection(doc)}
${checksSection(doc, options)}
${performanceSection(doc)}
${runSection(doc)}
<footer class="foot muted">Rendered by ${esc(doc.tool.name)} ${esc(doc.tool.version)} from the report document (schema version ${esc(doc.schemaVersion)}), which is embedded in this page.</footer>
</main>
<script type="application/json" id="report-json">${jsonForScript(doc)}</script>
<script>${REPORT_JS}</script>
</body>
</html>
`
}

function header(doc: CertReport, options: HtmlOptions): string {
  const f = doc.filter
  const back = options.backLink === undefined ? '' : `<a class="back no-print" href="${esc(options.backLink.href)}">← ${esc(options.backLink.label)}</a>`
  return `<header class="top"><div class="wrap">
${back}
<div class="eyebrow">${esc(doc.tool.name)} certification report</div>
<h1><span data-testid="filter-vendor">${esc(f.vendor)}</span> <span data-testid="filter-name">${esc(f.name)}</span> <span class="ver">${esc(f.version)}</span></h1>
<div class="sub"><span class="cls">${esc(f.class)} filter</span> · <code>${esc(f.id)}</code> · ${esc(fmtDate(doc.startedAt))} · ${esc(fmtDuration(doc.durationMs))}${doc.options?.certified === true ? ' · <span class="tag">certified run</span>' : ''}${doc.options?.quick === true ? ' · <span class="tag">quick</span>' : ''}</div>
</div></header>`
}

function verdictSection(doc: CertReport): string {
  const counts = countChecks(doc.checks)
  const ready = doc.verdict === 'ready'
  const reasons = doc.reasons ?? computeVerdict(doc.checks, { certified: doc.options?.certified ?? false }).reasons
  const ids = new Set(doc.checks.map(c => c.id))
  const reasonItems = reasons.map(r => {
    const id = r.split(/[\s:]/, 1)[0]!
    const body = ids.has(id) ? `<a href="#check-${esc(id)}" data-goto="${esc(id)}"><code>${esc(id)}</code></a>${esc(r.slice(id.length))}` : esc(r)
    return `<li>${body}</li>`
  })
  const optional = doc.checks.filter(c => !c.required && (c.status === 'failed' || c.status === 'errored'))
  const marginal = doc.checks.filter(isMarginal)
  const chips = CHECK_STATUSES.map(s =>
    `<span class="chip ${s}" data-testid="count-${s}" data-count="${counts[s]}"><b>${counts[s]}</b> ${s}</span>`).join('')
  const lead = ready
    ? `Every required check passed${doc.options?.certified === true ? ', none skipped' : ''}.`
    : `${reasons.length === 1 ? 'One required check' : `${reasons.length} required checks`} did not pass:`
  return `<section class="verdict ${ready ? 'is-ready' : 'is-not-ready'}" aria-labelledby="verdict-title">
<div class="verdict-head">
<div class="verdict-word" id="verdict-title" data-testid="verdict" data-verdict="${esc(doc.verdict)}">${ready ? '✓ Ready' : '✗ Not ready'}</div>
<div class="chips" data-testid="counts" data-total="${counts.total}">${chips}<span class="chip total"><b>${counts.total}</b> checks</span></div>
</div>
<p class="lead">${lead}</p>
${reasonItems.length > 0 ? `<ol class="reasons" data-testid="reasons">${reasonItems.join('')}</ol>` : ''}
${marginal.length > 0 ? `<p class="marginal-note" data-testid="marginal">Passed as <b>marginal</b> — the measurements could not tell within the sampling budget (the interval still straddled the bound): ${marginal.map(c => `<a href="#check-${esc(c.id)}" data-goto="${esc(c.id)}"><code>${esc(c.id)}</code></a>`).join(', ')}.${doc.environment.noise !== undefined && !doc.environment.noise.resolvable ? ' The machine was too noisy to resolve the bounds: see the environment.' : ''}</p>` : ''}
${optional.length > 0 ? `<p class="optional muted">Optional, not counted for the verdict: ${optional.map(c => `<a href="#check-${esc(c.id)}" data-goto="${esc(c.id)}"><code>${esc(c.id)}</code></a> ${esc(c.status)}`).join(', ')}.</p>` : ''}
</section>`
}

function checksSection(doc: CertReport, options: HtmlOptions): string {
  const counts = countChecks(doc.checks)
  const suites = new Map<string, CheckResult[]>()
  for (const c of [...doc.checks].sort((a, b) => suiteRank(a.suite) - suiteRank(b.suite))) {
    const list = suites.get(c.suite)
    if (list === undefined) suites.set(c.suite, [c])
    else list.push(c)
  }
  const order: (CheckStatus | 'all')[] = ['all', 'failed', 'errored', 'skipped', 'passed']
  const buttons = order.map(s => {
    const n = s === 'all' ? counts.total : counts[s]
    return `<button type="button" class="filter ${s}" data-filter="${s}" aria-pressed="${s === 'all'}"${n === 0 && s !== 'all' ? ' disabled' : ''}>${s === 'all' ? 'All' : STATUS_LABEL[s]} <span class="n">${n}</span></button>`
  }).join('')
  const bodies = [...suites].map(([suite, checks]) => {
    const n = countChecks(checks)
    const summary = CHECK_STATUSES.filter(s => n[s] > 0).map(s => `<span class="mini ${s}">${n[s]} ${s}</span>`).join(' ')
    return `<tbody class="suite" data-suite="${esc(suite)}">
<tr class="suite-row"><th colspan="3"><span class="suite-name">${esc(suite)}</span> ${summary}</th></tr>
${checks.map(c => checkRow(c, doc, options)).join('\n')}
</tbody>`
  })
  return `<section id="checks" aria-labelledby="checks-title">
<h2 id="checks-title">Checks</h2>
<div class="toolbar no-print" role="toolbar" aria-label="Show checks by status">${buttons}<button type="button" class="expand" data-expand>Expand all evidence</button></div>
<div class="scroll"><table class="checks" data-testid="checks-table">
<thead><tr><th class="c-status">Status</th><th>Check</th><th class="num c-time">Time</th></tr></thead>
${bodies.join('\n')}
</table></div>
<p class="empty muted" hidden>No check has this status.</p>
</section>`
}

function checkRow(c: CheckResult, doc: CertReport, options: HtmlOptions): string {
  // Required is the rule; only the exceptions are marked.
  const req = c.required ? '' : ' <span class="opt" title="does not count for the verdict">optional</span>'
  const bad = c.status === 'failed' || c.status === 'errored'
  const message = c.message === undefined || c.message === '' ? '' : `<div class="msg ${c.status}">${esc(c.message)}</div>`
  const cause = bad && c.cause !== undefined && c.cause !== ''
    ? `<div class="cause" data-testid="cause-${esc(c.id)}"><span class="cause-label">Likely cause:</span> ${esc(c.cause)}</div>`
    : ''
  const rerun = bad
    ? `<div class="rerun"><span class="muted">Rerun this check alone (same seed and options):</span><pre><code data-testid="rerun-${esc(c.id)}">${esc(rerunCommand(doc, c.id, options.package))}</code></pre></div>`
    : ''
  const evidence = c.evidence === undefined
    ? ''
    : `<details class="evidence" data-testid="evidence-${esc(c.id)}"${bad ? ' data-bad' : ''}><summary>Evidence</summary>${evidenceTable(c.evidence)}</details>`
  const schedules = failingSchedules(c).map(v => `<div class="schedule" data-testid="schedule-${esc(c.id)}"><div class="schedule-title">${esc(v.title)}</div><ol>${v.steps.map(st => `<li value="${st.n}"${st.failed ? ' class="failed-step" data-failed-step' : ''}>${esc(st.step)} <span class="muted">+${Math.round(st.startMs)} … +${Math.round(st.endMs)} ms${st.skipped !== undefined ? ` — skipped: ${esc(st.skipped)}` : ''}</span>${st.failed ? ' <strong>← failed here</strong>' : ''}</li>`).join('')}</ol></div>`).join('')
  return `<tr class="check ${c.status}" id="check-${esc(c.id)}" data-check-id="${esc(c.id)}" data-status="${c.status}"${isMarginal(c) ? ' data-marginal="true"' : ''}>
<td class="c-status"><span class="badge ${c.status}">${STATUS_LABEL[c.status]}</span>${isMarginal(c) ? '<span class="marginal" data-testid="marginal-badge" title="passed, but its interval still straddled the bound when the sampling budget was spent">marginal</span>' : ''}</td>
<td class="c-check"><div class="cid"><code>${esc(c.id)}</code>${req}</div><div class="ctitle">${esc(c.title)}</div>${message}${cause}${schedules}${rerun}${evidence}${bad ? filterLog(c) : ''}</td>
<td class="num c-time">${c.status === 'skipped' && c.durationMs === 0 ? '—' : esc(fmtDuration(c.durationMs))}</td>
</tr>`
}

/**
 * The filter's own log lines from the check's VMs and daemons, as a compact table (time since
 * the check started, where, level, message), with the count of lines not kept. Nothing when the
 * harness recorded no log for the check.
 */
function filterLog(c: CheckResult): string {
  const lines = c.logs ?? []
  const dropped = c.logsDropped ?? 0
  if (c.logs === undefined && dropped === 0) return ''
  const id = esc(c.id)
  if (lines.length === 0 && dropped === 0) return `<div class="log-none muted" data-testid="logs-${id}">The filter logged nothing while this check ran.</div>`
  const count = (n: number, what: string) => `${fmtInt(n)} ${what}${n === 1 ? '' : 's'}`
  const errors = lines.filter(l => l.level === 'error').length
  const warnings = lines.filter(l => l.level === 'warn').length
  const summary = [
    count(lines.length, 'line'),
    errors > 0 ? count(errors, 'error') : '',
    warnings > 0 ? count(warnings, 'warning') : '',
    dropped > 0 ? `${fmtInt(dropped)} dropped` : '',
  ].filter(x => x !== '').join(' · ')
  const rows = lines.map(l => `<tr class="lvl-${esc(l.level)}"><td class="num">${esc(fmtLogTime(l.t))}</td><td><code title="${esc(`source: ${l.source}`)}">${esc(l.where)}</code></td><td><span class="lvl ${esc(l.level)}">${esc(l.level)}</span></td><td><pre>${esc(l.msg)}</pre></td></tr>`)
  const table = lines.length === 0
    ? ''
    : `<div class="log-scroll"><table class="log"><thead><tr><th class="num">Time</th><th>Where</th><th>Level</th><th>Message</th></tr></thead><tbody>${rows.join('')}</tbody></table></div>`
  const note = dropped > 0
    ? `<p class="log-dropped muted" data-testid="logs-dropped-${id}">${fmtInt(dropped)} more line${dropped === 1 ? ' was' : 's were'} logged but not kept in the report (over the bound of the report, or rate-limited).</p>`
    : ''
  return `<details class="logs" data-testid="logs-${id}" data-lines="${lines.length}" data-dropped="${dropped}"><summary>Filter log <span class="muted">(${esc(summary)})</span></summary>${table}${note}</details>`
}

/** A log line's time since its check started, in seconds with milliseconds: `12.345 s`. */
function fmtLogTime(ms: number): string {
  return `${(ms / 1000).toFixed(3)} s`
}

/**
 * Evidence as a table of its top-level fields, so a stack trace or a hex dump reads with its
 * real line breaks; nested values are shown as indented JSON.
 */
function evidenceTable(evidence: Record<string, unknown>): string {
  const rows = Object.entries(evidence).map(([k, v]) => {
    let cell: string
    if (typeof v === 'string') cell = v.includes('\n') ? `<pre>${esc(v)}</pre>` : `<span class="sv">${esc(v)}</span>`
    else if (v !== null && typeof v === 'object') cell = `<pre>${esc(JSON.stringify(v, null, 2))}</pre>`
    else cell = `<code>${esc(JSON.stringify(v))}</code>`
    return `<tr data-key="${esc(k)}"><th><code>${esc(k)}</code></th><td>${cell}</td></tr>`
  })
  return `<table class="kv">${rows.join('')}</table>`
}

function performanceSection(doc: CertReport): string {
  const parts: string[] = []
  const saturation = doc.benchmarks.filter(b => b.mode !== 'paced')
  const paced = doc.benchmarks.filter(b => b.mode !== 'saturation')
  const t = doc.profile.thresholds
  if (saturation.length > 0) {
    parts.push(`<h3 class="sub-h">Throughput${saturation.some(b => b.mode === 'saturation') ? ' at saturation (queue depth 32)' : ''}</h3>
<p class="muted note">Bars compare this filter with the no-filter baseline${saturation.some(b => b.reference !== undefined) ? ' and the bundled reference filter of the same class, measured in the same run' : ''}${saturation.some(b => b.judgement !== undefined) ? ', over many short slices taken in a random interleaved order; the dark mark across a bar is its 95 % interval' : ''}.</p>
<div class="grid">${saturation.map(b => throughputCard(b, t['iopsRatioMin'])).join('')}</div>`)
  }
  if (paced.length > 0) {
    parts.push(`<h3 class="sub-h">Latency percentiles${paced.some(b => b.mode === 'paced') ? ` at the paced load${t['pacedIopsPerVm'] === undefined ? '' : ` (${fmtInt(t['pacedIopsPerVm'])} IOPS per VM)`}` : ''}</h3>
<p class="muted note">Each curve is recomputed from the merged latency histogram; the x axis spreads the tail (90, 99, 99.9 … percent).</p>
<div class="legend"><span class="key baseline"></span>no filter <span class="key filtered"></span>this filter${paced.some(b => b.mode === 'paced') && t['latencyP99Factor'] !== undefined && t['latencyP99AddUs'] !== undefined ? ' <span class="key limit"></span>p99 limit' : ''}</div>
<div class="grid">${paced.map(b => latencyCard(b, doc)).join('')}</div>`)
  }
  if (doc.benchmarks.length > 0) parts.push(benchmarkTable(doc.benchmarks))
  const extra: string[] = []
  if (doc.replicaLag !== undefined && doc.replicaLag.length > 0) extra.push(replicaLagCard(doc))
  if (doc.scaling !== undefined && doc.scaling.length > 0) extra.push(scalingCard(doc))
  if (extra.length > 0) parts.push(`<h3 class="sub-h">${doc.replicaLag !== undefined && doc.replicaLag.length > 0 ? 'Replication and scaling' : 'Scaling'}</h3><div class="grid">${extra.join('')}</div>`)
  if (parts.length === 0) return ''
  return `<section id="performance" aria-labelledby="perf-title">
<h2 id="perf-title">Performance</h2>
${parts.join('\n')}
</section>`
}

function throughputCard(b: BenchmarkResult, ratioMin: number | undefined): string {
  const sides: [string, string, BenchmarkSide | undefined][] = [
    ['No filter', 'baseline', b.baseline],
    ['Reference filter', 'reference', b.reference],
    ['This filter', 'filtered', b.filtered],
  ]
  const max = Math.max(...sides.map(s => Math.max(s[2]?.iops ?? 0, s[2]?.iopsInterval?.high ?? 0)), 1)
  const pct = (v: number) => `${((Math.max(0, v) / max) * 100).toFixed(1)}%`
  const rows = sides.filter(s => s[2] !== undefined).map(([label, cls, side]) => {
    const iv = side!.iopsInterval
    // the interval of the side's IOPS over its slices, drawn across the end of its bar
    const whisker = iv === undefined ? '' : `<span class="whisker" title="95 % interval ${fmtInt(iv.low)}–${fmtInt(iv.high)} IOPS" style="left:${pct(iv.low)};width:calc(${pct(iv.high)} - ${pct(iv.low)})"></span>`
    const detail = [iv === undefined ? '' : `${fmtInt(iv.low)}–${fmtInt(iv.high)}`, side!.slices === undefined ? '' : `${side!.slices} slices`, side!.spreadPct === undefined ? '' : `±${side!.spreadPct} %`].filter(x => x !== '').join(', ')
    return `<div class="bar-row"><div class="bar-text"><span>${label}</span><span class="bar-value"><b>${fmtInt(side!.iops)}</b> IOPS <span class="muted">· ${fmtMbps(side!.mbps)} MB/s${detail === '' ? '' : ` · ${esc(detail)}`}</span></span></div><div class="bar-track"><span class="bar ${cls}" style="width:${pct(side!.iops)}"></span>${whisker}</div></div>`
  })
  let ratio = ''
  if (b.judgement !== undefined && b.judgement.metric === 'iopsRatio') {
    ratio = ` · ${judgementText(b.judgement)}`
  } else if (b.reference !== undefined && b.reference.iops > 0) {
    const r = b.filtered.iops / b.reference.iops
    const ok = ratioMin === undefined || r >= ratioMin
    ratio = ` · <span class="${ok ? 'good' : 'bad'}">${Math.round(r * 100)}% of the reference</span>${ratioMin === undefined ? '' : ` (minimum ${Math.round(ratioMin * 100)}%)`}`
  }
  return `<div class="card" data-workload="${esc(b.workload)}">
<h3>${esc(b.workload)}</h3>
${rows.join('')}
<p class="overhead" data-testid="overhead">Change vs no filter: IOPS ${iopsChange(b.overhead)}, p99 ${p99Change(b.overhead)}${ratio}</p>
</div>`
}

/**
 * This filter's IOPS relative to the no-filter baseline, in the reports' sign convention: the
 * change of the metric, so `−6.7 %` is fewer IOPS (slower). `overhead.iopsPct` counts the other
 * way (positive when slower), hence the negation.
 */
function iopsChange(o: Overhead): string {
  return change('iops', -o.iopsPct, "this filter's IOPS relative to no filter", 'more IOPS, faster', 'fewer IOPS, slower')
}

/** This filter's p99 latency relative to the no-filter baseline: `+12.0 %` is higher latency. */
function p99Change(o: Overhead): string {
  return change('p99', o.p99Pct, "this filter's p99 latency relative to no filter", 'higher latency, slower', 'lower latency')
}

/** A signed change with a title that says what it is relative to and which way it goes (as shown, one decimal). */
function change(metric: string, pct: number, what: string, up: string, down: string): string {
  const shown = Math.round(pct * 10) / 10
  return `<span class="change" data-metric="${metric}" data-pct="${esc(pct)}" title="${esc(`${what}: ${shown > 0 ? up : shown < 0 ? down : 'no change'}`)}">${fmtPct(pct)}</span>`
}

const OUTCOME_CLASS: Record<BenchmarkJudgement['outcome'], string> = { pass: 'good', fail: 'bad', marginal: 'warn' }

/** A judged estimate with its interval, e.g. "98 % of the reference, 95 % interval 84–112 % in 12 slices (minimum 80 %): pass". */
function judgementText(j: BenchmarkJudgement): string {
  const span = (lo: number | null, hi: number | null, f: (v: number) => string) => `${lo === null ? '−∞' : f(lo)}–${hi === null ? '∞' : f(hi)}`
  // the interval of the last look; each look is at the confidence that keeps 95 % over all of them
  const body = j.metric === 'iopsRatio'
    ? `${Math.round(j.estimate * 100)}% of the reference, 95 % interval ${span(j.low, j.high, v => `${Math.round(v * 100)}%`)} in ${j.slices} slices (minimum ${Math.round(j.bound * 100)}%)`
    : `p99 ${j.estimate >= 0 ? `${fmtLatency(j.estimate)} over` : `${fmtLatency(-j.estimate)} under`} the limit, 95 % interval ${span(j.low, j.high, v => `${v < 0 ? '−' : '+'}${fmtLatency(Math.abs(v))}`)} in ${j.slices} slices`
  return `<span class="${OUTCOME_CLASS[j.outcome]}" data-outcome="${esc(j.outcome)}" title="${esc(`the interval of the last look, at ${(j.confidence * 100).toFixed(1)} %: 95 % over all its looks; budget ${j.budget} slices`)}">${esc(body)}: ${esc(j.outcome)}</span>`
}

function latencyCard(b: BenchmarkResult, doc: CertReport): string {
  const xMax = Math.max(1, Math.min(4, Math.floor(Math.log10(Math.max(10, Math.min(histogramCount(b.baseline.histogram), histogramCount(b.filtered.histogram)))) * 2) / 2))
  const series: ChartSeries[] = [
    { name: 'no filter', cls: 'baseline', points: curve(b.baseline.histogram, xMax) },
    { name: 'this filter', cls: 'filtered', points: curve(b.filtered.histogram, xMax) },
  ]
  const ticks: ChartTick[] = [{ v: 0, label: 'min' }, { v: 1, label: 'p90' }, { v: 2, label: 'p99' }, { v: 3, label: 'p99.9' }, { v: 4, label: 'p99.99' }].filter(t => t.v <= xMax)
  const t = doc.profile.thresholds
  const hLines = []
  if (b.mode === 'paced' && t['latencyP99Factor'] !== undefined && t['latencyP99AddUs'] !== undefined) {
    const limit = b.baseline.latencyNs.p99 * t['latencyP99Factor'] + t['latencyP99AddUs'] * 1000
    hLines.push({ y: limit, label: `p99 limit ${fmtLatency(limit)}`, cls: 'limit' })
  }
  const markers = xMax >= 2
    ? [
        { x: 2, y: b.baseline.latencyNs.p99, cls: 'baseline', label: `no filter p99 ${fmtLatency(b.baseline.latencyNs.p99)}` },
        { x: 2, y: b.filtered.latencyNs.p99, cls: 'filtered', label: `this filter p99 ${fmtLatency(b.filtered.latencyNs.p99)}` },
      ]
    : []
  const chart = lineChart({
    title: `${b.workload}: latency percentiles, no filter vs this filter`,
    series, xMin: 0, xMax, xTicks: ticks, xLabel: 'percentile', yFormat: fmtLatencyTick, hLines, markers,
  })
  const row = (label: string, s: BenchmarkSide) =>
    `<tr><th>${label}</th><td class="num">${fmtLatency(s.latencyNs.p50)}</td><td class="num">${fmtLatency(s.latencyNs.p99)}${s.p99IntervalNs === undefined ? '' : ` <span class="muted iv">${fmtLatency(s.p99IntervalNs.low)}–${fmtLatency(s.p99IntervalNs.high)}</span>`}</td><td class="num">${fmtLatency(s.latencyNs.p999)}</td><td class="num">${fmtLatency(s.latencyNs.max)}</td><td class="num">${s.slices ?? '—'}</td></tr>`
  return `<div class="card" data-workload="${esc(b.workload)}">
<h3>${esc(b.workload)} <span class="muted">p99 ${p99Change(b.overhead)} vs no filter</span></h3>
${chart}
${b.judgement !== undefined && b.judgement.metric === 'p99ExcessNs' ? `<p class="overhead">${judgementText(b.judgement)}</p>` : ''}
<div class="table-scroll"><table class="mini-table"><thead><tr><th></th><th class="num">p50</th><th class="num">p99 <span class="muted iv">95 % interval</span></th><th class="num">p99.9</th><th class="num">max</th><th class="num">slices</th></tr></thead>
<tbody>${row('no filter', b.baseline)}${row('this filter', b.filtered)}</tbody></table></div>
</div>`
}

/** Percentile curve of a histogram on the "nines" axis: x = −log10(1 − p/100). */
function curve(h: HistogramData, xMax: number): [number, number][] {
  if (histogramCount(h) === 0) return []
  const points: [number, number][] = []
  const steps = Math.round(xMax / 0.05)
  for (let i = 0; i <= steps; i++) {
    const x = (i / steps) * xMax
    points.push([x, histogramPercentile(h, 100 * (1 - 10 ** -x))])
  }
  return points
}

function benchmarkTable(benchmarks: readonly BenchmarkResult[]): string {
  const rows = benchmarks.map(b => `<tr>
<th>${esc(b.workload)}</th><td>${esc(b.mode ?? '')}</td>
<td class="num">${fmtInt(b.baseline.iops)}</td><td class="num">${fmtInt(b.filtered.iops)}</td><td class="num">${b.reference === undefined ? '—' : fmtInt(b.reference.iops)}</td>
<td class="num">${fmtMbps(b.filtered.mbps)}</td>
<td class="num">${fmtLatency(b.baseline.latencyNs.p99)}</td><td class="num">${fmtLatency(b.filtered.latencyNs.p99)}</td>
<td class="num">${b.mode === 'paced' ? '<span class="muted" title="paced: IOPS is fixed by the load">—</span>' : iopsChange(b.overhead)}</td><td class="num">${p99Change(b.overhead)}</td>
<td>${b.judgement === undefined ? '—' : judgementShort(b.judgement)}</td>
</tr>`).join('')
  return `<h3 class="sub-h">All figures</h3>
<div class="scroll"><table class="bench" data-testid="benchmarks-table">
<thead>
<tr><th rowspan="2">Workload</th><th rowspan="2">Load</th><th class="grp" colspan="3">IOPS</th><th class="grp">MB/s</th><th class="grp" colspan="2">p99 latency</th><th class="grp" colspan="2" title="this filter's figure relative to the no-filter baseline: IOPS −6.7 % is fewer IOPS (slower), p99 +12.0 % is higher latency">Change vs no filter</th><th rowspan="2">Judged (95 % interval, slices)</th></tr>
<tr><th class="num">no filter</th><th class="num">filter</th><th class="num">reference</th><th class="num">filter</th><th class="num">no filter</th><th class="num">filter</th><th class="num">IOPS</th><th class="num">p99</th></tr>
</thead>
<tbody>${rows}</tbody></table></div>`
}

/** A judged estimate in a table cell: "0.98 [0.84, 1.12] ×12 pass", or for p99 "−35 µs [−52, −12] ×10 pass". */
function judgementShort(j: BenchmarkJudgement): string {
  const ratio = j.metric === 'iopsRatio'
  const f = (v: number | null) => (v === null ? '∞' : ratio ? v.toFixed(2) : `${v < 0 ? '−' : '+'}${fmtLatency(Math.abs(v))}`)
  return `<span class="${OUTCOME_CLASS[j.outcome]}" data-outcome="${esc(j.outcome)}">${esc(`${ratio ? `${f(j.estimate)}×` : f(j.estimate)} [${f(j.low)}, ${f(j.high)}] in ${j.slices}: ${j.outcome}`)}</span>`
}

function replicaLagCard(doc: CertReport): string {
  const lag = [...doc.replicaLag!].sort((a, b) => a.t - b.t)
  const sortedLag = lag.map(p => p.lagMs).sort((a, b) => a - b)
  const p99 = sortedLag[Math.max(0, Math.ceil(0.99 * sortedLag.length) - 1)]!
  const tMax = lag[lag.length - 1]!.t / 1000
  const step = niceStep(tMax / 6)
  const ticks: ChartTick[] = []
  for (let v = 0; v <= tMax + 1e-9; v += step) ticks.push({ v, label: `${Math.round(v * 10) / 10} s` })
  const chart = lineChart({
    title: 'Replica lag over time',
    series: [{ name: 'replica lag', cls: 'filtered', points: lag.map(p => [p.t / 1000, p.lagMs * 1e6] as const) }],
    xMin: 0, xMax: Math.max(tMax, step), xTicks: ticks, xLabel: 'time since the run began', yFormat: fmtLatencyTick, area: true,
    hLines: [{ y: p99 * 1e6, label: `p99 ${fmtLatency(p99 * 1e6)}`, cls: 'p99' }],
  })
  return `<div class="card" data-testid="replica-lag"><h3>Replica lag</h3><p class="muted note">Time from a write's completion to the guest until the recovery site applied it (${fmtInt(lag.length)} samples, max ${fmtLatency(Math.max(...sortedLag) * 1e6)}).</p>${chart}</div>`
}

function scalingCard(doc: CertReport): string {
  const pts = [...doc.scaling!].sort((a, b) => a.vms - b.vms)
  const first = pts[0]!
  const xMax = pts[pts.length - 1]!.vms
  const chart = lineChart({
    title: 'Aggregate IOPS by number of VMs',
    series: [
      { name: 'linear from one VM', cls: 'ideal', points: pts.map(p => [p.vms, (first.iops / first.vms) * p.vms] as const) },
      { name: 'measured', cls: 'filtered', points: pts.map(p => [p.vms, p.iops] as const) },
    ],
    xMin: Math.min(first.vms, 1), xMax: Math.max(xMax, 2), xTicks: pts.map(p => ({ v: p.vms, label: `${p.vms} VM${p.vms === 1 ? '' : 's'}` })),
    xLabel: 'VMs', yFormat: v => fmtInt(v),
  })
  return `<div class="card" data-testid="scaling"><h3>Scaling</h3><div class="legend"><span class="key filtered"></span>measured <span class="key ideal"></span>linear from one VM</div>${chart}
<p class="muted note">${pts.map(p => `${p.vms} VM${p.vms === 1 ? '' : 's'}: ${fmtInt(p.iops)} IOPS`).join(' · ')}</p></div>`
}

function niceStep(raw: number): number {
  const mag = 10 ** Math.floor(Math.log10(Math.max(raw, 1e-9)))
  return [1, 2, 5, 10].map(m => m * mag).find(s => s >= raw) ?? 10 * mag
}

function runSection(doc: CertReport): string {
  const f = doc.filter
  const dl = (rows: [string, string][]) => `<dl>${rows.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl>`
  const pkg = doc.package
  const filterRows: [string, string][] = [
    ['Filter id', `<code>${esc(f.id)}</code>`],
    ['Vendor', esc(f.vendor)],
    ['Name', esc(f.name)],
    ['Version', esc(f.version)],
    ['Class', esc(f.class)],
    ['Package SHA-256', `<code class="hash" data-testid="package-sha256">${esc(f.packageSha256)}</code>`],
  ]
  if (pkg !== undefined) {
    filterRows.push(['Acceptance level', esc(pkg.acceptanceLevel)])
    filterRows.push(['Package signature', pkg.signed ? 'signed' : 'unsigned'])
    if (pkg.keyFingerprint !== undefined) filterRows.push(['Package key fingerprint', `<code class="hash">${esc(pkg.keyFingerprint)}</code>`])
  }
  const o = doc.options
  const runRows: [string, string][] = [
    ['Tool', `${esc(doc.tool.name)} ${esc(doc.tool.version)}`],
    ['Started', esc(fmtDate(doc.startedAt))],
    ['Duration', esc(fmtDuration(doc.durationMs))],
    ['Seed', `<code data-testid="seed">${esc(doc.seed)}</code>`],
  ]
  if (o !== undefined) {
    const flags = [o.certified ? '--certified' : '', o.quick ? '--quick' : '', o.grep === undefined ? '' : `--grep ${o.grep}`, o.shard === undefined ? '' : `--shard ${o.shard.index}/${o.shard.count}`].filter(s => s !== '')
    runRows.push(['Options', flags.length === 0 ? 'none' : `<code>${esc(flags.join(' '))}</code>`])
  }
  runRows.push(['Report signature', doc.signature === undefined
    ? 'unsigned'
    : `Ed25519, key fingerprint <code class="hash" data-testid="signature-fingerprint">${esc(doc.signature.keyFingerprint)}</code><br><span class="muted">Check it with <code>iofcert verify</code>.</span>`])
  const envRows: [string, string][] = [
    ['Node.js', esc(doc.environment.node)],
    ['Operating system', esc(doc.environment.os)],
    ['CPUs', esc(doc.environment.cpus)],
  ]
  const noise = doc.environment.noise
  if (noise !== undefined) {
    const spreads = [noise.iopsSpreadPct === undefined ? '' : `IOPS ±${noise.iopsSpreadPct} %`, noise.p99SpreadPct === undefined ? '' : `p99 ±${noise.p99SpreadPct} %`].filter(x => x !== '').join(', ')
    envRows.push(['Machine noise', `<span data-testid="noise" data-resolvable="${noise.resolvable}">${spreads === '' ? '' : `${esc(spreads)} between slices of one side; `}${noise.resolvable ? 'the bounds are resolved at this noise' : '<b class="bad">too noisy to resolve the bounds</b>'}</span>${noise.notes.length > 0 ? `<ul class="noise-notes">${noise.notes.map(n => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}`])
  }
  const thresholds = Object.entries(doc.profile.thresholds)
  const profile = `<p class="muted">Profile <b>${esc(doc.profile.name)}</b>: the numbers every check was judged against.</p>
<dl class="thresholds" data-testid="thresholds">${thresholds.map(([k, v]) => `<div><dt><code>${esc(k)}</code></dt><dd>${esc(v)}</dd></div>`).join('')}</dl>`
  return `<section id="run" aria-labelledby="run-title">
<h2 id="run-title">Filter, run and environment</h2>
<div class="run">
<div class="card"><h3>Filter and package</h3>${dl(filterRows)}</div>
<div class="card"><h3>Run</h3>${dl(runRows)}<h3>Environment</h3>${dl(envRows)}</div>
<div class="card span"><h3>Thresholds</h3>${profile}</div>
</div>
</section>`
}

const REPORT_CSS = `
.top { background: #0d1117; color: #f0f6fc; padding: 22px 0 20px; }
.top a.back { color: #9ecbff; font-size: .9rem; text-decoration: none; display: inline-block; margin-bottom: 8px; }
.eyebrow { text-transform: uppercase; letter-spacing: .08em; font-size: .75rem; color: #9198a1; }
.top h1 { margin: .2rem 0 .3rem; font-size: 1.9rem; word-break: break-word; }
.top h1 .ver { color: #9198a1; font-weight: 400; }
.top .sub { color: #d1d7e0; font-size: .92rem; }
.top code { color: #f0f6fc; }
.tag { border: 1px solid #3d444d; border-radius: 4px; padding: 0 .35rem; font-size: .8rem; }
.verdict { margin: 22px 0 8px; padding: 18px 20px; border-radius: 10px; border: 1px solid; }
.verdict.is-ready { background: var(--ok-bg); border-color: #aceebb; }
.verdict.is-not-ready { background: var(--bad-bg); border-color: #ffcecb; }
.verdict-head { display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between; gap: 10px 20px; }
.verdict-word { font-size: 1.8rem; font-weight: 700; }
.is-ready .verdict-word { color: var(--ok); }
.is-not-ready .verdict-word { color: var(--bad); }
.chips { display: flex; flex-wrap: wrap; gap: 6px; }
.chip { background: #fff; border: 1px solid var(--line); border-radius: 999px; padding: .15rem .65rem; font-size: .88rem; white-space: nowrap; }
.chip b { font-variant-numeric: tabular-nums; }
.chip.passed b { color: var(--ok); } .chip.failed b { color: var(--bad); } .chip.skipped b { color: var(--warn); } .chip.errored b { color: var(--err); }
.lead { margin: .8rem 0 .3rem; font-weight: 600; }
.reasons { margin: .2rem 0 0; padding-left: 1.4rem; }
.reasons li { margin: .3rem 0; word-break: break-word; }
.optional { margin: .7rem 0 0; font-size: .9rem; }
.toolbar { display: flex; flex-wrap: wrap; gap: 6px; margin: 0 0 10px; }
.toolbar button { border: 1px solid var(--line); background: var(--soft); border-radius: 6px; padding: .3rem .7rem; cursor: pointer; color: var(--fg); }
.toolbar button[aria-pressed="true"] { background: var(--fg); color: #fff; border-color: var(--fg); }
.toolbar button:disabled { opacity: .45; cursor: default; }
.toolbar button .n { font-variant-numeric: tabular-nums; opacity: .8; }
.toolbar .expand { margin-left: auto; background: #fff; }
table.checks { table-layout: auto; }
.checks .c-status { width: 6.5rem; }
.checks .c-time { width: 5rem; color: var(--muted); }
.suite-row th { background: var(--soft); font-size: .95rem; padding-top: .6rem; }
.suite-name { text-transform: capitalize; margin-right: .5rem; }
.mini { font-size: .78rem; font-weight: 500; margin-right: .3rem; }
.mini.passed { color: var(--ok); } .mini.failed { color: var(--bad); } .mini.skipped { color: var(--warn); } .mini.errored { color: var(--err); }
tr.check.failed { background: #fff8f7; } tr.check.errored { background: #fdf8ff; }
.cid code { font-weight: 600; word-break: break-word; }
.opt { font-size: .72rem; text-transform: uppercase; letter-spacing: .04em; margin-left: .4rem; color: var(--accent); border: 1px solid #b6d7ff; border-radius: 4px; padding: 0 .3rem; }
.ctitle { color: var(--muted); font-size: .92rem; }
.msg { margin-top: .35rem; padding: .35rem .6rem; border-left: 3px solid; font-size: .92rem; word-break: break-word; }
.msg.failed { border-color: var(--bad); background: var(--bad-bg); }
.msg.errored { border-color: var(--err); background: var(--err-bg); }
.msg.skipped { border: 0; padding: 0; margin-top: .1rem; color: var(--warn); font-style: italic; }
.msg.passed { border-color: var(--line); color: var(--muted); }
details.evidence { margin-top: .35rem; }
.schedule { margin-top: .4rem; font-size: .88rem; }
.schedule-title { font-weight: 600; }
.schedule ol { margin: .2rem 0 0 1.4rem; padding: 0; }
.schedule li.failed-step { color: var(--bad); }
details.evidence summary { cursor: pointer; color: var(--accent); font-size: .88rem; }
details.evidence table.kv { margin-top: .35rem; background: var(--soft); border: 1px solid var(--line); border-radius: 6px; border-collapse: separate; border-spacing: 0; font-size: .85rem; }
.kv th, .kv td { border-bottom: 1px solid #e6eaef; padding: .3rem .55rem; }
.kv tr:last-child th, .kv tr:last-child td { border-bottom: 0; }
.kv th { width: 1%; white-space: nowrap; font-weight: 500; color: var(--muted); }
.kv .sv { word-break: break-word; }
.kv pre { margin: 0; overflow: auto; max-height: 20rem; font: .8rem/1.45 var(--mono); white-space: pre-wrap; word-break: break-word; }
.cause { margin-top: .35rem; font-size: .92rem; word-break: break-word; }
.rerun { margin-top: .35rem; font-size: .85rem; }
.cause-label { font-weight: 600; }
.rerun pre { margin: .15rem 0 0; padding: .3rem .55rem; background: var(--soft); border: 1px solid var(--line); border-radius: 6px; white-space: pre-wrap; overflow-wrap: anywhere; }
/* one click selects the whole command; a long one wraps on screen but copies as one line */
.rerun code { font-size: .8rem; user-select: all; -webkit-user-select: all; }
details.logs { margin-top: .35rem; }
details.logs summary { cursor: pointer; color: var(--accent); font-size: .88rem; }
.log-scroll { margin-top: .35rem; max-height: 24rem; overflow: auto; border: 1px solid var(--line); border-radius: 6px; background: var(--soft); }
/* fixed layout: a long log line wraps in its cell and never widens the checks table */
table.log { font-size: .8rem; table-layout: fixed; }
table.log th, table.log td { padding: .15rem .45rem; border-bottom: 1px solid #e6eaef; overflow-wrap: anywhere; }
table.log thead th { position: sticky; top: 0; font-size: .72rem; }
table.log th:nth-child(1) { width: 5.2rem; } table.log th:nth-child(2) { width: 8rem; } table.log th:nth-child(3) { width: 3.8rem; }
table.log pre { margin: 0; font: .8rem/1.4 var(--mono); white-space: pre-wrap; word-break: break-word; }
table.log tr.lvl-error { background: var(--bad-bg); } table.log tr.lvl-warn { background: var(--warn-bg); }
.lvl { font-size: .72rem; text-transform: uppercase; letter-spacing: .03em; }
.lvl.error { color: var(--bad); font-weight: 600; } .lvl.warn { color: var(--warn); font-weight: 600; } .lvl.debug { color: var(--muted); }
.log-dropped, .log-none { margin: .3rem 0 0; font-size: .82rem; }
.sub-h { font-size: 1.05rem; margin: 1.6rem 0 .3rem; }
.note { margin: .2rem 0 .8rem; font-size: .9rem; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 14px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; background: #fff; min-width: 0; }
.bar-row { margin: 8px 0; font-size: .88rem; }
.bar-text { display: flex; justify-content: space-between; gap: 8px; margin-bottom: 2px; }
.bar-text > span:first-child { white-space: nowrap; }
.bar-track { display: block; background: var(--soft); border-radius: 4px; height: 14px; overflow: hidden; }
.bar { display: block; height: 100%; border-radius: 4px; }
.bar.baseline { background: var(--base); } .bar.reference { background: #a0a9b3; } .bar.filtered { background: var(--accent); }
.bar-value { text-align: right; font-variant-numeric: tabular-nums; min-width: 0; }
.overhead { margin: .5rem 0 0; font-size: .88rem; }
.bar-track { position: relative; }
.whisker { position: absolute; top: 5px; height: 4px; border-left: 2px solid var(--fg); border-right: 2px solid var(--fg); background: rgba(31, 35, 40, .45); box-sizing: border-box; min-width: 4px; }
.warn { color: var(--warn); font-weight: 600; }
.marginal { display: inline-block; margin-left: .3rem; font-size: .72rem; text-transform: uppercase; letter-spacing: .04em; color: var(--warn); border: 1px solid var(--warn); border-radius: 4px; padding: 0 .3rem; }
.marginal-note { margin: .7rem 0 0; font-size: .9rem; }
.noise-notes { margin: .2rem 0 0; padding-left: 1.1rem; font-size: .85rem; color: var(--muted); }
.good { color: var(--ok); font-weight: 600; } .bad { color: var(--bad); font-weight: 600; }
.legend { font-size: .88rem; margin: 0 0 8px; color: var(--muted); }
.key { display: inline-block; width: 18px; height: 3px; vertical-align: middle; margin: 0 4px 0 10px; background: var(--base); }
.key:first-child { margin-left: 0; }
.key.filtered { background: var(--accent); } .key.limit { background: repeating-linear-gradient(90deg, var(--bad) 0 4px, transparent 4px 7px); } .key.ideal { background: repeating-linear-gradient(90deg, #a0a9b3 0 4px, transparent 4px 7px); }
svg.chart { width: 100%; height: auto; display: block; }
svg.chart .grid { stroke: #eaeef2; stroke-width: 1; }
svg.chart .axis { stroke: #8c959f; stroke-width: 1; }
svg.chart .tick { fill: var(--muted); font-size: 11px; font-family: inherit; }
svg.chart .axis-label { fill: var(--muted); font-size: 11px; }
svg.chart .line { fill: none; stroke-width: 2; stroke-linejoin: round; }
svg.chart .line.baseline { stroke: var(--base); } svg.chart .line.filtered { stroke: var(--accent); }
svg.chart .line.ideal { stroke: #a0a9b3; stroke-dasharray: 5 4; stroke-width: 1.5; }
svg.chart .area.filtered { fill: var(--accent); fill-opacity: .12; stroke: none; }
svg.chart .marker { stroke: #fff; stroke-width: 1.5; }
svg.chart .marker.baseline { fill: var(--base); } svg.chart .marker.filtered { fill: var(--accent); }
svg.chart .hline { stroke-width: 1.2; stroke-dasharray: 5 4; }
svg.chart .hline.limit { stroke: var(--bad); } svg.chart .hline.p99 { stroke: var(--warn); }
svg.chart .hline-label { font-size: 11px; font-weight: 600; }
svg.chart .hline-label.limit { fill: var(--bad); } svg.chart .hline-label.p99 { fill: var(--warn); }
.mini-table { margin-top: 6px; font-size: .85rem; }
.mini-table th, .mini-table td { padding: .2rem .4rem; }
.mini-table thead th { background: none; text-transform: none; letter-spacing: 0; }
.mini-table th { white-space: nowrap; }
.mini-table .iv { display: block; font-size: .78rem; }
.table-scroll { overflow-x: auto; }
table.bench { font-size: .88rem; }
table.bench th, table.bench td { white-space: nowrap; }
table.bench thead th { text-transform: none; letter-spacing: 0; font-size: .82rem; vertical-align: bottom; }
table.bench thead th.grp { text-align: center; border-bottom: 1px solid var(--line); color: var(--fg); }
.run { display: grid; grid-template-columns: 1.25fr 1fr; gap: 14px; }
.run .span { grid-column: 1 / -1; }
.run dl { margin: 0 0 .6rem; display: grid; grid-template-columns: 10.5rem 1fr; gap: .25rem .8rem; font-size: .9rem; }
.run dl.thresholds { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: .2rem 1.6rem; }
.thresholds div { display: flex; justify-content: space-between; align-items: baseline; border-bottom: 1px dotted var(--line); padding: .1rem 0; }
.thresholds dd { margin: 0; font-family: var(--mono); font-size: .88rem; }
.run dt { color: var(--muted); }
.run dd { margin: 0; min-width: 0; overflow-wrap: break-word; }
.run h3 + dl, .run h3 + p { margin-top: .4rem; }
.run .card h3:not(:first-child) { margin-top: .9rem; }
code.hash { font-size: .78rem; word-break: break-all; }
.foot { margin: 2.5rem 0 2rem; font-size: .82rem; border-top: 1px solid var(--line); padding-top: .8rem; }
@media (max-width: 640px) {
  .top h1 { font-size: 1.45rem; }
  .verdict { padding: 14px; }
  .verdict-word { font-size: 1.5rem; }
  .checks .c-status { width: auto; }
  .checks .c-time { display: none; }
  .toolbar .expand { margin-left: 0; }
  .grid { grid-template-columns: 1fr; }
  .bar-row { font-size: .82rem; }
  .run { grid-template-columns: 1fr; }
  .run dl { grid-template-columns: 1fr; gap: 0; }
  .run dl.thresholds { grid-template-columns: 1fr; }
  /* a log line reads as "time where level" over its message */
  table.log thead { display: none; }
  table.log, table.log tbody, table.log tr { display: block; }
  table.log tr { padding: .2rem .45rem; border-bottom: 1px solid #e6eaef; }
  table.log td { display: inline; padding: 0 .5rem 0 0; border: 0; }
  table.log td:last-child { display: block; padding: 0; }
  /* Charts shrink to the screen; larger user-unit text keeps their labels readable. */
  svg.chart .tick, svg.chart .axis-label, svg.chart .hline-label { font-size: 15px; }
  .run dd { margin-bottom: .35rem; }
}
@media print {
  .top { background: none; color: #000; padding: 0 0 8px; border-bottom: 2px solid #000; }
  .top .sub, .eyebrow, .top h1 .ver, .top code { color: #333; }
  tr.check[hidden], tbody.suite[hidden] { display: table-row-group !important; }
  tr.check[hidden] { display: table-row !important; }
  .kv pre { max-height: none; overflow: visible; }
  .log-scroll { max-height: none; overflow: visible; }
  .grid { grid-template-columns: 1fr 1fr; }
  .card { border-color: #bbb; }
  .run { grid-template-columns: 1fr 1fr; }
  tr.check.failed, tr.check.errored { background: none; }
}
`

// Filtering by status, expanding evidence and filter logs, and opening every <details> when printing.
const REPORT_JS = `(function () {
  var rows = Array.prototype.slice.call(document.querySelectorAll('tr.check'));
  var suites = Array.prototype.slice.call(document.querySelectorAll('tbody.suite'));
  var buttons = Array.prototype.slice.call(document.querySelectorAll('[data-filter]'));
  var empty = document.querySelector('#checks .empty');
  function show(status) {
    var shown = 0;
    rows.forEach(function (r) { var on = status === 'all' || r.getAttribute('data-status') === status; r.hidden = !on; if (on) shown++; });
    suites.forEach(function (s) { s.hidden = !s.querySelector('tr.check:not([hidden])'); });
    buttons.forEach(function (b) { b.setAttribute('aria-pressed', String(b.getAttribute('data-filter') === status)); });
    if (empty) empty.hidden = shown > 0;
  }
  buttons.forEach(function (b) { b.addEventListener('click', function () { show(b.getAttribute('data-filter')); }); });
  var expand = document.querySelector('[data-expand]');
  if (expand) expand.addEventListener('click', function () {
    var all = document.querySelectorAll('details.evidence, details.logs');
    var open = Array.prototype.some.call(all, function (d) { return !d.open; });
    Array.prototype.forEach.call(all, function (d) { d.open = open; });
    expand.textContent = open ? 'Collapse all evidence' : 'Expand all evidence';
  });
  Array.prototype.forEach.call(document.querySelectorAll('[data-goto]'), function (a) {
    a.addEventListener('click', function () {
      var row = document.getElementById('check-' + a.getAttribute('data-goto'));
      if (!row) return;
      if (row.hidden) show('all');
      Array.prototype.forEach.call(row.querySelectorAll('details.evidence, details.logs'), function (d) { d.open = true; });
    });
  });
  window.addEventListener('beforeprint', function () {
    Array.prototype.forEach.call(document.querySelectorAll('details'), function (d) { d.open = true; });
  });
})();`
