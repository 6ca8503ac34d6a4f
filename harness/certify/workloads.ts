/**
 * Seeded, verified guest workloads for the data-path checks. Writes that overlap are never in
 * flight together (their order would be undefined), but reads run concurrently with overlapping
 * writes and unmaps: such a read must return, sector by sector, either the old or the new bytes.
 * Everything is re-read afterwards. A mismatch is a CheckFailure with the evidence a vendor needs.
 */
import type { GuestIo, IoResult, Rng, Vm } from '../framework/index.js'
import { CheckFailure } from './check.js'

/** A byte-exact model of what the disk must hold. */
export class Oracle {
  readonly bytes: Uint8Array
  constructor(readonly capacity: number) {
    this.bytes = new Uint8Array(capacity)
  }
  apply(io: GuestIo): void {
    if (io.op === 'write') this.bytes.set(io.data!, io.offset)
    else if (io.op === 'unmap') this.bytes.fill(0, io.offset, io.offset + io.length!)
  }
  slice(offset: number, length: number): Uint8Array {
    return this.bytes.subarray(offset, offset + length)
  }
}

/** 32 bytes of hex around the first difference of two arrays, for evidence. */
export function firstDifference(expected: Uint8Array, found: Uint8Array): { at: number; expected: string; found: string } | null {
  const n = Math.min(expected.length, found.length)
  for (let i = 0; i < n; i++) {
    if (expected[i] !== found[i]) {
      const from = Math.max(0, i - 8)
      const to = Math.min(n, from + 32)
      return { at: i, expected: Buffer.from(expected.subarray(from, to)).toString('hex'), found: Buffer.from(found.subarray(from, to)).toString('hex') }
    }
  }
  return expected.length === found.length ? null : { at: n, expected: `length ${expected.length}`, found: `length ${found.length}` }
}

export function describeIo(io: GuestIo): { op: string; offset: number; length: number } {
  return { op: io.op, offset: io.offset, length: io.op === 'write' ? io.data!.length : io.length ?? 0 }
}

/** Options of a random verified workload. */
export interface WorkloadOptions {
  /** Number of guest I/Os (writes, reads, unmaps, flushes). */
  readonly count: number
  readonly queueDepth: number
  /** Sizes in sectors, inclusive. */
  readonly minSectors?: number
  readonly maxSectors?: number
  /** Region of the disk used (bytes). */
  readonly regionStart?: number
  readonly regionLength?: number
  readonly readRatio?: number
  readonly unmapRatio?: number
  readonly flushRatio?: number
  /** Make some I/Os touch the disk's last sector. */
  readonly lastSector?: boolean
  /** Prefer offsets in a small hot set (exercises caches). */
  readonly hotSetBytes?: number
}

function overlaps(a: GuestIo, b: GuestIo): boolean {
  const la = a.op === 'write' ? a.data!.length : a.length ?? 0
  const lb = b.op === 'write' ? b.data!.length : b.length ?? 0
  return a.offset < b.offset + lb && b.offset < a.offset + la
}

/** Generates one batch of concurrent I/Os in which no two writes/unmaps overlap. */
function batch(rng: Rng, capacity: number, o: WorkloadOptions, n: number): GuestIo[] {
  const out: GuestIo[] = []
  const start = o.regionStart ?? 0
  const len = Math.min(o.regionLength ?? capacity - start, capacity - start)
  const minS = o.minSectors ?? 1
  const maxS = o.maxSectors ?? 2048
  let guard = 0
  while (out.length < n && guard++ < n * 20) {
    const r = rng.float()
    // sizes skewed small: most I/O is a few KiB, some reach the maximum
    const sectors = Math.min(maxS, Math.max(minS, rng.float() < 0.8 ? minS + rng.int(Math.min(16, maxS - minS + 1)) : minS + rng.int(maxS - minS + 1)))
    const bytes = Math.min(sectors * 512, len)
    let offset: number
    if (o.lastSector && rng.float() < 0.05) offset = start + len - bytes
    else if (o.hotSetBytes && rng.float() < 0.7) offset = start + rng.int(Math.max(1, (Math.min(o.hotSetBytes, len) - bytes) / 512 + 1)) * 512
    else offset = start + rng.int((len - bytes) / 512 + 1) * 512
    let io: GuestIo
    if (r < (o.flushRatio ?? 0.02)) io = { op: 'flush', offset: 0, length: 0 }
    else if (r < (o.flushRatio ?? 0.02) + (o.unmapRatio ?? 0.05)) io = { op: 'unmap', offset, length: bytes }
    else if (r < (o.flushRatio ?? 0.02) + (o.unmapRatio ?? 0.05) + (o.readRatio ?? 0.4)) io = { op: 'read', offset, length: bytes }
    else io = { op: 'write', offset, data: rng.fill(new Uint8Array(bytes)) }
    if ((io.op === 'write' || io.op === 'unmap') && out.some(x => (x.op === 'write' || x.op === 'unmap') && overlaps(x, io))) continue
    out.push(io)
  }
  return out
}

