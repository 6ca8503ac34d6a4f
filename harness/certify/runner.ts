/**
 * A certification run: prepare the package, pick the checks (grep, shard), run them — independent
 * checks in parallel over a piscina pool — and build the report document with its verdict.
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import { Piscina } from 'piscina'
import {
  computeVerdict, countChecks, PROFILES, profileThresholds, SCHEMA_VERSION, type BenchmarkResult, type CertReport, type CheckResult, type ReplicaLagPoint, type ScalingPoint,
} from '../../reports/index.js'
import { BadInput, Cluster, type FilterInfo, type IofError } from '../framework/index.js'
import { defaultWorkDir, type RunOptions } from './context.js'
import { DEFAULT_TIMEOUT_MS, executeCheck, isRequired, type ExecutedCheck } from './execute.js'
import { resolveSandbox, type SandboxInfo, type SandboxMode } from './os-sandbox.js'
import { supervise } from './supervisor.js'
import type { CheckDef } from './check.js'
import { prepareSubject, referenceEntry, type ReferenceName, type SubjectData } from './subject.js'
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
  /** The OS sandbox of the subject process (default `auto`: bubblewrap when it works here). */
  readonly sandbox?: SandboxMode
  /** The whole run's wall-clock bound, in seconds (default 1,800 with `quick`, else 5,400). */
  readonly timeoutS?: number
  /** Each check's bound, teardown included, in seconds (default: the check's own budget + 30 s). */
  readonly checkTimeoutS?: number
  /** Resident memory the subject process may use, in MiB (default 8,192). */
  readonly memoryMiB?: number
  /** Called once the sandbox is known, before any check runs. */
  readonly onSandbox?: (s: SandboxInfo) => void
  /** Called as each check ends (progress). */
  readonly onCheck?: (r: CheckResult, done: number, total: number) => void
}

/** A check's teardown (power-offs, closes, daemon stops) may take this long beyond its run budget. */
const TEARDOWN_GRACE_MS = 30_000

