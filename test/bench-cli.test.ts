/**
 * `iofcert bench` end to end: the real fio example job files run as written (their runtimes cut
 * to 1 s, and `--runtime 1` for those that set none)
 * and give fio-layout JSON that the reader written for fio's own output parses; the null device
 * refuses verify jobs; a verify job on a file device through the reference cache filter finds a
 * corruption injected into the image; the jobs of a phase run on threads of the bench pool; a
 * filter that kills its VM's worker is reported, with its baseline kept; `npm run bench`'s script
 * writes its ratios.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import test from 'node:test'
import { fileURLToPath } from 'node:url'
import { MessageChannel, threadId } from 'node:worker_threads'
import runJob, { type JobPhaseReply, type JobTaskMessage } from '../harness/bench/job-worker.js'
import { runBench } from '../harness/bench/run.js'
import { parseFioJson } from '../harness/bench/fio-json.js'
import { generatorOptionsFor, type GeneratorResult } from '../harness/bench/generator.js'
import type { InWorkerTask } from '../harness/bench/in-worker.js'
import { parseJobText } from '../harness/bench/jobfile.js'
import { Cluster } from '../harness/framework/index.js'
import { CLASS_CAPABILITY } from '../harness/framework/policy.js'
import { buildPackage } from '../harness/framework/package/index.js'
import { referenceFilter } from './helpers/cluster.js'
import { metadata, scratch, writeFilterDir } from './package-fixtures.js'

const MAIN = fileURLToPath(new URL('../harness/cli/main.js', import.meta.url))
const STANDARD = fileURLToPath(new URL('../harness/bench/standard.js', import.meta.url))
const IN_WORKER = new URL('../harness/bench/in-worker.js', import.meta.url).href
const EXAMPLES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/fio-examples')

interface Run {
  code: number
  stdout: string
  stderr: string
}

function node(args: string[], cwd?: string): Promise<Run> {
  return new Promise(resolve => {
    execFile(process.execPath, args, { maxBuffer: 64 << 20, env: { ...process.env, CI: '1' }, ...(cwd ? { cwd } : {}) }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

test('every fio example job file runs with --runtime 1 and gives fio-layout JSON', async () => {
  const files = fs.readdirSync(EXAMPLES).filter(f => f.endsWith('.fio')).sort()
  assert.ok(files.length >= 10)
  // as fio's, --runtime does not shorten a job file's own runtime (900 s in most examples): copies
  // with their runtime cut to 1 s run instead
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-bench-examples-'))
  for (const f of files) fs.writeFileSync(path.join(dir, f), fs.readFileSync(path.join(EXAMPLES, f), 'utf8').replace(/^runtime=\d+$/gm, 'runtime=1'))
  for (const f of files) {
    const r = await node([MAIN, 'bench', '--job', path.join(dir, f), '--runtime', '1', '--json', '-'])
    assert.equal(r.code, 0, `${f}: exit ${r.code}\n${r.stderr}`)
    const doc = parseFioJson(r.stdout)
    assert.equal(doc.producer, 'iofcert', f)
    assert.ok(doc.jobs.length >= 1, f)
    for (const j of doc.jobs) {
      assert.equal(j.error, 0, `${f}/${j.name}`)
      assert.ok(j.read.totalIos + j.write.totalIos > 0, `${f}/${j.name} did I/O`)
      assert.ok(j.iofcert !== undefined, `${f}/${j.name} has the iofcert block`)
    }
  }
  fs.rmSync(dir, { recursive: true, force: true })
})

test('the null device measures the path alone and refuses jobs that verify data', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-bench-cli-'))
  try {
    const job = path.join(dir, 'v.fio')
    fs.writeFileSync(job, '[v]\nrw=randwrite\nbs=4k\nsize=1m\nverify=crc32c\n')
    const refused = await node([MAIN, 'bench', '--job', job, '--device', 'null'])
    assert.equal(refused.code, 2)
    assert.match(refused.stderr, /job v verifies its data, and the null device keeps none/)
    const bad = await node([MAIN, 'bench', '--device', 'nvme'])
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /--device must be memory, file or null/)
    const ok = await node([MAIN, 'bench', '--device', 'null', '--runtime', '0.3', '--json', '-'])
    assert.equal(ok.code, 0, ok.stderr)
    const doc = parseFioJson(ok.stdout)
    assert.ok(doc.jobs[0]!.read.totalIos > 0 && doc.jobs[0]!.write.totalIos > 0)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('a job file that includes a file that is not a job file: exit 2, the file and line named, nothing of it shown', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-bench-cli-'))
  try {
    const secret = path.join(dir, 'shadow')
    fs.writeFileSync(secret, 'root:$y$j9T$SECRETSALT$SECRETHASH:19000:0:99999:7:::\n')
    const job = path.join(dir, 'inc.fio')
    fs.writeFileSync(job, `[inc]\nrw=randread\ninclude ${secret}\n`)
    const r = await node([MAIN, 'bench', '--job', job, '--runtime', '0.2'])
    assert.equal(r.code, 2, r.stderr)
    assert.equal(r.stderr, `iofcert bench: ${secret}:1: not a fio option line, and an included file holds fio options only (included from ${job}:3; the line is not shown)\n`)
    assert.ok(!r.stdout.includes('SECRET') && !r.stderr.includes('SECRET'))
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('a verify job on a file device through the cache filter finds a corruption injected into the image', async () => {
  const c = await Cluster.create({ ioTimeoutMs: 30_000 })
  try {
    const h = await c.addHost('esx1')
    const info = await c.describeModule(referenceFilter('cache'))
    await h.activate(info)
    c.createPolicy({ name: 'cached', rules: [{ filter: `${info.name}@${CLASS_CAPABILITY[info.cls]}` }] })
    h.createVm('vm1')
    const capacity = 4 << 20
    const disk = await h.addDisk('vm1', { id: 'd0', capacity, backing: 'file', policy: 'cached' })
    await h.vm('vm1').powerOn()
    const run = async (text: string) => {
      const [spec] = parseJobText(text, { file: 'job.fio' })
      return c.vm('vm1').runInWorker<GeneratorResult>('d0', IN_WORKER, { kind: 'job', options: generatorOptionsFor(spec!, { capacity, runSeed: 7 }) } satisfies InWorkerTask)
    }
    // write 1 MiB with verify headers through the cache filter
    const written = await run('[w]\nrw=write\nbs=4k\nsize=1m\nverify=crc32c\ndo_verify=0\n')
    assert.equal(written.status, 'ok')
    // flip bytes inside one 4 KiB block of the image itself, beneath the filter
    const at = 300 * 1024 + 100
    const fd = fs.openSync(disk.path!, 'r+')
    fs.writeSync(fd, Buffer.from([0xde, 0xad, 0xbe, 0xef]), 0, 4, at)
    fs.closeSync(fd)
    const checked = await run('[r]\nrw=read\nbs=4k\nsize=1m\nverify=crc32c\n')
    assert.equal(checked.status, 'verify-failed', 'the corruption is found')
    if (checked.status !== 'verify-failed') return
    assert.equal(checked.failure.offset, at - (at % 4096))
    assert.match(checked.message, new RegExp(String(at - (at % 4096))))
    // the I/O went through the cache filter, and the verify reads reached the image
    assert.deepEqual(c.vm('vm1').filterSpecs(disk).map(f => f.name), [info.name])
    assert.ok((await c.vm('vm1').driveStats('d0')).reads >= 256)
  } finally {
    await c.shutdown({ remove: true })
  }
})

test('npm run bench\'s script measures both devices beside fio and writes the ratios', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-bench-std-'))
  try {
    const out = path.join(dir, 'bench.json')
    const r = await node([STANDARD, '--runtime', '0.2', '--reps', '1', '--ramp', '0.1', '--json', out])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /null device \(I\/O path\)/)
    assert.match(r.stdout, /memory device \(data kept\)/)
    const doc = JSON.parse(fs.readFileSync(out, 'utf8')) as {
      workloads: { workload: string; null: { iops0: number; iops3: number }; memory: { iops0: number; iops3: number }; fio: { null: number | null; mmap: number | null }; ratios: Record<string, number | null> }[]
      targets: { workload: string; bareAtOrAboveFioNull: boolean | null; threePassThroughWithin10Pct: boolean }
      errors: number
      fio: string | null
    }
    assert.deepEqual(doc.workloads.map(w => w.workload), ['4k-randrw-70-30', '4k-randread', '4k-randwrite', '64k-seqwrite'])
    assert.equal(doc.errors, 0)
    for (const w of doc.workloads) {
      for (const v of [w.null.iops0, w.null.iops3, w.memory.iops0, w.memory.iops3]) assert.ok(v > 0, w.workload)
      if (doc.fio !== null) {
        assert.ok(w.fio.null! > 0 && w.fio.mmap! > 0, w.workload)
        assert.equal(w.ratios.nullToFioNull, Math.round((w.null.iops0 / w.fio.null!) * 1000) / 1000)
        assert.equal(w.ratios.memoryToFioMmap, Math.round((w.memory.iops0 / w.fio.mmap!) * 1000) / 1000)
      } else {
        assert.equal(w.ratios.nullToFioNull, null)
      }
    }
    assert.equal(doc.targets.workload, '4k-randrw-70-30')
    assert.equal(typeof doc.targets.threePassThroughWithin10Pct, 'boolean')
    assert.match(r.stdout, /4k-randrw-70-30: bare path ≥ fio null: (met|NOT met|not measured)/)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('the jobs of a phase run side by side on threads of the bench pool, and a stonewall waits for them', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-bench-pool-'))
  try {
    const job = path.join(dir, 'two.fio')
    fs.writeFileSync(job, '[global]\nbs=4k\nsize=4m\niodepth=4\ntime_based\n\n[a]\nrw=randread\n\n[b]\nrw=randwrite\nnumjobs=2\n\n[c]\nstonewall\nrw=read\n')
    const { results, doc } = await runBench({ job, device: 'null', runtimeS: 0.4, version: 'test' })
    assert.deepEqual(results.map(r => r.spec.name), ['a', 'b', 'c'])
    assert.deepEqual(results.map(r => r.vms.length), [1, 2, 1])
    const [a, b, c] = results.map(r => r.thread)
    for (const t of [a, b, c]) assert.ok(typeof t === 'number' && t !== threadId, 'each job ran on a pool thread, not this one')
    assert.notEqual(a, b, 'a and b share a phase: they ran at once, on two threads')
    assert.ok(doc.jobs.every(j => j.read.total_ios + j.write.total_ios > 0))
    // the pool is gone: nothing keeps this process alive
    assert.equal(results.every(r => r.vms.every(v => v.status === 'ok')), true)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('a job the pool thread cannot run comes back as a coded error, not a crash', async () => {
  const [spec] = parseJobText('[x]\nrw=read\nbs=4k\nsize=64k\n', { file: 'x.fio' })
  const options = generatorOptionsFor(spec!, { capacity: 1 << 20, runSeed: 1 })
  const { port1, port2 } = new MessageChannel()
  const task = runJob({ sides: [{ label: 'baseline', install: [], rules: [] }], device: 'memory', disks: [1000], keep: false, port: port2 })
  const reply = new Promise<JobPhaseReply>(resolve => port1.once('message', resolve))
  port1.postMessage({ t: 'phase', runs: [{ vm: 0, options }] } satisfies JobTaskMessage)
  const r = await reply
  port1.postMessage({ t: 'done' } satisfies JobTaskMessage)
  assert.deepEqual(await task, { ok: true, threadId }, 'the task ends when told, its error reported')
  port1.close()
  assert.equal(r.ok, false)
  if (r.ok) return
  assert.equal(r.name, 'IofError')
  assert.equal(r.code, 'DiskCapacityInvalid')
  assert.match(r.message, /1000/)
})

test('a filter that kills its VM\'s worker mid-run is a result: the baseline is kept, the job says crashed, exit 1', async () => {
  const s = await scratch()
  try {
    const source = [
      'let writes = 0',
      'export default {',
      "  abiVersion: 1, name: 'crasher', vendor: 'ACME', version: '1.0.0', class: 'cache',",
      // a filter has no process.exit: an exception nothing catches (thrown from a microtask, so at
      // once, before the profile's next await) ends its VM's worker
      "  open: () => ({ start: io => { if (io.op === 'write' && ++writes === 2000) queueMicrotask(() => { throw new Error('crasher kills its worker') }); return { kind: 'pass' } } }),",
      '}',
      '',
    ].join('\n')
    const dir = await writeFilterDir(s, 'crasher', { descriptor: metadata({ name: 'crasher', class: 'cache' }), source })
    const keyPem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
    const pkg = await buildPackage(dir, { keyPem, out: path.join(s.dir, 'crasher.tgz') })
    const r = await node([MAIN, 'bench', pkg.path, '--runtime', '0.5', '--json', path.join(s.dir, 'out.json')])
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stdout, /job randrw-70-30: crashed: VM "vm1" I\/O worker failed: .*crasher kills its worker/)
    // the table compares each direction with its baseline, in labels that give the sign's meaning
    assert.match(r.stdout, /baseline IOPS\s*│\s*IOPS vs no filter\s*│\s*p99 vs no filter/)
    assert.ok(!r.stdout.includes('overhead'))
    assert.match(r.stdout, /randrw-70-30\s*│\s*read\s*│.*│\s*[\d,]+\s*│\s*–\s*│\s*–\s*│/)
    assert.match(r.stdout, /filter profile \(tinybench, in the VM worker\): not measured \(the VM's worker failed during the profile/)
    const doc = parseFioJson(fs.readFileSync(path.join(s.dir, 'out.json'), 'utf8'))
    const job = doc.jobs[0]!
    assert.equal(job.error, 5)
    assert.equal(job.iofcert?.status, 'crashed')
    assert.equal(job.iofcert?.overhead, undefined, 'nothing measured, no overhead')
    assert.ok(job.iofcert!.baseline!.read.total_ios > 0 && job.iofcert!.baseline!.write.total_ios > 0, 'the baseline measured before the crash is kept')
  } finally {
    await s.cleanup()
  }
})
