/**
 * Negative control for nemesis.replica: a replication filter whose close, when the recovery site
 * is down, leaves the disk's backlog to the daemon — which would ship it when the site returns —
 * and marks the replica complete. The daemon keeps that backlog only in memory: a host power cut
 * or restart before the site returns forgets it, and the next open, believing the replica
 * complete, never copies those writes again. With the site up, or with the VM running through the
 * outage, it is a sound filter.
 */
import { shipper } from './nemesis-base.js'

export default shipper('ctl-outage-custody', { custodyAtClose: true })
