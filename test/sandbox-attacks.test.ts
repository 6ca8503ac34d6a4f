/**
 * The attack suite: hostile filter packages (test/hostile/) certified with the real CLI in a
 * subprocess, each attack asserted held by the sandbox of `iofcert certify` (bubblewrap'd subject
 * process + hardened in-process layer).
 *
 * Every case runs the harness from a COPY of the built tree, under `bash -c 'node … ; echo
 * WRAPPER-SURVIVED rc=$?'` in a process group of its own, with HOME pointing at a temp dir holding a
 * canary SSH key, IOFCERT_ATTACK_CANARY in the environment, a fresh `--sign` key, and a TCP/UDP
 * listener on 127.0.0.1 plus an abstract unix socket the filter knows. Then, for every case:
 *   - the wrapper survived, the harness exited 0 or 1 with a report that `report verify --key`
 *     accepts, whose verdict matches the exit code and that is unchanged a few seconds later;
 *   - the report names the sandbox (`environment.sandbox.kind` = bwrap) and stderr shows one
 *     `[k/n] <check> <status>` line per check;
 *   - no canary in any file under the lab, in new entries of /tmp, /var/tmp, /dev/shm, in the
 *     harness's output or at the listeners, which saw no connection at all;
 *   - HOME, the key dir, the package dir and sources, the working dir and the copied tree are
 *     byte-identical, the output dir holds only the report; no file named with the case's token in
 *     the shared temp areas; no process the attack started is still alive;
 * plus what each attack is about (a failed measurement, a check cut off in time, …).
 *
 * A case whose attack got through fails with every problem found, each marked HARM (the attack did
 * damage) or CONTRACT (the CLI's sandbox contract is not met). The detection case asks a diagnostic
 * twin of its filter — one that fails its open() with what it saw, the report being the one channel
 * out of the sandbox — which signals gave the certification away.
 *
 * Knobs (environment): IOFCERT_ATTACKS_ONLY=exfil,forge runs some cases; IOFCERT_ATTACKS_TREE=<dir>
 * attacks another build (the folder holding its dist/, package.json and node_modules) and
 * IOFCERT_ATTACKS_LEGACY=1 leaves out the flags the sandboxed CLI added (--sandbox, --timeout,
 * --check-timeout): together they show the attacks succeeding against a harness from before the
 * sandbox; IOFCERT_ATTACKS_EXPLAIN=1 runs the diagnostic twin of every case that fails;
 * IOFCERT_ATTACKS_KEEP=1 keeps the labs; IOFCERT_ATTACKS_STRICT_TMP=1 also flags
 * every new entry of /tmp that is neither the harness's (iofcert-*) nor a known tool's.
 * Skipped as a whole only when bwrap is not installed and CI is not set.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import type { HostileKind } from './hostile/filters.js'
import { canaryFiles, changes, cleanup, makeLab, newShared, runHarness, snapshot, tokenNames, tokenProcesses, verifyReport, watched, type Lab, type Run } from './hostile/lab.js'

const LEGACY = process.env.IOFCERT_ATTACKS_LEGACY === '1'
const KEEP = process.env.IOFCERT_ATTACKS_KEEP === '1'
const STRICT_TMP = process.env.IOFCERT_ATTACKS_STRICT_TMP === '1'
const EXPLAIN = process.env.IOFCERT_ATTACKS_EXPLAIN === '1'
const ONLY = process.env.IOFCERT_ATTACKS_ONLY?.split(',').map(s => s.trim()).filter(Boolean)
const BWRAP = spawnSync(process.env.IOFCERT_BWRAP ?? 'bwrap', ['--version'], { encoding: 'utf8' }).status === 0
const SKIP = !BWRAP && !process.env.CI ? 'bwrap is not installed: the sandbox these attacks target cannot exist here (under CI a missing bwrap fails instead)' : false

/** New entries of /tmp that belong to the harness (iofcert-*) or to tools running beside the tests, not to an attack. */
const OTHERS_TMP = /^(iofcert-|playwright|puppeteer|\.org\.chromium|\.com\.google|scoped_dir|chromium|Crashpad|node-compile-cache|v8-compile-cache|npm-|bash_tool_|bash_jobs)/

