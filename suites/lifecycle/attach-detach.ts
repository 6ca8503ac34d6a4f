/**
 * lifecycle.attach-detach: policy apply/remove cycles on a powered-on VM, memory and live handles
 * bounded.
 */
import type { GuestIo } from '../../harness/framework/index.js'
import { memoryGrowth, MiB } from '../../harness/certify/datapath.js'
import { check, CheckFailure } from '../../harness/certify/check.js'
import { expectOk, firstDifference } from '../../harness/certify/workloads.js'
import { policyFor } from './common.js'

/** The spec's count, in --quick too: a leak per cycle must have cycles to show. */
const CYCLES = 200
const WARM_UP = 20
const READ_EVERY = 2
/** Growth allowed over the measured cycles: a few MiB of heap noise, far below any per-cycle leak. */
const GROWTH_BOUND = 8 * MiB

/** One reading of the VM worker: memory after GC and its live handles. */
interface Reading {
  readonly cycle: number
  readonly heapUsed: number
  readonly external: number
  readonly arrayBuffers: number
  readonly handles: readonly string[]
}

/** Live handles by type. */
function byType(handles: readonly string[]): Record<string, number> {
  return handles.reduce<Record<string, number>>((m, x) => ({ ...m, [x]: (m[x] ?? 0) + 1 }), {})
}

/**
 * A window of readings: the lowest memory figures, and per type of handle the fewest and the most
 * seen. Buffers handed to another thread are released lazily (measured: the reference replication
 * filter's VM worker holds up to ~60 MB of chunks it posted to its daemon, let go of every ~50
 * cycles), and the framework's own timers come and go; a leak raises the floor, which the lowest
 * reading of a long enough window shows.
 */
function windowOf(rs: readonly Reading[]): { heapUsed: number; external: number; arrayBuffers: number; fewestHandles: Record<string, number>; mostHandles: Record<string, number> } {
  const types = [...new Set(rs.flatMap(r => r.handles))]
  const counts = rs.map(r => byType(r.handles))
  return {
    heapUsed: Math.min(...rs.map(r => r.heapUsed)),
    external: Math.min(...rs.map(r => r.external)),
    arrayBuffers: Math.min(...rs.map(r => r.arrayBuffers)),
    fewestHandles: Object.fromEntries(types.map(t => [t, Math.min(...counts.map(c => c[t] ?? 0))])),
    mostHandles: Object.fromEntries(types.map(t => [t, Math.max(...counts.map(c => c[t] ?? 0))])),
  }
}

