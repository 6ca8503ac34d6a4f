import assert from 'node:assert/strict'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { isIofError } from '../harness/framework/errors.js'
import {
  buildPackage, defaultPolicyOf, loadFilterModule, loadPackage, openPackage, verifyPackage,
  type TrustOptions,
} from '../harness/framework/package/index.js'
import { metadata, put, ran, scratch, writeFilterDir, type FilterDirOptions, type Scratch } from './package-fixtures.js'

let s: Scratch
beforeEach(async () => { s = await scratch() })
afterEach(async () => { await s.cleanup() })

const community: TrustOptions = { acceptanceLevel: 'CommunitySupported' }

/** Builds an unsigned CommunitySupported package from a filter directory; `prepare` may add files. */
async function pkg(options: FilterDirOptions = {}, prepare?: (dir: string) => Promise<void>): Promise<string> {
  const descriptor = metadata({ acceptanceLevel: 'CommunitySupported', ...options.descriptor })
  const dir = await writeFilterDir(s, 'f', { ...options, descriptor })
  if (prepare !== undefined) await prepare(dir)
  return (await buildPackage(dir, { out: join(s.dir, 'f.tgz') })).path
}

function refusedWith(code: string, ...messages: RegExp[]) {
  return (err: unknown) => {
    assert.ok(isIofError(err, code), `expected ${code}, got ${String(err)}`)
    for (const m of messages) assert.match(err.message, m)
    return true
  }
}

describe('loading a verified module', () => {
  it('loads the default export and fills the policy defaults', async () => {
    const { loaded } = await loadPackage(await pkg(), { workDir: s.workDir, trust: community })
    assert.equal(loaded.ok, true)
    assert.equal(typeof loaded.module?.open, 'function')
    assert.deepEqual(loaded.defaultPolicy, { rpoSeconds: 15 })
    assert.deepEqual(loaded.steps.map(x => x.name), ['preflight', 'import', 'default-export', 'abi-version', 'identity', 'hooks', 'policy-schema'])
  })

  it('loads a .js entry as an ES module without any package.json in the package', async () => {
    const tgz = await pkg()
    const opened = await openPackage(tgz, { workDir: s.workDir })
    const { descriptor } = await verifyPackage(opened, { trust: community })
    assert.equal(descriptor.files['package.json'], undefined)
    assert.equal((await loadFilterModule(opened, descriptor)).ok, true)
  })

  it('loads a .mjs entry in a subdirectory', async () => {
    const tgz = await pkg({ descriptor: { entry: 'dist/filter.mjs' }, module: {} }, async dir => {
      await put(join(dir, 'dist', 'lib', 'helper.js'), 'export const helper = 1\n')
    })
    const { loaded } = await loadPackage(tgz, { workDir: s.workDir, trust: community })
    assert.equal(loaded.module?.name, 'cdp')
  })

  it('refuses a .js entry that a package.json in the package would make CommonJS', async () => {
    const tgz = await pkg({}, async dir => { await put(join(dir, 'package.json'), '{"name":"x"}') })
    await assert.rejects(loadPackage(tgz, { workDir: s.workDir, trust: community }), refusedWith('ModuleInvalid', /package\.json.*CommonJS/))
    assert.equal(ran(s.marker), false)
  })

  it('accepts a package.json in the package that says "type": "module"', async () => {
    const tgz = await pkg({}, async dir => { await put(join(dir, 'package.json'), '{"type":"module"}') })
    const { loaded } = await loadPackage(tgz, { workDir: s.workDir, trust: community })
    assert.equal(loaded.ok, true)
  })
})

