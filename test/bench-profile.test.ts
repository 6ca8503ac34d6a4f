/**
 * The tinybench profile of a filter's handlers, run in the VM's worker: every handler of every
 * operation type is measured with start and done paired as on the I/O path (so a filter that
 * holds a write's range from start to done is measured, not deadlocked), and a handler that never
 * settles or throws is reported with why, not left out.
 */
import assert from 'node:assert/strict'
import test from 'node:test'
import type { ProfileEntry } from '../harness/bench/profile.js'
import { CLASS_CAPABILITY } from '../harness/framework/policy.js'
import { referenceFilter, testFilter, withCluster } from './helpers/cluster.js'

const PROFILE = new URL('../harness/bench/profile.js', import.meta.url).href

async function profile(entry: string, timeMs: number): Promise<ProfileEntry[]> {
  return withCluster({ ioTimeoutMs: 30_000 }, async c => {
    const info = await c.installModule(entry)
    c.createPolicy({ name: 'p', rules: [{ filter: `${info.name}@${CLASS_CAPABILITY[info.cls]}`, ...(info.cls === 'replication' ? { params: { site: 'dr' } } : {}) }] })
    const h = c.host('esx1')
    h.createVm('vm1')
    await h.addDisk('vm1', { id: 'd0', capacity: 16 << 20, policy: 'p' })
    await c.vm('vm1').powerOn()
    return c.vm('vm1').runInWorker<ProfileEntry[]>('d0', PROFILE, { filterId: info.id, timeMs })
  })
}

const key = (e: ProfileEntry) => `${e.handler} ${e.op}`

test('the reference replication filter, which holds writes from start to done, is profiled on every handler', async () => {
  const entries = await profile(referenceFilter('cdp'), 60)
  assert.deepEqual(entries.map(key).sort(), ['done flush', 'done read', 'done unmap', 'done write', 'start flush', 'start read', 'start unmap', 'start write'])
  for (const e of entries) {
    assert.equal(e.error, undefined, `${key(e)}: ${e.error}`)
    assert.ok(e.nsPerOp > 0 && Number.isFinite(e.nsPerOp), `${key(e)} ns/op ${e.nsPerOp}`)
    assert.ok(e.rmePct >= 0 && e.samples > 0, `${key(e)} has its margin of error over ${e.samples} samples`)
  }
})

test('handlers that never settle or throw are reported with why; paired calls keep a stateful filter consistent', async () => {
  const entries = await profile(testFilter('profile-subject'), 40)
  const by = new Map(entries.map(e => [key(e), e]))
  // writes: start settles asynchronously; each done matches a start, and no range is left held
  for (const k of ['start write', 'done write', 'start read', 'done read']) {
    assert.equal(by.get(k)?.error, undefined, `${k}: ${by.get(k)?.error}`)
    assert.ok(by.get(k)!.nsPerOp > 0, k)
  }
  assert.match(by.get('start unmap')!.error ?? '', /start\(unmap\) did not settle within 2000 ms/)
  assert.match(by.get('done unmap')!.error ?? '', /start\(unmap\) did not settle/, 'done cannot be measured behind a start that hangs')
  assert.match(by.get('done flush')!.error ?? '', /^done\(flush\) threw: flush bookkeeping bug/)
  assert.equal(by.get('done flush')!.nsPerOp, 0)
  // every start is followed by its done, so a done that throws spoils its start's measurement too
  assert.match(by.get('start flush')!.error ?? '', /^done\(flush\) threw/)
})
