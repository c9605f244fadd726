/**
 * Proving one entry to an auditor without the whole log: an RFC 6962 audit
 * path from the entry's leaf to a countersigned checkpoint's root. The
 * proof carries the entry, the statement with both signatures and the
 * parties, so it is checked with no other input.
 *
 * Consistency proofs between two checkpoints (the older's leaves are a
 * prefix of the newer's) let witnesses cosign a checkpoint only if it
 * extends the last one they saw.
 */
import { type CID, type EntryBlock, type Identity, type SignedDocument, decode, encode, parseWith, schema, signDocument, verifyDocument } from '@tally/core'
import type { PairDescriptor, PartyRole } from './api.ts'
import {
  type CheckpointSigs,
  type CheckpointStatement,
  assertStatementSigs,
  parseCheckpointBody,
  statementCid,
  statementSchema,
} from './checkpoint-statement.ts'
import { type CheckpointState, newLeaves } from './coverage.ts'
import { decodeEntryFast } from './entry-codec.ts'
import { ProofError } from './errors.ts'
import { auditPath, bytesEq, consistencyProof, leafHash, verifyAuditPath, verifyConsistency } from './merkle.ts'
import { pairDescriptorSchema, pairIdOf, roleOf } from './pair.ts'
import type { PairLog } from './pair-log.ts'

export const INCLUSION_PROOF_TYPE = 'tally-inclusion'
export const MAX_PROOF_BYTES = 1024 * 1024

/** A countersigned checkpoint as it travels on its own. */
export interface SignedCheckpoint {
  parties: PairDescriptor
  statement: CheckpointStatement
  sigs: CheckpointSigs
}

export interface InclusionProof extends SignedCheckpoint {
  type: typeof INCLUSION_PROOF_TYPE
  v: 1
  /** The entry's bytes. */
  entry: Uint8Array
  /** Leaf index of the entry in the checkpoint's tree. */
  index: number
  path: Uint8Array[]
}

const hash = schema.bytes.refine((b) => b.byteLength === 32, { message: 'expected 32 bytes' })
const sig = schema.bytes.refine((b) => b.byteLength === 64, { message: 'expected 64 bytes' })
const inclusionSchema = schema.z.strictObject({
  type: schema.z.literal(INCLUSION_PROOF_TYPE),
  v: schema.z.literal(1),
  parties: pairDescriptorSchema,
  statement: statementSchema,
  sigs: schema.z.strictObject({ provider: sig, consumer: sig }),
  entry: schema.bytes,
  index: schema.uint,
  path: schema.z.array(hash).max(64),
})

/** The states from the first checkpoint to `state`, following prev links. */
function lineageOf(log: PairLog, state: CheckpointState): CheckpointState[] {
  const out: CheckpointState[] = []
  let s: CheckpointState | undefined = state
  while (s !== undefined) {
    out.unshift(s)
    if (s.prev === null) break
    const prev = log.checkpointState(s.prev)
    if (prev === undefined) throw new ProofError(`checkpoint ${s.statement} extends ${s.prev}, which is not held`)
    s = prev
  }
  return out
}

/** All leaves (entry CIDs in leaf order) of a held checkpoint. */
export async function checkpointLeaves(log: PairLog, state: CheckpointState): Promise<CID[]> {
  const leaves: CID[] = []
  let from = { provider: 0, consumer: 0 }
  for (const s of lineageOf(log, state)) {
    leaves.push(...(await newLeaves(log, from, s.heads)))
    from = s.heads
  }
  return leaves
}

/** The countersigned checkpoint of a held state, as it travels on its own. */
export async function signedCheckpoint(log: PairLog, state: CheckpointState): Promise<SignedCheckpoint> {
  const entry = await log.entryByCid(state.entry)
  if (entry === undefined) throw new ProofError(`checkpoint entry ${state.entry} is not held`)
  const body = parseCheckpointBody(entry.entry.body)
  return { parties: log.pair, statement: body.statement, sigs: body.sigs }
}

/**
 * Prove that the entry `cid` is covered by a checkpoint (by default the
 * latest held). Throws ProofError if it is not covered.
 */
export async function inclusionProof(log: PairLog, cid: CID, checkpoint?: CID): Promise<InclusionProof> {
  const state = checkpoint === undefined ? log.latestCheckpoint() : (log.checkpointState(checkpoint) ?? null)
  if (state === null) throw new ProofError(checkpoint === undefined ? 'the log holds no checkpoint' : `checkpoint ${checkpoint} is not held`)
  const leaves = await checkpointLeaves(log, state)
  const index = leaves.findIndex((l) => l.equals(cid))
  if (index < 0) throw new ProofError(`entry ${cid} is not covered by checkpoint ${state.statement}`)
  const entry = await log.entryByCid(cid)
  if (entry === undefined) throw new ProofError(`entry ${cid} is not held`)
  const signed = await signedCheckpoint(log, state)
  return {
    type: INCLUSION_PROOF_TYPE,
    v: 1,
    ...signed,
    entry: entry.bytes,
    index,
    path: auditPath(
      leaves.map((l) => leafHash(l.bytes)),
      index,
    ),
  }
}

