/**
 * The attack suite's laboratory: per case a temp root holding a fake HOME with a canary SSH key,
 * a fresh signing key pair, a COPY of the built harness (so a successful tampering attack never
 * touches the checkout), the hostile package, an output dir and a working dir; listeners on
 * 127.0.0.1 (TCP, UDP) and an abstract unix socket; snapshots of everything an attack might change;
 * and the harness run as `bash -c 'node … ; echo WRAPPER-SURVIVED rc=$?'` in a process group of
 * its own, its output scanned for canaries as it streams.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import * as dgram from 'node:dgram'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildPackage, generateKeyPair } from '../../harness/framework/package/index.js'
import { bridgeFiles, hostileSource, type HostileConfig, type HostileKind } from './filters.js'

/** The built tree this test belongs to (dist/). */
export const DIST = fileURLToPath(new URL('../../', import.meta.url))
/**
 * The built tree the harness under attack is copied from: this one, or IOFCERT_ATTACKS_TREE (the
 * folder holding dist/, package.json and node_modules of another build, e.g. one from before the
 * sandbox, to watch the attacks succeed there).
 */
export const SOURCE_DIST = process.env.IOFCERT_ATTACKS_TREE ? path.join(path.resolve(process.env.IOFCERT_ATTACKS_TREE), 'dist') : DIST
/** The checkout's CLI in that tree: used only for `report verify`, never for running vendor code. */
export const PRISTINE_CLI = path.join(DIST, 'harness', 'cli', 'main.js')
/** Shared temp areas an attack may drop files into. */
export const SHARED_TMP = [...new Set(['/tmp', '/var/tmp', '/dev/shm', os.tmpdir()])].filter(d => fs.existsSync(d))
/** dist/ entries the harness does not need to run (tests, build keys, built reference packages). */
const NOT_COPIED = new Set(['test', 'keys', 'packages'])
/** Development-only packages (types, the compiler, the browser for report tests): not copied. */
const DEV_ONLY = new Set(['typescript', 'playwright-core', '@types', 'undici-types', '.bin', '.package-lock.json'])

export interface Canaries {
  readonly env: string
  readonly ssh: string
  /** The base64 body of the --sign private key. */
  readonly signKey: string
}

export interface Listener {
  readonly port: number
  readonly udpPort: number
  readonly abstractName: string
  tcpConnections: number
  udpMessages: number
  unixConnections: number
  /** Up to 1 MiB of everything received. */
  received: string
  close(): Promise<void>
}

export interface Lab {
  readonly kind: HostileKind
  readonly root: string
  readonly token: string
  readonly canaries: Canaries
  readonly home: string
  readonly keysDir: string
  readonly privateKey: string
  readonly publicKey: string
  /** The copied tree: tree/dist, tree/package.json, tree/node_modules → the checkout's. */
  readonly tree: string
  readonly cli: string
  readonly src: string
  readonly pkgs: string
  readonly tgz: string
  readonly out: string
  readonly report: string
  readonly cwd: string
  readonly listener: Listener
  /** Top-level names in the shared temp areas before the run. */
  readonly sharedBefore: ReadonlyMap<string, ReadonlySet<string>>
  /** Snapshots taken before the run. */
  readonly before: ReadonlyMap<string, Snapshot>
}

/** relative path → 'd' (directory), 'l:target' (link) or 'f:sha256' (file). */
export type Snapshot = Map<string, string>

export function snapshot(dir: string): Snapshot {
  const out: Snapshot = new Map()
  const visit = (d: string, rel: string): void => {
    let names: string[]
    try {
      names = fs.readdirSync(d)
    } catch {
      return
    }
    for (const n of names.sort()) {
      const p = path.join(d, n)
      const r = rel === '' ? n : `${rel}/${n}`
      let st: fs.Stats
      try {
        st = fs.lstatSync(p)
      } catch {
        continue
      }
      if (st.isSymbolicLink()) out.set(r, `l:${fs.readlinkSync(p)}`)
      else if (st.isDirectory()) {
        out.set(r, 'd')
        visit(p, r)
      } else if (st.isFile()) out.set(r, `f:${createHash('sha256').update(fs.readFileSync(p)).digest('hex')}`)
      else out.set(r, `other:${st.mode}`)
    }
  }
  visit(dir, '')
  return out
}

