/**
 * Which files of a filter's directory go into its package: the files its package.json `files`
 * array names (or the whole tree without one), and the production closure of its npm
 * dependencies, copied under `node_modules/` as npm laid them out.
 */
import { lstat, readFile, realpath, stat } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { BadInput, EntryMissing, PackageUnreadable } from '../errors.js'
import { DESCRIPTOR_FILE, pathProblem, refusalError, walkTree, type RefusedEntry, type TreeFile } from './paths.js'

/** The npm manifest of a directory; its "type" decides how the package's `.js` files load. */
export const MANIFEST_FILE = 'package.json'

/** The package that provides `iofcert/sdk` to filters: the framework, never bundled. */
const FRAMEWORK_PACKAGE = 'iofcert'

/** A dependency bundled in a package. */
export interface BundledPackage {
  /** Its npm name, e.g. `tiny-dep` or `@acme/util`. */
  readonly name: string
  /** `version` of its package.json, when it has one. */
  readonly version?: string
  /** Its directory in the package, e.g. `node_modules/tiny-dep`. */
  readonly path: string
  /** The directory its files were copied from. */
  readonly source: string
}

/** The files chosen for a package (descriptor.json aside), sorted by package path. */
export interface FileSelection {
  /** `files` when package.json lists the files, `tree` when every file of the directory goes in. */
  readonly mode: 'files' | 'tree'
  readonly files: readonly TreeFile[]
  /** The production dependency closure, by package path; empty without a package.json. */
  readonly bundled: readonly BundledPackage[]
}

/**
 * Chooses the files of the package built from `root`, leaving out the absolute paths in `skip`
 * (the output tarball). With a package.json holding a `files` array: package.json, the files
 * and directories that array matches, and the production dependency closure. Without one: every
 * regular file of the tree, except that with a package.json the root `node_modules` holds only
 * the production closure. Throws the path refusals of the files chosen (links, special files),
 * EntryMissing when `entry` is not among them, and BadInput for a package.json, `files` pattern
 * or dependency that cannot be honoured.
 */
export async function selectFiles(root: string, entry: string, skip: ReadonlySet<string>): Promise<FileSelection> {
  const manifest = await readManifest(join(root, MANIFEST_FILE), root)
  const rootModules = join(root, 'node_modules')
  const excluded = new Set([...skip, join(root, DESCRIPTOR_FILE)])
  if (manifest !== undefined) excluded.add(rootModules)
  const tree = await walkTree(root, excluded)

  let mode: FileSelection['mode'] = 'tree'
  let own: readonly TreeFile[] = tree.files
  let refused: readonly RefusedEntry[] = tree.refused
  if (manifest !== undefined && manifest.files !== undefined) {
    mode = 'files'
    const patterns = filePatterns(manifest.files)
    const chosen = (p: string) => p === MANIFEST_FILE || matches(patterns, p)
    const present = [DESCRIPTOR_FILE, ...tree.files.map(f => f.path), ...tree.refused.map(r => r.path)]
    for (const pattern of patterns.include) {
      if (!present.some(p => matches({ include: [pattern], exclude: [] }, p))) {
        throw BadInput({ message: `${MANIFEST_FILE} "files" lists "${pattern.text}", which matches no file in ${root}` })
      }
    }
    own = tree.files.filter(f => chosen(f.path))
    refused = tree.refused.filter(r => chosen(r.path))
  }
  const firstRefused = refused[0]
  if (firstRefused !== undefined) throw refusalError(firstRefused)
  if (!own.some(f => f.path === entry)) {
    throw EntryMissing({ entry, reason: mode === 'files' ? `is not in the package: ${MANIFEST_FILE} "files" in ${root} does not include it` : `is not a file in ${root}` })
  }

  const bundled = manifest === undefined ? [] : await dependencyClosure(root, manifest)
  const files = [...own]
  for (const dep of bundled) {
    const depTree = await walkTree(dep.source, new Set([join(dep.source, 'node_modules')]))
    const depRefused = depTree.refused[0]
    if (depRefused !== undefined) throw refusalError({ ...depRefused, path: `${dep.path}/${depRefused.path}` })
    for (const f of depTree.files) files.push({ path: `${dep.path}/${f.path}`, absolute: f.absolute })
  }
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  return { mode, files, bundled }
}

