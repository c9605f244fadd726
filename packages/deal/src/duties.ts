import type { CID, Money } from '@tally/core'
import type { TimeoutDuty } from './bodies/ending.ts'
import type { ContractTerms, PartyRole } from './contract.ts'
import { admissibleEvidence } from './evidence.ts'
import { counterpart, type DealState, epochEnd, epochLimit, epochOf, type Offer, type PairState } from './state.ts'
import { settlementProblem } from './summary.ts'

/** Something a party owes the deal now, in the protofsm style: read duties, build the body, append. */
export type Duty =
  | { type: 'answer-offer'; deal: CID; offer: CID }
  | { type: 'collateral'; deal: CID; amount: Money }
  | { type: 'attestation'; deal: CID }
  | { type: 'manifest'; deal: CID }
  | { type: 'usage'; deal: CID; epoch: number }
  | { type: 'evaluate'; deal: CID; epoch: number }
  | { type: 'voucher'; deal: CID; amount: Money; authorisedBy: CID[] }
  | { type: 'ack'; deal: CID; voucher: CID; amount: Money }
  | { type: 'rail'; deal: CID; voucher: CID; amount: Money }
  | { type: 'dispute'; deal: CID; dispute: CID; epochs: number[] }
  | { type: 'open-dispute'; deal: CID; epochs: number[]; reason: string }
  | { type: 'evidence-answer'; deal: CID; request: CID; deadline: number }
  | { type: 'close'; deal: CID; reason: 'completed' }
  | { type: 'certificate'; deal: CID }
  | { type: 'claim-timeout'; deal: CID; duty: TimeoutDuty; ref: CID | null; epoch: number | null }

/** At most this many epoch duties of one type per deal per call, so a long outage does not flood a daemon. */
export const MAX_EPOCH_DUTIES = 64

/** True when every piece of evidence the rule can use for the epoch is in: usage (if the rule reads it) and every named monitor. */
function evidenceComplete(deal: DealState, epoch: number): boolean {
  const terms = deal.terms
  if (terms === null) return false
  const ep = epochOf(deal, epoch)
  if (terms.rule.usage === 'required' && ep.usage === null) return false
  return terms.rule.monitors.every((m) => ep.observations.some((o) => o.monitor === m.peer))
}

function negotiationDuties(deal: DealState, role: PartyRole, now: number, out: Duty[]): void {
  const latest = deal.offers[deal.offers.length - 1] as Offer
  if (latest.by === counterpart(role)) out.push({ type: 'answer-offer', deal: deal.id, offer: latest.cid })
  else if (now >= latest.time + latest.terms.timeouts.answerMs) {
    out.push({ type: 'claim-timeout', deal: deal.id, duty: 'acceptance', ref: latest.cid, epoch: null })
  }
}

function evaluationDuties(deal: DealState, role: PartyRole, now: number, out: Duty[]): void {
  const t = deal.terms
  if (t === null) return
  // The consumer evaluates; the provider steps in only when the consumer has let an answer deadline pass.
  const grace = t.timeouts.evidenceGraceMs
  const earliest = role === 'consumer' ? 0 : grace + t.timeouts.answerMs
  const limit = epochLimit(deal)
  let n = 0
  for (let e = deal.nextUnsettled; e < limit && n < MAX_EPOCH_DUTIES; e++) {
    const end = epochEnd(deal, e)
    if (now < end + earliest) break
    const ep = epochOf(deal, e)
    if (ep.evaluation !== null || ep.dispute !== null) continue
    if (now >= end + grace + earliest || evidenceComplete(deal, e)) {
      out.push({ type: 'evaluate', deal: deal.id, epoch: e })
      n++
    }
  }
  for (const e of deal.heldEpochs) {
    const ep = epochOf(deal, e)
    const keys = new Set(ep.evaluation?.keys ?? [])
    if (admissibleEvidence(deal, e).length > keys.size && role === 'consumer') out.push({ type: 'evaluate', deal: deal.id, epoch: e })
  }
}

function providerDuties(deal: DealState, now: number, out: Duty[]): void {
  const t = deal.terms
  if (t === null) return
  if (deal.status === 'active' && deal.collateralBonded < t.collateral.amount) {
    out.push({ type: 'collateral', deal: deal.id, amount: { amount: t.collateral.amount - deal.collateralBonded, asset: t.collateral.asset } })
  }
  if (deal.status === 'active' && deal.attestation === null && !deal.started) out.push({ type: 'attestation', deal: deal.id })
  const ready = deal.attestation !== null && deal.manifest !== null && deal.collateralBonded >= t.collateral.amount
  if (ready && deal.defaulted === null) {
    const limit = epochLimit(deal)
    let n = 0
    for (let e = deal.nextUsage; e < limit && n < MAX_EPOCH_DUTIES && epochEnd(deal, e) <= now; e++) {
      if (epochOf(deal, e).usage !== null) continue
      out.push({ type: 'usage', deal: deal.id, epoch: e })
      n++
    }
  }
  for (const key of deal.unacked) {
    const v = deal.vouchers.get(key)
    if (v !== undefined) out.push({ type: 'ack', deal: deal.id, voucher: v.cid, amount: { amount: v.amount, asset: t.price.asset } })
  }
  const overdue = deal.pending.map((k) => deal.authorities.get(k)).find((a) => a !== undefined && now >= a.time + t.timeouts.answerMs)
  if (overdue !== undefined && deal.defaulted === null) out.push({ type: 'claim-timeout', deal: deal.id, duty: 'voucher', ref: overdue.cid, epoch: null })
  lateClaimDisputeDuties(deal, t, out)
}

