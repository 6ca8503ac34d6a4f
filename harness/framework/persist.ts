/**
 * State files, written so that a process killed at any instant leaves either the old state or the
 * new one:
 * - one file: write a temp file, fsync it, rename it over the old one, fsync the directory
 *   (`writeJsonAtomic`);
 * - several files and disk images at once: a `Transaction`. While one is open for a directory,
 *   state writes under it are kept in memory, new disk images are made aside in
 *   `.iofcert.staging/`, and reads see the transaction's own writes. `commit` writes the new
 *   files aside too and fsyncs them, then writes the commit record `.iofcert.commit` (the commit
 *   point), renames each file into place and removes what the transaction removed. A process
 *   killed before the record is written leaves the old state and some staging garbage; one killed
 *   after it leaves the record, and `recoverDirectory` finishes the commit. Every step of that is
 *   idempotent, so it may itself be killed and run again.
 *
 * Paths kept in state files are relative to the cluster directory (`storedPath`, `loadedPath`),
 * so a copied directory works on its own files.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
// the real one: in a worker that runs filter code (a VM's drives) the global is a stub
import process from 'node:process'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { getEnvironmentData, isMainThread, setEnvironmentData } from 'node:worker_threads'
import { writeFileAtomic as writeAtomic, writeFileSynced, type AtomicWriteOptions } from '../base/atomic-write.js'
import { syncDir, syncFile } from './durable.js'
import { StateFileInvalid, StateFileMissing } from './errors.js'

/** The commit record of a transaction that is being applied. */
export const COMMIT_FILE = '.iofcert.commit'
/** Where a transaction writes its files before they are renamed into place. */
export const STAGING_DIR = '.iofcert.staging'

// ---- crash points: a hook for crash tests, inert unless IOFCERT_TEST_CRASH_AT or IOFCERT_TEST_CRASH_COUNT is set ----

const crashAt = /^[1-9]\d*$/.test(process.env.IOFCERT_TEST_CRASH_AT ?? '') ? Number(process.env.IOFCERT_TEST_CRASH_AT) : 0
const crashCounting = process.env.IOFCERT_TEST_CRASH_COUNT === '1'

/**
 * Whether crash points count (a crash test runs): code on a hot path (a drive's writes) tests
 * this before building a crash point's description.
 */
export const crashArmed = crashAt !== 0 || crashCounting

/** The key under which the main thread hands the crash point counter to its worker threads. */
const CRASH_COUNTER_KEY = 'iofcert.crashPoints'

/**
 * The number of crash points passed, one counter for the whole process: the main thread makes it
 * and every worker thread (a VM's drives) finds it in the environment data workers inherit.
 */
const crashCounter: Int32Array | null = crashArmed ? sharedCrashCounter() : null

function sharedCrashCounter(): Int32Array {
  const inherited = isMainThread ? undefined : getEnvironmentData(CRASH_COUNTER_KEY)
  if (inherited instanceof SharedArrayBuffer) return new Int32Array(inherited)
  const sab = new SharedArrayBuffer(4)
  if (isMainThread) {
    setEnvironmentData(CRASH_COUNTER_KEY, sab)
    // with IOFCERT_TEST_CRASH_COUNT=1 a process that ends tells how many crash points it passed
    if (crashCounting) process.on('exit', () => fs.writeSync(2, `crash points passed: ${Atomics.load(new Int32Array(sab), 0)}\n`))
  }
  return new Int32Array(sab)
}

/**
 * Called before each file operation that changes a cluster's state on disk (also in a VM's
 * worker thread, before its drives write or sync an image or a journal). With
 * `IOFCERT_TEST_CRASH_AT=<n>` in the environment the process kills itself (SIGKILL) at the n-th
 * call of the process, after naming it on stderr; with `IOFCERT_TEST_CRASH_COUNT=1` it prints the
 * number of calls when it exits; without either this does nothing.
 */
export function crashPoint(what: string): void {
  if (crashCounter === null) return
  const n = Atomics.add(crashCounter, 0, 1) + 1
  if (n !== crashAt) return
  try {
    fs.writeSync(2, `crash point ${n}: ${what}\n`)
  } finally {
    process.kill(process.pid, 'SIGKILL')
  }
}

