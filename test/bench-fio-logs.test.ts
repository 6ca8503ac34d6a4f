/**
 * fio's log files from `iofcert bench`: write_bw_log, write_iops_log and write_lat_log (with
 * log_avg_msec, per_job_logs, log_offset, log_prio, log_max_value) name and lay out their files as
 * fio 3.33 does, the sample intervals of the JSON follow the logs' as fio's do, and fio's own
 * plotting script (fio2gnuplot) reads ours as it reads fio's. The comparisons with the real fio are
 * skipped without it.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { writeFioLogs } from '../harness/bench/fio-logs.js'
import { IoGenerator, generatorOptionsFor, type GeneratorResult } from '../harness/bench/generator.js'
import { parseJobText, type JobSpec } from '../harness/bench/jobfile.js'
import { runBench } from '../harness/bench/run.js'
import { fioMissing, runProgram } from './helpers/fio.js'


const MAIN = fileURLToPath(new URL('../harness/cli/main.js', import.meta.url))
const FIO2GNUPLOT = '/usr/bin/fio2gnuplot'
const gnuplotScriptMissing = fioMissing || (fs.existsSync(FIO2GNUPLOT) ? false : 'fio2gnuplot is not installed here (it comes with fio)')

const job = (text: string): JobSpec => parseJobText(text, { file: 'job.fio', env: {} })[0]!

const run = runProgram

/** Runs one copy of a job against a disk that completes each I/O on the next turn. */
function drive(spec: JobSpec): Promise<GeneratorResult> {
  let gen: IoGenerator
  const pending: number[] = []
  gen = new IoGenerator(generatorOptionsFor(spec, { capacity: 1 << 20 }), (_op, _off, _len, _data, tag) => {
    pending.push(tag)
    if (pending.length === 1) setImmediate(() => { for (const t of pending.splice(0)) gen.complete(t, null) })
  }, undefined, 20)
  return gen.run()
}

function scratch(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-logs-'))
}

const lines = (file: string): string[] => fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '')

test('the log options are read as fio reads them; write_*_log may stand alone', () => {
  const j = job('[j]\nwrite_bw_log\nwrite_iops_log=io\nwrite_lat_log=lat/x\nlog_avg_msec=250\nper_job_logs=0\nlog_offset=1\nlog_prio=1\nlog_max_value=1\n')
  assert.deepEqual(j.logs, { bw: '', iops: 'io', lat: 'lat/x', avgMs: 250, perJob: false, offset: true, prio: true, maxValue: true })
  assert.deepEqual(j.ignored, [], 'the log options are no longer ignored')
  assert.deepEqual(job('[j]\n').logs, { bw: null, iops: null, lat: null, avgMs: 0, perJob: true, offset: false, prio: false, maxValue: false })
  assert.throws(() => job('[j]\nlog_offset\n'), /option log_offset needs a value/)
})

test('bandwidth and IOPS are sampled every log_avg_msec when the job logs them, as fio (bwavgtime otherwise, and when set)', async () => {
  const base = '[j]\nrw=randrw\nbs=4k\nsize=1m\niodepth=4\ntime_based\nruntime=1200ms\n'
  const plain = await drive(job(base))
  assert.ok(plain.read.bwStat!.samples <= 2, `500 ms samples: ${plain.read.bwStat!.samples}`)
  const logged = await drive(job(`${base}write_bw_log=x\nwrite_iops_log=x\nlog_avg_msec=100\n`))
  for (const d of ['read', 'write'] as const) {
    assert.ok(logged[d].bwStat!.samples >= 8, `${d}: a sample every 100 ms (${logged[d].bwStat!.samples})`)
    assert.ok(logged[d].iopsStat!.samples >= 8)
  }
  assert.equal(logged.logs!.bw.length / 3, logged.read.bwStat!.samples + logged.write.bwStat!.samples, 'one bandwidth log entry per sample')
  const own = await drive(job(`${base}write_bw_log=x\nlog_avg_msec=100\nbwavgtime=400\n`))
  assert.ok(own.read.bwStat!.samples <= 3, 'bwavgtime set: its interval')
  assert.ok(own.read.iopsStat!.samples <= 2, 'no IOPS log: IOPS stay at 500 ms')
})

