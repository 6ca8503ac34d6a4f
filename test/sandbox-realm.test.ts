/**
 * The in-process filter sandbox, with real workers and real files: the import rules of the filter
 * loader (static, dynamic and from code compiled at run time), what a filter may use, and that
 * nothing a filter does to its globals, the built-ins or the objects it is handed changes what
 * the harness measures (the generator's clock, a VM worker's memory reading).
 */
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import type { GeneratorResult } from '../harness/bench/generator.js'
import type { InWorkerTask } from '../harness/bench/in-worker.js'
import { Cluster, isIofError, type Vm } from '../harness/framework/index.js'
import { importDescription, inspectModule } from '../harness/framework/inspect.js'
import { buildPackage, loadPackage } from '../harness/framework/package/index.js'
import { metadata, writeFilterDir, scratch, type Scratch } from './package-fixtures.js'
import { referenceFilter } from './helpers/cluster.js'

const MiB = 1 << 20
const IN_WORKER = new URL('../harness/bench/in-worker.js', import.meta.url).href
/** A file of the harness itself (dist/harness/…), which a filter may not import. */
const HARNESS_FILE = new URL('../harness/framework/errors.js', import.meta.url).href

let tmp: string
before(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-realm-')) })
after(() => { fs.rmSync(tmp, { recursive: true, force: true }) })

let seq = 0
/** Writes a filter directory (`files` relative to it) and returns the entry's file URL. */
function filterDir(files: Record<string, string>, entry = 'filter.js'): string {
  const dir = path.join(tmp, `f${++seq}`)
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true })
    fs.writeFileSync(path.join(dir, rel), text)
  }
  return pathToFileURL(path.join(dir, entry)).href
}

/** A filter module's default export with extra fields (source text). */
function filterExport(extra = '', cls = 'cache'): string {
  return `export default { abiVersion: 1, name: 'realm${seq + 1}', vendor: 'TEST', version: '1.0.0', class: '${cls}', open() { return {} }, ${extra} }\n`
}

function refusedNaming(specifier: string) {
  return (err: unknown) => {
    assert.ok(isIofError(err, 'ModuleInvalid'), `expected ModuleInvalid, got ${String(err)}`)
    assert.ok(err.message.includes(`"${specifier}"`), `the message names ${specifier}: ${err.message}`)
    return true
  }
}

const FORBIDDEN = ['node:fs', 'fs', 'node:child_process', 'node:net', 'node:worker_threads', 'node:v8', 'node:vm', 'node:module', 'node:process', 'node:http', 'node:inspector']

