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
 *
 * What a command changes on disk survives it being killed at any instant:
 * - one command at a time per cluster directory, under a lock that a killed process's successor
 *   takes over without races (see `lock`);
 * - before anything is read, a commit a killed command left half applied is finished, and what
 *   an unfinished one had made aside is removed (persist.ts, recoverDirectory), also the directory
 *   of a host it was adding or had taken out of the cluster; then the lifecycle recovers from an
 *   operation a killed command had in flight (lifecycle.ts);
 * - each command runs in one of three ways (SessionMode): reading, one transaction, or the
 *   lifecycle's recorded steps.
 */
import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import { readFile } from 'node:fs/promises'
import * as path from 'node:path'
import { Cluster } from '../cluster.js'
import { BadInput, ClusterBusy, ClusterExists, ClusterNotFound, DiskExists, IofError, KeyInvalid, LockUnusable, StateFileMissing, VmExists } from '../errors.js'
import type { AcceptanceLevel, Host } from '../host.js'
import { ACCEPTANCE_LEVELS, fingerprint } from '../package/index.js'
import { beginTransaction, COMMIT_FILE, crashPoint, exists, recoverDirectory, removePath, STAGING_DIR, type Transaction } from '../persist.js'
import type { PolicyRule, StoragePolicy } from '../policy.js'
import { CLASS_CAPABILITY } from '../policy.js'
import { Lifecycle, STATE_FILE, type LifecycleOptions } from './operations.js'

/** Another command is working on the cluster; `cluster init` on a directory that already holds one. */
export { ClusterBusy, ClusterExists } from '../errors.js'

/**
 * How a command works on the cluster's state:
 * - `read`: the state is read and no host boots; nothing is written, except the recovery from a
 *   command that died mid-operation (when every host's state reads). A host whose state does not
 *   read is left out, with its error in `unreadable`.
 * - `transaction`: opening, the command and the shutdown are one transaction, committed when the
 *   command returns and dropped when it throws or the process dies: all or nothing.
 * - `steps`: for the lifecycle's operations, which commit each host's step themselves and record
 *   the operation in flight: opening is committed before the operation, the shutdown after it.
 */
export type SessionMode = 'read' | 'transaction' | 'steps'

/** Options of openClusterSession. */
export interface SessionOptions {
  /** Default `transaction`. */
  readonly mode?: SessionMode
  readonly lifecycle?: Partial<LifecycleOptions>
}

