/**
 * The I/O objects a filter is handed, with real VM workers: nothing a filter writes on its `io` or
 * calls on it reaches the path's bookkeeping (the completion callback, the submitter's tag, the
 * request's state, what the drive is told), a handler's result that settles twice counts once and
 * is recorded as the filter's fault, and the data buffers a filter sees have the same shape
 * whether a guest or a benchmark issued the I/O (so a filter cannot behave only when measured).
 */
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { GeneratorResult } from '../harness/bench/generator.js'
import type { InWorkerTask, PacedResult } from '../harness/bench/in-worker.js'
import { Cluster, type Vm } from '../harness/framework/index.js'
import type { DiskBacking } from '../harness/framework/vm.js'
import { bytes } from './helpers/cluster.js'

const MiB = 1 << 20
const CAPACITY = 64 * MiB
const IN_WORKER = new URL('../harness/bench/in-worker.js', import.meta.url).href

let tmp: string
before(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-sandbox-io-')) })
after(() => { fs.rmSync(tmp, { recursive: true, force: true }) })

/** Writes a one-file filter module and returns its path. */
function filterFile(name: string, source: string): string {
  const dir = path.join(tmp, name)
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(path.join(dir, 'filter.js'), source)
  return path.join(dir, 'filter.js')
}

/** A VM `vmName` whose disks (one per backing given) carry the filter `filterName`. */
async function vmWith(c: Cluster, vmName: string, entry: string, filterName: string, backings: readonly DiskBacking[]): Promise<{ vm: Vm; disks: string[] }> {
  const h = c.host('esx1')
  await c.installModule(entry)
  c.createPolicy({ name: `p-${vmName}`, rules: [{ filter: `${filterName}@CACHE` }] })
  const vm = h.createVm(vmName)
  const disks: string[] = []
  for (const [i, backing] of backings.entries()) {
    const id = `${vmName}-d${i}`
    await h.addDisk(vmName, { id, capacity: CAPACITY, backing, policy: `p-${vmName}` })
    disks.push(id)
  }
  await vm.powerOn()
  return { vm, disks }
}

/** `n` I/Os of a 4k random 70/30 mix at queue depth 8, by the bench generator inside the VM's worker. */
function generatorRun(vm: Vm, disk: string, n: number): Promise<GeneratorResult> {
  return vm.runInWorker<GeneratorResult>(disk, IN_WORKER, {
    kind: 'job',
    options: { rw: 'randrw', rwmixread: 70, bs: 4096, iodepth: 8, capacity: CAPACITY, numberIos: n, norandommap: true, seed: 7 },
  } satisfies InWorkerTask)
}

async function logged(vm: Vm, msg: string, count = 1): Promise<Record<string, unknown>[]> {
  for (let i = 0; i < 300 && vm.logs.filter(l => l.msg === msg).length < count; i++) await new Promise(r => setTimeout(r, 10))
  const found = vm.logs.filter(l => l.msg === msg).map(l => l.data as Record<string, unknown>)
  assert.ok(found.length >= count, `expected ${count} "${msg}" log(s) from the filter, got ${found.length}`)
  return found
}

// ---- the request behind io ----

/**
 * Tampers with every I/O through what the request object used to carry: completes it early
 * through its completion callback, re-tags it (another generator slot, another guest request),
 * marks it active again, and moves a write (its offset, its payload, by assignment and by own
 * properties shadowing the getters). Each attempt is tried, and its outcome logged once.
 */
const TAMPER = `
import { PASS } from 'iofcert/sdk'
const outcome = {}
let told = false
function attempt(name, fn) {
  try { fn(); if (!(name in outcome)) outcome[name] = 'no error' } catch (e) { if (!(name in outcome)) outcome[name] = 'refused: ' + e.constructor.name }
}
export default {
  abiVersion: 1, name: 'tamper', vendor: 'TEST', version: '1.0.0', class: 'cache',
  open(ctx) {
    return {
      start(io) {
        attempt('complete it now through _cb', () => io._cb(io, null))
        attempt('re-tag it', () => { io._tag = (io._tag ?? 0) + 1 })
        attempt('mark it active', () => { io._state = 0 })
        if (io.op === 'write') {
          attempt('move it (_offset)', () => { io._offset = 0 })
          attempt('move it (own offset)', () => Object.defineProperty(io, 'offset', { value: 0 }))
          attempt('swap its payload (_data)', () => { io._data = new Uint8Array(io.length).fill(0xee) })
          attempt('swap its payload (own data)', () => Object.defineProperty(io, 'data', { value: new Uint8Array(io.length).fill(0xee) }))
        }
        if (!told && io.op === 'write') { told = true; ctx.log.info('tamper', outcome) }
        return PASS
      },
      done(io) {
        attempt('complete it again in done', () => io._cb(io, null))
      },
    }
  },
}
`

/** start() and done() return thenables that settle more than once (and both ways). */
const TWICE = `
import { PASS } from 'iofcert/sdk'
export default {
  abiVersion: 1, name: 'twice', vendor: 'TEST', version: '1.0.0', class: 'cache',
  open() {
    return {
      start(io) { return { then(ok, bad) { ok(PASS); ok(PASS); bad(new Error('and failed')) } } },
      done(io) { return { then(ok) { ok(); ok() } } },
    }
  },
}
`

describe('nothing a filter does to its io reaches the path\'s bookkeeping', () => {
  it('completing, re-tagging or moving an I/O through its io changes no count and no data, on the guest path and the bench path', { timeout: 120_000 }, async () => {
    const c = await Cluster.create({ ioTimeoutMs: 5_000, classExclusivity: 'disk' })
    try {
      await c.addHost('esx1')
      const { vm, disks: [disk] } = await vmWith(c, 'tamper', filterFile('tamper', TAMPER), 'tamper', ['memory'])

      // guest I/O: each completes once, after the disk did it, with the data where it was written
      const blocks = Array.from({ length: 8 }, (_, k) => ({ offset: (k + 1) * 65536, data: bytes(100 + k, 4096) }))
      for (const b of blocks) await vm.write(disk!, b.offset, b.data)
      for (const b of blocks) assert.deepEqual(await vm.read(disk!, b.offset, 4096), b.data, `block at ${b.offset} reads back as written`)
      assert.deepEqual(await vm.read(disk!, 0, 4096), new Uint8Array(4096), 'no write was moved to offset 0')
      const outcome = (await logged(vm, 'tamper'))[0]!
      assert.equal(outcome['complete it now through _cb'], 'refused: TypeError', JSON.stringify(outcome))

      // the bench generator: every I/O counted once, each one the drive carried out
      const before = await vm.driveStats(disk!)
      const n = 3000
      const r = await generatorRun(vm, disk!, n)
      const after = await vm.driveStats(disk!)
      assert.equal(r.status, 'ok', 'message' in r ? r.message : '')
      assert.equal(r.spuriousCompletions, 0, 'no completion for an I/O not in flight')
      assert.equal(r.read.totalIos + r.write.totalIos, n, 'each I/O counted exactly once')
      assert.equal(r.read.errors + r.write.errors, 0)
      assert.equal(after.reads - before.reads + (after.writes - before.writes), n, 'the drive carried out each counted I/O once')
      assert.deepEqual(vm.faults, [], 'the attempts are the filter\'s own business: no fault, no failed I/O')
    } finally {
      await c.shutdown({ remove: true })
    }
  })

  it('a result that settles twice counts once and is recorded as the filter\'s fault', { timeout: 120_000 }, async () => {
    const c = await Cluster.create({ ioTimeoutMs: 5_000, classExclusivity: 'disk' })
    try {
      await c.addHost('esx1')
      const { vm, disks: [disk] } = await vmWith(c, 'twice', filterFile('twice', TWICE), 'twice', ['memory'])
      const data = bytes(7, 8192)
      await vm.write(disk!, 8192, data)
      assert.deepEqual(await vm.read(disk!, 8192, 8192), data)
      const guestFaults = async (ios: number) => {
        // start's thenable settles twice more (ok, then bad), done's once more: three per I/O
        for (let i = 0; i < 300 && vm.faults.length < 3 * ios; i++) await new Promise(res => setTimeout(res, 10))
        return vm.faults
      }
      const faults = await guestFaults(2)
      assert.equal(faults.length, 6, JSON.stringify(faults.slice(0, 4)))
      for (const f of faults) {
        assert.equal(f.kind, 'double-completion')
        assert.match(f.filter, /twice/)
        assert.match(f.message, /^(start|done)\(\) settled its result more than once/)
      }

      const stats0 = await vm.driveStats(disk!)
      const n = 200
      const r = await generatorRun(vm, disk!, n)
      const stats1 = await vm.driveStats(disk!)
      assert.equal(r.status, 'ok', 'message' in r ? r.message : '')
      assert.equal(r.spuriousCompletions, 0)
      assert.equal(r.read.totalIos + r.write.totalIos, n, 'each I/O counted exactly once')
      assert.equal(stats1.reads - stats0.reads + (stats1.writes - stats0.writes), n, 'each I/O went down to the drive once')
      await guestFaults(2 + n)
      assert.equal(vm.faults.length, 3 * (2 + n))
    } finally {
      await c.shutdown({ remove: true })
    }
  })
})

// ---- the shape of io.data ----

/** Logs each new shape of io.data it sees, with the disk it saw it on. */
const SHAPES = `
import { PASS } from 'iofcert/sdk'
export default {
  abiVersion: 1, name: 'shapes', vendor: 'TEST', version: '1.0.0', class: 'cache',
  open(ctx) {
    const seen = new Set()
    return {
      start(io) {
        const d = io.data
        if (d === null) return PASS
        const b = d.buffer
        const shape = JSON.stringify({
          op: io.op,
          array: Object.prototype.toString.call(d),
          buffer: Object.prototype.toString.call(b),
          shared: typeof SharedArrayBuffer === 'function' && b instanceof SharedArrayBuffer,
          byteOffset: d.byteOffset,
          bufferIsTheData: b.byteLength === d.byteLength && d.byteLength === io.length,
        })
        if (!seen.has(shape)) {
          seen.add(shape)
          ctx.log.info('shape', { disk: ctx.disk, shape })
        }
        return PASS
      },
    }
  },
}
`

describe('a filter cannot tell a benchmark\'s I/O from a guest\'s by its data buffer', () => {
  it('io.data has one shape for guest I/O, the bench generator and the paced load, on memory and null disks', { timeout: 120_000 }, async () => {
    const c = await Cluster.create({ ioTimeoutMs: 5_000, classExclusivity: 'disk' })
    try {
      await c.addHost('esx1')
      const { vm, disks } = await vmWith(c, 'shapes', filterFile('shapes', SHAPES), 'shapes', ['memory', 'memory', 'memory', 'null', 'memory'])
      const [guest, windows, bench, benchNull, paced] = disks as [string, string, string, string, string]

      // guest I/O as the convenience calls make it
      await vm.write(guest, 0, bytes(4, 8192))
      await vm.read(guest, 0, 8192)
      // guest payloads that arrive as a window into a larger buffer: a subarray, a Buffer from Node's pool
      const big = bytes(3, 4 * 4096)
      const pooled = Buffer.from(big.subarray(0, 2048))
      assert.ok(pooled.byteOffset > 0 || pooled.buffer.byteLength > 2048, 'a pooled Buffer')
      await vm.write(windows, 0, big.subarray(4096, 8192))
      await vm.write(windows, 4096, pooled)
      assert.deepEqual(await vm.read(windows, 0, 4096), big.subarray(4096, 8192))
      assert.deepEqual(await vm.read(windows, 4096, 2048), big.subarray(0, 2048))

      // the bench generator (memory and null disks) and the paced load, inside the VM's worker
      for (const d of [bench, benchNull]) {
        const r = await generatorRun(vm, d, 500)
        assert.equal(r.status, 'ok', 'message' in r ? r.message : '')
      }
      const p = await vm.runInWorker<PacedResult>(paced, IN_WORKER, {
        kind: 'paced',
        options: { iops: 2000, seconds: 0.2, bs: 4096, readPct: 50, seed: 5, size: CAPACITY, maxInflight: 8 },
      } satisfies InWorkerTask)
      assert.equal(p.errors, 0)

      await logged(vm, 'shape', 10)
      await new Promise(r => setTimeout(r, 100))
      const shapesOf = (disk: string) => new Set(vm.logs.filter(l => l.msg === 'shape' && (l.data as { disk: string }).disk === disk).map(l => (l.data as { shape: string }).shape))
      const guestShapes = shapesOf(guest)
      assert.deepEqual(shapesOf(bench), guestShapes, 'the bench generator on a memory disk: as a guest\'s')
      assert.deepEqual(shapesOf(benchNull), guestShapes, 'the bench generator on a null disk: as a guest\'s')
      assert.deepEqual(shapesOf(paced), guestShapes, 'the paced load: as a guest\'s')
      assert.deepEqual(shapesOf(windows), guestShapes, 'a guest payload from a window into a larger buffer: as any guest\'s')
      const want = new Set(['read', 'write'].map(op => JSON.stringify({ op, array: '[object Uint8Array]', buffer: '[object ArrayBuffer]', shared: false, byteOffset: 0, bufferIsTheData: true })))
      assert.deepEqual(guestShapes, want, 'the whole of an ArrayBuffer of its own')
    } finally {
      await c.shutdown({ remove: true })
    }
  })

  it('the generator\'s buffers keep their shape with several block sizes and with verification', { timeout: 60_000 }, async () => {
    const c = await Cluster.create({ ioTimeoutMs: 5_000, classExclusivity: 'disk' })
    try {
      await c.addHost('esx1')
      const { vm, disks: [disk] } = await vmWith(c, 'shapes2', filterFile('shapes2', SHAPES.replace("name: 'shapes'", "name: 'shapes2'")), 'shapes2', ['memory'])
      const r = await vm.runInWorker<GeneratorResult>(disk!, IN_WORKER, {
        kind: 'job',
        options: { rw: 'randwrite', bssplit: [{ bs: 4096, pct: 50 }, { bs: 16384, pct: 30 }, { bs: 65536, pct: 20 }], iodepth: 8, capacity: CAPACITY, size: 8 * MiB, verify: 'crc32c', seed: 9 },
      } satisfies InWorkerTask)
      assert.equal(r.status, 'ok', 'message' in r ? r.message : '')
      assert.ok(r.verify !== null && r.verify.checkedChunks > 0 && r.verify.failures === 0, JSON.stringify(r.verify))
      await logged(vm, 'shape', 2)
      const shapes = new Set(vm.logs.filter(l => l.msg === 'shape').map(l => (l.data as { shape: string }).shape))
      const want = new Set(['read', 'write'].map(op => JSON.stringify({ op, array: '[object Uint8Array]', buffer: '[object ArrayBuffer]', shared: false, byteOffset: 0, bufferIsTheData: true })))
      assert.deepEqual(shapes, want)
    } finally {
      await c.shutdown({ remove: true })
    }
  })
})
