/**
 * A guest workload killed at each of its state-changing file operations in turn: a process opens
 * the cluster as a command does, powers on a VM with a file-backed disk and runs a deterministic
 * workload of 8 cycles, each 5 writes (1 to 8 sectors, over a 64-sector region, so sectors are
 * written many times) and a flush, then shuts the cluster down. Its crash points are the lock, the
 * state writes of the power-on and the shutdown, and the drive's file operations: the journal's
 * creation and appends, the image's writes, its fsync at a flush and the journal's new epoch after
 * it (framework/drive.ts, journal.ts). The child says on stdout, written synchronously, when each
 * write completed, before each flush is issued and after it returned.
 *
 * Every crash point up to the end of the first flush cycle is a kill point, and every third one
 * after it (about 50 kills in all, for a workload of about 110 crash points). After each kill the
 * cluster is opened, the VM powered on and the region read through the guest path:
 * - no byte appears that the workload never wrote: each sector is zeros or a version some issued
 *   write gave it;
 * - every write whose flush returned is there: a sector holds its version as of the last flush
 *   that returned, or a later one;
 * - and, as the drive's journal promises for a power cut, exactly: the disk is as the last flush
 *   that returned left it, or as the flush in progress leaves it.
 * Then nothing of the killed process is left (commit record, staging, temp files).
 *
 * Run as `node drive-killpoints.test.js` with IOFCERT_DRIVE_WORKLOAD=<cluster dir> it is the
 * workload's process instead.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { cpSync, readdirSync, rmSync, statSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { openClusterSession, withClusterSession } from '../harness/framework/lifecycle/session.js'
import { Rng } from '../harness/framework/rng.js'
import { startCli } from './helpers/cli.js'
import { scratch, type Scratch } from './package-fixtures.js'

const SECTOR = 512
const REGION_SECTORS = 64
const CYCLES = 8
const WRITES_PER_CYCLE = 5
/** After the first flush cycle, every STRIDE-th crash point is a kill point. */
const STRIDE = 3

/** One write of the workload: its place in order, where, and the bytes of each sector. */
interface Write {
  readonly index: number
  readonly cycle: number
  readonly sector: number
  readonly sectors: readonly Uint8Array[]
}

/** The workload, the same wherever it is generated. */
function workload(): Write[] {
  const rng = new Rng(0x6b696c6c)
  const out: Write[] = []
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    for (let i = 0; i < WRITES_PER_CYCLE; i++) {
      const n = 1 + rng.int(8)
      const sector = rng.int(REGION_SECTORS - n + 1)
      out.push({ index: out.length, cycle, sector, sectors: Array.from({ length: n }, () => rng.fill(new Uint8Array(SECTOR))) })
    }
  }
  return out
}

/** A line on stdout, written before the next step starts (a kill cannot lose it). */
function say(line: string): void {
  writeSync(1, `${line}\n`)
}

/** The workload's process: opens the cluster in `dir`, powers vm1 on, runs the workload, shuts down. */
async function child(dir: string): Promise<void> {
  const s = await openClusterSession(dir, { mode: 'steps' })
  const vm = s.cluster.vm('vm1')
  if (vm.state !== 'on') await vm.powerOn()
  say('on')
  let cycle = -1
  for (const w of workload()) {
    if (w.cycle !== cycle) {
      if (cycle >= 0) await flush(vm, cycle)
      cycle = w.cycle
    }
    const data = new Uint8Array(w.sectors.length * SECTOR)
    w.sectors.forEach((b, i) => data.set(b, i * SECTOR))
    await vm.write('d1', w.sector * SECTOR, data)
    say(`wrote ${w.index}`)
  }
  await flush(vm, cycle)
  await s.close()
  say('done')
}

async function flush(vm: { flush(disk: string): Promise<void> }, cycle: number): Promise<void> {
  say(`flushing ${cycle}`)
  await vm.flush('d1')
  say(`flushed ${cycle}`)
}

