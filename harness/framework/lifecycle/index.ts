/**
 * The install lifecycle's public API: the operations across a cluster (`Lifecycle`), their results
 * and host issues, and the cluster sessions the command line runs them in.
 */
export * from './operations.js'
export {
  addDisks, createVm, deleteVm, initCluster, makePolicy, parseAcceptanceLevel, parseDiskSpec, readTrustedKey, removeDisks, setAcceptanceLevel, trustKey,
  withClusterSession, type ClusterSession, type SessionMode,
} from './session.js'
