import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import type { Cluster } from '../harness/framework/cluster.js'
import { isIofError } from '../harness/framework/errors.js'
import { Lifecycle, type HostOutcome, type OperationResult } from '../harness/framework/lifecycle.js'
import { bytes } from './helpers/cluster.js'
import { makePackage, sidecarLines, testKey, trustingCluster, type TestKey } from './lifecycle-fixtures.js'
import { scratch, type Scratch } from './package-fixtures.js'

let s: Scratch
let key: TestKey
beforeEach(async () => {
  s = await scratch()
  key = await testKey(join(s.dir, 'key'))
})
afterEach(async () => { await s.cleanup() })

async function withCluster<T>(fn: (c: Cluster, lc: Lifecycle) => Promise<T>, n = 3): Promise<T> {
  const c = await trustingCluster(key, n)
  try {
    return await fn(c, await Lifecycle.open(c))
  } finally {
    await c.shutdown({ remove: true })
  }
}

function states(r: OperationResult): string[] {
  return r.hosts.map(h => `${h.host} ${h.state}${h.state === 'failed' ? ` ${h.issue.issue}` : ''}`)
}

function failure(r: OperationResult, host: string): Extract<HostOutcome, { state: 'failed' }>['issue'] {
  const o = r.hosts.find(h => h.host === host)
  assert.ok(o?.state === 'failed', `${host} should have failed: ${JSON.stringify(o)}`)
  return o.issue
}

/** Every file under `dir`, relative. */
function tree(dir: string): string[] {
  const out: string[] = []
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n)
      if (statSync(p).isDirectory()) walk(p)
      else out.push(relative(dir, p))
    }
  }
  walk(dir)
  return out.sort()
}

