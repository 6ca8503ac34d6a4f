import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { hashBytes, nowMs, Rng, type Arrival, type Cluster, type RecoverySite, type Vm } from '../harness/framework/index.js'
import { bytes, referenceFilter, until, withCluster } from './helpers/cluster.js'
import { PACK_MAX } from '../reference-filters/cdp/constants.js'

const MiB = 1 << 20
const CDP_ID = 'IOFCERT_cdp_1.0.0'

const functional = (seed: number) => ({ ioTimeoutMs: 2000, reorder: { seed, maxDelayMs: 2 } })

async function protectedVm(c: Cluster, name: string, o: { disk?: string; capacity?: number; rpoSeconds?: number; host?: string; backing?: 'memory' | 'file' } = {}): Promise<Vm> {
  const h = c.host(o.host ?? 'esx1')
  if (!h.filters.has(CDP_ID)) await c.installModule(referenceFilter('cdp'))
  const policy = `cdp-${o.rpoSeconds ?? 15}`
  if (!c.policies.has(policy)) c.createPolicy({ name: policy, rules: [{ filter: 'cdp@REPLICATION', params: { site: 'dr', rpoSeconds: o.rpoSeconds ?? 15 } }] })
  const vm = h.createVm(name)
  await h.addDisk(name, { id: o.disk ?? `${name}-d`, capacity: o.capacity ?? 16 * MiB, policy, backing: o.backing ?? 'memory' })
  await vm.powerOn()
  // the first copy of the new disk (chunks of zeros, sent as zeros) runs while the guest is idle
  await until(() => vm.logs.some(l => l.msg === 'first copy to the site finished'), 10_000, 'the first copy')
  return vm
}

/** A guest write as the guest saw it: when it was issued and when it completed (epoch ms). */
interface GuestWrite {
  readonly offset: number
  readonly data: Uint8Array
  readonly hash: string
  readonly issuedAt: number
  readonly completedAt: number
}

interface Plan { offset: number; data: Uint8Array }

/**
 * Issues writes keeping `qd` in flight (paced at `iops` when given) and records each one's issue
 * and completion times. Every write must succeed.
 */
async function trackedWrites(vm: Vm, disk: string, plan: readonly Plan[], qd: number, iops?: number): Promise<GuestWrite[]> {
  const out: GuestWrite[] = []
  let next = 0
  const t0 = performance.now()
  const lane = async () => {
    while (next < plan.length) {
      const i = next++
      if (iops !== undefined) {
        const wait = t0 + (i * 1000) / iops - performance.now()
        if (wait > 1) await new Promise(r => setTimeout(r, wait))
      }
      const p = plan[i]!
      const issuedAt = nowMs()
      const r = await vm.submit(disk, { op: 'write', offset: p.offset, data: p.data })
      const completedAt = nowMs()
      assert.ok(r.ok, `write ${i} at ${p.offset} failed: ${!r.ok && r.error}`)
      out.push({ offset: p.offset, data: p.data, hash: hashBytes(p.data), issuedAt, completedAt })
    }
  }
  await Promise.all(Array.from({ length: qd }, lane))
  return out
}

/** Seeded writes of 512 B to `maxSectors` sectors inside `span`, each with its own bytes. */
function randomPlan(seed: number, count: number, span: number, maxSectors: number, base = 0): Plan[] {
  const rng = new Rng(seed)
  return Array.from({ length: count }, (_, i) => {
    const sectors = 1 + rng.int(maxSectors)
    return { offset: base + rng.int(span / 512 - sectors) * 512, data: bytes(seed * 1_000_003 + i, sectors * 512) }
  })
}

interface Replay {
  /** When the site applied each guest write (by index in `writes`). */
  readonly appliedAt: Map<GuestWrite, number>
  /** Instants at which the replica was not write-order faithful. */
  readonly violations: string[]
  /** Arrivals that are no guest write and no run of them (copies of the disk). */
  readonly foreign: Arrival[]
}

/** A chunk of zeros as the site hashes it: the first copy of a newly protected disk sends its zero chunks so. */
const ZERO_CHUNK = hashBytes(new Uint8Array(MiB))

/**
 * Replays the site's arrivals for a disk, in order, onto a model of which guest writes the
 * replica holds, and checks write-order fidelity after every arrival: for every write applied,
 * every write that completed before it was issued is applied. An arrival is one guest write, or
 * several queued ones joined into one contiguous site write (applied in completion order).
 */
