/**
 * What `iofcert bench` does with each of fio's options. Every option fio knows falls in exactly
 * one of three classes (see README.md, "Options"):
 *
 * - implemented: shapes the workload the generator issues;
 * - ignored: concerns only a real device, the host, fio's own reporting or logging; accepted and
 *   listed in the job's `ignored` list with the reason, so real job files run as written;
 * - unsupported: would change which I/O is issued (pacing, think time, trims, replay, zones …).
 *   Running without it would measure a different workload under the same name, so it is an
 *   error — unless its value is the one that turns it off (`thinktime=0`, `fsync=0`), which is
 *   accepted and listed as ignored.
 *
 * A word that is not a fio option at all is an error too (with fio's closest option name).
 */
import { FIO_ENGINE_OPTIONS, FIO_OPTIONS, FIO_TABLE_VERSION } from './fio-option-table.js'
import type { FioEngineOptionInfo, FioOptionInfo } from './fio-option-types.js'

export type { FioEngineOptionInfo, FioOptionInfo, FioOptionType } from './fio-option-types.js'
export { FIO_ENGINES, FIO_ENGINE_OPTIONS, FIO_OPTIONS, FIO_TABLE_VERSION } from './fio-option-table.js'

/** How the bench treats one fio option. */
export type OptionSupport =
  | { readonly kind: 'implemented' }
  | { readonly kind: 'ignored'; readonly reason: string }
  | {
      readonly kind: 'unsupported'
      readonly reason: string
      /** Values that turn the option off; those are accepted and listed as ignored. */
      readonly offValues: readonly string[]
    }

/** Reasons shown in a job's `ignored` list. */
export const IgnoreReason = {
  device: 'concerns a real device or file; the bench drives a virtual disk',
  host: 'process, CPU or memory placement; the bench runs each VM in its own worker thread',
  report: "fio's own output or logs; the bench writes fio JSON from its histograms",
  timing: 'clock handling; the bench times every I/O',
  errors: 'error handling; a job stops at its first I/O error',
  buffers: 'buffer handling; writes carry pseudo-random data',
  flush: 'flushes; the generator issues reads and writes only',
  companion: 'only acts together with an option the bench refuses unless it is off (thinktime, latency_target, flow)',
  rateMin: 'a minimum rate fails a job in fio; the bench paces to rate and rate_iops and fails no job on its rate',
  prng: 'the generator uses its own seeded PRNG (randseed and randrepeat apply)',
  jobs: 'each job runs to its own end',
  overlap: 'overlapping I/Os are serialised whenever verify is on',
  off: 'no effect at this value',
} as const

const IMPLEMENTED = [
  'name', 'description', 'rw', 'rwmixread', 'rwmixwrite', 'bs', 'bsrange', 'bssplit', 'iodepth',
  'numjobs', 'size', 'filesize', 'io_size', 'offset', 'offset_increment', 'number_ios', 'runtime',
  'time_based', 'ramp_time', 'loops', 'stonewall', 'new_group', 'verify', 'do_verify',
  'norandommap', 'randrepeat', 'allrandrepeat', 'randseed', 'random_distribution', 'kb_base',
  'percentile_list', 'clat_percentiles', 'lat_percentiles', 'slat_percentiles', 'rate', 'rate_iops',
  'ioengine', 'group_reporting', 'filename', 'directory', 'filename_format', 'write_bw_log',
  'write_iops_log', 'write_lat_log', 'log_avg_msec', 'per_job_logs', 'log_offset', 'log_prio',
  'log_max_value', 'bwavgtime', 'iopsavgtime',
] as const

