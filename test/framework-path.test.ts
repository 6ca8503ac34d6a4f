/**
 * The I/O path of one disk, driven directly: the compiled walk down the chain (one call site per
 * layer) must behave exactly like the general one for every kind of decision, at every layer.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DiskPath, type FaultRecord, type Layer } from '../harness/framework/chain.js'
import { Drive } from '../harness/framework/drive.js'
import { MemoryStore, newMemoryImage } from '../harness/framework/store.js'
import { COMPLETE, PASS, fail, type Decision, type FilterClass, type FilterInstance, type Io, type IoError, type Outcome } from '../harness/sdk/index.js'

const CAP = 1 << 20

interface Rig {
  path: DiskPath
  drive: Drive
  faults: FaultRecord[]
  trace: string[]
  run(op: 'read' | 'write', data?: Uint8Array): Promise<IoError | null>
}

type Handlers = { start?: (io: Io) => Decision | Promise<Decision>; done?: (io: Io, o: Outcome) => void | Promise<void> }

function layer(trace: string[], name: string, h: Handlers, opts: { cls?: FilterClass; transforming?: boolean } = {}): Layer {
  const inst: FilterInstance & { name: string } = { name }
  if (h.start) {
    const s = h.start
    inst.start = function (this: { name: string }, io: Io) {
      trace.push(`start ${this.name}`)
      return s(io)
    }
  }
  if (h.done) {
    const d = h.done
    inst.done = function (this: { name: string }, io: Io, o: Outcome) {
      trace.push(`done ${this.name} ${o.ok ? 'ok' : o.error}`)
      return d(io, o)
    }
  }
  return {
    filterId: `${name}@IOFCERT`, name, cls: opts.cls ?? 'inspection', transforming: opts.transforming ?? false, inst,
    start: inst.start ?? null, done: inst.done ?? null,
  }
}

function rig(make: (trace: string[]) => Layer[]): Rig {
  const trace: string[] = []
  const faults: FaultRecord[] = []
  const drive = new Drive(new MemoryStore(newMemoryImage(), () => {}), null, { capacity: CAP, reorder: null })
  const path = new DiskPath(drive, { disk: 'd0', capacity: CAP, ioTimeoutMs: 2000, onFault: f => faults.push(f) })
  path.layers = make(trace)
  const run = (op: 'read' | 'write', data = new Uint8Array(4096).fill(7)) =>
    new Promise<IoError | null>(res => path.submitGuest(op, 8192, 4096, data, (_r, e) => res(e), 0))
  return { path, drive, faults, trace, run }
}

const pass = (): Decision => PASS

test('every layer passing plainly reaches the disk; layers without start are skipped; this is the instance', async () => {
  const r = rig(t => [layer(t, 'a', { start: pass }), layer(t, 'b', { done: () => {} }), layer(t, 'c', { start: pass, done: () => {} })])
  assert.equal(await r.run('write'), null)
  assert.deepEqual(r.trace, ['start a', 'start c', 'done c ok', 'done b ok'])
  assert.equal(r.drive.stats.writes, 1)
  assert.deepEqual(r.faults, [])
  r.path.stop()
})

test('a throw at any layer fails the I/O with EIO, names that filter, and runs done only above it', async () => {
  for (const at of [0, 1, 2]) {
    const r = rig(t => ['a', 'b', 'c'].map((n, i) => layer(t, n, { start: i === at ? () => { throw new Error('boom') } : pass, done: () => {} })))
    assert.equal(await r.run('read'), 'EIO', `throw at layer ${at}`)
    const names = ['a', 'b', 'c']
    assert.deepEqual(r.trace, [...names.slice(0, at + 1).map(n => `start ${n}`), ...names.slice(0, at).reverse().map(n => `done ${n} EIO`)])
    assert.equal(r.faults.length, 1)
    assert.equal(r.faults[0]!.kind, 'throw')
    assert.equal(r.faults[0]!.filter, `${names[at]}@IOFCERT`)
    assert.match(r.faults[0]!.message, /boom/)
    assert.equal(r.drive.stats.reads, 0)
    r.path.stop()
  }
})

test('complete, fail, an asynchronous pass and a bad decision part way down are handled as in the general walk', async () => {
  const complete = rig(t => [layer(t, 'a', { start: pass, done: () => {} }), layer(t, 'b', { start: () => COMPLETE }), layer(t, 'c', { start: pass })])
  assert.equal(await complete.run('read'), null)
  assert.deepEqual(complete.trace, ['start a', 'start b', 'done a ok'])
  assert.equal(complete.drive.stats.reads, 0)

  const failed = rig(t => [layer(t, 'a', { start: pass }), layer(t, 'b', { start: () => fail('ENOSPC') })])
  assert.equal(await failed.run('write'), 'ENOSPC')
  assert.deepEqual(failed.faults, [])

  const later = rig(t => [layer(t, 'a', { start: async () => PASS }), layer(t, 'b', { start: pass }), layer(t, 'c', { start: async () => PASS })])
  assert.equal(await later.run('write'), null)
  assert.deepEqual(later.trace, ['start a', 'start b', 'start c'])
  assert.equal(later.drive.stats.writes, 1)

  const bad = rig(t => [layer(t, 'a', { start: pass }), layer(t, 'b', { start: () => undefined as unknown as Decision })])
  assert.equal(await bad.run('read'), 'EIO')
  assert.equal(bad.faults[0]!.kind, 'invalid-decision')
  assert.equal(bad.faults[0]!.filter, 'b@IOFCERT')

  const payload = rig(t => [layer(t, 'a', { start: () => ({ kind: 'pass', data: new Uint8Array(4096) }) as Decision })])
  assert.equal(await payload.run('write'), 'EIO')
  assert.equal(payload.faults[0]!.kind, 'violation')
  for (const r of [complete, failed, later, bad, payload]) r.path.stop()
})

test('a payload replaced part way down is written, and the layers above see their own payload on the way up', async () => {
  const seen: number[] = []
  const r = rig(t => [
    layer(t, 'a', { start: pass, done: io => void seen.push(io.data![0]!) }),
    layer(t, 'enc', { start: io => ({ kind: 'pass', data: io.data!.map(b => b ^ 0xff) }) as Decision, done: io => void seen.push(io.data![0]!) }, { cls: 'encryption', transforming: true }),
    layer(t, 'c', { start: pass, done: io => void seen.push(io.data![0]!) }),
  ])
  assert.equal(await r.run('write', new Uint8Array(4096).fill(1)), null)
  const back = new Uint8Array(4096)
  r.drive.store.read(8192, back)
  assert.equal(back[0], 0xfe)
  assert.deepEqual(seen, [0xfe, 1, 1])
  r.path.stop()
})

test('a layer replaced in place takes effect on the next I/O', async () => {
  const r = rig(t => [layer(t, 'a', { start: pass }), layer(t, 'b', { start: pass })])
  await r.run('read')
  r.path.setLayer(1, layer(r.trace, 'b2', { start: () => fail('EBUSY') }))
  assert.equal(await r.run('read'), 'EBUSY')
  r.path.setLayer(1, layer(r.trace, 'b3', {}))
  assert.equal(await r.run('read'), null)
  assert.deepEqual(r.trace, ['start a', 'start b', 'start a', 'start b2', 'start a'])
  r.path.stop()
})
