import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Cluster, Vm } from '../harness/framework/index.js'
import { bytes, passthroughVm, referenceFilter, testFilter, withCluster } from './helpers/cluster.js'

const MiB = 1 << 20

/** A verified workload: seeded writes then read-back, keeping 8 in flight; returns error count. */
async function verifiedWorkload(vm: Vm, disk: string, seed: number, count = 400): Promise<number> {
  const ios = Array.from({ length: count }, (_, i) => ({ op: 'write' as const, offset: i * 4096, data: bytes(seed + i, 4096) }))
  let errors = (await vm.runIos(disk, ios, 8)).filter(r => !r.ok).length
  const reads = await vm.runIos(disk, ios.map(io => ({ op: 'read' as const, offset: io.offset, length: 4096 })), 8)
  reads.forEach((r, i) => {
    if (!r.ok || !Buffer.from(r.data!).equals(Buffer.from(ios[i]!.data))) errors++
  })
  return errors
}

async function twoVms(c: Cluster, faultyModule: string): Promise<{ a: Vm; b: Vm }> {
  const h = c.host('esx1')
  await c.installModule(testFilter(faultyModule))
  await c.installModule(referenceFilter('passthrough'))
  c.createPolicy({ name: 'bad', rules: [{ filter: `${faultyModule}@CACHE` }] })
  c.createPolicy({ name: 'good', rules: [{ filter: 'passthrough@CACHE' }] })
  const a = h.createVm('vmA')
  const b = h.createVm('vmB')
  await h.addDisk('vmA', { id: 'a0', capacity: 8 * MiB, policy: 'bad' })
  await h.addDisk('vmB', { id: 'b0', capacity: 8 * MiB, policy: 'good' })
  await a.powerOn()
  await b.powerOn()
  return { a, b }
}

const cases: { mode: string; error: string; poweredOff: boolean; kind: string }[] = [
  { mode: 'throw', error: 'EIO', poweredOff: false, kind: 'throw' },
  { mode: 'reject', error: 'EIO', poweredOff: false, kind: 'reject' },
  { mode: 'done-throw', error: 'EIO', poweredOff: false, kind: 'throw' },
  { mode: 'bad-decision', error: 'EIO', poweredOff: false, kind: 'invalid-decision' },
  { mode: 'replace', error: 'EIO', poweredOff: false, kind: 'violation' },
  { mode: 'hang', error: 'ETIMEDOUT', poweredOff: false, kind: 'timeout' },
  { mode: 'loop', error: 'ETIMEDOUT', poweredOff: true, kind: 'hang' },
  { mode: 'exit', error: 'EIO', poweredOff: true, kind: 'crash' },
]

for (const k of cases) {
  test(`a filter that faults by "${k.mode}" fails only its own VM's I/O with ${k.error}`, async () => {
    await withCluster({ ioTimeoutMs: 1500, classExclusivity: 'disk' }, async c => {
      const { a, b } = await twoVms(c, `faulty-${k.mode}`)
      // the fault trips on writes at or beyond 1 MiB; below that the disk serves normally
      await a.write('a0', 0, bytes(1, 4096))
      const [bad, bErrors] = await Promise.all([
        a.submit('a0', { op: 'write', offset: 2 * MiB, data: bytes(2, 4096) }),
        verifiedWorkload(b, 'b0', 99),
      ])
      assert.equal(bad.ok, false)
      assert.equal(!bad.ok && bad.error, k.error)
      assert.equal(bErrors, 0, 'VM B saw errors')
      assert.equal(b.state, 'on')
      assert.equal(a.state === 'off', k.poweredOff, `VM A state ${a.state}`)
      const f = a.faults.find(x => x.kind === k.kind)
      assert.ok(f, `no ${k.kind} fault recorded: ${JSON.stringify(a.faults)}`)
      if (!k.poweredOff) {
        assert.equal(f.filter, `TEST_faulty-${k.mode}_1.0.0`)
        assert.equal(f.io?.offset, 2 * MiB)
        // the disk keeps serving
        assert.deepEqual(await a.read('a0', 0, 4096), bytes(1, 4096))
      } else {
        // the VM powers on again and its disk is intact
        await a.powerOn()
        assert.deepEqual(await a.read('a0', 0, 4096), bytes(1, 4096))
      }
      assert.equal(b.faults.length, 0)
    })
  })
}

