/**
 * fio's log files (write_bw_log, write_iops_log, write_lat_log) from what the generator logged,
 * named and laid out as fio 3.33 writes them, so fio's own tools (fio2gnuplot,
 * fio_generate_plots) read ours.
 *
 * Names: `<prefix>_bw.<n>.log`, `_iops`, and for latency `_lat`, `_clat` and `_slat`, where the
 * prefix is the option's value (the job's name for a bare `write_bw_log`) and `n` the job's
 * number, 1 … N over every copy of every job in file order (fio's thread number); with
 * `per_job_logs=0` no number, and the copies append to one file (fio opens it for appending, so
 * it grows over runs too, as fio's does).
 *
 * Lines: `time, value, direction, block size[, offset], priority` — time in ms from the start of
 * the job's statistics, direction 0 read, 1 write; the offset only with `log_offset=1`; the
 * priority 0, or `0x0000` (fio's hexadecimal form) with `log_prio=1` (the bench issues no
 * priorities). Windowed entries (`log_avg_msec` > 0, and every bandwidth or IOPS sample) carry
 * block size and offset 0, as fio's.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import type { GeneratorResult } from './generator.js'
import type { JobSpec } from './jobfile.js'

/** One copy of a job whose logs are written. */
export interface LogCopy {
  /** The job's logs and sample intervals. */
  readonly spec: Pick<JobSpec, 'logs' | 'bwAvgMs' | 'iopsAvgMs'>
  /** The copy's name in fio's report (the default log prefix). */
  readonly name: string
  /** fio's job number of the copy: 1 … N over every copy of every job, in file order. */
  readonly number: number
  readonly result: GeneratorResult
}

/** What `writeFioLogs` wrote. */
export interface WrittenLogs {
  readonly files: readonly string[]
  /** Copies whose per-I/O records stopped at MAX_LOGGED_IOS: their name and the I/Os left out. */
  readonly truncated: readonly { readonly name: string; readonly dropped: number }[]
}

/** Lines per write while a file is written. */
const CHUNK_LINES = 65536

/**
 * Writes the log files of `copies` under `dir` (a relative prefix is relative to it, as fio's
 * are to its working directory).
 */
export function writeFioLogs(copies: readonly LogCopy[], dir: string): WrittenLogs {
  const written: string[] = []
  const truncated: { name: string; dropped: number }[] = []
  const opened = new Set<string>()
  const emit = (file: string, perJob: boolean, fill: (out: string[], flush: () => void) => void): void => {
    const full = path.resolve(dir, file)
    // per_job_logs=0: every copy appends to one file, as fio (which opens it for appending)
    const flag = !perJob || opened.has(full) ? 'a' : 'w'
    opened.add(full)
    fs.mkdirSync(path.dirname(full), { recursive: true })
    const fd = fs.openSync(full, flag)
    try {
      const out: string[] = []
      const flush = (): void => {
        if (out.length === 0) return
        fs.writeSync(fd, `${out.join('\n')}\n`)
        out.length = 0
      }
      fill(out, flush)
      flush()
    } finally {
      fs.closeSync(fd)
    }
    if (!written.includes(full)) written.push(full)
  }
  for (const c of copies) {
    const logs = c.result.logs
    const l = c.spec.logs
    if (logs === undefined || (l.bw === null && l.iops === null && l.lat === null)) continue
    if (logs.dropped > 0) truncated.push({ name: c.name, dropped: logs.dropped })
    const name = (prefix: string, kind: string): string => `${prefix === '' ? c.name : prefix}_${kind}${l.perJob ? `.${c.number}` : ''}.log`
    const prio = l.prio ? '0x0000' : '0'
    const line = (t: number, v: number, d: number, bs: number, off: number): string => (l.offset ? `${t}, ${v}, ${d}, ${bs}, ${off}, ${prio}` : `${t}, ${v}, ${d}, ${bs}, ${prio}`)
    const windowed = (entries: readonly number[]) => (out: string[], flush: () => void): void => {
      for (let i = 0; i < entries.length; i += 3) {
        out.push(line(entries[i]!, entries[i + 1]!, entries[i + 2]!, 0, 0))
        if (out.length >= CHUNK_LINES) flush()
      }
    }
    const perIo = (value: (ns: number, bytes: number) => number) => (out: string[], flush: () => void): void => {
      const r = logs.ios
      if (r === null) return
      for (let i = 0; i < r.length; i += 5) {
        out.push(line(r[i]!, value(r[i + 1]!, r[i + 3]!), r[i + 2]!, r[i + 3]!, r[i + 4]!))
        if (out.length >= CHUNK_LINES) flush()
      }
    }
    // a bandwidth or IOPS log has an entry per I/O when its samples are (log_avg_msec=0 and no
    // bwavgtime/iopsavgtime of the job's own)
    const bwPerIoMode = c.spec.bwAvgMs === null && l.avgMs === 0
    const iopsPerIoMode = c.spec.iopsAvgMs === null && l.avgMs === 0
    if (l.lat !== null) {
      // the bench measures one latency, issue → completion: lat and clat alike; slat has no
      // samples, and its file is empty (as fio's for a synchronous submission)
      const fill = l.avgMs === 0 ? perIo((ns) => ns) : windowed(logs.lat)
      emit(name(l.lat, 'lat'), l.perJob, fill)
      emit(name(l.lat, 'slat'), l.perJob, () => undefined)
      emit(name(l.lat, 'clat'), l.perJob, fill)
    }
    if (l.bw !== null) emit(name(l.bw, 'bw'), l.perJob, bwPerIoMode ? perIo(bwPerIo) : windowed(logs.bw))
    if (l.iops !== null) emit(name(l.iops, 'iops'), l.perJob, iopsPerIoMode ? perIo(() => 1) : windowed(logs.iops))
  }
  return { files: written, truncated }
}

/** fio's per-I/O bandwidth entry: bytes × 10^6 / latency in ns (0 for no measurable time). */
function bwPerIo(ns: number, bytes: number): number {
  return ns > 0 ? Math.floor((bytes * 1e6) / ns) : 0
}
