/** The harness's recording probe of class inspection (see probe.ts). */
import { probe } from './probe.js'
export default probe('inspection')