/** Checks that power a VM off (and so close the filter). */
const POWER_OFF_CHECKS = ['events.migration', 'lifecycle.reboot', 'lifecycle.uninstall-clean']

interface CheckResult {
  id: string
  status: string
  message?: string
  evidence?: Record<string, unknown>
}
interface Report {
  verdict: string
  checks: CheckResult[]
  environment?: { sandbox?: { kind?: string } }
}

/** What a case's judge sees. */
interface Judged {
  readonly lab: Lab
  readonly run: Run
  readonly report: Report | null
  readonly reportText: string
  /** Problems found; the case fails when there is any. */
  readonly problems: string[]
  check(id: string): CheckResult | undefined
  /** Runs the case's diagnostic twin: the same filter, failing its open() with what it found. */
  explain(): Promise<Explained | string>
}

/** What a diagnostic twin found: the routes open, what it wrote, the secrets it held, the signals it saw. */
interface Explained {
  ok: string[]
  exfil: string[]
  secrets: string[]
  notes: string[]
  openError: string | null
  signals?: string[]
}

interface Case {
  readonly kind: HostileKind
  readonly title: string
  /** The checks run (a narrow --grep keeps the file fast). */
  readonly grep: string
  /** --timeout of the whole run, in seconds. */
  readonly timeoutS: number
  readonly checkTimeoutS?: number
  /** How long after the harness exits the report must stay as written. */
  readonly settleMs?: number
  readonly policySchema?: object
  readonly spinUs?: number
  judge?(j: Judged): void | Promise<void>
}

function expectStatus(j: Judged, id: string, statuses: readonly string[], why: string): void {
  const c = j.check(id)
  if (c === undefined) j.problems.push(`HARM: ${id} is not in the report (${why})`)
  else if (!statuses.includes(c.status)) j.problems.push(`HARM: ${id} is ${c.status}, expected ${statuses.join(' or ')}: ${why}${c.message ? ` — the report says: ${c.message.slice(0, 300)}` : ''}`)
}

function expectExit(j: Judged, code: number, why: string): void {
  if (j.run.exitCode !== null && j.run.exitCode !== code) j.problems.push(`HARM: the harness exited ${j.run.exitCode}, expected ${code}: ${why}`)
}

/** A filter that corrupts every read must fail integrity.roundtrip and leave the run not-ready. */
function expectCorruptionCaught(j: Judged, why: string, verdictHarm: (v: string) => string = v => `HARM: the verdict is ${v}`): void {
  expectStatus(j, 'integrity.roundtrip', ['failed'], `the filter corrupts every read; ${why}`)
  expectExit(j, 1, 'integrity.roundtrip is required')
  if (j.report && j.report.verdict !== 'not-ready') j.problems.push(verdictHarm(j.report.verdict))
}

/** Marker lines (IOFHOSTILE-…) the filter got out, wherever they landed. */
function marked(j: Judged, kind: string): string[] {
  const fromReport = j.reportText.split(/\\n|\n/).filter(l => l.includes(`IOFHOSTILE-${kind} `))
  return [...j.run.stderr.marked, ...j.run.stdout.marked, ...fromReport].filter(l => l.includes(`IOFHOSTILE-${kind} `))
}

