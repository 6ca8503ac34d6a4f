/**
 * exclusivity.*: one filter per class — per host (the default profile) and per policy — and the
 * filter working beside the platform's built-ins and a filter of the other open class.
 *
 * host-conflict and policy-conflict test rules the framework enforces. Their runs are built by
 * `hostConflict` and `policyConflict` from an `ExclusivitySetup`, so the harness's own tests can
 * hand them a misconfigured framework (a host without class exclusivity, a policy validator that
 * lets two filters of a class through) and see the checks fail: a check that cannot fail proves
 * nothing.
 */
import * as fs from 'node:fs'
import { isIofError, type Cluster, type FilterInfo, type IofError, type Rng, type StoragePolicy } from '../harness/framework/index.js'
import { check, type CheckDef, CheckFailure, type CheckRun } from '../harness/certify/check.js'
import type { CheckContext } from '../harness/certify/context.js'
import { Oracle, verifiedWorkload, verifyRange } from '../harness/certify/workloads.js'
import { describeProbe, installProbe, probeRule } from '../harness/certify/probes/index.js'
import {
  CHECK_CACHE_MIB, DISK_BYTES, guestWithDisk, MiB, otherReference, scaled, sharedLayoutWorkload, SPM_RULE, subjectPolicy, VMCRYPT_RULE, type Guest, type WorkloadGuest,
} from '../harness/certify/datapath.js'

/** How the host-conflict and policy-conflict checks build their clusters. */
export interface ExclusivitySetup {
  /** Class exclusivity of the clusters host-conflict builds (default: the profile's `host`). */
  readonly classExclusivity?: 'host' | 'disk'
  /** Called on each cluster the check builds, once the filter under test is installed. */
  readonly prepare?: (c: Cluster) => void
}

/** Guest I/O kept running on a VM while a host or policy change is refused (not a data-path check). */
const IOS_DURING = 400

/** What a refused change must leave as it was. */
function hostState(c: Cluster): { filters: string[]; daemons: string[]; stateJson: string } {
  const h = c.host('esx1')
  return { filters: [...h.filters.keys()].sort(), daemons: [...h.daemons.keys()].sort(), stateJson: fs.readFileSync(h.stateFile, 'utf8') }
}

function codeOf(e: unknown): string {
  return isIofError(e) ? e.code : e instanceof Error ? `${e.name}: ${e.message}` : String(e)
}

/**
 * Tries to activate `second` on a host where `installed` is active and a VM does I/O through it:
 * refused with FilterClassConflict naming `installed`, the host's filters, daemons and state.json
 * unchanged, and the VM's I/O unharmed.
 */
async function refusedSecond(ctx: CheckContext, c: Cluster, g: Guest, installed: FilterInfo, second: FilterInfo, order: string, rng: Rng): Promise<Record<string, unknown>> {
  const h = c.host('esx1')
  const before = hostState(c)
  const oracle = new Oracle(DISK_BYTES)
  const io = verifiedWorkload(g.vm, g.disk, oracle, rng, { count: IOS_DURING, queueDepth: 8, maxSectors: 64 })
  let refusal: unknown = null
  try {
    await h.activate(second)
  } catch (e) {
    refusal = e
  }
  try {
    await io
  } catch (e) {
    if (e instanceof CheckFailure) throw new CheckFailure(`${order}: the running VM's I/O failed while the host handled the second ${ctx.cls} filter: ${e.message}`, { order, ...e.evidence })
    throw e
  }
  const base = { order, installed: installed.id, second: second.id, host: 'esx1' }
  if (refusal === null) {
    throw new CheckFailure(`${order}: the host accepted ${second.id} although ${installed.id} is installed: two ${ctx.cls} filters on one host`, { ...base, filtersAfter: [...h.filters.keys()] })
  }
  if (!isIofError(refusal, 'FilterClassConflict')) throw new CheckFailure(`${order}: installing ${second.id} was refused with ${codeOf(refusal)}, not FilterClassConflict`, base)
  const err = refusal as IofError
  if (err.details.installed !== installed.id || !err.message.includes(installed.id)) {
    throw new CheckFailure(`${order}: the FilterClassConflict does not name the installed ${installed.id}: "${err.message}"`, { ...base, details: err.details })
  }
  const after = hostState(c)
  for (const k of ['filters', 'daemons'] as const) {
    if (JSON.stringify(before[k]) !== JSON.stringify(after[k])) throw new CheckFailure(`${order}: the refused install changed the host's ${k}`, { ...base, before: before[k], after: after[k] })
  }
  if (before.stateJson !== after.stateJson) throw new CheckFailure(`${order}: the refused install changed the host's state.json`, { ...base, before: before.stateJson.slice(0, 400), after: after.stateJson.slice(0, 400) })
  await verifyRange(g.vm, g.disk, oracle, 0, DISK_BYTES, `${order}: a read after the refused install`)
  return { order, refusedWith: err.code, message: err.message }
}

