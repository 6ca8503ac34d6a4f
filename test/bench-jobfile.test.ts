import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { BenchErrorCode, JobFileError } from '../harness/bench/errors.js'
import { FIO_ENGINE_OPTIONS, FIO_OPTIONS, lookupEngineOption, lookupOption, optionSupport } from '../harness/bench/fio-options.js'
import { jobFileName, jobPhases, parseJobFile, parseJobText, type JobSpec } from '../harness/bench/jobfile.js'

const EXAMPLES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/fio-examples')
const example = (name: string): JobSpec[] => parseJobFile(path.join(EXAMPLES, name))
const text = (t: string, env: Record<string, string> = {}): JobSpec[] => parseJobText(t, { file: 'job.fio', env })
const ignoredNames = (j: JobSpec): string[] => j.ignored.map((i) => i.option)

function scratchDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-jobfile-'))
}

function throwsJob(fn: () => unknown, code: string, match: RegExp): JobFileError {
  let caught: unknown
  try {
    fn()
  } catch (err) {
    caught = err
  }
  assert.ok(caught instanceof JobFileError, `expected a JobFileError, got ${String(caught)}`)
  assert.equal(caught.code, code, caught.message)
  assert.match(caught.message, match)
  assert.ok(!caught.message.includes('\n'), 'one line')
  return caught
}

test('every fio example file parses', () => {
  const files = fs.readdirSync(EXAMPLES).filter((f) => f.endsWith('.fio'))
  assert.ok(files.length >= 10)
  for (const f of files) assert.ok(example(f).length >= 1, f)
})

test('ssd-test.fio gives four stonewalled jobs in four groups and phases', () => {
  const jobs = example('ssd-test.fio')
  assert.deepEqual(jobs.map((j) => j.name), ['seq-read', 'rand-read', 'seq-write', 'rand-write'])
  assert.deepEqual(jobs.map((j) => j.rw), ['read', 'randread', 'write', 'randwrite'])
  assert.deepEqual(jobs.map((j) => j.groupId), [0, 1, 2, 3])
  assert.ok(jobs.every((j) => j.stonewall && j.iodepth === 4 && j.size === 10 * 2 ** 30 && j.runtimeMs === 60_000 && !j.timeBased))
  assert.deepEqual(jobPhases(jobs).map((p) => p.map((j) => j.name)), [['seq-read'], ['rand-read'], ['seq-write'], ['rand-write']])
  assert.deepEqual(ignoredNames(jobs[0]!), ['ioengine', 'direct'])
  assert.deepEqual(jobs[0]!.ignored.map((i) => i.line), [15, 18])
  // every phase names one file: the jobs share its disk
  assert.ok(jobs.every((j) => jobFileName(j, 0) === path.join('/mount-point-of-ssd', 'ssd.test.file')))
})

test('fio-rand-RW.fio is a 60/40 random mix with numjobs 4, time based for 900 s', () => {
  const [job, ...rest] = example('fio-rand-RW.fio')
  assert.equal(rest.length, 0)
  assert.equal(job!.name, 'file1', "a [global] name= does not rename jobs (fio uses the section's name)")
  assert.equal(job!.rw, 'randrw')
  assert.equal(job!.readPct, 60)
  assert.equal(job!.numjobs, 4)
  assert.equal(job!.iodepth, 16)
  assert.deepEqual(job!.bs.read, { kind: 'fixed', bs: 4096 })
  assert.equal(job!.size, 10 * 2 ** 30)
  assert.equal(job!.runtimeMs, 900_000)
  assert.equal(job!.timeBased, true)
  assert.deepEqual(ignoredNames(job!), ['direct', 'ioengine'])
  assert.deepEqual(job!.jobOptions, { size: '10G', ioengine: 'libaio', iodepth: '16' })
  assert.deepEqual([0, 3].map((c) => jobFileName(job!, c)), ['fio-rand-RW', 'fio-rand-RW'], 'filename= in [global]: the four copies share one file')
  assert.equal(job!.globalOptions.rwmixwrite, '40')
})

