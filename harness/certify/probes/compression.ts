/** The harness's recording probe of class compression (see probe.ts). */
import { probe } from './probe.js'
export default probe('compression')
