/**
 * `iofcert cluster`: an emulated cluster worked on by hand, one command at a time. Each command
 * opens the cluster from its directory, does one thing through the library and shuts it down
 * (see framework/lifecycle/session.ts for what is kept between commands, and how each command
 * survives being killed: `list` and `issues` only read, the lifecycle's operations record their
 * steps, every other command is one transaction).
 *
 * Exit codes: 0 done (or nothing to do); 1 refused by a rule — a host's issue, a policy the
 * hosts refuse, maintenance mode refused (the issue or reason is printed) — or the cluster is in
 * use by another command; 2 bad input, or a state file that does not read (one line naming it).
 * `--json` prints the result, or `{ "error": … }`, as JSON on stdout.
 */
import { Argument, InvalidArgumentError, type Command } from 'commander'
import Table from 'cli-table3'
import { BadInput, IofError } from '../framework/index.js'
import { exitCodeOf } from './exit-codes.js'
import {
  addDisks, createVm, deleteVm, initCluster, makePolicy, parseAcceptanceLevel, parseDiskSpec, readTrustedKey, removeDisks, setAcceptanceLevel, trustKey,
  withClusterSession, type ClusterSession, type FilterQueryResult, type HostIssue, type HostOutcome, type LifecycleOptions, type OperationResult, type SessionMode,
} from '../framework/lifecycle/index.js'

/** What a command prints and how it exits. */
interface Output {
  readonly exitCode: number
  readonly json: unknown
  readonly text: string
}

interface CommonOpts {
  json?: boolean
  timeoutMs?: number
  autoMaintenance?: boolean
}

const HELP_AFTER = `
Each command opens the cluster in <dir>, does one thing and shuts the cluster down. Between
commands a VM left powered on is powered on again (so it blocks maintenance mode), and a filter
pending reboot stays pending until 'iofcert cluster reboot'. Memory disks are emptied between
commands; give --disk <id>:<size>:file for data that must last.

Package URLs: a .tgz or an unpacked package directory, file://…, http://… or https://….
Trust: 'cluster init --trust key.pem' makes every host trust the key; 'cluster trust <dir>
key.pem [--host h]' adds it later.

State: a command killed at any instant (kill -9, power cut) leaves the cluster as it was before
the command or as it would be after it (install, upgrade, uninstall, resolve and host remove: each
host as before or after its own step, the others with OperationInterrupted, which resolve retries).
One command at a time: a second one is refused (exit 1) while the first runs. A state file that is
missing or does not read is one line naming it (exit 2).

Exit codes: 0 done, 1 refused by a rule (the host's issue is printed) or the cluster is in use,
2 bad input or unusable state.`

