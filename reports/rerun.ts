/**
 * The command line that reruns one check of a report: the same seed, profile and workload size,
 * only that check. Reports show it beside every failed or errored check.
 */
import type { CertReport } from './document.js'

/** Quotes `s` for a POSIX shell when it needs it. */
function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%^+-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`
}

/**
 * `iofcert certify <package> --grep '^<id>$' --seed <n>` (with `--quick`, `--certified` and
 * `--profile` as the run had them). `pkg` is the package's path when the caller knows it; the
 * report itself names the package only by id, so the default is `<filter id>.tgz`.
 */
export function rerunCommand(doc: Pick<CertReport, 'seed' | 'filter' | 'profile' | 'options'>, checkId: string, pkg?: string): string {
  const parts = ['iofcert', 'certify', shellQuote(pkg ?? `${doc.filter.id}.tgz`), '--grep', `'^${checkId.replaceAll('.', '\\.')}$'`, '--seed', String(doc.seed)]
  if (doc.options?.quick === true) parts.push('--quick')
  if (doc.options?.certified === true) parts.push('--certified')
  if (doc.profile.name !== 'default') parts.push('--profile', shellQuote(doc.profile.name))
  // the upgrade check needs the older package the run was given; the report names it only by its role
  if (checkId === 'lifecycle.upgrade') parts.push('--upgrade-from', "'<older package>'")
  return parts.join(' ')
}
