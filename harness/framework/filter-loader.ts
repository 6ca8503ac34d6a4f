/**
 * Loads filter modules in a worker that runs filter code, under the import rules of the ABI
 * ("What a filter may use"). The entry module and everything it imports are evaluated with
 * `vm.SourceTextModule` in this thread's own context (same realm: calls into the filter are
 * inlined on the I/O path as with a plain import), and every import goes through one linker:
 *
 * - relative specifiers and `file:` URLs: files of the filter's own package, by real path (no
 *   escape through `..` or a symbolic link). The package is the directory that holds
 *   descriptor.json above the entry, or, for a module installed by path, the entry's directory;
 * - bare specifiers: packages bundled in the package's own `node_modules` (package.json
 *   `exports` and `main`), ES modules, CommonJS (run with a `require` under the same rules) and
 *   JSON;
 * - `iofcert/sdk`, and any path to the harness's own sdk/index.js: the framework's SDK;
 * - node:crypto, node:zlib, node:util, node:buffer, node:events, node:string_decoder and
 *   node:assert (with or without `node:`);
 *
 * and nothing else: any other import fails the load with a ModuleInvalid error that names the
 * specifier. `import()` in filter code (and in code it compiles from strings) follows the same
 * rules. A filter's files appear to it under one fixed URL (`import.meta.url` is
 * file:///filter/<path in the package>, and so are its stack frames and CommonJS __filename), so
 * where the harness keeps the package is not something it can see. The framework's own filters
 * (the platform's built-ins and the certification probes, which share module state with harness
 * code in the worker) are harness code and are imported as such.
 *
 * A worker calls `sandboxWorker()` once its own modules are loaded; loading refuses to run before.
 */
import * as fs from 'node:fs'
import { isBuiltin } from 'node:module'
import * as path from 'node:path'
import process from 'node:process'
import { fileURLToPath, pathToFileURL } from 'node:url'
import * as nodeVm from 'node:vm'
import * as sdk from '../sdk/index.js'
import { IofError, ModuleInvalid } from './errors.js'
import { ALLOWED_BUILTINS, filterBuiltin, isLockedDown, lockdown } from './sandbox.js'

/** How a file is evaluated. */
type Format = 'esm' | 'cjs' | 'json'

/** A file of a filter package. */
interface FileRecord {
  /** Real path. */
  readonly path: string
  /** Its place in the package as filter code sees it (import.meta.url, stack traces): PACKAGE_URL + the path in the package. */
  readonly url: string
  /** `url` as a path (CommonJS __filename). */
  readonly virtualPath: string
  /** Real path of the package root the file's imports are confined to. */
  readonly root: string
}

/**
 * Where a filter's package appears to be, to the filter: the same in every run, so that where the
 * harness keeps a package (an install directory, a certification run's temporary one) says
 * nothing. A filter has no file access; its own URLs only serve to resolve relative imports.
 */
const PACKAGE_URL = 'file:///filter/'
const PACKAGE_PATH = '/filter/'

type Target = { readonly kind: 'sdk' } | { readonly kind: 'test-fixture' } | { readonly kind: 'builtin'; readonly name: string } | { readonly kind: 'file'; readonly file: FileRecord }

/** A CommonJS module of a filter package. */
interface CjsModule {
  exports: unknown
  readonly id: string
  readonly filename: string
  loaded: boolean
}

const ALLOWED_TEXT = `a filter may import files of its own package, the packages bundled in its node_modules, iofcert/sdk and ${ALLOWED_BUILTINS.map(b => `node:${b}`).join(', ')}`
const CJS_PARAMS = ['exports', 'require', 'module', '__filename', '__dirname']

const SDK_PATH = realpathOrNull(fileURLToPath(new URL('../sdk/index.js', import.meta.url)))
/**
 * For the project's own tests only: when the harness runs with IOFCERT_TEST_FIXTURE_DIR set, a
 * filter may also import `iofcert/test-fixture` ({ appendFile, exists }, confined to files in that
 * directory), so that a test filter can leave a trace that proves whether its code ran. Without
 * the variable that import is refused like any other.
 */
