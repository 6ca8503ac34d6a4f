/**
 * Fixtures of the lifecycle tests: signed filter packages whose module records its import in a
 * marker file (so a test can prove refused code never ran), notes open/close reasons in its
 * sidecar and daemon start/stop in a log; a loopback HTTP server serving good and bad downloads;
 * a three-host cluster trusting the test key.
 */
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { Cluster } from '../harness/framework/cluster.js'
import type { AcceptanceLevel } from '../harness/framework/host.js'
import { buildPackage, fingerprint, generateKeyPair } from '../harness/framework/package/index.js'
import { metadata, writeFilterDir, type Scratch } from './package-fixtures.js'

/** A signing key of the tests. */
export interface TestKey {
  readonly privatePem: string
  readonly publicPem: string
  readonly publicPath: string
  readonly fingerprint: string
}

export async function testKey(dir: string): Promise<TestKey> {
  const pair = await generateKeyPair(dir)
  const publicPem = await readFile(pair.publicKeyPath, 'utf8')
  return { privatePem: await readFile(pair.privateKeyPath, 'utf8'), publicPem, publicPath: pair.publicKeyPath, fingerprint: fingerprint(publicPem) }
}

/** What a test package is made of. */
export interface PackageSpec {
  readonly name?: string
  readonly vendor?: string
  readonly version?: string
  readonly cls?: string
  readonly acceptanceLevel?: AcceptanceLevel
  readonly abiVersion?: number
  readonly install?: { maintenanceMode: boolean; reboot: boolean }
  readonly upgrade?: { maintenanceMode: boolean; reboot: boolean }
  readonly uninstall?: { maintenanceMode: boolean; reboot: boolean }
  /** Give the filter a daemon that logs start and stop. */
  readonly daemon?: boolean
  /** Overrides of the module's default export fields (source text). */
  readonly module?: Record<string, string>
  /** Module code run at import, after the marker is written (top-level await allowed). */
  readonly prelude?: string
  /** Sign with this key; unsigned without. */
  readonly key?: TestKey | null
  /** Directory name under the scratch dir (default `<name>-<version>`). */
  readonly as?: string
}

/** A built package. */
export interface TestPackage {
  readonly dir: string
  readonly tgz: string
  readonly id: string
  /** The file the module appends to when it is imported. */
  readonly marker: string
  /** The daemon's log. */
  readonly log: string
}

/** Builds a filter package (directory and signed .tgz) in the scratch directory. */
export async function makePackage(s: Scratch, spec: PackageSpec = {}): Promise<TestPackage> {
  const name = spec.name ?? 'cdp'
  const vendor = spec.vendor ?? 'ACME'
  const version = spec.version ?? '1.0.0'
  const cls = spec.cls ?? 'replication'
  const as = spec.as ?? `${name}-${version}`
  const marker = join(s.dir, `${as}.marker`)
  const log = join(s.dir, `${as}.log`)
  const descriptor = metadata({
    name, vendor, version, class: cls,
    abiVersion: spec.abiVersion ?? 1,
    acceptanceLevel: spec.acceptanceLevel ?? 'PartnerSupported',
    install: spec.install ?? { maintenanceMode: false, reboot: false },
    upgrade: spec.upgrade ?? { maintenanceMode: false, reboot: false },
    uninstall: spec.uninstall ?? { maintenanceMode: false, reboot: false },
  })
  const fields: Record<string, string> = {
    abiVersion: String(spec.abiVersion ?? 1),
    name: JSON.stringify(name),
    vendor: JSON.stringify(vendor),
    version: JSON.stringify(version),
    class: JSON.stringify(cls),
    open: `async (disk) => { await note(disk.sidecar, 'open ${version}'); return { async close(reason) { await note(disk.sidecar, 'close ${version} ' + reason) } } }`,
    ...(spec.daemon === true ? { daemon: `(ctx) => { appendFile(${JSON.stringify(log)}, 'start ${version} ' + ctx.host + '\\n'); return { stop() { appendFile(${JSON.stringify(log)}, 'stop ${version} ' + ctx.host + '\\n') } } }` } : {}),
    ...spec.module,
  }
  const source = [
    // a filter may not import node:fs: iofcert/test-fixture writes in the scratch directory (see package-fixtures)
    "import { appendFile, exists } from 'iofcert/test-fixture'",
    `appendFile(${JSON.stringify(marker)}, 'imported ${version}\\n')`,
    spec.prelude ?? '',
    'const enc = new TextEncoder()',
    // the sidecar keeps every line: it survives the upgrade, so both versions' lines are there
    'async function note(sc, line) { const b = enc.encode(line + "\\n"); await sc.write(await sc.size(), b); await sc.sync() }',
    `export default {\n${Object.entries(fields).map(([k, v]) => `  ${JSON.stringify(k)}: ${v},`).join('\n')}\n}`,
    '',
  ].join('\n')
  const dir = await writeFilterDir(s, as, { descriptor, source })
  const key = spec.key === undefined ? null : spec.key
  const built = await buildPackage(dir, { ...(key === null ? {} : { keyPem: key.privatePem }), out: join(s.dir, `${as}.tgz`) })
  return { dir, tgz: built.path, id: `${vendor}_${name}_${version}`, marker, log }
}