/**
 * A verdict given for want of a usage claim (`no-usage`, once the grace
 * period ran out) that the log now answers with a claim of service: a
 * partition between the parties, or a stall, kept the claim from the
 * evaluator. The evidence diverges, so the provider disputes those epochs
 * and the arbiter weighs its claim against the monitors' observations.
 */
function lateClaimDisputeDuties(deal: DealState, t: ContractTerms, out: Duty[]): void {
  const due: number[] = []
  for (const [, ep] of deal.epochs.entries()) {
    const ev = ep.evaluation
    if (ev === null || ev.reason !== 'no-usage' || ep.dispute !== null || ep.released || ep.usage === null) continue
    if (ep.usage.claimBp >= t.rule.availability.minBp) due.push(ep.epoch)
  }
  if (due.length > 0) {
    out.push({
      type: 'open-dispute',
      deal: deal.id,
      epochs: due.sort((a, b) => a - b).slice(0, MAX_EPOCH_DUTIES),
      reason: 'usage claim recorded after a verdict that found none',
    })
  }
}

function consumerDuties(deal: DealState, now: number, out: Duty[]): void {
  const t = deal.terms
  if (t === null) return
  if (deal.status === 'active' && deal.manifest === null) out.push({ type: 'manifest', deal: deal.id })
  const pending = deal.pending.map((k) => deal.authorities.get(k)).filter((a) => a !== undefined)
  const target = deal.namedTotal + pending.reduce((s, a) => s + a.amount, 0)
  if (target > deal.paid) {
    out.push({ type: 'voucher', deal: deal.id, amount: { amount: target, asset: t.price.asset }, authorisedBy: pending.map((a) => a.cid) })
  }
  for (const key of deal.unsettledOnRail) {
    const v = deal.vouchers.get(key)
    if (v !== undefined && v.rail !== 'ok') out.push({ type: 'rail', deal: deal.id, voucher: v.cid, amount: { amount: v.amount, asset: t.price.asset } })
  }
  for (const key of deal.unacked) {
    const v = deal.vouchers.get(key)
    if (v !== undefined && now >= v.time + t.timeouts.answerMs) out.push({ type: 'claim-timeout', deal: deal.id, duty: 'ack', ref: v.cid, epoch: null })
  }
  const e = deal.nextUsage
  if (deal.status === 'active' && e < epochLimit(deal) && now >= epochEnd(deal, e) + t.timeouts.answerMs) {
    out.push({ type: 'claim-timeout', deal: deal.id, duty: 'usage', ref: null, epoch: e })
  }
}

function sharedDuties(deal: DealState, role: PartyRole, now: number, out: Duty[]): void {
  const t = deal.terms
  if (t === null) return
  for (const key of deal.openDisputes) {
    const d = deal.disputes.get(key)
    if (d !== undefined && (d.status === 'open' || d.status === 'appealed')) out.push({ type: 'dispute', deal: deal.id, dispute: d.id, epochs: [...d.epochs] })
  }
  for (const key of deal.openRequests) {
    const r = deal.requests.get(key)
    if (r === undefined) continue
    if (r.party === role) out.push({ type: 'evidence-answer', deal: deal.id, request: r.cid, deadline: r.deadline })
    else if (now >= r.deadline) out.push({ type: 'claim-timeout', deal: deal.id, duty: 'evidence-answer', ref: r.cid, epoch: null })
  }
  if (deal.status === 'active' && t.epochs !== null) {
    const lag = role === 'consumer' ? 0 : t.timeouts.answerMs
    if (now >= epochEnd(deal, t.epochs - 1) + lag) out.push({ type: 'close', deal: deal.id, reason: 'completed' })
  }
  heldDisputeDuties(deal, role, now, out)
  if (deal.certificates[role] === null && settlementProblem(deal) === null) out.push({ type: 'certificate', deal: deal.id })
}

/**
 * An epoch held for want of evidence must not stay held for ever: the
 * observations may be gone (gossip is not stored by the network). Once
 * `answerMs` has passed since the `insufficient` verdict with nothing new,
 * the consumer disputes the held epochs so the arbiter rules on the
 * record; the provider steps in one `answerMs` later.
 */
function heldDisputeDuties(deal: DealState, role: PartyRole, now: number, out: Duty[]): void {
  const t = deal.terms
  if (t === null || deal.heldEpochs.length === 0) return
  const wait = role === 'consumer' ? t.timeouts.answerMs : 2 * t.timeouts.answerMs
  const due = deal.heldEpochs.filter((e) => {
    const ev = epochOf(deal, e).evaluation
    return ev !== null && now >= ev.time + wait
  })
  if (due.length > 0) {
    out.push({ type: 'open-dispute', deal: deal.id, epochs: [...due].sort((a, b) => a - b), reason: 'evidence still insufficient after the answer period' })
  }
}

/**
 * What `role` owes across the pair's deals at time `now` (the caller's
 * clock), oldest deal first. Pure: the same state and time give the same
 * list.
 */
export function duties(state: PairState, role: PartyRole, now: number): Duty[] {
  const out: Duty[] = []
  for (const id of state.dealOrder) {
    const deal = state.deals.get(id.toString())
    if (deal === undefined) continue
    if (deal.status === 'negotiating') negotiationDuties(deal, role, now, out)
    if (deal.status !== 'active' && deal.status !== 'closed') continue
    evaluationDuties(deal, role, now, out)
    if (role === 'provider') providerDuties(deal, now, out)
    else consumerDuties(deal, now, out)
    sharedDuties(deal, role, now, out)
  }
  return out
}