describe('imports a filter may not use fail the load, naming the specifier', () => {
  for (const spec of FORBIDDEN) {
    it(`static import of ${spec}`, async () => {
      const url = filterDir({ 'filter.js': `import * as m from '${spec}'\n${filterExport('m')}` })
      await assert.rejects(inspectModule(url), refusedNaming(spec))
    })
    it(`dynamic import() of ${spec}, and import() in code compiled from a string`, async () => {
      const url = filterDir({ 'filter.js': `await import('${spec}')\n${filterExport()}` })
      await assert.rejects(inspectModule(url), refusedNaming(spec))
      // Reflect.apply gives the compiled code no importing module at all: still refused
      const fromString = filterDir({ 'filter.js': `await Reflect.apply(Function, null, ["return import('${spec}')"])()\n${filterExport()}` })
      await assert.rejects(inspectModule(fromString), refusedNaming(spec))
    })
  }

  it('a relative path that leaves the package, statically, dynamically, and from a bundled file', async () => {
    fs.writeFileSync(path.join(tmp, 'outside.js'), 'export const x = 1\n')
    const stat = filterDir({ 'filter.js': `import { x } from '../outside.js'\n${filterExport('x')}` })
    await assert.rejects(inspectModule(stat), refusedNaming('../outside.js'))
    const dyn = filterDir({ 'filter.js': `await import('../outside.js')\n${filterExport()}` })
    await assert.rejects(inspectModule(dyn), refusedNaming('../outside.js'))
    const deep = filterDir({ 'filter.js': `import './lib/a.js'\n${filterExport()}`, 'lib/a.js': "import '../../outside.js'\n" })
    await assert.rejects(inspectModule(deep), (err: unknown) => {
      assert.ok(isIofError(err, 'ModuleInvalid'))
      assert.match(err.message, /"\.\.\/\.\.\/outside\.js" \(in lib\/a\.js\), which is outside the filter's package/)
      return true
    })
  })

  it('a symbolic link inside the package to a file outside it', async () => {
    fs.writeFileSync(path.join(tmp, 'secret.js'), 'export const secret = 42\n')
    const url = filterDir({ 'filter.js': `import { secret } from './lib/link.js'\n${filterExport('secret')}` })
    const dir = path.dirname(new URL(url).pathname)
    fs.mkdirSync(path.join(dir, 'lib'), { recursive: true })
    fs.symlinkSync(path.join(tmp, 'secret.js'), path.join(dir, 'lib', 'link.js'))
    await assert.rejects(inspectModule(url), refusedNaming('./lib/link.js'))
  })

  it('an absolute file URL to the harness\'s own files', async () => {
    const url = filterDir({ 'filter.js': `import * as e from '${HARNESS_FILE}'\n${filterExport('e')}` })
    await assert.rejects(inspectModule(url), refusedNaming(HARNESS_FILE))
    const dyn = filterDir({ 'filter.js': `await import('${HARNESS_FILE}')\n${filterExport()}` })
    await assert.rejects(inspectModule(dyn), refusedNaming(HARNESS_FILE))
  })

  it('a bundled dependency that imports a forbidden builtin (ESM and CommonJS), a data: URL and a native addon', async () => {
    const esm = filterDir({
      'filter.js': `import 'dep'\n${filterExport()}`,
      'node_modules/dep/package.json': '{"type":"module","exports":"./index.js"}',
      'node_modules/dep/index.js': "import 'node:net'\n",
    })
    await assert.rejects(inspectModule(esm), refusedNaming('node:net'))
    const cjs = filterDir({
      'filter.js': `import 'dep'\n${filterExport()}`,
      'node_modules/dep/package.json': '{"main":"main.js"}',
      'node_modules/dep/main.js': "module.exports = require('child_process')\n",
    })
    await assert.rejects(inspectModule(cjs), refusedNaming('child_process'))
    const data = filterDir({ 'filter.js': `import 'data:text/javascript,export default 1'\n${filterExport()}` })
    await assert.rejects(inspectModule(data), refusedNaming('data:text/javascript,export default 1'))
    const addon = filterDir({ 'filter.js': `import './x.node'\n${filterExport()}`, 'x.node': 'not really' })
    await assert.rejects(inspectModule(addon), (err: unknown) => isIofError(err, 'ModuleInvalid') && /native addon/.test(err.message))
  })

  it('a package whose bundled file imports node:fs is refused by loadPackage as ModuleInvalid, before it runs', async () => {
    const s: Scratch = await scratch()
    try {
      const source = [
        "import { helper } from './lib/helper.js'",
        `export default { abiVersion: 1, name: 'cdp', vendor: 'ACME', version: '1.2.0', class: 'replication', open: () => ({}), helper }`,
        '',
      ].join('\n')
      const dir = await writeFilterDir(s, 'f', { descriptor: metadata({ acceptanceLevel: 'CommunitySupported' }), source })
      fs.writeFileSync(path.join(dir, 'lib', 'helper.js'), "import { writeFileSync } from 'node:fs'\nwriteFileSync(" + JSON.stringify(s.marker) + ", 'ran')\nexport const helper = 1\n")
      const { path: tgz } = await buildPackage(dir, { out: path.join(s.dir, 'f.tgz') })
      await assert.rejects(loadPackage(tgz, { workDir: s.workDir, trust: { acceptanceLevel: 'CommunitySupported' } }), (err: unknown) => {
        assert.ok(isIofError(err, 'ModuleInvalid'), String(err))
        assert.match(err.message, /^filter module filter\.js is invalid: it imports "node:fs" \(in lib\/helper\.js\)/)
        return true
      })
      assert.equal(fs.existsSync(s.marker), false, 'no code of the package ran')
    } finally {
      await s.cleanup()
    }
  })
})

describe('what a filter may import and use', () => {
  it('iofcert/sdk, the allowed builtins, its own files, bundled ESM and CommonJS packages, JSON, import.meta.url and import()', async () => {
    const url = filterDir({
      'descriptor.json': '{}',
      'dist/filter.mjs': [
        "import { PASS, COMPLETE, FILTER_ABI_VERSION, fail, defineFilter } from 'iofcert/sdk'",
        "import * as sdkByPath from '" + new URL('../harness/sdk/index.js', import.meta.url).href + "'",
        "import { createHash, getRandomValues } from 'node:crypto'",
        "import { gzipSync, gunzipSync } from 'zlib'",
        "import { format } from 'node:util'",
        "import { Buffer } from 'node:buffer'",
        "import EventEmitter, { once } from 'node:events'",
        "import { StringDecoder } from 'string_decoder'",
        "import assert from 'node:assert'",
        "import { helper } from './lib/helper.js'",
        "import esm, { answer } from 'esm-dep'",
        "import sub from 'esm-dep/sub'",
        "import cjs, { twice } from '@acme/cjs-dep'",
        "import data from '../data.json' with { type: 'json' }",
        'const late = await import(\'./lib/late.js\')',
        'const crypto2 = await import(\'node:crypto\')',
        'const fromString = await new Function("return import(\'node:zlib\')")()',
        'const e = new EventEmitter(); let heard = 0; e.on("x", v => { heard = v }); e.emit("x", 7)',
        'assert.equal(1, 1)',
        'export default defineFilter({',
        "  abiVersion: FILTER_ABI_VERSION, name: 'allowed', vendor: 'TEST', version: '1.0.0', class: 'cache',",
        '  open() { return { start: () => PASS } },',
        '  probe: {',
        '    sdk: [PASS.kind, COMPLETE.kind, fail("EIO").error, Object.isFrozen(PASS), sdkByPath.PASS === PASS],',
        "    hash: createHash('sha256').update('x').digest('hex').slice(0, 8),",
        '    random: getRandomValues(new Uint8Array(4)).length + crypto.getRandomValues(new Uint8Array(2)).length,',
        "    gzip: gunzipSync(gzipSync(Buffer.from('abc'))).toString(),",
        "    util: format('%s-%d', 'a', 1), decoder: new StringDecoder('utf8').write(Buffer.from('hé')), heard, once: typeof once,",
        '    helper, esm, answer, sub, cjs: cjs.name, twice: twice(21), json: data.x,',
        '    meta: import.meta.url, late: late.late, crypto2: typeof crypto2.createHash, fromString: typeof fromString.gzipSync,',
        '    globals: [typeof TextEncoder, typeof TextDecoder, typeof URL, typeof structuredClone, typeof queueMicrotask, typeof setTimeout, typeof setImmediate, typeof clearInterval, typeof performance.now, typeof crypto.subtle, typeof console.log],',
        '  },',
        '})',
        '',
      ].join('\n'),
      'dist/lib/helper.js': 'export const helper = "helped"\n',
      'dist/lib/late.js': 'export const late = "late"\n',
      'data.json': '{"x": 5}',
      'node_modules/esm-dep/package.json': JSON.stringify({ name: 'esm-dep', type: 'module', exports: { '.': { import: './lib/index.js', require: './nope.cjs' }, './sub': './lib/sub.js' } }),
      'node_modules/esm-dep/lib/index.js': "export const answer = 42\nexport default 'esm-default'\n",
      'node_modules/esm-dep/lib/sub.js': "export default 'sub'\n",
      'node_modules/@acme/cjs-dep/package.json': JSON.stringify({ name: '@acme/cjs-dep', main: 'lib/main' }),
      'node_modules/@acme/cjs-dep/lib/main.js': "const { inspect } = require('node:util')\nconst own = require('./own')\nexports.name = 'cjs-' + own + '-' + typeof inspect\nexports.twice = x => 2 * x\n",
      'node_modules/@acme/cjs-dep/lib/own.js': "module.exports = 'own'\n",
    }, 'dist/filter.mjs')
    const d = (await importDescription(url)) as { probe: Record<string, unknown>; open: unknown }
    assert.equal(typeof d.open, 'function')
    assert.deepEqual(d.probe, {
      sdk: ['pass', 'complete', 'EIO', true, true],
      hash: '2d711642',
      random: 6,
      gzip: 'abc',
      util: 'a-1',
      decoder: 'hé',
      heard: 7,
      once: 'function',
      helper: 'helped',
      esm: 'esm-default',
      answer: 42,
      sub: 'sub',
      cjs: 'cjs-own-function',
      twice: 42,
      json: 5,
      meta: 'file:///filter/dist/filter.mjs',
      late: 'late',
      crypto2: 'function',
      fromString: 'function',
      globals: ['function', 'function', 'function', 'function', 'function', 'function', 'function', 'function', 'function', 'object', 'function'],
    })
  })

  it('process is a stub: empty env, no argv, no exit, kill, getBuiltinModule, bindings or stdio; console has no stream', async () => {
    const url = filterDir({
      'filter.js': [
        'const p = globalThis.process',
        'const viaFunction = Function("return process")()',
        'export default {',
        "  abiVersion: 1, name: 'proc', vendor: 'TEST', version: '1.0.0', class: 'cache', open() { return {} },",
        '  probe: {',
        '    env: Object.keys(p.env).length, argv: (p.argv ?? []).length, execArgv: (p.execArgv ?? []).length,',
        "    missing: ['exit', 'reallyExit', 'abort', 'kill', 'getBuiltinModule', 'binding', '_linkedBinding', 'dlopen', 'stdout', 'stderr', 'stdin', 'send', 'on', 'memoryUsage', 'cwd', 'chdir', 'pid', 'ppid', 'mainModule'].filter(k => p[k] !== undefined),",
        '    same: viaFunction === p, frozen: Object.isFrozen(p) && Object.isFrozen(p.env),',
        "    envWrite: (() => { try { p.env.X = '1'; return 'written' } catch (e) { return 'refused' } })(),",
        "    stdout: typeof console._stdout, consoleCtor: typeof console.Console,",
        // where the harness keeps the package shows nowhere: not in import.meta.url, not in a stack
        '    meta: import.meta.url, stack: String(new Error("x").stack).split("\\n").slice(1).map(l => l.trim()),',
        '  },',
        '}',
        '',
      ].join('\n'),
    })
    const d = (await importDescription(url)) as { probe: Record<string, unknown> & { stack: string[] } }
    const { stack, ...rest } = d.probe
    assert.deepEqual(rest, { env: 0, argv: 0, execArgv: 0, missing: [], same: true, frozen: true, envWrite: 'refused', stdout: 'undefined', consoleCtor: 'undefined', meta: 'file:///filter/filter.js' })
    // the module's own frame only: not the loader's, not the worker's
    assert.equal(stack.length, 1, stack.join('\n'))
    assert.match(stack[0]!, /^at file:\/\/\/filter\/filter\.js:\d+:\d+$/)
  })
})

// ---- tampering, seen from the harness ----

/** A filter that tries every patch it can at load, in open() and in its first start(), and logs what came of each. */
const PATCHER = `
import { PASS } from 'iofcert/sdk'
const results = {}
function attempt(name, patch, took) {
  try { patch() } catch (e) { results[name] = 'refused: ' + e.constructor.name; return }
  results[name] = took() ? 'took effect' : 'no effect'
}
const realNow = performance.now.bind(performance)
const slowNow = () => realNow() / 10
attempt('performance.now', () => { performance.now = slowNow }, () => performance.now === slowNow)
attempt('Performance.prototype.now', () => { Object.getPrototypeOf(performance).now = slowNow }, () => performance.now === slowNow)
attempt('globalThis.performance', () => { globalThis.performance = { now: slowNow } }, () => performance.now === slowNow)
attempt('defineProperty performance', () => { Object.defineProperty(globalThis, 'performance', { value: { now: slowNow } }) }, () => performance.now === slowNow)
attempt('Date.now', () => { Date.now = () => 0 }, () => Date.now() === 0)
attempt('Math.random', () => { Math.random = () => 0.5 }, () => Math.random() === 0.5)
attempt('Math.floor', () => { Math.floor = () => 0 }, () => Math.floor(5.5) === 0)
attempt('globalThis.Math', () => { globalThis.Math = {} }, () => typeof Math.floor !== 'function')
attempt('Array.prototype.push', () => { Array.prototype.push = function () { return 0 } }, () => [].push(1) === 0)
attempt('Object.prototype extension', () => { Object.prototype.then = function () {} }, () => typeof ({}).then === 'function')
attempt('Promise.prototype.then', () => { Promise.prototype.then = function () {} }, () => false)
attempt('process.memoryUsage', () => { process.memoryUsage = () => ({ arrayBuffers: 0 }) }, () => process.memoryUsage?.().arrayBuffers === 0)
attempt('globalThis.process', () => { globalThis.process = {} }, () => Object.keys(process).length === 0)
attempt('setTimeout prototype', () => { Object.getPrototypeOf(setTimeout(() => {}, 0)).refresh = () => {} }, () => false)
attempt('a new global', () => { globalThis.sneaky = 1 }, () => globalThis.sneaky === 1)
class MyError extends Error { constructor(m) { super(m); this.name = 'MyError' } }
results['Error subclass'] = new MyError('x').name
results.stackHasHarness = /harness|node:internal/.test(String(new Error('probe').stack))
let ctxLog = null
let first = true
export default {
  abiVersion: 1, name: 'patcher', vendor: 'TEST', version: '1.0.0', class: 'cache',
  open(ctx) {
    ctxLog = ctx.log
    attempt('context', () => { ctx.log = null }, () => ctx.log === null)
    attempt('context prototype', () => { Object.getPrototypeOf(ctx).log = null }, () => false)
    attempt('sidecar', () => { ctx.sidecar.read = () => null }, () => false)
    attempt('sidecar class', () => { new ctx.sidecar.constructor('/etc/passwd') }, () => typeof ctx.sidecar.constructor.prototype.read === 'function')
    attempt('lower', () => { ctx.lower.read = () => null }, () => false)
    attempt('logger', () => { ctx.log.info = () => {} }, () => false)
    return {
      start(io) {
        if (first) {
          first = false
          attempt('io prototype', () => { Object.getPrototypeOf(io).toJSON = () => ({}) }, () => false)
          results.ioStackHasHarness = /harness|node:internal/.test(String(new Error('probe').stack))
          ctxLog.info('patcher', results)
        }
        return PASS
      },
    }
  },
}
`

/** The patcher without its patches: the same start(), for a fair comparison. */
const PLAIN = `
import { PASS } from 'iofcert/sdk'
export default {
  abiVersion: 1, name: 'plain', vendor: 'TEST', version: '1.0.0', class: 'cache',
  open() { return { start(io) { return PASS } } },
}
`

/** Holds 64 MiB for as long as the worker lives, and hides it if it can. */
const LEAKER = `
const held = []
let hidden = 'not tried'
try { process.memoryUsage = () => ({ rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 }); hidden = 'patched' } catch (e) { hidden = 'refused' }
export default {
  abiVersion: 1, name: 'leaker', vendor: 'TEST', version: '1.0.0', class: 'cache',
  open(ctx) {
    held.push(new Uint8Array(64 * 1024 * 1024).fill(1))
    ctx.log.info('leaker', { hidden })
    return {}
  },
}
`

async function vmWith(c: Cluster, vmName: string, entry: string, filterName: string): Promise<Vm> {
  const h = c.host('esx1')
  await c.installModule(entry)
  c.createPolicy({ name: `p-${vmName}`, rules: [{ filter: `${filterName}@CACHE` }] })
  const vm = h.createVm(vmName)
  await h.addDisk(vmName, { id: `${vmName}-d0`, capacity: 64 * MiB, policy: `p-${vmName}` })
  await vm.powerOn()
  return vm
}

async function logged(vm: Vm, msg: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 200 && !vm.logs.some(l => l.msg === msg); i++) await new Promise(r => setTimeout(r, 10))
  const e = vm.logs.find(l => l.msg === msg)
  assert.ok(e, `no "${msg}" log from the filter`)
  return e.data as Record<string, unknown>
}

