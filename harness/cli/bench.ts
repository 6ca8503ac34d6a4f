/** `iofcert bench`: flags → options → runBench() → fio-layout JSON and a console table. */
import type { Command } from 'commander'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { formatFioJson, loadJobs, MAX_LOGGED_IOS, parseFioJson, renderBenchTable, runBench } from '../bench/index.js'
import { benchSandboxed } from '../certify/sandboxed-bench.js'
import type { SandboxMode } from '../certify/os-sandbox.js'
import { BadInput, IofError, type DiskBacking } from '../framework/index.js'
import { exitCodeOf } from './exit-codes.js'
import { TOOL_VERSION } from './version.js'

interface BenchFlags {
  job?: string
  device?: string
  vms?: string
  runtime?: string
  json?: string
  outputFormat?: string
  sandbox?: string
}

function bad(msg: string): never {
  throw BadInput({ message: msg })
}

export function registerBenchCommand(program: Command): void {
  program
    .command('bench')
    .description('run fio job files on the framework (baseline and, given a package, with the filter); fio-layout JSON out')
    .argument('[package]', 'a filter package to measure against the no-filter baseline')
    .option('--job <file.fio>', 'fio job file (default: 4 KiB 70/30 random mix, QD 32)')
    .option('--device <memory|file|null>', 'disk backing (null keeps no data: the I/O path alone, as fio\'s null engine)', 'memory')
    .option('--vms <n>', 'copies of every job, as numjobs (default: the job\'s numjobs); each a VM unless copies share a file')
    .option('--runtime <s>', "runtime of the jobs whose file sets none, as fio's --runtime (the standard job: how long it runs, default 5)")
    .option('--json <file|->', 'write fio-layout JSON (- for stdout, then only JSON goes there)')
    .option('--output-format <normal|json|json+>', "as fio's: json or json+ (fio's latency bins added) write the document to --json's file, or to stdout without --json", 'normal')
    .option('--sandbox <mode>', "where the package's code runs: auto (bubblewrap when it works here), bwrap, or none", 'auto')
    .action(async (pkg: string | undefined, f: BenchFlags) => {
      const format = f.outputFormat ?? 'normal'
      // as fio: --output-format=json without a file writes the document to stdout
      const toStdout = f.json === '-' || (f.json === undefined && (format === 'json' || format === 'json+'))
      const info = (s: string) => (toStdout ? process.stderr : process.stdout).write(s)
      const tty = process.stderr.isTTY && !process.env.CI && !toStdout
      try {
        if (f.device !== 'memory' && f.device !== 'file' && f.device !== 'null') bad(`--device must be memory, file or null, got "${f.device}"`)
        const vms = f.vms === undefined ? undefined : /^[1-9]\d*$/.test(f.vms) ? Number(f.vms) : bad(`--vms must be a positive integer, got "${f.vms}"`)
        const runtimeS = f.runtime === undefined ? undefined : /^\d+(\.\d+)?$/.test(f.runtime) && Number(f.runtime) > 0 ? Number(f.runtime) : bad(`--runtime must be a positive number of seconds, got "${f.runtime}"`)
        if (f.job !== undefined && !fs.existsSync(f.job)) bad(`cannot read job file ${f.job}`)
        if (f.sandbox !== 'auto' && f.sandbox !== 'bwrap' && f.sandbox !== 'none') bad(`--sandbox must be auto, bwrap or none, got "${f.sandbox}"`)
        if (format !== 'normal' && format !== 'json' && format !== 'json+') bad(`--output-format must be normal, json or json+, got "${format}"`)
        if (format === 'json+' && pkg !== undefined) bad('--output-format json+ is not available when a package is benchmarked: the sandboxed run returns fio\'s json layout')
        const options = {
          ...(f.job !== undefined ? { job: f.job } : {}),
          device: f.device as DiskBacking,
          ...(vms !== undefined ? { vms } : {}),
          ...(runtimeS !== undefined ? { runtimeS } : {}),
          version: TOOL_VERSION,
        }
        // a package's code runs only in a sandboxed subject process; the bare path runs here
        const { doc, profile, logs } = pkg === undefined
          ? await runBench({ ...options, ...(format === 'json+' ? { outputFormat: 'json+' as const } : {}), ...(tty ? { onProgress: (l: string) => process.stderr.write(`\r\x1b[K${l}`) } : {}) })
          : { ...(await benchSandboxed(pkg, options, f.sandbox as SandboxMode, s => info(`iofcert bench: WARNING: the package's code runs without an OS sandbox: ${s.reason}\n`))), logs: null }
        if (tty) process.stderr.write('\r\x1b[K')
        const text = formatFioJson(doc)
        if (toStdout) process.stdout.write(text)
        else if (f.json !== undefined) {
          fs.mkdirSync(path.dirname(path.resolve(f.json)), { recursive: true })
          fs.writeFileSync(f.json, text)
        }
        info(`${renderBenchTable(parseFioJson(text))}\n`)
        for (const j of doc.jobs) if (j.iofcert.status !== 'ok') info(`job ${j.jobname}: ${j.iofcert.status}: ${j.iofcert.message ?? ''}\n`)
        if (profile && profile.length > 0) {
          const errors = new Set(profile.map(p => p.error))
          const only = errors.size === 1 ? [...errors][0] : undefined
          info(`filter profile (tinybench, in the VM worker): ${only !== undefined ? `not measured (${only})` : profile.map(p => (p.error !== undefined ? `${p.handler} ${p.op} not measured (${p.error})` : `${p.handler} ${p.op} ${p.nsPerOp} ns ±${p.rmePct}%`)).join(', ')}\n`)
        }
        const ignored = [...new Set(doc.jobs.flatMap(j => (j.iofcert?.ignoredOptions ?? []).map(o => o.option)))]
        if (ignored.length > 0) info(`ignored options (why: iofcert.ignoredOptions in the JSON): ${ignored.join(', ')}\n`)
        if (logs !== null) {
          info(`log files: ${logs.files.map(l => path.relative(process.cwd(), l) || l).join(', ')}\n`)
          for (const t of logs.truncated) info(`iofcert bench: WARNING: job ${t.name}: the per-I/O log stops after its first ${MAX_LOGGED_IOS.toLocaleString('en-US')} I/Os (${t.dropped.toLocaleString('en-US')} more not logged); set log_avg_msec for windowed entries\n`)
        }
        if (pkg !== undefined && loadJobs(options).some(j => j.logs.bw !== null || j.logs.iops !== null || j.logs.lat !== null)) {
          info('iofcert bench: log files (write_bw_log, write_iops_log, write_lat_log) are not written when a package is benchmarked: the sandboxed run cannot write here\n')
        }
        if (f.json !== undefined && !toStdout) info(`JSON: ${f.json}\n`)
        const failed = doc.jobs.some(j => j.error !== 0)
        process.exitCode = failed ? 1 : 0
      } catch (e) {
        // a BenchError (a job file, generator options, fio's output) is an IofError of kind bad-input
        if (e instanceof IofError) process.stderr.write(`iofcert bench: ${e.message}\n`)
        else process.stderr.write(`iofcert bench: harness fault: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`)
        process.exitCode = exitCodeOf(e, 'bench')
      }
    })
}
