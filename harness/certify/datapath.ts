/**
 * Data-path building blocks shared by the ordering, integrity, exclusivity and cache suites:
 * guests with a disk under a policy, workloads in which several VMs write the same offsets with
 * different data, read → overwrite → re-read sequences, and byte-for-byte comparison of a quiesced
 * image with the oracle. Every mismatch is a CheckFailure carrying the seed-reproducible I/O, the
 * offset and hex excerpts of the expected and found bytes.
 */
import type { Cluster, DiskSnapshot, FilterInfo, GuestIo, IoResult, PolicyRule, Rng, StoragePolicy, Vm } from '../framework/index.js'
import type { CheckContext } from './context.js'
import { CheckFailure } from './check.js'
import { describeIo, expectOk, firstDifference, type Oracle, type WorkloadOptions } from './workloads.js'

export const MiB = 1 << 20
/** Functional checks run on 64 MiB disks. */
export const DISK_BYTES = 64 * MiB
const SECTOR = 512

/** The built-in encryption filter, at the position the policy's allowCleartextFilters gives it. */
export const VMCRYPT_RULE: PolicyRule = Object.freeze({ filter: 'vmwarevmcrypt@ENCRYPTION' })
/** The built-in storage I/O control with a limit far above what a check issues: present, never throttling. */
export const SPM_RULE: PolicyRule = Object.freeze({ filter: 'spm@DATASTOREIOCONTROL', params: { limitIops: 1_000_000 } })

/** A VM with one disk, powered on. */
export interface Guest {
  readonly vm: Vm
  readonly disk: string
}

/**
 * Creates a VM with one disk on `host`, powers it on and applies `policy` (null: no filter).
 * Applying the policy to the running VM attaches each filter inside its worker; applied to a
 * powered-off VM, every filter would be attached in a worker of its own.
 */
export async function guestWithDisk(c: Cluster, o: { vm: string; policy: StoragePolicy | null; host?: string; capacity?: number; backing?: 'memory' | 'file' }): Promise<Guest> {
  const h = c.host(o.host ?? 'esx1')
  const vm = h.createVm(o.vm)
  const d = await h.addDisk(o.vm, { capacity: o.capacity ?? DISK_BYTES, ...(o.backing ? { backing: o.backing } : {}) })
  await vm.powerOn()
  if (o.policy !== null) {
    c.createPolicy(o.policy)
    await h.setPolicy(o.vm, d.id, o.policy.name)
  }
  return { vm, disk: d.id }
}

/** The bundled reference filter of the other open class (cache ↔ replication), or null (noted) when this build has none. */
export function otherReference(ctx: CheckContext): FilterInfo | null {
  const name = ctx.cls === 'replication' ? 'cache' : 'cdp'
  const info = ctx.options.references[name]
  if (info === undefined) {
    ctx.note(`the reference filter ${name} is not bundled with this harness: the disk carries no ${ctx.cls === 'replication' ? 'cache' : 'replication'} filter besides the one under test`)
    return null
  }
  return info
}

/** `quick` or `full` count, by run mode. */
export function scaled(ctx: CheckContext, quick: number, full: number): number {
  return ctx.quick ? quick : full
}

/** Runs `fn`; a CheckFailure it throws gets `label` in its message and `extra` in its evidence. */
export async function within<T>(label: string, extra: Record<string, unknown>, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (e) {
    if (e instanceof CheckFailure) throw new CheckFailure(`${label}: ${e.message}`, { ...extra, ...e.evidence })
    throw e
  }
}

function ioLength(io: GuestIo): number {
  return io.op === 'write' ? io.data!.length : io.length ?? 0
}

function overlaps(a: GuestIo, b: GuestIo): boolean {
  return a.offset < b.offset + ioLength(b) && b.offset < a.offset + ioLength(a)
}

/** A layout of one batch: ops, offsets and lengths; payloads are each guest's own. */
interface Slot {
  readonly op: GuestIo['op']
  readonly offset: number
  readonly length: number
}

/** A workload's shape; `alignBytes` makes every offset and length a multiple of it (e.g. a cache's 4 KiB blocks). */
export interface LayoutOptions extends WorkloadOptions {
  readonly alignBytes?: number
}

