/**
 * performance.*: the filter against the no-filter baseline and the bundled reference filter of its
 * class, on the profile's standard device (file-backed images), judged on evidence.
 *
 * Each side — no filter, the reference filter, the filter — is built once per check and kept warm
 * (`WarmSide`, its disk images written through before anything is measured). A workload is then
 * measured in rounds: in each round every side runs one short slice, in a random order, so drift
 * and interference from elsewhere on the machine fall on every side alike, and the slices of one
 * round are compared with each other. After each slice the check waits for the side's leftover
 * work (a replication daemon still shipping) to end; at saturation that time counts in the slice's
 * rate. At a few scheduled rounds (the looks) the check computes an interval of what it judges:
 *
 * - `performance.iops`: the ratio filter / reference IOPS, the Hodges–Lehmann estimate of the
 *   per-round log ratios with its exact signed-rank interval;
 * - `performance.latency`: the filter's p99 minus its limit (baseline p99 × factor + add), paired by
 *   round: the Hodges–Lehmann estimate of the per-round excesses (each slice's p99 from its
 *   histogram) with its exact signed-rank interval. The report also gives each side's p99 over
 *   all its slices (merged histograms) with a bootstrap interval over slices.
 *
 * Each look's interval is at the confidence that keeps 95 % over all the looks (Bonferroni). A
 * workload passes at the first look whose interval lies wholly on the right side of the bound and
 * fails at the first whose interval lies wholly on the wrong side; while it straddles the bound,
 * more rounds are taken, up to a budget. An interval still across the bound when the budget is
 * spent passes, marked `marginal`, with its interval: a verdict is never taken on noise. Each check
 * also measures the machine's noise (how much slices of one side differ) and says when it is too
 * high to resolve the bound. These checks run alone, after the others.
 */
import { summarizeHistogram, type BenchmarkJudgement, type BenchmarkResult, type BenchmarkSide } from '../reports/index.js'
import {
  bootstrapInterval, HistogramSlices, jobSlice, jobSliceStats, LatencyHistogram, mad, median, normalQuantile, pacedSliceStats, perLookConfidence,
  SeededRandom, sequential, signedRankInterval, STANDARD_WORKLOADS, WarmSide, type GeneratorOptions, type Interval, type JobSlice, type Judgement,
  type PacedOptions, type PacedResult, type Placement, type SideSpec, type SideStats,
} from '../harness/bench/index.js'
import { check, type CheckDef, type CheckOutcome } from '../harness/certify/check.js'
import type { CheckContext } from '../harness/certify/context.js'
import { referenceFor } from '../harness/certify/subject.js'

const MiB = 1 << 20

/** The confidence of every interval the checks judge on. */
const CONFIDENCE = 0.95

/**
 * How much each check samples. A round is one slice of every side. The interval is looked at after
 * the rounds of `looks` (the last is the budget), each look at the confidence that keeps 95 % over
 * all of them, and at most `budgetMs` are spent on the whole check (shared out over the workloads
 * still to measure; when a workload's share runs out, its last look is taken then).
 */
interface SamplingPlan {
  readonly capacity: number
  /** Slice length, ms (saturation: the longest; see sliceFor()). */
  readonly sliceMs: number
  /** Saturation: what a slice with its side's drain should take, ms, and the shortest slice. */
  readonly costMs?: number
  readonly minSliceMs?: number
  /** Unmeasured slices of each side before a workload's rounds. */
  readonly warmSlices: number
  readonly looks: readonly number[]
  readonly budgetMs: number
}

const PLANS: Readonly<Record<'quick' | 'full', { iops: SamplingPlan; latency: SamplingPlan; scaling: { capacity: number; sliceMs: number; slices: number } }>> = {
  quick: {
    iops: { capacity: 256 * MiB, sliceMs: 60, costMs: 100, minSliceMs: 5, warmSlices: 1, looks: [8, 14], budgetMs: 14_000 },
    latency: { capacity: 128 * MiB, sliceMs: 100, warmSlices: 1, looks: [10, 16], budgetMs: 14_000 },
    scaling: { capacity: 64 * MiB, sliceMs: 60, slices: 3 },
  },
  full: {
    iops: { capacity: 512 * MiB, sliceMs: 200, costMs: 300, minSliceMs: 25, warmSlices: 2, looks: [8, 16, 32], budgetMs: 60_000 },
    latency: { capacity: 256 * MiB, sliceMs: 250, warmSlices: 1, looks: [12, 24, 40], budgetMs: 60_000 },
    scaling: { capacity: 128 * MiB, sliceMs: 150, slices: 5 },
  },
}

