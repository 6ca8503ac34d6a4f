import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, link, readFile, stat, symlink, unlink, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { list } from 'tar'
import { isIofError } from '../harness/framework/errors.js'
import {
  buildPackage, fingerprint, generateKeyPair, loadPackage, openPackage, readPrivateKey, verifyPackage,
} from '../harness/framework/package/index.js'
import { listFiles, metadata, ran, scratch, writeFilterDir, type Scratch } from './package-fixtures.js'

let s: Scratch
beforeEach(async () => { s = await scratch() })
afterEach(async () => { await s.cleanup() })

async function entries(tgz: string): Promise<{ path: string; type: string; mode?: number; mtime?: number }[]> {
  const out: { path: string; type: string; mode?: number; mtime?: number }[] = []
  await list({ file: tgz, onReadEntry: e => { out.push({ path: e.path, type: e.type, mode: e.mode, mtime: e.mtime?.getTime() }) } })
  return out
}

function codeOf(code: string) {
  return (err: unknown) => {
    assert.ok(isIofError(err, code), `expected ${code}, got ${String(err)}`)
    assert.doesNotMatch(err.message, /\n/, 'a refusal is one line')
    return true
  }
}

describe('build → open → verify → load', () => {
  it('round-trips an unsigned CommunitySupported package', async () => {
    const dir = await writeFilterDir(s, 'f', { descriptor: metadata({ acceptanceLevel: 'CommunitySupported' }) })
    const built = await buildPackage(dir, { out: join(s.dir, 'cdp.tgz') })
    assert.equal(built.descriptor.signature, undefined)
    assert.deepEqual(Object.keys(built.descriptor.files), ['filter.js', 'lib/helper.js'])
    assert.equal(built.descriptor.files['lib/helper.js'], createHash('sha256').update('export const helper = 42\n').digest('hex'))
    assert.equal(built.sha256, createHash('sha256').update(await readFile(built.path)).digest('hex'))

    const { verified, loaded, opened } = await loadPackage(built.path, { workDir: s.workDir, trust: { acceptanceLevel: 'CommunitySupported' } })
    assert.equal(opened.sha256, built.sha256)
    assert.equal(verified.signed, false)
    assert.deepEqual(verified.steps.map(x => `${x.name}:${x.ok}`), ['schema:true', 'paths:true', 'integrity:true', 'signature:true', 'acceptance:true'])
    assert.deepEqual(verified.descriptor, built.descriptor)
    assert.equal(loaded.module?.name, 'cdp')
    assert.deepEqual(loaded.defaultPolicy, { rpoSeconds: 15 })
    assert.equal(ran(s.marker), true, 'the verified package was imported')
  })

  it('round-trips a signed PartnerSupported package and reports the key fingerprint', async () => {
    const keys = await generateKeyPair(join(s.dir, 'keys'))
    const dir = await writeFilterDir(s, 'f')
    const built = await buildPackage(dir, { keyPem: await readPrivateKey(keys.privateKeyPath), out: join(s.dir, 'cdp.tgz') })
    assert.equal(built.descriptor.signature?.algorithm, 'ed25519')
    assert.equal(fingerprint(built.descriptor.signature?.publicKey ?? ''), keys.fingerprint)

    const opened = await openPackage(built.path, { workDir: s.workDir })
    const verified = await verifyPackage(opened, { trust: { trustedKeys: [keys.fingerprint] } })
    assert.equal(verified.ok, true)
    assert.equal(verified.signed, true)
    assert.equal(verified.fingerprint, keys.fingerprint)
  })

  it('opens the unpacked directory too, without writing into it', async () => {
    const dir = await writeFilterDir(s, 'f', { descriptor: metadata({ acceptanceLevel: 'CommunitySupported' }) })
    // A directory is verified as it stands: its descriptor.json must list the files itself.
    const built = await buildPackage(dir, { out: join(s.dir, 'cdp.tgz') })
    await writeFile(join(dir, 'descriptor.json'), JSON.stringify(built.descriptor))
    const { verified, opened } = await loadPackage(dir, { workDir: s.workDir, trust: { acceptanceLevel: 'CommunitySupported' } })
    assert.equal(opened.kind, 'directory')
    assert.equal(verified.ok, true)
    assert.equal(ran(s.marker), true)
    assert.deepEqual(await listFiles(dir), ['descriptor.json', 'filter.js', 'lib/helper.js'])
  })
})

