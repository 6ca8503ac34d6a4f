/**
 * lifecycle.install: the package installed from its path and over HTTP, and the descriptor's
 * maintenance and reboot flags honoured.
 */
import * as path from 'node:path'
import { isIofError } from '../../harness/framework/index.js'
import { Lifecycle } from '../../harness/framework/lifecycle/index.js'
import type { CheckContext } from '../../harness/certify/context.js'
import { DISK_BYTES, MiB, scaled } from '../../harness/certify/datapath.js'
import { check, CheckFailure } from '../../harness/certify/check.js'
import { Oracle } from '../../harness/certify/workloads.js'
import { again, drive, type Driven, expectDone, expectInstalled, outcomeLine, outcomes, policyFor, poweredGuest, settle, until, verifyGuest } from './common.js'
import { flagsOf, harnessCopy, type OwnKey, ownKey, packageBytes, packageCluster, serve } from './packages.js'

/** One install onto a fresh three-host cluster, judged as the descriptor's flags say it must go. */
async function installPhase(ctx: CheckContext, key: OwnKey, label: string, url: string, guestHost: string, count: number): Promise<Record<string, unknown>> {
  const id = ctx.subject.id
  const flags = flagsOf(ctx.subject.descriptor, 'install')
  const c = await packageCluster(ctx, 3, key)
  const lc = await Lifecycle.open(c)
  const t0 = performance.now()
  const r = await lc.install(url)
  const ms = Math.round(performance.now() - t0)
  expectDone(r, `install ${label}`)
  const want = flags.reboot ? 'PENDING_REBOOT' : 'INSTALLED'
  const off = r.hosts.filter(h => h.state !== 'done' || h.filterId !== id || h.status !== want)
  if (off.length > 0) {
    throw new CheckFailure(`install ${label}: expected ${id} ${want} on every host (the descriptor says reboot: ${flags.reboot}), got ${off.map(outcomeLine).join('; ')}`, { hosts: outcomes(r), flags })
  }
  const inMaintenance = [...c.hosts.values()].filter(h => h.maintenance).map(h => h.name)
  if (inMaintenance.length > 0) throw new CheckFailure(`install ${label}: ${inMaintenance.join(', ')} stayed in maintenance mode after the install`, { hosts: outcomes(r), flags })
  const reboots = flags.reboot ? await settle(lc, id, id, `install ${label}`) : []
  const q = expectInstalled(lc, id, `install ${label}`)
  const d = ctx.subject.descriptor
  const fields: [string, unknown, unknown][] = [['name', q.name, d.name], ['vendor', q.vendor, d.vendor], ['version', q.version, d.version], ['class', q.class, d.class]]
  const wrong = fields.filter(([, got, want2]) => got !== want2)
  if (wrong.length > 0) throw new CheckFailure(`install ${label}: query reports ${wrong.map(([f, got, w]) => `${f} ${JSON.stringify(got)} instead of ${JSON.stringify(w)}`).join(', ')}`, { query: q })
  // every operation is idempotent: the same install again changes nothing
  const twice = await lc.install(url)
  const moved = twice.hosts.filter(h => h.state !== 'unchanged')
  if (moved.length > 0) throw new CheckFailure(`install ${label}: installing the installed filter again changed ${moved.map(outcomeLine).join('; ')}`, { hosts: outcomes(twice) })
  const [g] = await poweredGuest(ctx, c, guestHost, 'vm1', policyFor(ctx))
  const ios = await drive(g!, count)
  await verifyGuest(g!, `install ${label}: a read after the workload`)
  await c.shutdown()
  return { label, url, ms, hosts: outcomes(r), reboots, query: q.hosts.map(h => `${h.host}: ${h.status}`), guest: { host: guestHost, ios } }
}

/**
 * The descriptor's flags, exercised with a copy asking for maintenance mode and a reboot: a host
 * with a powered-on VM cannot enter maintenance mode and is left alone; the others install, stay
 * pending (the filter cannot be used) until they reboot, and leave maintenance mode.
 */