const IGNORED: Readonly<Record<keyof typeof IgnoreReason, readonly string[]>> = {
  device: [
    'lockfile', 'unique_filename', 'opendir',
    'iodepth_batch', 'iodepth_batch_complete_min', 'iodepth_batch_complete_max', 'iodepth_low',
    'io_submit_mode', 'file_append', 'nrfiles', 'file_service_type', 'openfiles', 'fallocate',
    'fadvise_hint', 'direct', 'atomic', 'buffered', 'overwrite', 'ioscheduler', 'invalidate', 'sync',
    'write_hint', 'create_serialize', 'create_fsync', 'create_on_open', 'create_only',
    'allow_file_create', 'allow_mounted_write', 'pre_read', 'unlink', 'unlink_each_loop',
    'read_beyond_wp', 'max_open_zones', 'job_max_open_zones', 'ignore_zone_limits',
    'zone_reset_threshold', 'zone_reset_frequency', 'exec_prerun', 'exec_postrun',
    'verify_state_load', 'verify_state_save',
  ],
  companion: [
    'rate_ignore_thinktime', 'thinktime_spin', 'thinktime_blocks', 'thinktime_blocks_type', 'thinktime_iotime',
    'latency_window', 'latency_percentile', 'latency_run', 'flow_id', 'flow_sleep',
  ],
  rateMin: ['rate_min', 'rate_iops_min', 'rate_cycle'],
  prng: ['random_generator'],
  jobs: ['exitall', 'exit_what', 'exitall_on_error'],
  overlap: ['serialize_overlap'],
  host: [
    'mem', 'lockmem', 'nice', 'prio', 'prioclass', 'cpumask', 'cpus_allowed', 'cpus_allowed_policy',
    'numa_cpu_nodes', 'numa_mem_policy', 'thread', 'cgroup', 'cgroup_nodelete', 'cgroup_weight',
    'uid', 'gid', 'hugepage-size', 'verify_async',
  ],
  report: [
    'write_iolog', 'log_entries', 'log_hist_msec', 'log_hist_coarseness',
    'write_hist_log', 'log_compression',
    'log_compression_cpus', 'log_store_compressed', 'log_unix_epoch', 'log_alternate_epoch',
    'log_alternate_epoch_clock_id', 'block_error_percentiles', 'stats',
    'significant_figures', 'disk_util',
    'unified_rw_reporting', 'unit_base', 'verify_dump', 'error_dump',
  ],
  timing: ['clocksource', 'gtod_reduce', 'disable_lat', 'disable_clat', 'disable_slat', 'disable_bw_measurement', 'gtod_cpu'],
  errors: ['ignore_error', 'continue_on_error', 'verify_fatal'],
  buffers: ['zero_buffers', 'refill_buffers', 'scramble_buffers', 'buffer_compress_chunk', 'dedupe_mode', 'dedupe_working_set_percentage', 'dedupe_global'],
  flush: ['end_fsync', 'fsync_on_close'],
  off: [],
}

/** Unsupported options: why, and the values that turn them off. */
const UNSUPPORTED: Readonly<Record<string, readonly [reason: string, offValues: readonly string[]]>> = {
  wait_for: ['job dependencies other than stonewall are not implemented; use stonewall', []],
  ba: ['block alignment other than the block size is not implemented', []],
  bs_unaligned: ['unaligned block sizes are not implemented (the disk has 512-byte sectors)', ['0']],
  rw_sequencer: ['the sequential/identical offset modifier is not implemented', ['sequential']],
  fill_device: ['writing until the device is full is not implemented; give a size', ['0']],
  offset_align: ['offset alignment is not implemented', ['0']],
  percentage_random: ['mixing random and sequential offsets is not implemented', []],
  fsync: ['the generator issues no flushes', ['0']],
  fdatasync: ['the generator issues no flushes', ['0']],
  write_barrier: ['barrier writes are not implemented', ['0']],
  sync_file_range: ['sync_file_range is not implemented', []],
  startdelay: ['delayed job starts are not implemented', ['0']],
  verify_only: ['verify-only runs are not implemented', ['0']],
  verify_interval: ['the verify header is written every minimum block size; other intervals are not implemented', []],
  verify_offset: ['moving the verify header is not implemented', ['0']],
  verify_pattern: ['pattern verification is not implemented; use verify=crc32c or md5', []],
  verify_backlog: ['verifying during the write phase is not implemented', ['0']],
  verify_backlog_batch: ['verifying during the write phase is not implemented', ['0']],
  experimental_verify: ['experimental verify is not implemented', ['0']],
  trim_percentage: ['trims are not implemented', ['0']],
  trim_verify_zero: ['trims are not implemented', ['0', '1']],
  trim_backlog: ['trims are not implemented', ['0']],
  trim_backlog_batch: ['trims are not implemented', ['0']],
  read_iolog: ['replaying I/O logs is not implemented', []],
  read_iolog_chunked: ['replaying I/O logs is not implemented', ['0']],
  replay_no_stall: ['replaying I/O logs is not implemented', ['0']],
  replay_redirect: ['replaying I/O logs is not implemented', []],
  replay_scale: ['replaying I/O logs is not implemented', []],
  replay_align: ['replaying I/O logs is not implemented', []],
  replay_time_scale: ['replaying I/O logs is not implemented', ['100']],
  replay_skip: ['replaying I/O logs is not implemented', []],
  merge_blktrace_file: ['merging blktraces is not implemented', []],
  merge_blktrace_scalars: ['merging blktraces is not implemented', []],
  merge_blktrace_iters: ['merging blktraces is not implemented', []],
  zonemode: ['zoned workloads are not implemented', ['none']],
  zonesize: ['zoned workloads are not implemented', ['0']],
  zonecapacity: ['zoned workloads are not implemented', ['0']],
  zonerange: ['zoned workloads are not implemented', ['0']],
  zoneskip: ['zoned workloads are not implemented', ['0']],
  thinktime: ['think time between I/Os is not implemented', ['0']],
  rate_process: ['Poisson arrivals are not implemented (rate and rate_iops pace I/Os evenly)', ['linear']],
  latency_target: ['latency-targeted queue depth is not implemented', ['0']],
  max_latency: ['failing a job on a latency limit is not implemented', ['0']],
  buffer_pattern: ['fixed buffer patterns are not implemented; writes carry pseudo-random data', []],
  buffer_compress_percentage: ['compressible buffers are not implemented; writes carry pseudo-random data', ['0']],
  dedupe_percentage: ['dedupable buffers are not implemented; writes carry pseudo-random data', ['0']],
  profile: ['built-in fio profiles are not implemented', []],
  flow: ['flow control between jobs is not implemented', ['0']],
  steadystate: ['steady-state detection is not implemented', []],
  steadystate_duration: ['steady-state detection is not implemented', ['0']],
  steadystate_ramp_time: ['steady-state detection is not implemented', ['0']],
}

