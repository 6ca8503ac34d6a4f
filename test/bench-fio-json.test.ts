import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { BenchError, BenchErrorCode } from '../harness/bench/errors.js'
import { parseFioJson, percentileOf, toFioJson, type BenchJobResult } from '../harness/bench/fio-json.js'
import { IoGenerator, generatorOptionsFor, type GeneratorResult } from '../harness/bench/generator.js'
import { LatencyHistogram } from '../harness/bench/histogram.js'
import { parseJobText, type JobSpec } from '../harness/bench/jobfile.js'

const fio = spawnSync('fio', ['--version'], { encoding: 'utf8' })
const fioMissing = fio.status === 0 ? false : 'fio is not installed (apt-get install fio)'

/** Runs a job's copies against a disk that completes every I/O at once. */
async function runJob(spec: JobSpec): Promise<GeneratorResult[]> {
  const results: GeneratorResult[] = []
  for (let clone = 0; clone < spec.numjobs; clone++) {
    let gen: IoGenerator
    gen = new IoGenerator(generatorOptionsFor(spec, { capacity: 64 * 2 ** 20, clone }), (_op, _off, _len, _data, tag) => gen.complete(tag, null))
    results.push(await gen.run())
  }
  return results
}

/** A result with `ios` reads of `latNs` each over `runtimeMs`, for exact arithmetic. */
function fixed(ios: number, runtimeMs: number, latNs: number): GeneratorResult {
  const h = new LatencyHistogram()
  for (let i = 0; i < ios; i++) h.record(latNs)
  const dir = (n: number) => ({
    ioBytes: n * 4096, totalIos: n, errors: 0, runtimeMs: n > 0 ? runtimeMs : 0, iops: n > 0 ? (n * 1000) / runtimeMs : 0,
    bwBytes: n > 0 ? (n * 4096 * 1000) / runtimeMs : 0, latency: (n > 0 ? h : new LatencyHistogram()).toJSON(),
    minNs: n > 0 ? latNs : 0, maxNs: n > 0 ? latNs : 0, meanNs: n > 0 ? latNs : 0, stddevNs: 0,
  })
  return { status: 'ok', seed: 1, runtimeMs, read: dir(ios), write: dir(0), maxInflight: 1, spuriousCompletions: 0, verify: null }
}

const JOB = '[global]\nioengine=libaio\ndirect=1\nbs=4k\ngroup_reporting\n[mix]\nrw=randrw\nrwmixread=70\niodepth=8\nsize=16m\nnumjobs=2\n'

