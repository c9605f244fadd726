import type { CID, Money } from '@tally/core'
import { MAX_RAIL_DETAIL_BYTES, type RailResultBody } from './bodies/settlement.ts'
import type { RailName } from './contract.ts'
import { UnknownVoucherError } from './errors.ts'
import type { PairState } from './state.ts'

/**
 * A payment rail moves the value a voucher releases. Settlement itself is
 * the vouchers in the pair log; a rail only hands each release on (to a
 * ledger, a command, an HTTP endpoint, or an on-chain channel) and its
 * outcome is recorded with a `rail-result` entry. Adapters doing I/O live
 * outside this package; they implement this interface.
 */
export interface PaymentRail {
  readonly name: RailName | (string & {})
  release(request: ReleaseRequest): Promise<RailOutcome>
}

/** What a rail is asked to move: the voucher's cumulative amount and the increment since the last settled release. */
export interface ReleaseRequest {
  pair: CID
  deal: CID
  voucher: CID
  payer: string
  payee: string
  cumulative: Money
  increment: Money
}

export interface RailOutcome {
  status: 'ok' | 'failed'
  detail: string
  /** The rail's own reference (transaction id, receipt); null when it gave none. */
  reference: string | null
}

/** The release a voucher asks of the rail: cumulative amount, and what is new since the rail last settled. */
export function releaseRequest(state: PairState, deal: CID, voucher: CID): ReleaseRequest {
  const d = state.deals.get(deal.toString())
  const v = d?.vouchers.get(voucher.toString())
  if (d === undefined || d.terms === null || v === undefined) throw new UnknownVoucherError(`no voucher ${voucher} in deal ${deal}`)
  const asset = d.terms.price.asset
  return {
    pair: state.pairId,
    deal,
    voucher,
    payer: state.pair.consumer,
    payee: state.pair.provider,
    cumulative: { amount: v.amount, asset },
    increment: { amount: Math.max(0, v.amount - d.railSettled), asset },
  }
}

/** The embedded default: the countersigned voucher in the log is the settlement; nothing moves elsewhere. */
export const ledgerRail: PaymentRail = {
  name: 'ledger',
  release(request) {
    return Promise.resolve({ status: 'ok', detail: 'settled by the voucher in the pair log', reference: request.voucher.toString() })
  },
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** Cut `text` to at most `max` UTF-8 bytes without splitting a character. */
export function truncateUtf8(text: string, max: number): string {
  const bytes = encoder.encode(text)
  if (bytes.byteLength <= max) return text
  return decoder.decode(bytes.subarray(0, max)).replace(/\uFFFD+$/, '')
}

/** The `rail-result` body recording a rail's outcome (detail cut to 1 KiB). */
export function buildRailResult(request: ReleaseRequest, rail: string, outcome: RailOutcome): RailResultBody {
  return {
    deal: request.deal,
    voucher: request.voucher,
    rail,
    status: outcome.status,
    detail: truncateUtf8(outcome.detail, MAX_RAIL_DETAIL_BYTES),
    reference: outcome.reference === null ? null : outcome.reference.slice(0, 256),
  }
}
