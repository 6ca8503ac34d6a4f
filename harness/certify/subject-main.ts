/**
 * The subject process: the only process of a certify run (or of a bench run with a package) that
 * executes vendor code. It reads its task on stdin, runs the checks it was given and reports each
 * on file descriptor 3. It decides nothing: the harness that started it recomputes what counts,
 * writes and signs the report.
 */
import * as fs from 'node:fs'
import * as v8 from 'node:v8'
import type { BenchTask, SubjectMessage, SubjectTask } from './protocol.js'
import { BenchError, runBench, type JobSpec } from '../bench/index.js'
import { isIofError } from '../framework/index.js'
import { catalogue, loadReferences, runChecks } from './runner.js'
import { defaultWorkDir, type RunOptions } from './context.js'
import { prepareSubject } from './subject.js'
import { profileThresholds } from '../../reports/index.js'

const CHANNEL = 3
const pause = new Int32Array(new SharedArrayBuffer(4))

/** Writes a whole message; the pipe may be full (the harness reads as fast as it can). */
function send(m: SubjectMessage): void {
  const buf = Buffer.from(JSON.stringify(m) + '\n')
  let off = 0
  while (off < buf.length) {
    try {
      off += fs.writeSync(CHANNEL, buf, off, buf.length - off)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e
      Atomics.wait(pause, 0, 0, 5)
    }
  }
}

async function readTask(): Promise<SubjectTask> {
  const chunks: Buffer[] = []
  for await (const c of process.stdin) chunks.push(c as Buffer)
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as SubjectTask
}

async function bench(task: BenchTask): Promise<void> {
  const jobs = v8.deserialize(Buffer.from(task.jobs, 'base64')) as JobSpec[]
  const { doc, profile } = await runBench({
    jobs,
    package: task.package,
    device: task.device,
    ...(task.vms !== undefined ? { vms: task.vms } : {}),
    version: task.version,
  })
  send({ t: 'bench', doc, profile })
  send({ t: 'end' })
}

async function main(): Promise<void> {
  send({ t: 'hello' })
  const task = await readTask()
  if (task.kind === 'bench') return bench(task)
  const thresholds = profileThresholds(task.profileName)
  if (thresholds === undefined) throw new Error(`unknown profile ${task.profileName}`)
  const all = await catalogue()
  const byId = new Map(all.map(d => [d.id, d]))
  const selected = task.ids.map(id => byId.get(id)).filter(d => d !== undefined)
  const workDir = defaultWorkDir()
  const subject = await prepareSubject(task.package, workDir)
  const upgradeFrom = task.upgradeFrom === null ? null : await prepareSubject(task.upgradeFrom, workDir)
  const options: RunOptions = {
    quick: task.quick,
    certified: task.certified,
    seed: task.seed,
    profileName: task.profileName,
    thresholds,
    upgradeFrom,
    references: await loadReferences(),
    workDir,
    ...(task.checkRunMs !== undefined ? { checkRunMs: task.checkRunMs } : {}),
  }
  await runChecks(selected, subject, options, {
    ...(task.concurrency !== undefined ? { concurrency: task.concurrency } : {}),
    onStart: id => send({ t: 'start', id }),
    onCheck: e => send({ t: 'check', result: e.result, ...(e.artifacts ? { artifacts: e.artifacts } : {}) }),
  })
  send({ t: 'end' })
}

main().then(
  () => process.exit(0),
  e => {
    try {
      // bad input found in the subject (a job the generator cannot run) keeps its code and exit code 2
      const exitCode = e instanceof BenchError ? 2 : isIofError(e) && (e.exitCode === 1 || e.exitCode === 2) ? e.exitCode : undefined
      const code = e instanceof BenchError || isIofError(e) ? e.code : undefined
      send({ t: 'fatal', message: e instanceof BenchError || isIofError(e) ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e), ...(code !== undefined ? { code } : {}), ...(exitCode !== undefined ? { exitCode } : {}) })
    } finally {
      process.exit(70)
    }
  },
)
