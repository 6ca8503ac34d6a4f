/**
 * Every mutating `iofcert cluster` command killed at each of its state-changing file operations in
 * turn, as SQLite's crash tests do (not at random delays): real processes, real SIGKILL, real files.
 *
 * The commands come from the CLI's own command tree (an on/off or create/apply/clear argument makes
 * one command per choice); a command that is neither in READ_ONLY nor covered by a scenario fails
 * the first test. For each scenario: its "before" directory is prepared once; a whole run with
 * IOFCERT_TEST_CRASH_COUNT=1 gives the "after" state and the number of crash points it passes
 * (framework/persist.ts); then for n = 1 … count a copy of "before" gets the command with
 * IOFCERT_TEST_CRASH_AT=n, which must die by SIGKILL at that point. After each kill the cluster is
 * opened as `cluster list` opens it (in this process), and then:
 * - nothing of the killed command is left (commit record, staging, temp files);
 * - the state is "before" or "after" — a command that is one transaction as a whole, each host's
 *   files as before or after its own step for the lifecycle's step-by-step operations (host
 *   remove: also between uninstalling the host's filters and taking it out), with the hosts it had
 *   not finished reported OperationInterrupted;
 * - running the command again converges to "after", with the exit and message it gives on "after"
 *   (where the command refuses to do twice what it did) or on "before".
 *
 * A snapshot is every file under the cluster directory except the lock files: state files as JSON
 * with timestamps and the pid of an operation in flight blanked, a drive journal as the number of
 * entries a power cut would replay (its header is salted anew at each open; one with nothing to
 * replay is as none, and opening a disk makes one), and every other file (disk images, sidecars,
 * installed filters) by size and SHA-256. Directories are not in it: an empty one is no state
 * (recovery removes a half-installed filter's directory and may leave its empty parent).
 *
 * About 630 kills, two at a time: minutes on an idle machine, hence serial. IOFCERT_KILLPOINTS=
 * <command>,<command> runs the kill points of those commands only (`vm power on,host add`).
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { Command } from 'commander'
import { registerClusterCommands } from '../../harness/cli/cluster.js'
import { IofError } from '../../harness/framework/errors.js'
import { FileJournalMedium, Journal } from '../../harness/framework/journal.js'
import { withClusterSession } from '../../harness/framework/lifecycle/session.js'
import { makePackage, testKey, type TestKey, type TestPackage } from '../lifecycle-fixtures.js'
import { startCli, type CliRun } from '../helpers/cli.js'
import { scratch, type Scratch } from '../package-fixtures.js'

/** Commands that only read the cluster (they still take its lock). */
const READ_ONLY = new Set(['list', 'issues'])

/** How a killed command may leave the cluster. */
type Atomicity = 'cluster' | 'host'

/** One command, from one prepared directory. */
interface Scenario {
  /** As the command tree names it, with its choice: `vm power on`, `policy apply`. */
  readonly command: string
  /** The prepared directory it starts from (a key of BASES; `none`: no directory at all). */
  readonly base: string
  readonly args: (dir: string) => string[]
  /** `cluster`: before or after as a whole; `host`: each host before or after its own step. */
  readonly atomic: Atomicity
  /** For `host`: the states a host may be in between its steps, made from the snapshot before. */
  readonly between?: (before: Snapshot) => Snapshot
}

let s: Scratch
let key: TestKey
let key2: TestKey
let cdp: TestPackage
let cdp11: TestPackage
let rb: TestPackage

