import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { renderBenchTable } from '../harness/bench/console.js'
import { parseFioJson, toFioJson } from '../harness/bench/fio-json.js'
import { fioVersion, runFio, toNullEngineJobText } from '../harness/bench/fio-runner.js'
import { IoGenerator, generatorOptionsFor } from '../harness/bench/generator.js'
import { parseJobFile, parseJobText } from '../harness/bench/jobfile.js'

const EXAMPLES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/fio-examples')
const fioMissing = spawnSync('fio', ['--version']).status === 0 ? false : 'fio is not installed (apt-get install fio)'

test('the null-engine job file keeps the workload and drops device options', () => {
  const text = toNullEngineJobText(parseJobFile(path.join(EXAMPLES, 'ssd-test.fio')), { deviceBytes: 2 ** 30 })
  assert.match(text, /^\[global\]\nioengine=null\nlat_percentiles=1$/m)
  assert.doesNotMatch(text, /filename|directory|direct|libaio/)
  assert.deepEqual(text.match(/^\[[^\]]+\]$/gm), ['[global]', '[seq-read]', '[rand-read]', '[seq-write]', '[rand-write]'])
  assert.equal(text.match(/^stonewall$/gm)?.length, 4)
  assert.match(text, /^\[rand-write\]\nrw=randwrite\nbs=4096,4096\niodepth=4\nnumjobs=1\nsize=10737418240\nruntime=60000ms\n/m)
  const other = toNullEngineJobText(parseJobText('[a]\nbs=4k-64k\n[b]\nbssplit=4k/25:8k/75,16k/100\nnew_group\n[c]\nsize=1m\nverify=crc32c\n', { file: 'x.fio', env: {} }), { deviceBytes: 2 ** 20 })
  assert.match(other, /^bsrange=4096-65536,4096-65536$/m)
  assert.match(other, /^bssplit=4096\/25:8192\/75,16384\/100$/m)
  assert.match(other, /^new_group$/m)
  assert.doesNotMatch(other, /verify/, 'the null engine stores nothing to verify')
  assert.match(other, /^\[a\]\nrw=read\nbsrange=\S+\niodepth=1\nnumjobs=1\nsize=1048576\n/m, 'a job without a size gets the device size')
})

test('runFio resolves to null when there is no fio', async () => {
  assert.equal(await fioVersion('/nonexistent/fio'), null)
  assert.equal(await runFio(path.join(EXAMPLES, 'null.fio'), { fioPath: '/nonexistent/fio' }), null)
})

test('runFio runs a real job file on fio\'s null engine, --runtime for a job that sets none', { skip: fioMissing }, async () => {
  // fio-rand-RW.fio runs 900 s: as fio, --runtime would not shorten it, so this copy has no runtime
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-fiorun-'))
  const file = path.join(dir, 'fio-rand-RW.fio')
  fs.writeFileSync(file, fs.readFileSync(path.join(EXAMPLES, 'fio-rand-RW.fio'), 'utf8').replace(/^runtime=900$/m, ''))
  const run = await runFio(file, { runtimeS: 0.5 })
  fs.rmSync(dir, { recursive: true, force: true })
  assert.ok(run !== null)
  assert.match(run.version, /^fio-/)
  assert.match(run.jobText, /^runtime=500ms\ntime_based$/m)
  const { summary } = run
  assert.equal(summary.producer, 'fio')
  assert.equal(summary.jobs.length, 4, 'numjobs=4: fio reports each copy')
  for (const j of summary.jobs) {
    assert.equal(j.name, 'file1')
    assert.ok(j.read.iops > 0 && j.write.iops > 0)
    const share = j.read.totalIos / (j.read.totalIos + j.write.totalIos)
    assert.ok(share > 0.55 && share < 0.65, `rwmixread=60 gives ${share}`)
    assert.equal(j.read.lat.percentileSource, 'lat')
  }
})

test('fio and our generator side by side: stonewalled groups and a ratio column', { skip: fioMissing }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-fiorun-'))
  const file = path.join(dir, 'two.fio')
  fs.writeFileSync(file, '[global]\nbs=4k\nsize=8m\nfilename=/dev/sdz\n[reads]\nrw=randread\niodepth=8\n[writes]\nrw=write\nstonewall\n')
  const run = await runFio(file)
  fs.rmSync(dir, { recursive: true, force: true })
  assert.ok(run !== null)
  assert.deepEqual(run.summary.jobs.map((j) => [j.name, j.groupId, j.read.totalIos, j.write.totalIos]), [['reads', 0, 2048, 0], ['writes', 1, 0, 2048]])

  const specs = parseJobText('[global]\nbs=4k\nsize=8m\n[reads]\nrw=randread\niodepth=8\n[writes]\nrw=write\nstonewall\n', { file: 'two.fio', env: {} })
  const results = []
  for (const spec of specs) {
    let gen: IoGenerator
    gen = new IoGenerator(generatorOptionsFor(spec, { capacity: 8 * 2 ** 20 }), (_o, _f, _l, _d, tag) => gen.complete(tag, null))
    results.push({ spec, device: 'none', chain: [], vms: [await gen.run()] })
  }
  const ours = parseFioJson(JSON.stringify(toFioJson(results, { version: '0' })))
  const table = renderBenchTable(ours, { fio: run.summary })
  assert.match(table, /reads .* read .*×/)
  assert.match(table, /writes .* write .*×/)
})
