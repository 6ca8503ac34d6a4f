/**
 * The install lifecycle across a cluster, as vSphere's IoFilterManager runs it: install, upgrade
 * and uninstall act on every host of a cluster, host by host. A host that fails keeps exactly
 * what it had and gets an issue named as the ESX Agent Manager names it; the other hosts
 * proceed. An uninstall is checked on every host first, and one that a host would refuse (disks
 * using the filter, maintenance mode it cannot enter) changes no host. Every operation is
 * idempotent, and `resolveInstallationErrors` retries.
 *
 * Per host an install is: download → verify (schema, paths, hashes, signature, acceptance level
 * against that host's level and trust store) → class open → ABI → one filter per class → enter
 * maintenance mode when the descriptor asks → move the verified files into
 * `hosts/<h>/filters/<filterId>/` → load the module's shape (its code first runs here) → activate
 * (or leave it pending reboot) → leave maintenance mode.
 *
 * The cluster-level records live in `<cluster>/lifecycle.json` (see state.ts), written
 * atomically at every step, and a host's own state is the commit point for that host: a process
 * killed mid-operation leaves each host with the filter or without it, and `Lifecycle.open`
 * removes half-made files and reports the unfinished hosts as `OperationInterrupted`.
 */
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises'
import * as path from 'node:path'
import type { Cluster } from '../cluster.js'
import { BadOption, FilterInUse, HostNotEmpty, IofError, isIofError } from '../errors.js'
import type { AcceptanceLevel, Host, InstalledFilter } from '../host.js'
import type { FilterInfo } from '../inspect.js'
import {
  defaultPolicyOf, filterId as filterIdOf, isClassOpen, OPEN_CLASSES, openPackage, SUPPORTED_ABI_VERSIONS, verifyPackage,
  type Descriptor, type OpenedPackage, type VerifiedPackage,
} from '../package/index.js'
import { fetchPackage, parsePackageUrl, type PackageUrl } from './fetch.js'
import {
  FilterNotFound, FilterVersionConflict, HostOperationFailed, issueOf, OperationInterrupted, UpgradeNotApplicable,
  VibCannotPutHostInMaintenanceMode, VibCannotPutHostOutOfMaintenanceMode, VibDependenciesNotMetByHost, VibInvalidFormat,
  VibRequirementsNotMetByHost, VibRequiresHostInMaintenanceMode, VibRequiresHostReboot,
  type HostIssue, type LifecycleOperation,
} from './issues.js'
import { compareSemver, readState, STATE_FILE, writeState, type FilterRecord, type LifecycleState, type PendingHost, type StoredIssue } from './state.js'

export * from './issues.js'
export { parsePackageUrl, type PackageUrl } from './fetch.js'
export { compareSemver, STATE_FILE } from './state.js'

/** Lifecycle settings, resolved once (defaults documented here). */
export interface LifecycleOptions {
  /** Bound on one package download, request to last byte (default 60 s). */
  readonly downloadTimeoutMs: number
  /** Largest package a download may be (default 256 MiB). */
  readonly maxDownloadBytes: number
  /**
   * Put hosts in maintenance mode when a descriptor asks for it, and take them out after
   * (default true, as EAM does). Off: such a host gets `VibRequiresHostInMaintenanceMode`
   * unless it is in maintenance mode already.
   */
  readonly autoMaintenance: boolean
}

/** A host's status for a filter. */
export type HostFilterStatus = InstalledFilter['status']

/** One host's view of a filter in `query()`. */
export interface FilterHostState {
  readonly host: string
  /** The filter (some version of it) is active on the host: policies can use it. */
  readonly available: boolean
  /** null: not installed and no issue. */
  readonly status: HostFilterStatus | null
  /** The id the host runs, which differs from the filter's id while an upgrade failed there. */
  readonly installedId: string | null
}

/** A filter of the cluster, as vSphere's ClusterIoFilterInfo plus per-host state. */
export interface FilterQueryResult {
  /** null while no host could read the package (then `url` names it). */
  readonly id: string | null
  readonly name: string | null
  readonly vendor: string | null
  readonly version: string | null
  readonly class: string | null
  readonly summary: string | null
  readonly releaseDate: string | null
  /** The last operation asked of the cluster for this filter. */
  readonly operation: LifecycleOperation
  readonly url: string
  readonly hosts: readonly FilterHostState[]
}

/** What one operation did on one host; a failure carries the host's issue. */
export type HostOutcome =
  | { readonly host: string; readonly state: 'done' | 'unchanged'; readonly operation: PendingHost['operation']; readonly filterId: string | null; readonly status: HostFilterStatus | null; readonly message: string }
  | { readonly host: string; readonly state: 'failed'; readonly operation: PendingHost['operation']; readonly filterId: string | null; readonly issue: HostIssue }

/** The result of a cluster operation: ok when no host failed. */
export interface OperationResult {
  readonly operation: LifecycleOperation | 'resolve'
  readonly filterId: string | null
  readonly url: string | null
  readonly ok: boolean
  /**
   * The operation was refused before it changed any host (an uninstall some host would refuse):
   * every host kept what it had, the failed hosts say why, and no issue was recorded. Run the
   * operation again once the cause is gone.
   */
  readonly refused: boolean
  readonly hosts: readonly HostOutcome[]
}

/** A host that still has VMs cannot leave the cluster (they would be lost with it). */
export { HostNotEmpty } from '../errors.js'

/** A package checked for one host, not yet placed. */
interface Staged {
  readonly work: string
  readonly opened: OpenedPackage
  readonly descriptor: Descriptor
  readonly sha256: string | null
}

/** The record an operation works on; `ref` moves when a new record turns out to be an existing filter. */
interface OpContext {
  ref: number
}

const NO_REQUIREMENTS = Object.freeze({ maintenanceMode: false, reboot: false })

/**
 * The lifecycle of one cluster's filters. Its operations run one at a time; run one operation
 * at a time per cluster (one Lifecycle, or several used one after another).
 */
