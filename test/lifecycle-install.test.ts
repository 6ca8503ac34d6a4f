import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { appendFile, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { create } from 'tar'
import { Cluster } from '../harness/framework/cluster.js'
import { Lifecycle, type HostOutcome, type OperationResult } from '../harness/framework/lifecycle.js'
import { trustKey } from '../harness/framework/lifecycle/session.js'
import { makePackage, serve, testKey, trustingCluster, type TestKey } from './lifecycle-fixtures.js'
import { repack, scratch, type Scratch } from './package-fixtures.js'

let s: Scratch
let key: TestKey
beforeEach(async () => {
  s = await scratch()
  key = await testKey(join(s.dir, 'key'))
})
afterEach(async () => { await s.cleanup() })

async function withCluster<T>(fn: (c: Cluster, lc: Lifecycle) => Promise<T>, o: { lifecycle?: Parameters<typeof Lifecycle.open>[1] } = {}): Promise<T> {
  const c = await trustingCluster(key)
  try {
    return await fn(c, await Lifecycle.open(c, o.lifecycle))
  } finally {
    await c.shutdown({ remove: true })
  }
}

function failed(r: OperationResult, host: string): Extract<HostOutcome, { state: 'failed' }> {
  const o = r.hosts.find(h => h.host === host)
  assert.ok(o !== undefined, `no outcome for ${host}`)
  assert.equal(o.state, 'failed', `${host} should have failed: ${JSON.stringify(o)}`)
  return o as Extract<HostOutcome, { state: 'failed' }>
}

function states(r: OperationResult): string[] {
  return r.hosts.map(h => `${h.host} ${h.state}${h.state === 'failed' ? ` ${h.issue.issue}` : ''}`)
}

/** No download leftovers and no filter directories on any host. */
function assertHostsClean(c: Cluster): void {
  for (const h of c.hosts.values()) {
    assert.equal(existsSync(join(h.dir, 'downloads')) && readdirSync(join(h.dir, 'downloads')).length > 0, false, `${h.name} has download leftovers`)
    const filters = join(h.dir, 'filters')
    assert.deepEqual(existsSync(filters) ? readdirSync(filters) : [], [], `${h.name} has filter files`)
  }
}

describe('install across a cluster', () => {
  it('installs from a path and from an http URL on every host, and query shows both everywhere', async () => {
    const cdp = await makePackage(s, { key, daemon: true })
    const cache = await makePackage(s, { key, name: 'fastcache', cls: 'cache' })
    const server = await serve({ '/cache.tgz': { kind: 'file', file: cache.tgz } })
    try {
      await withCluster(async (c, lc) => {
        const a = await lc.install(cdp.tgz)
        assert.deepEqual(states(a), ['esx1 done', 'esx2 done', 'esx3 done'])
        assert.equal(a.filterId, 'ACME_cdp_1.0.0')
        const b = await lc.install(server.url('/cache.tgz'))
        assert.deepEqual(states(b), ['esx1 done', 'esx2 done', 'esx3 done'])

        const q = lc.query()
        assert.deepEqual(q.map(f => [f.id, f.name, f.vendor, f.version, f.class, f.summary, f.releaseDate, f.operation, f.url]), [
          ['ACME_cdp_1.0.0', 'cdp', 'ACME', '1.0.0', 'replication', 'Continuous data protection', '2026-11-01', 'install', cdp.tgz],
          ['ACME_fastcache_1.0.0', 'fastcache', 'ACME', '1.0.0', 'cache', 'Continuous data protection', '2026-11-01', 'install', server.url('/cache.tgz')],
        ])
        for (const f of q) assert.deepEqual(f.hosts, ['esx1', 'esx2', 'esx3'].map(host => ({ host, available: true, status: 'INSTALLED', installedId: f.id })))
        assert.deepEqual(lc.issues(), [])
        for (const h of c.hosts.values()) {
          assert.equal(h.filters.get('ACME_cdp_1.0.0')?.status, 'INSTALLED')
          assert.ok(existsSync(join(h.dir, 'filters', 'ACME_cdp_1.0.0', 'root', 'filter.js')))
          assert.ok(existsSync(join(h.dir, 'filters', 'ACME_fastcache_1.0.0', 'root', 'descriptor.json')))
          assert.equal(h.filters.get('ACME_cdp_1.0.0')?.info.entryUrl, pathToFileURL(join(h.dir, 'filters', 'ACME_cdp_1.0.0', 'root', 'filter.js')).href)
          assert.ok(h.daemons.has('ACME_cdp_1.0.0'), `daemon runs on ${h.name}`)
          assert.equal(existsSync(join(h.dir, 'downloads')) ? readdirSync(join(h.dir, 'downloads')).length : 0, 0)
        }
        assert.deepEqual(server.requests, ['/cache.tgz', '/cache.tgz', '/cache.tgz'], 'each host downloads for itself')
      })
    } finally {
      await server.close()
    }
  })

  it('installs from an unpacked directory and from a file:// URL', async () => {
    const cdp = await makePackage(s, { key })
    // the unpacked package: the built tarball's descriptor (with files and signature) beside the files
    const unpacked = join(s.dir, 'unpacked')
    await mkdir(unpacked)
    await repack(cdp.tgz, join(s.dir, 'copy.tgz'), async dir => {
      for (const f of ['descriptor.json', 'filter.js', 'lib/helper.js']) {
        await mkdir(join(unpacked, f, '..'), { recursive: true })
        await writeFile(join(unpacked, f), await readFile(join(dir, f)))
      }
    })
    await withCluster(async (c, lc) => {
      assert.deepEqual(states(await lc.install(unpacked)), ['esx1 done', 'esx2 done', 'esx3 done'])
      assert.deepEqual(states(await lc.uninstall('ACME_cdp_1.0.0')), ['esx1 done', 'esx2 done', 'esx3 done'])
      assert.deepEqual(lc.query(), [])
      const viaFile = await lc.install(pathToFileURL(cdp.tgz).href)
      assert.deepEqual(states(viaFile), ['esx1 done', 'esx2 done', 'esx3 done'])
      assert.equal(lc.query()[0]?.url, pathToFileURL(cdp.tgz).href)
      for (const h of c.hosts.values()) assert.equal(h.filters.get('ACME_cdp_1.0.0')?.status, 'INSTALLED')
    })
  })

  it('installing what is installed reports it and changes nothing, whatever URL names it', async () => {
    const cdp = await makePackage(s, { key, daemon: true })
    const server = await serve({ '/cdp.tgz': { kind: 'file', file: cdp.tgz } })
    try {
      await withCluster(async (c, lc) => {
        await lc.install(cdp.tgz)
        const before = [...c.hosts.values()].map(h => readFileSync(h.stateFile, 'utf8'))
        // the records, without the counter of internal record numbers (a merged record used one)
        const recordsNow = () => {
          const { nextRef: _n, ...rest } = JSON.parse(readFileSync(join(c.options.dir, 'lifecycle.json'), 'utf8')) as Record<string, unknown>
          return rest
        }
        const records = recordsNow()
        for (const url of [cdp.tgz, server.url('/cdp.tgz')]) {
          const again = await lc.install(url)
          assert.equal(again.ok, true)
          assert.deepEqual(again.hosts.map(h => [h.host, h.state, h.state === 'failed' ? null : h.status]), [['esx1', 'unchanged', 'INSTALLED'], ['esx2', 'unchanged', 'INSTALLED'], ['esx3', 'unchanged', 'INSTALLED']])
          assert.equal(again.filterId, 'ACME_cdp_1.0.0')
        }
        assert.deepEqual([...c.hosts.values()].map(h => readFileSync(h.stateFile, 'utf8')), before, 'host state untouched')
        assert.deepEqual(recordsNow(), records, 'records untouched (the second URL merged into the first record)')
        assert.equal(readFileSync(cdp.log, 'utf8').split('\n').filter(l => l.startsWith('start')).length, 3, 'one daemon start per host')
      })
    } finally {
      await server.close()
    }
  })

  it('refuses to install a second version of an installed filter: FilterVersionConflict', async () => {
    const v1 = await makePackage(s, { key })
    const v2 = await makePackage(s, { key, version: '1.1.0' })
    await withCluster(async (c, lc) => {
      await lc.install(v1.tgz)
      const r = await lc.install(v2.tgz)
      assert.equal(failed(r, 'esx2').issue.issue, 'FilterVersionConflict')
      assert.deepEqual(failed(r, 'esx2').issue.details, { installed: 'ACME_cdp_1.0.0', filter: 'ACME_cdp_1.1.0' })
      for (const h of c.hosts.values()) assert.deepEqual([...h.filters.keys()], ['ACME_cdp_1.0.0'])
      assert.equal(existsSync(v2.marker), false)
    })
  })
})

describe('maintenance mode and reboot', () => {
  it('a host with a powered-on VM cannot enter maintenance mode: it is unchanged, the others install, resolve finishes it', async () => {
    const cdp = await makePackage(s, { key, install: { maintenanceMode: true, reboot: false } })
    await withCluster(async (c, lc) => {
      const esx2 = c.host('esx2')
      esx2.createVm('vm1')
      await esx2.addDisk('vm1', { id: 'd1', capacity: 1 << 20 })
      await esx2.vm('vm1').powerOn()
      const before = readFileSync(esx2.stateFile, 'utf8')

      const r = await lc.install(cdp.tgz)
      assert.equal(r.ok, false)
      assert.deepEqual(states(r), ['esx1 done', 'esx2 failed VibCannotPutHostInMaintenanceMode', 'esx3 done'])
      assert.deepEqual(failed(r, 'esx2').issue.details, { host: 'esx2', vms: ['vm1'] })
      assert.equal(readFileSync(esx2.stateFile, 'utf8'), before, 'esx2 state unchanged')
      assert.equal(esx2.maintenance, false)
      assert.equal(esx2.filters.size, 0)
      assert.equal(existsSync(join(esx2.dir, 'filters', 'ACME_cdp_1.0.0')), false)
      for (const name of ['esx1', 'esx3']) {
        assert.equal(c.host(name).filters.get('ACME_cdp_1.0.0')?.status, 'INSTALLED')
        assert.equal(c.host(name).maintenance, false, `${name} left maintenance mode`)
      }
      assert.deepEqual(lc.query()[0]?.hosts.map(h => [h.host, h.status, h.available]), [['esx1', 'INSTALLED', true], ['esx2', 'INSTALL_ERROR', false], ['esx3', 'INSTALLED', true]])
      assert.deepEqual(lc.issues().map(i => [i.host, i.issue, i.filterId, i.operation]), [['esx2', 'VibCannotPutHostInMaintenanceMode', 'ACME_cdp_1.0.0', 'install']])

      await esx2.vm('vm1').powerOff()
      const fixed = await lc.resolveInstallationErrors('ACME_cdp_1.0.0')
      assert.deepEqual(states(fixed), ['esx2 done'])
      assert.equal(esx2.filters.get('ACME_cdp_1.0.0')?.status, 'INSTALLED')
      assert.equal(esx2.maintenance, false)
      assert.deepEqual(lc.issues(), [])
    })
  })

  it('without automatic maintenance mode a host that needs it reports VibRequiresHostInMaintenanceMode', async () => {
    const cdp = await makePackage(s, { key, install: { maintenanceMode: true, reboot: false } })
    await withCluster(async (c, lc) => {
      await c.host('esx3').enterMaintenance()
      const r = await lc.install(cdp.tgz)
      assert.deepEqual(states(r), ['esx1 failed VibRequiresHostInMaintenanceMode', 'esx2 failed VibRequiresHostInMaintenanceMode', 'esx3 done'])
      assert.equal(c.host('esx3').maintenance, true, 'a host already in maintenance mode stays in it')
    }, { lifecycle: { autoMaintenance: false } })
  })

  it('a package that needs a reboot stays PENDING_REBOOT, inactive, until the host reboots', async () => {
    const cdp = await makePackage(s, { key, daemon: true, install: { maintenanceMode: false, reboot: true } })
    await withCluster(async (c, lc) => {
      const r = await lc.install(cdp.tgz)
      assert.deepEqual(r.hosts.map(h => h.state === 'failed' ? 'failed' : h.status), ['PENDING_REBOOT', 'PENDING_REBOOT', 'PENDING_REBOOT'])
      assert.deepEqual(lc.query()[0]?.hosts.map(h => [h.status, h.available]), [['PENDING_REBOOT', false], ['PENDING_REBOOT', false], ['PENDING_REBOOT', false]])
      assert.deepEqual(lc.issues().map(i => [i.host, i.issue]), [['esx1', 'VibRequiresHostReboot'], ['esx2', 'VibRequiresHostReboot'], ['esx3', 'VibRequiresHostReboot']])
      assert.equal(existsSync(cdp.log), false, 'no daemon before the reboot')
      assert.equal(c.host('esx1').lookup('cdp', 'replication'), undefined, 'policies cannot use it yet')

      await c.rebootHost('esx1')
      const after = await Lifecycle.open(c)
      assert.deepEqual(after.query()[0]?.hosts.map(h => h.status), ['INSTALLED', 'PENDING_REBOOT', 'PENDING_REBOOT'])
      assert.ok(c.host('esx1').daemons.has('ACME_cdp_1.0.0'))

      // resolve settles a pending reboot in maintenance mode
      const fixed = await after.resolveInstallationErrors('ACME_cdp_1.0.0', 'esx2')
      assert.deepEqual(states(fixed), ['esx2 done'])
      assert.equal(c.host('esx2').filters.get('ACME_cdp_1.0.0')?.status, 'INSTALLED')
      assert.equal(c.host('esx2').maintenance, false)
      assert.deepEqual(after.issues().map(i => [i.host, i.issue]), [['esx3', 'VibRequiresHostReboot']])
    })
  })
})

describe('refused packages never run', () => {
  it('404, slow, truncated and corrupted downloads: CannotAccessAgentVib, VibInvalidFormat, IntegrityMismatch', async () => {
    const cdp = await makePackage(s, { key })
    const size = readFileSync(cdp.tgz).length
    const corrupted = join(s.dir, 'corrupted.tgz')
    const bytes = readFileSync(cdp.tgz)
    for (let i = 20; i < bytes.length; i += 7) bytes[i] = bytes[i]! ^ 0x5a
    await writeFile(corrupted, bytes)
    const tampered = await repack(cdp.tgz, join(s.dir, 'tampered.tgz'), async dir => { await appendFile(join(dir, 'filter.js'), '\n// changed in transit\n') })
    const server = await serve({
      '/slow.tgz': { kind: 'stall' },
      '/truncated.tgz': { kind: 'truncate', file: cdp.tgz, bytes: Math.floor(size / 2) },
      '/corrupted.tgz': { kind: 'file', file: corrupted },
      '/tampered.tgz': { kind: 'file', file: tampered },
      '/moved.tgz': { kind: 'status', code: 500 },
    })
    try {
      await withCluster(async (c, lc) => {
        const cases: [string, string, Record<string, unknown> | null][] = [
          ['/missing.tgz', 'CannotAccessAgentVib', { downloadUrl: server.url('/missing.tgz') }],
          ['/truncated.tgz', 'CannotAccessAgentVib', { downloadUrl: server.url('/truncated.tgz') }],
          ['/moved.tgz', 'CannotAccessAgentVib', { downloadUrl: server.url('/moved.tgz') }],
          ['/corrupted.tgz', 'VibInvalidFormat', null],
          ['/tampered.tgz', 'IntegrityMismatch', { file: 'filter.js' }],
        ]
        // the stalled download gets a short bound; the others keep the default, so a slow machine cannot turn them into timeouts
        cases.push(['/slow.tgz', 'CannotAccessAgentVib', { downloadUrl: server.url('/slow.tgz') }])
        for (const [path, issue, details] of cases) {
          const r = await (path === '/slow.tgz' ? await Lifecycle.open(c, { downloadTimeoutMs: 300 }) : lc).install(server.url(path))
          for (const h of ['esx1', 'esx2', 'esx3']) {
            const o = failed(r, h)
            assert.equal(o.issue.issue, issue, `${path} on ${h}: ${o.issue.message}`)
            if (details !== null) for (const [k, v] of Object.entries(details)) assert.deepEqual(o.issue.details[k], v, `${path}: details.${k}`)
          }
          if (path === '/missing.tgz') assert.match(failed(r, 'esx1').issue.message, /HTTP 404/)
          if (path === '/slow.tgz') assert.match(failed(r, 'esx1').issue.message, /within 300 ms/)
          if (path === '/truncated.tgz') assert.match(failed(r, 'esx1').issue.message, /truncated|broke off/)
        }
        assert.equal(existsSync(cdp.marker), false, 'the module never ran')
        assertHostsClean(c)
        for (const h of c.hosts.values()) assert.equal(h.filters.size, 0)
        // each failed URL is a record of its own, named by its URL until a host reads the package
        const records = (await Lifecycle.open(c)).query()
        assert.equal(records.length, cases.length)
        assert.ok(records.every(f => f.id === null && f.hosts.every(h => h.status === 'INSTALL_ERROR')))
      })
    } finally {
      await server.close()
    }
  })

  it('tampered, unsigned, untrusted, closed-class and foreign-ABI packages are refused with their issue before any import', async () => {
    const other = await testKey(join(s.dir, 'other-key'))
    const good = await makePackage(s, { key })
    const cases: [string, string, Record<string, unknown>][] = []
    const add = (file: string, issue: string, details: Record<string, unknown> = {}) => { cases.push([file, issue, details]) }

    add(await repack(good.tgz, join(s.dir, 'changed.tgz'), async d => { await appendFile(join(d, 'filter.js'), '\n;') }), 'IntegrityMismatch', { file: 'filter.js', reason: 'changed' })
    add(await repack(good.tgz, join(s.dir, 'extra.tgz'), async d => { await writeFile(join(d, 'extra.js'), 'export {}\n') }), 'IntegrityMismatch', { file: 'extra.js', reason: 'extra' })
    add(await repack(good.tgz, join(s.dir, 'missing.tgz'), async d => { await rm(join(d, 'lib', 'helper.js')) }), 'IntegrityMismatch', { file: 'lib/helper.js', reason: 'missing' })
    add(await repack(good.tgz, join(s.dir, 'schema.tgz'), async d => {
      const desc = JSON.parse(await readFile(join(d, 'descriptor.json'), 'utf8')) as Record<string, unknown>
      await writeFile(join(d, 'descriptor.json'), JSON.stringify({ ...desc, version: 'one' }))
    }), 'VibInvalidFormat', { code: 'DescriptorInvalid' })
    add(await repack(good.tgz, join(s.dir, 'resigned.tgz'), async d => {
      const desc = JSON.parse(await readFile(join(d, 'descriptor.json'), 'utf8')) as Record<string, unknown>
      await writeFile(join(d, 'descriptor.json'), JSON.stringify({ ...desc, summary: 'not what was signed' }))
    }), 'SignatureInvalid', { code: 'SignatureInvalid' })
    add((await makePackage(s, { as: 'unsigned' })).tgz, 'SignatureInvalid', { code: 'SignatureMissing' })
    add((await makePackage(s, { key: other, as: 'untrusted' })).tgz, 'SignatureInvalid', { code: 'UntrustedKey' })
    add((await makePackage(s, { acceptanceLevel: 'CommunitySupported', as: 'community' })).tgz, 'AcceptanceLevelTooLow', { level: 'CommunitySupported', hostLevel: 'PartnerSupported' })
    add((await makePackage(s, { key, cls: 'encryption', as: 'crypt' })).tgz, 'VibRequirementsNotMetByHost', { cls: 'encryption', open: ['replication', 'cache'] })
    add((await makePackage(s, { key, abiVersion: 2, as: 'abi2' })).tgz, 'VibDependenciesNotMetByHost', { required: 2, provided: [1] })
    // a ../ entry and a symbolic link, in hand-made tarballs
    const src = join(s.dir, 'src')
    await repack(good.tgz, join(s.dir, 'unused.tgz'), async d => {
      for (const f of ['descriptor.json', 'filter.js', 'lib/helper.js']) {
        await mkdir(join(src, f, '..'), { recursive: true })
        await writeFile(join(src, f), await readFile(join(d, f)))
      }
    })
    await writeFile(join(s.dir, 'escape.js'), `import { appendFile } from 'iofcert/test-fixture'\nappendFile(${JSON.stringify(good.marker)}, 'escaped\\n')\n`)
    const up = join(s.dir, 'up.tgz')
    await create({ cwd: src, file: up, gzip: true, preservePaths: true }, ['descriptor.json', 'filter.js', 'lib/helper.js', '../escape.js'])
    add(up, 'VibInvalidFormat', { code: 'PathEscapes' })
    await symlink('/etc/passwd', join(src, 'passwd'))
    const linked = join(s.dir, 'link.tgz')
    await create({ cwd: src, file: linked, gzip: true }, ['descriptor.json', 'filter.js', 'lib/helper.js', 'passwd'])
    add(linked, 'VibInvalidFormat', { code: 'LinkInPackage' })

    await withCluster(async (c, lc) => {
      for (const [file, issue, details] of cases) {
        const r = await lc.install(file)
        for (const h of ['esx1', 'esx2', 'esx3']) {
          const o = failed(r, h)
          assert.equal(o.issue.issue, issue, `${file}: ${o.issue.message}`)
          for (const [k, v] of Object.entries(details)) assert.deepEqual(o.issue.details[k], v, `${file}: details.${k} (${JSON.stringify(o.issue.details)})`)
        }
      }
      for (const f of readdirSync(s.dir).filter(n => n.endsWith('.marker'))) assert.fail(`a refused module ran: ${f}`)
      assertHostsClean(c)
      for (const h of c.hosts.values()) assert.equal(h.filters.size, 0)
    })
  })

  it('judges acceptance level and trust per host: one installs, one lacks the key, one is stricter', async () => {
    const cdp = await makePackage(s, { key })
    const c = await Cluster.create({})
    try {
      await c.addHost('esx1', { trustedKeys: [key.fingerprint] })
      await c.addHost('esx2')
      await c.addHost('esx3', { acceptanceLevel: 'VMwareAccepted', trustedKeys: [key.fingerprint] })
      const lc = await Lifecycle.open(c)
      const r = await lc.install(cdp.tgz)
      assert.deepEqual(states(r), ['esx1 done', 'esx2 failed SignatureInvalid', 'esx3 failed AcceptanceLevelTooLow'])
      assert.equal(failed(r, 'esx2').issue.details.code, 'UntrustedKey')
      assert.deepEqual(failed(r, 'esx3').issue.details, { level: 'PartnerSupported', hostLevel: 'VMwareAccepted' })

      trustKey(c, key.fingerprint, ['esx2'])
      const fixed = await lc.resolveInstallationErrors('ACME_cdp_1.0.0')
      assert.deepEqual(states(fixed), ['esx2 done', 'esx3 failed AcceptanceLevelTooLow'])
      assert.deepEqual(lc.query()[0]?.hosts.map(h => h.status), ['INSTALLED', 'INSTALLED', 'INSTALL_ERROR'])
    } finally {
      await c.shutdown({ remove: true })
    }
  })

  it('a second filter of a class is refused with FilterClassConflict naming the installed one; the host is unchanged', async () => {
    const cdp = await makePackage(s, { key })
    const rival = await makePackage(s, { key, name: 'mirror', vendor: 'Other' })
    await withCluster(async (c, lc) => {
      await lc.install(cdp.tgz)
      const before = [...c.hosts.values()].map(h => readFileSync(h.stateFile, 'utf8'))
      const r = await lc.install(rival.tgz)
      for (const h of ['esx1', 'esx2', 'esx3']) {
        assert.equal(failed(r, h).issue.issue, 'FilterClassConflict')
        assert.equal(failed(r, h).issue.details.installed, 'ACME_cdp_1.0.0')
      }
      assert.deepEqual([...c.hosts.values()].map(h => readFileSync(h.stateFile, 'utf8')), before)
      assert.equal(existsSync(rival.marker), false, 'the conflict is found before the module is imported')
      for (const h of c.hosts.values()) assert.deepEqual(readdirSync(join(h.dir, 'filters')), ['ACME_cdp_1.0.0'])
      assert.deepEqual(lc.query().map(f => [f.id, f.hosts.map(h => h.status)]), [
        ['ACME_cdp_1.0.0', ['INSTALLED', 'INSTALLED', 'INSTALLED']],
        ['Other_mirror_1.0.0', ['INSTALL_ERROR', 'INSTALL_ERROR', 'INSTALL_ERROR']],
      ])
    })
  })
})

describe('records across a restart', () => {
  it('Cluster.open and Lifecycle.open reproduce query and issues exactly', async () => {
    const cdp = await makePackage(s, { key, daemon: true })
    const rival = await makePackage(s, { key, name: 'mirror' })
    const dir = join(s.dir, 'cluster')
    const c = await Cluster.create({ dir })
    try {
      for (const n of ['esx1', 'esx2', 'esx3']) await c.addHost(n, { trustedKeys: n === 'esx3' ? [] : [key.fingerprint] })
      const lc = await Lifecycle.open(c)
      await lc.install(cdp.tgz)
      await lc.install(rival.tgz)
      await lc.install(join(s.dir, 'nowhere.tgz'))
      const query = lc.query()
      const issues = lc.issues()
      assert.equal(issues.length, 7)
      await c.shutdown({ remove: false })

      const reopened = await Cluster.open(dir)
      try {
        const again = await Lifecycle.open(reopened)
        assert.deepEqual(again.query(), query)
        assert.deepEqual(again.issues(), issues)
        assert.ok(reopened.host('esx1').daemons.has('ACME_cdp_1.0.0'), 'the installed filter came back with the host')
      } finally {
        await reopened.shutdown({ remove: false })
      }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
