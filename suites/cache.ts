/**
 * cache.*: what a cache filter owes beyond passing data through — it never serves stale bytes, it
 * holds no more memory than its policy allows, and (not required) it makes hot reads faster.
 */
import { Rng, type GuestIo, type IoResult, type Vm } from '../harness/framework/index.js'
import { check, type CheckDef, CheckFailure } from '../harness/certify/check.js'
import { describeIo, Oracle, verifiedWorkload, verifyRange } from '../harness/certify/workloads.js'
import { IN_WORKER } from '../harness/certify/probes/index.js'
import type { TapCounts } from '../harness/certify/probes/drive-tap.js'
import { CHECK_CACHE_MIB, DISK_BYTES, guestWithDisk, memoryGrowth, MiB, rawSequences, scaled, sharedLayoutWorkload, subjectPolicy, type Guest } from '../harness/certify/datapath.js'

/** Runs guest I/O and fails the check on the first error (data is judged by other checks). */
async function mustRun(g: Guest, ios: readonly GuestIo[], queueDepth: number, what: string): Promise<IoResult[]> {
  const results = await g.vm.runIos(g.disk, ios, queueDepth)
  results.forEach((r, i) => {
    if (!r.ok) throw new CheckFailure(`${what}: guest ${ios[i]!.op} at offset ${ios[i]!.offset} failed with ${r.error}`, { vm: g.vm.name, io: describeIo(ios[i]!), error: r.error, ms: Math.round(r.ms) })
  })
  return results
}

function fillWrites(rng: Rng, from: number, length: number, size: number): GuestIo[] {
  const out: GuestIo[] = []
  for (let pos = from; pos < from + length; pos += size) out.push({ op: 'write', offset: pos, data: rng.fill(new Uint8Array(Math.min(size, from + length - pos))) })
  return out
}

function sweep(from: number, length: number, size: number): GuestIo[] {
  const out: GuestIo[] = []
  for (let pos = from; pos < from + length; pos += size) out.push({ op: 'read', offset: pos, length: Math.min(size, from + length - pos) })
  return out
}

// ---- cache.coherence ----

const coherenceCheck = check({
  id: 'cache.coherence',
  title: 'Overwrites, unmaps and flushes never let a stale read through',
  required: true,
  classes: ['cache'],
}, async ctx => {
  const c = await ctx.cluster()
  const g = await guestWithDisk(c, { vm: 'vm1', policy: subjectPolicy(ctx) })
  const oracle = new Oracle(DISK_BYTES)
  const layout = ctx.rng.fork(1)
  const data = ctx.rng.fork(2)
  const n = scaled(ctx, 1000, 5000)
  const m = scaled(ctx, 500, 2000)
  // a 256 KiB hot set in whole 4 KiB blocks at queue depth 16: reads race overlapping writes and
  // unmaps block for block, and the blocks they fetched are read again while the cache holds them
  const aligned = await sharedLayoutWorkload([{ ...g, oracle, data, label: 'block-aligned hot set' }], layout, { count: n, queueDepth: 16, alignBytes: 4096, maxSectors: 32, hotSetBytes: 256 * 1024, regionLength: 4 * MiB, readRatio: 0.55, unmapRatio: 0.1, flushRatio: 0.03 })
  // the same with unaligned I/O, which splits blocks
  const unaligned = await verifiedWorkload(g.vm, g.disk, oracle, ctx.rng, { count: m, queueDepth: 16, maxSectors: 32, hotSetBytes: 512 * 1024, regionLength: 8 * MiB, readRatio: 0.5, unmapRatio: 0.1, flushRatio: 0.03 })
  // read → overwrite → re-read and read → unmap → re-read over blocks the cache holds
  const seq = await rawSequences(g.vm, g.disk, oracle, ctx.rng, { count: m, lanes: 8, regionStart: 0, regionLength: 4 * MiB, unmaps: true })
  await verifyRange(g.vm, g.disk, oracle, 0, 8 * MiB, 'a read of the hot region after the workload')
  const racyReads = aligned.racyReads + unaligned.racyReads
  return { status: 'passed', message: `${n + m} hot-set I/Os (${racyReads} reads raced an overlapping write or unmap) and ${seq.sequences} read → overwrite/unmap → re-read sequences never returned stale bytes`, evidence: { ios: n + m + seq.ios, racyReads, sequences: seq.sequences } }
})

