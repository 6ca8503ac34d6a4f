/** For the tests that put `iofcert bench` beside the real fio and its helper scripts. */
import { execFile, spawnSync } from 'node:child_process'

/** Why the tests that need fio are skipped here, or false when fio is installed. */
export const fioMissing: string | false = spawnSync('fio', ['--version'], { encoding: 'utf8' }).status === 0 ? false : 'fio is not installed here (apt-get install fio; CI installs it)'

/** How a program run ended. */
export interface ProgramRun {
  code: number
  stdout: string
  stderr: string
}

/** Runs a program to its end (in `cwd` if given), with CI=1 so nothing asks for a terminal. */
export function runProgram(file: string, args: string[], cwd?: string): Promise<ProgramRun> {
  return new Promise((resolve) => {
    execFile(file, args, { maxBuffer: 64 << 20, env: { ...process.env, CI: '1' }, ...(cwd ? { cwd } : {}) }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}
