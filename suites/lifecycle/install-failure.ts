/**
 * lifecycle.install-failure: an unreachable URL, a corrupt download and a host that cannot enter
 * maintenance mode each fail only their host, which is left unchanged, and resolving retries it.
 */
import * as http from 'node:http'
import { Cluster } from '../../harness/framework/index.js'
import { Lifecycle, type IssueName } from '../../harness/framework/lifecycle/index.js'
import type { CheckContext } from '../../harness/certify/context.js'
import { MiB } from '../../harness/certify/datapath.js'
import { check, CheckFailure } from '../../harness/certify/check.js'
import { again, outcomeLine, outcomes, settle } from './common.js'
import { changedSince, closedPort, flagsOf, flippedBytes, harnessCopy, type OwnKey, ownKey, packageBytes, packageCluster, serve, snapshot, tamperedBytes } from './packages.js'

/** One failure case: the hosts that must fail (with the issue names accepted) and how its cause is fixed. */
interface FailureCase {
  readonly label: string
  readonly url: string
  readonly failing: Readonly<Record<string, readonly IssueName[]>>
  /** Checks an issue's details (null when they are right, else what is wrong). */
  readonly details?: (issue: { host: string; issue: IssueName; details: Readonly<Record<string, unknown>> }) => string | null
  /** The install flags of the package installed (default: the subject's). */
  readonly flags?: { maintenanceMode: boolean; reboot: boolean }
  readonly prepare?: (c: Cluster) => Promise<void>
  /** Removes the cause (null: it cannot be removed here, and resolve is not tried). */
  readonly fix: (c: Cluster) => Promise<string | null>
}

async function failureCase(ctx: CheckContext, key: OwnKey, k: FailureCase): Promise<Record<string, unknown>> {
  const id = ctx.subject.id
  const flags = k.flags ?? flagsOf(ctx.subject.descriptor, 'install')
  const c = await packageCluster(ctx, 3, key)
  await k.prepare?.(c)
  const lc = await Lifecycle.open(c)
  const before = new Map([...c.hosts.values()].map(h => [h.name, snapshot(h)]))
  const r = await lc.install(k.url)
  const fail = (message: string, extra: Record<string, unknown> = {}) => new CheckFailure(`${k.label}: ${message}`, { case: k.label, url: k.url, hosts: outcomes(r), ...extra })
  for (const o of r.hosts) {
    const accepted = k.failing[o.host]
    if (accepted !== undefined) {
      if (o.state !== 'failed') throw fail(`${o.host} should have failed with ${accepted.join(' or ')}, but reported ${outcomeLine(o)}`)
      if (!accepted.includes(o.issue.issue)) throw fail(`${o.host} failed with ${o.issue.issue} (${o.issue.message}); expected ${accepted.join(' or ')}`)
      const wrong = k.details?.(o.issue) ?? null
      if (wrong !== null) throw fail(`${o.host}'s ${o.issue.issue} issue ${wrong}`, { details: o.issue.details })
      const changed = changedSince(c.host(o.host), before.get(o.host)!)
      if (changed !== null) throw fail(`${o.host} failed but was changed: a failed operation must leave the host exactly as it was`, changed)
      if (c.host(o.host).maintenance) throw fail(`${o.host} failed and was left in maintenance mode`)
    } else {
      const want = flags.reboot ? 'PENDING_REBOOT' : 'INSTALLED'
      if (o.state !== 'done' || o.status !== want) throw fail(`${o.host} should have installed ${id} (${want}) while the others failed, but reported ${outcomeLine(o)}`)
    }
  }
  // the issues are kept per host, for the filter (or, when no host could read it, for the URL)
  const recorded = lc.issues(r.filterId ?? k.url).filter(i => i.issue !== 'VibRequiresHostReboot')
  const hostsWithIssue = [...new Set(recorded.map(i => i.host))].sort()
  if (hostsWithIssue.join() !== Object.keys(k.failing).sort().join()) {
    throw fail(`issues are recorded for ${hostsWithIssue.join(', ') || 'no host'}, expected one for each failed host (${Object.keys(k.failing).join(', ')})`, { issues: recorded.map(i => `${i.host}: ${i.issue}`) })
  }
  const fixed = await k.fix(c)
  if (fixed !== null) {
    ctx.note(`${k.label}: ${fixed}`)
    await c.shutdown()
    return { case: k.label, hosts: outcomes(r), issues: recorded.map(i => `${i.host}: ${i.issue}`), resolved: false }
  }
  const rounds = await settle(lc, r.filterId ?? k.url, id, `${k.label}: after the cause was removed`)
  await c.shutdown()
  return { case: k.label, hosts: outcomes(r), issues: recorded.map(i => `${i.host}: ${i.issue}`), resolveRounds: rounds }
}

