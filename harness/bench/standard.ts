/**
 * `npm run bench`: the standard workloads, side by side in one run —
 *
 * - the framework's I/O path alone: the `null` device (no data kept, as fio's null engine) through
 *   0 and 3 pass-through filters, beside `fio --ioengine=null` on the same job;
 * - with the data kept: the `memory` device through 0 and 3 pass-through filters, beside fio's
 *   `mmap` engine on a file in `/dev/shm` (fio copying every byte into and out of RAM) —
 *
 * with the ratios. fio's columns are empty when fio is not installed. JSON goes to out/bench.json
 * (or `--json <file|->`).
 *
 * Each side runs `--reps` times, interleaved, and keeps its best repetition (other work on the
 * machine only ever slows a side down); fio runs once per engine.
 *
 *   node dist/harness/bench/standard.js [--runtime <s>] [--reps <n>] [--ramp <s>] [--json <file|->]
 */
import { fmtPct } from '../../reports/index.js'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import Table from 'cli-table3'
import type { DiskBacking } from '../framework/index.js'
import { measureJob, type SideSpec, type SideStats } from './engine.js'
import { runFio } from './fio-runner.js'
import { generatorOptionsFor } from './generator.js'
import { LatencyHistogram } from './histogram.js'
import { parseJobText } from './jobfile.js'
import { passThroughFilters } from './run.js'

const WORKLOADS: { name: string; job: string }[] = [
  { name: '4k-randrw-70-30', job: 'rw=randrw\nrwmixread=70\nbs=4k' },
  { name: '4k-randread', job: 'rw=randread\nbs=4k' },
  { name: '4k-randwrite', job: 'rw=randwrite\nbs=4k' },
  { name: '64k-seqwrite', job: 'rw=write\nbs=64k' },
]
/** The workload the targets are set on. */
const TARGET = '4k-randrw-70-30'
const CAPACITY = 256 << 20

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] : undefined
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits

interface DeviceRow {
  iops0: number
  iops3: number
  p99us0: number
  p99us3: number
  /** Share of the bare path's IOPS the 3 pass-through filters cost, in %. */
  costOf3PassThroughPct: number
}

const p99Us = (s: SideStats) => round(LatencyHistogram.fromJSON(s.latency).percentile(99) / 1000, 1)

function deviceRow(bare: SideStats, three: SideStats): DeviceRow {
  return {
    iops0: Math.round(bare.iops),
    iops3: Math.round(three.iops),
    p99us0: p99Us(bare),
    p99us3: p99Us(three),
    costOf3PassThroughPct: round((1 - three.iops / bare.iops) * 100, 1),
  }
}

