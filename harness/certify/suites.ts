import type { CheckDef } from './check.js'

/** The bundled checks in catalogue order (the list in `suites/index.ts`, loaded on first use). */
export async function loadSuites(): Promise<readonly CheckDef[]> {
  return (await import('../../suites/index.js')).CHECKS
}
