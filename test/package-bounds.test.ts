/**
 * Opening a package is bounded: stored and expanded bytes, entries, bytes per file and time.
 * Every package here is a real file (a real tar, really gzipped); the hostile ones are built
 * by streaming, so the test itself never holds their expanded bytes.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { createGzip, gunzipSync, gzipSync } from 'node:zlib'
import { Header, Pax } from 'tar'
import { isIofError } from '../harness/framework/errors.js'
import {
  buildPackage, DEFAULT_PACKAGE_LIMITS, disposePackage, openPackage, readTarStream, verifyPackage,
  type OpenedPackage, type PackageLimitName, type PackageLimits, type TrustOptions,
} from '../harness/framework/package/index.js'
import { listFiles, metadata, repack, scratch, writeFilterDir, type Scratch } from './package-fixtures.js'

const MiB = 1024 * 1024
/** Far above what a bounded open takes (well under a second here) and far below the old cost: 96 MiB of padding took minutes. */
const GENEROUS_MS = 20_000
const community: TrustOptions = { acceptanceLevel: 'CommunitySupported' }

let s: Scratch
beforeEach(async () => { s = await scratch() })
afterEach(async () => { await s.cleanup() })

/** A valid unsigned package built by the project's builder; returns the .tgz and its plain tar. */
async function validPackage(): Promise<{ tgz: string; tar: Buffer }> {
  const dir = await writeFilterDir(s, 'src', { descriptor: metadata({ acceptanceLevel: 'CommunitySupported' }) })
  const built = await buildPackage(dir, { out: join(s.dir, 'valid.tgz') })
  return { tgz: built.path, tar: gunzipSync(await readFile(built.path)) }
}

/** `size` zero bytes, as 1 MiB chunks, never held whole. */
function* zeros(size: number): Generator<Buffer> {
  const chunk = Buffer.alloc(MiB)
  for (let left = size; left > 0; left -= MiB) yield left >= MiB ? chunk : chunk.subarray(0, left)
}

/** Writes the concatenation of `parts` to `file`, gzipped (level 9: the ratio a bomb would use) unless `gzip` is false. */
async function writeStream(file: string, parts: Iterable<Buffer>, gzip = true): Promise<string> {
  const source = Readable.from(parts, { objectMode: false })
  if (gzip) await pipeline(source, createGzip({ level: 9 }), createWriteStream(file))
  else await pipeline(source, createWriteStream(file))
  return file
}

/** A real tar header block for a regular file (node-tar's encoder). */
function fileHeader(path: string, size: number): Buffer {
  const h = new Header({ path, size, mode: 0o644, uid: 0, gid: 0, mtime: new Date('1985-10-26T08:15:00Z'), type: 'File' })
  h.encode()
  return h.block as Buffer
}

/** A file entry: header, body of `body` (or `size` zeros) and padding to the block size. */
function* fileEntry(path: string, size: number, body?: Buffer): Generator<Buffer> {
  yield fileHeader(path, size)
  if (body !== undefined) yield body
  else yield* zeros(size)
  const pad = (512 - (size % 512)) % 512
  if (pad > 0) yield Buffer.alloc(pad)
}

const END_OF_ARCHIVE = Buffer.alloc(1024)

/** Asserts that opening `file` is refused with PackageUnreadable for `limit`, and that nothing is left in the work dir. */
async function assertRefusedBy(file: string, limit: PackageLimitName, options: { limits?: Partial<PackageLimits> } = {}): Promise<void> {
  await assert.rejects(openPackage(file, { workDir: s.workDir, ...options }), (err: unknown) => {
    assert.ok(isIofError(err, 'PackageUnreadable'), `expected PackageUnreadable, got ${String(err)}`)
    assert.equal(err.exitCode, 2)
    assert.equal(err.details.limit, limit, err.message)
    assert.match(err.message, new RegExp(`\\(${limit}\\)`))
    return true
  })
  assert.deepEqual(await readdir(s.workDir).catch(() => []), [], 'a refused package left files behind')
}

/** Opens `file` and asserts it holds the valid package's files and verifies. */
async function assertOpensAsValid(file: string): Promise<OpenedPackage> {
  const opened = await openPackage(file, { workDir: s.workDir })
  assert.deepEqual(opened.refused, [])
  assert.deepEqual(await listFiles(opened.root), ['descriptor.json', 'filter.js', 'lib/helper.js'])
  const verified = await verifyPackage(opened, { trust: community })
  assert.equal(verified.ok, true)
  assert.equal(opened.sha256, createHash('sha256').update(await readFile(file)).digest('hex'), 'sha256 is of the whole file')
  return opened
}