function layoutBatch(rng: Rng, capacity: number, o: LayoutOptions, n: number): Slot[] {
  const out: Slot[] = []
  const start = o.regionStart ?? 0
  const len = Math.min(o.regionLength ?? capacity - start, capacity - start)
  const minS = o.minSectors ?? 1
  const maxS = o.maxSectors ?? 2048
  const flushR = o.flushRatio ?? 0.02
  const unmapR = o.unmapRatio ?? 0.05
  const readR = o.readRatio ?? 0.4
  let guard = 0
  while (out.length < n && guard++ < n * 20) {
    const r = rng.float()
    // sizes skewed small: most I/O is a few KiB, some reach the maximum
    const sectors = Math.min(maxS, Math.max(minS, rng.float() < 0.8 ? minS + rng.int(Math.min(16, maxS - minS + 1)) : minS + rng.int(maxS - minS + 1)))
    const unit = o.alignBytes ?? SECTOR
    const bytes = Math.min(Math.ceil((sectors * SECTOR) / unit) * unit, len)
    let offset: number
    if (o.lastSector && rng.float() < 0.05) offset = start + len - bytes
    else if (o.hotSetBytes && rng.float() < 0.7) offset = start + rng.int(Math.max(1, Math.floor((Math.min(o.hotSetBytes, len) - bytes) / unit) + 1)) * unit
    else offset = start + rng.int(Math.floor((len - bytes) / unit) + 1) * unit
    const op: Slot['op'] = r < flushR ? 'flush' : r < flushR + unmapR ? 'unmap' : r < flushR + unmapR + readR ? 'read' : 'write'
    const slot: Slot = op === 'flush' ? { op, offset: 0, length: 0 } : { op, offset, length: bytes }
    const mutates = (s: Slot) => s.op === 'write' || s.op === 'unmap'
    // overlapping writes in flight together would land in an undefined order
    if (mutates(slot) && out.some(x => mutates(x) && x.offset < slot.offset + slot.length && slot.offset < x.offset + x.length)) continue
    out.push(slot)
  }
  return out
}

/** One VM's side of a shared-layout workload. */
export interface WorkloadGuest extends Guest {
  readonly oracle: Oracle
  /** Source of this guest's payloads (distinct per guest: same offsets, different data). */
  readonly data: Rng
  /** Names the guest in evidence. */
  readonly label: string
}

/**
 * A seeded random verified workload run by every guest at once with one layout — the same ops at
 * the same offsets — and each guest's own payloads. Reads race overlapping writes of their own
 * batch: such a read must return, sector by sector, the old or the new bytes; everything else must
 * equal the oracle. `onBatch` sees each guest's I/Os (with payloads) before they are issued.
 */
export async function sharedLayoutWorkload(guests: readonly WorkloadGuest[], layout: Rng, o: LayoutOptions, onBatch?: (guest: number, ios: readonly GuestIo[]) => void): Promise<{ ios: number; racyReads: number }> {
  let done = 0
  let racyReads = 0
  const capacity = guests[0]!.oracle.capacity
  while (done < o.count) {
    const slots = layoutBatch(layout, capacity, o, Math.min(o.queueDepth, o.count - done))
    const batches = guests.map(g => slots.map((s): GuestIo => (s.op === 'write' ? { op: 'write', offset: s.offset, data: g.data.fill(new Uint8Array(s.length)) } : { op: s.op, offset: s.offset, length: s.length })))
    batches.forEach((ios, gi) => onBatch?.(gi, ios))
    const befores = guests.map((g, gi) => batches[gi]!.map(io => (io.op === 'read' ? g.oracle.slice(io.offset, io.length!).slice() : null)))
    const results = await Promise.all(guests.map((g, gi) => g.vm.runIos(g.disk, batches[gi]!, o.queueDepth)))
    for (const [gi, g] of guests.entries()) {
      racyReads += checkBatch(g, batches[gi]!, results[gi]!, befores[gi]!)
    }
    done += slots.length
  }
  return { ios: done, racyReads }
}