/** The prepared "before" directories: each made once by its commands, on a copy of `from`. */
const BASES: Record<string, { from?: string; commands: (dir: string) => string[][] }> = {
  plain: {
    commands: dir => [
      ['cluster', 'init', dir, '--hosts', '2', '--trust', key.publicPath],
      ['cluster', 'vm', 'create', dir, 'esx1', 'vm1', '--disk', 'd1:1M:file', '--disk', 'd2:512K:file'],
      ['cluster', 'policy', dir, 'create', 'limit', '--rule', 'spm@DATASTOREIOCONTROL'],
    ],
  },
  maintenance: { from: 'plain', commands: dir => [['cluster', 'maintenance', dir, 'esx2', 'on']] },
  poweredOn: { from: 'plain', commands: dir => [['cluster', 'vm', 'power', dir, 'vm1', 'on']] },
  withPolicy: { from: 'plain', commands: dir => [['cluster', 'policy', dir, 'apply', 'limit', 'vm1', 'd1']] },
  installed: { from: 'plain', commands: dir => [['cluster', 'install', dir, cdp.tgz]] },
  // a filter pending reboot on both hosts, and a powered-on VM on the one that reboots
  pendingReboot: { from: 'poweredOn', commands: dir => [['cluster', 'install', dir, rb.tgz]] },
  failedOnOne: {
    commands: dir => [
      ['cluster', 'init', dir, '--hosts', '2'],
      ['cluster', 'trust', dir, key.publicPath, '--host', 'esx1'],
      // esx2 does not trust the key: the install fails there (exit 1), and resolve retries it
      ['cluster', 'install', dir, cdp.tgz],
      ['cluster', 'trust', dir, key.publicPath, '--host', 'esx2'],
    ],
  },
}

const SCENARIOS: Scenario[] = [
  { command: 'init', base: 'none', args: dir => ['cluster', 'init', dir, '--hosts', '2', '--trust', key.publicPath], atomic: 'cluster' },
  { command: 'install', base: 'plain', args: dir => ['cluster', 'install', dir, cdp.tgz], atomic: 'host' },
  { command: 'upgrade', base: 'installed', args: dir => ['cluster', 'upgrade', dir, cdp.id, cdp11.tgz], atomic: 'host' },
  { command: 'uninstall', base: 'installed', args: dir => ['cluster', 'uninstall', dir, cdp.id], atomic: 'host' },
  { command: 'resolve', base: 'failedOnOne', args: dir => ['cluster', 'resolve', dir, cdp.id], atomic: 'host' },
  { command: 'maintenance on', base: 'plain', args: dir => ['cluster', 'maintenance', dir, 'esx2', 'on'], atomic: 'cluster' },
  { command: 'maintenance off', base: 'maintenance', args: dir => ['cluster', 'maintenance', dir, 'esx2', 'off'], atomic: 'cluster' },
  { command: 'reboot', base: 'pendingReboot', args: dir => ['cluster', 'reboot', dir, 'esx1'], atomic: 'cluster' },
  { command: 'trust', base: 'plain', args: dir => ['cluster', 'trust', dir, key2.publicPath], atomic: 'cluster' },
  { command: 'acceptance', base: 'plain', args: dir => ['cluster', 'acceptance', dir, 'CommunitySupported', '--host', 'esx2'], atomic: 'cluster' },
  { command: 'host add', base: 'installed', args: dir => ['cluster', 'host', 'add', dir, 'esx3', '--trust', key.publicPath], atomic: 'cluster' },
  // the host's filters are uninstalled (a step each), then it leaves the cluster
  { command: 'host remove', base: 'installed', args: dir => ['cluster', 'host', 'remove', dir, 'esx2'], atomic: 'host', between: snap => uninstalledOn(snap, 'esx2') },
  { command: 'vm create', base: 'plain', args: dir => ['cluster', 'vm', 'create', dir, 'esx2', 'vm2', '--disk', 'd3:1M:file', '--disk', 'd4:64K'], atomic: 'cluster' },
  { command: 'vm power on', base: 'plain', args: dir => ['cluster', 'vm', 'power', dir, 'vm1', 'on'], atomic: 'cluster' },
  { command: 'vm power off', base: 'poweredOn', args: dir => ['cluster', 'vm', 'power', dir, 'vm1', 'off'], atomic: 'cluster' },
  { command: 'vm delete', base: 'plain', args: dir => ['cluster', 'vm', 'delete', dir, 'vm1'], atomic: 'cluster' },
  { command: 'vm disk add', base: 'plain', args: dir => ['cluster', 'vm', 'disk', 'add', dir, 'vm1', 'd5:1M:file', 'd6:512K:file'], atomic: 'cluster' },
  { command: 'vm disk remove', base: 'plain', args: dir => ['cluster', 'vm', 'disk', 'remove', dir, 'vm1', 'd2'], atomic: 'cluster' },
  { command: 'policy create', base: 'plain', args: dir => ['cluster', 'policy', dir, 'create', 'limit2', '--rule', 'spm@DATASTOREIOCONTROL:{"iopsLimit":100}'], atomic: 'cluster' },
  { command: 'policy apply', base: 'plain', args: dir => ['cluster', 'policy', dir, 'apply', 'limit', 'vm1', 'd1'], atomic: 'cluster' },
  { command: 'policy clear', base: 'withPolicy', args: dir => ['cluster', 'policy', dir, 'clear', 'vm1', 'd1'], atomic: 'cluster' },
]

