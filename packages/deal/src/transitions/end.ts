import type { CID } from '@tally/core'
import type { CloseBody, TimeoutBody } from '../bodies/ending.ts'
import type { Certificate } from '../certificate.ts'
import {
  CertificateMismatchError,
  CertificatePrematureError,
  CloseNotCompleteError,
  DealClosedError,
  EpochOutOfRangeError,
  NothingOutstandingError,
  StaleOfferError,
  TimeoutPrematureError,
  UnknownReferenceError,
  UnknownVoucherError,
  WrongPartyError,
} from '../errors.ts'
import { putDeal } from '../ledger.ts'
import { type CloseRecord, counterpart, type DealState, epochEnd, epochLimit, epochOf, type Offer } from '../state.ts'
import { certificateSummary, sameSummary, settlementProblem } from '../summary.ts'
import { contractOf, type Outcome, requireDeal, requireRole, requireServing, requireSettling, seenSeq, type Step, without } from './common.ts'
import { acknowledge } from './pay.ts'

/** The epoch in progress at `time`, plus one: a close lets the current epoch finish. */
function currentEnd(deal: DealState, time: number): number {
  const t = contractOf(deal)
  const start = deal.start ?? 0
  const term = t.epochs ?? t.maxEpochs
  const running = time < start ? 0 : Math.floor((time - start) / t.epochMs) + 1
  return Math.min(term, Math.max(running, deal.usageEnd))
}

function closed(deal: DealState, record: CloseRecord): DealState {
  return { ...deal, status: 'closed', close: record }
}

/** close: either party ends service. `completed` needs every contracted epoch elapsed; `terminated` lets the current one finish. */
export function closeDeal(step: Step, body: CloseBody): Outcome {
  const deal = requireDeal(step, body.deal)
  // Both parties may close at once (the provider steps in when the consumer is late): a close by the
  // other party that had not seen the first one concurs, and changes nothing.
  if (
    deal.status === 'closed' &&
    deal.close !== null &&
    deal.close.by !== step.role &&
    (step.state.entries.get(deal.close.cid.toString())?.seq ?? 0) > seenSeq(step)
  ) {
    return { state: step.state, deal: deal.key }
  }
  const terms = requireServing(deal, 'close')
  let endEpoch: number
  if (body.reason === 'completed') {
    if (terms.epochs === null) throw new CloseNotCompleteError('an open-ended deal ends by termination, not completion', { deal: deal.key })
    const end = epochEnd(deal, terms.epochs - 1)
    if (step.time < end) throw new CloseNotCompleteError(`the last contracted epoch ends at ${end}`, { deal: deal.key })
    endEpoch = terms.epochs
  } else endEpoch = currentEnd(deal, step.time)
  const next = closed(deal, { cid: step.cid, by: step.role, reason: body.reason, endEpoch, time: step.time })
  return { state: putDeal(step.state, next), deal: deal.key }
}

function due(step: Step, deadline: number, what: string): void {
  if (step.time < deadline) throw new TimeoutPrematureError(`${what} is due at ${deadline}; claimed at ${step.time}`, { deadline })
}

function refOf(body: TimeoutBody): string {
  if (body.ref === null) throw new UnknownReferenceError(`a ${body.duty} timeout must name the entry that started the clock`)
  return body.ref.toString()
}

/**
 * timeout: the claimant says the counterparty missed a deadline measured
 * by entry times. Consequences: a lapsed offer; a provider that stops
 * reporting usage ends the deal at that epoch; a consumer that stops
 * paying ends service (what is authorised stays due); an unanswered
 * voucher counts as acknowledged; an unanswered evidence request is
 * recorded as such for the arbiter.
 */
