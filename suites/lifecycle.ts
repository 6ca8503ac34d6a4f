/**
 * lifecycle.*: the filter through install, upgrade, uninstall, host reboot, host crash and policy
 * churn. The install-side checks drive the framework's lifecycle (vSphere's IoFilterManager:
 * per-host outcomes and issues named as the ESX Agent Manager names them) with the vendor's own
 * package, from a path and from a loopback HTTP server; the others drive guests under a policy
 * naming the filter and judge what the filter controls — that no I/O is lost or fails, that its
 * state survives, that its daemon releases what it holds — measured, never taken on trust.
 *
 * The hosts trust the package's own key (the vendor certifies its own package), the upgrade
 * source's, and a key the check makes for the copies it alters (a tampered download, a copy
 * whose descriptor asks for other flags), as the spec has the harness do.
 */
import { fork } from 'node:child_process'
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { create as createTar } from 'tar'
import { Cluster } from '../harness/framework/cluster.js'
import { isIofError } from '../harness/framework/errors.js'
import type { Host } from '../harness/framework/host.js'
import { Lifecycle, type FilterQueryResult, type HostOutcome, type IssueName, type OperationResult } from '../harness/framework/lifecycle.js'
import { buildPackage, generateKeyPair, readPrivateKey } from '../harness/framework/package/index.js'
import type { StoragePolicy } from '../harness/framework/policy.js'
import type { Rng } from '../harness/framework/rng.js'
import { RecoverySite } from '../harness/framework/site.js'
import type { GuestIo } from '../harness/framework/vm.js'
import type { FilterInfo } from '../harness/framework/inspect.js'
import type { CheckContext } from '../harness/certify/context.js'
import { crashBatch, type CrashChildArgs, type CrashChildMessage, type CrashShape } from '../harness/certify/crash-workload.js'
import { CHECK_CACHE_MIB, DISK_BYTES, memoryGrowth, MiB, scaled, within, type Guest } from '../harness/certify/datapath.js'
import { CheckFailure, defineCheck, type CheckOutcome } from '../harness/certify/registry.js'
import { awaitReplica, catchUpBoundMs, readThrough, rpoOf } from '../harness/certify/replica.js'
import type { SubjectData } from '../harness/certify/subject.js'
import { expectOk, firstDifference, Oracle, verifiedWorkload, verifyRange } from '../harness/certify/workloads.js'

/**
 * Copies a package's extracted files. Not fs.cpSync: it stats every parent folder of the target,
 * which the sandboxed subject may not read.
 */
function copyTree(from: string, to: string): void {
  fs.mkdirSync(to, { recursive: true })
  for (const e of fs.readdirSync(from, { withFileTypes: true })) {
    const a = path.join(from, e.name)
    const b = path.join(to, e.name)
    if (e.isDirectory()) copyTree(a, b)
    else if (e.isFile()) fs.copyFileSync(a, b)
  }
}

/** Where the guests' workloads write: the start of each 64 MiB disk. */
const REGION = 16 * MiB
const SECTOR = 512

// ---- keys, copies, clusters ----

/** The check's own signing key, for the copies of packages it alters. */
interface OwnKey {
  readonly pem: string
  readonly fingerprint: string
}

async function ownKey(ctx: CheckContext): Promise<OwnKey> {
  const k = await generateKeyPair(path.join(ctx.tmpDir('key'), 'harness'))
  return { pem: await readPrivateKey(k.privateKeyPath), fingerprint: k.fingerprint }
}

/**
 * A cluster of `hosts` hosts without the filter, set up as a certify run's hosts are: acceptance
 * level CommunitySupported, trusting the package's key, the upgrade source's and the check's own.
 */
async function packageCluster(ctx: CheckContext, hosts: number, key: OwnKey): Promise<Cluster> {
  const c = await ctx.cluster({ hosts: 0, install: false })
  const keys = [ctx.subject.keyFingerprint, ctx.options.upgradeFrom?.keyFingerprint, key.fingerprint].filter((k): k is string => typeof k === 'string')
  for (let i = 1; i <= hosts; i++) await c.addHost(`esx${i}`, { acceptanceLevel: 'CommunitySupported', trustedKeys: [...new Set(keys)] })
  return c
}

