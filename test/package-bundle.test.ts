/**
 * Building a package from a filter project: package.json `files` chooses the files, the
 * production dependency closure is bundled under node_modules/, and (with `check`, as
 * `iofcert package` always does) the staged package is loaded as certification loads it.
 * The project is test/fixtures/bundle; its node_modules, which git does not keep, is written here.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { cp, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { list } from 'tar'
import { prepareSubject } from '../harness/certify/subject.js'
import { isIofError } from '../harness/framework/errors.js'
import {
  PACKAGE_REFUSED, buildPackage, describeSize, generateKeyPair, loadPackage, type BuildOptions,
} from '../harness/framework/package/index.js'
import { put, scratch, type Scratch } from './package-fixtures.js'

const FIXTURE = fileURLToPath(new URL('../../test/fixtures/bundle', import.meta.url))
const MAIN = fileURLToPath(new URL('../harness/cli/main.js', import.meta.url))

let s: Scratch
beforeEach(async () => { s = await scratch() })
afterEach(async () => { await s.cleanup() })

/**
 * Copies the fixture project to `<scratch>/proj` and installs its dependencies as npm would:
 * tiny-dep in the project's node_modules, its dependency tiny-sub hoisted to the node_modules
 * above the project, the devDependency dev-only, npm's bookkeeping and .bin entries.
 */
async function project(): Promise<string> {
  const dir = join(s.dir, 'proj')
  await cp(FIXTURE, dir, { recursive: true })
  const files: Record<string, string> = {
    'proj/node_modules/tiny-dep/package.json': JSON.stringify({
      name: 'tiny-dep', version: '1.0.0', type: 'module', exports: './index.js',
      dependencies: { 'tiny-sub': '^1.0.0' }, optionalDependencies: { 'tiny-absent': '1.0.0' }, devDependencies: { 'dev-only': '1.0.0' },
    }),
    'proj/node_modules/tiny-dep/index.js': "import { base } from 'tiny-sub'\nexport const defaultCacheMiB = () => base * 2\n",
    'proj/node_modules/tiny-dep/node_modules/.bin/tiny': '#!/bin/sh\n',
    'node_modules/tiny-sub/package.json': JSON.stringify({ name: 'tiny-sub', version: '1.2.0', type: 'module', main: 'index.js' }),
    'node_modules/tiny-sub/index.js': 'export const base = 32\n',
    'proj/node_modules/dev-only/package.json': JSON.stringify({ name: 'dev-only', version: '1.0.0' }),
    'proj/node_modules/dev-only/index.js': 'module.exports = 1\n',
    'proj/node_modules/.bin/dev-only': '#!/bin/sh\n',
    'proj/node_modules/.package-lock.json': '{}\n',
  }
  for (const [path, text] of Object.entries(files)) await put(join(s.dir, path), text)
  return dir
}

async function editJson(file: string, edit: (json: Record<string, any>) => void): Promise<void> {
  const json = JSON.parse(await readFile(file, 'utf8')) as Record<string, any>
  edit(json)
  await writeFile(file, `${JSON.stringify(json, null, 2)}\n`)
}

async function edit(file: string, from: string, to: string): Promise<void> {
  const text = await readFile(file, 'utf8')
  assert.ok(text.includes(from), `${file} holds ${from}`)
  await writeFile(file, text.replace(from, to))
}

async function packed(tgz: string): Promise<string[]> {
  const out: string[] = []
  await list({ file: tgz, onReadEntry: e => { out.push(e.path) } })
  return out
}

const BUNDLED = [
  'node_modules/tiny-dep/index.js',
  'node_modules/tiny-dep/package.json',
  'node_modules/tiny-sub/index.js',
  'node_modules/tiny-sub/package.json',
]

