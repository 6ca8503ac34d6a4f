/**
 * performance.*: the filter against the no-filter baseline and the bundled reference filter of its
 * class, on the profile's standard device (file-backed images), measured side by side in one run
 * with the sides interleaved over repetitions, keeping each side's best repetition (work elsewhere on
 * the machine only slows a side down). These checks run alone, after the others.
 */
import type { BenchmarkResult, BenchmarkSide } from '../reports/document.js'
import { summarizeHistogram } from '../reports/histogram.js'
import { measureJob, measurePaced, STANDARD_WORKLOADS, type SideSpec, type SideStats } from '../harness/bench/engine.js'
import { defineCheck } from '../harness/certify/registry.js'
import type { CheckContext } from '../harness/certify/context.js'
import { referenceFor } from '../harness/certify/subject.js'

const MiB = 1 << 20

function side(s: SideStats): BenchmarkSide {
  const h = s.latency
  const histogram = { bucketNs: h.bucketNs, counts: h.counts, sumNs: h.sumNs, minNs: h.minNs, maxNs: h.maxNs }
  return { iops: Math.round(s.iops), mbps: Math.round(s.mbps * 100) / 100, latencyNs: summarizeHistogram(histogram), histogram, runtimeMs: Math.round(s.runtimeMs) }
}