/** An open cluster with its lifecycle, for one command. */
export interface ClusterSession {
  readonly cluster: Cluster
  readonly lifecycle: Lifecycle
  readonly mode: SessionMode
  /** VMs that were powered on and could not be powered on again, with the reason. */
  readonly warnings: readonly string[]
  /** Hosts whose state could not be read (`read` sessions only), with the error. */
  readonly unreadable: ReadonlyMap<string, IofError>
  /**
   * Shuts every host down cleanly (VMs remembered as powered on), commits what the session
   * changed (`discard`: drops it, in a `transaction` session) and releases the lock.
   */
  close(o?: { readonly discard?: boolean }): Promise<void>
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

/** Creates a cluster of `hosts` hosts in `dir` (refused when one is there already), all or nothing. */
export async function initCluster(dir: string, o: InitOptions): Promise<InitResult> {
  if (!Number.isSafeInteger(o.hosts) || o.hosts < 1 || o.hosts > 64) throw BadInput({ message: `--hosts must be a whole number from 1 to 64, got ${String(o.hosts)}` })
  const abs = path.resolve(dir)
  if (fs.existsSync(path.join(abs, 'cluster.json'))) throw ClusterExists({ dir: abs })
  fs.mkdirSync(abs, { recursive: true })
  const release = await lock(abs)
  try {
    recoverDirectory(abs)
    if (fs.existsSync(path.join(abs, 'cluster.json'))) throw ClusterExists({ dir: abs })
    const tx = beginTransaction(abs)
    let cluster: Cluster | null = null
    try {
      cluster = await Cluster.create({ dir: abs, tempDir: false })
      const hosts = []
      for (let i = 1; i <= o.hosts; i++) {
        const h = await cluster.addHost(`esx${i}`, { ...(o.acceptanceLevel === undefined ? {} : { acceptanceLevel: o.acceptanceLevel }), trustedKeys: [...(o.trustedKeys ?? [])] })
        hosts.push({ name: h.name, acceptanceLevel: h.acceptanceLevel, trustedKeys: [...h.trustedKeys] })
      }
      // writes the (empty) lifecycle records, so every later command finds them
      await Lifecycle.open(cluster)
      const made = cluster
      cluster = null
      await made.shutdown({ remove: false })
      tx.commit()
      return { dir: abs, hosts }
    } finally {
      try {
        await cluster?.shutdown({ remove: false })
      } finally {
        tx.discard()
      }
    }
  } finally {
    release()
  }
}

/** Opens the cluster in `dir` for one command (see the file comment and SessionMode). */
export async function openClusterSession(dir: string, o: SessionOptions = {}): Promise<ClusterSession> {
  const mode = o.mode ?? 'transaction'
  const abs = path.resolve(dir)
  const clusterFile = path.join(abs, 'cluster.json')
  const notFound = () => {
    // the rest of a cluster is there: its cluster.json was lost, not never made
    if (fs.existsSync(path.join(abs, STATE_FILE)) || fs.existsSync(path.join(abs, 'hosts'))) return StateFileMissing({ file: clusterFile, of: 'the cluster' })
    return ClusterNotFound({ dir: abs, hint: 'run iofcert cluster init first' })
  }
  // what a killed init made aside is removed (under the lock) before saying there is no cluster
  if (!fs.existsSync(clusterFile) && !fs.existsSync(path.join(abs, COMMIT_FILE)) && !fs.existsSync(path.join(abs, STAGING_DIR))) throw notFound()
  const release = await lock(abs)
  let cluster: Cluster | null = null
  let tx: Transaction | null = null
  try {
    recoverDirectory(abs)
    if (!fs.existsSync(clusterFile)) throw notFound()
    // the recovery from a command that died is committed on its own, before this command's changes
    tx = beginTransaction(abs)
    cluster = await Cluster.open(abs, {}, { boot: false, tolerant: mode === 'read' })
    const strays = strayHostDirs(abs, cluster)
    for (const d of strays) removePath(d)
    const records = path.join(abs, STATE_FILE)
    if (!exists(records)) throw StateFileMissing({ file: records, of: 'the cluster\'s filter records' })
    const lifecycle = await Lifecycle.open(cluster, o.lifecycle ?? {}, { exclusive: true })
    // a reader commits a recovery only when it saw every host; otherwise it keeps it to itself
    if (mode !== 'read' || ((lifecycle.recovered || strays.length > 0) && cluster.unreadable.size === 0)) {
      const recovery = tx
      tx = null
      recovery.commit()
      tx = beginTransaction(abs)
    }
    const warnings: string[] = []
    if (mode !== 'read') {
      await lifecycle.resume()
      for (const h of cluster.hosts.values()) {
        for (const name of h.wasPoweredOn) {
          try {
            await h.vm(name).powerOn()
          } catch (err) {
            warnings.push(`VM ${name} on ${h.name} stays powered off: ${err instanceof Error ? err.message : String(err)}`)
          }
        }
      }
    }
    if (mode === 'steps') {
      const opened = tx
      tx = null
      opened.commit()
    }
    const open = cluster
    const mine = tx
    let closed = false
    return {
      cluster: open,
      lifecycle,
      mode,
      warnings,
      unreadable: open.unreadable,
      close: async c => {
        if (closed) return
        closed = true
        try {
          // a `steps` session's shutdown is a transaction of its own: VMs stay recorded as powered on
          const t = mine ?? beginTransaction(abs)
          try {
            await open.shutdown({ remove: false })
          } catch (err) {
            t.discard()
            throw err
          }
          if (mode === 'read' || (c?.discard === true && mine !== null)) t.discard()
          else t.commit()
        } finally {
          release()
        }
      },
    }
  } catch (err) {
    try {
      await cluster?.shutdown({ remove: false })
    } finally {
      try {
        tx?.discard()
      } finally {
        release()
      }
    }
    throw err
  }
}

/**
 * Directories under `hosts/` that name no host of the cluster (cluster.json, also a host whose
 * state did not read): what a killed `host add` had made before its commit, or a killed
 * `host remove` left after it.
 */
function strayHostDirs(root: string, cluster: Cluster): string[] {
  let entries: fs.Dirent[]
  try {
    entries = fs.readdirSync(path.join(root, 'hosts'), { withFileTypes: true })
  } catch {
    return []
  }
  return entries.filter(e => e.isDirectory() && !cluster.hosts.has(e.name) && !cluster.unreadable.has(e.name)).map(e => path.join(root, 'hosts', e.name))
}

/** Runs `fn` on a session and always closes it: what `fn` changed is committed when it returns, dropped when it throws. */
export async function withClusterSession<T>(dir: string, o: SessionOptions, fn: (s: ClusterSession) => Promise<T>): Promise<T> {
  const s = await openClusterSession(dir, o)
  let done = false
  try {
    const r = await fn(s)
    done = true
    return r
  } finally {
    await s.close({ discard: !done })
  }
}

// ---- the lock ----

/**
 * One command at a time per cluster directory. The lock is `.iofcert.lock` and holds its owner as
 * one line of JSON, `{ pid, start, nonce }`: the process id, the process's start time (Linux:
 * clock ticks after boot, /proc/<pid>/stat field 22; null where there is no /proc) and a random
 * nonce. It is written whole to a temp file, then hard-linked into place: the lock file never
 * exists empty or half written, and the link fails while a lock is there. A second command is
 * refused at once (ClusterBusy, naming the owner's pid); it does not wait.
 *
 * A lock is stale when its owner is gone (no such process, a zombie, or a process with another
 * start time: the pid was reused) or when it names no owner (empty, unreadable, not ours). Only
 * the holder of the break lock `.iofcert.lock.break1` removes a stale lock, after reading it
 * again as stale: two processes that both saw it stale cannot both take over (the later would
 * remove the earlier one's new lock). A break lock left by a process killed while breaking is
 * stale in turn, and is broken under `.iofcert.lock.break2`, and so on.
 */
async function lock(dir: string): Promise<() => void> {
  const me: LockOwner = { pid: process.pid, start: processOf(process.pid).start, nonce: randomBytes(8).toString('hex') }
  const text = `${JSON.stringify(me)}\n`
  const tmp = path.join(dir, `${LOCK_FILE}-${me.pid}-${me.nonce}.tmp`)
  try {
    crashPoint(`create ${tmp}`)
    fs.writeFileSync(tmp, text)
  } catch (err) {
    throw LockUnusable({ file: lockFile(dir, 0), reason: (err as Error).message }, err)
  }
  const deadline = Date.now() + BREAK_WAIT_MS
  try {
    for (let last = 0; ; ) {
      if (tryLink(tmp, lockFile(dir, 0))) break
      const seen = judge(lockFile(dir, 0))
      if (seen.kind === 'live') throw ClusterBusy({ dir, pid: seen.pid })
      // stale: take it over; gone: its owner released it meanwhile, so try again at once
      const breaker = seen.kind === 'stale' ? breakStale(dir, 0, tmp, text) : null
      if (breaker !== null) last = breaker
      if (Date.now() > deadline) throw ClusterBusy({ dir, pid: last })
      // another process is breaking the stale lock: it holds the cluster in a moment
      if (breaker !== null) await new Promise(r => setTimeout(r, 10))
    }
    try {
      tidyLocks(dir, tmp, text)
    } catch {
      // leftovers only: the next take-over deals with them
    }
  } finally {
    crashPoint(`remove ${tmp}`)
    fs.rmSync(tmp, { force: true })
  }
  const file = lockFile(dir, 0)
  return () => releaseLock(file, text)
}

const LOCK_FILE = '.iofcert.lock'
/** How many break locks deep a take-over goes before it gives up (each level is one process killed while breaking). */
const MAX_BREAK_LEVEL = 8
/** How long a command waits for another to finish taking over a stale lock before it says ClusterBusy. */
const BREAK_WAIT_MS = 2000

interface LockOwner {
  readonly pid: number
  readonly start: string | null
  readonly nonce: string
}

type Judged = { readonly kind: 'gone' } | { readonly kind: 'stale' } | { readonly kind: 'live'; readonly pid: number }

function lockFile(dir: string, level: number): string {
  return path.join(dir, level === 0 ? LOCK_FILE : `${LOCK_FILE}.break${level}`)
}

/** Links the complete lock file into place: false when a lock is there. */
function tryLink(tmp: string, file: string): boolean {
  crashPoint(`link ${file}`)
  try {
    fs.linkSync(tmp, file)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw LockUnusable({ file, reason: (err as Error).message }, err)
  }
}

/** Removes a lock this process holds (and nothing else). */
function releaseLock(file: string, text: string): void {
  try {
    if (fs.readFileSync(file, 'utf8') !== text) return
  } catch {
    return
  }
  crashPoint(`remove ${file}`)
  fs.rmSync(file, { force: true })
}

/**
 * Removes the stale lock at `level` while holding the break lock one level up. Returns the pid of
 * a live process breaking it already (null: try again now).
 */
function breakStale(dir: string, level: number, tmp: string, text: string): number | null {
  if (level >= MAX_BREAK_LEVEL) throw LockUnusable({ file: lockFile(dir, 0), reason: `${lockFile(dir, level)} and the break locks below it are stale; remove ${LOCK_FILE}* when no iofcert process works on ${dir}` })
  const guard = lockFile(dir, level + 1)
  if (!tryLink(tmp, guard)) {
    const g = judge(guard)
    if (g.kind === 'live') return g.pid
    if (g.kind === 'stale') return breakStale(dir, level + 1, tmp, text)
    return null
  }
  try {
    // with the guard held no other process removes this lock, and its dead owner cannot: still stale?
    if (judge(lockFile(dir, level)).kind === 'stale') {
      crashPoint(`remove ${lockFile(dir, level)}`)
      fs.rmSync(lockFile(dir, level), { force: true })
    }
  } finally {
    releaseLock(guard, text)
  }
  return null
}

/** Whose a lock file is: gone, stale (see lock) or a live owner's. */
function judge(file: string): Judged {
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? { kind: 'gone' } : { kind: 'stale' }
  }
  let owner: Partial<LockOwner> | null = null
  try {
    owner = JSON.parse(text) as Partial<LockOwner>
  } catch {
    // not ours, or written by an older iofcert: a pid alone
    const legacy = /^\s*(\d+)\s*$/.exec(text)
    if (legacy === null) return { kind: 'stale' }
    const pid = Number(legacy[1])
    return processOf(pid).running && runsIofcert(pid) ? { kind: 'live', pid } : { kind: 'stale' }
  }
  if (typeof owner !== 'object' || owner === null || !Number.isSafeInteger(owner.pid) || (owner.pid as number) <= 0) return { kind: 'stale' }
  const pid = owner.pid as number
  const p = processOf(pid)
  if (!p.running) return { kind: 'stale' }
  if (typeof owner.start === 'string' && p.start !== null && owner.start !== p.start) return { kind: 'stale' }
  return { kind: 'live', pid }
}

