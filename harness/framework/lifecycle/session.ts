/**
 * A cluster worked on by hand, one command at a time (what `iofcert cluster` does): each command
 * opens the cluster from its directory, does one thing and shuts it down.
 *
 * Opening for a command resumes the cluster rather than rebooting it, because that is what a
 * person at the keyboard expects between two commands:
 * - a filter pending reboot stays pending until the host is rebooted (`cluster reboot`);
 * - a VM left powered on is powered on again (its disks reopen through their filters), so it
 *   counts as powered on for the maintenance-mode rule, and is shut down cleanly at the end of
 *   the command (filters see `host-shutdown`, then `open` at the next command). Memory-backed
 *   disks live only in one process: use file-backed disks for data that must last.
 * One command at a time per cluster directory: a lock file refuses a second while the first
 * runs (a lock left by a killed process is taken over).
 */
import { readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import * as path from 'node:path'
import { Cluster } from '../cluster.js'
import { BadInput, defineError, IofError, KeyInvalid } from '../errors.js'
import type { AcceptanceLevel, Host } from '../host.js'
import { ACCEPTANCE_LEVELS, fingerprint } from '../package/index.js'
import type { PolicyRule, StoragePolicy } from '../policy.js'
import { CLASS_CAPABILITY } from '../policy.js'
import { Lifecycle, type LifecycleOptions } from '../lifecycle.js'

/** Another command is working on the cluster. */
export const ClusterBusy = defineError<{ dir: string; pid: number }>('ClusterBusy', a => `cluster ${a.dir} is in use by another iofcert process (pid ${a.pid})`)
/** `cluster init` on a directory that already holds a cluster. */
export const ClusterExists = defineError<{ dir: string }>('ClusterExists', a => `${a.dir} already holds a cluster (cluster.json)`, 2)

const LOCK_FILE = '.iofcert.lock'

/** An open cluster with its lifecycle, for one command. */
export interface ClusterSession {
  readonly cluster: Cluster
  readonly lifecycle: Lifecycle
  /** VMs that were powered on and could not be powered on again, with the reason. */
  readonly warnings: readonly string[]
  /** Shuts every host down cleanly (VMs remembered as powered on) and releases the lock. */
  close(): Promise<void>
}

/** Options of initCluster. */
export interface InitOptions {
  /** Number of hosts, named esx1 … esxN. */
  readonly hosts: number
  /** Every host's acceptance level (default PartnerSupported). */
  readonly acceptanceLevel?: AcceptanceLevel
  /** Fingerprints (see readTrustedKey) every host trusts. */
  readonly trustedKeys?: readonly string[]
}

/** What initCluster made. */
export interface InitResult {
  readonly dir: string
  readonly hosts: readonly { readonly name: string; readonly acceptanceLevel: AcceptanceLevel; readonly trustedKeys: readonly string[] }[]
}

/** Creates a cluster of `hosts` hosts in `dir` (refused when one is there already). */
export async function initCluster(dir: string, o: InitOptions): Promise<InitResult> {
  if (!Number.isSafeInteger(o.hosts) || o.hosts < 1 || o.hosts > 64) throw BadInput({ message: `--hosts must be a whole number from 1 to 64, got ${String(o.hosts)}` })
  const abs = path.resolve(dir)
  if (existsSync(path.join(abs, 'cluster.json'))) throw ClusterExists({ dir: abs })
  const cluster = await Cluster.create({ dir: abs, tempDir: false })
  try {
    const hosts = []
    for (let i = 1; i <= o.hosts; i++) {
      const h = await cluster.addHost(`esx${i}`, { ...(o.acceptanceLevel === undefined ? {} : { acceptanceLevel: o.acceptanceLevel }), trustedKeys: [...(o.trustedKeys ?? [])] })
      hosts.push({ name: h.name, acceptanceLevel: h.acceptanceLevel, trustedKeys: [...h.trustedKeys] })
    }
    // writes the (empty) lifecycle records, so every later command finds them
    await Lifecycle.open(cluster)
    return { dir: abs, hosts }
  } finally {
    await cluster.shutdown({ remove: false })
  }
}

/** Opens the cluster in `dir` for one command (see the file comment for what "resume" means). */
export async function openClusterSession(dir: string, options: Partial<LifecycleOptions> = {}): Promise<ClusterSession> {
  const abs = path.resolve(dir)
  if (!existsSync(path.join(abs, 'cluster.json'))) throw new IofError('ClusterNotFound', `no cluster in ${abs} (run iofcert cluster init first)`, {}, { exitCode: 2 })
  const release = lock(abs)
  let cluster: Cluster | null = null
  try {
    Lifecycle.prepareResume(abs)
    cluster = await Cluster.open(abs)
    const lifecycle = await Lifecycle.open(cluster, options)
    const warnings: string[] = []
    for (const h of cluster.hosts.values()) {
      for (const name of h.wasPoweredOn) {
        try {
          await h.vm(name).powerOn()
        } catch (err) {
          warnings.push(`VM ${name} on ${h.name} stays powered off: ${err instanceof Error ? err.message : String(err)}`)
        }
      }
    }
    const open = cluster
    let closed = false
    return {
      cluster: open,
      lifecycle,
      warnings,
      close: async () => {
        if (closed) return
        closed = true
        try {
          await open.shutdown({ remove: false })
        } finally {
          release()
        }
      },
    }
  } catch (err) {
    try {
      await cluster?.shutdown({ remove: false })
    } finally {
      release()
    }
    throw err
  }
}

/** Runs `fn` on a session and always closes it. */
export async function withClusterSession<T>(dir: string, options: Partial<LifecycleOptions>, fn: (s: ClusterSession) => Promise<T>): Promise<T> {
  const s = await openClusterSession(dir, options)
  try {
    return await fn(s)
  } finally {
    await s.close()
  }
}

function lock(dir: string): () => void {
  const file = path.join(dir, LOCK_FILE)
  const mine = String(process.pid)
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(file, mine, { flag: 'wx' })
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err
      let pid = Number.NaN
      try {
        pid = Number(readFileSync(file, 'utf8'))
      } catch {
        // removed meanwhile: try again
      }
      if (Number.isSafeInteger(pid) && pid > 0 && alive(pid)) throw ClusterBusy({ dir, pid })
      // left behind by a process that died: take it over
      rmSync(file, { force: true })
    }
  }
  return () => {
    try {
      if (readFileSync(file, 'utf8') === mine) rmSync(file, { force: true })
    } catch {
      // already gone
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

// ---- parsing what people type ----

/** Reads an acceptance level, naming the valid ones when it is not one. */
export function parseAcceptanceLevel(text: string): AcceptanceLevel {
  const level = ACCEPTANCE_LEVELS.find(l => l.toLowerCase() === text.toLowerCase())
  if (level === undefined) throw BadInput({ message: `"${text}" is not an acceptance level (${ACCEPTANCE_LEVELS.join(', ')})` })
  return level
}

/** Reads a public key PEM file and returns its fingerprint (what a host's trust store holds). */
export async function readTrustedKey(file: string): Promise<string> {
  let pem: string
  try {
    pem = await readFile(file, 'utf8')
  } catch (err) {
    throw KeyInvalid({ source: file, reason: (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message }, err)
  }
  try {
    return fingerprint(pem)
  } catch (err) {
    throw KeyInvalid({ source: file, reason: err instanceof Error ? err.message : String(err) }, err)
  }
}

/** Adds a key fingerprint to the trust store of `hosts` (default every host); returns the hosts that changed. */
export function trustKey(cluster: Cluster, fp: string, hosts?: readonly string[]): string[] {
  const changed: string[] = []
  for (const h of hosts === undefined ? [...cluster.hosts.values()] : hosts.map(n => cluster.host(n))) {
    if (h.trustedKeys.includes(fp)) continue
    h.trustedKeys = [...h.trustedKeys, fp]
    h.save()
    changed.push(h.name)
  }
  return changed
}

/** Sets the acceptance level of `hosts` (default every host). */
export function setAcceptanceLevel(cluster: Cluster, level: AcceptanceLevel, hosts?: readonly string[]): void {
  for (const h of hosts === undefined ? [...cluster.hosts.values()] : hosts.map(n => cluster.host(n))) {
    h.acceptanceLevel = level
    h.save()
  }
}

/** A disk of `cluster vm create`. */
export interface DiskSpec {
  readonly id: string
  readonly capacity: number
  readonly backing: 'memory' | 'file'
}

const UNITS: Readonly<Record<string, number>> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }

/** Reads `<id>:<size>[:file|:memory]`; size in bytes or with a binary suffix (`512`, `64M`, `10GiB`). */
export function parseDiskSpec(spec: string): DiskSpec {
  const m = /^([A-Za-z0-9][A-Za-z0-9._-]*):(\d+)\s*([kmgt]?)(?:i?b)?(?::(file|memory))?$/i.exec(spec.trim())
  if (m === null) throw BadInput({ message: `--disk "${spec}" must be <id>:<size>[:file], e.g. data:1G:file` })
  const capacity = Number(m[2]) * UNITS[m[3]!.toLowerCase()]!
  if (!Number.isSafeInteger(capacity) || capacity <= 0 || capacity % 512 !== 0) throw BadInput({ message: `--disk "${spec}": the size must be a positive multiple of 512 bytes` })
  return { id: m[1]!, capacity, backing: (m[4]?.toLowerCase() as 'file' | 'memory' | undefined) ?? 'memory' }
}

/** Creates a VM on a host with its disks. */
export async function createVm(cluster: Cluster, host: string, vm: string, disks: readonly DiskSpec[]): Promise<Host> {
  const h = cluster.host(host)
  h.createVm(vm)
  for (const d of disks) await h.addDisk(vm, { id: d.id, capacity: d.capacity, backing: d.backing })
  return h
}

/** Reads a policy rule `name@CLASS[:json params]`, e.g. `cdp@REPLICATION:{"rpoSeconds":5}`. */
export function parsePolicyRule(spec: string): PolicyRule {
  const m = /^([a-z][a-z0-9-]{1,31})@([A-Za-z]+)(?::(.*))?$/s.exec(spec.trim())
  if (m === null) throw BadInput({ message: `--rule "${spec}" must be <name>@<CLASS>[:<json params>], e.g. cdp@REPLICATION:{"rpoSeconds":5}` })
  const cls = m[2]!.toUpperCase()
  if (!Object.values(CLASS_CAPABILITY).includes(cls)) throw BadInput({ message: `--rule "${spec}": ${m[2]} is not a class (${Object.values(CLASS_CAPABILITY).join(', ')})` })
  if (m[3] === undefined) return { filter: `${m[1]}@${cls}` }
  let params: unknown
  try {
    params = JSON.parse(m[3])
  } catch (err) {
    throw BadInput({ message: `--rule "${spec}": the parameters are not JSON (${(err as Error).message})` })
  }
  if (typeof params !== 'object' || params === null || Array.isArray(params)) throw BadInput({ message: `--rule "${spec}": the parameters must be a JSON object` })
  return { filter: `${m[1]}@${cls}`, params: params as Record<string, unknown> }
}

/** A storage policy from typed rules. */
export function makePolicy(name: string, rules: readonly string[], allowCleartextFilters: boolean): StoragePolicy {
  if (rules.length === 0) throw BadInput({ message: 'a policy needs at least one --rule' })
  return { name, rules: rules.map(parsePolicyRule), ...(allowCleartextFilters ? { allowCleartextFilters: true } : {}) }
}