/** What a workload did. */
export interface WorkloadResult {
  readonly ios: number
  readonly errors: number
  readonly racyReads: number
}

/**
 * Runs a random verified workload against `disk` of `vm`, applying it to `oracle`.
 * Throws CheckFailure on the first error or wrong byte.
 */
export async function verifiedWorkload(vm: Vm, disk: string, oracle: Oracle, rng: Rng, o: WorkloadOptions): Promise<WorkloadResult> {
  let done = 0
  let racyReads = 0
  while (done < o.count) {
    const ios = batch(rng, oracle.capacity, o, Math.min(o.queueDepth, o.count - done))
    const before = ios.map(io => (io.op === 'read' ? oracle.slice(io.offset, io.length!).slice() : null))
    const results = await vm.runIos(disk, ios, o.queueDepth)
    results.forEach((r, i) => expectOk(r, ios[i]!, 'guest I/O failed'))
    const writes = ios.filter(io => io.op === 'write' || io.op === 'unmap')
    for (const w of writes) oracle.apply(w)
    ios.forEach((io, i) => {
      if (io.op !== 'read') return
      const got = (results[i] as { data: Uint8Array }).data
      const racing = writes.filter(w => overlaps(w, io))
      if (racing.length > 0) racyReads++
      // sector by sector: the old bytes, or (only where a concurrent write/unmap covers it) the new ones
      for (let s = 0; s < io.length! / 512; s++) {
        const a = io.offset + s * 512
        const found = got.subarray(s * 512, s * 512 + 512)
        const old = before[i]!.subarray(s * 512, s * 512 + 512)
        if (Buffer.from(found).equals(Buffer.from(old))) continue
        const now = oracle.slice(a, 512)
        if (racing.some(w => overlaps(w, { op: 'read', offset: a, length: 512 })) && Buffer.from(found).equals(Buffer.from(now))) continue
        throw new CheckFailure(`a read returned wrong bytes at offset ${a}${racing.length ? ' (neither the old nor the new data of a concurrent write)' : ''}`, {
          io: describeIo(io), offset: a, ...firstDifference(old, found), concurrentWrites: racing.map(describeIo),
        })
      }
    })
    done += ios.length
  }
  return { ios: done, errors: 0, racyReads }
}

/** Reads [offset, offset+length) through the VM in 1 MiB pieces and compares with the oracle. */
export async function verifyRange(vm: Vm, disk: string, oracle: Oracle, offset = 0, length = oracle.capacity, what = 'a read after the workload'): Promise<void> {
  const step = 1 << 20
  for (let pos = offset; pos < offset + length; pos += step) {
    const n = Math.min(step, offset + length - pos)
    const r = await vm.submit(disk, { op: 'read', offset: pos, length: n })
    expectOk(r, { op: 'read', offset: pos, length: n }, what)
    const diff = firstDifference(oracle.slice(pos, n), (r as { data: Uint8Array }).data)
    if (diff) throw new CheckFailure(`${what} returned wrong bytes at offset ${pos + diff.at}`, { io: { op: 'read', offset: pos, length: n }, offset: pos + diff.at, expected: diff.expected, found: diff.found })
  }
}

/** Throws a CheckFailure when a guest I/O failed. */
export function expectOk(r: IoResult, io: GuestIo, what: string): void {
  if (!r.ok) throw new CheckFailure(`${what}: ${io.op} at offset ${io.offset} failed with ${r.error}`, { io: describeIo(io), error: r.error, ms: Math.round(r.ms) })
}

/** Evenly spaced 4 KiB-aligned offsets (reproducible), for fixed patterns. */
export function pattern(seed: number, length: number): Uint8Array {
  const out = new Uint8Array(length)
  let x = seed >>> 0 || 1
  for (let i = 0; i < length; i++) {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    out[i] = x
  }
  return out
}
