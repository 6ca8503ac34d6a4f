/**
 * `npm run bench`: the standard workloads on the `memory` device through 0 and 3 pass-through
 * filters and, when fio is installed, `fio --ioengine=null` on the same job — side by side in one
 * run — with the ratios. JSON goes to out/bench.json (or `--json <file|->`).
 *
 *   node dist/harness/bench/standard.js [--runtime <s>] [--json <file|->]
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import Table from 'cli-table3'
import { measureJob, type SideSpec } from './engine.js'
import { runFio } from './fio-runner.js'
import { generatorOptionsFor } from './generator.js'
import { parseJobText } from './jobfile.js'
import { passThroughFilters } from './run.js'

const WORKLOADS: { name: string; job: string }[] = [
  { name: '4k-randrw-70-30', job: 'rw=randrw\nrwmixread=70\nbs=4k' },
  { name: '4k-randread', job: 'rw=randread\nbs=4k' },
  { name: '4k-randwrite', job: 'rw=randwrite\nbs=4k' },
  { name: '64k-seqwrite', job: 'rw=write\nbs=64k' },
]

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] : undefined
}

async function main(): Promise<void> {
  const runtime = Number(arg('--runtime') ?? 3)
  const jsonOut = arg('--json') ?? 'out/bench.json'
  const say = (s: string) => (jsonOut === '-' ? process.stderr : process.stdout).write(s)
  const three = await passThroughFilters(3)
  const sides: SideSpec[] = [
    { label: '0 filters', install: [], rules: [] },
    { label: '3 pass-through filters', install: three.install, rules: three.rules },
  ]
  const rows: Record<string, unknown>[] = []
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-std-'))
  try {
    for (const w of WORKLOADS) {
      const text = `[global]\n${w.job}\niodepth=32\nsize=256m\nnorandommap\ntime_based\nramp_time=1\nruntime=${runtime}\n\n[${w.name}]\n`
      const [spec] = parseJobText(text, { file: w.name })
      const capacity = 256 << 20
      const res = await measureJob(sides, { device: 'memory', vms: 1, capacity, dir: tmp }, i => generatorOptionsFor(spec!, { capacity, clone: i, runSeed: 1 }), 1)
      const jobFile = path.join(tmp, `${w.name}.fio`)
      fs.writeFileSync(jobFile, text)
      const fio = await runFio(jobFile, { runtimeS: runtime })
      const fioIops = fio ? fio.summary.jobs.reduce((a, j) => a + j.read.iops + j.write.iops, 0) : null
      const [bare, passes] = res
      rows.push({
        workload: w.name,
        iops0: Math.round(bare!.iops),
        iops3: Math.round(passes!.iops),
        p99us0: Math.round(pct(bare!.latency, 99) / 100) / 10,
        p99us3: Math.round(pct(passes!.latency, 99) / 100) / 10,
        fioNullIops: fioIops === null ? null : Math.round(fioIops),
        ratioBareToFio: fioIops ? Math.round((bare!.iops / fioIops) * 1000) / 1000 : null,
        costOf3PassThroughPct: Math.round((1 - passes!.iops / bare!.iops) * 1000) / 10,
        errors: bare!.errors + passes!.errors,
      })
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
  const doc = { tool: 'iofcert', runtimeS: runtime, device: 'memory', queueDepth: 32, cpus: os.cpus().length, node: process.version, workloads: rows }
  const t = new Table({ head: ['workload', 'IOPS 0 filters', 'IOPS 3 pass-through', 'cost of 3', 'fio null IOPS', 'ours/fio', 'p99 µs 0', 'p99 µs 3'], style: { head: [], border: [] } })
  for (const r of rows) t.push([r.workload, r.iops0, r.iops3, `${r.costOf3PassThroughPct}%`, r.fioNullIops ?? '–', r.ratioBareToFio ?? '–', r.p99us0, r.p99us3] as string[])
  say(`${t.toString()}\n`)
  if (jsonOut === '-') process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`)
  else {
    fs.mkdirSync(path.dirname(path.resolve(jsonOut)), { recursive: true })
    fs.writeFileSync(jsonOut, `${JSON.stringify(doc, null, 2)}\n`)
    say(`JSON: ${jsonOut}\n`)
  }
}

function pct(h: { bucketNs: number[]; counts: number[] }, p: number): number {
  const total = h.counts.reduce((a, b) => a + b, 0)
  let acc = 0
  for (let i = 0; i < h.counts.length; i++) {
    acc += h.counts[i]!
    if (acc >= (total * p) / 100) return h.bucketNs[i]!
  }
  return 0
}

await main()
