/**
 * Runs the real fio on a job file with its null engine (`ioengine=null`: no device, every I/O
 * completes at once), so the bench can put fio's own cost per I/O beside ours.
 *
 * The file fio runs is not a copy of the user's: it is written from our parse of it, with only
 * the options the bench implements, so both sides run the same workload — device options
 * (filename, directory, direct …) are gone, includes and `${VAR}`s are resolved, `bs=4k-64k` is
 * the range we run, and verify is dropped (the null engine stores nothing to read back).
 *
 * `engine: 'mmap'` runs the same jobs on fio's mmap engine against a file in shared memory
 * (`/dev/shm`): fio moving every byte into and out of RAM, beside the framework's `memory` device.
 */
import { execFile } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { FioRunFailed } from './errors.js'
import { parseFioJson, type FioSummary } from './fio-json.js'
import { parseJobFile, type BlockSizes, type JobSpec, type ParseOptions } from './jobfile.js'

/** Options for `runFio`. */
export interface RunFioOptions extends ParseOptions {
  /** Run each job this many seconds (time-based), as `iofcert bench --runtime`. */
  readonly runtimeS?: number
  /** Bytes assumed for jobs without a size (default 1 GiB). */
  readonly deviceBytes?: number
  /** The fio executable (default "fio" on the PATH). */
  readonly fioPath?: string
  /** Kill fio after this long (default: the longest runtime plus 60 s, or 10 minutes). */
  readonly timeoutMs?: number
  /**
   * fio's engine: `null` (default: no device, no data) or `mmap` on a file in `/dev/shm` (every
   * byte copied into and out of RAM; a synchronous engine, so fio caps the queue depth at 1).
   */
  readonly engine?: 'null' | 'mmap'
}

/** What `runFio` ran and read back. */
export interface FioRun {
  readonly summary: FioSummary
  /** The job file fio ran. */
  readonly jobText: string
  /** fio's version line, e.g. "fio-3.33". */
  readonly version: string
}

/**
 * Runs fio with the null engine on `jobFile`'s jobs. Resolves to null when fio is not
 * installed; rejects with a coded error when the job file is bad (JobFileError) or fio fails.
 */