describe('module refusals', () => {
  it('refuses a module of another ABI version, naming both versions', async () => {
    const tgz = await pkg({ module: { abiVersion: '2' } })
    await assert.rejects(loadPackage(tgz, { workDir: s.workDir, trust: community }), refusedWith('AbiVersionMismatch', /abiVersion 2/, /supports abiVersion 1/))
  })

  it('refuses a descriptor of another ABI version before importing anything', async () => {
    const tgz = await pkg({ descriptor: { abiVersion: 2 }, module: { abiVersion: '2' } })
    await assert.rejects(loadPackage(tgz, { workDir: s.workDir, trust: community }), refusedWith('AbiVersionMismatch', /descriptor declares abiVersion 2/, /supports abiVersion 1/))
    assert.equal(ran(s.marker), false)
  })

  for (const [field, value, shown] of [
    ['version', "'1.2.1'", /"1\.2\.1".*"1\.2\.0"/],
    ['name', "'cdq'", /"cdq".*"cdp"/],
    ['vendor', "'EMCA'", /"EMCA".*"ACME"/],
    ['class', "'cache'", /"cache".*"replication"/],
  ] as const) {
    it(`refuses a module whose ${field} differs from the descriptor's, naming the field and both values`, async () => {
      const tgz = await pkg({ module: { [field]: value } })
      await assert.rejects(loadPackage(tgz, { workDir: s.workDir, trust: community }), refusedWith('ModuleMismatch', new RegExp(`^module ${field} `), shown))
    })
  }

  it('refuses a module without a default export', async () => {
    const tgz = await pkg({ source: 'export const name = "cdp"\n' })
    await assert.rejects(loadPackage(tgz, { workDir: s.workDir, trust: community }), refusedWith('ModuleInvalid', /no default export/))
  })

  it('refuses a module whose open is not a function', async () => {
    const tgz = await pkg({ module: { open: "'yes'" } })
    await assert.rejects(loadPackage(tgz, { workDir: s.workDir, trust: community }), refusedWith('ModuleInvalid', /open must be a function/))
  })

  it('reports a module that throws while loading as ModuleLoadFailed, keeping the cause', async () => {
    const tgz = await pkg({ source: "throw new Error('boom at load')\n" })
    await assert.rejects(loadPackage(tgz, { workDir: s.workDir, trust: community }), (err: unknown) => {
      assert.ok(isIofError(err, 'ModuleLoadFailed'))
      assert.match(err.message, /boom at load/)
      assert.ok(err.cause instanceof Error)
      return true
    })
  })

  it('refuses an invalid policySchema', async () => {
    const tgz = await pkg({ module: { policySchema: "{ type: 'object', properties: { rpoSeconds: { type: 'seconds' } } }" } })
    await assert.rejects(loadPackage(tgz, { workDir: s.workDir, trust: community }), refusedWith('PolicySchemaInvalid'))
  })

  it('refuses a policySchema that the default policy {} does not satisfy, naming the field', async () => {
    const tgz = await pkg({ module: { policySchema: "{ type: 'object', required: ['site'], properties: { site: { type: 'string' } } }" } })
    await assert.rejects(loadPackage(tgz, { workDir: s.workDir, trust: community }), refusedWith('PolicySchemaInvalid', /\/site: is required/))
  })
})

describe('collect mode and the class rule', () => {
  it('reports every step of a module that loads but mismatches', async () => {
    const tgz = await pkg({ module: { version: "'9.9.9'", policySchema: "{ type: 'nonsense' }" } })
    const opened = await openPackage(tgz, { workDir: s.workDir })
    const { descriptor } = await verifyPackage(opened, { trust: community })
    const loaded = await loadFilterModule(opened, descriptor, { collect: true })
    assert.equal(loaded.ok, false)
    assert.deepEqual(loaded.steps.map(x => `${x.name}:${x.ok ? 'ok' : x.error.code}`), [
      'preflight:ok', 'import:ok', 'default-export:ok', 'abi-version:ok', 'identity:ModuleMismatch', 'hooks:ok', 'policy-schema:PolicySchemaInvalid',
    ])
  })

  it('stops before importing when a pre-import step fails, even in collect mode', async () => {
    const tgz = await pkg({ descriptor: { abiVersion: 3 } })
    const opened = await openPackage(tgz, { workDir: s.workDir })
    const { descriptor } = await verifyPackage(opened, { trust: community })
    const loaded = await loadFilterModule(opened, descriptor, { collect: true })
    assert.deepEqual(loaded.steps.map(x => `${x.name}:${x.ok}`), ['preflight:false'])
    assert.equal(ran(s.marker), false)
  })

  it('verifies and loads a reserved-class package: the class rule is separate', async () => {
    const tgz = await pkg({ descriptor: { class: 'encryption' }, module: { class: "'encryption'" } })
    const { loaded } = await loadPackage(tgz, { workDir: s.workDir, trust: community })
    assert.equal(loaded.module?.class, 'encryption')
  })

  it('fills defaults of nested policy schemas and treats no schema as no parameters', () => {
    assert.deepEqual(defaultPolicyOf(undefined), {})
    assert.deepEqual(defaultPolicyOf({ type: 'object', properties: { cacheMiB: { type: 'integer', default: 64 }, mode: { enum: ['wt', 'wb'], default: 'wt' } } }), { cacheMiB: 64, mode: 'wt' })
    assert.throws(() => defaultPolicyOf([]), refusedWith('PolicySchemaInvalid'))
  })
})