describe('upgrade', () => {
  it('upgrades under guest I/O: instances close with upgrade, reopen under the new version with their sidecar, and no I/O fails', async () => {
    const v1 = await makePackage(s, { key, daemon: true })
    const v2 = await makePackage(s, { key, daemon: true, version: '1.1.0' })
    await withCluster(async (c, lc) => {
      assert.equal((await lc.install(v1.tgz)).ok, true)
      c.createPolicy({ name: 'protect', rules: [{ filter: 'cdp@REPLICATION' }] })
      const h = c.host('esx1')
      h.createVm('vm1')
      await h.addDisk('vm1', { id: 'd1', capacity: 8 << 20, policy: 'protect' })
      const vm = h.vm('vm1')
      await vm.powerOn()

      // four lanes write their own blocks and read each back, until told to stop
      const block = 4096
      const blocks = (8 << 20) / block
      const written = new Map<number, Uint8Array>()
      const problems: string[] = []
      let ios = 0
      let stop = false
      const lane = async (k: number) => {
        for (let i = 0; !stop; i++) {
          const offset = ((k + 4 * i) % blocks) * block
          const data = bytes(k * 1_000_000 + i, block)
          const w = await vm.submit('d1', { op: 'write', offset, data })
          if (!w.ok) problems.push(`write ${offset}: ${w.error}`)
          else written.set(offset, data)
          const r = await vm.submit('d1', { op: 'read', offset, length: block })
          if (!r.ok) problems.push(`read ${offset}: ${r.error}`)
          else if (Buffer.compare(Buffer.from(r.data!), Buffer.from(data)) !== 0) problems.push(`read ${offset}: data differs`)
          ios += 2
        }
      }
      const lanes = [0, 1, 2, 3].map(lane)
      const waitFor = async (n: number) => { while (ios < n) await new Promise(r => setTimeout(r, 5)) }
      await waitFor(40)
      const up = await lc.upgrade('ACME_cdp_1.0.0', v2.tgz)
      const after = ios
      await waitFor(after + 40)
      stop = true
      await Promise.all(lanes)

      assert.deepEqual(states(up), ['esx1 done', 'esx2 done', 'esx3 done'])
      assert.deepEqual(problems, [], 'every guest I/O completed, and read back what was written')
      for (const [offset, data] of written) assert.deepEqual(await vm.read('d1', offset, block), data, `block at ${offset}`)
      assert.deepEqual(sidecarLines(c, 'd1', 'cdp'), ['open 1.0.0', 'close 1.0.0 upgrade', 'open 1.1.0'], 'the sidecar was kept across the upgrade')
      const log = readFileSync(v1.log, 'utf8') + readFileSync(v2.log, 'utf8')
      for (const host of ['esx1', 'esx2', 'esx3']) {
        assert.match(log, new RegExp(`stop 1\\.0\\.0 ${host}`), `old daemon stopped on ${host}`)
        assert.match(log, new RegExp(`start 1\\.1\\.0 ${host}`), `new daemon started on ${host}`)
        const hh = c.host(host)
        assert.deepEqual([...hh.filters.keys()], ['ACME_cdp_1.1.0'])
        assert.deepEqual(readdirSync(join(hh.dir, 'filters')), ['ACME_cdp_1.1.0'], 'the old version\'s files are gone')
      }
      const q = lc.query()
      assert.deepEqual(q.map(f => [f.id, f.version, f.operation, f.url]), [['ACME_cdp_1.1.0', '1.1.0', 'upgrade', v2.tgz]])
      assert.deepEqual(q[0]?.hosts.map(x => [x.status, x.available, x.installedId]), [['INSTALLED', true, 'ACME_cdp_1.1.0'], ['INSTALLED', true, 'ACME_cdp_1.1.0'], ['INSTALLED', true, 'ACME_cdp_1.1.0']])

      // idempotent, by the new id or the old one
      for (const id of ['ACME_cdp_1.1.0', 'ACME_cdp_1.0.0']) {
        const again = await lc.upgrade(id, v2.tgz)
        assert.deepEqual(states(again), ['esx1 unchanged', 'esx2 unchanged', 'esx3 unchanged'])
      }
      assert.deepEqual(sidecarLines(c, 'd1', 'cdp'), ['open 1.0.0', 'close 1.0.0 upgrade', 'open 1.1.0'], 'an upgrade with nothing to do closes nothing')
    })
  })

  it('an upgrade that needs maintenance mode cannot proceed on a host with a powered-on VM; resolve finishes it', async () => {
    const v1 = await makePackage(s, { key })
    const v2 = await makePackage(s, { key, version: '1.1.0', upgrade: { maintenanceMode: true, reboot: false } })
    await withCluster(async (c, lc) => {
      await lc.install(v1.tgz)
      c.createPolicy({ name: 'protect', rules: [{ filter: 'cdp@REPLICATION' }] })
      const h = c.host('esx1')
      h.createVm('vm1')
      await h.addDisk('vm1', { id: 'd1', capacity: 1 << 20, policy: 'protect' })
      await h.vm('vm1').powerOn()
      const before = readFileSync(h.stateFile, 'utf8')

      const r = await lc.upgrade('ACME_cdp_1.0.0', v2.tgz)
      assert.deepEqual(states(r), ['esx1 failed VibCannotPutHostInMaintenanceMode', 'esx2 done', 'esx3 done'])
      assert.deepEqual(failure(r, 'esx1').details.vms, ['vm1'])
      assert.equal(readFileSync(h.stateFile, 'utf8'), before, 'esx1 unchanged')
      assert.deepEqual(sidecarLines(c, 'd1', 'cdp'), ['open 1.0.0'], 'its instance was never closed')
      assert.deepEqual(lc.query()[0]?.hosts.map(x => [x.host, x.status, x.installedId, x.available]), [
        ['esx1', 'INSTALL_ERROR', 'ACME_cdp_1.0.0', true],
        ['esx2', 'INSTALLED', 'ACME_cdp_1.1.0', true],
        ['esx3', 'INSTALLED', 'ACME_cdp_1.1.0', true],
      ])
      assert.deepEqual(lc.issues().map(i => [i.host, i.issue, i.filterId, i.operation]), [['esx1', 'VibCannotPutHostInMaintenanceMode', 'ACME_cdp_1.1.0', 'upgrade']])

      await h.vm('vm1').powerOff()
      assert.deepEqual(states(await lc.resolveInstallationErrors('ACME_cdp_1.1.0')), ['esx1 done'])
      assert.deepEqual([...h.filters.keys()], ['ACME_cdp_1.1.0'])
      assert.equal(h.maintenance, false)
      await h.vm('vm1').powerOn()
      assert.deepEqual(sidecarLines(c, 'd1', 'cdp'), ['open 1.0.0', 'close 1.0.0 power-off', 'open 1.1.0'])
      assert.deepEqual(lc.issues(), [])
    })
  })

  it('an upgrade whose new version fails to open puts the old version back on that host, guest data intact', async () => {
    const v1 = await makePackage(s, { key, daemon: true })
    const v2 = await makePackage(s, { key, daemon: true, version: '1.1.0', module: { open: "async () => { throw new Error('1.1.0 refuses to open') }" } })
    await withCluster(async (c, lc) => {
      await lc.install(v1.tgz)
      c.createPolicy({ name: 'protect', rules: [{ filter: 'cdp@REPLICATION' }] })
      const h = c.host('esx1')
      h.createVm('vm1')
      await h.addDisk('vm1', { id: 'd1', capacity: 1 << 20, policy: 'protect' })
      const vm = h.vm('vm1')
      await vm.powerOn()
      const data = bytes(7, 4096)
      await vm.write('d1', 0, data)

      const r = await lc.upgrade('ACME_cdp_1.0.0', v2.tgz)
      assert.deepEqual(states(r), ['esx1 failed HostOperationFailed', 'esx2 done'])
      assert.equal(failure(r, 'esx1').details.code, 'OpenFailed')
      assert.match(failure(r, 'esx1').message, /1\.1\.0 refuses to open/)
      assert.deepEqual([...h.filters.keys()], ['ACME_cdp_1.0.0'])
      assert.equal(h.filters.get('ACME_cdp_1.0.0')?.status, 'INSTALLED')
      assert.deepEqual([...h.daemons.keys()], ['ACME_cdp_1.0.0'])
      assert.deepEqual(readdirSync(join(h.dir, 'filters')), ['ACME_cdp_1.0.0'], 'the new version\'s files are gone')
      assert.equal(vm.state, 'on')
      assert.deepEqual(sidecarLines(c, 'd1', 'cdp'), ['open 1.0.0', 'close 1.0.0 upgrade', 'open 1.0.0'])
      assert.deepEqual(await vm.read('d1', 0, 4096), data)
      assert.deepEqual(lc.query()[0]?.hosts.map(x => [x.host, x.status, x.installedId]), [['esx1', 'INSTALL_ERROR', 'ACME_cdp_1.0.0'], ['esx2', 'INSTALLED', 'ACME_cdp_1.1.0']])
    }, 2)
  })

  it('an upgrade that needs a reboot shows PENDING_REBOOT until the host reboots', async () => {
    const v1 = await makePackage(s, { key })
    const v2 = await makePackage(s, { key, version: '2.0.0', upgrade: { maintenanceMode: true, reboot: true } })
    await withCluster(async (c, lc) => {
      await lc.install(v1.tgz)
      const r = await lc.upgrade('ACME_cdp_1.0.0', v2.tgz)
      assert.deepEqual(r.hosts.map(x => (x.state === 'failed' ? x.issue.issue : x.status)), ['PENDING_REBOOT', 'PENDING_REBOOT'])
      assert.deepEqual(lc.issues().map(i => [i.host, i.issue, i.filterId]), [['esx1', 'VibRequiresHostReboot', 'ACME_cdp_2.0.0'], ['esx2', 'VibRequiresHostReboot', 'ACME_cdp_2.0.0']])
      await lc.rebootHost('esx2')
      assert.deepEqual(lc.query()[0]?.hosts.map(x => x.status), ['PENDING_REBOOT', 'INSTALLED'])
      assert.deepEqual(lc.issues().map(i => i.host), ['esx1'])
    }, 2)
  })

  it('refuses a package of another filter or a version that is not higher: UpgradeNotApplicable, hosts unchanged', async () => {
    const v1 = await makePackage(s, { key, version: '1.2.0' })
    const other = await makePackage(s, { key, name: 'mirror', version: '2.0.0' })
    const older = await makePackage(s, { key, version: '1.1.0' })
    await withCluster(async (c, lc) => {
      await lc.install(v1.tgz)
      const before = [...c.hosts.values()].map(h => readFileSync(h.stateFile, 'utf8'))
      for (const [pkg, reason] of [[other, /is ACME mirror, not ACME cdp/], [older, /version 1\.1\.0 is not higher than 1\.2\.0/]] as const) {
        const r = await lc.upgrade('ACME_cdp_1.2.0', pkg.tgz)
        for (const host of ['esx1', 'esx2', 'esx3']) {
          assert.equal(failure(r, host).issue, 'UpgradeNotApplicable')
          assert.match(failure(r, host).message, reason)
        }
        assert.equal(existsSync(pkg.marker), false)
      }
      assert.deepEqual([...c.hosts.values()].map(h => readFileSync(h.stateFile, 'utf8')), before)
      assert.deepEqual(lc.query().map(f => [f.id, f.operation]), [['ACME_cdp_1.2.0', 'install']])
      // the cluster is as asked, so resolving clears the refused request's issues
      assert.equal((await lc.resolveInstallationErrors('ACME_cdp_1.2.0')).ok, true)
      assert.deepEqual(lc.issues(), [])
      await assert.rejects(lc.upgrade('ACME_nothing_1.0.0', v1.tgz), (e: unknown) => isIofError(e, 'FilterNotFound') && e.exitCode === 2)
    })
  })
})