test('the other examples resolve as fio reads them', () => {
  const aio = example('aio-read.fio')
  assert.deepEqual(aio.map((j) => j.iodepth), [4, 32, 8, 16])
  assert.ok(aio.every((j) => j.rw === 'randread' && j.size === 512 * 2 ** 20 && j.groupId === 0 && !j.stonewall))
  assert.deepEqual(aio[0]!.bs.write, { kind: 'fixed', bs: 128 * 1024 })
  assert.deepEqual(ignoredNames(aio[2]!), ['ioengine', 'buffered'])
  assert.deepEqual(aio.map((j) => jobFileName(j, 0)), ['/data1/file1.0.0', '/data1/file2.0.0', '/data1/file3.0.0', '/data1/file4.0.0'], "fio's default names: a file of each job's own")
  assert.equal(jobPhases(aio).length, 1, 'jobs without stonewall run side by side')

  const [verify] = example('basic-verify.fio')
  assert.equal(verify!.verify, 'crc32c')
  assert.equal(verify!.doVerify, true)
  assert.equal(verify!.size, null, 'no size: the whole disk')
  assert.deepEqual(ignoredNames(verify!), ['direct', 'ioengine'])

  const [nul] = example('null.fio')
  assert.equal(nul!.norandommap, true)
  assert.equal(nul!.size, 100 * 2 ** 30)
  assert.deepEqual(ignoredNames(nul!), ['gtod_reduce', 'ioengine'])

  const [seqRw] = example('fio-seq-RW.fio')
  assert.equal(seqRw!.rw, 'rw')
  assert.equal(seqRw!.readPct, 60)
  assert.deepEqual(seqRw!.bs.read, { kind: 'fixed', bs: 256 * 1024 })
  assert.equal(example('fio-seq-read.fio')[0]!.readPct, 100)
  assert.equal(example('fio-rand-write.fio')[0]!.readPct, 0)
  assert.equal(example('fio-seq-write.fio')[0]!.numjobs, 1)
})

test('every option of the fio table, aliases included, has exactly one treatment', () => {
  for (const o of FIO_OPTIONS) {
    for (const word of [o.name, ...o.aliases]) {
      const found = lookupOption(word)
      assert.ok(found !== undefined, `${word} has no class`)
      assert.equal(found.canonical, o.name)
    }
    assert.ok(optionSupport(o.name) !== undefined, o.name)
  }
  for (const o of FIO_ENGINE_OPTIONS) assert.ok(lookupEngineOption(o.name) !== undefined)
  assert.equal(lookupOption('readwrite')!.canonical, 'rw')
  assert.equal(lookupOption('blocksize')!.canonical, 'bs')
  assert.equal(lookupOption('wait_for_previous')!.canonical, 'stonewall')
  assert.equal(lookupOption('timeout')!.canonical, 'runtime')
})

test('a word that is not a fio option is an error naming the file and line, with a suggestion', () => {
  const err = throwsJob(() => text('[job]\nrw=read\niodepht=4\n'), BenchErrorCode.JobUnknownOption, /^job\.fio:3: "iodepht" is not a fio option.*did you mean "iodepth"/)
  assert.equal(err.file, 'job.fio')
  assert.equal(err.line, 3)
  throwsJob(() => text('[global]\nfrobnicate=1\n[job]\n'), BenchErrorCode.JobUnknownOption, /job\.fio:2: "frobnicate"/)
})

test('comments: whole-line and trailing, with ; and #', () => {
  const [j] = text('# header\n; another\n[job] ; trailing on a section\nrw=randwrite # trailing\nbs=8k;trailing\n  ; indented comment\niodepth = 8 \n')
  assert.equal(j!.rw, 'randwrite')
  assert.deepEqual(j!.bs.write, { kind: 'fixed', bs: 8192 })
  assert.equal(j!.iodepth, 8, 'blanks around = are allowed')
})

