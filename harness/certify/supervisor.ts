/**
 * The harness's side of the sandbox: starts the subject process, reads its channel, and holds
 * every bound — each check's (teardown included), the run's, the subject's memory. A subject that
 * dies, hangs, overruns or sends garbage costs the checks it was running (failed, with why) and
 * is replaced by a new one for the checks not yet run; the harness itself never goes down with it.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import type { CheckResult } from '../../reports/index.js'
import { MAX_LINE_BYTES, parseMessage, type CertifyTask, type SubjectMessage, type SubjectTask } from './protocol.js'
import { subjectCommand, type SandboxInfo } from './os-sandbox.js'
import type { ExecutedCheck } from './execute.js'
import type { CheckDef } from './check.js'
import { benchErrorFrom, BenchFailed, SubjectFailed } from '../bench/index.js'

export interface SuperviseOptions {
  readonly sandbox: SandboxInfo
  /** The package file (or directory) and the upgrade source; copied into each subject's scratch. */
  readonly package: string
  readonly upgradeFrom: string | null
  readonly checks: readonly CheckDef[]
  readonly task: Omit<CertifyTask, 'kind' | 'package' | 'upgradeFrom' | 'ids'>
  /** A check's bound, teardown included. */
  boundMs(def: CheckDef): number
  /** The run's end, on `performance.now()`'s clock. */
  readonly deadline: number
  /** The subject's process tree may hold this much resident memory. */
  readonly memoryCapBytes: number
  /** Where subjects get their scratch folders. */
  readonly workDir: string
  /** The harness's view of a check's fixed fields (id, suite, title, required). */
  base(def: CheckDef): Pick<CheckResult, 'id' | 'suite' | 'title' | 'required'>
  readonly onCheck?: (r: ExecutedCheck) => void
}

export interface SupervisedRun {
  readonly executed: ReadonlyMap<string, ExecutedCheck>
  /** What went wrong with subjects (for the report's notes). */
  readonly incidents: readonly string[]
}

/** Why a subject ended. */
type Ending =
  | { kind: 'end' }
  | { kind: 'check-bound'; id: string; boundMs: number }
  | { kind: 'run-bound' }
  | { kind: 'memory'; rssBytes: number }
  | { kind: 'garbage'; why: string }
  | { kind: 'fatal'; message: string; code?: string; exitCode?: number }
  | { kind: 'died'; code: number | null; signal: string | null }

const MAX_DEATHS_WITHOUT_PROGRESS = 3
const STDERR_TAIL = 4000