describe('upgrade refused by every host', () => {
  it('keeps the issue until resolve upgrades: resolve retries the upgrade, not the install it replaces', async () => {
    const v1 = await makePackage(s, { key })
    const other = await testKey(join(s.dir, 'other'))
    const v2 = await makePackage(s, { key: other, version: '1.1.0' })
    await withCluster(async (c, lc) => {
      assert.equal((await lc.install(v1.tgz)).ok, true)
      // no host trusts the key of the new version: no host reads a package that qualifies
      const up = await lc.upgrade('ACME_cdp_1.0.0', v2.tgz)
      assert.deepEqual(states(up), ['esx1 failed SignatureInvalid', 'esx2 failed SignatureInvalid'])
      const early = await lc.resolveInstallationErrors('ACME_cdp_1.0.0')
      assert.deepEqual(states(early), ['esx1 failed SignatureInvalid', 'esx2 failed SignatureInvalid'], 'the upgrade is retried, not dropped')
      assert.deepEqual(lc.issues().map(i => [i.host, i.issue, i.operation, i.url]), [['esx1', 'SignatureInvalid', 'upgrade', v2.tgz], ['esx2', 'SignatureInvalid', 'upgrade', v2.tgz]])

      for (const h of c.hosts.values()) h.trustedKeys = [...h.trustedKeys, other.fingerprint]
      const fixed = await lc.resolveInstallationErrors('ACME_cdp_1.0.0')
      assert.deepEqual(states(fixed), ['esx1 done', 'esx2 done'])
      assert.deepEqual(fixed.hosts.map(h => h.state === 'done' ? h.message : ''), ['ACME_cdp_1.1.0 upgraded from ACME_cdp_1.0.0', 'ACME_cdp_1.1.0 upgraded from ACME_cdp_1.0.0'])
      assert.deepEqual([...c.hosts.values()].map(h => [...h.filters.keys()].filter(id => id.startsWith('ACME'))), [['ACME_cdp_1.1.0'], ['ACME_cdp_1.1.0']])
      assert.deepEqual(lc.issues(), [])
    }, 2)
  })
})