test('bare flags, and options that need a value', () => {
  const [j] = text('[job]\nrw=randread\ntime_based\nruntime=5\nnorandommap\nstonewall\ngroup_reporting\n')
  assert.equal(j!.timeBased, true)
  assert.equal(j!.norandommap, true)
  assert.equal(j!.stonewall, true)
  throwsJob(() => text('[job]\ndirect\n'), BenchErrorCode.JobMissingValue, /job\.fio:2: option direct needs a value/)
  throwsJob(() => text('[job]\nbs\n'), BenchErrorCode.JobMissingValue, /job\.fio:2:/)
  throwsJob(() => text('[job]\ntime_based=yes\nruntime=1\n'), BenchErrorCode.JobBadValue, /job\.fio:2: time_based=yes/)
})

test('sizes: suffixes, kb_base and the forms that are refused', () => {
  const size = (v: string, extra = ''): number | null => text(`[job]\n${extra}size=${v}\n`)[0]!.size
  assert.equal(size('4k'), 4096)
  assert.equal(size('4K'), 4096)
  assert.equal(size('4kb'), 4096)
  assert.equal(size('10G'), 10 * 2 ** 30)
  assert.equal(size('512m'), 512 * 2 ** 20)
  assert.equal(size('1M'), 2 ** 20)
  assert.equal(size('2t'), 2 * 2 ** 40)
  assert.equal(size('4096'), 4096)
  assert.equal(size('0x1000'), 4096)
  assert.equal(size('4KiB'), 4000, "fio's default kb_base=1024 inverts IEC prefixes")
  assert.equal(size('4k', 'kb_base=1000\n'), 4000)
  assert.equal(size('4KiB', 'kb_base=1000\n'), 4096)
  throwsJob(() => size('50%'), BenchErrorCode.JobBadValue, /job\.fio:2: size=50%: .*percentages/)
  throwsJob(() => size('1.5m'), BenchErrorCode.JobBadValue, /fractional sizes .* write 1536k/)
  throwsJob(() => size('3x'), BenchErrorCode.JobBadValue, /unknown size suffix "x"/)
  throwsJob(() => size('0'), BenchErrorCode.JobBadValue, /must be above 0/)
  throwsJob(() => text('[job]\nkb_base=512\n'), BenchErrorCode.JobBadValue, /kb_base=512/)
})

test('durations: runtime and ramp_time suffixes, seconds by default', () => {
  const rt = (v: string): number | null => text(`[job]\nruntime=${v}\n`)[0]!.runtimeMs
  assert.equal(rt('900'), 900_000)
  assert.equal(rt('15m'), 900_000, 'm is minutes, as in fio')
  assert.equal(rt('1h'), 3_600_000)
  assert.equal(rt('500ms'), 500)
  assert.equal(rt('250us'), 0.25)
  assert.equal(rt('2d'), 172_800_000)
  assert.equal(rt('0'), null, 'runtime=0 means no limit')
  assert.equal(text('[job]\nramp_time=2s\n')[0]!.rampMs, 2000)
  throwsJob(() => rt('10x'), BenchErrorCode.JobBadValue, /unknown time unit "x"/)
  // fio warns "time_based requires a runtime/timeout setting" and runs the job to its size
  const [tb] = text('[job]\nsize=1m\ntime_based\n')
  assert.equal(tb!.timeBased, false)
  assert.deepEqual(tb!.ignored.map((i) => [i.option, i.line]), [['time_based', 3]])
  assert.match(tb!.ignored[0]!.reason, /needs a runtime.*runs to its size/)
})

