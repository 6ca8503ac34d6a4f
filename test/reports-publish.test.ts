import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, readdir, rm, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { publish, type Listing } from '../reports/publish.js'
import { signReport } from '../reports/sign.js'
import { isReportError } from '../reports/errors.js'
import type { CertReport } from '../reports/document.js'
import { buildReport, makeKeyPair } from './fixtures/report-fixture.js'

const key = makeKeyPair()

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'iofcert-publish-'))
  try {
    await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

async function writeSigned(dir: string, name: string, doc: CertReport, privateKeyPem = key.privateKeyPem): Promise<string> {
  const file = join(dir, name)
  await writeFile(file, JSON.stringify(signReport(doc, privateKeyPem), null, 2))
  return file
}

test('publish builds index.html, listing.json and one page and JSON copy per report', async () => {
  await withDir(async dir => {
    const files = [
      await writeSigned(dir, 'a.json', buildReport({ samples: 100, outcome: 'ready' })),
      await writeSigned(dir, 'b.json', buildReport({ samples: 100, cls: 'cache', vendor: 'Zeta', name: 'flashcache', version: '2.0.1', outcome: 'ready' })),
      await writeSigned(dir, 'c.json', buildReport({ samples: 100, version: '1.10.0' })),
    ]
    const out = join(dir, 'site')
    const listing = await publish(files, out)
    assert.equal(listing.entries.length, 3)
    assert.deepEqual(listing.entries.map(e => `${e.vendor} ${e.name} ${e.version} ${e.verdict}`), [
      'ACME cdp 1.10.0 not-ready', 'ACME cdp 1.2.0 ready', 'Zeta flashcache 2.0.1 ready',
    ])
    const onDisk = JSON.parse(await readFile(join(out, 'listing.json'), 'utf8')) as Listing
    assert.deepEqual(onDisk, listing)
    for (const e of listing.entries) {
      assert.match(e.page, /^reports\/[A-Za-z0-9._-]+-[0-9a-f]{8}\.html$/)
      const page = await readFile(join(out, e.page), 'utf8')
      assert.ok(page.includes('href="../index.html"'), 'the report page links back to the listing')
      assert.ok(page.includes(`data-verdict="${e.verdict}"`))
      const copy = JSON.parse(await readFile(join(out, e.json), 'utf8')) as CertReport
      assert.equal(copy.filter.id, e.filterId)
      assert.equal(e.signedBy, copy.signature!.keyFingerprint)
    }
    const index = await readFile(join(out, 'index.html'), 'utf8')
    for (const e of listing.entries) assert.ok(index.includes(`href="${e.page}"`))
    assert.ok(index.includes('<script type="application/json" id="listing-json">'))
    assert.ok(!/\b(src|href)="https?:/.test(index), 'no network references')
  })
})

test('a report edited by hand after signing is refused, naming the file and the reason, and nothing is written', async () => {
  await withDir(async dir => {
    const good = await writeSigned(dir, 'good.json', buildReport({ samples: 100, outcome: 'ready' }))
    const tampered = await writeSigned(dir, 'tampered.json', buildReport({ samples: 100 }))
    const doc = JSON.parse(await readFile(tampered, 'utf8')) as CertReport
    for (const c of doc.checks) if (c.status !== 'skipped') c.status = 'passed'
    doc.verdict = 'ready'
    doc.reasons = []
    doc.counts = { ...doc.counts!, passed: doc.counts!.passed + doc.counts!.failed + doc.counts!.errored, failed: 0, errored: 0 }
    await writeFile(tampered, JSON.stringify(doc))
    const out = join(dir, 'site')
    await assert.rejects(publish([good, tampered], out), (err: unknown) => {
      assert.ok(isReportError(err, 'ReportRefused'))
      assert.equal(err.exitCode, 1)
      assert.match(err.message, /refusing to publish .*tampered\.json: the signature does not match the document/)
      return true
    })
    assert.deepEqual((await readdir(dir)).sort(), ['good.json', 'tampered.json'], 'no site and no staging directory')
  })
})

test('with a public key, reports signed by any other key are refused', async () => {
  await withDir(async dir => {
    const other = makeKeyPair()
    const file = await writeSigned(dir, 'r.json', buildReport({ samples: 100, outcome: 'ready' }), other.privateKeyPem)
    await assert.rejects(publish([file], join(dir, 'site'), { publicKeyPem: key.publicKeyPem }), /not by the given key/)
    const listing = await publish([file], join(dir, 'site'), { publicKeyPem: other.publicKeyPem })
    assert.equal(listing.entries.length, 1)
  })
})

test('publishing again replaces the previous listing; an unrelated directory is never replaced', async () => {
  await withDir(async dir => {
    const a = await writeSigned(dir, 'a.json', buildReport({ samples: 100, outcome: 'ready' }))
    const b = await writeSigned(dir, 'b.json', buildReport({ samples: 100, vendor: 'Zeta', outcome: 'ready' }))
    const out = join(dir, 'site')
    await publish([a, b], out)
    const second = await publish([b], out)
    assert.equal(second.entries.length, 1)
    assert.deepEqual((await readdir(join(out, 'reports'))).sort(), [second.entries[0]!.page, second.entries[0]!.json].map(p => p.slice('reports/'.length)).sort())

    const precious = join(dir, 'precious')
    await mkdir(precious)
    await writeFile(join(precious, 'notes.txt'), 'keep me')
    await assert.rejects(publish([a], precious), (err: unknown) => isReportError(err, 'PublishTargetInvalid') && err.exitCode === 2)
    assert.equal(await readFile(join(precious, 'notes.txt'), 'utf8'), 'keep me')
  })
})

test('an unreadable report is bad input (exit 2)', async () => {
  await withDir(async dir => {
    await assert.rejects(publish([join(dir, 'nope.json')], join(dir, 'site')), (err: unknown) => isReportError(err, 'ReportUnreadable') && err.exitCode === 2)
  })
})
