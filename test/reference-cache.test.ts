import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { isIofError, Rng, type Cluster, type IoResult, type Vm } from '../harness/framework/index.js'
import { bytes, referenceFilter, withCluster } from './helpers/cluster.js'

const MiB = 1 << 20
const DISK = 'd'
const FUNCTIONAL = { ioTimeoutMs: 2000 }

async function cacheVm(c: Cluster, name: string, cacheMiB: number, capacity = 64 * MiB, disk = DISK): Promise<Vm> {
  const h = c.host('esx1')
  if (!h.filters.has('IOFCERT_cache_1.0.0')) await c.installModule(referenceFilter('cache'))
  const policy = `cache-${cacheMiB}`
  if (!c.policies.has(policy)) c.createPolicy({ name: policy, rules: [{ filter: 'cache@CACHE', params: { cacheMiB } }] })
  const vm = h.createVm(name)
  await h.addDisk(name, { id: disk, capacity, policy })
  await vm.powerOn()
  return vm
}

/** Where two byte arrays first differ, for a message a reader can act on. */
function firstDiff(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i
  return a.length === b.length ? -1 : n
}

function dataOf(r: IoResult): Uint8Array {
  assert.ok(r.ok, `I/O failed: ${!r.ok && r.error}`)
  return r.data!
}

interface Range { lo: number; hi: number }
const overlaps = (a: Range, b: Range) => a.lo < b.hi && b.lo < a.hi

/**
 * Seeded reads, writes, unmaps and flushes over `span` bytes with `qd` in flight on a drive that
 * reorders. With `exclusiveWrites` a write or unmap never overlaps one in flight (the lane turns
 * it into a read), so an oracle updated at each completion is the disk, and every read that no
 * overlapping write or unmap ran beside is checked against it. Returns the stale reads found.
 */
async function mixedWorkload(vm: Vm, seed: number, o: { span: number; count: number; qd: number; exclusiveWrites: boolean; oracle: Uint8Array }): Promise<{ checked: number; stale: string[] }> {
  const rng = new Rng(seed)
  const writes = new Set<Range>()
  const reads = new Set<Range & { raced: boolean }>()
  const stale: string[] = []
  let checked = 0
  let issued = 0
  const pick = (): Range => {
    const sectors = 1 + rng.int(rng.float() < 0.7 ? 8 : 64)
    const lo = rng.int(o.span / 512 - sectors) * 512
    // mostly whole 4 KiB blocks, sometimes any sector
    const aligned = rng.float() < 0.6
    const a = aligned ? lo - (lo % 4096) : lo
    const len = aligned ? Math.max(4096, Math.ceil(sectors / 8) * 4096) : sectors * 512
    return { lo: a, hi: Math.min(o.span, a + len) }
  }
  const lane = async () => {
    while (issued < o.count) {
      const n = issued++
      const roll = rng.float()
      const r = pick()
      let op: 'read' | 'write' | 'unmap' | 'flush' = roll < 0.5 ? 'read' : roll < 0.85 ? 'write' : roll < 0.97 ? 'unmap' : 'flush'
      if ((op === 'write' || op === 'unmap') && o.exclusiveWrites && [...writes].some(w => overlaps(w, r))) op = 'read'
      if (op === 'flush') {
        const res = await vm.submit(DISK, { op: 'flush', offset: 0, length: 0 })
        assert.ok(res.ok, 'flush failed')
        continue
      }
      if (op === 'read') {
        const rec = { ...r, raced: [...writes].some(w => overlaps(w, r)) }
        reads.add(rec)
        const expect = o.oracle.slice(r.lo, r.hi)
        const res = await vm.submit(DISK, { op: 'read', offset: r.lo, length: r.hi - r.lo })
        reads.delete(rec)
        assert.ok(res.ok, `read ${r.lo}+${r.hi - r.lo} failed`)
        if (rec.raced || !o.exclusiveWrites) continue
        checked++
        const at = firstDiff(res.data!, expect)
        if (at >= 0) stale.push(`seed ${seed} I/O #${n}: read ${r.lo}+${r.hi - r.lo} differs at byte ${r.lo + at}: expected ${expect[at]}, found ${res.data![at]}`)
        continue
      }
      for (const rd of reads) if (overlaps(rd, r)) rd.raced = true
      writes.add(r)
      const data = op === 'write' ? bytes(seed * 100_000 + n, r.hi - r.lo) : null
      const res = op === 'write'
        ? await vm.submit(DISK, { op: 'write', offset: r.lo, data: data! })
        : await vm.submit(DISK, { op: 'unmap', offset: r.lo, length: r.hi - r.lo })
      assert.ok(res.ok, `${op} ${r.lo}+${r.hi - r.lo} failed`)
      if (data) o.oracle.set(data, r.lo)
      else o.oracle.fill(0, r.lo, r.hi)
      writes.delete(r)
    }
  }
  await Promise.all(Array.from({ length: o.qd }, lane))
  return { checked, stale }
}

