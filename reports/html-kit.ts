/**
 * Shared pieces of the HTML pages (the report and the listing): escaping, number formats,
 * the base stylesheet and the content security policy. Pages are self-contained: no network,
 * nothing but inline CSS, inline SVG and a little inline script.
 */

/** Escapes text for HTML content and quoted attribute values; vendor strings are untrusted. */
export function esc(value: unknown): string {
  return String(value)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;')
}

/**
 * JSON safe inside `<script type="application/json">`: `<` is escaped so no string can close
 * the script element, and U+2028/U+2029 so the text is also valid JavaScript.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029')
}

/** Forbids every network fetch: a report page can run only its own inline script and style. */
export const CSP_META =
  `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'">`

/** A latency in ns as µs or ms with three significant digits. */
export function fmtLatency(ns: number): string {
  if (ns < 1000) return `${Math.round(ns)} ns`
  const us = ns / 1000
  if (us < 1000) return `${sig3(us)} µs`
  const ms = us / 1000
  if (ms < 1000) return `${sig3(ms)} ms`
  return `${sig3(ms / 1000)} s`
}

/** A latency for an axis tick: like fmtLatency without trailing zeros (`2 ms`, `0`). */
export function fmtLatencyTick(ns: number): string {
  if (ns === 0) return '0'
  return fmtLatency(ns).replace(/\.0+(?= )|(\.\d*?)0+(?= )/, '$1')
}

/** A duration in ms, as ms below a second and seconds or minutes above. */
export function fmtDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`
  const s = ms / 1000
  if (s < 120) return `${s.toFixed(1)} s`
  const m = Math.floor(s / 60)
  return `${m} min ${Math.round(s - m * 60)} s`
}

/** An integer with thousands separators, independent of the reader's locale. */
export function fmtInt(n: number): string {
  const sign = n < 0 ? '−' : ''
  return sign + String(Math.round(Math.abs(n))).replace(/\B(?=(\d{3})+(?!\d))/g, ',')
}

/** A signed percentage with one decimal, e.g. `+12.5 %`, `−3.0 %`, `±0.0 %`. */
export function fmtPct(p: number): string {
  const r = Math.round(p * 10) / 10
  return `${r > 0 ? '+' : r < 0 ? '−' : '±'}${Math.abs(r).toFixed(1)} %`
}

/** An ISO date-time shown in UTC as `2026-11-02 09:14:07 UTC`, the same for every reader. */
export function fmtDate(iso: string): string {
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return iso
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`
}

function sig3(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2)
}

/** The stylesheet both pages start from: type, colours, tables, badges, print and phone rules. */
export const BASE_CSS = `
:root {
  --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa; --bg: #ffffff;
  --ok: #1a7f37; --ok-bg: #dafbe1; --bad: #cf222e; --bad-bg: #ffebe9; --warn: #9a6700; --warn-bg: #fff8c5;
  --err: #8250df; --err-bg: #fbefff; --accent: #0969da; --base: #6e7781;
  --mono: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, "Liberation Mono", monospace;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--fg); background: var(--bg); }
.wrap { max-width: 1080px; margin: 0 auto; padding: 0 20px; }
h1, h2, h3 { line-height: 1.25; }
h2 { font-size: 1.3rem; margin: 2.2rem 0 .8rem; padding-bottom: .3rem; border-bottom: 1px solid var(--line); }
h3 { font-size: 1rem; margin: 0 0 .4rem; }
a { color: var(--accent); }
code, .mono { font-family: var(--mono); font-size: .88em; }
.muted { color: var(--muted); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th { font-size: .8rem; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); background: var(--soft); }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.badge { display: inline-block; padding: .05rem .5rem; border-radius: 999px; font-size: .78rem; font-weight: 600; white-space: nowrap; border: 1px solid transparent; }
.badge.passed, .badge.ready { color: var(--ok); background: var(--ok-bg); border-color: #aceebb; }
.badge.failed, .badge.not-ready { color: var(--bad); background: var(--bad-bg); border-color: #ffcecb; }
.badge.skipped { color: var(--warn); background: var(--warn-bg); border-color: #f5e0a0; }
.badge.errored { color: var(--err); background: var(--err-bg); border-color: #e6ccfd; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; }
button { font: inherit; }
@media (max-width: 640px) {
  body { font-size: 14px; }
  .wrap { padding: 0 12px; }
  th, td { padding: .4rem .35rem; }
}
@media print {
  :root { --soft: #f3f3f3; }
  body { font-size: 10.5pt; }
  .wrap { max-width: none; padding: 0; }
  .no-print { display: none !important; }
  a { color: inherit; text-decoration: none; }
  h2 { break-after: avoid; }
  th, td { padding: .25rem .45rem; }
  tr, .card { break-inside: avoid; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
`
