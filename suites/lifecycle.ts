/**
 * lifecycle.*: the filter through install, upgrade, uninstall, host reboot, host crash and policy
 * churn. The install-side checks drive the framework's lifecycle (vSphere's IoFilterManager:
 * per-host outcomes and issues named as the ESX Agent Manager names them) with the vendor's own
 * package, from a path and from a loopback HTTP server; the others drive guests under a policy
 * naming the filter and judge what the filter controls — that no I/O is lost or fails, that its
 * state survives, that its daemon releases what it holds — measured, never taken on trust.
 *
 * The hosts trust the package's own key (the vendor certifies its own package), the upgrade
 * source's, and a key the check makes for the copies it alters (a tampered download, a copy
 * whose descriptor asks for other flags), as the spec has the harness do.
 *
 * This file is the suite's entry; each check lives in its room under `lifecycle/`, with what
 * they share in `lifecycle/common.ts` (results, guests) and `lifecycle/packages.ts` (keys,
 * altered copies, the HTTP server).
 */
import type { CheckDef } from '../harness/certify/check.js'
import { attachDetachCheck } from './lifecycle/attach-detach.js'
import { installFailureCheck } from './lifecycle/install-failure.js'
import { installCheck } from './lifecycle/install.js'
import { crashCheck, rebootCheck } from './lifecycle/reboot-crash.js'
import { uninstallCleanCheck, uninstallInUseCheck } from './lifecycle/uninstall.js'
import { upgradeCheck } from './lifecycle/upgrade.js'

/** The suite's checks, in catalogue order. */
export const checks: readonly CheckDef[] = [installCheck, installFailureCheck, upgradeCheck, uninstallInUseCheck, uninstallCleanCheck, rebootCheck, crashCheck, attachDetachCheck]
