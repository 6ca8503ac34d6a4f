/**
 * fio's value syntax: byte counts with unit suffixes, durations, ranges and per-direction lists.
 * Where fio is silently sloppy (`size=1.5m` reads as 1 byte, `bs=4x` as 4 bytes) these parsers
 * refuse the value with a reason instead, so a typo cannot turn into a different benchmark.
 */

/** A parsed value or the reason it could not be read. */
export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string }

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value })
const bad = <T>(reason: string): Parsed<T> => ({ ok: false, reason })

/** The base of fio's `kb_base`: 1024 (the default) or 1000. */
export type KbBase = 1000 | 1024

const POWERS: Readonly<Record<string, number>> = { '': 0, b: 0, k: 1, m: 2, g: 3, t: 4, p: 5 }

/**
 * Reads a byte count: `4096`, `0x1000`, `4k`, `4K`, `4Ki`, `4KiB`, `10G`, `512m`, `1M`.
 * Like fio with its default `kb_base=1024`, `k`/`kb`/`ki` mean 1024 and `kib` means 1000 (fio
 * keeps the inverted IEC meaning "for compatibility"); `kb_base=1000` makes `k`, `kb` and `ki`
 * 1000 and `kib` 1024. (fio goes by the letter unless the suffix is `kib`: `1Gi` is `1g`.)
 */
export function parseSize(text: string, kbBase: KbBase = 1024): Parsed<number> {
  const s = text.trim()
  if (s === '') return bad('empty value')
  if (s.endsWith('%')) return bad(`"${s}": percentages of the device are not supported; give a size such as 1g`)
  if (s.startsWith('(')) return bad(`"${s}": arithmetic expressions are not supported`)
  if (/^0x[0-9a-f]+$/i.test(s)) return safe(s, Number.parseInt(s.slice(2), 16))
  const m = /^(\d+)(\.\d+)?\s*([a-z]*)$/i.exec(s)
  if (!m) return bad(`"${s}" is not a size (a number with an optional k/m/g/t/p suffix)`)
  if (m[2] !== undefined) return bad(`"${s}": fractional sizes are not supported (fio would read it as ${m[1]}); write ${suggestWhole(m[1]!, m[2], m[3]!)}`)
  const suffix = m[3]!.toLowerCase()
  const iec = /^([kmgtp])ib$/.exec(suffix)
  const si = /^([kmgtp]?)b?$/.exec(suffix) ?? /^([kmgtp])i$/.exec(suffix)
  let mult: number
  if (iec) mult = (kbBase === 1024 ? 1000 : 1024) ** POWERS[iec[1]!]!
  else if (si) mult = kbBase ** POWERS[si[1]!]!
  else return bad(`"${s}": unknown size suffix "${m[3]}" (use k, m, g, t or p, optionally with i or b)`)
  return safe(s, Number(m[1]) * mult)
}

function suggestWhole(int: string, frac: string, suffix: string): string {
  const lower = suffix.toLowerCase()
  const smaller: Readonly<Record<string, string>> = { k: '', m: 'k', g: 'm', t: 'g', p: 't' }
  const next = smaller[lower[0] ?? '']
  if (next === undefined) return int
  return `${Math.round(Number(`${int}${frac}`) * 1024)}${next}`
}

function safe(s: string, v: number): Parsed<number> {
  if (!Number.isSafeInteger(v)) return bad(`"${s}" is too large`)
  return ok(v)
}

/** Duration units fio accepts, in microseconds. */
const TIME_UNITS: Readonly<Record<string, number>> = {
  us: 1, usec: 1,
  ms: 1e3, msec: 1e3,
  s: 1e6, sec: 1e6,
  m: 60e6, min: 60e6,
  h: 3600e6, hour: 3600e6,
  d: 86400e6, day: 86400e6,
}

/**
 * Reads a duration into microseconds: `900` (seconds, fio's default unit for runtime and
 * ramp_time), `15m` (minutes, as in fio), `1h`, `500ms`, `250us`.
 */
export function parseTimeUs(text: string, defaultUnitUs = 1e6): Parsed<number> {
  const s = text.trim()
  if (s === '') return bad('empty value')
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(s)
  if (!m) return bad(`"${s}" is not a duration (a number with an optional us/ms/s/m/h/d suffix)`)
  const unit = m[2]!.toLowerCase()
  const mult = unit === '' ? defaultUnitUs : TIME_UNITS[unit]
  if (mult === undefined) return bad(`"${s}": unknown time unit "${m[2]}" (use us, ms, s, m, h or d)`)
  return ok(Math.round(Number(m[1]) * mult))
}

/** An integer within bounds (fio's `int` options); hex is accepted as in fio. */
export function parseInteger(text: string, min: number, max = Number.MAX_SAFE_INTEGER): Parsed<number> {
  const s = text.trim()
  let v: number
  if (/^\d+$/.test(s)) v = Number(s)
  else if (/^0x[0-9a-f]+$/i.test(s)) v = Number.parseInt(s.slice(2), 16)
  else return bad(`"${s}" is not a whole number`)
  if (!Number.isSafeInteger(v) || v < min || v > max) return bad(`${s} is out of range (${min} to ${max})`)
  return ok(v)
}

/** fio's boolean: 0 or 1 (fio refuses words such as `true`). `flag` options take any whole number. */
export function parseBool(text: string | null, bare: boolean): Parsed<boolean> {
  if (text === null) return ok(true)
  const s = text.trim()
  if (bare ? /^\d+$/.test(s) : s === '0' || s === '1') return ok(Number(s) !== 0)
  return bad(`"${s}" is not ${bare ? 'a number (or nothing)' : '0 or 1'}`)
}

/** A `lo-hi` (or `lo:hi`) range of sizes. */
export function parseSizeRange(text: string, kbBase: KbBase = 1024): Parsed<{ min: number; max: number }> {
  const s = text.trim()
  const m = /^([^-:]+)[-:]([^-:]+)$/.exec(s)
  if (!m) return bad(`"${s}" is not a range (lo-hi, for example 4k-64k)`)
  const lo = parseSize(m[1]!, kbBase)
  if (!lo.ok) return lo
  const hi = parseSize(m[2]!, kbBase)
  if (!hi.ok) return hi
  if (lo.value > hi.value) return bad(`"${s}": the low end is above the high end`)
  return ok({ min: lo.value, max: hi.value })
}

/**
 * fio's per-direction lists `read[,write[,trim]]`: an empty entry keeps the default, and a last
 * value not followed by a comma also applies to the directions after it
 * (`bs=8k,32k` → reads 8k, writes and trims 32k; `bs=,8k,` → only writes 8k).
 */
export function splitDirections(text: string): { read?: string; write?: string; trim?: string } {
  const parts = text.split(',').map((p) => p.trim())
  if (parts.length === 1) return { read: parts[0], write: parts[0], trim: parts[0] }
  const pick = (p: string | undefined): string | undefined => (p === undefined || p === '' ? undefined : p)
  const read = pick(parts[0])
  const write = pick(parts[1])
  const trim = parts.length >= 3 ? pick(parts[2]) : write
  return { read, write, trim }
}
