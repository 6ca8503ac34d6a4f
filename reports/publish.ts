/**
 * The compatibility listing: a static site built from verified reports. `index.html` lists
 * every filter (searchable and filterable from `file://`, no server), each report has its own
 * page and JSON copy, and `listing.json` serves machines.
 *
 * Without a trust file, a report that fails verification refuses the whole publish: nothing is
 * written. With one, every report is judged by its rules too, and a report that fails
 * verification or breaks a rule is left out and named in the listing's `refused` list instead.
 * A report of a narrowed run (`--grep`, or one shard not merged) is listed as `partial`, never
 * as `ready`: it judged only part of the catalogue.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import type { CertReport, CheckCounts, Verdict } from './document.js'
import { PublishNothing, PublishTargetInvalid, ReportRefused, type ReportError } from './errors.js'
import { renderHtml } from './html.js'
import { BASE_CSS, CSP_META, esc, fmtDate, jsonForScript } from './html-kit.js'
import { canonicalJson } from './sign.js'
import { assessReport, assessmentReasons, type Trust, type TrustRule } from './trust.js'
import { countChecks, describeNarrowing, runNarrowing, type Narrowing } from './verdict.js'
import { readJsonFile, serializeReport } from './write.js'

/** Options of publish. */
export interface PublishOptions {
  /** When given, every report must be signed by this Ed25519 public key (PEM). */
  readonly publicKeyPem?: string
  /**
   * When given, reports are judged by the trust file's rules as well, and a report that fails
   * verification or breaks a rule is left out of the listing (and listed in `refused`) instead
   * of refusing the whole publish.
   */
  readonly trust?: Trust
  /** Called once per report left out under a trust file, with its path as given and why. */
  readonly onRefused?: (file: string, reasons: readonly string[]) => void
}

/**
 * How the listing shows a report: its verdict, or `partial` when the run was narrowed to part of
 * the catalogue (`--grep`, or one shard not merged) — whatever its own verdict says.
 */
export type ListingVerdict = Verdict | 'partial'

/** One filter report in the listing (an entry of `listing.json`). */
export interface ListingEntry {
  filterId: string
  vendor: string
  name: string
  version: string
  class: string
  /** `partial` for a narrowed run, never `ready`; otherwise the report's verdict. */
  verdict: ListingVerdict
  /** The verdict the report itself gives. */
  reportVerdict: Verdict
  /** How the run was narrowed, when `verdict` is `partial`. */
  partial?: Narrowing
  /** When the certification run started (ISO). */
  startedAt: string
  tool: { name: string; version: string }
  profile: string
  seed: number
  counts: CheckCounts
  packageSha256: string
  /** Fingerprint of the key that signed the report. */
  signedBy: string
  /** The trust file's name for that key (listings made with a trust file). */
  certifier?: string
  /** Fingerprint of the key the vendor signed the package with, when the package was signed. */
  packageKeyFingerprint?: string
  /** SHA-256 hex of the report's canonical JSON. */
  reportSha256: string
  /** Paths relative to the site root. */
  page: string
  json: string
}

/** A report a trust file kept out of the listing. */
export interface RefusedReport {
  /** The report file's name (without its directory). */
  file: string
  /** What the report says it is, when it is a valid report document. */
  filterId?: string
  vendor?: string
  version?: string
  /** The trust rules it breaks, and `invalid` when it fails verification otherwise (schema, consistency). */
  rules: (TrustRule | 'invalid')[]
  reasons: string[]
}

/** The machine-readable listing, `listing.json`. */
export interface Listing {
  schemaVersion: 1
  generatedAt: string
  /** The trust file the listing was made with (its name and the SHA-256 of its canonical JSON), or `null`: made without one. */
  trust: { file: string; sha256: string } | null
  entries: ListingEntry[]
  /** Reports left out by the trust file's rules; always empty without a trust file. */
  refused: RefusedReport[]
}

/**
 * Builds the listing site in `outDir` from the reports at `reportPaths`. Every report is read
 * and verified before anything is written; the site is assembled next to `outDir` and moved
 * into place, replacing a previous listing there. Throws `ReportUnreadable` (exit 2),
 * `ReportRefused` (exit 1, only without a trust file) naming the file and why, or
 * `PublishTargetInvalid` (exit 2). With a trust file, refused reports are in `refused`.
 */
