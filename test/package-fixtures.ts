/**
 * Real filter directories and tarballs for the package tests. Every filter module appends a
 * line to its marker file when it is imported, so a test can prove a refused package's code
 * never ran. A filter may not import node:fs: it writes through `iofcert/test-fixture`, which the
 * filter loader offers only while IOFCERT_TEST_FIXTURE_DIR names a directory (here, the scratch
 * directory: `scratch()` sets it), and only for files in that directory.
 */
import { existsSync } from 'node:fs'
import { lstat, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { create, extract } from 'tar'

/** The descriptor metadata a filter author writes (no files, no signature). */
export function metadata(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    descriptorVersion: 1,
    name: 'cdp',
    vendor: 'ACME',
    version: '1.2.0',
    class: 'replication',
    summary: 'Continuous data protection',
    releaseDate: '2026-11-01',
    abiVersion: 1,
    entry: 'filter.js',
    acceptanceLevel: 'PartnerSupported',
    install: { maintenanceMode: false, reboot: false },
    upgrade: { maintenanceMode: true, reboot: false },
    uninstall: { maintenanceMode: true, reboot: false },
    ...overrides,
  }
}

/** Source of a filter module that records its import in `marker`; `fields` override the default export. */
export function moduleSource(marker: string, fields: Record<string, string> = {}): string {
  const exported: Record<string, string> = {
    abiVersion: '1',
    name: "'cdp'",
    vendor: "'ACME'",
    version: "'1.2.0'",
    class: "'replication'",
    policySchema: "{ type: 'object', properties: { rpoSeconds: { type: 'integer', minimum: 1, default: 15 } } }",
    open: '() => ({})',
    ...fields,
  }
  const body = Object.entries(exported).map(([k, v]) => `  ${JSON.stringify(k)}: ${v},`).join('\n')
  return [
    "import { appendFile } from 'iofcert/test-fixture'",
    "import { helper } from './lib/helper.js'",
    `appendFile(${JSON.stringify(marker)}, 'imported ' + helper + '\\n')`,
    `export default {\n${body}\n}`,
    '',
  ].join('\n')
}

/** A scratch area for one test, removed by `cleanup`. */
export interface Scratch {
  readonly dir: string
  readonly marker: string
  readonly workDir: string
  cleanup(): Promise<void>
}

/**
 * Makes a fresh scratch directory with a marker path and a work directory inside it, and makes it
 * the directory test filters may write to (IOFCERT_TEST_FIXTURE_DIR, inherited by the filter
 * workers and CLI processes started from here on).
 */
export async function scratch(): Promise<Scratch> {
  const dir = await mkdtemp(join(tmpdir(), 'iofcert-pkgtest-'))
  process.env.IOFCERT_TEST_FIXTURE_DIR = dir
  return {
    dir,
    marker: join(dir, 'MARKER'),
    workDir: join(dir, 'work'),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  }
}

/** Options of writeFilterDir. */
export interface FilterDirOptions {
  readonly descriptor?: Record<string, unknown>
  readonly module?: Record<string, string>
  /** Replaces the whole module source. */
  readonly source?: string
  /** Where the module is written; default the descriptor's entry. */
  readonly entryFile?: string
}

/** Writes a filter directory: descriptor.json (metadata only), filter.js, lib/helper.js. */
export async function writeFilterDir(s: Scratch, name: string, options: FilterDirOptions = {}): Promise<string> {
  const dir = join(s.dir, name)
  const descriptor = options.descriptor ?? metadata()
  await mkdir(join(dir, 'lib'), { recursive: true })
  await writeFile(join(dir, 'descriptor.json'), `${JSON.stringify(descriptor, null, 2)}\n`)
  await put(join(dir, options.entryFile ?? String(descriptor.entry)), options.source ?? moduleSource(s.marker, options.module))
  await writeFile(join(dir, 'lib', 'helper.js'), 'export const helper = 42\n')
  return dir
}

/** Extracts `tgz` to a fresh directory, lets `mutate` change it, and packs every file again (sorted, no `./`). */
export async function repack(tgz: string, out: string, mutate: (dir: string) => Promise<void>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'iofcert-repack-'))
  try {
    await extract({ file: tgz, cwd: dir })
    await mutate(dir)
    await create({ cwd: dir, file: out, gzip: true, portable: true }, await listFiles(dir))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
  return out
}

/** Every file under `dir`, relative, sorted. */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = []
  const visit = async (d: string): Promise<void> => {
    for (const name of await readdir(d)) {
      const p = join(d, name)
      if ((await lstat(p)).isDirectory()) await visit(p)
      else out.push(relative(dir, p))
    }
  }
  await visit(dir)
  return out.sort()
}

/** True when the filter module behind `marker` was imported at least once. */
export function ran(marker: string): boolean {
  return existsSync(marker)
}

/** Writes `text` to `path`, creating parent directories. */
export async function put(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true })
  await writeFile(path, text)
}
