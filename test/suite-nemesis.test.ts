/**
 * The nemesis checks: their schedules and judges, the bundled reference filters passing them
 * (through certification, and over hundreds of seeds of the scenario driven directly), and the
 * negative controls failing them — each in 10 of 10 runs with different seeds — while passing the
 * rest of the catalogue but for the checks named here, with the reason.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { Cluster } from '../harness/framework/cluster.js'
import { RecoverySite } from '../harness/framework/site.js'
import { CheckContext, type RunOptions } from '../harness/certify/context.js'
import { executeCheck } from '../harness/certify/execute.js'
import { awaitReplica } from '../harness/certify/replica.js'
import { catalogue } from '../harness/certify/runner.js'
import { prepareSubject, type SubjectData } from '../harness/certify/subject.js'
import { profileThresholds } from '../reports/profiles.js'
import type { CertReport } from '../reports/document.js'
import { failingSchedules } from '../reports/steps.js'
import { describeStep, generateSchedule, NemesisFailure, nemesisScenario, runShape, shrink, type Schedule } from '../suites/nemesis.js'
import { DiskModel, INITIAL } from '../suites/nemesis/model.js'
import { ReplicaJudge } from '../suites/nemesis/replica.js'
import { certifyStatuses, controlModule, packageModule, referencePackage } from './helpers/controls.js'
import { unlessBuilt } from './helpers/suite-run.js'

const MiB = 1 << 20

// ---- helpers ----

/**
 * Packages a control as a vendor would, with the files it imports: the replication controls are
 * made of test/controls/nemesis-base.js, which goes into the package beside the entry.
 */
async function nemesisControl(name: string): Promise<string> {
  const entry = controlModule(name)
  return packageModule(entry, fs.readFileSync(entry, 'utf8').includes('./nemesis-base.js') ? { with: [controlModule('nemesis-base')] } : {})
}

function runOptions(seed: number, workDir: string): RunOptions {
  return { quick: true, certified: false, seed, profileName: 'default', thresholds: profileThresholds('default')!, upgradeFrom: null, references: {}, workDir }
}

/** A package prepared as a certification run prepares it, in a directory removed afterwards. */
async function withSubject<T>(pkg: string, fn: (subject: SubjectData, workDir: string) => Promise<T>): Promise<T> {
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-nemtest-'))
  try {
    return await fn(await prepareSubject(pkg, workDir), workDir)
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true })
  }
}

// ---- schedules ----

test('a schedule is a pure function of its sub-seed, holds every hazard, and ends with the site up, every VM on and a checkpoint', () => {
  for (const cls of ['replication', 'cache'] as const) {
    for (let seed = 1; seed <= 200; seed++) {
      const a = generateSchedule(seed, cls, { steps: 5, maxIos: 48 })
      assert.deepEqual(generateSchedule(seed, cls, { steps: 5, maxIos: 48 }), a)
      const kinds = a.steps.map(s => s.kind)
      assert.ok(kinds.includes('close-crash'), `${cls} seed ${seed}: no close right before a power cut`)
      assert.ok(kinds.includes('crash-host'), `${cls} seed ${seed}: no power cut`)
      assert.ok(kinds.includes('migrate'), `${cls} seed ${seed}: no migration`)
      assert.equal(kinds.includes('site-down'), cls === 'replication', `${cls} seed ${seed}: site outages only for replication filters`)
      assert.equal(a.steps.at(-1)!.kind, 'checkpoint')
      // simulate: every step applies to the state the steps before it left
      const on = new Map(a.vms.map(v => [v.name, true]))
      let down = 0
      for (const s of a.steps) {
        if (['power-off', 'close-crash', 'migrate', 'vm-crash', 'stun', 'snapshot', 'detach'].includes(s.kind)) assert.ok(on.get(s.vm!), `${cls} seed ${seed}: ${describeStep(s)} on a VM that is off`)
        if (s.kind === 'power-on') assert.ok(!on.get(s.vm!), `${cls} seed ${seed}: ${describeStep(s)} on a VM that is on`)
        if (s.kind === 'power-off' || s.kind === 'close-crash') on.set(s.vm!, false)
        if (s.kind === 'power-on') on.set(s.vm!, true)
        if (s.kind === 'site-down') down += s.vms!.length
        if (s.kind === 'site-up') down = 0
        assert.ok(s.at <= s.ios, `${describeStep(s)}: at ${s.at} > ios ${s.ios}`)
      }
      assert.equal(down, 0)
      assert.ok([...on.values()].every(Boolean))
    }
  }
  assert.notDeepEqual(generateSchedule(1, 'cache', { steps: 5, maxIos: 48 }).steps, generateSchedule(2, 'cache', { steps: 5, maxIos: 48 }).steps)
})

