/** Messages between the main thread and the VM and daemon workers. */
import type { MessagePort } from 'node:worker_threads'
import type { CloseReason, DiskEvent, FilterClass, IoError, IoOp } from '../sdk/index.js'
import type { DriveFault } from './drive.js'
import type { FaultRecord } from './chain.js'
import type { LogEntry } from './worker-common.js'
import type { MemoryUpdate } from './store.js'

/** Where a disk's bytes live, as handed to a worker. */
export type Backing =
  | { kind: 'memory'; mems: WebAssembly.Memory[]; pairs: number[]; free: number[] }
  | { kind: 'file'; path: string }
  | { kind: 'null' }

/** A filter as placed on one disk. */
export interface FilterSpec {
  filterId: string
  name: string
  cls: FilterClass
  transforming: boolean
  /** file:// URL of the ES module entry */
  entryUrl: string
  policy: Record<string, unknown>
  sidecarPath: string
  /** Port to the filter's daemon on this host, when it has one (sent once per worker). */
  daemonPort?: MessagePort
  hasDaemon: boolean
}

export interface DiskSpec {
  id: string
  capacity: number
  backing: Backing
  /** The volatile write cache's journal; null = write-through. */
  journal: { kind: 'shared'; sab: SharedArrayBuffer } | { kind: 'file'; path: string; size: number } | null
  reorder: { seed: number; maxDelayMs: number } | null
}

export interface VmWorkerData {
  vm: string
  host: string
  ioTimeoutMs: number
  openTimeoutMs: number
}

export type ToVm =
  | { t: 'open'; rid: number; disk: DiskSpec; filters: FilterSpec[] }
  | { t: 'close'; rid: number; disk: string; reason: CloseReason; flush: boolean }
  | { t: 'reconfigure'; rid: number; disk: string; filters: FilterSpec[]; detachFirst: string[] }
  | { t: 'suspend'; rid: number; disk: string; filterIds: string[]; reason: CloseReason }
  | { t: 'resume'; rid: number; disk: string; filters: FilterSpec[] }
  | { t: 'attach'; rid: number; disk: string; filter: FilterSpec }
  | { t: 'detach'; rid: number; disk: string; filter: FilterSpec }
  | { t: 'io'; rid: number; disk: string; op: IoOp; offset: number; length: number; data: Uint8Array | null }
  | { t: 'event'; rid: number; disk: string; event: DiskEvent; snapshotPath?: string }
  | { t: 'stun'; rid: number; disk: string; on: boolean }
  | { t: 'fault'; rid: number; disk: string; fault: DriveFault | null; seed: number }
  | { t: 'drive-stats'; rid: number; disk: string }
  | { t: 'memory'; rid: number; gc: boolean }
  | { t: 'ping'; rid: number }
  | { t: 'link'; filterId: string; port: MessagePort }
  | { t: 'run'; rid: number; disk: string; module: string; options: unknown }

export type FromVm =
  | { t: 'ready' }
  | { t: 'reply'; rid: number; ok: true; value?: unknown }
  | { t: 'reply'; rid: number; ok: false; error: { code: string; message: string; details?: unknown } }
  | { t: 'io'; rid: number; error: IoError | null; data: Uint8Array | null }
  | { t: 'mem'; disk: string; update: MemoryUpdate }
  | { t: 'faults'; list: FaultRecord[] }
  | { t: 'log'; list: LogEntry[]; dropped: number }

export interface DaemonWorkerData {
  host: string
  filterId: string
  entryUrl: string
  storePath: string
  stopTimeoutMs: number
}

export type ToDaemon =
  | { t: 'link'; vm: string; port: MessagePort }
  | { t: 'stop'; rid: number }
  | { t: 'gc'; rid: number }
  | { t: 'site-reply'; sid: number; ok: boolean; value?: unknown; error?: string }
  | { t: 'site-replies'; list: { sid: number; ok: boolean; value?: unknown; error?: string }[] }

/** One recovery-site call from a daemon. */
export interface SiteCall {
  sid: number
  op: 'connect' | 'write' | 'flush' | 'close'
  site: string
  conn: number
  disk?: string
  offset?: number
  /** A write's bytes: its own buffer, or `length` bytes at `at` in the message's `data`. */
  data?: Uint8Array
  at?: number
  length?: number
  /** A write: how many failed writes of this connection to `disk` its caller had been told of. */
  seen?: number
}

export type FromDaemon =
  | { t: 'ready' }
  | { t: 'failed'; message: string }
  | { t: 'stopped'; rid: number; ms: number; timedOut: boolean; error?: string; resources: string[] }
  | { t: 'gc-done'; rid: number }
  | { t: 'site'; sid: number; op: 'connect' | 'write' | 'flush' | 'close'; site: string; conn: number; disk?: string; offset?: number; data?: Uint8Array }
  | { t: 'sites'; list: SiteCall[]; data?: ArrayBuffer }
  | { t: 'log'; list: LogEntry[]; dropped: number }
