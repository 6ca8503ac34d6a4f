import { test } from 'node:test'
import assert from 'node:assert/strict'
import { check, controlPackage, expectStatuses, referenceOrSkip, type Status } from './helpers/suite-runs.js'

const GREP = '^integrity\\.'
const IDS = ['integrity.roundtrip', 'integrity.guest-buffer', 'integrity.class-contract'] as const
type Id = (typeof IDS)[number]

function expecting(failed: readonly Id[]): Record<string, Status> {
  return Object.fromEntries(IDS.map(id => [id, failed.includes(id) ? 'failed' : 'passed']))
}

for (const ref of ['passthrough', 'cache', 'cdp'] as const) {
  test(`the reference ${ref} filter passes every integrity check with seeds 1, 2 and 3`, async t => {
    const pkg = referenceOrSkip(t, ref)
    if (pkg === null) return
    for (const seed of [1, 2, 3]) await expectStatuses(pkg, GREP, seed, expecting([]), ref)
  })
}

test('a filter that flips a bit in one read in 500 fails roundtrip', async () => {
  // The flipped bit is in a read the filter passed down, so guest-buffer — which compares what
  // the guest got with what the drive returned — sees it too: it is the same fault seen from the
  // buffer's side. class-contract issues too few reads (about 100) to reach the 137th.
  const doc = await expectStatuses(await controlPackage('corrupt-read'), GREP, 1, expecting(['integrity.roundtrip', 'integrity.guest-buffer']), 'corrupt-read')
  const c = check(doc, 'integrity.roundtrip')
  assert.match(c.message ?? '', /a read returned wrong bytes at offset \d+/)
  assert.ok(c.evidence?.io && c.evidence.expected && c.evidence.found && c.evidence.seed !== undefined)
})

test('a filter that scribbles on the guest write payload after passing it down fails guest-buffer and nothing else', async () => {
  const doc = await expectStatuses(await controlPackage('scribble-payload'), GREP, 1, expecting(['integrity.guest-buffer']), 'scribble-payload')
  const c = check(doc, 'integrity.guest-buffer')
  assert.match(c.message ?? '', /write payload was changed by the time the write completed/)
  assert.match(String(c.evidence?.found), /^0{32}/)
})

test('a replication filter that keeps its metadata in the disk\'s last MiB fails class-contract', async () => {
  // Its metadata replaces what the guest has there, so the whole-disk read-back of roundtrip sees
  // it too; guest-buffer compares the guest's buffers with the drive and finds them consistent.
  const doc = await expectStatuses(await controlPackage('metadata-in-disk'), GREP, 1, expecting(['integrity.class-contract', 'integrity.roundtrip']), 'metadata-in-disk')
  const c = check(doc, 'integrity.class-contract')
  assert.match(c.message ?? '', /the disk differs from the oracle at offset \d+/)
  assert.ok((c.evidence?.offset as number) >= (63 << 20))
  assert.match(String(c.evidence?.found), /^4d455441/)
})