function replay(arrivals: readonly Arrival[], writes: readonly GuestWrite[]): Replay {
  const order = [...writes].sort((a, b) => a.completedAt - b.completedAt)
  const n = order.length
  const applied = new Uint8Array(n)
  const byKey = new Map<string, number[]>()
  order.forEach((w, i) => {
    const k = `${w.offset}:${w.data.length}:${w.hash}`
    const l = byKey.get(k)
    if (l) l.push(i)
    else byKey.set(k, [i])
  })
  const appliedAt = new Map<GuestWrite, number>()
  const violations: string[] = []
  const foreign: Arrival[] = []
  let first = 0
  let latestIssue = -Infinity
  let latest: GuestWrite | null = null

  const contentOf = (a: Arrival, run: readonly number[]): string => {
    const buf = new Uint8Array(a.length)
    for (const j of run) buf.set(order[j]!.data, order[j]!.offset - a.offset)
    return hashBytes(buf)
  }
  const inside = (a: Arrival, j: number): boolean => order[j]!.offset >= a.offset && order[j]!.offset + order[j]!.data.length <= a.offset + a.length

  const joined = (a: Arrival): number[] | null => {
    const end = a.offset + a.length
    for (let s = first; s < Math.min(n, first + 5000); s++) {
      if (applied[s]) continue
      const buf = new Uint8Array(a.length)
      let lo = Infinity
      let hi = -Infinity
      const run: number[] = []
      for (let j = s; j < n && !applied[j]; j++) {
        const w = order[j]!
        if (w.offset < a.offset || w.offset + w.data.length > end) break
        buf.set(w.data, w.offset - a.offset)
        lo = Math.min(lo, w.offset)
        hi = Math.max(hi, w.offset + w.data.length)
        run.push(j)
        if (run.length > 1 && lo === a.offset && hi === end && hashBytes(buf) === a.hash) return run
      }
    }
    return null
  }

  for (const a of arrivals) {
    const cands = byKey.get(`${a.offset}:${a.length}:${a.hash}`)
    const one = cands?.find(i => !applied[i])
    const found = one !== undefined ? [one] : joined(a)
    if (found === null) {
      // a chunk of zeros of the first copy of a newly protected disk (its replica need not be empty)
      if (a.offset % MiB === 0 && a.length === MiB && a.hash === ZERO_CHUNK) continue
      foreign.push(a)
      continue
    }
    let run: number[] = found
    // writes joined in front of the run may have been overwritten whole by it: the content alone
    // does not show them, so take those the same content also explains
    for (let j = run[0]! - 1; j >= first && !applied[j] && inside(a, j); j--) {
      const longer = [j, ...run]
      if (contentOf(a, longer) !== a.hash) break
      run = longer
    }
    for (const i of run) {
      const w = order[i]!
      applied[i] = 1
      appliedAt.set(w, a.at)
      if (w.issuedAt > latestIssue) {
        latestIssue = w.issuedAt
        latest = w
      }
    }
    while (first < n && applied[first]) first++
    if (first < n && order[first]!.completedAt < latestIssue && violations.length < 5) {
      const miss = order[first]!
      violations.push(`after arrival #${a.seq}: the write at ${latest!.offset} (issued ${latestIssue.toFixed(3)}) is applied, but the write at ${miss.offset} that completed before it was issued (${miss.completedAt.toFixed(3)}) is not`)
    }
  }
  return { appliedAt, violations, foreign }
}

/** The first offset in [lo, hi) where the replica differs from the disk as the guest reads it, or -1. */
async function replicaDiff(site: RecoverySite, vm: Vm, disk: string, lo: number, hi: number): Promise<number> {
  for (let off = lo; off < hi; off += MiB) {
    const len = Math.min(MiB, hi - off)
    const want = await vm.read(disk, off, len)
    const got = site.read(disk, off, len)
    if (!Buffer.from(want).equals(Buffer.from(got))) {
      for (let i = 0; i < len; i++) if (want[i] !== got[i]) return off + i
    }
  }
  return -1
}

/** Flushes, then waits until the replica equals the disk over [lo, hi). */
async function quiesced(site: RecoverySite, vm: Vm, disk: string, lo: number, hi: number, ms = 15_000): Promise<void> {
  await vm.flush(disk)
  const t0 = Date.now()
  let at = await replicaDiff(site, vm, disk, lo, hi)
  while (at >= 0 && Date.now() - t0 < ms) {
    await new Promise(r => setTimeout(r, 100))
    at = await replicaDiff(site, vm, disk, lo, hi)
  }
  assert.equal(at, -1, `${disk}: ${ms} ms after quiesce the replica still differs from the disk at byte ${at}`)
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN
}