describe('which files go in', () => {
  it('package.json "files", package.json and the production closure (hoisted ones too); never devDependencies, .bin or npm bookkeeping', async () => {
    const dir = await project()
    const built = await buildPackage(dir, { out: join(s.dir, 'tiny.tgz') })
    assert.equal(built.mode, 'files')
    assert.deepEqual(await packed(built.path), ['descriptor.json', 'build/filter.js', ...BUNDLED, 'package.json'])
    assert.deepEqual(Object.keys(built.descriptor.files), ['build/filter.js', ...BUNDLED, 'package.json'])
    assert.deepEqual(built.bundled.map(b => `${b.path}@${b.version}`), ['node_modules/tiny-dep@1.0.0', 'node_modules/tiny-sub@1.2.0'])
    assert.equal(built.bundled[1]?.source, join(s.dir, 'node_modules', 'tiny-sub'))
  })

  it('the built package loads as certification and install load it, its bundled dependencies resolved', async () => {
    const dir = await project()
    const built = await buildPackage(dir, { check: true, out: join(s.dir, 'tiny.tgz') })
    const { loaded } = await loadPackage(built.path, { workDir: s.workDir, trust: { acceptanceLevel: 'CommunitySupported' } })
    assert.equal(loaded.ok, true)
    assert.deepEqual(loaded.defaultPolicy, { cacheMiB: 64 }, 'tiny-dep and tiny-sub were imported')
    const subject = await prepareSubject(built.path, join(s.dir, 'certify'))
    for (const check of ['descriptor', 'integrity', 'abi', 'class-open', 'policy-schema'] as const) assert.equal(subject.steps[check].ok, true, `package.${check}: ${subject.steps[check].message}`)
  })

  it('keeps a nested copy where npm put it, so each dependent loads its own version', async () => {
    const dir = await project()
    await put(join(dir, 'node_modules/tiny-dep/node_modules/tiny-sub/package.json'), JSON.stringify({ name: 'tiny-sub', version: '0.9.0', type: 'module', main: 'index.js' }))
    await put(join(dir, 'node_modules/tiny-dep/node_modules/tiny-sub/index.js'), 'export const base = 8\n')
    const built = await buildPackage(dir, { check: true, out: join(s.dir, 'tiny.tgz') })
    assert.deepEqual(built.bundled.map(b => `${b.path}@${b.version}`), ['node_modules/tiny-dep@1.0.0', 'node_modules/tiny-dep/node_modules/tiny-sub@0.9.0'])
    const { loaded } = await loadPackage(built.path, { workDir: s.workDir, trust: { acceptanceLevel: 'CommunitySupported' } })
    assert.deepEqual(loaded.defaultPolicy, { cacheMiB: 16 })
  })

  it('follows a dependency npm linked from a local directory, and packs its files', async () => {
    const dir = await project()
    await cp(join(dir, 'node_modules/tiny-dep'), join(s.dir, 'local/tiny-dep'), { recursive: true })
    await rm(join(dir, 'node_modules/tiny-dep'), { recursive: true })
    await symlink('../../local/tiny-dep', join(dir, 'node_modules/tiny-dep'))
    const built = await buildPackage(dir, { out: join(s.dir, 'tiny.tgz') })
    assert.deepEqual(await packed(built.path), ['descriptor.json', 'build/filter.js', ...BUNDLED, 'package.json'])
    assert.equal(built.bundled[0]?.source, join(s.dir, 'local/tiny-dep'))
  })

  it('without "files" the whole directory goes in, but node_modules holds only the production closure', async () => {
    const dir = await project()
    await editJson(join(dir, 'package.json'), j => { delete j.files })
    const built = await buildPackage(dir, { out: join(s.dir, 'tiny.tgz') })
    assert.equal(built.mode, 'tree')
    assert.deepEqual(await packed(built.path), ['descriptor.json', 'README.md', 'build/filter.js', ...BUNDLED, 'package.json'])
  })

  it('"files" patterns: * within a segment, ** across, ! leaves out', async () => {
    const dir = await project()
    await put(join(dir, 'build/lib/util.js'), 'export {}\n')
    await put(join(dir, 'build/filter.js.map'), '{}\n')
    await put(join(dir, 'build/lib/util.test.js'), 'export {}\n')
    await editJson(join(dir, 'package.json'), j => { j.files = ['./build/*.js', 'build/**/util*.js', '!**/*.test.js'] })
    const built = await buildPackage(dir, { out: join(s.dir, 'tiny.tgz') })
    assert.deepEqual(Object.keys(built.descriptor.files).filter(p => !p.startsWith('node_modules/')), ['build/filter.js', 'build/lib/util.js', 'package.json'])
  })

  it('gives the same bytes for the same input', async () => {
    const dir = await project()
    const a = await buildPackage(dir, { check: true, out: join(s.dir, 'a.tgz') })
    await utimes(join(s.dir, 'node_modules/tiny-sub/index.js'), new Date('2001-01-01'), new Date('2001-01-01'))
    const b = await buildPackage(dir, { check: true, out: join(s.dir, 'b.tgz') })
    assert.deepEqual(await readFile(b.path), await readFile(a.path))
  })

  it('reports the size: packed and unpacked bytes, files, and those in node_modules', async () => {
    const dir = await project()
    const built = await buildPackage(dir, { out: join(s.dir, 'tiny.tgz') })
    let unpacked = Buffer.byteLength(`${JSON.stringify(built.descriptor, null, 2)}\n`)
    for (const p of Object.keys(built.descriptor.files)) unpacked += (await stat(join(p.startsWith('node_modules/tiny-sub') ? s.dir : dir, p))).size
    assert.deepEqual(built.size, { packedBytes: (await stat(built.path)).size, unpackedBytes: unpacked, files: 7, bundledFiles: 4, bundledPackages: 2 })
    assert.equal(describeSize({ packedBytes: 422195, unpackedBytes: 1887437, files: 57, bundledFiles: 51, bundledPackages: 2 }), '412.3 KiB packed, 1.8 MiB unpacked, 57 files (51 in node_modules: 2 packages)')
    assert.equal(describeSize({ packedBytes: 900, unpackedBytes: 2000, files: 1, bundledFiles: 0, bundledPackages: 0 }), '900 B packed, 2.0 KiB unpacked, 1 file')
  })
})

