/**
 * `iofcert package` and `iofcert keygen`: flags → options → library call.
 */
import type { Command } from 'commander'
import { IofError } from '../framework/index.js'
import { exitCodeOf } from './exit-codes.js'
import { PACKAGE_REFUSED, buildPackage, describeSize, filterId, fingerprint, generateKeyPair, readPrivateKey } from '../framework/package/index.js'

/** Adds the `package` and `keygen` commands to `program`. */
export function registerPackageCommands(program: Command): void {
  program
    .command('package')
    .description('build a filter package (.tgz) from a directory holding descriptor.json, bundling its production dependencies; refuses what certification would refuse')
    .argument('<dir>', 'the filter directory')
    .option('--key <private.pem>', 'Ed25519 private key (PKCS#8 PEM) to sign with; unsigned without it')
    .option('--out <file.tgz>', 'the package to write (default: <vendor>_<name>_<version>.tgz here)')
    .action(async (dir: string, opts: { key?: string; out?: string }, cmd: Command) => {
      await reportErrors(cmd, async () => {
        const keyPem = opts.key === undefined ? undefined : await readPrivateKey(opts.key)
        const built = await buildPackage(dir, {
          check: true,
          ...(keyPem === undefined ? {} : { keyPem }),
          ...(opts.out === undefined ? {} : { out: opts.out }),
        })
        const sig = built.descriptor.signature
        const signedBy = sig === undefined ? 'unsigned' : `signed by key ${fingerprint(sig.publicKey)}`
        write(cmd, `${built.path}\n  ${filterId(built.descriptor)} (${built.descriptor.class}, ${built.descriptor.acceptanceLevel}, ${signedBy})\n  ${describeSize(built.size)}\n  sha256 ${built.sha256}\n`)
        for (const warning of built.warnings) writeErr(cmd, `iofcert ${cmd.name()}: warning: ${warning}\n`)
      })
    })

  program
    .command('keygen')
    .description('create an Ed25519 signing key pair: <dir>/private.pem and <dir>/public.pem')
    .requiredOption('--out <dir>', 'directory to create the key pair in')
    .action(async (opts: { out: string }, cmd: Command) => {
      await reportErrors(cmd, async () => {
        const pair = await generateKeyPair(opts.out)
        write(cmd, `${pair.privateKeyPath}\n${pair.publicKeyPath}\n  fingerprint ${pair.fingerprint}\n`)
      })
    })
}

/**
 * A package that certification or install would refuse is one line and exit code 1; bad input
 * is one clear line and exit code 2; anything else is a fault of the tool (3).
 */
async function reportErrors(cmd: Command, run: () => Promise<void>): Promise<void> {
  try {
    await run()
  } catch (err) {
    const exitCode = exitCodeOf(err, 'package')
    // a rule refused the package, not its usage: no hint about --help
    if (err instanceof IofError && err.code === PACKAGE_REFUSED) cmd.showHelpAfterError(false)
    if (err instanceof IofError) cmd.error(`iofcert ${cmd.name()}: ${err.message}`, { exitCode, code: err.code })
    cmd.error(`iofcert ${cmd.name()}: internal error: ${err instanceof Error ? err.message : String(err)}`, { exitCode, code: 'iofcert.internal' })
  }
}

function write(cmd: Command, text: string): void {
  const out = cmd.configureOutput().writeOut ?? ((s: string) => process.stdout.write(s))
  out(text)
}

function writeErr(cmd: Command, text: string): void {
  const err = cmd.configureOutput().writeErr ?? ((s: string) => process.stderr.write(s))
  err(text)
}
