/**
 * The reference replication filter: continuous data protection. Every write that completes to
 * the guest is copied to the host's daemon, which ships each disk's writes, in order, to the
 * recovery site the policy names.
 *
 * Write-order fidelity. An instance queues a write in `done` and sends its queue in order, so
 * posts follow completion order, and a link delivers posts in send order; the daemon keeps one
 * queue per disk and has at most one site write of it outstanding, removing an entry only once
 * the site took it. Whatever the
 * site holds is therefore a prefix of the completion order, and a write completed before W was
 * issued completed before W did, so it is in every prefix that holds W. Completion order is not
 * the order in which overlapping writes land on the disk, though: the drive may carry two
 * concurrent overlapping writes out in one order and complete them in the other. So an
 * instance never lets two overlapping writes (or unmaps) be in flight below it at once: a write
 * that overlaps one in flight waits in `start` until that one is done. For overlapping writes,
 * disk order, completion order and shipping order are then one order.
 *
 * Regions that may differ. The sidecar holds a header (dirty while open) and a bitmap of the
 * regions marked since the last clean close. Where the site holds what the disk holds (a seeded
 * region), the mark is on stable storage before the region's first write goes down: were that
 * write on the disk and the host to crash before the site had it, only the mark would tell the
 * next open to copy the region. In a region of a newly protected disk still to be seeded, only
 * what is sent needs the mark, so it is written then — a few milliseconds late, one sidecar sync
 * for many regions, as those syncs stall the VM's I/O thread. After an unclean end (host crash,
 * VM crash) the next open copies the marked regions from the disk to the site, chunk by chunk,
 * zeros included, since the site may hold writes the disk lost with its volatile cache. The first
 * copy of a newly protected disk sends chunks of zeros as zeros (no buffer: the daemon makes them),
 * since the site may still hold a replica of the disk from an earlier protection, and runs in the
 * background, at a modest pace, while the guest leaves the disk alone. A
 * chunk copy holds back overlapping writes while it reads, so it is shipped after every write it
 * holds and before every write it does not.
 *
 * Handing writes over. A small write's bytes (up to PACK_MAX) are copied as it completes into the
 * send queue's pack, after those of the writes that completed before it: exactly what it put on
 * the disk, since no overlapping write goes down before its done. A larger write's bytes are not
 * copied on the guest's I/O path: its range stays held (no overlapping write goes down) and when
 * the queue goes they are read back from the disk — one read per run of writes that follow each
 * other on it. A couple of milliseconds after the first completed write (sooner when a batch is
 * full) the queue is posted in completion order: the packed writes in one message with one buffer,
 * the read-backs in one message. A write that cannot be read back (a failing disk, a close while
 * stunned) is not posted: its chunks are copied again.
 *
 * Shipping. The daemon keeps a window of site writes in flight per disk (PIPELINE_WRITES): the
 * target applies no write behind a failed one it had not seen, so the site holds a prefix of the
 * disk's queue, and shipping is retried from the first write that failed.
 *
 * Backlog. A guest that writes faster than the site takes its writes is slowed to the site's
 * pace: after each MiB of writes an instance asks the daemon whether the disk's backlog is under
 * its low water (LOW_WATER, or less when many disks share the host's backlog), and while it is
 * not, new writes wait in `start` (at most ROOM_WAIT_MS at a time); they wait as well while a
 * question is unanswered and WAIT_AHEAD of writes were posted since the last answer (the daemon
 * is behind on its messages). Memory is bounded on both
 * sides of the daemon's port: the host's backlog as a whole (HOST_BACKLOG, shared among the disks)
 * and, per instance, the writes posted that the daemon has not yet taken (POST_AHEAD_MAX: past
 * it, and after a wait, a batch's writes are copied later from their chunks instead).
 *
 * Outages. While the site is down the daemon retries with backoff and keeps the backlog in
 * memory; guest I/O never waits for it. A backlog past QUEUE_CAP, or past its share of
 * HOST_BACKLOG while the host's backlog is over it, is dropped and the instance, which waits on
 * the daemon for that news, copies every region that may differ again.
 *
 * Files. This one holds the module; the rest, one purpose each:
 * - constants.ts: the tunables (regions, chunks, backlog caps, pacing, bounds on waits);
 * - messages.ts: what an instance says to its daemon;
 * - dirty-map.ts: the sidecar's format and the regions that may differ (DirtyMap);
 * - instance.ts: a disk's instance in its VM (CdpInstance): holds, the send queue (its pack and
 *   its read-backs), marks, posts, chunk copies;
 * - pump.ts: a disk's ordered queue to the site in the daemon (Pump);
 * - daemon.ts: the host's daemon (startDaemon): the pumps, the site connections, dispatch.
 */
import type { FilterModule } from 'iofcert/sdk'
import { startDaemon } from './daemon.js'
import { DirtyMap } from './dirty-map.js'
import { CdpInstance } from './instance.js'

const cdp: FilterModule = {
  abiVersion: 1,
  name: 'cdp',
  vendor: 'IOFCERT',
  version: '1.0.0',
  class: 'replication',
  policySchema: {
    type: 'object',
    properties: {
      site: { type: 'string', default: 'dr' },
      rpoSeconds: { type: 'integer', minimum: 2, default: 15 },
    },
    additionalProperties: false,
  },
  daemon(ctx) {
    return startDaemon(ctx)
  },
  async open(disk) {
    const loaded = await DirtyMap.load(disk)
    const map = loaded ?? new DirtyMap(disk, DirtyMap.shiftFor(disk.capacity))
    const inst = new CdpInstance(disk, map)
    await inst.begin(loaded === null)
    return inst
  },
}
export default cdp
