/**
 * The HTML report and the listing site in headless Chromium: what a vendor sees and clicks.
 * Skipped, with the reason, only when /usr/bin/chromium is absent (CI installs it).
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { chromium, type Browser, type Page } from 'playwright-core'
import { renderHtml } from '../reports/html.js'
import { publish } from '../reports/publish.js'
import { rerunCommand } from '../reports/rerun.js'
import { signReport } from '../reports/sign.js'
import { countChecks } from '../reports/verdict.js'
import { CHECK_STATUSES, type CertReport } from '../reports/document.js'
import { buildReport, makeKeyPair } from './fixtures/report-fixture.js'

const CHROMIUM = '/usr/bin/chromium'
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium)`
// dist/test/<this file> → the repository root.
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const SCREENSHOTS = join(ROOT, 'out', 'screenshots')

let browser: Browser | undefined
let work = ''

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'iofcert-browser-'))
  await mkdir(SCREENSHOTS, { recursive: true })
  if (skip !== false) return
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
})

after(async () => {
  await browser?.close()
  await rm(work, { recursive: true, force: true })
})

/** A page that records console errors, page errors and every request it makes. */
async function open(url: string, viewport = { width: 1200, height: 900 }): Promise<{ page: Page; errors: string[]; requests: string[] }> {
  const page = await browser!.newPage({ viewport })
  const errors: string[] = []
  const requests: string[] = []
  page.on('console', m => { if (m.type() === 'error' || m.type() === 'warning') errors.push(`${m.type()}: ${m.text()}`) })
  page.on('pageerror', e => errors.push(`pageerror: ${e.message}`))
  page.on('request', r => requests.push(r.url()))
  await page.goto(url)
  return { page, errors, requests }
}

async function writeReportPage(doc: CertReport, name: string): Promise<string> {
  const file = join(work, name)
  await writeFile(file, renderHtml(doc))
  return pathToFileURL(file).href
}

test('the report renders with no console errors and no network, verdict and counts matching the JSON', { skip }, async () => {
  const doc = buildReport({ samples: 2000 })
  const { page, errors, requests } = await open(await writeReportPage(doc, 'report.html'))
  try {
    assert.deepEqual(errors, [])
    assert.ok(requests.every(u => u.startsWith('file:') || u.startsWith('data:')), requests.join('\n'))
    const verdict = page.getByTestId('verdict')
    assert.equal(await verdict.getAttribute('data-verdict'), doc.verdict)
    assert.match((await verdict.textContent())!, /Not ready/)
    const counts = countChecks(doc.checks)
    for (const s of CHECK_STATUSES) {
      const chip = page.getByTestId(`count-${s}`)
      assert.equal(Number(await chip.getAttribute('data-count')), counts[s], s)
      assert.equal((await chip.textContent())!.trim(), `${counts[s]} ${s}`)
    }
    assert.equal(await page.locator('tr[data-check-id]').count(), doc.checks.length)
    for (const c of doc.checks) {
      assert.equal(await page.locator(`tr[data-check-id="${c.id}"]`).getAttribute('data-status'), c.status, c.id)
    }
    const reasons = await page.getByTestId('reasons').locator('li').allTextContents()
    assert.deepEqual(reasons, doc.reasons)
    const embedded = JSON.parse((await page.locator('#report-json').textContent())!) as CertReport
    assert.deepEqual(embedded, doc)
    await page.screenshot({ path: join(SCREENSHOTS, 'report.png'), fullPage: true })
  } finally {
    await page.close()
  }
})

test('clicking a failed check reveals its evidence; status buttons filter the rows', { skip }, async () => {
  const doc = buildReport({ samples: 500 })
  const failed = doc.checks.find(c => c.status === 'failed' && c.evidence !== undefined)!
  const { page, errors } = await open(await writeReportPage(doc, 'report.html'))
  try {
    const row = page.locator(`tr[data-check-id="${failed.id}"]`)
    const evidence = row.locator('details.evidence table.kv')
    assert.equal(await evidence.isVisible(), false)
    await row.locator('details.evidence summary').click()
    assert.equal(await evidence.isVisible(), true)
    for (const [k, v] of Object.entries(failed.evidence!)) {
      const cell = (await evidence.locator(`tr[data-key="${k}"] td`).textContent())!
      assert.equal(cell, typeof v === 'string' ? v : JSON.stringify(v), k)
    }

    await page.locator('button[data-filter="failed"]').click()
    const visible = page.locator('tr[data-check-id]:visible')
    assert.equal(await visible.count(), doc.checks.filter(c => c.status === 'failed').length)
    assert.equal(await visible.first().getAttribute('data-check-id'), failed.id)
    await page.locator('button[data-filter="skipped"]').click()
    assert.equal(await visible.count(), doc.checks.filter(c => c.status === 'skipped').length)
    await page.locator('button[data-filter="all"]').click()
    assert.equal(await visible.count(), doc.checks.length)

    // A reason at the top jumps to its check and opens the evidence.
    const errored = doc.checks.find(c => c.status === 'errored')!
    await page.locator('button[data-filter="passed"]').click()
    await page.locator(`[data-testid=reasons] a[data-goto="${errored.id}"]`).click()
    const stderr = page.locator(`tr[data-check-id="${errored.id}"] details.evidence tr[data-key="stderr"] pre`)
    assert.equal(await stderr.isVisible(), true)
    // Multi-line strings keep their line breaks.
    assert.equal(await stderr.textContent(), errored.evidence!['stderr'])
    assert.deepEqual(errors, [])
  } finally {
    await page.close()
  }
})

