/** Module-scope trace shared by the tracer filters of one VM worker (one evaluation per worker). */
export const trace: string[] = []
