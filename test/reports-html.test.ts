import { test } from 'node:test'
import assert from 'node:assert/strict'
import { renderHtml } from '../reports/html.js'
import { renderJunit } from '../reports/junit.js'
import { renderConsole } from '../reports/console.js'
import { DEFAULT_PROFILE } from '../reports/profiles.js'
import { validateReport } from '../reports/validate.js'
import type { CertReport } from '../reports/document.js'
import { buildReport } from './fixtures/report-fixture.js'

/** A report with only the required fields: no benchmarks, no optional blocks. */
function minimal(): CertReport {
  return {
    schemaVersion: 1,
    tool: { name: 'iofcert', version: '0.1.0' },
    filter: { id: 'ACME_tiny_0.1.0', name: 'tiny', vendor: 'ACME', version: '0.1.0', class: 'cache', packageSha256: '0'.repeat(64) },
    profile: { name: 'default', thresholds: { ...DEFAULT_PROFILE } },
    seed: 1,
    startedAt: '2026-01-01T00:00:00Z',
    durationMs: 10,
    environment: { node: 'v20', os: 'linux', cpus: 1 },
    verdict: 'ready',
    checks: [{ id: 'package.descriptor', suite: 'package', title: 'Descriptor', required: true, status: 'passed', durationMs: 3 }],
    benchmarks: [],
  }
}

test('a report with only the required fields renders in every format', () => {
  const doc = minimal()
  assert.deepEqual(validateReport(doc), { ok: true, errors: [] })
  const html = renderHtml(doc)
  assert.match(html, /data-verdict="ready"/)
  assert.match(html, /data-check-id="package\.descriptor"/)
  assert.ok(!html.includes('id="performance"'), 'no performance section without benchmarks')
  assert.match(renderJunit(doc), /<testcase name="package\.descriptor" classname="iofcert\.package" time="0\.003"\/>/)
  assert.match(renderConsole(doc, { color: false }), /VERDICT: ready \(1 passed, 0 failed, 0 skipped, 0 errored\)\n$/)
})

test('the page is self-contained: a no-network policy, no external references', () => {
  const html = renderHtml(buildReport({ samples: 200 }))
  assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src 'none';/)
  assert.ok(!/\b(?:src|href)\s*=\s*["']?(?:https?:)?\/\//i.test(html), 'no remote src or href')
  assert.ok(!/@import|url\(\s*['"]?http/i.test(html), 'no remote CSS')
  assert.equal((html.match(/<script/g) ?? []).length, 2, 'the embedded document and the one inline script')
})

test('every string from the document is escaped, including inside the embedded JSON', () => {
  const evil = '</script><script>alert(1)</script><img src=x onerror=alert(2)>'
  const doc = buildReport({ samples: 100, vendor: evil, name: `"'&<>` })
  doc.checks[0]!.message = evil
  doc.checks[0]!.status = 'failed'
  doc.checks[0]!.evidence = { [evil]: evil, nested: { evil } }
  doc.profile.thresholds[evil] = 1
  const html = renderHtml(doc)
  assert.ok(!html.includes('<img src=x'), 'no live img tag')
  assert.equal((html.match(/<script/g) ?? []).length, 2, 'no injected script element')
  assert.ok(!html.includes(`"'&<>`), 'quotes and angle brackets are escaped')
  assert.ok(html.includes('&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;'))
  const embedded = /<script type="application\/json" id="report-json">([^<]*)<\/script>/.exec(html)
  assert.ok(embedded !== null, 'the embedded document contains no raw <')
  assert.deepEqual(JSON.parse(embedded[1]!), doc)
})

test('a ready report says so first and lists no reasons', () => {
  const html = renderHtml(buildReport({ samples: 100, outcome: 'ready' }))
  const verdictAt = html.indexOf('data-testid="verdict"')
  assert.ok(verdictAt > 0 && verdictAt < html.indexOf('id="checks"'), 'the verdict comes before the checks')
  assert.match(html, /✓ Ready/)
  assert.ok(!html.includes('data-testid="reasons"'))
})
