import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { CHECK_DOCS, type CheckDoc } from '../harness/certify/check-docs.js'
import { registry, type CheckDef } from '../harness/certify/registry.js'
import { loadSuites } from '../harness/certify/suites.js'

/** What scripts/checks-doc.mjs exports (plain JavaScript, loaded from the repository's scripts/). */
interface Catalogue {
  readonly checks: readonly CheckDef[]
  readonly docs: Readonly<Record<string, CheckDoc>>
  readonly defaultTimeoutMs: number
}
interface Generator {
  readonly DOC_PATH: string
  loadCatalogue(): Promise<Catalogue>
  problems(c: Pick<Catalogue, 'checks' | 'docs'>): string[]
  render(c: Catalogue): string
}

const generator = (await import(new URL('../../scripts/checks-doc.mjs', import.meta.url).href)) as Generator

async function registered(): Promise<string[]> {
  await loadSuites()
  return registry.all().map(d => d.id)
}

test('every registered check has its does, fails and causes in check-docs.ts', async () => {
  const missing: string[] = []
  for (const id of await registered()) {
    const d = CHECK_DOCS[id]
    if (d === undefined || d.does.trim() === '' || d.fails.trim() === '' || d.causes.length === 0 || d.causes.some(c => c.trim() === '')) missing.push(id)
  }
  assert.deepEqual(missing, [], `add an entry to harness/certify/check-docs.ts for: ${missing.join(', ')}`)
})

test('check-docs.ts describes only registered checks', async () => {
  const ids = new Set(await registered())
  const stray = Object.keys(CHECK_DOCS).filter(id => !ids.has(id))
  assert.deepEqual(stray, [], `check-docs.ts has entries for checks that are not registered: ${stray.join(', ')}`)
})

test('docs/checks.md is exactly what npm run docs:checks writes now', async () => {
  const catalogue = await generator.loadCatalogue()
  assert.deepEqual(generator.problems(catalogue), [])
  assert.equal(catalogue.checks.length, (await registered()).length)
  const expected = generator.render(catalogue)
  let actual = ''
  try {
    actual = readFileSync(generator.DOC_PATH, 'utf8')
  } catch {
    assert.fail('docs/checks.md is missing: run npm run docs:checks')
  }
  if (actual !== expected) {
    const a = actual.split('\n')
    const e = expected.split('\n')
    const at = e.findIndex((line, i) => a[i] !== line)
    assert.fail(`docs/checks.md is out of date (first difference at line ${at + 1}: expected ${JSON.stringify(e[at])}, found ${JSON.stringify(a[at])}): run npm run docs:checks`)
  }
  for (const id of await registered()) assert.ok(actual.includes(`### \`${id}\``), `docs/checks.md has no entry for ${id}`)
})

test('the generator refuses a check without prose and prose without a check', () => {
  const check = { id: 'demo.first', suite: 'demo', title: 'A check', required: true, classes: 'all', run: async () => ({ status: 'passed' }) } as CheckDef
  const prose: CheckDoc = { does: 'does', fails: 'fails', causes: ['a cause'] }
  assert.deepEqual(generator.problems({ checks: [check], docs: { 'demo.first': prose } }), [])
  const found = generator.problems({ checks: [check], docs: { 'demo.other': prose } })
  assert.equal(found.length, 2)
  assert.match(found[0]!, /demo\.first is registered but has no entry/)
  assert.match(found[1]!, /demo\.other, which is not a registered check/)
})
