/**
 * lifecycle.upgrade: the filter upgraded under I/O, no I/O lost, sidecars kept, data verified.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import { Lifecycle, type OperationResult } from '../../harness/framework/lifecycle/index.js'
import { scaled } from '../../harness/certify/datapath.js'
import { check, CheckFailure, type CheckOutcome } from '../../harness/certify/check.js'
import { again, drive, type Driven, expectDone, expectInstalled, expectReplicas, outcomeLine, outcomes, policyFor, poweredGuest, settle, sidecarState, until, verifyGuest } from './common.js'
import { flagsOf, harnessCopy, ownKey, packageCluster } from './packages.js'

/** A guest's workload running in rounds until told to stop, counting the I/O that overlapped the upgrade. */
interface Runner {
  readonly g: Driven
  ios: number
  during: number
  after: number
}

export const upgradeCheck = check({
  id: 'lifecycle.upgrade',
  title: 'Upgrade with disks open under I/O: no I/O lost, sidecars kept, data verifies',
  required: 'when-upgrade-from',
  classes: 'all',
}, async (ctx): Promise<CheckOutcome> => {
  const from = ctx.options.upgradeFrom
  if (from === null) return { status: 'skipped', message: 'needs --upgrade-from <older package>' }
  if (from.info === null) return { status: 'failed', message: `the --upgrade-from package cannot be installed, so nothing can be upgraded from it: ${from.refusedBecause}`, evidence: { upgradeFrom: from.source } }
  const key = await ownKey(ctx)
  const oldId = from.id
  const newId = ctx.subject.id
  const declared = flagsOf(ctx.subject.descriptor, 'upgrade')
  let url = ctx.subject.source
  if (declared.maintenanceMode) {
    // a host in maintenance mode has no open disks, and open disks are what this check is about
    url = await harnessCopy(ctx, ctx.subject, key, { upgrade: { maintenanceMode: false, reboot: declared.reboot } }, 'live-upgrade')
    ctx.note('the package asks for maintenance mode to upgrade, which no host with powered-on VMs can enter: the check upgrades a copy of it (same files, signed with the harness key) that does not, to exercise the upgrade of open instances (close reason `upgrade`) every filter must handle')
  }
  const c = await packageCluster(ctx, 2, key)
  const lc = await Lifecycle.open(c)
  const inst = await lc.install(from.source)
  expectDone(inst, `installing the --upgrade-from package ${oldId}`)
  await settle(lc, oldId, oldId, `installing the --upgrade-from package ${oldId}`)
  const policy = policyFor(ctx, 'upgrade', from.info)
  const guests = [...(await poweredGuest(ctx, c, 'esx1', 'vm1', policy)), ...(await poweredGuest(ctx, c, 'esx2', 'vm2', policy))]
  // the old version writes its state first, so there is state of its own to keep
  for (const g of guests) await drive(g, scaled(ctx, 300, 1000))
  const sidecarsBefore = guests.map(g => sidecarState(c, g.disk, from.name))
  const runners: Runner[] = guests.map(g => ({ g, ios: 0, during: 0, after: 0 }))
  // an object, so the loops read the phase as it is now (a local would be narrowed to its start)
  const clock: { phase: 'before' | 'during' | 'after'; failedIn: string } = { phase: 'before', failedIn: '' }
  let stop = false
  let failure: unknown = null
  const loop = async (r: Runner) => {
    while (!stop) {
      const at = clock.phase
      const n = await drive(r.g, 16, { flushRatio: 0.05 })
      r.ios += n
      if (at === 'during' || clock.phase === 'during') r.during += n
      if (at === 'after') r.after += n
    }
  }
  const loops = runners.map(r => loop(r).catch(e => {
    if (failure === null) clock.failedIn = clock.phase
    failure ??= e
    stop = true
  }))
  await until(() => failure !== null || runners.every(r => r.ios >= 32), 30_000)
  let up: OperationResult | null = null
  let upgradeMs = 0
  if (failure === null) {
    clock.phase = 'during'
    const t0 = performance.now()
    try {
      up = await lc.upgrade(oldId, url)
    } finally {
      upgradeMs = Math.round(performance.now() - t0)
      clock.phase = 'after'
    }
    const after = scaled(ctx, 64, 256)
    await until(() => failure !== null || runners.every(r => r.after >= after), 30_000)
  }
  stop = true
  await Promise.all(loops)
  if (failure !== null) {
    if (failure instanceof CheckFailure) throw new CheckFailure(`${clock.failedIn} the upgrade from ${oldId} to ${newId}: ${failure.message}`, { ...failure.evidence, upgradeMs })
    throw failure
  }
  expectDone(up!, `upgrading ${oldId} to ${newId} with guest I/O running`)
  const wrongId = up!.hosts.filter(h => h.state !== 'done' || h.filterId !== newId)
  if (wrongId.length > 0) throw new CheckFailure(`the upgrade to ${newId} did not run on ${wrongId.map(outcomeLine).join('; ')}`, { hosts: outcomes(up!) })
  // a reboot the new version asks for: the instances already run it, the reboot finishes the operation
  for (const o of up!.hosts) if (o.state === 'done' && o.status === 'PENDING_REBOOT') await lc.rebootHost(o.host)
  const q = expectInstalled(lc, newId, `after the upgrade from ${oldId}`)
  if (lc.query().some(f => f.id === oldId)) throw new CheckFailure(`after the upgrade query still lists ${oldId}`, { query: lc.query().map(f => f.id) })
  const live = guests.map(g => again(c, g))
  for (const g of live) {
    const d = g.vm.disks.get(g.disk)!
    const ids = d.rules.map(r => r.info.id)
    if (!ids.includes(newId) || ids.includes(oldId)) throw new CheckFailure(`after the upgrade ${g.label} runs ${ids.join(', ')}, not ${newId}`, { disk: g.disk, filters: ids })
    if (g.vm.state !== 'on') throw new CheckFailure(`${g.vm.name} is ${g.vm.state} after the upgrade; its disks were to stay open`, { lastPowerOff: g.vm.lastPowerOff })
  }
  const daemons: Record<string, unknown>[] = []
  for (const h of c.hosts.values()) {
    const stopped = h.daemonStops.find(s => s.filter === oldId)
    if (ctx.info.hasDaemon && !h.daemons.get(newId)?.alive) throw new CheckFailure(`after the upgrade the daemon of ${newId} is not running on ${h.name}`, { faults: h.faults })
    if (h.daemons.has(oldId)) throw new CheckFailure(`after the upgrade the daemon of ${oldId} still runs on ${h.name}`, {})
    if (fs.existsSync(path.join(h.dir, 'filters', oldId))) throw new CheckFailure(`after the upgrade the files of ${oldId} are still on ${h.name}`, { dir: path.join('filters', oldId) })
    daemons.push({ host: h.name, oldDaemonStop: stopped ? { ms: stopped.report.ms, timedOut: stopped.report.timedOut, resources: stopped.report.resources } : null })
  }
  // the sidecar the old version wrote is the one the new version runs with
  const sidecars = live.map((g, i) => {
    const b = sidecarsBefore[i]!
    const a = sidecarState(c, g.disk, ctx.subject.name)
    if (b !== null && (a === null || a.ino !== b.ino)) throw new CheckFailure(`the upgrade did not keep ${g.label}'s sidecar: the file the old version wrote ${a === null ? 'is gone' : 'was replaced by another file'}`, { disk: g.disk, before: b, after: a })
    if (b !== null && b.size > 0 && a!.size === 0) throw new CheckFailure(`after the upgrade ${g.label}'s sidecar is empty: the state the old version kept there (${b.size} bytes) was discarded`, { disk: g.disk, before: b, after: a })
    return { disk: g.disk, before: b, after: a, unchanged: b?.sha256 === a?.sha256 }
  })
  for (const g of live) await verifyGuest(g, `after the upgrade to ${newId}: a read of everything the guest wrote`)
  const replicas = await expectReplicas(ctx, c, live, `after the upgrade to ${newId}`)
  const during = runners.reduce((n, r) => n + r.during, 0)
  return {
    status: 'passed',
    message: `upgraded ${oldId} to ${newId} on 2 hosts in ${upgradeMs} ms while 2 guests ran verified I/O (${during} I/Os overlapped it, none failed); the instances reopened under ${newId} with their sidecars, and every byte verifies${replicas.length ? '; the replicas equal the disks' : ''}`,
    evidence: {
      from: oldId, to: newId, url: url === ctx.subject.source ? 'the package itself' : 'a copy without maintenance mode', upgradeMs, hosts: outcomes(up!), query: q.hosts.map(h => `${h.host}: ${h.status}`),
      ios: runners.map(r => ({ guest: r.g.label, total: r.ios, overlappingUpgrade: r.during, after: r.after })), sidecars, daemons, replicas,
      closeReason: 'upgrade (the framework closes open instances with it and reopens them under the new version)',
    },
  }
})
