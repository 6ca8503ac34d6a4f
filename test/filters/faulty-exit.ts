import { faulty } from './faulty.js'
export default faulty('exit')
