/**
 * fio's JSON output layout (`fio --output-format=json`, fio 3.x) for bench results, so tools that
 * read fio's output read ours, and a reader of both into one summary, so a run of the real fio
 * (with its null engine) can be put beside ours.
 *
 * Our document keeps fio's key names and nesting: top-level "fio version", "timestamp",
 * "timestamp_ms", "time", "global options", "jobs" and "disk_util"; per job "jobname", "groupid",
 * "error", "job options" and a "read"/"write"/"trim" block each. Latency is measured issue →
 * completion, which fio calls lat; we also give it as clat (fio's default percentile home) and
 * report slat as zero. Per-interval bandwidth/IOPS samples (bw_min … iops_samples) are not
 * collected: they are 0 with 0 samples, as fio prints them when it has none. One entry per job
 * (its VMs merged through their histograms, as fio's group_reporting), with an "iofcert" block.
 */
import { BenchError, BenchErrorCode } from './errors.js'
import { LatencyHistogram } from './histogram.js'
import type { DirectionResult, GeneratorResult } from './generator.js'
import type { IgnoredOption, JobSpec } from './jobfile.js'
import { FIO_DEFAULT_PERCENTILES } from './jobfile.js'

/** One job's results, ready for `toFioJson`. */
export interface BenchJobResult {
  /** The job (its name, options, groups, ignored options and percentile list are used). */
  readonly spec: Pick<JobSpec, 'name' | 'groupId' | 'jobOptions' | 'ignored' | 'percentiles'> & Partial<Pick<JobSpec, 'globalOptions'>>
  /** The device the job ran on, for example "memory" or "file". */
  readonly device: string
  /** The filter chain, top to bottom (empty: the bare framework path). */
  readonly chain: readonly string[]
  /** One result per VM (copy of the job) with the chain. */
  readonly vms: readonly GeneratorResult[]
  /** The same job without the filter, when a package was benchmarked. */
  readonly baseline?: readonly GeneratorResult[]
  /** The bench pool's thread that ran the job's clusters (not written to the JSON). */
  readonly thread?: number
}

/** Document-level fields. */
export interface FioJsonMeta {
  /** iofcert's version, written as "fio version": "iofcert-<version>". */
  readonly version: string
  /** When the run started (default now). */
  readonly time?: Date
  /** "global options" (default: the first job's [global] options and overrides). */
  readonly globalOptions?: Readonly<Record<string, string>>
}

/** fio's latency statistics block (`lat_ns`, `clat_ns`, `slat_ns`). */
export interface FioLatencyBlock {
  min: number
  max: number
  mean: number
  stddev: number
  N: number
  percentile?: Record<string, number>
}

/** fio's per-direction block. */
export interface FioDirectionBlock {
  io_bytes: number
  io_kbytes: number
  bw_bytes: number
  bw: number
  iops: number
  runtime: number
  total_ios: number
  short_ios: number
  drop_ios: number
  slat_ns: FioLatencyBlock
  clat_ns: FioLatencyBlock
  lat_ns: FioLatencyBlock
  bw_min: number
  bw_max: number
  bw_agg: number
  bw_mean: number
  bw_dev: number
  bw_samples: number
  iops_min: number
  iops_max: number
  iops_mean: number
  iops_stddev: number
  iops_samples: number
}

/** The per-job block only iofcert writes. */
export interface IofcertJobBlock {
  device: string
  chain: string[]
  vms: number
  status: GeneratorResult['status']
  message?: string
  seeds: number[]
  ignoredOptions: IgnoredOption[]
  baseline?: { read: FioDirectionBlock; write: FioDirectionBlock }
  /** Cost of the chain against the baseline, positive = slower (all directions together). */
  overhead?: { iopsPct: number; p99Pct: number }
}

/** One job of the document. */
export interface FioJobEntry {
  jobname: string
  groupid: number
  error: number
  eta: number
  elapsed: number
  'job options': Record<string, string>
  read: FioDirectionBlock
  write: FioDirectionBlock
  trim: FioDirectionBlock
  sync: { total_ios: number; lat_ns: FioLatencyBlock }
  job_runtime: number
  latency_ns: Record<string, number>
  latency_us: Record<string, number>
  latency_ms: Record<string, number>
  iofcert: IofcertJobBlock
}

