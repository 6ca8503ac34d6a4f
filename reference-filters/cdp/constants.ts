/**
 * The reference cdp's tunables: how big a region, a chunk and a site write are, how long marks
 * wait to share a sidecar sync, how fast the first copy goes, how much backlog a disk may have and
 * how long the waits on the daemon are bounded, and how long completed writes wait to travel
 * together. The sidecar's format is in dirty-map.ts.
 */
const MiB = 1 << 20
/** Unit of copying a region to the site. */
export const CHUNK = MiB
/** At most this many regions per disk: few sidecar syncs to mark them, a small bitmap. */
export const MAX_REGIONS = 32
/** How long marks of regions still to be seeded wait to share one sidecar sync, when marks are coming thick and fast… */
export const MARK_DELAY_MS = 20
/** …that is, when the last was written less than this ago; otherwise they are written at once. */
export const MARK_QUIET_MS = 100
/** The first copy of a newly protected disk runs only after the guest left it alone this long… */
export const SEED_QUIET_MS = 50
/** …and then copies a chunk at most this often (about 32 MiB/s). */
export const SEED_PACE_MS = 30
/** Largest site write the daemon makes by joining queued writes that touch. */
export const MAX_JOIN = MiB
/**
 * A disk's site writes in flight at once: a window of them is called together and awaited
 * together (the target applies none after an unseen failure, so the site keeps a prefix). One at a
 * time, a host of busy disks ships at one write per disk per round trip to the site.
 */
export const PIPELINE_WRITES = 64
export const PIPELINE_BYTES = MiB
/** A disk's backlog beyond this is dropped, and the disk copied again from its regions… */
export const QUEUE_CAP = 128 * MiB
/**
 * …and so is a disk's backlog beyond its share of this once the host's backlog (every disk's
 * together) is over it: the daemon's memory is bounded whatever the number of disks.
 */
export const HOST_BACKLOG = 256 * MiB
/**
 * Chunk copies wait while a disk's backlog is above this (or a quarter of its share of
 * HOST_BACKLOG, when that is less), so they cannot overflow it; so do new guest writes while the
 * site takes writes (see WRITE_ROOM_EVERY).
 */
export const LOW_WATER = 4 * MiB
/** Bookkeeping bytes counted per queued write, so a flood of tiny unmaps is bounded too. */
export const ENTRY_COST = 128
/** A failed site write is retried after this, doubling with each failure in a row… */
export const BACKOFF_MIN_MS = 10
/** …up to this. */
export const BACKOFF_MAX_MS = 500
/** Chunk copies ask the daemon for room after posting this much. */
export const ROOM_EVERY = 2 * MiB
/**
 * An instance asks the daemon whether the disk's backlog is under LOW_WATER after sending this
 * much of its guest's writes; when it is not and the site takes writes, new writes wait in
 * `start` until it is (at most ROOM_WAIT_MS at a time): a guest that writes faster than the site
 * takes its writes goes at the site's pace, rather than the backlog growing in the daemon.
 */
export const WRITE_ROOM_EVERY = MiB
/**
 * Guest writes an instance posts while the daemon has not answered its last question about room
 * stop here: the rest are copied later from their chunks, so what waits in transit for a daemon
 * behind on its messages (a host of busy VMs starving its thread) is bounded.
 */
export const POST_AHEAD_MAX = 8 * WRITE_ROOM_EVERY
/**
 * New guest writes wait for the daemon's answer about room once this much of them was posted since
 * the last answer: a question still out after a MiB is only a round trip through a busy host's
 * threads (a VM writing 128 MiB/s posts a MiB in 8 ms), not yet a daemon behind on its messages.
 */
export const WAIT_AHEAD = POST_AHEAD_MAX / 2
/** How long a chunk copy (or a guest write) waits for room before it looks again at close and stun (goes on). */
export const ROOM_WAIT_MS = 1000
/** How long a close waits for the daemon to ship the disk's backlog. */
export const DRAIN_MS = 20_000
/** How much of open a copy of regions that may differ may take; the rest runs beside guest I/O. */
export const OPEN_COPY_MS = 15_000
/**
 * A write still not done after this is taken for lost (the framework timed it out and will never
 * call `done`): it stops holding back overlapping writes and its chunks are copied again.
 */
export const STALE_MS = 30_000
/**
 * Completed writes wait this long in an instance's send queue before they are posted together
 * (sooner when QUEUE_BATCH of them or QUEUE_BYTES of their bytes are waiting, or a request follows
 * them): a message and a wake-up of the daemon per write would cost the guest's I/O path and the
 * host's CPUs more than the writes themselves. It adds as much to the replica's lag.
 */
export const QUEUE_LINGER_MS = 1
export const QUEUE_BATCH = 64
export const QUEUE_BYTES = 256 * 1024
/**
 * A completed write up to this size is copied as it completes into the send queue's pack; a larger
 * one is read back from the disk a moment later (its range held until then), with the writes that
 * follow it on the disk: one copy of a large write on the guest's I/O path costs more than the
 * message it saves, a small one's less.
 */
export const PACK_MAX = 16 * 1024
/** Largest read-back: queued writes that follow each other on the disk are read back in one read. */
export const READ_BACK_MAX = 256 * 1024
/**
 * At most this many completed writes wait to be read back (each holds its range); past it, a
 * completing write is copied at once instead, as when the guest saturates the disk.
 */
export const READ_BACKS_MAX = 256
/** Bound on the daemon's stop(): in-flight site writes, then closing the targets. */
export const STOP_SETTLE_MS = 2500