export async function publish(reportPaths: readonly string[], outDir: string, options: PublishOptions = {}): Promise<Listing> {
  if (reportPaths.length === 0) throw PublishNothing({})
  const verified: { doc: CertReport; sha: string; signedBy: string; certifier?: string }[] = []
  const refused: RefusedReport[] = []
  const seen = new Set<string>()
  const assessOptions = { ...(options.publicKeyPem === undefined ? {} : { publicKeyPem: options.publicKeyPem }), ...(options.trust === undefined ? {} : { trust: options.trust }) }
  for (const file of reportPaths) {
    const doc = await readJsonFile(file)
    const result = assessReport(doc, assessOptions)
    if (!result.ok) {
      const reasons = assessmentReasons(result)
      if (options.trust === undefined) throw ReportRefused(file, reasons)
      refused.push(refusedReport(file, doc, result.invalid.length > 0, result.refusals.map(r => r.rule), reasons))
      options.onRefused?.(file, reasons)
      continue
    }
    const report = doc as CertReport
    const sha = createHash('sha256').update(canonicalJson(report)).digest('hex')
    if (seen.has(sha)) continue
    seen.add(sha)
    verified.push({ doc: report, sha, signedBy: result.keyFingerprint!, ...(result.certifier === undefined ? {} : { certifier: result.certifier }) })
  }
  await checkTarget(outDir)

  const entries: ListingEntry[] = verified.map(({ doc, sha, signedBy, certifier }) => {
    const slug = `${doc.filter.id.replace(/[^A-Za-z0-9._-]/g, '_')}-${sha.slice(0, 8)}`
    const partial = runNarrowing(doc.options)
    return {
      filterId: doc.filter.id,
      vendor: doc.filter.vendor,
      name: doc.filter.name,
      version: doc.filter.version,
      class: doc.filter.class,
      verdict: partial === undefined ? doc.verdict : 'partial',
      reportVerdict: doc.verdict,
      ...(partial === undefined ? {} : { partial }),
      startedAt: doc.startedAt,
      tool: { name: doc.tool.name, version: doc.tool.version },
      profile: doc.profile.name,
      seed: doc.seed,
      counts: countChecks(doc.checks),
      packageSha256: doc.filter.packageSha256,
      signedBy,
      ...(certifier === undefined ? {} : { certifier }),
      ...(doc.package?.keyFingerprint === undefined ? {} : { packageKeyFingerprint: doc.package.keyFingerprint }),
      reportSha256: sha,
      page: `reports/${slug}.html`,
      json: `reports/${slug}.json`,
    }
  })
  const order = entries.map((e, i) => ({ e, doc: verified[i]!.doc }))
  order.sort((a, b) =>
    a.e.vendor.localeCompare(b.e.vendor) || a.e.name.localeCompare(b.e.name) ||
    compareVersions(b.e.version, a.e.version) || b.e.startedAt.localeCompare(a.e.startedAt))
  const listing: Listing = {
    schemaVersion: 1,
    generatedAt: new Date().toISOString(),
    trust: options.trust === undefined ? null : { file: basename(options.trust.file), sha256: options.trust.sha256 },
    entries: order.map(o => o.e),
    refused,
  }

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

function refusedReport(file: string, doc: unknown, invalid: boolean, rules: TrustRule[], reasons: string[]): RefusedReport {
  // Anything the document says about itself is optional: it may not be a valid report.
  const filter = (doc as { filter?: unknown } | null)?.filter
  const said = (key: string): string | undefined => {
    const v = typeof filter === 'object' && filter !== null ? (filter as Record<string, unknown>)[key] : undefined
    return typeof v === 'string' ? v : undefined
  }
  const [filterId, vendor, version] = [said('id'), said('vendor'), said('version')]
  return {
    file: basename(file),
    ...(filterId === undefined ? {} : { filterId }),
    ...(vendor === undefined ? {} : { vendor }),
    ...(version === undefined ? {} : { version }),
    rules: [...(invalid ? ['invalid' as const] : []), ...rules],
    reasons,
  }
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
  return PublishTargetInvalid({ outDir, why })
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

/** The verdict badge; a partial run says how it was narrowed and what its report's verdict was. */
function verdictCell(e: ListingEntry): string {
  if (e.verdict !== 'partial') return `<span class="badge ${e.verdict}">${e.verdict === 'ready' ? 'Ready' : 'Not ready'}</span>`
  const own = e.reportVerdict === 'ready' ? 'ready' : 'not ready'
  const how = e.partial === undefined ? '' : describeNarrowing(e.partial)
  return `<span class="badge partial" title="${esc(`a narrowed run: ${how}`)}">Partial</span><div class="muted small">${esc(how)}; its checks: ${own}</div>`
}

/** Which trust file the listing was made with, or that it was made without one. */
function trustLine(listing: Listing): string {
  if (listing.trust === null) {
    return '<p class="sub trust" data-testid="trust" data-trust="none">Made without a trust file: vendor names, package keys and certifier keys were not checked against any list.</p>'
  }
  return `<p class="sub trust" data-testid="trust" data-trust="${esc(listing.trust.sha256)}">Checked against trust file <code>${esc(listing.trust.file)}</code> (SHA-256 <code>${esc(listing.trust.sha256.slice(0, 16))}…</code>): every report listed was signed by a certifier it names, for a vendor it names, whose package was signed with one of that vendor's keys.</p>`
}

/** The reports a trust file kept out, with the rules they break. */
function renderRefused(listing: Listing): string {
  if (listing.refused.length === 0) return ''
  const rows = listing.refused.map(r => `<tr data-refused-file="${esc(r.file)}" data-rules="${esc(r.rules.join(' '))}">
<td><code>${esc(r.file)}</code>${r.filterId === undefined ? '' : `<div class="fid"><code>${esc(r.filterId)}</code></div>`}</td>
<td>${r.rules.map(x => `<span class="badge not-ready">${esc(x)}</span>`).join(' ')}</td>
<td class="small">${r.reasons.map(x => esc(x)).join('<br>')}</td>
</tr>`).join('\n')
  return `<section class="refused" data-testid="refused">
<h2>Refused (${listing.refused.length})</h2>
<p class="muted">These reports were left out: they fail verification or break a rule of the trust file.</p>
<div class="scroll"><table class="listing">
<thead><tr><th>Report</th><th>Rule</th><th>Why</th></tr></thead>
<tbody>
${rows}
</tbody>
</table></div>
</section>
`
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
  const partial = entries.filter(e => e.verdict === 'partial').length
  const options = (list: string[]) => list.map(v => `<option value="${esc(v)}">${esc(v)}</option>`).join('')
  const rows = entries.map((e, i) => `<tr data-index="${i}" data-filter-id="${esc(e.filterId)}" data-class="${esc(e.class)}" data-vendor="${esc(e.vendor)}" data-verdict="${e.verdict}">
<td>${esc(e.vendor)}</td>
<td><a href="${esc(e.page)}" data-testid="report-link"><b>${esc(e.name)}</b></a><div class="fid"><code>${esc(e.filterId)}</code></div></td>
<td>${esc(e.version)}</td>
<td>${esc(e.class)}</td>
<td>${verdictCell(e)}<div class="muted small">${countsLine(e.counts)}</div></td>
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
<p class="sub" data-testid="summary">${entries.length} report${entries.length === 1 ? '' : 's'}, ${ready} ready${partial > 0 ? `, ${partial} partial` : ''}${listing.trust === null ? '' : `, ${listing.refused.length} refused`}. Every report listed here was verified: its signature, its schema and that its verdict follows from its checks. A partial run — narrowed by <code>--grep</code>, or one shard not merged — judged only part of the catalogue and is never shown as ready. Generated ${esc(fmtDate(listing.generatedAt))}.</p>
${trustLine(listing)}
</div></header>
<main class="wrap">
<div class="controls no-print" role="search">
<label class="grow">Search <input type="search" id="q" data-testid="search" placeholder="vendor, name, class, version…" autocomplete="off"></label>
<label>Class <select id="cls" data-testid="filter-class"><option value="">all</option>${options(classes)}</select></label>
<label>Vendor <select id="vendor" data-testid="filter-vendor"><option value="">all</option>${options(vendors)}</select></label>
<label>Verdict <select id="verdict" data-testid="filter-verdict"><option value="">all</option><option value="ready">ready</option><option value="not-ready">not ready</option><option value="partial">partial</option></select></label>
</div>
<p class="muted shown" data-testid="shown-count">Showing ${entries.length} of ${entries.length}</p>
<div class="scroll"><table class="listing" data-testid="listing">
<thead><tr><th>Vendor</th><th>Filter</th><th>Version</th><th>Class</th><th>Verdict</th><th>Date</th><th>Harness</th><th></th></tr></thead>
<tbody>
${rows}
</tbody>
</table></div>
<p class="empty muted" data-testid="empty" hidden>No filter matches.</p>
${renderRefused(listing)}<p class="foot muted">Machine-readable: <a href="listing.json">listing.json</a>. Each report page shows the checks, their evidence and the benchmark figures.</p>
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
.badge.partial { color: var(--warn); background: var(--warn-bg); border-color: #f5e0a0; }
.top .trust { margin-top: .4rem; font-size: .9rem; }
.top code { color: inherit; }
.refused h2 { font-size: 1.2rem; margin: 2rem 0 .3rem; }
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