for (const seed of [1, 2, 3]) {
  test(`seed ${seed}: dependent writes at QD 1 reach the replica as a faithful prefix and it equals the disk`, async () => {
    await withCluster(functional(seed), async c => {
      const vm = await protectedVm(c, 'vm1')
      const disk = 'vm1-d'
      const writes = await trackedWrites(vm, disk, randomPlan(seed, 1000, 512 * 1024, 64), 1)
      const site = c.site('dr')!
      await quiesced(site, vm, disk, 0, MiB)
      const r = replay(site.arrivals(disk), writes)
      assert.deepEqual(r.violations, [])
      assert.deepEqual(r.foreign.map(a => `${a.offset}+${a.length}`), [], 'arrivals that are no guest write')
      assert.equal(r.appliedAt.size, writes.length, 'writes never applied at the site')
    })
  })
}

for (const seed of [4, 5, 6]) {
  test(`seed ${seed}: overlapping writes at QD 8 keep write order at every instant and the replica equals the disk`, async () => {
    await withCluster(functional(seed), async c => {
      const vm = await protectedVm(c, 'vm1')
      const disk = 'vm1-d'
      // rounds of 400 writes of 512 B to 32 KiB in 128 KiB (both sides of PACK_MAX, 16 KiB: copied
      // into the pack as they complete, or held and read back, in the same batches): most of them
      // overlap others in flight, and each round ends in a comparison, where the last writes to
      // each byte decide
      assert.ok(PACK_MAX > 512 && PACK_MAX < 32 * 1024, `PACK_MAX ${PACK_MAX} no longer splits the plan's sizes`)
      const site = c.site('dr')!
      const writes: GuestWrite[] = []
      for (let round = 0; round < 5; round++) {
        writes.push(...(await trackedWrites(vm, disk, randomPlan(seed * 10 + round, 400, 128 * 1024, 64), 8)))
        await quiesced(site, vm, disk, 0, MiB)
      }
      const r = replay(site.arrivals(disk), writes)
      assert.deepEqual(r.violations, [])
      assert.deepEqual(r.foreign.map(a => `${a.offset}+${a.length}`), [])
      assert.equal(r.appliedAt.size, writes.length)
    })
  })
}

test('unmaps reach the replica as zeros, in order with the writes around them', async () => {
  await withCluster(functional(7), async c => {
    const vm = await protectedVm(c, 'vm1')
    const disk = 'vm1-d'
    const rng = new Rng(7)
    const ios = Array.from({ length: 600 }, (_, i) => {
      const off = rng.int(512) * 4096
      return rng.float() < 0.25
        ? { op: 'unmap' as const, offset: off, length: 4096 * (1 + rng.int(8)) }
        : { op: 'write' as const, offset: off, data: bytes(i, 4096 * (1 + rng.int(4))) }
    })
    const res = await vm.runIos(disk, ios, 8)
    assert.equal(res.filter(r => !r.ok).length, 0)
    await quiesced(c.site('dr')!, vm, disk, 0, 4 * MiB)
  })
})

test('a 5 s site outage: no guest error, the backlog keeps its order and the replica catches up', async () => {
  await withCluster(functional(8), async c => {
    const vm = await protectedVm(c, 'vm1')
    const disk = 'vm1-d'
    const site = c.site('dr')!
    const plan = randomPlan(8, 3500, 4 * MiB, 16)
    const work = trackedWrites(vm, disk, plan, 8, 500)
    await new Promise(r => setTimeout(r, 1000))
    site.setFault(disk, { down: true })
    const downAt = nowMs()
    await new Promise(r => setTimeout(r, 5000))
    site.setFault(disk, null)
    const upAt = nowMs()
    const writes = await work // trackedWrites asserts that every write succeeded
    await quiesced(site, vm, disk, 0, 4 * MiB)
    const arrivals = site.arrivals(disk)
    assert.equal(arrivals.filter(a => a.at > downAt + 1 && a.at < upAt).length, 0, 'arrivals while the site was down')
    const r = replay(arrivals, writes)
    assert.deepEqual(r.violations, [])
    assert.deepEqual(r.foreign.map(a => `${a.offset}+${a.length}`), [])
    assert.equal(r.appliedAt.size, writes.length)
  })
})

