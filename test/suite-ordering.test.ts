import { test } from 'node:test'
import assert from 'node:assert/strict'
import { check, controlPackage, expectStatuses, referenceOrSkip, type Status } from './helpers/suite-runs.js'

const GREP = '^ordering\\.'
const IDS = ['ordering.chain-position', 'ordering.sequential-overwrite', 'ordering.read-after-write', 'ordering.flush-durability', 'ordering.completion'] as const
type Id = (typeof IDS)[number]

function expecting(failed: readonly Id[]): Record<string, Status> {
  return Object.fromEntries(IDS.map(id => [id, failed.includes(id) ? 'failed' : 'passed']))
}

for (const ref of ['passthrough', 'cache', 'cdp'] as const) {
  test(`the reference ${ref} filter passes every ordering check with seeds 1, 2 and 3`, async t => {
    const pkg = referenceOrSkip(t, ref)
    if (pkg === null) return
    for (const seed of [1, 2, 3]) await expectStatuses(pkg, GREP, seed, expecting([]), ref)
  })
}

test('a cache that keeps views of read buffers breaks with encryption above it: chain-position fails', async () => {
  // The control caches the guest's read buffer by reference instead of copying it. With a
  // transforming filter above it (encryption first, the default), that buffer is decrypted in place
  // after the control's done(), so a later hit returns plaintext that is decrypted again. It fails
  // chain-position (which runs encryption first and after) and exclusivity.coexistence (encryption
  // first, with the built-ins) — the two checks that put encryption above the filter — and nothing
  // else of this suite, whose workloads run without encryption. In chain-position the reference
  // cdp sits above it, and the arrays cdp reads back through it (lower.read's, the reader's alone)
  // are moved to cdp's daemon: a hit on a view of one then returns no bytes, and the guest's read
  // fails with EIO. Either way the evidence names the seed and where.
  const doc = await expectStatuses(await controlPackage('buffer-ref-cache'), GREP, 1, expecting(['ordering.chain-position']), 'buffer-ref-cache')
  const c = check(doc, 'ordering.chain-position')
  assert.match(c.message ?? '', /encryption (first|after)/)
  assert.ok(c.evidence?.seed !== undefined && (c.evidence?.offset !== undefined || (c.evidence?.io as { offset?: number } | undefined)?.offset !== undefined), JSON.stringify(c.evidence))
})

test('a write-back filter that writes its held data back newest first fails sequential-overwrite', async () => {
  // Writing back out of order corrupts the disk wherever held writes overlap, so every check that
  // flushes and then reads also sees it: chain-position (its workload flushes, then re-reads
  // bytes the write-back left older) and flush-durability (what a completed flush left on the
  // disk is an older write's bytes). read-after-write never flushes and reads through the held
  // copies, and completion does not look at data.
  const doc = await expectStatuses(await controlPackage('writeback-lifo'), GREP, 1, expecting(['ordering.sequential-overwrite', 'ordering.chain-position', 'ordering.flush-durability']), 'writeback-lifo')
  const c = check(doc, 'ordering.sequential-overwrite')
  assert.match(c.message ?? '', /holds the bytes of write #\d+, which the guest issued before write #\d+/)
  assert.equal(typeof c.evidence?.offset, 'number')
  assert.notEqual(c.evidence?.expected, c.evidence?.found)
})

test('a read cache that never invalidates fails read-after-write', async () => {
  // The stale bytes also reach the verified workloads of chain-position and flush-durability,
  // which read blocks they read before and overwrote since.
  const doc = await expectStatuses(await controlPackage('stale-read-cache'), GREP, 1, expecting(['ordering.read-after-write', 'ordering.chain-position', 'ordering.flush-durability']), 'stale-read-cache')
  const c = check(doc, 'ordering.read-after-write')
  assert.match(c.message ?? '', /issued after the write at offset \d+ completed/)
  assert.ok(c.evidence?.previous && c.evidence.expected && c.evidence.found)
})

test('a write-back filter that completes flush without writing its held data fails flush-durability and nothing else', async () => {
  const doc = await expectStatuses(await controlPackage('lying-flush'), GREP, 1, expecting(['ordering.flush-durability']), 'lying-flush')
  const c = check(doc, 'ordering.flush-durability')
  assert.match(c.message ?? '', /neither what the completed flush made durable nor a later write/)
  assert.equal(typeof c.evidence?.offset, 'number')
  // what the check saw points at the bug: the flush never reached the disk
  assert.equal(c.evidence?.flushReachedDisk, false)
  assert.match(c.cause ?? '', /completes flushes itself instead of passing them down/)
  // the filter's own close-time line is in the report, from the VM it ran in, timed from the check's start
  const closing = (c.logs ?? []).filter(l => /^closing: \d+ flushes completed from the cache/.test(l.msg))
  assert.ok(closing.length >= 1, `the control's close lines are in the report: ${JSON.stringify(c.logs)}`)
  assert.equal(closing[0]!.where, 'vm1')
  assert.equal(closing[0]!.source, 'IOFCERTCTL_ctl-lying-flush_1.0.0')
  assert.ok(closing[0]!.t >= 0 && closing[0]!.t <= c.durationMs + 60_000)
  // a passed check carries no logs
  assert.equal(check(doc, 'ordering.read-after-write').logs, undefined)
})

test('a filter that never settles one I/O in 300 fails completion, and every other check its lost I/O lands in', async () => {
  // Each check issues well over 300 I/Os, so the dropped one times out (ETIMEDOUT) in every one.
  const doc = await expectStatuses(await controlPackage('drop-io'), GREP, 1, expecting([...IDS]), 'drop-io')
  const c = check(doc, 'ordering.completion')
  assert.match(c.message ?? '', /did not complete within the I\/O timeout/)
  assert.equal((c.evidence?.io as { error?: string }).error, 'ETIMEDOUT')
  assert.match(String(c.evidence?.heldAt), /ctl-drop-io/)
})
