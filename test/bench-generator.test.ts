import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BenchError, BenchErrorCode } from '../harness/bench/errors.js'
import { IoGenerator, generatorOptionsFor, type GeneratorOp, type GeneratorOptions, type GeneratorResult } from '../harness/bench/generator.js'
import { parseJobText } from '../harness/bench/jobfile.js'
import { Xoshiro128 } from '../harness/bench/prng.js'

const SECTOR = 512
const KiB = 1024
const MiB = 1024 * KiB

/** A sparse disk of 512-byte sectors kept in a Map (unwritten sectors read as zeros). */
class MapDisk {
  readonly sectors = new Map<number, Uint8Array>()
  write(offset: number, data: Uint8Array): void {
    for (let at = 0; at < data.length; at += SECTOR) this.sectors.set((offset + at) / SECTOR, data.slice(at, at + SECTOR))
  }
  read(offset: number, into: Uint8Array): void {
    for (let at = 0; at < into.length; at += SECTOR) {
      const s = this.sectors.get((offset + at) / SECTOR)
      if (s === undefined) into.fill(0, at, at + SECTOR)
      else into.set(s, at)
    }
  }
}

type Completion = 'sync' | 'async' | 'mixed'

interface Submitted {
  op: GeneratorOp
  offset: number
  length: number
}

interface Hooks {
  /** Called with a write before it is stored; may change what is stored or where. */
  onWrite?: (offset: number, data: Uint8Array, disk: MapDisk) => { offset: number; data: Uint8Array } | null
  /** Called after a read filled its buffer. */
  onRead?: (offset: number, data: Uint8Array, disk: MapDisk) => void
  /** An error to complete the I/O with instead of carrying it out. */
  fail?: (op: GeneratorOp, offset: number) => string | null
}

/** Runs a generator against a MapDisk, completing I/Os inline, later, or a mix of both. */
async function drive(options: GeneratorOptions, completion: Completion, disk = new MapDisk(), hooks: Hooks = {}) {
  const log: Submitted[] = []
  let inflight = 0
  let maxInflight = 0
  let pending: { op: GeneratorOp; offset: number; data: Uint8Array; tag: number }[] = []
  let scheduled = false
  const order = new Xoshiro128(99)
  let gen: IoGenerator
  const carryOut = (op: GeneratorOp, offset: number, data: Uint8Array, tag: number): void => {
    inflight--
    const err = hooks.fail?.(op, offset) ?? null
    if (err === null) {
      if (op === 'write') {
        const w = hooks.onWrite ? hooks.onWrite(offset, data, disk) : { offset, data }
        if (w !== null) disk.write(w.offset, w.data)
      } else {
        disk.read(offset, data)
        hooks.onRead?.(offset, data, disk)
      }
    }
    gen.complete(tag, err)
  }
  const flush = (): void => {
    scheduled = false
    const batch = pending
    pending = []
    // A drive with command queueing: completions in a seeded random order.
    for (let i = batch.length - 1; i > 0; i--) {
      const j = order.below(i + 1)
      ;[batch[i], batch[j]] = [batch[j]!, batch[i]!]
    }
    for (const p of batch) carryOut(p.op, p.offset, p.data, p.tag)
  }
  const submit = (op: GeneratorOp, offset: number, length: number, data: Uint8Array, tag: number): void => {
    assert.equal(data.length, length)
    log.push({ op, offset, length })
    inflight++
    if (inflight > maxInflight) maxInflight = inflight
    const now = completion === 'sync' || (completion === 'mixed' && order.next() & 1)
    if (now) {
      carryOut(op, offset, data, tag)
      return
    }
    pending.push({ op, offset, data, tag })
    if (!scheduled) {
      scheduled = true
      setImmediate(flush)
    }
  }
  gen = new IoGenerator(options, submit)
  const result = await gen.run()
  return { result, log, maxInflight, disk }
}

const base: GeneratorOptions = { rw: 'randread', capacity: 4 * MiB, size: MiB, bs: 4096, iodepth: 8 }

