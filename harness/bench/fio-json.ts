/**
 * fio's JSON output layout (`fio --output-format=json`, fio 3.33) for bench results, so tools that
 * read fio's output read ours, and a reader of both into one summary, so a run of the real fio
 * (with its null engine) can be put beside ours.
 *
 * Our document has fio's keys, nesting and order — top level "fio version", "timestamp",
 * "timestamp_ms", "time", "global options", "jobs" and "disk_util"; per job every key fio 3.33
 * writes for a job ("usr_cpu" … "latency_window") and a "read"/"write"/"trim" block each — and
 * `formatFioJson` writes it in fio's text form (fio's floats always with six decimals, so a
 * float that is zero reads `0.000000`, never `0`). What each figure means where ours differs from
 * fio's is in README.md ("fio JSON"): latency is measured issue → completion and given as both
 * clat and lat (slat has no samples, as fio's for a synchronous submission); usr_cpu … minf are
 * the whole process's. One entry per copy of a job (its VM), as fio's jobs[], or per group of
 * jobs with group_reporting, each with an "iofcert" block. With `plus` (fio's json+), each latency
 * block with percentiles also carries fio's `bins`.
 */
import { FioJsonInvalid } from './errors.js'
import { LatencyHistogram, fioBins } from './histogram.js'
import type { DirectionResult, GeneratorResult, SampleStat } from './generator.js'
import type { IgnoredOption, JobSpec } from './jobfile.js'
import { FIO_DEFAULT_PERCENTILES } from './jobfile.js'

/** One job's results, ready for `toFioJson`. */
export interface BenchJobResult {
  /** The job (its name, options, groups, ignored options and percentile list are used). */
  readonly spec: Pick<JobSpec, 'name' | 'groupId' | 'jobOptions' | 'ignored' | 'percentiles'> &
    Partial<Pick<JobSpec, 'globalOptions' | 'iodepth' | 'description' | 'percentileBlocks' | 'section' | 'groupReporting'>>
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
  /** When the document is written (default now). */
  readonly time?: Date
  /** "global options" (default: the first job's [global] options and overrides). */
  readonly globalOptions?: Readonly<Record<string, string>>
  /**
   * Wall time of the whole run so far, ms: "elapsed" is it in whole seconds, rounded up, as fio's
   * (default: the longest job's ramp and runtime).
   */
  readonly elapsedMs?: number
  /** fio's json+ (`--output-format=json+`): latency blocks with percentiles carry fio's `bins`. */
  readonly plus?: boolean
}

