/**
 * Bounded reading of a package tarball (`.tgz` or plain `.tar`): the bytes on disk, the
 * bytes they expand to, the number of entries, the size of each file and the wall-clock time
 * are all limited, and reading stops at the tar end-of-archive (two zero blocks) — whatever
 * follows it (zero padding, garbage, a gzip bomb) is never decompressed.
 *
 * Why a reader of our own rather than node-tar's Parser: the Parser keeps everything written
 * to it after the end-of-archive in one buffer and re-concatenates that buffer with every new
 * chunk, so N bytes of padding cost O(N²) copying (96 MiB of zeros: minutes and gigabytes),
 * and its gunzip runs inside it, so a caller cannot stop decompression when the archive
 * ends. Here we only frame the stream (512-byte blocks, bodies, padding) and leave the
 * decoding of each header block and pax record to node-tar's `Header` and `Pax`.
 */
import { open } from 'node:fs/promises'
import { createGunzip } from 'node:zlib'
import { Header, Pax, type HeaderData } from 'tar'
import { BadInput, IofError, PackageUnreadable } from '../errors.js'

const KiB = 1024
const MiB = 1024 * KiB
const BLOCK = 512
const ZERO_BLOCK = Buffer.alloc(BLOCK)

/** Bounds on opening one package. Every field is a positive number. */
export interface PackageLimits {
  /** Bytes of the package file as stored (the `.tgz` itself). */
  readonly maxCompressedBytes: number
  /** Bytes of the tar stream after gunzip, up to the end-of-archive: headers, bodies and padding. */
  readonly maxUncompressedBytes: number
  /** Entries in the archive (files, directories, links…; pax and GNU long-name records excluded). */
  readonly maxEntries: number
  /** Size one entry may declare. */
  readonly maxFileBytes: number
  /** Wall-clock time for the whole open, reading and writing included. */
  readonly timeoutMs: number
}

/** The name of one bound, as error details report it (`details.limit`). */
export type PackageLimitName = keyof PackageLimits

/**
 * The default bounds. Why these numbers: a filter package is a few JavaScript modules and
 * perhaps some data — the reference filters are under 16 KiB — so each bound sits two to
 * four orders of magnitude above any real package while keeping the worst case cheap to
 * refuse on the smallest supported machine:
 * - 64 MiB stored: the file is read into memory once to hash it, so this is the memory a
 *   package may cost before any parsing.
 * - 256 MiB expanded: what may be written to the work directory; a gzip bomb (deflate
 *   reaches ~1000:1) is refused when it crosses this while streaming, never buffered whole.
 * - 10,000 entries: each entry is a file created on disk and a line in the integrity check.
 * - 128 MiB per file: half the total, so one oversized blob is named as such early (from
 *   its header, before its body is read) instead of as a vague total.
 * - 30 s: far above the ~0.1 s a real package takes, low enough that a hostile one cannot
 *   hold an install or a certification run; reads of a bounded input that is slow for any
 *   other reason (a stalled disk, a stream that never ends) stop here too.
 */
export const DEFAULT_PACKAGE_LIMITS: PackageLimits = Object.freeze({
  maxCompressedBytes: 64 * MiB,
  maxUncompressedBytes: 256 * MiB,
  maxEntries: 10_000,
  maxFileBytes: 128 * MiB,
  timeoutMs: 30_000,
})

/**
 * Pax and GNU long-name records are held in memory whole; real ones are a few hundred bytes.
 * 1 MiB is node-tar's own default for them.
 */
const MAX_META_BYTES = 1 * MiB
/** The parser is handed the tar in pieces of this size: slices (views) of a plain tar, or gunzip output chunks. */
const TAR_SLICE = 64 * KiB
/** The longest delay setTimeout takes. */
const MAX_TIMER_MS = 2 ** 31 - 1