export async function supervise(o: SuperviseOptions): Promise<SupervisedRun> {
  const executed = new Map<string, ExecutedCheck>()
  const incidents: string[] = []
  const defs = new Map(o.checks.map(d => [d.id, d]))
  let barren = 0
  let round = 0
  const record = (def: CheckDef, r: Omit<CheckResult, 'id' | 'suite' | 'title' | 'required'>, artifacts?: ExecutedCheck['artifacts']) => {
    const e: ExecutedCheck = { result: { ...o.base(def), ...r }, ...(artifacts ? { artifacts } : {}) }
    executed.set(def.id, e)
    o.onCheck?.(e)
  }
  for (;;) {
    const remaining = o.checks.filter(d => !executed.has(d.id))
    if (remaining.length === 0) break
    if (performance.now() >= o.deadline) {
      for (const d of remaining) record(d, { status: 'errored', durationMs: 0, message: "not run: the run's wall-clock bound was reached before this check started", evidence: { cutOff: 'run-bound' } })
      break
    }
    if (barren >= MAX_DEATHS_WITHOUT_PROGRESS) {
      for (const d of remaining) record(d, { status: 'errored', durationMs: 0, message: `not run: the subject process failed ${barren} times in a row before finishing a check: it ${incidents.at(-1) ?? 'gave no reason'}`, evidence: { cutOff: 'subject-failed' } })
      break
    }
    const scratch = fs.mkdtempSync(path.join(o.workDir, `s${round++}-`))
    const before = executed.size
    try {
      const { ending, inflight, stderr } = await runOne(o, remaining, scratch, defs, executed, record)
      const tail = lastWords(stderr)
      const now = performance.now()
      for (const [id, startedAt] of inflight) {
        const def = defs.get(id)!
        const ms = Math.round(now - startedAt)
        switch (ending.kind) {
          case 'check-bound':
            if (id === ending.id) {
              record(def, { status: 'failed', durationMs: ms, message: `the check did not end within its bound of ${ending.boundMs / 1000} s, teardown included: the filter's I/O, its close on power-off or its daemon's stop stalls`, evidence: { cutOff: 'check-bound', boundMs: ending.boundMs } })
            }
            break // the others run again in a new subject
          case 'run-bound':
            record(def, { status: 'errored', durationMs: ms, message: `cut off by the run's wall-clock bound after ${(ms / 1000).toFixed(1)} s`, evidence: { cutOff: 'run-bound' } })
            break
          case 'memory':
            record(def, { status: 'failed', durationMs: ms, message: `the subject process used ${Math.round(ending.rssBytes / 2 ** 20)} MiB, over its cap of ${Math.round(o.memoryCapBytes / 2 ** 20)} MiB, while this check ran: the filter's memory grows without bound`, evidence: { cutOff: 'memory', rssBytes: ending.rssBytes, capBytes: o.memoryCapBytes } })
            break
          case 'garbage':
            record(def, { status: 'failed', durationMs: ms, message: `the subject process sent the harness an invalid message while this check ran (${ending.why}); its results cannot be trusted`, evidence: { cutOff: 'garbage' } })
            break
          case 'fatal':
          case 'died':
          case 'end': {
            const how = ending.kind === 'died' ? (ending.signal !== null ? `was killed by ${ending.signal}` : `exited with code ${ending.code}`) : ending.kind === 'fatal' ? `failed: ${ending.message.split('\n')[0]}` : 'ended without reporting it'
            record(def, { status: 'failed', durationMs: ms, message: `the subject process ${how} while this check ran${tail}: vendor code crashed or killed its sandbox`.slice(0, 2000), evidence: { cutOff: 'subject-died' } })
            break
          }
        }
      }
      if (ending.kind !== 'end') incidents.push(describe(ending) + tail)
      if (ending.kind === 'run-bound') continue // the next turn marks what was never started
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true })
    }
    barren = executed.size > before ? 0 : barren + 1
  }
  return { executed, incidents }
}

/** The lines of a dead subject's stderr that say why (an error's first line, not its stack). */
function lastWords(stderr: string): string {
  const lines = stderr.split('\n').map(l => l.trim()).filter(l => l !== '' && !/^at /.test(l) && !/^Node\.js v/.test(l) && !/^\^+$/.test(l))
  const pick = lines.filter(l => /Error|error:|denied|ERR_/i.test(l)).slice(-2)
  const chosen = (pick.length > 0 ? pick : lines.slice(-2)).join(' / ').slice(0, 400)
  return chosen === '' ? '' : ` (its last output: ${chosen})`
}

function describe(e: Ending): string {
  switch (e.kind) {
    case 'end': return 'ended'
    case 'check-bound': return `stopped: ${e.id} overran its bound of ${e.boundMs / 1000} s`
    case 'run-bound': return "stopped: the run's wall-clock bound was reached"
    case 'memory': return `stopped: ${Math.round(e.rssBytes / 2 ** 20)} MiB resident, over the cap`
    case 'garbage': return `stopped: invalid message (${e.why})`
    case 'fatal': return `failed: ${e.message.split('\n')[0]}`
    case 'died': return e.signal !== null ? `killed by ${e.signal}` : `exited with code ${e.code}`
  }
}

/** Copies a package (file or directory) into the subject's scratch folder. */
function stage(source: string, scratch: string, name: string): string {
  const to = path.join(scratch, name)
  fs.cpSync(source, to, { recursive: true, dereference: true })
  return to
}