describe('refusals', () => {
  function badInput(pattern: RegExp) {
    return (err: unknown) => {
      assert.ok(isIofError(err, 'BadInput'), `expected BadInput, got ${String(err)}`)
      assert.equal(err.exitCode, 2)
      assert.match(err.message, pattern)
      return true
    }
  }

  it('a dependency that is not installed', async () => {
    const dir = await project()
    await rm(join(s.dir, 'node_modules'), { recursive: true })
    await assert.rejects(buildPackage(dir, { out: join(s.dir, 'x.tgz') }), badInput(/dependency "tiny-sub" of node_modules\/tiny-dep .* is not installed/))
  })

  it('a "files" entry that matches nothing, or leaves the directory', async () => {
    const dir = await project()
    await editJson(join(dir, 'package.json'), j => { j.files = ['dist/'] })
    await assert.rejects(buildPackage(dir, { out: join(s.dir, 'x.tgz') }), badInput(/"files" lists "dist", which matches no file/))
    await editJson(join(dir, 'package.json'), j => { j.files = ['../secret'] })
    await assert.rejects(buildPackage(dir, { out: join(s.dir, 'x.tgz') }), badInput(/"\.\.\/secret" is not a path in the directory/))
  })

  it('an entry that "files" leaves out', async () => {
    const dir = await project()
    await put(join(dir, 'lib/other.js'), 'export {}\n')
    await editJson(join(dir, 'package.json'), j => { j.files = ['lib/'] })
    await assert.rejects(buildPackage(dir, { out: join(s.dir, 'x.tgz') }), (err: unknown) => isIofError(err, 'EntryMissing') && /"files" .* does not include it/.test(err.message))
  })

  /**
   * What certification says of the project as it stands: the package built without the check,
   * through the package.* checks of a certification run.
   */
  async function certificationSays(dir: string, check: 'abi' | 'class-open'): Promise<string> {
    const unchecked = await buildPackage(dir, { out: join(s.dir, 'unchecked.tgz') })
    const subject = await prepareSubject(unchecked.path, join(s.dir, 'certify'))
    const step = subject.steps[check]
    assert.equal(step.ok, false, `certification fails package.${check}`)
    return `package.${check}: ${step.message}`
  }

  async function assertRefused(dir: string, certification: string, options: BuildOptions = {}): Promise<void> {
    const out = join(s.dir, 'refused.tgz')
    await assert.rejects(buildPackage(dir, { ...options, check: true, out }), (err: unknown) => {
      assert.ok(isIofError(err, PACKAGE_REFUSED), `expected ${PACKAGE_REFUSED}, got ${String(err)}`)
      assert.equal(err.exitCode, 1)
      assert.ok(err.message.endsWith(` would fail certification: ${certification}`), `${err.message}\nends with certification's\n${certification}`)
      return true
    })
    assert.equal(existsSync(out), false, 'nothing is written')
  }

  it('an import that does not resolve in the package: a dependency left out of "dependencies"', async () => {
    const dir = await project()
    await editJson(join(dir, 'package.json'), j => { j.dependencies = { 'tiny-sub': '1.0.0' } })
    const certification = await certificationSays(dir, 'abi')
    assert.match(certification, /Cannot find "tiny-dep" imported from file:\/\/\/filter\/build\/filter\.js/)
    await assertRefused(dir, certification)
  })

  it('a descriptor field that differs from the module\'s', async () => {
    const dir = await project()
    await editJson(join(dir, 'descriptor.json'), j => { j.version = '1.0.1' })
    const certification = await certificationSays(dir, 'abi')
    assert.equal(certification, 'package.abi: module version "1.0.0" differs from the descriptor\'s "1.0.1"')
    await assertRefused(dir, certification)
  })

  it('a closed class, and a reserved one', async () => {
    for (const cls of ['inspection', 'encryption']) {
      const dir = await project()
      await editJson(join(dir, 'descriptor.json'), j => { j.class = cls })
      await edit(join(dir, 'build/filter.js'), "class: 'cache'", `class: '${cls}'`)
      const certification = await certificationSays(dir, 'class-open')
      assert.equal(certification, `package.class-open: class ${cls} is not open to third parties; the open classes are replication, cache`)
      await assertRefused(dir, certification)
      await rm(dir, { recursive: true })
    }
  })

  it('what install refuses though certification passes: a package.json without "type": "module" over a .js entry', async () => {
    const dir = await project()
    await editJson(join(dir, 'package.json'), j => { delete j.type })
    await assert.rejects(buildPackage(dir, { check: true, out: join(s.dir, 'x.tgz') }), (err: unknown) => {
      assert.ok(isIofError(err, PACKAGE_REFUSED))
      assert.match(err.message, /^ACME_tiny_1\.0\.0 would be refused at install: filter module build\/filter\.js is invalid: package\.json in the package makes it load as CommonJS/)
      return true
    })
  })
})

