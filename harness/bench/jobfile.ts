/**
 * fio job files → fully resolved `JobSpec`s.
 *
 * The syntax follows fio's own parser (init.c `__parse_jobs_ini`): `[section]` lines, `[global]`
 * sections whose options apply to the jobs after them, `name=value` or bare `name` options,
 * comments starting at `;` or `#` anywhere on a line, `include <file>` inside a section (the
 * included file holds options only), and `${VAR}` expanded from the environment. Where fio is
 * lenient in ways that change a benchmark silently, this parser stops with a located error
 * instead (see README.md, "Differences from fio").
 *
 * Errors quote a file's text only where it is a fio option line. A file that is not a job file
 * (a job file opens with a `[section]`; an included file holds nothing but option lines,
 * comments and includes) is refused by its name and line number alone, so `include /etc/shadow`
 * cannot show what the file holds.
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { BenchErrorCode, JobFileError, type BenchErrorCodeValue } from './errors.js'
import {
  FIO_OPTIONS_SOURCE,
  IgnoreReason,
  NON_STORAGE_ENGINES,
  lookupEngineOption,
  lookupOption,
  suggestOption,
  type FioOptionInfo,
} from './fio-options.js'
import {
  parseBool,
  parseInteger,
  parseSize,
  parseSizeRange,
  parseTimeUs,
  splitDirections,
  type KbBase,
  type Parsed,
} from './units.js'

/** The I/O patterns the generator implements (fio's `rw`, with `readwrite` read as `rw`). */
export type RwMode = 'read' | 'write' | 'randread' | 'randwrite' | 'rw' | 'randrw'

/** Block checksums the generator implements for `verify`. */
export type VerifyKind = 'crc32c' | 'md5'

/** One `size/percent` entry of a `bssplit`. */
export interface BsSplitEntry {
  readonly bs: number
  readonly pct: number
}

/** The block sizes of one direction. */
export type BlockSizes =
  | { readonly kind: 'fixed'; readonly bs: number }
  /** Any multiple of `min` from `min` to `max`, uniformly. */
  | { readonly kind: 'range'; readonly min: number; readonly max: number }
  /** Sizes drawn with the given weights (percentages summing to 100). */
  | { readonly kind: 'split'; readonly entries: readonly BsSplitEntry[] }

/** An option accepted from the file but without effect on the workload, and why. */
export interface IgnoredOption {
  readonly option: string
  readonly value: string | null
  readonly reason: string
  readonly file: string
  readonly line: number
}

/** The log files a job writes (fio's write_bw_log, write_iops_log, write_lat_log and their options). */
export interface JobLogs {
  /** write_bw_log's file name prefix ('' for the job's name: a bare write_bw_log), null for none. */
  readonly bw: string | null
  readonly iops: string | null
  /** write_lat_log: the `_lat`, `_clat` and `_slat` logs. */
  readonly lat: string | null
  /** log_avg_msec: entries averaged over this many ms; 0, an entry per I/O. */
  readonly avgMs: number
  /** per_job_logs: the job's number in each file name (`foo_bw.1.log`); off, all copies append to one file. */
  readonly perJob: boolean
  /** log_offset: each entry carries its I/O's offset. */
  readonly offset: boolean
  /** log_prio: the priority column in fio's hexadecimal form. */
  readonly prio: boolean
  /** log_max_value: a window's largest latency instead of its mean. */
  readonly maxValue: boolean
}

/** The file a job does its I/O on (fio's filename, directory and filename_format). */
export interface JobFiles {
  /** filename=, as written (several, `a:b`, are one name to the bench); null: fio's default name. */
  readonly filename: string | null
  readonly directory: string | null
  /** filename_format= (default `$jobname.$jobnum.$filenum`). */
  readonly format: string | null
}

/** One job of a job file, every option resolved (defaults are fio's). */
export interface JobSpec {
  /** fio's jobname: the section's own `name=` if it has one, else the section name. */
  readonly name: string
  readonly section: string
  readonly description: string | null
  /** Where the section starts. */
  readonly file: string
  readonly line: number
  /** 0-based position among the file's jobs. */
  readonly index: number
  /** fio's groupid: a new group starts at every `stonewall` or `new_group` job. */
  readonly groupId: number
  /** Waits for every earlier job to finish before starting. */
  readonly stonewall: boolean
  readonly rw: RwMode
  readonly random: boolean
  /** Share of reads in percent: 100 for read-only, 0 for write-only, `rwmixread` for mixed. */
  readonly readPct: number
  readonly bs: { readonly read: BlockSizes; readonly write: BlockSizes }
  readonly iodepth: number
  /** Copies of the job run side by side; the bench runs each in its own VM. */
  readonly numjobs: number
  /** Bytes of the region the job covers; null: the whole disk from `offset`. */
  readonly size: number | null
  readonly offset: number
  /** Added to `offset` for each further copy of the job (fio's offset_increment). */
  readonly offsetIncrement: number
  /** Bytes of I/O to do (fio's io_size); null: `size`. */
  readonly ioSize: number | null
  /** Stop after this many I/Os (fio's number_ios); null: no limit. */
  readonly numberIos: number | null
  /** Stop after this long (excluding ramp time); null: no limit. */
  readonly runtimeMs: number | null
  /** Keep going until `runtimeMs` even when `size` is done. */
  readonly timeBased: boolean
  /** The first part of the run left out of the statistics. */
  readonly rampMs: number
  readonly loops: number
  readonly verify: VerifyKind | null
  /** Read back and check after writing (fio's do_verify, default on). */
  readonly doVerify: boolean
  readonly norandommap: boolean
  readonly randrepeat: boolean
  /** The PRNG seed: randseed, else fio's fixed default when randrepeat, else null (pick per run). */
  readonly seed: number | null
  /** Percentiles to report, in percent, ascending (fio's percentile_list, which fio sorts). */
  readonly percentiles: readonly number[]
  /**
   * Which latency blocks carry the percentiles (fio's slat_percentiles, clat_percentiles,
   * lat_percentiles; fio's defaults: clat only).
   */
  readonly percentileBlocks: { readonly slat: boolean; readonly clat: boolean; readonly lat: boolean }
  /** Most bytes a second each direction issues (fio's rate; 0: no limit). */
  readonly rate: { readonly read: number; readonly write: number }
  /** Most I/Os a second each direction issues (fio's rate_iops; 0: no limit). */
  readonly rateIops: { readonly read: number; readonly write: number }
  readonly kbBase: KbBase
  /** fio's group_reporting: the job's copies (and the jobs of its group) are one entry of the report. */
  readonly groupReporting: boolean
  /** Which file the job's copies use: jobs naming the same file share one disk (see `jobFileName`). */
  readonly files: JobFiles
  readonly logs: JobLogs
  /** bwavgtime and iopsavgtime (ms) when the file sets them, else null (fio's 500, or the log's window). */
  readonly bwAvgMs: number | null
  readonly iopsAvgMs: number | null
  /** The job's ioengine as written (ignored: only selects which engine options are valid). */
  readonly ioengine: string
  /**
   * The job section's options for fio JSON's "job options", as fio echoes them: by fio's name
   * (`blocksize` is `bs`), in the order first set, each with its last value, options without a
   * value (bare flags) left out.
   */
  readonly jobOptions: Readonly<Record<string, string>>
  /** [global] options in effect for this job and command-line overrides, for "global options" (as `jobOptions`). */
  readonly globalOptions: Readonly<Record<string, string>>
  readonly ignored: readonly IgnoredOption[]
}