function verifyFailed(r: GeneratorResult): Extract<GeneratorResult, { status: 'verify-failed' }> {
  assert.equal(r.status, 'verify-failed', `expected a verify failure, got ${r.status}`)
  return r as Extract<GeneratorResult, { status: 'verify-failed' }>
}

test('write-only verify reads everything back and passes on an honest disk', async () => {
  for (const verify of ['crc32c', 'md5'] as const) {
    const { result } = await drive({ ...base, rw: 'randwrite', verify }, 'async')
    assert.equal(result.status, 'ok')
    assert.equal(result.write.totalIos, 256)
    assert.equal(result.read.totalIos, 256, 'the verify pass reads are reported as reads, as fio does')
    assert.deepEqual(result.verify && [result.verify.kind, result.verify.chunkBytes, result.verify.checkedChunks, result.verify.failures], [verify, 4096, 256, 0])
  }
})

test('verify finds an injected corruption and names its offset, expected and found', async () => {
  const target = 256 * KiB
  for (const verify of ['crc32c', 'md5'] as const) {
    const { result } = await drive({ ...base, rw: 'randwrite', verify }, 'async', new MapDisk(), {
      onWrite: (offset, data) => {
        if (offset !== target) return { offset, data }
        const bad = data.slice()
        bad[1000]! ^= 0x40
        return { offset, data: bad }
      },
    })
    const r = verifyFailed(result)
    assert.equal(r.failure.offset, target)
    assert.equal(r.failure.field, 'checksum')
    assert.notEqual(r.failure.expected, r.failure.found)
    assert.match(r.message, new RegExp(`offset ${target} .*expected \\S+, found \\S+`))
    assert.equal(r.verify!.failures, 1)
  }
})

test('verify tells stale data (a lost overwrite) from data of another block', async () => {
  const target = 64 * KiB
  let writes = 0
  const stale = await drive({ ...base, rw: 'randwrite', verify: 'crc32c', loops: 2 }, 'sync', new MapDisk(), {
    onWrite: (offset, data) => (offset === target && ++writes === 2 ? null : { offset, data }),
  })
  const s = verifyFailed(stale.result)
  assert.equal(s.failure.offset, target)
  assert.equal(s.failure.field, 'generation')
  assert.ok(Number(s.failure.found) < Number(s.failure.expected))
  assert.match(s.message, /stale data/)

  const misplaced = await drive({ ...base, rw: 'randwrite', verify: 'crc32c' }, 'sync', new MapDisk(), {
    onRead: (offset, data, disk) => {
      if (offset === target) disk.read(target + 4096, data)
    },
  })
  const m = verifyFailed(misplaced.result)
  assert.equal(m.failure.field, 'offset')
  assert.deepEqual([m.failure.offset, m.failure.expected, m.failure.found], [target, String(target), String(target + 4096)])
})

test('mixed jobs verify their reads of blocks written earlier in the run', async () => {
  const mixed: GeneratorOptions = { ...base, rw: 'randrw', size: 64 * 4096, ioSize: 40 * 64 * 4096, verify: 'crc32c', iodepth: 4 }
  const clean = await drive(mixed, 'mixed')
  assert.equal(clean.result.status, 'ok')
  assert.ok(clean.result.verify!.checkedChunks > 100)
  const target = 10 * 4096
  const { result } = await drive(mixed, 'mixed', new MapDisk(), {
    onWrite: (offset, data) => (offset === target ? { offset, data: new Uint8Array(data.length) } : { offset, data }),
  })
  const r = verifyFailed(result)
  assert.equal(r.failure.offset, target)
  assert.equal(r.failure.field, 'magic')
})

test('a read-only verify job checks what an earlier job wrote', async () => {
  const disk = new MapDisk()
  const write = await drive({ ...base, rw: 'write', verify: 'crc32c', doVerify: false, seed: 5 }, 'async', disk)
  assert.equal(write.result.status, 'ok')
  assert.equal(write.result.read.totalIos, 0, 'do_verify=0: no verify pass')
  const read = await drive({ ...base, rw: 'randread', verify: 'crc32c', seed: 6 }, 'async', disk)
  assert.equal(read.result.status, 'ok')
  assert.equal(read.result.verify!.checkedChunks, 256)
  disk.write(12 * 4096, new Uint8Array(4096))
  const r = verifyFailed((await drive({ ...base, rw: 'randread', verify: 'crc32c', seed: 6 }, 'async', disk)).result)
  assert.equal(r.failure.offset, 12 * 4096)
})

