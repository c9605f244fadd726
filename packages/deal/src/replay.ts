import type { CID, EntryBlock } from '@tally/core'
import type { PairDescriptor } from './contract.ts'
import { chainStep, recordEntry, reduce } from './reducer.ts'
import { initialState, type PairState } from './state.ts'

/** An entry the reducer refused while replaying, with the rejection's class name as `code`. */
export interface ReplayProblem {
  cid: CID
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

/**
 * Reduce `blocks` (a pair log's timeline, in causal order) from `from`,
 * recording every refused entry as a problem and going on without it: the
 * refused entry keeps its place in its author's chain but changes no deal.
 * An entry that does not even extend its chain is skipped entirely.
 */
export function replay(blocks: Iterable<EntryBlock>, from: PairDescriptor | PairState): ReplayResult {
  let state = 'pairId' in from ? from : initialState(from)
  const problems: ReplayProblem[] = []
  for (const block of blocks) {
    try {
      state = reduce(state, block)
    } catch (err) {
      const e = block.entry
      const code = err instanceof Error ? err.name : 'Error'
      problems.push({ cid: block.cid, author: e.author, seq: e.seq, kind: e.kind, code, message: err instanceof Error ? err.message : String(err) })
      try {
        state = recordEntry(chainStep(state, block), state, null, false)
      } catch {
        // Not in the chain at all: nothing to record.
      }
    }
  }
  return { state, problems }
}