/** Options for `parseJobFile`. */
export interface ParseOptions {
  /** Values for `${VAR}`; default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>
  /**
   * fio's command-line options (`{ runtime: '10' }`; null for a bare flag): as fio, they are
   * read before the file, so they are every job's defaults and the file's own options win
   * (`fio --runtime=10 job.fio` keeps a job's `runtime=1`).
   */
  readonly overrides?: Readonly<Record<string, string | null>>
}

/** Options for `parseJobText`. */
export interface ParseTextOptions extends ParseOptions {
  /** The name used in messages (and the base of relative includes when `includeDir` is unset). */
  readonly file: string
  /** Where relative `include`s are looked up after the working directory, as fio does. */
  readonly includeDir?: string
}

/** fio's default percentile_list. */
export const FIO_DEFAULT_PERCENTILES: readonly number[] = [1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99, 99.5, 99.9, 99.95, 99.99]

/** fio's default random seed (randseed's default, 0x89). */
export const FIO_DEFAULT_SEED = 0x89

const OVERRIDE_FILE = '<command line>'

/** The largest job file or included file read (real ones are a few hundred bytes). */
const MAX_JOB_FILE_BYTES = 1 << 20

/**
 * Reads a job file or an included one as text: a regular file (not a device or a pipe, which could
 * be read forever) of at most MAX_JOB_FILE_BYTES. Throws the reason as a one-line Error.
 */
function readJobFileText(file: string): string {
  const st = fs.statSync(file)
  if (!st.isFile()) throw new Error(st.isDirectory() ? 'it is a directory' : 'not a regular file')
  if (st.size > MAX_JOB_FILE_BYTES) throw new Error(`too large for a job file (${st.size} bytes; at most ${MAX_JOB_FILE_BYTES / 2 ** 20} MiB)`)
  return fs.readFileSync(file, 'utf8')
}

/** Whether a (comment-stripped, trimmed, non-empty) line is `option` or `option=value` for a fio option. */
function isOptionLine(line: string): boolean {
  const eq = line.indexOf('=')
  const word = (eq < 0 ? line : line.slice(0, eq)).trim()
  return word !== '' && !/\s/.test(word) && (lookupOption(word) !== undefined || lookupEngineOption(word) !== undefined)
}

/** Reads and resolves a job file. Throws `JobFileError` (coded, located) on any problem. */
export function parseJobFile(file: string, options: ParseOptions = {}): JobSpec[] {
  let text: string
  try {
    text = readJobFileText(file)
  } catch (err) {
    throw new JobFileError(BenchErrorCode.JobRead, file, 0, `cannot read job file: ${(err as Error).message}`, { cause: err })
  }
  return parseJobText(text, { ...options, file, includeDir: path.dirname(path.resolve(file)) })
}

/** Resolves the text of a job file. Throws `JobFileError` (coded, located) on any problem. */
export function parseJobText(text: string, options: ParseTextOptions): JobSpec[] {
  const reader = new JobReader(options.env ?? process.env)
  reader.read(text, options.file, options.includeDir ?? path.dirname(path.resolve(options.file)), [])
  if (reader.jobs.length === 0) {
    throw new JobFileError(BenchErrorCode.JobNoJobs, options.file, 0, 'no job section (a [name] other than [global])')
  }
  const overrides = overrideEntries(options.overrides ?? {})
  const specs: JobSpec[] = []
  let groupId = 0
  for (const [index, job] of reader.jobs.entries()) {
    const { spec, newGroup } = resolveJob(job, index, overrides)
    if (index > 0 && (spec.stonewall || newGroup)) groupId++
    specs.push({ ...spec, groupId })
  }
  return specs
}

/** The jobs grouped into the phases they run in: a stonewall job starts a new phase. */
export function jobPhases(jobs: readonly JobSpec[]): JobSpec[][] {
  const phases: JobSpec[][] = []
  for (const j of jobs) {
    if (phases.length === 0 || j.stonewall) phases.push([j])
    else phases[phases.length - 1]!.push(j)
  }
  return phases
}