async function flagsPhase(ctx: CheckContext, key: OwnKey, count: number): Promise<Record<string, unknown>> {
  const id = ctx.subject.id
  const url = await harnessCopy(ctx, ctx.subject, key, { install: { maintenanceMode: true, reboot: true } }, 'maintenance-reboot')
  const c = await packageCluster(ctx, 3, key)
  const busy = c.host('esx3')
  busy.createVm('busy')
  await busy.addDisk('busy', { capacity: MiB })
  await busy.vm('busy').powerOn()
  const lc = await Lifecycle.open(c)
  const r = await lc.install(url)
  const label = 'of a copy whose descriptor asks for maintenance mode and a reboot'
  const byHost = new Map(r.hosts.map(h => [h.host, h]))
  for (const name of ['esx1', 'esx2']) {
    const o = byHost.get(name)
    if (o?.state !== 'done' || o.status !== 'PENDING_REBOOT') {
      throw new CheckFailure(`install ${label}: expected ${id} PENDING_REBOOT on ${name} until it reboots, got ${o ? outcomeLine(o) : 'nothing'}`, { hosts: outcomes(r) })
    }
  }
  const e3 = byHost.get('esx3')
  if (e3?.state !== 'failed' || e3.issue.issue !== 'VibCannotPutHostInMaintenanceMode') {
    throw new CheckFailure(`install ${label}: esx3 has a powered-on VM, so it cannot enter maintenance mode and must report VibCannotPutHostInMaintenanceMode; got ${e3 ? outcomeLine(e3) : 'nothing'}`, { hosts: outcomes(r) })
  }
  const inMaintenance = [...c.hosts.values()].filter(h => h.maintenance).map(h => h.name)
  if (inMaintenance.length > 0) throw new CheckFailure(`install ${label}: ${inMaintenance.join(', ')} stayed in maintenance mode`, { hosts: outcomes(r) })
  const owed = lc.issues(id).filter(i => i.issue === 'VibRequiresHostReboot').map(i => i.host).sort()
  if (owed.join() !== 'esx1,esx2') throw new CheckFailure(`install ${label}: expected VibRequiresHostReboot for esx1 and esx2, got it for ${owed.join(', ') || 'no host'}`, { issues: lc.issues(id) })
  // pending reboot: not yet usable by a policy
  const policy = policyFor(ctx)
  c.createPolicy(policy)
  const h1 = c.host('esx1')
  h1.createVm('vm1')
  const disk = (await h1.addDisk('vm1', { id: 'vm1-disk0', capacity: DISK_BYTES })).id
  try {
    await h1.setPolicy('vm1', disk, policy.name)
    throw new CheckFailure(`install ${label}: a policy naming the filter was applied on esx1 before its reboot; the filter must not be active while PENDING_REBOOT`, { hosts: outcomes(r) })
  } catch (e) {
    if (!isIofError(e, 'FilterNotInstalled')) throw e
  }
  // fix the cause on esx3, then resolve: esx1 and esx2 reboot, esx3 installs and reboots in turn
  await busy.vm('busy').powerOff()
  const rounds = await settle(lc, id, id, `install ${label}`)
  const left = [...c.hosts.values()].filter(h => h.maintenance).map(h => h.name)
  if (left.length > 0) throw new CheckFailure(`install ${label}: ${left.join(', ')} stayed in maintenance mode after the reboots`, { rounds })
  const h = c.host('esx1')
  await h.setPolicy('vm1', disk, policy.name)
  const vm = h.vm('vm1')
  await vm.powerOn()
  const g: Driven = { vm, disk, oracle: new Oracle(DISK_BYTES), rng: ctx.rng.fork(77), label: 'esx1/vm1' }
  const ios = await drive(g, count)
  await verifyGuest(g, `install ${label}: a read after the workload`)
  await c.shutdown()
  return { label, hosts: outcomes(r), resolveRounds: rounds, guest: { host: 'esx1', ios } }
}

export const installCheck = check({
  id: 'lifecycle.install',
  title: 'Install on a 3-host cluster from a path and from an http URL; query shows it on every host; maintenance and reboot flags honoured',
  required: true,
  classes: 'all',
}, async ctx => {
  const key = await ownKey(ctx)
  const count = scaled(ctx, 200, 1000)
  const phases: Record<string, unknown>[] = []
  phases.push(await installPhase(ctx, key, 'from its path', ctx.subject.source, 'esx2', count))
  const server = await serve(ctx, { '/package.tgz': [await packageBytes(ctx, ctx.subject)] })
  phases.push(await installPhase(ctx, key, 'from an http URL', server.url('/package.tgz'), 'esx3', count))
  const downloads = server.requests.length
  phases.push(await flagsPhase(ctx, key, count))
  return {
    status: 'passed',
    message: `installed on 3 hosts from its path and over HTTP (each host downloading it), INSTALLED everywhere per query; a copy asking for maintenance mode and a reboot stayed PENDING_REBOOT until each host rebooted and was refused on a host with a powered-on VM; a guest under the policy verified its data on each`,
    evidence: { flags: flagsOf(ctx.subject.descriptor, 'install'), phases, httpRequests: downloads },
  }
})
