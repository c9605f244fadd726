import { createPrivateKey, createPublicKey, sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto'
import { IdentityError, SignatureError } from './errors.ts'

/** Every Tally signature covers `tally/v1/<domain>` NUL payload, so one purpose's signature never verifies for another. */
export const DOMAIN_PREFIX = 'tally/v1/'
export const ED25519_SIGNATURE_BYTES = 64
export const ED25519_PUBLIC_KEY_BYTES = 32

// DER prefixes that wrap a raw Ed25519 key for node:crypto (RFC 8410).
const PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20])
const SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00])

const encoder = new TextEncoder()
const domainCache = new Map<string, Uint8Array>()

/** The exact bytes that get signed for a domain and payload. */
export function signingBytes(domain: string, payload: Uint8Array): Uint8Array {
  let tag = domainCache.get(domain)
  if (tag === undefined) {
    if (!/^[a-z0-9][a-z0-9./-]*$/.test(domain)) throw new SignatureError(`invalid signing domain ${JSON.stringify(domain)}`)
    tag = encoder.encode(`${DOMAIN_PREFIX}${domain}\u0000`)
    domainCache.set(domain, tag)
  }
  const out = new Uint8Array(tag.byteLength + payload.byteLength)
  out.set(tag, 0)
  out.set(payload, tag.byteLength)
  return out
}

/** Signs with a node:crypto KeyObject built once (2x faster than rebuilding per call). */
export class Ed25519Signer {
  readonly publicKey: Uint8Array
  readonly #key: KeyObject
  constructor(seed: Uint8Array, publicKey: Uint8Array) {
    if (seed.byteLength !== 32) throw new IdentityError(`expected Ed25519 seed of length 32, got length=${seed.byteLength}`)
    if (publicKey.byteLength !== ED25519_PUBLIC_KEY_BYTES) {
      throw new IdentityError(`expected Ed25519 public key of length 32, got length=${publicKey.byteLength}`)
    }
    const der = new Uint8Array(PKCS8_PREFIX.byteLength + 32)
    der.set(PKCS8_PREFIX, 0)
    der.set(seed, PKCS8_PREFIX.byteLength)
    this.#key = createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' })
    this.publicKey = publicKey
  }

  sign(domain: string, payload: Uint8Array): Uint8Array {
    const sig = edSign(null, signingBytes(domain, payload), this.#key)
    return new Uint8Array(sig.buffer, sig.byteOffset, sig.byteLength)
  }
}

/** The raw public key of an Ed25519 seed. */
export function ed25519PublicFromSeed(seed: Uint8Array): Uint8Array {
  const der = new Uint8Array(PKCS8_PREFIX.byteLength + 32)
  der.set(PKCS8_PREFIX, 0)
  der.set(seed, PKCS8_PREFIX.byteLength)
  const spki = createPublicKey(createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' })).export({ format: 'der', type: 'spki' })
  return new Uint8Array(spki.subarray(spki.byteLength - 32))
}

const MAX_CACHED_KEYS = 4096
const publicKeyCache = new Map<string, KeyObject>()

function publicKeyObject(raw: Uint8Array): KeyObject {
  const id = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64')
  let key = publicKeyCache.get(id)
  if (key === undefined) {
    if (raw.byteLength !== ED25519_PUBLIC_KEY_BYTES) {
      throw new IdentityError(`expected Ed25519 public key of length 32, got length=${raw.byteLength}`)
    }
    const der = new Uint8Array(SPKI_PREFIX.byteLength + 32)
    der.set(SPKI_PREFIX, 0)
    der.set(raw, SPKI_PREFIX.byteLength)
    try {
      key = createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' })
    } catch (err) {
      throw new IdentityError('invalid Ed25519 public key', {}, { cause: err })
    }
    if (publicKeyCache.size >= MAX_CACHED_KEYS) {
      const oldest = publicKeyCache.keys().next().value
      if (oldest !== undefined) publicKeyCache.delete(oldest)
    }
    publicKeyCache.set(id, key)
  }
  return key
}

/** True when `sig` is a valid Ed25519 signature by `publicKey` over the domain-tagged payload. */
export function verifySignature(domain: string, payload: Uint8Array, sig: Uint8Array, publicKey: Uint8Array): boolean {
  if (sig.byteLength !== ED25519_SIGNATURE_BYTES) return false
  try {
    return edVerify(null, signingBytes(domain, payload), publicKeyObject(publicKey), sig)
  } catch {
    return false
  }
}
