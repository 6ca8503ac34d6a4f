import { test } from 'node:test'
import assert from 'node:assert/strict'
import { renderHtml } from '../reports/html.js'
import { renderJunit } from '../reports/junit.js'
import { renderConsole } from '../reports/console.js'
import { rerunCommand } from '../reports/rerun.js'
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

/** The text of an HTML fragment as a reader sees it: tags dropped, entities decoded. */
function textOf(html: string): string {
  return html.replace(/<[^>]*>/g, '').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&')
}

/** The <tr> of one check. */
function checkRowOf(html: string, id: string): string {
  const start = html.indexOf(`<tr class="check `, html.indexOf(`id="check-${id}"`) - 60)
  const row = html.slice(start, html.indexOf('\n</tr>', start))
  assert.ok(row.includes(`data-check-id="${id}"`), `row of ${id}`)
  return row
}

test('a failed check shows its likely cause, its rerun command and its filter log, all escaped', () => {
  const doc = buildReport({ samples: 100 })
  const evil = '</script><img src=x onerror=alert(1)>'
  const c = doc.checks.find(x => x.id === 'performance.latency')!
  c.cause = `the filter completed 12 flushes itself ${evil}`
  c.logs = [
    { t: 5, where: 'vm-a', source: 'ACME_cdp_1.2.0', level: 'info', msg: 'attached disk-a0' },
    { t: 1250, where: `daemon@host-1${evil}`, source: `src${evil}`, level: 'warn', msg: `journal full\n  at flush ${evil}` },
    { t: 2001, where: 'vm-a', source: 'ACME_cdp_1.2.0', level: 'error', msg: 'flush took 812 ms' },
  ]
  c.logsDropped = 42
  const html = renderHtml(doc)
  assert.ok(!html.includes('<img src=x'), 'no live markup from the cause or the log')
  assert.equal((html.match(/<script/g) ?? []).length, 2)
  const row = checkRowOf(html, c.id)

  const cause = /<div class="cause" data-testid="cause-performance\.latency">(.*?)<\/div>/.exec(row)
  assert.ok(cause !== null, 'the cause is shown')
  assert.equal(textOf(cause[1]!), `Likely cause: ${c.cause}`)

  const rerun = /<pre><code data-testid="rerun-performance\.latency">(.*?)<\/code><\/pre>/.exec(row)
  assert.ok(rerun !== null, 'the rerun command is in a code block')
  assert.equal(textOf(rerun[1]!), "iofcert certify ACME_cdp_1.2.0.tgz --grep '^performance\\.latency$' --seed 20261101")
  assert.equal(textOf(rerun[1]!), rerunCommand(doc, c.id))

  const logs = /<details class="logs" data-testid="logs-performance\.latency" data-lines="3" data-dropped="42">(.*?)<\/details>/s.exec(row)
  assert.ok(logs !== null, 'the filter log is shown')
  assert.match(textOf(logs[1]!), /^Filter log \(3 lines · 1 error · 1 warning · 42 dropped\)/)
  const rows = [...logs[1]!.matchAll(/<tr class="lvl-(\w+)">(.*?)<\/tr>/gs)]
  assert.deepEqual(rows.map(r => r[1]), ['info', 'warn', 'error'])
  assert.deepEqual([...rows[1]![2]!.matchAll(/<td[^>]*>(.*?)<\/td>/gs)].map(m => textOf(m[1]!)), ['1.250 s', `daemon@host-1${evil}`, 'warn', `journal full\n  at flush ${evil}`])
  assert.ok(rows[1]![2]!.includes('<pre>'), 'a multi-line message keeps its line breaks')
  assert.match(logs[1]!, /<thead><tr><th class="num">Time<\/th><th>Where<\/th><th>Level<\/th><th>Message<\/th><\/tr><\/thead>/)
  assert.match(textOf(logs[1]!), /42 more lines were logged but not kept in the report/)
  // the cause and the rerun sit beside the message, before the evidence
  assert.ok(row.indexOf('class="msg failed"') < row.indexOf('class="cause"') && row.indexOf('class="rerun"') < row.indexOf('class="evidence"'))
})

test('every failed or errored check has a rerun command; passed and skipped ones none; the package path given is used', () => {
  const doc = buildReport({ samples: 100 })
  const html = renderHtml(doc, { package: "./out/acme's cdp.tgz" })
  for (const c of doc.checks) {
    const row = checkRowOf(html, c.id)
    const bad = c.status === 'failed' || c.status === 'errored'
    assert.equal(row.includes(`data-testid="rerun-${c.id}"`), bad, c.id)
    assert.ok(!row.includes('class="cause"'), 'no cause box when the check has none')
    assert.ok(!row.includes('class="logs"'), 'no log box when the report recorded no log')
  }
  const rerun = /data-testid="rerun-events\.migration">(.*?)<\/code>/.exec(html)!
  assert.equal(textOf(rerun[1]!), `iofcert certify './out/acme'\\''s cdp.tgz' --grep '^events\\.migration$' --seed 20261101`)
})