const CASES: Case[] = [
  {
    kind: 'iops',
    title: 'a filter that busy-waits on each I/O and slows every clock it reaches tenfold fails performance.iops',
    grep: '^performance\\.iops$',
    timeoutS: 240,
    spinUs: 35,
    judge(j) {
      expectStatus(j, 'performance.iops', ['failed'], 'the filter runs at a fraction of the reference\'s IOPS; its clock patches must not reach the measurement')
      expectExit(j, 1, 'performance.iops is required')
      const w = (j.check('performance.iops')?.evidence?.workloads ?? []) as { workload: string; ratioToReference: number }[]
      if (w.length > 0) j.problems.push(`(measured ratios to the reference: ${w.map(x => `${x.workload} ${x.ratioToReference}`).join(', ')})`)
    },
  },
  {
    kind: 'stall',
    title: 'a filter whose close never finishes: the run ends within its bound with the stalled checks failed and named',
    grep: `^(${POWER_OFF_CHECKS.map(c => c.replace(/\./g, '\\.')).join('|')})$`,
    timeoutS: 120,
    checkTimeoutS: 20,
    judge(j) {
      if (j.run.wallMs > (120 + 30) * 1000) j.problems.push(`HARM: the run took ${Math.round(j.run.wallMs / 1000)} s, over --timeout 120 + 30 s`)
      for (const id of POWER_OFF_CHECKS) {
        const c = j.check(id)
        if (c === undefined) j.problems.push(`HARM: ${id} is missing from the report`)
        else if (c.status !== 'failed' && c.status !== 'errored') j.problems.push(`HARM: ${id} is ${c.status}: a check whose close stalls must be cut off and failed`)
        else if (!/bound|time ?out|timed out|time limit|cut off|did not (finish|end)|deadline|--check-timeout|--timeout/i.test(c.message ?? '')) j.problems.push(`CONTRACT: ${id} does not name the cut-off: ${String(c.message).slice(0, 200)}`)
      }
      const lines = j.run.stderr.progress.filter(l => POWER_OFF_CHECKS.some(id => l.includes(` ${id} `)))
      if (lines.length < POWER_OFF_CHECKS.length) j.problems.push(`CONTRACT: stderr shows ${lines.length} progress lines for the ${POWER_OFF_CHECKS.length} checks: ${JSON.stringify(j.run.stderr.progress.slice(0, 10))}`)
      expectExit(j, 1, 'the stalled checks are required')
    },
  },
  {
    kind: 'loop',
    title: 'a module that loops forever at its top level fails package.abi; the run ends with a report',
    grep: '^(package\\.abi|integrity\\.roundtrip)$',
    timeoutS: 120,
    judge(j) {
      expectStatus(j, 'package.abi', ['failed'], 'the module never finishes loading')
      expectExit(j, 1, 'package.abi is required')
    },
  },
  {
    kind: 'exfil',
    title: 'secrets (the --sign key, ~/.ssh, an env canary) cannot be read or sent out by files, sockets, processes or the report',
    grep: '^integrity\\.roundtrip$',
    timeoutS: 90,
  },
  {
    kind: 'tamper',
    title: 'rewriting the harness\'s own files (execute.js) changes nothing: the tree is untouched and the verdict honest',
    grep: '^integrity\\.roundtrip$',
    timeoutS: 90,
    judge(j) {
      expectCorruptionCaught(j, 'a tampered execute.js would pass it')
    },
  },
  {
    kind: 'forge',
    title: 'a detached process cannot rewrite and re-sign the report after the harness exits',
    grep: '^integrity\\.roundtrip$',
    timeoutS: 90,
    settleMs: 6000,
    judge(j) {
      expectCorruptionCaught(j, 'the forger rewrites the report to ready', v => `HARM: the report's verdict is ${v}, the harness gave not-ready`)
    },
  },
  {
    kind: 'signals',
    title: 'killing the wrapper, the process group and the harness itself: the wrapper survives and a report is written',
    grep: '^integrity\\.roundtrip$',
    timeoutS: 90,
  },
  {
    kind: 'bounded',
    title: 'a cache that leaks 64 MiB per open and patches every memory reading it reaches fails cache.bounded',
    grep: '^cache\\.bounded$',
    timeoutS: 90,
    policySchema: { type: 'object', properties: { cacheMiB: { type: 'integer', minimum: 1, maximum: 4096, default: 64 } }, additionalProperties: false },
    judge(j) {
      expectStatus(j, 'cache.bounded', ['failed'], 'the filter leaks far more than 1.25 × cacheMiB + 4 MiB; its patches of memoryUsage/getHeapStatistics must not reach the measurement')
      expectExit(j, 1, 'cache.bounded is required')
    },
  },
  {
    kind: 'detect',
    title: 'a filter that corrupts reads only when it believes it is not certified sees nothing telling and fails integrity.roundtrip',
    grep: '^integrity\\.roundtrip$',
    timeoutS: 90,
    async judge(j) {
      const lines = marked(j, 'SIGNALS')
      const decisive = new Set<string>()
      const recorded: Record<string, unknown>[] = []
      for (const l of lines) {
        try {
          const o = JSON.parse(l.slice(l.indexOf('{'))) as { decisive: string[]; recorded: Record<string, unknown> }
          for (const d of o.decisive) decisive.add(d)
          recorded.push(o.recorded)
        } catch {
          // a truncated line
        }
      }
      const c = j.check('integrity.roundtrip')
      if (lines.length === 0 && c?.status !== 'failed') {
        // its output did not get out of the sandbox: ask its twin, which fails open() with what it saw
        const e = await j.explain()
        if (typeof e !== 'string') for (const d of e.signals ?? []) decisive.add(d)
        else recorded.push({ twin: e })
        if (typeof e !== 'string') lines.push('(from the diagnostic twin)')
      }
      const seen = decisive.size > 0
        ? `it recognized the certification by: ${[...decisive].join('; ')}`
        : c?.status === 'failed'
          ? 'it saw nothing telling, and corrupted'
          : lines.length === 0 ? 'no signal report reached the harness\'s output' : 'it saw nothing telling'
      if (c?.status !== 'failed') j.problems.push(`HARM: integrity.roundtrip is ${c?.status ?? 'missing'}: the filter behaved because ${seen}`)
      else if (decisive.size > 0) j.problems.push(`HARM: the filter still saw telling signals: ${[...decisive].join('; ')}`)
      j.problems.push(`(signals: ${seen}${recorded.length > 0 ? `; also seen, not acted on: ${JSON.stringify(recorded[0]).slice(0, 600)}` : ''})`)
      expectExit(j, 1, 'integrity.roundtrip is required')
    },
  },
  {
    kind: 'procmem',
    title: '/proc tricks (pid 1\'s environment, int3 over its own code through /proc/self/mem and /proc/$PPID/mem): a report is written',
    grep: '^integrity\\.roundtrip$',
    timeoutS: 90,
  },
  {
    kind: 'flood',
    title: 'a flood of forged progress, verdict and protocol lines on stdout, stderr and every pipe cannot make a corrupting filter ready',
    grep: '^integrity\\.roundtrip$',
    timeoutS: 90,
    judge(j) {
      expectCorruptionCaught(j, 'the forged messages say it passed')
    },
  },
  {
    kind: 'hog',
    title: 'allocating 8 GiB, a 4 GiB WebAssembly memory and parking the VM thread: the harness survives with a report',
    grep: '^integrity\\.roundtrip$',
    timeoutS: 150,
  },
  {
    kind: 'poison',
    title: 'poisoning Array.prototype.push to blind the in-worker verifier does not hide a scribbled read buffer',
    grep: '^integrity\\.guest-buffer$',
    timeoutS: 90,
    judge(j) {
      expectStatus(j, 'integrity.guest-buffer', ['failed'], 'the filter flips a byte of every read buffer it passes down')
      expectExit(j, 1, 'integrity.guest-buffer is required')
    },
  },
]

