/**
 * The one place an error becomes an exit code. Commands throw coded errors (harness/base/errors.ts)
 * and pass what they catch to `exitCodeOf`; a command's own verdict (certify's 1 for not ready,
 * cluster's 1 for a failed operation, verify's 1 for an invalid report) is its result, not an error.
 *
 * The table of code and kind to exit code is in main.ts's head comment and docs/architecture.md.
 *
 * Bench errors (`BenchError`: a job file, generator options, fio's output) are bad input.
 */
import { CommanderError } from 'commander'
import { IofError } from '../base/errors.js'

/**
 * Which commands an error was thrown in: `bench` and `report` (report …, publish, verify) map by
 * kind; `unhandled` is what reaches the top level, which no command caught (demo's errors too).
 */
export type CommandFamily = 'certify' | 'package' | 'cluster' | 'init' | 'bench' | 'report' | 'unhandled'

/** Codes that, in a cluster command, mean the user named something that is not there, or typed it wrong. */
const CLUSTER_BAD_INPUT = new Set(['HostNotFound', 'VmNotFound', 'DiskNotFound', 'PolicyNotFound', 'VmExists', 'HostExists', 'DiskExists', 'PolicyInvalid', 'DiskCapacityInvalid', 'BadHostName'])

/** The exit code of `err`, thrown while `command` ran (see the table above). */
export function exitCodeOf(err: unknown, command: CommandFamily): number {
  if (err instanceof CommanderError) {
    // help and version exit 0; every other parse error is bad input: exit 2
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help' || err.exitCode === 0) return 0
    return err.code.startsWith('commander.') && err.exitCode === 1 ? 2 : err.exitCode
  }
  if (!(err instanceof IofError)) return 3
  switch (command) {
    case 'certify':
      return err.kind === 'bad-input' ? 2 : 3
    case 'package':
      return err.code === 'PackageRefused' ? 1 : 2
    case 'cluster':
      return err.kind === 'bad-input' || CLUSTER_BAD_INPUT.has(err.code) ? 2 : 1
    case 'init':
      return err.kind === 'refused' ? 1 : 2
    case 'bench':
    case 'report':
      return err.exitCode
    case 'unhandled':
      return 3
  }
}