/** Adds `cluster …` to the program. */
export function registerClusterCommands(program: Command): void {
  const cluster = program.command('cluster').description('an emulated cluster: hosts, filter install/upgrade/uninstall, VMs and storage policies').addHelpText('after', HELP_AFTER)

  cluster
    .command('init')
    .description('create a cluster of N hosts (esx1 … esxN) in <dir>: --hosts <N> is required')
    .usage('<dir> --hosts <N> [options]')
    .addHelpText('after', '\nExample: iofcert cluster init lab --hosts 3 --trust keys/public.pem')
    .argument('<dir>', 'cluster directory (created)')
    .requiredOption('--hosts <N>', `(required) number of hosts, 1 to ${MAX_HOSTS}`, hostsArg)
    .option('--acceptance-level <level>', 'every host\'s acceptance level (VMwareCertified, VMwareAccepted, PartnerSupported, CommunitySupported)', 'PartnerSupported')
    .option('--trust <public.pem...>', 'public keys every host trusts')
    .option('--json', 'print JSON')
    .action(guard(async (dir: string, o: CommonOpts & { hosts: number; acceptanceLevel: string; trust?: string[] }) => {
      const trustedKeys = await Promise.all((o.trust ?? []).map(readTrustedKey))
      const r = await initCluster(dir, { hosts: o.hosts, acceptanceLevel: parseAcceptanceLevel(o.acceptanceLevel), trustedKeys })
      return ok(r, `cluster ${r.dir}: ${r.hosts.map(h => h.name).join(', ')} (${r.hosts[0]?.acceptanceLevel}, ${trustedKeys.length} trusted key${trustedKeys.length === 1 ? '' : 's'})`)
    }))

  withLifecycleOptions(cluster
    .command('install')
    .description('install a filter package on every host')
    .argument('<dir>', 'cluster directory')
    .argument('<url>', 'package: path (.tgz or directory), file://, http:// or https://'))
    .action(guard(async (dir: string, url: string, o: CommonOpts) => session(dir, o, async s => operation(await s.lifecycle.install(url)), 'steps')))

  withLifecycleOptions(cluster
    .command('upgrade')
    .description('upgrade an installed filter to a package of the same name, vendor and class with a higher version')
    .addHelpText('after', '\nThe filter to upgrade is named explicitly (as UpgradeIoFilter_Task names it), so a package of\nanother filter, or of a version that is not higher, is refused on every host (UpgradeNotApplicable)\ninstead of being installed beside it.')
    .argument('<dir>', 'cluster directory')
    .argument('<filterId>', 'the installed filter, e.g. ACME_cdp_1.2.0 (as iofcert cluster list shows it)')
    .argument('<url>', 'the new package: path, file://, http:// or https://'))
    .action(guard(async (dir: string, id: string, url: string, o: CommonOpts) => session(dir, o, async s => operation(await s.lifecycle.upgrade(id, url)), 'steps')))

  withLifecycleOptions(cluster
    .command('uninstall')
    .description('remove a filter from every host; when a host would refuse (disks use the filter, maintenance mode it cannot enter), no host is changed')
    .addHelpText('after', '\nEvery host is checked before any is changed. When a host would refuse, nothing is uninstalled:\nthe summary names each refusing host, why and what to do, and the command exits 1. A host that\nfails part way keeps the filter while the others uninstall; resolve finishes it.')
    .argument('<dir>', 'cluster directory')
    .argument('<filterId>', 'the installed filter'))
    .action(guard(async (dir: string, id: string, o: CommonOpts) => session(dir, o, async s => {
      const r = await s.lifecycle.uninstall(id)
      const vmOf = (host: string, disk: string) => [...(s.cluster.hosts.get(host)?.vms.values() ?? [])].find(v => v.disks.has(disk))?.name
      // the summary's commands can be pasted back into a shell
      return { ...operation(r), text: [renderOperation(r), ...uninstallSummary(r, shellWord(dir), shellWord(id), vmOf)].join('\n') }
    }, 'steps')))

  cluster
    .command('list')
    .description('the cluster\'s filters and their status on each host')
    .argument('<dir>', 'cluster directory')
    .option('--json', 'print JSON')
    .action(guard(async (dir: string, o: CommonOpts) => session(dir, o, async s => {
      const filters = s.lifecycle.query()
      const issues = s.lifecycle.issues()
      return withUnreadable(s, ok({ hosts: [...s.cluster.hosts.keys()], filters }, renderList([...s.cluster.hosts.keys()], filters, issues.length)), o.json === true)
    }, 'read')))

  cluster
    .command('issues')
    .description('each host\'s issues, of every filter or of one')
    .argument('<dir>', 'cluster directory')
    .argument('[filterId]', 'one filter (its id, also of a package every host refused, or the url of a package no host could read)')
    .option('--json', 'print JSON')
    .action(guard(async (dir: string, id: string | undefined, o: CommonOpts) => session(dir, o, async s => {
      const issues = s.lifecycle.issues(id)
      return withUnreadable(s, ok(issues, issues.length === 0 ? 'no issues' : issues.map(renderIssue).join('\n')), o.json === true)
    }, 'read')))

  withLifecycleOptions(cluster
    .command('resolve')
    .description('retry a filter\'s failed operation on every host with an issue (or on one host); a pending reboot is done in maintenance mode')
    .argument('<dir>', 'cluster directory')
    .argument('<filterId>', 'the filter (its id, also of a package every host refused, or the url of a package no host could read)')
    .option('--host <host>', 'only this host'))
    .action(guard(async (dir: string, id: string, o: CommonOpts & { host?: string }) => session(dir, o, async s => operation(await s.lifecycle.resolveInstallationErrors(id, o.host)), 'steps')))

  cluster
    .command('maintenance')
    .description('put a host in maintenance mode or take it out (refused while it has powered-on VMs)')
    .argument('<dir>', 'cluster directory')
    .argument('<host>', 'host name')
    .addArgument(new Argument('<state>', 'on or off').choices(['on', 'off']))
    .option('--json', 'print JSON')
    .action(guard(async (dir: string, host: string, state: 'on' | 'off', o: CommonOpts) => session(dir, o, async s => {
      const h = s.cluster.host(host)
      if (state === 'on') await h.enterMaintenance()
      else await h.exitMaintenance()
      return ok({ host, maintenance: h.maintenance }, `${host}: maintenance mode ${h.maintenance ? 'on' : 'off'}`)
    })))

  cluster
    .command('reboot')
    .description('reboot a host: its VMs shut down and power on again, filters pending reboot become active')
    .argument('<dir>', 'cluster directory')
    .argument('<host>', 'host name')
    .option('--json', 'print JSON')
    .action(guard(async (dir: string, host: string, o: CommonOpts) => session(dir, o, async s => {
      const h = await s.lifecycle.rebootHost(host)
      const filters = [...h.filters.values()].map(f => ({ id: f.info.id, status: f.status }))
      return ok({ host, filters }, `${host} rebooted${filters.length === 0 ? '' : `: ${filters.map(f => `${f.id} ${f.status}`).join(', ')}`}`)
    })))

  cluster
    .command('trust')
    .description('add a signing key to hosts\' trust stores')
    .argument('<dir>', 'cluster directory')
    .argument('<public.pem>', 'Ed25519 public key (SPKI PEM)')
    .option('--host <host...>', 'only these hosts (default: every host)')
    .option('--json', 'print JSON')
    .action(guard(async (dir: string, pem: string, o: CommonOpts & { host?: string[] }) => {
      const fp = await readTrustedKey(pem)
      return session(dir, o, async s => {
        const changed = trustKey(s.cluster, fp, o.host)
        return ok({ fingerprint: fp, hosts: changed }, changed.length === 0 ? `key ${fp} was already trusted` : `${changed.join(', ')} now trust key ${fp}`)
      })
    }))

  cluster
    .command('acceptance')
    .description('set hosts\' acceptance level')
    .argument('<dir>', 'cluster directory')
    .argument('<level>', 'VMwareCertified, VMwareAccepted, PartnerSupported or CommunitySupported')
    .option('--host <host...>', 'only these hosts (default: every host)')
    .option('--json', 'print JSON')
    .action(guard(async (dir: string, text: string, o: CommonOpts & { host?: string[] }) => {
      const level = parseAcceptanceLevel(text)
      return session(dir, o, async s => {
        setAcceptanceLevel(s.cluster, level, o.host)
        const hosts = o.host ?? [...s.cluster.hosts.keys()]
        return ok({ acceptanceLevel: level, hosts }, `${hosts.join(', ')}: acceptance level ${level}`)
      })
    }))

  const host = cluster.command('host').description('hosts joining or leaving the cluster')
  withLifecycleOptions(host
    .command('add')
    .description('add a host; it gets the cluster\'s filters')
    .argument('<dir>', 'cluster directory')
    .argument('<name>', 'host name')
    .option('--acceptance-level <level>', 'the host\'s acceptance level', 'PartnerSupported')
    .option('--trust <public.pem...>', 'public keys the host trusts'))
    .action(guard(async (dir: string, name: string, o: CommonOpts & { acceptanceLevel: string; trust?: string[] }) => {
      const acceptanceLevel = parseAcceptanceLevel(o.acceptanceLevel)
      const trustedKeys = await Promise.all((o.trust ?? []).map(readTrustedKey))
      return session(dir, o, async s => {
        const r = await s.lifecycle.joinHost(name, { acceptanceLevel, trustedKeys })
        const failed = r.results.some(x => !x.ok)
        return { exitCode: failed ? 1 : 0, json: { host: name, results: r.results }, text: [`${name} joined the cluster`, ...r.results.map(renderOperation)].join('\n') }
      })
    }))
  withLifecycleOptions(host
    .command('remove')
    .description('remove the cluster\'s filters from a host (it must have no VMs) and take it out of the cluster')
    .argument('<dir>', 'cluster directory')
    .argument('<name>', 'host name'))
    .action(guard(async (dir: string, name: string, o: CommonOpts) => session(dir, o, async s => {
      const r = await s.lifecycle.removeHost(name)
      return { exitCode: r.removed ? 0 : 1, json: { host: name, ...r }, text: [...r.results.map(renderOperation), r.removed ? `${name} left the cluster` : `${name} stays: a filter could not be removed`].join('\n') }
    }, 'steps')))

  const vm = cluster.command('vm').description('emulated VMs')
  vm.command('create')
    .description('create a VM on a host, with its disks')
    .argument('<dir>', 'cluster directory')
    .argument('<host>', 'host name')
    .argument('<vm>', 'VM name (unique in the cluster)')
    .option('--disk <spec...>', 'a thin disk <id>:<size>[:file]: size in bytes or with K/M/G/T; :file for a file-backed image (default memory)')
    .option('--json', 'print JSON')
    .action(guard(async (dir: string, hostName: string, vmName: string, o: CommonOpts & { disk?: string[] }) => {
      const disks = (o.disk ?? []).map(parseDiskSpec)
      return session(dir, o, async s => {
        await createVm(s.cluster, hostName, vmName, disks)
        return ok({ vm: vmName, host: hostName, disks }, `VM ${vmName} on ${hostName}${disks.length === 0 ? '' : `: ${disks.map(d => `${d.id} ${d.capacity} bytes ${d.backing}`).join(', ')}`}`)
      })
    }))
  vm.command('power')
    .description('power a VM on (its disks open through their filters) or off')
    .argument('<dir>', 'cluster directory')
    .argument('<vm>', 'VM name')
    .addArgument(new Argument('<state>', 'on or off').choices(['on', 'off']))
    .option('--json', 'print JSON')
    .action(guard(async (dir: string, vmName: string, state: 'on' | 'off', o: CommonOpts) => session(dir, o, async s => {
      const v = s.cluster.vm(vmName)
      if (state === 'on') {
        if (v.state !== 'on') await v.powerOn()
      } else await v.powerOff()
      return ok({ vm: vmName, host: s.cluster.hostOf(vmName).name, state: v.state }, `VM ${vmName}: ${v.state === 'on' ? 'powered on' : 'powered off'}`)
    })))

  vm.command('delete')
    .description('delete a powered-off VM with its disks and their images (a disk with a storage policy: clear it first)')
    .argument('<dir>', 'cluster directory')
    .argument('<vm>', 'VM name')
    .option('--json', 'print JSON')
    .action(guard(async (dir: string, vmName: string, o: CommonOpts) => session(dir, o, async s => {
      const h = deleteVm(s.cluster, vmName)
      return ok({ vm: vmName, host: h.name }, `VM ${vmName} deleted from ${h.name}`)
    })))
  const disk = vm.command('disk').description('disks of a powered-off VM: add <dir> <vm> <spec...>, remove <dir> <vm> <disk...>')
  disk.command('add')
    .description('add thin disks to a powered-off VM (all or none)')
    .argument('<dir>', 'cluster directory')
    .argument('<vm>', 'VM name')
    .argument('<spec...>', 'a disk <id>:<size>[:file] as vm create --disk takes it, e.g. data:1G:file')
    .option('--json', 'print JSON')
    .action(guard(async (dir: string, vmName: string, specs: string[], o: CommonOpts) => {
      const disks = specs.map(parseDiskSpec)
      return session(dir, o, async s => {
        const h = await addDisks(s.cluster, vmName, disks)
        return ok({ vm: vmName, host: h.name, disks }, `VM ${vmName}: added ${disks.map(d => `${d.id} ${d.capacity} bytes ${d.backing}`).join(', ')}`)
      })
    }))
  disk.command('remove')
    .description('remove disks, with their images, from a powered-off VM (all or none; a disk with a storage policy: clear it first)')
    .argument('<dir>', 'cluster directory')
    .argument('<vm>', 'VM name')
    .argument('<disk...>', 'disk ids')
    .option('--json', 'print JSON')
    .action(guard(async (dir: string, vmName: string, ids: string[], o: CommonOpts) => session(dir, o, async s => {
      const h = removeDisks(s.cluster, vmName, ids)
      return ok({ vm: vmName, host: h.name, removed: ids }, `VM ${vmName}: removed ${ids.join(', ')}`)
    })))

  cluster
    .command('policy')
    .description('storage policies: create <name> --rule …, apply <name> <vm> <disk>, clear <vm> <disk>')
    .argument('<dir>', 'cluster directory')
    .addArgument(new Argument('<action>', 'create, apply or clear').choices(['create', 'apply', 'clear']))
    .argument('<args...>', 'create: <name>; apply: <name> <vm> <disk>; clear: <vm> <disk>')
    .option('--rule <rule...>', 'create: a rule <name>@<CLASS>[:<json params>], e.g. cdp@REPLICATION or cdp@REPLICATION:{"rpoSeconds":5}')
    .option('--allow-cleartext', 'create: filters see cleartext (encryption runs below them)')
    .option('--json', 'print JSON')
    .action(guard(async (dir: string, action: 'create' | 'apply' | 'clear', args: string[], o: CommonOpts & { rule?: string[]; allowCleartext?: boolean }) => {
      const want = { create: 1, apply: 3, clear: 2 }[action]
      if (args.length !== want) throw BadInput({ message: `policy ${action} takes ${want === 1 ? '<name>' : want === 3 ? '<name> <vm> <disk>' : '<vm> <disk>'}` })
      if (action === 'create') {
        const policy = makePolicy(args[0]!, o.rule ?? [], o.allowCleartext === true)
        return session(dir, o, async s => ok(s.cluster.createPolicy(policy), `policy ${policy.name}: ${policy.rules.map(r => r.filter).join(', ')}`))
      }
      const [name, vmName, disk] = action === 'apply' ? [args[0]!, args[1]!, args[2]!] : [null, args[0]!, args[1]!]
      return session(dir, o, async s => {
        const h = s.cluster.hostOf(vmName)
        // filters attach and detach on the disk: not on an image that is gone (it would read as zeros)
        h.checkImages(vmName)
        await h.setPolicy(vmName, disk, name)
        return ok({ vm: vmName, disk, policy: name }, name === null ? `${vmName}/${disk}: no policy` : `${vmName}/${disk}: policy ${name}`)
      })
    }))
}

