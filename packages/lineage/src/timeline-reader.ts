import type { EntryBlock } from '@tally/core'
import type { PartyRole } from './api.ts'
import type { PairLog } from './pair-log.ts'
import { type MergeNode, pickNext } from './timeline.ts'

/**
 * Stream a pair log's durable entries in timeline order (timeline.ts),
 * reading each chain once. Memory: one CID -> seq map per chain.
 */
export async function* timelineOf(log: PairLog, upTo?: { provider: number; consumer: number }): AsyncIterable<EntryBlock> {
  const heads = log.heads()
  const top = upTo ?? { provider: heads.provider?.seq ?? 0, consumer: heads.consumer?.seq ?? 0 }
  const seqOf: Record<PartyRole, Map<string, number>> = { provider: new Map(), consumer: new Map() }
  for (const role of ['provider', 'consumer'] as PartyRole[]) {
    for await (const { seq, cid } of log.cids(role, 1, top[role])) seqOf[role].set(cid.toString(), seq)
  }
  const iters = {
    provider: log.range(log.pair.provider, 1, top.provider)[Symbol.asyncIterator](),
    consumer: log.range(log.pair.consumer, 1, top.consumer)[Symbol.asyncIterator](),
  }
  const next = async (role: PartyRole): Promise<EntryBlock | undefined> => {
    const r = await iters[role].next()
    return r.done === true ? undefined : r.value
  }
  const cand: Record<PartyRole, EntryBlock | undefined> = { provider: await next('provider'), consumer: await next('consumer') }
  const node = (role: PartyRole): MergeNode | undefined => {
    const b = cand[role]
    if (b === undefined) return undefined
    const seen = b.entry.seen
    const other: PartyRole = role === 'provider' ? 'consumer' : 'provider'
    return { time: b.entry.time, seenSeq: seen === null ? 0 : (seqOf[other].get(seen.toString()) ?? Number.POSITIVE_INFINITY) }
  }
  const placed = { provider: 0, consumer: 0 }
  for (;;) {
    const pick = pickNext(node('provider'), node('consumer'), placed.provider, placed.consumer, log.pair.provider, log.pair.consumer)
    if (pick === undefined) return
    const b = cand[pick.role]!
    yield b
    placed[pick.role]++
    cand[pick.role] = await next(pick.role)
  }
}