describe('uninstall', () => {
  it('is refused with FilterInUse naming the disks on a host whose disks use the filter, before any host is changed', async () => {
    const cdp = await makePackage(s, { key })
    await withCluster(async (c, lc) => {
      await lc.install(cdp.tgz)
      c.createPolicy({ name: 'protect', rules: [{ filter: 'cdp@REPLICATION' }] })
      const h = c.host('esx2')
      h.createVm('vm1')
      await h.addDisk('vm1', { id: 'd1', capacity: 1 << 20, policy: 'protect' })
      await h.addDisk('vm1', { id: 'd2', capacity: 1 << 20, policy: 'protect' })
      const before = [...c.hosts.values()].map(x => readFileSync(x.stateFile, 'utf8'))

      const r = await lc.uninstall('ACME_cdp_1.0.0')
      assert.equal(r.ok, false)
      assert.equal(r.refused, true)
      assert.deepEqual(states(r), ['esx1 unchanged', 'esx2 failed FilterInUse', 'esx3 unchanged'])
      assert.deepEqual(failure(r, 'esx2').details, { disks: ['d1', 'd2'] })
      assert.deepEqual([...c.hosts.values()].map(x => readFileSync(x.stateFile, 'utf8')), before, 'no host changed')
      assert.deepEqual(lc.query().map(f => [f.operation, f.hosts.map(x => x.status)]), [['install', ['INSTALLED', 'INSTALLED', 'INSTALLED']]])
      assert.deepEqual(lc.issues(), [], 'a refusal before any change records no issue')

      for (const d of ['d1', 'd2']) await h.setPolicy('vm1', d, null)
      const again = await lc.uninstall('ACME_cdp_1.0.0')
      assert.equal(again.refused, false)
      assert.deepEqual(states(again), ['esx1 done', 'esx2 done', 'esx3 done'])
      assert.deepEqual(lc.query(), [], 'a filter gone from every host leaves the records')
      assert.deepEqual(lc.issues(), [])
    })
  })

  it('a host that cannot be put in maintenance mode refuses before any host is changed', async () => {
    const cdp = await makePackage(s, { key, daemon: true, uninstall: { maintenanceMode: true, reboot: false } })
    await withCluster(async (c, lc) => {
      await lc.install(cdp.tgz)
      const h = c.host('esx3')
      h.createVm('vm1')
      await h.vm('vm1').powerOn()
      const r = await lc.uninstall('ACME_cdp_1.0.0')
      assert.equal(r.refused, true)
      assert.deepEqual(states(r), ['esx1 unchanged', 'esx2 unchanged', 'esx3 failed VibCannotPutHostInMaintenanceMode'])
      assert.deepEqual(failure(r, 'esx3').details, { host: 'esx3', vms: ['vm1'] })
      for (const x of c.hosts.values()) {
        assert.equal(x.filters.get('ACME_cdp_1.0.0')?.status, 'INSTALLED', `${x.name} keeps the filter`)
        assert.equal(x.daemons.get('ACME_cdp_1.0.0')?.alive, true, `${x.name} keeps its daemon`)
        assert.equal(x.maintenance, false)
      }
      await h.vm('vm1').powerOff()
      assert.deepEqual(states(await lc.uninstall('ACME_cdp_1.0.0')), ['esx1 done', 'esx2 done', 'esx3 done'])
    })
  })

  it('stops the daemon and removes every file the install made; uninstalling again changes nothing', async () => {
    const cdp = await makePackage(s, { key, daemon: true, uninstall: { maintenanceMode: true, reboot: false } })
    await withCluster(async (c, lc) => {
      const before = [...c.hosts.values()].map(h => tree(h.dir))
      await lc.install(cdp.tgz)
      for (const h of c.hosts.values()) assert.ok(tree(h.dir).includes(join('filters', 'ACME_cdp_1.0.0', 'root', 'filter.js')))
      const r = await lc.uninstall('ACME_cdp_1.0.0')
      assert.deepEqual(states(r), ['esx1 done', 'esx2 done', 'esx3 done'])
      assert.deepEqual([...c.hosts.values()].map(h => tree(h.dir)), before, 'the host directories hold what they held before the install')
      for (const h of c.hosts.values()) {
        assert.equal(h.daemons.size, 0)
        assert.equal(h.filters.size, 0)
        assert.equal(h.maintenance, false)
        assert.match(readFileSync(cdp.log, 'utf8'), new RegExp(`stop 1\\.0\\.0 ${h.name}`))
      }
      const again = await lc.uninstall('ACME_cdp_1.0.0')
      assert.equal(again.ok, true)
      assert.deepEqual(states(again), ['esx1 unchanged', 'esx2 unchanged', 'esx3 unchanged'])
    })
  })
})