export function claimTimeout(step: Step, body: TimeoutBody): Outcome {
  const deal = requireDeal(step, body.deal)
  if (body.duty === 'acceptance') {
    if (deal.status !== 'negotiating') throw new NothingOutstandingError(`deal ${deal.key} is ${deal.status}; no offer awaits an answer`)
    const latest = deal.offers[deal.offers.length - 1] as Offer
    if (latest.by !== step.role) throw new WrongPartyError(`only the ${latest.by} who made the offer can claim it lapsed`)
    if (refOf(body) !== latest.cid.toString()) throw new StaleOfferError(`timeout names ${body.ref}, the latest offer is ${latest.cid}`)
    due(step, latest.time + latest.terms.timeouts.answerMs, 'an answer to the offer')
    return { state: putDeal(step.state, { ...deal, status: 'lapsed' }), deal: deal.key }
  }
  const terms = requireSettling(deal, 'timeouts')
  const answerMs = terms.timeouts.answerMs
  switch (body.duty) {
    case 'usage': {
      requireRole(step, 'consumer', 'a usage timeout')
      requireServing(deal, 'usage timeouts')
      const e = body.epoch
      if (e === null || e >= epochLimit(deal)) throw new EpochOutOfRangeError(`usage timeout for epoch ${e}, outside the deal`, { deal: deal.key })
      if (epochOf(deal, e).usage !== null) throw new NothingOutstandingError(`epoch ${e} has usage`)
      due(step, epochEnd(deal, e) + answerMs, `usage for epoch ${e}`)
      const next = closed(deal, { cid: step.cid, by: step.role, reason: 'timeout', endEpoch: e, time: step.time })
      return { state: putDeal(step.state, { ...next, defaulted: 'provider' }), deal: deal.key }
    }
    case 'voucher': {
      requireRole(step, 'provider', 'a voucher timeout')
      const key = refOf(body)
      const a = deal.authorities.get(key)
      if (a === undefined || !deal.pending.includes(key)) throw new NothingOutstandingError(`${key} is not an unpaid authority of deal ${deal.key}`)
      due(step, a.time + answerMs, 'a voucher')
      let next: DealState = { ...deal, defaulted: 'consumer' }
      if (deal.status === 'active')
        next = closed(next, { cid: step.cid, by: step.role, reason: 'timeout', endEpoch: currentEnd(deal, step.time), time: step.time })
      return { state: putDeal(step.state, next), deal: deal.key }
    }
    case 'ack': {
      requireRole(step, 'consumer', 'an ack timeout')
      const key = refOf(body)
      const v = deal.vouchers.get(key)
      if (v === undefined) throw new UnknownVoucherError(`${key} is not a voucher of deal ${deal.key}`)
      if (v.ack !== 'none') throw new NothingOutstandingError(`voucher ${key} is already ${v.ack}`)
      due(step, v.time + answerMs, 'an ack')
      return { state: putDeal(step.state, acknowledge(deal, key, 'deemed')), deal: deal.key }
    }
    case 'evidence-answer': {
      const key = refOf(body)
      const req = deal.requests.get(key)
      if (req === undefined) throw new UnknownReferenceError(`${key} is not an evidence request of deal ${deal.key}`)
      if (req.status !== 'open') throw new NothingOutstandingError(`evidence request ${key} is ${req.status}`)
      if (step.role !== counterpart(req.party)) throw new WrongPartyError(`the ${req.party} cannot claim its own answer is late`)
      due(step, req.deadline, 'an evidence answer')
      const next: DealState = { ...deal, requests: deal.requests.set(key, { ...req, status: 'timed-out' }), openRequests: without(deal.openRequests, key) }
      return { state: putDeal(step.state, next), deal: deal.key }
    }
  }
}

/**
 * certificate: a party certifies completion with a document it signed,
 * stating what the record shows; the counterparty countersigns with its
 * own. Both present: the deal is certified.
 */
export function certify(step: Step, body: { deal: CID; certificate: Certificate }): Outcome {
  const deal = requireDeal(step, body.deal)
  contractOf(deal)
  if (deal.certificates[step.role] !== null) throw new DealClosedError(`the ${step.role} already certified deal ${deal.key}`)
  const problem = settlementProblem(deal)
  if (problem !== null) throw new CertificatePrematureError(`deal ${deal.key} cannot be certified: ${problem}`, { deal: deal.key })
  const doc = body.certificate
  if (doc.by !== step.state.pair[step.role]) throw new CertificateMismatchError(`certificate signed by ${doc.by}, not by the ${step.role} appending it`)
  const expected = certificateSummary(step.state, deal)
  if (!sameSummary(doc.body, expected)) throw new CertificateMismatchError(`certificate summary differs from the record`, { deal: deal.key })
  const own = doc.body.heads[step.role]
  const prev = step.block.entry.prev
  if (own === null ? prev !== null : prev === null || !own.equals(prev))
    throw new CertificateMismatchError(`certificate's ${step.role} head is not the entry before it`)
  const other = doc.body.heads[counterpart(step.role)]
  if (other !== null) {
    const ref = step.state.entries.get(other.toString())
    if (ref === undefined || ref.role === step.role || ref.seq > seenSeq(step)) {
      throw new CertificateMismatchError(`certificate's ${counterpart(step.role)} head ${other} is not an entry its author had seen`)
    }
  }
  const certificates = { ...deal.certificates, [step.role]: step.cid }
  const status = certificates.provider !== null && certificates.consumer !== null ? 'certified' : deal.status
  return { state: putDeal(step.state, { ...deal, certificates, status }), deal: deal.key }
}
