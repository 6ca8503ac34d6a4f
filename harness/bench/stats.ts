/**
 * The statistics of the performance verdicts: distribution-free confidence intervals over
 * measured slices, seeded so that the same slices give the same interval. No dependencies.
 *
 * - `signedRankInterval`: the Hodges–Lehmann estimate of the centre of paired differences (the
 *   median of their Walsh averages) with the exact Wilcoxon signed-rank interval.
 * - `rankSumInterval`: the Hodges–Lehmann shift between two samples (the median of all pairwise
 *   differences) with the Mann–Whitney interval (exact for small samples, normal beyond).
 * - `bootstrapInterval`: the percentile bootstrap of any statistic over resampled units.
 * - `HistogramSlices`: latency histograms of slices, for percentiles of merged resamples.
 * - `judge`: where an interval lies against a bound; `sequential`: take slices until it is decisive.
 */

/** An estimate and its interval; `confidence` is the coverage the method achieves (≥ the one asked for when it can). */
export interface Interval {
  readonly estimate: number
  readonly low: number
  readonly high: number
  readonly confidence: number
}

/** A small seeded generator (splitmix32 seeding, xorshift128+-style mixing), uniform doubles in [0, 1). */
export class SeededRandom {
  private a: number
  private b: number
  private c: number
  private d: number

  constructor(seed: number) {
    let x = (seed >>> 0) ^ 0x6d2b79f5
    const next = () => {
      x = (x + 0x9e3779b9) | 0
      let z = x
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
      return (z ^ (z >>> 16)) >>> 0
    }
    this.a = next()
    this.b = next()
    this.c = next()
    this.d = next() | 1
  }

  /** A uniform double in [0, 1) (xoshiro128+ on 32-bit words). */
  next(): number {
    const r = (this.a + this.d) >>> 0
    const t = this.b << 9
    this.c ^= this.a
    this.d ^= this.b
    this.b ^= this.c
    this.a ^= this.d
    this.c ^= t
    this.d = (this.d << 11) | (this.d >>> 21)
    return r / 4294967296
  }

  /** A uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n)
  }

  /** A standard normal deviate (Box–Muller). */
  normal(): number {
    let u = 0
    while (u === 0) u = this.next()
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next())
  }

  /** Shuffles `a` in place (Fisher–Yates) and returns it. */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1)
      const t = a[i]!
      a[i] = a[j]!
      a[j] = t
    }
    return a
  }
}

/** The p-quantile (0 ≤ p ≤ 1) of values, linear between order statistics (R's type 7); NaN when empty. */
export function quantile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN
  const s = Float64Array.from(values).sort()
  const h = (s.length - 1) * Math.min(1, Math.max(0, p))
  const lo = Math.floor(h)
  return s[lo]! + (h - lo) * ((s[Math.min(lo + 1, s.length - 1)] ?? s[lo]!) - s[lo]!)
}

export function median(values: readonly number[]): number {
  return quantile(values, 0.5)
}

/** The median absolute deviation scaled to estimate a normal standard deviation (× 1.4826); 0 for fewer than 2 values. */
export function mad(values: readonly number[]): number {
  if (values.length < 2) return 0
  const m = median(values)
  return 1.4826 * median(values.map(v => Math.abs(v - m)))
}

/** The standard normal quantile (Acklam's rational approximation, relative error < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) return p <= 0 ? -Infinity : Infinity
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239]
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572]
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783]
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416]
  const lowP = 0.02425
  if (p < lowP) {
    const q = Math.sqrt(-2 * Math.log(p))
    return (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1)
  }
  if (p > 1 - lowP) return -normalQuantile(1 - p)
  const q = p - 0.5
  const r = q * q
  return ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1)
}

/**
 * The largest c such that P(T ≤ c − 1) ≤ tail, T the Wilcoxon signed-rank statistic of n pairs
 * (exact distribution), with P(T ≤ c − 1). c = 0 when even the most extreme value is too likely.
 */
