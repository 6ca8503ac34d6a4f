// Packages and signs each built reference filter: dist/packages/<vendor>_<name>_<version>.tgz.
// The signing key is the build's own (dist/keys), created on first use.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'

const root = new URL('..', import.meta.url).pathname
const { buildPackage, generateKeyPair, readPrivateKey } = await import(join(root, 'dist/harness/framework/package/index.js'))
const keys = join(root, 'dist/keys')
if (!existsSync(join(keys, 'private.pem'))) await generateKeyPair(keys)
const keyPem = await readPrivateKey(join(keys, 'private.pem'))
const out = join(root, 'dist/packages')
mkdirSync(out, { recursive: true })
for (const name of readdirSync(join(root, 'reference-filters'))) {
  const src = join(root, 'reference-filters', name)
  const built = join(root, 'dist/reference-filters', name)
  if (!existsSync(join(src, 'descriptor.json')) || !existsSync(join(built, 'filter.js'))) continue
  const stage = mkdtempSync(join(tmpdir(), `iofcert-pkg-${name}-`))
  try {
    cpSync(join(src, 'descriptor.json'), join(stage, 'descriptor.json'))
    // the entry and the modules it imports: every .js the folder compiled to
    for (const f of readdirSync(built)) if (f.endsWith('.js')) cpSync(join(built, f), join(stage, f))
    const p = await buildPackage(stage, { keyPem, out: join(out, `${name}.tgz`) })
    process.stdout.write(`packaged ${p.path}\n`)
  } finally {
    rmSync(stage, { recursive: true, force: true })
  }
}
