/**
 * Inline SVG line charts for the HTML report. Colours come from CSS classes of the page, so a
 * chart follows the page's palette and prints like it. Every label is escaped.
 */
import { esc } from './html-kit.js'

/** One line of a chart; `cls` picks its colour from the page's stylesheet. */
export interface ChartSeries {
  name: string
  cls: string
  points: readonly (readonly [number, number])[]
}

/** A labelled position on an axis. */
export interface ChartTick {
  v: number
  label: string
}

/** What a line chart shows. */
export interface LineChartSpec {
  /** Accessible title, read by screen readers and shown as a tooltip. */
  title: string
  series: readonly ChartSeries[]
  xMin: number
  xMax: number
  xTicks: readonly ChartTick[]
  xLabel: string
  /** Formats a y tick value. */
  yFormat: (v: number) => string
  /** Horizontal reference lines (a limit, a p99). */
  hLines?: readonly { y: number; label: string; cls: string }[]
  /** Shade the area under the first series. */
  area?: boolean
  /** Dots on particular points, e.g. each curve's p99. */
  markers?: readonly { x: number; y: number; cls: string; label: string }[]
  /** viewBox size; pick it near the size the chart is shown at so its text stays legible. */
  width?: number
  height?: number
}

const M = { left: 64, right: 26, top: 14, bottom: 44 }

/** Renders a line chart as an inline SVG element. */
export function lineChart(spec: LineChartSpec): string {
  const W = spec.width ?? 480
  const H = spec.height ?? 250
  const ys = spec.series.flatMap(s => s.points.map(p => p[1]))
  for (const h of spec.hLines ?? []) ys.push(h.y)
  for (const m of spec.markers ?? []) ys.push(m.y)
  const yTicks = niceTicks(Math.max(1, ...ys), 5)
  const yMax = yTicks[yTicks.length - 1]!
  const pw = W - M.left - M.right
  const ph = H - M.top - M.bottom
  const x = (v: number) => M.left + ((v - spec.xMin) / (spec.xMax - spec.xMin || 1)) * pw
  const y = (v: number) => M.top + ph - (v / yMax) * ph
  const f = (n: number) => n.toFixed(1)
  const out: string[] = []
  out.push(`<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" preserveAspectRatio="xMidYMid meet"><title>${esc(spec.title)}</title>`)
  for (const t of yTicks) {
    out.push(`<line class="grid" x1="${M.left}" x2="${W - M.right}" y1="${f(y(t))}" y2="${f(y(t))}"/>`)
    out.push(`<text class="tick" x="${M.left - 6}" y="${f(y(t) + 4)}" text-anchor="end">${esc(spec.yFormat(t))}</text>`)
  }
  for (const t of spec.xTicks) {
    // The last label ends at its tick rather than centring on it, so it never leaves the chart.
    const anchor = x(t.v) > W - M.right - 20 ? 'end' : 'middle'
    out.push(`<line class="grid v" x1="${f(x(t.v))}" x2="${f(x(t.v))}" y1="${M.top}" y2="${M.top + ph}"/>`)
    out.push(`<text class="tick" x="${f(anchor === 'end' ? x(t.v) + 4 : x(t.v))}" y="${M.top + ph + 16}" text-anchor="${anchor}">${esc(t.label)}</text>`)
  }
  out.push(`<line class="axis" x1="${M.left}" x2="${W - M.right}" y1="${M.top + ph}" y2="${M.top + ph}"/>`)
  out.push(`<text class="axis-label" x="${M.left + pw / 2}" y="${H - 6}" text-anchor="middle">${esc(spec.xLabel)}</text>`)
  spec.series.forEach((s, i) => {
    if (s.points.length === 0) return
    const d = s.points.map((p, j) => `${j === 0 ? 'M' : 'L'}${f(x(p[0]))} ${f(y(p[1]))}`).join(' ')
    if (spec.area === true && i === 0) {
      const first = s.points[0]!
      const last = s.points[s.points.length - 1]!
      out.push(`<path class="area ${esc(s.cls)}" d="${d} L${f(x(last[0]))} ${f(y(0))} L${f(x(first[0]))} ${f(y(0))} Z"/>`)
    }
    out.push(`<path class="line ${esc(s.cls)}" d="${d}"><title>${esc(s.name)}</title></path>`)
  })
  for (const m of spec.markers ?? []) {
    out.push(`<circle class="marker ${esc(m.cls)}" cx="${f(x(m.x))}" cy="${f(y(m.y))}" r="3.5"><title>${esc(m.label)}</title></circle>`)
  }
  for (const h of spec.hLines ?? []) {
    out.push(`<line class="hline ${esc(h.cls)}" x1="${M.left}" x2="${W - M.right}" y1="${f(y(h.y))}" y2="${f(y(h.y))}"/>`)
    out.push(`<text class="hline-label ${esc(h.cls)}" x="${W - M.right - 4}" y="${f(y(h.y) - 5)}" text-anchor="end">${esc(h.label)}</text>`)
  }
  out.push('</svg>')
  return out.join('')
}

/** Round tick values from 0 covering `max` in about `count` steps of 1, 2 or 5 × 10^k. */
export function niceTicks(max: number, count: number): number[] {
  const raw = max / count
  const mag = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 2.5, 5, 10].map(m => m * mag).find(s => s >= raw) ?? 10 * mag
  const ticks: number[] = []
  for (let v = 0; v < max + step * 0.999; v += step) ticks.push(Math.round(v * 1e9) / 1e9)
  return ticks
}