test('toFioJson writes fio\'s layout, with group_reporting one entry per group with its VMs merged, and an iofcert block', async () => {
  const [spec] = parseJobText(JOB, { file: 'mix.fio', env: {} })
  const vms = await runJob(spec!)
  const doc = toFioJson([{ spec: spec!, device: 'memory', chain: ['passthrough'], vms }], { version: '0.1.0', time: new Date(2026, 0, 2, 3, 4, 5) })
  assert.equal(doc['fio version'], 'iofcert-0.1.0')
  assert.equal(doc.time, 'Fri Jan  2 03:04:05 2026')
  assert.equal(doc.timestamp, Math.floor(new Date(2026, 0, 2, 3, 4, 5).getTime() / 1000))
  assert.deepEqual(doc['global options'], { ioengine: 'libaio', direct: '1', bs: '4k' })
  assert.deepEqual(doc.disk_util, [])
  const job = doc.jobs[0]!
  assert.equal(job.jobname, 'mix')
  assert.equal(job.groupid, 0)
  assert.equal(job.error, 0)
  assert.deepEqual(job['job options'], { rw: 'randrw', rwmixread: '70', iodepth: '8', size: '16m', numjobs: '2' })
  assert.deepEqual(Object.keys(job.read), [
    'io_bytes', 'io_kbytes', 'bw_bytes', 'bw', 'iops', 'runtime', 'total_ios', 'short_ios', 'drop_ios', 'slat_ns', 'clat_ns', 'lat_ns',
    'bw_min', 'bw_max', 'bw_agg', 'bw_mean', 'bw_dev', 'bw_samples', 'iops_min', 'iops_max', 'iops_mean', 'iops_stddev', 'iops_samples',
  ])
  const total = vms.reduce((s, v) => s + v.read.totalIos + v.write.totalIos, 0)
  assert.equal(total, 2 * 4096, 'two copies, each 16 MiB in 4 KiB blocks')
  assert.equal(job.read.total_ios + job.write.total_ios, total)
  assert.equal(job.read.io_bytes, vms[0]!.read.ioBytes + vms[1]!.read.ioBytes)
  assert.equal(job.read.lat_ns.N, job.read.total_ios)
  // fio's defaults: percentiles under clat_ns only (lat_percentiles=0)
  assert.deepEqual(Object.keys(job.read.clat_ns), ['min', 'max', 'mean', 'stddev', 'N', 'percentile'])
  assert.deepEqual(Object.keys(job.read.lat_ns), ['min', 'max', 'mean', 'stddev', 'N'])
  assert.ok(['1.000000', '50.000000', '99.000000', '99.900000', '99.990000'].every((k) => k in job.read.clat_ns.percentile!))
  const merged = new LatencyHistogram().merge(vms[0]!.read.latency).merge(vms[1]!.read.latency)
  assert.equal(job.read.clat_ns.percentile!['99.000000'], merged.percentile(99), 'percentiles of the merged histogram')
  assert.deepEqual({ ...job.read.clat_ns, percentile: undefined }, { ...job.read.lat_ns, percentile: undefined }, 'clat is lat: issue → completion')
  assert.equal(job.read.slat_ns.N, 0, 'slat is not measured')
  assert.equal(job.trim.total_ios, 0)
  const shares = [...Object.values(job.latency_ns), ...Object.values(job.latency_us), ...Object.values(job.latency_ms)]
  assert.ok(Math.abs(shares.reduce((s, x) => s + x, 0) - 100) < 1e-6, 'the latency distribution covers every I/O')
  assert.deepEqual(
    { ...job.iofcert, seeds: job.iofcert.seeds.length, ignoredOptions: job.iofcert.ignoredOptions.map((i) => i.option) },
    { device: 'memory', chain: ['passthrough'], vms: 2, status: 'ok', seeds: 2, ignoredOptions: ['ioengine', 'direct'] },
  )
})

test('our document round-trips through parseFioJson', async () => {
  const [spec] = parseJobText(JOB, { file: 'mix.fio', env: {} })
  const doc = toFioJson([{ spec: spec!, device: 'file', chain: [], vms: await runJob(spec!) }], { version: '0.1.0' })
  const s = parseFioJson(JSON.stringify(doc, null, 2))
  assert.equal(s.producer, 'iofcert')
  assert.equal(s.version, 'iofcert-0.1.0')
  const [job] = s.jobs
  assert.equal(job!.name, 'mix')
  for (const dir of ['read', 'write'] as const) {
    const d = doc.jobs[0]![dir]
    assert.deepEqual(
      [job![dir].iops, job![dir].totalIos, job![dir].ioBytes, job![dir].runtimeMs, job![dir].bwBytes, job![dir].lat.mean],
      [d.iops, d.total_ios, d.io_bytes, d.runtime, d.bw_bytes, d.lat_ns.mean],
    )
    assert.equal(percentileOf(job![dir].lat, 99.9), d.clat_ns.percentile!['99.900000'])
    assert.equal(job![dir].lat.percentileSource, 'clat')
  }
  assert.equal(job!.iofcert?.device, 'file')
})

test('the baseline and the overhead are computed from merged histograms', () => {
  const spec = parseJobText('[j]\nrw=randread\ngroup_reporting\n', { file: 'j.fio', env: {} })[0]!
  const result: BenchJobResult = {
    spec,
    device: 'memory',
    chain: ['cache'],
    vms: [fixed(800, 1000, 12_000), fixed(800, 1000, 12_000)],
    baseline: [fixed(1000, 1000, 10_000), fixed(1000, 1000, 10_000)],
  }
  const job = toFioJson([result], { version: '0.1.0' }).jobs[0]!
  assert.equal(job.read.iops, 1600)
  assert.equal(job.iofcert.baseline!.read.iops, 2000)
  assert.ok(Math.abs(job.iofcert.overhead!.iopsPct - 20) < 1e-9)
  const p99 = (ns: number): number => {
    const h = new LatencyHistogram()
    h.record(ns)
    return h.percentile(99)
  }
  assert.ok(Math.abs(job.iofcert.overhead!.p99Pct - ((p99(12_000) - p99(10_000)) / p99(10_000)) * 100) < 1e-9)
})