test("the site down for one VM's disk does not hold up another VM's replication", async (t: TestContext) => {
  await withCluster(functional(9), async c => {
    const a = await protectedVm(c, 'vmA')
    const b = await protectedVm(c, 'vmB')
    const site = c.site('dr')!
    const before = site.arrivals('vmA-d').length
    site.setFault('vmA-d', { down: true })
    const [, wb] = await Promise.all([
      trackedWrites(a, 'vmA-d', randomPlan(10, 2000, 8 * MiB, 8), 8, 500),
      trackedWrites(b, 'vmB-d', randomPlan(11, 2000, 8 * MiB, 8), 8, 500),
    ])
    await quiesced(site, b, 'vmB-d', 0, 8 * MiB)
    const r = replay(site.arrivals('vmB-d'), wb)
    assert.equal(r.appliedAt.size, wb.length)
    assert.deepEqual(r.violations, [])
    const lags = wb.map(w => r.appliedAt.get(w)! - w.completedAt)
    const p99 = percentile(lags, 99)
    t.diagnostic(`vmB replica lag with vmA's site down: p50 ${percentile(lags, 50).toFixed(2)} ms, p99 ${p99.toFixed(2)} ms`)
    assert.ok(p99 <= 1000, `vmB's replica lag p99 is ${p99.toFixed(1)} ms`)
    assert.equal(site.arrivals('vmA-d').length, before)
    site.setFault('vmA-d', null)
    await quiesced(site, a, 'vmA-d', 0, 8 * MiB)
  })
})

test('RPO: 4 KiB random writes at QD 8 paced at 2,000 IOPS reach the site within rpoSeconds = 2 at p99', async (t: TestContext) => {
  await withCluster(functional(12), async c => {
    const vm = await protectedVm(c, 'vm1', { rpoSeconds: 2 })
    const disk = 'vm1-d'
    const rng = new Rng(12)
    const plan = Array.from({ length: 10_000 }, (_, i) => ({ offset: rng.int(16 * MiB / 4096) * 4096, data: bytes(12_000_000 + i, 4096) }))
    const t0 = performance.now()
    const writes = await trackedWrites(vm, disk, plan, 8, 2000)
    const secs = (performance.now() - t0) / 1000
    const site = c.site('dr')!
    await until(() => site.arrivals(disk).length >= writes.length || false, 10_000, 'arrivals').catch(() => {})
    const r = replay(site.arrivals(disk), writes)
    assert.deepEqual(r.violations, [])
    const lags = writes.map(w => (r.appliedAt.get(w) ?? Infinity) - w.completedAt)
    const p99 = percentile(lags, 99)
    t.diagnostic(`${writes.length} writes in ${secs.toFixed(2)} s (${(writes.length / secs).toFixed(0)} IOPS); lag p50 ${percentile(lags, 50).toFixed(2)} ms, p99 ${p99.toFixed(2)} ms, max ${Math.max(...lags).toFixed(2)} ms`)
    assert.ok(p99 <= 2000, `lag p99 ${p99.toFixed(1)} ms is over the 2 s RPO`)
  })
})

test('a host crash mid-workload: the instance resyncs at power-on and the replica equals the disk', async () => {
  await withCluster(functional(13), async c => {
    const vm = await protectedVm(c, 'vm1', { capacity: 32 * MiB })
    const disk = 'vm1-d'
    const site = c.site('dr')!
    await trackedWrites(vm, disk, randomPlan(13, 400, 16 * MiB, 64), 8)
    await vm.flush(disk)
    // a write the site gets but the disk will lose, where the disk held nothing before
    await vm.write(disk, 24 * MiB, bytes(77, 65536))
    await until(() => site.arrivals(disk).some(a => a.offset === 24 * MiB), 5000, 'the write at 24 MiB to reach the site')
    // a slow site builds a backlog the crash loses
    site.setFault(disk, { slowMs: 5 })
    const work = vm.runIos(disk, randomPlan(14, 300, 16 * MiB, 32).map(p => ({ op: 'write' as const, offset: p.offset, data: p.data })), 8)
    await new Promise(r => setTimeout(r, 100))
    const lost = await c.crashHost('esx1')
    await work
    assert.ok(lost > 0, 'the crash lost no unflushed write')
    site.setFault(disk, null)
    const h = await c.restartHost('esx1', { powerOnVms: true })
    const vm2 = h.vm('vm1')
    assert.equal(vm2.state, 'on')
    assert.ok((await vm2.read(disk, 24 * MiB, 65536)).every(b => b === 0), 'the disk kept the unflushed write at 24 MiB')
    await quiesced(site, vm2, disk, 0, 32 * MiB)
    // and it keeps replicating afterwards
    await trackedWrites(vm2, disk, randomPlan(15, 300, 16 * MiB, 64), 8)
    await quiesced(site, vm2, disk, 0, 32 * MiB)
  })
})