/** The package's descriptor flags for an operation (absent flags are false). */
function flagsOf(descriptor: Record<string, unknown>, op: 'install' | 'upgrade' | 'uninstall'): { maintenanceMode: boolean; reboot: boolean } {
  const f = (descriptor[op] ?? {}) as { maintenanceMode?: unknown; reboot?: unknown }
  return { maintenanceMode: f.maintenanceMode === true, reboot: f.reboot === true }
}

/** A copy of a package with descriptor fields changed, rebuilt and signed with the check's key. */
async function harnessCopy(ctx: CheckContext, from: SubjectData, key: OwnKey, change: Record<string, unknown>, label: string): Promise<string> {
  if (from.root === null) throw new Error(`the package ${from.source} has no extracted files`)
  const dir = ctx.tmpDir(`copy-${label}`)
  const stage = path.join(dir, 'package')
  copyTree(from.root, stage)
  const { files: _files, signature: _signature, ...metadata } = from.descriptor
  fs.writeFileSync(path.join(stage, 'descriptor.json'), JSON.stringify({ ...metadata, ...change }, null, 2))
  return (await buildPackage(stage, { keyPem: key.pem, out: path.join(dir, `${label}.tgz`) })).path
}

/** Regular files under `dir`, relative and sorted (directories the host keeps empty are not files). */
function filesUnder(dir: string): string[] {
  const out: string[] = []
  const walk = (rel: string) => {
    let entries: fs.Dirent[]
    try {
      entries = fs.readdirSync(path.join(dir, rel), { withFileTypes: true })
    } catch {
      return
    }
    for (const e of entries) {
      const p = rel === '' ? e.name : `${rel}/${e.name}`
      if (e.isDirectory()) walk(p)
      // a state file's temp twin lives only between its write and its rename
      else if (!(e.name.startsWith('.') && e.name.endsWith('.tmp'))) out.push(p)
    }
  }
  walk('')
  return out.sort()
}

/** A gzip tarball of the files under `root`, as a package is shipped. */
async function tarballOf(root: string, out: string): Promise<Buffer> {
  await createTar({ gzip: true, file: out, cwd: root, portable: true }, filesUnder(root))
  return fs.readFileSync(out)
}

/** The package's bytes as a download serves them (a directory package is packed as it is). */
async function packageBytes(ctx: CheckContext, s: SubjectData): Promise<Buffer> {
  if (fs.statSync(s.source).isFile()) return fs.readFileSync(s.source)
  return tarballOf(s.root!, path.join(ctx.tmpDir('tar'), 'package.tgz'))
}

/** The package with one byte of its entry file changed and its descriptor (hashes, signature) kept. */
async function tamperedBytes(ctx: CheckContext, s: SubjectData): Promise<{ bytes: Buffer; file: string }> {
  const dir = ctx.tmpDir('tampered')
  const stage = path.join(dir, 'package')
  copyTree(s.root!, stage)
  const file = String(s.descriptor.entry)
  const p = path.join(stage, file)
  const b = fs.readFileSync(p)
  b[b.length >> 1] ^= 0x20
  fs.writeFileSync(p, b)
  return { bytes: await tarballOf(stage, path.join(dir, 'tampered.tgz')), file }
}

/** The package's bytes with a run of bytes flipped in the middle of the compressed stream. */
function flippedBytes(bytes: Buffer): Buffer {
  const out = Buffer.from(bytes)
  const at = out.length >> 1
  for (let i = at; i < Math.min(out.length - 8, at + 16); i++) out[i] = out[i]! ^ 0xff
  return out
}

/** What one host's state looks like on disk: its state file and its files. */
interface HostSnapshot {
  readonly state: string
  readonly files: string[]
}

function snapshot(h: Host): HostSnapshot {
  return { state: fs.readFileSync(h.stateFile, 'utf8'), files: filesUnder(h.dir) }
}

/** How a host differs from a snapshot, or null. */
function changedSince(h: Host, before: HostSnapshot): Record<string, unknown> | null {
  const now = snapshot(h)
  const added = now.files.filter(f => !before.files.includes(f))
  const removed = before.files.filter(f => !now.files.includes(f))
  if (now.state === before.state && added.length === 0 && removed.length === 0) return null
  return { stateChanged: now.state !== before.state, filesAdded: added, filesRemoved: removed }
}

// ---- a loopback HTTP server ----

/** An answer: the bytes to send, or an HTTP status. */
type Answer = Buffer | number

interface Served {
  readonly port: number
  url(p: string): string
  /** Paths requested, in order. */
  readonly requests: string[]
}

