import { tracer } from './tracer.js'
export default tracer('inspection')
