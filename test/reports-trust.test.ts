/**
 * Trust in listings: the partial rule (a narrowed run is never listed as ready) and the trust
 * file (vendor → package keys, certifier keys), enforced by `iofcert verify --trust` and
 * `iofcert publish --trust`, driven as real subprocesses with keys made by the project's keygen.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateKeyPair, signDescriptor, verifyDescriptorSignature } from '../harness/framework/package/keys.js'
import type { Descriptor } from '../harness/framework/package/descriptor.js'
import type { CertReport } from '../reports/document.js'
import { mergeReports } from '../reports/merge.js'
import type { Listing } from '../reports/publish.js'
import { signReport } from '../reports/sign.js'
import { assessReport, parseTrust } from '../reports/trust.js'
import { computeVerdict, countChecks } from '../reports/verdict.js'
import { isReportError } from '../reports/errors.js'
import { buildReport } from './fixtures/report-fixture.js'

const MAIN = fileURLToPath(new URL('../harness/cli/main.js', import.meta.url))

interface Run { code: number; stdout: string; stderr: string }

/** Runs `iofcert …` as a real process. */
function iofcert(args: string[]): Promise<Run> {
  return new Promise(resolve => {
    execFile(process.execPath, [MAIN, ...args], { encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1
      resolve({ code, stdout, stderr })
    })
  })
}

/** A key pair written by the project's keygen, with its PEMs. */
interface Keys { dir: string; fingerprint: string; privateKeyPem: string; publicKeyPem: string }

async function keygen(dir: string): Promise<Keys> {
  const pair = await generateKeyPair(dir)
  return {
    dir,
    fingerprint: pair.fingerprint,
    privateKeyPem: await readFile(pair.privateKeyPath, 'utf8'),
    publicKeyPem: await readFile(pair.publicKeyPath, 'utf8'),
  }
}

/**
 * The package key fingerprint a certify run records for a package signed with `keys`: the
 * descriptor is signed with the vendor's key and its signature verified, as certification does.
 */
function packageSignedWith(keys: Keys, vendor: string): string {
  const descriptor = { name: 'cdp', vendor, version: '1.2.0', files: {} } as unknown as Descriptor
  const check = verifyDescriptorSignature(signDescriptor(descriptor, keys.privateKeyPem))
  assert.ok(check.ok)
  return check.fingerprint
}

/** A report of a package `vendor` signed with `packageKeys`, ready unless told otherwise. */
function reportOf(vendor: string, packageKeys: Keys | null, extra: Parameters<typeof buildReport>[0] = {}): CertReport {
  const doc = buildReport({ samples: 60, outcome: 'ready', vendor, ...extra })
  doc.package = packageKeys === null
    ? { acceptanceLevel: 'CommunitySupported', signed: false }
    : { acceptanceLevel: 'PartnerSupported', signed: true, keyFingerprint: packageSignedWith(packageKeys, vendor) }
  return doc
}

/** Keeps only the checks whose id matches, as a run narrowed by `--grep` does. */
function narrowed(doc: CertReport, grep: string): CertReport {
  const re = new RegExp(grep)
  const checks = doc.checks.filter(c => re.test(c.id))
  const { verdict, reasons } = computeVerdict(checks, { certified: false })
  return { ...doc, checks, verdict, reasons, counts: countChecks(checks), options: { quick: false, certified: false, grep } }
}

/** Shard `index`/`count` of the run of `doc` (a stable split of the catalogue). */
function shard(doc: CertReport, index: number, count: number): CertReport {
  const checks = doc.checks.filter((_, j) => j % count === index - 1)
  const { verdict, reasons } = computeVerdict(checks, { certified: false })
  return { ...doc, checks, verdict, reasons, counts: countChecks(checks), options: { quick: false, certified: false, shard: { index, count } } }
}

interface World {
  dir: string
  acme: Keys
  iofcert: Keys
  lab: Keys
  rogueLab: Keys
  trustFile: string
}

