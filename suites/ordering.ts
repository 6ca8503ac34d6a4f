/**
 * ordering.*: where the filter sits in the chain and what it does to the order, the durability and
 * the completion of guest I/O. Each check drives seeded guest workloads on drives that reorder
 * concurrent requests and delay completions, and compares what the disk and the guest got with a
 * byte-exact oracle; a failure names the seed-reproducible I/O, the offset and the bytes.
 */
import type { FilterClass } from '../harness/sdk/index.js'
import { chainRank, type DiskSnapshot, type GuestIo } from '../harness/framework/index.js'
import { check, type CheckDef, CheckFailure } from '../harness/certify/check.js'
import type { CheckContext } from '../harness/certify/context.js'
import { describeIo, expectOk, firstDifference, Oracle, verifyRange } from '../harness/certify/workloads.js'
import { crc32c } from '../harness/base/crc32c.js'
import { IN_WORKER, installProbe, probeRule, takeProbeRecords, WATCH_CLASSES, type ProbeRecord } from '../harness/certify/probes/index.js'
import type { DepthResult } from '../harness/certify/probes/completion.js'
import {
  CHECK_CACHE_MIB, compareImage, DISK_BYTES, guestWithDisk, MiB, otherReference, rawSequences, scaled, sharedLayoutWorkload, SPM_RULE, subjectPolicy, VMCRYPT_RULE, within,
} from '../harness/certify/datapath.js'

// ---- ordering.chain-position ----

/** The guest's write payloads by `offset:length`, as CRC-32Cs. */
type GuestWrites = Map<string, Set<number>>

interface ChainStats {
  readonly config: string
  readonly above: FilterClass
  readonly below: FilterClass
  readonly passedDown: number
  readonly completedByFilter: number
  readonly failedByFilter: number
  readonly ownIo: number
  readonly writesCheckedForEncryption: number
}

function ioOf(r: ProbeRecord): { id: number; op: string; offset: number; length: number } {
  return { id: r.id, op: r.op, offset: r.offset, length: r.length }
}

/**
 * Judges what the probes directly above (`a`) and below (`b`) the filter saw: every I/O the filter
 * passed reaches below after the probe above saw it, with the payload it was given (a filter may
 * defer an I/O — a Promise from start — so I/Os it passes may overtake one another); read bytes travel up unchanged; the filter's position sees ciphertext
 * with encryption first and the guest's plaintext with encryption after it.
 */
function analyseChain(records: readonly ProbeRecord[], a: FilterClass, b: FilterClass, writes: GuestWrites, cleartext: boolean, config: string): ChainStats {
  const aStart = new Map<number, ProbeRecord>()
  const aDone = new Map<number, ProbeRecord>()
  const bStart = new Map<number, ProbeRecord>()
  const bDone = new Map<number, ProbeRecord>()
  const belowOrder: ProbeRecord[] = []
  for (const r of records) {
    if (r.probe === a) (r.phase === 'start' ? aStart : aDone).set(r.id, r)
    else if (r.probe === b) {
      if (r.phase === 'start') {
        bStart.set(r.id, r)
        belowOrder.push(r)
      } else bDone.set(r.id, r)
    }
  }
  const fail = (message: string, evidence: Record<string, unknown>): never => {
    throw new CheckFailure(`${config}: ${message}`, { config, filterReceivedFrom: `the ${a} probe`, filterPassedTo: `the ${b} probe`, ...evidence })
  }
  let passedDown = 0
  let ownIo = 0
  for (const r of belowOrder) {
    const up = aStart.get(r.id)
    if (up === undefined) {
      ownIo++ // the filter's own I/O through `lower`
      continue
    }
    passedDown++
    if (up.seq > r.seq) fail('an I/O reached the layer below the filter before the filter was given it', { io: ioOf(r) })
    if (r.op === 'write' && r.crc !== up.crc) {
      fail('the filter passed a write down with a payload other than the one it was given (a non-transforming filter never changes a payload)', { io: ioOf(r), crcGiven: up.crc, crcPassed: r.crc })
    }
  }
  for (const [id, d] of bDone) {
    const top = aDone.get(id)
    if (top === undefined) continue
    if (top.seq < d.seq) fail('an I/O completed above the filter before it completed below it', { io: ioOf(d) })
    if (d.op === 'read' && d.ok === true && top.ok === true && d.crc !== top.crc) {
      fail('the filter changed the bytes of a read on their way up (a non-transforming filter passes them unchanged)', { io: ioOf(d), crcFromBelow: d.crc, crcPassedUp: top.crc })
    }
    if (d.ok !== top.ok) fail(`an I/O ${d.ok ? 'succeeded' : 'failed'} below the filter but ${top.ok ? 'succeeded' : 'failed'} above it`, { io: ioOf(d) })
  }
  let completedByFilter = 0
  let failedByFilter = 0
  for (const [id, d] of aDone) {
    if (bStart.has(id)) continue
    if (d.ok) completedByFilter++
    else failedByFilter++
  }
  let checked = 0
  for (const r of aStart.values()) {
    if (r.op !== 'write' || (r.origin !== null && r.origin !== 0)) continue
    const known = writes.get(`${r.offset}:${r.length}`)
    if (known === undefined) continue
    checked++
    const plain = known.has(r.crc!)
    if (cleartext && !plain) fail('with allowCleartextFilters the filter must see the guest\'s plaintext (encryption sits below it), but it was given other bytes', { io: ioOf(r) })
    if (!cleartext && plain) fail('with encryption first the filter must see ciphertext, but it was given the guest\'s plaintext', { io: ioOf(r) })
  }
  if (checked === 0) fail('no guest write reached the filter\'s position: the chain is not the documented one', {})
  return { config, above: a, below: b, passedDown, completedByFilter, failedByFilter, ownIo, writesCheckedForEncryption: checked }
}