/** The longest a side's work after a slice is waited for (and charged to it). */
const DRAIN_MAX_MS = 5000

const r1 = (x: number) => Math.round(x * 10) / 10
const r3 = (x: number) => Math.round(x * 1000) / 1000
const us = (ns: number) => Math.round(ns / 100) / 10
/** A finite number as is, an infinite interval end as null (JSON has no infinity). */
const fin = (x: number) => (Number.isFinite(x) ? x : null)
/** A side's interval, when it is finite. */
const range = (i: Interval) => (Number.isFinite(i.low) && Number.isFinite(i.high) ? { low: Math.round(i.low), high: Math.round(i.high) } : undefined)

function toSide(s: SideStats, extra: Partial<BenchmarkSide> = {}): BenchmarkSide {
  const h = s.latency
  const histogram = { bucketNs: h.bucketNs, counts: h.counts, sumNs: h.sumNs, minNs: h.minNs, maxNs: h.maxNs }
  return { iops: Math.round(s.iops), mbps: Math.round(s.mbps * 100) / 100, latencyNs: summarizeHistogram(histogram), histogram, runtimeMs: Math.round(s.runtimeMs), ...extra }
}

function overhead(base: BenchmarkSide, f: BenchmarkSide): { iopsPct: number; p99Pct: number } {
  return { iopsPct: r1(base.iops > 0 ? ((base.iops - f.iops) / base.iops) * 100 : 0), p99Pct: r1(base.latencyNs.p99 > 0 ? ((f.latencyNs.p99 - base.latencyNs.p99) / base.latencyNs.p99) * 100 : 0) }
}

function sides(ctx: CheckContext, withReference: boolean): SideSpec[] {
  const out: SideSpec[] = [{ label: 'baseline', install: [], rules: [] }]
  if (withReference) {
    const ref = ctx.reference(referenceFor(ctx.cls))
    out.push({ label: 'reference', install: [ref], rules: [ctx.rule({ rpoSeconds: 15 }, ref)] })
  }
  out.push({ label: 'filtered', install: [ctx.info], rules: [ctx.rule({ rpoSeconds: 15 })] })
  return out
}

/** The longest a side's own work after it was built (a replication filter's first copy) is waited for. */
const SETTLE_MAX_MS = 60_000

/** How long each side took to settle after it was built (see WarmSide.settle), for the evidence. */
type Settled = Record<string, { ms: number; capped?: true }>

/**
 * Builds the sides (one after another: each is timed on its own) and closes them when the check
 * ends; then waits for every side's own work after its build (a replication filter's first copy of
 * its disk to the site) to end, all at once, before anything is measured: that work would fall into
 * the slices of whichever side runs beside it, and more on the sides built last.
 */
async function openSides(ctx: CheckContext, specs: readonly SideSpec[], p: Placement): Promise<{ warm: WarmSide[]; settled: Settled }> {
  const warm: WarmSide[] = []
  for (const s of specs) {
    const side = await WarmSide.open(s, p)
    ctx.defer(() => side.close())
    warm.push(side)
  }
  const done = await Promise.all(warm.map(w => w.settle(SETTLE_MAX_MS)))
  const settled: Settled = {}
  for (const [i, d] of done.entries()) settled[specs[i]!.label] = { ms: Math.round(d.drainMs), ...(d.capped ? { capped: true as const } : {}) }
  const capped = done.flatMap((d, i) => (d.capped ? [specs[i]!.label] : []))
  if (capped.length > 0) ctx.note(`the ${capped.join(' and ')} side${capped.length > 1 ? 's were' : ' was'} still working ${SETTLE_MAX_MS / 1000} s after being built; measured anyway`)
  return { warm, settled }
}

