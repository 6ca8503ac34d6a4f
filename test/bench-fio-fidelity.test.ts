/**
 * fio fidelity: our JSON beside fio 3.33's for the same job file — the same keys per job and
 * direction, every statistic fio fills filled (never 0 where fio's is not), fio's number types in
 * the text — and fio's own reading of job-file syntax and workload shape.
 *
 * The tests that compare with the real fio run it (null engine) and are skipped without it.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { BenchErrorCode, JobFileError } from '../harness/bench/errors.js'
import { formatFioJson, toFioJson, type BenchJobResult, type FioJobEntry } from '../harness/bench/fio-json.js'
import { IoGenerator, generatorOptionsFor, type GeneratorOptions, type GeneratorResult, type SampleStat } from '../harness/bench/generator.js'
import { LatencyHistogram } from '../harness/bench/histogram.js'
import { auxvPageSize, pageSize, parseJobText, type JobSpec } from '../harness/bench/jobfile.js'
import { loadJobs, runBench } from '../harness/bench/run.js'

const fioProbe = spawnSync('fio', ['--version'], { encoding: 'utf8' })
const fioMissing = fioProbe.status === 0 ? false : 'fio is not installed here (apt-get install fio; CI installs it)'

const job = (text: string, env: Record<string, string> = {}): JobSpec[] => parseJobText(text, { file: 'job.fio', env })

function scratch(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-fidelity-'))
}

/** Runs fio on a job file; its JSON document as text. */
function runFioText(file: string): string {
  const out = `${file}.json`
  const r = spawnSync('fio', ['--output-format=json', `--output=${out}`, file], { encoding: 'utf8', timeout: 120_000 })
  assert.equal(r.status, 0, r.stderr)
  return fs.readFileSync(out, 'utf8')
}

/** Runs one copy of a job against a disk that completes each I/O on the next turn (or at once). */
async function drive(o: GeneratorOptions, mode: 'async' | 'sync' = 'async', onSubmit?: (op: string, off: number, len: number) => void): Promise<GeneratorResult> {
  let gen: IoGenerator
  const pending: number[] = []
  const submit = (op: string, off: number, len: number, _d: Uint8Array, tag: number): void => {
    onSubmit?.(op, off, len)
    if (mode === 'sync') return gen.complete(tag, null)
    pending.push(tag)
    if (pending.length === 1) setImmediate(() => { for (const t of pending.splice(0)) gen.complete(t, null) })
  }
  gen = new IoGenerator(o, submit, undefined, 20)
  return gen.run()
}

/**
 * Every number of a JSON text by its path ("/jobs/0/read/iops"), as written: so a test can see
 * whether a value was written as an integer or a float.
 */
function numberLiterals(text: string): Map<string, string> {
  const out = new Map<string, string>()
  let i = text.search(/^\{/m)
  const ws = (): void => {
    while (i < text.length && /\s/.test(text[i]!)) i++
  }
  const str = (): string => {
    const re = /"(?:[^"\\]|\\.)*"/y
    re.lastIndex = i
    const m = re.exec(text)
    assert.ok(m, `a string at ${i}`)
    i = re.lastIndex
    return JSON.parse(m[0]) as string
  }
  const value = (p: string): void => {
    ws()
    const c = text[i]
    if (c === '{' || c === '[') {
      i++
      ws()
      const close = c === '{' ? '}' : ']'
      let n = 0
      while (text[i] !== close) {
        ws()
        let key = String(n++)
        if (c === '{') {
          key = str()
          ws()
          assert.equal(text[i++], ':')
        }
        value(`${p}/${key}`)
        ws()
        if (text[i] === ',') i++
        ws()
      }
      i++
      return
    }
    if (c === '"') {
      str()
      return
    }
    const m = /-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|true|false|null/y
    m.lastIndex = i
    const hit = m.exec(text)
    assert.ok(hit, `a value at ${i}: ${text.slice(i, i + 20)}`)
    i = m.lastIndex
    if (/\d/.test(hit[0])) out.set(p, hit[0])
  }
  value('')
  return out
}

type Json = Record<string, unknown>

/** The document as fio would print it: no empty "global options" or "job options". */
function asFioPrints(doc: unknown): unknown {
  const plain = JSON.parse(JSON.stringify(doc)) as { 'global options'?: Json; jobs: Json[] }
  const drop = (o: Json, k: string): void => {
    if (Object.keys((o[k] ?? {}) as Json).length === 0) delete o[k]
  }
  drop(plain as unknown as Json, 'global options')
  for (const j of plain.jobs) drop(j, 'job options')
  return plain
}

/** Whether two JSON values are the same, numbers to within fio's six decimals. */
function sameToSixDecimals(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number') return Math.abs(a - b) <= 5e-7 + Math.abs(b) * 1e-15
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return a === b
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && sameToSixDecimals((a as Json)[k], (b as Json)[k]))
}