async function timed<T>(run: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t = performance.now()
  const value = await run()
  return { value, ms: performance.now() - t }
}

describe('a gzip bomb is refused by the expanded-size bound while streaming', () => {
  it('three 100 MiB entries of zeros (~300 KB gzipped): refused before the third, in little memory', async () => {
    const { tar } = await validPackage()
    // The valid entries without their end-of-archive (the trailing zero blocks).
    let end = tar.length
    while (end >= 512 && tar.subarray(end - 512, end).every(b => b === 0)) end -= 512
    const files = tar.subarray(0, end)
    const bomb = await writeStream(join(s.dir, 'bomb.tgz'), (function* () {
      yield files
      for (const name of ['lib/a.bin', 'lib/b.bin', 'lib/c.bin']) yield* fileEntry(name, 100 * MiB)
      yield END_OF_ARCHIVE
    })())
    assert.ok((await readFile(bomb)).length < 2 * MiB, 'the bomb is small on disk')

    const before = process.memoryUsage()
    let peakRss = before.rss
    let peakBuffers = before.arrayBuffers
    const sampler = setInterval(() => {
      const m = process.memoryUsage()
      peakRss = Math.max(peakRss, m.rss)
      peakBuffers = Math.max(peakBuffers, m.arrayBuffers)
    }, 2)
    try {
      const { ms } = await timed(() => assertRefusedBy(bomb, 'maxUncompressedBytes'))
      assert.ok(ms < GENEROUS_MS, `took ${ms} ms`)
    } finally {
      clearInterval(sampler)
    }
    // The expanded bytes stream to disk: memory holds a few 64 KiB pieces (plus garbage the GC
    // has not collected yet, ~32 MiB here), never the 200 MiB written before the refusal.
    assert.ok(peakBuffers - before.arrayBuffers < 100 * MiB, `buffers grew by ${(peakBuffers - before.arrayBuffers) / MiB} MiB`)
    assert.ok(peakRss - before.rss < 150 * MiB, `rss grew by ${(peakRss - before.rss) / MiB} MiB`)
  })

  it('one entry over the per-file bound is refused from its header, before its body is read', async () => {
    const size = DEFAULT_PACKAGE_LIMITS.maxFileBytes + MiB
    const big = await writeStream(join(s.dir, 'big.tgz'), (function* () {
      yield* fileEntry('descriptor.json', 2, Buffer.from('{}'))
      yield* fileEntry('blob.bin', size)
      yield END_OF_ARCHIVE
    })())
    await assertRefusedBy(big, 'maxFileBytes')
    await assert.rejects(openPackage(big, { workDir: s.workDir }), /entry "blob\.bin" is 135266304 bytes/)
  })
})

describe('whatever follows the end-of-archive is ignored', () => {
  it('opens a .tgz whose tar is followed by 96 MiB of zeros inside the gzip stream (~100 KB file)', async () => {
    const { tar } = await validPackage()
    const padded = await writeStream(join(s.dir, 'padded.tgz'), (function* () { yield tar; yield* zeros(96 * MiB) })())
    assert.ok((await readFile(padded)).length < 256 * 1024)
    const { ms } = await timed(() => assertOpensAsValid(padded))
    assert.ok(ms < GENEROUS_MS, `took ${ms} ms`)
  })

  it('opens a .tgz followed by 1 MiB of zeros after the gzip stream, and a plain tar followed by 1 MiB of zeros', async () => {
    const { tgz, tar } = await validPackage()
    const afterGzip = join(s.dir, 'after-gzip.tgz')
    await writeFile(afterGzip, Buffer.concat([await readFile(tgz), Buffer.alloc(MiB)]))
    await assertOpensAsValid(afterGzip)
    const plain = join(s.dir, 'plain.tar')
    await writeFile(plain, Buffer.concat([tar, Buffer.alloc(MiB)]))
    await assertOpensAsValid(plain)
  })

  it('opens a .tgz whose tar is followed by 96 MiB of garbage inside the gzip stream, and a plain tar followed by garbage', async () => {
    const { tar } = await validPackage()
    const line = Buffer.from('this is not tar: garbage after the end-of-archive\n'.repeat(20_000)) // ~1 MiB, compressible
    const garbage = await writeStream(join(s.dir, 'garbage.tgz'), (function* () {
      yield tar
      for (let i = 0; i < 96; i++) yield line
    })())
    const { ms } = await timed(() => assertOpensAsValid(garbage))
    assert.ok(ms < GENEROUS_MS, `took ${ms} ms`)
    const plain = join(s.dir, 'garbage.tar')
    await writeFile(plain, Buffer.concat([tar, line]))
    await assertOpensAsValid(plain)
  })
})