/** A saturating 4k random mix for `ms` through the disk, run by the generator inside the VM's worker. */
async function generatorRun(vm: Vm, disk: string, ms: number): Promise<{ result: GeneratorResult; wallMs: number }> {
  const t0 = performance.now()
  const result = await vm.runInWorker<GeneratorResult>(disk, IN_WORKER, {
    kind: 'job',
    options: { rw: 'randrw', rwmixread: 70, bs: 4096, iodepth: 16, capacity: 64 * MiB, timeBased: true, runtimeMs: ms, norandommap: true, seed: 1 },
  } satisfies InWorkerTask)
  return { result, wallMs: performance.now() - t0 }
}

describe('nothing a filter does to its globals changes what the harness measures', () => {
  it('every patch fails or stays with the filter; the generator\'s clock and IOPS are the harness\'s own', async () => {
    const c = await Cluster.create({ ioTimeoutMs: 10_000, classExclusivity: 'disk' })
    try {
      await c.addHost('esx1')
      const plain = await vmWith(c, 'plain', new URL(filterDir({ 'filter.js': PLAIN })).pathname, 'plain')
      const hostile = await vmWith(c, 'hostile', new URL(filterDir({ 'filter.js': PATCHER })).pathname, 'patcher')
      await hostile.write('hostile-d0', 0, new Uint8Array(4096))
      const r = await logged(hostile, 'patcher')
      const attempts = Object.entries(r).filter(([k]) => !['Error subclass', 'stackHasHarness', 'ioStackHasHarness'].includes(k))
      assert.ok(attempts.length >= 20, JSON.stringify(r))
      // the constructor of the sidecar a filter holds is Object's: nothing to construct a file sidecar with
      for (const [name, outcome] of attempts) assert.match(String(outcome), name === 'sidecar class' ? /^no effect$/ : /^refused: TypeError$/, `${name}: ${String(outcome)}`)
      assert.equal(r['Error subclass'], 'MyError', 'assigning over an inherited built-in property still works')
      assert.equal(r.stackHasHarness, false, 'a stack shows the filter\'s frames only')
      assert.equal(r.ioStackHasHarness, false, 'a stack inside start() shows the filter\'s frames only')

      // a clock slowed 10× in the filter's worker would make a run last 10× its measured time and
      // measure 10× the IOPS: the harness's clock is its own, so a run measures its wall time and
      // the same IOPS as with the same filter minus the patches (best of two runs each, alternated)
      const iops = (x: GeneratorResult) => x.read.iops + x.write.iops
      let best = { plain: 0, hostile: 0 }
      for (let round = 0; round < 2; round++) {
        for (const [vm, key] of [[plain, 'plain'], [hostile, 'hostile']] as const) {
          const { result, wallMs } = await generatorRun(vm, `${key}-d0`, 500)
          assert.equal(result.status, 'ok')
          assert.ok(result.runtimeMs >= 450 && result.runtimeMs <= wallMs + 50, `${key}: measured ${result.runtimeMs} ms of a ${wallMs.toFixed(0)} ms run`)
          best = { ...best, [key]: Math.max(best[key], iops(result)) }
        }
      }
      const ratio = best.hostile / best.plain
      assert.ok(ratio > 0.2 && ratio < 3, `IOPS with the patching filter ${best.hostile.toFixed(0)} vs without its patches ${best.plain.toFixed(0)}`)
      assert.equal(hostile.faults.length, 0, JSON.stringify(hostile.faults.slice(0, 3)))
    } finally {
      await c.shutdown({ remove: true })
    }
  })

  it('a filter that holds 64 MiB and patches process.memoryUsage shows its 64 MiB to the VM worker\'s memory reading', async () => {
    const c = await Cluster.create({ classExclusivity: 'disk' })
    try {
      await c.addHost('esx1')
      const plain = await vmWith(c, 'plain', referenceFilter('passthrough'), 'passthrough')
      const leaky = await vmWith(c, 'leaky', new URL(filterDir({ 'filter.js': LEAKER })).pathname, 'leaker')
      assert.deepEqual(await logged(leaky, 'leaker'), { hidden: 'refused' })
      const base = await plain.memory()
      const held = await leaky.memory()
      assert.ok(held.arrayBuffers - base.arrayBuffers >= 60 * MiB, `the reading shows ${((held.arrayBuffers - base.arrayBuffers) / MiB).toFixed(1)} MiB more`)
    } finally {
      await c.shutdown({ remove: true })
    }
  })

  it('a daemon worker runs under the same rules: a daemon that imports node:fs fails to start, naming it', async () => {
    const c = await Cluster.create({})
    try {
      await c.addHost('esx1')
      const entry = new URL(filterDir({ 'filter.js': filterExport("async daemon() { await import('node:fs'); return {} }", 'replication') })).pathname
      await assert.rejects(c.installModule(entry), (err: unknown) => {
        assert.ok(isIofError(err, 'DaemonFailed'), String(err))
        assert.match(err.message, /"node:fs"/)
        return true
      })
    } finally {
      await c.shutdown({ remove: true })
    }
  })

  it('a VM worker refuses an import made in open(): the disk does not open, and the error names the specifier', async () => {
    const c = await Cluster.create({})
    try {
      await c.addHost('esx1')
      const entry = new URL(filterDir({ 'filter.js': filterExport().replace('open() { return {} }', "async open() { await import('node:child_process'); return {} }") })).pathname
      const info = await c.installModule(entry)
      c.createPolicy({ name: 'p', rules: [{ filter: `${info.name}@CACHE` }] })
      const h = c.host('esx1')
      h.createVm('vm1')
      await h.addDisk('vm1', { id: 'd0', capacity: MiB, policy: 'p' })
      await assert.rejects(h.vm('vm1').powerOn(), /"node:child_process"/)
    } finally {
      await c.shutdown({ remove: true })
    }
  })
})
