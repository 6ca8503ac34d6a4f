/**
 * Per-host issues of the install lifecycle, named as the ESX Agent Manager names them, and the
 * mapping from the framework's coded errors to those names.
 *
 * Names the spec leaves to us (none of them is an EAM name, so none pretends to be one):
 * - `VibRequirementsNotMetByHost { cls, open }`: a class that is not open to third parties —
 *   the host does not offer what the package requires.
 * - `VibDependenciesNotMetByHost { required, provided }`: a filter ABI version the host does not
 *   implement — the package depends on an interface the host lacks.
 * - `FilterVersionConflict { installed }`: install of a version while another version of the same
 *   filter is installed (upgrade is the operation for that).
 * - `UpgradeNotApplicable { installed, reason }`: the package is not the same filter (name,
 *   vendor, class) or its version is not higher than the installed one.
 * - `FilterInUse { disks }`: uninstall while disks use the filter (the framework's own code).
 * - `OperationInterrupted { operation }`: the process running the operation died before this host
 *   finished; the host is as it was before (or already done) and resolve retries.
 * - `HostOperationFailed { code, reason }`: anything else (a host that is down, a daemon that
 *   fails to start), keeping the original error's code.
 */
import { IofError } from '../errors.js'

/** The lifecycle operations (vSphere's IoFilterOperation). */
export type LifecycleOperation = 'install' | 'upgrade' | 'uninstall'

/** Every issue name a host can report. */
export const ISSUE_NAMES = [
  'CannotAccessAgentVib',
  'VibInvalidFormat',
  'VibDependenciesNotMetByHost',
  'VibRequirementsNotMetByHost',
  'VibRequiresHostInMaintenanceMode',
  'VibRequiresHostReboot',
  'VibCannotPutHostInMaintenanceMode',
  'VibCannotPutHostOutOfMaintenanceMode',
  'FilterClassConflict',
  'AcceptanceLevelTooLow',
  'SignatureInvalid',
  'IntegrityMismatch',
  'FilterInUse',
  'FilterVersionConflict',
  'UpgradeNotApplicable',
  'OperationInterrupted',
  'HostOperationFailed',
] as const
/** The name of a host issue. */
export type IssueName = (typeof ISSUE_NAMES)[number]

/** One problem of one operation on one host. */
export interface HostIssue {
  readonly issue: IssueName
  readonly host: string
  /** The filter's id, or null while no host could read the package (then `url` names it). */
  readonly filterId: string | null
  readonly operation: LifecycleOperation
  /** The package URL the operation used (null for uninstall). */
  readonly url: string | null
  /** One line for people. */
  readonly message: string
  /** Structured details, e.g. `{ downloadUrl }`, `{ installed }`, `{ file }`, `{ disks }`. */
  readonly details: Readonly<Record<string, unknown>>
  /** ISO time the issue was raised. */
  readonly at: string
}

// the issues raised by the lifecycle itself are in the framework's catalogue (../errors.ts)
export {
  CannotAccessAgentVib, VibInvalidFormat, VibDependenciesNotMetByHost, VibRequirementsNotMetByHost,
  VibRequiresHostInMaintenanceMode, VibRequiresHostReboot, VibCannotPutHostInMaintenanceMode,
  VibCannotPutHostOutOfMaintenanceMode, FilterVersionConflict, UpgradeNotApplicable, OperationInterrupted,
  HostOperationFailed, FilterNotFound, UnsupportedUrl,
} from '../errors.js'

/** Codes of the package layer that mean "not a well-formed package". */
const FORMAT_CODES = new Set([
  'PackageUnreadable', 'DescriptorInvalid', 'PathEscapes', 'LinkInPackage', 'UnsupportedEntry',
  'EntryMissing', 'ModuleLoadFailed', 'ModuleInvalid', 'ModuleMismatch', 'PolicySchemaInvalid',
])
/** Codes of the package layer that mean "the signature does not give the trust the level needs". */
const SIGNATURE_CODES = new Set(['SignatureInvalid', 'SignatureMissing', 'UntrustedKey', 'TrustStoreInvalid'])

/** Turns an error raised while operating on one host into that host's issue. */
export function issueOf(err: unknown, at: { host: string; filterId: string | null; operation: LifecycleOperation; url: string | null }): HostIssue {
  const base = { host: at.host, filterId: at.filterId, operation: at.operation, url: at.url, at: new Date().toISOString() }
  if (!(err instanceof IofError)) {
    const reason = oneLine(err)
    return { ...base, issue: 'HostOperationFailed', message: reason, details: { code: 'Error', reason } }
  }
  const message = oneLine(err)
  const d = err.details
  const named = (issue: IssueName, details: Record<string, unknown>): HostIssue => ({ ...base, issue, message, details })
  if (SIGNATURE_CODES.has(err.code)) return named('SignatureInvalid', { code: err.code, reason: message, ...(d.fingerprint === undefined ? {} : { fingerprint: d.fingerprint }) })
  if ((ISSUE_NAMES as readonly string[]).includes(err.code)) {
    if (err.code === 'FilterClassConflict') return named('FilterClassConflict', { installed: d.installed, cls: d.cls })
    if (err.code === 'IntegrityMismatch') return named('IntegrityMismatch', { file: d.file, reason: d.reason, mismatches: d.mismatches })
    if (err.code === 'FilterInUse') return named('FilterInUse', { disks: d.disks })
    return named(err.code as IssueName, { ...d })
  }
  if (FORMAT_CODES.has(err.code)) return named('VibInvalidFormat', { code: err.code, reason: message })
  switch (err.code) {
    case 'ClassNotOpen':
      return named('VibRequirementsNotMetByHost', { cls: d.cls, open: d.open })
    case 'AbiVersionMismatch':
      return named('VibDependenciesNotMetByHost', { required: d.found, provided: d.supported })
    case 'MaintenanceRefused':
      return named('VibCannotPutHostInMaintenanceMode', { vms: d.vms })
    default:
      return named('HostOperationFailed', { code: err.code, reason: message })
  }
}

function oneLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err)
  return message.split('\n')[0] ?? message
}
