/**
 * events.*: disk events under I/O. A snapshot taken while dependent writes are in flight must be
 * a crash-consistent image; while a disk is stunned no I/O of the filter's may reach it; and a
 * VM that migrates to another host reopens there with its sidecar and its data.
 */
import * as fs from 'node:fs'
import { nowMs, Rng, type Cluster, type DiskSnapshot, type GuestIo, type IoResult, type Vm } from '../harness/framework/index.js'
import type { CheckContext } from '../harness/certify/context.js'
import { ms, pacedLoad } from '../harness/certify/paced.js'
import { check, type CheckDef, CheckFailure } from '../harness/certify/check.js'
import { describeIo, expectOk, firstDifference, Oracle, verifiedWorkload, verifyRange } from '../harness/certify/workloads.js'

const MiB = 1 << 20
const BLOCK = 4096
const CAPACITY = 64 * MiB

async function oneVm(ctx: CheckContext, hosts = 1): Promise<{ c: Cluster; vm: Vm; disk: string }> {
  const c = await ctx.cluster({ hosts })
  c.createPolicy({ name: 'subject', rules: [ctx.rule({ rpoSeconds: 2 })] })
  const h = c.host('esx1')
  const vm = h.createVm('vm1')
  await h.addDisk('vm1', { id: 'vm1-disk0', capacity: CAPACITY, policy: 'subject' })
  await vm.powerOn()
  return { c, vm, disk: 'vm1-disk0' }
}

const sleep = (msec: number) => new Promise<void>(res => setTimeout(res, msec))

// ---------------------------------------------------------------------------------------------
// events.snapshot

/** Each write fills one 4 KiB slot with a header (magic, generation, slot) and seeded bytes. */
const MAGIC = 0x57454e47
const SLOTS = 512

/** A slot's contents for a generation: reproducible, so any image can be decoded and checked. */
function generationBlock(seed: number, gen: number, slot: number): Uint8Array {
  const b = new Rng((seed ^ Math.imul(gen, 0x9e3779b1)) >>> 0).fill(new Uint8Array(BLOCK))
  const v = new DataView(b.buffer)
  v.setUint32(0, MAGIC)
  v.setUint32(4, gen)
  v.setUint32(8, slot)
  return b
}

interface GenWrite {
  readonly gen: number
  readonly slot: number
  readonly issuedAt: number
  completedAt: number
  ok: boolean
}

/**
 * Checks one image against the writes: for every slot, the generation it holds was issued before
 * the snapshot ended and is no older than the last write to that slot completed before it began.
 */
function checkImage(image: DiskSnapshot, seed: number, bySlot: readonly GenWrite[][], gens: ReadonlyMap<number, GenWrite>, began: number, ended: number, t0: number, n: number): number {
  let held = 0
  const zero = new Uint8Array(BLOCK)
  for (let slot = 0; slot < SLOTS; slot++) {
    const got = image.read(slot * BLOCK, BLOCK)
    const writes = bySlot[slot]!
    let gen = 0
    if (!same(got, zero)) {
      const v = new DataView(got.buffer, got.byteOffset, BLOCK)
      gen = v.getUint32(4)
      const w = gens.get(gen)
      const want = w !== undefined && v.getUint32(0) === MAGIC && v.getUint32(8) === slot ? generationBlock(seed, gen, slot) : null
      if (want === null || !same(want, got)) {
        const last = writes.filter(x => x.completedAt < began).at(-1)
        const d = firstDifference(last ? generationBlock(seed, last.gen, slot) : zero, got)
        throw new CheckFailure(`snapshot ${n}: slot ${slot} (offset ${slot * BLOCK}) of the image holds bytes no single write put there (torn or mixed data)`, {
          snapshot: n, slot, offset: slot * BLOCK + (d?.at ?? 0), expected: d?.expected, found: d?.found,
        })
      }
      held++
    }
    const required = writes.filter(x => x.ok && x.completedAt < began).at(-1)
    if (required !== undefined && gen < required.gen) {
      const holds = gens.get(gen)
      throw new CheckFailure(`snapshot ${n} is not crash-consistent: slot ${slot} (offset ${slot * BLOCK}) holds ${gen === 0 ? 'nothing' : `generation ${gen}`}, but generation ${required.gen}, written there and completed to the guest at +${ms(required.completedAt - t0)} ms — before the snapshot began at +${ms(began - t0)} ms — is missing: the filter acknowledged a write it had not made durable below it`, {
        snapshot: n,
        slot,
        offset: slot * BLOCK,
        found: holds ? { gen, issuedAtMs: ms(holds.issuedAt - t0), completedAtMs: ms(holds.completedAt - t0) } : { gen: 0 },
        required: { gen: required.gen, issuedAtMs: ms(required.issuedAt - t0), completedAtMs: ms(required.completedAt - t0) },
        snapshotBeganAtMs: ms(began - t0),
        snapshotEndedAtMs: ms(ended - t0),
      })
    }
    const w = gens.get(gen)
    if (w !== undefined && w.issuedAt > ended) {
      throw new CheckFailure(`snapshot ${n} holds generation ${gen} in slot ${slot}, a write issued at +${ms(w.issuedAt - t0)} ms — after the snapshot ended at +${ms(ended - t0)} ms`, {
        snapshot: n, slot, offset: slot * BLOCK, gen, issuedAtMs: ms(w.issuedAt - t0), snapshotEndedAtMs: ms(ended - t0),
      })
    }
  }
  return held
}

