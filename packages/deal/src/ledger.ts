import type { AssetBalance, DealState, EpochState, PairState } from './state.ts'
import type { VerdictKind } from './verdict.ts'

type Outcome = VerdictKind | null

const COUNT_FIELD: Record<VerdictKind, keyof DealState['counts']> = {
  performed: 'performed',
  'not-performed': 'notPerformed',
  disputed: 'disputed',
  insufficient: 'insufficient',
}

/** What one epoch adds to its deal's totals. A dispute replaces the evaluation until its ruling settles the whole dispute. */
function contribution(deal: DealState, e: EpochState | undefined): { authorised: number; held: number; outcome: Outcome } {
  if (e === undefined) return { authorised: 0, held: 0, outcome: null }
  if (e.dispute !== null) return { authorised: 0, held: e.dispute.final ? 0 : (deal.terms?.price.amount ?? 0), outcome: 'disputed' }
  if (e.evaluation === null) return { authorised: 0, held: 0, outcome: null }
  return { authorised: e.evaluation.amount, held: e.evaluation.held, outcome: e.evaluation.verdict }
}

/** Store an epoch's new state and move the deal's totals and verdict counts by the difference. */
export function putEpoch(deal: DealState, next: EpochState): DealState {
  const key = String(next.epoch)
  const before = contribution(deal, deal.epochs.get(key))
  const after = contribution(deal, next)
  let counts = deal.counts
  if (before.outcome !== after.outcome) {
    counts = { ...counts }
    if (before.outcome !== null) counts[COUNT_FIELD[before.outcome]]--
    if (after.outcome !== null) counts[COUNT_FIELD[after.outcome]]++
  }
  const epochs = deal.epochs.set(key, next)
  let nextUnsettled = deal.nextUnsettled
  while (settled(epochs.get(String(nextUnsettled)))) nextUnsettled++
  const wasHeld = deal.heldEpochs.includes(next.epoch)
  const isHeld = next.dispute === null && next.evaluation?.verdict === 'insufficient' && next.evaluation.holdBp > 0
  const heldEpochs = wasHeld === isHeld ? deal.heldEpochs : isHeld ? [...deal.heldEpochs, next.epoch] : deal.heldEpochs.filter((e) => e !== next.epoch)
  return {
    ...deal,
    epochs,
    nextUnsettled,
    heldEpochs,
    authorised: deal.authorised - before.authorised + after.authorised,
    held: deal.held - before.held + after.held,
    counts,
  }
}

function settled(e: EpochState | undefined): boolean {
  return e !== undefined && (e.evaluation !== null || e.dispute !== null)
}

function zero(): AssetBalance {
  return { authorised: 0, paid: 0, acknowledged: 0, held: 0, due: 0, railSettled: 0, collateralBonded: 0, collateralAwarded: 0 }
}

/** The deal's share of the pair's balances, per asset. */
export function dealBalances(deal: DealState): Record<string, AssetBalance> {
  const t = deal.terms
  if (t === null) return {}
  const out: Record<string, AssetBalance> = {}
  const p = (out[t.price.asset] ??= zero())
  p.authorised += deal.authorised
  p.paid += deal.paid
  p.acknowledged += deal.acknowledged
  p.held += deal.held
  p.due += deal.authorised - deal.paid
  p.railSettled += deal.railSettled
  const c = (out[t.collateral.asset] ??= zero())
  c.collateralBonded += deal.collateralBonded
  c.collateralAwarded += deal.collateralAwarded
  return out
}

function addInto(into: Record<string, AssetBalance>, part: Record<string, AssetBalance>, sign: 1 | -1): void {
  for (const [asset, b] of Object.entries(part)) {
    const cur = (into[asset] = { ...(into[asset] ?? zero()) })
    for (const k of Object.keys(b) as (keyof AssetBalance)[]) cur[k] += sign * b[k]
  }
}

function sameMoney(a: DealState, b: DealState): boolean {
  return (
    a.terms === b.terms &&
    a.authorised === b.authorised &&
    a.paid === b.paid &&
    a.acknowledged === b.acknowledged &&
    a.held === b.held &&
    a.railSettled === b.railSettled &&
    a.collateralBonded === b.collateralBonded &&
    a.collateralAwarded === b.collateralAwarded
  )
}

/** Store a deal's new state in the pair, moving the pair's balances by the deal's difference. */
export function putDeal(state: PairState, next: DealState): PairState {
  const prev = state.deals.get(next.key)
  let balances = state.balances
  if (prev === undefined || !sameMoney(prev, next)) {
    const moved = { ...state.balances }
    if (prev !== undefined) addInto(moved, dealBalances(prev), -1)
    addInto(moved, dealBalances(next), 1)
    balances = moved
  }
  return {
    ...state,
    deals: state.deals.set(next.key, next),
    dealOrder: prev === undefined ? [...state.dealOrder, next.id] : state.dealOrder,
    balances,
  }
}

/** Recompute the pair's balances from its deals (a check on the incremental figures). */
export function recomputeBalances(state: PairState): Record<string, AssetBalance> {
  const out: Record<string, AssetBalance> = {}
  for (const id of state.dealOrder) {
    const d = state.deals.get(id.toString())
    if (d !== undefined) addInto(out, dealBalances(d), 1)
  }
  return out
}