test('after a clean power cycle, a write flushed just before a host crash still reaches the site', async () => {
  await withCluster(functional(23), async c => {
    const vm = await protectedVm(c, 'vm1')
    const disk = 'vm1-d'
    const site = c.site('dr')!
    await trackedWrites(vm, disk, randomPlan(23, 100, 4 * MiB, 16), 8)
    await quiesced(site, vm, disk, 0, 16 * MiB)
    // a clean close: the site holds the disk, and the next open has nothing to copy
    await vm.powerOff()
    await vm.powerOn()
    site.setFault(disk, { down: true })
    await vm.write(disk, 12 * MiB, bytes(23, 65536))
    await vm.flush(disk)
    // the backlog dies with the host; only the sidecar can tell that 12 MiB must be copied
    await c.crashHost('esx1')
    site.setFault(disk, null)
    const vm2 = (await c.restartHost('esx1', { powerOnVms: true })).vm('vm1')
    assert.deepEqual(await vm2.read(disk, 12 * MiB, 65536), bytes(23, 65536))
    await quiesced(site, vm2, disk, 0, 16 * MiB)
  })
})

test("a VM's worker killed mid-workload: the daemon carries on and the replica equals the disk after power-on", async () => {
  await withCluster(functional(24), async c => {
    const vm = await protectedVm(c, 'vm1')
    const disk = 'vm1-d'
    const site = c.site('dr')!
    site.setFault(disk, { slowMs: 2 })
    const work = vm.runIos(disk, randomPlan(24, 2000, 8 * MiB, 16).map(p => ({ op: 'write' as const, offset: p.offset, data: p.data })), 8)
    await new Promise(r => setTimeout(r, 200))
    await vm.crash()
    const res = await work
    assert.ok(res.some(r => !r.ok), 'no write was in flight when the worker died')
    site.setFault(disk, null)
    await until(() => vm.state === 'off', 2000, 'the VM to power off')
    await vm.powerOn()
    await quiesced(site, vm, disk, 0, 16 * MiB)
  })
})

test('a backlog past its cap is dropped and the disk is copied again once the site returns', async () => {
  await withCluster({ ioTimeoutMs: 5000 }, async c => {
    const vm = await protectedVm(c, 'vm1', { capacity: 64 * MiB })
    const disk = 'vm1-d'
    const site = c.site('dr')!
    site.setFault(disk, { down: true })
    // 160 MiB of 1 MiB writes over a 64 MiB disk: more than the daemon keeps for one disk
    const ios = Array.from({ length: 160 }, (_, i) => ({ op: 'write' as const, offset: (i % 64) * MiB, data: bytes(500 + i, MiB) }))
    const res = await vm.runIos(disk, ios, 8)
    assert.equal(res.filter(r => !r.ok).length, 0)
    await until(() => vm.logs.some(l => /fell too far behind/.test(l.msg)), 5000, 'the overflow to reach the instance')
    site.setFault(disk, null)
    await quiesced(site, vm, disk, 0, 64 * MiB, 30_000)
  })
})

test('a disk with data gets its first copy when the policy is applied', async () => {
  await withCluster(functional(16), async c => {
    await c.installModule(referenceFilter('cdp'))
    c.createPolicy({ name: 'cdp', rules: [{ filter: 'cdp@REPLICATION' }] })
    const h = c.host('esx1')
    const vm = h.createVm('vm1')
    await h.addDisk('vm1', { id: 'd', capacity: 64 * MiB })
    await vm.powerOn()
    for (let i = 0; i < 10; i++) await vm.write('d', i * 5 * MiB + 4096, bytes(i, 256 * 1024))
    await h.setPolicy('vm1', 'd', 'cdp')
    await vm.write('d', 0, bytes(99, 4096))
    const site = c.site('dr')!
    // the first copy runs while the guest leaves the disk alone
    await new Promise(r => setTimeout(r, 3000))
    await quiesced(site, vm, 'd', 0, 64 * MiB, 30_000)
    // zero chunks of a newly protected disk go as zeros (no buffer from the VM): the data shipped is the disk's
    const shipped = site.arrivals('d').filter(a => a.hash !== ZERO_CHUNK).reduce((n, a) => n + a.length, 0)
    assert.ok(shipped <= 12 * MiB, `${shipped} bytes shipped for 2.5 MiB of data`)
  })
})

