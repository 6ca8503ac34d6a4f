/**
 * The bench's catalogue of coded errors (the shape is harness/base/errors.ts). Codes are stable
 * (tests and the CLI key on them); the message is one line a user can act on. A `BenchError` is
 * bad input (a job file, generator options, fio's output): exit code 2 in the CLI.
 */
import { defineError, IofError, kindOfExitCode, reviveError, type ErrorFactory } from '../base/errors.js'

/** Every error code the bench raises. */
export const BenchErrorCode = {
  /** A job file or an included file cannot be read. */
  JobRead: 'JobFileRead',
  /** A line is neither a section, an option, a comment nor an include. */
  JobSyntax: 'JobFileSyntax',
  /** A word that is not a fio option at all. */
  JobUnknownOption: 'JobFileUnknownOption',
  /** A real fio option that changes the workload and that the bench does not implement. */
  JobUnsupportedOption: 'JobFileUnsupportedOption',
  /** An option that needs a value was given bare. */
  JobMissingValue: 'JobFileMissingValue',
  /** An option's value cannot be read (bad size suffix, percentage, out of range …). */
  JobBadValue: 'JobFileBadValue',
  /** An include cycle, or sections inside an included file. */
  JobInclude: 'JobFileInclude',
  /** The file defines no job section. */
  JobNoJobs: 'JobFileNoJobs',
  /** Generator options that cannot run (region beyond the disk, bad sizes …). */
  GeneratorOptions: 'GeneratorOptions',
  /** fio ran but failed, or its output is not fio JSON. */
  FioFailed: 'FioFailed',
  /** A document is not fio JSON output. */
  FioJson: 'FioJsonInvalid',
} as const

/** One of the codes of `BenchErrorCode`. */
export type BenchErrorCodeValue = (typeof BenchErrorCode)[keyof typeof BenchErrorCode]

/** A coded bench error, bad input; `message` is the one line to show. */
export class BenchError extends IofError {
  declare readonly code: BenchErrorCodeValue
  constructor(code: BenchErrorCodeValue, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(code, message, options?.details ?? {}, { cause: options?.cause, kind: 'bad-input' })
    this.name = 'BenchError'
  }
}

/** Defines a bench catalogue entry: a factory of BenchErrors of one code. */
function defineBenchError<A extends Record<string, unknown>>(code: BenchErrorCodeValue, template: (args: A) => string): ErrorFactory<A, BenchError> {
  const make = (args: A, cause?: unknown) => new BenchError(code, template(args), { cause, details: args })
  return Object.assign(make, { code, kind: 'bad-input' as const })
}

/** A document that is not fio JSON output. */
export const FioJsonInvalid = defineBenchError<{ reason: string }>(BenchErrorCode.FioJson, a => `not fio JSON output: ${a.reason}`)
/** Generator options (or a job's settings) that cannot run: the message says which and why. */
export const GeneratorOptionsInvalid = defineBenchError<{ message: string }>(BenchErrorCode.GeneratorOptions, a => a.message)
/** fio ran and failed (or timed out); `line` is its last words. */
export const FioRunFailed = defineBenchError<{ how: string; line: string }>(BenchErrorCode.FioFailed, a => `fio failed (${a.how}): ${a.line}`)

// ---- errors of the bench's own machinery (not bad input) ----

/** A bench in a sandboxed subject process that ended without a result (a crash, a timeout, garbage). */
export const SubjectFailed = defineError<{ reason: string }>('SubjectFailed', a => `the sandboxed bench ${a.reason}`)
/** A sandboxed bench's fatal error that came without a code of its own. */
export const BenchFailed = defineError<{ reason: string }>('BenchFailed', a => a.reason, 'harness-fault')
/** A job's pool thread that failed without a code of its own. */
export const BenchJobFailed = defineError<{ jobs: string; reason: string }>('BenchJobFailed', a => `job ${a.jobs}: ${a.reason}`, 'harness-fault')

/**
 * An error of a bench that ran in another thread or process, made whole again from what crossed:
 * a BenchError stays one; another coded error keeps its code and the kind its exit code says;
 * one without a code is `fallback`.
 */
export function benchErrorFrom(wire: { name?: string; code?: string | null; exitCode?: number | null; message: string }, fallback: IofError, prefix = ''): IofError {
  if (wire.name === 'BenchError' && wire.code != null) return new BenchError(wire.code as BenchErrorCodeValue, wire.message)
  if (wire.code == null) return fallback
  return reviveError({ code: wire.code, message: `${prefix}${wire.message}`, kind: kindOfExitCode(wire.exitCode ?? 3) })
}

/** A job file problem, located: the message reads `file:line: what is wrong`. */
export class JobFileError extends BenchError {
  readonly file: string
  /** 1-based line number; 0 when the problem is not on one line (no jobs, a command-line override). */
  readonly line: number
  /** The message without the location prefix. */
  readonly reason: string
  constructor(code: BenchErrorCodeValue, file: string, line: number, reason: string, options?: { cause?: unknown }) {
    super(code, line > 0 ? `${file}:${line}: ${reason}` : `${file}: ${reason}`, options)
    this.name = 'JobFileError'
    this.file = file
    this.line = line
    this.reason = reason
  }
}
