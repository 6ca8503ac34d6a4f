/**
 * replication.*: the replica at the recovery site `dr` — write-order fidelity at every instant,
 * equality with the disk once quiesced, the RPO under the standard replication load, and riding
 * out an outage of the site. The site logs every write's arrival (time, offset, length, content
 * hash); the checks match arrivals to the guest's writes by offset and hash.
 */
import { nowMs, type Cluster, type RecoverySite, type Vm } from '../harness/framework/index.js'
import type { CheckContext } from '../harness/certify/context.js'
import { ms, percentile, type PacedRun } from '../harness/certify/paced.js'
import { check, type CheckDef, CheckFailure } from '../harness/certify/check.js'
import { awaitArrivals, awaitReplica, catchUpBoundMs, describeWrite, pacedWrites, readThrough, replayWriteOrder, rpoOf, SiteRecorder, WriteLog, WriteSource, writeLags } from '../harness/certify/replica.js'
import { firstDifference } from '../harness/certify/workloads.js'

const MiB = 1 << 20
const CAPACITY = 64 * MiB

/** One VM with one replicated disk on a fresh one-host cluster. */
interface Rig {
  readonly c: Cluster
  readonly vm: Vm
  readonly disk: string
  readonly site: RecoverySite
  /** Sees what the site is given for the disk. */
  readonly rec: SiteRecorder
  readonly log: WriteLog
  readonly rpoSeconds: number
}

async function oneVm(ctx: CheckContext): Promise<Rig> {
  const c = await ctx.cluster()
  const rule = ctx.rule({ rpoSeconds: 2 })
  c.createPolicy({ name: 'replicated', rules: [rule] })
  const h = c.host('esx1')
  const vm = h.createVm('vm1')
  await h.addDisk('vm1', { id: 'vm1-disk0', capacity: CAPACITY, policy: 'replicated' })
  const site = c.site('dr')!
  const rec = new SiteRecorder(site)
  const log = rec.track('vm1-disk0', CAPACITY)
  await vm.powerOn()
  return { c, vm, disk: 'vm1-disk0', site, rec, log, rpoSeconds: rpoOf(rule) }
}

/** Fails on the first guest write of a run that did not complete successfully. */
function expectWritesOk(run: PacedRun, t0: number, what: string): void {
  const bad = run.ios.find(t => !t.result.ok)
  if (bad === undefined) return
  const r = bad.result as { error: string; ms: number }
  throw new CheckFailure(`${what}: a guest write of ${bad.io.data!.length} bytes at offset ${bad.io.offset} failed with ${r.error} after ${ms(r.ms)} ms`, {
    io: { op: 'write', offset: bad.io.offset, length: bad.io.data!.length },
    error: r.error,
    issuedAtMs: ms(bad.issuedAt - t0),
    failedWrites: run.ios.filter(t => !t.result.ok).length,
    writes: run.ios.length,
  })
}

async function flushOk(vm: Vm, disk: string, what: string): Promise<void> {
  const r = await vm.submit(disk, { op: 'flush', offset: 0, length: 0 })
  if (!r.ok) throw new CheckFailure(`${what}: the guest's flush failed with ${r.error}`, { op: 'flush', error: r.error, ms: ms(r.ms) })
}

/** Evidence on writes that never reached the site, at most five of them. */
function missingEvidence(r: Rig, t0: number): Record<string, unknown> {
  const { missing } = writeLags(r.log, r.rec)
  return { writesCompleted: r.log.writes.filter(w => w.ok).length, arrivals: r.site.arrivals(r.disk).length, writesNeverArrived: missing.length, firstNeverArrived: missing.slice(0, 5).map(w => describeWrite(w, t0)) }
}

/** The disk's bytes over [0, length), checked against what the guest wrote. */
async function diskBytes(vm: Vm, disk: string, model: Uint8Array): Promise<Uint8Array> {
  const bytes = await readThrough(vm, disk, 0, model.length)
  const d = firstDifference(model, bytes)
  if (d !== null) throw new CheckFailure(`the disk itself does not hold what the guest wrote: offset ${d.at} differs (the replica cannot be judged against it)`, { offset: d.at, expected: d.expected, found: d.found })
  return bytes
}

