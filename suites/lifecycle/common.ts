/**
 * What the lifecycle checks share: operation results judged per host, guests under a policy naming
 * the filter, and the replicas of replicated disks.
 */
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import { Cluster, type FilterInfo, type GuestIo, type Rng, type StoragePolicy } from '../../harness/framework/index.js'
import { Lifecycle, type FilterQueryResult, type HostOutcome, type OperationResult } from '../../harness/framework/lifecycle/index.js'
import type { CheckContext } from '../../harness/certify/context.js'
import { CHECK_CACHE_MIB, DISK_BYTES, MiB, within, type Guest } from '../../harness/certify/datapath.js'
import { CheckFailure } from '../../harness/certify/check.js'
import { awaitReplica, catchUpBoundMs, readThrough, rpoOf } from '../../harness/certify/replica.js'
import { expectOk, Oracle, verifiedWorkload, verifyRange } from '../../harness/certify/workloads.js'

/** Where the guests' workloads write: the start of each 64 MiB disk. */
const REGION = 16 * MiB
export const SECTOR = 512

// ---- lifecycle results ----

export function outcomeLine(o: HostOutcome): string {
  return o.state === 'failed' ? `${o.host}: ${o.issue.issue} (${o.issue.message})` : `${o.host}: ${o.state}${o.status ? `, ${o.status}` : ''}`
}

export function outcomes(r: OperationResult): string[] {
  return r.hosts.map(outcomeLine)
}

/** Fails the check when a host's part of an operation failed. */
export function expectDone(r: OperationResult, what: string): void {
  const bad = r.hosts.filter(h => h.state === 'failed')
  if (bad.length === 0) return
  throw new CheckFailure(`${what} failed on ${bad.map(outcomeLine).join('; ')}`, { operation: r.operation, filterId: r.filterId, hosts: outcomes(r) })
}

export function queryOf(lc: Lifecycle, id: string): FilterQueryResult | undefined {
  return lc.query().find(f => f.id === id)
}

/** Query lists `id` INSTALLED and available on every host of the cluster. */
export function expectInstalled(lc: Lifecycle, id: string, what: string): FilterQueryResult {
  const q = queryOf(lc, id)
  if (q === undefined) throw new CheckFailure(`${what}: query does not list ${id}`, { query: lc.query().map(f => ({ id: f.id, url: f.url, hosts: f.hosts })) })
  const bad = q.hosts.filter(h => h.status !== 'INSTALLED' || !h.available || h.installedId !== id)
  if (bad.length > 0) {
    throw new CheckFailure(`${what}: query shows ${id} ${bad.map(h => `${h.status ?? 'absent'}${h.installedId && h.installedId !== id ? ` (running ${h.installedId})` : ''} on ${h.host}`).join(', ')}, not INSTALLED on every host`, {
      hosts: q.hosts, issues: lc.issues(id).map(i => `${i.host}: ${i.issue}`),
    })
  }
  return q
}

/**
 * Retries (`resolveInstallationErrors`, which also reboots hosts that owe a reboot) until every
 * host runs `id`: a host that reinstalls with a reboot flag needs a second round.
 */
export async function settle(lc: Lifecycle, key: string, id: string, what: string): Promise<string[][]> {
  const rounds: string[][] = []
  for (let i = 0; i < 3; i++) {
    const q = queryOf(lc, id)
    if (q !== undefined && q.hosts.every(h => h.status === 'INSTALLED')) break
    const r = await lc.resolveInstallationErrors(i === 0 ? key : id)
    rounds.push(outcomes(r))
    expectDone(r, `${what}: resolveInstallationErrors`)
  }
  expectInstalled(lc, id, what)
  return rounds
}

// ---- guests ----

/** The filter under test alone, with the harness's conventional parameters (a 2 s RPO for replication). */
export function policyFor(ctx: CheckContext, name = 'lifecycle', info: FilterInfo = ctx.info): StoragePolicy {
  return { name, rules: [ctx.rule({ rpoSeconds: 2, cacheMiB: CHECK_CACHE_MIB }, info)] }
}

/** A guest with its oracle and its own source of I/O. */
export interface Driven extends Guest {
  readonly oracle: Oracle
  readonly rng: Rng
  readonly label: string
}