/**
 * Check an inclusion proof with no other input: both parties' signatures
 * on the statement, the entry belongs to the pair and lies under the
 * statement's heads, and the audit path leads to the signed root.
 */
export function verifyInclusion(proof: InclusionProof): { entry: EntryBlock; statement: CheckpointStatement } {
  const p = parseWith(inclusionSchema, proof, 'inclusion proof') as InclusionProof
  if (!pairIdOf(p.parties).equals(p.statement.pair)) throw new ProofError('the parties do not match the statement pair')
  try {
    assertStatementSigs(p.statement, p.sigs, p.parties)
  } catch (err) {
    throw new ProofError((err as Error).message, {}, { cause: err })
  }
  const entry = decodeEntryFast(p.entry)
  if (!entry.entry.pair.equals(p.statement.pair)) throw new ProofError('the entry belongs to another pair')
  let role: PartyRole
  try {
    role = roleOf(p.parties, entry.entry.author)
  } catch {
    throw new ProofError('the entry is not by a party of the pair')
  }
  const head = p.statement.heads[role]
  if (head === null || entry.entry.seq > head.seq) throw new ProofError('the entry lies beyond the checkpoint head of its chain')
  if (!verifyAuditPath(leafHash(entry.cid.bytes), p.index, p.statement.size, p.path, p.statement.root)) {
    throw new ProofError('the audit path does not lead to the checkpoint root')
  }
  return { entry, statement: p.statement }
}

export function encodeInclusionProof(p: InclusionProof): Uint8Array {
  return encode(p)
}

/** Decode proof bytes (shape only; verifyInclusion checks it). Raises DecodeError/SchemaError. */
export function decodeInclusionProof(bytes: Uint8Array): InclusionProof {
  return parseWith(inclusionSchema, decode(bytes, MAX_PROOF_BYTES), 'inclusion proof') as InclusionProof
}

// ---------------------------------------------------------------------------
// Witnesses

export const WITNESS_DOC_TYPE = 'witness'

export interface WitnessBody {
  pair: CID
  statement: CID
  root: Uint8Array
  size: number
  time: number
}

const witnessBodySchema = schema.z.strictObject({ pair: schema.cid, statement: schema.cid, root: hash, size: schema.uint, time: schema.timeMs })

/** Consistency proof from an older held checkpoint to a newer one that extends it. */
export async function checkpointConsistency(log: PairLog, older: CID, newer: CID): Promise<Uint8Array[]> {
  const o = log.checkpointState(older)
  const n = log.checkpointState(newer)
  if (o === undefined || n === undefined) throw new ProofError('both checkpoints must be held')
  if (!lineageOf(log, n).some((s) => s.statement.equals(o.statement))) throw new ProofError('the newer checkpoint does not extend the older')
  if (o.size === 0 || o.size === n.size) return []
  const leaves = await checkpointLeaves(log, n)
  return consistencyProof(
    leaves.map((l) => leafHash(l.bytes)),
    o.size,
  )
}

export interface WitnessOptions {
  /** The last checkpoint this witness cosigned for the pair, and a consistency proof from it to the new one. */
  previous?: { statement: CheckpointStatement; proof: Uint8Array[] }
  time?: number
}

/**
 * Cosign a countersigned checkpoint as a witness: both parties' signatures
 * must verify and, when the witness saw an earlier checkpoint of the pair,
 * the new tree must extend it (RFC 6962 consistency). The result is a
 * signed 'witness' document anyone can check with `verifyWitness`.
 */
export function witnessCosign(witness: Identity, checkpoint: SignedCheckpoint, opts: WitnessOptions = {}): SignedDocument<WitnessBody> {
  const s = checkpoint.statement
  if (!pairIdOf(checkpoint.parties).equals(s.pair)) throw new ProofError('the parties do not match the statement pair')
  try {
    assertStatementSigs(s, checkpoint.sigs, checkpoint.parties)
  } catch (err) {
    throw new ProofError((err as Error).message, {}, { cause: err })
  }
  const prev = opts.previous
  if (prev !== undefined) {
    const ps = prev.statement
    if (!ps.pair.equals(s.pair)) throw new ProofError('the previous checkpoint is of another pair')
    const same = ps.size === s.size && bytesEq(ps.root, s.root)
    const consistent = same || ps.size === 0 || verifyConsistency(ps.size, s.size, prev.proof, ps.root, s.root)
    if (!consistent) throw new ProofError('the checkpoint does not extend the one this witness saw before')
  }
  return signDocument(witness, WITNESS_DOC_TYPE, { pair: s.pair, statement: statementCid(s), root: s.root, size: s.size, time: opts.time ?? Date.now() })
}

/** Check a witness document's signature and shape; with `statement`, that it cosigns that statement. */
export function verifyWitness(doc: unknown, statement?: CheckpointStatement): SignedDocument<WitnessBody> {
  const d = verifyDocument(doc, WITNESS_DOC_TYPE, witnessBodySchema) as SignedDocument<WitnessBody>
  if (statement !== undefined && !d.body.statement.equals(statementCid(statement))) throw new ProofError('the witness cosigns another checkpoint')
  return d
}