/** fio's latency statistics block (`lat_ns`, `clat_ns`, `slat_ns`). */
export interface FioLatencyBlock {
  min: number
  max: number
  mean: number
  stddev: number
  N: number
  percentile?: Record<string, number>
  /** json+ only: fio's latency buckets, each bucket's value in ns → its count (see `fioBins`). */
  bins?: Record<string, number>
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
  usr_cpu: number
  sys_cpu: number
  ctx: number
  majf: number
  minf: number
  iodepth_level: Record<string, number>
  iodepth_submit: Record<string, number>
  iodepth_complete: Record<string, number>
  latency_ns: Record<string, number>
  latency_us: Record<string, number>
  latency_ms: Record<string, number>
  latency_depth: number
  latency_target: number
  latency_percentile: number
  latency_window: number
  /** The job's description=, as fio. */
  desc?: string
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

/** fio's io_stat: min, max, samples, mean and S (Σ squared deviations). */
interface RateStat {
  min: number
  max: number
  samples: number
  mean: number
  S: number
}

interface Merged {
  readonly hist: LatencyHistogram
  readonly ioBytes: number
  readonly totalIos: number
  readonly runtimeMs: number
  readonly bw: RateStat
  readonly iops: RateStat
}

const emptyRate = (): RateStat => ({ min: 0, max: 0, samples: 0, mean: 0, S: 0 })

/**
 * fio's sum_stat for rates under group_reporting ("pure sum"): the copies of a job run at once, so
 * their rates add up — min, max, mean and S are summed, and so is the number of samples.
 */
function sumRate(dst: RateStat, src: SampleStat | undefined): void {
  if (src === undefined || src.samples === 0) return
  if (dst.samples === 0) Object.assign(dst, { min: src.min, max: src.max, samples: src.samples, mean: src.mean, S: src.S })
  else {
    dst.min += src.min
    dst.max += src.max
    dst.samples += src.samples
    dst.mean += src.mean
    dst.S += src.S
  }
}

function mergeDirection(results: readonly GeneratorResult[], dir: 'read' | 'write'): Merged {
  const hist = new LatencyHistogram()
  let ioBytes = 0
  let totalIos = 0
  let runtimeMs = 0
  const bw = emptyRate()
  const iops = emptyRate()
  for (const r of results) {
    const d: DirectionResult = r[dir]
    hist.merge(d.latency)
    ioBytes += d.ioBytes
    totalIos += d.totalIos
    runtimeMs = Math.max(runtimeMs, d.runtimeMs)
    sumRate(bw, d.bwStat)
    sumRate(iops, d.iopsStat)
  }
  return { hist, ioBytes, totalIos, runtimeMs, bw, iops }
}

const pkey = (p: number): string => p.toFixed(6)

/** A latency block; as fio, `bins` (json+) go with the percentiles, where there are samples. */
function latencyBlock(h: LatencyHistogram, percentiles: readonly number[] | null, plus: boolean): FioLatencyBlock {
  const block: FioLatencyBlock = { min: h.minNs, max: h.maxNs, mean: h.meanNs, stddev: h.stddevNs, N: h.count }
  if (percentiles !== null && h.count > 0) {
    const pct: Record<string, number> = {}
    for (const p of percentiles) pct[pkey(p)] = h.percentile(p)
    block.percentile = pct
    if (plus) block.bins = fioBins(h.toJSON())
  }
  return block
}

const EMPTY_LAT: FioLatencyBlock = { min: 0, max: 0, mean: 0, stddev: 0, N: 0 }

/** Which of a direction's latency blocks carry percentiles (fio's clat/lat/slat_percentiles). */
type PercentileBlocks = JobSpec['percentileBlocks']

const FIO_PERCENTILE_BLOCKS: PercentileBlocks = { slat: false, clat: true, lat: false }

/** fio's whole-millisecond runtime of a job. */
const wholeMs = (ms: number): number => Math.round(ms)
/** fio's runtime of a direction: whole milliseconds, rounded up (an instant job ran 1 ms). */
const directionMs = (ms: number): number => Math.ceil(ms)

/**
 * One direction. `aggBytesPerS` is the rate of the job's whole group in this direction (fio's
 * group aggregate), for `bw_agg`: the share of it the job's mean bandwidth sample is.
 */
function directionBlock(m: Merged, percentiles: readonly number[], blocks: PercentileBlocks, aggBytesPerS: number, plus = false): FioDirectionBlock {
  const rt = m.totalIos > 0 ? Math.max(1, directionMs(m.runtimeMs)) : 0
  // as fio: integer bytes/s over whole milliseconds, KiB/s from it, IOPS a float
  const bwBytes = rt > 0 ? Math.floor((m.ioBytes * 1000) / rt) : 0
  const dev = (s: RateStat): number => (s.samples > 1 ? Math.sqrt(s.S / (s.samples - 1)) : 0)
  let agg = 0
  if (m.bw.samples > 0) {
    agg = 100
    if (aggBytesPerS > 1024) agg = Math.min(100, (Math.trunc(m.bw.mean) * 100) / (aggBytesPerS / 1024))
  }
  return {
    io_bytes: m.ioBytes,
    io_kbytes: Math.floor(m.ioBytes / 1024),
    bw_bytes: bwBytes,
    bw: Math.floor(bwBytes / 1024),
    iops: rt > 0 ? (m.totalIos * 1000) / rt : 0,
    runtime: rt,
    total_ios: m.totalIos,
    short_ios: 0,
    drop_ios: 0,
    // slat is not measured (README.md, "fio JSON"): no samples, as fio for a synchronous submission
    slat_ns: { ...EMPTY_LAT },
    clat_ns: latencyBlock(m.hist, blocks.clat ? percentiles : null, plus),
    lat_ns: latencyBlock(m.hist, blocks.lat ? percentiles : null, plus),
    bw_min: m.bw.min,
    bw_max: m.bw.max,
    bw_agg: agg,
    bw_mean: m.bw.mean,
    bw_dev: dev(m.bw),
    bw_samples: m.bw.samples,
    iops_min: m.iops.min,
    iops_max: m.iops.max,
    iops_mean: m.iops.mean,
    iops_stddev: dev(m.iops),
    iops_samples: m.iops.samples,
  }
}

const EMPTY_DIRECTION: Merged = { hist: new LatencyHistogram(), ioBytes: 0, totalIos: 0, runtimeMs: 0, bw: emptyRate(), iops: emptyRate() }

// fio's latency distribution buckets: each key is the upper end of [previous key, key).
const LAT_NS = [2, 4, 10, 20, 50, 100, 250, 500, 750, 1000]
const LAT_MS = [2, 4, 10, 20, 50, 100, 250, 500, 750, 1000, 2000]

/**
 * fio's latency_ns/us/ms: the share of I/Os whose latency falls in each bucket, in percent, a
 * bucket with any I/O at least 0.01 (fio's stat_calc_lat). From the merged histogram: an I/O
 * within the histogram's resolution (under 0.8 %) of a bucket's edge may count in the next one.
 */
function latencyDistribution(h: LatencyHistogram): Pick<FioJobEntry, 'latency_ns' | 'latency_us' | 'latency_ms'> {
  const total = h.count
  const json = h.toJSON()
  const share = (lo: number, hi: number): number => {
    if (total === 0) return 0
    let c = 0
    for (let i = 0; i < json.bucketNs.length; i++) if (json.bucketNs[i]! >= lo && json.bucketNs[i]! < hi) c += json.counts[i]!
    const pct = (c * 100) / total
    return c > 0 && pct < 0.01 ? 0.01 : pct
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

/** fio's stat_calc_dist: shares in percent, a bucket with anything in it at least 0.1. */
function depthDistribution(keys: readonly string[], counts: readonly number[], total: number): Record<string, number> {
  const out: Record<string, number> = {}
  keys.forEach((k, i) => {
    const c = counts[i] ?? 0
    const pct = total > 0 ? (c * 100) / total : 0
    out[k] = c > 0 && pct < 0.1 ? 0.1 : pct
  })
  return out
}

const DEPTH_KEYS = ['1', '2', '4', '8', '16', '32', '>=64']
const BATCH_KEYS = ['0', '4', '8', '16', '32', '64', '>=64']

/**
 * fio's iodepth_level (I/Os by how many were in flight when each was issued), iodepth_submit and
 * iodepth_complete (submissions and reaps by how many I/Os each carried: the framework's path
 * takes one I/O a call and reports each completion on its own, so every one is in fio's 1–4
 * bucket).
 */
function depthStats(results: readonly GeneratorResult[], ios: number): Pick<FioJobEntry, 'iodepth_level' | 'iodepth_submit' | 'iodepth_complete'> {
  const levels = new Array<number>(DEPTH_KEYS.length).fill(0)
  for (const r of results) r.depthLevels?.forEach((c, i) => (levels[i]! += c))
  const one = [0, ios, 0, 0, 0, 0, 0]
  return {
    iodepth_level: depthDistribution(DEPTH_KEYS, levels, levels.reduce((s, c) => s + c, 0)),
    iodepth_submit: depthDistribution(BATCH_KEYS, one, ios),
    iodepth_complete: depthDistribution(BATCH_KEYS, one, ios),
  }
}

/**
 * fio's usr_cpu, sys_cpu (percent of the run), ctx, majf and minf. Each VM measured the whole
 * process over its run: the CPU shares are fio's Σ time / Σ runtime over the VMs; the counts,
 * which overlapping spans of one process would count again, are the largest VM's.
 */
function cpuStats(results: readonly GeneratorResult[]): Pick<FioJobEntry, 'usr_cpu' | 'sys_cpu' | 'ctx' | 'majf' | 'minf'> {
  let user = 0, system = 0, runtime = 0, ctx = 0, majf = 0, minf = 0
  for (const r of results) {
    if (r.usage === undefined) continue
    user += r.usage.userUs / 1000
    system += r.usage.systemUs / 1000
    runtime += wholeMs(r.runtimeMs)
    ctx = Math.max(ctx, r.usage.ctx)
    majf = Math.max(majf, r.usage.majorFaults)
    minf = Math.max(minf, r.usage.minorFaults)
  }
  return { usr_cpu: runtime > 0 ? (user * 100) / runtime : 0, sys_cpu: runtime > 0 ? (system * 100) / runtime : 0, ctx, majf, minf }
}

/** Each group's rate per direction, bytes/s: Σ bytes of its jobs over its longest runtime (fio's rs->agg). */
function groupAggregates(results: readonly BenchJobResult[], side: (r: BenchJobResult) => readonly GeneratorResult[] | undefined): Map<number, { read: number; write: number }> {
  const acc = new Map<number, { read: [number, number]; write: [number, number] }>()
  for (const r of results) {
    const vms = side(r)
    if (vms === undefined) continue
    const g = acc.get(r.spec.groupId) ?? { read: [0, 0], write: [0, 0] }
    for (const dir of ['read', 'write'] as const) {
      const m = mergeDirection(vms, dir)
      g[dir][0] += m.ioBytes
      if (m.totalIos > 0) g[dir][1] = Math.max(g[dir][1], Math.max(1, directionMs(m.runtimeMs)))
    }
    acc.set(r.spec.groupId, g)
  }
  const out = new Map<number, { read: number; write: number }>()
  for (const [id, g] of acc) out.set(id, { read: g.read[1] > 0 ? Math.floor((g.read[0] * 1000) / g.read[1]) : 0, write: g.write[1] > 0 ? Math.floor((g.write[0] * 1000) / g.write[1]) : 0 })
  return out
}

/** What one entry of fio's jobs[] reports: one copy of a job, or with group_reporting a group's. */
interface ReportUnit {
  /** The first member's job (fio: the entry's name, description and group). */
  readonly first: BenchJobResult['spec']
  /** The last member's job (fio: the entry's job options, percentile settings and depth). */
  last: BenchJobResult['spec']
  readonly name: string
  readonly device: string
  readonly chain: readonly string[]
  readonly vms: GeneratorResult[]
  readonly baseline: GeneratorResult[] | undefined
  readonly ignored: IgnoredOption[]
}

/**
 * fio's entries: every copy of a job (numjobs) is an entry of its own, in job order, its copies
 * right after it (the first named after the job, the others after its section, as fio names its
 * clones); a job with group_reporting joins the entry before it when that is of the same group,
 * so a group reads as one entry (fio's __show_run_stats).
 */
function reportUnits(results: readonly BenchJobResult[]): ReportUnit[] {
  const units: ReportUnit[] = []
  for (const r of results) {
    r.vms.forEach((vm, i) => {
      const base = r.baseline === undefined ? undefined : r.baseline[i]
      const prev = units[units.length - 1]
      if (r.spec.groupReporting === true && prev !== undefined && prev.first.groupId === r.spec.groupId) {
        prev.last = r.spec
        prev.vms.push(vm)
        if (base !== undefined) prev.baseline?.push(base)
        for (const o of r.spec.ignored) if (!prev.ignored.includes(o)) prev.ignored.push(o)
        return
      }
      units.push({
        first: r.spec,
        last: r.spec,
        name: i === 0 ? r.spec.name : (r.spec.section ?? r.spec.name),
        device: r.device,
        chain: r.chain,
        vms: [vm],
        baseline: r.baseline === undefined ? undefined : base === undefined ? [] : [base],
        ignored: [...r.spec.ignored],
      })
    })
  }
  return units
}

/** Renders bench results as a fio JSON document with an `iofcert` block per entry. */
export function toFioJson(results: readonly BenchJobResult[], meta: FioJsonMeta): FioJsonDocument {
  const time = meta.time ?? new Date()
  const elapsedMs = meta.elapsedMs ?? Math.max(0, ...results.flatMap((r) => r.vms.map((v) => v.runtimeMs)))
  const aggs = groupAggregates(results, (r) => r.vms)
  const baseAggs = groupAggregates(results, (r) => r.baseline)
  const jobs = reportUnits(results).map((u) => jobEntry(u, Math.ceil(elapsedMs / 1000), aggs.get(u.first.groupId)!, baseAggs.get(u.first.groupId), meta.plus === true))
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

function jobEntry(r: ReportUnit, elapsedS: number, agg: { read: number; write: number }, baseAgg: { read: number; write: number } | undefined, plus: boolean): FioJobEntry {
  const spec = r.last
  const percentiles = spec.percentiles.length > 0 ? spec.percentiles : FIO_DEFAULT_PERCENTILES
  const blocks = spec.percentileBlocks ?? FIO_PERCENTILE_BLOCKS
  const read = mergeDirection(r.vms, 'read')
  const write = mergeDirection(r.vms, 'write')
  const both = new LatencyHistogram().merge(read.hist).merge(write.hist)
  const failed = r.vms.find((v): v is Exclude<GeneratorResult, { status: 'ok' }> => v.status !== 'ok')
  let error = 0
  if (failed?.status === 'io-error') error = ERRNO[failed.error.error] ?? 5
  else if (failed?.status === 'verify-failed') error = ERRNO.EILSEQ!
  else if (failed?.status === 'crashed') error = ERRNO.EIO!
  // fio's job_runtime of an entry is the sum over its members
  const runtimeMs = r.vms.reduce((s, v) => s + wholeMs(v.runtimeMs), 0)
  const block: IofcertJobBlock = {
    device: r.device,
    chain: [...r.chain],
    vms: r.vms.length,
    status: failed?.status ?? 'ok',
    ...(failed !== undefined ? { message: failed.message } : {}),
    seeds: r.vms.map((v) => v.seed),
    ignoredOptions: r.ignored,
  }
  if (r.baseline !== undefined && r.baseline.length > 0) {
    // a side that crashed measured nothing: there is no overhead to give
    const bRead = mergeDirection(r.baseline, 'read')
    const bWrite = mergeDirection(r.baseline, 'write')
    block.baseline = {
      read: directionBlock(bRead, percentiles, blocks, baseAgg?.read ?? 0),
      write: directionBlock(bWrite, percentiles, blocks, baseAgg?.write ?? 0),
    }
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
    jobname: r.name,
    groupid: r.first.groupId,
    error,
    eta: 0,
    elapsed: elapsedS,
    'job options': { ...spec.jobOptions },
    read: directionBlock(read, percentiles, blocks, agg.read, plus),
    write: directionBlock(write, percentiles, blocks, agg.write, plus),
    trim: directionBlock(EMPTY_DIRECTION, percentiles, blocks, 0),
    sync: { total_ios: 0, lat_ns: { ...EMPTY_LAT } },
    job_runtime: runtimeMs,
    ...cpuStats(r.vms),
    ...depthStats(r.vms, read.totalIos + write.totalIos),
    ...latencyDistribution(both),
    // fio writes its latency_target state for every job: the bench refuses a latency target
    latency_depth: spec.iodepth ?? Math.max(1, ...r.vms.map((v) => v.maxInflight)),
    latency_target: 0,
    latency_percentile: 100,
    latency_window: 0,
    ...(r.first.description ? { desc: r.first.description } : {}),
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

// ---- writing fio's text ----

/** Keys fio writes as floats (`%f`), by the block they are in. */
const FLOAT_KEYS: Readonly<Record<string, ReadonlySet<string>>> = {
  direction: new Set(['iops', 'bw_agg', 'bw_mean', 'bw_dev', 'iops_mean', 'iops_stddev']),
  latency: new Set(['mean', 'stddev']),
  job: new Set(['usr_cpu', 'sys_cpu', 'latency_percentile']),
}
/** Job-level maps whose every value fio writes as a float. */
const FLOAT_MAPS: ReadonlySet<string> = new Set(['iodepth_level', 'iodepth_submit', 'iodepth_complete', 'latency_ns', 'latency_us', 'latency_ms'])
const DIRECTIONS: ReadonlySet<string> = new Set(['read', 'write', 'trim'])
const LATENCIES: ReadonlySet<string> = new Set(['slat_ns', 'clat_ns', 'lat_ns'])

/** Whether the number at `path` (keys and array indices from the root) is one fio writes as a float. */
function isFioFloat(path: readonly (string | number)[]): boolean {
  const key = path[path.length - 1]
  const parent = path[path.length - 2]
  if (typeof key !== 'string') return false
  if (typeof parent === 'string' && LATENCIES.has(parent)) return FLOAT_KEYS.latency!.has(key)
  if (typeof parent === 'string' && DIRECTIONS.has(parent)) return FLOAT_KEYS.direction!.has(key)
  // a job's own keys: jobs[i].key, and its distributions jobs[i].map.key
  if (path.length === 3 && path[0] === 'jobs') return FLOAT_KEYS.job!.has(key)
  if (path.length === 4 && path[0] === 'jobs' && typeof parent === 'string') return FLOAT_MAPS.has(parent)
  return false
}

/**
 * The document as fio prints it: two spaces a level, `"key" : value`, fio's floats with six
 * decimals (`%f`: `0.000000`, `1359305.694306`), so a reader that tells integers from floats by
 * their text sees fio's types, and no "job options"/"global options" when there are none. Parses
 * back to the document's values, floats to six decimals (`JSON.parse`).
 */
export function formatFioJson(doc: FioJsonDocument | Record<string, unknown>): string {
  const out: string[] = []
  const pad = (level: number): string => '  '.repeat(level)
  const write = (v: unknown, path: (string | number)[], level: number): void => {
    if (v === null || v === undefined) out.push('null')
    else if (typeof v === 'number') {
      if (!Number.isFinite(v)) out.push('null')
      else if (isFioFloat(path)) out.push(v.toFixed(6))
      else out.push(String(v))
    } else if (typeof v === 'string' || typeof v === 'boolean') out.push(JSON.stringify(v))
    else if (Array.isArray(v)) {
      out.push('[\n')
      v.forEach((x, i) => {
        if (i > 0) out.push(',\n')
        out.push(pad(level + 1))
        write(x, [...path, i], level + 1)
      })
      out.push(`\n${pad(level)}]`)
    } else if (typeof v === 'object') {
      out.push('{\n')
      let first = true
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
        if (x === undefined) continue
        // fio leaves out an empty option list
        if ((k === 'job options' || k === 'global options') && typeof x === 'object' && x !== null && Object.keys(x).length === 0) continue
        if (!first) out.push(',\n')
        first = false
        out.push(`${pad(level + 1)}${JSON.stringify(k)} : `)
        write(x, [...path, k], level + 1)
      }
      out.push(`\n${pad(level)}}`)
    } else out.push(JSON.stringify(String(v)))
  }
  write(doc, [], 0)
  return `${out.join('')}\n`
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
  if (start < 0) throw FioJsonInvalid({ reason: 'no JSON object found' })
  let doc: unknown
  try {
    doc = JSON.parse(text.slice(start))
  } catch (err) {
    throw FioJsonInvalid({ reason: (err as Error).message }, err)
  }
  if (!isObject(doc) || typeof doc['fio version'] !== 'string' || !Array.isArray(doc.jobs)) {
    throw FioJsonInvalid({ reason: 'missing "fio version" or "jobs"' })
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
  if (!isObject(j)) throw FioJsonInvalid({ reason: `jobs[${i}] is not an object` })
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
