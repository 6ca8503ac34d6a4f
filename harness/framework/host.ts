/**
 * An emulated ESXi host: its installed filters and their daemons, its VMs, its maintenance mode
 * and acceptance level, and its state in a directory of its own (written atomically).
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import type { FilterClass } from '../sdk/index.js'
import { DaemonHost, type DaemonStopReport } from './daemon.js'
import { BUILTINS } from './builtins/index.js'
import {
  DiskCapacityInvalid,
  DiskExists,
  DiskHasPolicy,
  DiskImageMissing,
  DiskNotFound,
  FilterClassConflict,
  FilterInUse,
  FilterNotInstalled,
  HostDirMissing,
  HostDown,
  HostInMaintenance,
  MaintenanceRefused,
  StateFileMissing,
  VmExists,
  VmNotFound,
  VmPoweredOn,
} from './errors.js'
import type { FilterInfo } from './inspect.js'
import {
  createSparseFile, exists, isInside, loadedPath, loadedUrl, readJson, readStateFile, removePath, StateShape, storedPath, storedUrl, writeJsonAtomic,
} from './persist.js'
import type { PolicyValidator, StoragePolicy } from './policy.js'
import type { RecoverySite } from './site.js'
import type { MemoryImage } from './store.js'
import { Vm, type DiskBacking, type VmDisk, type VmHostServices } from './vm.js'
import type { LogEntry } from './worker-common.js'

/**
 * What a host needs of its cluster (the cluster implements it and passes itself in): the
 * cluster-wide settings, the registry of disk ids and VM names, the memory images and journals
 * that outlive a VM, the datastore's layout, storage policies and recovery sites.
 */
export interface HostServices {
  readonly options: {
    /** The cluster directory (the datastore and every host's state are under it). */
    readonly dir: string
    readonly ioTimeoutMs: number
    readonly openTimeoutMs: number
    readonly classExclusivity: 'host' | 'disk'
    readonly cacheBytes: number
    readonly heapMb: number
    readonly daemonStopMs: number
  }
  readonly validator: PolicyValidator
  /** The VM of that name on any host. */
  findVm(name: string): Vm | undefined
  registerDisk(id: string, vm: string, host: string): void
  forgetDisk(id: string): void
  /** The VM and host a disk id belongs to, if any. */
  diskOwner(id: string): { vm: string; host: string } | undefined
  /** A memory disk's image, kept across power cycles (`fresh`: a new, empty one). */
  memoryImage(id: string, fresh?: boolean): MemoryImage
  /** A memory disk's write-cache journal, or null when the cache is off. */
  memoryJournal(id: string, fresh?: boolean): SharedArrayBuffer | null
  diskImagePath(id: string): string
  sidecarPath(disk: string, filterName: string): string
  reorderFor(disk: string): { seed: number; maxDelayMs: number } | null
  /** The storage policy of that name (PolicyNotFound when there is none). */
  policy(name: string): StoragePolicy
  site(name: string): RecoverySite | undefined
}

/** Acceptance levels, most trusted first. */
export type AcceptanceLevel = 'VMwareCertified' | 'VMwareAccepted' | 'PartnerSupported' | 'CommunitySupported'

/** A filter installed on a host, with its host status. */
export interface InstalledFilter {
  readonly info: FilterInfo
  status: 'INSTALLED' | 'PENDING_REBOOT' | 'UPGRADE_IN_PROGRESS' | 'INSTALL_ERROR' | 'UNINSTALL_ERROR'
  /** Extra per-install data kept with the host's state (package source, descriptor, files). */
  meta: Record<string, unknown>
}

/** A fault at host level (a daemon that died). */
export interface HostFault {
  readonly at: number
  readonly filter: string
  readonly message: string
}

export interface DiskOptions {
  /** Disk id, unique in the cluster (default `<vm>-disk<n>`). */
  readonly id?: string
  readonly capacity: number
  readonly backing?: DiskBacking
  /** Storage policy to apply at creation. */
  readonly policy?: string
}