/** The stretch of the disk the chain workload uses (the whole disk is integrity.roundtrip's). */
const REGION = 16 * MiB

const chainPositionCheck = check({
  id: 'ordering.chain-position',
  title: 'With the built-ins and reference filters of other classes on the disk, the filter sees I/O in the documented chain position, with encryption before and after it',
  required: true,
  classes: 'all',
}, async ctx => {
  const other = otherReference(ctx)
  const c = await ctx.cluster({ also: other ? [other] : [] })
  for (const cls of WATCH_CLASSES) await installProbe(c, cls)
  const rules = [VMCRYPT_RULE, SPM_RULE, ...WATCH_CLASSES.map(probeRule), ctx.rule({ cacheMiB: CHECK_CACHE_MIB }), ...(other ? [ctx.rule({}, other)] : [])]
  const onDisk: FilterClass[] = ['encryption', 'datastoreIoControl', ...WATCH_CLASSES, ctx.cls, ...(other ? [other.cls] : [])]
  const n = scaled(ctx, 1000, 4000)
  const configs = [false, true].map((cleartext, k) => ({
    cleartext,
    label: cleartext ? 'encryption after dataProvider (allowCleartextFilters)' : 'encryption first (the default)',
    layout: ctx.rng.fork(2 * k + 1),
    data: ctx.rng.fork(2 * k + 2),
  }))
  const stats = await Promise.all(configs.map(async (cfg, k) => {
    const order = [...onDisk].sort((x, y) => chainRank(x, cfg.cleartext) - chainRank(y, cfg.cleartext))
    const at = order.indexOf(ctx.cls)
    const above = order[at - 1]
    const below = order[at + 1]
    if (above === undefined || below === undefined || !WATCH_CLASSES.includes(above) || !WATCH_CLASSES.includes(below)) {
      throw new Error(`no probe directly above and below a ${ctx.cls} filter in ${order.join(' → ')}`)
    }
    const g = await guestWithDisk(c, { vm: `vm${k + 1}`, policy: { name: `chain${k + 1}`, allowCleartextFilters: cfg.cleartext, rules } })
    const oracle = new Oracle(DISK_BYTES)
    const writes: GuestWrites = new Map()
    const onBatch = (_: number, ios: readonly GuestIo[]) => {
      for (const io of ios) {
        if (io.op !== 'write') continue
        const key = `${io.offset}:${io.data!.length}`
        let s = writes.get(key)
        if (s === undefined) writes.set(key, (s = new Set()))
        s.add(crc32c(io.data!))
      }
    }
    await within(cfg.label, { config: cfg.label, chain: order }, async () => {
      // a small hot set makes a caching filter complete reads itself, which must then never reach below
      await sharedLayoutWorkload([{ ...g, oracle, data: cfg.data, label: g.vm.name }], cfg.layout, { count: n, queueDepth: 8, maxSectors: 256, hotSetBytes: MiB, regionLength: REGION, readRatio: 0.45 }, onBatch)
      await verifyRange(g.vm, g.disk, oracle, 0, REGION, 'a read after the workload')
    })
    const { records, dropped } = await takeProbeRecords(g.vm, g.disk)
    if (dropped > 0) ctx.note(`${cfg.label}: the probes stopped recording after ${records.length} events`)
    return analyseChain(records, above, below, writes, cfg.cleartext, cfg.label)
  }))
  const own = stats.reduce((k, s) => k + s.completedByFilter, 0)
  return { status: 'passed', message: `in both encryption positions every I/O the filter passed reached the layer below after the layer above gave it, with its payload${own > 0 ? `; the ${own} it completed itself never did` : ''}`, evidence: { configs: stats, ios: n } }
})

