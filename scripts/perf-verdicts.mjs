// How often the performance checks decide what they should, counted over repeated runs on this
// machine: `iofcert certify <package> --quick --grep '^performance\.'`, one run at a time.
//
// Rows (each run on its own, in this order):
//   refs        the bundled passthrough, cache and cdp: ready (a marginal pass counts as ready)
//   refs-busy   the same while another process keeps one core busy (a CPU-burning child)
//   iops-ctl    a filter that costs as much per I/O as the bare path: performance.iops failed
//   lat-ctl     a filter that completes 2 % of its I/Os 2 ms late: performance.latency failed
//   fresh       `npm ci && npm start` in a copy of the repository's files (what a fresh clone
//               holds: tracked and untracked, not ignored): the bundled cdp's verdict is ready
//
// Prints the counts and each run's time; JSON goes to out/perf-verdicts.json (or --json <file>).
//
//   node scripts/perf-verdicts.mjs [--runs <n>] [--rows refs,refs-busy,iops-ctl,lat-ctl,fresh] [--refs passthrough,cache,cdp] [--seed <n>] [--json <file>]
//
// The runs vary the seed (seed, seed + 1, …) so that they are not one run repeated.
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

const root = new URL('..', import.meta.url).pathname
const cli = path.join(root, 'dist/harness/cli/main.js')
const opt = (name, d) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : d)
const runs = Number(opt('--runs', '10'))
const rows = opt('--rows', 'refs,refs-busy,iops-ctl,lat-ctl,fresh').split(',')
const seed0 = Number(opt('--seed', '1'))
const refNames = opt('--refs', 'passthrough,cache,cdp').split(',')
const jsonOut = opt('--json', path.join(root, 'out/perf-verdicts.json'))
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-perf-verdicts-'))

if (!fs.existsSync(cli)) {
  console.error('build first: npm run build')
  process.exit(2)
}

/** Packages a negative control from test/controls (compiled in dist/test/controls) as a vendor would. */
async function control(name) {
  const { packageModule, controlModule } = await import(path.join(root, 'dist/test/helpers/controls.js'))
  return packageModule(controlModule(name), { outDir: tmp })
}

