/**
 * Coded errors of the reports module. Same shape as the framework's errors (`code`,
 * `details`, `exitCode`, `cause`) so one CLI handler serves both, without importing it.
 */

/** An error of the reports module with a stable code and the CLI exit code it maps to. */
export class ReportError extends Error {
  readonly code: string
  readonly details: Readonly<Record<string, unknown>>
  readonly exitCode: number
  constructor(code: string, message: string, details: Record<string, unknown>, exitCode: number, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause })
    this.name = 'ReportError'
    this.code = code
    this.details = details
    this.exitCode = exitCode
  }
}

/** True when `err` is a ReportError, of the given code if one is named. */
export function isReportError(err: unknown, code?: string): err is ReportError {
  return err instanceof ReportError && (code === undefined || err.code === code)
}

/** The harness built a document that fails the schema: it is not written (exit 3, a harness fault). */
export function ReportInvalid(errors: string[], where: string): ReportError {
  return new ReportError('ReportInvalid', `refusing to write an invalid report to ${where}: ${errors.join('; ')}`, { errors, where }, 3)
}

/** A report given as input cannot be read or parsed (exit 2, bad input). */
export function ReportUnreadable(file: string, reason: string, cause?: unknown): ReportError {
  return new ReportError('ReportUnreadable', `cannot read report ${file}: ${reason}`, { file, reason }, 2, cause)
}

/** A report given as input is not a valid report document (exit 2, bad input). */
export function ReportInputInvalid(file: string, errors: string[]): ReportError {
  return new ReportError('ReportInputInvalid', `${file} is not a valid report: ${errors.join('; ')}`, { file, errors }, 2)
}

/** Reports given to merge are not shards of one run (exit 2, bad input). */
export function ReportMergeConflict(reason: string): ReportError {
  return new ReportError('ReportMergeConflict', `cannot merge reports: ${reason}`, { reason }, 2)
}

/** A report failed verification and is not published (exit 1: a result, not a fault). */
export function ReportRefused(file: string, reasons: string[]): ReportError {
  return new ReportError('ReportRefused', `refusing to publish ${file}: ${reasons.join('; ')}`, { file, reasons }, 1)
}

/** A key file given on the command line cannot be read or parsed (exit 2, bad input). */
export function KeyUnreadable(file: string, reason: string, cause?: unknown): ReportError {
  return new ReportError('KeyUnreadable', `cannot read key ${file}: ${reason}`, { file, reason }, 2, cause)
}

/** A trust file given on the command line cannot be read, or is not a valid trust file (exit 2, bad input). */
export function TrustFileInvalid(file: string, reason: string, cause?: unknown): ReportError {
  return new ReportError('TrustFileInvalid', `trust file ${file}: ${reason}`, { file, reason }, 2, cause)
}
