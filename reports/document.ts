/**
 * The report document: the one source of truth of a certification run. HTML, JUnit, the
 * console table and the published listing are all rendered from it, and `report.schema.json`
 * describes exactly these types.
 */
import type { HistogramData, HistogramSummary as LatencySummary } from '../harness/base/histogram.js'

/** The report format's major version; readers accept documents of the same major. */
export const SCHEMA_VERSION = 1 as const

/** How one check ended. */
export type CheckStatus = 'passed' | 'failed' | 'skipped' | 'errored'

/** All statuses, in the order reports show them. */
export const CHECK_STATUSES: readonly CheckStatus[] = ['passed', 'failed', 'skipped', 'errored']

/** The verdict of a run: `ready` iff every required check passed. */
export type Verdict = 'ready' | 'not-ready'

/** Free-form JSON a check attaches to explain its result (seed, offsets, bytes, timings). */
export type Evidence = Record<string, unknown>

/** The result of one check of the catalogue. */
export interface CheckResult {
  /** Stable public id, `suite.name`. */
  id: string
  suite: string
  title: string
  /** Whether the check counts for the `ready` verdict. */
  required: boolean
  status: CheckStatus
  durationMs: number
  /** What a vendor can act on (failed, errored) or why it did not apply (skipped). */
  message?: string
  evidence?: Evidence
  /**
   * A passed performance check whose interval still straddled its bound when the sampling budget
   * was spent: the evidence could not tell, so it passes, and the reports say so. Never set on
   * another status; absent means false.
   */
  marginal?: boolean
  /**
   * What the check's observations point to, when it can tell (a failed or errored check only):
   * e.g. "the filter completed 12 flushes itself instead of passing them down".
   */
  cause?: string
  /**
   * The filter's own log lines from the check's VMs and host daemons, oldest first, at most
   * `MAX_CHECK_LOG_LINES` (a failed or errored check only); `logsDropped` counts the rest.
   */
  logs?: FilterLogLine[]
  /** Log lines of the check's filters not kept in `logs` (over the bound, or rate-limited in the worker). */
  logsDropped?: number
}

/** The most log lines a check result keeps. */
export const MAX_CHECK_LOG_LINES = 200

/** One line a filter logged (through its `log` of the ABI) while a check ran. */
export interface FilterLogLine {
  /** Milliseconds since the check started. */
  t: number
  /** Where it was logged: the VM's name, or `daemon@<host>` for a host daemon. */
  where: string
  /** The logger's source (the filter's id, or `<id>/daemon`). */
  source: string
  level: 'debug' | 'info' | 'warn' | 'error'
  msg: string
}

/**
 * Latency summary of one side of a benchmark, recomputed from its histogram; and the serialized
 * histogram, sparse (`bucketNs[i]` the inclusive upper bound of a non-empty bucket, `counts[i]` its
 * count, ascending), which merges by adding the counts of equal bounds. Both are the ground
 * floor's (harness/base/histogram.ts), the one bucket layout of the bench and the reports.
 */
export type { HistogramData, LatencySummary }

/** One side (no filter, with the filter, or the reference filter) of a benchmark. */
export interface BenchmarkSide {
  iops: number
  /** Throughput in MB/s (10^6 bytes per second). */
  mbps: number
  latencyNs: LatencySummary
  histogram: HistogramData
  /** How long this side was measured; lets merged shards weight their rates by time. */
  runtimeMs?: number
  /** Slices this side was measured in (the figures above are over all of them). */
  slices?: number
  /** 95 % interval of the side's IOPS (its mean over slices), by resampling slices. */
  iopsInterval?: { low: number; high: number }
  /** 95 % interval of the side's p99 (from merged histograms), by resampling slices, ns. */
  p99IntervalNs?: { low: number; high: number }
  /** Slice-to-slice spread of the side's IOPS (saturation) or p99 (paced), % (1.4826 × MAD of the logs). */
  spreadPct?: number
}

/**
 * How a check judged one workload: an estimate with its interval against the bound.
 * `iopsRatio`: filter / reference IOPS, must stay ≥ `bound`. `p99ExcessNs`: the filter's p99
 * minus its limit (baseline p99 × factor + add), must stay ≤ `bound` (0).
 */
