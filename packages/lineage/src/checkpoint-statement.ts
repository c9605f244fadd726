/**
 * The tally statement: both parties sign {pair, both heads, balances,
 * Merkle root, size, prev, time}. Records, schemas and signatures only;
 * the flow (propose, cosign) is in checkpoint.ts.
 */
import { type CID, type Identity, type PeerIdString, encode, parseWith, schema, toBlock, verifyByPeer } from '@tally/core'
import type { PairDescriptor, PartyRole } from './api.ts'
import { CheckpointError } from './errors.ts'
import { HASH_BYTES } from './merkle.ts'

export const CHECKPOINT_TYPE = 'tally-checkpoint'
export const CHECKPOINT_SIGNING_DOMAIN = 'checkpoint'

export interface CheckpointHeadRef {
  seq: number
  cid: CID
}

export interface CheckpointStatement {
  type: typeof CHECKPOINT_TYPE
  pair: CID
  heads: { provider: CheckpointHeadRef | null; consumer: CheckpointHeadRef | null }
  /** Opaque DAG-CBOR value chosen by the deal layer, e.g. {USD: {paid: 100}}. */
  balances: unknown
  /** RFC 6962 root over the covered entries' CIDs in leaf order (see leaves.ts). */
  root: Uint8Array
  /** Number of covered entries: heads.provider.seq + heads.consumer.seq. */
  size: number
  /** CID of the statement this one extends (its leaves come first), null for the first. */
  prev: CID | null
  time: number
}

export interface CheckpointSigs {
  provider: Uint8Array
  consumer: Uint8Array
}

/** Body of a 'checkpoint-proposal' entry: the statement and its author's signature. */
export interface CheckpointProposalBody {
  statement: CheckpointStatement
  sig: Uint8Array
}

/** Body of a 'checkpoint' entry, appended by the party that did not propose. */
export interface CheckpointBody {
  statement: CheckpointStatement
  sigs: CheckpointSigs
  /** CID of the 'checkpoint-proposal' entry this countersigns. */
  proposal: CID
}

const z = schema.z
const headRef = z.strictObject({ seq: schema.uint.min(1), cid: schema.cid }).nullable()
const hash = schema.bytes.refine((b) => b.byteLength === HASH_BYTES, { message: `expected ${HASH_BYTES} bytes` })
const sig = schema.bytes.refine((b) => b.byteLength === 64, { message: 'expected a 64-byte Ed25519 signature' })

export const statementSchema = z.strictObject({
  type: z.literal(CHECKPOINT_TYPE),
  pair: schema.cid,
  heads: z.strictObject({ provider: headRef, consumer: headRef }),
  balances: z.unknown().refine((v) => v !== undefined, { message: 'balances are required' }),
  root: hash,
  size: schema.uint,
  prev: schema.cid.nullable(),
  time: schema.timeMs,
})
export const proposalBodySchema = z.strictObject({ statement: statementSchema, sig })
export const checkpointBodySchema = z.strictObject({ statement: statementSchema, sigs: z.strictObject({ provider: sig, consumer: sig }), proposal: schema.cid })

function checkSize(s: CheckpointStatement): CheckpointStatement {
  const expected = (s.heads.provider?.seq ?? 0) + (s.heads.consumer?.seq ?? 0)
  if (s.size !== expected) throw new CheckpointError(`checkpoint size ${s.size} is not the sum of its head seqs (${expected})`)
  return s
}

export function parseStatement(value: unknown): CheckpointStatement {
  return checkSize(parseWith(statementSchema, value, 'checkpoint statement') as CheckpointStatement)
}

export function parseProposalBody(value: unknown): CheckpointProposalBody {
  const b = parseWith(proposalBodySchema, value, 'checkpoint-proposal body') as CheckpointProposalBody
  checkSize(b.statement)
  return b
}

export function parseCheckpointBody(value: unknown): CheckpointBody {
  const b = parseWith(checkpointBodySchema, value, 'checkpoint body') as CheckpointBody
  checkSize(b.statement)
  return b
}

export function statementCid(s: CheckpointStatement): CID {
  return toBlock(s).cid
}

export function signStatement(identity: Identity, s: CheckpointStatement): Uint8Array {
  return identity.sign(CHECKPOINT_SIGNING_DOMAIN, encode(s))
}

export function statementSignatureValid(s: CheckpointStatement, signature: Uint8Array, signer: PeerIdString): boolean {
  try {
    return verifyByPeer(signer, CHECKPOINT_SIGNING_DOMAIN, encode(s), signature)
  } catch {
    return false
  }
}

/** Throw CheckpointError unless both parties' signatures verify. */
export function assertStatementSigs(s: CheckpointStatement, sigs: CheckpointSigs, pair: PairDescriptor): void {
  for (const role of ['provider', 'consumer'] as PartyRole[]) {
    const signer = role === 'provider' ? pair.provider : pair.consumer
    if (!statementSignatureValid(s, sigs[role], signer)) throw new CheckpointError(`checkpoint signature of the ${role} does not verify`, { role })
  }
}