/** Reads the whole span through the filter twice (a miss, then a hit) and compares with `want`. */
async function rereadAll(vm: Vm, span: number, want: (off: number, len: number) => Uint8Array, what: string): Promise<void> {
  for (const pass of ['first', 'second']) {
    for (let off = 0; off < span; off += 65536) {
      const got = await vm.read(DISK, off, 65536)
      const exp = want(off, 65536)
      const at = firstDiff(got, exp)
      assert.equal(at, -1, `${what}, ${pass} re-read: byte ${off + at} is ${got[at]}, the disk holds ${exp[at]}`)
    }
  }
}

for (const seed of [1, 2, 3, 4]) {
  test(`seed ${seed}: reads racing overlapping writes and unmaps at QD 16 on a reordering drive are never stale`, async () => {
    await withCluster({ ...FUNCTIONAL, reorder: { seed, maxDelayMs: 2 } }, async c => {
      // 2 MiB of hot span against a 1 MiB cache: hits, misses and evictions all happen
      const span = 2 * MiB
      const vm = await cacheVm(c, 'vm1', 1, 8 * MiB)
      const oracle = new Uint8Array(span)
      const { checked, stale } = await mixedWorkload(vm, seed, { span, count: 3000, qd: 16, exclusiveWrites: true, oracle })
      assert.deepEqual(stale, [])
      assert.ok(checked > 500, `only ${checked} reads could be checked`)
      await rereadAll(vm, span, (o, l) => oracle.subarray(o, o + l), 'against the oracle')
      const snap = await vm.snapshot(DISK)
      await rereadAll(vm, span, (o, l) => snap.read(o, l), 'against the disk image')
    })
  })
}

for (const seed of [5, 6]) {
  test(`seed ${seed}: after concurrent overlapping writes land in any order, the cache agrees with the disk`, async () => {
    await withCluster({ ...FUNCTIONAL, reorder: { seed, maxDelayMs: 2 } }, async c => {
      const span = MiB
      const vm = await cacheVm(c, 'vm1', 4, 8 * MiB)
      // warm the cache so overlapping writes meet cached blocks (a block is cached on its second miss)
      for (let pass = 0; pass < 2; pass++) for (let off = 0; off < span; off += 65536) await vm.read(DISK, off, 65536)
      await mixedWorkload(vm, seed, { span, count: 3000, qd: 16, exclusiveWrites: false, oracle: new Uint8Array(span) })
      const snap = await vm.snapshot(DISK)
      await rereadAll(vm, span, (o, l) => snap.read(o, l), 'against the disk image')
    })
  })
}

