/**
 * The lifecycle's cluster-level records, kept in `<cluster>/lifecycle.json` and written
 * atomically after every step that changes them, so a process killed at any instant leaves the
 * last committed records: which filters the cluster has (id, url, descriptor, operation), the
 * issues of each host, the operation in flight, and the reboots hosts owe.
 */
import * as path from 'node:path'
import type { FilterInfo } from '../inspect.js'
import { exists, loadedPath, loadedUrl, readStateFile, StateShape, storedPath, storedUrl, writeJsonAtomic } from '../persist.js'
import type { Descriptor } from '../package/index.js'
import type { HostIssue, LifecycleOperation } from './issues.js'

/** A filter the cluster was asked to have (or to lose). */
export interface FilterRecord {
  /** Stable internal reference: the id changes on upgrade and is unknown until a host reads the package. */
  readonly ref: number
  /** `${vendor}_${name}_${version}` of the cluster's target version; null until a host read the package. */
  id: string | null
  url: string
  descriptor: Descriptor | null
  operation: LifecycleOperation
  /** The id an upgrade replaces (kept so a retry can still name it). */
  from: string | null
  /**
   * While `id` is null: the id the package at `url` names in its descriptor, read from a package
   * every host refused (a signature, an acceptance level), so the failed install can be named by
   * the filter's id. Not a verified id: it never becomes `id` until a host accepts the package.
   */
  claimedId?: string | null
}

/** A host issue as stored: tied to its record by `ref`. */
export type StoredIssue = Omit<HostIssue, 'filterId'> & { readonly ref: number }

/** One host's part of the operation in flight. */
export interface PendingHost {
  readonly host: string
  readonly operation: LifecycleOperation | 'reboot'
  readonly url: string | null
}

/** The operation in flight: what recovery needs when its process died. */
export interface PendingOperation {
  readonly pid: number
  readonly ref: number
  /** Hosts not yet finished, in order. */
  hosts: PendingHost[]
  /** Set just before a host is put in maintenance mode, so recovery can take it out again. */
  current: { readonly host: string; readonly maintenanceBefore: boolean } | null
  readonly startedAt: string
}

/**
 * A reboot a host owes. `install`: the filter is PENDING_REBOOT in the host's state (the info and
 * meta let a resumed session put it back after opening the cluster, which boots every host);
 * `upgrade`: the new version runs already and the reboot is the operator's to do.
 */
export interface RebootOwed {
  readonly host: string
  readonly filterId: string
  readonly kind: 'install' | 'upgrade'
  readonly info: FilterInfo
  readonly meta: Record<string, unknown>
  readonly at: string
}

/** lifecycle.json */
export interface LifecycleState {
  readonly version: 1
  nextRef: number
  filters: FilterRecord[]
  issues: StoredIssue[]
  pending: PendingOperation | null
  reboots: RebootOwed[]
}

export const STATE_FILE = 'lifecycle.json'

/**
 * Reads the records of the cluster in `dir` (empty when there are none yet). Records that do not
 * read are one error naming the file (StateFileInvalid).
 */
export function readState(dir: string): LifecycleState {
  const file = path.join(dir, STATE_FILE)
  if (!exists(file)) return { version: 1, nextRef: 1, filters: [], issues: [], pending: null, reboots: [] }
  return parseState(file, readStateFile(file, 'the cluster\'s filter records'), dir)
}

/** Commits the records atomically (paths under the cluster directory relative to it). */
export function writeState(dir: string, st: LifecycleState): void {
  const reboots = st.reboots.map(r => ({ ...r, info: { ...r.info, entryUrl: storedUrl(dir, r.info.entryUrl) }, meta: typeof r.meta.dir === 'string' ? { ...r.meta, dir: storedPath(dir, r.meta.dir) } : r.meta }))
  writeJsonAtomic(path.join(dir, STATE_FILE), { ...st, reboots })
}

const OPERATIONS = ['install', 'upgrade', 'uninstall'] as const

