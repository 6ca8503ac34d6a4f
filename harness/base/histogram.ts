/**
 * The latency histogram, once: the bench records into it per I/O, the reports merge and read the
 * histograms report documents carry. It merges exactly, so the percentiles of several VMs, runs
 * or shards are computed from their combined counts — never by averaging percentiles.
 *
 * Buckets (log-linear, as HdrHistogram, integer nanoseconds): 0 … 255 ns one bucket per
 * nanosecond; above, every power-of-two range [2^k, 2^(k+1)) is cut into 128 equal buckets, so a
 * bucket is at most 1/128 of its lower bound wide and a percentile read back as its bucket's
 * upper bound is at most 0.79 % high (well inside 1 % from 100 ns to 100 s). The top bucket ends
 * at 2^41 − 1 ns (about 36 minutes); larger values count there (the exact maximum is kept).
 *
 * Serialized form: the inclusive upper bounds of the non-empty buckets and their counts, with the
 * exact sum, min and max (`HistogramData`, a report document's histogram); `toJSON()` adds the
 * count and the exact standard deviation (`HistogramJSON`). Merging adds the counts of equal
 * bounds, which works for any two histograms of this layout and loses nothing.
 *
 * min, max, mean and standard deviation are exact (kept beside the buckets, not estimated).
 * `record()` allocates nothing: the bench calls it once per I/O.
 */

const SUB_BITS = 7
const SUB = 1 << SUB_BITS
/** Buckets per power of two; the relative error bound is 1 / SUB_BUCKETS. */
export const SUB_BUCKETS = SUB
const EXACT = 2 * SUB
const MAX_SHIFT = 33
const BUCKETS = EXACT + MAX_SHIFT * SUB
/** Largest value the buckets tell apart, in ns. */
export const HISTOGRAM_MAX_NS = 2 ** (MAX_SHIFT + 8) - 1
const TWO32 = 4294967296

/**
 * A serialized histogram as a report document carries it (report.schema.json `histogram`):
 * `bucketNs[i]` is the inclusive upper bound of a non-empty bucket and `counts[i]` its count,
 * `bucketNs` strictly ascending.
 */
export interface HistogramData {
  bucketNs: number[]
  counts: number[]
  /** Exact sum of the recorded values, ns (a merged mean stays exact). */
  sumNs?: number
  /** Exact smallest and largest recorded values, ns. */
  minNs?: number
  maxNs?: number
}

/**
 * `LatencyHistogram.toJSON()`: `HistogramData` with every moment filled in (0 when empty), plus
 * the count and the exact standard deviation. `toHistogramData` makes it a report document's.
 */
export interface HistogramJSON extends HistogramData {
  /** Number of recorded values (the sum of `counts`). */
  n: number
  sumNs: number
  minNs: number
  maxNs: number
  /** Exact sample standard deviation, ns (0 for fewer than two values). */
  stddevNs: number
}

/** What `fromJSON` and `merge` read: either serialized form (`n` is checked when present). */
export type HistogramInput = HistogramData & { n?: number; stddevNs?: number }

/** The latency summary of a histogram: percentiles, max and mean, ns. */
export interface HistogramSummary {
  p50: number
  p90: number
  p99: number
  p999: number
  max: number
  mean: number
}

/** The bucket index of a value in ns (rounded to whole ns; negative values count as 0). */
export function bucketIndex(ns: number): number {
  const v = ns > 0 ? Math.round(ns) : 0
  if (v < EXACT) return v
  if (v < TWO32) {
    const shift = 31 - Math.clz32(v) - SUB_BITS
    return EXACT + (shift - 1) * SUB + ((v >>> shift) - SUB)
  }
  if (v >= HISTOGRAM_MAX_NS) return BUCKETS - 1
  const msb = 63 - Math.clz32(Math.floor(v / TWO32))
  const shift = msb - SUB_BITS
  return EXACT + (shift - 1) * SUB + (Math.floor(v / 2 ** shift) - SUB)
}

/** The inclusive upper bound, in ns, of the bucket at `index`. */
export function bucketUpperNs(index: number): number {
  if (index < EXACT) return index
  const shift = Math.floor((index - EXACT) / SUB) + 1
  const sub = ((index - EXACT) % SUB) + SUB
  return (sub + 1) * 2 ** shift - 1
}

/**
 * A recording, mergeable latency histogram (values in nanoseconds). `J` is the form `toJSON()`
 * gives: `HistogramJSON` here, a report document's `HistogramData` in reports' subclass.
 */
export class LatencyHistogram<J extends HistogramData = HistogramJSON> {
  private readonly counts = new Float64Array(BUCKETS)
  private n = 0
  private sum = 0
  private min = Infinity
  private max = -Infinity
  // Moments about a fixed shift (the first value): no division per record, and no
  // cancellation when the spread is tiny against the mean.
  private shift = 0
  private dev = 0
  private dev2 = 0