async function runOne(
  o: SuperviseOptions,
  checks: readonly CheckDef[],
  scratch: string,
  defs: ReadonlyMap<string, CheckDef>,
  executed: ReadonlyMap<string, ExecutedCheck>,
  record: (def: CheckDef, r: Omit<CheckResult, 'id' | 'suite' | 'title' | 'required'>, artifacts?: ExecutedCheck['artifacts']) => void,
): Promise<{ ending: Ending; inflight: Map<string, number>; stderr: string }> {
  const pkg = stage(o.package, scratch, 'package')
  const up = o.upgradeFrom === null ? null : stage(o.upgradeFrom, scratch, 'previous')
  const task: SubjectTask = { kind: 'certify', ...o.task, package: pkg, upgradeFrom: up, ids: checks.map(d => d.id) }
  const inflight = new Map<string, number>()
  const { ending, stderr } = await session({
    sandbox: o.sandbox,
    scratch,
    task,
    deadline: o.deadline,
    memoryCapBytes: o.memoryCapBytes,
    onMessage: m => {
      switch (m.t) {
        case 'start': {
          const def = defs.get(m.id)
          if (def === undefined || executed.has(m.id) || inflight.has(m.id)) return { kind: 'garbage', why: `start of ${m.id}, which it was not given or already ran` }
          inflight.set(m.id, performance.now())
          return undefined
        }
        case 'check': {
          const def = defs.get(m.result.id)
          if (def === undefined || executed.has(def.id)) return { kind: 'garbage', why: `a result for ${m.result.id}, which it was not given or already reported` }
          inflight.delete(def.id)
          const { status, durationMs, message, evidence, cause, logs, logsDropped } = m.result
          // what explains a failure (the likely cause, the filter's own log lines) is kept only on one
          const explained = status === 'failed' || status === 'errored'
          record(def, {
            status, durationMs, ...(message !== undefined ? { message } : {}), ...(evidence !== undefined ? { evidence } : {}),
            ...(explained && cause !== undefined ? { cause } : {}), ...(explained && logs !== undefined ? { logs } : {}), ...(explained && logsDropped !== undefined ? { logsDropped } : {}),
          }, status === 'passed' || status === 'failed' ? m.artifacts : undefined)
          return undefined
        }
        case 'bench':
          return { kind: 'garbage', why: 'a bench result in a certify run' }
        default:
          return undefined
      }
    },
    tick: now => {
      for (const [id, t0] of inflight) {
        const bound = o.boundMs(defs.get(id)!)
        if (now - t0 > bound) return { kind: 'check-bound', id, boundMs: bound }
      }
      return undefined
    },
  })
  return { ending, inflight, stderr }
}

/** Runs `iofcert bench` with a vendor package in a subject process; returns its document or throws why not. */
export async function benchInSubject(o: {
  readonly sandbox: SandboxInfo
  readonly package: string
  readonly task: Omit<Extract<SubjectTask, { kind: 'bench' }>, 'kind' | 'package'>
  readonly timeoutMs: number
  readonly memoryCapBytes: number
  readonly workDir: string
}): Promise<{ doc: unknown; profile: unknown }> {
  const scratch = fs.mkdtempSync(path.join(o.workDir, 'bench-'))
  try {
    const task: SubjectTask = { kind: 'bench', ...o.task, package: stage(o.package, scratch, 'package') }
    let result: { doc: unknown; profile: unknown } | undefined
    const { ending, stderr } = await session({
      sandbox: o.sandbox,
      scratch,
      task,
      deadline: performance.now() + o.timeoutMs,
      memoryCapBytes: o.memoryCapBytes,
      onMessage: m => {
        if (m.t === 'bench') {
          if (result !== undefined) return { kind: 'garbage', why: 'a second bench result' }
          result = { doc: m.doc, profile: m.profile }
        } else if (m.t === 'start' || m.t === 'check') return { kind: 'garbage', why: 'a check result in a bench run' }
        return undefined
      },
    })
    if (ending.kind === 'fatal') throw benchErrorFrom({ ...ending, message: ending.message.split('\n')[0]! }, BenchFailed({ reason: ending.message.split('\n')[0]! }))
    if (ending.kind !== 'end' || result === undefined) {
      throw SubjectFailed({ reason: `${ending.kind === 'end' ? 'ended without a result' : describe(ending)}${lastWords(stderr)}` })
    }
    return result
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true })
  }
}

interface SessionOptions {
  readonly sandbox: SandboxInfo
  readonly scratch: string
  readonly task: SubjectTask
  readonly deadline: number
  readonly memoryCapBytes: number
  /** Handles a message other than hello, fatal and end; returns an ending to stop the subject. */
  onMessage(m: SubjectMessage): Ending | undefined
  /** Called four times a second; returns an ending to stop the subject. */
  tick?(now: number): Ending | undefined
}