/** Whether a process runs and since when (null: not known here). */
function processOf(pid: number): { readonly running: boolean; readonly start: string | null } {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    // after the command name in parentheses: field 3 is the state, field 22 the start time
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const state = fields[0] ?? ''
    return { running: state !== 'Z' && state !== 'X' && state !== 'x', start: fields[19] ?? null }
  } catch {
    // no /proc, or not this process's entry to see
  }
  try {
    process.kill(pid, 0)
    return { running: true, start: null }
  } catch (err) {
    return { running: (err as NodeJS.ErrnoException).code === 'EPERM', start: null }
  }
}

/** Whether a process looks like an iofcert command (for locks of older versions, which name a pid only). */
function runsIofcert(pid: number): boolean {
  try {
    return /iofcert|cli\/main\.js/.test(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'))
  } catch {
    return true
  }
}

/** With the lock held: removes stale break locks and the temp files of processes that died taking the lock. */
function tidyLocks(dir: string, tmp: string, text: string): void {
  let names: string[]
  try {
    names = fs.readdirSync(dir)
  } catch {
    return
  }
  for (let level = 1; level < MAX_BREAK_LEVEL; level++) {
    if (!names.includes(path.basename(lockFile(dir, level)))) continue
    if (judge(lockFile(dir, level)).kind === 'stale') breakStale(dir, level, tmp, text)
  }
  for (const n of names) {
    const m = /^\.iofcert\.lock-(\d+)-[0-9a-f]+\.tmp$/.exec(n)
    if (m === null || processOf(Number(m[1])).running) continue
    crashPoint(`remove ${n}`)
    fs.rmSync(path.join(dir, n), { force: true })
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

/** Creates a VM on a host with its disks; every name is checked before anything is made. */
export async function createVm(cluster: Cluster, host: string, vm: string, disks: readonly DiskSpec[]): Promise<Host> {
  const h = cluster.host(host)
  if (cluster.findVm(vm) !== undefined) throw VmExists({ vm })
  checkNewDisks(cluster, disks)
  h.createVm(vm)
  for (const d of disks) await h.addDisk(vm, { id: d.id, capacity: d.capacity, backing: d.backing })
  return h
}

/** Adds disks to a powered-off VM; every id is checked before any disk is made. */
export async function addDisks(cluster: Cluster, vm: string, disks: readonly DiskSpec[]): Promise<Host> {
  const h = cluster.hostOf(vm)
  checkNewDisks(cluster, disks)
  for (const d of disks) await h.addDisk(vm, { id: d.id, capacity: d.capacity, backing: d.backing })
  return h
}

/** Removes disks (and their images) from a powered-off VM; refused while one has a storage policy. */
export function removeDisks(cluster: Cluster, vm: string, ids: readonly string[]): Host {
  const h = cluster.hostOf(vm)
  const twice = ids.find((id, i) => ids.indexOf(id) !== i)
  if (twice !== undefined) throw BadInput({ message: `disk ${twice} is named twice` })
  for (const id of ids) h.removeDisk(vm, id)
  return h
}

/** Deletes a powered-off VM with its disks and their images; refused while a disk has a storage policy. */
export function deleteVm(cluster: Cluster, vm: string): Host {
  const h = cluster.hostOf(vm)
  h.deleteVm(vm)
  return h
}

function checkNewDisks(cluster: Cluster, disks: readonly DiskSpec[]): void {
  const ids = new Set<string>()
  for (const d of disks) {
    if (ids.has(d.id)) throw BadInput({ message: `--disk ${d.id} is given twice` })
    ids.add(d.id)
    if (cluster.diskOwner(d.id) !== undefined) throw DiskExists({ disk: d.id })
  }
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