const CHILD_DIR = process.env.IOFCERT_DRIVE_WORKLOAD

/** What the child said before it died. */
interface Progress {
  /** The last write that completed (-1: none). */
  readonly wrote: number
  /** The last cycle whose flush returned (-1: none). */
  readonly flushed: number
  /** A cycle whose flush was issued and had not returned (null: none). */
  readonly flushing: number | null
  readonly done: boolean
}

function progress(stdout: string): Progress {
  let wrote = -1
  let flushed = -1
  let flushing: number | null = null
  let done = false
  for (const line of stdout.split('\n')) {
    const [word, n] = line.split(' ')
    if (word === 'wrote') wrote = Number(n)
    else if (word === 'flushing') flushing = Number(n)
    else if (word === 'flushed') {
      flushed = Number(n)
      flushing = null
    } else if (word === 'done') done = true
  }
  return { wrote, flushed, flushing, done }
}

/** The region as the workload leaves it after write `last` (-1: zeros). */
function stateAfter(writes: readonly Write[], last: number): (Uint8Array | null)[] {
  const sectors: (Uint8Array | null)[] = new Array(REGION_SECTORS).fill(null)
  for (const w of writes) {
    if (w.index > last) break
    w.sectors.forEach((b, i) => { sectors[w.sector + i] = b })
  }
  return sectors
}

/** The index of the last write of `cycle` (-1 before the first cycle). */
function lastOfCycle(writes: readonly Write[], cycle: number): number {
  return cycle < 0 ? -1 : writes.filter(w => w.cycle <= cycle).length - 1
}

const ZEROS = new Uint8Array(SECTOR)

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0
}

/** Files the state machinery may leave only while a command runs or was killed. */
function leftovers(dir: string): string[] {
  const out: string[] = []
  const visit = (rel: string): void => {
    for (const name of readdirSync(join(dir, rel))) {
      const r = rel === '' ? name : `${rel}/${name}`
      if (name.startsWith('.iofcert.lock')) continue
      if (name.startsWith('.iofcert') || name.endsWith('.tmp')) out.push(r)
      else if (statSync(join(dir, r)).isDirectory()) visit(r)
    }
  }
  visit('')
  return out
}

/** Checks the disk after the child died having said `p`: the three rules of the file comment. */
function check(what: string, writes: readonly Write[], p: Progress, disk: Uint8Array): void {
  const issued = p.wrote + 1
  const flushedLast = lastOfCycle(writes, p.flushed)
  for (let s = 0; s < REGION_SECTORS; s++) {
    const got = disk.subarray(s * SECTOR, (s + 1) * SECTOR)
    const versions = writes.filter(w => w.index <= issued && w.sector <= s && s < w.sector + w.sectors.length)
    const which = versions.find(w => equal(w.sectors[s - w.sector]!, got))
    assert.ok(which !== undefined || equal(got, ZEROS), `${what}: sector ${s} holds bytes the workload never wrote to it`)
    // the last version durable at the last flush that returned, or a later one
    const durable = versions.filter(w => w.index <= flushedLast).pop()
    if (durable !== undefined) assert.ok(which !== undefined && which.index >= durable.index, `${what}: sector ${s} lost write ${durable.index}, flushed in cycle ${durable.cycle} (it holds ${which === undefined ? 'zeros' : `write ${which.index}`})`)
  }
  const as = (last: number) => stateAfter(writes, last).every((b, s) => equal(disk.subarray(s * SECTOR, (s + 1) * SECTOR), b ?? ZEROS))
  const exact = as(flushedLast) || (p.flushing !== null && as(lastOfCycle(writes, p.flushing)))
  assert.ok(exact, `${what}: the disk is as the last flush that returned (cycle ${p.flushed}) left it${p.flushing === null ? '' : `, or as the flush of cycle ${p.flushing} in progress leaves it`}`)
}

