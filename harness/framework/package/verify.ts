/**
 * Opening and verifying a package. Nothing here imports the package's code: a package that
 * fails any step is refused before load.ts ever sees it.
 */
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { Parser, type ReadEntry } from 'tar'
import {
  AcceptanceLevelTooLow, DescriptorInvalid, EntryMissing, IntegrityMismatch, IofError,
  PackageUnreadable, PathEscapes, SignatureInvalid, SignatureMissing, TrustStoreInvalid, UntrustedKey,
} from '../errors.js'
import { isAcceptanceLevel, levelAtLeast, validateDescriptor, type AcceptanceLevel, type Descriptor } from './descriptor.js'
import { verifyDescriptorSignature } from './keys.js'
import { DESCRIPTOR_FILE, entryPath, pathProblem, refusalError, walkTree, type RefusedEntry } from './paths.js'

/** Options of openPackage. */
export interface OpenOptions {
  /** A fresh directory is made under it for the package's files; created when missing. */
  readonly workDir: string
}

/** A package read into a fresh directory, not yet verified. Plain data: it can cross threads. */
export interface OpenedPackage {
  /** The path given to openPackage, resolved. */
  readonly source: string
  readonly kind: 'tarball' | 'directory'
  /** The fresh directory holding `root/` and the package.json that makes `.js` load as ESM. */
  readonly dir: string
  /** The package's files (descriptor.json included), as they will be imported. */
  readonly root: string
  /** descriptor.json as parsed JSON; not validated until verifyPackage. */
  readonly descriptor: unknown
  /** Entries refused while reading (never written to disk); the `paths` step reports them. */
  readonly refused: readonly RefusedEntry[]
  /** SHA-256 (hex) of the tarball's bytes; absent for a directory. */
  readonly sha256?: string
}

/** A host's acceptance level and trust store. */
export interface TrustOptions {
  /** The host's level; packages below it are refused. Default PartnerSupported. */
  readonly acceptanceLevel?: AcceptanceLevel
  /**
   * Trusted signing keys as SHA-256 fingerprints of their SPKI DER (64 hex digits; see
   * keys.ts `fingerprint()` to turn a PEM into one). Fingerprints were chosen over PEMs
   * because they are what reports show and one key has exactly one of them.
   */
  readonly trustedKeys?: readonly string[]
}

/** Options of verifyPackage. */
export interface VerifyOptions {
  readonly trust?: TrustOptions
  /** Run every step and report each result instead of throwing at the first failure. Default false. */
  readonly collect?: boolean
}

/** The verification steps, in the order they run. */
export const VERIFY_STEPS = ['schema', 'paths', 'integrity', 'signature', 'acceptance'] as const
/** The name of a verification step. */
export type VerifyStepName = (typeof VERIFY_STEPS)[number]

/** One step's result; a failure carries the coded error it raised. */
export type StepResult<N extends string = string> =
  | { readonly name: N; readonly ok: true }
  | { readonly name: N; readonly ok: false; readonly error: IofError }

/** What verifyPackage found. `descriptor` is schema-valid only when the schema step passed. */
export interface VerifiedPackage {
  readonly ok: boolean
  readonly descriptor: Descriptor
  /** True when the descriptor carries a signature that verifies. */
  readonly signed: boolean
  /** Fingerprint of the signing key, when the descriptor carries a decodable one. */
  readonly fingerprint?: string
  readonly steps: readonly StepResult<VerifyStepName>[]
}

/** The host acceptance level used when none is given. */
export const DEFAULT_HOST_ACCEPTANCE_LEVEL: AcceptanceLevel = 'PartnerSupported'

/** Bounds on what a package may expand to, so a hostile tarball cannot fill the disk or memory. */
const MAX_PACKAGE_BYTES = 256 * 1024 * 1024
const MAX_ENTRIES = 10_000

