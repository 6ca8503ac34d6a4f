import { test } from 'node:test'
import assert from 'node:assert/strict'
import { renderConsole } from '../reports/console.js'
import { countChecks } from '../reports/verdict.js'
import { buildReport } from './fixtures/report-fixture.js'

test('the last line is the verdict with the counts', () => {
  const doc = buildReport({ samples: 100 })
  const c = countChecks(doc.checks)
  const lines = renderConsole(doc, { color: false }).trimEnd().split('\n')
  assert.equal(lines[lines.length - 1], `VERDICT: not-ready (${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped, ${c.errored} errored)`)
  const ready = buildReport({ samples: 100, outcome: 'ready' })
  const r = countChecks(ready.checks)
  assert.equal(renderConsole(ready, { color: false }).trimEnd().split('\n').pop(), `VERDICT: ready (${r.passed} passed, 0 failed, ${r.skipped} skipped, 0 errored)`)
})

test('the table has one row per suite with its counts, and a total', () => {
  const doc = buildReport({ samples: 100 })
  const out = renderConsole(doc, { color: false })
  for (const suite of new Set(doc.checks.map(c => c.suite))) {
    const n = countChecks(doc.checks.filter(c => c.suite === suite))
    assert.match(out, new RegExp(`│ ${suite}\\s+│\\s+${n.passed} │\\s+${n.failed} │\\s+${n.skipped} │\\s+${n.errored} │`), suite)
  }
  const t = countChecks(doc.checks)
  assert.match(out, new RegExp(`│ total\\s+│\\s+${t.passed} │\\s+${t.failed} │\\s+${t.skipped} │\\s+${t.errored} │`))
})

test('failed and errored required checks are listed with their message', () => {
  const doc = buildReport({ samples: 100 })
  const out = renderConsole(doc, { color: false })
  for (const c of doc.checks.filter(x => x.required && (x.status === 'failed' || x.status === 'errored'))) {
    assert.ok(out.includes(`✗ ${c.id} ${c.status}: ${c.message}`), c.id)
  }
  assert.ok(!renderConsole(buildReport({ samples: 100, outcome: 'ready' }), { color: false }).includes('Not ready because'))
})

test('colour only when asked for', () => {
  const doc = buildReport({ samples: 100 })
  assert.ok(!renderConsole(doc, { color: false }).includes('\u001b['))
  assert.ok(renderConsole(doc, { color: true }).includes('\u001b[31mnot-ready\u001b[0m'))
})

test('each failed or errored check is followed by its likely cause, when known, and its rerun line', () => {
  const doc = buildReport({ samples: 100, statuses: { 'cache.benefit': 'failed' } })
  const latency = doc.checks.find(c => c.id === 'performance.latency')!
  latency.cause = 'the filter completed 12 flushes itself instead of passing them down'
  const lines = renderConsole(doc, { color: false }).split('\n')
  const at = lines.findIndex(l => l.startsWith(`  ✗ ${latency.id} failed: `))
  assert.ok(at > 0, 'the failure is listed')
  assert.equal(lines[at + 1], `      likely cause: ${latency.cause}`)
  assert.equal(lines[at + 2], "      rerun: iofcert certify ACME_cdp_1.2.0.tgz --grep '^performance\\.latency$' --seed 20261101")
  // no cause known: the rerun line alone
  const migration = lines.findIndex(l => l.startsWith('  ✗ events.migration errored: '))
  assert.equal(lines[migration + 1], "      rerun: iofcert certify ACME_cdp_1.2.0.tgz --grep '^events\\.migration$' --seed 20261101")
  // an optional check that failed gets one too
  const optional = lines.findIndex(l => l.startsWith('  ! cache.benefit failed'))
  assert.equal(lines[optional + 1], "      rerun: iofcert certify ACME_cdp_1.2.0.tgz --grep '^cache\\.benefit$' --seed 20261101")
  // one rerun line per failed or errored check, none for the others
  const bad = doc.checks.filter(c => c.status === 'failed' || c.status === 'errored')
  assert.equal(lines.filter(l => l.trimStart().startsWith('rerun: ')).length, bad.length)
  assert.ok(!renderConsole(buildReport({ samples: 100, outcome: 'ready' }), { color: false }).includes('rerun:'))
})

test('the rerun line uses the package path given, quoted for the shell, and the run\'s options', () => {
  const doc = buildReport({ samples: 100 })
  doc.options = { quick: true, certified: false }
  const out = renderConsole(doc, { color: false, package: '../pkgs/acme cdp.tgz' })
  assert.ok(out.includes("      rerun: iofcert certify '../pkgs/acme cdp.tgz' --grep '^performance\\.latency$' --seed 20261101 --quick\n"), out)
})

test('a multi-line cause keeps its later lines indented under it', () => {
  const doc = buildReport({ samples: 100 })
  doc.checks.find(c => c.id === 'events.migration')!.cause = 'the sidecar was not reopened\nafter the move to host-2'
  const out = renderConsole(doc, { color: false })
  assert.ok(out.includes('      likely cause: the sidecar was not reopened\n        after the move to host-2\n      rerun: '), out)
})
