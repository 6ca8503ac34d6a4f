/**
 * A vendor's first hour, end to end, as docs/first-filter.md tells it: iofcert packed (`npm pack`)
 * and installed globally from the tarball; `iofcert init`; `npm install`; a production dependency
 * added and imported by the filter; `npm test` (the scaffold's unit test through the framework's
 * library API); `npm run certify` (build, package with the dependency bundled, the whole catalogue)
 * — and the verdict is `ready`.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { list } from 'tar'
import type { CertReport } from '../../reports/document.js'

const REPO = fileURLToPath(new URL('../../../', import.meta.url))

/** The environment of a shell on a vendor's machine: none of the npm variables of the run that started this test. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== 'INIT_CWD' && k !== 'NODE_OPTIONS') env[k] = v
  return { ...env, npm_config_prefer_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false', CI: '1', ...extra }
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    p.stdout.on('data', d => { out += d })
    p.stderr.on('data', d => { out += d })
    p.on('error', reject)
    p.on('close', code => resolve({ code: code ?? -1, out }))
  })
}

test('from the packed tarball to a ready TypeScript filter with a bundled dependency', { timeout: 15 * 60_000 }, async t => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-first-'))
  try {
    const global = path.join(work, 'global')
    const env = cleanEnv({ PATH: `${path.join(global, 'bin')}:${process.env.PATH}` })
    const step = async (what: string, cmd: string, args: string[], cwd: string, ok: (code: number) => boolean = c => c === 0) => {
      const t0 = Date.now()
      const r = await run(cmd, args, cwd, env)
      t.diagnostic(`${what}: exit ${r.code} in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
      assert.ok(ok(r.code), `${what} exited ${r.code}:\n${r.out.slice(-4000)}`)
      return r.out
    }

    // iofcert as a vendor gets it
    await step('npm pack', 'npm', ['pack', REPO, '--pack-destination', work, '--ignore-scripts'], work)
    const tarball = fs.readdirSync(work).find(f => /^iofcert-.*\.tgz$/.test(f))
    assert.ok(tarball, 'npm pack wrote iofcert-<version>.tgz')
    await step('npm i -g', 'npm', ['install', '--global', '--prefix', global, path.join(work, tarball)], work)

    // the project
    await step('iofcert init', 'iofcert', ['init', 'sizes', '--vendor', 'ACME'], work)
    const proj = path.join(work, 'sizes')
    await step('npm install', 'npm', ['install'], proj)

    // a dependency of its own, installed as any npm package is, and imported by the filter
    const dep = path.join(work, 'size-buckets')
    fs.mkdirSync(dep)
    fs.writeFileSync(path.join(dep, 'package.json'), JSON.stringify({ name: 'size-buckets', version: '1.2.0', type: 'module', exports: './index.js' }))
    fs.writeFileSync(path.join(dep, 'index.js'), `/** "4k", "64k", "1m": an I/O size's bucket. */\nexport function bucket(bytes) {\n  return bytes >= 1 << 20 ? \`\${bytes >> 20}m\` : \`\${Math.ceil(bytes / 1024)}k\`\n}\n`)
    fs.writeFileSync(path.join(dep, 'index.d.ts'), 'export declare function bucket(bytes: number): string\n')
    await step('npm pack (dependency)', 'npm', ['pack', dep, '--pack-destination', work], work)
    await step('npm install (dependency)', 'npm', ['install', path.join(work, 'size-buckets-1.2.0.tgz')], proj)
    const filterTs = path.join(proj, 'src', 'filter.ts')
    const src = fs.readFileSync(filterTs, 'utf8')
    assert.ok(src.includes("const key = `${io.op} ${io.length}`"), 'the scaffold counts by op and length')
    fs.writeFileSync(filterTs, src
      .replace("import { defineFilter, PASS, type CloseReason, type Io } from 'iofcert/sdk'", "import { defineFilter, PASS, type CloseReason, type Io } from 'iofcert/sdk'\nimport { bucket } from 'size-buckets'")
      .replace("const key = `${io.op} ${io.length}`", "const key = `${io.op} ${bucket(io.length)}`"))
    const testTs = path.join(proj, 'test', 'filter.test.ts')
    fs.writeFileSync(testTs, fs.readFileSync(testTs, 'utf8').replaceAll('/write 4096: 1/', '/write 4k: 1/').replaceAll('/read 4096: 1/', '/read 4k: 1/'))

    await step('npm test', 'npm', ['test'], proj)
    const certify = await step('npm run certify', 'npm', ['run', 'certify'], proj)
    assert.match(certify, /ready/)

    // the package bundles the dependency and nothing of the build's
    const pkgFile = path.join(proj, 'dist', 'ACME_sizes_1.0.0.tgz')
    const entries: string[] = []
    await list({ file: pkgFile, onReadEntry: e => { entries.push(e.path) } })
    assert.ok(entries.includes('build/src/filter.js'), entries.join(' '))
    assert.ok(entries.includes('node_modules/size-buckets/index.js'), entries.join(' '))
    assert.ok(!entries.some(e => e.startsWith('src/') || e.startsWith('test/') || e.startsWith('build/test/') || e.includes('node_modules/typescript/') || e.includes('node_modules/iofcert/')), entries.join(' '))

    const doc = JSON.parse(fs.readFileSync(path.join(proj, 'reports', 'report.json'), 'utf8')) as CertReport
    assert.equal(doc.filter.id, 'ACME_sizes_1.0.0')
    assert.equal(doc.verdict, 'ready', doc.reasons?.join('\n'))
    assert.ok(doc.checks.length >= 42)
    assert.ok(fs.statSync(path.join(proj, 'reports', 'report.html')).size > 0)
    assert.ok(fs.readFileSync(path.join(proj, 'reports', 'junit.xml'), 'utf8').includes('<testsuites'))
  } finally {
    fs.rmSync(work, { recursive: true, force: true })
  }
})
