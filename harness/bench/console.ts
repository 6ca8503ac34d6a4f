/**
 * The bench's console table, rendered from a fio JSON summary (our document, read back with
 * `parseFioJson`) — never from in-memory state, so the table shows what the document says.
 */
import Table from 'cli-table3'
import { percentileOf, type DirectionSummary, type FioSummary, type JobSummary } from './fio-json.js'

/** Options for `renderBenchTable`. */
export interface BenchTableOptions {
  /** A run of the real fio (null engine) on the same jobs: adds an "ours/fio IOPS" column. */
  readonly fio?: FioSummary | null
  /** Colour the header (default: no colour, as for logs). */
  readonly color?: boolean
}

const us = (ns: number | undefined): string => (ns === undefined ? '–' : (ns / 1000).toFixed(ns < 10_000 ? 2 : 1))
const fixed = (n: number, digits = 0): string => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
const pct = (n: number): string => `${n >= 0 ? '+' : ''}${n.toFixed(1)}%`

/** One row per job and direction that did I/O (on either side). */
export function renderBenchTable(summary: FioSummary, options: BenchTableOptions = {}): string {
  const withBaseline = summary.jobs.some((j) => j.iofcert?.baseline !== undefined)
  const fio = options.fio ?? null
  const head = ['job', 'dir', 'IOPS', 'MB/s', 'p50 µs', 'p99 µs', 'p99.9 µs']
  if (withBaseline) head.push('baseline IOPS', 'overhead IOPS', 'overhead p99')
  if (fio !== null) head.push('fio IOPS', 'ours/fio')
  const table = new Table({
    head,
    colAligns: head.map((_, i) => (i < 2 ? 'left' : 'right')),
    style: { head: options.color === true ? ['cyan'] : [], border: [] },
  })
  summary.jobs.forEach((job, i) => {
    const peer = fio === null ? undefined : matchJob(fio.jobs, job, i)
    for (const dir of ['read', 'write'] as const) {
      const d = job[dir]
      // a direction the filter's side never got to (its VM crashed) still shows beside its baseline
      if (d.totalIos === 0 && (job.iofcert?.baseline?.[dir]?.total_ios ?? 0) === 0) continue
      const row = [job.name, dir, fixed(d.iops), fixed(d.bwBytes / 1e6, 1), us(percentileOf(d.lat, 50)), us(percentileOf(d.lat, 99)), us(percentileOf(d.lat, 99.9))]
      if (withBaseline) {
        const b = job.iofcert?.baseline?.[dir]
        const o = job.iofcert?.overhead
        row.push(b === undefined ? '–' : fixed(b.iops), o === undefined ? '–' : pct(o.iopsPct), o === undefined ? '–' : pct(o.p99Pct))
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

/** fio lists one entry per job copy; ours one per job. Match by name, else by position. */
function matchJob(jobs: readonly JobSummary[], job: JobSummary, index: number): JobSummary | undefined {
  const same = jobs.filter((j) => j.name === job.name)
  if (same.length === 0) return jobs[index]
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
