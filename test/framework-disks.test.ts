import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import { bytes, passthroughVm, withCluster } from './helpers/cluster.js'

const GiB = 1024 ** 3
const MiB = 1 << 20

test('sparse 10 GiB disks, memory and file, cost a few MiB', async () => {
  await withCluster({}, async c => {
    const h = c.host('esx1')
    const vm = h.createVm('vm1')
    await h.addDisk('vm1', { id: 'm', capacity: 10 * GiB, backing: 'memory' })
    await h.addDisk('vm1', { id: 'f', capacity: 10 * GiB, backing: 'file' })
    const rss0 = process.memoryUsage().rss
    await vm.powerOn()
    const offsets = [0, 3 * GiB, 7 * GiB + 4096, 10 * GiB - 4096]
    for (const [i, o] of offsets.entries()) {
      await vm.write('m', o, bytes(i, 4096))
      await vm.write('f', o, bytes(i, 4096))
    }
    for (const [i, o] of offsets.entries()) {
      assert.deepEqual(await vm.read('m', o, 4096), bytes(i, 4096))
      assert.deepEqual(await vm.read('f', o, 4096), bytes(i, 4096))
    }
    // unwritten ranges read zeros
    assert.ok((await vm.read('m', 5 * GiB, 65536)).every(b => b === 0))
    assert.ok((await vm.read('f', 5 * GiB, 65536)).every(b => b === 0))
    assert.ok(vm.memoryDiskBytes() <= 4 * 4096, `memory disk holds ${vm.memoryDiskBytes()} bytes`)
    const st = fs.statSync(c.diskImagePath('f'))
    assert.equal(st.size, 10 * GiB)
    assert.ok(st.blocks * 512 < 8 * MiB, `image file uses ${st.blocks * 512} bytes on disk`)
    await vm.powerOff()
    assert.ok(process.memoryUsage().rss - rss0 < 200 * MiB)
  })
})

test('vmwarevmcrypt round-trips while the disk image holds only ciphertext, across power cycles', async () => {
  await withCluster({}, async c => {
    const h = c.host('esx1')
    c.createPolicy({ name: 'enc', rules: [{ filter: 'vmwarevmcrypt@ENCRYPTION' }] })
    const vm = h.createVm('vm1')
    await h.addDisk('vm1', { id: 'd', capacity: 16 * MiB, policy: 'enc', backing: 'file' })
    await vm.powerOn()
    const plain = new Uint8Array(65536).fill(0x41)
    await vm.write('d', 4096, plain)
    assert.deepEqual(await vm.read('d', 4096, 65536), plain)
    await vm.powerOff()
    const raw = fs.readFileSync(c.diskImagePath('d')).subarray(4096, 4096 + 65536)
    assert.equal(raw.includes(Buffer.from('AAAAAAAA')), false, 'plaintext reached the disk image')
    // identical plaintext sectors encrypt differently (the tweak is the sector number)
    assert.notDeepEqual(raw.subarray(0, 512), raw.subarray(512, 1024))
    await vm.powerOn()
    assert.deepEqual(await vm.read('d', 4096, 65536), plain)
    // unwritten sectors still read as zeros through the decryption
    assert.ok((await vm.read('d', 8 * MiB, 4096)).every(b => b === 0))
    await vm.unmap('d', 4096, 4096)
    assert.ok((await vm.read('d', 4096, 4096)).every(b => b === 0))
  })
})

