/** The harness's recording probe of class replication (see probe.ts). */
import { probe } from './probe.js'
export default probe('replication')