function same(x: Uint8Array, y: Uint8Array): boolean {
  return Buffer.from(x.buffer, x.byteOffset, x.length).equals(Buffer.from(y.buffer, y.byteOffset, y.length))
}

const snapshotCheck = check(
  { id: 'events.snapshot', title: 'A snapshot under I/O yields a crash-consistent image', required: true, classes: 'all' },
  async ctx => {
    const { vm, disk } = await oneVm(ctx)
    const seed = ctx.seed
    const count = ctx.quick ? 1200 : 5000
    const snapshots = ctx.quick ? 3 : 8
    const rng = ctx.rng.fork(1)
    const bySlot: GenWrite[][] = Array.from({ length: SLOTS }, () => [])
    const gens = new Map<number, GenWrite>()
    const busy = new Uint8Array(SLOTS)
    const pending = new Map<GuestIo, GenWrite>()
    const taken: Promise<{ image: DiskSnapshot; began: number; ended: number; n: number }>[] = []
    let gen = 0
    let completed = 0
    const t0 = nowMs()
    // dependent writes at queue depth 8: each write's generation is above that of every write
    // completed before it was issued; snapshots are taken while they run
    const run = await pacedLoad(
      vm,
      disk,
      { rate: Infinity, queueDepth: 8, count },
      () => {
        for (let i = 0; i < 8; i++) {
          const slot = rng.int(SLOTS)
          if (busy[slot] === 1) continue
          busy[slot] = 1
          const w: GenWrite = { gen: ++gen, slot, issuedAt: nowMs(), completedAt: NaN, ok: false }
          bySlot[slot]!.push(w)
          gens.set(w.gen, w)
          const io: GuestIo = { op: 'write', offset: slot * BLOCK, data: generationBlock(seed, w.gen, slot) }
          pending.set(io, w)
          return io
        }
        return 'wait'
      },
      t => {
        const w = pending.get(t.io)!
        pending.delete(t.io)
        w.completedAt = t.completedAt
        w.ok = t.result.ok
        busy[w.slot] = 0
        completed++
        if (taken.length < snapshots && completed >= Math.round(((taken.length + 1) * count) / (snapshots + 1))) {
          const n = taken.length + 1
          const began = nowMs()
          const shot = vm.snapshot(disk).then(image => ({ image, began, ended: nowMs(), n }))
          // judged after the load; handled now so a failure is not an unhandled rejection meanwhile
          shot.catch(() => {})
          taken.push(shot)
        }
      },
    )
    const bad = run.ios.find(t => !t.result.ok)
    if (bad !== undefined) expectOk(bad.result, bad.io, 'a write of the generation workload failed')
    const images = await Promise.all(taken)
    const held: number[] = []
    for (const s of images) held.push(checkImage(s.image, seed, bySlot, gens, s.began, s.ended, t0, s.n))
    // the disk itself ends with the last generation of every slot
    for (let slot = 0; slot < SLOTS; slot++) {
      const last = bySlot[slot]!.at(-1)
      const r = await vm.submit(disk, { op: 'read', offset: slot * BLOCK, length: BLOCK })
      expectOk(r, { op: 'read', offset: slot * BLOCK, length: BLOCK }, 'a read after the workload')
      const want = last ? generationBlock(seed, last.gen, slot) : new Uint8Array(BLOCK)
      const d = firstDifference(want, (r as { data: Uint8Array }).data)
      if (d !== null) throw new CheckFailure(`after the snapshots, slot ${slot} of the disk does not hold its last write (generation ${last?.gen ?? 0})`, { slot, offset: slot * BLOCK + d.at, expected: d.expected, found: d.found })
    }
    return {
      status: 'passed',
      message: `${images.length} snapshots taken under ${count} dependent writes at QD8 were each crash-consistent (slots holding data: ${held.join(', ')} of ${SLOTS})`,
      evidence: { writes: count, snapshots: images.map(s => ({ n: s.n, beganAtMs: ms(s.began - t0), tookMs: ms(s.ended - s.began) })) },
    }
  },
)

// ---------------------------------------------------------------------------------------------
// events.stun

