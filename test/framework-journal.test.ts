import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { Cluster, type Vm } from '../harness/framework/index.js'
import { withCluster } from './helpers/cluster.js'

const MiB = 1 << 20
const KiB4 = 4096
const FRAMEWORK = new URL('../harness/framework/index.js', import.meta.url).href

/**
 * 4 KiB of guest data: the 16-byte head of an entry of the first journal format (epoch u32,
 * sectors u32, first sector f64), over and over, so that it reads as one at any 16-byte boundary.
 */
function headsLike(epoch: number, sectors: number, firstSector: number): Uint8Array {
  const b = new Uint8Array(4096)
  const dv = new DataView(b.buffer)
  for (let at = 0; at < b.length; at += 16) {
    dv.setUint32(at, epoch, true)
    dv.setUint32(at + 4, sectors, true)
    dv.setFloat64(at + 8, firstSector, true)
  }
  return b
}

function fill(byte: number, length = KiB4): Uint8Array {
  return new Uint8Array(length).fill(byte)
}

/** The epoch in a disk's journal header (the u32 after the magic, in both formats). */
function epochOf(c: Cluster, disk: string): number {
  if (disk === 'm') return new DataView(c.memoryJournal(disk)!).getUint32(4, true)
  return fs.readFileSync(`${c.diskImagePath(disk)}.journal`).readUInt32LE(4)
}

/**
 * The guest's side of the attack: flushed data at block 100 and block 5; then sector data shaped
 * like entry heads of the epoch two flushes on (`sectors`, `firstSector`) written and flushed, so
 * that the next overwrite puts it in the journal as a pre-image; that is flushed too, and a single
 * unflushed sector written last makes an entry shorter than the one holding the guest's data:
 * the heads lie right after the newest entry.
 */
async function plantHeads(vm: Vm, disk: string, epoch: () => number, sectors: number, firstSector: number): Promise<void> {
  await vm.write(disk, 100 * KiB4, fill(0x47))
  await vm.write(disk, 5 * KiB4, fill(0x35))
  await vm.flush(disk)
  await vm.write(disk, KiB4, headsLike(epoch() + 2, sectors, firstSector))
  await vm.flush(disk)
  await vm.write(disk, KiB4, fill(0x11))
  await vm.flush(disk)
  await vm.write(disk, 5 * KiB4, fill(0x55, 512))
}

/** What plantHeads flushed, and its unflushed sector lost. */
async function assertPlanted(vm: Vm, disk: string): Promise<void> {
  assert.deepEqual(await vm.read(disk, 100 * KiB4, KiB4), fill(0x47), `${disk}: flushed block 100`)
  assert.deepEqual(await vm.read(disk, KiB4, KiB4), fill(0x11), `${disk}: flushed block 1`)
  assert.deepEqual(await vm.read(disk, 5 * KiB4, KiB4), fill(0x35), `${disk}: the unflushed sector is lost, the flushed block under it kept`)
  assert.deepEqual(await vm.read(disk, 0, KiB4), fill(0), `${disk}: sector 0 untouched`)
}

/**
 * Runs `body` in a process of its own, on a new cluster in `dir` (host esx1, VM vm1 powered on
 * with a 16 MiB file disk `d`), then kills that process with SIGKILL: the files are left as a
 * crash leaves them, journal and all, with nothing replayed.
 */
async function killedAfter(dir: string, body: string): Promise<void> {
  const script = [
    `import * as fs from 'node:fs'`,
    `import { Cluster } from ${JSON.stringify(FRAMEWORK)}`,
    headsLike.toString(),
    fill.toString(),
    plantHeads.toString(),
    `const KiB4 = ${KiB4}`,
    `const c = await Cluster.create({ dir: ${JSON.stringify(dir)}, tempDir: false })`,
    `const h = await c.addHost('esx1')`,
    `const vm = h.createVm('vm1')`,
    `await h.addDisk('vm1', { id: 'd', capacity: ${16 * MiB}, backing: 'file' })`,
    `await vm.powerOn()`,
    `const journal = c.diskImagePath('d') + '.journal'`,
    body,
    `process.stdout.write('ready\\n')`,
    `setInterval(() => {}, 60_000)`,
  ].join('\n')
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stderr.on('data', (b: Buffer) => { err += b.toString() })
  const closed = new Promise<NodeJS.Signals | null>(resolve => child.on('close', (_code, signal) => resolve(signal)))
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString()
      if (out.includes('ready\n')) resolve()
    })
    child.on('close', code => reject(new Error(`the guest process ended (exit ${code}) before it was killed:\n${err}`)))
  })
  child.kill('SIGKILL')
  assert.equal(await closed, 'SIGKILL')
}

/** Opens the cluster a killed process left in `dir`, powers vm1 on and hands it to `fn`. */
async function reopened(dir: string, fn: (vm: Vm) => Promise<void>): Promise<void> {
  const c = await Cluster.open(dir)
  try {
    const vm = c.host('esx1').vm('vm1')
    await vm.powerOn()
    await fn(vm)
  } finally {
    await c.shutdown()
  }
}

async function inTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-journal-'))
  try {
    await fn(path.join(base, 'cluster'))
  } finally {
    fs.rmSync(base, { recursive: true, force: true })
  }
}

/** vm1 on esx1, powered on, with a memory disk `m` and a file-backed disk `f` of 16 MiB. */
async function vmWithBothDisks(c: Cluster): Promise<Vm> {
  const h = c.host('esx1')
  const vm = h.createVm('vm1')
  await h.addDisk('vm1', { id: 'm', capacity: 16 * MiB })
  await h.addDisk('vm1', { id: 'f', capacity: 16 * MiB, backing: 'file' })
  await vm.powerOn()
  return vm
}