// ---- single files ----

/** Writes `value` as JSON so that a crash at any instant leaves either the old or the new file. */
export function writeJsonAtomic(file: string, value: unknown): void {
  const text = JSON.stringify(value, null, 2) + '\n'
  const tx = transactionOf(file)
  if (tx !== undefined) tx.write(file, text)
  else writeFileAtomic(file, text)
}

/** Reads a JSON state file, or returns `fallback` when there is none. Leftover temp files are ignored. */
export function readJson<T>(file: string, fallback: T): T {
  const pending = transactionOf(file)?.pending(file)
  if (pending === null) return fallback
  if (pending !== undefined) return JSON.parse(pending) as T
  if (!fs.existsSync(file)) return fallback
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T
}

/**
 * Reads a state file that must be there and hold a JSON object. Anything else is one line naming
 * the file and what is wrong: StateFileMissing (`of` says whose state it is) or StateFileInvalid.
 */
export function readStateFile(file: string, of: string): Record<string, unknown> {
  const pending = transactionOf(file)?.pending(file)
  if (pending === null) throw StateFileMissing({ file, of })
  let text = pending
  if (text === undefined) {
    try {
      text = fs.readFileSync(file, 'utf8')
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT') throw StateFileMissing({ file, of }, err)
      throw StateFileInvalid({ file, reason: code === 'EISDIR' ? 'it is a directory' : `it cannot be read (${code ?? (err as Error).message})` }, err)
    }
  }
  if (text.trim() === '') throw StateFileInvalid({ file, reason: 'it is empty' })
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw StateFileInvalid({ file, reason: `it is not JSON (${firstLine(err)})` }, err)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw StateFileInvalid({ file, reason: `it holds ${describe(value)} instead of an object` })
  return value as Record<string, unknown>
}

/** Whether a file is there, as the open transaction (if any) will leave it. */
export function exists(file: string): boolean {
  const tx = transactionOf(file)
  return tx === undefined ? fs.existsSync(file) : tx.exists(file)
}

/** Creates a sparse file of `size` bytes, replacing any file there (made aside while a transaction is open). */
export function createSparseFile(file: string, size: number): void {
  const tx = transactionOf(file)
  if (tx !== undefined) return tx.createFile(file, size)
  crashPoint(`mkdir ${path.dirname(file)}`)
  fs.mkdirSync(path.dirname(file), { recursive: true })
  crashPoint(`remove ${file}`)
  fs.rmSync(file, { force: true })
  makeSparse(file, size)
}

/** Removes a file or a directory tree (when the open transaction, if any, commits). */
export function removePath(p: string): void {
  const tx = transactionOf(p)
  if (tx !== undefined) return tx.remove(p)
  crashPoint(`remove ${p}`)
  fs.rmSync(p, { recursive: true, force: true })
}

/** State files are written durably, a crash point before each step. */
const DURABLE: AtomicWriteOptions = { before: crashPoint, syncFile, syncDir }

function writeFileAtomic(file: string, text: string): void {
  writeAtomic(file, text, DURABLE)
}

function writeSynced(file: string, text: string): void {
  writeFileSynced(file, text, DURABLE)
}

function makeSparse(file: string, size: number): void {
  crashPoint(`create ${file}`)
  const fd = fs.openSync(file, 'w')
  try {
    crashPoint(`truncate ${file}`)
    fs.ftruncateSync(fd, size)
    crashPoint(`fsync ${file}`)
    syncFile(fd)
  } finally {
    fs.closeSync(fd)
  }
}

// ---- transactions ----

const open = new Map<string, Transaction>()

function transactionOf(file: string): Transaction | undefined {
  if (open.size === 0) return undefined
  const abs = path.resolve(file)
  for (const tx of open.values()) if (isInside(tx.root, abs)) return tx
  return undefined
}

