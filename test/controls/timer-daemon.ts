/**
 * Negative control for lifecycle.uninstall-clean: a pass-through cache whose daemon keeps a
 * housekeeping timer (it rolls up per-VM statistics every 100 ms) and whose stop() saves the
 * statistics but forgets to clear the timer: the daemon's worker still holds it after stop().
 */
import type { FilterModule } from '../../harness/sdk/index.js'

const mod: FilterModule = {
  abiVersion: 1,
  name: 'ctl-timer-daemon',
  vendor: 'IOFCERTCTL',
  version: '1.0.0',
  class: 'cache',
  daemon(ctx) {
    const opened = new Map<string, number>()
    let rollups = 0
    // the fault under test: nothing ever clears this interval
    setInterval(() => {
      rollups++
    }, 100)
    return {
      message(from) {
        opened.set(from.vm, (opened.get(from.vm) ?? 0) + 1)
        return rollups
      },
      async stop() {
        await ctx.store.write(0, new TextEncoder().encode(JSON.stringify({ rollups, vms: opened.size })))
        await ctx.store.sync()
      },
    }
  },
  async open(disk) {
    await disk.daemon?.request({ kind: 'opened' })
    return {}
  },
}
export default mod
