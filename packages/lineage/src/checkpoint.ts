/**
 * The checkpoint flow. One party appends a 'checkpoint-proposal' (statement
 * + its signature); the other checks the statement against its own copy
 * and appends a 'checkpoint' carrying both signatures. A pair log checks
 * every 'checkpoint' entry it stores (appended or ingested) the same way,
 * so a stored checkpoint always matches the holder's copy of the log.
 */
import type { CID, EntryBlock } from '@tally/core'
import type { PartyRole } from './api.ts'
import {
  type CheckpointBody,
  type CheckpointProposalBody,
  type CheckpointStatement,
  CHECKPOINT_TYPE,
  assertStatementSigs,
  parseCheckpointBody,
  parseProposalBody,
  statementCid,
  statementSignatureValid,
} from './checkpoint-statement.ts'
import { type CheckpointState, type CoverageReader, type SeqPair, coverage } from './coverage.ts'
import { decodeEntryFast } from './entry-codec.ts'
import { CheckpointConflictError, CheckpointError, ForeignPairError } from './errors.ts'
import { otherRole, partyOf, roleOf } from './pair.ts'
import type { PairLog } from './pair-log.ts'

/** What checking a checkpoint needs of the log that holds it. */
export interface CheckpointContext extends CoverageReader {
  readonly id: CID
  checkpointState(statement: CID): CheckpointState | undefined
}

function seqsOf(s: CheckpointStatement): SeqPair {
  return { provider: s.heads.provider?.seq ?? 0, consumer: s.heads.consumer?.seq ?? 0 }
}

/**
 * Check a statement against the holder's copy: pair, prev known, heads
 * held with the same CIDs and not behind prev, root and size recomputed.
 * Returns the new checkpoint's state (without its entry CID).
 */
export async function checkStatement(ctx: CheckpointContext, s: CheckpointStatement): Promise<Omit<CheckpointState, 'entry'>> {
  if (!s.pair.equals(ctx.id)) throw new ForeignPairError('checkpoint statement is for another pair', { pair: s.pair.toString() })
  let prev: CheckpointState | null = null
  if (s.prev !== null) {
    prev = ctx.checkpointState(s.prev) ?? null
    if (prev === null) throw new CheckpointConflictError(`checkpoint extends ${s.prev}, which this log does not hold`, { prev: s.prev.toString() })
  }
  const to = seqsOf(s)
  for (const role of ['provider', 'consumer'] as PartyRole[]) {
    const head = s.heads[role]
    if (head === null) continue
    const held = await ctx.entryAt(role, head.seq)
    if (held === undefined) throw new CheckpointError(`checkpoint names ${role} head #${head.seq}, which is not held`, { role, seq: head.seq })
    if (!held.cid.equals(head.cid)) {
      throw new CheckpointError(`checkpoint names ${role} head #${head.seq} as ${head.cid}, the log holds ${held.cid}`, { role, seq: head.seq })
    }
  }
  const f = await coverage(ctx, prev, to)
  const root = f.root()
  if (f.size !== s.size) throw new CheckpointError(`checkpoint size ${s.size} does not match the ${f.size} entries it covers`)
  if (!bytesEqual(root, s.root)) throw new CheckpointError('checkpoint root does not match the entries it covers')
  return { statement: statementCid(s), prev: s.prev, heads: to, size: f.size, root, frontier: { nodes: f.nodes, sizes: f.sizes } }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}

/** Check a 'checkpoint-proposal' body by `author`: schema, pair, the proposer's signature. */
export function checkProposalBody(ctx: CheckpointContext, body: unknown, author: string): CheckpointProposalBody {
  const b = parseProposalBody(body)
  if (!b.statement.pair.equals(ctx.id)) throw new ForeignPairError('checkpoint proposal is for another pair')
  if (!statementSignatureValid(b.statement, b.sig, author)) throw new CheckpointError('checkpoint proposal signature does not verify')
  return b
}