/** The run of exclusivity.host-conflict, on clusters built as `setup` says. */
export function hostConflict(setup: ExclusivitySetup = {}): CheckRun {
  return async ctx => {
    const classExclusivity = setup.classExclusivity ?? 'host'
    const rngs = [ctx.rng.fork(1), ctx.rng.fork(2)]
    // the filter under test first, then a harness probe of its class
    const c1 = await ctx.cluster({ classExclusivity })
    setup.prepare?.(c1)
    const probe1 = await describeProbe(c1, ctx.cls)
    const g1 = await guestWithDisk(c1, { vm: 'vm1', policy: subjectPolicy(ctx) })
    const first = await refusedSecond(ctx, c1, g1, ctx.info, probe1, 'the filter under test installed first', rngs[0]!)
    // the probe first, then the filter under test
    const c2 = await ctx.cluster({ install: false, classExclusivity })
    setup.prepare?.(c2)
    const probe2 = await installProbe(c2, ctx.cls)
    const g2 = await guestWithDisk(c2, { vm: 'vm1', policy: { name: 'probe', rules: [probeRule(ctx.cls)] } })
    const second = await refusedSecond(ctx, c2, g2, probe2, ctx.info, `a ${ctx.cls} filter installed first`, rngs[1]!)
    return { status: 'passed', message: `a second ${ctx.cls} filter was refused in either order with FilterClassConflict naming the installed one; the host and its running VM were unchanged`, evidence: { refusals: [first, second] } }
  }
}

/** The run of exclusivity.policy-conflict, on clusters built as `setup` says. */
export function policyConflict(setup: ExclusivitySetup = {}): CheckRun {
  return async ctx => {
    // exclusivity per disk lets both filters of the class be installed on one host
    const c = await ctx.cluster({ classExclusivity: 'disk' })
    setup.prepare?.(c)
    const probe = await installProbe(c, ctx.cls)
    const h = c.host('esx1')
    const single = subjectPolicy(ctx, 'single')
    const g = await guestWithDisk(c, { vm: 'vm1', policy: single })
    const oracle = new Oracle(DISK_BYTES)
    await verifiedWorkload(g.vm, g.disk, oracle, ctx.rng, { count: IOS_DURING / 2, queueDepth: 8, maxSectors: 64 })
    const both: StoragePolicy = { name: 'both', rules: [ctx.rule({ cacheMiB: CHECK_CACHE_MIB }), probeRule(ctx.cls)] }
    c.createPolicy(both)
    const rulesOf = () => g.vm.disks.get(g.disk)!.rules.map(r => r.info.id)
    const rulesBefore = rulesOf()
    const attempts: Record<string, unknown>[] = []
    for (const powered of ['on', 'off'] as const) {
      if (powered === 'off') await g.vm.powerOff()
      const when = `with the VM powered ${powered}`
      let refusal: unknown = null
      try {
        await h.setPolicy('vm1', g.disk, both.name)
      } catch (e) {
        refusal = e
      }
      const disk = g.vm.disks.get(g.disk)!
      const base = { policy: both.name, rules: both.rules.map(r => r.filter), filterIds: [ctx.info.id, probe.id], when }
      if (refusal === null) throw new CheckFailure(`${when}: a policy naming two ${ctx.cls} filters (${ctx.info.name} and ${probe.name}) was applied to the disk`, { ...base, diskPolicy: disk.policy, diskFilters: rulesOf() })
      if (!isIofError(refusal, 'PolicyClassConflict')) throw new CheckFailure(`${when}: the policy naming two ${ctx.cls} filters was refused with ${codeOf(refusal)}, not PolicyClassConflict`, base)
      if (disk.policy !== single.name || JSON.stringify(rulesOf()) !== JSON.stringify(rulesBefore)) {
        throw new CheckFailure(`${when}: the refused policy changed the disk: it no longer has its previous policy`, { ...base, policyBefore: single.name, policyAfter: disk.policy, filtersBefore: rulesBefore, filtersAfter: rulesOf() })
      }
      attempts.push({ when, refusedWith: (refusal as IofError).code, message: (refusal as IofError).message })
    }
    await g.vm.powerOn()
    await verifyRange(g.vm, g.disk, oracle, 0, DISK_BYTES, 'a read after the refused policy, under the previous one')
    return { status: 'passed', message: `a policy naming two ${ctx.cls} filters was refused with PolicyClassConflict (VM on and off); the disk kept its previous policy and data`, evidence: { attempts } }
  }
}