/**
 * Reads a package — a `.tgz` or an unpacked directory — into a fresh directory under
 * `workDir`. A tarball is parsed in memory first; only regular files with safe paths are
 * ever written (absolute, `..`, link and device entries are recorded as refused instead).
 * A directory is copied the same way, so later changes to it cannot reach what is verified.
 * Throws PackageUnreadable when there is no package to read (no file, not a tarball, no or
 * unparseable descriptor.json).
 */
export async function openPackage(source: string, options: OpenOptions): Promise<OpenedPackage> {
  const from = resolve(source)
  let kind: OpenedPackage['kind']
  try {
    const st = await stat(from)
    if (st.isDirectory()) kind = 'directory'
    else if (st.isFile()) kind = 'tarball'
    else throw new Error('not a file or directory')
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message
    throw PackageUnreadable({ source: from, reason }, err)
  }
  const read = kind === 'tarball' ? await readTarball(from) : await readDirectory(from)

  const descriptorBytes = read.files.get(DESCRIPTOR_FILE)
  if (descriptorBytes === undefined) throw PackageUnreadable({ source: from, reason: `no ${DESCRIPTOR_FILE} at the package root` })
  let descriptor: unknown
  try {
    descriptor = JSON.parse(descriptorBytes.toString('utf8'))
  } catch (err) {
    throw PackageUnreadable({ source: from, reason: `${DESCRIPTOR_FILE} is not valid JSON (${(err as Error).message})` }, err)
  }

  await mkdir(options.workDir, { recursive: true })
  const dir = await mkdtemp(join(resolve(options.workDir), 'pkg-'))
  const root = join(dir, 'root')
  // Node decides ESM vs CommonJS for `.js` from the nearest package.json. This one sits above
  // the package root, so it is not a package file (integrity never sees it) yet makes every
  // `.js` in the package an ES module. A package.json shipped in the package governs its own
  // subtree; load.ts refuses an entry that one would turn into CommonJS.
  await writeFile(join(dir, 'package.json'), '{"type":"module"}\n')
  await mkdir(root)
  const refused = [...read.refused]
  for (const [path, data] of read.files) {
    const target = join(root, path)
    try {
      await mkdir(dirname(target), { recursive: true })
      await writeFile(target, data, { flag: 'wx' })
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code !== 'EEXIST' && code !== 'ENOTDIR' && code !== 'EISDIR') throw err
      refused.push({ path, kind: 'unsupported', reason: 'it conflicts with another entry (a file where a directory is needed, or the reverse)' })
    }
  }
  return { source: from, kind, dir, root, descriptor, refused, ...(read.sha256 === undefined ? {} : { sha256: read.sha256 }) }
}

/** Removes the fresh directory openPackage made (modules already imported stay loaded). */
export async function disposePackage(opened: OpenedPackage): Promise<void> {
  await rm(opened.dir, { recursive: true, force: true })
}

/**
 * Verifies an opened package: schema → paths → integrity → signature → acceptance. Throws the
 * first failing step's coded error, or with `collect` runs every step and reports each.
 * Throws TrustStoreInvalid at once when a trusted key is not a fingerprint.
 */
