import type { CertificateSummary } from './certificate.ts'
import { type DealState, epochLimit, type PairState } from './state.ts'

/** What a completion certificate for `deal` must state, computed from the record. */
export function certificateSummary(state: PairState, deal: DealState): CertificateSummary {
  const t = deal.terms
  const price = t?.price.asset ?? 'XXX'
  const coll = t?.collateral.asset ?? 'XXX'
  return {
    pair: state.pairId,
    deal: deal.id,
    epochs: { total: epochLimit(deal), ...deal.counts },
    authorised: { amount: deal.authorised, asset: price },
    paid: { amount: deal.paid, asset: price },
    collateralBonded: { amount: deal.collateralBonded, asset: coll },
    collateralAwarded: { amount: deal.collateralAwarded, asset: coll },
    rulings: [...deal.finalRulings],
  }
}

/** Why `deal` cannot be certified yet, or null when it is closed and fully settled. */
export function settlementProblem(deal: DealState): string | null {
  if (deal.status !== 'closed' && deal.status !== 'certified') return `deal is ${deal.status}, not closed`
  if (deal.openDisputes.length > 0) return `${deal.openDisputes.length} dispute(s) await a final ruling`
  if (deal.held > 0) return `${deal.held} is still held pending evidence`
  if (deal.nextUnsettled < epochLimit(deal)) return `epoch ${deal.nextUnsettled} has no evaluation`
  if (deal.paid !== deal.authorised) return `paid ${deal.paid} differs from the ${deal.authorised} authorised`
  return null
}

/** Structural equality of two summaries (CIDs by value). */
export function sameSummary(a: CertificateSummary, b: CertificateSummary): boolean {
  const m = (x: { amount: number; asset: string }, y: { amount: number; asset: string }) => x.amount === y.amount && x.asset === y.asset
  return (
    a.pair.equals(b.pair) &&
    a.deal.equals(b.deal) &&
    a.epochs.total === b.epochs.total &&
    a.epochs.performed === b.epochs.performed &&
    a.epochs.notPerformed === b.epochs.notPerformed &&
    a.epochs.disputed === b.epochs.disputed &&
    a.epochs.insufficient === b.epochs.insufficient &&
    m(a.authorised, b.authorised) &&
    m(a.paid, b.paid) &&
    m(a.collateralBonded, b.collateralBonded) &&
    m(a.collateralAwarded, b.collateralAwarded) &&
    a.rulings.length === b.rulings.length &&
    a.rulings.every((c, i) => c.equals(b.rulings[i] as typeof c))
  )
}
