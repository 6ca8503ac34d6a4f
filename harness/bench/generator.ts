/**
 * The I/O generator: drives one job on one disk, keeping `iodepth` I/Os in flight through a
 * submit function it is given, until the job's size is done or its runtime has elapsed.
 *
 * It runs in the VM's worker thread next to the filter chain and is on the hot path, so per I/O
 * it allocates nothing: no closure, no Promise, no buffer. Slots are indices into typed arrays,
 * buffers are reused, randomness is a seeded xoshiro128**, and one clock read serves as both a
 * completion time and the issue time of the I/O issued right after it.
 *
 * Each I/O's buffer has the shape of a guest's: a Uint8Array over an ArrayBuffer of its own of
 * exactly the I/O's length (one per slot and block size, made on first use), never a window into
 * a larger or a shared buffer, so a filter cannot tell a benchmark's I/O from a guest's by its
 * `io.data`.
 *
 * Contract with the caller:
 * - `submit(op, offset, length, data, tag)` starts one I/O; `data` is the payload of a write or
 *   the buffer a read fills. It belongs to the caller until it calls `complete(tag, error)`.
 * - `complete(tag, error)` may be called from inside `submit` (synchronous completion) or later;
 *   both work, and a synchronous disk cannot grow the stack: completions during `submit` only
 *   free the slot, and the issuing loop that called `submit` goes on.
 */
import { getRandomValues } from 'node:crypto'
// the clock from its module, not the global binding: in a VM's worker, filter code shares this
// thread's globals (they are locked there, see framework/sandbox.ts)
import { performance } from 'node:perf_hooks'
// the real process (in a VM's worker the global is a stub, see framework/sandbox.ts)
import process from 'node:process'
import { clearTimeout, setTimeout } from 'node:timers'
import { GeneratorOptionsInvalid } from './errors.js'
import { LatencyHistogram, type HistogramJSON } from './histogram.js'
import type { BlockSizes, BsSplitEntry, JobSpec, RwMode, VerifyKind } from './jobfile.js'
import { FIO_DEFAULT_SEED } from './jobfile.js'
import { RandomPermutation, Xoshiro128, deriveSeed } from './prng.js'
import { VERIFY_HEADER_BYTES, checkVerifyChunk, writeVerifyHeader, type VerifyFailure } from './verify-header.js'

export type { VerifyFailure, VerifyField } from './verify-header.js'

/** The two operations the generator issues. */
export type GeneratorOp = 'read' | 'write'

/** Starts one I/O; see the module comment for the ownership of `data`. */
export type SubmitFn = (op: GeneratorOp, offset: number, length: number, data: Uint8Array, tag: number) => void

/** What one generator runs. Defaults are fio's. */
export interface GeneratorOptions {
  readonly rw: RwMode
  /** Percent of reads in `rw`/`randrw` jobs (default 50). */
  readonly rwmixread?: number
  /** One block size for both directions (default 4096), or the sizes of each direction. */
  readonly bs?: number | { readonly read: BlockSizes; readonly write: BlockSizes }
  /** Weighted block sizes for both directions; wins over `bs`. */
  readonly bssplit?: readonly BsSplitEntry[]
  readonly iodepth?: number
  /** Bytes of the disk. */
  readonly capacity: number
  /** Start of the job's region (default 0). */
  readonly offset?: number
  /** Bytes of the region (default: to the end of the disk). */
  readonly size?: number | null
  /** Bytes of I/O to do per loop (default `size`). */
  readonly ioSize?: number | null
  /** Stop after this many I/Os. */
  readonly numberIos?: number | null
  /** Passes over `ioSize` (default 1). */
  readonly loops?: number
  /** Stop after this long, not counting ramp time. */
  readonly runtimeMs?: number | null
  /** Keep going until `runtimeMs` even when the size is done (needs `runtimeMs`). */
  readonly timeBased?: boolean
  /** Leave the first `rampMs` out of the statistics. */
  readonly rampMs?: number
  readonly verify?: VerifyKind | null
  /** For write-only jobs with `verify`: read everything back at the end (default true). */
  readonly doVerify?: boolean
  /** Random offsets may repeat within a pass (default: each block once per pass). */
  readonly norandommap?: boolean
  /** PRNG seed (default fio's 0x89). */
  readonly seed?: number
  /** When false, `seed` is ignored and a fresh one drawn (reported in the result). */
  readonly randrepeat?: boolean
  /**
   * Most bytes (`bytes`) and I/Os (`ios`) a second per direction, 0 for no limit (fio's rate and
   * rate_iops): the n-th I/O of a direction is not issued before n / rate seconds into the run.
   */
  readonly rate?: { readonly read: { readonly bytes: number; readonly ios: number }; readonly write: { readonly bytes: number; readonly ios: number } }
  /**
   * How often bandwidth and IOPS are sampled, ms (fio's bwavgtime and iopsavgtime, default 500);
   * 0: a sample per I/O (fio's, when the job writes a per-I/O bandwidth or IOPS log).
   */
  readonly bwIntervalMs?: number
  readonly iopsIntervalMs?: number
  /** What to keep for fio's log files (see `GeneratorLogs`); none by default. */
  readonly log?: GeneratorLogOptions
}

/** What the generator keeps for a job's fio log files. */
export interface GeneratorLogOptions {
  /** Latency entries (write_lat_log), averaged over `latWindowMs` (0: one an I/O). */
  readonly lat: boolean
  readonly latWindowMs: number
  /** A window's largest latency instead of its mean (log_max_value). */
  readonly maxValue: boolean
  /** Each bandwidth and IOPS sample (write_bw_log, write_iops_log). */
  readonly bw: boolean
  readonly iops: boolean
}

/**
 * What a job logged, relative to the start of its statistics (the end of the ramp). Times are
 * whole milliseconds, as fio's; a direction is 0 (read) or 1 (write).
 */
export interface GeneratorLogs {
  /**
   * One record per I/O when some log has an entry per I/O: time (ms), latency (ns), direction,
   * bytes and offset, five numbers each; at most `MAX_LOGGED_IOS` records.
   */
  readonly ios: Float64Array | null
  /** I/Os past `MAX_LOGGED_IOS` that have no record. */
  readonly dropped: number
  /** Windowed latency entries: time, ns, direction (three numbers each). */
  readonly lat: readonly number[]
  /** Bandwidth samples (KiB/s) and IOPS samples: time, value, direction. */
  readonly bw: readonly number[]
  readonly iops: readonly number[]
}

/** Most I/Os whose per-I/O log records a job copy keeps (40 bytes each). */
export const MAX_LOGGED_IOS = 2 ** 22

/**
 * Per-interval samples of a rate, summarised as fio keeps them (its `io_stat`): every
 * `SAMPLE_INTERVAL_MS` the generator adds the rate of the interval just ended (when the direction
 * did I/O in it), with the running mean and sum of squared deviations.
 */
export interface SampleStat {
  readonly min: number
  readonly max: number
  readonly samples: number
  readonly mean: number
  /** Σ (x − mean)², for the sample standard deviation √(S / (samples − 1)). */
  readonly S: number
}

/** What the process used while a job ran (from `process.resourceUsage()`): every thread of it. */
export interface ResourceUse {
  readonly userUs: number
  readonly systemUs: number
  /** Voluntary and involuntary context switches. */
  readonly ctx: number
  readonly minorFaults: number
  readonly majorFaults: number
}