function overhead(base: BenchmarkSide, f: BenchmarkSide): { iopsPct: number; p99Pct: number } {
  const r = (x: number) => Math.round(x * 10) / 10
  return { iopsPct: r(base.iops > 0 ? ((base.iops - f.iops) / base.iops) * 100 : 0), p99Pct: r(base.latencyNs.p99 > 0 ? ((f.latencyNs.p99 - base.latencyNs.p99) / base.latencyNs.p99) * 100 : 0) }
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

defineCheck({ id: 'performance.iops', title: 'At saturation each standard workload reaches the IOPS bound against the reference filter of its class', required: true, classes: 'all', timeoutMs: 300_000, exclusive: true }, async ctx => {
  const seconds = ctx.quick ? 0.3 : 1.5
  const reps = ctx.quick ? 3 : 4
  const capacity = (ctx.quick ? 256 : 1024) * MiB
  const min = ctx.thresholds.iopsRatioMin
  const benchmarks: BenchmarkResult[] = []
  const shortfalls: string[] = []
  const table: Record<string, unknown>[] = []
  for (const w of STANDARD_WORKLOADS) {
    const seed = ctx.rng.u32()
    // each repetition measures the three sides back to back; the filter is judged on its best
    // ratio to the reference of the same repetition (both met the same machine conditions)
    let best: { b: SideStats; r: SideStats; f: SideStats; ratio: number } | null = null
    const ratios: number[] = []
    for (let rep = 0; rep < reps; rep++) {
      const [b1, r1, f1] = await measureJob(sides(ctx, true), { device: 'file', vms: 1, capacity, dir: ctx.options.workDir }, () => ({
        rw: w.rw, bs: w.bs, ...(w.rwmixread !== undefined ? { rwmixread: w.rwmixread } : {}), iodepth: 32, capacity, size: capacity, runtimeMs: seconds * 1000, timeBased: true, rampMs: 100, norandommap: true, seed,
      }), 1)
      const ratio1 = r1!.iops > 0 ? f1!.iops / r1!.iops : 0
      ratios.push(Math.round(ratio1 * 1000) / 1000)
      if (best === null || ratio1 > best.ratio || f1!.errors > 0) best = { b: b1!, r: r1!, f: f1!, ratio: ratio1 }
      if (f1!.errors > 0) break
    }
    const filt = best!.f
    const b = side(best!.b), r = side(best!.r), f = side(filt)
    benchmarks.push({ workload: w.name, mode: 'saturation', baseline: b, filtered: f, reference: r, overhead: overhead(b, f) })
    const ratio = best!.ratio
    table.push({ workload: w.name, baselineIops: b.iops, referenceIops: r.iops, filteredIops: f.iops, ratioToReference: Math.round(ratio * 1000) / 1000, ratiosPerRepetition: ratios, errors: filt.errors })
    if (filt.errors > 0) shortfalls.push(`${w.name}: ${filt.errors} I/O errors (${filt.firstError})`)
    else if (ratio < min) shortfalls.push(`${w.name}: ${f.iops} IOPS is ${(ratio * 100).toFixed(0)}% of the reference filter's ${r.iops} (needs ≥ ${min * 100}%)`)
  }
  const evidence = { minRatio: min, workloads: table }
  if (shortfalls.length > 0) return { status: 'failed', message: `below the IOPS bound: ${shortfalls.join('; ')}`, evidence, artifacts: { benchmarks } }
  return { status: 'passed', evidence, artifacts: { benchmarks } }
})

defineCheck({ id: 'performance.latency', title: 'At the standard paced load p99 latency stays within the bound over the no-filter baseline', required: true, classes: 'all', timeoutMs: 300_000, exclusive: true }, async ctx => {
  const seconds = ctx.quick ? 0.5 : 2
  const reps = ctx.quick ? 5 : 5
  const capacity = (ctx.quick ? 256 : 1024) * MiB
  const iops = ctx.thresholds.pacedIopsPerVm
  const { latencyP99Factor: factor, latencyP99AddUs: addUs } = ctx.thresholds
  const benchmarks: BenchmarkResult[] = []
  const shortfalls: string[] = []
  const table: Record<string, unknown>[] = []
  for (const w of STANDARD_WORKLOADS) {
    const seed = ctx.rng.u32()
    const [base, filt] = await measurePaced(sides(ctx, false), { device: 'file', vms: 2, capacity, dir: ctx.options.workDir }, vm => ({
      iops, seconds, rampS: ctx.quick ? 0.3 : 0.5, bs: w.bs, readPct: w.rw === 'randread' ? 100 : w.rw === 'randrw' ? (w.rwmixread ?? 50) : 0, seed: seed + vm, size: capacity, maxInflight: 64, sequential: w.rw === 'write',
    }), reps, 'best')
    const b = side(base!), f = side(filt!)
    benchmarks.push({ workload: `${w.name}-paced`, mode: 'paced', baseline: b, filtered: f, overhead: overhead(b, f) })
    const limitNs = b.latencyNs.p99 * factor + addUs * 1000
    table.push({ workload: w.name, iopsPerVm: iops, vms: 2, baselineP99Us: Math.round(b.latencyNs.p99 / 100) / 10, filteredP99Us: Math.round(f.latencyNs.p99 / 100) / 10, limitUs: Math.round(limitNs / 100) / 10, late: filt!.late ?? 0 })
    if (filt!.errors > 0) shortfalls.push(`${w.name}: ${filt!.errors} I/O errors (${filt!.firstError})`)
    else if (f.latencyNs.p99 > limitNs) shortfalls.push(`${w.name}: p99 ${(f.latencyNs.p99 / 1000).toFixed(1)} µs exceeds ${(limitNs / 1000).toFixed(1)} µs (baseline p99 ${(b.latencyNs.p99 / 1000).toFixed(1)} µs × ${factor} + ${addUs} µs)`)
  }
  const evidence = { workloads: table }
  if (shortfalls.length > 0) return { status: 'failed', message: shortfalls.join('; '), evidence, artifacts: { benchmarks } }
  return { status: 'passed', evidence, artifacts: { benchmarks } }
})

defineCheck({ id: 'performance.scaling', title: 'Aggregate IOPS with 1, 2 and 4 VMs (the curve is reported)', required: false, classes: 'all', timeoutMs: 300_000, exclusive: true }, async ctx => {
  const seconds = ctx.quick ? 0.3 : 2
  const capacity = (ctx.quick ? 128 : 512) * MiB
  const scaling: { vms: number; iops: number }[] = []
  const seed = ctx.rng.u32()
  for (const vms of [1, 2, 4]) {
    const [f] = await measureJob([{ label: 'filtered', install: [ctx.info], rules: [ctx.rule({ rpoSeconds: 15 })] }], { device: 'file', vms, capacity, dir: ctx.options.workDir }, vm => ({
      rw: 'randrw', rwmixread: 70, bs: 4096, iodepth: 32, capacity, size: capacity, runtimeMs: seconds * 1000, timeBased: true, norandommap: true, seed: seed + vm,
    }), 1)
    if (f!.errors > 0) return { status: 'failed', message: `${f!.errors} I/O errors with ${vms} VMs (${f!.firstError})`, evidence: { vms, scaling } }
    scaling.push({ vms, iops: Math.round(f!.iops) })
  }
  return { status: 'passed', message: scaling.map(p => `${p.vms} VM${p.vms > 1 ? 's' : ''}: ${p.iops} IOPS`).join(', '), evidence: { scaling }, artifacts: { scaling } }
})