/** Every command of `iofcert cluster`, as the CLI defines them, one per choice of an on/off or action argument. */
function commandTree(): string[] {
  const program = new Command()
  registerClusterCommands(program)
  const out: string[] = []
  const walk = (cmd: Command, names: string[]): void => {
    if (cmd.commands.length > 0) {
      for (const c of cmd.commands) walk(c, [...names, c.name()])
      return
    }
    const choices = cmd.registeredArguments.find(a => a.argChoices !== undefined)?.argChoices
    if (choices === undefined) out.push(names.join(' '))
    else for (const c of choices) out.push([...names, c].join(' '))
  }
  walk(program.commands.find(c => c.name() === 'cluster')!, [])
  return out.sort()
}

function run(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return startCli(args, s.dir, env).done
}

function expectExit(r: CliRun, code: number, what: string): void {
  assert.equal(r.code, code, `${what}: exit ${r.code} (${r.signal ?? 'no signal'})\nstdout: ${r.stdout}\nstderr: ${r.stderr}`)
  assert.doesNotMatch(r.stderr, /\n\s+at /, `${what}: no stack trace`)
}

/** A file tree as the snapshot has it: relative path → what it holds. */
type Snapshot = Record<string, string>

const TIMESTAMP_KEYS = new Set(['at', 'startedAt'])

/** A state file's JSON with what changes from run to run blanked: timestamps, and the pid of an operation in flight. */
function normalJson(text: string): string {
  return JSON.stringify(JSON.parse(text), (k, v: unknown) => (TIMESTAMP_KEYS.has(k) && typeof v === 'string' ? '<time>' : k === 'pid' && typeof v === 'number' ? '<pid>' : v))
}

/** The normalised snapshot of a cluster directory (see the file comment). */
function snapshot(dir: string): Snapshot {
  const out: Snapshot = {}
  if (!existsSync(dir)) return out
  const visit = (rel: string): void => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      if (rel === '' && name.startsWith('.iofcert.lock')) continue
      const r = rel === '' ? name : `${rel}/${name}`
      const abs = join(dir, r)
      const st = statSync(abs)
      if (st.isDirectory()) visit(r)
      else if (/(^|\/)(cluster|lifecycle|state)\.json$/.test(r)) {
        out[r] = normalJson(readFileSync(abs, 'utf8'))
      } else if (r.endsWith('.journal')) {
        const m = new FileJournalMedium(abs, st.size)
        try {
          // a journal with nothing to replay is as good as none (opening a disk makes one)
          const entries = Journal.scan(m, Number.MAX_SAFE_INTEGER).entries.length
          if (entries > 0) out[r] = `journal of ${entries} entries`
        } finally {
          m.close()
        }
      } else {
        out[r] = `${st.size} bytes ${createHash('sha256').update(readFileSync(abs)).digest('hex').slice(0, 16)}`
      }
    }
  }
  visit('')
  return out
}

/** Files the state machinery may leave only while a command runs or was killed (and lock files, when `locks`). */
function leftovers(dir: string, locks: boolean): string[] {
  if (!existsSync(dir)) return []
  const out: string[] = []
  const visit = (rel: string): void => {
    for (const name of readdirSync(join(dir, rel))) {
      const r = rel === '' ? name : `${rel}/${name}`
      if (name.startsWith('.iofcert.lock') ? locks : name.startsWith('.iofcert') || name.endsWith('.tmp')) out.push(r)
      else if (statSync(join(dir, r)).isDirectory()) visit(r)
    }
  }
  visit('')
  return out
}

/** A snapshot with every filter of `host` uninstalled: its state lists none, their files are gone. */
function uninstalledOn(snap: Snapshot, host: string): Snapshot {
  const p = `hosts/${host}/`
  const out: Snapshot = {}
  for (const [k, v] of Object.entries(snap)) {
    if (k.startsWith(`${p}filters/`) || k.startsWith(`${p}stores/`)) continue
    out[k] = k === `${p}state.json` ? JSON.stringify({ ...(JSON.parse(v) as object), filters: [] }) : v
  }
  return out
}

