/**
 * The in-process sandbox of a worker that runs filter code (a VM's I/O path, a host daemon, the
 * loader context). A filter shares its thread and realm with the harness code that measures it,
 * so `lockdown()` — run by harness code once the harness's own modules are loaded and before any
 * filter module is evaluated — makes everything the two share tamper-proof:
 *
 * - every standard built-in object (Object.prototype, Array.prototype, Math, Date, Promise, the
 *   typed arrays, …) and every Node.js object a filter can reach (performance, the timers, the
 *   allowed builtin modules and their classes) is made read-only and non-extensible, so a
 *   patched clock, heap reading or prototype cannot reach harness code;
 * - every binding of the global object is made read-only and the global object non-extensible;
 * - `process` is replaced by a frozen stub (no env, no argv, no exit, signals, stdio or bindings),
 *   `console` by one that writes and does nothing else, and what reaches outside the worker
 *   (fetch, BroadcastChannel, WebSocket, blob URLs, …) is removed;
 * - code compiled from strings (`Function`, `eval`, and the async and generator function
 *   constructors) is compiled with the same import rules as the filter's own modules;
 * - a stack trace shows only the filter's own frames, so the code that drives a filter (a guest,
 *   a benchmark, a certification check) cannot be told apart from its stack.
 *
 * Harness code in such a worker that needs the real `process` imports it (`import process from
 * 'node:process'`); the clock (`performance.now()`), `Date` and `Math` are the genuine ones.
 *
 * Hardening freezes objects, but for the prototypes on the chain of arrays and typed arrays, whose
 * properties are made read-only one by one: that keeps V8's fast paths (see ELEMENT_PROTOTYPES).
 */
import { createRequire } from 'node:module'
import process from 'node:process'
import * as nodeVm from 'node:vm'

/** What a worker that runs filter code is started with (`new Worker(file, { execArgv })`). */
export const FILTER_WORKER_EXEC_ARGV: readonly string[] = Object.freeze(['--experimental-vm-modules', '--disable-warning=ExperimentalWarning'])

/** The Node.js builtin modules a filter may import (with or without `node:`). */
export const ALLOWED_BUILTINS: readonly string[] = Object.freeze(['crypto', 'zlib', 'util', 'buffer', 'events', 'string_decoder', 'assert'])

/** What the sandbox needs from the filter loader. */
export interface LockdownHooks {
  /** True when a stack frame's file name is a filter module's. */
  isFilterFile(fileName: string): boolean
  /** The module for `import()` in code compiled from a string (no importing file). */
  importFromString(specifier: string, attributes: Record<string, string>): Promise<nodeVm.Module>
}

/** A builtin module as a filter sees it: named exports and the default export. */
export interface FilterBuiltin {
  readonly names: readonly string[]
  readonly values: Readonly<Record<string, unknown>>
  readonly defaultExport: unknown
}

const require = createRequire(import.meta.url)
/** Set in the environment of the harness to keep every frame in stack traces (for debugging the harness). */
const fullStacks = process.env.IOFCERT_FULL_STACKS === '1'
const realConsole = globalThis.console
const getProto = Object.getPrototypeOf
const ownKeys = Reflect.ownKeys
const describe = Object.getOwnPropertyDescriptor
const define = Object.defineProperty

let lockedDown = false
const builtins = new Map<string, FilterBuiltin>()
const leftWritable: string[] = []
const hardenedBuiltins = new WeakSet<FilterBuiltin>()
let hardener: Hardener | null = null

/** Properties of Node.js prototypes lockdown left writable (non-configurable per-instance defaults Node assigns over). */
export function writableLeftovers(): readonly string[] {
  return leftWritable
}

/** True once lockdown() ran in this thread. */
export function isLockedDown(): boolean {
  return lockedDown
}

