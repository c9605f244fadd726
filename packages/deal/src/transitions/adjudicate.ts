import type { CID } from '@tally/core'
import type { AppealBody, DisputeBody, EvidenceAnswerBody } from '../bodies/disputes.ts'
import {
  AlreadyAnsweredError,
  AppealDeadlineError,
  DisputeReleasedEpochError,
  DuplicateRulingError,
  EpochAlreadyDisputedError,
  EpochOutOfRangeError,
  RulingMismatchError,
  UnknownDealError,
  UnknownDisputeError,
  UnknownReferenceError,
  UnnamedArbiterError,
  WrongPairError,
  WrongPartyError,
} from '../errors.ts'
import { sameEpochs } from '../epochs.ts'
import { putDeal, putEpoch } from '../ledger.ts'
import { timesCount } from '../money.ts'
import type { EvidenceRequest, Ruling } from '../ruling.ts'
import { type DealState, type DisputeState, epochLimit, epochOf, type PairState, type RulingRecord } from '../state.ts'
import { openDispute } from './evaluate.ts'
import { type Outcome, requireDeal, requireSettling, type Step, without } from './common.ts'

/** dispute: a party asks for adjudication of epochs not yet paid; their payment is held until a final ruling. */
export function raiseDispute(step: Step, body: DisputeBody): Outcome {
  let deal = requireDeal(step, body.deal)
  requireSettling(deal, 'disputes')
  const limit = epochLimit(deal)
  for (const e of body.epochs) {
    const ep = epochOf(deal, e)
    if (e >= limit || (ep.usage === null && ep.evaluation === null)) {
      throw new EpochOutOfRangeError(`epoch ${e} has neither usage nor an evaluation to dispute`, { deal: deal.key, epoch: e })
    }
    if (ep.released) throw new DisputeReleasedEpochError(`epoch ${e} is already paid by a voucher`, { deal: deal.key, epoch: e })
    if (ep.dispute !== null) throw new EpochAlreadyDisputedError(`epoch ${e} is already under dispute ${ep.dispute.id}`, { deal: deal.key, epoch: e })
  }
  const dispute: DisputeState = {
    id: step.cid,
    by: step.role,
    epochs: [...body.epochs],
    reason: body.reason,
    time: step.time,
    status: 'open',
    rulings: [],
    appeal: null,
    final: null,
  }
  deal = openDispute(deal, dispute)
  for (const e of body.epochs) {
    const ep = epochOf(deal, e)
    if (ep.evaluation !== null) {
      const k = ep.evaluation.cid.toString()
      const a = deal.authorities.get(k)
      if (a !== undefined) deal = { ...deal, authorities: deal.authorities.set(k, { ...a, status: 'suspended' }), pending: without(deal.pending, k) }
    }
    deal = putEpoch(deal, { ...ep, dispute: { id: step.key, final: false } })
  }
  return { state: putDeal(step.state, deal), deal: deal.key }
}

function requireDispute(deal: DealState, id: CID): DisputeState {
  const d = deal.disputes.get(id.toString())
  if (d === undefined) throw new UnknownDisputeError(`no dispute ${id} in deal ${deal.key}`, { deal: deal.key, dispute: id.toString() })
  if (d.status === 'final') throw new UnknownDisputeError(`dispute ${id} is already settled by a final ruling`, { deal: deal.key, dispute: id.toString() })
  return d
}

function requireSubject(step: Step, deal: DealState, body: { pair: CID; deal: CID }, what: string): void {
  if (!body.pair.equals(step.state.pairId)) throw new WrongPairError(`${what} is for pair ${body.pair}, not this one`)
  if (!body.deal.equals(deal.id)) throw new UnknownDealError(`${what} is for deal ${body.deal}, not ${deal.key}`, { deal: deal.key })
}

/** evidence-request: a party relays the arbiter's signed request into the log. */
export function relayEvidenceRequest(step: Step, body: { deal: CID; request: EvidenceRequest }): Outcome {
  const deal = requireDeal(step, body.deal)
  const terms = requireSettling(deal, 'evidence requests')
  const r = body.request
  requireSubject(step, deal, r.body, 'evidence request')
  const dispute = requireDispute(deal, r.body.dispute)
  const expected = dispute.status === 'appealed' ? terms.appealArbiter : terms.arbiter
  if (r.by !== expected) throw new UnnamedArbiterError(`evidence request signed by ${r.by}, not the arbiter the contract names for this stage`, { by: r.by })
  const request = { cid: step.cid, dispute: dispute.id.toString(), party: r.body.party, deadline: r.body.deadline, status: 'open' as const }
  const next: DealState = { ...deal, requests: deal.requests.set(step.key, request), openRequests: [...deal.openRequests, step.key] }
  return { state: putDeal(step.state, next), deal: deal.key }
}

