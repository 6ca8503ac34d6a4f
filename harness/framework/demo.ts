/**
 * A guided tour of the framework: one host, one VM, a disk under a policy with the reference
 * pass-through filter and both built-ins, a verified workload, and what happened on the way.
 */
import { fileURLToPath } from 'node:url'
import { Cluster } from './cluster.js'
import { Rng } from './rng.js'

export interface DemoResult {
  readonly ios: number
  readonly errors: number
  readonly mismatches: number
  readonly iops: number
}

/** Runs the tour, printing each step with `say`. */
export async function runDemo(say: (line: string) => void, o: { ios?: number; seed?: number } = {}): Promise<DemoResult> {
  const count = o.ios ?? 4000
  const rng = new Rng(o.seed ?? 1)
  const cluster = await Cluster.create({ ioTimeoutMs: 5000 })
  try {
    const host = await cluster.addHost('esx01')
    say(`cluster in ${cluster.options.dir}; host esx01 up`)
    const info = await cluster.installModule(fileURLToPath(new URL('../../reference-filters/passthrough/filter.js', import.meta.url)))
    say(`installed ${info.id} (${info.cls}); built-ins: VMW_spm_1.0.0, VMW_vmwarevmcrypt_1.0.0`)
    cluster.createPolicy({
      name: 'gold',
      rules: [
        { filter: 'passthrough@CACHE' },
        { filter: 'vmwarevmcrypt@ENCRYPTION' },
        { filter: 'spm@DATASTOREIOCONTROL', params: { limitIops: 0 } },
      ],
    })
    const vm = host.createVm('demo-vm')
    const disk = await host.addDisk('demo-vm', { id: 'demo-disk', capacity: 10 * 1024 ** 3, policy: 'gold' })
    say(`VM demo-vm with a thin 10 GiB disk under policy "gold": chain ${disk.rules.map(r => r.info.id).join(' → ')} → disk`)
    await vm.powerOn()
    say('VM powered on: its I/O path runs in its own worker thread')
    const blocks = 1024
    const expected = new Map<number, Uint8Array>()
    const ios = Array.from({ length: count }, (_, i) => {
      const block = rng.int(blocks)
      if (i < blocks || rng.float() < 0.3) {
        const data = rng.fill(new Uint8Array(4096))
        return { op: 'write' as const, offset: block * 4096, data }
      }
      return { op: 'read' as const, offset: block * 4096, length: 4096 }
    })
    // reads are checked after the run against the last write of each block, so writes run first
    const writes = ios.filter(x => x.op === 'write')
    const reads = ios.filter(x => x.op === 'read')
    const t0 = performance.now()
    const wr = await vm.runIos('demo-disk', writes, 1)
    for (const w of writes) expected.set(w.offset, (w as { data: Uint8Array }).data)
    const rr = await vm.runIos('demo-disk', reads, 32)
    const secs = (performance.now() - t0) / 1000
    let mismatches = 0
    rr.forEach((r, i) => {
      const want = expected.get(reads[i]!.offset)
      if (r.ok && want && !Buffer.from(r.data!).equals(Buffer.from(want))) mismatches++
    })
    const errors = [...wr, ...rr].filter(r => !r.ok).length
    const iops = Math.round(count / secs)
    say(`${writes.length} writes (QD 1) and ${reads.length} reads (QD 32) in ${secs.toFixed(2)} s: ${errors} errors, ${mismatches} mismatches, ${iops} IOPS through the main-thread API`)
    const snap = await vm.snapshot('demo-disk')
    const offset = writes[0]!.offset
    const raw = snap.read(offset, 16)
    say(`on the disk image the block at ${offset} starts ${Buffer.from(raw).toString('hex')} (ciphertext; the guest's last write there starts ${Buffer.from(expected.get(offset)!.subarray(0, 16)).toString('hex')})`)
    say(`the thin disk holds ${(vm.memoryDiskBytes() / 1048576).toFixed(1)} MiB of its 10 GiB; faults recorded: ${vm.faults.length}`)
    await vm.powerOff()
    say('VM powered off')
    return { ios: count, errors, mismatches, iops }
  } finally {
    await cluster.shutdown({ remove: true })
  }
}