// ---- cache.bounded ----

/** Fills the disk, sweeps it, then hot/cold reads: the same on every VM it runs on. */
async function hotColdReads(g: Guest, rng: Rng, reads: number): Promise<void> {
  await mustRun(g, fillWrites(rng.fork(1), 0, DISK_BYTES, MiB), 4, 'filling the disk')
  await mustRun(g, sweep(0, DISK_BYTES, MiB), 4, 'reading the whole disk')
  const hot = 8 * MiB
  const ios: GuestIo[] = []
  for (let i = 0; i < reads; i++) {
    const bytes = 4096 * (1 + rng.int(16))
    const span = rng.float() < 0.7 ? hot : DISK_BYTES
    ios.push({ op: 'read', offset: rng.int((span - bytes) / 4096 + 1) * 4096, length: bytes })
  }
  await mustRun(g, ios, 8, 'hot/cold reads')
}

const boundedCheck = check({
  id: 'cache.bounded',
  title: "The VM worker's memory growth over the same workload without the filter stays within 1.25 × cacheMiB + 4 MiB",
  required: true,
  classes: ['cache'],
}, async ctx => {
  const declares = 'cacheMiB' in ((ctx.info.policySchema as { properties?: object } | undefined)?.properties ?? {})
  const cacheMiB = declares ? CHECK_CACHE_MIB : ctx.thresholds.cacheDefaultMiB
  const boundMiB = ctx.thresholds.cacheBoundFactor * cacheMiB + ctx.thresholds.cacheBoundSlackMiB
  const c = await ctx.cluster()
  const base = await guestWithDisk(c, { vm: 'baseline', policy: null })
  const filtered = await guestWithDisk(c, { vm: 'filtered', policy: subjectPolicy(ctx) })
  const reads = scaled(ctx, 1000, 5000)
  const seed = ctx.rng.u32()
  const measure = async (g: Guest) => {
    const before = await g.vm.memory(true)
    // the same seed on both sides: the same writes and reads
    await hotColdReads(g, new Rng(seed), reads)
    const after = await g.vm.memory(true)
    return { growth: memoryGrowth(before, after), before, after }
  }
  const b = await measure(base)
  const f = await measure(filtered)
  const extraMiB = (f.growth - b.growth) / MiB
  const evidence = {
    cacheMiB, cacheMiBFrom: declares ? 'the policy (cacheMiB)' : 'the profile default (the schema has no cacheMiB)',
    boundMiB, growthMiB: round(f.growth / MiB), baselineGrowthMiB: round(b.growth / MiB), extraMiB: round(extraMiB),
    filtered: mem(f.before, f.after), baseline: mem(b.before, b.after), workload: { fillMiB: DISK_BYTES / MiB, sweepMiB: DISK_BYTES / MiB, hotColdReads: reads },
  }
  if (extraMiB > boundMiB) {
    throw new CheckFailure(`with cacheMiB ${cacheMiB} the filter grew the VM worker's memory by ${round(extraMiB)} MiB more than the same workload without it; the bound is ${ctx.thresholds.cacheBoundFactor} × ${cacheMiB} + ${ctx.thresholds.cacheBoundSlackMiB} = ${boundMiB} MiB`, evidence)
  }
  return { status: 'passed', message: `memory growth over the no-filter run: ${round(extraMiB)} MiB (bound ${boundMiB} MiB for cacheMiB ${cacheMiB})`, evidence }
})

function round(x: number): number {
  return Math.round(x * 100) / 100
}

function mem(a: { heapUsed: number; external: number; arrayBuffers: number }, b: { heapUsed: number; external: number; arrayBuffers: number }): Record<string, number> {
  return { heapMiB: round((b.heapUsed - a.heapUsed) / MiB), externalMiB: round((b.external - a.external) / MiB), arrayBuffersMiB: round((b.arrayBuffers - a.arrayBuffers) / MiB) }
}

