/**
 * `iofcert init <dir>`: a filter project in the vendor's own repository — a typed cache filter in
 * TypeScript, its descriptor, a unit test that drives it through the framework's library API, the
 * scripts that build, test, package and certify it, and a CI workflow that certifies it in shards
 * and gates on the merged verdict.
 *
 * The project depends on iofcert as a development dependency, so the SDK's types, the library
 * API its test uses and the `iofcert` command its scripts run are all the same version, on a
 * laptop and in CI alike. By default `init` packs the iofcert that runs it into
 * `vendor/iofcert-<version>.tgz` and depends on that file; `--iofcert <spec>` names another npm
 * spec (a registry version range, a tarball URL, a path).
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises'
import { basename, dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { BadInput, type IofError } from '../framework/index.js'
import { OPEN_CLASSES } from '../framework/package/index.js'
import { TOOL_VERSION } from '../certify/version.js'

/** Options of scaffold(). */
export interface ScaffoldOptions {
  /** The filter's name (descriptor `name`); default: the directory's name, made valid. */
  readonly name?: string
  /** The vendor (descriptor `vendor`); default `Example`. */
  readonly vendor?: string
  /** The filter's class; only `cache` has a template. */
  readonly class?: string
  /** Shards of the CI workflow's certification matrix (default 4). */
  readonly shards?: number
  /**
   * The npm spec the project depends on iofcert by; default: this installation packed into
   * `vendor/` (needs npm on PATH).
   */
  readonly iofcertSpec?: string
}

/** What scaffold() made. */
export interface Scaffolded {
  readonly dir: string
  readonly filterId: string
  /** Files written, relative to `dir`, in the order written. */
  readonly files: readonly string[]
  /** How the project depends on iofcert. */
  readonly iofcertSpec: string
}

const NAME_RE = /^[a-z][a-z0-9-]{1,31}$/
const VENDOR_RE = /^[A-Za-z][A-Za-z0-9]{1,15}$/
/** The root of this installation of iofcert (the directory of its package.json). */
const INSTALL_ROOT = fileURLToPath(new URL('../../../', import.meta.url))

function bad(message: string): IofError {
  return BadInput({ message })
}

/** A valid filter name from a directory name: lower case, letters, digits and hyphens. */
function nameFromDir(dir: string): string {
  let n = basename(resolve(dir)).toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^[^a-z]+/, '').replace(/-+$/, '').slice(0, 32)
  if (n.length < 2) n = 'my-filter'
  return n
}

/** Writes a new filter project into `dir` (which must not exist or be empty). */
export async function scaffold(dir: string, options: ScaffoldOptions = {}): Promise<Scaffolded> {
  const root = resolve(dir)
  const name = options.name ?? nameFromDir(root)
  const vendor = options.vendor ?? 'Example'
  const cls = options.class ?? 'cache'
  const shards = options.shards ?? 4
  if (!NAME_RE.test(name)) throw bad(`--name must be 2–32 characters: a lower-case letter, then lower-case letters, digits and hyphens; got "${name}"`)
  if (!VENDOR_RE.test(vendor)) throw bad(`--vendor must be 2–16 letters and digits, starting with a letter; got "${vendor}"`)
  if (!(OPEN_CLASSES as readonly string[]).includes(cls)) throw bad(`--class ${cls} is not open to vendors (open: ${OPEN_CLASSES.join(', ')})`)
  if (cls !== 'cache') throw bad(`--class ${cls} has no template yet: init makes cache filters; for a replication filter start from a cache project and see docs/filter-abi.md (daemons and recovery sites)`)
  if (!Number.isInteger(shards) || shards < 1 || shards > 64) throw bad(`--shards must be an integer from 1 to 64, got "${options.shards}"`)
  await ensureEmpty(root)

  const filterId = `${vendor}_${name}_1.0.0`
  const written: string[] = []
  const put = async (path: string, text: string) => {
    const target = join(root, path)
    await mkdir(dirname(target), { recursive: true })
    await writeFile(target, text, { flag: 'wx' })
    written.push(path)
  }
  await mkdir(root, { recursive: true })
  let spec = options.iofcertSpec
  if (spec === undefined) {
    const tgz = await packSelf(join(root, 'vendor'))
    written.push(relative(root, tgz))
    spec = `file:${relative(root, tgz).split('\\').join('/')}`
  }
  const t = { name, vendor, filterId, spec, shards }
  await put('package.json', packageJson(t))
  await put('descriptor.json', descriptorJson(t))
  await put('tsconfig.json', TSCONFIG)
  await put('src/filter.ts', filterTs(t))
  await put('test/filter.test.ts', testTs(t))
  await put('.github/workflows/certify.yml', workflow(t))
  await put('.gitignore', GITIGNORE)
  await put('README.md', readme(t))
  return { dir: root, filterId, files: written, iofcertSpec: spec }
}

