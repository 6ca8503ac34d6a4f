/** The harness's recording probe of class dataCapture (see probe.ts). */
import { probe } from './probe.js'
export default probe('dataCapture')