/** A builtin module as filters get it (after lockdown), or undefined when filters may not import it. */
export function filterBuiltin(name: string): FilterBuiltin | undefined {
  const b = builtins.get(name.startsWith('node:') ? name.slice(5) : name)
  if (b !== undefined && !hardenedBuiltins.has(b)) {
    // hardened when a filter first imports it (before the filter gets any of it): only Node's
    // allowed modules reach their classes' prototypes (EventEmitter's, the streams'), so a
    // worker whose filters import none of them does not pay for walking them all at start
    hardener!.harden(b.defaultExport, 'node')
    for (const v of Object.values(b.values)) hardener!.harden(v, 'node')
    leftWritable.push(...hardener!.leftWritable.splice(0))
    hardenedBuiltins.add(b)
  }
  return b
}

/**
 * Hardens this thread for filter code. Call it once, from harness code, after the harness's own
 * modules are loaded and before any filter module is evaluated.
 */
export function lockdown(hooks: LockdownHooks): void {
  if (lockedDown) return
  const g = globalThis as unknown as Record<PropertyKey, unknown>
  const intrinsics = collectIntrinsics(g)
  tameCodeFromStrings(g, hooks)
  tameStackTraces(hooks)
  tameOverrides()

  // the Node.js objects filters may reach, resolved before anything is locked (several globals
  // are lazy accessors that redefine themselves on first use)
  const timeoutProto = protoOfTimer(setTimeout, clearTimeout)
  const intervalProto = protoOfTimer(setInterval, clearInterval)
  const immediateProto = protoOfTimer(setImmediate, clearImmediate)
  const cryptoObj = g.crypto as { subtle?: unknown } | undefined
  void cryptoObj?.subtle
  for (const name of ALLOWED_BUILTINS) builtins.set(name, snapshotBuiltin(name))

  replaceGlobals(g)

  const nodeRoots: unknown[] = [timeoutProto, intervalProto, immediateProto]
  // every global that is not a standard built-in: performance, URL, TextEncoder, timers, …
  for (const key of ownKeys(g)) {
    const d = describe(g, key)!
    const v = 'value' in d ? d.value : d.get?.call(g)
    if (v !== g && !intrinsics.has(v)) nodeRoots.push(v)
  }
  const h = (hardener = new Hardener(intrinsics))
  h.skip(g)
  for (const root of intrinsics) h.harden(root, 'intrinsic')
  for (const root of nodeRoots) h.harden(root, 'node')
  leftWritable.push(...h.leftWritable.splice(0))

  // the global bindings last: read-only, and no new ones
  for (const key of ownKeys(g)) {
    const d = describe(g, key)!
    if ('value' in d) {
      if (d.writable || d.configurable) define(g, key, { writable: false, configurable: false })
    } else define(g, key, { value: d.get?.call(g), writable: false, configurable: false })
  }
  Object.preventExtensions(g)
  lockedDown = true
}

// ---- the standard built-ins ----

/** The ECMAScript global names whose values (and everything reachable from them) are intrinsics. */
const STANDARD_GLOBALS = [
  'Object', 'Function', 'Array', 'Number', 'parseFloat', 'parseInt', 'Boolean', 'String', 'Symbol', 'Date', 'Promise', 'RegExp',
  'Error', 'AggregateError', 'EvalError', 'RangeError', 'ReferenceError', 'SyntaxError', 'TypeError', 'URIError',
  'JSON', 'Math', 'Intl', 'ArrayBuffer', 'SharedArrayBuffer', 'Atomics', 'DataView',
  'Uint8Array', 'Int8Array', 'Uint16Array', 'Int16Array', 'Uint32Array', 'Int32Array', 'Float32Array', 'Float64Array',
  'Uint8ClampedArray', 'BigUint64Array', 'BigInt64Array', 'Map', 'BigInt', 'Set', 'WeakMap', 'WeakSet', 'Proxy', 'Reflect',
  'FinalizationRegistry', 'WeakRef', 'decodeURI', 'decodeURIComponent', 'encodeURI', 'encodeURIComponent', 'escape', 'unescape',
  'eval', 'isFinite', 'isNaN', 'WebAssembly',
]