/** One subject process from start to end: its channel read and validated, its bounds held. */
async function session(o: SessionOptions): Promise<{ ending: Ending; stderr: string }> {
  const cmd = subjectCommand(o.sandbox, o.scratch, { maxOldSpaceMiB: 4096 })
  const child: ChildProcess = spawn(cmd.file, cmd.args, { env: cmd.env, stdio: ['pipe', 'pipe', 'pipe', 'pipe'], detached: false })
  let stderr = ''
  let ending: Ending | undefined
  let resolveEnd!: () => void
  const ended = new Promise<void>(r => (resolveEnd = r))
  const finish = (e: Ending) => {
    if (ending !== undefined) return
    ending = e
    if (e.kind !== 'end') killTree(child)
    resolveEnd()
  }
  child.stdin!.on('error', () => {})
  child.stdin!.end(JSON.stringify(o.task))
  // what the subject prints is not trusted and not shown; a tail is kept to explain a death
  child.stdout!.on('data', () => {})
  const echo = process.env.IOFCERT_SUBJECT_STDERR === '1'
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-STDERR_TAIL)
    if (echo) process.stderr.write(d)
  })
  let buffered: Buffer[] = []
  let bufferedBytes = 0
  const onMessage = (m: SubjectMessage) => {
    if (m.t === 'hello') return
    if (m.t === 'fatal') return finish({ kind: 'fatal', message: m.message, ...(m.code !== undefined ? { code: m.code } : {}), ...(m.exitCode !== undefined ? { exitCode: m.exitCode } : {}) })
    if (m.t === 'end') return finish({ kind: 'end' })
    const e = o.onMessage(m)
    if (e !== undefined) finish(e)
  }
  const channel = child.stdio[3] as NodeJS.ReadableStream
  channel.on('data', (d: Buffer) => {
    if (ending !== undefined) return
    let start = 0
    for (let i = d.indexOf(10); i !== -1; i = d.indexOf(10, start)) {
      buffered.push(d.subarray(start, i))
      const line = Buffer.concat(buffered).toString('utf8')
      buffered = []
      bufferedBytes = 0
      start = i + 1
      const p = parseMessage(line)
      if (!p.ok) return finish({ kind: 'garbage', why: p.why })
      onMessage(p.msg)
      if (ending !== undefined) return
    }
    if (start < d.length) {
      buffered.push(d.subarray(start))
      bufferedBytes += d.length - start
      if (bufferedBytes > MAX_LINE_BYTES) finish({ kind: 'garbage', why: `a message longer than ${MAX_LINE_BYTES} bytes` })
    }
  })
  channel.on('error', () => {})
  const exited = new Promise<{ code: number | null; signal: string | null }>(r => child.on('exit', (code, signal) => r({ code, signal })))
  child.on('error', e => finish({ kind: 'fatal', message: `could not start the subject process: ${e.message}` }))
  void exited.then(x => {
    // the channel may still hold the last lines: let them be read before judging the exit
    setTimeout(() => finish({ kind: 'died', ...x }), 200).unref()
  })
  const watchdog = setInterval(() => {
    const now = performance.now()
    if (now >= o.deadline) return finish({ kind: 'run-bound' })
    const e = o.tick?.(now)
    if (e !== undefined) return finish(e)
    const rss = child.pid === undefined ? 0 : treeRss(child.pid)
    if (rss > o.memoryCapBytes) finish({ kind: 'memory', rssBytes: rss })
  }, 250)
  try {
    await ended
  } finally {
    clearInterval(watchdog)
  }
  killTree(child)
  let wait: ReturnType<typeof setTimeout> | undefined
  await Promise.race([exited, new Promise(r => (wait = setTimeout(r, 5000)))])
  clearTimeout(wait)
  return { ending: ending!, stderr }
}

/** Kills the subject and everything it started (under bubblewrap its PID namespace dies with it). */
function killTree(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  for (const pid of descendants(child.pid).reverse()) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      /* already gone */
    }
  }
  try {
    child.kill('SIGKILL')
  } catch {
    /* already gone */
  }
}

function descendants(pid: number): number[] {
  const out: number[] = []
  const walk = (p: number) => {
    let tasks: string[]
    try {
      tasks = fs.readdirSync(`/proc/${p}/task`)
    } catch {
      return
    }
    for (const t of tasks) {
      let kids = ''
      try {
        kids = fs.readFileSync(`/proc/${p}/task/${t}/children`, 'utf8')
      } catch {
        continue
      }
      for (const k of kids.split(' ')) if (k.trim() !== '') {
        out.push(Number(k))
        walk(Number(k))
      }
    }
  }
  walk(pid)
  return out
}

/** Resident memory of a process and its descendants, from /proc (0 where /proc cannot tell). */
function treeRss(pid: number): number {
  let total = 0
  for (const p of [pid, ...descendants(pid)]) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${p}/status`, 'utf8'))
      if (m) total += Number(m[1]) * 1024
    } catch {
      /* gone */
    }
  }
  return total
}
