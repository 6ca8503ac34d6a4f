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
  DiskNotFound,
  FilterClassConflict,
  FilterInUse,
  HostInMaintenance,
  IofError,
  MaintenanceRefused,
  VmExists,
  VmNotFound,
  VmPoweredOn,
} from './errors.js'
import type { FilterInfo } from './inspect.js'
import { writeJsonAtomic, readJson } from './persist.js'
import type { Cluster } from './cluster.js'
import { Vm, type DiskBacking, type VmDisk, type VmHostServices } from './vm.js'
import type { LogEntry } from './worker-common.js'

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

  constructor(readonly name: string, readonly cluster: Cluster, readonly dir: string) {}

  get stateFile(): string {
    return path.join(this.dir, 'state.json')
  }

  /** Writes the host's state atomically. */
  save(): void {
    const st: HostState = {
      name: this.name,
      acceptanceLevel: this.acceptanceLevel,
      trustedKeys: this.trustedKeys,
      maintenance: this.maintenance,
      filters: [...this.filters.values()].map(f => ({ info: f.info, status: f.status, meta: f.meta })),
      vms: [...this.vms.values()].map(vm => ({
        name: vm.name,
        poweredOn: vm.state === 'on' || vm.state === 'starting',
        disks: [...vm.disks.values()].map(d => ({ id: d.id, capacity: d.capacity, backing: d.backing, path: d.path, policy: d.policy })),
      })),
    }
    writeJsonAtomic(this.stateFile, st)
  }

  /** Loads the host's state from its directory (without starting anything). */
  load(): void {
    const st = readJson<HostState | null>(this.stateFile, null)
    if (st === null) return
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
      vm.powerCut()
      if (v.poweredOn) this.wasPoweredOn.push(v.name)
    }
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
        if (!this.up) throw new IofError('HostDown', `host ${this.name} is down: cannot power on ${vm}`)
        if (this.maintenance) throw HostInMaintenance({ host: this.name })
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
    if (old === undefined) throw new IofError('FilterNotInstalled', `${oldId} is not installed on ${this.name}`)
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
    if (file !== null) {
      fs.mkdirSync(path.dirname(file), { recursive: true })
      fs.rmSync(file, { force: true })
      const fd = fs.openSync(file, 'w')
      fs.ftruncateSync(fd, o.capacity)
      fs.closeSync(fd)
    }
    const disk: VmDisk = {
      id, capacity: o.capacity, backing, path: file,
      image: backing === 'memory' ? this.cluster.memoryImage(id, true) : null,
      journal: backing === 'memory' ? this.cluster.memoryJournal(id, true) : null,
      policy: null, rules: [], allowCleartextFilters: false,
    }
    if (file !== null) fs.rmSync(`${file}.journal`, { force: true })
    vm.disks.set(id, disk)
    this.cluster.registerDisk(id, vmName, this.name)
    this.save()
    if (o.policy !== undefined) await this.setPolicy(vmName, id, o.policy)
    return disk
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
