#!/usr/bin/env node
/**
 * The `iofcert` command: each subcommand maps its flags to options and calls the library.
 * Exit codes: 0 success (or ready), 1 not ready / refused by a rule, 2 bad input, 3 a fault of
 * the harness that left no report.
 */
import { Command, CommanderError } from 'commander'
import { registerClusterCommands } from './cluster.js'
import { registerPackageCommands } from './package.js'
import { registerReportCommands } from './reports.js'
import { registerDemoCommand } from './demo.js'
import { registerCertifyCommand } from './certify.js'
import { registerBenchCommand } from './bench.js'
import { registerInitCommand } from './init.js'
import { TOOL_VERSION } from './version.js'

export function buildProgram(): Command {
  const program = new Command()
  program
    .name('iofcert')
    .description('framework, benchmark and certification harness for VAIO-style I/O filters')
    .version(TOOL_VERSION)
    .showHelpAfterError('(run iofcert --help for usage)')
    .exitOverride()
  registerCertifyCommand(program)
  registerBenchCommand(program)
  registerDemoCommand(program)
  registerInitCommand(program)
  registerPackageCommands(program)
  registerClusterCommands(program)
  registerReportCommands(program)
  return program
}

async function main(argv: string[]): Promise<void> {
  const program = buildProgram()
  for (const c of program.commands) c.exitOverride()
  try {
    await program.parseAsync(argv)
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version exit 0; every other parse error is bad input: exit 2
      process.exitCode = e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help' ? 0 : e.exitCode === 0 ? 0 : e.code.startsWith('commander.') && e.exitCode === 1 ? 2 : e.exitCode
      return
    }
    process.stderr.write(`iofcert: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`)
    process.exitCode = 3
  }
}

await main(process.argv)