const stunCheck = check(
  { id: 'events.stun', title: 'No I/O reaches the disk from the filter while the disk is stunned', required: true, classes: 'all' },
  async ctx => {
    const { vm, disk } = await oneVm(ctx)
    const region = 4 * MiB
    const oracle = new Oracle(CAPACITY)
    const rng = ctx.rng.fork(1)
    const cycles = ctx.quick ? 2 : 4
    const holdMs = ctx.quick ? 300 : 1000
    const work = { queueDepth: 8, regionLength: region, maxSectors: 64 }
    await verifiedWorkload(vm, disk, oracle, rng, { ...work, count: ctx.quick ? 300 : 1000 })
    const t0 = nowMs()
    let heldIos = 0
    for (let cycle = 1; cycle <= cycles; cycle++) {
      await vm.stun(disk, true)
      const stunnedAt = nowMs()
      // guest I/O issued while stunned: writes to distinct blocks, reads of blocks they do not touch
      const blocks = rng.shuffle(Array.from({ length: region / BLOCK }, (_, i) => i)).slice(0, 32)
      const ios: GuestIo[] = [
        ...blocks.slice(0, 16).map(b => ({ op: 'write' as const, offset: b * BLOCK, data: rng.fill(new Uint8Array(BLOCK)) })),
        ...blocks.slice(16).map(b => ({ op: 'read' as const, offset: b * BLOCK, length: BLOCK })),
      ]
      const before = ios.map(io => (io.op === 'read' ? oracle.slice(io.offset, BLOCK).slice() : null))
      const finished: (number | null)[] = ios.map(() => null)
      const results = ios.map((io, i) => vm.submit(disk, io).then(r => {
        finished[i] = nowMs()
        return r
      }))
      await sleep(holdMs)
      const early = finished.findIndex(f => f !== null)
      const unstunAt = nowMs()
      await vm.stun(disk, false)
      const out: IoResult[] = await Promise.all(results)
      heldIos += ios.length
      const stats = await vm.driveStats(disk)
      if (stats.stunnedFilterIo.length > 0) {
        const list = stats.stunnedFilterIo.slice(0, 10).map(x => ({ op: x.op, offset: x.offset, length: x.length, layer: x.origin - 1, atMsAfterStun: Math.round(x.at - stunnedAt) }))
        throw new CheckFailure(`while the disk was stunned (cycle ${cycle}, ${holdMs} ms), ${stats.stunnedFilterIo.length} I/O${stats.stunnedFilterIo.length === 1 ? '' : 's'} of the filter's own reached the drive — first a ${list[0]!.op} at offset ${list[0]!.offset}: a stunned disk must see no I/O (stop timers and background work on 'stun', resume on 'unstun')`, {
          cycle, stunMs: holdMs, filterIo: list, total: stats.stunnedFilterIo.length,
        })
      }
      if (early >= 0) {
        throw new CheckFailure(`a guest ${ios[early]!.op} issued while the disk was stunned completed ${ms(finished[early]! - stunnedAt)} ms into the stun, before unstun`, { cycle, io: describeIo(ios[early]!), completedAtMsAfterStun: ms(finished[early]! - stunnedAt) })
      }
      out.forEach((r, i) => {
        expectOk(r, ios[i]!, `a guest I/O held while the disk was stunned (cycle ${cycle})`)
        if (finished[i]! < unstunAt) throw new CheckFailure(`a guest ${ios[i]!.op} issued while stunned completed before unstun`, { cycle, io: describeIo(ios[i]!) })
      })
      for (const io of ios) oracle.apply(io)
      ios.forEach((io, i) => {
        if (io.op !== 'read') return
        const d = firstDifference(before[i]!, (out[i] as { data: Uint8Array }).data)
        if (d !== null) throw new CheckFailure(`a read held while the disk was stunned returned wrong bytes at offset ${io.offset + d.at}`, { cycle, io: describeIo(io), offset: io.offset + d.at, expected: d.expected, found: d.found })
      })
      await verifiedWorkload(vm, disk, oracle, rng, { ...work, count: ctx.quick ? 200 : 600 })
    }
    await verifyRange(vm, disk, oracle, 0, region, 'a read after the stuns')
    return {
      status: 'passed',
      message: `${cycles} stuns of ${holdMs} ms under I/O: no filter I/O reached the drive, the ${heldIos} guest I/Os issued meanwhile waited and completed after unstun, data verifies`,
      evidence: { cycles, stunMs: holdMs, heldIos, tookMs: ms(nowMs() - t0) },
    }
  },
)

// ---------------------------------------------------------------------------------------------
// events.migration

function readSidecar(c: Cluster, disk: string, filter: string): Uint8Array | null {
  const file = c.sidecarPath(disk, filter)
  return fs.existsSync(file) ? new Uint8Array(fs.readFileSync(file)) : null
}

