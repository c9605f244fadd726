import { CID } from 'multiformats/cid'
import { ControlApiError, type ControlServer, type Metrics } from '@tally/daemon'
import { buildDispute } from '@tally/deal'
import { exportPairLogBytes } from '@tally/lineage'
import type { TallyPeer } from './peer.ts'
import { dealView, dealViews, type DealView } from './views.ts'

function allDeals(peer: TallyPeer): DealView[] {
  return peer.engines().flatMap((e) => dealViews(e.state))
}

function findDeal(peer: TallyPeer, id: string) {
  for (const e of peer.engines()) {
    const d = e.state.deals.get(id)
    if (d !== undefined) return { engine: e, deal: d }
  }
  throw new ControlApiError(`no deal ${id}`, 404)
}

/** Control API routes every peer daemon serves, and the metrics behind them. */
export function registerPeerRoutes(control: ControlServer, peer: TallyPeer, info: () => Record<string, unknown>): void {
  control.route('GET', '/v1/status', () => ({
    peerId: peer.peerId,
    multiaddrs: peer.node.multiaddrs(),
    pairs: peer.sessions.list().map((s) => ({ ...s, pair: s.pair })),
    deals: allDeals(peer).length,
    ...info(),
  }))
  control.route('GET', '/v1/deals', () => allDeals(peer))
  control.route('GET', '/v1/deals/:id', ({ params }) => {
    const { engine, deal } = findDeal(peer, params['id']!)
    return dealView(engine.state, deal)
  })
  control.route('POST', '/v1/deals/:id/dispute', async ({ params, body }) => {
    const { engine, deal } = findDeal(peer, params['id']!)
    const b = (body ?? {}) as { epochs?: unknown; reason?: unknown }
    if (!Array.isArray(b.epochs) || !b.epochs.every((e) => Number.isSafeInteger(e) && (e as number) >= 0)) {
      throw new ControlApiError('body needs epochs: [n, …]', 400)
    }
    const reason = typeof b.reason === 'string' ? b.reason : 'opened by the party'
    const block = await engine.append('dispute', buildDispute(deal.id, b.epochs as number[], reason))
    return { dispute: block.cid.toString() }
  })
  control.route('GET', '/v1/pairs/:id/export', async ({ params }) => {
    let id: CID
    try {
      id = CID.parse(params['id']!)
    } catch {
      throw new ControlApiError('not a pair id', 400)
    }
    const engine = peer.engines().find((e) => e.log.id.equals(id))
    if (engine === undefined) throw new ControlApiError(`no pair ${params['id']}`, 404)
    return { contentType: 'application/vnd.ipld.car', bytes: await exportPairLogBytes(engine.log), filename: `${params['id']}.car` }
  })
}

/** Gauges over the deals the peer holds, read at scrape time. */
export function registerPeerMetrics(metrics: Metrics, peer: TallyPeer): void {
  metrics.gauge('deals', 'Deals held, by status', ['status'], (g) => {
    g.reset()
    for (const d of allDeals(peer)) g.inc({ status: d.status })
  })
  metrics.gauge('paid_minor_units', 'Cumulative voucher amount over all deals, by asset', ['asset'], (g) => {
    g.reset()
    for (const d of allDeals(peer)) if (d.price !== null) g.inc({ asset: d.price.asset }, d.paid)
  })
  metrics.gauge('epochs', 'Evaluated epochs, by verdict', ['verdict'], (g) => {
    g.reset()
    for (const d of allDeals(peer)) {
      g.inc({ verdict: 'performed' }, d.epochs.performed)
      g.inc({ verdict: 'not-performed' }, d.epochs.notPerformed)
      g.inc({ verdict: 'disputed' }, d.epochs.disputed)
      g.inc({ verdict: 'insufficient' }, d.epochs.insufficient)
    }
  })
  metrics.gauge('pair_sessions', 'Pairs held, by session state', ['state'], (g) => {
    g.reset()
    for (const s of peer.sessions.list()) g.inc({ state: s.connected ? 'connected' : 'disconnected' })
  })
  metrics.gauge('observations_stored', 'Monitor observations stored by the intake', [], (g) => {
    g.set(peer.intake.counters.stored)
  })
}
