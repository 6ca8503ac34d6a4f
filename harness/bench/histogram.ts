/**
 * A latency histogram that merges exactly, so the percentiles of several VMs or runs are
 * computed from their combined counts — never by averaging percentiles.
 *
 * Buckets (log-linear, as HdrHistogram, integer nanoseconds): 0 … 255 ns one bucket per
 * nanosecond; above, every power-of-two range [2^k, 2^(k+1)) is cut into 128 equal buckets, so a
 * bucket is at most 1/128 of its lower bound wide and a percentile read back as its bucket's
 * upper bound is at most 0.79 % high (well inside 1 % from 100 ns to 100 s). The top bucket ends
 * at 2^41 − 1 ns (about 36 minutes); larger values count there. This is the layout of the
 * report document's histograms, so `toJSON()` can be merged there as it is.
 *
 * min, max, mean and standard deviation are exact (kept beside the buckets, not estimated).
 * `record()` allocates nothing: it is called once per I/O.
 */

const SUB_BITS = 7
const SUB = 1 << SUB_BITS
const EXACT = 2 * SUB
const MAX_SHIFT = 33
const BUCKETS = EXACT + MAX_SHIFT * SUB
/** Largest value the buckets tell apart, in ns. */
export const HISTOGRAM_MAX_NS = 2 ** (MAX_SHIFT + 8) - 1
const TWO32 = 4294967296

/** The serialized histogram: non-empty buckets by inclusive upper bound, and exact moments. */
export interface HistogramJSON {
  /** Inclusive upper bounds (ns) of the non-empty buckets, ascending. */
  bucketNs: number[]
  counts: number[]
  /** Number of recorded values. */
  n: number
  /** Exact sum of the recorded values, ns. */
  sumNs: number
  /** Exact smallest and largest values, ns (0 when empty). */
  minNs: number
  maxNs: number
  /** Exact sample standard deviation, ns (0 for fewer than two values). */
  stddevNs: number
}

/** The bucket index of a value in ns (negative values count as 0). */
export function bucketIndex(ns: number): number {
  if (!(ns > 0)) return 0
  if (ns < EXACT) return Math.floor(ns)
  if (ns < TWO32) {
    const x = ns >>> 0
    const shift = 31 - Math.clz32(x) - SUB_BITS
    return EXACT + (shift - 1) * SUB + ((x >>> shift) - SUB)
  }
  if (ns >= HISTOGRAM_MAX_NS) return BUCKETS - 1
  const msb = 63 - Math.clz32(Math.floor(ns / TWO32))
  const shift = msb - SUB_BITS
  return EXACT + (shift - 1) * SUB + (Math.floor(ns / 2 ** shift) - SUB)
}

/** The inclusive upper bound, in ns, of the bucket at `index`. */
export function bucketUpperNs(index: number): number {
  if (index < EXACT) return index
  const shift = Math.floor((index - EXACT) / SUB) + 1
  const sub = ((index - EXACT) % SUB) + SUB
  return (sub + 1) * 2 ** shift - 1
}

// fio's latency buckets (stat.h): FIO_IO_U_PLAT_BITS index bits a group, FIO_IO_U_PLAT_GROUP_NR
// groups. A value below 2^(BITS+1) is its own bucket; above, a value whose top bit is bit m
// keeps its BITS bits below m, so each power of two [2^m, 2^(m+1)) has 2^BITS buckets.
const FIO_PLAT_BITS = 6
const FIO_PLAT_VAL = 1 << FIO_PLAT_BITS
/** Buckets of fio's histogram (FIO_IO_U_PLAT_NR). */
export const FIO_PLAT_NR = 29 * FIO_PLAT_VAL

/**
 * fio's bucket index of a latency in ns (fio's plat_val_to_idx): the value itself up to
 * 2^(BITS+1) − 1, then 2^BITS buckets a power of two; values past the last group count in the
 * last bucket.
 */
export function fioPlatIndex(ns: number): number {
  const v = ns > 0 ? Math.floor(ns) : 0
  if (v < 2 * FIO_PLAT_VAL) return v
  // the top bit's position (Math.log2 may be one off next to a power of two)
  let top = Math.floor(Math.log2(v))
  if (2 ** top > v) top--
  else if (2 ** (top + 1) <= v) top++
  const errorBits = top - FIO_PLAT_BITS
  const idx = (errorBits + 1) * FIO_PLAT_VAL + (Math.floor(v / 2 ** errorBits) % FIO_PLAT_VAL)
  return Math.min(idx, FIO_PLAT_NR - 1)
}

/**
 * The latency fio reports for its bucket `idx` (fio's plat_idx_to_val): the value itself below
 * 2^(BITS+1), else the middle of the bucket's range, truncated to whole ns.
 */
export function fioPlatValue(idx: number): number {
  if (idx < 2 * FIO_PLAT_VAL) return idx
  const errorBits = Math.floor(idx / FIO_PLAT_VAL) - 1
  const base = 2 ** (errorBits + FIO_PLAT_BITS)
  const k = idx % FIO_PLAT_VAL
  return base + Math.floor((k + 0.5) * 2 ** errorBits)
}

/**
 * The histogram in fio's buckets, as fio's json+ `bins` writes them: each non-empty bucket's
 * value (`fioPlatValue`, in ns, as a decimal string) → its count, ascending. Exact, not an
 * estimate: each of our buckets lies wholly inside one of fio's (ours are one ns wide below 256
 * ns, and a power of two is cut in 128 where fio cuts it in 64), so every value counts where fio
 * would have counted it.
 */
export function fioBins(h: HistogramJSON): Record<string, number> {
  const counts = new Map<number, number>()
  for (let i = 0; i < h.bucketNs.length; i++) {
    const idx = fioPlatIndex(h.bucketNs[i]!)
    counts.set(idx, (counts.get(idx) ?? 0) + h.counts[i]!)
  }
  const out: Record<string, number> = {}
  for (const idx of [...counts.keys()].sort((a, b) => a - b)) out[String(fioPlatValue(idx))] = counts.get(idx)!
  return out
}

/** A recording, mergeable latency histogram (values in nanoseconds). */
export class LatencyHistogram {
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

  /** Adds every value of `other` (a histogram or its JSON) to this one. */
  merge(other: LatencyHistogram | HistogramJSON): this {
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

  /** The sparse serialized form. */
  toJSON(): HistogramJSON {
    const bucketNs: number[] = []
    const counts: number[] = []
    for (let i = 0; i < BUCKETS; i++) {
      if (this.counts[i] !== 0) {
        bucketNs.push(bucketUpperNs(i))
        counts.push(this.counts[i]!)
      }
    }
    return { bucketNs, counts, n: this.n, sumNs: this.sum, minNs: this.minNs, maxNs: this.maxNs, stddevNs: this.stddevNs }
  }

  /** Rebuilds a histogram from `toJSON()` output; throws RangeError on an inconsistent one. */
  static fromJSON(j: HistogramJSON): LatencyHistogram {
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
    if (n !== j.n) throw new RangeError(`histogram JSON: counts add up to ${n}, not n = ${j.n}`)
    if (n === 0) return h
    h.n = n
    h.sum = j.sumNs
    h.min = j.minNs
    h.max = j.maxNs
    // Moments about the mean: Σ(x−mean) = 0 and Σ(x−mean)² = s²(n−1).
    h.shift = j.sumNs / n
    h.dev = 0
    h.dev2 = j.stddevNs * j.stddevNs * (n - 1)
    return h
  }
}