/** Statistics of one direction. */
export interface DirectionResult {
  readonly ioBytes: number
  readonly totalIos: number
  /** I/Os completed with an error (not in the statistics). */
  readonly errors: number
  /** Time this direction was active after the ramp, ms. */
  readonly runtimeMs: number
  readonly iops: number
  readonly bwBytes: number
  /** Issue → completion latencies, ns. */
  readonly latency: HistogramJSON
  readonly minNs: number
  readonly maxNs: number
  readonly meanNs: number
  readonly stddevNs: number
  /** Bandwidth samples, KiB/s (fio's bw_min … bw_samples); absent from results of older producers. */
  readonly bwStat?: SampleStat
  /** IOPS samples (fio's iops_min … iops_samples). */
  readonly iopsStat?: SampleStat
}

/** The first I/O that failed. */
export interface IoFailure {
  readonly op: GeneratorOp
  readonly offset: number
  readonly length: number
  readonly error: string
}

/** What verification did. */
export interface VerifySummary {
  readonly kind: VerifyKind
  /** Bytes per verify chunk (the smallest write size). */
  readonly chunkBytes: number
  readonly checkedChunks: number
  readonly failures: number
  /** The first failures (at most 16), in the order found. */
  readonly first: readonly VerifyFailure[]
}

interface ResultBase {
  /** The seed actually used (drawn when randrepeat is off), for reproducing the run. */
  readonly seed: number
  /** From the end of the ramp to the last completion, ms. */
  readonly runtimeMs: number
  readonly read: DirectionResult
  readonly write: DirectionResult
  /** Most I/Os ever in flight at once. */
  readonly maxInflight: number
  /** Completions for tags that were not in flight (a caller bug), ignored. */
  readonly spuriousCompletions: number
  readonly verify: VerifySummary | null
  /**
   * I/Os counted in the statistics by how many were in flight when each was issued, itself
   * included, in fio's iodepth_level buckets: 1, 2–3, 4–7, 8–15, 16–31, 32–63, ≥ 64.
   */
  readonly depthLevels?: readonly number[]
  /** What the process used over the same span as `runtimeMs`. */
  readonly usage?: ResourceUse
  /** What the job logged for its fio log files, when it writes any. */
  readonly logs?: GeneratorLogs
}

/** The outcome of one generator run; failures are recorded here, not thrown. */
export type GeneratorResult = ResultBase &
  (
    | { readonly status: 'ok' }
    | { readonly status: 'io-error'; readonly message: string; readonly error: IoFailure }
    | { readonly status: 'verify-failed'; readonly message: string; readonly failure: VerifyFailure }
    /** The VM's worker died or stopped answering mid-run (its filter crashed or hung the thread): nothing it measured came back. */
    | { readonly status: 'crashed'; readonly message: string }
  )

/** The result of a run whose VM worker died before it could report: no I/O counted. */
export function crashedResult(seed: number, message: string): GeneratorResult {
  const empty: DirectionResult = {
    ioBytes: 0, totalIos: 0, errors: 0, runtimeMs: 0, iops: 0, bwBytes: 0,
    latency: new LatencyHistogram().toJSON(), minNs: 0, maxNs: 0, meanNs: 0, stddevNs: 0,
  }
  return { seed, runtimeMs: 0, read: empty, write: empty, maxInflight: 0, spuriousCompletions: 0, verify: null, status: 'crashed', message }
}

const READ = 0
const WRITE = 1
const MAIN = 0
const VERIFY = 1
/** expectGen value of a chunk whose content is unknown (its write failed). */
const UNKNOWN_GEN = 0xffffffff
const MAX_VERIFY_CHUNKS = 2 ** 25
const MAX_FAILURES_KEPT = 16
const SIZE_TABLE = 1000
/** Bytes of I/O buffers a job keeps for reuse (at least one per slot of its largest size). */
const VIEW_BUDGET = 64 * 2 ** 20
/** How often bandwidth and IOPS are sampled by default (fio's bwavgtime and iopsavgtime defaults), ms. */
export const SAMPLE_INTERVAL_MS = 500
/** A sample is taken this early rather than waiting a whole further interval (fio's LOG_MSEC_SLACK). */
const SAMPLE_SLACK_MS = 1
/** Most blocks a random map of several block sizes covers (a bit each: 32 MiB). */
const MAX_MAP_BLOCKS = 2 ** 28
/** Draws of another size for an I/O that does not fit where its block starts, before the smallest is used. */
const SIZE_REDRAWS = 64
/** fio's iodepth_level buckets. */
const DEPTH_LEVELS = 7

/** Drives one job on one disk. Construct, then `run()` once. */
export class IoGenerator {
  /** The options as resolved (defaults applied). */
  readonly seed: number
  readonly iodepth: number
  private readonly submitFn: SubmitFn
  private readonly rng: Xoshiro128

  // workload shape
  private readonly mixed: boolean
  private readonly onlyOp: number
  private readonly readThreshold: number
  private readonly random: boolean
  private readonly useMap: boolean
  private readonly base: number
  private readonly regionSize: number
  private readonly sizes: readonly number[]
  private readonly readSizes: Uint16Array
  private readonly writeSizes: Uint16Array
  private readonly spanRead: Float64Array
  private readonly spanWrite: Float64Array
  private readonly alignRead: number
  private readonly alignWrite: number
  /** The random map's block: the smallest size the job issues (fio's minimum block size). */
  private readonly slotSize: number
  private perm: RandomPermutation | null
  /**
   * Blocks of the random map an I/O of the current pass already covered, one bit each (only when
   * sizes vary: an I/O of several blocks covers the blocks after the one drawn, as fio marks them).
   */
  private covered: Uint32Array | null
  /** The index (into sizes) of each direction's smallest size: always fits where a block starts. */
  private readonly minSizeRead: number
  private readonly minSizeWrite: number
  /** Per direction, the size index of k times its smallest size (for I/Os cut short by the map). */
  private shorterRead: Int32Array | null = null
  private shorterWrite: Int32Array | null = null
  private seqRead = 0
  private seqWrite = 0
  private readonly byteLimit: number
  private readonly countLimit: number
  private readonly runtimeMs: number
  private readonly rampMs: number

  // slots
  /** The pseudo-random bytes each slot's buffers start from (never itself submitted). */
  private readonly buffer: Uint8Array
  private readonly maxLen: number
  /** The buffer of each slot and block size (slot * sizes + size index), made on first use. */
  private readonly views: (Uint8Array | undefined)[]
  private readonly allocBuffer: (bytes: number) => Uint8Array
  /** Bytes of buffers kept in `views`; past VIEW_BUDGET a buffer is made for each I/O instead. */
  private viewBytes = 0
  private readonly viewBudget: number
  /** The buffer (and, verifying, its DataView) of the I/O in flight in each slot. */
  private readonly slotView: (Uint8Array | null)[]
  private readonly slotDv: (DataView | null)[]
  private readonly freeStack: Int32Array
  private freeTop: number
  private readonly slotBusy: Uint8Array
  private readonly slotOp: Uint8Array
  private readonly slotSizeIndex: Uint16Array
  private readonly slotOff: Float64Array
  private readonly slotT0: Float64Array
  private readonly slotGen: Uint32Array

