/** CRC-32C, kept at this path for its importers: it lives in the shared base. */
export { crc32c } from '../base/crc32c.js'