export class Lifecycle {
  readonly options: LifecycleOptions
  private queue: Promise<unknown> = Promise.resolve()
  private busy = false
  private didRecover = false

  private constructor(readonly cluster: Cluster, options: LifecycleOptions, private st: LifecycleState) {
    this.options = options
  }

  /**
   * Reads the cluster's lifecycle records and recovers from a process that died mid-operation:
   * hosts it had not finished get `OperationInterrupted` (or nothing, if they were done), a host
   * it left in maintenance mode leaves it, and half-made files are removed. The hosts need not be
   * up. An operation in flight of a live process is left alone, unless `how.exclusive` says the
   * caller holds the cluster's lock (then whatever is in flight is a dead process's).
   */
  static async open(cluster: Cluster, o: Partial<LifecycleOptions> = {}, how: { readonly exclusive?: boolean } = {}): Promise<Lifecycle> {
    const options: LifecycleOptions = Object.freeze({
      downloadTimeoutMs: o.downloadTimeoutMs ?? 60_000,
      maxDownloadBytes: o.maxDownloadBytes ?? 256 * 1024 * 1024,
      autoMaintenance: o.autoMaintenance ?? true,
    })
    if (!(options.downloadTimeoutMs > 0)) throw BadOption({ option: 'downloadTimeoutMs', reason: `must be positive, got ${options.downloadTimeoutMs}` })
    if (!(options.maxDownloadBytes > 0)) throw BadOption({ option: 'maxDownloadBytes', reason: `must be positive, got ${options.maxDownloadBytes}` })
    const lc = new Lifecycle(cluster, options, readState(cluster.options.dir))
    await lc.recover(how.exclusive === true)
    return lc
  }

  /** Whether opening found something to recover from (an operation in flight, reboots or records to settle). */
  get recovered(): boolean {
    return this.didRecover
  }

  /**
   * Boots the hosts that are down as a session that resumes work on the cluster (the CLI, one
   * process per command) does: that is no reboot, so filters pending reboot stay pending (booting
   * would activate them).
   */
  async resume(): Promise<void> {
    const aside: [Host, InstalledFilter][] = []
    for (const r of this.st.reboots) {
      if (r.kind !== 'install') continue
      const h = this.cluster.hosts.get(r.host)
      const f = h?.filters.get(r.filterId)
      if (h === undefined || h.up || f?.status !== 'PENDING_REBOOT') continue
      h.filters.delete(r.filterId)
      aside.push([h, f])
    }
    try {
      await this.cluster.boot()
    } finally {
      for (const [h, f] of aside) h.filters.set(f.info.id, f)
      for (const h of new Set(aside.map(([h]) => h))) h.save()
    }
  }

  // ---- operations ----

  /** Installs the package at `url` on every host. */
  install(url: string): Promise<OperationResult> {
    return this.serial(async () => {
      const source = parsePackageUrl(url)
      let rec = this.st.filters.find(r => r.url === source.url)
      if (rec === undefined) rec = this.newRecord(source.url, null, 'install')
      else if (rec.operation === 'uninstall') rec.operation = 'install'
      return this.run({ ref: rec.ref }, [...this.cluster.hosts.keys()].map(host => ({ host, operation: 'install', url: source.url })), 'install')
    })
  }

  /** Upgrades `filterId` to the package at `url` (same name, vendor and class; higher version) on every host. */
  upgrade(filterId: string, url: string): Promise<OperationResult> {
    return this.serial(async () => {
      const source = parsePackageUrl(url)
      const rec = this.find(filterId)
      if (rec === undefined || rec.id === null || rec.descriptor === null) throw FilterNotFound({ filter: filterId })
      return this.run({ ref: rec.ref }, [...this.cluster.hosts.keys()].map(host => ({ host, operation: 'upgrade', url: source.url })), 'upgrade')
    })
  }

  /**
   * Uninstalls `filterId` from every host. Every host is checked first: when one would refuse —
   * disks use the filter there (FilterInUse), it needs maintenance mode it cannot enter
   * (VibCannotPutHostInMaintenanceMode, VibRequiresHostInMaintenanceMode), it is down — no host
   * is changed and the result is `refused`. A host that fails part way (a daemon that does not
   * stop) keeps its issue while the others uninstall; resolve retries it.
   */
  uninstall(filterId: string): Promise<OperationResult> {
    return this.serial(async () => {
      let rec = this.find(filterId)
      const hosts = [...this.cluster.hosts.values()]
      // a filter installed without a package (a development install) can still be removed
      if (rec === undefined && !hosts.some(h => h.filters.has(filterId))) {
        const outcomes = hosts.map(h => ({ host: h.name, state: 'unchanged', operation: 'uninstall', filterId, status: null, message: 'not installed' }) as const)
        return { operation: 'uninstall', filterId, url: null, ok: true, refused: false, hosts: outcomes }
      }
      const target = rec ?? { descriptor: null, id: filterId }
      const refusals = new Map(hosts.map(h => [h.name, this.uninstallRefusal(h, target)] as const).filter(([, err]) => err !== null))
      if (refusals.size > 0) {
        const id = rec === undefined ? filterId : rec.id
        const refusedOn = [...refusals.keys()].join(', ')
        const outcomes = hosts.map((h): HostOutcome => {
          const err = refusals.get(h.name)
          const cur = lineOf(h, target)
          if (err !== undefined && err !== null) return { host: h.name, state: 'failed', operation: 'uninstall', filterId: cur?.info.id ?? id, issue: issueOf(err, { host: h.name, filterId: cur?.info.id ?? id, operation: 'uninstall', url: null }) }
          if (cur === undefined) return { host: h.name, state: 'unchanged', operation: 'uninstall', filterId: id, status: null, message: 'not installed' }
          return { host: h.name, state: 'unchanged', operation: 'uninstall', filterId: cur.info.id, status: cur.status, message: `${cur.info.id} kept: the uninstall was refused on ${refusedOn}` }
        })
        return { operation: 'uninstall', filterId: id, url: rec === undefined || rec.url === '' ? null : rec.url, ok: false, refused: true, hosts: outcomes }
      }
      if (rec === undefined) {
        rec = this.newRecord('', null, 'uninstall')
        rec.id = filterId
      }
      rec.operation = 'uninstall'
      return this.run({ ref: rec.ref }, hosts.map(h => ({ host: h.name, operation: 'uninstall', url: null })), 'uninstall')
    })
  }