/** The standard built-ins, including those no global names (iterator prototypes, %TypedArray%, …). */
function collectIntrinsics(g: Record<PropertyKey, unknown>): Set<unknown> {
  const roots: unknown[] = STANDARD_GLOBALS.map(n => g[n]).filter(v => v !== undefined)
  const arrayIterator = getProto([][Symbol.iterator]())
  roots.push(
    arrayIterator,
    getProto(arrayIterator),
    getProto(''[Symbol.iterator]()),
    getProto(/e/[Symbol.matchAll]('')),
    getProto(new Map()[Symbol.iterator]()),
    getProto(new Set()[Symbol.iterator]()),
    getProto(Uint8Array),
    getProto(function* () {}),
    getProto(async function* () {}),
    getProto(async function () {}),
    getProto(getProto(getProto((async function* () {})()))),
    describe(Function.prototype, 'caller')?.get,
  )
  // everything reachable from those (prototypes, methods, accessor functions) is intrinsic too
  const all = new Set<unknown>()
  const queue = roots.slice()
  while (queue.length > 0) {
    const o = queue.pop()
    if (!isObject(o) || all.has(o)) continue
    all.add(o)
    queue.push(getProto(o))
    for (const key of ownKeys(o)) {
      const d = describe(o, key)!
      if ('value' in d) queue.push(d.value)
      else queue.push(d.get, d.set)
    }
  }
  return all
}

function isObject(v: unknown): v is object {
  return (typeof v === 'object' && v !== null) || typeof v === 'function'
}

/**
 * Properties of standard prototypes that code commonly overrides by assignment on objects that
 * inherit them (`MyError.prototype.name = …`, `this.name = …` in an Error subclass, `o.toString =
 * …`). A read-only inherited property would make such an assignment throw; these become
 * accessors that define the property on the assigned object instead (as Node's
 * --frozen-intrinsics does), while the prototype's own value stays fixed.
 */
function tameOverrides(): void {
  // `constructor` stays a data property: util.inspect (and so every error Node prints) finds an
  // object's class by a data `constructor` on its prototype chain
  const list: [object, PropertyKey[]][] = [
    [Object.prototype, ['toString', 'toLocaleString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf', 'propertyIsEnumerable']],
    [Function.prototype, ['toString']],
    [Error.prototype, ['name', 'message', 'toString']],
  ]
  for (const E of [EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError, AggregateError]) list.push([E.prototype, ['name', 'message']])
  for (const [obj, keys] of list) for (const key of keys) overridable(obj, key)
}

/** Turns a data property of `obj` into an accessor that lets objects inheriting it override it. */
function overridable(obj: object, key: PropertyKey): void {
  const d = describe(obj, key)
  if (d === undefined || !('value' in d) || !d.configurable) return
  const value: unknown = d.value
  define(obj, key, {
    get: function () { return value },
    set: function (this: unknown, v: unknown) {
      if (this === obj || !isObject(this)) throw new TypeError(`Cannot assign to read only property '${String(key)}' of a shared built-in object`)
      if (Object.hasOwn(this, key)) (this as Record<PropertyKey, unknown>)[key] = v
      else define(this, key, { value: v, writable: true, enumerable: true, configurable: true })
    },
    enumerable: d.enumerable,
    configurable: true,
  })
}

// ---- code compiled from strings ----

/**
 * Replaces `Function`, `eval` and the async and generator function constructors with versions
 * that compile through node:vm with the filter import rules: code that V8 compiles from a string
 * has no importing module, and Node would resolve its `import()` with the default loader.
 */
