/**
 * The bench's console table, rendered from a fio JSON summary (our document, read back with
 * `parseFioJson`) — never from in-memory state, so the table shows what the document says.
 */
import Table from 'cli-table3'
import { fmtPct } from '../../reports/index.js'
import { percentileOf, readDirection, type DirectionSummary, type FioSummary, type JobSummary } from './fio-json.js'

/** Options for `renderBenchTable`. */
export interface BenchTableOptions {
  /** A run of the real fio (null engine) on the same jobs: adds an "ours/fio IOPS" column. */
  readonly fio?: FioSummary | null
  /** Colour the header (default: no colour, as for logs). */
  readonly color?: boolean
}

const us = (ns: number | undefined): string => (ns === undefined ? '–' : (ns / 1000).toFixed(ns < 10_000 ? 2 : 1))
const fixed = (n: number, digits = 0): string => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })

/**
 * MB/s (10^6 bytes a second): one decimal from 1 MB/s up, two significant digits below, so a
 * low-rate job reads 0.41 or 0.041 rather than 0.4 or 0.0.
 */
function fmtMBps(bytesPerS: number): string {
  const mb = bytesPerS / 1e6
  if (!(mb > 0)) return '0.0'
  if (mb >= 1) return fixed(mb, 1)
  return mb.toFixed(Math.min(6, 1 - Math.floor(Math.log10(mb))))
}

/** The filtered side's change against the no-filter baseline, % of the baseline's value. */
const change = (filtered: number | undefined, baseline: number | undefined): string =>
  filtered === undefined || baseline === undefined || !(baseline > 0) ? '–' : fmtPct(((filtered - baseline) / baseline) * 100)

/**
 * One row per job and direction that did I/O (on either side). With a baseline, each row compares
 * its direction with the same direction of the no-filter run: `IOPS vs no filter` and
 * `p99 vs no filter` are the filtered side's change of that metric (`IOPS −6.7 %`: 6.7 % fewer
 * IOPS with the filter; `p99 +12.0 %`: a p99 12 % higher).
 */
export function renderBenchTable(summary: FioSummary, options: BenchTableOptions = {}): string {
  const withBaseline = summary.jobs.some((j) => j.iofcert?.baseline !== undefined)
  const fio = options.fio ?? null
  const head = ['job', 'dir', 'IOPS', 'MB/s', 'p50 µs', 'p99 µs', 'p99.9 µs']
  if (withBaseline) head.push('baseline IOPS', 'IOPS vs no filter', 'p99 vs no filter')
  if (fio !== null) head.push('fio IOPS', 'ours/fio')
  const table = new Table({
    head,
    colAligns: head.map((_, i) => (i < 2 ? 'left' : 'right')),
    style: { head: options.color === true ? ['cyan'] : [], border: [] },
  })
  summary.jobs.forEach((job, i) => {
    const peer = fio === null ? undefined : matchJob(fio.jobs, job, i, summary.jobs.filter((j) => j.name === job.name).length, summary.jobs.slice(0, i).filter((j) => j.name === job.name).length)
    for (const dir of ['read', 'write'] as const) {
      const d = job[dir]
      // a direction the filter's side never got to (its VM crashed) still shows beside its baseline
      if (d.totalIos === 0 && (job.iofcert?.baseline?.[dir]?.total_ios ?? 0) === 0) continue
      const row = [job.name, dir, fixed(d.iops), fmtMBps(d.bwBytes), us(percentileOf(d.lat, 50)), us(percentileOf(d.lat, 99)), us(percentileOf(d.lat, 99.9))]
      if (withBaseline) {
        const raw = job.iofcert?.baseline?.[dir]
        const b = raw === undefined ? undefined : readDirection(raw)
        // no overhead in the document: the filter's side measured nothing (its VM crashed)
        const measured = b !== undefined && job.iofcert?.overhead !== undefined
        row.push(
          b === undefined ? '–' : fixed(b.iops),
          measured ? change(d.iops, b.iops) : '–',
          measured ? change(percentileOf(d.lat, 99), percentileOf(b.lat, 99)) : '–',
        )
      }
      if (fio !== null) {
        const f: DirectionSummary | undefined = peer?.[dir]
        row.push(f === undefined ? '–' : fixed(f.iops), f === undefined || f.iops === 0 ? '–' : `${(d.iops / f.iops).toFixed(2)}×`)
      }
      table.push(row)
    }
  })
  return table.toString()
}

/**
 * The entry of fio's run that matches ours: by name, the k-th of that name when both list as many
 * (a copy each), else fio's copies added up (ours one entry for several: group_reporting on our
 * side only); by position when no name matches.
 */
function matchJob(jobs: readonly JobSummary[], job: JobSummary, index: number, ourCount: number, ourNth: number): JobSummary | undefined {
  const same = jobs.filter((j) => j.name === job.name)
  if (same.length === 0) return jobs[index]
  if (same.length === ourCount) return same[ourNth]
  if (same.length === 1) return same[0]
  // Several copies (numjobs): add them up so IOPS compare with our merged entry.
  const sum = (dir: 'read' | 'write'): DirectionSummary => {
    const first = same[0]![dir]
    return {
      ...first,
      iops: same.reduce((s, j) => s + j[dir].iops, 0),
      bwBytes: same.reduce((s, j) => s + j[dir].bwBytes, 0),
      ioBytes: same.reduce((s, j) => s + j[dir].ioBytes, 0),
      totalIos: same.reduce((s, j) => s + j[dir].totalIos, 0),
    }
  }
  return { ...same[0]!, read: sum('read'), write: sum('write') }
}
