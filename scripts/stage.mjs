// Copies the non-TypeScript files the built tree needs (JSON schemas, descriptors) next to the
// compiled JavaScript, so dist/ is self-contained.
import { cpSync, mkdirSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const roots = ['harness', 'reports', 'reference-filters', 'suites', 'test']
function walk(dir) {
  let entries
  try { entries = readdirSync(dir) } catch { return }
  for (const name of entries) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) walk(p)
    else if (name.endsWith('.json')) {
      const to = join(root, 'dist', relative(root, p))
      mkdirSync(dirname(to), { recursive: true })
      cpSync(p, to)
    }
  }
}
for (const r of roots) walk(join(root, r))