/** The whole document. */
export interface FioJsonDocument {
  'fio version': string
  timestamp: number
  timestamp_ms: number
  time: string
  'global options': Record<string, string>
  jobs: FioJobEntry[]
  disk_util: unknown[]
}

// errno values fio reports in "error" (Linux numbering, as fio prints them).
const ERRNO: Readonly<Record<string, number>> = { EIO: 5, EBUSY: 16, ENODEV: 19, EINVAL: 22, ENOSPC: 28, EILSEQ: 84, ETIMEDOUT: 110 }

interface Merged {
  readonly hist: LatencyHistogram
  readonly ioBytes: number
  readonly totalIos: number
  readonly runtimeMs: number
}

function mergeDirection(results: readonly GeneratorResult[], dir: 'read' | 'write'): Merged {
  const hist = new LatencyHistogram()
  let ioBytes = 0
  let totalIos = 0
  let runtimeMs = 0
  for (const r of results) {
    const d: DirectionResult = r[dir]
    hist.merge(d.latency)
    ioBytes += d.ioBytes
    totalIos += d.totalIos
    runtimeMs = Math.max(runtimeMs, d.runtimeMs)
  }
  return { hist, ioBytes, totalIos, runtimeMs }
}

const pkey = (p: number): string => p.toFixed(6)

function latencyBlock(h: LatencyHistogram, percentiles: readonly number[] | null): FioLatencyBlock {
  const block: FioLatencyBlock = { min: h.minNs, max: h.maxNs, mean: h.meanNs, stddev: h.stddevNs, N: h.count }
  if (percentiles !== null && h.count > 0) {
    const pct: Record<string, number> = {}
    for (const p of percentiles) pct[pkey(p)] = h.percentile(p)
    block.percentile = pct
  }
  return block
}

const EMPTY_LAT: FioLatencyBlock = { min: 0, max: 0, mean: 0, stddev: 0, N: 0 }

function directionBlock(m: Merged, percentiles: readonly number[]): FioDirectionBlock {
  // fio's runtime is whole milliseconds; rates use the exact one.
  const rt = m.runtimeMs
  const bwBytes = rt > 0 ? Math.round((m.ioBytes * 1000) / rt) : 0
  return {
    io_bytes: m.ioBytes,
    io_kbytes: Math.floor(m.ioBytes / 1024),
    bw_bytes: bwBytes,
    bw: Math.floor(bwBytes / 1024),
    iops: rt > 0 ? (m.totalIos * 1000) / rt : 0,
    runtime: Math.round(rt),
    total_ios: m.totalIos,
    short_ios: 0,
    drop_ios: 0,
    slat_ns: { ...EMPTY_LAT },
    clat_ns: latencyBlock(m.hist, percentiles),
    lat_ns: latencyBlock(m.hist, percentiles),
    bw_min: 0, bw_max: 0, bw_agg: 0, bw_mean: 0, bw_dev: 0, bw_samples: 0,
    iops_min: 0, iops_max: 0, iops_mean: 0, iops_stddev: 0, iops_samples: 0,
  }
}

const EMPTY_DIRECTION: Merged = { hist: new LatencyHistogram(), ioBytes: 0, totalIos: 0, runtimeMs: 0 }

// fio's latency distribution buckets: each key is the upper end of [previous key, key).
const LAT_NS = [2, 4, 10, 20, 50, 100, 250, 500, 750, 1000]
const LAT_MS = [2, 4, 10, 20, 50, 100, 250, 500, 750, 1000, 2000]

function latencyDistribution(h: LatencyHistogram): Pick<FioJobEntry, 'latency_ns' | 'latency_us' | 'latency_ms'> {
  const total = h.count
  const json = h.toJSON()
  const share = (lo: number, hi: number): number => {
    if (total === 0) return 0
    let c = 0
    for (let i = 0; i < json.bucketNs.length; i++) if (json.bucketNs[i]! >= lo && json.bucketNs[i]! < hi) c += json.counts[i]!
    return (c * 100) / total
  }
  const table = (keys: readonly number[], unit: number, floor: number): Record<string, number> => {
    const out: Record<string, number> = {}
    let lo = floor
    for (const k of keys) {
      out[String(k)] = share(lo, k * unit)
      lo = k * unit
    }
    return out
  }
  const ms = table(LAT_MS, 1e6, 1e6)
  ms['>=2000'] = share(2000e6, Infinity)
  return { latency_ns: table(LAT_NS, 1, 0), latency_us: table(LAT_NS, 1e3, 1e3), latency_ms: ms }
}

