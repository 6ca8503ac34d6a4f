import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { isIofError } from '../harness/framework/index.js'
import { bytes, referenceFilter, testFilter, until, withCluster } from './helpers/cluster.js'

const MiB = 1 << 20

test('instances reach their daemon in send order; the daemon ships writes to the recovery site', async () => {
  await withCluster({}, async c => {
    const h = c.host('esx1')
    await c.installModule(testFilter('daemon-echo'))
    assert.ok(h.daemons.has('TEST_echo_1.0.0'), 'daemon not started at install')
    c.createPolicy({ name: 'rep', rules: [{ filter: 'echo@REPLICATION', params: { site: 'dr' } }] })
    const vm = h.createVm('vm1')
    await h.addDisk('vm1', { id: 'd1', capacity: 16 * MiB, policy: 'rep' })
    await h.addDisk('vm1', { id: 'd2', capacity: 16 * MiB, policy: 'rep' })
    await vm.powerOn()
    for (let i = 0; i < 50; i++) {
      await vm.write('d1', i * 4096, bytes(i, 4096))
      await vm.write('d2', i * 4096, bytes(1000 + i, 4096))
    }
    const site = c.site('dr')!
    await until(() => site.arrivals('d1').length === 50 && site.arrivals('d2').length === 50, 5000, 'replica writes')
    assert.deepEqual(site.arrivals('d1').map(a => a.offset), Array.from({ length: 50 }, (_, i) => i * 4096))
    assert.deepEqual(Buffer.from(site.read("d2", 0, 50 * 4096)), Buffer.concat(Array.from({ length: 50 }, (_, i) => bytes(1000 + i, 4096))))
    // requests are answered; a daemon that throws rejects the request without harm
    await until(() => vm.logs.some(l => l.msg === 'boom rejected'), 2000, 'log')
    assert.deepEqual(vm.logs.find(l => l.msg === 'connect')?.data, { r: 'connected' })
    assert.match(String((vm.logs.find(l => l.msg === 'boom rejected')?.data as { message: string }).message), /daemon refuses/)
  })
})

/** Powers on a VM with one disk under the daemon-echo filter and returns what its instance logged as `msg` at open. */
async function echoDiskLog(c: Parameters<Parameters<typeof withCluster>[1]>[0], disk: string, msg: string): Promise<unknown> {
  const h = c.host('esx1')
  await c.installModule(testFilter('daemon-echo'))
  c.createPolicy({ name: 'rep', rules: [{ filter: 'echo@REPLICATION', params: { site: 'dr' } }] })
  const vm = h.createVm('vm1')
  await h.addDisk('vm1', { id: disk, capacity: 16 * MiB, policy: 'rep' })
  await vm.powerOn()
  await until(() => vm.logs.some(l => l.msg === msg), 5000, `the ${msg} log line`)
  return vm.logs.find(l => l.msg === msg)?.data
}

test('a replica target keeps the bytes a daemon gave it as write() was called, whatever the array claims or becomes', async () => {
  await withCluster({}, async c => {
    assert.deepEqual(await echoDiskLog(c, 'tamper1', 'tamper'), { r: 'written' })
    const site = c.site('dr')!
    // the array's own 4096 bytes of 7s, not its claimed length and not what it held afterwards
    assert.deepEqual(site.arrivals('tamper1').map(a => a.length), [4096])
    assert.deepEqual(Buffer.from(site.read('tamper1', 0, 4096)), Buffer.alloc(4096, 7))
  })
})

test('a replica target never applies a write called before an earlier one failed: writes may be kept in flight', async () => {
  await withCluster({}, async c => {
    // the bad write fails; the good one called before that failure was seen is not applied;
    // the one called after it is
    assert.deepEqual(await echoDiskLog(c, 'pipeline1', 'pipeline'), { r: ['EINVAL', 'ECANCELED', 'ok'] })
    const site = c.site('dr')!
    assert.deepEqual(site.arrivals('pipeline1').map(a => a.offset), [4096])
    assert.deepEqual(Buffer.from(site.read('pipeline1', 0, 8192)), Buffer.concat([Buffer.alloc(4096), Buffer.alloc(4096, 6)]))
  })
})

