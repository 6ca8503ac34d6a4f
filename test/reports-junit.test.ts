import { test } from 'node:test'
import assert from 'node:assert/strict'
import { renderJunit } from '../reports/junit.js'
import { rerunCommand } from '../reports/rerun.js'
import { countChecks } from '../reports/verdict.js'
import type { CertReport } from '../reports/document.js'
import { buildReport } from './fixtures/report-fixture.js'

interface XmlElement {
  name: string
  attrs: Record<string, string>
  children: XmlElement[]
  text: string
}

/**
 * A strict little XML parser, enough for JUnit files: it refuses mismatched tags, duplicate
 * attributes, bare `&` or `<` in text and characters XML 1.0 cannot carry.
 */
function parseXml(xml: string): XmlElement {
  assert.ok(!/[\u0000-\u0008\u000B\u000C\u000E-\u001F]/.test(xml), 'control characters are not allowed in XML 1.0')
  let rest = xml.replace(/^<\?xml[^?]*\?>\s*/, '')
  const root: XmlElement = { name: '#root', attrs: {}, children: [], text: '' }
  const stack = [root]
  const decode = (s: string) => {
    assert.ok(!/&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.test(s), `bare & in ${JSON.stringify(s.slice(0, 60))}`)
    return s.replace(/&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/g, (_, e: string) =>
      e === 'amp' ? '&' : e === 'lt' ? '<' : e === 'gt' ? '>' : e === 'quot' ? '"' : e === 'apos' ? "'" :
      String.fromCodePoint(e.startsWith('#x') ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10)))
  }
  while (rest.length > 0) {
    const lt = rest.indexOf('<')
    const text = lt === -1 ? rest : rest.slice(0, lt)
    if (text.length > 0) {
      stack[stack.length - 1]!.text += decode(text)
    }
    if (lt === -1) break
    rest = rest.slice(lt)
    const close = /^<\/([A-Za-z][\w.-]*)\s*>/.exec(rest)
    if (close !== null) {
      const top = stack.pop()!
      assert.equal(close[1], top.name, `</${close[1]}> closes <${top.name}>`)
      rest = rest.slice(close[0].length)
      continue
    }
    const open = /^<([A-Za-z][\w.-]*)((?:\s+[A-Za-z][\w.-]*="[^"<]*")*)\s*(\/?)>/.exec(rest)
    assert.ok(open !== null, `malformed markup at ${JSON.stringify(rest.slice(0, 80))}`)
    const el: XmlElement = { name: open[1]!, attrs: {}, children: [], text: '' }
    for (const m of open[2]!.matchAll(/([A-Za-z][\w.-]*)="([^"]*)"/g)) {
      assert.ok(!(m[1]! in el.attrs), `duplicate attribute ${m[1]}`)
      el.attrs[m[1]!] = decode(m[2]!)
    }
    stack[stack.length - 1]!.children.push(el)
    if (open[3] !== '/') stack.push(el)
    rest = rest.slice(open[0].length)
  }
  assert.equal(stack.length, 1, `unclosed <${stack[stack.length - 1]!.name}>`)
  assert.equal(root.children.length, 1, 'one root element')
  return root.children[0]!
}

// Attribute names of Jenkins' junit-10.xsd, plus one deliberate addition: `skipped` on
// <testsuites>. The XSD has it on <testsuite> only, but CI tools (GitLab, Jenkins and the
// common JUnit readers) read the root's skipped count, so the root carries it too.
const ALLOWED = {
  testsuites: ['name', 'time', 'tests', 'failures', 'disabled', 'errors', 'skipped'],
  testsuite: ['name', 'tests', 'failures', 'errors', 'group', 'time', 'disabled', 'skipped', 'timestamp', 'hostname', 'id', 'package', 'file', 'log', 'url', 'version'],
  testcase: ['name', 'assertions', 'time', 'classname', 'status', 'class', 'file', 'line'],
  property: ['name', 'value'],
  failure: ['message', 'type'],
  error: ['message', 'type'],
  skipped: ['message'],
} as const

function assertAttrs(el: XmlElement): void {
  const allowed = (ALLOWED as Record<string, readonly string[]>)[el.name]
  if (allowed !== undefined) for (const a of Object.keys(el.attrs)) assert.ok(allowed.includes(a), `<${el.name}> has attribute ${a}`)
  el.children.forEach(assertAttrs)
}

function render(doc: CertReport) {
  return parseXml(renderJunit(doc))
}

