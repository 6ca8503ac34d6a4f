/**
 * Negative control for isolation.vm-crash: a CDP-like replication filter whose daemon exits when
 * one of its instances disappears without closing (its heartbeats stop), which ends replication
 * for every other VM on the host.
 */
import type { DiskContext } from '../../harness/sdk/index.js'
import { ShipperDaemon, ShipperInstance, shipperModule } from './shipper-base.js'

class ExitingDaemon extends ShipperDaemon {
  private readonly beats = new Map<string, number>()
  private readonly watchdog = setInterval(() => {
    // the fault under test: a vanished instance takes the whole daemon down (an exception thrown
    // from a timer ends the daemon's worker, as an exit would)
    for (const at of this.beats.values()) if (Date.now() - at > 600) throw new Error('an instance vanished: the daemon gives up')
  }, 100)

  override message(from: { vm: string; disk: string }, m: unknown): unknown {
    const t = (m as { t: string }).t
    if (t === 'beat') this.beats.set(from.disk, Date.now())
    else if (t === 'bye') this.beats.delete(from.disk)
    else return super.message(from, m)
    return undefined
  }

  override async stop(): Promise<void> {
    clearInterval(this.watchdog)
    await super.stop()
  }
}

class BeatingInstance extends ShipperInstance {
  private readonly beat: ReturnType<typeof setInterval>

  constructor(disk: DiskContext, name: string) {
    super(disk, name)
    this.send('beat')
    this.beat = setInterval(() => this.send('beat'), 100)
  }

  override async close(): Promise<void> {
    await super.close()
    clearInterval(this.beat)
    this.send('bye')
  }
}

export default shipperModule('ctl-daemon-exit', { daemon: ExitingDaemon, instance: BeatingInstance })
