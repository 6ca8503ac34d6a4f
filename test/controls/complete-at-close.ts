/**
 * Negative control for nemesis.replica: a replication filter whose close marks its replica
 * complete at once, without waiting for the daemon to ship what it still holds of the disk — and
 * whose daemon ships every 300 ms, so a close always leaves some writes queued. A clean host
 * restart ships them (the daemon's stop() drains), so the lifecycle checks pass; a host power cut
 * right after the close loses them, and the next open, believing the replica complete, never
 * copies them again.
 */
import { shipper } from './nemesis-base.js'

export default shipper('ctl-complete-at-close', { completeAtClose: true, batchMs: 300 })