// ---- plumbing ----

function withLifecycleOptions(cmd: Command): Command {
  return cmd
    .option('--timeout-ms <ms>', 'bound on each package download (default 60000)', intArg)
    .option('--no-auto-maintenance', 'do not put hosts in maintenance mode; hosts that need it get VibRequiresHostInMaintenanceMode')
    .option('--json', 'print JSON')
}

function lifecycleOptions(o: CommonOpts): Partial<LifecycleOptions> {
  return {
    ...(o.timeoutMs === undefined ? {} : { downloadTimeoutMs: o.timeoutMs }),
    ...(o.autoMaintenance === false ? { autoMaintenance: false } : {}),
  }
}

/** Runs a command on a session: `transaction` (all or nothing) unless said otherwise (see SessionMode). */
async function session(dir: string, o: CommonOpts, fn: (s: ClusterSession) => Promise<Output>, mode: SessionMode = 'transaction'): Promise<Output> {
  return withClusterSession(dir, { mode, lifecycle: lifecycleOptions(o) }, async s => {
    const out = await fn(s)
    for (const w of s.warnings) process.stderr.write(`iofcert cluster: ${w}\n`)
    return out
  })
}

function ok(json: unknown, text: string): Output {
  return { exitCode: 0, json, text }
}

/**
 * What a reading command shows of hosts whose state does not read: the other hosts as usual, a
 * line per unreadable host with the reason (list's JSON: `unreadable`; issues' JSON stays a list,
 * the lines go to stderr), and exit code 2.
 */