async function withWorld(fn: (w: World) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'iofcert-trust-'))
  try {
    const w: World = {
      dir,
      acme: await keygen(join(dir, 'keys', 'acme')),
      iofcert: await keygen(join(dir, 'keys', 'iofcert')),
      lab: await keygen(join(dir, 'keys', 'lab')),
      rogueLab: await keygen(join(dir, 'keys', 'rogue')),
      trustFile: join(dir, 'trust.json'),
    }
    await writeFile(w.trustFile, JSON.stringify({
      trustVersion: 1,
      vendors: { ACME: { packageKeys: [w.acme.fingerprint] }, IOFCERT: { packageKeys: [w.iofcert.fingerprint.toUpperCase()] } },
      certifiers: [{ name: 'Lab A', key: w.lab.fingerprint }],
    }, null, 2))
    await fn(w)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

async function save(dir: string, name: string, doc: CertReport): Promise<string> {
  const file = join(dir, name)
  await writeFile(file, JSON.stringify(doc, null, 2))
  return file
}

async function readListing(site: string): Promise<Listing> {
  return JSON.parse(await readFile(join(site, 'listing.json'), 'utf8')) as Listing
}

test('a run narrowed by --grep, or one unmerged shard, is listed as partial, never ready', async () => {
  await withWorld(async w => {
    const full = reportOf('ACME', w.acme)
    const grep = narrowed(full, '^package\\.')
    assert.equal(grep.checks.length, 6)
    assert.equal(grep.verdict, 'ready', 'the narrowed run passed every check it ran')
    const files = [
      await save(w.dir, 'grep.json', signReport(grep, w.lab.privateKeyPem)),
      await save(w.dir, 'shard.json', signReport({ ...shard(full, 1, 3), filter: { ...full.filter, version: '1.3.0', id: 'ACME_cdp_1.3.0' } }, w.lab.privateKeyPem)),
      await save(w.dir, 'whole.json', signReport({ ...full, filter: { ...full.filter, version: '1.4.0', id: 'ACME_cdp_1.4.0' } }, w.lab.privateKeyPem)),
    ]
    const site = join(w.dir, 'site')
    const r = await iofcert(['publish', ...files, '--out', site])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stderr, /^published 3 reports \(1 ready, 2 partial\) to .*site\/index\.html; made without a trust file: vendor names, package keys and certifier keys were not checked\n$/)
    const listing = await readListing(site)
    assert.equal(listing.trust, null)
    assert.deepEqual(listing.refused, [])
    const byVersion = new Map(listing.entries.map(e => [e.version, e]))
    assert.equal(byVersion.get('1.2.0')!.verdict, 'partial')
    assert.equal(byVersion.get('1.2.0')!.reportVerdict, 'ready')
    assert.deepEqual(byVersion.get('1.2.0')!.partial, { grep: '^package\\.' })
    assert.equal(byVersion.get('1.3.0')!.verdict, 'partial')
    assert.deepEqual(byVersion.get('1.3.0')!.partial, { shard: { index: 1, count: 3 } })
    assert.equal(byVersion.get('1.4.0')!.verdict, 'ready')
    assert.equal(byVersion.get('1.4.0')!.partial, undefined)

    const index = await readFile(join(site, 'index.html'), 'utf8')
    assert.ok(index.includes('1 ready, 2 partial'), 'the summary counts partial runs apart')
    assert.equal((index.match(/<span class="badge partial"[^>]*>Partial<\/span>/g) ?? []).length, 2)
    assert.equal((index.match(/<span class="badge ready">Ready<\/span>/g) ?? []).length, 1)
    assert.ok(index.includes('--grep &quot;^package\\\\.&quot;'), 'the badge says how the run was narrowed')
    assert.ok(index.includes('data-trust="none"'))
    assert.ok(index.includes('Made without a trust file'))

    const v = await iofcert(['verify', files[0]!])
    assert.equal(v.code, 0)
    assert.match(v.stdout, /; a partial run \(--grep "\^package\\\\\."\), never listed as ready\)\n$/)
  })
})