test('vendor strings are shown as text, never as markup', { skip }, async () => {
  const doc = buildReport({ samples: 200, vendor: '<img src=x onerror=alert(1)>', name: '<script>alert(2)</script>' })
  const { page, errors, requests } = await open(await writeReportPage(doc, 'evil.html'))
  try {
    assert.equal(await page.locator('header img').count(), 0)
    assert.equal(await page.getByTestId('filter-vendor').textContent(), doc.filter.vendor)
    assert.equal(await page.getByTestId('filter-name').textContent(), doc.filter.name)
    const note = await page.locator('tr[data-check-id="performance.latency"] tr[data-key="note"] td').textContent()
    assert.equal(note, 'Vendor note with <b>markup</b> & "quotes" must show as text')
    assert.equal(await page.locator('tr[data-check-id="performance.latency"] td b').count(), 0)
    assert.deepEqual(errors, [])
    assert.ok(requests.every(u => u.startsWith('file:')), requests.join('\n'))
  } finally {
    await page.close()
  }
})

test('on a phone the report fits the screen width; printed, every check is shown', { skip }, async () => {
  const doc = buildReport({ samples: 500 })
  const { page, errors } = await open(await writeReportPage(doc, 'report.html'), { width: 390, height: 844 })
  try {
    const overflow = Number(await page.evaluate('document.documentElement.scrollWidth - window.innerWidth'))
    assert.ok(overflow <= 1, `page is ${overflow}px wider than the phone`)
    await page.screenshot({ path: join(SCREENSHOTS, 'report-phone.png'), fullPage: false })
    await page.locator('button[data-filter="failed"]').click()
    await page.emulateMedia({ media: 'print' })
    assert.equal(await page.locator('.toolbar').isVisible(), false)
    assert.equal(await page.locator('tr[data-check-id]:visible').count(), doc.checks.length)
    assert.deepEqual(errors, [])
  } finally {
    await page.close()
  }
})

test('the listing loads from file://, search and filters narrow the rows, and links open the report', { skip }, async () => {
  const key = makeKeyPair()
  const docs = [
    buildReport({ samples: 300, outcome: 'ready' }),
    buildReport({ samples: 300, version: '1.3.0' }),
    buildReport({ samples: 300, outcome: 'ready', cls: 'cache', vendor: 'Zeta', name: 'flashcache', version: '2.0.1' }),
    buildReport({ samples: 300, outcome: 'ready', cls: 'cache', vendor: 'Blue', name: 'warmcache', version: '0.9.0' }),
  ]
  const files: string[] = []
  for (const [i, d] of docs.entries()) {
    files.push(join(work, `r${i}.json`))
    await writeFile(files[i]!, JSON.stringify(signReport(d, key.privateKeyPem)))
  }
  const site = join(work, 'site')
  await publish(files, site)
  const { page, errors, requests } = await open(pathToFileURL(join(site, 'index.html')).href)
  try {
    const rows = page.locator('tr[data-filter-id]:visible')
    assert.equal(await rows.count(), 4)
    assert.equal(await page.getByTestId('shown-count').textContent(), 'Showing 4 of 4')
    await page.screenshot({ path: join(SCREENSHOTS, 'listing.png'), fullPage: true })

    await page.getByTestId('search').fill('zeta')
    assert.deepEqual(await rows.evaluateAll(r => r.map(x => x.getAttribute('data-filter-id'))), ['Zeta_flashcache_2.0.1'])
    await page.getByTestId('search').fill('cdp 1.3')
    assert.deepEqual(await rows.evaluateAll(r => r.map(x => x.getAttribute('data-filter-id'))), ['ACME_cdp_1.3.0'])
    await page.getByTestId('search').fill('')
    await page.getByTestId('filter-class').selectOption('cache')
    assert.equal(await rows.count(), 2)
    await page.getByTestId('filter-vendor').selectOption('Blue')
    assert.deepEqual(await rows.evaluateAll(r => r.map(x => x.getAttribute('data-filter-id'))), ['Blue_warmcache_0.9.0'])
    await page.getByTestId('search').fill('nothing-like-this')
    assert.equal(await rows.count(), 0)
    assert.equal(await page.getByTestId('empty').isVisible(), true)
    await page.getByTestId('search').fill('')
    await page.getByTestId('filter-vendor').selectOption('')
    await page.getByTestId('filter-class').selectOption('')
    await page.getByTestId('filter-verdict').selectOption('not-ready')
    assert.deepEqual(await rows.evaluateAll(r => r.map(x => x.getAttribute('data-filter-id'))), ['ACME_cdp_1.3.0'])

    await rows.first().getByTestId('report-link').click()
    await page.waitForURL(/\/reports\/ACME_cdp_1\.3\.0-[0-9a-f]{8}\.html$/)
    assert.equal(await page.getByTestId('verdict').getAttribute('data-verdict'), 'not-ready')
    await page.locator('a.back').click()
    await page.waitForURL(/\/index\.html$/)
    assert.deepEqual(errors, [])
    assert.ok(requests.every(u => u.startsWith('file:')), requests.join('\n'))
  } finally {
    await page.close()
  }
})

