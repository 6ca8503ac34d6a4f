#!/usr/bin/env node
/**
 * The `iofcert` command: each subcommand maps its flags to options and calls the library.
 * Exit codes: 0 success (or ready), 1 not ready / refused by a rule, 2 bad input, 3 a fault of
 * the harness that left no report.
 *
 * Errors are coded (harness/base/errors.ts: a code, defined once in its part's catalogue, and a
 * kind: bad-input, refused or harness-fault). Commands throw them; one function, `exitCodeOf` in
 * ./exit-codes.ts, turns what a command caught, or what reaches this handler, into the exit code
 * (it lives beside this file, not in it, so a command registered on its own program maps its
 * errors the same way). A command's verdict — certify's 1 for not ready, cluster's 1 for a failed
 * operation, verify's 1 for an invalid report — is its result, not an error.
 *
 * | command                              | error                                   | exit |
 * |--------------------------------------|-----------------------------------------|------|
 * | any                                  | --help, --version                       | 0    |
 * | any                                  | a parse error of commander's            | 2    |
 * | any                                  | an error that is not coded              | 3    |
 * | demo, or any error no command caught | any                                     | 3    |
 * | certify                              | bad-input                               | 2    |
 * | certify                              | refused, harness-fault (no report made) | 3    |
 * | package, keygen                      | PackageRefused                          | 1    |
 * | package, keygen                      | any other coded error                   | 2    |
 * | cluster …                            | bad-input, or a name that is not there  | 2    |
 * | cluster …                            | any other coded error                   | 1    |
 * | init                                 | refused                                 | 1    |
 * | init                                 | bad-input, harness-fault                | 2    |
 * | bench, report …, publish, verify     | by kind: refused 1, bad-input 2, harness-fault 3 | |
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
import { exitCodeOf } from './exit-codes.js'

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
      process.exitCode = exitCodeOf(e, 'unhandled')
      return
    }
    process.stderr.write(`iofcert: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`)
    process.exitCode = exitCodeOf(e, 'unhandled')
  }
}

await main(process.argv)