async function ensureEmpty(root: string): Promise<void> {
  if (!existsSync(root)) return
  const s = await stat(root)
  if (!s.isDirectory()) throw bad(`${root} exists and is not a directory`)
  const entries = (await readdir(root)).filter(e => e !== '.git')
  if (entries.length > 0) throw bad(`${root} is not empty (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', …' : ''}); init writes only into a new or empty directory, so it never overwrites anything`)
}

/** Packs this installation of iofcert into `outDir` with npm; returns the tarball's path. */
async function packSelf(outDir: string): Promise<string> {
  await mkdir(outDir, { recursive: true })
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  let out: string
  try {
    const r = await promisify(execFile)(npm, ['pack', INSTALL_ROOT, '--pack-destination', outDir, '--json', '--ignore-scripts'], { maxBuffer: 16 << 20 })
    out = r.stdout
  } catch (e) {
    throw bad(`could not pack this iofcert (${INSTALL_ROOT}) into ${outDir} with npm: ${(e as Error).message.split('\n')[0]}; give --iofcert <npm spec> to depend on iofcert another way`)
  }
  const listed = (JSON.parse(out) as { filename: string }[])[0]?.filename
  if (listed === undefined) throw bad(`npm pack of ${INSTALL_ROOT} named no tarball`)
  // npm names scoped packages scope-name-version.tgz; the name the project's package.json uses is fixed
  const from = join(outDir, basename(listed))
  const to = join(outDir, `iofcert-${TOOL_VERSION}.tgz`)
  if (from !== to) {
    await rm(to, { force: true })
    await rename(from, to)
  }
  return to
}

interface T {
  readonly name: string
  readonly vendor: string
  readonly filterId: string
  readonly spec: string
  readonly shards: number
}

function packageJson(t: T): string {
  const pkg = {
    name: `${t.name}-filter`,
    version: '1.0.0',
    private: true,
    description: `The ${t.name} I/O filter (${t.vendor})`,
    type: 'module',
    // what `iofcert package .` puts in the package, beside descriptor.json, package.json and the
    // production dependencies: the compiled filter, not the sources or the tests
    files: ['build/src/'],
    scripts: {
      build: 'tsc -p tsconfig.json',
      test: 'npm run build && node --test build/test/',
      package: `npm run build && iofcert package . --out dist/${t.filterId}.tgz \${IOFCERT_KEY:+--key "$IOFCERT_KEY"}`,
      certify: `npm run package && iofcert certify dist/${t.filterId}.tgz --quick --json reports/report.json --html reports/report.html --junit reports/junit.xml`,
    },
    dependencies: {},
    devDependencies: {
      '@types/node': '^20.19.0',
      iofcert: t.spec,
      typescript: '^6.0.3',
    },
    engines: { node: '>=20' },
  }
  return `${JSON.stringify(pkg, null, 2)}\n`
}

function descriptorJson(t: T): string {
  const d = {
    descriptorVersion: 1,
    name: t.name,
    vendor: t.vendor,
    version: '1.0.0',
    class: 'cache',
    summary: `Counts guest I/O by operation and size; passes every I/O through`,
    releaseDate: new Date().toISOString().slice(0, 10),
    abiVersion: 1,
    entry: 'build/src/filter.js',
    acceptanceLevel: 'CommunitySupported',
    install: { maintenanceMode: false, reboot: false },
    upgrade: { maintenanceMode: false, reboot: false },
    uninstall: { maintenanceMode: true, reboot: false },
  }
  return `${JSON.stringify(d, null, 2)}\n`
}