test('a site write stream: a write failing late on a slow link cancels the writes called after it, until its failure is seen', async () => {
  await withCluster({}, async c => {
    const site = c.site('dr')!
    const state = { failed: 0 }
    site.setFault('y', { slowMs: 20, error: 'EIO' })
    const p1 = site.write('y', 0, new Uint8Array(512).fill(1), { seen: 0, state })
    // the link heals before the first write's failure arrives: the second must still not apply
    site.setFault('y', null)
    const p2 = site.write('y', 512, new Uint8Array(512).fill(2), { seen: 0, state })
    await assert.rejects(p1, /EIO/)
    await assert.rejects(p2, /ECANCELED/)
    assert.equal(site.arrivals('y').length, 0)
    await site.write('y', 512, new Uint8Array(512).fill(3), { seen: state.failed, state })
    assert.deepEqual(site.arrivals('y').map(a => a.offset), [512])
    assert.equal(site.read('y', 512, 1)[0], 3)
  })
})

test('a down site rejects promptly with ENODEV; a slow site keeps write order', async () => {
  await withCluster({}, async c => {
    const site = c.site('dr')!
    site.setFault('x', { down: true })
    const t0 = Date.now()
    await assert.rejects(site.write('x', 0, new Uint8Array(512)), /ENODEV/)
    assert.ok(Date.now() - t0 < 50)
    site.setFault('x', { slowMs: 30 })
    const p1 = site.write('x', 0, new Uint8Array(512).fill(1))
    site.setFault('x', { slowMs: 1 })
    const p2 = site.write('x', 0, new Uint8Array(512).fill(2))
    await Promise.all([p1, p2])
    assert.equal(site.read('x', 0, 1)[0], 2)
    assert.deepEqual(site.arrivals('x').map(a => a.hash), [site.arrivals('x')[0]!.hash, site.arrivals('x')[1]!.hash])
  })
})

test('uninstall stops the daemon and measures the handles it leaves', async () => {
  await withCluster({ daemonStopMs: 500 }, async c => {
    const h = c.host('esx1')
    await c.installModule(testFilter('daemon-echo'))
    const report = await h.deactivate('TEST_echo_1.0.0')
    assert.ok(report)
    assert.equal(report.timedOut, false)
    assert.deepEqual(report.resources, [])
    // a daemon whose store says so leaves an interval running
    fs.mkdirSync(path.join(h.dir, 'stores'), { recursive: true })
    await c.installModule(testFilter('daemon-echo'))
    await h.deactivate('TEST_echo_1.0.0')
    fs.writeFileSync(path.join(h.dir, 'stores', 'echo.store'), 'leak')
    await h.activate(await c.describeModule(testFilter('daemon-echo')))
    const leaky = await h.deactivate('TEST_echo_1.0.0')
    assert.ok(leaky!.resources.includes('Timeout'), `resources: ${leaky!.resources}`)
  })
})

test('uninstall is refused with FilterInUse naming the disks', async () => {
  await withCluster({}, async c => {
    const h = c.host('esx1')
    await c.installModule(referenceFilter('passthrough'))
    c.createPolicy({ name: 'p', rules: [{ filter: 'passthrough@CACHE' }] })
    const vm = h.createVm('vm1')
    await h.addDisk('vm1', { id: 'disk-a', capacity: MiB, policy: 'p' })
    await assert.rejects(h.deactivate('IOFCERT_passthrough_1.0.0'), (e: unknown) => isIofError(e, 'FilterInUse') && /disk-a/.test((e as Error).message))
    await h.setPolicy('vm1', 'disk-a', null)
    await h.deactivate('IOFCERT_passthrough_1.0.0')
    void vm
  })
})

test('policies: defaults filled, parameters validated, one filter per class, installed filters only', async () => {
  await withCluster({}, async c => {
    const h = c.host('esx1')
    await c.installModule(testFilter('daemon-echo'))
    await c.installModule(referenceFilter('passthrough'))
    const vm = h.createVm('vm1')
    await h.addDisk('vm1', { id: 'd', capacity: MiB })
    c.createPolicy({ name: 'ok', rules: [{ filter: 'echo@REPLICATION' }, { filter: 'spm@DATASTOREIOCONTROL', params: { limitIops: 100 } }] })
    await h.setPolicy('vm1', 'd', 'ok')
    const rules = vm.disks.get('d')!.rules
    assert.deepEqual(rules.map(r => r.info.id), ['TEST_echo_1.0.0', 'VMW_spm_1.0.0'])
    assert.deepEqual(rules[0]!.params, { site: 'dr', rpoSeconds: 15 })
    assert.deepEqual(rules[1]!.params, { limitIops: 100, reservationIops: 0, shares: 1000 })
    const refusals: [object, string][] = [
      [{ name: 'a', rules: [{ filter: 'echo@REPLICATION', params: { rpoSeconds: 1 } }] }, 'PolicyParamsInvalid'],
      [{ name: 'b', rules: [{ filter: 'nope@CACHE' }] }, 'FilterNotInstalled'],
      [{ name: 'c', rules: [{ filter: 'passthrough@CACHE' }, { filter: 'passthrough@CACHE' }] }, 'PolicyClassConflict'],
      [{ name: 'd', rules: [{ filter: 'passthrough' }] }, 'PolicyInvalid'],
      [{ name: 'e', rules: [{ filter: 'passthrough@REPLICATION' }] }, 'FilterNotInstalled'],
      [{ name: 'f', rules: [{ filter: 'passthrough@CACHE', params: { x: 1 } }] }, 'PolicyParamsInvalid'],
    ]
    for (const [p, code] of refusals) {
      c.createPolicy(p as never)
      await assert.rejects(h.setPolicy('vm1', 'd', (p as { name: string }).name), (e: unknown) => isIofError(e, code), code)
      assert.deepEqual(vm.disks.get('d')!.rules.map(r => r.info.id), ['TEST_echo_1.0.0', 'VMW_spm_1.0.0'], 'a refused policy changed the disk')
    }
  })
})

