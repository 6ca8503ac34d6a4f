/** `iofcert certify`: flags → options → certify() → reports; exit 0 ready, 1 not ready. */
import type { Command } from 'commander'
import { renderConsole, type CheckResult } from '../../reports/index.js'
import { certify, parseShard } from '../certify/runner.js'
import { readSigningKey, writeOutputs } from '../certify/output.js'
import { BadInput, IofError } from '../framework/index.js'
import { exitCodeOf } from './exit-codes.js'
import type { SandboxMode } from '../certify/os-sandbox.js'

interface CertifyFlags {
  upgradeFrom?: string
  profile?: string
  seed?: string
  quick?: boolean
  certified?: boolean
  grep?: string
  shard?: string
  json?: string
  html?: string
  junit?: string
  sign?: string
  concurrency?: string
  sandbox?: string
  timeout?: string
  checkTimeout?: string
  memory?: string
}

function seconds(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined
  if (!/^\d+(\.\d+)?$/.test(v) || Number(v) <= 0) throw BadInput({ message: `${name} must be a positive number of seconds, got "${v}"` })
  return Number(v)
}

function sandboxMode(v: string | undefined): SandboxMode | undefined {
  if (v === undefined) return undefined
  if (v !== 'auto' && v !== 'bwrap' && v !== 'none') throw BadInput({ message: `--sandbox must be auto, bwrap or none, got "${v}"` })
  return v
}

function int(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined
  if (!/^\d+$/.test(v)) throw BadInput({ message: `${name} must be a non-negative integer, got "${v}"` })
  return Number(v)
}

export function registerCertifyCommand(program: Command): void {
  program
    .command('certify')
    .description('certify a filter package: run the check catalogue and the benchmarks, write the reports')
    .argument('<package>', 'the filter package (.tgz, or its unpacked directory)')
    .option('--upgrade-from <package>', 'an older version of the package, for lifecycle.upgrade')
    .option('--profile <name>', 'threshold profile', 'default')
    .option('--seed <n>', 'seed of every random choice (same seed, same run)', '1')
    .option('--quick', 'smaller workloads, the whole catalogue')
    .option('--certified', 'skips of applicable required checks fail the verdict')
    .option('--grep <re>', 'only the checks whose id matches')
    .option('--shard <i/n>', 'only shard i of n (a stable split of the catalogue)')
    .option('--json <file|->', 'write the JSON report (- for stdout, then nothing else goes there)')
    .option('--html <file>', 'write the HTML report')
    .option('--junit <file>', 'write JUnit XML')
    .option('--sign <private.pem>', 'sign the report with an Ed25519 key')
    .option('--concurrency <n>', 'checks run at once (default 2)')
    .option('--sandbox <mode>', 'where vendor code runs: auto (bubblewrap when it works here), bwrap, or none', 'auto')
    .option('--timeout <s>', "the whole run's wall-clock bound (default 1800 with --quick, else 5400)")
    .option('--check-timeout <s>', "each check's bound, its teardown included (default: the check's own budget + 30 s)")
    .option('--memory <MiB>', 'resident memory the sandboxed subject process may use (default 8192)')
    .action(async (pkg: string, f: CertifyFlags) => {
      const toStdout = f.json === '-'
      const log = (s: string) => (toStdout ? process.stderr : process.stdout).write(s)
      const tty = process.stderr.isTTY && !process.env.CI
      const started = performance.now()
      // on a terminal one line redrawn in place; elsewhere (CI logs) one line per check as it ends
      const progress = (r: CheckResult, done: number, total: number) => {
        const line = `[${done}/${total}] ${r.id} ${r.status} (${(r.durationMs / 1000).toFixed(1)} s)`
        process.stderr.write(tty ? `\r\x1b[K${line}` : `${line}  at ${((performance.now() - started) / 1000).toFixed(0)} s\n`)
      }
      try {
        // a bad signing key is bad input before the run, not after it
        if (f.sign !== undefined) readSigningKey(f.sign)
        const doc = await certify({
          package: pkg,
          ...(f.upgradeFrom !== undefined ? { upgradeFrom: f.upgradeFrom } : {}),
          ...(f.profile !== undefined ? { profile: f.profile } : {}),
          seed: int('--seed', f.seed) ?? 1,
          quick: f.quick === true,
          certified: f.certified === true,
          ...(f.grep !== undefined ? { grep: f.grep } : {}),
          ...(f.shard !== undefined ? { shard: parseShard(f.shard) } : {}),
          ...(f.concurrency !== undefined ? { concurrency: int('--concurrency', f.concurrency)! } : {}),
          ...(sandboxMode(f.sandbox) !== undefined ? { sandbox: sandboxMode(f.sandbox)! } : {}),
          ...(seconds('--timeout', f.timeout) !== undefined ? { timeoutS: seconds('--timeout', f.timeout)! } : {}),
          ...(seconds('--check-timeout', f.checkTimeout) !== undefined ? { checkTimeoutS: seconds('--check-timeout', f.checkTimeout)! } : {}),
          ...(int('--memory', f.memory) !== undefined ? { memoryMiB: int('--memory', f.memory)! } : {}),
          onSandbox: s => {
            if (s.kind === 'none') process.stderr.write(`iofcert certify: WARNING: vendor code runs without an OS sandbox: ${s.reason}. Its files, network and processes are those of this user; the report records it.\n`)
          },
          onCheck: progress,
        })
        if (tty) process.stderr.write('\r\x1b[K')
        const written = await writeOutputs(doc, { ...(f.json ? { json: f.json } : {}), ...(f.html ? { html: f.html } : {}), ...(f.junit ? { junit: f.junit } : {}), ...(f.sign ? { sign: f.sign } : {}), package: pkg })
        log(renderConsole(written, { color: Boolean(tty), package: pkg }) + '\n')
        for (const [what, p] of [['JSON', f.json], ['HTML', f.html], ['JUnit', f.junit]] as const) if (p && p !== '-') log(`${what} report: ${p}\n`)
        process.exitCode = written.verdict === 'ready' ? 0 : 1
      } catch (e) {
        if (e instanceof IofError) {
          process.stderr.write(`iofcert certify: ${e.message}\n`)
          process.exitCode = exitCodeOf(e, 'certify')
          return
        }
        process.stderr.write(`iofcert certify: harness fault: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`)
        process.exitCode = exitCodeOf(e, 'certify')
      }
    })
}