/** Checks what lifecycle.json holds, field by field, and makes its paths absolute. */
function parseState(file: string, v: Record<string, unknown>, root: string): LifecycleState {
  const s = new StateShape(file)
  if (v.version !== 1) s.fail('version', '1', v.version)
  s.int(v.nextRef, 'nextRef', 1)
  const text = (x: unknown, at: string) => s.str(x, at)
  const maybe = (x: unknown, at: string) => s.nullable(x, at, text)
  s.arr(v.filters, 'filters', (x, at) => {
    const f = s.obj(x, at)
    s.int(f.ref, `${at}.ref`, 1)
    maybe(f.id, `${at}.id`)
    text(f.url, `${at}.url`)
    s.nullable(f.descriptor, `${at}.descriptor`, (d, dat) => s.obj(d, dat))
    s.oneOf(f.operation, `${at}.operation`, OPERATIONS)
    maybe(f.from, `${at}.from`)
    if (f.claimedId !== undefined) maybe(f.claimedId, `${at}.claimedId`)
    return f
  })
  s.arr(v.issues, 'issues', (x, at) => {
    const i = s.obj(x, at)
    s.int(i.ref, `${at}.ref`, 1)
    for (const k of ['issue', 'host', 'message', 'at'] as const) text(i[k], `${at}.${k}`)
    s.oneOf(i.operation, `${at}.operation`, OPERATIONS)
    maybe(i.url, `${at}.url`)
    s.obj(i.details, `${at}.details`)
    return i
  })
  s.nullable(v.pending, 'pending', (x, at) => {
    const p = s.obj(x, at)
    s.int(p.pid, `${at}.pid`, 1)
    s.int(p.ref, `${at}.ref`, 1)
    s.arr(p.hosts, `${at}.hosts`, (y, hat) => {
      const h = s.obj(y, hat)
      text(h.host, `${hat}.host`)
      s.oneOf(h.operation, `${hat}.operation`, [...OPERATIONS, 'reboot'] as const)
      maybe(h.url, `${hat}.url`)
      return h
    })
    s.nullable(p.current, `${at}.current`, (y, cat) => {
      const c = s.obj(y, cat)
      text(c.host, `${cat}.host`)
      s.bool(c.maintenanceBefore, `${cat}.maintenanceBefore`)
      return c
    })
    text(p.startedAt, `${at}.startedAt`)
    return p
  })
  const reboots = s.arr(v.reboots, 'reboots', (x, at) => {
    const r = s.obj(x, at)
    for (const k of ['host', 'filterId', 'at'] as const) text(r[k], `${at}.${k}`)
    s.oneOf(r.kind, `${at}.kind`, ['install', 'upgrade'] as const)
    const info = s.obj(r.info, `${at}.info`)
    text(info.id, `${at}.info.id`)
    text(info.entryUrl, `${at}.info.entryUrl`)
    const meta = s.obj(r.meta, `${at}.meta`)
    return { ...r, info: { ...info, entryUrl: loadedUrl(root, info.entryUrl as string) }, meta: typeof meta.dir === 'string' ? { ...meta, dir: loadedPath(root, meta.dir) } : meta }
  })
  return { ...(v as unknown as LifecycleState), reboots: reboots as unknown as RebootOwed[] }
}

/** Compares two semantic versions (SemVer 2.0.0 precedence; build metadata ignored). */
export function compareSemver(a: string, b: string): number {
  const parse = (v: string) => {
    const [core = '', pre] = v.split('+')[0]!.split(/-(.*)/s)
    return { nums: core.split('.').map(Number), pre: pre === undefined || pre === '' ? [] : pre.split('.') }
  }
  const x = parse(a)
  const y = parse(b)
  for (let i = 0; i < 3; i++) {
    const d = (x.nums[i] ?? 0) - (y.nums[i] ?? 0)
    if (d !== 0) return Math.sign(d)
  }
  // a version with a pre-release is lower than the same version without one
  if (x.pre.length === 0 || y.pre.length === 0) return x.pre.length === y.pre.length ? 0 : x.pre.length === 0 ? 1 : -1
  for (let i = 0; i < Math.max(x.pre.length, y.pre.length); i++) {
    const p = x.pre[i]
    const q = y.pre[i]
    if (p === undefined) return -1
    if (q === undefined) return 1
    const pn = /^\d+$/.test(p)
    const qn = /^\d+$/.test(q)
    if (pn && qn) {
      const d = Number(p) - Number(q)
      if (d !== 0) return Math.sign(d)
    } else if (pn !== qn) return pn ? -1 : 1
    else if (p !== q) return p < q ? -1 : 1
  }
  return 0
}
