import { z } from 'zod'
import { cidOfBytes, decode, encode, type CID } from './encoding.ts'
import { DecodeError, SignatureError, UnknownKindError } from './errors.ts'
import type { Identity, PeerIdString } from './identity.ts'
import { publicKeyOfPeer } from './identity.ts'
import { bytes, cid, parseWith, peerId, timeMs, uint } from './schema.ts'
import { verifySignature } from './signing.ts'

/** Version of the entry envelope. */
export const ENTRY_VERSION = 1
/** No pair-log entry may exceed this many encoded bytes. */
export const MAX_ENTRY_BYTES = 256 * 1024
export const ENTRY_SIGNING_DOMAIN = 'entry'

/**
 * Every kind a pair-log entry can have. Bodies are typed and decoded by
 * the package that owns the kind (@tally/deal for the deal lifecycle,
 * @tally/lineage for checkpoints); the envelope refuses any other kind.
 */
export const ENTRY_KINDS = [
  'open', // first entry of each chain: binds the author to the pair and its role
  'proposal',
  'counter',
  'acceptance',
  'reject',
  'collateral',
  'attestation',
  'manifest',
  'usage',
  'observation',
  'evaluation',
  'voucher',
  'ack',
  'rail-result',
  'dispute',
  'evidence-request',
  'evidence-answer',
  'ruling',
  'appeal',
  'certificate',
  'timeout',
  'checkpoint-proposal',
  'checkpoint',
  'close',
  'note',
] as const
export type EntryKind = (typeof ENTRY_KINDS)[number]
const KIND_SET: ReadonlySet<string> = new Set(ENTRY_KINDS)

/** The signed fields of an entry. */
export interface EntryFields {
  v: 1
  /** CID of the pair descriptor {provider, consumer}. */
  pair: CID
  author: PeerIdString
  /** 1, 2, 3 … per author within the pair. */
  seq: number
  /** CID of the author's previous entry; null for seq 1. */
  prev: CID | null
  /** CID of the latest counterparty entry the author had stored; null if none. */
  seen: CID | null
  time: number
  kind: EntryKind
  body: unknown
}

export interface Entry extends EntryFields {
  /** Ed25519 signature by `author` over `tally/v1/entry` NUL dagcbor(fields). */
  sig: Uint8Array
}

/** An entry with its canonical bytes and CID, as stored and sent. */
export interface EntryBlock {
  entry: Entry
  bytes: Uint8Array
  cid: CID
}

const entrySchema = z.strictObject({
  v: z.literal(ENTRY_VERSION),
  pair: cid,
  author: peerId,
  seq: uint.min(1),
  prev: cid.nullable(),
  seen: cid.nullable(),
  time: timeMs,
  kind: z.string().max(32),
  body: z.unknown(),
  sig: bytes,
})

function fieldsBytes(f: EntryFields): Uint8Array {
  return encode({ v: f.v, pair: f.pair, author: f.author, seq: f.seq, prev: f.prev, seen: f.seen, time: f.time, kind: f.kind, body: f.body })
}

/** Sign entry fields as `identity` (which must be the author). */
export function signEntry(identity: Identity, fields: EntryFields): EntryBlock {
  if (fields.author !== identity.peerId) throw new SignatureError('entry author is not the signing identity')
  const entry: Entry = { ...fields, sig: identity.sign(ENTRY_SIGNING_DOMAIN, fieldsBytes(fields)) }
  const data = encode(entry)
  if (data.byteLength > MAX_ENTRY_BYTES) throw new DecodeError(`entry of ${data.byteLength} bytes exceeds limit ${MAX_ENTRY_BYTES}`)
  return { entry, bytes: data, cid: cidOfBytes(data) }
}

/** Validate an already-decoded value as an entry envelope (no signature check). */
export function entryFromValue(value: unknown): Entry {
  const e = parseWith(entrySchema, value, 'entry')
  if (!KIND_SET.has(e.kind)) throw new UnknownKindError(`unknown entry kind ${JSON.stringify(e.kind)}`, { kind: e.kind })
  if ((e.seq === 1) !== (e.prev === null)) {
    throw new DecodeError(e.seq === 1 ? 'entry seq 1 must have prev null' : `entry seq ${e.seq} lacks prev`, { seq: e.seq })
  }
  return e as Entry
}

/**
 * Decode entry bytes strictly: size bound, DAG-CBOR, envelope schema,
 * known kind. Does not check the signature (see `entrySignatureValid`);
 * the CID is computed from the bytes received.
 */
export function decodeEntry(data: Uint8Array): EntryBlock {
  const entry = entryFromValue(decode(data, MAX_ENTRY_BYTES))
  return { entry, bytes: data, cid: cidOfBytes(data) }
}

export function entrySignatureValid(entry: Entry): boolean {
  return verifySignature(ENTRY_SIGNING_DOMAIN, fieldsBytes(entry), entry.sig, publicKeyOfPeer(entry.author))
}

/** Throw `SignatureError` unless the entry's signature verifies. */
export function assertEntrySignature(entry: Entry, cidForMessage?: CID): void {
  if (!entrySignatureValid(entry)) {
    throw new SignatureError(`entry ${entry.author}#${entry.seq} has an invalid signature`, {
      author: entry.author,
      seq: entry.seq,
      cid: cidForMessage?.toString(),
    })
  }
}
