/** The bench's public API: fio job files, the I/O generator, histograms, fio JSON and its table. */
export { BenchError, BenchErrorCode, JobFileError, type BenchErrorCodeValue } from './errors.js'
export {
  FIO_DEFAULT_PERCENTILES, FIO_DEFAULT_SEED, jobPhases, parseJobFile, parseJobText,
  type BlockSizes, type BsSplitEntry, type IgnoredOption, type JobSpec, type ParseOptions, type ParseTextOptions, type RwMode, type VerifyKind,
} from './jobfile.js'
export { IgnoreReason, lookupOption, optionSupport, suggestOption, type OptionLookup, type OptionSupport } from './fio-options.js'
export {
  IoGenerator, generatorOptionsFor,
  type DirectionResult, type GeneratorOp, type GeneratorOptions, type GeneratorResult, type IoFailure, type JobPlacement, type ResourceUse,
  type SampleStat, type SubmitFn, type VerifyFailure, type VerifyField, type VerifySummary,
} from './generator.js'
export { LatencyHistogram, type HistogramJSON } from './histogram.js'
export {
  formatFioJson, parseFioJson, percentileOf, toFioJson,
  type BenchJobResult, type DirectionSummary, type FioJsonDocument, type FioJsonMeta, type FioSummary, type JobSummary, type LatencySummary,
} from './fio-json.js'
export { renderBenchTable, type BenchTableOptions } from './console.js'
export { fioVersion, runFio, toNullEngineJobText, type FioRun, type RunFioOptions } from './fio-runner.js'
