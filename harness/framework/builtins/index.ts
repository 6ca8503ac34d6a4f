/** The platform's built-in filters: never installed or removed, available on every host. */
import type { FilterModule } from '../../sdk/index.js'
import type { FilterInfo } from '../inspect.js'
import spmModule from './spm.js'
import vmcryptModule from './vmwarevmcrypt.js'

function builtin(mod: FilterModule, file: string): FilterInfo {
  return Object.freeze({
    id: `${mod.vendor}_${mod.name}_${mod.version}`,
    name: mod.name,
    vendor: mod.vendor,
    version: mod.version,
    cls: mod.class,
    entryUrl: new URL(file, import.meta.url).href,
    policySchema: mod.policySchema,
    hasDaemon: false,
    builtin: true,
  })
}

/** `VMW_spm_1.0.0`: storage I/O control (IOPS limit, reservation, shares). */
export const SPM = builtin(spmModule, './spm.js')
/** `VMW_vmwarevmcrypt_1.0.0`: AES-XTS encryption with a per-disk key. */
export const VMCRYPT = builtin(vmcryptModule, './vmwarevmcrypt.js')

export const BUILTINS: readonly FilterInfo[] = [SPM, VMCRYPT]