/** The slice-to-slice spread of positive values, % (1.4826 × the MAD of their logs: a robust relative sd). */
function spreadPct(values: readonly number[]): number {
  return r1(mad(values.map(v => Math.log(Math.max(v, 1e-9)))) * 100)
}

/** The outcome of a workload's sequential measurement, as reports show it. */
function outcomeOf(j: Judgement): BenchmarkJudgement['outcome'] {
  return j === 'undecided' ? 'marginal' : j
}

/**
 * The slice length of a saturation workload, from its warm-up slices: the longest the plan allows,
 * shortened when a side's drain after its slice (a replication filter shipping what it was written)
 * would make a slice take longer than `costMs` — the rate of a slice is over its time and its drain
 * (see JobSlice), so a shorter slice measures the same rate in less time. Every side of the
 * workload runs slices of this one length.
 */
function sliceFor(plan: SamplingPlan, warm: readonly JobSlice[]): number {
  const rho = Math.max(0, ...warm.map(s => (s.runtimeMs > 0 ? s.drainMs / s.runtimeMs : 0)))
  const cost = plan.costMs ?? plan.sliceMs
  return Math.round(Math.min(plan.sliceMs, Math.max(plan.minSliceMs ?? plan.sliceMs, cost / (1 + rho))))
}

/** Shares the check's remaining time budget out over the workloads still to measure. */
function deadlineFor(t0: number, budgetMs: number, left: number): number {
  const now = performance.now()
  return now + Math.max(0, t0 + budgetMs - now) / Math.max(1, left)
}

/** What a check says about the machine's noise, for its evidence and the report's environment. */
interface NoiseFinding {
  /** Median over workloads of the slice-to-slice spread of one side, %. */
  readonly spreadPct: number
  /** Whether the budget can resolve the bound at this noise, for a filter as fast as the reference (iops) or the baseline (latency). */
  readonly resolvable: boolean
  readonly note: string
}

/**
 * What a check found over its workloads: the benchmarks for the report, one evidence row and one
 * outcome per workload, and from them the check's outcome (failed when any workload failed,
 * marginal when none failed and one was marginal).
 */
class Findings {
  readonly benchmarks: BenchmarkResult[] = []
  readonly rows: Record<string, unknown>[] = []
  private readonly failures: string[] = []
  private readonly marginals: string[] = []
  private readonly summaries: string[] = []

  /** One workload: its outcome (or the I/O errors that failed it), what it measured, and its summary when it passed. */
  add(workload: string, outcome: BenchmarkJudgement['outcome'], errored: { errors: number; firstError: string | null } | undefined, text: { fail: string; marginal: string; summary: string }): void {
    if (errored !== undefined) this.failures.push(`${workload}: ${errored.errors} I/O errors (${errored.firstError})`)
    else if (outcome === 'fail') this.failures.push(`${workload}: ${text.fail}`)
    else if (outcome === 'marginal') this.marginals.push(`${workload}: ${text.marginal}`)
    this.summaries.push(`${workload} ${text.summary}`)
  }

  get marginal(): boolean {
    return this.failures.length === 0 && this.marginals.length > 0
  }

  /** The check's outcome; `noise` is appended to a marginal pass when the machine was too noisy to resolve the bound. */
  outcome(evidence: Record<string, unknown>, noise: NoiseFinding, text: { failed: string; passed: string }): CheckOutcome {
    const artifacts = { benchmarks: this.benchmarks }
    if (this.failures.length > 0) return { status: 'failed', message: `${text.failed}${this.failures.join('; ')}`, evidence, artifacts }
    if (this.marginals.length > 0) return { status: 'passed', marginal: true, message: `marginal (passes; the evidence cannot tell): ${this.marginals.join('; ')}${noise.resolvable ? '' : `. ${noise.note}`}`, evidence, artifacts }
    return { status: 'passed', message: `${text.passed}${this.summaries.join(', ')}`, evidence, artifacts }
  }
}

