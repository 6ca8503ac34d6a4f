/**
 * `iofcert bench` with a vendor package: the job file is read here (it is the user's input, and
 * may include other files), the jobs and the package go to a sandboxed subject process, and its
 * fio-layout document comes back over the subject's channel.
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import * as v8 from 'node:v8'
import { loadJobs, type BenchOptions, type FioJsonDocument, type ProfileEntry } from '../bench/index.js'
import { PackageUnreadable } from '../framework/index.js'
import { resolveSandbox, type SandboxInfo, type SandboxMode } from './os-sandbox.js'
import { benchInSubject } from './supervisor.js'

/** A bench run's bound: far beyond any job file's runtime, short of a run that never ends. */
const BENCH_TIMEOUT_MS = 2 * 60 * 60 * 1000

export async function benchSandboxed(
  pkg: string,
  o: Pick<BenchOptions, 'job' | 'device' | 'vms' | 'runtimeS' | 'version'>,
  mode: SandboxMode,
  onNoSandbox: (s: SandboxInfo) => void,
): Promise<{ doc: FioJsonDocument; profile: ProfileEntry[] | null }> {
  if (!fs.existsSync(pkg)) throw PackageUnreadable({ source: pkg, reason: 'no such file or directory' })
  const jobs = loadJobs(o)
  const sandbox = resolveSandbox(mode, false)
  if (sandbox.kind === 'none') onNoSandbox(sandbox)
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-bench-'))
  try {
    const r = await benchInSubject({
      sandbox,
      package: pkg,
      task: {
        jobs: v8.serialize(jobs).toString('base64'),
        device: o.device ?? 'memory',
        ...(o.vms !== undefined ? { vms: o.vms } : {}),
        version: o.version,
      },
      timeoutMs: BENCH_TIMEOUT_MS,
      memoryCapBytes: 16 * 2 ** 30,
      workDir,
    })
    return { doc: r.doc as FioJsonDocument, profile: (r.profile as ProfileEntry[] | null) ?? null }
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true })
  }
}
