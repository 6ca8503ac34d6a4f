import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Host } from '../harness/framework/host.js'
import { RecoverySite } from '../harness/framework/site.js'
import type { RunOptions } from '../harness/certify/context.js'
import { executeCheck } from '../harness/certify/execute.js'
import { catalogue } from '../harness/certify/runner.js'
import { prepareSubject } from '../harness/certify/subject.js'
import { profileThresholds } from '../reports/profiles.js'
import type { CertReport, CheckResult } from '../reports/document.js'
import { certifyStatuses, controlModule, packageModule, referencePackage } from './helpers/controls.js'
import { unlessBuilt } from './helpers/suite-run.js'

const GREP = '^lifecycle\\.'
const SEEDS = [1, 2]
const IDS = [
  'lifecycle.install', 'lifecycle.install-failure', 'lifecycle.upgrade', 'lifecycle.uninstall-in-use',
  'lifecycle.uninstall-clean', 'lifecycle.reboot', 'lifecycle.crash', 'lifecycle.attach-detach',
] as const

type Want = 'passed' | 'skipped' | { failed: RegExp }

/** Certifies `pkg` on the lifecycle suite and asserts every check's status, naming the misfits with their evidence. */
async function expectLifecycle(pkg: string, seed: number, expected: Readonly<Record<string, Want>>, upgradeFrom?: string): Promise<CertReport> {
  const { doc } = await certifyStatuses(pkg, { grep: GREP, seed, ...(upgradeFrom ? { upgradeFrom } : {}) })
  assert.deepEqual(doc.checks.map(c => c.id).sort(), [...IDS].sort(), 'the lifecycle suite runs its eight checks')
  const wrong: string[] = []
  for (const c of doc.checks) {
    const want = expected[c.id]!
    const ok = typeof want === 'string' ? c.status === want : c.status === 'failed' && want.failed.test(c.message ?? '')
    if (!ok) wrong.push(`${c.id}: expected ${typeof want === 'string' ? want : `failed matching ${want.failed}`}, got ${c.status}: ${c.message ?? ''}\n    evidence: ${JSON.stringify(c.evidence ?? {}).slice(0, 1500)}`)
  }
  assert.equal(wrong.length, 0, `seed ${seed}:\n  ${wrong.join('\n  ')}`)
  return doc
}

const ALL_PASS: Record<string, Want> = Object.fromEntries(IDS.map(id => [id, 'passed']))
const NO_UPGRADE: Record<string, Want> = { ...ALL_PASS, 'lifecycle.upgrade': 'skipped' }

/**
 * A second version of a compiled filter module, packaged and signed with the test key as a vendor
 * would ship it: the module's version string changed, the descriptor's flags as given.
 */
async function nextVersion(modulePath: string, version: string, pattern: RegExp, descriptor: Record<string, unknown> = {}): Promise<string> {
  const src = fs.readFileSync(modulePath, 'utf8')
  const bumped = src.replace(pattern, m => m.replace('1.0.0', version))
  assert.notEqual(bumped, src, `no version string in ${modulePath}`)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-next-'))
  fs.writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}\n')
  const file = path.join(dir, 'filter.js')
  fs.writeFileSync(file, bumped)
  // the modules the entry imports, as they are
  for (const f of fs.readdirSync(path.dirname(modulePath))) if (f.endsWith('.js') && f !== path.basename(modulePath)) fs.copyFileSync(path.join(path.dirname(modulePath), f), path.join(dir, f))
  return packageModule(file, { descriptor: { ...descriptor, version } })
}

function referenceModule(name: string): string {
  return fileURLToPath(new URL(`../reference-filters/${name}/filter.js`, import.meta.url))
}

function referenceDescriptor(name: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(fileURLToPath(new URL(`../reference-filters/${name}/descriptor.json`, import.meta.url)), 'utf8')) as Record<string, unknown>
}

