/**
 * Merging the shards of one certification run (`--shard i/n`) into the report of the whole
 * catalogue. Percentiles are recomputed from merged histograms, never averaged.
 */
import type { BenchmarkResult, BenchmarkSide, CertReport, CheckResult, Overhead } from './document.js'
import { ReportInvalid, ReportMergeConflict } from './errors.js'
import { histogramCount, mergeHistograms, summarizeHistogram } from './histogram.js'
import { noiseFromChecks } from './noise.js'
import { canonicalJson } from './sign.js'
import { validateReport } from './validate.js'
import { computeVerdict, countChecks } from './verdict.js'

/** The order in which reports list suites; a suite not named here comes after, by name. */
export const SUITE_ORDER: readonly string[] = [
  'package', 'ordering', 'integrity', 'isolation', 'exclusivity', 'lifecycle', 'events', 'replication', 'cache', 'performance',
]

/** Sort key of a suite in SUITE_ORDER. */
export function suiteRank(suite: string): number {
  const i = SUITE_ORDER.indexOf(suite)
  return i === -1 ? SUITE_ORDER.length : i
}

/** The filter's cost against the baseline: positive percentages mean slower with the filter. */
export function computeOverhead(baseline: BenchmarkSide, filtered: BenchmarkSide): Overhead {
  const pct = (num: number, den: number) => (den === 0 ? 0 : Math.round((num / den) * 100 * 100) / 100)
  return {
    iopsPct: pct(baseline.iops - filtered.iops, baseline.iops),
    p99Pct: pct(filtered.latencyNs.p99 - baseline.latencyNs.p99, baseline.latencyNs.p99),
  }
}

/**
 * Merges the shards of one run: same filter, package, seed, profile, tool and options, and —
 * when they carry `options.shard` — every shard 1…n exactly once. Checks are united (a check
 * present in two shards must have the same result), the verdict is recomputed over all of
 * them, benchmarks of one workload are merged through their histograms, durations are summed
 * and `startedAt` is the earliest. The result is unsigned. Throws `ReportMergeConflict`.
 */
export function mergeReports(docs: readonly CertReport[]): CertReport {
  if (docs.length === 0) throw ReportMergeConflict('no reports given')
  const sorted = [...docs].sort((a, b) => Date.parse(a.startedAt) - Date.parse(b.startedAt))
  const first = sorted[0]!
  for (const d of docs) sameRun(first, d)
  checkShards(docs)

  const checks = uniteChecks(docs)
  const certified = first.options?.certified ?? false
  const { verdict, reasons } = computeVerdict(checks, { certified })
  const { signature: _unsigned, ...base } = first
  const merged: CertReport = {
    ...base,
    durationMs: docs.reduce((s, d) => s + d.durationMs, 0),
    startedAt: first.startedAt,
    verdict,
    reasons,
    counts: countChecks(checks),
    checks,
    benchmarks: mergeBenchmarks(docs),
  }
  if (first.options !== undefined) {
    const { shard: _whole, ...options } = first.options
    merged.options = options
  }
  const lag = docs.flatMap(d => d.replicaLag ?? [])
  if (lag.length > 0) merged.replicaLag = lag.sort((a, b) => a.t - b.t)
  else delete merged.replicaLag
  const scaling = docs.find(d => d.scaling !== undefined)?.scaling
  if (scaling !== undefined) merged.scaling = scaling
  // the noise as the performance checks of whichever shard ran them measured it
  const noise = noiseFromChecks(checks) ?? docs.find(d => d.environment.noise !== undefined)?.environment.noise
  if (noise !== undefined) merged.environment = { ...merged.environment, noise }
  const pkg = docs.find(d => d.package !== undefined)?.package
  if (pkg !== undefined) merged.package = pkg

  const valid = validateReport(merged)
  if (!valid.ok) throw ReportInvalid(valid.errors, 'the merged report')
  return merged
}

function sameRun(a: CertReport, b: CertReport): void {
  const fields: [string, (r: CertReport) => unknown][] = [
    ['filter', r => r.filter],
    ['seed', r => r.seed],
    ['profile', r => r.profile],
    ['tool', r => r.tool],
    ['options.quick', r => r.options?.quick ?? false],
    ['options.certified', r => r.options?.certified ?? false],
    ['options.grep', r => r.options?.grep ?? null],
  ]
  for (const [name, get] of fields) {
    const x = canonicalJson(get(a))
    const y = canonicalJson(get(b))
    if (x !== y) throw ReportMergeConflict(`${name} differs between shards (${x} vs ${y})`)
  }
}

