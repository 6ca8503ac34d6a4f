import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chainRank, type Cluster } from '../harness/framework/index.js'
import type { FilterClass } from '../harness/sdk/index.js'
import { bytes, testFilter, testModuleUrl, withCluster } from './helpers/cluster.js'

const CLASSES: FilterClass[] = ['replication', 'cache', 'encryption', 'datastoreIoControl', 'inspection', 'compression', 'dataProvider', 'dataCapture']
const CAP: Record<FilterClass, string> = {
  replication: 'REPLICATION', cache: 'CACHE', encryption: 'ENCRYPTION', datastoreIoControl: 'DATASTOREIOCONTROL',
  inspection: 'INSPECTION', compression: 'COMPRESSION', dataProvider: 'DATAPROVIDER', dataCapture: 'DATACAPTURE',
}
const DISK = 'vm1-disk0'

async function installTracers(c: Cluster): Promise<void> {
  for (const cls of CLASSES) await c.installModule(testFilter(`tracer-${cls}`), { allowReserved: true })
}

async function takeTrace(c: Cluster): Promise<string[]> {
  return c.vm('vm1').runInWorker<string[]>(DISK, testModuleUrl('read-trace'), null)
}

test('every class combination runs start top-down and done bottom-up in the ABI chain order', async () => {
  await withCluster({ ioTimeoutMs: 5000 }, async c => {
    await installTracers(c)
    const h = c.host('esx1')
    const vm = h.createVm('vm1')
    await h.addDisk('vm1', { capacity: 1 << 20 })
    await vm.powerOn()
    let combos = 0
    for (let mask = 1; mask < 1 << CLASSES.length; mask++) {
      const chosen = CLASSES.filter((_, i) => mask & (1 << i))
      for (const clear of chosen.includes('encryption') ? [false, true] : [false]) {
        const name = `p${mask}${clear ? 'c' : ''}`
        c.createPolicy({ name, allowCleartextFilters: clear, rules: chosen.map(cls => ({ filter: `t-${cls.toLowerCase()}@${CAP[cls]}` })) })
        await h.setPolicy('vm1', DISK, name)
        await takeTrace(c)
        await vm.write(DISK, 0, bytes(mask, 512))
        const got = (await takeTrace(c)).filter(l => l.startsWith('start') || l.startsWith('done'))
        const order = [...chosen].sort((a, b) => chainRank(a, clear) - chainRank(b, clear))
        const want = [...order.map(cls => `start ${cls} write`), ...[...order].reverse().map(cls => `done ${cls} write ok`)]
        assert.deepEqual(got, want, `classes ${chosen.join(',')} cleartext=${clear}`)
        combos++
      }
    }
    assert.equal(combos, 255 + 128)
  })
})

test('encryption sits first by default and after dataProvider with allowCleartextFilters', () => {
  assert.equal(chainRank('encryption', false) < chainRank('inspection', false), true)
  assert.equal(chainRank('encryption', true) > chainRank('dataProvider', true), true)
  assert.equal(chainRank('encryption', true) < chainRank('datastoreIoControl', true), true)
})

test('a read completed by a filter never reaches the disk and done runs only above it', async () => {
  await withCluster({ ioTimeoutMs: 5000 }, async c => {
    await installTracers(c)
    const h = c.host('esx1')
    c.createPolicy({ name: 'p', rules: [
      { filter: 't-replication@REPLICATION' },
      { filter: 't-cache@CACHE', params: { completeReadsAt: 8192 } },
      { filter: 't-datacapture@DATACAPTURE' },
    ] })
    const vm = h.createVm('vm1')
    await h.addDisk('vm1', { capacity: 1 << 20, policy: 'p' })
    await vm.powerOn()
    await takeTrace(c)
    const before = await vm.driveStats(DISK)
    const data = await vm.read(DISK, 8192, 4096)
    assert.equal(data[0], 0xcc)
    const after = await vm.driveStats(DISK)
    assert.equal(after.reads, before.reads, 'the completed read reached the drive')
    assert.deepEqual((await takeTrace(c)).filter(l => !l.startsWith('open')), [
      'start replication read', 'start cache read', 'done replication read ok',
    ])
  })
})

test('a bad request fails with EINVAL before any filter sees it', async () => {
  await withCluster({ ioTimeoutMs: 5000 }, async c => {
    await installTracers(c)
    const h = c.host('esx1')
    c.createPolicy({ name: 'p', rules: [{ filter: 't-cache@CACHE' }] })
    const vm = h.createVm('vm1')
    await h.addDisk('vm1', { capacity: 1 << 20, policy: 'p' })
    await vm.powerOn()
    await takeTrace(c)
    const bad = [
      { op: 'read' as const, offset: 100, length: 512 },
      { op: 'read' as const, offset: 0, length: 100 },
      { op: 'write' as const, offset: (1 << 20) - 512, data: new Uint8Array(1024) },
      { op: 'unmap' as const, offset: 1 << 20, length: 512 },
      { op: 'read' as const, offset: -512, length: 512 },
      { op: 'read' as const, offset: 0, length: 0 },
    ]
    for (const io of bad) {
      const r = await vm.submit(DISK, io)
      assert.equal(r.ok, false)
      assert.equal(!r.ok && r.error, 'EINVAL', JSON.stringify(io))
    }
    assert.deepEqual(await takeTrace(c), [])
  })
})

test('unmap discards the range: later reads return zeros', async () => {
  await withCluster({ ioTimeoutMs: 5000 }, async c => {
    const h = c.host('esx1')
    const vm = h.createVm('vm1')
    await h.addDisk('vm1', { capacity: 1 << 20 })
    await vm.powerOn()
    await vm.write(DISK, 0, bytes(1, 16384))
    await vm.unmap(DISK, 4096, 4096 + 512)
    const r = await vm.read(DISK, 0, 16384)
    assert.deepEqual(r.subarray(0, 4096), bytes(1, 16384).subarray(0, 4096))
    assert.ok(r.subarray(4096, 8704).every(b => b === 0))
    assert.deepEqual(r.subarray(8704), bytes(1, 16384).subarray(8704))
  })
})
