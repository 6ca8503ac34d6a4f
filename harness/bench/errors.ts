/**
 * The bench's coded errors. Codes are stable (tests and the CLI key on them); the message is one
 * line a user can act on. Bad input (a job file, generator options) maps to exit code 2 in the CLI.
 */

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

/** A coded bench error; `message` is the one line to show. */
export class BenchError extends Error {
  readonly code: BenchErrorCodeValue
  constructor(code: BenchErrorCodeValue, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'BenchError'
    this.code = code
  }
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
