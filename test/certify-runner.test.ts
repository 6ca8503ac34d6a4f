import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { certify, catalogue, inShard } from '../harness/certify/runner.js'
import { CATALOGUE } from '../harness/certify/catalogue.js'
import { mergeReports } from '../reports/merge.js'
import { referencePackage } from './helpers/controls.js'

const run = promisify(execFile)
const CLI = fileURLToPath(new URL('../harness/cli/main.js', import.meta.url))
const PT = referencePackage('passthrough')
// a fast slice of the catalogue: the package checks and two runtime checks
const GREP = '^(package\\.|ordering\\.read-after-write|integrity\\.class-contract)'

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [CLI, ...args], { maxBuffer: 64 << 20, env: { ...process.env, CI: 'true' } })
    return { code: 0, stdout: r.stdout, stderr: r.stderr }
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string }
    return { code: err.code, stdout: err.stdout, stderr: err.stderr }
  }
}

test('every run reports the whole public catalogue, in catalogue order', async () => {
  const defs = await catalogue()
  assert.deepEqual(defs.slice(0, CATALOGUE.length).map(d => d.id), CATALOGUE.map(c => c.id))
  assert.equal(new Set(defs.map(d => d.id)).size, defs.length)
})

test('shards 1/3, 2/3 and 3/3 are a stable partition of the catalogue', async () => {
  const all = await catalogue()
  const seen = new Map<string, number>()
  for (let i = 1; i <= 3; i++) for (const d of all) if (inShard(d.id, all, { index: i, count: 3 })) seen.set(d.id, (seen.get(d.id) ?? 0) + 1)
  assert.equal(seen.size, all.length)
  assert.ok([...seen.values()].every(n => n === 1))
})

test('three shards merged give the verdict and checks of one run; the same seed gives the same result', async () => {
  const whole = await certify({ package: PT, quick: true, seed: 7, grep: GREP })
  const again = await certify({ package: PT, quick: true, seed: 7, grep: GREP })
  const statuses = (d: typeof whole) => d.checks.map(c => `${c.id}=${c.status}`)
  assert.deepEqual(statuses(again), statuses(whole))
  const shards = []
  for (let i = 1; i <= 3; i++) shards.push(await certify({ package: PT, quick: true, seed: 7, grep: GREP, shard: { index: i, count: 3 } }))
  assert.ok(shards.every(s => s.checks.length < whole.checks.length))
  const merged = mergeReports(shards)
  assert.equal(merged.verdict, whole.verdict)
  assert.deepEqual([...merged.checks.map(c => `${c.id}=${c.status}`)].sort(), [...statuses(whole)].sort())
})

test('certify: bad flags and unreadable packages are one line and exit 2', async () => {
  for (const args of [['certify'], ['certify', PT, '--bogus'], ['certify', '/nonexistent/pkg.tgz'], ['certify', PT, '--profile', 'nope'], ['certify', PT, '--shard', '4/3'], ['certify', PT, '--seed', 'x'], ['certify', PT, '--grep', '(']]) {
    const r = await cli(args)
    assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code} ${r.stderr}`)
    assert.ok(!/\n\s+at /.test(r.stderr), `stack trace printed for ${args.join(' ')}`)
  }
})

test('certify --json - writes only the JSON report to stdout; a tampered package is a report with exit 1', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-cli-'))
  try {
    const r = await cli(['certify', PT, '--quick', '--grep', '^package\\.', '--json', '-'])
    // a narrowed run judges the checks it ran (the report records the narrowing)
    assert.equal(r.code, 0, r.stderr)
    const doc = JSON.parse(r.stdout)
    assert.equal(doc.options.grep, '^package\\.')
    assert.equal(doc.filter.id, 'IOFCERT_passthrough_1.0.0')
    // a tampered copy: flip a byte of the entry inside an unpacked directory package
    const unpacked = path.join(dir, 'pkg')
    fs.mkdirSync(unpacked)
    const tar = await import('tar')
    await tar.x({ file: PT, cwd: unpacked })
    fs.appendFileSync(path.join(unpacked, 'filter.js'), '\n// tampered\n')
    const t = await cli(['certify', unpacked, '--quick', '--grep', '^(package\\.|ordering\\.read-after-write)', '--json', path.join(dir, 'r.json')])
    assert.equal(t.code, 1)
    const rep = JSON.parse(fs.readFileSync(path.join(dir, 'r.json'), 'utf8'))
    const byId = Object.fromEntries(rep.checks.map((c: { id: string; status: string }) => [c.id, c]))
    assert.equal(byId['package.integrity'].status, 'failed')
    assert.match(byId['package.integrity'].message, /filter\.js/)
    assert.equal(byId['ordering.read-after-write'].status, 'skipped')
    assert.match(byId['ordering.read-after-write'].message, /refused/)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('a signed report verifies, an edited one fails verify and is refused by publish', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-sign-'))
  try {
    assert.equal((await cli(['keygen', '--out', path.join(dir, 'k')])).code, 0)
    const rep = path.join(dir, 'r.json')
    const c = await cli(['certify', PT, '--quick', '--grep', GREP, '--json', rep, '--html', path.join(dir, 'r.html'), '--junit', path.join(dir, 'r.xml'), '--sign', path.join(dir, 'k', 'private.pem')])
    assert.ok(c.code === 0 || c.code === 1, c.stderr)
    assert.ok(fs.existsSync(path.join(dir, 'r.html')) && fs.existsSync(path.join(dir, 'r.xml')))
    assert.equal((await cli(['verify', rep, '--key', path.join(dir, 'k', 'public.pem')])).code, 0)
    const pub = await cli(['publish', rep, '--out', path.join(dir, 'site')])
    assert.equal(pub.code, 0, pub.stderr)
    assert.ok(fs.existsSync(path.join(dir, 'site', 'listing.json')))
    const doc = JSON.parse(fs.readFileSync(rep, 'utf8'))
    doc.checks[0].status = doc.checks[0].status === 'passed' ? 'failed' : 'passed'
    const edited = path.join(dir, 'edited.json')
    fs.writeFileSync(edited, JSON.stringify(doc))
    const v = await cli(['verify', edited])
    assert.equal(v.code, 1)
    const p = await cli(['publish', edited, '--out', path.join(dir, 'site2')])
    assert.notEqual(p.code, 0)
    assert.equal(fs.existsSync(path.join(dir, 'site2', 'listing.json')), false)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('certify --sign with a key that cannot sign is bad input before the run: exit 2, one line, no report', async () => {
  const { generateKeyPairSync } = await import('node:crypto')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-signkey-'))
  try {
    const rsa = path.join(dir, 'rsa.pem')
    fs.writeFileSync(rsa, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string)
    const cases: [string, RegExp][] = [[rsa, /signing key .*rsa\.pem is a rsa key, not an Ed25519 private key/], [path.join(dir, 'none.pem'), /cannot read signing key .*none\.pem/]]
    for (const [key, message] of cases) {
      const r = await run(process.execPath, [CLI, 'certify', referencePackage('passthrough'), '--sign', key, '--json', path.join(dir, 'r.json')]).then(() => ({ code: 0, stderr: '' }), (e: { code: number; stderr: string }) => e)
      assert.equal(r.code, 2, r.stderr)
      assert.match(r.stderr, message)
      // one line: no check ran (each would print a progress line) before the refusal
      assert.equal(r.stderr.trim().split('\n').length, 1)
      assert.ok(!fs.existsSync(path.join(dir, 'r.json')))
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
