import { test } from 'node:test'
import { controlModule, packageModule, referencePackage } from './helpers/controls.js'
import { expectSuite, unlessBuilt, type Expected } from './helpers/suite-run.js'

const GREP = '^events\\.'
const SEEDS = [1, 2, 3]

const CLEAN: Expected = {
  'events.snapshot': 'passed',
  'events.stun': 'passed',
  'events.migration': 'passed',
}

for (const ref of ['passthrough', 'cache', 'cdp'] as const) {
  for (const seed of SEEDS) {
    test(`the reference ${ref} filter passes the events suite (seed ${seed})`, { skip: unlessBuilt(referencePackage(ref)) }, async () => {
      await expectSuite(referencePackage(ref), GREP, seed, CLEAN)
    })
  }
}

const controls: { name: string; fails: Expected }[] = [
  {
    name: 'writeback-snapshot',
    fails: { 'events.snapshot': { failed: /snapshot \d is not crash-consistent: slot \d+ .* completed to the guest .* before the snapshot began .* is missing/ } },
  },
  {
    name: 'stun-flusher',
    fails: { 'events.stun': { failed: /while the disk was stunned .* I\/Os? of the filter's own reached the drive — first a flush/ } },
  },
  {
    name: 'sidecar-reset',
    fails: { 'events.migration': { failed: /sidecar for disk vm1-disk0 did not survive the move from esx1 to esx2/ } },
  },
]

for (const c of controls) {
  const [id] = Object.keys(c.fails)
  test(`the ${c.name} control fails ${id} and passes the rest of the events suite`, async () => {
    const pkg = await packageModule(controlModule(c.name))
    await expectSuite(pkg, GREP, 1, { ...CLEAN, ...c.fails })
  })
}
