import type { EntryBlock } from '@tally/core'
import { type PairState, replay } from '@tally/deal'
import { openExport, type VerifyProblem, type VerifyReport } from '@tally/lineage'

/** A submitted record after verification: the report and, when it verifies, the replayed deal state. */
export interface ExaminedRecord {
  report: VerifyReport
  /** The pair's state after replaying the whole timeline (set when the chains are intact). */
  state?: PairState
  /** Every entry of the record by CID string, for reading bodies the state does not keep. */
  blocks: ReadonlyMap<string, EntryBlock>
}

/**
 * Verify `record` (a pair-log CAR export) offline with @tally/lineage,
 * running the deal reducer over its timeline as the replay hook, so the
 * report covers both broken chains and illegal transitions. Never throws
 * for bad content: the report says what is wrong.
 */
export async function examineRecord(record: Uint8Array): Promise<ExaminedRecord> {
  let state: PairState | undefined
  const blocks = new Map<string, EntryBlock>()
  const hook = (timeline: EntryBlock[]): VerifyProblem[] => {
    for (const b of timeline) blocks.set(b.cid.toString(), b)
    const r = replay(timeline)
    state = r.state
    return r.problems
  }
  let report: VerifyReport
  try {
    report = (await openExport(record, { replay: hook })).report
  } catch (err) {
    // The replay throws only when the timeline names no pair: a record of nothing.
    report = emptyReport(err instanceof Error ? err : new Error(String(err)))
  }
  return state === undefined ? { report, blocks } : { report, state, blocks }
}

function emptyReport(err: Error): VerifyReport {
  const problem = { code: err.name, message: err.message }
  return {
    ok: false,
    chains: { provider: { entries: 0, head: null }, consumer: { entries: 0, head: null } },
    checkpoints: 0,
    documents: 0,
    blocks: 0,
    firstProblem: problem,
    problems: [problem],
  }
}