  /**
   * Retries the filter's operation on `host`, or on every host with an issue for it, or whose
   * state differs from what the cluster asked; a host that owes a reboot for it is rebooted
   * (in maintenance mode, so not while it has powered-on VMs).
   */
  resolveInstallationErrors(filterId: string, host?: string): Promise<OperationResult> {
    return this.serial(async () => {
      const rec = this.find(filterId)
      if (rec === undefined) throw FilterNotFound({ filter: filterId })
      const names = host === undefined ? [...this.cluster.hosts.keys()] : [this.cluster.host(host).name]
      const tasks: PendingHost[] = []
      for (const name of names) {
        const h = this.cluster.host(name)
        const cur = lineOf(h, rec)
        const issue = this.st.issues.find(i => i.ref === rec.ref && i.host === name)
        const drift = rec.operation === 'uninstall' ? cur !== undefined : rec.id === null || cur?.info.id !== rec.id
        const owes = cur !== undefined && (cur.status === 'PENDING_REBOOT' || this.st.reboots.some(r => r.host === name && r.filterId === cur.info.id))
        const operation = rec.operation
        // an upgrade whose package no host took (the record still names the old version) is retried
        // as asked, unless the package can never upgrade it: then the cluster is as asked already
        const upgradeAsked = issue?.operation === 'upgrade' && issue.issue !== 'UpgradeNotApplicable' && issue.url !== null && issue.url !== rec.url && rec.operation !== 'uninstall'
        if (upgradeAsked) tasks.push({ host: name, operation: 'upgrade', url: issue.url })
        else if (issue !== undefined || drift) tasks.push({ host: name, operation, url: operation === 'uninstall' ? null : rec.url })
        else if (owes) tasks.push({ host: name, operation: 'reboot', url: null })
        else if (host !== undefined) tasks.push({ host: name, operation, url: operation === 'uninstall' ? null : rec.url })
      }
      return this.run({ ref: rec.ref }, tasks, 'resolve')
    })
  }

  /** Adds a host to the cluster and installs the cluster's filters on it. */
  joinHost(name: string, o: { acceptanceLevel?: AcceptanceLevel; trustedKeys?: string[] } = {}): Promise<{ host: Host; results: OperationResult[] }> {
    return this.serial(async () => {
      const host = await this.cluster.addHost(name, o)
      const results: OperationResult[] = []
      for (const rec of [...this.st.filters]) {
        if (rec.operation === 'uninstall' || rec.id === null) continue
        results.push(await this.run({ ref: rec.ref }, [{ host: name, operation: rec.operation, url: rec.url }], rec.operation))
      }
      return { host: this.cluster.host(name), results }
    })
  }

  /**
   * Removes the cluster's filters from a host and takes the host out of the cluster (its
   * directory is deleted). Refused with HostNotEmpty while it has VMs; when a filter cannot be
   * removed the host stays, and `removed` is false.
   */
  removeHost(name: string): Promise<{ removed: boolean; results: OperationResult[] }> {
    return this.serial(async () => {
      const h = this.cluster.host(name)
      if (h.vms.size > 0) throw HostNotEmpty({ host: name, vms: [...h.vms.keys()] })
      const results: OperationResult[] = []
      for (const rec of [...this.st.filters]) {
        if (lineOf(h, rec) === undefined) continue
        results.push(await this.run({ ref: rec.ref }, [{ host: name, operation: 'uninstall', url: null }], 'uninstall'))
      }
      if (results.some(r => !r.ok)) return { removed: false, results }
      if (h.up) await h.shutdown()
      this.cluster.hosts.delete(name)
      this.cluster.save()
      await rm(h.dir, { recursive: true, force: true })
      this.tidy()
      this.commit()
      return { removed: true, results }
    })
  }

  /** Reboots a host (its VMs shut down and power on again); filters pending reboot become active. */
  rebootHost(name: string): Promise<Host> {
    return this.serial(async () => {
      const h = await this.cluster.rebootHost(name, { powerOnVms: true })
      this.st.reboots = this.st.reboots.filter(r => r.host !== name)
      this.commit()
      return h
    })
  }

  // ---- queries ----

  /** Each filter of the cluster with its per-host availability and status. */
  query(): FilterQueryResult[] {
    this.refresh()
    return this.st.filters.map(rec => {
      const d = rec.descriptor
      const seen = d === null ? [...this.cluster.hosts.values()].map(h => lineOf(h, rec)?.info).find(i => i !== undefined) : undefined
      return {
        id: rec.id,
        name: d?.name ?? seen?.name ?? null,
        vendor: d?.vendor ?? seen?.vendor ?? null,
        version: d?.version ?? seen?.version ?? null,
        class: d?.class ?? seen?.cls ?? null,
        summary: d?.summary ?? null,
        releaseDate: d?.releaseDate ?? null,
        operation: rec.operation,
        url: rec.url,
        hosts: [...this.cluster.hosts.values()].map(h => this.hostState(h, rec)),
      }
    })
  }