const FILTER_STATUSES: readonly InstalledFilter['status'][] = ['INSTALLED', 'PENDING_REBOOT', 'UPGRADE_IN_PROGRESS', 'INSTALL_ERROR', 'UNINSTALL_ERROR']
const ACCEPTANCE_LEVELS: readonly AcceptanceLevel[] = ['VMwareCertified', 'VMwareAccepted', 'PartnerSupported', 'CommunitySupported']

interface HostState {
  name: string
  acceptanceLevel: AcceptanceLevel
  trustedKeys: string[]
  maintenance: boolean
  filters: { info: FilterInfo; status: InstalledFilter['status']; meta: Record<string, unknown> }[]
  vms: { name: string; poweredOn: boolean; disks: { id: string; capacity: number; backing: DiskBacking; path: string | null; policy: string | null }[] }[]
}

export class Host {
  readonly filters = new Map<string, InstalledFilter>()
  readonly daemons = new Map<string, DaemonHost>()
  readonly vms = new Map<string, Vm>()
  /** Every VM object this host made, removed and migrated-away ones included (their logs stay readable). */
  readonly vmHistory: Vm[] = []
  readonly faults: HostFault[] = []
  readonly daemonLogs: LogEntry[] = []
  readonly daemonStops: { filter: string; report: DaemonStopReport }[] = []
  acceptanceLevel: AcceptanceLevel = 'PartnerSupported'
  trustedKeys: string[] = []
  maintenance = false
  up = false
  /** VMs that were powered on when the host last went down. */
  wasPoweredOn: string[] = []

  constructor(readonly name: string, readonly cluster: HostServices, readonly dir: string) {}

  get stateFile(): string {
    return path.join(this.dir, 'state.json')
  }

  /** Writes the host's state atomically (paths under the cluster directory relative to it). */
  save(): void {
    const root = this.cluster.options.dir
    const st: HostState = {
      name: this.name,
      acceptanceLevel: this.acceptanceLevel,
      trustedKeys: this.trustedKeys,
      maintenance: this.maintenance,
      filters: [...this.filters.values()].map(f => ({ info: { ...f.info, entryUrl: storedUrl(root, f.info.entryUrl) }, status: f.status, meta: typeof f.meta.dir === 'string' ? { ...f.meta, dir: storedPath(root, f.meta.dir) } : f.meta })),
      vms: [...this.vms.values()].map(vm => ({
        name: vm.name,
        poweredOn: vm.state === 'on' || vm.state === 'starting',
        disks: [...vm.disks.values()].map(d => ({ id: d.id, capacity: d.capacity, backing: d.backing, path: d.path === null ? null : storedPath(root, d.path), policy: d.policy })),
      })),
    }
    writeJsonAtomic(this.stateFile, st)
  }

  /**
   * Loads the host's state from its directory (without starting anything). A missing directory or
   * state file, or one that does not read, is one error naming it (HostDirMissing,
   * StateFileMissing, StateFileInvalid); nothing is made up in its place.
   */
  load(): void {
    if (!exists(this.stateFile)) {
      if (!exists(this.dir)) throw HostDirMissing({ host: this.name, dir: this.dir })
      throw StateFileMissing({ file: this.stateFile, of: `host ${this.name}` })
    }
    const st = this.readState()
    this.acceptanceLevel = st.acceptanceLevel
    this.trustedKeys = st.trustedKeys
    this.maintenance = st.maintenance
    this.filters.clear()
    for (const f of st.filters) this.filters.set(f.info.id, { info: f.info, status: f.status, meta: f.meta })
    this.vms.clear()
    this.wasPoweredOn = []
    for (const v of st.vms) {
      const vm = new Vm(v.name, this.services())
      this.vmHistory.push(vm)
      for (const d of v.disks) {
        const disk: VmDisk = {
          id: d.id,
          capacity: d.capacity,
          backing: d.backing,
          path: d.path,
          // memory disks live in this process: after a restart from the directory they come back empty
          image: d.backing === 'memory' ? this.cluster.memoryImage(d.id) : null,
          journal: d.backing === 'memory' ? this.cluster.memoryJournal(d.id) : null,
          policy: d.policy,
          rules: [],
          allowCleartextFilters: false,
        }
        vm.disks.set(d.id, disk)
        this.cluster.registerDisk(d.id, vm.name, this.name)
      }
      this.vms.set(vm.name, vm)
      // a journal left with entries means the process running this host was killed: power cut
      // (not onto a missing image: the VM cannot power on until it is back)
      if (this.missingImage(vm) === null) vm.powerCut()
      if (v.poweredOn) this.wasPoweredOn.push(v.name)
    }
  }