/** One certify run of the performance checks; its report, time and statuses. */
function certify(pkg, seed, label) {
  const out = path.join(tmp, `${label}-${seed}.json`)
  // the machine's load when the run starts (other processes' work shows here)
  const loadavg = Math.round(os.loadavg()[0] * 100) / 100
  const t0 = performance.now()
  const r = spawnSync(process.execPath, [cli, 'certify', pkg, '--quick', '--grep', '^performance\\.', '--seed', String(seed), '--json', out], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  const wallMs = Math.round(performance.now() - t0)
  if (!fs.existsSync(out)) throw new Error(`${label}: no report (exit ${r.status}): ${r.stderr.slice(-2000)}`)
  const doc = JSON.parse(fs.readFileSync(out, 'utf8'))
  const byId = Object.fromEntries(doc.checks.map(c => [c.id, c]))
  const status = id => byId[id]?.status ?? 'absent'
  const marginal = doc.checks.filter(c => c.marginal === true || c.evidence?.marginal === true).map(c => c.id)
  return {
    label, seed, wallMs, loadavg,
    checksMs: doc.checks.reduce((s, c) => s + c.durationMs, 0),
    verdict: doc.verdict,
    iops: status('performance.iops'), latency: status('performance.latency'), scaling: status('performance.scaling'),
    marginal,
    noise: doc.environment.noise ?? null,
    durations: Object.fromEntries(doc.checks.map(c => [c.id, c.durationMs])),
    messages: Object.fromEntries(doc.checks.filter(c => c.status !== 'passed' || marginal.includes(c.id)).map(c => [c.id, c.message ?? ''])),
  }
}

/** A child process that keeps one core busy until killed. */
function burner() {
  return spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' })
}

const results = {}
const log = (s) => process.stdout.write(`${s}\n`)
const line = r => `  ${r.label} seed ${r.seed}: ${r.verdict} (iops ${r.iops}, latency ${r.latency}, scaling ${r.scaling}${r.marginal.length > 0 ? `; marginal: ${r.marginal.join(', ')}` : ''}) ${(r.checksMs / 1000).toFixed(1)} s of checks, ${(r.wallMs / 1000).toFixed(1)} s wall, load ${r.loadavg} before`

async function refs(busy) {
  const row = busy ? 'refs-busy' : 'refs'
  results[row] = {}
  const child = busy ? burner() : null
  try {
    for (const name of refNames) {
      const list = []
      for (let i = 0; i < runs; i++) {
        const r = certify(path.join(root, `dist/packages/${name}.tgz`), seed0 + i, `${row}-${name}`)
        list.push(r)
        log(line(r))
      }
      results[row][name] = { ready: list.filter(r => r.verdict === 'ready').length, marginal: list.filter(r => r.marginal.length > 0).length, runs: list.length, list }
    }
  } finally {
    child?.kill()
  }
}

async function ctl(row, name, check) {
  const pkg = await control(name)
  const list = []
  for (let i = 0; i < runs; i++) {
    const r = certify(pkg, seed0 + i, `${row}-${name}`)
    list.push(r)
    log(line(r))
  }
  results[row] = { control: name, check, failed: list.filter(r => r[check === 'performance.iops' ? 'iops' : 'latency'] === 'failed').length, onlyThat: list.filter(r => r.verdict === 'not-ready' && ['iops', 'latency'].filter(k => r[k] === 'failed').length === 1).length, runs: list.length, list }
}

/** A copy of the repository's files (tracked and untracked, not ignored), `npm ci`, `npm start`. */
function fresh() {
  const dir = path.join(tmp, 'clone')
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' }).split('\0').filter(f => f !== '' && fs.existsSync(path.join(root, f)))
  for (const f of files) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true })
    fs.copyFileSync(path.join(root, f), path.join(dir, f))
  }
  const t0 = performance.now()
  execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] })
  const ciMs = Math.round(performance.now() - t0)
  const t1 = performance.now()
  const r = spawnSync('npm', ['start'], { cwd: dir, encoding: 'utf8', env: { ...process.env, CI: '1' } })
  const startMs = Math.round(performance.now() - t1)
  const verdict = /^VERDICT: (\S+)/m.exec(r.stdout)?.[1] ?? null
  results.fresh = { verdict, exit: r.status, npmCiMs: ciMs, npmStartMs: startMs, tail: r.stdout.split('\n').slice(-12).join('\n') }
  log(`  fresh copy: npm ci ${(ciMs / 1000).toFixed(0)} s, npm start ${(startMs / 1000).toFixed(0)} s: VERDICT ${verdict}`)
}

log(`perf-verdicts: ${runs} run(s) per row on ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? 'unknown'}), rows ${rows.join(', ')}`)
try {
  if (rows.includes('refs')) await refs(false)
  if (rows.includes('refs-busy')) await refs(true)
  if (rows.includes('iops-ctl')) await ctl('iops-ctl', 'double-cost', 'performance.iops')
  if (rows.includes('lat-ctl')) await ctl('lat-ctl', 'late-completions', 'performance.latency')
  if (rows.includes('fresh')) fresh()
} finally {
  const doc = { machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, loadavg: os.loadavg() }, runs, seed: seed0, results }
  fs.mkdirSync(path.dirname(jsonOut), { recursive: true })
  fs.writeFileSync(jsonOut, JSON.stringify(doc, null, 2) + '\n')
  fs.rmSync(tmp, { recursive: true, force: true })
}

const med = xs => (xs.length === 0 ? NaN : [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)])
const times = list => `checks median ${(med(list.map(r => r.checksMs)) / 1000).toFixed(1)} s, max ${(Math.max(...list.map(r => r.checksMs)) / 1000).toFixed(1)} s`
log('\ncounts')
for (const row of ['refs', 'refs-busy']) {
  if (results[row] === undefined) continue
  for (const [name, r] of Object.entries(results[row])) log(`  ${row.padEnd(9)} ${name.padEnd(11)} ready ${r.ready} of ${r.runs} (marginal in ${r.marginal}; ${times(r.list)})`)
}
for (const row of ['iops-ctl', 'lat-ctl']) {
  const r = results[row]
  if (r !== undefined) log(`  ${row.padEnd(9)} ${r.control.padEnd(11)} ${r.check} failed ${r.failed} of ${r.runs} (only that check failed in ${r.onlyThat}; ${times(r.list)})`)
}
if (results.fresh !== undefined) log(`  fresh     npm start   VERDICT ${results.fresh.verdict}`)
log(`JSON: ${jsonOut}`)
