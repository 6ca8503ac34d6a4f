/**
 * integrity.*: the bytes. What the guest reads back equals what it wrote (on two VMs writing the
 * same offsets with different data), the guest's buffers are never touched by a filter that does
 * not own them, and a filter of a non-transforming class leaves the disk exactly as the guest's
 * I/O alone would.
 */
import { TRANSFORMING, type GuestIo } from '../harness/framework/index.js'
import { check, type CheckDef, CheckFailure } from '../harness/certify/check.js'
import { describeIo, expectOk, firstDifference, Oracle, verifiedWorkload, verifyRange } from '../harness/certify/workloads.js'
import { IN_WORKER } from '../harness/certify/probes/index.js'
import type { GuestBufferResult } from '../harness/certify/probes/guest-buffer.js'
import { compareImage, DISK_BYTES, guestWithDisk, MiB, scaled, sharedLayoutWorkload, subjectPolicy, type WorkloadGuest } from '../harness/certify/datapath.js'

// ---- integrity.roundtrip ----

/** Write, read, unmap and re-read the disk's very last sector on its own. */
async function lastSector(g: WorkloadGuest): Promise<void> {
  const at = g.oracle.capacity - 512
  const steps: GuestIo[] = [
    { op: 'write', offset: at, data: g.data.fill(new Uint8Array(512)) },
    { op: 'read', offset: at, length: 512 },
    { op: 'unmap', offset: at, length: 512 },
    { op: 'read', offset: at, length: 512 },
    { op: 'write', offset: at - 3584, data: g.data.fill(new Uint8Array(4096)) },
    { op: 'read', offset: at - 3584, length: 4096 },
  ]
  for (const io of steps) {
    const r = await g.vm.submit(g.disk, io)
    expectOk(r, io, `${g.label}: the disk's last sector`)
    if (io.op !== 'read') {
      g.oracle.apply(io)
      continue
    }
    const d = firstDifference(g.oracle.slice(io.offset, io.length!), (r as { data: Uint8Array }).data)
    if (d !== null) throw new CheckFailure(`${g.label}: a read of the disk's last sector returned wrong bytes at offset ${io.offset + d.at}`, { vm: g.vm.name, io: describeIo(io), offset: io.offset + d.at, expected: d.expected, found: d.found })
  }
}

const roundtripCheck = check({
  id: 'integrity.roundtrip',
  title: 'Seeded random workloads (512 B to 1 MiB, the last sector, unmaps) verify byte for byte',
  required: true,
  classes: 'all',
}, async ctx => {
  const c = await ctx.cluster()
  const policy = subjectPolicy(ctx)
  const layout = ctx.rng.fork(1)
  const guests: WorkloadGuest[] = []
  for (const [i, name] of ['vm1', 'vm2'].entries()) {
    const g = await guestWithDisk(c, { vm: name, policy })
    guests.push({ ...g, oracle: new Oracle(DISK_BYTES), data: ctx.rng.fork(10 + i), label: name })
  }
  const n = scaled(ctx, 1000, 4000)
  const t0 = performance.now()
  await Promise.all(guests.map(lastSector))
  // both VMs issue the same I/O at the same offsets, each with its own data
  const r = await sharedLayoutWorkload(guests, layout, { count: n, queueDepth: 8, minSectors: 1, maxSectors: 2048, lastSector: true, unmapRatio: 0.05, flushRatio: 0.02, readRatio: 0.4 })
  await Promise.all(guests.map(g => verifyRange(g.vm, g.disk, g.oracle, 0, DISK_BYTES, `${g.label}: a read of the whole disk after the workload`)))
  return { status: 'passed', message: `two VMs, ${n} I/Os each at the same offsets with different data (512 B to 1 MiB, the last sector, unmaps), verified byte for byte`, evidence: { iosPerVm: r.ios, racyReads: r.racyReads, ms: Math.round(performance.now() - t0) } }
})

// ---- integrity.guest-buffer ----