  /** Reads and checks state.json, with its paths made absolute. */
  private readState(): HostState {
    const file = this.stateFile
    const root = this.cluster.options.dir
    const v = readStateFile(file, `host ${this.name}`)
    const s = new StateShape(file)
    if (s.str(v.name, 'name') !== this.name) s.fail('name', `"${this.name}" (the host this directory belongs to)`, v.name)
    const acceptanceLevel = s.oneOf(v.acceptanceLevel, 'acceptanceLevel', ACCEPTANCE_LEVELS)
    const trustedKeys = s.arr(v.trustedKeys, 'trustedKeys', (x, at) => s.str(x, at))
    const maintenance = s.bool(v.maintenance, 'maintenance')
    const filters = s.arr(v.filters, 'filters', (x, at) => {
      const f = s.obj(x, at)
      const info = s.obj(f.info, `${at}.info`)
      for (const k of ['id', 'name', 'vendor', 'version', 'cls', 'entryUrl'] as const) s.str(info[k], `${at}.info.${k}`)
      s.bool(info.hasDaemon, `${at}.info.hasDaemon`)
      if (info.builtin !== undefined) s.bool(info.builtin, `${at}.info.builtin`)
      if (info.policySchema !== undefined) s.obj(info.policySchema, `${at}.info.policySchema`)
      const status = s.oneOf(f.status, `${at}.status`, FILTER_STATUSES)
      const meta = s.obj(f.meta, `${at}.meta`)
      return {
        info: { ...info, entryUrl: loadedUrl(root, info.entryUrl as string) } as unknown as FilterInfo,
        status,
        meta: typeof meta.dir === 'string' ? { ...meta, dir: loadedPath(root, meta.dir) } : meta,
      }
    })
    const vms = s.arr(v.vms, 'vms', (x, at) => {
      const vm = s.obj(x, at)
      const name = s.str(vm.name, `${at}.name`)
      const poweredOn = s.bool(vm.poweredOn, `${at}.poweredOn`)
      const disks = s.arr(vm.disks, `${at}.disks`, (y, dat) => {
        const d = s.obj(y, dat)
        // it names a directory of the datastore
        const id = s.str(d.id, `${dat}.id`, /^(?!\.\.?$)[^/\\]+$/)
        const capacity = s.int(d.capacity, `${dat}.capacity`, 1)
        if (capacity % 512 !== 0) s.fail(`${dat}.capacity`, 'a multiple of 512', capacity)
        const backing = s.oneOf(d.backing, `${dat}.backing`, ['memory', 'file', 'null'] as const)
        const policy = s.nullable(d.policy, `${dat}.policy`, (p, pat) => s.str(p, pat))
        let file: string | null = null
        if (backing === 'file') {
          const stored = s.str(d.path, `${dat}.path`)
          file = loadedPath(root, stored)
          if (!isInside(path.resolve(root), path.resolve(file))) {
            // a cluster directory copied before paths were kept relative: its own image, by the datastore's layout
            if (!path.resolve(file).endsWith(path.sep + path.join('datastore', id, 'disk.img'))) s.fail(`${dat}.path`, `a path inside the cluster directory ${path.resolve(root)}`, stored)
            file = this.cluster.diskImagePath(id)
          }
        } else if (d.path !== null) s.fail(`${dat}.path`, `null for a ${backing} disk`, d.path)
        return { id, capacity, backing, path: file, policy }
      })
      const twice = disks.find((d, i) => disks.findIndex(e => e.id === d.id) !== i)
      if (twice !== undefined) s.fail(`${at}.disks`, 'disks with distinct ids', twice.id)
      return { name, poweredOn, disks }
    })
    const twice = vms.find((vm, i) => vms.findIndex(w => w.name === vm.name) !== i)
    if (twice !== undefined) s.fail('vms', 'VMs with distinct names', twice.name)
    return { name: this.name, acceptanceLevel, trustedKeys, maintenance, filters, vms }
  }

