/**
 * The lifecycle suite's packages and hosts: the check's own signing key, altered copies of the
 * vendor's package, a cluster that trusts them, snapshots of a host's state, and a loopback HTTP
 * server to download from.
 */
import * as fs from 'node:fs'
import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import * as path from 'node:path'
import { create as createTar } from 'tar'
import { Cluster, type Host } from '../../harness/framework/index.js'
import { buildPackage, generateKeyPair, readPrivateKey } from '../../harness/framework/package/index.js'
import type { CheckContext } from '../../harness/certify/context.js'
import type { SubjectData } from '../../harness/certify/subject.js'

/**
 * Copies a package's extracted files. Not fs.cpSync: it stats every parent folder of the target,
 * which the sandboxed subject may not read.
 */
function copyTree(from: string, to: string): void {
  fs.mkdirSync(to, { recursive: true })
  for (const e of fs.readdirSync(from, { withFileTypes: true })) {
    const a = path.join(from, e.name)
    const b = path.join(to, e.name)
    if (e.isDirectory()) copyTree(a, b)
    else if (e.isFile()) fs.copyFileSync(a, b)
  }
}

// ---- keys, copies, clusters ----

/** The check's own signing key, for the copies of packages it alters. */
export interface OwnKey {
  readonly pem: string
  readonly fingerprint: string
}

export async function ownKey(ctx: CheckContext): Promise<OwnKey> {
  const k = await generateKeyPair(path.join(ctx.tmpDir('key'), 'harness'))
  return { pem: await readPrivateKey(k.privateKeyPath), fingerprint: k.fingerprint }
}

/**
 * A cluster of `hosts` hosts without the filter, set up as a certify run's hosts are: acceptance
 * level CommunitySupported, trusting the package's key, the upgrade source's and the check's own
 * (made here when the check signs nothing itself).
 */
export async function packageCluster(ctx: CheckContext, hosts: number, key?: OwnKey): Promise<Cluster> {
  key ??= await ownKey(ctx)
  const c = await ctx.cluster({ hosts: 0, install: false })
  const keys = [ctx.subject.keyFingerprint, ctx.options.upgradeFrom?.keyFingerprint, key.fingerprint].filter((k): k is string => typeof k === 'string')
  for (let i = 1; i <= hosts; i++) await c.addHost(`esx${i}`, { acceptanceLevel: 'CommunitySupported', trustedKeys: [...new Set(keys)] })
  return c
}

/** The package's descriptor flags for an operation (absent flags are false). */
export function flagsOf(descriptor: Record<string, unknown>, op: 'install' | 'upgrade' | 'uninstall'): { maintenanceMode: boolean; reboot: boolean } {
  const f = (descriptor[op] ?? {}) as { maintenanceMode?: unknown; reboot?: unknown }
  return { maintenanceMode: f.maintenanceMode === true, reboot: f.reboot === true }
}

/** A copy of a package with descriptor fields changed, rebuilt and signed with the check's key. */
export async function harnessCopy(ctx: CheckContext, from: SubjectData, key: OwnKey, change: Record<string, unknown>, label: string): Promise<string> {
  if (from.root === null) throw new Error(`the package ${from.source} has no extracted files`)
  const dir = ctx.tmpDir(`copy-${label}`)
  const stage = path.join(dir, 'package')
  copyTree(from.root, stage)
  const { files: _files, signature: _signature, ...metadata } = from.descriptor
  fs.writeFileSync(path.join(stage, 'descriptor.json'), JSON.stringify({ ...metadata, ...change }, null, 2))
  return (await buildPackage(stage, { keyPem: key.pem, out: path.join(dir, `${label}.tgz`) })).path
}

/** Regular files under `dir`, relative and sorted (directories the host keeps empty are not files). */
export function filesUnder(dir: string): string[] {
  const out: string[] = []
  const walk = (rel: string) => {
    let entries: fs.Dirent[]
    try {
      entries = fs.readdirSync(path.join(dir, rel), { withFileTypes: true })
    } catch {
      return
    }
    for (const e of entries) {
      const p = rel === '' ? e.name : `${rel}/${e.name}`
      if (e.isDirectory()) walk(p)
      // a state file's temp twin lives only between its write and its rename
      else if (!(e.name.startsWith('.') && e.name.endsWith('.tmp'))) out.push(p)
    }
  }
  walk('')
  return out.sort()
}