// ---- ordering.sequential-overwrite ----

/** Which logged write's bytes a sector holds (newest first), for evidence. */
function whoseBytes(log: readonly GuestIo[], offset: number, found: Uint8Array): { expectedFromWrite: number | null; foundFromWrite: number | null } {
  const sector = Math.floor(offset / 512) * 512
  let expected: number | null = null
  let foundFrom: number | null = null
  for (let i = log.length - 1; i >= 0 && (expected === null || foundFrom === null); i--) {
    const w = log[i]!
    if (sector < w.offset || sector >= w.offset + w.data!.length) continue
    expected ??= i
    const bytes = w.data!.subarray(sector - w.offset, sector - w.offset + 512)
    if (foundFrom === null && Buffer.from(bytes).equals(Buffer.from(found))) foundFrom = i
  }
  return { expectedFromWrite: expected, foundFromWrite: foundFrom }
}

const sequentialOverwriteCheck = check({
  id: 'ordering.sequential-overwrite',
  title: 'Dependent writes to overlapping blocks land in issue order: the disk equals the oracle',
  required: true,
  classes: 'all',
}, async ctx => {
  const c = await ctx.cluster()
  const g = await guestWithDisk(c, { vm: 'vm1', policy: subjectPolicy(ctx) })
  const oracle = new Oracle(DISK_BYTES)
  const n = scaled(ctx, 1000, 5000)
  // a 1 MiB region: nearly every write overlaps several before it
  const regionStart = 8 * MiB
  const regionLength = MiB
  const log: GuestIo[] = []
  const rng = ctx.rng
  const t0 = performance.now()
  for (let i = 0; i < n; i++) {
    const sectors = 1 + (rng.float() < 0.7 ? rng.int(16) : rng.int(128))
    const io: GuestIo = { op: 'write', offset: regionStart + rng.int((regionLength - sectors * 512) / 512 + 1) * 512, data: rng.fill(new Uint8Array(sectors * 512)) }
    expectOk(await g.vm.submit(g.disk, io), io, `dependent write #${i}`)
    oracle.apply(io)
    log.push(io)
    if (i % 100 === 99) {
      const f: GuestIo = { op: 'flush', offset: 0, length: 0 }
      expectOk(await g.vm.submit(g.disk, f), f, `flush after write #${i}`)
    }
  }
  const writesMs = Math.round(performance.now() - t0)
  // the quiesced image: a filter holding writes must write them back for the snapshot
  const snap: DiskSnapshot = await g.vm.snapshot(g.disk)
  try {
    compareImage(snap, oracle, `after ${n} dependent writes at queue depth 1`)
  } catch (e) {
    if (!(e instanceof CheckFailure)) throw e
    const at = e.evidence.offset as number
    const who = whoseBytes(log, at, snap.read(Math.floor(at / 512) * 512, 512))
    const landed = who.foundFromWrite !== null && who.expectedFromWrite !== null
      ? `: it holds the bytes of write #${who.foundFromWrite}, which the guest issued before write #${who.expectedFromWrite} (the last to cover it)`
      : ''
    throw new CheckFailure(`${e.message}${landed}`, {
      ...e.evidence, ...who,
      ...(who.expectedFromWrite !== null ? { expectedWrite: describeIo(log[who.expectedFromWrite]!) } : {}),
      ...(who.foundFromWrite !== null ? { foundWrite: describeIo(log[who.foundFromWrite]!) } : {}),
      writes: n,
    })
  }
  await verifyRange(g.vm, g.disk, oracle, regionStart, regionLength, 'a read through the filter after the dependent writes')
  return { status: 'passed', message: `${n} dependent writes to a 1 MiB region landed in issue order: the quiesced disk equals the oracle`, evidence: { writes: n, writesMs } }
})

// ---- ordering.read-after-write ----