/** Starts a transaction over every state file and disk image under `root` (one at a time per directory). */
export function beginTransaction(root: string): Transaction {
  const abs = path.resolve(root)
  for (const other of open.keys()) {
    if (isInside(other, abs) || isInside(abs, other)) throw new Error(`a transaction is already open on ${other}`)
  }
  const tx = new Transaction(abs)
  open.set(abs, tx)
  return tx
}

/** The commit record: paths relative to the cluster directory. */
interface CommitRecord {
  readonly version: 1
  /** [staged file, target], renamed in order. */
  readonly renames: readonly (readonly [string, string])[]
  /** Files and directory trees removed after the renames. */
  readonly removes: readonly string[]
}

/** State changes of one command under one directory, all made or none (see the file comment). */
export class Transaction {
  private readonly writes = new Map<string, string>()
  private readonly created = new Map<string, string>()
  private readonly removed = new Set<string>()
  private staged = 0
  private ended = false

  constructor(readonly root: string) {}

  /** Keeps a file's new contents. */
  write(file: string, text: string): void {
    const abs = this.fresh(file)
    this.writes.set(abs, text)
  }

  /** The contents the transaction gives a state file: text, null when it removes it, undefined when it leaves it alone. */
  pending(file: string): string | null | undefined {
    const abs = path.resolve(file)
    const text = this.writes.get(abs)
    if (text !== undefined) return text
    return this.isRemoved(abs) ? null : undefined
  }

  exists(file: string): boolean {
    const abs = path.resolve(file)
    if (this.writes.has(abs) || this.created.has(abs)) return true
    if (this.isRemoved(abs)) return false
    return fs.existsSync(abs)
  }

  /** Makes a sparse file aside; it replaces `file` at commit. */
  createFile(file: string, size: number): void {
    const abs = this.fresh(file)
    const staging = path.join(this.root, STAGING_DIR)
    crashPoint(`mkdir ${staging}`)
    fs.mkdirSync(staging, { recursive: true })
    const aside = path.join(staging, `${this.staged++}.img`)
    makeSparse(aside, size)
    const before = this.created.get(abs)
    if (before !== undefined) fs.rmSync(before, { force: true })
    this.created.set(abs, aside)
    this.writes.delete(abs)
  }

  /** Removes a file or directory tree at commit, and forgets what the transaction wrote under it. */
  remove(p: string): void {
    const abs = this.own(p)
    for (const f of [...this.writes.keys()]) if (isInside(abs, f)) this.writes.delete(f)
    for (const [f, aside] of [...this.created]) {
      if (!isInside(abs, f)) continue
      fs.rmSync(aside, { force: true })
      this.created.delete(f)
    }
    this.removed.add(abs)
  }

  /** Makes every change durable, all or none (see the file comment). Ends the transaction. */
  commit(): void {
    this.end()
    const staging = path.join(this.root, STAGING_DIR)
    const renames: [string, string][] = []
    for (const [file, text] of this.writes) {
      if (sameText(file, text)) continue
      crashPoint(`mkdir ${staging}`)
      fs.mkdirSync(staging, { recursive: true })
      const aside = path.join(staging, `${this.staged++}.json`)
      writeSynced(aside, text)
      renames.push([aside, file])
    }
    for (const [file, aside] of this.created) renames.push([aside, file])
    const removes = [...this.removed].filter(p => fs.existsSync(p))
    if (renames.length === 0 && removes.length === 0) {
      clearStaging(this.root)
      return
    }
    if (renames.length > 0) {
      crashPoint(`fsync ${staging}`)
      syncDir(staging)
    }
    const record: CommitRecord = { version: 1, renames: renames.map(([a, b]) => [this.rel(a), this.rel(b)] as const), removes: removes.map(p => this.rel(p)) }
    writeFileAtomic(path.join(this.root, COMMIT_FILE), JSON.stringify(record, null, 2) + '\n')
    applyRecord(this.root, record)
  }

  /** Drops every change and the files made aside. Ends the transaction (again: nothing). */
  discard(): void {
    if (this.ended) return
    this.end()
    for (const aside of this.created.values()) fs.rmSync(aside, { force: true })
    this.writes.clear()
    this.created.clear()
    this.removed.clear()
  }