/** The limits with `overrides` applied; BadInput when one is not a positive number. */
export function packageLimits(overrides: Partial<PackageLimits> = {}): PackageLimits {
  const limits: Record<string, number> = { ...DEFAULT_PACKAGE_LIMITS }
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) continue
    if (!(name in DEFAULT_PACKAGE_LIMITS)) throw BadInput({ message: `unknown package limit "${name}"` })
    if (typeof value !== 'number' || !(value > 0)) throw BadInput({ message: `package limit ${name} must be a positive number, got ${String(value)}` })
    limits[name] = value
  }
  return limits as unknown as PackageLimits
}

const LIMIT_LABELS: Record<PackageLimitName, string> = {
  maxCompressedBytes: 'stored-size',
  maxUncompressedBytes: 'expanded-size',
  maxEntries: 'entry-count',
  maxFileBytes: 'per-file size',
  timeoutMs: 'time',
}

/**
 * The coded error for a package over one of its bounds: PackageUnreadable (exit code 2, and
 * what every caller already treats as "not a usable package"), with `details.limit` naming
 * the bound and `details.max` its value. `what` says what crossed it.
 */
export function limitExceeded(source: string, limit: PackageLimitName, max: number, what?: string): IofError {
  const shown = limit === 'timeoutMs' ? `${max} ms` : limit === 'maxEntries' ? String(max) : bytes(max)
  const reason = `the package is over its ${LIMIT_LABELS[limit]} limit of ${shown} (${limit})${what === undefined ? '' : `: ${what}`}`
  return PackageUnreadable({ source, reason, limit, max })
}

/**
 * A wall-clock bound shared by every step of one open. `race` lets an await that may never
 * settle (a stream that stalls) lose to the clock; the timer is a real (ref'd) one so the
 * process stays alive to fire it. Call `clear` when done.
 */
export class Deadline {
  readonly at: number
  private readonly controller = new AbortController()
  private readonly timer: NodeJS.Timeout | undefined
  constructor(readonly ms: number, private readonly source: string) {
    this.at = Date.now() + ms
    // Past setTimeout's range (e.g. Infinity, to turn the bound off) Node would fire at once.
    this.timer = ms <= MAX_TIMER_MS ? setTimeout(() => this.controller.abort(), ms) : undefined
  }

  get expired(): boolean {
    return this.controller.signal.aborted || Date.now() >= this.at
  }

  error(): IofError {
    return limitExceeded(this.source, 'timeoutMs', this.ms)
  }

  /** Throws the timeout error when the time is up. */
  check(): void {
    if (this.expired) throw this.error()
  }

  /** `p`, or the timeout error if the time runs out first. */
  race<T>(p: Promise<T>): Promise<T> {
    this.check()
    const signal = this.controller.signal
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => reject(this.error())
      signal.addEventListener('abort', onAbort, { once: true })
      p.then(
        v => { signal.removeEventListener('abort', onAbort); resolve(v) },
        (e: unknown) => { signal.removeEventListener('abort', onAbort); reject(e) },
      )
    })
  }

  clear(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
  }
}

/**
 * Reads `file` whole, refusing it as soon as it is over `limits.maxCompressedBytes` (by its
 * size, and again while reading, in case it grows).
 */
export async function readPackageFile(file: string, limits: PackageLimits, deadline: Deadline): Promise<Buffer> {
  const max = limits.maxCompressedBytes
  const tooBig = (size: number): IofError => limitExceeded(file, 'maxCompressedBytes', max, `the file is ${size} bytes`)
  let fh
  try {
    fh = await open(file, 'r')
  } catch (err) {
    throw PackageUnreadable({ source: file, reason: (err as Error).message }, err)
  }
  try {
    const size = (await fh.stat()).size
    if (size > max) throw tooBig(size)
    const chunks: Buffer[] = []
    let total = 0
    for (;;) {
      deadline.check()
      const room = max + 1 - total // read one byte past the bound to see that it is crossed
      const buf = Buffer.allocUnsafe(Math.min(MiB, room))
      const { bytesRead } = await deadline.race(fh.read(buf, 0, buf.length, null))
      if (bytesRead === 0) break
      total += bytesRead
      if (total > max) throw tooBig(total)
      chunks.push(buf.subarray(0, bytesRead))
    }
    return Buffer.concat(chunks, total)
  } catch (err) {
    if (err instanceof IofError) throw err
    throw PackageUnreadable({ source: file, reason: (err as Error).message }, err)
  } finally {
    await fh.close()
  }
}