/** The differing entries of two snapshots, for a readable failure: each from a little before where they differ. */
function diff(a: Snapshot, b: Snapshot): string {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()
  const cut = (x: string | undefined, at: number): string => (x === undefined ? '(none)' : `${at > 0 ? '…' : ''}${x.slice(at, at + 160)}${x.length > at + 160 ? '…' : ''}`)
  return keys.filter(k => a[k] !== b[k]).map(k => {
    const x = a[k] ?? ''
    const y = b[k] ?? ''
    let i = 0
    while (i < x.length && x[i] === y[i]) i++
    const at = Math.max(0, i - 40)
    return `  ${k}:\n    ${cut(a[k], at)}\n    ${cut(b[k], at)}`
  }).join('\n')
}

/** The part of a snapshot under `prefix` (a host's directory), or outside every host's directory and lifecycle.json. */
function part(snap: Snapshot, prefix: string | null): Snapshot {
  const out: Snapshot = {}
  for (const [k, v] of Object.entries(snap)) {
    const inHost = /^hosts\/[^/]+\//.test(k)
    if (prefix === null ? !inHost && k !== 'lifecycle.json' : k.startsWith(prefix)) out[k] = v
  }
  return out
}

function hostsOf(...snaps: Snapshot[]): string[] {
  const names = new Set<string>()
  for (const snap of snaps) for (const k of Object.keys(snap)) {
    const m = /^hosts\/([^/]+)\//.exec(k)
    if (m !== null) names.add(m[1]!)
  }
  return [...names].sort()
}

function same(a: Snapshot, b: Snapshot): boolean {
  return diff(a, b) === ''
}

/**
 * Opens the cluster for reading and runs what `cluster list` and `cluster issues` run (in this
 * process, which is quicker than another one): a commit a killed command left half applied is
 * finished, what it had made aside is removed, and the lifecycle recovers from an operation it had
 * in flight. A killed init may have left no cluster.
 */