function withUnreadable(s: ClusterSession, out: Output, json: boolean): Output {
  if (s.unreadable.size === 0) return out
  const unreadable = [...s.unreadable].map(([host, err]) => ({ host, error: { code: err.code, message: err.message } }))
  const lines = unreadable.map(u => `${u.host}  unreadable: ${u.error.message}`)
  if (Array.isArray(out.json)) {
    if (json) for (const l of lines) process.stderr.write(`iofcert cluster: ${l}\n`)
    return { exitCode: 2, json: out.json, text: [out.text, ...lines].join('\n') }
  }
  return { exitCode: 2, json: { ...(out.json as object), unreadable }, text: [out.text, ...lines].join('\n') }
}

function operation(r: OperationResult): Output {
  return { exitCode: r.ok ? 0 : 1, json: r, text: renderOperation(r) }
}

/** Wraps an action: prints its output, maps errors to one line and an exit code. */
function guard<A extends unknown[]>(action: (...args: A) => Promise<Output>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    const cmd = args[args.length - 1] as Command
    const json = (cmd.opts() as CommonOpts).json === true
    try {
      const out = await action(...args)
      process.stdout.write(json ? `${JSON.stringify(out.json, null, 2)}\n` : `${out.text}\n`)
      process.exitCode = out.exitCode
    } catch (err) {
      if (!(err instanceof IofError)) throw err
      const exitCode = exitCodeOf(err, 'cluster')
      process.stderr.write(`iofcert cluster ${cmd.name()}: ${err.message.replace(/\s*\n\s*/g, ' ')}\n`)
      if (json) process.stdout.write(`${JSON.stringify({ error: { code: err.code, message: err.message, details: err.details } }, null, 2)}\n`)
      process.exitCode = exitCode
    }
  }
}

