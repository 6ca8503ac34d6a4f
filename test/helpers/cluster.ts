/** Shared test helpers: paths of compiled test filters, seeded data, small cluster builders. */
import { fileURLToPath } from 'node:url'
import { Cluster, type ClusterOptions, type Vm } from '../../harness/framework/index.js'
import { Rng } from '../../harness/framework/rng.js'

/** The compiled path of a test filter module in test/filters. */
export function testFilter(name: string): string {
  return fileURLToPath(new URL(`../filters/${name}.js`, import.meta.url))
}

/** The compiled path of a reference filter's entry. */
export function referenceFilter(name: string): string {
  return fileURLToPath(new URL(`../../reference-filters/${name}/filter.js`, import.meta.url))
}

export function testModuleUrl(name: string): string {
  return new URL(`../filters/${name}.js`, import.meta.url).href
}

/** Seeded bytes. */
export function bytes(seed: number, length: number): Uint8Array {
  return new Rng(seed).fill(new Uint8Array(length))
}

/** A one-host cluster that is shut down (and its temp dir removed) by the returned cleanup. */
export async function withCluster<T>(o: Partial<ClusterOptions>, fn: (c: Cluster) => Promise<T>): Promise<T> {
  const c = await Cluster.create(o)
  try {
    await c.addHost('esx1')
    return await fn(c)
  } finally {
    await c.shutdown({ remove: true })
  }
}

/** A powered-on VM on esx1 with one disk under the reference pass-through filter (installed here). */
export async function passthroughVm(c: Cluster, vm: string, disk: string, capacity: number): Promise<Vm> {
  const h = c.host('esx1')
  await c.installModule(referenceFilter('passthrough'))
  c.createPolicy({ name: 'p', rules: [{ filter: 'passthrough@CACHE' }] })
  const v = h.createVm(vm)
  await h.addDisk(vm, { id: disk, capacity, policy: 'p' })
  await v.powerOn()
  return v
}

/** Waits until `pred` holds (polling), or fails after `ms`. */
export async function until(pred: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const t0 = Date.now()
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`)
    await new Promise(r => setTimeout(r, 10))
  }
}