test('a host crash loses unflushed writes and keeps flushed ones; a VM crash loses nothing', async () => {
  await withCluster({}, async c => {
    const h = c.host('esx1')
    const vm = h.createVm('vm1')
    await h.addDisk('vm1', { id: 'm', capacity: 16 * MiB })
    await h.addDisk('vm1', { id: 'f', capacity: 16 * MiB, backing: 'file' })
    await vm.powerOn()
    for (const d of ['m', 'f']) {
      await vm.write(d, 0, bytes(1, 8192))
      await vm.flush(d)
      await vm.write(d, 0, bytes(2, 4096)) // overwrites flushed data, not flushed itself
      await vm.write(d, MiB, bytes(3, 4096)) // new, not flushed
    }
    // a VM crash: the drives keep power
    await vm.crash()
    await new Promise(r => setTimeout(r, 50))
    assert.equal(vm.state, 'off')
    await vm.powerOn()
    for (const d of ['m', 'f']) {
      assert.deepEqual(await vm.read(d, 0, 4096), bytes(2, 4096))
      await vm.write(d, 2 * MiB, bytes(4, 4096))
      await vm.flush(d)
      await vm.write(d, 2 * MiB, bytes(5, 4096))
    }
    const lost = await c.crashHost('esx1')
    assert.ok(lost >= 16, `only ${lost} sectors lost`)
    const h2 = await c.restartHost('esx1', { powerOnVms: true })
    const vm2 = h2.vm('vm1')
    assert.equal(vm2.state, 'on')
    for (const d of ['m', 'f']) {
      assert.deepEqual(await vm2.read(d, 0, 4096), bytes(2, 4096), `${d}: flushed before the crash`)
      assert.deepEqual(await vm2.read(d, 2 * MiB, 4096), bytes(4, 4096), `${d}: the unflushed overwrite is lost`)
    }
  })
})

test('snapshot under I/O yields a quiesced image', async () => {
  await withCluster({}, async c => {
    const vm = await passthroughVm(c, 'vm1', 'd', 16 * MiB)
    // sequential generations: block i holds generation g; at any instant the image is a prefix
    const writes = Array.from({ length: 600 }, (_, i) => ({ op: 'write' as const, offset: (i % 200) * 4096, data: new Uint8Array(4096).fill(1 + Math.floor(i / 200)) }))
    const work = (async () => { for (const w of writes) await vm.submit('d', w) })()
    await new Promise(r => setTimeout(r, 30))
    const snap = await vm.snapshot('d')
    await work
    const gens = Array.from({ length: 200 }, (_, i) => snap.read(i * 4096, 4096)[0]!)
    // a QD1 sequential stream: generations are non-increasing along the blocks, with at most one step
    let steps = 0
    for (let i = 1; i < gens.length; i++) {
      assert.ok(gens[i]! <= gens[i - 1]!, `block ${i} is newer than block ${i - 1}`)
      if (gens[i] !== gens[i - 1]) steps++
    }
    assert.ok(steps <= 1)
    assert.deepEqual(await vm.read('d', 0, 4096), new Uint8Array(4096).fill(3))
  })
})

test('a drive fault injected under the filters reaches the guest as that error', async () => {
  await withCluster({}, async c => {
    const h = c.host('esx1')
    const vm = h.createVm('vm1')
    await h.addDisk('vm1', { id: 'd', capacity: 16 * MiB })
    await vm.powerOn()
    for (const error of ['EIO', 'ENOSPC'] as const) {
      await vm.injectFault('d', { ops: ['write'], error })
      const r = await vm.submit('d', { op: 'write', offset: 0, data: bytes(1, 4096) })
      assert.equal(!r.ok && r.error, error)
    }
    await vm.injectFault('d', { ops: ['write'], torn: true, error: 'EIO', count: 1 })
    const r = await vm.submit('d', { op: 'write', offset: 0, data: bytes(9, 8192) })
    assert.equal(!r.ok && r.error, 'EIO')
    const got = await vm.read('d', 0, 8192)
    assert.deepEqual(got.subarray(0, 4096), bytes(9, 8192).subarray(0, 4096), 'the torn write applied its first half')
    await vm.injectFault('d', { delayMs: 100 })
    const slow = await vm.submit('d', { op: 'read', offset: 0, length: 4096 })
    assert.ok(slow.ms >= 90)
  })
})
