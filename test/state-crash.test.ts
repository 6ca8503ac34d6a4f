/**
 * `iofcert cluster` state across kill -9: real processes, real SIGKILL, real files. A command is
 * killed at each of its state-changing file operations (IOFCERT_TEST_CRASH_AT, see
 * framework/persist.ts) and after random delays; after each kill the cluster is as before the
 * command or as after it, and running the command again converges. State files that are
 * corrupt, missing or moved are one line naming the file.
 */
import assert from 'node:assert/strict'
import { cpSync, existsSync, openSync, closeSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { Cluster } from '../harness/framework/cluster.js'
import { withClusterSession } from '../harness/framework/lifecycle/session.js'
import { makePackage, testKey } from './lifecycle-fixtures.js'
import { startCli, type CliRun } from './helpers/cli.js'
import { scratch, type Scratch } from './package-fixtures.js'

const MiB = 1024 * 1024

let s: Scratch
beforeEach(async () => { s = await scratch() })
afterEach(async () => { await s.cleanup() })

type Run = CliRun

/** Starts `iofcert <args>` as its own process, in the scratch directory. */
function start(args: string[], env: Record<string, string> = {}): ReturnType<typeof startCli> {
  return startCli(args, s.dir, env)
}

function iofcert(...args: string[]): Promise<Run> {
  return start(args).done
}

function expectExit(r: Run, code: number, what: string): void {
  assert.equal(r.code, code, `${what}: exit ${r.code} (${r.signal ?? 'no signal'})\nstdout: ${r.stdout}\nstderr: ${r.stderr}`)
  assert.doesNotMatch(r.stderr, /\n\s+at /, `${what}: no stack trace`)
}

/** A refusal: exit 2, one line on stderr, no stack trace. */
function expectOneLine(r: Run, what: string): string {
  expectExit(r, 2, what)
  const lines = r.stderr.split('\n').filter(l => l.trim() !== '')
  assert.equal(lines.length, 1, `${what}: one line on stderr, got:\n${r.stderr}`)
  return lines[0]!
}

/** A host's VMs as its state file has them: name, powered on, disks with id and capacity. */
function vms(dir: string, host: string): { name: string; poweredOn: boolean; disks: { id: string; capacity: number; path: string | null }[] }[] {
  return JSON.parse(readFileSync(join(dir, 'hosts', host, 'state.json'), 'utf8')).vms
}

/** Files the state machinery may leave only while a command runs or was killed. */
function leftovers(dir: string): string[] {
  const names = readdirSync(dir).filter(n => n.startsWith('.iofcert') || n.endsWith('.tmp'))
  for (const h of readdirSync(join(dir, 'hosts'))) names.push(...readdirSync(join(dir, 'hosts', h)).filter(n => n.endsWith('.tmp')).map(n => `hosts/${h}/${n}`))
  return names
}

function datastore(dir: string): string[] {
  return existsSync(join(dir, 'datastore')) ? readdirSync(join(dir, 'datastore')).sort() : []
}

async function sleep(ms: number): Promise<void> {
  await new Promise(r => setTimeout(r, ms))
}

/** Waits until the command holds the cluster's lock (it is inside its session), or ends. */
async function untilLocked(dir: string, run: { done: Promise<Run> }): Promise<boolean> {
  let ended = false
  void run.done.then(() => { ended = true })
  while (!ended) {
    if (existsSync(join(dir, '.iofcert.lock'))) return true
    await sleep(1)
  }
  return false
}

const CREATE = (dir: string) => ['cluster', 'vm', 'create', dir, 'esx1', 'vm1', '--disk', 'd1:1M:file', '--disk', 'd1b:2M:file']

/**
 * Opens the cluster for reading, as `cluster list` does (in this process, which is quicker than
 * another one): a commit a killed command left half applied is finished, and what it had made
 * aside is removed.
 */
async function look(dir: string): Promise<string[]> {
  return withClusterSession(dir, { mode: 'read' }, async s => [...s.cluster.hosts.values()].flatMap(h => [...h.vms.keys()].map(vm => `${h.name}/${vm}`)))
}

/**
 * After a killed `vm create`: a reader sees the cluster before the command or after it, nothing
 * in between; then running the command again converges to after. Returns which one it was.
 */
async function beforeOrAfter(dir: string, what: string): Promise<'before' | 'after'> {
  const seenVms = await look(dir)
  assert.deepEqual(leftovers(dir), [], `${what}: nothing left of the killed command`)
  assert.deepEqual(seenVms, vms(dir, 'esx1').map(v => `esx1/${v.name}`), `${what}: the reader sees what the files hold`)
  const now = vms(dir, 'esx1')
  let seen: 'before' | 'after'
  if (now.length === 0) {
    assert.deepEqual(datastore(dir), [], `${what}: before the command, no image`)
    seen = 'before'
  } else {
    assert.deepEqual(now.map(v => [v.name, v.poweredOn, v.disks.map(d => [d.id, d.capacity, d.path])]), [['vm1', false, [['d1', MiB, 'datastore/d1/disk.img'], ['d1b', 2 * MiB, 'datastore/d1b/disk.img']]]], `${what}: after the command, the whole VM`)
    assert.deepEqual(datastore(dir), ['d1', 'd1b'])
    assert.equal(statSync(join(dir, 'datastore', 'd1', 'disk.img')).size, MiB)
    assert.equal(statSync(join(dir, 'datastore', 'd1b', 'disk.img')).size, 2 * MiB)
    seen = 'after'
  }
  assert.deepEqual(vms(dir, 'esx2'), [], `${what}: the other host untouched`)
  const again = await iofcert(...CREATE(dir))
  if (seen === 'before') expectExit(again, 0, `${what}: run again`)
  else assert.match(expectOneLine(again, `${what}: run again`), /a VM named "vm1" already exists/)
  assert.equal(vms(dir, 'esx1').length, 1, `${what}: converged`)
  assert.deepEqual(datastore(dir), ['d1', 'd1b'])
  assert.deepEqual(leftovers(dir), [])
  return seen
}

describe('a command killed at any instant', () => {
  it('vm create with two disks, killed at each state-changing file operation: before or after, and a second run converges', async () => {
    const base = join(s.dir, 'base')
    expectExit(await iofcert('cluster', 'init', base, '--hosts', '2'), 0, 'init')
    const seen: ('before' | 'after')[] = []
    for (let n = 1; ; n++) {
      assert.ok(n < 200, 'the command ends within 200 crash points')
      const dir = join(s.dir, `c${n}`)
      cpSync(base, dir, { recursive: true })
      const r = await start(CREATE(dir), { IOFCERT_TEST_CRASH_AT: String(n) }).done
      if (r.signal === null) {
        // past the last crash point: the command ran to its end
        expectExit(r, 0, `crash point ${n} not reached`)
        break
      }
      assert.equal(r.signal, 'SIGKILL', `crash point ${n}: ${r.stderr}`)
      assert.match(r.stderr, new RegExp(`crash point ${n}: `))
      seen.push(await beforeOrAfter(dir, `killed at ${r.stderr.trim()}`))
      rmSync(dir, { recursive: true, force: true })
    }
    assert.ok(seen.length >= 20, `killed at ${seen.length} points`)
    assert.ok(seen.includes('before') && seen.includes('after'), `kills on both sides of the commit point: ${seen.join(' ')}`)
    // the last kills are past the commit point: a killed command that committed is after
    assert.equal(seen[seen.length - 1], 'after')
  })

  it('vm create killed with kill -9 after random delays while it holds the cluster: before or after, and a second run converges', async () => {
    const base = join(s.dir, 'base')
    expectExit(await iofcert('cluster', 'init', base, '--hosts', '2'), 0, 'init')
    let killed = 0
    for (let round = 0; round < 8; round++) {
      const dir = join(s.dir, `r${round}`)
      cpSync(base, dir, { recursive: true })
      const run = start(CREATE(dir))
      if (await untilLocked(dir, run)) {
        await sleep(Math.floor(Math.random() * 40))
        run.child.kill('SIGKILL')
      }
      const r = await run.done
      if (r.signal === 'SIGKILL') killed++
      else expectExit(r, 0, `round ${round} ran to its end`)
      await beforeOrAfter(dir, `round ${round}`)
      rmSync(dir, { recursive: true, force: true })
    }
    assert.ok(killed >= 4, `${killed} of 8 rounds were killed`)
  })

  it('list, maintenance and policy apply killed while the cluster opens leave a powered-on VM recorded as powered on', async () => {
    const dir = join(s.dir, 'c')
    expectExit(await iofcert('cluster', 'init', dir, '--hosts', '2'), 0, 'init')
    expectExit(await iofcert('cluster', 'vm', 'create', dir, 'esx1', 'vm1', '--disk', 'd1:1M:file'), 0, 'vm create')
    expectExit(await iofcert('cluster', 'policy', dir, 'create', 'limit', '--rule', 'spm@DATASTOREIOCONTROL'), 0, 'policy create')
    expectExit(await iofcert('cluster', 'vm', 'power', dir, 'vm1', 'on'), 0, 'power on')
    assert.equal(vms(dir, 'esx1')[0]!.poweredOn, true)
    const commands = [
      ['cluster', 'list', dir], ['cluster', 'maintenance', dir, 'esx2', 'on'], ['cluster', 'policy', dir, 'apply', 'limit', 'vm1', 'd1'],
      ['cluster', 'maintenance', dir, 'esx2', 'off'], ['cluster', 'policy', dir, 'clear', 'vm1', 'd1'],
    ]
    let killed = 0
    for (let round = 0; round < 15; round++) {
      const run = start(commands[round % commands.length]!)
      if (await untilLocked(dir, run)) {
        // opening powers vm1 on again: a worker starts and its disk opens, which takes a while
        await sleep(Math.floor(Math.random() * 250))
        run.child.kill('SIGKILL')
      }
      const r = await run.done
      if (r.signal === 'SIGKILL') killed++
      assert.equal(vms(dir, 'esx1')[0]!.poweredOn, true, `round ${round} (${r.signal ?? `exit ${r.code}`}): vm1 is still recorded as powered on`)
    }
    assert.ok(killed >= 5, `${killed} of 15 rounds were killed`)
    const list = await iofcert('cluster', 'list', dir)
    expectExit(list, 0, 'list after the kills')
    assert.equal(existsSync(join(dir, '.iofcert.lock')), false)
    // and it is powered on again by the next command: maintenance mode is refused for it
    assert.match((await iofcert('cluster', 'maintenance', dir, 'esx1', 'on')).stderr, /powered-on VMs vm1/)
  })

  it('host add killed with kill -9 part way through installing the cluster\'s filters: the host is not there, or there with the filter', async () => {
    const key = await testKey(join(s.dir, 'key'))
    const cdp = await makePackage(s, { key })
    const base = join(s.dir, 'base')
    expectExit(await iofcert('cluster', 'init', base, '--hosts', '1', '--trust', key.publicPath), 0, 'init')
    expectExit(await iofcert('cluster', 'install', base, cdp.tgz), 0, 'install')
    const add = (dir: string) => ['cluster', 'host', 'add', dir, 'esx2', '--trust', key.publicPath]
    // how long a whole run holds the cluster, to spread the kills over it
    const timing = join(s.dir, 'timing')
    cpSync(base, timing, { recursive: true })
    const whole = start(add(timing))
    assert.ok(await untilLocked(timing, whole))
    const t0 = Date.now()
    expectExit(await whole.done, 0, 'host add')
    const span = Date.now() - t0
    const seen: string[] = []
    for (let round = 0; round < 6; round++) {
      const dir = join(s.dir, `h${round}`)
      cpSync(base, dir, { recursive: true })
      const run = start(add(dir))
      if (await untilLocked(dir, run)) {
        await sleep(Math.floor((span * (round + 0.5)) / 6))
        run.child.kill('SIGKILL')
      }
      const r = await run.done
      const what = `round ${round} (${r.signal ?? `exit ${r.code}`})`
      const view = await withClusterSession(dir, { mode: 'read' }, async v => ({ hosts: [...v.cluster.hosts.keys()], filters: v.lifecycle.query().map(f => [f.id, f.hosts.map(h => [h.host, h.status])]), issues: v.lifecycle.issues().length }))
      assert.deepEqual(leftovers(dir), [], what)
      if (view.hosts.length === 1) {
        seen.push('before')
        assert.deepEqual(view.filters, [['ACME_cdp_1.0.0', [['esx1', 'INSTALLED']]]], `${what}: before`)
        expectExit(await iofcert(...add(dir)), 0, `${what}: add again`)
      } else {
        seen.push('after')
        assert.deepEqual(view.filters, [['ACME_cdp_1.0.0', [['esx1', 'INSTALLED'], ['esx2', 'INSTALLED']]]], `${what}: after, with the filter`)
        assert.match(expectOneLine(await iofcert(...add(dir)), `${what}: add again`), /a host named "esx2" already exists/)
      }
      assert.equal(view.issues, 0, what)
      const list = await iofcert('cluster', 'list', dir, '--json')
      expectExit(list, 0, `${what}: list`)
      assert.deepEqual((JSON.parse(list.stdout) as { filters: { hosts: { status: string }[] }[] }).filters.map(f => f.hosts.map(h => h.status)), [['INSTALLED', 'INSTALLED']], `${what}: converged`)
      rmSync(dir, { recursive: true, force: true })
    }
    assert.ok(seen.includes('before'), `some kills before the commit: ${seen.join(' ')}`)
  })

  it('a refused vm create leaves nothing behind; vm delete and vm disk add|remove undo what vm create made, all or nothing', async () => {
    const dir = join(s.dir, 'c')
    expectExit(await iofcert('cluster', 'init', dir, '--hosts', '2'), 0, 'init')
    expectExit(await iofcert('cluster', 'vm', 'create', dir, 'esx2', 'vm0', '--disk', 'd0:1M:file'), 0, 'vm0')
    const refusals: [string[], RegExp][] = [
      [['--disk', 'd9:1M:file', '--disk', 'd0:1M:file'], /a disk with id "d0" already exists in the cluster/],
      [['--disk', 'd9:1M:file', '--disk', 'd9:2M:file'], /--disk d9 is given twice/],
      [['--disk', 'd9:1M:file', '--disk', 'd8:1000'], /positive multiple of 512/],
    ]
    for (const [disks, message] of refusals) {
      const r = await iofcert('cluster', 'vm', 'create', dir, 'esx1', 'vm1', ...disks)
      assert.match(expectOneLine(r, disks.join(' ')), message)
      assert.deepEqual(vms(dir, 'esx1'), [], `${disks.join(' ')}: no VM`)
      assert.deepEqual(datastore(dir), ['d0'], `${disks.join(' ')}: no image`)
      assert.deepEqual(leftovers(dir), [])
    }
    expectExit(await iofcert('cluster', 'vm', 'create', dir, 'esx1', 'vm1', '--disk', 'd1:1M:file'), 0, 'vm1')
    expectExit(await iofcert('cluster', 'vm', 'disk', 'add', dir, 'vm1', 'd2:2M:file', 'd3:1M'), 0, 'disk add')
    assert.deepEqual(vms(dir, 'esx1')[0]!.disks.map(d => [d.id, d.capacity]), [['d1', MiB], ['d2', 2 * MiB], ['d3', MiB]])
    assert.deepEqual(datastore(dir), ['d0', 'd1', 'd2'])
    // all or none: d4 is fine, d0 is taken
    assert.match(expectOneLine(await iofcert('cluster', 'vm', 'disk', 'add', dir, 'vm1', 'd4:1M:file', 'd0:1M'), 'disk add d0'), /"d0" already exists/)
    assert.deepEqual(datastore(dir), ['d0', 'd1', 'd2'])
    assert.match(expectOneLine(await iofcert('cluster', 'vm', 'disk', 'remove', dir, 'vm1', 'd2', 'nosuch'), 'disk remove nosuch'), /no disk "nosuch"/)
    assert.equal(vms(dir, 'esx1')[0]!.disks.length, 3)
    assert.deepEqual(datastore(dir), ['d0', 'd1', 'd2'])
    expectExit(await iofcert('cluster', 'vm', 'disk', 'remove', dir, 'vm1', 'd2', 'd3'), 0, 'disk remove')
    assert.deepEqual(vms(dir, 'esx1')[0]!.disks.map(d => d.id), ['d1'])
    assert.deepEqual(datastore(dir), ['d0', 'd1'])

    // refused while powered on, or while a disk has a storage policy
    expectExit(await iofcert('cluster', 'vm', 'power', dir, 'vm1', 'on'), 0, 'power on')
    const on = await iofcert('cluster', 'vm', 'delete', dir, 'vm1')
    expectExit(on, 1, 'delete a powered-on VM')
    assert.match(on.stderr, /VM "vm1" is powered on: cannot delete it/)
    expectExit(await iofcert('cluster', 'vm', 'power', dir, 'vm1', 'off'), 0, 'power off')
    expectExit(await iofcert('cluster', 'policy', dir, 'create', 'limit', '--rule', 'spm@DATASTOREIOCONTROL'), 0, 'policy create')
    expectExit(await iofcert('cluster', 'policy', dir, 'apply', 'limit', 'vm1', 'd1'), 0, 'policy apply')
    const withPolicy = await iofcert('cluster', 'vm', 'delete', dir, 'vm1')
    expectExit(withPolicy, 1, 'delete with a policy')
    assert.match(withPolicy.stderr, /disk d1 of VM vm1 has storage policy "limit": clear the policy first/)
    expectExit(await iofcert('cluster', 'policy', dir, 'clear', 'vm1', 'd1'), 0, 'policy clear')

    // vm delete killed at each crash point: before or after
    const base = join(s.dir, 'before-delete')
    cpSync(dir, base, { recursive: true })
    let points = 0
    for (let n = 1; ; n++) {
      assert.ok(n < 200)
      const c = join(s.dir, `d${n}`)
      cpSync(base, c, { recursive: true })
      const r = await start(['cluster', 'vm', 'delete', c, 'vm1'], { IOFCERT_TEST_CRASH_AT: String(n) }).done
      if (r.signal === null) {
        expectExit(r, 0, 'vm delete')
        break
      }
      points++
      await look(c)
      assert.deepEqual(leftovers(c), [])
      const left = vms(c, 'esx1')
      if (left.length === 1) assert.deepEqual(datastore(c), ['d0', 'd1'], `killed at ${r.stderr.trim()}: before`)
      else assert.deepEqual([left.length, datastore(c)], [0, ['d0']], `killed at ${r.stderr.trim()}: after`)
      const again = await iofcert('cluster', 'vm', 'delete', c, 'vm1')
      if (left.length === 1) expectExit(again, 0, 'delete again')
      else assert.match(expectOneLine(again, 'delete again'), /no VM named "vm1"/)
      assert.deepEqual([vms(c, 'esx1').length, datastore(c)], [0, ['d0']])
      rmSync(c, { recursive: true, force: true })
    }
    assert.ok(points >= 10, `killed at ${points} points`)
  })
})

describe('state files that are corrupt, missing or moved', () => {
  it('a truncated, garbage, {} or null state file is one line naming it (exit 2); one bad host does not hide the others from list', async () => {
    const dir = join(s.dir, 'c')
    expectExit(await iofcert('cluster', 'init', dir, '--hosts', '2'), 0, 'init')
    expectExit(await iofcert('cluster', 'vm', 'create', dir, 'esx1', 'vm1', '--disk', 'd1:1M:file'), 0, 'vm create')
    for (const name of ['cluster.json', join('hosts', 'esx1', 'state.json'), 'lifecycle.json']) {
      const file = join(dir, name)
      const good = readFileSync(file, 'utf8')
      const bad: [string, string][] = [
        ['truncated', good.slice(0, Math.floor(good.length / 2))],
        ['garbage', '\u0000\u0017garbage\ufffd'],
        ['{}', '{}'],
        ['null', 'null'],
      ]
      for (const [what, text] of bad) {
        writeFileSync(file, text)
        const change = await iofcert('cluster', 'maintenance', dir, 'esx2', 'on')
        assert.match(expectOneLine(change, `${name} ${what}: maintenance`), new RegExp(`state file ${esc(file)} is unusable: `), `${name} ${what}`)
        const list = await iofcert('cluster', 'list', dir)
        if (name.startsWith('hosts')) {
          // the other host is listed; this one is named unreadable, with its file and why
          expectExit(list, 2, `${name} ${what}: list`)
          assert.match(list.stdout, new RegExp(`esx1  unreadable: state file ${esc(file)} is unusable: `))
          const j = await iofcert('cluster', 'list', dir, '--json')
          expectExit(j, 2, `${name} ${what}: list --json`)
          const out = JSON.parse(j.stdout) as { hosts: string[]; unreadable: { host: string; error: { code: string } }[] }
          assert.deepEqual(out.hosts, ['esx2'])
          assert.deepEqual(out.unreadable.map(u => [u.host, u.error.code]), [['esx1', 'StateFileInvalid']])
        } else {
          assert.match(expectOneLine(list, `${name} ${what}: list`), new RegExp(`state file ${esc(file)} is unusable: `))
        }
        assert.equal(readFileSync(file, 'utf8'), text, `${name} ${what}: left as it was`)
        assert.equal(JSON.parse(readFileSync(join(dir, 'hosts', 'esx2', 'state.json'), 'utf8')).maintenance, false, 'nothing changed')
      }
      writeFileSync(file, good)
    }
    expectExit(await iofcert('cluster', 'list', dir), 0, 'list with every file back')
  })

  it('a deleted host directory, host state, lifecycle.json or cluster.json is reported, not made up again', async () => {
    const dir = join(s.dir, 'c')
    expectExit(await iofcert('cluster', 'init', dir, '--hosts', '2', '--acceptance-level', 'CommunitySupported'), 0, 'init')
    rmSync(join(dir, 'hosts', 'esx2', 'state.json'))
    assert.match(expectOneLine(await iofcert('cluster', 'maintenance', dir, 'esx1', 'on'), 'host state missing'), new RegExp(`state file ${esc(join(dir, 'hosts', 'esx2', 'state.json'))} \\(host esx2\\) is missing`))
    rmSync(join(dir, 'hosts', 'esx2'), { recursive: true })
    const hostDir = join(dir, 'hosts', 'esx2')
    assert.match(expectOneLine(await iofcert('cluster', 'maintenance', dir, 'esx1', 'on'), 'host dir missing'), new RegExp(`host esx2 is in the cluster, but its directory ${esc(hostDir)} is missing`))
    const list = await iofcert('cluster', 'list', dir)
    expectExit(list, 2, 'list')
    assert.match(list.stdout, /esx2  unreadable: host esx2 is in the cluster, but its directory .* is missing/)
    assert.equal(existsSync(hostDir), false, 'the host directory was not made again')
    assert.equal(JSON.parse(readFileSync(join(dir, 'hosts', 'esx1', 'state.json'), 'utf8')).maintenance, false)
    rmSync(join(dir, 'lifecycle.json'))
    assert.match(expectOneLine(await iofcert('cluster', 'list', dir), 'lifecycle.json missing'), /state file .*lifecycle\.json \(the cluster's filter records\) is missing/)
    assert.equal(existsSync(join(dir, 'lifecycle.json')), false)
    rmSync(join(dir, 'cluster.json'))
    assert.match(expectOneLine(await iofcert('cluster', 'list', dir), 'cluster.json missing'), new RegExp(`state file ${esc(join(dir, 'cluster.json'))} \\(the cluster\\) is missing`))
    assert.match(expectOneLine(await iofcert('cluster', 'list', join(s.dir, 'nothing')), 'no cluster'), /no cluster in /)
  })

  it('a VM whose disk image was deleted refuses to power on, naming the file', async () => {
    const dir = join(s.dir, 'c')
    expectExit(await iofcert('cluster', 'init', dir, '--hosts', '1'), 0, 'init')
    expectExit(await iofcert('cluster', 'vm', 'create', dir, 'esx1', 'vm1', '--disk', 'd1:1M:file'), 0, 'vm create')
    const image = join(dir, 'datastore', 'd1', 'disk.img')
    rmSync(image)
    const r = await iofcert('cluster', 'vm', 'power', dir, 'vm1', 'on')
    assert.match(expectOneLine(r, 'power on'), new RegExp(`disk d1 of VM vm1 has no image: ${esc(image)} is missing`))
    assert.equal(existsSync(image), false, 'no empty image was made in its place')
    assert.equal(vms(dir, 'esx1')[0]!.poweredOn, false)
    // a policy change would open the disk too
    expectExit(await iofcert('cluster', 'policy', dir, 'create', 'limit', '--rule', 'spm@DATASTOREIOCONTROL'), 0, 'policy create')
    assert.match(expectOneLine(await iofcert('cluster', 'policy', dir, 'apply', 'limit', 'vm1', 'd1'), 'policy apply'), /has no image/)
    assert.equal(existsSync(image), false)
    // removing the disk is the way out
    expectExit(await iofcert('cluster', 'vm', 'disk', 'remove', dir, 'vm1', 'd1'), 0, 'disk remove')
    expectExit(await iofcert('cluster', 'vm', 'power', dir, 'vm1', 'on'), 0, 'power on without the disk')
  })

  it('a copied cluster directory works on its own images, also with paths an older version kept absolute', async () => {
    const orig = join(s.dir, 'orig')
    expectExit(await iofcert('cluster', 'init', orig, '--hosts', '1'), 0, 'init')
    expectExit(await iofcert('cluster', 'vm', 'create', orig, 'esx1', 'vm1', '--disk', 'd1:1M:file'), 0, 'vm create')
    const copy = join(s.dir, 'copy')
    cpSync(orig, copy, { recursive: true })
    stamp(join(orig, 'datastore', 'd1', 'disk.img'), 'the original')
    stamp(join(copy, 'datastore', 'd1', 'disk.img'), 'the copy')
    assert.equal(await firstBytes(copy), 'the copy')
    assert.equal(await firstBytes(orig), 'the original')

    // as an older version wrote it: the absolute path, of the copy itself, or of the directory it was copied from
    const stateFile = join(copy, 'hosts', 'esx1', 'state.json')
    for (const where of [copy, orig]) {
      const st = JSON.parse(readFileSync(stateFile, 'utf8'))
      st.vms[0].disks[0].path = join(where, 'datastore', 'd1', 'disk.img')
      writeFileSync(stateFile, JSON.stringify(st))
      assert.equal(await firstBytes(copy), 'the copy', `path in ${where === copy ? 'the copy' : 'the original'}`)
    }
    // a path outside the directory that is no image of its datastore is refused
    const st = JSON.parse(readFileSync(stateFile, 'utf8'))
    st.vms[0].disks[0].path = join(s.dir, 'elsewhere.img')
    writeFileSync(stateFile, JSON.stringify(st))
    assert.match(expectOneLine(await iofcert('cluster', 'vm', 'power', copy, 'vm1', 'on'), 'outside'), /vms\[0\]\.disks\[0\]\.path must be a path inside the cluster directory/)
    // with the original gone, the copy still powers on (through the CLI)
    st.vms[0].disks[0].path = 'datastore/d1/disk.img'
    writeFileSync(stateFile, JSON.stringify(st))
    rmSync(orig, { recursive: true })
    expectExit(await iofcert('cluster', 'vm', 'power', copy, 'vm1', 'on'), 0, 'power on in the copy')
    expectExit(await iofcert('cluster', 'vm', 'power', copy, 'vm1', 'off'), 0, 'power off in the copy')
    assert.equal(await firstBytes(copy), 'the copy')
  })
})

/** `text` as a regular expression that matches it literally. */
function esc(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** Writes `text` at the start of an image file. */
function stamp(file: string, text: string): void {
  const fd = openSync(file, 'r+')
  try {
    writeSync(fd, Buffer.from(text.padEnd(16, '\0')), 0, 16, 0)
  } finally {
    closeSync(fd)
  }
}

/** What the guest of vm1 reads at the start of disk d1, with the cluster opened from `dir`. */
async function firstBytes(dir: string): Promise<string> {
  const c = await Cluster.open(dir)
  try {
    const vm = c.vm('vm1')
    await vm.powerOn()
    const data = await vm.read('d1', 0, 512)
    return Buffer.from(data.subarray(0, 16)).toString().replace(/\0+$/, '')
  } finally {
    await c.shutdown({ remove: false })
  }
}