const TEST_FIXTURE_DIR = process.env.IOFCERT_TEST_FIXTURE_DIR !== undefined && path.isAbsolute(process.env.IOFCERT_TEST_FIXTURE_DIR) ? path.resolve(process.env.IOFCERT_TEST_FIXTURE_DIR) : null

/** Directories of the framework's own filters: imported as harness code. */
const FRAMEWORK_FILTER_DIRS = [new URL('./builtins/', import.meta.url), new URL('../certify/probes/', import.meta.url)]
  .map(u => realpathOrNull(fileURLToPath(u)))
  .filter((d): d is string => d !== null)

/** The loader of this worker. */
class FilterLoader {
  private readonly modules = new Map<string, nodeVm.Module>()
  private readonly files = new WeakMap<nodeVm.Module, FileRecord>()
  private readonly cjs = new Map<string, CjsModule>()
  /** CommonJS functions compiled while telling an ambiguous .js file's format. */
  private readonly compiled = new Map<string, (...a: unknown[]) => unknown>()
  private readonly formats = new Map<string, Format>()
  private readonly builtins = new Map<string, nodeVm.Module>()
  private readonly evaluations = new WeakMap<nodeVm.Module, Promise<void>>()
  private readonly filterFiles = new Set<string>()
  /** The entry of each package root, for error messages. */
  private readonly entries = new Map<string, string>()
  private readonly refusals = new WeakSet<object>()
  private sdkModule: nodeVm.Module | null = null
  private fixtureModule: nodeVm.Module | null = null
  private sdkObject: Readonly<Record<string, unknown>> | null = null
  private linking: Promise<unknown> = Promise.resolve()
  private readonly linker = (specifier: string, referencing: nodeVm.Module, extra: { attributes?: unknown }): nodeVm.Module | Promise<nodeVm.Module> =>
    this.moduleFor(specifier, this.files.get(referencing) ?? null, (extra?.attributes ?? {}) as Record<string, string>)

  /** Loads a filter's entry module (evaluated once per worker) and returns its namespace. */
  async load(entryUrl: string): Promise<Record<string, unknown>> {
    if (!isLockedDown()) throw new Error('filter code may run only in a worker that called sandboxWorker()')
    const file = this.entryRecord(entryUrl)
    if (!this.entries.has(file.root)) this.entries.set(file.root, path.relative(file.root, file.path))
    const m = await this.fileModule(file, null)
    await this.linkAndEvaluate(m)
    return m.namespace as Record<string, unknown>
  }

  /** The namespace of a filter module this loader already evaluated, by URL. */
  namespaceOf(url: string): Record<string, unknown> | undefined {
    let real: string | null
    try {
      real = realpathOrNull(fileURLToPath(url))
    } catch {
      return undefined
    }
    const m = real === null ? undefined : this.modules.get(real)
    return m !== undefined && m.status === 'evaluated' ? (m.namespace as Record<string, unknown>) : undefined
  }

  isFilterFile(fileName: string): boolean {
    return this.filterFiles.has(fileName)
  }

  /** True when `e` is the error of an import the rules refuse. */
  isRefusal(e: unknown): boolean {
    return typeof e === 'object' && e !== null && this.refusals.has(e)
  }

  /** `import()` from filter code: the module, linked and evaluated. */
  async dynamicImport(specifier: string, from: FileRecord | null, attributes: Record<string, string>): Promise<nodeVm.Module> {
    const m = await this.moduleFor(String(specifier), from, attributes)
    await this.linkAndEvaluate(m)
    return m
  }

  private entryRecord(entryUrl: string): FileRecord {
    const file = entryUrl.startsWith('file:') ? fileURLToPath(entryUrl) : path.resolve(entryUrl)
    const real = realpathOrNull(file)
    if (real === null || !isFile(real)) throw Object.assign(new Error(`Cannot find module ${file}`), { code: 'ERR_MODULE_NOT_FOUND' })
    return this.record(real, packageRootOf(real))
  }