/**
 * The file copy `clone` of a job does its I/O on, named as fio names it: `filename=` when given
 * (then every copy, and every job naming it, shares it), else fio's default
 * `<section>.<copy>.0` (`filename_format`, with its `$jobname`, `$jobnum` and `$filenum`), under
 * `directory=` when given. The bench gives each distinct name one disk per side of a run.
 */
export function jobFileName(spec: Pick<JobSpec, 'section' | 'files'>, clone: number): string {
  const f = spec.files
  let name = f.filename ?? (f.format ?? '$jobname.$jobnum.$filenum')
    .replace(/\$jobname/gi, () => spec.section)
    .replace(/\$jobnum/gi, () => String(clone))
    .replace(/\$filenum/gi, () => '0')
  if (f.directory !== null && !path.isAbsolute(name)) name = path.join(f.directory, name)
  return path.normalize(name)
}

// ---- reading lines ----

interface Entry {
  /** The word as written. */
  readonly word: string
  readonly canonical: string
  readonly value: string | null
  readonly file: string
  readonly line: number
  readonly info: FioOptionInfo
  readonly engines: readonly string[] | null
  /** `${VAR}`s in the value that had no value in the environment. */
  readonly unset: readonly string[]
}

interface RawJob {
  readonly section: string
  readonly file: string
  readonly line: number
  readonly globals: readonly Entry[]
  readonly entries: Entry[]
}

class JobReader {
  readonly jobs: RawJob[] = []
  private globals: Entry[] = []
  private current: Entry[] | null = null
  constructor(private readonly env: Readonly<Record<string, string | undefined>>) {}

  read(text: string, file: string, includeDir: string, stack: readonly string[]): void {
    const nested = stack.length > 0
    const lines = text.split(/\r?\n/)
    for (let i = 0; i < lines.length; i++) {
      const lineNo = i + 1
      const line = stripComment(lines[i]!).trim()
      if (line === '') continue
      if (line.startsWith('[')) {
        // (an included file was checked whole before it is read: it has no section line)
        const m = /^\[([^\]]+)\]$/.exec(line)
        if (!m) this.fail(BenchErrorCode.JobSyntax, file, lineNo, 'malformed section header (a section line is [name] alone)')
        const name = m[1]!.trim()
        // fio treats every section whose name starts with "global" as a global section.
        if (name.startsWith('global')) {
          this.current = this.globals
        } else {
          const job: RawJob = { section: name, file, line: lineNo, globals: [...this.globals], entries: [] }
          this.jobs.push(job)
          this.current = job.entries
        }
        continue
      }
      const inc = /^include\s+(.+)$/.exec(line)
      if (inc) {
        if (this.current === null) this.fail(BenchErrorCode.JobSyntax, file, lineNo, `include outside of a [section]: ${line}`)
        this.include(inc[1]!.trim(), file, lineNo, includeDir, stack)
        continue
      }
      if (this.current === null) {
        // before its first section a file has not shown it is a job file: its text is not quoted
        if (!isOptionLine(line)) this.fail(BenchErrorCode.JobSyntax, file, lineNo, 'not a job file: this line is neither a [section] nor a fio option (a job file opens with a [section]; the line is not shown)')
        const word = line.split('=', 1)[0]!.trim()
        this.fail(BenchErrorCode.JobSyntax, file, lineNo, `option ${word} outside of a [section]`)
      }
      this.current.push(this.entry(line, file, lineNo))
    }
  }

  private include(target: string, file: string, line: number, includeDir: string, stack: readonly string[]): void {
    // fio looks a relative include up from the working directory first, then next to the file.
    const candidates = path.isAbsolute(target) ? [target] : [path.resolve(target), path.resolve(includeDir, target)]
    const found = candidates.find((c) => fs.existsSync(c))
    if (found === undefined) {
      this.fail(BenchErrorCode.JobRead, file, line, `cannot read included file ${target} (looked in ${candidates.map((c) => path.dirname(c)).join(' and ')})`)
    }
    const real = fs.realpathSync(found)
    const chain = [...stack, path.resolve(file)]
    if (chain.includes(real)) this.fail(BenchErrorCode.JobInclude, file, line, `include cycle: ${[...chain, real].map((p) => path.basename(p)).join(' → ')}`)
    let text: string
    try {
      text = readJobFileText(real)
    } catch (err) {
      this.fail(BenchErrorCode.JobRead, file, line, `cannot read included file ${target}: ${(err as Error).message}`)
    }
    this.checkIncluded(text, found, `${file}:${line}`)
    this.read(text, found, path.dirname(real), chain)
  }

  /**
   * An included file is read only when every line is a fio option, a comment or an include: any
   * other file (a system file, a whole job file) is refused by its name and line number, with
   * what is wrong but never the line itself.
   */
  private checkIncluded(text: string, file: string, from: string): void {
    const lines = text.split(/\r?\n/)
    for (let i = 0; i < lines.length; i++) {
      const line = stripComment(lines[i]!).trim()
      if (line === '' || /^include\s+\S/.test(line) || isOptionLine(line)) continue
      const what = line.startsWith('[')
        ? 'sections are not allowed in an included file'
        : 'not a fio option line, and an included file holds fio options only'
      this.fail(BenchErrorCode.JobInclude, file, i + 1, `${what} (included from ${from}; the line is not shown)`)
    }
  }

  private entry(line: string, file: string, lineNo: number): Entry {
    const eq = line.indexOf('=')
    const word = (eq < 0 ? line : line.slice(0, eq)).trim()
    const rawValue = eq < 0 ? null : line.slice(eq + 1).trim()
    if (word === '' || /\s/.test(word)) this.fail(BenchErrorCode.JobSyntax, file, lineNo, 'not an option line: an option is name=value, or a flag\'s name alone')
    const unset: string[] = []
    let value: string | null = null
    if (rawValue !== null) {
      try {
        value = expand(rawValue, this.env, unset)
      } catch (err) {
        // only an option line gets here: its text may be quoted
        this.fail(BenchErrorCode.JobBadValue, file, lineNo, `${word}=${rawValue}: ${(err as Error).message}`)
      }
    }
    return makeEntry(word, value, file, lineNo, unset)
  }

  private fail(code: BenchErrorCodeValue, file: string, line: number, reason: string): never {
    throw new JobFileError(code, file, line, reason)
  }
}