  // progress
  private phase = MAIN
  private started = false
  private finished = false
  private pumping = false
  private readonly yieldEveryMs: number
  /** Issuing is paused until the next turn of the event loop (see yieldEveryMs). */
  private yielding = false
  private lastYield = 0
  private sinceYieldCheck = 0
  private readonly resume = (): void => {
    this.yielding = false
    // the next I/O starts now, not at the last completion before the pause
    this.lastYield = this.lastNow = performance.now()
    this.clockStale = false
    this.pump()
  }
  private stopIssuing = false
  private userStopped = false
  private exhausted = false
  private havePending = false
  private pOp = 0
  private pOff = 0
  private pSize = 0
  private inflight = 0
  private maxInflight = 0
  private issued = 0
  private bytesIssued = 0
  private spurious = 0
  private lastNow = 0
  private clockStale = true
  private startT = 0
  private rampEnd = 0
  private deadline = Infinity
  private lastDone = 0
  private resolve: ((r: GeneratorResult) => void) | null = null
  private reject: ((e: unknown) => void) | null = null

  // statistics
  private readonly histRead = new LatencyHistogram()
  private readonly histWrite = new LatencyHistogram()
  private bytesRead = 0
  private bytesWritten = 0
  private iosRead = 0
  private iosWritten = 0
  private errRead = 0
  private errWrite = 0
  private firstRead = 0
  private firstWrite = 0
  private lastRead = 0
  private lastWrite = 0
  private firstError: IoFailure | null = null
  /** When the statistics start: the run's start, or the end of the ramp once it is over. */
  private statsEpoch = 0
  private rampOver = false
  /** The depth bucket each slot's I/O was issued at. */
  private readonly slotDepth: Uint8Array
  private readonly depthLevels = new Float64Array(DEPTH_LEVELS)
  /** Bandwidth and IOPS sample intervals (ms; 0: a sample per I/O). */
  private readonly bwMs: number
  private readonly iopsMs: number
  /** The start of each sample interval under way (bandwidth, IOPS), and when the next sample of either is due. */
  private bwFrom = 0
  private iopsFrom = 0
  private nextSample = Infinity
  /** Bytes and I/Os (read, write) at the last sample. */
  private readonly sampledBytes = new Float64Array(2)
  private readonly sampledIos = new Float64Array(2)
  // fio log files
  /** Some statistic or log needs every I/O's completion (per-I/O samples or log entries). */
  private readonly perIo: boolean
  private readonly logOpts: GeneratorLogOptions | null
  private logIos: Float64Array | null = null
  private logCount = 0
  private logDropped = 0
  private logLat: number[] = []
  private logBw: number[] = []
  private logIops: number[] = []
  /** Latency windows per direction: I/Os, sum, max (ns) and where the window started (ms). */
  private readonly winN = new Float64Array(2)
  private readonly winSum = new Float64Array(2)
  private readonly winMax = new Float64Array(2)
  private readonly winLast = new Float64Array(2)
  /** min, max, samples, mean, S of bandwidth (read, write), then of IOPS (read, write). */
  private readonly rateStats = new Float64Array(4 * 5)
  private usageFrom: NodeJS.ResourceUsage | null = null

  // pacing (fio's rate and rate_iops)
  private readonly paced: boolean
  /** Milliseconds per I/O and per byte of each direction's limits (0: none). */
  private readonly msPerIo = new Float64Array(2)
  private readonly msPerByte = new Float64Array(2)
  /** I/Os and bytes each direction has issued since the start. */
  private readonly pacedIos = new Float64Array(2)
  private readonly pacedBytes = new Float64Array(2)
  private paceTimer: ReturnType<typeof setTimeout> | null = null
  private readonly resumePaced = (): void => {
    this.paceTimer = null
    this.lastNow = performance.now()
    this.clockStale = false
    this.pump()
  }

  // verify
  private readonly verifyKind: VerifyKind | null
  private readonly verifyPass: boolean
  private readonly verifyForeign: boolean
  private readonly chunk: number
  private readonly chunkSizeIndex: number
  private readonly expectGen: Uint32Array | null
  private readonly wbusy: Uint8Array | null
  private readonly rbusy: Uint16Array | null
  private readonly dataViews: (DataView | undefined)[]
  private readonly seedTag: number
  private writeGen = 0
  private verifyCursor = 0
  private checked = 0
  private failures = 0
  private readonly failureList: VerifyFailure[] = []