test('random offsets are reproducible for a seed and differ across seeds', async () => {
  const run = async (seed: number) => (await drive({ ...base, rw: 'randrw', seed }, 'sync')).log.map((s) => `${s.op}@${s.offset}`)
  const a = await run(1)
  assert.deepEqual(await run(1), a)
  const b = await run(2)
  assert.notDeepEqual(b, a)
  assert.deepEqual([...b.map((x) => x.split('@')[1])].sort(), [...a.map((x) => x.split('@')[1])].sort(), 'the same blocks, in another order')
})

test('the random map visits every block of the region exactly once per pass', async () => {
  const { log, result } = await drive({ ...base, offset: 64 * KiB }, 'async')
  const offsets = log.map((s) => s.offset)
  assert.equal(offsets.length, 256)
  assert.equal(new Set(offsets).size, 256)
  assert.ok(offsets.every((o) => o >= 64 * KiB && o < 64 * KiB + MiB && o % 4096 === 0))
  assert.equal(result.read.ioBytes, MiB)
  const two = await drive({ ...base, loops: 2 }, 'sync')
  assert.equal(two.log.length, 512)
  assert.equal(new Set(two.log.slice(256).map((s) => s.offset)).size, 256)
  assert.notDeepEqual(two.log.slice(0, 256), two.log.slice(256), 'each pass draws a new order')
})

test('norandommap lets random offsets repeat, aligned to the block size', async () => {
  const { log } = await drive({ ...base, norandommap: true, bs: 8192 }, 'sync')
  const offsets = log.map((s) => s.offset)
  assert.equal(offsets.length, 128)
  assert.ok(offsets.every((o) => o % 8192 === 0 && o + 8192 <= MiB))
  assert.ok(new Set(offsets).size < offsets.length, 'some offsets repeat')
})

test('sequential jobs walk the region and wrap for another loop', async () => {
  const { log } = await drive({ ...base, rw: 'write', size: 64 * KiB, bs: 16 * KiB, loops: 2 }, 'sync')
  assert.deepEqual(log.map((s) => s.offset / KiB), [0, 16, 32, 48, 0, 16, 32, 48])
  const rw = await drive({ ...base, rw: 'rw', size: 64 * KiB, bs: 16 * KiB, rwmixread: 50 }, 'sync')
  for (const op of ['read', 'write'] as const) {
    const mine = rw.log.filter((s) => s.op === op).map((s) => s.offset / KiB)
    assert.deepEqual(mine, [0, 16, 32, 48].slice(0, mine.length), `${op}s go on from their own position`)
  }
})

test('queue depth is honoured with asynchronous, synchronous and mixed completion', async () => {
  const opts: GeneratorOptions = { ...base, rw: 'randrw', iodepth: 16 }
  const asyncRun = await drive(opts, 'async')
  assert.equal(asyncRun.maxInflight, 16)
  assert.equal(asyncRun.result.maxInflight, 16)
  const mixedRun = await drive({ ...opts, ioSize: 8 * MiB }, 'mixed')
  assert.equal(mixedRun.maxInflight, 16)
  assert.equal(mixedRun.result.read.totalIos + mixedRun.result.write.totalIos, 2048)
  // Completing inside submit never nests: 200k I/Os would overflow the stack if it did.
  const syncRun = await drive({ ...opts, capacity: 64 * MiB, size: 64 * MiB, numberIos: 200_000, ioSize: 2 ** 40 }, 'sync')
  assert.equal(syncRun.maxInflight, 1)
  assert.equal(syncRun.result.read.totalIos + syncRun.result.write.totalIos, 200_000)
})

