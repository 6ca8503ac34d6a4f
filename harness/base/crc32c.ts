/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) — the checksum of fio's
 * `verify=crc32c` — with slicing-by-8 tables, about 8× the speed of the bytewise loop in V8.
 */

const POLY = 0x82f63b78

function makeTables(): Uint32Array {
  const t = new Uint32Array(8 * 256)
  for (let i = 0; i < 256; i++) {
    let c = i
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1
    t[i] = c >>> 0
  }
  for (let i = 0; i < 256; i++) {
    let c = t[i]!
    for (let s = 1; s < 8; s++) {
      c = (t[c & 0xff]! ^ (c >>> 8)) >>> 0
      t[s * 256 + i] = c
    }
  }
  return t
}

const T = makeTables()

/**
 * Continues a CRC-32C over `data[start, end)`. Start with `crc = 0`; feed pieces in order to
 * checksum a discontiguous range. Returns the unsigned 32-bit CRC.
 */
export function crc32c(data: Uint8Array, crc = 0, start = 0, end = data.length): number {
  let c = ~crc >>> 0
  let i = start
  const stop8 = end - 8
  while (i <= stop8) {
    const a = c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))
    c =
      T[7 * 256 + (a & 0xff)]! ^
      T[6 * 256 + ((a >>> 8) & 0xff)]! ^
      T[5 * 256 + ((a >>> 16) & 0xff)]! ^
      T[4 * 256 + (a >>> 24)]! ^
      T[3 * 256 + data[i + 4]!]! ^
      T[2 * 256 + data[i + 5]!]! ^
      T[256 + data[i + 6]!]! ^
      T[data[i + 7]!]!
    i += 8
  }
  while (i < end) c = T[(c ^ data[i++]!) & 0xff]! ^ (c >>> 8)
  return ~c >>> 0
}
