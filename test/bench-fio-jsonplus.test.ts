/**
 * fio's json+ (`iofcert bench --output-format json+`): latency blocks with percentiles carry fio's
 * `bins`, each bucket's value as fio computes it from its bucket index → its count, converted
 * exactly from our histogram; fio's own json+ reader (fio_jsonplus_clat2csv) reads ours into the
 * same CSV columns as fio's json+ of the same job file. The comparisons with the real fio and its
 * script are skipped without them.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { formatFioJson, toFioJson } from '../harness/bench/fio-json.js'
import { IoGenerator, generatorOptionsFor } from '../harness/bench/generator.js'
import { FIO_PLAT_NR, LatencyHistogram, fioBins, fioPlatIndex, fioPlatValue } from '../harness/bench/histogram.js'
import { parseJobText } from '../harness/bench/jobfile.js'
import { Xoshiro128 } from '../harness/bench/prng.js'
import { fioMissing, runProgram } from './helpers/fio.js'


const MAIN = fileURLToPath(new URL('../harness/cli/main.js', import.meta.url))
const CLAT2CSV = '/usr/bin/fio_jsonplus_clat2csv'
const clat2csvMissing = fioMissing || (fs.existsSync(CLAT2CSV) ? false : 'fio_jsonplus_clat2csv is not installed here (it comes with fio)')

const run = runProgram

/** fio's plat_val_to_idx, written out from stat.h's description: the reference for ours. */
function referenceIndex(v: number): number {
  if (v < 128) return v
  let msb = 0
  while (2 ** (msb + 1) <= v) msb++
  const errorBits = msb - 6
  return Math.min((errorBits + 1) * 64 + (Math.floor(v / 2 ** errorBits) & 63), FIO_PLAT_NR - 1)
}

test("fio's buckets: the value itself below 128 ns, then 64 a power of two, each reported at its middle, truncated", () => {
  for (let v = 0; v < 128; v++) assert.equal(fioPlatIndex(v), v)
  assert.equal(fioPlatIndex(128), 128)
  assert.equal(fioPlatValue(128), 129, '[128, 129] reported at 128 + 0.5 × 2')
  assert.equal(fioPlatIndex(255), 191)
  assert.equal(fioPlatIndex(256), 192)
  assert.equal(fioPlatValue(192), 258, '[256, 259] reported at 256 + 0.5 × 4')
  // values fio's own json+ reports (from fio_jsonplus_clat2csv's documentation): fixed points
  for (const v of [12, 168960, 177152, 183296, 189440, 214016, 246784, 272384, 329728, 1003520, 1089536]) assert.equal(fioPlatValue(fioPlatIndex(v)), v, String(v))
  const rng = new Xoshiro128(7)
  for (let i = 0; i < 20_000; i++) {
    const v = Math.floor(2 ** ((rng.next() / 2 ** 32) * 42))
    assert.equal(fioPlatIndex(v), referenceIndex(v), String(v))
  }
  for (let k = 7; k < 45; k++) for (const v of [2 ** k - 1, 2 ** k, 2 ** k + 1]) assert.equal(fioPlatIndex(v), referenceIndex(v), `2^${k}`)
  assert.equal(fioPlatIndex(2 ** 50), FIO_PLAT_NR - 1, 'beyond the last group: the last bucket')
})

test('bins from our histogram are exactly the counts fio would have: every value lands in its fio bucket', () => {
  const rng = new Xoshiro128(11)
  const h = new LatencyHistogram()
  const expect = new Map<number, number>()
  for (let i = 0; i < 100_000; i++) {
    // 10 ns … 10 s, log-uniform, plus some tiny and huge ones
    const v = i % 1000 === 0 ? i % 7 : i % 999 === 0 ? 2 ** 40 + i : Math.round(10 * 10 ** ((rng.next() / 2 ** 32) * 9))
    h.record(v)
    const idx = referenceIndex(v)
    expect.set(idx, (expect.get(idx) ?? 0) + 1)
  }
  const bins = fioBins(h.toJSON())
  const want: Record<string, number> = {}
  for (const idx of [...expect.keys()].sort((a, b) => a - b)) want[String(fioPlatValue(idx))] = expect.get(idx)!
  assert.deepEqual(bins, want)
  const keys = Object.keys(bins).map(Number)
  assert.deepEqual(keys, [...keys].sort((a, b) => a - b), 'ascending, as fio writes them')
  // merged histograms (the copies of a job) give the merged bins
  const a = new LatencyHistogram()
  const b = new LatencyHistogram()
  for (let i = 0; i < 1000; i++) (i % 2 ? a : b).record(1000 + i * 37)
  const both = new LatencyHistogram().merge(a).merge(b)
  const sum: Record<string, number> = { ...fioBins(a.toJSON()) }
  for (const [k, c] of Object.entries(fioBins(b.toJSON()))) sum[k] = (sum[k] ?? 0) + c
  assert.deepEqual(fioBins(both.toJSON()), Object.fromEntries(Object.entries(sum).sort((x, y) => Number(x[0]) - Number(y[0]))))
})