  /** Boots the host: pending-reboot installs become active, daemons start, policies resolve. */
  async boot(): Promise<void> {
    for (const f of this.filters.values()) if (f.status === 'PENDING_REBOOT' || f.status === 'UPGRADE_IN_PROGRESS') f.status = 'INSTALLED'
    this.up = true
    for (const f of this.filters.values()) {
      if (f.status !== 'INSTALLED' || !f.info.hasDaemon) continue
      try {
        await this.startDaemon(f.info)
      } catch (e) {
        this.faults.push({ at: Date.now(), filter: f.info.id, message: (e as Error).message })
      }
    }
    for (const vm of this.vms.values()) {
      for (const d of vm.disks.values()) {
        if (d.policy === null) continue
        try {
          this.resolveDisk(d, d.policy)
        } catch (e) {
          this.faults.push({ at: Date.now(), filter: d.policy, message: `disk ${d.id}: ${(e as Error).message}` })
        }
      }
    }
    this.save()
  }

  services(): VmHostServices {
    const c = this.cluster
    return {
      hostName: this.name,
      ioTimeoutMs: c.options.ioTimeoutMs,
      openTimeoutMs: c.options.openTimeoutMs,
      heapMb: c.options.heapMb,
      cacheBytes: c.options.cacheBytes,
      reorderSeed: disk => c.reorderFor(disk),
      sidecarPath: (disk, filterName) => c.sidecarPath(disk, filterName),
      daemonPort: (filterId, vm) => this.daemons.get(filterId)?.link(vm) ?? null,
      canPowerOn: vm => {
        if (!this.up) throw HostDown({ host: this.name, vm })
        if (this.maintenance) throw HostInMaintenance({ host: this.name })
        if (this.vms.has(vm)) this.checkImages(vm)
      },
      changed: () => {
        if (this.up) this.save()
      },
      gcDaemons: async () => {
        await Promise.all([...this.daemons.values()].map(d => d.gc()))
      },
    }
  }

  // ---- filters ----

  /** Active filters (installed, not pending reboot) plus the built-ins. */
  activeFilters(): FilterInfo[] {
    return [...BUILTINS, ...[...this.filters.values()].filter(f => f.status === 'INSTALLED').map(f => f.info)]
  }

  /** The active filter a policy rule `name@CLASS` names. */
  lookup(name: string, cls: FilterClass): FilterInfo | undefined {
    return this.activeFilters().find(f => f.name === name && f.cls === cls)
  }

  /** The installed filter of a class other than `exceptName`, for the one-per-class rule. */
  classHolder(cls: FilterClass, exceptName?: string): InstalledFilter | undefined {
    return [...this.filters.values()].find(f => f.info.cls === cls && f.info.name !== exceptName)
  }

  /** Refuses a second filter of a class on this host (the default `host` exclusivity). */
  checkClassFree(info: FilterInfo): void {
    if (this.cluster.options.classExclusivity !== 'host') return
    const other = this.classHolder(info.cls, info.name)
    if (other !== undefined) throw FilterClassConflict({ installed: other.info.id, cls: info.cls, host: this.name, filter: info.id })
  }

