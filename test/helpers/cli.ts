/** Runs the built `iofcert` command as its own process, for tests of the command line. */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** The compiled entry of the `iofcert` command. */
export const CLI_MAIN = fileURLToPath(new URL('../../harness/cli/main.js', import.meta.url))

/** How a run of the command ended. */
export interface CliRun {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** Starts `iofcert <args>` in `cwd`; `done` settles when it exits (the child can be killed meanwhile). */
export function startCli(args: string[], cwd: string, env: Record<string, string> = {}): { child: ReturnType<typeof spawn>; done: Promise<CliRun> } {
  const child = spawn(process.execPath, [CLI_MAIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (b: Buffer) => { stdout += b.toString() })
  child.stderr!.on('data', (b: Buffer) => { stderr += b.toString() })
  const done = new Promise<CliRun>(resolve => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })))
  return { child, done }
}