// ---- the disk model ----

test('the disk model: a completed write must be read back; after a power cut an unflushed write may be lost, a flushed one not, and a lost one stays lost', () => {
  const m = new DiskModel('d', 4096)
  const A = new Uint8Array(512).fill(0xa1)
  const B = new Uint8Array(512).fill(0xb2)
  const C = new Uint8Array(512).fill(0xc3)
  const w1 = m.issue(0, 512, A, 1)
  m.complete(w1, true)
  assert.equal(m.judgeRead(0, A), null)
  const stale = m.judgeRead(0, new Uint8Array(512))
  assert.deepEqual(stale && { found: stale.found, allowed: stale.allowed }, { found: INITIAL, allowed: [w1.seq] })
  m.coverBefore(performance.timeOrigin + performance.now() + 1)
  const w2 = m.issue(0, 512, B, 2)
  m.complete(w2, true)
  assert.notEqual(m.judgeRead(0, A), null, 'without a crash the last completed write must be there')
  m.crashed = true
  // the power cut lost w2: the flushed w1 is a legitimate outcome, zeros are not
  const disk = new Uint8Array(4096)
  disk.set(A, 0)
  const zeros = new Uint8Array(4096)
  assert.notEqual(m.judgeRead(0, zeros, { whole: true }), null, 'a flushed write may not be lost')
  assert.equal(m.judgeRead(0, disk, { whole: true }), null)
  assert.equal(m.crashed, false)
  const resurrected = m.judgeRead(0, B)
  assert.ok(resurrected !== null && resurrected.found === w2.seq, 'a write the power cut took may not come back')
  // a write whose outcome the guest never learnt may or may not be there; once seen, it is there
  const w3 = m.issue(512, 512, C, 3)
  m.complete(w3, false)
  assert.equal(m.judgeRead(512, new Uint8Array(512)), null)
  const m2 = new DiskModel('d2', 4096)
  const u = m2.issue(0, 512, C, 1)
  m2.complete(u, false)
  assert.equal(m2.judgeRead(0, C), null)
  assert.notEqual(m2.judgeRead(0, new Uint8Array(512)), null, 'an uncertain write found landed stays landed')
})

test('the replica judge: an arrival that needs a write the site lacks breaks write order; an entitled resync is not judged; old bytes over an epoch\'s base are a regression', async () => {
  const bytes = (v: number) => new Uint8Array(512).fill(v)
  const setup = () => {
    const site = new RecoverySite('dr')
    const m = new DiskModel('d', 8192)
    const judge = new ReplicaJudge(site, new Map([['d', m]]), () => 1)
    const w1 = m.issue(0, 512, bytes(1), 1)
    m.complete(w1, true, w1.issuedAt)
    // w2 is issued after w1 completed
    while (performance.timeOrigin + performance.now() <= w1.issuedAt) { /* a microsecond */ }
    const w2 = m.issue(4096, 512, bytes(2), 1)
    m.complete(w2, true)
    return { site, m, judge, w1, w2 }
  }
  const bad = setup()
  await bad.site.write('d', 4096, bytes(2))
  await bad.site.write('d', 0, bytes(1))
  const v = bad.judge.judge('d')
  assert.ok(v !== null && v.kind === 'order' && v.missing!.seq === bad.w1.seq && v.applied!.seq === bad.w2.seq, JSON.stringify(v))
  bad.judge.entitle('d', 1, 'a power cut')
  assert.equal(bad.judge.judge('d'), null)
  const good = setup()
  await good.site.write('d', 0, bytes(1))
  await good.site.write('d', 4096, bytes(2))
  assert.equal(good.judge.judge('d'), null)
  // the replica equals the disk (w1, w2); then w1's sector gets zeros no unmap explains
  good.judge.checkpoint('d', good.m.identities(), 2)
  await good.site.write('d', 0, new Uint8Array(512))
  const r = good.judge.judge('d')
  assert.ok(r !== null && r.kind === 'regression' && r.base === good.w1.seq, JSON.stringify(r))
  const garbage = setup()
  await garbage.site.write('d', 0, bytes(9))
  assert.equal(garbage.judge.judge('d')?.kind, 'garbage')
})