  private async startDaemon(info: FilterInfo): Promise<void> {
    const d = new DaemonHost({
      host: this.name,
      info,
      storePath: path.join(this.dir, 'stores', `${info.name}.store`),
      sites: name => this.cluster.site(name),
      onLog: (entries, dropped) => {
        for (const e of entries) {
          if (this.daemonLogs.length >= 2000) this.daemonLogs.shift()
          this.daemonLogs.push(e)
        }
        void dropped
      },
      onExit: reason => this.faults.push({ at: Date.now(), filter: info.id, message: reason }),
      stopTimeoutMs: this.cluster.options.daemonStopMs,
    })
    await d.start()
    this.daemons.set(info.id, d)
  }

  private async stopDaemon(id: string): Promise<DaemonStopReport | null> {
    const d = this.daemons.get(id)
    if (d === undefined) return null
    this.daemons.delete(id)
    const report = await d.stop()
    this.daemonStops.push({ filter: id, report })
    return report
  }

  /**
   * Makes a filter active on this host (or pending reboot): checks the one-per-class rule and
   * starts its daemon. Package verification happens before this, in the lifecycle layer.
   */
  async activate(info: FilterInfo, opts: { reboot?: boolean; meta?: Record<string, unknown> } = {}): Promise<InstalledFilter> {
    const existing = this.filters.get(info.id)
    if (existing !== undefined) return existing
    this.checkClassFree(info)
    const entry: InstalledFilter = { info, status: opts.reboot ? 'PENDING_REBOOT' : 'INSTALLED', meta: opts.meta ?? {} }
    if (!opts.reboot && info.hasDaemon && this.up) await this.startDaemon(info)
    this.filters.set(info.id, entry)
    this.save()
    return entry
  }

  /** Disks on this host whose policy uses the filter. */
  disksUsing(filterId: string): string[] {
    const out: string[] = []
    for (const vm of this.vms.values()) for (const d of vm.disks.values()) if (d.rules.some(r => r.info.id === filterId)) out.push(d.id)
    return out
  }

  /** Removes a filter: refused with FilterInUse while a disk uses it; stops the daemon. */
  async deactivate(filterId: string): Promise<DaemonStopReport | null> {
    const f = this.filters.get(filterId)
    if (f === undefined) return null
    const disks = this.disksUsing(filterId)
    if (disks.length > 0) throw FilterInUse({ filter: filterId, disks })
    const report = await this.stopDaemon(filterId)
    this.filters.delete(filterId)
    fs.rmSync(path.join(this.dir, 'stores', `${f.info.name}.store`), { force: true })
    this.save()
    return report
  }

  /**
   * Replaces `oldId` by `info` (same name and class): open instances close with `upgrade` and
   * reopen under the new version with their sidecars; guest I/O waits meanwhile.
   */
  async replace(oldId: string, info: FilterInfo, meta: Record<string, unknown> = {}): Promise<void> {
    const old = this.filters.get(oldId)
    if (old === undefined) throw FilterNotInstalled({ filter: oldId, host: this.name })
    old.status = 'UPGRADE_IN_PROGRESS'
    const running = [...this.vms.values()].filter(vm => vm.state === 'on' && [...vm.disks.values()].some(d => d.rules.some(r => r.info.id === oldId)))
    // stop the instances first (close 'upgrade'), then the old daemon, then bring up the new
    for (const vm of running) await vm.suspendFilters(oldId)
    await this.stopDaemon(oldId)
    this.filters.delete(oldId)
    this.filters.set(info.id, { info, status: 'INSTALLED', meta })
    if (info.hasDaemon) await this.startDaemon(info)
    for (const vm of this.vms.values()) for (const d of vm.disks.values()) d.rules = d.rules.map(r => (r.info.id === oldId ? { info, params: r.params } : r))
    for (const vm of running) await vm.resumeFilters()
    this.save()
  }

  // ---- VMs and disks ----