  /** Issues per host, of every filter or of one (by id, url, the id an upgrade replaced or the id a refused package names). */
  issues(filterId?: string): HostIssue[] {
    this.refresh()
    const out: HostIssue[] = []
    for (const rec of this.st.filters) {
      if (filterId !== undefined && rec.id !== filterId && rec.url !== filterId && rec.from !== filterId && !(rec.id === null && rec.claimedId === filterId)) continue
      for (const h of this.cluster.hosts.values()) {
        for (const i of this.st.issues) {
          if (i.ref !== rec.ref || i.host !== h.name) continue
          const { ref: _ref, ...rest } = i
          out.push({ ...rest, filterId: rec.id })
        }
        const cur = lineOf(h, rec)
        if (cur === undefined) continue
        const owed = this.st.reboots.find(r => r.host === h.name && r.filterId === cur.info.id)
        if (cur.status === 'PENDING_REBOOT' || owed !== undefined) {
          const e = VibRequiresHostReboot({ host: h.name, filter: cur.info.id })
          out.push({ issue: 'VibRequiresHostReboot', host: h.name, filterId: cur.info.id, operation: rec.operation === 'uninstall' ? 'install' : rec.operation, url: rec.url, message: e.message, details: {}, at: owed?.at ?? '' })
        }
      }
    }
    return out
  }

  // ---- the per-host machinery ----