const TSCONFIG = `${JSON.stringify({
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    lib: ['ES2023'],
    types: ['node'],
    strict: true,
    outDir: 'build',
    rootDir: '.',
    skipLibCheck: true,
  },
  include: ['src', 'test'],
}, null, 2)}\n`

function filterTs(t: T): string {
  return `/**
 * ${t.vendor} ${t.name}: a cache-class I/O filter that counts guest I/O by operation and size on
 * each disk, passes every I/O down unchanged, and logs the counts when the disk closes.
 *
 * The module's name, vendor, version, class and abiVersion must equal descriptor.json's.
 * \`iofcert/sdk\` is provided by the framework when the filter loads: it is not bundled.
 */
import { defineFilter, PASS, type CloseReason, type Io } from 'iofcert/sdk'

/** "write 4096: 12, read 65536: 3" — most frequent first. */
function summary(counts: ReadonlyMap<string, number>): string {
  if (counts.size === 0) return 'no I/O'
  return [...counts].sort((a, b) => b[1] - a[1]).map(([k, n]) => \`\${k}: \${n}\`).join(', ')
}

export default defineFilter({
  abiVersion: 1,
  name: '${t.name}',
  vendor: '${t.vendor}',
  version: '1.0.0',
  class: 'cache',
  // the parameters a storage policy may give this filter (JSON Schema; defaults are filled in)
  policySchema: {
    type: 'object',
    properties: { label: { type: 'string', default: '' } },
    additionalProperties: false,
  },
  open(disk) {
    const counts = new Map<string, number>()
    const label = String(disk.policy.label)
    return {
      start(io: Io) {
        const key = \`\${io.op} \${io.length}\`
        counts.set(key, (counts.get(key) ?? 0) + 1)
        return PASS
      },
      close(reason: CloseReason) {
        disk.log.info(\`\${label === '' ? '' : \`\${label}: \`}\${disk.disk} closed (\${reason}): \${summary(counts)}\`)
      },
    }
  },
})
`
}

function testTs(t: T): string {
  return `/**
 * Drives the filter through iofcert's framework: a one-host cluster, a VM whose disk's policy
 * names the filter, guest I/O through it, and what it logged.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { Cluster } from 'iofcert/framework'

const ENTRY = fileURLToPath(new URL('../src/filter.js', import.meta.url))

test('guest writes read back unchanged through the filter, and it logs its counts when the VM powers off', async () => {
  const cluster = await Cluster.create({})
  try {
    const host = await cluster.addHost('esx1')
    const info = await cluster.installModule(ENTRY)
    assert.equal(info.id, '${t.filterId}')
    cluster.createPolicy({ name: 'counted', rules: [{ filter: '${t.name}@CACHE', params: { label: 'test' } }] })
    const vm = host.createVm('vm1')
    await host.addDisk('vm1', { id: 'disk0', capacity: 1 << 20, policy: 'counted' })
    await vm.powerOn()

    const data = new Uint8Array(4096).map((_, i) => i % 251)
    assert.ok((await vm.submit('disk0', { op: 'write', offset: 8192, length: 4096, data })).ok)
    const read = await vm.submit('disk0', { op: 'read', offset: 8192, length: 4096 })
    assert.ok(read.ok)
    assert.deepEqual(read.data, data)

    await vm.powerOff()
    const closed = vm.logs.find(l => l.msg.startsWith('test: disk0 closed (power-off)'))
    assert.ok(closed, \`the close line is logged: \${JSON.stringify(vm.logs.map(l => l.msg))}\`)
    assert.match(closed.msg, /write 4096: 1/)
    assert.match(closed.msg, /read 4096: 1/)
  } finally {
    await cluster.shutdown({ remove: true })
  }
})
`
}