/** Renders bench results as a fio JSON document with an `iofcert` block per job. */
export function toFioJson(results: readonly BenchJobResult[], meta: FioJsonMeta): FioJsonDocument {
  const time = meta.time ?? new Date()
  const jobs = results.map((r) => jobEntry(r))
  return {
    'fio version': `iofcert-${meta.version}`,
    timestamp: Math.floor(time.getTime() / 1000),
    timestamp_ms: time.getTime(),
    time: ctime(time),
    'global options': { ...(meta.globalOptions ?? results[0]?.spec.globalOptions ?? {}) },
    jobs,
    disk_util: [],
  }
}

function jobEntry(r: BenchJobResult): FioJobEntry {
  const percentiles = r.spec.percentiles.length > 0 ? r.spec.percentiles : FIO_DEFAULT_PERCENTILES
  const read = mergeDirection(r.vms, 'read')
  const write = mergeDirection(r.vms, 'write')
  const both = new LatencyHistogram().merge(read.hist).merge(write.hist)
  const failed = r.vms.find((v): v is Exclude<GeneratorResult, { status: 'ok' }> => v.status !== 'ok')
  let error = 0
  if (failed?.status === 'io-error') error = ERRNO[failed.error.error] ?? 5
  else if (failed?.status === 'verify-failed') error = ERRNO.EILSEQ!
  else if (failed?.status === 'crashed') error = ERRNO.EIO!
  const elapsedMs = Math.max(0, ...r.vms.map((v) => v.runtimeMs))
  const block: IofcertJobBlock = {
    device: r.device,
    chain: [...r.chain],
    vms: r.vms.length,
    status: failed?.status ?? 'ok',
    ...(failed !== undefined ? { message: failed.message } : {}),
    seeds: r.vms.map((v) => v.seed),
    ignoredOptions: [...r.spec.ignored],
  }
  if (r.baseline !== undefined && r.baseline.length > 0) {
    // a side that crashed measured nothing: there is no overhead to give
    const bRead = mergeDirection(r.baseline, 'read')
    const bWrite = mergeDirection(r.baseline, 'write')
    block.baseline = { read: directionBlock(bRead, percentiles), write: directionBlock(bWrite, percentiles) }
    const iops = (m: Merged[]): number => m.reduce((s, x) => s + (x.runtimeMs > 0 ? (x.totalIos * 1000) / x.runtimeMs : 0), 0)
    const baseIops = iops([bRead, bWrite])
    const ourIops = iops([read, write])
    const baseP99 = new LatencyHistogram().merge(bRead.hist).merge(bWrite.hist).percentile(99)
    const ourP99 = both.percentile(99)
    if (failed?.status !== 'crashed') block.overhead = {
      iopsPct: baseIops > 0 ? ((baseIops - ourIops) / baseIops) * 100 : 0,
      p99Pct: baseP99 > 0 ? ((ourP99 - baseP99) / baseP99) * 100 : 0,
    }
  }
  return {
    jobname: r.spec.name,
    groupid: r.spec.groupId,
    error,
    eta: 0,
    elapsed: Math.round(elapsedMs / 1000),
    'job options': { ...r.spec.jobOptions },
    read: directionBlock(read, percentiles),
    write: directionBlock(write, percentiles),
    trim: directionBlock(EMPTY_DIRECTION, percentiles),
    sync: { total_ios: 0, lat_ns: { ...EMPTY_LAT } },
    job_runtime: Math.round(elapsedMs),
    ...latencyDistribution(both),
    iofcert: block,
  }
}

/** C's ctime() without the newline, as fio prints "time". */
function ctime(d: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat']
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
  const p2 = (n: number): string => String(n).padStart(2, '0')
  return `${days[d.getDay()]} ${months[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ${d.getFullYear()}`
}

// ---- reading fio JSON (fio's or ours) ----

/** Latency statistics of one direction, ns. */
export interface LatencySummary {
  readonly min: number
  readonly max: number
  readonly mean: number
  readonly stddev: number
  readonly n: number
  /** Percentile → ns, keyed as fio ("99.000000"). */
  readonly percentiles: Readonly<Record<string, number>>
  /**
   * Where the percentiles came from: `lat` (issue → completion; ours, or fio with
   * lat_percentiles=1) or `clat` (fio's default: completion latency, without submission).
   */
  readonly percentileSource: 'lat' | 'clat' | null
}

