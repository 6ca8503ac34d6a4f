/**
 * A certification run: prepare the package, pick the checks (grep, shard), run them — independent
 * checks in parallel over a piscina pool — and build the report document with its verdict.
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import { Piscina } from 'piscina'
import type { BenchmarkResult, CertReport, CheckResult, ReplicaLagPoint, ScalingPoint } from '../../reports/document.js'
import { SCHEMA_VERSION } from '../../reports/document.js'
import { computeVerdict, countChecks } from '../../reports/verdict.js'
import { profileThresholds, PROFILES } from '../../reports/profiles.js'
import { Cluster } from '../framework/cluster.js'
import { IofError } from '../framework/errors.js'
import type { FilterInfo } from '../framework/inspect.js'
import { defaultWorkDir, type RunOptions } from './context.js'
import { executeCheck, type ExecutedCheck } from './execute.js'
import { registry, type CheckDef } from './registry.js'
import { prepareSubject, referenceEntry, type ReferenceName, type SubjectData } from './subject.js'
import { loadSuites } from './suites.js'
import { CATALOGUE } from './catalogue.js'
import { TOOL_NAME, TOOL_VERSION } from './version.js'

/** Options of `iofcert certify`, resolved once. */
export interface CertifyOptions {
  readonly package: string
  readonly upgradeFrom?: string
  readonly profile?: string
  readonly seed?: number
  readonly quick?: boolean
  readonly certified?: boolean
  readonly grep?: string
  readonly shard?: { readonly index: number; readonly count: number }
  /** Checks run at once (default: 2, or 1 on a single core). */
  readonly concurrency?: number
  /** Called as each check ends (progress). */
  readonly onCheck?: (r: CheckResult, done: number, total: number) => void
}

function bad(message: string): IofError {
  return new IofError('BadInput', message, {}, { exitCode: 2 })
}

/** Parses `i/n` (1-based). */
export function parseShard(s: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(s)
  const index = m ? Number(m[1]) : NaN
  const count = m ? Number(m[2]) : NaN
  if (!m || count < 1 || index < 1 || index > count) throw bad(`--shard must be i/n with 1 ≤ i ≤ n, got "${s}"`)
  return { index, count }
}

/**
 * The checks of the whole catalogue, in catalogue order. An id of the public catalogue that no
 * suite implements is still run — as an `errored` check — so every report lists the full catalogue
 * and such a run can never be `ready`.
 */
export async function catalogue(): Promise<CheckDef[]> {
  await loadSuites()
  const defs = CATALOGUE.map(({ id, title }) => registry.get(id) ?? notImplemented(id, title))
  const extra = registry.all().filter(d => !CATALOGUE.some(c => c.id === d.id))
  return [...defs, ...extra]
}

function notImplemented(id: string, title: string): CheckDef {
  return {
    id,
    suite: id.split('.')[0]!,
    title: title.charAt(0).toUpperCase() + title.slice(1),
    required: true,
    classes: 'all',
    needsInstall: false,
    run: async () => ({ status: 'errored', message: 'not implemented in this version of the harness' }),
  }
}

/** A stable split: the k-th check of the full catalogue (sorted by id) goes to shard k mod n. */
export function inShard(id: string, all: readonly CheckDef[], shard: { index: number; count: number }): boolean {
  const sorted = all.map(d => d.id).sort()
  return sorted.indexOf(id) % shard.count === shard.index - 1
}

async function loadReferences(): Promise<Record<string, FilterInfo>> {
  // the loader cluster only describes modules; it has no hosts and starts no workers but the loader
  const c = await Cluster.create({})
  try {
    const out: Record<string, FilterInfo> = {}
    for (const name of ['passthrough', 'cache', 'cdp'] as ReferenceName[]) {
      if (fs.existsSync(referenceEntry(name))) out[name] = await c.describeModule(referenceEntry(name))
    }
    return out
  } finally {
    await c.shutdown({ remove: true })
  }
}

