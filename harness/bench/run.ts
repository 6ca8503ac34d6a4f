/**
 * `iofcert bench`: fio job files in, fio-layout JSON out. Each job runs on emulated clusters (one
 * VM per file its copies use: one per numjobs copy unless they name one file) on the chosen
 * device; with a package, on the no-filter baseline and with the filter, interleaved, and the
 * overhead is reported beside it. Jobs that name the same file (fio's filename=, or the same
 * default file name) share its disk, across phases too, as fio's jobs share files.
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { CLASS_CAPABILITY, Cluster, PackageRefused, PackageUnreadable, type DiskBacking, type FilterInfo, type PolicyRule } from '../framework/index.js'
import { benchErrorFrom, BenchJobFailed, GeneratorOptionsInvalid } from './errors.js'
import { disposePackage, openPackage, verifyPackage } from '../framework/package/index.js'
import { Piscina } from 'piscina'
import { MessageChannel } from 'node:worker_threads'
import type { BenchRun, SideSpec } from './engine.js'
import { generatorOptionsFor, type GeneratorResult } from './generator.js'
import type { JobPhaseReply, JobTask, JobTaskError, JobTaskMessage, JobTaskResult } from './job-worker.js'
import { jobFileName, parseJobFile, parseJobText, type JobSpec } from './jobfile.js'
import { toFioJson, type BenchJobResult, type FioJsonDocument } from './fio-json.js'
import { writeFioLogs, type LogCopy, type WrittenLogs } from './fio-logs.js'
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
  /** `json+`: the document carries fio's latency `bins` (fio's --output-format=json+). */
  readonly outputFormat?: 'json' | 'json+'
  /** Where relative log file names (write_bw_log …) are written (default: the working directory). */
  readonly logDir?: string
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
  if (!fs.existsSync(pkg)) throw PackageUnreadable({ source: pkg, reason: 'no such file or directory' })
  const opened = await openPackage(pkg, { workDir })
  const d = opened.descriptor as Record<string, unknown>
  const key = (d.signature as { publicKey?: string } | undefined)?.publicKey
  const fp = typeof key === 'string' ? (await import('node:crypto')).createHash('sha256').update(Buffer.from(key, 'base64')).digest('hex') : undefined
  const v = await verifyPackage(opened, { collect: true, trust: { acceptanceLevel: 'CommunitySupported', trustedKeys: fp ? [fp] : [] } })
  const bad = v.steps.find(s => !s.ok)
  if (bad && !bad.ok) {
    await disposePackage(opened)
    throw PackageRefused({ package: `package ${pkg}`, reason: `is refused (${bad.name}): ${bad.error.message}` })
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
export async function runBench(o: BenchOptions): Promise<{ doc: FioJsonDocument; results: BenchJobResult[]; profile: ProfileEntry[] | null; logs: WrittenLogs | null }> {
  const started = performance.now()
  const jobs = o.jobs ?? loadJobs(o)
  const device = o.device ?? 'memory'
  if (device === 'null') {
    const v = jobs.find(j => j.verify !== null)
    if (v !== undefined) throw GeneratorOptionsInvalid({ message: `job ${v.name} verifies its data, and the null device keeps none: use --device memory or file` })
  }
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-bench-run-'))
  try {
    const filter = o.package !== undefined ? await loadBenchFilter(o.package, workDir) : null
    const baseline: SideSpec = { label: 'baseline', install: [], rules: [] }
    const filtered: SideSpec | null = filter ? { label: 'filtered', install: [filter.info], rules: [filter.rule] } : null
    const plan = planDisks(jobs, o)
    // options are resolved here, so that a job that cannot run fails before its clusters start
    const options = jobs.map((spec, j) => plan.disk[j]!.map((d, clone) => generatorOptionsFor(spec, { capacity: plan.groups[plan.group[j]!]!.disks[d]!, clone, runSeed: 0x5eed })))
    // baseline and filtered interleave: the filter is measured right after its baseline
    const sides = filtered ? [baseline, filtered] : [baseline]
    const byJob: (BenchJobResult | undefined)[] = jobs.map(() => undefined)
    // The groups of a phase run side by side, each on a pool thread of its own: as many threads
    // as the machine has cores, or as a phase has groups under way (fio runs a phase's jobs all
    // at once; a group that spans phases keeps its thread in between).
    const live = plan.phases.map((_, p) => plan.groups.filter(g => g.first <= p && p <= g.last).length)
    const threads = Math.max(os.availableParallelism(), ...live)
    const pool = new Piscina({ filename: JOB_WORKER, minThreads: 0, maxThreads: threads, idleTimeout: 500 })
    const running = new Map<number, GroupTask>()
    try {
      for (const [p, phase] of plan.phases.entries()) {
        for (const [g, group] of plan.groups.entries()) {
          if (group.first === p) running.set(g, startGroup(pool, { sides, device, dir: workDir, disks: group.disks, keep: group.first !== group.last }))
        }
        const inPhase = [...new Set(phase.map(j => plan.group[j]!))]
        await Promise.all(inPhase.map(async g => {
          const members = phase.filter(j => plan.group[j] === g)
          for (const j of members) o.onProgress?.(`${jobs[j]!.name}: ${plan.disk[j]!.length} cop${plan.disk[j]!.length === 1 ? 'y' : 'ies'} on ${device}${filtered ? ', baseline then filtered' : ''}`)
          const runs: BenchRun[] = members.flatMap(j => plan.disk[j]!.map((vm, c) => ({ vm, options: options[j]![c]! })))
          const r = await running.get(g)!.phase(runs)
          if (!r.ok) throw taskError(r, members.map(j => jobs[j]!.name).join(', '))
          let at = 0
          for (const j of members) {
            const n = plan.disk[j]!.length
            const pick = (side: GeneratorResult[]): GeneratorResult[] => side.slice(at, at + n)
            byJob[j] = {
              spec: jobs[j]!,
              device,
              chain: filtered ? [filter!.info.id] : [],
              vms: pick(r.sides[r.sides.length - 1]!),
              ...(filtered ? { baseline: pick(r.sides[0]!) } : {}),
              thread: r.threadId,
            }
            at += n
          }
        }))
        for (const [g, group] of plan.groups.entries()) {
          if (group.last !== p) continue
          const t = running.get(g)!
          running.delete(g)
          const end = await t.end()
          if (!end.ok) throw taskError(end, group.jobs.map(j => jobs[j]!.name).join(', '))
        }
      }
    } finally {
      await Promise.all([...running.values()].map(t => t.end()))
      await pool.destroy()
    }
    const results = byJob as BenchJobResult[]
    const doc = toFioJson(results, { version: o.version, elapsedMs: performance.now() - started, plus: o.outputFormat === 'json+' })
    const logs = writeLogs(results, o.logDir ?? process.cwd())
    const profile = filter ? await profileFilter(filter, workDir) : null
    return { doc: profile ? Object.assign(doc, { iofcert: { profile } }) : doc, results, profile, logs }
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

/** A group of jobs that share files, run by one task of the pool. */
interface DiskGroup {
  /** Its jobs (indices into the run's jobs), in order. */
  readonly jobs: number[]
  /** Its disks (one VM each), by capacity in bytes. */
  readonly disks: number[]
  /** The first and last phase it has jobs in. */
  first: number
  last: number
}

/** Which disk each copy of each job uses, grouped as the pool runs them, and the run's phases. */
export interface DiskPlan {
  readonly groups: readonly DiskGroup[]
  /** Each job's group. */
  readonly group: readonly number[]
  /** Each job's copies: the disk (index into its group's disks) of each. */
  readonly disk: readonly (readonly number[])[]
  /** The jobs of each phase (a stonewall job starts one). */
  readonly phases: readonly (readonly number[])[]
  /** Each disk's file name, per group, as fio names it. */
  readonly files: readonly (readonly string[])[]
}

/**
 * Gives every file the jobs use one disk, as fio gives every file name one file: copies and jobs
 * naming the same file (fio's filename=, or the same default `<section>.<copy>.0`) share its disk;
 * jobs linked by a shared file form a group, run by one task, whose disks live across the phases
 * the group has jobs in. A disk is as large as its largest user needs: its offset, the copies'
 * offset_increment and its size; jobs without a size cover the disk the others sized, as fio's
 * cover the file as laid out (1 GiB, or `defaultSizeBytes`, when no user gives a size).
 */
export function planDisks(jobs: readonly JobSpec[], o: Pick<BenchOptions, 'vms' | 'defaultSizeBytes'> = {}): DiskPlan {
  const names = jobs.map(spec => Array.from({ length: o.vms ?? spec.numjobs }, (_, c) => jobFileName(spec, c)))
  // jobs linked by a file they share are one group (union–find)
  const parent = jobs.map((_, j) => j)
  const root = (j: number): number => (parent[j] === j ? j : (parent[j] = root(parent[j]!)))
  const firstUser = new Map<string, number>()
  names.forEach((files, j) => {
    for (const f of files) {
      const u = firstUser.get(f)
      if (u === undefined) firstUser.set(f, j)
      else parent[root(j)] = root(u)
    }
  })
  const phaseOf: number[] = []
  const phases: number[][] = []
  jobs.forEach((spec, j) => {
    if (phases.length === 0 || spec.stonewall) phases.push([])
    phases[phases.length - 1]!.push(j)
    phaseOf.push(phases.length - 1)
  })
  const groups: DiskGroup[] = []
  const files: string[][] = []
  const groupOfRoot = new Map<number, number>()
  /** Per group and disk: the largest need of the jobs that give a size (0: none does). */
  const sized: number[][] = []
  const group: number[] = []
  const disk: number[][] = []
  jobs.forEach((spec, j) => {
    let g = groupOfRoot.get(root(j))
    if (g === undefined) {
      g = groups.push({ jobs: [], disks: [], first: phaseOf[j]!, last: phaseOf[j]! }) - 1
      files.push([])
      sized.push([])
      groupOfRoot.set(root(j), g)
    }
    const grp = groups[g]!
    grp.jobs.push(j)
    grp.last = Math.max(grp.last, phaseOf[j]!)
    group.push(g)
    const need = Math.max(512, roundUp(spec.offset + (names[j]!.length - 1) * spec.offsetIncrement + (spec.size ?? o.defaultSizeBytes ?? GiB)))
    disk.push(names[j]!.map(f => {
      let d = files[g]!.indexOf(f)
      if (d < 0) {
        d = files[g]!.push(f) - 1
        sized[g]!.push(0)
        grp.disks.push(0)
      }
      // as fio's jobs without a size cover the file as the others laid it out, a disk is as
      // large as the jobs that give a size need; only a disk none of them uses takes the default
      if (spec.size !== null) sized[g]![d] = Math.max(sized[g]![d]!, need)
      else grp.disks[d] = Math.max(grp.disks[d]!, need)
      return d
    }))
  })
  groups.forEach((grp, g) => grp.disks.forEach((unsized, d) => (grp.disks[d] = sized[g]![d]! > 0 ? sized[g]![d]! : unsized)))
  return { groups, group, disk, phases, files }
}

/** A group's task on the pool, driven phase by phase. */
interface GroupTask {
  /** Runs a phase's copies; resolves with each side's results, or the error that stopped it. */
  phase(runs: readonly BenchRun[]): Promise<JobPhaseReply>
  /** Ends the task (its clusters shut down); resolves when it is over. */
  end(): Promise<JobTaskResult>
}

function startGroup(pool: Piscina, task: Omit<JobTask, 'port'>): GroupTask {
  const { port1, port2 } = new MessageChannel()
  const done = pool.run({ ...task, port: port2 } satisfies JobTask, { transferList: [port2] }) as Promise<JobTaskResult>
  // a task that fails before it answers (its thread died) answers every later phase with its error
  const failed = done.then(
    r => (r.ok ? new Promise<never>(() => undefined) : r),
    (e: unknown) => ({ ok: false, name: 'Error', code: 'BenchJobFailed', exitCode: 3, message: e instanceof Error ? e.message : String(e) }) satisfies JobTaskError,
  )
  let ended: Promise<JobTaskResult> | null = null
  return {
    phase(runs) {
      const reply = new Promise<JobPhaseReply>(resolve => port1.once('message', resolve))
      port1.postMessage({ t: 'phase', runs } satisfies JobTaskMessage)
      return Promise.race([reply, failed])
    },
    end() {
      if (ended === null) {
        port1.postMessage({ t: 'done' } satisfies JobTaskMessage)
        ended = done.catch((e: unknown) => ({ ok: false, name: 'Error', code: 'BenchJobFailed', exitCode: 3, message: e instanceof Error ? e.message : String(e) }) satisfies JobTaskError).finally(() => port1.close())
      }
      return ended
    },
  }
}

/** The error of a group's task, as the bench reports it (its code kept, exit 2 for bad input). */
function taskError(r: JobTaskError, jobs: string): Error {
  return benchErrorFrom(r, BenchJobFailed({ jobs, reason: r.message }), `job ${jobs}: `)
}

/**
 * Writes the jobs' fio log files (write_bw_log …) from the reported side (the filter's, with a
 * package). Copies are numbered 1 … N over every job, as fio numbers its jobs.
 */
function writeLogs(results: readonly BenchJobResult[], dir: string): WrittenLogs | null {
  const copies: LogCopy[] = []
  let number = 0
  for (const r of results) {
    const spec = r.spec as JobSpec
    r.vms.forEach((result, c) => {
      number++
      copies.push({ spec, name: c === 0 ? spec.name : spec.section, number, result })
    })
  }
  if (!copies.some(c => c.spec.logs.bw !== null || c.spec.logs.iops !== null || c.spec.logs.lat !== null)) return null
  return writeFioLogs(copies, dir)
}