const guestBufferCheck = check({
  id: 'integrity.guest-buffer',
  title: "The filter never modifies a write's payload or a read buffer it does not complete",
  required: true,
  classes: 'all',
}, async ctx => {
  const c = await ctx.cluster()
  const g = await guestWithDisk(c, { vm: 'vm1', policy: subjectPolicy(ctx) })
  const count = scaled(ctx, 1000, 5000)
  const r = await g.vm.runInWorker<GuestBufferResult>(g.disk, IN_WORKER.guestBuffer, {
    count, queueDepth: 8, seed: ctx.rng.u32(), maxSectors: 128, hotSetBytes: MiB, deadlineMs: 4 * ctx.thresholds.ioTimeoutMs + 60_000,
  })
  const counts = { ios: r.ios, writesChecked: r.writesChecked, readsChecked: r.readsChecked, readsCompletedByFilter: r.readsCompletedByFilter }
  const v = r.violations[0]
  if (v !== undefined) {
    const what = v.kind === 'read-buffer-changed'
      ? `the filter changed the guest's buffer of a read it passed down: the guest got bytes other than the disk returned`
      : v.kind === 'write-payload-changed-before-disk'
        ? `the filter changed a write's payload before passing it down (the guest's buffer is read only)`
        : `the guest's write payload was changed by the time the write completed (the guest's buffer is read only)`
    throw new CheckFailure(`${what}: ${v.op} at offset ${v.offset}, length ${v.length}, first difference at offset ${v.offset + v.at}`, {
      io: { op: v.op, offset: v.offset, length: v.length, index: v.index }, offset: v.offset + v.at, expected: v.expected, found: v.found, violations: r.violationCount, more: r.violations.slice(1), ...counts,
    })
  }
  const e = r.errors[0]
  if (e !== undefined) throw new CheckFailure(`guest ${e.op} at offset ${e.offset} failed with ${e.error}`, { io: e, more: r.errors.slice(1), ...counts })
  if (r.writesChecked + r.readsChecked + r.readsCompletedByFilter < r.ios) throw new CheckFailure(`only ${r.writesChecked + r.readsChecked + r.readsCompletedByFilter} of ${r.ios} guest I/Os completed`, counts)
  return { status: 'passed', message: `${r.writesChecked} write payloads unchanged; ${r.readsChecked} reads passed down reached the guest as the disk returned them (${r.readsCompletedByFilter} completed by the filter, not judged)`, evidence: counts }
})

// ---- integrity.class-contract ----

const classContractCheck = check({
  id: 'integrity.class-contract',
  title: 'A non-transforming class leaves the disk byte-identical to the no-filter oracle and never replaces a payload',
  required: true,
  classes: 'all',
}, async ctx => {
  if (TRANSFORMING.has(ctx.cls)) return { status: 'skipped', message: `${ctx.cls} filters may transform payloads; the contract applies to non-transforming classes` }
  const c = await ctx.cluster()
  const g = await guestWithDisk(c, { vm: 'vm1', policy: subjectPolicy(ctx) })
  const oracle = new Oracle(DISK_BYTES)
  const n = scaled(ctx, 1000, 4000)
  const violations = () => g.vm.faults.filter(f => f.kind === 'violation')
  const replaced = (): CheckFailure | null => {
    const v = violations()[0]
    return v === undefined ? null : new CheckFailure(`the filter replaced a payload, which only encryption and compression filters may do: ${v.message}`, { io: v.io, filter: v.filter, violations: violations().length })
  }
  try {
    // mostly writes and unmaps: the check is about what lands on the disk
    await verifiedWorkload(g.vm, g.disk, oracle, ctx.rng, { count: n, queueDepth: 8, maxSectors: 256, readRatio: 0.1, unmapRatio: 0.08, flushRatio: 0.03 })
  } catch (e) {
    throw replaced() ?? e
  }
  const f = replaced()
  if (f !== null) throw f
  compareImage(await g.vm.snapshot(g.disk), oracle, `the quiesced disk after ${n} guest I/Os`)
  return { status: 'passed', message: `after ${n} guest I/Os the quiesced disk equals the no-filter oracle over all ${DISK_BYTES / MiB} MiB; no payload was replaced`, evidence: { ios: n } }
})

/** The suite's checks, in catalogue order. */
export const checks: readonly CheckDef[] = [roundtripCheck, guestBufferCheck, classContractCheck]
