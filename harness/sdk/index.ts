/**
 * The filter SDK: the types of Filter ABI v1 and the few values a filter may use.
 * It imports nothing else of iofcert. A filter needs none of it at run time: a plain ES
 * module whose default export has the FilterModule shape loads.
 */

/** The ABI version this SDK describes; the framework refuses modules of another version. */
export const FILTER_ABI_VERSION = 1 as const

/** The eight values of vSphere's IoFilterType. */
export type FilterClass =
  | 'replication'
  | 'cache'
  | 'encryption'
  | 'datastoreIoControl'
  | 'inspection'
  | 'compression'
  | 'dataProvider'
  | 'dataCapture'

export type IoOp = 'read' | 'write' | 'flush' | 'unmap'
export type IoError = 'EIO' | 'ENOSPC' | 'ETIMEDOUT' | 'EBUSY' | 'EINVAL' | 'ENODEV'
export type DiskEvent = 'snapshot' | 'stun' | 'unstun'
export type CloseReason = 'power-off' | 'migrate' | 'detach' | 'upgrade' | 'host-shutdown'

/** One guest I/O (or a filter's own I/O below itself) as a filter sees it. */
export interface Io {
  /** Unique while the disk is open. */
  readonly id: number
  readonly op: IoOp
  /** Bytes, a multiple of 512. */
  readonly offset: number
  /** Bytes, a multiple of 512; 0 for flush. */
  readonly length: number
  /** write: the payload (never modify it); read: the guest's buffer; flush, unmap: null. */
  readonly data: Uint8Array | null
}

export type Decision =
  | { readonly kind: 'pass'; readonly data?: Uint8Array }
  | { readonly kind: 'complete' }
  | { readonly kind: 'fail'; readonly error: IoError }

export type Outcome = { readonly ok: true } | { readonly ok: false; readonly error: IoError }

/** Pass the I/O to the next layer unchanged. */
export const PASS: Decision = Object.freeze({ kind: 'pass' as const })
/** The filter completed the I/O itself (a read's io.data holds the bytes). */
export const COMPLETE: Decision = Object.freeze({ kind: 'complete' as const })
const FAILS = new Map<IoError, Decision>()
/** Fail the I/O with `error`; the filters above see it in `done`. */
export function fail(error: IoError): Decision {
  let d = FAILS.get(error)
  if (d === undefined) {
    d = Object.freeze({ kind: 'fail' as const, error })
    FAILS.set(error, d)
  }
  return d
}

export interface Logger {
  debug(msg: string, data?: object): void
  info(msg: string, data?: object): void
  warn(msg: string, data?: object): void
  error(msg: string, data?: object): void
}

/** A filter's persistent state for one disk (or, as a daemon's `store`, for one host). */
export interface Sidecar {
  size(): Promise<number>
  read(offset: number, length: number): Promise<Uint8Array>
  write(offset: number, data: Uint8Array): Promise<void>
  truncate(size: number): Promise<void>
  sync(): Promise<void>
}

/** I/O of the filter's own to the layers below it. read() returns a fresh, unshared array. */
export interface LowerDisk {
  read(offset: number, length: number): Promise<Uint8Array>
  write(offset: number, data: Uint8Array): Promise<void>
  flush(): Promise<void>
}

/** Structured-clone messages to the filter's daemon on this host, delivered in send order. */
export interface DaemonLink {
  request(message: unknown, transfer?: ArrayBuffer[]): Promise<unknown>
  post(message: unknown, transfer?: ArrayBuffer[]): void
}

export interface DiskContext {
  readonly host: string
  readonly vm: string
  /** Unique in the cluster, kept through migration. */
  readonly disk: string
  readonly capacity: number
  readonly sectorSize: 512
  /** Validated against policySchema, defaults filled. */
  readonly policy: Readonly<Record<string, unknown>>
  readonly sidecar: Sidecar
  readonly lower: LowerDisk
  readonly daemon: DaemonLink | null
  readonly log: Logger
}

export interface FilterInstance {
  start?(io: Io): Decision | Promise<Decision>
  done?(io: Io, outcome: Outcome): void | Promise<void>
  event?(event: DiskEvent): void | Promise<void>
  close?(reason: CloseReason): void | Promise<void>
}

export interface ReplicaTarget {
  /**
   * Apply a write to the replica of `disk`; writes to one disk apply in call order. The target
   * copies `data` before the call returns: the caller may reuse the bytes at once. A write called
   * before an earlier write of this target to the same disk failed (before that promise rejected)
   * is never applied: it rejects with ECANCELED. Writes may so be kept in flight and the site
   * still holds a prefix of them: those before the first failure.
   */
  write(disk: string, offset: number, data: Uint8Array): Promise<void>
  /** Everything written to `disk` before this call is durable at the site. */
  flush(disk: string): Promise<void>
  close(): Promise<void>
}

export interface Targets {
  /** A recovery site by name; rejects with ENODEV when there is no such site. */
  connect(site: string): Promise<ReplicaTarget>
}

export interface DaemonContext {
  readonly host: string
  readonly targets: Targets
  readonly store: Sidecar
  readonly log: Logger
}

export interface Daemon {
  message?(from: { vm: string; disk: string }, message: unknown): unknown | Promise<unknown>
  stop?(): void | Promise<void>
}

export interface FilterModule {
  readonly abiVersion: 1
  readonly name: string
  readonly vendor: string
  readonly version: string
  readonly class: FilterClass
  readonly policySchema?: object
  daemon?(host: DaemonContext): Daemon | Promise<Daemon>
  attach?(disk: DiskContext): void | Promise<void>
  detach?(disk: DiskContext): void | Promise<void>
  open(disk: DiskContext): FilterInstance | Promise<FilterInstance>
}

/** Identity helper that types a filter module: `export default defineFilter({...})`. */
export function defineFilter<T extends FilterModule>(module: T): T {
  return module
}