describe('deterministic tarballs', () => {
  it('gives the same bytes for the same input whatever the mtimes, modes and out path', async () => {
    const dir = await writeFilterDir(s, 'f')
    const a = await buildPackage(dir, { out: join(s.dir, 'a.tgz') })
    await utimes(join(dir, 'filter.js'), new Date('2001-01-01'), new Date('2001-01-01'))
    await chmod(join(dir, 'lib', 'helper.js'), 0o755)
    const b = await buildPackage(dir, { out: join(s.dir, 'b.tgz') })
    assert.deepEqual(await readFile(b.path), await readFile(a.path))
    assert.equal(a.sha256, b.sha256)
  })

  it('signs deterministically too (Ed25519 signatures are deterministic)', async () => {
    const keys = await generateKeyPair(join(s.dir, 'keys'))
    const pem = await readPrivateKey(keys.privateKeyPath)
    const dir = await writeFilterDir(s, 'f')
    const a = await buildPackage(dir, { keyPem: pem, out: join(s.dir, 'a.tgz') })
    const b = await buildPackage(dir, { keyPem: pem, out: join(s.dir, 'b.tgz') })
    assert.equal(a.sha256, b.sha256)
  })

  it('puts descriptor.json first, files sorted, fixed mtime and mode, no directory entries', async () => {
    const dir = await writeFilterDir(s, 'f')
    await writeFile(join(dir, 'README'), 'read me\n')
    const built = await buildPackage(dir, { out: join(s.dir, 'a.tgz') })
    const listed = await entries(built.path)
    assert.deepEqual(listed.map(e => e.path), ['descriptor.json', 'README', 'filter.js', 'lib/helper.js'])
    assert.ok(listed.every(e => e.type === 'File' && e.mode === 0o644))
    assert.equal(new Set(listed.map(e => e.mtime)).size, 1)
  })

  it('recomputes files and signature that descriptor.json already holds', async () => {
    const dir = await writeFilterDir(s, 'f', { descriptor: metadata({ files: { 'ghost.js': 'b'.repeat(64) }, signature: { algorithm: 'ed25519', publicKey: 'AAAA', value: 'AAAA' } }) })
    const built = await buildPackage(dir, { out: join(s.dir, 'a.tgz') })
    assert.deepEqual(Object.keys(built.descriptor.files), ['filter.js', 'lib/helper.js'])
    assert.equal(built.descriptor.signature, undefined)
  })

  it('writes <vendor>_<name>_<version>.tgz in the current directory by default, and never packs its own output', async () => {
    const dir = await writeFilterDir(s, 'f')
    const cwd = process.cwd()
    process.chdir(dir)
    try {
      const first = await buildPackage('.')
      assert.equal(first.path, join(dir, 'ACME_cdp_1.2.0.tgz'))
      const second = await buildPackage('.')
      assert.equal(second.descriptor.files['ACME_cdp_1.2.0.tgz'], undefined)
      assert.equal(second.sha256, first.sha256)
    } finally {
      process.chdir(cwd)
    }
  })
})

