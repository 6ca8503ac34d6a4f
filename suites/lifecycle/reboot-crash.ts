/**
 * lifecycle.reboot and lifecycle.crash: the filter's state after a clean host restart, and what a
 * host power cut mid-workload may lose (nothing a completed flush covered).
 */
import { fork } from 'node:child_process'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Cluster, isIofError, RecoverySite } from '../../harness/framework/index.js'
import type { CheckContext } from '../../harness/certify/context.js'
import { crashBatch, type CrashChildArgs, type CrashChildMessage, type CrashShape } from '../../harness/certify/crash-workload.js'
import { DISK_BYTES, MiB, scaled, within } from '../../harness/certify/datapath.js'
import { check, CheckFailure } from '../../harness/certify/check.js'
import { readThrough } from '../../harness/certify/replica.js'
import { firstDifference, Oracle, verifiedWorkload, verifyRange } from '../../harness/certify/workloads.js'
import { again, drive, type Driven, expectReplicas, policyFor, poweredGuest, SECTOR, sidecarState, verifyGuest } from './common.js'

export const rebootCheck = check({
  id: 'lifecycle.reboot',
  title: "After a clean host restart the daemon restarts, disks reopen and the filter's state is back",
  required: true,
  classes: 'all',
}, async ctx => {
  const c = await ctx.cluster()
  const id = ctx.info.id
  const guests = await poweredGuest(ctx, c, 'esx1', 'vm1', policyFor(ctx), 2)
  const count = scaled(ctx, 500, 2000)
  // no flush at the end: a clean shutdown loses nothing, flushed or not
  for (const g of guests) {
    await drive(g, count, { flushRatio: 0.01 })
    await drive(g, 64, { flushRatio: 0 })
  }
  const running = guests.map(g => sidecarState(c, g.disk, ctx.info.name))
  const t0 = performance.now()
  await c.host('esx1').shutdown()
  const down = c.host('esx1')
  const stop = down.daemonStops.find(s => s.filter === id)?.report ?? null
  const closed = guests.map(g => sidecarState(c, g.disk, ctx.info.name))
  guests.forEach((g, i) => {
    const r = running[i]
    if (r !== null && r !== undefined && r.size > 0 && (closed[i] === null || closed[i]!.size === 0)) {
      throw new CheckFailure(`the filter discarded ${g.label}'s sidecar when the host shut down (it held ${r.size} bytes while running): its state cannot come back`, { disk: g.disk, running: r, afterShutdown: closed[i] })
    }
  })
  const h = await c.restartHost('esx1')
  const restartMs = Math.round(performance.now() - t0)
  const booted = guests.map(g => sidecarState(c, g.disk, ctx.info.name))
  guests.forEach((g, i) => {
    if (closed[i]?.sha256 !== booted[i]?.sha256) throw new CheckFailure(`${g.label}'s sidecar changed between the shutdown and the boot`, { closed: closed[i], booted: booted[i] })
  })
  const daemonFault = h.faults.find(f => f.filter === id)
  if (daemonFault !== undefined) throw new CheckFailure(`after the reboot the host recorded a fault of ${id}: ${daemonFault.message}`, { fault: daemonFault })
  if (ctx.info.hasDaemon && !h.daemons.get(id)?.alive) throw new CheckFailure(`after the reboot the daemon of ${id} is not running`, { faults: h.faults })
  for (const name of h.wasPoweredOn) {
    try {
      await h.vm(name).powerOn()
    } catch (e) {
      if (isIofError(e)) throw new CheckFailure(`after the reboot ${name} could not power on: ${e.message}`, { code: e.code, ...e.details, faults: h.vm(name).faults.slice(-5) })
      throw e
    }
  }
  const back = guests.map(g => again(c, g))
  if (back.some(g => g.vm.state !== 'on')) throw new CheckFailure('after the reboot vm1 did not power on again', { wasPoweredOn: h.wasPoweredOn })
  for (const g of back) await verifyGuest(g, 'after a clean host restart: a read of everything the guest wrote before it')
  // the filter serves new I/O, and a replication filter ships it
  for (const g of back) await drive(g, scaled(ctx, 200, 500))
  for (const g of back) await verifyGuest(g, 'after the reboot and new writes')
  const replicas = await expectReplicas(ctx, c, back, 'after the reboot and new writes')
  return {
    status: 'passed',
    message: `after a clean restart (${restartMs} ms) ${ctx.info.hasDaemon ? 'the daemon restarted, ' : ''}both disks reopened with their sidecars as the filter left them, everything written before verifies${replicas.length ? ', and new writes reached the replica' : ''}`,
    evidence: {
      restartMs, daemonStop: stop ? { ms: stop.ms, timedOut: stop.timedOut } : null,
      sidecars: guests.map((g, i) => ({ disk: g.disk, running: running[i], afterShutdown: closed[i], atBoot: booted[i], afterReopen: sidecarState(c, g.disk, ctx.info.name) })),
      replicas,
    },
  }
})