/**
 * An HTTP server on 127.0.0.1 (an ephemeral port unless `port` is given), closed when the check
 * ends. The n-th request of a path gets the n-th answer listed for it (the last from then on).
 */
async function serve(ctx: CheckContext, routes: Record<string, Answer[]>, port = 0): Promise<Served> {
  const requests: string[] = []
  const server = http.createServer((req, res) => {
    const p = req.url ?? '/'
    const nth = requests.filter(r => r === p).length
    requests.push(p)
    const list = routes[p]
    const a = list === undefined ? 404 : list[Math.min(nth, list.length - 1)]!
    if (typeof a === 'number') res.writeHead(a).end()
    else res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': a.length }).end(a)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve())
  })
  ctx.defer(async () => {
    server.closeAllConnections()
    await new Promise<void>(resolve => server.close(() => resolve()))
  })
  const bound = (server.address() as AddressInfo).port
  return { port: bound, url: p => `http://127.0.0.1:${bound}${p}`, requests }
}

/** A loopback port that nothing listens on (a server's, closed again). */
async function closedPort(): Promise<number> {
  const s = http.createServer()
  await new Promise<void>(resolve => s.listen(0, '127.0.0.1', () => resolve()))
  const port = (s.address() as AddressInfo).port
  await new Promise<void>(resolve => s.close(() => resolve()))
  return port
}

// ---- lifecycle results ----

function outcomeLine(o: HostOutcome): string {
  return o.state === 'failed' ? `${o.host}: ${o.issue.issue} (${o.issue.message})` : `${o.host}: ${o.state}${o.status ? `, ${o.status}` : ''}`
}

function outcomes(r: OperationResult): string[] {
  return r.hosts.map(outcomeLine)
}

/** Fails the check when a host's part of an operation failed. */
function expectDone(r: OperationResult, what: string): void {
  const bad = r.hosts.filter(h => h.state === 'failed')
  if (bad.length === 0) return
  throw new CheckFailure(`${what} failed on ${bad.map(outcomeLine).join('; ')}`, { operation: r.operation, filterId: r.filterId, hosts: outcomes(r) })
}

function queryOf(lc: Lifecycle, id: string): FilterQueryResult | undefined {
  return lc.query().find(f => f.id === id)
}