function tameCodeFromStrings(g: Record<PropertyKey, unknown>, hooks: LockdownHooks): void {
  const importModuleDynamically = (specifier: string, _script: unknown, attributes: Record<string, string>) => hooks.importFromString(specifier, attributes ?? {})
  const compile = (source: string): unknown => new nodeVm.Script(source, { filename: 'anonymous', importModuleDynamically: importModuleDynamically as never }).runInThisContext()

  const constructorFor = (prefix: string, name: string, realPrototype: object, parent: object | null) => {
    // a function expression (not a method) so that `new Function(…)` works as well as `Function(…)`
    const ctor = {
      [name]: function (...args: unknown[]): unknown {
        const parts = args.map(a => String(a))
        const body = parts.length > 0 ? parts.pop()! : ''
        return compile(`(${prefix} anonymous(${parts.join(',')}\n) {\n${body}\n})`)
      },
    }[name]!
    define(ctor, 'length', { value: 1, configurable: true })
    define(ctor, 'prototype', { value: realPrototype, writable: false, enumerable: false, configurable: false })
    if (parent !== null) Object.setPrototypeOf(ctor, parent)
    define(realPrototype, 'constructor', { value: ctor, writable: false, enumerable: false, configurable: true })
    return ctor
  }
  const SafeFunction = constructorFor('function', 'Function', Function.prototype, null)
  define(Function.prototype, 'constructor', { value: SafeFunction, writable: true, enumerable: false, configurable: true })
  constructorFor('async function', 'AsyncFunction', getProto(async function () {}), SafeFunction)
  constructorFor('function*', 'GeneratorFunction', getProto(function* () {}), SafeFunction)
  constructorFor('async function*', 'AsyncGeneratorFunction', getProto(async function* () {}), SafeFunction)
  g.Function = SafeFunction
  // an indirect eval: global scope (a direct eval's access to local variables is not available)
  g.eval = { eval: (source: unknown): unknown => (typeof source === 'string' ? compile(source) : source) }.eval
}

// ---- stack traces ----

/**
 * A stack trace in a filter worker lists only frames of filter modules: what called the filter
 * (a guest I/O, a benchmark generator, a certification check) is the same from where it stands.
 */
function tameStackTraces(hooks: LockdownHooks): void {
  if (fullStacks) return
  const errorToString = Error.prototype.toString
  define(Error, 'prepareStackTrace', {
    value: (error: unknown, frames: NodeJS.CallSite[]): string => {
      let head: string
      try {
        head = isObject(error) ? errorToString.call(error) : String(error)
      } catch {
        head = 'Error'
      }
      let out = head
      for (const f of frames) {
        let file: string | null | undefined
        try {
          file = f.getFileName() ?? f.getScriptNameOrSourceURL()
        } catch {
          file = null
        }
        if (typeof file === 'string' && hooks.isFilterFile(file)) out += `\n    at ${String(f)}`
      }
      return out
    },
    writable: true,
    enumerable: false,
    configurable: true,
  })
}

// ---- globals ----

/** Globals that reach outside the worker (the network, other threads, the process). */
const REMOVED_GLOBALS = ['fetch', 'FormData', 'Headers', 'Request', 'Response', 'WebSocket', 'EventSource', 'BroadcastChannel', 'navigator', 'Navigator']

function replaceGlobals(g: Record<PropertyKey, unknown>): void {
  for (const name of REMOVED_GLOBALS) delete g[name]
  // blob URLs live in a registry shared by every thread of the process
  const URLCtor = g.URL as Record<string, unknown> | undefined
  if (URLCtor !== undefined) {
    delete URLCtor.createObjectURL
    delete URLCtor.revokeObjectURL
  }
  define(g, 'process', { value: processStub(), writable: true, enumerable: false, configurable: true })
  define(g, 'console', { value: consoleStub(), writable: true, enumerable: false, configurable: true })
}

