/**
 * The cluster lock of `iofcert cluster` across real processes: concurrent commands serialize with
 * no lost update (each refused one says ClusterBusy), the lock file is never seen empty, and a
 * lock left by a killed process — also empty, unreadable or naming a live process that is not its
 * owner (a reused pid) — is taken over, by exactly one of the processes that find it.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { startCli, type CliRun } from './helpers/cli.js'
import { scratch, type Scratch } from './package-fixtures.js'

let s: Scratch
beforeEach(async () => { s = await scratch() })
afterEach(async () => { await s.cleanup() })

type Run = CliRun

function iofcert(...args: string[]): Promise<Run> {
  return startCli(args, s.dir).done
}

function expectExit(r: Run, code: number, what: string): void {
  assert.equal(r.code, code, `${what}: exit ${r.code} (${r.signal ?? 'no signal'})\nstdout: ${r.stdout}\nstderr: ${r.stderr}`)
}

function policies(dir: string): string[] {
  return (JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')).policies as { name: string }[]).map(p => p.name).sort()
}

/** Lock files and their temp files left in the directory. */
function lockFiles(dir: string): string[] {
  return readdirSync(dir).filter(n => n.startsWith('.iofcert.lock'))
}

/** A process's start time as the lock records it (Linux: /proc/<pid>/stat field 22). */
function startTime(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!
}

/** The pid of a process that has ended. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' })
  return Number(r.stdout)
}

/**
 * Runs `n` `policy create` commands at once; each either succeeds or is refused with ClusterBusy
 * (exit 1, one line). Returns the names that were reported created.
 */
async function race(dir: string, names: string[]): Promise<string[]> {
  const runs = await Promise.all(names.map(n => iofcert('cluster', 'policy', dir, 'create', n, '--rule', 'cdp@REPLICATION')))
  const created: string[] = []
  runs.forEach((r, i) => {
    if (r.code === 0) {
      assert.match(r.stdout, new RegExp(`^policy ${names[i]}: cdp@REPLICATION`))
      created.push(names[i]!)
      return
    }
    expectExit(r, 1, `policy create ${names[i]}`)
    assert.match(r.stderr, /^iofcert cluster policy: cluster .* is in use by another iofcert process \(pid \d+\)\n$/, `${names[i]}: refused as busy, in one line`)
  })
  return created
}

