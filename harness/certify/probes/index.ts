/**
 * The probes as the checks use them from the main thread: where each module is, how to install it
 * on a cluster's hosts, the policy rule naming it, and the in-worker modules the checks run inside
 * a VM's worker (`vm.runInWorker`).
 */
import { fileURLToPath } from 'node:url'
import type { FilterClass } from '../../sdk/index.js'
import { CLASS_CAPABILITY, type Cluster, type FilterInfo, type PolicyRule, type Vm } from '../../framework/index.js'
import { probeName } from './probe.js'
import type { ProbeRecord } from './record.js'

export type { ProbeRecord } from './record.js'
export { probeName } from './probe.js'

/** Classes of probes that watch the filter under test from above and below. */
export const WATCH_CLASSES: readonly FilterClass[] = ['inspection', 'compression', 'dataCapture', 'dataProvider']

/** The compiled module of the probe of a class. */
export function probeEntry(cls: FilterClass): string {
  return fileURLToPath(new URL(`./${cls}.js`, import.meta.url))
}

/** Describes the probe of `cls` (the loader checks it as it checks any module). */
export function describeProbe(c: Cluster, cls: FilterClass): Promise<FilterInfo> {
  return c.describeModule(probeEntry(cls))
}

/** Activates the probe of `cls` on every host of the cluster. */
export async function installProbe(c: Cluster, cls: FilterClass): Promise<FilterInfo> {
  const info = await describeProbe(c, cls)
  for (const h of c.hosts.values()) await h.activate(info)
  return info
}

/** The policy rule naming the probe of `cls`. */
export function probeRule(cls: FilterClass): PolicyRule {
  return { filter: `${probeName(cls)}@${CLASS_CAPABILITY[cls]}` }
}

/** In-worker modules (each exports `run(handle, options)`). */
export const IN_WORKER = Object.freeze({
  take: new URL('./take.js', import.meta.url).href,
  completion: new URL('./completion.js', import.meta.url).href,
  guestBuffer: new URL('./guest-buffer.js', import.meta.url).href,
  driveTap: new URL('./drive-tap.js', import.meta.url).href,
})

/** Takes (and clears) what the probes on a disk recorded. */
export function takeProbeRecords(vm: Vm, disk: string): Promise<{ records: ProbeRecord[]; dropped: number }> {
  return vm.runInWorker(disk, IN_WORKER.take, null)
}