test('rwmixread sets the share of reads; bssplit and bsrange set the sizes', async () => {
  const { result } = await drive({ ...base, rw: 'randrw', rwmixread: 70, size: 64 * MiB, capacity: 64 * MiB, numberIos: 20_000 }, 'sync')
  const share = result.read.totalIos / (result.read.totalIos + result.write.totalIos)
  assert.ok(share > 0.68 && share < 0.72, String(share))

  // the weights (norandommap: with the random map an I/O that meets a block already covered in
  // the pass is cut short, as fio's, so other multiples of 4 KiB appear)
  const split = await drive({ ...base, rw: 'randwrite', bssplit: [{ bs: 4096, pct: 50 }, { bs: 65536, pct: 50 }], size: 64 * MiB, capacity: 64 * MiB, numberIos: 10_000, norandommap: true }, 'sync')
  const lens = split.log.map((s) => s.length)
  assert.ok(lens.every((l) => l === 4096 || l === 65536))
  const small = lens.filter((l) => l === 4096).length / lens.length
  assert.ok(small > 0.47 && small < 0.53, String(small))
  const mapped = await drive({ ...base, rw: 'randwrite', bssplit: [{ bs: 4096, pct: 50 }, { bs: 65536, pct: 50 }], size: 4 * MiB, capacity: 4 * MiB, numberIos: 4_000 }, 'sync')
  assert.ok(mapped.log.every((s) => s.length % 4096 === 0 && s.length <= 65536 && s.offset % 4096 === 0))

  const range = await drive({ ...base, bs: { read: { kind: 'range', min: 4096, max: 16384 }, write: { kind: 'fixed', bs: 4096 } } }, 'sync')
  assert.deepEqual([...new Set(range.log.map((s) => s.length))].sort(), [12288, 16384, 4096, 8192].sort())
})

test('an I/O error ends the job and is reported with its offset', async () => {
  const target = 128 * KiB
  let after = 0
  let failed = false
  const { result } = await drive({ ...base, rw: 'randwrite' }, 'sync', new MapDisk(), {
    fail: (op, offset) => {
      if (failed) after++
      if (op === 'write' && offset === target) {
        failed = true
        return 'EIO'
      }
      return null
    },
  })
  assert.equal(result.status, 'io-error')
  if (result.status !== 'io-error') return
  assert.deepEqual(result.error, { op: 'write', offset: target, length: 4096, error: 'EIO' })
  assert.equal(result.write.errors, 1)
  assert.equal(after, 0, 'nothing is issued after the failure')
  assert.match(result.message, /write of 4096 bytes at offset 131072 failed with EIO/)
})

test('time-based jobs keep going past the size; ramp time is left out of the statistics', async () => {
  const { result, log } = await drive({ ...base, rw: 'randwrite', size: 64 * KiB, timeBased: true, runtimeMs: 300, rampMs: 100 }, 'async')
  assert.equal(result.status, 'ok')
  assert.ok(log.length > 16, 'more than one pass over 16 blocks')
  assert.ok(result.write.totalIos < log.length, 'I/Os completed during the ramp are not counted')
  assert.equal(result.write.latency.n, result.write.totalIos)
})

test('a saturating job on a synchronous disk hands the thread back to its event loop with no I/O held in flight', async () => {
  let gen: IoGenerator
  gen = new IoGenerator({ ...base, timeBased: true, runtimeMs: 800 }, (_op, _off, _len, _data, tag) => gen.complete(tag, null), undefined, 5)
  // what else the thread has to do (a watchdog's ping): it runs whenever the loop gets a turn
  let turns = 0
  const inFlightAtTurns = new Set<number>()
  let alive = true
  const other = () => {
    turns++
    inFlightAtTurns.add(gen.inFlight)
    // one long turn: the I/O issued after it starts after it, so no latency includes it
    if (turns === 2) for (const until = performance.now() + 100; performance.now() < until;) { /* busy */ }
    if (alive) setImmediate(other)
  }
  setImmediate(other)
  const result = await gen.run()
  alive = false
  assert.equal(result.status, 'ok')
  assert.ok(turns >= 3, `the event loop got ${turns} turns during the run`)
  assert.deepEqual([...inFlightAtTurns], [0], 'issuing pauses between I/Os: no I/O waits out a turn')
  assert.ok(result.read.totalIos > 1000)
  assert.ok(result.read.latency.maxNs < 50e6, `no I/O's latency includes the 100 ms turn (max ${result.read.latency.maxNs} ns)`)
  // without yieldEveryMs the same job keeps the thread for the whole run
  let turnsWithout = 0
  const g2: IoGenerator = new IoGenerator({ ...base, timeBased: true, runtimeMs: 50 }, (_op, _off, _len, _data, tag) => g2.complete(tag, null))
  setImmediate(() => turnsWithout++)
  const started = g2.run()
  assert.equal(turnsWithout, 0)
  await started
  assert.equal(turnsWithout, 0, 'no turn until the run is over')
})