describe('entry and byte bounds', () => {
  it(`refuses more than ${DEFAULT_PACKAGE_LIMITS.maxEntries} entries`, async () => {
    const many = await writeStream(join(s.dir, 'many.tgz'), (function* () {
      yield* fileEntry('descriptor.json', 2, Buffer.from('{}'))
      for (let i = 0; i < DEFAULT_PACKAGE_LIMITS.maxEntries; i++) yield* fileEntry(`f/${i}.js`, 1, Buffer.from('x'))
      yield END_OF_ARCHIVE
    })())
    await assertRefusedBy(many, 'maxEntries')
  })

  it('opens exactly the entry limit', async () => {
    const count = 50
    const atLimit = await writeStream(join(s.dir, 'at-limit.tgz'), (function* () {
      yield* fileEntry('descriptor.json', 2, Buffer.from('{}'))
      for (let i = 1; i < count; i++) yield* fileEntry(`f/${i}.js`, 1, Buffer.from('x'))
      yield END_OF_ARCHIVE
    })())
    const opened = await openPackage(atLimit, { workDir: s.workDir, limits: { maxEntries: count } })
    assert.equal((await listFiles(opened.root)).length, count)
    await disposePackage(opened)
    await assertRefusedBy(atLimit, 'maxEntries', { limits: { maxEntries: count - 1 } })
  })

  it('each bound is an option: stored size, expanded size, entries of a directory package', async () => {
    const { tgz } = await validPackage()
    await assertRefusedBy(tgz, 'maxCompressedBytes', { limits: { maxCompressedBytes: 100 } })
    await assertRefusedBy(tgz, 'maxUncompressedBytes', { limits: { maxUncompressedBytes: 4096 } })
    await assertRefusedBy(tgz, 'maxFileBytes', { limits: { maxFileBytes: 100 } })
    const dir = join(s.dir, 'src')
    await assertRefusedBy(dir, 'maxEntries', { limits: { maxEntries: 2 } })
    await assertRefusedBy(dir, 'maxFileBytes', { limits: { maxFileBytes: 100 } })
    await assert.rejects(openPackage(tgz, { workDir: s.workDir, limits: { maxEntries: 0 } }), (err: unknown) => isIofError(err, 'BadInput'))
    // Infinity turns a bound off (the clock included: it must not fire at once).
    const opened = await openPackage(tgz, { workDir: s.workDir, limits: { timeoutMs: Infinity, maxEntries: Infinity } })
    assert.equal(opened.refused.length, 0)
  })

  it('keeps long names (pax headers) intact', async () => {
    const { tgz } = await validPackage()
    const long = `lib/${'deep-directory-name/'.repeat(8)}${'x'.repeat(120)}.js`
    const out = await repack(tgz, join(s.dir, 'long.tgz'), async d => {
      await mkdir(join(d, long, '..'), { recursive: true })
      await writeFile(join(d, long), 'export const x = 1\n')
    })
    const opened = await openPackage(out, { workDir: s.workDir })
    assert.deepEqual(opened.refused, [])
    assert.ok((await listFiles(opened.root)).includes(long))
  })
})

