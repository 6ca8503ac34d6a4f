/**
 * The framework's catalogue of coded errors (the shape is harness/base/errors.ts). Each code has
 * a stable name, a message template and a kind; the original error, when there is one, is kept
 * as `cause`.
 */

export { defineError, IofError, isIofError, reviveError, type ErrorFactory, type ErrorKind } from '../base/errors.js'
import { defineError } from '../base/errors.js'

// ---- framework: cluster, hosts, VMs, disks, policies ----
export const HostNotFound = defineError<{ host: string }>('HostNotFound', a => `no host named "${a.host}" in the cluster`)
export const HostExists = defineError<{ host: string }>('HostExists', a => `a host named "${a.host}" already exists`)
export const VmNotFound = defineError<{ vm: string }>('VmNotFound', a => `no VM named "${a.vm}"`)
export const VmExists = defineError<{ vm: string }>('VmExists', a => `a VM named "${a.vm}" already exists`)
export const VmPoweredOn = defineError<{ vm: string; action: string }>('VmPoweredOn', a => `VM "${a.vm}" is powered on: cannot ${a.action}`)
export const VmPoweredOff = defineError<{ vm: string }>('VmPoweredOff', a => `VM "${a.vm}" is powered off`)
export const DiskNotFound = defineError<{ disk: string }>('DiskNotFound', a => `no disk "${a.disk}"`)
export const DiskExists = defineError<{ disk: string }>('DiskExists', a => `a disk with id "${a.disk}" already exists in the cluster`)
export const DiskCapacityInvalid = defineError<{ capacity: number }>('DiskCapacityInvalid', a => `disk capacity ${a.capacity} must be a positive multiple of 512`)
export const FilterNotInstalled = defineError<{ filter: string; host: string }>('FilterNotInstalled', a => `filter "${a.filter}" is not installed on host "${a.host}"`)
export const PolicyInvalid = defineError<{ policy: string; reason: string }>('PolicyInvalid', a => `storage policy "${a.policy}" is invalid: ${a.reason}`)
export const PolicyClassConflict = defineError<{ policy: string; cls: string; filters: string[] }>('PolicyClassConflict', a => `storage policy "${a.policy}" names two filters of class ${a.cls}: ${a.filters.join(', ')}`)
export const PolicyParamsInvalid = defineError<{ policy: string; filter: string; errors: string[] }>('PolicyParamsInvalid', a => `storage policy "${a.policy}": parameters for ${a.filter} do not validate: ${a.errors.join('; ')}`)
export const PolicyNotFound = defineError<{ policy: string }>('PolicyNotFound', a => `no storage policy named "${a.policy}"`)
export const FilterClassConflict = defineError<{ installed: string; cls: string; host: string; filter: string }>('FilterClassConflict', a => `host ${a.host}: ${a.filter} conflicts with installed ${a.installed} (one ${a.cls} filter per host)`)
export const DiskClassConflict = defineError<{ disk: string; cls: string; filters: string[] }>('DiskClassConflict', a => `disk ${a.disk} would have two ${a.cls} filters: ${a.filters.join(', ')}`)
export const FilterInUse = defineError<{ filter: string; disks: string[] }>('FilterInUse', a => `filter ${a.filter} is in use by disk(s): ${a.disks.join(', ')}`)
export const WorkerFailed = defineError<{ vm: string; reason: string }>('WorkerFailed', a => `VM "${a.vm}" I/O worker failed: ${a.reason}`)
export const OpenFailed = defineError<{ vm: string; disk: string; filter: string; reason: string }>('OpenFailed', a => `opening disk ${a.disk} of VM ${a.vm}: filter ${a.filter} failed: ${a.reason}`)
export const DaemonFailed = defineError<{ host: string; filter: string; reason: string }>('DaemonFailed', a => `daemon of ${a.filter} on host ${a.host} failed: ${a.reason}`)
export const SiteNotFound = defineError<{ site: string }>('SiteNotFound', a => `ENODEV: no recovery site named "${a.site}"`)
export const HostInMaintenance = defineError<{ host: string }>('HostInMaintenance', a => `host ${a.host} is in maintenance mode`)
export const MaintenanceRefused = defineError<{ host: string; vms: string[] }>('MaintenanceRefused', a => `host ${a.host} cannot enter maintenance mode: powered-on VMs ${a.vms.join(', ')}`)
export const HostDown = defineError<{ host: string; vm: string }>('HostDown', a => `host ${a.host} is down: cannot power on ${a.vm}`)
export const BadHostName = defineError<{ host: string }>('BadHostName', a => `host name "${a.host}" must be letters, digits, . _ -`, 'bad-input')
/** `hint` says why: `cluster.json missing`, `run iofcert cluster init first`. */
export const ClusterNotFound = defineError<{ dir: string; hint: string }>('ClusterNotFound', a => `no cluster in ${a.dir} (${a.hint})`, 'bad-input')
/** An option given to the library (not a command-line flag) that cannot work; `reason` reads after its name. */
export const BadOption = defineError<{ option: string; reason: string }>('BadOption', a => `${a.option} ${a.reason}`, 'bad-input')
/** A command-line flag or argument that cannot work: the message says which and why. */
export const BadInput = defineError<{ message: string }>('BadInput', a => a.message, 'bad-input')