// ---------------------------------------------------------------------------------------------
// performance.iops

const iopsCheck = check({ id: 'performance.iops', title: 'At saturation each standard workload reaches the IOPS bound against the reference filter of its class', required: true, classes: 'all', timeoutMs: 300_000, exclusive: true }, async ctx => {
  const plan = PLANS[ctx.quick ? 'quick' : 'full'].iops
  const min = ctx.thresholds.iopsRatioMin
  const specs = sides(ctx, true)
  const [BASE, REF, FILT] = [0, 1, 2] as const
  const t0 = performance.now()
  const { warm, settled } = await openSides(ctx, specs, { device: 'file', vms: 1, capacity: plan.capacity, dir: ctx.options.workDir })
  const setupMs = performance.now() - t0
  const order = new SeededRandom(ctx.rng.u32())
  const found = new Findings()
  const spreads: number[] = []
  const pairedSpreads: number[] = []
  let waitedMs = 0
  const tMeasure = performance.now()
  for (const [wi, w] of STANDARD_WORKLOADS.entries()) {
    const seed = ctx.rng.u32()
    // every side of a round runs the same offsets (the same seed); each round new ones
    let sliceMs = Math.min(plan.sliceMs, 30)
    const job = (slice: number) => (vm: number): GeneratorOptions => ({
      rw: w.rw, bs: w.bs, ...(w.rwmixread !== undefined ? { rwmixread: w.rwmixread } : {}), iodepth: 32, capacity: plan.capacity, size: plan.capacity,
      runtimeMs: sliceMs, timeBased: true, rampMs: 0, norandommap: true, seed: (seed + slice * 7919 + vm * 104_729) >>> 0,
    })
    const slices: JobSlice[][] = specs.map(() => [])
    // a slice lasts until its side is idle again: the rate is what the side sustains with its
    // own background work done, and none of that work falls into the next side's slice
    const run = async (i: number, slice: number): Promise<JobSlice> => {
      const results = await warm[i]!.job(job(slice))
      const d = await warm[i]!.drain(DRAIN_MAX_MS)
      waitedMs += d.waitedMs
      return jobSlice(results, d.drainMs)
    }
    const deadline = deadlineFor(tMeasure, plan.budgetMs, STANDARD_WORKLOADS.length - wi)
    // warm-up, short (more before the first workload: the code of every side is still cold); it
    // also tells how long the sides' drains are, and so the slice length
    const warmed: JobSlice[] = []
    for (let k = 0; k < plan.warmSlices + (wi === 0 ? 2 : 0); k++) for (const i of order.shuffle([BASE, REF, FILT])) warmed.push(await run(i, 100_000 + k))
    sliceMs = sliceFor(plan, warmed)
    let roundMs = 0
    const logRatios = () => slices[FILT]!.map((f, k) => Math.log(Math.max(f.iops, 1) / Math.max(slices[REF]![k]!.iops, 1)))
    const evaluate = (): Interval => {
      const i = signedRankInterval(logRatios(), perLookConfidence(CONFIDENCE, plan.looks.length))
      return { estimate: Math.exp(i.estimate), low: Math.exp(i.low), high: Math.exp(i.high), confidence: i.confidence }
    }
    const seq = await sequential({
      looks: plan.looks,
      round: async r => {
        const t = performance.now()
        for (const i of order.shuffle([BASE, REF, FILT])) slices[i]!.push(await run(i, r))
        roundMs = performance.now() - t
      },
      evaluate,
      bound: min,
      must: 'above',
      // the last look comes before a round that would end past the workload's share of the budget
      stop: () => performance.now() + roundMs >= deadline,
      stopEarly: () => slices[FILT]!.some(s => s.errors > 0),
    })
    const errored = slices[FILT]!.find(s => s.errors > 0)
    const iv = seq.interval
    const n = seq.rounds
    const spread = specs.map((_, i) => spreadPct(slices[i]!.map(s => s.iops)))
    const paired = spreadPct(logRatios().map(Math.exp))
    spreads.push(median(spread))
    pairedSpreads.push(paired)
    const sideOf = (i: number) => {
      const iops = slices[i]!.map(s => s.iops)
      const ci = bootstrapInterval(iops.length, idx => Array.from(idx, k => iops[k]!).reduce((a, b) => a + b, 0) / idx.length, { seed: seed + i, resamples: 1000 })
      return toSide(jobSliceStats(specs[i]!.label, slices[i]!), { slices: iops.length, ...(range(ci) ? { iopsInterval: range(ci)! } : {}), spreadPct: spread[i]! })
    }
    const b = sideOf(BASE), r = sideOf(REF), f = sideOf(FILT)
    const outcome = errored !== undefined ? 'fail' : outcomeOf(seq.judgement)
    const judgement: BenchmarkJudgement = { metric: 'iopsRatio', estimate: r3(iv.estimate), low: fin(r3(iv.low)), high: fin(r3(iv.high)), confidence: r3(iv.confidence), bound: min, outcome, slices: n, budget: plan.looks[plan.looks.length - 1]! }
    found.benchmarks.push({ workload: w.name, mode: 'saturation', baseline: b, filtered: f, reference: r, overhead: overhead(b, f), judgement })
    const text = `${iv.estimate.toFixed(2)} of the reference, 95 % interval [${iv.low.toFixed(2)}, ${iv.high.toFixed(2)}] in ${n} slices`
    found.rows.push({ workload: w.name, outcome, ratio: { estimate: judgement.estimate, low: judgement.low, high: judgement.high, confidence: judgement.confidence }, slices: n, sliceMs,
      drainMs: specs.map((_, i) => Math.round(median(slices[i]!.map(x => x.drainMs)))),
      sliceIops: Object.fromEntries(specs.map((sp, i) => [sp.label, slices[i]!.map(x => Math.round(x.iops))])), baselineIops: b.iops, referenceIops: r.iops, filteredIops: f.iops, spreadPct: { baseline: spread[BASE], reference: spread[REF], filtered: spread[FILT], paired }, errors: errored?.errors ?? 0 })
    found.add(w.name, outcome, errored, { fail: `${text}, wholly below the bound ${min}`, marginal: `${text}, across the bound ${min} when the budget was spent`, summary: `${iv.estimate.toFixed(2)} [${iv.low.toFixed(2)}, ${iv.high.toFixed(2)}]` })
  }
  // noise: how much one side's slices differ, and whether the budget resolves the bound at it
  const spreadMed = r1(median(spreads))
  const pairedMed = median(pairedSpreads) / 100
  // the signed-rank interval is ~2 % wider than the normal one for normal noise
  const z = normalQuantile(1 - (1 - perLookConfidence(CONFIDENCE, plan.looks.length)) / 2) * 1.023
  const halfAtBudget = (z * pairedMed) / Math.sqrt(plan.looks[plan.looks.length - 1]!)
  const resolvable = halfAtBudget < Math.log(1 / min)
  const noise: NoiseFinding = {
    spreadPct: spreadMed,
    resolvable,
    note: resolvable
      ? `slices of one side differ by ${spreadMed} % (paired filter/reference ${r1(pairedMed * 100)} %): a ${plan.looks[plan.looks.length - 1]!}-slice budget resolves ±${r1((Math.exp(halfAtBudget) - 1) * 100)} %, enough for the ${min} bound`
      : `too noisy to resolve the ${min} bound: slices of one side differ by ${spreadMed} % (paired ${r1(pairedMed * 100)} %) and ${plan.looks[plan.looks.length - 1]!} slices resolve only ±${r1((Math.exp(halfAtBudget) - 1) * 100)} %; run on a quieter machine (nothing else busy) or a full run (a larger budget)`,
  }
  const evidence = {
    minRatio: min, confidence: CONFIDENCE,
    plan: { maxSliceMs: plan.sliceMs, costMs: plan.costMs, looks: plan.looks, perLookConfidence: r3(perLookConfidence(CONFIDENCE, plan.looks.length)), budgetMs: plan.budgetMs },
    workloads: found.rows,
    noise,
    timing: { setupMs: Math.round(setupMs), settled, drainMs: Math.round(waitedMs), measureMs: Math.round(performance.now() - tMeasure) },
    ...(found.marginal ? { marginal: true } : {}),
  }
  return found.outcome(evidence, noise, { failed: 'below the IOPS bound: ', passed: 'filter / reference IOPS (95 % intervals): ' })
})