export const attachDetachCheck = check({
  id: 'lifecycle.attach-detach',
  title: '200 policy apply/remove cycles on a VM that stays powered on: memory (heap + external + array buffers, after GC) and live handles stay bounded',
  required: true,
  classes: 'all',
}, async ctx => {
  // no seeded completion delays: this check measures memory, and 200 cycles must stay cheap
  const c = await ctx.cluster({ reorder: false })
  const h = c.host('esx1')
  const policy = policyFor(ctx)
  c.createPolicy(policy)
  h.createVm('vm1')
  // each apply is a first attach for the filter: a replication filter copies the disk to its site
  // every time, so a small disk keeps the cycles cheap; memory, not data, is measured here
  const disk = (await h.addDisk('vm1', { id: 'vm1-disk0', capacity: 8 * MiB })).id
  const vm = h.vm('vm1')
  await vm.powerOn()
  const model = new Uint8Array(8 * MiB)
  const rng = ctx.rng.fork(1)
  const cycle = async (i: number) => {
    await h.setPolicy('vm1', disk, policy.name)
    // one write and its read-back through the open instance, so every cycle carries I/O
    const offset = (i % 256) * 4096
    const data = rng.fill(new Uint8Array(4096))
    const w: GuestIo = { op: 'write', offset, data }
    expectOk(await vm.submit(disk, w), w, `cycle ${i + 1}: a write with the policy applied`)
    model.set(data, offset)
    const rd: GuestIo = { op: 'read', offset, length: 4096 }
    const r = await vm.submit(disk, rd)
    expectOk(r, rd, `cycle ${i + 1}: a read with the policy applied`)
    const d = firstDifference(data, (r as { data: Uint8Array }).data)
    if (d !== null) throw new CheckFailure(`cycle ${i + 1}: a read returned other bytes than the write before it at offset ${offset + d.at}`, { cycle: i + 1, offset: offset + d.at, expected: d.expected, found: d.found })
    await h.setPolicy('vm1', disk, null)
  }
  const read = async (n: number): Promise<Reading> => {
    const m = await vm.memory(true)
    return { cycle: n, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, handles: m.resources }
  }
  const t0 = performance.now()
  for (let i = 0; i < WARM_UP; i++) await cycle(i)
  const readings: Reading[] = [await read(WARM_UP)]
  for (let i = WARM_UP; i < CYCLES; i++) {
    await cycle(i)
    if ((i + 1) % READ_EVERY === 0) readings.push(await read(i + 1))
  }
  const totalMs = Math.round(performance.now() - t0)
  if (vm.state !== 'on') throw new CheckFailure(`the VM did not stay powered on through the cycles: ${vm.lastPowerOff?.detail ?? vm.state}`, { lastPowerOff: vm.lastPowerOff })
  const measured = CYCLES - WARM_UP
  const span = measured / 3
  const first = windowOf(readings.filter(r => r.cycle <= WARM_UP + span))
  const last = windowOf(readings.filter(r => r.cycle >= CYCLES - span))
  const growth = memoryGrowth(first, last)
  const cyclesApart = CYCLES - span - WARM_UP
  const mib = (n: number) => Math.round((n / MiB) * 100) / 100
  const evidence = {
    cycles: CYCLES, warmUp: WARM_UP, boundBytes: GROWTH_BOUND,
    bound: `read every ${READ_EVERY} cycles: the lowest memory reading (heap + off-heap, after GC) of the last ${span} cycles may exceed the lowest of the first ${span} after a warm-up of ${WARM_UP} by at most ${GROWTH_BOUND / MiB} MiB, and no type of live handle may be more numerous throughout the last ${span} cycles than it ever was in the first ${span}`,
    firstWindow: first, lastWindow: last, growthBytes: growth, perCycleBytes: Math.round(growth / cyclesApart), totalMs,
    readings: readings.map(r => ({ cycle: r.cycle, heapMiB: mib(r.heapUsed), externalMiB: mib(r.external), arrayBuffersMiB: mib(r.arrayBuffers), handles: r.handles.length })),
  }
  if (growth > GROWTH_BOUND) {
    throw new CheckFailure(`the VM worker's memory (heap + off-heap, after GC) grew by ${mib(growth)} MiB between the first and the last ${span} of ${measured} apply/remove cycles (~${Math.round(growth / cyclesApart / 1024)} KiB per cycle), above the ${GROWTH_BOUND / MiB} MiB bound: something is kept per attach or open`, evidence)
  }
  const grown = Object.entries(last.fewestHandles).filter(([t, n]) => n > (first.mostHandles[t] ?? 0)).map(([t, n]) => `${t}: at most ${first.mostHandles[t] ?? 0} early on, at least ${n} at the end`)
  if (grown.length > 0) {
    throw new CheckFailure(`the VM worker's live handles grew over ${measured} apply/remove cycles (${grown.join('; ')}): a timer or handle is left per attach or open`, evidence)
  }
  const data: GuestIo = { op: 'read', offset: 0, length: 8 * MiB }
  const all = await vm.submit(disk, data)
  expectOk(all, data, 'a read of the disk after the cycles')
  const d = firstDifference(model, (all as { data: Uint8Array }).data)
  if (d !== null) throw new CheckFailure(`after the cycles the disk differs from what was written at offset ${d.at}`, { offset: d.at, expected: d.expected, found: d.found })
  return {
    status: 'passed',
    message: `${CYCLES} apply/remove cycles on a powered-on VM: memory grew ${mib(growth)} MiB (bound ${GROWTH_BOUND / MiB} MiB) and no live handle type grew (fewest at the end: ${JSON.stringify(last.fewestHandles)})`,
    evidence,
  }
})