function makeEntry(word: string, value: string | null, file: string, line: number, unset: readonly string[]): Entry {
  const main = lookupOption(word)
  const engine = main === undefined ? lookupEngineOption(word) : undefined
  if (main === undefined && engine === undefined) {
    const hint = suggestOption(word)
    throw new JobFileError(BenchErrorCode.JobUnknownOption, file, line, `"${word}" is not a fio option (${FIO_OPTIONS_SOURCE})${hint === undefined ? '' : `; did you mean "${hint}"?`}`)
  }
  const info = main?.info ?? engine!
  if (value === null && info.type !== 'flag' && !(main !== undefined && BARE_LOG_OPTIONS.has(main.canonical))) {
    throw new JobFileError(BenchErrorCode.JobMissingValue, file, line, `option ${word} needs a value (${word}=…)`)
  }
  return { word, canonical: main?.canonical ?? engine!.name, value, file, line, info, engines: engine?.engines ?? null, unset }
}

/** Log options fio takes bare (`write_bw_log` alone: the log is named after the job). */
const BARE_LOG_OPTIONS: ReadonlySet<string> = new Set(['write_bw_log', 'write_iops_log', 'write_lat_log'])

/** Cuts a line at the first `;` or `#`, as fio does (fio has no quoting). */
function stripComment(line: string): string {
  let end = line.length
  const semi = line.indexOf(';')
  if (semi >= 0) end = semi
  const hash = line.indexOf('#')
  if (hash >= 0 && hash < end) end = hash
  return line.slice(0, end)
}

/**
 * The page size (fio's sysconf(_SC_PAGESIZE)): from the auxiliary vector the kernel gave this
 * process (AT_PAGESZ in /proc/self/auxv, what sysconf reads), else 4096.
 */
export function pageSize(): number {
  pageSizeCache ??= readPageSize()
  return pageSizeCache
}

let pageSizeCache: number | undefined

function readPageSize(): number {
  try {
    // the vector is pairs of native words: 4 bytes on 32-bit machines, 8 elsewhere
    const wide = !['arm', 'ia32', 'mips', 'mipsel', 'ppc'].includes(process.arch)
    return auxvPageSize(fs.readFileSync('/proc/self/auxv'), wide, os.endianness() === 'LE') ?? 4096
  } catch {
    // not Linux, or no /proc (or not allowed to read it): the common page size
    return 4096
  }
}

/**
 * The page size an auxiliary vector gives (its AT_PAGESZ entry), or null when it has none: pairs
 * of words (type, value) of 8 bytes (`wide`) or 4, in the machine's byte order, ending at type 0.
 */
export function auxvPageSize(auxv: Buffer, wide: boolean, le: boolean): number | null {
  const AT_PAGESZ = 6
  const step = wide ? 8 : 4
  const word = (at: number): number =>
    wide ? Number(le ? auxv.readBigUInt64LE(at) : auxv.readBigUInt64BE(at)) : le ? auxv.readUInt32LE(at) : auxv.readUInt32BE(at)
  for (let at = 0; at + 2 * step <= auxv.length; at += 2 * step) {
    const type = word(at)
    if (type === 0) break
    if (type === AT_PAGESZ) {
      const v = word(at + step)
      return v >= 512 && (v & (v - 1)) === 0 ? v : null
    }
  }
  return null
}

/** fio's reserved keywords and their values on this machine (`$mb_memory` in MiB, as fio's). */
const KEYWORDS: readonly [RegExp, () => number][] = [
  [/\$pagesize\b/g, pageSize],
  [/\$mb_memory\b/g, () => Math.floor(os.totalmem() / 2 ** 20)],
  // fio's $ncpus is the online CPUs (sysconf), not this process's affinity
  [/\$ncpus\b/g, () => os.cpus().length || os.availableParallelism()],
]

/**
 * fio's `${VAR}` expansion (an unset variable expands to nothing) and its keywords. As fio, a
 * value in which a keyword was replaced and that holds `+ - * /` is evaluated as integer
 * arithmetic (`size=8*$mb_memory`, `iodepth=$ncpus*4`; fio hands it to bc: whole numbers, `/`
 * truncating, `%`, `^` and parentheses), and the result replaces the value. Throws an Error with
 * the reason when such a value is not arithmetic fio could evaluate.
 */
function expand(value: string, env: Readonly<Record<string, string | undefined>>, unset: string[]): string {
  let out = value.replace(/\$\{([^}]+)\}/g, (_m, name: string) => {
    const v = env[name]
    if (v === undefined) unset.push(name)
    return v ?? ''
  })
  if (!out.includes('$')) return out
  let replaced = false
  for (const [re, val] of KEYWORDS) {
    out = out.replace(re, () => {
      replaced = true
      return String(val())
    })
  }
  if (!replaced || !/[-+*/]/.test(out)) return out
  return String(evaluateArithmetic(out))
}