describe('iofcert package (the program)', () => {
  interface Run { readonly code: number | null; readonly stdout: string; readonly stderr: string }

  function iofcert(...args: string[]): Promise<Run> {
    const child = spawn(process.execPath, [MAIN, ...args], { cwd: s.dir, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (b: Buffer) => { stdout += b.toString() })
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString() })
    return new Promise(resolve => child.on('close', code => resolve({ code, stdout, stderr })))
  }

  it('builds, bundles and prints the size; unsigned above CommunitySupported, it warns and still succeeds', async () => {
    const dir = await project()
    const community = await iofcert('package', dir, '--out', 'tiny.tgz')
    assert.equal(community.code, 0, community.stderr)
    assert.equal(community.stderr, '')
    assert.match(community.stdout, /^ {2}[\d.]+ (B|KiB) packed, [\d.]+ (B|KiB) unpacked, 7 files \(4 in node_modules: 2 packages\)$/m)
    assert.deepEqual(await packed(join(s.dir, 'tiny.tgz')), ['descriptor.json', 'build/filter.js', ...BUNDLED, 'package.json'])

    await editJson(join(dir, 'descriptor.json'), j => { j.acceptanceLevel = 'PartnerSupported' })
    const partner = await iofcert('package', dir, '--out', 'partner.tgz')
    assert.equal(partner.code, 0, partner.stderr)
    assert.equal(partner.stderr, 'iofcert package: warning: ACME_tiny_1.0.0 is unsigned, but acceptance level PartnerSupported requires a signature: hosts at their default level (PartnerSupported) refuse it; sign it (--key), or declare CommunitySupported\n')
    assert.ok(existsSync(join(s.dir, 'partner.tgz')))

    const keys = await generateKeyPair(join(s.dir, 'keys'))
    const signed = await iofcert('package', dir, '--key', keys.privateKeyPath, '--out', 'signed.tgz')
    assert.equal(signed.code, 0, signed.stderr)
    assert.equal(signed.stderr, '', 'a signed package draws no warning')
  })

  it('refuses what certification would refuse: one line, certification\'s message, exit 1', async () => {
    const dir = await project()
    await editJson(join(dir, 'descriptor.json'), j => { j.class = 'compression' })
    await edit(join(dir, 'build/filter.js'), "class: 'cache'", "class: 'compression'")
    const r = await iofcert('package', dir, '--out', 'x.tgz')
    assert.equal(r.code, 1, r.stderr)
    assert.equal(r.stdout, '')
    assert.equal(r.stderr, 'iofcert package: ACME_tiny_1.0.0 would fail certification: package.class-open: class compression is not open to third parties; the open classes are replication, cache\n')
    assert.equal(existsSync(join(s.dir, 'x.tgz')), false)
  })

  it('a dependency that is not installed is bad input: exit 2', async () => {
    const dir = await project()
    await rm(join(dir, 'node_modules', 'tiny-dep'), { recursive: true })
    const r = await iofcert('package', dir, '--out', 'x.tgz')
    assert.equal(r.code, 2, r.stderr)
    assert.match(r.stderr, /^iofcert package: dependency "tiny-dep" of package\.json in .* is not installed/)
  })
})
