/**
 * Opening and verifying a package. Nothing here imports the package's code: a package that
 * fails any step is refused before load.ts ever sees it.
 */
import { createHash } from 'node:crypto'
import { constants as fsConstants } from 'node:fs'
import { copyFile, mkdir, mkdtemp, open, readFile, rm, stat, writeFile, type FileHandle } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { runSteps, type StepOutcome } from '../../base/steps.js'
import {
  AcceptanceLevelTooLow, DescriptorInvalid, EntryMissing, IntegrityMismatch, IofError,
  PackageUnreadable, PathEscapes, SignatureInvalid, SignatureMissing, TrustStoreInvalid, UntrustedKey,
} from '../errors.js'
import { isAcceptanceLevel, levelAtLeast, validateDescriptor, type AcceptanceLevel, type Descriptor } from './descriptor.js'
import { verifyDescriptorSignature } from './keys.js'
import { DESCRIPTOR_FILE, entryPath, pathProblem, refusalError, walkTree, type RefusedEntry } from './paths.js'
import {
  Deadline, limitExceeded, packageLimits, readPackageFile, readTarStream, tarStreamOf,
  type PackageLimits, type TarBodySink, type TarEntry,
} from './tarball.js'

/** Options of openPackage. */
export interface OpenOptions {
  /** A fresh directory is made under it for the package's files; created when missing. */
  readonly workDir: string
  /** Bounds on size, entries and time; each one not given keeps its DEFAULT_PACKAGE_LIMITS value. */
  readonly limits?: Partial<PackageLimits>
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
export type StepResult<N extends string = string> = StepOutcome<N, IofError>

/** Whether a step's error is a coded one, which a collecting run records rather than throws. */
const isCoded = (err: unknown): err is IofError => err instanceof IofError

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

/**
 * Reads a package — a `.tgz` (or plain `.tar`) or an unpacked directory — into a fresh
 * directory under `workDir`. A tarball is streamed: only regular files with safe paths are
 * ever written (absolute, `..`, link and device entries are recorded as refused instead), and
 * reading stops at the tar end-of-archive, so padding or garbage after it costs nothing.
 * A directory is copied the same way, so later changes to it cannot reach what is verified.
 * Both are bounded by `options.limits` (see DEFAULT_PACKAGE_LIMITS): stored and expanded
 * bytes, entries, bytes per file, and wall-clock time.
 * Throws PackageUnreadable when there is no package to read (no file, not a tarball, no or
 * unparseable descriptor.json), or, with `details.limit` naming the bound, when the package
 * is over one; nothing is left in `workDir` then.
 */
export async function openPackage(source: string, options: OpenOptions): Promise<OpenedPackage> {
  const from = resolve(source)
  const limits = packageLimits(options.limits)
  const deadline = new Deadline(limits.timeoutMs, from)
  let dir: string | undefined
  try {
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

    await mkdir(options.workDir, { recursive: true })
    dir = await mkdtemp(join(resolve(options.workDir), 'pkg-'))
    const root = join(dir, 'root')
    // Node decides ESM vs CommonJS for `.js` from the nearest package.json. This one sits above
    // the package root, so it is not a package file (integrity never sees it) yet makes every
    // `.js` in the package an ES module. A package.json shipped in the package governs its own
    // subtree; load.ts refuses an entry that one would turn into CommonJS.
    await writeFile(join(dir, 'package.json'), '{"type":"module"}\n')
    await mkdir(root)
    const read = kind === 'tarball' ? await extractTarball(from, root, limits, deadline) : await copyDirectory(from, root, limits, deadline)
    if (!read.written.has(DESCRIPTOR_FILE)) throw PackageUnreadable({ source: from, reason: `no ${DESCRIPTOR_FILE} at the package root` })
    let descriptor: unknown
    try {
      descriptor = JSON.parse(await readFile(join(root, DESCRIPTOR_FILE), 'utf8'))
    } catch (err) {
      throw PackageUnreadable({ source: from, reason: `${DESCRIPTOR_FILE} is not valid JSON (${(err as Error).message})` }, err)
    }
    deadline.check()
    return { source: from, kind, dir, root, descriptor, refused: read.refused, ...(read.sha256 === undefined ? {} : { sha256: read.sha256 }) }
  } catch (err) {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
    throw err
  } finally {
    deadline.clear()
  }
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

  const results: StepResult<VerifyStepName>[] = await runSteps(VERIFY_STEPS, steps, { collect: options.collect === true, collectable: isCoded })
  return {
    ok: results.every(r => r.ok),
    descriptor,
    signed: state.signed,
    ...(state.fingerprint === undefined ? {} : { fingerprint: state.fingerprint }),
    steps: results,
  }
}

/** What was written under the package root: the files (by package path) and the refused entries. */
interface ReadPackage {
  readonly written: ReadonlySet<string>
  readonly refused: RefusedEntry[]
  readonly sha256?: string
}

/** The reason an entry conflicts with one already written (a file where a directory is needed, or the reverse). */
const CONFLICT = 'it conflicts with another entry (a file where a directory is needed, or the reverse)'

/**
 * Streams a (gzip) tarball into `root`, keeping regular files with safe paths and recording
 * the rest; bounded by `limits` and `deadline` (see tarball.ts).
 */
async function extractTarball(file: string, root: string, limits: PackageLimits, deadline: Deadline): Promise<ReadPackage> {
  const bytes = await readPackageFile(file, limits, deadline)
  const written = new Set<string>()
  const refused: RefusedEntry[] = []
  const seen = new Set<string>()
  const made = new Set<string>([root])

  const visit = async (entry: TarEntry): Promise<TarBodySink | undefined> => {
    const path = entryPath(entry.name)
    let refusal = classify(entry, path)
    if (refusal === undefined && entry.type !== 'Directory') {
      // A second entry of one path would silently replace the first on extraction.
      if (seen.has(path)) refusal = { path, kind: 'unsupported', reason: 'it appears more than once in the archive' }
      seen.add(path)
    }
    if (refusal !== undefined) {
      refused.push(refusal)
      return undefined
    }
    // Directories are not created: the files' parents are, and nothing else is needed.
    if (entry.type === 'Directory') return undefined
    const out = await createExclusive(join(root, path), made)
    if (typeof out === 'string') {
      refused.push({ path, kind: 'unsupported', reason: out })
      return undefined
    }
    written.add(path)
    return fileSink(out)
  }

  const result = await readTarStream(tarStreamOf(bytes), visit, { source: file, limits, deadline })
  if (result.entries === 0) throw PackageUnreadable({ source: file, reason: 'the archive is empty' })
  return { written, refused, sha256: sha256(bytes) }
}

/**
 * Creates `target` (and its parents) for writing, failing if it exists. Returns why not when
 * the entry cannot be written as named (a file/directory conflict, a name too long).
 * `made` remembers the parents already created.
 */
async function createExclusive(target: string, made: Set<string>): Promise<FileHandle | string> {
  try {
    const parent = dirname(target)
    if (!made.has(parent)) {
      await mkdir(parent, { recursive: true })
      made.add(parent)
    }
    return await open(target, 'wx')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST' || code === 'ENOTDIR' || code === 'EISDIR') return CONFLICT
    if (code === 'ENAMETOOLONG') return 'its path is too long for the file system'
    throw err
  }
}

function fileSink(fh: FileHandle): TarBodySink {
  return {
    async write(chunk) {
      for (let off = 0; off < chunk.length;) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten
    },
    end: () => fh.close(),
    abort: () => fh.close().catch(() => undefined),
  }
}

/** Why a tar entry is refused, or undefined for a regular file or directory with a safe path. */
function classify(entry: TarEntry, path: string): RefusedEntry | undefined {
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
    case 'Unsupported':
      return { path, kind: 'unsupported', reason: `it is an entry of unknown type ${JSON.stringify(entry.typeflag)}; only regular files and directories are allowed` }
    default:
      return { path, kind: 'unsupported', reason: `it is a ${entry.type} entry; only regular files and directories are allowed` }
  }
}

