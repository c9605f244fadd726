import { createHash } from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { DecodeError, EncodeError } from './errors.ts'

/** Multicodec code of dag-cbor (multiformats table). */
export const DAG_CBOR_CODE = 0x71
/** Multihash code of sha2-256 (multiformats table). */
export const SHA256_CODE = 0x12
/** Upper bound for any single record; bigger inputs are refused before decoding. */
export const MAX_RECORD_BYTES = 1024 * 1024

export { CID }

/** Canonical DAG-CBOR bytes of a value (sorted map keys, no floats for money/time by convention). */
export function encode(value: unknown): Uint8Array {
  try {
    return dagCbor.encode(value)
  } catch (err) {
    throw new EncodeError(`cannot encode value as DAG-CBOR: ${(err as Error).message}`, {}, { cause: err })
  }
}

/**
 * Decode DAG-CBOR under a size bound. @ipld/dag-cbor decodes strictly
 * (minimal integers, no duplicate keys, no undefined/NaN/indefinite
 * lengths). Non-canonical key order is not refused here; it needs no
 * check because CIDs hash the bytes received and signatures cover a
 * fresh canonical re-encoding, so odd bytes only ever fail a link.
 */
export function decode(bytes: Uint8Array, maxBytes = MAX_RECORD_BYTES): unknown {
  if (!(bytes instanceof Uint8Array)) throw new DecodeError('expected Uint8Array')
  if (bytes.byteLength > maxBytes) {
    throw new DecodeError(`record of ${bytes.byteLength} bytes exceeds limit ${maxBytes}`, { size: bytes.byteLength, limit: maxBytes })
  }
  let value: unknown
  try {
    value = dagCbor.decode(bytes)
  } catch (err) {
    throw new DecodeError(`malformed DAG-CBOR: ${(err as Error).message}`, {}, { cause: err })
  }
  return value
}

/** sha2-256 of bytes. */
export function sha256(bytes: Uint8Array): Uint8Array {
  const h = createHash('sha256').update(bytes).digest()
  return new Uint8Array(h.buffer, h.byteOffset, h.byteLength)
}

/** CIDv1 (dag-cbor, sha2-256) of already-encoded bytes. */
export function cidOfBytes(bytes: Uint8Array): CID {
  return CID.createV1(DAG_CBOR_CODE, Digest.create(SHA256_CODE, sha256(bytes)))
}

/** Encode a value and return its bytes and CID together. */
export function toBlock(value: unknown): { bytes: Uint8Array; cid: CID } {
  const bytes = encode(value)
  return { bytes, cid: cidOfBytes(bytes) }
}

/** Parse a CID string, raising a typed error. */
export function parseCid(text: string): CID {
  try {
    return CID.parse(text)
  } catch (err) {
    throw new DecodeError(`not a CID: ${JSON.stringify(text.slice(0, 80))}`, {}, { cause: err })
  }
}

/** True when `a` and `b` are the same CID (null-safe). */
export function sameCid(a: CID | null | undefined, b: CID | null | undefined): boolean {
  if (a == null || b == null) return (a ?? null) === (b ?? null)
  return a.equals(b)
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}