/** Verifies one guest's batch and applies it to its oracle; returns how many reads raced a write. */
function checkBatch(g: WorkloadGuest, ios: readonly GuestIo[], results: readonly IoResult[], before: readonly (Uint8Array | null)[]): number {
  for (let i = 0; i < results.length; i++) {
    const r = results[i]!
    if (!r.ok) throw new CheckFailure(`${g.label}: guest ${ios[i]!.op} at offset ${ios[i]!.offset} failed with ${r.error}`, { vm: g.vm.name, io: describeIo(ios[i]!), error: r.error, ms: Math.round(r.ms) })
  }
  const writes = ios.filter(io => io.op === 'write' || io.op === 'unmap')
  for (const w of writes) g.oracle.apply(w)
  let racy = 0
  ios.forEach((io, i) => {
    if (io.op !== 'read') return
    const got = (results[i] as { data: Uint8Array }).data
    const racing = writes.filter(w => overlaps(w, io))
    if (racing.length > 0) racy++
    if (equal(got, before[i]!)) return
    // sector by sector: the old bytes, or (only where a concurrent write/unmap covers it) the new ones
    for (let s = 0; s < io.length! / SECTOR; s++) {
      const a = io.offset + s * SECTOR
      const found = got.subarray(s * SECTOR, s * SECTOR + SECTOR)
      const old = before[i]!.subarray(s * SECTOR, s * SECTOR + SECTOR)
      if (equal(found, old)) continue
      const sectorIo: GuestIo = { op: 'read', offset: a, length: SECTOR }
      if (racing.some(w => overlaps(w, sectorIo)) && equal(found, g.oracle.slice(a, SECTOR))) continue
      throw new CheckFailure(`${g.label}: a read returned wrong bytes at offset ${a}${racing.length ? ' (neither the old nor the new data of a concurrent write)' : ''}`, {
        vm: g.vm.name, io: describeIo(io), offset: a, ...firstDifference(old, found), concurrentWrites: racing.map(describeIo),
      })
    }
  })
  return racy
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length))
}

/** Options of read → overwrite → re-read sequences. */
export interface SequenceOptions {
  /** Guest I/Os to issue in all (each sequence is 2–3 of them). */
  readonly count: number
  /** Sequences run side by side, each in its own stretch of the region (so they never race). */
  readonly lanes: number
  readonly regionStart: number
  readonly regionLength: number
  /** Include unmap → re-read (zeros) sequences. */
  readonly unmaps?: boolean
}

type SequenceKind = 'aligned read, overwrite, re-read' | 'read, partial unaligned overwrite, re-read' | 'write, read of a wider range' | 'read, unmap, re-read'

/**
 * Read → overwrite → re-read sequences: aligned 4 KiB blocks, partial unaligned overlaps, reads
 * wider than the write, and (optionally) unmaps. Each I/O of a sequence is issued after the previous
 * one completed; every read must return exactly the oracle's bytes.
 */
