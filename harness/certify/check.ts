/**
 * What a check is: its public description, its run and its outcome. A suite file in `suites/`
 * makes its checks with `check(meta, run)` and exports them; `suites/index.ts` lists the suites,
 * and that one list is the catalogue. The catalogue's ids are a public contract (reports, CI gates
 * and listings key on them).
 */
import type { FilterClass } from '../sdk/index.js'
import type { CheckContext } from './context.js'

/** Whether a check counts for `ready`: always, never, or only in some runs. */
export type Requirement = boolean | 'when-upgrade-from' | 'when-signed-level'

/** A check's public description. */
export interface CheckMeta {
  /** Stable id, `suite.name`. */
  readonly id: string
  readonly title: string
  readonly required: Requirement
  /** Classes it applies to; `all` for every certifiable class. */
  readonly classes: readonly FilterClass[] | 'all'
  /** Budget for one run of the check (ms); past it the check fails as a hang. */
  readonly timeoutMs?: number
  /** Needs the filter installed (skipped when the package is refused). Default true. */
  readonly needsInstall?: boolean
  /** Runs alone, after the others, with nothing competing for the CPUs (benchmarks). */
  readonly exclusive?: boolean
}

/**
 * What a check returns. Failures carry evidence a vendor can act on. A performance check whose
 * interval still straddled its bound when its sampling budget was spent passes with `marginal`.
 */
export type CheckOutcome =
  | { readonly status: 'passed'; readonly message?: string; readonly evidence?: Record<string, unknown>; readonly artifacts?: CheckArtifacts; readonly marginal?: boolean }
  | { readonly status: 'failed'; readonly message: string; readonly evidence?: Record<string, unknown>; readonly artifacts?: CheckArtifacts; readonly cause?: string }
  | { readonly status: 'skipped'; readonly message: string; readonly evidence?: Record<string, unknown> }
  | { readonly status: 'errored'; readonly message: string; readonly evidence?: Record<string, unknown>; readonly cause?: string }

/** Figures a check contributes to the report beside its result. */
export interface CheckArtifacts {
  readonly benchmarks?: import('../../reports/document.js').BenchmarkResult[]
  readonly replicaLag?: import('../../reports/document.js').ReplicaLagPoint[]
  readonly scaling?: import('../../reports/document.js').ScalingPoint[]
}

/** A check's body: runs against the subject through its context. */
export type CheckRun = (ctx: CheckContext) => Promise<CheckOutcome>

/** A check of the catalogue: its description, its suite (the id's first part) and its run. */
export interface CheckDef extends CheckMeta {
  readonly suite: string
  readonly run: CheckRun
}

/** A violation found by a check: thrown from helpers, turned into a `failed` outcome. */
export class CheckFailure extends Error {
  /** What the check's observations point to, when it can tell (the report's `cause`). */
  readonly likelyCause: string | undefined

  constructor(message: string, readonly evidence: Record<string, unknown> = {}, likelyCause?: string) {
    super(message)
    this.name = 'CheckFailure'
    this.likelyCause = likelyCause
  }
}

/** Makes a check (registers nothing: its suite exports it, `suites/index.ts` lists the suite). */
export function check(meta: CheckMeta, run: CheckRun): CheckDef {
  if (!/^[a-z]+\.[a-z-]+$/.test(meta.id)) throw new Error(`check id ${meta.id} is not of the form suite.name`)
  return Object.freeze({ ...meta, suite: meta.id.split('.')[0]!, run })
}

/** Does the check apply to a filter of this class? */
export function appliesTo(def: CheckMeta, cls: FilterClass): boolean {
  return def.classes === 'all' || def.classes.includes(cls)
}
