/**
 * Writing a file so that a reader, or a process killed at any instant, sees either the old file or
 * the new one: write a temp file beside it (made durable when asked), rename it over the old one,
 * make the directory durable.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
// the real one: in a worker that runs filter code the global is a stub
import process from 'node:process'

/** What writeFileAtomic and writeFileSynced do beside writing. */
export interface AtomicWriteOptions {
  /**
   * Called before each step that changes the file system, naming it: `mkdir <dir>`,
   * `create <file>`, `write <file>`, `fsync <file>`, `rename <target>`, `fsync <dir>`.
   */
  readonly before?: (what: string) => void
  /** Makes a file's contents durable; without it nothing is synced. */
  readonly syncFile?: (fd: number) => void
  /** Makes a directory's entries durable; without it nothing is synced. */
  readonly syncDir?: (dir: string) => void
}

/**
 * The temp file beside `file` that writeFileAtomic writes first: `.<name>.<pid>.<ms>.tmp`, so
 * that a leftover one names its file and can be recognised and removed.
 */
export function atomicTempPath(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`)
}

/**
 * Writes `text` to `file` through a temp file renamed into place, making the parent directory
 * first. A failure removes the temp file and throws.
 */
export function writeFileAtomic(file: string, text: string, options: AtomicWriteOptions = {}): void {
  const dir = path.dirname(file)
  options.before?.(`mkdir ${dir}`)
  fs.mkdirSync(dir, { recursive: true })
  const tmp = atomicTempPath(file)
  try {
    writeFileSynced(tmp, text, options)
    options.before?.(`rename ${file}`)
    fs.renameSync(tmp, file)
  } catch (err) {
    fs.rmSync(tmp, { force: true })
    throw err
  }
  options.before?.(`fsync ${dir}`)
  options.syncDir?.(dir)
}

/** Creates (or truncates) `file`, writes `text` and syncs it (with `options.syncFile`, when given). */
export function writeFileSynced(file: string, text: string, options: AtomicWriteOptions = {}): void {
  options.before?.(`create ${file}`)
  const fd = fs.openSync(file, 'w')
  try {
    options.before?.(`write ${file}`)
    fs.writeSync(fd, text)
    options.before?.(`fsync ${file}`)
    options.syncFile?.(fd)
  } finally {
    fs.closeSync(fd)
  }
}