export const installFailureCheck = check({
  id: 'lifecycle.install-failure',
  title: 'Unreachable URL, corrupt download and a host that cannot enter maintenance mode: issue per host, that host unchanged, the others installed; resolve retries',
  required: true,
  classes: 'all',
}, async ctx => {
  const key = await ownKey(ctx)
  const good = await packageBytes(ctx, ctx.subject)
  const tampered = await tamperedBytes(ctx, ctx.subject)
  // the hosts download in turn (esx1, esx2, esx3): the n-th request of a path is the n-th host's
  const server = await serve(ctx, {
    '/missing-first.tgz': [404, good],
    '/corrupt.tgz': [good, flippedBytes(good), tampered.bytes, good],
  })
  const port = await closedPort()
  const unreachable = `http://127.0.0.1:${port}/package.tgz`
  const maintenanceCopy = await harnessCopy(ctx, ctx.subject, key, { install: { maintenanceMode: true, reboot: false } }, 'maintenance')
  const downloadUrl = (url: string) => (i: { details: Readonly<Record<string, unknown>> }) => (i.details.downloadUrl === url ? null : `names ${JSON.stringify(i.details.downloadUrl)}, not the URL ${url}`)
  const cases: FailureCase[] = [
    {
      label: 'a URL answering 404 to esx1',
      url: server.url('/missing-first.tgz'),
      failing: { esx1: ['CannotAccessAgentVib'] },
      details: downloadUrl(server.url('/missing-first.tgz')),
      fix: async () => null, // the server has the package from the second request on
    },
    {
      label: 'a URL whose port nothing listens on',
      url: unreachable,
      failing: { esx1: ['CannotAccessAgentVib'], esx2: ['CannotAccessAgentVib'], esx3: ['CannotAccessAgentVib'] },
      details: downloadUrl(unreachable),
      fix: async () => {
        try {
          await serve(ctx, { '/package.tgz': [good] }, port)
          return null
        } catch (e) {
          return `the port could not be listened on again to retry (${(e as Error).message}); resolve was not tried for this case`
        }
      },
    },
    {
      label: 'a download with bytes flipped (esx2) and one whose entry file was changed (esx3)',
      url: server.url('/corrupt.tgz'),
      failing: { esx2: ['VibInvalidFormat', 'IntegrityMismatch'], esx3: ['IntegrityMismatch'] },
      details: i => (i.host === 'esx3' && i.details.file !== tampered.file ? `names ${JSON.stringify(i.details.file)}, not the changed file ${tampered.file}` : null),
      fix: async () => null, // later requests get the intact package
    },
    {
      label: 'a copy that needs maintenance mode, on a cluster where esx2 has a powered-on VM',
      url: maintenanceCopy,
      flags: { maintenanceMode: true, reboot: false },
      failing: { esx2: ['VibCannotPutHostInMaintenanceMode'] },
      details: i => ((i.details.vms as string[] | undefined)?.includes('busy') ? null : `does not name the powered-on VM busy (vms: ${JSON.stringify(i.details.vms)})`),
      prepare: async c => {
        const h = c.host('esx2')
        h.createVm('busy')
        await h.addDisk('busy', { capacity: MiB })
        await h.vm('busy').powerOn()
      },
      fix: async c => {
        await c.vm('busy').powerOff()
        return null
      },
    },
  ]
  const results: Record<string, unknown>[] = []
  for (const k of cases) results.push(await failureCase(ctx, key, k))
  return {
    status: 'passed',
    message: `${cases.length} failure cases: each failed host reported the spec's issue and was left exactly as it was (state and files), the others installed, and resolveInstallationErrors installed it once the cause was gone`,
    evidence: { cases: results, tamperedFile: tampered.file, requests: server.requests.length },
  }
})