/** The numeric leaves of a JSON object, by path. */
function leaves(o: unknown, p = ''): Map<string, number> {
  const out = new Map<string, number>()
  if (typeof o === 'number') out.set(p, o)
  else if (o !== null && typeof o === 'object') for (const [k, v] of Object.entries(o)) for (const [q, x] of leaves(v, `${p}/${k}`)) out.set(q, x)
  return out
}

/** Block keys of fio's per-job distributions (compared whole: which bucket differs by workload speed). */
const DISTRIBUTIONS = ['iodepth_level', 'iodepth_submit', 'iodepth_complete', 'latency_ns', 'latency_us', 'latency_ms']

/**
 * Statistics fio fills that ours leaves 0 on purpose (README.md, "fio JSON"), with why:
 * - slat: the generator reads the clock once per I/O (issue → completion), so there is no
 *   submission time of its own; slat has no samples, as fio's for a synchronous submission.
 * - eta: what is left to run; 0 when the run is over (fio prints 0 or INT_MAX there).
 * - majf: page faults that had to read from disk, a property of the moment (0 in either when
 *   nothing was paged in).
 */
const ZERO_ON_PURPOSE = [/^\/(read|write|trim)\/slat_ns\//, /^\/eta$/, /^\/majf$/]

const FIDELITY_JOB = `[global]
ioengine=null
size=64m
time_based
runtime=1

[mix]
rw=randrw
rwmixread=70
bs=4k
iodepth=8
numjobs=2

[seq]
stonewall
description=sequential 64k writes, one at a time
rw=write
bs=64k
iodepth=1
`

test('per job and direction our JSON has fio 3.33\'s keys in fio\'s order, no statistic 0 where fio\'s is not, and fio\'s number types', { skip: fioMissing, timeout: 180_000 }, async () => {
  const dir = scratch()
  try {
    const file = path.join(dir, 'fidelity.fio')
    fs.writeFileSync(file, FIDELITY_JOB)
    const fioText = runFioText(file)
    const fio = JSON.parse(fioText.slice(fioText.search(/^\{/m))) as { jobs: Json[] } & Json
    const { doc } = await runBench({ job: file, device: 'null', version: 'test' })
    const oursText = formatFioJson(doc)
    assert.ok(sameToSixDecimals(JSON.parse(oursText), asFioPrints(doc)), 'the text is the document')
    const ours = doc as unknown as { jobs: Json[] } & Json
    for (const k of Object.keys(fio)) assert.ok(k in ours, `top-level key ${k}`)
    const fioLits = numberLiterals(fioText)
    const ourLits = numberLiterals(oursText)
    const problems: string[] = []
    for (const [k, ourJob] of ours.jobs.entries()) {
      const name = ourJob.jobname as string
      // fio reports each numjobs copy on its own: the first one has the keys of all
      const fi = fio.jobs.findIndex((j) => j.jobname === name)
      assert.ok(fi >= 0, `fio ran ${name}`)
      const fioJob = fio.jobs[fi]!
      const ourKeys = Object.keys(ourJob).filter((x) => x !== 'iofcert')
      assert.deepEqual(ourKeys, Object.keys(fioJob), `${name}: the job's keys, in fio's order`)
      for (const d of ['read', 'write', 'trim', 'sync']) {
        const a = ourJob[d] as Json
        const b = fioJob[d] as Json
        assert.deepEqual(Object.keys(a), Object.keys(b), `${name}.${d}: keys`)
        for (const lat of ['slat_ns', 'clat_ns', 'lat_ns']) {
          if (!(lat in b)) continue
          const keysOf = (x: unknown): string[] => Object.keys(x as Json)
          // fio gives percentiles where it has samples: our slat has none (see ZERO_ON_PURPOSE)
          const fioLatKeys = lat === 'slat_ns' ? keysOf(b[lat]).filter((x) => x !== 'percentile') : keysOf(b[lat])
          assert.deepEqual(keysOf(a[lat]), fioLatKeys, `${name}.${d}.${lat}: keys`)
          if ('percentile' in (b[lat] as Json) && lat !== 'slat_ns') assert.deepEqual(keysOf((a[lat] as Json).percentile), keysOf((b[lat] as Json).percentile), `${name}.${d}.${lat}: percentiles`)
        }
      }
      for (const m of DISTRIBUTIONS) assert.deepEqual(Object.keys(ourJob[m] as Json), Object.keys(fioJob[m] as Json), `${name}.${m}: buckets`)

      // no statistic 0 where fio's is not
      const ourLeaves = leaves(ourJob)
      for (const [p, v] of leaves(fioJob)) {
        if (v === 0 || ZERO_ON_PURPOSE.some((re) => re.test(p)) || DISTRIBUTIONS.some((m) => p.startsWith(`/${m}/`))) continue
        // a standard deviation needs two samples: a busy machine may leave one in a short run
        const samples = ourLeaves.get(p.replace(/_(dev|stddev)$/, '_samples'))
        if (/\/(bw_dev|iops_stddev)$/.test(p) && samples !== undefined && samples < 2) continue
        const o = ourLeaves.get(p)
        if (o === undefined || o === 0) problems.push(`${name}${p}: fio ${v}, ours ${String(o)}`)
      }
      const sum = (j: Json, keys: string[]): number => keys.reduce((s, m) => s + Object.values(j[m] as Record<string, number>).reduce((a, x) => a + x, 0), 0)
      for (const group of [['iodepth_level'], ['iodepth_submit'], ['iodepth_complete'], ['latency_ns', 'latency_us', 'latency_ms']]) {
        if (sum(fioJob, group) > 0 && !(sum(ourJob, group) > 0)) problems.push(`${name}: ${group.join('+')} all 0`)
      }

      // fio's number types: a float (%f) is written with decimals, an integer without
      for (const [p, lit] of fioLits) {
        const pre = `/jobs/${fi}/`
        if (!p.startsWith(pre)) continue
        const ourLit = ourLits.get(`/jobs/${k}/${p.slice(pre.length)}`)
        if (ourLit === undefined) continue
        if (lit.includes('.') !== ourLit.includes('.')) problems.push(`${name}/${p.slice(pre.length)}: fio writes ${lit}, ours ${ourLit}`)
      }
    }
    assert.deepEqual(problems, [])
    const seq = ours.jobs.find((j) => j.jobname === 'seq')!
    assert.equal(seq.desc, 'sequential 64k writes, one at a time')
    assert.ok((seq.elapsed as number) * 1000 > (seq.job_runtime as number), 'elapsed counts the whole run, rounded up, as fio\'s')
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('fio\'s floats are written with six decimals, zero included; the text parses back to the document to six decimals', async () => {
  const [spec] = job('[j]\nrw=randread\nbs=4k\nsize=1m\niodepth=4\n')
  const vms = [await drive(generatorOptionsFor(spec!, { capacity: 1 << 20 }))]
  const doc = toFioJson([{ spec: spec!, device: 'null', chain: [], vms }], { version: 't', elapsedMs: 1500 })
  const text = formatFioJson(doc)
  assert.ok(sameToSixDecimals(JSON.parse(text), asFioPrints(doc)), 'the text is the document, to six decimals')
  assert.ok(!text.includes('"global options"'), 'fio leaves out an empty option list')
  const lits = numberLiterals(text)
  // a direction without I/O: fio prints its floats as 0.000000, its integers as 0
  assert.equal(lits.get('/jobs/0/write/iops'), '0.000000')
  assert.equal(lits.get('/jobs/0/write/lat_ns/mean'), '0.000000')
  assert.equal(lits.get('/jobs/0/write/bw_mean'), '0.000000')
  assert.equal(lits.get('/jobs/0/write/lat_ns/min'), '0')
  assert.equal(lits.get('/jobs/0/latency_ms/>=2000'), '0.000000')
  assert.equal(lits.get('/jobs/0/latency_target'), '0')
  assert.equal(lits.get('/jobs/0/latency_percentile'), '100.000000')
  assert.match(lits.get('/jobs/0/read/iops')!, /^\d+\.\d{6}$/)
  assert.match(lits.get('/jobs/0/usr_cpu')!, /^\d+\.\d{6}$/)
  assert.match(text, /^ {8}"iops" : \d+\.\d{6},$/m, 'fio\'s layout: two spaces a level, "key" : value')
  assert.equal(doc.jobs[0]!.elapsed, 2, '1.5 s is 2 s, rounded up as fio')
})

test('bandwidth and IOPS are sampled every 500 ms; copies of a job add up, as fio\'s group_reporting', async () => {
  const [spec] = job('[j]\nrw=randrw\nbs=4k\nsize=1m\niodepth=4\ntime_based\nruntime=1200ms\n')
  const r = await drive(generatorOptionsFor(spec!, { capacity: 1 << 20 }))
  for (const d of ['read', 'write'] as const) {
    const bw = r[d].bwStat!
    const iops = r[d].iopsStat!
    assert.ok(bw.samples >= 2, `${d}: a sample at 500 and 1000 ms of a 1.2 s run (${bw.samples})`)
    assert.equal(iops.samples, bw.samples)
    assert.ok(bw.min > 0 && bw.min <= bw.mean && bw.mean <= bw.max, `${d}: ${JSON.stringify(bw)}`)
    assert.ok(iops.min > 0 && iops.min <= iops.mean && iops.mean <= iops.max)
    // each is an integer rate: KiB/s drops under 1 KiB, I/Os a second under one 4 KiB I/O
    assert.ok(Math.abs(bw.mean * 1024 - iops.mean * 4096) <= 1024 + 4096, 'KiB/s and I/Os a second of the same 4 KiB I/Os agree')
  }
  const doc = toFioJson([{ spec: spec!, device: 'null', chain: [], vms: [r] }], { version: 't' })
  const rd = doc.jobs[0]!.read
  assert.deepEqual([rd.bw_min, rd.bw_max, rd.bw_samples, rd.iops_samples], [r.read.bwStat!.min, r.read.bwStat!.max, r.read.bwStat!.samples, r.read.iopsStat!.samples])
  assert.ok(rd.bw_dev > 0 || rd.bw_min === rd.bw_max)
  assert.ok(rd.bw_agg > 0 && rd.bw_agg <= 100)

  // two copies with group_reporting: fio sums min, max, mean, S and the samples
  const stat = (min: number, max: number, mean: number, S: number): SampleStat => ({ min, max, samples: 2, mean, S })
  const copy = (s: SampleStat): GeneratorResult => ({ ...r, read: { ...r.read, bwStat: s, iopsStat: s } })
  const grouped = { ...spec!, groupReporting: true }
  const two = toFioJson([{ spec: grouped, device: 'null', chain: [], vms: [copy(stat(10, 30, 20, 200)), copy(stat(100, 300, 200, 20000))] }], { version: 't' }).jobs[0]!.read
  assert.deepEqual([two.bw_min, two.bw_max, two.bw_mean, two.bw_samples], [110, 330, 220, 4])
  assert.ok(Math.abs(two.bw_dev - Math.sqrt(20200 / 3)) < 1e-9)
})

test('usr_cpu and sys_cpu are the process\'s CPU time over the run, % of the run; ctx and faults come with them', async () => {
  const [spec] = job('[j]\nrw=randread\nbs=4k\nsize=1m\niodepth=4\ntime_based\nruntime=300ms\n')
  const r = await drive(generatorOptionsFor(spec!, { capacity: 1 << 20 }), 'sync')
  assert.ok(r.usage !== undefined && r.usage.userUs > 0, 'a busy generator used CPU')
  const e = toFioJson([{ spec: spec!, device: 'null', chain: [], vms: [r] }], { version: 't' }).jobs[0]!
  assert.ok(Math.abs(e.usr_cpu - (r.usage.userUs / 1000) * 100 / Math.round(r.runtimeMs)) < 1e-9)
  assert.ok(e.usr_cpu > 1, `a synchronous disk keeps the thread busy (usr_cpu ${e.usr_cpu})`)
  assert.ok(e.ctx >= 0 && e.minf >= 0)
  // fio's formula over the copies of a group_reporting entry: Σ CPU time / Σ runtime
  const fake = (userUs: number, systemUs: number, runtimeMs: number): GeneratorResult => ({ ...r, runtimeMs, usage: { userUs, systemUs, ctx: 7, minorFaults: 3, majorFaults: 0 } })
  const two = toFioJson([{ spec: { ...spec!, groupReporting: true }, device: 'null', chain: [], vms: [fake(500_000, 100_000, 1000), fake(700_000, 100_000, 1000)] }], { version: 't' }).jobs[0]!
  assert.deepEqual([two.usr_cpu, two.sys_cpu, two.ctx, two.minf, two.majf], [60, 10, 7, 3, 0])
  assert.equal(two.job_runtime, 2000, "fio's job_runtime of a group is the sum over its members")
})

test('iodepth_level counts I/Os by how many were in flight at their issue; latency buckets under 0.01 % read 0.01, as fio', async () => {
  const [spec] = job('[j]\nrw=randread\nbs=4k\nsize=4m\niodepth=8\n')
  const r = await drive(generatorOptionsFor(spec!, { capacity: 4 << 20 }))
  assert.equal(r.depthLevels!.reduce((s, c) => s + c, 0), r.read.totalIos)
  const e = toFioJson([{ spec: spec!, device: 'null', chain: [], vms: [r] }], { version: 't' }).jobs[0]!
  assert.ok(e.iodepth_level['8']! > 80, `the queue stays full: ${JSON.stringify(e.iodepth_level)}`)
  assert.ok(e.iodepth_level['1']! > 0, 'the first I/O was issued alone')
  assert.equal(e.iodepth_submit['4'], 100)
  assert.equal(e.latency_depth, 8)
  const levels: GeneratorResult = { ...r, depthLevels: [1, 0, 0, 9999, 0, 0, 0] }
  const floor = toFioJson([{ spec: spec!, device: 'null', chain: [], vms: [levels] }], { version: 't' }).jobs[0]!
  assert.equal(floor.iodepth_level['1'], 0.1, 'one I/O in 10,000 is shown as fio\'s floor, 0.1 %')
  assert.equal(floor.iodepth_level['8'], 99.99)
  const h = new LatencyHistogram()
  for (let i = 0; i < 20_000; i++) h.record(3000)
  h.record(5e6)
  const one: GeneratorResult = { ...r, read: { ...r.read, latency: h.toJSON(), totalIos: h.count } }
  const d = toFioJson([{ spec: spec!, device: 'null', chain: [], vms: [one] }], { version: 't' }).jobs[0]!
  assert.equal(d.latency_ms['10'], 0.01, 'one I/O in 20,001 is shown as 0.01 %')
  assert.ok(Math.abs(d.latency_us['4']! - (20_000 * 100) / 20_001) < 1e-9)
})

test('percentiles go where fio puts them: clat by default, lat too with lat_percentiles=1, none with clat_percentiles=0', async () => {
  const entry = async (extra: string): Promise<FioJobEntry> => {
    const [spec] = job(`[j]\nrw=randread\nbs=4k\nsize=256k\n${extra}`)
    const vms = [await drive(generatorOptionsFor(spec!, { capacity: 1 << 20 }))]
    return toFioJson([{ spec: spec!, device: 'null', chain: [], vms }], { version: 't' }).jobs[0]!
  }
  const has = (e: FioJobEntry): string[] => (['slat_ns', 'clat_ns', 'lat_ns'] as const).filter((k) => e.read[k].percentile !== undefined)
  assert.deepEqual(has(await entry('')), ['clat_ns'])
  assert.deepEqual(has(await entry('lat_percentiles=1\n')), ['clat_ns', 'lat_ns'])
  assert.deepEqual(has(await entry('clat_percentiles=0\n')), [])
  assert.deepEqual(has(await entry('slat_percentiles=1\n')), ['clat_ns'], 'slat has no samples, so no percentiles (as fio with none)')
  const e = await entry('')
  assert.deepEqual({ ...e.read.clat_ns, percentile: undefined }, { ...e.read.lat_ns, percentile: undefined }, 'clat is issue → completion, as lat')
  assert.equal(e.read.slat_ns.N, 0)
})

test('percentile_list is sorted, as fio sorts it', () => {
  const [j] = job('[j]\npercentile_list=99.9:50:1:99\n')
  assert.deepEqual(j!.percentiles, [1, 50, 99, 99.9])
})

test('size suffixes Ki, Mi, Gi are fio\'s k, m, g (kb_base applies); KiB stays fio\'s inverted 1000', () => {
  const size = (v: string, kb = ''): number | null => job(`[j]\n${kb}size=${v}\n`)[0]!.size
  assert.equal(size('1Gi'), 2 ** 30)
  assert.equal(size('2Mi'), 2 * 2 ** 20)
  assert.equal(size('1Ki'), 1024)
  assert.equal(size('4ki'), 4096)
  assert.equal(size('1KiB'), 1000)
  assert.equal(size('1Ki', 'kb_base=1000\n'), 1000)
  assert.equal(size('1KiB', 'kb_base=1000\n'), 1024)
})

test('keyword arithmetic: $ncpus, $mb_memory and $pagesize in expressions, evaluated as fio (whole numbers)', () => {
  const ncpus = os.cpus().length
  const mb = Math.floor(os.totalmem() / 2 ** 20)
  const [j] = job('[j]\niodepth=$ncpus*4\nsize=8*$mb_memory\nbs=$pagesize*2\nnumjobs=($ncpus+1)/2\noffset=$pagesize\n')
  assert.equal(j!.iodepth, ncpus * 4)
  assert.equal(j!.size, 8 * mb, 'fio: $mb_memory is a number of MiB, so 8*$mb_memory is that many bytes')
  assert.deepEqual(j!.bs.read, { kind: 'fixed', bs: 8192 })
  assert.equal(j!.numjobs, Math.trunc((ncpus + 1) / 2), 'division truncates, as bc')
  assert.equal(j!.offset, 4096)
  let caught: unknown
  try {
    job('[j]\nsize=$ncpus*4k\n')
  } catch (e) {
    caught = e
  }
  assert.ok(caught instanceof JobFileError && caught.code === BenchErrorCode.JobBadValue)
  assert.match(caught.message, /^job\.fio:2: size=\$ncpus\*4k: "k" is not arithmetic; fio evaluates keyword arithmetic in whole numbers/)
})

test('fio reads the same keyword arithmetic and suffixes to the same values', { skip: fioMissing }, () => {
  const dir = scratch()
  try {
    const cases = ['size=8*$mb_memory', 'size=$pagesize*2', 'size=1Gi', 'size=2Mi', 'size=1Ki']
    for (const c of cases) {
      const file = path.join(dir, 'k.fio')
      fs.writeFileSync(file, `[k]\nioengine=null\nrw=read\nbs=512\n${c}\n`)
      const fio = JSON.parse(runFioText(file)) as { jobs: { read: { io_bytes: number } }[] }
      const [ours] = parseJobText(`[k]\nrw=read\nbs=512\n${c}\n`, { file: 'k.fio', env: {} })
      // fio reads whole 512-byte blocks of the size
      assert.equal(Math.floor(ours!.size! / 512) * 512, fio.jobs[0]!.read.io_bytes, c)
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('time_based without a runtime: listed as ignored and the job runs to its size, as fio (which warns)', async () => {
  const [spec] = job('[j]\nrw=read\nbs=4k\nsize=256k\ntime_based\n')
  assert.equal(spec!.timeBased, false)
  assert.equal(spec!.ignored[0]!.option, 'time_based')
  const r = await drive(generatorOptionsFor(spec!, { capacity: 1 << 20 }))
  assert.equal(r.read.totalIos, 64)
})

test('a size-based job that ends within its ramp_time counts its I/O, as fio (the ramp never ended)', { timeout: 60_000 }, async () => {
  const [spec] = job('[j]\nrw=read\nbs=4k\nsize=256k\nramp_time=30\n')
  const r = await drive(generatorOptionsFor(spec!, { capacity: 1 << 20 }))
  assert.equal(r.status, 'ok')
  assert.equal(r.read.totalIos, 64, 'not 0 I/Os with status ok')
  assert.equal(r.read.ioBytes, 256 * 1024)
  assert.ok(r.read.bwStat!.samples === 0, 'a job under 500 ms has no bandwidth sample, as fio')
  // a ramp that ends: what completed in it is left out
  const [timed] = job('[t]\nrw=read\nbs=4k\nsize=256k\nramp_time=100ms\ntime_based\nruntime=200ms\n')
  const log: number[] = []
  const t = await drive(generatorOptionsFor(timed!, { capacity: 1 << 20 }), 'async', () => log.push(1))
  assert.ok(t.read.totalIos > 0 && t.read.totalIos < log.length)
})

test('fio counts the I/O of a job that ends within its ramp too, and runs time_based without a runtime to its size', { skip: fioMissing }, () => {
  const dir = scratch()
  try {
    for (const extra of ['ramp_time=30', 'time_based']) {
      const file = path.join(dir, 'r.fio')
      fs.writeFileSync(file, `[r]\nioengine=null\nrw=read\nbs=4k\nsize=256k\n${extra}\n`)
      const fio = JSON.parse(runFioText(file).replace(/^[^{]*/, '')) as { jobs: { read: { total_ios: number } }[] }
      assert.equal(fio.jobs[0]!.read.total_ios, 64, extra)
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('rate and rate_iops pace each direction as fio: per direction values, and a mixed job takes the direction that is due', async () => {
  const [j] = job('[j]\nrate=1m,500k\nrate_iops=2000\nrate_min=1k\n')
  assert.deepEqual(j!.rate, { read: 2 ** 20, write: 500 * 1024 })
  assert.deepEqual(j!.rateIops, { read: 2000, write: 2000 })
  assert.deepEqual(j!.ignored.map((i) => i.option), ['rate_min'])
  const [slow] = job('[s]\nrw=read\nbs=4k\nsize=64k\nrate_iops=50\n')
  const t0 = performance.now()
  const r = await drive(generatorOptionsFor(slow!, { capacity: 1 << 20 }))
  assert.equal(r.read.totalIos, 16)
  assert.ok(performance.now() - t0 >= 290, '16 I/Os at 50 a second take 0.3 s')
  const [mixed] = job('[m]\nrw=randrw\nbs=4k\nsize=1m\niodepth=8\ntime_based\nruntime=1\nrate_iops=200,100\n')
  const m = await drive(generatorOptionsFor(mixed!, { capacity: 1 << 20 }))
  assert.ok(m.read.totalIos >= 180 && m.read.totalIos <= 202, `reads at 200 a second: ${m.read.totalIos}`)
  assert.ok(m.write.totalIos >= 90 && m.write.totalIos <= 101, `writes at 100 a second: ${m.write.totalIos}`)
})

test('fio paces the same job file to the same counts', { skip: fioMissing, timeout: 60_000 }, () => {
  const dir = scratch()
  try {
    const file = path.join(dir, 'p.fio')
    fs.writeFileSync(file, '[p]\nioengine=null\nrw=randrw\nbs=4k\nsize=1m\niodepth=8\ntime_based\nruntime=1\nrate_iops=200,100\n')
    const fio = JSON.parse(runFioText(file)) as { jobs: { read: { total_ios: number }; write: { total_ios: number } }[] }
    assert.ok(Math.abs(fio.jobs[0]!.read.total_ios - 200) <= 20, `fio: ${fio.jobs[0]!.read.total_ios} reads`)
    assert.ok(Math.abs(fio.jobs[0]!.write.total_ios - 100) <= 10, `fio: ${fio.jobs[0]!.write.total_ios} writes`)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('random offsets with bssplit align to the smallest block, and a pass covers no block twice', async () => {
  const [spec] = job('[j]\nrw=randread\nbssplit=4k/50:64k/50\nsize=1m\n')
  const ios: [number, number][] = []
  await drive(generatorOptionsFor(spec!, { capacity: 1 << 20 }), 'sync', (_op, off, len) => ios.push([off, len]))
  assert.ok(ios.every(([off]) => off % 4096 === 0))
  assert.ok(ios.some(([off]) => off % 65536 !== 0), 'not only at multiples of the largest size')
  assert.ok(ios.every(([off, len]) => off + len <= 1 << 20), 'every I/O inside the region')
  const seen = new Uint8Array(256)
  let overlaps = 0
  for (const [off, len] of ios) for (let b = off / 4096; b < (off + len) / 4096; b++) overlaps += seen[b]!++ > 0 ? 1 : 0
  assert.equal(overlaps, 0, 'within the pass (1 MiB of I/O), each 4 KiB block is read at most once')
  // per-direction sizes: each direction aligns to its own smallest size, and a write never starts
  // where it would not fit
  const [mixed] = job('[m]\nrw=randrw\nbs=4k,64k\nsize=256k\nloops=4\n')
  const writes: [number, number][] = []
  await drive(generatorOptionsFor(mixed!, { capacity: 1 << 20 }), 'sync', (op, off, len) => {
    if (op === 'write') writes.push([off, len])
  })
  assert.ok(writes.length > 0 && writes.every(([off, len]) => off % 65536 === 0 && len === 65536 && off + len <= 256 * 1024))
  // I/Os cut short where they meet a covered block stay whole verify chunks: a write-only job
  // with verify reads every chunk back and finds it intact
  const [verified] = job('[v]\nrw=randwrite\nbssplit=8k/40:32k/60\nsize=1m\nverify=crc32c\n')
  const disk = new Uint8Array(1 << 20)
  let gen: IoGenerator
  gen = new IoGenerator(generatorOptionsFor(verified!, { capacity: 1 << 20 }), (op, off, len, data, tag) => {
    if (op === 'write') disk.set(data.subarray(0, len), off)
    else data.set(disk.subarray(off, off + len))
    gen.complete(tag, null)
  })
  const v = await gen.run()
  assert.equal(v.status, 'ok', v.status === 'ok' ? '' : v.message)
  assert.equal(v.verify!.checkedChunks, v.write.ioBytes / 8192, 'every chunk written is read back and checked')
})

test('--runtime is fio\'s: a default the job file\'s runtime overrides; the standard job runs that long', () => {
  const dir = scratch()
  try {
    const file = path.join(dir, 'r.fio')
    fs.writeFileSync(file, '[own]\nruntime=3\nsize=1m\n\n[none]\nsize=1m\n')
    const [own, none] = loadJobs({ job: file, runtimeS: 10 })
    assert.equal(own!.runtimeMs, 3000)
    assert.equal(none!.runtimeMs, 10_000)
    assert.equal(none!.timeBased, false, 'a cap, not time based (fio runs it to its size or 10 s)')
    const [std] = loadJobs({ runtimeS: 2 })
    assert.equal(std!.runtimeMs, 2000)
    assert.ok(std!.timeBased)
    assert.equal(loadJobs({})[0]!.runtimeMs, 5000)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('fio too: a command-line runtime does not override the job file\'s', { skip: fioMissing, timeout: 60_000 }, () => {
  const dir = scratch()
  try {
    const file = path.join(dir, 'r.fio')
    fs.writeFileSync(file, '[r]\nioengine=null\nrw=read\nbs=4k\nsize=64g\nruntime=1\n')
    const out = path.join(dir, 'out.json')
    const r = spawnSync('fio', ['--runtime=3', '--output-format=json', `--output=${out}`, file], { encoding: 'utf8' })
    assert.equal(r.status, 0, r.stderr)
    const fio = JSON.parse(fs.readFileSync(out, 'utf8')) as { jobs: { job_runtime: number }[] }
    assert.ok(fio.jobs[0]!.job_runtime < 2000, `fio ran ${fio.jobs[0]!.job_runtime} ms: the file's 1 s`)
    assert.equal(loadJobs({ job: file, runtimeS: 3 })[0]!.runtimeMs, 1000)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('results of older producers (no samples, usage or depths) still render, with those figures 0', () => {
  const [spec] = job('[j]\nrw=read\n')
  const h = new LatencyHistogram()
  h.record(1000)
  const dir = { ioBytes: 4096, totalIos: 1, errors: 0, runtimeMs: 1, iops: 1000, bwBytes: 4096000, latency: h.toJSON(), minNs: 1000, maxNs: 1000, meanNs: 1000, stddevNs: 0 }
  const empty = { ...dir, ioBytes: 0, totalIos: 0, runtimeMs: 0, iops: 0, bwBytes: 0, latency: new LatencyHistogram().toJSON() }
  const old: BenchJobResult = { spec: spec!, device: 'null', chain: [], vms: [{ status: 'ok', seed: 1, runtimeMs: 1, read: dir, write: empty, maxInflight: 1, spuriousCompletions: 0, verify: null }] }
  const e = toFioJson([old], { version: 't' }).jobs[0]!
  assert.deepEqual([e.read.bw_samples, e.usr_cpu, e.iodepth_level['1']], [0, 0, 0])
  assert.equal(e.read.total_ios, 1)
})

const ENTRIES_JOB = `[global]
ioengine=null
size=1m
readwrite=randread
time_based
runtime=100ms

[a]
blocksize=4k
runtime=100ms
iodepth=2
timeout=200ms
norandommap
description=copies of a, no group_reporting
rwmixwrite=30
numjobs=2
name=renamed

[b]
stonewall
bs=8k
norandommap=1
numjobs=2
group_reporting

[c]
rw=read
group_reporting
`

test('"job options" as fio echoes them: fio\'s names, first-set order, last value, no bare flags', () => {
  const [a, b] = job(ENTRIES_JOB)
  assert.deepEqual(a!.jobOptions, { bs: '4k', runtime: '200ms', iodepth: '2', description: 'copies of a, no group_reporting', rwmixwrite: '30', numjobs: '2', name: 'renamed' })
  assert.deepEqual(a!.globalOptions, { ioengine: 'null', size: '1m', rw: 'randread', runtime: '100ms' })
  assert.deepEqual(b!.jobOptions, { bs: '8k', norandommap: '1', numjobs: '2' })
  assert.equal(b!.groupReporting, true)
})

test('numjobs copies are entries of their own (the first named by name=, the others by the section), merged per group with group_reporting', async () => {
  const specs = job(ENTRIES_JOB)
  const one = async (spec: JobSpec, clone: number): Promise<GeneratorResult> => drive({ ...generatorOptionsFor(spec, { capacity: 1 << 20, clone }), runtimeMs: 50 })
  const results: BenchJobResult[] = []
  for (const spec of specs) results.push({ spec, device: 'null', chain: [], vms: await Promise.all(Array.from({ length: spec.numjobs }, (_, c) => one(spec, c))) })
  const doc = toFioJson(results, { version: 't' })
  assert.deepEqual(doc.jobs.map((j) => [j.jobname, j.groupid, j.iofcert.vms]), [['renamed', 0, 1], ['a', 0, 1], ['b', 1, 3]])
  const [first, second, grouped] = doc.jobs
  assert.equal(first!.read.total_ios, results[0]!.vms[0]!.read.totalIos, 'a copy is its own entry')
  assert.equal(second!.read.total_ios, results[0]!.vms[1]!.read.totalIos)
  assert.equal(grouped!.read.total_ios, [...results[1]!.vms, ...results[2]!.vms].reduce((s, v) => s + v.read.totalIos, 0), 'b\'s copies and c: one group')
  assert.deepEqual(grouped!['job options'], { rw: 'read' }, "fio: the group's last job's options")
  assert.equal(first!.desc, 'copies of a, no group_reporting')
})

test('fio 3.33 reports the same entries, names, groups, job options and global options for the same job file', { skip: fioMissing, timeout: 60_000 }, async () => {
  const dir = scratch()
  try {
    const file = path.join(dir, 'entries.fio')
    fs.writeFileSync(file, ENTRIES_JOB)
    const fio = JSON.parse(runFioText(file)) as { 'global options': Json; jobs: Json[] }
    const { doc } = await runBench({ job: file, device: 'null', version: 'test' })
    const shape = (d: { 'global options'?: unknown; jobs: Json[] }): unknown => ({
      global: d['global options'],
      jobs: d.jobs.map((j) => [j.jobname, j.groupid, j['job options'], j.desc ?? null, (j.read as Json).total_ios !== 0]),
    })
    assert.deepEqual(shape(doc as unknown as { jobs: Json[] }), shape(fio))
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('$pagesize comes from the kernel\'s AT_PAGESZ, as fio\'s sysconf: 64 KiB pages read 65536', () => {
  // an auxiliary vector as a 64 KiB-page arm64 (8-byte words) and a 16 KiB-page 32-bit big-endian machine give it
  const vector = (wide: boolean, le: boolean, pairs: [number, number][]): Buffer => {
    const step = wide ? 8 : 4
    const b = Buffer.alloc(pairs.length * 2 * step)
    pairs.forEach(([t, v], i) => {
      for (const [at, x] of [[i * 2 * step, t], [(i * 2 + 1) * step, v]] as const) {
        if (wide) le ? b.writeBigUInt64LE(BigInt(x), at) : b.writeBigUInt64BE(BigInt(x), at)
        else le ? b.writeUInt32LE(x, at) : b.writeUInt32BE(x, at)
      }
    })
    return b
  }
  assert.equal(auxvPageSize(vector(true, true, [[33, 7], [16, 0xbfebfbff], [6, 65536], [17, 100], [0, 0]]), true, true), 65536)
  assert.equal(auxvPageSize(vector(false, false, [[16, 1], [6, 16384], [0, 0]]), false, false), 16384)
  assert.equal(auxvPageSize(vector(true, true, [[16, 1], [0, 0], [6, 8192]]), true, true), null, 'the vector ends at type 0')
})

test('$pagesize is the machine\'s page size (what getconf PAGESIZE says)', () => {
  const getconf = spawnSync('getconf', ['PAGESIZE'], { encoding: 'utf8' })
  const expected = getconf.status === 0 ? Number(getconf.stdout.trim()) : 4096
  assert.equal(pageSize(), expected)
  const [j] = job('[j]\nbs=$pagesize\n')
  assert.deepEqual(j!.bs.read, { kind: 'fixed', bs: expected })
})