/** '+ created', '- removed', '~ changed' lines between two snapshots. */
export function changes(a: Snapshot, b: Snapshot, ignore: (rel: string) => boolean = () => false): string[] {
  const out: string[] = []
  for (const [k, v] of b) if (!ignore(k) && a.get(k) !== v) out.push(`${a.has(k) ? '~' : '+'} ${k}`)
  for (const k of a.keys()) if (!ignore(k) && !b.has(k)) out.push(`- ${k}`)
  return out
}

function listNames(dir: string): Set<string> {
  try {
    return new Set(fs.readdirSync(dir))
  } catch {
    return new Set()
  }
}

async function listen(token: string): Promise<Listener> {
  const l = { tcpConnections: 0, udpMessages: 0, unixConnections: 0, received: '' } as Listener & { received: string }
  const take = (b: Buffer) => {
    if (l.received.length < 1 << 20) l.received += b.toString('latin1')
  }
  const onSocket = (kind: 'tcp' | 'unix') => (s: net.Socket) => {
    if (kind === 'tcp') l.tcpConnections++
    else l.unixConnections++
    s.on('error', () => {})
    let answered = false
    s.on('data', b => {
      take(b)
      if (!answered) {
        answered = true
        // an HTTP client waits for an answer: give it one, so every request really lands
        setTimeout(() => s.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'), 100)
      }
    })
  }
  const tcp = net.createServer(onSocket('tcp'))
  await new Promise<void>((res, rej) => tcp.listen(0, '127.0.0.1', res).once('error', rej))
  const unix = net.createServer(onSocket('unix'))
  const abstractName = `\0iofhostile-${token}`
  await new Promise<void>(res => unix.listen(abstractName, res).once('error', () => res()))
  const udp = dgram.createSocket('udp4')
  udp.on('message', b => {
    l.udpMessages++
    take(b)
  })
  await new Promise<void>((res, rej) => udp.bind(0, '127.0.0.1', res).once('error', rej))
  return Object.assign(l, {
    port: (tcp.address() as net.AddressInfo).port,
    udpPort: udp.address().port,
    abstractName,
    close: async () => {
      await Promise.all([
        new Promise<void>(r => tcp.close(() => r())),
        new Promise<void>(r => unix.close(() => r())),
        new Promise<void>(r => udp.close(() => r())),
      ])
    },
  })
}

/**
 * Copies the built harness (not its tests or keys) to `tree`, with package.json and the run-time
 * packages of node_modules — copied too, not linked: the sandbox binds node_modules by its real
 * path, so a link would leave the subject without its dependencies, and a hard link would let an
 * attack that writes in place reach the checkout.
 */
function copyTree(tree: string): void {
  fs.mkdirSync(path.join(tree, 'dist'), { recursive: true })
  for (const e of fs.readdirSync(SOURCE_DIST)) {
    if (NOT_COPIED.has(e)) continue
    fs.cpSync(path.join(SOURCE_DIST, e), path.join(tree, 'dist', e), { recursive: true })
  }
  const repo = path.dirname(SOURCE_DIST.replace(/\/$/, ''))
  fs.copyFileSync(path.join(repo, 'package.json'), path.join(tree, 'package.json'))
  const nm = fs.realpathSync(path.join(repo, 'node_modules'))
  for (const e of fs.readdirSync(nm)) {
    if (DEV_ONLY.has(e)) continue
    fs.cpSync(path.join(nm, e), path.join(tree, 'node_modules', e), { recursive: true, verbatimSymlinks: true })
  }
  // the tampering filter only ever rewrites a tree holding this marker
  fs.writeFileSync(path.join(tree, '.iofhostile-tree'), 'a copy made by the attack suite\n')
}

export interface LabOptions {
  readonly policySchema?: object
  readonly spinUs?: number
  readonly explain?: boolean
}

export async function makeLab(kind: HostileKind, o: LabOptions = {}): Promise<Lab> {
  const sharedBefore = new Map(SHARED_TMP.map(d => [d, listNames(d)] as const))
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-attack-'))
  const token = `T${randomBytes(8).toString('hex')}`
  const home = path.join(root, 'home')
  const ssh = `SSHCANARY${randomBytes(12).toString('hex')}`
  fs.mkdirSync(path.join(home, '.ssh'), { recursive: true, mode: 0o700 })
  fs.writeFileSync(path.join(home, '.ssh', 'id_ed25519'), `-----BEGIN OPENSSH PRIVATE KEY-----\n${ssh}\n-----END OPENSSH PRIVATE KEY-----\n`, { mode: 0o600 })
  fs.writeFileSync(path.join(home, '.iofhostile-home'), 'a fake HOME made by the attack suite\n')
  const keysDir = path.join(root, 'keys')
  const pair = await generateKeyPair(keysDir)
  const pem = fs.readFileSync(pair.privateKeyPath, 'utf8')
  const signKey = pem.split('\n').filter(l => l !== '' && !l.startsWith('-----')).join('')
  const tree = path.join(root, 'tree')
  copyTree(tree)
  const listener = await listen(token)
  const name = `hostile-${kind}`
  const cfg: HostileConfig = {
    token, kase: kind, port: listener.port, udpPort: listener.udpPort, name, cls: 'cache',
    ...(o.policySchema ? { policySchema: o.policySchema } : {}),
    ...(o.spinUs !== undefined ? { spinUs: o.spinUs } : {}),
    ...(o.explain ? { explain: true } : {}),
  }
  const src = path.join(root, 'src', name)
  const files: Record<string, string> = {
    'filter.js': hostileSource(cfg),
    'descriptor.json': `${JSON.stringify({
      descriptorVersion: 1, name, vendor: 'HOSTILE', version: '1.0.0', class: 'cache', summary: `attack suite: ${kind}`,
      releaseDate: '2026-11-01', abiVersion: 1, entry: 'filter.js', acceptanceLevel: 'PartnerSupported',
      install: { maintenanceMode: false, reboot: false }, upgrade: { maintenanceMode: false, reboot: false }, uninstall: { maintenanceMode: false, reboot: false },
    }, null, 2)}\n`,
    ...bridgeFiles(),
  }
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(src, rel)), { recursive: true })
    fs.writeFileSync(path.join(src, rel), text)
  }
  const pkgs = path.join(root, 'pkgs')
  fs.mkdirSync(pkgs)
  const tgz = path.join(pkgs, `${name}.tgz`)
  await buildPackage(src, { keyPem: pem, out: tgz })
  const out = path.join(root, 'out')
  const cwd = path.join(root, 'cwd')
  fs.mkdirSync(out)
  fs.mkdirSync(cwd)
  const lab: Lab = {
    kind, root, token, canaries: { env: `ENVCANARY${randomBytes(12).toString('hex')}`, ssh, signKey },
    home, keysDir, privateKey: pair.privateKeyPath, publicKey: pair.publicKeyPath,
    tree, cli: path.join(tree, 'dist', 'harness', 'cli', 'main.js'), src, pkgs, tgz, out, report: path.join(out, 'report.json'), cwd,
    listener, sharedBefore, before: new Map(),
  }
  for (const [k, d] of watched(lab)) (lab.before as Map<string, Snapshot>).set(k, snapshot(d))
  return lab
}