const writeOrderCheck = check(
  { id: 'replication.write-order', title: 'The replica is at every instant a crash-consistent prefix (write-order fidelity)', required: true, classes: ['replication'] },
  async ctx => {
    const r = await oneVm(ctx)
    const log = r.log
    const region = 2 * MiB
    const model = new Uint8Array(region)
    const t0 = nowMs()
    // dependent writes at queue depth 1: each one depends on every write before it
    const qd1 = await pacedWrites(r.vm, r.disk, log, new WriteSource(ctx.rng.fork(1), { regionStart: 0, regionLength: MiB, maxBlocks: 4 }), { rate: Infinity, queueDepth: 1, count: ctx.quick ? 400 : 2000 }, model)
    expectWritesOk(qd1, t0, 'dependent writes at queue depth 1')
    // overlapping writes at depth 16 over a small region: most writes overwrite earlier ones, and
    // the 16 in flight are independent of each other but depend on everything completed before
    const qd16 = await pacedWrites(r.vm, r.disk, log, new WriteSource(ctx.rng.fork(2), { regionStart: 0, regionLength: region, maxBlocks: 8 }), { rate: Infinity, queueDepth: 16, count: ctx.quick ? 1200 : 6000 }, model)
    expectWritesOk(qd16, t0, 'overlapping writes at queue depth 16')
    await flushOk(r.vm, r.disk, 'after the writes')
    const expected = await diskBytes(r.vm, r.disk, model)
    const caught = await awaitReplica(r.site, r.disk, 0, expected, catchUpBoundMs(r.rpoSeconds))
    const arrivals = r.site.arrivals(r.disk)
    const replay = replayWriteOrder(log, r.rec, { t0 })
    if (arrivals.length === 0) {
      throw new CheckFailure(`no write reached the recovery site within ${caught.waitedMs} ms after the guest's flush: write order cannot be judged`, missingEvidence(r, t0))
    }
    if (!caught.caughtUp) ctx.note(`the replica had not caught up after ${caught.waitedMs} ms (replication.consistency judges that); write order held over the ${arrivals.length} arrivals there were`)
    return {
      status: 'passed',
      message: `${replay.arrivals} arrivals replayed in order over ${replay.writes} guest writes (${qd1.ios.length} dependent at QD1, ${qd16.ios.length} overlapping at QD16): the replica was crash-consistent after each`,
      evidence: { arrivals: replay.arrivals, writes: replay.writes, caughtUp: caught.caughtUp, catchUpMs: caught.waitedMs },
    }
  },
)

const consistencyCheck = check(
  { id: 'replication.consistency', title: 'After quiesce the replica equals the disk', required: true, classes: ['replication'] },
  async ctx => {
    const r = await oneVm(ctx)
    const log = r.log
    const region = 16 * MiB
    const model = new Uint8Array(region)
    const t0 = nowMs()
    const rounds = 3
    const perRound = Math.ceil((ctx.quick ? 1200 : 5000) / rounds)
    const source = new WriteSource(ctx.rng.fork(1), { regionStart: 0, regionLength: region, maxBlocks: 16 })
    for (let i = 0; i < rounds; i++) {
      const run = await pacedWrites(r.vm, r.disk, log, source, { rate: Infinity, queueDepth: 8, count: perRound }, model)
      expectWritesOk(run, t0, `round ${i + 1} of the writes`)
      await flushOk(r.vm, r.disk, `after round ${i + 1}`)
    }
    const expected = await diskBytes(r.vm, r.disk, model)
    const bound = catchUpBoundMs(r.rpoSeconds)
    const caught = await awaitReplica(r.site, r.disk, 0, expected, bound)
    if (!caught.caughtUp) {
      const d = caught.difference!
      const holders = log.writes.filter(w => w.ok && w.offset <= d.offset && d.offset < w.offset + w.length)
      const last = holders.at(-1)
      throw new CheckFailure(`${caught.waitedMs} ms after the guest quiesced (flush, no more writes), the replica still differs from the disk at offset ${d.offset}${last ? `, last written by write #${last.seq} (${last.length} bytes at offset ${last.offset}, completed at +${ms(last.completedAt - t0)} ms)` : ''}`, {
        offset: d.offset,
        expected: d.expected,
        found: d.found,
        ...(last ? { lastWriteThere: describeWrite(last, t0) } : {}),
        boundMs: bound,
        rpoSeconds: r.rpoSeconds,
        ...missingEvidence(r, t0),
      })
    }
    return {
      status: 'passed',
      message: `the replica equalled the disk over ${region / MiB} MiB ${caught.waitedMs} ms after the guest quiesced (${log.writes.length} writes, ${caught.arrivals} arrivals)`,
      evidence: { writes: log.writes.length, arrivals: caught.arrivals, catchUpMs: caught.waitedMs, boundMs: bound },
    }
  },
)