function describeSidecar(b: Uint8Array | null): Record<string, unknown> {
  return b === null ? { exists: false } : { exists: true, bytes: b.length, head: Buffer.from(b.subarray(0, 32)).toString('hex') }
}

/** Compares sidecars before and after a move; null when they agree. */
function sidecarChange(before: Uint8Array | null, after: Uint8Array | null, strict: boolean): string | null {
  if (before === null || before.length === 0) return null
  if (after === null) return 'it was deleted'
  if (after.length === 0) return 'it was emptied'
  if (!strict) return null
  if (after.length !== before.length) return `its size changed from ${before.length} to ${after.length} bytes`
  const d = firstDifference(before, after)
  return d === null ? null : `its bytes changed at offset ${d.at} (${d.expected} → ${d.found})`
}

const migrationCheck = check(
  { id: 'events.migration', title: 'The disk moves to another host: closes with migrate, reopens there with its sidecar, data verifies', required: true, classes: 'all' },
  async ctx => {
    const { c, vm, disk } = await oneVm(ctx, 2)
    const name = ctx.info.name
    const region = 8 * MiB
    const oracle = new Oracle(CAPACITY)
    const rng = ctx.rng.fork(1)
    const n = ctx.quick ? 1000 : 3000
    const work = { queueDepth: 8, regionLength: region, maxSectors: 256 }
    const where = () => c.hostOf(vm.name).name
    await verifiedWorkload(vm, disk, oracle, rng, { ...work, count: n })
    await vm.flush(disk)
    // the sidecar probe: a filter whose sidecar is a fixed point of a same-host power cycle (no
    // I/O between) must keep it byte for byte across a move; otherwise only its presence is checked
    await vm.powerOff()
    await vm.powerOn()
    const settled = readSidecar(c, disk, name)
    await vm.powerOff()
    await vm.powerOn()
    const cycled = readSidecar(c, disk, name)
    const stable = (settled === null && cycled === null) || (settled !== null && cycled !== null && same(settled, cycled))
    if (!stable) ctx.note('the sidecar changes across a same-host power cycle without I/O, so across the move only its presence is checked')
    // move 1, quiesced: esx1 → esx2
    await c.migrateVm(vm.name, 'esx2')
    if (where() !== 'esx2' || vm.state !== 'on') throw new Error(`after migrateVm the VM is ${vm.state} on ${where()}`)
    const moved = readSidecar(c, disk, name)
    const change = sidecarChange(cycled, moved, stable)
    if (change !== null) {
      throw new CheckFailure(`the filter's sidecar for disk ${disk} did not survive the move from esx1 to esx2: ${change} (the sidecar moves with the disk; close('migrate') must keep it, and open on the new host must use it)`, {
        before: describeSidecar(cycled), after: describeSidecar(moved), stableAcrossPowerCycle: stable,
      })
    }
    await verifyRange(vm, disk, oracle, 0, region, 'a read on esx2 after the move')
    // move 2, under I/O right up to it: esx2 → esx1
    await verifiedWorkload(vm, disk, oracle, rng, { ...work, count: n })
    const beforeBack = readSidecar(c, disk, name)
    await c.migrateVm(vm.name, 'esx1')
    if (where() !== 'esx1' || vm.state !== 'on') throw new Error(`after migrateVm the VM is ${vm.state} on ${where()}`)
    const back = readSidecar(c, disk, name)
    const change2 = sidecarChange(beforeBack, back, false)
    if (change2 !== null) {
      throw new CheckFailure(`the filter's sidecar for disk ${disk} did not survive the move from esx2 back to esx1 under I/O: ${change2}`, { before: describeSidecar(beforeBack), after: describeSidecar(back) })
    }
    await verifiedWorkload(vm, disk, oracle, rng, { ...work, count: n })
    await verifyRange(vm, disk, oracle, 0, region, 'a read after moving back')
    const opens = vm.faults.filter(f => f.kind === 'open' || f.kind === 'close')
    if (opens.length > 0) throw new CheckFailure(`the filter faulted while closing or reopening across the moves: ${opens[0]!.message}`, { faults: opens.slice(0, 5) })
    return {
      status: 'passed',
      message: `moved esx1 → esx2 (quiesced) and back (under I/O); ${cycled === null ? 'the filter keeps no sidecar' : `the sidecar (${cycled.length} bytes) was kept${stable ? ' byte for byte' : ''}`}; ${3 * n} I/Os verified`,
      evidence: { sidecarBytes: cycled?.length ?? 0, sidecarStableAcrossPowerCycle: stable, ios: 3 * n },
    }
  },
)

/** The suite's checks, in catalogue order. */
export const checks: readonly CheckDef[] = [snapshotCheck, stunCheck, migrationCheck]
