/** The harness's recording probe of class dataProvider (see probe.ts). */
import { probe } from './probe.js'
export default probe('dataProvider')