/**
 * Whole-number arithmetic as bc evaluates it (fio's keyword arithmetic): `+ - * / % ^`,
 * parentheses and unary minus; `/` and `%` truncate toward zero, `^` binds right. Throws an Error
 * naming what is not arithmetic (a size suffix, a stray character).
 */
export function evaluateArithmetic(text: string): number {
  const tokens = text.match(/\d+|[-+*/%^()]|\S+?(?=[-+*/%^()\s]|$)/g) ?? []
  let at = 0
  const bad = (what: string): never => {
    throw new Error(`${what}; fio evaluates keyword arithmetic in whole numbers without size suffixes (for example size=8*$mb_memory or bs=$pagesize*2)`)
  }
  const peek = (): string | undefined => tokens[at]
  const primary = (): bigint => {
    const t = tokens[at++]
    if (t === undefined) return bad('the expression ends too early')
    if (t === '(') {
      const v = sum()
      if (tokens[at++] !== ')') bad('a parenthesis is not closed')
      return v
    }
    if (t === '-') return -power()
    if (t === '+') return power()
    if (!/^\d+$/.test(t)) return bad(`"${t}" is not a whole number`)
    return BigInt(t)
  }
  const power = (): bigint => {
    const base = primary()
    if (peek() !== '^') return base
    at++
    const exp = power()
    if (exp < 0n) return 0n
    if (exp > 64n && base !== 0n && base !== 1n && base !== -1n) bad('the result is too large')
    return base ** exp
  }
  const product = (): bigint => {
    let v = power()
    for (let op = peek(); op === '*' || op === '/' || op === '%'; op = peek()) {
      at++
      const r = power()
      if (op !== '*' && r === 0n) bad('division by zero')
      v = op === '*' ? v * r : op === '/' ? v / r : v % r
    }
    return v
  }
  const sum = (): bigint => {
    let v = product()
    for (let op = peek(); op === '+' || op === '-'; op = peek()) {
      at++
      v = op === '+' ? v + product() : v - product()
    }
    return v
  }
  const v = sum()
  if (at < tokens.length) bad(`"${tokens.slice(at).join('')}" is not arithmetic`)
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) bad('the result is too large')
  return Number(v)
}

function overrideEntries(overrides: Readonly<Record<string, string | null>>): Entry[] {
  return Object.entries(overrides).map(([k, v]) => makeEntry(k, v, OVERRIDE_FILE, 0, []))
}

// ---- resolving one job ----

interface Where {
  readonly file: string
  readonly line: number
}

interface Draft {
  name: string | null
  description: string | null
  rw: RwMode
  rwWhere: Where | null
  rwmixread: number
  bs: { read: BlockSizes; write: BlockSizes }
  split: { read: BlockSizes | null; write: BlockSizes | null }
  bsWhere: Where | null
  iodepth: number
  numjobs: number
  size: number | null
  filesize: number | null
  offset: number
  offsetWhere: Where | null
  offsetIncrement: number
  ioSize: number | null
  numberIos: number | null
  runtimeMs: number | null
  timeBased: boolean
  rampMs: number
  loops: number
  verify: VerifyKind | null
  doVerify: boolean
  norandommap: boolean
  randrepeat: boolean
  randseed: number | null
  percentiles: readonly number[]
  percentileBlocks: { slat: boolean; clat: boolean; lat: boolean }
  rate: { read: number; write: number }
  rateIops: { read: number; write: number }
  stonewall: boolean
  newGroup: boolean
  groupReporting: boolean
  files: { filename: string | null; directory: string | null; format: string | null }
  logs: { bw: string | null; iops: string | null; lat: string | null; avgMs: number; perJob: boolean; offset: boolean; prio: boolean; maxValue: boolean }
  bwAvgMs: number | null
  iopsAvgMs: number | null
}

const DEFAULT_BS: BlockSizes = { kind: 'fixed', bs: 4096 }
const SECTOR = 512

