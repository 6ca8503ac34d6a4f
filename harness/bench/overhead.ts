/**
 * Measures the generator's own cost per I/O against a disk that does nothing, so the figure is
 * the harness's overhead and nothing else:
 *   node dist/harness/bench/overhead.js [ios]
 *
 * Two completion styles: `inline` completes inside submit (the cheapest possible disk);
 * `batched` completes later, a queue-depth's worth at a time, from outside submit (as a disk
 * whose completions arrive together).
 */
import { pathToFileURL } from 'node:url'
import { IoGenerator, type GeneratorOptions } from './generator.js'

/** One overhead measurement (best of its rounds). */
export interface OverheadResult {
  readonly label: string
  readonly ios: number
  /** Wall-clock time per I/O. */
  readonly nsPerIo: number
  /** CPU time per I/O: unlike wall time, not inflated when other processes share the CPUs. */
  readonly cpuNsPerIo: number
}

/** How the no-op disk completes I/Os. */
export type CompletionStyle = 'inline' | 'batched'

/** Runs `ios` I/Os of `options` against a no-op disk; best of `rounds`, wall and CPU time. */
export async function measureOverhead(
  options: Omit<GeneratorOptions, 'numberIos' | 'capacity'> & { readonly capacity?: number },
  style: CompletionStyle,
  ios: number,
  rounds = 5,
): Promise<{ nsPerIo: number; cpuNsPerIo: number }> {
  let best = Infinity
  let bestCpu = Infinity
  for (let r = 0; r < rounds; r++) {
    const depth = options.iodepth ?? 1
    // Two queues: completing the batch in one refills the other through submit.
    let queue = new Int32Array(depth)
    let batch = new Int32Array(depth)
    let queued = 0
    let gen: IoGenerator | null = null
    const submit =
      style === 'inline'
        ? (_op: string, _off: number, _len: number, _data: Uint8Array, tag: number): void => gen!.complete(tag, null)
        : (_op: string, _off: number, _len: number, _data: Uint8Array, tag: number): void => {
            queue[queued++] = tag
          }
    // numberIos ends the run; ioSize only has to be out of the way.
    gen = new IoGenerator({ capacity: 64 * 2 ** 30, ioSize: 2 ** 52, ...options, numberIos: ios }, submit)
    const cpu0 = process.cpuUsage()
    const t0 = process.hrtime.bigint()
    const done = gen.run()
    while (queued > 0) {
      const n = queued
      ;[batch, queue] = [queue, batch]
      queued = 0
      for (let i = 0; i < n; i++) gen.complete(batch[i]!, null)
    }
    const result = await done
    const ns = Number(process.hrtime.bigint() - t0) / ios
    const cpu = process.cpuUsage(cpu0)
    if (result.read.totalIos + result.write.totalIos !== ios) throw new Error('overhead run lost I/Os')
    best = Math.min(best, ns)
    bestCpu = Math.min(bestCpu, ((cpu.user + cpu.system) * 1000) / ios)
  }
  return { nsPerIo: best, cpuNsPerIo: bestCpu }
}

/** The standard set: 4k random mix at QD32 (the target), and the other standard workloads. */
export async function standardOverhead(ios = 2_000_000): Promise<OverheadResult[]> {
  const cases: [string, Omit<GeneratorOptions, 'numberIos' | 'capacity'>, CompletionStyle][] = [
    ['4k randrw 70/30 QD32, inline', { rw: 'randrw', rwmixread: 70, bs: 4096, iodepth: 32 }, 'inline'],
    ['4k randrw 70/30 QD32, batched', { rw: 'randrw', rwmixread: 70, bs: 4096, iodepth: 32 }, 'batched'],
    ['4k randread QD32, inline', { rw: 'randread', bs: 4096, iodepth: 32 }, 'inline'],
    ['4k randwrite QD32, norandommap, inline', { rw: 'randwrite', bs: 4096, iodepth: 32, norandommap: true }, 'inline'],
    ['64k write QD32, inline', { rw: 'write', bs: 65536, iodepth: 32 }, 'inline'],
  ]
  const out: OverheadResult[] = []
  for (const [label, o, style] of cases) out.push({ label, ios, ...(await measureOverhead(o, style, ios)) })
  return out
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const ios = Number(process.argv[2] ?? 2_000_000)
  for (const r of await standardOverhead(ios)) {
    console.log(`${r.label.padEnd(42)} ${r.nsPerIo.toFixed(1).padStart(7)} ns/IO wall ${r.cpuNsPerIo.toFixed(1).padStart(7)} ns/IO CPU`)
  }
}