describe('the cluster lock', () => {
  it('8 concurrent policy create, 24 rounds, three in four of them from a stale lock (dead, empty, garbage, a reused pid, a command killed holding it): every reported success exists, nothing else does', async () => {
    const dir = join(s.dir, 'c')
    expectExit(await iofcert('cluster', 'init', dir, '--hosts', '1'), 0, 'init')
    const lock = join(dir, '.iofcert.lock')
    const dead = deadPid()
    const stale = [
      `{"pid":${dead},"start":"1","nonce":"00"}\n`, `${dead}\n`, '', 'garbage',
      // live processes that are not the owner: the pid was reused
      `{"pid":1,"start":"${Number(startTime(1)) + 1}","nonce":"00"}\n`, `{"pid":${process.ppid},"start":"${Number(startTime(process.ppid)) + 7}","nonce":"00"}\n`,
    ]
    /** Rounds that start from a lock of a command killed while it held the cluster, at this crash point (past the lock, some before the commit, some after). */
    const killedAt = [5, 9, 12, 14, 16, 18]
    // every look at the lock file while the rounds run finds it whole or absent (or one the test left), never partly written
    const partial: string[] = []
    let watching = true
    const watcher = (async () => {
      while (watching) {
        try {
          const text = readFileSync(lock, 'utf8')
          if (!/^\{"pid":\d+,"start":("\d+"|null),"nonce":"[0-9a-f]+"\}\n$/.test(text) && !stale.includes(text)) partial.push(JSON.stringify(text))
        } catch {
          // no lock
        }
        await new Promise(r => setImmediate(r))
      }
    })()
    const reported: string[] = []
    try {
      for (let round = 0; round < 24; round++) {
        // every process of the round finds the stale lock: exactly one may take it over
        if (round % 4 === 1 || round % 4 === 3) writeFileSync(lock, stale[Math.floor(round / 2) % stale.length]!)
        if (round % 4 === 2) {
          // a real one: a command killed with the lock held, maybe with its commit half applied
          const n = killedAt[Math.floor(round / 4) % killedAt.length]!
          const killed = await startCli(['cluster', 'policy', dir, 'create', `killed${round}`, '--rule', 'cdp@REPLICATION'], s.dir, { IOFCERT_TEST_CRASH_AT: String(n) }).done
          assert.equal(killed.signal, 'SIGKILL', `round ${round}: killed at crash point ${n}: ${killed.stderr}`)
          assert.ok(existsSync(lock), `round ${round}: the killed command left its lock (${killed.stderr.trim()})`)
        }
        const names = Array.from({ length: 8 }, (_, i) => `p${round}-${i}`)
        const created = await race(dir, names)
        assert.ok(created.length >= 1, `round ${round}: one of them gets the cluster`)
        reported.push(...created)
        // the killed command's policy is there when it had reached its commit point: kept, never half there
        if (round % 4 === 2 && policies(dir).includes(`killed${round}`)) reported.push(`killed${round}`)
        assert.deepEqual(policies(dir), [...reported].sort(), `round ${round}: the policies are exactly those reported created`)
        assert.deepEqual(lockFiles(dir), [], `round ${round}: every lock released`)
      }
    } finally {
      watching = false
      await watcher
    }
    assert.deepEqual(partial, [], 'the lock file was never seen partly written')
  })

  it('takes over a lock of a dead process, an empty or garbage one, and one naming a live process that is not its owner', async () => {
    const dir = join(s.dir, 'c')
    expectExit(await iofcert('cluster', 'init', dir, '--hosts', '1'), 0, 'init')
    const lock = join(dir, '.iofcert.lock')
    const dead = deadPid()
    const stale: [string, string][] = [
      ['a dead process', `{"pid":${dead},"start":"1","nonce":"00"}\n`],
      ['a dead process, as older versions wrote it', `${dead}\n`],
      ['nothing (an empty file)', ''],
      ['garbage', '\u0000\u0001not a lock'],
      ['pid 1 with another start time (a reused pid)', `{"pid":1,"start":"${Number(startTime(1)) + 1}","nonce":"00"}\n`],
      ['this test\'s parent with another start time', `{"pid":${process.ppid},"start":"${Number(startTime(process.ppid)) + 7}","nonce":"00"}\n`],
      ['pid 1, as older versions wrote it (pid 1 runs no iofcert)', '1\n'],
    ]
    for (const [what, text] of stale) {
      writeFileSync(lock, text)
      const r = await iofcert('cluster', 'policy', dir, 'create', `after-${stale.findIndex(x => x[0] === what)}`, '--rule', 'cdp@REPLICATION')
      expectExit(r, 0, `a lock naming ${what}`)
      assert.deepEqual(lockFiles(dir), [], `${what}: released after the take-over`)
    }
    // stale break locks (processes killed while taking over) are broken in turn and cleaned up
    writeFileSync(lock, `{"pid":${dead},"start":"1","nonce":"01"}\n`)
    writeFileSync(`${lock}.break1`, `{"pid":${dead},"start":"1","nonce":"02"}\n`)
    writeFileSync(`${lock}.break2`, '')
    expectExit(await iofcert('cluster', 'policy', dir, 'create', 'after-breaks', '--rule', 'cdp@REPLICATION'), 0, 'stale break locks')
    assert.deepEqual(lockFiles(dir), [])
    assert.equal(policies(dir).length, stale.length + 1)

    // a live owner (this very process, with its start time) is not taken over
    const live = `{"pid":${process.pid},"start":"${startTime(process.pid)}","nonce":"03"}\n`
    writeFileSync(lock, live)
    const busy = await iofcert('cluster', 'policy', dir, 'create', 'refused', '--rule', 'cdp@REPLICATION')
    expectExit(busy, 1, 'a live owner')
    assert.match(busy.stderr, new RegExp(`is in use by another iofcert process \\(pid ${process.pid}\\)`))
    assert.equal(readFileSync(lock, 'utf8'), live, 'the live owner keeps its lock')
    const readBusy = await iofcert('cluster', 'list', dir)
    expectExit(readBusy, 1, 'list while a live owner works')
    assert.ok(!policies(dir).includes('refused'))
  })
})
