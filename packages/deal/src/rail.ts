import type { CID, Money } from '@tally/core'
import { MAX_RAIL_DETAIL_BYTES, type RailResultBody } from './bodies/settlement.ts'
import { UnknownVoucherError } from './errors.ts'
import type { PairState } from './state.ts'

/**
 * The pure side of payment rails. Settlement is the vouchers in the pair
 * log; a rail (@tally/rails: ledger, command, HTTP, or an on-chain
 * channel) only hands each release on, and its outcome is recorded with a
 * `rail-result` entry. This file turns state into the release a rail is
 * given, and a rail's outcome into the entry body.
 */

/** One release, shaped as @tally/rails' `RailRelease` (CIDs as strings). */
export interface RailRelease {
  pair: string
  deal: string
  voucher: string
  /** Total released in the deal so far, including this voucher. */
  cumulative: Money
  /** What this voucher adds to the one before it. */
  delta: Money
  payer: string
  payee: string
  /** The signed voucher entry's bytes, base64, so the receiving system can check them. */
  voucherBytesBase64: string
}

/** What a rail reports, shaped as @tally/rails' `RailOutcome`. */
export interface RailOutcome {
  rail: string
  status: 'ok' | 'failed'
  detail: string
  reference: string | null
}

/** The release a voucher (given with its entry bytes) asks of the contract's rail. */
export function railRelease(state: PairState, deal: CID, voucher: CID, voucherBytes: Uint8Array): RailRelease {
  const d = state.deals.get(deal.toString())
  const v = d?.vouchers.get(voucher.toString())
  if (d === undefined || d.terms === null || v === undefined) throw new UnknownVoucherError(`no voucher ${voucher} in deal ${deal}`)
  const asset = d.terms.price.asset
  return {
    pair: state.pairId.toString(),
    deal: deal.toString(),
    voucher: voucher.toString(),
    cumulative: { amount: v.amount, asset },
    delta: { amount: v.amount - v.previous, asset },
    payer: state.pair.consumer,
    payee: state.pair.provider,
    voucherBytesBase64: Buffer.from(voucherBytes).toString('base64'),
  }
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** Cut `text` to at most `max` UTF-8 bytes without splitting a character. */
export function truncateUtf8(text: string, max: number): string {
  const bytes = encoder.encode(text)
  if (bytes.byteLength <= max) return text
  return decoder.decode(bytes.subarray(0, max)).replace(/\uFFFD+$/, '')
}

/** The `rail-result` body recording a rail's outcome for a voucher (detail cut to 1 KiB). */
export function buildRailResult(deal: CID, voucher: CID, outcome: RailOutcome): RailResultBody {
  return {
    deal,
    voucher,
    rail: outcome.rail,
    status: outcome.status,
    detail: truncateUtf8(outcome.detail, MAX_RAIL_DETAIL_BYTES),
    reference: outcome.reference === null ? null : outcome.reference.slice(0, 256),
  }
}