/** Runs a certification and returns its report document (not yet written or signed). */
export async function certify(o: CertifyOptions): Promise<CertReport> {
  const startedAt = new Date()
  const t0 = performance.now()
  const profileName = o.profile ?? 'default'
  const thresholds = profileThresholds(profileName)
  if (thresholds === undefined) throw bad(`unknown profile "${profileName}" (known: ${Object.keys(PROFILES).join(', ')})`)
  const seed = o.seed ?? 1
  if (!Number.isSafeInteger(seed) || seed < 0) throw bad(`--seed must be a non-negative integer, got ${o.seed}`)
  let grep: RegExp | null = null
  if (o.grep !== undefined) {
    try {
      grep = new RegExp(o.grep)
    } catch (e) {
      throw bad(`--grep is not a valid regular expression: ${(e as Error).message}`)
    }
  }
  const all = await catalogue()
  const selected = all.filter(d => (grep === null || grep.test(d.id)) && (o.shard === undefined || inShard(d.id, all, o.shard)))
  const workDir = defaultWorkDir()
  try {
    const subject = await prepareSubject(o.package, workDir)
    const upgradeFrom = o.upgradeFrom === undefined ? null : await prepareSubject(o.upgradeFrom, workDir)
    const options: RunOptions = {
      quick: o.quick ?? false,
      certified: o.certified ?? false,
      seed,
      profileName,
      thresholds,
      upgradeFrom,
      references: await loadReferences(),
      workDir,
    }
    const executed = await runChecks(selected, subject, options, o)
    const checks = executed.map(e => e.result)
    const { verdict, reasons } = computeVerdict(checks, { certified: options.certified })
    const benchmarks: BenchmarkResult[] = executed.flatMap(e => e.artifacts?.benchmarks ?? [])
    const replicaLag: ReplicaLagPoint[] = executed.flatMap(e => e.artifacts?.replicaLag ?? [])
    const scaling: ScalingPoint[] = executed.flatMap(e => e.artifacts?.scaling ?? [])
    const doc: CertReport = {
      schemaVersion: SCHEMA_VERSION,
      tool: { name: TOOL_NAME, version: TOOL_VERSION },
      filter: { id: subject.id, name: subject.name, vendor: subject.vendor, version: subject.version, class: subject.cls, packageSha256: subject.packageSha256 },
      profile: { name: profileName, thresholds: { ...thresholds } },
      seed,
      startedAt: startedAt.toISOString(),
      durationMs: Math.round(performance.now() - t0),
      environment: { node: process.version, os: `${os.type()} ${os.release()} ${os.arch()}`, cpus: os.cpus().length },
      verdict,
      reasons,
      package: { acceptanceLevel: subject.acceptanceLevel, signed: subject.signed, ...(subject.keyFingerprint ? { keyFingerprint: subject.keyFingerprint } : {}) },
      options: { quick: options.quick, certified: options.certified, ...(o.grep !== undefined ? { grep: o.grep } : {}), ...(o.shard ? { shard: o.shard } : {}) },
      counts: countChecks(checks),
      checks,
      benchmarks,
      ...(replicaLag.length > 0 ? { replicaLag } : {}),
      ...(scaling.length > 0 ? { scaling } : {}),
    }
    return doc
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true })
  }
}

/** Task sent to a pool worker. */
export interface CheckTask {
  readonly id: string
  readonly subject: SubjectData
  readonly options: RunOptions
}

async function runChecks(selected: CheckDef[], subject: SubjectData, options: RunOptions, o: CertifyOptions): Promise<ExecutedCheck[]> {
  const concurrency = Math.max(1, o.concurrency ?? Math.min(2, os.availableParallelism()))
  const results: ExecutedCheck[] = new Array(selected.length)
  let finished = 0
  const note = (i: number, r: ExecutedCheck) => {
    results[i] = r
    o.onCheck?.(r.result, ++finished, selected.length)
  }
  // checks that do not need the filter running are cheap: run them here, the rest in the pool
  if (concurrency === 1) {
    for (const [i, def] of selected.entries()) note(i, await executeCheck(def, subject, options))
    return results
  }
  const pool = new Piscina({ filename: new URL('./pool-worker.js', import.meta.url).href, minThreads: concurrency, maxThreads: concurrency, idleTimeout: 1000 })
  try {
    await Promise.all(
      selected.map(async (def, i) => {
        if (def.exclusive) return
        try {
          note(i, (await pool.run({ id: def.id, subject, options } satisfies CheckTask)) as ExecutedCheck)
        } catch (e) {
          // the pool worker itself died: that is the harness's fault, never the filter's
          note(i, {
            result: { id: def.id, suite: def.suite, title: def.title, required: def.required === true, status: 'errored', durationMs: 0, message: `the check's worker failed: ${(e as Error).message}` },
          })
        }
      }),
    )
  } finally {
    await pool.destroy()
  }
  // benchmarks measure the filter, not the other checks: they run one at a time, after the rest
  for (const [i, def] of selected.entries()) if (def.exclusive) note(i, await executeCheck(def, subject, options))
  return results
}
