/**
 * `iofcert package`: turns a filter's directory into a (signed) deterministic package tarball.
 */
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { create } from 'tar'
import { DescriptorInvalid, EntryMissing, PackageUnreadable } from '../errors.js'
import { filterId, validateDescriptor, type Descriptor } from './descriptor.js'
import { signDescriptor } from './keys.js'
import { DESCRIPTOR_FILE, pathProblem, refusalError, walkTree } from './paths.js'

/** Options of buildPackage. */
export interface BuildOptions {
  /** PKCS#8 PEM Ed25519 private key; without it the package is unsigned. */
  readonly keyPem?: string
  /** The tarball to write; default `<vendor>_<name>_<version>.tgz` in the current directory. */
  readonly out?: string
}

/** A package written by buildPackage. */
export interface BuiltPackage {
  /** Absolute path of the tarball. */
  readonly path: string
  readonly descriptor: Descriptor
  /** SHA-256 (hex) of the tarball's bytes. */
  readonly sha256: string
}

/**
 * Every entry gets this mtime, mode 0644 and no owner, so the same input gives the same
 * bytes on any machine. 1985 rather than the epoch, because zip tools misread time 0.
 */
const FIXED_MTIME = new Date('1985-10-26T08:15:00.000Z')
const FILE_MODE = 0o644

/**
 * Builds a package from `dir`: reads the metadata in `<dir>/descriptor.json` (any `files` or
 * `signature` there is recomputed), hashes every other file, signs when a key is given, and
 * writes a gzip tarball with descriptor.json first and the files in sorted order.
 * It judges only what building needs — a readable, schema-valid descriptor, the entry
 * present, no links and no escaping paths; class, ABI and module checks belong to install
 * and certification.
 */
export async function buildPackage(dir: string, options: BuildOptions = {}): Promise<BuiltPackage> {
  const root = resolve(dir)
  const metadata = await readMetadata(root)
  const checked = validateDescriptor(metadata, { metadataOnly: true })
  if (!checked.ok) throw DescriptorInvalid({ errors: [...checked.errors] })
  const meta = checked.descriptor

  const out = resolve(options.out ?? `${filterId(meta)}.tgz`)
  // The tarball may be written into the directory it packs (`iofcert package .`); it is
  // never part of the package, or each rebuild would swallow the previous one.
  const tree = await walkTree(root, new Set([out, join(root, DESCRIPTOR_FILE)]))
  const firstRefused = tree.refused[0]
  if (firstRefused !== undefined) throw refusalError(firstRefused)

  const entryProblem = pathProblem(meta.entry)
  if (entryProblem !== undefined) throw refusalError({ path: meta.entry, kind: 'escape', reason: entryProblem })
  if (!tree.files.some(f => f.path === meta.entry)) throw EntryMissing({ entry: meta.entry, reason: `is not a file in ${root}` })

  // Hash the bytes that are packed, not a later re-read, so the listing matches the tarball.
  const contents = new Map<string, Buffer>()
  const files: Record<string, string> = {}
  for (const f of tree.files) {
    const data = await readFile(f.absolute)
    contents.set(f.path, data)
    files[f.path] = sha256(data)
  }

  let descriptor: Descriptor = orderedDescriptor(meta, files)
  if (options.keyPem !== undefined) descriptor = signDescriptor(descriptor, options.keyPem)
  const final = validateDescriptor(descriptor)
  if (!final.ok) throw DescriptorInvalid({ errors: [...final.errors] })

  const stage = await mkdtemp(join(tmpdir(), 'iofcert-package-'))
  try {
    const staged = join(stage, 'root')
    await writeStaged(staged, DESCRIPTOR_FILE, Buffer.from(`${JSON.stringify(descriptor, null, 2)}\n`, 'utf8'))
    for (const [path, data] of contents) await writeStaged(staged, path, data)
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
  return { path: out, descriptor, sha256: sha256(await readFile(out)) }
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