function resolveJob(job: RawJob, index: number, overrides: readonly Entry[]): { spec: Omit<JobSpec, 'groupId'>; newGroup: boolean } {
  // command-line options first: they are defaults the file's own options override, as in fio
  const all = [...overrides, ...job.globals, ...job.entries]
  const engineEntry = lastOf(all, 'ioengine')
  const ioengine = engineEntry?.value ?? 'psync'
  const engineName = ioengine.split(':')[0]!
  if (engineEntry && NON_STORAGE_ENGINES.has(engineName)) {
    fail(BenchErrorCode.JobUnsupportedOption, engineEntry, `ioengine=${ioengine} does no block I/O; the bench runs storage workloads only`)
  }
  const kbEntry = lastOf(all, 'kb_base')
  let kbBase: KbBase = 1024
  if (kbEntry) {
    if (kbEntry.value !== '1000' && kbEntry.value !== '1024') fail(BenchErrorCode.JobBadValue, kbEntry, `kb_base=${kbEntry.value ?? ''}: must be 1000 or 1024`)
    kbBase = Number(kbEntry.value) as KbBase
  }

  const d: Draft = {
    name: null, description: null, rw: 'read', rwWhere: null, rwmixread: 50,
    bs: { read: DEFAULT_BS, write: DEFAULT_BS }, split: { read: null, write: null }, bsWhere: null,
    iodepth: 1, numjobs: 1, size: null, filesize: null, offset: 0, offsetWhere: null, offsetIncrement: 0,
    ioSize: null, numberIos: null, runtimeMs: null, timeBased: false, rampMs: 0, loops: 1,
    verify: null, doVerify: true, norandommap: false, randrepeat: true, randseed: null,
    percentiles: FIO_DEFAULT_PERCENTILES, percentileBlocks: { slat: false, clat: true, lat: false },
    rate: { read: 0, write: 0 }, rateIops: { read: 0, write: 0 }, stonewall: false, newGroup: false,
    groupReporting: false, files: { filename: null, directory: null, format: null },
    logs: { bw: null, iops: null, lat: null, avgMs: 0, perJob: true, offset: false, prio: false, maxValue: false },
    bwAvgMs: null, iopsAvgMs: null,
  }
  const ignored: IgnoredOption[] = []
  for (const e of all) {
    if (e.engines !== null) {
      if (!e.engines.includes(engineName)) {
        fail(BenchErrorCode.JobUnknownOption, e, `"${e.word}" is an option of ioengine=${e.engines.join('|')}, not of ioengine=${ioengine}`)
      }
      ignored.push(ignore(e, `option of ioengine=${engineName}; ${IgnoreReason.device}`))
      continue
    }
    const support = lookupOption(e.word)!.support
    if (support.kind === 'ignored') {
      ignored.push(ignore(e, support.reason))
    } else if (support.kind === 'unsupported') {
      if (e.value !== null && support.offValues.includes(e.value)) ignored.push(ignore(e, IgnoreReason.off))
      else fail(BenchErrorCode.JobUnsupportedOption, e, `${show(e)}: ${support.reason} in iofcert bench`)
    } else if (e.canonical === 'ioengine') {
      ignored.push(ignore(e, IgnoreReason.device))
    } else if (e.canonical === 'kb_base') {
      // read before the others: it changes how every size is read
    } else {
      apply(d, e, kbBase, job.globals.includes(e))
    }
  }
  validate(d, all, ignored)

  const random = d.rw === 'randread' || d.rw === 'randwrite' || d.rw === 'randrw'
  const readPct = d.rw === 'read' || d.rw === 'randread' ? 100 : d.rw === 'write' || d.rw === 'randwrite' ? 0 : d.rwmixread
  const size = d.size ?? d.filesize
  const spec = {
    name: d.name ?? job.section,
    section: job.section,
    description: d.description,
    file: job.file,
    line: job.line,
    index,
    stonewall: d.stonewall,
    rw: d.rw,
    random,
    readPct,
    bs: { read: d.split.read ?? d.bs.read, write: d.split.write ?? d.bs.write },
    iodepth: d.iodepth,
    numjobs: d.numjobs,
    size,
    offset: d.offset,
    offsetIncrement: d.offsetIncrement,
    ioSize: d.ioSize,
    numberIos: d.numberIos,
    runtimeMs: d.runtimeMs,
    timeBased: d.timeBased,
    rampMs: d.rampMs,
    loops: d.loops,
    verify: d.verify,
    doVerify: d.doVerify,
    norandommap: d.norandommap,
    randrepeat: d.randrepeat,
    seed: d.randseed ?? (d.randrepeat ? FIO_DEFAULT_SEED : null),
    percentiles: d.percentiles,
    percentileBlocks: d.percentileBlocks,
    rate: d.rate,
    rateIops: d.rateIops,
    kbBase,
    groupReporting: d.groupReporting,
    files: d.files,
    logs: d.logs,
    bwAvgMs: d.bwAvgMs,
    iopsAvgMs: d.iopsAvgMs,
    ioengine,
    jobOptions: asRecord(job.entries),
    globalOptions: asRecord([...overrides, ...job.globals]),
    ignored,
  }
  return { spec, newGroup: d.newGroup }
}

/**
 * Options as fio echoes them in its JSON ("job options", "global options"): by fio's name (an
 * alias, `blocksize`, reads `bs`), in the order first set, each with its last value (`runtime`
 * then `timeout` is one `runtime`), and options given without a value (bare flags) left out.
 */
function asRecord(entries: readonly Entry[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const e of entries) if (e.value !== null) out[e.canonical] = e.value
  return out
}

function lastOf(entries: readonly Entry[], canonical: string): Entry | undefined {
  for (let i = entries.length - 1; i >= 0; i--) if (entries[i]!.canonical === canonical) return entries[i]
  return undefined
}

function ignore(e: Entry, reason: string): IgnoredOption {
  return { option: e.word, value: e.value, reason, file: e.file, line: e.line }
}

function show(e: Entry): string {
  return e.value === null ? e.word : `${e.word}=${e.value}`
}

function fail(code: BenchErrorCodeValue, where: Where, reason: string): never {
  throw new JobFileError(code, where.file, where.line, reason)
}

/** Unwraps a parsed value or fails at the entry, naming unset `${VAR}`s when they explain it. */
function need<T>(e: Entry, p: Parsed<T>): T {
  if (p.ok) return p.value
  const hint = e.unset.length > 0 ? ` (environment variable${e.unset.length > 1 ? 's' : ''} ${e.unset.join(', ')} not set)` : ''
  return fail(BenchErrorCode.JobBadValue, e, `${e.word}=${e.value ?? ''}: ${p.reason}${hint}`)
}

const RW_VALUES: Readonly<Record<string, RwMode>> = {
  read: 'read', write: 'write', randread: 'randread', randwrite: 'randwrite', rw: 'rw', readwrite: 'rw', randrw: 'randrw',
}
const TRIM_RW = new Set(['trim', 'randtrim', 'trimwrite', 'randtrimwrite'])