/** What `process` is in a filter worker: nothing that identifies the run or reaches outside. */
function processStub(): object {
  const nextTick = process.nextTick
  const hrtime = process.hrtime
  const bigint = process.hrtime.bigint
  const hr = Object.assign((time?: [number, number]) => hrtime(time), { bigint: () => bigint() })
  return {
    env: {},
    argv: [],
    execArgv: [],
    version: process.version,
    versions: { ...process.versions },
    release: { name: 'node' },
    platform: process.platform,
    arch: process.arch,
    nextTick: (fn: (...a: unknown[]) => void, ...args: unknown[]) => nextTick(fn, ...args),
    hrtime: hr,
  }
}

/** A console that writes, and has no stream, inspector or constructor to reach through. */
function consoleStub(): object {
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(realConsole)) {
    const v = (realConsole as unknown as Record<string, unknown>)[key]
    // Console (a constructor given streams), context and createTask (the inspector's) are left out
    if (typeof v !== 'function' || key === 'Console' || key === 'context' || key === 'createTask' || key.startsWith('_')) continue
    const fn = v as (...a: unknown[]) => unknown
    out[key] = { [key]: (...args: unknown[]) => { fn(...args) } }[key]
  }
  return out
}

/** The prototype a timer function's handles share (created and cancelled at once). */
function protoOfTimer(make: (fn: () => void, ms?: number) => unknown, clear: (h: never) => void): unknown {
  const handle = make(() => {}, 1_000_000)
  clear(handle as never)
  return getProto(handle)
}

// ---- builtin modules ----

/**
 * Exports a filter does not get: what acts on the whole process or reaches outside the worker
 * (crypto.setEngine loads native code, crypto.setFips switches the process's FIPS mode,
 * buffer.resolveObjectURL reads the process-wide blob registry), what reads the process's own
 * arguments (util.parseArgs() parses process.argv), and deprecated aliases whose getters print a
 * warning.
 */
const SKIPPED_EXPORTS: Readonly<Record<string, readonly string[]>> = {
  crypto: ['setEngine', 'setFips', 'prng', 'rng', 'pseudoRandomBytes'],
  buffer: ['resolveObjectURL'],
  util: ['parseArgs'],
}

/**
 * A builtin module as filters import it. Its exports are read once; a module whose exports are a
 * plain object is given as a copy (the real one has setters with process-wide effects, such as
 * `crypto.fips`); a module whose export is a function (events, assert) is given hardened.
 */
function snapshotBuiltin(name: string): FilterBuiltin {
  const real = require(`node:${name}`) as Record<string, unknown>
  const skip = SKIPPED_EXPORTS[name] ?? []
  const values: Record<string, unknown> = {}
  for (const key of Object.keys(real)) {
    if (skip.includes(key) || key === 'default') continue
    values[key] = real[key]
  }
  const defaultExport = typeof real === 'function' ? real : { ...values }
  if (typeof real === 'function') {
    // resolve lazy accessors now (they redefine themselves on first use, which a hardened object refuses)
    for (const key of ownKeys(real)) {
      const d = describe(real, key)!
      if (d.get !== undefined && d.configurable) void real[key as string]
    }
  }
  return { names: Object.keys(values), values, defaultExport }
}

// ---- hardening ----

/** Prototypes whose methods are on the harness's per-I/O path: hardened, but their data properties are not made accessors. */
const HOT_PROTOTYPES = new Set<unknown>()
for (const ctor of ['Performance', 'MessagePort', 'EventTarget']) {
  const c = (globalThis as unknown as Record<string, { prototype?: unknown } | undefined>)[ctor]
  if (c?.prototype !== undefined) HOT_PROTOTYPES.add(c.prototype)
}

/**
 * Makes objects and everything reachable from them read-only and non-extensible. A Node.js
 * prototype (a `.prototype` of a constructor outside the standard built-ins) gets its data
 * properties turned into overridable accessors first: Node's own code assigns per-instance values
 * over them (`this._events = …` in EventEmitter, `this._read = …` in streams).
 */