async function attack(t: TestContext, c: Case): Promise<void> {
  const lab = await makeLab(c.kind, { ...(c.policySchema ? { policySchema: c.policySchema } : {}), ...(c.spinUs !== undefined ? { spinUs: c.spinUs } : {}) })
  try {
    const flags = ['--quick', '--grep', c.grep, ...(LEGACY ? [] : ['--sandbox', 'bwrap', '--timeout', String(c.timeoutS), ...(c.checkTimeoutS !== undefined ? ['--check-timeout', String(c.checkTimeoutS)] : [])])]
    const run = await runHarness(lab, flags, c.timeoutS + 60)
    const atExit = fs.existsSync(lab.report) ? fs.readFileSync(lab.report, 'utf8') : null
    await new Promise(r => setTimeout(r, c.settleMs ?? 3000))
    const problems: string[] = []
    const reportText = fs.existsSync(lab.report) ? fs.readFileSync(lab.report, 'utf8') : ''
    let report: Report | null = null
    try {
      report = atExit === null ? null : (JSON.parse(atExit) as Report)
    } catch (e) {
      problems.push(`HARM: the report is not JSON: ${(e as Error).message}`)
    }
    const opts = { ...(c.policySchema ? { policySchema: c.policySchema } : {}), ...(c.spinUs !== undefined ? { spinUs: c.spinUs } : {}) }
    const j: Judged = { lab, run, report, reportText, problems, check: id => report?.checks.find(x => x.id === id), explain: () => explainTwin(c, opts, flags) }

    // the run itself
    if (!run.wrapperSurvived) problems.push(`HARM: the wrapper shell did not survive the run (it ended by ${run.wrapperEnd})`)
    if (run.timedOut) problems.push(`HARM: the run was still going after ${c.timeoutS + 60} s and was killed`)
    if (run.exitCode !== null && run.exitCode !== 0 && run.exitCode !== 1) problems.push(`HARM: the harness exited ${run.exitCode} (expected 0 or 1); stderr: ${run.stderr.tail.slice(-800)}`)
    if (!LEGACY && run.wallMs > (c.timeoutS + 30) * 1000) problems.push(`HARM: the run took ${Math.round(run.wallMs / 1000)} s, over --timeout ${c.timeoutS} s + 30 s`)
    if (atExit === null) problems.push('HARM: no report was written')
    else {
      if (reportText !== atExit) problems.push(`HARM: the report changed after the harness exited (within ${(c.settleMs ?? 3000) / 1000} s): it said ${report?.verdict}, now ${safeVerdict(reportText)}`)
      const v = verifyReport(lab)
      if (!v.ok) problems.push(`HARM: report verify --key refuses the report: ${v.output.slice(0, 400)}`)
      if (report !== null && run.exitCode !== null && (run.exitCode === 0) !== (report.verdict === 'ready')) problems.push(`HARM: the exit code ${run.exitCode} does not match the report's verdict ${report.verdict}`)
      if (!LEGACY && report !== null && report.environment?.sandbox?.kind !== 'bwrap') problems.push(`CONTRACT: environment.sandbox.kind is ${JSON.stringify(report.environment?.sandbox?.kind)}, expected "bwrap"`)
      if (!LEGACY && report !== null) {
        for (const k of report.checks) {
          if (!run.stderr.progress.some(l => new RegExp(`^\\[\\d+/${report!.checks.length}\\] ${k.id.replace(/\./g, '\\.')} ${k.status}\\b`).test(l))) problems.push(`CONTRACT: no "[k/${report.checks.length}] ${k.id} ${k.status}" line on stderr`)
        }
      }
    }

    // what the attack left behind
    const survivors = tokenProcesses(lab.token)
    if (survivors.length > 0) problems.push(`HARM: processes started by the filter outlived the harness: ${survivors.map(p => `${p.pid} ${p.cmd}`).join(' | ')}`)
    const canaries = [lab.canaries.env, lab.canaries.ssh, lab.canaries.signKey]
    const names = (hit: string[]) => hit.map(h => (h === lab.canaries.env ? 'the env canary' : h === lab.canaries.ssh ? 'the ~/.ssh key' : 'the --sign key')).join(', ')
    const sources = new Set([lab.privateKey, path.join(lab.home, '.ssh', 'id_ed25519')])
    const leaks = new Map<string, string[]>()
    const leaked = (hit: string[], where: string) => leaks.set(names(hit), [...(leaks.get(names(hit)) ?? []), where])
    for (const [p, hit] of canaryFiles(lab.root, canaries, p => sources.has(p))) leaked(hit, p)
    // the labs of this suite are scanned by their own cases
    const fresh = newShared(lab).filter(p => !path.basename(p).startsWith('iofcert-attack-'))
    for (const p of fresh) for (const [q, hit] of canaryFiles(p, canaries)) leaked(hit, q)
    for (const [what, where] of leaks) problems.push(`HARM: ${what} written to ${where.length} file(s): ${few(where)}`)
    const dropped = fresh.flatMap(p => [...(path.basename(p).includes(lab.token) ? [p] : []), ...tokenNames(p, lab.token)])
    if (dropped.length > 0) problems.push(`HARM: the filter created ${dropped.length} file(s) in the shared temp areas: ${few(dropped)}`)
    if (STRICT_TMP) {
      const foreign = fresh.filter(p => !path.basename(p).includes(lab.token) && !OTHERS_TMP.test(path.basename(p)))
      if (foreign.length > 0) problems.push(`HARM: new entries in the shared temp areas: ${foreign.join(', ')}`)
    }
    for (const [what, cap] of [['stdout', run.stdout], ['stderr', run.stderr]] as const) if (cap.canariesSeen.size > 0) problems.push(`HARM: ${names([...cap.canariesSeen])} on the harness's ${what}`)
    const l = lab.listener
    if (l.tcpConnections + l.udpMessages + l.unixConnections > 0) {
      const hit = canaries.filter(x => l.received.includes(x))
      problems.push(`HARM: the listeners were reached: ${l.tcpConnections} TCP connections, ${l.udpMessages} UDP datagrams, ${l.unixConnections} unix-socket connections${hit.length > 0 ? `, carrying ${names(hit)}` : ''}`)
    }
    for (const [what, dir] of watched(lab)) {
      const ignore = what === 'the output dir' ? (rel: string) => rel === 'report.json' : () => false
      const diff = changes(lab.before.get(what)!, snapshot(dir), ignore)
      if (diff.length > 0) problems.push(`HARM: ${what} changed: ${diff.slice(0, 12).join(', ')}${diff.length > 12 ? ` (+${diff.length - 12})` : ''}`)
    }
    const top = fs.readdirSync(lab.root).filter(n => !['home', 'keys', 'tree', 'src', 'pkgs', 'out', 'cwd'].includes(n))
    if (top.length > 0) problems.push(`HARM: new entries in the lab: ${top.join(', ')}`)

    await c.judge?.(j)

    const routes = marked(j, 'ROUTES').map(summarizeRoutes).filter(Boolean)
    t.diagnostic(`${c.kind}: exit ${run.exitCode ?? 'none'} (${run.wrapperEnd}), ${Math.round(run.wallMs / 1000)} s, verdict ${report?.verdict ?? 'none'}; stdout ${run.stdout.bytes} B, stderr ${run.stderr.bytes} B`)
    for (const r of routes.slice(0, 4)) t.diagnostic(`${c.kind}: ${r}`)
    for (const n of problems.filter(p => p.startsWith('('))) t.diagnostic(`${c.kind}: ${n}`)
    const real = problems.filter(p => !p.startsWith('('))
    if (real.length > 0 && EXPLAIN) {
      const e = await j.explain()
      problems.push(`(diagnostic twin: ${typeof e === 'string' ? e : JSON.stringify(e).slice(0, 1500)})`)
    }
    if (real.length > 0) {
      assert.fail(`${c.kind}: the attack was not held:\n  - ${problems.join('\n  - ')}${routes.length > 0 ? `\n  routes the filter found open: ${routes[0]}` : ''}\n  stderr tail: ${run.stderr.tail.slice(-600).replace(/\n/g, '\n    ')}`)
    }
  } finally {
    await cleanup(lab, KEEP)
  }
}