// ---- lifecycle.crash ----

const CRASH_CHILD = fileURLToPath(new URL('../../harness/certify/crash-child.js', import.meta.url))

/** What the killed child reported. */
interface ChildRun {
  readonly acked: number
  readonly flushed: number
  readonly readyMs: number
  readonly killedAfterMs: number
}

/**
 * Runs the crash workload in a child process and kills it with SIGKILL as soon as batch `killAt`
 * has completed to the guest — its flush, or the next batch, is then in flight.
 */
async function runChild(ctx: CheckContext, args: CrashChildArgs, killAt: number): Promise<ChildRun> {
  const child = fork(CRASH_CHILD, [JSON.stringify(args)], { execArgv: [], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
  let stderr = ''
  child.stderr?.on('data', (b: Buffer) => {
    if (stderr.length < 8000) stderr += b.toString()
  })
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  ctx.defer(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  })
  let acked = -1
  let flushed = -1
  let readyMs = 0
  const t0 = performance.now()
  type End = { kind: 'killed' } | { kind: 'message'; m: CrashChildMessage } | { kind: 'exit' } | { kind: 'timeout' }
  const end = await new Promise<End>(resolve => {
    const timer = setTimeout(() => resolve({ kind: 'timeout' }), 90_000)
    child.on('message', (m: CrashChildMessage) => {
      // messages already on their way when the kill lands are still true: a flush they report completed
      if (m.t === 'ready') readyMs = m.ms
      else if (m.t === 'acked') {
        acked = Math.max(acked, m.batch)
        if (m.batch >= killAt && child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL')
          clearTimeout(timer)
          resolve({ kind: 'killed' })
        }
      } else if (m.t === 'flushed') flushed = Math.max(flushed, m.batch)
      else {
        clearTimeout(timer)
        resolve({ kind: 'message', m })
      }
    })
    void exited.then(() => {
      clearTimeout(timer)
      resolve({ kind: 'exit' })
    })
  })
  const killedAfterMs = Math.round(performance.now() - t0)
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  await exited
  if (end.kind === 'killed') return { acked, flushed, readyMs, killedAfterMs }
  if (end.kind === 'timeout') throw new CheckFailure(`the crash workload did not reach batch ${killAt} within 90 s (last batch completed: ${acked}): the filter hangs or is far too slow`, { acked, flushed })
  if (end.kind === 'message' && end.m.t === 'io-error') {
    const m = end.m
    throw new CheckFailure(`before the crash, a guest ${m.op} at offset ${m.offset} (batch ${m.batch}) failed with ${m.error}`, { io: { op: m.op, offset: m.offset, length: m.length }, error: m.error, batch: m.batch })
  }
  if (end.kind === 'message' && end.m.t === 'failed' && ['OpenFailed', 'WorkerFailed', 'DaemonFailed', 'PolicyParamsInvalid'].includes(end.m.code)) {
    throw new CheckFailure(`the host process could not run the VM: ${end.m.message}`, { code: end.m.code })
  }
  throw new Error(`the crash child ended unexpectedly (${end.kind === 'message' ? JSON.stringify(end.m) : end.kind}): ${stderr.split('\n').slice(0, 8).join(' | ')}`)
}

export const crashCheck = check({
  id: 'lifecycle.crash',
  title: 'Host killed mid-workload (power cut): every write completed before a completed flush is there after restart, the filter reopens, and a replica equals the disk once quiesced',
  required: true,
  classes: 'all',
}, async ctx => {
  const c = await ctx.cluster()
  const dir = c.options.dir
  const h = c.host('esx1')
  const policy = policyFor(ctx)
  c.createPolicy(policy)
  h.createVm('vm1')
  // file-backed: the disk and its journal must outlive the process that is killed
  const disk = (await h.addDisk('vm1', { id: 'vm1-disk0', capacity: DISK_BYTES, backing: 'file', policy: policy.name })).id
  // the child runs the cluster from its directory from here on: this process lets go of it first
  await c.shutdown()
  const siteDir = path.join(dir, 'sites', 'dr')
  const region = 8 * MiB
  const shape: CrashShape = { seed: ctx.rng.u32(), writes: 48, queueDepth: 8, maxSectors: 64, regionStart: 0, regionLength: region }
  const killAt = (ctx.quick ? 3 : 8) + ctx.rng.int(3)
  const run = await runChild(ctx, { dir, vm: 'vm1', disk, siteDir, batches: killAt + 50, shape }, killAt)
  // restart from the directory: the host boots and replays the power cut from the drive's journal
  const t0 = performance.now()
  const c2 = await Cluster.open(dir)
  ctx.defer(() => c2.shutdown({ remove: false }))
  c2.sites.set('dr', new RecoverySite('dr', { dir: siteDir }))
  const h2 = c2.host('esx1')
  const daemonFault = h2.faults.find(f => f.filter === ctx.info.id)
  if (daemonFault !== undefined) throw new CheckFailure(`after the crash the host recorded a fault of the filter: ${daemonFault.message}`, { fault: daemonFault })
  const vm = h2.vm('vm1')
  try {
    await vm.powerOn()
  } catch (e) {
    if (isIofError(e)) throw new CheckFailure(`after the power cut the filter did not reopen the disk: ${e.message}`, { code: e.code, ...e.details, faults: vm.faults.slice(-5) })
    throw e
  }
  const restartMs = Math.round(performance.now() - t0)
  // what must be there: every batch up to the last completed flush; any later write may be too
  const durable = new Uint8Array(region)
  const later = new Map<number, Uint8Array[]>()
  let writes = 0
  for (let b = 0; b <= run.acked + 3; b++) {
    for (const io of crashBatch(shape, b)) {
      writes++
      const data = io.data!
      if (b <= run.flushed) {
        durable.set(data, io.offset - shape.regionStart)
        continue
      }
      for (let s = 0; s < data.length; s += SECTOR) {
        const sector = (io.offset - shape.regionStart + s) / SECTOR
        let list = later.get(sector)
        if (list === undefined) later.set(sector, (list = []))
        list.push(data.subarray(s, s + SECTOR))
      }
    }
  }
  const got = await readThrough(vm, disk, shape.regionStart, region)
  let laterSectors = 0
  for (let at = 0; at < region; at += SECTOR) {
    const found = got.subarray(at, at + SECTOR)
    const want = durable.subarray(at, at + SECTOR)
    if (Buffer.from(found).equals(Buffer.from(want))) continue
    const candidates = later.get(at / SECTOR) ?? []
    if (candidates.some(w => Buffer.from(found).equals(Buffer.from(w)))) {
      laterSectors++
      continue
    }
    const d = firstDifference(want, found)!
    throw new CheckFailure(`after the power cut and a restart, the sector at offset ${shape.regionStart + at} holds neither what the flush completed after batch ${run.flushed} made durable nor a later write`, {
      offset: shape.regionStart + at + d.at, expected: d.expected, found: d.found, lastFlushedBatch: run.flushed, lastAckedBatch: run.acked, laterWritesToSector: candidates.length,
    })
  }
  // the reopened filter serves new I/O, on a stretch of the disk the crash workload never touched
  const fresh: Driven = { vm, disk, oracle: new Oracle(DISK_BYTES), rng: ctx.rng.fork(9), label: 'vm1/vm1-disk0' }
  fresh.oracle.bytes.set(got, shape.regionStart)
  const ios = await within('after the restart', {}, () => verifiedWorkload(vm, disk, fresh.oracle, fresh.rng, { count: scaled(ctx, 200, 1000), queueDepth: 8, maxSectors: 128, regionStart: 2 * region, regionLength: region }))
  await within('after the restart', {}, () => verifyRange(vm, disk, fresh.oracle, 0, 3 * region, 'a read after the new writes'))
  const replicas = await expectReplicas(ctx, c2, [fresh], 'after the power cut, the restart and new writes')
  return {
    status: 'passed',
    message: `the host process was killed (SIGKILL) after batch ${run.acked} of the workload completed (last completed flush after batch ${run.flushed}); after a restart from its directory every write completed before that flush was there, the filter reopened and served ${ios.ios} new I/Os${replicas.length ? ', and the replica equals the disk' : ''}`,
    evidence: {
      killedAtBatch: run.acked, lastFlushedBatch: run.flushed, writesPerBatch: shape.writes, writesConsidered: writes, sectorsHoldingLaterWrites: laterSectors,
      childReadyMs: run.readyMs, childRanMs: run.killedAfterMs, restartMs, replicas,
    },
  }
})
