/**
 * Reading and writing report files. Every report written is validated first: an invalid
 * document is a fault of the harness and is refused rather than written.
 */
import { readFile } from 'node:fs/promises'
import { createPublicKey } from 'node:crypto'
import { writeFileAtomic } from '../harness/base/atomic-write.js'
import type { CertReport } from './document.js'
import { KeyUnreadable, ReportInputInvalid, ReportInvalid, ReportUnreadable } from './errors.js'
import { renderHtml } from './html.js'
import { renderJunit } from './junit.js'
import { validateReport } from './validate.js'

/** The report as written to a file: two-space indented JSON and a final newline. */
export function serializeReport(doc: CertReport): string {
  return `${JSON.stringify(doc, null, 2)}\n`
}

/**
 * Validates `doc` and writes it to `path`, or to stdout when `path` is `-`. Throws
 * `ReportInvalid` (exit code 3) without writing anything when the document is invalid.
 * The file appears atomically: a reader never sees half a report.
 */
export async function writeReport(path: string, doc: CertReport): Promise<void> {
  await writeReportFiles(doc, { json: path })
}

/** Where writeReportFiles writes a report: each a file, or `-` for stdout. */
export interface ReportTargets {
  /** The report itself, as JSON. */
  readonly json?: string
  /** The report as one self-contained HTML page. */
  readonly html?: string
  /** The report as JUnit XML for CI. */
  readonly junit?: string
  /** The package's path as the user gave it, for the rerun lines of the HTML and JUnit reports. */
  readonly package?: string
}

/**
 * Validates `doc` and writes it in each format asked for, JSON, HTML and JUnit XML in that order,
 * each file appearing atomically. Throws `ReportInvalid` (exit code 3) without writing anything
 * when the document is invalid.
 */
export async function writeReportFiles(doc: CertReport, targets: ReportTargets): Promise<void> {
  const result = validateReport(doc)
  if (!result.ok) {
    const where = [targets.json, targets.html, targets.junit].filter(p => p !== undefined).map(p => (p === '-' ? 'stdout' : p))
    throw ReportInvalid(result.errors, where.join(', '))
  }
  const rendering = targets.package === undefined ? {} : { package: targets.package }
  if (targets.json !== undefined) await writeTextAtomic(targets.json, serializeReport(doc))
  if (targets.html !== undefined) await writeTextAtomic(targets.html, renderHtml(doc, rendering))
  if (targets.junit !== undefined) await writeTextAtomic(targets.junit, renderJunit(doc, rendering))
}

/** Writes text to `path` (stdout for `-`) through a temporary file renamed into place. */
export async function writeTextAtomic(path: string, text: string): Promise<void> {
  if (path === '-') {
    await new Promise<void>((resolve, reject) => process.stdout.write(text, err => (err ? reject(err) : resolve())))
    return
  }
  writeFileAtomic(path, text)
}

/** Reads and parses a JSON file; `fail`'s error (by default `ReportUnreadable`, exit code 2) when it cannot. */
export async function readJsonFile(file: string, fail: (file: string, reason: string, cause?: unknown) => Error = ReportUnreadable): Promise<unknown> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw fail(file, code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : String((err as Error).message), err)
  }
  try {
    return JSON.parse(text) as unknown
  } catch (err) {
    throw fail(file, `not JSON (${(err as Error).message})`, err)
  }
}

/** Reads a report file and validates it; `ReportInputInvalid` (exit code 2) when it is not a report. */
export async function readReport(file: string): Promise<CertReport> {
  const doc = await readJsonFile(file)
  const result = validateReport(doc)
  if (!result.ok) throw ReportInputInvalid(file, result.errors)
  return doc as CertReport
}

/** Reads a PEM public key file; `KeyUnreadable` (exit code 2) when it is missing or not a public key. */
export async function readPublicKeyFile(file: string): Promise<string> {
  let pem: string
  try {
    pem = await readFile(file, 'utf8')
  } catch (err) {
    throw KeyUnreadable(file, (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message, err)
  }
  try {
    createPublicKey(pem)
  } catch (err) {
    throw KeyUnreadable(file, 'not a PEM public key', err)
  }
  return pem
}
