/**
 * The process lifecycle.crash kills. It opens the cluster from its directory (a host boot), keeps
 * the recovery site's replicas in files so they outlive it, powers the VM on and runs the seeded
 * crash workload — batches of writes, each followed by a flush — telling the parent as each batch
 * and each flush completes, until the parent kills it with `kill -9`.
 *
 * Run as `node crash-child.js '<CrashChildArgs as JSON>'` with an IPC channel (child_process.fork).
 */
import { Cluster, isIofError, RecoverySite } from '../framework/index.js'
import { crashBatch, type CrashChildArgs, type CrashChildMessage } from './crash-workload.js'

function send(m: CrashChildMessage): Promise<void> {
  return new Promise(resolve => {
    if (process.send === undefined) return resolve()
    process.send(m, undefined, {}, () => resolve())
  })
}

// a parent that went away cannot kill us any more: end rather than write on forever
process.on('disconnect', () => process.exit(1))

async function main(): Promise<void> {
  const o = JSON.parse(process.argv[2] ?? '{}') as CrashChildArgs
  const t0 = performance.now()
  const c = await Cluster.open(o.dir)
  // before any disk opens: the daemons look the site up by name at each call
  c.sites.set('dr', new RecoverySite('dr', { dir: o.siteDir }))
  const vm = c.vm(o.vm)
  await vm.powerOn()
  await send({ t: 'ready', ms: Math.round(performance.now() - t0) })
  for (let b = 0; b < o.batches; b++) {
    const ios = crashBatch(o.shape, b)
    const results = await vm.runIos(o.disk, ios, o.shape.queueDepth)
    const bad = results.findIndex(r => !r.ok)
    if (bad >= 0) {
      const io = ios[bad]!
      const r = results[bad] as { error: string }
      await send({ t: 'io-error', batch: b, op: io.op, offset: io.offset, length: io.data!.length, error: r.error })
      return
    }
    await send({ t: 'acked', batch: b })
    const f = await vm.submit(o.disk, { op: 'flush', offset: 0, length: 0 })
    if (!f.ok) {
      await send({ t: 'io-error', batch: b, op: 'flush', offset: 0, length: 0, error: f.error })
      return
    }
    await send({ t: 'flushed', batch: b })
  }
  await send({ t: 'done' })
}

main().then(
  // wait to be killed: ending cleanly would power the VM off, which no crash does
  () => setInterval(() => {}, 60_000),
  async (e: unknown) => {
    await send({ t: 'failed', code: isIofError(e) ? e.code : 'Error', message: e instanceof Error ? e.message : String(e) })
    process.exit(1)
  },
)
