/**
 * Running a pipeline of small named checks, each throwing its error, either to the first failure
 * or (collecting) through every step, each result recorded.
 */

/** One step's result; a failure carries the error it raised. */
export type StepOutcome<N extends string, E> =
  | { readonly name: N; readonly ok: true }
  | { readonly name: N; readonly ok: false; readonly error: E }

/** How runSteps treats a failing step. */
export interface StepRunOptions<N extends string, E> {
  /** Record a failing step and go on instead of throwing its error. */
  readonly collect: boolean
  /** The errors a step may fail with when collecting; any other error is thrown. */
  readonly collectable: (err: unknown) => err is E
  /** Asked before each step with the results so far: true ends the run there. */
  readonly stop?: (results: readonly StepOutcome<N, E>[]) => boolean
}

/**
 * Runs `steps[name]` for each of `names` in order. A step that throws ends the run with its error,
 * unless the run collects and the error is collectable: then the step is recorded as failed and
 * the next one runs. Returns each step's result, in order.
 */
export async function runSteps<N extends string, E>(
  names: readonly N[],
  steps: Readonly<Record<N, () => unknown>>,
  options: StepRunOptions<N, E>,
): Promise<StepOutcome<N, E>[]> {
  const results: StepOutcome<N, E>[] = []
  for (const name of names) {
    if (options.stop?.(results) === true) break
    try {
      await steps[name]()
      results.push({ name, ok: true })
    } catch (err) {
      if (!options.collect || !options.collectable(err)) throw err
      results.push({ name, ok: false, error: err })
    }
  }
  return results
}