test('failed copies set fio\'s error and the iofcert status', () => {
  const spec = parseJobText('[j]\nrw=randwrite\ngroup_reporting\n', { file: 'j.fio', env: {} })[0]!
  const failed: GeneratorResult = { ...fixed(1, 1, 1), status: 'io-error', message: 'write of 4096 bytes at offset 0 failed with EIO', error: { op: 'write', offset: 0, length: 4096, error: 'EIO' } }
  const job = toFioJson([{ spec, device: 'memory', chain: [], vms: [fixed(1, 1, 1), failed] }], { version: '0' }).jobs[0]!
  assert.equal(job.error, 5)
  assert.equal(job.iofcert.status, 'io-error')
  assert.match(job.iofcert.message!, /EIO/)
})

test('parseFioJson skips notices before the JSON and refuses what is not fio output', () => {
  const doc = { 'fio version': 'fio-3.33', jobs: [{ jobname: 'x', groupid: 0, error: 0, read: { iops: 5, clat_ns: { N: 1, percentile: { '99.000000': 7 } } } }] }
  const s = parseFioJson(`fio: note: something\n${JSON.stringify(doc)}\n`)
  assert.equal(s.producer, 'fio')
  assert.equal(s.jobs[0]!.read.iops, 5)
  assert.equal(s.jobs[0]!.read.lat.percentileSource, 'clat')
  assert.equal(percentileOf(s.jobs[0]!.read.lat, 99), 7)
  assert.equal(s.jobs[0]!.write.totalIos, 0)
  for (const bad of ['no json here', '{"jobs": []}', '{ broken']) {
    assert.throws(() => parseFioJson(bad), (e: unknown) => e instanceof BenchError && e.code === BenchErrorCode.FioJson)
  }
})

test('real fio output parses (null engine)', { skip: fioMissing }, () => {
  const run = (extra: string[]) => {
    const r = spawnSync('fio', ['--output-format=json', '--name=probe', '--ioengine=null', '--size=16m', '--rw=randrw', '--bs=4k', ...extra], { encoding: 'utf8' })
    assert.equal(r.status, 0, r.stderr)
    return parseFioJson(r.stdout)
  }
  const s = run([])
  assert.equal(s.producer, 'fio')
  assert.match(s.version, /^fio-\d/)
  const [job] = s.jobs
  assert.equal(job!.name, 'probe')
  assert.equal((job!.read.ioBytes + job!.write.ioBytes), 16 * 2 ** 20)
  assert.equal(job!.read.totalIos + job!.write.totalIos, 4096)
  assert.ok(job!.read.iops > 0)
  assert.equal(job!.read.lat.percentileSource, 'clat', "fio's default puts percentiles under clat_ns")
  assert.ok(percentileOf(job!.read.lat, 50)! > 0)
  assert.ok(job!.read.lat.n > 0 && job!.read.lat.mean > 0)
  assert.equal(run(['--lat_percentiles=1']).jobs[0]!.read.lat.percentileSource, 'lat')
})

test('our per-direction layout has the same keys, in the same order, as real fio\'s', { skip: fioMissing }, async () => {
  const r = spawnSync('fio', ['--output-format=json', '--name=probe', '--ioengine=null', '--size=1m', '--rw=read', '--lat_percentiles=1'], { encoding: 'utf8' })
  const real = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as { jobs: Record<string, Record<string, Record<string, unknown>>>[] }
  const [spec] = parseJobText('[probe]\nsize=1m\nlat_percentiles=1\n', { file: 'p.fio', env: {} })
  const ours = toFioJson([{ spec: spec!, device: 'memory', chain: [], vms: await runJob(spec!) }], { version: '0' })
  assert.deepEqual(Object.keys(ours.jobs[0]!.read), Object.keys(real.jobs[0]!.read!))
  assert.deepEqual(Object.keys(ours.jobs[0]!.read.lat_ns), Object.keys(real.jobs[0]!.read!.lat_ns!))
  assert.deepEqual(Object.keys(ours.jobs[0]!.read.lat_ns.percentile!), Object.keys(real.jobs[0]!.read!.lat_ns!.percentile as object))
  for (const k of ['latency_ns', 'latency_us', 'latency_ms'] as const) assert.deepEqual(Object.keys(ours.jobs[0]![k]), Object.keys(real.jobs[0]![k]!))
})