  /**
   * Runs operations one at a time, each on the records as last committed: another Lifecycle of
   * the same cluster (the free functions open one per call) may have changed them meanwhile.
   */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const step = async () => {
      this.st = readState(this.cluster.options.dir)
      this.busy = true
      try {
        return await fn()
      } finally {
        this.busy = false
      }
    }
    const p = this.queue.then(step, step)
    this.queue = p.catch(() => undefined)
    return p
  }

  /** Rereads the committed records, unless this Lifecycle is in the middle of an operation (its own are newer). */
  private refresh(): void {
    if (!this.busy) this.st = readState(this.cluster.options.dir)
  }

  private commit(): void {
    writeState(this.cluster.options.dir, this.st)
  }

  private newRecord(url: string, d: Descriptor | null, operation: LifecycleOperation): FilterRecord {
    const rec: FilterRecord = { ref: this.st.nextRef++, id: d === null ? null : filterIdOf(d), url, descriptor: d, operation, from: null }
    this.st.filters.push(rec)
    return rec
  }

  private byRef(ref: number): FilterRecord | undefined {
    return this.st.filters.find(r => r.ref === ref)
  }

  /**
   * The record a user's filter id names: its id, the url of a package no host could read, the id
   * an upgrade replaced, or the id a package every host refused names (see FilterRecord.claimedId).
   */
  private find(key: string): FilterRecord | undefined {
    return this.st.filters.find(r => r.id === key)
      ?? this.st.filters.find(r => r.id === null && r.url === key)
      ?? this.st.filters.find(r => r.from === key)
      ?? this.st.filters.find(r => r.id === null && r.claimedId === key)
  }

  private hostState(h: Host, rec: FilterRecord): FilterHostState {
    const cur = lineOf(h, rec)
    const stored = this.st.issues.find(i => i.ref === rec.ref && i.host === h.name)
    const owedUpgrade = cur !== undefined && this.st.reboots.some(r => r.host === h.name && r.filterId === cur.info.id && r.kind === 'upgrade')
    const status: HostFilterStatus | null =
      stored !== undefined ? (stored.operation === 'uninstall' ? 'UNINSTALL_ERROR' : 'INSTALL_ERROR')
      : cur === undefined ? null
      : owedUpgrade ? 'PENDING_REBOOT'
      : cur.status
    return { host: h.name, available: cur?.status === 'INSTALLED', status, installedId: cur?.info.id ?? null }
  }

  /** Runs each host's part in turn, committing after each; a failure becomes that host's issue. */
  private async run(ctx: OpContext, tasks: PendingHost[], label: OperationResult['operation']): Promise<OperationResult> {
    this.st.pending = { pid: process.pid, ref: ctx.ref, hosts: [...tasks], current: null, startedAt: new Date().toISOString() }
    this.commit()
    const outcomes: HostOutcome[] = []
    let named: { id: string | null; url: string | null } = { id: null, url: null }
    try {
      for (const t of tasks) {
        outcomes.push(await this.runOne(ctx, t))
        this.st.pending.hosts = this.st.pending.hosts.filter(p => p !== t)
        this.st.pending.current = null
        this.commit()
      }
    } finally {
      // named before tidy, which drops the record of a filter no host has any more
      const rec = this.byRef(ctx.ref)
      named = { id: rec?.id ?? null, url: rec === undefined || rec.url === '' ? null : rec.url }
      this.st.pending = null
      this.tidy()
      this.commit()
    }
    return { operation: label, filterId: named.id, url: named.url, ok: outcomes.every(o => o.state !== 'failed'), refused: false, hosts: outcomes }
  }

  private async runOne(ctx: OpContext, t: PendingHost): Promise<HostOutcome> {
    const issueOp: LifecycleOperation = t.operation === 'reboot' ? (this.byRef(ctx.ref)?.operation ?? 'install') : t.operation
    try {
      const h = this.cluster.hosts.get(t.host)
      if (h === undefined) throw HostOperationFailed({ code: 'HostNotFound', reason: `host ${t.host} is no longer in the cluster` })
      if (!h.up) throw HostOperationFailed({ code: 'HostDown', reason: `host ${t.host} is down` })
      const outcome =
        t.operation === 'uninstall' ? await this.removeFromHost(ctx, h)
        : t.operation === 'reboot' ? await this.rebootForFilter(ctx, h)
        : await this.applyOnHost(ctx, h, t.operation, parsePackageUrl(t.url ?? ''))
      this.st.issues = this.st.issues.filter(i => !(i.ref === ctx.ref && i.host === t.host))
      return outcome
    } catch (err) {
      const rec = this.byRef(ctx.ref)
      const issue = issueOf(err, { host: t.host, filterId: rec?.id ?? null, operation: issueOp, url: t.url })
      const { filterId: _id, ...stored } = issue
      this.st.issues = this.st.issues.filter(i => !(i.ref === ctx.ref && i.host === t.host))
      this.st.issues.push({ ...stored, ref: ctx.ref } satisfies StoredIssue)
      return { host: t.host, state: 'failed', operation: t.operation, filterId: rec?.id ?? null, issue }
    }
  }

  /** Install or upgrade on one host. */
  private async applyOnHost(ctx: OpContext, h: Host, op: 'install' | 'upgrade', source: PackageUrl): Promise<HostOutcome> {
    const staged = await this.stage(ctx, h, source)
    try {
      const d = staged.descriptor
      const id = filterIdOf(d)
      this.learn(ctx, d, op, source.url)
      const cur = lineOf(h, { descriptor: d, id })
      if (cur?.info.id === id) return { host: h.name, state: 'unchanged', operation: op, filterId: id, status: cur.status, message: `${id} is already installed` }
      let replacing: InstalledFilter | undefined
      if (cur !== undefined) {
        if (op === 'install') throw FilterVersionConflict({ installed: cur.info.id, filter: id })
        if (cur.info.cls !== d.class) throw UpgradeNotApplicable({ installed: cur.info.id, filter: id, reason: `its class is ${d.class}, not ${cur.info.cls}` })
        if (compareSemver(d.version, cur.info.version) <= 0) throw UpgradeNotApplicable({ installed: cur.info.id, filter: id, reason: `version ${d.version} is not higher than ${cur.info.version}` })
        if (cur.status === 'PENDING_REBOOT') throw VibRequiresHostReboot({ host: h.name, filter: cur.info.id })
        replacing = cur
      }
      checkBeforeImport(h, d, id)
      const req = replacing === undefined ? d.install : d.upgrade
      await this.inMaintenance(h, req.maintenanceMode, op, async () => {
        const dir = await this.place(h, staged, id)
        try {
          const info = await this.describe(dir, d)
          const meta = { url: source.url, descriptor: d, dir, sha256: staged.sha256 }
          if (replacing === undefined) {
            // recorded before the host commits, so a process killed in between can finish it on open
            if (req.reboot) this.owe(h.name, 'install', info, meta)
            await h.activate(info, { reboot: req.reboot, meta })
          } else {
            await replaceKeepingHost(h, replacing, info, meta)
            if (req.reboot) this.owe(h.name, 'upgrade', info, meta)
            const oldDir = ownDir(h, replacing)
            if (oldDir !== null) await rm(oldDir, { recursive: true, force: true })
          }
        } catch (err) {
          if (!h.filters.has(id)) {
            await rm(dir, { recursive: true, force: true })
            this.st.reboots = this.st.reboots.filter(r => !(r.host === h.name && r.filterId === id))
          }
          throw err
        }
      })
      const status = h.filters.get(id)?.status ?? null
      const pending = status === 'PENDING_REBOOT' || this.st.reboots.some(r => r.host === h.name && r.filterId === id)
      // an upgrade reaching a host that had no version of the filter (its install had failed) installs it
      const did = replacing !== undefined ? `upgraded from ${replacing.info.id}` : op === 'upgrade' ? 'installed (the host had no earlier version to upgrade)' : 'installed'
      return {
        host: h.name, state: 'done', operation: op, filterId: id, status: pending ? 'PENDING_REBOOT' : status,
        message: `${id} ${did}${pending ? '; the host must reboot (VibRequiresHostReboot)' : ''}`,
      }
    } finally {
      await rm(staged.work, { recursive: true, force: true })
    }
  }

  /**
   * Ties what a host read to the cluster's record. An install's record learns its id from the
   * first host that reads the package (or merges into the record of a filter already known); an
   * upgrade's record moves to the new version once a host has read a package that qualifies.
   */
  private learn(ctx: OpContext, d: Descriptor, op: 'install' | 'upgrade', url: string): void {
    const rec = this.byRef(ctx.ref)
    if (rec === undefined) return
    const id = filterIdOf(d)
    if (rec.id === id) return
    if (op === 'install') {
      const other = this.st.filters.find(r => r !== rec && r.id === id)
      if (rec.id === null && other !== undefined) {
        // the URL's issues become the filter's, one per host (the newer one wins)
        const moved = this.st.issues.filter(i => i.ref === rec.ref)
        this.st.issues = [
          ...this.st.issues.filter(i => i.ref !== rec.ref && !(i.ref === other.ref && moved.some(m => m.host === i.host))),
          ...moved.map(i => ({ ...i, ref: other.ref })),
        ]
        this.st.filters = this.st.filters.filter(r => r !== rec)
        if (other.operation === 'uninstall') {
          other.operation = 'install'
          other.url = url
        }
        ctx.ref = other.ref
        if (this.st.pending !== null) this.st.pending = { ...this.st.pending, ref: other.ref }
        this.commit()
        return
      }
      if (rec.id !== null && [...this.cluster.hosts.values()].some(h => h.filters.has(rec.id!))) {
        throw VibInvalidFormat({ reason: `the package at ${url} is now ${id}, but the cluster installed ${rec.id} from it; upgrade ${rec.id} instead` })
      }
      rec.id = id
      rec.descriptor = d
      delete rec.claimedId
      this.commit()
      return
    }
    const cur = rec.descriptor
    if (cur === null || rec.id === null) return
    if (d.name !== cur.name || d.vendor !== cur.vendor) throw UpgradeNotApplicable({ installed: rec.id, filter: id, reason: `it is ${d.vendor} ${d.name}, not ${cur.vendor} ${cur.name}` })
    if (d.class !== cur.class) throw UpgradeNotApplicable({ installed: rec.id, filter: id, reason: `its class is ${d.class}, not ${cur.class}` })
    if (compareSemver(d.version, cur.version) <= 0) throw UpgradeNotApplicable({ installed: rec.id, filter: id, reason: `version ${d.version} is not higher than ${cur.version}` })
    rec.from = rec.id
    rec.id = id
    rec.descriptor = d
    rec.url = url
    rec.operation = 'upgrade'
    this.commit()
  }

  /**
   * Remembers the id a package names while its record has none (no host accepted the package),
   * so the failed install can be named by that id. Only a record without an id takes one: an
   * upgrade's record keeps naming the version the hosts run.
   */
  private claim(ctx: OpContext, descriptor: unknown): void {
    const rec = this.byRef(ctx.ref)
    if (rec === undefined || rec.id !== null) return
    const id = claimedIdOf(descriptor)
    if (id === null || rec.claimedId === id) return
    rec.claimedId = id
    this.commit()
  }

  /**
   * Why the host would refuse to uninstall the filter, judged before any host is changed: it is
   * down, disks use the filter, or the installed version's descriptor asks for maintenance mode
   * the host cannot enter (powered-on VMs, as Host.enterMaintenance refuses) or may not be put in
   * (automatic maintenance mode off). null when nothing known in advance stands in the way.
   */
  private uninstallRefusal(h: Host, rec: Pick<FilterRecord, 'descriptor' | 'id'>): IofError | null {
    const cur = lineOf(h, rec)
    if (cur === undefined) return null
    if (!h.up) return HostOperationFailed({ code: 'HostDown', reason: `host ${h.name} is down` })
    const disks = h.disksUsing(cur.info.id)
    if (disks.length > 0) return FilterInUse({ filter: cur.info.id, disks })
    const d = (cur.meta.descriptor as Descriptor | undefined) ?? rec.descriptor ?? null
    if (!(d?.uninstall ?? NO_REQUIREMENTS).maintenanceMode || h.maintenance) return null
    if (!this.options.autoMaintenance) return VibRequiresHostInMaintenanceMode({ host: h.name, operation: 'uninstall' })
    const on = [...h.vms.values()].filter(vm => vm.state !== 'off').map(vm => vm.name)
    return on.length > 0 ? VibCannotPutHostInMaintenanceMode({ host: h.name, vms: on }) : null
  }

  /** Uninstall on one host: whichever version of the filter it runs. */
  private async removeFromHost(ctx: OpContext, h: Host): Promise<HostOutcome> {
    const rec = this.byRef(ctx.ref)
    const cur = rec === undefined ? undefined : lineOf(h, rec)
    if (cur === undefined) return { host: h.name, state: 'unchanged', operation: 'uninstall', filterId: rec?.id ?? null, status: null, message: 'not installed' }
    const id = cur.info.id
    // checked before maintenance mode so a refused host is not disturbed (deactivate checks again)
    const disks = h.disksUsing(id)
    if (disks.length > 0) throw FilterInUse({ filter: id, disks })
    const d = (cur.meta.descriptor as Descriptor | undefined) ?? rec?.descriptor ?? null
    await this.inMaintenance(h, (d?.uninstall ?? NO_REQUIREMENTS).maintenanceMode, 'uninstall', async () => {
      await h.deactivate(id)
      this.st.reboots = this.st.reboots.filter(r => !(r.host === h.name && r.filterId === id))
      const dir = ownDir(h, cur)
      if (dir !== null) await rm(dir, { recursive: true, force: true })
    })
    return { host: h.name, state: 'done', operation: 'uninstall', filterId: id, status: null, message: `${id} removed` }
  }

  /** Settles a reboot a host owes: maintenance mode, reboot, out of maintenance mode. */
  private async rebootForFilter(ctx: OpContext, h: Host): Promise<HostOutcome> {
    const name = h.name
    await this.inMaintenance(h, true, this.byRef(ctx.ref)?.operation ?? 'install', async () => {
      await this.cluster.rebootHost(name)
      this.st.reboots = this.st.reboots.filter(r => r.host !== name)
    }, () => this.cluster.host(name))
    const rec = this.byRef(ctx.ref)
    const cur = rec === undefined ? undefined : lineOf(this.cluster.host(name), rec)
    return { host: name, state: 'done', operation: 'reboot', filterId: cur?.info.id ?? null, status: cur?.status ?? null, message: `host ${name} rebooted` }
  }

  /**
   * Runs `fn` with the host in maintenance mode when `needed` (entering and leaving it unless it
   * was in maintenance mode already). `after` finds the host again when `fn` replaced it (reboot).
   */
  private async inMaintenance(h: Host, needed: boolean, op: LifecycleOperation, fn: () => Promise<void>, after: () => Host = () => h): Promise<void> {
    if (!needed || h.maintenance) return fn()
    if (!this.options.autoMaintenance) throw VibRequiresHostInMaintenanceMode({ host: h.name, operation: op })
    const pending = this.st.pending
    if (pending !== null) {
      pending.current = { host: h.name, maintenanceBefore: false }
      this.commit()
    }
    try {
      await h.enterMaintenance()
    } catch (err) {
      if (isIofError(err, 'MaintenanceRefused')) throw VibCannotPutHostInMaintenanceMode({ host: h.name, vms: err.details.vms as string[] }, err)
      throw err
    }
    let failed = true
    try {
      await fn()
      failed = false
    } finally {
      try {
        await after().exitMaintenance()
      } catch (err) {
        // the operation's own failure, when there is one, is the issue to report
        if (!failed) throw VibCannotPutHostOutOfMaintenanceMode({ host: h.name, reason: err instanceof Error ? err.message : String(err) }, err)
      }
    }
  }

  /**
   * Download, open and verify for one host, against its acceptance level and trust store. A
   * package the host refuses still tells which filter it names (see `claim`).
   */
  private async stage(ctx: OpContext, h: Host, source: PackageUrl): Promise<Staged> {
    const downloads = path.join(h.dir, 'downloads')
    await mkdir(downloads, { recursive: true })
    const work = await mkdtemp(path.join(downloads, 'op-'))
    try {
      const local = await fetchPackage(source, work, { timeoutMs: this.options.downloadTimeoutMs, maxBytes: this.options.maxDownloadBytes })
      const opened = await openPackage(local, { workDir: work })
      let verified: VerifiedPackage
      try {
        verified = await verifyPackage(opened, { trust: { acceptanceLevel: h.acceptanceLevel, trustedKeys: h.trustedKeys } })
      } catch (err) {
        this.claim(ctx, opened.descriptor)
        throw err
      }
      return { work, opened, descriptor: verified.descriptor, sha256: opened.sha256 ?? null }
    } catch (err) {
      await rm(work, { recursive: true, force: true })
      throw err
    }
  }

  /** Moves the verified files into `hosts/<h>/filters/<id>/` in one rename: never half there. */
  private async place(h: Host, staged: Staged, id: string): Promise<string> {
    const filters = path.join(h.dir, 'filters')
    await mkdir(filters, { recursive: true })
    const target = path.join(filters, id)
    // a leftover of an attempt that did not finish (the host does not have the filter)
    await rm(target, { recursive: true, force: true })
    await rename(staged.opened.dir, target)
    return target
  }

  /** Loads the installed module's shape (its code first runs here) and checks it against the descriptor. */
  private async describe(dir: string, d: Descriptor): Promise<FilterInfo> {
    let info: FilterInfo
    try {
      info = await this.cluster.describeModule(path.join(dir, 'root', d.entry))
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err)
      if (isIofError(err, 'AbiVersionMismatch')) {
        const found = /version (\S+) is not supported/.exec(message)?.[1]
        throw VibDependenciesNotMetByHost({ required: found === undefined ? 'another version' : Number(found), provided: [...SUPPORTED_ABI_VERSIONS] }, err)
      }
      throw VibInvalidFormat({ reason: `the filter module does not load: ${message.split('\n')[0]}` }, err)
    }
    const pairs: [string, unknown, unknown][] = [['name', info.name, d.name], ['vendor', info.vendor, d.vendor], ['version', info.version, d.version], ['class', info.cls, d.class]]
    for (const [field, module, descriptor] of pairs) {
      if (module !== descriptor) throw VibInvalidFormat({ reason: `the module's ${field} ${JSON.stringify(module)} does not equal the descriptor's ${JSON.stringify(descriptor)}` })
    }
    try {
      defaultPolicyOf(info.policySchema)
    } catch (err) {
      throw VibInvalidFormat({ reason: err instanceof Error ? err.message : String(err) }, err)
    }
    return info
  }

  private owe(host: string, kind: 'install' | 'upgrade', info: FilterInfo, meta: Record<string, unknown>): void {
    this.st.reboots = this.st.reboots.filter(r => !(r.host === host && r.filterId === info.id))
    this.st.reboots.push({ host, filterId: info.id, kind, info, meta, at: new Date().toISOString() })
    this.commit()
  }

  /** Drops records and issues nothing refers to any more. */
  private tidy(): void {
    const wanted = (rec: FilterRecord) => (rec.operation === 'uninstall' ? [...this.cluster.hosts.values()].some(h => lineOf(h, rec) !== undefined) : rec.id !== null)
    this.st.filters = this.st.filters.filter(rec => wanted(rec) || this.st.issues.some(i => i.ref === rec.ref))
    const refs = new Set(this.st.filters.map(r => r.ref))
    this.st.issues = this.st.issues.filter(i => refs.has(i.ref) && this.cluster.hosts.has(i.host))
    this.st.reboots = this.st.reboots.filter(r => this.cluster.hosts.has(r.host))
  }

  // ---- recovery ----

  private async recover(exclusive: boolean): Promise<void> {
    const p = this.st.pending
    if (p !== null && !exclusive && isAlive(p.pid)) return // another live operation owns the records
    const before = JSON.stringify(this.st)
    await this.settleReboots()
    if (p !== null) {
      if (p.current !== null && !p.current.maintenanceBefore) {
        const h = this.cluster.hosts.get(p.current.host)
        if (h?.maintenance === true) await h.exitMaintenance()
      }
      const rec = this.byRef(p.ref)
      for (const t of p.hosts) {
        const h = this.cluster.hosts.get(t.host)
        if (h === undefined) continue
        this.st.issues = this.st.issues.filter(i => !(i.ref === p.ref && i.host === t.host))
        if (rec === undefined || hostIsDone(h, rec, t.operation)) continue
        const op: LifecycleOperation = t.operation === 'reboot' ? rec.operation : t.operation
        const { filterId: _id, ...issue } = issueOf(OperationInterrupted({ operation: op }), { host: t.host, filterId: rec.id, operation: op, url: t.url })
        this.st.issues.push({ ...issue, at: p.startedAt, ref: p.ref })
      }
      this.st.pending = null
    }
    await this.cleanHostDirs()
    this.tidy()
    this.didRecover = p !== null || JSON.stringify(this.st) !== before
    this.commit()
  }

  /** Puts back filters a resumed session set aside, and forgets reboots that happened. */
  private async settleReboots(): Promise<void> {
    const kept: LifecycleState['reboots'] = []
    for (const r of this.st.reboots) {
      const h = this.cluster.hosts.get(r.host)
      if (h === undefined) continue
      const f = h.filters.get(r.filterId)
      if (r.kind === 'upgrade') {
        if (f !== undefined) kept.push(r)
        continue
      }
      if (f !== undefined) {
        if (f.status === 'PENDING_REBOOT') kept.push(r)
        continue
      }
      const dir = typeof r.meta.dir === 'string' ? r.meta.dir : null
      if (dir === null || !existsSync(dir)) continue
      try {
        await h.activate(r.info, { reboot: true, meta: r.meta })
        kept.push(r)
      } catch {
        // another filter took the class meanwhile: the pending install is gone, its files go below
      }
    }
    this.st.reboots = kept
  }

  /** Removes download leftovers and filter directories no host state refers to. */
  private async cleanHostDirs(): Promise<void> {
    for (const h of this.cluster.hosts.values()) {
      await rm(path.join(h.dir, 'downloads'), { recursive: true, force: true })
      const filters = path.join(h.dir, 'filters')
      let names: string[]
      try {
        names = await readdir(filters)
      } catch {
        continue
      }
      for (const name of names) if (!h.filters.has(name)) await rm(path.join(filters, name), { recursive: true, force: true })
    }
  }
}