const readAfterWriteCheck = check({
  id: 'ordering.read-after-write',
  title: "A read issued after a write completed returns that write's bytes",
  required: true,
  classes: 'all',
}, async ctx => {
  const c = await ctx.cluster()
  const g = await guestWithDisk(c, { vm: 'vm1', policy: subjectPolicy(ctx) })
  const oracle = new Oracle(DISK_BYTES)
  const regionStart = 16 * MiB
  const regionLength = 4 * MiB
  const r = await rawSequences(g.vm, g.disk, oracle, ctx.rng, { count: scaled(ctx, 1000, 5000), lanes: 8, regionStart, regionLength })
  await verifyRange(g.vm, g.disk, oracle, regionStart, regionLength, 'a read after the sequences')
  return { status: 'passed', message: `${r.sequences} read → overwrite → re-read sequences (aligned, partial unaligned, wider reads) returned each completed write's bytes`, evidence: r }
})

// ---- ordering.flush-durability ----

const ZERO_SECTOR = new Uint8Array(512)

const flushDurabilityCheck = check({
  id: 'ordering.flush-durability',
  title: 'After a flush completes, every write completed before it survives a host crash',
  required: true,
  classes: 'all',
}, async ctx => {
  const c = await ctx.cluster()
  const policy = subjectPolicy(ctx)
  let g = await guestWithDisk(c, { vm: 'vm1', policy, backing: 'file' })
  const oracle = new Oracle(DISK_BYTES)
  const rounds = scaled(ctx, 2, 6)
  const perPhase = scaled(ctx, 250, 500)
  const regionStart = 4 * MiB
  const regionLength = 4 * MiB
  const shape = { queueDepth: 8, maxSectors: 128, regionStart, regionLength, readRatio: 0.2, unmapRatio: 0.05 }
  const summary: Record<string, unknown>[] = []
  for (let round = 1; round <= rounds; round++) {
    const layout = ctx.rng.fork(round)
    const data = ctx.rng.fork(1000 + round)
    const guest = () => [{ ...g, oracle, data, label: `round ${round}` }]
    await sharedLayoutWorkload(guest(), layout, { ...shape, count: perPhase, flushRatio: 0.01 })
    const flush: GuestIo = { op: 'flush', offset: 0, length: 0 }
    const drainedFlushes = (await g.vm.driveStats(g.disk)).flushes
    expectOk(await g.vm.submit(g.disk, flush), flush, `round ${round}: the flush`)
    // a flush that completed with no flush reaching the disk is the commonest cause of a loss here
    const flushReachedDisk = (await g.vm.driveStats(g.disk)).flushes > drainedFlushes
    const durable = oracle.slice(regionStart, regionLength).slice()
    // writes after the flush may or may not survive: each sector holds the flushed bytes or a later write's
    const later = new Map<number, Uint8Array[]>()
    await sharedLayoutWorkload(guest(), layout, { ...shape, count: perPhase, flushRatio: 0 }, (_, ios) => {
      for (const io of ios) {
        if (io.op !== 'write' && io.op !== 'unmap') continue
        const len = io.op === 'write' ? io.data!.length : io.length!
        for (let s = 0; s < len; s += 512) {
          const sector = (io.offset + s - regionStart) / 512
          let list = later.get(sector)
          if (list === undefined) later.set(sector, (list = []))
          list.push(io.op === 'write' ? io.data!.subarray(s, s + 512) : ZERO_SECTOR)
        }
      }
    })
    // every other power cut loses only a seeded subset of the unflushed sectors
    const crashSeed = round % 2 === 0 ? ctx.rng.u32() : undefined
    const lost = await c.crashHost('esx1', crashSeed === undefined ? {} : { seed: crashSeed })
    await c.restartHost('esx1', { powerOnVms: true })
    g = { vm: c.vm('vm1'), disk: g.disk }
    const cut = crashSeed === undefined ? 'a power cut losing every unflushed write' : `a power cut losing a seeded subset of the unflushed sectors (crash seed ${crashSeed})`
    for (let pos = 0; pos < regionLength; pos += MiB) {
      const io: GuestIo = { op: 'read', offset: regionStart + pos, length: MiB }
      const r = await g.vm.submit(g.disk, io)
      expectOk(r, io, `round ${round}: a read after ${cut} and a restart`)
      const got = (r as { data: Uint8Array }).data
      for (let s = 0; s < MiB; s += 512) {
        const found = got.subarray(s, s + 512)
        const flushed = durable.subarray(pos + s, pos + s + 512)
        if (Buffer.from(found).equals(Buffer.from(flushed))) continue
        const candidates = later.get((pos + s) / 512) ?? []
        if (candidates.some(w => Buffer.from(found).equals(Buffer.from(w)))) continue
        const d = firstDifference(flushed, found)!
        throw new CheckFailure(`round ${round}: after ${cut} and a restart, the sector at offset ${regionStart + pos + s} holds neither what the completed flush made durable nor a later write`, {
          round, crashSeed: crashSeed ?? null, lostSectors: lost, offset: regionStart + pos + s + d.at, expected: d.expected, found: d.found, laterWritesToSector: candidates.length, flushReachedDisk,
        }, flushReachedDisk ? undefined : 'the guest\'s flush completed but no flush reached the disk below the filter: the filter completes flushes itself instead of passing them down (or flushing what it holds with lower.flush())')
      }
      // what survived is the disk now: the next round starts from it
      oracle.bytes.set(got, regionStart + pos)
    }
    summary.push({ round, crashSeed: crashSeed ?? null, lostSectors: lost })
  }
  return { status: 'passed', message: `${rounds} power cuts: every write completed before a completed flush was there after restart`, evidence: { rounds: summary, iosPerRound: 2 * perPhase } }
})

