/**
 * `iofcert bench`: fio job files in, fio-layout JSON out. Each job runs on fresh emulated clusters
 * (one VM per numjobs copy) on the chosen device; with a package, on the no-filter baseline and
 * with the filter, interleaved, and the overhead is reported beside it.
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Cluster } from '../framework/cluster.js'
import { IofError } from '../framework/errors.js'
import type { FilterInfo } from '../framework/inspect.js'
import type { PolicyRule } from '../framework/policy.js'
import type { DiskBacking } from '../framework/vm.js'
import { BenchError, BenchErrorCode, type BenchErrorCodeValue } from './errors.js'
import { disposePackage, openPackage, verifyPackage } from '../framework/package/index.js'
import { CLASS_CAPABILITY } from '../framework/policy.js'
import { Piscina } from 'piscina'
import type { SideSpec } from './engine.js'
import { generatorOptionsFor } from './generator.js'
import type { JobTask, JobTaskResult } from './job-worker.js'
import { jobPhases, parseJobFile, parseJobText, type JobSpec } from './jobfile.js'
import { toFioJson, type BenchJobResult, type FioJsonDocument } from './fio-json.js'
import type { ProfileEntry } from './profile.js'

const GiB = 1024 ** 3
const JOB_WORKER = new URL('./job-worker.js', import.meta.url).href

/** Options of a bench run, resolved once. */
export interface BenchOptions {
  /** A filter package to benchmark against the baseline; none = the bare framework path. */
  readonly package?: string
  /** Job file (default: the standard 4 KiB 70/30 random mix at QD 32). */
  readonly job?: string
  /** Jobs already read from a job file (then `job` and `runtimeS` are not read again). */
  readonly jobs?: readonly JobSpec[]
  /** `memory`, `file`, or `null` (no data kept: the I/O path alone, as fio's null engine). */
  readonly device?: DiskBacking
  /** VMs per job (default: the job's numjobs). */
  readonly vms?: number
  /**
   * fio's `--runtime` (seconds): the runtime of every job whose file gives none (the file's own
   * `runtime` wins, as in fio; it does not make a job time-based). The standard job runs this
   * long (default 5 s).
   */
  readonly runtimeS?: number
  /** Disk size for jobs that give none (default 1 GiB). */
  readonly defaultSizeBytes?: number
  readonly version: string
  readonly onProgress?: (line: string) => void
}

/**
 * The standard job: 4 KiB random 70/30 mix at queue depth 32, one job, time based. Its runtime
 * comes from `--runtime` (default `STANDARD_RUNTIME_S`), which a runtime in the job would beat.
 */
export const STANDARD_JOB = `[global]
rw=randrw
rwmixread=70
bs=4k
iodepth=32
size=1g
norandommap
time_based

[randrw-70-30]
`

/** Seconds the standard job runs without `--runtime`. */
export const STANDARD_RUNTIME_S = 5

/** Loads (verifies first, then inspects in the loader) a package for the bench. */
export async function loadBenchFilter(pkg: string, workDir: string): Promise<{ info: FilterInfo; rule: PolicyRule }> {
  if (!fs.existsSync(pkg)) throw new IofError('PackageUnreadable', `cannot read package ${pkg}: no such file or directory`, {}, { exitCode: 2 })
  const opened = await openPackage(pkg, { workDir })
  const d = opened.descriptor as Record<string, unknown>
  const key = (d.signature as { publicKey?: string } | undefined)?.publicKey
  const fp = typeof key === 'string' ? (await import('node:crypto')).createHash('sha256').update(Buffer.from(key, 'base64')).digest('hex') : undefined
  const v = await verifyPackage(opened, { collect: true, trust: { acceptanceLevel: 'CommunitySupported', trustedKeys: fp ? [fp] : [] } })
  const bad = v.steps.find(s => !s.ok)
  if (bad && !bad.ok) {
    await disposePackage(opened)
    throw new IofError('PackageRefused', `package ${pkg} is refused (${bad.name}): ${bad.error.message}`, {}, { exitCode: 1 })
  }
  const c = await Cluster.create({})
  try {
    const info = await c.describeModule(path.join(opened.root, String(d.entry)))
    const props = ((info.policySchema as { properties?: Record<string, unknown> } | undefined)?.properties ?? {})
    const params: Record<string, unknown> = {}
    if ('site' in props) params.site = 'dr'
    return { info, rule: { filter: `${info.name}@${CLASS_CAPABILITY[info.cls]}`, params } }
  } finally {
    await c.shutdown({ remove: true })
  }
}

/** The bench's own pass-through filters (three classes), for measuring the framework path. */
export async function passThroughFilters(n: number): Promise<{ install: FilterInfo[]; rules: PolicyRule[] }> {
  const names = ['inspection', 'compression', 'datacapture'].slice(0, n)
  const c = await Cluster.create({})
  try {
    const install: FilterInfo[] = []
    for (const nm of names) install.push(await c.describeModule(fileURLToPath(new URL(`./filters/pass-${nm}.js`, import.meta.url))))
    return { install, rules: install.map(i => ({ filter: `${i.name}@${CLASS_CAPABILITY[i.cls]}` })) }
  } finally {
    await c.shutdown({ remove: true })
  }
}