test('block sizes: per direction, ranges and splits', () => {
  const bs = (line: string): JobSpec['bs'] => text(`[job]\n${line}\n`)[0]!.bs
  assert.deepEqual(bs('bs=8k,32k'), { read: { kind: 'fixed', bs: 8192 }, write: { kind: 'fixed', bs: 32768 } })
  assert.deepEqual(bs('bs=,8k'), { read: { kind: 'fixed', bs: 4096 }, write: { kind: 'fixed', bs: 8192 } })
  assert.deepEqual(bs('blocksize=64k').read, { kind: 'fixed', bs: 65536 })
  assert.deepEqual(bs('bs=4k-64k').read, { kind: 'range', min: 4096, max: 65536 }, 'a range in bs means bsrange')
  assert.deepEqual(bs('bsrange=4k-16k,8k:32k'), { read: { kind: 'range', min: 4096, max: 16384 }, write: { kind: 'range', min: 8192, max: 32768 } })
  assert.deepEqual(bs('bssplit=4k/50:64k/50').write, { kind: 'split', entries: [{ bs: 4096, pct: 50 }, { bs: 65536, pct: 50 }] })
  assert.deepEqual(bs('bssplit=4k/50:64k/50,8k/100'), {
    read: { kind: 'split', entries: [{ bs: 4096, pct: 50 }, { bs: 65536, pct: 50 }] },
    write: { kind: 'fixed', bs: 8192 },
  })
  assert.deepEqual(bs('bssplit=4k/30:8k/:16k/').read, { kind: 'split', entries: [{ bs: 4096, pct: 30 }, { bs: 8192, pct: 35 }, { bs: 16384, pct: 35 }] })
  assert.deepEqual(bs('bssplit=4k/50:64k/50\nbs=8k').read.kind, 'split', 'bssplit wins over bs, as in fio')
  throwsJob(() => bs('bssplit=4k/60:8k/60'), BenchErrorCode.JobBadValue, /percentages add up to 120/)
  throwsJob(() => bs('bs=1000'), BenchErrorCode.JobBadValue, /job\.fio:2: block size 1000 .* multiple of 512/)
  throwsJob(() => bs('bsrange=64k-4k'), BenchErrorCode.JobBadValue, /low end is above the high end/)
})

test('rw, rwmix and verify values', () => {
  assert.equal(text('[job]\nrw=randrw\nrwmixwrite=30\n')[0]!.readPct, 70)
  assert.equal(text('[job]\nreadwrite=randrw\n')[0]!.readPct, 50)
  assert.equal(text('[job]\nrw=readwrite\n')[0]!.rw, 'rw')
  assert.equal(text('[job]\nrw=write\nverify=md5\n')[0]!.verify, 'md5')
  assert.equal(text('[job]\nrw=write\nverify=crc32c-intel\n')[0]!.verify, 'crc32c')
  assert.equal(text('[job]\nrw=write\nverify=0\n')[0]!.verify, null)
  throwsJob(() => text('[job]\nrw=randtrim\n'), BenchErrorCode.JobUnsupportedOption, /rw=randtrim: trim workloads/)
  throwsJob(() => text('[job]\nrw=randread:8\n'), BenchErrorCode.JobUnsupportedOption, /":8" offset modifier/)
  throwsJob(() => text('[job]\nrw=sideways\n'), BenchErrorCode.JobBadValue, /rw=sideways: not an I\/O pattern/)
  throwsJob(() => text('[job]\nverify=sha256\n'), BenchErrorCode.JobUnsupportedOption, /verify=sha256: iofcert bench implements verify=crc32c/)
  throwsJob(() => text('[job]\nverify=sha9\n'), BenchErrorCode.JobBadValue, /verify=sha9: not a fio verify type/)
  throwsJob(() => text('[job]\nrwmixread=101\n'), BenchErrorCode.JobBadValue, /out of range/)
})

