/**
 * The loader context: imports a filter module in a worker that holds no VM and reports its
 * shape, so that no vendor code ever runs on the main thread.
 */
import { parentPort, workerData } from 'node:worker_threads'

const { url } = workerData as { url: string }

async function inspect(): Promise<unknown> {
  const ns = (await import(url)) as Record<string, unknown>
  const mod = ns.default as Record<string, unknown> | undefined
  if (mod === undefined || mod === null || typeof mod !== 'object') return { ok: false, error: 'the module has no default export object' }
  let policySchema: unknown = undefined
  try {
    policySchema = mod.policySchema === undefined ? undefined : structuredClone(mod.policySchema)
  } catch (e) {
    return { ok: false, error: `policySchema cannot be cloned: ${(e as Error).message}` }
  }
  return {
    ok: true,
    shape: {
      abiVersion: mod.abiVersion,
      name: mod.name,
      vendor: mod.vendor,
      version: mod.version,
      class: mod.class,
      policySchema,
      hasOpen: typeof mod.open === 'function',
      hasDaemon: typeof mod.daemon === 'function',
      hasAttach: typeof mod.attach === 'function',
      hasDetach: typeof mod.detach === 'function',
    },
  }
}

inspect().then(
  r => parentPort!.postMessage(r),
  (e: unknown) => parentPort!.postMessage({ ok: false, error: `import failed: ${e instanceof Error ? e.message : String(e)}` }),
)
