import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { WarmSide } from '../harness/bench/index.js'
import { loadReferences } from '../harness/certify/runner.js'
import { CHUNK } from '../reference-filters/cdp/constants.js'

const MiB = 1 << 20

test('a warm side settles only once the first copy of its replicated disk has reached the site, and a side without filters at once', async t => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-warm-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const cdp = (await loadReferences()).cdp!
  const capacity = 16 * MiB
  const p = { device: 'file' as const, vms: 1, capacity, dir }
  const replicated = await WarmSide.open({ label: 'cdp', install: [cdp], rules: [{ filter: 'cdp@REPLICATION', params: { site: 'dr', rpoSeconds: 15 } }] }, p)
  t.after(() => replicated.close())
  const bare = await WarmSide.open({ label: 'baseline', install: [], rules: [] }, p)
  t.after(() => bare.close())

  const [r, b] = await Promise.all([replicated.settle(), bare.settle()])
  assert.equal(r.capped, false)
  assert.equal(b.capped, false)
  // every chunk of the disk went to the site (one write each, at least) before settle() returned…
  const after = replicated.activity()
  assert.ok(after >= capacity / CHUNK, `the site took ${after} writes and flushes by the time the side settled; the first copy alone is ${capacity / CHUNK}`)
  assert.ok(r.drainMs > 0, 'the first copy was waited for')
  // …and nothing more came after it
  await new Promise(res => setTimeout(res, 400))
  assert.equal(replicated.activity(), after, 'the side was still shipping after it settled')
  assert.equal(b.drainMs, 0, 'a side without filters has nothing of its own to finish')
})