/** The most hosts `cluster init` makes. */
const MAX_HOSTS = 64

/** An option's whole number; a parse error of commander's (exit 2, one line) when it is not one. */
function intArg(v: string): number {
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError('Expected a whole number.')
  return Number(v)
}

function hostsArg(v: string): number {
  const n = intArg(v)
  if (n < 1 || n > MAX_HOSTS) throw new InvalidArgumentError(`A cluster has 1 to ${MAX_HOSTS} hosts.`)
  return n
}

function renderOperation(r: OperationResult): string {
  const lines = [`${r.operation} ${r.filterId ?? r.url ?? ''}${r.url !== null && r.filterId !== null && r.operation !== 'uninstall' ? ` from ${r.url}` : ''}`]
  for (const h of r.hosts) {
    if (h.state === 'failed') lines.push(`  ${h.host}  failed     ${h.issue.issue}: ${h.issue.message}`)
    else lines.push(`  ${h.host}  ${h.state.padEnd(9)}  ${h.message}${h.status === null ? '' : ` [${h.status}]`}`)
  }
  if (r.hosts.length === 0) lines.push('  nothing to do')
  return lines.join('\n')
}

/**
 * What an uninstall left, after its per-host lines: where the filter is gone and where it is not,
 * what to do about each host that refused or failed, and the command that finishes the job.
 */