// ---- ordering.completion ----

const DEPTHS = [1, 2, 4, 8, 16, 32, 64, 128]

function completionFailure(ctx: CheckContext, r: DepthResult, faults: readonly { kind: string; filter: string; message: string }[]): CheckFailure | null {
  const base = { depth: r.depth, iosAtDepth: r.ios, completed: r.completed, ioTimeoutMs: ctx.thresholds.ioTimeoutMs }
  if (r.doubles.length > 0) return new CheckFailure(`at queue depth ${r.depth} an I/O completed more than once: ${r.doubles[0]!.op} at offset ${r.doubles[0]!.offset}`, { ...base, io: r.doubles[0], more: r.doubles.slice(1) })
  if (r.missing.length > 0) return new CheckFailure(`at queue depth ${r.depth} an I/O never completed, not even with ETIMEDOUT: ${r.missing[0]!.op} at offset ${r.missing[0]!.offset}`, { ...base, io: r.missing[0], more: r.missing.slice(1) })
  const e = r.errors.find(x => x.error === 'ETIMEDOUT') ?? r.errors[0]
  if (e === undefined) return null
  const held = faults.find(f => f.kind === 'timeout')
  return new CheckFailure(e.error === 'ETIMEDOUT'
    ? `at queue depth ${r.depth} an I/O did not complete within the I/O timeout (${ctx.thresholds.ioTimeoutMs} ms): ${e.op} at offset ${e.offset}, length ${e.length}`
    : `at queue depth ${r.depth} an I/O failed with ${e.error} on a healthy drive: ${e.op} at offset ${e.offset}, length ${e.length}`, {
    ...base, io: e, failedIos: r.errorCount, more: r.errors.filter(x => x !== e), ...(held ? { heldAt: held.filter, fault: held.message } : {}),
  })
}

const completionCheck = check({
  id: 'ordering.completion',
  title: 'At queue depths 1 to 128 every I/O completes exactly once, within the I/O timeout',
  required: true,
  classes: 'all',
}, async ctx => {
  const c = await ctx.cluster()
  const g = await guestWithDisk(c, { vm: 'vm1', policy: subjectPolicy(ctx) })
  const counts = DEPTHS.map(d => (ctx.quick ? Math.max(160, 4 * d) : Math.max(1000, 16 * d)))
  const results = await g.vm.runInWorker<DepthResult[]>(g.disk, IN_WORKER.completion, { depths: DEPTHS, counts, seed: ctx.rng.u32(), ioTimeoutMs: ctx.thresholds.ioTimeoutMs })
  const perDepth = results.map(r => ({ depth: r.depth, ios: r.ios, elapsedMs: r.elapsedMs, maxMs: r.maxMs }))
  for (const r of results) {
    const f = completionFailure(ctx, r, g.vm.faults)
    if (f !== null) throw new CheckFailure(f.message, { ...f.evidence, perDepth })
  }
  if (results.length !== DEPTHS.length) throw new Error('the completion workload stopped early without a failure')
  const total = results.reduce((n, r) => n + r.ios, 0)
  return { status: 'passed', message: `${total} I/Os at queue depths 1–128 each completed exactly once; the slowest took ${Math.max(...results.map(r => r.maxMs))} ms`, evidence: { perDepth } }
})

/** The suite's checks, in catalogue order. */
export const checks: readonly CheckDef[] = [chainPositionCheck, sequentialOverwriteCheck, readAfterWriteCheck, flushDurabilityCheck, completionCheck]
