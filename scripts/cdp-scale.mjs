// The reference cdp at scale, beside the reference cache: one host, N VMs with a memory disk each,
// every disk under one policy with the filter, and every VM running 4 KiB random I/O, 50/50
// read/write at queue depth 4, all at once. Prints JSON: IOPS summed over the VMs, the merged
// latency percentiles, the peak RSS of the process tree (the VMs and daemons are worker threads of
// this process and share its RSS; child processes, if any, are added; the guest data the memory
// disks hold at the end is given apart) and, for cdp, how far the replica was behind when the load
// stopped (the time the daemon took to ship what was left) and what it warned about.
//
// The recovery site keeps nothing and answers at once (the benchmarks' BenchSite): a real site is
// another machine, and storing every replica here would measure the emulated site, not the filter.
// The load starts once every cdp disk finished its first copy to the site.
//
//   node scripts/cdp-scale.mjs [--filter cdp|cache] [--vms <n>] [--seconds <s>] [--mib <disk MiB>] [--filter-js <path>]
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

const root = new URL('..', import.meta.url).pathname
const dist = p => path.join(root, 'dist', p)
const { Cluster } = await import(dist('harness/framework/index.js'))
const { BenchSite, drain } = await import(dist('harness/bench/engine.js'))
const { LatencyHistogram } = await import(dist('harness/bench/histogram.js'))
const IN_WORKER = new URL(`file://${dist('harness/bench/in-worker.js')}`).href

function arg(name, fallback) {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] : fallback
}
const filter = arg('--filter', 'cdp')
const vms = Number(arg('--vms', 128))
const seconds = Number(arg('--seconds', 20))
const capacity = Number(arg('--mib', 64)) * (1 << 20)
const entry = path.resolve(arg('--filter-js', dist(`reference-filters/${filter}/filter.js`)))
if (filter !== 'cdp' && filter !== 'cache') throw new Error(`--filter must be cdp or cache, got "${filter}"`)
if (!Number.isInteger(vms) || vms < 1) throw new Error(`--vms must be a positive integer, got "${arg('--vms')}"`)
if (!(seconds > 0)) throw new Error(`--seconds must be a positive number, got "${arg('--seconds')}"`)

/**
 * RSS of the process and of its descendants. The VMs and daemons are worker threads (their memory
 * is the process's); child processes are looked for in /proc now and then only: reading /proc is
 * not free on a loaded machine, and the sampler runs on the thread that hosts the recovery site.
 */
function ownRss() {
  return process.memoryUsage.rss()
}
function childrenRss() {
  if (!fs.existsSync('/proc/self/stat')) return 0
  const children = new Map()
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      const ppid = Number(f[1])
      const list = children.get(ppid) ?? []
      list.push({ pid: Number(d), rss: Number(f[21]) * 4096 })
      children.set(ppid, list)
    } catch {
      // the process ended meanwhile
    }
  }
  let rss = 0
  const walk = pid => {
    for (const c of children.get(pid) ?? []) {
      rss += c.rss
      walk(c.pid)
    }
  }
  walk(process.pid)
  return rss
}