  /**
   * `allocBuffer`, when given, supplies each of the job's I/O buffers (`bytes` of one I/O; it must
   * return a guest-shaped buffer: the whole of an ArrayBuffer of its own); otherwise they are
   * `new Uint8Array(bytes)`. `yieldEveryMs` > 0
   * hands the thread back to its event loop once that often: issuing pauses for one turn (the
   * thread's other work runs, a watchdog gets its answer) while I/O in flight completes as usual,
   * so no I/O's latency includes the pause.
   */
  constructor(options: GeneratorOptions, submit: SubmitFn, allocBuffer?: (bytes: number) => Uint8Array, yieldEveryMs = 0) {
    this.yieldEveryMs = yieldEveryMs
    const o = options
    const bad = (msg: string): never => {
      throw GeneratorOptionsInvalid({ message: `generator options: ${msg}` })
    }
    const intOpt = (name: string, v: number, min: number): number => {
      if (!Number.isSafeInteger(v) || v < min) bad(`${name} = ${v}: must be a whole number ≥ ${min}`)
      return v
    }
    this.submitFn = submit
    this.iodepth = intOpt('iodepth', o.iodepth ?? 1, 1)
    intOpt('capacity', o.capacity, 512)
    const offset = intOpt('offset', o.offset ?? 0, 0)
    if (offset >= o.capacity) bad(`offset ${offset} is at or beyond the disk's end (${o.capacity} bytes)`)
    const size = intOpt('size', o.size ?? o.capacity - offset, 1)
    if (offset + size > o.capacity) bad(`the region ${offset} + ${size} bytes ends beyond the disk's ${o.capacity} bytes`)
    this.base = offset
    this.regionSize = size

    if (o.randrepeat === false) {
      const w = getRandomValues(new Uint32Array(2))
      this.seed = (w[0]! & 0x1fffff) * 4294967296 + w[1]!
    } else {
      this.seed = intOpt('seed', o.seed ?? FIO_DEFAULT_SEED, 0)
    }
    this.rng = new Xoshiro128(this.seed)

    // direction
    const readPct = o.rw === 'read' || o.rw === 'randread' ? 100 : o.rw === 'write' || o.rw === 'randwrite' ? 0 : (o.rwmixread ?? 50)
    if (!(readPct >= 0 && readPct <= 100)) bad(`rwmixread = ${readPct}: must be 0 … 100`)
    this.mixed = readPct > 0 && readPct < 100
    this.onlyOp = readPct === 0 ? WRITE : READ
    this.readThreshold = Math.round((readPct / 100) * 4294967296)
    this.random = o.rw === 'randread' || o.rw === 'randwrite' || o.rw === 'randrw'

    // block sizes: one list of distinct sizes, and per direction a table of indices into it
    // (weights by repetition), so picking a size is one PRNG draw and one load
    const dirSizes = resolveBlockSizes(o, bad)
    const sizes: number[] = []
    const indexOf = (n: number): number => {
      let i = sizes.indexOf(n)
      if (i < 0) i = sizes.push(n) - 1
      return i
    }
    const table = (b: BlockSizes): Uint16Array => {
      if (b.kind === 'fixed') return Uint16Array.of(indexOf(b.bs))
      if (b.kind === 'range') {
        const list: number[] = []
        for (let s = b.min; s <= b.max; s += b.min) list.push(indexOf(s))
        return Uint16Array.from(list)
      }
      const t = new Uint16Array(SIZE_TABLE)
      let at = 0
      let acc = 0
      b.entries.forEach((e, i) => {
        acc += e.pct
        const end = i === b.entries.length - 1 ? SIZE_TABLE : Math.round((acc / 100) * SIZE_TABLE)
        const idx = indexOf(e.bs)
        while (at < end) t[at++] = idx
      })
      return t
    }
    const usesRead = readPct > 0
    const usesWrite = readPct < 100
    this.readSizes = table(dirSizes.read)
    this.writeSizes = table(dirSizes.write)
    if (sizes.length > 65535) bad('too many distinct block sizes')
    this.sizes = sizes
    const used = [...(usesRead ? this.readSizes : []), ...(usesWrite ? this.writeSizes : [])].map((i) => sizes[i]!)
    for (const s of sizes) if (s % 512 !== 0 || s <= 0) bad(`block size ${s} is not a positive multiple of 512`)
    const maxLen = Math.max(...used)
    const minLen = Math.min(...used)
    if (maxLen > size) bad(`block size ${maxLen} is larger than the region (${size} bytes)`)
    this.maxLen = Math.max(...sizes)
    // fio aligns random offsets (and sizes its random map's blocks) to the smallest block size
    this.slotSize = minLen
    // norandommap offsets align to the direction's smallest block, as fio's default blockalign.
    const minOf = (t: Uint16Array): number => Math.min(...[...t].map((i) => sizes[i]!))
    this.alignRead = minOf(this.readSizes)
    this.alignWrite = minOf(this.writeSizes)
    const spans = (align: number): Float64Array => Float64Array.from(sizes, (s) => (s <= size ? Math.floor((size - s) / align) + 1 : 1))
    this.spanRead = spans(this.alignRead)
    this.spanWrite = spans(this.alignWrite)
    this.minSizeRead = indexOf(this.alignRead)
    this.minSizeWrite = indexOf(this.alignWrite)

    // offsets
    this.useMap = this.random && o.norandommap !== true
    this.covered = null
    if (this.useMap) {
      const slots = Math.floor(size / minLen)
      if (slots > 0x80000000) bad(`the region has ${slots} blocks of ${minLen} bytes, above the random map's 2^31; set norandommap`)
      if (maxLen > minLen) {
        if (slots > MAX_MAP_BLOCKS) bad(`the region has ${slots} blocks of ${minLen} bytes, too many to map with several block sizes; set norandommap`)
        this.covered = new Uint32Array(Math.ceil(slots / 32))
        // an I/O that runs into a covered block is cut short to whole multiples of its
        // direction's smallest size, as fio's mark_random_map: those sizes get an index too
        const shorter = (t: Uint16Array, dirMin: number): Int32Array => {
          const dirMax = Math.max(...[...t].map((i) => sizes[i]!))
          const idx = new Int32Array(Math.floor(dirMax / dirMin) + 1)
          for (let k = 1; k * dirMin <= dirMax; k++) idx[k] = indexOf(k * dirMin)
          return idx
        }
        this.shorterRead = shorter(this.readSizes, this.alignRead)
        this.shorterWrite = shorter(this.writeSizes, this.alignWrite)
        if (sizes.length > 65535) bad('too many distinct block sizes')
      }
      this.perm = new RandomPermutation(slots, this.rng)
    } else {
      this.perm = null
    }

    // stop conditions
    if (o.timeBased === true && !(o.runtimeMs !== null && o.runtimeMs !== undefined && o.runtimeMs > 0)) bad('timeBased needs runtimeMs')
    const loops = intOpt('loops', o.loops ?? 1, 1)
    let perLoop = o.ioSize ?? size
    // A fixed block size covers whole blocks only, as fio: the tail short of a block is skipped.
    if (used.every((s) => s === maxLen)) perLoop = Math.max(maxLen, perLoop - (perLoop % maxLen))
    this.byteLimit = o.timeBased === true ? Infinity : perLoop * loops
    this.countLimit = o.numberIos !== null && o.numberIos !== undefined && o.numberIos > 0 ? o.numberIos : Infinity
    this.runtimeMs = o.runtimeMs !== null && o.runtimeMs !== undefined && o.runtimeMs > 0 ? o.runtimeMs : Infinity
    this.rampMs = o.rampMs ?? 0
    if (!(this.rampMs >= 0)) bad(`rampMs = ${o.rampMs}: must be ≥ 0`)
    let paced = false
    for (const [d, r] of [[READ, o.rate?.read], [WRITE, o.rate?.write]] as const) {
      if (r === undefined) continue
      if (!(r.bytes >= 0 && r.ios >= 0)) bad(`rate ${r.bytes} bytes/s, ${r.ios} I/Os/s: must be ≥ 0`)
      this.msPerByte[d] = r.bytes > 0 ? 1000 / r.bytes : 0
      this.msPerIo[d] = r.ios > 0 ? 1000 / r.ios : 0
      paced ||= r.bytes > 0 || r.ios > 0
    }
    this.paced = paced
    const interval = (name: string, v: number | undefined): number => (v === undefined ? SAMPLE_INTERVAL_MS : intOpt(name, v, 0))
    this.bwMs = interval('bwIntervalMs', o.bwIntervalMs)
    this.iopsMs = interval('iopsIntervalMs', o.iopsIntervalMs)
    const log = o.log ?? null
    if (log !== null && log.lat) intOpt('log.latWindowMs', log.latWindowMs, 0)
    this.logOpts = log !== null && (log.lat || log.bw || log.iops) ? log : null
    this.perIo = this.bwMs === 0 || this.iopsMs === 0 || (this.logOpts?.lat ?? false)

    // slots and buffers: filled once with pseudo-random bytes (incompressible, like fio's); each
    // I/O buffer starts as a copy of its slot's bytes
    const depth = this.iodepth
    this.buffer = new Uint8Array(depth * this.maxLen)
    const words = new Uint32Array(this.buffer.buffer, this.buffer.byteOffset, this.buffer.byteLength >>> 2)
    const fill = new Xoshiro128(deriveSeed(this.seed, 0x62756666))
    for (let i = 0; i < words.length; i++) words[i] = fill.next()
    this.views = new Array<Uint8Array | undefined>(depth * sizes.length)
    this.allocBuffer = allocBuffer ?? ((bytes: number) => new Uint8Array(bytes))
    // every slot's buffer of the largest size always fits: a job of one block size keeps them all
    this.viewBudget = Math.max(VIEW_BUDGET, depth * this.maxLen)
    this.slotView = new Array<Uint8Array | null>(depth).fill(null)
    this.slotDv = new Array<DataView | null>(depth).fill(null)
    this.freeStack = new Int32Array(depth)
    for (let i = 0; i < depth; i++) this.freeStack[i] = depth - 1 - i
    this.freeTop = depth
    this.slotBusy = new Uint8Array(depth)
    this.slotOp = new Uint8Array(depth)
    this.slotSizeIndex = new Uint16Array(depth)
    this.slotOff = new Float64Array(depth)
    this.slotT0 = new Float64Array(depth)
    this.slotGen = new Uint32Array(depth)
    this.slotDepth = new Uint8Array(depth)

    // verify
    this.verifyKind = o.verify ?? null
    this.seedTag = this.seed >>> 0
    if (this.verifyKind !== null) {
      const writeLens = [...this.writeSizes].map((i) => sizes[i]!)
      const chunk = usesWrite ? Math.min(...writeLens) : minLen
      if (usesWrite && writeLens.some((s) => s % chunk !== 0)) bad(`verify needs every write size to be a multiple of the smallest (${chunk})`)
      if (chunk < VERIFY_HEADER_BYTES[this.verifyKind]) bad(`verify needs blocks of at least ${VERIFY_HEADER_BYTES[this.verifyKind]} bytes`)
      const chunks = Math.floor(size / chunk)
      if (chunks > MAX_VERIFY_CHUNKS) bad(`verify over ${chunks} chunks of ${chunk} bytes needs too much state; use a smaller size or larger blocks`)
      this.chunk = chunk
      this.chunkSizeIndex = indexOf(chunk)
      this.expectGen = new Uint32Array(chunks)
      this.wbusy = new Uint8Array(chunks)
      this.rbusy = new Uint16Array(chunks)
      this.dataViews = new Array<DataView | undefined>(depth * sizes.length)
    } else {
      this.chunk = 0
      this.chunkSizeIndex = 0
      this.expectGen = null
      this.wbusy = null
      this.rbusy = null
      this.dataViews = []
    }
    this.verifyPass = this.verifyKind !== null && o.doVerify !== false && readPct === 0
    // A read-only job with verify checks data some earlier job wrote: header and checksum only.
    this.verifyForeign = this.verifyKind !== null && readPct === 100
  }