function bad(message: string): IofError {
  return BadInput({ message })
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
 * The checks of the whole catalogue, in catalogue order: the one list of `suites/index.ts`,
 * loaded on first use (the suites are not loaded by commands that run no check).
 */
export async function catalogue(): Promise<CheckDef[]> {
  return [...(await import('../../suites/index.js')).CHECKS]
}

/** A stable split: the k-th check of the full catalogue (sorted by id) goes to shard k mod n. */
export function inShard(id: string, all: readonly CheckDef[], shard: { index: number; count: number }): boolean {
  const sorted = all.map(d => d.id).sort()
  return sorted.indexOf(id) % shard.count === shard.index - 1
}

/** The bundled reference filters' infos (loaded in the subject: describing a module runs its code). */
export async function loadReferences(): Promise<Record<string, FilterInfo>> {
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

/** The package checks that read only the package, never its code: the harness decides them itself. */
const PACKAGE_ONLY = new Set(['package.descriptor', 'package.integrity', 'package.signature', 'package.class-open'])

function positive(name: string, v: number | undefined): void {
  if (v !== undefined && !(Number.isFinite(v) && v > 0)) throw bad(`${name} must be a positive number, got ${v}`)
}

/**
 * Runs a certification and returns its report document (not yet written or signed). Vendor code
 * runs only in the subject process; the package's facts, which checks count, and the verdict are
 * decided here.
 */
export async function certify(o: CertifyOptions): Promise<CertReport> {
  const startedAt = new Date()
  const t0 = performance.now()
  const profileName = o.profile ?? 'default'
  const thresholds = profileThresholds(profileName)
  if (thresholds === undefined) throw bad(`unknown profile "${profileName}" (known: ${Object.keys(PROFILES).join(', ')})`)
  const seed = o.seed ?? 1
  if (!Number.isSafeInteger(seed) || seed < 0) throw bad(`--seed must be a non-negative integer, got ${o.seed}`)
  positive('--timeout', o.timeoutS)
  positive('--check-timeout', o.checkTimeoutS)
  positive('--memory', o.memoryMiB)
  let grep: RegExp | null = null
  if (o.grep !== undefined) {
    try {
      grep = new RegExp(o.grep)
    } catch (e) {
      throw bad(`--grep is not a valid regular expression: ${(e as Error).message}`)
    }
  }
  const quick = o.quick ?? false
  const certified = o.certified ?? false
  const sandbox = resolveSandbox(o.sandbox ?? 'auto', certified)
  o.onSandbox?.(sandbox)
  const timeoutS = o.timeoutS ?? (quick ? 1800 : 5400)
  const deadline = t0 + timeoutS * 1000
  const all = await catalogue()
  const selected = all.filter(d => (grep === null || grep.test(d.id)) && (o.shard === undefined || inShard(d.id, all, o.shard)))
  const workDir = defaultWorkDir()
  try {
    // the harness's own reading of the package: opened (bounded) and verified, no code run
    const facts = await prepareSubject(o.package, workDir, { inspect: false })
    const upgradeFacts = o.upgradeFrom === undefined ? null : await prepareSubject(o.upgradeFrom, workDir, { inspect: false })
    const local: RunOptions = { quick, certified, seed, profileName, thresholds, upgradeFrom: upgradeFacts, references: {}, workDir }
    const base = (def: CheckDef) => ({ id: def.id, suite: def.suite, title: def.title, required: isRequired(def, facts, local) })
    let finished = 0
    const note = (e: ExecutedCheck) => o.onCheck?.(e.result, ++finished, selected.length)
    const executed = new Map<string, ExecutedCheck>()
    for (const def of selected.filter(d => PACKAGE_ONLY.has(d.id))) {
      const e = await executeCheck(def, facts, local)
      executed.set(def.id, e)
      note(e)
    }
    const checkRunMs = o.checkTimeoutS === undefined ? undefined : Math.max(1000, o.checkTimeoutS * 1000 - Math.min(TEARDOWN_GRACE_MS, o.checkTimeoutS * 250))
    const run = await supervise({
      sandbox,
      package: o.package,
      upgradeFrom: o.upgradeFrom ?? null,
      checks: selected.filter(d => !PACKAGE_ONLY.has(d.id)),
      task: { quick, certified, seed, profileName, ...(o.concurrency !== undefined ? { concurrency: o.concurrency } : {}), ...(checkRunMs !== undefined ? { checkRunMs } : {}) },
      boundMs: def => (o.checkTimeoutS !== undefined ? o.checkTimeoutS * 1000 : (def.timeoutMs ?? DEFAULT_TIMEOUT_MS) + TEARDOWN_GRACE_MS),
      deadline,
      memoryCapBytes: (o.memoryMiB ?? 8192) * 2 ** 20,
      workDir,
      base,
      onCheck: note,
    })
    for (const [id, e] of run.executed) executed.set(id, e)
    const ordered = selected.map(d => executed.get(d.id)!)
    const checks = ordered.map(e => e.result)
    const { verdict, reasons } = computeVerdict(checks, { certified })
    const benchmarks: BenchmarkResult[] = ordered.flatMap(e => e.artifacts?.benchmarks ?? [])
    const replicaLag: ReplicaLagPoint[] = ordered.flatMap(e => e.artifacts?.replicaLag ?? [])
    const scaling: ScalingPoint[] = ordered.flatMap(e => e.artifacts?.scaling ?? [])
    const doc: CertReport = {
      schemaVersion: SCHEMA_VERSION,
      tool: { name: TOOL_NAME, version: TOOL_VERSION },
      filter: { id: facts.id, name: facts.name, vendor: facts.vendor, version: facts.version, class: facts.cls, packageSha256: facts.packageSha256 },
      profile: { name: profileName, thresholds: { ...thresholds } },
      seed,
      startedAt: startedAt.toISOString(),
      durationMs: Math.round(performance.now() - t0),
      environment: {
        node: process.version,
        os: `${os.type()} ${os.release()} ${os.arch()}`,
        cpus: os.cpus().length,
        sandbox: { kind: sandbox.kind, layers: [...sandbox.layers], ...(sandbox.version ? { version: sandbox.version } : {}), ...(sandbox.reason ? { reason: sandbox.reason } : {}), ...(run.incidents.length > 0 ? { incidents: run.incidents.map(s => s.slice(0, 1000)) } : {}) },
      },
      verdict,
      reasons,
      package: { acceptanceLevel: facts.acceptanceLevel, signed: facts.signed, ...(facts.keyFingerprint ? { keyFingerprint: facts.keyFingerprint } : {}) },
      options: {
        quick,
        certified,
        ...(o.grep !== undefined ? { grep: o.grep } : {}),
        ...(o.shard ? { shard: o.shard } : {}),
        timeoutS,
        ...(o.checkTimeoutS !== undefined ? { checkTimeoutS: o.checkTimeoutS } : {}),
      },
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

/** How a subject runs its checks and tells of them. */
export interface RunChecksOptions {
  readonly concurrency?: number
  readonly onStart?: (id: string) => void
  readonly onCheck?: (e: ExecutedCheck) => void
}

/** Runs checks in this process: independent ones over a piscina pool, benchmarks one at a time after. */
export async function runChecks(selected: readonly CheckDef[], subject: SubjectData, options: RunOptions, o: RunChecksOptions = {}): Promise<ExecutedCheck[]> {
  const concurrency = Math.max(1, o.concurrency ?? Math.min(2, os.availableParallelism()))
  const results: ExecutedCheck[] = new Array(selected.length)
  const note = (i: number, r: ExecutedCheck) => {
    results[i] = r
    o.onCheck?.(r)
  }
  const local = async (i: number, def: CheckDef) => {
    o.onStart?.(def.id)
    note(i, await executeCheck(def, subject, options))
  }
  if (concurrency === 1) {
    for (const [i, def] of selected.entries()) await local(i, def)
    return results
  }
  const pool = new Piscina({ filename: new URL('./pool-worker.js', import.meta.url).href, minThreads: concurrency, maxThreads: concurrency, idleTimeout: 1000 })
  try {
    await Promise.all(
      selected.map(async (def, i) => {
        if (def.exclusive) return
        try {
          o.onStart?.(def.id)
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
  for (const [i, def] of selected.entries()) if (def.exclusive) await local(i, def)
  return results
}