// ---------------------------------------------------------------------------------------------
// performance.latency

const latencyCheck = check({ id: 'performance.latency', title: 'At the standard paced load p99 latency stays within the bound over the no-filter baseline', required: true, classes: 'all', timeoutMs: 300_000, exclusive: true }, async ctx => {
  const plan = PLANS[ctx.quick ? 'quick' : 'full'].latency
  const iops = ctx.thresholds.pacedIopsPerVm
  const { latencyP99Factor: factor, latencyP99AddUs: addUs } = ctx.thresholds
  const addNs = addUs * 1000
  const specs = sides(ctx, false)
  const [BASE, FILT] = [0, 1] as const
  const t0 = performance.now()
  const { warm, settled } = await openSides(ctx, specs, { device: 'file', vms: 2, capacity: plan.capacity, dir: ctx.options.workDir })
  const setupMs = performance.now() - t0
  const order = new SeededRandom(ctx.rng.u32())
  const found = new Findings()
  const spreads: number[] = []
  const resolvables: boolean[] = []
  let waitedMs = 0
  const tMeasure = performance.now()
  for (const [wi, w] of STANDARD_WORKLOADS.entries()) {
    const seed = ctx.rng.u32()
    const paced = (slice: number, seconds: number) => (vm: number): PacedOptions => ({
      iops, seconds, rampS: 0, bs: w.bs, readPct: w.rw === 'randread' ? 100 : w.rw === 'randrw' ? (w.rwmixread ?? 50) : 0,
      seed: (seed + slice * 7919 + vm * 104_729) >>> 0, size: plan.capacity, maxInflight: 64, sequential: w.rw === 'write',
    })
    const slices: PacedResult[][][] = specs.map(() => [])
    const hists: LatencyHistogram[][] = specs.map(() => [])
    const run = async (i: number, slice: number, seconds: number): Promise<PacedResult[]> => {
      const results = await warm[i]!.paced(paced(slice, seconds))
      waitedMs += (await warm[i]!.drain(DRAIN_MAX_MS)).waitedMs
      return results
    }
    const deadline = deadlineFor(tMeasure, plan.budgetMs, STANDARD_WORKLOADS.length - wi)
    for (let k = 0; k < plan.warmSlices + (wi === 0 ? 1 : 0); k++) for (const i of order.shuffle([BASE, FILT])) await run(i, 100_000 + k, plan.sliceMs / 1000)
    let roundMs = 0
    let sets: [HistogramSlices, HistogramSlices] | null = null
    const limitOf = (b99: number) => b99 * factor + addNs
    const evaluate = (): Interval => {
      sets = [new HistogramSlices(hists[BASE]!.map(h => h.toJSON())), new HistogramSlices(hists[FILT]!.map(h => h.toJSON()))]
      const [sb, sf] = sets
      // paired by round (a round's two slices met the same machine): each round's excess of the
      // filter's p99 over the limit its baseline slice sets, and the centre of those excesses.
      // Interference that falls on a few slices moves a few rounds, not the estimate; a filter
      // that is slow in every round is slow in every pair.
      return signedRankInterval(Array.from({ length: sb.length }, (_, k) => sf.percentile([k], 99) - limitOf(sb.percentile([k], 99))), perLookConfidence(CONFIDENCE, plan.looks.length))
    }
    const seq = await sequential({
      looks: plan.looks,
      round: async r => {
        const t = performance.now()
        for (const i of order.shuffle([BASE, FILT])) {
          const res = await run(i, r, plan.sliceMs / 1000)
          slices[i]!.push(res)
          const h = new LatencyHistogram()
          for (const v of res) h.merge(v.latency)
          hists[i]!.push(h)
        }
        roundMs = performance.now() - t
      },
      evaluate,
      bound: 0,
      must: 'below',
      stop: () => performance.now() + roundMs >= deadline,
      stopEarly: () => slices[FILT]!.some(s => s.some(v => v.errors > 0)),
    })
    const errored = slices[FILT]!.flat().find(v => v.errors > 0)
    const iv = seq.interval
    const n = seq.rounds
    const [sb, sf] = sets ?? [new HistogramSlices(hists[BASE]!.map(h => h.toJSON())), new HistogramSlices(hists[FILT]!.map(h => h.toJSON()))]
    const p99s = (set: HistogramSlices) => Array.from({ length: set.length }, (_, k) => set.percentile([k], 99))
    const spread = [spreadPct(p99s(sb)), spreadPct(p99s(sf))]
    spreads.push(spread[BASE]!)
    const all = Int32Array.from({ length: sb.length }, (_, k) => k)
    const b99 = sb.percentile(all, 99)
    const f99 = sf.percentile(all, 99)
    const limit = limitOf(b99)
    const ciOf = (set: HistogramSlices, s: number) => bootstrapInterval(set.length, idx => set.percentile(idx, 99), { resamples: 1000, seed: s })
    const bci = ciOf(sb, seed + 1), fci = ciOf(sf, seed + 2)
    const late = slices[FILT]!.flat().reduce((a, v) => a + v.late, 0)
    const b = toSide(pacedSliceStats(specs[BASE]!.label, slices[BASE]!), { slices: sb.length, ...(range(bci) ? { p99IntervalNs: range(bci)! } : {}), spreadPct: spread[BASE]! })
    const f = toSide(pacedSliceStats(specs[FILT]!.label, slices[FILT]!), { slices: sf.length, ...(range(fci) ? { p99IntervalNs: range(fci)! } : {}), spreadPct: spread[FILT]! })
    const outcome = errored !== undefined ? 'fail' : outcomeOf(seq.judgement)
    const judgement: BenchmarkJudgement = { metric: 'p99ExcessNs', estimate: Math.round(iv.estimate), low: fin(Math.round(iv.low)), high: fin(Math.round(iv.high)), confidence: r3(iv.confidence), bound: 0, outcome, slices: n, budget: plan.looks[plan.looks.length - 1]! }
    found.benchmarks.push({ workload: `${w.name}-paced`, mode: 'paced', baseline: b, filtered: f, overhead: overhead(b, f), judgement })
    // resolvable: would a filter exactly as fast as the baseline be told apart from the bound?
    const half = (iv.high - iv.low) / 2
    const halfAtBudget = Number.isFinite(half) ? half * Math.sqrt(n / plan.looks[plan.looks.length - 1]!) : Infinity
    resolvables.push(halfAtBudget < limit - b99)
    found.rows.push({
      workload: w.name, outcome, iopsPerVm: iops, vms: 2, slices: n,
      baselineP99Us: us(b99), filteredP99Us: us(f99), limitUs: us(limit),
      excessUs: { estimate: us(iv.estimate), low: fin(us(iv.low)), high: fin(us(iv.high)), confidence: r3(iv.confidence) },
      spreadPct: { baseline: spread[BASE], filtered: spread[FILT] }, late, errors: errored?.errors ?? 0,
    })
    const text = `p99 ${us(f99)} µs against the limit ${us(limit)} µs (baseline p99 ${us(b99)} µs × ${factor} + ${addUs} µs); excess per round ${iv.estimate >= 0 ? '+' : ''}${us(iv.estimate)} µs, 95 % interval [${us(iv.low)}, ${us(iv.high)}] µs in ${n} slices`
    found.add(w.name, outcome, errored, { fail: `${text}, wholly over the limit`, marginal: `${text}, across the limit when the budget was spent`, summary: `${us(f99)} ≤ ${us(limit)} µs` })
  }
  const spreadMed = r1(median(spreads))
  const resolvable = resolvables.every(Boolean)
  const noise: NoiseFinding = {
    spreadPct: spreadMed,
    resolvable,
    note: resolvable
      ? `the no-filter p99 differs by ${spreadMed} % between slices: the ${plan.looks[plan.looks.length - 1]!}-slice budget resolves the p99 bound`
      : `too noisy to resolve the p99 bound on ${resolvables.filter(x => !x).length} of ${resolvables.length} workloads: the no-filter p99 differs by ${spreadMed} % between slices; run on a quieter machine (nothing else busy) or a full run (a larger budget)`,
  }
  const evidence = {
    confidence: CONFIDENCE, factor, addUs,
    plan: { sliceMs: plan.sliceMs, looks: plan.looks, perLookConfidence: r3(perLookConfidence(CONFIDENCE, plan.looks.length)), budgetMs: plan.budgetMs },
    workloads: found.rows,
    noise,
    timing: { setupMs: Math.round(setupMs), settled, drainMs: Math.round(waitedMs), measureMs: Math.round(performance.now() - tMeasure) },
    ...(found.marginal ? { marginal: true } : {}),
  }
  return found.outcome(evidence, noise, { failed: '', passed: 'p99 within the limit (95 % intervals wholly below it): ' })
})

