// What the sandbox of vendor code costs, measured side by side in one run:
//
// - start-up: a certify run of one check that needs the subject process (package.abi) against a
//   run of one that does not (package.descriptor, decided by the harness alone), with bubblewrap
//   and without an OS sandbox (--sandbox none: still a separate process under Node's permission
//   model and the hardened realm);
// - the I/O path: `iofcert bench <passthrough package>` on the null device, in the bubblewrap'd
//   subject and in the unsandboxed one, the package's filtered IOPS beside its own baseline.
//
// Repetitions are interleaved; medians are reported. JSON goes to out/sandbox-cost.json.
//
//   node scripts/sandbox-cost.mjs [--reps <n>] [--runtime <s>]
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

const root = new URL('..', import.meta.url).pathname
const cli = path.join(root, 'dist/harness/cli/main.js')
const pkg = path.join(root, 'dist/packages/passthrough.tgz')
const arg = (n, d) => (process.argv.includes(n) ? Number(process.argv[process.argv.indexOf(n) + 1]) : d)
const reps = arg('--reps', 5)
const runtime = arg('--runtime', 3)
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-sandbox-cost-'))
const median = xs => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

function timed(args) {
  const t0 = performance.now()
  execFileSync(process.execPath, [cli, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
  return performance.now() - t0
}

const startup = { bwrap: { subject: [], harnessOnly: [] }, none: { subject: [], harnessOnly: [] } }
const io = { bwrap: { filtered: [], baseline: [] }, none: { filtered: [], baseline: [] } }
for (let r = 0; r < reps; r++) {
  for (const mode of r % 2 === 0 ? ['bwrap', 'none'] : ['none', 'bwrap']) {
    startup[mode].harnessOnly.push(timed(['certify', pkg, '--grep', '^package\\.descriptor$', '--sandbox', mode]))
    startup[mode].subject.push(timed(['certify', pkg, '--grep', '^package\\.abi$', '--sandbox', mode]))
    const out = path.join(tmp, `bench-${mode}-${r}.json`)
    execFileSync(process.execPath, [cli, 'bench', pkg, '--device', 'null', '--runtime', String(runtime), '--sandbox', mode, '--json', out], { stdio: ['ignore', 'ignore', 'pipe'] })
    const job = JSON.parse(fs.readFileSync(out, 'utf8')).jobs[0]
    io[mode].filtered.push(job.read.iops + job.write.iops)
    const b = job.iofcert.baseline
    io[mode].baseline.push(b.read.iops + b.write.iops)
  }
}
const doc = {
  machine: { cpus: os.cpus().length, node: process.version },
  reps,
  startupMs: Object.fromEntries(Object.entries(startup).map(([m, s]) => [m, { harnessOnly: Math.round(median(s.harnessOnly)), withSubject: Math.round(median(s.subject)), subjectCost: Math.round(median(s.subject) - median(s.harnessOnly)) }])),
  benchNullDevice: Object.fromEntries(Object.entries(io).map(([m, s]) => [m, { filteredIops: Math.round(median(s.filtered)), baselineIops: Math.round(median(s.baseline)), ratio: +(median(s.filtered) / median(s.baseline)).toFixed(3) }])),
}
doc.benchNullDevice.bwrapOverNone = +(doc.benchNullDevice.bwrap.filteredIops / doc.benchNullDevice.none.filteredIops).toFixed(3)
fs.mkdirSync(path.join(root, 'out'), { recursive: true })
fs.writeFileSync(path.join(root, 'out/sandbox-cost.json'), JSON.stringify(doc, null, 2) + '\n')
console.log(JSON.stringify(doc, null, 2))
fs.rmSync(tmp, { recursive: true, force: true })
