/**
 * The memory disk's store: blocks in shared WebAssembly memories (copied with memmove when the
 * I/O buffer lies in the disk's own memory), a main-thread copy of the index kept by updates, and
 * the null device.
 */
import assert from 'node:assert/strict'
import test from 'node:test'
import { applyMemoryUpdate, MemoryStore, newMemoryImage, NullStore, readMemoryImage, writeMemoryImage, type MemoryImage } from '../harness/framework/store.js'
import { bytes } from './helpers/cluster.js'

/** A store over `img` whose updates reach the image when `sync()` of the pair is called. */
function pair(img: MemoryImage): { store: MemoryStore; sync: () => void } {
  let store: MemoryStore
  const sync = () => {
    const u = store.takeUpdate()
    if (u !== null) applyMemoryUpdate(img, structuredClone(u))
  }
  store = new MemoryStore(img, () => {})
  return { store, sync }
}

test('data moves the same between plain buffers and the disk\'s own I/O buffers', () => {
  const img = newMemoryImage()
  const { store, sync } = pair(img)
  const io = store.ioBuffer(64 * 1024)
  const a = bytes(1, 64 * 1024)
  const b = bytes(2, 8192)
  io.set(a)
  store.write(0, io) // from the disk's memory: memmove
  store.write(1 << 20, b) // from plain memory
  store.write(4096 + 512, bytes(3, 1024)) // partial block, from plain memory
  const plain = new Uint8Array(64 * 1024)
  store.read(0, plain)
  const expect = a.slice()
  expect.set(bytes(3, 1024), 4096 + 512)
  assert.deepEqual(plain, expect)
  const io2 = store.ioBuffer(8192)
  store.read(1 << 20, io2)
  assert.deepEqual(io2, b)
  // unwritten ranges read as zeros into either kind of buffer
  io2.fill(0xee)
  store.read(2 << 20, io2)
  assert.ok(io2.every(x => x === 0))
  const part = new Uint8Array(4096).fill(0xee)
  store.read(3 << 20, part)
  assert.ok(part.every(x => x === 0))
  // the main thread's copy sees exactly the written blocks
  sync()
  assert.equal(img.index.size, 16 + 2)
  assert.deepEqual(readMemoryImage(img, 0, 64 * 1024), expect)
  assert.deepEqual(readMemoryImage(img, 1 << 20, 8192), b)
})

test('a block reused after unmap, or taken from an I/O buffer, starts from zeros for a partial write', () => {
  const img = newMemoryImage()
  const { store, sync } = pair(img)
  const io = store.ioBuffer(4096)
  io.fill(0x5a)
  store.write(0, bytes(4, 4096))
  store.zero(0, 4096) // whole block: back to the free list
  store.write(8192, new Uint8Array(512).fill(7)) // reuses the freed slot
  const out = new Uint8Array(4096)
  store.read(8192, out)
  assert.ok(out.subarray(0, 512).every(x => x === 7))
  assert.ok(out.subarray(512).every(x => x === 0), 'the rest of the reused block is zeros')
  // closing gives the I/O buffer's block back; a new store over the image reuses it zeroed
  store.close()
  sync()
  const { store: again } = pair(img)
  again.write(1 << 20, new Uint8Array(512).fill(9))
  const got = new Uint8Array(4096)
  again.read(1 << 20, got)
  assert.ok(got.subarray(0, 512).every(x => x === 9))
  assert.ok(got.subarray(512).every(x => x === 0))
  assert.deepEqual(readMemoryImage(img, 8192, 512), new Uint8Array(512).fill(7))
})

test('disks grow their memory as blocks are written and keep every byte across a reopen', () => {
  const img = newMemoryImage()
  const { store, sync } = pair(img)
  // 40 MiB written in 1 MiB pieces, spread over a 1 GiB range: several grows of the memory
  const piece = (i: number) => bytes(100 + i, 1 << 20)
  for (let i = 0; i < 40; i++) store.write(i * 25 * (1 << 20), piece(i))
  sync()
  assert.equal(img.index.size, 40 * 256)
  const reopened = new MemoryStore(img, () => {})
  for (const i of [0, 17, 39]) {
    const out = new Uint8Array(1 << 20)
    reopened.read(i * 25 * (1 << 20), out)
    assert.deepEqual(out, piece(i))
  }
  const snap = reopened.copy()
  assert.equal(snap.pairs.length / 2, 40 * 256)
})

test('the main thread writes into an image whose worker is gone (a power cut replayed)', () => {
  const img = newMemoryImage()
  const { store, sync } = pair(img)
  store.write(0, bytes(5, 8192))
  sync()
  writeMemoryImage(img, 4096, bytes(6, 4096)) // an existing block
  writeMemoryImage(img, 1 << 30, bytes(7, 4096)) // a new one, past anything the worker used
  writeMemoryImage(img, 2 << 30, new Uint8Array(4096)) // zeros over a hole: nothing allocated
  assert.equal(img.index.size, 3)
  const next = new MemoryStore(img, () => {})
  const out = new Uint8Array(8192)
  next.read(0, out)
  assert.deepEqual(out.subarray(0, 4096), bytes(5, 8192).subarray(0, 4096))
  assert.deepEqual(out.subarray(4096), bytes(6, 4096))
  const far = new Uint8Array(4096)
  next.read(1 << 30, far)
  assert.deepEqual(far, bytes(7, 4096))
  // a block the worker allocates next does not land on the main thread's
  next.write(3 << 30, bytes(8, 4096))
  next.read(1 << 30, far)
  assert.deepEqual(far, bytes(7, 4096))
})

test('the null device keeps nothing and transfers nothing', () => {
  const s = new NullStore()
  const buf = new Uint8Array(4096).fill(3)
  s.write(0, bytes(9, 4096))
  s.read(0, buf)
  assert.ok(buf.every(x => x === 3), 'a read leaves the buffer as it was')
  assert.equal(s.isHole(), true)
  assert.deepEqual(s.copy().pairs, [])
})
