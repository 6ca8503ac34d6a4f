/**
 * Canonical JSON: the exact bytes a signature covers, for package descriptors and reports alike.
 */

/**
 * Serialises a JSON value with object keys sorted (by UTF-16 code unit, at every depth) and no
 * whitespace. Keys are sorted here rather than by rebuilding objects, because JavaScript
 * enumerates integer-like keys ("10", "2") numerically whatever their insertion order. Members
 * whose value is `undefined` are left out; anything else JSON cannot represent (non-finite
 * numbers, bigint, functions, `undefined` in an array) throws a TypeError naming where it is.
 */
export function canonicalJson(value: unknown): string {
  return write(value, '')
}

function write(value: unknown, at: string): string {
  if (value === null) return 'null'
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value)
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`canonicalJson: ${at || '/'} is not a finite number`)
      return JSON.stringify(value)
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((v, i) => write(v, `${at}/${i}`)).join(',')}]`
      const record = value as Record<string, unknown>
      const keys = Object.keys(record).filter(k => record[k] !== undefined).sort()
      return `{${keys.map(k => `${JSON.stringify(k)}:${write(record[k], `${at}/${k}`)}`).join(',')}}`
    }
    default:
      throw new TypeError(`canonicalJson: ${at || '/'} is a ${typeof value}, not a JSON value`)
  }
}
