/**
 * A cluster of emulated hosts sharing a datastore (disk images and sidecars) and the recovery
 * site `dr`. Everything lives under one directory; hosts keep their own state in `hosts/<name>`.
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { pathToFileURL } from 'node:url'
import { FILTER_ABI_VERSION, type FilterClass } from '../sdk/index.js'
import { AbiVersionMismatch, BadHostName, BadOption, ClassNotOpen, ClusterNotFound, HostExists, HostNotFound, IofError, isIofError, ModuleInvalid, PolicyInvalid, PolicyNotFound, StateFileInvalid, VmNotFound } from './errors.js'
import { Host, type AcceptanceLevel, type HostServices } from './host.js'
import { inspectModule, type FilterInfo } from './inspect.js'
import { readStateFile, StateShape, writeJsonAtomic } from './persist.js'
import { PolicyValidator, type StoragePolicy } from './policy.js'
import { RecoverySite } from './site.js'
import { newMemoryImage, type MemoryImage } from './store.js'
import type { Vm } from './vm.js'
import { Rng } from './rng.js'

/** Cluster-wide settings, resolved once (defaults documented here). */
export interface ClusterOptions {
  /** Directory for the datastore and host state (default: a fresh temp directory). */
  readonly dir: string
  /** Guest I/O timeout (default 30 s). */
  readonly ioTimeoutMs: number
  /** Bound on each open/close/attach/detach/event call (default 60 s; the ABI promises at least 30 s). */
  readonly openTimeoutMs: number
  /** One filter per class per `host` (default) or per `disk`. */
  readonly classExclusivity: 'host' | 'disk'
  /** Volatile write cache per drive, bytes of journal (default 8 MiB; 0 = write-through). */
  readonly cacheBytes: number
  /** Command queueing: seeded reordering and completion delays (default off). */
  readonly reorder: { readonly seed: number; readonly maxDelayMs: number } | null
  /** Old-generation heap limit of each VM worker (default 512 MiB). */
  readonly heapMb: number
  /** Bound on a daemon's stop() (default 5 s). */
  readonly daemonStopMs: number
  /** Whether the directory is removed by shutdown({ remove: true }) (temp dirs). */
  readonly tempDir: boolean
}

/** The classes a vendor may ship in this profile. */
export const OPEN_CLASSES: readonly FilterClass[] = ['replication', 'cache']
const ALL_CLASSES: readonly FilterClass[] = ['replication', 'cache', 'encryption', 'datastoreIoControl', 'inspection', 'compression', 'dataProvider', 'dataCapture']

interface ClusterState {
  hosts: string[]
  policies: StoragePolicy[]
  options: Omit<ClusterOptions, 'dir' | 'tempDir'>
}

/** The settings a cluster.json written before one of them existed gets. */
const OPTION_DEFAULTS: Omit<ClusterOptions, 'dir' | 'tempDir'> = {
  ioTimeoutMs: 30_000,
  openTimeoutMs: 60_000,
  classExclusivity: 'host',
  cacheBytes: 8 << 20,
  reorder: null,
  heapMb: 512,
  daemonStopMs: 5000,
}

/** What `Cluster.open` does beyond reading the state. */
export interface OpenHow {
  /** Boot every host (default true); without it the hosts are read and stay down (see Cluster.boot). */
  readonly boot?: boolean
  /**
   * Keep going when a host's state cannot be read: the host is left out of `hosts` and its error
   * kept in `unreadable` (default false: the error is thrown). For reading a cluster, never for
   * changing it.
   */
  readonly tolerant?: boolean
}

/** Host names: letters, digits, . _ - (they name directories). */
const HOST_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/