/** The places no attack may change, by name. */
export function watched(lab: Lab): [string, string][] {
  return [['HOME', lab.home], ['the key dir', lab.keysDir], ['the copied harness tree', lab.tree], ['the package sources', path.dirname(lab.src)], ['the package dir', lab.pkgs], ['the output dir', lab.out], ['the working dir', lab.cwd]]
}

/** What a streamed output held: its head and tail, marker lines, progress lines, canaries seen. */
export class Captured {
  head = ''
  tail = ''
  bytes = 0
  readonly marked: string[] = []
  readonly progress: string[] = []
  readonly canariesSeen = new Set<string>()
  private partial = ''
  private carry = ''
  constructor(private readonly canaries: readonly string[]) {}
  push(chunk: Buffer): void {
    const s = chunk.toString('latin1')
    this.bytes += s.length
    if (this.head.length < 256 * 1024) this.head += s.slice(0, 256 * 1024 - this.head.length)
    this.tail = (this.tail + s).slice(-256 * 1024)
    const scan = this.carry + s
    for (const c of this.canaries) if (scan.includes(c)) this.canariesSeen.add(c)
    this.carry = scan.slice(-256)
    const lines = (this.partial + s).split('\n')
    this.partial = lines.pop()!.slice(-1 << 20)
    for (const l of lines) this.line(l)
  }
  end(): void {
    if (this.partial !== '') this.line(this.partial)
    this.partial = ''
  }
  private line(raw: string): void {
    // eslint-disable-next-line no-control-regex
    const l = raw.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').replace(/\r/g, '')
    if (/^IOFHOSTILE-/.test(l) && this.marked.length < 50) this.marked.push(l.slice(0, 64 * 1024))
    if (/^\[\d+\/\d+\] \S+ \S+/.test(l) && this.progress.length < 2000) this.progress.push(l)
  }
}