let childRss = childrenRss()
let peakRss = ownRss() + childRss
let ticks = 0
const sampler = setInterval(() => {
  if (++ticks % 10 === 0) childRss = childrenRss()
  peakRss = Math.max(peakRss, ownRss() + childRss)
}, 1000)
const treeRss = () => ownRss() + childrenRss()

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iofcert-cdp-scale-'))
const c = await Cluster.create({ dir, ioTimeoutMs: 30_000, cacheBytes: 0 })
const t0 = performance.now()
try {
  for (const name of [...c.sites.keys()]) c.sites.set(name, new BenchSite(name))
  const h = await c.addHost('esx1')
  await h.activate(await c.describeModule(entry))
  const rule = filter === 'cdp' ? { filter: 'cdp@REPLICATION', params: { site: 'dr' } } : { filter: 'cache@CACHE' }
  c.createPolicy({ name: 'scale', rules: [rule] })
  const disks = []
  for (let i = 0; i < vms; i++) {
    const vm = `vm${i + 1}`
    h.createVm(vm)
    await h.addDisk(vm, { id: `${vm}-d0`, capacity, backing: 'memory', policy: 'scale' })
    await h.vm(vm).powerOn()
    disks.push({ vm, disk: `${vm}-d0` })
  }
  const setupS = (performance.now() - t0) / 1000
  if (filter === 'cdp') {
    const t = performance.now()
    while (!disks.every(({ vm }) => c.vm(vm).logs.some(l => l.msg === 'first copy to the site finished'))) {
      if (performance.now() - t > 600_000) throw new Error('the first copies did not finish within 10 minutes')
      await new Promise(r => setTimeout(r, 100))
    }
  }
  const rssBeforeLoad = treeRss()
  const site = c.sites.get('dr')
  const writesBefore = site?.writes ?? 0
  const options = i => ({ rw: 'randrw', rwmixread: 50, bs: 4096, iodepth: 4, capacity, runtimeMs: seconds * 1000, timeBased: true, norandommap: true, seed: 1 + i })
  const results = await Promise.all(disks.map(({ vm, disk }, i) => c.vm(vm).runInWorker(disk, IN_WORKER, { kind: 'job', options: options(i) })))
  // how far the replica was behind when the load stopped: until the site stops taking writes. The
  // quiet period is long: a daemon that fell behind may still be reading its VMs' posts before it
  // ships again (siteWrites then falls short of the guest's writes). Only the site's activity counts,
  // not the process's CPU: 128 idle VMs' timers keep some thread busy in bursts long after the
  // replica is whole, which read as minutes of lag
  const lag = filter === 'cdp' ? await drain({ maxMs: 300_000, quietMs: 3000, pollMs: 20, activity: () => site.writes + site.flushes, busyMs: () => 0 }) : null
  const hist = new LatencyHistogram()
  let iops = 0
  let readIops = 0
  let writeIops = 0
  let errors = 0
  let firstError = null
  for (const r of results) {
    for (const d of [r.read, r.write]) {
      hist.merge(d.latency)
      iops += d.iops
      errors += d.errors
    }
    readIops += r.read.iops
    writeIops += r.write.iops
    if (r.status !== 'ok') firstError ??= r.message
  }
  peakRss = Math.max(peakRss, treeRss())
  // the guest's data in the memory disks is part of the RSS whatever the filter: said apart
  let guestData = 0
  for (const { vm } of disks) guestData += c.vm(vm).memoryDiskBytes()
  const ms = ns => Math.round(ns / 1e3) / 1e3
  const doc = {
    filter,
    vms,
    seconds,
    diskMiB: capacity / (1 << 20),
    machine: { cpus: os.cpus().length, node: process.version },
    iops: Math.round(iops),
    readIops: Math.round(readIops),
    writeIops: Math.round(writeIops),
    p50Ms: ms(hist.percentile(50)),
    p99Ms: ms(hist.percentile(99)),
    peakRssMiB: Math.round(peakRss / (1 << 20)),
    rssBeforeLoadMiB: Math.round(rssBeforeLoad / (1 << 20)),
    guestDataMiB: Math.round(guestData / (1 << 20)),
    setupS: Math.round(setupS * 10) / 10,
    errors,
    firstError,
    ...(lag !== null ? { replicaLagMs: Math.round(lag.drainMs), lagCapped: lag.capped, siteWrites: site.writes - writesBefore } : {}),
  }
  // what the filter and its daemon warned about, by message (a filter that stops replicating says so)
  const warnings = {}
  for (const e of [...disks.flatMap(({ vm }) => c.vm(vm).logs), ...h.daemonLogs]) {
    if (e.level === 'warn' || e.level === 'error') warnings[e.msg] = (warnings[e.msg] ?? 0) + 1
  }
  doc.warnings = warnings
  if (h.faults.length > 0) doc.hostFaults = h.faults.map(f => f.message)
  console.log(JSON.stringify(doc, null, 2))
} finally {
  clearInterval(sampler)
  await c.shutdown({ remove: true })
  fs.rmSync(dir, { recursive: true, force: true })
}
