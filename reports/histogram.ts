/**
 * The report's side of the latency histogram: the shared one (`harness/base/histogram.ts` — the
 * bucket layout and the functions over a report document's `HistogramData`), and a
 * `LatencyHistogram` that serializes as a report document carries its histograms.
 */
import { LatencyHistogram as SharedHistogram, toHistogramData } from '../harness/base/histogram.js'
import type { HistogramData } from './document.js'

export {
  HISTOGRAM_MAX_NS as MAX_TRACKABLE_NS, SUB_BUCKETS, bucketIndex, bucketUpperNs, histogramCount, histogramPercentile, mergeHistograms,
  summarizeHistogram, toHistogramData,
} from '../harness/base/histogram.js'

/** The shared histogram whose `toJSON()` is a report document's `HistogramData` (report.schema.json). */
export class LatencyHistogram extends SharedHistogram<HistogramData> {
  override toJSON(): HistogramData {
    return toHistogramData(super.toJSON())
  }
}