describe('hosts joining and leaving', () => {
  it('a host that joins gets the cluster\'s filters; one that leaves has them removed', async () => {
    const cdp = await makePackage(s, { key, daemon: true })
    await withCluster(async (c, lc) => {
      await lc.install(cdp.tgz)
      const joined = await lc.joinHost('esx3', { trustedKeys: [key.fingerprint] })
      assert.deepEqual(joined.results.map(states), [['esx3 done']])
      assert.equal(joined.host.filters.get('ACME_cdp_1.0.0')?.status, 'INSTALLED')
      const untrusting = await lc.joinHost('esx4')
      assert.deepEqual(untrusting.results.map(states), [['esx4 failed SignatureInvalid']])
      assert.deepEqual(lc.query()[0]?.hosts.map(x => [x.host, x.status]), [['esx1', 'INSTALLED'], ['esx2', 'INSTALLED'], ['esx3', 'INSTALLED'], ['esx4', 'INSTALL_ERROR']])

      const dir = c.host('esx1').dir
      const left = await lc.removeHost('esx1')
      assert.equal(left.removed, true)
      assert.deepEqual(left.results.map(states), [['esx1 done']])
      assert.match(readFileSync(cdp.log, 'utf8'), /stop 1\.0\.0 esx1/)
      assert.equal(existsSync(dir), false)
      assert.deepEqual([...c.hosts.keys()], ['esx2', 'esx3', 'esx4'])
      assert.deepEqual(lc.query()[0]?.hosts.map(x => x.host), ['esx2', 'esx3', 'esx4'])

      c.host('esx2').createVm('vm1')
      await assert.rejects(lc.removeHost('esx2'), (e: unknown) => isIofError(e, 'HostNotEmpty'))
      assert.ok(c.hosts.has('esx2'))
    }, 2)
  })
})