export interface Run {
  /** The harness's exit status as the wrapper saw it; null when the wrapper did not report one. */
  readonly exitCode: number | null
  readonly wrapperSurvived: boolean
  /** How the wrapper ended: 'exit N' or 'signal S'. */
  readonly wrapperEnd: string
  readonly timedOut: boolean
  readonly wallMs: number
  readonly stdout: Captured
  readonly stderr: Captured
  readonly args: readonly string[]
}

/** Certifies the lab's package with the copied CLI under a surviving-wrapper shell; kills the process group after `hardKillS`. */
export async function runHarness(lab: Lab, certifyArgs: readonly string[], hardKillS: number): Promise<Run> {
  const canaries = [lab.canaries.env, lab.canaries.ssh, lab.canaries.signKey]
  const args = [process.execPath, lab.cli, 'certify', lab.tgz, ...certifyArgs, '--json', lab.report, '--sign', lab.privateKey]
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: lab.home,
    LANG: 'C.UTF-8',
    IOFCERT_ATTACK_CANARY: lab.canaries.env,
    ...(process.env.IOFCERT_BWRAP !== undefined ? { IOFCERT_BWRAP: process.env.IOFCERT_BWRAP } : {}),
  }
  // fd 3 is the wrapper's alone: the harness runs with it closed, so nothing it starts can forge the line
  const script = 'ulimit -c 0; "$@" 3>&-; rc=$?; echo "WRAPPER-SURVIVED rc=$rc" >&3'
  const t0 = performance.now()
  const child: ChildProcess = spawn('bash', ['-c', script, 'wrapper', ...args], { cwd: lab.cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] })
  const stdout = new Captured(canaries)
  const stderr = new Captured(canaries)
  let fd3 = ''
  child.stdout!.on('data', (b: Buffer) => stdout.push(b))
  child.stderr!.on('data', (b: Buffer) => stderr.push(b))
  ;(child.stdio[3] as NodeJS.ReadableStream).on('data', (b: Buffer) => { fd3 += b.toString('latin1') })
  let timedOut = false
  const pgid = child.pid!
  const killer = setTimeout(() => {
    timedOut = true
    try {
      process.kill(-pgid, 'SIGKILL')
    } catch {
      // already gone
    }
  }, hardKillS * 1000)
  const streamsClosed = Promise.all([child.stdout!, child.stderr!].map(s => new Promise<void>(r => s.once('close', () => r()))))
  const wrapperEnd = await new Promise<string>(resolve => child.once('exit', (code, signal) => resolve(signal !== null ? `signal ${signal}` : `exit ${code}`)))
  // the harness may outlive a killed wrapper: wait for every holder of its output to go
  let grace: ReturnType<typeof setTimeout> | undefined
  await Promise.race([streamsClosed, new Promise(r => { grace = setTimeout(r, Math.max(1000, hardKillS * 1000 - (performance.now() - t0))) })])
  clearTimeout(grace)
  clearTimeout(killer)
  if (!timedOut) {
    try {
      process.kill(-pgid, 0)
      // something of the group is still there after the output closed: end it
      process.kill(-pgid, 'SIGKILL')
    } catch {
      // the group is gone
    }
  }
  stdout.end()
  stderr.end()
  const wallMs = performance.now() - t0
  const m = /WRAPPER-SURVIVED rc=(\d+)/.exec(fd3)
  return { exitCode: m ? Number(m[1]) : null, wrapperSurvived: m !== null, wrapperEnd, timedOut, wallMs, stdout, stderr, args }
}

