import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { link, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { create } from 'tar'
import { isIofError } from '../harness/framework/errors.js'
import {
  buildPackage, generateKeyPair, loadPackage, openPackage, readPrivateKey, verifyPackage,
  type AcceptanceLevel, type TrustOptions,
} from '../harness/framework/package/index.js'
import { listFiles, metadata, moduleSource, put, ran, repack, scratch, writeFilterDir, type Scratch } from './package-fixtures.js'

let s: Scratch
beforeEach(async () => { s = await scratch() })
afterEach(async () => { await s.cleanup() })

/** A signed PartnerSupported package and a host trust that accepts it. */
async function signedPackage(overrides: Record<string, unknown> = {}): Promise<{ tgz: string; trust: TrustOptions; pem: string }> {
  const keys = await generateKeyPair(join(s.dir, 'keys'))
  const pem = await readPrivateKey(keys.privateKeyPath)
  const dir = await writeFilterDir(s, 'f', { descriptor: metadata(overrides) })
  const built = await buildPackage(dir, { keyPem: pem, out: join(s.dir, 'good.tgz') })
  return { tgz: built.path, trust: { trustedKeys: [keys.fingerprint] }, pem }
}

/** Asserts that installing `source` is refused with `code` and that the package's code never ran. */
async function assertRefused(source: string, trust: TrustOptions, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(loadPackage(source, { workDir: s.workDir, trust }), (err: unknown) => {
    assert.ok(isIofError(err, code), `expected ${code}, got ${String(err)}`)
    if (message !== undefined) assert.match(err.message, message)
    return true
  })
  assert.equal(ran(s.marker), false, "the refused package's code ran")
}

describe('tampered packages are refused before their code runs', () => {
  it('the untampered package loads (the marker works)', async () => {
    const { tgz, trust } = await signedPackage()
    await loadPackage(tgz, { workDir: s.workDir, trust })
    assert.equal(ran(s.marker), true)
  })

  it('a changed file', async () => {
    const { tgz, trust } = await signedPackage()
    const bad = await repack(tgz, join(s.dir, 'bad.tgz'), async d => { await writeFile(join(d, 'lib', 'helper.js'), 'export const helper = 666\n') })
    await assertRefused(bad, trust, 'IntegrityMismatch', /lib\/helper\.js is changed/)
  })

  it('a missing file', async () => {
    const { tgz, trust } = await signedPackage()
    const bad = await repack(tgz, join(s.dir, 'bad.tgz'), async d => { await rm(join(d, 'lib', 'helper.js')) })
    await assertRefused(bad, trust, 'IntegrityMismatch', /lib\/helper\.js is listed but missing/)
  })

  it('an extra file', async () => {
    const { tgz, trust } = await signedPackage()
    const bad = await repack(tgz, join(s.dir, 'bad.tgz'), async d => { await writeFile(join(d, 'lib', 'extra.js'), 'export {}\n') })
    await assertRefused(bad, trust, 'IntegrityMismatch', /lib\/extra\.js is present but not listed/)
  })

  it('the descriptor edited after signing', async () => {
    const { tgz, trust } = await signedPackage()
    const bad = await repack(tgz, join(s.dir, 'bad.tgz'), async d => {
      const desc = JSON.parse(await readFile(join(d, 'descriptor.json'), 'utf8')) as Record<string, unknown>
      desc.acceptanceLevel = 'VMwareCertified'
      await writeFile(join(d, 'descriptor.json'), JSON.stringify(desc))
    })
    await assertRefused(bad, trust, 'SignatureInvalid')
  })

  it('a file changed and its hash updated after signing', async () => {
    const { tgz, trust } = await signedPackage()
    const bad = await repack(tgz, join(s.dir, 'bad.tgz'), async d => {
      const evil = 'export const helper = 666\n'
      await writeFile(join(d, 'lib', 'helper.js'), evil)
      const desc = JSON.parse(await readFile(join(d, 'descriptor.json'), 'utf8')) as { files: Record<string, string> }
      const { createHash } = await import('node:crypto')
      desc.files['lib/helper.js'] = createHash('sha256').update(evil).digest('hex')
      await writeFile(join(d, 'descriptor.json'), JSON.stringify(desc))
    })
    await assertRefused(bad, trust, 'SignatureInvalid')
  })

  it('an entry that is not listed in files', async () => {
    const { tgz, trust } = await signedPackage()
    const bad = await repack(tgz, join(s.dir, 'bad.tgz'), async d => {
      const desc = JSON.parse(await readFile(join(d, 'descriptor.json'), 'utf8')) as { files: Record<string, string>; signature?: unknown }
      delete desc.files['filter.js']
      delete desc.signature
      await writeFile(join(d, 'descriptor.json'), JSON.stringify({ ...desc, acceptanceLevel: 'CommunitySupported' }))
    })
    await assertRefused(bad, { acceptanceLevel: 'CommunitySupported' }, 'EntryMissing')
  })
})

describe('hand-made tarballs with unsafe entries', () => {
  /** A staging dir holding a valid unsigned CommunitySupported package's files. */
  async function staged(): Promise<string> {
    const dir = await writeFilterDir(s, 'src', { descriptor: metadata({ acceptanceLevel: 'CommunitySupported' }) })
    const built = await buildPackage(dir, { out: join(s.dir, 'src.tgz') })
    await writeFile(join(dir, 'descriptor.json'), JSON.stringify(built.descriptor))
    return dir
  }
  const community: TrustOptions = { acceptanceLevel: 'CommunitySupported' }

  it('accepts entries named with a leading ./', async () => {
    const dir = await staged()
    const tgz = join(s.dir, 'dot.tgz')
    await create({ cwd: dir, file: tgz, gzip: true }, ['./descriptor.json', './filter.js', './lib/helper.js'])
    const { verified } = await loadPackage(tgz, { workDir: s.workDir, trust: community })
    assert.equal(verified.ok, true)
    assert.equal(ran(s.marker), true)
  })

  it('refuses a ../ path and writes nothing outside the package', async () => {
    const dir = await staged()
    await put(join(s.dir, 'escape.js'), moduleSource(s.marker))
    const tgz = join(s.dir, 'up.tgz')
    await create({ cwd: dir, file: tgz, gzip: true, preservePaths: true }, ['descriptor.json', 'filter.js', 'lib/helper.js', '../escape.js'])
    await assertRefused(tgz, community, 'PathEscapes', /"\.\.\/escape\.js".*\(\.\.\)/)
    const opened = await openPackage(tgz, { workDir: join(s.dir, 'w2') })
    assert.equal(existsSync(join(opened.root, '..', 'escape.js')), false)
    assert.deepEqual(await listFiles(opened.dir), ['package.json', 'root/descriptor.json', 'root/filter.js', 'root/lib/helper.js'])
  })

  it('refuses an absolute path', async () => {
    const dir = await staged()
    const abs = join(s.dir, 'abs', 'evil.js')
    await put(abs, moduleSource(s.marker))
    const tgz = join(s.dir, 'abs.tgz')
    await create({ cwd: dir, file: tgz, gzip: true, preservePaths: true }, ['descriptor.json', 'filter.js', 'lib/helper.js', abs])
    await assertRefused(tgz, community, 'PathEscapes', /is absolute/)
  })

  it('refuses a symbolic link entry and never creates the link', async () => {
    const dir = await staged()
    await symlink('/etc/passwd', join(dir, 'lib', 'passwd.js'))
    const tgz = join(s.dir, 'ln.tgz')
    await create({ cwd: dir, file: tgz, gzip: true }, ['descriptor.json', 'filter.js', 'lib/helper.js', 'lib/passwd.js'])
    await assertRefused(tgz, community, 'LinkInPackage', /lib\/passwd\.js.*symbolic link/)
    const opened = await openPackage(tgz, { workDir: join(s.dir, 'w2') })
    assert.equal(existsSync(join(opened.root, 'lib', 'passwd.js')), false)
  })

  it('refuses a hard link entry', async () => {
    const dir = await staged()
    await link(join(dir, 'lib', 'helper.js'), join(dir, 'lib', 'twin.js'))
    const tgz = join(s.dir, 'hl.tgz')
    // Synchronous: node-tar's async Pack can stall or fail on hard-linked files.
    create({ cwd: dir, file: tgz, gzip: true, sync: true }, ['descriptor.json', 'filter.js', 'lib/helper.js', 'lib/twin.js'])
    await assertRefused(tgz, community, 'LinkInPackage', /hard link/)
  })

  it('refuses a symbolic link in an unpacked directory', async () => {
    const dir = await staged()
    await symlink('/etc/passwd', join(dir, 'lib', 'passwd.js'))
    await assertRefused(dir, community, 'LinkInPackage')
  })

  it('refuses the same path twice', async () => {
    const dir = await staged()
    const tgz = join(s.dir, 'dup.tgz')
    await create({ cwd: dir, file: tgz, gzip: true }, ['descriptor.json', 'filter.js', 'lib/helper.js', './filter.js'])
    await assertRefused(tgz, community, 'UnsupportedEntry', /more than once/)
  })

  it('calls a file that is not a tarball unreadable', async () => {
    const junk = join(s.dir, 'junk.tgz')
    await writeFile(junk, 'this is not a tarball at all, not even close'.repeat(20))
    await assertRefused(junk, community, 'PackageUnreadable')
    await assertRefused(join(s.dir, 'absent.tgz'), community, 'PackageUnreadable')
  })

  it('calls a tarball without descriptor.json unreadable', async () => {
    const dir = await staged()
    const tgz = join(s.dir, 'nodesc.tgz')
    await create({ cwd: dir, file: tgz, gzip: true }, ['filter.js', 'lib/helper.js'])
    await assertRefused(tgz, community, 'PackageUnreadable', /no descriptor\.json/)
  })
})

describe('acceptance levels and the trust store', () => {
  async function unsigned(level: AcceptanceLevel): Promise<string> {
    const dir = await writeFilterDir(s, `u-${level}`, { descriptor: metadata({ acceptanceLevel: level }) })
    return (await buildPackage(dir, { out: join(s.dir, `u-${level}.tgz`) })).path
  }

  it('accepts an unsigned CommunitySupported package on a CommunitySupported host', async () => {
    const opened = await openPackage(await unsigned('CommunitySupported'), { workDir: s.workDir })
    const v = await verifyPackage(opened, { trust: { acceptanceLevel: 'CommunitySupported' } })
    assert.equal(v.ok, true)
    assert.equal(v.signed, false)
  })

  it('refuses it on a PartnerSupported host, the default level', async () => {
    const tgz = await unsigned('CommunitySupported')
    await assertRefused(tgz, {}, 'AcceptanceLevelTooLow', /CommunitySupported is below the host's level PartnerSupported/)
    await assertRefused(tgz, { acceptanceLevel: 'PartnerSupported' }, 'AcceptanceLevelTooLow')
  })

  it('refuses an unsigned package claiming a level above CommunitySupported', async () => {
    await assertRefused(await unsigned('PartnerSupported'), { acceptanceLevel: 'CommunitySupported' }, 'SignatureMissing')
  })

  it('refuses a package signed by a key not in the trust store', async () => {
    const { tgz } = await signedPackage()
    const stranger = await generateKeyPair(join(s.dir, 'stranger'))
    await assertRefused(tgz, { trustedKeys: [stranger.fingerprint] }, 'UntrustedKey')
    await assertRefused(tgz, {}, 'UntrustedKey')
  })

  it('accepts a trusted VMwareCertified package on any host, and refuses PartnerSupported on a VMwareAccepted host', async () => {
    const certified = await signedPackage({ acceptanceLevel: 'VMwareCertified' })
    const opened = await openPackage(certified.tgz, { workDir: s.workDir })
    assert.equal((await verifyPackage(opened, { trust: { ...certified.trust, acceptanceLevel: 'VMwareCertified' } })).ok, true)
    const dir = await writeFilterDir(s, 'partner')
    const partner = await buildPackage(dir, { keyPem: certified.pem, out: join(s.dir, 'partner.tgz') })
    await assertRefused(partner.path, { ...certified.trust, acceptanceLevel: 'VMwareAccepted' }, 'AcceptanceLevelTooLow')
  })

  it('accepts a signed CommunitySupported package whatever its key', async () => {
    const { tgz } = await signedPackage({ acceptanceLevel: 'CommunitySupported' })
    const opened = await openPackage(tgz, { workDir: s.workDir })
    const v = await verifyPackage(opened, { trust: { acceptanceLevel: 'CommunitySupported' } })
    assert.equal(v.ok, true)
    assert.equal(v.signed, true)
  })

  it('refuses a trust store entry that is not a fingerprint', async () => {
    const { tgz } = await signedPackage()
    const opened = await openPackage(tgz, { workDir: s.workDir })
    await assert.rejects(verifyPackage(opened, { trust: { trustedKeys: ['-----BEGIN PUBLIC KEY-----'] } }), (err: unknown) => isIofError(err, 'TrustStoreInvalid'))
  })
})

describe('collect mode', () => {
  it('runs every step and reports each result', async () => {
    const { tgz, trust } = await signedPackage()
    const bad = await repack(tgz, join(s.dir, 'bad.tgz'), async d => { await writeFile(join(d, 'filter.js'), '// replaced\n') })
    const opened = await openPackage(bad, { workDir: s.workDir })
    const v = await verifyPackage(opened, { trust, collect: true })
    assert.equal(v.ok, false)
    assert.deepEqual(v.steps.map(x => `${x.name}:${x.ok ? 'ok' : x.error.code}`), [
      'schema:ok', 'paths:ok', 'integrity:IntegrityMismatch', 'signature:ok', 'acceptance:ok',
    ])
    assert.equal(v.signed, true)
  })

  it('reports a schema failure and still judges integrity and signature', async () => {
    const { tgz } = await signedPackage()
    const bad = await repack(tgz, join(s.dir, 'bad.tgz'), async d => {
      const desc = JSON.parse(await readFile(join(d, 'descriptor.json'), 'utf8')) as Record<string, unknown>
      desc.install = { maintenanceMode: false, reboot: 'later' }
      await writeFile(join(d, 'descriptor.json'), JSON.stringify(desc))
    })
    const opened = await openPackage(bad, { workDir: s.workDir })
    const v = await verifyPackage(opened, { collect: true, trust: { acceptanceLevel: 'CommunitySupported' } })
    const schema = v.steps.find(x => x.name === 'schema')
    assert.ok(schema !== undefined && !schema.ok)
    assert.match(schema.error.message, /\/install\/reboot: must be boolean/)
    assert.deepEqual(v.steps.map(x => x.ok), [false, true, true, false, false])
  })
})
