import { type CID, Identity } from '@tally/core'
import { beforeEach, describe, expect, it } from 'vitest'
import {
  aggregate,
  buildAcceptance,
  buildAck,
  buildCertificate,
  buildClose,
  buildCollateral,
  buildDispute,
  buildEvaluation,
  buildProposal,
  buildTimeout,
  buildUsage,
  buildVoucher,
  type ContractTerms,
  type DealState,
  type Duty,
  duties,
  type PartyRole,
  replay,
  reportCsv,
  rulingBodyFor,
  signRuling,
} from '../src/index.ts'
import {
  activeDeal,
  arbiter,
  attestation,
  consumer,
  EPOCH,
  endOf,
  monitors,
  observation,
  resetObservationSeqs,
  seed,
  T0,
  TestPair,
  terms,
  usageFigures,
  workload,
} from './helpers.ts'

beforeEach(() => resetObservationSeqs())

/**
 * Two honest daemons that only read duties, build bodies and append,
 * plus a monitor feed and an arbiter. `downEpochs` are epochs the monitors
 * see the provider down while it still claims service.
 */
function drive(p: TestPair, t: ContractTerms, downEpochs: ReadonlySet<number>, award: number): { deal: CID; seen: Duty['type'][] } {
  const deal = p.append('consumer', 'proposal', buildProposal(t), T0 - 1000).cid
  const seen: Duty['type'][] = []
  const fed = new Set<number>()
  const ruled = new Set<string>()
  const end = T0 + (t.epochs ?? 0) * EPOCH + 10 * 60_000
  for (let now = T0; now <= end; now += 5_000) {
    const d = p.state.deals.get(deal.toString()) as DealState
    if (d.start !== null) {
      for (let e = 0; e < (t.epochs ?? 0) && endOf(e) <= now; e++) {
        if (fed.has(e)) continue
        fed.add(e)
        const ok = downEpochs.has(e) ? 10 : 100
        for (const m of [monitors[0], monitors[1]])
          p.append('consumer', 'observation', { deal, observation: observation(m, e, ok, { subject: p.ids.provider.peerId }) }, now)
      }
    }
    for (let guard = 0; guard < 50; guard++) {
      const todo: [PartyRole, Duty][] = [
        ...duties(p.state, 'provider', now).map((x): [PartyRole, Duty] => ['provider', x]),
        ...duties(p.state, 'consumer', now).map((x): [PartyRole, Duty] => ['consumer', x]),
      ].filter(([, x]) => x.type !== 'dispute' || !ruled.has(x.dispute.toString()))
      const next = todo[0]
      if (next === undefined) break
      const [role, duty] = next
      seen.push(duty.type)
      perform(p, role, duty, now, award, ruled)
    }
  }
  return { deal, seen }
}

function perform(p: TestPair, role: PartyRole, duty: Duty, now: number, award: number, ruled: Set<string>): void {
  const s = p.state
  switch (duty.type) {
    case 'answer-offer':
      p.append(role, 'acceptance', buildAcceptance(s, duty.deal), T0)
      return
    case 'collateral':
      p.append(role, 'collateral', buildCollateral(s, duty.deal), now)
      return
    case 'attestation':
      p.append(role, 'attestation', { deal: duty.deal, attestation: attestation(now, 'gpu.h100', 2, p.ids.provider) }, now)
      return
    case 'manifest':
      p.append(role, 'manifest', { deal: duty.deal, workload }, now)
      return
    case 'usage':
      p.append(role, 'usage', buildUsage(duty.deal, duty.epoch, usageFigures()), now)
      return
    case 'evaluate':
      p.append(role, 'evaluation', buildEvaluation(s, duty.deal, duty.epoch), now)
      return
    case 'voucher':
      p.append(role, 'voucher', buildVoucher(s, duty.deal), now)
      return
    case 'ack':
      p.append(role, 'ack', buildAck(s, duty.deal, duty.voucher), now)
      return
    case 'dispute': {
      // The arbiter receives the record, rules, and the provider relays the ruling.
      ruled.add(duty.dispute.toString())
      const body = rulingBodyFor(s, duty.deal, duty.dispute, {
        toProvider: award,
        collateralToConsumer: 100,
        reasons: 'partial outage',
        relied: [duty.dispute],
        issuedAt: now,
      })
      p.append('provider', 'ruling', { deal: duty.deal, ruling: signRuling(arbiter, body) }, now)
      return
    }
    case 'close':
      p.append(role, 'close', buildClose(duty.deal, duty.reason), now)
      return
    case 'certificate':
      p.append(role, 'certificate', buildCertificate(p.ids[role], s, duty.deal, now), now)
      return
    default:
      throw new Error(`an honest run should not owe ${duty.type}`)
  }
}

