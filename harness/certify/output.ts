/** Writes a run's report in the formats asked for; every JSON report is schema-checked first. */
import { createPrivateKey } from 'node:crypto'
import * as fs from 'node:fs'
import { ReportInvalid, signReport, validateReport, withPerformanceFindings, writeReportFiles, type CertReport } from '../../reports/index.js'
import { BadInput } from '../framework/index.js'

export interface OutputOptions {
  /** JSON report path, or '-' for stdout. */
  readonly json?: string
  readonly html?: string
  readonly junit?: string
  /** Ed25519 private key (PEM file) to sign the report with. */
  readonly sign?: string
  /** The package's path as the user gave it, for the rerun lines of the HTML and JUnit reports. */
  readonly package?: string
}

/**
 * Completes the report's performance findings (the environment's noise, the marginal flags, from
 * the checks' evidence), signs it (when asked), validates and writes it; returns the document as
 * written.
 */
export async function writeOutputs(doc: CertReport, o: OutputOptions): Promise<CertReport> {
  let out = withPerformanceFindings(doc)
  if (o.sign !== undefined) {
    const pem = readSigningKey(o.sign)
    out = signReport(out, pem)
  }
  const v = validateReport(out)
  if (!v.ok) throw ReportInvalid(v.errors, 'its outputs (a harness bug)')
  await writeReportFiles(out, o)
  return out
}

/**
 * Reads an Ed25519 private key (PEM) to sign a report with; a missing, unreadable, encrypted or
 * non-Ed25519 key is bad input (exit 2). `iofcert certify` reads it before the run, so a bad key
 * does not cost a whole run.
 */
export function readSigningKey(file: string): string {
  let pem: string
  try {
    pem = fs.readFileSync(file, 'utf8')
  } catch (e) {
    throw BadInput({ message: `cannot read signing key ${file}: ${(e as Error).message}` })
  }
  let type: string | undefined
  try {
    type = createPrivateKey(pem).asymmetricKeyType
  } catch (e) {
    const encrypted = (e as NodeJS.ErrnoException).code === 'ERR_MISSING_PASSPHRASE'
    throw BadInput({ message: `signing key ${file} is ${encrypted ? 'an encrypted private key; give an unencrypted one' : 'not a PEM private key'}` })
  }
  if (type !== 'ed25519') throw BadInput({ message: `signing key ${file} is a ${type ?? 'unknown'} key, not an Ed25519 private key` })
  return pem
}
