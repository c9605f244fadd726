import type { AcceptanceBody, CounterBody, ProposalBody, RejectBody } from '../bodies/negotiation.ts'
import { checkTerms } from '../contract.ts'
import { DealNotActiveError, StaleOfferError, WrongPartyError } from '../errors.ts'
import { putDeal } from '../ledger.ts'
import { counterpart, type DealState, newDeal, type Offer } from '../state.ts'
import { type Outcome, requireDeal, requireRole, type Step } from './common.ts'

/** proposal: the consumer opens a deal; its id is this entry's CID. */
export function propose(step: Step, body: ProposalBody): Outcome {
  requireRole(step, 'consumer', 'a proposal')
  const terms = checkTerms(body.terms, step.state.pair)
  const deal = newDeal(step.cid, { cid: step.cid, by: step.role, time: step.time, terms })
  return { state: putDeal(step.state, deal), deal: deal.key }
}

function latestOffer(deal: DealState, offer: { toString(): string }, what: string): Offer {
  if (deal.status !== 'negotiating') throw new DealNotActiveError(`deal ${deal.key} is ${deal.status}, not negotiating`, { deal: deal.key })
  const latest = deal.offers[deal.offers.length - 1] as Offer
  if (latest.cid.toString() !== offer.toString()) throw new StaleOfferError(`${what} names ${offer}, but the latest offer is ${latest.cid}`, { deal: deal.key })
  return latest
}

function answerer(step: Step, latest: Offer, what: string): void {
  if (step.role !== counterpart(latest.by)) throw new WrongPartyError(`the ${latest.by} cannot answer its own offer with ${what}`, { author: step.role })
}

/** counter: the party that did not make the latest offer proposes changed terms. */
export function counter(step: Step, body: CounterBody): Outcome {
  const deal = requireDeal(step, body.deal)
  const latest = latestOffer(deal, body.offer, 'counter-offer')
  answerer(step, latest, 'a counter-offer')
  const terms = checkTerms(body.terms, step.state.pair)
  const next: DealState = { ...deal, offers: [...deal.offers, { cid: step.cid, by: step.role, time: step.time, terms }] }
  return { state: putDeal(step.state, next), deal: deal.key }
}

/** acceptance: the latest offer's terms become the contract; epoch 0 starts at this entry's time. */
export function accept(step: Step, body: AcceptanceBody): Outcome {
  const deal = requireDeal(step, body.deal)
  const latest = latestOffer(deal, body.offer, 'acceptance')
  answerer(step, latest, 'an acceptance')
  const next: DealState = { ...deal, status: 'active', terms: latest.terms, acceptance: step.cid, start: step.time }
  return { state: putDeal(step.state, next), deal: deal.key }
}

/** reject: either party ends the negotiation. */
export function reject(step: Step, body: RejectBody): Outcome {
  const deal = requireDeal(step, body.deal)
  latestOffer(deal, body.offer, 'reject')
  return { state: putDeal(step.state, { ...deal, status: 'rejected' }), deal: deal.key }
}