/** Reads cluster.json, one line naming the file and the field when something is wrong. */
function readClusterState(file: string): ClusterState {
  const v = readStateFile(file, 'the cluster')
  const s = new StateShape(file)
  const hosts = s.arr(v.hosts, 'hosts', (x, at) => s.str(x, at, HOST_NAME))
  const twice = hosts.find((h, i) => hosts.indexOf(h) !== i)
  if (twice !== undefined) throw StateFileInvalid({ file, reason: `hosts names ${twice} twice` })
  const policies = s.arr(v.policies, 'policies', (x, at) => {
    const p = s.obj(x, at)
    s.str(p.name, `${at}.name`)
    s.arr(p.rules, `${at}.rules`, (r, rat) => {
      const rule = s.obj(r, rat)
      s.str(rule.filter, `${rat}.filter`)
      if (rule.params !== undefined) s.obj(rule.params, `${rat}.params`)
      return rule
    })
    if (p.allowCleartextFilters !== undefined) s.bool(p.allowCleartextFilters, `${at}.allowCleartextFilters`)
    return p as unknown as StoragePolicy
  })
  const o = v.options === undefined ? {} : s.obj(v.options, 'options')
  const pick = <K extends keyof typeof OPTION_DEFAULTS>(k: K, check: (x: unknown, at: string) => unknown): (typeof OPTION_DEFAULTS)[K] => {
    if (o[k] === undefined) return OPTION_DEFAULTS[k]
    check(o[k], `options.${k}`)
    return o[k] as (typeof OPTION_DEFAULTS)[K]
  }
  const options = {
    ioTimeoutMs: pick('ioTimeoutMs', (x, at) => s.num(x, at, 1)),
    openTimeoutMs: pick('openTimeoutMs', (x, at) => s.num(x, at, 1)),
    classExclusivity: pick('classExclusivity', (x, at) => s.oneOf(x, at, ['host', 'disk'] as const)),
    cacheBytes: pick('cacheBytes', (x, at) => s.int(x, at, 0)),
    reorder: pick('reorder', (x, at) => s.nullable(x, at, (r, rat) => {
      const ro = s.obj(r, rat)
      s.int(ro.seed, `${rat}.seed`, 0)
      s.num(ro.maxDelayMs, `${rat}.maxDelayMs`, 0)
      return ro
    })),
    heapMb: pick('heapMb', (x, at) => s.num(x, at, 1)),
    daemonStopMs: pick('daemonStopMs', (x, at) => s.num(x, at, 1)),
  }
  return { hosts, policies, options }
}

export class Cluster implements HostServices {
  readonly hosts = new Map<string, Host>()
  readonly policies = new Map<string, StoragePolicy>()
  readonly sites = new Map<string, RecoverySite>()
  readonly validator = new PolicyValidator()
  /** Hosts whose state could not be read (only when opened `tolerant`), with the error. */
  readonly unreadable = new Map<string, IofError>()
  private readonly diskOwners = new Map<string, { vm: string; host: string }>()
  private readonly images = new Map<string, MemoryImage>()
  private readonly journals = new Map<string, SharedArrayBuffer>()

  private constructor(readonly options: ClusterOptions) {
    this.sites.set('dr', new RecoverySite('dr'))
  }

  /** Creates a new, empty cluster. */
  static async create(o: Partial<ClusterOptions> = {}): Promise<Cluster> {
    const tempDir = o.dir === undefined
    const dir = o.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-cluster-'))
    fs.mkdirSync(dir, { recursive: true })
    const options: ClusterOptions = Object.freeze({
      dir,
      ioTimeoutMs: o.ioTimeoutMs ?? 30_000,
      openTimeoutMs: o.openTimeoutMs ?? 60_000,
      classExclusivity: o.classExclusivity ?? 'host',
      cacheBytes: o.cacheBytes ?? 8 << 20,
      reorder: o.reorder ?? null,
      heapMb: o.heapMb ?? 512,
      daemonStopMs: o.daemonStopMs ?? 5000,
      tempDir: o.tempDir ?? tempDir,
    })
    if (!(options.ioTimeoutMs > 0)) throw BadOption({ option: 'ioTimeoutMs', reason: `must be positive, got ${options.ioTimeoutMs}` })
    if (options.classExclusivity !== 'host' && options.classExclusivity !== 'disk') throw BadOption({ option: 'classExclusivity', reason: `must be 'host' or 'disk'` })
    const c = new Cluster(options)
    c.save()
    return c
  }