test('stop() ends a run early; stray completions are counted, not fatal', async () => {
  let gen: IoGenerator
  const held: number[] = []
  gen = new IoGenerator({ ...base, timeBased: true, runtimeMs: 60_000 }, (_op, _off, _len, _data, tag) => {
    held.push(tag)
  })
  const done = gen.run()
  assert.equal(gen.inFlight, 8)
  gen.complete(held.shift()!, null)
  gen.complete(1234, null)
  gen.stop()
  while (held.length > 0) gen.complete(held.shift()!, null)
  const result = await done
  assert.equal(result.status, 'ok')
  assert.equal(result.spuriousCompletions, 1)
  assert.equal(result.read.totalIos, 9, 'the first completion was replaced before stop()')
})

test('a submit function that throws rejects the run', async () => {
  const gen = new IoGenerator(base, () => {
    throw new Error('disk closed')
  })
  await assert.rejects(gen.run(), /disk closed/)
})

test('options that cannot run are refused at construction', () => {
  const refused = (o: GeneratorOptions, re: RegExp): void => {
    assert.throws(() => new IoGenerator(o, () => {}), (e: unknown) => e instanceof BenchError && e.code === BenchErrorCode.GeneratorOptions && re.test(e.message))
  }
  refused({ ...base, offset: 3.5 * MiB }, /ends beyond the disk/)
  refused({ ...base, timeBased: true }, /timeBased needs runtimeMs/)
  refused({ ...base, bs: 2 * MiB }, /larger than the region/)
  refused({ ...base, iodepth: 0 }, /iodepth = 0/)
  refused({ ...base, rw: 'randwrite', verify: 'crc32c', bs: { read: { kind: 'fixed', bs: 4096 }, write: { kind: 'split', entries: [{ bs: 4096, pct: 50 }, { bs: 6144, pct: 50 }] } } }, /multiple of the smallest/)
})

test('generatorOptionsFor places each copy of a job at its own offset with its own seed', () => {
  const [spec] = parseJobText('[job]\nrw=randwrite\nsize=1m\noffset=1m\noffset_increment=2m\nnumjobs=3\n', { file: 'j.fio', env: {} })
  const copies = [0, 1, 2].map((clone) => generatorOptionsFor(spec!, { capacity: 16 * MiB, clone }))
  assert.deepEqual(copies.map((c) => c.offset), [MiB, 3 * MiB, 5 * MiB])
  assert.equal(new Set(copies.map((c) => c.seed)).size, 3)
  assert.equal(copies[0]!.seed, 0x89, "fio's default seed for the first copy")
  const [unseeded] = parseJobText('[job]\nrandrepeat=0\n', { file: 'j.fio', env: {} })
  assert.equal(generatorOptionsFor(unseeded!, { capacity: MiB }).randrepeat, false)
  assert.equal(generatorOptionsFor(unseeded!, { capacity: MiB, runSeed: 7 }).seed, 7)
  const [whole] = parseJobText('[job]\noffset=1m\n', { file: 'j.fio', env: {} })
  assert.equal(generatorOptionsFor(whole!, { capacity: 4 * MiB }).size, 3 * MiB, 'no size: to the end of the disk')
})
