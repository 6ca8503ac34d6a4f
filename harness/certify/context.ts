/**
 * What one check gets: a seeded random source, fresh clusters in temp directories with the filter
 * installed, the conventional policy for it, and a resource tracker that tears everything down
 * in one place — even when the check fails, throws or runs out of time.
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import type { FilterClass } from '../sdk/index.js'
import { Cluster, type ClusterOptions } from '../framework/cluster.js'
import type { FilterInfo } from '../framework/inspect.js'
import type { PolicyRule } from '../framework/policy.js'
import { Rng } from '../framework/rng.js'
import type { ProfileThresholds } from '../../reports/profiles.js'
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

const CAPS: Record<FilterClass, string> = {
  replication: 'REPLICATION', cache: 'CACHE', encryption: 'ENCRYPTION', datastoreIoControl: 'DATASTOREIOCONTROL',
  inspection: 'INSPECTION', compression: 'COMPRESSION', dataProvider: 'DATAPROVIDER', dataCapture: 'DATACAPTURE',
}

/** Default directory for run files. */
export function defaultWorkDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-run-'))
}