  /**
   * Opens a cluster from its directory: every host reboots from its own state. A state file that
   * is missing or does not read is one error naming the file (see OpenHow for the exceptions).
   */
  static async open(dir: string, overrides: Partial<ClusterOptions> = {}, how: OpenHow = {}): Promise<Cluster> {
    const file = path.join(dir, 'cluster.json')
    let st: ClusterState
    try {
      st = readClusterState(file)
    } catch (err) {
      if (isIofError(err, 'StateFileMissing')) throw ClusterNotFound({ dir, hint: 'cluster.json missing' }, err)
      throw err
    }
    const c = new Cluster(Object.freeze({ ...st.options, ...overrides, dir, tempDir: false }))
    for (const p of st.policies) c.policies.set(p.name, p)
    const seen = new Map<string, string>()
    for (const name of st.hosts) {
      const h = new Host(name, c, path.join(dir, 'hosts', name))
      try {
        h.load()
        // a VM or disk in two hosts' states: the second file is the one that is wrong
        for (const vm of h.vms.values()) {
          const other = seen.get(`vm ${vm.name}`)
          if (other !== undefined) throw StateFileInvalid({ file: h.stateFile, reason: `VM ${vm.name} is also on host ${other}` })
          for (const id of vm.disks.keys()) {
            const owner = seen.get(`disk ${id}`)
            if (owner !== undefined) throw StateFileInvalid({ file: h.stateFile, reason: `disk ${id} is also on host ${owner}` })
          }
        }
      } catch (err) {
        if (!how.tolerant || !(err instanceof IofError)) throw err
        c.unreadable.set(name, err)
        continue
      }
      for (const vm of h.vms.values()) {
        seen.set(`vm ${vm.name}`, name)
        for (const id of vm.disks.keys()) seen.set(`disk ${id}`, name)
      }
      c.hosts.set(name, h)
    }
    // registered again: a host whose state failed half way through may have registered some
    c.diskOwners.clear()
    for (const h of c.hosts.values()) for (const vm of h.vms.values()) for (const id of vm.disks.keys()) c.registerDisk(id, vm.name, h.name)
    if (how.boot ?? true) await c.boot()
    return c
  }

  /** Boots every host that is down (what Cluster.open does unless told not to). */
  async boot(): Promise<void> {
    for (const h of this.hosts.values()) if (!h.up) await h.boot()
  }

  save(): void {
    const { dir: _d, tempDir: _t, ...options } = this.options
    // a host whose state could not be read stays in the cluster
    const hosts = [...this.hosts.keys(), ...[...this.unreadable.keys()].filter(n => !this.hosts.has(n))]
    writeJsonAtomic(path.join(this.options.dir, 'cluster.json'), { hosts, policies: [...this.policies.values()], options } satisfies ClusterState)
  }

  // ---- hosts ----

  async addHost(name: string, o: { acceptanceLevel?: AcceptanceLevel; trustedKeys?: string[] } = {}): Promise<Host> {
    if (!HOST_NAME.test(name)) throw BadHostName({ host: name })
    if (this.hosts.has(name) || this.unreadable.has(name)) throw HostExists({ host: name })
    const h = new Host(name, this, path.join(this.options.dir, 'hosts', name))
    // what a host of that name left when it could not join or leave to the end is no state of this one
    fs.rmSync(h.dir, { recursive: true, force: true })
    if (o.acceptanceLevel) h.acceptanceLevel = o.acceptanceLevel
    if (o.trustedKeys) h.trustedKeys = [...o.trustedKeys]
    this.hosts.set(name, h)
    await h.boot()
    this.save()
    return h
  }

