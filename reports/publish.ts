/**
 * The compatibility listing: a static site built from verified reports. `index.html` lists
 * every filter (searchable and filterable from `file://`, no server), each report has its own
 * page and JSON copy, and `listing.json` serves machines. A report that fails verification
 * refuses the whole publish: nothing is written, so a listing is never partial.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import type { CertReport, CheckCounts, Verdict } from './document.js'
import { ReportError, ReportRefused } from './errors.js'
import { renderHtml } from './html.js'
import { BASE_CSS, CSP_META, esc, fmtDate, jsonForScript } from './html-kit.js'
import { canonicalJson, verifyReport } from './sign.js'
import { countChecks } from './verdict.js'
import { readJsonFile, serializeReport } from './write.js'

/** Options of publish. */
export interface PublishOptions {
  /** When given, every report must be signed by this Ed25519 public key (PEM). */
  readonly publicKeyPem?: string
}

/** One filter report in the listing (an entry of `listing.json`). */
export interface ListingEntry {
  filterId: string
  vendor: string
  name: string
  version: string
  class: string
  verdict: Verdict
  /** When the certification run started (ISO). */
  startedAt: string
  tool: { name: string; version: string }
  profile: string
  seed: number
  counts: CheckCounts
  packageSha256: string
  /** Fingerprint of the key that signed the report. */
  signedBy: string
  /** SHA-256 hex of the report's canonical JSON. */
  reportSha256: string
  /** Paths relative to the site root. */
  page: string
  json: string
}

/** The machine-readable listing, `listing.json`. */
export interface Listing {
  schemaVersion: 1
  generatedAt: string
  entries: ListingEntry[]
}

/**
 * Builds the listing site in `outDir` from the reports at `reportPaths`. Every report is read
 * and verified before anything is written; the site is assembled next to `outDir` and moved
 * into place, replacing a previous listing there. Throws `ReportUnreadable` (exit 2),
 * `ReportRefused` (exit 1) naming the file and why, or `PublishTargetInvalid` (exit 2).
 */
export async function publish(reportPaths: readonly string[], outDir: string, options: PublishOptions = {}): Promise<Listing> {
  if (reportPaths.length === 0) throw new ReportError('PublishNothing', 'no reports to publish', {}, 2)
  const verified: { doc: CertReport; sha: string; signedBy: string }[] = []
  const seen = new Set<string>()
  for (const file of reportPaths) {
    const doc = await readJsonFile(file)
    const result = verifyReport(doc, options.publicKeyPem === undefined ? {} : { publicKeyPem: options.publicKeyPem })
    if (!result.ok) throw ReportRefused(file, result.reasons)
    const report = doc as CertReport
    const sha = createHash('sha256').update(canonicalJson(report)).digest('hex')
    if (seen.has(sha)) continue
    seen.add(sha)
    verified.push({ doc: report, sha, signedBy: result.keyFingerprint! })
  }
  await checkTarget(outDir)

  const entries: ListingEntry[] = verified.map(({ doc, sha, signedBy }) => {
    const slug = `${doc.filter.id.replace(/[^A-Za-z0-9._-]/g, '_')}-${sha.slice(0, 8)}`
    return {
      filterId: doc.filter.id,
      vendor: doc.filter.vendor,
      name: doc.filter.name,
      version: doc.filter.version,
      class: doc.filter.class,
      verdict: doc.verdict,
      startedAt: doc.startedAt,
      tool: { name: doc.tool.name, version: doc.tool.version },
      profile: doc.profile.name,
      seed: doc.seed,
      counts: countChecks(doc.checks),
      packageSha256: doc.filter.packageSha256,
      signedBy,
      reportSha256: sha,
      page: `reports/${slug}.html`,
      json: `reports/${slug}.json`,
    }
  })
  const order = entries.map((e, i) => ({ e, doc: verified[i]!.doc }))
  order.sort((a, b) =>
    a.e.vendor.localeCompare(b.e.vendor) || a.e.name.localeCompare(b.e.name) ||
    compareVersions(b.e.version, a.e.version) || b.e.startedAt.localeCompare(a.e.startedAt))
  const listing: Listing = { schemaVersion: 1, generatedAt: new Date().toISOString(), entries: order.map(o => o.e) }

  const parent = dirname(resolve(outDir))
  await mkdir(parent, { recursive: true })
  const staging = join(parent, `.${basename(outDir)}.publish-${randomBytes(6).toString('hex')}`)
  try {
    await mkdir(join(staging, 'reports'), { recursive: true })
    for (const { e, doc } of order) {
      await writeFile(join(staging, e.page), renderHtml(doc, { backLink: { href: '../index.html', label: 'Compatibility listing' } }))
      await writeFile(join(staging, e.json), serializeReport(doc))
    }
    await writeFile(join(staging, 'listing.json'), `${JSON.stringify(listing, null, 2)}\n`)
    await writeFile(join(staging, 'index.html'), renderListing(listing))
    await swapInto(staging, resolve(outDir))
  } catch (err) {
    await rm(staging, { recursive: true, force: true })
    throw err
  }
  return listing
}

