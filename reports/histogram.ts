/**
 * Latency histograms that merge exactly, so percentiles of merged shards or VMs are recomputed
 * from the merged counts, never averaged.
 *
 * Bucket layout (HDR-like, log-linear, integer nanoseconds):
 * - values 0 … 255 ns each have a bucket of their own (exact);
 * - above, every power-of-two range [2^k, 2^(k+1)) is split into 128 equal sub-buckets, so a
 *   bucket's width is at most 1/128 of its lower bound: a value read back as its bucket's
 *   upper bound is at most 0.79 % too high;
 * - the top bucket ends at 2^41 − 1 ns (about 36 minutes); larger values are counted there
 *   (the exact maximum is still kept in `maxNs`).
 *
 * Serialized form (`HistogramData`): the inclusive upper bounds of the non-empty buckets and
 * their counts, plus the exact sum, min and max. Merging adds the counts of equal bounds, which
 * works for any two histograms of this layout and loses nothing.
 */
import type { HistogramData, LatencySummary } from './document.js'

/** Sub-buckets per power of two; the relative error bound is 1 / SUB_BUCKETS. */
export const SUB_BUCKETS = 128
const EXACT = 2 * SUB_BUCKETS
/** Largest exponent step: the top bucket ends at 2^(MAX_SHIFT + 8) − 1 ns. */
const MAX_SHIFT = 33
const BUCKETS = EXACT + MAX_SHIFT * SUB_BUCKETS
/** Largest value a bucket distinguishes, in ns. */
export const MAX_TRACKABLE_NS = 2 ** (MAX_SHIFT + 8) - 1

/** The bucket index of a value in ns (negative values count as 0). */
export function bucketIndex(ns: number): number {
  const v = Math.min(Math.max(0, Math.round(ns)), MAX_TRACKABLE_NS)
  if (v < EXACT) return v
  // Math.log2 may round at a power-of-two boundary; the two corrections make the shift exact.
  let shift = Math.floor(Math.log2(v)) - 7
  let sub = Math.floor(v / 2 ** shift)
  if (sub >= EXACT) { shift++; sub = Math.floor(v / 2 ** shift) }
  if (sub < SUB_BUCKETS) { shift--; sub = Math.floor(v / 2 ** shift) }
  return EXACT + (shift - 1) * SUB_BUCKETS + (sub - SUB_BUCKETS)
}

/** The inclusive upper bound, in ns, of the bucket at `index`. */
export function bucketUpperNs(index: number): number {
  if (index < EXACT) return index
  const shift = Math.floor((index - EXACT) / SUB_BUCKETS) + 1
  const sub = ((index - EXACT) % SUB_BUCKETS) + SUB_BUCKETS
  return (sub + 1) * 2 ** shift - 1
}

/** A recording histogram; `toJSON()` gives the serialized `HistogramData`. */
export class LatencyHistogram {
  private readonly buckets = new Float64Array(BUCKETS)
  private n = 0
  private sum = 0
  private min = Infinity
  private max = -Infinity

  /** Records `count` occurrences of a latency of `ns` nanoseconds. */
  record(ns: number, count = 1): void {
    const v = Math.max(0, Math.round(ns))
    this.buckets[bucketIndex(v)]! += count
    this.n += count
    this.sum += v * count
    if (v < this.min) this.min = v
    if (v > this.max) this.max = v
  }

  /** Adds every count of `other` to this histogram. */
  merge(other: LatencyHistogram | HistogramData): this {
    const data = other instanceof LatencyHistogram ? other.toJSON() : other
    for (let i = 0; i < data.bucketNs.length; i++) {
      const c = data.counts[i]!
      if (c > 0) this.buckets[bucketIndex(data.bucketNs[i]!)]! += c
      this.n += c
    }
    if (data.counts.length > 0) {
      this.sum += data.sumNs ?? estimateSum(data)
      this.min = Math.min(this.min, data.minNs ?? data.bucketNs[0]!)
      this.max = Math.max(this.max, data.maxNs ?? data.bucketNs[data.bucketNs.length - 1]!)
    }
    return this
  }

  /** Number of recorded values. */
  get count(): number {
    return this.n
  }

  /** The value at percentile `p` (0–100), as its bucket's upper bound capped at the exact max. */
  percentile(p: number): number {
    return histogramPercentile(this.toJSON(), p)
  }

  /** p50, p90, p99, p99.9, max and mean. */
  summary(): LatencySummary {
    return summarizeHistogram(this.toJSON())
  }

  /** The sparse serialized form. */
  toJSON(): HistogramData {
    const bucketNs: number[] = []
    const counts: number[] = []
    for (let i = 0; i < BUCKETS; i++) {
      const c = this.buckets[i]!
      if (c > 0) {
        bucketNs.push(bucketUpperNs(i))
        counts.push(c)
      }
    }
    if (this.n === 0) return { bucketNs, counts, sumNs: 0 }
    return { bucketNs, counts, sumNs: this.sum, minNs: this.min, maxNs: this.max }
  }

  /** A histogram holding the counts of `data`. */
  static from(data: HistogramData): LatencyHistogram {
    return new LatencyHistogram().merge(data)
  }
}

/** Number of values in a serialized histogram. */
export function histogramCount(h: HistogramData): number {
  let n = 0
  for (const c of h.counts) n += c
  return n
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
export function summarizeHistogram(h: HistogramData): LatencySummary {
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