test('read after write, overwrite and unmap: a cached block never outlives the write that replaced it', async () => {
  await withCluster({ ...FUNCTIONAL, reorder: { seed: 9, maxDelayMs: 2 } }, async c => {
    const vm = await cacheVm(c, 'vm1', 1, 8 * MiB)
    for (let i = 0; i < 50; i++) {
      const off = (i % 10) * 8192 + (i % 3) * 512
      await vm.write(DISK, off, bytes(i, 8192))
      // fills whole blocks (cached on their second miss)
      for (let pass = 0; pass < 2; pass++) await vm.read(DISK, off - (off % 4096), 16384)
      assert.deepEqual(await vm.read(DISK, off, 8192), bytes(i, 8192), `write ${i}`)
      // a sub-block overwrite of a cached block
      await vm.write(DISK, off + 512, bytes(1000 + i, 1024))
      const want = bytes(i, 8192)
      want.set(bytes(1000 + i, 1024), 512)
      assert.deepEqual(await vm.read(DISK, off, 8192), want, `overwrite ${i}`)
      await vm.unmap(DISK, off, 4096)
      want.fill(0, 0, 4096)
      assert.deepEqual(await vm.read(DISK, off, 8192), want, `unmap ${i}`)
    }
  })
})

test('a failed write leaves no cached copy of what the disk may no longer hold', async () => {
  await withCluster(FUNCTIONAL, async c => {
    const vm = await cacheVm(c, 'vm1', 1, 8 * MiB)
    await vm.write(DISK, 0, bytes(1, 8192))
    for (let pass = 0; pass < 2; pass++) assert.deepEqual(await vm.read(DISK, 0, 8192), bytes(1, 8192))
    // a torn write: its first half lands, then it fails
    await vm.injectFault(DISK, { ops: ['write'], torn: true, error: 'EIO', count: 1 })
    const r = await vm.submit(DISK, { op: 'write', offset: 0, data: bytes(2, 8192) })
    assert.equal(!r.ok && r.error, 'EIO')
    const snap = await vm.snapshot(DISK)
    assert.deepEqual(await vm.read(DISK, 0, 8192), snap.read(0, 8192))
  })
})

test('hot-set reads complete from memory without reaching the drive', async (t: TestContext) => {
  await withCluster(FUNCTIONAL, async c => {
    const vm = await cacheVm(c, 'vm1', 4)
    const hot = 2 * MiB
    for (let off = 0; off < hot; off += 65536) await vm.write(DISK, off, bytes(off, 65536))
    const reads = (n: number, seed: number) => {
      const rng = new Rng(seed)
      return Array.from({ length: n }, () => ({ op: 'read' as const, offset: rng.int(hot / 4096) * 4096, length: 4096 }))
    }
    // a block is cached on its second miss
    for (let pass = 0; pass < 2; pass++) for (let off = 0; off < hot; off += 65536) await vm.read(DISK, off, 65536)
    const before = (await vm.driveStats(DISK)).reads
    const res = await vm.runIos(DISK, reads(5000, 7), 16)
    const after = (await vm.driveStats(DISK)).reads
    assert.equal(res.filter(r => !r.ok).length, 0)
    t.diagnostic(`${after - before} of 5000 hot reads reached the drive`)
    assert.ok(after - before <= 5, `${after - before} of 5000 hot reads reached the drive`)
    const ios = reads(5000, 7)
    res.forEach((r, i) => {
      const off = ios[i]!.offset
      const base = off - (off % 65536)
      assert.deepEqual(dataOf(r), bytes(base, 65536).subarray(off - base, off - base + 4096))
    })
  })
})