// ---- the reference filters ----

const REFS = [
  { name: 'passthrough', replica: 'skipped' },
  { name: 'cache', replica: 'skipped' },
  { name: 'cdp', replica: 'passed' },
] as const

for (const r of REFS) {
  test(`the reference ${r.name} filter passes the nemesis checks (quick, seed 1)`, { skip: unlessBuilt(referencePackage(r.name)) }, async () => {
    const { doc } = await certifyStatuses(referencePackage(r.name), { grep: '^nemesis\\.', seed: 1 })
    const by = Object.fromEntries(doc.checks.map(c => [c.id, c]))
    assert.deepEqual(Object.keys(by).sort(), ['nemesis.replica', 'nemesis.schedules'])
    assert.equal(by['nemesis.schedules']!.status, 'passed', `${by['nemesis.schedules']!.message} ${JSON.stringify(by['nemesis.schedules']!.evidence ?? {}).slice(0, 1500)}`)
    assert.equal(by['nemesis.replica']!.status, r.replica, `${by['nemesis.replica']!.message} ${JSON.stringify(by['nemesis.replica']!.evidence ?? {}).slice(0, 1500)}`)
    assert.match(by['nemesis.schedules']!.message ?? '', /^3 seeded schedules \(\d+ steps, \d+ guest I\/Os\)/)
    if (r.replica === 'passed') assert.match(by['nemesis.replica']!.message ?? '', /each checkpoint found it equal to the disk/)
  })
}

/** The small scenario the many-seed runs use: two VMs on 2 MiB disks, one hazard and one more step. */
const SMALL = { steps: 2, maxIos: 24, vms: 2, hazards: 1 } as const

const SEEDS: Record<(typeof REFS)[number]['name'], number> = { passthrough: 70, cache: 80, cdp: 50 }

for (const r of REFS) {
  const n = SEEDS[r.name]
  test(`the nemesis scenario, driven directly over ${n} seeds, finds nothing wrong with the reference ${r.name} filter`, { skip: unlessBuilt(referencePackage(r.name)) }, async t => {
    await withSubject(referencePackage(r.name), async (subject, workDir) => {
      const t0 = performance.now()
      let steps = 0
      let ios = 0
      for (let seed = 1; seed <= n; seed++) {
        const ctx = new CheckContext('nemesis.schedules', seed, subject, runOptions(seed, workDir))
        try {
          const res = await nemesisScenario(ctx, { subSeed: seed, shape: SMALL, judgeReplica: r.name === 'cdp', capacity: 2 * MiB })
          steps += res.outcome.steps.length
          ios += res.outcome.ios
        } catch (e) {
          if (e instanceof NemesisFailure) assert.fail(`sub-seed ${seed}: ${e.message}\n${e.steps.map(s => `  ${s.n}. ${s.step} (+${s.startMs} ms)`).join('\n')}\n${JSON.stringify(e.evidence).slice(0, 1500)}`)
          throw e
        } finally {
          await ctx.dispose()
        }
      }
      t.diagnostic(`${n} seeds, ${steps} steps, ${ios} guest I/Os in ${Math.round((performance.now() - t0) / 1000)} s`)
    })
  })
}