test('one testsuite per check suite, in element order properties, testcase*, system-out, system-err', () => {
  const doc = buildReport({ samples: 200 })
  const root = render(doc)
  assert.equal(root.name, 'testsuites')
  assertAttrs(root)
  const suites = [...new Set(doc.checks.map(c => c.suite))]
  assert.deepEqual(root.children.map(s => s.name), suites.map(() => 'testsuite'))
  assert.deepEqual(root.children.map(s => s.attrs.name), suites)
  for (const suite of root.children) {
    const names = suite.children.map(c => c.name)
    assert.match(names.join(' '), /^(properties )?(testcase )*system-out system-err$/, names.join(' '))
    assert.ok(suite.children[0]!.children.length > 0, 'properties holds at least one property')
  }
})

test('counts of the testsuites and each testsuite match the checks', () => {
  const doc = buildReport({ samples: 200 })
  const root = render(doc)
  const all = countChecks(doc.checks)
  assert.deepEqual([root.attrs.tests, root.attrs.failures, root.attrs.errors, root.attrs.skipped].map(Number), [all.total, all.failed, all.errored, all.skipped])
  assert.ok(all.skipped > 0, 'the fixture has skipped checks, so the root count is not a default 0')
  for (const suite of root.children) {
    const checks = doc.checks.filter(c => c.suite === suite.attrs.name)
    const n = countChecks(checks)
    assert.deepEqual([suite.attrs.tests, suite.attrs.failures, suite.attrs.errors, suite.attrs.skipped].map(Number), [n.total, n.failed, n.errored, n.skipped])
    const cases = suite.children.filter(c => c.name === 'testcase')
    assert.equal(cases.length, checks.length)
    assert.equal(cases.filter(c => c.children.some(x => x.name === 'failure')).length, n.failed)
    assert.equal(cases.filter(c => c.children.some(x => x.name === 'error')).length, n.errored)
    assert.equal(cases.filter(c => c.children.some(x => x.name === 'skipped')).length, n.skipped)
    assert.ok(Number(suite.attrs.time) >= 0 && /^\d+\.\d{3}$/.test(suite.attrs.time!))
  }
})

test('each testcase is named by the check id, classname iofcert.<suite>, with its outcome and evidence', () => {
  const doc = buildReport({ samples: 200 })
  const cases = render(doc).children.flatMap(s => s.children.filter(c => c.name === 'testcase'))
  for (const check of doc.checks) {
    const tc = cases.find(c => c.attrs.name === check.id)
    assert.ok(tc !== undefined, check.id)
    assert.equal(tc.attrs.classname, `iofcert.${check.suite}`)
    assert.equal(tc.attrs.time, (check.durationMs / 1000).toFixed(3))
    const outcome = tc.children.map(c => c.name)
    const expected = { passed: [], failed: ['failure'], errored: ['error'], skipped: ['skipped'] }[check.status]
    assert.deepEqual(outcome, expected, check.id)
    if (check.status === 'failed' || check.status === 'errored') {
      const el = tc.children[0]!
      assert.equal(el.attrs.message, check.message)
      assert.equal(el.attrs.type, `${check.required ? 'Required' : 'Optional'}Check${check.status === 'failed' ? 'Failed' : 'Errored'}`)
      if (check.evidence !== undefined) assert.ok(el.text.includes(JSON.stringify(check.evidence, null, 2)), 'evidence in the element text')
    }
    if (check.status === 'skipped') assert.equal(tc.children[0]!.attrs.message, check.message)
  }
  const latency = cases.find(c => c.attrs.name === 'performance.latency')!
  assert.match(latency.children[0]!.text, /Vendor note with <b>markup<\/b> & \\"quotes\\"/)
})

test('benchmark figures are properties of the performance suite', () => {
  const doc = buildReport({ samples: 200 })
  const perf = render(doc).children.find(s => s.attrs.name === 'performance')!
  const props = Object.fromEntries(perf.children[0]!.children.map(p => [p.attrs.name, p.attrs.value]))
  for (const b of doc.benchmarks) {
    const key = `benchmark.${b.workload}.${b.mode}`
    assert.equal(props[`${key}.filtered.iops`], String(b.filtered.iops))
    assert.equal(props[`${key}.filtered.p99Ns`], String(b.filtered.latencyNs.p99))
    assert.equal(props[`${key}.baseline.p99Ns`], String(b.baseline.latencyNs.p99))
    assert.equal(props[`${key}.overhead.iopsPct`], String(b.overhead.iopsPct))
  }
  assert.equal(props['iofcert.seed'], String(doc.seed))
})

test('without performance checks the benchmark figures still get a performance suite', () => {
  const doc = buildReport({ samples: 100 })
  doc.checks = doc.checks.filter(c => c.suite !== 'performance')
  const perf = render(doc).children.find(s => s.attrs.name === 'performance')
  assert.ok(perf !== undefined)
  assert.equal(perf.attrs.tests, '0')
})

