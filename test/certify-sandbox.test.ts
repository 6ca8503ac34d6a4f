/**
 * The sandboxed subject process as a user meets it through `iofcert certify`: the sandbox is
 * recorded in the report, its absence is said and refused under --certified, each check prints a
 * line off a terminal, and a subject over its memory cap costs the check it was running — not the
 * run, not the harness.
 */
import { strict as assert } from 'node:assert'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { packageModule, referencePackage } from './helpers/controls.js'
import type { CertReport } from '../reports/document.js'

const CLI = fileURLToPath(new URL('../harness/cli/main.js', import.meta.url))
const hasBwrap = spawnSync('bwrap', ['--version']).status === 0

function certify(args: string[], env: Record<string, string> = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'certify', ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 300_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-sbx-test-'))
}

test('with bubblewrap the report records the sandbox and its layers; each check prints one line as it ends', { skip: !hasBwrap && !process.env.CI ? 'bubblewrap is not installed' : false }, () => {
  const dir = tmp()
  const json = path.join(dir, 'r.json')
  const r = certify([referencePackage('passthrough'), '--quick', '--grep', '^(package|integrity)\\.', '--json', json])
  assert.equal(r.code, 0, r.stderr)
  const doc = JSON.parse(fs.readFileSync(json, 'utf8')) as CertReport
  assert.equal(doc.environment.sandbox?.kind, 'bwrap')
  assert.ok(doc.environment.sandbox?.layers.some(l => /bubblewrap/.test(l)))
  const lines = r.stderr.split('\n').filter(l => /^\[\d+\/\d+\] /.test(l))
  assert.equal(lines.length, doc.checks.length, r.stderr)
  for (const c of doc.checks) assert.ok(lines.some(l => l.includes(` ${c.id} ${c.status} `)), `no progress line for ${c.id}`)
  assert.doesNotMatch(r.stderr, /\r|\x1b\[/, 'off a terminal, progress is plain lines')
  fs.rmSync(dir, { recursive: true, force: true })
})

test('where no sandbox can be made the run says so, records it, and --certified refuses to run', () => {
  const dir = tmp()
  const json = path.join(dir, 'r.json')
  const env = { IOFCERT_BWRAP: path.join(dir, 'no-bwrap-here') }
  const r = certify([referencePackage('passthrough'), '--grep', '^package\\.abi$', '--json', json], env)
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stderr, /WARNING: vendor code runs without an OS sandbox: bubblewrap .* is not installed/)
  const doc = JSON.parse(fs.readFileSync(json, 'utf8')) as CertReport
  assert.equal(doc.environment.sandbox?.kind, 'none')
  assert.match(doc.environment.sandbox?.reason ?? '', /not installed/)
  const refused = certify([referencePackage('passthrough'), '--certified', '--json', path.join(dir, 'c.json')], env)
  assert.equal(refused.code, 2)
  assert.match(refused.stderr, /--certified needs a sandbox for vendor code/)
  assert.equal(refused.stderr.trim().split('\n').length, 1, 'one clear line')
  assert.equal(fs.existsSync(path.join(dir, 'c.json')), false)
  const none = certify([referencePackage('passthrough'), '--sandbox', 'none', '--certified'])
  assert.equal(none.code, 2)
  assert.match(none.stderr, /--sandbox none was given/)
  const badMode = certify([referencePackage('passthrough'), '--sandbox', 'docker'])
  assert.equal(badMode.code, 2)
  assert.match(badMode.stderr, /--sandbox must be auto, bwrap or none/)
  fs.rmSync(dir, { recursive: true, force: true })
})

test('a subject over its memory cap fails the check it was running; the other checks still run in a new subject', async () => {
  const dir = tmp()
  const pkg = await packageModule(fileURLToPath(new URL('./filters/subject-hog.js', import.meta.url)), { outDir: dir })
  const json = path.join(dir, 'r.json')
  const r = certify([pkg, '--quick', '--memory', '1536', '--grep', '^(package\\.abi|integrity\\.roundtrip|ordering\\.read-after-write)$', '--concurrency', '1', '--json', json])
  assert.equal(r.code, 1, r.stderr)
  const doc = JSON.parse(fs.readFileSync(json, 'utf8')) as CertReport
  const by = Object.fromEntries(doc.checks.map(c => [c.id, c]))
  assert.equal(by['package.abi']!.status, 'passed')
  for (const id of ['integrity.roundtrip', 'ordering.read-after-write']) {
    assert.equal(by[id]!.status, 'failed', `${id}: ${by[id]!.message}`)
    assert.match(by[id]!.message ?? '', /over its cap of 1536 MiB/)
    assert.equal((by[id]!.evidence as { cutOff?: string }).cutOff, 'memory')
  }
  assert.ok((doc.environment.sandbox?.incidents ?? []).length >= 2, 'each stopped subject is recorded')
  fs.rmSync(dir, { recursive: true, force: true })
})