/** A gzip tarball of the files under `root`, as a package is shipped. */
async function tarballOf(root: string, out: string): Promise<Buffer> {
  await createTar({ gzip: true, file: out, cwd: root, portable: true }, filesUnder(root))
  return fs.readFileSync(out)
}

/** The package's bytes as a download serves them (a directory package is packed as it is). */
export async function packageBytes(ctx: CheckContext, s: SubjectData): Promise<Buffer> {
  if (fs.statSync(s.source).isFile()) return fs.readFileSync(s.source)
  return tarballOf(s.root!, path.join(ctx.tmpDir('tar'), 'package.tgz'))
}

/** The package with one byte of its entry file changed and its descriptor (hashes, signature) kept. */
export async function tamperedBytes(ctx: CheckContext, s: SubjectData): Promise<{ bytes: Buffer; file: string }> {
  const dir = ctx.tmpDir('tampered')
  const stage = path.join(dir, 'package')
  copyTree(s.root!, stage)
  const file = String(s.descriptor.entry)
  const p = path.join(stage, file)
  const b = fs.readFileSync(p)
  b[b.length >> 1] ^= 0x20
  fs.writeFileSync(p, b)
  return { bytes: await tarballOf(stage, path.join(dir, 'tampered.tgz')), file }
}

/** The package's bytes with a run of bytes flipped in the middle of the compressed stream. */
export function flippedBytes(bytes: Buffer): Buffer {
  const out = Buffer.from(bytes)
  const at = out.length >> 1
  for (let i = at; i < Math.min(out.length - 8, at + 16); i++) out[i] = out[i]! ^ 0xff
  return out
}

/** What one host's state looks like on disk: its state file and its files. */
export interface HostSnapshot {
  readonly state: string
  readonly files: string[]
}

export function snapshot(h: Host): HostSnapshot {
  return { state: fs.readFileSync(h.stateFile, 'utf8'), files: filesUnder(h.dir) }
}

/** How a host differs from a snapshot, or null. */
export function changedSince(h: Host, before: HostSnapshot): Record<string, unknown> | null {
  const now = snapshot(h)
  const added = now.files.filter(f => !before.files.includes(f))
  const removed = before.files.filter(f => !now.files.includes(f))
  if (now.state === before.state && added.length === 0 && removed.length === 0) return null
  return { stateChanged: now.state !== before.state, filesAdded: added, filesRemoved: removed }
}

// ---- a loopback HTTP server ----

/** An answer: the bytes to send, or an HTTP status. */
export type Answer = Buffer | number

export interface Served {
  readonly port: number
  url(p: string): string
  /** Paths requested, in order. */
  readonly requests: string[]
}

/**
 * An HTTP server on 127.0.0.1 (an ephemeral port unless `port` is given), closed when the check
 * ends. The n-th request of a path gets the n-th answer listed for it (the last from then on).
 */
export async function serve(ctx: CheckContext, routes: Record<string, Answer[]>, port = 0): Promise<Served> {
  const requests: string[] = []
  const server = http.createServer((req, res) => {
    const p = req.url ?? '/'
    const nth = requests.filter(r => r === p).length
    requests.push(p)
    const list = routes[p]
    const a = list === undefined ? 404 : list[Math.min(nth, list.length - 1)]!
    if (typeof a === 'number') res.writeHead(a).end()
    else res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': a.length }).end(a)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve())
  })
  ctx.defer(async () => {
    server.closeAllConnections()
    await new Promise<void>(resolve => server.close(() => resolve()))
  })
  const bound = (server.address() as AddressInfo).port
  return { port: bound, url: p => `http://127.0.0.1:${bound}${p}`, requests }
}

/** A loopback port that nothing listens on (a server's, closed again). */
export async function closedPort(): Promise<number> {
  const s = http.createServer()
  await new Promise<void>(resolve => s.listen(0, '127.0.0.1', () => resolve()))
  const port = (s.address() as AddressInfo).port
  await new Promise<void>(resolve => s.close(() => resolve()))
  return port
}