/** Parses the job file (or the standard job) with the command line's options, as fio's. */
export function loadJobs(o: Pick<BenchOptions, 'job' | 'runtimeS'>): JobSpec[] {
  if (o.job === undefined) return parseJobText(STANDARD_JOB, { file: '(standard job)', overrides: { runtime: String(o.runtimeS ?? STANDARD_RUNTIME_S) } })
  return parseJobFile(o.job, o.runtimeS !== undefined ? { overrides: { runtime: String(o.runtimeS) } } : {})
}

/** Runs the jobs (stonewalled phases one after another, jobs of a phase side by side). */
export async function runBench(o: BenchOptions): Promise<{ doc: FioJsonDocument; results: BenchJobResult[]; profile: ProfileEntry[] | null }> {
  const started = performance.now()
  const jobs = o.jobs ?? loadJobs(o)
  const device = o.device ?? 'memory'
  if (device === 'null') {
    const v = jobs.find(j => j.verify !== null)
    if (v !== undefined) throw new BenchError(BenchErrorCode.GeneratorOptions, `job ${v.name} verifies its data, and the null device keeps none: use --device memory or file`)
  }
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-bench-run-'))
  try {
    const filter = o.package !== undefined ? await loadBenchFilter(o.package, workDir) : null
    const baseline: SideSpec = { label: 'baseline', install: [], rules: [] }
    const filtered: SideSpec | null = filter ? { label: 'filtered', install: [filter.info], rules: [filter.rule] } : null
    const results: BenchJobResult[] = []
    const phases = jobPhases(jobs)
    // The jobs of a phase run side by side, each on a pool thread of its own: as many threads
    // as the machine has cores, or as the widest phase has jobs (fio runs them all at once).
    const threads = Math.max(os.availableParallelism(), ...phases.map(p => p.length))
    const pool = new Piscina({ filename: JOB_WORKER, minThreads: 0, maxThreads: threads, idleTimeout: 500 })
    try {
      for (const phase of phases) {
        const done = await Promise.all(phase.map(async spec => {
          const vms = o.vms ?? spec.numjobs
          const capacity = Math.max(512, roundUp((spec.offset + (spec.numjobs - 1) * spec.offsetIncrement) + (spec.size ?? o.defaultSizeBytes ?? GiB)))
          const placement = { device, vms, capacity, dir: workDir }
          // options are resolved here, so that a job that cannot run fails before its clusters start
          const options = Array.from({ length: vms }, (_, i) => generatorOptionsFor(spec, { capacity, clone: i, runSeed: 0x5eed }))
          o.onProgress?.(`${spec.name}: ${vms} VM(s) on ${device}${filtered ? ', baseline then filtered' : ''}`)
          // baseline and filtered interleave: the filter is measured right after its baseline
          const sides = filtered ? [baseline, filtered] : [baseline]
          const r = (await pool.run({ sides, placement, options } satisfies JobTask)) as JobTaskResult
          if (!r.ok) throw r.name === 'BenchError' ? new BenchError(r.code as BenchErrorCodeValue, r.message) : new IofError(r.code ?? 'BenchJobFailed', `job ${spec.name}: ${r.message}`, {}, { exitCode: r.exitCode ?? 3 })
          return {
            spec,
            device,
            chain: filtered ? [filter!.info.id] : [],
            vms: r.sides[r.sides.length - 1]!,
            ...(filtered ? { baseline: r.sides[0]! } : {}),
            thread: r.threadId,
          } satisfies BenchJobResult
        }))
        results.push(...done)
      }
    } finally {
      await pool.destroy()
    }
    const doc = toFioJson(results, { version: o.version, elapsedMs: performance.now() - started })
    const profile = filter ? await profileFilter(filter, workDir) : null
    return { doc: profile ? Object.assign(doc, { iofcert: { profile } }) : doc, results, profile }
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true })
  }
}

/** tinybench of the filter's start/done per operation type, on a live instance. */
export async function profileFilter(filter: { info: FilterInfo; rule: PolicyRule }, workDir: string): Promise<ProfileEntry[]> {
  const c = await Cluster.create({ dir: fs.mkdtempSync(path.join(workDir, 'profile-')), cacheBytes: 0 })
  try {
    const h = await c.addHost('esx1')
    await h.activate(filter.info)
    c.createPolicy({ name: 'p', rules: [filter.rule] })
    const vm = h.createVm('vm1')
    await h.addDisk('vm1', { id: 'p0', capacity: 64 << 20, policy: 'p' })
    await vm.powerOn()
    try {
      return await vm.runInWorker<ProfileEntry[]>('p0', new URL('./profile.js', import.meta.url).href, { filterId: filter.info.id })
    } catch (e) {
      // the filter crashed or hung its VM's worker under the profile: nothing was measured
      if ((e as { code?: unknown }).code !== 'WorkerFailed') throw e
      const error = `the VM's worker failed during the profile: ${(e as Error).message}`
      return (['read', 'write', 'flush', 'unmap'] as const).flatMap(op => (['start', 'done'] as const).map(handler => ({ handler, op, nsPerOp: 0, rmePct: 0, samples: 0, error })))
    }
  } finally {
    await c.shutdown({ remove: true })
  }
}

function roundUp(n: number): number {
  return Math.ceil(n / 4096) * 4096
}
