/**
 * Jobs of one job file share disks as fio's jobs share files: copies and jobs that name the same
 * file (fio's filename=, or the same default `<section>.<copy>.0`) do their I/O on one disk, across
 * the phases of a run, so a write job followed by a separate verifying read job passes; jobs fio
 * gives distinct files keep fresh disks of their own.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { parseJobText } from '../harness/bench/jobfile.js'
import { planDisks, runBench } from '../harness/bench/run.js'

const MiB = 2 ** 20
const GiB = 2 ** 30
const jobs = (text: string) => parseJobText(text, { file: 'job.fio', env: {} })

test('one disk per file name, as fio names files; jobs linked by a file are one group over their phases', () => {
  // default names: each copy its own file (a.0.0, a.1.0), each job its own
  const own = planDisks(jobs('[a]\nsize=1m\nnumjobs=2\n\n[b]\nsize=2m\n\n[c]\nstonewall\n'))
  assert.deepEqual(own.files, [['a.0.0', 'a.1.0'], ['b.0.0'], ['c.0.0']])
  assert.deepEqual(own.groups.map((g) => [g.jobs, g.disks, g.first, g.last]), [[[0], [MiB, MiB], 0, 0], [[1], [2 * MiB], 0, 0], [[2], [GiB], 1, 1]])
  assert.deepEqual(own.disk, [[0, 1], [0], [0]])
  assert.deepEqual(own.phases, [[0, 1], [2]])

  // filename=: every copy on one disk, as large as the last copy's region
  const shared = planDisks(jobs('[a]\nfilename=data\nsize=1m\nnumjobs=3\noffset_increment=1m\n'))
  assert.deepEqual(shared.files, [['data']])
  assert.deepEqual(shared.disk, [[0, 0, 0]])
  assert.deepEqual(shared.groups[0]!.disks, [3 * MiB])

  // the same section name twice: fio's default file w.0.0 again, so the same disk, across phases;
  // a job between them on a file of its own is a group of its own
  const again = planDisks(jobs('[w]\nrw=write\nsize=1m\n\n[x]\nstonewall\nsize=1m\n\n[w]\nstonewall\nrw=read\nsize=4m\n'))
  assert.deepEqual(again.group, [0, 1, 0])
  assert.deepEqual(again.groups.map((g) => [g.jobs, g.first, g.last]), [[[0, 2], 0, 2], [[1], 1, 1]])
  assert.deepEqual(again.groups[0]!.disks, [4 * MiB], 'as large as its largest user needs')
  const sizeless = planDisks(jobs('[w]\nfilename=f\nsize=2m\n\n[r]\nstonewall\nfilename=f\n\n[alone]\n'))
  assert.deepEqual(sizeless.groups.map((g) => g.disks), [[2 * MiB], [GiB]], 'a job without a size covers the file as the writer laid it out, as fio; alone, the default size')

  // directory= and filename_format= name files as fio does; an absolute filename ignores directory
  const named = planDisks(jobs('[global]\ndirectory=/mnt\n\n[a]\nsize=1m\n\n[b]\nsize=1m\nfilename_format=shared.$filenum\n\n[c]\nsize=1m\nfilename=/dev/sdz\n\n[d]\nsize=1m\nfilename_format=shared.$filenum\n'))
  assert.deepEqual(named.files, [['/mnt/a.0.0'], ['/mnt/shared.0'], ['/dev/sdz']])
  assert.deepEqual(named.group, [0, 1, 2, 1])
})

const WRITE_THEN_VERIFY = `[global]
bs=4k
size=2m
filename=data

[write]
rw=randwrite
iodepth=8
verify=crc32c
do_verify=0

[verify]
stonewall
rw=read
iodepth=4
verify=crc32c
`

test('a write job and, after a stonewall, a separate verify job on the same file: the second reads what the first wrote', { timeout: 120_000 }, async () => {
  const { results, doc } = await runBench({ jobs: jobs(WRITE_THEN_VERIFY), device: 'memory', version: 't' })
  const [w, v] = results
  assert.equal(w!.vms[0]!.status, 'ok')
  assert.equal(w!.vms[0]!.write.totalIos, 512)
  const check = v!.vms[0]!
  assert.equal(check.status, 'ok', check.status === 'ok' ? '' : check.message)
  assert.equal(check.verify!.checkedChunks, 512, 'every chunk the write job wrote was read back and checked')
  assert.equal(check.verify!.failures, 0)
  assert.equal(w!.thread, v!.thread, 'one group: one task kept its cluster between the phases')
  assert.ok(doc.jobs.every((j) => j.error === 0))

  // without the shared name each job has a file of its own, as in fio: the reader finds nothing
  const apart = await runBench({ jobs: jobs(WRITE_THEN_VERIFY.replace('filename=data\n', '')), device: 'memory', version: 't' })
  const fresh = apart.results[1]!.vms[0]!
  assert.equal(fresh.status, 'verify-failed')
  assert.match(fresh.status === 'verify-failed' ? fresh.message : '', /no verify header \(never written/)
})

test('copies sharing a file, and jobs of one phase sharing it, write into one disk a later phase reads whole; on file-backed disks too', { timeout: 180_000 }, async () => {
  const text = `[global]
bs=4k
filename=data
verify=crc32c
do_verify=0

[copies]
rw=write
size=1m
numjobs=2
offset_increment=1m

[beside]
rw=randwrite
offset=2m
size=1m
iodepth=4

[elsewhere]
stonewall
rw=write
size=1m
filename=other

[verify]
stonewall
rw=randread
size=3m
iodepth=8
`
  for (const device of ['memory', 'file'] as const) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-shared-'))
    try {
      const { results } = await runBench({ jobs: jobs(text), device, version: 't', logDir: dir })
      assert.deepEqual(results.map((r) => r.vms.map((x) => x.status)), [['ok', 'ok'], ['ok'], ['ok'], ['ok']], device)
      const check = results[3]!.vms[0]!
      assert.equal(check.verify!.checkedChunks, 768, `${device}: 3 MiB from three writers, across a phase that used another file`)
      assert.equal(check.verify!.failures, 0)
      assert.equal(results[0]!.thread, results[1]!.thread, 'jobs sharing a file run in one task')
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
})