  host(name: string): Host {
    const h = this.hosts.get(name)
    if (h === undefined) throw HostNotFound({ host: name })
    return h
  }

  /** Reboots a host cleanly: VMs close with `host-shutdown`, daemons stop, then it boots again. */
  async rebootHost(name: string, o: { powerOnVms?: boolean } = {}): Promise<Host> {
    const h = this.host(name)
    if (h.up) await h.shutdown()
    return this.restartHost(name, o)
  }

  /** Cuts a host's power: workers end at once, unflushed writes are lost. */
  async crashHost(name: string, o: { seed?: number } = {}): Promise<number> {
    return this.host(name).crash(o.seed)
  }

  /** Starts a host again from its directory (after a crash or a shutdown). */
  async restartHost(name: string, o: { powerOnVms?: boolean } = {}): Promise<Host> {
    const old = this.host(name)
    const h = new Host(name, this, old.dir)
    this.hosts.set(name, h)
    h.load()
    await h.boot()
    if (o.powerOnVms) for (const vm of h.wasPoweredOn) await h.vm(vm).powerOn()
    return h
  }

  // ---- filters (development installs; packages go through the lifecycle layer) ----

  /**
   * Loads a module's shape in the loader context and checks it as install would: ABI version,
   * identity fields, class. Returns what the framework needs to place it in chains.
   */
  async describeModule(entry: string): Promise<FilterInfo> {
    const url = entry.startsWith('file:') ? entry : pathToFileURL(path.resolve(entry)).href
    const s = await inspectModule(url)
    if (s.abiVersion !== FILTER_ABI_VERSION) throw AbiVersionMismatch({ source: entry, found: s.abiVersion, supported: [FILTER_ABI_VERSION] })
    for (const k of ['name', 'vendor', 'version'] as const) if (typeof s[k] !== 'string') throw ModuleInvalid({ entry, reason: `its ${k} must be a string` })
    if (!ALL_CLASSES.includes(s.class as FilterClass)) throw ModuleInvalid({ entry, reason: `unknown filter class ${String(s.class)}` })
    if (!s.hasOpen) throw ModuleInvalid({ entry, reason: 'it has no open() function' })
    return {
      id: `${s.vendor}_${s.name}_${s.version}`,
      name: s.name as string,
      vendor: s.vendor as string,
      version: s.version as string,
      cls: s.class as FilterClass,
      entryUrl: url,
      policySchema: (s.policySchema ?? undefined) as object | undefined,
      hasDaemon: s.hasDaemon,
      builtin: false,
    }
  }

  /** Installs a module on every host (no package, no maintenance mode): for development and tests. */
  async installModule(entry: string, o: { allowReserved?: boolean } = {}): Promise<FilterInfo> {
    const info = await this.describeModule(entry)
    if (!o.allowReserved && !OPEN_CLASSES.includes(info.cls)) {
      throw ClassNotOpen({ cls: info.cls, open: [...OPEN_CLASSES] })
    }
    for (const h of this.hosts.values()) await h.activate(info)
    return info
  }

  // ---- policies ----