test('a failed check shows its likely cause and rerun command; its filter log opens from the reasons and with "expand all"', { skip }, async () => {
  const doc = buildReport({ samples: 300 })
  const failed = doc.checks.find(c => c.id === 'performance.latency')!
  failed.cause = 'the filter waits for its journal before completing each write'
  failed.logs = Array.from({ length: 120 }, (_, i) => ({
    t: i * 37, where: i % 3 === 0 ? 'daemon@host-1' : 'vm-a', source: 'ACME_cdp_1.2.0', level: (['info', 'warn', 'error', 'debug'] as const)[i % 4]!,
    msg: i === 7 ? 'journal <full>: waiting\n  at append (journal.js:12:3)' : `journal append ${i} took ${i * 3} µs`,
  }))
  failed.logsDropped = 80
  const { page, errors } = await open(await writeReportPage(doc, 'report-logs.html'))
  try {
    const row = page.locator(`tr[data-check-id="${failed.id}"]`)
    assert.equal(await page.getByTestId(`cause-${failed.id}`).textContent(), `Likely cause: ${failed.cause}`)
    const rerun = page.getByTestId(`rerun-${failed.id}`)
    assert.equal(await rerun.isVisible(), true, 'the rerun command shows without a click')
    assert.equal(await rerun.textContent(), rerunCommand(doc, failed.id))
    // one click selects the whole command, ready to copy
    await rerun.click()
    assert.equal(await page.evaluate('window.getSelection().toString()'), rerunCommand(doc, failed.id))

    const log = row.locator('details.logs table.log')
    assert.equal(await log.isVisible(), false, 'the log starts folded')
    await page.locator('button[data-filter="passed"]').click()
    await page.locator(`[data-testid=reasons] a[data-goto="${failed.id}"]`).click()
    assert.equal(await log.isVisible(), true, 'jumping to the check opens its log')
    assert.equal(await log.locator('tbody tr').count(), 120)
    assert.equal(await log.locator('tbody tr').nth(7).locator('td pre').textContent(), failed.logs[7]!.msg)
    assert.match((await row.getByTestId(`logs-dropped-${failed.id}`).textContent())!, /^80 more lines were logged but not kept/)
    await page.screenshot({ path: join(SCREENSHOTS, 'report-failure.png'), clip: (await row.boundingBox())! })

    await page.evaluate(`document.querySelectorAll('details').forEach(function (d) { d.open = false })`)
    await page.locator('button[data-expand]').click()
    assert.equal(await log.isVisible(), true, '"expand all" opens the logs too')
    await page.locator('button[data-expand]').click()
    assert.equal(await log.isVisible(), false)
    assert.deepEqual(errors, [])
  } finally {
    await page.close()
  }
  // on a phone, a long command and the log table stay within the screen
  const phone = await open(await writeReportPage(doc, 'report-logs.html'), { width: 390, height: 844 })
  try {
    await phone.page.locator('button[data-expand]').click()
    const overflow = Number(await phone.page.evaluate('document.documentElement.scrollWidth - window.innerWidth'))
    assert.ok(overflow <= 1, `page is ${overflow}px wider than the phone`)
    const scroll = Number(await phone.page.evaluate(`(function () { var box = document.querySelector('[data-testid=checks-table]').parentElement; return box.scrollWidth - box.clientWidth })()`))
    assert.ok(scroll <= 1, `the checks table is ${scroll}px wider than its box`)
  } finally {
    await phone.page.close()
  }
})