test('a worker killed mid-I/O powers off only its VM and fails its in-flight I/O', async () => {
  await withCluster({ ioTimeoutMs: 3000 }, async c => {
    const h = c.host('esx1')
    await c.installModule(referenceFilter('passthrough'))
    c.createPolicy({ name: 'good', rules: [{ filter: 'passthrough@CACHE' }] })
    const a = h.createVm('vmA')
    const b = h.createVm('vmB')
    await h.addDisk('vmA', { id: 'a0', capacity: 8 * MiB, policy: 'good' })
    await h.addDisk('vmB', { id: 'b0', capacity: 8 * MiB, policy: 'good' })
    await a.powerOn()
    await b.powerOn()
    await a.write('a0', 0, bytes(5, 4096))
    await a.flush('a0')
    const inflight = a.runIos('a0', Array.from({ length: 2000 }, (_, i) => ({ op: 'write' as const, offset: (i % 100) * 4096 + 8192, data: bytes(i, 4096) })), 32)
    const bWork = verifiedWorkload(b, 'b0', 7)
    await new Promise(r => setTimeout(r, 20))
    await a.crash()
    const results = await inflight
    assert.ok(results.some(r => !r.ok), 'no in-flight I/O failed')
    assert.equal(await bWork, 0)
    assert.equal(a.state, 'off')
    assert.ok(a.lastPowerOff?.reason === 'exit' || a.lastPowerOff?.reason === 'crash')
    await a.powerOn()
    assert.deepEqual(await a.read('a0', 0, 4096), bytes(5, 4096))
  })
})

test('a stall of the main thread longer than the I/O timeout does not read as a hung worker (the worker answered in time)', async () => {
  await withCluster({ ioTimeoutMs: 300 }, async c => {
    const a = await passthroughVm(c, 'vmA', 'a0', 8 * MiB)
    const stall = () => {
      const until = performance.now() + 1200
      while (performance.now() < until) { /* busy */ }
    }
    for (let round = 0; round < 3; round++) {
      const io = a.submit('a0', { op: 'write', offset: round * 4096, data: bytes(round, 4096) })
      // the main thread is busy (a collection, a loaded machine) for 4× the timeout while the
      // worker's answer waits in its queue; a stall that ends in the loop's check phase is followed
      // by the timers, which run before the answer is read
      await new Promise<void>(resolve => setImmediate(() => { stall(); resolve() }))
      const r = await io
      assert.equal(r.ok, true, `round ${round}: ${JSON.stringify(r)}`)
      assert.equal(a.state, 'on', `round ${round}: ${JSON.stringify(a.lastPowerOff)}`)
    }
    assert.deepEqual(a.faults, [])
    assert.deepEqual(await a.read('a0', 4096, 4096), bytes(1, 4096))
  })
})

test('a filter that leaks until its worker runs out of heap powers off only its VM', async () => {
  await withCluster({ ioTimeoutMs: 5000, classExclusivity: 'disk', heapMb: 64 }, async c => {
    const { a, b } = await twoVms(c, 'faulty-leak')
    const writes = Array.from({ length: 4000 }, (_, i) => ({ op: 'write' as const, offset: (i % 256) * 4096, data: bytes(i, 4096) }))
    const [results, bErrors] = await Promise.all([a.runIos('a0', writes, 16), verifiedWorkload(b, 'b0', 3)])
    assert.ok(results.some(r => !r.ok), 'the leaking VM never failed')
    assert.equal(a.state, 'off')
    assert.ok(a.faults.some(f => f.kind === 'oom' || f.kind === 'crash'), JSON.stringify(a.faults.slice(0, 3)))
    assert.equal(bErrors, 0)
    assert.equal(b.state, 'on')
  })
})