/**
 * The tar stream held in `data`: gunzipped when `data` starts with the gzip magic, else `data`
 * itself, in slices. Decompression is pulled: zlib inflates the next piece only when the
 * consumer has read the previous ones (its readable side holds at most a few chunks), so a
 * bomb costs memory for what is read, not for what it would expand to, and ending the
 * iteration (at the end-of-archive, or at a bound) stops the inflating: what follows is never
 * decoded.
 */
export async function* tarStreamOf(data: Buffer): AsyncGenerator<Buffer, void, undefined> {
  if (!(data.length >= 2 && data[0] === 0x1f && data[1] === 0x8b)) {
    for (let off = 0; off < data.length; off += TAR_SLICE) yield data.subarray(off, off + TAR_SLICE)
    return
  }
  const gunzip = createGunzip({ chunkSize: TAR_SLICE })
  gunzip.end(data)
  try {
    for await (const chunk of gunzip) yield chunk as Buffer
  } catch (err) {
    throw new Error(`gzip: ${(err as Error).message}`, { cause: err })
  } finally {
    gunzip.destroy()
  }
}

/** One archive entry as the reader reports it. */
export interface TarEntry {
  /** The name as stored, pax and GNU long names applied; not yet normalized or judged. */
  readonly name: string
  /** node-tar's name of the entry type (File, Directory, SymbolicLink, CharacterDevice…), or Unsupported. */
  readonly type: string
  /** The typeflag character as stored. */
  readonly typeflag: string
  /** Bytes of the body (never more than `maxFileBytes`). */
  readonly size: number
}

/** Where one entry's body goes. `end` follows the last `write`; `abort` replaces it when reading fails. */
export interface TarBodySink {
  write(chunk: Buffer): Promise<void> | void
  end(): Promise<void> | void
  abort?(): Promise<void> | void
}

/** Called once per entry, in archive order; returns where the body goes, or undefined to skip it. */
export type TarVisitor = (entry: TarEntry) => Promise<TarBodySink | undefined> | TarBodySink | undefined

/** Options of readTarStream. */
export interface TarReadOptions {
  /** Names the package in errors. */
  readonly source?: string
  readonly limits?: Partial<PackageLimits>
  /** A deadline shared with other steps; default a fresh one of `limits.timeoutMs`. */
  readonly deadline?: Deadline
}

/** What readTarStream read. */
export interface TarReadResult {
  /** Entries seen (pax and GNU long-name records excluded). */
  readonly entries: number
  /** Bytes of the tar stream consumed, up to and including the end-of-archive. */
  readonly bytes: number
  /** True when the archive ended with its end-of-archive marker, not just with the input. */
  readonly endOfArchive: boolean
}

/** Pax / GNU records that describe the next entry rather than being one. */
const META_TYPES = new Set(['ExtendedHeader', 'OldExtendedHeader', 'GlobalExtendedHeader', 'NextFileHasLongPath', 'OldGnuLongPath', 'NextFileHasLongLinkpath'])

type State =
  | { readonly kind: 'header' }
  | { readonly kind: 'body'; remain: number; pad: number; readonly sink?: TarBodySink; readonly meta?: { readonly type: string; readonly buf: Buffer; fill: number } }