async function main(): Promise<void> {
  const runtime = Number(arg('--runtime') ?? 2)
  const reps = Number(arg('--reps') ?? 5)
  const ramp = Number(arg('--ramp') ?? 1)
  if (!(ramp >= 0)) throw new Error(`--ramp must be a number of seconds ≥ 0, got "${arg('--ramp')}"`)
  if (!Number.isInteger(reps) || reps < 1) throw new Error(`--reps must be a positive integer, got "${arg('--reps')}"`)
  if (!(runtime > 0)) throw new Error(`--runtime must be a positive number of seconds, got "${arg('--runtime')}"`)
  const jsonOut = arg('--json') ?? 'out/bench.json'
  const say = (s: string) => (jsonOut === '-' ? process.stderr : process.stdout).write(s)
  const three = await passThroughFilters(3)
  const sides: SideSpec[] = [
    { label: '0 filters', install: [], rules: [] },
    { label: '3 pass-through filters', install: three.install, rules: three.rules },
  ]
  const rows: Record<string, unknown>[] = []
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-std-'))
  let fioVersion: string | null = null
  let errors = 0
  try {
    for (const w of WORKLOADS) {
      const text = `[global]\n${w.job}\niodepth=32\nsize=256m\nnorandommap\ntime_based\nramp_time=${ramp}\nruntime=${runtime}\n\n[${w.name}]\n`
      const [spec] = parseJobText(text, { file: w.name })
      const measure = async (device: DiskBacking) => {
        say(`${w.name} on ${device}…\n`)
        const [bare, passes] = await measureJob(sides, { device, vms: 1, capacity: CAPACITY, dir: tmp }, i => generatorOptionsFor(spec!, { capacity: CAPACITY, clone: i, runSeed: 1 }), reps, 'best')
        errors += bare!.errors + passes!.errors
        return deviceRow(bare!, passes!)
      }
      const nul = await measure('null')
      const mem = await measure('memory')
      const jobFile = path.join(tmp, `${w.name}.fio`)
      fs.writeFileSync(jobFile, text)
      const fioIops = async (engine: 'null' | 'mmap') => {
        say(`${w.name} on fio ${engine}…\n`)
        const run = await runFio(jobFile, { runtimeS: runtime, engine })
        if (run === null) return null
        fioVersion = run.version
        return Math.round(run.summary.jobs.reduce((a, j) => a + j.read.iops + j.write.iops, 0))
      }
      const fioNull = await fioIops('null')
      const fioMmap = fioNull === null ? null : await fioIops('mmap')
      rows.push({
        workload: w.name,
        null: nul,
        memory: mem,
        fio: { null: fioNull, mmap: fioMmap },
        ratios: {
          nullToFioNull: fioNull ? round(nul.iops0 / fioNull, 3) : null,
          memoryToFioMmap: fioMmap ? round(mem.iops0 / fioMmap, 3) : null,
          memoryToFioNull: fioNull ? round(mem.iops0 / fioNull, 3) : null,
        },
      })
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
  const target = rows.find(r => r.workload === TARGET) as { null: DeviceRow; ratios: { nullToFioNull: number | null } }
  const targets = {
    workload: TARGET,
    /** The bare framework path (null device, no filter) at or above fio's null engine. */
    bareAtOrAboveFioNull: target.ratios.nullToFioNull === null ? null : target.ratios.nullToFioNull >= 1,
    /** Three pass-through filters cost at most 10 % of the bare path's IOPS. */
    threePassThroughWithin10Pct: target.null.costOf3PassThroughPct <= 10,
  }
  const doc = { tool: 'iofcert', runtimeS: runtime, rampS: ramp, reps, queueDepth: 32, sizeBytes: CAPACITY, cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? null, node: process.version, fio: fioVersion, workloads: rows, targets, errors }

  const style = { head: [], border: [] }
  const pathTable = new Table({ head: ['null device (I/O path)', 'IOPS 0 filters', 'IOPS 3 pass-through', 'IOPS 3 vs 0', 'fio null IOPS', 'ours / fio null', 'p99 µs 0', 'p99 µs 3'], style })
  const memTable = new Table({ head: ['memory device (data kept)', 'IOPS 0 filters', 'IOPS 3 pass-through', 'IOPS 3 vs 0', 'fio mmap IOPS', 'ours / fio mmap', 'ours / fio null', 'p99 µs 0'], style })
  for (const r of rows as { workload: string; null: DeviceRow; memory: DeviceRow; fio: { null: number | null; mmap: number | null }; ratios: Record<string, number | null> }[]) {
    pathTable.push([r.workload, r.null.iops0, r.null.iops3, fmtPct(-r.null.costOf3PassThroughPct), r.fio.null ?? '–', r.ratios.nullToFioNull ?? '–', r.null.p99us0, r.null.p99us3].map(String))
    memTable.push([r.workload, r.memory.iops0, r.memory.iops3, fmtPct(-r.memory.costOf3PassThroughPct), r.fio.mmap ?? '–', r.ratios.memoryToFioMmap ?? '–', r.ratios.memoryToFioNull ?? '–', r.memory.p99us0].map(String))
  }
  say(`${pathTable.toString()}\n${memTable.toString()}\n`)
  const yes = (b: boolean | null) => (b === null ? 'not measured (no fio)' : b ? 'met' : 'NOT met')
  say(`${TARGET}: bare path ≥ fio null: ${yes(targets.bareAtOrAboveFioNull)}; 3 pass-through filters ≤ 10 %: ${yes(targets.threePassThroughWithin10Pct)}\n`)
  if (jsonOut === '-') process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`)
  else {
    fs.mkdirSync(path.dirname(path.resolve(jsonOut)), { recursive: true })
    fs.writeFileSync(jsonOut, `${JSON.stringify(doc, null, 2)}\n`)
    say(`JSON: ${jsonOut}\n`)
  }
  if (errors > 0) {
    say(`${errors} I/O error(s) during the run\n`)
    process.exitCode = 1
  }
}

await main()
