/** `iofcert demo`: the framework tour. */
import type { Command } from 'commander'
import { runDemo } from '../framework/index.js'

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('build a host and a VM, drive a verified workload through a filter chain, and say what happened')
    .option('--ios <n>', 'number of I/Os', v => Number.parseInt(v, 10), 4000)
    .action(async (opts: { ios: number }) => {
      const r = await runDemo(line => process.stdout.write(`${line}\n`), { ios: opts.ios })
      process.exitCode = r.errors === 0 && r.mismatches === 0 ? 0 : 1
    })
}
