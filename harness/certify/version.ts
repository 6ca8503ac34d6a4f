/** The harness's name and version as reports and the CLI show them (read from package.json once). */
import { readFileSync } from 'node:fs'

export const TOOL_NAME = 'iofcert'
export const TOOL_VERSION: string = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version