test('a merged report covering every shard of the whole catalogue is listed ready (a one-shard run too)', async () => {
  await withWorld(async w => {
    const full = reportOf('ACME', w.acme)
    const merged = mergeReports([shard(full, 2, 2), shard(full, 1, 2)])
    assert.equal(merged.options?.shard, undefined, 'merging all shards drops options.shard')
    const one = { ...shard(full, 1, 1), filter: { ...full.filter, version: '1.5.0', id: 'ACME_cdp_1.5.0' } }
    const files = [
      await save(w.dir, 'merged.json', signReport(merged, w.lab.privateKeyPem)),
      await save(w.dir, 'one.json', signReport(one, w.lab.privateKeyPem)),
    ]
    const site = join(w.dir, 'site')
    const r = await iofcert(['publish', ...files, '--out', site, '--trust', w.trustFile])
    assert.equal(r.code, 0, r.stderr)
    const listing = await readListing(site)
    assert.deepEqual(listing.entries.map(e => [e.version, e.verdict]), [['1.5.0', 'ready'], ['1.2.0', 'ready']])
    assert.deepEqual(listing.entries.map(e => e.certifier), ['Lab A', 'Lab A'])

    // A merged run narrowed by --grep still judged part of the catalogue.
    const grep = narrowed(full, '^(package|ordering)\\.')
    const mergedGrep = mergeReports([{ ...shard(grep, 1, 2), options: { quick: false, certified: false, grep: grep.options!.grep!, shard: { index: 1, count: 2 } } },
      { ...shard(grep, 2, 2), options: { quick: false, certified: false, grep: grep.options!.grep!, shard: { index: 2, count: 2 } } }])
    const file = await save(w.dir, 'merged-grep.json', signReport(mergedGrep, w.lab.privateKeyPem))
    assert.equal((await iofcert(['publish', file, '--out', site])).code, 0)
    assert.equal((await readListing(site)).entries[0]!.verdict, 'partial')
  })
})

test('verify --trust: a valid report is accepted, naming the certifier and the vendor', async () => {
  await withWorld(async w => {
    const file = await save(w.dir, 'ok.json', signReport(reportOf('ACME', w.acme), w.lab.privateKeyPem))
    const r = await iofcert(['verify', file, '--trust', w.trustFile])
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.equal(r.stdout, `valid: ${file} (signed by ${w.lab.fingerprint}; trusted by ${w.trustFile}: certifier "Lab A", vendor "ACME")\n`)
    // The trust file's fingerprints are case-insensitive: IOFCERT's is written in capitals.
    const own = await save(w.dir, 'own.json', signReport(reportOf('IOFCERT', w.iofcert), w.lab.privateKeyPem))
    assert.equal((await iofcert(['verify', own, '--trust', w.trustFile])).code, 0)
  })
})