test('a check whose log is empty says so; one whose lines were all dropped still counts them', () => {
  const doc = buildReport({ samples: 100 })
  doc.checks.find(c => c.id === 'performance.latency')!.logs = []
  const migration = doc.checks.find(c => c.id === 'events.migration')!
  migration.logs = []
  migration.logsDropped = 1
  const html = renderHtml(doc)
  assert.match(checkRowOf(html, 'performance.latency'), /data-testid="logs-performance\.latency">The filter logged nothing while this check ran\./)
  const row = checkRowOf(html, 'events.migration')
  assert.match(row, /data-testid="logs-events\.migration" data-lines="0" data-dropped="1"/)
  assert.match(textOf(row), /1 more line was logged but not kept in the report/)
  assert.ok(!row.includes('<table class="log">'))
})

test('overhead percentages are the filtered side\'s change vs no filter, and every one is labelled so', () => {
  const doc = buildReport({ samples: 100 })
  const sat = doc.benchmarks.find(b => b.mode === 'saturation')!
  sat.overhead = { iopsPct: 6.7, p99Pct: 12 }
  const paced = doc.benchmarks.find(b => b.mode === 'paced' && b.workload === sat.workload)!
  paced.overhead = { iopsPct: 0.4, p99Pct: -3.04 }
  const html = renderHtml(doc)
  // The throughput card: 6.7 % fewer IOPS (slower) reads IOPS −6.7 %; higher latency p99 +12.0 %.
  const card = html.slice(html.indexOf(`<div class="card" data-workload="${sat.workload}">`))
  const overhead = /<p class="overhead" data-testid="overhead">(.*?)<\/p>/.exec(card)!
  assert.match(textOf(overhead[1]!), /^Change vs no filter: IOPS −6\.7 %, p99 \+12\.0 %/)
  // The latency card's heading.
  const latency = html.slice(html.indexOf(`<div class="card" data-workload="${paced.workload}">`, html.indexOf('Latency percentiles')))
  assert.match(textOf(/<h3>(.*?)<\/h3>/.exec(latency)![1]!), new RegExp(`^${paced.workload} p99 −3\\.0 % vs no filter$`))
  // The table of all figures, under "Change vs no filter".
  const table = html.slice(html.indexOf('data-testid="benchmarks-table"'))
  assert.match(table, /<th class="grp" colspan="2" title="[^"]*">Change vs no filter<\/th>/)
  const satRow = /<tr>\n<th>4k-randread<\/th><td>saturation<\/td>(.*?)<\/tr>/s.exec(table)!
  assert.match(textOf(satRow[1]!), /−6\.7 %\s*\+12\.0 %/)
  // Every signed percentage shown on the page is a labelled change: in a span saying what it is relative to.
  const inText = (i: number) => html.lastIndexOf('>', i) > html.lastIndexOf('<', i)
  const signed = [...html.matchAll(/[+−±]\d+\.\d %/g)].filter(m => inText(m.index))
  assert.ok(signed.length >= 3 * doc.benchmarks.length, `found ${signed.length}`)
  for (const m of signed) {
    const before = html.slice(0, m.index)
    const open = before.slice(before.lastIndexOf('<'))
    assert.match(open, /^<span class="change" data-metric="(iops|p99)" data-pct="[^"]*" title="this filter&#39;s (IOPS|p99 latency) relative to no filter: [^"]+">$/, `${m[0]} at ${m.index}`)
  }
  assert.match(html, /data-metric="iops" data-pct="-6.7" title="this filter&#39;s IOPS relative to no filter: fewer IOPS, slower"/)
  assert.match(html, /data-metric="p99" data-pct="12" title="this filter&#39;s p99 latency relative to no filter: higher latency, slower"/)
  assert.match(html, /data-metric="p99" data-pct="-3.04" title="this filter&#39;s p99 latency relative to no filter: lower latency">−3\.0 %</)
})

test('a paced side of a few hundred KB/s shows its throughput with two significant digits, not 0.0 or 0.4', () => {
  const doc = buildReport({ outcome: 'ready' })
  const b = doc.benchmarks[0]!
  b.filtered.mbps = 0.4096
  b.filtered.iops = 100
  const html = renderHtml(doc)
  assert.ok(html.includes('0.41 MB/s'), 'the bar shows 0.41 MB/s')
  assert.ok(/<td class="num">0\.41<\/td>/.test(html), 'the table shows 0.41')
  assert.ok(!html.includes('0.4 MB/s'))
})

test('the rerun line of lifecycle.upgrade asks for the older package', () => {
  const doc = buildReport()
  assert.match(rerunCommand(doc, 'lifecycle.upgrade', 'x.tgz'), /^iofcert certify x\.tgz --grep '\^lifecycle\\\.upgrade\$' --seed \d+ .*--upgrade-from '<older package>'$/)
  assert.doesNotMatch(rerunCommand(doc, 'ordering.completion', 'x.tgz'), /--upgrade-from/)
})