  /** Runs the job; resolves with the result once the last I/O has completed. Call once. */
  run(): Promise<GeneratorResult> {
    if (this.started) return Promise.reject(GeneratorOptionsInvalid({ message: 'IoGenerator.run() called twice' }))
    this.started = true
    return new Promise<GeneratorResult>((resolve, reject) => {
      this.resolve = resolve
      this.reject = reject
      this.startT = performance.now()
      this.lastNow = this.startT
      this.clockStale = false
      this.rampEnd = this.startT + this.rampMs
      this.deadline = this.rampEnd + this.runtimeMs
      this.rampOver = this.rampMs === 0
      this.resetStats(this.startT)
      this.lastDone = this.startT
      this.lastYield = this.startT
      this.pump()
    })
  }

  /** Stops issuing; `run()` resolves once the I/Os in flight have completed. */
  stop(): void {
    this.stopIssuing = true
    this.userStopped = true
    if (!this.pumping && this.inflight === 0 && this.started) this.pump()
  }

  /** I/Os in flight now. */
  get inFlight(): number {
    return this.inflight
  }

  /** Reports the completion of the I/O submitted with `tag`; `error` null for success. */
  complete(tag: number, error: string | null): void {
    const t = performance.now()
    this.lastNow = t
    this.clockStale = false
    if (this.slotBusy[tag] !== 1) {
      this.spurious++
      return
    }
    this.slotBusy[tag] = 0
    this.freeStack[this.freeTop++] = tag
    this.inflight--
    this.lastDone = t
    const op = this.slotOp[tag]!
    const len = this.sizes[this.slotSizeIndex[tag]!]!
    // As fio: the statistics start over when the ramp ends; a job that ends within its ramp
    // never got there, and all of its I/O counts.
    if (!this.rampOver && t >= this.rampEnd) this.endRamp()
    if (error === null) {
      const t0 = this.slotT0[tag]!
      const from = this.statsEpoch
      if (op === READ) {
        if (this.iosRead === 0) this.firstRead = t0 > from ? t0 : from
        this.histRead.record((t - t0) * 1e6)
        this.bytesRead += len
        this.iosRead++
        this.lastRead = t
      } else {
        if (this.iosWritten === 0) this.firstWrite = t0 > from ? t0 : from
        this.histWrite.record((t - t0) * 1e6)
        this.bytesWritten += len
        this.iosWritten++
        this.lastWrite = t
      }
      this.depthLevels[this.slotDepth[tag]!]!++
      if (this.perIo) this.onIo(tag, op, t, t0, len)
    } else {
      this.onError(tag, op, len, error)
    }
    if (t >= this.nextSample) this.sample(t)
    if (this.expectGen !== null) this.afterVerifyIo(tag, op, len, error === null)
    if (t >= this.deadline && this.phase === MAIN) this.stopIssuing = true
    if (!this.pumping) this.pump()
  }

  // ---- issuing ----

  private pump(): void {
    if (this.finished || this.yielding) return
    this.pumping = true
    try {
      const depth = this.iodepth
      const nSizes = this.sizes.length
      while (this.inflight < depth && !this.stopIssuing) {
        if (this.yieldEveryMs > 0 && (++this.sinceYieldCheck & 255) === 0 && this.lastNow - this.lastYield > this.yieldEveryMs) {
          this.yielding = true
          setImmediate(this.resume)
          break
        }
        if (!this.havePending) {
          if (!(this.phase === MAIN ? this.nextIo() : this.nextVerifyIo())) {
            this.exhausted = true
            break
          }
        }
        if (this.paced && this.phase === MAIN) {
          // the n-th I/O of a paced direction waits until n / rate seconds into the run
          const due = this.dueAt(this.pOp)
          if (due > this.lastNow || this.clockStale) {
            const now = performance.now()
            this.lastNow = now
            this.clockStale = false
            if (due > now) {
              this.havePending = true
              if (due >= this.deadline) this.stopIssuing = true
              else this.paceTimer ??= setTimeout(this.resumePaced, due - now)
              break
            }
          }
        }
        if (this.expectGen !== null && this.conflicts()) {
          // Overlapping a write in flight: wait for a completion, then issue this same I/O.
          this.havePending = true
          break
        }
        this.havePending = false
        const slot = this.freeStack[--this.freeTop]!
        const op = this.pOp
        const off = this.pOff
        const si = this.pSize
        const len = this.sizes[si]!
        const vi = slot * nSizes + si
        const view = this.views[vi] ?? this.newView(slot, vi, len)
        this.slotOp[slot] = op
        this.slotSizeIndex[slot] = si
        this.slotOff[slot] = off
        if (this.expectGen !== null) this.beforeVerifyIo(slot, op, off, len, view, vi)
        if (this.clockStale) this.lastNow = performance.now()
        this.slotT0[slot] = this.lastNow
        this.clockStale = true
        this.slotBusy[slot] = 1
        if (++this.inflight > this.maxInflight) this.maxInflight = this.inflight
        // fio's depth buckets are powers of two: 1, 2–3, 4–7 … ≥ 64
        const level = 31 - Math.clz32(this.inflight)
        this.slotDepth[slot] = level < DEPTH_LEVELS - 1 ? level : DEPTH_LEVELS - 1
        this.issued++
        if (this.paced) {
          this.pacedIos[op]!++
          this.pacedBytes[op]! += len
        }
        this.submitFn(op === READ ? 'read' : 'write', off, len, view, slot)
      }
    } catch (err) {
      this.pumping = false
      this.fail(err)
      return
    }
    this.pumping = false
    if (this.inflight === 0 && (this.stopIssuing || this.exhausted)) this.phaseDone()
  }

  /**
   * A buffer for slot `slot` and I/O length `len` (views index `vi`): guest-shaped (see the module
   * comment), holding the slot's pseudo-random bytes. Kept for the slot's next I/O of that size
   * while the job's buffers stay within their budget (a job with many block sizes and a deep
   * queue makes one per I/O past it).
   */
  private newView(slot: number, vi: number, len: number): Uint8Array {
    const view = this.allocBuffer(len)
    const at = slot * this.maxLen
    view.set(this.buffer.subarray(at, at + len))
    if (this.viewBytes + len <= this.viewBudget) {
      this.views[vi] = view
      this.viewBytes += len
    }
    return view
  }