test('fio options that change the workload are refused, unless set to their off value', () => {
  throwsJob(() => text('[job]\nrate_iops=2000\nrate_process=poisson\n'), BenchErrorCode.JobUnsupportedOption, /job\.fio:3: rate_process=poisson: Poisson arrivals are not implemented/)
  throwsJob(() => text('[job]\nthinktime=100\n'), BenchErrorCode.JobUnsupportedOption, /think time/)
  throwsJob(() => text('[job]\nrandom_distribution=zipf:1.2\n'), BenchErrorCode.JobUnsupportedOption, /uniform random offsets/)
  const [j] = text('[job]\nrate_process=linear\nfsync=0\nthinktime=0\nrandom_distribution=random\n')
  assert.deepEqual(j!.ignored.map((i) => [i.option, i.reason]), [
    ['rate_process', 'no effect at this value'],
    ['fsync', 'no effect at this value'],
    ['thinktime', 'no effect at this value'],
  ])
})

test('engine options are valid only with their engine', () => {
  const [j] = text('[job]\nioengine=libaio\nuserspace_reap\n')
  assert.match(j!.ignored[1]!.reason, /option of ioengine=libaio/)
  throwsJob(() => text('[job]\nioengine=libaio\nhipri\n'), BenchErrorCode.JobUnknownOption, /job\.fio:3: "hipri" is an option of ioengine=.*io_uring.*not of ioengine=libaio/)
  throwsJob(() => text('[job]\nioengine=cpuio\n'), BenchErrorCode.JobUnsupportedOption, /ioengine=cpuio does no block I\/O/)
})

test('[global] applies to the jobs after it; repeated sections are separate jobs; name= renames only in a job', () => {
  const jobs = text('[global]\nbs=8k\nname=ignored\n[a]\n[a]\nname=renamed\n[global]\niodepth=4\n[b]\nnew_group\n[c]\nstonewall\n')
  assert.deepEqual(jobs.map((j) => j.name), ['a', 'renamed', 'b', 'c'])
  assert.deepEqual(jobs.map((j) => j.iodepth), [1, 1, 4, 4])
  assert.ok(jobs.every((j) => j.bs.read.kind === 'fixed' && j.bs.read.bs === 8192))
  assert.deepEqual(jobs.map((j) => j.groupId), [0, 0, 1, 2])
  assert.deepEqual(jobPhases(jobs).map((p) => p.length), [3, 1])
})

test('include pulls options into the section, relative to the including file', () => {
  const dir = scratchDir()
  fs.mkdirSync(path.join(dir, 'sub'))
  fs.writeFileSync(path.join(dir, 'sub', 'common.fio'), '; shared settings\nbs=16k\ninclude deeper.fio\n')
  fs.writeFileSync(path.join(dir, 'sub', 'deeper.fio'), 'iodepth=12 # from two levels down\n')
  fs.writeFileSync(path.join(dir, 'main.fio'), '[global]\ninclude sub/common.fio\n[job]\nrw=randread\n')
  const [j] = parseJobFile(path.join(dir, 'main.fio'))
  assert.deepEqual(j!.bs.read, { kind: 'fixed', bs: 16384 })
  assert.equal(j!.iodepth, 12)

  fs.writeFileSync(path.join(dir, 'bad.fio'), '[job]\ninclude sub/bogus.fio\n')
  fs.writeFileSync(path.join(dir, 'sub', 'bogus.fio'), 'bs=4k\nnot_an_option=1\n')
  const bogus = throwsJob(() => parseJobFile(path.join(dir, 'bad.fio')), BenchErrorCode.JobInclude, /sub[/\\]bogus\.fio:2: not a fio option line.*included from .*bad\.fio:2/)
  assert.ok(!bogus.message.includes('not_an_option'), 'the line is not quoted')
  fs.writeFileSync(path.join(dir, 'badvalue.fio'), '[job]\ninclude sub/badvalue.fio\n')
  fs.writeFileSync(path.join(dir, 'sub', 'badvalue.fio'), 'bs=4k\nsize=1.5m\n')
  throwsJob(() => parseJobFile(path.join(dir, 'badvalue.fio')), BenchErrorCode.JobBadValue, /sub[/\\]badvalue\.fio:2: size=1\.5m/)

  fs.writeFileSync(path.join(dir, 'loop.fio'), '[job]\ninclude loop.fio\n')
  throwsJob(() => parseJobFile(path.join(dir, 'loop.fio')), BenchErrorCode.JobInclude, /include cycle/)
  fs.writeFileSync(path.join(dir, 'sections.fio'), '[job]\ninclude sub/with-section.fio\n')
  fs.writeFileSync(path.join(dir, 'sub', 'with-section.fio'), '[other]\n')
  const section = throwsJob(() => parseJobFile(path.join(dir, 'sections.fio')), BenchErrorCode.JobInclude, /with-section\.fio:1: sections are not allowed/)
  assert.ok(!section.message.includes('[other]'))
  fs.writeFileSync(path.join(dir, 'outside.fio'), 'include sub/common.fio\n[job]\n')
  throwsJob(() => parseJobFile(path.join(dir, 'outside.fio')), BenchErrorCode.JobSyntax, /outside\.fio:1: include outside of a \[section\]/)
  fs.writeFileSync(path.join(dir, 'missing.fio'), '[job]\ninclude nowhere.fio\n')
  throwsJob(() => parseJobFile(path.join(dir, 'missing.fio')), BenchErrorCode.JobRead, /missing\.fio:2: cannot read included file nowhere\.fio/)
  fs.rmSync(dir, { recursive: true, force: true })
})

