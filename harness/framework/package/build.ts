/**
 * `iofcert package`: turns a filter's directory into a (signed) deterministic package tarball,
 * bundling its npm dependencies, and (with `check`) refuses one certification would refuse.
 */
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { create } from 'tar'
import { DescriptorInvalid, PackageUnreadable } from '../errors.js'
import { bundledCounts, selectFiles, type BundledPackage } from './bundle.js'
import { filterId, validateDescriptor, type Descriptor } from './descriptor.js'
import { signDescriptor } from './keys.js'
import { DESCRIPTOR_FILE, pathProblem, refusalError } from './paths.js'
import { preflightPackage } from './preflight.js'
import { DEFAULT_HOST_ACCEPTANCE_LEVEL } from './verify.js'

/** Options of buildPackage. */
export interface BuildOptions {
  /** PKCS#8 PEM Ed25519 private key; without it the package is unsigned. */
  readonly keyPem?: string
  /** The tarball to write; default `<vendor>_<name>_<version>.tgz` in the current directory. */
  readonly out?: string
  /**
   * Load the staged package through certification's package checks and a host's install before
   * writing it, and refuse it (PackageRefused, exit code 1) when either would. This runs the
   * package's code in the loader's worker. `iofcert package` always checks; default false.
   */
  readonly check?: boolean
}

/** The size of a built package. */
export interface PackageSize {
  /** Bytes of the tarball. */
  readonly packedBytes: number
  /** Bytes of every file in it, descriptor.json included. */
  readonly unpackedBytes: number
  /** Files in it, descriptor.json included. */
  readonly files: number
  /** Files in a `node_modules` directory. */
  readonly bundledFiles: number
  /** Packages (directories with a package.json) in a `node_modules` directory. */
  readonly bundledPackages: number
}

/** A package written by buildPackage. */
export interface BuiltPackage {
  /** Absolute path of the tarball. */
  readonly path: string
  readonly descriptor: Descriptor
  /** SHA-256 (hex) of the tarball's bytes. */
  readonly sha256: string
  /** Whether package.json `files` chose the files (`files`), or the whole directory went in (`tree`). */
  readonly mode: 'files' | 'tree'
  /** The production dependencies bundled from package.json, by path in the package. */
  readonly bundled: readonly BundledPackage[]
  readonly size: PackageSize
  /** Things the package will meet later, one line each (e.g. hosts refusing it unsigned). */
  readonly warnings: readonly string[]
}

/**
 * Every entry gets this mtime, mode 0644 and no owner, so the same input gives the same
 * bytes on any machine. 1985 rather than the epoch, because zip tools misread time 0.
 */
const FIXED_MTIME = new Date('1985-10-26T08:15:00.000Z')
const FILE_MODE = 0o644

/**
 * Builds a package from `dir`: reads the metadata in `<dir>/descriptor.json` (any `files` or
 * `signature` there is recomputed), chooses the files (see selectFiles: package.json `files`
 * and the production dependency closure, or the whole directory), hashes them, signs when a key
 * is given, stages the package, with `check` loads it as certification and install would, and
 * writes a gzip tarball with descriptor.json first and the files in sorted order.
 * Without `check` it judges only what building needs — a readable, schema-valid descriptor,
 * the entry present, no links and no escaping paths.
 */
