/**
 * Ed25519 signing keys and descriptor signatures (node:crypto only).
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto'
import { lstat, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { KeyFileExists, KeyInvalid } from '../errors.js'
import { canonicalJson } from '../../base/canonical-json.js'
import type { Descriptor, DescriptorSignature } from './descriptor.js'

/** Where generateKeyPair wrote the pair, and the public key's fingerprint. */
export interface KeyPairFiles {
  readonly privateKeyPath: string
  readonly publicKeyPath: string
  readonly fingerprint: string
}

/** The result of checking a descriptor's signature. */
export type SignatureCheck =
  | { readonly ok: true; readonly fingerprint: string }
  | { readonly ok: false; readonly fingerprint?: string; readonly reason: string }

/**
 * Creates `outDir` (and parents) and writes `private.pem` (PKCS#8, mode 0600) and `public.pem`
 * (SPKI). Existing key files are never overwritten: losing a private key cannot be undone.
 */
export async function generateKeyPair(outDir: string): Promise<KeyPairFiles> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  await mkdir(outDir, { recursive: true })
  const privateKeyPath = join(outDir, 'private.pem')
  const publicKeyPath = join(outDir, 'public.pem')
  // Checked up front so a refusal never leaves half a pair behind.
  for (const path of [privateKeyPath, publicKeyPath]) {
    if (await exists(path)) throw KeyFileExists({ path })
  }
  await writeNew(privateKeyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600)
  await writeNew(publicKeyPath, publicKey.export({ type: 'spki', format: 'pem' }) as string, 0o644)
  return { privateKeyPath, publicKeyPath, fingerprint: fingerprint(publicKey) }
}

/**
 * The key's fingerprint: lowercase hex SHA-256 of its SPKI DER. Accepts a KeyObject, a PEM
 * (public or private: a private key's public half is used) or base64 SPKI DER, as found in
 * a descriptor's `signature.publicKey`.
 */
export function fingerprint(key: KeyObject | string): string {
  return createHash('sha256').update(spkiDer(toPublicKey(key, 'public key'))).digest('hex')
}

/** Reads a PKCS#8 Ed25519 private key PEM from `path`; refuses anything else with KeyInvalid. */
export async function readPrivateKey(path: string): Promise<string> {
  let pem: string
  try {
    pem = await readFile(path, 'utf8')
  } catch (err) {
    throw KeyInvalid({ source: path, reason: (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message }, err)
  }
  privateKeyOf(pem, path)
  return pem
}

/**
 * Returns `descriptor` with `signature` set: Ed25519 over the canonical JSON of the descriptor
 * without `signature`, the public key embedded as base64 SPKI DER.
 */
export function signDescriptor(descriptor: Descriptor, privateKeyPem: string): Descriptor {
  const key = privateKeyOf(privateKeyPem, 'private key')
  const value = sign(null, signedBytes(descriptor), key)
  const signature: DescriptorSignature = {
    algorithm: 'ed25519',
    publicKey: spkiDer(createPublicKey(key)).toString('base64'),
    value: value.toString('base64'),
  }
  return { ...unsigned(descriptor), signature }
}

/** Checks the descriptor's own signature with its own embedded key (trust is judged elsewhere). */
export function verifyDescriptorSignature(descriptor: Descriptor): SignatureCheck {
  const sig = descriptor.signature
  if (sig === undefined) return { ok: false, reason: 'the descriptor is not signed' }
  // The descriptor may not have passed the schema (certification reports every step).
  if (typeof sig !== 'object' || sig === null || typeof sig.publicKey !== 'string' || typeof sig.value !== 'string') {
    return { ok: false, reason: 'signature must be an object with string publicKey and value' }
  }
  if (sig.algorithm !== 'ed25519') return { ok: false, reason: `algorithm ${JSON.stringify(sig.algorithm)} is not ed25519` }
  let key: KeyObject
  try {
    key = toPublicKey(sig.publicKey, 'signature.publicKey')
  } catch (err) {
    return { ok: false, reason: (err as Error).message }
  }
  const fp = fingerprint(key)
  const ok = verify(null, signedBytes(descriptor), key, Buffer.from(sig.value, 'base64'))
  return ok ? { ok: true, fingerprint: fp } : { ok: false, fingerprint: fp, reason: `the signature does not match the descriptor (key ${fp})` }
}

function signedBytes(descriptor: Descriptor): Buffer {
  return Buffer.from(canonicalJson(unsigned(descriptor)), 'utf8')
}

function unsigned(descriptor: Descriptor): Descriptor {
  const { signature: _signature, ...rest } = descriptor
  return rest
}

function privateKeyOf(pem: string, source: string): KeyObject {
  let key: KeyObject
  try {
    key = createPrivateKey(pem)
  } catch (err) {
    throw KeyInvalid({ source, reason: 'not a PEM private key' }, err)
  }
  if (key.asymmetricKeyType !== 'ed25519') throw KeyInvalid({ source, reason: `it is an ${key.asymmetricKeyType ?? 'unknown'} key` })
  return key
}

function toPublicKey(key: KeyObject | string, source: string): KeyObject {
  let out: KeyObject
  try {
    if (typeof key !== 'string') out = key.type === 'private' ? createPublicKey(key) : key
    else if (key.includes('-----BEGIN')) out = createPublicKey(key)
    else out = createPublicKey({ key: Buffer.from(key, 'base64'), format: 'der', type: 'spki' })
  } catch (err) {
    throw KeyInvalid({ source, reason: 'not a PEM or base64 SPKI public key' }, err)
  }
  if (out.asymmetricKeyType !== 'ed25519') throw KeyInvalid({ source, reason: `it is an ${out.asymmetricKeyType ?? 'unknown'} key` })
  return out
}

function spkiDer(key: KeyObject): Buffer {
  return key.export({ type: 'spki', format: 'der' })
}

async function writeNew(path: string, data: string, mode: number): Promise<void> {
  try {
    await writeFile(path, data, { mode, flag: 'wx' })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw KeyFileExists({ path }, err)
    throw err
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path)
    return true
  } catch {
    return false
  }
}
