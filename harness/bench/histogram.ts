/**
 * The bench's side of the latency histogram: fio's latency buckets (its json+ `bins`). The
 * histogram itself — bucket layout, recording, merging, percentiles — is the shared one
 * (`harness/base/histogram.ts`), re-exported here for the bench's modules.
 */
import type { HistogramJSON } from '../base/histogram.js'

export { HISTOGRAM_MAX_NS, LatencyHistogram, bucketIndex, bucketUpperNs, type HistogramJSON } from '../base/histogram.js'

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
