/**
 * lifecycle.uninstall-in-use and lifecycle.uninstall-clean: an uninstall refused while a disk uses
 * the filter, and what a clean uninstall must leave behind (nothing).
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import { Lifecycle } from '../../harness/framework/lifecycle/index.js'
import { DISK_BYTES, scaled, within } from '../../harness/certify/datapath.js'
import { check, CheckFailure } from '../../harness/certify/check.js'
import { drive, expectDone, outcomeLine, outcomes, policyFor, poweredGuest, queryOf, settle, verifyGuest } from './common.js'
import { changedSince, filesUnder, flagsOf, packageCluster, snapshot } from './packages.js'

export const uninstallInUseCheck = check({
  id: 'lifecycle.uninstall-in-use',
  title: 'Uninstall while a disk uses it fails with `FilterInUse` naming the disks',
  required: true,
  classes: 'all',
}, async ctx => {
  const id = ctx.subject.id
  const c = await packageCluster(ctx, 2)
  const lc = await Lifecycle.open(c)
  expectDone(await lc.install(ctx.subject.source), 'install')
  await settle(lc, id, id, 'install')
  const policy = policyFor(ctx)
  // disks that use it: two of a running VM on esx1, one of a running VM and one of a powered-off VM on esx2
  const guests = [...(await poweredGuest(ctx, c, 'esx1', 'vm1', policy, 2)), ...(await poweredGuest(ctx, c, 'esx2', 'vm2', policy))]
  const h2 = c.host('esx2')
  h2.createVm('vm3')
  await h2.addDisk('vm3', { id: 'vm3-disk0', capacity: DISK_BYTES, policy: policy.name })
  const expected: Record<string, string[]> = { esx1: ['vm1-disk0', 'vm1-disk1'], esx2: ['vm2-disk0', 'vm3-disk0'] }
  const count = scaled(ctx, 150, 500)
  for (const g of guests) await drive(g, count)
  const before = new Map([...c.hosts.values()].map(h => [h.name, snapshot(h)]))
  const r = await lc.uninstall(id)
  for (const name of ['esx1', 'esx2']) {
    const o = r.hosts.find(x => x.host === name)
    if (o === undefined || o.state !== 'failed') {
      throw new CheckFailure(`uninstall of ${id} while disks use it was not refused on ${name}: ${o ? outcomeLine(o) : 'no outcome'}`, { hosts: outcomes(r), disksUsingIt: expected[name] })
    }
    if (o.issue.issue !== 'FilterInUse') throw new CheckFailure(`uninstall while disks use it was refused on ${name} with ${o.issue.issue}, not FilterInUse: ${o.issue.message}`, { hosts: outcomes(r) })
    const named = [...((o.issue.details.disks as string[] | undefined) ?? [])].sort()
    if (named.join() !== expected[name]!.join()) {
      throw new CheckFailure(`FilterInUse on ${name} names ${named.join(', ') || 'no disk'}, but the disks using ${id} there are ${expected[name]!.join(', ')}`, { named, expected: expected[name] })
    }
    const h = c.host(name)
    const changed = changedSince(h, before.get(name)!)
    if (changed !== null) throw new CheckFailure(`the refused uninstall changed ${name}`, changed)
    if (!h.filters.has(id) || h.filters.get(id)!.status !== 'INSTALLED') throw new CheckFailure(`the refused uninstall took ${id} off ${name}`, { status: h.filters.get(id)?.status ?? null })
    if (ctx.info.hasDaemon && !h.daemons.get(id)?.alive) throw new CheckFailure(`the refused uninstall stopped the daemon of ${id} on ${name}`, { stops: h.daemonStops.map(s => s.filter) })
    if (h.maintenance) throw new CheckFailure(`the refused uninstall left ${name} in maintenance mode`, {})
  }
  const q = queryOf(lc, id)
  const unavailable = q?.hosts.filter(h => !h.available || h.installedId !== id).map(h => h.host) ?? ['esx1', 'esx2']
  if (unavailable.length > 0) throw new CheckFailure(`after the refused uninstall ${id} is not available on ${unavailable.join(', ')}`, { query: q?.hosts })
  // the disks carry on: I/O through the filter and everything written before
  for (const g of guests) {
    await drive(g, count)
    await verifyGuest(g, 'after the refused uninstall: a read of everything the guest wrote')
  }
  return {
    status: 'passed',
    message: `uninstall was refused on both hosts with FilterInUse naming exactly the disks using it (${Object.values(expected).flat().join(', ')}, powered-off VM's included); the hosts, the daemons and the guests' data were unchanged`,
    evidence: { hosts: outcomes(r), expected, query: q?.hosts.map(h => `${h.host}: ${h.status}`) },
  }
})

// ---- lifecycle.uninstall-clean ----

export const uninstallCleanCheck = check({
  id: 'lifecycle.uninstall-clean',
  title: 'After detach and uninstall: daemon stopped within 5 s, no timers or handles left, sidecars and files removed',
  required: true,
  classes: 'all',
}, async ctx => {
  const c = await packageCluster(ctx, 1)
  const id = ctx.subject.id
  const filesBefore = filesUnder(c.host('esx1').dir)
  const lc = await Lifecycle.open(c)
  expectDone(await lc.install(ctx.subject.source), 'install')
  await settle(lc, id, id, 'install')
  const installed = filesUnder(c.host('esx1').dir).filter(f => !filesBefore.includes(f))
  const guests = await poweredGuest(ctx, c, 'esx1', 'vm1', policyFor(ctx), 2)
  // the daemon has had work (connections, a replication filter's site) before it is asked to stop
  for (const g of guests) await drive(g, scaled(ctx, 200, 1000), { flushRatio: 0.05 })
  const sidecars = guests.map(g => c.sidecarPath(g.disk, ctx.subject.name))
  const hadSidecar = sidecars.filter(p => fs.existsSync(p)).length
  // detach: the policy comes off every disk of the running VM
  for (const g of guests) await c.host('esx1').setPolicy('vm1', g.disk, null)
  const leftSidecars = sidecars.filter(p => fs.existsSync(p))
  if (leftSidecars.length > 0) throw new CheckFailure(`after detach the sidecar of ${leftSidecars.length} disk(s) is still there`, { sidecars: leftSidecars })
  const flags = flagsOf(ctx.subject.descriptor, 'uninstall')
  if (flags.maintenanceMode) {
    // the descriptor asks for maintenance mode, which a host with a powered-on VM cannot enter
    await c.vm('vm1').powerOff()
    ctx.note('the descriptor asks for maintenance mode to uninstall: the VM was powered off after detach')
  }
  const r = await lc.uninstall(id)
  expectDone(r, `uninstall of ${id}`)
  const h = c.host('esx1')
  if (h.filters.has(id)) throw new CheckFailure(`after uninstall ${id} is still installed on esx1`, { hosts: outcomes(r) })
  if (h.maintenance) throw new CheckFailure('uninstall left esx1 in maintenance mode', { hosts: outcomes(r) })
  let stop: Record<string, unknown> | null = null
  if (ctx.info.hasDaemon) {
    const s = h.daemonStops.find(x => x.filter === id)
    if (s === undefined) throw new CheckFailure(`uninstall did not stop the daemon of ${id}`, { stops: h.daemonStops.map(x => x.filter) })
    const bound = ctx.thresholds.daemonStopMs
    stop = { ms: s.report.ms, timedOut: s.report.timedOut, boundMs: bound, resources: s.report.resources, ...(s.report.error ? { error: s.report.error } : {}) }
    if (s.report.timedOut || s.report.ms > bound) throw new CheckFailure(`the daemon's stop() did not finish within ${bound} ms (${s.report.error ?? `took ${s.report.ms} ms`})`, stop)
    if (s.report.error !== undefined) throw new CheckFailure(`the daemon's stop() failed: ${s.report.error}`, stop)
    if (s.report.resources.length > 0) {
      const counts = s.report.resources.reduce<Record<string, number>>((m, x) => ({ ...m, [x]: (m[x] ?? 0) + 1 }), {})
      throw new CheckFailure(`the daemon left ${s.report.resources.length} active resource(s) in its worker after stop() returned: ${Object.entries(counts).map(([k, n]) => `${n} × ${k}`).join(', ')} (timers, sockets and handles must be released at uninstall)`, stop)
    }
  }
  const filesAfter = filesUnder(h.dir)
  const left = filesAfter.filter(f => !filesBefore.includes(f))
  if (left.length > 0) throw new CheckFailure(`after uninstall ${left.length} file(s) the install made or the filter wrote are still on the host: ${left.slice(0, 5).join(', ')}`, { left, installed })
  const datastore = filesUnder(path.join(c.options.dir, 'datastore')).filter(f => f.endsWith(`/${ctx.subject.name}.sidecar`))
  if (datastore.length > 0) throw new CheckFailure(`after uninstall sidecars of ${id} are still in the datastore: ${datastore.join(', ')}`, { sidecars: datastore })
  if (queryOf(lc, id)?.hosts.some(x => x.installedId !== null)) throw new CheckFailure(`after uninstall query still shows ${id} on a host`, { query: queryOf(lc, id) })
  return {
    status: 'passed',
    message: `after detach and uninstall ${stop ? `the daemon stopped in ${stop.ms} ms leaving no timers or handles (measured in its worker), ` : 'the filter (no daemon) is gone, '}the sidecars${hadSidecar ? ` (${hadSidecar})` : ''} are deleted and the ${installed.length} file(s) the install made are removed`,
    evidence: { daemonStop: stop ?? 'the filter has no daemon', installedFiles: installed, hostFilesBefore: filesBefore, hostFilesAfter: filesAfter, hosts: outcomes(r) },
  }
})
