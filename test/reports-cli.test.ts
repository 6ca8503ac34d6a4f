import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Command } from 'commander'
import { registerReportCommands } from '../harness/cli/reports.js'
import { signReport } from '../reports/sign.js'
import { validateReport } from '../reports/validate.js'
import { computeVerdict, countChecks } from '../reports/verdict.js'
import type { CertReport } from '../reports/document.js'
import { buildReport, makeKeyPair } from './fixtures/report-fixture.js'

const key = makeKeyPair()

/** Runs the report commands in-process and returns the exit code and what they printed. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const program = new Command('iofcert').exitOverride()
  registerReportCommands(program)
  const out: string[] = []
  const err: string[] = []
  const origOut = process.stdout.write.bind(process.stdout)
  const origErr = process.stderr.write.bind(process.stderr)
  const capture = (sink: string[]) => ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    sink.push(String(chunk))
    const cb = rest.find(r => typeof r === 'function') as (() => void) | undefined
    cb?.()
    return true
  }) as typeof process.stdout.write
  process.stdout.write = capture(out)
  process.stderr.write = capture(err)
  try {
    await program.parseAsync(args, { from: 'user' })
    return { code: Number(process.exitCode ?? 0), stdout: out.join(''), stderr: err.join('') }
  } finally {
    process.stdout.write = origOut
    process.stderr.write = origErr
    process.exitCode = undefined
  }
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'iofcert-cli-'))
  try {
    await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

test('verify: exit 0 for a valid report, 1 with the reason on one line for an edited one', async () => {
  await withDir(async dir => {
    const file = join(dir, 'r.json')
    const signed = signReport(buildReport({ samples: 100 }), key.privateKeyPem)
    await writeFile(file, JSON.stringify(signed))
    const pub = join(dir, 'public.pem')
    await writeFile(pub, key.publicKeyPem)
    const ok = await cli(['verify', file, '--key', pub])
    assert.equal(ok.code, 0)
    assert.equal(ok.stdout, `valid: ${file} (signed by ${signed.signature!.keyFingerprint})\n`)

    signed.seed += 1
    await writeFile(file, JSON.stringify(signed))
    const bad = await cli(['verify', file])
    assert.equal(bad.code, 1)
    assert.equal(bad.stdout, `invalid: ${file}: the signature does not match the document: it was changed after signing\n`)
  })
})

test('unreadable input is exit 2 with one clear line', async () => {
  await withDir(async dir => {
    const missing = await cli(['verify', join(dir, 'none.json')])
    assert.equal(missing.code, 2)
    assert.equal(missing.stderr, `iofcert: cannot read report ${join(dir, 'none.json')}: no such file\n`)
    await writeFile(join(dir, 'r.json'), JSON.stringify(signReport(buildReport({ samples: 50 }), key.privateKeyPem)))
    const badKey = await cli(['verify', join(dir, 'r.json'), '--key', join(dir, 'r.json')])
    assert.equal(badKey.code, 2)
    assert.match(badKey.stderr, /^iofcert: cannot read key .*r\.json: not a PEM public key\n$/)
    await writeFile(join(dir, 'junk.json'), '[1,2')
    const html = await cli(['report', 'html', join(dir, 'junk.json'), '--out', join(dir, 'x.html')])
    assert.equal(html.code, 2)
    assert.match(html.stderr, /^iofcert: cannot read report .*junk\.json: not JSON/)
  })
})

test('report html and report junit render a report file', async () => {
  await withDir(async dir => {
    const file = join(dir, 'r.json')
    await writeFile(file, JSON.stringify(buildReport({ samples: 100 })))
    assert.equal((await cli(['report', 'html', file, '--out', join(dir, 'r.html')])).code, 0)
    assert.match(await readFile(join(dir, 'r.html'), 'utf8'), /^<!doctype html>/)
    assert.equal((await cli(['report', 'junit', file, '--out', join(dir, 'r.xml')])).code, 0)
    assert.match(await readFile(join(dir, 'r.xml'), 'utf8'), /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<testsuites /)
  })
})

test('report merge writes the merged report and exits by its verdict', async () => {
  await withDir(async dir => {
    const base = buildReport({ samples: 100 })
    const files: string[] = []
    for (let i = 0; i < 2; i++) {
      const checks = base.checks.filter((_, j) => j % 2 === i)
      const { verdict, reasons } = computeVerdict(checks, { certified: false })
      const shard: CertReport = { ...base, checks, verdict, reasons, counts: countChecks(checks), options: { quick: false, certified: false, shard: { index: i + 1, count: 2 } } }
      files.push(join(dir, `s${i}.json`))
      await writeFile(files[i]!, JSON.stringify(shard))
    }
    const out = join(dir, 'merged.json')
    const r = await cli(['report', 'merge', ...files, '--out', out])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /^merged 2 reports: not-ready \(/)
    const merged = JSON.parse(await readFile(out, 'utf8')) as CertReport
    assert.deepEqual(validateReport(merged), { ok: true, errors: [] })
    assert.equal(merged.checks.length, base.checks.length)

    const conflict = await cli(['report', 'merge', files[0]!, '--out', join(dir, 'm2.json')])
    assert.equal(conflict.code, 2)
    assert.equal(conflict.stderr, 'iofcert: cannot merge reports: missing shard(s) 2/2: the merged verdict must cover the whole catalogue\n')
  })
})

test('publish refuses a tampered report with exit 1 and builds the site from good ones', async () => {
  await withDir(async dir => {
    const good = join(dir, 'good.json')
    await writeFile(good, JSON.stringify(signReport(buildReport({ samples: 100, outcome: 'ready' }), key.privateKeyPem)))
    const tampered = join(dir, 'tampered.json')
    const t = signReport(buildReport({ samples: 100, outcome: 'ready' }), key.privateKeyPem)
    t.filter.vendor = 'Other'
    await writeFile(tampered, JSON.stringify(t))
    const refused = await cli(['publish', good, tampered, '--out', join(dir, 'site')])
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /^iofcert: refusing to publish .*tampered\.json: the signature does not match the document/)
    const ok = await cli(['publish', good, '--out', join(dir, 'site')])
    assert.equal(ok.code, 0)
    assert.match(await readFile(join(dir, 'site', 'index.html'), 'utf8'), /I\/O filter compatibility listing/)
  })
})
