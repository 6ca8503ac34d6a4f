/**
 * `iofcert init`: what it writes, and what it refuses without touching anything. The whole path
 * from the packed tarball to a `ready` verdict is test/serial/first-filter.test.ts.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { validateDescriptor } from '../harness/framework/package/index.js'

const CLI = fileURLToPath(new URL('../harness/cli/main.js', import.meta.url))

function iofcert(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' })
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
}

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-init-'))
}

test('init writes a typed cache filter project whose descriptor, module and scripts agree', () => {
  const root = tmp()
  try {
    const dir = path.join(root, 'Acme Sizes')
    const r = iofcert('init', dir, '--vendor', 'ACME', '--iofcert', '^0.1.0', '--shards', '3')
    assert.equal(r.code, 0, r.stderr)
    // the name comes from the directory, made valid
    assert.match(r.stdout, /ACME_acme-sizes_1\.0\.0 \(cache\)/)
    for (const f of ['package.json', 'descriptor.json', 'tsconfig.json', 'src/filter.ts', 'test/filter.test.ts', '.github/workflows/certify.yml', '.gitignore', 'README.md']) {
      assert.ok(fs.existsSync(path.join(dir, f)), `${f} is written`)
    }
    const descriptor = JSON.parse(fs.readFileSync(path.join(dir, 'descriptor.json'), 'utf8'))
    const checked = validateDescriptor(descriptor, { metadataOnly: true })
    assert.ok(checked.ok, JSON.stringify(checked))
    assert.equal(descriptor.entry, 'build/src/filter.js')
    const src = fs.readFileSync(path.join(dir, 'src/filter.ts'), 'utf8')
    for (const field of ['name', 'vendor', 'version', 'class'] as const) assert.ok(src.includes(`${field}: '${descriptor[field]}'`), `the module's ${field} is the descriptor's`)
    assert.match(src, /from 'iofcert\/sdk'/)
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'))
    assert.deepEqual(Object.keys(pkg.scripts), ['build', 'test', 'package', 'certify'])
    assert.equal(pkg.devDependencies.iofcert, '^0.1.0')
    assert.deepEqual(pkg.files, ['build/src/'])
    assert.match(pkg.scripts.package, /iofcert package \. --out dist\/ACME_acme-sizes_1\.0\.0\.tgz/)
    assert.match(pkg.scripts.certify, /iofcert certify dist\/ACME_acme-sizes_1\.0\.0\.tgz .*--json .*--html .*--junit /)
    const wf = fs.readFileSync(path.join(dir, '.github/workflows/certify.yml'), 'utf8')
    assert.match(wf, /shard: \[1, 2, 3\]/)
    assert.match(wf, /--shard \$\{\{ matrix\.shard \}\}\/3/)
    assert.match(wf, /iofcert report merge reports\/shard-\*\.json --out reports\/report\.json/)
    assert.match(wf, /upload-artifact[\s\S]*report\.html[\s\S]*junit\.xml/)
    assert.ok(!fs.existsSync(path.join(dir, 'vendor')), 'with --iofcert nothing is packed')
  } finally {
    fs.rmSync(root, { recursive: true, force: true })
  }
})

test('init refuses a directory that is not empty and changes nothing in it', () => {
  const dir = tmp()
  try {
    fs.writeFileSync(path.join(dir, 'package.json'), '{"name":"mine"}\n')
    const r = iofcert('init', dir, '--iofcert', '^0.1.0')
    assert.equal(r.code, 2)
    assert.match(r.stderr, /^iofcert init: .* is not empty \(package\.json\); init writes only into a new or empty directory/)
    assert.deepEqual(fs.readdirSync(dir), ['package.json'])
    assert.equal(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'), '{"name":"mine"}\n')
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('init refuses bad names, vendors, classes and shard counts with one clear line', () => {
  const root = tmp()
  try {
    const cases: [string[], RegExp][] = [
      [['--name', 'Bad_Name'], /--name must be 2–32 characters/],
      [['--vendor', '9lives'], /--vendor must be 2–16 letters and digits/],
      [['--class', 'encryption'], /--class encryption is not open to vendors \(open: replication, cache\)/],
      [['--class', 'replication'], /--class replication has no template yet/],
      [['--shards', '0'], /--shards must be an integer from 1 to 64/],
      [['--shards', 'x'], /--shards must be an integer from 1 to 64/],
    ]
    for (const [flags, message] of cases) {
      const dir = path.join(root, 'p')
      const r = iofcert('init', dir, '--iofcert', '^0.1.0', ...flags)
      assert.equal(r.code, 2, `${flags.join(' ')}: ${r.stderr}`)
      assert.match(r.stderr, message)
      assert.equal(r.stderr.trim().split('\n').length, 1)
      assert.ok(!fs.existsSync(dir), `${flags.join(' ')} writes nothing`)
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true })
  }
})