// ---- free functions: one call, one operation (each reads the records afresh) ----

/** Installs the package at `url` on every host of the cluster. */
export async function install(cluster: Cluster, url: string, options: Partial<LifecycleOptions> = {}): Promise<OperationResult> {
  return (await Lifecycle.open(cluster, options)).install(url)
}
/** Upgrades `filterId` to the package at `url` on every host. */
export async function upgrade(cluster: Cluster, filterId: string, url: string, options: Partial<LifecycleOptions> = {}): Promise<OperationResult> {
  return (await Lifecycle.open(cluster, options)).upgrade(filterId, url)
}
/** Uninstalls `filterId` from every host. */
export async function uninstall(cluster: Cluster, filterId: string, options: Partial<LifecycleOptions> = {}): Promise<OperationResult> {
  return (await Lifecycle.open(cluster, options)).uninstall(filterId)
}
/** Each filter of the cluster with per-host availability and status. */
export async function query(cluster: Cluster): Promise<FilterQueryResult[]> {
  return (await Lifecycle.open(cluster)).query()
}
/** Issues per host, of every filter or of one. */
export async function issues(cluster: Cluster, filterId?: string): Promise<HostIssue[]> {
  return (await Lifecycle.open(cluster)).issues(filterId)
}
/** Retries the failed operation of `filterId` on `host`, or on every host with an issue. */
export async function resolveInstallationErrors(cluster: Cluster, filterId: string, host?: string, options: Partial<LifecycleOptions> = {}): Promise<OperationResult> {
  return (await Lifecycle.open(cluster, options)).resolveInstallationErrors(filterId, host)
}
/** Adds a host and installs the cluster's filters on it. */
export async function joinHost(cluster: Cluster, name: string, o: { acceptanceLevel?: AcceptanceLevel; trustedKeys?: string[] } = {}, options: Partial<LifecycleOptions> = {}): Promise<{ host: Host; results: OperationResult[] }> {
  return (await Lifecycle.open(cluster, options)).joinHost(name, o)
}
/** Removes the cluster's filters from a host and takes it out of the cluster. */
export async function removeHost(cluster: Cluster, name: string, options: Partial<LifecycleOptions> = {}): Promise<{ removed: boolean; results: OperationResult[] }> {
  return (await Lifecycle.open(cluster, options)).removeHost(name)
}

