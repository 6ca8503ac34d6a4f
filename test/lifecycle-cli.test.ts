import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { makePackage, serve, testKey, type TestKey } from './lifecycle-fixtures.js'
import { startCli, type CliRun } from './helpers/cli.js'
import { scratch, type Scratch } from './package-fixtures.js'

let s: Scratch
let key: TestKey
beforeEach(async () => {
  s = await scratch()
  key = await testKey(join(s.dir, 'key'))
})
afterEach(async () => { await s.cleanup() })

type Run = CliRun

/** Starts `iofcert <args>` as its own process, in the scratch directory. */
function start(args: string[]): ReturnType<typeof startCli> {
  return startCli(args, s.dir)
}

function iofcert(...args: string[]): Promise<Run> {
  return start(args).done
}

async function json<T = any>(...args: string[]): Promise<T> {
  const r = await iofcert(...args, '--json')
  assert.ok(r.code === 0 || r.code === 1, `iofcert ${args.join(' ')}: exit ${r.code}\n${r.stderr}`)
  return JSON.parse(r.stdout) as T
}

/** `text` as a regular expression that matches it literally. */
function esc(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

function expectExit(r: Run, code: number, what: string): void {
  assert.equal(r.code, code, `${what}: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`)
  if (code === 2) {
    // the program's own parse errors add its usage hint; the refusal itself is one line
    const lines = r.stderr.split('\n').filter(l => l.trim() !== '' && l !== '(run iofcert --help for usage)')
    assert.equal(lines.length, 1, `${what}: one line on stderr, got:\n${r.stderr}`)
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace')
  }
}

async function statuses(dir: string): Promise<(string | null)[][]> {
  const list = await json<{ filters: { hosts: { status: string | null }[] }[] }>('cluster', 'list', dir)
  return list.filters.map(f => f.hosts.map(h => h.status))
}

describe('iofcert cluster', () => {
  it('works end to end through the built CLI, with exit codes 0, 1 and 2', async () => {
    const cdp = await makePackage(s, { key, install: { maintenanceMode: true, reboot: false } })
    const server = await serve({ '/cdp.tgz': { kind: 'file', file: cdp.tgz } })
    const dir = join(s.dir, 'c')
    try {
      const init = await json('cluster', 'init', dir, '--hosts', '3', '--trust', key.publicPath)
      assert.deepEqual(init.hosts.map((h: { name: string; trustedKeys: string[] }) => [h.name, h.trustedKeys]), [['esx1', [key.fingerprint]], ['esx2', [key.fingerprint]], ['esx3', [key.fingerprint]]])
      expectExit(await iofcert('cluster', 'init', dir, '--hosts', '3'), 2, 'init over a cluster')

      expectExit(await iofcert('cluster', 'vm', 'create', dir, 'esx2', 'vm1', '--disk', 'd1:1M:file'), 0, 'vm create')
      expectExit(await iofcert('cluster', 'vm', 'power', dir, 'vm1', 'on'), 0, 'power on')

      // vm1 stays powered on between commands, so esx2 cannot enter maintenance mode
      const install = await iofcert('cluster', 'install', dir, server.url('/cdp.tgz'))
      expectExit(install, 1, 'install with a blocked host')
      assert.match(install.stdout, /esx2 +failed +VibCannotPutHostInMaintenanceMode: .*vm1/)
      assert.deepEqual(await statuses(dir), [['INSTALLED', 'INSTALL_ERROR', 'INSTALLED']])
      const table = await iofcert('cluster', 'list', dir)
      expectExit(table, 0, 'list')
      assert.match(table.stdout, /│ Name +│ Vendor +│ Version +│ Class +│ esx1 +│ esx2 +│ esx3 +│/)
      assert.match(table.stdout, /│ cdp +│ ACME +│ 1\.0\.0 +│ replication +│ INSTALLED +│ INSTALL_ERROR +│ INSTALLED +│/)
      const issues = await json<{ host: string; issue: string; details: { vms: string[] } }[]>('cluster', 'issues', dir, 'ACME_cdp_1.0.0')
      assert.deepEqual(issues.map(i => [i.host, i.issue, i.details.vms]), [['esx2', 'VibCannotPutHostInMaintenanceMode', ['vm1']]])

      const refused = await iofcert('cluster', 'maintenance', dir, 'esx2', 'on')
      expectExit(refused, 1, 'maintenance with a powered-on VM')
      assert.match(refused.stderr, /cannot enter maintenance mode: powered-on VMs vm1/)

      expectExit(await iofcert('cluster', 'vm', 'power', dir, 'vm1', 'off'), 0, 'power off')
      const resolved = await iofcert('cluster', 'resolve', dir, 'ACME_cdp_1.0.0')
      expectExit(resolved, 0, 'resolve')
      assert.match(resolved.stdout, /esx2 +done/)
      assert.deepEqual(await statuses(dir), [['INSTALLED', 'INSTALLED', 'INSTALLED']])
      expectExit(await iofcert('cluster', 'install', dir, server.url('/cdp.tgz')), 0, 'install again (nothing to do)')

      expectExit(await iofcert('cluster', 'policy', dir, 'create', 'protect', '--rule', 'cdp@REPLICATION'), 0, 'policy create')
      expectExit(await iofcert('cluster', 'policy', dir, 'apply', 'protect', 'vm1', 'd1'), 0, 'policy apply')
      // refused on esx2, so no host is changed
      const inUse = await json<{ ok: boolean; refused: boolean; hosts: { host: string; state: string; issue?: { issue: string; details: { disks: string[] } } }[] }>('cluster', 'uninstall', dir, 'ACME_cdp_1.0.0')
      assert.equal(inUse.ok, false)
      assert.equal(inUse.refused, true)
      assert.deepEqual(inUse.hosts.map(h => [h.host, h.state, h.issue?.issue ?? null, h.issue?.details.disks ?? null]), [['esx1', 'unchanged', null, null], ['esx2', 'failed', 'FilterInUse', ['d1']], ['esx3', 'unchanged', null, null]])
      assert.deepEqual(await statuses(dir), [['INSTALLED', 'INSTALLED', 'INSTALLED']])
      expectExit(await iofcert('cluster', 'policy', dir, 'clear', 'vm1', 'd1'), 0, 'policy clear')
      expectExit(await iofcert('cluster', 'uninstall', dir, 'ACME_cdp_1.0.0'), 0, 'uninstall again')
      assert.deepEqual(await statuses(dir), [])

      const bad: [string[], RegExp][] = [
        [['cluster', 'vm', 'power', dir, 'nosuch', 'on'], /no VM named "nosuch"/],
        [['cluster', 'vm', 'create', dir, 'esx1', 'vm2', '--disk', 'oops'], /--disk "oops" must be/],
        [['cluster', 'init', join(s.dir, 'c2'), '--hosts', '2', '--acceptance-level', 'Nope'], /"Nope" is not an acceptance level/],
        [['cluster', 'list', join(s.dir, 'none')], /no cluster in/],
        [['cluster', 'install', dir, 'ftp://example.com/x.tgz'], /use a local path, file:\/\/, http:\/\/ or https:\/\//],
        [['cluster', 'maintenance', dir, 'esx1', 'maybe'], /maybe/],
        [['cluster', 'upgrade', dir, 'ACME_nothing_1.0.0', cdp.tgz], /no filter "ACME_nothing_1\.0\.0"/],
        [['cluster', 'policy', dir, 'create', 'p', '--rule', 'cdp@NOPE'], /NOPE is not a class/],
        [['cluster', 'trust', dir, join(s.dir, 'missing.pem')], /missing\.pem/],
      ]
      // one after another: a second command on a cluster in use is refused (ClusterBusy)
      for (const [args, message] of bad) {
        const r = await iofcert(...args)
        expectExit(r, 2, args.join(' '))
        assert.match(r.stderr, message)
      }
      assert.equal(existsSync(join(dir, '.iofcert.lock')), false, 'every command released the cluster')
    } finally {
      await server.close()
    }
  })

  it('keeps a pending reboot across commands until cluster reboot', async () => {
    const cdp = await makePackage(s, { key, daemon: true, install: { maintenanceMode: false, reboot: true } })
    const dir = join(s.dir, 'c')
    expectExit(await iofcert('cluster', 'init', dir, '--hosts', '2', '--trust', key.publicPath), 0, 'init')
    const r = await json<{ hosts: { status: string }[] }>('cluster', 'install', dir, cdp.tgz)
    assert.deepEqual(r.hosts.map(h => h.status), ['PENDING_REBOOT', 'PENDING_REBOOT'])
    assert.deepEqual(await statuses(dir), [['PENDING_REBOOT', 'PENDING_REBOOT']], 'a new command is no reboot')
    assert.equal(existsSync(cdp.log), false, 'the daemon never started')
    const issues = await json<{ host: string; issue: string }[]>('cluster', 'issues', dir)
    assert.deepEqual(issues.map(i => [i.host, i.issue]), [['esx1', 'VibRequiresHostReboot'], ['esx2', 'VibRequiresHostReboot']])
    expectExit(await iofcert('cluster', 'reboot', dir, 'esx1'), 0, 'reboot')
    assert.deepEqual(await statuses(dir), [['INSTALLED', 'PENDING_REBOOT']])
    assert.match(readFileSync(cdp.log, 'utf8'), /start 1\.0\.0 esx1/)
    assert.doesNotMatch(readFileSync(cdp.log, 'utf8'), /esx2/)
  })

  it('after kill -9 in the middle of an install, list tells the truth and resolve completes it', async () => {
    const cdp = await makePackage(s, { key })
    const size = readFileSync(cdp.tgz).length
    // esx1 downloads the package; esx2's download stalls half way, and the process is killed there
    const server = await serve({
      '/cdp.tgz': { kind: 'sequence', routes: [{ kind: 'file', file: cdp.tgz }, { kind: 'stall-after', file: cdp.tgz, bytes: Math.floor(size / 2) }] },
    })
    const dir = join(s.dir, 'c')
    try {
      expectExit(await iofcert('cluster', 'init', dir, '--hosts', '3', '--trust', key.publicPath), 0, 'init')
      const run = start(['cluster', 'install', dir, server.url('/cdp.tgz')])
      const partial = () => {
        const downloads = join(dir, 'hosts', 'esx2', 'downloads')
        if (!existsSync(downloads)) return false
        return readdirSync(downloads).some(d => existsSync(join(downloads, d, 'package.tgz')))
      }
      const t0 = Date.now()
      while (!(server.requests.length >= 2 && partial())) {
        if (Date.now() - t0 > 20_000) assert.fail('the install never reached the stalled download')
        await new Promise(r => setTimeout(r, 10))
      }
      run.child.kill('SIGKILL')
      const killed = await run.done
      assert.equal(killed.signal, 'SIGKILL')

      // what the dead process left: its lock, its operation in flight and a partial download
      assert.ok(existsSync(join(dir, '.iofcert.lock')))
      assert.notEqual(JSON.parse(readFileSync(join(dir, 'lifecycle.json'), 'utf8')).pending, null)
      assert.ok(partial())

      const list = await json<{ filters: { id: string; hosts: { host: string; status: string | null; available: boolean }[] }[] }>('cluster', 'list', dir)
      assert.deepEqual(list.filters.map(f => [f.id, f.hosts.map(h => [h.host, h.status, h.available])]), [
        ['ACME_cdp_1.0.0', [['esx1', 'INSTALLED', true], ['esx2', 'INSTALL_ERROR', false], ['esx3', 'INSTALL_ERROR', false]]],
      ])
      const issues = await json<{ host: string; issue: string; operation: string }[]>('cluster', 'issues', dir)
      assert.deepEqual(issues.map(i => [i.host, i.issue, i.operation]), [['esx2', 'OperationInterrupted', 'install'], ['esx3', 'OperationInterrupted', 'install']])
      for (const host of ['esx2', 'esx3']) {
        const hdir = join(dir, 'hosts', host)
        assert.deepEqual(existsSync(join(hdir, 'downloads')) ? readdirSync(join(hdir, 'downloads')) : [], [], `${host}: the partial download is gone`)
        assert.deepEqual(existsSync(join(hdir, 'filters')) ? readdirSync(join(hdir, 'filters')) : [], [], `${host}: no filter files`)
        assert.deepEqual(JSON.parse(readFileSync(join(hdir, 'state.json'), 'utf8')).filters, [], `${host}: no filter in its state`)
      }
      assert.ok(existsSync(join(dir, 'hosts', 'esx1', 'filters', 'ACME_cdp_1.0.0', 'root', 'filter.js')))

      server.routes.set('/cdp.tgz', { kind: 'file', file: cdp.tgz })
      const resolved = await iofcert('cluster', 'resolve', dir, 'ACME_cdp_1.0.0')
      expectExit(resolved, 0, 'resolve')
      assert.match(resolved.stdout, /esx2 +done/)
      assert.match(resolved.stdout, /esx3 +done/)
      assert.deepEqual(await statuses(dir), [['INSTALLED', 'INSTALLED', 'INSTALLED']])
      assert.deepEqual(await json('cluster', 'issues', dir), [])
    } finally {
      await server.close()
    }
  })

  it('after kill -9 while a host is in maintenance mode for an install, the host leaves it and holds no half-installed filter', async () => {
    // the module stalls on import while the HOLD file exists: the install is then inside
    // maintenance mode with the files in place and nothing committed
    const hold = join(s.dir, 'HOLD')
    writeFileSync(hold, '')
    const cdp = await makePackage(s, {
      key,
      install: { maintenanceMode: true, reboot: false },
      prelude: `if (exists(${JSON.stringify(hold)})) await new Promise(r => setTimeout(r, 60_000))`,
    })
    const dir = join(s.dir, 'c')
    expectExit(await iofcert('cluster', 'init', dir, '--hosts', '2', '--trust', key.publicPath), 0, 'init')
    const run = start(['cluster', 'install', dir, cdp.tgz])
    const t0 = Date.now()
    while (!existsSync(cdp.marker)) {
      if (Date.now() - t0 > 20_000) assert.fail('the install never imported the module')
      await new Promise(r => setTimeout(r, 10))
    }
    const esx1 = join(dir, 'hosts', 'esx1')
    assert.equal(JSON.parse(readFileSync(join(esx1, 'state.json'), 'utf8')).maintenance, true, 'killed inside maintenance mode')
    assert.deepEqual(readdirSync(join(esx1, 'filters')), ['ACME_cdp_1.0.0'], 'with the files in place')
    run.child.kill('SIGKILL')
    assert.equal((await run.done).signal, 'SIGKILL')

    const list = await json<{ filters: { hosts: { status: string | null }[] }[] }>('cluster', 'list', dir)
    assert.deepEqual(list.filters.map(f => f.hosts.map(h => h.status)), [['INSTALL_ERROR', 'INSTALL_ERROR']])
    const state = JSON.parse(readFileSync(join(esx1, 'state.json'), 'utf8'))
    assert.equal(state.maintenance, false, 'recovery took the host out of the maintenance mode the install had put it in')
    assert.deepEqual(state.filters, [])
    assert.deepEqual(readdirSync(join(esx1, 'filters')), [], 'the uncommitted files are gone')

    rmSync(hold)
    expectExit(await iofcert('cluster', 'resolve', dir, 'ACME_cdp_1.0.0'), 0, 'resolve')
    assert.deepEqual(await statuses(dir), [['INSTALLED', 'INSTALLED']])
  })

  it('init shows in its help that --hosts is required, and refuses a missing or bad count in one line with exit 2', async () => {
    const help = await iofcert('cluster', 'init', '--help')
    expectExit(help, 0, 'init --help')
    assert.match(help.stdout, /Usage: iofcert cluster init <dir> --hosts <N> \[options\]/)
    assert.match(help.stdout, /--hosts <N> +\(required\) number of hosts, 1 to 64/)
    assert.match((await iofcert('cluster', '--help')).stdout, /init \[options\] <dir> +create a cluster .*--hosts <N> is required/)

    const dir = join(s.dir, 'c')
    const cases: [string[], RegExp][] = [
      [[], /required option '--hosts <N>' not specified/],
      [['--hosts', 'three'], /option '--hosts <N>' argument 'three' is invalid\. Expected a whole number\./],
      [['--hosts', '0'], /option '--hosts <N>' argument '0' is invalid\. A cluster has 1 to 64 hosts\./],
      [['--hosts', '65'], /A cluster has 1 to 64 hosts/],
    ]
    for (const [extra, message] of cases) {
      const r = await iofcert('cluster', 'init', dir, ...extra)
      expectExit(r, 2, `init ${extra.join(' ')}`)
      assert.match(r.stderr, message)
      assert.equal(existsSync(join(dir, 'cluster.json')), false, 'no cluster made')
    }
    const bad = await iofcert('cluster', 'install', dir, 'x.tgz', '--timeout-ms', 'soon')
    expectExit(bad, 2, 'install --timeout-ms soon')
    assert.match(bad.stderr, /'--timeout-ms <ms>' argument 'soon' is invalid/)
    expectExit(await iofcert('cluster', 'init', dir, '--hosts', '1'), 0, 'init --hosts 1')
  })

  it('resolve and issues find a failed install by the filter id, also when every host refused the package', async () => {
    const cdp = await makePackage(s, { key })
    const dir = join(s.dir, 'c')
    expectExit(await iofcert('cluster', 'init', dir, '--hosts', '2'), 0, 'init')
    // no host trusts the key: no host accepts the package, and the cluster has no id for it yet
    const install = await iofcert('cluster', 'install', dir, cdp.tgz)
    expectExit(install, 1, 'install no host trusts')
    assert.match(install.stdout, /esx1 +failed +SignatureInvalid/)
    assert.match(install.stdout, /esx2 +failed +SignatureInvalid/)
    const issues = await json<{ host: string; issue: string }[]>('cluster', 'issues', dir, 'ACME_cdp_1.0.0')
    assert.deepEqual(issues.map(i => [i.host, i.issue]), [['esx1', 'SignatureInvalid'], ['esx2', 'SignatureInvalid']])
    expectExit(await iofcert('cluster', 'resolve', dir, 'ACME_cdp_1.0.0'), 1, 'resolve before the cause is gone')

    expectExit(await iofcert('cluster', 'trust', dir, key.publicPath), 0, 'trust')
    const resolved = await iofcert('cluster', 'resolve', dir, 'ACME_cdp_1.0.0')
    expectExit(resolved, 0, 'resolve by the filter id')
    assert.match(resolved.stdout, /^resolve ACME_cdp_1\.0\.0 from /)
    assert.match(resolved.stdout, /esx1 +done +ACME_cdp_1\.0\.0 installed/)
    assert.match(resolved.stdout, /esx2 +done +ACME_cdp_1\.0\.0 installed/)
    assert.deepEqual(await statuses(dir), [['INSTALLED', 'INSTALLED']])
    assert.deepEqual(await json('cluster', 'issues', dir), [])

    // one host refuses a package the other installed: resolve by id retries that host only
    expectExit(await iofcert('cluster', 'host', 'add', dir, 'esx3'), 1, 'a host that does not trust the key joins')
    assert.deepEqual(await statuses(dir), [['INSTALLED', 'INSTALLED', 'INSTALL_ERROR']])
    expectExit(await iofcert('cluster', 'trust', dir, key.publicPath, '--host', 'esx3'), 0, 'trust on esx3')
    const again = await iofcert('cluster', 'resolve', dir, 'ACME_cdp_1.0.0')
    expectExit(again, 0, 'resolve the joined host')
    assert.match(again.stdout, /esx3 +done/)
    assert.doesNotMatch(again.stdout, /esx1|esx2/)
    assert.deepEqual(await statuses(dir), [['INSTALLED', 'INSTALLED', 'INSTALLED']])
  })

  it('upgrade names the version each host ran, and says so when a host had none to upgrade', async () => {
    const v1 = await makePackage(s, { key, install: { maintenanceMode: true, reboot: false } })
    const v2 = await makePackage(s, { key, version: '1.1.0' })
    const dir = join(s.dir, 'c')
    expectExit(await iofcert('cluster', 'init', dir, '--hosts', '2', '--trust', key.publicPath), 0, 'init')
    expectExit(await iofcert('cluster', 'vm', 'create', dir, 'esx2', 'vm1'), 0, 'vm create')
    expectExit(await iofcert('cluster', 'vm', 'power', dir, 'vm1', 'on'), 0, 'power on')
    // esx2 cannot enter maintenance mode for the install: it has no version of the filter
    expectExit(await iofcert('cluster', 'install', dir, v1.tgz), 1, 'install')
    assert.deepEqual(await statuses(dir), [['INSTALLED', 'INSTALL_ERROR']])

    const up = await iofcert('cluster', 'upgrade', dir, 'ACME_cdp_1.0.0', v2.tgz)
    expectExit(up, 0, 'upgrade')
    assert.doesNotMatch(up.stdout, /undefined/)
    assert.match(up.stdout, /esx1 +done +ACME_cdp_1\.1\.0 upgraded from ACME_cdp_1\.0\.0 \[INSTALLED\]/)
    assert.match(up.stdout, /esx2 +done +ACME_cdp_1\.1\.0 installed \(the host had no earlier version to upgrade\) \[INSTALLED\]/)
    assert.deepEqual(await statuses(dir), [['INSTALLED', 'INSTALLED']])
  })

  it('uninstall checks every host first: a refusal changes no host, and a summary says where, why and what to do', async () => {
    const cdp = await makePackage(s, { key, uninstall: { maintenanceMode: true, reboot: false } })
    const dir = join(s.dir, 'c')
    expectExit(await iofcert('cluster', 'init', dir, '--hosts', '3', '--trust', key.publicPath), 0, 'init')
    expectExit(await iofcert('cluster', 'install', dir, cdp.tgz), 0, 'install')
    // esx2: a disk uses the filter; esx3: a powered-on VM keeps it out of maintenance mode
    expectExit(await iofcert('cluster', 'vm', 'create', dir, 'esx2', 'vm1', '--disk', 'd1:1M:file'), 0, 'vm1')
    expectExit(await iofcert('cluster', 'policy', dir, 'create', 'protect', '--rule', 'cdp@REPLICATION'), 0, 'policy create')
    expectExit(await iofcert('cluster', 'policy', dir, 'apply', 'protect', 'vm1', 'd1'), 0, 'policy apply')
    expectExit(await iofcert('cluster', 'vm', 'create', dir, 'esx3', 'vm2'), 0, 'vm2')
    expectExit(await iofcert('cluster', 'vm', 'power', dir, 'vm2', 'on'), 0, 'vm2 on')

    const refused = await iofcert('cluster', 'uninstall', dir, 'ACME_cdp_1.0.0')
    expectExit(refused, 1, 'uninstall refused on two hosts')
    const out = refused.stdout
    assert.match(out, /esx1 +unchanged +ACME_cdp_1\.0\.0 kept: the uninstall was refused on esx2, esx3 \[INSTALLED\]/)
    assert.match(out, /esx2 +failed +FilterInUse: /)
    assert.match(out, /esx3 +failed +VibCannotPutHostInMaintenanceMode: /)
    assert.match(out, /nothing was uninstalled: refused on esx2, esx3 \(every host is checked before any is changed\)/)
    assert.match(out, new RegExp(`\\n  esx2 \\(FilterInUse\\): take the filter out of the policy of disk d1 \\(iofcert cluster policy ${esc(dir)} clear vm1 d1\\)\\n`))
    assert.match(out, new RegExp(`\\n  esx3 \\(VibCannotPutHostInMaintenanceMode\\): power off VM vm2 \\(iofcert cluster vm power ${esc(dir)} vm2 off\\), so esx3 can enter maintenance mode\\n`))
    assert.match(out, new RegExp(`then run again: iofcert cluster uninstall ${esc(dir)} ACME_cdp_1\\.0\\.0\\n?$`))
    assert.deepEqual(await statuses(dir), [['INSTALLED', 'INSTALLED', 'INSTALLED']], 'no host was changed')
    assert.deepEqual(await json('cluster', 'issues', dir), [], 'nothing happened, so no issue is recorded')
    assert.deepEqual(readdirSync(join(dir, 'hosts', 'esx1', 'filters')), ['ACME_cdp_1.0.0'], 'esx1 kept its files')

    // without automatic maintenance mode every host would refuse
    expectExit(await iofcert('cluster', 'policy', dir, 'clear', 'vm1', 'd1'), 0, 'policy clear')
    const manual = await iofcert('cluster', 'uninstall', dir, 'ACME_cdp_1.0.0', '--no-auto-maintenance')
    expectExit(manual, 1, 'uninstall without automatic maintenance mode')
    assert.match(manual.stdout, /nothing was uninstalled: refused on esx1, esx2, esx3/)
    assert.match(manual.stdout, new RegExp(`esx1 \\(VibRequiresHostInMaintenanceMode\\): put esx1 in maintenance mode \\(iofcert cluster maintenance ${esc(dir)} esx1 on\\), or leave out --no-auto-maintenance`))
    assert.deepEqual(await statuses(dir), [['INSTALLED', 'INSTALLED', 'INSTALLED']])

    expectExit(await iofcert('cluster', 'vm', 'power', dir, 'vm2', 'off'), 0, 'vm2 off')
    const done = await iofcert('cluster', 'uninstall', dir, 'ACME_cdp_1.0.0')
    expectExit(done, 0, 'uninstall')
    assert.match(done.stdout, /uninstalled on esx1, esx2, esx3\n?$/)
    assert.deepEqual(await statuses(dir), [])
  })
})