test('json+ puts bins where fio does: beside each block\'s percentiles, counting every I/O; plain json has none', async () => {
  const [spec] = parseJobText('[j]\nrw=randrw\nbs=4k\nsize=1m\niodepth=4\nlat_percentiles=1\n', { file: 'j.fio', env: {} })
  let gen: IoGenerator
  const pending: number[] = []
  gen = new IoGenerator(generatorOptionsFor(spec!, { capacity: 1 << 20 }), (_op, _off, _len, _data, tag) => {
    pending.push(tag)
    if (pending.length === 1) setImmediate(() => { for (const t of pending.splice(0)) gen.complete(t, null) })
  })
  const vms = [await gen.run()]
  const plus = toFioJson([{ spec: spec!, device: 'null', chain: [], vms }], { version: 't', plus: true }).jobs[0]!
  for (const d of ['read', 'write'] as const) {
    const blk = plus[d]
    assert.ok(blk.clat_ns.bins !== undefined && blk.lat_ns.bins !== undefined, `${d}: clat and lat have percentiles, so bins`)
    assert.equal(blk.slat_ns.bins, undefined, 'slat has no samples: no percentiles, no bins (as fio)')
    assert.equal(Object.values(blk.clat_ns.bins).reduce((s, c) => s + c, 0), blk.clat_ns.N, 'every I/O in a bin')
    assert.deepEqual(blk.clat_ns.bins, fioBins(vms[0]![d].latency))
  }
  assert.equal(plus.trim.clat_ns.bins, undefined, 'no samples, no bins')
  const text = formatFioJson({ ...toFioJson([{ spec: spec!, device: 'null', chain: [], vms }], { version: 't', plus: true }) })
  assert.match(text, /^ {10}"bins" : \{\n {12}"\d+" : \d+,$/m, "fio's layout: integers, keyed by ns")
  const plain = toFioJson([{ spec: spec!, device: 'null', chain: [], vms }], { version: 't' }).jobs[0]!
  assert.equal(plain.read.clat_ns.bins, undefined)
  assert.equal(plain.read.lat_ns.bins, undefined)
})

test('iofcert bench --output-format: json+ to a file or stdout; a bad format and json+ with a package are bad input', { timeout: 120_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-jsonplus-'))
  try {
    const job = path.join(dir, 'j.fio')
    fs.writeFileSync(job, '[j]\nrw=randread\nbs=4k\nsize=1m\niodepth=2\n')
    const out = await run(process.execPath, [MAIN, 'bench', '--job', job, '--device', 'null', '--output-format', 'json+'])
    assert.equal(out.code, 0, out.stderr)
    const doc = JSON.parse(out.stdout) as { jobs: { read: { clat_ns: { bins?: Record<string, number>; N: number } } }[] }
    assert.equal(Object.values(doc.jobs[0]!.read.clat_ns.bins!).reduce((s, c) => s + c, 0), doc.jobs[0]!.read.clat_ns.N, 'as fio: without a file, the document goes to stdout')
    const file = path.join(dir, 'o.json')
    const toFile = await run(process.execPath, [MAIN, 'bench', '--job', job, '--device', 'null', '--output-format', 'json', '--json', file])
    assert.equal(toFile.code, 0, toFile.stderr)
    assert.ok(!fs.readFileSync(file, 'utf8').includes('"bins"'), 'json: no bins')
    const bad = await run(process.execPath, [MAIN, 'bench', '--job', job, '--output-format', 'terse'])
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /--output-format must be normal, json or json\+, got "terse"/)
    const pkg = await run(process.execPath, [MAIN, 'bench', path.join(dir, 'filter.tgz'), '--job', job, '--output-format', 'json+'])
    assert.equal(pkg.code, 2)
    assert.match(pkg.stderr, /json\+ is not available when a package is benchmarked/)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

const CSV_JOB = `[global]
ioengine=null
size=16m
bs=4k
iodepth=4

[mixed]
rw=randrw
lat_percentiles=1

[reads]
rw=randread
numjobs=2

[writes]
stonewall
rw=write
clat_percentiles=0
lat_percentiles=1
`

/** Per CSV file fio_jsonplus_clat2csv wrote: its header and the count columns that hold data. */
function csvShape(dir: string, stub: string): { file: string; header: string; filled: string[] }[] {
  return fs.readdirSync(dir).filter((f) => f.startsWith(`${stub}_job`) && f.endsWith('.csv')).sort().map((f) => {
    const [header, ...rows] = fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter((l) => l.trim() !== '')
    const cols = header!.split(',').map((c) => c.trim())
    const filled = new Set<string>()
    for (const r of rows) r.split(',').forEach((v, i) => { if (i > 0 && v.trim() !== '' && cols[i]?.endsWith('_count')) filled.add(cols[i]!) })
    return { file: f.replace(stub, ''), header: header!, filled: [...filled].sort() }
  })
}

test("fio_jsonplus_clat2csv reads our json+ into the same CSV columns as fio's json+ of the same job file", { skip: clat2csvMissing, timeout: 180_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-clat2csv-'))
  try {
    const job = path.join(dir, 'j.fio')
    fs.writeFileSync(job, CSV_JOB)
    const ours = await run(process.execPath, [MAIN, 'bench', '--job', job, '--device', 'null', '--output-format', 'json+', '--json', path.join(dir, 'ours.json')])
    assert.equal(ours.code, 0, ours.stderr)
    const fio = await run('fio', ['--output-format=json+', `--output=${path.join(dir, 'fio.json')}`, job])
    assert.equal(fio.code, 0, fio.stderr)
    for (const who of ['ours', 'fio']) {
      const r = await run(CLAT2CSV, [`${who}.json`, `${who}.csv`], dir)
      assert.equal(r.code, 0, `${who}: ${r.stdout}${r.stderr}`)
    }
    const a = csvShape(dir, 'ours')
    const b = csvShape(dir, 'fio')
    assert.equal(a.length, 4, 'one CSV per entry of jobs[]: mixed, two copies of reads, writes')
    assert.deepEqual(a, b)
    assert.deepEqual(a.map((x) => x.filled), [
      ['read_clat_ns_count', 'read_lat_ns_count', 'write_clat_ns_count', 'write_lat_ns_count'],
      ['read_clat_ns_count'],
      ['read_clat_ns_count'],
      ['write_lat_ns_count'],
    ])
    // the script's own check: every CSV count is the bin of our document it came from
    const check = await run(CLAT2CSV, ['ours.json', 'ours.csv', '--validate'], dir)
    assert.equal(check.code, 0, check.stdout + check.stderr)
    assert.equal(check.stdout.match(/validated/g)?.length, 4)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('the bins of fio\'s own json+ are values of fio\'s buckets as ours computes them', { skip: fioMissing, timeout: 60_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-fiobins-'))
  try {
    const out = path.join(dir, 'f.json')
    const r = spawnSync('fio', ['--output-format=json+', `--output=${out}`, '--name=b', '--ioengine=null', '--size=64m', '--rw=randread', '--bs=4k'], { encoding: 'utf8' })
    assert.equal(r.status, 0, r.stderr)
    const bins = (JSON.parse(fs.readFileSync(out, 'utf8')) as { jobs: { read: { clat_ns: { bins: Record<string, number> } } }[] }).jobs[0]!.read.clat_ns.bins
    assert.ok(Object.keys(bins).length > 5)
    for (const k of Object.keys(bins)) assert.equal(fioPlatValue(fioPlatIndex(Number(k))), Number(k), k)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
