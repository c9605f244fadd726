import { type CID, type EntryBlock, entrySignatureValid } from '@tally/core'
import { mergeOrder, type MergeNode, type PairDescriptor, type PartyRole, pairIdOf } from '@tally/lineage'
import type { ProblemView } from './view.ts'

/** A pair log as the explorer reads it: both chains, merged, with what checking them found. */
export interface PairRecord {
  pair: PairDescriptor
  id: CID
  /** A CAR file path, or 'store'. */
  origin: string
  chains: { provider: EntryBlock[]; consumer: EntryBlock[] }
  /** Both chains in the timeline order the deal reducer replays. */
  timeline: EntryBlock[]
  /** Problems with the chains themselves (the deal replay's are added later). */
  problems: ProblemView[]
  /** What the chain problems come from, in words. */
  checked: string
}

/** Both chains in the deterministic timeline order (lineage's merge rule). */
export function mergeChains(pair: PairDescriptor, chains: { provider: EntryBlock[]; consumer: EntryBlock[] }): { timeline: EntryBlock[]; stuck: boolean } {
  const seqs = (blocks: EntryBlock[]): Map<string, number> => new Map(blocks.map((b) => [b.cid.toString(), b.entry.seq]))
  const seqOf: Record<PartyRole, Map<string, number>> = { provider: seqs(chains.provider), consumer: seqs(chains.consumer) }
  const nodes = (blocks: EntryBlock[], other: PartyRole): MergeNode[] =>
    blocks.map((b) => ({
      time: b.entry.time,
      seenSeq: b.entry.seen === null ? 0 : (seqOf[other].get(b.entry.seen.toString()) ?? Number.POSITIVE_INFINITY),
    }))
  const { order, stuck } = mergeOrder(nodes(chains.provider, 'consumer'), nodes(chains.consumer, 'provider'), pair.provider, pair.consumer)
  const at = { provider: 0, consumer: 0 }
  const timeline = order.map((role) => chains[role][at[role]++] as EntryBlock)
  return { timeline, stuck }
}

/**
 * The checks the explorer can make itself on chains read from a store:
 * each entry in its place (pair, author, seq, prev link, an 'open' first),
 * and each head's signature, which covers the chain behind it through the
 * hash links. The store's ingest already checked all of this; this shows
 * whether the data directory still holds what was checked.
 */
export function checkChains(pair: PairDescriptor, chains: { provider: EntryBlock[]; consumer: EntryBlock[] }): ProblemView[] {
  const id = pairIdOf(pair)
  const problems: ProblemView[] = []
  for (const role of ['provider', 'consumer'] as const) {
    const author = pair[role]
    const blocks = chains[role]
    let prev: CID | null = null
    for (let i = 0; i < blocks.length; i++) {
      const b = blocks[i] as EntryBlock
      const e = b.entry
      const at = { layer: 'lineage' as const, author, role, seq: e.seq, kind: e.kind, cid: b.cid.toString() }
      if (!e.pair.equals(id)) problems.push({ ...at, code: 'ForeignPairError', message: `entry belongs to pair ${e.pair}` })
      if (e.author !== author) problems.push({ ...at, code: 'WrongAuthorError', message: `entry by ${e.author} in the ${role}'s chain` })
      if (e.seq !== i + 1) problems.push({ ...at, code: 'GapError', message: `expected seq ${i + 1}, found ${e.seq}` })
      if (prev === null ? e.prev !== null : e.prev === null || !e.prev.equals(prev)) {
        problems.push({ ...at, code: 'BrokenLinkError', message: 'prev does not name the entry before it' })
      }
      if ((i === 0) !== (e.kind === 'open'))
        problems.push({ ...at, code: 'OpenEntryError', message: i === 0 ? 'first entry is not open' : 'open entry after seq 1' })
      prev = b.cid
    }
    const head = blocks[blocks.length - 1]
    if (head !== undefined && !entrySignatureValid(head.entry)) {
      problems.push({
        layer: 'lineage',
        code: 'SignatureError',
        message: 'head signature does not verify',
        author,
        role,
        seq: head.entry.seq,
        kind: head.entry.kind,
        cid: head.cid.toString(),
      })
    }
  }
  return problems
}

/** A record from two chains: merge them and note a merge that had to break causality. */
export function recordOf(
  pair: PairDescriptor,
  origin: string,
  chains: { provider: EntryBlock[]; consumer: EntryBlock[] },
  problems: ProblemView[],
  checked: string,
): PairRecord {
  const { timeline, stuck } = mergeChains(pair, chains)
  const all = [...problems]
  if (stuck) all.push({ layer: 'lineage', code: 'SeenLinkError', message: 'the chains cross-reference each other in no causal order' })
  return { pair, id: pairIdOf(pair), origin, chains, timeline, problems: all, checked }
}
