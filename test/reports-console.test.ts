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