export async function runFio(jobFile: string, options: RunFioOptions = {}): Promise<FioRun | null> {
  const overrides: Record<string, string | null> = { ...(options.overrides ?? {}) }
  if (options.runtimeS !== undefined) overrides.runtime = String(options.runtimeS)
  const specs = parseJobFile(jobFile, { ...(options.env === undefined ? {} : { env: options.env }), overrides })
  const fio = options.fioPath ?? 'fio'
  const version = await fioVersion(fio)
  if (version === null) return null
  const engine = options.engine ?? 'null'
  const dir = fs.mkdtempSync(path.join(engine === 'mmap' ? shmDir() : os.tmpdir(), 'iofcert-fio-'))
  try {
    const deviceBytes = options.deviceBytes ?? 2 ** 30
    const jobText = engine === 'null' ? toNullEngineJobText(specs, { deviceBytes }) : toFioJobText(specs, { deviceBytes, engine: ['ioengine=mmap', `filename=${path.join(dir, 'image')}`] })
    const file = path.join(dir, `${engine}-engine.fio`)
    fs.writeFileSync(file, jobText)
    const longest = Math.max(0, ...specs.map((s) => (s.runtimeMs ?? 0) + s.rampMs))
    const timeout = options.timeoutMs ?? (longest > 0 ? longest * Math.max(1, specs.length) + 60_000 : 600_000)
    // the JSON goes to a file: fio prints notes (a synchronous engine's capped depth) on stdout
    const out = path.join(dir, 'out.json')
    await exec(fio, ['--output-format=json', `--output=${out}`, file], timeout)
    return { summary: parseFioJson(fs.readFileSync(out, 'utf8')), jobText, version }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** fio's version ("fio-3.33"), or null when there is no fio to run. */
export async function fioVersion(fio = 'fio'): Promise<string | null> {
  try {
    const { stdout } = await exec(fio, ['--version'], 10_000)
    return stdout.trim()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
}

/** Where `engine: 'mmap'` puts its file: RAM, so fio measures copies, not a disk. */
function shmDir(): string {
  // looked up when needed, not when the module loads: a process under Node's permission model
  // (a sandboxed subject importing the bench) may not look at /dev/shm
  return fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir()
}

/** Writes parsed jobs back as a fio job file for the null engine (see the module comment). */
export function toNullEngineJobText(specs: readonly JobSpec[], options: { readonly deviceBytes: number }): string {
  return toFioJobText(specs, { deviceBytes: options.deviceBytes, engine: ['ioengine=null'] })
}

function toFioJobText(specs: readonly JobSpec[], options: { readonly deviceBytes: number; readonly engine: readonly string[] }): string {
  const name = options.engine[0]!.replace('ioengine=', '')
  const out = [`; written by iofcert bench from its parse of a job file: fio ${name} engine, same workload`, '[global]', ...options.engine, 'lat_percentiles=1', '']
  for (const s of specs) {
    out.push(`[${s.name}]`)
    out.push(`rw=${s.rw}`)
    if (s.rw === 'rw' || s.rw === 'randrw') out.push(`rwmixread=${s.readPct}`)
    out.push(...blockSizeLines(s.bs))
    out.push(`iodepth=${s.iodepth}`, `numjobs=${s.numjobs}`)
    out.push(`size=${s.size ?? options.deviceBytes - s.offset}`)
    if (s.offset > 0) out.push(`offset=${s.offset}`)
    if (s.offsetIncrement > 0) out.push(`offset_increment=${s.offsetIncrement}`)
    if (s.ioSize !== null) out.push(`io_size=${s.ioSize}`)
    if (s.numberIos !== null) out.push(`number_ios=${s.numberIos}`)
    if (s.runtimeMs !== null) out.push(`runtime=${Math.round(s.runtimeMs)}ms`)
    if (s.timeBased) out.push('time_based')
    if (s.rampMs > 0) out.push(`ramp_time=${Math.round(s.rampMs)}ms`)
    if (s.loops > 1) out.push(`loops=${s.loops}`)
    if (s.norandommap) out.push('norandommap')
    if (s.rate.read > 0 || s.rate.write > 0) out.push(`rate=${s.rate.read},${s.rate.write}`)
    if (s.rateIops.read > 0 || s.rateIops.write > 0) out.push(`rate_iops=${s.rateIops.read},${s.rateIops.write}`)
    out.push(`randrepeat=${s.randrepeat ? 1 : 0}`)
    if (s.seed !== null) out.push(`randseed=${s.seed}`)
    out.push(`percentile_list=${s.percentiles.join(':')}`)
    if (s.groupReporting) out.push('group_reporting')
    if (s.stonewall) out.push('stonewall')
    else if (s.index > 0 && s.groupId !== specs[s.index - 1]!.groupId) out.push('new_group')
    out.push('')
  }
  return out.join('\n')
}

function blockSizeLines(bs: JobSpec['bs']): string[] {
  const one = (b: BlockSizes): string => (b.kind === 'fixed' ? String(b.bs) : b.kind === 'range' ? `${b.min}-${b.max}` : b.entries.map((e) => `${e.bs}/${e.pct}`).join(':'))
  const { read, write } = bs
  if (read.kind === 'split' || write.kind === 'split') {
    const split = (b: BlockSizes): string => (b.kind === 'split' ? one(b) : `${b.kind === 'fixed' ? b.bs : b.min}/100`)
    return [`bssplit=${split(read)},${split(write)}`]
  }
  if (read.kind === 'range' || write.kind === 'range') {
    const range = (b: BlockSizes): string => (b.kind === 'range' ? one(b) : `${one(b)}-${one(b)}`)
    return [`bsrange=${range(read)},${range(write)}`]
  }
  return [`bs=${one(read)},${one(write)}`]
}

function exec(file: string, args: string[], timeout: number): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout, maxBuffer: 64 * 2 ** 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err === null) {
        resolve({ stdout, stderr })
        return
      }
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(err)
        return
      }
      const line = `${stderr}\n${stdout}`.split('\n').find((l) => l.trim() !== '') ?? err.message
      reject(FioRunFailed({ how: err.killed ? 'timed out' : `exit ${String(err.code)}`, line: line.trim() }, err))
    })
  })
}