test('with cacheMiB = 4 a 64 MiB working set grows the VM by at most 1.25 × 4 MiB + 4 MiB', async (t: TestContext) => {
  await withCluster({ ioTimeoutMs: 5000 }, async c => {
    const cacheMiB = 4
    const vm = await cacheVm(c, 'vm1', cacheMiB, 128 * MiB)
    const span = 64 * MiB
    // the disk's own blocks are allocated first, so what grows after is the cache's
    for (let off = 0; off < span; off += MiB) await vm.write(DISK, off, bytes(off, MiB))
    // V8's external memory already includes array buffers' bytes: counted once
    const use = (m: { heapUsed: number; external: number; arrayBuffers: number }) => m.heapUsed + Math.max(m.external, m.arrayBuffers)
    const base = use(await vm.memory(true))
    const rng = new Rng(3)
    for (let round = 0; round < 4; round++) {
      const ios = Array.from({ length: 8000 }, () => {
        const big = rng.float() < 0.1
        const len = big ? 65536 : 4096
        return { op: 'read' as const, offset: rng.int((span - len) / 4096) * 4096, length: len }
      })
      const res = await vm.runIos(DISK, ios, 16)
      assert.equal(res.filter(r => !r.ok).length, 0)
    }
    const grown = use(await vm.memory(true)) - base
    const limit = 1.25 * cacheMiB * MiB + 4 * MiB
    t.diagnostic(`memory growth ${(grown / MiB).toFixed(2)} MiB (limit ${(limit / MiB).toFixed(2)} MiB)`)
    assert.ok(grown <= limit, `the VM grew by ${(grown / MiB).toFixed(2)} MiB, over ${(limit / MiB).toFixed(2)} MiB`)
    // and the cache filled: later reads of a small set hit (a block is cached on its second miss)
    for (let pass = 0; pass < 2; pass++) for (let i = 0; i < 64; i++) await vm.read(DISK, i * 4096, 4096)
    const before = (await vm.driveStats(DISK)).reads
    for (let i = 0; i < 64; i++) await vm.read(DISK, i * 4096, 4096)
    assert.equal((await vm.driveStats(DISK)).reads, before)
  })
})

test('two VMs on one host reading and writing the same offsets never see each other’s data', async () => {
  await withCluster({ ...FUNCTIONAL, reorder: { seed: 11, maxDelayMs: 2 } }, async c => {
    const a = await cacheVm(c, 'vmA', 4, 8 * MiB, 'da')
    const b = await cacheVm(c, 'vmB', 4, 8 * MiB, 'db')
    const run = async (vm: Vm, disk: string, salt: number) => {
      for (let round = 0; round < 5; round++) {
        const ios = Array.from({ length: 64 }, (_, i) => ({ op: 'write' as const, offset: i * 16384, data: bytes(salt + round * 1000 + i, 16384) }))
        assert.equal((await vm.runIos(disk, ios, 8)).filter(r => !r.ok).length, 0)
        for (let pass = 0; pass < 2; pass++) {
          const got = await vm.runIos(disk, ios.map(io => ({ op: 'read' as const, offset: io.offset, length: 16384 })), 8)
          got.forEach((r, i) => assert.deepEqual(dataOf(r), ios[i]!.data, `${vm.name} round ${round} pass ${pass} offset ${ios[i]!.offset}`))
        }
      }
    }
    await Promise.all([run(a, 'da', 1_000_000), run(b, 'db', 2_000_000)])
  })
})

test('the policy schema bounds cacheMiB and defaults it to 64', async () => {
  await withCluster({}, async c => {
    await c.installModule(referenceFilter('cache'))
    const h = c.host('esx1')
    h.createVm('vm1')
    await h.addDisk('vm1', { id: DISK, capacity: MiB })
    c.createPolicy({ name: 'dflt', rules: [{ filter: 'cache@CACHE' }] })
    await h.setPolicy('vm1', DISK, 'dflt')
    assert.deepEqual(h.vm('vm1').disks.get(DISK)!.rules[0]!.params, { cacheMiB: 64 })
    for (const [name, params] of [['zero', { cacheMiB: 0 }], ['huge', { cacheMiB: 4097 }], ['odd', { cacheMiB: 1, other: 1 }]] as const) {
      c.createPolicy({ name, rules: [{ filter: 'cache@CACHE', params }] })
      await assert.rejects(h.setPolicy('vm1', DISK, name), (e: unknown) => isIofError(e, 'PolicyParamsInvalid'), name)
    }
  })
})