test('with log_avg_msec=0 a log has an entry per I/O, and its samples are per I/O, as fio', async () => {
  const r = await drive(job('[j]\nrw=randread\nbs=4k\nsize=256k\niodepth=2\nwrite_bw_log=x\nwrite_iops_log=x\nwrite_lat_log=x\n'))
  assert.equal(r.logs!.ios!.length / 5, 64, 'a record per I/O')
  assert.equal(r.read.bwStat!.samples, 64, "fio's bandwidth statistics come from every I/O then")
  assert.equal(r.read.iopsStat!.mean, 1, 'and IOPS samples are 1 each')
  const dir = scratch()
  try {
    const spec = job('[j]\nrw=randread\nbs=4k\nsize=256k\niodepth=2\nwrite_bw_log=x\nwrite_iops_log=x\nwrite_lat_log=x\nlog_offset=1\n')
    const w = writeFioLogs([{ spec, name: 'j', number: 1, result: r }], dir)
    assert.deepEqual(w.files.map((f) => path.basename(f)), ['x_lat.1.log', 'x_slat.1.log', 'x_clat.1.log', 'x_bw.1.log', 'x_iops.1.log'])
    const lat = lines(path.join(dir, 'x_lat.1.log'))
    assert.equal(lat.length, 64)
    const offsets = new Set<number>()
    for (const l of lat) {
      const [t, ns, d, bs, off, prio] = l.split(', ').map(Number)
      assert.ok(t! >= 0 && ns! > 0 && d === 0 && bs === 4096 && off! % 4096 === 0 && prio === 0, l)
      offsets.add(off!)
    }
    assert.equal(offsets.size, 64, 'each I/O with its own offset (a random pass covers every block)')
    assert.deepEqual(lines(path.join(dir, 'x_clat.1.log')), lat, 'clat is the same latency (issue → completion)')
    assert.deepEqual(lines(path.join(dir, 'x_slat.1.log')), [], 'slat has no samples: an empty file, as fio\'s for a synchronous submission')
    const bw = lines(path.join(dir, 'x_bw.1.log')).map((l) => l.split(', ').map(Number))
    for (const [i, l] of lat.entries()) assert.equal(bw[i]![1], Math.floor(4096e6 / Number(l.split(', ')[1])), "fio's per-I/O bandwidth: bytes × 10^6 / ns")
    assert.ok(lines(path.join(dir, 'x_iops.1.log')).every((l) => l.split(', ')[1] === '1'))
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('windowed latency logs: one entry per direction a window, its mean (or with log_max_value its largest)', async () => {
  const text = '[j]\nrw=randrw\nbs=4k\nsize=1m\niodepth=4\ntime_based\nruntime=700ms\nwrite_lat_log=x\nlog_avg_msec=100\n'
  const r = await drive(job(text))
  const entries = r.logs!.lat
  const n = entries.length / 3
  assert.ok(n >= 6 && n <= 16, `up to 8 windows of each direction: ${n}`)
  for (let d = 0; d < 2; d++) {
    const times = []
    for (let i = 0; i < entries.length; i += 3) if (entries[i + 2] === d) times.push(entries[i]!)
    // windows are aligned to 100 ms (fio's avg_last), one entry each; the last closes at the job's
    // end (fio's finalize_logs), however short it is
    for (let i = 1; i < times.length - 1; i++) assert.ok(Math.floor(times[i]! / 100) > Math.floor(times[i - 1]! / 100), `one window per 100 ms: ${times.join(' ')}`)
    assert.ok(times[times.length - 1]! >= times[times.length - 2]!)
  }
  const dir = scratch()
  try {
    writeFioLogs([{ spec: job(`${text}per_job_logs=0\nlog_prio=1\n`), name: 'j', number: 4, result: r }], dir)
    writeFioLogs([{ spec: job(`${text}per_job_logs=0\nlog_prio=1\n`), name: 'j', number: 5, result: r }], dir)
    const l = lines(path.join(dir, 'x_lat.log'))
    assert.equal(l.length, 2 * n, 'per_job_logs=0: no job number, and each writer appends, as fio')
    assert.match(l[0]!, /^\d+, \d+, [01], 0, 0x0000$/, 'windowed: block size 0; log_prio: the priority in hex')
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
  const max = await drive(job(`${text}log_max_value=1\n`))
  assert.ok(max.logs!.lat.length > 0)
  for (let i = 1; i < max.logs!.lat.length; i += 3) assert.ok(max.logs!.lat[i]! <= max.read.maxNs + max.write.maxNs)
})

const LOG_JOB = `[global]
ioengine=null
size=16m
bs=4k
iodepth=4
time_based
runtime=1

[mixed]
rw=randrw
write_bw_log=mix
write_iops_log=mix
write_lat_log=mix
log_avg_msec=100
numjobs=2

[single]
rw=read
write_bw_log
write_lat_log=one
log_offset=1
number_ios=20
time_based=0
`

/** File name → columns of the file's first line (null: an empty file). */
function shapes(dir: string): Map<string, number | null> {
  const out = new Map<string, number | null>()
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.log')).sort()) {
    const first = lines(path.join(dir, f))[0]
    out.set(f, first === undefined ? null : first.split(',').length)
  }
  return out
}

test('the same job file gives the log files fio writes, line for line in fio\'s layout, and fio2gnuplot reads ours as it reads fio\'s', { skip: gnuplotScriptMissing, timeout: 180_000 }, async () => {
  const dir = scratch()
  try {
    const file = path.join(dir, 'logs.fio')
    fs.writeFileSync(file, LOG_JOB)
    const ours = path.join(dir, 'ours')
    const theirs = path.join(dir, 'fio')
    fs.mkdirSync(ours)
    fs.mkdirSync(theirs)
    const r = await run(process.execPath, [MAIN, 'bench', '--job', file, '--device', 'null'], ours)
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /log files: mix_lat\.1\.log, /)
    const f = await run('fio', ['--output-format=json', '--output=o.json', file], theirs)
    assert.equal(f.code, 0, f.stderr)
    const a = shapes(ours)
    const b = shapes(theirs)
    assert.deepEqual([...a.keys()], [...b.keys()], 'the same file names: job numbers over every copy, _lat/_slat/_clat, a bare write_bw_log named after the job')
    for (const [name, cols] of b) {
      // slat: fio's null engine has submission latencies, ours none (its file is empty)
      if (name.includes('_slat.')) continue
      assert.equal(a.get(name), cols, `${name}: fio's columns`)
    }
    assert.equal(a.get('one_lat.3.log'), 6, 'log_offset: time, value, direction, size, offset, priority')
    assert.equal(lines(path.join(ours, 'one_lat.3.log')).length, 20, 'an entry per I/O')
    // fio2gnuplot makes its gnuplot files (and -g would render them): the same ones from either.
    // (The per-I/O log of a 20-I/O job is all at 0 ms, which fio2gnuplot leaves out and then
    // divides by zero, for fio's logs as for ours: the windowed logs are the ones to plot.)
    const outputs = async (where: string): Promise<string[]> => {
      const g = await run(FIO2GNUPLOT, ['-p', 'mix_bw*.log', '-d', 'plots'], where)
      assert.equal(g.code, 0, g.stdout + g.stderr)
      assert.match(g.stdout, /2 files Selected with pattern 'mix_bw\*\.log'/)
      return fs.readdirSync(path.join(where, 'plots')).sort()
    }
    const ourPlots = await outputs(ours)
    assert.deepEqual(ourPlots, await outputs(theirs))
    assert.ok(ourPlots.includes('mygraph') && ourPlots.includes('mymath'), ourPlots.join(' '))
    const global = fs.readFileSync(path.join(ours, 'plots', ourPlots.find((p) => p.endsWith('.global'))!), 'utf8')
    assert.match(global, /^avg=\d+\.\d\d$/m, 'fio2gnuplot read our values as numbers')
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('runBench writes the logs of every copy, numbered over the run, into logDir', { timeout: 60_000 }, async () => {
  const dir = scratch()
  try {
    const file = path.join(dir, 'j.fio')
    fs.writeFileSync(file, '[a]\nrw=read\nbs=4k\nsize=64k\nnumjobs=2\nwrite_iops_log=a\n\n[b]\nrw=write\nbs=4k\nsize=64k\nwrite_iops_log=b\nlog_avg_msec=50\n')
    const { logs } = await runBench({ job: file, device: 'null', version: 't', logDir: dir })
    assert.deepEqual(logs!.files.map((f) => path.relative(dir, f)), ['a_iops.1.log', 'a_iops.2.log', 'b_iops.3.log'])
    assert.equal(lines(path.join(dir, 'a_iops.2.log')).length, 16, 'per I/O: 64 KiB in 4 KiB I/Os')
    assert.deepEqual(logs!.truncated, [])
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
