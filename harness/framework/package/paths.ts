/**
 * Path safety shared by the builder and the verifier: what a package path may look like, and
 * a directory walk that reports links and special files instead of following them.
 */
import { lstat, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { IofError, LinkInPackage, PathEscapes, UnsupportedEntry } from '../errors.js'

/** The root file every package holds; it is never listed in `files`. */
export const DESCRIPTOR_FILE = 'descriptor.json'

/** An entry of a package (directory or tarball) that is refused, with why. */
export interface RefusedEntry {
  readonly path: string
  /** `escape`: the path could leave the package; `link`: a symbolic or hard link; `unsupported`: a device, FIFO, socket or duplicate. */
  readonly kind: 'escape' | 'link' | 'unsupported'
  readonly reason: string
}

/** One regular file found by walkTree, by its package path. */
export interface TreeFile {
  readonly path: string
  readonly absolute: string
}

/** What walkTree found: the regular files and the refused entries, both sorted by path. */
export interface Tree {
  readonly files: readonly TreeFile[]
  readonly refused: readonly RefusedEntry[]
}

/**
 * Why `p` is not a plain relative path inside a package, or undefined when it is one.
 * Package paths use `/`, have no empty, `.` or `..` segments, and are never absolute.
 */
export function pathProblem(p: string): string | undefined {
  if (p === '') return 'the path is empty'
  if (p.includes('\0')) return 'the path contains a NUL character'
  if (p.startsWith('/') || /^[A-Za-z]:/.test(p)) return 'the path is absolute'
  // A backslash is a separator on Windows, so `a\..\..\x` could escape there.
  if (p.includes('\\')) return 'the path contains a backslash'
  const segments = p.split('/')
  if (segments.includes('..')) return 'the path leaves the package (..)'
  if (segments.some(s => s === '' || s === '.')) return 'the path is not normalized (empty or "." segment)'
  return undefined
}

/**
 * The package path of a tar entry name: tarballs may name entries with or without a leading
 * `./`, and directories with a trailing `/`. The root itself becomes ''.
 */
export function entryPath(name: string): string {
  let p = name.startsWith('./') ? name.slice(2) : name
  if (p === '.') p = ''
  while (p.endsWith('/') && p.length > 1) p = p.slice(0, -1)
  return p
}

/** The coded error for a refused entry. */
export function refusalError(r: RefusedEntry): IofError {
  switch (r.kind) {
    case 'escape':
      return PathEscapes({ path: r.path, reason: r.reason })
    case 'link':
      return LinkInPackage({ path: r.path, type: r.reason })
    case 'unsupported':
      return UnsupportedEntry({ path: r.path, reason: r.reason })
  }
}

/** Bounds of one walkTree: it throws `tooMany()` past `maxEntries` names, and runs `check` (a deadline) before each directory. */
export interface WalkLimits {
  /** Names seen at most: files, directories and refused entries alike. */
  readonly maxEntries: number
  readonly tooMany: () => Error
  readonly check?: () => void
}

/**
 * Walks `dir` without following anything: symbolic links, files with more than one hard link
 * (their other name may be outside the package) and special files are reported as refused.
 * `skip` holds absolute paths left out of the walk; `limits` bounds it (default: unbounded).
 */
export async function walkTree(dir: string, skip: ReadonlySet<string> = new Set(), limits?: WalkLimits): Promise<Tree> {
  const files: TreeFile[] = []
  const refused: RefusedEntry[] = []
  let seen = 0
  const visit = async (absDir: string, relDir: string): Promise<void> => {
    limits?.check?.()
    const names = (await readdir(absDir)).sort()
    if (limits !== undefined && seen + names.length > limits.maxEntries) throw limits.tooMany()
    seen += names.length
    for (const name of names) {
      const absolute = join(absDir, name)
      if (skip.has(absolute)) continue
      const path = relDir === '' ? name : `${relDir}/${name}`
      const problem = pathProblem(path)
      if (problem !== undefined) {
        refused.push({ path, kind: 'escape', reason: problem })
        continue
      }
      const st = await lstat(absolute)
      if (st.isSymbolicLink()) refused.push({ path, kind: 'link', reason: 'symbolic link' })
      else if (st.isDirectory()) await visit(absolute, path)
      else if (!st.isFile()) refused.push({ path, kind: 'unsupported', reason: `it is a ${specialKind(st)}; only regular files and directories are allowed` })
      else if (st.nlink > 1) refused.push({ path, kind: 'link', reason: 'hard link' })
      else files.push({ path, absolute })
    }
  }
  await visit(dir, '')
  const byPath = (a: { path: string }, b: { path: string }) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)
  return { files: files.sort(byPath), refused: refused.sort(byPath) }
}

function specialKind(st: Awaited<ReturnType<typeof lstat>>): string {
  if (st.isCharacterDevice()) return 'character device'
  if (st.isBlockDevice()) return 'block device'
  if (st.isFIFO()) return 'FIFO'
  if (st.isSocket()) return 'socket'
  return 'special file'
}