/**
 * Check a 'checkpoint' body written by `authorRole`: both signatures, the
 * proposal it answers (held, by the other party, same statement), and the
 * statement against the holder's copy.
 */
export async function checkCheckpointBody(
  ctx: CheckpointContext,
  body: unknown,
  authorRole: PartyRole,
): Promise<{ body: CheckpointBody; state: Omit<CheckpointState, 'entry'> }> {
  const b = parseCheckpointBody(body)
  if (!b.statement.pair.equals(ctx.id)) throw new ForeignPairError('checkpoint is for another pair')
  assertStatementSigs(b.statement, b.sigs, ctx.pair)
  const proposal = await ctx.entryByCid(b.proposal)
  if (proposal === undefined) throw new CheckpointError('checkpoint answers a proposal this log does not hold')
  if (proposal.entry.kind !== 'checkpoint-proposal' || proposal.entry.author !== partyOf(ctx.pair, otherRole(authorRole))) {
    throw new CheckpointError("checkpoint must answer the other party's checkpoint-proposal")
  }
  const p = parseProposalBody(proposal.entry.body)
  if (!statementCid(p.statement).equals(statementCid(b.statement))) throw new CheckpointError('checkpoint statement differs from the proposal it answers')
  return { body: b, state: await checkStatement(ctx, b.statement) }
}

export interface ProposeOptions {
  time?: number
}

/**
 * Propose a checkpoint over everything the holder has (its own chain and the
 * counterparty entries it holds), extending the latest checkpoint.
 */
export async function proposeCheckpoint(log: PairLog, balances: unknown, opts: ProposeOptions = {}): Promise<EntryBlock> {
  await log.ensureOpen()
  const heads = log.pendingHeads()
  const prev = log.latestCheckpoint()
  const to = { provider: heads.provider?.seq ?? 0, consumer: heads.consumer?.seq ?? 0 }
  const f = await coverage(log, prev, to)
  const statement: CheckpointStatement = {
    type: CHECKPOINT_TYPE,
    pair: log.id,
    heads: { provider: heads.provider, consumer: heads.consumer },
    balances,
    root: f.root(),
    size: f.size,
    prev: prev?.statement ?? null,
    time: opts.time ?? Date.now(),
  }
  return log.append('checkpoint-proposal', { statement, sig: log.signStatement(statement) })
}

export interface CosignOptions {
  time?: number
  /** Checks the proposed balances against the holder's own view (the deal layer's); throw to refuse. */
  checkBalances?: (balances: unknown, statement: CheckpointStatement) => void | Promise<void>
}

/**
 * Countersign the counterparty's proposal (already ingested into `log`):
 * checks it against the holder's copy and appends the 'checkpoint' entry.
 */
export async function cosignCheckpoint(log: PairLog, proposal: EntryBlock | Uint8Array, opts: CosignOptions = {}): Promise<EntryBlock> {
  const block = decodeEntryFast(proposal instanceof Uint8Array ? proposal : proposal.bytes)
  if (block.entry.kind !== 'checkpoint-proposal') throw new CheckpointError(`expected a checkpoint-proposal entry, got ${block.entry.kind}`)
  if (roleOf(log.pair, block.entry.author) === log.role) throw new CheckpointError('a party cannot countersign its own proposal')
  const held = await log.entryByCid(block.cid)
  if (held === undefined) throw new CheckpointError('ingest the proposal before countersigning it')
  const p = checkProposalBody(log, block.entry.body, block.entry.author)
  await checkStatement(log, p.statement)
  if (opts.checkBalances !== undefined) await opts.checkBalances(p.statement.balances, p.statement)
  const mine = log.signStatement(p.statement)
  const sigs = log.role === 'provider' ? { provider: mine, consumer: p.sig } : { provider: p.sig, consumer: mine }
  const body: CheckpointBody = { statement: p.statement, sigs, proposal: block.cid }
  return log.append('checkpoint', body, opts.time === undefined ? {} : { time: opts.time })
}