// ---- helpers ----

/** The host's installed version of the record's filter (same vendor and name), whatever its version. */
function lineOf(h: Host, rec: { descriptor: Pick<Descriptor, 'vendor' | 'name'> | null; id: string | null }): InstalledFilter | undefined {
  const d = rec.descriptor
  if (d !== null) {
    for (const f of h.filters.values()) if (f.info.vendor === d.vendor && f.info.name === d.name) return f
    return undefined
  }
  return rec.id === null ? undefined : h.filters.get(rec.id)
}

/** The id an unverified descriptor names, when its vendor, name and version look like a filter id's. */
function claimedIdOf(d: unknown): string | null {
  if (typeof d !== 'object' || d === null) return null
  const { vendor, name, version } = d as Record<string, unknown>
  if (typeof vendor !== 'string' || !/^[A-Za-z][A-Za-z0-9]{1,15}$/.test(vendor)) return null
  if (typeof name !== 'string' || !/^[a-z][a-z0-9-]{1,31}$/.test(name)) return null
  if (typeof version !== 'string' || !/^\d+\.\d+\.\d+[0-9A-Za-z.+-]{0,64}$/.test(version)) return null
  return filterIdOf({ vendor, name, version })
}

/** Whether the host already is where the operation would take it. */
function hostIsDone(h: Host, rec: FilterRecord, op: PendingHost['operation']): boolean {
  const cur = lineOf(h, rec)
  if (op === 'uninstall') return cur === undefined
  if (op === 'reboot') return cur === undefined || cur.status !== 'PENDING_REBOOT'
  return rec.id !== null && cur?.info.id === rec.id
}

