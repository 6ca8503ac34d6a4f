/** Atomic state files: write a temp file, fsync it, rename over the old one, fsync the directory. */
import * as fs from 'node:fs'
import * as path from 'node:path'
import { syncFile } from './durable.js'

/** Writes `value` as JSON so that a crash at any instant leaves either the old or the new file. */
export function writeJsonAtomic(file: string, value: unknown): void {
  const dir = path.dirname(file)
  fs.mkdirSync(dir, { recursive: true })
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`)
  const fd = fs.openSync(tmp, 'w')
  try {
    fs.writeSync(fd, JSON.stringify(value, null, 2) + '\n')
    syncFile(fd)
  } finally {
    fs.closeSync(fd)
  }
  fs.renameSync(tmp, file)
  const dfd = fs.openSync(dir, 'r')
  try {
    syncFile(dfd)
  } finally {
    fs.closeSync(dfd)
  }
}

/** Reads a JSON state file, or returns `fallback` when there is none. Leftover temp files are ignored. */
export function readJson<T>(file: string, fallback: T): T {
  if (!fs.existsSync(file)) return fallback
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T
}