// ---------------------------------------------------------------------------------------------
// performance.scaling

const scalingCheck = check({ id: 'performance.scaling', title: 'Aggregate IOPS with 1, 2 and 4 VMs (the curve is reported)', required: false, classes: 'all', timeoutMs: 300_000, exclusive: true }, async ctx => {
  const plan = PLANS[ctx.quick ? 'quick' : 'full'].scaling
  const seed = ctx.rng.u32()
  const order = new SeededRandom(ctx.rng.u32())
  const t0 = performance.now()
  const { warm: [side], settled } = await openSides(ctx, [{ label: 'filtered', install: [ctx.info], rules: [ctx.rule({ rpoSeconds: 15 })] }], { device: 'file', vms: 4, capacity: plan.capacity, dir: ctx.options.workDir })
  const counts = [1, 2, 4]
  let sliceMs = Math.min(plan.sliceMs, 30)
  const job = (slice: number) => (vm: number): GeneratorOptions => ({
    rw: 'randrw', rwmixread: 70, bs: 4096, iodepth: 32, capacity: plan.capacity, size: plan.capacity, runtimeMs: sliceMs, timeBased: true, rampMs: 0, norandommap: true, seed: (seed + slice * 7919 + vm * 104_729) >>> 0,
  })
  const run = async (vms: number, slice: number) => {
    const results = await side!.job(job(slice), vms)
    return jobSlice(results, (await side!.drain(DRAIN_MAX_MS)).drainMs)
  }
  const setupMs = performance.now() - t0
  sliceMs = sliceFor({ capacity: plan.capacity, sliceMs: plan.sliceMs, costMs: plan.sliceMs * 1.5, minSliceMs: 10, warmSlices: 1, looks: [1], budgetMs: 0 }, [await run(4, 100_000)])
  const measured = new Map<number, number[]>(counts.map(v => [v, []]))
  for (let r = 0; r < plan.slices; r++) {
    for (const vms of order.shuffle([...counts])) {
      const s = await run(vms, r)
      if (s.errors > 0) return { status: 'failed', message: `${s.errors} I/O errors with ${vms} VMs (${s.firstError})`, evidence: { vms } }
      measured.get(vms)!.push(s.iops)
    }
  }
  // the median slice of each VM count, with the spread of its slices
  const scaling = counts.map(vms => ({ vms, iops: Math.round(median(measured.get(vms)!)) }))
  const slices = counts.map(vms => ({ vms, slices: measured.get(vms)!.map(Math.round), spreadPct: spreadPct(measured.get(vms)!) }))
  return { status: 'passed', message: scaling.map(p => `${p.vms} VM${p.vms > 1 ? 's' : ''}: ${p.iops} IOPS`).join(', ') + ` (median of ${plan.slices} slices)`, evidence: { scaling, sliceMs, slices, timing: { setupMs: Math.round(setupMs), settled, measureMs: Math.round(performance.now() - t0 - setupMs) } }, artifacts: { scaling } }
})

/** The suite's checks, in catalogue order. */
export const checks: readonly CheckDef[] = [iopsCheck, latencyCheck, scalingCheck]
