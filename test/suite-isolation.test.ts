import { test } from 'node:test'
import { controlModule, packageModule, referencePackage } from './helpers/controls.js'
import { expectSuite, unlessBuilt, type Expected } from './helpers/suite-run.js'

const GREP = '^isolation\\.'
const SEEDS = [1, 2, 3]

/** Every isolation check passes; the replication-only one is skipped for other classes. */
function clean(replication: boolean): Expected {
  return {
    'isolation.no-cross-talk': 'passed',
    'isolation.disk-fault': 'passed',
    'isolation.target-fault': replication ? 'passed' : 'skipped',
    'isolation.vm-crash': 'passed',
  }
}

for (const ref of ['passthrough', 'cache', 'cdp'] as const) {
  for (const seed of SEEDS) {
    test(`the reference ${ref} filter passes the isolation suite (seed ${seed})`, { skip: unlessBuilt(referencePackage(ref)) }, async () => {
      await expectSuite(referencePackage(ref), GREP, seed, clean(ref === 'cdp'))
    })
  }
}

const controls: { name: string; replication: boolean; fails: Expected }[] = [
  {
    name: 'dedupe-cache',
    replication: false,
    fails: { 'isolation.no-cross-talk': { failed: /vm[AB] read vm[AB]'s bytes at offset \d+/ } },
  },
  {
    name: 'retry-forever',
    replication: false,
    fails: { 'isolation.disk-fault': { failed: /failed with ETIMEDOUT .* instead of returning the drive's EIO .*a hang/ } },
  },
  {
    name: 'swallow-errors',
    replication: false,
    fails: { 'isolation.disk-fault': { failed: /told \d+ of \d+ writes succeeded, and the flush after them too, .* turned the error into success/ } },
  },
  {
    name: 'global-queue',
    replication: true,
    fails: { 'isolation.target-fault': { failed: /VM B's replica lag p99 was .* above max\(1000 ms/ } },
  },
  {
    name: 'daemon-exit',
    replication: true,
    fails: { 'isolation.vm-crash': { failed: /the filter's daemon on esx1 did not carry on after VM A's worker was killed/ } },
  },
]

for (const c of controls) {
  const [id] = Object.keys(c.fails)
  test(`the ${c.name} control fails ${id} and passes the rest of the isolation suite`, async () => {
    const pkg = await packageModule(controlModule(c.name))
    await expectSuite(pkg, GREP, 1, { ...clean(c.replication), ...c.fails })
  })
}