export async function rawSequences(vm: Vm, disk: string, oracle: Oracle, rng: Rng, o: SequenceOptions): Promise<{ ios: number; sequences: number }> {
  const laneBytes = Math.floor(o.regionLength / o.lanes / 4096) * 4096
  if (laneBytes < 64 * 1024) throw new Error(`the sequence region is too small for ${o.lanes} lanes`)
  let issued = 0
  let sequences = 0
  const kinds: SequenceKind[] = ['aligned read, overwrite, re-read', 'read, partial unaligned overwrite, re-read', 'write, read of a wider range']
  if (o.unmaps) kinds.push('read, unmap, re-read')
  const lane = async (k: number, lrng: Rng) => {
    const base = o.regionStart + k * laneBytes
    const sectorsIn = laneBytes / SECTOR
    while (issued < o.count) {
      const kind = kinds[lrng.int(kinds.length)]!
      const steps: GuestIo[] = []
      if (kind === 'aligned read, overwrite, re-read') {
        const blocks = 1 + lrng.int(8)
        const off = base + lrng.int(laneBytes / 4096 - blocks + 1) * 4096
        steps.push({ op: 'read', offset: off, length: blocks * 4096 }, { op: 'write', offset: off, data: lrng.fill(new Uint8Array(blocks * 4096)) }, { op: 'read', offset: off, length: blocks * 4096 })
      } else {
        // a range A of sectors and a range B that overlaps part of it, neither 4 KiB aligned
        const aS = 2 + lrng.int(24)
        const aFirst = 40 + lrng.int(sectorsIn - aS - 80)
        const bS = 1 + lrng.int(aS + 8)
        // B starts anywhere from bS-1 sectors before A to A's last sector: they always share one
        const bFirst = aFirst - bS + 1 + lrng.int(aS + bS - 1)
        const A = { offset: base + aFirst * SECTOR, length: aS * SECTOR }
        const B = { offset: base + bFirst * SECTOR, length: bS * SECTOR }
        if (kind === 'write, read of a wider range') {
          const lo = Math.min(A.offset, B.offset)
          const hi = Math.max(A.offset + A.length, B.offset + B.length)
          steps.push({ op: 'write', offset: B.offset, data: lrng.fill(new Uint8Array(B.length)) }, { op: 'read', offset: lo, length: hi - lo })
        } else {
          const change: GuestIo = kind === 'read, unmap, re-read' ? { op: 'unmap', offset: B.offset, length: B.length } : { op: 'write', offset: B.offset, data: lrng.fill(new Uint8Array(B.length)) }
          steps.push({ op: 'read', ...A }, change, { op: 'read', ...A })
        }
      }
      let lastChange: GuestIo | null = null
      for (const [step, io] of steps.entries()) {
        issued++
        const r = await vm.submit(disk, io)
        expectOk(r, io, `${kind}: step ${step + 1}`)
        if (io.op !== 'read') {
          oracle.apply(io)
          lastChange = io
          continue
        }
        const d = firstDifference(oracle.slice(io.offset, io.length!), (r as { data: Uint8Array }).data)
        if (d !== null) {
          throw new CheckFailure(`${kind}: the read at step ${step + 1}, issued after ${lastChange ? `the ${lastChange.op} at offset ${lastChange.offset} completed` : 'the previous read'}, returned ${lastChange ? 'bytes other than that ' + lastChange.op + ' left' : 'wrong bytes'} at offset ${io.offset + d.at}`, {
            sequence: kind, step: step + 1, io: describeIo(io), previous: lastChange ? describeIo(lastChange) : null, offset: io.offset + d.at, expected: d.expected, found: d.found, ms: Math.round(r.ms),
          })
        }
      }
      sequences++
    }
  }
  await Promise.all(Array.from({ length: o.lanes }, (_, k) => lane(k, rng.fork(k + 1))))
  return { ios: issued, sequences }
}

/** Compares a quiesced image with the oracle byte for byte over [from, from+length), in 1 MiB steps. */
export function compareImage(snap: DiskSnapshot, oracle: Oracle, what: string, from = 0, length = oracle.capacity): void {
  for (let pos = from; pos < from + length; pos += MiB) {
    const n = Math.min(MiB, from + length - pos)
    const d = firstDifference(oracle.slice(pos, n), snap.read(pos, n))
    if (d !== null) throw new CheckFailure(`${what}: the disk differs from the oracle at offset ${pos + d.at}`, { offset: pos + d.at, expected: d.expected, found: d.found })
  }
}

/**
 * A VM worker's memory growth between two readings: heap plus off-heap. Node counts ArrayBuffers
 * in both `external` and `arrayBuffers` (measured: a 16 MiB ArrayBuffer raises each by 16 MiB),
 * while shared memory from the main thread appears only in `arrayBuffers`; the larger of the two
 * counts each byte once.
 */
export function memoryGrowth(a: { heapUsed: number; external: number; arrayBuffers: number }, b: { heapUsed: number; external: number; arrayBuffers: number }): number {
  return b.heapUsed - a.heapUsed + Math.max(b.external - a.external, b.arrayBuffers - a.arrayBuffers)
}

/** The cache size the data-path checks give a cache filter that takes `cacheMiB`. */
export const CHECK_CACHE_MIB = 16

/** A policy with the filter under test alone, with the harness's conventional parameters. */
export function subjectPolicy(ctx: CheckContext, name = 'subject'): StoragePolicy {
  return { name, rules: [ctx.rule({ cacheMiB: CHECK_CACHE_MIB })] }
}