  private record(real: string, root: string): FileRecord {
    const url = new URL(path.relative(root, real).split(path.sep).map(encodeURIComponent).join('/'), PACKAGE_URL).href
    const virtualPath = fileURLToPath(url)
    this.filterFiles.add(url)
    this.filterFiles.add(virtualPath)
    return { path: real, url, virtualPath, root }
  }

  private async linkAndEvaluate(m: nodeVm.Module): Promise<void> {
    if (m.status === 'unlinked' || m.status === 'linking') {
      // one link at a time: a module another link is still linking is linked once that one is done
      const linked = this.linking.then(() => (m.status === 'unlinked' ? m.link(this.linker) : undefined))
      this.linking = linked.catch(() => undefined)
      await linked
    }
    let e = this.evaluations.get(m)
    if (e === undefined) {
      if (m.status === 'evaluated' || m.status === 'errored' || m.status === 'linked') e = m.evaluate()
      else throw new Error(`module ${m.identifier} is ${m.status}: it is imported while it is still being evaluated`)
      this.evaluations.set(m, e)
    }
    await e
  }

  // ---- resolution ----

  private moduleFor(specifier: string, from: FileRecord | null, attributes: Record<string, string>): Promise<nodeVm.Module> | nodeVm.Module {
    const t = this.resolve(specifier, from, 'import')
    if (t.kind === 'sdk') return this.sdk()
    if (t.kind === 'test-fixture') return this.testFixture()
    if (t.kind === 'builtin') return this.builtin(t.name)
    return this.fileModule(t.file, attributes)
  }

  /** Where `specifier`, imported (or required) from `from`, leads; throws when the rules refuse it. */
  private resolve(specifier: string, from: FileRecord | null, mode: 'import' | 'require'): Target {
    if (specifier.startsWith('node:') || isBuiltin(specifier)) {
      const name = specifier.startsWith('node:') ? specifier.slice(5) : specifier
      if (ALLOWED_BUILTINS.includes(name)) return { kind: 'builtin', name }
      throw this.refusal(specifier, from, `which a filter may not use (${ALLOWED_TEXT})`)
    }
    if (specifier === 'iofcert/sdk') return { kind: 'sdk' }
    if (specifier === 'iofcert/test-fixture' && TEST_FIXTURE_DIR !== null) return { kind: 'test-fixture' }
    const relative = specifier === '.' || specifier === '..' || specifier.startsWith('./') || specifier.startsWith('../') || specifier.startsWith('/')
    if (specifier.startsWith('file:') || relative) {
      if (from === null) throw this.refusal(specifier, null, `which code compiled from a string may not import (it may import iofcert/sdk and the allowed builtins only)`)
      let target: string
      try {
        // the package's own URLs (PACKAGE_URL) map back to its root; a relative path that leaves
        // the package is resolved from the real file (it may only lead to the harness's SDK);
        // any other absolute path is taken as it is
        const url = specifier.startsWith('file:') ? new URL(specifier) : mode === 'import' ? new URL(specifier, from.url) : pathToFileURL(path.resolve(path.dirname(from.virtualPath), specifier))
        if (url.href.startsWith(PACKAGE_URL)) target = path.join(from.root, ...url.pathname.slice(PACKAGE_PATH.length).split('/').map(decodeURIComponent))
        else if (specifier.startsWith('.')) target = mode === 'import' ? fileURLToPath(new URL(specifier, pathToFileURL(from.path))) : path.resolve(path.dirname(from.path), specifier)
        else target = fileURLToPath(url)
      } catch {
        throw this.refusal(specifier, from, 'which is not a file of the filter\'s package')
      }
      return this.fileTarget(specifier, target, from, mode === 'require')
    }
    if (/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(specifier)) throw this.refusal(specifier, from, `which is not a file of the filter's package (${ALLOWED_TEXT})`)
    if (specifier.startsWith('#')) throw this.refusal(specifier, from, 'package.json "imports" (#…) are not supported')
    if (from === null) throw this.refusal(specifier, null, `which code compiled from a string may not import (it may import iofcert/sdk and the allowed builtins only)`)
    return this.resolvePackage(specifier, from, mode)
  }