  /** Records one latency of `ns` nanoseconds. */
  record(ns: number): void {
    const v = ns > 0 ? Math.round(ns) : 0
    let idx: number
    if (v < EXACT) idx = v
    else if (v < TWO32) {
      const shift = 31 - Math.clz32(v) - SUB_BITS
      idx = EXACT + (shift - 1) * SUB + ((v >>> shift) - SUB)
    } else idx = bucketIndex(v)
    this.counts[idx]!++
    if (this.n === 0) this.shift = v
    this.n++
    this.sum += v
    const d = v - this.shift
    this.dev += d
    this.dev2 += d * d
    if (v < this.min) this.min = v
    if (v > this.max) this.max = v
  }

  /** Adds every value of `other` (a histogram, its JSON or a report document's histogram) to this one. */
  merge(other: LatencyHistogram<HistogramData> | HistogramInput): this {
    const o = other instanceof LatencyHistogram ? other : LatencyHistogram.fromJSON(other)
    if (o.n === 0) return this
    for (let i = 0; i < BUCKETS; i++) if (o.counts[i] !== 0) this.counts[i]! += o.counts[i]!
    if (this.n === 0) {
      this.shift = o.shift
      this.dev = o.dev
      this.dev2 = o.dev2
    } else {
      // Re-express o's moments about this shift: Σ(x−a) = Σ(x−b) + n(b−a), and likewise squared.
      const delta = o.shift - this.shift
      this.dev += o.dev + o.n * delta
      this.dev2 += o.dev2 + 2 * delta * o.dev + o.n * delta * delta
    }
    this.n += o.n
    this.sum += o.sum
    if (o.min < this.min) this.min = o.min
    if (o.max > this.max) this.max = o.max
    return this
  }

  /** Number of recorded values. */
  get count(): number {
    return this.n
  }

  /** Exact minimum, ns (0 when empty). */
  get minNs(): number {
    return this.n === 0 ? 0 : this.min
  }

  /** Exact maximum, ns (0 when empty). */
  get maxNs(): number {
    return this.n === 0 ? 0 : this.max
  }

  /** Exact mean, ns (0 when empty). */
  get meanNs(): number {
    return this.n === 0 ? 0 : this.sum / this.n
  }

  /** Exact sample standard deviation (n − 1, as fio), ns. */
  get stddevNs(): number {
    if (this.n < 2) return 0
    const m2 = this.dev2 - (this.dev * this.dev) / this.n
    return Math.sqrt(Math.max(0, m2) / (this.n - 1))
  }

  /**
   * The value at percentile `p` (0 … 100): the smallest bucket bound with at least p % of the
   * values at or below it, clamped to the exact min and max. 0 when empty.
   */
  percentile(p: number): number {
    if (this.n === 0) return 0
    if (p <= 0) return this.min
    if (p >= 100) return this.max
    const rank = Math.max(1, Math.ceil((p / 100) * this.n))
    let seen = 0
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!
      if (seen >= rank) return Math.min(this.max, Math.max(this.min, bucketUpperNs(i)))
    }
    return this.max
  }

  /** Several percentiles at once (one pass over the buckets per call is cheap enough). */
  percentiles(ps: readonly number[]): number[] {
    return ps.map((p) => this.percentile(p))
  }

  /** p50, p90, p99, p99.9, max and mean, as a report carries them. */
  summary(): HistogramSummary {
    return summarizeHistogram(this.toJSON())
  }

  /** Empties the histogram. */
  reset(): void {
    this.counts.fill(0)
    this.n = 0
    this.sum = 0
    this.min = Infinity
    this.max = -Infinity
    this.shift = 0
    this.dev = 0
    this.dev2 = 0
  }

  /** The sparse serialized form, every field filled in (a `HistogramJSON`). */
  toJSON(): J {
    const bucketNs: number[] = []
    const counts: number[] = []
    for (let i = 0; i < BUCKETS; i++) {
      if (this.counts[i] !== 0) {
        bucketNs.push(bucketUpperNs(i))
        counts.push(this.counts[i]!)
      }
    }
    const json: HistogramJSON = { bucketNs, counts, n: this.n, sumNs: this.sum, minNs: this.minNs, maxNs: this.maxNs, stddevNs: this.stddevNs }
    // a subclass serializing otherwise (J ≠ HistogramJSON) overrides this method
    return json as HistogramData as J
  }

  /**
   * Rebuilds a histogram from `toJSON()` output or a report document's histogram; throws
   * RangeError on an inconsistent one. Moments the form lacks are taken from the buckets (each
   * value at its bucket's upper bound).
   */
  static fromJSON(j: HistogramInput): LatencyHistogram {
    if (!Array.isArray(j.bucketNs) || !Array.isArray(j.counts) || j.bucketNs.length !== j.counts.length) {
      throw new RangeError('histogram JSON: bucketNs and counts must be arrays of equal length')
    }
    const h = new LatencyHistogram()
    let n = 0
    for (let i = 0; i < j.bucketNs.length; i++) {
      const c = j.counts[i]!
      if (!(c >= 0)) throw new RangeError(`histogram JSON: bad count ${c}`)
      h.counts[bucketIndex(j.bucketNs[i]!)]! += c
      n += c
    }
    if (j.n !== undefined && n !== j.n) throw new RangeError(`histogram JSON: counts add up to ${n}, not n = ${j.n}`)
    if (n === 0) return h
    h.n = n
    h.sum = j.sumNs ?? estimateSum(j)
    h.min = j.minNs ?? j.bucketNs[0]!
    h.max = j.maxNs ?? j.bucketNs[j.bucketNs.length - 1]!
    // Moments about the mean: Σ(x−mean) = 0 and Σ(x−mean)² = s²(n−1).
    h.shift = h.sum / n
    h.dev = 0
    if (j.stddevNs !== undefined) h.dev2 = j.stddevNs * j.stddevNs * (n - 1)
    else for (let i = 0; i < j.bucketNs.length; i++) h.dev2 += j.counts[i]! * (j.bucketNs[i]! - h.shift) ** 2
    return h
  }

  /** A histogram (of the class it is called on) holding the counts of `data`. */
  static from<T extends LatencyHistogram<HistogramData>>(this: new () => T, data: HistogramInput): T {
    return new this().merge(data)
  }
}

