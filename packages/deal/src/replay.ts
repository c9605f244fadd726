import type { EntryBlock } from '@tally/core'
import { z } from 'zod'
import { schema } from '@tally/core'
import type { PairDescriptor } from './contract.ts'
import { UnknownPairError } from './errors.ts'
import { chainStep, recordEntry, reduce } from './reducer.ts'
import { initialState, type PairState } from './state.ts'

/** An entry the reducer refused while replaying, with the rejection's class name as `code`. */
export interface ReplayProblem {
  /** CID string of the refused entry. */
  cid: string
  author: string
  seq: number
  kind: string
  code: string
  message: string
}

export interface ReplayResult {
  state: PairState
  problems: ReplayProblem[]
}

// @tally/lineage's 'open' body: the first entry of each chain names the pair.
const openBody = z.object({ pair: z.strictObject({ provider: schema.peerId, consumer: schema.peerId }) })

/** The pair a timeline belongs to, from its first 'open' entry. */
export function pairOfTimeline(blocks: readonly EntryBlock[]): PairDescriptor {
  for (const b of blocks) {
    if (b.entry.kind !== 'open') continue
    const parsed = openBody.safeParse(b.entry.body)
    if (parsed.success) return parsed.data.pair
  }
  throw new UnknownPairError('the timeline has no open entry naming its pair; pass the pair descriptor')
}

/**
 * Reduce `blocks` (a pair log's timeline, in causal order) from `from`
 * (default: the pair named by the timeline's 'open' entries), recording
 * every refused entry as a problem and going on without it: the refused
 * entry keeps its place in its author's chain but changes no deal. An
 * entry that does not even extend its chain is skipped entirely. This is
 * the `replay` hook @tally/lineage's verifyExport takes.
 */
export function replay(blocks: Iterable<EntryBlock>, from?: PairDescriptor | PairState): ReplayResult {
  const list = Array.isArray(blocks) ? (blocks as readonly EntryBlock[]) : [...blocks]
  let state = from === undefined ? initialState(pairOfTimeline(list)) : 'pairId' in from ? from : initialState(from)
  const problems: ReplayProblem[] = []
  for (const block of list) {
    try {
      state = reduce(state, block)
    } catch (err) {
      const e = block.entry
      const code = err instanceof Error ? err.name : 'Error'
      const message = err instanceof Error ? err.message : String(err)
      problems.push({ cid: block.cid.toString(), author: e.author, seq: e.seq, kind: e.kind, code, message })
      state = recordRefused(state, block)
    }
  }
  return { state, problems }
}

/**
 * A refused entry that is nonetheless in the chain (already stored) still
 * moves the chain heads, without any effect on the deals: what replay and
 * a live engine both do, so the entries after it are not held up.
 */
export function recordRefused(state: PairState, block: EntryBlock): PairState {
  try {
    return recordEntry(chainStep(state, block), state, null, false)
  } catch {
    // Not in the chain at all: nothing to record.
    return state
  }
}