  /** A file by path: the SDK, or a file of `from`'s package (probing extensions for require). */
  private fileTarget(specifier: string, target: string, from: FileRecord, probe: boolean): Target {
    const candidates = probe ? [target, `${target}.js`, `${target}.json`, `${target}.cjs`, path.join(target, 'index.js'), path.join(target, 'index.json')] : [target]
    let real: string | null = null
    for (const c of candidates) {
      const r = realpathOrNull(c)
      if (r !== null && isFile(r)) {
        real = r
        break
      }
    }
    if (real !== null && real === SDK_PATH) return { kind: 'sdk' }
    if (real === null) {
      if (!inside(path.resolve(target), from.root)) throw this.refusal(specifier, from, 'which is outside the filter\'s package')
      throw notFound(specifier, from)
    }
    if (!inside(real, from.root)) throw this.refusal(specifier, from, 'which is outside the filter\'s package')
    return { kind: 'file', file: this.record(real, from.root) }
  }

  /** A package bundled in node_modules between `from` and the package root. */
  private resolvePackage(specifier: string, from: FileRecord, mode: 'import' | 'require'): Target {
    const parts = specifier.split('/')
    const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!
    if (name === '' || name.startsWith('.') || name.includes('\\') || (specifier.startsWith('@') && parts.length < 2)) throw this.refusal(specifier, from, 'which is not a valid package name')
    const sub = `.${specifier.slice(name.length)}`
    let pkgDir: string | null = null
    for (let dir = path.dirname(from.path); inside(dir, from.root); dir = path.dirname(dir)) {
      const candidate = path.join(dir, 'node_modules', name)
      if (isDirectory(candidate)) {
        pkgDir = candidate
        break
      }
      if (dir === from.root) break
    }
    if (pkgDir === null) throw notFound(specifier, from, `no package "${name}" in the filter's node_modules`)
    const realDir = realpathOrNull(pkgDir)!
    if (!inside(realDir, from.root)) throw this.refusal(specifier, from, 'which is outside the filter\'s package')
    const pj = readPackageJson(realDir)
    if (pj?.exports !== undefined && pj.exports !== null) {
      const t = resolveExports(pj.exports, sub, mode)
      if (t === null || !t.startsWith('./')) throw notFound(specifier, from, `package "${name}" exports no "${sub}" for ${mode}`)
      return this.fileTarget(specifier, path.join(realDir, t), from, false)
    }
    if (sub !== '.') return this.fileTarget(specifier, path.join(realDir, sub), from, true)
    const main = typeof pj?.main === 'string' && pj.main !== '' ? pj.main : 'index.js'
    return this.fileTarget(specifier, path.join(realDir, main), from, true)
  }

  /** The error of a refused import; it names files by their path in the package (it may reach filter code). */
  private refusal(specifier: string, from: FileRecord | null, why: string): IofError {
    const rel = from === null ? '' : path.relative(from.root, from.path)
    const entry = from === null ? 'code compiled from a string' : (this.entries.get(from.root) ?? rel)
    const where = from !== null && rel !== entry ? ` (in ${rel})` : ''
    const e = ModuleInvalid({ entry, reason: `it imports "${specifier}"${where}, ${why}` })
    Object.assign(e.details, { specifier })
    this.refusals.add(e)
    return e
  }

  // ---- modules ----

  private sdk(): nodeVm.Module {
    if (this.sdkModule === null) {
      const values = this.sdkValues()
      const names = Object.keys(values)
      this.sdkModule = new nodeVm.SyntheticModule(names, function (this: nodeVm.SyntheticModule) {
        for (const n of names) this.setExport(n, values[n])
      }, { identifier: 'iofcert/sdk' })
    }
    return this.sdkModule
  }

  private sdkValues(): Readonly<Record<string, unknown>> {
    if (this.sdkObject === null) {
      const values: Record<string, unknown> = {}
      for (const [k, v] of Object.entries(sdk)) {
        if (typeof v === 'function') Object.freeze(v)
        values[k] = v
      }
      this.sdkObject = Object.freeze(values)
    }
    return this.sdkObject
  }

