/**
 * The OS sandbox of the subject process: everything that executes vendor code runs in a process
 * of its own, wrapped by bubblewrap (namespaces, read-only binds, no network, its own PID
 * namespace, dies with its parent) and restricted by Node's permission model. This module only
 * decides whether a sandbox can be made here and builds the command line; the supervisor runs it.
 */
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { BadInput } from '../framework/index.js'

/** What the user asked for: `auto` uses bubblewrap when it works here, and says so when it does not. */
export type SandboxMode = 'auto' | 'bwrap' | 'none'

/** The sandbox a run had, as recorded in the report's environment. */
export interface SandboxInfo {
  /** `bwrap`: the subject ran under bubblewrap; `none`: no OS sandbox could be made (or none was asked for). */
  readonly kind: 'bwrap' | 'none'
  /** bubblewrap's version, when used. */
  readonly version?: string
  /** The layers that held vendor code, outermost first. */
  readonly layers: readonly string[]
  /** Why there is no OS sandbox, when there is none. */
  readonly reason?: string
}

/** Layers that hold in every run, sandboxed or not. */
const INNER_LAYERS = ['separate process', 'node permission model', 'import allow-list and hardened realm'] as const

/** The bubblewrap binary: `IOFCERT_BWRAP` names another one (or a missing one, to run as a machine without it would). */
export function bwrapPath(): string {
  return process.env.IOFCERT_BWRAP ?? 'bwrap'
}

let probed: { ok: true; version: string } | { ok: false; reason: string } | undefined

/** Whether bubblewrap runs here with the namespaces the subject needs (probed once per process). */
export function probeBwrap(): { ok: true; version: string } | { ok: false; reason: string } {
  if (probed !== undefined) return probed
  if (process.platform !== 'linux') return (probed = { ok: false, reason: `bubblewrap needs Linux; this is ${process.platform}` })
  const bin = bwrapPath()
  const v = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 10_000 })
  if (v.error !== undefined || v.status !== 0) {
    return (probed = { ok: false, reason: `bubblewrap (${bin}) is not installed or does not run: ${v.error?.message ?? v.stderr.trim()} (Debian: apt-get install bubblewrap)` })
  }
  const t = spawnSync(bin, [...baseArgs(), '--ro-bind', process.execPath, process.execPath, '--', process.execPath, '-e', '0'], { encoding: 'utf8', timeout: 20_000 })
  if (t.error !== undefined || t.status !== 0) {
    return (probed = { ok: false, reason: `bubblewrap cannot create the namespaces it needs here (user namespaces disabled?): ${t.error?.message ?? t.stderr.trim().split('\n')[0]}` })
  }
  return (probed = { ok: true, version: v.stdout.trim().replace(/^bubblewrap\s*/, '') })
}

/** Resolves the sandbox of a run, or refuses: `bwrap` asked for but unavailable, or `--certified` without one. */
export function resolveSandbox(mode: SandboxMode, certified: boolean): SandboxInfo {
  if (mode === 'none') {
    if (certified) throw BadInput({ message: '--certified needs a sandbox for vendor code; --sandbox none was given' })
    return { kind: 'none', layers: INNER_LAYERS, reason: 'no OS sandbox was asked for (--sandbox none)' }
  }
  const p = probeBwrap()
  if (p.ok) return { kind: 'bwrap', version: p.version, layers: ['bubblewrap (namespaces: pid, net, ipc, uts, cgroup; read-only binds)', ...INNER_LAYERS] }
  if (mode === 'bwrap' || certified) {
    throw BadInput({ message: `${certified ? '--certified needs a sandbox for vendor code' : '--sandbox bwrap was asked for'}, but none can be made here: ${p.reason}` })
  }
  return { kind: 'none', layers: INNER_LAYERS, reason: p.reason }
}