class Hardener {
  private readonly done = new WeakSet<object>()
  /** Properties left writable (see harden). */
  readonly leftWritable: string[] = []
  constructor(private readonly intrinsics: Set<unknown>) {}

  /** Leaves `o` alone (the global object: its bindings are locked separately). */
  skip(o: object): void {
    this.done.add(o)
  }

  harden(root: unknown, kind: 'intrinsic' | 'node'): void {
    const queue: unknown[] = [root]
    while (queue.length > 0) {
      const o = queue.pop()
      if (!isObject(o) || this.done.has(o)) continue
      this.done.add(o)
      // a typed array's elements and an ArrayBuffer's bytes are data, not behaviour
      if (ArrayBuffer.isView(o) || o instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && o instanceof SharedArrayBuffer)) continue
      const nodePrototype = kind === 'node' && !this.intrinsics.has(o) && isPrototypeObject(o) && !HOT_PROTOTYPES.has(o)
      if (nodePrototype) for (const key of ownKeys(o)) if (key !== 'constructor') overridable(o, key)
      queue.push(getProto(o))
      for (const key of ownKeys(o)) {
        const d = describe(o, key)
        if (d === undefined) continue
        if ('value' in d) queue.push(d.value)
        else queue.push(d.get, d.set)
      }
      if (nodePrototype) {
        // a per-instance default Node defines non-configurable (EventEmitter's capture flag) cannot
        // become an accessor; it stays writable, as Node's own code assigns over it
        for (const key of ownKeys(o)) {
          const d = describe(o, key)
          if (d !== undefined && 'value' in d && d.writable && !d.configurable) this.leftWritable.push(`${describeObject(o)}[${String(key)}]`)
        }
        hardenObject(o, true)
      } else if (ELEMENT_PROTOTYPES.has(o)) hardenObject(o)
      else {
        try {
          Object.freeze(o)
        } catch {
          hardenObject(o)
        }
      }
    }
  }
}

/**
 * Prototypes on the chain of every array and typed array. Object.freeze would also freeze their
 * (empty) elements, which turns off V8's fast element access for every array in the thread;
 * redefining their properties one by one does not. Any other object is frozen: redefining the
 * properties of an object such as Math one by one moves it to dictionary mode, where V8 no longer
 * inlines its methods.
 */
const ELEMENT_PROTOTYPES = new Set<unknown>([
  Object.prototype, Array.prototype, getProto(Uint8Array).prototype,
  ...[Uint8Array, Int8Array, Uint16Array, Int16Array, Uint32Array, Int32Array, Float32Array, Float64Array, Uint8ClampedArray, BigUint64Array, BigInt64Array].map(c => c.prototype),
])

/** Makes one object's own properties read-only and the object non-extensible (not what it refers to). */
export function hardenObject(o: object, keepNonConfigurableWritable = false): void {
  for (const key of ownKeys(o)) {
    const d = describe(o, key)
    if (d === undefined) continue
    if ('value' in d) {
      if (keepNonConfigurableWritable && d.writable && !d.configurable) continue
      if (d.writable || d.configurable) tryDefine(o, key, { writable: false, configurable: false })
    } else if (d.configurable) tryDefine(o, key, { configurable: false })
  }
  Object.preventExtensions(o)
}

function describeObject(o: object): string {
  const c = describe(o, 'constructor')
  const name = c !== undefined && 'value' in c && typeof c.value === 'function' ? (c.value as { name: string }).name : '?'
  return `${name}.prototype`
}

function isPrototypeObject(o: object): boolean {
  const d = describe(o, 'constructor')
  const c = d !== undefined && 'value' in d ? (d.value as { prototype?: unknown }) : undefined
  return typeof c === 'function' && c.prototype === o
}

function tryDefine(o: object, key: PropertyKey, attrs: PropertyDescriptor): void {
  try {
    define(o, key, attrs)
  } catch {
    // exotic objects (module namespaces, typed array elements) keep their own rules
  }
}
