import type { DealState, PairState } from '@tally/deal'

/** A deal as the control API, `tally deal list/show` and the demo summary show it. */
export interface DealView {
  deal: string
  pair: string
  provider: string
  consumer: string
  status: string
  jurisdiction: string | null
  hardware: string | null
  price: { amount: number; asset: string } | null
  epochMs: number | null
  epochs: { total: number | null; performed: number; notPerformed: number; disputed: number; insufficient: number }
  /** Epoch-by-epoch verdicts so far. */
  verdicts: { epoch: number; verdict: string; amount: number }[]
  authorised: number
  paid: number
  acknowledged: number
  held: number
  collateral: { bonded: number; awarded: number }
  disputes: {
    id: string
    by: string
    epochs: number[]
    reason: string
    status: string
    rulings: { arbiter: string; toProvider: number; collateralToConsumer: number; appeal: boolean }[]
  }[]
  certified: { provider: boolean; consumer: boolean }
  metered: { wallMs: number; cpuMs: number; gpuMs: number }
}

export function dealView(state: PairState, deal: DealState): DealView {
  const t = deal.terms ?? deal.offers.at(-1)?.terms ?? null
  const verdicts: DealView['verdicts'] = []
  for (const [, ep] of deal.epochs.entries()) {
    if (ep.evaluation !== null) verdicts.push({ epoch: ep.epoch, verdict: ep.evaluation.verdict, amount: ep.evaluation.amount })
    else if (ep.dispute !== null) verdicts.push({ epoch: ep.epoch, verdict: 'disputed', amount: 0 })
  }
  verdicts.sort((a, b) => a.epoch - b.epoch)
  return {
    deal: deal.key,
    pair: state.pairId.toString(),
    provider: state.pair.provider,
    consumer: state.pair.consumer,
    status: deal.status,
    jurisdiction: t?.jurisdiction ?? null,
    hardware: t === null ? null : `${t.resources.count}x ${t.resources.class}`,
    price: t?.price ?? null,
    epochMs: t?.epochMs ?? null,
    epochs: { total: t?.epochs ?? null, ...deal.counts },
    verdicts,
    authorised: deal.authorised,
    paid: deal.paid,
    acknowledged: deal.acknowledged,
    held: deal.held,
    collateral: { bonded: deal.collateralBonded, awarded: deal.collateralAwarded },
    disputes: deal.disputeOrder.map((k) => {
      const d = deal.disputes.get(k)!
      return {
        id: k,
        by: d.by,
        epochs: [...d.epochs],
        reason: d.reason,
        status: d.status,
        rulings: d.rulings.map((r) => ({
          arbiter: r.arbiter,
          toProvider: r.toProvider,
          collateralToConsumer: r.collateralToConsumer,
          appeal: r.appealOf !== null,
        })),
      }
    }),
    certified: { provider: deal.certificates.provider !== null, consumer: deal.certificates.consumer !== null },
    metered: { ...deal.metered },
  }
}

export function dealViews(state: PairState): DealView[] {
  return state.dealOrder.map((id) => dealView(state, state.deals.get(id.toString())!))
}
