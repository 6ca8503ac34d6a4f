/**
 * The shape of every coded error of iofcert. A part keeps its own catalogue of codes (framework,
 * bench, reports), each code defined once with `defineError`; this module holds only the shape.
 *
 * An error has a stable `code`, structured `details` (the catalogue entry's arguments), a `kind`
 * saying who must act, and, when there is one, the original error as `cause`. The command line
 * turns kinds into exit codes (see harness/cli/exit-codes.ts).
 */

/**
 * Who must act on an error:
 * - `bad-input`: the user gave something unusable (a flag, a file, a name that is not there);
 * - `refused`: the input is well formed, and a rule refuses it (a package, a policy, a host state);
 * - `harness-fault`: iofcert itself failed (an invalid report it built, a crashed bench).
 */
export type ErrorKind = 'bad-input' | 'refused' | 'harness-fault'

/** The exit code a kind has unless a command says otherwise (library callers read it as `exitCode`). */
const KIND_EXIT_CODE: Readonly<Record<ErrorKind, 1 | 2 | 3>> = { refused: 1, 'bad-input': 2, 'harness-fault': 3 }

/** An error with a stable code, structured details and a kind. */
export class IofError extends Error {
  readonly code: string
  readonly details: Readonly<Record<string, unknown>>
  readonly kind: ErrorKind
  constructor(code: string, message: string, details: Record<string, unknown> = {}, options: { cause?: unknown; kind?: ErrorKind } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'IofError'
    this.code = code
    this.details = details
    this.kind = options.kind ?? 'refused'
  }

  /** The kind's usual exit code: 1 refused, 2 bad input, 3 a harness fault. */
  get exitCode(): 1 | 2 | 3 {
    return KIND_EXIT_CODE[this.kind]
  }
}

type Template<A> = (args: A) => string

/** A catalogue entry: call it to make the error; `code` and `kind` say what it makes. */
export type ErrorFactory<A, E extends IofError = IofError> = ((args: A, cause?: unknown) => E) & { readonly code: string; readonly kind: ErrorKind }

/** Defines a coded error factory: `const E = defineError('Code', a => `...`, kind)`; `throw E(args)`. */
export function defineError<A extends Record<string, unknown> = Record<string, never>>(
  code: string,
  template: Template<A>,
  kind: ErrorKind = 'refused',
): ErrorFactory<A> {
  const make = (args: A, cause?: unknown) => new IofError(code, template(args), args, { cause, kind })
  return Object.assign(make, { code, kind })
}

/** True when `err` is an IofError with the given code. */
export function isIofError(err: unknown, code?: string): err is IofError {
  return err instanceof IofError && (code === undefined || err.code === code)
}

/**
 * The kind of an error that crossed a thread or process boundary carrying only its exit code
 * (1 refused, 2 bad input, anything else a harness fault).
 */
export function kindOfExitCode(exitCode: number | null | undefined): ErrorKind {
  return exitCode === 1 ? 'refused' : exitCode === 2 ? 'bad-input' : 'harness-fault'
}

/**
 * An error that crossed a thread or process boundary, made an IofError again: its code was
 * defined in a catalogue on the side that raised it, and is kept.
 */
export function reviveError(wire: { code: string; message: string; details?: Record<string, unknown>; kind?: ErrorKind }, cause?: unknown): IofError {
  return new IofError(wire.code, wire.message, wire.details ?? {}, { cause, kind: wire.kind ?? 'refused' })
}