describe('build refusals', () => {
  it('refuses a directory without descriptor.json', async () => {
    const dir = await writeFilterDir(s, 'f')
    await unlink(join(dir, 'descriptor.json'))
    await assert.rejects(buildPackage(dir, { out: join(s.dir, 'x.tgz') }), codeOf('PackageUnreadable'))
  })

  it('refuses a descriptor that is not JSON', async () => {
    const dir = await writeFilterDir(s, 'f')
    await writeFile(join(dir, 'descriptor.json'), '{ name: cdp')
    await assert.rejects(buildPackage(dir, { out: join(s.dir, 'x.tgz') }), codeOf('PackageUnreadable'))
  })

  it('refuses a schema-invalid descriptor, naming the field', async () => {
    const dir = await writeFilterDir(s, 'f', { descriptor: metadata({ upgrade: { maintenanceMode: 'yes', reboot: false } }) })
    await assert.rejects(buildPackage(dir, { out: join(s.dir, 'x.tgz') }), (err: unknown) => {
      assert.ok(isIofError(err, 'DescriptorInvalid'))
      assert.match(err.message, /\/upgrade\/maintenanceMode: must be boolean/)
      return true
    })
  })

  it('refuses when the entry is not in the directory', async () => {
    const dir = await writeFilterDir(s, 'f', { descriptor: metadata({ entry: 'dist/filter.js' }), entryFile: 'filter.js' })
    await assert.rejects(buildPackage(dir, { out: join(s.dir, 'x.tgz') }), codeOf('EntryMissing'))
  })

  it('refuses an entry path that leaves the package', async () => {
    const dir = await writeFilterDir(s, 'f', { descriptor: metadata({ entry: '../outside.js' }), entryFile: 'filter.js' })
    await writeFile(join(s.dir, 'outside.js'), 'export default {}\n')
    await assert.rejects(buildPackage(dir, { out: join(s.dir, 'x.tgz') }), codeOf('PathEscapes'))
  })

  it('refuses a symbolic link in the directory', async () => {
    const dir = await writeFilterDir(s, 'f')
    await symlink('/etc/hostname', join(dir, 'lib', 'host.js'))
    await assert.rejects(buildPackage(dir, { out: join(s.dir, 'x.tgz') }), (err: unknown) => {
      assert.ok(isIofError(err, 'LinkInPackage'))
      assert.match(err.message, /lib\/host\.js/)
      return true
    })
  })

  it('refuses a hard link, whose other name may be outside the package', async () => {
    const dir = await writeFilterDir(s, 'f')
    await link(join(dir, 'lib', 'helper.js'), join(s.dir, 'elsewhere.js'))
    await assert.rejects(buildPackage(dir, { out: join(s.dir, 'x.tgz') }), codeOf('LinkInPackage'))
  })

  it('refuses a key that is not an Ed25519 private key', async () => {
    const path = join(s.dir, 'bad.pem')
    await writeFile(path, 'not a key')
    await assert.rejects(readPrivateKey(path), codeOf('KeyInvalid'))
    await assert.rejects(readPrivateKey(join(s.dir, 'none.pem')), codeOf('KeyInvalid'))
  })

  it('without check, leaves class, ABI and module checks to install and certification', async () => {
    const dir = await writeFilterDir(s, 'f', {
      descriptor: metadata({ class: 'encryption', abiVersion: 7 }),
      source: 'this is not even JavaScript',
    })
    const built = await buildPackage(dir, { out: join(s.dir, 'x.tgz') })
    assert.equal(built.descriptor.class, 'encryption')
    assert.equal(built.descriptor.abiVersion, 7)
  })

  it('with check, refuses a module certification would refuse, before anything is written', async () => {
    const dir = await writeFilterDir(s, 'f', { descriptor: metadata({ acceptanceLevel: 'CommunitySupported' }), module: { policySchema: "{ type: 'object', required: ['site'] }" } })
    await assert.rejects(buildPackage(dir, { check: true, out: join(s.dir, 'x.tgz') }), (err: unknown) => {
      assert.ok(isIofError(err, 'PackageRefused'), String(err))
      assert.equal(err.exitCode, 1)
      assert.match(err.message, /^ACME_cdp_1\.2\.0 would fail certification: package\.policy-schema: the default policy does not validate against policySchema: \/ must have required property 'site'$/)
      return true
    })
    assert.equal(existsSync(join(s.dir, 'x.tgz')), false)
  })

  it('with check, builds the same bytes as without', async () => {
    const dir = await writeFilterDir(s, 'f')
    const checked = await buildPackage(dir, { check: true, out: join(s.dir, 'a.tgz') })
    const unchecked = await buildPackage(dir, { out: join(s.dir, 'b.tgz') })
    assert.equal(checked.sha256, unchecked.sha256)
  })
})

describe('keygen', () => {
  it('creates the directory, a 0600 PKCS#8 private key and an SPKI public key', async () => {
    const out = join(s.dir, 'deep', 'keys')
    const keys = await generateKeyPair(out)
    assert.equal((await stat(keys.privateKeyPath)).mode & 0o777, 0o600)
    assert.match(await readFile(keys.privateKeyPath, 'utf8'), /^-----BEGIN PRIVATE KEY-----/)
    assert.match(await readFile(keys.publicKeyPath, 'utf8'), /^-----BEGIN PUBLIC KEY-----/)
    assert.equal(fingerprint(await readFile(keys.publicKeyPath, 'utf8')), keys.fingerprint)
    assert.match(keys.fingerprint, /^[0-9a-f]{64}$/)
  })

  it('never overwrites an existing key', async () => {
    const out = join(s.dir, 'keys')
    const first = await generateKeyPair(out)
    const before = await readFile(first.privateKeyPath, 'utf8')
    await assert.rejects(generateKeyPair(out), codeOf('KeyFileExists'))
    assert.equal(await readFile(first.privateKeyPath, 'utf8'), before)
  })
})
