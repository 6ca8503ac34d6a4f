/**
 * The reports module's catalogue of coded errors. Their shape is harness/base/errors.ts (the
 * ground floor, which imports nothing of the project's): `code`, `details`, `kind`, `cause`.
 */

/** An error of the reports module: an IofError (harness/base/errors.ts) of this catalogue's codes. */
export { IofError as ReportError } from '../harness/base/errors.js'
import { defineError, IofError, type ErrorFactory } from '../harness/base/errors.js'

const codes = new Set<string>()
/** Defines an entry of this catalogue (its code is remembered for `isReportError`). */
function define<A extends Record<string, unknown>>(...entry: Parameters<typeof defineError<A>>): ErrorFactory<A> {
  const factory = defineError<A>(...entry)
  codes.add(factory.code)
  return factory
}

/** True when `err` is an error of the reports module, of the given code if one is named. */
export function isReportError(err: unknown, code?: string): err is IofError {
  return err instanceof IofError && codes.has(err.code) && (code === undefined || err.code === code)
}

const Invalid = define<{ errors: string[]; where: string }>('ReportInvalid', a => `refusing to write an invalid report to ${a.where}: ${a.errors.join('; ')}`, 'harness-fault')
const Unreadable = define<{ file: string; reason: string }>('ReportUnreadable', a => `cannot read report ${a.file}: ${a.reason}`, 'bad-input')
const InputInvalid = define<{ file: string; errors: string[] }>('ReportInputInvalid', a => `${a.file} is not a valid report: ${a.errors.join('; ')}`, 'bad-input')
const MergeConflict = define<{ reason: string }>('ReportMergeConflict', a => `cannot merge reports: ${a.reason}`, 'bad-input')
const Refused = define<{ file: string; reasons: string[] }>('ReportRefused', a => `refusing to publish ${a.file}: ${a.reasons.join('; ')}`)
const KeyBad = define<{ file: string; reason: string }>('KeyUnreadable', a => `cannot read key ${a.file}: ${a.reason}`, 'bad-input')
const TrustBad = define<{ file: string; reason: string }>('TrustFileInvalid', a => `trust file ${a.file}: ${a.reason}`, 'bad-input')
/** A report whose verdict, counts or thresholds do not follow from its checks: signed, it would never verify (exit 2). */
export const ReportInconsistent = define<{ file: string; reasons: string[] }>('ReportInconsistent', a => `refusing to sign ${a.file}: its signature would never verify: ${a.reasons.join('; ')}`, 'bad-input')
/** `publish` given no report (exit 2, bad input). */
export const PublishNothing = define('PublishNothing', () => 'no reports to publish', 'bad-input')
/** `publish` into a directory that is not an earlier listing, or not a directory (exit 2, bad input). */
export const PublishTargetInvalid = define<{ outDir: string; why: string }>('PublishTargetInvalid', a => `refusing to publish into ${a.outDir}: ${a.why}`, 'bad-input')

/** The harness built a document that fails the schema: it is not written (exit 3, a harness fault). */
export function ReportInvalid(errors: string[], where: string): IofError {
  return Invalid({ errors, where })
}

/** A report given as input cannot be read or parsed (exit 2, bad input). */
export function ReportUnreadable(file: string, reason: string, cause?: unknown): IofError {
  return Unreadable({ file, reason }, cause)
}

/** A report given as input is not a valid report document (exit 2, bad input). */
export function ReportInputInvalid(file: string, errors: string[]): IofError {
  return InputInvalid({ file, errors })
}

/** Reports given to merge are not shards of one run (exit 2, bad input). */
export function ReportMergeConflict(reason: string): IofError {
  return MergeConflict({ reason })
}

/** A report failed verification and is not published (exit 1: a result, not a fault). */
export function ReportRefused(file: string, reasons: string[]): IofError {
  return Refused({ file, reasons })
}

/** A key file given on the command line cannot be read or parsed (exit 2, bad input). */
export function KeyUnreadable(file: string, reason: string, cause?: unknown): IofError {
  return KeyBad({ file, reason }, cause)
}

/** A trust file given on the command line cannot be read, or is not a valid trust file (exit 2, bad input). */
export function TrustFileInvalid(file: string, reason: string, cause?: unknown): IofError {
  return TrustBad({ file, reason }, cause)
}
