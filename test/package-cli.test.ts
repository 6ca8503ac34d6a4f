import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { readFile, symlink, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { Command, CommanderError } from 'commander'
import { registerPackageCommands } from '../harness/cli/package.js'
import { metadata, scratch, writeFilterDir, type Scratch } from './package-fixtures.js'

let s: Scratch
beforeEach(async () => { s = await scratch() })
afterEach(async () => { await s.cleanup() })

interface Run {
  readonly exitCode: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs `iofcert <args>` on a fresh program whose exits and output are captured. */
async function iofcert(...args: string[]): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const program = new Command('iofcert')
    .exitOverride()
    .configureOutput({ writeOut: t => { stdout += t }, writeErr: t => { stderr += t } })
  registerPackageCommands(program)
  try {
    await program.parseAsync(args, { from: 'user' })
    return { exitCode: 0, stdout, stderr }
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err
    return { exitCode: err.exitCode, stdout, stderr }
  }
}

function assertOneLineRefusal(run: Run, pattern: RegExp): void {
  assert.equal(run.exitCode, 2, `exit code; stderr: ${run.stderr}`)
  assert.equal(run.stderr.trimEnd().split('\n').length, 1, `one line on stderr, got:\n${run.stderr}`)
  assert.match(run.stderr, pattern)
  assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace')
}

describe('iofcert package', () => {
  it('builds a signed package with --key and --out', async () => {
    const keys = join(s.dir, 'keys')
    assert.equal((await iofcert('keygen', '--out', keys)).exitCode, 0)
    const dir = await writeFilterDir(s, 'f')
    const out = join(s.dir, 'out', 'cdp.tgz')
    const run = await iofcert('package', dir, '--key', join(keys, 'private.pem'), '--out', out)
    assert.equal(run.exitCode, 0, run.stderr)
    assert.ok(existsSync(out))
    assert.match(run.stdout, /ACME_cdp_1\.2\.0/)
    assert.match(run.stdout, /signed by key [0-9a-f]{64}/)
    assert.match(run.stdout, /^ {2}[\d.]+ (B|KiB) packed, [\d.]+ (B|KiB) unpacked, 3 files$/m)
    assert.match(run.stdout, /sha256 [0-9a-f]{64}/)
    assert.equal(run.stderr, '')
  })

  it('builds an unsigned package without --key, warning when its level needs a signature', async () => {
    const dir = await writeFilterDir(s, 'f')
    const run = await iofcert('package', dir, '--out', join(s.dir, 'cdp.tgz'))
    assert.equal(run.exitCode, 0, run.stderr)
    assert.match(run.stdout, /unsigned/)
    assert.match(run.stderr, /^iofcert package: warning: ACME_cdp_1\.2\.0 is unsigned, but acceptance level PartnerSupported requires a signature: hosts at their default level \(PartnerSupported\) refuse it/)
    assert.equal(run.stderr.trimEnd().split('\n').length, 1)

    const community = await writeFilterDir(s, 'g', { descriptor: metadata({ acceptanceLevel: 'CommunitySupported' }) })
    const quiet = await iofcert('package', community, '--out', join(s.dir, 'community.tgz'))
    assert.equal(quiet.exitCode, 0, quiet.stderr)
    assert.equal(quiet.stderr, '')
  })

  it('refuses a package certification would refuse: one line, exit 1, nothing written', async () => {
    const dir = await writeFilterDir(s, 'f', { descriptor: metadata({ class: 'encryption' }), module: { class: "'encryption'" } })
    const run = await iofcert('package', dir, '--out', join(s.dir, 'x.tgz'))
    assert.equal(run.exitCode, 1, run.stderr)
    assert.equal(run.stderr, 'iofcert package: ACME_cdp_1.2.0 would fail certification: package.class-open: class encryption is not open to third parties; the open classes are replication, cache\n')
    assert.equal(existsSync(join(s.dir, 'x.tgz')), false)
  })

  it('refuses a module that does not match its descriptor, with certification\'s message', async () => {
    const dir = await writeFilterDir(s, 'f', { module: { name: "'cdq'" } })
    const run = await iofcert('package', dir, '--out', join(s.dir, 'x.tgz'))
    assert.equal(run.exitCode, 1, run.stderr)
    assert.match(run.stderr, /^iofcert package: ACME_cdp_1\.2\.0 would fail certification: package\.abi: module name "cdq" differs from the descriptor's "cdp"\n$/)
  })

  it('refuses a directory without descriptor.json: one line, exit 2', async () => {
    const dir = await writeFilterDir(s, 'f')
    await unlink(join(dir, 'descriptor.json'))
    assertOneLineRefusal(await iofcert('package', dir, '--out', join(s.dir, 'x.tgz')), /no descriptor\.json/)
    assert.equal(existsSync(join(s.dir, 'x.tgz')), false)
  })

  it('refuses a descriptor whose entry is missing', async () => {
    const dir = await writeFilterDir(s, 'f', { descriptor: metadata({ entry: 'main.js' }), entryFile: 'filter.js' })
    assertOneLineRefusal(await iofcert('package', dir, '--out', join(s.dir, 'x.tgz')), /entry "main\.js" is not a file/)
  })

  it('refuses a directory holding a link', async () => {
    const dir = await writeFilterDir(s, 'f')
    await symlink('/etc', join(dir, 'etc'))
    assertOneLineRefusal(await iofcert('package', dir, '--out', join(s.dir, 'x.tgz')), /"etc" is a symbolic link/)
  })

  it('refuses a schema-invalid descriptor naming the field', async () => {
    const dir = await writeFilterDir(s, 'f', { descriptor: metadata({ vendor: '1ACME' }) })
    assertOneLineRefusal(await iofcert('package', dir, '--out', join(s.dir, 'x.tgz')), /\/vendor: must match/)
  })

  it('refuses an unreadable key', async () => {
    const dir = await writeFilterDir(s, 'f')
    assertOneLineRefusal(await iofcert('package', dir, '--key', join(s.dir, 'nope.pem'), '--out', join(s.dir, 'x.tgz')), /nope\.pem is not a usable Ed25519 key/)
  })
})

describe('iofcert keygen', () => {
  it('creates the directory and both keys', async () => {
    const out = join(s.dir, 'a', 'b')
    const run = await iofcert('keygen', '--out', out)
    assert.equal(run.exitCode, 0, run.stderr)
    assert.match(await readFile(join(out, 'private.pem'), 'utf8'), /PRIVATE KEY/)
    assert.match(await readFile(join(out, 'public.pem'), 'utf8'), /PUBLIC KEY/)
    assert.match(run.stdout, /fingerprint [0-9a-f]{64}/)
  })

  it('refuses to overwrite existing keys', async () => {
    const out = join(s.dir, 'keys')
    await iofcert('keygen', '--out', out)
    assertOneLineRefusal(await iofcert('keygen', '--out', out), /already exists/)
  })
})