  /** Picks the next main-phase I/O into pOp/pOff/pSize; false when the job is done. */
  private nextIo(): boolean {
    if (this.issued >= this.countLimit || this.bytesIssued >= this.byteLimit) return false
    const rng = this.rng
    let op = this.mixed ? (rng.next() < this.readThreshold ? READ : WRITE) : this.onlyOp
    if (this.paced && this.mixed) op = this.rateDirection(op)
    const table = op === READ ? this.readSizes : this.writeSizes
    let si = table.length === 1 ? table[0]! : table[rng.next() % table.length]!
    let len = this.sizes[si]!
    let off: number
    if (this.random) {
      if (this.perm !== null) {
        off = this.base + this.nextBlock() * this.slotSize
        if (this.covered !== null) {
          const end = this.base + this.regionSize
          const slot = this.slotSize
          // a direction's offsets align to its own smallest size (fio's default blockalign)
          const dirMin = op === READ ? this.alignRead : this.alignWrite
          off = this.base + Math.floor((off - this.base) / dirMin) * dirMin
          // a block too near the end for any of this direction's sizes is passed over
          while (off + dirMin > end) off = this.base + Math.floor((this.nextBlock() * slot) / dirMin) * dirMin
          // as fio, a size that runs past the region's end is drawn again; the smallest fits
          for (let i = 0; off + len > end; i++) {
            si = i < SIZE_REDRAWS ? table[rng.next() % table.length]! : op === READ ? this.minSizeRead : this.minSizeWrite
            len = this.sizes[si]!
          }
          // mark the blocks the I/O covers, up to the first one an earlier I/O of the pass covered,
          // and cut the I/O short there (to whole multiples of the direction's smallest size), as
          // fio's mark_random_map
          const cov = this.covered
          const first = Math.floor((off - this.base) / slot)
          let b = first
          for (const last = Math.ceil((off - this.base + len) / slot); b < last && (cov[b >>> 5]! & (1 << (b & 31))) === 0; b++) cov[b >>> 5]! |= 1 << (b & 31)
          const free = (b - first) * slot
          if (free < len) {
            si = (op === READ ? this.shorterRead : this.shorterWrite)![Math.max(1, Math.floor(free / dirMin))]!
            len = this.sizes[si]!
            for (const last = Math.ceil((off - this.base + len) / slot); b < last; b++) cov[b >>> 5]! |= 1 << (b & 31)
          }
        }
      } else {
        off = op === READ ? this.base + rng.below(this.spanRead[si]!) * this.alignRead : this.base + rng.below(this.spanWrite[si]!) * this.alignWrite
      }
    } else {
      let pos = op === READ ? this.seqRead : this.seqWrite
      if (pos + len > this.regionSize) pos = 0
      off = this.base + pos
      if (op === READ) this.seqRead = pos + len
      else this.seqWrite = pos + len
    }
    this.bytesIssued += len
    this.pOp = op
    this.pOff = off
    this.pSize = si
    return true
  }

  /** When the next I/O of direction `d` may be issued under its rate limits. */
  private dueAt(d: number): number {
    return this.startT + Math.max(this.pacedIos[d]! * this.msPerIo[d]!, this.pacedBytes[d]! * this.msPerByte[d]!)
  }

  /**
   * fio's rate_ddir: a mixed job whose drawn direction is ahead of its rate takes the other one
   * when that one is behind its own (or has none), and otherwise the one due first.
   */
  private rateDirection(op: number): number {
    const now = performance.now()
    this.lastNow = now
    this.clockStale = false
    const due = this.dueAt(op)
    if (due <= now) return op
    const other = op ^ 1
    const otherDue = this.dueAt(other)
    return otherDue <= now || otherDue < due ? other : op
  }

  /**
   * The random map's next block: each block once a pass in a seeded order, skipping blocks an
   * earlier I/O of the pass covered (with several sizes); a new pass draws a new order, as fio
   * resets its random map.
   */
  private nextBlock(): number {
    const cov = this.covered
    for (;;) {
      if (this.perm!.remaining === 0) {
        this.perm = new RandomPermutation(this.perm!.n, this.rng)
        cov?.fill(0)
      }
      const b = this.perm!.next()
      if (cov === null || (cov[b >>> 5]! & (1 << (b & 31))) === 0) return b
    }
  }

  /** Picks the next read of the final verify pass: every chunk this job wrote, in order. */
  private nextVerifyIo(): boolean {
    const expect = this.expectGen!
    let c = this.verifyCursor
    while (c < expect.length && (expect[c] === 0 || expect[c] === UNKNOWN_GEN)) c++
    if (c >= expect.length) {
      this.verifyCursor = c
      return false
    }
    this.verifyCursor = c + 1
    this.pOp = READ
    this.pOff = this.base + c * this.chunk
    this.pSize = this.chunkSizeIndex
    return true
  }

  private phaseDone(): void {
    if (this.phase === MAIN && this.verifyPass && this.firstError === null && this.expectGen !== null && !this.userStopped) {
      this.phase = VERIFY
      this.stopIssuing = false
      this.exhausted = false
      this.havePending = false
      this.verifyCursor = 0
      this.pump()
      return
    }
    this.finish()
  }

  // ---- statistics ----

  /** Starts the statistics over at `from` (the run's start, or the end of the ramp). */
  private resetStats(from: number): void {
    this.statsEpoch = from
    this.histRead.reset()
    this.histWrite.reset()
    this.bytesRead = this.bytesWritten = 0
    this.iosRead = this.iosWritten = 0
    this.firstRead = this.firstWrite = this.lastRead = this.lastWrite = 0
    this.depthLevels.fill(0)
    this.sampledBytes.fill(0)
    this.sampledIos.fill(0)
    this.rateStats.fill(0)
    this.bwFrom = this.iopsFrom = from
    this.nextSample = this.nextDue()
    this.logCount = this.logDropped = 0
    this.logLat = []
    this.logBw = []
    this.logIops = []
    this.winN.fill(0)
    this.winSum.fill(0)
    this.winMax.fill(0)
    this.winLast.fill(0)
    this.usageFrom = process.resourceUsage()
  }

  private endRamp(): void {
    this.rampOver = true
    this.resetStats(this.rampEnd)
  }

  /** When the next interval sample (bandwidth or IOPS) is due; Infinity when both are per I/O. */
  private nextDue(): number {
    const bw = this.bwMs > 0 ? this.bwFrom + this.bwMs - SAMPLE_SLACK_MS : Infinity
    const iops = this.iopsMs > 0 ? this.iopsFrom + this.iopsMs - SAMPLE_SLACK_MS : Infinity
    return Math.min(bw, iops)
  }

  /**
   * Adds the rates of the intervals that just ended, as fio's __add_samples: whole milliseconds
   * spent, integer rates (KiB/s and I/Os a second), no sample for a direction without I/O in the
   * interval; the next interval starts one interval after this one started. Bandwidth and IOPS
   * keep intervals of their own (bwavgtime, iopsavgtime).
   */
  private sample(t: number): void {
    const at = Math.floor(t - this.statsEpoch)
    if (this.bwMs > 0) {
      const spent = Math.floor(t - this.bwFrom)
      if (spent >= this.bwMs - SAMPLE_SLACK_MS) {
        for (let d = 0; d < 2; d++) {
          const bytes = d === READ ? this.bytesRead : this.bytesWritten
          const delta = bytes - this.sampledBytes[d]!
          if (delta === 0) continue
          const v = Math.floor(Math.floor((delta * 1000) / spent) / 1024)
          this.addSample(d, v)
          if (this.logOpts?.bw === true) this.logBw.push(at, v, d)
          this.sampledBytes[d] = bytes
        }
        this.bwFrom += this.bwMs
      }
    }
    if (this.iopsMs > 0) {
      const spent = Math.floor(t - this.iopsFrom)
      if (spent >= this.iopsMs - SAMPLE_SLACK_MS) {
        for (let d = 0; d < 2; d++) {
          const ios = d === READ ? this.iosRead : this.iosWritten
          const delta = ios - this.sampledIos[d]!
          if (delta === 0) continue
          const v = Math.floor((delta * 1000) / spent)
          this.addSample(2 + d, v)
          if (this.logOpts?.iops === true) this.logIops.push(at, v, d)
          this.sampledIos[d] = ios
        }
        this.iopsFrom += this.iopsMs
      }
    }
    this.nextSample = this.nextDue()
  }