/** `iofcert verify <report> --key <public.pem>` with the checkout's CLI (`report verify` in older builds). */
export function verifyReport(lab: Lab): { ok: boolean; output: string } {
  let r = spawnSync(process.execPath, [PRISTINE_CLI, 'verify', lab.report, '--key', lab.publicKey], { encoding: 'utf8', timeout: 60_000 })
  if (/unknown command/.test(r.stderr)) r = spawnSync(process.execPath, [PRISTINE_CLI, 'report', 'verify', lab.report, '--key', lab.publicKey], { encoding: 'utf8', timeout: 60_000 })
  return { ok: r.status === 0 && /^valid:/m.test(r.stdout), output: `${r.stdout}${r.stderr}`.trim() }
}

/** Processes whose command line carries the token: what an attack left running. */
export function tokenProcesses(token: string): { pid: number; cmd: string }[] {
  const out: { pid: number; cmd: string }[] = []
  for (const n of listNames('/proc')) {
    if (!/^\d+$/.test(n) || Number(n) === process.pid) continue
    let cmd: string
    try {
      cmd = fs.readFileSync(`/proc/${n}/cmdline`, 'latin1')
    } catch {
      continue
    }
    if (cmd.includes(token)) out.push({ pid: Number(n), cmd: cmd.replace(/\0/g, ' ').slice(0, 160) })
  }
  return out
}

/** Files under `dir` (links not followed) whose bytes hold a canary: path → canaries. */
export function canaryFiles(dir: string, canaries: readonly string[], skip: (p: string) => boolean = () => false, budget = { bytes: 256 << 20, files: 20_000 }): Map<string, string[]> {
  const found = new Map<string, string[]>()
  const visit = (p: string, depth: number): void => {
    if (depth > 12 || budget.files <= 0 || budget.bytes <= 0 || skip(p)) return
    let st: fs.Stats
    try {
      st = fs.lstatSync(p)
    } catch {
      return
    }
    if (st.isDirectory()) {
      for (const n of listNames(p)) visit(path.join(p, n), depth + 1)
      return
    }
    if (!st.isFile() || st.size > 8 << 20) return
    budget.files--
    budget.bytes -= st.size
    let text: string
    try {
      text = fs.readFileSync(p, 'latin1')
    } catch {
      return
    }
    const hit = canaries.filter(c => text.includes(c))
    if (hit.length > 0) found.set(p, hit)
  }
  visit(dir, 0)
  return found
}

/** Paths under `dir` whose name holds `token` (links not followed). */
export function tokenNames(dir: string, token: string, depth = 0): string[] {
  if (depth > 6) return []
  const out: string[] = []
  for (const n of listNames(dir)) {
    const p = path.join(dir, n)
    if (n.includes(token)) out.push(p)
    try {
      if (fs.lstatSync(p).isDirectory()) out.push(...tokenNames(p, token, depth + 1))
    } catch {
      // gone
    }
  }
  return out
}

/** New top-level entries of the shared temp areas since the lab was made. */
export function newShared(lab: Lab): string[] {
  const out: string[] = []
  for (const [d, before] of lab.sharedBefore) for (const n of listNames(d)) if (!before.has(n)) out.push(path.join(d, n))
  return [...new Set(out)]
}

/** Whether `p` is a harness work dir (iofcert-run-*) left behind by a run of this lab's package. */
function leftoverRunDir(p: string, token: string): boolean {
  if (!/^iofcert-run-/.test(path.basename(p))) return false
  const hit = (d: string, depth: number): boolean => {
    for (const n of listNames(d)) {
      const q = path.join(d, n)
      try {
        const st = fs.lstatSync(q)
        if (st.isDirectory() && depth < 4 && hit(q, depth + 1)) return true
        if (st.isFile() && n === 'filter.js' && fs.readFileSync(q, 'latin1').includes(token)) return true
      } catch {
        // gone
      }
    }
    return false
  }
  return hit(p, 0)
}

/** Ends what the attack left running, removes what it dropped in the shared temp areas, and the lab. */
export async function cleanup(lab: Lab, keep: boolean): Promise<void> {
  for (const p of tokenProcesses(lab.token)) {
    try {
      process.kill(p.pid, 'SIGKILL')
    } catch {
      // gone
    }
  }
  await lab.listener.close()
  for (const p of newShared(lab)) {
    if (path.basename(p).includes(lab.token) || leftoverRunDir(p, lab.token)) fs.rmSync(p, { recursive: true, force: true })
  }
  if (!keep) fs.rmSync(lab.root, { recursive: true, force: true })
}