export async function verifyPackage(opened: OpenedPackage, options: VerifyOptions = {}): Promise<VerifiedPackage> {
  const hostLevel = options.trust?.acceptanceLevel ?? DEFAULT_HOST_ACCEPTANCE_LEVEL
  const trusted = new Set((options.trust?.trustedKeys ?? []).map(normalizeFingerprint))
  const descriptor = opened.descriptor as Descriptor
  const state: { signed: boolean; fingerprint?: string } = { signed: false }

  const steps: Record<VerifyStepName, () => void | Promise<void>> = {
    schema: () => {
      const v = validateDescriptor(opened.descriptor)
      if (!v.ok) throw DescriptorInvalid({ errors: [...v.errors] })
    },
    paths: () => {
      const first = opened.refused[0]
      if (first !== undefined) throw refusalError(first)
      const record = asRecord(opened.descriptor)
      const listed = [...(typeof record.entry === 'string' ? [record.entry] : []), ...Object.keys(asRecord(record.files))]
      for (const p of listed) {
        const problem = pathProblem(p)
        if (problem !== undefined) throw PathEscapes({ path: p, reason: problem })
      }
    },
    integrity: async () => {
      const files = listedFiles(opened.descriptor)
      const entry = asRecord(opened.descriptor).entry
      if (typeof entry !== 'string' || !(entry in files)) throw EntryMissing({ entry: String(entry), reason: 'is not listed in files' })
      const tree = await walkTree(opened.root, new Set([join(opened.root, DESCRIPTOR_FILE)]))
      const actual = new Map<string, string>()
      for (const f of tree.files) actual.set(f.path, sha256(await readFile(f.absolute)))
      const mismatches: { file: string; reason: 'missing' | 'extra' | 'changed' }[] = []
      for (const file of [...new Set([...Object.keys(files), ...actual.keys()])].sort()) {
        const want = files[file]
        const got = actual.get(file)
        if (got === undefined) mismatches.push({ file, reason: 'missing' })
        else if (want === undefined) mismatches.push({ file, reason: 'extra' })
        else if (want !== got) mismatches.push({ file, reason: 'changed' })
      }
      const first = mismatches[0]
      if (first !== undefined) throw IntegrityMismatch({ ...first, mismatches })
    },
    signature: () => {
      if (asRecord(opened.descriptor).signature === undefined) return
      const check = verifyDescriptorSignature(descriptor)
      if (check.fingerprint !== undefined) state.fingerprint = check.fingerprint
      if (!check.ok) throw SignatureInvalid({ reason: check.reason })
      state.signed = true
    },
    acceptance: () => {
      const level = asRecord(opened.descriptor).acceptanceLevel
      if (!isAcceptanceLevel(level)) throw DescriptorInvalid({ errors: [`/acceptanceLevel: ${JSON.stringify(level)} is not an acceptance level`] })
      if (!levelAtLeast(level, hostLevel)) throw AcceptanceLevelTooLow({ level, hostLevel })
      if (level === 'CommunitySupported') return
      if (asRecord(opened.descriptor).signature === undefined) throw SignatureMissing({ level })
      if (!state.signed) throw SignatureInvalid({ reason: `${level} requires a valid signature` })
      if (state.fingerprint === undefined || !trusted.has(state.fingerprint)) throw UntrustedKey({ fingerprint: state.fingerprint ?? '(none)', level })
    },
  }

  const results: StepResult<VerifyStepName>[] = []
  for (const name of VERIFY_STEPS) {
    try {
      await steps[name]()
      results.push({ name, ok: true })
    } catch (err) {
      if (!(err instanceof IofError) || options.collect !== true) throw err
      results.push({ name, ok: false, error: err })
    }
  }
  return {
    ok: results.every(r => r.ok),
    descriptor,
    signed: state.signed,
    ...(state.fingerprint === undefined ? {} : { fingerprint: state.fingerprint }),
    steps: results,
  }
}

interface ReadPackage {
  readonly files: Map<string, Buffer>
  readonly refused: RefusedEntry[]
  readonly sha256?: string
}

