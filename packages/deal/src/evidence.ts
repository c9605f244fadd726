import type { CID } from '@tally/core'
import { cidEq } from './cid.ts'
import type { PartyRole } from './contract.ts'
import { EvaluationMismatchError, UnknownEvidenceError, UnnamedMonitorError } from './errors.ts'
import { type DealState, type EpochState, epochOf, type PairState } from './state.ts'
import type { EpochEvidence, ObservationEvidence } from './verdict.ts'

function findByCid<T extends { cid: CID }>(list: readonly T[], cid: CID): T | undefined {
  for (const item of list) if (cidEq(item.cid, cid)) return item
  return undefined
}

/** Exactly the evidence a list of entry CIDs designates for one epoch, and its keys (sorted). */
export interface ResolvedEvidence {
  evidence: EpochEvidence
  keys: string[]
}

/**
 * Map an evaluation's evidence CIDs to the epoch's evidence. Throws
 * `UnknownEvidenceError` for a CID that is not usage or an observation of
 * this deal and epoch, `UnnamedMonitorError` for an observation from a
 * monitor outside the contract, `EvaluationMismatchError` when two CIDs are
 * the same observation (counted twice).
 */
export function resolveEvidence(state: PairState, deal: DealState, epoch: number, cids: readonly CID[]): ResolvedEvidence {
  const ep = epochOf(deal, epoch)
  const keys = new Set<string>()
  let usage: EpochEvidence['usage'] = null
  const observations: ObservationEvidence[] = []
  for (const cid of cids) {
    const s = cid.toString()
    const ref = state.entries.get(s)
    if (ref === undefined || ref.deal !== deal.key) throw new UnknownEvidenceError(`${s} is not an entry of deal ${deal.key}`, { cid: s })
    let key: string
    if (ref.kind === 'usage' && ep.usage !== null && cidEq(ep.usage.cid, cid)) {
      key = 'usage'
      usage = { claimBp: ep.usage.claimBp }
    } else if (ref.kind === 'observation') {
      const obs = findByCid(ep.observations, cid)
      if (obs === undefined) {
        if (ep.foreign.some((f) => cidEq(f, cid)))
          throw new UnnamedMonitorError(`${s} is from a monitor the contract does not name and cannot be counted`, { cid: s })
        throw new UnknownEvidenceError(`${s} is not an observation of epoch ${epoch}`, { cid: s, epoch })
      }
      key = obs.key
      observations.push(obs.evidence)
    } else {
      throw new UnknownEvidenceError(`${s} (${ref.kind}) is not evidence for epoch ${epoch}`, { cid: s, epoch })
    }
    if (keys.has(key)) throw new EvaluationMismatchError(`evaluation counts ${key} twice`, { key })
    keys.add(key)
  }
  return { evidence: { usage, observations }, keys: [...keys].sort() }
}

/** Evidence keys of the epoch that were in the author's view: its own entries, and the counterparty's up to the seq it had seen. */
export function priorKeys(ep: EpochState, role: PartyRole, seenSeq: number): Set<string> {
  const out = new Set<string>()
  if (ep.usage !== null && (role === 'provider' || ep.usage.seq <= seenSeq)) out.add('usage')
  for (const o of ep.observations) if (o.role === role || o.seq <= seenSeq) out.add(o.key)
  return out
}

/** One CID per piece of admissible evidence the state holds for the epoch (first attachment wins). */
export function admissibleEvidence(deal: DealState, epoch: number): CID[] {
  const ep = epochOf(deal, epoch)
  const out: CID[] = []
  if (ep.usage !== null) out.push(ep.usage.cid)
  const seen = new Set<string>()
  for (const o of ep.observations) {
    if (seen.has(o.key)) continue
    seen.add(o.key)
    out.push(o.cid)
  }
  return out
}