  /** Stores a storage policy (its rules are checked against each host when applied). */
  createPolicy(p: StoragePolicy): StoragePolicy {
    if (p === null || typeof p !== 'object' || typeof p.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9 ._-]*$/.test(p.name)) {
      throw PolicyInvalid({ policy: String(p?.name), reason: 'a policy needs a name of letters, digits, space . _ -' })
    }
    if (!Array.isArray(p.rules)) throw PolicyInvalid({ policy: p.name, reason: 'rules must be an array' })
    const copy: StoragePolicy = structuredClone(p)
    this.policies.set(p.name, copy)
    this.save()
    return copy
  }

  policy(name: string): StoragePolicy {
    const p = this.policies.get(name)
    if (p === undefined) throw PolicyNotFound({ policy: name })
    return p
  }

  // ---- VMs and disks ----

  findVm(name: string): Vm | undefined {
    for (const h of this.hosts.values()) {
      const vm = h.vms.get(name)
      if (vm !== undefined) return vm
    }
    return undefined
  }

  vm(name: string): Vm {
    const vm = this.findVm(name)
    if (vm === undefined) throw VmNotFound({ vm: name })
    return vm
  }

  hostOf(vm: string): Host {
    for (const h of this.hosts.values()) if (h.vms.has(vm)) return h
    throw VmNotFound({ vm })
  }

  registerDisk(id: string, vm: string, host: string): void {
    this.diskOwners.set(id, { vm, host })
  }
  /** Forgets a deleted disk: its owner, and its memory image and journal. */
  forgetDisk(id: string): void {
    this.diskOwners.delete(id)
    this.images.delete(id)
    this.journals.delete(id)
  }
  diskOwner(id: string): { vm: string; host: string } | undefined {
    return this.diskOwners.get(id)
  }
  /** The memory image of a disk (kept in this process across host reboots and VM crashes). */
  memoryImage(id: string, fresh = false): MemoryImage {
    let img = this.images.get(id)
    if (img === undefined || fresh) {
      img = newMemoryImage()
      this.images.set(id, img)
    }
    return img
  }
  /** The volatile cache journal of a memory disk. */
  memoryJournal(id: string, fresh = false): SharedArrayBuffer | null {
    if (this.options.cacheBytes <= 0) return null
    let j = this.journals.get(id)
    if (j === undefined || fresh) {
      j = new SharedArrayBuffer(this.options.cacheBytes)
      this.journals.set(id, j)
    }
    return j
  }
  diskImagePath(id: string): string {
    return path.join(this.options.dir, 'datastore', id, 'disk.img')
  }
  sidecarPath(disk: string, filterName: string): string {
    return path.join(this.options.dir, 'datastore', disk, 'sidecars', `${filterName}.sidecar`)
  }
  reorderFor(disk: string): { seed: number; maxDelayMs: number } | null {
    const r = this.options.reorder
    if (r === null) return null
    let h = r.seed >>> 0
    for (let i = 0; i < disk.length; i++) h = Math.imul(h ^ disk.charCodeAt(i), 16777619) >>> 0
    return { seed: new Rng(h).u32(), maxDelayMs: r.maxDelayMs }
  }

  site(name: string): RecoverySite | undefined {
    return this.sites.get(name)
  }

  /**
   * Migrates a VM to another host on the shared datastore. A powered-on VM's disks close with
   * `migrate` and reopen on the target with their sidecars; the filters must be installed there.
   */
  async migrateVm(vmName: string, toHost: string): Promise<Vm> {
    const from = this.hostOf(vmName)
    const to = this.host(toHost)
    if (from === to) return from.vm(vmName)
    const vm = from.vm(vmName)
    for (const d of vm.disks.values()) if (d.policy !== null) to.resolveDisk({ ...d }, d.policy)
    const wasOn = vm.state === 'on'
    if (wasOn) await vm.powerOff('migrate')
    from.vms.delete(vmName)
    vm.services = to.services()
    to.vms.set(vmName, vm)
    for (const d of vm.disks.values()) {
      if (d.policy !== null) to.resolveDisk(d, d.policy)
      this.registerDisk(d.id, vmName, toHost)
    }
    from.save()
    to.save()
    if (wasOn) await vm.powerOn()
    return vm
  }

  /** Powers off every VM, stops every daemon; removes a temp directory when asked. */
  async shutdown(o: { remove?: boolean } = {}): Promise<void> {
    for (const h of this.hosts.values()) if (h.up) await h.shutdown()
    if (o.remove ?? this.options.tempDir) fs.rmSync(this.options.dir, { recursive: true, force: true })
  }
}