// ---- cache.benefit ----

const HOT = 4 * MiB
/** The drive's extra latency per read on both sides, so that memory is faster than the drive. */
const READ_DELAY_MS = 1
/** Faster means by at least 10%: within the noise of the drive's own latency is no benefit. */
const BENEFIT_RATIO = 0.9

function hotReads(rng: Rng, n: number): GuestIo[] {
  return Array.from({ length: n }, () => ({ op: 'read' as const, offset: rng.int(HOT / 4096) * 4096, length: 4096 }))
}

async function timed(g: Guest, ios: readonly GuestIo[]): Promise<number> {
  const t0 = performance.now()
  await mustRun(g, ios, 4, 'hot-set reads')
  return performance.now() - t0
}

async function tap(vm: Vm, disk: string, action: 'start' | 'stop'): Promise<TapCounts | null> {
  return vm.runInWorker<TapCounts | null>(disk, IN_WORKER.driveTap, { action })
}

const benefitCheck = check({
  id: 'cache.benefit',
  title: 'Hot-set reads are faster with the filter than without',
  required: false,
  classes: ['cache'],
}, async ctx => {
  const c = await ctx.cluster()
  const base = await guestWithDisk(c, { vm: 'baseline', policy: null })
  const filtered = await guestWithDisk(c, { vm: 'filtered', policy: subjectPolicy(ctx) })
  const data = ctx.rng.u32()
  for (const g of [base, filtered]) {
    await mustRun(g, fillWrites(new Rng(data), 0, HOT, 64 * 1024), 4, 'writing the hot set')
    await g.vm.injectFault(g.disk, { ops: ['read'], delayMs: READ_DELAY_MS })
    // warm-up: every hot block read twice
    await mustRun(g, [...sweep(0, HOT, 64 * 1024), ...sweep(0, HOT, 64 * 1024)], 4, 'warming up')
  }
  const n = scaled(ctx, 1000, 4000)
  const ios = hotReads(ctx.rng.fork(2), n)
  const half = Math.floor(n / 2)
  await tap(filtered.vm, filtered.disk, 'start')
  // halves interleaved, so drift in the machine's load falls on both sides alike
  let baseMs = 0
  let filteredMs = 0
  baseMs += await timed(base, ios.slice(0, half))
  filteredMs += await timed(filtered, ios.slice(0, half))
  baseMs += await timed(base, ios.slice(half))
  filteredMs += await timed(filtered, ios.slice(half))
  const counts = (await tap(filtered.vm, filtered.disk, 'stop'))!
  const completedByFilter = Math.max(0, n - counts.guestReads)
  const evidence = {
    reads: n, hotSetMiB: HOT / MiB, readDelayMs: READ_DELAY_MS, queueDepth: 4,
    baselineMs: Math.round(baseMs), filteredMs: Math.round(filteredMs),
    baselineMeanUs: Math.round((baseMs * 1000) / n), filteredMeanUs: Math.round((filteredMs * 1000) / n),
    completedByFilter, filterReadsBelow: counts.filterReads,
  }
  if (completedByFilter === 0) return { status: 'skipped', message: `the filter completed none of ${n} hot-set reads (each reached the disk): it is not a read cache`, evidence }
  if (filteredMs > BENEFIT_RATIO * baseMs) {
    throw new CheckFailure(`hot-set reads were not faster with the filter: ${Math.round(filteredMs)} ms against ${Math.round(baseMs)} ms without it (at most ${BENEFIT_RATIO} × that counts as faster), for ${n} 4 KiB reads of a ${HOT / MiB} MiB hot set (the filter completed ${completedByFilter} of them itself)`, evidence)
  }
  return { status: 'passed', message: `hot-set reads ${round(baseMs / filteredMs)}× faster with the filter (${Math.round(filteredMs)} ms against ${Math.round(baseMs)} ms; ${completedByFilter} of ${n} completed by the filter)`, evidence }
})

/** The suite's checks, in catalogue order. */
export const checks: readonly CheckDef[] = [coherenceCheck, boundedCheck, benefitCheck]