  createVm(name: string): Vm {
    if (this.cluster.findVm(name) !== undefined) throw VmExists({ vm: name })
    const vm = new Vm(name, this.services())
    this.vmHistory.push(vm)
    this.vms.set(name, vm)
    this.save()
    return vm
  }

  vm(name: string): Vm {
    const vm = this.vms.get(name)
    if (vm === undefined) throw VmNotFound({ vm: name })
    return vm
  }

  /** Adds a thin disk to a powered-off VM. */
  async addDisk(vmName: string, o: DiskOptions): Promise<VmDisk> {
    const vm = this.vm(vmName)
    if (vm.state !== 'off') throw VmPoweredOn({ vm: vmName, action: 'add a disk' })
    if (!Number.isSafeInteger(o.capacity) || o.capacity <= 0 || o.capacity % 512 !== 0) throw DiskCapacityInvalid({ capacity: o.capacity })
    const id = o.id ?? `${vmName}-disk${vm.disks.size}`
    if (this.cluster.diskOwner(id) !== undefined) throw DiskExists({ disk: id })
    const backing = o.backing ?? 'memory'
    const file = backing === 'file' ? this.cluster.diskImagePath(id) : null
    // made aside while a transaction is open: in place only when it commits
    if (file !== null) createSparseFile(file, o.capacity)
    const disk: VmDisk = {
      id, capacity: o.capacity, backing, path: file,
      image: backing === 'memory' ? this.cluster.memoryImage(id, true) : null,
      journal: backing === 'memory' ? this.cluster.memoryJournal(id, true) : null,
      policy: null, rules: [], allowCleartextFilters: false,
    }
    if (file !== null) removePath(`${file}.journal`)
    vm.disks.set(id, disk)
    this.cluster.registerDisk(id, vmName, this.name)
    this.save()
    if (o.policy !== undefined) await this.setPolicy(vmName, id, o.policy)
    return disk
  }

  /** Deletes a powered-off VM and its disks (images, sidecars); refused while a disk has a storage policy. */
  deleteVm(name: string): void {
    const vm = this.vm(name)
    if (vm.state !== 'off') throw VmPoweredOn({ vm: name, action: 'delete it' })
    for (const d of vm.disks.values()) if (d.policy !== null) throw DiskHasPolicy({ vm: name, disk: d.id, policy: d.policy })
    for (const id of [...vm.disks.keys()]) this.dropDisk(vm, id)
    this.vms.delete(name)
    this.save()
  }

  /** Removes a disk of a powered-off VM with its image and sidecars; refused while it has a storage policy. */
  removeDisk(vmName: string, diskId: string): void {
    const vm = this.vm(vmName)
    const d = vm.disks.get(diskId)
    if (d === undefined) throw DiskNotFound({ disk: diskId })
    if (vm.state !== 'off') throw VmPoweredOn({ vm: vmName, action: 'remove a disk' })
    if (d.policy !== null) throw DiskHasPolicy({ vm: vmName, disk: diskId, policy: d.policy })
    this.dropDisk(vm, diskId)
    this.save()
  }

  private dropDisk(vm: Vm, id: string): void {
    const d = vm.disks.get(id)!
    vm.disks.delete(id)
    this.cluster.forgetDisk(id)
    // the disk's datastore directory: image, drive journal, sidecars
    const store = path.dirname(this.cluster.diskImagePath(id))
    removePath(store)
    if (d.path !== null && !isInside(path.resolve(store), path.resolve(d.path))) {
      removePath(d.path)
      removePath(`${d.path}.journal`)
    }
  }

  /** The first file-backed disk of the VM whose image is missing (null: none). */
  missingImage(vm: Vm): VmDisk | null {
    for (const d of vm.disks.values()) if (d.backing === 'file' && d.path !== null && !exists(d.path)) return d
    return null
  }

  /** Refuses a VM whose disk image is missing (DiskImageMissing), instead of it reading zeros. */
  checkImages(vmName: string): void {
    const d = this.missingImage(this.vm(vmName))
    if (d !== null) throw DiskImageMissing({ vm: vmName, disk: d.id, file: d.path! })
  }