test('the reference cdp filter brings a re-protected disk\'s replica back to the disk: a chunk trimmed while the policy was off goes to the site as zeros', { skip: unlessBuilt(referencePackage('cdp')) }, async () => {
  const c = await Cluster.create({})
  try {
    await c.addHost('esx1')
    const info = await c.installModule(new URL('../reference-filters/cdp/filter.js', import.meta.url).pathname)
    c.createPolicy({ name: 'p', rules: [{ filter: `${info.name}@REPLICATION`, params: { site: 'dr', rpoSeconds: 2 } }] })
    const h = c.host('esx1')
    h.createVm('vm1')
    await h.addDisk('vm1', { id: 'd', capacity: 4 * MiB, backing: 'file' })
    const vm = h.vm('vm1')
    await vm.powerOn()
    await h.setPolicy('vm1', 'd', 'p')
    await vm.write('d', MiB, new Uint8Array(64 * 1024).fill(7))
    await vm.flush('d')
    const site = c.site('dr')!
    assert.ok((await awaitReplica(site, 'd', 0, await vm.read('d', 0, 4 * MiB), 9000)).caughtUp, 'the replica caught up before the policy came off')
    await h.setPolicy('vm1', 'd', null)
    await vm.unmap('d', MiB, MiB)
    await h.setPolicy('vm1', 'd', 'p')
    const caught = await awaitReplica(site, 'd', 0, await vm.read('d', 0, 4 * MiB), 9000)
    assert.ok(caught.caughtUp, `the replica kept the old bytes of the trimmed chunk: ${JSON.stringify(caught.difference)}`)
  } finally {
    await c.shutdown({ remove: true })
  }
})

// ---- the negative controls ----