describe('daemons driven by duties and builders', () => {
  it('settle a whole deal, dispute included, to a countersigned certificate', () => {
    const p = new TestPair()
    const t = terms({ appealArbiter: null })
    const { deal, seen } = drive(p, t, new Set([2]), 400)
    const d = p.state.deals.get(deal.toString()) as DealState
    expect(d.status).toBe('certified')
    expect(d.counts).toEqual({ performed: 3, notPerformed: 0, disputed: 1, insufficient: 0 })
    expect(d.paid).toBe(3400)
    expect(d.acknowledged).toBe(3400)
    expect(d.collateralAwarded).toBe(100)
    for (const type of ['answer-offer', 'collateral', 'attestation', 'manifest', 'usage', 'evaluate', 'voucher', 'ack', 'dispute', 'close', 'certificate']) {
      expect(seen).toContain(type)
    }
    expect(replay(p.log, p.state.pair).problems).toEqual([])
    // Once certified nothing is owed.
    expect(duties(p.state, 'provider', T0 + 10 * EPOCH)).toEqual([])
    expect(duties(p.state, 'consumer', T0 + 10 * EPOCH)).toEqual([])
  })

  it('name the timeouts a silent counterparty gives rise to', () => {
    const p = new TestPair()
    const id = activeDeal(p)
    // The provider serves epoch 0, nobody pays: after the answer deadline the provider may claim.
    p.append('provider', 'usage', { deal: id, epoch: 0, ...usageFigures() }, endOf(0))
    for (const m of monitors) p.append('provider', 'observation', { deal: id, observation: observation(m, 0, 100) }, endOf(0) + 1)
    expect(duties(p.state, 'consumer', endOf(0) + 2)).toContainEqual({ type: 'evaluate', deal: id, epoch: 0 })
    // The provider steps in to evaluate only after grace + answer deadline.
    expect(duties(p.state, 'provider', endOf(0) + 2).some((x) => x.type === 'evaluate')).toBe(false)
    expect(duties(p.state, 'provider', endOf(0) + 40_000)).toContainEqual({ type: 'evaluate', deal: id, epoch: 0 })
    const ev = p.append('provider', 'evaluation', buildEvaluation(p.state, id, 0), endOf(0) + 40_000)
    const voucherDue = duties(p.state, 'consumer', endOf(0) + 40_001).find((x) => x.type === 'voucher')
    expect(voucherDue).toMatchObject({ amount: { amount: 1000, asset: 'USD' } })
    const claim = duties(p.state, 'provider', endOf(0) + 70_000).find((x) => x.type === 'claim-timeout')
    expect(claim).toEqual({ type: 'claim-timeout', deal: id, duty: 'voucher', ref: ev.cid, epoch: null })
    // The consumer may claim the provider stopped reporting usage for epoch 1.
    expect(duties(p.state, 'consumer', endOf(1) + 30_000)).toContainEqual({ type: 'claim-timeout', deal: id, duty: 'usage', ref: null, epoch: 1 })
    p.append('provider', 'timeout', buildTimeout(id, 'voucher', ev.cid), endOf(0) + 70_000)
    expect(p.state.deals.get(id.toString())?.defaulted).toBe('consumer')
  })

  it('a close by each party at once concurs; a close after seeing the other is refused', () => {
    const p = new TestPair()
    const id = activeDeal(p)
    const end = endOf(terms().epochs! - 1)
    const first = p.append('consumer', 'close', buildClose(id, 'completed'), end + 1)
    // The provider's fallback close, signed before the consumer's arrived: it concurs and changes nothing.
    const before = p.state.deals.get(id.toString())
    p.append('provider', 'close', buildClose(id, 'completed'), end + 2, { blind: true })
    const after = p.state.deals.get(id.toString()) as DealState
    expect(after).toEqual(before)
    expect(after.close?.cid.equals(first.cid)).toBe(true)
    // Having seen a close, a party may not close again.
    expect(p.force('provider', 'close', buildClose(id, 'completed'), end + 3).error.name).toBe('DealClosedError')
    expect(replay(p.log, p.state.pair).problems.map((x) => x.code)).toEqual(['DealClosedError'])
  })

  it('dispute an epoch held for want of evidence once the answer period passes with nothing new', () => {
    const p = new TestPair()
    const id = activeDeal(p)
    // Only one of the named monitors reported epoch 0 (quorum two): insufficient, held.
    p.append('provider', 'usage', { deal: id, epoch: 0, ...usageFigures() }, endOf(0))
    p.append('provider', 'observation', { deal: id, observation: observation(monitors[0], 0, 100) }, endOf(0) + 1)
    const at = endOf(0) + 10_000
    p.append('consumer', 'evaluation', buildEvaluation(p.state, id, 0), at)
    const deal = () => p.state.deals.get(id.toString()) as DealState
    expect(deal().heldEpochs).toEqual([0])
    const opens = (role: PartyRole, now: number) => duties(p.state, role, now).filter((x) => x.type === 'open-dispute')
    expect(opens('consumer', at + 29_999)).toEqual([])
    expect(opens('consumer', at + 30_000)).toEqual([
      { type: 'open-dispute', deal: id, epochs: [0], reason: 'evidence still insufficient after the answer period' },
    ])
    // The provider steps in only after a second answer period.
    expect(opens('provider', at + 30_000)).toEqual([])
    expect(opens('provider', at + 60_000)).toHaveLength(1)
    const duty = opens('consumer', at + 30_000)[0] as Extract<Duty, { type: 'open-dispute' }>
    p.append('consumer', 'dispute', buildDispute(id, duty.epochs, duty.reason), at + 30_000)
    // The epoch is no longer held: the dispute holds it until the arbiter rules.
    expect(deal().heldEpochs).toEqual([])
    expect(deal().openDisputes).toHaveLength(1)
    expect(opens('consumer', at + 90_000)).toEqual([])
    expect(duties(p.state, 'consumer', at + 30_001).some((x) => x.type === 'dispute')).toBe(true)
  })
})