test('a second filter of an installed class is refused on the host with FilterClassConflict', async () => {
  await withCluster({}, async c => {
    await c.installModule(referenceFilter('passthrough'))
    await assert.rejects(c.installModule(testFilter('tracer-cache')), (e: unknown) => isIofError(e, 'FilterClassConflict') && /IOFCERT_passthrough_1\.0\.0/.test((e as Error).message))
  })
  // with per-disk exclusivity both install
  await withCluster({ classExclusivity: 'disk' }, async c => {
    await c.installModule(referenceFilter('passthrough'))
    await c.installModule(testFilter('tracer-cache'))
  })
})

test('sidecars survive power cycles and reboots and are deleted after detach', async () => {
  await withCluster({}, async c => {
    const h = c.host('esx1')
    c.createPolicy({ name: 'enc', rules: [{ filter: 'vmwarevmcrypt@ENCRYPTION' }] })
    const vm = h.createVm('vm1')
    await h.addDisk('vm1', { id: 'd', capacity: MiB, policy: 'enc', backing: 'file' })
    const sc = c.sidecarPath('d', 'vmwarevmcrypt')
    assert.ok(fs.existsSync(sc), 'attach wrote no sidecar')
    const key = fs.readFileSync(sc)
    await vm.powerOn()
    await vm.write('d', 0, bytes(3, 4096))
    const h2 = await c.rebootHost('esx1', { powerOnVms: true })
    const vm2 = h2.vm('vm1')
    assert.deepEqual(fs.readFileSync(sc), key)
    assert.deepEqual(await vm2.read('d', 0, 4096), bytes(3, 4096))
    await h2.setPolicy('vm1', 'd', null)
    assert.equal(fs.existsSync(sc), false, 'sidecar left after detach')
  })
})

test('the built-in spm limits a disk to its IOPS limit', async () => {
  await withCluster({}, async c => {
    const h = c.host('esx1')
    c.createPolicy({ name: 'lim', rules: [{ filter: 'spm@DATASTOREIOCONTROL', params: { limitIops: 200 } }] })
    const vm = h.createVm('vm1')
    await h.addDisk('vm1', { id: 'd', capacity: MiB, policy: 'lim' })
    await vm.powerOn()
    const t0 = performance.now()
    const r = await vm.runIos('d', Array.from({ length: 100 }, (_, i) => ({ op: 'read' as const, offset: (i % 100) * 4096, length: 4096 })), 16)
    const s = (performance.now() - t0) / 1000
    assert.equal(r.filter(x => !x.ok).length, 0)
    // 100 I/Os at 200 IOPS with a burst of 20: at least 0.4 s
    assert.ok(s >= 0.35, `took ${s.toFixed(3)} s`)
  })
})

test('migration closes instances with migrate and reopens them on the other host with their sidecars', async () => {
  await withCluster({}, async c => {
    await c.addHost('esx2')
    c.createPolicy({ name: 'enc', rules: [{ filter: 'vmwarevmcrypt@ENCRYPTION' }] })
    const h = c.host('esx1')
    const vm = h.createVm('vm1')
    await h.addDisk('vm1', { id: 'd', capacity: MiB, policy: 'enc' })
    await vm.powerOn()
    await vm.write('d', 0, bytes(8, 4096))
    const moved = await c.migrateVm('vm1', 'esx2')
    assert.equal(c.hostOf('vm1').name, 'esx2')
    assert.equal(moved.state, 'on')
    assert.deepEqual(await moved.read('d', 0, 4096), bytes(8, 4096))
    assert.equal(moved.lastPowerOff?.reason, 'migrate')
  })
})