// Replacing a directory that is not a listing could destroy unrelated files: refuse instead.
async function checkTarget(outDir: string): Promise<void> {
  let names: string[]
  try {
    if (!(await stat(outDir)).isDirectory()) throw targetInvalid(outDir, 'it is not a directory')
    names = await readdir(outDir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  if (names.length > 0 && !names.includes('listing.json')) {
    throw targetInvalid(outDir, 'it is not empty and holds no listing.json from an earlier publish')
  }
}

function targetInvalid(outDir: string, why: string): ReportError {
  return new ReportError('PublishTargetInvalid', `refusing to publish into ${outDir}: ${why}`, { outDir, why }, 2)
}

async function swapInto(staging: string, outDir: string): Promise<void> {
  const old = `${outDir}.old-${randomBytes(6).toString('hex')}`
  let moved = false
  try {
    await rename(outDir, old)
    moved = true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  try {
    await rename(staging, outDir)
  } catch (err) {
    if (moved) await rename(old, outDir)
    throw err
  }
  if (moved) await rm(old, { recursive: true, force: true })
}

/** `36 passed · 1 failed · 4 skipped`, leaving out the statuses no check has. */
function countsLine(c: CheckCounts): string {
  return (['passed', 'failed', 'errored', 'skipped'] as const).filter(s => s === 'passed' || c[s] > 0).map(s => `${c[s]} ${s}`).join(' · ')
}

/** Numeric-aware version order: 1.10.0 after 1.9.2. */
function compareVersions(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true })
}

/** Renders the listing's index page. */
function renderListing(listing: Listing): string {
  const entries = listing.entries
  const classes = [...new Set(entries.map(e => e.class))].sort()
  const vendors = [...new Set(entries.map(e => e.vendor))].sort((a, b) => a.localeCompare(b))
  const ready = entries.filter(e => e.verdict === 'ready').length
  const options = (list: string[]) => list.map(v => `<option value="${esc(v)}">${esc(v)}</option>`).join('')
  const rows = entries.map((e, i) => `<tr data-index="${i}" data-filter-id="${esc(e.filterId)}" data-class="${esc(e.class)}" data-vendor="${esc(e.vendor)}" data-verdict="${e.verdict}">
<td>${esc(e.vendor)}</td>
<td><a href="${esc(e.page)}" data-testid="report-link"><b>${esc(e.name)}</b></a><div class="fid"><code>${esc(e.filterId)}</code></div></td>
<td>${esc(e.version)}</td>
<td>${esc(e.class)}</td>
<td><span class="badge ${e.verdict}">${e.verdict === 'ready' ? 'Ready' : 'Not ready'}</span><div class="muted small">${countsLine(e.counts)}</div></td>
<td class="nowrap">${esc(fmtDate(e.startedAt).slice(0, 10))}</td>
<td class="nowrap">${esc(e.tool.name)} ${esc(e.tool.version)}</td>
<td class="nowrap"><a href="${esc(e.json)}">JSON</a></td>
</tr>`).join('\n')
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${CSP_META}
<title>I/O filter compatibility listing</title>
<style>${BASE_CSS}${LISTING_CSS}</style>
</head>
<body>
<header class="top"><div class="wrap">
<div class="eyebrow">Certification results</div>
<h1>I/O filter compatibility listing</h1>
<p class="sub">${entries.length} report${entries.length === 1 ? '' : 's'}, ${ready} ready. Every report listed here was verified: its signature, its schema and that its verdict follows from its checks. Generated ${esc(fmtDate(listing.generatedAt))}.</p>
</div></header>
<main class="wrap">
<div class="controls no-print" role="search">
<label class="grow">Search <input type="search" id="q" data-testid="search" placeholder="vendor, name, class, version…" autocomplete="off"></label>
<label>Class <select id="cls" data-testid="filter-class"><option value="">all</option>${options(classes)}</select></label>
<label>Vendor <select id="vendor" data-testid="filter-vendor"><option value="">all</option>${options(vendors)}</select></label>
<label>Verdict <select id="verdict" data-testid="filter-verdict"><option value="">all</option><option value="ready">ready</option><option value="not-ready">not ready</option></select></label>
</div>
<p class="muted shown" data-testid="shown-count">Showing ${entries.length} of ${entries.length}</p>
<div class="scroll"><table class="listing" data-testid="listing">
<thead><tr><th>Vendor</th><th>Filter</th><th>Version</th><th>Class</th><th>Verdict</th><th>Date</th><th>Harness</th><th></th></tr></thead>
<tbody>
${rows}
</tbody>
</table></div>
<p class="empty muted" data-testid="empty" hidden>No filter matches.</p>
<p class="foot muted">Machine-readable: <a href="listing.json">listing.json</a>. Each report page shows the checks, their evidence and the benchmark figures.</p>
</main>
<script type="application/json" id="listing-json">${jsonForScript(listing)}</script>
<script>${LISTING_JS}</script>
</body>
</html>
`
}

const LISTING_CSS = `
.top { background: #0d1117; color: #f0f6fc; padding: 22px 0 18px; }
.eyebrow { text-transform: uppercase; letter-spacing: .08em; font-size: .75rem; color: #9198a1; }
.top h1 { margin: .2rem 0 .3rem; font-size: 1.9rem; }
.top .sub { color: #d1d7e0; margin: 0; max-width: 60rem; }
.controls { display: flex; flex-wrap: wrap; gap: 10px 14px; align-items: end; margin: 20px 0 8px; }
.controls label { display: flex; flex-direction: column; font-size: .8rem; color: var(--muted); gap: 3px; }
.controls .grow { flex: 1 1 260px; }
.controls input, .controls select { font: inherit; font-size: .95rem; height: 2.4rem; padding: 0 .55rem; border: 1px solid var(--line); border-radius: 6px; background: #fff; color: var(--fg); min-width: 8rem; }
.shown { margin: .3rem 0 .6rem; font-size: .88rem; }
.listing td { vertical-align: middle; }
.listing a { text-decoration: none; }
.listing a:hover { text-decoration: underline; }
.fid { font-size: .8rem; color: var(--muted); }
.small { font-size: .78rem; }
.nowrap { white-space: nowrap; }
.foot { margin: 2rem 0; font-size: .85rem; }
@media (max-width: 640px) {
  .top h1 { font-size: 1.45rem; }
  .listing th:nth-child(7), .listing td:nth-child(7), .listing th:nth-child(3), .listing td:nth-child(3) { display: none; }
  .controls label { flex: 1 1 40%; }
}
@media print {
  .top { background: none; color: #000; border-bottom: 2px solid #000; }
  .top .sub, .eyebrow { color: #333; }
  tr[hidden] { display: table-row !important; }
}
`

// Search and filters work on the embedded listing data, so the page needs no server.
const LISTING_JS = `(function () {
  var data = JSON.parse(document.getElementById('listing-json').textContent).entries;
  var rows = Array.prototype.slice.call(document.querySelectorAll('tr[data-index]'));
  var q = document.getElementById('q'), cls = document.getElementById('cls'), vendor = document.getElementById('vendor'), verdict = document.getElementById('verdict');
  var shown = document.querySelector('[data-testid="shown-count"]'), empty = document.querySelector('[data-testid="empty"]');
  var text = data.map(function (e) { return [e.vendor, e.name, e.version, e.class, e.filterId, e.verdict, e.tool.version].join(' ').toLowerCase(); });
  function apply() {
    var words = q.value.toLowerCase().split(/\\s+/).filter(Boolean), n = 0;
    rows.forEach(function (r) {
      var i = Number(r.getAttribute('data-index')), e = data[i];
      var on = words.every(function (w) { return text[i].indexOf(w) !== -1; })
        && (!cls.value || e.class === cls.value) && (!vendor.value || e.vendor === vendor.value) && (!verdict.value || e.verdict === verdict.value);
      r.hidden = !on; if (on) n++;
    });
    shown.textContent = 'Showing ' + n + ' of ' + rows.length;
    empty.hidden = n > 0;
  }
  [q, cls, vendor, verdict].forEach(function (el) { el.addEventListener('input', apply); el.addEventListener('change', apply); });
  apply();
})();`
