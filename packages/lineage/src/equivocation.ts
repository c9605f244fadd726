/**
 * Equivocation proofs: two validly signed entries by one author with the
 * same (pair, seq) and different signed fields. Self-contained: the author's
 * key is inside its peer id, so anyone can check a proof offline.
 */
import { type EntryBlock, bytesEqual, decode, encode, entrySignatureValid, parseWith, schema } from '@tally/core'
import { decodeEntryFast } from './entry-codec.ts'
import { InvalidEquivocationProofError } from './errors.ts'

export interface EquivocationProof {
  /** Entry bytes, the smaller CID first. */
  a: Uint8Array
  b: Uint8Array
}

export const EQUIVOCATION_PROOF_TYPE = 'tally-equivocation'
/** Two entries of at most 256 KiB each plus framing. */
export const MAX_EQUIVOCATION_PROOF_BYTES = 520 * 1024

const proofSchema = schema.z.strictObject({ type: schema.z.literal(EQUIVOCATION_PROOF_TYPE), v: schema.z.literal(1), a: schema.bytes, b: schema.bytes })

/** What a verified proof shows. */
export interface Equivocation {
  pair: EntryBlock['entry']['pair']
  author: string
  seq: number
  a: EntryBlock
  b: EntryBlock
}

function signedFields(e: EntryBlock['entry']): Uint8Array {
  const { sig: _sig, ...fields } = e
  return encode(fields)
}

function compareBytes(x: Uint8Array, y: Uint8Array): number {
  const n = Math.min(x.byteLength, y.byteLength)
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i]! - y[i]!
  return x.byteLength - y.byteLength
}

/** Build a proof from two conflicting entries (order does not matter; the proof is canonical). */
export function makeEquivocationProof(x: EntryBlock, y: EntryBlock): EquivocationProof {
  return compareBytes(x.cid.bytes, y.cid.bytes) <= 0 ? { a: x.bytes, b: y.bytes } : { a: y.bytes, b: x.bytes }
}

/**
 * Check a proof: both entries decode strictly, share pair, author and seq,
 * differ in what the author signed (not merely in encoding), and both
 * signatures verify. Throws InvalidEquivocationProofError otherwise.
 */
export function verifyEquivocationProof(proof: EquivocationProof): Equivocation {
  if (proof === null || typeof proof !== 'object' || !(proof.a instanceof Uint8Array) || !(proof.b instanceof Uint8Array)) {
    throw new InvalidEquivocationProofError('an equivocation proof holds two entries as bytes')
  }
  let a: EntryBlock
  let b: EntryBlock
  try {
    a = decodeEntryFast(proof.a)
    b = decodeEntryFast(proof.b)
  } catch (err) {
    throw new InvalidEquivocationProofError(`proof entry does not decode: ${(err as Error).message}`, {}, { cause: err })
  }
  if (!a.entry.pair.equals(b.entry.pair)) throw new InvalidEquivocationProofError('proof entries belong to different pairs')
  if (a.entry.author !== b.entry.author) throw new InvalidEquivocationProofError('proof entries have different authors')
  if (a.entry.seq !== b.entry.seq) throw new InvalidEquivocationProofError('proof entries have different seqs')
  if (bytesEqual(signedFields(a.entry), signedFields(b.entry))) {
    throw new InvalidEquivocationProofError('proof entries sign the same fields (an encoding variant, not a fork)')
  }
  for (const e of [a, b]) {
    if (!entrySignatureValid(e.entry)) throw new InvalidEquivocationProofError(`proof entry ${e.cid} is not validly signed by ${e.entry.author}`)
  }
  return { pair: a.entry.pair, author: a.entry.author, seq: a.entry.seq, a, b }
}

export function encodeEquivocationProof(proof: EquivocationProof): Uint8Array {
  return encode({ type: EQUIVOCATION_PROOF_TYPE, v: 1, a: proof.a, b: proof.b })
}

/** Decode proof bytes (shape only; call verifyEquivocationProof to check it). Raises DecodeError/SchemaError. */
export function decodeEquivocationProof(bytes: Uint8Array): EquivocationProof {
  const v = parseWith(proofSchema, decode(bytes, MAX_EQUIVOCATION_PROOF_BYTES), 'equivocation proof')
  return { a: v.a, b: v.b }
}