export interface BenchmarkJudgement {
  metric: 'iopsRatio' | 'p99ExcessNs'
  estimate: number
  /** null: no finite bound (too few slices for an interval, e.g. after the first slices failed). */
  low: number | null
  high: number | null
  /** The confidence the interval achieves (0.95, or a little more for the exact small-sample ones). */
  confidence: number
  bound: number
  /** `pass`/`fail`: the interval lies wholly on one side; `marginal`: across the bound when the budget was spent (a pass). */
  outcome: 'pass' | 'fail' | 'marginal'
  /** Rounds of slices taken (each side one slice a round), and the most the budget allowed. */
  slices: number
  budget: number
}

/** Cost of the filter against the no-filter baseline; positive means the filter is slower. */
export interface Overhead {
  /** (baseline IOPS − filtered IOPS) / baseline IOPS × 100. */
  iopsPct: number
  /** (filtered p99 − baseline p99) / baseline p99 × 100. */
  p99Pct: number
}

/** One standard workload measured without and with the filter. */
export interface BenchmarkResult {
  /** Workload name, e.g. `4k-randread`. */
  workload: string
  /** `saturation` (queue depth 32, for IOPS) or `paced` (for latency). */
  mode?: 'saturation' | 'paced'
  baseline: BenchmarkSide
  filtered: BenchmarkSide
  /** The bundled reference filter of the same class, measured in the same run. */
  reference?: BenchmarkSide
  overhead: Overhead
  /** The check's judgement of this workload, when a check judged it. */
  judgement?: BenchmarkJudgement
}

/** One point of the replica-lag series of a replication filter (`t` ms since the run began). */
export interface ReplicaLagPoint {
  t: number
  lagMs: number
}

/** One point of the `performance.scaling` curve: aggregate IOPS at a VM count. */
export interface ScalingPoint {
  vms: number
  iops: number
}

/** The Ed25519 signature of a report over the canonical JSON of the rest of the document. */
export interface ReportSignature {
  algorithm: 'ed25519'
  /** Base64 of the public key's SPKI DER. */
  publicKey: string
  /** SHA-256 hex of the public key's SPKI DER. */
  keyFingerprint: string
  /** Base64 signature. */
  value: string
}

/** Per-status check counts. */
export interface CheckCounts {
  passed: number
  failed: number
  skipped: number
  errored: number
  total: number
}

/** The sandbox vendor code ran in (or its absence), as the harness recorded it. */
export interface SandboxRecord {
  /** `bwrap`: an OS sandbox (bubblewrap) held the subject process; `none`: no OS sandbox. */
  kind: 'bwrap' | 'none'
  version?: string
  /** The layers that held vendor code, outermost first. */
  layers: string[]
  /** Why there was no OS sandbox. */
  reason?: string
  /** Subject processes that died, overran or were stopped during the run, and why. */
  incidents?: string[]
}

/** The machine's noise as the performance checks measured it during the run. */
export interface NoiseRecord {
  /** Slice-to-slice spread of one side's IOPS at saturation, % (median over workloads and sides). */
  iopsSpreadPct?: number
  /** Slice-to-slice spread of the no-filter p99 at the paced load, % (median over workloads). */
  p99SpreadPct?: number
  /** Whether the sampling budget can resolve the bounds at this noise. */
  resolvable: boolean
  /** What the noise means for the run and, when it is too high, what to do. */
  notes: string[]
}

/** The certification report document (schema version 1). */
export interface CertReport {
  schemaVersion: typeof SCHEMA_VERSION
  tool: { name: string; version: string }
  filter: {
    /** `${vendor}_${name}_${version}`. */
    id: string
    name: string
    vendor: string
    version: string
    class: string
    /** SHA-256 hex of the package file (or of its canonical descriptor for a directory). */
    packageSha256: string
  }
  profile: { name: string; thresholds: Record<string, number> }
  seed: number
  /** ISO 8601 date-time. */
  startedAt: string
  durationMs: number
  environment: { node: string; os: string; cpus: number; sandbox?: SandboxRecord; noise?: NoiseRecord }
  verdict: Verdict
  /** Why the verdict is `not-ready`, one line per offending check; empty when ready. */
  reasons?: string[]
  package?: { acceptanceLevel: string; signed: boolean; keyFingerprint?: string }
  options?: { quick: boolean; certified: boolean; grep?: string; shard?: { index: number; count: number }; timeoutS?: number; checkTimeoutS?: number }
  counts?: CheckCounts
  checks: CheckResult[]
  benchmarks: BenchmarkResult[]
  replicaLag?: ReplicaLagPoint[]
  scaling?: ScalingPoint[]
  signature?: ReportSignature
}