async function open(dir: string, what: string): Promise<void> {
  try {
    await withClusterSession(dir, { mode: 'read' }, async v => {
      v.lifecycle.query()
      v.lifecycle.issues()
      assert.equal(v.unreadable.size, 0, `${what}: every host reads`)
    })
  } catch (err) {
    if (!(err instanceof IofError && err.code === 'ClusterNotFound')) throw new Error(`${what}: the cluster opens: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
  }
}

/** A run's exit and message, with the cluster directory's name taken out (copies differ in it). */
function outcome(r: CliRun, dir: string): string {
  return `exit ${r.code}: ${r.stderr.split(dir).join('<dir>').trim()}`
}

/** Kill points run at once: the runs are separate processes, mostly waiting on one another's CPU. */
const PARALLEL = Math.max(1, Math.min(2, availableParallelism()))

/** Runs `fn(1)` … `fn(count)`, PARALLEL at a time; the first failure stops the rest from starting and is thrown. */
async function pool(count: number, fn: (n: number) => Promise<void>): Promise<void> {
  let next = 1
  let failed = false
  const lane = async (): Promise<void> => {
    while (!failed && next <= count) {
      const n = next++
      try {
        await fn(n)
      } catch (err) {
        failed = true
        throw err
      }
    }
  }
  const lanes = await Promise.allSettled(Array.from({ length: PARALLEL }, lane))
  const bad = lanes.find(l => l.status === 'rejected')
  if (bad !== undefined) throw (bad as PromiseRejectedResult).reason
}

/** Results of the kill points, for the summary the last test prints. */
const counts: { command: string; points: number; before: number; after: number; between: number; ms: number }[] = []

let prepared = ''

before(async () => {
  s = await scratch()
  key = await testKey(join(s.dir, 'key'))
  key2 = await testKey(join(s.dir, 'key2'))
  cdp = await makePackage(s, { key })
  cdp11 = await makePackage(s, { key, version: '1.1.0' })
  rb = await makePackage(s, { key, name: 'rb', install: { maintenanceMode: false, reboot: true } })
  prepared = join(s.dir, 'prepared')
  mkdirSync(prepared)
  const made = new Set<string>()
  const make = async (name: string): Promise<void> => {
    if (made.has(name)) return
    const b = BASES[name]!
    const dir = join(prepared, name)
    if (b.from !== undefined) {
      await make(b.from)
      cpSync(join(prepared, b.from), dir, { recursive: true })
    }
    for (const args of b.commands(dir)) {
      const r = await run(args)
      assert.ok(r.code === 0 || (name === 'failedOnOne' && args[1] === 'install' && r.code === 1), `preparing ${name}: ${args.join(' ')}: exit ${r.code}\n${r.stderr}`)
    }
    made.add(name)
  }
  for (const name of Object.keys(BASES)) await make(name)
})

after(async () => {
  await s?.cleanup()
})

/** Kills `sc` at each of its crash points in turn and checks each time (see the file comment). */
async function killPoints(sc: Scenario): Promise<void> {
  const t0 = Date.now()
  const slug = sc.command.replace(/ /g, '-')
  const work = join(s.dir, slug)
  mkdirSync(work)
  const copyBase = (dir: string): void => {
    if (sc.base !== 'none') cpSync(join(prepared, sc.base), dir, { recursive: true })
  }
  // "before", and a whole run: "after", its exit and the number of crash points it passes
  const beforeDir = join(work, 'before')
  copyBase(beforeDir)
  await open(beforeDir, `${sc.command} before`)
  const beforeSnap = snapshot(beforeDir)
  const afterDir = join(work, 'after')
  copyBase(afterDir)
  const whole = await run(sc.args(afterDir), { IOFCERT_TEST_CRASH_COUNT: '1' })
  const m = /crash points passed: (\d+)\n/.exec(whole.stderr)
  assert.ok(m !== null, `${sc.command}: the run tells its crash points\n${whole.stderr}`)
  const points = Number(m[1])
  const wholeOutcome = outcome({ ...whole, stderr: whole.stderr.replace(m[0], '') }, afterDir)
  expectExit(await run(['cluster', 'list', afterDir]), 0, `${sc.command} after: cluster list`)
  const afterSnap = snapshot(afterDir)
  assert.ok(!same(beforeSnap, afterSnap), `${sc.command} changes the cluster`)
  // what running it again does on "after"
  const again = await run(sc.args(afterDir))
  const againOutcome = outcome(again, afterDir)
  await open(afterDir, `${sc.command} run twice`)
  assert.ok(same(snapshot(afterDir), afterSnap), `${sc.command} run twice is as run once:\n${diff(afterSnap, snapshot(afterDir))}`)
  let seenBefore = 0
  let seenAfter = 0
  let between = 0
  await pool(points, async n => {
    const dir = join(work, `k${n}`)
    copyBase(dir)
    const r = await run(sc.args(dir), { IOFCERT_TEST_CRASH_AT: String(n) })
    const at = /crash point \d+: (.*)/.exec(r.stderr)?.[1] ?? '?'
    const what = `${sc.command} killed at crash point ${n} of ${points} (${at})`
    assert.equal(r.signal, 'SIGKILL', `${what}: exit ${r.code}\n${r.stderr}`)
    assert.match(r.stderr, new RegExp(`crash point ${n}: `), what)
    await open(dir, what)
    assert.deepEqual(leftovers(dir, false), [], `${what}: nothing left of the killed command once the cluster was opened`)
    const now = snapshot(dir)
    let seen: 'before' | 'after' | 'between'
    if (same(now, beforeSnap)) seen = 'before'
    else if (same(now, afterSnap)) seen = 'after'
    else {
      assert.equal(sc.atomic, 'host', `${what}: the cluster is as before the command or as after it\nvs before:\n${diff(beforeSnap, now)}\nvs after:\n${diff(afterSnap, now)}`)
      checkBetween(what, beforeSnap, afterSnap, sc.between?.(beforeSnap) ?? null, now)
      seen = 'between'
    }
    const rerun = await run(sc.args(dir))
    const want = seen === 'after' ? againOutcome : seen === 'before' ? wholeOutcome : null
    if (want !== null) assert.equal(outcome(rerun, dir), want, `${what}: run again on ${seen}`)
    else expectExit(rerun, 0, `${what}: run again`)
    assert.doesNotMatch(rerun.stderr, /\n\s+at /, `${what}: no stack trace`)
    assert.deepEqual(leftovers(dir, true), [], `${what}: nothing left after the run again`)
    await open(dir, `${what}, run again`)
    const end = snapshot(dir)
    assert.ok(same(end, afterSnap), `${what}: run again converges to after\n${diff(afterSnap, end)}`)
    if (seen === 'before') seenBefore++
    else if (seen === 'after') seenAfter++
    else between++
    rmSync(dir, { recursive: true, force: true })
  })
  counts.push({ command: sc.command, points, before: seenBefore, after: seenAfter, between, ms: Date.now() - t0 })
  assert.ok(points >= 4, `${sc.command}: ${points} crash points`)
  assert.ok(seenBefore > 0 && seenAfter > 0, `${sc.command}: kills on both sides of the commit point (before ${seenBefore}, after ${seenAfter}, between ${between})`)
  rmSync(work, { recursive: true, force: true })
}

/**
 * A lifecycle operation killed part way: each host's directory as before or after its own step
 * (or between two of its steps), the rest of the cluster (cluster.json, the datastore) as before
 * or after, and every host left as before, where after differs, has an issue for it
 * (OperationInterrupted, or the one it had before).
 */
function checkBetween(what: string, beforeSnap: Snapshot, afterSnap: Snapshot, stepSnap: Snapshot | null, now: Snapshot): void {
  const rest = part(now, null)
  assert.ok(same(rest, part(beforeSnap, null)) || same(rest, part(afterSnap, null)), `${what}: the cluster outside the hosts as before or after\n${diff(part(afterSnap, null), rest)}`)
  const lc = JSON.parse(now['lifecycle.json'] ?? 'null') as { pending: unknown; issues: { host: string; issue: string }[] } | null
  assert.ok(lc !== null, `${what}: lifecycle.json`)
  assert.equal(lc.pending, null, `${what}: no operation in flight once the cluster was opened`)
  for (const h of hostsOf(beforeSnap, afterSnap, now)) {
    const p = `hosts/${h}/`
    const mine = part(now, p)
    const asBefore = same(mine, part(beforeSnap, p))
    const asStep = stepSnap !== null && same(mine, part(stepSnap, p))
    assert.ok(asBefore || asStep || same(mine, part(afterSnap, p)), `${what}: host ${h} as before or after its step\nvs before:\n${diff(part(beforeSnap, p), mine)}\nvs after:\n${diff(part(afterSnap, p), mine)}`)
    if (asBefore && !same(mine, part(afterSnap, p))) assert.ok(lc.issues.some(i => i.host === h), `${what}: host ${h}, not done, has an issue: ${JSON.stringify(lc.issues)}`)
  }
}

describe('every mutating cluster command killed at each crash point', () => {
  it('covers every command of the CLI that is not read-only', () => {
    const tree = commandTree()
    for (const r of READ_ONLY) assert.ok(tree.includes(r), `${r} is a command`)
    assert.deepEqual(SCENARIOS.map(sc => sc.command).sort(), tree.filter(c => !READ_ONLY.has(c)), 'a scenario for each mutating command')
  })

  it('read-only commands change nothing', async () => {
    const dir = join(s.dir, 'read-only')
    cpSync(join(prepared, 'failedOnOne'), dir, { recursive: true })
    const snap = snapshot(dir)
    expectExit(await run(['cluster', 'list', dir]), 0, 'list')
    expectExit(await run(['cluster', 'issues', dir]), 0, 'issues')
    assert.ok(same(snapshot(dir), snap), diff(snap, snapshot(dir)))
    rmSync(dir, { recursive: true, force: true })
  })

  for (const sc of SCENARIOS) {
    it(`${sc.command}: before or after at each crash point, and a second run converges`, { skip: process.env.IOFCERT_KILLPOINTS !== undefined && !process.env.IOFCERT_KILLPOINTS.split(',').includes(sc.command) }, async () => {
      await killPoints(sc)
    })
  }

  it('summary', t => {
    for (const c of counts) t.diagnostic(`${c.command}: ${c.points} crash points (before ${c.before}, after ${c.after}, between ${c.between}) in ${c.ms} ms`)
  })
})
