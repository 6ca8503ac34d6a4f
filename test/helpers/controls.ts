/**
 * Packages a negative-control (or any test) filter module as a signed .tgz the way a vendor would,
 * so the certification harness sees it exactly as it sees a real package.
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { buildPackage, generateKeyPair, readPrivateKey } from '../../harness/framework/package/index.js'
import { importDescription } from '../../harness/framework/inspect.js'

const keyDir = path.join(os.tmpdir(), 'iofcert-test-keys')

async function testKey(): Promise<string> {
  if (!fs.existsSync(path.join(keyDir, 'private.pem'))) {
    try {
      await generateKeyPair(keyDir)
    } catch {
      // another test process made it first
    }
  }
  return readPrivateKey(path.join(keyDir, 'private.pem'))
}

/** The compiled path of a control module in test/controls. */
export function controlModule(name: string): string {
  return fileURLToPath(new URL(`../controls/${name}.js`, import.meta.url))
}

/**
 * The files a compiled module imports relatively from its own folder (`from './x.js'`), and the
 * files those import, transitively: relative to the module's folder, the module itself left out.
 */
export function siblingImports(modulePath: string): string[] {
  const dir = path.dirname(modulePath)
  const found = new Set<string>()
  const visit = (file: string) => {
    const text = fs.readFileSync(file, 'utf8')
    for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)['"](\.\/[^'"]+)['"]/g)) {
      const rel = path.relative(dir, path.resolve(path.dirname(file), m[1]!))
      if (rel.startsWith('..') || path.isAbsolute(rel) || found.has(rel) || path.resolve(dir, rel) === modulePath) continue
      found.add(rel)
      visit(path.join(dir, rel))
    }
  }
  visit(modulePath)
  return [...found].sort()
}

/**
 * Builds a signed package from a compiled module file. The descriptor is taken from the module's
 * own fields unless `descriptor` overrides them (to make a mismatch on purpose). The files the
 * module imports from its own folder go beside the entry, and so do the files in `with`.
 */
export async function packageModule(modulePath: string, o: { descriptor?: Record<string, unknown>; outDir?: string; sign?: boolean; with?: readonly string[] } = {}): Promise<string> {
  // read through the framework's loader, as install reads it: a filter may import iofcert/sdk
  const mod = (await importDescription(pathToFileURL(modulePath).href)) as Record<string, unknown>
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-ctl-'))
  fs.copyFileSync(modulePath, path.join(stage, 'filter.js'))
  for (const rel of siblingImports(modulePath)) {
    fs.mkdirSync(path.dirname(path.join(stage, rel)), { recursive: true })
    fs.copyFileSync(path.join(path.dirname(modulePath), rel), path.join(stage, rel))
  }
  for (const f of o.with ?? []) fs.copyFileSync(f, path.join(stage, path.basename(f)))
  const descriptor = {
    descriptorVersion: 1,
    name: mod.name,
    vendor: mod.vendor,
    version: mod.version,
    class: mod.class,
    summary: `test filter ${String(mod.name)}`,
    releaseDate: '2026-11-01',
    abiVersion: mod.abiVersion,
    entry: 'filter.js',
    acceptanceLevel: 'PartnerSupported',
    install: { maintenanceMode: false, reboot: false },
    upgrade: { maintenanceMode: false, reboot: false },
    uninstall: { maintenanceMode: false, reboot: false },
    ...o.descriptor,
  }
  fs.writeFileSync(path.join(stage, 'descriptor.json'), JSON.stringify(descriptor, null, 2))
  const outDir = o.outDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-ctlpkg-'))
  const built = await buildPackage(stage, { ...(o.sign === false ? {} : { keyPem: await testKey() }), out: path.join(outDir, `${String(mod.name)}.tgz`) })
  fs.rmSync(stage, { recursive: true, force: true })
  return built.path
}

/** The bundled, signed reference package (built by `npm run build`). */
export function referencePackage(name: 'passthrough' | 'cache' | 'cdp'): string {
  return fileURLToPath(new URL(`../../packages/${name}.tgz`, import.meta.url)) // dist/packages
}

/** Certifies a package programmatically (quick) and returns the report's check statuses by id. */
export async function certifyStatuses(pkg: string, o: { grep?: string; seed?: number; upgradeFrom?: string } = {}): Promise<{ statuses: Record<string, string>; doc: import('../../reports/document.js').CertReport }> {
  const { certify } = await import('../../harness/certify/runner.js')
  const doc = await certify({ package: pkg, quick: true, seed: o.seed ?? 1, ...(o.grep ? { grep: o.grep } : {}), ...(o.upgradeFrom ? { upgradeFrom: o.upgradeFrom } : {}) })
  return { statuses: Object.fromEntries(doc.checks.map(c => [c.id, c.status])), doc }
}