const criticalCache = new Map<string, { c: number; p: number }>()
function signedRankCritical(n: number, tail: number): { c: number; p: number } {
  const key = `${n}:${tail}`
  const hit = criticalCache.get(key)
  if (hit !== undefined) return hit
  const max = (n * (n + 1)) / 2
  // probabilities of each sum of a random subset of {1..n}, built one rank at a time
  let dist = new Float64Array(max + 1)
  dist[0] = 1
  for (let k = 1; k <= n; k++) {
    const next = new Float64Array(max + 1)
    for (let t = 0; t <= max; t++) {
      const v = dist[t]!
      if (v === 0) continue
      next[t]! += v / 2
      next[t + k]! += v / 2
    }
    dist = next
  }
  let cdf = 0
  let c = 0
  let p = 0
  for (let t = 0; t <= max; t++) {
    if (cdf + dist[t]! > tail) break
    cdf += dist[t]!
    c = t + 1
    p = cdf
  }
  criticalCache.set(key, { c, p })
  return { c, p }
}

/**
 * The Hodges–Lehmann estimate of the centre of `d` (paired differences) and its distribution-free
 * interval from the signed-rank test: the C-th smallest and largest Walsh averages. Assumes the
 * differences are symmetric about their centre; with fewer than 6 values no interval reaches 95 %
 * and the interval is infinite.
 */
export function signedRankInterval(d: readonly number[], confidence = 0.95): Interval {
  const n = d.length
  if (n === 0) return { estimate: NaN, low: -Infinity, high: Infinity, confidence: 0 }
  const walsh = new Float64Array((n * (n + 1)) / 2)
  let k = 0
  for (let i = 0; i < n; i++) for (let j = i; j < n; j++) walsh[k++] = (d[i]! + d[j]!) / 2
  walsh.sort()
  const m = walsh.length
  const estimate = m % 2 === 1 ? walsh[(m - 1) / 2]! : (walsh[m / 2 - 1]! + walsh[m / 2]!) / 2
  const { c, p } = n > 300 ? normalCritical(m, Math.sqrt((n * (n + 1) * (2 * n + 1)) / 24), (1 - confidence) / 2) : signedRankCritical(n, (1 - confidence) / 2)
  if (c < 1) return { estimate, low: -Infinity, high: Infinity, confidence: 0 }
  return { estimate, low: walsh[c - 1]!, high: walsh[m - c]!, confidence: 1 - 2 * p }
}

/** The normal approximation of a rank statistic's critical value (mean m/2, sd), continuity-corrected. */
function normalCritical(m: number, sd: number, tail: number): { c: number; p: number } {
  const c = Math.max(0, Math.floor(m / 2 - normalQuantile(1 - tail) * sd + 0.5))
  return { c, p: tail }
}

/** P(U ≤ u) for all u of the Mann–Whitney statistic of samples of sizes m and n (exact). */
function rankSumDistribution(m: number, n: number): Float64Array {
  // counts of U over the C(m+n, m) arrangements, as the coefficients of the Gaussian binomial
  // [m+n choose m]_q, built by the recursion N(i, j) = N(i−1, j) shifted by j + N(i, j−1)
  let prev: Float64Array[] = []
  for (let j = 0; j <= n; j++) prev.push(Float64Array.of(1))
  for (let i = 1; i <= m; i++) {
    const row: Float64Array[] = [Float64Array.of(1)]
    for (let j = 1; j <= n; j++) {
      const a = prev[j]!
      const b = row[j - 1]!
      const out = new Float64Array(i * j + 1)
      for (let u = 0; u < a.length; u++) out[u + j]! += a[u]!
      for (let u = 0; u < b.length; u++) out[u]! += b[u]!
      row.push(out)
    }
    prev = row
  }
  const counts = prev[n]!
  let total = 0
  for (const v of counts) total += v
  const cdf = new Float64Array(counts.length)
  let acc = 0
  for (let u = 0; u < counts.length; u++) {
    acc += counts[u]!
    cdf[u] = acc / total
  }
  return cdf
}

/**
 * The Hodges–Lehmann shift `x − y` (the median of all pairwise differences) with the Mann–Whitney
 * interval: the C-th smallest and largest pairwise differences. Exact for m·n ≤ 2,500, else the
 * normal approximation. Assumes the two samples differ by a shift.
 */