const hostConflictCheck = check({
  id: 'exclusivity.host-conflict',
  title: 'A second filter of the same class is refused (either order) with FilterClassConflict, the host unchanged',
  required: true,
  classes: 'all',
}, hostConflict())

const policyConflictCheck = check({
  id: 'exclusivity.policy-conflict',
  title: "A policy naming two filters of the filter's class is refused",
  required: true,
  classes: 'all',
}, policyConflict())

const coexistenceCheck = check({
  id: 'exclusivity.coexistence',
  title: 'With the built-ins and a reference filter of the other open class on one disk, data verifies',
  required: true,
  classes: 'all',
}, async ctx => {
  const other = otherReference(ctx)
  const c = await ctx.cluster({ also: other ? [other] : [] })
  // encryption at its default position (first), spm with a limit it never reaches
  const policy: StoragePolicy = { name: 'coexist', rules: [VMCRYPT_RULE, SPM_RULE, ctx.rule({ cacheMiB: CHECK_CACHE_MIB }), ...(other ? [ctx.rule({}, other)] : [])] }
  const layout = ctx.rng.fork(1)
  const guests: WorkloadGuest[] = []
  for (const [i, name] of ['vm1', 'vm2'].entries()) {
    const g = await guestWithDisk(c, { vm: name, policy })
    guests.push({ ...g, oracle: new Oracle(DISK_BYTES), data: ctx.rng.fork(10 + i), label: name })
  }
  const n = scaled(ctx, 1000, 4000)
  // a hot set: the filter's own state (a cache's blocks) is read back through the other layers
  const r = await sharedLayoutWorkload(guests, layout, { count: n, queueDepth: 8, maxSectors: 128, hotSetBytes: MiB, lastSector: true, readRatio: 0.5, unmapRatio: 0.05, flushRatio: 0.02 })
  await Promise.all(guests.map(g => verifyRange(g.vm, g.disk, g.oracle, 0, DISK_BYTES, `${g.label}: a read of the whole disk after the workload`)))
  const chain = g0Chain(c)
  return { status: 'passed', message: `two VMs on one host, ${n} I/Os each at the same offsets with different data, verified through ${chain.join(' → ')}`, evidence: { iosPerVm: r.ios, racyReads: r.racyReads, chain } }
})

/** The filter ids on vm1's disk, in chain order. */
function g0Chain(c: Cluster): string[] {
  const vm = c.vm('vm1')
  return [...vm.disks.values()][0]!.rules.map(r => r.info.id)
}

/** The suite's checks, in catalogue order. */
export const checks: readonly CheckDef[] = [hostConflictCheck, policyConflictCheck, coexistenceCheck]