function uninstallSummary(r: OperationResult, dir: string, id: string, vmOf: (host: string, disk: string) => string | undefined): string[] {
  const names = (want: (h: HostOutcome) => boolean) => r.hosts.filter(want).map(h => h.host).join(', ')
  const failed = r.hosts.filter((h): h is Extract<HostOutcome, { state: 'failed' }> => h.state === 'failed')
  if (failed.length === 0) {
    const removed = names(h => h.state === 'done')
    return [removed === '' ? `${id} was not installed on any host` : `uninstalled on ${removed}${r.hosts.some(h => h.state !== 'done') ? `; not installed on ${names(h => h.state !== 'done')}` : ''}`]
  }
  const lines = r.refused
    ? [`nothing was uninstalled: refused on ${failed.map(h => h.host).join(', ')} (every host is checked before any is changed)`]
    : [`uninstalled on ${names(h => h.state === 'done') || 'no host'}; failed on ${failed.map(h => h.host).join(', ')}${r.hosts.some(h => h.state === 'unchanged') ? `; not installed on ${names(h => h.state === 'unchanged')}` : ''}`]
  for (const h of failed) lines.push(`  ${h.host} (${h.issue.issue}): ${nextStep(h.host, h.issue, dir, vmOf)}`)
  lines.push(r.refused ? `then run again: iofcert cluster uninstall ${dir} ${id}` : `then finish it: iofcert cluster resolve ${dir} ${r.filterId ?? id}`)
  return lines
}

