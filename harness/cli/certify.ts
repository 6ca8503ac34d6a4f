/** `iofcert certify`: flags → options → certify() → reports; exit 0 ready, 1 not ready. */
import type { Command } from 'commander'
import { renderConsole } from '../../reports/console.js'
import { certify, parseShard } from '../certify/runner.js'
import { writeOutputs } from '../certify/output.js'
import { IofError } from '../framework/errors.js'

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
}

function int(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined
  if (!/^\d+$/.test(v)) throw new IofError('BadInput', `${name} must be a non-negative integer, got "${v}"`, {}, { exitCode: 2 })
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
    .action(async (pkg: string, f: CertifyFlags) => {
      const toStdout = f.json === '-'
      const log = (s: string) => (toStdout ? process.stderr : process.stdout).write(s)
      const tty = process.stderr.isTTY && !process.env.CI
      try {
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
          ...(tty ? { onCheck: (r, done, total) => process.stderr.write(`\r\x1b[K[${done}/${total}] ${r.id} ${r.status}`) } : {}),
        })
        if (tty) process.stderr.write('\r\x1b[K')
        const written = await writeOutputs(doc, { ...(f.json ? { json: f.json } : {}), ...(f.html ? { html: f.html } : {}), ...(f.junit ? { junit: f.junit } : {}), ...(f.sign ? { sign: f.sign } : {}) })
        log(renderConsole(written, { color: Boolean(tty) }) + '\n')
        for (const [what, p] of [['JSON', f.json], ['HTML', f.html], ['JUnit', f.junit]] as const) if (p && p !== '-') log(`${what} report: ${p}\n`)
        process.exitCode = written.verdict === 'ready' ? 0 : 1
      } catch (e) {
        if (e instanceof IofError) {
          process.stderr.write(`iofcert certify: ${e.message}\n`)
          process.exitCode = e.exitCode === 1 ? 3 : e.exitCode
          return
        }
        process.stderr.write(`iofcert certify: harness fault: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`)
        process.exitCode = 3
      }
    })
}
