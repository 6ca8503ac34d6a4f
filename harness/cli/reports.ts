/**
 * The report commands: `report merge | html | junit | sign`, `publish` and `verify`. Each maps
 * its flags to a call of the reports library and nothing more.
 *
 * Exit codes are set on `process.exitCode`, never by exiting, so the caller's cleanup runs:
 * - 0: the command succeeded (`verify`: the report is valid);
 * - 1: `verify` found the report invalid (or, with `--trust`, breaking a rule of the trust file),
 *   `publish` refused a report (without `--trust` nothing is published; with it the report is
 *   left out of a listing that is still written), or `report merge` produced a not-ready report
 *   (the merged verdict gates like `certify`);
 * - 2: bad input — an unreadable or invalid input file, key or trust file, or (`report sign`) a
 *   report that is not consistent, so its signature would not verify — with one line on stderr;
 * - 3: a report the harness would write is invalid (a harness fault; nothing is written).
 * Errors of the reports module's catalogue (reports/errors.ts) become that one line and the exit
 * code of their kind (harness/cli/exit-codes.ts); any other error is rethrown for the top-level handler.
 */
import { readFile } from 'node:fs/promises'
import { createPrivateKey } from 'node:crypto'
import type { Command } from 'commander'
import {
  assessmentReasons, assessReport, countChecks, describeNarrowing, isReportError, KeyUnreadable, mergeReports, publish, readJsonFile, readPublicKeyFile,
  readReport, readTrustFile, ReportInconsistent, runNarrowing, signReport, verificationParts, writeReportFiles, type CertReport,
} from '../../reports/index.js'
import { exitCodeOf } from './exit-codes.js'

