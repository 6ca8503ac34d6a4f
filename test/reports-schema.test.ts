import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile, access } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { validateReport } from '../reports/validate.js'
import { readReport, writeReport } from '../reports/write.js'
import { isReportError } from '../reports/errors.js'
import type { CertReport } from '../reports/document.js'
import { buildReport } from './fixtures/report-fixture.js'

function broken(edit: (doc: Record<string, any>) => void): unknown {
  const doc = structuredClone(buildReport({ samples: 200 })) as Record<string, any>
  edit(doc)
  return doc
}

function errorsOf(doc: unknown): string[] {
  const r = validateReport(doc)
  assert.equal(r.ok, false, 'expected the document to be refused')
  return r.errors
}

test('a realistic report validates, in every fixture variant', () => {
  for (const doc of [buildReport(), buildReport({ outcome: 'ready' }), buildReport({ cls: 'cache', certified: true })]) {
    assert.deepEqual(validateReport(doc), { ok: true, errors: [] })
  }
})

test('a missing required field is named by its path', () => {
  const errors = errorsOf(broken(d => { delete d.filter.packageSha256 }))
  assert.ok(errors.includes('filter.packageSha256: is required'), errors.join('\n'))
  assert.ok(errorsOf(broken(d => { delete d.verdict })).includes('verdict: is required'))
})

test('a bad value inside an array names the element', () => {
  const errors = errorsOf(broken(d => { d.checks[2].status = 'flaky' }))
  assert.equal(errors.length, 1, errors.join('\n'))
  assert.match(errors[0]!, /^checks\[2\]\.status: must be equal to one of the allowed values: "passed", "failed", "skipped", "errored"$/)
})

test('formats, patterns and constants are enforced', () => {
  assert.match(errorsOf(broken(d => { d.startedAt = 'yesterday' }))[0]!, /^startedAt: must match format "date-time"/)
  assert.match(errorsOf(broken(d => { d.filter.packageSha256 = 'ABC' }))[0]!, /^filter\.packageSha256: must match pattern/)
  assert.match(errorsOf(broken(d => { d.schemaVersion = 2 }))[0]!, /^schemaVersion: must be equal to constant 1$/)
  assert.match(errorsOf(broken(d => { d.profile.thresholds.iopsRatioMin = 'high' }))[0]!, /^profile\.thresholds\.iopsRatioMin: must be number$/)
  assert.match(errorsOf(broken(d => { d.environment.cpus = 0 }))[0]!, /^environment\.cpus: must be >= 1$/)
})

test('rules the schema cannot say are checked and named too', () => {
  assert.deepEqual(errorsOf(broken(d => { d.checks[0].suite = 'ordering' })), ['checks[0].suite: must be "package", the prefix of the id "package.descriptor"'])
  assert.match(errorsOf(broken(d => { d.checks[5].id = d.checks[4].id; d.checks[5].suite = d.checks[4].suite }))[0]!, /^checks\[5\]\.id: duplicate of checks\[4\]\.id/)
  assert.match(errorsOf(broken(d => { d.benchmarks[1].filtered.histogram.counts.pop() }))[0]!, /^benchmarks\[1\]\.filtered\.histogram\.counts: has \d+ entries, bucketNs has \d+$/)
  assert.match(errorsOf(broken(d => { d.benchmarks[0].baseline.histogram.bucketNs.reverse() }))[0]!, /^benchmarks\[0\]\.baseline\.histogram\.bucketNs\[1\]: bounds must be strictly ascending$/)
})

test('an unknown optional field keeps the document valid (additive fields keep the version)', () => {
  const doc = broken(d => { d.futureField = { anything: true }; d.checks[0].hint = 'x' })
  assert.deepEqual(validateReport(doc), { ok: true, errors: [] })
})

test('writeReport refuses an invalid document with ReportInvalid (exit 3) and writes nothing', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'iofcert-reports-'))
  try {
    const file = join(dir, 'out', 'report.json')
    const bad = broken(d => { d.checks[0].status = 'maybe' }) as CertReport
    await assert.rejects(writeReport(file, bad), (err: unknown) => {
      assert.ok(isReportError(err, 'ReportInvalid'))
      assert.equal(err.exitCode, 3)
      assert.match(err.message, /checks\[0\]\.status/)
      return true
    })
    await assert.rejects(access(join(dir, 'out', 'report.json')))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('writeReport writes a valid document that reads back equal', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'iofcert-reports-'))
  try {
    const file = join(dir, 'nested', 'report.json')
    const doc = buildReport({ samples: 200 })
    await writeReport(file, doc)
    assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), doc)
    assert.deepEqual(await readReport(file), doc)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test("writeReport to '-' writes the JSON to stdout", async () => {
  const doc = buildReport({ samples: 50 })
  const chunks: string[] = []
  const original = process.stdout.write.bind(process.stdout)
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    chunks.push(String(chunk))
    const cb = rest.find(r => typeof r === 'function') as ((e?: Error) => void) | undefined
    cb?.()
    return true
  }) as typeof process.stdout.write
  try {
    await writeReport('-', doc)
  } finally {
    process.stdout.write = original
  }
  assert.deepEqual(JSON.parse(chunks.join('')), doc)
})

test('readReport reports unreadable and invalid input as exit-2 errors naming the file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'iofcert-reports-'))
  try {
    await assert.rejects(readReport(join(dir, 'missing.json')), (err: unknown) =>
      isReportError(err, 'ReportUnreadable') && err.exitCode === 2 && /missing\.json: no such file/.test(err.message))
    await writeFile(join(dir, 'bad.json'), '{ not json')
    await assert.rejects(readReport(join(dir, 'bad.json')), (err: unknown) =>
      isReportError(err, 'ReportUnreadable') && err.exitCode === 2 && /not JSON/.test(err.message))
    await writeFile(join(dir, 'invalid.json'), JSON.stringify({ schemaVersion: 1 }))
    await assert.rejects(readReport(join(dir, 'invalid.json')), (err: unknown) =>
      isReportError(err, 'ReportInputInvalid') && err.exitCode === 2 && /tool: is required/.test(err.message))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