/** evidence-answer: the requested party answers, naming log entries. */
export function answerEvidenceRequest(step: Step, body: EvidenceAnswerBody): Outcome {
  const deal = requireDeal(step, body.deal)
  requireSettling(deal, 'evidence answers')
  const key = body.request.toString()
  const req = deal.requests.get(key)
  if (req === undefined) throw new UnknownReferenceError(`${key} is not an evidence request of deal ${deal.key}`, { cid: key })
  if (step.role !== req.party) throw new WrongPartyError(`the request asked the ${req.party}, not the ${step.role}`)
  if (req.status !== 'open') throw new AlreadyAnsweredError(`evidence request ${key} is ${req.status}`, { cid: key })
  for (const ref of body.refs) {
    if (!step.state.entries.has(ref.toString())) throw new UnknownReferenceError(`answer names ${ref}, which is not in this pair log`, { cid: ref.toString() })
  }
  const next: DealState = { ...deal, requests: deal.requests.set(key, { ...req, status: 'answered' }), openRequests: without(deal.openRequests, key) }
  return { state: putDeal(step.state, next), deal: deal.key }
}

/** Settlement now follows `ruling`: the award becomes authorised, the held epochs are released, collateral is awarded. */
function finalize(deal: DealState, disputeKey: string, ruling: RulingRecord): DealState {
  const dispute = deal.disputes.get(disputeKey) as DisputeState
  let d: DealState = {
    ...deal,
    disputes: deal.disputes.set(disputeKey, { ...dispute, status: 'final', final: ruling }),
    openDisputes: without(deal.openDisputes, disputeKey),
    finalRulings: [...deal.finalRulings, ruling.cid],
    authorised: deal.authorised + ruling.toProvider,
    collateralAwarded: deal.collateralAwarded + ruling.collateralToConsumer,
  }
  const rk = ruling.cid.toString()
  const a = d.authorities.get(rk)
  if (a !== undefined)
    d = { ...d, authorities: d.authorities.set(rk, { ...a, status: 'active' }), pending: ruling.toProvider > 0 ? [...d.pending, rk] : d.pending }
  for (const e of dispute.epochs) {
    const ep = epochOf(d, e)
    if (ep.evaluation !== null) {
      const k = ep.evaluation.cid.toString()
      const ev = d.authorities.get(k)
      if (ev !== undefined) d = { ...d, authorities: d.authorities.set(k, { ...ev, status: 'superseded' }) }
    }
    d = putEpoch(d, { ...ep, dispute: { id: disputeKey, final: true } })
  }
  return d
}

/** Make final every first-instance ruling whose appeal window closed before `time` (an entry's time). */
export function finalizeDue(state: PairState, time: number): PairState {
  if (state.pendingRulings.length === 0 || state.pendingRulings.every((p) => p.deadline >= time)) return state
  let s = state
  for (const p of state.pendingRulings) {
    if (p.deadline >= time) continue
    const deal = s.deals.get(p.deal)
    const dispute = deal?.disputes.get(p.dispute)
    const first = dispute?.rulings[0]
    if (deal === undefined || dispute === undefined || first === undefined || dispute.status !== 'ruled') continue
    s = putDeal(s, finalize(deal, p.dispute, first))
  }
  return { ...s, pendingRulings: state.pendingRulings.filter((p) => p.deadline >= time) }
}

/**
 * ruling: a party relays the arbiter's signed ruling. A first-instance
 * ruling must be signed by the contract's arbiter; it is final at once
 * when the contract names no appeal arbiter, else when the appeal window
 * passes unused. An appeal ruling must be signed by the appeal arbiter,
 * answer a pending appeal, and supersedes the first.
 */