test('guest data shaped like entry heads of the current epoch is never replayed: a host crash keeps every flushed sector', async () => {
  await withCluster({}, async c => {
    const vm = await vmWithBothDisks(c)
    // the heads name block 100 (sector 800), 8 sectors, with a pre-image of the guest's bytes
    for (const d of ['m', 'f']) await plantHeads(vm, d, () => epochOf(c, d), 8, 800)
    await c.crashHost('esx1')
    const vm2 = (await c.restartHost('esx1', { powerOnVms: true })).vm('vm1')
    for (const d of ['m', 'f']) await assertPlanted(vm2, d)
  })
})

test('after kill -9, a journal whose tail holds a head with 0xffffffff sectors opens, and the disk reads its flushed data', async () => {
  await inTempDir(async dir => {
    await killedAfter(dir, `await plantHeads(vm, 'd', () => fs.readFileSync(journal).readUInt32LE(4), 0xffffffff, 0)`)
    await reopened(dir, vm => assertPlanted(vm, 'd'))
  })
})

test('after kill -9, a torn last entry is ignored and the entries before it are replayed', async () => {
  await inTempDir(async dir => {
    await killedAfter(dir, `
      await vm.write('d', 10 * KiB4, fill(0x10))
      await vm.write('d', 20 * KiB4, fill(0x20))
      await vm.flush('d')
      await vm.write('d', 10 * KiB4, fill(0xa1))
      await vm.write('d', 20 * KiB4, fill(0xa2))
      // the newest entry, 256 KiB of pre-image, ends the journal file
      await vm.write('d', ${MiB}, fill(0xa3, 256 * 1024))
    `)
    const journal = path.join(dir, 'datastore', 'd', 'disk.img.journal')
    const size = fs.statSync(journal).size
    assert.ok(size > 256 * 1024, `journal of ${size} bytes`)
    // the process died while the newest entry was being written: its last 100 000 bytes never made it
    fs.truncateSync(journal, size - 100_000)
    await reopened(dir, async vm => {
      assert.deepEqual(await vm.read('d', 10 * KiB4, KiB4), fill(0x10), 'the first entry is replayed')
      assert.deepEqual(await vm.read('d', 20 * KiB4, KiB4), fill(0x20), 'the second entry is replayed')
      // a real crash would not have written the image before the entry; here it did, so what
      // the range holds shows whether replay touched it
      assert.deepEqual(await vm.read('d', MiB, 256 * 1024), fill(0xa3, 256 * 1024), 'the torn entry is not applied')
    })
  })
})

test('an entry of an earlier epoch left right after the newest one is not replayed', async () => {
  await withCluster({}, async c => {
    const vm = await vmWithBothDisks(c)
    for (const d of ['m', 'f']) {
      for (const b of [10, 20, 30]) await vm.write(d, b * KiB4, fill(b))
      await vm.flush(d)
      // two entries of 4 KiB pre-images
      await vm.write(d, 10 * KiB4, fill(0xb1))
      await vm.write(d, 20 * KiB4, fill(0xb2))
    }
    // the VM's worker ends without a write-back; its drives kept power, and the disks open again
    await vm.terminate()
    await vm.powerOn()
    // one entry of the same size: the older epoch's second entry lies right after it
    for (const d of ['m', 'f']) await vm.write(d, 30 * KiB4, fill(0xb3))
    await c.crashHost('esx1')
    const vm2 = (await c.restartHost('esx1', { powerOnVms: true })).vm('vm1')
    for (const d of ['m', 'f']) {
      assert.deepEqual(await vm2.read(d, 30 * KiB4, KiB4), fill(30), `${d}: the newest entry is replayed`)
      assert.deepEqual(await vm2.read(d, 20 * KiB4, KiB4), fill(0xb2), `${d}: the older epoch's entry is not`)
      assert.deepEqual(await vm2.read(d, 10 * KiB4, KiB4), fill(0xb1), `${d}: nor the one the newest entry overwrote`)
    }
  })
})

test('a journal of the first format is not replayed: the image keeps its data, a warning names the file, the journal is rewritten', async () => {
  await withCluster({}, async c => {
    const h = c.host('esx1')
    const vm = h.createVm('vm1')
    await h.addDisk('vm1', { id: 'f', capacity: 16 * MiB, backing: 'file' })
    await vm.powerOn()
    await vm.write('f', 7 * KiB4, fill(0x77))
    await vm.powerOff()
    // header (magic 'JRNL', epoch 9) and one entry of epoch 9 whose pre-image zeros block 7
    const journal = `${c.diskImagePath('f')}.journal`
    const old = Buffer.alloc(16 + 16 + KiB4)
    old.writeUInt32LE(0x4a524e4c, 0)
    old.writeUInt32LE(9, 4)
    old.writeUInt32LE(9, 16)
    old.writeUInt32LE(8, 20)
    old.writeDoubleLE(56, 24)
    fs.writeFileSync(journal, old)
    const warnings: Error[] = []
    const onWarning = (w: Error) => { warnings.push(w) }
    process.on('warning', onWarning)
    try {
      assert.equal(await c.crashHost('esx1'), 0, 'no sector rolled back')
      await new Promise(r => setImmediate(r))
    } finally {
      process.off('warning', onWarning)
    }
    assert.equal(warnings.length, 1)
    assert.ok(warnings[0]!.message.includes(journal), warnings[0]!.message)
    assert.notEqual(fs.readFileSync(journal).readUInt32LE(0), 0x4a524e4c, 'the journal is in the current format')
    const vm2 = (await c.restartHost('esx1')).vm('vm1')
    await vm2.powerOn()
    assert.deepEqual(await vm2.read('f', 7 * KiB4, KiB4), fill(0x77))
  })
})