function workflow(t: T): string {
  const list = Array.from({ length: t.shards }, (_, i) => i + 1).join(', ')
  return `# Certifies the filter on every push and pull request: the catalogue in ${t.shards} shards on parallel
# runners, merged into one report whose verdict gates the workflow. The HTML and JUnit reports are
# kept as artifacts. To sign the package, store a private key (iofcert keygen) in the secret
# IOFCERT_KEY_PEM.
name: certify
on: [push, pull_request]

jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-node@v4
        with:
          node-version: 20
      - run: npm ci
      - run: npm test
      - name: package
        env:
          IOFCERT_KEY_PEM: \${{ secrets.IOFCERT_KEY_PEM }}
        run: |
          if [ -n "$IOFCERT_KEY_PEM" ]; then printf '%s\\n' "$IOFCERT_KEY_PEM" > "$RUNNER_TEMP/key.pem"; export IOFCERT_KEY="$RUNNER_TEMP/key.pem"; fi
          npm run package
      - uses: actions/upload-artifact@v4
        with:
          name: package
          path: dist/${t.filterId}.tgz

  certify:
    needs: build
    runs-on: ubuntu-latest
    strategy:
      fail-fast: false
      matrix:
        shard: [${list}]
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-node@v4
        with:
          node-version: 20
      # vendor code runs in a bubblewrap sandbox when it is there
      - run: sudo apt-get install -y bubblewrap
      - run: npm ci
      - uses: actions/download-artifact@v4
        with:
          name: package
          path: dist
      # exit 1 is a not-ready shard: the merged verdict below decides
      - run: npx iofcert certify dist/${t.filterId}.tgz --shard \${{ matrix.shard }}/${t.shards} --json reports/shard-\${{ matrix.shard }}.json || [ $? -eq 1 ]
      - uses: actions/upload-artifact@v4
        with:
          name: shard-\${{ matrix.shard }}
          path: reports/shard-\${{ matrix.shard }}.json

  verdict:
    needs: certify
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-node@v4
        with:
          node-version: 20
      - run: npm ci
      - uses: actions/download-artifact@v4
        with:
          pattern: shard-*
          path: reports
          merge-multiple: true
      - run: npx iofcert report merge reports/shard-*.json --out reports/report.json || echo "NOT_READY=1" >> "$GITHUB_ENV"
      - run: npx iofcert report html reports/report.json --out reports/report.html
      - run: npx iofcert report junit reports/report.json --out reports/junit.xml
      - uses: actions/upload-artifact@v4
        if: always()
        with:
          name: certification-report
          path: |
            reports/report.json
            reports/report.html
            reports/junit.xml
      # the gate: a not-ready verdict fails the workflow
      - run: test -z "$NOT_READY"
`
}

const GITIGNORE = `node_modules/
build/
dist/
reports/
*.pem
`

function readme(t: T): string {
  return `# ${t.name}

A cache-class I/O filter by ${t.vendor} for iofcert's framework. It counts guest I/O by operation
and size and logs the counts when a disk closes.

\`\`\`sh
npm install          # TypeScript, and iofcert (${t.spec})
npm test             # builds, then drives the filter through the framework
npm run package      # dist/${t.filterId}.tgz (signed when IOFCERT_KEY names a private key)
npm run certify      # the whole catalogue, reports in reports/ (exit 0: ready)
\`\`\`

- \`src/filter.ts\` is the filter; \`descriptor.json\` describes the package (its name, vendor,
  version, class and abiVersion must equal the module's).
- Dependencies: \`npm install <package>\` (a production dependency) and import it; \`iofcert
  package\` bundles production dependencies into the package and refuses a package whose imports
  do not resolve inside it. \`iofcert/sdk\` is provided at load time and is never bundled.
- To sign: \`npx iofcert keygen --out ~/.iofcert\`, then \`IOFCERT_KEY=~/.iofcert/private.pem npm run
  package\`, and raise \`acceptanceLevel\` in descriptor.json to \`PartnerSupported\`.
- Rerun one check: every failed check in the report prints its own command line, e.g.
  \`npx iofcert certify dist/${t.filterId}.tgz --grep '^ordering\\.flush-durability$' --seed 1 --quick\`.
- CI: \`.github/workflows/certify.yml\` certifies in ${t.shards} shards, merges them and fails on a
  not-ready verdict; the HTML and JUnit reports are kept as artifacts.
`
}
