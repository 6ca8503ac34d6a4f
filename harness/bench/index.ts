/**
 * The bench's public API: fio job files, the I/O generator, histograms, fio JSON and its table,
 * bench runs, the measuring engine and its statistics.
 */
export * from './errors.js'
export {
  FIO_DEFAULT_PERCENTILES, FIO_DEFAULT_SEED, jobFileName, jobPhases, pageSize, parseJobFile, parseJobText,
  type BlockSizes, type BsSplitEntry, type IgnoredOption, type JobFiles, type JobLogs, type JobSpec, type ParseOptions, type ParseTextOptions, type RwMode, type VerifyKind,
} from './jobfile.js'
export { IgnoreReason, lookupOption, optionSupport, suggestOption, type OptionLookup, type OptionSupport } from './fio-options.js'
export {
  IoGenerator, MAX_LOGGED_IOS, generatorOptionsFor,
  type DirectionResult, type GeneratorLogOptions, type GeneratorLogs, type GeneratorOp, type GeneratorOptions, type GeneratorResult, type IoFailure, type JobPlacement, type ResourceUse,
  type SampleStat, type SubmitFn, type VerifyFailure, type VerifyField, type VerifySummary,
} from './generator.js'
export { FIO_PLAT_NR, LatencyHistogram, fioBins, fioPlatIndex, fioPlatValue, type HistogramJSON } from './histogram.js'
export { writeFioLogs, type LogCopy, type WrittenLogs } from './fio-logs.js'
export {
  formatFioJson, parseFioJson, percentileOf, toFioJson,
  type BenchJobResult, type DirectionSummary, type FioJsonDocument, type FioJsonMeta, type FioSummary, type JobSummary, type LatencySummary,
} from './fio-json.js'
export { renderBenchTable, type BenchTableOptions } from './console.js'
export { fioVersion, runFio, toNullEngineJobText, type FioRun, type RunFioOptions } from './fio-runner.js'
export { loadJobs, runBench, type BenchOptions } from './run.js'
export {
  jobSlice, jobSliceStats, pacedSliceStats, STANDARD_WORKLOADS, WarmSide,
  type JobSlice, type Placement, type SideSpec, type SideStats,
} from './engine.js'
export {
  bootstrapInterval, HistogramSlices, mad, median, normalQuantile, perLookConfidence, SeededRandom, sequential, signedRankInterval,
  type Interval, type Judgement,
} from './stats.js'
// worker entry files are loaded by URL (in-worker.js, job-worker.js, profile.js); only their types come through here
export type { InWorkerTask, PacedOptions, PacedResult } from './in-worker.js'
export type { ProfileEntry } from './profile.js'
