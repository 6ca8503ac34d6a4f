/**
 * What one check gets: a seeded random source, fresh clusters in temp directories with the filter
 * installed, the conventional policy for it, and a resource tracker that tears everything down
 * in one place — even when the check fails, throws or runs out of time.
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import type { FilterClass } from '../sdk/index.js'
import { Cluster, Rng, type ClusterOptions, type FilterInfo, type LogEntry, type PolicyRule } from '../framework/index.js'
import { MAX_CHECK_LOG_LINES, type FilterLogLine, type ProfileThresholds } from '../../reports/index.js'
import type { SubjectData } from './subject.js'
import { conventionalParams } from './subject.js'

/** Run-wide options a check may read. */
export interface RunOptions {
  readonly quick: boolean
  readonly certified: boolean
  readonly seed: number
  readonly profileName: string
  readonly thresholds: ProfileThresholds
  /** Upgrade source package, prepared like the subject. */
  readonly upgradeFrom: SubjectData | null
  /** Bundled reference filters (their infos, from the loader). */
  readonly references: Readonly<Record<string, FilterInfo>>
  /** Where the run keeps its temp files. */
  readonly workDir: string
  /** Each check's run budget when the user bounded checks (`--check-timeout`); else the check's own. */
  readonly checkRunMs?: number
}

/** A seed per check derived from the run's seed and the check id: the same seed, the same run. */
export function checkSeed(runSeed: number, id: string): number {
  let h = (runSeed ^ 0x9e3779b9) >>> 0
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619) >>> 0
  return h
}

export interface ClusterRequest {
  readonly hosts?: number
  /** Install the filter under test on every host (default true). */
  readonly install?: boolean
  /** Drives with command queueing (default true for functional checks). */
  readonly reorder?: boolean
  readonly ioTimeoutMs?: number
  readonly classExclusivity?: 'host' | 'disk'
  readonly cacheBytes?: number
  /** Other filters to install (reference filters by name, or infos). */
  readonly also?: readonly (string | FilterInfo)[]
}

export class CheckContext {
  readonly rng: Rng
  private readonly cleanups: (() => unknown)[] = []
  private readonly notes: string[] = []
  private readonly clusters: Cluster[] = []
  /** When the check started (epoch ms), for the times of its log lines. */
  readonly startedAt = Date.now()

  constructor(
    readonly id: string,
    readonly seed: number,
    readonly subject: SubjectData,
    readonly options: RunOptions,
  ) {
    this.rng = new Rng(seed)
  }

  get quick(): boolean {
    return this.options.quick
  }
  get thresholds(): ProfileThresholds {
    return this.options.thresholds
  }
  get cls(): FilterClass {
    return this.subject.cls
  }
  /** The installable filter (checks that need it run only when the package was accepted). */
  get info(): FilterInfo {
    if (this.subject.info === null) throw new Error('the filter under test is not installable')
    return this.subject.info
  }

  /** Registers a cleanup; cleanups run in reverse order when the check ends. */
  defer(fn: () => unknown): void {
    this.cleanups.push(fn)
  }

  /** A fresh temp directory, removed at the end. */
  tmpDir(label = 'check'): string {
    const dir = fs.mkdtempSync(path.join(this.options.workDir, `${label}-`))
    this.defer(() => fs.rmSync(dir, { recursive: true, force: true }))
    return dir
  }

  /** A fresh cluster (hosts esx1..esxN) in a temp dir, shut down when the check ends. */
  async cluster(req: ClusterRequest = {}): Promise<Cluster> {
    const dir = this.tmpDir('cluster')
    const o: Partial<ClusterOptions> = {
      dir,
      ioTimeoutMs: req.ioTimeoutMs ?? this.thresholds.ioTimeoutMs,
      openTimeoutMs: 30_000,
      classExclusivity: req.classExclusivity ?? 'host',
      reorder: req.reorder === false ? null : { seed: this.rng.u32(), maxDelayMs: 2 },
      daemonStopMs: this.thresholds.daemonStopMs,
      ...(req.cacheBytes !== undefined ? { cacheBytes: req.cacheBytes } : {}),
    }
    const c = await Cluster.create(o)
    this.clusters.push(c)
    this.defer(() => c.shutdown({ remove: false }))
    for (let i = 1; i <= (req.hosts ?? 1); i++) await c.addHost(`esx${i}`)
    if (req.install !== false) await this.install(c, this.info)
    for (const a of req.also ?? []) await this.install(c, typeof a === 'string' ? this.reference(a) : a)
    return c
  }

  /** Activates a filter on every host of a cluster (no package: it was verified already). */
  async install(c: Cluster, info: FilterInfo): Promise<void> {
    for (const h of c.hosts.values()) await h.activate(info)
  }

  reference(name: string): FilterInfo {
    const r = this.options.references[name]
    if (r === undefined) throw new Error(`no bundled reference filter ${name}`)
    return r
  }