export function relayRuling(step: Step, body: { deal: CID; ruling: Ruling }): Outcome {
  const deal = requireDeal(step, body.deal)
  const terms = requireSettling(deal, 'rulings')
  const r = body.ruling
  const rb = r.body
  if (!rb.pair.equals(step.state.pairId)) throw new RulingMismatchError(`ruling is for pair ${rb.pair}, not this one`)
  if (!rb.deal.equals(deal.id)) throw new RulingMismatchError(`ruling is for deal ${rb.deal}, not ${deal.key}`)
  const dispute = requireDispute(deal, rb.dispute)
  const appeal = rb.appealOf !== null
  const arbiter = appeal ? terms.appealArbiter : terms.arbiter
  if (r.by !== arbiter) {
    throw new UnnamedArbiterError(`ruling signed by ${r.by}, not the ${appeal ? 'appeal arbiter' : 'arbiter'} the contract names`, { by: r.by, deal: deal.key })
  }
  if (!appeal && dispute.status !== 'open') throw new DuplicateRulingError(`dispute ${dispute.id} already has a ruling`, { dispute: dispute.id.toString() })
  if (appeal) {
    const first = dispute.rulings[0]
    if (dispute.status !== 'appealed' || first === undefined)
      throw new DuplicateRulingError(`dispute ${dispute.id} has no pending appeal`, { dispute: dispute.id.toString() })
    if (!first.cid.equals(rb.appealOf as CID)) throw new RulingMismatchError(`appeal ruling answers ${rb.appealOf}, not the ruling appealed (${first.cid})`)
  }
  if (!sameEpochs(rb.epochs, dispute.epochs))
    throw new RulingMismatchError(`ruling covers epochs ${rb.epochs.join(',')}, the dispute ${dispute.epochs.join(',')}`)
  const ceiling = timesCount(terms.price.amount, dispute.epochs.length) ?? Number.MAX_SAFE_INTEGER
  const award = rb.award
  if (award.toProvider.asset !== terms.price.asset || award.toProvider.amount > ceiling) {
    throw new RulingMismatchError(
      `award of ${award.toProvider.amount} ${award.toProvider.asset} exceeds the ${ceiling} ${terms.price.asset} the disputed epochs cost`,
    )
  }
  const available = deal.collateralBonded - deal.collateralAwarded
  if (award.collateralToConsumer.asset !== terms.collateral.asset || award.collateralToConsumer.amount > available) {
    throw new RulingMismatchError(
      `collateral award of ${award.collateralToConsumer.amount} ${award.collateralToConsumer.asset} exceeds the ${available} bonded`,
    )
  }
  for (const c of rb.relied) {
    if (!step.state.entries.has(c.toString())) throw new UnknownReferenceError(`ruling relies on ${c}, which is not in this pair log`, { cid: c.toString() })
  }

  const record: RulingRecord = {
    cid: step.cid,
    arbiter: r.by,
    appealOf: rb.appealOf,
    toProvider: award.toProvider.amount,
    collateralToConsumer: award.collateralToConsumer.amount,
    time: step.time,
  }
  const dk = dispute.id.toString()
  const final = appeal || terms.appealArbiter === null
  let d: DealState = {
    ...deal,
    disputes: deal.disputes.set(dk, { ...dispute, status: appeal ? 'appealed' : 'ruled', rulings: [...dispute.rulings, record] }),
    authorities: deal.authorities.set(step.key, {
      cid: step.cid,
      kind: 'ruling',
      epochs: dispute.epochs,
      amount: record.toProvider,
      status: 'pending',
      named: false,
      time: step.time,
      aliasOf: null,
    }),
  }
  let state = step.state
  if (appeal) {
    const firstKey = (rb.appealOf as CID).toString()
    const first = d.authorities.get(firstKey)
    if (first !== undefined) d = { ...d, authorities: d.authorities.set(firstKey, { ...first, status: 'superseded' }) }
  }
  if (final) d = finalize(d, dk, record)
  else state = { ...state, pendingRulings: [...state.pendingRulings, { deal: deal.key, dispute: dk, deadline: step.time + terms.timeouts.appealMs }] }
  return { state: putDeal(state, d), deal: deal.key }
}

/** appeal: a party appeals a first-instance ruling within the contract's appeal window. */
export function appeal(step: Step, body: AppealBody): Outcome {
  const deal = requireDeal(step, body.deal)
  const terms = requireSettling(deal, 'appeals')
  const key = body.ruling.toString()
  const a = deal.authorities.get(key)
  if (a === undefined || a.kind !== 'ruling') throw new UnknownReferenceError(`${key} is not a ruling of deal ${deal.key}`, { cid: key })
  const disputeKey = deal.openDisputes.find((k) => deal.disputes.get(k)?.rulings[0]?.cid.equals(body.ruling))
  const dispute = disputeKey === undefined ? undefined : deal.disputes.get(disputeKey)
  if (a.status !== 'pending' || dispute === undefined || dispute.status !== 'ruled' || disputeKey === undefined) {
    throw new AppealDeadlineError(`ruling ${key} can no longer be appealed`, { cid: key })
  }
  const deadline = a.time + terms.timeouts.appealMs
  if (step.time > deadline) throw new AppealDeadlineError(`appeal at ${step.time} after the deadline ${deadline}`, { cid: key, deadline })
  const next: DealState = {
    ...deal,
    disputes: deal.disputes.set(disputeKey, { ...dispute, status: 'appealed', appeal: { cid: step.cid, by: step.role, time: step.time } }),
  }
  const state = { ...step.state, pendingRulings: step.state.pendingRulings.filter((p) => !(p.deal === deal.key && p.dispute === disputeKey)) }
  return { state: putDeal(state, next), deal: deal.key }
}