  /**
   * What a completed I/O adds when some statistic or log needs every I/O: per-I/O bandwidth and
   * IOPS samples (fio's, with a per-I/O log: bytes × 10^6 / latency in ns, and 1), its record in
   * the per-I/O log, or its latency in the window under way (fio's add_log_sample: a window of a
   * direction closes at the first of its I/Os at least `latWindowMs` after it opened).
   */
  private onIo(tag: number, op: number, t: number, t0: number, len: number): void {
    const ns = Math.round((t - t0) * 1e6)
    if (this.bwMs === 0) this.addSample(op, ns > 0 ? Math.floor((len * 1e6) / ns) : 0)
    if (this.iopsMs === 0) this.addSample(2 + op, 1)
    const log = this.logOpts
    if (log === null) return
    const at = Math.floor(t - this.statsEpoch)
    if ((log.lat && log.latWindowMs === 0) || (log.bw && this.bwMs === 0) || (log.iops && this.iopsMs === 0)) {
      if (this.logCount >= MAX_LOGGED_IOS) this.logDropped++
      else {
        let rec = this.logIos
        if (rec === null || rec.length < (this.logCount + 1) * 5) {
          const grown = new Float64Array(Math.min(MAX_LOGGED_IOS, Math.max(4096, this.logCount * 2)) * 5)
          if (rec !== null) grown.set(rec.subarray(0, this.logCount * 5))
          rec = this.logIos = grown
        }
        const i = this.logCount++ * 5
        rec[i] = at
        rec[i + 1] = ns
        rec[i + 2] = op
        rec[i + 3] = len
        rec[i + 4] = this.slotOff[tag]!
      }
    }
    if (log.lat && log.latWindowMs > 0) {
      this.winN[op]!++
      this.winSum[op]! += ns
      if (ns > this.winMax[op]!) this.winMax[op] = ns
      if (at >= this.winLast[op]! && at - this.winLast[op]! >= log.latWindowMs) {
        this.closeWindow(op, at)
        this.winLast[op] = at - (at % log.latWindowMs)
      }
    }
  }

  /** Writes direction `d`'s latency window as an entry at `at` (ms), when it had I/O, and empties it. */
  private closeWindow(d: number, at: number): void {
    const n = this.winN[d]!
    if (n > 0) this.logLat.push(at, this.logOpts!.maxValue ? this.winMax[d]! : Math.floor(this.winSum[d]! / n + 0.5), d)
    this.winN[d] = this.winSum[d] = this.winMax[d] = 0
  }

  /** The job's logs at its end: the windows under way are closed there, as fio's finalize_logs. */
  private logsResult(end: number): GeneratorLogs | undefined {
    const log = this.logOpts
    if (log === null) return undefined
    if (log.lat && log.latWindowMs > 0) for (let d = 0; d < 2; d++) this.closeWindow(d, Math.floor(end - this.statsEpoch))
    return {
      ios: this.logIos === null ? null : this.logIos.slice(0, this.logCount * 5),
      dropped: this.logDropped,
      lat: this.logLat,
      bw: this.logBw,
      iops: this.logIops,
    }
  }

  /** fio's add_stat_sample on rateStats[5·i …]: min, max, samples, running mean and S. */
  private addSample(i: number, v: number): void {
    const st = this.rateStats
    const at = i * 5
    const n = st[at + 2]!
    if (n === 0 || v < st[at]!) st[at] = v
    if (n === 0 || v > st[at + 1]!) st[at + 1] = v
    const delta = v - st[at + 3]!
    st[at + 3] = st[at + 3]! + delta / (n + 1)
    st[at + 4] = st[at + 4]! + delta * (v - st[at + 3]!)
    st[at + 2] = n + 1
  }

  private rateStat(i: number): SampleStat {
    const st = this.rateStats
    const at = i * 5
    return { min: st[at]!, max: st[at + 1]!, samples: st[at + 2]!, mean: st[at + 3]!, S: st[at + 4]! }
  }

  // ---- completion bookkeeping ----

  private onError(tag: number, op: number, len: number, error: string): void {
    if (op === READ) this.errRead++
    else this.errWrite++
    if (this.firstError === null) {
      this.firstError = { op: op === READ ? 'read' : 'write', offset: this.slotOff[tag]!, length: len, error }
    }
    // fio's default (continue_on_error=none): the job ends at its first error.
    this.stopIssuing = true
  }

  private fail(err: unknown): void {
    if (this.finished) return
    this.finished = true
    this.reject?.(err)
  }

  private finish(): void {
    if (this.finished) return
    this.finished = true
    if (this.paceTimer !== null) clearTimeout(this.paceTimer)
    const end = this.lastDone
    const runtimeMs = Math.max(0, end - this.statsEpoch)
    const u0 = this.usageFrom
    const u1 = process.resourceUsage()
    const dir = (h: LatencyHistogram, bytes: number, ios: number, errors: number, first: number, last: number, d: number): DirectionResult => {
      const rt = ios > 0 ? Math.max(0, last - first) : 0
      return {
        ioBytes: bytes,
        totalIos: ios,
        errors,
        runtimeMs: rt,
        iops: rt > 0 ? (ios * 1000) / rt : 0,
        bwBytes: rt > 0 ? (bytes * 1000) / rt : 0,
        latency: h.toJSON(),
        minNs: h.minNs,
        maxNs: h.maxNs,
        meanNs: h.meanNs,
        stddevNs: h.stddevNs,
        bwStat: this.rateStat(d),
        iopsStat: this.rateStat(2 + d),
      }
    }
    const base: ResultBase = {
      seed: this.seed,
      runtimeMs,
      read: dir(this.histRead, this.bytesRead, this.iosRead, this.errRead, this.firstRead, this.lastRead, READ),
      write: dir(this.histWrite, this.bytesWritten, this.iosWritten, this.errWrite, this.firstWrite, this.lastWrite, WRITE),
      maxInflight: this.maxInflight,
      depthLevels: Array.from(this.depthLevels),
      ...(u0 === null
        ? {}
        : {
            usage: {
              userUs: u1.userCPUTime - u0.userCPUTime,
              systemUs: u1.systemCPUTime - u0.systemCPUTime,
              ctx: u1.voluntaryContextSwitches + u1.involuntaryContextSwitches - u0.voluntaryContextSwitches - u0.involuntaryContextSwitches,
              minorFaults: u1.minorPageFault - u0.minorPageFault,
              majorFaults: u1.majorPageFault - u0.majorPageFault,
            },
          }),
      spuriousCompletions: this.spurious,
      ...(this.logOpts === null ? {} : { logs: this.logsResult(end) }),
      verify:
        this.verifyKind === null
          ? null
          : { kind: this.verifyKind, chunkBytes: this.chunk, checkedChunks: this.checked, failures: this.failures, first: this.failureList },
    }
    let result: GeneratorResult
    if (this.firstError !== null) {
      const e = this.firstError
      result = { ...base, status: 'io-error', error: e, message: `${e.op} of ${e.length} bytes at offset ${e.offset} failed with ${e.error}` }
    } else if (this.failureList.length > 0) {
      const f = this.failureList[0]!
      const more = this.failures > 1 ? ` (${this.failures} chunks failed)` : ''
      result = { ...base, status: 'verify-failed', failure: f, message: f.message + more }
    } else {
      result = { ...base, status: 'ok' }
    }
    this.resolve?.(result)
  }