/** A powered-on VM on `host` with `disks` 64 MiB disks under `policy`. */
export async function poweredGuest(ctx: CheckContext, c: Cluster, host: string, vm: string, policy: StoragePolicy, disks = 1): Promise<Driven[]> {
  const h = c.host(host)
  h.createVm(vm)
  c.createPolicy(policy)
  const ids: string[] = []
  for (let i = 0; i < disks; i++) ids.push((await h.addDisk(vm, { id: `${vm}-disk${i}`, capacity: DISK_BYTES })).id)
  const v = h.vm(vm)
  await v.powerOn()
  // applied to the running VM, as an administrator does: attach and open in its worker
  for (const d of ids) await h.setPolicy(vm, d, policy.name)
  return ids.map((d, i) => ({ vm: v, disk: d, oracle: new Oracle(DISK_BYTES), rng: ctx.rng.fork(i + 1), label: `${vm}/${d}` }))
}

/** A verified workload on a guest's region; the label names the guest in a failure. */
export async function drive(g: Driven, count: number, o: { flushRatio?: number } = {}): Promise<number> {
  return within(g.label, { vm: g.vm.name, disk: g.disk }, async () => {
    const r = await verifiedWorkload(g.vm, g.disk, g.oracle, g.rng, { count, queueDepth: 8, maxSectors: 256, regionLength: REGION, ...o })
    return r.ios
  })
}

/** Reads the guest's whole region back and compares it with its oracle. */
export async function verifyGuest(g: Driven, what: string): Promise<void> {
  await within(g.label, { vm: g.vm.name, disk: g.disk }, () => verifyRange(g.vm, g.disk, g.oracle, 0, REGION, what))
}

/** The same guest after its VM object was replaced (a host reboot or restart). */
export function again(c: Cluster, g: Driven): Driven {
  return { ...g, vm: c.vm(g.vm.name) }
}

async function flushGuest(g: Driven, what: string): Promise<void> {
  const io: GuestIo = { op: 'flush', offset: 0, length: 0 }
  expectOk(await g.vm.submit(g.disk, io), io, `${g.label}: ${what}`)
}

/** Waits until `pred` holds, polling; false when `ms` passed first. */
export async function until(pred: () => boolean, ms: number): Promise<boolean> {
  const t0 = performance.now()
  while (!pred()) {
    if (performance.now() - t0 > ms) return false
    await new Promise(res => setTimeout(res, 5))
  }
  return true
}

/** A sidecar's bytes and identity, or null when the filter keeps none. */
export interface SidecarState {
  readonly size: number
  readonly sha256: string
  readonly ino: number
}

export function sidecarState(c: Cluster, disk: string, filterName: string): SidecarState | null {
  const p = c.sidecarPath(disk, filterName)
  if (!fs.existsSync(p)) return null
  const bytes = fs.readFileSync(p)
  return { size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex').slice(0, 16), ino: fs.statSync(p).ino }
}

/** The replica of each replicated disk equals the disk once the guest quiesced. */
export async function expectReplicas(ctx: CheckContext, c: Cluster, guests: readonly Driven[], what: string): Promise<Record<string, unknown>[]> {
  if (ctx.cls !== 'replication') return []
  const site = c.site('dr')!
  const bound = catchUpBoundMs(rpoOf(ctx.rule({ rpoSeconds: 2 })))
  const out: Record<string, unknown>[] = []
  for (const g of guests) {
    await flushGuest(g, `${what}: the flush before comparing the replica`)
    const bytes = await readThrough(g.vm, g.disk, 0, DISK_BYTES)
    const caught = await awaitReplica(site, g.disk, 0, bytes, bound)
    if (!caught.caughtUp) {
      throw new CheckFailure(`${what}: ${caught.waitedMs} ms after ${g.label} quiesced, its replica at the recovery site still differs from the disk at offset ${caught.difference!.offset}`, {
        disk: g.disk, ...caught.difference, boundMs: bound, arrivals: caught.arrivals,
      })
    }
    out.push({ disk: g.disk, catchUpMs: caught.waitedMs, arrivals: caught.arrivals })
  }
  return out
}