/** One direction of one job. */
export interface DirectionSummary {
  readonly ioBytes: number
  readonly bwBytes: number
  readonly iops: number
  readonly runtimeMs: number
  readonly totalIos: number
  readonly lat: LatencySummary
}

/** One job (one entry of fio's "jobs"). */
export interface JobSummary {
  readonly name: string
  readonly groupId: number
  readonly error: number
  readonly jobOptions: Readonly<Record<string, string>>
  readonly read: DirectionSummary
  readonly write: DirectionSummary
  /** Ours only. */
  readonly iofcert?: IofcertJobBlock
}

/** What `parseFioJson` reads from either producer. */
export interface FioSummary {
  readonly producer: 'fio' | 'iofcert'
  /** "fio-3.33" or "iofcert-0.1.0". */
  readonly version: string
  readonly globalOptions: Readonly<Record<string, string>>
  readonly jobs: readonly JobSummary[]
}

/** The value of percentile `p` in a summary, or undefined when it was not reported. */
export function percentileOf(lat: LatencySummary, p: number): number | undefined {
  return lat.percentiles[pkey(p)]
}

/**
 * Reads fio's JSON output (fio may print notices before it) or ours into a common summary.
 * Throws BenchError `FioJsonInvalid` when the text holds no fio JSON document.
 */
export function parseFioJson(text: string): FioSummary {
  const start = text.search(/^\{/m)
  if (start < 0) throw new BenchError(BenchErrorCode.FioJson, 'not fio JSON output: no JSON object found')
  let doc: unknown
  try {
    doc = JSON.parse(text.slice(start))
  } catch (err) {
    throw new BenchError(BenchErrorCode.FioJson, `not fio JSON output: ${(err as Error).message}`, { cause: err })
  }
  if (!isObject(doc) || typeof doc['fio version'] !== 'string' || !Array.isArray(doc.jobs)) {
    throw new BenchError(BenchErrorCode.FioJson, 'not fio JSON output: missing "fio version" or "jobs"')
  }
  const version = doc['fio version']
  return {
    producer: version.startsWith('iofcert-') ? 'iofcert' : 'fio',
    version,
    globalOptions: strings(doc['global options']),
    jobs: doc.jobs.map((j, i) => readJob(j, i)),
  }
}

function readJob(j: unknown, i: number): JobSummary {
  if (!isObject(j)) throw new BenchError(BenchErrorCode.FioJson, `not fio JSON output: jobs[${i}] is not an object`)
  const out: JobSummary = {
    name: typeof j.jobname === 'string' ? j.jobname : `job${i}`,
    groupId: num(j.groupid),
    error: num(j.error),
    jobOptions: strings(j['job options']),
    read: readDirection(j.read),
    write: readDirection(j.write),
    ...(isObject(j.iofcert) ? { iofcert: j.iofcert as unknown as IofcertJobBlock } : {}),
  }
  return out
}

/** Reads one direction block of fio's layout (a job's `read`, or a block of `iofcert.baseline`). */
export function readDirection(d: unknown): DirectionSummary {
  const o = isObject(d) ? d : {}
  const lat = isObject(o.lat_ns) ? o.lat_ns : {}
  const clat = isObject(o.clat_ns) ? o.clat_ns : {}
  let percentiles: Record<string, number> = {}
  let source: LatencySummary['percentileSource'] = null
  if (isObject(lat.percentile)) {
    percentiles = numbers(lat.percentile)
    source = 'lat'
  } else if (isObject(clat.percentile)) {
    percentiles = numbers(clat.percentile)
    source = 'clat'
  }
  return {
    ioBytes: num(o.io_bytes),
    bwBytes: num(o.bw_bytes),
    iops: num(o.iops),
    runtimeMs: num(o.runtime),
    totalIos: num(o.total_ios),
    lat: { min: num(lat.min), max: num(lat.max), mean: num(lat.mean), stddev: num(lat.stddev), n: num(lat.N), percentiles, percentileSource: source },
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0
}

function strings(v: unknown): Record<string, string> {
  const out: Record<string, string> = {}
  if (isObject(v)) for (const [k, x] of Object.entries(v)) out[k] = String(x)
  return out
}

function numbers(v: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [k, x] of Object.entries(v)) if (typeof x === 'number') out[k] = x
  return out
}