for (const name of ['passthrough', 'cache', 'cdp'] as const) {
  for (const seed of SEEDS) {
    test(`the reference ${name} filter passes every lifecycle check, upgraded from its bundled package to a second version (seed ${seed})`, { skip: unlessBuilt(referencePackage(name)) }, async () => {
      const d = referenceDescriptor(name)
      // the reference descriptors ask for maintenance mode to upgrade: the check upgrades a copy without it
      const next = await nextVersion(referenceModule(name), '1.0.1', /version: '1\.0\.0'/, { summary: d.summary, install: d.install, upgrade: d.upgrade, uninstall: d.uninstall })
      const doc = await expectLifecycle(next, seed, ALL_PASS, referencePackage(name))
      const up = doc.checks.find(c => c.id === 'lifecycle.upgrade')!
      assert.match(up.message ?? '', new RegExp(`upgraded IOFCERT_${name}_1\\.0\\.0 to IOFCERT_${name}_1\\.0\\.1 on 2 hosts .*\\(\\d+ I/Os overlapped it, none failed\\)`))
      assert.ok((up.evidence as { notes?: string[] }).notes?.some(n => /asks for maintenance mode to upgrade/.test(n)), 'the copy without maintenance mode is noted')
      const crash = doc.checks.find(c => c.id === 'lifecycle.crash')!
      assert.match(crash.message ?? '', /killed \(SIGKILL\) after batch \d+/)
      if (name === 'cdp') {
        for (const id of ['lifecycle.reboot', 'lifecycle.crash', 'lifecycle.upgrade']) assert.match(doc.checks.find(c => c.id === id)!.message ?? '', /replica/, `${id} compares the replica`)
      }
    })
  }
}

/** Each control breaks one rule; `also` lists the other lifecycle checks that rule necessarily breaks, and why. */
const controls: { name: string; fails: Record<string, { failed: RegExp }>; also?: Record<string, { failed: RegExp; because: string }> }[] = [
  { name: 'timer-daemon', fails: { 'lifecycle.uninstall-clean': { failed: /the daemon left 1 active resource\(s\) in its worker after stop\(\) returned: 1 × Timeout/ } } },
  { name: 'leak-per-open', fails: { 'lifecycle.attach-detach': { failed: /memory \(heap \+ off-heap, after GC\) grew by [\d.]+ MiB .* above the 8 MiB bound/ } } },
  { name: 'shutdown-amnesia', fails: { 'lifecycle.reboot': { failed: /after a clean host restart: a read of everything the guest wrote before it returned wrong bytes/ } } },
  { name: 'early-flush', fails: { 'lifecycle.crash': { failed: /after the power cut and a restart, the sector at offset \d+ holds neither what the flush completed after batch \d+ made durable nor a later write/ } } },
]

for (const c of controls) {
  const [id] = Object.keys(c.fails)
  const also = Object.entries(c.also ?? {})
  const rest = also.length === 0 ? 'passes the rest of the lifecycle suite' : `passes the rest but ${also.map(([x, a]) => `${x} (${a.because})`).join(' and ')}`
  test(`the ${c.name} control fails ${id} and ${rest}; without --upgrade-from the upgrade check is skipped with the reason`, async () => {
    const pkg = await packageModule(controlModule(c.name))
    const doc = await expectLifecycle(pkg, 1, { ...NO_UPGRADE, ...c.fails, ...c.also })
    assert.equal(doc.checks.find(x => x.id === 'lifecycle.upgrade')!.message, 'needs --upgrade-from <older package>')
    assert.equal(doc.checks.find(x => x.id === 'lifecycle.upgrade')!.required, false, 'lifecycle.upgrade counts only when --upgrade-from is given')
  })
}

test('the version-locked-sidecar control fails lifecycle.upgrade (its second version refuses the first one\'s sidecar) and passes the rest of the lifecycle suite', async () => {
  const first = await packageModule(controlModule('version-locked-sidecar'))
  const second = await nextVersion(controlModule('version-locked-sidecar'), '1.0.1', /const VERSION = '1\.0\.0'/)
  const doc = await expectLifecycle(second, 1, {
    ...ALL_PASS,
    'lifecycle.upgrade': { failed: /upgrading IOFCERTCTL_ctl-version-locked_1\.0\.0 to IOFCERTCTL_ctl-version-locked_1\.0\.1 with guest I\/O running failed on esx1: .*sidecar format "ctl 1\.0\.0" is not supported by version 1\.0\.1/ },
  }, first)
  assert.equal(doc.checks.find(x => x.id === 'lifecycle.upgrade')!.required, true, 'lifecycle.upgrade is required when --upgrade-from is given')
  // the faults the hosts recorded of the filter are the likely cause the report gives
  assert.match(doc.checks.find(x => x.id === 'lifecycle.upgrade')!.cause ?? '', /^the host recorded faults of the filter: \d+ × failed open\(\) \(first: sidecar format "ctl 1\.0\.0" is not supported by version 1\.0\.1\)/)
})

// ---- checks that judge the framework's own machinery ----

/**
 * Runs one check in this process against the reference passthrough filter, with the framework
 * misconfigured by `breakIt` (which returns the repair) — the checks run in-process here, not in
 * the runner's pool, so the misconfiguration reaches them.
 */