  private testFixture(): nodeVm.Module {
    if (this.fixtureModule === null) {
      const values = testFixtureValues()
      this.fixtureModule = new nodeVm.SyntheticModule(Object.keys(values), function (this: nodeVm.SyntheticModule) {
        for (const [k, v] of Object.entries(values)) this.setExport(k, v)
      }, { identifier: 'iofcert/test-fixture' })
    }
    return this.fixtureModule
  }

  private builtin(name: string): nodeVm.Module {
    let m = this.builtins.get(name)
    if (m === undefined) {
      const b = filterBuiltin(name)
      if (b === undefined) throw new Error(`node:${name} is not prepared for filters`)
      m = new nodeVm.SyntheticModule([...b.names, 'default'], function (this: nodeVm.SyntheticModule) {
        for (const n of b.names) this.setExport(n, b.values[n])
        this.setExport('default', b.defaultExport)
      }, { identifier: `node:${name}` })
      this.builtins.set(name, m)
    }
    return m
  }

  private fileModule(file: FileRecord, attributes: Record<string, string> | null): nodeVm.Module {
    const cached = this.modules.get(file.path)
    if (cached !== undefined) return cached
    const format = this.formatOf(file)
    if (attributes?.type !== undefined && attributes.type !== 'json') throw new Error(`import attribute type "${attributes.type}" is not supported (${file.url})`)
    let m: nodeVm.Module
    if (format === 'json') {
      const value = parseJson(file)
      m = new nodeVm.SyntheticModule(['default'], function (this: nodeVm.SyntheticModule) { this.setExport('default', value) }, { identifier: file.url })
    } else if (format === 'cjs') {
      const exported = this.requireFile(file)
      const names = isObjectLike(exported) ? Object.keys(exported).filter(k => k !== 'default') : []
      m = new nodeVm.SyntheticModule([...names, 'default'], function (this: nodeVm.SyntheticModule) {
        for (const n of names) this.setExport(n, (exported as Record<string, unknown>)[n])
        this.setExport('default', exported)
      }, { identifier: file.url })
    } else {
      m = new nodeVm.SourceTextModule(readSource(file.path), {
        identifier: file.url,
        initializeImportMeta: meta => { meta.url = file.url },
        importModuleDynamically: ((specifier: string, _referrer: unknown, attrs: Record<string, string>) => this.dynamicImport(specifier, file, attrs ?? {})) as never,
      })
    }
    this.files.set(m, file)
    this.modules.set(file.path, m)
    return m
  }

  /** ES module, CommonJS or JSON, as Node tells them: extension, package.json "type", then syntax. */
  private formatOf(file: FileRecord): Format {
    const known = this.formats.get(file.path)
    if (known !== undefined) return known
    const ext = path.extname(file.path)
    let format: Format
    if (ext === '.mjs') format = 'esm'
    else if (ext === '.cjs') format = 'cjs'
    else if (ext === '.json') format = 'json'
    else if (ext === '.js') {
      const type = packageTypeOf(path.dirname(file.path), file.root)
      if (type === 'module') format = 'esm'
      else if (type === 'commonjs') format = 'cjs'
      else {
        // no "type": CommonJS unless it only parses as an ES module (as Node's syntax detection)
        try {
          this.compiled.set(file.path, this.compileCjs(file))
          format = 'cjs'
        } catch (e) {
          if (!(e instanceof SyntaxError)) throw e
          format = 'esm'
        }
      }
    } else {
      const what = ext === '.node' ? 'a native addon' : `a ${ext || 'extensionless'} file`
      const rel = path.relative(file.root, file.path)
      const e = ModuleInvalid({ entry: this.entries.get(file.root) ?? rel, reason: `${rel} is ${what}, which a filter cannot load` })
      this.refusals.add(e)
      throw e
    }
    this.formats.set(file.path, format)
    return format
  }