  /** Resolves a disk's policy against this host's filters (validating it). */
  resolveDisk(d: VmDisk, policyName: string): void {
    const policy = this.cluster.policy(policyName)
    d.rules = this.cluster.validator.resolve(policy, (n, c) => this.lookup(n, c), this.name)
    d.allowCleartextFilters = policy.allowCleartextFilters === true
    d.policy = policyName
  }

  /**
   * Applies a storage policy to a disk (null removes it): attach for each added filter (then open
   * when the VM is on), close and detach for each removed one; the sidecar of a removed filter is
   * deleted after detach.
   */
  async setPolicy(vmName: string, diskId: string, policyName: string | null): Promise<void> {
    const vm = this.vm(vmName)
    const d = vm.disks.get(diskId)
    if (d === undefined) throw DiskNotFound({ disk: diskId })
    const before = d.rules
    const beforePolicy = d.policy
    const beforeClear = d.allowCleartextFilters
    if (policyName === null) {
      d.rules = []
      d.policy = null
      d.allowCleartextFilters = false
    } else this.resolveDisk(d, policyName)
    try {
      if (vm.state === 'on') await vm.reconfigureDisk(d)
      else {
        const after = new Set(d.rules.map(r => r.info.id))
        const beforeIds = new Set(before.map(r => r.info.id))
        const tmp = { ...d, rules: before }
        for (const spec of vm.filterSpecs(tmp)) {
          if (after.has(spec.filterId)) continue
          await vm.offlineCall(d, 'detach', spec)
          fs.rmSync(spec.sidecarPath, { force: true })
        }
        for (const spec of vm.filterSpecs(d)) {
          if (beforeIds.has(spec.filterId)) continue
          fs.rmSync(spec.sidecarPath, { force: true })
          await vm.offlineCall(d, 'attach', spec)
        }
      }
    } catch (e) {
      d.rules = before
      d.policy = beforePolicy
      d.allowCleartextFilters = beforeClear
      throw e
    }
    this.save()
  }

  // ---- maintenance, shutdown, crash ----

  async enterMaintenance(): Promise<void> {
    if (this.maintenance) return
    const on = [...this.vms.values()].filter(vm => vm.state !== 'off').map(vm => vm.name)
    if (on.length > 0) throw MaintenanceRefused({ host: this.name, vms: on })
    this.maintenance = true
    this.save()
  }

  async exitMaintenance(): Promise<void> {
    if (!this.maintenance) return
    this.maintenance = false
    this.save()
  }

  /** A clean shutdown: VMs close with `host-shutdown`, daemons stop. */
  async shutdown(): Promise<void> {
    this.wasPoweredOn = [...this.vms.values()].filter(vm => vm.state === 'on').map(vm => vm.name)
    for (const vm of this.vms.values()) await vm.powerOff('host-shutdown')
    for (const id of [...this.daemons.keys()]) await this.stopDaemon(id)
    this.up = false
    this.saveWasOn()
  }

  /** A power cut: every worker ends at once; drives lose what was not yet durable. */
  async crash(seed?: number): Promise<number> {
    this.wasPoweredOn = [...this.vms.values()].filter(vm => vm.state === 'on').map(vm => vm.name)
    this.up = false
    for (const vm of this.vms.values()) await vm.terminate('host-crash', 'host crashed')
    for (const d of this.daemons.values()) await d.kill()
    this.daemons.clear()
    let lost = 0
    for (const vm of this.vms.values()) lost += vm.powerCut(seed)
    return lost
  }

  private saveWasOn(): void {
    // state written with the VMs marked as they were, so a reboot knows which ones to power on
    const st = readJson<HostState | null>(this.stateFile, null)
    if (st === null) return
    for (const v of st.vms) v.poweredOn = this.wasPoweredOn.includes(v.name)
    writeJsonAtomic(this.stateFile, st)
  }
}
