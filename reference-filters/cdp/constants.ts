/**
 * The reference cdp's tunables: how big a region, a chunk and a site write are, how long marks
 * wait to share a sidecar sync, how fast the first copy goes, how much backlog a disk may have and
 * how long the waits on the daemon are bounded. The ring's geometry is in ring.ts, the sidecar's
 * format in dirty-map.ts.
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
/** A disk's backlog beyond this is dropped, and the disk copied again from its regions. */
export const QUEUE_CAP = 128 * MiB
/** Chunk copies wait while a disk's backlog is above this, so they cannot overflow it. */
export const LOW_WATER = 16 * MiB
/** Bookkeeping bytes counted per queued write, so a flood of tiny unmaps is bounded too. */
export const ENTRY_COST = 128
/** A failed site write is retried after this, doubling with each failure in a row… */
export const BACKOFF_MIN_MS = 10
/** …up to this. */
export const BACKOFF_MAX_MS = 500
/** Chunk copies ask the daemon for room after posting this much. */
export const ROOM_EVERY = 4 * MiB
/** How long a chunk copy waits for room before it looks again at close and stun. */
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
/** Bound on the daemon's stop(): in-flight site writes, then closing the targets. */
export const STOP_SETTLE_MS = 2500