describe('fan-out aggregate', () => {
  it('reports paid per provider and jurisdiction, GPU-hours, verdicts and disputes, as CSV', () => {
    const providers = [Identity.fromSeed(seed(31)), Identity.fromSeed(seed(32)), Identity.fromSeed(seed(33))]
    const juris = ['DE', 'US-CA', 'DE']
    const pairs = providers.map((prov, i) => {
      resetObservationSeqs()
      const p = new TestPair(prov, consumer)
      const t = terms({ jurisdiction: juris[i] as string, appealArbiter: null, resources: { class: 'gpu.h100', count: 2 }, epochs: 2, maxEpochs: 2 })
      // Provider 2 fails mid-job: monitors see it down in epoch 1 while it claims service.
      drive2(p, t, i === 1 ? new Set([1]) : new Set())
      return p
    })
    const report = aggregate(pairs.map((p, i) => ({ state: p.state, jurisdiction: juris[i] as string })))
    expect(report.providers.map((l) => l.byAsset.USD?.paid)).toEqual([2000, 1250, 2000])
    expect(report.jurisdictions.map((j) => [j.jurisdiction, j.byAsset.USD?.paid, j.providers.length])).toEqual([
      ['DE', 4000, 2],
      ['US-CA', 1250, 1],
    ])
    expect(report.totals.USD).toMatchObject({ deals: 3, paid: 5250, epochs: { total: 6, performed: 5, notPerformed: 0, disputed: 1, insufficient: 0 } })
    // 5 performed epochs × 2 GPUs × 1 minute = 10 GPU-minutes.
    expect(report.totals.USD?.gpuMsDelivered).toBe(5 * 2 * EPOCH)
    expect(report.disputes).toHaveLength(1)
    expect(report.disputes[0]).toMatchObject({ provider: providers[1]?.peerId, jurisdiction: 'US-CA', status: 'final', epochs: [1] })
    expect(report.disputes[0]?.rulings[0]).toMatchObject({ toProvider: 250, final: true, appeal: false })
    const csv = reportCsv(report)
    const lines = csv.trimEnd().split('\r\n')
    expect(lines[0]?.startsWith('section,provider,jurisdiction,deal,dispute,asset,deals,paid_minor')).toBe(true)
    expect(lines.filter((l) => l.startsWith('provider,'))).toHaveLength(3)
    expect(lines.filter((l) => l.startsWith('dispute,'))).toHaveLength(1)
    const total = lines.find((l) => l.startsWith('total,'))?.split(',')
    expect(total?.slice(5, 8)).toEqual(['USD', '3', '5250'])
    expect(total?.[17]).toBe('0.166') // 10 GPU-minutes
    expect(lines.every((l) => l.split(',').length >= 21)).toBe(true)
  })
})

function drive2(p: TestPair, t: ContractTerms, down: ReadonlySet<number>): void {
  drive(p, t, down, 250)
}