// ---- a cluster's state on disk ----
/** `of` says whose state the file holds, e.g. `host esx1` or `the cluster`. */
export const StateFileMissing = defineError<{ file: string; of: string }>('StateFileMissing', a => `state file ${a.file} (${a.of}) is missing`, 'bad-input')
/** `reason` says what is wrong, naming the field when one is: `it is not JSON (…)`, `it is empty`, `vms[0].name must be a string, got 3`. */
export const StateFileInvalid = defineError<{ file: string; reason: string }>('StateFileInvalid', a => `state file ${a.file} is unusable: ${a.reason}`, 'bad-input')
export const HostDirMissing = defineError<{ host: string; dir: string }>('HostDirMissing', a => `host ${a.host} is in the cluster, but its directory ${a.dir} is missing`, 'bad-input')
export const DiskImageMissing = defineError<{ vm: string; disk: string; file: string }>('DiskImageMissing', a => `disk ${a.disk} of VM ${a.vm} has no image: ${a.file} is missing (restore it, or remove the disk)`, 'bad-input')
export const DiskHasPolicy = defineError<{ vm: string; disk: string; policy: string }>('DiskHasPolicy', a => `disk ${a.disk} of VM ${a.vm} has storage policy "${a.policy}": clear the policy first`)
export const LockUnusable = defineError<{ file: string; reason: string }>('LockUnusable', a => `cannot take the cluster lock ${a.file}: ${a.reason}`, 'bad-input')

// ---- packages: descriptor, integrity, signature, acceptance, module load ----
/** `limit` and `max` name the bound a package crossed (see package/tarball.ts PackageLimits), when that is why. */
export const PackageUnreadable = defineError<{ source: string; reason: string; limit?: string; max?: number }>('PackageUnreadable', a => `cannot read package ${a.source}: ${a.reason}`, 'bad-input')
export const DescriptorInvalid = defineError<{ errors: string[] }>('DescriptorInvalid', a => `descriptor.json is invalid: ${a.errors.join('; ')}`)
export const PathEscapes = defineError<{ path: string; reason: string }>('PathEscapes', a => `package path "${a.path}" is not allowed: ${a.reason}`)
export const LinkInPackage = defineError<{ path: string; type: string }>('LinkInPackage', a => `package entry "${a.path}" is a ${a.type}: links are not allowed in a package`)
export const UnsupportedEntry = defineError<{ path: string; reason: string }>('UnsupportedEntry', a => `package entry "${a.path}" is not allowed: ${a.reason}`)
export const EntryMissing = defineError<{ entry: string; reason: string }>('EntryMissing', a => `entry "${a.entry}" ${a.reason}`)
export const IntegrityMismatch = defineError<{ file: string; reason: 'missing' | 'extra' | 'changed'; mismatches: { file: string; reason: string }[] }>('IntegrityMismatch', a => `integrity check failed: ${a.file} is ${a.reason === 'missing' ? 'listed but missing' : a.reason === 'extra' ? 'present but not listed' : 'changed (SHA-256 differs)'}${a.mismatches.length > 1 ? ` (and ${a.mismatches.length - 1} more)` : ''}`)
export const SignatureInvalid = defineError<{ reason: string }>('SignatureInvalid', a => `package signature is invalid: ${a.reason}`)
export const SignatureMissing = defineError<{ level: string }>('SignatureMissing', a => `acceptance level ${a.level} requires a signed package, and this one is unsigned`)
export const AcceptanceLevelTooLow = defineError<{ level: string; hostLevel: string }>('AcceptanceLevelTooLow', a => `package acceptance level ${a.level} is below the host's level ${a.hostLevel}`)
export const UntrustedKey = defineError<{ fingerprint: string; level: string }>('UntrustedKey', a => `package is signed by key ${a.fingerprint}, which is not in the host's trust store (required for ${a.level})`)
export const TrustStoreInvalid = defineError<{ key: string }>('TrustStoreInvalid', a => `trust store entry "${a.key}" is not a SHA-256 key fingerprint (64 hex digits)`, 'bad-input')
export const ClassNotOpen = defineError<{ cls: string; open: string[] }>('ClassNotOpen', a => `filter class ${a.cls} is not open to third parties; open classes: ${a.open.join(', ')}`)
export const AbiVersionMismatch = defineError<{ source: string; found: unknown; supported: number[] }>('AbiVersionMismatch', a => `${a.source} declares abiVersion ${JSON.stringify(a.found)}, but this framework supports abiVersion ${a.supported.join(', ')}`)
export const ModuleLoadFailed = defineError<{ entry: string; reason: string }>('ModuleLoadFailed', a => `cannot load filter module ${a.entry}: ${a.reason}`)
export const ModuleInvalid = defineError<{ entry: string; reason: string }>('ModuleInvalid', a => `filter module ${a.entry} is invalid: ${a.reason}`)
export const ModuleMismatch = defineError<{ field: string; descriptor: unknown; module: unknown }>('ModuleMismatch', a => `module ${a.field} ${JSON.stringify(a.module)} does not equal the descriptor's ${JSON.stringify(a.descriptor)}`)
export const PolicySchemaInvalid = defineError<{ errors: string[] }>('PolicySchemaInvalid', a => `policySchema is invalid: ${a.errors.join('; ')}`)
export const KeyInvalid = defineError<{ source: string; reason: string }>('KeyInvalid', a => `${a.source} is not a usable Ed25519 key: ${a.reason}`, 'bad-input')
/**
 * `iofcert package` (or the bench) refuses a package certification or install would refuse:
 * the message is `<package> <reason>`; the other arguments say which check and why.
 */
