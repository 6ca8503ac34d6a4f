/**
 * The framework's public API: clusters, hosts, VMs and their disks, policies, the errors. Filter
 * packages (`./package/index.js`) and lifecycle operations (`./lifecycle/index.js`) have front
 * doors of their own, kept apart so that loading the framework does not load them.
 */
export { Cluster, OPEN_CLASSES, type ClusterOptions } from './cluster.js'
export { Host, type AcceptanceLevel, type DiskOptions, type InstalledFilter } from './host.js'
export { Vm, IoFailed, DiskSnapshot, type DiskBacking, type IoResult, type GuestIo, type VmDisk, type VmFault } from './vm.js'
export { RecoverySite, hashBytes, nowMs, type Arrival, type SiteFault, type WriteStream } from './site.js'
export { chainRank, CLASS_CAPABILITY, TRANSFORMING, type StoragePolicy, type PolicyRule } from './policy.js'
export type { DriveCallback, DriveFault, DriveRequest, DriveStats } from './drive.js'
export type { FaultRecord } from './chain.js'
export { inspectModule, type FilterInfo, type ModuleShape } from './inspect.js'
export type { WorkerDiskHandle } from './vm-worker.js'
export { BUILTINS, SPM, VMCRYPT } from './builtins/index.js'
export { Rng } from './rng.js'
export * from './errors.js'
export { gcFunction, type LogEntry } from './worker-common.js'
export { runDemo } from './demo.js'