  // ---- verify ----

  /** Whether the pending I/O overlaps a write in flight (or, for a write, any I/O in flight). */
  private conflicts(): boolean {
    const c0 = Math.floor((this.pOff - this.base) / this.chunk)
    const c1 = Math.ceil((this.pOff - this.base + this.sizes[this.pSize]!) / this.chunk)
    const w = this.wbusy!
    const r = this.rbusy!
    const isWrite = this.pOp === WRITE
    for (let c = c0; c < c1 && c < w.length; c++) if (w[c] !== 0 || (isWrite && r[c] !== 0)) return true
    return false
  }

  private beforeVerifyIo(slot: number, op: number, off: number, len: number, view: Uint8Array, vi: number): void {
    const rel = off - this.base
    const c0 = Math.floor(rel / this.chunk)
    const c1 = Math.min(Math.ceil((rel + len) / this.chunk), this.expectGen!.length)
    let dv = this.dataViews[vi]
    if (dv === undefined || dv.buffer !== view.buffer) {
      dv = new DataView(view.buffer, view.byteOffset, view.byteLength)
      if (this.views[vi] === view) this.dataViews[vi] = dv
    }
    this.slotView[slot] = view
    this.slotDv[slot] = dv
    if (op === WRITE) {
      let gen = ++this.writeGen
      if (gen >= UNKNOWN_GEN) gen = this.writeGen = 1
      this.slotGen[slot] = gen
      for (let at = 0; at + this.chunk <= len; at += this.chunk) {
        writeVerifyHeader(this.verifyKind!, dv, view, at, this.chunk, off + at, gen, this.seedTag)
      }
      for (let c = c0; c < c1; c++) this.wbusy![c] = 1
    } else {
      for (let c = c0; c < c1; c++) this.rbusy![c]!++
    }
  }

  private afterVerifyIo(slot: number, op: number, len: number, ok: boolean): void {
    const off = this.slotOff[slot]!
    const rel = off - this.base
    const chunk = this.chunk
    const expect = this.expectGen!
    const c0 = Math.floor(rel / chunk)
    const c1 = Math.min(Math.ceil((rel + len) / chunk), expect.length)
    const dv = this.slotDv[slot]!
    const buf = this.slotView[slot]!
    this.slotView[slot] = this.slotDv[slot] = null
    if (op === WRITE) {
      const gen = ok ? this.slotGen[slot]! : UNKNOWN_GEN
      // Writes cover whole chunks: the chunk is the smallest write and writes align to it.
      for (let c = c0; c < c1; c++) {
        this.wbusy![c] = 0
        expect[c] = gen
      }
      return
    }
    for (let c = c0; c < c1; c++) this.rbusy![c]!--
    if (!ok) return
    // Only chunks wholly inside the read can be checked.
    const first = Math.ceil(rel / chunk)
    const lastEnd = Math.floor((rel + len) / chunk)
    for (let c = first; c < lastEnd && c < expect.length; c++) {
      const gen = expect[c]!
      if (gen === UNKNOWN_GEN) continue
      if (gen === 0 && !this.verifyForeign) continue
      const at = c * chunk - rel
      const f = checkVerifyChunk(this.verifyKind!, dv, buf, at, chunk, this.base + c * chunk, gen === 0 ? null : gen, gen === 0 ? null : this.seedTag)
      this.checked++
      if (f !== null) {
        this.failures++
        if (this.failureList.length < MAX_FAILURES_KEPT) this.failureList.push(f)
      }
    }
  }
}

function resolveBlockSizes(o: GeneratorOptions, bad: (m: string) => never): { read: BlockSizes; write: BlockSizes } {
  if (o.bssplit !== undefined) {
    const total = o.bssplit.reduce((s, e) => s + e.pct, 0)
    if (o.bssplit.length === 0 || Math.abs(total - 100) > 1e-9) bad(`bssplit percentages add up to ${total}, not 100`)
    const b: BlockSizes = { kind: 'split', entries: o.bssplit }
    return { read: b, write: b }
  }
  if (o.bs === undefined) return { read: { kind: 'fixed', bs: 4096 }, write: { kind: 'fixed', bs: 4096 } }
  if (typeof o.bs === 'number') return { read: { kind: 'fixed', bs: o.bs }, write: { kind: 'fixed', bs: o.bs } }
  return o.bs
}

/** Where one copy of a job runs. */
export interface JobPlacement {
  /** Bytes of the disk the copy runs on. */
  readonly capacity: number
  /** Which copy (0 … numjobs − 1): shifts the offset by offset_increment and the seed. */
  readonly clone?: number
  /** The seed for jobs with randrepeat=0 (one per run; the copy is mixed in). */
  readonly runSeed?: number
}

/** The generator options for one copy of a parsed job. */
export function generatorOptionsFor(spec: JobSpec, placement: JobPlacement): GeneratorOptions {
  const clone = placement.clone ?? 0
  const offset = spec.offset + clone * spec.offsetIncrement
  const seed = spec.seed ?? placement.runSeed
  return {
    rw: spec.rw,
    rwmixread: spec.readPct,
    bs: spec.bs,
    iodepth: spec.iodepth,
    capacity: placement.capacity,
    offset,
    size: spec.size ?? placement.capacity - offset,
    ioSize: spec.ioSize,
    numberIos: spec.numberIos,
    loops: spec.loops,
    runtimeMs: spec.runtimeMs,
    timeBased: spec.timeBased,
    rampMs: spec.rampMs,
    verify: spec.verify,
    doVerify: spec.doVerify,
    norandommap: spec.norandommap,
    ...(spec.rate?.read || spec.rate?.write || spec.rateIops?.read || spec.rateIops?.write
      ? { rate: { read: { bytes: spec.rate.read, ios: spec.rateIops.read }, write: { bytes: spec.rate.write, ios: spec.rateIops.write } } }
      : {}),
    ...(seed === undefined ? { randrepeat: false } : { seed: clone === 0 ? seed : deriveSeed(seed, clone) }),
    ...sampling(spec),
  }
}

/**
 * fio's sample intervals and logs for a job: bandwidth is sampled every bwavgtime ms (500), or
 * with a bandwidth log and no bwavgtime of its own every log_avg_msec (0: every I/O, as fio then
 * also fills bw_min … bw_samples from every I/O); IOPS likewise. Latency logs average over
 * log_avg_msec (0: an entry per I/O).
 */
function sampling(spec: JobSpec): Pick<GeneratorOptions, 'bwIntervalMs' | 'iopsIntervalMs' | 'log'> {
  const l = spec.logs
  const bwIntervalMs = spec.bwAvgMs ?? (l.bw !== null ? l.avgMs : SAMPLE_INTERVAL_MS)
  const iopsIntervalMs = spec.iopsAvgMs ?? (l.iops !== null ? l.avgMs : SAMPLE_INTERVAL_MS)
  const any = l.bw !== null || l.iops !== null || l.lat !== null
  return {
    bwIntervalMs,
    iopsIntervalMs,
    ...(any ? { log: { lat: l.lat !== null, latWindowMs: l.avgMs, maxValue: l.maxValue, bw: l.bw !== null, iops: l.iops !== null } } : {}),
  }
}