test('an include of a file that is not a job file names it and the line, never its text', () => {
  const dir = scratchDir()
  try {
    // stand-ins for /etc/shadow, /etc/hostname, a credentials file: the first text after comments
    // that is not a fio option decides, wherever it is
    const files: Record<string, [string, number]> = {
      'shadow': ['root:$y$j9T$SECRETSALT$SECRETHASH:19000:0:99999:7:::\nbin:*:19000:0:99999:7:::\n', 1],
      'hostname': ['secrethost\n', 1],
      'credentials': ['# keys\n\nbs=4k\ntoken = SECRETTOKEN\n', 4],
      'spaced': ['iodepth=4\nSECRET WORDS here\n', 2],
    }
    for (const [name, [content, line]] of Object.entries(files)) {
      const target = path.join(dir, name)
      fs.writeFileSync(target, content)
      fs.writeFileSync(path.join(dir, 'job.fio'), `[global]\nbs=4k\n[job]\ninclude ${target}\n`)
      const e = throwsJob(() => parseJobFile(path.join(dir, 'job.fio')), BenchErrorCode.JobInclude, new RegExp(`^${target.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${line}: not a fio option line`))
      assert.equal(e.file, target)
      assert.equal(e.line, line)
      assert.match(e.message, /included from .*job\.fio:4; the line is not shown/)
      for (const secret of ['SECRET', 'secret', 'root', 'token', '$y$']) assert.ok(!e.message.includes(secret), `${name}: ${e.message}`)
    }
    // the real system files, where they exist: their content never shows
    for (const sys of ['/etc/passwd', '/etc/shadow', '/etc/hostname']) {
      if (!fs.existsSync(sys)) continue
      fs.writeFileSync(path.join(dir, 'job.fio'), `[job]\ninclude ${sys}\n`)
      let message = ''
      try {
        parseJobFile(path.join(dir, 'job.fio'))
      } catch (err) {
        message = (err as Error).message
      }
      assert.ok(message !== '', `${sys} is refused`)
      let first = ''
      try {
        first = fs.readFileSync(sys, 'utf8').split('\n')[0]!.trim()
      } catch {
        // unreadable here: the error says so, which shows nothing of it
      }
      if (first.length >= 4) assert.ok(!message.includes(first), `${sys}: ${message}`)
    }
    // a device or a pipe is not a job file (and /dev/zero would never end)
    fs.writeFileSync(path.join(dir, 'job.fio'), '[job]\ninclude /dev/null\n')
    throwsJob(() => parseJobFile(path.join(dir, 'job.fio')), BenchErrorCode.JobRead, /job\.fio:2: cannot read included file \/dev\/null: not a regular file/)
    throwsJob(() => parseJobFile('/dev/null'), BenchErrorCode.JobRead, /^\/dev\/null: cannot read job file: not a regular file/)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('a job file whose text does not open with a [section] is not quoted either', () => {
  const dir = scratchDir()
  try {
    const file = path.join(dir, 'passwd')
    fs.writeFileSync(file, '# accounts\nroot:x:0:0:SECRET:/root:/bin/bash\n')
    const e = throwsJob(() => parseJobFile(file), BenchErrorCode.JobSyntax, /passwd:2: not a job file: this line is neither a \[section\] nor a fio option/)
    assert.ok(!e.message.includes('SECRET') && !e.message.includes('root'))
    const header = throwsJob(() => text('[SECRET\n'), BenchErrorCode.JobSyntax, /job\.fio:1: malformed section header/)
    assert.ok(!header.message.includes('SECRET'))
    const spaced = throwsJob(() => text('[job]\nSECRET WORDS\n'), BenchErrorCode.JobSyntax, /job\.fio:2: not an option line/)
    assert.ok(!spaced.message.includes('SECRET'))
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('${VAR} expands from the environment; an unset one is named when it breaks a value', () => {
  const [j] = text('[job]\nsize=${SIZE}\nbs=${BS}k\nfilename=${UNSET_DEV}\n', { SIZE: '64m', BS: '16' })
  assert.equal(j!.size, 64 * 2 ** 20)
  assert.deepEqual(j!.bs.read, { kind: 'fixed', bs: 16384 })
  assert.equal(j!.files.filename, null, 'fio expands an unset variable to nothing: no file name, so the default one')
  throwsJob(() => text('[job]\nsize=${NOPE}\n'), BenchErrorCode.JobBadValue, /job\.fio:2: size=: empty value \(environment variable NOPE not set\)/)
})

test('command-line options are defaults the file overrides, as fio reads them before the job file', () => {
  const file = path.join(EXAMPLES, 'ssd-test.fio')
  // ssd-test.fio sets runtime=60 in [global]: `fio --runtime=10 ssd-test.fio` runs 60 s jobs
  const jobs = parseJobFile(file, { overrides: { runtime: '10' } })
  assert.ok(jobs.every((j) => j.runtimeMs === 60_000 && !j.timeBased), 'the file wins, and --runtime makes nothing time based')
  assert.equal(jobs[0]!.globalOptions.runtime, '60')
  const [noRuntime] = parseJobText('[j]\nsize=1g\n', { file: 'j.fio', overrides: { runtime: '2s', iodepth: '32' } })
  assert.equal(noRuntime!.runtimeMs, 2000, 'a job without a runtime takes the command line\'s')
  assert.equal(noRuntime!.timeBased, false, 'as a cap: the job still stops at its size')
  assert.equal(noRuntime!.iodepth, 32)
  const [j] = parseJobFile(path.join(EXAMPLES, 'fio-rand-RW.fio'), { overrides: { runtime: '2s', iodepth: '32' } })
  assert.equal(j!.runtimeMs, 900_000, "the file's runtime=900 wins")
  assert.equal(j!.iodepth, 16, "the job's own iodepth=16 wins")
  throwsJob(() => parseJobFile(file, { overrides: { runtme: '10' } }), BenchErrorCode.JobUnknownOption, /^<command line>: "runtme" is not a fio option/)
})

test('structural errors are located', () => {
  throwsJob(() => text('rw=read\n[job]\n'), BenchErrorCode.JobSyntax, /job\.fio:1: option rw outside of a \[section\]/)
  throwsJob(() => text('[job\n'), BenchErrorCode.JobSyntax, /job\.fio:1: malformed section header/)
  throwsJob(() => text('[global]\nbs=4k\n'), BenchErrorCode.JobNoJobs, /^job\.fio: no job section/)
  throwsJob(() => parseJobFile('/nonexistent/x.fio'), BenchErrorCode.JobRead, /cannot read job file/)
})
