/**
 * The timeline: one deterministic order of both chains, the order the deal
 * reducer replays on every machine.
 *
 * Rule. An entry is ready when the entry before it in its own chain (prev)
 * and the counterparty entry it names as `seen` have been placed. Of the
 * (at most two) ready entries, the one with the smaller `time` goes first;
 * equal times go by author peer id string (ascending, code-unit order).
 * This is a topological order of the prev/seen graph, so it respects
 * causality; the tie-break only orders entries neither party had seen.
 * Valid logs never get stuck (a seen link always names an earlier entry);
 * if a damaged one does, the smaller (time, author) goes first and the
 * caller is told.
 */
import type { PartyRole } from './api.ts'

/** What the merge needs of one entry. `seenSeq` is the seq of its seen target in the other chain, 0 for none. */
export interface MergeNode {
  time: number
  seenSeq: number
}

export interface MergeChoice {
  role: PartyRole
  /** True when neither candidate was ready (damaged links). */
  stuck: boolean
}

/**
 * The next role to place, given each chain's next candidate (undefined when
 * exhausted) and how many entries of each chain are placed already.
 */
export function pickNext(
  p: MergeNode | undefined,
  c: MergeNode | undefined,
  placedP: number,
  placedC: number,
  providerId: string,
  consumerId: string,
): MergeChoice | undefined {
  if (p === undefined && c === undefined) return undefined
  if (c === undefined) return { role: 'provider', stuck: p!.seenSeq > placedC }
  if (p === undefined) return { role: 'consumer', stuck: c.seenSeq > placedP }
  const pReady = p.seenSeq <= placedC
  const cReady = c.seenSeq <= placedP
  if (pReady !== cReady) return { role: pReady ? 'provider' : 'consumer', stuck: false }
  const first = p.time !== c.time ? (p.time < c.time ? 'provider' : 'consumer') : providerId < consumerId ? 'provider' : 'consumer'
  return { role: first, stuck: !pReady }
}

/**
 * Merge two in-memory chains, from positions (fromP, fromC) already placed
 * to (toP, toC). Returns the roles in order and whether the merge got stuck.
 * `p[i]` is the provider entry with seq i + 1.
 */
export function mergeOrder(
  p: readonly MergeNode[],
  c: readonly MergeNode[],
  providerId: string,
  consumerId: string,
  from: { provider: number; consumer: number } = { provider: 0, consumer: 0 },
  to: { provider: number; consumer: number } = { provider: p.length, consumer: c.length },
): { order: PartyRole[]; stuck: boolean } {
  let i = from.provider
  let j = from.consumer
  const order: PartyRole[] = []
  let stuck = false
  for (;;) {
    const pick = pickNext(i < to.provider ? p[i] : undefined, j < to.consumer ? c[j] : undefined, i, j, providerId, consumerId)
    if (pick === undefined) break
    stuck ||= pick.stuck
    order.push(pick.role)
    if (pick.role === 'provider') i++
    else j++
  }
  return { order, stuck }
}
