import type { EvaluationBody } from '../bodies/settlement.ts'
import {
  EpochAlreadyDisputedError,
  EpochAlreadyEvaluatedError,
  EpochNotEndedError,
  EpochOutOfRangeError,
  EvaluationIncompleteError,
  EvaluationMismatchError,
  EvaluationTooEarlyError,
} from '../errors.ts'
import { priorKeys, resolveEvidence } from '../evidence.ts'
import { putDeal, putEpoch } from '../ledger.ts'
import { type Authority, type DealState, type DisputeState, type EpochState, epochEnd, epochLimit, epochOf, type EvaluationRecord } from '../state.ts'
import { evaluateEpoch, settleVerdict } from '../verdict.ts'
import { type Outcome, requireAsset, requireDeal, requireSettling, seenSeq, type Step, without } from './common.ts'

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((k, i) => k === b[i])
}

function strictSuperset(big: readonly string[], small: readonly string[]): boolean {
  const s = new Set(big)
  return big.length > small.length && small.every((k) => s.has(k))
}

/**
 * evaluation: the contract's rule applied to exactly the evidence listed.
 * The reducer recomputes verdict and amount, insists the list holds every
 * admissible piece of evidence the author had seen, and refuses verdicts
 * that rest on missing evidence before the grace period. A disputed
 * verdict opens a dispute (its id is the evaluation's CID).
 */
export function evaluate(step: Step, body: EvaluationBody): Outcome {
  let deal = requireDeal(step, body.deal)
  const terms = requireSettling(deal, 'evaluations')
  const e = body.epoch
  if (e >= epochLimit(deal)) throw new EpochOutOfRangeError(`epoch ${e} is beyond the deal's ${epochLimit(deal)} epochs`, { deal: deal.key, epoch: e })
  const end = epochEnd(deal, e)
  if (step.time < end) throw new EpochNotEndedError(`evaluation of epoch ${e} at ${step.time}, before it ends at ${end}`, { deal: deal.key, epoch: e })
  requireAsset(body.amount, terms.price.asset, 'evaluation amount')
  const ep = epochOf(deal, e)
  if (ep.dispute !== null)
    throw new EpochAlreadyDisputedError(`epoch ${e} is under dispute ${ep.dispute.id}; its ruling settles it`, { deal: deal.key, epoch: e })

  const { evidence, keys } = resolveEvidence(step.state, deal, e, body.evidence)
  const listed = new Set(keys)
  for (const k of priorKeys(ep, step.role, seenSeq(step))) {
    if (!listed.has(k))
      throw new EvaluationIncompleteError(`evaluation of epoch ${e} leaves out ${k}, which its author had seen`, { deal: deal.key, epoch: e, key: k })
  }
  const verdict = evaluateEpoch(terms.rule, evidence)
  const { amount, held } = settleVerdict(verdict, terms.price)
  if (verdict.verdict !== body.verdict || amount.amount !== body.amount.amount) {
    throw new EvaluationMismatchError(
      `the rule gives ${verdict.verdict} (${verdict.reason}) and ${amount.amount} ${amount.asset} for this evidence, not ${body.verdict} and ${body.amount.amount}`,
      { deal: deal.key, epoch: e, verdict: verdict.verdict, amount: amount.amount },
    )
  }
  if (verdict.absenceDriven && step.time < end + terms.timeouts.evidenceGraceMs) {
    throw new EvaluationTooEarlyError(
      `verdict ${verdict.verdict} rests on missing evidence; it may not be given before ${end + terms.timeouts.evidenceGraceMs}`,
      {
        deal: deal.key,
        epoch: e,
      },
    )
  }

  const prev = ep.evaluation
  let authorities = deal.authorities
  let pending = deal.pending
  if (prev !== null) {
    if (prev.verdict === verdict.verdict && prev.amount === amount.amount && sameKeys(prev.keys, keys)) {
      // A concurring evaluation (both parties evaluated the same evidence concurrently): vouchers may name either.
      const alias: Authority = {
        cid: step.cid,
        kind: 'evaluation',
        epochs: [e],
        amount: 0,
        status: 'active',
        named: false,
        time: step.time,
        aliasOf: prev.cid.toString(),
      }
      return { state: putDeal(step.state, { ...deal, authorities: authorities.set(step.key, alias) }), deal: deal.key }
    }
    const reopenable = prev.verdict === 'insufficient' && prev.holdBp > 0 && strictSuperset(keys, prev.keys)
    if (!reopenable) throw new EpochAlreadyEvaluatedError(`epoch ${e} already has evaluation ${prev.cid} (${prev.verdict})`, { deal: deal.key, epoch: e })
    const old = authorities.get(prev.cid.toString())
    if (old !== undefined) authorities = authorities.set(prev.cid.toString(), { ...old, status: 'superseded' })
  }

  const record: EvaluationRecord = {
    cid: step.cid,
    role: step.role,
    time: step.time,
    verdict: verdict.verdict,
    reason: verdict.reason,
    monitors: verdict.monitors,
    payBp: verdict.payBp,
    holdBp: verdict.holdBp,
    amount: amount.amount,
    held: held.amount,
    keys,
  }
  const disputed = verdict.verdict === 'disputed'
  authorities = authorities.set(step.key, {
    cid: step.cid,
    kind: 'evaluation',
    epochs: [e],
    amount: amount.amount,
    status: disputed ? 'suspended' : 'active',
    named: false,
    time: step.time,
    aliasOf: null,
  })
  if (!disputed && amount.amount > 0) pending = [...pending, step.key]
  let next: EpochState = { ...ep, evaluation: record }
  deal = { ...deal, authorities, pending }
  if (disputed) {
    const dispute: DisputeState = {
      id: step.cid,
      by: 'auto',
      epochs: [e],
      reason: verdict.reason,
      time: step.time,
      status: 'open',
      rulings: [],
      appeal: null,
      final: null,
    }
    next = { ...next, dispute: { id: step.key, final: false } }
    deal = openDispute(deal, dispute)
  }
  deal = putEpoch(deal, next)
  return { state: putDeal(step.state, deal), deal: deal.key }
}

export function openDispute(deal: DealState, dispute: DisputeState): DealState {
  const key = dispute.id.toString()
  return {
    ...deal,
    disputes: deal.disputes.set(key, dispute),
    disputeOrder: [...deal.disputeOrder, key],
    openDisputes: [...deal.openDisputes, key],
    pending: without(deal.pending, key),
  }
}