const rpoCheck = check(
  { id: 'replication.rpo', title: 'Under the standard replication load the replica lag p99 stays within rpoSeconds', required: true, classes: ['replication'] },
  async ctx => {
    const r = await oneVm(ctx)
    const rpoMs = r.rpoSeconds * 1000
    const log = r.log
    const rate = ctx.thresholds.pacedIopsPerVm
    const durationMs = ctx.quick ? 3000 : 15_000
    // the standard replication load: 4 KiB random writes over the whole disk, queue depth 8, paced
    const run = await pacedWrites(r.vm, r.disk, log, new WriteSource(ctx.rng.fork(1), { regionStart: 0, regionLength: CAPACITY }), { rate, queueDepth: 8, durationMs })
    expectWritesOk(run, run.startedAt, 'the standard replication load')
    await flushOk(r.vm, r.disk, 'after the load')
    const bound = catchUpBoundMs(r.rpoSeconds)
    await awaitArrivals(r.rec, log, bound)
    const { lags, missing } = writeLags(log, r.rec)
    // a write that never arrived has an unbounded lag: it counts against the percentile
    const values = [...lags.map(l => l.lagMs), ...missing.map(() => Infinity)]
    const p99 = percentile(values, 99)
    const p50 = percentile(values, 50)
    const max = values.length > 0 ? Math.max(...values) : NaN
    const replicaLag = lagPoints(lags, run.startedAt, 300)
    const evidence = {
      rpoSeconds: r.rpoSeconds,
      writes: run.ios.length,
      targetIops: rate,
      achievedIops: Math.round(run.achievedRate),
      lagP50Ms: finite(p50),
      lagP99Ms: finite(p99),
      lagMaxMs: finite(max),
      writesNeverArrived: missing.length,
      ...(missing.length > 0 ? { firstNeverArrived: missing.slice(0, 5).map(w => describeWrite(w, run.startedAt)) } : {}),
    }
    if (run.achievedRate < rate * 0.8) ctx.note(`the load reached ${Math.round(run.achievedRate)} of ${rate} IOPS: the path (or this machine) could not keep the pace`)
    if (!(p99 <= rpoMs)) {
      const worst = [...lags].sort((a, b) => b.lagMs - a.lagMs).slice(0, 5)
      return {
        status: 'failed',
        message: `replica lag p99 is ${Number.isFinite(p99) ? `${ms(p99)} ms` : 'unbounded (more than 1% of the writes never reached the site)'}, above the policy's RPO of ${r.rpoSeconds} s (${run.ios.length} writes at ${Math.round(run.achievedRate)} IOPS; p50 ${finite(p50) ?? '∞'} ms)`,
        evidence: { ...evidence, worstLags: worst.map(l => ({ ...describeWrite(l.write, run.startedAt), lagMs: ms(l.lagMs) })) },
        artifacts: { replicaLag },
      }
    }
    return {
      status: 'passed',
      message: `replica lag p99 ${ms(p99)} ms ≤ RPO ${r.rpoSeconds} s over ${run.ios.length} writes at ${Math.round(run.achievedRate)} IOPS (p50 ${ms(p50)} ms, max ${finite(max) ?? '∞'} ms)`,
      evidence,
      artifacts: { replicaLag },
    }
  },
)

/** Lag points for the report's chart: the worst lag in each of at most `buckets` time slices. */
function lagPoints(lags: readonly { write: { completedAt: number }; lagMs: number }[], t0: number, buckets: number): { t: number; lagMs: number }[] {
  if (lags.length === 0) return []
  const span = Math.max(1, Math.max(...lags.map(l => l.write.completedAt - t0)))
  const width = span / buckets
  const worst = new Map<number, { t: number; lagMs: number }>()
  for (const l of lags) {
    const t = l.write.completedAt - t0
    const b = Math.min(buckets - 1, Math.floor(t / width))
    const cur = worst.get(b)
    if (cur === undefined || l.lagMs > cur.lagMs) worst.set(b, { t: Math.round(t), lagMs: ms(l.lagMs) })
  }
  return [...worst.values()].sort((a, b) => a.t - b.t)
}