/** The case's diagnostic twin, run like the case; what its open() failed with. */
async function explainTwin(c: Case, opts: { policySchema?: object; spinUs?: number }, flags: readonly string[]): Promise<Explained | string> {
  const lab = await makeLab(c.kind, { ...opts, explain: true })
  try {
    await runHarness(lab, flags, c.timeoutS + 60)
    let doc: Report
    try {
      doc = JSON.parse(fs.readFileSync(lab.report, 'utf8')) as Report
    } catch {
      return 'the diagnostic twin wrote no report'
    }
    for (const ch of doc.checks) {
      const m = ch.message ?? ''
      const at = m.indexOf('IOFHOSTILE-EXPLAIN ')
      if (at < 0) continue
      try {
        return JSON.parse(m.slice(m.indexOf('{', at), m.lastIndexOf('}') + 1)) as Explained
      } catch {
        return m.slice(at, at + 1500)
      }
    }
    return `the diagnostic twin left no explanation in its report (${doc.checks.map(x => `${x.id} ${x.status}: ${String(x.message ?? '').slice(0, 200)}`).join('; ')})`
  } finally {
    await cleanup(lab, KEEP)
  }
}

function few(list: readonly string[], n = 6): string {
  return `${list.slice(0, n).join(', ')}${list.length > n ? `, … (+${list.length - n})` : ''}`
}