  private compileCjs(file: FileRecord): (...a: unknown[]) => unknown {
    return nodeVm.compileFunction(stripHashbang(readSource(file.path)), CJS_PARAMS, {
      filename: file.virtualPath,
      importModuleDynamically: ((specifier: string, _referrer: unknown, attrs: Record<string, string>) => this.dynamicImport(specifier, file, attrs ?? {})) as never,
    }) as (...a: unknown[]) => unknown
  }

  /** Runs a CommonJS file (once) and returns its exports. */
  private requireFile(file: FileRecord): unknown {
    const cached = this.cjs.get(file.path)
    if (cached !== undefined) return cached.exports
    const format = this.formatOf(file)
    if (format === 'json') {
      const m: CjsModule = { exports: parseJson(file), id: file.virtualPath, filename: file.virtualPath, loaded: true }
      this.cjs.set(file.path, m)
      return m.exports
    }
    if (format === 'esm') throw Object.assign(new Error(`require() of the ES module ${path.relative(file.root, file.path)} is not supported: import it`), { code: 'ERR_REQUIRE_ESM' })
    const fn = this.compiled.get(file.path) ?? this.compileCjs(file)
    this.compiled.delete(file.path)
    const m: CjsModule = { exports: {}, id: file.virtualPath, filename: file.virtualPath, loaded: false }
    this.cjs.set(file.path, m)
    try {
      fn.call(m.exports, m.exports, this.requireFor(file), m, file.virtualPath, path.dirname(file.virtualPath))
    } catch (e) {
      // as Node: a module that threw is not kept, the next require runs it again
      this.cjs.delete(file.path)
      throw e
    }
    m.loaded = true
    return m.exports
  }

  private requireFor(from: FileRecord): (specifier: string) => unknown {
    const require = (specifier: string): unknown => {
      const t = this.resolve(String(specifier), from, 'require')
      if (t.kind === 'sdk') return this.sdkValues()
      if (t.kind === 'test-fixture') return testFixtureValues()
      if (t.kind === 'builtin') return filterBuiltin(t.name)!.defaultExport
      return this.requireFile(t.file)
    }
    return Object.freeze(Object.assign(require, {
      resolve: (specifier: string): string => {
        const t = this.resolve(String(specifier), from, 'require')
        return t.kind === 'file' ? t.file.virtualPath : t.kind === 'builtin' ? t.name : t.kind === 'sdk' ? 'iofcert/sdk' : 'iofcert/test-fixture'
      },
    }))
  }
}

/** What `iofcert/test-fixture` exports (see TEST_FIXTURE_DIR). */
function testFixtureValues(): Readonly<Record<string, unknown>> {
  const dir = TEST_FIXTURE_DIR!
  const within = (file: unknown): string => {
    const p = path.resolve(String(file))
    if (!inside(p, dir) || p === dir) throw new Error(`iofcert/test-fixture: ${p} is not a file in ${dir}`)
    return p
  }
  return Object.freeze({
    appendFile: Object.freeze((file: string, text: string): void => { fs.appendFileSync(within(file), String(text)) }),
    exists: Object.freeze((file: string): boolean => fs.existsSync(within(file))),
  })
}

// ---- package files ----

/** The directory holding descriptor.json above `file`, or the file's own directory. */
function packageRootOf(file: string): string {
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    if (isFile(path.join(dir, 'descriptor.json'))) return dir
    if (path.dirname(dir) === dir) return path.dirname(file)
  }
}

/** The "type" of the nearest package.json from `dir` up to `root`. */
function packageTypeOf(dir: string, root: string): string | undefined {
  for (let d = dir; inside(d, root); d = path.dirname(d)) {
    const pj = readPackageJson(d)
    if (pj !== null) return typeof pj.type === 'string' ? pj.type : undefined
    if (d === root) break
  }
  return undefined
}

function readPackageJson(dir: string): Record<string, unknown> | null {
  let text: string
  try {
    text = fs.readFileSync(path.join(dir, 'package.json'), 'utf8')
  } catch {
    return null
  }
  try {
    const v = JSON.parse(text) as unknown
    return isObjectLike(v) ? (v as Record<string, unknown>) : {}
  } catch {
    return {}
  }
}

