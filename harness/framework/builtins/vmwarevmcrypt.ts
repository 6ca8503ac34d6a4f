/**
 * VMW_vmwarevmcrypt: AES-256-XTS per 512-byte sector (the tweak is the sector number) with a
 * per-disk key created at attach and kept in the sidecar. Writes pass down ciphertext (a payload
 * replacement, allowed to the encryption class); reads are decrypted in place in `done`.
 * A sector of all zeros below is an unwritten or unmapped one and reads as zeros: ciphertext of
 * 512 zero bytes is, for a random key, never all zeros.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import type { Decision, DiskContext, FilterInstance, FilterModule, Io, Outcome } from '../../sdk/index.js'

const KEY_BYTES = 64
const MAGIC = new TextEncoder().encode('VMCRYPT1')

async function readKey(disk: DiskContext): Promise<Uint8Array> {
  const size = await disk.sidecar.size()
  if (size >= MAGIC.length + KEY_BYTES) {
    const raw = await disk.sidecar.read(0, MAGIC.length + KEY_BYTES)
    if (MAGIC.every((b, i) => raw[i] === b)) return raw.slice(MAGIC.length)
  }
  throw new Error('no encryption key in the sidecar (the disk was not attached with vmwarevmcrypt)')
}

function tweak(sector: number): Buffer {
  const t = Buffer.alloc(16)
  t.writeUInt32LE(sector >>> 0, 0)
  t.writeUInt32LE(Math.floor(sector / 4294967296), 4)
  return t
}

function crypt(key: Uint8Array, offset: number, src: Uint8Array, dst: Uint8Array, encrypt: boolean): void {
  const first = offset / 512
  for (let s = 0; s < src.length / 512; s++) {
    const from = s * 512
    const sector = src.subarray(from, from + 512)
    if (!encrypt && isZero(sector)) {
      dst.fill(0, from, from + 512)
      continue
    }
    const c = encrypt ? createCipheriv('aes-256-xts', key, tweak(first + s)) : createDecipheriv('aes-256-xts', key, tweak(first + s))
    const out = c.update(sector)
    c.final()
    dst.set(out, from)
  }
}

function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false
  return true
}

const vmcrypt: FilterModule = {
  abiVersion: 1,
  name: 'vmwarevmcrypt',
  vendor: 'VMW',
  version: '1.0.0',
  class: 'encryption',
  policySchema: { type: 'object', properties: {}, additionalProperties: false },
  async attach(disk) {
    let key = randomBytes(KEY_BYTES)
    // XTS refuses a key whose two halves are equal
    while (key.subarray(0, 32).equals(key.subarray(32))) key = randomBytes(KEY_BYTES)
    const rec = new Uint8Array(MAGIC.length + KEY_BYTES)
    rec.set(MAGIC)
    rec.set(key, MAGIC.length)
    await disk.sidecar.write(0, rec)
    await disk.sidecar.sync()
  },
  async open(disk): Promise<FilterInstance> {
    const key = await readKey(disk)
    return {
      start(io: Io): Decision {
        if (io.op !== 'write') return { kind: 'pass' }
        const out = new Uint8Array(io.length)
        crypt(key, io.offset, io.data!, out, true)
        return { kind: 'pass', data: out }
      },
      done(io: Io, outcome: Outcome): void {
        if (io.op === 'read' && outcome.ok) crypt(key, io.offset, io.data!, io.data!, false)
      },
    }
  },
}
export default vmcrypt
