/**
 * docs/kubernetes.md's two command lines, as written there: the shard line of the Indexed Job run
 * as four processes at once (JOB_COMPLETION_INDEX 0 to 3), then the merge line; the merged report
 * must have the verdict and the check results of one run of the same checks. A part of the
 * catalogue with --quick keeps it short; the split and the merge are those of the whole one.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { CertReport } from '../../reports/document.js'
import { referencePackage } from '../helpers/controls.js'
import { controlPackage } from '../helpers/suite-runs.js'

const DOC = fileURLToPath(new URL('../../../docs/kubernetes.md', import.meta.url))
const CLI = fileURLToPath(new URL('../../harness/cli/main.js', import.meta.url))
const GREP = '^(package|ordering)\\.'

/** The `args:` line of the YAML block that runs `what`. */
function docLine(what: RegExp): string {
  const lines = fs.readFileSync(DOC, 'utf8').split('\n').map(l => /^\s+- (iofcert .*)$/.exec(l)?.[1]).filter((l): l is string => l !== undefined)
  const found = lines.filter(l => what.test(l))
  assert.equal(found.length, 1, `one ${what} line in docs/kubernetes.md: ${JSON.stringify(lines)}`)
  return found[0]!
}

/** Runs a shell line with `iofcert` on PATH; resolves its exit code and output. */
function sh(line: string, env: Record<string, string>, bin: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('sh', ['-c', line], { env: { ...process.env, ...env, PATH: `${bin}:${process.env.PATH}`, CI: '1' }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    p.stdout.on('data', d => { out += d })
    p.stderr.on('data', d => { out += d })
    p.on('error', reject)
    p.on('close', code => resolve({ code: code ?? -1, out }))
  })
}

function statuses(doc: CertReport): Record<string, string> {
  return Object.fromEntries(doc.checks.map(c => [c.id, `${c.status}${c.required ? '' : ' (not required)'}`]))
}

for (const subject of ['passthrough', 'lying-flush'] as const) {
  test(`the Kubernetes Indexed Job's shard and merge lines give one run's verdict (${subject})`, async () => {
    const pkg = subject === 'passthrough' ? referencePackage('passthrough') : await controlPackage('lying-flush')
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-k8s-'))
    try {
      const bin = path.join(dir, 'bin')
      fs.mkdirSync(bin)
      fs.writeFileSync(path.join(bin, 'iofcert'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`, { mode: 0o755 })
      const reports = path.join(dir, 'reports')
      fs.mkdirSync(reports)
      const place = (line: string) => line.replaceAll('/pkg/filter.tgz', pkg).replaceAll('/reports/', `${reports}/`)
      // the documented line, on a part of the catalogue
      const shard = place(docLine(/^iofcert certify /)).replace(`iofcert certify ${pkg} `, `iofcert certify ${pkg} --quick --concurrency 1 --grep '${GREP}' `)
      assert.match(shard, /--shard \$\(\(JOB_COMPLETION_INDEX \+ 1\)\)\/4/)
      const runs = await Promise.all([0, 1, 2, 3].map(i => sh(shard, { JOB_COMPLETION_INDEX: String(i) }, bin)))
      runs.forEach((r, i) => assert.equal(r.code, 0, `shard ${i + 1} (a not-ready shard exits 0 through || [ $? -eq 1 ]): ${r.out}`))
      assert.deepEqual(fs.readdirSync(reports).sort(), ['shard-1.json', 'shard-2.json', 'shard-3.json', 'shard-4.json'])

      const merged = await sh(place(docLine(/^iofcert report merge /)), {}, bin)
      const doc = JSON.parse(fs.readFileSync(path.join(reports, 'report.json'), 'utf8')) as CertReport
      assert.ok(fs.readFileSync(path.join(reports, 'report.html'), 'utf8').includes('<html'), 'the merge pod writes the HTML report')
      assert.ok(fs.readFileSync(path.join(reports, 'junit.xml'), 'utf8').includes('<testsuites'), 'and the JUnit report')

      const single = await sh(`iofcert certify ${pkg} --seed 1 --quick --grep '${GREP}' --json ${path.join(dir, 'single.json')}`, {}, bin)
      const one = JSON.parse(fs.readFileSync(path.join(dir, 'single.json'), 'utf8')) as CertReport
      assert.equal(doc.verdict, one.verdict)
      assert.equal(doc.verdict, subject === 'passthrough' ? 'ready' : 'not-ready')
      assert.deepEqual(statuses(doc), statuses(one))
      // the merge pod's exit code is the gate, as the single run's is
      assert.equal(merged.code, single.code, merged.out)
      assert.equal(merged.code, subject === 'passthrough' ? 0 : 1, merged.out)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
}