/** ioengine values that do no block I/O at all, so their jobs are not storage workloads. */
export const NON_STORAGE_ENGINES: ReadonlySet<string> = new Set([
  'cpuio', 'net', 'netsplice', 'filecreate', 'filestat', 'filedelete', 'exec', 'ftruncate', 'falloc', 'e4defrag',
])

/** One option word resolved against fio's table. */
export interface OptionLookup {
  readonly info: FioOptionInfo
  /** fio's primary name (`readwrite` → `rw`). */
  readonly canonical: string
  readonly support: OptionSupport
}

function buildSupport(): ReadonlyMap<string, OptionSupport> {
  const m = new Map<string, OptionSupport>()
  for (const n of IMPLEMENTED) m.set(n, { kind: 'implemented' })
  for (const [key, names] of Object.entries(IGNORED) as [keyof typeof IgnoreReason, readonly string[]][]) {
    for (const n of names) m.set(n, { kind: 'ignored', reason: IgnoreReason[key] })
  }
  for (const [n, [reason, offValues]] of Object.entries(UNSUPPORTED)) m.set(n, { kind: 'unsupported', reason, offValues })
  return m
}

const SUPPORT = buildSupport()

function buildLookup(): ReadonlyMap<string, OptionLookup> {
  const m = new Map<string, OptionLookup>()
  for (const info of FIO_OPTIONS) {
    const support = SUPPORT.get(info.name)
    // A fio option without a class would silently fall through; the tests check there is none.
    if (support === undefined) continue
    const entry = { info, canonical: info.name, support }
    m.set(info.name, entry)
    for (const a of info.aliases) m.set(a, entry)
  }
  return m
}

const LOOKUP = buildLookup()

const ENGINE_LOOKUP: ReadonlyMap<string, FioEngineOptionInfo> = new Map(FIO_ENGINE_OPTIONS.map((o) => [o.name, o]))

/** The options the generator implements (canonical names). */
export const IMPLEMENTED_OPTIONS: ReadonlySet<string> = new Set(IMPLEMENTED)

/** Resolves a job-file word (a name or an alias) to fio's option and the bench's treatment. */
export function lookupOption(word: string): OptionLookup | undefined {
  return LOOKUP.get(word)
}

/** The bench's treatment of a canonical fio option name, or undefined for non-options. */
export function optionSupport(canonical: string): OptionSupport | undefined {
  return SUPPORT.get(canonical)
}

/** An engine-specific option (`hipri`, `userspace_reap` …), valid only with its engines. */
export function lookupEngineOption(word: string): FioEngineOptionInfo | undefined {
  return ENGINE_LOOKUP.get(word)
}

/** fio's closest option name to a misspelt word, when one is close enough to suggest. */
export function suggestOption(word: string): string | undefined {
  let best: string | undefined
  let bestDistance = Infinity
  const names = [...LOOKUP.keys(), ...ENGINE_LOOKUP.keys()]
  for (const n of names) {
    const d = editDistance(word, n)
    if (d < bestDistance) {
      bestDistance = d
      best = n
    }
  }
  // Like fio's string_distance_ok: only suggest when the word is mostly right.
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined
}

function editDistance(a: string, b: string): number {
  const prev = new Array<number>(b.length + 1)
  for (let j = 0; j <= b.length; j++) prev[j] = j
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!
    prev[0] = i
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1))
      diag = up
    }
  }
  return prev[b.length]!
}

/** The fio release whose options the table holds, for messages. */
export const FIO_OPTIONS_SOURCE = FIO_TABLE_VERSION