/** Parses a (gzip) tarball in memory, keeping regular files with safe paths and recording the rest. */
async function readTarball(file: string): Promise<ReadPackage> {
  let bytes: Buffer
  try {
    bytes = await readFile(file)
  } catch (err) {
    throw PackageUnreadable({ source: file, reason: (err as Error).message }, err)
  }
  const files = new Map<string, Buffer>()
  const refused: RefusedEntry[] = []
  const pending: Promise<void>[] = []
  const seen = new Set<string>()
  let total = 0
  let count = 0
  let tooBig: string | undefined

  const onEntry = (entry: ReadEntry): void => {
    count += 1
    total += entry.size
    if (count > MAX_ENTRIES) tooBig ??= `more than ${MAX_ENTRIES} entries`
    if (total > MAX_PACKAGE_BYTES) tooBig ??= `more than ${MAX_PACKAGE_BYTES} bytes`
    const path = entryPath(entry.path)
    let refusal = classify(entry, path)
    if (refusal === undefined && entry.type !== 'Directory') {
      // A second entry of one path would silently replace the first on extraction.
      if (seen.has(path)) refusal = { path, kind: 'unsupported', reason: 'it appears more than once in the archive' }
      seen.add(path)
    }
    if (refusal !== undefined) refused.push(refusal)
    if (refusal !== undefined || entry.type === 'Directory' || tooBig !== undefined) {
      entry.resume()
      return
    }
    pending.push(entry.concat().then(data => { files.set(path, data) }))
  }

  await new Promise<void>((resolveParse, reject) => {
    const parser = new Parser({ strict: true, onReadEntry: onEntry })
    // Entry types node-tar does not know (sparse files, ACLs…) never reach onReadEntry.
    parser.on('ignoredEntry', (entry: ReadEntry) => {
      refused.push({ path: entryPath(entry.path), kind: 'unsupported', reason: `it is a ${entry.type} entry; only regular files and directories are allowed` })
    })
    parser.on('error', reject)
    parser.on('end', () => resolveParse())
    parser.end(bytes)
  }).catch((err: unknown) => {
    throw PackageUnreadable({ source: file, reason: `not a readable tar or tar.gz archive (${(err as Error).message})` }, err)
  })
  await Promise.all(pending)
  if (tooBig !== undefined) throw PackageUnreadable({ source: file, reason: `the package is too large: ${tooBig}` })
  if (count === 0) throw PackageUnreadable({ source: file, reason: 'the archive is empty' })
  return { files, refused, sha256: sha256(bytes) }
}

/** Why a tar entry is refused, or undefined for a regular file or directory with a safe path. */
function classify(entry: ReadEntry, path: string): RefusedEntry | undefined {
  switch (entry.type) {
    case 'SymbolicLink':
      return { path, kind: 'link', reason: 'symbolic link' }
    case 'Link':
      return { path, kind: 'link', reason: 'hard link' }
    case 'File':
    case 'OldFile':
    case 'ContiguousFile':
    case 'Directory': {
      if (entry.type === 'Directory' && path === '') return undefined
      const problem = pathProblem(path)
      return problem === undefined ? undefined : { path, kind: 'escape', reason: problem }
    }
    default:
      return { path, kind: 'unsupported', reason: `it is a ${entry.type} entry; only regular files and directories are allowed` }
  }
}

async function readDirectory(dir: string): Promise<ReadPackage> {
  const tree = await walkTree(dir)
  const files = new Map<string, Buffer>()
  let total = 0
  for (const f of tree.files) {
    const data = await readFile(f.absolute)
    total += data.length
    if (total > MAX_PACKAGE_BYTES || files.size >= MAX_ENTRIES) {
      throw PackageUnreadable({ source: dir, reason: `the package is too large (over ${MAX_PACKAGE_BYTES} bytes or ${MAX_ENTRIES} files)` })
    }
    files.set(f.path, data)
  }
  return { files, refused: [...tree.refused] }
}

function listedFiles(descriptor: unknown): Record<string, string> {
  const files = asRecord(descriptor).files
  if (typeof files !== 'object' || files === null || Array.isArray(files) || Object.values(files).some(v => typeof v !== 'string')) {
    throw DescriptorInvalid({ errors: ['/files: must be an object mapping each path to its SHA-256'] })
  }
  return files as Record<string, string>
}

function normalizeFingerprint(key: string): string {
  const fp = key.trim().toLowerCase()
  if (!/^[0-9a-f]{64}$/.test(fp)) throw TrustStoreInvalid({ key: key.length > 80 ? `${key.slice(0, 77)}...` : key })
  return fp
}

function asRecord(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {}
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}
