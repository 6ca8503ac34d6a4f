/** `iofcert init <dir>`: flags → options → scaffold(). */
import type { Command } from 'commander'
import { BadInput, IofError } from '../framework/index.js'
import { exitCodeOf } from './exit-codes.js'
import { scaffold } from '../scaffold/index.js'

interface InitFlags {
  name?: string
  vendor?: string
  class?: string
  shards?: string
  iofcert?: string
}

export function registerInitCommand(program: Command): void {
  program
    .command('init')
    .description('make a filter project in <dir>: a typed cache filter in TypeScript, its descriptor, a unit test, build/test/package/certify scripts and a CI workflow')
    .argument('<dir>', 'a new or empty directory')
    .option('--name <name>', "the filter's name (default: the directory's name)")
    .option('--vendor <vendor>', 'the vendor, 2–16 letters and digits', 'Example')
    .option('--class <class>', "the filter's class (cache)", 'cache')
    .option('--shards <n>', "shards of the CI workflow's certification matrix", '4')
    .option('--iofcert <spec>', 'the npm spec the project depends on iofcert by (default: this iofcert, packed into <dir>/vendor/)')
    .action(async (dir: string, f: InitFlags) => {
      try {
        if (f.shards !== undefined && !/^\d+$/.test(f.shards)) throw BadInput({ message: `--shards must be an integer from 1 to 64, got "${f.shards}"` })
        const made = await scaffold(dir, {
          ...(f.name !== undefined ? { name: f.name } : {}),
          ...(f.vendor !== undefined ? { vendor: f.vendor } : {}),
          ...(f.class !== undefined ? { class: f.class } : {}),
          ...(f.shards !== undefined ? { shards: Number(f.shards) } : {}),
          ...(f.iofcert !== undefined ? { iofcertSpec: f.iofcert } : {}),
        })
        process.stdout.write(`${made.dir}: ${made.filterId} (cache)\n${made.files.map(p => `  ${p}\n`).join('')}next:\n  cd ${dir}\n  npm install\n  npm test\n  npm run certify\n`)
      } catch (e) {
        if (e instanceof IofError) {
          process.stderr.write(`iofcert init: ${e.message}\n`)
          process.exitCode = exitCodeOf(e, 'init')
          return
        }
        process.stderr.write(`iofcert init: internal error: ${e instanceof Error ? e.message : String(e)}\n`)
        process.exitCode = exitCodeOf(e, 'init')
      }
    })
}
