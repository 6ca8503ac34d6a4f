import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Command } from 'commander'
import { registerReportCommands } from '../harness/cli/reports.js'
import { signReport, verifyReport } from '../reports/sign.js'
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

const MAIN = fileURLToPath(new URL('../harness/cli/main.js', import.meta.url))

/** Runs `iofcert …` as a real process. */
function iofcert(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise(resolve => {
    execFile(process.execPath, [MAIN, ...args], { encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1
      resolve({ code, stdout, stderr })
    })
  })
}

/** A key pair made by `iofcert keygen` in `<dir>/<name>`, with its fingerprint. */
async function keygen(dir: string, name: string): Promise<{ privatePem: string; publicPem: string; fingerprint: string }> {
  const out = join(dir, name)
  const r = await iofcert(['keygen', '--out', out])
  assert.equal(r.code, 0, r.stderr)
  return { privatePem: join(out, 'private.pem'), publicPem: join(out, 'public.pem'), fingerprint: /fingerprint ([0-9a-f]{64})/.exec(r.stdout)![1]! }
}

test('report sign signs a report in place, atomically, and verify accepts it', async () => {
  await withDir(async dir => {
    const k = await keygen(dir, 'lab')
    const file = join(dir, 'r.json')
    const doc = buildReport({ samples: 100 })
    await writeFile(file, JSON.stringify(doc))
    const r = await iofcert(['report', 'sign', file, '--key', k.privatePem])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, '')
    assert.equal(r.stderr, `signed ${file} with key ${k.fingerprint}\n`)
    const text = await readFile(file, 'utf8')
    const signed = JSON.parse(text) as CertReport
    assert.equal(text, `${JSON.stringify(signed, null, 2)}\n`, 'written as every report is')
    assert.equal(signed.signature!.keyFingerprint, k.fingerprint)
    const { signature: _s, ...rest } = signed
    assert.deepEqual(rest, doc, 'nothing but the signature changed')
    assert.deepEqual((await readdir(dir)).sort(), ['lab', 'r.json'], 'no temporary file left behind')
    const v = await iofcert(['verify', file, '--key', k.publicPem])
    assert.equal(v.code, 0, v.stdout)
    assert.equal(v.stdout, `valid: ${file} (signed by ${k.fingerprint})\n`)
  })
})

test('report sign --out leaves the input alone; - writes the signed report to stdout', async () => {
  await withDir(async dir => {
    const k = await keygen(dir, 'lab')
    const file = join(dir, 'r.json')
    const original = JSON.stringify(buildReport({ samples: 100, outcome: 'ready' }))
    await writeFile(file, original)
    const out = join(dir, 'sub', 'signed.json')
    const r = await iofcert(['report', 'sign', file, '--key', k.privatePem, '--out', out])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stderr, `signed ${file} with key ${k.fingerprint}; wrote ${out}\n`)
    assert.equal(await readFile(file, 'utf8'), original)
    assert.equal((await iofcert(['verify', out, '--key', k.publicPem])).code, 0)
    const piped = await iofcert(['report', 'sign', file, '--key', k.privatePem, '--out', '-'])
    assert.equal(piped.code, 0, piped.stderr)
    assert.deepEqual(verifyReport(JSON.parse(piped.stdout)), { ok: true, reasons: [], keyFingerprint: k.fingerprint })
    assert.equal(piped.stderr, `signed ${file} with key ${k.fingerprint}; wrote stdout\n`)
  })
})

test('re-signing a signed report replaces its signature and says so', async () => {
  await withDir(async dir => {
    const first = await keygen(dir, 'first')
    const second = await keygen(dir, 'second')
    const file = join(dir, 'r.json')
    await writeFile(file, JSON.stringify(buildReport({ samples: 100 })))
    assert.equal((await iofcert(['report', 'sign', file, '--key', first.privatePem])).code, 0)
    const again = await iofcert(['report', 'sign', file, '--key', second.privatePem])
    assert.equal(again.code, 0, again.stderr)
    assert.equal(again.stderr, `signed ${file} with key ${second.fingerprint} (replacing its earlier signature by key ${first.fingerprint})\n`)
    assert.equal((await iofcert(['verify', file, '--key', second.publicPem])).code, 0)
    const old = await iofcert(['verify', file, '--key', first.publicPem])
    assert.equal(old.code, 1)
    assert.match(old.stdout, /signed by key [0-9a-f]{64}, not by the given key/)
    const same = await iofcert(['report', 'sign', file, '--key', second.privatePem])
    assert.match(same.stderr, /\(replacing its earlier signature by the same key\)\n$/)
  })
})

test('report sign refuses, with exit 2 and one line, a report that does not validate or is inconsistent, and a bad key; nothing is written', async () => {
  await withDir(async dir => {
    const k = await keygen(dir, 'lab')
    const invalid = join(dir, 'invalid.json')
    const bad = structuredClone(buildReport({ samples: 50 })) as unknown as Record<string, any>
    bad.checks[0].status = 'great'
    await writeFile(invalid, JSON.stringify(bad))
    const inconsistent = join(dir, 'inconsistent.json')
    await writeFile(inconsistent, JSON.stringify({ ...buildReport({ samples: 50 }), verdict: 'ready', reasons: [] }))
    const good = join(dir, 'good.json')
    await writeFile(good, JSON.stringify(buildReport({ samples: 50 })))
    const rsa = join(dir, 'rsa.pem')
    await writeFile(rsa, generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString())
    const before = new Map(await Promise.all([invalid, inconsistent, good].map(async f => [f, await readFile(f, 'utf8')] as const)))

    const cases: [string[], RegExp][] = [
      [[invalid, '--key', k.privatePem], /^iofcert: .*invalid\.json is not a valid report: checks\[0\]\.status: must be equal to one of the allowed values/],
      [[inconsistent, '--key', k.privatePem], /^iofcert: refusing to sign .*inconsistent\.json: its signature would never verify: verdict is "ready" but the checks give "not-ready"/],
      [[join(dir, 'none.json'), '--key', k.privatePem], /^iofcert: cannot read report .*none\.json: no such file\n$/],
      [[good, '--key', k.publicPem], /^iofcert: cannot read key .*public\.pem: not a PEM private key\n$/],
      [[good, '--key', join(dir, 'missing.pem')], /^iofcert: cannot read key .*missing\.pem: no such file\n$/],
      [[good, '--key', rsa], /^iofcert: cannot read key .*rsa\.pem: a rsa key, not an Ed25519 private key\n$/],
      [[good, '--key', good], /^iofcert: cannot read key .*good\.json: not a PEM private key\n$/],
    ]
    for (const [args, stderr] of cases) {
      const r = await iofcert(['report', 'sign', ...args])
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
      assert.match(r.stderr, stderr)
      assert.equal(r.stderr.split('\n').length, 2, 'one line')
    }
    const noKey = await iofcert(['report', 'sign', good])
    assert.equal(noKey.code, 2)
    assert.match(noKey.stderr, /required option '--key <private\.pem>' not specified/)
    for (const [f, text] of before) assert.equal(await readFile(f, 'utf8'), text, `${f} is untouched`)
    assert.deepEqual((await readdir(dir)).sort(), ['good.json', 'inconsistent.json', 'invalid.json', 'lab', 'rsa.pem'])
  })
})