/** How many of `paths` lie in a `node_modules` directory, and how many packages are bundled there. */
export function bundledCounts(paths: readonly string[]): { files: number; packages: number } {
  let files = 0
  let packages = 0
  for (const p of paths) {
    if (!p.split('/').includes('node_modules')) continue
    files++
    if (/(^|\/)node_modules\/(@[^/]+\/)?[^/@][^/]*\/package\.json$/.test(p)) packages++
  }
  return { files, packages }
}

interface Manifest {
  readonly files?: unknown
  readonly version?: unknown
  readonly dependencies?: unknown
  readonly optionalDependencies?: unknown
  readonly peerDependencies?: unknown
}

/** Reads an npm package.json; undefined when there is none. */
async function readManifest(file: string, source: string): Promise<Manifest | undefined> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw PackageUnreadable({ source, reason: `cannot read ${file}: ${(err as Error).message}` }, err)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw PackageUnreadable({ source, reason: `${file} is not valid JSON (${(err as Error).message})` }, err)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw PackageUnreadable({ source, reason: `${file} is not a JSON object` })
  return parsed as Manifest
}

// ---- `files` patterns ----

interface Pattern {
  readonly text: string
  readonly regex: RegExp
}

interface Patterns {
  readonly include: readonly Pattern[]
  readonly exclude: readonly Pattern[]
}

/**
 * The patterns of a package.json `files` array: paths relative to the directory (a leading `./`
 * or `/` and a trailing `/` are dropped), where `*` matches within one path segment, `**` across
 * segments and `?` one character; a `!` before a pattern leaves out what it matches.
 */
function filePatterns(files: unknown): Patterns {
  if (!Array.isArray(files) || files.some(f => typeof f !== 'string')) throw BadInput({ message: `${MANIFEST_FILE} "files" must be an array of paths` })
  const include: Pattern[] = []
  const exclude: Pattern[] = []
  for (const raw of files as string[]) {
    const negated = raw.startsWith('!')
    let p = negated ? raw.slice(1) : raw
    while (p.startsWith('./')) p = p.slice(2)
    p = p.replace(/^\/+/, '').replace(/\/+$/, '')
    const problem = pathProblem(p)
    if (problem !== undefined) throw BadInput({ message: `${MANIFEST_FILE} "files" entry "${raw}" is not a path in the directory: ${problem}` })
    if (p.split('/')[0] === 'node_modules') throw BadInput({ message: `${MANIFEST_FILE} "files" entry "${raw}": bundled dependencies come from "dependencies", not from "files"` })
    ;(negated ? exclude : include).push({ text: p, regex: globRegex(p) })
  }
  return { include, exclude }
}

function globRegex(pattern: string): RegExp {
  let out = ''
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!
    if (c === '*' && pattern[i + 1] === '*') {
      const slash = pattern[i + 2] === '/'
      out += slash ? '(?:.*/)?' : '.*'
      i += slash ? 2 : 1
    } else if (c === '*') out += '[^/]*'
    else if (c === '?') out += '[^/]'
    else out += c.replace(/[.+^${}()|[\]\\]/g, '\\$&')
  }
  return new RegExp(`^${out}$`)
}

/** True when `path`, or a directory it is in, matches an included pattern and none excluded. */
function matches(patterns: Patterns, path: string): boolean {
  const segments = path.split('/')
  const candidates = segments.map((_, i) => segments.slice(0, i + 1).join('/'))
  const hit = (list: readonly Pattern[]) => list.some(p => candidates.some(c => p.regex.test(c)))
  return hit(patterns.include) && !hit(patterns.exclude)
}

// ---- the dependency closure ----

/** A directory npm looks for `node_modules/<name>` in, and the package path it stands for. */
interface LookupDir {
  readonly dir: string
  readonly path: string
}

const NAME = /^(@[a-z0-9~][a-z0-9._~-]*\/)?[a-z0-9~][a-z0-9._~-]*$/i

/**
 * The production dependency closure of the project at `root`: its `dependencies`, then each
 * dependency's own, recursively; `optionalDependencies` and `peerDependencies` when installed.
 * Each is looked up as Node does — `node_modules/<name>` in the requiring package's directory,
 * then in each directory above — and bundled at the matching place in the package, so a
 * dependency npm hoisted above `root` lands in the package's root `node_modules`.
 */
