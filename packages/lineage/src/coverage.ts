/**
 * Which entries a checkpoint covers, and in which leaf order.
 *
 * Leaf order (append-only, so checkpoints chain like a CT log): a
 * checkpoint's leaves are its `prev` checkpoint's leaves, followed by the
 * newly covered entries (provider seq in (prev.p, p], consumer seq in
 * (prev.c, c]) in timeline merge order, treating everything the prev
 * checkpoint covered as already placed. For the first checkpoint this is
 * exactly the timeline order of the covered entries. Each covered entry's
 * `seen` must itself be covered (the covered set is causally closed).
 */
import { type CID, type EntryBlock, decode, encode } from '@tally/core'
import type { PairDescriptor, PartyRole } from './api.ts'
import { CheckpointError } from './errors.ts'
import { MerkleFrontier } from './merkle.ts'
import { otherRole, partyOf } from './pair.ts'
import { type MergeNode, mergeOrder } from './timeline.ts'

export interface SeqPair {
  provider: number
  consumer: number
}

/** What coverage computations read from a pair log (pending-aware). */
export interface CoverageReader {
  readonly pair: PairDescriptor
  entryAt(role: PartyRole, seq: number): Promise<EntryBlock | undefined>
  entryByCid(cid: CID): Promise<EntryBlock | undefined>
}

/** A countersigned checkpoint as the holder tracks it (kept in store meta). */
export interface CheckpointState {
  statement: CID
  /** The 'checkpoint' entry that carries both signatures. */
  entry: CID
  prev: CID | null
  heads: SeqPair
  size: number
  root: Uint8Array
  frontier: { nodes: Uint8Array[]; sizes: number[] }
}

export function encodeCheckpointState(s: CheckpointState): Uint8Array {
  return encode(s)
}

export function decodeCheckpointState(bytes: Uint8Array): CheckpointState {
  return decode(bytes) as CheckpointState
}

export function frontierOf(state: CheckpointState | null): MerkleFrontier {
  const f = new MerkleFrontier()
  if (state !== null) {
    f.nodes = state.frontier.nodes.slice()
    f.sizes = state.frontier.sizes.slice()
    f.size = state.size
  }
  return f
}

/** The CIDs newly covered going from `from` to `to`, in leaf order. */
export async function newLeaves(reader: CoverageReader, from: SeqPair, to: SeqPair): Promise<CID[]> {
  if (to.provider < from.provider || to.consumer < from.consumer) {
    throw new CheckpointError('checkpoint heads go backwards from the checkpoint it extends', { from, to })
  }
  const seenSeqOf = new Map<string, number>()
  const nodes: Record<PartyRole, MergeNode[]> = { provider: [], consumer: [] }
  const cids: Record<PartyRole, CID[]> = { provider: [], consumer: [] }
  for (const role of ['provider', 'consumer'] as PartyRole[]) {
    const other = otherRole(role)
    for (let seq = from[role] + 1; seq <= to[role]; seq++) {
      const block = await reader.entryAt(role, seq)
      if (block === undefined) throw new CheckpointError(`checkpoint covers ${role} entry #${seq}, which is not held`, { role, seq })
      const seen = block.entry.seen
      let seenSeq = 0
      if (seen !== null) {
        const key = seen.toString()
        let s = seenSeqOf.get(key)
        if (s === undefined) {
          const target = await reader.entryByCid(seen)
          if (target === undefined || target.entry.author !== partyOf(reader.pair, other)) {
            throw new CheckpointError(`${role} entry #${seq} names a seen entry that is not held`, { role, seq })
          }
          s = target.entry.seq
          seenSeqOf.set(key, s)
        }
        if (s > to[other]) {
          throw new CheckpointError(`${role} entry #${seq} has seen ${other} #${s}, beyond the checkpoint's ${other} head`, { role, seq })
        }
        seenSeq = Math.max(0, s - from[other])
      }
      nodes[role].push({ time: block.entry.time, seenSeq })
      cids[role].push(block.cid)
    }
  }
  const { order } = mergeOrder(nodes.provider, nodes.consumer, reader.pair.provider, reader.pair.consumer)
  const out: CID[] = []
  let i = 0
  let j = 0
  for (const role of order) out.push(role === 'provider' ? cids.provider[i++]! : cids.consumer[j++]!)
  return out
}

/** Root, size and frontier of the checkpoint that extends `prev` up to `to`. */
export async function coverage(reader: CoverageReader, prev: CheckpointState | null, to: SeqPair): Promise<MerkleFrontier> {
  const from = prev?.heads ?? { provider: 0, consumer: 0 }
  const f = frontierOf(prev)
  for (const cid of await newLeaves(reader, from, to)) f.add(cid.bytes)
  return f
}