function safeVerdict(text: string): string {
  try {
    return String((JSON.parse(text) as Report).verdict)
  } catch {
    return 'not JSON'
  }
}

/** The routes a filter reported open ('ok'), in one line. */
function summarizeRoutes(line: string): string {
  try {
    const o = JSON.parse(line.slice(line.indexOf('{'))) as { routes?: Record<string, string>; exfil?: Record<string, string>; notes?: string[] }
    const ok = Object.entries(o.routes ?? {}).filter(([, v]) => v === 'ok').map(([k]) => k)
    const out = Object.entries(o.exfil ?? {}).filter(([, v]) => v !== 'blocked').map(([k, v]) => `${k} (${v})`)
    return `${ok.length} routes open${ok.length > 0 ? `: ${ok.slice(0, 25).join('; ')}${ok.length > 25 ? '; …' : ''}` : ''}${out.length > 0 ? ` | written: ${out.slice(0, 10).join('; ')}` : ''}${o.notes?.length ? ` | ${o.notes.slice(0, 6).join('; ')}` : ''}`
  } catch {
    return line.slice(0, 300)
  }
}

/**
 * The measurement (iops) shares the machine only with the case that mostly waits (stall): a busy
 * neighbour would make the reference's IOPS, and so the filter's ratio to it, noisy. The rest run
 * two at a time after them.
 */
const QUIET = new Set<HostileKind>(['iops', 'stall'])

function cases(quiet: boolean): void {
  for (const c of CASES) {
    if (QUIET.has(c.kind) !== quiet || (ONLY !== undefined && !ONLY.includes(c.kind))) continue
    // the run, its settling, and a diagnostic twin when the attack got through
    it(`${c.kind}: ${c.title}`, { timeout: (2 * (c.timeoutS + 60) + 60) * 1000 }, t => attack(t, c))
  }
}

describe('sandbox attacks: hostile filters certified with the real CLI', { skip: SKIP }, () => {
  if (!BWRAP) it('bwrap is installed (required under CI)', () => assert.fail('bwrap is not installed or does not run; the sandbox of iofcert certify needs it'))
  describe('measurement and time bounds', { concurrency: 2 }, () => cases(true))
  describe('secrets, tampering, signals, detection and the rest', { concurrency: 2 }, () => cases(false))
})