function baseArgs(): string[] {
  return [
    '--unshare-all', // user, ipc, pid, net (only a loopback of its own), uts, cgroup
    '--die-with-parent',
    '--new-session', // no controlling terminal to push input into
    '--clearenv',
    '--hostname', 'localhost',
    '--dev', '/dev',
    '--proc', '/proc',
    '--tmpfs', '/tmp',
    '--ro-bind', '/usr', '/usr',
    '--ro-bind-try', '/lib', '/lib',
    '--ro-bind-try', '/lib64', '/lib64',
    '--ro-bind-try', '/lib32', '/lib32',
    '--ro-bind-try', '/bin', '/bin',
    '--ro-bind-try', '/sbin', '/sbin',
    // only what name lookup and the dynamic loader read: no /etc/shadow, no host keys
    '--ro-bind-try', '/etc/ld.so.cache', '/etc/ld.so.cache',
    '--ro-bind-try', '/etc/hosts', '/etc/hosts',
    '--ro-bind-try', '/etc/nsswitch.conf', '/etc/nsswitch.conf',
    '--ro-bind-try', '/etc/localtime', '/etc/localtime',
  ]
}

/** The harness's installed tree: the folder holding dist/ and package.json. */
export function harnessRoot(): string {
  // this file is dist/harness/certify/os-sandbox.js
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
}

/** Every node_modules folder Node's resolution walks from the harness's tree (a hoisted install has several). */
function moduleFolders(root: string): string[] {
  const out: string[] = []
  let dir = root
  for (;;) {
    if (path.basename(dir) !== 'node_modules') {
      const nm = path.join(dir, 'node_modules')
      if (fs.existsSync(nm)) out.push(fs.realpathSync(nm))
    }
    const up = path.dirname(dir)
    if (up === dir) break
    dir = up
  }
  return out
}

/** How to start the subject process: the program and its arguments. */
export interface SubjectCommand {
  readonly file: string
  readonly args: readonly string[]
  readonly env: Readonly<Record<string, string>>
}

/**
 * The subject's command line. It sees the harness's code and dependencies read-only, its scratch
 * folder read-write, and nothing else of the machine's files: no home, no keys, no output paths.
 * Its argv names no command or option of the harness; its task arrives on stdin.
 */
export function subjectCommand(sandbox: SandboxInfo, scratch: string, o: { maxOldSpaceMiB: number }): SubjectCommand {
  const root = harnessRoot()
  const dist = path.join(root, 'dist')
  const entry = path.join(dist, 'harness', 'certify', 'subject-main.js')
  const mods = moduleFolders(root)
  // a folder's files are granted by a trailing `*`; one flag per path
  const readable = [`${dist}/*`, path.join(root, 'package.json'), ...mods.map(m => `${m}/*`), `${scratch}/*`]
  const node = [
    `--max-old-space-size=${o.maxOldSpaceMiB}`,
    '--experimental-permission',
    ...readable.map(p => `--allow-fs-read=${p}`),
    `--allow-fs-write=${scratch}/*`,
    '--allow-worker', // VM, daemon and pool workers are the harness's own; vendor code cannot start one
    '--allow-child-process', // the crash checks fork a child of the harness's own
    '--disable-warning=ExperimentalWarning',
    '--disable-warning=SecurityWarning',
    entry,
  ]
  const env = { PATH: '/usr/bin:/bin', TMPDIR: scratch, HOME: scratch, LANG: 'C.UTF-8' }
  if (sandbox.kind === 'none') return { file: process.execPath, args: node, env }
  const binds: string[] = []
  const execDir = path.dirname(fs.realpathSync(process.execPath))
  if (!execDir.startsWith('/usr/')) binds.push('--ro-bind', execDir, execDir)
  for (const p of [dist, path.join(root, 'package.json'), ...mods]) binds.push('--ro-bind', p, p)
  binds.push('--bind', scratch, scratch)
  const envArgs = Object.entries(env).flatMap(([k, v]) => ['--setenv', k, v])
  return { file: bwrapPath(), args: [...baseArgs(), ...binds, ...envArgs, '--chdir', scratch, '--', process.execPath, ...node], env: {} }
}
