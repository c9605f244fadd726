import type { AckBody, RailResultBody, VoucherBody } from '../bodies/settlement.ts'
import {
  AckMismatchError,
  AlreadyAcknowledgedError,
  PaymentNotAuthorizedError,
  RailMismatchError,
  RulingNotFinalError,
  UnknownVoucherError,
  VoucherDecreaseError,
  VoucherExceedsAuthorizedError,
} from '../errors.ts'
import { putDeal, putEpoch } from '../ledger.ts'
import { type Authority, type DealState, epochOf, type VoucherRecord } from '../state.ts'
import { type Outcome, requireAsset, requireDeal, requireRole, requireSettling, type Step, without } from './common.ts'

/** The authority a CID names for `deal`, following a concurring evaluation to the one it confirms. */
export function resolveAuthority(deal: DealState, key: string): { key: string; authority: Authority } | undefined {
  const a = deal.authorities.get(key)
  if (a === undefined) return undefined
  if (a.aliasOf === null) return { key, authority: a }
  const primary = deal.authorities.get(a.aliasOf)
  return primary === undefined ? undefined : { key: a.aliasOf, authority: primary }
}

/**
 * voucher: the consumer's cumulative release for the deal. Every CID it
 * names must be a nameable evaluation or final ruling of the deal; the
 * amount never decreases, rises only on newly named authorities, and never
 * exceeds the sum of all authorities named so far.
 */
export function issueVoucher(step: Step, body: VoucherBody): Outcome {
  requireRole(step, 'consumer', 'a voucher')
  let deal = requireDeal(step, body.deal)
  const terms = requireSettling(deal, 'vouchers')
  requireAsset(body.amount, terms.price.asset, 'voucher')
  const fresh = new Map<string, Authority>()
  for (const cid of body.authorisedBy) {
    const s = cid.toString()
    const found = resolveAuthority(deal, s)
    if (found === undefined) throw new PaymentNotAuthorizedError(`${s} is not an evaluation or ruling of deal ${deal.key}`, { deal: deal.key, cid: s })
    const a = found.authority
    if (a.status === 'pending') throw new RulingNotFinalError(`ruling ${s} can still be appealed`, { deal: deal.key, cid: s })
    if (a.status !== 'active') throw new PaymentNotAuthorizedError(`${s} no longer authorises payment (${a.status})`, { deal: deal.key, cid: s })
    if (!a.named) fresh.set(found.key, a)
  }
  let added = 0
  for (const a of fresh.values()) added += a.amount
  const last = deal.lastVoucher?.amount ?? 0
  const amount = body.amount.amount
  if (amount < last) throw new VoucherDecreaseError(`voucher of ${amount} is below the previous ${last}`, { deal: deal.key, amount, last })
  if (amount > last) {
    if (amount > deal.namedTotal && added === 0) {
      throw new PaymentNotAuthorizedError(`voucher raises the release to ${amount} without naming an evaluation or ruling that authorises it`, {
        deal: deal.key,
        amount,
      })
    }
    if (amount > deal.namedTotal + added) {
      throw new VoucherExceedsAuthorizedError(`voucher of ${amount} exceeds the ${deal.namedTotal + added} its evaluations and rulings authorise`, {
        deal: deal.key,
        amount,
        authorised: deal.namedTotal + added,
      })
    }
  }
  let authorities = deal.authorities
  let pending = deal.pending
  for (const [key, a] of fresh) {
    authorities = authorities.set(key, { ...a, named: true })
    pending = without(pending, key)
  }
  const record: VoucherRecord = { cid: step.cid, amount, previous: last, time: step.time, ack: 'none', rail: null }
  deal = {
    ...deal,
    authorities,
    pending,
    namedTotal: deal.namedTotal + added,
    paid: amount,
    lastVoucher: record,
    vouchers: deal.vouchers.set(step.key, record),
    unacked: [...deal.unacked, step.key],
    unsettledOnRail: terms.rail === 'ledger' ? deal.unsettledOnRail : [...deal.unsettledOnRail, step.key],
  }
  // A paid epoch is final: it can no longer be disputed.
  for (const a of fresh.values()) {
    if (a.amount === 0) continue
    for (const e of a.epochs) {
      const ep = epochOf(deal, e)
      if (!ep.released) deal = putEpoch(deal, { ...ep, released: true })
    }
  }
  return { state: putDeal(step.state, deal), deal: deal.key }
}

function requireVoucher(deal: DealState, key: string): VoucherRecord {
  const v = deal.vouchers.get(key)
  if (v === undefined) throw new UnknownVoucherError(`${key} is not a voucher of deal ${deal.key}`, { deal: deal.key, voucher: key })
  return v
}

/** Mark a voucher acknowledged (by the provider, or deemed by a timeout claim). */
export function acknowledge(deal: DealState, key: string, how: 'acknowledged' | 'deemed'): DealState {
  const v = requireVoucher(deal, key)
  const next: VoucherRecord = { ...v, ack: how }
  return {
    ...deal,
    vouchers: deal.vouchers.set(key, next),
    lastVoucher: deal.lastVoucher?.cid.equals(v.cid) ? next : deal.lastVoucher,
    acknowledged: Math.max(deal.acknowledged, v.amount),
    unacked: without(deal.unacked, key),
  }
}

/** ack: the provider acknowledges one voucher, restating its amount. */
export function ack(step: Step, body: AckBody): Outcome {
  requireRole(step, 'provider', 'an ack')
  const deal = requireDeal(step, body.deal)
  const terms = requireSettling(deal.status === 'certified' ? { ...deal, status: 'closed' } : deal, 'acks')
  const key = body.voucher.toString()
  const v = requireVoucher(deal, key)
  if (body.amount.asset !== terms.price.asset || body.amount.amount !== v.amount) {
    throw new AckMismatchError(`ack of ${body.amount.amount} ${body.amount.asset} for a voucher of ${v.amount} ${terms.price.asset}`, { deal: deal.key })
  }
  if (v.ack !== 'none') throw new AlreadyAcknowledgedError(`voucher ${key} is already ${v.ack}`, { deal: deal.key, voucher: key })
  return { state: putDeal(step.state, acknowledge(deal, key, 'acknowledged')), deal: deal.key }
}

/** rail-result: what the contract's payment rail did with a voucher's release. */
export function recordRailResult(step: Step, body: RailResultBody): Outcome {
  const deal = requireDeal(step, body.deal)
  const terms = requireSettling(deal.status === 'certified' ? { ...deal, status: 'closed' } : deal, 'rail results')
  const key = body.voucher.toString()
  const v = requireVoucher(deal, key)
  if (body.rail !== terms.rail) throw new RailMismatchError(`rail ${body.rail} is not the contract's ${terms.rail}`, { deal: deal.key })
  if (v.rail === 'ok') throw new RailMismatchError(`voucher ${key} already settled on the rail`, { deal: deal.key, voucher: key })
  const next: VoucherRecord = { ...v, rail: body.status }
  const ok = body.status === 'ok'
  const updated: DealState = {
    ...deal,
    vouchers: deal.vouchers.set(key, next),
    lastVoucher: deal.lastVoucher?.cid.equals(v.cid) ? next : deal.lastVoucher,
    railSettled: ok ? Math.max(deal.railSettled, v.amount) : deal.railSettled,
    unsettledOnRail: ok ? without(deal.unsettledOnRail, key) : deal.unsettledOnRail,
  }
  return { state: putDeal(step.state, updated), deal: deal.key }
}