  private end(): void {
    if (this.ended) throw new Error('the transaction has ended')
    this.ended = true
    open.delete(this.root)
  }

  private own(file: string): string {
    const abs = path.resolve(file)
    if (!isInside(this.root, abs) || abs === this.root) throw new Error(`${abs} is not under ${this.root}`)
    return abs
  }

  private fresh(file: string): string {
    const abs = this.own(file)
    // removals come after the renames at commit: a file made under a removed tree would go too
    if (this.isRemoved(abs)) throw new Error(`${abs} is written after its tree was removed in the same transaction`)
    return abs
  }

  private isRemoved(abs: string): boolean {
    for (const r of this.removed) if (isInside(r, abs)) return true
    return false
  }

  private rel(abs: string): string {
    return path.relative(this.root, abs).split(path.sep).join('/')
  }
}

/**
 * Brings a cluster directory to a committed state before anything reads it: finishes a commit a
 * killed process left (its record is there), or removes what an unfinished transaction had made
 * aside (no record), and the temp files of single-file writes that never reached their rename.
 * Call it with the directory's lock held.
 */
export function recoverDirectory(root: string): void {
  const abs = path.resolve(root)
  const file = path.join(abs, COMMIT_FILE)
  if (fs.existsSync(file)) applyRecord(abs, readRecord(file, abs))
  else clearStaging(abs)
  for (const dir of [abs, ...subdirs(path.join(abs, 'hosts'))]) {
    let names: string[]
    try {
      names = fs.readdirSync(dir)
    } catch {
      continue
    }
    for (const n of names) {
      if (!/^\..+\.\d+\.\d+\.tmp$/.test(n) || !/^\.(cluster\.json|lifecycle\.json|state\.json|\.iofcert\.commit)\./.test(n)) continue
      crashPoint(`remove ${n}`)
      fs.rmSync(path.join(dir, n), { force: true })
    }
  }
}

function readRecord(file: string, root: string): CommitRecord {
  const v = readStateFile(file, 'a command that was committing')
  const shape = new StateShape(file)
  const inside = (p: unknown, at: string): string => {
    if (typeof p !== 'string' || p === '' || path.isAbsolute(p) || !isInside(root, path.resolve(root, p))) shape.fail(at, 'a path inside the cluster directory', p)
    return p as string
  }
  if (v.version !== 1) shape.fail('version', '1', v.version)
  const renames = shape.arr(v.renames, 'renames', (r, at) => {
    if (!Array.isArray(r) || r.length !== 2) shape.fail(at, '[from, to]', r)
    const [from, to] = r as unknown[]
    return [inside(from, `${at}[0]`), inside(to, `${at}[1]`)] as const
  })
  const removes = shape.arr(v.removes, 'removes', inside)
  return { version: 1, renames, removes }
}

/** Applies a commit record; each step can be repeated after a crash. */
function applyRecord(root: string, record: CommitRecord): void {
  const dirs = new Set<string>()
  for (const [from, to] of record.renames) {
    const a = path.resolve(root, from)
    const b = path.resolve(root, to)
    // gone: renamed before a crash
    if (!fs.existsSync(a)) continue
    const dir = path.dirname(b)
    if (!fs.existsSync(dir)) {
      crashPoint(`mkdir ${dir}`)
      fs.mkdirSync(dir, { recursive: true })
      dirs.add(path.dirname(dir))
    }
    crashPoint(`rename ${b}`)
    fs.renameSync(a, b)
    dirs.add(dir)
  }
  for (const d of dirs) {
    crashPoint(`fsync ${d}`)
    syncDir(d)
  }
  for (const p of record.removes) {
    crashPoint(`remove ${p}`)
    fs.rmSync(path.resolve(root, p), { recursive: true, force: true })
  }
  crashPoint(`remove ${COMMIT_FILE}`)
  fs.rmSync(path.join(root, COMMIT_FILE), { force: true })
  crashPoint(`fsync ${root}`)
  syncDir(root)
  clearStaging(root)
}