async function runMisconfigured(id: string, breakIt: (() => () => void) | null): Promise<CheckResult> {
  const def = (await catalogue()).find(d => d.id === id)!
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-misconf-'))
  try {
    const subject = await prepareSubject(referencePackage('passthrough'), workDir)
    const options: RunOptions = { quick: true, certified: false, seed: 1, profileName: 'default', thresholds: profileThresholds('default')!, upgradeFrom: null, references: {}, workDir }
    const repair = breakIt?.() ?? (() => {})
    try {
      return (await executeCheck(def, subject, options)).result
    } finally {
      repair()
    }
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true })
  }
}

/** Replaces a method of Host.prototype until the returned repair runs. */
function patchHost<K extends 'activate' | 'enterMaintenance' | 'disksUsing'>(name: K, make: (original: Host[K]) => Host[K]): () => () => void {
  return () => {
    const original = Host.prototype[name]
    Host.prototype[name] = make(original)
    return () => {
      Host.prototype[name] = original
    }
  }
}

// What these three checks enforce is done by the framework, not by a filter: the lifecycle reads
// the descriptor's flags, refuses maintenance mode and counts the disks using a filter. No filter
// can make them fail, so their controls are framework misconfigurations, each run beside the
// correctly configured framework on the same filter.
const misconfigurations: { id: string; what: string; breakIt: () => () => void; failed: RegExp }[] = [
  {
    id: 'lifecycle.install',
    what: 'a host that activates a filter at once even when its descriptor asks for a reboot',
    breakIt: patchHost('activate', original => function (this: Host, info, opts = {}) {
      return original.call(this, info, { ...opts, reboot: false })
    }),
    // the records still say a reboot is owed; the filter is usable all the same
    failed: /a policy naming the filter was applied on esx1 before its reboot; the filter must not be active while PENDING_REBOOT/,
  },
  {
    id: 'lifecycle.install-failure',
    what: 'a host that enters maintenance mode with powered-on VMs',
    breakIt: patchHost('enterMaintenance', () => async function (this: Host) {
      this.maintenance = true
      this.save()
    }),
    failed: /esx2 should have failed with VibCannotPutHostInMaintenanceMode, but reported esx2: done, INSTALLED/,
  },
  {
    id: 'lifecycle.uninstall-in-use',
    what: 'a host that does not track which disks use a filter',
    breakIt: patchHost('disksUsing', () => () => []),
    // the package asks for maintenance mode to uninstall, which the running VMs then refuse
    failed: /uninstall while disks use it was refused on esx1 with VibCannotPutHostInMaintenanceMode, not FilterInUse/,
  },
]

for (const m of misconfigurations) {
  test(`${m.id} judges the framework: it passes with the framework as configured and fails with ${m.what}`, { skip: unlessBuilt(referencePackage('passthrough')) }, async () => {
    const good = await runMisconfigured(m.id, null)
    assert.equal(good.status, 'passed', `${m.id} as configured: ${good.message} ${JSON.stringify(good.evidence ?? {}).slice(0, 800)}`)
    const bad = await runMisconfigured(m.id, m.breakIt)
    assert.equal(bad.status, 'failed', `${m.id} with ${m.what}: ${bad.status}: ${bad.message}`)
    assert.match(bad.message ?? '', m.failed)
  })
}

// ---- what lifecycle.crash relies on ----

test('a recovery site given a directory keeps each replica there, and a site opened later on the directory starts from them', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-site-'))
  try {
    const first = new RecoverySite('dr', { dir })
    await first.write('vm1-disk0', 4096, new Uint8Array(8192).fill(7))
    await first.write('vm1-disk0', 6144, new Uint8Array(512).fill(9))
    await first.write('vm2/disk', 0, new Uint8Array(512).fill(1))
    const later = new RecoverySite('dr', { dir })
    assert.deepEqual(later.disks().sort(), ['vm1-disk0', 'vm2/disk'])
    const want = new Uint8Array(16384)
    want.fill(7, 4096, 12288)
    want.fill(9, 6144, 6656)
    assert.deepEqual(later.read('vm1-disk0', 0, 16384), want)
    assert.deepEqual(later.read('vm2/disk', 0, 1024), new Uint8Array(1024).fill(1, 0, 512))
    later.drop('vm2/disk')
    assert.deepEqual(new RecoverySite('dr', { dir }).disks(), ['vm1-disk0'])
    // without a directory nothing is written anywhere
    const inMemory = new RecoverySite('dr')
    await inMemory.write('vm1-disk0', 0, new Uint8Array(512).fill(3))
    assert.deepEqual(new RecoverySite('dr', { dir }).read('vm1-disk0', 0, 512), new Uint8Array(512))
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
