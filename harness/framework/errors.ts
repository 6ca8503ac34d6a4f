/**
 * The one catalogue of coded errors. Each code has a stable name and a message template;
 * the original error, when there is one, is kept as `cause`.
 */

/** An error with a stable code, optional structured details and an exit code for the CLI. */
export class IofError extends Error {
  readonly code: string
  readonly details: Readonly<Record<string, unknown>>
  readonly exitCode: number
  constructor(code: string, message: string, details: Record<string, unknown> = {}, options: { cause?: unknown; exitCode?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'IofError'
    this.code = code
    this.details = details
    this.exitCode = options.exitCode ?? 1
  }
}

type Template<A> = (args: A) => string

/** Defines a coded error factory: `const E = defineError('Code', a => `...`)`; `throw E(args)`. */
export function defineError<A extends Record<string, unknown> = Record<string, never>>(
  code: string,
  template: Template<A>,
  exitCode = 1,
): ((args: A, cause?: unknown) => IofError) & { readonly code: string } {
  const make = (args: A, cause?: unknown) => new IofError(code, template(args), args, { cause, exitCode })
  return Object.assign(make, { code })
}

/** True when `err` is an IofError with the given code. */
export function isIofError(err: unknown, code?: string): err is IofError {
  return err instanceof IofError && (code === undefined || err.code === code)
}

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
export const BadInput = defineError<{ message: string }>('BadInput', a => a.message, 2)

// ---- a cluster's state on disk ----
/** `of` says whose state the file holds, e.g. `host esx1` or `the cluster`. */
export const StateFileMissing = defineError<{ file: string; of: string }>('StateFileMissing', a => `state file ${a.file} (${a.of}) is missing`, 2)
/** `reason` says what is wrong, naming the field when one is: `it is not JSON (…)`, `it is empty`, `vms[0].name must be a string, got 3`. */
export const StateFileInvalid = defineError<{ file: string; reason: string }>('StateFileInvalid', a => `state file ${a.file} is unusable: ${a.reason}`, 2)
export const HostDirMissing = defineError<{ host: string; dir: string }>('HostDirMissing', a => `host ${a.host} is in the cluster, but its directory ${a.dir} is missing`, 2)
export const DiskImageMissing = defineError<{ vm: string; disk: string; file: string }>('DiskImageMissing', a => `disk ${a.disk} of VM ${a.vm} has no image: ${a.file} is missing (restore it, or remove the disk)`, 2)
export const DiskHasPolicy = defineError<{ vm: string; disk: string; policy: string }>('DiskHasPolicy', a => `disk ${a.disk} of VM ${a.vm} has storage policy "${a.policy}": clear the policy first`)
export const LockUnusable = defineError<{ file: string; reason: string }>('LockUnusable', a => `cannot take the cluster lock ${a.file}: ${a.reason}`, 2)

// ---- packages: descriptor, integrity, signature, acceptance, module load ----
/** `limit` and `max` name the bound a package crossed (see package/tarball.ts PackageLimits), when that is why. */
export const PackageUnreadable = defineError<{ source: string; reason: string; limit?: string; max?: number }>('PackageUnreadable', a => `cannot read package ${a.source}: ${a.reason}`, 2)
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
export const TrustStoreInvalid = defineError<{ key: string }>('TrustStoreInvalid', a => `trust store entry "${a.key}" is not a SHA-256 key fingerprint (64 hex digits)`, 2)
export const ClassNotOpen = defineError<{ cls: string; open: string[] }>('ClassNotOpen', a => `filter class ${a.cls} is not open to third parties; open classes: ${a.open.join(', ')}`)
export const AbiVersionMismatch = defineError<{ source: string; found: unknown; supported: number[] }>('AbiVersionMismatch', a => `${a.source} declares abiVersion ${JSON.stringify(a.found)}, but this framework supports abiVersion ${a.supported.join(', ')}`)
export const ModuleLoadFailed = defineError<{ entry: string; reason: string }>('ModuleLoadFailed', a => `cannot load filter module ${a.entry}: ${a.reason}`)
export const ModuleInvalid = defineError<{ entry: string; reason: string }>('ModuleInvalid', a => `filter module ${a.entry} is invalid: ${a.reason}`)
export const ModuleMismatch = defineError<{ field: string; descriptor: unknown; module: unknown }>('ModuleMismatch', a => `module ${a.field} ${JSON.stringify(a.module)} does not equal the descriptor's ${JSON.stringify(a.descriptor)}`)
export const PolicySchemaInvalid = defineError<{ errors: string[] }>('PolicySchemaInvalid', a => `policySchema is invalid: ${a.errors.join('; ')}`)
export const KeyInvalid = defineError<{ source: string; reason: string }>('KeyInvalid', a => `${a.source} is not a usable Ed25519 key: ${a.reason}`, 2)
export const KeyFileExists = defineError<{ path: string }>('KeyFileExists', a => `${a.path} already exists; refusing to overwrite a key`, 2)