/** What a person does about a host's issue before retrying. */
function nextStep(host: string, i: HostIssue, dir: string, vmOf: (host: string, disk: string) => string | undefined): string {
  const list = (v: unknown) => (Array.isArray(v) ? v.map(String) : [])
  switch (i.issue) {
    case 'FilterInUse':
      return `take the filter out of the policy of ${list(i.details.disks).map(d => `disk ${d} (iofcert cluster policy ${dir} clear ${vmOf(host, d) ?? '<vm>'} ${d})`).join(', ')}`
    case 'VibCannotPutHostInMaintenanceMode':
      return `power off ${list(i.details.vms).map(vm => `VM ${vm} (iofcert cluster vm power ${dir} ${vm} off)`).join(', ')}, so ${host} can enter maintenance mode`
    case 'VibRequiresHostInMaintenanceMode':
      return `put ${host} in maintenance mode (iofcert cluster maintenance ${dir} ${host} on), or leave out --no-auto-maintenance`
    case 'VibCannotPutHostOutOfMaintenanceMode':
      return `take ${host} out of maintenance mode (iofcert cluster maintenance ${dir} ${host} off)`
    default:
      return 'fix the cause above'
  }
}

/** A word as a POSIX shell reads it back: quoted when it has characters the shell treats specially. */
function shellWord(v: string): string {
  return /^[\w@%+=:,./-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`
}

function renderIssue(i: HostIssue): string {
  return `${i.host}  ${i.filterId ?? i.url ?? ''}  ${i.operation}  ${i.issue}: ${i.message}`
}

/** The vSphere client's I/O Filters view: one row per filter, one status column per host. */
function renderList(hosts: readonly string[], filters: readonly FilterQueryResult[], issueCount: number): string {
  if (filters.length === 0) return 'no filters installed'
  const table = new Table({ head: ['Name', 'Vendor', 'Version', 'Class', ...hosts], style: { head: [], border: [] } })
  for (const f of filters) {
    table.push([
      f.name ?? `(${f.url})`, f.vendor ?? '', f.version ?? '', f.class ?? '',
      ...f.hosts.map(h => {
        const status = h.status ?? '—'
        return h.installedId !== null && h.installedId !== f.id ? `${status} (runs ${h.installedId})` : status
      }),
    ])
  }
  const notes = filters.map(f => `${f.id ?? '(unread package)'}: ${f.operation} from ${f.url}`)
  if (issueCount > 0) notes.push(`${issueCount} issue${issueCount === 1 ? '' : 's'}: iofcert cluster issues <dir>`)
  return `${table.toString()}\n${notes.join('\n')}`
}