function checkShards(docs: readonly CertReport[]): void {
  const shards = docs.map(d => d.options?.shard)
  if (shards.every(s => s === undefined)) return
  if (shards.some(s => s === undefined)) throw ReportMergeConflict('some reports are shards (options.shard) and some are not')
  const count = shards[0]!.count
  const seen = new Set<number>()
  for (const s of shards) {
    if (s!.count !== count) throw ReportMergeConflict(`shard counts differ (${count} vs ${s!.count})`)
    if (seen.has(s!.index)) throw ReportMergeConflict(`shard ${s!.index}/${count} given twice`)
    seen.add(s!.index)
  }
  const missing: string[] = []
  for (let i = 1; i <= count; i++) if (!seen.has(i)) missing.push(`${i}/${count}`)
  if (missing.length > 0) throw ReportMergeConflict(`missing shard(s) ${missing.join(', ')}: the merged verdict must cover the whole catalogue`)
}

function uniteChecks(docs: readonly CertReport[]): CheckResult[] {
  const byId = new Map<string, CheckResult>()
  for (const d of docs) {
    for (const c of d.checks) {
      const prev = byId.get(c.id)
      if (prev === undefined) {
        byId.set(c.id, c)
      } else if (resultKey(prev) !== resultKey(c)) {
        throw ReportMergeConflict(`check ${c.id} appears twice with different results (${prev.status} vs ${c.status})`)
      }
    }
  }
  // Stable sort: suites in report order, checks of one suite in the order the shards gave them.
  return [...byId.values()].sort((a, b) => suiteRank(a.suite) - suiteRank(b.suite) || (suiteRank(a.suite) === SUITE_ORDER.length ? a.suite.localeCompare(b.suite) : 0))
}

function resultKey(c: CheckResult): string {
  return canonicalJson({ required: c.required, status: c.status, marginal: c.marginal === true, message: c.message ?? null, evidence: c.evidence ?? null })
}

function mergeBenchmarks(docs: readonly CertReport[]): BenchmarkResult[] {
  const groups = new Map<string, BenchmarkResult[]>()
  for (const d of docs) {
    for (const b of d.benchmarks) {
      const key = `${b.workload}\u0000${b.mode ?? ''}`
      const list = groups.get(key)
      if (list === undefined) groups.set(key, [b])
      else list.push(b)
    }
  }
  return [...groups.values()].map(list => {
    if (list.length === 1) return list[0]!
    const baseline = mergeSides(list.map(b => b.baseline))
    const filtered = mergeSides(list.map(b => b.filtered))
    const merged: BenchmarkResult = { workload: list[0]!.workload, baseline, filtered, overhead: computeOverhead(baseline, filtered) }
    if (list[0]!.mode !== undefined) merged.mode = list[0]!.mode
    const refs = list.flatMap(b => (b.reference === undefined ? [] : [b.reference]))
    if (refs.length > 0) merged.reference = mergeSides(refs)
    return merged
  })
}

/**
 * Merges measurements of one side of one workload taken in several shards. Rates are weighted
 * by the time each was measured (runtimeMs, or I/O count ÷ IOPS when absent), so the merged
 * IOPS is the total I/O over the total measured time; latency comes from the merged histogram.
 */
function mergeSides(sides: readonly BenchmarkSide[]): BenchmarkSide {
  const histogram = mergeHistograms(sides.map(s => s.histogram))
  const runtimes = sides.map(s => s.runtimeMs ?? (s.iops > 0 ? (histogramCount(s.histogram) / s.iops) * 1000 : 0))
  const totalMs = runtimes.reduce((a, b) => a + b, 0)
  const weighted = (get: (s: BenchmarkSide) => number) =>
    totalMs > 0
      ? sides.reduce((acc, s, i) => acc + get(s) * runtimes[i]!, 0) / totalMs
      : sides.reduce((acc, s) => acc + get(s), 0) / sides.length
  const side: BenchmarkSide = {
    iops: round2(weighted(s => s.iops)),
    mbps: round2(weighted(s => s.mbps)),
    latencyNs: summarizeHistogram(histogram),
    histogram,
  }
  if (totalMs > 0) side.runtimeMs = round2(totalMs)
  return side
}

function round2(x: number): number {
  return Math.round(x * 100) / 100
}