test('untrusted strings stay well-formed XML: markup, quotes, newlines and control characters', () => {
  const doc = buildReport({ samples: 100, vendor: 'Evil"<Co>&' })
  const check = doc.checks.find(c => c.id === 'performance.latency')!
  check.message = 'line one\nline "two" <x> & \u0001\u0007 bell, \uD800 lone surrogate, ]]> end'
  const root = render(doc)
  assert.equal(root.attrs.name, `iofcert ${doc.filter.id}`)
  const failure = root.children.flatMap(s => s.children).find(c => c.attrs.name === 'performance.latency')!.children[0]!
  assert.equal(failure.attrs.message, 'line one\nline "two" <x> & \uFFFD\uFFFD bell, \uFFFD lone surrogate, ]]> end')
})

test('the root has no attribute outside the XSD but skipped, on every outcome', () => {
  for (const doc of [buildReport({ samples: 100 }), buildReport({ samples: 100, outcome: 'ready' })]) {
    const root = render(doc)
    assertAttrs(root)
    assert.deepEqual(Object.keys(root.attrs).sort(), ['errors', 'failures', 'name', 'skipped', 'tests', 'time'])
  }
})

test('a failed or errored check carries its likely cause and rerun line in the element text and its filter log in system-out', () => {
  const doc = buildReport({ samples: 100 })
  const failed = doc.checks.find(c => c.id === 'performance.latency')!
  failed.cause = 'the filter queued writes behind its <journal> & flushed late'
  failed.logs = [
    { t: 12, where: 'vm-a', source: 'ACME_cdp_1.2.0', level: 'info', msg: 'attached disk-a0' },
    { t: 1534.9, where: 'daemon@host-1', source: 'ACME_cdp_1.2.0/daemon', level: 'warn', msg: 'journal <full> & "slow"\nsecond line' },
    { t: 2001, where: 'vm-a', source: 'ACME_cdp_1.2.0', level: 'error', msg: 'flush took 812 ms \u0001' },
  ]
  failed.logsDropped = 17
  const errored = doc.checks.find(c => c.id === 'events.migration')!
  const root = render(doc)
  root.children.forEach(assertAttrs)
  const cases = root.children.flatMap(s => s.children.filter(c => c.name === 'testcase'))

  const tc = cases.find(c => c.attrs.name === failed.id)!
  assert.deepEqual(tc.children.map(c => c.name), ['failure', 'system-out'], 'the log follows the failure, as the XSD orders them')
  const text = tc.children[0]!.text
  assert.ok(text.includes(`likely cause: ${failed.cause}`), text)
  assert.ok(text.includes(`rerun: ${rerunCommand(doc, failed.id)}`), text)
  assert.ok(text.includes("rerun: iofcert certify ACME_cdp_1.2.0.tgz --grep '^performance\\.latency$' --seed 20261101"), text)
  assert.ok(text.indexOf('rerun:') < text.indexOf('evidence:'), 'cause and rerun come before the (long) evidence')
  const out = tc.children[1]!.text
  assert.deepEqual(out.split('\n'), [
    'filter log of performance.latency: 3 lines, 17 more dropped',
    '0.012s vm-a          INFO  attached disk-a0',
    '1.535s daemon@host-1 WARN  journal <full> & "slow"',
    '                           second line',
    '2.001s vm-a          ERROR flush took 812 ms \uFFFD',
    '(17 more lines logged but not kept in the report)',
  ])

  // without a cause or a log: the rerun line only, and no system-out
  const etc = cases.find(c => c.attrs.name === errored.id)!
  assert.deepEqual(etc.children.map(c => c.name), ['error'])
  assert.ok(!etc.children[0]!.text.includes('likely cause'))
  assert.ok(etc.children[0]!.text.includes(`rerun: ${rerunCommand(doc, errored.id)}`))
  // passed and skipped checks get neither
  const passed = cases.find(c => c.attrs.name === 'package.descriptor')!
  assert.deepEqual(passed.children, [])
  assert.ok(!renderJunit(doc).includes("--grep '^package\\.descriptor$'"))
})

test('the rerun line names the package path given, quoted for the shell', () => {
  const doc = buildReport({ samples: 100 })
  const xml = renderJunit(doc, { package: "./my pkgs/cdp.tgz" })
  assert.ok(xml.includes("rerun: iofcert certify './my pkgs/cdp.tgz' --grep"), 'the path is used and quoted')
})

test('a check whose log was all dropped still says how many lines were dropped', () => {
  const doc = buildReport({ samples: 100 })
  const errored = doc.checks.find(c => c.id === 'events.migration')!
  errored.logs = []
  errored.logsDropped = 3
  const tc = render(doc).children.flatMap(s => s.children).find(c => c.attrs.name === errored.id)!
  assert.deepEqual(tc.children.map(c => c.name), ['error', 'system-out'])
  assert.equal(tc.children[1]!.text, 'filter log of events.migration: 0 lines, 3 more dropped\n(3 more lines logged but not kept in the report)')
})
