/** The tool's version (one source: the certify layer reads package.json). */
export { TOOL_VERSION } from '../certify/version.js'
