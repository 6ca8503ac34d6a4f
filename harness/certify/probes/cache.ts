/** The harness's recording probe of class cache (see probe.ts). */
import { probe } from './probe.js'
export default probe('cache')