test('verify --trust refuses, on one line naming the rule, every way a report is not to be trusted', async () => {
  await withWorld(async w => {
    const cases: [string, CertReport, RegExp][] = [
      // ACME's key signing a package as vendor IOFCERT.
      ['impostor.json', signReport(reportOf('IOFCERT', w.acme), w.lab.privateKeyPem),
        new RegExp(`^untrusted: .*impostor\\.json: rule package-key: the package is signed with key ${w.acme.fingerprint}, which is not a package key of vendor "IOFCERT" in .*trust\\.json \\(it is vendor "ACME"'s\\)\\n$`)],
      ['stranger.json', signReport(reportOf('Stranger', w.acme), w.lab.privateKeyPem),
        /^untrusted: .*stranger\.json: rule vendor: vendor "Stranger" is not in .*trust\.json\n$/],
      ['unsigned-package.json', signReport(reportOf('ACME', null), w.lab.privateKeyPem),
        /^untrusted: .*unsigned-package\.json: rule package-key: the package of vendor "ACME" is not signed, so no key ties it to the vendor\n$/],
      ['rogue.json', signReport(reportOf('ACME', w.acme), w.rogueLab.privateKeyPem),
        new RegExp(`^untrusted: .*rogue\\.json: rule certifier: the report is signed by key ${w.rogueLab.fingerprint}, which is not a certifier key of .*trust\\.json\\n$`)],
      ['unsigned.json', reportOf('ACME', w.acme),
        /^untrusted: .*unsigned\.json: rule signed: the report is not signed, and .*trust\.json accepts only reports signed by one of its certifiers\n$/],
    ]
    for (const [name, doc, want] of cases) {
      const file = await save(w.dir, name, doc)
      const r = await iofcert(['verify', file, '--trust', w.trustFile])
      assert.equal(r.code, 1, `${name}: ${r.stdout}${r.stderr}`)
      assert.match(r.stdout, want)
      assert.equal(r.stderr, '')
    }
    // A package whose signature did not verify when certified is no proof of its vendor either.
    const broken = reportOf('ACME', w.acme)
    broken.package = { ...broken.package!, signed: false }
    const brokenFile = await save(w.dir, 'broken-package.json', signReport(broken, w.lab.privateKeyPem))
    assert.match((await iofcert(['verify', brokenFile, '--trust', w.trustFile])).stdout, /rule package-key: the package signature \(key [0-9a-f]{64}\) did not verify when it was certified\n$/)

    // Edited after signing: the signature rule, and the consistency failure as verification.
    const edited = signReport(reportOf('ACME', w.acme), w.lab.privateKeyPem)
    edited.verdict = 'not-ready'
    const editedFile = await save(w.dir, 'edited.json', edited)
    const r = await iofcert(['verify', editedFile, '--trust', w.trustFile])
    assert.equal(r.code, 1)
    assert.match(r.stdout, /^invalid: .*edited\.json: verdict is "not-ready" but the checks give "ready"; rule signature: the report's signature is not accepted: the signature does not match the document: it was changed after signing\n$/)
    // Without --trust, verify is as it was: an unsigned report is invalid.
    const plain = await iofcert(['verify', join(w.dir, 'unsigned.json')])
    assert.equal(plain.code, 1)
    assert.match(plain.stdout, /^invalid: .*unsigned\.json: the report is not signed\n$/)
  })
})

test('publish --trust leaves refused reports out, names each on stderr and in the index, and exits 1', async () => {
  await withWorld(async w => {
    const files = [
      await save(w.dir, 'good.json', signReport(reportOf('ACME', w.acme), w.lab.privateKeyPem)),
      await save(w.dir, 'impostor.json', signReport(reportOf('IOFCERT', w.acme, { version: '9.9.9' }), w.lab.privateKeyPem)),
      await save(w.dir, 'rogue.json', signReport(reportOf('ACME', w.acme, { version: '2.0.0' }), w.rogueLab.privateKeyPem)),
      await save(w.dir, 'unsigned.json', reportOf('ACME', w.acme, { version: '3.0.0' })),
    ]
    const site = join(w.dir, 'site')
    const r = await iofcert(['publish', ...files, '--out', site, '--trust', w.trustFile])
    assert.equal(r.code, 1)
    const lines = r.stderr.trimEnd().split('\n')
    assert.equal(lines.length, 4, r.stderr)
    assert.match(lines[0]!, /^iofcert: refused .*impostor\.json: rule package-key: /)
    assert.match(lines[1]!, /^iofcert: refused .*rogue\.json: rule certifier: /)
    assert.match(lines[2]!, /^iofcert: refused .*unsigned\.json: rule signed: /)
    assert.match(lines[3]!, /^published 1 report \(1 ready, 0 partial\) to .*; 3 refused by trust file .*trust\.json$/)

    const listing = await readListing(site)
    assert.deepEqual(listing.entries.map(e => e.filterId), ['ACME_cdp_1.2.0'])
    assert.equal(listing.entries[0]!.certifier, 'Lab A')
    assert.equal(listing.entries[0]!.packageKeyFingerprint, w.acme.fingerprint)
    assert.equal(listing.trust?.file, 'trust.json')
    assert.match(listing.trust!.sha256, /^[0-9a-f]{64}$/)
    assert.deepEqual(listing.refused.map(x => [x.file, x.filterId, x.rules]), [
      ['impostor.json', 'IOFCERT_cdp_9.9.9', ['package-key']],
      ['rogue.json', 'ACME_cdp_2.0.0', ['certifier']],
      ['unsigned.json', 'ACME_cdp_3.0.0', ['signed']],
    ])
    const index = await readFile(join(site, 'index.html'), 'utf8')
    assert.ok(index.includes('1 report, 1 ready, 3 refused'), 'the summary counts refused reports')
    assert.ok(index.includes('data-testid="refused"'))
    assert.ok(index.includes('<h2>Refused (3)</h2>'))
    for (const f of files.slice(1)) assert.ok(index.includes(`data-refused-file="${basename(f)}"`))
    assert.ok(index.includes('Checked against trust file <code>trust.json</code>'))

    // All accepted: exit 0 and an empty refused list.
    const ok = await iofcert(['publish', files[0]!, '--out', site, '--trust', w.trustFile])
    assert.equal(ok.code, 0, ok.stderr)
    assert.match(ok.stderr, /; 0 refused by trust file /)
    assert.deepEqual((await readListing(site)).refused, [])
  })
})

test('a malformed trust file is bad input: exit 2 and one line naming the file and the fault', async () => {
  await withWorld(async w => {
    const report = await save(w.dir, 'r.json', signReport(reportOf('ACME', w.acme), w.lab.privateKeyPem))
    const bad = join(w.dir, 'bad-trust.json')
    const cases: [unknown, RegExp][] = [
      ['{"trustVersion": 1,', /: not JSON \(/],
      [{ trustVersion: 1, vendors: { ACME: { packageKeys: ['abc'] } }, certifiers: [{ name: 'Lab A', key: w.lab.fingerprint }] },
        /: vendors\.ACME\.packageKeys\[0\]: must be a key fingerprint: 64 hex digits/],
      [{ trustVersion: 2, vendors: { ACME: { packageKeys: [w.acme.fingerprint] } }, certifiers: [{ name: 'Lab A', key: w.lab.fingerprint }] },
        /: trustVersion: must be equal to constant 1$/m],
      [{ trustVersion: 1, vendors: { ACME: { packagekeys: [w.acme.fingerprint] } }, certifiers: [{ name: 'Lab A', key: w.lab.fingerprint }] },
        /: vendors\.ACME\.packageKeys: is required; vendors\.ACME: must NOT have additional properties \("packagekeys"\)$/m],
      [{ trustVersion: 1, vendors: { ACME: { packageKeys: [w.acme.fingerprint] } }, certifiers: [] },
        /: certifiers: must NOT have fewer than 1 items$/m],
      [{ trustVersion: 1, vendors: { ACME: { packageKeys: [w.acme.fingerprint] }, IOFCERT: { packageKeys: [w.acme.fingerprint] } }, certifiers: [{ name: 'Lab A', key: w.lab.fingerprint }] },
        new RegExp(`: package key ${w.acme.fingerprint} is listed for vendors "ACME" and "IOFCERT": a key belongs to one vendor$`, 'm')],
    ]
    for (const [content, want] of cases) {
      await writeFile(bad, typeof content === 'string' ? content : JSON.stringify(content))
      for (const args of [['verify', report, '--trust', bad], ['publish', report, '--out', join(w.dir, 'site'), '--trust', bad]]) {
        const r = await iofcert(args)
        assert.equal(r.code, 2, `${args[0]}: ${r.stdout}${r.stderr}`)
        assert.equal(r.stdout, '')
        assert.match(r.stderr, new RegExp(`^iofcert: trust file ${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .+\\n$`))
        assert.equal(r.stderr.split('\n').length, 2, 'one line')
        assert.match(r.stderr, want)
      }
    }
    const missing = await iofcert(['verify', report, '--trust', join(w.dir, 'nope.json')])
    assert.equal(missing.code, 2)
    assert.equal(missing.stderr, `iofcert: trust file ${join(w.dir, 'nope.json')}: no such file\n`)
    // Nothing was published by the refused publish runs.
    await assert.rejects(readFile(join(w.dir, 'site', 'listing.json')))
  })
})

test('the library: parseTrust and assessReport without and with a trust file', async () => {
  await withWorld(async w => {
    const trust = parseTrust(JSON.parse(await readFile(w.trustFile, 'utf8')), 'trust.json')
    assert.deepEqual([...trust.vendors.get('IOFCERT')!], [w.iofcert.fingerprint], 'fingerprints are kept lowercase')
    assert.equal(trust.certifiers.get(w.lab.fingerprint), 'Lab A')
    assert.throws(() => parseTrust({ trustVersion: 1, vendors: {}, certifiers: [{ name: 'x', key: w.lab.fingerprint }] }, 't.json'),
      (err: unknown) => isReportError(err, 'TrustFileInvalid') && err.exitCode === 2 && /^trust file t\.json: vendors: must NOT have fewer than 1 properties$/.test(err.message))
    assert.throws(() => parseTrust({ trustVersion: 1, vendors: { '': { packageKeys: [w.acme.fingerprint] } }, certifiers: [{ name: 'x', key: w.lab.fingerprint }] }, 't.json'),
      /vendor name must not be empty/)

    const doc = signReport(reportOf('ACME', w.acme), w.rogueLab.privateKeyPem)
    assert.deepEqual(assessReport(doc), { ok: true, invalid: [], refusals: [], keyFingerprint: w.rogueLab.fingerprint })
    const judged = assessReport(doc, { trust })
    assert.equal(judged.ok, false)
    assert.deepEqual(judged.refusals.map(r => r.rule), ['certifier'])
    assert.equal(judged.certifier, undefined)
    const both = assessReport(reportOf('Nobody', w.acme), { trust })
    assert.deepEqual(both.refusals.map(r => r.rule), ['signed', 'vendor'])
  })
})