  /** The policy rule for the filter under test, with the harness's conventional parameters. */
  rule(o: { rpoSeconds?: number; cacheMiB?: number; params?: Record<string, unknown> } = {}, info: FilterInfo = this.info): PolicyRule {
    return { filter: `${info.name}@${CAPS[info.cls]}`, params: { ...conventionalParams(info.policySchema, info.cls, o), ...o.params } }
  }

  /** A note kept in the check's evidence. */
  note(s: string): void {
    this.notes.push(s)
  }
  get noted(): readonly string[] {
    return this.notes
  }

  /**
   * What the filter under test (any version of it) logged in this check's VMs and host daemons,
   * oldest first: the first and the last lines when there were more than the report keeps.
   * Read after dispose(), so what the filter logs as it closes is there.
   */
  filterLogs(): { logs: FilterLogLine[]; dropped: number } {
    const prefix = `${this.subject.vendor}_${this.subject.name}_`
    const lines: (FilterLogLine & { at: number })[] = []
    let dropped = 0
    const take = (where: string, entries: readonly LogEntry[]) => {
      for (const e of entries) {
        if (!e.source.startsWith(prefix)) continue
        lines.push({ at: e.at, t: Math.max(0, e.at - this.startedAt), where, source: e.source, level: e.level, msg: e.msg })
      }
    }
    for (const c of this.clusters) {
      for (const h of c.hosts.values()) {
        take(`daemon@${h.name}`, h.daemonLogs)
        for (const vm of new Set([...h.vmHistory, ...h.vms.values()])) {
          take(vm.name, vm.logs)
          dropped += vm.logsDropped
        }
      }
    }
    lines.sort((a, b) => a.at - b.at)
    let kept = lines
    if (lines.length > MAX_CHECK_LOG_LINES) {
      const head = Math.floor(MAX_CHECK_LOG_LINES / 4)
      kept = [...lines.slice(0, head), ...lines.slice(lines.length - (MAX_CHECK_LOG_LINES - head))]
      dropped += lines.length - kept.length
    }
    return { logs: kept.map(({ at: _at, ...l }) => l), dropped }
  }

  /**
   * A likely cause from the faults the hosts recorded for the filter under test in this check
   * (what it threw, timed out on, or returned that the ABI does not allow), or undefined when it
   * recorded none. Checks that provoke faults on purpose (isolation) say their own cause.
   */
  faultCause(): string | undefined {
    const prefix = `${this.subject.vendor}_${this.subject.name}_`
    const byKind = new Map<string, { n: number; first: string }>()
    for (const c of this.clusters) {
      for (const h of c.hosts.values()) {
        for (const vm of new Set([...h.vmHistory, ...h.vms.values()])) {
          for (const f of vm.faults) {
            if (!f.filter.startsWith(prefix)) continue
            const k = byKind.get(f.kind)
            if (k === undefined) byKind.set(f.kind, { n: 1, first: `${f.io === null ? '' : `${f.io.op} ${f.io.offset}+${f.io.length}: `}${f.message}` })
            else k.n++
          }
        }
      }
    }
    if (byKind.size === 0) return undefined
    const parts = [...byKind].sort((a, b) => b[1].n - a[1].n).map(([kind, k]) => `${k.n} × ${FAULT_WORDS[kind] ?? kind} (first: ${k.first.slice(0, 160)})`)
    return `the host recorded faults of the filter: ${parts.join('; ')}`
  }

  /** Runs every cleanup (each bounded), newest first. */
  async dispose(): Promise<void> {
    while (this.cleanups.length > 0) {
      const fn = this.cleanups.pop()!
      try {
        await Promise.race([Promise.resolve().then(fn), new Promise(res => setTimeout(res, 30_000).unref())])
      } catch {
        // teardown of what a faulty filter left behind must not hide the check's result
      }
    }
  }
}

/** A fault kind as a reader says it. */
const FAULT_WORDS: Record<string, string> = {
  throw: 'threw in a handler', reject: 'rejected in a handler', timeout: 'did not decide in time', violation: 'broke an ABI rule',
  'invalid-decision': 'returned an invalid decision', 'double-completion': 'completed an I/O twice', crash: 'crashed its VM',
  hang: 'hung its VM', oom: 'ran its VM out of memory', open: 'failed open()', close: 'failed close()', event: 'failed a disk event',
}

const CAPS: Record<FilterClass, string> = {
  replication: 'REPLICATION', cache: 'CACHE', encryption: 'ENCRYPTION', datastoreIoControl: 'DATASTOREIOCONTROL',
  inspection: 'INSPECTION', compression: 'COMPRESSION', dataProvider: 'DATAPROVIDER', dataCapture: 'DATACAPTURE',
}

/** Default directory for run files. */
export function defaultWorkDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-run-'))
}