test('migration closes with a drain: the disk reopens on the other host without a resync', async () => {
  await withCluster(functional(17), async c => {
    await c.addHost('esx2')
    const vm = await protectedVm(c, 'vm1')
    const disk = 'vm1-d'
    const site = c.site('dr')!
    await trackedWrites(vm, disk, randomPlan(17, 500, 8 * MiB, 16), 8)
    const moved = await c.migrateVm('vm1', 'esx2')
    const before = site.arrivals(disk).length
    const writes = await trackedWrites(moved, disk, randomPlan(18, 200, 8 * MiB, 16), 8)
    await quiesced(site, moved, disk, 0, 8 * MiB)
    const after = site.arrivals(disk).slice(before)
    const r = replay(after, writes)
    assert.deepEqual(r.foreign.map(a => `${a.offset}+${a.length}`), [], 'copies shipped after a clean migration')
    assert.deepEqual(r.violations, [])
  })
})

test('powered off while the site is down: the next power-on resyncs what the site missed', async () => {
  await withCluster(functional(19), async c => {
    const vm = await protectedVm(c, 'vm1')
    const disk = 'vm1-d'
    const site = c.site('dr')!
    site.setFault(disk, { down: true })
    await trackedWrites(vm, disk, randomPlan(19, 300, 8 * MiB, 16), 8)
    await vm.powerOff()
    site.setFault(disk, null)
    await vm.powerOn()
    await quiesced(site, vm, disk, 0, 8 * MiB)
  })
})

test('stun: the filter sends nothing to the disk while it is stunned, even amid its first copy', async () => {
  await withCluster(functional(20), async c => {
    await c.installModule(referenceFilter('cdp'))
    c.createPolicy({ name: 'cdp', rules: [{ filter: 'cdp@REPLICATION' }] })
    const h = c.host('esx1')
    const vm = h.createVm('vm1')
    await h.addDisk('vm1', { id: 'd', capacity: 64 * MiB })
    await vm.powerOn()
    for (let i = 0; i < 64; i++) await vm.write('d', i * MiB, bytes(i, 64 * 1024))
    await h.setPolicy('vm1', 'd', 'cdp')
    // the first copy reads the disk while the guest is idle: stun it midway
    await new Promise(r => setTimeout(r, 300))
    const before = c.site('dr')!.arrivals('d').length
    await vm.stun('d', true)
    await new Promise(r => setTimeout(r, 500))
    await vm.stun('d', false)
    assert.ok(before > 0 && before < 64, `the stun did not fall inside the first copy (${before} chunks copied)`)
    assert.deepEqual((await vm.driveStats('d')).stunnedFilterIo, [])
    await trackedWrites(vm, 'd', randomPlan(20, 200, 8 * MiB, 16), 8)
    await until(() => vm.logs.some(l => l.msg === 'first copy to the site finished'), 20_000, 'the first copy')
    await quiesced(c.site('dr')!, vm, 'd', 0, 64 * MiB)
    assert.deepEqual((await vm.driveStats('d')).stunnedFilterIo, [])
  })
})

test('detach and uninstall leave nothing running in the daemon', async () => {
  await withCluster({ ioTimeoutMs: 2000 }, async c => {
    const vm = await protectedVm(c, 'vm1')
    const disk = 'vm1-d'
    const site = c.site('dr')!
    await trackedWrites(vm, disk, randomPlan(21, 200, 8 * MiB, 16), 8)
    // a backlog with retries pending when the policy goes
    site.setFault(disk, { down: true })
    await trackedWrites(vm, disk, randomPlan(22, 50, 8 * MiB, 16), 8)
    const h = c.host('esx1')
    await h.setPolicy('vm1', disk, null)
    const report = await h.deactivate(CDP_ID)
    assert.ok(report)
    assert.equal(report.timedOut, false)
    assert.ok(report.ms < 5000, `stop took ${report.ms} ms`)
    assert.deepEqual(report.resources, [])
    assert.equal(vm.faults.length, 0, JSON.stringify(vm.faults))
  })
})