/** package.json `exports` for a subpath: string, array and condition forms, and `*` patterns. */
function resolveExports(exports: unknown, sub: string, mode: 'import' | 'require'): string | null {
  const conditions = [mode, 'node', 'default']
  const pick = (v: unknown): string | null => {
    if (typeof v === 'string') return v
    if (Array.isArray(v)) {
      for (const x of v) {
        const r = pick(x)
        if (r !== null) return r
      }
      return null
    }
    if (isObjectLike(v)) {
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
        if (!conditions.includes(k)) continue
        const r = pick(x)
        if (r !== null) return r
      }
    }
    return null
  }
  const isMap = isObjectLike(exports) && !Array.isArray(exports) && Object.keys(exports as object).some(k => k.startsWith('.'))
  const map = isMap ? (exports as Record<string, unknown>) : { '.': exports }
  if (map[sub] !== undefined) return pick(map[sub])
  for (const [key, v] of Object.entries(map)) {
    const star = key.indexOf('*')
    if (star < 0) continue
    const prefix = key.slice(0, star)
    const suffix = key.slice(star + 1)
    if (sub.startsWith(prefix) && sub.endsWith(suffix) && sub.length >= key.length - 1) {
      const t = pick(v)
      return t === null ? null : t.split('*').join(sub.slice(prefix.length, sub.length - suffix.length))
    }
  }
  return null
}

function parseJson(file: FileRecord): unknown {
  try {
    return JSON.parse(readSource(file.path))
  } catch (e) {
    throw new SyntaxError(`${file.url}: ${(e as Error).message}`)
  }
}

function readSource(file: string): string {
  const text = fs.readFileSync(file, 'utf8')
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
}

function stripHashbang(source: string): string {
  return source.startsWith('#!') ? `//${source.slice(2)}` : source
}

function notFound(specifier: string, from: FileRecord, why = 'no such file in the filter\'s package'): Error {
  return Object.assign(new Error(`Cannot find "${specifier}" imported from ${from.url}: ${why}`), { code: 'ERR_MODULE_NOT_FOUND' })
}

function inside(p: string, root: string): boolean {
  return p === root || p.startsWith(root.endsWith(path.sep) ? root : root + path.sep)
}

function realpathOrNull(p: string): string | null {
  try {
    return fs.realpathSync(p)
  } catch {
    return null
  }
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile()
  } catch {
    return false
  }
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory()
  } catch {
    return false
  }
}

function isObjectLike(v: unknown): v is object {
  return (typeof v === 'object' && v !== null) || typeof v === 'function'
}

// ---- the worker's loader ----

const loader = new FilterLoader()

/**
 * Hardens this worker (see sandbox.ts) with the loader's import rules for code compiled from
 * strings. Call it once the worker's own modules are loaded, before loading any filter.
 */
export function sandboxWorker(): void {
  lockdown({
    isFilterFile: f => loader.isFilterFile(f),
    importFromString: (specifier, attributes) => loader.dynamicImport(specifier, null, attributes),
  })
}

/** True when `url` is one of the framework's own filters (imported as harness code). */
export function isFrameworkFilter(url: string): boolean {
  let real: string | null
  try {
    real = realpathOrNull(url.startsWith('file:') ? fileURLToPath(url) : path.resolve(url))
  } catch {
    return false
  }
  return real !== null && FRAMEWORK_FILTER_DIRS.some(d => inside(real!, d))
}

/**
 * Loads a filter module's namespace: a third-party module under the filter rules, a framework
 * filter as harness code. A module is evaluated once per worker.
 */
export async function loadFilterModule(url: string): Promise<Record<string, unknown>> {
  if (isFrameworkFilter(url)) return (await import(url)) as Record<string, unknown>
  return loader.load(url)
}

/** True when `e` is the error of an import the filter rules refuse (a ModuleInvalid IofError). */
export function isImportRefusal(e: unknown): boolean {
  return loader.isRefusal(e)
}

/** The namespace of a filter module already loaded in this worker (for harness code that reads a test filter's state). */
export function loadedFilterNamespace(url: string): Record<string, unknown> | undefined {
  return loader.namespaceOf(url)
}
