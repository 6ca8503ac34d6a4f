/**
 * The self-describing header the generator writes at the start of every verify chunk (the
 * smallest write size of the job), as fio's `verify_header`: it names the chunk's offset, the
 * write that produced it and carries a checksum of the whole chunk, so a read back tells
 * corrupted, misplaced, stale and foreign data apart.
 *
 *   0  u32 magic 'iofc'      16  u32 generation (the write's sequence number)
 *   4  u32 chunk length      20  u32 seed tag (the job copy's seed, low 32 bits)
 *   8  u32 offset, low       24  u8  checksum kind (1 crc32c, 2 md5), 3 bytes zero
 *  12  u32 offset, high      28  checksum: crc32c (4 bytes) or md5 (16 bytes)
 *
 * The checksum covers the chunk except the checksum field itself. All fields little-endian.
 */
import { createHash } from 'node:crypto'
import { crc32c } from '../base/crc32c.js'
import type { VerifyKind } from './jobfile.js'

/** 'iofc' read as a little-endian u32. */
export const VERIFY_MAGIC = 0x63666f69
const SUM_AT = 28
/** Bytes of header per chunk for each checksum. */
export const VERIFY_HEADER_BYTES: Readonly<Record<VerifyKind, number>> = { crc32c: 32, md5: 48 }
const KIND_CODE: Readonly<Record<VerifyKind, number>> = { crc32c: 1, md5: 2 }

/** Which header field disagreed. */
export type VerifyField = 'magic' | 'checksum' | 'length' | 'offset' | 'seed' | 'generation'

/** A chunk that did not read back as written. */
export interface VerifyFailure {
  /** Disk offset of the chunk, bytes. */
  readonly offset: number
  readonly length: number
  readonly field: VerifyField
  readonly expected: string
  readonly found: string
  /** One line naming the offset, the field and both values. */
  readonly message: string
}

const hex = (n: number): string => `0x${(n >>> 0).toString(16).padStart(8, '0')}`

/** Writes a header, then the checksum, into `buf[at, at + length)`. */
export function writeVerifyHeader(
  kind: VerifyKind,
  view: DataView,
  buf: Uint8Array,
  at: number,
  length: number,
  offset: number,
  generation: number,
  seedTag: number,
): void {
  view.setUint32(at, VERIFY_MAGIC, true)
  view.setUint32(at + 4, length, true)
  view.setUint32(at + 8, offset >>> 0, true)
  view.setUint32(at + 12, Math.floor(offset / 4294967296), true)
  view.setUint32(at + 16, generation, true)
  view.setUint32(at + 20, seedTag, true)
  view.setUint32(at + 24, KIND_CODE[kind], true)
  if (kind === 'crc32c') view.setUint32(at + SUM_AT, chunkCrc(buf, at, length), true)
  else buf.set(chunkMd5(buf, at, length), at + SUM_AT)
}

/**
 * Checks the chunk at `buf[at, at + length)` read from disk offset `offset`. `generation` and
 * `seedTag` are what this job last wrote there, or null to check only that the chunk is an
 * intact chunk of this offset (data written by another job). Returns null when it verifies.
 */
export function checkVerifyChunk(
  kind: VerifyKind,
  view: DataView,
  buf: Uint8Array,
  at: number,
  length: number,
  offset: number,
  generation: number | null,
  seedTag: number | null,
): VerifyFailure | null {
  const fault = (field: VerifyField, expected: string, found: string, what: string): VerifyFailure => ({
    offset, length, field, expected, found,
    message: `verify failed at offset ${offset} (${length} bytes): ${what}: expected ${expected}, found ${found}`,
  })
  const magic = view.getUint32(at, true)
  if (magic !== VERIFY_MAGIC) return fault('magic', hex(VERIFY_MAGIC), hex(magic), 'no verify header (never written, or overwritten by other data)')
  if (kind === 'crc32c') {
    const want = view.getUint32(at + SUM_AT, true)
    const got = chunkCrc(buf, at, length)
    if (want !== got) return fault('checksum', hex(want), hex(got), 'crc32c of the chunk does not match its header (corrupted data)')
  } else {
    const want = Buffer.from(buf.buffer, buf.byteOffset + at + SUM_AT, 16).toString('hex')
    const got = Buffer.from(chunkMd5(buf, at, length)).toString('hex')
    if (want !== got) return fault('checksum', want, got, 'md5 of the chunk does not match its header (corrupted data)')
  }
  const len = view.getUint32(at + 4, true)
  if (len !== length) return fault('length', String(length), String(len), 'chunk length')
  const off = view.getUint32(at + 8, true) + view.getUint32(at + 12, true) * 4294967296
  if (off !== offset) return fault('offset', String(offset), String(off), 'header offset (data of another block: misplaced write or read)')
  if (seedTag !== null) {
    const seed = view.getUint32(at + 20, true)
    if (seed !== seedTag) return fault('seed', hex(seedTag), hex(seed), 'seed tag (data written by another job or VM)')
  }
  if (generation !== null) {
    const gen = view.getUint32(at + 16, true)
    if (gen !== generation) return fault('generation', String(generation), String(gen), gen < generation ? 'write generation (stale data: an older write)' : 'write generation')
  }
  return null
}

function chunkCrc(buf: Uint8Array, at: number, length: number): number {
  const head = crc32c(buf, 0, at, at + SUM_AT)
  return crc32c(buf, head, at + SUM_AT + 4, at + length)
}

function chunkMd5(buf: Uint8Array, at: number, length: number): Uint8Array {
  return createHash('md5')
    .update(buf.subarray(at, at + SUM_AT))
    .update(buf.subarray(at + SUM_AT + 16, at + length))
    .digest()
}