/** How the test server answers a path. */
export type Route =
  | { readonly kind: 'file'; readonly file: string }
  | { readonly kind: 'status'; readonly code: number }
  /** Headers, then nothing: the client's bounded timeout must end it. */
  | { readonly kind: 'stall' }
  /** Declares the whole length, sends `bytes` of it and closes the connection. */
  | { readonly kind: 'truncate'; readonly file: string; readonly bytes: number }
  /** Declares the whole length, sends `bytes` of it and keeps the connection open. */
  | { readonly kind: 'stall-after'; readonly file: string; readonly bytes: number }
  /** The n-th request of the path is answered by the n-th route (the last one from then on). */
  | { readonly kind: 'sequence'; readonly routes: readonly Route[] }

/** A loopback HTTP server on an ephemeral port. */
export interface TestServer {
  url(path: string): string
  /** The routes, changeable while the server runs. */
  readonly routes: Map<string, Route>
  /** Paths requested, in order. */
  readonly requests: string[]
  close(): Promise<void>
}

export async function serve(routes: Record<string, Route> = {}): Promise<TestServer> {
  const table = new Map(Object.entries(routes))
  const requests: string[] = []
  const server = http.createServer((req, res) => {
    const path = req.url ?? '/'
    const nth = requests.filter(r => r === path).length
    requests.push(path)
    let route = table.get(path)
    while (route?.kind === 'sequence') route = route.routes[Math.min(nth, route.routes.length - 1)]
    if (route === undefined) {
      res.writeHead(404).end('not found')
      return
    }
    switch (route.kind) {
      case 'file': {
        const body = readFileSync(route.file)
        res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': body.length }).end(body)
        return
      }
      case 'status':
        res.writeHead(route.code).end()
        return
      case 'stall':
        res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': 100_000 })
        res.flushHeaders()
        return
      case 'truncate':
      case 'stall-after': {
        const body = readFileSync(route.file)
        res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': body.length })
        res.write(body.subarray(0, route.bytes))
        if (route.kind === 'truncate') setImmediate(() => res.destroy())
        return
      }
    }
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: p => `http://127.0.0.1:${port}${p}`,
    routes: table,
    requests,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
    },
  }
}

/** A cluster of esx1..esx<n> whose hosts trust `key`; removed by `shutdown({ remove: true })`. */
export async function trustingCluster(key: TestKey, n = 3): Promise<Cluster> {
  const c = await Cluster.create({})
  for (let i = 1; i <= n; i++) await c.addHost(`esx${i}`, { trustedKeys: [key.fingerprint] })
  return c
}

/** The lines a filter noted in a disk's sidecar. */
export function sidecarLines(c: Cluster, disk: string, filterName: string): string[] {
  return readFileSync(c.sidecarPath(disk, filterName), 'utf8').split('\n').filter(l => l !== '')
}
