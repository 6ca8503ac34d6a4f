/**
 * Judging a package before it is written: the staged package is loaded as certification and
 * install load it — the same loader, in its worker, and the same checks — so a package that
 * either would refuse is never built, and the builder says what they would say.
 */
import { cp, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { IofError, PackageRefused } from '../errors.js'
import { filterId, type Descriptor } from './descriptor.js'
import { fingerprint } from './keys.js'
import { loadPackage } from './load.js'
import { DESCRIPTOR_FILE } from './paths.js'
import { disposePackage } from './verify.js'

/** The code of a build refused because certification or install would refuse the package; exit code 1. */
export const PACKAGE_REFUSED = PackageRefused.code

/** The certification checks a built package must pass (package.signature aside: signing is the builder's choice). */
const CERTIFICATION_CHECKS = ['descriptor', 'integrity', 'abi', 'class-open', 'policy-schema'] as const

/**
 * Loads the package staged in `staged` (descriptor.json and every file) twice, each time from a
 * copy under `workDir`: first through certification's package checks, then as a host installs
 * it. Throws PackageRefused, carrying the message of the first check that fails — certification's
 * `package.*` message, or the coded error install gives — word for word. The package's code
 * runs here, in the loader's sandboxed worker.
 */
export async function preflightPackage(staged: string, descriptor: Descriptor, workDir: string): Promise<void> {
  const id = filterId(descriptor)
  let source = staged
  if (descriptor.signature === undefined && descriptor.acceptanceLevel !== 'CommunitySupported') {
    // Unsigned above CommunitySupported, verification would keep the module from loading at
    // all; the builder warns about the signature instead, and judges the module on a copy that
    // differs only in declaring CommunitySupported.
    const copy = join(workDir, 'community')
    await cp(staged, copy, { recursive: true })
    await writeFile(join(copy, DESCRIPTOR_FILE), `${JSON.stringify({ ...descriptor, acceptanceLevel: 'CommunitySupported' }, null, 2)}\n`)
    source = copy
  }
  // certification's own checks; imported when needed, since harness/certify imports this module's package
  const { prepareSubject } = await import('../../certify/subject.js')
  const subject = await prepareSubject(source, workDir)
  const failed = CERTIFICATION_CHECKS.filter(check => !subject.steps[check].ok)
  const first = failed[0]
  if (first !== undefined) {
    const check = `package.${first}`
    const message = subject.steps[first].message ?? 'failed'
    throw PackageRefused({ package: id, reason: `would fail certification: ${check}: ${message}`, id, check, message, failed: failed.map(c => `package.${c}`) })
  }

  // The hosts of a certification run are CommunitySupported and trust the package's own key.
  const trustedKeys = descriptor.signature === undefined ? [] : [fingerprint(descriptor.signature.publicKey)]
  let loaded
  try {
    loaded = await loadPackage(source, { workDir, trust: { acceptanceLevel: 'CommunitySupported', trustedKeys } })
  } catch (err) {
    if (!(err instanceof IofError)) throw err
    throw PackageRefused({ package: id, reason: `would be refused at install: ${err.message}`, id, check: 'install', code: err.code, message: err.message }, err)
  }
  await disposePackage(loaded.opened)
}