export function rankSumInterval(x: readonly number[], y: readonly number[], confidence = 0.95): Interval {
  const m = x.length
  const n = y.length
  if (m === 0 || n === 0) return { estimate: NaN, low: -Infinity, high: Infinity, confidence: 0 }
  const diffs = new Float64Array(m * n)
  let k = 0
  for (const a of x) for (const b of y) diffs[k++] = a - b
  diffs.sort()
  const mn = diffs.length
  const estimate = mn % 2 === 1 ? diffs[(mn - 1) / 2]! : (diffs[mn / 2 - 1]! + diffs[mn / 2]!) / 2
  const tail = (1 - confidence) / 2
  let c = 0
  let p = 0
  if (mn <= 2500) {
    const cdf = rankSumDistribution(m, n)
    for (let u = 0; u < cdf.length && cdf[u]! <= tail; u++) {
      c = u + 1
      p = cdf[u]!
    }
  } else ({ c, p } = normalCritical(mn, Math.sqrt((m * n * (m + n + 1)) / 12), tail))
  if (c < 1) return { estimate, low: -Infinity, high: Infinity, confidence: 0 }
  return { estimate, low: diffs[c - 1]!, high: diffs[mn - c]!, confidence: 1 - 2 * p }
}

/**
 * The percentile bootstrap: `statistic` of `n` units resampled with replacement `resamples` times;
 * the interval is the (1 ± confidence)/2 quantiles of the resampled statistics, the estimate the
 * statistic of all units. Seeded: the same inputs give the same interval.
 */
export function bootstrapInterval(n: number, statistic: (units: Int32Array) => number, o: { confidence?: number; resamples?: number; seed?: number } = {}): Interval {
  const confidence = o.confidence ?? 0.95
  const all = Int32Array.from({ length: n }, (_, i) => i)
  const estimate = statistic(all)
  if (n < 2) return { estimate, low: -Infinity, high: Infinity, confidence: 0 }
  const rng = new SeededRandom(o.seed ?? 1)
  const b = o.resamples ?? 2000
  const stats = new Float64Array(b)
  const idx = new Int32Array(n)
  for (let r = 0; r < b; r++) {
    for (let i = 0; i < n; i++) idx[i] = rng.int(n)
    stats[r] = statistic(idx)
  }
  stats.sort()
  const at = (q: number) => stats[Math.min(b - 1, Math.max(0, Math.round(q * (b - 1))))]!
  return { estimate, low: at((1 - confidence) / 2), high: at((1 + confidence) / 2), confidence }
}

/** A sparse latency histogram as the bench and the report keep them. */
export interface SparseHistogram {
  readonly bucketNs: readonly number[]
  readonly counts: readonly number[]
  readonly minNs?: number
  readonly maxNs?: number
}

/**
 * Latency histograms of slices on one common set of buckets, so a percentile of any multiset of
 * slices (a bootstrap resample) is computed from their summed counts, as a merged histogram's.
 */
export class HistogramSlices {
  private readonly bounds: Float64Array
  private readonly rows: Float64Array[]
  private readonly mins: number[]
  private readonly maxs: number[]
  private readonly totals: Float64Array

  constructor(slices: readonly SparseHistogram[]) {
    const set = new Set<number>()
    for (const s of slices) for (const b of s.bucketNs) set.add(b)
    this.bounds = Float64Array.from([...set]).sort()
    const at = new Map<number, number>()
    this.bounds.forEach((b, i) => at.set(b, i))
    this.rows = slices.map(s => {
      const row = new Float64Array(this.bounds.length)
      s.bucketNs.forEach((b, i) => (row[at.get(b)!]! += s.counts[i]!))
      return row
    })
    this.mins = slices.map(s => s.minNs ?? 0)
    this.maxs = slices.map(s => s.maxNs ?? Infinity)
    this.totals = Float64Array.from(this.rows, r => r.reduce((a, b) => a + b, 0))
  }

  get length(): number {
    return this.rows.length
  }