/** Class open, ABI and one filter per class: judged from the descriptor, before any import. */
function checkBeforeImport(h: Host, d: Descriptor, id: string): void {
  if (!isClassOpen(d.class)) throw VibRequirementsNotMetByHost({ cls: d.class, open: [...OPEN_CLASSES] })
  if (!SUPPORTED_ABI_VERSIONS.includes(d.abiVersion)) throw VibDependenciesNotMetByHost({ required: d.abiVersion, provided: [...SUPPORTED_ABI_VERSIONS] })
  h.checkClassFree({ id, name: d.name, vendor: d.vendor, version: d.version, cls: d.class, entryUrl: '', policySchema: undefined, hasDaemon: false, builtin: false })
}

/** The directory the lifecycle installed a filter's files in, if it did. */
function ownDir(h: Host, f: InstalledFilter): string | null {
  const dir = f.meta.dir
  if (typeof dir !== 'string') return null
  const filters = path.join(h.dir, 'filters') + path.sep
  return dir.startsWith(filters) ? dir : null
}

/**
 * host.replace, and when it fails part way the old version is put back: instances reopen under
 * it and held guest I/O is released, so the host ends as it was.
 */
async function replaceKeepingHost(h: Host, old: InstalledFilter, info: FilterInfo, meta: Record<string, unknown>): Promise<void> {
  const before = { info: old.info, status: old.status, meta: old.meta }
  try {
    await h.replace(before.info.id, info, meta)
  } catch (err) {
    try {
      if (h.filters.has(info.id)) await h.replace(info.id, before.info, before.meta)
      const back = h.filters.get(before.info.id)
      if (back !== undefined) back.status = before.status
      for (const vm of h.vms.values()) if (vm.state === 'on') await vm.resumeFilters()
      h.save()
    } catch {
      // the host keeps what could be restored; the issue reports the original failure
    }
    throw err
  }
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