/** Copies the regular files of `dir` into `root`, within the same bounds as a tarball. */
async function copyDirectory(dir: string, root: string, limits: PackageLimits, deadline: Deadline): Promise<ReadPackage> {
  const tree = await walkTree(dir, new Set(), {
    maxEntries: limits.maxEntries,
    tooMany: () => limitExceeded(dir, 'maxEntries', limits.maxEntries),
    check: () => deadline.check(),
  })
  const written = new Set<string>()
  let total = 0
  for (const f of tree.files) {
    deadline.check()
    const target = join(root, f.path)
    await mkdir(dirname(target), { recursive: true })
    const size = (await stat(f.absolute)).size
    if (size > limits.maxFileBytes) throw limitExceeded(dir, 'maxFileBytes', limits.maxFileBytes, `file "${f.path}" is ${size} bytes`)
    await deadline.race(copyFile(f.absolute, target, fsConstants.COPYFILE_EXCL))
    // Measured on the copy, which is what is verified: the source may have changed since stat.
    const copied = (await stat(target)).size
    if (copied > limits.maxFileBytes) throw limitExceeded(dir, 'maxFileBytes', limits.maxFileBytes, `file "${f.path}" is ${copied} bytes`)
    total += copied
    if (total > limits.maxUncompressedBytes) throw limitExceeded(dir, 'maxUncompressedBytes', limits.maxUncompressedBytes, `its files add up to ${total} bytes or more`)
    written.add(f.path)
  }
  return { written, refused: [...tree.refused] }
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