function finite(v: number): number | null {
  return Number.isFinite(v) ? ms(v) : null
}

const targetOutageCheck = check(
  { id: 'replication.target-outage', title: 'The site is down 5 s then returns: no guest error, the replica catches up and is consistent', required: true, classes: ['replication'], timeoutMs: 180_000 },
  async ctx => {
    const r = await oneVm(ctx)
    const log = r.log
    const region = 8 * MiB
    const model = new Uint8Array(region)
    const beforeMs = ctx.quick ? 1000 : 3000
    const outageMs = 5000
    const afterMs = ctx.quick ? 1000 : 3000
    let downAt = NaN
    let upAt = NaN
    const t0 = nowMs()
    const down = setTimeout(() => {
      r.site.setFault(r.disk, { down: true })
      downAt = nowMs()
    }, beforeMs)
    const up = setTimeout(() => {
      r.site.setFault(r.disk, null)
      upAt = nowMs()
    }, beforeMs + outageMs)
    ctx.defer(() => {
      clearTimeout(down)
      clearTimeout(up)
    })
    const run = await pacedWrites(r.vm, r.disk, log, new WriteSource(ctx.rng.fork(1), { regionStart: 0, regionLength: region, maxBlocks: 4 }), { rate: 500, queueDepth: 8, durationMs: beforeMs + outageMs + afterMs }, model)
    const bad = run.ios.find(t => !t.result.ok)
    if (bad !== undefined) {
      const e = (bad.result as { error: string }).error
      const during = bad.issuedAt >= downAt && (Number.isNaN(upAt) || bad.issuedAt < upAt)
      throw new CheckFailure(`a guest write failed with ${e} ${during ? `while the recovery site was down (+${ms(bad.issuedAt - downAt)} ms into the outage)` : 'around the outage'}: an unreachable site must not fail the guest's I/O`, {
        io: { op: 'write', offset: bad.io.offset, length: bad.io.data!.length },
        error: e,
        issuedAtMs: ms(bad.issuedAt - t0),
        siteDownAtMs: Number.isNaN(downAt) ? null : ms(downAt - t0),
        siteUpAtMs: Number.isNaN(upAt) ? null : ms(upAt - t0),
        failedWrites: run.ios.filter(t => !t.result.ok).length,
        writes: run.ios.length,
      })
    }
    await flushOk(r.vm, r.disk, 'after the outage')
    const expected = await diskBytes(r.vm, r.disk, model)
    const bound = catchUpBoundMs(r.rpoSeconds)
    const caught = await awaitReplica(r.site, r.disk, 0, expected, bound)
    const queued = log.writes.filter(w => w.issuedAt >= downAt && w.issuedAt < upAt).length
    if (!caught.caughtUp) {
      const d = caught.difference!
      throw new CheckFailure(`the replica did not catch up after the site returned: ${ms(nowMs() - upAt)} ms after it came back (${caught.waitedMs} ms after the guest quiesced) it still differs from the disk at offset ${d.offset}`, {
        offset: d.offset,
        expected: d.expected,
        found: d.found,
        writesDuringOutage: queued,
        boundMs: bound,
        ...missingEvidence(r, t0),
      })
    }
    const replay = replayWriteOrder(log, r.rec, { t0, what: 'the replica (across the outage)' })
    return {
      status: 'passed',
      message: `site down ${ms(upAt - downAt)} ms with ${queued} guest writes meanwhile, none failed; the replica caught up ${caught.waitedMs} ms after the guest quiesced, equals the disk, and was crash-consistent after each of ${replay.arrivals} arrivals`,
      evidence: { outageMs: ms(upAt - downAt), writesDuringOutage: queued, writes: log.writes.length, arrivals: replay.arrivals, catchUpMs: caught.waitedMs },
    }
  },
)

/** The suite's checks, in catalogue order. */
export const checks: readonly CheckDef[] = [writeOrderCheck, consistencyCheck, rpoCheck, targetOutageCheck]