async function dependencyClosure(root: string, manifest: Manifest): Promise<BundledPackage[]> {
  const rootChain: LookupDir[] = []
  for (let d = root; ; d = dirname(d)) {
    if (basename(d) !== 'node_modules') rootChain.push({ dir: d, path: '' })
    if (dirname(d) === d) break
  }
  const found = new Map<string, BundledPackage & { readonly dir: string }>()
  const queue: { readonly requester: string; readonly manifest: Manifest; readonly chain: readonly LookupDir[] }[] = [
    { requester: `${MANIFEST_FILE} in ${root}`, manifest, chain: rootChain },
  ]
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    for (const [name, required] of dependenciesOf(next.manifest, next.requester)) {
      let hit: { at: number; dir: string; source: string } | undefined
      for (let i = 0; i < next.chain.length && hit === undefined; i++) {
        const dir = join(next.chain[i]!.dir, 'node_modules', ...name.split('/'))
        const source = await packageDir(dir)
        if (source !== undefined) hit = { at: i, dir, source }
      }
      if (hit === undefined) {
        if (!required) continue
        throw BadInput({ message: `dependency "${name}" of ${next.requester} is not installed: no node_modules/${name} in ${next.chain[0]!.dir} or a directory above it (run npm install)` })
      }
      const base = next.chain[hit.at]!.path
      const path = `${base === '' ? '' : `${base}/`}node_modules/${name}`
      const known = found.get(path)
      if (known !== undefined) {
        if (known.source !== hit.source) throw BadInput({ message: `two installed copies of "${name}" would both be bundled as ${path}: ${known.dir} and ${hit.dir} (reinstall so that one copy serves both)` })
        continue
      }
      const depManifest = await readManifest(join(hit.source, MANIFEST_FILE), hit.dir)
      if (depManifest === undefined) throw BadInput({ message: `dependency "${name}" at ${hit.dir} is not an npm package: it has no ${MANIFEST_FILE}` })
      const version = typeof depManifest.version === 'string' ? depManifest.version : undefined
      found.set(path, { name, path, source: hit.source, dir: hit.dir, ...(version === undefined ? {} : { version }) })
      queue.push({ requester: `${path} (${hit.dir})`, manifest: depManifest, chain: [{ dir: hit.dir, path }, ...next.chain.slice(hit.at)] })
    }
  }
  return [...found.values()]
    .map(({ name, version, path, source }) => ({ name, path, source, ...(version === undefined ? {} : { version }) }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
}

/**
 * The dependencies a manifest asks for, sorted, each with whether it must be installed: its
 * `dependencies` must, unless also optional (as npm reads it); devDependencies never count.
 */
function dependenciesOf(manifest: Manifest, requester: string): [string, boolean][] {
  const names = (field: 'dependencies' | 'optionalDependencies' | 'peerDependencies'): string[] => {
    const value = manifest[field]
    if (value === undefined) return []
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw BadInput({ message: `"${field}" of ${requester} must be an object` })
    const list = Object.keys(value)
    const bad = list.find(name => !NAME.test(name))
    if (bad !== undefined) throw BadInput({ message: `${requester} names "${bad}" in "${field}", which is not an npm package name` })
    return list
  }
  const required = new Set(names('dependencies'))
  const optional = names('optionalDependencies')
  for (const name of optional) required.delete(name)
  optional.push(...names('peerDependencies'))
  // the framework provides iofcert/sdk to every filter: never bundled
  const all = [...new Set([...required, ...optional])].filter(name => name !== FRAMEWORK_PACKAGE).sort()
  return all.map(name => [name, required.has(name)])
}

/** The real directory of an installed package at `dir` (npm links local packages), or undefined when nothing is there. */
async function packageDir(dir: string): Promise<string | undefined> {
  try {
    const st = await lstat(dir)
    if (st.isDirectory()) return dir
    if (!st.isSymbolicLink()) return undefined
    const real = await realpath(dir)
    return (await stat(real)).isDirectory() ? real : undefined
  } catch {
    return undefined
  }
}