/** Adds `report merge|html|junit|sign`, `publish` and `verify` to the program. */
export function registerReportCommands(program: Command): void {
  const report = program.command('report').description('merge report shards, render a report as HTML or JUnit XML, or sign it')

  report
    .command('merge')
    .description('merge the shards of one run into the report of the whole catalogue')
    .argument('<report.json...>', 'shard reports of one run (same filter, seed and profile)')
    .requiredOption('--out <file>', 'merged report file, or - for stdout')
    .action(guard(async (files: string[], opts: { out: string }) => {
      const merged = mergeReports(await Promise.all(files.map(readReport)))
      await writeReportFiles(merged, { json: opts.out })
      const c = countChecks(merged.checks)
      process.stderr.write(`merged ${files.length} reports: ${merged.verdict} (${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped, ${c.errored} errored)\n`)
      return merged.verdict === 'ready' ? 0 : 1
    }))

  report
    .command('html')
    .description('render a report as one self-contained HTML page')
    .argument('<report.json>', 'report file')
    .requiredOption('--out <file>', 'HTML file, or - for stdout')
    .action(guard(async (file: string, opts: { out: string }) => {
      await writeReportFiles(await readReport(file), { html: opts.out })
      return 0
    }))

  report
    .command('junit')
    .description('render a report as JUnit XML for CI')
    .argument('<report.json>', 'report file')
    .requiredOption('--out <file>', 'XML file, or - for stdout')
    .action(guard(async (file: string, opts: { out: string }) => {
      await writeReportFiles(await readReport(file), { junit: opts.out })
      return 0
    }))

  report
    .command('sign')
    .description('sign a report with an Ed25519 key after the run (replacing any earlier signature)')
    .argument('<report.json>', 'report file')
    .requiredOption('--key <private.pem>', 'Ed25519 private key (PEM), as iofcert keygen writes it')
    .option('--out <file>', 'signed report file, or - for stdout (default: the report file, replaced atomically)')
    .action(guard(async (file: string, opts: { key: string; out?: string }) => {
      const doc = await readReport(file)
      // a report whose verdict, counts or thresholds do not follow from its checks would be signed but never verify
      const inconsistent = verificationParts(doc).consistency
      if (inconsistent.length > 0) {
        throw ReportInconsistent({ file, reasons: inconsistent })
      }
      const pem = await readPrivateKeyFile(opts.key)
      const old = doc.signature
      const signed = signReport(doc, pem)
      const out = opts.out ?? file
      await writeReportFiles(signed, { json: out })
      const fp = signed.signature!.keyFingerprint
      const replaced = old === undefined ? '' : old.keyFingerprint === fp ? ' (replacing its earlier signature by the same key)' : ` (replacing its earlier signature by key ${old.keyFingerprint})`
      process.stderr.write(`signed ${file} with key ${fp}${replaced}${out === file ? '' : `; wrote ${out === '-' ? 'stdout' : out}`}\n`)
      return 0
    }))

  program
    .command('publish')
    .description('build the compatibility listing site from verified reports')
    .argument('<report.json...>', 'signed report files')
    .requiredOption('--out <dir>', 'site directory (replaced if it holds an earlier listing)')
    .option('--key <public.pem>', 'list only reports signed by this public key')
    .option('--trust <trust.json>', 'list only reports the trust file accepts (known vendor and package key, listed certifier); name the others and exit 1')
    .action(guard(async (files: string[], opts: { out: string; key?: string; trust?: string }) => {
      const trust = opts.trust === undefined ? undefined : await readTrustFile(opts.trust)
      const publicKeyPem = opts.key === undefined ? undefined : await readPublicKeyFile(opts.key)
      const listing = await publish(files, opts.out, {
        ...(publicKeyPem === undefined ? {} : { publicKeyPem }),
        ...(trust === undefined ? {} : { trust }),
        onRefused: (file, reasons) => process.stderr.write(`iofcert: refused ${file}: ${reasons.join('; ')}\n`),
      })
      const partial = listing.entries.filter(e => e.verdict === 'partial').length
      const ready = listing.entries.filter(e => e.verdict === 'ready').length
      const made = trust === undefined
        ? 'made without a trust file: vendor names, package keys and certifier keys were not checked'
        : `${listing.refused.length} refused by trust file ${opts.trust}`
      process.stderr.write(`published ${listing.entries.length} report${listing.entries.length === 1 ? '' : 's'} (${ready} ready, ${partial} partial) to ${opts.out}/index.html; ${made}\n`)
      return listing.refused.length > 0 ? 1 : 0
    }))

  program
    .command('verify')
    .description('check a report: schema, signature and internal consistency')
    .argument('<report.json>', 'report file')
    .option('--key <public.pem>', 'require the signature to be made by this public key')
    .option('--trust <trust.json>', 'also require the vendor and its package key to be in the trust file, and the report signed by a certifier it lists')
    .action(guard(async (file: string, opts: { key?: string; trust?: string }) => {
      const trust = opts.trust === undefined ? undefined : await readTrustFile(opts.trust)
      const publicKeyPem = opts.key === undefined ? undefined : await readPublicKeyFile(opts.key)
      const doc = await readJsonFile(file)
      const result = assessReport(doc, { ...(publicKeyPem === undefined ? {} : { publicKeyPem }), ...(trust === undefined ? {} : { trust }) })
      if (result.ok) {
        const report = doc as CertReport
        const narrowed = runNarrowing(report.options)
        const partial = narrowed === undefined ? '' : `; a partial run (${describeNarrowing(narrowed)}), never listed as ready`
        const trusted = trust === undefined ? '' : `; trusted by ${opts.trust}: certifier ${JSON.stringify(result.certifier)}, vendor ${JSON.stringify(report.filter.vendor)}`
        process.stdout.write(`valid: ${file} (signed by ${result.keyFingerprint}${partial}${trusted})\n`)
        return 0
      }
      // A report that verifies but breaks a trust rule is untrusted; one that fails verification is invalid.
      process.stdout.write(`${result.invalid.length > 0 ? 'invalid' : 'untrusted'}: ${file}: ${assessmentReasons(result).join('; ')}\n`)
      return 1
    }))
}

/** Reads a PEM Ed25519 private key file; `KeyUnreadable` (exit code 2) when it is missing or not one. */
async function readPrivateKeyFile(file: string): Promise<string> {
  let pem: string
  try {
    pem = await readFile(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw KeyUnreadable(file, code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (err as Error).message, err)
  }
  let type: string | undefined
  try {
    type = createPrivateKey(pem).asymmetricKeyType
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw KeyUnreadable(file, code === 'ERR_MISSING_PASSPHRASE' ? 'an encrypted private key; give an unencrypted one' : 'not a PEM private key', err)
  }
  if (type !== 'ed25519') throw KeyUnreadable(file, `a ${type ?? 'unknown'} key, not an Ed25519 private key`)
  return pem
}

/** Runs an action, mapping its result and the reports module's coded errors to an exit code. */
function guard<A extends unknown[]>(action: (...args: A) => Promise<number>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      process.exitCode = await action(...args)
    } catch (err) {
      if (!isReportError(err)) throw err
      process.stderr.write(`iofcert: ${err.message.replace(/\s*\n\s*/g, ' ')}\n`)
      process.exitCode = exitCodeOf(err, 'report')
    }
  }
}