/**
 * Parses a tar stream from `chunks`, calling `visit` for each entry and streaming each body to
 * the sink it returns, within `limits` and the deadline. Stops reading at the end-of-archive:
 * the rest of the input is never pulled. Ending the input between two entries without an
 * end-of-archive is accepted (as tar does); ending it inside a header or a body is not.
 * Throws PackageUnreadable: with `details.limit` set when a bound is crossed, without it when
 * the stream is not a tar archive.
 */
export async function readTarStream(chunks: AsyncIterable<Uint8Array>, visit: TarVisitor, options: TarReadOptions = {}): Promise<TarReadResult> {
  const source = options.source ?? '(stream)'
  const limits = packageLimits(options.limits)
  const deadline = options.deadline ?? new Deadline(limits.timeoutMs, source)
  const malformed = (why: string): IofError => PackageUnreadable({ source, reason: `not a readable tar or tar.gz archive (${why})` })

  const header = Buffer.alloc(BLOCK)
  let headerFill = 0
  let state = { kind: 'header' } as State
  let consumed = 0
  let entries = 0
  let sawNullBlock = false
  let endOfArchive = false
  let ex: HeaderData | undefined
  let gex: HeaderData | undefined

  const overTotal = (what?: string): IofError => limitExceeded(source, 'maxUncompressedBytes', limits.maxUncompressedBytes, what)

  /** Handles one full header block at stream offset `at`; true at the end-of-archive. */
  const onHeader = async (at: number): Promise<boolean> => {
    deadline.check()
    if (header.equals(ZERO_BLOCK)) {
      if (sawNullBlock) return true
      sawNullBlock = true
      return false
    }
    sawNullBlock = false
    let h: Header
    try {
      h = new Header(header, 0, ex, gex)
    } catch (err) {
      throw malformed(`bad header at byte ${at}: ${(err as Error).message}`)
    }
    if (!h.cksumValid) throw malformed(`bad header checksum at byte ${at}`)
    const size = h.size ?? 0
    if (!Number.isSafeInteger(size) || size < 0) throw malformed(`bad entry size at byte ${at}`)
    const type = String(h.type)
    const pad = (BLOCK - (size % BLOCK)) % BLOCK
    // Bodies are judged by the size their header declares, before a byte of them is read.
    const overTotalWith = (what: string): IofError | undefined =>
      consumed + size + pad > limits.maxUncompressedBytes ? overTotal(`${what} (${size} bytes) would take the archive past it`) : undefined
    if (META_TYPES.has(type)) {
      if (size > MAX_META_BYTES) throw malformed(`a ${type} record of ${size} bytes at byte ${at} (at most ${bytes(MAX_META_BYTES)})`)
      const over = overTotalWith(`a ${type} record`)
      if (over !== undefined) throw over
      state = { kind: 'body', remain: size, pad, meta: { type, buf: Buffer.alloc(size), fill: 0 } }
      return false
    }
    // A pax or long-name path replaces the stored one whole: Header.decode still prepends the
    // ustar prefix field to it, and node-tar's ReadEntry overrides that the same way.
    const name = ex?.path ?? h.path ?? ''
    ex = undefined // a pax or long-name record describes only the entry that follows it
    entries += 1
    if (entries > limits.maxEntries) throw limitExceeded(source, 'maxEntries', limits.maxEntries)
    if (size > limits.maxFileBytes) {
      throw limitExceeded(source, 'maxFileBytes', limits.maxFileBytes, `entry "${name}" is ${size} bytes`)
    }
    const over = overTotalWith(`entry "${name}"`)
    if (over !== undefined) throw over
    const typeflag = String.fromCharCode(header[156] ?? 0).replace('\0', '')
    const sink = await visit({ name, type, typeflag, size })
    state = sink === undefined ? { kind: 'body', remain: size, pad } : { kind: 'body', remain: size, pad, sink }
    return false
  }

  /** Ends the current body: closes its sink or applies its record. */
  const onBodyEnd = async (s: Extract<State, { kind: 'body' }>): Promise<void> => {
    if (s.sink !== undefined) await s.sink.end()
    if (s.meta !== undefined) {
      const text = s.meta.buf.toString('utf8')
      switch (s.meta.type) {
        case 'GlobalExtendedHeader':
          gex = Pax.parse(text, gex, true)
          break
        case 'ExtendedHeader':
        case 'OldExtendedHeader':
          ex = Pax.parse(text, ex, false)
          break
        case 'NextFileHasLongPath':
        case 'OldGnuLongPath':
          ex = { ...ex, path: text.replace(/\0.*/s, '') }
          break
        case 'NextFileHasLongLinkpath':
          ex = { ...ex, linkpath: text.replace(/\0.*/s, '') }
          break
      }
    }
    state = { kind: 'header' }
  }

  /** Consumes `chunk`; true once the end-of-archive is reached (the rest of `chunk` is ignored). */
  const consume = async (chunk: Buffer): Promise<boolean> => {
    let off = 0
    while (off < chunk.length) {
      if (state.kind === 'header') {
        const n = Math.min(BLOCK - headerFill, chunk.length - off)
        chunk.copy(header, headerFill, off, off + n)
        headerFill += n
        off += n
        consumed += n
        if (consumed > limits.maxUncompressedBytes) throw overTotal()
        if (headerFill < BLOCK) continue
        headerFill = 0
        if (await onHeader(consumed - BLOCK)) return true
      } else {
        const s = state
        if (s.remain > 0) {
          const n = Math.min(s.remain, chunk.length - off)
          const part = chunk.subarray(off, off + n)
          if (s.sink !== undefined) await s.sink.write(part)
          if (s.meta !== undefined) s.meta.fill += part.copy(s.meta.buf, s.meta.fill)
          s.remain -= n
          off += n
          consumed += n
        }
        if (s.remain === 0 && s.pad > 0 && off < chunk.length) {
          const n = Math.min(s.pad, chunk.length - off)
          s.pad -= n
          off += n
          consumed += n
        }
        if (s.remain === 0 && s.pad === 0) await onBodyEnd(s)
      }
    }
    // An entry with an empty body is complete as soon as its header is.
    if (state.kind === 'body' && state.remain === 0 && state.pad === 0) await onBodyEnd(state)
    return false
  }

  const it = chunks[Symbol.asyncIterator]()
  let exhausted = false
  try {
    for (;;) {
      deadline.check()
      let next: IteratorResult<Uint8Array>
      try {
        next = await deadline.race(it.next())
      } catch (err) {
        // The input itself failed (a corrupt gzip stream, a read error): not a readable archive.
        if (err instanceof IofError) throw err
        throw malformed(err instanceof Error ? err.message : String(err))
      }
      if (next.done === true) {
        exhausted = true
        break
      }
      const v = next.value
      const chunk = Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength)
      if (await consume(chunk)) {
        endOfArchive = true
        break
      }
    }
    if (!endOfArchive) {
      if (state.kind === 'body') throw malformed(`truncated: the input ends inside an entry, ${state.remain + state.pad} bytes short`)
      if (headerFill > 0) throw malformed('truncated: the input ends inside a header')
    }
  } catch (err) {
    if (state.kind === 'body' && state.sink?.abort !== undefined) await state.sink.abort()
    throw err
  } finally {
    if (options.deadline === undefined) deadline.clear()
    // Stop the producer; not awaited, so a producer that hangs cannot hold us.
    if (!exhausted) void Promise.resolve(it.return?.()).catch(() => undefined)
  }
  return { entries, bytes: consumed, endOfArchive }
}

function bytes(n: number): string {
  if (n >= MiB && n % MiB === 0) return `${n / MiB} MiB`
  if (n >= KiB && n % KiB === 0) return `${n / KiB} KiB`
  return `${n} bytes`
}