function apply(d: Draft, e: Entry, kb: KbBase, fromGlobal: boolean): void {
  const v = e.value ?? ''
  const where: Where = { file: e.file, line: e.line }
  switch (e.canonical) {
    case 'name':
      // fio names a job after its section; only a name= inside the job's own section renames it.
      if (!fromGlobal) d.name = v
      return
    case 'description':
      d.description = v
      return
    case 'rw': {
      const [mode, postfix] = v.split(':')
      if (TRIM_RW.has(mode!)) fail(BenchErrorCode.JobUnsupportedOption, e, `rw=${v}: trim workloads are not implemented in iofcert bench (reads and writes only)`)
      const rw = RW_VALUES[mode!]
      if (rw === undefined) fail(BenchErrorCode.JobBadValue, e, `rw=${v}: not an I/O pattern (read, write, randread, randwrite, rw, randrw)`)
      if (postfix !== undefined) fail(BenchErrorCode.JobUnsupportedOption, e, `rw=${v}: the ":${postfix}" offset modifier is not implemented in iofcert bench`)
      d.rw = rw
      d.rwWhere = where
      return
    }
    case 'rwmixread':
      d.rwmixread = need(e, parseInteger(v, 0, 100))
      return
    case 'rwmixwrite':
      d.rwmixread = 100 - need(e, parseInteger(v, 0, 100))
      return
    case 'bs':
      applyPerDirection(d, e, v, (s) => {
        // fio reads bs=4k-64k as bs=4k and drops the rest; a range is what was meant.
        if (/[-:]/.test(s)) {
          const r = need(e, parseSizeRange(s, kb))
          return { kind: 'range', min: r.min, max: r.max }
        }
        return { kind: 'fixed', bs: need(e, parseSize(s, kb)) }
      })
      return
    case 'bsrange':
      applyPerDirection(d, e, v, (s) => {
        const r = need(e, parseSizeRange(s, kb))
        return r.min === r.max ? { kind: 'fixed', bs: r.min } : { kind: 'range', min: r.min, max: r.max }
      })
      return
    case 'bssplit': {
      const dirs = v.includes(',') ? splitDirections(v) : { read: v, write: v }
      if (dirs.read !== undefined) d.split.read = parseBsSplit(e, dirs.read, kb)
      if (dirs.write !== undefined) d.split.write = parseBsSplit(e, dirs.write, kb)
      d.bsWhere = where
      return
    }
    case 'iodepth':
      d.iodepth = need(e, parseInteger(v, 1, 65536))
      return
    case 'numjobs':
      d.numjobs = need(e, parseInteger(v, 1, 4096))
      return
    case 'size':
      d.size = positiveSize(e, v, kb)
      return
    case 'filesize':
      d.filesize = positiveSize(e, v, kb)
      return
    case 'io_size':
      d.ioSize = positiveSize(e, v, kb)
      return
    case 'offset':
      d.offset = need(e, parseSize(v, kb))
      d.offsetWhere = where
      return
    case 'offset_increment':
      d.offsetIncrement = need(e, parseSize(v, kb))
      return
    case 'number_ios': {
      const n = need(e, parseInteger(v, 0))
      d.numberIos = n === 0 ? null : n
      return
    }
    case 'runtime': {
      const us = need(e, parseTimeUs(v))
      d.runtimeMs = us === 0 ? null : us / 1000
      return
    }
    case 'time_based':
      d.timeBased = need(e, parseBool(e.value, true))
      return
    case 'ramp_time':
      d.rampMs = need(e, parseTimeUs(v)) / 1000
      return
    case 'loops':
      d.loops = need(e, parseInteger(v, 1))
      return
    case 'stonewall':
      d.stonewall = need(e, parseBool(e.value, true))
      return
    case 'new_group':
      d.newGroup = need(e, parseBool(e.value, true))
      return
    case 'verify':
      d.verify = parseVerify(e, v)
      return
    case 'do_verify':
      d.doVerify = need(e, parseBool(e.value, false))
      return
    case 'norandommap':
      d.norandommap = need(e, parseBool(e.value, true))
      return
    case 'randrepeat':
    case 'allrandrepeat':
      d.randrepeat = need(e, parseBool(e.value, false))
      return
    case 'randseed':
      d.randseed = need(e, parseInteger(v, 0))
      return
    case 'random_distribution':
      if (v !== 'random') {
        const known = e.info.values?.includes(v.split(':')[0]!) ?? false
        fail(known ? BenchErrorCode.JobUnsupportedOption : BenchErrorCode.JobBadValue, e, `random_distribution=${v}: ${known ? 'only uniform random offsets are implemented in iofcert bench' : 'not a fio distribution'}`)
      }
      return
    case 'percentile_list':
      d.percentiles = parsePercentiles(e, v)
      return
    case 'rate':
    case 'rate_iops': {
      // per direction, as fio: rate=1m,500k (bytes a second), rate_iops=2000 (both directions)
      const dirs = splitDirections(v)
      const read = (x: string): number => need(e, e.canonical === 'rate' ? parseSize(x, kb) : parseInteger(x, 0))
      const into = e.canonical === 'rate' ? d.rate : d.rateIops
      if (dirs.read !== undefined) into.read = read(dirs.read)
      if (dirs.write !== undefined) into.write = read(dirs.write)
      return
    }
    case 'group_reporting':
      d.groupReporting = need(e, parseBool(e.value, true))
      return
    case 'filename':
      d.files = { ...d.files, filename: v === '' ? null : v }
      return
    case 'directory':
      d.files = { ...d.files, directory: v === '' ? null : v }
      return
    case 'filename_format':
      d.files = { ...d.files, format: v === '' ? null : v }
      return
    case 'write_bw_log':
      d.logs = { ...d.logs, bw: e.value ?? '' }
      return
    case 'write_iops_log':
      d.logs = { ...d.logs, iops: e.value ?? '' }
      return
    case 'write_lat_log':
      d.logs = { ...d.logs, lat: e.value ?? '' }
      return
    case 'log_avg_msec':
      d.logs = { ...d.logs, avgMs: need(e, parseInteger(v, 0)) }
      return
    case 'per_job_logs':
      d.logs = { ...d.logs, perJob: need(e, parseBool(e.value, false)) }
      return
    case 'log_offset':
      d.logs = { ...d.logs, offset: need(e, parseBool(e.value, false)) }
      return
    case 'log_prio':
      d.logs = { ...d.logs, prio: need(e, parseBool(e.value, false)) }
      return
    case 'log_max_value':
      d.logs = { ...d.logs, maxValue: need(e, parseBool(e.value, false)) }
      return
    case 'bwavgtime':
      d.bwAvgMs = need(e, parseInteger(v, 1))
      return
    case 'iopsavgtime':
      d.iopsAvgMs = need(e, parseInteger(v, 1))
      return
    case 'slat_percentiles':
    case 'clat_percentiles':
    case 'lat_percentiles':
      d.percentileBlocks = { ...d.percentileBlocks, [e.canonical.split('_')[0]!]: need(e, parseBool(e.value, false)) }
      return
    default:
      // Every implemented option has a case above; reaching here is a table/code mismatch.
      fail(BenchErrorCode.JobUnsupportedOption, e, `${e.word} is not implemented in iofcert bench`)
  }
}