export const PackageRefused = defineError<{ package: string; reason: string } & Record<string, unknown>>('PackageRefused', a => `${a.package} ${a.reason}`)
export const KeyFileExists = defineError<{ path: string }>('KeyFileExists', a => `${a.path} already exists; refusing to overwrite a key`, 'bad-input')

// ---- the install lifecycle: host issues it raises itself (see lifecycle/issues.ts for the others) ----

export const CannotAccessAgentVib = defineError<{ downloadUrl: string; reason: string }>('CannotAccessAgentVib', a => `cannot get the package from ${a.downloadUrl}: ${a.reason}`)
export const VibInvalidFormat = defineError<{ reason: string }>('VibInvalidFormat', a => `the package is not a valid filter package: ${a.reason}`)
export const VibDependenciesNotMetByHost = defineError<{ required: unknown; provided: number[] }>('VibDependenciesNotMetByHost', a => `the package needs filter ABI version ${JSON.stringify(a.required)}, but this host implements version ${a.provided.join(', ')}`)
export const VibRequirementsNotMetByHost = defineError<{ cls: string; open: string[] }>('VibRequirementsNotMetByHost', a => `filter class ${a.cls} is not open to third parties; open classes: ${a.open.join(', ')}`)
export const VibRequiresHostInMaintenanceMode = defineError<{ host: string; operation: 'install' | 'upgrade' | 'uninstall' }>('VibRequiresHostInMaintenanceMode', a => `the ${a.operation} needs host ${a.host} in maintenance mode, and automatic maintenance mode is off`)
export const VibRequiresHostReboot = defineError<{ host: string; filter: string }>('VibRequiresHostReboot', a => `host ${a.host} must reboot to finish the operation on ${a.filter}`)
export const VibCannotPutHostInMaintenanceMode = defineError<{ host: string; vms: string[] }>('VibCannotPutHostInMaintenanceMode', a => `host ${a.host} cannot enter maintenance mode: powered-on VMs ${a.vms.join(', ')}`)
export const VibCannotPutHostOutOfMaintenanceMode = defineError<{ host: string; reason: string }>('VibCannotPutHostOutOfMaintenanceMode', a => `host ${a.host} cannot leave maintenance mode: ${a.reason}`)
export const FilterVersionConflict = defineError<{ installed: string; filter: string }>('FilterVersionConflict', a => `${a.installed} is installed; upgrade it to ${a.filter} instead of installing`)
export const UpgradeNotApplicable = defineError<{ installed: string; filter: string; reason: string }>('UpgradeNotApplicable', a => `${a.filter} cannot upgrade ${a.installed}: ${a.reason}`)
export const OperationInterrupted = defineError<{ operation: 'install' | 'upgrade' | 'uninstall' }>('OperationInterrupted', a => `the ${a.operation} was interrupted before this host finished (the process running it ended); resolve retries it`)
export const HostOperationFailed = defineError<{ code: string; reason: string }>('HostOperationFailed', a => a.reason)

// ---- the install lifecycle: cluster-level refusals (not per host) ----

/** No lifecycle record and no host knows the filter. */
export const FilterNotFound = defineError<{ filter: string }>('FilterNotFound', a => `no filter "${a.filter}" is installed on the cluster (see iofcert cluster list)`, 'bad-input')
/** The package URL has a scheme the lifecycle does not download from. */
export const UnsupportedUrl = defineError<{ url: string }>('UnsupportedUrl', a => `cannot install from "${a.url}": use a local path, file://, http:// or https://`, 'bad-input')
/** A host that still has VMs cannot leave the cluster (they would be lost with it). */
export const HostNotEmpty = defineError<{ host: string; vms: string[] }>('HostNotEmpty', a => `host ${a.host} still has VMs (${a.vms.join(', ')}): migrate them before it leaves the cluster`)
/** Another command is working on the cluster. */
export const ClusterBusy = defineError<{ dir: string; pid: number }>('ClusterBusy', a => `cluster ${a.dir} is in use by another iofcert process (pid ${a.pid})`)
/** `cluster init` on a directory that already holds a cluster. */
export const ClusterExists = defineError<{ dir: string }>('ClusterExists', a => `${a.dir} already holds a cluster (cluster.json)`, 'bad-input')