export async function buildPackage(dir: string, options: BuildOptions = {}): Promise<BuiltPackage> {
  const root = resolve(dir)
  const metadata = await readMetadata(root)
  const checked = validateDescriptor(metadata, { metadataOnly: true })
  if (!checked.ok) throw DescriptorInvalid({ errors: [...checked.errors] })
  const meta = checked.descriptor

  const out = resolve(options.out ?? `${filterId(meta)}.tgz`)
  const entryProblem = pathProblem(meta.entry)
  if (entryProblem !== undefined) throw refusalError({ path: meta.entry, kind: 'escape', reason: entryProblem })
  // The tarball may be written into the directory it packs (`iofcert package .`); it is
  // never part of the package, or each rebuild would swallow the previous one.
  const selection = await selectFiles(root, meta.entry, new Set([out]))

  // Hash the bytes that are packed, not a later re-read, so the listing matches the tarball.
  const contents = new Map<string, Buffer>()
  const files: Record<string, string> = {}
  for (const f of selection.files) {
    const data = await readFile(f.absolute)
    contents.set(f.path, data)
    files[f.path] = sha256(data)
  }

  let descriptor: Descriptor = orderedDescriptor(meta, files)
  if (options.keyPem !== undefined) descriptor = signDescriptor(descriptor, options.keyPem)
  const final = validateDescriptor(descriptor)
  if (!final.ok) throw DescriptorInvalid({ errors: [...final.errors] })
  const descriptorBytes = Buffer.from(`${JSON.stringify(descriptor, null, 2)}\n`, 'utf8')

  const stage = await mkdtemp(join(tmpdir(), 'iofcert-package-'))
  try {
    const staged = join(stage, 'root')
    await writeStaged(staged, DESCRIPTOR_FILE, descriptorBytes)
    for (const [path, data] of contents) await writeStaged(staged, path, data)
    if (options.check === true) await preflightPackage(staged, descriptor, join(stage, 'work'))
    await mkdir(dirname(out), { recursive: true })
    const partial = `${out}.partial-${process.pid}`
    // Only files are archived (no directory entries): extraction recreates parents, and the
    // entry list alone decides the bytes.
    await create(
      { cwd: staged, file: partial, gzip: { level: 9 }, portable: true, mtime: FIXED_MTIME, noDirRecurse: true, strict: true },
      [DESCRIPTOR_FILE, ...contents.keys()],
    )
    await rename(partial, out)
  } finally {
    await rm(stage, { recursive: true, force: true })
  }
  let unpackedBytes = descriptorBytes.length
  for (const data of contents.values()) unpackedBytes += data.length
  const bundled = bundledCounts([...contents.keys()])
  return {
    path: out,
    descriptor,
    sha256: sha256(await readFile(out)),
    mode: selection.mode,
    bundled: selection.bundled,
    size: { packedBytes: (await stat(out)).size, unpackedBytes, files: contents.size + 1, bundledFiles: bundled.files, bundledPackages: bundled.packages },
    warnings: warningsFor(descriptor),
  }
}

/** The size of a package in one line: `412.3 KiB packed, 1.8 MiB unpacked, 57 files (51 in node_modules: 2 packages)`. */
export function describeSize(size: PackageSize): string {
  const files = `${size.files} ${size.files === 1 ? 'file' : 'files'}`
  const bundled = size.bundledFiles === 0 ? '' : ` (${size.bundledFiles} in node_modules: ${size.bundledPackages} ${size.bundledPackages === 1 ? 'package' : 'packages'})`
  return `${formatBytes(size.packedBytes)} packed, ${formatBytes(size.unpackedBytes)} unpacked, ${files}${bundled}`
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`
}

/** What hosts will make of the package that building does not refuse. */
function warningsFor(d: Descriptor): string[] {
  const warnings: string[] = []
  if (d.signature === undefined && d.acceptanceLevel !== 'CommunitySupported') {
    warnings.push(`${filterId(d)} is unsigned, but acceptance level ${d.acceptanceLevel} requires a signature: hosts at their default level (${DEFAULT_HOST_ACCEPTANCE_LEVEL}) refuse it; sign it (--key), or declare CommunitySupported`)
  }
  return warnings
}

async function readMetadata(root: string): Promise<unknown> {
  let text: string
  try {
    text = await readFile(join(root, DESCRIPTOR_FILE), 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const reason = code === 'ENOTDIR' ? `${root} is not a directory`
      : code !== 'ENOENT' ? (err as Error).message
        : existsSync(root) ? `no ${DESCRIPTOR_FILE} in ${root}` : `no such directory ${root}`
    throw PackageUnreadable({ source: root, reason }, err)
  }
  try {
    return JSON.parse(text) as unknown
  } catch (err) {
    throw PackageUnreadable({ source: root, reason: `${DESCRIPTOR_FILE} is not valid JSON (${(err as Error).message})` }, err)
  }
}

/** The descriptor with its fields in the documented order, so descriptor.json reads the same for everyone. */
function orderedDescriptor(m: Descriptor, files: Record<string, string>): Descriptor {
  return {
    descriptorVersion: m.descriptorVersion,
    name: m.name,
    vendor: m.vendor,
    version: m.version,
    class: m.class,
    summary: m.summary,
    releaseDate: m.releaseDate,
    abiVersion: m.abiVersion,
    entry: m.entry,
    acceptanceLevel: m.acceptanceLevel,
    install: { maintenanceMode: m.install.maintenanceMode, reboot: m.install.reboot },
    upgrade: { maintenanceMode: m.upgrade.maintenanceMode, reboot: m.upgrade.reboot },
    uninstall: { maintenanceMode: m.uninstall.maintenanceMode, reboot: m.uninstall.reboot },
    files,
  }
}

async function writeStaged(root: string, path: string, data: Buffer): Promise<void> {
  const target = join(root, path)
  await mkdir(dirname(target), { recursive: true })
  await writeFile(target, data)
  // The mode is set explicitly: the umask and the source file's mode must not reach the bytes.
  await chmod(target, FILE_MODE)
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}