function applyPerDirection(d: Draft, e: Entry, v: string, read: (s: string) => BlockSizes): void {
  const dirs = splitDirections(v)
  if (dirs.read !== undefined) d.bs.read = read(dirs.read)
  if (dirs.write !== undefined) d.bs.write = read(dirs.write)
  // fio's bssplit wins over bs whatever their order; a later bs does not undo it.
  d.bsWhere = { file: e.file, line: e.line }
}

function positiveSize(e: Entry, v: string, kb: KbBase): number {
  const n = need(e, parseSize(v, kb))
  if (n === 0) fail(BenchErrorCode.JobBadValue, e, `${e.word}=${v}: must be above 0`)
  return n
}

/** fio's bssplit for one direction: `4k/50:64k/50`; entries without a percentage share the rest. */
function parseBsSplit(e: Entry, text: string, kb: KbBase): BlockSizes {
  const raw: { bs: number; pct: number | null }[] = []
  for (const part of text.split(':')) {
    if (part.trim() === '') continue
    const [bsText, pctText] = part.split('/')
    const bs = need(e, parseSize(bsText!, kb))
    let pct: number | null = null
    if (pctText !== undefined && pctText.trim() !== '') {
      const p = need(e, parseInteger(pctText, 0, 100))
      pct = p === 0 ? null : p
    }
    raw.push({ bs, pct })
  }
  if (raw.length === 0) fail(BenchErrorCode.JobBadValue, e, `bssplit=${e.value ?? ''}: no block sizes`)
  const given = raw.reduce((s, r) => s + (r.pct ?? 0), 0)
  const missing = raw.filter((r) => r.pct === null).length
  if (given > 100 || (missing === 0 && given !== 100)) {
    fail(BenchErrorCode.JobBadValue, e, `bssplit=${e.value ?? ''}: percentages add up to ${given}, not 100`)
  }
  const share = missing > 0 ? (100 - given) / missing : 0
  const entries = raw.map((r) => ({ bs: r.bs, pct: r.pct ?? share }))
  return entries.length === 1 ? { kind: 'fixed', bs: entries[0]!.bs } : { kind: 'split', entries }
}

function parseVerify(e: Entry, v: string): VerifyKind | null {
  if (v === '0' || v === 'null') return null
  if (v === 'crc32c' || v === 'crc32c-intel') return 'crc32c'
  if (v === 'md5') return 'md5'
  if (e.info.values?.includes(v)) fail(BenchErrorCode.JobUnsupportedOption, e, `verify=${v}: iofcert bench implements verify=crc32c (also crc32c-intel) and verify=md5`)
  return fail(BenchErrorCode.JobBadValue, e, `verify=${v}: not a fio verify type (iofcert bench implements crc32c and md5)`)
}

function parsePercentiles(e: Entry, v: string): number[] {
  const out: number[] = []
  for (const p of v.split(':')) {
    const n = Number(p.trim())
    if (p.trim() === '' || !Number.isFinite(n) || n < 0 || n > 100) fail(BenchErrorCode.JobBadValue, e, `percentile_list=${v}: "${p}" is not a percentage`)
    out.push(n)
  }
  // fio sorts the list before it computes the percentiles
  return out.sort((a, b) => a - b)
}

function validate(d: Draft, all: readonly Entry[], ignored: IgnoredOption[]): void {
  const at = (canonical: string): Where => lastOf(all, canonical) ?? { file: OVERRIDE_FILE, line: 0 }
  for (const dir of ['read', 'write'] as const) {
    const b = d.split[dir] ?? d.bs[dir]
    const sizes = b.kind === 'fixed' ? [b.bs] : b.kind === 'range' ? [b.min, b.max] : b.entries.map((x) => x.bs)
    for (const s of sizes) {
      if (s === 0 || s % SECTOR !== 0) {
        fail(BenchErrorCode.JobBadValue, d.bsWhere ?? at('bs'), `block size ${s} (${dir}s) is not a multiple of ${SECTOR} bytes, the disk's sector size`)
      }
    }
  }
  if (d.offset % SECTOR !== 0) fail(BenchErrorCode.JobBadValue, d.offsetWhere ?? at('offset'), `offset ${d.offset} is not a multiple of ${SECTOR} bytes`)
  if (d.offsetIncrement % SECTOR !== 0) fail(BenchErrorCode.JobBadValue, at('offset_increment'), `offset_increment ${d.offsetIncrement} is not a multiple of ${SECTOR} bytes`)
  if (d.timeBased && d.runtimeMs === null) {
    // fio warns ("time_based requires a runtime/timeout setting") and runs the job to its size
    const e = lastOf(all, 'time_based')!
    ignored.push(ignore(e, 'time_based needs a runtime (runtime=… in the file or --runtime); as fio, the job runs to its size'))
    d.timeBased = false
  }
}
