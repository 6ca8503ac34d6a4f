import { test } from 'node:test'
import assert from 'node:assert/strict'
import { renderBenchTable } from '../harness/bench/console.js'
import { parseFioJson, toFioJson, type FioSummary } from '../harness/bench/fio-json.js'
import type { GeneratorResult } from '../harness/bench/generator.js'
import { LatencyHistogram } from '../harness/bench/histogram.js'
import { parseJobText } from '../harness/bench/jobfile.js'

/** One VM's result: `reads` and `writes` 4 KiB I/Os in one second, each direction at its own latency. */
function result(reads: number, writes: number, latNs: number, writeLatNs = latNs): GeneratorResult {
  const dir = (n: number, ns: number) => {
    const h = new LatencyHistogram()
    for (let i = 0; i < n; i++) h.record(ns)
    return { ioBytes: n * 4096, totalIos: n, errors: 0, runtimeMs: 1000, iops: n, bwBytes: n * 4096, latency: h.toJSON(), minNs: h.minNs, maxNs: h.maxNs, meanNs: h.meanNs, stddevNs: 0 }
  }
  return { status: 'ok', seed: 1, runtimeMs: 1000, read: dir(reads, latNs), write: dir(writes, writeLatNs), maxInflight: 1, spuriousCompletions: 0, verify: null }
}

/** The table's lines of cells (header first), each cell trimmed. */
function cells(table: string): string[][] {
  return table.split('\n').map((l) => l.split('│').map((c) => c.trim()).filter((c) => c !== '')).filter((r) => r.length > 2)
}

/** The table's data rows. */
const rows = (table: string): string[][] => cells(table).slice(1)

const spec = parseJobText('[randrw-70]\nrw=randrw\nrwmixread=70\n', { file: 'j.fio', env: {} })[0]!

test('one row per job and direction with IOPS, MB/s and latency percentiles in µs', () => {
  const doc = toFioJson([{ spec, device: 'memory', chain: [], vms: [result(7000, 3000, 25_000)] }], { version: '0' })
  const out = renderBenchTable(parseFioJson(JSON.stringify(doc)))
  for (const h of ['job', 'dir', 'IOPS', 'MB/s', 'p50 µs', 'p99 µs', 'p99.9 µs']) assert.ok(out.includes(h), h)
  assert.match(out, /randrw-70 .* read .* 7,000 .* 28\.7 /)
  assert.match(out, /randrw-70 .* write .* 3,000 /)
  assert.ok(out.includes('25.0'), 'latency shown in µs')
  assert.ok(!out.includes('baseline'), 'no baseline columns without a baseline')
  assert.ok(!out.includes('\u001b['), 'no colour by default')
})

test('with a baseline, each direction shows the filtered side\'s change vs its own no-filter direction, signed as the metric moved', () => {
  // the filter costs reads 10 % of their IOPS and 20 % on p99, writes 40 % and 200 %
  const doc = toFioJson([{ spec, device: 'memory', chain: ['cache'], vms: [result(900, 150, 12_000, 30_000)], baseline: [result(1000, 250, 10_000)] }], { version: '0' })
  // the JSON keeps its own convention: one figure for the job, positive = slower
  assert.ok(doc.jobs[0]!.iofcert.overhead!.iopsPct > 0 && doc.jobs[0]!.iofcert.overhead!.p99Pct > 0)
  const out = renderBenchTable(parseFioJson(JSON.stringify(doc)))
  const head = cells(out)[0]!
  assert.deepEqual(head.slice(-3), ['baseline IOPS', 'IOPS vs no filter', 'p99 vs no filter'])
  assert.ok(!out.includes('overhead'), 'no label of the old sign convention')
  const [read, write] = rows(out).filter((r) => r[0] === 'randrw-70')
  assert.deepEqual(read!.slice(0, 3), ['randrw-70', 'read', '900'])
  assert.deepEqual(read!.slice(-3).map((c) => c.replace(/\s/g, '')), ['1,000', '\u221210.0%', '+20.0%'])
  assert.deepEqual(write!.slice(0, 3), ['randrw-70', 'write', '150'])
  assert.deepEqual(write!.slice(-3).map((c) => c.replace(/\s/g, '')), ['250', '\u221240.0%', '+200.0%'])
})

test('a faster filtered side reads +, an unchanged one ±, and a side that measured nothing –', () => {
  const faster = toFioJson([{ spec, device: 'memory', chain: ['cache'], vms: [result(1100, 250, 8_000)], baseline: [result(1000, 250, 10_000)] }], { version: '0' })
  const [read, write] = rows(renderBenchTable(parseFioJson(JSON.stringify(faster))))
  assert.deepEqual(read!.slice(-2).map((c) => c.replace(/\s/g, '')), ['+10.0%', '\u221220.0%'])
  assert.deepEqual(write!.slice(-2).map((c) => c.replace(/\s/g, '')), ['\u00b10.0%', '\u221220.0%'])
  const crashed: GeneratorResult = { ...result(0, 0, 0), status: 'crashed', message: 'VM "vm1" I/O worker failed' }
  const doc = toFioJson([{ spec, device: 'memory', chain: ['cache'], vms: [crashed], baseline: [result(1000, 250, 10_000)] }], { version: '0' })
  const out = rows(renderBenchTable(parseFioJson(JSON.stringify(doc))))
  assert.equal(out.length, 2, 'both directions show beside their baseline')
  for (const r of out) assert.deepEqual(r.slice(-2), ['–', '–'])
  assert.deepEqual(out.map((r) => r.at(-3)), ['1,000', '250'])
})

test('MB/s keeps two significant digits below 1 MB/s, so a low-rate job does not read 0.0', () => {
  const doc = toFioJson([{ spec, device: 'memory', chain: [], vms: [result(100, 10, 25_000)] }], { version: '0' })
  const [read, write] = rows(renderBenchTable(parseFioJson(JSON.stringify(doc))))
  // 100 × 4096 B/s and 10 × 4096 B/s
  assert.equal(read![3], '0.41')
  assert.equal(write![3], '0.041')
  const fast = toFioJson([{ spec, device: 'memory', chain: [], vms: [result(700_000, 300_000, 25_000)] }], { version: '0' })
  assert.deepEqual(rows(renderBenchTable(parseFioJson(JSON.stringify(fast)))).map((r) => r[3]), ['2,867.2', '1,228.8'])
})

test('a fio comparison adds fio\'s IOPS and our ratio, adding up fio\'s copies of a job', () => {
  const doc = toFioJson([{ spec, device: 'memory', chain: [], vms: [result(7000, 3000, 25_000)] }], { version: '0' })
  const dir = (iops: number) => ({ ioBytes: 0, bwBytes: 0, iops, runtimeMs: 1000, totalIos: iops, lat: { min: 0, max: 0, mean: 0, stddev: 0, n: 0, percentiles: {}, percentileSource: null } })
  const copy = { name: 'randrw-70', groupId: 0, error: 0, jobOptions: {}, read: dir(1750), write: dir(750) }
  const fio: FioSummary = { producer: 'fio', version: 'fio-3.33', globalOptions: {}, jobs: [copy, copy] }
  const out = renderBenchTable(parseFioJson(JSON.stringify(doc)), { fio })
  assert.ok(out.includes('fio IOPS') && out.includes('ours/fio'))
  assert.match(out, /read .* 3,500 .* 2\.00×/)
  assert.match(out, /write .* 1,500 .* 2\.00×/)
})