  /**
   * The p-th percentile (0 < p < 100) of the slices `units` merged: the smallest bucket bound
   * with at least p % of the values at or below it, clamped to the slices' min and max. 0 when empty.
   */
  percentile(units: ArrayLike<number>, p: number): number {
    let n = 0
    let lo = Infinity
    let hi = -Infinity
    for (let k = 0; k < units.length; k++) {
      const u = units[k]!
      n += this.totals[u]!
      if (this.mins[u]! < lo) lo = this.mins[u]!
      if (this.maxs[u]! > hi) hi = this.maxs[u]!
    }
    if (n === 0) return 0
    const rank = Math.max(1, Math.ceil((p / 100) * n))
    const top = this.bounds.length - 1
    const clamp = (i: number) => Math.min(hi, Math.max(lo, this.bounds[i]!))
    if (p >= 50) {
      // from the top: the answer is the highest bucket with at least n − rank + 1 values at or above it
      const need = n - rank + 1
      let tail = 0
      for (let i = top; i >= 0; i--) {
        for (let k = 0; k < units.length; k++) tail += this.rows[units[k]!]![i]!
        if (tail >= need) return clamp(i)
      }
      return clamp(0)
    }
    let seen = 0
    for (let i = 0; i <= top; i++) {
      for (let k = 0; k < units.length; k++) seen += this.rows[units[k]!]![i]!
      if (seen >= rank) return clamp(i)
    }
    return hi
  }
}

/** Where an interval lies against a bound the estimate must stay `above` (≥) or `below` (≤). */
export type Judgement = 'pass' | 'fail' | 'undecided'

export function judge(i: Pick<Interval, 'low' | 'high'>, bound: number, must: 'above' | 'below'): Judgement {
  if (must === 'above') return i.low >= bound ? 'pass' : i.high < bound ? 'fail' : 'undecided'
  return i.high <= bound ? 'pass' : i.low > bound ? 'fail' : 'undecided'
}

/** How a sequential measurement went. */
export interface SequentialOutcome<I extends Pick<Interval, 'low' | 'high'>> {
  readonly judgement: Judgement
  readonly interval: I
  /** Rounds taken. */
  readonly rounds: number
  /** Looks taken at the interval (each at the per-look confidence). */
  readonly looks: number
  /** True when the budget ran out with the interval still across the bound. */
  readonly exhausted: boolean
}

/**
 * The confidence of each look so that all `looks` of a sequential measurement together keep the
 * error of `confidence` (Bonferroni): with 3 looks at 95 %, each look is a 98.33 % interval.
 */
export function perLookConfidence(confidence: number, looks: number): number {
  return 1 - (1 - confidence) / Math.max(1, looks)
}

/**
 * Takes rounds of slices until the interval is decisive. The interval is looked at only after the
 * rounds of the schedule `looks` (ascending; its last entry is the budget) — and once more, as the
 * last look, when `stop()` says the time is spent — so a measurement takes at most
 * `looks.length` looks, each at the confidence `evaluate` uses (see perLookConfidence). It stops at
 * the first look whose interval lies wholly on one side of the bound; at the budget an interval
 * still across it is `undecided`. `stopEarly` ends the loop at once as a failure (an I/O error).
 */
export async function sequential<I extends Pick<Interval, 'low' | 'high'>>(o: {
  readonly looks: readonly number[]
  readonly round: (index: number) => Promise<void>
  readonly evaluate: () => I
  readonly bound: number
  readonly must: 'above' | 'below'
  readonly stop?: () => boolean
  readonly stopEarly?: () => boolean
}): Promise<SequentialOutcome<I>> {
  const budget = o.looks[o.looks.length - 1] ?? 1
  let rounds = 0
  let looks = 0
  for (;;) {
    await o.round(rounds)
    rounds++
    if (o.stopEarly?.()) return { judgement: 'fail', interval: o.evaluate(), rounds, looks, exhausted: false }
    const last = rounds >= budget || (rounds >= (o.looks[0] ?? 1) && o.stop?.() === true)
    if (!last && !o.looks.includes(rounds)) continue
    looks++
    const interval = o.evaluate()
    const j = judge(interval, o.bound, o.must)
    if (j !== 'undecided') return { judgement: j, interval, rounds, looks, exhausted: false }
    if (last) return { judgement: 'undecided', interval, rounds, looks, exhausted: true }
  }
}