if (CHILD_DIR !== undefined) {
  await child(CHILD_DIR)
} else {
  let s: Scratch
  before(async () => { s = await scratch() })
  after(async () => { await s?.cleanup() })

  const self = fileURLToPath(import.meta.url)

  /** Runs the workload on `dir` as its own process; with `crashAt`, killed at that crash point. */
  function runChild(dir: string, env: Record<string, string>): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
    const c = spawn(process.execPath, [self], { cwd: s.dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, IOFCERT_DRIVE_WORKLOAD: dir, ...env } })
    let stdout = ''
    let stderr = ''
    c.stdout.on('data', (b: Buffer) => { stdout += b.toString() })
    c.stderr.on('data', (b: Buffer) => { stderr += b.toString() })
    return new Promise(resolve => c.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })))
  }

  /** Opens the cluster as a command does, powers vm1 on (if opening did not) and reads the region. */
  async function readDisk(dir: string): Promise<Uint8Array> {
    return withClusterSession(dir, { mode: 'transaction' }, async v => {
      const vm = v.cluster.vm('vm1')
      if (vm.state !== 'on') await vm.powerOn()
      return vm.read('d1', 0, REGION_SECTORS * SECTOR)
    })
  }

  describe('a guest workload killed at each file operation', () => {
    it('every flushed write is there, no byte the workload never wrote appears, and the disk is as a flush left it', async t => {
      const writes = workload()
      const base = join(s.dir, 'base')
      const cli = async (...args: string[]) => {
        const r = await startCli(args, s.dir).done
        assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`)
      }
      await cli('cluster', 'init', base, '--hosts', '1')
      await cli('cluster', 'vm', 'create', base, 'esx1', 'vm1', '--disk', 'd1:1M:file')

      // a whole run: the crash points it passes, and the disk it leaves
      const whole = join(s.dir, 'whole')
      cpSync(base, whole, { recursive: true })
      const w = await runChild(whole, { IOFCERT_TEST_CRASH_COUNT: '1' })
      assert.equal(w.code, 0, w.stderr)
      assert.ok(progress(w.stdout).done)
      const points = Number(/crash points passed: (\d+)/.exec(w.stderr)?.[1])
      assert.ok(points > CYCLES * (WRITES_PER_CYCLE + 2), `${points} crash points`)
      check('the whole run', writes, progress(w.stdout), await readDisk(whole))

      const kinds = new Set<string>()
      let kills = 0
      let firstCycle = true
      for (let n = 1; n <= points; n += firstCycle ? 1 : STRIDE) {
        const dir = join(s.dir, `k${n}`)
        cpSync(base, dir, { recursive: true })
        const r = await runChild(dir, { IOFCERT_TEST_CRASH_AT: String(n) })
        const at = /crash point \d+: (.*)/.exec(r.stderr)?.[1] ?? '?'
        const what = `killed at crash point ${n} of ${points} (${at})`
        assert.equal(r.signal, 'SIGKILL', `${what}: exit ${r.code}\n${r.stderr}`)
        kills++
        kinds.add(at.replace(/^write .*\.journal .*/, 'journal write').replace(/^(write|zero) image .*/, '$1 image').replace(/ \/.*/, ''))
        const p = progress(r.stdout)
        check(what, writes, p, await readDisk(dir))
        assert.deepEqual(leftovers(dir), [], `${what}: nothing left of the killed process`)
        if (p.flushed >= 0) firstCycle = false
        rmSync(dir, { recursive: true, force: true })
      }
      for (const k of ['journal write', 'write image', 'fsync image', 'create', 'rename', 'link']) assert.ok(kinds.has(k), `killed at a ${k}: ${[...kinds].join(', ')}`)
      assert.ok(kills >= 40, `${kills} kills`)
      t.diagnostic(`${kills} kills of ${points} crash points, at: ${[...kinds].sort().join(', ')}`)
    })
  })
}
