import { test } from 'node:test'
import assert from 'node:assert/strict'
import { renderBenchTable } from '../harness/bench/console.js'
import { parseFioJson, toFioJson, type FioSummary } from '../harness/bench/fio-json.js'
import type { GeneratorResult } from '../harness/bench/generator.js'
import { LatencyHistogram } from '../harness/bench/histogram.js'
import { parseJobText } from '../harness/bench/jobfile.js'

function result(reads: number, writes: number, latNs: number): GeneratorResult {
  const dir = (n: number) => {
    const h = new LatencyHistogram()
    for (let i = 0; i < n; i++) h.record(latNs)
    return { ioBytes: n * 4096, totalIos: n, errors: 0, runtimeMs: 1000, iops: n, bwBytes: n * 4096, latency: h.toJSON(), minNs: h.minNs, maxNs: h.maxNs, meanNs: h.meanNs, stddevNs: 0 }
  }
  return { status: 'ok', seed: 1, runtimeMs: 1000, read: dir(reads), write: dir(writes), maxInflight: 1, spuriousCompletions: 0, verify: null }
}

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

test('baseline and overhead columns appear when a package was benchmarked', () => {
  const doc = toFioJson([{ spec, device: 'memory', chain: ['cache'], vms: [result(800, 200, 12_000)], baseline: [result(1000, 250, 10_000)] }], { version: '0' })
  const out = renderBenchTable(parseFioJson(JSON.stringify(doc)))
  assert.ok(out.includes('baseline IOPS') && out.includes('overhead IOPS') && out.includes('overhead p99'))
  assert.match(out, /1,000 .* \+20\.0% .* \+\d+\.\d%/)
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