function clearStaging(root: string): void {
  const staging = path.join(root, STAGING_DIR)
  if (!fs.existsSync(staging)) return
  crashPoint(`remove ${staging}`)
  fs.rmSync(staging, { recursive: true, force: true })
}

function subdirs(dir: string): string[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true }).filter(e => e.isDirectory()).map(e => path.join(dir, e.name))
  } catch {
    return []
  }
}

function sameText(file: string, text: string): boolean {
  try {
    return fs.readFileSync(file, 'utf8') === text
  } catch {
    return false
  }
}

// ---- paths kept in state files ----

/** `child` is `parent` or lies under it (both absolute). */
export function isInside(parent: string, child: string): boolean {
  const rel = path.relative(parent, child)
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))
}

/** A path as a state file keeps it: relative to the cluster directory `root` when it lies inside it. */
export function storedPath(root: string, file: string): string {
  const abs = path.resolve(file)
  const base = path.resolve(root)
  return isInside(base, abs) && abs !== base ? path.relative(base, abs).split(path.sep).join('/') : abs
}

/** A path read from a state file: relative ones are relative to the cluster directory `root` (and relative when it is). */
export function loadedPath(root: string, stored: string): string {
  return path.isAbsolute(stored) ? stored : path.join(root, stored)
}

/** A module URL as a state file keeps it: a file under the cluster directory becomes a relative path. */
export function storedUrl(root: string, url: string): string {
  if (!url.startsWith('file:')) return url
  let file: string
  try {
    file = fileURLToPath(url)
  } catch {
    return url
  }
  const stored = storedPath(root, file)
  return path.isAbsolute(stored) ? url : stored
}

/** A module URL read from a state file (see storedUrl). */
export function loadedUrl(root: string, stored: string): string {
  return /^[a-z][a-z0-9+.-]*:/i.test(stored) ? stored : pathToFileURL(path.resolve(root, stored)).href
}

// ---- checking what a state file holds ----

/**
 * Checks the fields of a parsed state file; the first wrong one is StateFileInvalid naming the
 * file, the field (`vms[0].disks[1].capacity`) and what it holds.
 */
export class StateShape {
  constructor(readonly file: string) {}

  fail(at: string, want: string, got: unknown): never {
    throw StateFileInvalid({ file: this.file, reason: `${at} must be ${want}, got ${describe(got)}` })
  }

  obj(v: unknown, at: string): Record<string, unknown> {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(at, 'an object', v)
    return v as Record<string, unknown>
  }

  str(v: unknown, at: string, pattern?: RegExp): string {
    if (typeof v !== 'string' || (pattern !== undefined && !pattern.test(v))) this.fail(at, pattern === undefined ? 'a string' : `a string matching ${String(pattern)}`, v)
    return v as string
  }

  bool(v: unknown, at: string): boolean {
    if (typeof v !== 'boolean') this.fail(at, 'true or false', v)
    return v as boolean
  }

  int(v: unknown, at: string, min = 0): number {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) this.fail(at, `a whole number of at least ${min}`, v)
    return v as number
  }

  num(v: unknown, at: string, min = 0): number {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) this.fail(at, `a number of at least ${min}`, v)
    return v as number
  }

  oneOf<T extends string>(v: unknown, at: string, values: readonly T[]): T {
    if (typeof v !== 'string' || !values.includes(v as T)) this.fail(at, `one of ${values.join(', ')}`, v)
    return v as T
  }

  arr<T>(v: unknown, at: string, item: (x: unknown, at: string) => T): T[] {
    if (!Array.isArray(v)) this.fail(at, 'an array', v)
    return (v as unknown[]).map((x, i) => item(x, `${at}[${i}]`))
  }

  nullable<T>(v: unknown, at: string, f: (x: unknown, at: string) => T): T | null {
    return v === null ? null : f(v, at)
  }
}

/** A value as an error message shows it. */
function describe(v: unknown): string {
  if (v === undefined) return 'nothing'
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  if (typeof v === 'object') return 'an object'
  const text = JSON.stringify(v)
  return text.length > 40 ? `${text.slice(0, 37)}...` : text
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!
}