/** Query lists `id` INSTALLED and available on every host of the cluster. */
function expectInstalled(lc: Lifecycle, id: string, what: string): FilterQueryResult {
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
async function settle(lc: Lifecycle, key: string, id: string, what: string): Promise<string[][]> {
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
function policyFor(ctx: CheckContext, name = 'lifecycle', info: FilterInfo = ctx.info): StoragePolicy {
  return { name, rules: [ctx.rule({ rpoSeconds: 2, cacheMiB: CHECK_CACHE_MIB }, info)] }
}

/** A guest with its oracle and its own source of I/O. */
interface Driven extends Guest {
  readonly oracle: Oracle
  readonly rng: Rng
  readonly label: string
}

/** A powered-on VM on `host` with `disks` 64 MiB disks under `policy`. */
async function poweredGuest(ctx: CheckContext, c: Cluster, host: string, vm: string, policy: StoragePolicy, disks = 1): Promise<Driven[]> {
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
async function drive(g: Driven, count: number, o: { flushRatio?: number } = {}): Promise<number> {
  return within(g.label, { vm: g.vm.name, disk: g.disk }, async () => {
    const r = await verifiedWorkload(g.vm, g.disk, g.oracle, g.rng, { count, queueDepth: 8, maxSectors: 256, regionLength: REGION, ...o })
    return r.ios
  })
}

/** Reads the guest's whole region back and compares it with its oracle. */
async function verifyGuest(g: Driven, what: string): Promise<void> {
  await within(g.label, { vm: g.vm.name, disk: g.disk }, () => verifyRange(g.vm, g.disk, g.oracle, 0, REGION, what))
}

/** The same guest after its VM object was replaced (a host reboot or restart). */
function again(c: Cluster, g: Driven): Driven {
  return { ...g, vm: c.vm(g.vm.name) }
}

async function flushGuest(g: Driven, what: string): Promise<void> {
  const io: GuestIo = { op: 'flush', offset: 0, length: 0 }
  expectOk(await g.vm.submit(g.disk, io), io, `${g.label}: ${what}`)
}

/** Waits until `pred` holds, polling; false when `ms` passed first. */
async function until(pred: () => boolean, ms: number): Promise<boolean> {
  const t0 = performance.now()
  while (!pred()) {
    if (performance.now() - t0 > ms) return false
    await new Promise(res => setTimeout(res, 5))
  }
  return true
}

/** A sidecar's bytes and identity, or null when the filter keeps none. */
interface SidecarState {
  readonly size: number
  readonly sha256: string
  readonly ino: number
}

function sidecarState(c: Cluster, disk: string, filterName: string): SidecarState | null {
  const p = c.sidecarPath(disk, filterName)
  if (!fs.existsSync(p)) return null
  const bytes = fs.readFileSync(p)
  return { size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex').slice(0, 16), ino: fs.statSync(p).ino }
}

/** The replica of each replicated disk equals the disk once the guest quiesced. */
async function expectReplicas(ctx: CheckContext, c: Cluster, guests: readonly Driven[], what: string): Promise<Record<string, unknown>[]> {
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


// ---- lifecycle.install ----

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

defineCheck({
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

// ---- lifecycle.install-failure ----

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

defineCheck({
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

// ---- lifecycle.upgrade ----

/** A guest's workload running in rounds until told to stop, counting the I/O that overlapped the upgrade. */
interface Runner {
  readonly g: Driven
  ios: number
  during: number
  after: number
}

defineCheck({
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

// ---- lifecycle.uninstall-in-use ----

defineCheck({
  id: 'lifecycle.uninstall-in-use',
  title: 'Uninstall while a disk uses it fails with `FilterInUse` naming the disks',
  required: true,
  classes: 'all',
}, async ctx => {
  const key = await ownKey(ctx)
  const id = ctx.subject.id
  const c = await packageCluster(ctx, 2, key)
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

defineCheck({
  id: 'lifecycle.uninstall-clean',
  title: 'After detach and uninstall: daemon stopped within 5 s, no timers or handles left, sidecars and files removed',
  required: true,
  classes: 'all',
}, async ctx => {
  const key = await ownKey(ctx)
  const id = ctx.subject.id
  const c = await packageCluster(ctx, 1, key)
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

// ---- lifecycle.reboot ----

defineCheck({
  id: 'lifecycle.reboot',
  title: "After a clean host restart the daemon restarts, disks reopen and the filter's state is back",
  required: true,
  classes: 'all',
}, async ctx => {
  const c = await ctx.cluster()
  const id = ctx.info.id
  const guests = await poweredGuest(ctx, c, 'esx1', 'vm1', policyFor(ctx), 2)
  const count = scaled(ctx, 500, 2000)
  // no flush at the end: a clean shutdown loses nothing, flushed or not
  for (const g of guests) {
    await drive(g, count, { flushRatio: 0.01 })
    await drive(g, 64, { flushRatio: 0 })
  }
  const running = guests.map(g => sidecarState(c, g.disk, ctx.info.name))
  const t0 = performance.now()
  await c.host('esx1').shutdown()
  const down = c.host('esx1')
  const stop = down.daemonStops.find(s => s.filter === id)?.report ?? null
  const closed = guests.map(g => sidecarState(c, g.disk, ctx.info.name))
  guests.forEach((g, i) => {
    const r = running[i]
    if (r !== null && r !== undefined && r.size > 0 && (closed[i] === null || closed[i]!.size === 0)) {
      throw new CheckFailure(`the filter discarded ${g.label}'s sidecar when the host shut down (it held ${r.size} bytes while running): its state cannot come back`, { disk: g.disk, running: r, afterShutdown: closed[i] })
    }
  })
  const h = await c.restartHost('esx1')
  const restartMs = Math.round(performance.now() - t0)
  const booted = guests.map(g => sidecarState(c, g.disk, ctx.info.name))
  guests.forEach((g, i) => {
    if (closed[i]?.sha256 !== booted[i]?.sha256) throw new CheckFailure(`${g.label}'s sidecar changed between the shutdown and the boot`, { closed: closed[i], booted: booted[i] })
  })
  const daemonFault = h.faults.find(f => f.filter === id)
  if (daemonFault !== undefined) throw new CheckFailure(`after the reboot the host recorded a fault of ${id}: ${daemonFault.message}`, { fault: daemonFault })
  if (ctx.info.hasDaemon && !h.daemons.get(id)?.alive) throw new CheckFailure(`after the reboot the daemon of ${id} is not running`, { faults: h.faults })
  for (const name of h.wasPoweredOn) {
    try {
      await h.vm(name).powerOn()
    } catch (e) {
      if (isIofError(e)) throw new CheckFailure(`after the reboot ${name} could not power on: ${e.message}`, { code: e.code, ...e.details, faults: h.vm(name).faults.slice(-5) })
      throw e
    }
  }
  const back = guests.map(g => again(c, g))
  if (back.some(g => g.vm.state !== 'on')) throw new CheckFailure('after the reboot vm1 did not power on again', { wasPoweredOn: h.wasPoweredOn })
  for (const g of back) await verifyGuest(g, 'after a clean host restart: a read of everything the guest wrote before it')
  // the filter serves new I/O, and a replication filter ships it
  for (const g of back) await drive(g, scaled(ctx, 200, 500))
  for (const g of back) await verifyGuest(g, 'after the reboot and new writes')
  const replicas = await expectReplicas(ctx, c, back, 'after the reboot and new writes')
  return {
    status: 'passed',
    message: `after a clean restart (${restartMs} ms) ${ctx.info.hasDaemon ? 'the daemon restarted, ' : ''}both disks reopened with their sidecars as the filter left them, everything written before verifies${replicas.length ? ', and new writes reached the replica' : ''}`,
    evidence: {
      restartMs, daemonStop: stop ? { ms: stop.ms, timedOut: stop.timedOut } : null,
      sidecars: guests.map((g, i) => ({ disk: g.disk, running: running[i], afterShutdown: closed[i], atBoot: booted[i], afterReopen: sidecarState(c, g.disk, ctx.info.name) })),
      replicas,
    },
  }
})

// ---- lifecycle.crash ----

const CRASH_CHILD = fileURLToPath(new URL('../harness/certify/crash-child.js', import.meta.url))

/** What the killed child reported. */
interface ChildRun {
  readonly acked: number
  readonly flushed: number
  readonly readyMs: number
  readonly killedAfterMs: number
}

/**
 * Runs the crash workload in a child process and kills it with SIGKILL as soon as batch `killAt`
 * has completed to the guest — its flush, or the next batch, is then in flight.
 */
async function runChild(ctx: CheckContext, args: CrashChildArgs, killAt: number): Promise<ChildRun> {
  const child = fork(CRASH_CHILD, [JSON.stringify(args)], { execArgv: [], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
  let stderr = ''
  child.stderr?.on('data', (b: Buffer) => {
    if (stderr.length < 8000) stderr += b.toString()
  })
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  ctx.defer(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  })
  let acked = -1
  let flushed = -1
  let readyMs = 0
  const t0 = performance.now()
  type End = { kind: 'killed' } | { kind: 'message'; m: CrashChildMessage } | { kind: 'exit' } | { kind: 'timeout' }
  const end = await new Promise<End>(resolve => {
    const timer = setTimeout(() => resolve({ kind: 'timeout' }), 90_000)
    child.on('message', (m: CrashChildMessage) => {
      // messages already on their way when the kill lands are still true: a flush they report completed
      if (m.t === 'ready') readyMs = m.ms
      else if (m.t === 'acked') {
        acked = Math.max(acked, m.batch)
        if (m.batch >= killAt && child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL')
          clearTimeout(timer)
          resolve({ kind: 'killed' })
        }
      } else if (m.t === 'flushed') flushed = Math.max(flushed, m.batch)
      else {
        clearTimeout(timer)
        resolve({ kind: 'message', m })
      }
    })
    void exited.then(() => {
      clearTimeout(timer)
      resolve({ kind: 'exit' })
    })
  })
  const killedAfterMs = Math.round(performance.now() - t0)
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  await exited
  if (end.kind === 'killed') return { acked, flushed, readyMs, killedAfterMs }
  if (end.kind === 'timeout') throw new CheckFailure(`the crash workload did not reach batch ${killAt} within 90 s (last batch completed: ${acked}): the filter hangs or is far too slow`, { acked, flushed })
  if (end.kind === 'message' && end.m.t === 'io-error') {
    const m = end.m
    throw new CheckFailure(`before the crash, a guest ${m.op} at offset ${m.offset} (batch ${m.batch}) failed with ${m.error}`, { io: { op: m.op, offset: m.offset, length: m.length }, error: m.error, batch: m.batch })
  }
  if (end.kind === 'message' && end.m.t === 'failed' && ['OpenFailed', 'WorkerFailed', 'DaemonFailed', 'PolicyParamsInvalid'].includes(end.m.code)) {
    throw new CheckFailure(`the host process could not run the VM: ${end.m.message}`, { code: end.m.code })
  }
  throw new Error(`the crash child ended unexpectedly (${end.kind === 'message' ? JSON.stringify(end.m) : end.kind}): ${stderr.split('\n').slice(0, 8).join(' | ')}`)
}

defineCheck({
  id: 'lifecycle.crash',
  title: 'Host killed mid-workload (power cut): every write completed before a completed flush is there after restart, the filter reopens, and a replica equals the disk once quiesced',
  required: true,
  classes: 'all',
}, async ctx => {
  const c = await ctx.cluster()
  const dir = c.options.dir
  const h = c.host('esx1')
  const policy = policyFor(ctx)
  c.createPolicy(policy)
  h.createVm('vm1')
  // file-backed: the disk and its journal must outlive the process that is killed
  const disk = (await h.addDisk('vm1', { id: 'vm1-disk0', capacity: DISK_BYTES, backing: 'file', policy: policy.name })).id
  // the child runs the cluster from its directory from here on: this process lets go of it first
  await c.shutdown()
  const siteDir = path.join(dir, 'sites', 'dr')
  const region = 8 * MiB
  const shape: CrashShape = { seed: ctx.rng.u32(), writes: 48, queueDepth: 8, maxSectors: 64, regionStart: 0, regionLength: region }
  const killAt = (ctx.quick ? 3 : 8) + ctx.rng.int(3)
  const run = await runChild(ctx, { dir, vm: 'vm1', disk, siteDir, batches: killAt + 50, shape }, killAt)
  // restart from the directory: the host boots and replays the power cut from the drive's journal
  const t0 = performance.now()
  const c2 = await Cluster.open(dir)
  ctx.defer(() => c2.shutdown({ remove: false }))
  c2.sites.set('dr', new RecoverySite('dr', { dir: siteDir }))
  const h2 = c2.host('esx1')
  const daemonFault = h2.faults.find(f => f.filter === ctx.info.id)
  if (daemonFault !== undefined) throw new CheckFailure(`after the crash the host recorded a fault of the filter: ${daemonFault.message}`, { fault: daemonFault })
  const vm = h2.vm('vm1')
  try {
    await vm.powerOn()
  } catch (e) {
    if (isIofError(e)) throw new CheckFailure(`after the power cut the filter did not reopen the disk: ${e.message}`, { code: e.code, ...e.details, faults: vm.faults.slice(-5) })
    throw e
  }
  const restartMs = Math.round(performance.now() - t0)
  // what must be there: every batch up to the last completed flush; any later write may be too
  const durable = new Uint8Array(region)
  const later = new Map<number, Uint8Array[]>()
  let writes = 0
  for (let b = 0; b <= run.acked + 3; b++) {
    for (const io of crashBatch(shape, b)) {
      writes++
      const data = io.data!
      if (b <= run.flushed) {
        durable.set(data, io.offset - shape.regionStart)
        continue
      }
      for (let s = 0; s < data.length; s += SECTOR) {
        const sector = (io.offset - shape.regionStart + s) / SECTOR
        let list = later.get(sector)
        if (list === undefined) later.set(sector, (list = []))
        list.push(data.subarray(s, s + SECTOR))
      }
    }
  }
  const got = await readThrough(vm, disk, shape.regionStart, region)
  let laterSectors = 0
  for (let at = 0; at < region; at += SECTOR) {
    const found = got.subarray(at, at + SECTOR)
    const want = durable.subarray(at, at + SECTOR)
    if (Buffer.from(found).equals(Buffer.from(want))) continue
    const candidates = later.get(at / SECTOR) ?? []
    if (candidates.some(w => Buffer.from(found).equals(Buffer.from(w)))) {
      laterSectors++
      continue
    }
    const d = firstDifference(want, found)!
    throw new CheckFailure(`after the power cut and a restart, the sector at offset ${shape.regionStart + at} holds neither what the flush completed after batch ${run.flushed} made durable nor a later write`, {
      offset: shape.regionStart + at + d.at, expected: d.expected, found: d.found, lastFlushedBatch: run.flushed, lastAckedBatch: run.acked, laterWritesToSector: candidates.length,
    })
  }
  // the reopened filter serves new I/O, on a stretch of the disk the crash workload never touched
  const fresh: Driven = { vm, disk, oracle: new Oracle(DISK_BYTES), rng: ctx.rng.fork(9), label: 'vm1/vm1-disk0' }
  fresh.oracle.bytes.set(got, shape.regionStart)
  const ios = await within('after the restart', {}, () => verifiedWorkload(vm, disk, fresh.oracle, fresh.rng, { count: scaled(ctx, 200, 1000), queueDepth: 8, maxSectors: 128, regionStart: 2 * region, regionLength: region }))
  await within('after the restart', {}, () => verifyRange(vm, disk, fresh.oracle, 0, 3 * region, 'a read after the new writes'))
  const replicas = await expectReplicas(ctx, c2, [fresh], 'after the power cut, the restart and new writes')
  return {
    status: 'passed',
    message: `the host process was killed (SIGKILL) after batch ${run.acked} of the workload completed (last completed flush after batch ${run.flushed}); after a restart from its directory every write completed before that flush was there, the filter reopened and served ${ios.ios} new I/Os${replicas.length ? ', and the replica equals the disk' : ''}`,
    evidence: {
      killedAtBatch: run.acked, lastFlushedBatch: run.flushed, writesPerBatch: shape.writes, writesConsidered: writes, sectorsHoldingLaterWrites: laterSectors,
      childReadyMs: run.readyMs, childRanMs: run.killedAfterMs, restartMs, replicas,
    },
  }
})

// ---- lifecycle.attach-detach ----

/** The spec's count, in --quick too: a leak per cycle must have cycles to show. */
const CYCLES = 200
const WARM_UP = 20
const READ_EVERY = 2
/** Growth allowed over the measured cycles: a few MiB of heap noise, far below any per-cycle leak. */
const GROWTH_BOUND = 8 * MiB

/** One reading of the VM worker: memory after GC and its live handles. */
interface Reading {
  readonly cycle: number
  readonly heapUsed: number
  readonly external: number
  readonly arrayBuffers: number
  readonly handles: readonly string[]
}

/** Live handles by type. */
function byType(handles: readonly string[]): Record<string, number> {
  return handles.reduce<Record<string, number>>((m, x) => ({ ...m, [x]: (m[x] ?? 0) + 1 }), {})
}

/**
 * A window of readings: the lowest memory figures, and per type of handle the fewest and the most
 * seen. Buffers handed to another thread are released lazily (measured: the reference replication
 * filter's VM worker holds up to ~60 MB of chunks it posted to its daemon, let go of every ~50
 * cycles), and the framework's own timers come and go; a leak raises the floor, which the lowest
 * reading of a long enough window shows.
 */
function windowOf(rs: readonly Reading[]): { heapUsed: number; external: number; arrayBuffers: number; fewestHandles: Record<string, number>; mostHandles: Record<string, number> } {
  const types = [...new Set(rs.flatMap(r => r.handles))]
  const counts = rs.map(r => byType(r.handles))
  return {
    heapUsed: Math.min(...rs.map(r => r.heapUsed)),
    external: Math.min(...rs.map(r => r.external)),
    arrayBuffers: Math.min(...rs.map(r => r.arrayBuffers)),
    fewestHandles: Object.fromEntries(types.map(t => [t, Math.min(...counts.map(c => c[t] ?? 0))])),
    mostHandles: Object.fromEntries(types.map(t => [t, Math.max(...counts.map(c => c[t] ?? 0))])),
  }
}

defineCheck({
  id: 'lifecycle.attach-detach',
  title: '200 policy apply/remove cycles on a VM that stays powered on: memory (heap + external + array buffers, after GC) and live handles stay bounded',
  required: true,
  classes: 'all',
}, async ctx => {
  // no seeded completion delays: this check measures memory, and 200 cycles must stay cheap
  const c = await ctx.cluster({ reorder: false })
  const h = c.host('esx1')
  const policy = policyFor(ctx)
  c.createPolicy(policy)
  h.createVm('vm1')
  // each apply is a first attach for the filter: a replication filter copies the disk to its site
  // every time, so a small disk keeps the cycles cheap; memory, not data, is measured here
  const disk = (await h.addDisk('vm1', { id: 'vm1-disk0', capacity: 8 * MiB })).id
  const vm = h.vm('vm1')
  await vm.powerOn()
  const model = new Uint8Array(8 * MiB)
  const rng = ctx.rng.fork(1)
  const cycle = async (i: number) => {
    await h.setPolicy('vm1', disk, policy.name)
    // one write and its read-back through the open instance, so every cycle carries I/O
    const offset = (i % 256) * 4096
    const data = rng.fill(new Uint8Array(4096))
    const w: GuestIo = { op: 'write', offset, data }
    expectOk(await vm.submit(disk, w), w, `cycle ${i + 1}: a write with the policy applied`)
    model.set(data, offset)
    const rd: GuestIo = { op: 'read', offset, length: 4096 }
    const r = await vm.submit(disk, rd)
    expectOk(r, rd, `cycle ${i + 1}: a read with the policy applied`)
    const d = firstDifference(data, (r as { data: Uint8Array }).data)
    if (d !== null) throw new CheckFailure(`cycle ${i + 1}: a read returned other bytes than the write before it at offset ${offset + d.at}`, { cycle: i + 1, offset: offset + d.at, expected: d.expected, found: d.found })
    await h.setPolicy('vm1', disk, null)
  }
  const read = async (n: number): Promise<Reading> => {
    const m = await vm.memory(true)
    return { cycle: n, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, handles: m.resources }
  }
  const t0 = performance.now()
  for (let i = 0; i < WARM_UP; i++) await cycle(i)
  const readings: Reading[] = [await read(WARM_UP)]
  for (let i = WARM_UP; i < CYCLES; i++) {
    await cycle(i)
    if ((i + 1) % READ_EVERY === 0) readings.push(await read(i + 1))
  }
  const totalMs = Math.round(performance.now() - t0)
  if (vm.state !== 'on') throw new CheckFailure(`the VM did not stay powered on through the cycles: ${vm.lastPowerOff?.detail ?? vm.state}`, { lastPowerOff: vm.lastPowerOff })
  const measured = CYCLES - WARM_UP
  const span = measured / 3
  const first = windowOf(readings.filter(r => r.cycle <= WARM_UP + span))
  const last = windowOf(readings.filter(r => r.cycle >= CYCLES - span))
  const growth = memoryGrowth(first, last)
  const cyclesApart = CYCLES - span - WARM_UP
  const mib = (n: number) => Math.round((n / MiB) * 100) / 100
  const evidence = {
    cycles: CYCLES, warmUp: WARM_UP, boundBytes: GROWTH_BOUND,
    bound: `read every ${READ_EVERY} cycles: the lowest memory reading (heap + off-heap, after GC) of the last ${span} cycles may exceed the lowest of the first ${span} after a warm-up of ${WARM_UP} by at most ${GROWTH_BOUND / MiB} MiB, and no type of live handle may be more numerous throughout the last ${span} cycles than it ever was in the first ${span}`,
    firstWindow: first, lastWindow: last, growthBytes: growth, perCycleBytes: Math.round(growth / cyclesApart), totalMs,
    readings: readings.map(r => ({ cycle: r.cycle, heapMiB: mib(r.heapUsed), externalMiB: mib(r.external), arrayBuffersMiB: mib(r.arrayBuffers), handles: r.handles.length })),
  }
  if (growth > GROWTH_BOUND) {
    throw new CheckFailure(`the VM worker's memory (heap + off-heap, after GC) grew by ${mib(growth)} MiB between the first and the last ${span} of ${measured} apply/remove cycles (~${Math.round(growth / cyclesApart / 1024)} KiB per cycle), above the ${GROWTH_BOUND / MiB} MiB bound: something is kept per attach or open`, evidence)
  }
  const grown = Object.entries(last.fewestHandles).filter(([t, n]) => n > (first.mostHandles[t] ?? 0)).map(([t, n]) => `${t}: at most ${first.mostHandles[t] ?? 0} early on, at least ${n} at the end`)
  if (grown.length > 0) {
    throw new CheckFailure(`the VM worker's live handles grew over ${measured} apply/remove cycles (${grown.join('; ')}): a timer or handle is left per attach or open`, evidence)
  }
  const data: GuestIo = { op: 'read', offset: 0, length: 8 * MiB }
  const all = await vm.submit(disk, data)
  expectOk(all, data, 'a read of the disk after the cycles')
  const d = firstDifference(model, (all as { data: Uint8Array }).data)
  if (d !== null) throw new CheckFailure(`after the cycles the disk differs from what was written at offset ${d.at}`, { offset: d.at, expected: d.expected, found: d.found })
  return {
    status: 'passed',
    message: `${CYCLES} apply/remove cycles on a powered-on VM: memory grew ${mib(growth)} MiB (bound ${GROWTH_BOUND / MiB} MiB) and no live handle type grew (fewest at the end: ${JSON.stringify(last.fewestHandles)})`,
    evidence,
  }
})
