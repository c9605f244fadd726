import type { CID, EntryBlock, Money } from '@tally/core'
import type { ContractTerms, PartyRole } from '../contract.ts'
import { AssetMismatchError, DealClosedError, DealNotActiveError, UnknownDealError, WrongPartyError } from '../errors.ts'
import type { DealState, PairState } from '../state.ts'

/** One entry being reduced, with what the chain check established. */
export interface Step {
  state: PairState
  block: EntryBlock
  role: PartyRole
  time: number
  cid: CID
  key: string
}

/** What a transition hands back: the next state and the deal the entry belongs to. */
export interface Outcome {
  state: PairState
  deal: string | null
}

export function requireDeal(step: Step, id: CID): DealState {
  const deal = step.state.deals.get(id.toString())
  if (deal === undefined) throw new UnknownDealError(`no deal ${id} in this pair log`, { deal: id.toString() })
  return deal
}

export function requireRole(step: Step, role: PartyRole, what: string): void {
  if (step.role !== role) throw new WrongPartyError(`only the ${role} may append ${what}`, { author: step.role, expected: role })
}

/** The deal's contract, or `DealNotActiveError` while there is none. */
export function contractOf(deal: DealState): ContractTerms {
  if (deal.terms === null) throw new DealNotActiveError(`deal ${deal.key} has no contract (${deal.status})`, { deal: deal.key, status: deal.status })
  return deal.terms
}

/** For entries that change what is served: only while the deal is in force and not closed. */
export function requireServing(deal: DealState, what: string): ContractTerms {
  const terms = contractOf(deal)
  if (deal.status !== 'active') throw new DealClosedError(`deal ${deal.key} is ${deal.status}; no more ${what}`, { deal: deal.key, status: deal.status })
  return terms
}

/** For entries that settle what was served: while active or closed, not after certification. */
export function requireSettling(deal: DealState, what: string): ContractTerms {
  const terms = contractOf(deal)
  if (deal.status === 'certified') throw new DealClosedError(`deal ${deal.key} is certified; no more ${what}`, { deal: deal.key })
  return terms
}

export function requireAsset(m: Money, asset: string, what: string): void {
  if (m.asset !== asset) throw new AssetMismatchError(`${what} is in ${m.asset}, the contract says ${asset}`, { got: m.asset, expected: asset })
}

export function without<T>(list: readonly T[], item: T): readonly T[] {
  const i = list.indexOf(item)
  return i < 0 ? list : [...list.slice(0, i), ...list.slice(i + 1)]
}

/** Seq of the counterparty entry the step's author had seen (0: none). */
export function seenSeq(step: Step): number {
  const seen = step.block.entry.seen
  if (seen === null) return 0
  return step.state.entries.get(seen.toString())?.seq ?? 0
}