/** Each control breaks one rule that only a transition at the wrong moment shows. */
const CONTROLS = [
  {
    name: 'complete-at-close',
    check: 'nemesis.replica',
    message: /^schedule \d of 3 \(sub-seed \d+\), after step \d+ of \d+ \(.*\): .*vm\d-disk0's replica (still differs from the disk at offset \d+|was not a prefix of the write order|went back in time)/,
  },
  {
    name: 'outage-custody',
    check: 'nemesis.replica',
    message: /^schedule \d of 3 \(sub-seed \d+\), after step \d+ of \d+ \(.*\): .*vm\d-disk0's replica (still differs from the disk at offset \d+|was not a prefix of the write order|went back in time).*while its site was down/,
  },
  {
    name: 'warm-migrate-cache',
    check: 'nemesis.schedules',
    message: /^schedule \d of 3 \(sub-seed \d+\), (during|after) step \d+ of \d+ \(.*\): .*(returned .* — (older than|not) .*which the disk must hold there|the sector's bytes changed without a write)/,
  },
] as const

for (const k of CONTROLS) {
  test(`the ${k.name} control fails ${k.check} in 10 of 10 quick runs with seeds 1 to 10`, async t => {
    const def = (await catalogue()).find(d => d.id === k.check)!
    await withSubject(await nemesisControl(k.name), async (subject, workDir) => {
      const t0 = performance.now()
      for (let seed = 1; seed <= 10; seed++) {
        const { result } = await executeCheck(def, subject, runOptions(seed, workDir))
        assert.equal(result.status, 'failed', `seed ${seed}: ${result.status}: ${result.message}`)
        assert.match(result.message ?? '', k.message, `seed ${seed}`)
        const ev = result.evidence as { subSeed?: unknown; failing?: { subSeed?: unknown; steps?: unknown[]; ran?: { startMs: number; endMs: number }[] }; invariant?: string; failedAtStep?: number }
        assert.ok(typeof ev.failing?.subSeed === 'number' && Array.isArray(ev.failing.steps) && ev.failing.steps.length > 0, `seed ${seed}: the evidence names the failing schedule's sub-seed and steps`)
        assert.ok(ev.failing.ran!.every(s => typeof s.startMs === 'number' && typeof s.endMs === 'number'), `seed ${seed}: each step with its times`)
        assert.ok(typeof ev.failedAtStep === 'number' && typeof ev.invariant === 'string')
        const shown = failingSchedules(result)
        assert.ok(shown.length >= 1 && shown[0]!.steps.filter(s => s.failed).length === 1, `seed ${seed}: the report shows the failing schedule step by step, the failed step marked`)
      }
      t.diagnostic(`10 runs in ${Math.round((performance.now() - t0) / 1000)} s`)
    })
  })
}

test('a failing schedule is shrunk to fewer steps that still fail the same way, and the rerun of a sub-seed fails the same way again', async () => {
  await withSubject(await nemesisControl('complete-at-close'), async (subject, workDir) => {
    const ctx = new CheckContext('nemesis.replica', 7, subject, runOptions(7, workDir))
    try {
      let failure: NemesisFailure | null = null
      let schedule: Schedule | null = null
      for (let seed = 1; seed <= 5 && failure === null; seed++) {
        try {
          await nemesisScenario(ctx, { subSeed: seed, shape: { steps: 5, maxIos: 48 }, judgeReplica: true })
        } catch (e) {
          if (!(e instanceof NemesisFailure)) throw e
          failure = e
          schedule = generateSchedule(seed, 'replication', { steps: 5, maxIos: 48 })
        }
      }
      assert.ok(failure !== null && schedule !== null, 'the control failed none of 5 schedules')
      const s = await shrink(ctx, schedule, failure, runShape(true), 120_000)
      assert.ok(s.schedule.steps.length < schedule.steps.length, `not shrunk: ${s.schedule.steps.length} of ${schedule.steps.length} steps`)
      assert.equal(s.failure.invariant, failure.invariant)
      assert.ok(s.runs >= 2)
    } finally {
      await ctx.dispose()
    }
  })
})

/**
 * What else each control fails in the whole quick catalogue, and why. Everything not listed must
 * pass, or be skipped as not applying to the control's class or needing --upgrade-from — but for
 * the performance checks: they measure the control's speed against the bundled reference of its
 * class (cdp's ring and joined site writes, cache's admission on a second miss), which these small
 * filters were not built to match; on a shared machine their outcome is the machine's as much as
 * the filter's (measured: complete-at-close passed both marginally, outage-custody failed
 * performance.iops on the 70/30 mix at 0.47 of cdp, warm-migrate-cache failed it on random reads
 * at 0.44 of cache — it copies every block a read misses into its cache). They must not error.
 */
const ALSO: Record<string, Record<string, string>> = {
  'complete-at-close': {},
  'outage-custody': {},
  'warm-migrate-cache': {},
}

for (const k of CONTROLS) {
  test(`the ${k.name} control passes the rest of the catalogue (quick, seed 1)${Object.keys(ALSO[k.name]!).length ? ` but ${Object.keys(ALSO[k.name]!).join(', ')}` : ''}, the performance checks aside`, async () => {
    const { doc } = await certifyStatuses(await nemesisControl(k.name), { seed: 1 })
    const wrong: string[] = []
    const other = k.check === 'nemesis.replica' ? 'nemesis.schedules' : 'nemesis.replica'
    for (const c of doc.checks as CertReport['checks']) {
      if (c.id === k.check) {
        if (c.status !== 'failed') wrong.push(`${c.id}: expected failed, got ${c.status}: ${c.message ?? ''}`)
        continue
      }
      if (c.id.startsWith('performance.')) {
        if (c.status === 'errored') wrong.push(`${c.id}: errored: ${c.message ?? ''}`)
        continue
      }
      const because = ALSO[k.name]![c.id]
      if (because !== undefined) {
        if (c.status !== 'failed') wrong.push(`${c.id}: expected failed (${because}), got ${c.status}: ${c.message ?? ''}`)
        continue
      }
      const skippedOk = c.status === 'skipped' && (/^applies to /.test(c.message ?? '') || /--upgrade-from/.test(c.message ?? '') || /not a read cache/.test(c.message ?? ''))
      if (c.status !== 'passed' && !skippedOk) wrong.push(`${c.id}: expected passed, got ${c.status}: ${c.message ?? ''} ${JSON.stringify(c.evidence ?? {}).slice(0, 600)}`)
    }
    assert.deepEqual(wrong, [])
    if (k.check === 'nemesis.replica') assert.equal(doc.checks.find(c => c.id === other)!.status, 'passed', 'a replica fault leaves every disk right')
  })
}