describe('names from pax and GNU long-name records are judged like any other', () => {
  it('refuses ../ and absolute names given by a long-name or pax record, and writes nothing for them', async () => {
    const gnuLongName = (name: string): Buffer[] => {
      const body = Buffer.from(`${name}\0`)
      const h = new Header({ path: '././@LongLink', size: body.length, mode: 0o644, uid: 0, gid: 0, type: 'NextFileHasLongPath' })
      h.encode()
      return [h.block as Buffer, body, Buffer.alloc((512 - (body.length % 512)) % 512)]
    }
    const unknownType = fileHeader('odd.bin', 0)
    unknownType[156] = 'Q'.charCodeAt(0)
    // Fix the checksum after changing the typeflag.
    unknownType.fill(0x20, 148, 156)
    let sum = 0
    for (const b of unknownType) sum += b
    unknownType.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii')
    const file = await writeStream(join(s.dir, 'records.tgz'), (function* () {
      yield* fileEntry('descriptor.json', 2, Buffer.from('{}'))
      yield* gnuLongName('../../escape.js')
      yield* fileEntry('innocent-1.js', 2, Buffer.from('//'))
      yield new Pax({ path: '/tmp/absolute.js' }).encode()
      yield* fileEntry('innocent-2.js', 2, Buffer.from('//'))
      yield unknownType
      yield END_OF_ARCHIVE
    })())
    const opened = await openPackage(file, { workDir: s.workDir })
    assert.deepEqual(opened.refused.map(r => [r.path, r.kind]), [['../../escape.js', 'escape'], ['/tmp/absolute.js', 'escape'], ['odd.bin', 'unsupported']])
    assert.match(opened.refused[2]?.reason ?? '', /unknown type "Q"/)
    assert.deepEqual(await listFiles(opened.dir), ['package.json', 'root/descriptor.json'])
  })
})

describe('a tar that never ends', () => {
  /** An endless stream of valid 64 KiB file entries: no end-of-archive, ever. */
  async function* endless(): AsyncGenerator<Buffer> {
    const body = Buffer.alloc(64 * 1024, 0x61)
    for (let i = 0; ; i++) {
      yield fileHeader(`f/${i}.bin`, body.length)
      yield body
    }
  }

  it('is refused by the byte bound', async () => {
    let written = 0
    await assert.rejects(readTarStream(endless(), () => ({ write: c => { written += c.length }, end: () => undefined })), (err: unknown) => {
      assert.ok(isIofError(err, 'PackageUnreadable'), String(err))
      assert.equal(err.details.limit, 'maxUncompressedBytes')
      return true
    })
    assert.ok(written <= DEFAULT_PACKAGE_LIMITS.maxUncompressedBytes)
  })

  it('is refused by the entry bound when its entries are small', async () => {
    async function* tiny(): AsyncGenerator<Buffer> {
      for (let i = 0; ; i++) yield* fileEntry(`f/${i}`, 1, Buffer.from('x'))
    }
    await assert.rejects(readTarStream(tiny(), () => undefined), (err: unknown) => isIofError(err, 'PackageUnreadable') && err.details.limit === 'maxEntries')
  })

  it('is refused by the clock when it trickles, or stalls', async () => {
    async function* trickle(): AsyncGenerator<Buffer> {
      yield fileHeader('slow.bin', 100 * MiB)
      for (;;) {
        await new Promise(resolve => setTimeout(resolve, 10))
        yield Buffer.alloc(512)
      }
    }
    const byTime = (err: unknown): boolean => isIofError(err, 'PackageUnreadable') && err.details.limit === 'timeoutMs'
    const { ms } = await timed(() => assert.rejects(readTarStream(trickle(), () => undefined, { limits: { timeoutMs: 300 } }), byTime))
    assert.ok(ms < 5_000, `took ${ms} ms`)
    const stalled: AsyncIterable<Buffer> = { [Symbol.asyncIterator]: () => ({ next: () => new Promise<IteratorResult<Buffer>>(() => undefined) }) }
    await assert.rejects(readTarStream(stalled, () => undefined, { limits: { timeoutMs: 300 } }), byTime)
  })
})

describe('unreadable input stays unreadable, quickly', () => {
  it('a gzip of zeros only is an empty archive', async () => {
    const file = await writeStream(join(s.dir, 'zeros.tgz'), zeros(64 * MiB))
    await assert.rejects(openPackage(file, { workDir: s.workDir }), (err: unknown) => isIofError(err, 'PackageUnreadable') && /empty/.test(err.message))
  })

  it('a tar cut inside an entry is truncated', async () => {
    const { tar } = await validPackage()
    const file = join(s.dir, 'cut.tgz')
    await writeFile(file, gzipSync(tar.subarray(0, 700)))
    await assert.rejects(openPackage(file, { workDir: s.workDir }), (err: unknown) => isIofError(err, 'PackageUnreadable') && /truncated/.test(err.message))
  })
})