/** Number of values in a serialized histogram. */
export function histogramCount(h: HistogramData): number {
  let n = 0
  for (const c of h.counts) n += c
  return n
}

/**
 * A report document's histogram (report.schema.json) from any serialized one: the buckets and
 * the exact sum, min and max, without the count and standard deviation; an empty one carries
 * only its zero sum.
 */
export function toHistogramData(h: HistogramData): HistogramData {
  const { bucketNs, counts, sumNs, minNs, maxNs } = h
  if (histogramCount(h) === 0) return { bucketNs, counts, sumNs: 0 }
  return { bucketNs, counts, ...(sumNs !== undefined ? { sumNs } : {}), ...(minNs !== undefined ? { minNs } : {}), ...(maxNs !== undefined ? { maxNs } : {}) }
}

/**
 * Merges serialized histograms by adding the counts of equal bucket bounds. Exact for
 * histograms of this layout; for others it is the union of their buckets, still mergeable.
 */
export function mergeHistograms(list: readonly HistogramData[]): HistogramData {
  const byBound = new Map<number, number>()
  let sumNs = 0
  let minNs = Infinity
  let maxNs = -Infinity
  let any = false
  for (const h of list) {
    for (let i = 0; i < h.bucketNs.length; i++) {
      const c = h.counts[i]!
      if (c === 0) continue
      byBound.set(h.bucketNs[i]!, (byBound.get(h.bucketNs[i]!) ?? 0) + c)
    }
    if (h.counts.length === 0) continue
    any = true
    sumNs += h.sumNs ?? estimateSum(h)
    minNs = Math.min(minNs, h.minNs ?? h.bucketNs[0]!)
    maxNs = Math.max(maxNs, h.maxNs ?? h.bucketNs[h.bucketNs.length - 1]!)
  }
  const bucketNs = [...byBound.keys()].sort((a, b) => a - b)
  const counts = bucketNs.map(b => byBound.get(b)!)
  if (!any) return { bucketNs, counts, sumNs: 0 }
  return { bucketNs, counts, sumNs, minNs, maxNs }
}

/**
 * The value at percentile `p` (0–100): the upper bound of the bucket holding the value of rank
 * ⌈p/100 × n⌉, capped at the exact max (and raised to the exact min). 0 for an empty histogram.
 * As `LatencyHistogram.percentile` for 0 < p < 100 (which reads p ≤ 0 as the exact min).
 */
export function histogramPercentile(h: HistogramData, p: number): number {
  const total = histogramCount(h)
  if (total === 0) return 0
  const rank = Math.max(1, Math.ceil((Math.min(100, Math.max(0, p)) / 100) * total))
  let seen = 0
  for (let i = 0; i < h.counts.length; i++) {
    seen += h.counts[i]!
    if (seen >= rank) return clamp(h.bucketNs[i]!, h)
  }
  return clamp(h.bucketNs[h.bucketNs.length - 1]!, h)
}

/** The latency summary a report carries, computed from the histogram alone. */
export function summarizeHistogram(h: HistogramData): HistogramSummary {
  const n = histogramCount(h)
  if (n === 0) return { p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 }
  return {
    p50: histogramPercentile(h, 50),
    p90: histogramPercentile(h, 90),
    p99: histogramPercentile(h, 99),
    p999: histogramPercentile(h, 99.9),
    max: h.maxNs ?? h.bucketNs[h.bucketNs.length - 1]!,
    mean: Math.round((h.sumNs ?? estimateSum(h)) / n),
  }
}

function clamp(v: number, h: HistogramData): number {
  if (h.maxNs !== undefined && v > h.maxNs) v = h.maxNs
  if (h.minNs !== undefined && v < h.minNs) v = h.minNs
  return v
}

// Without an exact sum, each bucket counts at its upper bound: an overestimate within the bucket error.
function estimateSum(h: HistogramData): number {
  let s = 0
  for (let i = 0; i < h.counts.length; i++) s += h.counts[i]! * h.bucketNs[i]!
  return s
}
