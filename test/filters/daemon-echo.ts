/**
 * A replication filter for framework tests: instances post every completed write to the daemon,
 * which records the order per disk, ships each write to the site named by the policy, and answers
 * requests. `leakTimer` in the store makes stop() leave an interval behind. A disk whose name holds
 * `tamper` has its daemon write to the site, at open, bytes in a Uint8Array subclass that lies
 * about its length, changed as soon as write() returns: the site must keep the bytes as they were.
 * A disk whose name holds `pipeline` has its daemon keep writes in flight: a bad one (EINVAL), then
 * a good one called before the first failed, then, once both settled, another good one.
 */
import type { Daemon, FilterModule, ReplicaTarget } from '../../harness/sdk/index.js'

const mod: FilterModule = {
  abiVersion: 1,
  name: 'echo',
  vendor: 'TEST',
  version: '1.0.0',
  class: 'replication',
  policySchema: { type: 'object', properties: { site: { type: 'string', default: 'dr' }, rpoSeconds: { type: 'integer', minimum: 2, default: 15 } } },
  async daemon(ctx): Promise<Daemon> {
    const seen = new Map<string, number[]>()
    const targets = new Map<string, Promise<ReplicaTarget>>()
    const chains = new Map<string, Promise<void>>()
    const leak = (await ctx.store.size()) > 0
    const t = leak ? setInterval(() => {}, 1000) : null
    return {
      message(from, m: any) {
        if (m.kind === 'write') {
          const list = seen.get(from.disk) ?? []
          list.push(m.seq)
          seen.set(from.disk, list)
          let tp = targets.get(m.site)
          if (!tp) { tp = ctx.targets.connect(m.site); targets.set(m.site, tp) }
          const prev = chains.get(from.disk) ?? Promise.resolve()
          const next = prev.then(async () => (await tp!).write(from.disk, m.offset, new Uint8Array(m.buf))).catch(() => {})
          chains.set(from.disk, next)
          return
        }
        if (m.kind === 'seen') return { vm: from.vm, seqs: seen.get(from.disk) ?? [] }
        if (m.kind === 'drain') return chains.get(from.disk)
        if (m.kind === 'boom') throw new Error('daemon refuses')
        if (m.kind === 'connect') return ctx.targets.connect(m.site).then(() => 'connected', (e: Error) => `refused: ${e.message}`)
        if (m.kind === 'pipeline') {
          return ctx.targets.connect(m.site).then(async t => {
            const how = (p: Promise<void>) => p.then(() => 'ok', (e: Error & { code?: string }) => e.code ?? e.message)
            const first = how(t.write(from.disk, -1, new Uint8Array(4096).fill(4)))
            const second = how(t.write(from.disk, 0, new Uint8Array(4096).fill(5)))
            const settled = await Promise.all([first, second])
            return [...settled, await how(t.write(from.disk, 4096, new Uint8Array(4096).fill(6)))]
          })
        }
        if (m.kind === 'tamper') {
          return ctx.targets.connect(m.site).then(async t => {
            class Liar extends Uint8Array {
              override get length(): number {
                return 1 << 28
              }
            }
            const b = new Liar(4096).fill(7)
            const p = t.write(from.disk, 0, b)
            b.fill(9)
            await p
            return 'written'
          })
        }
        return undefined
      },
      stop() {
        if (!leak && t) clearInterval(t)
      },
    }
  },
  async open(disk) {
    let seq = 0
    const r = await disk.daemon!.request({ kind: 'connect', site: disk.policy.site })
    disk.log.info('connect', { r })
    if (disk.disk.includes('pipeline')) disk.log.info('pipeline', { r: await disk.daemon!.request({ kind: 'pipeline', site: disk.policy.site }) })
    if (disk.disk.includes('tamper')) disk.log.info('tamper', { r: await disk.daemon!.request({ kind: 'tamper', site: disk.policy.site }) })
    await disk.daemon!.request({ kind: 'boom' }).then(
      () => disk.log.info('boom answered'),
      (e: Error) => disk.log.warn('boom rejected', { message: e.message }),
    )
    return {
      done(io, outcome) {
        if (io.op !== 'write' || !outcome.ok) return
        const copy = io.data!.slice()
        disk.daemon!.post({ kind: 'write', seq: seq++, offset: io.offset, site: disk.policy.site, buf: copy.buffer }, [copy.buffer])
      },
      event() {},
    }
  },
}
export default mod
