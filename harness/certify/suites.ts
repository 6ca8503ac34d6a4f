/** Loads the bundled suites (each file registers its checks at import), in catalogue order. */
const SUITES = ['package', 'ordering', 'integrity', 'isolation', 'exclusivity', 'lifecycle', 'events', 'replication', 'cache', 'nemesis', 'performance'] as const

export async function loadSuites(): Promise<void> {
  for (const s of SUITES) await import(`../../suites/${s}.js`)
}
